"""The paper's evaluation protocol (section 4.6) and its Table 2 (chapter 10)."""

import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from gsa_utils.baselines.l1_weights import L1_COEFFICIENT_GRID
from gsa_utils.data import DataError
from gsa_utils.protocol import (
    ProtocolWarning,
    protocol_accuracy,
    select_epochs,
    select_hyperparameters,
    stratified_folds,
    t_test,
)
from gsa_utils.runs.markdown import paper_table_to_markdown
from gsa_utils.runs.tables import PAPER_COLUMNS, PAPER_ROWS, PAPER_TABLE2, PaperCell
from gsa_utils.settings import PAPER_GRID

PAPER = Path(__file__).resolve().parents[2] / "shared" / "paper" / "global-spatial-attention.txt"


# ---- stratified folds -------------------------------------------------------------------
def test_folds_are_stratified_disjoint_and_cover_the_training_set():
    y = np.array([0] * 30 + [1] * 15 + [2] * 7)
    rng = np.random.default_rng(0)
    y = y[rng.permutation(len(y))]
    folds = stratified_folds(y, k=5, seed=3)
    assert len(folds) == 5
    vals = [va for _, va in folds]
    assert sorted(np.concatenate(vals).tolist()) == list(range(len(y)))  # cover, each index once
    for tr, va in folds:
        assert not set(tr) & set(va)
        assert sorted(np.concatenate([tr, va]).tolist()) == list(range(len(y)))
        assert tr.max() < len(y) and va.max() < len(y)  # only indices of the training labels given
        assert tr.dtype == np.int64 and (np.diff(va) > 0).all()
    counts = np.array([np.bincount(y[va], minlength=3) for va in vals])  # folds x classes
    assert (counts.max(0) - counts.min(0) <= 1).all()  # every class spread evenly
    again = stratified_folds(y, k=5, seed=3)
    assert all((a[1] == b[1]).all() for a, b in zip(folds, again))
    other = stratified_folds(y, k=5, seed=4)
    assert any((a[1].shape != b[1].shape) or (a[1] != b[1]).any() for a, b in zip(folds, other))


def test_folds_accept_tensors_and_reject_bad_input():
    import torch

    folds = stratified_folds(torch.arange(20) % 2, k=4)
    assert sum(len(va) for _, va in folds) == 20
    with pytest.raises(DataError, match="cannot make 5 folds"):
        stratified_folds([0, 1, 0], k=5)
    with pytest.raises(DataError, match="k must be"):
        stratified_folds([0, 1] * 5, k=1)
    with pytest.raises(DataError, match="1-D integer"):
        stratified_folds(np.zeros((4, 2), dtype=int))


# ---- epoch selection ----------------------------------------------------------------------
def test_select_epochs_picks_the_known_top_30_of_the_fold_mean():
    n_epochs = 60
    mean = np.linspace(0.5, 0.6, n_epochs)  # rising ...
    mean[5:12] = 0.9  # ... with a block of 7 excellent early epochs
    expected = sorted(set(range(6, 13)) | set(range(n_epochs - 22, n_epochs + 1)))  # 7 + the last 23
    assert len(expected) == 30
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.05, (5, n_epochs))
    noise -= noise.mean(0)  # the folds disagree, their mean is exactly `mean`
    folds = mean + noise
    got = select_epochs(folds, n=30)
    assert got.tolist() == expected
    assert select_epochs(folds.mean(0), n=30).tolist() == expected  # a 1-D mean curve works too
    # a single fold alone would choose differently: the mean across folds matters
    assert select_epochs(folds[0], n=30).tolist() != expected


def test_select_epochs_ties_go_to_the_earlier_epoch():
    flat = np.full(50, 0.7)
    assert select_epochs(flat, n=30).tolist() == list(range(1, 31))
    curve = np.full(40, 0.5)
    curve[[3, 10, 20]] = 0.8  # three clear winners, then 37 tied epochs for 2 places
    assert select_epochs(curve, n=5).tolist() == [1, 2, 4, 11, 21]
    curve = np.array([0.5, np.nan, 0.9, 0.6])
    assert select_epochs(curve, n=3).tolist() == [1, 3, 4]  # NaN ranks last


def test_select_epochs_with_fewer_epochs_uses_all_and_warns():
    with pytest.warns(ProtocolWarning, match="only 12 epochs"):
        got = select_epochs(np.random.default_rng(0).random((3, 12)), n=30)
    assert got.tolist() == list(range(1, 13))
    with pytest.raises(ValueError, match="different lengths"):
        select_epochs([[0.1, 0.2], [0.1]], n=1)


# ---- accuracy at the selected epochs --------------------------------------------------------
def test_protocol_accuracy():
    test_curve = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    mean, std, samples = protocol_accuracy(test_curve, np.array([2, 4, 6]))
    assert samples.tolist() == [0.2, 0.4, 0.6]
    assert mean == pytest.approx(0.4) and std == pytest.approx(0.2)  # sample std (ddof=1)
    mean, std, samples = protocol_accuracy(test_curve, [5])
    assert mean == pytest.approx(0.5) and np.isnan(std)
    with pytest.raises(ValueError, match="epoch 7 is outside"):
        protocol_accuracy(test_curve, [1, 7])
    with pytest.raises(ValueError, match="epoch 0 is outside"):
        protocol_accuracy(test_curve, [0])


# ---- t-test -------------------------------------------------------------------------------
def test_t_test_sanity():
    rng = np.random.default_rng(0)
    a = 0.80 + rng.normal(0, 0.01, 30)
    b = 0.70 + rng.normal(0, 0.03, 30)
    assert t_test(a, b) < 0.01
    assert t_test(a, a) == pytest.approx(1.0)
    assert t_test(a, a + rng.normal(0, 0.01, 30)) > 0.01
    assert t_test(np.full(30, 0.8), np.full(30, 0.8)) == 1.0  # zero variance: scipy would give NaN
    assert t_test(np.full(30, 0.8), np.full(30, 0.7)) == 0.0
    assert np.isnan(t_test([0.8], [0.7, 0.6]))
    c = 0.78 + rng.normal(0, 0.06, 30)
    assert t_test(a, c) == pytest.approx(stats.ttest_ind(a, c, equal_var=False).pvalue)  # Welch's
    assert t_test(a, c) != pytest.approx(stats.ttest_ind(a, c, equal_var=True).pvalue)


# ---- hyper-parameters ------------------------------------------------------------------------
def test_paper_grid():
    assert PAPER_GRID == {
        "hidden_channels": (32, 64, 128, 256),
        "l1_weight": (0.1, 0.01, 0.001, 0.0001),
        "weight_decay": (1e-3, 1e-4, 1e-5),
    }
    import gsa_utils.settings as settings

    src = Path(settings.__file__).read_text()
    assert "62" in src and "typo" in src  # the printed K = 62 is documented
    assert L1_COEFFICIENT_GRID == (1e5, 1e4, 1e3, 100.0, 10.0, 1.0)


def test_select_hyperparameters_by_mean_cv_accuracy_over_selected_epochs():
    rng = np.random.default_rng(1)
    base = rng.uniform(0.5, 0.6, (5, 40))
    peaky = base.copy()
    peaky[:, :30] += 0.2  # best over its 30 selected epochs
    steady = base + 0.15  # better on average over all 40 epochs, worse over the best 30
    results = [{"params": {"K": 32}, "val_acc": steady}, {"params": {"K": 64}, "val_acc": peaky}]
    choice = select_hyperparameters(results, n=30)
    assert choice["params"] == {"K": 64}
    assert choice["epochs"].tolist() == list(range(1, 31))
    assert choice["score"] == pytest.approx(peaky[:, :30].mean())
    assert [r["params"]["K"] for r in choice["ranking"]] == [64, 32]
    tie = select_hyperparameters([{"params": "a", "val_acc": base}, {"params": "b", "val_acc": base}], n=30)
    assert tie["params"] == "a"  # ties: the first listed
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # too few epochs is reported by the caller, not warned per setting
        short = select_hyperparameters([{"params": 1, "val_acc": base[:, :5]}], n=30)
    assert short["epochs"].tolist() == [1, 2, 3, 4, 5] and "only 5 epochs" in short["notes"][0]
    assert choice["notes"] == []


# ---- the paper's Table 2 ------------------------------------------------------------------------
def test_paper_table2_spot_values():
    assert len(PAPER_ROWS) == 16 and PAPER_ROWS[0] == "LR" and PAPER_ROWS[-1] == "DenseNet-161 (with global attention)"
    assert PAPER_COLUMNS == ("Glaucoma", "IDRiD Retinopathy", "IDRiD Macular Edema", "JAFFE")
    assert PAPER_TABLE2["LR"]["Glaucoma"] == PaperCell(74.28, None, False)
    assert PAPER_TABLE2["VGG-16 (with global attention)"]["IDRiD Retinopathy"] == PaperCell(66.41, 1.36, True)
    assert PAPER_TABLE2["VGG-16 (with global attention)"]["JAFFE"] == PaperCell(84.26, 6.19, False)
    assert PAPER_TABLE2["DenseNet-161 (with global attention)"]["JAFFE"] == PaperCell(84.88, 3.04, True)
    assert str(PAPER_TABLE2["ResNet-152 (with global attention)"]["IDRiD Macular Edema"]) == "*82.13(0.70)"
    assert "| SVM | 74.45 | 45.63 | 64.08 | 75.00 |" in paper_table_to_markdown()


@pytest.mark.skipif(not PAPER.exists(), reason="paper text not available")
def test_paper_table2_matches_the_paper_text():
    text = PAPER.read_text(encoding="utf-8")
    start = text.index("Accuracy(standard deviation)")
    lines = text[start:].splitlines()
    printed = {}
    for line in lines[2:]:
        if not line.strip():
            break
        label, *cells = line.split("\t")
        printed[label.strip()] = [c.strip() for c in cells]
    assert list(printed) == list(PAPER_ROWS)
    for label, cells in printed.items():
        ours = [str(PAPER_TABLE2[label][col]) for col in PAPER_COLUMNS]
        assert ours == [re.sub(r"\s+", "", c) for c in cells], label


def test_compare_over_seeds_one_table_one_rule():
    from scipy.stats import ttest_ind

    from gsa_utils.protocol import SIGNIFICANCE_LEVEL, compare_over_seeds, verdict

    van, far, near = [0.50, 0.51, 0.52], [0.80, 0.81, 0.83], [0.50, 0.52, 0.53]
    table = compare_over_seeds({"vanilla": van, "far": far, "near": near, "one": [0.9]})
    assert list(table.index) == ["vanilla", "far", "near", "one"]
    assert table.loc["far", "p"] == pytest.approx(ttest_ind(far, van, equal_var=False).pvalue)
    assert table.loc["far", "points"] == pytest.approx(100 * (np.mean(far) - np.mean(van)))
    assert table.loc["far", "sd"] == pytest.approx(np.std(far, ddof=1)) and table.loc["far", "seeds"] == 3
    assert list(table["verdict"]) == ["reference", "better", "no clear difference", "too few seeds"]
    assert np.isnan(table.loc["vanilla", "p"])
    # the rule is the significance level, nothing else: a big gap above it is no verdict
    assert verdict(-30.0, SIGNIFICANCE_LEVEL / 2) == "worse"
    assert verdict(30.0, SIGNIFICANCE_LEVEL) == "no clear difference"
