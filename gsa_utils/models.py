"""The pixel CNN, the global spatial attention wrapper, and the image CNNs (backbones).

* :class:`PixelCNN` is introduced in chapter 3 (``03_pixel_cnn``).
* :class:`GlobalSpatialAttention` and :func:`build_backbone` in chapter 5 (``05_two_phase_training``).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from urllib.parse import urlparse

import torch
import torch.nn.functional as F
from torch import nn

from .data.base import DataError
from .files import file_sha256
from .settings import PAPER_BACKBONES

__all__ = [
    "PixelCNN",
    "MAP_NORMS",
    "pixel_cnn_parameter_count",
    "GlobalSpatialAttention",
    "SmallCNN",
    "GreyToColour",
    "build_backbone",
    "BACKBONES",
    "PAPER_BACKBONES",
    "PretrainedWeightsError",
    "count_parameters",
]


#: The map normalisations :class:`PixelCNN` offers (``map_norm``).
MAP_NORMS = ("none", "standardize")


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (optionally only those with ``requires_grad``)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def pixel_cnn_parameter_count(n_images: int, channels: int, hidden_channels: int) -> int:
    """The paper's formula (section 4.8) for k = 3: ``K(9NC + 1) + (K + 1)``."""
    return hidden_channels * (9 * n_images * channels + 1) + (hidden_channels + 1)


class PixelCNN(nn.Module):
    """Binary pixel classifier producing one H x W importance map in [0, 1] (paper Fig. 3).

    The paper's design (the default) is two convolutions::

        conv k x k (NC -> K, stride 1, same padding) -> ReLU -> conv 1 x 1 (K -> 1) -> sigmoid

    applied to the pixel representation P (1 x NC x H x W), so every pixel is classified
    from its own NC intensities and those of its k x k neighbourhood.

    Parameters
    ----------
    in_channels
        NC: number of training images times image channels.
    hidden_channels
        K, channels of each hidden layer (paper grid: 32, 64, 128, 256).
    kernel_size
        Odd kernel size of the hidden convolutions (paper: 3; section 4.10 tried 5 and 7).
    num_hidden_layers
        Number of k x k conv + ReLU layers before the output layer (paper: 1; section 4.10
        tried 2, 3 and 4).
    last_kernel_size
        Odd kernel size of the output convolution (paper: 1; section 4.10 tried 3 and 5).
    dense
        DenseNet-style connections (section 4.10): every hidden layer after the first and
        the output layer see the concatenation of *all earlier hidden outputs*. The raw
        input (NC channels, often thousands) is only fed to the first layer, otherwise
        each later layer would carry another NC x k x k x K weights.
    output_bias
        Initial bias of the output convolution, i.e. the starting map level before the
        sigmoid: ``sigmoid(output_bias)`` plus a small image-dependent spread. ``None``
        keeps PyTorch's default initialisation (the paper's recipe: the map starts near
        0.5). A negative value such as -2 starts from a dimmer map (about 0.12).
    flat_start
        Zero the output convolution's weights so the map starts exactly at
        ``sigmoid(output_bias or 0)`` at every pixel, without the image-dependent pattern
        a random initialisation draws (the gradient still reaches every layer from the
        first step, through the output weights). Off by default (the paper's recipe).
    fan_in_reference
        Fan-in-aware parametrisation of the first layer: its weights are used as
        ``raw * s`` with ``s = min(1, fan_in_reference / (in_channels * k**2))``, and
        ``raw`` starts at ``init / s`` so the initial map is unchanged. Adam moves every
        raw weight by about the learning rate per step, so the first layer then moves a
        pre-activation as much per step as a layer of fan-in ``fan_in_reference`` would,
        however large N is (the same as a per-layer learning rate ``lr * s``). ``None``
        (default, the paper): no scaling.
    hidden_norm
        Standardise every hidden channel over the H x W pixels (instance normalisation with
        a learned scale and shift) before its ReLU: normalisation inside the pixel CNN.
    map_norm
        ``"none"`` (the paper): ``map = sigmoid(z)``. ``"standardize"``: a level- and
        contrast-normalised map ``sigmoid(map_gain * (z - mean(z)) / std(z) + logit(map_level))``
        where mean and std run over the pixels; the map's level and spread are then fixed
        by construction (it cannot drift to all zeros or all ones) and the pixel CNN only
        decides the *ordering* of pixels.
    map_gain, map_level
        Contrast and level of the standardised map (used only with ``map_norm="standardize"``).

    Notes
    -----
    Introduced in chapter 3 (``03_pixel_cnn``). With the defaults the parameter count
    equals :func:`pixel_cnn_parameter_count`.
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
        for name, k in (("kernel_size", kernel_size), ("last_kernel_size", last_kernel_size)):
            if k < 1 or k % 2 == 0:
                raise ValueError(f"PixelCNN: {name} must be a positive odd number to keep H x W, got {k}")
        if in_channels < 1 or hidden_channels < 1 or num_hidden_layers < 1:
            raise ValueError(
                "PixelCNN: in_channels, hidden_channels and num_hidden_layers must be >= 1, got "
                f"{in_channels}, {hidden_channels}, {num_hidden_layers}"
            )
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
    """An image CNN whose every input is multiplied by one map shared by all images.

    ``forward(x) = backbone(x * M(P))`` where ``M`` is the :class:`PixelCNN` and ``P`` the
    pixel representation of the training images; the 1 x 1 x H x W map broadcasts over
    the batch and the channels (paper eq. 1).

    Parameters
    ----------
    backbone
        Any image classifier taking N x C x H x W.
    pixel_cnn
        The pixel classifier M.
    pixel_rep
        1 x NC x H x W pixel representation of the training images, or ``None`` to build
        a model that will be filled from a saved state (it then predicts with the stored map).
    image_size
        (H, W); needed only when ``pixel_rep`` is ``None``.

    Notes
    -----
    The latest map is kept in the buffer ``attention`` (part of ``state_dict``), so a
    saved model predicts without the training set. :meth:`freeze` ends phase 1 of
    Algorithm 1. Introduced in chapter 5 (``05_two_phase_training``).
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
        """Fix the map: compute it once, store it, stop pixel-CNN computation and gradients.

        Parameters
        ----------
        release
            Drop the pixel representation (it can be large) once the map is stored.
        """
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


class SmallCNN(nn.Module):
    """A small CNN for CPU runs: three conv-BN-ReLU blocks, global average pooling, a linear head.

    Introduced in chapter 5 (``05_two_phase_training``); the smoke profile's default backbone.
    """

    def __init__(self, num_classes: int, in_channels: int = 3, width: int = 16, dropout: float = 0.2) -> None:
        super().__init__()

        def block(c_in: int, c_out: int, pool: bool) -> list[nn.Module]:
            layers: list[nn.Module] = [
                nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
            ]
            return layers + ([nn.MaxPool2d(2)] if pool else [])

        self.features = nn.Sequential(
            *block(in_channels, width, True),
            *block(width, 2 * width, True),
            *block(2 * width, 4 * width, False),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(4 * width, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class GreyToColour(nn.Module):
    """A network made for 3-channel (RGB) input, fed grey images: each grey image is repeated to 3 channels.

    Inside :class:`GlobalSpatialAttention` the repetition happens after the map is applied
    (``backbone(x * map)``), so the pixel representation keeps the images' single channel
    (N channels, not 3N) and the ImageNet filters see the weighted grey image in every channel.

    Parameters
    ----------
    network
        The 3-channel network (e.g. a torchvision model).
    """

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 1:
            raise DataError(f"GreyToColour expects grey N x 1 x H x W images, got {tuple(x.shape)}")
        return self.network(x.expand(-1, 3, -1, -1))


class PretrainedWeightsError(RuntimeError):
    """ImageNet weights could not be loaded; the message says where to put the file."""


def _torchvision_builders() -> dict[str, tuple[Callable, object, Callable[[nn.Module, int], None]]]:
    import torchvision.models as tvm

    def set_attr(attr: str) -> Callable[[nn.Module, int], None]:
        def replace(m: nn.Module, k: int) -> None:
            setattr(m, attr, nn.Linear(getattr(m, attr).in_features, k))

        return replace

    def vgg_head(m: nn.Module, k: int) -> None:
        m.classifier[6] = nn.Linear(m.classifier[6].in_features, k)

    return {
        "googlenet": (tvm.googlenet, tvm.GoogLeNet_Weights.IMAGENET1K_V1, set_attr("fc")),
        "vgg16": (tvm.vgg16, tvm.VGG16_Weights.IMAGENET1K_V1, vgg_head),
        "resnet152": (tvm.resnet152, tvm.ResNet152_Weights.IMAGENET1K_V1, set_attr("fc")),
        "densenet161": (tvm.densenet161, tvm.DenseNet161_Weights.IMAGENET1K_V1, set_attr("classifier")),
        "resnet18": (tvm.resnet18, tvm.ResNet18_Weights.IMAGENET1K_V1, set_attr("fc")),
    }


#: Every name :func:`build_backbone` accepts.
BACKBONES = PAPER_BACKBONES + ("resnet18", "small_cnn")


def weights_cache_path(weights: object) -> str:
    """Where torchvision looks for (and downloads) a weights file."""
    filename = os.path.basename(urlparse(weights.url).path)  # type: ignore[attr-defined]
    return os.path.join(torch.hub.get_dir(), "checkpoints", filename)


def _weights_error(name: str, weights: object, err: Exception) -> PretrainedWeightsError:
    return PretrainedWeightsError(
        f"could not load ImageNet weights for {name} from {weights.url} ({err!r}). On a machine with "  # type: ignore[attr-defined]
        f"internet, download that file and place it at {weights_cache_path(weights)} (the torch hub "
        f"cache; set TORCH_HOME to move it), or build with pretrained=False for a random initialisation."
    )


def _published_hash_prefix(path: str) -> str | None:
    """The SHA-256 prefix torchvision puts in its weights file names (``resnet18-f37072fd.pth``)."""
    match = torch.hub.HASH_REGEX.search(os.path.basename(path))
    return match.group(1) if match and match.group(1) else None


def imagenet_state_dict(weights: object, name: str, progress: bool = True) -> dict:
    """A torchvision weights enum's state dict, from the torch hub cache or by download, loaded safely.

    The file's SHA-256 must begin with the prefix in its published name (checked before
    anything is read from it, also for a file already in the cache), and it is loaded with
    ``torch.load(..., weights_only=True)``: a file that is not the published one, or that
    asks to build arbitrary objects, is refused and none of its code runs.

    Raises :class:`PretrainedWeightsError` naming the file and the path to place it at.
    """
    path = weights_cache_path(weights)
    prefix = _published_hash_prefix(path)
    if not os.path.exists(path):
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            torch.hub.download_url_to_file(weights.url, path, prefix, progress=progress)  # type: ignore[attr-defined]
        except (OSError, RuntimeError) as err:  # URLError is an OSError; a hash mismatch raises RuntimeError
            raise _weights_error(name, weights, err) from err
    try:
        digest = file_sha256(path)
    except OSError as err:
        raise _weights_error(name, weights, err) from err
    if prefix is not None and not digest.startswith(prefix):
        raise PretrainedWeightsError(
            f"{path}: not the published weights file for {name} (its SHA-256 begins {digest[: len(prefix)]}, the "
            f"file name says {prefix}); nothing was loaded from it. Delete it, then download "
            f"{weights.url} again to that path, or build with pretrained=False."
        )  # type: ignore[attr-defined]
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - an unpickling refusal, a damaged zip, ...
        raise PretrainedWeightsError(
            f"{path}: refused as ImageNet weights for {name} ({type(err).__name__}: not a plain file of tensors); "
            f"nothing in it ran. Delete it and download {weights.url} again, "  # type: ignore[attr-defined]
            f"or build with pretrained=False."
        ) from None
    if not isinstance(state, dict):
        raise PretrainedWeightsError(
            f"{path}: holds a {type(state).__name__}, not a state dict; delete it and download {weights.url} again"
        )  # type: ignore[attr-defined]
    return state


#: Old DenseNet checkpoints name layers ``norm.1``; torchvision's modules call them ``norm1``.
_DENSENET_OLD_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|"
    r"running_var))$"
)


def _pretrained_network(name: str, builder: Callable, weights: object) -> nn.Module:
    """What torchvision's ``builder(weights=weights)`` returns, its weights loaded by :func:`imagenet_state_dict`."""
    state = imagenet_state_dict(weights, name)
    categories = getattr(weights, "meta", {}).get("categories")
    kwargs: dict = {"num_classes": len(categories)} if categories else {}
    if name == "googlenet":
        kwargs.update(transform_input=True, aux_logits=True, init_weights=False)
    if name == "densenet161":
        state = {(m.group(1) + m.group(2) if (m := _DENSENET_OLD_KEY.match(k)) else k): v for k, v in state.items()}
    model = builder(weights=None, **kwargs)
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise PretrainedWeightsError(
            f"{weights_cache_path(weights)}: does not fit {name} ({_first_line(err)}); "
            f"delete it and download {weights.url} again"
        ) from None  # type: ignore
    if name == "googlenet":  # as torchvision does without aux_logits: the auxiliary heads are not pretrained
        model.aux_logits = False
        model.aux1 = None  # type: ignore[assignment]
        model.aux2 = None  # type: ignore[assignment]
    return model


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def build_backbone(name: str, num_classes: int, pretrained: bool, in_channels: int = 3) -> nn.Module:
    """An image CNN with its classifier head replaced for ``num_classes`` classes.

    Parameters
    ----------
    name
        One of :data:`BACKBONES`: the paper's ``googlenet``, ``vgg16``, ``resnet152``,
        ``densenet161``, plus ``resnet18`` and ``small_cnn`` for quick runs.
    num_classes
        Outputs of the new head.
    pretrained
        Load torchvision's ImageNet weights (required argument: there is no silent
        random initialisation). ``small_cnn`` has none.
    in_channels
        Channels of the images: ``small_cnn`` takes any number; the torchvision networks
        take 3, or 1 (grey images repeated to 3 channels inside the backbone,
        :class:`GreyToColour`, so that a map multiplies the grey image before the repetition).

    Raises
    ------
    PretrainedWeightsError
        When the weights can neither be found in the torch hub cache nor downloaded (the
        message gives the URL and the exact path to place the file at), or the file there is
        not the published one (SHA-256) or not plain tensors (:func:`imagenet_state_dict`).

    Notes
    -----
    Introduced in chapter 5 (``05_two_phase_training``). With pretrained weights GoogLeNet
    keeps torchvision's ``transform_input=True``, which expects ImageNet-standardised input
    (as the paper's preprocessing produces).
    """
    if num_classes < 2:
        raise ValueError(f"build_backbone: num_classes must be >= 2, got {num_classes}")
    if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 1:
        raise ValueError(f"build_backbone: in_channels must be a positive integer, got {in_channels!r}")
    if name == "small_cnn":
        if pretrained:
            raise PretrainedWeightsError("small_cnn has no ImageNet weights; use pretrained=False")
        return SmallCNN(num_classes, in_channels=in_channels)
    if in_channels not in (1, 3):
        raise DataError(
            f"backbone {name} takes images of 3 channels (or 1, repeated), but the images have "
            f"{in_channels}; use small_cnn, or convert the images (channels=1 or 3)"
        )
    builders = _torchvision_builders()
    if name not in builders:
        raise ValueError(f"unknown backbone {name!r}; choose one of {list(BACKBONES)}")
    builder, weights, replace_head = builders[name]
    if pretrained:
        model = _pretrained_network(name, builder, weights)
    else:
        kwargs = {"aux_logits": False, "init_weights": True} if name == "googlenet" else {}
        model = builder(weights=None, **kwargs)
    replace_head(model, num_classes)
    return GreyToColour(model) if in_channels == 1 else model
