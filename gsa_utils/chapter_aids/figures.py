"""Figures and data helpers of the dataset chapters: accuracy plots, curves, maps, example folders."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd

from ..data.base import DataError, StructuredDataset
from ..metrics import attention_quality, map_roc_auc
from ..paths import shown_text
from .chapters import ChapterResults
from .plotting import pyplot, to_display
from .summaries import METHOD_LABELS

_COLOURS = {"vanilla": "tab:blue", "gsa": "tab:orange"}


def plot_accuracy(
    table: pd.DataFrame,
    chance: float | Mapping[str, float] | None = None,
):
    """Test accuracy per backbone and method: one dot per seed, a bar for the mean; a panel per dataset."""
    plt = pyplot()
    datasets = list(dict.fromkeys(table.dataset))
    fig, axes = plt.subplots(1, len(datasets), figsize=(4.2 * len(datasets), 3.2), squeeze=False)
    for ax, ds in zip(axes[0], datasets):
        sub = table[table.dataset == ds]
        backbones = list(dict.fromkeys(sub.backbone))
        methods = [m for m in ("vanilla", "gsa") if m in set(sub.method)]
        width = 0.8 / max(len(methods), 1)
        for j, m in enumerate(methods):
            for i, bb in enumerate(backbones):
                vals = sub[(sub.backbone == bb) & (sub.method == m)]["tail_acc"].to_numpy()
                if vals.size == 0:
                    continue
                x = i - 0.4 + width * (j + 0.5)
                ax.bar(
                    x,
                    vals.mean(),
                    width * 0.9,
                    color=_COLOURS.get(m),
                    alpha=0.35,
                    label=METHOD_LABELS.get(m, m) if i == 0 else None,
                )
                ax.scatter(
                    np.full(vals.size, x) + np.linspace(-0.1, 0.1, vals.size) * width,
                    vals,
                    color=_COLOURS.get(m),
                    s=14,
                    zorder=3,
                )
        c = chance.get(ds) if isinstance(chance, Mapping) else chance
        if c is not None:
            ax.axhline(c, color="gray", ls=":", lw=1, label="chance")
        ax.set_xticks(range(len(backbones)), backbones, rotation=15)
        ax.set_ylim(0, 1)
        ax.set_ylabel("test accuracy (mean of last epochs)")
        ax.set_title(ds, fontsize=10)
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def plot_training_curves(
    results: ChapterResults,
    dataset: str,
    backbone: str | None = None,
):
    """Training curves of GSA and vanilla for one dataset and backbone: mean over seeds, min-max band."""
    plt = pyplot()
    backbone = backbone or results.runs[0].config.backbone
    keys, cutoff_epoch = ("train_acc", "test_acc", "train_ce"), None
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.0), squeeze=False)
    for m in ("vanilla", "gsa"):
        runs = results.select(dataset=dataset, backbone=backbone, method=m)
        if not runs:
            continue
        if m == "gsa" and cutoff_epoch is None:
            cutoff_epoch = runs[0].config.fit.cutoff_epoch
        for ax, key in zip(axes[0], keys):
            curves = [np.asarray(r.history[key], dtype=float) for r in runs]
            n = min(len(c) for c in curves)
            stack = np.vstack([c[:n] for c in curves])
            ep = np.arange(1, n + 1)
            label = f"{METHOD_LABELS.get(m, m)} ({len(runs)} seed{'s' if len(runs) > 1 else ''})"
            ax.plot(ep, stack.mean(0), color=_COLOURS[m], label=label)
            if len(runs) > 1:
                ax.fill_between(ep, stack.min(0), stack.max(0), color=_COLOURS[m], alpha=0.2)
    for ax, key in zip(axes[0], keys):
        if cutoff_epoch:
            ax.axvline(cutoff_epoch, color="gray", ls="--", lw=1)
            ax.text(cutoff_epoch, 0.98, " E", transform=ax.get_xaxis_transform(), va="top", color="gray")
        ax.set_xlabel("epoch")
        ax.set_ylabel(key.replace("_", " ").replace("ce", "cross-entropy").replace("acc", "accuracy"))
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(f"{dataset} / {backbone}", fontsize=10)
    fig.tight_layout()
    return fig


def check_attention_map(amap, image_shape: Sequence[int]) -> np.ndarray:
    """Check that a GSA map is one H x W map (shared by every image) with values in [0, 1]; return it."""
    a = np.asarray(amap, dtype=float)
    h, w = tuple(image_shape)[-2:]
    if not (a.shape == (h, w)):
        raise ValueError(f"the map is {a.shape}, expected one {h} x {w} map for all images")
    if not (np.isfinite(a).all()):
        raise ValueError("the map has NaN or infinite values")
    if not (a.min() >= 0.0 and a.max() <= 1.0):
        raise ValueError(f"the map leaves [0, 1]: {a.min():.4f} .. {a.max():.4f}")
    return a


def show_attention(
    maps: Mapping[str, np.ndarray],
    image=None,
    mask=None,
    *,
    product: str | None = None,
    title: str | None = None,
):
    """The learned map(s) next to a sample image, and the image as the CNN sees it (image x map).

    Returns
    -------
    (figure, dict)
        The figure and title -> ROC-AUC against ``mask`` (empty without a mask).
    """
    plt = pyplot()
    maps = {k: np.squeeze(np.asarray(v, dtype=float)) for k, v in maps.items()}
    if not maps:
        raise ValueError("show_attention: no maps")
    m_arr = None if mask is None else np.asarray(mask, dtype=bool)
    n = len(maps) + (2 if image is not None else 0)
    fig, axes = plt.subplots(1, n, figsize=(3.0 * n + 0.9, 3.6), squeeze=False)
    axes = list(axes[0])
    aucs: dict[str, float] = {}

    def outline(ax) -> None:
        if m_arr is not None:
            ax.contour(m_arr.astype(float), levels=[0.5], colors="cyan", linewidths=0.8)

    if image is not None:
        img = to_display(image)
        axes[0].imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1)
        axes[0].set_title("sample image" + ("\n(cyan: relevant region)" if m_arr is not None else ""), fontsize=8)
        outline(axes[0])
        axes = axes[1:]
    im = None
    for ax, (name, a) in zip(axes, maps.items()):
        im = ax.imshow((a - a.min()) / max(a.max() - a.min(), 1e-12), cmap="magma", vmin=0, vmax=1)
        label = f"{name}\nvalues {a.min():.2g}..{a.max():.2g}"
        if m_arr is not None:
            aucs[name] = map_roc_auc(a, m_arr)
            label += f", ROC-AUC {aucs[name]:.2f}"
        outline(ax)
        ax.set_title(label, fontsize=8)
    if image is not None:
        first_name = product if product is not None else next(iter(maps))
        first = maps[first_name]
        seen = np.asarray(to_display(image), dtype=float)
        seen = seen * (first[..., None] if seen.ndim == 3 else first)
        seen = seen / max(seen.max(), 1e-12)
        axes[len(maps)].imshow(seen, cmap="gray" if seen.ndim == 2 else None, vmin=0, vmax=1)
        axes[len(maps)].set_title(f"image x map, brightened\n({first_name})", fontsize=8)
        outline(axes[len(maps)])
    for ax in fig.axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(im, ax=fig.axes, shrink=0.8, label="map, rescaled to its range")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig, aucs


def map_verdict(amap, mask=None) -> str:
    """A sentence on what a learned map does, from its values (and the relevant region, when known)."""
    a = np.squeeze(np.asarray(amap, dtype=float))
    top = float(a.max())
    blank = float((a < 0.05 * top).mean()) if top > 0 else 1.0
    s = (
        f"values {a.min():.3g} to {top:.3g} (mean {a.mean():.3g}); {100 * blank:.0f}% of the pixels get less "
        f"than 5% of the largest weight"
    )
    if blank > 0.95:
        s += ", so the image CNN sees little more than a few pixels of each image"
    if mask is None:
        return s + "."
    q = attention_quality(a, mask)
    share, area = q["mass_inside"], q["mask_fraction"]
    s += (
        f". ROC-AUC {q['roc_auc']:.2f} against the relevant region; {100 * share:.0f}% of the map's weight lies "
        f"in that region, which covers {100 * area:.0f}% of the image: "
    )
    if share >= 1.5 * area and q["roc_auc"] >= 0.6:
        s += "the map concentrates on the relevant region."
    elif share > 1.1 * area:
        s += "the map leans towards the relevant region, without concentrating on it."
    else:
        s += "the map does not favour the relevant region."
    return s


def expect_data_error(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> str:
    """Call ``fn`` expecting a :class:`~gsa_utils.data.DataError`; print and return its message."""
    try:
        fn(*args, **kwargs)
    except DataError as err:
        msg = str(err)
        print(f"DataError: {shown_text(msg)}")
        return msg
    raise AssertionError(f"{getattr(fn, '__name__', fn)} accepted the input: expected a DataError")


def folder_tree(root: str | os.PathLike, max_files: int = 3) -> str:
    """A text tree of ``root`` (folders first, hidden entries left out), at most ``max_files`` files per folder."""
    root = Path(root)
    lines = [f"{root.name}/"]

    def walk(folder: Path, prefix: str) -> None:
        entries = sorted(
            (p for p in folder.iterdir() if not p.name.startswith(".")), key=lambda p: (p.is_file(), p.name)
        )
        dirs = [p for p in entries if p.is_dir()]
        files = [p for p in entries if p.is_file()]
        shown: list[Path | str] = dirs + files[:max_files]
        if len(files) > max_files:
            shown.append(f"... ({len(files)} files in all)")
        for i, p in enumerate(shown):
            last = i == len(shown) - 1
            branch = "└── " if last else "├── "
            if isinstance(p, str):
                lines.append(prefix + branch + p)
            elif p.is_dir():
                lines.append(prefix + branch + p.name + "/")
                walk(p, prefix + ("    " if last else "│   "))
            else:
                lines.append(prefix + branch + p.name)

    walk(root, "")
    return "\n".join(lines)


def write_oct_folder(
    root: str | os.PathLike,
    image_size: int,
    n_train: int = 160,
    n_test: int = 80,
    seed: int = 0,
    layout: str = "folders",
) -> dict:
    """Write the synthetic OCT thickness maps as PNG files in a layout :func:`load_folder` reads."""
    from ..data.synthetic import make_oct_thickness

    if layout not in ("folders", "csv"):
        raise ValueError(f"layout must be 'folders' or 'csv', got {layout!r}")
    root = Path(root)
    settings = {
        "generator": "make_oct_thickness",
        "image_size": int(image_size),
        "n_train": int(n_train),
        "n_test": int(n_test),
        "seed": int(seed),
        "layout": layout,
        "format": "png",
        "version": 1,
    }
    marker = root / ".settings.json"
    try:
        same = json.loads(marker.read_text()) == settings
    except (OSError, ValueError):
        same = False
    if same:  # only the mask and class names are needed: a tiny draw gives them
        ds = make_oct_thickness(n_train=3, n_test=3, image_size=image_size, seed=seed)
    else:
        ds = make_oct_thickness(n_train=n_train, n_test=n_test, image_size=image_size, seed=seed)
        root.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
        try:
            _write_oct_files(tmp, ds, layout)
            (tmp / ".settings.json").write_text(json.dumps(settings))
            if root.exists():
                shutil.rmtree(root)
            os.replace(tmp, root)  # the folder appears complete or not at all
        finally:
            if tmp.exists():
                shutil.rmtree(tmp)
    if layout == "folders":
        counts = {name: len(list((root / name).glob("*.png"))) for name in ds.class_names}
    else:
        labels = [line.rsplit(",", 1)[1] for line in (root / "labels.csv").read_text().splitlines()[1:] if line]
        counts = {name: labels.count(name) for name in ds.class_names}
    return {
        "root": root,
        "class_names": list(ds.class_names),
        "n_files": sum(counts.values()),
        "counts": counts,
        "mask": ds.mask.numpy().copy(),
        "settings": settings,
        "rewritten": not same,
    }


def _write_oct_files(root: Path, ds: StructuredDataset, layout: str) -> None:
    images = np.concatenate([ds.x_train.numpy(), ds.x_test.numpy()])
    labels = np.concatenate([ds.y_train.numpy(), ds.y_test.numpy()])
    splits = ["train"] * len(ds.y_train) + ["test"] * len(ds.y_test)
    label_rows, split_rows = ["path,label"], ["path,split"]
    for i, (img, y, split) in enumerate(zip(images, labels, splits)):
        name = ds.class_names[int(y)]
        rel = Path(name if layout == "folders" else "images") / f"eye_{i:03d}.png"
        (root / rel.parent).mkdir(parents=True, exist_ok=True)
        rgb = np.clip(np.rint(np.moveaxis(img, 0, -1) * 255), 0, 255).astype(np.uint8)
        if not cv2.imwrite(str(root / rel), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
            raise OSError(f"could not write {root / rel}")
        label_rows.append(f"{rel.as_posix()},{name}")
        split_rows.append(f"{rel.as_posix()},{split}")
    if layout == "csv":
        (root / "labels.csv").write_text("\n".join(label_rows) + "\n", encoding="utf-8")
        (root / "split.csv").write_text("\n".join(split_rows) + "\n", encoding="utf-8")


def plot_idrid_fixture(fixture, ds: StructuredDataset, n: int = 8):
    """The IDRiD pipeline on the miniature fixture: one raw file with the crop lines, then preprocessed images."""
    from ..data.idrid import IDRID_CROP_START, IDRID_CROP_STOP

    plt = pyplot()
    files, x, y = fixture.train_files, ds.x_train, ds.y_train
    flipped = set(ds.meta["flipped_train"])
    n = min(n, len(x))
    fig = plt.figure(figsize=(1.7 * n, 3.6))
    top = fig.add_subplot(2, 1, 1)
    raw = cv2.cvtColor(cv2.imread(str(files[0]), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    top.imshow(raw, aspect="auto")
    for col in (IDRID_CROP_START, IDRID_CROP_STOP):
        top.axvline(col, color="cyan", lw=1.5)
    top.set_title(
        f"raw file {files[0].name}: {raw.shape[1]} x {raw.shape[0]} px; columns "
        f"{IDRID_CROP_START}..{IDRID_CROP_STOP - 1} (between the cyan lines) are kept",
        fontsize=9,
    )
    top.set_yticks([])
    for i in range(n):
        ax = fig.add_subplot(2, n, n + i + 1)
        ax.imshow(to_display(x[i]), vmin=0, vmax=1)
        ax.set_title(
            f"{ds.meta['train_files'][i].split('.')[0]}\ngrade {int(y[i])}{', flipped' if i in flipped else ''}",
            fontsize=7,
        )
        ax.axis("off")
    fig.tight_layout()
    return fig
