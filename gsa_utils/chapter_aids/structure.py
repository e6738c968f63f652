"""Chapter 1's helpers: which pixels decide the label of structured images, and misaligning them."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..data.base import DataError, validate_images, validate_labels
from .plotting import as_numpy, pyplot, to_display


def pixel_relevance(images: torch.Tensor, labels: torch.Tensor, bins: int = 8) -> np.ndarray:
    """How much each pixel's intensity, on its own, tells about the class (mutual information, bits)."""
    from scipy.stats import rankdata

    validate_images(images, "pixel_relevance images")
    n = images.shape[0]
    validate_labels(labels, None, "pixel_relevance labels", n)
    if not 2 <= bins <= n:
        raise DataError(f"pixel_relevance: bins must be between 2 and the number of images ({n}), got {bins}")
    grey = images.float().mean(1).reshape(n, -1).numpy()
    ranks = rankdata(grey, axis=0, method="average")  # ties (a constant pixel) share one rank, so one bin
    binned = np.minimum(((ranks - 0.5) * bins / n).astype(np.int64), bins - 1)
    y = labels.numpy()
    classes = np.unique(y)
    p_class = np.array([(y == c).mean() for c in classes])
    mi = np.zeros(grey.shape[1])
    for b in range(bins):
        in_bin = binned == b
        p_bin = in_bin.mean(0)
        for c, pc in zip(classes, p_class):
            p_joint = in_bin[y == c].sum(0) / n
            with np.errstate(divide="ignore", invalid="ignore"):
                mi += np.where(p_joint > 0, p_joint * np.log2(p_joint / (p_bin * pc)), 0.0)
    return np.clip(mi, 0.0, None).reshape(images.shape[2:])


def most_relevant_pixels(relevance, mask) -> dict[str, tuple[int, int]]:
    """The (row, column) of the highest-scoring pixel inside and outside the mask."""
    r, m = as_numpy(relevance), as_numpy(mask).astype(bool)
    if r.shape != m.shape:
        raise ValueError(f"relevance shape {r.shape} differs from mask shape {m.shape}")
    if m.all() or not m.any():
        raise ValueError("the mask must contain both relevant and irrelevant pixels")
    out = {}
    for name, region in (("inside", m), ("outside", ~m)):
        idx = int(np.argmax(np.where(region, r, -np.inf)))
        out[name] = (idx // r.shape[1], idx % r.shape[1])
    return out


def plot_pixel_distributions(
    images: torch.Tensor,
    labels: torch.Tensor,
    pixels: Mapping[str, tuple[int, int]],
    class_names: Sequence[str],
    mask=None,
    title: str | None = None,
):
    """The mean image with the chosen pixels marked, then one violin plot per pixel, split by class."""

    plt = pyplot()
    grey = images.float().mean(1).numpy()
    y = labels.numpy()
    k = len(class_names)
    colours = plt.get_cmap("tab10")(np.arange(k) % 10)
    fig, axes = plt.subplots(
        1,
        1 + len(pixels),
        figsize=(2.6 + 2.8 * len(pixels), 2.8),
        gridspec_kw={"width_ratios": [1] + [1.2] * len(pixels)},
    )
    axes[0].imshow(to_display(images.float().mean(0)), cmap="gray")
    if mask is not None:
        axes[0].contour(as_numpy(mask), levels=[0.5], colors="cyan", linewidths=0.8)
    markers = [("o", "\u25cb"), ("s", "\u25a1"), ("^", "\u25b3"), ("D", "\u25c7"), ("v", "\u25bd")]
    for i, (name, (r, c)) in enumerate(pixels.items()):
        marker, symbol = markers[i % len(markers)]
        axes[0].plot(c, r, marker, mfc="none", mec="red", mew=1.5, ms=8)
        ax = axes[1 + i]
        data = [grey[y == j, r, c] for j in range(k)]
        keep = [j for j in range(k) if len(data[j])]
        parts = ax.violinplot([data[j] for j in keep], positions=keep, showmedians=True, showextrema=False, widths=0.8)
        parts["cmedians"].set_color("black")
        for body, j in zip(parts["bodies"], keep):
            body.set_facecolor(colours[j])
            body.set_alpha(0.5)
        rng = np.random.default_rng(0)
        for j in keep:
            ax.scatter(j + rng.uniform(-0.12, 0.12, len(data[j])), data[j], s=4, color=colours[j], alpha=0.6)
        ax.set_xticks(range(k), list(class_names), rotation=30 if k > 3 else 0, fontsize=8)
        ax.set_title(f"{symbol} {name} pixel (row {r}, col {c})", fontsize=9)
        ax.set_ylabel("grey intensity" if i == 0 else "")
        ax.grid(alpha=0.3, axis="y")
    axes[0].set_title("mean image", fontsize=9)
    axes[0].axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def random_misalign(
    images: torch.Tensor, mask=None, max_shift: float = 0.15, max_degrees: float = 15.0, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Shift and rotate every image by its own random amount: a structured set made unstructured.

    Returns
    -------
    (torch.Tensor, torch.Tensor or None)
        The moved images and, if ``mask`` was given, N x H x W bool masks: where each image's
        relevant region now lies.
    """
    validate_images(images, "random_misalign images")
    if not 0 <= max_shift <= 0.5 or not 0 <= max_degrees <= 180:
        raise ValueError(
            f"random_misalign: need 0 <= max_shift <= 0.5 and 0 <= max_degrees <= 180, "
            f"got {max_shift} and {max_degrees}"
        )
    n, c, h, w = images.shape
    g = torch.Generator().manual_seed(seed)
    angle = (torch.rand(n, generator=g) * 2 - 1) * math.radians(max_degrees)
    shift = (torch.rand(n, 2, generator=g) * 2 - 1) * (2 * max_shift)  # affine_grid coordinates span 2 units
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta.to(images.dtype), [n, c, h, w], align_corners=False)
    moved = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    masks = None
    if mask is not None:
        m = torch.as_tensor(np.asarray(as_numpy(mask)), dtype=images.dtype).expand(n, 1, h, w)
        masks = F.grid_sample(m, grid, mode="bilinear", padding_mode="zeros", align_corners=False)[:, 0] > 0.5
    return moved, masks


def show_panel_grid(
    rows: Mapping[str, Mapping[str, object]],
    masks: Mapping[str, object] | None = None,
    size: float = 2.1,
    cmap: str = "viridis",
    colorbar: bool = True,
):
    """A grid of images: one row per entry of ``rows``, one column per entry of each row.

    Parameters
    ----------
    rows
        ``{row name: {column name: image}}``.
    masks
        ``{row name: mask}`` outlines one mask on every panel of the row;
        ``{row name: {column name: mask}}`` one per panel.
    """

    plt = pyplot()
    ncols = max(len(r) for r in rows.values())
    fig, axes = plt.subplots(
        len(rows),
        ncols,
        figsize=(size * ncols * (1.2 if colorbar else 1.0) + 0.4, size * len(rows)),
        squeeze=False,
    )
    for ax in axes.ravel():
        ax.axis("off")
    for i, (row_name, panels) in enumerate(rows.items()):
        row_mask = masks.get(row_name) if masks is not None else None
        for j, (col_name, image) in enumerate(panels.items()):
            ax = axes[i, j]
            a = np.squeeze(as_numpy(image))
            if a.ndim == 3:
                ax.imshow(to_display(a))
            else:
                im = ax.imshow(a, cmap=cmap)
                if colorbar:
                    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03).ax.tick_params(labelsize=7)
            m = row_mask.get(col_name) if isinstance(row_mask, Mapping) else row_mask
            if m is not None:
                ax.contour(as_numpy(m), levels=[0.5], colors="cyan", linewidths=0.8)
            ax.set_title(col_name, fontsize=9)
            if j == 0 and len(rows) > 1:
                ax.annotate(
                    row_name,
                    xy=(-0.08, 0.5),
                    xycoords="axes fraction",
                    rotation=90,
                    ha="right",
                    va="center",
                    fontsize=9,
                    weight="bold",
                )
    fig.tight_layout()
    return fig
