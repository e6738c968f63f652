"""Small computations and figures behind the teaching chapters 1-4.

Each function's docstring names the chapter that introduces it. Nothing here changes
matplotlib's or torch's global settings; figures are drawn into new figures and returned.

* chapter 1 (``01_structured_images``): :func:`pixel_relevance`, :func:`most_relevant_pixels`,
  :func:`plot_pixel_distributions`, :func:`random_misalign`, :func:`show_panel_grid`
* chapter 2 (``02_pixel_representation``): :func:`pixel_vectors`, :func:`plot_pixel_vectors`,
  :func:`plot_pixel_representation_memory`, :data:`PAPER_TRAIN_SIZES`
* chapter 3 (``03_pixel_cnn``): :data:`PIXEL_CNN_VARIANTS`, :func:`pixel_cnn_variant_table`,
  :func:`backbone_parameter_counts`, :func:`untrained_maps`
* chapter 4 (``04_combined_loss``): :func:`saturated_fraction`, :func:`ce_map_gradient`, :func:`train_gsa`,
  :func:`lambda_sweep`, :func:`plot_lambda_sweep`
"""
from __future__ import annotations

import contextlib
import math
from typing import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .data.base import DataError, StructuredDataset, validate_images, validate_labels
from .metrics import map_roc_auc
from .models import GlobalSpatialAttention, PixelCNN, SmallCNN, build_backbone, count_parameters
from .pixel import pixel_representation, pixel_representation_bytes
from .training import History, evaluate, map_image, pick_device, seed_everything, two_phase_fit

__all__ = [
    "PAPER_TRAIN_SIZES",
    "pixel_relevance",
    "most_relevant_pixels",
    "plot_pixel_distributions",
    "random_misalign",
    "show_panel_grid",
    "pixel_vectors",
    "plot_pixel_vectors",
    "plot_pixel_representation_memory",
    "PIXEL_CNN_VARIANTS",
    "pixel_cnn_variant_table",
    "backbone_parameter_counts",
    "untrained_maps",
    "saturated_fraction",
    "train_gsa",
    "lambda_sweep",
    "ce_map_gradient",
    "plot_lambda_sweep",
]

#: Training-set sizes of the paper's data sets (80 % of 591 glaucoma and 213 JAFFE images;
#: IDRiD's official split has 413 training images). Introduced in chapter 2 (``02_pixel_representation``).
PAPER_TRAIN_SIZES: dict[str, int] = {"JAFFE": 170, "IDRiD": 413, "glaucoma": 473}


def _plt():
    import matplotlib.pyplot as plt

    return plt


def _numpy(a) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        return a.detach().cpu().float().numpy()
    return np.asarray(a, dtype=float)


# --------------------------------------------------------------------------------------
# chapter 1: structured images
# --------------------------------------------------------------------------------------
def pixel_relevance(images: torch.Tensor, labels: torch.Tensor, bins: int = 8) -> np.ndarray:
    """How much each pixel's intensity, on its own, tells about the class (mutual information, bits).

    For every pixel the grey intensities (mean over channels) of all images are cut into
    ``bins`` equally populated bins; the result is the mutual information between that bin
    and the class label. It is a filter-style feature score, the kind of per-feature
    statistic the paper takes its idea from: a pixel whose class-conditional intensity
    distributions differ scores high, one whose distributions coincide scores near zero
    (plus a small positive bias of about ``(bins - 1)(K - 1) / (2 N ln 2)`` bits that all
    pixels share).

    Introduced in chapter 1 (``01_structured_images``).

    Parameters
    ----------
    images
        N x C x H x W float tensor.
    labels
        N int64 class indices.
    bins
        Number of intensity bins (2 or more, at most N).

    Returns
    -------
    np.ndarray
        H x W float array of mutual information in bits (0 for a constant pixel).

    Raises
    ------
    DataError
        For bad images or labels, or a ``bins`` outside ``[2, N]``.
    """
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
    """The (row, column) of the highest-scoring pixel inside and outside the mask.

    Introduced in chapter 1 (``01_structured_images``).

    Returns
    -------
    dict
        ``{"inside": (row, col), "outside": (row, col)}``.
    """
    r, m = _numpy(relevance), _numpy(mask).astype(bool)
    if r.shape != m.shape:
        raise ValueError(f"relevance shape {r.shape} differs from mask shape {m.shape}")
    if m.all() or not m.any():
        raise ValueError("the mask must contain both relevant and irrelevant pixels")
    out = {}
    for name, region in (("inside", m), ("outside", ~m)):
        idx = int(np.argmax(np.where(region, r, -np.inf)))
        out[name] = (idx // r.shape[1], idx % r.shape[1])
    return out


def plot_pixel_distributions(images: torch.Tensor, labels: torch.Tensor, pixels: Mapping[str, tuple[int, int]],
                             class_names: Sequence[str], mask=None, title: str | None = None):
    """The mean image with the chosen pixels marked, then one violin plot per pixel, split by class.

    Introduced in chapter 1 (``01_structured_images``). Each violin shows the grey
    intensity (mean over channels) of all images of one class at that pixel.

    Parameters
    ----------
    images, labels
        N x C x H x W images and their classes.
    pixels
        ``{name: (row, col)}``, e.g. from :func:`most_relevant_pixels`.
    class_names
        One name per class.
    mask
        Optional H x W mask drawn as an outline on the mean image.
    """
    from .plotting import to_display

    plt = _plt()
    grey = images.float().mean(1).numpy()
    y = labels.numpy()
    k = len(class_names)
    colours = plt.get_cmap("tab10")(np.arange(k) % 10)
    fig, axes = plt.subplots(1, 1 + len(pixels), figsize=(2.6 + 2.8 * len(pixels), 2.8),
                             gridspec_kw={"width_ratios": [1] + [1.2] * len(pixels)})
    axes[0].imshow(to_display(images.float().mean(0)), cmap="gray")
    if mask is not None:
        axes[0].contour(_numpy(mask), levels=[0.5], colors="cyan", linewidths=0.8)
    markers = [("o", "\u25cb"), ("s", "\u25a1"), ("^", "\u25b3"), ("D", "\u25c7"), ("v", "\u25bd")]
    for i, (name, (r, c)) in enumerate(pixels.items()):
        marker, symbol = markers[i % len(markers)]
        axes[0].plot(c, r, marker, mfc="none", mec="red", mew=1.5, ms=8)
        ax = axes[1 + i]
        data = [grey[y == j, r, c] for j in range(k)]
        keep = [j for j in range(k) if len(data[j])]
        parts = ax.violinplot([data[j] for j in keep], positions=keep, showmedians=True, showextrema=False,
                              widths=0.8)
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


def random_misalign(images: torch.Tensor, mask=None, max_shift: float = 0.15, max_degrees: float = 15.0,
                    seed: int = 0) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Shift and rotate every image by its own random amount: a structured set made unstructured.

    Introduced in chapter 1 (``01_structured_images``). Each image is rotated about its
    centre by an angle uniform in ``[-max_degrees, max_degrees]`` and shifted by up to
    ``max_shift`` of the image side along each axis (bilinear resampling; pixels that come
    from outside the image are 0).

    Parameters
    ----------
    images
        N x C x H x W float tensor.
    mask
        Optional H x W relevance mask; it is moved with each image.
    max_shift
        Largest shift as a fraction of the image side (0 to 0.5).
    max_degrees
        Largest rotation in degrees (0 to 180).
    seed
        Seed of the random shifts and angles.

    Returns
    -------
    (torch.Tensor, torch.Tensor or None)
        The moved images (same shape) and, if ``mask`` was given, an N x H x W bool
        tensor: where each image's relevant region now lies.
    """
    validate_images(images, "random_misalign images")
    if not 0 <= max_shift <= 0.5 or not 0 <= max_degrees <= 180:
        raise ValueError(f"random_misalign: need 0 <= max_shift <= 0.5 and 0 <= max_degrees <= 180, "
                         f"got {max_shift} and {max_degrees}")
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
        m = torch.as_tensor(np.asarray(_numpy(mask)), dtype=images.dtype).expand(n, 1, h, w)
        masks = F.grid_sample(m, grid, mode="bilinear", padding_mode="zeros", align_corners=False)[:, 0] > 0.5
    return moved, masks


def show_panel_grid(rows: Mapping[str, Mapping[str, object]], masks: Mapping[str, object] | None = None,
                    size: float = 2.1, cmap: str = "viridis", colorbar: bool = True, title: str | None = None):
    """A grid of images: one row per entry of ``rows``, one column per entry of each row.

    Introduced in chapter 1 (``01_structured_images``). Colour images (3 x H x W) are
    shown as they are (rescaled to [0, 1] if needed); single-channel images (H x W) with
    ``cmap`` on their own range, with a colour bar. Row names are written on the left,
    column names above each panel.

    Parameters
    ----------
    rows
        ``{row name: {column name: image}}``.
    masks
        ``{row name: mask}`` outlines one H x W mask in cyan on every panel of that row;
        ``{row name: {column name: mask}}`` gives each panel its own.
    size
        Side of one panel in inches.
    cmap
        Colour map of single-channel panels.
    colorbar
        Draw a colour bar next to single-channel panels.
    title
        Figure title.
    """
    from .plotting import to_display

    plt = _plt()
    ncols = max(len(r) for r in rows.values())
    fig, axes = plt.subplots(len(rows), ncols, figsize=(size * ncols * (1.2 if colorbar else 1.0) + 0.4,
                                                        size * len(rows) + 0.3 * bool(title)), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i, (row_name, panels) in enumerate(rows.items()):
        row_mask = masks.get(row_name) if masks is not None else None
        for j, (col_name, image) in enumerate(panels.items()):
            ax = axes[i, j]
            a = np.squeeze(_numpy(image))
            if a.ndim == 3:
                ax.imshow(to_display(a))
            else:
                im = ax.imshow(a, cmap=cmap)
                if colorbar:
                    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03).ax.tick_params(labelsize=7)
            m = row_mask.get(col_name) if isinstance(row_mask, Mapping) else row_mask
            if m is not None:
                ax.contour(_numpy(m), levels=[0.5], colors="cyan", linewidths=0.8)
            ax.set_title(col_name, fontsize=9)
            if j == 0 and len(rows) > 1:
                ax.annotate(row_name, xy=(-0.08, 0.5), xycoords="axes fraction", rotation=90, ha="right",
                            va="center", fontsize=9, weight="bold")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------
# chapter 2: the pixel representation
# --------------------------------------------------------------------------------------
def pixel_vectors(pixel_rep: torch.Tensor, pixels: Mapping[str, tuple[int, int]], channels: int) -> dict[str, np.ndarray]:
    """The feature vector of each chosen pixel, read from the pixel representation, as N x C arrays.

    Introduced in chapter 2 (``02_pixel_representation``). The vector of pixel (h, w) is
    ``pixel_rep[0, :, h, w]`` (length NC); entry ``n * C + c`` is image n's channel c, so
    reshaping it to N x C gives one row per training image.
    """
    if pixel_rep.dim() != 4 or pixel_rep.shape[0] != 1 or pixel_rep.shape[1] % channels:
        raise DataError(f"pixel_vectors: expected a 1 x NC x H x W pixel representation with NC divisible by "
                        f"C = {channels}, got {tuple(pixel_rep.shape)}")
    return {name: pixel_rep[0, :, r, c].reshape(-1, channels).detach().cpu().numpy()
            for name, (r, c) in pixels.items()}


def plot_pixel_vectors(pixel_rep: torch.Tensor, labels: torch.Tensor, pixels: Mapping[str, tuple[int, int]],
                       channels: int, class_names: Sequence[str], background=None, mask=None, ncols: int = 4,
                       size: tuple[float, float] = (3.0, 2.4)):
    """One panel per pixel: its NC-dim feature vector as N dots (mean over C), sorted and coloured by class.

    Introduced in chapter 2 (``02_pixel_representation``). A dashed line marks each
    class's mean: where the lines differ, the pixel's features tell the classes apart.

    Parameters
    ----------
    pixel_rep
        1 x NC x H x W pixel representation.
    labels
        The N training labels (in the order of the images in ``pixel_rep``).
    pixels
        ``{name: (row, col)}`` of the pixels to show.
    channels
        C, to split each vector into N images.
    class_names
        One name per class.
    background, mask
        If ``background`` (an image) is given, a first panel shows it with the pixels
        numbered (and ``mask`` outlined in cyan).
    ncols, size
        Panels per row and the size of one panel in inches.
    """
    from .plotting import to_display

    plt = _plt()
    vectors = pixel_vectors(pixel_rep, pixels, channels)
    y = labels.numpy()
    order = np.argsort(y, kind="stable")
    k = len(class_names)
    colours = plt.get_cmap("tab10")(np.arange(k) % 10)
    n_panels = len(vectors) + (background is not None)
    nrows = int(np.ceil(n_panels / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), squeeze=False)
    flat = list(axes.ravel())
    for ax in flat[n_panels:]:
        ax.axis("off")
    if background is not None:
        ax = flat.pop(0)
        ax.imshow(to_display(background), cmap="gray")
        if mask is not None:
            ax.contour(_numpy(mask), levels=[0.5], colors="cyan", linewidths=0.8)
        for i, (r, c) in enumerate(pixels.values()):
            ax.plot(c, r, "o", mfc="none", mec="red", mew=1.2, ms=7)
            ax.annotate(str(i + 1), (c, r), textcoords="offset points", xytext=(5, 3), color="red", fontsize=8,
                        weight="bold")
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


def plot_pixel_representation_memory(max_images: int = 1000, image_sizes: Sequence[int] = (32, 224), channels: int = 3,
                                     marks: Mapping[str, int] = PAPER_TRAIN_SIZES, size: tuple[float, float] = (6.0, 3.6)):
    """Memory of the pixel representation (float32) against the number of training images N (log-log axes).

    Introduced in chapter 2 (``02_pixel_representation``). One line per image size, computed
    with :func:`~gsa_utils.pixel.pixel_representation_bytes`; the paper's training-set sizes
    (``marks``) are marked on every line.
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=size)
    ns = np.unique(np.geomspace(1, max_images, 200).astype(int))
    for s in image_sizes:
        b = np.array([pixel_representation_bytes(int(n), channels, s, s) for n in ns]) / 2**20
        line, = ax.plot(ns, b, label=f"{s} x {s} px")
        for n in marks.values():
            ax.plot(n, pixel_representation_bytes(n, channels, s, s) / 2**20, "o", color=line.get_color(), ms=5)
    ordered = sorted(marks.items(), key=lambda item: item[1])
    for i, (name, n) in enumerate(ordered):
        ax.axvline(n, color="gray", ls=":", lw=1)
        ax.text(n, 0.03, f"{name} (N={n})", transform=ax.get_xaxis_transform(), rotation=90, va="bottom",
                ha="left" if i == len(ordered) - 1 else "right", fontsize=7, color="dimgray")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training images N")
    ax.set_ylabel(f"size of P (MiB, float32, C = {channels})")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------
# chapter 3: the pixel CNN
# --------------------------------------------------------------------------------------
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


def pixel_cnn_variant_table(n_images: int, channels: int, hidden_channels: int,
                            variants: Mapping[str, dict] = PIXEL_CNN_VARIANTS) -> list[dict]:
    """Parameter counts of the pixel-CNN variants for N images of C channels and K hidden channels.

    Introduced in chapter 3 (``03_pixel_cnn``). Each row holds the variant's name, its
    settings, its parameter count (counted on a built :class:`PixelCNN`), the ratio to the
    paper's design and how many neighbouring pixels (receptive field side) decide a pixel.
    The models are built on PyTorch's ``meta`` device, so no memory is allocated.
    """
    rows = []
    base = None
    for name, kwargs in variants.items():
        with torch.device("meta"):
            model = PixelCNN(n_images * channels, hidden_channels, **kwargs)
        params = count_parameters(model)
        base = params if base is None else base
        k, layers, last = kwargs.get("kernel_size", 3), kwargs.get("num_hidden_layers", 1), kwargs.get("last_kernel_size", 1)
        rows.append({"variant": name, "settings": kwargs, "parameters": params, "vs paper": params / base,
                     "receptive field": f"{layers * (k - 1) + last}x{layers * (k - 1) + last}"})
    return rows


def backbone_parameter_counts(names: Sequence[str], num_classes: int) -> dict[str, int]:
    """Parameter counts of image CNNs (``build_backbone`` names) with a ``num_classes`` head.

    Introduced in chapter 3 (``03_pixel_cnn``). Built on the ``meta`` device without
    pretrained weights: nothing is downloaded or allocated, and the count is the same.
    """
    counts = {}
    for name in names:
        with torch.device("meta"):
            counts[name] = count_parameters(build_backbone(name, num_classes, pretrained=False))
    return counts


@torch.no_grad()
def untrained_maps(pixel_rep: torch.Tensor, seeds: Sequence[int], hidden_channels: int, **pixel_cnn_kwargs) -> np.ndarray:
    """The maps of freshly initialised pixel CNNs, one per seed, as an S x H x W array.

    Introduced in chapter 3 (``03_pixel_cnn``). ``torch.manual_seed(seed)`` is set before
    building each :class:`PixelCNN` (extra keyword arguments go to it, e.g. ``output_bias``),
    so the maps are reproducible; the global RNG state is restored afterwards.
    """
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


# --------------------------------------------------------------------------------------
# chapter 4: the combined loss
# --------------------------------------------------------------------------------------
def saturated_fraction(attention_map, eps: float = 0.01) -> float:
    """Share of map values within ``eps`` of 0 or 1, where the sigmoid's gradient all but vanishes.

    Introduced in chapter 4 (``04_combined_loss``). The sigmoid's slope is ``m (1 - m)``:
    below 0.0099 for such pixels, so the loss can hardly move them any more.
    """
    a = _numpy(attention_map)
    return float(((a < eps) | (a > 1 - eps)).mean())


@contextlib.contextmanager
def _cpu_threads(n: int | None):
    """Use ``n`` intra-op CPU threads inside the block, then restore the previous number."""
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train_gsa(x_train: torch.Tensor, y_train: torch.Tensor, num_classes: int, *, l1_weight: float, seed: int,
              settings: Mapping, hidden_channels: int, eval_sets: Mapping | None = None, backbone_width: int = 16,
              map_snapshots: Sequence[int] = (), device: str | torch.device | None = None,
              **fit_kwargs) -> tuple[GlobalSpatialAttention, History]:
    """Build a pixel CNN + :class:`SmallCNN` with global spatial attention and train it with Algorithm 1.

    Introduced in chapter 4 (``04_combined_loss``). The pixel representation is built from
    ``x_train`` (training images only); ``seed`` seeds the initialisation and the batches.

    Parameters
    ----------
    x_train, y_train
        Training images (N x C x H x W) and labels.
    num_classes
        Classes of the task.
    l1_weight
        lambda of the combined loss (it replaces ``settings["l1_weight"]``).
    seed
        Seed of the initialisation and of the training order.
    settings
        Keyword arguments of :func:`~gsa_utils.training.two_phase_fit`, e.g.
        ``fit_settings(profile)``.
    hidden_channels
        K of the pixel CNN.
    eval_sets, map_snapshots, device, **fit_kwargs
        Passed on to :func:`~gsa_utils.training.two_phase_fit`.
    backbone_width
        Width of the small image CNN.
    """
    seed_everything(seed)
    rep = pixel_representation(x_train)
    model = GlobalSpatialAttention(SmallCNN(num_classes, in_channels=x_train.shape[1], width=backbone_width),
                                   PixelCNN(rep.shape[1], hidden_channels), rep)
    kwargs = {**dict(settings), "l1_weight": l1_weight, **fit_kwargs}
    kwargs.setdefault("progress", False)
    history = two_phase_fit(model, x_train, y_train, eval_sets=eval_sets, seed=seed, map_snapshots=map_snapshots,
                            num_classes=num_classes, device=device, **kwargs)
    return model, history


def lambda_sweep(dataset: StructuredDataset, l1_weights: Sequence[float], seeds: Sequence[int], *, settings: Mapping,
                 hidden_channels: int, backbone_width: int = 16, map_snapshots: Sequence[int] = (),
                 device: str | torch.device | None = None, cpu_threads: int | None = 1, **fit_kwargs) -> list[dict]:
    """Train one small GSA model per (lambda, seed) with :func:`train_gsa` and measure its map.

    Introduced in chapter 4 (``04_combined_loss``). ``dataset`` must have a ``mask``.

    ``cpu_threads`` caps PyTorch's CPU threads while training on the CPU (restored
    afterwards; ``None`` leaves them alone). These runs are tiny: one thread is about as
    fast as several on an idle machine, and on a busy one, where threads wait for each
    other, we measured 2 threads to be 8-12 times slower than 1.

    Returns
    -------
    list of dict
        One record per run: ``l1_weight``, ``seed``, ``map`` (H x W array), ``map_mean``,
        ``roc_auc`` (map vs mask), ``saturated`` (:func:`saturated_fraction`), ``test_acc``
        (accuracy on ``dataset.x_test`` after training; the test set is evaluated only then,
        to save time), ``history``.
    """
    if dataset.mask is None:
        raise DataError(f"lambda_sweep: dataset {dataset.name!r} has no mask to measure the maps against")
    on_cpu = pick_device(str(device) if device else None).type == "cpu"
    with _cpu_threads(cpu_threads if on_cpu else None):
        return _sweep(dataset, l1_weights, seeds, settings=settings, hidden_channels=hidden_channels,
                      backbone_width=backbone_width, map_snapshots=map_snapshots, device=device, **fit_kwargs)


def _sweep(dataset, l1_weights, seeds, *, settings, hidden_channels, backbone_width, map_snapshots, device,
           **fit_kwargs) -> list[dict]:
    records = []
    for l1_weight in l1_weights:
        for seed in seeds:
            model, history = train_gsa(dataset.x_train, dataset.y_train, dataset.num_classes, l1_weight=l1_weight,
                                       seed=seed, settings=settings, hidden_channels=hidden_channels,
                                       backbone_width=backbone_width, map_snapshots=map_snapshots, device=device,
                                       **fit_kwargs)
            amap = map_image(model)
            test_acc = evaluate(model, dataset.x_test, dataset.y_test)["acc"]
            records.append({"l1_weight": l1_weight, "seed": seed, "map": amap, "map_mean": float(amap.mean()),
                            "roc_auc": map_roc_auc(amap, dataset.mask), "saturated": saturated_fraction(amap),
                            "test_acc": float(test_acc), "history": history})
    return records


def ce_map_gradient(model: GlobalSpatialAttention, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """The gradient of the batch's mean cross-entropy with respect to each pixel of the map (H x W).

    Introduced in chapter 4 (``04_combined_loss``). With the summed L1 term the penalty
    pulls every map pixel down with gradient exactly ``lambda``; comparing ``lambda`` with
    the size of this cross-entropy gradient shows which term steers the map. Computed on a
    copy of ``model`` in training mode, so the model (and its batch-norm statistics) is
    left untouched.
    """
    import copy

    clone = copy.deepcopy(model).train()
    amap = clone.attention_map()
    amap.retain_grad()
    F.cross_entropy(clone(x.to(amap.device), amap), y.to(amap.device)).backward()
    return amap.grad[0, 0].detach().cpu().numpy()


def plot_lambda_sweep(records: Sequence[Mapping], keys: Sequence[str] = ("map_mean", "roc_auc", "saturated", "test_acc"),
                      chance: Mapping[str, float] | None = None, size: tuple[float, float] = (3.0, 2.6)):
    """One panel per measured quantity against lambda (log axis; lambda = 0 drawn at the left edge).

    Introduced in chapter 4 (``04_combined_loss``). Takes the records of :func:`lambda_sweep`;
    each seed is a dot, the line joins the means. ``chance`` draws dotted reference levels,
    e.g. ``{"roc_auc": 0.5, "test_acc": 1 / num_classes}``.
    """
    plt = _plt()
    lambdas = sorted({r["l1_weight"] for r in records})
    positive = [v for v in lambdas if v > 0]
    zero_at = (min(positive) / 10) if positive else 1.0
    xpos = {v: (v if v > 0 else zero_at) for v in lambdas}
    labels = {"map_mean": "map mean", "roc_auc": "ROC-AUC vs mask", "saturated": "saturated share",
              "test_acc": "test accuracy"}
    fig, axes = plt.subplots(1, len(keys), figsize=(size[0] * len(keys), size[1]), squeeze=False)
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
        ax.set_xticks([xpos[v] for v in lambdas], ["0" if v == 0 else f"{v:g}" for v in lambdas], fontsize=7,
                      rotation=45)
        ax.minorticks_off()
        ax.set_xlabel("lambda")
        ax.set_title(labels.get(key, key), fontsize=9)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
