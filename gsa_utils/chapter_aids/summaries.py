"""Tables and sentences of the dataset chapters: one row per run, summaries over seeds, comparisons.

Runs whose settings differ (two GSA recipes, say) are separate variants, never pooled; the spread is over seeds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ..protocol import compare_over_seeds, format_p
from ..runs.config import ExperimentConfig, differing_fields, profile_label, variant_label
from ..runs.store import RunRecord
from ..settings import PAPER_BACKBONES

#: How the methods are called in tables and legends.
METHOD_LABELS = {"vanilla": "vanilla", "gsa": "GSA"}


def tail_epochs(epochs: int) -> int:
    """How many final epochs the chapters average the test accuracy over: a quarter, at most 30."""
    return max(1, min(30, int(epochs) // 4))


def results_table(runs: Sequence[RunRecord]) -> pd.DataFrame:
    """A tidy table, one row per run: dataset, backbone, method, seed, accuracies, time, profile."""
    variants = _variants([r.config for r in runs])
    rows = []
    for r in runs:
        c = r.config
        acc = np.asarray(r.eval_curve, dtype=float)
        k = tail_epochs(len(acc))
        info = r.dataset
        rows.append(
            {
                "dataset": c.dataset,
                "source": info.get("source"),
                "stand_in": bool(info.get("stand_in_for")),
                "backbone": c.backbone,
                "method": c.method,
                "variant": variants[c.run_id()],
                "seed": c.seed,
                "data_seed": c.data_seed,
                "epochs": len(acc),
                "final_acc": float(acc[-1]),
                "tail_acc": float(np.mean(acc[-k:])),
                "tail_epochs": k,
                "best_acc": float(np.max(acc)),
                "seconds": float(r.seconds or 0.0),
                "profile": r.profile_label or profile_label(c),
                "run_id": r.run_id,
            }
        )
    return pd.DataFrame(rows)


def _variants(configs: Sequence[ExperimentConfig]) -> dict[str, str]:
    """Run id -> variant label, grouping runs by dataset, backbone and method."""
    groups: dict[tuple, list[ExperimentConfig]] = {}
    for c in configs:
        groups.setdefault((c.dataset, c.backbone, c.method), []).append(c)
    out = {}
    for group in groups.values():
        by = differing_fields(group)
        out.update({c.run_id(): variant_label(c, by) for c in group})
    return out


def _variant_column(table: pd.DataFrame) -> str:
    return "variant" if "variant" in table.columns else "method"


def summary_table(table: pd.DataFrame) -> pd.DataFrame:
    """Mean, standard deviation (over seeds) and number of seeds per dataset, backbone and method."""
    if table.empty:
        raise ValueError("summary_table: no runs")
    key = _variant_column(table)
    g = table.groupby(["dataset", "backbone", key])["tail_acc"]
    stats = pd.DataFrame({"mean": g.mean(), "std": g.std(ddof=1), "n": g.count()})
    wide = stats.unstack(key)
    wide.columns = wide.columns.swaplevel(0, 1)
    present = list(dict.fromkeys(wide.columns.get_level_values(0)))
    variants = [v for v in present if v == "vanilla"] + [v for v in present if v.split(" ")[0] == "gsa"]
    variants += [v for v in present if v not in variants]
    wide = wide[[(v, s) for v in variants for s in ("mean", "std", "n")]]
    if "vanilla" in variants:
        for v in variants:
            if v.split(" ")[0] == "gsa":
                wide[(f"{_label(v)} - vanilla", "points")] = 100 * (wide[(v, "mean")] - wide[("vanilla", "mean")])
    wide.columns = pd.MultiIndex.from_tuples([(_label(v), s) for v, s in wide.columns])
    return wide


def _label(variant: str) -> str:
    """``"gsa (lr=0.001)"`` -> ``"GSA (lr=0.001)"``: the method's display name, settings kept."""
    method, _, rest = variant.partition(" ")
    return METHOD_LABELS.get(method, method) + (f" {rest}" if rest else "")


def format_summary(summary: pd.DataFrame) -> pd.DataFrame:
    """:func:`summary_table` as text for display: ``"63.8 ± 2.1 (n=3)"`` per method, in percent."""
    out = pd.DataFrame(index=summary.index)
    for m in dict.fromkeys(summary.columns.get_level_values(0)):
        if m == "GSA - vanilla":
            out["GSA - vanilla (points)"] = [f"{v:+.1f}" for v in summary[(m, "points")]]
            continue
        cells = []
        for mean, std, n in zip(summary[(m, "mean")], summary[(m, "std")], summary[(m, "n")]):
            if pd.isna(mean):
                cells.append("-")
            elif pd.isna(std):
                cells.append(f"{100 * mean:.1f} (n={int(n)})")
            else:
                cells.append(f"{100 * mean:.1f} ± {100 * std:.1f} (n={int(n)})")
        out[m] = cells
    return out


def paper_reference(dataset: str) -> pd.DataFrame | None:
    """The paper's Table 2 accuracies (%) for a dataset: vanilla and GSA per backbone, and the gain."""
    from ..runs.tables import DATASET_COLUMNS, PAPER_TABLE2, row_label

    col = DATASET_COLUMNS.get(dataset)
    if col is None:
        return None
    rows = []
    for bb in PAPER_BACKBONES:
        v, g = PAPER_TABLE2[row_label("vanilla", bb)][col], PAPER_TABLE2[row_label("gsa", bb)][col]
        rows.append(
            {
                "backbone": bb,
                "vanilla": f"{v.mean:.2f} ({v.std:.2f})",
                "GSA": f"{g.mean:.2f} ({g.std:.2f})",
                "GSA - vanilla (points)": f"{g.mean - v.mean:+.2f}",
            }
        )
    return pd.DataFrame(rows).set_index("backbone")


def chance_accuracy(y_test) -> float:
    """Test accuracy of always predicting the most frequent test class (the "chance" line)."""
    y = np.asarray(y_test).astype(int).ravel()
    if y.size == 0:
        raise ValueError("chance_accuracy: no labels")
    return float(np.bincount(y).max() / y.size)


def _percent_text(x: float) -> str:
    return f"{100 * x:.1f}%"


def compare_methods(table: pd.DataFrame, chance: float | Mapping[str, float] | None = None) -> list[str]:
    """One sentence per (dataset, backbone) saying, from the numbers, whether GSA beat vanilla."""
    out = []
    key = _variant_column(table)
    for (ds, bb), sub in table.groupby(["dataset", "backbone"], sort=False):
        v = sub[sub.method == "vanilla"]
        gsa_variants = list(dict.fromkeys(sub[sub.method == "gsa"][key]))
        if not gsa_variants or v.empty:
            out.append(f"{ds} / {bb}: only {', '.join(sorted(sub.method.unique()))} runs; nothing to compare.")
            continue
        for variant in gsa_variants:
            where = f"{ds} / {bb}" + (f" / {_label(variant)}" if len(gsa_variants) > 1 else "")
            out.append(_compare(where, sub[sub[key] == variant], v, chance, ds))
    return out


def _compare(where: str, g: pd.DataFrame, v: pd.DataFrame, chance: float | Mapping[str, float] | None, ds: str) -> str:
    """The sentence of :func:`compare_methods` for one GSA variant against vanilla."""
    row = compare_over_seeds({"gsa": g["tail_acc"], "vanilla": v["tail_acc"]}).loc["gsa"]
    mg, mv = g["tail_acc"].mean(), v["tail_acc"].mean()
    paired = (
        g.set_index("seed")["tail_acc"]
        .to_frame("gsa")
        .join(v.set_index("seed")["tail_acc"].to_frame("vanilla"), how="inner")
    )
    n = len(paired)
    wins = int((paired.gsa > paired.vanilla).sum())
    s = (
        f"{where}: GSA {_percent_text(mg)} vs vanilla {_percent_text(mv)}, {row['points']:+.1f} points "
        f"(ahead on {wins} of {n} seed{'s' if n != 1 else ''}; {format_p(row['p'])}): {_VERDICT_TEXT[row['verdict']]}."
    )
    c = chance.get(ds) if isinstance(chance, Mapping) else chance
    if c is not None and max(mg, mv) < c + 0.05:
        s += f" Both are within 5 points of chance ({_percent_text(c)}): this run learned little either way."
    elif c is not None and min(mg, mv) < c + 0.05:
        s += f" The {'vanilla' if mv < mg else 'GSA'} model is near chance ({_percent_text(c)})."
    return s


#: How :func:`compare_methods` words :func:`~gsa_utils.protocol.verdict`.
_VERDICT_TEXT = {
    "better": "GSA beat vanilla",
    "worse": "GSA did worse than vanilla",
    "no clear difference": "no clear difference (GSA did not clearly beat vanilla)",
    "too few seeds": "too few seeds to tell a real difference from luck",
}


def train_test_warnings(
    runs: Sequence[RunRecord], chance: float | Mapping[str, float], margin: float = 0.05, train_gain: float = 0.25
) -> list[str]:
    """Sentences for runs that learned the training set but stayed near chance on the test set."""
    out = []
    for r in runs:
        c = r.config
        ch = chance.get(c.dataset) if isinstance(chance, Mapping) else chance
        if ch is None:
            continue
        train = float(np.asarray(r.history["train_acc"], dtype=float)[-1])
        acc = np.asarray(r.eval_curve, dtype=float)
        test = float(acc[-tail_epochs(len(acc)) :].mean())
        if train >= ch + train_gain and test <= ch + margin:
            s = (
                f"{c.dataset} / {c.backbone} / {METHOD_LABELS.get(c.method, c.method)} / seed {c.seed}: training "
                f"accuracy {_percent_text(train)} but test accuracy {_percent_text(test)}, "
                f"about chance ({_percent_text(ch)}). Either it "
                f"overfitted"
            )
            if c.method == "gsa":
                s += (
                    ", or the test-time evaluation is off: the CNN's batch normalisation normalises test images "
                    "with running averages collected during training, and if the map's overall scale shrank a "
                    "lot during phase 1, averages still dominated by the early, larger inputs make the test "
                    "activations far too small"
                )
            out.append(s + ".")
    return out
