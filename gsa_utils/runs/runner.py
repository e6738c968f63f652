"""One run: load its data, build its network from the config, train it, write its folder.

Introduced in chapter 10 (``10_baselines``).
"""

from __future__ import annotations

import hashlib
import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from ..data.base import StructuredDataset
from ..data.fingerprint import data_fingerprint, file_sha256
from ..data.registry import load_dataset, plan_data
from ..data.standardization import standardize_dataset
from ..devices import seed_everything
from ..history import History
from ..models import GlobalSpatialAttention
from ..protocol import stratified_folds
from ..training import HasAttentionMap, two_phase_fit
from .config import DATA_DEFAULTS, PIXEL_METHODS, ExperimentConfig
from .methods import METHOD_TABLE
from .store import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    MAP_FILE,
    RESULT_FILE,
    SET_ASIDE_MARK,
    ResultError,
    RunRecord,
    data_source,
    dataset_info,
    read_result,
    save_result,
    set_aside_corrupt,
    write_config,
)

_DATA_CACHE: dict[tuple, tuple[StructuredDataset, dict]] = {}
_DATA_CACHE_SIZE = 2
_FILE_HASHES: dict[tuple, str] = {}


def absolute(path: str | os.PathLike | bool | None) -> str | bool | None:
    """A path made absolute (as Ray's workers, in another folder, must see it); ``None`` and ``False`` as given."""
    return str(Path(path).expanduser().resolve()) if isinstance(path, (str, os.PathLike)) else path


def _load(
    config: ExperimentConfig, data_dir: str | os.PathLike | None, cache_dir: str | os.PathLike | bool | None = None
) -> tuple[StructuredDataset, dict]:
    """The run's unstandardised dataset and its fingerprint (both kept in memory for the next runs of a sweep),
    capped by n_train/n_test."""
    plan = plan_data(config.dataset, config.image_size, data_dir)  # a file put in place changes the key
    reading = {name: getattr(config, name) for name in DATA_DEFAULTS}
    key = (
        config.dataset,
        config.image_size,
        config.data_seed,
        config.merge_val,
        plan.kind,
        str(plan.path),
        _tree_state(plan.path),
        absolute(cache_dir),
        *reading.values(),
    )
    hit = _DATA_CACHE.get(key)
    if hit is None:
        ds = load_dataset(
            config.dataset,
            config.image_size,
            seed=config.data_seed,
            data_dir=data_dir,
            standardize=False,
            cache_dir=cache_dir,
            merge_val=config.merge_val,
            **reading,
        )
        fp = data_fingerprint(ds)
        hit = (ds, dict(fp.as_dict(), key=fp.key))
        if len(_DATA_CACHE) >= _DATA_CACHE_SIZE:
            _DATA_CACHE.pop(next(iter(_DATA_CACHE)))
        _DATA_CACHE[key] = hit
    ds, fingerprint = hit
    if config.n_train is not None or config.n_test is not None:
        ds = ds.subset(config.n_train, config.n_test, seed=config.data_seed)
    return ds, fingerprint


def _split(config: ExperimentConfig, raw: StructuredDataset):
    """(standardised dataset, x_train, y_train, eval name, x_eval, y_eval) for the run's fold.

    The standardisation statistics (``"dataset"`` mode) come from the fold's training images only.
    """
    if config.fold is None:
        ds = standardize_dataset(raw)
        return ds, ds.x_train, ds.y_train, "test", ds.x_test, ds.y_test
    folds = stratified_folds(raw.y_train, config.n_folds, seed=config.data_seed)
    tr, va = folds[config.fold]
    ds = standardize_dataset(raw, train_index=tr)
    tr_t, va_t = torch.as_tensor(tr), torch.as_tensor(va)
    return ds, ds.x_train[tr_t], ds.y_train[tr_t], "val", ds.x_train[va_t], ds.y_train[va_t]


def _stat_key(st: os.stat_result) -> tuple:
    """What changes when a file is replaced or rewritten, also with its old size and mtime (its ctime, inode)."""
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _tree_state(path: Path | None) -> str | None:
    """A cheap summary (no file is read) of a data file or folder tree, that changes when any file in it does."""
    if path is None or not path.exists():
        return None
    if path.is_file():
        return repr(_stat_key(path.stat()))
    h = hashlib.sha256()
    for folder, dirs, names in os.walk(path):
        dirs.sort()
        for name in sorted(names):
            try:
                h.update(repr((os.path.join(folder, name), _stat_key(os.stat(os.path.join(folder, name))))).encode())
            except OSError:
                h.update(f"{folder}/{name}: unreadable".encode())
    return h.hexdigest()


def _current_file_hash(path: Path) -> str:
    key = (str(path), _stat_key(path.stat()))
    if key not in _FILE_HASHES:
        _FILE_HASHES[key] = file_sha256(path)
    return _FILE_HASHES[key]


def data_mismatch(
    record: RunRecord, data_dir: str | os.PathLike | None = None, cache_dir: str | os.PathLike | bool | None = None
) -> str | None:
    """Why a finished run was made on other data than ``record.config`` would load now, or ``None``.

    A stand-in never counts for real data nor the reverse; a MedMNIST file must have the same
    SHA-256, any other data the same content fingerprint.
    """
    config = record.config
    plan = plan_data(config.dataset, config.image_size, data_dir)
    was = data_source(record.dataset)
    now = "stand-in" if plan.uses_stand_in else ("synthetic" if plan.kind == "synthetic" else "real")
    if (was == "stand-in") != (now == "stand-in"):
        return f"it was made on {was} data, and {plan.statement()}"
    origin = str((record.dataset.get("fingerprint") or {}).get("origin", ""))
    if now == "real" and origin.startswith("sha256:") and plan.path is not None and plan.path.is_file():
        if origin != f"sha256:{_current_file_hash(plan.path)}":
            return f"it was made on another version of {plan.path} (SHA-256 differs)"
        return None
    made_on = (record.dataset.get("fingerprint") or {}).get("content")
    if made_on:
        _, now_fp = _load(config, data_dir, cache_dir)
        if now_fp.get("content") != made_on:
            where = f" in {plan.path}" if plan.path is not None else ""
            return (
                f"the data{where} changed since it was made (an image or label was replaced, added or removed: "
                f"data fingerprint {(record.dataset.get('fingerprint') or {}).get('key')} then, "
                f"{now_fp.get('key')} now)"
            )
    return None


def reusable_result(
    config: ExperimentConfig,
    results_dir: str | os.PathLike,
    data_dir: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | bool | None = None,
) -> RunRecord | None:
    """The finished run of ``config`` when it may be reused for the data found now, else ``None``.

    A corrupt ``history.json`` is renamed ``history.json.corrupt``; the results of a run made on other
    data (:func:`data_mismatch`) move to a sibling folder ``<run_id>~<source>-<fingerprint key>``, which
    summaries do not read. Either is said in a warning, and the run is trained again.
    """
    run_dir = Path(results_dir) / config.run_id()
    if not (run_dir / RESULT_FILE).exists():
        return None
    try:
        record = read_result(run_dir)
    except ResultError as err:
        moved = set_aside_corrupt(run_dir)
        if moved is not None:
            warnings.warn(f"{err}; moved to {moved.name}: the run is trained again", stacklevel=2)
        return None
    why = data_mismatch(record, data_dir, cache_dir)
    if why is None:
        return record
    key = (record.dataset.get("fingerprint") or {}).get("key", "made-before-fingerprints")
    target = run_dir.with_name(f"{run_dir.name}{SET_ASIDE_MARK}{data_source(record.dataset)}-{key}")
    n = 2
    while target.exists():
        target = run_dir.with_name(f"{run_dir.name}{SET_ASIDE_MARK}{data_source(record.dataset)}-{key}-{n}")
        n += 1
    target.mkdir(parents=True)
    for name in (RESULT_FILE, MAP_FILE, CONFIG_FILE):
        try:
            os.replace(run_dir / name, target / name)
        except FileNotFoundError:  # not written by this method, or moved by another process first
            pass
    warnings.warn(
        f"finished run {run_dir} not reused: {why}; its results were moved to {target} (kept, "
        f"no longer read by summaries and tables) and the run is trained again",
        stacklevel=2,
    )
    return None


def build_model(config: ExperimentConfig, num_classes: int, x_train: torch.Tensor) -> nn.Module:
    """The network of a run, built by its method's row of :data:`~gsa_utils.runs.methods.METHOD_TABLE`.

    Introduced in chapter 10 (``10_baselines``). ``x_train``: the training images of the run's own
    fold (GSA's pixel representation comes from them). Call :func:`seed_everything` first.
    """
    build = METHOD_TABLE[config.method].build
    if build is None:
        raise ValueError(f"method {config.method!r} has no network (pixel models are fitted by run_experiment)")
    return build(config, num_classes, x_train)


def run_experiment(
    config: ExperimentConfig,
    results_dir: str | os.PathLike,
    *,
    data_dir: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | bool | None = None,
    device: str | None = None,
    progress: bool = False,
    on_epoch_end: Callable[[int, dict], None] | None = None,
) -> RunRecord:
    """Train (or fit) one config in ``results_dir / config.run_id()``, resuming from its checkpoint.

    Introduced in chapter 10 (``10_baselines``). A finished run (:func:`reusable_result`) is read
    back, not trained again. ``data_dir``, ``cache_dir``: for
    :func:`~gsa_utils.data.registry.load_dataset` (``cache_dir=False``: no cache of decoded images);
    ``on_epoch_end(epoch, record)`` runs after each epoch's checkpoint. Only the fold's training
    images shape the model and the standardisation. Not locked: :func:`sweep` locks.
    Returns the run as :func:`~gsa_utils.runs.store.load_results` reads it, with ``model`` set.
    """
    if not isinstance(config, ExperimentConfig):
        raise TypeError(f"config must be an ExperimentConfig, got {type(config).__name__}")
    run_dir = Path(results_dir) / config.run_id()
    done = reusable_result(config, results_dir, data_dir, cache_dir)
    if done is not None:
        return done
    run_dir.mkdir(parents=True, exist_ok=True)
    write_config(run_dir, config)

    raw, fingerprint = _load(config, data_dir, cache_dir)
    ds, x_tr, y_tr, eval_name, x_ev, y_ev = _split(config, raw)
    eval_sets = {eval_name: (x_ev, y_ev)}
    if config.fold is None and isinstance(ds.meta.get("x_val"), torch.Tensor):
        eval_sets["val"] = (ds.meta["x_val"], ds.meta["y_val"])  # MedMNIST's official split (merge_val=False)
    t0 = time.perf_counter()
    model = None
    baseline = None
    pixel_channels = None
    if config.method in PIXEL_METHODS:
        from ..baselines.linear import evaluate_pixel_baseline, fit_pixel_baseline

        search = fit_pixel_baseline(config.method, x_tr, y_tr, cv=config.n_folds, seed=config.seed)
        ev = evaluate_pixel_baseline(search, x_ev, y_ev)
        seconds = time.perf_counter() - t0
        history = History(
            records=[{"epoch": 1, "phase": 1, f"{eval_name}_acc": ev["accuracy"], "seconds": seconds}],
            config={"method": config.method, "cv": config.n_folds, "seed": config.seed, "n_train": int(len(y_tr))},
        )
        baseline = {"best_params": ev["best_params"], "cv_accuracy": ev["cv_accuracy"]}
    else:
        seed_everything(config.seed)
        model = build_model(config, ds.num_classes, x_tr)
        if isinstance(model, GlobalSpatialAttention):
            pixel_channels = int(model.pixel_cnn.in_channels)
        has_map = isinstance(model, HasAttentionMap)
        history = two_phase_fit(
            model,
            x_tr,
            y_tr,
            config.fit,
            eval_sets=eval_sets,
            seed=config.seed,
            device=device,
            checkpoint=run_dir / CHECKPOINT_FILE,
            map_snapshots=(config.fit.epochs,) if has_map else (),
            num_classes=ds.num_classes,
            progress=progress,
            on_epoch_end=on_epoch_end,
        )
        seconds = time.perf_counter() - t0
    save_result(
        config,
        results_dir,
        history,
        dataset=dataset_info(ds, len(y_tr), len(y_ev), eval_name, fingerprint),
        baseline=baseline,
        pixel_channels=pixel_channels,
        seconds=seconds,
    )
    record = read_result(run_dir)
    record.model = model
    return record
