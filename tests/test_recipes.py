"""Named recipes, the one GSA factory, and the collapse rule."""

from dataclasses import asdict, replace

import numpy as np
import pytest
import torch

from gsa_utils import build_backbone
from gsa_utils.metrics import saturated_fraction
from gsa_utils.recipes import RECIPES, PixelCNNDesign, Recipe, RecipeChoice, build_gsa, get_recipe
from gsa_utils.stability import collapse_verdict
from gsa_utils.training import two_phase_fit


def test_paper_recipe_is_the_paper():
    r = get_recipe("paper")
    assert (r.pixel_rep, r.fan_in_reference, r.hidden_norm, r.map_norm) == ("full", None, False, "none")
    # training options live in FitSettings only, never in a recipe (they cannot disagree)
    assert not {"l1_weight", "l1_reduction", "pixel_cnn_lr", "map_warmup_epochs"} & set(asdict(r))


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_every_recipe_builds_and_trains(name, tiny_data):
    x, y = tiny_data
    torch.manual_seed(0)
    model = build_gsa(build_backbone("small_cnn", 2, False), x, name, PixelCNNDesign(4))
    expected = RECIPES[name].rank if RECIPES[name].pixel_rep == "lowrank" else x.shape[0] * x.shape[1]
    assert model.pixel_rep.shape[1] == expected
    hist = two_phase_fit(model, x, y, epochs=2, cutoff_epoch=1, lr=1e-3, batch_size=16, progress=False)
    assert hist.epochs_done == 2 and model.frozen
    assert np.isfinite(hist["train_loss"]).all()


def test_build_gsa_overrides_and_unknown_names(tiny_data):
    x, _ = tiny_data
    model = build_gsa(build_backbone("small_cnn", 2, False), x, "recommended", PixelCNNDesign(4), rank=3)
    assert model.pixel_rep.shape[1] == 3 and model.pixel_cnn.in_channels == 3
    with pytest.raises(ValueError, match="unknown recipe"):
        get_recipe("nope")
    with pytest.raises(ValueError, match="pixel_rep"):
        Recipe("bad", "", pixel_rep="half")


def test_collapse_verdict_flags_an_all_zero_map_and_a_one_class_predictor():
    assert saturated_fraction(np.zeros((4, 4))) == 1.0
    zero = collapse_verdict(np.zeros((4, 4)), accuracy=0.6, majority_rate=0.4)
    assert zero.collapsed and "saturated" in zero.reason
    one_class = collapse_verdict(np.full((4, 4), 0.5), accuracy=0.435, majority_rate=0.435)
    assert one_class.collapsed and "majority" in one_class.reason
    healthy = collapse_verdict(np.linspace(0.05, 0.95, 16).reshape(4, 4), accuracy=0.5, majority_rate=0.435)
    assert not healthy.collapsed and healthy.reason == ""
    # 90% saturated is not yet "more than 90%"
    edge = np.full(10, 0.5)
    edge[:9] = 0.0
    assert not collapse_verdict(edge).collapsed


def test_stability_summary_known_answers():
    from scipy.stats import ttest_ind

    from gsa_utils.chapter_aids.stability_view import summarise_stability, verdict_line
    from gsa_utils.protocol import format_p

    van = [0.50, 0.52, 0.54]
    rec = [0.60, 0.61, 0.65]
    records = [
        {
            "variant": "vanilla",
            "seed": s,
            "test_acc": a,
            "collapsed": False,
            "step_phase1": 1.0,
            "step_phase2": float("nan"),
        }
        for s, a in enumerate(van)
    ]
    records += [
        {
            "variant": "recommended",
            "seed": s,
            "test_acc": a,
            "collapsed": s == 2,
            "step_phase1": 1.0 + s,
            "step_phase2": 0.5,
            "map_mean": 0.2,
            "map_saturated": 0.1 * s,
            "map_auc": 0.9,
            "map_contrast": 0.3 * (s + 1),
            "flat": s == 0,
        }
        for s, a in enumerate(rec)
    ]
    summaries = summarise_stability(records)
    assert [s.variant for s in summaries] == ["vanilla", "recommended"]
    s = summaries[1]
    assert s.p_vs_reference == pytest.approx(ttest_ind(rec, van, equal_var=False).pvalue)
    assert (s.collapsed, s.runs, s.phase1_ratio, s.phase2_ratio) == (1, 3, 2.0, 0.5)
    assert s.saturated == pytest.approx(0.1) and s.map_auc_mean == pytest.approx(0.9)
    assert np.isnan(summaries[0].p_vs_reference)
    assert s.flat == 1 and s.contrast_mean == pytest.approx(0.6)
    line = verdict_line(summaries)
    assert line == (
        f"recommended recipe: collapsed 1 of 3 seeds; flat 1 of 3; contrast 0.60; GSA - vanilla = "
        f"+{100 * (np.mean(rec) - np.mean(van)):.1f} points ({format_p(s.p_vs_reference)})"
    )
    far = [dict(r, test_acc=r["test_acc"] + 0.3 + 0.001 * r["seed"]) for r in records if r["variant"] != "vanilla"]
    assert verdict_line(summarise_stability(records[:3] + far)).endswith("(p < 0.001)")


def test_p_values_below_a_thousandth_are_not_written_as_zero():
    from gsa_utils.protocol import format_p

    assert format_p(0.0002) == "p < 0.001" and format_p(0.031) == "p = 0.031"
    assert format_p(float("nan")) == "p = nan"


def test_a_recipe_choice_names_a_recipe_and_may_change_a_low_rank_ones_rank():
    assert RecipeChoice().resolve() == RECIPES["recommended"]
    assert RecipeChoice("recommended", 8).resolve() == replace(RECIPES["recommended"], rank=8)
    with pytest.raises(ValueError, match="low-rank recipe"):
        RecipeChoice("paper", 8)
    with pytest.raises(ValueError, match="unknown recipe"):
        RecipeChoice("nope")


def test_the_pixel_cnn_design_refuses_even_kernels_and_empty_layers():
    assert PixelCNNDesign(8).to_dict()["hidden_channels"] == 8
    for bad in ({"kernel_size": 4}, {"last_kernel_size": 0}, {"num_hidden_layers": 0}, {"hidden_channels": 0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            PixelCNNDesign(**bad)
