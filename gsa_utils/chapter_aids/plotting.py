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


def show_training_images(ds, n: int = 8, title: str | None = None):
    """The first ``n`` training images of a data set with their class names and its mask's outline."""
    return show_images(ds.x_train[:n], ds.y_train[:n], ds.class_names, mask=ds.mask, ncols=n, title=title)


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
):
    """Overlaid histograms on [0, 1] (log count axis), one per label, with dotted marks at given values."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.0, 3.0))
    for label, v in values.items():
        v = as_numpy(v)
        ax.hist(v.ravel(), bins=np.linspace(0, 1, 101), alpha=0.7, label=f"{label}: mean {v.mean():.2f}")
    for text, x in (marks or {}).items():
        ax.axvline(x, color="gray", ls=":", lw=1)
        ax.text(x, ax.get_ylim()[1] * 0.9, f" {text}", fontsize=8, color="gray")
    ax.set_yscale("log")
    ax.set_xlabel("map value at initialisation")
    ax.set_ylabel("pixels (all seeds)")
    ax.legend(fontsize=8)
    return fig
