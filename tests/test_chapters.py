"""The helpers shared by the dataset chapters (gsa_utils.chapter_aids.chapters), on tiny runs."""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest

from gsa_utils.chapter_aids import chapters, figures, summaries
from gsa_utils.data.cache import CACHE_ENV
from gsa_utils.data.fixtures import make_folder_fixture, make_idrid_fixture
from gsa_utils.data.folder import load_folder
from gsa_utils.data.idrid import load_idrid
from gsa_utils.data.registry import load_dataset
from gsa_utils.metrics import map_roc_auc
from gsa_utils.profiles import get_profile
from gsa_utils.runs import RESULTS_DIR_ENV

matplotlib.use("Agg")

TINY = dict(image_size=16, epochs=2, n_train=24, n_test=12)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def smoke():
    return get_profile("smoke")


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory, smoke):
    """Two seeds x {vanilla, GSA} on the synthetic fundus set, 16 px, 2 epochs."""
    results_dir = tmp_path_factory.mktemp("results")
    configs = chapters.chapter_configs("fundus", smoke, (0, 1), **TINY)
    return configs, chapters.run_chapter(configs, results_dir, verbose=False)


# --------------------------------------------------------------------------------------
# configs, seeds, banner, results folder
# --------------------------------------------------------------------------------------
def test_chapter_seeds(smoke):
    full = get_profile("full")
    assert chapters.chapter_seeds(smoke, 2) == smoke.seeds[:2]
    assert chapters.chapter_seeds(full, 1) == full.seeds
    assert chapters.chapter_seeds(full, 1, full_seeds=2) == full.seeds[:2]
    with pytest.raises(ValueError):
        chapters.chapter_seeds(smoke, 0)


def test_chapter_configs_order_and_fields(smoke):
    cfgs = chapters.chapter_configs(
        ["fundus", "faces"], smoke, (0, 1), backbones=("small_cnn",), data_seeds={"faces": 3}
    )
    assert len(cfgs) == 2 * 1 * 2 * 2
    assert [(c.dataset, c.seed, c.method) for c in cfgs[:4]] == [
        ("fundus", 0, "vanilla"),
        ("fundus", 0, "gsa"),
        ("fundus", 1, "vanilla"),
        ("fundus", 1, "gsa"),
    ]
    assert all(c.fold is None and c.profile == "smoke" and c.fit.epochs == smoke.fit.epochs for c in cfgs)
    assert {c.data_seed for c in cfgs if c.dataset == "faces"} == {3}
    assert {c.data_seed for c in cfgs if c.dataset == "fundus"} == {0}
    assert len({c.run_id() for c in cfgs}) == len(cfgs)
    assert chapters.chapter_configs("fundus", smoke, (0,))[0].backbone == smoke.backbones[0]
    with pytest.raises(ValueError):
        chapters.chapter_configs("fundus", smoke, ())


def test_data_banner_says_where_the_data_come_from(tmp_path):
    stand_in = load_dataset("jaffe", 16, data_dir=tmp_path)
    banner = chapters.data_banner(stand_in)
    assert banner.startswith("SYNTHETIC STAND-IN: ") and "not found" in banner and "jaffe" in banner.lower()
    assert chapters.data_banner(load_dataset("fundus", 16)).startswith("SYNTHETIC DATA: ")
    make_folder_fixture(tmp_path / "own", n_per_class=5)
    real = load_folder(tmp_path / "own", progress=False, cache_dir=False)
    assert chapters.data_banner(real).startswith("REAL DATA: ")


def test_default_results_dir(monkeypatch, tmp_path):
    monkeypatch.setenv(RESULTS_DIR_ENV, str(tmp_path / "elsewhere"))
    assert chapters.default_results_dir() == tmp_path / "elsewhere"
    monkeypatch.delenv(RESULTS_DIR_ENV)
    assert chapters.default_results_dir() == Path(chapters.__file__).resolve().parents[2] / "results"


# --------------------------------------------------------------------------------------
# training, reading back, tables
# --------------------------------------------------------------------------------------
def test_run_chapter_writes_results_and_reuses_them(tiny_runs, capsys):
    configs, res = tiny_runs
    assert [r.run_id for r in res.runs] == [c.run_id() for c in configs]
    assert sorted(res.trained) == sorted(c.run_id() for c in configs) and not res.reused
    for r in res.runs:
        d = Path(r.run_dir)
        assert (d / "history.json").is_file() and (d / "config.json").is_file()
        assert (d / "attention_map.npy").is_file() == (r.config.method == "gsa")
    again = chapters.run_chapter(configs, res.results_dir)
    assert not again.trained and sorted(again.reused) == sorted(res.trained)
    out = capsys.readouterr().out
    assert out.count("reused ") == len(configs) and "0 trained now" in out


def test_results_table_and_summary(tiny_runs):
    _, res = tiny_runs
    t = res.table
    assert list(t.method) == ["vanilla", "gsa"] * 2 and list(t.seed) == [0, 0, 1, 1]
    r0 = res.runs[0]
    acc = np.asarray(r0.history["test_acc"])
    assert t.loc[0, "final_acc"] == pytest.approx(acc[-1])
    assert t.loc[0, "tail_acc"] == pytest.approx(acc[-summaries.tail_epochs(len(acc)) :].mean())
    assert t.loc[0, "best_acc"] == pytest.approx(acc.max()) and t.loc[0, "epochs"] == 2
    assert t.loc[0, "profile"].startswith("smoke (modified")
    s = summaries.summary_table(t)
    row = s.loc[("fundus", "small_cnn")]
    assert row[("GSA", "n")] == 2 and row[("vanilla", "n")] == 2
    assert row[("GSA", "mean")] == pytest.approx(t[t.method == "gsa"].tail_acc.mean())
    assert row[("GSA - vanilla", "points")] == pytest.approx(
        100 * (t[t.method == "gsa"].tail_acc.mean() - t[t.method == "vanilla"].tail_acc.mean())
    )
    f = summaries.format_summary(s)
    assert list(f.columns) == ["vanilla", "GSA", "GSA - vanilla (points)"] and "(n=2)" in f.iloc[0, 0]


def test_attention_maps_are_shared_and_in_range(tiny_runs):
    configs, res = tiny_runs
    amap = res.attention_map("fundus", "small_cnn")
    assert amap.shape == (16, 16)
    assert np.array_equal(figures.check_attention_map(amap, (5, 3, 16, 16)), amap)
    assert not np.array_equal(amap, res.attention_map("fundus", "small_cnn", seed=1))
    with pytest.raises(ValueError, match="one 8 x 8 map"):
        figures.check_attention_map(amap, (1, 3, 8, 8))
    with pytest.raises(ValueError, match="leaves"):
        figures.check_attention_map(amap + 1.5, (1, 3, 16, 16))
    with pytest.raises(KeyError):
        res.attention_map("faces", "small_cnn")
    before = chapters.initial_attention_map(next(c for c in configs if c.method == "gsa"))
    assert before.shape == (16, 16) and 0 <= before.min() <= before.max() <= 1
    assert np.array_equal(before, chapters.initial_attention_map(configs[1]))
    with pytest.raises(ValueError):
        chapters.initial_attention_map(configs[0])  # vanilla has no map


def test_attention_map_names_the_run_without_a_map_file(tiny_runs, monkeypatch):
    _, res = tiny_runs
    run = sorted(res.select(dataset="fundus", backbone="small_cnn", method="gsa"), key=lambda r: r.config.seed)[0]
    monkeypatch.setattr(chapters, "load_attention_map", lambda r: None)
    with pytest.raises(FileNotFoundError, match="has no attention_map.npy") as err:
        res.attention_map("fundus", "small_cnn")
    assert str(run.run_dir) in str(err.value)


def test_figures(tiny_runs):
    import matplotlib.pyplot as plt

    _, res = tiny_runs
    t = res.table
    fig = figures.plot_accuracy(t, chance=0.5)
    assert len(fig.axes) == 1 and len(fig.axes[0].patches) == 2
    fig2 = figures.plot_training_curves(res, "fundus")
    assert len(fig2.axes) == 3 and len(fig2.axes[1].lines) >= 2
    ds = load_dataset("fundus", 16, standardize=False)
    amap = res.attention_map("fundus", "small_cnn")
    fig3, aucs = figures.show_attention({"a": amap, "b": amap}, image=ds.x_train[0], mask=ds.mask)
    assert set(aucs) == {"a", "b"} and aucs["a"] == aucs["b"] == pytest.approx(map_roc_auc(amap, ds.mask))
    assert len(fig3.axes) == 4 + 1  # image, two maps, image x map, colour bar
    fig4, none = figures.show_attention({"a": amap})
    assert none == {} and len(fig4.axes) == 2
    fig5, _ = figures.show_attention({"a": amap, "b": amap * 0.5}, image=ds.x_train[0], product="b")
    assert fig5.axes[3].get_title().endswith("(b)")
    with pytest.raises(KeyError):
        figures.show_attention({"a": amap}, image=ds.x_train[0], product="zzz")
    plt.close("all")


# --------------------------------------------------------------------------------------
# the comparison sentence
# --------------------------------------------------------------------------------------
def _table(gsa, vanilla, dataset="d"):
    rows = [{"dataset": dataset, "backbone": "b", "method": "gsa", "seed": i, "tail_acc": a} for i, a in enumerate(gsa)]
    rows += [
        {"dataset": dataset, "backbone": "b", "method": "vanilla", "seed": i, "tail_acc": a}
        for i, a in enumerate(vanilla)
    ]
    return pd.DataFrame(rows)


def test_compare_methods_follows_the_numbers():
    clear = summaries.compare_methods(_table([0.80, 0.81, 0.82], [0.70, 0.71, 0.72]))[0]
    assert "+10.0 points" in clear and "ahead on 3 of 3 seeds" in clear and clear.endswith("GSA beat vanilla.")
    noisy = summaries.compare_methods(_table([0.60, 0.90, 0.70], [0.70, 0.71, 0.72]))[0]
    assert "+2.3 points" in noisy and "no clear difference" in noisy and "beat vanilla." not in noisy
    worse = summaries.compare_methods(_table([0.40], [0.60]))[0]
    assert "-20.0 points" in worse and "1 seed;" in worse and "too few seeds" in worse
    low = summaries.compare_methods(_table([0.40, 0.41, 0.40], [0.60, 0.61, 0.62]))[0]
    assert "GSA did worse than vanilla" in low and "ahead on 0 of 3" in low
    tie = summaries.compare_methods(_table([0.5, 0.6], [0.6, 0.5]))[0]
    assert "+0.0 points" in tie and "p = 1.000" in tie and "no clear difference" in tie
    chance = summaries.compare_methods(_table([0.35], [0.36]), chance=0.34)[0]
    assert "-1.0 points" in chance and "within 5 points of chance" in chance
    one_low = summaries.compare_methods(_table([0.34], [0.60]), chance={"d": 0.34})[0]
    assert "The GSA model is near chance" in one_low
    only = summaries.compare_methods(_table([0.5], []))[0]
    assert "nothing to compare" in only


def test_tail_epochs_and_chance():
    assert [summaries.tail_epochs(e) for e in (1, 3, 4, 12, 250, 1000)] == [1, 1, 1, 3, 30, 30]
    assert summaries.chance_accuracy([0, 0, 1, 2]) == 0.5
    with pytest.raises(ValueError):
        summaries.chance_accuracy([])


def test_map_verdict():
    mask = np.zeros((10, 10), bool)
    mask[2:5, 2:5] = True
    focused = np.where(mask, 0.9, 0.01)
    v = figures.map_verdict(focused, mask)
    assert "concentrates on the relevant region" in v and "few pixels" not in v
    tiny = focused * 1e-3  # the same shape at a thousandth of the scale: the same verdict
    assert "concentrates on the relevant region" in figures.map_verdict(tiny, mask)
    dead = np.zeros((10, 10))
    dead[8, 8] = 1.0
    v = figures.map_verdict(dead, mask)
    assert "little more than a few pixels" in v and "does not favour" in v
    lean = np.where(mask, 0.6, 0.5)
    assert "leans towards" in figures.map_verdict(lean, mask)
    assert figures.map_verdict(focused).endswith(".") and "ROC-AUC" not in figures.map_verdict(focused)


def test_train_test_warnings(tiny_runs):
    _, res = tiny_runs
    assert summaries.train_test_warnings(res.runs, chance=0.0, train_gain=2.0) == []  # nothing can be flagged
    flagged = summaries.train_test_warnings(res.runs, chance=1.0, margin=0.0, train_gain=-1.0)
    assert len(flagged) == len(res.runs)
    assert all("about chance" in w for w in flagged)
    gsa = [w for w in flagged if "/ GSA /" in w]
    assert len(gsa) == 2 and all("batch normalisation" in w for w in gsa)
    assert not any("batch normalisation" in w for w in flagged if "/ vanilla /" in w)
    assert summaries.train_test_warnings(res.runs, chance={"other": 1.0}) == []


def test_paper_reference():
    ref = summaries.paper_reference("idrid-edema")
    assert list(ref.index) == ["googlenet", "vgg16", "resnet152", "densenet161"]
    assert ref.loc["vgg16", "GSA - vanilla (points)"] == "+3.36" and ref.loc["vgg16", "GSA"] == "83.59 (0.47)"
    assert summaries.paper_reference("fundus") is None


# --------------------------------------------------------------------------------------
# data helpers
# --------------------------------------------------------------------------------------
def test_expect_data_error(tmp_path, capsys):
    msg = figures.expect_data_error(load_folder, tmp_path / "nowhere")
    assert "does not exist" in msg and "DataError:" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="expected a DataError"):
        figures.expect_data_error(lambda: None)
    with pytest.raises(KeyError):
        figures.expect_data_error(lambda: {}["x"])  # other errors are not swallowed


def test_folder_tree(tmp_path):
    (tmp_path / "a").mkdir()
    for i in range(5):
        (tmp_path / "a" / f"f{i}.png").write_text("")
    (tmp_path / ".hidden").write_text("")
    (tmp_path / "labels.csv").write_text("")
    tree = figures.folder_tree(tmp_path, max_files=2)
    assert tree.splitlines()[0] == f"{tmp_path.name}/"
    assert "f0.png" in tree and "f4.png" not in tree and "(5 files in all)" in tree
    assert ".hidden" not in tree and tree.rstrip().endswith("labels.csv")


def test_write_oct_folder_both_layouts(tmp_path):
    info = figures.write_oct_folder(tmp_path / "octs", 16, n_train=9, n_test=6)
    assert info["rewritten"] and info["n_files"] == 15 and info["class_names"] == ["early", "moderate", "severe"]
    assert sum(info["counts"].values()) == 15 and info["mask"].shape == (16, 16) and info["mask"].any()
    ds = load_folder(tmp_path / "octs", progress=False, cache_dir=False)
    assert ds.class_names == info["class_names"] and len(ds.y_train) + len(ds.y_test) == 15
    assert ds.x_train.shape[1:] == (3, 16, 16)
    stamp = (tmp_path / "octs" / "early").stat().st_mtime_ns
    again = figures.write_oct_folder(tmp_path / "octs", 16, n_train=9, n_test=6)
    assert not again["rewritten"] and again["counts"] == info["counts"]
    assert (tmp_path / "octs" / "early").stat().st_mtime_ns == stamp
    assert np.array_equal(again["mask"], info["mask"])
    assert figures.write_oct_folder(tmp_path / "octs", 16, n_train=12, n_test=6)["n_files"] == 18
    csv = figures.write_oct_folder(tmp_path / "csv", 16, n_train=9, n_test=6, layout="csv")
    fixed = load_folder(tmp_path / "csv", csv="labels.csv", split_file="split.csv", progress=False, cache_dir=False)
    assert (len(fixed.y_train), len(fixed.y_test)) == (9, 6) and csv["n_files"] == 15
    assert not list(tmp_path.glob(".*"))  # no temporary folders left behind
    with pytest.raises(ValueError):
        figures.write_oct_folder(tmp_path / "x", 16, layout="zip")


def test_plot_idrid_fixture(tmp_path):
    import matplotlib.pyplot as plt

    fx = make_idrid_fixture(tmp_path, n_train=4, n_test=2, height=16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = load_idrid(tmp_path, image_size=16, standardize=False, cache_dir=False, progress=False)
    fig = figures.plot_idrid_fixture(fx, ds, n=3)
    assert len(fig.axes) == 1 + 3
    assert "flipped" in fig.axes[1].get_title()  # IDRiD_001 is on the paper's flip list
    assert "flipped" not in fig.axes[2].get_title()
    plt.close("all")


def test_two_gsa_recipes_are_separate_rows_not_pooled():
    t = _table([0.8, 0.8], [0.5, 0.5])
    t["variant"] = ["gsa (lr=0.001)"] * 2 + ["vanilla"] * 2
    extra = t[t.method == "gsa"].assign(variant="gsa (lr=0.0001)", tail_acc=0.6)
    s = summaries.summary_table(pd.concat([t, extra]))
    row = s.loc[("d", "b")]
    assert row[("GSA (lr=0.001)", "mean")] == pytest.approx(0.8) and row[("GSA (lr=0.0001)", "mean")] == 0.6
    assert row[("GSA (lr=0.0001) - vanilla", "points")] == pytest.approx(10.0)
    sentences = summaries.compare_methods(pd.concat([t, extra]))
    assert len(sentences) == 2 and "GSA (lr=0.0001)" in sentences[1]


def test_class_counts_line(tiny_runs):
    ds = load_dataset("fundus", 16)
    text = chapters.class_counts(ds)
    assert text.splitlines()[0] == f"{ds.num_classes} classes {ds.class_names}"
    assert str(ds.class_counts("train").tolist()) in text and str(ds.class_counts("test").tolist()) in text


def test_report_shows_tables_figure_and_sentences(tiny_runs, capsys, monkeypatch):
    from gsa_utils.chapter_aids import report

    shown = []
    monkeypatch.setattr("IPython.display.display", shown.append)
    _, results = tiny_runs
    report.show_results(results, 0.5)
    assert len(shown) == 2 and "dataset" not in shown[1].columns  # one data set: no dataset column
    assert list(shown[1].columns) == [c for c in report.RUN_COLUMNS if c != "dataset"]
    assert "chance: 50.0%" in capsys.readouterr().out
    sentences = report.print_comparison(results, 0.5)
    assert sentences == summaries.compare_methods(results.table, 0.5)
    assert sentences[0] in capsys.readouterr().out


def test_variant_table_compares_over_seeds_and_reads_the_maps(tiny_runs):
    from gsa_utils.chapter_aids.stability_view import variant_table
    from gsa_utils.protocol import compare_over_seeds
    from gsa_utils.runs import load_attention_map

    _, results = tiny_runs
    runs = {m: results.select(method=m) for m in ("vanilla", "gsa")}
    mask = load_dataset("fundus", 16).mask
    table = variant_table(runs, mask)
    accuracies = {m: [r.history["test_acc"][-1] for r in rs] for m, rs in runs.items()}
    expected = compare_over_seeds(accuracies)
    pd.testing.assert_frame_equal(table[expected.columns], expected)
    maps = [load_attention_map(r) for r in runs["gsa"]]
    assert table.loc["gsa", "map auc"] == pytest.approx(np.mean([map_roc_auc(m, mask) for m in maps]))
    assert table.loc["gsa", "map mean"] == pytest.approx(np.mean([m.mean() for m in maps]))
    assert np.isnan(table.loc["vanilla", "map auc"]) and np.isnan(table.loc["vanilla", "flat"])
    assert table.loc["vanilla", "collapsed"] == 0  # no map and no majority rate: nothing to collapse
    always_collapsed = variant_table(runs, mask, majority_rate=1.0)
    assert (always_collapsed["collapsed"] == 2).all()  # every accuracy is at or below 1.0


def test_learned_maps_are_checked_and_shown_with_a_verdict(tiny_runs, capsys):
    from gsa_utils.chapter_aids import report

    configs, results = tiny_runs
    ds = load_dataset("fundus", 16)
    maps = report.learned_maps(results, "fundus", ["small_cnn"], (3, 16, 16))
    assert list(maps) == ["small_cnn"] and np.array_equal(
        maps["small_cnn"], results.attention_map("fundus", "small_cnn")
    )
    with pytest.raises(ValueError, match="expected one 8 x 8 map"):
        report.learned_maps(results, "fundus", ["small_cnn"], (3, 8, 8))
    aucs = report.show_learned_maps(maps, ds.mask, title="t", prefix="fundus / ")
    assert aucs["small_cnn"] == pytest.approx(map_roc_auc(maps["small_cnn"], ds.mask))
    assert f"fundus / small_cnn: {figures.map_verdict(maps['small_cnn'], ds.mask)}" in capsys.readouterr().out
