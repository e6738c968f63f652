"""Table 2 as Markdown: see :mod:`gsa_utils.runs.markdown`."""

from ..runs.markdown import paper_table_to_markdown

__all__ = ["paper_table_to_markdown"]
