"""The pixel representation (paper, Definition 3).

Introduced in chapter 2 (``02_pixel_representation``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .data.base import DataError, validate_images

__all__ = [
    "pixel_representation",
    "pixel_representation_bytes",
    "LowRankPixelRepresentation",
    "lowrank_pixel_representation",
]


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
    """A whitened low-rank pixel representation and how it was made.

    Attributes
    ----------
    rep
        1 x r x H x W tensor: the top r principal components of P's NC channels, one
        channel each, every channel with zero mean and (when whitened) unit variance over
        the H x W pixels.
    channel_mean
        NC values subtracted from P's channels before the projection (their pixel means).
    components
        NC x r matrix: ``rep`` pixel vector = (P pixel vector - channel_mean) @ components.
    singular_values
        The r singular values of the centred H*W x NC matrix (descending).
    explained_variance
        Share of P's (centred) variance the r components keep, in [0, 1].
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
    """Project P's NC channels onto their top ``rank`` principal components (optionally whitened).

    Every pixel of P is a point with NC features (its intensity in every training image
    and channel). PCA over the H*W pixels keeps the ``rank`` directions of largest variance;
    whitening scales each to unit variance. The pixel CNN's first layer then has fan-in
    ``rank * k**2`` instead of ``N*C*k**2``: its cost no longer grows with N, and one Adam
    step (which moves every weight by about the learning rate) moves a pre-activation by
    a bounded amount. When ``rank`` reaches the rank of the centred P, the representation
    is an invertible linear map of the centred P, so nothing is lost.

    Build it from **training images only**, as :func:`pixel_representation`.

    Parameters
    ----------
    images
        N x C x H x W float training images.
    rank
        Number of components r (>= 1). Clipped to min(N*C, H*W) (the most there can be);
        components with (numerically) zero variance are dropped, so the result may have
        fewer channels than asked.
    whiten
        Divide every component by its standard deviation over pixels (unit variance).
    eps
        Relative tolerance below which a singular value counts as zero.

    Returns
    -------
    LowRankPixelRepresentation
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
