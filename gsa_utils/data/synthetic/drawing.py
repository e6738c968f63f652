"""Shared drawing and sampling helpers of the synthetic sets: a resolution-free grid, shapes, noise, seeds.

Scenes are described in units (x and y in [-1, 1]); see :mod:`gsa_utils.data.synthetic`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import cv2
import numpy as np
import torch

from ..base import DataError, StructuredDataset

#: Names accepted by :func:`load_synthetic`.
SYNTHETIC_DATASETS = ("fundus", "faces", "oct", "digits-clutter")
#: Smallest and largest ``image_size`` the generators accept.
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 16, 256

MAX_BYTES = 6 * 2**30  # refuse requests whose images alone would need more memory than this
DATASET_KEYS = {"fundus": 101, "faces": 102, "oct": 103, "digits-clutter": 104}
#: Each set's generator, as ``meta["generator"]`` records it (part of a run's data fingerprint).
GENERATORS = {
    "fundus": "make_fundus",
    "faces": "make_faces",
    "oct": "make_oct_thickness",
    "digits-clutter": "make_digits_in_clutter",
}
SPLITS = ("train", "test")
F32 = np.float32


class Grid:
    """Pixel-centre coordinates of an S x S image in units ([-1, 1], x right, y down).

    ``x`` has shape 1 x S and ``y`` S x 1, so expressions in both broadcast to S x S.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.ppu = size / 2.0  # pixels per unit
        c = ((np.arange(size, dtype=F32) + 0.5) / F32(self.ppu) - 1.0).astype(F32)
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


def coverage(signed_distance: np.ndarray, grid: Grid, soft_px: float = 1.0) -> np.ndarray:
    """Anti-aliased inside-ness in [0, 1] from a signed distance in units (< 0 inside)."""
    c = np.asarray(signed_distance, dtype=F32) * F32(-grid.ppu / soft_px)
    c += F32(0.5)
    return np.clip(c, 0.0, 1.0, out=c)


def ellipse_distance(x, y, cx: float, cy: float, ax: float, ay: float) -> np.ndarray:
    """Approximate signed distance (units) to an axis-aligned ellipse with half axes ax, ay."""
    u = (x - F32(cx)) / F32(ax)
    v = (y - F32(cy)) / F32(ay)
    d = np.sqrt(u * u + v * v)
    d -= F32(1.0)
    d *= F32(min(ax, ay))
    return d


def disk_distance(x, y, cx: float, cy: float, r: float) -> np.ndarray:
    """Signed distance (units) to a disk."""
    u, v = x - F32(cx), y - F32(cy)
    d = np.sqrt(u * u + v * v)
    d -= F32(r)
    return d


def gauss(x, y, cx: float, cy: float, sigma2: float) -> np.ndarray:
    """exp(-|p - c|^2 / sigma2), computed separably."""
    return np.exp(-((x - F32(cx)) ** 2) / F32(sigma2)) * np.exp(-((y - F32(cy)) ** 2) / F32(sigma2))


def paint(img: np.ndarray, win, alpha: np.ndarray, color) -> None:
    """Blend ``color`` (3 values) into the window ``win`` of ``img`` (3 x H x W) with opacity ``alpha``."""
    region = img[:, win[0], win[1]]
    d = np.asarray(color, dtype=F32).reshape(3, 1, 1) - region
    d *= alpha
    region += d


def add_noise(img: np.ndarray, rng: np.random.Generator, sigma: float) -> None:
    """Add zero-mean sensor noise of standard deviation ``sigma`` (uniform, same in all channels)."""
    n = rng.random(img.shape[-2:], dtype=F32)
    n -= F32(0.5)
    n *= F32(sigma * math.sqrt(12.0))
    img += n


def smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """A smooth random field (about unit amplitude) with ``cells`` x ``cells`` degrees of freedom.

    The field depends on the draws, not on ``size``: the same draws at 32 or 224 pixels give
    the same picture.
    """
    g = rng.standard_normal((cells, cells)).astype(F32)
    if size <= 64:
        return cv2.resize(g, (size, size), interpolation=cv2.INTER_CUBIC)
    g = cv2.resize(g, (64, 64), interpolation=cv2.INTER_CUBIC)  # cubic is slow; it is smooth by then
    return cv2.resize(g, (size, size), interpolation=cv2.INTER_LINEAR)


def segment_distance(x, y, ax: float, ay: float, bx: float, by: float) -> np.ndarray:
    """Distance (units) from each pixel to the segment a-b."""
    dx, dy = F32(bx - ax), F32(by - ay)
    px, py = x - F32(ax), y - F32(ay)
    t = (px * dx + py * dy) / F32(max(float(dx * dx + dy * dy), 1e-12))
    np.clip(t, 0.0, 1.0, out=t)
    ex, ey = px - t * dx, py - t * dy
    return np.sqrt(ex * ex + ey * ey)


def rounded_box_distance(x, y, cx: float, cy: float, hx: float, hy: float, radius: float) -> np.ndarray:
    """Signed distance to an axis-aligned box (half sizes hx, hy) dilated by ``radius``."""
    qx = np.abs(x - F32(cx)) - F32(hx)
    qy = np.abs(y - F32(cy)) - F32(hy)
    ox, oy = np.maximum(qx, 0.0), np.maximum(qy, 0.0)
    d = np.sqrt(ox * ox + oy * oy)
    d += np.minimum(np.maximum(qx, qy), 0.0)
    d -= F32(radius)
    return d


def check_int(dataset: str, key: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise DataError(f"{dataset}: {key} must be an integer, got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise DataError(f"{dataset}: {key} must be >= {minimum}, got {value}")
    return int(value)


class Request(NamedTuple):
    """The settings every generator shares, checked."""

    n_train: int
    n_test: int
    image_size: int
    seed: int


def validate_request(
    dataset: str, n_train, n_test, image_size, seed, num_classes, allowed: range | None = None
) -> Request:
    """Check the settings every generator shares (and ``num_classes`` against ``allowed``)."""
    if allowed is not None and (
        isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes not in allowed
    ):
        raise DataError(
            f"{dataset}: num_classes must be an integer from {allowed[0]} to {allowed[-1]}, got {num_classes!r}"
        )
    n_train = check_int(dataset, "n_train", n_train, 1)
    n_test = check_int(dataset, "n_test", n_test, 1)
    image_size = check_int(dataset, "image_size", image_size, 1)
    seed = check_int(dataset, "seed", seed, 0)
    if not MIN_IMAGE_SIZE <= image_size <= MAX_IMAGE_SIZE:
        raise DataError(
            f"{dataset}: image_size must be between {MIN_IMAGE_SIZE} and {MAX_IMAGE_SIZE} pixels, got {image_size}"
        )
    for key, n in (("n_train", n_train), ("n_test", n_test)):
        if n < num_classes:
            raise DataError(
                f"{dataset}: {key}={n} is smaller than the {num_classes} classes; "
                f"every class needs at least one image in each split"
            )
    n_bytes = (n_train + n_test) * 3 * image_size * image_size * 4
    if n_bytes > MAX_BYTES:
        raise DataError(
            f"{dataset}: n_train + n_test = {n_train + n_test} images of {image_size} px would "
            f"need {n_bytes / 2**30:.1f} GiB; ask for fewer or smaller images"
        )
    return Request(n_train, n_test, image_size, seed)


def image_rngs(image_seed: int) -> tuple[np.random.Generator, np.random.Generator, np.random.Generator]:
    """Independent (scene, label, noise) generators for one image.

    Everything that depends on the label is drawn from the second one only, so the same
    ``image_seed`` with another label gives the same scene, changed only inside the mask.
    """
    return tuple(np.random.default_rng([image_seed, k]) for k in range(3))  # type: ignore[return-value]


def synthetic_dataset(
    dataset: str,
    request: Request,
    class_names: Sequence[str],
    render: Callable[[int, int, str], np.ndarray],
    mask: np.ndarray | torch.Tensor,
    description: str,
    source: str = "synthetic",
    **meta,
) -> StructuredDataset:
    """Draw balanced labels, render every image of both splits and wrap them with ``mask``.

    Each split has its own random stream. ``render(image_seed, label, split)`` returns one
    3 x S x S image; it is clipped to [0, 1] here.
    """
    out = {}
    for split, n in zip(SPLITS, (request.n_train, request.n_test)):
        rng = np.random.default_rng([request.seed, DATASET_KEYS[dataset], SPLITS.index(split)])
        labels = rng.permutation(np.arange(n) % len(class_names)).astype(np.int64)  # class counts differ by <= 1
        image_seeds = rng.integers(0, 2**62, n)
        images = np.empty((n, 3, request.image_size, request.image_size), dtype=F32)
        for i, label in enumerate(labels):
            images[i] = render(int(image_seeds[i]), int(label), split)
            np.clip(images[i], 0.0, 1.0, out=images[i])
        out[f"x_{split}"], out[f"y_{split}"] = torch.from_numpy(images), torch.from_numpy(labels)
    return StructuredDataset(
        name=dataset,
        **out,
        class_names=list(class_names),
        mask=torch.as_tensor(mask),
        source=source,
        description=description,
        meta={"seed": request.seed, "image_size": request.image_size, "generator": GENERATORS[dataset], **meta},
    )


def place_disks(
    rng: np.random.Generator,
    radii: np.ndarray,
    accept: Callable[[np.ndarray, np.ndarray, float], np.ndarray],
    box: tuple[float, float, float, float],
    min_gap: float,
) -> np.ndarray:
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
