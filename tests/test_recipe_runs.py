"""Recipes by name end to end (config, run name, table row, CLI) and the collapse warning."""

import json
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from gsa_utils.cli import main as cli_main
from gsa_utils.history import History
from gsa_utils.profiles import PROFILES
from gsa_utils.recipes import RECIPES, PixelCNNDesign, RecipeChoice
from gsa_utils.runs import ExperimentConfig
from gsa_utils.runs.config import method_label
from gsa_utils.runs.markdown import table_to_markdown
from gsa_utils.runs.runner import build_model
from gsa_utils.runs.store import CONFIG_FILE, RESULT_FILE, load_results, save_result
from gsa_utils.runs.tables import build_table, table_to_csv
from gsa_utils.stability import CollapseWarning
from gsa_utils.training import two_phase_fit


def test_profiles_default_to_the_recommended_recipe_and_paper_is_one_switch():
    assert {p.recipe for p in PROFILES.values()} == {"recommended"}
    cfg = ExperimentConfig.from_profile("fundus", "gsa", "full", recipe="paper")
    assert cfg.recipe == RecipeChoice("paper") and "gsa-paper" in cfg.run_id()
    assert ExperimentConfig.from_profile("fundus", "vanilla", "smoke").recipe is None
    with pytest.raises(ValueError, match="unknown recipe"):
        ExperimentConfig("fundus", recipe="nope")


def test_none_override_is_applied_not_ignored():
    cfg = ExperimentConfig.from_profile("fundus", "gsa", "smoke", cutoff_epoch=None)
    assert PROFILES["smoke"].fit.cutoff_epoch is not None and cfg.fit.cutoff_epoch is None
    with pytest.raises(ValueError, match="epochs must be set"):
        ExperimentConfig.from_profile("fundus", "gsa", "smoke", epochs=None)


@pytest.mark.parametrize("recipe", ["paper", "recommended"])
def test_config_recipe_reaches_build_gsa_unchanged(recipe, monkeypatch):
    import gsa_utils.runs.methods as methods

    seen = []
    real = methods.build_gsa

    def spy(backbone, x_train, recipe, design, **overrides):
        seen.append((recipe, design, overrides))
        return real(backbone, x_train, recipe, design, **overrides)

    monkeypatch.setattr(methods, "build_gsa", spy)
    cfg = ExperimentConfig.from_profile("fundus", "gsa", "smoke", recipe=recipe)
    model = build_model(cfg, 2, torch.rand(10, 3, 8, 8))
    assert seen == [(RECIPES[recipe], PixelCNNDesign(16), {})] and model.pixel_cnn.map_norm == RECIPES[recipe].map_norm
    assert model.pixel_rep.shape[1] == (30 if recipe == "paper" else RECIPES[recipe].rank)


def test_cli_recipe_and_none_reach_the_config(tmp_path, capsys):
    code = cli_main(
        [
            "sweep",
            "--dataset",
            "fundus",
            "--methods",
            "gsa",
            "--folds",
            "full",
            "--profile",
            "smoke",
            "--recipe",
            "paper",
            "--pixel-cnn-lr",
            "none",
            "--dry-run",
            "--results",
            str(tmp_path),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and "fundus_gsa-paper_small_cnn_full_s0_" in out
    code = cli_main(
        [
            "sweep",
            "--dataset",
            "fundus",
            "--methods",
            "gsa",
            "--folds",
            "full",
            "--profile",
            "smoke",
            "--grid",
            "gsa.recipe=paper,recommended",
            "--dry-run",
            "--results",
            str(tmp_path),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and "gsa-paper_" in out and "gsa-recommended_" in out


def _save(root, recipe, seed, acc, collapsed):
    cfg = ExperimentConfig.from_profile("fundus", "gsa", "smoke", recipe=recipe, seed=seed, epochs=2)
    records = [{"epoch": e, "test_acc": acc, "collapsed": collapsed and e == 2} for e in (1, 2)]
    history = History(records=records, maps={2: np.zeros((4, 4), dtype=np.float32)})  # a GSA run keeps its map
    save_result(cfg, root, history, dataset={"name": "fundus", "statement": "fundus: test"})


def test_recipe_named_in_table_rows_never_pooled_with_collapse_counts(tmp_path):
    for seed in (0, 1):
        _save(tmp_path, "paper", seed, 0.5, collapsed=True)
        _save(tmp_path, "recommended", seed, 0.9, collapsed=seed == 1)
    rows = [r for r in build_table(tmp_path, ["fundus"], paper_rows=False) if r.method == "gsa"]
    by = {r.recipe: r for r in rows}
    assert set(by) == {"paper", "recommended"}
    assert by["paper"].shown_label.endswith("[recipe: paper]")
    assert by["paper"].cells["fundus"].mean == pytest.approx(50.0)
    assert by["recommended"].cells["fundus"].mean == pytest.approx(90.0)
    assert (by["paper"].cells["fundus"].collapsed, by["paper"].cells["fundus"].checked) == (2, 2)
    assert by["recommended"].cells["fundus"].collapsed == 1
    md = table_to_markdown(rows)
    assert "recipe: recommended" in md and "collapsed 2/2" in md
    csv_text = table_to_csv(rows, tmp_path / "t.csv").read_text()
    assert "fundus collapsed" in csv_text.splitlines()[0]


def test_old_results_without_recipe_read_as_paper(tmp_path):
    _save(tmp_path, "paper", 0, 0.6, collapsed=False)
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    data = json.loads((run_dir / RESULT_FILE).read_text())
    assert "config" not in data  # the settings are kept once, in config.json
    data["config"] = json.loads((run_dir / CONFIG_FILE).read_text())["config"]  # older folders kept a copy here
    del data["config"]["recipe"]
    (run_dir / CONFIG_FILE).unlink()
    for rec in data["history"]["records"]:
        rec.pop("collapsed")
    (run_dir / RESULT_FILE).write_text(json.dumps(data))
    (run,) = load_results(tmp_path)
    assert run.config.recipe == RecipeChoice("paper") and method_label(run.config) == "gsa-paper"
    (row,) = [r for r in build_table(tmp_path, ["fundus"], paper_rows=False) if r.method == "gsa"]
    assert row.recipe == "paper" and row.cells["fundus"].checked == 0


class _ZeroMap(nn.Module):
    """A classifier whose map is all zeros (a fully saturated map)."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 12 * 12, 2))

    def attention_map(self):
        return torch.zeros(1, 1, 12, 12)

    def forward(self, x, attention_map=None):
        return self.net(x * (attention_map if attention_map is not None else 1.0))


class _OneClass(nn.Module):
    """A classifier that always predicts class 0."""

    def __init__(self):
        super().__init__()
        self.bias = nn.Parameter(torch.tensor([5.0, -5.0]))

    def forward(self, x):
        return self.bias.expand(len(x), 2) + 0.0 * x.mean()


# a saturated map is flagged at once; one predicted class only once it has lasted
# ONE_CLASS_PATIENCE (3) epochs, since a new classifier often starts that way; a new
# warning only when the reason changes (the zero map's constant input adds one class)
@pytest.mark.parametrize("model, reason, first, count", [(_ZeroMap, "saturated", 1, 2), (_OneClass, "one class", 3, 1)])
def test_collapse_warns_when_it_starts_and_is_recorded(tiny_data, model, reason, first, count):
    x, y = tiny_data
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        hist = two_phase_fit(
            model(), x, y, epochs=4, lr=1e-4, batch_size=20, progress=False, eval_sets={"test": (x, y)}
        )
    ours = [w for w in caught if issubclass(w.category, CollapseWarning)]
    assert len(ours) == count and f"epoch {first}:" in str(ours[0].message)
    assert reason in str(ours[0].message)
    assert [r["collapsed"] for r in hist.records] == [e >= first for e in (1, 2, 3, 4)]
    assert reason in hist.records[-1]["collapse_reason"]


def test_one_class_streak_survives_a_resume(tiny_data, tmp_path):
    x, y = tiny_data
    ckpt = tmp_path / "one_class.ckpt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CollapseWarning)
        two_phase_fit(
            _OneClass(),
            x,
            y,
            epochs=2,
            lr=1e-4,
            batch_size=20,
            progress=False,
            eval_sets={"test": (x, y)},
            checkpoint=ckpt,
        )
        resumed = two_phase_fit(
            _OneClass(),
            x,
            y,
            epochs=3,
            lr=1e-4,
            batch_size=20,
            progress=False,
            eval_sets={"test": (x, y)},
            checkpoint=ckpt,
        )
    assert [r["test_one_class_epochs"] for r in resumed.records] == [1, 2, 3]
    assert resumed.records[-1]["collapsed"]


def test_healthy_run_is_not_flagged(tiny_data):
    x, y = tiny_data
    torch.manual_seed(0)
    linear = nn.Sequential(nn.Flatten(), nn.Linear(3 * 12 * 12, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error", CollapseWarning)
        hist = two_phase_fit(linear, x, y, epochs=3, lr=1e-2, batch_size=8, progress=False, eval_sets={"test": (x, y)})
    assert hist.records[-1]["collapsed"] is False and hist.records[-1]["test_pred_classes"] == 2
