"""Figures used across the chapters: images, maps, curves; each draws into new or given axes and returns them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch


def pyplot():
    """``matplotlib.pyplot``, imported on first use (importing the package leaves matplotlib alone)."""
    import matplotlib.pyplot as plt

    return plt


def as_numpy(a) -> np.ndarray:
    """A tensor or array-like as a float NumPy array (on the CPU, detached)."""
    if isinstance(a, torch.Tensor):
        return a.detach().cpu().float().numpy()
    return np.asarray(a, dtype=float)


def to_display(image) -> np.ndarray:
    """A C x H x W (or H x W) tensor/array as an H x W x 3 (or H x W) array in [0, 1] for imshow."""
    a = image.detach().cpu().float().numpy() if isinstance(image, torch.Tensor) else np.asarray(image, dtype=float)
    a = np.squeeze(a)
    if a.ndim == 3:
        a = np.moveaxis(a, 0, -1)
    if a.min() < 0 or a.max() > 1:
        a = (a - a.min()) / max(a.max() - a.min(), 1e-12)
    return a


def show_images(
    images,
    labels=None,
    class_names: Sequence[str] | None = None,
    mask=None,
    ncols: int = 8,
    size: float = 1.6,
    title: str | None = None,
):
    """A grid of images with their class names and, optionally, the mask's outline in cyan."""
    plt = pyplot()
    n = len(images)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(
        nrows, min(n, ncols), figsize=(size * min(n, ncols), size * nrows + 0.3 * bool(title)), squeeze=False
    )
    for ax in axes.ravel():
        ax.axis("off")
    for i, ax in enumerate(axes.ravel()[:n]):
        img = to_display(images[i])
        ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1)
        if mask is not None:
            ax.contour(np.asarray(mask, dtype=float), levels=[0.5], colors="cyan", linewidths=0.8)
        if labels is not None:
            y = int(labels[i])
            ax.set_title(class_names[y] if class_names else str(y), fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def show_maps(
    maps: Mapping[str, np.ndarray],
    mask=None,
    size: float = 2.4,
    cmap: str = "magma",
    normalize: bool = False,
    title: str | None = None,
):
    """A row of attention maps (dict title -> H x W) on one colour scale [0, 1], with the mask outline."""
    plt = pyplot()
    # constrained layout keeps the title, the panels' titles and the colour bar apart
    fig, axes = plt.subplots(
        1, len(maps), figsize=(size * len(maps) + 0.6, size + 0.4 * bool(title)), squeeze=False, layout="constrained"
    )
    im = None
    for ax, (name, m) in zip(axes[0], maps.items()):
        m = np.squeeze(np.asarray(m, dtype=float))
        if normalize:
            m = (m - m.min()) / max(m.max() - m.min(), 1e-12)
        im = ax.imshow(m, cmap=cmap, vmin=0, vmax=1)
        if mask is not None:
            ax.contour(np.asarray(mask, dtype=float), levels=[0.5], colors="cyan", linewidths=0.8)
        ax.set_title(name, fontsize=9)
        ax.axis("off")
    fig.colorbar(
        im,
        ax=axes[0].tolist(),
        shrink=0.8,
        label="STRETCHED: each map to its own min-max" if normalize else "map value",
    )
    if title:
        fig.suptitle(title)
    return fig


def plot_curves(
    histories: Mapping[str, object],
    keys: Sequence[str] = ("train_acc", "test_acc"),
    cutoff_epoch: int | None = None,
    size: tuple[float, float] = (5.0, 3.2),
):
    """One panel per metric, one line per run (dict label -> :class:`~gsa_utils.training.History`)."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(keys), figsize=(size[0] * len(keys), size[1]), squeeze=False)
    for ax, key in zip(axes[0], keys):
        for label, h in histories.items():
            ax.plot(h["epoch"], h[key], label=label)
        if cutoff_epoch:
            ax.axvline(cutoff_epoch, color="gray", ls="--", lw=1)
            ax.text(cutoff_epoch, ax.get_ylim()[1], " E", va="top", color="gray")
        ax.set_xlabel("epoch")
        ax.set_ylabel(key.replace("_", " "))
        ax.grid(alpha=0.3)
    axes[0, -1].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_seed_comparison(
    results: Mapping[str, Sequence[float]],
    ylabel: str = "test accuracy",
    chance: float | None = None,
    size: tuple[float, float] = (5.0, 3.2),
):
    """One column of dots per method (one dot per seed) with the mean and a one-std bar."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=size)
    for i, (_name, vals) in enumerate(results.items()):
        v = np.asarray(vals, dtype=float)
        ax.scatter(np.full(len(v), i) + np.linspace(-0.08, 0.08, len(v)), v, alpha=0.7, zorder=3)
        ax.errorbar(i + 0.2, v.mean(), yerr=v.std(), fmt="o", color="black", capsize=4, zorder=4)
    if chance is not None:
        ax.axhline(chance, color="gray", ls=":", lw=1, label="chance")
        ax.legend(fontsize=8)
    ax.set_xticks(range(len(results)), list(results), rotation=15)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return fig


def plot_value_histograms(
    values: Mapping[str, np.ndarray],
    marks: Mapping[str, float] | None = None,
    xlabel: str = "map value at initialisation",
    size: tuple[float, float] = (6.0, 3.0),
):
    """Overlaid histograms on [0, 1] (log count axis), one per label, with dotted marks at given values."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=size)
    for label, v in values.items():
        v = as_numpy(v)
        ax.hist(v.ravel(), bins=np.linspace(0, 1, 101), alpha=0.7, label=f"{label}: mean {v.mean():.2f}")
    for text, x in (marks or {}).items():
        ax.axvline(x, color="gray", ls=":", lw=1)
        ax.text(x, ax.get_ylim()[1] * 0.9, f" {text}", fontsize=8, color="gray")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("pixels (all seeds)")
    ax.legend(fontsize=8)
    return fig


def draw_pixel_cnn(n_images: int = 3, channels: int = 3, hidden: int = 32, kernel: int = 3):
    """A drawn diagram of the pixel CNN (paper Fig. 3): P -> conv k x k -> ReLU -> conv 1x1 -> sigmoid -> map."""
    plt = pyplot()
    from matplotlib.patches import FancyArrowPatch, Rectangle

    fig, ax = plt.subplots(figsize=(10, 3.2))
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 3.2)
    ax.axis("off")

    def stack(x0, depth, colour, label, sub):
        for i in range(depth):
            ax.add_patch(Rectangle((x0 + 0.06 * i, 0.7 + 0.06 * i), 1.1, 1.1, fc=colour, ec="black", lw=0.6))
        ax.text(x0 + 0.6, 0.35, label, ha="center", fontsize=9, weight="bold")
        ax.text(x0 + 0.6, 0.05, sub, ha="center", fontsize=8)

    nc = n_images * channels
    stack(0.2, 6, "#9ecae1", "pixel representation P", f"1 x NC x H x W (NC = {nc})")
    stack(3.4, 5, "#fdae6b", "hidden features", f"1 x K x H x W (K = {hidden})")
    stack(6.2, 1, "#a1d99b", "pre-activation", "1 x 1 x H x W")
    stack(8.4, 1, "#f7f7f7", "attention map", "sigmoid -> [0, 1]")
    ax.add_patch(Rectangle((0.55, 1.05), 0.3, 0.3, fc="none", ec="red", lw=1.5))
    for x0, x1, text in [
        (1.7, 3.3, f"conv {kernel}x{kernel}, K={hidden}\nstride 1, pad {kernel // 2}\n+ ReLU"),
        (4.8, 6.1, "conv 1x1\nK -> 1"),
        (7.5, 8.3, "sigmoid"),
    ]:
        ax.add_patch(FancyArrowPatch((x0, 1.3), (x1, 1.3), arrowstyle="-|>", mutation_scale=15))
        ax.text((x0 + x1) / 2, 1.55, text, ha="center", va="bottom", fontsize=8)
    ax.text(
        0.2,
        2.9,
        f"each pixel: NC = {nc} intensities, plus its {kernel}x{kernel} neighbourhood (red square)",
        fontsize=8,
        color="red",
    )
    params = hidden * (kernel * kernel * nc + 1) + hidden + 1
    ax.text(
        9.9,
        2.9,
        f"parameters: K(9NC+1)+(K+1) = {params:,}" if kernel == 3 else f"parameters: {params:,}",
        fontsize=8,
        ha="right",
    )
    return fig
