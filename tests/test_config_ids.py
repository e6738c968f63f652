"""Run ids are stable: results folders written before keep their names, and their config.json still reads."""

import json

import pytest

from gsa_utils.recipes import RecipeChoice
from gsa_utils.runs.config import ExperimentConfig

#: (dataset, method, profile, overrides) and the run id the same config had when these ids were pinned.
KNOWN_IDS = [
    (("fundus", "gsa", "smoke", {}), "fundus_gsa-recommended_small_cnn_full_s0_c15c37128c"),
    (("fundus", "vanilla", "smoke", {}), "fundus_vanilla_small_cnn_full_s0_400ddb98e8"),
    (("fundus", "l1", "smoke", {"fold": 2, "seed": 1}), "fundus_l1_small_cnn_fold2_s1_9787a218ad"),
    (
        ("retinamnist", "gsa", "full", {"recipe": "paper", "l1_weight": 0.01}),
        "retinamnist_gsa-paper_resnet152_full_s0_49f47e2355",
    ),
    (
        ("fundus", "gsa", "smoke", {"pixel_rank": 8, "kernel_size": 5}),
        "fundus_gsa-recommended_small_cnn_full_s0_375200cbd9",
    ),
    (("fundus", "resattnet92", "smoke", {}), "fundus_resattnet92_full_s0_66846b6d33"),
    (("fundus", "svm", "smoke", {}), "fundus_svm_full_s0_14857668d1"),
    (
        ("retinamnist", "gsa", "smoke", {"merge_val": False, "pixel_cnn_lr": 1e-4, "map_warmup_epochs": 3}),
        "retinamnist_gsa-recommended_small_cnn_full_s0_0e5e1fdeb8",
    ),
]

#: A config.json written for a GSA run made before recipes existed (no ``recipe`` key).
PRE_RECIPE_CONFIG = {
    "dataset": "fundus",
    "method": "gsa",
    "backbone": "small_cnn",
    "pretrained": False,
    "image_size": 32,
    "epochs": 12,
    "cutoff_epoch": 6,
    "hidden_channels": 16,
    "l1_weight": 0.001,
    "weight_decay": 0.0001,
    "lr": 0.001,
    "batch_size": 32,
    "fold": None,
    "seed": 0,
    "profile": "smoke",
    "n_folds": 5,
    "data_seed": 0,
    "n_train": None,
    "n_test": None,
    "merge_val": True,
    "pixel_cnn_lr": None,
    "map_warmup_epochs": 0,
    "model_width": None,
}


#: A config.json of the flat form (every setting under its own name), as runs with a changed design write it.
FLAT_CONFIG = {
    **PRE_RECIPE_CONFIG,
    "epochs": 30,
    "cutoff_epoch": 15,
    "l1_weight": 0.001,
    "recipe": "recommended",
    "kernel_size": 5,
    "num_hidden_layers": 1,
    "last_kernel_size": 1,
    "dense": False,
    "pixel_rank": 8,
    "channels": None,
    "csv": None,
    "split_file": None,
    "duplicates": "error",
    "resize": False,
}


@pytest.mark.parametrize(("args", "run_id"), KNOWN_IDS)
def test_known_configs_keep_their_run_ids(args, run_id):
    dataset, method, profile, overrides = args
    config = ExperimentConfig.from_profile(dataset, method, profile, **overrides)
    assert config.run_id() == run_id
    assert ExperimentConfig.from_dict(json.loads(json.dumps(config.to_dict()))).run_id() == run_id


def test_config_json_written_before_recipes_reads_as_the_paper_recipe():
    config = ExperimentConfig.from_dict(PRE_RECIPE_CONFIG)
    assert config.recipe == RecipeChoice("paper")
    assert config.run_id() == "fundus_gsa-paper_small_cnn_full_s0_d2ddca4355"


def test_flat_values_are_coerced_by_their_annotations():
    config = ExperimentConfig.from_flat(
        {"dataset": "fundus", "epochs": "5", "l1_weight": "1e-3", "dense": "true", "pixel_cnn_lr": "none"}
    )
    assert (config.fit.epochs, config.fit.l1_weight, config.pixel_cnn.dense, config.fit.pixel_cnn_lr) == (
        5,
        1e-3,
        True,
        None,
    )
    for bad in ({"epochs": 2.5}, {"pretrained": "maybe"}, {"lr": float("nan")}, {"batch_size": True}):
        with pytest.raises(ValueError):
            ExperimentConfig.from_flat({"dataset": "fundus", **bad})


def test_defaults_are_the_fit_settings_and_the_profiles_recipe():
    from gsa_utils.profiles import PROFILES
    from gsa_utils.settings import PAPER_FIT

    config = ExperimentConfig("fundus")
    assert config.fit == PAPER_FIT
    assert {p.recipe for p in PROFILES.values()} == {config.recipe.name}


def test_profile_base_reads_the_profile_back_from_a_label():
    from gsa_utils.runs import profile_base, profile_label

    config = ExperimentConfig.from_profile("fundus", "gsa", "smoke", epochs=5)
    assert profile_label(config) == "smoke (modified: epochs=5)"
    assert profile_base(profile_label(config)) == "smoke" and profile_base(None) == ""


def test_the_profiles_fit_settings_reach_the_config_as_one_object_and_overrides_change_it():
    from gsa_utils.profiles import get_profile
    from gsa_utils.runs.methods import METHOD_TABLE

    smoke = get_profile("smoke")
    assert ExperimentConfig.from_profile("fundus", "gsa", "smoke").fit == smoke.fit
    tuned = ExperimentConfig.from_profile("fundus", "gsa", "smoke", l1_weight=1e-3, hidden_channels=8)
    assert tuned.fit == smoke.fit.replace(l1_weight=1e-3) and tuned.pixel_cnn.hidden_channels == 8
    vanilla = ExperimentConfig.from_profile("fundus", "vanilla", "smoke", l1_weight=1e-3)
    assert vanilla.fit == smoke.fit.replace(l1_weight=0.0, cutoff_epoch=None)  # no map: no lambda, no E
    l1 = ExperimentConfig.from_profile("fundus", "l1", "smoke")
    assert l1.fit.l1_weight == METHOD_TABLE["l1"].l1_weight and l1.fit.l1_reduction == "mean"
    assert ExperimentConfig.from_profile("fundus", "resattnet92", "smoke").model_width == 8
    assert ExperimentConfig.from_profile("fundus", "resattnet92", "full").model_width is None


def test_replace_takes_flat_names_and_refuses_unknown_ones():
    config = ExperimentConfig.from_profile("fundus", "gsa", "smoke")
    assert config.replace(epochs=4, kernel_size=5).fit.epochs == 4
    assert config.replace(kernel_size=5).pixel_cnn.kernel_size == 5
    with pytest.raises(TypeError, match="no setting"):
        config.replace(epoch=4)


def test_a_flat_config_json_reads_into_the_nested_settings_and_keeps_its_run_id():
    config = ExperimentConfig.from_dict(FLAT_CONFIG)
    assert config.fit.l1_weight == 0.001 and config.fit.cutoff_epoch == 15
    assert config.pixel_cnn.kernel_size == 5 and config.recipe == RecipeChoice("recommended", 8)
    assert config.run_id() == "fundus_gsa-recommended_small_cnn_full_s0_e5fd2776e8"
    assert config.to_dict() == FLAT_CONFIG
