"""What the dataset chapters share: which runs to train, training them, tables, plots, banners.

Introduced in chapter 6 (``06_idrid``) and used by chapters 7 (``07_jaffe``), 8
(``08_your_own_data``) and 9 (``09_retinamnist``). Every dataset chapter does the same
thing: say plainly whether real data or a synthetic stand-in is used, train every backbone
of the profile with and without global spatial attention through
:mod:`gsa_utils.experiments` (so the runs land in the shared results folder that chapter
11 tabulates), and show a results table, training curves and the learned attention map,
with a comparison sentence computed from the numbers rather than written in advance.

Nothing here changes global state; figures are returned, not shown.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import cv2
import numpy as np
import pandas as pd

from .data.base import DataError, StructuredDataset
from .data.registry import describe_source, is_stand_in
from .experiments import RESULTS_DIR_ENV, default_results_dir
from .experiments import (ExperimentConfig, load_attention_map, load_results, profile_label, sweep)
from .metrics import attention_quality, map_roc_auc
from .plotting import to_display
from .profiles import Profile

__all__ = [
    "RESULTS_DIR_ENV",
    "METHOD_LABELS",
    "default_results_dir",
    "data_banner",
    "chapter_seeds",
    "chapter_configs",
    "ChapterResults",
    "run_chapter",
    "initial_attention_map",
    "tail_epochs",
    "results_table",
    "summary_table",
    "compare_methods",
    "format_summary",
    "paper_reference",
    "chance_accuracy",
    "train_test_warnings",
    "plot_accuracy",
    "plot_training_curves",
    "show_attention",
    "check_attention_map",
    "map_verdict",
    "expect_data_error",
    "folder_tree",
    "write_oct_folder",
    "plot_idrid_fixture",
]

#: Environment variable that moves the results folder (else ``<repo>/results``).
#: How the methods are called in tables and legends.
METHOD_LABELS = {"vanilla": "vanilla", "gsa": "GSA"}


# --------------------------------------------------------------------------------------
# where results go, what data is used
# --------------------------------------------------------------------------------------
def data_banner(ds: StructuredDataset) -> str:
    """One plain line for the top of a chapter's output: real data or a synthetic stand-in, and where.

    Introduced in chapter 6 (``06_idrid``).

    Starts with ``"REAL DATA:"`` or ``"SYNTHETIC STAND-IN:"`` (or ``"SYNTHETIC DATA:"`` for a
    generator asked for by name), followed by :func:`~gsa_utils.data.registry.describe_source`,
    which says where the files were looked for.
    """
    if is_stand_in(ds):
        head = "SYNTHETIC STAND-IN"
    elif ds.source == "real":
        head = "REAL DATA"
    else:
        head = "SYNTHETIC DATA"
    return f"{head}: {describe_source(ds)}"


# --------------------------------------------------------------------------------------
# which runs
# --------------------------------------------------------------------------------------
def chapter_seeds(profile: Profile, smoke_seeds: int, full_seeds: int | None = None) -> tuple[int, ...]:
    """The seeds a chapter trains: the first ``smoke_seeds`` of the smoke profile's, all the full profile's.

    Introduced in chapter 6 (``06_idrid``).

    Parameters
    ----------
    profile
        The run profile.
    smoke_seeds
        How many of ``profile.seeds`` fit the chapter's CPU time budget in the smoke profile.
    full_seeds
        Cap in the full profile (``None``: all of ``profile.seeds``).
    """
    n = smoke_seeds if profile.name == "smoke" else (full_seeds or len(profile.seeds))
    if n < 1:
        raise ValueError(f"chapter_seeds: need at least one seed, got {n}")
    return tuple(profile.seeds[:n])


def chapter_configs(datasets: Sequence[str] | str, profile: Profile, seeds: Sequence[int], *,
                    backbones: Sequence[str] | None = None, methods: Sequence[str] = ("vanilla", "gsa"),
                    data_seeds: Mapping[str, int] | None = None, **overrides: Any) -> list[ExperimentConfig]:
    """The runs of a dataset chapter: datasets x backbones x methods x seeds, trained on the whole training set.

    Introduced in chapter 6 (``06_idrid``).

    Every config comes from :meth:`ExperimentConfig.from_profile` (so it carries the
    profile's image size, epochs, E, Adam settings and pretraining) with ``fold=None``:
    the model trains on the whole training set and the test set is evaluated after every
    epoch. The paper's cross-validated choice of hyper-parameters and epochs is chapter
    10's; chapter 11 reads these runs from the same results folder.

    Parameters
    ----------
    datasets
        Names for :func:`~gsa_utils.data.registry.load_dataset` (``"folder:<path>"`` too).
    profile
        Settings to use (its ``name`` is stored with every run).
    seeds
        Model seeds (initialisation and shuffling).
    backbones
        Image CNNs (default: ``profile.backbones``).
    methods
        ``"vanilla"`` and/or ``"gsa"`` (or any method of :data:`gsa_utils.experiments.METHODS`).
    data_seeds
        Dataset name -> ``data_seed`` (synthetic draws and random splits); default 0.
    **overrides
        Other :class:`~gsa_utils.experiments.ExperimentConfig` fields.

    Returns
    -------
    list of ExperimentConfig
        In the order dataset, backbone, seed, method.
    """
    if isinstance(datasets, str):
        datasets = [datasets]
    backbones = list(backbones or profile.backbones)
    if not seeds:
        raise ValueError("chapter_configs: give at least one seed")
    out = []
    for ds in datasets:
        data_seed = int((data_seeds or {}).get(ds, 0))
        for bb in backbones:
            for seed in seeds:
                for m in methods:
                    out.append(ExperimentConfig.from_profile(ds, m, profile.name, backbone=bb, seed=int(seed),
                                                             data_seed=data_seed, fold=None, **overrides))
    return out


# --------------------------------------------------------------------------------------
# training and reading back
# --------------------------------------------------------------------------------------
@dataclass
class ChapterResults:
    """The finished runs of a chapter and where they are.

    Introduced in chapter 6 (``06_idrid``).

    Attributes
    ----------
    runs
        One dict per config, in config order, as :func:`gsa_utils.experiments.load_results`
        gives them (``config``, ``history``, ``map_file``, ``dataset``, ``seconds``, ...).
    results_dir
        The results folder.
    trained, reused
        Run ids trained by this call, and those found already finished in the folder.
    """

    runs: list[dict]
    results_dir: Path
    trained: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)

    def select(self, dataset: str | None = None, backbone: str | None = None, method: str | None = None,
               seed: int | None = None) -> list[dict]:
        """The runs matching every given field."""
        def keep(r: dict) -> bool:
            c = r["config"]
            return ((dataset is None or c.dataset == dataset) and (backbone is None or c.backbone == backbone)
                    and (method is None or c.method == method) and (seed is None or c.seed == seed))
        return [r for r in self.runs if keep(r)]

    def attention_map(self, dataset: str, backbone: str, seed: int | None = None) -> np.ndarray:
        """The final GSA map (H x W) of one run (the smallest seed when ``seed`` is None)."""
        runs = sorted(self.select(dataset, backbone, "gsa", seed), key=lambda r: r["config"].seed)
        if not runs:
            raise KeyError(f"no finished GSA run for {dataset} / {backbone}" + (f" / seed {seed}" if seed is not None else ""))
        amap = load_attention_map(runs[0])
        if amap is None:
            raise FileNotFoundError(f"{runs[0]['run_dir']}: the GSA run has no attention_map.npy")
        return amap

    @property
    def table(self) -> pd.DataFrame:
        """:func:`results_table` of the runs."""
        return results_table(self.runs)

    def describe(self) -> str:
        """Where the runs are and how many were trained now or reused."""
        return (f"{len(self.runs)} runs in {self.results_dir}: {len(self.trained)} trained now, "
                f"{len(self.reused)} already finished (read back)")


def run_chapter(configs: Sequence[ExperimentConfig], results_dir: str | os.PathLike | None = None, *,
                data_dir: str | os.PathLike | None = None, device: str | None = None,
                progress: bool = False, verbose: bool = True) -> ChapterResults:
    """Train every config through :func:`gsa_utils.experiments.sweep` and read the results back.

    Introduced in chapter 6 (``06_idrid``).

    Finished runs in the folder are read back, not trained again; an interrupted one
    resumes from its checkpoint. So running a chapter again is cheap, and a long GPU run
    can be continued by executing the notebook again.

    Parameters
    ----------
    configs
        The runs (:func:`chapter_configs`).
    results_dir
        Default :func:`default_results_dir`.
    data_dir, device
        Passed on (``None``: ``data/`` or ``$GSA_DATA_DIR``; the best device).
    progress
        Epoch progress bars (useful for long GPU runs).
    verbose
        Print one line per run (trained or reused, seconds, last test accuracy).

    Raises
    ------
    RuntimeError
        When a run failed (the message and the error file are named) or is held by another
        process that shares the results folder.
    """
    configs = list(configs)
    if not configs:
        raise ValueError("run_chapter: no configs")
    root = Path(results_dir) if results_dir is not None else default_results_dir()
    report = sweep(configs, root, progress=progress, data_dir=data_dir, device=device, raise_errors=True)
    busy = report["locked"] + report["lost"]
    if busy:
        raise RuntimeError(f"{len(busy)} run(s) are being trained by another process sharing {root} "
                           f"({', '.join(busy)}); wait for it and run this cell again")
    wanted = {c.run_id(): i for i, c in enumerate(configs)}
    found = {r["run_id"]: r for r in load_results(root) if r["run_id"] in wanted}
    missing = [rid for rid in wanted if rid not in found]
    if missing:
        raise RuntimeError(f"runs not finished in {root}: {', '.join(missing)}")
    runs = [found[c.run_id()] for c in configs]
    out = ChapterResults(runs=runs, results_dir=root, trained=list(report["ran"]),
                         reused=list(report["finished_before"]))
    if verbose:
        for r in runs:
            state = "trained" if r["run_id"] in out.trained else "reused "
            acc = _eval_curve(r)
            print(f"{state} {r['run_id']}: {r['seconds'] or 0:6.1f} s, last test acc "
                  f"{100 * acc[-1]:.1f}%  [{r['profile_label']}]")
        print(out.describe())
    return out


def _eval_curve(run: Mapping[str, Any]) -> np.ndarray:
    key = f"{run.get('eval_set') or 'test'}_acc"
    return np.asarray(run["history"][key], dtype=float)


def initial_attention_map(config: ExperimentConfig, data_dir: str | os.PathLike | None = None) -> np.ndarray:
    """The map a GSA run starts from, before any training (the paper's Fig. 4a).

    Introduced in chapter 7 (``07_jaffe``).

    Rebuilds the run's network exactly as :func:`gsa_utils.experiments.run_experiment`
    does (same data, ``data_seed``, caps and ``seed``) and returns its pixel CNN's output
    at initialisation as an H x W array. Only for GSA runs on the whole training set
    (``fold=None``).
    """
    from .data.registry import load_dataset
    from .experiments import build_model
    from .training import map_image, seed_everything

    if config.method != "gsa" or config.fold is not None:
        raise ValueError(f"initial_attention_map needs a GSA run with fold=None, got {config.method!r}, "
                         f"fold={config.fold!r}")
    ds = load_dataset(config.dataset, config.image_size, seed=config.data_seed, data_dir=data_dir)
    if config.n_train is not None or config.n_test is not None:
        ds = ds.subset(config.n_train, config.n_test, seed=config.data_seed)
    seed_everything(config.seed)
    model = build_model(config, ds.num_classes, ds.x_train)
    amap = map_image(model)
    assert amap is not None
    return amap


# --------------------------------------------------------------------------------------
# tables and the comparison sentence
# --------------------------------------------------------------------------------------
def tail_epochs(epochs: int) -> int:
    """How many final epochs the chapters average the test accuracy over: a quarter, at most 30.

    Introduced in chapter 6 (``06_idrid``). The paper averages 30 epochs chosen by
    cross-validation (chapter 10); the chapters, which train without cross-validation,
    average the last ``min(30, epochs // 4)`` (12 epochs: the last 3; 250: the last 30), which
    smooths the epoch-to-epoch noise of small test sets without looking at the test set
    to pick epochs.
    """
    return max(1, min(30, int(epochs) // 4))


def results_table(runs: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """A tidy table, one row per run: dataset, backbone, method, seed, accuracies, time, profile.

    Introduced in chapter 6 (``06_idrid``).

    Columns: ``dataset``, ``source`` (``real``/``synthetic``), ``stand_in`` (bool),
    ``backbone``, ``method``, ``seed``, ``data_seed``, ``epochs``, ``final_acc`` (test
    accuracy after the last epoch), ``tail_acc`` (mean over the last :func:`tail_epochs`),
    ``tail_epochs``, ``best_acc`` (the maximum over epochs: optimistic, it looks at the test
    set, shown only for comparison), ``seconds``, ``profile``, ``run_id``.
    """
    rows = []
    for r in runs:
        c = r["config"]
        acc = _eval_curve(r)
        k = tail_epochs(len(acc))
        info = r.get("dataset") or {}
        rows.append({"dataset": c.dataset, "source": info.get("source"),
                     "stand_in": bool(info.get("stand_in_for")), "backbone": c.backbone, "method": c.method,
                     "seed": c.seed, "data_seed": c.data_seed, "epochs": len(acc), "final_acc": float(acc[-1]),
                     "tail_acc": float(np.mean(acc[-k:])), "tail_epochs": k, "best_acc": float(np.max(acc)),
                     "seconds": float(r.get("seconds") or 0.0),
                     "profile": r.get("profile_label") or profile_label(c), "run_id": r["run_id"]})
    return pd.DataFrame(rows)


def summary_table(table: pd.DataFrame, value: str = "tail_acc") -> pd.DataFrame:
    """Mean, standard deviation (over seeds) and number of seeds per dataset, backbone and method.

    Introduced in chapter 6 (``06_idrid``).

    Returns a table indexed by (dataset, backbone) with columns ``(method, stat)`` for
    ``stat`` in ``mean``, ``std`` (sample std, NaN for a single seed), ``n``, plus
    ``("GSA - vanilla", "points")``, the difference of the means in percentage points,
    when both methods are present.
    """
    if table.empty:
        raise ValueError("summary_table: no runs")
    g = table.groupby(["dataset", "backbone", "method"])[value]
    stats = pd.DataFrame({"mean": g.mean(), "std": g.std(ddof=1), "n": g.count()})
    wide = stats.unstack("method")
    wide.columns = wide.columns.swaplevel(0, 1)
    methods = [m for m in ("vanilla", "gsa") if m in wide.columns.get_level_values(0)]
    methods += [m for m in dict.fromkeys(wide.columns.get_level_values(0)) if m not in methods]
    wide = wide[[(m, s) for m in methods for s in ("mean", "std", "n")]]
    if "gsa" in methods and "vanilla" in methods:
        wide[("GSA - vanilla", "points")] = 100 * (wide[("gsa", "mean")] - wide[("vanilla", "mean")])
    wide.columns = pd.MultiIndex.from_tuples([(METHOD_LABELS.get(m, m), s) for m, s in wide.columns])
    return wide


def format_summary(summary: pd.DataFrame) -> pd.DataFrame:
    """:func:`summary_table` as text for display: ``"63.8 ± 2.1 (n=3)"`` per method, in percent.

    Introduced in chapter 6 (``06_idrid``). A single seed shows no spread (``"63.8 (n=1)"``).
    """
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
    """The paper's Table 2 accuracies (%) for a dataset: vanilla and GSA per backbone, and the gain.

    Introduced in chapter 6 (``06_idrid``). Cells are "mean (std)" over the paper's 30
    selected epochs (its significance markers are left out). ``None`` for a dataset the
    paper did not use.
    """
    from .tables import DATASET_COLUMNS, PAPER_TABLE2, row_label

    col = DATASET_COLUMNS.get(dataset)
    if col is None:
        return None
    rows = []
    for bb in ("googlenet", "vgg16", "resnet152", "densenet161"):
        v, g = PAPER_TABLE2[row_label("vanilla", bb)][col], PAPER_TABLE2[row_label("gsa", bb)][col]
        rows.append({"backbone": bb, "vanilla": f"{v.mean:.2f} ({v.std:.2f})", "GSA": f"{g.mean:.2f} ({g.std:.2f})",
                     "GSA - vanilla (points)": f"{g.mean - v.mean:+.2f}"})
    return pd.DataFrame(rows).set_index("backbone")


def chance_accuracy(y_test) -> float:
    """Test accuracy of always predicting the most frequent test class (the "chance" line).

    Introduced in chapter 6 (``06_idrid``).
    """
    y = np.asarray(y_test).astype(int).ravel()
    if y.size == 0:
        raise ValueError("chance_accuracy: no labels")
    return float(np.bincount(y).max() / y.size)


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def compare_methods(table: pd.DataFrame, chance: float | Mapping[str, float] | None = None,
                    value: str = "tail_acc") -> list[str]:
    """One sentence per (dataset, backbone) saying, from the numbers, whether GSA beat vanilla.

    Introduced in chapter 6 (``06_idrid``).

    The sentence states the means, the difference in points, on how many seeds GSA was
    ahead, whether the difference is within the spread over seeds (then it is "not a
    clear difference"), and whether both are near chance. It is written for whatever the
    numbers are: when GSA did not beat vanilla, it says so.

    Parameters
    ----------
    table
        :func:`results_table` output.
    chance
        Chance accuracy (e.g. :func:`chance_accuracy`), one value or dataset -> value.
    value
        Column compared (default the mean over the last epochs).
    """
    out = []
    for (ds, bb), sub in table.groupby(["dataset", "backbone"], sort=False):
        g, v = sub[sub.method == "gsa"], sub[sub.method == "vanilla"]
        where = f"{ds} / {bb}"
        if g.empty or v.empty:
            out.append(f"{where}: only {', '.join(sorted(sub.method.unique()))} runs; nothing to compare.")
            continue
        mg, mv = g[value].mean(), v[value].mean()
        diff = 100 * (mg - mv)
        paired = g.set_index("seed")[value].to_frame("gsa").join(v.set_index("seed")[value].to_frame("vanilla"),
                                                                 how="inner")
        n = len(paired)
        wins = int((paired.gsa > paired.vanilla).sum())
        losses = int((paired.gsa < paired.vanilla).sum())
        spread = 100 * max(g[value].std(ddof=1), v[value].std(ddof=1)) if min(len(g), len(v)) > 1 else None
        seeds = f"{n} seed{'s' if n != 1 else ''}"
        if abs(diff) < 0.05:
            s = f"{where}: GSA and vanilla tied ({_pct(mg)} vs {_pct(mv)}, {seeds})."
        elif diff > 0:
            s = f"{where}: GSA scored {diff:.1f} points higher than vanilla ({_pct(mg)} vs {_pct(mv)}"
            s += f"; ahead on {wins} of {n} seeds)." if n > 1 else ", a single seed)."
            if spread is not None and diff <= spread:
                s += f" That is within the spread over seeds ({spread:.1f} points): not a clear gain."
            elif n == 1:
                s += " One seed cannot tell a real gain from luck."
        else:
            s = f"{where}: GSA did not beat vanilla: it scored {-diff:.1f} points lower ({_pct(mg)} vs {_pct(mv)}"
            s += f"; behind on {losses} of {n} seeds)." if n > 1 else ", a single seed)."
            if spread is not None and -diff <= spread:
                s += f" The gap is within the spread over seeds ({spread:.1f} points)."
        c = chance.get(ds) if isinstance(chance, Mapping) else chance
        if c is not None and max(mg, mv) < c + 0.05:
            s += f" Both are within 5 points of chance ({_pct(c)}): this run learned little either way."
        elif c is not None and min(mg, mv) < c + 0.05:
            s += f" The {'vanilla' if mv < mg else 'GSA'} model is near chance ({_pct(c)})."
        out.append(s)
    return out


def train_test_warnings(results: ChapterResults, chance: float | Mapping[str, float], margin: float = 0.05,
                        train_gain: float = 0.25) -> list[str]:
    """Sentences for runs that learned the training set but stayed near chance on the test set.

    Introduced in chapter 6 (``06_idrid``).

    A run is flagged when its last training accuracy is at least ``train_gain`` above
    chance while its test accuracy (mean over the last epochs) is within ``margin`` of it.
    The sentence names two causes: overfitting, and, for GSA, batch-normalisation statistics
    that no longer match the input scale after the map shrank.
    """
    out = []
    for r in results.runs:
        c = r["config"]
        ch = chance.get(c.dataset) if isinstance(chance, Mapping) else chance
        if ch is None:
            continue
        train = float(np.asarray(r["history"]["train_acc"], dtype=float)[-1])
        acc = _eval_curve(r)
        test = float(acc[-tail_epochs(len(acc)):].mean())
        if train >= ch + train_gain and test <= ch + margin:
            s = (f"{c.dataset} / {c.backbone} / {METHOD_LABELS.get(c.method, c.method)} / seed {c.seed}: training "
                 f"accuracy {_pct(train)} but test accuracy {_pct(test)}, about chance ({_pct(ch)}). Either it "
                 f"overfitted")
            if c.method == "gsa":
                s += (", or the test-time evaluation is off: the CNN's batch normalisation normalises test images "
                      "with running averages collected during training, and if the map's overall scale shrank a "
                      "lot during phase 1, averages still dominated by the early, larger inputs make the test "
                      "activations far too small")
            out.append(s + ".")
    return out


# --------------------------------------------------------------------------------------
# figures
# --------------------------------------------------------------------------------------
_COLOURS = {"vanilla": "tab:blue", "gsa": "tab:orange"}


def _plt():
    import matplotlib.pyplot as plt

    return plt


def plot_accuracy(table: pd.DataFrame, chance: float | Mapping[str, float] | None = None,
                  value: str = "tail_acc", size: tuple[float, float] = (4.2, 3.2)):
    """Test accuracy per backbone and method: one dot per seed, a bar for the mean; a panel per dataset.

    Introduced in chapter 6 (``06_idrid``).
    """
    plt = _plt()
    datasets = list(dict.fromkeys(table.dataset))
    fig, axes = plt.subplots(1, len(datasets), figsize=(size[0] * len(datasets), size[1]), squeeze=False)
    for ax, ds in zip(axes[0], datasets):
        sub = table[table.dataset == ds]
        backbones = list(dict.fromkeys(sub.backbone))
        methods = [m for m in ("vanilla", "gsa") if m in set(sub.method)]
        width = 0.8 / max(len(methods), 1)
        for j, m in enumerate(methods):
            for i, bb in enumerate(backbones):
                vals = sub[(sub.backbone == bb) & (sub.method == m)][value].to_numpy()
                if vals.size == 0:
                    continue
                x = i - 0.4 + width * (j + 0.5)
                ax.bar(x, vals.mean(), width * 0.9, color=_COLOURS.get(m), alpha=0.35,
                       label=METHOD_LABELS.get(m, m) if i == 0 else None)
                ax.scatter(np.full(vals.size, x) + np.linspace(-0.1, 0.1, vals.size) * width, vals,
                           color=_COLOURS.get(m), s=14, zorder=3)
        c = chance.get(ds) if isinstance(chance, Mapping) else chance
        if c is not None:
            ax.axhline(c, color="gray", ls=":", lw=1, label="chance")
        ax.set_xticks(range(len(backbones)), backbones, rotation=15)
        ax.set_ylim(0, 1)
        ax.set_ylabel("test accuracy" + (" (mean of last epochs)" if value == "tail_acc" else ""))
        ax.set_title(ds, fontsize=10)
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def plot_training_curves(results: ChapterResults, dataset: str, backbone: str | None = None,
                         keys: Sequence[str] = ("train_acc", "test_acc", "train_ce"),
                         cutoff_epoch: int | None = None, size: tuple[float, float] = (4.2, 3.0)):
    """Training curves of GSA and vanilla for one dataset and backbone: mean over seeds, min-max band.

    Introduced in chapter 6 (``06_idrid``). The dashed line marks the cut-off epoch E after
    which the map is frozen (taken from the GSA runs' config when not given).
    """
    plt = _plt()
    backbone = backbone or results.runs[0]["config"].backbone
    fig, axes = plt.subplots(1, len(keys), figsize=(size[0] * len(keys), size[1]), squeeze=False)
    for m in ("vanilla", "gsa"):
        runs = results.select(dataset, backbone, m)
        if not runs:
            continue
        if m == "gsa" and cutoff_epoch is None:
            cutoff_epoch = runs[0]["config"].cutoff_epoch
        for ax, key in zip(axes[0], keys):
            curves = [np.asarray(r["history"][key], dtype=float) for r in runs]
            n = min(len(c) for c in curves)
            stack = np.vstack([c[:n] for c in curves])
            ep = np.arange(1, n + 1)
            label = f"{METHOD_LABELS.get(m, m)} ({len(runs)} seed{'s' if len(runs) > 1 else ''})"
            ax.plot(ep, stack.mean(0), color=_COLOURS[m], label=label)
            if len(runs) > 1:
                ax.fill_between(ep, stack.min(0), stack.max(0), color=_COLOURS[m], alpha=0.2)
    for ax, key in zip(axes[0], keys):
        if cutoff_epoch:
            ax.axvline(cutoff_epoch, color="gray", ls="--", lw=1)
            ax.text(cutoff_epoch, 0.98, " E", transform=ax.get_xaxis_transform(), va="top", color="gray")
        ax.set_xlabel("epoch")
        ax.set_ylabel(key.replace("_", " ").replace("ce", "cross-entropy").replace("acc", "accuracy"))
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(f"{dataset} / {backbone}", fontsize=10)
    fig.tight_layout()
    return fig


def check_attention_map(amap, image_shape: Sequence[int]) -> np.ndarray:
    """Assert a GSA map is one H x W map (shared by every image) with values in [0, 1]; return it.

    Introduced in chapter 6 (``06_idrid``).

    Raises
    ------
    AssertionError
        With the shape or range found.
    """
    a = np.asarray(amap, dtype=float)
    h, w = tuple(image_shape)[-2:]
    assert a.shape == (h, w), f"the map is {a.shape}, expected one {h} x {w} map for all images"
    assert np.isfinite(a).all(), "the map has NaN or infinite values"
    assert a.min() >= 0.0 and a.max() <= 1.0, f"the map leaves [0, 1]: {a.min():.4f} .. {a.max():.4f}"
    return a


def show_attention(maps: Mapping[str, np.ndarray], image=None, mask=None, *, product: str | None = None,
                   cmap: str = "magma", size: float = 3.0, title: str | None = None):
    """The learned map(s) next to a sample image, and the image as the CNN sees it (image x map).

    Introduced in chapter 6 (``06_idrid``).

    Each map is drawn rescaled to its own range (as the paper's figures are; the title
    gives the actual range), bright = large weight.

    Parameters
    ----------
    maps
        Title -> H x W map (e.g. one per backbone).
    image
        A C x H x W sample in [0, 1] (``None``: no image panels, e.g. for JAFFE faces
        that may not be shown).
    mask
        H x W ground-truth relevance mask (synthetic data): drawn as a cyan outline, and the
        map's ROC-AUC against it goes into the panel title.
    product
        Which map multiplies the image in the last panel (default: the first).

    Returns
    -------
    (figure, dict)
        The figure and title -> ROC-AUC (empty without a mask).
    """
    plt = _plt()
    maps = {k: np.squeeze(np.asarray(v, dtype=float)) for k, v in maps.items()}
    if not maps:
        raise ValueError("show_attention: no maps")
    m_arr = None if mask is None else np.asarray(mask, dtype=bool)
    n = len(maps) + (2 if image is not None else 0)
    fig, axes = plt.subplots(1, n, figsize=(size * n + 0.9, size + 0.6), squeeze=False)
    axes = list(axes[0])
    aucs: dict[str, float] = {}

    def outline(ax) -> None:
        if m_arr is not None:
            ax.contour(m_arr.astype(float), levels=[0.5], colors="cyan", linewidths=0.8)

    if image is not None:
        img = to_display(image)
        axes[0].imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1)
        axes[0].set_title("sample image" + ("\n(cyan: relevant region)" if m_arr is not None else ""), fontsize=8)
        outline(axes[0])
        axes = axes[1:]
    im = None
    for ax, (name, a) in zip(axes, maps.items()):
        im = ax.imshow((a - a.min()) / max(a.max() - a.min(), 1e-12), cmap=cmap, vmin=0, vmax=1)
        label = f"{name}\nvalues {a.min():.2g}..{a.max():.2g}"
        if m_arr is not None:
            aucs[name] = map_roc_auc(a, m_arr)
            label += f", ROC-AUC {aucs[name]:.2f}"
        outline(ax)
        ax.set_title(label, fontsize=8)
    if image is not None:
        first_name = product if product is not None else next(iter(maps))
        first = maps[first_name]
        seen = np.asarray(to_display(image), dtype=float)
        seen = seen * (first[..., None] if seen.ndim == 3 else first)
        seen = seen / max(seen.max(), 1e-12)
        axes[len(maps)].imshow(seen, cmap="gray" if seen.ndim == 2 else None, vmin=0, vmax=1)
        axes[len(maps)].set_title(f"image x map, brightened\n({first_name})", fontsize=8)
        outline(axes[len(maps)])
    for ax in fig.axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(im, ax=fig.axes, shrink=0.8, label="map, rescaled to its range")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig, aucs


def map_verdict(amap, mask=None) -> str:
    """A sentence on what a learned map does, from its values (and the relevant region, when known).

    Introduced in chapter 6 (``06_idrid``).

    Reports the range, the share of pixels the map nearly blanks out (weight below 5% of
    its largest value; only the map's shape counts here, because the image CNNs with batch
    normalisation after their first convolution undo an overall scale), and with a mask the
    ROC-AUC, the share of the map's total weight inside the region against the region's
    share of the image, and a verdict drawn from those numbers. ROC-AUC alone can mislead: a
    map that is nearly zero everywhere still orders its tiny values, so the verdict leans
    on the weight share.
    """
    a = np.squeeze(np.asarray(amap, dtype=float))
    top = float(a.max())
    blank = float((a < 0.05 * top).mean()) if top > 0 else 1.0
    s = (f"values {a.min():.3g} to {top:.3g} (mean {a.mean():.3g}); {100 * blank:.0f}% of the pixels get less "
         f"than 5% of the largest weight")
    if blank > 0.95:
        s += ", so the image CNN sees little more than a few pixels of each image"
    if mask is None:
        return s + "."
    q = attention_quality(a, mask)
    share, area = q["mass_inside"], q["mask_fraction"]
    s += (f". ROC-AUC {q['roc_auc']:.2f} against the relevant region; {100 * share:.0f}% of the map's weight lies "
          f"in that region, which covers {100 * area:.0f}% of the image: ")
    if share >= 1.5 * area and q["roc_auc"] >= 0.6:
        s += "the map concentrates on the relevant region."
    elif share > 1.1 * area:
        s += "the map leans towards the relevant region, without concentrating on it."
    else:
        s += "the map does not favour the relevant region."
    return s


# --------------------------------------------------------------------------------------
# data helpers: errors, layouts, the OCT example folder, the IDRiD fixture figure
# --------------------------------------------------------------------------------------
def expect_data_error(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> str:
    """Call ``fn`` expecting a :class:`~gsa_utils.data.DataError`; print and return its message.

    Introduced in chapter 8 (``08_your_own_data``) to show what a loader says about bad input.

    Raises
    ------
    AssertionError
        When ``fn`` returns normally (the bad input went unnoticed).
    """
    try:
        fn(*args, **kwargs)
    except DataError as err:
        msg = str(err)
        print(f"DataError: {msg}")
        return msg
    raise AssertionError(f"{getattr(fn, '__name__', fn)} accepted the input: expected a DataError")


def folder_tree(root: str | os.PathLike, max_files: int = 3) -> str:
    """A text tree of ``root`` (folders first, hidden entries left out), at most ``max_files`` files per folder.

    Introduced in chapter 6 (``06_idrid``), to show the folder layout a loader expects.
    """
    root = Path(root)
    lines = [f"{root.name}/"]

    def walk(folder: Path, prefix: str) -> None:
        entries = sorted((p for p in folder.iterdir() if not p.name.startswith(".")),
                         key=lambda p: (p.is_file(), p.name))
        dirs = [p for p in entries if p.is_dir()]
        files = [p for p in entries if p.is_file()]
        shown: list[Path | str] = dirs + files[:max_files]
        if len(files) > max_files:
            shown.append(f"... ({len(files)} files in all)")
        for i, p in enumerate(shown):
            last = i == len(shown) - 1
            branch = "└── " if last else "├── "
            if isinstance(p, str):
                lines.append(prefix + branch + p)
            elif p.is_dir():
                lines.append(prefix + branch + p.name + "/")
                walk(p, prefix + ("    " if last else "│   "))
            else:
                lines.append(prefix + branch + p.name)

    walk(root, "")
    return "\n".join(lines)


def write_oct_folder(root: str | os.PathLike, image_size: int, n_train: int = 160, n_test: int = 80,
                     seed: int = 0, layout: str = "folders") -> dict:
    """Write the synthetic OCT thickness maps as PNG files in a layout :func:`load_folder` reads.

    Introduced in chapter 8 (``08_your_own_data``).

    The maps come from :func:`gsa_utils.data.synthetic.make_oct_thickness` (colour-coded
    thickness, three severities). ``layout="folders"``: ``root/<class>/eye_NNN.png`` (the
    loader makes its own seeded 80/20 split); ``"csv"``: ``root/images/eye_NNN.png`` plus
    ``labels.csv`` (``path,label``) and ``split.csv`` (``path,split``, keeping the
    generator's train/test split). A folder already written with the same settings is kept
    as it is (a ``.settings.json`` file records them), so results and caches that refer
    to it stay valid; otherwise it is replaced.

    Returns
    -------
    dict
        ``root``, ``class_names``, ``n_files``, ``counts`` (class -> files), ``mask`` (H x W
        bool, the generator's relevant region), ``settings``, ``rewritten`` (bool).
    """
    from .data.synthetic import make_oct_thickness

    if layout not in ("folders", "csv"):
        raise ValueError(f"layout must be 'folders' or 'csv', got {layout!r}")
    root = Path(root)
    settings = {"generator": "make_oct_thickness", "image_size": int(image_size), "n_train": int(n_train),
                "n_test": int(n_test), "seed": int(seed), "layout": layout, "format": "png", "version": 1}
    marker = root / ".settings.json"
    try:
        same = json.loads(marker.read_text()) == settings
    except (OSError, ValueError):
        same = False
    if same:  # only the mask and class names are needed: a tiny draw gives them
        ds = make_oct_thickness(n_train=3, n_test=3, image_size=image_size, seed=seed)
    else:
        ds = make_oct_thickness(n_train=n_train, n_test=n_test, image_size=image_size, seed=seed)
        root.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
        try:
            _write_oct_files(tmp, ds, layout)
            (tmp / ".settings.json").write_text(json.dumps(settings))
            if root.exists():
                shutil.rmtree(root)
            os.replace(tmp, root)  # the folder appears complete or not at all
        finally:
            if tmp.exists():
                shutil.rmtree(tmp)
    if layout == "folders":
        counts = {name: len(list((root / name).glob("*.png"))) for name in ds.class_names}
    else:
        labels = [line.rsplit(",", 1)[1] for line in (root / "labels.csv").read_text().splitlines()[1:] if line]
        counts = {name: labels.count(name) for name in ds.class_names}
    return {"root": root, "class_names": list(ds.class_names), "n_files": sum(counts.values()), "counts": counts,
            "mask": ds.mask.numpy().copy(), "settings": settings, "rewritten": not same}


def _write_oct_files(root: Path, ds: StructuredDataset, layout: str) -> None:
    images = np.concatenate([ds.x_train.numpy(), ds.x_test.numpy()])
    labels = np.concatenate([ds.y_train.numpy(), ds.y_test.numpy()])
    splits = ["train"] * len(ds.y_train) + ["test"] * len(ds.y_test)
    label_rows, split_rows = ["path,label"], ["path,split"]
    for i, (img, y, split) in enumerate(zip(images, labels, splits)):
        name = ds.class_names[int(y)]
        rel = Path(name if layout == "folders" else "images") / f"eye_{i:03d}.png"
        (root / rel.parent).mkdir(parents=True, exist_ok=True)
        rgb = np.clip(np.rint(np.moveaxis(img, 0, -1) * 255), 0, 255).astype(np.uint8)
        if not cv2.imwrite(str(root / rel), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
            raise OSError(f"could not write {root / rel}")
        label_rows.append(f"{rel.as_posix()},{name}")
        split_rows.append(f"{rel.as_posix()},{split}")
    if layout == "csv":
        (root / "labels.csv").write_text("\n".join(label_rows) + "\n", encoding="utf-8")
        (root / "split.csv").write_text("\n".join(split_rows) + "\n", encoding="utf-8")


def plot_idrid_fixture(fixture, ds: StructuredDataset, n: int = 8, split: str = "train"):
    """The IDRiD pipeline on the miniature fixture: one raw file with the crop lines, then preprocessed images.

    Introduced in chapter 6 (``06_idrid``).

    Parameters
    ----------
    fixture
        :class:`gsa_utils.data.fixtures.IdridFixture` (from ``make_idrid_fixture``).
    ds
        ``load_idrid`` on that fixture, loaded with ``standardize=False`` to show [0, 1] pictures.
    n
        How many preprocessed images to show.
    split
        ``"train"`` or ``"test"``.
    """
    from .data.idrid import IDRID_CROP_START, IDRID_CROP_STOP

    plt = _plt()
    files = fixture.train_files if split == "train" else fixture.test_files
    x = ds.x_train if split == "train" else ds.x_test
    y = ds.y_train if split == "train" else ds.y_test
    flipped = set(ds.meta["flipped_train" if split == "train" else "flipped_test"])
    n = min(n, len(x))
    fig = plt.figure(figsize=(1.7 * n, 3.6))
    top = fig.add_subplot(2, 1, 1)
    raw = cv2.cvtColor(cv2.imread(str(files[0]), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    top.imshow(raw, aspect="auto")
    for col in (IDRID_CROP_START, IDRID_CROP_STOP):
        top.axvline(col, color="cyan", lw=1.5)
    top.set_title(f"raw file {files[0].name}: {raw.shape[1]} x {raw.shape[0]} px; columns "
                  f"{IDRID_CROP_START}..{IDRID_CROP_STOP - 1} (between the cyan lines) are kept", fontsize=9)
    top.set_yticks([])
    for i in range(n):
        ax = fig.add_subplot(2, n, n + i + 1)
        ax.imshow(to_display(x[i]), vmin=0, vmax=1)
        ax.set_title(f"{ds.meta[split + '_files'][i].split('.')[0]}\ngrade {int(y[i])}"
                     f"{', flipped' if i in flipped else ''}", fontsize=7)
        ax.axis("off")
    fig.tight_layout()
    return fig
