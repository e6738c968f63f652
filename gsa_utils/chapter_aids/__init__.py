"""Chapter presentation: figures, tables and teaching helpers that the method never imports."""

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
