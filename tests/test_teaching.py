"""Helpers of the teaching chapters 1-4 (gsa_utils.chapter_aids.teaching)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from gsa_utils import DataError, StructuredDataset, map_roc_auc, pixel_cnn_parameter_count, pixel_representation  # noqa: E402
from gsa_utils.chapter_aids import structure, teaching  # noqa: E402
from gsa_utils.metrics import saturated_fraction  # noqa: E402
from gsa_utils.settings import FitSettings  # noqa: E402


@pytest.fixture
def patch_data():
    """60 noisy 1 x 10 x 10 images; the class (3 of them) sets the brightness of a 3 x 3 patch."""
    g = torch.Generator().manual_seed(0)
    y = torch.arange(60) % 3
    x = torch.rand(60, 1, 10, 10, generator=g) * 0.5
    x[:, :, 2:5, 2:5] += 0.25 * y.view(-1, 1, 1, 1).float()
    mask = torch.zeros(10, 10, dtype=torch.bool)
    mask[2:5, 2:5] = True
    return x, y, mask


def test_pixel_relevance_finds_the_informative_patch(patch_data):
    x, y, mask = patch_data
    rel = structure.pixel_relevance(x, y, bins=4)
    assert rel.shape == (10, 10)
    assert (rel >= 0).all()
    assert rel[mask.numpy()].min() > rel[~mask.numpy()].max()
    assert map_roc_auc(rel, mask) == 1.0


def test_pixel_relevance_constant_pixel_is_zero_and_bad_bins(patch_data):
    x, y, _ = patch_data
    x = x.clone()
    x[:, :, 0, 0] = 0.3
    assert structure.pixel_relevance(x, y, bins=4)[0, 0] == 0
    with pytest.raises(DataError, match="bins"):
        structure.pixel_relevance(x, y, bins=1)
    with pytest.raises(DataError, match="labels"):
        structure.pixel_relevance(x, y[:-1])


def test_most_relevant_pixels():
    rel = np.zeros((4, 5))
    rel[1, 2], rel[3, 4] = 5.0, 2.0
    mask = np.zeros((4, 5), bool)
    mask[:2] = True
    assert structure.most_relevant_pixels(rel, mask) == {"inside": (1, 2), "outside": (3, 4)}
    with pytest.raises(ValueError, match="both"):
        structure.most_relevant_pixels(rel, np.ones((4, 5), bool))


def test_random_misalign_moves_images_and_masks(patch_data):
    x, _, mask = patch_data
    same, same_masks = structure.random_misalign(x, mask, max_shift=0.0, max_degrees=0.0)
    assert torch.allclose(same, x, atol=1e-5)
    assert torch.equal(same_masks, mask.expand(60, 10, 10))
    moved, masks = structure.random_misalign(x, mask, max_shift=0.3, max_degrees=30, seed=1)
    assert moved.shape == x.shape and masks.shape == (60, 10, 10) and masks.dtype == torch.bool
    assert not torch.allclose(moved, x)
    assert (masks != mask).any(dim=(1, 2)).float().mean() > 0.5  # most images' relevant region moved
    again, _ = structure.random_misalign(x, mask, max_shift=0.3, max_degrees=30, seed=1)
    assert torch.equal(again, moved)
    with pytest.raises(ValueError, match="max_shift"):
        structure.random_misalign(x, max_shift=0.8)


def test_pixel_vectors_index_relation():
    x = torch.rand(4, 3, 5, 6)
    p = pixel_representation(x)
    vecs = teaching.pixel_vectors(p, {"a": (1, 2), "b": (4, 5)}, channels=3)
    assert vecs["a"].shape == (4, 3)
    assert np.allclose(vecs["a"], x[:, :, 1, 2].numpy()) and np.allclose(vecs["b"], x[:, :, 4, 5].numpy())
    with pytest.raises(DataError, match="divisible"):
        teaching.pixel_vectors(p, {"a": (0, 0)}, channels=5)


def test_variant_table_matches_paper_formula_and_counts_grow():
    rows = teaching.pixel_cnn_variant_table(n_images=20, channels=3, hidden_channels=8)
    by_name = {r["variant"]: r for r in rows}
    assert rows[0]["parameters"] == pixel_cnn_parameter_count(20, 3, 8)
    assert rows[0]["vs paper"] == 1.0
    k5 = by_name["kernel 5x5"]["parameters"]
    assert k5 == 8 * (25 * 60 + 1) + 9
    assert by_name["4 hidden layers"]["parameters"] > by_name["2 hidden layers"]["parameters"] > rows[0]["parameters"]
    assert by_name["dense, 2 hidden layers"]["parameters"] > by_name["2 hidden layers"]["parameters"]
    assert by_name["kernel 7x7"]["receptive field"] == "7x7"


def test_backbone_parameter_counts_small_cnn():
    from gsa_utils import SmallCNN, count_parameters

    counts = teaching.backbone_parameter_counts(["small_cnn"], 3)
    assert counts == {"small_cnn": count_parameters(SmallCNN(3))}


def test_untrained_maps_reproducible_and_in_range():
    p = pixel_representation(torch.rand(6, 3, 8, 8))
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    maps = teaching.untrained_maps(p, seeds=[0, 1, 0], hidden_channels=4)
    assert torch.equal(torch.rand(1), before)  # the global RNG is left as it was
    assert maps.shape == (3, 8, 8) and maps.min() >= 0 and maps.max() <= 1
    assert np.array_equal(maps[0], maps[2]) and not np.array_equal(maps[0], maps[1])
    dim = teaching.untrained_maps(p, seeds=[0], hidden_channels=4, output_bias=-2.0)
    assert abs(dim.mean() - 1 / (1 + np.e**2)) < 0.05


def test_saturated_fraction():
    assert saturated_fraction(np.array([0.0, 0.005, 0.5, 0.999])) == 0.75
    assert saturated_fraction(torch.full((3, 3), 0.5)) == 0.0


def test_lambda_sweep_records(tiny_data):
    x, y = tiny_data
    mask = torch.zeros(12, 12, dtype=torch.bool)
    mask[2:6, 2:6] = True
    ds = StructuredDataset("tiny", x[:30], y[:30], x[30:], y[30:], ["a", "b"], mask=mask)
    settings = FitSettings(epochs=2, cutoff_epoch=1, lr=1e-3, batch_size=16, weight_decay=0.0)
    threads = torch.get_num_threads()
    recs = teaching.lambda_sweep(
        ds,
        [0.0, 1.0],
        seeds=[0],
        settings=settings,
        hidden_channels=4,
        backbone_width=4,
        map_snapshots=(0, 2),
        device="cpu",
    )
    assert torch.get_num_threads() == threads  # the thread cap is lifted afterwards
    assert [r["l1_weight"] for r in recs] == [0.0, 1.0]
    for r in recs:
        assert r["map"].shape == (12, 12) and r["map_mean"] == pytest.approx(float(r["map"].mean()))
        assert r["roc_auc"] == pytest.approx(map_roc_auc(r["map"], mask))
        assert r["saturated"] == pytest.approx(saturated_fraction(r["map"]))
        assert r["history"].epochs_done == 2 and set(r["history"].maps) == {0, 2}
    assert recs[1]["map_mean"] < recs[0]["map_mean"]  # a strong L1 term dims the map
    with pytest.raises(DataError, match="mask"):
        teaching.lambda_sweep(
            StructuredDataset("nomask", x[:30], y[:30], x[30:], y[30:], ["a", "b"]),
            [0.0],
            [0],
            settings=settings,
            hidden_channels=4,
        )


@pytest.mark.parametrize(
    "draw",
    [
        lambda x, y, m: structure.plot_pixel_distributions(
            x, y, {"in": (3, 3), "out": (8, 8)}, ["a", "b", "c"], mask=m
        ),
        lambda x, y, m: structure.show_panel_grid(
            {"r1": {"mean": x.mean(0), "map": x[0, 0]}, "r2": {"x": x[1, 0]}}, masks={"r1": m}
        ),
        lambda x, y, m: teaching.plot_pixel_vectors(
            pixel_representation(x), y, {"in": (3, 3), "out": (8, 8)}, 1, ["a", "b", "c"]
        ),
        lambda x, y, m: teaching.plot_pixel_representation_memory(max_images=100),
    ],
)
def test_figures_draw(patch_data, draw):
    x, y, mask = patch_data
    fig = draw(x, y, mask)
    assert fig.axes
    plt.close(fig)


def test_ce_map_gradient_leaves_model_untouched(tiny_data):
    from gsa_utils import GlobalSpatialAttention, PixelCNN, SmallCNN

    x, y = tiny_data
    torch.manual_seed(0)
    model = GlobalSpatialAttention(SmallCNN(2, width=4), PixelCNN(x.shape[0] * 3, 4), pixel_representation(x))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    grad = teaching.ce_map_gradient(model, x[:16], y[:16])
    assert grad.shape == (12, 12) and np.abs(grad).max() > 0
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) or torch.isnan(before[k]).all() for k in before)
    assert all(p.grad is None for p in model.parameters())


def test_plot_lambda_sweep_draws_one_panel_per_key():
    recs = [
        {"l1_weight": lam, "seed": s, "map_mean": 0.5 - lam, "roc_auc": 0.6, "saturated": 0.1, "test_acc": 0.7}
        for lam in (0.0, 0.01, 0.1)
        for s in (0, 1)
    ]
    fig = teaching.plot_lambda_sweep(recs, chance={"roc_auc": 0.5})
    assert len(fig.axes) == 4
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["0", "0.01", "0.1"]
    plt.close(fig)


def test_sweep_table_and_gradient_histogram():
    recs = [
        {"l1_weight": lam, "seed": 0, "map_mean": 0.5, "roc_auc": 0.6, "saturated": 0.25, "test_acc": 0.7, "map": None}
        for lam in (0.0, 0.1)
    ]
    styled = teaching.sweep_table(recs)
    assert list(styled.data.columns) == list(teaching.SWEEP_FORMATS) and len(styled.data) == 2
    assert "25%" in styled.to_html()  # the saturated share is printed as a percentage
    fig = teaching.plot_gradient_histogram(np.array([[1e-4, 1e-3], [1e-2, 1e-1]]), [1e-3, 1e-1])
    assert len(fig.axes[0].lines) == 2  # one dashed line per lambda
    plt.close(fig)


def test_plot_value_histograms_marks_and_means():
    from gsa_utils.chapter_aids.plotting import plot_value_histograms

    fig = plot_value_histograms({"a": np.full((2, 4, 4), 0.25), "b": torch.full((4, 4), 0.75)}, marks={"m": 0.5})
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a: mean 0.25", "b: mean 0.75"]
    assert len(ax.lines) == 1 and ax.get_yscale() == "log"
    plt.close(fig)
