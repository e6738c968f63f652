"""The method table: every method a run can use, as data, with the one factory that builds its network.

Introduced in chapter 10 (``10_baselines``). A new method is one row of :data:`METHOD_TABLE`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from ..backbones import build_backbone
from ..baselines.l1_weights import L1_COEFFICIENT_GRID, L1PixelWeights
from ..recipes import build_gsa
from ..settings import PAPER_GRID, WEIGHT_DECAY_GRID, FitSettings

__all__ = ["MethodSpec", "METHOD_TABLE", "NetworkBuilder", "L1_DEFAULT_COEFFICIENT", "SMOKE_RESATTNET_WIDTH"]

#: ``builder(config, num_classes, x_train) -> network``; ``config`` is an ExperimentConfig.
NetworkBuilder = Callable[[object, int, torch.Tensor], nn.Module]


@dataclass(frozen=True)
class MethodSpec:
    """One method: how its network is built and trained, and which settings it uses.

    Attributes
    ----------
    build
        Builds the network (``None``: a pixel model fitted once, LR or SVM).
    uses_lambda, freezes_map
        Has an L1 term on a map weighted by lambda (else lambda is 0); freezes it after epoch E (else E is ``None``).
    builds_pixel_cnn
        Takes a recipe, a pixel-CNN design and the map's options (``pixel_cnn_lr``, ``map_warmup_epochs``).
    l1_weight, smoke_width
        The method's own lambda and ``model_width`` in the ``smoke`` profile (``None``: the usual).
    grid
        The paper's hyper-parameter grid for the method (section 4.4).
    makes_map
        Learns an attention map, saved with a finished run.
    """

    name: str
    build: NetworkBuilder | None
    uses_backbone: bool = False
    may_be_pretrained: bool = True
    uses_lambda: bool = False
    freezes_map: bool = False
    builds_pixel_cnn: bool = False
    sets_width: bool = False
    l1_weight: float | None = None
    smoke_width: int | None = None
    l1_reduction: Literal["sum", "mean"] = "sum"
    grid: Mapping[str, tuple] = field(default_factory=dict)
    min_image_size: int = 1
    makes_map: bool = False

    @property
    def trained_for_epochs(self) -> bool:
        """Trained with :func:`~gsa_utils.training.two_phase_fit` (every method with a network)."""
        return self.build is not None

    def fit_settings(self, fit: FitSettings) -> FitSettings:
        """How this method trains with ``fit``: the settings it does not use turned off."""
        return fit.replace(
            cutoff_epoch=fit.cutoff_epoch if self.freezes_map else None,
            l1_weight=fit.l1_weight if self.uses_lambda else 0.0,
            l1_reduction=self.l1_reduction,
            pixel_cnn_lr=fit.pixel_cnn_lr if self.builds_pixel_cnn else None,
            map_warmup_epochs=fit.map_warmup_epochs if self.builds_pixel_cnn else 0,
        )


def _backbone(config, num_classes: int, x_train: torch.Tensor) -> nn.Module:
    # as many input channels as the images have: grey stays grey (GSA's P has N channels, not 3N)
    return build_backbone(config.backbone, num_classes, pretrained=config.pretrained, in_channels=int(x_train.shape[1]))


def _gsa(config, num_classes: int, x_train: torch.Tensor) -> nn.Module:
    # x_train: the run's own training images only (the pixel representation comes from them)
    return build_gsa(_backbone(config, num_classes, x_train), x_train, config.recipe.resolve(), config.pixel_cnn)


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
#: The L1 baseline's default coefficient (the smallest of the paper's grid, far from GSA's lambda).
L1_DEFAULT_COEFFICIENT = 1.0
#: ResAttNet-92's base width in the ``smoke`` profile (the paper's network has 64): small enough for a CPU.
SMOKE_RESATTNET_WIDTH = 8

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
            uses_lambda=True,
            freezes_map=True,
            builds_pixel_cnn=True,
        ),
        MethodSpec("vanilla", _backbone, uses_backbone=True, grid=_DECAY),
        MethodSpec(
            "l1",
            _l1,
            uses_backbone=True,
            uses_lambda=True,
            l1_reduction="mean",
            l1_weight=L1_DEFAULT_COEFFICIENT,
            makes_map=True,
            grid={"l1_weight": tuple(L1_COEFFICIENT_GRID), **_DECAY},
        ),
        MethodSpec("lr", None, may_be_pretrained=False),
        MethodSpec("svm", None, may_be_pretrained=False),
        MethodSpec("vgg_att3", _vgg_att3, grid=_DECAY, min_image_size=32),
        MethodSpec(
            "resattnet92",
            _resattnet92,
            may_be_pretrained=False,
            sets_width=True,
            smoke_width=SMOKE_RESATTNET_WIDTH,
            grid=_DECAY,
        ),
    )
}
