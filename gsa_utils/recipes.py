"""How GSA's pixel CNN and map are built: named recipes (:class:`Recipe`), the pixel CNN's shape
(:class:`PixelCNNDesign`) and the one factory :func:`build_gsa`.

``paper`` is the paper's method; ``recommended`` is the fix chosen by ``benchmarks/map_stability.py``.
How the map is *trained* (lambda, a pixel-CNN learning rate, a warm-up) is not a recipe's business
but :class:`~gsa_utils.settings.FitSettings`'.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import torch
from torch import nn

from .models import MAP_NORMS, GlobalSpatialAttention, PixelCNN, check_pixel_cnn_shape
from .pixel import lowrank_pixel_representation, pixel_representation

#: The name of the paper's recipe and of the one the profiles use by default.
PAPER_RECIPE = "paper"
RECOMMENDED_RECIPE = "recommended"
#: Pixel representations a recipe can ask for.
PIXEL_REPS = ("full", "lowrank")


@dataclass(frozen=True)
class Recipe:
    """Construction options of the pixel CNN and its map; the defaults are the paper's.

    Attributes
    ----------
    pixel_rep, rank
        ``"full"``: the paper's P. ``"lowrank"``: its top ``rank`` whitened principal components
        (:func:`~gsa_utils.pixel.lowrank_pixel_representation`).
    fan_in_reference
        Scale the first layer's weights by ``min(1, fan_in_reference / (NC k^2))``, so one Adam step
        moves it as much as a layer of that fan-in, however large N is.
    hidden_norm
        Instance-normalise every hidden channel before its ReLU.
    map_norm, map_gain, map_level
        ``"standardize"``: ``map = sigmoid(map_gain * standardised z + logit(map_level))``, so the
        map's level and spread are fixed and the pixel CNN only orders the pixels.
    output_bias, flat_start
        The output layer's initial bias (the starting map level; ``None``: PyTorch's default), and
        zero output weights so the map starts flat.
    """

    name: str
    description: str
    pixel_rep: str = "full"
    rank: int = 16
    fan_in_reference: int | None = None
    hidden_norm: bool = False
    map_norm: str = "none"
    map_gain: float = 2.0
    map_level: float = 0.5
    output_bias: float | None = None
    flat_start: bool = False

    def __post_init__(self) -> None:
        if self.pixel_rep not in PIXEL_REPS:
            raise ValueError(f"recipe {self.name!r}: pixel_rep must be one of {PIXEL_REPS}, got {self.pixel_rep!r}")
        if self.map_norm not in MAP_NORMS:
            raise ValueError(f"recipe {self.name!r}: map_norm must be one of {MAP_NORMS}, got {self.map_norm!r}")
        if self.rank < 1:
            raise ValueError(f"recipe {self.name!r}: rank must be >= 1, got {self.rank}")

    def pixel_cnn_options(self) -> dict[str, Any]:
        """The fields that are :class:`~gsa_utils.models.PixelCNN` options."""
        options = asdict(self)
        for key in ("name", "description", "pixel_rep", "rank"):
            del options[key]
        return options


@dataclass(frozen=True)
class PixelCNNDesign:
    """The pixel CNN's shape (:class:`~gsa_utils.models.PixelCNN` arguments; section 4.10 for the variants).

    Attributes
    ----------
    hidden_channels
        K, the hidden channels.
    kernel_size
        k, the kernel side of the first and hidden layers.
    num_hidden_layers, last_kernel_size, dense
        Hidden layers, the last layer's kernel side and whether the layers are densely connected.
    """

    hidden_channels: int = 16
    kernel_size: int = 3
    num_hidden_layers: int = 1
    last_kernel_size: int = 1
    dense: bool = False

    def __post_init__(self) -> None:
        check_pixel_cnn_shape(
            self.hidden_channels, self.kernel_size, self.num_hidden_layers, self.last_kernel_size, "PixelCNNDesign"
        )

    def to_dict(self) -> dict[str, Any]:
        """The fields as keyword arguments of :class:`~gsa_utils.models.PixelCNN`."""
        return asdict(self)


#: The recipes by name: ``paper``, and variants that change one thing each (``lowrank_mapnorm`` two).
RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        Recipe("paper", "the paper: full P, sigmoid map, L1 (sum), one learning rate"),
        Recipe("fan_in", "full P, first layer scaled to the fan-in of a rank-16 layer (144)", fan_in_reference=144),
        Recipe("hidden_norm", "full P, instance normalisation of the hidden channels", hidden_norm=True),
        Recipe(
            "map_norm",
            "full P, level- and contrast-normalised map (standardised logit, gain 2)",
            map_norm="standardize",
        ),
        Recipe(
            "lowrank_mapnorm",
            "whitened top-16 principal components of P and a level- and contrast-normalised map",
            pixel_rep="lowrank",
            rank=16,
            map_norm="standardize",
        ),
        Recipe(
            "recommended",
            "whitened top-16 principal components of P (training images only); otherwise the paper",
            pixel_rep="lowrank",
            rank=16,
        ),
    )
}


@dataclass(frozen=True)
class RecipeChoice:
    """A run's recipe, as named in :data:`RECIPES`.

    Attributes
    ----------
    name
        How GSA's pixel CNN and map are built: a name in :data:`RECIPES`.
    rank
        The rank of a low-rank recipe's pixel representation (``None``: the recipe's own).
    """

    name: str = RECOMMENDED_RECIPE
    rank: int | None = None

    def __post_init__(self) -> None:
        recipe = get_recipe(self.name)
        if self.rank is not None and self.rank < 1:
            raise ValueError(f"pixel_rank, the rank of recipe {self.name!r}, must be None or >= 1, got {self.rank}")
        if self.rank is not None and recipe.pixel_rep != "lowrank":
            raise ValueError(
                f"pixel_rank sets the rank of a low-rank recipe; recipe {self.name!r} uses the full representation"
            )

    def resolve(self) -> Recipe:
        """The :class:`Recipe` this choice builds (the named one, with its rank replaced if one is given)."""
        recipe = get_recipe(self.name)
        return recipe if self.rank is None else replace(recipe, rank=self.rank)


def get_recipe(name: str | Recipe) -> Recipe:
    """The recipe called ``name`` (a :class:`Recipe` is returned as is)."""
    if isinstance(name, Recipe):
        return name
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; choose one of {sorted(RECIPES)}")
    return RECIPES[name]


def build_gsa(
    backbone: nn.Module,
    x_train: torch.Tensor,
    recipe: str | Recipe,
    design: PixelCNNDesign,
    **overrides: Any,
) -> GlobalSpatialAttention:
    """Wrap ``backbone`` in global spatial attention built as ``recipe`` says, from **training** images only.

    ``overrides`` change recipe fields, e.g. ``rank=32``.
    """
    recipe = get_recipe(recipe)
    if overrides:
        recipe = replace(recipe, **overrides)
    if recipe.pixel_rep == "lowrank":
        rep = lowrank_pixel_representation(x_train, recipe.rank).rep
    else:
        rep = pixel_representation(x_train)
    pixel_cnn = PixelCNN(rep.shape[1], **design.to_dict(), **recipe.pixel_cnn_options())
    return GlobalSpatialAttention(backbone, pixel_cnn, rep)
