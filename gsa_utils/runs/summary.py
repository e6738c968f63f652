"""The paper's protocol applied to a results folder: one cell of Table 2 from its runs.

Introduced in chapter 10 (``10_baselines``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..data.registry import normalise_dataset_name
from ..protocol import N_SELECTED_EPOCHS, fallback_epochs, protocol_accuracy, select_hyperparameters
from .config import BACKBONE_METHODS, PIXEL_METHODS, differing_fields, normalise_method, variant_label
from .store import RunRecord, load_results


@dataclass
class ProtocolSummary:
    """The paper's number for one (dataset, method, backbone), and how it was obtained.

    Attributes
    ----------
    mean, std
        Test accuracy (a fraction) over the selected epochs, or over the seeds' numbers when
        ``seeds`` has two or more (``samples`` then holds one per seed); ``mean`` is ``None``
        without the full run, ``std`` NaN for one number (LR, SVM).
    best_params, cv_score
        The chosen setting's hyper-parameters and its mean validation accuracy.
    profile, run_id
        Label (:func:`~gsa_utils.runs.config.profile_label`) and id of the full run.
    notes
        Every deviation from the paper's protocol, in words.
    """

    mean: float | None = None
    std: float | None = None
    samples: list[float] = field(default_factory=list)
    epochs: list[int] = field(default_factory=list)
    best_params: dict | None = None
    n_folds_done: int = 0
    profile: str | None = None
    cv_score: float | None = None
    run_id: str | None = None
    n_settings: int = 0
    dataset_source: str | None = None
    stand_in_for: str | None = None
    dataset_statement: str | None = None
    notes: list[str] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)


def protocol_summary(
    results_dir: str | os.PathLike,
    dataset: str,
    method: str,
    backbone: str | None = None,
    *,
    n_epochs: int = N_SELECTED_EPOCHS,
    seed: int | None = None,
    results: Sequence[RunRecord] | None = None,
) -> ProtocolSummary:
    """The paper's number for one (dataset, method, backbone): CV-chosen setting, CV-chosen epochs, test accuracy.

    Introduced in chapter 10 (``10_baselines``). The settings with all CV folds finished
    (else the most, noted) compete by :func:`~gsa_utils.protocol.select_hyperparameters`; the
    winner's full-training run is read at the chosen epochs
    (:func:`~gsa_utils.protocol.protocol_accuracy`). ``seed=None`` takes every seed present (mean
    and spread over the seeds' numbers); ``results``: already loaded runs (``results_dir`` is then ignored).
    """
    pool = list(results) if results is not None else load_results(results_dir)
    if seed is None:
        seeds = sorted({r.config.seed for r in cell_runs(pool, dataset, method, backbone)})
        if len(seeds) > 1:
            return _over_seeds(
                [
                    protocol_summary(results_dir, dataset, method, backbone, n_epochs=n_epochs, seed=s, results=pool)
                    for s in seeds
                ]
            )
    summary = _summarise(results_dir, dataset, method, backbone, n_epochs=n_epochs, seed=seed, results=pool)
    if summary.mean is not None and seed is not None:
        summary.seeds = [seed]
    elif summary.mean is not None:
        summary.seeds = sorted({r.config.seed for r in pool if r.run_id == summary.run_id})
    return summary


def _over_seeds(per_seed: list[ProtocolSummary]) -> ProtocolSummary:
    """One summary from the protocol's number of every seed: mean and spread over seeds."""
    done = [s for s in per_seed if s.mean is not None]
    if not done:
        first = per_seed[0]
        first.notes = list(dict.fromkeys(n for s in per_seed for n in s.notes))
        return first
    means = np.array([s.mean for s in done])
    first = done[0]
    seeds = [s.seeds[0] for s in done]
    notes = list(dict.fromkeys(n for s in done for n in s.notes))
    notes.append(f"mean and spread over {len(done)} seeds {seeds} (each the protocol's number of one seed)")
    if len(done) < len(per_seed):
        notes.append(f"{len(per_seed) - len(done)} seed(s) without a protocol number left out")
    if len({str(s.best_params) for s in done}) > 1:
        notes.append("the seeds chose different hyper-parameters; best_params are those of seed " + str(seeds[0]))
    return replace(
        first,
        mean=float(means.mean()),
        std=float(means.std(ddof=1)) if len(means) > 1 else float("nan"),
        samples=[float(m) for m in means],
        n_folds_done=min(s.n_folds_done for s in done),
        cv_score=None if any(s.cv_score is None for s in done) else float(np.mean([s.cv_score for s in done])),
        n_settings=max(s.n_settings for s in done),
        notes=notes,
        seeds=seeds,
    )


def setting_summaries(
    results_dir: str | os.PathLike,
    dataset: str,
    method: str,
    backbone: str | None = None,
    *,
    n_epochs: int = N_SELECTED_EPOCHS,
    results: Sequence[RunRecord] | None = None,
) -> dict[str, ProtocolSummary]:
    """The protocol's number per setting: one when cross-validation chooses, else one per setting.

    Introduced in chapter 11 (``11_results``). Without CV runs each setting (two GSA recipes, say)
    gets its own summary, labelled by :func:`~gsa_utils.runs.config.variant_label`.
    """
    pool = list(results) if results is not None else load_results(results_dir)
    chosen = protocol_summary(results_dir, dataset, method, backbone, n_epochs=n_epochs, results=pool)
    if chosen.mean is not None or chosen.n_settings <= 1:
        return {normalise_method(method): chosen}
    runs = cell_runs(pool, dataset, method, backbone)
    by = differing_fields([r.config for r in runs])
    groups: dict[str, list[RunRecord]] = {}
    for r in runs:
        groups.setdefault(variant_label(r.config, by), []).append(r)
    return {
        label: protocol_summary(results_dir, dataset, method, backbone, n_epochs=n_epochs, results=rs)
        for label, rs in groups.items()
    }


def cell_runs(pool: Sequence[RunRecord], dataset: str, method: str, backbone: str | None) -> list[RunRecord]:
    """The runs of one (dataset, method), and of ``backbone`` when one is named."""
    ds_name, method = normalise_dataset_name(dataset), normalise_method(method)
    return [
        r
        for r in pool
        if r.config.dataset == ds_name
        and r.config.method == method
        and (backbone is None or r.config.backbone in (None, backbone))
    ]


def _summarise(
    results_dir: str | os.PathLike,
    dataset: str,
    method: str,
    backbone: str | None,
    *,
    n_epochs: int,
    seed: int | None,
    results: Sequence[RunRecord] | None,
) -> ProtocolSummary:
    """:func:`protocol_summary` for one seed, filled in step by step."""
    method = normalise_method(method)
    pool = list(results) if results is not None else load_results(results_dir)
    runs = cell_runs(pool, dataset, method, None)
    summary = ProtocolSummary()
    notes = summary.notes
    if method in BACKBONE_METHODS:
        present = sorted({r.config.backbone for r in runs})
        if backbone is None and len(present) > 1:
            notes.append(f"runs with backbones {present}: name one")
            return summary
        if backbone is None and present:
            backbone = present[0]
        runs = [r for r in runs if r.config.backbone == backbone]
    if not runs:
        notes.append("no finished runs")
        return summary
    seeds = sorted({r.config.seed for r in runs})
    if seed is None:
        seed = seeds[0]
        if len(seeds) > 1:
            notes.append(f"runs with seeds {seeds}: using seed {seed}")
    runs = [r for r in runs if r.config.seed == seed]
    if not runs:
        notes.append(f"no finished runs with seed {seed}")
        return summary

    groups: dict[str, dict] = {}
    for r in runs:
        g = groups.setdefault(r.config.group_key(), {"folds": {}, "full": None, "config": r.config})
        if r.config.fold is None:
            g["full"] = r
        else:
            g["folds"][r.config.fold] = r
    summary.n_settings = len(groups)

    def describe(full: RunRecord | None) -> None:
        if full is None:
            return
        summary.profile, summary.run_id = full.profile_label, full.run_id
        summary.dataset_source = full.dataset.get("source")
        summary.stand_in_for = full.dataset.get("stand_in_for")
        summary.dataset_statement = full.dataset.get("statement")

    if method in PIXEL_METHODS:
        with_full = [g for g in groups.values() if g["full"] is not None]
        if not with_full:
            notes.append("the fitted model's test run is missing")
            return summary
        if len(with_full) > 1:
            notes.append(f"{len(with_full)} settings found; using {with_full[0]['full'].run_id}")
        full = with_full[0]["full"]
        acc = float(full.history["test_acc"][0])
        describe(full)
        _update(
            summary,
            mean=acc,
            std=float("nan"),
            samples=[acc],
            epochs=[1],
            best_params=(full.baseline or {}).get("best_params"),
            cv_score=(full.baseline or {}).get("cv_accuracy"),
            n_folds_done=full.config.n_folds,
        )
        notes.append("one fitted model: a single test accuracy, hyper-parameters from its internal grid search")
        return summary

    with_folds = [g for g in groups.values() if g["folds"]]
    if with_folds:
        needed = with_folds[0]["config"].n_folds
        most = max(len(g["folds"]) for g in with_folds)
        candidates = [g for g in with_folds if len(g["folds"]) == most]
        if most < needed:
            notes.append(f"cross-validation incomplete: settings compared on {most} of {needed} folds")
        if len(candidates) < len(groups):
            left = len(groups) - len(candidates)
            notes.append(f"{left} setting(s) without {'all' if most == needed else 'as many'} CV folds left out")
        cv_input = {}
        for g in candidates:
            curves = [g["folds"][f].history["val_acc"] for f in sorted(g["folds"])]
            lengths = {len(c) for c in curves}
            if len(lengths) > 1:
                notes.append(
                    f"setting {g['config'].group_key()}: folds trained for different numbers of epochs "
                    f"{sorted(lengths)}; using the first {min(lengths)}"
                )
                curves = [c[: min(lengths)] for c in curves]
            cv_input[g["config"].group_key()] = np.vstack(curves)
        n_available = len(next(iter(cv_input.values()))[0])
        choice = select_hyperparameters(cv_input, n_epochs)
        best = groups[choice["params"]]
        epochs = choice["epochs"]
        if n_available < n_epochs:
            notes.append(f"only {n_available} epochs trained: all used instead of the best {n_epochs}")
        _update(
            summary,
            best_params=best["config"].tuning_params(),
            cv_score=choice["score"],
            n_folds_done=len(best["folds"]),
            epochs=[int(e) for e in epochs],
        )
        full = best["full"]
        if full is None:
            notes.append(
                "the chosen setting's run on the whole training set has no result (not run yet, or its "
                "result file is corrupt: `python -m gsa_utils status` names corrupt runs)"
            )
            describe(next(iter(best["folds"].values())))
            summary.run_id = None
            return summary
    else:
        with_full = [g for g in groups.values() if g["full"] is not None]
        official_val = {
            key: np.vstack([g["full"].history["val_acc"]])
            for key, g in groups.items()
            if g["full"] is not None
            and not g["config"].merge_val
            and len(g["full"].history["val_acc"])
            and not np.isnan(g["full"].history["val_acc"]).any()
        }
        if official_val and len(official_val) == len(with_full):
            choice = select_hyperparameters(official_val, n_epochs)
            best = groups[choice["params"]]
            full = best["full"]
            epochs = choice["epochs"]
            notes.append(
                "epochs" + (" and settings" if len(official_val) > 1 else "") + " selected on the official "
                "validation split (merge_val=False), not by cross-validation"
            )
            _update(
                summary,
                best_params=best["config"].tuning_params(),
                cv_score=choice["score"],
                epochs=[int(e) for e in epochs],
            )
        elif len(with_full) != 1:
            notes.append(
                f"no cross-validation runs and {len(with_full)} settings: cannot choose hyper-parameters "
                "or epochs without the test set"
            )
            return summary
        else:
            best = with_full[0]
            full = best["full"]
            n_available = len(full.history["test_acc"])
            epochs = fallback_epochs(n_available, n_epochs)
            notes.append(
                f"no cross-validation runs: measured at the last {len(epochs)} of {n_available} epochs "
                f"(the last {n_epochs} only in runs of at least {2 * n_epochs}), not at CV-selected ones "
                "(not the paper's protocol)"
            )
            _update(summary, best_params=best["config"].tuning_params(), epochs=[int(e) for e in epochs])
    used = {(r.dataset.get("source"), r.dataset.get("stand_in_for")) for r in [full, *best["folds"].values()]}
    if len(used) > 1:
        kinds = sorted(f"{src} stand-in" if stand else str(src) for src, stand in used)
        notes.append(
            f"the chosen setting's runs used different data ({', '.join(kinds)}): was the data folder "
            "added or removed between runs?"
        )
    test_curve = full.history["test_acc"]
    if len(test_curve) < max(epochs):
        notes.append(f"the full run has {len(test_curve)} epochs, fewer than the selected epoch {int(max(epochs))}")
        describe(full)
        return summary
    mean, std, samples = protocol_accuracy(test_curve, epochs)
    describe(full)
    _update(summary, mean=mean, std=std, samples=[float(s) for s in samples])
    return summary


def _update(summary: ProtocolSummary, **values: Any) -> None:
    for name, value in values.items():
        setattr(summary, name, value)
