"""Run profiles: one place decides how big every experiment in the book is.

Introduced in chapter 1 (``01_structured_images``) and used by every notebook.

* ``smoke``: CPU-friendly (tiny images, few epochs, a small untrained backbone,
  embedded data). CI executes every notebook in this profile in minutes. A small CNN
  from scratch needs a larger learning rate (1e-3) than the paper's fine-tuning; otherwise
  it trains as the paper does: one learning rate for the pixel CNN and the image CNN, and
  the map learning from the first epoch (chapter 5 measures why the older training-side
  stabilisers, a smaller pixel-CNN learning rate and a map held still for the first epochs,
  were dropped: they froze the map).
* ``colab``: one free Colab GPU (a T4, 16 GB): the paper's 224 px and learning rate with
  one ImageNet-pretrained backbone (ResNet-18), fewer epochs and seeds, so that a dataset
  chapter (6-9) takes about half an hour. Its times are estimates from FLOPs
  (``benchmarks/chapter_costs.py``), not measurements.
* ``full``: the paper's training settings (224 px, ImageNet-pretrained torchvision
  backbones, Adam lr 1e-4, batch 32, 250 epochs, cut-off epoch E = 60).

**All three profiles build GSA with the ``recommended`` recipe, not the paper's.** The paper's
map collapsed (more than 90% of its pixels below 0.01 or above 0.99) in 9 of 10 seeds on
the fundus set and on real RetinaMNIST with a small CNN; the ``recommended`` recipe (the
pixel representation projected on its top 16 whitened principal components, computed from
the training images; everything else the paper's) collapsed in 0 of 10 on both
(``benchmarks/map_stability.py``; chapters 5 and 9 show the comparison). The paper's exact
method is one switch away: ``Profile.recipe`` / ``ExperimentConfig.from_profile(..., recipe="paper")``
(``--recipe paper`` on the command line). See :mod:`gsa_utils.recipes`.

The profile is chosen by the environment variable ``GSA_PROFILE`` (``smoke``, ``colab`` or
``full``); when it is unset, ``colab`` is used on a CUDA GPU with less than
:data:`COLAB_GPU_MEMORY_GIB` GiB (a T4 or another small card, where the full profile would
take days), ``full`` on a larger CUDA GPU and ``smoke`` otherwise.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

import torch

from .recipes import RECIPES, RECOMMENDED_RECIPE
from .settings import PAPER_BACKBONES, PAPER_FIT, FitSettings

__all__ = ["Profile", "PROFILES", "get_profile", "PROFILE_ENV", "COLAB_GPU_MEMORY_GIB"]

PROFILE_ENV = "GSA_PROFILE"
#: A CUDA GPU with less memory than this (GiB) gets the ``colab`` profile by default.
COLAB_GPU_MEMORY_GIB = 20


@dataclass(frozen=True)
class Profile:
    """Sizes and hyper-parameters for one way of running the book.

    Attributes
    ----------
    name
        ``"smoke"``, ``"colab"`` or ``"full"``.
    reason
        Why this profile was chosen (printed by notebooks).
    image_size
        Side of the square images, in pixels.
    backbone, pretrained
        Image CNN used by default and whether it starts from ImageNet weights.
    backbones
        The image CNNs compared in the dataset chapters.
    hidden_channels
        K, the pixel CNN's hidden channels.
    n_train
        Cap on training images (``None``: all).
    seeds
        Seeds over which chapters report mean and spread.
    fit
        How to train (:class:`~gsa_utils.settings.FitSettings`: epochs, E, Adam settings,
        lambda, and the optional training-side stabilisers of the map, chapter 5).
    recipe
        How GSA's pixel CNN and map are built: a name in
        :data:`~gsa_utils.recipes.RECIPES` (``"recommended"`` by default, ``"paper"`` for
        the paper's method).
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
    "colab": Profile(
        name="colab",
        image_size=224,
        backbone="resnet18",
        pretrained=True,
        backbones=("resnet18",),
        hidden_channels=32,
        seeds=(0, 1),
        fit=PAPER_FIT.replace(epochs=100, cutoff_epoch=25, weight_decay=1e-4),
    ),
    "full": Profile(
        name="full",
        image_size=224,
        backbone="resnet152",
        pretrained=True,
        backbones=PAPER_BACKBONES,
        hidden_channels=32,
        seeds=(0, 1, 2, 3, 4),
        fit=PAPER_FIT.replace(weight_decay=1e-4),
    ),
}


def get_profile(name: str | None = None) -> Profile:
    """Return the profile to run in, with the reason it was chosen.

    Parameters
    ----------
    name
        ``"smoke"``, ``"colab"`` or ``"full"`` to force one; ``None`` reads
        ``GSA_PROFILE`` and otherwise picks ``colab`` on a CUDA GPU with less than
        :data:`COLAB_GPU_MEMORY_GIB` GiB, ``full`` on a larger one, ``smoke`` elsewhere.
    """
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
