"""How well an attention map matches a ground-truth relevance mask.

Introduced in chapter 5 (``05_two_phase_training``). Synthetic datasets and
digits-in-clutter come with a mask of the pixels that decide the label, so the quality of
a learned map can be measured rather than eyeballed.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = [
    "map_roc_auc",
    "pointing_game",
    "mass_inside",
    "relevance_rank_accuracy",
    "attention_quality",
    "saturated_fraction",
    "SATURATION",
    "map_contrast",
    "FLAT_CONTRAST",
]


def _as_arrays(attention_map, mask) -> tuple[np.ndarray, np.ndarray]:
    a = (
        attention_map.detach().cpu().float().numpy()
        if isinstance(attention_map, torch.Tensor)
        else np.asarray(attention_map, dtype=float)
    )
    m = mask.detach().cpu().numpy() if isinstance(mask, torch.Tensor) else np.asarray(mask)
    a, m = np.squeeze(a), np.squeeze(m).astype(bool)
    if a.shape != m.shape:
        raise ValueError(f"attention map shape {a.shape} differs from mask shape {m.shape}")
    if m.all() or not m.any():
        raise ValueError("the mask must contain both relevant and irrelevant pixels")
    if not np.isfinite(a).all():
        raise ValueError("the attention map contains NaN or infinite values")
    return a, m


def map_roc_auc(attention_map, mask) -> float:
    """ROC-AUC of the map's values as a score for "pixel is in the mask" (0.5 = chance).

    It only looks at the ordering of values, so it is comparable across maps of
    different scale; ties (e.g. a saturated map) count half.
    """
    a, m = _as_arrays(attention_map, mask)
    return _roc_auc(a.ravel(), m.ravel())


def _roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """ROC-AUC as the Mann-Whitney statistic, ties ranked by their mean rank.

    Equal to ``sklearn.metrics.roc_auc_score`` (tested); written here because importing
    scikit-learn costs seconds in every notebook that only needs this one number.
    """
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    starts = np.r_[True, sorted_scores[1:] != sorted_scores[:-1]]
    group = np.cumsum(starts) - 1
    first = np.flatnonzero(starts)
    last = np.r_[first[1:], len(scores)] - 1
    ranks = np.empty(len(scores))
    ranks[order] = (first + last)[group] / 2 + 1
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def pointing_game(attention_map, mask) -> float:
    """1.0 if the map's maximum lies in the mask, else 0.0; ties at the maximum share the credit."""
    a, m = _as_arrays(attention_map, mask)
    top = a >= a.max()
    return float(m[top].mean())


def mass_inside(attention_map, mask) -> float:
    """Share of the map's total mass inside the mask; chance is the mask's area fraction."""
    a, m = _as_arrays(attention_map, mask)
    total = a.sum()
    return float(a[m].sum() / total) if total > 0 else float("nan")


def relevance_rank_accuracy(attention_map, mask) -> float:
    """Share of the K highest-valued pixels that lie in the mask, K = the mask's pixel count.

    Arras et al. (2022, CLEVR-XAI) call it relevance rank accuracy; 1.0 when the map ranks
    every mask pixel above every other, the mask's area share for a constant map. Pixels
    tied at the K-th value share the remaining places in proportion.
    """
    a, m = _as_arrays(attention_map, mask)
    a, m = a.ravel(), m.ravel()
    k = int(m.sum())
    threshold = np.sort(a)[-k]
    above, tied = a > threshold, a == threshold
    inside = m[above].sum() + (k - above.sum()) * m[tied].mean()
    return float(inside / k)


def attention_quality(attention_map, mask) -> dict[str, float]:
    """All three metrics plus the chance level of :func:`mass_inside` (the mask's area share)."""
    a, m = _as_arrays(attention_map, mask)
    return {
        "roc_auc": map_roc_auc(a, m),
        "pointing_game": pointing_game(a, m),
        "mass_inside": mass_inside(a, m),
        "mask_fraction": float(m.mean()),
    }


#: A map value below this or above 1 - this counts as saturated (the sigmoid's slope is < 0.0099).
SATURATION = 0.01


def saturated_fraction(attention_map, eps: float = SATURATION) -> float:
    """Share of map values within ``eps`` of 0 or 1, where the sigmoid's gradient all but vanishes.

    Introduced in chapter 4 (``04_combined_loss``). The sigmoid's slope is ``m (1 - m)``:
    below 0.0099 for such pixels, so the loss can hardly move them any more. Training
    records it after every epoch as ``map_saturated``.
    """
    a = (
        attention_map.detach().cpu().float().numpy()
        if isinstance(attention_map, torch.Tensor)
        else np.asarray(attention_map, dtype=float)
    )
    return float(((a < eps) | (a > 1 - eps)).mean())


#: A map whose contrast (:func:`map_contrast`) is below this at the end of phase 1 counts as flat.
FLAT_CONTRAST = 0.25


def map_contrast(attention_map) -> float:
    """The map's spread relative to its level: ``(p95 - p5) / mean`` over its pixels.

    Introduced in chapter 5 (``05_two_phase_training``). The image CNN sees ``x * M``; a
    common scale of ``M`` is undone by its first normalisation or learned away by its
    first layer, so what the map can change is how much it weights one pixel *relative* to
    another. Dividing by the mean makes the number scale-free: a map that stays near 0.5
    everywhere has contrast near 0, however well it ranks the pixels (rank-based scores
    such as :func:`map_roc_auc` cannot see this), while a map at 0.9 inside a region and
    0.1 elsewhere has contrast above 1. The 5th and 95th percentiles ignore a few extreme
    pixels. A map that is zero everywhere has contrast 0.
    """
    a = (
        attention_map.detach().cpu().float().numpy()
        if isinstance(attention_map, torch.Tensor)
        else np.asarray(attention_map, dtype=float)
    )
    if not np.isfinite(a).all():
        raise ValueError("the attention map contains NaN or infinite values")
    mean = float(a.mean())
    if mean <= 0:
        return 0.0
    p5, p95 = np.percentile(a, [5, 95])
    return float((p95 - p5) / mean)
