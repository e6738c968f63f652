"""The results section of a dataset chapter: its tables, its accuracy figure, its sentences and its maps."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .chapters import ChapterResults
from .figures import check_attention_map, map_verdict, plot_accuracy, show_attention
from .plotting import pyplot
from .summaries import compare_methods, format_summary, summary_table, train_test_warnings

#: The columns of the one-row-per-run table a chapter shows.
RUN_COLUMNS = ("dataset", "backbone", "method", "seed", "final_acc", "tail_acc", "best_acc", "seconds", "profile")


def show_results(results: ChapterResults, chance: float | Mapping[str, float]) -> None:
    """Display the summary over seeds, one row per run, the chance level and the accuracy figure."""
    from IPython.display import display

    table = results.table
    display(format_summary(summary_table(table)))
    several = table["dataset"].nunique() > 1
    columns = [c for c in RUN_COLUMNS if several or c != "dataset"]
    display(table[columns].round(3))
    if isinstance(chance, Mapping):
        print("chance:", {name: f"{100 * c:.1f}%" for name, c in chance.items()})
    else:
        print(f"chance: {100 * chance:.1f}%")
    plot_accuracy(table, chance)
    pyplot().show()


def print_comparison(results: ChapterResults, chance: float | Mapping[str, float]) -> list[str]:
    """Print and return one sentence per data set and backbone comparing GSA with vanilla, then any warnings."""
    sentences = compare_methods(results.table, chance)
    print("\n".join(sentences))
    for warning in train_test_warnings(results.runs, chance):
        print("warning:", warning)
    return sentences


def learned_maps(
    results: ChapterResults, dataset: str, backbones: Sequence[str], image_shape: Sequence[int]
) -> dict[str, np.ndarray]:
    """Backbone -> the learned GSA map of its first seed, checked to be one H x W map in [0, 1]."""
    return {bb: check_attention_map(results.attention_map(dataset, bb), image_shape) for bb in backbones}


def show_learned_maps(
    maps: Mapping[str, np.ndarray], mask=None, *, image=None, product: str | None = None, title: str, prefix: str = ""
) -> dict[str, float]:
    """Show the maps (:func:`~gsa_utils.chapter_aids.figures.show_attention`), then print a verdict per map."""
    _, aucs = show_attention(maps, image=image, mask=mask, product=product, title=title)
    pyplot().show()
    for name, amap in maps.items():
        print(f"{prefix}{name}: {map_verdict(amap, mask)}")
    return aucs
