"""ResAttNet-92, the Residual Attention Network (Wang et al., CVPR 2017), a local-attention baseline.

Introduced in chapter 10 (``10_baselines``); written from Wang et al.'s section 3 and Table 2
(Attention-92: a 7x7 stem, three stages of pre-activation bottlenecks with 1, 2 and 3 attention
modules, a fourth stage of 3 units, then pooling and a linear head), not ported from released code.
An attention module computes ``(1 + M(x)) * T(x)`` from a trunk ``T`` and an hourglass soft mask
``M`` in (0, 1). Where the paper leaves room: each skip connection of the mask goes through one
residual unit, up-sampling interpolates to the matching bottom-up size (so small inputs work), and
down-sampling units stride their 3x3 convolution. The parameter counts (52.47 M for Attention-92,
31.81 M for Attention-56, 1000 classes) are within :data:`PARAMETER_TOLERANCE` of the published ones.
``base_width`` (64 in the paper) scales every width; 4 gives a tiny model for CPU tests.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ._init import init_cnn_weights

#: Parameter counts reported by Wang et al. (Table 2, ImageNet, 1000 classes).
PUBLISHED_PARAMETERS: dict[str, float] = {"ResAttNet-56": 31.9e6, "ResAttNet-92": 51.3e6}
#: Relative tolerance within which our counts must match the published ones.
PARAMETER_TOLERANCE = 0.05


class PreActBottleneck(nn.Module):
    """Pre-activation bottleneck residual unit (He et al., 2016) of width ``out_channels // 4``."""

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
    """Bottom-up top-down soft mask branch ``M(x)`` in (0, 1) (Wang et al., section 3.2).

    ``num_downsamples`` max-pool / up-sampling pairs (3, 2, 1 in stages 1, 2, 3), ``r`` residual
    units between them.
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
    """Attention module: ``p`` units, trunk ``T`` (``t`` units) and mask ``M`` as ``(1 + M) * T``, ``p`` units."""

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
    """Residual Attention Network (Wang et al., CVPR 2017, Table 2); :class:`ResAttNet92` is the paper's baseline.

    Parameters
    ----------
    modules_per_stage
        Attention modules in stages 1, 2, 3: ``(1, 2, 3)`` is Attention-92, ``(1, 1, 1)`` Attention-56.
    base_width
        Stem channels (64 in the paper); stage outputs are 4, 8, 16 and 32 times this.
    p, t, r
        Attention-module hyper-parameters (the paper: 1, 2, 1).
    mask_downsamples
        Hourglass depth of the soft masks in stages 1, 2, 3 (the paper: 3, 2, 1).
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
        """The soft masks ``M(x)`` of every attention module, in network order (N x C_s x H_s x W_s each).

        An ordinary forward pass in the model's current mode: call ``model.eval()`` first for a trained model.
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
    """ResAttNet-92: 1, 2 and 3 attention modules in stages 1-3, trained from scratch (Xu et al., section 4.3)."""

    def __init__(
        self, num_classes: int, base_width: int = 64, p: int = 1, t: int = 2, r: int = 1, in_channels: int = 3
    ) -> None:
        super().__init__(num_classes, (1, 2, 3), base_width, p, t, r, in_channels=in_channels)


class ResAttNet56(ResidualAttentionNetwork):
    """ResAttNet-56: one attention module per stage; a second check against a published parameter count."""

    def __init__(
        self, num_classes: int, base_width: int = 64, p: int = 1, t: int = 2, r: int = 1, in_channels: int = 3
    ) -> None:
        super().__init__(num_classes, (1, 1, 1), base_width, p, t, r, in_channels=in_channels)
