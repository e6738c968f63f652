"""Embedded synthetic structured image sets whose relevant pixels are known.

Introduced in chapter 1 (``01_structured_images``). The paper's datasets (IDRiD fundus
photographs, JAFFE faces, glaucoma OCT thickness maps) are *structured*: every image shows
the same kind of object at the same place, so one attention map can serve them all. They
have no ground truth for *where* the label is decided. The generators here imitate them
and add that ground truth: each :class:`~gsa_utils.data.StructuredDataset` they return has
a ``mask`` (H x W bool) that holds every pixel the label depends on. Everything outside it
is a distractor that varies from image to image but carries no information about the label,
and training sets are small on purpose, so a CNN can overfit to those distractors, as in
the paper.

All images are float32 in [0, 1], N x 3 x S x S, for any ``image_size`` S from 16 to 256.
Scenes are described in resolution-free units (x and y in [-1, 1]) and drawn with
vectorised numpy (500 images of 224 px take a few seconds), so the same ``seed`` gives the
same scenes at every size from 32 px up, train and test come from separate random streams,
and each image draws its label-dependent content from its own stream: the same scene with
another label differs only inside ``mask``.
"""
from __future__ import annotations

import inspect
import math
from functools import lru_cache
from typing import Callable

import cv2
import numpy as np
import torch

from .base import DataError, StructuredDataset

__all__ = [
    "SYNTHETIC_DATASETS",
    "MIN_IMAGE_SIZE",
    "MAX_IMAGE_SIZE",
    "make_fundus",
    "make_faces",
    "make_oct_thickness",
    "make_digits_in_clutter",
    "load_synthetic",
]

#: Names accepted by :func:`load_synthetic`.
SYNTHETIC_DATASETS = ("fundus", "faces", "oct", "digits-clutter")
#: Smallest and largest ``image_size`` the generators accept.
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 16, 256

_MAX_BYTES = 6 * 2**30  # refuse requests whose images alone would need more memory than this
_DATASET_KEYS = {"fundus": 101, "faces": 102, "oct": 103, "digits-clutter": 104}
_SPLITS = ("train", "test")
_F = np.float32


# --------------------------------------------------------------------------------------
# shared helpers
# --------------------------------------------------------------------------------------
class _Grid:
    """Pixel-centre coordinates of an S x S image in units ([-1, 1], x right, y down).

    ``x`` has shape 1 x S and ``y`` S x 1, so expressions in both broadcast to S x S.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.ppu = size / 2.0  # pixels per unit
        c = ((np.arange(size, dtype=_F) + 0.5) / _F(self.ppu) - 1.0).astype(_F)
        self.x = c[None, :]
        self.y = c[:, None]
        self.full = (slice(0, size), slice(0, size), self.x, self.y)

    def to_px(self, u: np.ndarray | float) -> np.ndarray | float:
        """Unit coordinate -> fractional pixel index (pixel i has its centre at i)."""
        return (np.asarray(u) + 1.0) * self.ppu - 0.5

    def window(self, cx: float, cy: float, rx: float, ry: float | None = None):
        """The pixels within ``rx`` (``ry``) units, plus 2 px, of (cx, cy) along x (y).

        Returns ``(rows, cols, x, y)`` (slices and their coordinates, 1 x w and h x 1) or
        ``None`` when the window falls outside the image.
        """
        ry = rx if ry is None else ry
        mx, my = rx + 2.0 / self.ppu, ry + 2.0 / self.ppu
        x0 = max(int(math.floor(self.to_px(cx - mx))), 0)
        x1 = min(int(math.ceil(self.to_px(cx + mx))) + 1, self.size)
        y0 = max(int(math.floor(self.to_px(cy - my))), 0)
        y1 = min(int(math.ceil(self.to_px(cy + my))) + 1, self.size)
        if x0 >= x1 or y0 >= y1:
            return None
        return slice(y0, y1), slice(x0, x1), self.x[:, x0:x1], self.y[y0:y1, :]


def _coverage(signed_distance: np.ndarray, grid: _Grid, soft_px: float = 1.0) -> np.ndarray:
    """Anti-aliased inside-ness in [0, 1] from a signed distance in units (< 0 inside)."""
    c = np.asarray(signed_distance, dtype=_F) * _F(-grid.ppu / soft_px)
    c += _F(0.5)
    return np.clip(c, 0.0, 1.0, out=c)


def _ellipse_distance(x, y, cx: float, cy: float, ax: float, ay: float) -> np.ndarray:
    """Approximate signed distance (units) to an axis-aligned ellipse with half axes ax, ay."""
    u = (x - _F(cx)) / _F(ax)
    v = (y - _F(cy)) / _F(ay)
    d = np.sqrt(u * u + v * v)
    d -= _F(1.0)
    d *= _F(min(ax, ay))
    return d


def _disk_distance(x, y, cx: float, cy: float, r: float) -> np.ndarray:
    """Signed distance (units) to a disk."""
    u, v = x - _F(cx), y - _F(cy)
    d = np.sqrt(u * u + v * v)
    d -= _F(r)
    return d


def _gauss(x, y, cx: float, cy: float, sigma2: float) -> np.ndarray:
    """exp(-|p - c|^2 / sigma2), computed separably."""
    return np.exp(-((x - _F(cx)) ** 2) / _F(sigma2)) * np.exp(-((y - _F(cy)) ** 2) / _F(sigma2))


def _paint(img: np.ndarray, win, alpha: np.ndarray, color) -> None:
    """Blend ``color`` (3 values) into the window ``win`` of ``img`` (3 x H x W) with opacity ``alpha``."""
    region = img[:, win[0], win[1]]
    d = np.asarray(color, dtype=_F).reshape(3, 1, 1) - region
    d *= alpha
    region += d


def _add_noise(img: np.ndarray, rng: np.random.Generator, sigma: float) -> None:
    """Add zero-mean sensor noise of standard deviation ``sigma`` (uniform, same in all channels)."""
    n = rng.random(img.shape[-2:], dtype=_F)
    n -= _F(0.5)
    n *= _F(sigma * math.sqrt(12.0))
    img += n


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """A smooth random field (about unit amplitude) with ``cells`` x ``cells`` degrees of freedom.

    The field depends on the draws, not on ``size``: the same draws at 32 or 224 pixels give
    the same picture.
    """
    g = rng.standard_normal((cells, cells)).astype(_F)
    if size <= 64:
        return cv2.resize(g, (size, size), interpolation=cv2.INTER_CUBIC)
    g = cv2.resize(g, (64, 64), interpolation=cv2.INTER_CUBIC)  # cubic is slow; it is smooth by then
    return cv2.resize(g, (size, size), interpolation=cv2.INTER_LINEAR)


def _segment_distance(x, y, ax: float, ay: float, bx: float, by: float) -> np.ndarray:
    """Distance (units) from each pixel to the segment a-b."""
    dx, dy = _F(bx - ax), _F(by - ay)
    px, py = x - _F(ax), y - _F(ay)
    t = (px * dx + py * dy) / _F(max(float(dx * dx + dy * dy), 1e-12))
    np.clip(t, 0.0, 1.0, out=t)
    ex, ey = px - t * dx, py - t * dy
    return np.sqrt(ex * ex + ey * ey)


def _rounded_box_distance(x, y, cx: float, cy: float, hx: float, hy: float, radius: float) -> np.ndarray:
    """Signed distance to an axis-aligned box (half sizes hx, hy) dilated by ``radius``."""
    qx = np.abs(x - _F(cx)) - _F(hx)
    qy = np.abs(y - _F(cy)) - _F(hy)
    ox, oy = np.maximum(qx, 0.0), np.maximum(qy, 0.0)
    d = np.sqrt(ox * ox + oy * oy)
    d += np.minimum(np.maximum(qx, qy), 0.0)
    d -= _F(radius)
    return d


def _check_int(dataset: str, key: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise DataError(f"{dataset}: {key} must be an integer, got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise DataError(f"{dataset}: {key} must be >= {minimum}, got {value}")
    return int(value)


def _validate(dataset: str, n_train, n_test, image_size, seed, num_classes) -> tuple[int, int, int, int]:
    """Check the settings every generator shares; return them as plain ints."""
    n_train = _check_int(dataset, "n_train", n_train, 1)
    n_test = _check_int(dataset, "n_test", n_test, 1)
    image_size = _check_int(dataset, "image_size", image_size, 1)
    seed = _check_int(dataset, "seed", seed, 0)
    if not MIN_IMAGE_SIZE <= image_size <= MAX_IMAGE_SIZE:
        raise DataError(f"{dataset}: image_size must be between {MIN_IMAGE_SIZE} and {MAX_IMAGE_SIZE} "
                        f"pixels, got {image_size}")
    for key, n in (("n_train", n_train), ("n_test", n_test)):
        if n < num_classes:
            raise DataError(f"{dataset}: {key}={n} is smaller than the {num_classes} classes; "
                            f"every class needs at least one image in each split")
    n_bytes = (n_train + n_test) * 3 * image_size * image_size * 4
    if n_bytes > _MAX_BYTES:
        raise DataError(f"{dataset}: n_train + n_test = {n_train + n_test} images of {image_size} px would "
                        f"need {n_bytes / 2**30:.1f} GiB; ask for fewer or smaller images")
    return n_train, n_test, image_size, seed


def _split_rng(dataset: str, seed: int, split: str) -> np.random.Generator:
    """The generator that draws the labels and per-image seeds of one split of one dataset."""
    return np.random.default_rng([seed, _DATASET_KEYS[dataset], _SPLITS.index(split)])


def _image_rngs(image_seed: int) -> tuple[np.random.Generator, np.random.Generator, np.random.Generator]:
    """Independent (scene, label, noise) generators for one image.

    Everything that depends on the label is drawn from the second one only, so the same
    ``image_seed`` with another label gives the same scene, changed only inside the mask.
    """
    return tuple(np.random.default_rng([image_seed, k]) for k in range(3))  # type: ignore[return-value]


def _balanced_labels(rng: np.random.Generator, n: int, num_classes: int) -> np.ndarray:
    """``n`` labels in random order whose class counts differ by at most one."""
    return rng.permutation(np.arange(n) % num_classes).astype(np.int64)


def _render_splits(dataset: str, seed: int, sizes: dict[str, int], image_size: int, num_classes: int,
                   render: Callable[[int, int, str], np.ndarray]):
    """Draw balanced labels and render every image of both splits.

    ``render(image_seed, label, split)`` returns one 3 x S x S image; it is clipped to
    [0, 1] here. Returns ``{split: (images, labels)}`` as tensors.
    """
    out = {}
    for split in _SPLITS:
        rng = _split_rng(dataset, seed, split)
        labels = _balanced_labels(rng, sizes[split], num_classes)
        image_seeds = rng.integers(0, 2**62, sizes[split])
        images = np.empty((sizes[split], 3, image_size, image_size), dtype=_F)
        for i, label in enumerate(labels):
            images[i] = render(int(image_seeds[i]), int(label), split)
            np.clip(images[i], 0.0, 1.0, out=images[i])
        out[split] = (torch.from_numpy(images), torch.from_numpy(labels))
    return out


def _place_disks(rng: np.random.Generator, radii: np.ndarray,
                 accept: Callable[[np.ndarray, np.ndarray, float], np.ndarray],
                 box: tuple[float, float, float, float], min_gap: float) -> np.ndarray:
    """Rejection-sample disk centres (units) in ``box``, one per radius, without overlap.

    ``accept(x, y, r)`` says which candidate centres are allowed; disks keep ``min_gap``
    units between their rims. Where there is no room left (only at the smallest image
    sizes) the allowed candidate with the most clearance is taken, so the disks may touch.
    Returns a len(radii) x 2 array.
    """
    placed: list[tuple[float, float, float]] = []
    x0, x1, y0, y1 = box
    for r in map(float, radii):
        best, best_clearance = ((x0 + x1) / 2, (y0 + y1) / 2), -np.inf
        for _attempt in range(50):
            cx = rng.uniform(x0, x1, 32)
            cy = rng.uniform(y0, y1, 32)
            clearance = np.where(accept(cx, cy, r), np.inf, -np.inf)
            for px, py, pr in placed:
                clearance = np.minimum(clearance, np.hypot(cx - px, cy - py) - pr - r)
            i = int(np.argmax(clearance))
            if clearance[i] > best_clearance:
                best, best_clearance = (float(cx[i]), float(cy[i])), float(clearance[i])
            if best_clearance >= min_gap:
                break
        placed.append((best[0], best[1], r))
    return np.array([p[:2] for p in placed], dtype=np.float64).reshape(-1, 2)


# --------------------------------------------------------------------------------------
# 1. fundus photographs
# --------------------------------------------------------------------------------------
_FUNDUS_RETINA_R = 0.93          # radius of the visible retina (units)
_FUNDUS_DISC = (0.52, -0.03)     # optic disc centre
_FUNDUS_DISC_R = 0.13
_FUNDUS_MACULA = (-0.10, 0.03)   # fovea, centre of the relevant circle
_FUNDUS_MASK_R = 0.34            # relevant circle: about one optic disc diameter round the fovea
_FUNDUS_JITTER = 0.04            # the eye shifts by up to this (about 1.3 px at 64 px)
_FUNDUS_LESION_R = (0.045, 0.065)
_FUNDUS_MIN_LESION_PX = 0.85     # lesion radius never below this many pixels
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


def _draw_vessels(grid: _Grid, vessels, cx: float, cy: float) -> tuple[np.ndarray, np.ndarray]:
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
    return maps[True].astype(_F) / _F(255.0), maps[False].astype(_F) / _F(255.0)


def _paint_lesion(img: np.ndarray, grid: _Grid, rng: np.random.Generator, cx: float, cy: float, r: float) -> None:
    """A bright yellow exudate or a dark red hemorrhage (type and tint from ``rng``)."""
    if rng.integers(2):
        color, opacity = [1.0, rng.uniform(0.85, 0.95), rng.uniform(0.3, 0.5)], rng.uniform(0.6, 0.95)
    else:
        color, opacity = [rng.uniform(0.25, 0.35), 0.03, 0.02], rng.uniform(0.6, 0.9)
    r = max(r, _FUNDUS_MIN_LESION_PX / grid.ppu)
    win = grid.window(cx, cy, r)
    _paint(img, win, _coverage(_disk_distance(win[2], win[3], cx, cy, r), grid, 0.8) * _F(opacity), color)


def _render_fundus(grid: _Grid, image_seed: int, label: int, num_classes: int) -> np.ndarray:
    rng, label_rng, noise_rng = _image_rngs(image_seed)
    s = grid.size
    jx, jy = rng.uniform(-_FUNDUS_JITTER, _FUNDUS_JITTER, 2)
    gain = rng.uniform(0.8, 1.12)
    base = np.array([0.84, 0.36, 0.14]) * rng.uniform(0.9, 1.1, 3) * gain
    disc_r = _FUNDUS_DISC_R * rng.uniform(0.92, 1.08)
    dcx, dcy = _FUNDUS_DISC[0] + jx, _FUNDUS_DISC[1] + jy
    mcx, mcy = _FUNDUS_MACULA[0] + jx, _FUNDUS_MACULA[1] + jy
    x, y = grid.x - _F(jx), grid.y - _F(jy)
    r2 = x * x + y * y

    # background: vignetted orange-red retina with choroidal texture and a darker macula
    shade = r2 * _F(1.0 / _FUNDUS_RETINA_R**2)
    shade *= shade
    shade *= _F(-0.55)
    shade += _F(1.0)
    shade *= _F(rng.uniform(0.04, 0.08)) * _smooth_noise(rng, s, 7) + _F(1.0)
    shade *= _F(1.0) - _F(rng.uniform(0.25, 0.4)) * _gauss(grid.x, grid.y, mcx, mcy, 0.045)
    shade *= _F(1.0) + _F(0.25) * _gauss(grid.x, grid.y, dcx, dcy, 0.08)  # glow round the disc
    img = np.asarray(base, _F).reshape(3, 1, 1) * shade

    # vessels from the disc
    veins, arteries = _draw_vessels(grid, _fundus_vessels(rng), dcx, dcy)
    arteries *= _F(0.8)
    veins *= _F(0.85)
    _paint(img, grid.full, arteries, np.array([0.62, 0.13, 0.08]) * gain)
    _paint(img, grid.full, veins, np.array([0.42, 0.06, 0.05]) * gain)

    # optic disc: bright yellowish over the vessel roots, with a paler cup
    win = grid.window(dcx, dcy, 1.6 * disc_r)
    q = ((win[2] - _F(dcx)) ** 2 + (win[3] - _F(dcy)) ** 2) * _F(1 / disc_r**2)
    rim = np.sqrt(q)
    rim -= _F(1.0)
    rim *= _F(12.0)
    rim = _F(0.85) / (_F(1.0) + np.exp(rim))  # opaque centre, soft rim
    _paint(img, win, rim, np.array([1.0, 0.84, 0.5]) * min(gain, 1.0))
    _paint(img, win, np.exp(q * _F(-1 / 0.12)) * _F(0.7), [1.0, 0.97, 0.85])

    # lesions: inside the macula circle they decide the label ...
    lo, hi = _fundus_counts(label)
    radii_in = label_rng.uniform(*_FUNDUS_LESION_R, int(label_rng.integers(lo, hi + 1)))
    # room for anti-aliasing and the minimum lesion size; constant (scenes do not depend on S) from 32 px up
    margin = max(0.035, (0.4 + _FUNDUS_MIN_LESION_PX) / grid.ppu - _FUNDUS_LESION_R[0])
    reach = _FUNDUS_MASK_R - math.sqrt(2) * _FUNDUS_JITTER - margin  # always inside the fixed mask

    def inside(cx, cy, r):
        return np.hypot(cx - mcx, cy - mcy) <= reach - r

    box = (mcx - reach, mcx + reach, mcy - reach, mcy + reach)
    for (cx, cy), r in zip(_place_disks(label_rng, radii_in, inside, box, 0.015), radii_in):
        _paint_lesion(img, grid, label_rng, cx, cy, r)
    # ... elsewhere on the retina they are look-alike distractors in a number unrelated to the class
    radii_out = rng.uniform(*_FUNDUS_LESION_R, int(rng.integers(0, 4 * num_classes + 3)))

    def outside(cx, cy, r):
        return ((np.hypot(cx - mcx, cy - mcy) >= _FUNDUS_MASK_R + math.sqrt(2) * _FUNDUS_JITTER + r + margin + 0.01)
                & (np.hypot(cx - jx, cy - jy) <= _FUNDUS_RETINA_R - r - 0.06)
                & (np.hypot(cx - dcx, cy - dcy) >= disc_r + r + 0.04))

    lim = _FUNDUS_RETINA_R
    box = (jx - lim, jx + lim, jy - lim, jy + lim)
    for (cx, cy), r in zip(_place_disks(rng, radii_out, outside, box, 0.01), radii_out):
        _paint_lesion(img, grid, rng, cx, cy, r)

    # black outside the retina, then sensor noise
    img *= _coverage(np.sqrt(r2) - _F(_FUNDUS_RETINA_R), grid)
    _add_noise(img, noise_rng, 0.012)
    return img


def make_fundus(n_train: int = 160, n_test: int = 80, image_size: int = 64, seed: int = 0,
                num_classes: int = 2) -> StructuredDataset:
    """Synthetic retinal fundus photographs graded by lesions at the macula.

    Introduced in chapter 1 (``01_structured_images``). Imitates the paper's IDRiD macular
    edema task: a black frame round an orange-red retina, a bright yellowish optic disc on
    the right, dark red vessels curving from the disc round a darker macula.

    *Relevant*: the number of lesions (small bright yellow "exudates" and dark red
    "hemorrhages", mixed at random) inside a circle round the fovea whose radius is a little
    over one optic disc diameter (the region the paper's figure 5b marks), which is ``mask``. Class 0 ("normal") has 0 or 1 such lesion, class k >= 1
    has 3k - 1 to 3k + 1 of them; lesions vary in size, tint and contrast.
    *Distractors*: look-alike lesions elsewhere on the retina (0 to 4 * num_classes + 2 of
    them, drawn independently of the class), vessel shapes, brightness and colour balance,
    choroidal texture, a shift of the whole eye by up to 0.04 units (about 1.3 px at 64 px)
    and sensor noise. Lesions are at least ~1.7 px across, so they survive at 32 px.

    Parameters
    ----------
    n_train, n_test
        Images per split; classes are balanced (counts differ by at most one).
    image_size
        Side S of the square images, 16 to 256 pixels.
    seed
        Everything is drawn from ``seed``; the same seed gives identical tensors.
    num_classes
        2 (``["normal", "lesions"]``) or 3 (``["normal", "mild", "severe"]``).

    Returns
    -------
    StructuredDataset
        Name ``"fundus"``, images N x 3 x S x S float32 in [0, 1], ``mask`` the macula circle.

    Raises
    ------
    DataError
        For a bad size, split size, seed or number of classes.
    """
    if (isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer))
            or num_classes not in _FUNDUS_CLASS_NAMES):
        raise DataError(f"fundus: num_classes must be 2 or 3, got {num_classes!r}")
    num_classes = int(num_classes)
    n_train, n_test, image_size, seed = _validate("fundus", n_train, n_test, image_size, seed, num_classes)
    grid = _Grid(image_size)
    splits = _render_splits("fundus", seed, {"train": n_train, "test": n_test}, image_size, num_classes,
                            lambda image_seed, label, split: _render_fundus(grid, image_seed, label, num_classes))
    mask = _disk_distance(grid.x, grid.y, *_FUNDUS_MACULA, _FUNDUS_MASK_R) <= 0
    names = _FUNDUS_CLASS_NAMES[num_classes]
    counts = ", ".join(f"{name}: {lo}-{hi}" for name, (lo, hi) in zip(names, map(_fundus_counts, range(num_classes))))
    return StructuredDataset(
        name="fundus", x_train=splits["train"][0], y_train=splits["train"][1],
        x_test=splits["test"][0], y_test=splits["test"][1], class_names=list(names),
        mask=torch.from_numpy(mask), source="synthetic",
        description=(f"Synthetic fundus photographs: the class is the number of exudates/hemorrhages inside "
                     f"the macula circle ({counts}); lesions elsewhere, vessels, colour and a small shift are "
                     f"distractors."),
        meta={"seed": seed, "image_size": image_size, "generator": "make_fundus",
              "relevant": "number of lesions inside the macula circle (mask)",
              "distractors": "lesions outside the circle, vessels, brightness/colour, texture, shift, noise",
              "lesions_per_class": {name: _fundus_counts(k) for k, name in enumerate(names)}},
    )


# --------------------------------------------------------------------------------------
# 2. faces
# --------------------------------------------------------------------------------------
_FACE_CLASS_NAMES = ["neutral", "happy", "angry"]
_FACE_CENTRE_Y = 0.06
_FACE_JITTER = 0.03
_FACE_EYE_Y = -0.08
_FACE_BROW_Y = -0.33
_FACE_BROW_HALF = 0.1
_FACE_MOUTH_Y = 0.44
# class -> (mouth curvature range: + smile, - frown; brow tilt range in degrees: + inner ends down)
_FACE_EXPRESSIONS = {0: ((-0.015, 0.015), (-4.0, 4.0)),
                     1: ((0.11, 0.18), (-10.0, -2.0)),
                     2: ((-0.16, -0.10), (16.0, 28.0))}
# the relevant region: rounded boxes (cx, cy, half_x, half_y, radius) round both brows and the mouth
_FACE_MASK_BOXES = ((-0.26, -0.35, 0.14, 0.055, 0.11), (0.26, -0.35, 0.14, 0.055, 0.11),
                    (0.0, 0.44, 0.26, 0.08, 0.11))
_HAIR_COLORS = np.array([[0.08, 0.06, 0.05], [0.3, 0.18, 0.1], [0.55, 0.38, 0.2], [0.85, 0.7, 0.4],
                         [0.6, 0.25, 0.1], [0.7, 0.7, 0.7]])
_IRIS_COLORS = np.array([[0.3, 0.18, 0.08], [0.2, 0.35, 0.6], [0.25, 0.45, 0.25], [0.1, 0.07, 0.05]])


def _face_mask(grid: _Grid) -> np.ndarray:
    """The boxes round brows and mouth, grown by the half pixel that anti-aliasing can reach."""
    mask = np.zeros((grid.size, grid.size), bool)
    for cx, cy, hx, hy, rad in _FACE_MASK_BOXES:
        mask |= _rounded_box_distance(grid.x, grid.y, cx, cy, hx, hy, rad) <= 0.5 / grid.ppu
    return mask


def _face_background(grid: _Grid, rng: np.random.Generator) -> np.ndarray:
    c1, c2 = rng.uniform(0.05, 0.95, (2, 3, 1, 1)).astype(_F)
    angle = rng.uniform(0, 2 * np.pi)
    t = _F(0.5 * np.cos(angle)) * grid.x + _F(0.5 * np.sin(angle)) * grid.y
    t += _F(0.5)
    np.clip(t, 0, 1, out=t)
    img = c1 + (c2 - c1) * t
    texture = _smooth_noise(rng, grid.size, int(rng.integers(3, 12)))
    texture *= _F(rng.uniform(0.05, 0.15))
    img += rng.uniform(-1, 1, (3, 1, 1)).astype(_F) * texture
    if rng.random() < 0.4:  # stripes
        a, f, ph = rng.uniform(0, np.pi), rng.uniform(4, 14), rng.uniform(0, 2 * np.pi)
        stripes = np.sin(_F(f * np.cos(a)) * grid.x + _F(f * np.sin(a)) * grid.y + _F(ph))
        stripes *= _F(rng.uniform(0.05, 0.15))
        img += stripes
    return img


def _render_face(grid: _Grid, image_seed: int, label: int) -> np.ndarray:
    rng, label_rng, noise_rng = _image_rngs(image_seed)
    img = _face_background(grid, rng)
    fx, fy = rng.uniform(-_FACE_JITTER, _FACE_JITTER, 2)
    a, b = rng.uniform(0.5, 0.64), rng.uniform(0.78, 0.84)  # face half width and half height
    tone = rng.uniform(0, 1)
    skin = (1 - tone) * np.array([0.98, 0.83, 0.70]) + tone * np.array([0.42, 0.26, 0.16])
    skin = np.clip(skin * rng.uniform(0.95, 1.05, 3), 0, 1)
    hair = np.clip(_HAIR_COLORS[rng.integers(len(_HAIR_COLORS))] * rng.uniform(0.85, 1.15, 3), 0, 1)
    cloth = rng.uniform(0.05, 0.9, 3)
    cx, cy = fx, _FACE_CENTRE_Y + fy

    # hair behind the head (random length), shoulders, neck, head of hair, face
    hair_len = rng.uniform(-0.1, 0.8)
    top, half_w = cy - 0.75, a + 0.1
    win = grid.window(cx, (top + cy + hair_len) / 2, half_w, (cy + hair_len - top) / 2)
    d = _rounded_box_distance(win[2], win[3], cx, (top + cy + hair_len) / 2, half_w - 0.25,
                              (cy + hair_len - top) / 2 - 0.25, 0.25)
    _paint(img, win, _coverage(d, grid), hair)
    win = grid.window(cx, 1.25 + fy, 1.0, 0.42)
    _paint(img, win, _coverage(_ellipse_distance(win[2], win[3], cx, 1.25 + fy, 1.0, 0.42), grid), cloth)
    win = grid.window(cx, cy + 0.75, 0.22, 0.22)
    _paint(img, win, _coverage(_rounded_box_distance(win[2], win[3], cx, cy + 0.75, 0.18, 0.18, 0.02), grid),
           skin * 0.85)
    win = grid.window(cx, cy - 0.04, a + 0.07, b + 0.05)
    _paint(img, win, _coverage(_ellipse_distance(win[2], win[3], cx, cy - 0.04, a + 0.07, b + 0.05), grid), hair)
    win = grid.window(cx, cy, a, b)
    hairline = cy + rng.uniform(-0.7, -0.58)
    face = _coverage(_ellipse_distance(win[2], win[3], cx, cy, a, b), grid)
    face *= _coverage(_F(hairline) - win[3], grid)
    _paint(img, win, face, skin)
    side_shade = np.clip((win[2] - _F(cx)) * _F(rng.uniform(-1, 1) / a), 0, 1)  # light from one side
    side_shade *= _F(-0.12)
    img[:, win[0], win[1]] *= face * side_shade + _F(1.0)

    # eyes (identity: spacing, iris colour)
    eye_dx = rng.uniform(0.2, 0.28)
    iris = _IRIS_COLORS[rng.integers(len(_IRIS_COLORS))]
    for side in (-1, 1):
        ex, ey = cx + side * eye_dx, _FACE_EYE_Y + fy
        win = grid.window(ex, ey, 0.11)
        white = _ellipse_distance(win[2], win[3], ex, ey, 0.1, 0.05)
        _paint(img, win, _coverage(white, grid), [0.96, 0.96, 0.94])
        _paint(img, win, _coverage(np.maximum(_disk_distance(win[2], win[3], ex, ey, 0.042), white), grid), iris)
        _paint(img, win, _coverage(_disk_distance(win[2], win[3], ex, ey, 0.018), grid), [0.02, 0.02, 0.02])

    # nose: a shaded ridge and two nostrils
    nose_dx = rng.uniform(-0.02, 0.02)
    win = grid.window(cx, fy + 0.1, 0.12)
    ridge = _segment_distance(win[2], win[3], cx, fy, cx + nose_dx, fy + 0.17) - _F(0.012)
    _paint(img, win, _coverage(ridge, grid) * _F(0.5), skin * 0.7)
    for side in (-1, 1):
        nostril = _ellipse_distance(win[2], win[3], cx + nose_dx + side * 0.045, fy + 0.19, 0.025, 0.017)
        _paint(img, win, _coverage(nostril, grid), skin * 0.45)

    # the expression: brows and mouth
    (k_lo, k_hi), (t_lo, t_hi) = _FACE_EXPRESSIONS[label]
    curvature = label_rng.uniform(k_lo, k_hi)
    tilt = np.deg2rad(label_rng.uniform(t_lo, t_hi))
    lift = label_rng.uniform(0.02, 0.05) if label == 1 else label_rng.uniform(-0.01, 0.01)  # happy: raised
    brow_color = hair * 0.7
    brow_half_thick = rng.uniform(0.03, 0.038)
    for side in (-1, 1):
        bx, by = cx + side * eye_dx, _FACE_BROW_Y + fy - lift
        dx, dy = _FACE_BROW_HALF * np.cos(tilt), _FACE_BROW_HALF * np.sin(tilt)
        win = grid.window(bx, by, _FACE_BROW_HALF + 0.05)
        # positive tilt: the inner end (towards the nose) is lower, a frown
        d = _segment_distance(win[2], win[3], bx - side * dx, by + dy, bx + side * dx, by - dy)
        d -= _F(brow_half_thick)
        _paint(img, win, _coverage(d, grid), brow_color)
    half_width = rng.uniform(0.17, 0.24)
    my = _FACE_MOUTH_Y + fy
    win = grid.window(cx, my, half_width + 0.06, 0.14)
    u = np.clip((win[2] - _F(cx)) / _F(half_width), -1, 1)
    curve_y = _F(my) + _F(curvature) * (_F(0.5) - u * u)  # centre lower than the corners when smiling
    slope = _F(-2 * curvature / half_width) * u
    d_curve = np.abs(win[3] - curve_y) / np.sqrt(_F(1.0) + slope * slope)
    ex, ey = np.abs(win[2] - _F(cx)) - _F(half_width), win[3] - _F(my - curvature / 2)
    d_corner = np.sqrt(ex * ex + ey * ey)
    d = np.where(ex > 0, d_corner, d_curve)
    d -= _F(rng.uniform(0.03, 0.038))
    lips = np.clip(np.array([0.62, 0.2, 0.2]) * (0.6 + 0.4 * skin / skin.max()) * rng.uniform(0.8, 1.1), 0, 1)
    _paint(img, win, _coverage(d, grid), lips)

    _add_noise(img, noise_rng, 0.015)
    return img


def make_faces(n_train: int = 160, n_test: int = 80, image_size: int = 64, seed: int = 0) -> StructuredDataset:
    """Synthetic face images whose expression is read from the mouth and the brows.

    Introduced in chapter 1 (``01_structured_images``). Imitates the paper's JAFFE task with
    three expressions, ``["neutral", "happy", "angry"]``: a frontal face (hair, eyes, nose,
    brows, mouth, neck and shoulders) in front of a varying background.

    *Relevant*: the mouth curvature (flat / smile / frown, with gaps between the ranges)
    and the brows (level / raised with the outer ends a little lower / inner ends pulled
    down into a V). ``mask``
    is the union of dilated boxes round both brows and round the mouth; they hold every
    brow and mouth pixel for every allowed shift and identity.
    *Distractors*: identity (face width and height, skin tone, eye spacing and iris colour,
    hair colour, hairline and length, clothing), the background (random colour gradient,
    smooth texture, sometimes stripes), a shift of up to 0.03 units and pixel noise. None
    of them depends on the class.

    Parameters
    ----------
    n_train, n_test
        Images per split; classes are balanced (counts differ by at most one).
    image_size
        Side S of the square images, 16 to 256 pixels.
    seed
        Everything is drawn from ``seed``; the same seed gives identical tensors.

    Returns
    -------
    StructuredDataset
        Name ``"faces"``, images N x 3 x S x S float32 in [0, 1], ``mask`` round brows and mouth.

    Raises
    ------
    DataError
        For a bad size, split size or seed.
    """
    n_train, n_test, image_size, seed = _validate("faces", n_train, n_test, image_size, seed, 3)
    grid = _Grid(image_size)
    splits = _render_splits("faces", seed, {"train": n_train, "test": n_test}, image_size, 3,
                            lambda image_seed, label, split: _render_face(grid, image_seed, label))
    return StructuredDataset(
        name="faces", x_train=splits["train"][0], y_train=splits["train"][1],
        x_test=splits["test"][0], y_test=splits["test"][1], class_names=list(_FACE_CLASS_NAMES),
        mask=torch.from_numpy(_face_mask(grid)), source="synthetic",
        description=("Synthetic faces: the expression (neutral, happy, angry) is decided by the mouth curvature "
                     "and the brow tilt only; identity, hair, clothing and background are distractors."),
        meta={"seed": seed, "image_size": image_size, "generator": "make_faces",
              "relevant": "mouth curvature and brow tilt (mask: boxes round brows and mouth)",
              "distractors": "face shape, skin, eyes, hair, clothing, background, shift, noise"},
    )


# --------------------------------------------------------------------------------------
# 3. OCT retinal thickness maps with visual-field test points
# --------------------------------------------------------------------------------------
_OCT_CLASS_NAMES = ["early", "moderate", "severe"]
_OCT_THINNING = ((0.04, 0.16), (0.28, 0.40), (0.52, 0.64))  # mean thinning at the test points per class
_OCT_SPACING, _OCT_FIELD_R = 0.24, 0.75
_OCT_POINT_R, _OCT_MIN_POINT_PX = 0.07, 1.2  # radius of the relevant disk round each test point
_OCT_JITTER = 0.03
# thickness (0 thin .. 1 thick) -> colour, like a clinical thickness map
_OCT_CMAP_T = np.array([0.0, 0.2, 0.38, 0.55, 0.7, 0.85, 1.0])
_OCT_CMAP_RGB = np.array([[0.0, 0.0, 0.25], [0.0, 0.2, 0.85], [0.0, 0.7, 0.8], [0.2, 0.85, 0.2],
                          [0.97, 0.9, 0.1], [0.97, 0.45, 0.05], [0.85, 0.05, 0.05]])
_OCT_LUT_SIZE = 1024
_OCT_LUT = np.stack([np.interp(np.linspace(0, 1, _OCT_LUT_SIZE), _OCT_CMAP_T, _OCT_CMAP_RGB[:, c])
                     for c in range(3)]).astype(_F)


def _oct_points() -> np.ndarray:
    """Visual-field test points (units): a square grid inside a central circle, 32 points."""
    c = (np.arange(-3, 3) + 0.5) * _OCT_SPACING
    gx, gy = np.meshgrid(c, c)
    keep = np.hypot(gx, gy) <= _OCT_FIELD_R
    return np.stack([gx[keep], gy[keep]], axis=1)


def _oct_point_weights(grid: _Grid) -> tuple[np.ndarray, np.ndarray]:
    """(mask, soft weight) of the disks round the test points; the weight is 0 outside the mask."""
    radius = max(_OCT_POINT_R, _OCT_MIN_POINT_PX / grid.ppu)
    d = np.full((grid.size, grid.size), np.inf, _F)
    for px, py in _oct_points():
        d = np.minimum(d, _disk_distance(grid.x, grid.y, px, py, 0.0))
    mask = d <= radius
    weight = np.clip((radius - d) * _F(2.0 * grid.ppu), 0, 1).astype(_F)
    return mask, weight


def _render_oct(grid: _Grid, image_seed: int, label: int, weight_idx: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """One thickness map; ``weight`` holds the test-point weights at the flat pixel indices ``weight_idx``."""
    rng, label_rng, noise_rng = _image_rngs(image_seed)
    s = grid.size
    jx, jy = rng.uniform(-_OCT_JITTER, _OCT_JITTER, 2)
    # healthy thickness: thin foveal pit, thick ring, thinner periphery, thicker towards the disc (right)
    ring = rng.uniform(0.36, 0.46)
    x, y = grid.x - _F(jx), grid.y - _F(jy)
    bump = np.sqrt(x * x + y * y)
    bump -= _F(ring)
    bump *= _F(1 / 0.32)
    bump *= bump
    np.exp(-bump, out=bump)
    healthy = bump * (_F(0.62) * (1 + _F(0.12) * np.tanh(2 * x)))
    healthy += _F(0.3)
    healthy -= _F(0.28) * _gauss(x, y, 0, 0, 0.13**2)
    scale = rng.uniform(0.9, 1.08)
    healthy *= _F(0.04 * scale) * _smooth_noise(rng, s, 6) + _F(scale)

    # thinning at the test points decides the class ...
    target = label_rng.uniform(*_OCT_THINNING[label])
    field = 1 + 0.4 * _smooth_noise(rng, s, 4).ravel()[weight_idx]
    field *= 1 + rng.uniform(-0.5, 0.5) * np.tanh(np.broadcast_to(grid.y / 0.15, (s, s)).ravel()[weight_idx])
    relevant = np.clip(field, 0.2, None)  # arcuate-like: smooth, with an upper/lower asymmetry
    for _ in range(5):  # scale to the target mean, respecting the cap
        relevant *= target / float((weight * relevant).sum() / weight.sum())
        np.clip(relevant, 0, 0.95, out=relevant)
    # ... thinning anywhere else is random and unrelated to it
    level = rng.uniform(0.0, _OCT_THINNING[-1][1])
    thinning = _smooth_noise(rng, s, int(rng.integers(3, 7)))
    thinning *= _F(0.5)
    thinning += _F(1)
    np.clip(thinning, 0.1, None, out=thinning)
    thinning *= _F(level)
    np.clip(thinning, 0, 0.95, out=thinning)
    flat = thinning.reshape(-1)
    flat[weight_idx] = weight * relevant + (1 - weight) * flat[weight_idx]

    thickness = healthy * (1 - thinning)
    _add_noise(thickness, noise_rng, 0.012)
    idx = thickness * _F(_OCT_LUT_SIZE - 1)
    np.clip(idx, 0, _OCT_LUT_SIZE - 1, out=idx)
    return np.take(_OCT_LUT, idx.astype(np.intp), axis=1)


def make_oct_thickness(n_train: int = 160, n_test: int = 80, image_size: int = 64, seed: int = 0) -> StructuredDataset:
    """Synthetic retinal-thickness maps graded by thinning at visual-field test points.

    Introduced in chapter 1 (``01_structured_images``). Imitates the paper's glaucoma task:
    a colour-coded thickness map of the macula (blue thin, red thick; a thin foveal pit and
    a thick ring round it) and a fixed grid of 32 visual-field test points in a central
    circle, like the Humphrey 10-2 points in the paper's figure 6.

    *Relevant*: the mean thinning (fraction of healthy thickness lost) in small disks round
    the test points, which is ``mask``. Classes ``["early", "moderate", "severe"]`` have
    mean thinning in [0.04, 0.16], [0.28, 0.40] and [0.52, 0.64]; it varies smoothly from
    point to point (with an upper/lower hemifield asymmetry, as in glaucoma).
    *Distractors*: thinning everywhere between and outside the disks (a random smooth field
    whose level, 0 to 0.64, is drawn independently of the class), the healthy thickness
    profile (ring radius, overall thickness, texture), a shift of the anatomy by up to 0.03
    units and noise. The test points stay fixed in the image, as a perimeter's grid does.

    Parameters
    ----------
    n_train, n_test
        Images per split; classes are balanced (counts differ by at most one).
    image_size
        Side S of the square images, 16 to 256 pixels (below ~32 px the disks merge).
    seed
        Everything is drawn from ``seed``; the same seed gives identical tensors.

    Returns
    -------
    StructuredDataset
        Name ``"oct"``, images N x 3 x S x S float32 in [0, 1], ``mask`` the disks round the
        test points; ``meta["test_points"]`` holds their (x, y) coordinates in [-1, 1].

    Raises
    ------
    DataError
        For a bad size, split size or seed.
    """
    n_train, n_test, image_size, seed = _validate("oct", n_train, n_test, image_size, seed, 3)
    grid = _Grid(image_size)
    mask, weight = _oct_point_weights(grid)
    weight_idx = np.flatnonzero(weight)
    weight_vals = weight.reshape(-1)[weight_idx]
    splits = _render_splits("oct", seed, {"train": n_train, "test": n_test}, image_size, 3,
                            lambda image_seed, label, split: _render_oct(grid, image_seed, label, weight_idx,
                                                                         weight_vals))
    return StructuredDataset(
        name="oct", x_train=splits["train"][0], y_train=splits["train"][1],
        x_test=splits["test"][0], y_test=splits["test"][1], class_names=list(_OCT_CLASS_NAMES),
        mask=torch.from_numpy(mask), source="synthetic",
        description=("Synthetic OCT thickness maps: severity (early, moderate, severe) is the mean thinning at "
                     "32 visual-field test points; thinning elsewhere is random and irrelevant."),
        meta={"seed": seed, "image_size": image_size, "generator": "make_oct_thickness",
              "relevant": "mean thinning in the disks round the visual-field test points (mask)",
              "distractors": "thinning elsewhere, healthy thickness profile, shift, noise",
              "test_points": _oct_points().tolist(),
              "thinning_per_class": dict(zip(_OCT_CLASS_NAMES, _OCT_THINNING))},
    )


# --------------------------------------------------------------------------------------
# 4. scikit-learn digits in clutter
# --------------------------------------------------------------------------------------
_DIGIT_BOX = (0.09, 0.36)  # target square: offset and side as fractions of the image side


@lru_cache(maxsize=1)
def _sklearn_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 1797 8 x 8 digits bundled with scikit-learn, as float32 in [0, 1], and their labels."""
    from sklearn.datasets import load_digits  # deferred: importing sklearn is slow

    bunch = load_digits()
    images = (bunch.images / 16.0).astype(_F)
    images.setflags(write=False)
    return images, bunch.target.astype(np.int64)


def _digit_target_box(image_size: int) -> tuple[int, int]:
    """(offset, side) in pixels of the square the labelled digit is pasted into."""
    return int(round(_DIGIT_BOX[0] * image_size)), int(round(_DIGIT_BOX[1] * image_size))


def _digit_sprite(digit: np.ndarray, side: int) -> np.ndarray:
    interp = cv2.INTER_LINEAR if side >= 8 else cv2.INTER_AREA
    return np.clip(cv2.resize(digit, (side, side), interpolation=interp), 0, 1)


def _split_digit_pools(rng: np.random.Generator, labels: np.ndarray, need: dict[str, np.ndarray],
                       num_classes: int):
    """Disjoint source digits: the targets per split and class, then a distractor pool per split."""
    order = rng.permutation(len(labels))
    targets: dict[str, dict[int, np.ndarray]] = {split: {} for split in _SPLITS}
    used = np.zeros(len(labels), bool)
    for c in range(num_classes):
        of_class = order[labels[order] == c]
        n_tr, n_te = int(need["train"][c]), int(need["test"][c])
        if n_tr + n_te > len(of_class):
            raise DataError(f"digits-clutter: n_train and n_test need {n_tr} + {n_te} distinct images of digit {c} "
                            f"but scikit-learn's digits have only {len(of_class)}; ask for fewer images")
        targets["train"][c], targets["test"][c] = of_class[:n_tr], of_class[n_tr:n_tr + n_te]
        used[of_class[:n_tr + n_te]] = True
    rest = order[~used[order]]
    if len(rest) < 20:
        raise DataError(f"digits-clutter: n_train + n_test leave only {len(rest)} digits for the clutter "
                        f"(20 needed); ask for fewer images")
    return targets, {"train": rest[0::2], "test": rest[1::2]}


def _render_digits(grid: _Grid, image_seed: int, target: np.ndarray, pool: np.ndarray, digits: np.ndarray,
                   used_sources: set) -> np.ndarray:
    """One canvas with ``target`` (8 x 8) in the fixed square and distractors drawn from ``pool``."""
    rng, label_rng, noise_rng = _image_rngs(image_seed)
    s = grid.size
    off, side = _digit_target_box(s)
    canvas = _smooth_noise(rng, s, int(rng.integers(4, 10)))
    canvas *= _F(rng.uniform(0.04, 0.12))
    canvas += _F(rng.uniform(0.05, 0.3))
    t0, t1 = -1 + 2 * (_DIGIT_BOX[0] - 0.02), -1 + 2 * (_DIGIT_BOX[0] + _DIGIT_BOX[1] + 0.02)  # target square, units

    # distractors: other digits and digit fragments anywhere but the target square
    for _ in range(int(rng.integers(3, 7))):
        src = int(pool[rng.integers(len(pool))])
        sprite = digits[src].copy()
        if rng.random() < 0.5:  # a fragment: cut away everything beyond a random row or column
            cut, edge = int(rng.integers(3, 6)), int(rng.integers(4))
            view = sprite if edge < 2 else sprite.T
            if edge % 2:
                view[:, cut:] = 0
            else:
                view[:, :cut] = 0
        size_u = 2 * _DIGIT_BOX[1] * rng.uniform(0.6, 1.1)
        contrast, ink = rng.uniform(0.4, 0.95), rng.uniform(0.6, 1.0)
        for _attempt in range(50):  # top-left corner in units; the box must avoid the target square
            ux, uy = rng.uniform(-1.0 - 0.3 * size_u, 1.0 - 0.7 * size_u, 2)
            if ux >= t1 or uy >= t1 or ux + size_u <= t0 or uy + size_u <= t0:
                break
        else:
            continue
        px = max(2, int(round(size_u * grid.ppu)))
        x0, y0 = int(round(grid.to_px(ux) + 0.5)), int(round(grid.to_px(uy) + 0.5))
        rows, cols = slice(max(y0, 0), min(y0 + px, s)), slice(max(x0, 0), min(x0 + px, s))
        if rows.start >= rows.stop or cols.start >= cols.stop:
            continue
        alpha = _digit_sprite(sprite, px)[rows.start - y0:rows.stop - y0, cols.start - x0:cols.stop - x0]
        alpha *= _F(contrast)
        rr, cc = np.arange(rows.start, rows.stop)[:, None], np.arange(cols.start, cols.stop)[None, :]
        alpha[(rr >= off) & (rr < off + side) & (cc >= off) & (cc < off + side)] = 0  # rounding safety
        canvas[rows, cols] += alpha * (_F(ink) - canvas[rows, cols])
        used_sources.add(src)

    # the labelled digit, always in the same square
    alpha = _digit_sprite(target, side) * _F(label_rng.uniform(0.75, 1.0))
    box = canvas[off:off + side, off:off + side]
    box += alpha * (_F(label_rng.uniform(0.8, 1.0)) - box)
    _add_noise(canvas, noise_rng, 0.03)
    return np.broadcast_to(canvas, (3, s, s))


def make_digits_in_clutter(n_train: int = 300, n_test: int = 200, image_size: int = 64, seed: int = 0,
                           num_classes: int = 10) -> StructuredDataset:
    """Real handwritten digits pasted at a fixed place on a cluttered canvas.

    Introduced in chapter 1 (``01_structured_images``). Uses scikit-learn's bundled 8 x 8
    digits (``sklearn.datasets.load_digits``, 1797 real images, no download), upscaled and
    shown as grey replicated to 3 channels.

    *Relevant*: the digit pasted into a fixed square in the upper-left quadrant (side
    0.36 S at offset 0.09 S from the top-left corner), which is ``mask``. The label is that
    digit (classes ``"0"`` .. ``str(num_classes - 1)``).
    *Distractors*: 3 to 6 other digits and digit fragments (any digit 0-9, random size,
    contrast and position, never inside the square), background level and smooth texture,
    and pixel noise.

    Train and test use disjoint source digits (targets *and* distractors), drawn from a
    seeded permutation; ``meta["train_sources"]`` and ``meta["test_sources"]`` list the
    indices into ``load_digits()`` each split uses.

    Parameters
    ----------
    n_train, n_test
        Images per split; classes are balanced (counts differ by at most one). Each class
        has about 178 source digits for both splits together.
    image_size
        Side S of the square images, 16 to 256 pixels.
    seed
        Everything is drawn from ``seed``; the same seed gives identical tensors.
    num_classes
        Use the digits 0 .. num_classes - 1 as classes (2 to 10).

    Returns
    -------
    StructuredDataset
        Name ``"digits-clutter"``, source ``"embedded"``, images N x 3 x S x S float32 in
        [0, 1], ``mask`` the paste square.

    Raises
    ------
    DataError
        For a bad size, split size, seed or number of classes, or when more distinct digits
        are requested than scikit-learn has.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or not 2 <= num_classes <= 10:
        raise DataError(f"digits-clutter: num_classes must be an integer from 2 to 10, got {num_classes!r}")
    num_classes = int(num_classes)
    n_train, n_test, image_size, seed = _validate("digits-clutter", n_train, n_test, image_size, seed, num_classes)
    digits, digit_labels = _sklearn_digits()
    grid = _Grid(image_size)
    pool_rng = np.random.default_rng([seed, _DATASET_KEYS["digits-clutter"], 9])
    need = {split: np.bincount(np.arange(n) % num_classes, minlength=num_classes)
            for split, n in (("train", n_train), ("test", n_test))}
    targets, pools = _split_digit_pools(pool_rng, digit_labels, need, num_classes)

    sources: dict[str, set] = {split: set() for split in _SPLITS}
    taken: dict[tuple[str, int], int] = {}

    def render(image_seed, label, split):
        k = taken.get((split, label), 0)
        taken[(split, label)] = k + 1
        src = int(targets[split][label][k])
        sources[split].add(src)
        return _render_digits(grid, image_seed, digits[src], pools[split], digits, sources[split])

    splits = _render_splits("digits-clutter", seed, {"train": n_train, "test": n_test}, image_size, num_classes,
                            render)
    off, side = _digit_target_box(image_size)
    mask = torch.zeros(image_size, image_size, dtype=torch.bool)
    mask[off:off + side, off:off + side] = True
    return StructuredDataset(
        name="digits-clutter", x_train=splits["train"][0], y_train=splits["train"][1],
        x_test=splits["test"][0], y_test=splits["test"][1], class_names=[str(c) for c in range(num_classes)],
        mask=mask, source="embedded",
        description=("scikit-learn's handwritten digits pasted into a fixed square (upper left) among other "
                     "digits and fragments; the label is the digit in the square."),
        meta={"seed": seed, "image_size": image_size, "generator": "make_digits_in_clutter",
              "relevant": "the digit in the fixed paste square (mask)",
              "distractors": "other digits and fragments outside the square, background, noise",
              "paste_box": {"offset": off, "side": side},
              "train_sources": sorted(sources["train"]), "test_sources": sorted(sources["test"])},
    )


# --------------------------------------------------------------------------------------
# dispatch
# --------------------------------------------------------------------------------------
_GENERATORS: dict[str, Callable[..., StructuredDataset]] = {
    "fundus": make_fundus,
    "faces": make_faces,
    "oct": make_oct_thickness,
    "digits-clutter": make_digits_in_clutter,
}


def load_synthetic(name: str, **kwargs) -> StructuredDataset:
    """Build one of the embedded datasets by name.

    Introduced in chapter 1 (``01_structured_images``).

    Parameters
    ----------
    name
        One of :data:`SYNTHETIC_DATASETS`: ``"fundus"``, ``"faces"``, ``"oct"``,
        ``"digits-clutter"`` (case and ``_`` for ``-`` do not matter).
    **kwargs
        Passed to the generator (:func:`make_fundus`, :func:`make_faces`,
        :func:`make_oct_thickness`, :func:`make_digits_in_clutter`), e.g. ``image_size=32``.

    Returns
    -------
    StructuredDataset

    Raises
    ------
    DataError
        For an unknown name (the message lists the known ones), a setting the generator does
        not take, or a bad value.
    """
    key = name.strip().lower().replace("_", "-") if isinstance(name, str) else None
    if key not in _GENERATORS:
        raise DataError(f"unknown synthetic dataset {name!r}; known: {', '.join(SYNTHETIC_DATASETS)}")
    generator = _GENERATORS[key]
    params = inspect.signature(generator).parameters
    unknown = sorted(set(kwargs) - set(params))
    if unknown:
        raise DataError(f"{key}: unknown setting(s) {', '.join(unknown)}; "
                        f"{generator.__name__} takes {', '.join(params)}")
    return generator(**kwargs)
