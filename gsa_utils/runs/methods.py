"""The method table: every method a run can use, as data, with the one factory that builds its network.

Introduced in chapter 10 (``10_baselines``). A new method is one row of :data:`METHOD_TABLE`
(and, if it has a network, one small builder); configs, sweeps, summaries and the command
line read what they need from the row.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn

from ..baselines.l1_weights import L1_COEFFICIENT_GRID, L1PixelWeights
from ..models import build_backbone
from ..recipes import build_gsa
from ..settings import PAPER_GRID, WEIGHT_DECAY_GRID, FitSettings

__all__ = ["MethodSpec", "METHOD_TABLE", "METHOD_FIELDS", "GSA_DESIGN_FIELDS", "NetworkBuilder"]

#: ``builder(config, num_classes, x_train) -> network``; ``config`` is an ExperimentConfig.
NetworkBuilder = Callable[[object, int, torch.Tensor], nn.Module]

#: Config fields only some methods use, and the value they take in the others.
METHOD_FIELDS: dict[str, object] = {
    "hidden_channels": None,
    "cutoff_epoch": None,
    "pixel_cnn_lr": None,
    "map_warmup_epochs": 0,
    "l1_weight": None,
    "model_width": None,
    "recipe": None,
    "kernel_size": None,
    "num_hidden_layers": None,
    "last_kernel_size": None,
    "dense": None,
    "pixel_rank": None,
}
#: GSA's pixel-CNN design fields (section 4.10) and the low-rank representation's rank.
GSA_DESIGN_FIELDS = ("kernel_size", "num_hidden_layers", "last_kernel_size", "dense", "pixel_rank")


@dataclass(frozen=True)
class MethodSpec:
    """One method: how its network is built and trained, and which settings it uses.

    Attributes
    ----------
    name
        The canonical name (``"gsa"``, ``"vgg_att3"``, ...).
    build
        Builds the network (``None``: a pixel model fitted once, LR or SVM).
    uses_backbone
        Built around an image CNN from :func:`~gsa_utils.models.build_backbone`.
    may_be_pretrained
        Can start from ImageNet weights (otherwise ``pretrained`` is set to ``False``).
    fields
        Which of :data:`METHOD_FIELDS` the method uses (the others are reset).
    l1_reduction
        How the L1 term on the map reduces it (:func:`~gsa_utils.losses.map_l1`).
    grid
        The paper's hyper-parameter grid for the method (section 4.4).
    min_image_size
        The smallest image side the network accepts.
    makes_map
        Learns an attention map, saved with a finished run as ``attention_map.npy``.
    """

    name: str
    build: NetworkBuilder | None
    uses_backbone: bool = False
    may_be_pretrained: bool = True
    fields: tuple[str, ...] = ()
    l1_reduction: Literal["sum", "mean"] = "sum"
    grid: Mapping[str, tuple] = field(default_factory=dict)
    min_image_size: int = 1
    makes_map: bool = False

    @property
    def trained_for_epochs(self) -> bool:
        """Trained with :func:`~gsa_utils.training.two_phase_fit` (every method with a network)."""
        return self.build is not None

    @property
    def uses_lambda(self) -> bool:
        """Has an L1 term on a map, weighted by ``l1_weight`` (otherwise lambda is 0)."""
        return "l1_weight" in self.fields

    @property
    def freezes_map(self) -> bool:
        """Freezes its map after the cut-off epoch E (otherwise ``cutoff_epoch`` is ``None``)."""
        return "cutoff_epoch" in self.fields

    def fit_settings(self, settings: Mapping[str, Any]) -> FitSettings:
        """How this method trains, from a config's settings: its own L1 reduction, lambda 0 without a map."""
        if not self.trained_for_epochs:
            raise ValueError(f"method {self.name!r} is not trained for epochs; it has no FitSettings")
        return FitSettings.from_mapping(settings).replace(
            cutoff_epoch=settings["cutoff_epoch"] if self.freezes_map else None,
            l1_weight=settings["l1_weight"] if self.uses_lambda else 0.0,
            l1_reduction=self.l1_reduction,
        )


def _backbone(config, num_classes: int, x_train: torch.Tensor) -> nn.Module:
    # as many input channels as the images have: grey stays grey (GSA's P has N channels, not 3N)
    return build_backbone(config.backbone, num_classes, pretrained=config.pretrained, in_channels=int(x_train.shape[1]))


def _gsa(config, num_classes: int, x_train: torch.Tensor) -> nn.Module:
    # The recipe named by the config, with the design fields on top; x_train: the run's own
    # training images only. ``pixel_rank`` set: the rank of the recipe's low-rank representation.
    rank = {} if config.pixel_rank is None else {"rank": config.pixel_rank}
    return build_gsa(
        _backbone(config, num_classes, x_train),
        x_train,
        config.recipe,
        config.hidden_channels,
        kernel_size=config.kernel_size,
        num_hidden_layers=config.num_hidden_layers,
        last_kernel_size=config.last_kernel_size,
        dense=config.dense,
        **rank,
    )


def _vanilla(config, num_classes: int, x_train: torch.Tensor) -> nn.Module:
    return _backbone(config, num_classes, x_train)


def _l1(config, num_classes: int, x_train: torch.Tensor) -> nn.Module:
    return L1PixelWeights(_backbone(config, num_classes, x_train), tuple(x_train.shape[-2:]))


def _vgg_att3(config, num_classes: int, x_train: torch.Tensor) -> nn.Module:
    from ..baselines.vgg_att import VGGAtt3

    return VGGAtt3(
        num_classes, pretrained=config.pretrained, image_size=tuple(x_train.shape[-2:]), in_channels=x_train.shape[1]
    )


def _resattnet92(config, num_classes: int, x_train: torch.Tensor) -> nn.Module:
    from ..baselines.resattnet import ResAttNet92

    return ResAttNet92(num_classes, base_width=config.model_width or 64, in_channels=x_train.shape[1])


_DECAY = {"weight_decay": WEIGHT_DECAY_GRID}

#: Every method, in the order of Table 2's rows.
METHOD_TABLE: dict[str, MethodSpec] = {
    spec.name: spec
    for spec in (
        MethodSpec(
            "gsa",
            _gsa,
            uses_backbone=True,
            grid=PAPER_GRID,
            makes_map=True,
            fields=(
                "hidden_channels",
                "cutoff_epoch",
                "pixel_cnn_lr",
                "map_warmup_epochs",
                "l1_weight",
                "recipe",
                *GSA_DESIGN_FIELDS,
            ),
        ),
        MethodSpec("vanilla", _vanilla, uses_backbone=True, grid=_DECAY),
        MethodSpec(
            "l1",
            _l1,
            uses_backbone=True,
            fields=("l1_weight",),
            l1_reduction="mean",
            makes_map=True,
            grid={"l1_weight": tuple(L1_COEFFICIENT_GRID), **_DECAY},
        ),
        MethodSpec("lr", None, may_be_pretrained=False),
        MethodSpec("svm", None, may_be_pretrained=False),
        MethodSpec("vgg_att3", _vgg_att3, grid=_DECAY, min_image_size=32),
        MethodSpec("resattnet92", _resattnet92, may_be_pretrained=False, fields=("model_width",), grid=_DECAY),
    )
}
