"""Datasets: the common container, embedded synthetic sets, and loaders for real data.

Names are resolved by :mod:`.registry`; the loaders live in :mod:`.idrid`, :mod:`.jaffe`,
:mod:`.folder` and :mod:`.medmnist`, miniature copies of the real layouts in :mod:`.fixtures`.
Nothing is read or downloaded at import.
"""

from .base import IMAGENET_MEAN, IMAGENET_STD, DataError, StructuredDataset, standardize
from .fixtures import make_idrid_fixture, make_jaffe_fixture, make_medmnist_fixture
from .folder import load_folder
from .idrid import load_idrid
from .jaffe import JAFFE_CLASSES, load_jaffe
from .medmnist import load_medmnist
from .registry import describe_source, is_stand_in, load_dataset
from .synthetic import load_synthetic

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "DataError",
    "StructuredDataset",
    "standardize",
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
    "load_synthetic",
]
