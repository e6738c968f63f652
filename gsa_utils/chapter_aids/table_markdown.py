"""Table 2 in a notebook: :func:`display_table` shows :func:`~gsa_utils.runs.markdown.table_to_markdown`'s table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..runs.config import profile_base
from ..runs.markdown import PAPER_TABLE_CAPTION, paper_table_to_markdown, table_to_markdown
from ..runs.tables import TableRow

__all__ = ["table_to_markdown", "paper_table_to_markdown", "PAPER_TABLE_CAPTION", "display_table", "profile_base"]


def display_table(rows: Sequence[TableRow], **kwargs: Any) -> Any:
    """``IPython.display.Markdown`` of :func:`table_to_markdown` (the string when IPython is absent)."""
    text = table_to_markdown(rows, **kwargs)
    try:
        from IPython.display import Markdown
    except ImportError:
        return text
    return Markdown(text)
