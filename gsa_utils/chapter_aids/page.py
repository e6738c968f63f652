"""What a chapter's page shows besides its own outputs: warnings once per kind, figures described.

Every chapter's first code cell runs ``%load_ext gsa_utils.chapter_aids.page`` (:func:`prepare_page`):
a warning prints as ``Category: message``, once per kind (later ones are only counted), and every
matplotlib figure's PNG carries an alt text built from its titles and axis labels.
"""

from __future__ import annotations

import sys
import warnings
from collections import Counter

#: Alt texts longer than this are cut (screen readers read all of it).
MAX_ALT = 400

#: How many warnings of each kind, by the kind's first line.
_counts: Counter = Counter()


def warning_counts() -> dict[str, int]:
    """How many warnings of each kind this chapter issued, by ``"Category: first message"``."""
    return dict(_counts)


#: The first message of each kind (category, file, line) seen in this chapter.
_first: dict[tuple[str, str, int], str] = {}


def show_warning_once(message, category, filename, lineno, file=None, line=None) -> None:
    """A ``warnings.showwarning`` that prints each kind once, as ``Category: message``."""
    first = _first.setdefault((category.__name__, filename, lineno), f"{category.__name__}: {message}")
    _counts[first] += 1
    if _counts[first] > 1:
        return
    stream = file if file is not None else sys.stderr
    try:
        stream.write(f"{first} (later warnings of this kind in this chapter are not shown)\n")
    except (OSError, ValueError):  # a closed stream: nothing to show it on
        pass


def figure_alt_text(figure) -> str:
    """A sentence saying what a matplotlib figure shows, from its title, panel titles and axes."""
    title = figure._suptitle.get_text().strip() if getattr(figure, "_suptitle", None) else ""
    panels: list[str] = []
    for ax in figure.get_axes():
        if not ax.get_visible() or ax.get_label() == "<colorbar>":
            continue
        text = ax.get_title().strip() or ax.get_title(loc="left").strip()
        if not text and (ax.get_xlabel() or ax.get_ylabel()):
            text = (
                f"{ax.get_ylabel()} against {ax.get_xlabel()}"
                if ax.get_xlabel() and ax.get_ylabel()
                else ax.get_ylabel() or ax.get_xlabel()
            )
        if not text:
            text = "an image" if ax.images else "a plot" if ax.lines or ax.collections or ax.patches else ""
        if text and text not in panels:
            panels.append(" ".join(text.split()))
    if not title and len(panels) == 1:
        alt = f"Figure: {panels[0]}."
    else:
        alt = f"Figure: {title or f'{len(panels)} panels'}." + (f" Panels: {'; '.join(panels)}." if panels else "")
    return alt if len(alt) <= MAX_ALT else alt[: MAX_ALT - 1].rstrip() + "…"


def _with_alt(render):
    """Wrap a figure formatter so that its output carries the figure's alt text."""

    def render_with_alt(figure):
        data = render(figure)
        if data is None or isinstance(data, tuple):
            return data
        return data, {"alt": figure_alt_text(figure)}

    render_with_alt.renders_alt = True
    return render_with_alt


def prepare_page(shell=None) -> None:
    """Warnings once per kind without module paths, and alt text on figures (see the module docstring)."""
    warnings.showwarning = show_warning_once
    if shell is None:
        try:
            from IPython import get_ipython
        except ImportError:
            return
        shell = get_ipython()
    if shell is None:
        return
    from matplotlib.figure import Figure

    png = shell.display_formatter.formatters["image/png"]
    try:
        render = png.lookup_by_type(Figure)
    except KeyError:  # no inline figures: nothing to describe
        return
    if not getattr(render, "renders_alt", False):
        png.for_type(Figure, _with_alt(render))


def load_ipython_extension(shell) -> None:
    """``%load_ext gsa_utils.chapter_aids.page``: :func:`prepare_page` for this kernel."""
    prepare_page(shell)
