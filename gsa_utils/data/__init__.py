"""Datasets: the common container, embedded synthetic sets, and loaders for real data.

Loaders for real data live in their own modules (:mod:`.idrid`, :mod:`.jaffe`,
:mod:`.folder`, :mod:`.medmnist`), the registry of names in :mod:`.registry` and the
miniature copies of the real layouts in :mod:`.fixtures`; all are re-exported here.
Nothing is read or downloaded at import.
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
from .fixtures import make_idrid_fixture, make_jaffe_fixture, make_medmnist_fixture
from .folder import load_folder
from .idrid import load_idrid
from .jaffe import JAFFE_CLASSES, load_jaffe
from .medmnist import load_medmnist
from .registry import describe_source, is_stand_in, load_dataset
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
    "make_idrid_fixture",
    "make_jaffe_fixture",
    "make_medmnist_fixture",
    "load_folder",
    "load_idrid",
    "JAFFE_CLASSES",
    "load_jaffe",
    "load_medmnist",
    "describe_source",
    "is_stand_in",
    "load_dataset",
    "SYNTHETIC_DATASETS",
    "load_synthetic",
    "make_digits_in_clutter",
    "make_faces",
    "make_fundus",
    "make_oct_thickness",
]
