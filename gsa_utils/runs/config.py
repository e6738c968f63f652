"""Run settings: :class:`ExperimentConfig` (one run, and its folder name) and the method names.

Introduced in chapter 10 (``10_baselines``).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import re
import typing
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, get_type_hints

import numpy as np

from ..data.medmnist import MEDMNIST_SIZES
from ..data.registry import MEDMNIST_NAMES, NATIVE_SIZES, REAL_NAMES, check_dataset_name, normalise_dataset_name
from ..models import BACKBONES
from ..profiles import PROFILES, get_profile
from ..protocol import N_FOLDS
from ..recipes import PAPER_RECIPE, RECIPES, RECOMMENDED_RECIPE
from ..settings import PAPER_FIT, FitSettings
from .methods import METHOD_FIELDS, METHOD_TABLE

#: Every method a run can use (the rows of :data:`~gsa_utils.runs.methods.METHOD_TABLE`).
METHODS = tuple(METHOD_TABLE)
#: Methods built around an image CNN from :func:`~gsa_utils.models.build_backbone`.
BACKBONE_METHODS = tuple(m for m, spec in METHOD_TABLE.items() if spec.uses_backbone)
#: Methods trained for epochs with :func:`~gsa_utils.training.two_phase_fit`.
EPOCH_METHODS = tuple(m for m, spec in METHOD_TABLE.items() if spec.trained_for_epochs)
#: Pixel models fitted once with :func:`~gsa_utils.baselines.linear.fit_pixel_baseline` (internal CV).
PIXEL_METHODS = tuple(m for m, spec in METHOD_TABLE.items() if not spec.trained_for_epochs)
#: Methods whose finished runs keep their final attention map (``attention_map.npy``).
MAP_METHODS = tuple(m for m, spec in METHOD_TABLE.items() if spec.makes_map)
#: Config fields that are hyper-parameters (reported as ``best_params``).
TUNABLE_FIELDS = (
    "hidden_channels",
    "l1_weight",
    "weight_decay",
    "lr",
    "batch_size",
    "cutoff_epoch",
    "pixel_cnn_lr",
    "map_warmup_epochs",
    "model_width",
)
#: The L1 baseline's default coefficient (the smallest of the paper's grid; ``l1_reduction="mean"``).
L1_DEFAULT_COEFFICIENT = 1.0
#: ResAttNet-92's base width in the ``smoke`` profile (the paper's network has 64).
SMOKE_RESATTNET_WIDTH = 8

#: GSA's pixel-CNN design fields (paper section 4.10) and their paper values. Added after the
#: first results were written: a field at its paper value (or unused, ``None``) is left out of
#: the run's hash, so the folders of earlier runs keep their names.
DESIGN_DEFAULTS: dict[str, Any] = {
    "kernel_size": 3,
    "num_hidden_layers": 1,
    "last_kernel_size": 1,
    "dense": False,
    "pixel_rank": None,
}
#: How the data are read (``folder:`` options; channels for ``folder:`` and MedMNIST), at their
#: defaults: left out of the run's hash like :data:`DESIGN_DEFAULTS`, so earlier run ids stay valid.
DATA_DEFAULTS: dict[str, Any] = {
    "channels": None,
    "csv": None,
    "split_file": None,
    "duplicates": "error",
    "resize": False,
}
#: The data fields that only ``folder:`` datasets take.
FOLDER_FIELDS = ("csv", "split_file", "duplicates", "resize")


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


@functools.cache
def field_type(name: str) -> type:
    """The plain type a config field's annotation names (``int | None`` -> ``int``)."""
    hint = get_type_hints(ExperimentConfig)[name]
    plain = [a for a in typing.get_args(hint) if a is not type(None)]
    return plain[0] if plain else hint


def coerce(name: str, value: Any) -> Any:
    """``value`` as the type the field ``name`` is annotated with (so 1 and 1.0 hash alike where they mean the same).

    Strings are parsed (``"true"``, ``"5"``, ``"1e-3"``; ``"none"`` is ``None``), as the command line gives them.
    """
    kind = field_type(name)
    if isinstance(value, str) and kind is not str:
        value = None if value.strip().lower() in ("none", "null") else value.strip()
    if value is None or kind is str:
        return value
    if kind is bool:
        words = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
        if isinstance(value, (bool, np.bool_)) or (isinstance(value, str) and value.lower() in words):
            return bool(value) if not isinstance(value, str) else words[value.lower()]
        raise ValueError(f"ExperimentConfig.{name} must be true or false, got {value!r}")
    if isinstance(value, bool):
        raise ValueError(f"ExperimentConfig.{name} must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"ExperimentConfig.{name} must be a number, got {value!r}") from None
    if kind is int:
        if not number.is_integer():
            raise ValueError(f"ExperimentConfig.{name} must be an integer, got {value!r}")
        return int(number)
    if not math.isfinite(number):
        raise ValueError(f"ExperimentConfig.{name} must be finite, got {value!r}")
    return number


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
    merge_val
        MedMNIST's official validation split: ``True`` (default) joins it to the training
        set; ``False`` keeps it apart, evaluates it after every epoch of the full run
        (``val_acc``) and lets the protocol select epochs on it. Other datasets ignore it.
    pixel_cnn_lr
        Separate learning rate for the pixel CNN (``None``: ``lr``, as the paper).
    map_warmup_epochs
        Epochs the map is held still at the start (0, the paper; see chapter 5).
    model_width
        ResAttNet-92's ``base_width`` (``None``: 64, the paper's network).
    recipe
        How GSA's pixel CNN and map are built: a name in :data:`~gsa_utils.recipes.RECIPES`
        (``None`` for other methods; default ``"recommended"``, as every profile). A config read
        by :meth:`from_dict` from a run made before recipes existed reads as ``"paper"``.
    kernel_size, num_hidden_layers, last_kernel_size, dense
        GSA's pixel-CNN design (:class:`~gsa_utils.models.PixelCNN`; paper: 3, 1, 1, no
        dense connections; section 4.10 tried the others).
    pixel_rank
        The rank r of a low-rank recipe's pixel representation (its top r whitened principal
        components; ``None``: the recipe's own, 16 for ``recommended``). The recipe decides
        whether the representation is low-rank; a full-representation recipe refuses a rank.
    channels
        ``None``: the images' own channels (grey stays grey); 1 or 3 convert. ``folder:``
        and MedMNIST datasets only.
    csv, split_file, duplicates, resize
        ``folder:`` datasets only: a ``path,label`` CSV, a fixed train/test split file,
        ``"error"`` or ``"warn"`` for byte-identical files, and whether images of different
        sizes may be resized to one (:func:`~gsa_utils.data.folder.load_folder`).

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
    epochs: int | None = PAPER_FIT.epochs
    cutoff_epoch: int | None = PAPER_FIT.cutoff_epoch
    hidden_channels: int | None = 16
    l1_weight: float | None = PAPER_FIT.l1_weight
    weight_decay: float | None = PAPER_FIT.weight_decay
    lr: float | None = PAPER_FIT.lr
    batch_size: int | None = PAPER_FIT.batch_size
    fold: int | None = None
    seed: int = 0
    profile: str = "smoke"
    n_folds: int = N_FOLDS
    data_seed: int = 0
    n_train: int | None = None
    n_test: int | None = None
    merge_val: bool = True
    pixel_cnn_lr: float | None = PAPER_FIT.pixel_cnn_lr
    map_warmup_epochs: int = PAPER_FIT.map_warmup_epochs
    model_width: int | None = None
    recipe: str | None = RECOMMENDED_RECIPE
    kernel_size: int | None = DESIGN_DEFAULTS["kernel_size"]
    num_hidden_layers: int | None = DESIGN_DEFAULTS["num_hidden_layers"]
    last_kernel_size: int | None = DESIGN_DEFAULTS["last_kernel_size"]
    dense: bool | None = DESIGN_DEFAULTS["dense"]
    pixel_rank: int | None = DESIGN_DEFAULTS["pixel_rank"]
    channels: int | None = DATA_DEFAULTS["channels"]
    csv: str | None = DATA_DEFAULTS["csv"]
    split_file: str | None = DATA_DEFAULTS["split_file"]
    duplicates: str = DATA_DEFAULTS["duplicates"]
    resize: bool = DATA_DEFAULTS["resize"]

    def __post_init__(self) -> None:
        def put(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        for f in fields(self):
            put(f.name, coerce(f.name, getattr(self, f.name)))
        put("dataset", check_dataset_name(self.dataset))
        m = normalise_method(self.method)
        put("method", m)
        spec = METHOD_TABLE[m]
        if spec.uses_backbone:
            if self.backbone not in BACKBONES:
                raise ValueError(f"method {m!r} needs a backbone from {', '.join(BACKBONES)}, got {self.backbone!r}")
        else:
            put("backbone", None)
        for name, unused in METHOD_FIELDS.items():
            if name not in spec.fields:
                put(name, unused)
        if not spec.may_be_pretrained:
            put("pretrained", False)
        if not spec.trained_for_epochs:
            for name in ("epochs", "lr", "batch_size", "weight_decay"):
                put(name, None)
        self._validate()

    def _validate(self) -> None:
        def need(cond: bool, msg: str) -> None:
            if not cond:
                raise ValueError(f"ExperimentConfig({self.dataset!r}, {self.method!r}): {msg}")

        need(self.image_size is not None and self.image_size >= 1, f"image_size must be >= 1, got {self.image_size}")
        need(self.n_folds >= 2, f"n_folds must be >= 2, got {self.n_folds}")
        need(
            self.fold is None or 0 <= self.fold < self.n_folds,
            f"fold must be None or 0..{self.n_folds - 1}, got {self.fold}",
        )
        need(self.seed >= 0 and self.data_seed >= 0, "seeds must be >= 0")
        for name in ("n_train", "n_test"):
            v = getattr(self, name)
            need(v is None or v >= 2, f"{name} must be None or >= 2, got {v}")
        if self.method in EPOCH_METHODS:
            need(self.epochs is not None and self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}")
            need(self.lr is not None and self.lr > 0, f"lr must be > 0, got {self.lr}")
            need(
                self.batch_size is not None and self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}"
            )
            need(
                self.weight_decay is not None and self.weight_decay >= 0,
                f"weight_decay must be >= 0, got {self.weight_decay}",
            )
        spec = METHOD_TABLE[self.method]
        uses = spec.fields
        if "hidden_channels" in uses:
            need(
                self.hidden_channels is not None and self.hidden_channels >= 1,
                f"hidden_channels must be >= 1, got {self.hidden_channels}",
            )
        if spec.freezes_map:
            need(
                self.cutoff_epoch is None or self.cutoff_epoch >= 1,
                f"cutoff_epoch must be None or >= 1, got {self.cutoff_epoch}",
            )
        if "pixel_cnn_lr" in uses:
            need(self.pixel_cnn_lr is None or self.pixel_cnn_lr > 0, "pixel_cnn_lr must be > 0")
        if spec.uses_lambda:
            need(self.l1_weight is not None and self.l1_weight >= 0, f"l1_weight must be >= 0, got {self.l1_weight}")
        if "recipe" in uses:
            need(self.recipe in RECIPES, f"unknown recipe {self.recipe!r}; choose one of {', '.join(sorted(RECIPES))}")
        if "kernel_size" in uses:
            for name in ("kernel_size", "last_kernel_size"):
                v = getattr(self, name)
                need(v is not None and v >= 1 and v % 2 == 1, f"{name} must be odd and >= 1, got {v}")
            need(
                self.num_hidden_layers is not None and self.num_hidden_layers >= 1,
                f"num_hidden_layers must be >= 1, got {self.num_hidden_layers}",
            )
            need(
                self.pixel_rank is None or self.pixel_rank >= 1,
                f"pixel_rank must be None or >= 1, got {self.pixel_rank}",
            )
            need(
                self.pixel_rank is None or RECIPES[self.recipe].pixel_rep == "lowrank",
                f"pixel_rank sets the rank of a low-rank recipe; recipe {self.recipe!r} uses the full representation",
            )
        if "model_width" in uses:
            need(self.model_width is None or self.model_width >= 1, "model_width must be >= 1")
        folder = self.dataset.startswith("folder:")
        for name in FOLDER_FIELDS:
            need(
                folder or getattr(self, name) == DATA_DEFAULTS[name],
                f"{name}={getattr(self, name)!r} applies to 'folder:<path>' datasets only",
            )
        need(self.channels in (None, 1, 3), f"channels must be 1, 3 or None (the images' own), got {self.channels!r}")
        need(
            self.channels is None or folder or self.dataset in MEDMNIST_NAMES,
            f"channels={self.channels} applies to 'folder:<path>' and MedMNIST datasets only",
        )
        need(self.duplicates in ("error", "warn"), f"duplicates must be 'error' or 'warn', got {self.duplicates!r}")
        min_size = METHOD_TABLE[self.method].min_image_size
        need(self.image_size >= min_size, f"{self.method} needs image_size >= {min_size}, got {self.image_size}")

    # ---- identity -------------------------------------------------------------------
    def to_dict(self) -> dict:
        """All fields as a JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ExperimentConfig:
        """Rebuild from :meth:`to_dict` output (a run folder's ``config.json``).

        Unknown keys (from other versions) are ignored with a warning. A config written before
        recipes existed has no ``recipe`` and reads as ``"paper"``, the way those runs were built,
        so its run id is unchanged.
        """
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            warnings.warn(f"ExperimentConfig: ignoring unknown field(s) {', '.join(unknown)}", stacklevel=2)
        return cls(**{"recipe": PAPER_RECIPE, **{k: v for k, v in d.items() if k in names}})

    def replace(self, **changes: Any) -> ExperimentConfig:
        """A copy with some fields changed (normalised again)."""
        return dataclasses.replace(self, **changes)

    def _hashed_fields(self) -> dict:
        """:meth:`to_dict` without the design fields at their paper value or unused (see :data:`DESIGN_DEFAULTS`)."""
        return {
            k: v
            for k, v in self.to_dict().items()
            if not (k in DESIGN_DEFAULTS and (v is None or v == DESIGN_DEFAULTS[k]))
            and not (k in DATA_DEFAULTS and v == DATA_DEFAULTS[k])
        }

    def full_hash(self) -> str:
        """SHA-1 of every field (hex); design fields at their paper value are left out, and
        ``merge_val`` enters only when ``False`` (so older run ids stay valid)."""
        d = self._hashed_fields()
        if d.get("merge_val") is True:
            d.pop("merge_val")
        blob = json.dumps(d, sort_keys=True, default=str)
        return hashlib.sha1(blob.encode()).hexdigest()

    def run_id(self) -> str:
        """Folder name: a readable slug plus a short hash of all fields.

        E.g. ``fundus_gsa-recommended_small_cnn_full_s0_3f9a1c02be``: dataset, method (and
        GSA's recipe), backbone, ``full`` or ``foldK``, seed, then 10 hex digits of
        :meth:`full_hash`.
        """
        slug = re.sub(r"[^A-Za-z0-9.-]+", "-", self.dataset).strip("-")[:40] or "data"
        method = self.method + (f"-{self.recipe}" if self.recipe else "")
        parts = [slug, method] + ([self.backbone] if self.backbone else [])
        parts += ["full" if self.fold is None else f"fold{self.fold}", f"s{self.seed}", self.full_hash()[:10]]
        return "_".join(parts)

    def group_key(self) -> str:
        """Hash of every field except ``fold``: the CV folds and the full run of one setting share it."""
        d = self._hashed_fields()
        d.pop("fold")
        return hashlib.sha1(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:12]

    def tuning_params(self) -> dict:
        """The hyper-parameters this method uses (fields of :data:`TUNABLE_FIELDS` that are set)."""
        return {k: getattr(self, k) for k in TUNABLE_FIELDS if getattr(self, k) is not None}

    def fit_settings(self) -> FitSettings:
        """The :class:`~gsa_utils.settings.FitSettings` this run trains with (epoch-trained methods only)."""
        return METHOD_TABLE[self.method].fit_settings(self.to_dict())

    # ---- construction ---------------------------------------------------------------
    @classmethod
    def from_profile(
        cls, dataset: str, method: str = "gsa", profile: str | None = None, **overrides: Any
    ) -> ExperimentConfig:
        """A config with a profile's settings (``None``: :func:`gsa_utils.profiles.get_profile`).

        ``overrides`` replace single fields, ``None`` included (``pixel_cnn_lr=None`` means
        the paper's single learning rate; leave a field out to keep the profile's).
        The L1 baseline's coefficient defaults to
        :data:`L1_DEFAULT_COEFFICIENT` (its grid is far from GSA's lambda); in the ``smoke``
        profile ResAttNet-92 is built :data:`SMOKE_RESATTNET_WIDTH` channels wide (64 in
        the paper), small enough for a CPU.
        """
        prof = get_profile(profile)
        fit = prof.fit.to_dict()
        fit.pop("l1_reduction")  # decided by the method (see :func:`fit_settings`)
        base = dict(
            dataset=dataset,
            method=method,
            backbone=prof.backbone,
            pretrained=prof.pretrained,
            image_size=profile_image_size(prof.image_size, dataset),
            hidden_channels=prof.hidden_channels,
            profile=prof.name,
            n_train=prof.n_train,
            recipe=prof.recipe,
            **fit,
        )
        if normalise_method(method) == "l1":
            base["l1_weight"] = L1_DEFAULT_COEFFICIENT
        if prof.name == "smoke" and normalise_method(method) == "resattnet92":
            base["model_width"] = SMOKE_RESATTNET_WIDTH
        base.update(overrides)
        return cls(**base)


def profile_image_size(size: int, dataset: str) -> int:
    """The image side a profile of side ``size`` gives ``dataset``.

    Synthetic and ``folder:`` sets get ``size``; the paper's real datasets (and their
    stand-ins) never more than their native size (:data:`~gsa_utils.data.registry.NATIVE_SIZES`):
    a profile may shrink large images to save time, but never enlarges small ones. MedMNIST
    is stored at several sizes, so a MedMNIST set gets the largest stored size not above
    ``size`` (``smoke``, 32: its 28 px; ``full``, 224: ``retinamnist_224.npz``). An explicit
    ``image_size`` override still resizes, and the data statement says so.
    """
    name = normalise_dataset_name(dataset)
    if name in MEDMNIST_NAMES:
        return max([s for s in MEDMNIST_SIZES if s <= size] or [min(MEDMNIST_SIZES)])
    native = NATIVE_SIZES.get(name) if name in REAL_NAMES else None
    return size if native is None else min(size, native)


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

    check("image_size", config.image_size, profile_image_size(prof.image_size, config.dataset))
    if config.method in EPOCH_METHODS:
        check("epochs", config.epochs, prof.fit.epochs)
        check("lr", config.lr, prof.fit.lr)
        check("batch_size", config.batch_size, prof.fit.batch_size)
    spec = METHOD_TABLE[config.method]
    for name in ("cutoff_epoch", "pixel_cnn_lr", "map_warmup_epochs"):
        if name in spec.fields:
            check(name, getattr(config, name), getattr(prof.fit, name))
    if "recipe" in spec.fields:
        check("recipe", config.recipe, prof.recipe)
    if spec.may_be_pretrained:
        check("pretrained", config.pretrained, prof.pretrained)
    if spec.uses_backbone and config.backbone not in prof.backbones:
        diffs.append(f"backbone={config.backbone}")
    if "model_width" in spec.fields:
        check("model_width", config.model_width or 64, SMOKE_RESATTNET_WIDTH if prof.name == "smoke" else 64)
    for name in ("n_train", "n_test"):
        if getattr(config, name) is not None:
            diffs.append(f"{name}={getattr(config, name)}")
    return prof.name if not diffs else f"{prof.name} (modified: {', '.join(diffs)})"


def profile_base(label: str | None) -> str:
    """The profile a :func:`profile_label` names: ``"smoke (modified: epochs=5)"`` -> ``"smoke"``."""
    return (label or "").split(" (", 1)[0]


#: Fields that tell runs of one setting apart rather than settings (the repetitions).
REPETITION_FIELDS = ("seed", "fold")


def differing_fields(configs: Sequence[ExperimentConfig]) -> tuple[str, ...]:
    """The config fields, other than seed and fold, whose values differ between ``configs``.

    Introduced in chapter 6 (``06_idrid``). Runs that agree on all of them are repetitions
    of one setting; summaries group by them so two recipes are never pooled.
    """
    names = [f.name for f in fields(ExperimentConfig) if f.name not in REPETITION_FIELDS]
    return tuple(n for n in names if len({getattr(c, n) for c in configs}) > 1)


def variant_label(config: ExperimentConfig, by: Sequence[str]) -> str:
    """The method name plus the values of the ``by`` fields, e.g. ``"gsa (recipe=paper)"``
    (two recipes differ in ``recipe``, so they are never pooled)."""
    parts = [f"{name}={getattr(config, name)}" for name in by if name not in ("dataset", "method", "backbone")]
    return config.method + (f" ({', '.join(parts)})" if parts else "")


def method_label(config: ExperimentConfig) -> str:
    """The method name, with GSA's recipe: ``"gsa-recommended"``, ``"gsa-paper"``, ``"vanilla"``."""
    return config.method + (f"-{config.recipe}" if config.recipe else "")
