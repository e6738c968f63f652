"""Experiments as files: one folder per run, resumable sweeps shared by many processes, the protocol summary.

Introduced in chapter 10 (``10_baselines``), which runs the paper's comparison (Table 2).

A run is described completely by an :class:`ExperimentConfig` (dataset, method, backbone,
hyper-parameters, fold, seed, profile). :func:`run_experiment` trains it and writes::

    <results_dir>/<run_id>/config.json        the config (written first)
    <results_dir>/<run_id>/checkpoint.pt      while training; an interrupted run resumes from it
    <results_dir>/<run_id>/attention_map.npy  GSA and L1 runs: the final map (H x W float32)
    <results_dir>/<run_id>/history.json       written last, atomically: the run is finished

:func:`sweep` runs many configs: it skips finished runs, claims each run with a lock file
created atomically (``O_CREAT | O_EXCL``), so processes or machines sharing the folder
never train the same config at once, refreshes its lock after every epoch, treats locks
not refreshed for ``stale_after`` seconds as left by a crashed process, and splits the
configs into shards (config ``i`` belongs to shard ``i mod n``). Interrupt it at any time
(Ctrl-C releases the lock) and run the same command again to finish what is left.

:func:`protocol_summary` applies the paper's protocol (:mod:`gsa_utils.protocol`) to a
results folder; :mod:`gsa_utils.tables` turns the summaries into Table 2.

Command line (``python -m gsa_utils.experiments --help``)::

    python -m gsa_utils.experiments run --dataset fundus --method gsa --backbone small_cnn --epochs 5 \\
        --results results/
    python -m gsa_utils.experiments sweep --dataset fundus --methods gsa vanilla --folds all \\
        --shard 0/2 --grid hidden_channels=16,32 --results results/
    python -m gsa_utils.experiments table --results results/
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import io
import itertools
import json
import math
import os
import re
import socket
import sys
import time
import traceback
import uuid
import warnings
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from .baselines.l1_weights import L1_COEFFICIENT_GRID, L1PixelWeights
from .data.base import DataError, StructuredDataset
from .data.registry import _normalise as _normalise_dataset_name
from .data.registry import DATASETS, describe_source, load_dataset
from .paths import repo_folder
from .models import BACKBONES, GlobalSpatialAttention, PixelCNN, build_backbone
from .pixel import pixel_representation
from .profiles import PROFILES, get_profile
from .protocol import (N_FOLDS, N_SELECTED_EPOCHS, PAPER_GRID, WEIGHT_DECAY_GRID, protocol_accuracy,
                       select_hyperparameters, stratified_folds)
from .training import History, seed_everything, two_phase_fit

__all__ = [
    "METHODS",
    "BACKBONE_METHODS",
    "EPOCH_METHODS",
    "PIXEL_METHODS",
    "TUNABLE_FIELDS",
    "L1_DEFAULT_COEFFICIENT",
    "SMOKE_RESATTNET_WIDTH",
    "DEFAULT_STALE_AFTER",
    "ExperimentConfig",
    "normalise_method",
    "profile_label",
    "build_model",
    "run_experiment",
    "save_result",
    "configs_from_grid",
    "sweep_configs",
    "paper_grid",
    "sweep",
    "load_results",
    "load_attention_map",
    "protocol_summary",
    "main",
]

#: Every method a run can use.
METHODS = ("gsa", "vanilla", "l1", "lr", "svm", "vgg_att3", "resattnet92")
#: Methods built around an image CNN from :func:`~gsa_utils.models.build_backbone`.
BACKBONE_METHODS = ("gsa", "vanilla", "l1")
#: Methods trained for epochs with :func:`~gsa_utils.training.two_phase_fit`.
EPOCH_METHODS = ("gsa", "vanilla", "l1", "vgg_att3", "resattnet92")
#: Pixel models fitted once with :func:`~gsa_utils.baselines.linear.fit_pixel_baseline` (internal CV).
PIXEL_METHODS = ("lr", "svm")
#: Config fields that are hyper-parameters (reported as ``best_params``).
TUNABLE_FIELDS = ("hidden_channels", "l1_weight", "weight_decay", "lr", "batch_size", "cutoff_epoch",
                  "pixel_cnn_lr", "map_warmup_epochs", "model_width")
#: The L1 baseline's default coefficient (the smallest of the paper's grid; ``l1_reduction="mean"``).
L1_DEFAULT_COEFFICIENT = 1.0
#: ResAttNet-92's base width in the ``smoke`` profile (the paper's network has 64).
SMOKE_RESATTNET_WIDTH = 8
#: Seconds after which a lock that was not refreshed counts as left by a crashed process.
DEFAULT_STALE_AFTER = 3 * 3600.0

CONFIG_FILE = "config.json"
RESULT_FILE = "history.json"
CHECKPOINT_FILE = "checkpoint.pt"
MAP_FILE = "attention_map.npy"
LOCK_FILE = "lock"
RESULT_FORMAT = 1

_INT_FIELDS = {"image_size", "epochs", "cutoff_epoch", "hidden_channels", "batch_size", "fold", "seed", "n_folds",
               "data_seed", "n_train", "n_test", "model_width",
               "map_warmup_epochs"}
_FLOAT_FIELDS = {"l1_weight", "weight_decay", "lr", "pixel_cnn_lr"}
_BOOL_FIELDS = {"pretrained"}


#: Environment variable that moves the default results folder.
RESULTS_DIR_ENV = "GSA_RESULTS_DIR"


def default_results_dir() -> Path:
    """The results folder chapters and the command line use by default.

    Introduced in chapter 6 (``06_idrid``). ``$GSA_RESULTS_DIR`` when set; otherwise
    ``<repo>/results`` in a checkout (anchored to the repository, because notebooks run
    inside ``notebooks/``), else ``./results``.
    """
    return repo_folder(RESULTS_DIR_ENV, "results")


# --------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------
_METHOD_ALIASES = {"global_attention": "gsa", "vggatt3": "vgg_att3", "resattnet_92": "resattnet92"}


def normalise_method(method: str) -> str:
    """Canonical method name (``"VGG-att3"`` -> ``"vgg_att3"``); ValueError for an unknown one.

    Introduced in chapter 10 (``10_baselines``).
    """
    m = str(method).strip().lower().replace("-", "_")
    m = _METHOD_ALIASES.get(m, m)
    if m not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    return m


def _coerce(name: str, value: Any) -> Any:
    """Canonical Python type for a config field (so 1 and 1.0 hash alike where they mean the same)."""
    if value is None:
        return None
    if name in _BOOL_FIELDS:
        if isinstance(value, str):
            if value.lower() in ("true", "1", "yes"):
                return True
            if value.lower() in ("false", "0", "no"):
                return False
        if isinstance(value, (bool, np.bool_)):
            return bool(value)
        raise ValueError(f"ExperimentConfig.{name} must be true or false, got {value!r}")
    if name in _INT_FIELDS:
        if isinstance(value, bool):
            raise ValueError(f"ExperimentConfig.{name} must be an integer, got {value!r}")
        if isinstance(value, str):
            value = float(value) if re.fullmatch(r"[-+0-9.eE]+", value.strip()) else value
        if isinstance(value, (int, np.integer)) or (isinstance(value, (float, np.floating)) and float(value).is_integer()):
            return int(value)
        raise ValueError(f"ExperimentConfig.{name} must be an integer, got {value!r}")
    if name in _FLOAT_FIELDS:
        if isinstance(value, bool):
            raise ValueError(f"ExperimentConfig.{name} must be a number, got {value!r}")
        try:
            out = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"ExperimentConfig.{name} must be a number, got {value!r}") from None
        if not math.isfinite(out):
            raise ValueError(f"ExperimentConfig.{name} must be finite, got {value!r}")
        return out
    return value


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything that defines one training run (and therefore its folder name).

    Introduced in chapter 10 (``10_baselines``).

    Attributes
    ----------
    dataset
        A name for :func:`gsa_utils.data.registry.load_dataset` (``"fundus"``,
        ``"idrid-edema"``, ``"folder:data/octs"``, ...).
    method
        ``"gsa"`` (backbone with global spatial attention), ``"vanilla"`` (the backbone
        alone), ``"l1"`` (L1 pixel weights, paper section 4.3), ``"lr"``, ``"svm"`` (pixel
        models), ``"vgg_att3"``, ``"resattnet92"`` (local-attention CNNs).
    backbone, pretrained
        Image CNN (:data:`gsa_utils.models.BACKBONES`) and whether it starts from ImageNet weights.
    image_size
        Side of the square images.
    epochs, cutoff_epoch
        Training epochs and GSA's cut-off epoch E (``None``: never freeze).
    hidden_channels, l1_weight
        GSA's K and lambda (``l1_weight`` is also the L1 baseline's coefficient).
    weight_decay, lr, batch_size
        Adam settings.
    fold
        ``None``: train on the whole training set, evaluate the test set after every epoch.
        ``0 .. n_folds - 1``: train on the other folds of the training set, evaluate that
        fold (validation) after every epoch; the test set is not touched.
    seed
        Model initialisation and shuffling.
    profile
        Name of the :mod:`~gsa_utils.profiles` profile the settings came from (``"smoke"``,
        ``"full"``); see :func:`profile_label` for how results are labelled.
    n_folds, data_seed
        Cross-validation folds and the seed of the folds, the synthetic data and random
        train/test splits (kept apart from ``seed`` so every setting sees the same data).
    n_train, n_test
        Optional caps on the number of images (a random subset; ``None``: all).
    pixel_cnn_lr
        Separate learning rate for the pixel CNN (``None``: ``lr``, as the paper).
    map_warmup_epochs
        Epochs the map is held still at the start (0, the paper; see chapter 5).
    model_width
        ResAttNet-92's ``base_width`` (``None``: 64, the paper's network).

    Notes
    -----
    Fields a method does not use are set to ``None`` on creation (e.g. ``hidden_channels``
    for ``vanilla``, ``backbone`` for ``vgg_att3``; ``pretrained`` is ``False`` for
    ``resattnet92``, ``lr`` and ``svm``), so a grid over GSA's settings does not multiply
    the vanilla runs: :func:`configs_from_grid` drops the duplicates.
    """

    dataset: str
    method: str = "gsa"
    backbone: str | None = "small_cnn"
    pretrained: bool = False
    image_size: int = 32
    epochs: int | None = 12
    cutoff_epoch: int | None = 6
    hidden_channels: int | None = 16
    l1_weight: float | None = 1e-3
    weight_decay: float | None = 1e-4
    lr: float | None = 1e-3
    batch_size: int | None = 32
    fold: int | None = None
    seed: int = 0
    profile: str = "smoke"
    n_folds: int = N_FOLDS
    data_seed: int = 0
    n_train: int | None = None
    n_test: int | None = None
    pixel_cnn_lr: float | None = None
    map_warmup_epochs: int = 0
    model_width: int | None = None

    def __post_init__(self) -> None:
        def put(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        for f in fields(self):
            put(f.name, _coerce(f.name, getattr(self, f.name)))
        put("dataset", _normalise_dataset_name(self.dataset))
        if self.dataset not in DATASETS and not self.dataset.startswith("folder:"):
            raise ValueError(f"unknown dataset {self.dataset!r}; known: {', '.join(DATASETS)}, or 'folder:<path>'")
        m = normalise_method(self.method)
        put("method", m)
        if m in BACKBONE_METHODS:
            if self.backbone not in BACKBONES:
                raise ValueError(f"method {m!r} needs a backbone from {', '.join(BACKBONES)}, got {self.backbone!r}")
        else:
            put("backbone", None)
        if m != "gsa":
            put("hidden_channels", None)
            put("cutoff_epoch", None)
            put("pixel_cnn_lr", None)
            put("map_warmup_epochs", 0)
        if m not in ("gsa", "l1"):
            put("l1_weight", None)
        if m != "resattnet92":
            put("model_width", None)
        if m in ("resattnet92",) + PIXEL_METHODS:
            put("pretrained", False)
        if m in PIXEL_METHODS:
            for name in ("epochs", "lr", "batch_size", "weight_decay"):
                put(name, None)
        self._validate()

    def _validate(self) -> None:
        def need(cond: bool, msg: str) -> None:
            if not cond:
                raise ValueError(f"ExperimentConfig({self.dataset!r}, {self.method!r}): {msg}")

        need(self.image_size is not None and self.image_size >= 1, f"image_size must be >= 1, got {self.image_size}")
        need(self.n_folds >= 2, f"n_folds must be >= 2, got {self.n_folds}")
        need(self.fold is None or 0 <= self.fold < self.n_folds,
             f"fold must be None or 0..{self.n_folds - 1}, got {self.fold}")
        need(self.seed >= 0 and self.data_seed >= 0, "seeds must be >= 0")
        for name in ("n_train", "n_test"):
            v = getattr(self, name)
            need(v is None or v >= 2, f"{name} must be None or >= 2, got {v}")
        if self.method in EPOCH_METHODS:
            need(self.epochs is not None and self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}")
            need(self.lr is not None and self.lr > 0, f"lr must be > 0, got {self.lr}")
            need(self.batch_size is not None and self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
            need(self.weight_decay is not None and self.weight_decay >= 0,
                 f"weight_decay must be >= 0, got {self.weight_decay}")
        if self.method == "gsa":
            need(self.hidden_channels is not None and self.hidden_channels >= 1,
                 f"hidden_channels must be >= 1, got {self.hidden_channels}")
            need(self.cutoff_epoch is None or self.cutoff_epoch >= 1,
                 f"cutoff_epoch must be None or >= 1, got {self.cutoff_epoch}")
            need(self.pixel_cnn_lr is None or self.pixel_cnn_lr > 0, "pixel_cnn_lr must be > 0")
        if self.method in ("gsa", "l1"):
            need(self.l1_weight is not None and self.l1_weight >= 0, f"l1_weight must be >= 0, got {self.l1_weight}")
        if self.method == "resattnet92":
            need(self.model_width is None or self.model_width >= 1, "model_width must be >= 1")
        if self.method == "vgg_att3":
            need(self.image_size >= 32, f"VGG-att3 needs image_size >= 32, got {self.image_size}")

    # ---- identity -------------------------------------------------------------------
    def to_dict(self) -> dict:
        """All fields as a JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ExperimentConfig":
        """Rebuild from :meth:`to_dict` output; unknown keys (from other versions) are ignored with a warning."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            warnings.warn(f"ExperimentConfig: ignoring unknown field(s) {', '.join(unknown)}", stacklevel=2)
        return cls(**{k: v for k, v in d.items() if k in names})

    def replace(self, **changes: Any) -> "ExperimentConfig":
        """A copy with some fields changed (normalised again)."""
        return dataclasses.replace(self, **changes)

    def full_hash(self) -> str:
        """SHA-1 of every field (hex)."""
        blob = json.dumps(self.to_dict(), sort_keys=True, default=str)
        return hashlib.sha1(blob.encode()).hexdigest()

    def run_id(self) -> str:
        """Folder name: a readable slug plus a short hash of all fields.

        E.g. ``fundus_gsa_small_cnn_full_s0_3f9a1c02be``: dataset, method, backbone, ``full``
        or ``foldK``, seed, then 10 hex digits of :meth:`full_hash`.
        """
        slug = re.sub(r"[^A-Za-z0-9.-]+", "-", self.dataset).strip("-")[:40] or "data"
        parts = [slug, self.method] + ([self.backbone] if self.backbone else [])
        parts += ["full" if self.fold is None else f"fold{self.fold}", f"s{self.seed}", self.full_hash()[:10]]
        return "_".join(parts)

    def group_key(self) -> str:
        """Hash of every field except ``fold``: the CV folds and the full run of one setting share it."""
        d = self.to_dict()
        d.pop("fold")
        return hashlib.sha1(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:12]

    def tuning_params(self) -> dict:
        """The hyper-parameters this method uses (fields of :data:`TUNABLE_FIELDS` that are set)."""
        return {k: getattr(self, k) for k in TUNABLE_FIELDS if getattr(self, k) is not None}

    # ---- construction ---------------------------------------------------------------
    @classmethod
    def from_profile(cls, dataset: str, method: str = "gsa", profile: str | None = None,
                     **overrides: Any) -> "ExperimentConfig":
        """A config with a profile's settings (``None``: :func:`gsa_utils.profiles.get_profile`).

        ``overrides`` replace single fields; those equal to ``None`` are ignored (handy for
        command-line options that were not given). The L1 baseline's coefficient defaults to
        :data:`L1_DEFAULT_COEFFICIENT` (its grid is far from GSA's lambda); in the ``smoke``
        profile ResAttNet-92 is built :data:`SMOKE_RESATTNET_WIDTH` channels wide (64 in
        the paper), small enough for a CPU.
        """
        prof = get_profile(profile)
        base = dict(dataset=dataset, method=method, backbone=prof.backbone, pretrained=prof.pretrained,
                    image_size=prof.image_size, epochs=prof.epochs, cutoff_epoch=prof.cutoff_epoch,
                    hidden_channels=prof.hidden_channels,
                    l1_weight=L1_DEFAULT_COEFFICIENT if str(method).lower() == "l1" else prof.l1_weight,
                    weight_decay=prof.weight_decay, lr=prof.lr, batch_size=prof.batch_size, profile=prof.name,
                    n_train=prof.n_train, pixel_cnn_lr=prof.pixel_cnn_lr,
                    map_warmup_epochs=prof.map_warmup_epochs)
        if prof.name == "smoke" and str(method).lower().replace("-", "") == "resattnet92":
            base["model_width"] = SMOKE_RESATTNET_WIDTH
        base.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**base)


def profile_label(config: ExperimentConfig) -> str:
    """How a result is labelled: the profile name, plus what was changed from it.

    Introduced in chapter 10 (``10_baselines``).

    ``"full"`` only when the run used the ``full`` profile's image size, epochs, cut-off
    epoch, optimiser settings, pretraining and one of its backbones, with no caps on the
    data; otherwise e.g. ``"smoke"`` or ``"full (modified: epochs=5)"``. Hyper-parameters
    the protocol searches (K, lambda, weight decay) do not count as modifications.
    """
    prof = PROFILES.get(config.profile)
    if prof is None:
        return f"{config.profile} (not a built-in profile)"
    diffs: list[str] = []

    def check(name: str, ours: Any, theirs: Any) -> None:
        if ours != theirs:
            diffs.append(f"{name}={ours}")

    check("image_size", config.image_size, prof.image_size)
    if config.method in EPOCH_METHODS:
        check("epochs", config.epochs, prof.epochs)
        check("lr", config.lr, prof.lr)
        check("batch_size", config.batch_size, prof.batch_size)
    if config.method == "gsa":
        check("cutoff_epoch", config.cutoff_epoch, prof.cutoff_epoch)
        check("pixel_cnn_lr", config.pixel_cnn_lr, prof.pixel_cnn_lr)
        check("map_warmup_epochs", config.map_warmup_epochs, prof.map_warmup_epochs)
    if config.method in BACKBONE_METHODS + ("vgg_att3",):
        check("pretrained", config.pretrained, prof.pretrained)
    if config.method in BACKBONE_METHODS and config.backbone not in prof.backbones:
        diffs.append(f"backbone={config.backbone}")
    if config.method == "resattnet92":
        check("model_width", config.model_width or 64, SMOKE_RESATTNET_WIDTH if prof.name == "smoke" else 64)
    for name in ("n_train", "n_test"):
        if getattr(config, name) is not None:
            diffs.append(f"{name}={getattr(config, name)}")
    return prof.name if not diffs else f"{prof.name} (modified: {', '.join(diffs)})"


# --------------------------------------------------------------------------------------
# one run
# --------------------------------------------------------------------------------------
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

    Introduced in chapter 10 (``10_baselines``).

    ``gsa``: ``GlobalSpatialAttention(build_backbone(...), PixelCNN(N*C, K),
    pixel_representation(x_train))`` where ``x_train`` must be the training images of the
    run's own fold; ``vanilla``: the backbone; ``l1``: :class:`L1PixelWeights`;
    ``vgg_att3`` / ``resattnet92``: the baselines of :mod:`gsa_utils.baselines`.
    """
    _, c, h, w = x_train.shape
    m = config.method
    if m in BACKBONE_METHODS:
        backbone = build_backbone(config.backbone, num_classes, pretrained=config.pretrained)
        if m == "vanilla":
            return backbone
        if m == "l1":
            return L1PixelWeights(backbone, (h, w))
        rep = pixel_representation(x_train)
        return GlobalSpatialAttention(backbone, PixelCNN(rep.shape[1], config.hidden_channels), rep)
    if m == "vgg_att3":
        from .baselines.vgg_att import VGGAtt3

        return VGGAtt3(num_classes, pretrained=config.pretrained, image_size=(h, w), in_channels=c)
    if m == "resattnet92":
        from .baselines.resattnet import ResAttNet92

        return ResAttNet92(num_classes, base_width=config.model_width or 64, in_channels=c)
    raise ValueError(f"method {m!r} has no network (pixel models are fitted by run_experiment)")


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, tuple):
        return list(o)
    return str(o)


def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to a unique temp file next to ``path``, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _write_json(path: Path, obj: Any) -> None:
    _write_atomic(path, json.dumps(obj, indent=1, default=_json_default).encode())


def _dataset_info(ds: StructuredDataset, n_train_used: int, n_eval: int, eval_name: str) -> dict:
    return {"name": ds.name, "source": ds.source, "stand_in_for": ds.meta.get("stand_in_for"),
            "statement": describe_source(ds), "num_classes": ds.num_classes, "class_names": list(ds.class_names),
            "image_shape": list(ds.image_shape), "n_train": int(len(ds.y_train)), "n_test": int(len(ds.y_test)),
            "n_train_used": int(n_train_used), f"n_{eval_name}": int(n_eval),
            "standardize": ds.meta.get("standardize")}


def _read_result(run_dir: Path) -> dict:
    """A finished run as a dict (see :func:`load_results`)."""
    data = json.loads((run_dir / RESULT_FILE).read_text())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        config = ExperimentConfig.from_dict(data["config"])
    map_file = run_dir / MAP_FILE
    return {"run_id": data.get("run_id", run_dir.name), "run_dir": run_dir, "config": config,
            "history": History.from_dict(data["history"]), "profile_label": profile_label(config),
            "dataset": data.get("dataset", {}), "eval_set": data.get("eval_set"), "baseline": data.get("baseline"),
            "pixel_channels": data.get("pixel_channels"), "seconds": data.get("seconds"),
            "finished": data.get("finished"), "map_file": map_file if map_file.exists() else None}


def run_experiment(config: ExperimentConfig, results_dir: str | os.PathLike, *,
                   data_dir: str | os.PathLike | None = None, device: str | None = None, progress: bool = False,
                   on_epoch_end: Callable[[int, dict], None] | None = None) -> dict:
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
    dict
        As :func:`load_results` gives for one run (``config``, ``history``,
        ``profile_label``, ``dataset``, ...), plus ``model``: the trained network when it was
        trained in this call (``None`` otherwise or for LR/SVM). The per-epoch accuracies
        are ``history["test_acc"]`` (``fold=None``) or ``history["val_acc"]``; LR and SVM
        have a single record (epoch 1).

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
        return {**_read_result(run_dir), "model": None}
    run_dir.mkdir(parents=True, exist_ok=True)
    _write_json(run_dir / CONFIG_FILE, {"run_id": config.run_id(), "config": config.to_dict(),
                                        "profile_label": profile_label(config)})

    ds = _load(config, data_dir)
    x_tr, y_tr, eval_name, x_ev, y_ev, _ = _split(config, ds)
    t0 = time.perf_counter()
    model = None
    baseline = None
    pixel_channels = None
    if config.method in PIXEL_METHODS:
        from .baselines.linear import evaluate_pixel_baseline, fit_pixel_baseline

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
        has_map = hasattr(model, "attention_map")
        history = two_phase_fit(
            model, x_tr, y_tr, eval_sets={eval_name: (x_ev, y_ev)}, epochs=config.epochs,
            cutoff_epoch=config.cutoff_epoch if config.method == "gsa" else None, lr=config.lr,
            batch_size=config.batch_size, weight_decay=config.weight_decay,
            l1_weight=config.l1_weight if has_map else 0.0,
            l1_reduction="mean" if config.method == "l1" else "sum", pixel_cnn_lr=config.pixel_cnn_lr,
            map_warmup_epochs=config.map_warmup_epochs,
            seed=config.seed, device=device, checkpoint=run_dir / CHECKPOINT_FILE,
            map_snapshots=(config.epochs,) if has_map else (), num_classes=ds.num_classes,
            progress=progress, on_epoch_end=on_epoch_end)
        seconds = time.perf_counter() - t0
    save_result(config, results_dir, history, dataset=_dataset_info(ds, len(y_tr), len(y_ev), eval_name),
                baseline=baseline, pixel_channels=pixel_channels, seconds=seconds)
    return {**_read_result(run_dir), "model": model}


def save_result(config: ExperimentConfig, results_dir: str | os.PathLike, history: History, *,
                dataset: Mapping[str, Any] | None = None, baseline: Mapping[str, Any] | None = None,
                pixel_channels: int | None = None, seconds: float | None = None) -> Path:
    """Write a finished run's ``history.json`` (and ``attention_map.npy``), then delete its checkpoint.

    Introduced in chapter 10 (``10_baselines``). :func:`run_experiment` calls it; call it
    yourself to add a run trained elsewhere (e.g. on Colab) to a results folder.

    Parameters
    ----------
    config
        The run's config (decides the folder).
    history
        Its :class:`~gsa_utils.training.History`: ``test_acc`` per epoch for ``fold=None``,
        ``val_acc`` for a CV fold. A map at the last epoch goes to ``attention_map.npy``.
    dataset
        What :func:`load_results` reports as ``dataset`` (name, source, ``stand_in_for``,
        ``statement``, sizes).
    baseline, pixel_channels, seconds
        LR/SVM grid-search results, GSA's NC, training time.

    Returns
    -------
    pathlib.Path
        The run folder.
    """
    run_dir = Path(results_dir) / config.run_id()
    run_dir.mkdir(parents=True, exist_ok=True)
    if not (run_dir / CONFIG_FILE).exists():
        _write_json(run_dir / CONFIG_FILE, {"run_id": config.run_id(), "config": config.to_dict(),
                                            "profile_label": profile_label(config)})
    final_map = history.maps.get(config.epochs) if config.epochs is not None else None
    if final_map is not None:
        buf = io.BytesIO()
        np.save(buf, np.asarray(final_map, dtype=np.float32))
        _write_atomic(run_dir / MAP_FILE, buf.getvalue())
    hist_dict = history.to_dict()
    hist_dict["maps"] = {}  # maps go to attention_map.npy, not into the JSON
    eval_set = "test" if config.fold is None else "val"
    result = {"format": RESULT_FORMAT, "run_id": config.run_id(), "config": config.to_dict(),
              "profile_label": profile_label(config), "dataset": dict(dataset or {"name": config.dataset}),
              "eval_set": eval_set, "history": hist_dict, "baseline": None if baseline is None else dict(baseline),
              "pixel_channels": pixel_channels, "seconds": seconds,
              "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "host": socket.gethostname()}
    _write_json(run_dir / RESULT_FILE, result)  # last: its presence marks the run finished
    (run_dir / CHECKPOINT_FILE).unlink(missing_ok=True)
    (run_dir / "error.txt").unlink(missing_ok=True)  # left by an earlier failed attempt
    return run_dir


# --------------------------------------------------------------------------------------
# grids and sweeps
# --------------------------------------------------------------------------------------
def configs_from_grid(base: Mapping[str, Any], grid: Mapping[str, Sequence[Any]]) -> list[ExperimentConfig]:
    """Every combination of ``grid`` values on top of ``base`` (cartesian product), duplicates dropped.

    Introduced in chapter 10 (``10_baselines``).

    Parameters
    ----------
    base
        Field values shared by all configs (at least ``dataset``), e.g.
        ``ExperimentConfig.from_profile("fundus", "gsa").to_dict()``.
    grid
        Field -> values. A key ``"method.field"`` (e.g. ``"l1.l1_weight"``) applies only
        to configs of that method. A single value may be given without a list.

    Returns
    -------
    list of ExperimentConfig
        In the order of the product (last key varies fastest); configs that end up equal
        after normalisation (a field the method ignores) appear once.
    """
    names = {f.name for f in fields(ExperimentConfig)}
    keys = list(grid)
    for key in keys:
        field_name = key.split(".", 1)[1] if "." in key else key
        if field_name not in names:
            raise ValueError(f"grid key {key!r}: {field_name!r} is not an ExperimentConfig field "
                             f"({', '.join(sorted(names))})")
    values = [list(v) if isinstance(v, (list, tuple, range, np.ndarray)) else [v] for v in grid.values()]
    for key, vals in zip(keys, values):
        if not vals:
            raise ValueError(f"grid key {key!r} has no values")
    out: list[ExperimentConfig] = []
    seen: set[str] = set()
    for combo in itertools.product(*values) if keys else [()]:
        d = dict(base)
        qualified = []
        for key, value in zip(keys, combo):
            if "." in key:
                qualified.append((key, value))
            else:
                d[key] = value
        method = str(d.get("method", "gsa")).lower()
        for key, value in qualified:
            only, field_name = key.split(".", 1)
            if only.lower() == method:
                d[field_name] = value
        cfg = ExperimentConfig(**d)
        rid = cfg.run_id()
        if rid not in seen:
            seen.add(rid)
            out.append(cfg)
    return out


def paper_grid(method: str) -> dict[str, tuple]:
    """The paper's hyper-parameter grid for a method (section 4.4).

    Introduced in chapter 10 (``10_baselines``). GSA: :data:`gsa_utils.protocol.PAPER_GRID`;
    L1: :data:`~gsa_utils.baselines.l1_weights.L1_COEFFICIENT_GRID` and the weight decays;
    other CNNs: the weight decays; LR and SVM: ``{}`` (their grid search is internal, see
    :func:`gsa_utils.baselines.linear.fit_pixel_baseline`).
    """
    if method == "gsa":
        return dict(PAPER_GRID)
    if method == "l1":
        return {"l1_weight": tuple(L1_COEFFICIENT_GRID), "weight_decay": WEIGHT_DECAY_GRID}
    if method in ("vanilla", "vgg_att3", "resattnet92"):
        return {"weight_decay": WEIGHT_DECAY_GRID}
    return {}


def _fold_values(folds: str | Sequence[int | None], n_folds: int) -> list[int | None]:
    if isinstance(folds, str):
        spec = folds.strip().lower()
        if spec == "all":
            return [None] + list(range(n_folds))
        if spec == "cv":
            return list(range(n_folds))
        if spec in ("full", "none"):
            return [None]
        out: list[int | None] = []
        for part in spec.split(","):
            part = part.strip()
            out.append(None if part in ("full", "none") else int(part))
        return out
    return list(folds)


def sweep_configs(datasets: Sequence[str], methods: Sequence[str], *, backbones: Sequence[str] | None = None,
                  folds: str | Sequence[int | None] = "all", grid: Mapping[str, Sequence[Any]] | None = None,
                  use_paper_grid: bool = False, profile: str | None = None, **overrides: Any) -> list[ExperimentConfig]:
    """The configs of a comparison: datasets x methods x backbones x grid x folds.

    Introduced in chapter 10 (``10_baselines``).

    Parameters
    ----------
    datasets, methods
        Names (see :data:`METHODS`).
    backbones
        Image CNNs for ``gsa``, ``vanilla`` and ``l1`` (``None``: the profile's backbone).
    folds
        ``"all"`` (the full-training run and every CV fold: what :func:`protocol_summary`
        needs), ``"cv"``, ``"full"``, ``"full,0,1"`` or a list (``None`` = full run). LR and
        SVM only ever get the full run (their cross-validation is internal).
    grid
        Extra grid (see :func:`configs_from_grid`), applied after ``use_paper_grid``'s.
    use_paper_grid
        Add :func:`paper_grid` for every method.
    profile, overrides
        Settings, as for :meth:`ExperimentConfig.from_profile`.
    """
    n_folds = int(overrides.get("n_folds") or N_FOLDS)
    fold_values = _fold_values(folds, n_folds)
    out: list[ExperimentConfig] = []
    seen: set[str] = set()
    for dataset in datasets:
        for method in methods:
            method_backbones = list(backbones) if (backbones and method in BACKBONE_METHODS) else [None]
            for backbone in method_backbones:
                extra = {} if backbone is None else {"backbone": backbone}
                base = ExperimentConfig.from_profile(dataset, method, profile, **{**overrides, **extra}).to_dict()
                g: dict[str, Sequence[Any]] = {}
                if use_paper_grid:
                    g.update(paper_grid(base["method"]))
                for key, vals in (grid or {}).items():
                    g[key] = vals
                g["fold"] = [None] if base["method"] in PIXEL_METHODS else fold_values
                for cfg in configs_from_grid(base, g):
                    rid = cfg.run_id()
                    if rid not in seen:
                        seen.add(rid)
                        out.append(cfg)
    return out


class _LockLost(RuntimeError):
    """Another process took over this run's lock (ours had gone stale)."""


def _lock_payload(token: str) -> str:
    return json.dumps({"token": token, "host": socket.gethostname(), "pid": os.getpid(), "started": time.time()})


def _lock_age(path: Path) -> float | None:
    try:
        return time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return None


def _holder_is_gone(path: Path) -> bool:
    """True when the lock was written on this machine by a process that no longer runs (killed kernel)."""
    try:
        info = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return False
    if info.get("host") != socket.gethostname() or not isinstance(info.get("pid"), int):
        return False
    try:
        os.kill(info["pid"], 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _remove_if_stale(path: Path, stale_after: float) -> bool:
    """Move a stale lock aside and delete it; put it back if it turned out to be fresh.

    A lock is stale when it was not refreshed for ``stale_after`` seconds, or at once when
    its process, on this machine, is gone.
    """
    age = _lock_age(path)
    if age is None:
        return True
    gone = _holder_is_gone(path)
    if age <= stale_after and not gone:
        return False
    aside = path.with_name(f"{path.name}.stale.{uuid.uuid4().hex[:8]}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return True
    moved_age = _lock_age(aside)
    if moved_age is not None and moved_age <= stale_after and not (gone and _holder_is_gone(aside)):
        # someone refreshed or re-created it meanwhile
        try:
            os.link(aside, path)
        except FileExistsError:
            pass
        aside.unlink(missing_ok=True)
        return False
    aside.unlink(missing_ok=True)
    return True


def _claim(lock: Path, stale_after: float) -> str | None:
    """Create ``lock`` exclusively; returns our token, or ``None`` when another process holds it."""
    token = uuid.uuid4().hex
    for attempt in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if attempt == 0 and _remove_if_stale(lock, stale_after):
                continue
            return None
        with os.fdopen(fd, "w") as f:
            f.write(_lock_payload(token))
        return token
    return None


def _holds(lock: Path, token: str) -> bool:
    try:
        return json.loads(lock.read_text()).get("token") == token
    except (FileNotFoundError, ValueError):
        return False


def _release(lock: Path, token: str) -> None:
    if _holds(lock, token):
        lock.unlink(missing_ok=True)


def _is_finished(results_dir: Path, config: ExperimentConfig) -> bool:
    return (results_dir / config.run_id() / RESULT_FILE).exists()


def _run_claimed(config: ExperimentConfig, results_dir: Path, stale_after: float, *, data_dir=None, device=None,
                 progress: bool = False, on_epoch_end: Callable[[ExperimentConfig, int, dict], None] | None = None
                 ) -> tuple[str, dict | None]:
    """Claim, run and release one config. Returns (status, result): ran / finished / locked / lost."""
    if _is_finished(results_dir, config):
        return "finished", None
    run_dir = results_dir / config.run_id()
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = run_dir / LOCK_FILE
    token = _claim(lock, stale_after)
    if token is None:
        return "locked", None
    try:
        if _is_finished(results_dir, config):  # finished by another process between our check and our claim
            return "finished", None

        def heartbeat(epoch: int, record: dict) -> None:
            if not _holds(lock, token):
                raise _LockLost(f"{config.run_id()}: the lock was taken over by another process")
            os.utime(lock)
            if on_epoch_end is not None:
                on_epoch_end(config, epoch, record)

        result = run_experiment(config, results_dir, data_dir=data_dir, device=device, progress=progress,
                                on_epoch_end=heartbeat)
        return "ran", result
    except _LockLost:
        return "lost", None
    finally:
        _release(lock, token)


def sweep(configs: Iterable[ExperimentConfig], results_dir: str | os.PathLike, shard: tuple[int, int] = (0, 1),
          progress: bool = True, *, stale_after: float = DEFAULT_STALE_AFTER, data_dir: str | os.PathLike | None = None,
          device: str | None = None, raise_errors: bool = False,
          on_epoch_end: Callable[[ExperimentConfig, int, dict], None] | None = None) -> dict:
    """Run this shard's unfinished configs, each claimed by a lock, skipping those others hold.

    Introduced in chapter 10 (``10_baselines``).

    Parameters
    ----------
    configs
        All configs of the sweep, in the same order in every process (the shard of config
        ``i`` is ``i mod n``).
    results_dir
        Shared results folder.
    shard
        ``(i, n)``: run the configs whose index mod ``n`` is ``i``.
    progress
        Print a line per config and show epoch progress bars.
    stale_after
        A lock not refreshed for this many seconds (it is refreshed after every epoch) is
        considered left by a crashed process and removed.
    data_dir, device
        Passed to :func:`run_experiment`.
    raise_errors
        Re-raise the first failing run's exception; by default the error is recorded in
        the report (and in ``<run_dir>/error.txt``) and the sweep goes on.
    on_epoch_end
        ``on_epoch_end(config, epoch, record)`` after every epoch of every run.

    Returns
    -------
    dict
        ``ran``, ``finished_before``, ``locked`` (held by another process), ``lost`` (lock
        taken over), ``failed`` (run id -> message): lists of run ids; ``shard``, ``n_configs``.

    Notes
    -----
    A ``KeyboardInterrupt`` releases the current run's lock and propagates; the run's
    checkpoint stays, so running the same sweep again resumes it and finishes the rest.
    """
    i, n = shard
    if not (isinstance(i, int) and isinstance(n, int) and n >= 1 and 0 <= i < n):
        raise ValueError(f"shard must be (i, n) with 0 <= i < n, got {shard!r}")
    results_dir = Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    configs = list(configs)
    mine = [(k, c) for k, c in enumerate(configs) if k % n == i]
    report: dict[str, Any] = {"ran": [], "finished_before": [], "locked": [], "lost": [], "failed": {},
                              "shard": (i, n), "n_configs": len(mine)}
    for pos, (k, cfg) in enumerate(mine, 1):
        rid = cfg.run_id()
        if progress:
            print(f"[shard {i}/{n}: {pos}/{len(mine)}] {rid}", flush=True)
        try:
            status, _ = _run_claimed(cfg, results_dir, stale_after, data_dir=data_dir, device=device,
                                     progress=progress, on_epoch_end=on_epoch_end)
        except KeyboardInterrupt:
            if progress:
                print(f"interrupted during {rid}: its checkpoint is kept; run the sweep again to resume", flush=True)
            raise
        except Exception as err:  # noqa: BLE001 - one failing run must not end a long sweep
            message = f"{type(err).__name__}: {err}"
            report["failed"][rid] = message
            try:
                _write_atomic(results_dir / rid / "error.txt", traceback.format_exc().encode())
            except OSError:
                pass
            if progress:
                print(f"  failed: {message}", flush=True)
            if raise_errors:
                raise
            continue
        key = {"ran": "ran", "finished": "finished_before", "locked": "locked", "lost": "lost"}[status]
        report[key].append(rid)
        if progress and status != "ran":
            print(f"  {'already finished' if status == 'finished' else status}", flush=True)
    return report


# --------------------------------------------------------------------------------------
# reading results
# --------------------------------------------------------------------------------------
def load_results(results_dir: str | os.PathLike, *, dataset: str | None = None, method: str | None = None,
                 backbone: str | None = None) -> list[dict]:
    """Every finished run under ``results_dir`` (sorted by run id), optionally filtered.

    Introduced in chapter 10 (``10_baselines``).

    Returns
    -------
    list of dict
        ``run_id``, ``run_dir``, ``config`` (:class:`ExperimentConfig`), ``history``
        (:class:`~gsa_utils.training.History`, without maps), ``profile_label``, ``dataset``
        (name, source, ``stand_in_for``, statement, sizes), ``eval_set`` (``"test"`` or
        ``"val"``), ``baseline`` (LR/SVM: ``best_params``, ``cv_accuracy``),
        ``pixel_channels``, ``seconds``, ``finished``, ``map_file`` (or ``None``).
        Unreadable result files are skipped with a warning.
    """
    root = Path(results_dir)
    if not root.is_dir():
        return []
    want_ds = _normalise_dataset_name(dataset) if dataset is not None else None
    out = []
    for run_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        if not (run_dir / RESULT_FILE).exists():
            continue
        try:
            r = _read_result(run_dir)
        except (ValueError, KeyError, TypeError) as err:
            warnings.warn(f"skipping {run_dir / RESULT_FILE}: {err}", stacklevel=2)
            continue
        c = r["config"]
        if want_ds is not None and c.dataset != want_ds:
            continue
        if method is not None and c.method != method:
            continue
        if backbone is not None and c.method in BACKBONE_METHODS and c.backbone != backbone:
            continue
        out.append(r)
    return out


def load_attention_map(result: Mapping[str, Any]) -> np.ndarray | None:
    """The final attention map (H x W) of a GSA or L1 run from :func:`load_results`, else ``None``.

    Introduced in chapter 10 (``10_baselines``).
    """
    path = result.get("map_file")
    return None if path is None else np.load(path)


def protocol_summary(results_dir: str | os.PathLike, dataset: str, method: str, backbone: str | None = None, *,
                     n_epochs: int = N_SELECTED_EPOCHS, seed: int | None = None,
                     results: Sequence[dict] | None = None) -> dict:
    """The paper's number for one (dataset, method, backbone): CV-chosen setting, CV-chosen epochs, test accuracy.

    Introduced in chapter 10 (``10_baselines``).

    1. Group the finished runs by setting (every field but ``fold``); keep the settings
       with all ``n_folds`` CV folds finished (if none has all, those with the most, noted).
    2. :func:`~gsa_utils.protocol.select_hyperparameters`: the setting with the highest mean
       validation accuracy over its ``n_epochs`` best epochs.
    3. Read the test accuracy of that setting's full-training run (``fold=None``) at those
       epochs: :func:`~gsa_utils.protocol.protocol_accuracy`.

    LR and SVM have one test accuracy (their hyper-parameters come from the grid search
    inside :func:`~gsa_utils.baselines.linear.fit_pixel_baseline`); ``std`` is then NaN.

    Parameters
    ----------
    results_dir
        Results folder (ignored when ``results`` is given).
    dataset, method, backbone
        Which cell of the table; ``backbone`` is ignored for methods without one.
    n_epochs
        Epochs to select (paper: 30).
    seed
        Only runs with this seed; ``None``: the smallest seed present (noted if several).
    results
        Already loaded results (:func:`load_results`), to avoid reading the folder again.

    Returns
    -------
    dict
        ``mean``, ``std`` (fractions; ``None`` when the full run is missing), ``samples``
        (the per-epoch test accuracies), ``epochs`` (1-based), ``best_params``,
        ``n_folds_done``, ``profile`` (label of the full run, see :func:`profile_label`),
        plus ``cv_score``, ``run_id`` (the full run), ``n_settings``, ``dataset_source``,
        ``stand_in_for``, ``dataset_statement`` and ``notes`` (every deviation from the
        paper's protocol, in words).
    """
    method = normalise_method(method)
    ds_name = _normalise_dataset_name(dataset)
    pool = list(results) if results is not None else load_results(results_dir)
    runs = [r for r in pool if r["config"].dataset == ds_name and r["config"].method == method]
    notes: list[str] = []
    empty = {"mean": None, "std": None, "samples": [], "epochs": [], "best_params": None, "n_folds_done": 0,
             "profile": None, "cv_score": None, "run_id": None, "n_settings": 0, "dataset_source": None,
             "stand_in_for": None, "dataset_statement": None, "notes": notes}
    if method in BACKBONE_METHODS:
        present = sorted({r["config"].backbone for r in runs})
        if backbone is None and len(present) > 1:
            notes.append(f"runs with backbones {present}: name one")
            return empty
        if backbone is None and present:
            backbone = present[0]
        runs = [r for r in runs if r["config"].backbone == backbone]
    if not runs:
        notes.append("no finished runs")
        return empty
    seeds = sorted({r["config"].seed for r in runs})
    if seed is None:
        seed = seeds[0]
        if len(seeds) > 1:
            notes.append(f"runs with seeds {seeds}: using seed {seed}")
    runs = [r for r in runs if r["config"].seed == seed]
    if not runs:
        notes.append(f"no finished runs with seed {seed}")
        return empty

    groups: dict[str, dict] = {}
    for r in runs:
        g = groups.setdefault(r["config"].group_key(), {"folds": {}, "full": None, "config": r["config"]})
        if r["config"].fold is None:
            g["full"] = r
        else:
            g["folds"][r["config"].fold] = r
    summary = dict(empty, n_settings=len(groups))

    def describe(full: dict | None) -> None:
        if full is None:
            return
        info = full.get("dataset") or {}
        summary.update(profile=full.get("profile_label"), run_id=full["run_id"],
                       dataset_source=info.get("source"), stand_in_for=info.get("stand_in_for"),
                       dataset_statement=info.get("statement"))

    if method in PIXEL_METHODS:
        with_full = [g for g in groups.values() if g["full"] is not None]
        if not with_full:
            notes.append("the fitted model's test run is missing")
            return summary
        if len(with_full) > 1:
            notes.append(f"{len(with_full)} settings found; using {with_full[0]['full']['run_id']}")
        full = with_full[0]["full"]
        acc = float(full["history"]["test_acc"][0])
        describe(full)
        summary.update(mean=acc, std=float("nan"), samples=[acc], epochs=[1],
                       best_params=(full.get("baseline") or {}).get("best_params"),
                       cv_score=(full.get("baseline") or {}).get("cv_accuracy"),
                       n_folds_done=full["config"].n_folds)
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
        cv_input = []
        for g in candidates:
            curves = [g["folds"][f]["history"]["val_acc"] for f in sorted(g["folds"])]
            lengths = {len(c) for c in curves}
            if len(lengths) > 1:
                notes.append(f"setting {g['config'].group_key()}: folds trained for different numbers of epochs "
                             f"{sorted(lengths)}; using the first {min(lengths)}")
                curves = [c[:min(lengths)] for c in curves]
            cv_input.append({"params": g["config"].group_key(), "val_acc": np.vstack(curves)})
        n_available = len(cv_input[0]["val_acc"][0])
        choice = select_hyperparameters(cv_input, n_epochs)
        best = next(g for g in candidates if g["config"].group_key() == choice["params"])
        epochs = choice["epochs"]
        if n_available < n_epochs:
            notes.append(f"only {n_available} epochs trained: all used instead of the best {n_epochs}")
        summary.update(best_params=best["config"].tuning_params(), cv_score=choice["score"],
                       n_folds_done=len(best["folds"]), epochs=[int(e) for e in epochs])
        full = best["full"]
        if full is None:
            notes.append("the chosen setting's run on the whole training set is not finished")
            describe(next(iter(best["folds"].values())))
            summary["run_id"] = None
            return summary
    else:
        with_full = [g for g in groups.values() if g["full"] is not None]
        if len(with_full) != 1:
            notes.append(f"no cross-validation runs and {len(with_full)} settings: cannot choose hyper-parameters "
                         "or epochs without the test set")
            return summary
        best = with_full[0]
        full = best["full"]
        n_available = len(full["history"]["test_acc"])
        epochs = np.arange(max(1, n_available - n_epochs + 1), n_available + 1)
        notes.append(f"no cross-validation runs: measured at the last {len(epochs)} epochs instead of CV-selected "
                     "ones (not the paper's protocol)")
        summary.update(best_params=best["config"].tuning_params(), epochs=[int(e) for e in epochs])
    used = {((r.get("dataset") or {}).get("source"), (r.get("dataset") or {}).get("stand_in_for"))
            for r in [full, *best["folds"].values()]}
    if len(used) > 1:
        kinds = sorted(f"{src} stand-in" if stand else str(src) for src, stand in used)
        notes.append(f"the chosen setting's runs used different data ({', '.join(kinds)}): was the data folder "
                     "added or removed between runs?")
    test_curve = full["history"]["test_acc"]
    if len(test_curve) < max(epochs):
        notes.append(f"the full run has {len(test_curve)} epochs, fewer than the selected epoch {int(max(epochs))}")
        describe(full)
        return summary
    mean, std, samples = protocol_accuracy(test_curve, epochs)
    describe(full)
    summary.update(mean=mean, std=std, samples=[float(s) for s in samples])
    return summary


# --------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------
_EPILOG = """\
examples:
  # one run (smoke-sized), then its folder results/<run_id>/ holds config.json and history.json
  python -m gsa_utils.experiments run --dataset fundus --method gsa --backbone small_cnn --epochs 5 --results results/

  # the protocol's runs for GSA and vanilla: the full-training run and 5 CV folds per setting,
  # K in {16, 32}; this process takes every second config (start --shard 1/2 elsewhere)
  python -m gsa_utils.experiments sweep --dataset fundus --methods gsa vanilla --folds all \\
      --shard 0/2 --grid hidden_channels=16,32 --results results/

  # the paper's full grid (K, lambda, weight decay; L1 coefficients) on a GPU machine
  GSA_PROFILE=full python -m gsa_utils.experiments sweep --dataset idrid-edema \\
      --methods gsa vanilla l1 lr svm vgg_att3 resattnet92 --backbones resnet152 --paper-grid --results results/

  # the protocol's number for one cell, and Table 2 next to the paper's
  python -m gsa_utils.experiments summary --results results/ --dataset fundus --method gsa --backbone small_cnn
  python -m gsa_utils.experiments table --results results/ --csv table2.csv

Settings not given come from the profile (--profile, else $GSA_PROFILE, else full on a CUDA GPU and smoke
elsewhere). Results carry a profile label; only 'full' results on real data are comparable with the paper.
Interrupt a sweep at any time and start it again: finished runs are skipped, interrupted ones resume from
their checkpoint, and runs locked by another process (sharing the folder) are left to it.
"""


def _parse_value(field_name: str, text: str) -> Any:
    t = text.strip()
    if t.lower() in ("none", "null"):
        return None
    if field_name in _BOOL_FIELDS:
        return _coerce(field_name, t)
    if field_name in _INT_FIELDS:
        return int(float(t))
    if field_name in _FLOAT_FIELDS:
        return float(t)
    return t


def _parse_grid(items: Sequence[str] | None) -> dict[str, list]:
    names = {f.name for f in fields(ExperimentConfig)}
    grid: dict[str, list] = {}
    for item in items or []:
        if "=" not in item:
            raise SystemExit(f"--grid {item!r}: expected key=value1,value2 (e.g. hidden_channels=16,32)")
        key, vals = item.split("=", 1)
        key = key.strip()
        if "." in key:
            only, field_name = key.split(".", 1)
            field_name = field_name.replace("-", "_")
            key = f"{normalise_method(only)}.{field_name}"
        else:
            key = field_name = key.replace("-", "_")
        if field_name not in names:
            raise SystemExit(f"--grid {item!r}: unknown field {field_name!r}; fields: {', '.join(sorted(names))}")
        grid[key] = [_parse_value(field_name, v) for v in vals.split(",") if v.strip()]
    return grid


def _parse_shard(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not m or int(m.group(2)) < 1 or int(m.group(1)) >= int(m.group(2)):
        raise argparse.ArgumentTypeError(f"--shard must be i/n with 0 <= i < n, e.g. 0/2; got {text!r}")
    return int(m.group(1)), int(m.group(2))


def _add_settings(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("settings (default: the profile's)")
    g.add_argument("--profile", choices=sorted(PROFILES), help="smoke or full (default: $GSA_PROFILE or by GPU)")
    g.add_argument("--image-size", type=int)
    g.add_argument("--epochs", type=int)
    g.add_argument("--cutoff-epoch", type=int, help="GSA's E: the pixel CNN is frozen after it")
    g.add_argument("--hidden-channels", type=int, help="GSA's K")
    g.add_argument("--l1-weight", type=float, help="GSA's lambda, or the L1 baseline's coefficient")
    g.add_argument("--weight-decay", type=float)
    g.add_argument("--lr", type=float)
    g.add_argument("--batch-size", type=int)
    g.add_argument("--pretrained", action=argparse.BooleanOptionalAction, default=None,
                   help="start from ImageNet weights")
    g.add_argument("--seed", type=int, help="model initialisation and shuffling (default 0)")
    g.add_argument("--data-seed", type=int, help="synthetic data, random splits and CV folds (default 0)")
    g.add_argument("--n-folds", type=int, help="CV folds (default 5)")
    g.add_argument("--n-train", type=int, help="cap on training images (a random subset)")
    g.add_argument("--n-test", type=int, help="cap on test images")
    g.add_argument("--pixel-cnn-lr", type=float, help="separate learning rate for the pixel CNN")
    g.add_argument("--map-warmup-epochs", type=int, help="epochs the map is held still at the start (GSA)")
    g.add_argument("--model-width", type=int, help="ResAttNet-92 base width (default 64)")
    r = p.add_argument_group("where")
    r.add_argument("--results", help=f"results folder (default: ${RESULTS_DIR_ENV} or <repo>/results)")
    r.add_argument("--data-dir", help="folder with idrid/, jaffe/, medmnist/ (default: $GSA_DATA_DIR or data/)")
    r.add_argument("--device", help="cuda, cpu, mps (default: the best available)")
    r.add_argument("--quiet", action="store_true", help="no progress output")


def _overrides(args: argparse.Namespace) -> dict:
    keys = ("image_size", "epochs", "cutoff_epoch", "hidden_channels", "l1_weight", "weight_decay", "lr",
            "batch_size", "pretrained", "seed", "data_seed", "n_folds", "n_train", "n_test", "pixel_cnn_lr",
            "map_warmup_epochs", "model_width")
    return {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}


def _fmt(x: float | None) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.2f}"


def _cmd_run(args: argparse.Namespace) -> int:
    fold = None if args.fold in (None, "full", "none") else int(args.fold)
    cfg = ExperimentConfig.from_profile(args.dataset, args.method, args.profile,
                                        **{**_overrides(args), "backbone": args.backbone, "fold": fold})
    results = Path(args.results)
    if not args.quiet:
        print(f"run {cfg.run_id()} ({profile_label(cfg)}) -> {results / cfg.run_id()}", flush=True)
    status, result = _run_claimed(cfg, results, args.stale_after, data_dir=args.data_dir, device=args.device,
                                  progress=not args.quiet)
    if status == "locked":
        print(f"{cfg.run_id()} is locked by another process ({results / cfg.run_id() / LOCK_FILE})", file=sys.stderr)
        return 3
    if status == "lost":
        print(f"{cfg.run_id()}: another process took the run over", file=sys.stderr)
        return 3
    if result is None:
        result = {**_read_result(results / cfg.run_id()), "model": None}
        print("already finished")
    hist = result["history"]
    key = f"{result['eval_set']}_acc"
    if not args.quiet:
        print(_statement(result))
        print(f"{key} after the last epoch: {_fmt(float(hist[key][-1]))}%  ({len(hist.records)} epoch(s), "
              f"{result['seconds']:.1f} s)")
    return 0


def _statement(result: Mapping[str, Any]) -> str:
    """The dataset statement stored with a run (what the data were, stand-in or real)."""
    return str((result.get("dataset") or {}).get("statement", ""))


def _cmd_sweep(args: argparse.Namespace) -> int:
    grid = _parse_grid(args.grid)
    configs = sweep_configs(args.dataset, args.methods, backbones=args.backbones, folds=args.folds, grid=grid,
                            use_paper_grid=args.paper_grid, profile=args.profile, **_overrides(args))
    if not args.quiet:
        i, n = args.shard
        print(f"{len(configs)} configs in the sweep; shard {i}/{n} takes {len(range(i, len(configs), n))}",
              flush=True)
    if args.dry_run:
        for k, c in enumerate(configs):
            if k % args.shard[1] == args.shard[0]:
                print(c.run_id())
        return 0
    report = sweep(configs, args.results, shard=args.shard, progress=not args.quiet, stale_after=args.stale_after,
                   data_dir=args.data_dir, device=args.device)
    print(f"ran {len(report['ran'])}, already finished {len(report['finished_before'])}, locked by others "
          f"{len(report['locked'])}, lost {len(report['lost'])}, failed {len(report['failed'])}")
    for rid, msg in report["failed"].items():
        print(f"  failed {rid}: {msg}", file=sys.stderr)
    return 1 if report["failed"] else 0


def _cmd_summary(args: argparse.Namespace) -> int:
    s = protocol_summary(args.results, args.dataset, args.method, args.backbone, n_epochs=args.n_epochs)
    std = s["std"]
    print(f"{args.dataset} / {args.method}{' / ' + args.backbone if args.backbone else ''}: "
          f"{_fmt(s['mean'])}% (std {_fmt(std)}) over {len(s['samples'])} epoch(s); profile: {s['profile']}")
    print(f"best params: {s['best_params']}; CV folds done: {s['n_folds_done']}; CV score: {_fmt(s['cv_score'])}%")
    if s["dataset_statement"]:
        print(f"data: {s['dataset_statement']}")
    for note in s["notes"]:
        print(f"note: {note}")
    return 0 if s["mean"] is not None else 1


def _cmd_table(args: argparse.Namespace) -> int:
    from .tables import build_table, table_to_csv, table_to_markdown

    rows = build_table(args.results, datasets=args.datasets, n_epochs=args.n_epochs)
    text = table_to_markdown(rows)
    print(text)
    if args.csv:
        table_to_csv(rows, args.csv)
        print(f"\nwritten {args.csv}")
    if args.markdown:
        _write_atomic(Path(args.markdown), text.encode())
        print(f"written {args.markdown}")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    root = Path(args.results)
    if not root.is_dir():
        print(f"{root} does not exist")
        return 0
    counts = {"finished": 0, "running": 0, "interrupted": 0, "failed": 0, "not started": 0}
    for run_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        if (run_dir / RESULT_FILE).exists():
            state = "finished"
        elif (run_dir / LOCK_FILE).exists():
            age = _lock_age(run_dir / LOCK_FILE)
            state = "running"
            if age is not None and age > args.stale_after:
                state = "interrupted"
        elif (run_dir / "error.txt").exists():
            state = "failed"
        elif (run_dir / CHECKPOINT_FILE).exists():
            state = "interrupted"
        else:
            state = "not started"
        counts[state] += 1
        if args.verbose or state != "finished":
            print(f"{state:12s} {run_dir.name}")
    print(", ".join(f"{v} {k}" for k, v in counts.items()))
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m gsa_utils.experiments",
        description="Run the paper's experiments (Xu et al., section 4) as resumable, shareable runs: one folder "
                    "per config under --results, each finished when its history.json exists.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="train one config (resumes an interrupted run)", epilog=_EPILOG,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("--dataset", required=True, help="fundus, faces, oct, digits-clutter, idrid-retinopathy, "
                                                      "idrid-edema, jaffe, retinamnist, glaucoma-oct, folder:<path>")
    run.add_argument("--method", default="gsa", choices=METHODS)
    run.add_argument("--backbone", choices=BACKBONES, help="image CNN for gsa, vanilla, l1 (default: the profile's)")
    run.add_argument("--fold", help="CV fold 0..n_folds-1 (evaluated on its validation part), or 'full' "
                                    "(default: the whole training set, evaluated on the test set)")
    run.add_argument("--stale-after", type=float, default=DEFAULT_STALE_AFTER,
                     help="seconds after which another process's unrefreshed lock is removed")
    _add_settings(run)
    run.set_defaults(func=_cmd_run)

    sw = sub.add_parser("sweep", help="run a grid of configs (this shard's share), skipping finished and "
                                      "locked runs", epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sw.add_argument("--dataset", nargs="+", required=True, help="one or more dataset names")
    sw.add_argument("--methods", nargs="+", default=["gsa", "vanilla"], choices=METHODS)
    sw.add_argument("--backbones", nargs="+", choices=BACKBONES, help="image CNNs for gsa, vanilla, l1")
    sw.add_argument("--folds", default="all",
                    help="'all' (full run + every CV fold; needed by the protocol), 'cv', 'full', or e.g. 'full,0,1'")
    sw.add_argument("--grid", nargs="+", action="extend",
                    help="field=v1,v2 (repeatable); 'method.field=...' applies to one method only, "
                         "e.g. l1.l1_weight=1,10")
    sw.add_argument("--paper-grid", action="store_true",
                    help="add the paper's grids: GSA K x lambda x weight decay, L1 coefficients, weight decays")
    sw.add_argument("--shard", type=_parse_shard, default=(0, 1), help="i/n: run configs whose index mod n is i")
    sw.add_argument("--stale-after", type=float, default=DEFAULT_STALE_AFTER,
                    help="seconds after which an unrefreshed lock counts as left by a crashed process "
                         f"(default {DEFAULT_STALE_AFTER:.0f}; locks are refreshed after every epoch)")
    sw.add_argument("--dry-run", action="store_true", help="list this shard's run ids and stop")
    _add_settings(sw)
    sw.set_defaults(func=_cmd_sweep)

    sm = sub.add_parser("summary", help="the protocol's mean (std) for one dataset / method / backbone")
    sm.add_argument("--results")
    sm.add_argument("--dataset", required=True)
    sm.add_argument("--method", required=True, choices=METHODS)
    sm.add_argument("--backbone", choices=BACKBONES)
    sm.add_argument("--n-epochs", type=int, default=N_SELECTED_EPOCHS, help="epochs to select (paper: 30)")
    sm.set_defaults(func=_cmd_summary)

    tb = sub.add_parser("table", help="Table 2 from a results folder, next to the paper's numbers")
    tb.add_argument("--results")
    tb.add_argument("--datasets", nargs="+", help="columns (default: every dataset with results)")
    tb.add_argument("--n-epochs", type=int, default=N_SELECTED_EPOCHS)
    tb.add_argument("--csv", help="also write the table as CSV")
    tb.add_argument("--markdown", help="also write the Markdown to this file")
    tb.set_defaults(func=_cmd_table)

    st = sub.add_parser("status", help="list runs that are running, interrupted, failed or not started")
    st.add_argument("--results")
    st.add_argument("--stale-after", type=float, default=DEFAULT_STALE_AFTER)
    st.add_argument("--verbose", action="store_true", help="list finished runs too")
    st.set_defaults(func=_cmd_status)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (``python -m gsa_utils.experiments --help``).

    Introduced in chapter 10 (``10_baselines``).
    """
    args = _parser().parse_args(argv)
    if getattr(args, "results", "unset") is None:
        args.results = str(default_results_dir())
    try:
        return int(args.func(args) or 0)
    except (DataError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
