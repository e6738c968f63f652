"""VGG-att3: VGG-16 with trainable local attention at three levels (Jetley et al., ICLR 2018).

Introduced in chapter 10 (``10_baselines``); written from Jetley et al.'s description, not ported.
At blocks 3, 4 and 5 (``conv3_3``, ``conv4_3``, ``conv5_3``, before their max pools) a compatibility
score ``c_i = <u, l_i + g>`` between each local feature ``l_i`` and the global feature ``g`` (``pool5``
through one linear layer) is softmaxed over positions; the three attended descriptors
``sum_i a_i l_i`` are concatenated and classified by one linear layer. Block 3's 256 channels are
projected to ``global_dim`` first. Since ``<u, g>`` is the same at every position, the softmax removes
it and ``g`` gets no gradient; ``compatibility="dp"`` (``c_i = <l_i, g>``) lets ``g`` steer the
attention. With ``pretrained=True`` only the 13 convolutions start from ImageNet VGG-16.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..backbones import imagenet_state_dict, weights_cache_path
from ._init import init_cnn_weights

#: VGG-16 convolutional configuration (channels of each 3x3 conv; "M" = 2x2 max pool).
VGG16_CONV_CONFIG: tuple = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")

# Indices into ``features`` (torchvision's layout) of the ReLUs after conv3_3, conv4_3, conv5_3,
# i.e. the last layer of blocks 3, 4 and 5 before their max pools, and of pool5.
_LOCAL_TAPS = (15, 22, 29)
_POOL5 = 30
_LOCAL_CHANNELS = (256, 512, 512)


def vgg16_conv_parameter_count(in_channels: int = 3) -> int:
    """Number of parameters of VGG-16's 13 convolutional layers (14,714,688 for RGB input)."""
    total, c_in = 0, in_channels
    for v in VGG16_CONV_CONFIG:
        if v == "M":
            continue
        total += 9 * c_in * v + v
        c_in = v
    return total


def vgg16_weights_file() -> str:
    """Where torchvision looks for the ImageNet VGG-16 weights (place the file there to work offline)."""
    from torchvision.models import VGG16_Weights

    return weights_cache_path(VGG16_Weights.IMAGENET1K_V1)


def _make_vgg16_features(in_channels: int) -> nn.Sequential:
    """VGG-16's convolutional part with torchvision's module indices (so its state dict loads as is)."""
    layers: list[nn.Module] = []
    c_in = in_channels
    for v in VGG16_CONV_CONFIG:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(c_in, v, kernel_size=3, padding=1), nn.ReLU(inplace=False)]
            c_in = v
    return nn.Sequential(*layers)


class _AttentionEstimator(nn.Module):
    """One attention level: compatibility scores, spatial softmax, attended descriptor."""

    def __init__(self, local_channels: int, global_dim: int, compatibility: str) -> None:
        super().__init__()
        self.project = (
            nn.Conv2d(local_channels, global_dim, kernel_size=1, bias=False) if local_channels != global_dim else None
        )
        # u of c_i = <u, l_i + g>; a bias would be constant over positions and cancel in the softmax.
        self.u = nn.Conv2d(global_dim, 1, kernel_size=1, bias=False) if compatibility == "pc" else None

    def forward(self, local: torch.Tensor, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (descriptor N x D, attention N x H x W) for local features N x C x H x W and g N x D."""
        if self.project is not None:
            local = self.project(local)
        n, _, h, w = local.shape
        g_map = g[:, :, None, None]
        scores = self.u(local + g_map) if self.u is not None else (local * g_map).sum(1, keepdim=True)
        attention = torch.softmax(scores.reshape(n, h * w), dim=1).reshape(n, 1, h, w)
        descriptor = (attention * local).sum(dim=(2, 3))
        return descriptor, attention[:, 0]


class VGGAtt3(nn.Module):
    """VGG-16 with three attention estimators (VGG-att3, "concat" variant); the module docstring tells how.

    Parameters
    ----------
    pretrained
        Start the 13 convolutions from torchvision's ImageNet VGG-16 (:func:`vgg16_weights_file`).
    image_size
        Input height and width (at least 32); it fixes the global layer's input size.
    global_dim
        Dimension of ``g`` and of each attended descriptor (512 in the paper).
    compatibility
        ``"pc"`` (``<u, l + g>``, the paper's) or ``"dp"`` (``<l, g>``).
    """

    def __init__(
        self,
        num_classes: int,
        pretrained: bool = False,
        image_size: int | Sequence[int] = 224,
        in_channels: int = 3,
        global_dim: int = 512,
        compatibility: str = "pc",
        progress: bool = False,
    ) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be at least 1, got {num_classes}")
        height, width = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        if height < 32 or width < 32:
            raise ValueError(f"image_size must be at least 32 (VGG-16 halves it 5 times), got {image_size}")
        if compatibility not in ("pc", "dp"):
            raise ValueError(f"compatibility must be 'pc' or 'dp', got {compatibility!r}")
        if pretrained and in_channels != 3:
            raise ValueError(f"ImageNet weights need in_channels=3, got {in_channels}")
        self.num_classes = num_classes
        self.image_size = (height, width)
        self.pool5_size = (height // 32, width // 32)
        self.compatibility = compatibility
        self.features = _make_vgg16_features(in_channels)
        self.global_fc = nn.Linear(512 * self.pool5_size[0] * self.pool5_size[1], global_dim)
        self.attention = nn.ModuleList([_AttentionEstimator(c, global_dim, compatibility) for c in _LOCAL_CHANNELS])
        self.classifier = nn.Linear(len(_LOCAL_CHANNELS) * global_dim, num_classes)
        init_cnn_weights(self)
        if pretrained:
            self._load_imagenet_conv_weights(progress)

    def _load_imagenet_conv_weights(self, progress: bool) -> None:
        from torchvision.models import VGG16_Weights

        state = imagenet_state_dict(VGG16_Weights.IMAGENET1K_V1, "VGGAtt3(pretrained=True)", progress)
        conv_state = {k[len("features.") :]: v for k, v in state.items() if k.startswith("features.")}
        self.features.load_state_dict(conv_state, strict=True)

    def _local_and_global(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        if x.dim() != 4:
            raise ValueError(f"VGGAtt3 expects N x C x H x W input, got shape {tuple(x.shape)}")
        locals_: list[torch.Tensor] = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in _LOCAL_TAPS:
                locals_.append(x)
            if i == _POOL5:
                break
        if tuple(x.shape[-2:]) != self.pool5_size:
            raise ValueError(
                f"VGGAtt3 was built for image_size={self.image_size} (pool5 {self.pool5_size}); an input of "
                f"{tuple(x.shape[-2:])} after pool5 does not fit its global layer. Build it with the input's size."
            )
        g = self.global_fc(torch.flatten(x, 1))
        return locals_, g

    def forward_with_attention(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Logits (N x num_classes) and the three attention maps (each N x H_s x W_s, summing to 1)."""
        locals_, g = self._local_and_global(x)
        descriptors, maps = [], []
        for estimator, local in zip(self.attention, locals_):
            d, a = estimator(local, g)
            descriptors.append(d)
            maps.append(a)
        return self.classifier(torch.cat(descriptors, dim=1)), maps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits N x num_classes for images N x C x H x W."""
        return self.forward_with_attention(x)[0]

    @torch.no_grad()
    def attention_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The per-image attention maps of blocks 3, 4 and 5 (N x H/4, H/8, H/16 per side, each summing to 1)."""
        return self.forward_with_attention(x)[1]
