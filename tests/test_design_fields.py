"""The pixel-CNN design of ExperimentConfig (section 4.10) and the low-rank rank r."""

import pytest
import torch

from gsa_utils.recipes import PixelCNNDesign, RecipeChoice
from gsa_utils.runs import ExperimentConfig, build_model, configs_from_grid


def _x(n=12, size=8):
    return torch.randn(n, 1, size, size, generator=torch.Generator().manual_seed(0))


def test_design_fields_reach_the_pixel_cnn():
    design = PixelCNNDesign(hidden_channels=4, kernel_size=5, num_hidden_layers=3, last_kernel_size=3, dense=True)
    cfg = ExperimentConfig("oct", "gsa", image_size=8, pixel_cnn=design)
    net = build_model(cfg, 2, _x())
    pc = net.pixel_cnn
    assert len(pc.hidden) == 3 and pc.dense
    assert pc.hidden[0].kernel_size == (5, 5) and pc.output.kernel_size == (3, 3)
    assert pc.in_channels == 12  # the paper's full representation: N x C channels


def test_pixel_rank_builds_the_low_rank_representation():
    cfg = ExperimentConfig(
        "oct", "gsa", image_size=8, recipe=RecipeChoice("recommended", 5), pixel_cnn=PixelCNNDesign(4)
    )
    net = build_model(cfg, 2, _x())
    assert net.pixel_cnn.in_channels == 5
    assert net.pixel_rep.shape[1] == 5
    with pytest.raises(ValueError, match="low-rank recipe"):
        cfg.replace(recipe="paper")


def test_paper_design_keeps_earlier_run_ids_and_new_designs_get_new_ones():
    base = ExperimentConfig("oct", "gsa")
    fields = {
        k: v
        for k, v in base.to_dict().items()
        if k
        not in (
            "kernel_size",
            "num_hidden_layers",
            "last_kernel_size",
            "dense",
            "pixel_rank",
            "channels",
            "csv",
            "split_file",
            "duplicates",
            "resize",
        )  # added later still
        and not (k == "merge_val" and v is True)
    }  # merge_val enters the hash only when False
    import hashlib
    import json

    old_hash = hashlib.sha1(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()
    assert base.full_hash() == old_hash  # the hash before the design fields existed
    ids = {c.run_id() for c in configs_from_grid(base.to_dict(), {"kernel_size": [3, 5, 7], "pixel_rank": [None, 16]})}
    assert len(ids) == 6


def test_other_methods_ignore_the_design_fields():
    v = ExperimentConfig.from_flat({"dataset": "oct", "method": "vanilla", "kernel_size": 7, "pixel_rank": 16})
    assert v.pixel_cnn is None and v.recipe is None
    assert v.to_dict()["kernel_size"] is None and v.to_dict()["pixel_rank"] is None
    assert v.run_id() == ExperimentConfig("oct", "vanilla").run_id()


@pytest.mark.parametrize(
    "bad", [dict(kernel_size=4), dict(last_kernel_size=0), dict(num_hidden_layers=0), dict(pixel_rank=0)]
)
def test_invalid_design_is_refused(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        ExperimentConfig.from_flat({"dataset": "oct", "method": "gsa", **bad})


def test_config_round_trip_and_coercion():
    cfg = ExperimentConfig.from_flat({"dataset": "oct", "kernel_size": "5", "dense": "true", "pixel_rank": 16.0})
    assert (cfg.pixel_cnn.kernel_size, cfg.pixel_cnn.dense, cfg.recipe.rank) == (5, True, 16)
    assert ExperimentConfig.from_dict(cfg.to_dict()) == cfg
