"""Datasets: the common container, embedded synthetic sets, and loaders for real data."""
from .base import (IMAGENET_MEAN, IMAGENET_STD, DataError, StructuredDataset, standardize,
                   validate_images, validate_labels)
