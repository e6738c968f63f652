"""A fingerprint of the data a run used: where they came from, which files, what size, how many.

Introduced in chapter 10 (``10_baselines``). A run's identity must include its data: a
run made on a synthetic stand-in before the real file was in place must never be taken
for a run on the real data, nor averaged with one. :func:`data_fingerprint` summarises a
loaded :class:`~gsa_utils.data.StructuredDataset` as a :class:`DataFingerprint` whose
``key`` a runner can put into run ids or compare when it reuses a finished run.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ..files import file_sha256
from .base import StructuredDataset

__all__ = ["DataFingerprint", "data_fingerprint", "file_sha256"]


def _tensor_digest(*tensors: torch.Tensor) -> str:
    h = hashlib.sha256()
    for t in tensors:
        t = t.detach().cpu().contiguous()
        h.update(str((tuple(t.shape), str(t.dtype))).encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


@dataclass(frozen=True)
class DataFingerprint:
    """Identity of a loaded dataset.

    Attributes
    ----------
    name
        The dataset name (``"retinamnist"``, ``"folder:..."``).
    source
        ``"real"``, ``"stand-in"`` or ``"synthetic"`` (``"embedded"`` for bundled data).
    origin
        ``"sha256:<hex>"`` of the file read (MedMNIST), ``"files:<cache key>"`` for loaders
        that read many files (the key hashes their names and contents, in order, and the
        preprocessing settings), ``"generator:<name> seed=<s>"`` for synthetic data.
    image_shape
        (C, H, W).
    n_train, n_val, n_test
        Images per split (``n_val`` 0 unless an official validation split is kept apart).
    standardize
        The standardisation applied (``"imagenet"``, ``"dataset"``, ``"none"``).
    content
        SHA-256 of the images and labels as loaded (all splits).
    """

    name: str
    source: str
    origin: str
    image_shape: tuple[int, int, int]
    n_train: int
    n_val: int
    n_test: int
    standardize: str
    content: str

    @property
    def key(self) -> str:
        """16 hex digits identifying all of the above."""
        return hashlib.sha256(json.dumps(self.as_dict(), sort_keys=True).encode()).hexdigest()[:16]

    def as_dict(self) -> dict:
        """Plain data for a result file (JSON-serialisable)."""
        d = asdict(self)
        d["image_shape"] = list(self.image_shape)
        return d


def data_fingerprint(ds: StructuredDataset) -> DataFingerprint:
    """Fingerprint a dataset from :func:`~gsa_utils.data.registry.load_dataset` or a loader.

    Cost: hashing the loaded tensors (about 0.1 s per 100 MB) and, for MedMNIST, the file.
    """
    meta = ds.meta
    if meta.get("stand_in_for"):
        source = "stand-in"
    else:
        source = ds.source
    if meta.get("file") and Path(meta["file"]).is_file():
        origin = f"sha256:{file_sha256(meta['file'])}"
    elif meta.get("cache_key"):
        origin = f"files:{meta['cache_key']}"
    else:
        generator = meta.get("stand_in_generator") or meta.get("generator") or ds.name
        origin = f"generator:{generator} seed={meta.get('seed')}"
    tensors = [ds.x_train, ds.y_train, ds.x_test, ds.y_test]
    n_val = 0
    if isinstance(meta.get("x_val"), torch.Tensor) and isinstance(meta.get("y_val"), torch.Tensor):
        tensors += [meta["x_val"], meta["y_val"]]
        n_val = int(len(meta["y_val"]))
    return DataFingerprint(
        name=ds.name,
        source=source,
        origin=origin,
        image_shape=tuple(ds.image_shape),
        n_train=int(len(ds.y_train)),
        n_val=n_val,
        n_test=int(len(ds.y_test)),
        standardize=str(meta.get("standardize", "none")),
        content=_tensor_digest(*tensors),
    )
