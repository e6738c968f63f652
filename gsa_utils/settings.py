"""Training settings (:class:`FitSettings`) and the paper's constants (section 4.4), each written once.

Introduced in chapter 5 (``05_two_phase_training``). A profile, a run's config, its history and
its checkpoint all hold one :class:`FitSettings`, so a new training option is one new field here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import Any, Literal

#: Training epochs of every CNN (section 4.4).
PAPER_EPOCHS = 250
#: GSA's cut-off epoch E: after it the pixel CNN is frozen (Algorithm 1).
PAPER_CUTOFF_EPOCH = 60
#: Adam's learning rate and the mini-batch size (section 4.4).
PAPER_LR = 1e-4
PAPER_BATCH_SIZE = 32
#: lambda, the coefficient of the L1 term on the map (the smallest value of its grid).
PAPER_L1_WEIGHT = 1e-4
#: The four ImageNet-pretrained image CNNs of Table 2.
PAPER_BACKBONES = ("googlenet", "vgg16", "resnet152", "densenet161")
#: Adam weight decay searched for every CNN (section 4.4).
WEIGHT_DECAY_GRID = (1e-3, 1e-4, 1e-5)
#: GSA's search grid (section 4.4): K, lambda and the weight decay. The paper prints K = 62, a typo for 64.
PAPER_GRID: dict[str, tuple] = {
    "hidden_channels": (32, 64, 128, 256),
    "l1_weight": (0.1, 0.01, 0.001, 0.0001),
    "weight_decay": WEIGHT_DECAY_GRID,
}


@dataclass(frozen=True)
class FitSettings:
    """How :func:`~gsa_utils.training.two_phase_fit` trains; the defaults are the paper's.

    Attributes
    ----------
    epochs, cutoff_epoch
        Total epochs, and E: after epoch E the map is frozen (``None``: never).
    lr, batch_size, weight_decay
        Adam's learning rate, the mini-batch size and Adam's weight decay.
    l1_weight, l1_reduction
        lambda, and whether the L1 term sums or averages the map (:func:`~gsa_utils.losses.map_l1`).
    pixel_cnn_lr
        Learning rate of the pixel CNN (``None``: ``lr``, the paper).
    map_warmup_epochs
        Epochs the map is held at its initial level while the image CNN starts learning (0: the paper).
    """

    epochs: int = PAPER_EPOCHS
    cutoff_epoch: int | None = PAPER_CUTOFF_EPOCH
    lr: float = PAPER_LR
    batch_size: int = PAPER_BATCH_SIZE
    weight_decay: float = 0.0
    l1_weight: float = PAPER_L1_WEIGHT
    l1_reduction: Literal["sum", "mean"] = "sum"
    pixel_cnn_lr: float | None = None
    map_warmup_epochs: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(
                f"FitSettings: epochs and batch_size must be >= 1, got {self.epochs} and {self.batch_size}"
            )
        if self.lr <= 0 or (self.pixel_cnn_lr is not None and self.pixel_cnn_lr <= 0):
            raise ValueError(
                f"FitSettings: learning rates must be > 0, got lr={self.lr}, pixel_cnn_lr={self.pixel_cnn_lr}"
            )
        if self.weight_decay < 0 or self.l1_weight < 0 or self.map_warmup_epochs < 0:
            raise ValueError(
                f"FitSettings: weight_decay, l1_weight and map_warmup_epochs must be >= 0, got "
                f"{self.weight_decay}, {self.l1_weight} and {self.map_warmup_epochs}"
            )
        if self.cutoff_epoch is not None and self.cutoff_epoch < 1:
            raise ValueError(f"FitSettings: cutoff_epoch must be None or >= 1, got {self.cutoff_epoch}")
        if self.l1_reduction not in ("sum", "mean"):
            raise ValueError(f"FitSettings: l1_reduction must be 'sum' or 'mean', got {self.l1_reduction!r}")

    def replace(self, **changes: Any) -> FitSettings:
        """A copy with some fields changed; an unknown name raises ``TypeError`` naming it."""
        unknown = sorted(set(changes) - set(self.names()))
        if unknown:
            raise TypeError(f"FitSettings has no field(s) {', '.join(unknown)}; fields: {', '.join(self.names())}")
        return dataclasses.replace(self, **changes)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The field names, in order."""
        return tuple(f.name for f in fields(cls))

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict."""
        return {name: getattr(self, name) for name in self.names()}


#: The paper's training settings (section 4.4; weight decay and lambda are searched).
PAPER_FIT = FitSettings()
