"""Embedded synthetic structured image sets whose relevant pixels are known.

Introduced in chapter 1 (``01_structured_images``). Each generator imitates one of the paper's
datasets and adds the ground truth they lack: ``mask`` (H x W bool) holds every pixel the label
depends on; everything outside it varies from image to image but carries no information about
the label, and training sets are small, so a CNN can overfit to those distractors.

Every generator takes ``n_train``, ``n_test`` (classes balanced), ``image_size`` S (16 to 256)
and ``seed``, and returns float32 images N x 3 x S x S in [0, 1] (a DataError for a bad
setting). Scenes are drawn in resolution-free units, so one seed gives the same scenes at every
size from 32 px up; the same scene with another label differs only inside ``mask``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

from ..base import DataError, StructuredDataset
from .digits import make_digits_in_clutter
from .drawing import SYNTHETIC_DATASETS
from .faces import make_faces
from .fundus import make_fundus
from .oct import make_oct_thickness

_GENERATORS: dict[str, Callable[..., StructuredDataset]] = {
    "fundus": make_fundus,
    "faces": make_faces,
    "oct": make_oct_thickness,
    "digits-clutter": make_digits_in_clutter,
}


def load_synthetic(name: str, **kwargs) -> StructuredDataset:
    """Build one of :data:`SYNTHETIC_DATASETS` by name (case and ``_`` for ``-`` do not matter).

    Introduced in chapter 1 (``01_structured_images``). ``kwargs`` go to the generator; an
    unknown name or setting is a DataError listing the known ones.
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
