"""ResAttNet-92: the Residual Attention Network with 92 trunk layers (Wang et al., CVPR 2017).

Introduced in chapter 10 (``10_baselines``). Xu et al. (section 4.3) use the "residual
attention network with 92 trunk layers (ResAttNet-92)" from

    F. Wang, M. Jiang, C. Qian, S. Yang, C. Li, H. Zhang, X. Wang and X. Tang,
    "Residual Attention Network for Image Classification", IEEE Conference on Computer
    Vision and Pattern Recognition (CVPR), 2017, pp. 3156-3164.

as one of their two local-attention baselines. This module is written from that paper's
description (its section 3 and Table 2, the ImageNet architecture); it is not a port of any
released code.

Architecture (Attention-92, Table 2 of Wang et al.)
---------------------------------------------------
============  =====================================================  ===========
stage         layers                                                 output
============  =====================================================  ===========
stem          conv 7x7, 64, stride 2; max pool 3x3, stride 2         64 x 56x56
stage 1       residual unit (64-64-256); 1 attention module          256 x 56x56
stage 2       residual unit (128-128-512), stride 2; 2 modules       512 x 28x28
stage 3       residual unit (256-256-1024), stride 2; 3 modules      1024 x 14x14
stage 4       3 residual units (512-512-2048), the first stride 2    2048 x 7x7
head          BN-ReLU, global average pool, fully connected          num_classes
============  =====================================================  ===========

(output sizes for a 224 px input). Residual units are pre-activation bottlenecks (He et al.,
ECCV 2016): BN-ReLU-conv1x1, BN-ReLU-conv3x3, BN-ReLU-conv1x1, bottleneck width = 1/4 of
the output channels. Each **attention module** with hyper-parameters ``p = 1, t = 2, r = 1``:

* ``p`` residual units, then a split into
* the **trunk branch** ``T``: ``t`` residual units, and
* the **soft mask branch** ``M``: a bottom-up top-down (hourglass) structure: max pooling
  (3x3, stride 2) followed by ``r`` residual units, repeated ``D`` times, ``r`` more units at
  the lowest resolution, then the same number of bilinear up-samplings, each (but the last)
  followed by the addition of a skip connection from the bottom-up feature of the same size
  and ``r`` residual units; finally BN-ReLU-conv1x1-BN-ReLU-conv1x1 and a sigmoid, so
  ``M(x)`` lies in (0, 1) with the shape of ``T(x)``. ``D`` is 3, 2 and 1 in stages 1, 2 and 3
  (the 56x56, 28x28 and 14x14 stages all reach 7x7 at the bottom).
* **attention residual learning**: ``H(x) = (1 + M(x)) * T(x)``,
* ``p`` residual units.

Choices where the paper leaves room
-----------------------------------
* Skip connections: the figure shows one between the bottom-up and top-down parts at each
  intermediate resolution; we route it through one residual unit (our choice; the paper
  does not say what the connection contains) and add it to the up-sampled map.
* Down-sampling residual units put the stride on the 3x3 convolution and use a 1x1
  projection shortcut on the pre-activated input when the shape changes.
* Up-sampling interpolates to the exact size of the matching bottom-up map (not a fixed
  factor of 2), so odd sizes and small inputs (32 or 64 px, where stages reach 1x1) work.
* The last 1x1 convolution of the mask has a bias; convolutions followed by BN have none.

Parameter count
---------------
The paper reports 51.3 M parameters for Attention-92 on ImageNet (1000 classes) and 31.9 M
for Attention-56 (Table 2). This implementation has 52,470,696 (ResAttNet-92, 1000 classes)
and 31,812,520 (ResAttNet-56), i.e. +2.3 % and -0.3 %. The exact total depends on details the
paper does not fix: the residual units on the skip connections account for 0.70 M of
ResAttNet-92's parameters (without them: 51.77 M, +0.9 %), batch-norm scales and shifts for
0.13 M, and the mask heads' two 1x1 convolutions (7.49 M in all) could be narrower or shared in
other implementations. Published counts are rounded and come from the authors' Caffe models,
so a match within a few per cent is what can be expected; :data:`PUBLISHED_PARAMETERS` and
:data:`PARAMETER_TOLERANCE` (5 %) record the comparison that ``tests/test_baselines.py`` checks.

Small models
------------
``base_width`` (64 in the paper) scales every width: stage outputs are ``4, 8, 16, 32 x
base_width``. ``base_width=4`` gives a ~0.2 M-parameter network for CPU smoke runs and tests;
it is not a model to report results with.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ._init import init_cnn_weights

__all__ = [
    "PreActBottleneck",
    "SoftMaskBranch",
    "AttentionModule",
    "ResidualAttentionNetwork",
    "ResAttNet92",
    "ResAttNet56",
    "PUBLISHED_PARAMETERS",
    "PARAMETER_TOLERANCE",
]

#: Parameter counts reported by Wang et al. (Table 2, ImageNet, 1000 classes).
PUBLISHED_PARAMETERS: dict[str, float] = {"ResAttNet-56": 31.9e6, "ResAttNet-92": 51.3e6}
#: Relative tolerance within which our counts must match the published ones.
PARAMETER_TOLERANCE = 0.05


class PreActBottleneck(nn.Module):
    """Pre-activation bottleneck residual unit (He et al., "Identity Mappings in Deep Residual Networks", 2016).

    Introduced in chapter 10 (``10_baselines``).

    Parameters
    ----------
    in_channels, out_channels
        Input and output channels; the bottleneck width is ``out_channels // 4``.
    stride
        Stride of the 3x3 convolution (and of the projection shortcut).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        if out_channels % 4:
            raise ValueError(f"out_channels must be divisible by 4 (bottleneck width), got {out_channels}")
        width = out_channels // 4
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, width, kernel_size=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, kernel_size=1, bias=False)
        self.shortcut = (
            nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False)
            if stride != 1 or in_channels != out_channels
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = F.relu(self.bn1(x))
        identity = self.shortcut(pre) if self.shortcut is not None else x
        out = self.conv1(pre)
        out = self.conv2(F.relu(self.bn2(out)))
        out = self.conv3(F.relu(self.bn3(out)))
        return out + identity


def _units(channels: int, n: int) -> nn.Sequential:
    """``n`` shape-preserving residual units (an empty Sequential is the identity)."""
    return nn.Sequential(*[PreActBottleneck(channels, channels) for _ in range(n)])


class SoftMaskBranch(nn.Module):
    """Bottom-up top-down soft mask branch ``M(x)`` with values in (0, 1) (Wang et al., section 3.2).

    Introduced in chapter 10 (``10_baselines``).

    Parameters
    ----------
    channels
        Channels of the input and of the mask.
    num_downsamples
        Number of max-pool / bilinear up-sampling pairs (``D``; 3, 2, 1 in stages 1, 2, 3).
    r
        Residual units between adjacent pooling (and up-sampling) steps.
    """

    def __init__(self, channels: int, num_downsamples: int, r: int = 1) -> None:
        super().__init__()
        if num_downsamples < 1:
            raise ValueError(f"num_downsamples must be at least 1, got {num_downsamples}")
        self.pool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.down = nn.ModuleList([_units(channels, r) for _ in range(num_downsamples)])
        self.skips = nn.ModuleList([PreActBottleneck(channels, channels) for _ in range(num_downsamples - 1)])
        self.bottom = _units(channels, r)
        self.up = nn.ModuleList([_units(channels, r) for _ in range(num_downsamples - 1)])
        self.head = nn.Sequential(
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            nn.Conv2d(channels, channels, kernel_size=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            nn.Conv2d(channels, channels, kernel_size=1, bias=True),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        skips: list[torch.Tensor] = []
        y = x
        for level, units in enumerate(self.down):
            y = units(self.pool(y))
            if level < len(self.skips):
                skips.append(self.skips[level](y))
        y = self.bottom(y)
        for level in reversed(range(len(self.up))):
            skip = skips[level]
            y = F.interpolate(y, size=skip.shape[-2:], mode="bilinear", align_corners=False) + skip
            y = self.up[level](y)
        y = F.interpolate(y, size=size, mode="bilinear", align_corners=False)
        return self.head(y)


class AttentionModule(nn.Module):
    """Attention module: ``p`` units, trunk ``T`` and mask ``M`` with ``(1 + M) * T``, ``p`` units.

    Introduced in chapter 10 (``10_baselines``). Wang et al., section 3 ("attention residual learning").

    Parameters
    ----------
    channels
        Channels in and out.
    num_downsamples
        Depth ``D`` of the soft mask hourglass.
    p, t, r
        Residual units before/after the split, in the trunk, and between pooling steps of the mask.
    """

    def __init__(self, channels: int, num_downsamples: int, p: int = 1, t: int = 2, r: int = 1) -> None:
        super().__init__()
        self.pre = _units(channels, p)
        self.trunk = _units(channels, t)
        self.mask = SoftMaskBranch(channels, num_downsamples, r)
        self.post = _units(channels, p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pre(x)
        trunk = self.trunk(x)
        return self.post((1.0 + self.mask(x)) * trunk)


class ResidualAttentionNetwork(nn.Module):
    """Residual Attention Network for ImageNet-sized inputs (Wang et al., CVPR 2017, Table 2).

    Introduced in chapter 10 (``10_baselines``). Use :class:`ResAttNet92` for the paper's baseline.

    Parameters
    ----------
    num_classes
        Number of output logits.
    modules_per_stage
        Attention modules in stages 1, 2, 3: ``(1, 2, 3)`` is Attention-92, ``(1, 1, 1)`` Attention-56.
    base_width
        Stem channels (64 in the paper); stage outputs are 4, 8, 16 and 32 times this. Small
        values (e.g. 4) give tiny networks for CPU smoke tests only.
    p, t, r
        Attention-module hyper-parameters (the paper uses 1, 2, 1).
    mask_downsamples
        Hourglass depth ``D`` of the soft masks in stages 1, 2, 3 (the paper: 3, 2, 1).
    in_channels
        Image channels.
    """

    def __init__(
        self,
        num_classes: int,
        modules_per_stage: Sequence[int] = (1, 2, 3),
        base_width: int = 64,
        p: int = 1,
        t: int = 2,
        r: int = 1,
        mask_downsamples: Sequence[int] = (3, 2, 1),
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be at least 1, got {num_classes}")
        if base_width < 1:
            raise ValueError(f"base_width must be positive, got {base_width}")
        if len(modules_per_stage) != 3 or len(mask_downsamples) != 3:
            raise ValueError("modules_per_stage and mask_downsamples need one entry per attention stage (3)")
        self.num_classes = num_classes
        widths = [4 * base_width * 2**i for i in range(4)]
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, base_width, kernel_size=7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(base_width),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
        )
        stages: list[nn.Module] = []
        c_in = base_width
        for i in range(3):
            blocks: list[nn.Module] = [PreActBottleneck(c_in, widths[i], stride=1 if i == 0 else 2)]
            blocks += [AttentionModule(widths[i], mask_downsamples[i], p, t, r) for _ in range(modules_per_stage[i])]
            stages.append(nn.Sequential(*blocks))
            c_in = widths[i]
        stages.append(
            nn.Sequential(
                PreActBottleneck(c_in, widths[3], stride=2),
                PreActBottleneck(widths[3], widths[3]),
                PreActBottleneck(widths[3], widths[3]),
            )
        )
        self.stages = nn.Sequential(*stages)
        self.head = nn.Sequential(nn.BatchNorm2d(widths[3]), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(widths[3], num_classes)
        init_cnn_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits N x num_classes for images N x C x H x W (any size of at least 32 px works)."""
        if x.dim() != 4:
            raise ValueError(f"{type(self).__name__} expects N x C x H x W input, got shape {tuple(x.shape)}")
        return self.fc(self.head(self.stages(self.stem(x))))

    @torch.no_grad()
    def soft_masks(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The soft masks ``M(x)`` of every attention module, in network order.

        Introduced in chapter 10 (``10_baselines``).

        Parameters
        ----------
        x
            Images N x C x H x W.

        Returns
        -------
        list of torch.Tensor
            One N x C_s x H_s x W_s tensor with values in (0, 1) per attention module
            (6 for ResAttNet-92). Averaging over channels gives a spatial map per image.

        Notes
        -----
        This is an ordinary forward pass in the model's current mode: call ``model.eval()``
        first for a trained model (batch norm then uses its running statistics, does not update
        them, and single images work). An untrained model in evaluation mode has uncalibrated
        running statistics and its masks may saturate at 0 or 1.
        """
        masks: list[torch.Tensor] = []
        hooks = [
            m.register_forward_hook(lambda _m, _inp, out: masks.append(out.detach()))
            for m in self.modules()
            if isinstance(m, SoftMaskBranch)
        ]
        try:
            self.forward(x)
        finally:
            for h in hooks:
                h.remove()
        return masks


class ResAttNet92(ResidualAttentionNetwork):
    """ResAttNet-92 (Attention-92): 1, 2 and 3 attention modules in stages 1-3 (Wang et al., CVPR 2017).

    Introduced in chapter 10 (``10_baselines``). The local-attention baseline of Xu et al.
    (section 4.3, Table 2). It is trained from scratch: there are no ImageNet weights for it
    in torchvision, and Xu et al. note its attention layers cannot profit from pre-training.

    Parameters
    ----------
    num_classes
        Number of output logits.
    base_width
        64 reproduces the paper (52.47 M parameters with 1000 classes vs 51.3 M
        published, see the module docstring); 4 or 8 give tiny CPU smoke-test models.
    p, t, r
        Attention-module hyper-parameters (paper: 1, 2, 1).
    in_channels
        Image channels.

    Examples
    --------
    >>> model = ResAttNet92(num_classes=3, base_width=4)
    >>> model(torch.zeros(2, 3, 64, 64)).shape
    torch.Size([2, 3])
    """

    def __init__(
        self, num_classes: int, base_width: int = 64, p: int = 1, t: int = 2, r: int = 1, in_channels: int = 3
    ) -> None:
        super().__init__(num_classes, (1, 2, 3), base_width, p, t, r, in_channels=in_channels)


class ResAttNet56(ResidualAttentionNetwork):
    """ResAttNet-56 (Attention-56): one attention module per stage (Wang et al., CVPR 2017).

    Introduced in chapter 10 (``10_baselines``). Not used by Xu et al.; kept as a smaller
    sibling and as a second check of the architecture against a published parameter count.
    Arguments as for :class:`ResAttNet92`.
    """

    def __init__(
        self, num_classes: int, base_width: int = 64, p: int = 1, t: int = 2, r: int = 1, in_channels: int = 3
    ) -> None:
        super().__init__(num_classes, (1, 1, 1), base_width, p, t, r, in_channels=in_channels)
