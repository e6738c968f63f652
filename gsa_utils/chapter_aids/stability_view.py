"""Variants of GSA over seeds: their accuracy against vanilla and the state of their maps."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..metrics import map_contrast, map_roc_auc
from ..protocol import compare_over_seeds, format_p, t_test
from ..runs.store import RunRecord, load_attention_map
from ..stability import collapse_verdict


def variant_table(
    runs: Mapping[str, Sequence[RunRecord]], mask=None, majority_rate: float | None = None
) -> pd.DataFrame:
    """Each variant's final test accuracy against vanilla over seeds, and its maps: one row per variant."""
    table = compare_over_seeds({name: [r.history["test_acc"][-1] for r in rs] for name, rs in runs.items()})
    for name, rs in runs.items():
        maps = [load_attention_map(r) for r in rs]
        has_map = maps[0] is not None
        verdicts = [collapse_verdict(m, r.history["test_acc"][-1], majority_rate) for m, r in zip(maps, rs)]
        columns = {
            "map mean": [m.mean() for m in maps] if has_map else None,
            "map auc": [map_roc_auc(m, mask) for m in maps] if has_map and mask is not None else None,
            "map contrast": [map_contrast(m) for m in maps] if has_map else None,
            "map saturated": [v.saturated_share for v in verdicts] if has_map else None,
        }
        for column, values in columns.items():
            table.loc[name, column] = np.mean(values) if values is not None else np.nan
        table.loc[name, "collapsed"] = sum(v.collapsed for v in verdicts)
        flat = sum(bool(r.history.records[-1].get("flat")) for r in rs)
        table.loc[name, "flat"] = flat if has_map else np.nan
        table.loc[name, "warned in training"] = sum(any(e.get("collapsed") for e in r.history.records) for r in rs)
    return table


@dataclass(frozen=True)
class VariantSummary:
    """One variant's runs over seeds, as ``benchmarks/map_stability.py`` reports them."""

    variant: str
    runs: int
    accuracy_mean: float
    accuracy_sd: float
    p_vs_reference: float
    collapsed: int
    flat: int = 0
    map_mean: float | None = None
    contrast_mean: float | None = None
    contrast_sd: float | None = None
    saturated: float | None = None
    map_auc_mean: float | None = None
    map_auc_sd: float | None = None
    faith_gap_mean: float | None = None
    faith_gap_random_mean: float | None = None
    phase1_ratio: float | None = None
    phase2_ratio: float | None = None


def summarise_stability(
    records: list[dict], variants: list[str] | None = None, reference: str = "vanilla"
) -> list[VariantSummary]:
    """Summarise stability-benchmark records (one dict per run: ``variant``, ``seed``,
    ``test_acc``, ``collapsed``, step times and map figures) per variant.
    """
    variants = variants or list(dict.fromkeys(r["variant"] for r in records))
    by = {name: [r for r in records if r["variant"] == name] for name in variants}
    ref = {r["seed"]: r for r in by.get(reference, [])}
    ref_acc = np.array([r["test_acc"] for r in ref.values()])

    def mean(values):
        return float(np.mean(values)) if values else None

    def median_ratio(runs, key):
        ratios = [
            r[key] / ref[r["seed"]]["step_phase1"]
            for r in runs
            if r["seed"] in ref and not math.isnan(r.get(key, math.nan))
        ]
        return float(np.median(ratios)) if ratios else None

    out = []
    for name, runs in by.items():
        if not runs:
            continue
        acc = np.array([r["test_acc"] for r in runs])
        p = t_test(acc, ref_acc) if name != reference else math.nan
        aucs = [r["map_auc"] for r in runs if "map_auc" in r]
        contrasts = [r["map_contrast"] for r in runs if "map_contrast" in r]
        out.append(
            VariantSummary(
                variant=name,
                runs=len(runs),
                accuracy_mean=float(acc.mean()),
                accuracy_sd=float(acc.std(ddof=1)) if len(acc) > 1 else 0.0,
                p_vs_reference=p,
                collapsed=sum(bool(r["collapsed"]) for r in runs),
                flat=sum(bool(r.get("flat")) for r in runs),
                contrast_mean=mean(contrasts),
                contrast_sd=float(np.std(contrasts, ddof=1)) if len(contrasts) > 1 else None,
                map_mean=mean([r["map_mean"] for r in runs if "map_mean" in r]),
                saturated=mean([r["map_saturated"] for r in runs if "map_saturated" in r]),
                map_auc_mean=mean(aucs),
                map_auc_sd=float(np.std(aucs, ddof=1)) if len(aucs) > 1 else None,
                faith_gap_mean=mean([r["faith_gap"] for r in runs if "faith_gap" in r]),
                faith_gap_random_mean=mean([r["faith_gap_random"] for r in runs if "faith_gap_random" in r]),
                phase1_ratio=median_ratio(runs, "step_phase1"),
                phase2_ratio=median_ratio(runs, "step_phase2"),
            )
        )
    return out


def verdict_line(
    summaries: list[VariantSummary], variant: str = "recommended", reference: str = "vanilla"
) -> str | None:
    """``recommended recipe: collapsed X of Y seeds; flat F of Y; contrast C.CC; GSA - vanilla = +D.D points
    (p = P.PPP)``: the benchmark's agreed last line, nothing added.
    """
    by = {s.variant: s for s in summaries}
    if variant not in by or reference not in by:
        return None
    s, ref = by[variant], by[reference]
    points = 100 * (s.accuracy_mean - ref.accuracy_mean)
    contrast = "-" if s.contrast_mean is None else f"{s.contrast_mean:.2f}"
    return (
        f"{variant} recipe: collapsed {s.collapsed} of {s.runs} seeds; flat {s.flat} of {s.runs}; "
        f"contrast {contrast}; GSA - {reference} = {points:+.1f} points "
        f"({format_p(s.p_vs_reference)})"
    )
