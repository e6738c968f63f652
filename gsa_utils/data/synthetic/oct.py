"""Synthetic OCT retinal thickness maps: thinning at the visual-field test points decides the stage."""

from __future__ import annotations

import numpy as np

from ..base import StructuredDataset
from .drawing import (
    F32,
    Grid,
    add_noise,
    disk_distance,
    gauss,
    image_rngs,
    smooth_noise,
    synthetic_dataset,
    validate_request,
)

_OCT_CLASS_NAMES = ["early", "moderate", "severe"]
_OCT_THINNING = ((0.04, 0.16), (0.28, 0.40), (0.52, 0.64))  # mean thinning at the test points per class
_OCT_SPACING, _OCT_FIELD_R = 0.24, 0.75
_OCT_POINT_R, _OCT_MIN_POINT_PX = 0.07, 1.2  # radius of the relevant disk round each test point
_OCT_JITTER = 0.03
# thickness (0 thin .. 1 thick) -> colour, like a clinical thickness map
_OCT_CMAP_T = np.array([0.0, 0.2, 0.38, 0.55, 0.7, 0.85, 1.0])
_OCT_CMAP_RGB = np.array(
    [
        [0.0, 0.0, 0.25],
        [0.0, 0.2, 0.85],
        [0.0, 0.7, 0.8],
        [0.2, 0.85, 0.2],
        [0.97, 0.9, 0.1],
        [0.97, 0.45, 0.05],
        [0.85, 0.05, 0.05],
    ]
)
_OCT_LUT_SIZE = 1024
_OCT_LUT = np.stack(
    [np.interp(np.linspace(0, 1, _OCT_LUT_SIZE), _OCT_CMAP_T, _OCT_CMAP_RGB[:, c]) for c in range(3)]
).astype(F32)


def _oct_points() -> np.ndarray:
    """Visual-field test points (units): a square grid inside a central circle, 32 points."""
    c = (np.arange(-3, 3) + 0.5) * _OCT_SPACING
    gx, gy = np.meshgrid(c, c)
    keep = np.hypot(gx, gy) <= _OCT_FIELD_R
    return np.stack([gx[keep], gy[keep]], axis=1)


def _oct_point_weights(grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """(mask, soft weight) of the disks round the test points; the weight is 0 outside the mask."""
    radius = max(_OCT_POINT_R, _OCT_MIN_POINT_PX / grid.ppu)
    d = np.full((grid.size, grid.size), np.inf, F32)
    for px, py in _oct_points():
        d = np.minimum(d, disk_distance(grid.x, grid.y, px, py, 0.0))
    mask = d <= radius
    weight = np.clip((radius - d) * F32(2.0 * grid.ppu), 0, 1).astype(F32)
    return mask, weight


def _render_oct(grid: Grid, image_seed: int, label: int, weight_idx: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """One thickness map; ``weight`` holds the test-point weights at the flat pixel indices ``weight_idx``."""
    rng, label_rng, noise_rng = image_rngs(image_seed)
    s = grid.size
    jx, jy = rng.uniform(-_OCT_JITTER, _OCT_JITTER, 2)
    # healthy thickness: thin foveal pit, thick ring, thinner periphery, thicker towards the disc (right)
    ring = rng.uniform(0.36, 0.46)
    x, y = grid.x - F32(jx), grid.y - F32(jy)
    bump = np.sqrt(x * x + y * y)
    bump -= F32(ring)
    bump *= F32(1 / 0.32)
    bump *= bump
    np.exp(-bump, out=bump)
    healthy = bump * (F32(0.62) * (1 + F32(0.12) * np.tanh(2 * x)))
    healthy += F32(0.3)
    healthy -= F32(0.28) * gauss(x, y, 0, 0, 0.13**2)
    scale = rng.uniform(0.9, 1.08)
    healthy *= F32(0.04 * scale) * smooth_noise(rng, s, 6) + F32(scale)

    # thinning at the test points decides the class ...
    target = label_rng.uniform(*_OCT_THINNING[label])
    field = 1 + 0.4 * smooth_noise(rng, s, 4).ravel()[weight_idx]
    field *= 1 + rng.uniform(-0.5, 0.5) * np.tanh(np.broadcast_to(grid.y / 0.15, (s, s)).ravel()[weight_idx])
    relevant = np.clip(field, 0.2, None)  # arcuate-like: smooth, with an upper/lower asymmetry
    for _ in range(5):  # scale to the target mean, respecting the cap
        relevant *= target / float((weight * relevant).sum() / weight.sum())
        np.clip(relevant, 0, 0.95, out=relevant)
    # ... thinning anywhere else is random and unrelated to it
    level = rng.uniform(0.0, _OCT_THINNING[-1][1])
    thinning = smooth_noise(rng, s, int(rng.integers(3, 7)))
    thinning *= F32(0.5)
    thinning += F32(1)
    np.clip(thinning, 0.1, None, out=thinning)
    thinning *= F32(level)
    np.clip(thinning, 0, 0.95, out=thinning)
    flat = thinning.reshape(-1)
    flat[weight_idx] = weight * relevant + (1 - weight) * flat[weight_idx]

    thickness = healthy * (1 - thinning)
    add_noise(thickness, noise_rng, 0.012)
    idx = thickness * F32(_OCT_LUT_SIZE - 1)
    np.clip(idx, 0, _OCT_LUT_SIZE - 1, out=idx)
    return np.take(_OCT_LUT, idx.astype(np.intp), axis=1)


def make_oct_thickness(n_train: int = 160, n_test: int = 80, image_size: int = 64, seed: int = 0) -> StructuredDataset:
    """Synthetic retinal-thickness maps graded by thinning at visual-field test points.

    Introduced in chapter 1 (``01_structured_images``). Imitates the paper's glaucoma task: a
    colour-coded thickness map of the macula (blue thin, red thick) and a fixed grid of 32 test
    points, like the Humphrey 10-2 points of the paper's figure 6 (``meta["test_points"]``).

    *Relevant* (``mask``): the mean thinning in small disks round the test points, in [0.04, 0.16],
    [0.28, 0.40] and [0.52, 0.64] for ``["early", "moderate", "severe"]``. *Distractors*: thinning
    elsewhere (a smooth field whose level is drawn independently of the class), the healthy
    profile, a shift of up to 0.03 units and noise. Below about 32 px the disks merge.
    """
    request = validate_request("oct", n_train, n_test, image_size, seed, 3)
    grid = Grid(request.image_size)
    mask, weight = _oct_point_weights(grid)
    weight_idx = np.flatnonzero(weight)
    weight_vals = weight.reshape(-1)[weight_idx]
    return synthetic_dataset(
        "oct",
        request,
        _OCT_CLASS_NAMES,
        lambda image_seed, label, split: _render_oct(grid, image_seed, label, weight_idx, weight_vals),
        mask,
        "Synthetic OCT thickness maps: severity (early, moderate, severe) is the mean thinning at "
        "32 visual-field test points; thinning elsewhere is random and irrelevant.",
        relevant="mean thinning in the disks round the visual-field test points (mask)",
        test_points=_oct_points().tolist(),
        thinning_per_class=dict(zip(_OCT_CLASS_NAMES, _OCT_THINNING)),
    )
