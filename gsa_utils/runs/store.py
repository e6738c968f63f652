"""The results folder format: one folder per run, written atomically, read back as records, and its runs' states.

Introduced in chapter 10 (``10_baselines``). A run's folder::

    <results_dir>/<run_id>/config.json        the settings (written first; their only copy)
    <results_dir>/<run_id>/checkpoint.pt      while training; an interrupted run resumes from it
    <results_dir>/<run_id>/attention_map.npy  GSA and L1 runs: the final map (H x W float32)
    <results_dir>/<run_id>/history.json       written last, atomically: the run is finished

A run counts as finished only when its ``history.json`` parses and is complete (:func:`missing_parts`);
a damaged or incomplete one raises :class:`ResultError` naming the file.
"""

from __future__ import annotations

import io
import json
import os
import socket
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..checkpoints import remove_checkpoint
from ..data.base import StructuredDataset
from ..data.fingerprint import data_fingerprint
from ..data.registry import describe_source, normalise_dataset_name
from ..files import move_aside, orphaned_temp_files, write_atomic, write_json
from ..history import History
from ..paths import RESULTS_DIR_ENV, repo_folder
from ..settings import FitSettings
from .config import BACKBONE_METHODS, MAP_METHODS, ExperimentConfig, profile_label
from .locks import LOCK_FILE, stale_reason

CONFIG_FILE = "config.json"
RESULT_FILE = "history.json"
CHECKPOINT_FILE = "checkpoint.pt"
MAP_FILE = "attention_map.npy"
#: Separates a run id from the suffix of a folder of results set aside because they were made on other data
#: (``<run_id>~<source>-<fingerprint key>``); such folders are kept but not read by :func:`load_results`.
SET_ASIDE_MARK = "~"
RESULT_FORMAT = 1


def default_results_dir() -> Path:
    """``$GSA_RESULTS_DIR``, else ``<repo>/results`` in a checkout, else ``./results``.

    Introduced in chapter 6 (``06_idrid``).
    """
    return repo_folder(RESULTS_DIR_ENV, "results")


class ResultError(ValueError):
    """A run's result file exists but is unusable (unparsable or incomplete); ``path`` names it."""

    def __init__(self, path: Path, fault: str) -> None:
        self.path = Path(path)
        self.fault = fault
        super().__init__(f"result {self.path.absolute()}: {fault}")


def dataset_info(
    ds: StructuredDataset, n_train_used: int, n_eval: int, eval_name: str, fingerprint: Mapping[str, Any] | None = None
) -> dict:
    """What a result records about its data (``fingerprint``: computed here when not given)."""
    if fingerprint is None:
        fp = data_fingerprint(ds)
        fingerprint = dict(fp.as_dict(), key=fp.key)
    return {
        "name": ds.name,
        "source": ds.source,
        "stand_in_for": ds.meta.get("stand_in_for"),
        "statement": describe_source(ds),
        "num_classes": ds.num_classes,
        "class_names": list(ds.class_names),
        "image_shape": list(ds.image_shape),
        "n_train": int(len(ds.y_train)),
        "n_test": int(len(ds.y_test)),
        "n_train_used": int(n_train_used),
        f"n_{eval_name}": int(n_eval),
        "standardize": ds.meta.get("standardize"),
        "standardize_mean": ds.meta.get("mean"),
        "standardize_std": ds.meta.get("std"),
        "standardize_fitted_on": ds.meta.get("standardize_fitted_on"),
        "fingerprint": dict(fingerprint),
    }


@dataclass
class RunRecord:
    """A finished run as read back from its folder (:func:`load_results`).

    Attributes
    ----------
    history
        Its :class:`~gsa_utils.history.History`, without maps (the final one is ``map_file``).
    dataset
        What the data were: name, source, ``stand_in_for``, ``statement``, sizes.
    eval_set
        ``"test"`` (``fold=None``) or ``"val"`` (a CV fold).
    baseline
        LR/SVM: ``best_params`` and ``cv_accuracy`` of the internal grid search.
    pixel_channels
        GSA's NC.
    model
        The network when :func:`~gsa_utils.runs.runner.run_experiment` trained it in this call.
    """

    run_id: str
    run_dir: Path
    config: ExperimentConfig
    history: History
    profile_label: str
    dataset: dict = field(default_factory=dict)
    eval_set: str | None = None
    baseline: dict | None = None
    pixel_channels: int | None = None
    seconds: float | None = None
    finished: str | None = None
    map_file: Path | None = None
    model: Any = None

    @property
    def eval_curve(self) -> np.ndarray:
        """Accuracy on the evaluation set after every epoch (``test_acc`` or ``val_acc``)."""
        return self.history[f"{self.eval_set or 'test'}_acc"]


def data_source(dataset: Mapping[str, Any]) -> str:
    """``"real"``, ``"stand-in"`` or ``"synthetic"`` for a result's ``dataset`` record."""
    fp = dataset.get("fingerprint") or {}
    if fp.get("source"):
        return "stand-in" if fp["source"] == "stand-in" else str(fp["source"])
    if dataset.get("stand_in_for"):
        return "stand-in"
    return str(dataset.get("source") or "unknown")


def _parse_result(path: Path) -> tuple[dict, ExperimentConfig, History]:
    """The checked contents of a result file, or :class:`ResultError` saying what is wrong."""
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultError(path, f"cannot be read ({exc})") from None
    except json.JSONDecodeError as exc:
        raise ResultError(
            path, f"not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}): truncated or damaged"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("history"), dict):
        raise ResultError(path, "incomplete: no 'history' section")
    config = _config_of(path.parent, data.get("config"))
    if config is None:
        raise ResultError(path, f"its settings ({CONFIG_FILE}) are missing or damaged")
    try:
        history = History.from_dict(data["history"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ResultError(path, f"incomplete or damaged ({type(exc).__name__}: {exc})") from None
    if not history.records or not all(isinstance(r, dict) for r in history.records):
        raise ResultError(path, "incomplete: no epoch records")
    fault = missing_parts(config, history, path.parent / MAP_FILE)
    if fault:
        raise ResultError(path, f"incomplete: {fault}")
    return data, config, history


def missing_parts(config: ExperimentConfig, history: History, map_file: Path | None = None) -> str | None:
    """What a finished run lacks (a record per epoch, GSA's and L1's map), or ``None`` when it is complete.

    ``map_file``: where the map should be (``None``: look for it in ``history.maps``).
    """
    epochs = [r.get("epoch") for r in history.records]
    want = list(range(1, config.fit.epochs + 1)) if config.fit is not None else [1]
    if epochs != want:
        return f"epoch records {_span(epochs)} but the config asks for {_span(want)} (records lost or out of order)"
    if config.method in MAP_METHODS:
        if map_file is None and want[-1] not in history.maps:
            return f"no attention map after the last epoch ({want[-1]})"
        if map_file is not None and not map_file.is_file():
            return f"its attention map {map_file.absolute()} is missing"
    return None


def _span(epochs: list) -> str:
    """``[1..5]``, or the list itself when it is not a run of consecutive integers from 1."""
    if epochs and epochs == list(range(1, len(epochs) + 1)):
        return f"1..{len(epochs)}" if len(epochs) > 1 else "1"
    return repr(epochs[:8])[:-1] + (", ...]" if len(epochs) > 8 else "]")


def read_result(run_dir: Path) -> RunRecord:
    """A finished run (see :func:`load_results`); :class:`ResultError` when ``history.json`` is unusable."""
    data, config, history = _parse_result(run_dir / RESULT_FILE)
    map_file = run_dir / MAP_FILE
    return RunRecord(
        run_id=data.get("run_id", run_dir.name),
        run_dir=run_dir,
        config=config,
        history=history,
        profile_label=profile_label(config),
        dataset=dict(data.get("dataset") or {}),
        eval_set=data.get("eval_set"),
        baseline=data.get("baseline"),
        pixel_channels=data.get("pixel_channels"),
        seconds=data.get("seconds"),
        finished=data.get("finished"),
        map_file=map_file if map_file.exists() else None,
    )


def save_result(
    config: ExperimentConfig,
    results_dir: str | os.PathLike,
    history: History,
    *,
    dataset: Mapping[str, Any] | None = None,
    baseline: Mapping[str, Any] | None = None,
    pixel_channels: int | None = None,
    seconds: float | None = None,
) -> Path:
    """Write a finished run's folder (also one trained elsewhere, e.g. on Colab); returns the folder.

    Introduced in chapter 10 (``10_baselines``). ``history`` needs a record for every epoch
    (``test_acc`` for ``fold=None``, else ``val_acc``) and, for GSA and L1, the map after the
    last epoch; an incomplete one raises ValueError. The checkpoint is then deleted.
    """
    fault = missing_parts(config, history)
    if fault:
        raise ValueError(f"{config.run_id()}: not a finished run, so no result is written: {fault}")
    run_dir = Path(results_dir) / config.run_id()
    run_dir.mkdir(parents=True, exist_ok=True)
    if not (run_dir / CONFIG_FILE).exists():
        write_config(run_dir, config)
    final_map = history.maps.get(config.fit.epochs) if config.fit is not None else None
    if final_map is not None:
        buf = io.BytesIO()
        np.save(buf, np.asarray(final_map, dtype=np.float32))
        write_atomic(run_dir / MAP_FILE, buf.getvalue())
    hist_dict = history.to_dict()
    hist_dict["maps"] = {}  # maps go to attention_map.npy, not into the JSON
    hist_dict["config"] = {k: v for k, v in history.config.items() if k not in FitSettings.names()}  # in config.json
    eval_set = "test" if config.fold is None else "val"
    result = {
        "format": RESULT_FORMAT,
        "run_id": config.run_id(),
        "dataset": dict(dataset or {"name": config.dataset}),
        "eval_set": eval_set,
        "history": hist_dict,
        "baseline": None if baseline is None else dict(baseline),
        "pixel_channels": pixel_channels,
        "seconds": seconds,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "host": socket.gethostname(),
    }
    write_json(run_dir / RESULT_FILE, result)  # last: its presence marks the run finished
    remove_checkpoint(run_dir / CHECKPOINT_FILE)
    (run_dir / "error.txt").unlink(missing_ok=True)  # left by an earlier failed attempt
    return run_dir


def load_results(
    results_dir: str | os.PathLike,
    *,
    dataset: str | None = None,
    method: str | None = None,
    backbone: str | None = None,
) -> list[RunRecord]:
    """Every finished run under ``results_dir`` (sorted by run id), optionally filtered.

    Introduced in chapter 10 (``10_baselines``). Corrupt results are left out with a warning;
    folders set aside as made on other data (``<run_id>~...``) are not read.
    """
    want_ds = normalise_dataset_name(dataset) if dataset is not None else None
    out = []
    for run_dir in _result_dirs(results_dir):
        try:
            r = read_result(run_dir)
        except ResultError as err:
            warnings.warn(f"left out a corrupt run: {err}; run the sweep again to re-run it", stacklevel=2)
            continue
        c = r.config
        if want_ds is not None and c.dataset != want_ds:
            continue
        if method is not None and c.method != method:
            continue
        if backbone is not None and c.method in BACKBONE_METHODS and c.backbone != backbone:
            continue
        out.append(r)
    return out


def _result_dirs(results_dir: str | os.PathLike) -> list[Path]:
    """The run folders under ``results_dir`` with a ``history.json``, sorted (not those set aside)."""
    root = Path(results_dir)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if SET_ASIDE_MARK not in p.name and (p / RESULT_FILE).is_file())


def set_aside_corrupt(run_dir: Path) -> Path | None:
    """Rename a corrupt ``history.json`` to ``history.json.corrupt`` (kept for inspection) so the run is trained
    again; return the new path, or ``None`` when the result is absent or good."""
    path = run_dir / RESULT_FILE
    if not path.exists():
        return None
    try:
        _parse_result(path)
    except ResultError:
        return move_aside(path)
    return None


def corrupt_results(results_dir: str | os.PathLike) -> list[tuple[Path, ExperimentConfig | None, ResultError]]:
    """``(run folder, its config or None, the error)`` of every corrupt ``history.json`` under ``results_dir``."""
    out: list[tuple[Path, ExperimentConfig | None, ResultError]] = []
    for run_dir in _result_dirs(results_dir):
        try:
            _parse_result(run_dir / RESULT_FILE)
        except ResultError as err:
            out.append((run_dir, _config_of(run_dir), err))
    return out


def write_config(run_dir: Path, config: ExperimentConfig) -> None:
    """Write ``config.json``: the run's settings, the one copy a run folder keeps."""
    write_json(run_dir / CONFIG_FILE, {"run_id": config.run_id(), "config": config.to_dict()})


def _config_of(run_dir: Path, stored: Any = None) -> ExperimentConfig | None:
    """The config of a run folder (``None`` when it is missing or unreadable).

    ``stored``: the copy older folders kept in ``history.json``; else ``config.json`` is read.
    """
    try:
        if stored is None:
            stored = json.loads((run_dir / CONFIG_FILE).read_text())["config"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return ExperimentConfig.from_dict(stored)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def load_attention_map(result: RunRecord) -> np.ndarray | None:
    """The final attention map (H x W) of a GSA or L1 run, else ``None``.

    Introduced in chapter 10 (``10_baselines``).
    """
    return None if result.map_file is None else np.load(result.map_file)


#: Every state a run folder can be in, in the order they are counted.
RUN_STATES = ("finished", "set aside", "corrupt", "running", "interrupted", "failed", "not started")


def _left_behind(run_dir: Path) -> list[str]:
    """Checkpoints set aside and temporary files of killed writers in ``run_dir``."""
    found = [
        f"corrupt checkpoint set aside (kept for inspection): {bad.absolute()}"
        for bad in sorted(run_dir.glob(f"{CHECKPOINT_FILE}*.corrupt*"))
    ]
    found += [
        f"checkpoint of other settings set aside (kept for inspection): {bad.absolute()}"
        for bad in sorted(run_dir.glob(f"{CHECKPOINT_FILE}*.foreign*"))
    ]
    for tmp in orphaned_temp_files(run_dir):
        size = tmp.stat().st_size if tmp.exists() else 0
        found.append(
            f"temporary file of a killed writer ({size / 2**20:.1f} MiB): {tmp.absolute()}; the next "
            f"run of {run_dir.name} removes it"
        )
    return found


def run_state(run_dir: Path, stale_after: float) -> tuple[str, str | None]:
    """The state of one run folder (one of :data:`RUN_STATES`) and, for a corrupt result or a stale lock, why."""
    result_error = None
    if (run_dir / RESULT_FILE).exists():
        try:
            read_result(run_dir)
        except ResultError as err:
            result_error = err
    if SET_ASIDE_MARK in run_dir.name:
        return "set aside", None  # results made on other data, kept for reference
    if result_error is not None:
        return "corrupt", f"{result_error}; the sweep re-runs it"
    if (run_dir / RESULT_FILE).exists():
        return "finished", None
    if (run_dir / LOCK_FILE).exists():
        why = stale_reason(run_dir / LOCK_FILE, stale_after)  # the rule run and sweep use to take it over
        if why is None:
            return "running", None
        return "interrupted", (
            f"lock {(run_dir / LOCK_FILE).absolute()} left by a crashed process ({why}); "
            f"the next run or sweep takes it over"
        )
    if (run_dir / "error.txt").exists():
        return "failed", None
    return ("interrupted" if (run_dir / CHECKPOINT_FILE).exists() else "not started"), None


def results_status(results: str | os.PathLike, stale_after: float) -> tuple[dict[str, str], list[str]]:
    """``{run folder name: state}`` for every run under ``results``, and the problems found (one line each)."""
    states: dict[str, str] = {}
    problems: list[str] = []
    for run_dir in sorted(p for p in Path(results).iterdir() if p.is_dir()):
        problems += _left_behind(run_dir)
        states[run_dir.name], why = run_state(run_dir, stale_after)
        if why is not None:
            problems.append(why)
    return states, problems
