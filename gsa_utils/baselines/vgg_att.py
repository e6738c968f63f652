"""VGG-att3: VGG-16 with trainable local attention at three levels (Jetley et al., ICLR 2018).

Introduced in chapter 10 (``10_baselines``). Xu et al. (section 4.3) use "VGG with attention
mechanism at the last three levels (VGG-att3)" from

    S. Jetley, N. A. Lord, N. Lee and P. H. S. Torr, "Learn to Pay Attention",
    International Conference on Learning Representations (ICLR), 2018.

as one of their two local-attention baselines. This module is written from that paper's
description; it is not a port of any released code.

The mechanism (Jetley et al., section 3)
----------------------------------------
* A CNN produces, at a layer ``s``, a set of *local* feature vectors ``l^s_1 .. l^s_n`` (one
  per spatial position) and, at its end, a *global* feature vector ``g``.
* A compatibility score is computed for every position. The "parametrised compatibility"
  is ``c_i = <u, l_i + g>`` with a learnt vector ``u`` (here: a 1x1 convolution with one
  output channel applied to ``l + g``, ``g`` broadcast over positions). When ``l`` and ``g``
  differ in dimension, ``l`` is first projected linearly (1x1 convolution) to ``g``'s.
* The scores are normalised by a softmax over the positions: ``a_i = exp(c_i) / sum_j exp(c_j)``.
* The attended descriptor is ``g_a = sum_i a_i l_i``.
* With three attention levels, the three descriptors are concatenated and a single linear
  layer classifies them (the "concat" variant); ``g`` itself is *not* given to the classifier.

Choices where the papers leave room (documented, chapter 10 discusses them)
----------------------------------------------------------------------------
* **Backbone**: torchvision's VGG-16 convolutional part (13 conv 3x3 + ReLU layers, 5 max
  pools, no batch norm), so ImageNet weights can be loaded as Xu et al. did for their CNNs.
  Jetley et al. trained a CIFAR-sized VGG variant from scratch.
* **Local features**: the outputs of the last conv + ReLU of blocks 3, 4 and 5
  (``conv3_3``, ``conv4_3``, ``conv5_3``, VGG layers 7, 10 and 13), i.e. *before* the max pool
  that ends each block. At 224 px these maps are 56x56 (256 channels), 28x28 and 14x14 (512).
* **Global feature**: ``pool5`` (512 x H/32 x W/32) flattened and mapped by one fully
  connected layer to ``global_dim`` (512) values, without a non-linearity.
  Its input size depends on ``image_size``, which is therefore a constructor argument.
* ``l`` of block 3 (256 channels) is projected to 512 by a bias-free 1x1 convolution; the
  descriptor ``g_a`` is formed from the *projected* local features, so all three descriptors
  have ``global_dim`` entries and the classifier sees ``3 * global_dim`` features.
* A property of the published parametrised compatibility worth knowing: ``<u, l_i + g> =
  <u, l_i> + <u, g>`` and the second term is the same for every position, so the softmax
  removes it. The attention maps (and the logits) therefore do not depend on ``g`` at all
  and the global layer receives no gradient. We keep the published form as the default
  (``compatibility="pc"``) and offer Jetley et al.'s dot-product alternative
  ``c_i = <l_i, g>`` (``compatibility="dp"``), in which ``g`` does steer the attention.

Pre-training
------------
With ``pretrained=True`` the 13 convolutional layers are initialised from torchvision's
ImageNet VGG-16 (``VGG16_Weights.IMAGENET1K_V1``). The attention layers (projection,
compatibility vectors), the global layer and the classifier stay randomly initialised: they
have no ImageNet counterpart, which is the point Xu et al. make in section 4.6 ("VGG-att3 and
ResAttNet cannot enjoy the benefits brought by pre-training since their attention layers
should be data-dependent"). Like every torchvision ImageNet model, the pre-trained layers
expect images in [0, 1] standardised with :data:`gsa_utils.data.IMAGENET_MEAN` / ``IMAGENET_STD``
(:func:`gsa_utils.data.standardize`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..backbones import imagenet_state_dict, weights_cache_path
from ._init import init_cnn_weights

__all__ = ["VGGAtt3", "VGG16_CONV_CONFIG", "vgg16_conv_parameter_count", "vgg16_weights_file"]

#: VGG-16 convolutional configuration (channels of each 3x3 conv; "M" = 2x2 max pool).
VGG16_CONV_CONFIG: tuple = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")

# Indices into ``features`` (torchvision's layout) of the ReLUs after conv3_3, conv4_3, conv5_3,
# i.e. the last layer of blocks 3, 4 and 5 before their max pools, and of pool5.
_LOCAL_TAPS = (15, 22, 29)
_POOL5 = 30
_LOCAL_CHANNELS = (256, 512, 512)


def vgg16_conv_parameter_count(in_channels: int = 3) -> int:
    """Number of parameters of VGG-16's 13 convolutional layers (weights and biases).

    Introduced in chapter 10 (``10_baselines``). 14,714,688 for RGB input.
    """
    total, c_in = 0, in_channels
    for v in VGG16_CONV_CONFIG:
        if v == "M":
            continue
        total += 9 * c_in * v + v
        c_in = v
    return total


def vgg16_weights_file() -> str:
    """Where torchvision looks for the ImageNet VGG-16 weights: ``<torch hub dir>/checkpoints/<file>``.

    Introduced in chapter 10 (``10_baselines``). Placing the file there (for example on a
    machine without internet) makes ``VGGAtt3(..., pretrained=True)`` work offline.
    """
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
    """VGG-16 with three attention estimators (VGG-att3, "concat" variant), Jetley et al. (ICLR 2018).

    Introduced in chapter 10 (``10_baselines``). See the module docstring for the mechanism
    and the choices where the paper is not specific.

    Parameters
    ----------
    num_classes
        Number of output logits.
    pretrained
        Initialise the 13 convolutional layers from torchvision's ImageNet VGG-16
        (``VGG16_Weights.IMAGENET1K_V1``). The attention layers, the global layer and the
        classifier stay random (they cannot be pre-trained). Needs the weights file in the torch
        hub cache (see :func:`vgg16_weights_file`) or internet access; otherwise a
        :class:`RuntimeError` names the file and where to put it.
    image_size
        Input height and width (int or ``(H, W)``), at least 32. It fixes the size of the
        global layer's input, ``512 * (H // 32) * (W // 32)``; inputs of other sizes whose
        ``pool5`` has a different size are rejected.
    in_channels
        Image channels (3 for ImageNet weights).
    global_dim
        Dimension of ``g`` and of each attended descriptor (512, VGG's widest layer, as in the paper).
    compatibility
        ``"pc"`` (parametrised, ``<u, l + g>``, the paper's VGG-att3 setting) or ``"dp"``
        (dot product ``<l, g>``).
    progress
        Show a download progress bar when fetching weights.

    Examples
    --------
    >>> model = VGGAtt3(num_classes=5, image_size=32)
    >>> model(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 5])
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
        """Logits (N x num_classes) and the three attention maps (each N x H_s x W_s, summing to 1).

        Introduced in chapter 10 (``10_baselines``).
        """
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
        """The per-image (local) attention maps of blocks 3, 4 and 5.

        Introduced in chapter 10 (``10_baselines``).

        Parameters
        ----------
        x
            Images N x C x H x W (the size the model was built for).

        Returns
        -------
        list of torch.Tensor
            Three tensors N x H_s x W_s (H/4, H/8 and H/16 per side), each summing to 1 over
            positions; upsample them to H x W to overlay them on the images.
        """
        return self.forward_with_attention(x)[1]
