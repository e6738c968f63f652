"""The record of one training run: per-epoch metrics, map snapshots and its settings.

Written by :func:`~gsa_utils.training.two_phase_fit` (chapter 5) and read back by
:mod:`gsa_utils.runs`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np


@dataclass
class History:
    """What :func:`~gsa_utils.training.two_phase_fit` records.

    Attributes
    ----------
    records
        One dict per epoch: ``epoch``, ``phase``, ``train_*`` and ``{set}_*`` scores, ``seconds``, the
        map's statistics, and the collapse checks (:func:`~gsa_utils.stability.record_collapse`).
    maps
        Attention maps (H x W arrays) at the requested epochs; key 0 is before training.
    config
        The settings of the run.
    """

    records: list[dict] = field(default_factory=list)
    maps: dict[int, np.ndarray] = field(default_factory=dict)
    config: dict = field(default_factory=dict)

    def __getitem__(self, key: str) -> np.ndarray:
        """A column over epochs, e.g. ``history["test_acc"]``."""
        return np.array([r.get(key, np.nan) for r in self.records], dtype=float)

    @property
    def epochs_done(self) -> int:
        return len(self.records)

    def to_dict(self) -> dict:
        return {
            "records": self.records,
            "config": self.config,
            "maps": {str(k): v.tolist() for k, v in self.maps.items()},
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> History:
        return cls(
            records=list(d["records"]),
            config=dict(d.get("config", {})),
            maps={int(k): np.asarray(v, dtype=np.float32) for k, v in d.get("maps", {}).items()},
        )
