"""Datasets: the common container, embedded synthetic sets, and loaders for real data.

Loaders for real data live in their own modules (:mod:`.idrid`, :mod:`.jaffe`,
:mod:`.folder`, :mod:`.medmnist`) and are re-exported here; nothing is read or
downloaded at import.
"""

from .base import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    DataError,
    StructuredDataset,
    standardize,
    validate_images,
    validate_labels,
)
from .folder import load_folder
from .idrid import load_idrid
from .jaffe import load_jaffe
from .medmnist import load_medmnist
from .synthetic import (
    SYNTHETIC_DATASETS,
    load_synthetic,
    make_digits_in_clutter,
    make_faces,
    make_fundus,
    make_oct_thickness,
)

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "DataError",
    "StructuredDataset",
    "standardize",
    "validate_images",
    "validate_labels",
    "load_folder",
    "load_idrid",
    "load_jaffe",
    "load_medmnist",
    "SYNTHETIC_DATASETS",
    "load_synthetic",
    "make_digits_in_clutter",
    "make_faces",
    "make_fundus",
    "make_oct_thickness",
]
