"""Is an attention map collapsed? The saturation share and the collapse rule of issue 12.

A sigmoid map whose pixels sit below 0.01 or above 0.99 passes almost no gradient back,
so it has stopped learning; a classifier whose accuracy falls to the majority-class rate
has stopped using its input. :func:`collapse_verdict` applies both tests.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

from .metrics import SATURATION, saturated_fraction

__all__ = ["SATURATION", "COLLAPSE_SHARE", "ONE_CLASS_PATIENCE", "CollapseVerdict", "collapse_verdict",
           "CollapseWarning", "epoch_collapse", "record_collapse", "VariantSummary", "summarise_stability",
           "verdict_line"]

#: A map with more than this share of saturated pixels counts as collapsed.
COLLAPSE_SHARE = 0.9
#: Predictions on a set that stay one class for this many epochs running count as collapsed.
ONE_CLASS_PATIENCE = 3


@dataclass(frozen=True)
class CollapseVerdict:
    """Whether a run collapsed, and why (``reason`` is empty when it did not)."""

    collapsed: bool
    reason: str
    saturated_share: float


def collapse_verdict(attention_map, accuracy: float | None = None, majority_rate: float | None = None,
                     share: float = COLLAPSE_SHARE, threshold: float = SATURATION) -> CollapseVerdict:
    """A run is collapsed when more than ``share`` of its map is saturated, or when its
    accuracy is at or below the majority-class rate.

    Parameters
    ----------
    attention_map
        The final map (any shape), or ``None`` for a model without one.
    accuracy, majority_rate
        Test accuracy and the share of the most frequent test class (skip with ``None``).
    """
    sat = saturated_fraction(attention_map, threshold) if attention_map is not None else float("nan")
    reasons = []
    if attention_map is not None and sat > share:
        reasons.append(f"{100 * sat:.0f}% of the map saturated")
    if accuracy is not None and majority_rate is not None and accuracy <= majority_rate + 1e-9:
        reasons.append(f"accuracy {accuracy:.3f} <= majority rate {majority_rate:.3f}")
    return CollapseVerdict(bool(reasons), "; ".join(reasons), sat)


class CollapseWarning(UserWarning):
    """Issued by :func:`~gsa_utils.training.algorithm_1` at the epoch a run collapses."""


def epoch_collapse(attention_map, one_class_epochs: dict[str, int] | None = None,
                   share: float = COLLAPSE_SHARE, threshold: float = SATURATION,
                   patience: int = ONE_CLASS_PATIENCE) -> CollapseVerdict:
    """The collapse rule during training, after one epoch.

    Collapsed when more than ``share`` of the map is saturated (as in
    :func:`collapse_verdict`), or when the predictions on a set have been one class for
    ``patience`` epochs running. A new classifier often predicts one class for an epoch or
    two before it learns; a stuck one keeps doing it.

    Parameters
    ----------
    attention_map
        The current map, or ``None`` for a model without one.
    one_class_epochs
        Per set, how many epochs running its predictions have been one class, e.g.
        ``{"train": 0, "test": 3}``.
    """
    verdict = collapse_verdict(attention_map, share=share, threshold=threshold)
    reasons = [verdict.reason] if verdict.reason else []
    reasons += [f"every {name} prediction is one class, {patience} epochs running"
                for name, n in (one_class_epochs or {}).items() if n >= patience]
    return CollapseVerdict(bool(reasons), "; ".join(reasons), verdict.saturated_share)


def record_collapse(record: dict, attention_map, previous: dict | None = None) -> str:
    """Apply :func:`epoch_collapse` to one epoch's training record, in place.

    Counts, per set, the epochs running with one predicted class (``<set>_one_class_epochs``,
    from the record's ``<set>_pred_classes`` and the ``previous`` epoch's record), sets
    ``record["collapsed"]`` and ``record["collapse_reason"]``, and issues a
    :class:`CollapseWarning` naming the epoch and the map's numbers when a collapse starts
    or its reason changes. Returns the reason (empty: healthy).
    """
    previous = previous or {}
    for key in [k for k in record if k.endswith("_pred_classes")]:
        name = key[:-len("_pred_classes")]
        running = previous.get(f"{name}_one_class_epochs", 0) + 1 if record[key] == 1 else 0
        record[f"{name}_one_class_epochs"] = running
    streaks = {k[:-len("_one_class_epochs")]: n for k, n in record.items()
               if k.endswith("_one_class_epochs")}
    verdict = epoch_collapse(attention_map, streaks)
    record.update(collapsed=verdict.collapsed, collapse_reason=verdict.reason)
    if verdict.collapsed and verdict.reason != previous.get("collapse_reason", ""):
        numbers = ", ".join(f"{k} {record[k]:.3f}" for k in ("map_mean", "map_saturated", "train_acc")
                            if k in record)
        warnings.warn(f"epoch {record.get('epoch', '?')}: the run collapsed ({verdict.reason}; {numbers})",
                      CollapseWarning, stacklevel=4)
    return verdict.reason


@dataclass(frozen=True)
class VariantSummary:
    """One variant's runs over seeds, as ``benchmarks/map_stability.py`` reports them.

    Step ratios are the median over seeds of the variant's time per training step over
    vanilla's (phase 1; phase 2 when the map was frozen), same seed, measured side by side.
    """

    variant: str
    runs: int
    accuracy_mean: float
    accuracy_sd: float
    p_vs_reference: float
    collapsed: int
    map_mean: float | None = None
    saturated: float | None = None
    map_auc_mean: float | None = None
    map_auc_sd: float | None = None
    phase1_ratio: float | None = None
    phase2_ratio: float | None = None


def summarise_stability(records: list[dict], variants: list[str] | None = None,
                        reference: str = "vanilla") -> list[VariantSummary]:
    """Summarise stability-benchmark records (one dict per run: ``variant``, ``seed``,
    ``test_acc``, ``collapsed``, step times and map figures) per variant.

    ``p_vs_reference`` is Welch's t-test (:func:`~gsa_utils.protocol.t_test`) of the
    variant's final test accuracies, one per seed, against the ``reference`` variant's
    (NaN for the reference itself or with fewer than two runs).
    """
    import math

    import numpy as np

    from .protocol import t_test

    variants = variants or list(dict.fromkeys(r["variant"] for r in records))
    by = {name: [r for r in records if r["variant"] == name] for name in variants}
    ref = {r["seed"]: r for r in by.get(reference, [])}
    ref_acc = np.array([r["test_acc"] for r in ref.values()])

    def mean(values):
        return float(np.mean(values)) if values else None

    def median_ratio(runs, key):
        ratios = [r[key] / ref[r["seed"]]["step_phase1"] for r in runs
                  if r["seed"] in ref and not math.isnan(r.get(key, math.nan))]
        return float(np.median(ratios)) if ratios else None

    out = []
    for name, runs in by.items():
        if not runs:
            continue
        acc = np.array([r["test_acc"] for r in runs])
        p = t_test(acc, ref_acc) if name != reference else math.nan
        aucs = [r["map_auc"] for r in runs if "map_auc" in r]
        out.append(VariantSummary(
            variant=name, runs=len(runs), accuracy_mean=float(acc.mean()),
            accuracy_sd=float(acc.std(ddof=1)) if len(acc) > 1 else 0.0, p_vs_reference=p,
            collapsed=sum(bool(r["collapsed"]) for r in runs),
            map_mean=mean([r["map_mean"] for r in runs if "map_mean" in r]),
            saturated=mean([r["map_saturated"] for r in runs if "map_saturated" in r]),
            map_auc_mean=mean(aucs), map_auc_sd=float(np.std(aucs, ddof=1)) if len(aucs) > 1 else None,
            phase1_ratio=median_ratio(runs, "step_phase1"), phase2_ratio=median_ratio(runs, "step_phase2")))
    return out


def verdict_line(summaries: list[VariantSummary], variant: str = "recommended",
                 reference: str = "vanilla") -> str | None:
    """``recommended recipe: collapsed X of Y seeds; GSA - vanilla = +D.D points (p = P.PPP)``.

    The p-value is written by :func:`~gsa_utils.protocol.format_p` (``p < 0.001`` when smaller).
    """
    from .protocol import format_p

    by = {s.variant: s for s in summaries}
    if variant not in by or reference not in by:
        return None
    s, ref = by[variant], by[reference]
    points = 100 * (s.accuracy_mean - ref.accuracy_mean)
    return (f"{variant} recipe: collapsed {s.collapsed} of {s.runs} seeds; "
            f"GSA - {reference} = {points:+.1f} points ({format_p(s.p_vs_reference)})")
