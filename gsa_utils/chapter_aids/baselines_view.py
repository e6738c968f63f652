"""What chapters 10 and 11 show about the baselines and the results folder: figures, summaries, the Table 2 report."""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..attention import AttentionMaps, upsample_maps, variability
from ..paths import shown_path
from ..protocol import N_SELECTED_EPOCHS
from ..runs.config import BACKBONE_METHODS, PIXEL_METHODS, profile_base
from ..runs.markdown import table_to_markdown
from ..runs.store import load_results
from ..runs.tables import DATASET_COLUMNS, build_table
from .plotting import pyplot, to_display

#: What chapter 11 says when the results folder holds no finished run.
NO_RESULTS_MESSAGE = "no results yet: run chapters 6-10 or the sweep"


def across_image_spread(maps: Any) -> dict[str, float]:
    """How much attention maps differ from one image to another.

    Returns
    -------
    dict
        ``mean_correlation`` (mean Pearson correlation over image pairs; 1: one pattern),
        ``relative_std`` (std across images per position, averaged, over the mean map value;
        0: identical maps) and ``n_images``.
    """
    a = np.asarray(maps.detach().cpu() if isinstance(maps, torch.Tensor) else maps, dtype=np.float64)
    if a.ndim != 3 or a.shape[0] < 2:
        raise ValueError(f"across_image_spread: expected N x H x W maps with N >= 2, got shape {a.shape}")
    spread = variability(AttentionMaps("across_image_spread", a, shared=False))
    mean = float(np.abs(a).mean())
    rel = float(a.std(axis=0).mean() / mean) if mean > 0 else 0.0
    return {"mean_correlation": spread.mean_correlation, "relative_std": rel, "n_images": int(len(a))}


def plot_local_attention(
    images: Any,
    level_maps: Sequence[Any],
    shared_map: Any | None = None,
    mask: Any | None = None,
    *,
    level_names: Sequence[str] | None = None,
    labels: Sequence[str] | None = None,
):
    """Per-image attention of a local-attention network next to one shared (GSA) map."""
    plt = pyplot()
    n = len(images)
    if n == 0 or not level_maps:
        raise ValueError("plot_local_attention: need at least one image and one level of maps")
    h, w = images.shape[-2:]
    ups = [upsample_maps(m, (h, w)) for m in level_maps]
    for k, u in enumerate(ups):
        if len(u) != n:
            raise ValueError(f"plot_local_attention: level {k} has {len(u)} maps for {n} images")
    names = list(level_names) if level_names is not None else [f"level {k + 1}" for k in range(len(ups))]
    ncols = 1 + len(ups) + (shared_map is not None)
    fig, axes = plt.subplots(n, ncols, figsize=(1.7 * ncols, 1.7 * n + 0.4), squeeze=False)
    m_arr = None if mask is None else np.asarray(mask.cpu() if isinstance(mask, torch.Tensor) else mask, dtype=float)

    def rescale(a: np.ndarray) -> np.ndarray:
        return (a - a.min()) / max(a.max() - a.min(), 1e-12)

    for i in range(n):
        img = to_display(images[i])
        gray = img if img.ndim == 2 else img.mean(-1)
        axes[i, 0].imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1)
        axes[i, 0].set_title(labels[i] if labels is not None else f"image {i}", fontsize=8)
        for k, u in enumerate(ups):
            axes[i, k + 1].imshow(gray, cmap="gray", vmin=0, vmax=1)
            axes[i, k + 1].imshow(rescale(u[i]), cmap="magma", alpha=0.65, vmin=0, vmax=1)
            if i == 0:
                axes[i, k + 1].set_title(names[k], fontsize=8)
        if shared_map is not None:
            s = np.squeeze(np.asarray(shared_map, dtype=float))
            axes[i, -1].imshow(gray, cmap="gray", vmin=0, vmax=1)
            axes[i, -1].imshow(rescale(s), cmap="magma", alpha=0.65, vmin=0, vmax=1)
            if i == 0:
                axes[i, -1].set_title("GSA (one map,\nall images)", fontsize=8)
        if m_arr is not None:
            for ax in axes[i]:
                ax.contour(m_arr, levels=[0.5], colors="cyan", linewidths=0.7)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


#: The CNN hyper-parameters the paper's grids search (section 4.4); the rest of a setting is fixed.
_SEARCHED = ("hidden_channels", "l1_weight", "weight_decay")


def _format_params(params: Mapping[str, Any] | None, keys: Sequence[str] | None = None) -> str:
    if not params:
        return ""
    items = [(k, v) for k, v in params.items() if keys is None or k in keys]
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in items)


def baseline_summary(rows: Sequence[Mapping[str, Any]], dataset: str) -> pd.DataFrame:
    """One line per method of one dataset column of :func:`gsa_utils.runs.tables.build_table`.

    Returns
    -------
    pandas.DataFrame
        One row per Table 2 row label: ``accuracy %``, ``std``, ``epochs``, ``chosen setting``,
        ``p vs vanilla`` (GSA rows), ``profile`` and ``notes``.
    """
    out = []
    for row in rows:
        c = row.cells.get(dataset)
        if c is None or c.mean is None:
            continue
        out.append(
            {
                "method": row.shown_label,
                "accuracy %": c.mean,
                "std": np.nan if c.std is None else c.std,
                "epochs": c.n,
                "chosen setting": _format_params(c.best_params, None if row.method in PIXEL_METHODS else _SEARCHED),
                "p vs vanilla": np.nan if c.p_vs_vanilla is None else c.p_vs_vanilla,
                "profile": c.profile,
                "notes": "; ".join(c.notes),
            }
        )
    cols = ["accuracy %", "std", "epochs", "chosen setting", "p vs vanilla", "profile", "notes"]
    if not out:
        return pd.DataFrame(columns=cols)
    return pd.DataFrame(out).set_index("method")[cols]


def table_report(
    results_dir: str | os.PathLike, datasets: Sequence[str] | None = None, *, n_epochs: int = N_SELECTED_EPOCHS
) -> dict:
    """Table 2 from whatever ``results_dir`` holds, and plain sentences on what it is.

    Returns
    -------
    dict
        ``rows``, ``n_runs``, ``results`` (the runs), ``markdown`` (``None`` without results),
        ``profiles`` (profile label -> its ``"row / dataset"`` cells), ``message`` (one line;
        :data:`NO_RESULTS_MESSAGE` for an empty folder) and ``statements`` (one sentence per
        profile and data source).
    """
    results = load_results(results_dir)
    if not results:
        return {
            "rows": [],
            "n_runs": 0,
            "results": [],
            "markdown": None,
            "profiles": {},
            "message": f"{NO_RESULTS_MESSAGE} (nothing finished in {shown_path(results_dir)}).",
            "statements": [],
        }
    rows = build_table(results_dir, datasets, n_epochs=n_epochs, results=results)
    profiles: dict[str, list[str]] = {}
    sources: dict[str, set[str]] = {}
    for row in rows:
        for ds, c in row.cells.items():
            if c.mean is None:
                continue
            profiles.setdefault(c.profile or "unknown", []).append(f"{row.label} / {ds}")
            kind = (
                f"a synthetic stand-in for {c.stand_in_for}"
                if c.stand_in_for
                else "files on disk"
                if c.source == "real"
                else f"{c.source} data"
            )
            sources.setdefault(ds, set()).add(kind)
    n_cells = sum(len(v) for v in profiles.values())
    not_full = {label: cells for label, cells in profiles.items() if label != "full"}
    stand_in = sorted(ds for ds, kinds in sources.items() if any(k.startswith("a synthetic") for k in kinds))
    not_paper = sorted(ds for ds in sources if ds not in DATASET_COLUMNS)
    if n_cells == 0:
        message = (
            f"{len(results)} finished run(s) in {shown_path(results_dir)}, but no table cell could be computed "
            "(see the protocol notes)."
        )
    elif not_full and all(profile_base(p) == "smoke" for p in not_full) and len(not_full) == len(profiles):
        stand_ins = f", and synthetic stand-ins instead of the real data for {', '.join(stand_in)}" if stand_in else ""
        message = (
            f"Only smoke-profile results ({n_cells} cells from {len(results)} runs): tiny images, a few "
            f"epochs, small untrained networks{stand_ins}"
            + ". They show that the pipeline runs end to end; they do not reproduce the paper, and their "
            "numbers say nothing about it."
        )
    elif not_full or stand_in:
        n_bad = sum(len(v) for v in not_full.values())
        why = []
        if not_full:
            why.append(f"{n_bad} of {n_cells} cells come from settings other than the full profile")
        if stand_in:
            why.append(f"synthetic stand-ins replace the real data for {', '.join(stand_in)}")
        message = f"Not a reproduction of the paper: {'; '.join(why)}."
    elif not_paper and len(not_paper) == len(sources):
        message = (
            f"Full-profile results ({n_cells} cells), on datasets the paper did not use "
            f"({', '.join(not_paper)}): there is no paper figure to compare them with."
        )
    else:
        message = (
            f"Full-profile results on real data ({n_cells} cells): comparable with the paper's columns, "
            "bearing in mind the grid and seeds each cell was run with (see the notes)."
        )
    statements = [
        f"{label}: {len(cells)} cell(s) ({', '.join(cells[:4])}{' and more' if len(cells) > 4 else ''})"
        for label, cells in sorted(profiles.items())
    ]
    statements += [f"{ds}: {', '.join(sorted(kinds))}" for ds, kinds in sorted(sources.items())]
    return {
        "rows": rows,
        "n_runs": len(results),
        "results": results,
        "markdown": table_to_markdown(rows),
        "profiles": profiles,
        "message": message,
        "statements": statements,
    }


def check_table_csv(
    path: str | os.PathLike, rows: Sequence[Mapping[str, Any]], results: Sequence[Mapping[str, Any]]
) -> dict[str, int]:
    """Check the CSV of :func:`gsa_utils.runs.tables.table_to_csv` against the runs it came from."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path} was not written")
    with open(path, newline="", encoding="utf-8") as f:
        lines = list(csv.DictReader(f))
    if len(lines) != len(rows):
        raise ValueError(f"{path}: {len(lines)} rows, the table has {len(rows)}")
    by_label = {r.label: r for r in rows}
    counts = {"cells": 0, "smoke_cells": 0, "csv_rows": len(lines)}
    for line in lines:
        row = by_label.get(line["method"])
        if not (row is not None):
            raise ValueError(f"{path}: row {line['method']!r} is not in the table")
        for ds in row.cells:
            if not line[f"{ds} mean"]:
                continue
            counts["cells"] += 1
            label = line[f"{ds} profile"]
            if not (label):
                raise ValueError(f"{path}: {line['method']} / {ds} has a number but no profile")
            runs = [
                r
                for r in results
                if r.config.dataset == ds
                and r.config.method == row.method
                and (row.method not in BACKBONE_METHODS or r.config.backbone == row.backbone)
            ]
            if runs and all(r.config.profile == "smoke" for r in runs):
                counts["smoke_cells"] += 1
                if not (label.startswith("smoke")):
                    raise ValueError(f"{path}: {line['method']} / {ds} is a smoke result labelled {label!r}")
            if runs and all(r.dataset.get("source") == "synthetic" for r in runs):
                data = line[f"{ds} data"]
                if "synthetic" not in data:
                    raise ValueError(f"{path}: {line['method']} / {ds} uses synthetic data labelled {data!r}")
    return counts


def plot_table(
    rows: Sequence[Mapping[str, Any]], *, paper: bool = True, ncols: int = 3, size: tuple[float, float] = (5.2, 0.34)
):
    """Accuracy (mean, error bar = std over the selected epochs) per method, one panel per dataset."""
    plt = pyplot()
    cols = list(rows[0].cells) if rows else []
    panels = [ds for ds in cols if any(r.cells[ds].mean is not None for r in rows)]
    if not panels:
        return None
    colours = {"smoke": "0.45", "full": "tab:blue"}
    ncols = max(1, min(ncols, len(panels)))
    nrows = math.ceil(len(panels) / ncols)
    counts = [sum(r.cells[ds].mean is not None for r in rows) for ds in panels]
    heights = [max(counts[i * ncols : (i + 1) * ncols]) for i in range(nrows)]
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(size[0] * ncols, sum(1.3 + size[1] * h for h in heights) + 0.4),
        squeeze=False,
        gridspec_kw={"height_ratios": [1.3 + size[1] * h for h in heights]},
    )
    for ax in axes.ravel()[len(panels) :]:
        ax.set_visible(False)
    seen: dict[str, Any] = {}
    for ax, ds in zip(axes.ravel(), panels):
        shown = [r for r in rows if r.cells[ds].mean is not None]
        lo, hi = 100.0, 0.0
        for y, r in enumerate(reversed(shown)):
            c = r.cells[ds]
            base = profile_base(c.profile)
            std = c.std if c.std is not None and not math.isnan(c.std) else None
            h = ax.errorbar(c.mean, y, xerr=std, fmt="o", color=colours.get(base, "tab:orange"), capsize=3, ms=5)
            seen.setdefault(f"ours ({base})", h)
            lo, hi = min(lo, c.mean - (std or 0)), max(hi, c.mean + (std or 0))
            p = c.paper if paper else None
            if p is not None:
                hp = ax.errorbar(
                    p.mean, y - 0.3, xerr=p.std, fmt="D", mfc="none", color="black", capsize=2, ms=5, lw=0.8
                )
                seen.setdefault("paper (Table 2)", hp)
                lo, hi = min(lo, p.mean - (p.std or 0)), max(hi, p.mean + (p.std or 0))
        ax.set_ylim(-0.7, len(shown) - 0.4)
        ax.set_xlim(max(0.0, lo - 5), min(100.0, hi + 5))
        short = [
            r.shown_label.replace(" (with global attention)", " + GSA").replace(" (with L1)", " + L1")
            for r in reversed(shown)
        ]
        ax.set_yticks(range(len(shown)), short, fontsize=8)
        ax.set_xlabel("test accuracy %", fontsize=8)
        ax.set_title(ds + (f" (paper: {DATASET_COLUMNS[ds]})" if ds in DATASET_COLUMNS else ""), fontsize=9)
        ax.grid(alpha=0.3, axis="x")
    fig.legend(list(seen.values()), list(seen), loc="lower center", ncol=len(seen), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.4 / fig.get_figheight(), 1, 1))
    return fig


def plot_epoch_selection(val_acc: np.ndarray, test_acc: np.ndarray, epochs: np.ndarray, reported: float):
    """The validation curves of the folds, the test curve, and the epochs the protocol measured."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    ep = np.arange(1, val_acc.shape[1] + 1)
    folds = f"validation, {len(val_acc)} folds"
    ax.fill_between(ep, val_acc.min(0), val_acc.max(0), color="tab:blue", alpha=0.2, label=folds)
    ax.plot(ep, val_acc.mean(0), "o-", color="tab:blue", label="validation, mean over folds")
    ax.plot(ep, test_acc, "s--", color="tab:gray", label="test (whole training set)")
    selected = dict(color="tab:red", ms=9, mfc="none", label="measured: selected epochs")
    ax.plot(epochs, test_acc[np.asarray(epochs) - 1], "s", **selected)
    ax.axhline(reported, color="tab:red", lw=1, ls=":")
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy")
    ax.set_xticks(ep)
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
