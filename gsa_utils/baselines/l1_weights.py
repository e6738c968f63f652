"""The L1 pixel-weights baseline (paper section 4.3): GSA with free weights instead of the pixel CNN.

Introduced in chapter 10 (``10_baselines``).
"""

from __future__ import annotations

import torch
from torch import nn

#: The paper's search grid for this baseline's coefficient (section 4.4); use with
#: ``l1_reduction="mean"`` in :func:`gsa_utils.training.two_phase_fit`.
L1_COEFFICIENT_GRID = (1e5, 1e4, 1e3, 100.0, 10.0, 1.0)


class L1PixelWeights(nn.Module):
    """``backbone(x * W)`` with one learnable H x W weight map ``W`` (initialised to 1).

    The same ``attention_map()`` interface as GSA, so the same loop adds the L1 term (the paper
    averages it: ``l1_reduction="mean"``); no ``freeze``. Its map is no sigmoid, so it is never
    judged saturated (``map_saturates``).
    """

    map_saturates = False

    def __init__(self, backbone: nn.Module, image_size: tuple[int, int]) -> None:
        super().__init__()
        self.backbone = backbone
        self.weights = nn.Parameter(torch.ones(1, 1, *image_size))

    def attention_map(self) -> torch.Tensor:
        return self.weights

    def forward(self, x: torch.Tensor, attention_map: torch.Tensor | None = None) -> torch.Tensor:
        amap = self.weights if attention_map is None else attention_map
        return self.backbone(x * amap.to(x.dtype))
