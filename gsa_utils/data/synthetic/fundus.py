"""Synthetic fundus photographs: lesions near the fovea decide the grade (IDRiD-like)."""

from __future__ import annotations

import math

import cv2
import numpy as np

from ..base import StructuredDataset
from .drawing import (
    F32,
    Grid,
    add_noise,
    coverage,
    disk_distance,
    gauss,
    image_rngs,
    paint,
    place_disks,
    smooth_noise,
    synthetic_dataset,
    validate_request,
)

_FUNDUS_RETINA_R = 0.93  # radius of the visible retina (units)
_FUNDUS_DISC = (0.52, -0.03)  # optic disc centre
_FUNDUS_DISC_R = 0.13
_FUNDUS_MACULA = (-0.10, 0.03)  # fovea, centre of the relevant circle
_FUNDUS_MASK_R = 0.34  # relevant circle: about one optic disc diameter round the fovea
_FUNDUS_JITTER = 0.04  # the eye shifts by up to this (about 1.3 px at 64 px)
_FUNDUS_LESION_R = (0.045, 0.065)
_FUNDUS_MIN_LESION_PX = 0.85  # lesion radius never below this many pixels
_FUNDUS_CLASS_NAMES = {2: ["normal", "lesions"], 3: ["normal", "mild", "severe"]}


def _fundus_counts(label: int) -> tuple[int, int]:
    """Inclusive range of the number of lesions inside the macula circle for a class."""
    return (0, 1) if label == 0 else (3 * label - 1, 3 * label + 1)


def _fundus_vessels(rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, bool]]:
    """Vessel centre lines as (x, y, half_width, is_vein), relative to the optic disc centre."""
    vessels = []
    for side in (-1.0, 1.0):  # superior and inferior arcade, curving round the macula
        for is_vein in (True, False):
            delta = rng.uniform(0.0, 0.3) + (0.0 if is_vein else 0.25)
            curl, bend = rng.uniform(0.9, 1.3), rng.uniform(-0.15, 0.25)
            amp, freq, phase = rng.uniform(0.0, 0.05), rng.uniform(6.0, 12.0), rng.uniform(0, 2 * np.pi)
            rho = np.linspace(0.03, rng.uniform(1.05, 1.35), 48)
            theta = side * (np.pi / 2 + delta + curl * rho + bend * rho**2) + amp * np.sin(freq * rho + phase)
            half = (0.019 if is_vein else 0.014) * (1.0 - 0.5 * rho / rho[-1])
            vessels.append((rho * np.cos(theta), rho * np.sin(theta), half, is_vein))
    for theta0 in np.sort(rng.uniform(-1.0, 1.0, rng.integers(2, 4))):  # nasal vessels
        rho = np.linspace(0.03, rng.uniform(0.35, 0.5), 24)
        theta = theta0 + rng.uniform(-0.6, 0.6) * rho + rng.uniform(0.0, 0.05) * np.sin(9 * rho)
        half = 0.012 * (1.0 - 0.5 * rho / rho[-1])
        vessels.append((rho * np.cos(theta), rho * np.sin(theta), half, bool(rng.integers(2))))
    for side in (-1.0, 1.0):  # small twigs towards (never into) the macula
        rho = np.linspace(0.05, rng.uniform(0.13, 0.19), 12)
        theta = np.pi + side * rng.uniform(0.25, 0.5) + rng.uniform(-0.3, 0.3) * rho
        vessels.append((rho * np.cos(theta), rho * np.sin(theta), np.full_like(rho, 0.009), False))
    return vessels


def _draw_vessels(grid: Grid, vessels, cx: float, cy: float) -> tuple[np.ndarray, np.ndarray]:
    """Anti-aliased vessel opacity maps (veins, arteries), each S x S in [0, 1].

    Drawn with OpenCV's sub-pixel anti-aliased polylines; vessels thinner than a pixel
    are drawn one pixel wide and proportionally fainter.
    """
    maps = {True: np.zeros((grid.size, grid.size), np.uint8), False: np.zeros((grid.size, grid.size), np.uint8)}
    for vx, vy, half, is_vein in vessels:
        pts = np.stack([np.round(grid.to_px(vx + cx) * 16), np.round(grid.to_px(vy + cy) * 16)], axis=1)
        pts = pts.astype(np.int32)
        n = len(pts)
        for a, b in ((0, n // 3 + 1), (n // 3, 2 * n // 3 + 1), (2 * n // 3, n)):  # taper in three pieces
            width_px = 2.0 * float(half[a:b].mean()) * grid.ppu
            thickness = max(1, int(round(width_px)))
            value = int(round(255 * min(1.0, width_px)))
            cv2.polylines(maps[is_vein], [pts[a:b]], False, value, thickness, cv2.LINE_AA, shift=4)
    return maps[True].astype(F32) / F32(255.0), maps[False].astype(F32) / F32(255.0)


def _paint_lesion(img: np.ndarray, grid: Grid, rng: np.random.Generator, cx: float, cy: float, r: float) -> None:
    """A bright yellow exudate or a dark red hemorrhage (type and tint from ``rng``)."""
    if rng.integers(2):
        color, opacity = [1.0, rng.uniform(0.85, 0.95), rng.uniform(0.3, 0.5)], rng.uniform(0.6, 0.95)
    else:
        color, opacity = [rng.uniform(0.25, 0.35), 0.03, 0.02], rng.uniform(0.6, 0.9)
    r = max(r, _FUNDUS_MIN_LESION_PX / grid.ppu)
    win = grid.window(cx, cy, r)
    paint(img, win, coverage(disk_distance(win[2], win[3], cx, cy, r), grid, 0.8) * F32(opacity), color)


def _render_fundus(grid: Grid, image_seed: int, label: int, num_classes: int) -> np.ndarray:
    rng, label_rng, noise_rng = image_rngs(image_seed)
    s = grid.size
    jx, jy = rng.uniform(-_FUNDUS_JITTER, _FUNDUS_JITTER, 2)
    gain = rng.uniform(0.8, 1.12)
    base = np.array([0.84, 0.36, 0.14]) * rng.uniform(0.9, 1.1, 3) * gain
    disc_r = _FUNDUS_DISC_R * rng.uniform(0.92, 1.08)
    dcx, dcy = _FUNDUS_DISC[0] + jx, _FUNDUS_DISC[1] + jy
    mcx, mcy = _FUNDUS_MACULA[0] + jx, _FUNDUS_MACULA[1] + jy
    x, y = grid.x - F32(jx), grid.y - F32(jy)
    r2 = x * x + y * y

    # background: vignetted orange-red retina with choroidal texture and a darker macula
    shade = r2 * F32(1.0 / _FUNDUS_RETINA_R**2)
    shade *= shade
    shade *= F32(-0.55)
    shade += F32(1.0)
    shade *= F32(rng.uniform(0.04, 0.08)) * smooth_noise(rng, s, 7) + F32(1.0)
    shade *= F32(1.0) - F32(rng.uniform(0.25, 0.4)) * gauss(grid.x, grid.y, mcx, mcy, 0.045)
    shade *= F32(1.0) + F32(0.25) * gauss(grid.x, grid.y, dcx, dcy, 0.08)  # glow round the disc
    img = np.asarray(base, F32).reshape(3, 1, 1) * shade

    # vessels from the disc
    veins, arteries = _draw_vessels(grid, _fundus_vessels(rng), dcx, dcy)
    arteries *= F32(0.8)
    veins *= F32(0.85)
    paint(img, grid.full, arteries, np.array([0.62, 0.13, 0.08]) * gain)
    paint(img, grid.full, veins, np.array([0.42, 0.06, 0.05]) * gain)

    # optic disc: bright yellowish over the vessel roots, with a paler cup
    win = grid.window(dcx, dcy, 1.6 * disc_r)
    q = ((win[2] - F32(dcx)) ** 2 + (win[3] - F32(dcy)) ** 2) * F32(1 / disc_r**2)
    rim = np.sqrt(q)
    rim -= F32(1.0)
    rim *= F32(12.0)
    rim = F32(0.85) / (F32(1.0) + np.exp(rim))  # opaque centre, soft rim
    paint(img, win, rim, np.array([1.0, 0.84, 0.5]) * min(gain, 1.0))
    paint(img, win, np.exp(q * F32(-1 / 0.12)) * F32(0.7), [1.0, 0.97, 0.85])

    # lesions: inside the macula circle they decide the label ...
    lo, hi = _fundus_counts(label)
    radii_in = label_rng.uniform(*_FUNDUS_LESION_R, int(label_rng.integers(lo, hi + 1)))
    # room for anti-aliasing and the minimum lesion size; constant (scenes do not depend on S) from 32 px up
    margin = max(0.035, (0.4 + _FUNDUS_MIN_LESION_PX) / grid.ppu - _FUNDUS_LESION_R[0])
    reach = _FUNDUS_MASK_R - math.sqrt(2) * _FUNDUS_JITTER - margin  # always inside the fixed mask

    def inside(cx, cy, r):
        return np.hypot(cx - mcx, cy - mcy) <= reach - r

    box = (mcx - reach, mcx + reach, mcy - reach, mcy + reach)
    for (cx, cy), r in zip(place_disks(label_rng, radii_in, inside, box, 0.015), radii_in):
        _paint_lesion(img, grid, label_rng, cx, cy, r)
    # ... elsewhere on the retina they are look-alike distractors in a number unrelated to the class
    radii_out = rng.uniform(*_FUNDUS_LESION_R, int(rng.integers(0, 4 * num_classes + 3)))

    def outside(cx, cy, r):
        return (
            (np.hypot(cx - mcx, cy - mcy) >= _FUNDUS_MASK_R + math.sqrt(2) * _FUNDUS_JITTER + r + margin + 0.01)
            & (np.hypot(cx - jx, cy - jy) <= _FUNDUS_RETINA_R - r - 0.06)
            & (np.hypot(cx - dcx, cy - dcy) >= disc_r + r + 0.04)
        )

    lim = _FUNDUS_RETINA_R
    box = (jx - lim, jx + lim, jy - lim, jy + lim)
    for (cx, cy), r in zip(place_disks(rng, radii_out, outside, box, 0.01), radii_out):
        _paint_lesion(img, grid, rng, cx, cy, r)

    # black outside the retina, then sensor noise
    img *= coverage(np.sqrt(r2) - F32(_FUNDUS_RETINA_R), grid)
    add_noise(img, noise_rng, 0.012)
    return img


def make_fundus(
    n_train: int = 160, n_test: int = 80, image_size: int = 64, seed: int = 0, num_classes: int = 2
) -> StructuredDataset:
    """Synthetic retinal fundus photographs graded by lesions at the macula.

    Introduced in chapter 1 (``01_structured_images``). Imitates IDRiD's macular edema task: an
    orange-red retina with a yellowish optic disc on the right and vessels round a darker macula.

    *Relevant* (``mask``): the number of lesions (yellow exudates, red hemorrhages) inside a circle
    of a little over one disc diameter round the fovea: 0-1 for class 0 ("normal"), 3k - 1 to
    3k + 1 for class k. *Distractors*: look-alike lesions elsewhere (0 to 4 * num_classes + 2, drawn
    independently of the class), vessels, brightness and colour, texture, a shift of up to 0.04
    units and noise. ``num_classes`` is 2 (``["normal", "lesions"]``) or 3 (``["normal", "mild", "severe"]``).
    """
    request = validate_request("fundus", n_train, n_test, image_size, seed, num_classes, range(2, 4))
    grid = Grid(request.image_size)
    names = _FUNDUS_CLASS_NAMES[int(num_classes)]
    counts = ", ".join(f"{name}: {lo}-{hi}" for name, (lo, hi) in zip(names, map(_fundus_counts, range(len(names)))))
    return synthetic_dataset(
        "fundus",
        request,
        names,
        lambda image_seed, label, split: _render_fundus(grid, image_seed, label, len(names)),
        disk_distance(grid.x, grid.y, *_FUNDUS_MACULA, _FUNDUS_MASK_R) <= 0,
        f"Synthetic fundus photographs: the class is the number of exudates/hemorrhages inside "
        f"the macula circle ({counts}); lesions elsewhere, vessels, colour and a small shift are distractors.",
        relevant="number of lesions inside the macula circle (mask)",
        lesions_per_class={name: _fundus_counts(k) for k, name in enumerate(names)},
    )
