"""Small computations and figures behind the teaching chapters 2-4 (chapter 1: :mod:`.structure`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..backbones import SmallCNN, build_backbone
from ..data.base import DataError, StructuredDataset
from ..devices import pick_device, seed_everything
from ..metrics import map_roc_auc, saturated_fraction
from ..models import GlobalSpatialAttention, PixelCNN, count_parameters
from ..pixel import pixel_representation_bytes
from ..recipes import PAPER_RECIPE, PixelCNNDesign, build_gsa
from ..settings import FitSettings
from ..training import evaluate, map_image, two_phase_fit
from .plotting import as_numpy, pyplot, to_display

#: Training-set sizes of the paper's data sets (80 % of 591 glaucoma and 213 JAFFE images;
#: IDRiD's official split has 413 training images). Introduced in chapter 2 (``02_pixel_representation``).
PAPER_TRAIN_SIZES: dict[str, int] = {"JAFFE": 170, "IDRiD": 413, "glaucoma": 473}


def pixel_vectors(
    pixel_rep: torch.Tensor, pixels: Mapping[str, tuple[int, int]], channels: int
) -> dict[str, np.ndarray]:
    """The feature vector of each chosen pixel, read from the pixel representation, as N x C arrays."""
    if pixel_rep.dim() != 4 or pixel_rep.shape[0] != 1 or pixel_rep.shape[1] % channels:
        raise DataError(
            f"pixel_vectors: expected a 1 x NC x H x W pixel representation with NC divisible by "
            f"C = {channels}, got {tuple(pixel_rep.shape)}"
        )
    return {name: pixel_rep[0, :, r, c].reshape(-1, channels).detach().cpu().numpy() for name, (r, c) in pixels.items()}


def plot_pixel_vectors(
    pixel_rep: torch.Tensor,
    labels: torch.Tensor,
    pixels: Mapping[str, tuple[int, int]],
    channels: int,
    class_names: Sequence[str],
    background=None,
    mask=None,
):
    """One panel per pixel: its NC-dim feature vector as N dots (mean over C), sorted and coloured by class."""

    plt = pyplot()
    vectors = pixel_vectors(pixel_rep, pixels, channels)
    y = labels.numpy()
    order = np.argsort(y, kind="stable")
    k = len(class_names)
    colours = plt.get_cmap("tab10")(np.arange(k) % 10)
    n_panels, ncols = len(vectors) + (background is not None), 4
    nrows = int(np.ceil(n_panels / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.0 * ncols, 2.4 * nrows), squeeze=False)
    flat = list(axes.ravel())
    for ax in flat[n_panels:]:
        ax.axis("off")
    if background is not None:
        ax = flat.pop(0)
        ax.imshow(to_display(background), cmap="gray")
        if mask is not None:
            ax.contour(as_numpy(mask), levels=[0.5], colors="cyan", linewidths=0.8)
        for i, (r, c) in enumerate(pixels.values()):
            ax.plot(c, r, "o", mfc="none", mec="red", mew=1.2, ms=7)
            ax.annotate(
                str(i + 1), (c, r), textcoords="offset points", xytext=(5, 3), color="red", fontsize=8, weight="bold"
            )
        ax.set_title("where the pixels are", fontsize=9)
        ax.axis("off")
    lo = min(v.mean(1).min() for v in vectors.values())
    hi = max(v.mean(1).max() for v in vectors.values())
    for i, (ax, (name, v)) in enumerate(zip(flat, vectors.items())):
        grey = v.mean(1)[order]
        ys = y[order]
        for j in range(k):
            idx = np.flatnonzero(ys == j)
            if len(idx) == 0:
                continue
            ax.scatter(idx, grey[idx], s=4, color=colours[j], label=class_names[j])
            ax.hlines(grey[idx].mean(), idx[0], idx[-1], colors="black", linestyles="--", lw=1.2)
        ax.set_ylim(lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo))
        ax.set_title(f"{i + 1}: {name}", fontsize=9)
        ax.set_xlabel("training image n (sorted by class)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    handles, names = flat[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="upper center", ncol=min(k, 10), fontsize=8, markerscale=3, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    return fig


def plot_pixel_representation_memory(
    max_images: int = 1000,
    image_sizes: Sequence[int] = (32, 224),
):
    """Memory of the pixel representation (float32, RGB) against the number of training images N (log-log axes)."""
    plt = pyplot()
    channels, marks = 3, PAPER_TRAIN_SIZES
    fig, ax = plt.subplots(figsize=(6.0, 3.6))
    ns = np.unique(np.geomspace(1, max_images, 200).astype(int))
    for s in image_sizes:
        b = np.array([pixel_representation_bytes(int(n), channels, s, s) for n in ns]) / 2**20
        (line,) = ax.plot(ns, b, label=f"{s} x {s} px")
        for n in marks.values():
            ax.plot(n, pixel_representation_bytes(n, channels, s, s) / 2**20, "o", color=line.get_color(), ms=5)
    ordered = sorted(marks.items(), key=lambda item: item[1])
    for i, (name, n) in enumerate(ordered):
        ax.axvline(n, color="gray", ls=":", lw=1)
        ax.text(
            n,
            0.03,
            f"{name} (N={n})",
            transform=ax.get_xaxis_transform(),
            rotation=90,
            va="bottom",
            ha="left" if i == len(ordered) - 1 else "right",
            fontsize=7,
            color="dimgray",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training images N")
    ax.set_ylabel(f"size of P (MiB, float32, C = {channels})")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


#: The design of the paper and the alternatives of its section 4.10, as :class:`PixelCNN` settings.
#: Introduced in chapter 3 (``03_pixel_cnn``).
PIXEL_CNN_VARIANTS: dict[str, dict] = {
    "paper (3x3, 1 hidden, 1x1 out)": {},
    "kernel 5x5": {"kernel_size": 5},
    "kernel 7x7": {"kernel_size": 7},
    "2 hidden layers": {"num_hidden_layers": 2},
    "3 hidden layers": {"num_hidden_layers": 3},
    "4 hidden layers": {"num_hidden_layers": 4},
    "last kernel 3x3": {"last_kernel_size": 3},
    "last kernel 5x5": {"last_kernel_size": 5},
    "dense, 2 hidden layers": {"num_hidden_layers": 2, "dense": True},
    "dense, 4 hidden layers": {"num_hidden_layers": 4, "dense": True},
}


def pixel_cnn_variant_table(
    n_images: int, channels: int, hidden_channels: int, variants: Mapping[str, dict] = PIXEL_CNN_VARIANTS
) -> list[dict]:
    """Parameter counts of the pixel-CNN variants for N images of C channels and K hidden channels."""
    rows = []
    base = None
    for name, kwargs in variants.items():
        with torch.device("meta"):
            model = PixelCNN(n_images * channels, hidden_channels, **kwargs)
        params = count_parameters(model)
        base = params if base is None else base
        k, layers, last = (
            kwargs.get("kernel_size", 3),
            kwargs.get("num_hidden_layers", 1),
            kwargs.get("last_kernel_size", 1),
        )
        rows.append(
            {
                "variant": name,
                "settings": kwargs,
                "parameters": params,
                "vs paper": params / base,
                "receptive field": f"{layers * (k - 1) + last}x{layers * (k - 1) + last}",
            }
        )
    return rows


def backbone_parameter_counts(names: Sequence[str], num_classes: int) -> dict[str, int]:
    """Parameter counts of image CNNs (``build_backbone`` names) with a ``num_classes`` head."""
    counts = {}
    for name in names:
        with torch.device("meta"):
            counts[name] = count_parameters(build_backbone(name, num_classes, pretrained=False))
    return counts


@torch.no_grad()
def untrained_maps(
    pixel_rep: torch.Tensor, seeds: Sequence[int], hidden_channels: int, **pixel_cnn_kwargs
) -> np.ndarray:
    """The maps of freshly initialised pixel CNNs, one per seed, as an S x H x W array."""
    state = torch.random.get_rng_state()
    try:
        maps = []
        for seed in seeds:
            torch.manual_seed(seed)
            model = PixelCNN(pixel_rep.shape[1], hidden_channels, **pixel_cnn_kwargs).to(pixel_rep.device)
            maps.append(model(pixel_rep)[0, 0].float().cpu().numpy())
    finally:
        torch.random.set_rng_state(state)
    return np.stack(maps)


def lambda_sweep(
    dataset: StructuredDataset,
    l1_weights: Sequence[float],
    seeds: Sequence[int],
    *,
    settings: FitSettings,
    hidden_channels: int,
    backbone_width: int = 16,
    map_snapshots: Sequence[int] = (),
    device: str | torch.device | None = None,
    **fit_kwargs,
) -> list[dict]:
    """Train one small GSA model per (lambda, seed) and measure its map.

    Returns
    -------
    list of dict
        One per run: ``l1_weight``, ``seed``, ``map``, ``map_mean``, ``roc_auc`` (map vs mask),
        ``saturated``, ``test_acc`` (after training) and ``history``.
    """
    if dataset.mask is None:
        raise DataError(f"lambda_sweep: dataset {dataset.name!r} has no mask to measure the maps against")
    fit_kwargs.setdefault("progress", False)
    threads_before = torch.get_num_threads()
    if pick_device(str(device) if device else None).type == "cpu":
        torch.set_num_threads(1)
    records = []
    try:
        for l1_weight in l1_weights:
            for seed in seeds:
                seed_everything(seed)
                backbone = SmallCNN(dataset.num_classes, in_channels=dataset.x_train.shape[1], width=backbone_width)
                model = build_gsa(backbone, dataset.x_train, PAPER_RECIPE, PixelCNNDesign(hidden_channels))
                history = two_phase_fit(
                    model,
                    dataset.x_train,
                    dataset.y_train,
                    settings.replace(l1_weight=l1_weight),
                    seed=seed,
                    map_snapshots=map_snapshots,
                    num_classes=dataset.num_classes,
                    device=device,
                    **fit_kwargs,
                )
                amap = map_image(model)
                records.append(
                    {
                        "l1_weight": l1_weight,
                        "seed": seed,
                        "map": amap,
                        "map_mean": float(amap.mean()),
                        "roc_auc": map_roc_auc(amap, dataset.mask),
                        "saturated": saturated_fraction(amap),
                        "test_acc": float(evaluate(model, dataset.x_test, dataset.y_test)["acc"]),
                        "history": history,
                    }
                )
    finally:
        torch.set_num_threads(threads_before)
    return records


def ce_map_gradient(model: GlobalSpatialAttention, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """The gradient of the batch's mean cross-entropy with respect to each pixel of the map (H x W)."""
    import copy

    clone = copy.deepcopy(model).train()
    amap = clone.attention_map()
    amap.retain_grad()
    F.cross_entropy(clone(x.to(amap.device), amap), y.to(amap.device)).backward()
    return amap.grad[0, 0].detach().cpu().numpy()


def plot_gradient_histogram(grad: np.ndarray, lambdas: Sequence[float], size: tuple[float, float] = (6.0, 2.8)):
    """Histogram of log10 |dCE/dm| over the map's pixels, with a dashed line at each lambda."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=size)
    ax.hist(np.log10(np.abs(grad).ravel() + 1e-12), bins=50, color="gray")
    for lam in lambdas:
        ax.axvline(np.log10(lam), color="tab:red", ls="--", lw=1)
        ax.text(np.log10(lam), ax.get_ylim()[1] * 0.95, f" λ={lam:g}", fontsize=8, color="tab:red", va="top")
    ax.set_xlabel("log10 |dCE/dm| per pixel (one batch, at initialisation)")
    ax.set_ylabel("pixels")
    return fig


#: The measured columns of :func:`sweep_table`, and how each is printed.
SWEEP_FORMATS = {
    "l1_weight": "{:g}",
    "seed": "{}",
    "map_mean": "{:.3f}",
    "roc_auc": "{:.2f}",
    "saturated": "{:.0%}",
    "test_acc": "{:.2f}",
}


def sweep_table(records: Sequence[Mapping]):
    """The records of :func:`lambda_sweep` as a table, one row per run (a formatted pandas Styler)."""
    import pandas as pd

    table = pd.DataFrame([{key: r[key] for key in SWEEP_FORMATS} for r in records])
    return table.style.format(SWEEP_FORMATS).hide(axis="index")


def plot_lambda_sweep(records: Sequence[Mapping], chance: Mapping[str, float] | None = None):
    """One panel per measured quantity against lambda (log axis; lambda = 0 drawn at the left edge)."""
    plt = pyplot()
    lambdas = sorted({r["l1_weight"] for r in records})
    positive = [v for v in lambdas if v > 0]
    zero_at = (min(positive) / 10) if positive else 1.0
    xpos = {v: (v if v > 0 else zero_at) for v in lambdas}
    labels = {
        "map_mean": "map mean",
        "roc_auc": "ROC-AUC vs mask",
        "saturated": "saturated share",
        "test_acc": "test accuracy",
    }
    keys = ("map_mean", "roc_auc", "saturated", "test_acc")
    fig, axes = plt.subplots(1, len(keys), figsize=(3.0 * len(keys), 2.6), squeeze=False)
    for ax, key in zip(axes[0], keys):
        means = []
        for v in lambdas:
            vals = [r[key] for r in records if r["l1_weight"] == v]
            ax.scatter([xpos[v]] * len(vals), vals, s=14, alpha=0.6, color="tab:blue")
            means.append(np.mean(vals))
        ax.plot([xpos[v] for v in lambdas], means, color="tab:blue", lw=1)
        if chance and key in chance:
            ax.axhline(chance[key], color="gray", ls=":", lw=1)
        ax.set_xscale("log")
        ax.set_xticks(
            [xpos[v] for v in lambdas], ["0" if v == 0 else f"{v:g}" for v in lambdas], fontsize=7, rotation=45
        )
        ax.minorticks_off()
        ax.set_xlabel("lambda")
        ax.set_title(labels.get(key, key), fontsize=9)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
