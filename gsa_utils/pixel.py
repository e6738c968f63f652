"""The pixel representation (paper, Definition 3).

Introduced in chapter 2 (``02_pixel_representation``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .data.base import DataError, validate_images


def pixel_representation(images: torch.Tensor) -> torch.Tensor:
    """Reshape N x C x H x W training images into the 1 x NC x H x W pixel representation (a copy).

    Each pixel's feature vector is the intensity of every channel of every training image at that
    pixel: ``P[0, n*C + c, h, w] == images[n, c, h, w]``. Build it from **training images only**.
    A list of C x H x W tensors of one size is accepted too. DataError names an empty, non-4-D,
    non-float or non-finite input, or the first image of another size.
    """
    if isinstance(images, (list, tuple)):
        if not images:
            raise DataError("pixel_representation: got an empty list of images")
        ref = tuple(images[0].shape)
        for i, im in enumerate(images):
            if not isinstance(im, torch.Tensor) or im.dim() != 3:
                raise DataError(
                    f"pixel_representation: image {i} must be a C x H x W tensor, "
                    f"got {getattr(im, 'shape', type(im).__name__)}"
                )
            if tuple(im.shape) != ref:
                raise DataError(
                    f"pixel_representation: image {i} has size {tuple(im.shape)} but image 0 has {ref}; "
                    "structured images must all share one size"
                )
        images = torch.stack(list(images))
    validate_images(images, "pixel_representation input")
    n, c, h, w = images.shape
    return images.reshape(1, n * c, h, w).clone()


def pixel_representation_bytes(n: int, c: int, h: int, w: int, dtype: torch.dtype = torch.float32) -> int:
    """Memory the pixel representation of N x C x H x W images takes (chapter 2's plot)."""
    return n * c * h * w * torch.empty((), dtype=dtype).element_size()


@dataclass(frozen=True)
class LowRankPixelRepresentation:
    """A low-rank pixel representation and how it was made.

    ``rep`` (1 x r x H x W) is ``(P pixel vector - channel_mean) @ components`` at every pixel;
    ``singular_values`` are those of the centred H*W x NC matrix, and ``explained_variance`` the
    share of its variance the r components keep.
    """

    rep: torch.Tensor
    channel_mean: torch.Tensor
    components: torch.Tensor
    singular_values: torch.Tensor
    explained_variance: float

    @property
    def rank(self) -> int:
        return int(self.rep.shape[1])


def lowrank_pixel_representation(
    images: torch.Tensor, rank: int, whiten: bool = True, eps: float = 1e-6
) -> LowRankPixelRepresentation:
    """Project P's NC channels onto their top ``rank`` principal components over the pixels, whitened.

    The pixel CNN's first layer then has fan-in ``rank * k**2`` instead of ``N*C*k**2``, so its cost
    and its step size no longer grow with N (chapter 5). ``rank`` is clipped to what the data has:
    components of (numerically, below ``eps``) zero variance are dropped. Training images only.
    """
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise ValueError(f"lowrank_pixel_representation: rank must be a positive integer, got {rank!r}")
    validate_images(images, "lowrank_pixel_representation input")
    n, c, h, w = images.shape
    # H*W x NC data matrix: rows are pixels, columns P's channels
    data = images.reshape(n * c, h * w).t().double()
    mean = data.mean(0)
    centred = data - mean
    # the SVD through the smaller Gram matrix: min(HW, NC)^2 x max(HW, NC) work, not a full SVD
    small_side = centred @ centred.t() if h * w <= n * c else centred.t() @ centred
    evals, evecs = torch.linalg.eigh(small_side)
    evals, evecs = evals.flip(0).clamp_min(0.0), evecs.flip(1)
    s = evals.sqrt()
    keep = max(1, min(rank, int((s > eps * max(float(s[0]), 1e-30)).sum())))
    s_r = s[:keep]
    if h * w <= n * c:
        u = evecs[:, :keep]
        v = centred.t() @ u / s_r
    else:
        v = evecs[:, :keep]
        u = centred @ v / s_r
    scores = u * (h * w) ** 0.5 if whiten else u * s_r  # whitened: unit variance over pixels
    components = v / s_r * (h * w) ** 0.5 if whiten else v
    total = float((s**2).sum())
    explained = float((s_r**2).sum()) / total if total > 0 else 1.0
    rep = scores.t().reshape(1, keep, h, w).float().contiguous()
    return LowRankPixelRepresentation(
        rep=rep,
        channel_mean=mean.float(),
        components=components.float(),
        singular_values=s_r.float(),
        explained_variance=explained,
    )
