"""Run settings: :class:`ExperimentConfig` (one run, and its folder name) and the method names.

Introduced in chapter 10 (``10_baselines``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import typing
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, get_type_hints

from ..backbones import BACKBONES
from ..data.medmnist import MEDMNIST_SIZES
from ..data.registry import MEDMNIST_NAMES, NATIVE_SIZES, REAL_NAMES, check_dataset_name, normalise_dataset_name
from ..profiles import PROFILES, get_profile
from ..protocol import N_FOLDS
from ..recipes import PAPER_RECIPE, PixelCNNDesign, RecipeChoice
from ..settings import PAPER_FIT, FitSettings
from .flat import DESIGN_NAMES, FIT_NAMES, RECIPE_NAMES, nested_settings, parse_value
from .methods import METHOD_TABLE

#: Every method a run can use (the rows of :data:`~gsa_utils.runs.methods.METHOD_TABLE`).
METHODS = tuple(METHOD_TABLE)
#: Methods built around an image CNN from :func:`~gsa_utils.backbones.build_backbone`.
BACKBONE_METHODS = tuple(m for m, spec in METHOD_TABLE.items() if spec.uses_backbone)
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

#: How the data are read, at their defaults: left out of the run's hash, so earlier run ids stay valid.
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
    """Canonical method name (``"VGG-att3"`` -> ``"vgg_att3"``); ValueError for an unknown one."""
    m = str(method).strip().lower().replace("-", "_")
    m = _METHOD_ALIASES.get(m, m)
    if m not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    return m


#: Design fields and the rank at their paper value, or unused, are left out of the run's hash (stable run ids).
_UNHASHED_DEFAULTS = {**PixelCNNDesign().to_dict(), "pixel_rank": None}
del _UNHASHED_DEFAULTS["hidden_channels"]  # K has always been part of the hash


@functools.cache
def field_type(name: str) -> type:
    """The plain type a flat setting's annotation names (``int | None`` -> ``int``)."""
    if name in RECIPE_NAMES:
        return {"recipe": str, "pixel_rank": int}[name]
    owner = FitSettings if name in FIT_NAMES else PixelCNNDesign if name in DESIGN_NAMES else ExperimentConfig
    hint = get_type_hints(owner)[name]
    plain = [a for a in typing.get_args(hint) if a is not type(None)]
    return plain[0] if plain else hint


def coerce(name: str, value: Any) -> Any:
    """``value`` as the type the setting ``name`` is annotated with (:func:`~gsa_utils.runs.flat.parse_value`)."""
    return parse_value(field_type(name), value, f"ExperimentConfig.{name}")


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything that defines one training run (and therefore its folder name).

    Introduced in chapter 10 (``10_baselines``).

    Attributes
    ----------
    dataset
        A name for :func:`gsa_utils.data.registry.load_dataset` (``"fundus"``, ``"folder:data/octs"``, ...).
    method
        A row of :data:`~gsa_utils.runs.methods.METHOD_TABLE` (``"gsa"``, ``"vanilla"``, ``"l1"``, ...).
    backbone, pretrained
        Image CNN (:data:`gsa_utils.backbones.BACKBONES`) and whether it starts from ImageNet weights.
    image_size
        Side of the square images.
    fold
        ``None``: train on the whole training set, evaluate the test set. ``0 .. n_folds - 1``:
        train on the other folds, evaluate that one; the test set is not touched.
    profile
        The :mod:`~gsa_utils.profiles` profile the settings came from (see :func:`profile_label`).
    seed
        Model initialisation and shuffling.
    n_folds, data_seed
        Cross-validation folds, and the seed of the folds, synthetic data and random splits.
    n_train, n_test
        Optional caps on the number of images (a random subset).
    merge_val
        MedMNIST's validation split joins the training set; ``False`` keeps it apart, evaluated
        every epoch of the full run, for the protocol to select epochs on.
    model_width
        ResAttNet-92's ``base_width`` (``None``: 64, the paper's network).
    channels
        ``None``: the images' own channels; 1 or 3 convert (``folder:`` and MedMNIST only).
    csv, split_file, duplicates, resize
        ``folder:`` datasets only (:func:`~gsa_utils.data.folder.load_folder`): a ``path,label``
        CSV, a split file, ``"error"`` or ``"warn"`` for identical files, resize to one size.
    fit, recipe, pixel_cnn
        How the run trains (:class:`~gsa_utils.settings.FitSettings`, as its method trains:
        :meth:`~gsa_utils.runs.methods.MethodSpec.fit_settings`), and GSA's map
        (:class:`~gsa_utils.recipes.RecipeChoice`, :class:`~gsa_utils.recipes.PixelCNNDesign`).

    Notes
    -----
    Settings a method does not use are ``None`` (so a grid over GSA's settings does not multiply
    the vanilla runs). :meth:`to_dict` gives every setting under one flat name (``epochs``,
    ``l1_weight``, ``hidden_channels``, ``recipe``, ``pixel_rank``, ...); :meth:`from_profile`,
    :meth:`from_dict` and :meth:`replace` take those names.
    """

    dataset: str
    method: str = "gsa"
    backbone: str | None = "small_cnn"
    pretrained: bool = False
    image_size: int = 32
    fold: int | None = None
    seed: int = 0
    profile: str = "smoke"
    n_folds: int = N_FOLDS
    data_seed: int = 0
    n_train: int | None = None
    n_test: int | None = None
    merge_val: bool = True
    model_width: int | None = None
    channels: int | None = DATA_DEFAULTS["channels"]
    csv: str | None = DATA_DEFAULTS["csv"]
    split_file: str | None = DATA_DEFAULTS["split_file"]
    duplicates: str = DATA_DEFAULTS["duplicates"]
    resize: bool = DATA_DEFAULTS["resize"]
    fit: FitSettings | None = PAPER_FIT
    recipe: RecipeChoice | None = RecipeChoice()
    pixel_cnn: PixelCNNDesign | None = PixelCNNDesign()

    def __post_init__(self) -> None:
        def put(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        for f in fields(self):
            if f.name not in _OBJECTS:
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
        if not spec.may_be_pretrained:
            put("pretrained", False)
        if not spec.sets_width:
            put("model_width", None)
        if isinstance(self.recipe, str):
            put("recipe", RecipeChoice(self.recipe))
        if not spec.builds_pixel_cnn:
            put("recipe", None)
            put("pixel_cnn", None)
        if not spec.trained_for_epochs:
            put("fit", None)
        elif self.fit is None:
            raise ValueError(f"ExperimentConfig({self.dataset!r}, {m!r}): method {m!r} trains for epochs; give fit")
        else:
            put("fit", spec.fit_settings(self.fit))
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
        builds_pixel_cnn = METHOD_TABLE[self.method].builds_pixel_cnn
        need(
            not builds_pixel_cnn or (self.recipe is not None and self.pixel_cnn is not None),
            "GSA needs a recipe and a pixel-CNN design",
        )
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

    # ---- the flat form: config.json, the run's hash, grids and the command line ---------
    def to_dict(self) -> dict:
        """Every setting under its flat name, JSON-ready: the form of ``config.json`` and of the run's hash."""
        flat = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in _OBJECTS}
        fit = self.fit.to_dict() if self.fit else {"map_warmup_epochs": 0}
        flat.update({name: fit.get(name) for name in FIT_NAMES})
        if not METHOD_TABLE[self.method].uses_lambda:
            flat["l1_weight"] = None
        design = self.pixel_cnn.to_dict() if self.pixel_cnn else {}
        flat.update({name: design.get(name) for name in DESIGN_NAMES})
        flat["recipe"] = self.recipe.name if self.recipe else None
        flat["pixel_rank"] = self.recipe.rank if self.recipe else None
        return {name: coerce(name, value) for name, value in flat.items()}

    @classmethod
    def from_flat(cls, settings: Mapping[str, Any]) -> ExperimentConfig:
        """A config from flat settings (:meth:`to_dict`'s names; at least ``dataset``), the others at their defaults."""
        values = {name: coerce(name, value) for name, value in settings.items()}
        spec = METHOD_TABLE[normalise_method(values.get("method", "gsa"))]
        objects = nested_settings(spec, values, FitSettings(), PixelCNNDesign(), RecipeChoice().name)
        return cls(**{name: value for name, value in values.items() if name in _OWN_NAMES}, **objects)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ExperimentConfig:
        """Rebuild from :meth:`to_dict` output; unknown keys are ignored with a warning, no recipe is ``"paper"``."""
        unknown = sorted(set(d) - set(FLAT_NAMES))
        if unknown:
            warnings.warn(f"ExperimentConfig: ignoring unknown field(s) {', '.join(unknown)}", stacklevel=2)
        return cls.from_flat({"recipe": PAPER_RECIPE, **{k: v for k, v in d.items() if k in FLAT_NAMES}})

    def replace(self, **changes: Any) -> ExperimentConfig:
        """A copy with some settings changed, by their flat names (``epochs=5``, ``recipe="paper"``)."""
        unknown = sorted(set(changes) - set(FLAT_NAMES))
        if unknown:
            raise TypeError(f"ExperimentConfig has no setting(s) {', '.join(unknown)}")
        return self.from_flat({**self.to_dict(), **changes})

    # ---- identity -------------------------------------------------------------------
    def _hashed_fields(self) -> dict:
        """:meth:`to_dict` without the settings added after the first results, at their defaults."""
        return {
            k: v
            for k, v in self.to_dict().items()
            if not (k in _UNHASHED_DEFAULTS and (v is None or v == _UNHASHED_DEFAULTS[k]))
            and not (k in DATA_DEFAULTS and v == DATA_DEFAULTS[k])
        }

    def full_hash(self) -> str:
        """SHA-1 of :meth:`_hashed_fields` (hex); ``merge_val`` enters only when ``False``."""
        d = self._hashed_fields()
        if d.get("merge_val") is True:
            d.pop("merge_val")
        blob = json.dumps(d, sort_keys=True, default=str)
        return hashlib.sha1(blob.encode()).hexdigest()

    def run_id(self) -> str:
        """Folder name, e.g. ``fundus_gsa-recommended_small_cnn_full_s0_3f9a1c02be`` (last: :meth:`full_hash`)."""
        slug = re.sub(r"[^A-Za-z0-9.-]+", "-", self.dataset).strip("-")[:40] or "data"
        parts = [slug, method_label(self)] + ([self.backbone] if self.backbone else [])
        parts += ["full" if self.fold is None else f"fold{self.fold}", f"s{self.seed}", self.full_hash()[:10]]
        return "_".join(parts)

    def group_key(self) -> str:
        """Hash of every setting except ``fold``: the CV folds and the full run of one setting share it."""
        d = self._hashed_fields()
        d.pop("fold")
        return hashlib.sha1(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:12]

    def tuning_params(self) -> dict:
        """The hyper-parameters this method uses (settings of :data:`TUNABLE_FIELDS` that are set)."""
        flat = self.to_dict()
        return {k: flat[k] for k in TUNABLE_FIELDS if flat[k] is not None}

    # ---- construction ---------------------------------------------------------------
    @classmethod
    def from_profile(
        cls, dataset: str, method: str = "gsa", profile: str | None = None, **overrides: Any
    ) -> ExperimentConfig:
        """A config with a profile's settings (``None``: :func:`gsa_utils.profiles.get_profile`).

        ``overrides`` replace settings by their flat names (``epochs=5``, ``recipe="paper"``), ``None``
        included (``pixel_cnn_lr=None``: the paper's single learning rate); the method's own defaults
        come from its :class:`~gsa_utils.runs.methods.MethodSpec`.
        """
        unknown = sorted(set(overrides) - set(FLAT_NAMES))
        if unknown:
            raise TypeError(f"ExperimentConfig.from_profile: unknown setting(s) {', '.join(unknown)}")
        prof = get_profile(profile)
        method = normalise_method(method)
        spec = METHOD_TABLE[method]
        values = {name: coerce(name, value) for name, value in overrides.items()}
        fit = prof.fit if spec.l1_weight is None else prof.fit.replace(l1_weight=spec.l1_weight)
        design = PixelCNNDesign(prof.hidden_channels)
        own = dict(
            dataset=dataset,
            method=method,
            backbone=prof.backbone,
            pretrained=prof.pretrained,
            image_size=profile_image_size(prof.image_size, dataset),
            profile=prof.name,
            n_train=prof.n_train,
            model_width=spec.smoke_width if prof.name == "smoke" else None,
        )
        own.update({name: value for name, value in values.items() if name in _OWN_NAMES})
        return cls(**own, **nested_settings(spec, values, fit, design, prof.recipe))


_OBJECTS = ("fit", "recipe", "pixel_cnn")
_OWN_NAMES = tuple(f.name for f in fields(ExperimentConfig) if f.name not in _OBJECTS)
#: Every flat setting name (:meth:`ExperimentConfig.to_dict`'s keys).
FLAT_NAMES = _OWN_NAMES + FIT_NAMES + DESIGN_NAMES + RECIPE_NAMES


def profile_image_size(size: int, dataset: str) -> int:
    """The image side a profile of side ``size`` gives ``dataset``: never above a real set's native size,
    and for MedMNIST the largest stored size not above ``size``."""
    name = normalise_dataset_name(dataset)
    if name in MEDMNIST_NAMES:
        return max([s for s in MEDMNIST_SIZES if s <= size] or [min(MEDMNIST_SIZES)])
    native = NATIVE_SIZES.get(name) if name in REAL_NAMES else None
    return size if native is None else min(size, native)


def profile_label(config: ExperimentConfig) -> str:
    """How a result is labelled: the profile name, plus what was changed from it (``"full (modified: epochs=5)"``).

    Introduced in chapter 10 (``10_baselines``). The hyper-parameters the protocol searches
    (K, lambda, weight decay) do not count as changes.
    """
    prof = PROFILES.get(config.profile)
    if prof is None:
        return f"{config.profile} (not a built-in profile)"
    diffs: list[str] = []

    def check(name: str, ours: Any, theirs: Any) -> None:
        if ours != theirs:
            diffs.append(f"{name}={ours}")

    check("image_size", config.image_size, profile_image_size(prof.image_size, config.dataset))
    spec = METHOD_TABLE[config.method]
    if config.fit is not None:
        ours, theirs = config.fit, spec.fit_settings(prof.fit)
        for name in ("epochs", "lr", "batch_size", "cutoff_epoch", "pixel_cnn_lr", "map_warmup_epochs"):
            check(name, getattr(ours, name), getattr(theirs, name))
    if config.recipe is not None:
        check("recipe", config.recipe.name, prof.recipe)
    if spec.may_be_pretrained:
        check("pretrained", config.pretrained, prof.pretrained)
    if spec.uses_backbone and config.backbone not in prof.backbones:
        diffs.append(f"backbone={config.backbone}")
    if spec.sets_width:
        smoke_width = spec.smoke_width if prof.name == "smoke" else None
        check("model_width", config.model_width or 64, smoke_width or 64)
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
    """The settings (flat names), other than seed and fold, whose values differ between ``configs``.

    Introduced in chapter 6 (``06_idrid``).
    """
    flats = [c.to_dict() for c in configs]
    names = [n for n in FLAT_NAMES if n not in REPETITION_FIELDS]
    return tuple(n for n in names if len({flat[n] for flat in flats}) > 1)


def variant_label(config: ExperimentConfig, by: Sequence[str]) -> str:
    """The method name plus the values of the ``by`` settings, e.g. ``"gsa (recipe=paper)"``."""
    flat = config.to_dict()
    parts = [f"{name}={flat[name]}" for name in by if name not in ("dataset", "method", "backbone")]
    return config.method + (f" ({', '.join(parts)})" if parts else "")


def method_label(config: ExperimentConfig) -> str:
    """The method name, with GSA's recipe: ``"gsa-recommended"``, ``"gsa-paper"``, ``"vanilla"``."""
    return config.method + (f"-{config.recipe.name}" if config.recipe else "")
