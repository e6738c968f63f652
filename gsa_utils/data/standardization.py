"""Per-channel standardisation, with statistics taken only from the images a run trains on.

Introduced in chapter 1 (``01_structured_images``). ``"imagenet"``: the ImageNet means and
stds the paper uses (grey images their averages); ``"dataset"``: the per-channel statistics of
the *training* images (``.npy`` maps, DICOM, other channel counts). A loader called with
``standardize=False`` records in ``meta["standardize_default"]`` the mode it would have used,
and a runner calls :func:`standardize_dataset` with its training folds only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

from .base import IMAGENET_MEAN, IMAGENET_STD, DataError, StructuredDataset, standardize

#: Mean and std used to standardise one-channel (grey) images: the averages of the
#: ImageNet values the paper uses for colour images (supplement 1.1).
GREY_MEAN = (float(np.mean(IMAGENET_MEAN)),)
GREY_STD = (float(np.mean(IMAGENET_STD)),)


@dataclass(frozen=True)
class Standardization:
    """A fitted per-channel ``(x - mean) / std``; ``n_images`` = images the statistics came from."""

    mode: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    n_images: int | None = None

    def apply(self, images: torch.Tensor) -> torch.Tensor:
        """Standardise ``images`` (N x C x H x W); ``mode == "none"`` returns them unchanged."""
        if self.mode == "none":
            return images
        return standardize(images, self.mean, self.std)

    def as_meta(self) -> dict:
        """The keys loaders put into ``meta`` (``standardize``, ``mean``, ``std``, ``standardize_n``)."""
        if self.mode == "none":
            return {"standardize": "none"}
        out = {"standardize": self.mode, "mean": list(self.mean), "std": list(self.std)}
        if self.n_images is not None:
            out["standardize_n"] = self.n_images
        return out


def fit_standardization(
    images: torch.Tensor,
    mode: str | bool | None = "dataset",
    indices: Sequence[int] | np.ndarray | torch.Tensor | None = None,
) -> Standardization:
    """Fit the standardisation of ``images[indices]`` (all images when ``indices`` is None).

    ``mode`` is ``"imagenet"`` (or ``True``), ``"dataset"``, or ``False``/``None``/``"none"``.
    """
    if mode is True:
        mode = "imagenet"
    if mode in (False, None, "none"):
        return Standardization("none", (), ())
    c = images.shape[1]
    if mode == "imagenet":
        if c == 3:
            return Standardization("imagenet", tuple(IMAGENET_MEAN), tuple(IMAGENET_STD))
        if c == 1:
            return Standardization("imagenet", GREY_MEAN, GREY_STD)
        raise DataError(
            f"standardize='imagenet' needs 1 or 3 channels, images have {c}; use standardize='dataset' or False"
        )
    if mode != "dataset":
        raise DataError(f"standardize must be 'imagenet', 'dataset', True or False, got {mode!r}")
    x = images if indices is None else images[torch.as_tensor(np.asarray(indices), dtype=torch.long)]
    if x.shape[0] == 0:
        raise DataError("standardize='dataset': no training images to take the statistics from")
    mean = tuple(float(v) for v in x.mean(dim=(0, 2, 3)))
    std = tuple(max(float(v), 1e-12) for v in x.std(dim=(0, 2, 3)))
    return Standardization("dataset", mean, std, int(x.shape[0]))


def standardize_dataset(
    ds: StructuredDataset,
    mode: str | bool | None = None,
    train_index: Sequence[int] | np.ndarray | torch.Tensor | None = None,
) -> StructuredDataset:
    """Standardise an unstandardised dataset with statistics from ``ds.x_train[train_index]`` only.

    The same transform applies to ``x_test`` and to ``meta["x_val"]`` when present; ``mode=None``
    takes ``meta["standardize_default"]``. A dataset already standardised is a DataError.
    """
    done = ds.meta.get("standardize")
    if done not in (None, "none"):
        raise DataError(
            f"dataset {ds.name!r} is already standardised ({done!r}); load it with standardize=False "
            f"to standardise with the statistics of the run's own training images"
        )
    if mode is None:
        mode = ds.meta.get("standardize_default", "imagenet")
    fitted = fit_standardization(ds.x_train, mode, train_index)
    meta = dict(ds.meta)
    meta.update(fitted.as_meta())
    if fitted.mode == "dataset":
        meta["standardize_fitted_on"] = (
            "all training images"
            if train_index is None
            else f"{fitted.n_images} of {len(ds.y_train)} training images (the run's training folds)"
        )
    if isinstance(meta.get("x_val"), torch.Tensor):
        meta["x_val"] = fitted.apply(meta["x_val"])
    return replace(ds, x_train=fitted.apply(ds.x_train), x_test=fitted.apply(ds.x_test), meta=meta)
