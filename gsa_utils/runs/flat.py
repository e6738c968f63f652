"""The flat form of a run's settings (``epochs``, ``l1_weight``, ``hidden_channels``, ``recipe``, ...), as
``config.json``, grids and the command line write them, turned into the config's nested objects."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any

import numpy as np

from ..recipes import PixelCNNDesign, RecipeChoice
from ..settings import FitSettings
from .methods import MethodSpec

#: The flat names of ``config.fit``'s settings (``l1_reduction`` is the method's, not a setting of a run).
FIT_NAMES = tuple(name for name in FitSettings.names() if name != "l1_reduction")
#: The flat names of ``config.pixel_cnn``'s and ``config.recipe``'s settings.
DESIGN_NAMES = tuple(f.name for f in fields(PixelCNNDesign))
RECIPE_NAMES = ("recipe", "pixel_rank")
#: Flat names whose ``None`` is a setting (never freeze; the single learning rate), not a missing value.
NONE_MEANS_SOMETHING = ("cutoff_epoch", "pixel_cnn_lr")


def parse_value(kind: type, value: Any, label: str) -> Any:
    """``value`` as a ``kind`` (``bool``, ``int``, ``float`` or ``str``): 1 and 1.0 hash alike where they mean the same.

    Strings are parsed as the command line gives them (``"true"``, ``"5"``, ``"1e-3"``; ``"none"`` is ``None``
    for every kind); ``label`` names the setting in the error.
    """
    if isinstance(value, str) and value.strip().lower() in ("none", "null"):
        return None
    if isinstance(value, str) and kind is not str:
        value = value.strip()
    if value is None or kind is str:
        return value
    if kind is bool:
        words = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
        if isinstance(value, (bool, np.bool_)) or (isinstance(value, str) and value.lower() in words):
            return bool(value) if not isinstance(value, str) else words[value.lower()]
        raise ValueError(f"{label} must be true or false, got {value!r}")
    if isinstance(value, bool):
        raise ValueError(f"{label} must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{label} must be a number, got {value!r}") from None
    if kind is int:
        if not number.is_integer():
            raise ValueError(f"{label} must be an integer, got {value!r}")
        return int(number)
    if not math.isfinite(number):
        raise ValueError(f"{label} must be finite, got {value!r}")
    return number


def _given(values: Mapping[str, Any], names: Sequence[str]) -> dict[str, Any]:
    """The settings of ``names`` among ``values``; ValueError for a ``None`` that is no value."""
    given = {name: values[name] for name in names if name in values}
    unset = [name for name, value in given.items() if value is None and name not in NONE_MEANS_SOMETHING]
    if unset:
        raise ValueError(f"ExperimentConfig: {', '.join(unset)} must be set, got None")
    return given


def nested_settings(
    spec: MethodSpec, values: Mapping[str, Any], fit: FitSettings, design: PixelCNNDesign, recipe: str
) -> dict[str, Any]:
    """``fit``, ``pixel_cnn`` and ``recipe`` of a run of ``spec``'s method: the flat ``values`` on top of these.

    The objects a method does not use are left out (the config sets them to ``None``).
    """
    if not spec.uses_lambda and values.get("l1_weight") is None:  # the flat form of "no L1 term"
        values = {name: value for name, value in values.items() if name != "l1_weight"}
    objects: dict[str, Any] = {}
    if spec.trained_for_epochs:
        objects["fit"] = fit.replace(**_given(values, FIT_NAMES))
    if spec.builds_pixel_cnn:
        objects["pixel_cnn"] = dataclasses.replace(design, **_given(values, DESIGN_NAMES))
        objects["recipe"] = RecipeChoice(values.get("recipe") or recipe, values.get("pixel_rank"))
    return objects
