"""The command line's settings are built from the config's fields: nested ``--fit.NAME`` and flat aliases."""

import pytest

from gsa_utils.cli_options import overrides as _overrides
from gsa_utils.cli_options import parse_grid as _parse_grid
from gsa_utils.cli_options import parser as _parser
from gsa_utils.runs.config import FLAT_NAMES, ExperimentConfig


def _settings(*argv: str) -> dict:
    return _overrides(_parser().parse_args(["run", "--dataset", "fundus", *argv]))


def test_fit_settings_are_addressable_nested_and_by_their_flat_names():
    nested = _settings("--fit.l1-weight", "0.01", "--fit.epochs", "3", "--fit.cutoff-epoch", "2")
    flat = _settings("--l1-weight", "0.01", "--epochs", "3", "--cutoff-epoch", "2")
    assert nested == flat == {"l1_weight": 0.01, "epochs": 3, "cutoff_epoch": 2}
    assert isinstance(nested["epochs"], int) and isinstance(nested["l1_weight"], float)


def test_every_setting_but_the_commands_own_is_an_option():
    options = {a.dest for a in _parser()._subparsers._group_actions[0].choices["sweep"]._actions}
    settings = set(FLAT_NAMES) - {"dataset", "method", "backbone", "fold"}
    assert settings <= options


def test_pixel_cnn_settings_are_addressable_nested_and_by_their_flat_names():
    nested = _settings("--pixel-cnn.kernel-size", "5", "--pixel-cnn.hidden-channels", "8")
    assert (
        nested == _settings("--kernel-size", "5", "--hidden-channels", "8") == {"kernel_size": 5, "hidden_channels": 8}
    )


def test_options_are_typed_by_the_annotations_and_none_means_none():
    got = _settings(
        "--pixel-cnn-lr", "none", "--dense", "--no-merge-val", "--pixel-rank", "8", "--recipe", "recommended"
    )
    assert got == {"pixel_cnn_lr": None, "dense": True, "merge_val": False, "pixel_rank": 8, "recipe": "recommended"}
    config = ExperimentConfig.from_profile("fundus", "gsa", "smoke", **got)
    assert (config.fit.pixel_cnn_lr, config.pixel_cnn.dense, config.merge_val, config.recipe.rank) == (
        None,
        True,
        False,
        8,
    )


@pytest.mark.parametrize("argv", [["--epochs", "2.5"], ["--fit.lr", "fast"], ["--recipe", "nope"], ["--channels", "2"]])
def test_a_bad_value_is_refused_by_the_parser(argv):
    with pytest.raises(SystemExit):
        _settings(*argv)


def test_grid_keys_take_fit_names_and_method_names():
    grid = _parse_grid(
        ["fit.l1-weight=0.1,0.01", "l1.l1_weight=1,10", "gsa.recipe=paper,recommended", "pixel-cnn.dense=true"]
    )
    assert grid == {
        "l1_weight": [0.1, 0.01],
        "l1.l1_weight": [1.0, 10.0],
        "gsa.recipe": ["paper", "recommended"],
        "dense": [True],
    }


def test_profile_help_names_every_profile():
    text = _parser().format_help() + _parser()._subparsers._group_actions[0].choices["run"].format_help()
    assert "smoke, colab or full" in text
