"""The pixel representation (paper, Definition 3).

Introduced in chapter 2 (``02_pixel_representation``).
"""
from __future__ import annotations

import torch

from .data.base import DataError, validate_images

__all__ = ["pixel_representation", "pixel_representation_bytes"]


def pixel_representation(images: torch.Tensor) -> torch.Tensor:
    """Reshape N x C x H x W training images into the 1 x NC x H x W pixel representation.

    Each pixel's feature vector is the intensity of every channel of every training
    image at that pixel: ``P[0, n*C + c, h, w] == images[n, c, h, w]``. Build it from
    **training images only**: test images must not shape the attention map.

    Parameters
    ----------
    images
        Float tensor N x C x H x W (N >= 1, all values finite). A list of C x H x W
        tensors is accepted too and checked for a common size.

    Returns
    -------
    torch.Tensor
        Contiguous 1 x NC x H x W tensor (a copy, so the caller may free ``images``).

    Raises
    ------
    DataError
        If the input is empty, not 4-D, not floating point, contains NaN/inf (naming the
        image), or (for a list) the images differ in size (naming the first that does).
    """
    if isinstance(images, (list, tuple)):
        if not images:
            raise DataError("pixel_representation: got an empty list of images")
        ref = tuple(images[0].shape)
        for i, im in enumerate(images):
            if not isinstance(im, torch.Tensor) or im.dim() != 3:
                raise DataError(f"pixel_representation: image {i} must be a C x H x W tensor, "
                                f"got {getattr(im, 'shape', type(im).__name__)}")
            if tuple(im.shape) != ref:
                raise DataError(f"pixel_representation: image {i} has size {tuple(im.shape)} but image 0 has {ref}; "
                                "structured images must all share one size")
        images = torch.stack(list(images))
    validate_images(images, "pixel_representation input")
    n, c, h, w = images.shape
    return images.reshape(1, n * c, h, w).clone()


def pixel_representation_bytes(n: int, c: int, h: int, w: int, dtype: torch.dtype = torch.float32) -> int:
    """Memory the pixel representation of N x C x H x W images takes (chapter 2's plot)."""
    return n * c * h * w * torch.empty((), dtype=dtype).element_size()
