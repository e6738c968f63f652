"""How well an attention map matches a ground-truth relevance mask, and whether it is saturated or flat.

Introduced in chapter 5 (``05_two_phase_training``).
"""

from __future__ import annotations

import numpy as np
import torch


def _as_array(attention_map) -> np.ndarray:
    if isinstance(attention_map, torch.Tensor):
        return attention_map.detach().cpu().float().numpy()
    return np.asarray(attention_map, dtype=float)


def _as_arrays(attention_map, mask) -> tuple[np.ndarray, np.ndarray]:
    a = _as_array(attention_map)
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
    """ROC-AUC of the map's values as a score for "pixel is in the mask" (0.5 = chance; ties count half)."""
    a, m = _as_arrays(attention_map, mask)
    return _roc_auc(a.ravel(), m.ravel())


def _roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """ROC-AUC as the Mann-Whitney statistic (equal to scikit-learn's, which takes seconds to import)."""
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
    """Share of the K highest-valued pixels inside the mask, K = the mask's size (Arras et al., 2022).

    Pixels tied at the K-th value share the remaining places in proportion.
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
    """Share of map values within ``eps`` of 0 or 1, where the sigmoid's gradient all but vanishes (chapter 4)."""
    a = _as_array(attention_map)
    return float(((a < eps) | (a > 1 - eps)).mean())


#: A map whose contrast (:func:`map_contrast`) is below this at the end of phase 1 counts as flat.
FLAT_CONTRAST = 0.25


def map_contrast(attention_map) -> float:
    """The map's spread relative to its level, ``(p95 - p5) / mean`` over its pixels (0 for a zero map).

    Scale-free, as what a map can change is how much it weights one pixel relative to another
    (chapter 5); a map near 0.5 everywhere has contrast near 0 however well it ranks the pixels.
    """
    a = _as_array(attention_map)
    if not np.isfinite(a).all():
        raise ValueError("the attention map contains NaN or infinite values")
    mean = float(a.mean())
    if mean <= 0:
        return 0.0
    p5, p95 = np.percentile(a, [5, 95])
    return float((p95 - p5) / mean)
