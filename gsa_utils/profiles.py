"""Run profiles: one place decides how big every experiment in the book is (chapter 1).

* ``smoke``: CPU-friendly (32 px, 30 epochs, a small untrained CNN with lr 1e-3); CI runs every notebook in it.
* ``colab``: one free Colab GPU (T4): the paper's 224 px and lr, a pretrained ResNet-18, 100 epochs.
* ``full``: the paper's training settings (section 4.4).

All three build GSA with the ``recommended`` recipe (chapters 5 and 9 show why); ``recipe="paper"``
is the paper's method. ``GSA_PROFILE`` chooses; unset, a CUDA GPU below :data:`COLAB_GPU_MEMORY_GIB`
GiB gets ``colab``, a larger one ``full``, no GPU ``smoke``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

import torch

from .recipes import RECIPES, RECOMMENDED_RECIPE
from .settings import PAPER_BACKBONES, PAPER_FIT, FitSettings

PROFILE_ENV = "GSA_PROFILE"
#: A CUDA GPU with less memory than this (GiB) gets the ``colab`` profile by default.
COLAB_GPU_MEMORY_GIB = 20


@dataclass(frozen=True)
class Profile:
    """Sizes and hyper-parameters for one way of running the book.

    Attributes
    ----------
    reason
        Why this profile was chosen (printed by notebooks).
    backbone, pretrained, backbones
        The default image CNN, whether it starts from ImageNet weights, and those the dataset chapters compare.
    hidden_channels
        K, the pixel CNN's hidden channels.
    n_train
        Cap on training images (``None``: all).
    seeds
        Seeds over which chapters report mean and spread.
    fit, recipe
        How to train, and how GSA is built (a name in :data:`~gsa_utils.recipes.RECIPES`).
    """

    name: str
    image_size: int
    backbone: str
    pretrained: bool
    backbones: tuple[str, ...]
    hidden_channels: int
    seeds: tuple[int, ...]
    fit: FitSettings
    recipe: str = RECOMMENDED_RECIPE
    n_train: int | None = None
    reason: str = ""

    def __post_init__(self) -> None:
        if self.recipe not in RECIPES:
            raise ValueError(f"Profile {self.name!r}: unknown recipe {self.recipe!r}; choose one of {sorted(RECIPES)}")

    def describe(self) -> str:
        fit = self.fit
        return (
            f"Profile '{self.name}' ({self.reason}): {self.image_size}px, {fit.epochs} epochs, "
            f"E={fit.cutoff_epoch}, GSA recipe '{self.recipe}', backbone={self.backbone} "
            f"({'ImageNet-pretrained' if self.pretrained else 'random init'}), K={self.hidden_channels}, "
            f"lambda={fit.l1_weight}, batch={fit.batch_size}, lr={fit.lr}, seeds={list(self.seeds)}"
            + (
                ""
                if fit.pixel_cnn_lr is None and not fit.map_warmup_epochs
                else f", map stabilised (pixel-CNN lr={fit.pixel_cnn_lr}, map warm-up={fit.map_warmup_epochs} epochs)"
            )
        )


_FULL = Profile(
    name="full",
    image_size=224,
    backbone="resnet152",
    pretrained=True,
    backbones=PAPER_BACKBONES,
    hidden_channels=32,
    seeds=(0, 1, 2, 3, 4),
    fit=PAPER_FIT.replace(weight_decay=1e-4),
)
PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke",
        image_size=32,
        backbone="small_cnn",
        pretrained=False,
        backbones=("small_cnn",),
        hidden_channels=16,
        seeds=(0, 1, 2),
        fit=FitSettings(epochs=30, cutoff_epoch=15, lr=1e-3, weight_decay=1e-4),
    ),
    "colab": replace(
        _FULL,
        name="colab",
        backbone="resnet18",
        backbones=("resnet18",),
        seeds=(0, 1),
        fit=_FULL.fit.replace(epochs=100, cutoff_epoch=25),
    ),
    "full": _FULL,
}


def get_profile(name: str | None = None) -> Profile:
    """The profile ``name``, or (``None``) the one the module docstring's rule picks, with the reason why."""
    if name is not None:
        reason = "chosen explicitly"
    elif os.environ.get(PROFILE_ENV):
        name, reason = os.environ[PROFILE_ENV].strip().lower(), f"{PROFILE_ENV}={os.environ[PROFILE_ENV]}"
    elif torch.cuda.is_available():
        gib = torch.cuda.get_device_properties(0).total_memory / 2**30
        name = "colab" if gib < COLAB_GPU_MEMORY_GIB else "full"
        reason = f"a CUDA GPU was found ({torch.cuda.get_device_name(0)}, {gib:.0f} GiB)"
    else:
        name, reason = "smoke", f"no CUDA GPU; set {PROFILE_ENV}=full to force the paper's settings"
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r} (from {reason}); choose one of {sorted(PROFILES)}")
    return replace(PROFILES[name], reason=reason)
