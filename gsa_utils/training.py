"""Two-phase training (paper Algorithm 1) and evaluation.

Introduced in chapter 5 (``05_two_phase_training``). :func:`algorithm_1` is the paper's loop;
:func:`two_phase_fit` wraps it with data checks, devices, checkpoints and progress, and trains
any classifier: a :class:`HasAttentionMap` model gets the L1 term, a :class:`TwoPhaseModel` (GSA)
is frozen after epoch E, and a plain backbone trains as a vanilla CNN.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from .devices import autocast, flush_denormals, native_bf16, pick_device
from .fit_checks import (
    check_model_fits,
    checked_data,
    progress_bar,
    restore_learner,
    resumable_state,
    save_training_checkpoint,
)
from .history import History
from .losses import LossParts, combined_loss
from .metrics import map_contrast, saturated_fraction
from .settings import FitSettings
from .stability import chance_loss, record_collapse


@runtime_checkable
class HasAttentionMap(Protocol):
    """A classifier that weights its input by a learned map (GSA, the L1 pixel weights); ``model(x, amap)``."""

    def attention_map(self) -> torch.Tensor: ...

    def __call__(self, x: torch.Tensor, attention_map: torch.Tensor | None = None) -> torch.Tensor: ...


@runtime_checkable
class TwoPhaseModel(HasAttentionMap, Protocol):
    """A model whose map is learned by a pixel CNN and frozen after epoch E (Algorithm 1): GSA."""

    pixel_cnn: nn.Module

    @property
    def frozen(self) -> bool: ...

    def freeze(self) -> None: ...


def map_image(model: nn.Module) -> np.ndarray | None:
    """The model's current attention map as an H x W NumPy array (``None`` for a vanilla CNN)."""
    if not isinstance(model, HasAttentionMap):
        return None
    with torch.no_grad():
        amap = model.attention_map().detach().float().cpu()
    return amap.reshape(amap.shape[-2:]).numpy()


@torch.no_grad()
def map_statistics(model: nn.Module) -> dict[str, float]:
    """Mean, min, max, contrast and saturated share of the current map (chapter 5 tracks them)."""
    amap = model.attention_map().detach().float()
    return {
        "map_mean": amap.mean().item(),
        "map_min": amap.min().item(),
        "map_max": amap.max().item(),
        "map_contrast": map_contrast(amap),
        "map_saturated": saturated_fraction(amap),
    }


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
        with autocast(device, mixed_precision):
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


#: Called after every epoch as ``hook(epoch, record)``; it may add to the epoch's record.
EpochHook = Callable[[int, dict], None]


def algorithm_1(
    learner: Learner,
    x: torch.Tensor,
    y: torch.Tensor,
    settings: FitSettings,
    *,
    seed: int = 0,
    first_epoch: int = 1,
    end_of_epoch: Sequence[EpochHook] = (),
) -> None:
    """Algorithm 1 of the paper: learn the map and the image CNN together until E, then the CNN alone.

    Every mini-batch takes one :func:`loss_step` on CE + lambda * L1 of the map. After each
    epoch, the hooks in ``end_of_epoch`` run in order (evaluation, map checks, records).
    """
    model = learner.model
    two_phase = isinstance(model, TwoPhaseModel) and settings.cutoff_epoch is not None
    for epoch in range(first_epoch, settings.epochs + 1):
        phase = 2 if two_phase and model.frozen else 1
        meter = _EpochMeter(learner.device)
        for xb, yb in minibatches(learner, x, y, settings.batch_size, seed=seed, epoch=epoch):
            parts, logits = loss_step(learner, xb, yb, settings)
            meter.add(parts, logits, yb)
        if two_phase and phase == 1 and epoch >= settings.cutoff_epoch:
            model.freeze()  # after epoch E the map is fixed; phase 2 trains the image CNN alone
        record = {"epoch": epoch, "phase": phase, **meter.summary()}
        for hook in end_of_epoch:
            hook(epoch, record)


def loss_step(
    learner: Learner, xb: torch.Tensor, yb: torch.Tensor, settings: FitSettings
) -> tuple[LossParts, torch.Tensor]:
    """One step of Algorithm 1: the loss CE + lambda * L1 of the map, and one optimiser step on it.

    A model without a map (a vanilla CNN) minimises the cross-entropy alone. Returns the
    loss's parts and the batch's logits.
    """
    model = learner.model
    has_map = isinstance(model, HasAttentionMap)
    with autocast(learner.device, learner.mixed_precision):
        amap = model.attention_map() if has_map else None
        logits = model(xb, amap) if has_map else model(xb)
        parts = combined_loss(logits, yb, amap, settings.l1_weight, settings.l1_reduction)  # no map: no L1 term
    learner.optimizer.zero_grad(set_to_none=True)
    learner.scaler.scale(parts.total).backward()
    learner.scaler.step(learner.optimizer)
    learner.scaler.update()
    return parts, logits


def map_is_fixed(model: nn.Module, settings: FitSettings) -> bool:
    """Whether Algorithm 1 is in phase 2: a two-phase model whose map is frozen."""
    return isinstance(model, TwoPhaseModel) and settings.cutoff_epoch is not None and model.frozen


def minibatches(
    learner: Learner, x: torch.Tensor, y: torch.Tensor, batch_size: int, *, seed: int, epoch: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Shuffled mini-batches on the learner's device, in training mode; a last batch of one is dropped.

    The order and any randomness depend only on ``(seed, epoch)``, so a resumed run repeats the uninterrupted one.
    """
    n = len(y)
    torch.manual_seed(seed * 100_003 + epoch)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
    if n % batch_size == 1 and n > 1:
        order = order[:-1]
    learner.model.train()
    for i in range(0, len(order), batch_size):
        idx = order[i : i + batch_size]
        yield (
            x[idx.to(x.device)].to(learner.device, non_blocking=True),
            y[idx.to(y.device)].to(learner.device, non_blocking=True),
        )


class _EpochMeter:
    """Sums one epoch's losses, hits and predicted classes, and its training time."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.totals = {"loss": 0.0, "ce": 0.0, "l1": 0.0, "correct": 0, "seen": 0}
        self.predicted = torch.zeros(0, dtype=torch.long)
        self.t0 = time.perf_counter()

    def add(self, parts: LossParts, logits: torch.Tensor, yb: torch.Tensor) -> None:
        b = len(yb)
        for key, value in zip(("loss", "ce", "l1"), parts):
            self.totals[key] += value.item() * b
        self.totals["correct"] += int((logits.argmax(1) == yb).sum())
        self.predicted = torch.unique(torch.cat([self.predicted, logits.argmax(1).detach().cpu()]))
        self.totals["seen"] += b

    def summary(self) -> dict[str, float]:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        seen = max(self.totals["seen"], 1)
        return {
            **{f"train_{key}": self.totals[key] / seen for key in ("loss", "ce", "l1")},
            "train_acc": self.totals["correct"] / seen,
            "train_pred_classes": int(self.predicted.numel()),
            "seconds": time.perf_counter() - self.t0,
        }


def train_one_epoch(
    learner: Learner, x: torch.Tensor, y: torch.Tensor, *, epoch: int, seed: int, settings: FitSettings
) -> dict[str, float]:
    """One epoch of :func:`algorithm_1`'s inner loop without its hooks, and its ``train_*`` record (``benchmarks/``)."""
    meter = _EpochMeter(learner.device)
    for xb, yb in minibatches(learner, x, y, settings.batch_size, seed=seed, epoch=epoch):
        meter.add(*loss_step(learner, xb, yb, settings), yb)
    return meter.summary()


def map_warmup(model: nn.Module, settings: FitSettings) -> EpochHook:
    """A hook holding the map still until ``map_warmup_epochs`` are done; call it once with the last epoch done."""

    def hold_map(epoch: int, record: dict) -> None:
        if isinstance(model, TwoPhaseModel) and not map_is_fixed(model, settings):
            model.pixel_cnn.requires_grad_(epoch + 1 > settings.map_warmup_epochs)

    return hold_map


def evaluation(
    model: nn.Module, eval_sets: Mapping[str, tuple[torch.Tensor, torch.Tensor]], mixed_precision: bool = False
) -> EpochHook:
    """A hook recording :func:`evaluate` on every held-out set as ``{name}_loss``, ``{name}_acc``, ..."""

    def evaluate_sets(epoch: int, record: dict) -> None:
        for name, (x_eval, y_eval) in eval_sets.items():
            scores = evaluate(model, x_eval, y_eval, mixed_precision=mixed_precision)
            record.update({f"{name}_{key}": value for key, value in scores.items()})

    return evaluate_sets


def map_checks(model: nn.Module, settings: FitSettings, y: torch.Tensor, last_record: dict | None) -> EpochHook:
    """A hook recording :func:`map_statistics` and the collapse and flat-map checks (:mod:`~gsa_utils.stability`).

    ``last_record`` is the record of the epoch before training resumes.
    """
    chance = chance_loss(y.cpu())
    previous = [last_record]

    def check(epoch: int, record: dict) -> None:
        amap = None
        if isinstance(model, HasAttentionMap):
            record.update(map_statistics(model))
            amap = model.attention_map().detach()
        phase_1_ends = record["phase"] == 1 and (map_is_fixed(model, settings) or epoch == settings.epochs)
        saturates = getattr(model, "map_saturates", True)
        record_collapse(record, amap, previous[0], chance, phase_1_ends=phase_1_ends, saturates=saturates)
        previous[0] = record

    return check


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
    settings, overrides
        How to train (``None``: the paper's), and single fields to change, e.g. ``epochs=5``.
    eval_sets
        Held-out sets evaluated after every epoch, e.g. ``{"test": (x, y)}``.
    seed
        Seeds every epoch's shuffling (seed the model's initialisation yourself).
    checkpoint
        File saved after every epoch and resumed from; one of other settings is moved aside.
    map_snapshots
        Epochs after which to store the map in ``History.maps`` (0: before training).
    mixed_precision, resident
        ``None``: on CUDA, autocast and keep the data on the GPU when it fits in a quarter of it.
    on_epoch_end
        Called as ``on_epoch_end(epoch, record)`` after each epoch's checkpoint.

    Returns
    -------
    History
        Its ``config`` holds the effective settings (no E for a model that cannot freeze,
        lambda 0 for one without a map) and the run's facts.
    """
    settings = (settings or FitSettings()).replace(**overrides)
    num_classes = num_classes or (int(y_train.max()) + 1 if len(y_train) else None)
    eval_sets = checked_data(x_train, y_train, eval_sets, num_classes)
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
    state = resumable_state(checkpoint, device, config) if checkpoint is not None else None
    if state is not None:
        history = restore_learner(state, learner, config)
    elif 0 in map_snapshots and has_map:
        history.maps[0] = map_image(model)
    bar = progress_bar(progress, initial=history.epochs_done, total=settings.epochs)

    def keep_record(epoch: int, record: dict) -> None:
        history.records.append(record)
        if epoch in map_snapshots and has_map:
            history.maps[epoch] = map_image(model)
        if checkpoint is not None:
            save_training_checkpoint(checkpoint, learner, history)
        bar.update(1)
        bar.set_postfix(
            {k: f"{v:.3f}" for k, v in record.items() if k.endswith("acc") or k == "train_loss"}, refresh=False
        )

    hold_map = map_warmup(model, settings)
    hold_map(history.epochs_done, {})
    hooks = [
        evaluation(model, eval_sets, bool(mixed_precision)),
        map_checks(model, settings, y_train, history.records[-1] if history.records else None),
        hold_map,
        keep_record,
        *([on_epoch_end] if on_epoch_end is not None else []),
    ]
    with flush_denormals():
        algorithm_1(
            learner, x_train, y_train, settings, seed=seed, first_epoch=history.epochs_done + 1, end_of_epoch=hooks
        )
    bar.close()
    if has_map and map_snapshots and settings.epochs in map_snapshots and settings.epochs not in history.maps:
        history.maps[settings.epochs] = map_image(model)
    return history


def _optimizer(model: nn.Module, settings: FitSettings) -> torch.optim.Optimizer:
    """Adam over the model; the pixel CNN of a GSA model in its own group (``pixel_cnn_lr``)."""
    pixel_params = list(model.pixel_cnn.parameters()) if isinstance(model, TwoPhaseModel) else []
    pixel_ids = {id(p) for p in pixel_params}
    other = [p for p in model.parameters() if id(p) not in pixel_ids]
    groups = [{"params": other}]
    if pixel_params:
        groups.append({"params": pixel_params, "lr": settings.pixel_cnn_lr or settings.lr})
    return torch.optim.Adam(groups, lr=settings.lr, weight_decay=settings.weight_decay)
