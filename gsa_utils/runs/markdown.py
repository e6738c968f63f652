"""Table 2 as Markdown: the paper's, and ours from :func:`~gsa_utils.runs.tables.build_table`."""

from __future__ import annotations

from collections.abc import Sequence

from ..metrics import FLAT_CONTRAST
from ..protocol import SIGNIFICANCE_LEVEL
from .config import profile_base
from .paper_table import DATASET_COLUMNS, PAPER_COLUMNS, PAPER_TABLE2
from .tables import L1_MARKER, VANILLA_MARKER, TableRow, columns_of

__all__ = ["table_to_markdown", "paper_table_to_markdown", "PAPER_TABLE_CAPTION"]


def _md_escape(text: str) -> str:
    """Text for a Markdown table cell or line: ``|``, ``*`` and ``$`` (MyST reads ``$...$`` as maths) escaped."""
    return text.replace("|", "\\|").replace("*", "\\*").replace("$", "\\$")


def _shorten(items: Sequence[str], n: int = 4) -> str:
    return ", ".join(items[:n]) + (f" and {len(items) - n} more" if len(items) > n else "")


def table_to_markdown(
    rows: Sequence[TableRow], *, paper: bool = True, footnotes: bool = True, caption: str | None = None
) -> str:
    """Render :func:`build_table` rows as a Markdown table, the paper's figures beside ours, with footnotes.

    Introduced in chapter 10 (``10_baselines``). The first line says when the table is not a
    reproduction (results outside the ``full`` profile, or on a stand-in); the footnotes give the
    markers, each result's profile, the data and the protocol's notes.
    """
    cols = columns_of(rows)
    if not rows:
        return "_No results._"
    if caption:
        return f"**{_md_escape(caption)}**\n\n" + table_to_markdown(rows, paper=paper, footnotes=footnotes)
    profiles = sorted({c.profile for r in rows for c in r.cells.values() if c.profile})
    bases = sorted({profile_base(p) for p in profiles})
    tag_cells = len(bases) > 1
    header = ["Accuracy % (std)"]
    for ds in cols:
        if paper and ds in DATASET_COLUMNS:
            header += [f"{ds}: ours", f"{DATASET_COLUMNS[ds]}: paper"]
        else:
            header.append(ds)
    lines = ["| " + " | ".join(_md_escape(h) for h in header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [_md_escape(row.shown_label)]
        for ds in cols:
            c = row.cells[ds]
            tagged = tag_cells and c.profile and c.mean is not None
            text = c.text + (f" [{profile_base(c.profile)}]" if tagged else "")
            text += f" (collapsed {c.collapsed}/{c.checked})" if c.collapsed else ""
            text += f" (flat {c.flat}/{c.checked})" if c.flat else ""
            cells.append(_md_escape(text))
            if paper and ds in DATASET_COLUMNS:
                cells.append(_md_escape(c.paper_text or "—"))
        lines.append("| " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    if not footnotes:
        return table

    used = [c for r in rows for c in r.cells.values() if c.mean is not None]
    stand_ins = sorted({c.stand_in_for for c in used if c.stand_in_for})
    not_full = sorted({profile_base(c.profile) for c in used if c.profile != "full"}, key=str)
    head = []
    if not used:
        head.append("**No finished results yet**: only the paper's figures are shown.")
    elif not_full or stand_ins:
        why = []
        if not_full:
            kinds = [
                f"the {p!r} profile" if p != "full" else "the 'full' profile with settings changed" for p in not_full
            ]
            why.append(f"results produced with {' and '.join(kinds)} (see below), not the paper's settings")
        if stand_ins:
            why.append(f"synthetic stand-ins instead of the real data for {', '.join(stand_ins)}")
        head.append(
            f"**Not a reproduction of the paper**: {'; '.join(why)}. Compare the numbers only with each "
            "other, not with the paper's column."
        )
    notes = [
        f"{VANILLA_MARKER}: global attention differs from the vanilla CNN with the same backbone, "
        f"{L1_MARKER}: from the L1 baseline (Welch t-test, p < {SIGNIFICANCE_LEVEL:g}: over seeds where both "
        f"have several, else over the measured epochs of one run each; each cell's notes say which). In the "
        "paper's columns, * is the paper's own marker (global attention vs L1); its bold marks (global "
        "attention vs vanilla) are lost in the text version of the paper. Mean (sample std) over the selected "
        "epochs; LR and SVM give one number."
    ]
    if any(c.collapsed for c in used):
        notes.append(
            "(collapsed k/n): k of the n full-training runs ended collapsed (map more than 90% "
            "saturated, or predictions of one class at chance-level loss three epochs running)."
        )
    if any(c.flat for c in used):
        notes.append(
            f"(flat k/n): k of the n full-training runs ended phase 1 with a flat map (contrast "
            f"(p95 - p5) / mean below {FLAT_CONTRAST}: it weights every pixel almost alike)."
        )
    if tag_cells:
        notes.append(f"Results come from different profiles ({', '.join(bases)}): each cell names its own.")
    by_label: dict[str, list[str]] = {}
    for r in rows:
        for ds in cols:
            c = r.cells[ds]
            if c.profile and c.mean is not None:
                by_label.setdefault(c.profile, []).append(r.label if len(cols) == 1 else f"{r.label} / {ds}")
    for label, where in by_label.items():
        scope = "every result" if len(by_label) == 1 else _shorten(where)
        notes.append(f"Profile of {scope}: {label}.")
    for ds in cols:
        statements = sorted({c.statement for r in rows for c in [r.cells[ds]] if c.statement})
        for st in statements:
            notes.append(st if st.startswith(f"{ds}:") else f"{ds}: {st}")
    seen: dict[str, list[str]] = {}
    for r in rows:
        for ds in cols:
            c = r.cells[ds]
            if c.mean is None and c.notes == ["no finished runs"]:
                continue
            for note in c.notes:
                seen.setdefault(note, []).append(f"{r.label} / {ds}")
    for note, where in seen.items():
        notes.append(f"Protocol note ({_shorten(where)}): {note}.")
    body = "\n".join("- " + _md_escape(n) for n in notes)
    return "\n\n".join(head + [table, body])


#: The caption of :func:`paper_table_to_markdown`.
PAPER_TABLE_CAPTION = "The paper's Table 2 (Xu et al. 2020): test accuracy %, standard deviation in parentheses"


def paper_table_to_markdown() -> str:
    """The paper's Table 2 alone, as Markdown, under its caption (``*`` as printed; bold marks lost).

    Introduced in chapter 10 (``10_baselines``).
    """
    header = ["Accuracy % (std)"] + list(PAPER_COLUMNS)
    lines = [f"**{PAPER_TABLE_CAPTION}**", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, cells in PAPER_TABLE2.items():
        lines.append("| " + " | ".join([label] + [_md_escape(str(cells[c])) for c in PAPER_COLUMNS]) + " |")
    return "\n".join(lines)
