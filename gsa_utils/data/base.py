"""The container every dataset in the book comes in, and the checks it applies.

Introduced in chapter 1 (``01_structured_images``): a *structured* image set is a stack of
equally sized, aligned images. Every loader returns a :class:`StructuredDataset`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch

#: Channel means and standard deviations the paper standardises with (supplement 1.1).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class DataError(ValueError):
    """Input data is unusable; the message names the file, image or setting at fault."""


def validate_images(images: torch.Tensor, what: str = "images") -> torch.Tensor:
    """Check that ``images`` is a non-empty N x C x H x W float tensor of finite values; DataError otherwise.

    ``what`` names the stack in messages; a NaN or inf is reported with the index of its image.
    """
    if not isinstance(images, torch.Tensor):
        raise DataError(f"{what} must be a torch.Tensor of shape N x C x H x W, got {type(images).__name__}")
    if images.dim() != 4:
        raise DataError(f"{what} must be 4-D (N x C x H x W), got shape {tuple(images.shape)}")
    if images.shape[0] == 0:
        raise DataError(f"{what} is empty (N = 0): at least one image is needed")
    if not images.is_floating_point():
        raise DataError(f"{what} must be floating point (e.g. float32 in [0, 1]), got dtype {images.dtype}")
    finite = torch.isfinite(images.reshape(images.shape[0], -1)).all(dim=1)
    if not bool(finite.all()):
        bad = int((~finite).nonzero()[0, 0])
        raise DataError(f"{what}[{bad}] contains NaN or infinite values")
    return images


def validate_labels(
    labels: torch.Tensor, num_classes: int | None = None, what: str = "labels", n_expected: int | None = None
) -> torch.Tensor:
    """Check that ``labels`` is a 1-D integer tensor with values in ``[0, num_classes)``; DataError otherwise."""
    if not isinstance(labels, torch.Tensor):
        raise DataError(f"{what} must be a torch.Tensor, got {type(labels).__name__}")
    if labels.dim() != 1:
        raise DataError(f"{what} must be 1-D, got shape {tuple(labels.shape)}")
    if labels.is_floating_point() or labels.dtype == torch.bool:
        raise DataError(f"{what} must be an integer tensor (int64), got dtype {labels.dtype}")
    if n_expected is not None and labels.shape[0] != n_expected:
        raise DataError(f"{what} has {labels.shape[0]} entries but there are {n_expected} images")
    if labels.numel() and num_classes is not None:
        bad = ((labels < 0) | (labels >= num_classes)).nonzero()
        if bad.numel():
            i = int(bad[0, 0])
            raise DataError(f"{what}[{i}] = {int(labels[i])} is outside the {num_classes} classes 0..{num_classes - 1}")
    return labels


def standardize(
    images: torch.Tensor, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD
) -> torch.Tensor:
    """Per-channel ``(x - mean) / std`` for images in [0, 1] (paper, supplement 1.1)."""
    c = images.shape[1]
    m = torch.as_tensor(mean[:c] if len(mean) >= c else mean * c, dtype=images.dtype).view(1, c, 1, 1)
    s = torch.as_tensor(std[:c] if len(std) >= c else std * c, dtype=images.dtype).view(1, c, 1, 1)
    return (images - m) / s


@dataclass
class StructuredDataset:
    """A structured image set with a fixed train/test split.

    ``x_train``/``x_test`` are float32 N x C x H x W, ``y_*`` int64 class indices; ``mask`` is the
    H x W ground-truth relevant region where one is known (synthetic data); ``source`` is
    ``"synthetic"``, ``"embedded"`` (bundled real data) or ``"real"``; ``meta`` holds extras.
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    class_names: list[str]
    mask: torch.Tensor | None = None
    source: str = "synthetic"
    description: str = ""
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        k = len(self.class_names)
        if k < 2:
            raise DataError(f"dataset {self.name!r}: need at least 2 classes, got class_names={self.class_names}")
        validate_images(self.x_train, f"{self.name}.x_train")
        validate_images(self.x_test, f"{self.name}.x_test")
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise DataError(
                f"dataset {self.name!r}: train images are {tuple(self.x_train.shape[1:])} "
                f"but test images are {tuple(self.x_test.shape[1:])}"
            )
        validate_labels(self.y_train, k, f"{self.name}.y_train", self.x_train.shape[0])
        validate_labels(self.y_test, k, f"{self.name}.y_test", self.x_test.shape[0])
        if self.mask is not None and tuple(self.mask.shape) != tuple(self.x_train.shape[2:]):
            raise DataError(
                f"dataset {self.name!r}: mask shape {tuple(self.mask.shape)} differs from "
                f"image size {tuple(self.x_train.shape[2:])}"
            )

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W)."""
        return tuple(self.x_train.shape[1:])  # type: ignore[return-value]

    def class_counts(self, split: str = "train") -> np.ndarray:
        y = self.y_train if split == "train" else self.y_test
        return np.bincount(y.numpy(), minlength=self.num_classes)

    def subset(self, n_train: int | None = None, n_test: int | None = None, seed: int = 0) -> StructuredDataset:
        """A stratified-at-random smaller copy (for quick runs); ``None`` keeps a split whole."""
        g = np.random.default_rng(seed)

        def pick(y: torch.Tensor, n: int | None) -> torch.Tensor:
            if n is None or n >= len(y):
                return torch.arange(len(y))
            return torch.as_tensor(np.sort(g.permutation(len(y))[:n]))

        i, j = pick(self.y_train, n_train), pick(self.y_test, n_test)
        return replace(
            self,
            x_train=self.x_train[i],
            y_train=self.y_train[i],
            x_test=self.x_test[j],
            y_test=self.y_test[j],
            meta=dict(self.meta),
        )

    def __repr__(self) -> str:
        c, h, w = self.image_shape
        return (
            f"StructuredDataset({self.name!r}, source={self.source!r}, train={len(self.y_train)}, "
            f"test={len(self.y_test)}, image={c}x{h}x{w}, classes={self.class_names}, "
            f"mask={'yes' if self.mask is not None else 'no'})"
        )
