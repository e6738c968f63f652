"""Two-phase training (paper Algorithm 1), evaluation, seeding and device choice.

Introduced in chapter 5 (``05_two_phase_training``).

:func:`algorithm_1` is the paper's loop; :func:`two_phase_fit` wraps it with data checks,
devices, checkpoints and progress, and trains any classifier. When the model is a
:class:`HasAttentionMap` (:class:`~gsa_utils.models.GlobalSpatialAttention`, the L1
pixel-weights baseline) the loss gets the L1 term on the map; when it is a
:class:`TwoPhaseModel` (GSA), the map is frozen after the cut-off epoch E. A plain backbone
trains as a vanilla CNN with the same loop.
"""

from __future__ import annotations

import contextlib
import os
import random
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from .checkpoints import CheckpointRecoveryWarning, load_or_restart, previous_path, save_checkpoint
from .data.base import DataError, validate_images, validate_labels
from .files import move_aside
from .history import History
from .losses import combined_loss
from .metrics import SATURATION, map_contrast, saturated_fraction
from .settings import FitSettings
from .stability import chance_loss, record_collapse

__all__ = [
    "pick_device",
    "seed_everything",
    "flush_denormals",
    "History",
    "two_phase_fit",
    "evaluate",
    "predict",
    "map_image",
    "HasAttentionMap",
    "TwoPhaseModel",
    "Learner",
    "algorithm_1",
    "train_one_epoch",
    "map_statistics",
    "check_model_fits",
]


@runtime_checkable
class HasAttentionMap(Protocol):
    """A classifier that weights its input by a learned map: GSA, the L1 pixel-weights baseline.

    ``model(x, amap)`` classifies ``x`` with a map computed once by ``attention_map()``.
    :func:`two_phase_fit` adds the L1 term on the map to the loss of such a model.
    """

    def attention_map(self) -> torch.Tensor: ...

    def __call__(self, x: torch.Tensor, attention_map: torch.Tensor | None = None) -> torch.Tensor: ...


@runtime_checkable
class TwoPhaseModel(HasAttentionMap, Protocol):
    """A model whose map is learned by a pixel CNN and frozen after epoch E (Algorithm 1): GSA."""

    pixel_cnn: nn.Module

    @property
    def frozen(self) -> bool: ...

    def freeze(self) -> None: ...


def pick_device(prefer: str | None = None) -> torch.device:
    """``cuda`` if available, else Apple ``mps``, else ``cpu`` (or ``prefer`` if given)."""
    if prefer:
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@contextlib.contextmanager
def flush_denormals() -> Iterator[None]:
    """Flush denormal floats to zero on CPU while training, then restore the setting.

    A saturated sigmoid map fills tensors with denormals (values near 1e-40), which made
    CPU epochs 5-10x slower in our measurements.
    """
    changed = torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if changed:
            torch.set_flush_denormal(False)


def map_image(model: nn.Module) -> np.ndarray | None:
    """The model's current attention map as an H x W NumPy array (``None`` for a vanilla CNN)."""
    if not isinstance(model, HasAttentionMap):
        return None
    with torch.no_grad():
        amap = model.attention_map().detach().float().cpu()
    return amap.reshape(amap.shape[-2:]).numpy()


@torch.no_grad()
def map_statistics(model: nn.Module, saturation: float = SATURATION) -> dict[str, float]:
    """Mean, min, max, contrast and saturated share of the current map.

    A saturated sigmoid passes almost no gradient back, so a map that saturates early
    stops learning; a map with low contrast (:func:`~gsa_utils.metrics.map_contrast`)
    weights every pixel alike and does nothing. Chapter 5 tracks both.
    """
    amap = model.attention_map().detach().float()
    return {
        "map_mean": amap.mean().item(),
        "map_min": amap.min().item(),
        "map_max": amap.max().item(),
        "map_contrast": map_contrast(amap),
        "map_saturated": saturated_fraction(amap, saturation),
    }


def _check_training_data(x: torch.Tensor, y: torch.Tensor, what: str, num_classes: int | None) -> None:
    validate_images(x, f"{what} images")
    validate_labels(y, num_classes, f"{what} labels", x.shape[0])


def _autocast(device: torch.device, enabled: bool):
    if not enabled or device.type != "cuda":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if native_bf16() else torch.float16
    return torch.autocast("cuda", dtype=dtype)


def native_bf16() -> bool:
    """Whether the CUDA GPU computes bf16 in hardware (a T4 only emulates it, slowly: fp16 there)."""
    try:
        return torch.cuda.is_bf16_supported(including_emulation=False)
    except TypeError:  # torch < 2.3 has no including_emulation and does not count emulation
        return torch.cuda.is_bf16_supported()


@torch.no_grad()
def predict(
    model: nn.Module,
    x: torch.Tensor,
    batch_size: int = 256,
    device: torch.device | None = None,
    mixed_precision: bool = False,
) -> torch.Tensor:
    """Logits for ``x`` in eval mode; an attention map is computed once for all batches."""
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    amap = model.attention_map() if isinstance(model, HasAttentionMap) else None
    out = []
    for i in range(0, len(x), batch_size):
        xb = x[i : i + batch_size].to(device, non_blocking=True)
        with _autocast(device, mixed_precision):
            out.append((model(xb, amap) if amap is not None else model(xb)).float())
    model.train(was_training)
    return torch.cat(out)


def evaluate(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256, mixed_precision: bool = False
) -> dict[str, float]:
    """Mean cross-entropy, accuracy and number of distinct predicted classes of ``model`` on (x, y)."""
    logits = predict(model, x, batch_size, mixed_precision=mixed_precision)
    y = y.to(logits.device)
    loss = nn.functional.cross_entropy(logits, y).item()
    pred = logits.argmax(1)
    return {"loss": loss, "acc": (pred == y).float().mean().item(), "pred_classes": int(torch.unique(pred).numel())}


@dataclass
class Learner:
    """What one optimisation step needs besides the data: the model, its optimiser, its device."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    device: torch.device
    mixed_precision: bool = False


def algorithm_1(
    learner: Learner,
    x: torch.Tensor,
    y: torch.Tensor,
    settings: FitSettings,
    *,
    seed: int = 0,
    eval_sets: Mapping[str, tuple[torch.Tensor, torch.Tensor]] | None = None,
    first_epoch: int = 1,
    last_record: dict | None = None,
    end_of_epoch: Callable[[int, dict], None] | None = None,
) -> None:
    """Algorithm 1 of the paper: learn the map and the image CNN together until E, then the CNN alone."""
    model = learner.model
    two_phase = isinstance(model, TwoPhaseModel) and settings.cutoff_epoch is not None
    chance = chance_loss(y.cpu())
    for epoch in range(first_epoch, settings.epochs + 1):
        phase = 2 if two_phase and model.frozen else 1
        if isinstance(model, TwoPhaseModel) and phase == 1:
            # a warm-up holds the map still (no gradient): the image CNN starts learning first
            model.pixel_cnn.requires_grad_(epoch > settings.map_warmup_epochs)
        record = {
            "epoch": epoch,
            "phase": phase,
            **train_one_epoch(learner, x, y, epoch=epoch, seed=seed, settings=settings),
        }
        for name, (x_eval, y_eval) in (eval_sets or {}).items():
            scores = evaluate(model, x_eval, y_eval, mixed_precision=learner.mixed_precision)
            record.update({f"{name}_{key}": value for key, value in scores.items()})
        if isinstance(model, HasAttentionMap):
            record.update(map_statistics(model))
        amap = model.attention_map().detach() if isinstance(model, HasAttentionMap) else None
        freeze_now = two_phase and not model.frozen and epoch >= settings.cutoff_epoch
        phase_1_ends = freeze_now or (phase == 1 and epoch == settings.epochs)
        # warns when the run collapses, or when phase 1 ends with a flat map; saturation is judged on
        # sigmoid maps only (an unbounded map at 1 has not saturated)
        record_collapse(
            record,
            amap,
            previous=last_record,
            chance=chance,
            phase_1_ends=phase_1_ends,
            saturates=getattr(model, "map_saturates", True),
        )
        last_record = record
        if freeze_now:
            model.freeze()  # after epoch E the map is fixed; phase 2 trains the image CNN alone
        if end_of_epoch is not None:
            end_of_epoch(epoch, record)


def train_one_epoch(
    learner: Learner, x: torch.Tensor, y: torch.Tensor, *, epoch: int, seed: int, settings: FitSettings
) -> dict[str, float]:
    """One pass over (x, y) in shuffled mini-batches, minimising :func:`~gsa_utils.losses.combined_loss`.

    The shuffling and any randomness (dropout) depend only on ``(seed, epoch)``, so a resumed
    run repeats the uninterrupted one. Also used by ``benchmarks/``.

    Returns
    -------
    dict
        ``train_loss``, ``train_ce``, ``train_l1``, ``train_acc`` (means over the epoch),
        ``train_pred_classes`` (distinct classes predicted) and ``seconds`` (training time).
    """
    model, device, batch_size = learner.model, learner.device, settings.batch_size
    has_map = isinstance(model, HasAttentionMap)
    n = len(y)
    torch.manual_seed(seed * 100_003 + epoch)  # dropout etc.: depends only on (seed, epoch)
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    order = torch.randperm(n, generator=g)
    if n % batch_size == 1 and n > 1:  # a batch of one breaks BatchNorm in training mode
        order = order[:-1]
    model.train()
    totals = {"loss": 0.0, "ce": 0.0, "l1": 0.0, "correct": 0, "seen": 0}
    predicted = torch.zeros(0, dtype=torch.long)
    t0 = time.perf_counter()
    for i in range(0, len(order), batch_size):
        idx = order[i : i + batch_size]
        xb = x[idx.to(x.device)].to(device, non_blocking=True)
        yb = y[idx.to(y.device)].to(device, non_blocking=True)
        with _autocast(device, learner.mixed_precision):
            amap = model.attention_map() if has_map else None
            logits = model(xb, amap) if has_map else model(xb)
            parts = combined_loss(logits, yb, amap, settings.l1_weight if has_map else 0.0, settings.l1_reduction)
        learner.optimizer.zero_grad(set_to_none=True)
        learner.scaler.scale(parts.total).backward()
        learner.scaler.step(learner.optimizer)
        learner.scaler.update()
        b = len(idx)
        totals["loss"] += parts.total.item() * b
        totals["ce"] += parts.ce.item() * b
        totals["l1"] += parts.l1.item() * b
        totals["correct"] += int((logits.argmax(1) == yb).sum())
        predicted = torch.unique(torch.cat([predicted, logits.argmax(1).detach().cpu()]))
        totals["seen"] += b
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seen = max(totals["seen"], 1)
    return {
        "train_loss": totals["loss"] / seen,
        "train_ce": totals["ce"] / seen,
        "train_l1": totals["l1"] / seen,
        "train_acc": totals["correct"] / seen,
        "train_pred_classes": int(predicted.numel()),
        "seconds": time.perf_counter() - t0,
    }


#: Besides the :class:`FitSettings`, what a checkpoint must share with the run that resumes it.
_RESUME_KEYS = ("seed", "n_train")


def _config_mismatch(saved: Mapping, current: Mapping) -> list[str]:
    """The settings (all but ``epochs``) in which a checkpoint differs from the run resuming it."""
    defaults = FitSettings().to_dict()
    keys = [k for k in FitSettings.names() if k != "epochs"] + list(_RESUME_KEYS)
    return [
        f"{k}: checkpoint {saved.get(k, defaults.get(k))!r} vs now {current.get(k)!r}"
        for k in keys
        if saved.get(k, defaults.get(k)) != current.get(k)
    ]


def two_phase_fit(
    model: nn.Module,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    settings: FitSettings | None = None,
    *,
    eval_sets: Mapping[str, tuple[torch.Tensor, torch.Tensor]] | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
    checkpoint: str | os.PathLike | None = None,
    map_snapshots: Sequence[int] = (),
    num_classes: int | None = None,
    mixed_precision: bool | None = None,
    resident: bool | None = None,
    progress: bool = True,
    on_epoch_end: Callable[[int, dict], None] | None = None,
    **overrides: Any,
) -> History:
    """Train with Algorithm 1 (:func:`algorithm_1`), with checks, devices, checkpoints and progress.

    Parameters
    ----------
    model
        A :class:`~gsa_utils.models.GlobalSpatialAttention` (:class:`TwoPhaseModel`), any
        :class:`HasAttentionMap` model (L1 term, no freezing), or a plain classifier (vanilla).
    x_train, y_train
        Training images (N x C x H x W float) and labels (int64).
    settings
        How to train (:class:`~gsa_utils.settings.FitSettings`; ``None``: the paper's).
    **overrides
        Single fields of ``settings`` to change, e.g. ``epochs=5`` (unknown names raise).
    eval_sets
        Held-out sets evaluated after every epoch, e.g. ``{"test": (x, y)}``; recorded as
        ``{name}_acc`` and ``{name}_loss``.
    seed
        Seeds the shuffling and any randomness of every epoch (``seed`` and the epoch
        number), so a resumed run repeats the uninterrupted one exactly. Seed the model's
        initialisation yourself (:func:`seed_everything`) before building it.
    device
        ``None`` picks cuda, mps or cpu.
    checkpoint
        File to save after every epoch and to resume from when it exists. One written with
        other settings is moved aside to ``<name>.foreign`` (``<name>.prev`` is tried, else
        the run starts from scratch), with a warning naming the settings that differ.
    map_snapshots
        Epochs after which to store the map in ``History.maps`` (0 = before training).
    num_classes
        For label validation; defaults to ``max(label) + 1`` of the training labels.
    mixed_precision, resident
        ``None`` = automatic: on CUDA, autocast (bf16, or fp16 with loss scaling) and keep
        the data on the GPU when it takes less than a quarter of its memory.
    progress
        Show a progress bar over epochs.
    on_epoch_end
        Called as ``on_epoch_end(epoch, record)`` after each epoch's checkpoint is written.

    Returns
    -------
    History
        Its ``config`` holds the effective settings (``cutoff_epoch`` is ``None`` for a model
        that cannot freeze, ``l1_weight`` 0 for one without a map) and the run's facts.
    """
    settings = (settings or FitSettings()).replace(**overrides)
    num_classes = num_classes or (int(y_train.max()) + 1 if len(y_train) else None)
    eval_sets = _checked_data(x_train, y_train, eval_sets, num_classes)
    device = pick_device(str(device) if device else None)
    cuda = device.type == "cuda"
    mixed_precision = cuda if mixed_precision is None else mixed_precision
    has_map = isinstance(model, HasAttentionMap)
    settings = settings.replace(
        cutoff_epoch=settings.cutoff_epoch if isinstance(model, TwoPhaseModel) else None,
        l1_weight=settings.l1_weight if has_map else 0.0,
    )
    config = dict(
        settings.to_dict(),
        seed=seed,
        n_train=len(y_train),
        device=str(device),
        mixed_precision=bool(mixed_precision),
        model=type(model).__name__,
        recipe=getattr(getattr(model, "recipe", None), "name", None),
    )

    model.to(device)
    check_model_fits(model, x_train, num_classes, device)
    if resident is None:
        free = torch.cuda.mem_get_info(device)[0] if cuda else 0
        resident = cuda and (x_train.element_size() * x_train.numel()) < free / 4
    if resident:
        x_train, y_train = x_train.to(device), y_train.to(device)
        eval_sets = {k: (v[0].to(device), v[1].to(device)) for k, v in eval_sets.items()}
    learner = Learner(
        model,
        _optimizer(model, settings),
        device=device,
        mixed_precision=bool(mixed_precision),
        scaler=torch.amp.GradScaler("cuda", enabled=cuda and mixed_precision and not native_bf16()),
    )

    history = History(config=config)
    state = _resumable_state(checkpoint, device, config) if checkpoint is not None else None
    if state is not None:
        history = _restore(state, checkpoint, learner, config)
    elif 0 in map_snapshots and has_map:
        history.maps[0] = map_image(model)
    bar = _progress(progress, initial=history.epochs_done, total=settings.epochs)

    def end_of_epoch(epoch: int, record: dict) -> None:
        history.records.append(record)
        if epoch in map_snapshots and has_map:
            history.maps[epoch] = map_image(model)
        if checkpoint is not None:
            _save_checkpoint(checkpoint, learner, history)
        bar.update(1)
        bar.set_postfix(
            {k: f"{v:.3f}" for k, v in record.items() if k.endswith("acc") or k == "train_loss"}, refresh=False
        )
        if on_epoch_end is not None:
            on_epoch_end(epoch, record)

    with flush_denormals():
        algorithm_1(
            learner,
            x_train,
            y_train,
            settings,
            seed=seed,
            eval_sets=eval_sets,
            first_epoch=history.epochs_done + 1,
            last_record=history.records[-1] if history.records else None,
            end_of_epoch=end_of_epoch,
        )
    bar.close()
    if has_map and map_snapshots and settings.epochs in map_snapshots and settings.epochs not in history.maps:
        history.maps[settings.epochs] = map_image(model)
    return history


def _input_channels(model: nn.Module) -> int | None:
    """The channels the model's image network takes (its first convolution's), or ``None`` if it has none."""
    from .models import GreyToColour

    for m in getattr(model, "backbone", model).modules():
        if isinstance(m, GreyToColour):
            return 1
        if isinstance(m, nn.Conv2d):
            return int(m.in_channels)
    return None


def check_model_fits(
    model: nn.Module, x_train: torch.Tensor, num_classes: int | None, device: torch.device | str | None = None
) -> None:
    """Before the first step: does the model take these images, with one output per class?

    Checks the images' channels against the model's first convolution, then runs two
    images through the model (evaluation mode, no gradients, no random numbers drawn)
    and compares its outputs with ``num_classes``. Label ranges are checked with the data.

    Raises
    ------
    DataError
        One line naming both sides, e.g. "the images have 1 channel(s) (1 x 28 x 28) but
        the model's first layer takes 3".
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


def _checked_data(
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


def _optimizer(model: nn.Module, settings: FitSettings) -> torch.optim.Optimizer:
    """Adam over the model; the pixel CNN of a GSA model in its own group (``pixel_cnn_lr``)."""
    pixel_params = list(model.pixel_cnn.parameters()) if isinstance(model, TwoPhaseModel) else []
    pixel_ids = {id(p) for p in pixel_params}
    other = [p for p in model.parameters() if id(p) not in pixel_ids]
    groups = [{"params": other}]
    if pixel_params:
        groups.append({"params": pixel_params, "lr": settings.pixel_cnn_lr or settings.lr})
    return torch.optim.Adam(groups, lr=settings.lr, weight_decay=settings.weight_decay)


def _save_checkpoint(path: str | os.PathLike, learner: Learner, history: History) -> None:
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


def _resumable_state(checkpoint: str | os.PathLike, device: torch.device, config: Mapping) -> dict | None:
    """The checkpoint state to resume from (:func:`load_or_restart`), skipping good checkpoints of other settings.

    Such a checkpoint (another run's file copied here, say) would block the run on every retry:
    it is moved aside to ``<name>.foreign`` and ``<name>.prev`` is tried, else the run restarts
    from scratch; a :class:`~gsa_utils.checkpoints.CheckpointRecoveryWarning` says so.
    """
    faults: list[str] = []
    while True:
        state = load_or_restart(checkpoint, map_location=device)
        diffs = [] if state is None else _config_mismatch(state["history"]["config"], config)
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


def _restore(state: Mapping, path: str | os.PathLike, learner: Learner, config: Mapping) -> History:
    """Restore ``learner`` from a verified checkpoint state written with the same settings; return its history."""
    diffs = _config_mismatch(state["history"]["config"], config)
    if diffs:
        raise ValueError(
            f"checkpoint {path} was written with other settings ({'; '.join(diffs)}); delete it or use another path"
        )
    learner.model.load_state_dict(state["model"])
    if isinstance(learner.model, TwoPhaseModel) and learner.model.frozen:
        learner.model.freeze()
    learner.optimizer.load_state_dict(state["optimizer"])
    learner.scaler.load_state_dict(state["scaler"])
    history = History.from_dict(state["history"])
    history.config = dict(config)
    return history


class _NoProgress:
    """Stands in for a progress bar when progress is off."""

    def update(self, n: int = 1) -> None: ...

    def set_postfix(self, *args: Any, **kwargs: Any) -> None: ...

    def close(self) -> None: ...


def _progress(enabled: bool, **kwargs: Any) -> Any:
    """A tqdm bar over epochs, updated by hand, or a silent stand-in."""
    if not enabled:
        return _NoProgress()
    from tqdm.auto import tqdm

    return tqdm(desc="epochs", unit="epoch", **kwargs)
