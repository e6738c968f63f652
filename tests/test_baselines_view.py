"""Views of chapters 10 and 11: local-attention spread and figure, Table 2 report, CSV check, accuracy plot."""

import numpy as np
import pytest
import torch
from conftest import finished_history

from gsa_utils.chapter_aids.baselines_view import (
    NO_RESULTS_MESSAGE,
    across_image_spread,
    baseline_summary,
    check_table_csv,
    plot_local_attention,
    plot_table,
    table_report,
    upsample_maps,
)
from gsa_utils.history import History
from gsa_utils.runs import ExperimentConfig, save_result
from gsa_utils.runs.tables import table_to_csv


# ---- local attention --------------------------------------------------------------------------
def test_upsample_maps_shape_and_values():
    maps = torch.arange(8, dtype=torch.float32).reshape(2, 2, 2)
    up = upsample_maps(maps, 8)
    assert up.shape == (2, 8, 8) and up.dtype == np.float64
    assert up[0].min() >= 0 and up[0].max() <= 3 and up[1].min() >= 4  # interpolation stays within each map
    assert upsample_maps(np.ones((1, 3, 3)), (6, 4)).shape == (1, 6, 4)
    with pytest.raises(ValueError, match="N x h x w"):
        upsample_maps(np.ones((3, 3)), 6)


def test_across_image_spread_identical_and_opposite_maps():
    rng = np.random.default_rng(0)
    shared = rng.random((5, 5))
    same = across_image_spread(np.stack([shared] * 4))
    assert same["mean_correlation"] == pytest.approx(1.0) and same["relative_std"] == pytest.approx(0.0)
    assert same["n_images"] == 4
    opposite = across_image_spread(np.stack([shared, 1 - shared]))
    assert opposite["mean_correlation"] == pytest.approx(-1.0)
    assert opposite["relative_std"] > 0.1
    noisy = across_image_spread(rng.random((6, 5, 5)))
    assert abs(noisy["mean_correlation"]) < 0.5 and noisy["relative_std"] > 0.2
    const = across_image_spread(np.stack([np.ones((3, 3)), np.ones((3, 3))]))
    assert const["mean_correlation"] == 1.0 and const["relative_std"] == 0.0
    with pytest.raises(ValueError, match="N >= 2"):
        across_image_spread(np.ones((1, 3, 3)))
    with pytest.raises(ValueError, match="NaN"):
        across_image_spread(np.full((2, 3, 3), np.nan))


def test_plot_local_attention_layout():
    import matplotlib

    matplotlib.use("Agg")
    images = torch.rand(2, 3, 16, 16)
    levels = [torch.rand(2, 4, 4), torch.rand(2, 2, 2), torch.rand(2, 1, 1)]
    mask = np.zeros((16, 16), bool)
    mask[2:6, 2:6] = True
    fig = plot_local_attention(
        images, levels, shared_map=np.random.rand(16, 16), mask=mask, level_names=["a", "b", "c"], labels=["x", "y"]
    )
    assert len(fig.axes) == 2 * 5
    assert fig.axes[1].get_title() == "a" and fig.axes[0].get_title() == "x"
    matplotlib.pyplot.close(fig)
    with pytest.raises(ValueError, match="level 0 has 3 maps for 2 images"):
        plot_local_attention(images, [torch.rand(3, 4, 4)])


# ---- results folders ----------------------------------------------------------------------------
def _fake_runs(root, profile="smoke", source="synthetic"):
    """GSA and vanilla on 'fundus' with 2 CV folds and the full run, written without training."""
    rng = np.random.default_rng(1)
    for method, level in (("gsa", 0.8), ("vanilla", 0.6)):
        for fold in (None, 0, 1):
            cfg = ExperimentConfig.from_profile("fundus", method, profile, epochs=6, n_folds=2, fold=fold)
            acc = np.clip(level + 0.02 * rng.standard_normal(6), 0, 1)
            save_result(
                cfg,
                root,
                finished_history(cfg, acc),
                dataset={
                    "name": "fundus",
                    "source": source,
                    "stand_in_for": None,
                    "statement": "fundus: made-up runs for a test",
                },
            )


def test_table_report_empty_and_missing_folder(tmp_path):
    for folder in (tmp_path, tmp_path / "missing"):
        rep = table_report(folder)
        assert rep["rows"] == [] and rep["n_runs"] == 0 and rep["markdown"] is None
        assert rep["message"].startswith(NO_RESULTS_MESSAGE)
    assert plot_table([]) is None


def test_table_report_smoke_results_labelled_and_csv_checked(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    _fake_runs(tmp_path)
    rep = table_report(tmp_path)
    assert rep["n_runs"] == 6
    assert rep["message"].startswith("Only smoke-profile results") and "do not reproduce the paper" in rep["message"]
    assert all(label.startswith("smoke") for label in rep["profiles"])
    assert "Not a reproduction of the paper" in rep["markdown"]
    summary = baseline_summary(rep["rows"], "fundus")
    GSA_ROW = next(i for i in summary.index if i.startswith("SmallCNN (with global attention)"))
    assert set(summary.index) == {"SmallCNN", GSA_ROW}
    assert summary.loc[GSA_ROW, "accuracy %"] > summary.loc["SmallCNN", "accuracy %"]
    assert summary.loc[GSA_ROW, "p vs vanilla"] < 0.01
    gsa = ExperimentConfig.from_profile("fundus", "gsa", "smoke")
    assert summary.loc[GSA_ROW, "chosen setting"] == (  # only the searched fields
        f"hidden_channels={gsa.pixel_cnn.hidden_channels}, l1_weight={gsa.fit.l1_weight:g}, "
        f"weight_decay={gsa.fit.weight_decay:g}"
    )
    assert summary.loc["SmallCNN", "chosen setting"] == f"weight_decay={gsa.fit.weight_decay:g}"
    assert baseline_summary(rep["rows"], "jaffe").empty

    path = table_to_csv(rep["rows"], tmp_path / "table2.csv")
    counts = check_table_csv(path, rep["rows"], rep["results"])
    assert counts == {"cells": 2, "smoke_cells": 2, "csv_rows": 2}
    tampered = tmp_path / "tampered.csv"
    tampered.write_text(path.read_text().replace("smoke (modified: epochs=6)", "full"))
    with pytest.raises(ValueError, match="smoke result labelled 'full'"):
        check_table_csv(tampered, rep["rows"], rep["results"])
    unlabelled = tmp_path / "unlabelled.csv"
    unlabelled.write_text(path.read_text().replace(",synthetic,", ",real,"))
    with pytest.raises(ValueError, match="synthetic data labelled 'real'"):
        check_table_csv(unlabelled, rep["rows"], rep["results"])

    fig = plot_table(rep["rows"])
    assert fig is not None and len(fig.axes) == 1
    # each GSA row names its recipe: rows of two recipes never share a label
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["SmallCNN + GSA [recipe: recommended]", "SmallCNN"]
    matplotlib.pyplot.close(fig)


def test_table_report_names_stand_ins(tmp_path):
    rng = np.random.default_rng(2)
    for fold in (None, 0, 1):
        cfg = ExperimentConfig.from_profile("jaffe", "vanilla", "smoke", epochs=4, n_folds=2, fold=fold)
        key = "test_acc" if fold is None else "val_acc"
        hist = History(records=[{"epoch": e + 1, "phase": 1, key: float(a)} for e, a in enumerate(rng.random(4))])
        save_result(
            cfg,
            tmp_path,
            hist,
            dataset={
                "name": "jaffe",
                "source": "synthetic",
                "stand_in_for": "jaffe",
                "statement": "JAFFE not found: using the synthetic faces stand-in",
            },
        )
    rep = table_report(tmp_path)
    assert rep["message"].startswith("Only smoke-profile results")
    assert "synthetic stand-ins instead of the real data for jaffe" in rep["message"]
    assert "jaffe: a synthetic stand-in for jaffe" in rep["statements"]
    path = table_to_csv(rep["rows"], tmp_path / "t.csv")
    assert check_table_csv(path, rep["rows"], rep["results"])["smoke_cells"] == 1


def test_table_report_full_profile_on_unpublished_dataset(tmp_path):
    _fake_runs(tmp_path, profile="full", source="real")
    rep = table_report(tmp_path)
    # the fake runs use 6 epochs, so they are 'full (modified: epochs=6)': not the full profile
    assert rep["message"].startswith("Not a reproduction of the paper")
    assert all(label.startswith("full (modified") for label in rep["profiles"])


def test_plot_epoch_selection_marks_the_selected_epochs():
    import matplotlib.pyplot as plt

    from gsa_utils.chapter_aids.baselines_view import plot_epoch_selection

    val = np.tile(np.linspace(0.5, 0.8, 6), (5, 1))
    test = np.linspace(0.4, 0.9, 6)
    fig = plot_epoch_selection(val, test, np.array([5, 6]), 0.85)
    selected = [line for line in fig.axes[0].lines if line.get_label() == "measured: selected epochs"][0]
    assert list(selected.get_xdata()) == [5, 6] and list(selected.get_ydata()) == list(test[[4, 5]])
    plt.close(fig)
