"""One run: load its data, build its network from the config, train it, write its folder.

Introduced in chapter 10 (``10_baselines``).
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from ..data.base import StructuredDataset
from ..data.registry import load_dataset
from ..files import write_json
from ..models import GlobalSpatialAttention
from ..protocol import stratified_folds
from ..training import HasAttentionMap, History, seed_everything, two_phase_fit
from .config import PIXEL_METHODS, ExperimentConfig, profile_label
from .methods import METHOD_TABLE
from .store import CHECKPOINT_FILE, CONFIG_FILE, RESULT_FILE, RunRecord, dataset_info, read_result, save_result

_DATA_CACHE: dict[tuple, StructuredDataset] = {}
_DATA_CACHE_SIZE = 2


def _load(config: ExperimentConfig, data_dir: str | os.PathLike | None) -> StructuredDataset:
    """The run's dataset (kept in memory for the next runs of a sweep), capped by n_train/n_test."""
    key = (config.dataset, config.image_size, config.data_seed,
           str(Path(data_dir).expanduser().resolve()) if data_dir is not None else os.environ.get("GSA_DATA_DIR"))
    ds = _DATA_CACHE.get(key)
    if ds is None:
        ds = load_dataset(config.dataset, config.image_size, seed=config.data_seed, data_dir=data_dir)
        if len(_DATA_CACHE) >= _DATA_CACHE_SIZE:
            _DATA_CACHE.pop(next(iter(_DATA_CACHE)))
        _DATA_CACHE[key] = ds
    if config.n_train is not None or config.n_test is not None:
        ds = ds.subset(config.n_train, config.n_test, seed=config.data_seed)
    return ds


def _split(config: ExperimentConfig, ds: StructuredDataset):
    """(x_train, y_train, eval name, x_eval, y_eval, train indices or None) for the run's fold."""
    if config.fold is None:
        return ds.x_train, ds.y_train, "test", ds.x_test, ds.y_test, None
    folds = stratified_folds(ds.y_train, config.n_folds, seed=config.data_seed)
    tr, va = folds[config.fold]
    tr_t, va_t = torch.as_tensor(tr), torch.as_tensor(va)
    return ds.x_train[tr_t], ds.y_train[tr_t], "val", ds.x_train[va_t], ds.y_train[va_t], tr


def build_model(config: ExperimentConfig, num_classes: int, x_train: torch.Tensor) -> nn.Module:
    """The network of a run, built from its config (call :func:`seed_everything` first).

    Introduced in chapter 10 (``10_baselines``). The builder is the method's row of
    :data:`~gsa_utils.runs.methods.METHOD_TABLE`: for ``gsa``,
    ``GlobalSpatialAttention(build_backbone(...), PixelCNN(N*C, K), pixel_representation(x_train))``
    where ``x_train`` must be the training images of the run's own fold; ``vanilla``: the
    backbone; ``l1``: :class:`~gsa_utils.baselines.l1_weights.L1PixelWeights`; ``vgg_att3`` /
    ``resattnet92``: the baselines of :mod:`gsa_utils.baselines`.
    """
    build = METHOD_TABLE[config.method].build
    if build is None:
        raise ValueError(f"method {config.method!r} has no network (pixel models are fitted by run_experiment)")
    return build(config, num_classes, x_train)


def run_experiment(config: ExperimentConfig, results_dir: str | os.PathLike, *,
                   data_dir: str | os.PathLike | None = None, device: str | None = None, progress: bool = False,
                   on_epoch_end: Callable[[int, dict], None] | None = None) -> RunRecord:
    """Train (or fit) one config, resuming from its checkpoint, and write its results folder.

    Introduced in chapter 10 (``10_baselines``).

    Parameters
    ----------
    config
        The run.
    results_dir
        The run lives in ``results_dir / config.run_id()``. A finished run (``history.json``
        present) is not trained again: its results are read back.
    data_dir
        Passed to :func:`~gsa_utils.data.registry.load_dataset`.
    device
        ``None`` picks cuda, mps or cpu.
    progress
        Show the epoch progress bar.
    on_epoch_end
        Called as ``on_epoch_end(epoch, record)`` after each epoch's checkpoint is written
        (e.g. to refresh a lock, or to stop a run in a test).

    Returns
    -------
    RunRecord
        As :func:`~gsa_utils.runs.store.load_results` gives for one run, with ``model`` set
        to the trained network when it was trained in this call. The per-epoch accuracies
        are ``history["test_acc"]`` (``fold=None``) or ``history["val_acc"]``
        (:attr:`~gsa_utils.runs.store.RunRecord.eval_curve`); LR and SVM have a single
        record (epoch 1).

    Notes
    -----
    Not locked: two processes calling it for the same config at once would collide; use
    :func:`sweep` (or the ``run`` command, which locks) for that. Only the training images
    of the run's fold shape the model, including GSA's pixel representation.
    """
    if not isinstance(config, ExperimentConfig):
        raise TypeError(f"config must be an ExperimentConfig, got {type(config).__name__}")
    run_dir = Path(results_dir) / config.run_id()
    if (run_dir / RESULT_FILE).exists():
        return read_result(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / CONFIG_FILE, {"run_id": config.run_id(), "config": config.to_dict(),
                                        "profile_label": profile_label(config)})

    ds = _load(config, data_dir)
    x_tr, y_tr, eval_name, x_ev, y_ev, _ = _split(config, ds)
    t0 = time.perf_counter()
    model = None
    baseline = None
    pixel_channels = None
    if config.method in PIXEL_METHODS:
        from ..baselines.linear import evaluate_pixel_baseline, fit_pixel_baseline

        search = fit_pixel_baseline(config.method, x_tr, y_tr, cv=config.n_folds, seed=config.seed)
        ev = evaluate_pixel_baseline(search, x_ev, y_ev)
        seconds = time.perf_counter() - t0
        history = History(records=[{"epoch": 1, "phase": 1, f"{eval_name}_acc": ev["accuracy"], "seconds": seconds}],
                          config={"method": config.method, "cv": config.n_folds, "seed": config.seed,
                                  "n_train": int(len(y_tr))})
        baseline = {"best_params": ev["best_params"], "cv_accuracy": ev["cv_accuracy"]}
    else:
        seed_everything(config.seed)
        model = build_model(config, ds.num_classes, x_tr)
        if isinstance(model, GlobalSpatialAttention):
            pixel_channels = int(model.pixel_cnn.in_channels)
        has_map = isinstance(model, HasAttentionMap)
        history = two_phase_fit(
            model, x_tr, y_tr, config.fit_settings(), eval_sets={eval_name: (x_ev, y_ev)}, seed=config.seed,
            device=device, checkpoint=run_dir / CHECKPOINT_FILE, map_snapshots=(config.epochs,) if has_map else (),
            num_classes=ds.num_classes, progress=progress, on_epoch_end=on_epoch_end)
        seconds = time.perf_counter() - t0
    save_result(config, results_dir, history, dataset=dataset_info(ds, len(y_tr), len(y_ev), eval_name),
                baseline=baseline, pixel_channels=pixel_channels, seconds=seconds)
    record = read_result(run_dir)
    record.model = model
    return record
