"""The method's two networks: the pixel CNN (chapter 3) and the global spatial attention wrapper (chapter 5)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .data.base import DataError

#: The map normalisations :class:`PixelCNN` offers (``map_norm``).
MAP_NORMS = ("none", "standardize")


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (optionally only those with ``requires_grad``)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def pixel_cnn_parameter_count(n_images: int, channels: int, hidden_channels: int) -> int:
    """The paper's formula (section 4.8) for k = 3: ``K(9NC + 1) + (K + 1)``."""
    return hidden_channels * (9 * n_images * channels + 1) + (hidden_channels + 1)


def check_pixel_cnn_shape(
    hidden_channels: int, kernel_size: int, num_hidden_layers: int, last_kernel_size: int, owner: str
) -> None:
    """ValueError, naming ``owner``, unless the pixel CNN's shape is valid (odd kernels keep H x W)."""
    for name, k in (("kernel_size", kernel_size), ("last_kernel_size", last_kernel_size)):
        if k < 1 or k % 2 == 0:
            raise ValueError(f"{owner}: {name} must be a positive odd number to keep H x W, got {k}")
    if hidden_channels < 1 or num_hidden_layers < 1:
        raise ValueError(
            f"{owner}: hidden_channels and num_hidden_layers must be >= 1, got {hidden_channels}, {num_hidden_layers}"
        )


class PixelCNN(nn.Module):
    """Binary pixel classifier producing one H x W importance map in [0, 1] (paper Fig. 3).

    The paper's design (the defaults) applied to the pixel representation P (1 x NC x H x W)::

        conv k x k (NC -> K, same padding) -> ReLU -> conv 1 x 1 (K -> 1) -> sigmoid

    Parameters
    ----------
    in_channels, hidden_channels
        NC and K.
    kernel_size, num_hidden_layers, last_kernel_size, dense
        The shape variants of section 4.10 (:class:`~gsa_utils.recipes.PixelCNNDesign`); with
        ``dense`` every later layer sees all earlier hidden outputs (the input only feeds the first).
    output_bias, flat_start, fan_in_reference, hidden_norm, map_norm, map_gain, map_level
        Construction options beyond the paper (:class:`~gsa_utils.recipes.Recipe` says what each does);
        their defaults are the paper's.
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int = 32,
        kernel_size: int = 3,
        num_hidden_layers: int = 1,
        last_kernel_size: int = 1,
        dense: bool = False,
        output_bias: float | None = None,
        flat_start: bool = False,
        fan_in_reference: int | None = None,
        hidden_norm: bool = False,
        map_norm: str = "none",
        map_gain: float = 2.0,
        map_level: float = 0.5,
    ) -> None:
        super().__init__()
        if map_norm not in MAP_NORMS:
            raise ValueError(f"PixelCNN: map_norm must be one of {MAP_NORMS}, got {map_norm!r}")
        if not 0.0 < map_level < 1.0 or map_gain <= 0:
            raise ValueError(f"PixelCNN: need 0 < map_level < 1 and map_gain > 0, got {map_level}, {map_gain}")
        if fan_in_reference is not None and fan_in_reference < 1:
            raise ValueError(f"PixelCNN: fan_in_reference must be >= 1 or None, got {fan_in_reference}")
        if in_channels < 1:
            raise ValueError(f"PixelCNN: in_channels must be >= 1, got {in_channels}")
        check_pixel_cnn_shape(hidden_channels, kernel_size, num_hidden_layers, last_kernel_size, "PixelCNN")
        self.in_channels = in_channels
        self.dense = dense
        self.hidden = nn.ModuleList()
        for i in range(num_hidden_layers):
            c_in = in_channels if i == 0 else (hidden_channels * i if dense else hidden_channels)
            self.hidden.append(nn.Conv2d(c_in, hidden_channels, kernel_size, stride=1, padding=kernel_size // 2))
        c_last = hidden_channels * num_hidden_layers if dense else hidden_channels
        self.output = nn.Conv2d(c_last, 1, last_kernel_size, stride=1, padding=last_kernel_size // 2)
        if output_bias is not None:
            nn.init.constant_(self.output.bias, float(output_bias))
        if flat_start:
            nn.init.zeros_(self.output.weight)
        fan_in = in_channels * kernel_size**2
        self.first_layer_scale = 1.0 if fan_in_reference is None else min(1.0, fan_in_reference / fan_in)
        if self.first_layer_scale != 1.0:
            with torch.no_grad():
                self.hidden[0].weight.div_(self.first_layer_scale)
        self.norms = (
            nn.ModuleList(nn.InstanceNorm2d(hidden_channels, affine=True) for _ in self.hidden) if hidden_norm else None
        )
        self.map_norm = map_norm
        self.map_gain = float(map_gain)
        self.map_level_logit = math.log(map_level / (1.0 - map_level))

    def logits(self, pixel_rep: torch.Tensor) -> torch.Tensor:
        """The 1 x 1 x H x W pre-sigmoid output ``z`` (before any map normalisation)."""
        if pixel_rep.dim() != 4 or pixel_rep.shape[:2] != (1, self.in_channels):
            raise DataError(
                f"PixelCNN expects a pixel representation of shape 1 x {self.in_channels} x H x W, "
                f"got {tuple(pixel_rep.shape)}"
            )
        features: list[torch.Tensor] = []
        h = pixel_rep
        for i, layer in enumerate(self.hidden):
            inp = torch.cat(features, 1) if self.dense and features else h
            if i == 0 and self.first_layer_scale != 1.0:
                h = F.conv2d(inp, layer.weight * self.first_layer_scale, layer.bias, padding=layer.padding)
            else:
                h = layer(inp)
            if self.norms is not None:
                h = self.norms[i](h)
            h = torch.relu(h)
            features.append(h)
        h = torch.cat(features, 1) if self.dense else h
        return self.output(h)

    def forward(self, pixel_rep: torch.Tensor) -> torch.Tensor:
        """Map a 1 x NC x H x W pixel representation to a 1 x 1 x H x W map in [0, 1]."""
        z = self.logits(pixel_rep)
        if self.map_norm == "standardize":
            z = self.map_gain * (z - z.mean()) / (z.var() + 1e-6).sqrt() + self.map_level_logit
        return torch.sigmoid(z)


class GlobalSpatialAttention(nn.Module):
    """An image CNN whose every input is multiplied by one map shared by all images: ``backbone(x * M(P))``.

    ``pixel_rep`` is P of the training images, or ``None`` (then give ``image_size``) for a model
    to be filled from a saved state. The latest map is kept in the buffer ``attention`` (saved with
    the state), so a saved model predicts without the training set; :meth:`freeze` ends phase 1.
    """

    def __init__(
        self,
        backbone: nn.Module,
        pixel_cnn: PixelCNN,
        pixel_rep: torch.Tensor | None,
        image_size: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        if pixel_rep is None and image_size is None:
            raise ValueError("GlobalSpatialAttention: give pixel_rep, or image_size to load a saved model")
        if pixel_rep is not None and pixel_rep.shape[1] != pixel_cnn.in_channels:
            raise DataError(
                f"GlobalSpatialAttention: pixel_rep has {pixel_rep.shape[1]} channels but the pixel "
                f"CNN expects NC = {pixel_cnn.in_channels}"
            )
        h, w = tuple(pixel_rep.shape[2:]) if pixel_rep is not None else image_size  # type: ignore[misc]
        self.backbone = backbone
        self.pixel_cnn = pixel_cnn
        self.register_buffer("pixel_rep", pixel_rep, persistent=False)
        self.register_buffer("attention", torch.full((1, 1, h, w), float("nan")))
        self.register_buffer("is_frozen", torch.tensor(pixel_rep is None))

    @property
    def frozen(self) -> bool:
        """True once the map is fixed (phase 2 of Algorithm 1, or a model loaded for prediction)."""
        return bool(self.is_frozen)

    def attention_map(self) -> torch.Tensor:
        """The current 1 x 1 x H x W map (differentiable until :meth:`freeze`)."""
        if self.frozen or self.pixel_rep is None:
            if torch.isnan(self.attention).any():
                raise RuntimeError("no attention map yet: give a pixel representation, or load a saved state")
            return self.attention
        amap = self.pixel_cnn(self.pixel_rep)
        self.attention.copy_(amap.detach())
        return amap

    def forward(self, x: torch.Tensor, attention_map: torch.Tensor | None = None) -> torch.Tensor:
        """Classify ``x``; pass ``attention_map`` to reuse a map computed once for many batches."""
        amap = self.attention_map() if attention_map is None else attention_map
        return self.backbone(x * amap.to(x.dtype))

    @torch.no_grad()
    def freeze(self, release: bool = True) -> None:
        """Fix the map: compute it once, store it, stop the pixel CNN's gradients; ``release`` drops P."""
        if not self.frozen:
            self.attention.copy_(self.pixel_cnn(self.pixel_rep))
            self.is_frozen.fill_(True)
        self.pixel_cnn.requires_grad_(False)
        if release:
            self.pixel_rep = None

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # noqa: D401
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        if self.frozen:  # a loaded frozen model must not train its pixel CNN again
            self.pixel_cnn.requires_grad_(False)
