"""What :func:`~gsa_utils.training.two_phase_fit` checks and keeps around Algorithm 1.

Before the first step, the data and whether the model takes it; after every epoch, a checkpoint
that a later call with the same settings resumes from, and a progress bar.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .checkpoints import CheckpointRecoveryWarning, load_or_restart, previous_path, save_checkpoint
from .data.base import DataError, validate_images, validate_labels
from .files import move_aside
from .history import History
from .settings import FitSettings


def _check_training_data(x: torch.Tensor, y: torch.Tensor, what: str, num_classes: int | None) -> None:
    validate_images(x, f"{what} images")
    validate_labels(y, num_classes, f"{what} labels", x.shape[0])


def _input_channels(model: nn.Module) -> int | None:
    """The channels the model's image network takes (its first convolution's), or ``None`` if it has none."""
    from .backbones import GreyToColour

    for m in getattr(model, "backbone", model).modules():
        if isinstance(m, GreyToColour):
            return 1
        if isinstance(m, nn.Conv2d):
            return int(m.in_channels)
    return None


def check_model_fits(
    model: nn.Module, x_train: torch.Tensor, num_classes: int | None, device: torch.device | str | None = None
) -> None:
    """Before the first step: does the model take these images, with one output per class? DataError names both sides.

    Runs two images through the model in evaluation mode, without gradients or random numbers.
    """
    c, h, w = (int(v) for v in x_train.shape[1:])
    takes = _input_channels(model)
    if takes is not None and takes != c:
        raise DataError(
            f"the images have {c} channel(s) ({c} x {h} x {w}) but the model's first layer takes "
            f"{takes}: build the model for {c}-channel images (or convert the images)"
        )
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(x_train[:2].to(device or "cpu"))
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataError(
            f"the model cannot take images of {c} x {h} x {w} (channels x height x width): {first}"
        ) from None
    finally:
        model.train(was_training)
    if num_classes is not None and (out.dim() != 2 or out.shape[1] != num_classes):
        raise DataError(
            f"the model gives {tuple(out.shape[1:])} outputs per image but the labels have "
            f"{num_classes} classes: build its head for {num_classes} classes"
        )


def checked_data(
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    eval_sets: Mapping[str, tuple[torch.Tensor, torch.Tensor]] | None,
    num_classes: int | None,
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Validate the training and evaluation data; DataError or ValueError naming what is wrong."""
    _check_training_data(x_train, y_train, "training", num_classes)
    if len(torch.unique(y_train)) < 2:
        raise DataError(f"training labels contain a single class ({int(y_train[0])}); a classifier needs two or more")
    eval_sets = dict(eval_sets or {})
    for name, (xe, ye) in eval_sets.items():
        if name == "train":
            raise ValueError("eval set name 'train' is reserved for the training metrics; use e.g. 'train_eval'")
        _check_training_data(xe, ye, f"eval set {name!r}", num_classes)
        if xe.shape[1:] != x_train.shape[1:]:
            raise DataError(
                f"eval set {name!r} images are {tuple(xe.shape[1:])}, training images are {tuple(x_train.shape[1:])}"
            )
    return eval_sets


#: Besides the :class:`FitSettings`, what a checkpoint must share with the run that resumes it.
_RESUME_KEYS = ("seed", "n_train")


def config_mismatch(saved: Mapping, current: Mapping) -> list[str]:
    """The settings (all but ``epochs``) in which a checkpoint differs from the run resuming it."""
    defaults = FitSettings().to_dict()
    keys = [k for k in FitSettings.names() if k != "epochs"] + list(_RESUME_KEYS)
    return [
        f"{k}: checkpoint {saved.get(k, defaults.get(k))!r} vs now {current.get(k)!r}"
        for k in keys
        if saved.get(k, defaults.get(k)) != current.get(k)
    ]


def save_training_checkpoint(path: str | os.PathLike, learner: Any, history: History) -> None:
    """Write model, optimiser, scaler and history with a checksum, atomically (resumable after any epoch)."""
    save_checkpoint(
        path,
        {
            "model": learner.model.state_dict(),
            "optimizer": learner.optimizer.state_dict(),
            "scaler": learner.scaler.state_dict(),
            "history": history.to_dict(),
        },
    )


def resumable_state(checkpoint: str | os.PathLike, device: torch.device, config: Mapping) -> dict | None:
    """The checkpoint state to resume from (:func:`load_or_restart`); one of other settings is moved to ``.foreign``.

    Then ``<name>.prev`` is tried, else the run restarts from scratch, and a warning says so.
    """
    faults: list[str] = []
    while True:
        state = load_or_restart(checkpoint, map_location=device)
        diffs = [] if state is None else config_mismatch(state["history"]["config"], config)
        if not diffs:
            break
        source = Path(checkpoint) if Path(checkpoint).exists() else previous_path(checkpoint)
        moved = move_aside(source, ".foreign")
        faults.append(
            f"checkpoint {source.absolute()} was written with other settings ({'; '.join(diffs)}); "
            f"moved to {moved.name}"
        )
    if faults:
        warnings.warn(
            f"{'; '.join(faults)}; "
            + ("resuming from the previous checkpoint" if state is not None else "the run restarts from scratch"),
            CheckpointRecoveryWarning,
            stacklevel=3,
        )
    return state


def progress_bar(enabled: bool, **kwargs: Any) -> Any:
    """A tqdm bar over epochs, updated by hand (silent unless ``enabled``)."""
    from tqdm.auto import tqdm

    return tqdm(desc="epochs", unit="epoch", disable=not enabled, **kwargs)


def restore_learner(state: Mapping, learner: Any, config: Mapping) -> History:
    """Restore ``learner`` from a checkpoint state of :func:`resumable_state`; return its history."""
    learner.model.load_state_dict(state["model"])
    if getattr(learner.model, "frozen", False):  # a frozen GSA model drops its pixel CNN's work again
        learner.model.freeze()
    learner.optimizer.load_state_dict(state["optimizer"])
    learner.scaler.load_state_dict(state["scaler"])
    history = History.from_dict(state["history"])
    history.config = dict(config)
    return history
