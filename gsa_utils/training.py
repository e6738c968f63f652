"""Two-phase training (paper Algorithm 1), evaluation, seeding and device choice.

Introduced in chapter 5 (``05_two_phase_training``).

:func:`two_phase_fit` trains any classifier. When the model has an ``attention_map()``
(:class:`~gsa_utils.models.GlobalSpatialAttention`, the L1 pixel-weights baseline) the
loss gets the L1 term on the map; when it also has ``freeze()``, the map is frozen after
the cut-off epoch E. A plain backbone trains as a vanilla CNN with the same loop.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from .data.base import DataError, validate_images, validate_labels
from .losses import Reduction, combined_loss

__all__ = [
    "pick_device",
    "seed_everything",
    "flush_denormals",
    "History",
    "two_phase_fit",
    "evaluate",
    "predict",
    "map_image",
    "fit_settings",
    "train_one_epoch",
    "map_statistics",
]


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
    if not hasattr(model, "attention_map"):
        return None
    with torch.no_grad():
        amap = model.attention_map().detach().float().cpu()
    return amap.reshape(amap.shape[-2:]).numpy()


@torch.no_grad()
def map_statistics(model: nn.Module, saturation: float = 0.01) -> dict[str, float]:
    """Mean, min, max of the current map and the share of saturated pixels (< 0.01 or > 0.99).

    A saturated sigmoid passes almost no gradient back, so a map that saturates early
    stops learning; chapter 5 tracks this.
    """
    amap = model.attention_map().detach().float()
    return {"map_mean": amap.mean().item(), "map_min": amap.min().item(), "map_max": amap.max().item(),
            "map_saturated": ((amap < saturation) | (amap > 1 - saturation)).float().mean().item()}


@dataclass
class History:
    """What :func:`two_phase_fit` records.

    Attributes
    ----------
    records
        One dict per epoch: ``epoch``, ``phase`` (1 or 2), ``train_loss``, ``train_ce``,
        ``train_l1``, ``train_acc``, ``{name}_loss`` and ``{name}_acc`` for every evaluation
        set, ``seconds`` (training time of the epoch, evaluation excluded), and for models
        with a map :func:`map_statistics` (``map_mean``, ``map_saturated``, ...).
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
        return {"records": self.records, "config": self.config,
                "maps": {str(k): v.tolist() for k, v in self.maps.items()}}

    @classmethod
    def from_dict(cls, d: Mapping) -> "History":
        return cls(records=list(d["records"]), config=dict(d.get("config", {})),
                   maps={int(k): np.asarray(v, dtype=np.float32) for k, v in d.get("maps", {}).items()})

    def save_json(self, path: str | os.PathLike) -> None:
        """Write atomically as JSON (machine-readable results for later chapters)."""
        _atomic_write(path, lambda f: f.write(json.dumps(self.to_dict()).encode()))

    @classmethod
    def load_json(cls, path: str | os.PathLike) -> "History":
        return cls.from_dict(json.loads(Path(path).read_text()))


def _atomic_write(path: str | os.PathLike, write: Callable) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        write(f)
    os.replace(tmp, path)


def fit_settings(profile) -> dict:
    """The :func:`two_phase_fit` keyword arguments a :class:`~gsa_utils.profiles.Profile` implies."""
    return dict(epochs=profile.epochs, cutoff_epoch=profile.cutoff_epoch, lr=profile.lr,
                batch_size=profile.batch_size, weight_decay=profile.weight_decay, l1_weight=profile.l1_weight,
                pixel_cnn_lr=profile.pixel_cnn_lr, map_warmup_epochs=profile.map_warmup_epochs)


def _check_training_data(x: torch.Tensor, y: torch.Tensor, what: str, num_classes: int | None) -> None:
    validate_images(x, f"{what} images")
    validate_labels(y, num_classes, f"{what} labels", x.shape[0])


def _autocast(device: torch.device, enabled: bool):
    if not enabled or device.type != "cuda":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast("cuda", dtype=dtype)


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 256, device: torch.device | None = None,
            mixed_precision: bool = False) -> torch.Tensor:
    """Logits for ``x`` in eval mode; an attention map is computed once for all batches."""
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    amap = model.attention_map() if hasattr(model, "attention_map") else None
    out = []
    for i in range(0, len(x), batch_size):
        xb = x[i:i + batch_size].to(device, non_blocking=True)
        with _autocast(device, mixed_precision):
            out.append((model(xb, amap) if amap is not None else model(xb)).float())
    model.train(was_training)
    return torch.cat(out)


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256,
             mixed_precision: bool = False) -> dict[str, float]:
    """Mean cross-entropy and accuracy of ``model`` on (x, y)."""
    logits = predict(model, x, batch_size, mixed_precision=mixed_precision)
    y = y.to(logits.device)
    loss = nn.functional.cross_entropy(logits, y).item()
    return {"loss": loss, "acc": (logits.argmax(1) == y).float().mean().item()}


def _config_mismatch(saved: Mapping, current: Mapping) -> list[str]:
    keys = ("epochs", "cutoff_epoch", "lr", "batch_size", "weight_decay", "l1_weight", "l1_reduction", "seed",
            "pixel_cnn_lr", "map_warmup_epochs", "n_train")
    return [f"{k}: checkpoint {saved.get(k)!r} vs now {current.get(k)!r}" for k in keys
            if k != "epochs" and saved.get(k) != current.get(k)]


def two_phase_fit(model: nn.Module, x_train: torch.Tensor, y_train: torch.Tensor, *,
                  eval_sets: Mapping[str, tuple[torch.Tensor, torch.Tensor]] | None = None,
                  epochs: int = 250, cutoff_epoch: int | None = 60, lr: float = 1e-4, batch_size: int = 32,
                  weight_decay: float = 0.0, l1_weight: float = 1e-4, l1_reduction: Reduction = "sum",
                  pixel_cnn_lr: float | None = None, map_warmup_epochs: int = 0, seed: int = 0, device: str | torch.device | None = None,
                  checkpoint: str | os.PathLike | None = None, map_snapshots: Sequence[int] = (),
                  num_classes: int | None = None, mixed_precision: bool | None = None,
                  resident: bool | None = None, progress: bool = True,
                  on_epoch_end: Callable[[int, dict], None] | None = None) -> History:
    """Train with Algorithm 1: map and image CNN together for E epochs, then the image CNN alone.

    Parameters
    ----------
    model
        A :class:`~gsa_utils.models.GlobalSpatialAttention`, any model with
        ``attention_map()`` (L1 term, no freezing), or a plain classifier (vanilla).
    x_train, y_train
        Training images (N x C x H x W float) and labels (int64).
    eval_sets
        Held-out sets evaluated after every epoch, e.g. ``{"test": (x, y)}``; recorded as
        ``{name}_acc`` and ``{name}_loss``.
    epochs, cutoff_epoch
        Total epochs (paper: 250) and E (paper: 60): after epoch E the map is frozen.
        ``None`` never freezes.
    lr, batch_size, weight_decay
        Adam settings (paper: 1e-4, 32, searched in {1e-3, 1e-4, 1e-5}).
    l1_weight, l1_reduction
        lambda and whether the L1 term sums or averages the map (see :func:`~gsa_utils.losses.map_l1`).
    pixel_cnn_lr
        Learning rate of the pixel CNN's parameters; ``None`` uses ``lr`` (the paper).
        A smaller value keeps the map from saturating early (chapter 5 discusses it).
    map_warmup_epochs
        Keep the map fixed at its initial level for this many epochs while the image CNN
        starts learning, then learn both until E (0 = the paper). Chapter 5 shows why.
    seed
        Seeds the shuffling and any randomness of every epoch (``seed`` and the epoch
        number), so a resumed run repeats the uninterrupted one exactly. Seed the model's
        initialisation yourself (:func:`seed_everything`) before building it.
    device
        ``None`` picks cuda, mps or cpu.
    checkpoint
        File to save after every epoch and to resume from when it exists (same settings
        required; the message names any that differ).
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
    """
    num_classes = num_classes or (int(y_train.max()) + 1 if len(y_train) else None)
    _check_training_data(x_train, y_train, "training", num_classes)
    if len(torch.unique(y_train)) < 2:
        raise DataError(f"training labels contain a single class ({int(y_train[0])}); a classifier needs two or more")
    eval_sets = dict(eval_sets or {})
    for name, (xe, ye) in eval_sets.items():
        if name == "train":
            raise ValueError("eval set name 'train' is reserved for the training metrics; use e.g. 'train_eval'")
        _check_training_data(xe, ye, f"eval set {name!r}", num_classes)
        if xe.shape[1:] != x_train.shape[1:]:
            raise DataError(f"eval set {name!r} images are {tuple(xe.shape[1:])}, training images are "
                            f"{tuple(x_train.shape[1:])}")
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch_size must be >= 1, got {epochs} and {batch_size}")

    device = pick_device(str(device) if device else None)
    cuda = device.type == "cuda"
    mixed_precision = cuda if mixed_precision is None else mixed_precision
    has_map = hasattr(model, "attention_map")
    can_freeze = has_map and hasattr(model, "freeze") and cutoff_epoch is not None
    config = dict(epochs=epochs, cutoff_epoch=cutoff_epoch if can_freeze else None, lr=lr, batch_size=batch_size,
                  weight_decay=weight_decay, l1_weight=l1_weight if has_map else 0.0, l1_reduction=l1_reduction,
                  pixel_cnn_lr=pixel_cnn_lr, map_warmup_epochs=map_warmup_epochs, seed=seed, n_train=len(y_train), device=str(device),
                  mixed_precision=bool(mixed_precision), model=type(model).__name__)

    model.to(device)
    if resident is None:
        free = torch.cuda.mem_get_info(device)[0] if cuda else 0
        resident = cuda and (x_train.element_size() * x_train.numel()) < free / 4
    if resident:
        x_train, y_train = x_train.to(device), y_train.to(device)
        eval_sets = {k: (v[0].to(device), v[1].to(device)) for k, v in eval_sets.items()}

    pixel_params = list(model.pixel_cnn.parameters()) if hasattr(model, "pixel_cnn") else []
    pixel_ids = {id(p) for p in pixel_params}
    other = [p for p in model.parameters() if id(p) not in pixel_ids]
    groups = [{"params": other}] + ([{"params": pixel_params, "lr": pixel_cnn_lr or lr}] if pixel_params else [])
    optimizer = torch.optim.Adam(groups, lr=lr, weight_decay=weight_decay)
    use_scaler = cuda and mixed_precision and not torch.cuda.is_bf16_supported()
    scaler = torch.amp.GradScaler("cuda", enabled=use_scaler)

    history = History(config=config)
    start_epoch = 0
    if checkpoint is not None and Path(checkpoint).exists():
        state = torch.load(checkpoint, map_location=device, weights_only=False)
        diffs = _config_mismatch(state["history"]["config"], config)
        if diffs:
            raise ValueError(f"checkpoint {checkpoint} was written with other settings ({'; '.join(diffs)}); "
                             "delete it or use another path")
        model.load_state_dict(state["model"])
        if has_map and hasattr(model, "frozen") and model.frozen:
            model.freeze()
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        history = History.from_dict(state["history"])
        history.config = config
        start_epoch = history.epochs_done
    elif 0 in map_snapshots and has_map:
        history.maps[0] = map_image(model)

    n = len(y_train)
    bar = _progress(range(start_epoch, epochs), progress, initial=start_epoch, total=epochs)
    with flush_denormals():
        for epoch_index in bar:
            epoch = epoch_index + 1
            phase = 2 if (can_freeze and model.frozen) else 1
            if pixel_params and not (can_freeze and model.frozen):
                # the warm-up holds the map still: no gradient, so Adam leaves it untouched
                for p in pixel_params:
                    p.requires_grad_(epoch > map_warmup_epochs)
            record = train_one_epoch(model, optimizer, scaler, x_train, y_train, n, epoch, phase, seed, batch_size,
                                      has_map, l1_weight, l1_reduction, device, mixed_precision)
            for name, (xe, ye) in eval_sets.items():
                for k, v in evaluate(model, xe, ye, mixed_precision=mixed_precision).items():
                    record[f"{name}_{k}"] = v
            if has_map:
                record.update(map_statistics(model))
            if can_freeze and not model.frozen and epoch >= cutoff_epoch:
                model.freeze()
            history.records.append(record)
            if epoch in map_snapshots and has_map:
                history.maps[epoch] = map_image(model)
            if checkpoint is not None:
                _save_checkpoint(checkpoint, model, optimizer, scaler, history)
            if hasattr(bar, "set_postfix"):
                bar.set_postfix({k: f"{v:.3f}" for k, v in record.items() if k.endswith("acc") or k == "train_loss"},
                                refresh=False)
            if on_epoch_end is not None:
                on_epoch_end(epoch, record)
    if has_map and map_snapshots and epochs in map_snapshots and epochs not in history.maps:
        history.maps[epochs] = map_image(model)
    return history


def train_one_epoch(model, optimizer, scaler, x, y, n, epoch, phase, seed, batch_size, has_map, l1_weight,
                    l1_reduction, device, mixed_precision) -> dict:
    """One epoch of the training loop :func:`two_phase_fit` runs (also used by ``benchmarks/``).

    Returns the epoch's record (losses, accuracy, ``seconds`` of training time).
    """
    torch.manual_seed(seed * 100_003 + epoch)  # dropout etc.: depends only on (seed, epoch)
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    order = torch.randperm(n, generator=g)
    if n % batch_size == 1 and n > 1:  # a batch of one breaks BatchNorm in training mode
        order = order[:-1]
    model.train()
    totals = {"loss": 0.0, "ce": 0.0, "l1": 0.0, "correct": 0, "seen": 0}
    t0 = time.perf_counter()
    for i in range(0, len(order), batch_size):
        idx = order[i:i + batch_size]
        xb = x[idx.to(x.device)].to(device, non_blocking=True)
        yb = y[idx.to(y.device)].to(device, non_blocking=True)
        with _autocast(device, mixed_precision):
            amap = model.attention_map() if has_map else None
            logits = model(xb, amap) if has_map else model(xb)
            parts = combined_loss(logits, yb, amap, l1_weight if has_map else 0.0, l1_reduction)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(parts.total).backward()
        scaler.step(optimizer)
        scaler.update()
        b = len(idx)
        totals["loss"] += parts.total.item() * b
        totals["ce"] += parts.ce.item() * b
        totals["l1"] += parts.l1.item() * b
        totals["correct"] += int((logits.argmax(1) == yb).sum())
        totals["seen"] += b
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seen = max(totals["seen"], 1)
    return {"epoch": epoch, "phase": phase, "train_loss": totals["loss"] / seen, "train_ce": totals["ce"] / seen,
            "train_l1": totals["l1"] / seen, "train_acc": totals["correct"] / seen,
            "seconds": time.perf_counter() - t0}


def _save_checkpoint(path, model, optimizer, scaler, history: History) -> None:
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(),
             "history": history.to_dict()}
    _atomic_write(path, lambda f: torch.save(state, f))


def _progress(iterable, enabled: bool, **kwargs):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc="epochs", unit="epoch", **kwargs)
