"""Embedded synthetic structured image sets whose relevant pixels are known.

Introduced in chapter 1 (``01_structured_images``). The paper's datasets (IDRiD fundus
photographs, JAFFE faces, glaucoma OCT thickness maps) are *structured*: every image shows
the same kind of object at the same place, so one attention map can serve them all. They
have no ground truth for *where* the label is decided. The generators here imitate them
and add that ground truth: each :class:`~gsa_utils.data.StructuredDataset` they return has
a ``mask`` (H x W bool) that holds every pixel the label depends on. Everything outside it
is a distractor that varies from image to image but carries no information about the label,
and training sets are small on purpose, so a CNN can overfit to those distractors, as in
the paper.

All images are float32 in [0, 1], N x 3 x S x S, for any ``image_size`` S from 16 to 256.
Scenes are described in resolution-free units (x and y in [-1, 1]) and drawn with
vectorised numpy (500 images of 224 px take a few seconds), so the same ``seed`` gives the
same scenes at every size from 32 px up, train and test come from separate random streams,
and each image draws its label-dependent content from its own stream: the same scene with
another label differs only inside ``mask``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

from ..base import DataError, StructuredDataset
from .digits import make_digits_in_clutter
from .drawing import MAX_IMAGE_SIZE, MIN_IMAGE_SIZE, SYNTHETIC_DATASETS
from .faces import make_faces
from .fundus import make_fundus
from .oct import make_oct_thickness

__all__ = [
    "SYNTHETIC_DATASETS",
    "MIN_IMAGE_SIZE",
    "MAX_IMAGE_SIZE",
    "make_fundus",
    "make_faces",
    "make_oct_thickness",
    "make_digits_in_clutter",
    "load_synthetic",
]


_GENERATORS: dict[str, Callable[..., StructuredDataset]] = {
    "fundus": make_fundus,
    "faces": make_faces,
    "oct": make_oct_thickness,
    "digits-clutter": make_digits_in_clutter,
}


def load_synthetic(name: str, **kwargs) -> StructuredDataset:
    """Build one of the embedded datasets by name.

    Introduced in chapter 1 (``01_structured_images``).

    Parameters
    ----------
    name
        One of :data:`SYNTHETIC_DATASETS`: ``"fundus"``, ``"faces"``, ``"oct"``,
        ``"digits-clutter"`` (case and ``_`` for ``-`` do not matter).
    **kwargs
        Passed to the generator (:func:`make_fundus`, :func:`make_faces`,
        :func:`make_oct_thickness`, :func:`make_digits_in_clutter`), e.g. ``image_size=32``.

    Returns
    -------
    StructuredDataset

    Raises
    ------
    DataError
        For an unknown name (the message lists the known ones), a setting the generator does
        not take, or a bad value.
    """
    key = name.strip().lower().replace("_", "-") if isinstance(name, str) else None
    if key not in _GENERATORS:
        raise DataError(f"unknown synthetic dataset {name!r}; known: {', '.join(SYNTHETIC_DATASETS)}")
    generator = _GENERATORS[key]
    params = inspect.signature(generator).parameters
    unknown = sorted(set(kwargs) - set(params))
    if unknown:
        raise DataError(
            f"{key}: unknown setting(s) {', '.join(unknown)}; {generator.__name__} takes {', '.join(params)}"
        )
    return generator(**kwargs)
