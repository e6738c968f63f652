"""What every chapter page gets from gsa_utils.chapter_aids.page: warnings once, described figures."""

from __future__ import annotations

import io
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from gsa_utils.chapter_aids import page  # noqa: E402


@pytest.fixture
def fresh_page(monkeypatch):
    monkeypatch.setattr(page, "_first", {})
    monkeypatch.setattr(page, "_counts", page.Counter())
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        yield page


def _epoch_warning(i):
    warnings.warn(f"epoch {i}: the run collapsed", UserWarning, stacklevel=2)


def test_a_warning_kind_is_shown_once_without_its_module_path(fresh_page):
    stream = io.StringIO()
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = lambda *a, **k: fresh_page.show_warning_once(*a[:4], file=stream)
        for i in range(5):
            _epoch_warning(i)
        warnings.warn("another kind", RuntimeWarning, stacklevel=2)
    lines = stream.getvalue().splitlines()
    assert [line.split(" (")[0] for line in lines] == [
        "UserWarning: epoch 0: the run collapsed",
        "RuntimeWarning: another kind",
    ]
    assert __file__ not in stream.getvalue() and "warnings.warn" not in stream.getvalue()
    assert fresh_page.warning_counts()["UserWarning: epoch 0: the run collapsed"] == 5


def test_figure_alt_text_says_what_the_figure_shows():
    fig, axes = plt.subplots(1, 3)
    fig.suptitle("Map during training")
    axes[0].set_title("epoch 1")
    axes[1].plot([0, 1])
    axes[1].set_xlabel("epoch")
    axes[1].set_ylabel("test accuracy")
    axes[2].imshow([[0, 1]])
    assert page.figure_alt_text(fig) == (
        "Figure: Map during training. Panels: epoch 1; test accuracy against epoch; an image."
    )
    plt.close(fig)
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    assert page.figure_alt_text(fig) == "Figure: loss against epoch."
    plt.close(fig)


def test_inline_figures_carry_their_alt_text_in_the_output_metadata(fresh_page):
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.core.pylabtools import select_figure_formats

    shell = InteractiveShell.instance()
    select_figure_formats(shell, {"png"})
    fresh_page.prepare_page(shell)
    fresh_page.prepare_page(shell)  # twice: still one wrapper
    fig, ax = plt.subplots()
    ax.set_title("Sample images")
    ax.imshow([[0, 1]])
    data, metadata = shell.display_formatter.format(fig)
    plt.close(fig)
    assert "image/png" in data and metadata["image/png"] == {"alt": "Figure: Sample images."}
