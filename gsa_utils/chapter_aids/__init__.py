"""Chapter presentation: figures, tables and teaching helpers that the method never imports.

:mod:`~gsa_utils.chapter_aids.structure` (chapter 1), :mod:`~gsa_utils.chapter_aids.teaching`
(chapters 2-4), :mod:`~gsa_utils.chapter_aids.chapters`, :mod:`~gsa_utils.chapter_aids.summaries`,
:mod:`~gsa_utils.chapter_aids.figures` and :mod:`~gsa_utils.chapter_aids.report` (dataset chapters 6-9),
:mod:`~gsa_utils.chapter_aids.baselines_view` (chapters 10-11),
:mod:`~gsa_utils.chapter_aids.plotting` (matplotlib figures for all) and
:mod:`~gsa_utils.chapter_aids.page` (every chapter: warnings once per kind, figures with alt text).
The helpers most chapters call are re-exported here.
"""

from .chapters import chapter_configs, default_results_dir, run_chapter
from .plotting import (
    draw_pixel_cnn,
    plot_curves,
    plot_seed_comparison,
    plot_value_histograms,
    show_images,
    show_maps,
)
from .stability_view import variant_table
from .structure import random_misalign
from .table_markdown import display_table, paper_table_to_markdown, table_to_markdown

__all__ = [
    "chapter_configs",
    "default_results_dir",
    "run_chapter",
    "draw_pixel_cnn",
    "plot_curves",
    "plot_seed_comparison",
    "plot_value_histograms",
    "show_images",
    "show_maps",
    "variant_table",
    "random_misalign",
    "display_table",
    "paper_table_to_markdown",
    "table_to_markdown",
]
