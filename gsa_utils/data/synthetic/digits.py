"""Synthetic scikit-learn digits in clutter: the digit in a fixed box decides the label."""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np
import torch

from ..base import DataError, StructuredDataset
from .drawing import (
    DATASET_KEYS,
    F32,
    SPLITS,
    Grid,
    add_noise,
    image_rngs,
    smooth_noise,
    synthetic_dataset,
    validate_request,
)

_DIGIT_BOX = (0.09, 0.36)  # target square: offset and side as fractions of the image side


@lru_cache(maxsize=1)
def _sklearn_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 1797 8 x 8 digits bundled with scikit-learn, as float32 in [0, 1], and their labels."""
    from sklearn.datasets import load_digits  # deferred: importing sklearn is slow

    bunch = load_digits()
    images = (bunch.images / 16.0).astype(F32)
    images.setflags(write=False)
    return images, bunch.target.astype(np.int64)


def _digit_target_box(image_size: int) -> tuple[int, int]:
    """(offset, side) in pixels of the square the labelled digit is pasted into."""
    return int(round(_DIGIT_BOX[0] * image_size)), int(round(_DIGIT_BOX[1] * image_size))


def _digit_sprite(digit: np.ndarray, side: int) -> np.ndarray:
    interp = cv2.INTER_LINEAR if side >= 8 else cv2.INTER_AREA
    return np.clip(cv2.resize(digit, (side, side), interpolation=interp), 0, 1)


def _split_digit_pools(rng: np.random.Generator, labels: np.ndarray, need: dict[str, np.ndarray], num_classes: int):
    """Disjoint source digits: the targets per split and class, then a distractor pool per split."""
    order = rng.permutation(len(labels))
    targets: dict[str, dict[int, np.ndarray]] = {split: {} for split in SPLITS}
    used = np.zeros(len(labels), bool)
    for c in range(num_classes):
        of_class = order[labels[order] == c]
        n_tr, n_te = int(need["train"][c]), int(need["test"][c])
        if n_tr + n_te > len(of_class):
            raise DataError(
                f"digits-clutter: n_train and n_test need {n_tr} + {n_te} distinct images of digit {c} "
                f"but scikit-learn's digits have only {len(of_class)}; ask for fewer images"
            )
        targets["train"][c], targets["test"][c] = of_class[:n_tr], of_class[n_tr : n_tr + n_te]
        used[of_class[: n_tr + n_te]] = True
    rest = order[~used[order]]
    if len(rest) < 20:
        raise DataError(
            f"digits-clutter: n_train + n_test leave only {len(rest)} digits for the clutter "
            f"(20 needed); ask for fewer images"
        )
    return targets, {"train": rest[0::2], "test": rest[1::2]}


def _render_digits(
    grid: Grid, image_seed: int, target: np.ndarray, pool: np.ndarray, digits: np.ndarray, used_sources: set
) -> np.ndarray:
    """One canvas with ``target`` (8 x 8) in the fixed square and distractors drawn from ``pool``."""
    rng, label_rng, noise_rng = image_rngs(image_seed)
    s = grid.size
    off, side = _digit_target_box(s)
    canvas = smooth_noise(rng, s, int(rng.integers(4, 10)))
    canvas *= F32(rng.uniform(0.04, 0.12))
    canvas += F32(rng.uniform(0.05, 0.3))
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
        alpha = _digit_sprite(sprite, px)[rows.start - y0 : rows.stop - y0, cols.start - x0 : cols.stop - x0]
        alpha *= F32(contrast)
        rr, cc = np.arange(rows.start, rows.stop)[:, None], np.arange(cols.start, cols.stop)[None, :]
        alpha[(rr >= off) & (rr < off + side) & (cc >= off) & (cc < off + side)] = 0  # rounding safety
        canvas[rows, cols] += alpha * (F32(ink) - canvas[rows, cols])
        used_sources.add(src)

    # the labelled digit, always in the same square
    alpha = _digit_sprite(target, side) * F32(label_rng.uniform(0.75, 1.0))
    box = canvas[off : off + side, off : off + side]
    box += alpha * (F32(label_rng.uniform(0.8, 1.0)) - box)
    add_noise(canvas, noise_rng, 0.03)
    return np.broadcast_to(canvas, (3, s, s))


def make_digits_in_clutter(
    n_train: int = 300, n_test: int = 200, image_size: int = 64, seed: int = 0, num_classes: int = 10
) -> StructuredDataset:
    """Real handwritten digits pasted at a fixed place on a cluttered canvas.

    Introduced in chapter 1 (``01_structured_images``). Uses scikit-learn's 1797 bundled 8 x 8
    digits (no download), upscaled, grey replicated to 3 channels; ``source="embedded"``.

    *Relevant* (``mask``): the digit in a fixed square (side 0.36 S at offset 0.09 S from the top
    left); classes ``"0"`` .. ``str(num_classes - 1)``, ``num_classes`` from 2 to 10. *Distractors*:
    3 to 6 other digits and fragments outside the square, background and noise. Train and test use
    disjoint source digits (``meta["train_sources"]``, ``meta["test_sources"]``).
    """
    request = validate_request("digits-clutter", n_train, n_test, image_size, seed, num_classes, range(2, 11))
    num_classes = int(num_classes)
    digits, digit_labels = _sklearn_digits()
    grid = Grid(request.image_size)
    pool_rng = np.random.default_rng([request.seed, DATASET_KEYS["digits-clutter"], 9])
    need = {
        split: np.bincount(np.arange(n) % num_classes, minlength=num_classes)
        for split, n in zip(SPLITS, (request.n_train, request.n_test))
    }
    targets, pools = _split_digit_pools(pool_rng, digit_labels, need, num_classes)

    sources: dict[str, set] = {split: set() for split in SPLITS}
    taken: dict[tuple[str, int], int] = {}

    def render(image_seed, label, split):
        k = taken.get((split, label), 0)
        taken[(split, label)] = k + 1
        src = int(targets[split][label][k])
        sources[split].add(src)
        return _render_digits(grid, image_seed, digits[src], pools[split], digits, sources[split])

    off, side = _digit_target_box(grid.size)
    mask = torch.zeros(grid.size, grid.size, dtype=torch.bool)
    mask[off : off + side, off : off + side] = True
    ds = synthetic_dataset(
        "digits-clutter",
        request,
        [str(c) for c in range(num_classes)],
        render,
        mask,
        "scikit-learn's handwritten digits pasted into a fixed square (upper left) among other "
        "digits and fragments; the label is the digit in the square.",
        source="embedded",
        relevant="the digit in the fixed paste square (mask)",
        paste_box={"offset": off, "side": side},
    )
    ds.meta.update({f"{split}_sources": sorted(sources[split]) for split in SPLITS})
    return ds
