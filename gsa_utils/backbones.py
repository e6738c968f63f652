"""The image CNNs that GSA wraps: a small CNN for CPU runs and the paper's torchvision networks (chapter 5).

ImageNet weights are checked against their published hash before use.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from urllib.parse import urlparse

import torch
from torch import nn

from .data.base import DataError
from .files import file_sha256
from .settings import PAPER_BACKBONES


class SmallCNN(nn.Module):
    """A small CNN for CPU runs (the smoke profile's): three conv-BN-ReLU blocks, average pooling, a linear head."""

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
    """A 3-channel ``network`` fed grey images, each repeated to 3 channels (after GSA's map is applied)."""

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


def _bad_file(weights: object, problem: str) -> PretrainedWeightsError:
    """The error for a weights file in the cache that must not be used: what is wrong, and how to replace it."""
    return PretrainedWeightsError(
        f"{weights_cache_path(weights)}: {problem}; nothing in it ran. Delete it and download "
        f"{weights.url} again to that path, or build with pretrained=False."  # type: ignore[attr-defined]
    )


def _published_hash_prefix(path: str) -> str | None:
    """The SHA-256 prefix torchvision puts in its weights file names (``resnet18-f37072fd.pth``)."""
    match = torch.hub.HASH_REGEX.search(os.path.basename(path))
    return match.group(1) if match and match.group(1) else None


def imagenet_state_dict(weights: object, name: str, progress: bool = True) -> dict:
    """A torchvision weights enum's state dict, from the torch hub cache or by download, loaded safely.

    The file's SHA-256 must begin with the prefix in its published name, and it is loaded with
    ``weights_only=True``; otherwise :class:`PretrainedWeightsError` names the file and where to put it.
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
        problem = f"its SHA-256 begins {digest[: len(prefix)]}, the file name says {prefix}"
        raise _bad_file(weights, f"not the published weights file for {name} ({problem})")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - an unpickling refusal, a damaged zip, ...
        raise _bad_file(weights, f"refused for {name} ({type(err).__name__}: not a plain file of tensors)") from None
    if not isinstance(state, dict):
        raise _bad_file(weights, f"holds a {type(state).__name__}, not a state dict")
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
        raise _bad_file(weights, f"does not fit {name} ({_first_line(err)})") from None
    if name == "googlenet":  # as torchvision does without aux_logits: the auxiliary heads are not pretrained
        model.aux_logits = False
        model.aux1 = None  # type: ignore[assignment]
        model.aux2 = None  # type: ignore[assignment]
    return model


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def build_backbone(name: str, num_classes: int, pretrained: bool, in_channels: int = 3) -> nn.Module:
    """An image CNN (one of :data:`BACKBONES`) with its head replaced for ``num_classes`` classes.

    ``pretrained`` loads torchvision's ImageNet weights (:func:`imagenet_state_dict`; ``small_cnn``
    has none). ``small_cnn`` takes any ``in_channels``; the torchvision networks take 3, or 1 through
    :class:`GreyToColour`.
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
