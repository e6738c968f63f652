"""Table 2 built from a results folder, beside the paper's (:mod:`gsa_utils.runs.paper_table`).

Introduced in chapter 10 (``10_baselines``). :func:`build_table` applies the protocol
(:func:`gsa_utils.runs.summary.protocol_summary`) to every (method, backbone) x dataset and marks
the GSA cells: ``†`` where GSA differs from the vanilla CNN with the same backbone (Welch t-test;
the paper's bold), ``*`` where it differs from the L1 baseline.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..data.registry import normalise_dataset_name
from ..files import write_atomic
from ..protocol import N_SELECTED_EPOCHS, SIGNIFICANCE_LEVEL, t_test
from ..settings import PAPER_BACKBONES
from .config import BACKBONE_METHODS
from .paper_table import DATASET_COLUMNS, PAPER_COLUMNS, PAPER_ROWS, PAPER_TABLE2, PaperCell
from .store import RunRecord, corrupt_results, data_source, load_results
from .summary import cell_runs, protocol_summary

__all__ = [
    "PaperCell",
    "TableCell",
    "TableRow",
    "PAPER_COLUMNS",
    "PAPER_ROWS",
    "PAPER_TABLE2",
    "DATASET_COLUMNS",
    "BACKBONE_LABELS",
    "VANILLA_MARKER",
    "L1_MARKER",
    "row_label",
    "build_table",
    "table_to_csv",
    "rows_of_dataset",
    "columns_of",
]

#: Marker for "GSA differs from the vanilla CNN" (the paper uses bold, lost in its text version).
VANILLA_MARKER = "†"
#: Marker for "GSA differs from the L1 baseline" (the paper's ``*``).
L1_MARKER = "*"


#: Backbone name -> the paper's spelling (ours for backbones it did not use).
BACKBONE_LABELS = {
    "googlenet": "GoogleNet",
    "vgg16": "VGG-16",
    "resnet152": "ResNet-152",
    "densenet161": "DenseNet-161",
    "resnet18": "ResNet-18",
    "small_cnn": "SmallCNN",
}
_SINGLE_ROWS = (("lr", None), ("svm", None), ("vgg_att3", None), ("resattnet92", None))
_SINGLE_LABELS = {"lr": "LR", "svm": "SVM", "vgg_att3": "VGG-att3", "resattnet92": "ResAttNet-92"}


@dataclass
class TableCell:
    """One cell of Table 2 built from runs: the protocol's number (in percent) and where it came from.

    Attributes
    ----------
    n
        Number of test accuracies behind it.
    markers, text
        ``†``, ``*``, and the printed cell, e.g. ``"83.61 (2.43)†*"``.
    p_vs_vanilla, p_vs_l1
        p-values of the t-tests behind the markers (GSA rows only).
    paper, paper_text
        The paper's figure (:class:`PaperCell`, or ``None``) and its printed form.
    collapsed, flat, checked
        Of the ``checked`` full-training runs that recorded it, how many ended collapsed and how
        many ended phase 1 with a flat map (:mod:`gsa_utils.stability`).
    """

    mean: float | None = None
    std: float | None = None
    n: int = 0
    markers: str = ""
    text: str = ""
    p_vs_vanilla: float | None = None
    p_vs_l1: float | None = None
    profile: str | None = None
    source: str | None = None
    stand_in_for: str | None = None
    statement: str | None = None
    best_params: dict | None = None
    epochs: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    paper: PaperCell | None = None
    paper_text: str = ""
    collapsed: int = 0
    flat: int = 0
    checked: int = 0


@dataclass
class TableRow:
    """One row of Table 2: a method (and backbone, and GSA's recipe), one :class:`TableCell` per dataset."""

    label: str
    method: str
    backbone: str | None
    cells: dict[str, TableCell]
    data: str | None = None
    recipe: str | None = None

    @property
    def shown_label(self) -> str:
        """The label with GSA's recipe, e.g. ``"VGG-16 (with global attention) [recipe: paper]"``."""
        return self.label + (f" [recipe: {self.recipe}]" if self.recipe else "")


def _collapse_count(runs: Sequence[RunRecord]) -> tuple[int, int, int]:
    """(collapsed, flat, checked) over the full-training runs whose history records ``collapsed``."""
    last = [
        r.history.records[-1]
        for r in runs
        if r.config.fold is None and r.history.records and "collapsed" in r.history.records[-1]
    ]
    return sum(bool(rec["collapsed"]) for rec in last), sum(bool(rec.get("flat")) for rec in last), len(last)


def row_label(method: str, backbone: str | None = None) -> str:
    """The Table 2 row of a (method, backbone), e.g. ``("gsa", "vgg16")`` -> ``"VGG-16 (with global attention)"``.

    Introduced in chapter 10 (``10_baselines``).
    """
    if method in _SINGLE_LABELS:
        return _SINGLE_LABELS[method]
    name = BACKBONE_LABELS.get(backbone or "", backbone or "?")
    return {"vanilla": name, "l1": f"{name} (with L1)", "gsa": f"{name} (with global attention)"}[method]


def _dataset_order(names: set[str]) -> list[str]:
    paper = [d for d in DATASET_COLUMNS if d in names]
    return paper + sorted(names - set(paper))


def _row_keys(present: set[tuple[str, str | None]], with_paper_rows: bool) -> list[tuple[str, str | None]]:
    backbones = {b for m, b in present if b is not None}
    if with_paper_rows:
        backbones |= set(PAPER_BACKBONES)
    order = [b for b in BACKBONE_LABELS if b in backbones] + sorted(backbones - set(BACKBONE_LABELS))
    keys = [k for k in _SINGLE_ROWS if with_paper_rows or k in present]
    for b in order:
        for m in ("vanilla", "l1", "gsa"):
            if (m, b) in present or (with_paper_rows and b in PAPER_BACKBONES):
                keys.append((m, b))
    return keys


def _to_percent(x: float | None) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else 100.0 * float(x)


def _cell_text(mean: float | None, std: float | None, markers: str = "") -> str:
    if mean is None:
        return "—"
    return f"{mean:.2f}" + ("" if std is None else f" ({std:.2f})") + markers


def build_table(
    results_dir: str | os.PathLike,
    datasets: Sequence[str] | None = None,
    *,
    n_epochs: int = N_SELECTED_EPOCHS,
    alpha: float = SIGNIFICANCE_LEVEL,
    paper_rows: bool | None = None,
    results: Sequence[RunRecord] | None = None,
) -> list[TableRow]:
    """Table 2 from a results folder: methods as rows (in the paper's order), datasets as columns.

    Introduced in chapter 10 (``10_baselines``).

    Parameters
    ----------
    datasets
        Columns, in order (default: every dataset with results, the paper's first).
    paper_rows
        Also list the paper's rows without a result (default: when a column has a paper counterpart).
    results
        Already loaded runs (``results_dir`` is then ignored).

    Returns
    -------
    list of TableRow
        Each kind of data (real, stand-in: :func:`~gsa_utils.runs.store.data_source`) gets its own rows,
        labelled e.g. ``"SmallCNN [stand-in data]"``; the paper's figures stand beside real data only.
        A corrupt result is named in a note of its cell.
    """
    pool = list(results) if results is not None else load_results(results_dir)
    corrupt = corrupt_results(results_dir) if results is None else []
    names = {r.config.dataset for r in pool} | {c.dataset for _, c, _ in corrupt if c is not None}
    cols = [normalise_dataset_name(d) for d in datasets] if datasets is not None else _dataset_order(names)
    if paper_rows is None:
        paper_rows = any(d in DATASET_COLUMNS for d in cols)
    by_source: dict[str, list[RunRecord]] = {}
    for r in pool:
        if r.config.dataset in cols:  # only the columns shown decide which kinds of data mix
            by_source.setdefault(data_source(r.dataset), []).append(r)
    order = sorted(by_source, key=lambda k: (["real", "synthetic", "stand-in"] + [k]).index(k)) or ["real"]
    rows: list[TableRow] = []
    for i, source in enumerate(order):
        # the paper's figures stand beside results on the real data only, never beside a stand-in's
        part = _source_rows(
            results_dir,
            by_source.get(source, []),
            cols,
            n_epochs=n_epochs,
            alpha=alpha,
            paper_rows=paper_rows and i == 0,
            corrupt=corrupt if i == 0 else [],
            paper_figures=source in ("real", "unknown") or not by_source,
        )
        for row in part:
            row.data = source if by_source else None
            if len(order) > 1:
                row.label = f"{row.label} [{source} data]"
        rows += part
    return rows


def _key_of(config: Any) -> tuple[str, str | None]:
    return config.method, config.backbone if config.method in BACKBONE_METHODS else None


def _source_rows(
    results_dir: str | os.PathLike,
    pool: list[RunRecord],
    cols: list[str],
    *,
    n_epochs: int,
    alpha: float,
    paper_rows: bool,
    corrupt: Sequence[tuple[Path, Any, Exception]],
    paper_figures: bool = True,
) -> list[TableRow]:
    """:func:`build_table`'s rows for runs on one kind of data."""
    present = {_key_of(r.config) for r in pool if r.config.dataset in cols}
    present |= {_key_of(c) for _, c, _ in corrupt if c is not None and c.dataset in cols}
    keys = []
    for method, backbone in _row_keys(present, paper_rows):  # GSA: one row per recipe, never pooled
        recipes = sorted(
            {
                r.config.recipe.name
                for r in pool
                if r.config.dataset in cols
                and r.config.method == method
                and r.config.backbone == backbone
                and r.config.recipe
            }
        )
        keys += [(method, backbone, recipe) for recipe in (recipes or [None])]

    def runs_of(method: str, backbone: str | None, recipe: str | None) -> list[RunRecord]:
        return [r for r in pool if recipe is None or r.config.method != method or r.config.recipe.name == recipe]

    summaries: dict[tuple[str, str | None, str], dict] = {}
    rows = []
    for method, backbone, recipe in keys:  # vanilla and L1 come before GSA in every backbone's rows
        for ds in cols:
            summaries[(method, backbone, ds)] = protocol_summary(
                results_dir, ds, method, backbone, n_epochs=n_epochs, results=runs_of(method, backbone, recipe)
            )
        base_label = label = row_label(method, backbone)
        cells = {}
        for ds in cols:
            s = summaries[(method, backbone, ds)]
            markers, p_values, test_notes = "", {}, []
            if method == "gsa" and s.mean is not None:
                for other, marker in (("vanilla", VANILLA_MARKER), ("l1", L1_MARKER)):
                    o = summaries.get((other, backbone, ds))
                    if o is None or o.mean is None or len(o.samples) < 2 or len(s.samples) < 2:
                        continue
                    over = _test_kind(s, o)
                    if over is None:
                        test_notes.append(
                            f"no test against {other}: one side has several seeds "
                            f"({len(s.seeds)} and {len(o.seeds)}), the other one"
                        )
                        continue
                    test_notes.append(f"{marker} vs {other}: {over}")
                    p = p_values[other] = t_test(s.samples, o.samples)
                    if not math.isnan(p) and p < alpha:
                        markers += marker
            mean, std = _to_percent(s.mean), _to_percent(s.std)
            paper = PAPER_TABLE2.get(base_label, {}).get(DATASET_COLUMNS.get(ds, "")) if paper_figures else None
            collapsed, flat, checked = _collapse_count(
                cell_runs(runs_of(method, backbone, recipe), ds, method, backbone)
            )
            cells[ds] = TableCell(
                mean=mean,
                std=std,
                n=len(s.samples),
                markers=markers,
                text=_cell_text(mean, std, markers),
                p_vs_vanilla=p_values.get("vanilla"),
                p_vs_l1=p_values.get("l1"),
                profile=s.profile,
                source=s.dataset_source,
                stand_in_for=s.stand_in_for,
                statement=s.dataset_statement,
                best_params=s.best_params,
                epochs=s.epochs,
                notes=list(s.notes) + test_notes,
                paper=paper,
                paper_text="" if paper is None else str(paper),
                collapsed=collapsed,
                flat=flat,
                checked=checked,
            )
        rows.append(TableRow(label=label, method=method, backbone=backbone, cells=cells, recipe=recipe))
    for _run_dir, config, err in corrupt:
        row = next((r for r in rows if config is not None and (r.method, r.backbone) == _key_of(config)), None)
        cell = row.cells.get(config.dataset) if row is not None else None
        note = f"corrupt result left out: {err.path} ({err.fault}); running the sweep again re-runs it"
        (cell.notes if cell is not None else rows[0].cells[cols[0]].notes if rows and cols else []).append(note)
    return rows


def _test_kind(a: Any, b: Any) -> str | None:
    """Which samples the t-test of two summaries compares, in words; ``None`` when they are not alike."""
    if len(a.seeds) > 1 and len(b.seeds) > 1:
        return f"Welch t-test over seeds ({len(a.seeds)} and {len(b.seeds)})"
    if len(a.seeds) <= 1 and len(b.seeds) <= 1:
        return (
            "Welch t-test over the measured epochs of one run each (epochs are not independent draws: the "
            "p-value is optimistic; several seeds give a test over seeds)"
        )
    return None


def columns_of(rows: Sequence[TableRow]) -> list[str]:
    return list(rows[0].cells) if rows else []


def table_to_csv(rows: Sequence[TableRow], path: str | os.PathLike) -> Path:
    """Write :func:`build_table` rows as CSV, atomically: per dataset :data:`CSV_COLUMNS`, last GSA's recipe.

    Introduced in chapter 10 (``10_baselines``).
    """
    cols = columns_of(rows)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["method"] + [f"{ds} {name}" for ds in cols for name in CSV_COLUMNS] + ["recipe"])
    for row in rows:
        cells = [show(row.cells[ds]) for ds in cols for show in CSV_COLUMNS.values()]
        w.writerow([row.label] + cells + [row.recipe or ""])
    path = Path(path)
    write_atomic(path, buf.getvalue().encode())
    return path


def _number(x: float | None) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.6g}"


def _data(cell: TableCell) -> str:
    if cell.source is None:
        return ""
    return f"synthetic stand-in for {cell.stand_in_for}" if cell.stand_in_for else cell.source


#: The CSV's columns for each dataset, and how each is written from a cell.
CSV_COLUMNS: dict[str, Callable[[TableCell], str]] = {
    "mean": lambda c: _number(c.mean),
    "std": lambda c: _number(c.std),
    "n": lambda c: str(c.n),
    "markers": lambda c: c.markers,
    "p vs vanilla": lambda c: _number(c.p_vs_vanilla),
    "p vs L1": lambda c: _number(c.p_vs_l1),
    "profile": lambda c: c.profile or "",
    "data": _data,
    "paper": lambda c: c.paper_text,
    "collapsed": lambda c: str(c.collapsed),
    "flat": lambda c: str(c.flat),
    "runs checked": lambda c: str(c.checked),
}


def rows_of_dataset(rows: Sequence[TableRow], dataset: str) -> list[TableRow]:
    """The rows of one column (``dataset``), for a table narrow enough for a page."""
    return [replace(row, cells={dataset: row.cells[dataset]}) for row in rows if dataset in row.cells]
