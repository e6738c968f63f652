"""A fingerprint of the data a run used: where they came from, which files, what size, how many.

Introduced in chapter 10 (``10_baselines``). A run on a stand-in must never be taken for, or
averaged with, a run on the real data; the :class:`DataFingerprint` ``key`` tells them apart.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ..files import file_sha256
from .base import StructuredDataset


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

    ``source`` is ``"real"``, ``"stand-in"``, ``"synthetic"`` or ``"embedded"``; ``origin`` is
    ``"sha256:<hex>"`` of the one file read (MedMNIST), ``"files:<cache key>"`` for loaders of many
    files, or ``"generator:<name> seed=<s>"``; ``content`` is the SHA-256 of all images and labels.
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
    """Fingerprint a dataset from :func:`~gsa_utils.data.registry.load_dataset` or a loader."""
    meta = ds.meta
    source = "stand-in" if meta.get("stand_in_for") else ds.source
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
