"""Synthetic faces: brows and mouth decide the expression (JAFFE-like)."""

from __future__ import annotations

import numpy as np

from ..base import StructuredDataset
from .drawing import (
    F32,
    Grid,
    add_noise,
    coverage,
    disk_distance,
    ellipse_distance,
    image_rngs,
    paint,
    rounded_box_distance,
    segment_distance,
    smooth_noise,
    synthetic_dataset,
    validate_request,
)

_FACE_CLASS_NAMES = ["neutral", "happy", "angry"]
_FACE_CENTRE_Y = 0.06
_FACE_JITTER = 0.03
_FACE_EYE_Y = -0.08
_FACE_BROW_Y = -0.33
_FACE_BROW_HALF = 0.1
_FACE_MOUTH_Y = 0.44
# class -> (mouth curvature range: + smile, - frown; brow tilt range in degrees: + inner ends down)
_FACE_EXPRESSIONS = {
    0: ((-0.015, 0.015), (-4.0, 4.0)),
    1: ((0.11, 0.18), (-10.0, -2.0)),
    2: ((-0.16, -0.10), (16.0, 28.0)),
}
# the relevant region: rounded boxes (cx, cy, half_x, half_y, radius) round both brows and the mouth
_FACE_MASK_BOXES = ((-0.26, -0.35, 0.14, 0.055, 0.11), (0.26, -0.35, 0.14, 0.055, 0.11), (0.0, 0.44, 0.26, 0.08, 0.11))
_HAIR_COLORS = np.array(
    [[0.08, 0.06, 0.05], [0.3, 0.18, 0.1], [0.55, 0.38, 0.2], [0.85, 0.7, 0.4], [0.6, 0.25, 0.1], [0.7, 0.7, 0.7]]
)
_IRIS_COLORS = np.array([[0.3, 0.18, 0.08], [0.2, 0.35, 0.6], [0.25, 0.45, 0.25], [0.1, 0.07, 0.05]])


def _face_mask(grid: Grid) -> np.ndarray:
    """The boxes round brows and mouth, grown by the half pixel that anti-aliasing can reach."""
    mask = np.zeros((grid.size, grid.size), bool)
    for cx, cy, hx, hy, rad in _FACE_MASK_BOXES:
        mask |= rounded_box_distance(grid.x, grid.y, cx, cy, hx, hy, rad) <= 0.5 / grid.ppu
    return mask


def _face_background(grid: Grid, rng: np.random.Generator) -> np.ndarray:
    c1, c2 = rng.uniform(0.05, 0.95, (2, 3, 1, 1)).astype(F32)
    angle = rng.uniform(0, 2 * np.pi)
    t = F32(0.5 * np.cos(angle)) * grid.x + F32(0.5 * np.sin(angle)) * grid.y
    t += F32(0.5)
    np.clip(t, 0, 1, out=t)
    img = c1 + (c2 - c1) * t
    texture = smooth_noise(rng, grid.size, int(rng.integers(3, 12)))
    texture *= F32(rng.uniform(0.05, 0.15))
    img += rng.uniform(-1, 1, (3, 1, 1)).astype(F32) * texture
    if rng.random() < 0.4:  # stripes
        a, f, ph = rng.uniform(0, np.pi), rng.uniform(4, 14), rng.uniform(0, 2 * np.pi)
        stripes = np.sin(F32(f * np.cos(a)) * grid.x + F32(f * np.sin(a)) * grid.y + F32(ph))
        stripes *= F32(rng.uniform(0.05, 0.15))
        img += stripes
    return img


def _render_face(grid: Grid, image_seed: int, label: int) -> np.ndarray:
    rng, label_rng, noise_rng = image_rngs(image_seed)
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
    d = rounded_box_distance(
        win[2], win[3], cx, (top + cy + hair_len) / 2, half_w - 0.25, (cy + hair_len - top) / 2 - 0.25, 0.25
    )
    paint(img, win, coverage(d, grid), hair)
    win = grid.window(cx, 1.25 + fy, 1.0, 0.42)
    paint(img, win, coverage(ellipse_distance(win[2], win[3], cx, 1.25 + fy, 1.0, 0.42), grid), cloth)
    win = grid.window(cx, cy + 0.75, 0.22, 0.22)
    paint(img, win, coverage(rounded_box_distance(win[2], win[3], cx, cy + 0.75, 0.18, 0.18, 0.02), grid), skin * 0.85)
    win = grid.window(cx, cy - 0.04, a + 0.07, b + 0.05)
    paint(img, win, coverage(ellipse_distance(win[2], win[3], cx, cy - 0.04, a + 0.07, b + 0.05), grid), hair)
    win = grid.window(cx, cy, a, b)
    hairline = cy + rng.uniform(-0.7, -0.58)
    face = coverage(ellipse_distance(win[2], win[3], cx, cy, a, b), grid)
    face *= coverage(F32(hairline) - win[3], grid)
    paint(img, win, face, skin)
    side_shade = np.clip((win[2] - F32(cx)) * F32(rng.uniform(-1, 1) / a), 0, 1)  # light from one side
    side_shade *= F32(-0.12)
    img[:, win[0], win[1]] *= face * side_shade + F32(1.0)

    # eyes (identity: spacing, iris colour)
    eye_dx = rng.uniform(0.2, 0.28)
    iris = _IRIS_COLORS[rng.integers(len(_IRIS_COLORS))]
    for side in (-1, 1):
        ex, ey = cx + side * eye_dx, _FACE_EYE_Y + fy
        win = grid.window(ex, ey, 0.11)
        white = ellipse_distance(win[2], win[3], ex, ey, 0.1, 0.05)
        paint(img, win, coverage(white, grid), [0.96, 0.96, 0.94])
        paint(img, win, coverage(np.maximum(disk_distance(win[2], win[3], ex, ey, 0.042), white), grid), iris)
        paint(img, win, coverage(disk_distance(win[2], win[3], ex, ey, 0.018), grid), [0.02, 0.02, 0.02])

    # nose: a shaded ridge and two nostrils
    nose_dx = rng.uniform(-0.02, 0.02)
    win = grid.window(cx, fy + 0.1, 0.12)
    ridge = segment_distance(win[2], win[3], cx, fy, cx + nose_dx, fy + 0.17) - F32(0.012)
    paint(img, win, coverage(ridge, grid) * F32(0.5), skin * 0.7)
    for side in (-1, 1):
        nostril = ellipse_distance(win[2], win[3], cx + nose_dx + side * 0.045, fy + 0.19, 0.025, 0.017)
        paint(img, win, coverage(nostril, grid), skin * 0.45)

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
        d = segment_distance(win[2], win[3], bx - side * dx, by + dy, bx + side * dx, by - dy)
        d -= F32(brow_half_thick)
        paint(img, win, coverage(d, grid), brow_color)
    half_width = rng.uniform(0.17, 0.24)
    my = _FACE_MOUTH_Y + fy
    win = grid.window(cx, my, half_width + 0.06, 0.14)
    u = np.clip((win[2] - F32(cx)) / F32(half_width), -1, 1)
    curve_y = F32(my) + F32(curvature) * (F32(0.5) - u * u)  # centre lower than the corners when smiling
    slope = F32(-2 * curvature / half_width) * u
    d_curve = np.abs(win[3] - curve_y) / np.sqrt(F32(1.0) + slope * slope)
    ex, ey = np.abs(win[2] - F32(cx)) - F32(half_width), win[3] - F32(my - curvature / 2)
    d_corner = np.sqrt(ex * ex + ey * ey)
    d = np.where(ex > 0, d_corner, d_curve)
    d -= F32(rng.uniform(0.03, 0.038))
    lips = np.clip(np.array([0.62, 0.2, 0.2]) * (0.6 + 0.4 * skin / skin.max()) * rng.uniform(0.8, 1.1), 0, 1)
    paint(img, win, coverage(d, grid), lips)

    add_noise(img, noise_rng, 0.015)
    return img


def make_faces(n_train: int = 160, n_test: int = 80, image_size: int = 64, seed: int = 0) -> StructuredDataset:
    """Synthetic face images whose expression is read from the mouth and the brows.

    Introduced in chapter 1 (``01_structured_images``). Imitates JAFFE with three expressions,
    ``["neutral", "happy", "angry"]``, on a frontal face in front of a varying background.

    *Relevant* (``mask``, boxes round both brows and the mouth): the mouth curvature (flat, smile,
    frown) and the brows (level, raised, pulled down into a V). *Distractors*: identity (face shape,
    skin, eyes, hair, clothing), the background, a shift of up to 0.03 units and noise.
    """
    request = validate_request("faces", n_train, n_test, image_size, seed, 3)
    grid = Grid(request.image_size)
    return synthetic_dataset(
        "faces",
        request,
        _FACE_CLASS_NAMES,
        lambda image_seed, label, split: _render_face(grid, image_seed, label),
        _face_mask(grid),
        "Synthetic faces: the expression (neutral, happy, angry) is decided by the mouth curvature "
        "and the brow tilt only; identity, hair, clothing and background are distractors.",
        relevant="mouth curvature and brow tilt (mask: boxes round brows and mouth)",
    )
