"""Is an attention map collapsed, or flat? The rules training applies after every epoch.

A run is collapsed when most of its sigmoid map is saturated (no gradient passes) or when it
predicts one class at chance-level loss; a map of low contrast is flat: it weights every pixel alike.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

from .metrics import FLAT_CONTRAST, SATURATION, map_contrast, saturated_fraction

#: A map with more than this share of saturated pixels counts as collapsed.
COLLAPSE_SHARE = 0.9
#: Predictions on a set that stay one class for this many epochs running count as collapsed,
#: provided the training loss is still at chance level (:data:`CHANCE_MARGIN`).
ONE_CLASS_PATIENCE = 3
#: An epoch counts towards the one-class streak only while the training cross-entropy is at
#: least this share of the chance level (the entropy of the training labels' class shares).
CHANCE_MARGIN = 0.95


@dataclass(frozen=True)
class CollapseVerdict:
    """Whether a run collapsed, and why (``reason`` is empty when it did not)."""

    collapsed: bool
    reason: str
    saturated_share: float


def collapse_verdict(
    attention_map, accuracy: float | None = None, majority_rate: float | None = None
) -> CollapseVerdict:
    """Collapsed when more than :data:`COLLAPSE_SHARE` of the map (``None``: no map) is saturated, or the
    accuracy is at or below the majority-class rate (either may be ``None``)."""
    sat = saturated_fraction(attention_map, SATURATION) if attention_map is not None else float("nan")
    reasons = []
    if attention_map is not None and sat > COLLAPSE_SHARE:
        reasons.append(f"{100 * sat:.0f}% of the map saturated")
    if accuracy is not None and majority_rate is not None and accuracy <= majority_rate + 1e-9:
        reasons.append(f"accuracy {accuracy:.3f} <= majority rate {majority_rate:.3f}")
    return CollapseVerdict(bool(reasons), "; ".join(reasons), sat)


class CollapseWarning(UserWarning):
    """Issued by :func:`~gsa_utils.training.algorithm_1` at the epoch a run collapses."""


class FlatMapWarning(UserWarning):
    """Issued by :func:`~gsa_utils.training.algorithm_1` when phase 1 ends with a flat map."""


def chance_loss(labels) -> float:
    """The cross-entropy of always predicting the training labels' class shares: a blind classifier's best."""
    import numpy as np

    counts = np.bincount(np.asarray(labels, dtype=np.int64).ravel())
    shares = counts[counts > 0] / counts.sum()
    return float(-(shares * np.log(shares)).sum())


def epoch_collapse(attention_map, one_class_epochs: dict[str, int] | None = None) -> CollapseVerdict:
    """The collapse rule after one epoch: a saturated map, or one class predicted ONE_CLASS_PATIENCE epochs running.

    ``one_class_epochs`` counts, per set, the epochs running its predictions have been one class at
    chance-level loss (e.g. ``{"train": 0, "test": 3}``); a learning classifier's loss falls below chance.
    """
    verdict = collapse_verdict(attention_map)
    reasons = [verdict.reason] if verdict.reason else []
    reasons += [
        f"every {name} prediction is one class at chance-level loss, {ONE_CLASS_PATIENCE} epochs running"
        for name, n in (one_class_epochs or {}).items()
        if n >= ONE_CLASS_PATIENCE
    ]
    return CollapseVerdict(bool(reasons), "; ".join(reasons), verdict.saturated_share)


def record_collapse(
    record: dict,
    attention_map,
    previous: dict | None = None,
    chance: float | None = None,
    phase_1_ends: bool = False,
    saturates: bool = True,
) -> str:
    """Apply :func:`epoch_collapse` and the flat-map rule to one epoch's record, in place; return the reason.

    Counts ``<set>_one_class_epochs`` from ``<set>_pred_classes`` and the ``previous`` record (an epoch
    counts while ``train_ce`` is at least :data:`CHANCE_MARGIN` of ``chance``), sets ``collapsed`` and
    ``collapse_reason``, and warns when a collapse starts or its reason changes. When ``phase_1_ends``,
    a map of contrast below :data:`FLAT_CONTRAST` sets ``flat`` (kept from then on) and warns. A map that
    is no sigmoid (``saturates=False``) is never judged saturated.
    """
    previous = previous or {}
    at_chance = chance is None or record.get("train_ce", chance) >= CHANCE_MARGIN * chance
    for key in [k for k in record if k.endswith("_pred_classes")]:
        name = key[: -len("_pred_classes")]
        stuck = record[key] == 1 and at_chance
        record[f"{name}_one_class_epochs"] = previous.get(f"{name}_one_class_epochs", 0) + 1 if stuck else 0
    streaks = {k[: -len("_one_class_epochs")]: n for k, n in record.items() if k.endswith("_one_class_epochs")}
    verdict = epoch_collapse(attention_map if saturates else None, streaks)
    record.update(collapsed=verdict.collapsed, collapse_reason=verdict.reason)
    if verdict.collapsed and verdict.reason != previous.get("collapse_reason", ""):
        numbers = ", ".join(f"{k} {record[k]:.3f}" for k in ("map_mean", "map_saturated", "train_acc") if k in record)
        warnings.warn(
            f"epoch {record.get('epoch', '?')}: the run collapsed ({verdict.reason}; {numbers})",
            CollapseWarning,
            stacklevel=5,
        )
    if attention_map is not None:
        record["flat"] = bool(previous.get("flat", False))
        if phase_1_ends and not record["flat"]:
            contrast = record.get("map_contrast", map_contrast(attention_map))
            if contrast < FLAT_CONTRAST:
                record["flat"] = True
                warnings.warn(
                    f"epoch {record.get('epoch', '?')}: phase 1 ended with a flat map (contrast "
                    f"{contrast:.2f} < {FLAT_CONTRAST}: it weights every pixel almost alike; map mean "
                    f"{record.get('map_mean', float('nan')):.3f})",
                    FlatMapWarning,
                    stacklevel=5,
                )
    return verdict.reason
