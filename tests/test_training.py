"""two_phase_fit: Algorithm 1, checkpoints, resuming, validation (chapter 5)."""

import json

import pytest
import torch

from gsa_utils import (
    DataError,
    GlobalSpatialAttention,
    History,
    PixelCNN,
    SmallCNN,
    evaluate,
    pixel_representation,
    seed_everything,
    two_phase_fit,
)

FAST = dict(epochs=4, cutoff_epoch=2, lr=1e-2, batch_size=8, l1_weight=1e-3, progress=False)


def _model(x, seed=0):
    seed_everything(seed)
    p = pixel_representation(x)
    return GlobalSpatialAttention(SmallCNN(2, width=4), PixelCNN(p.shape[1], 4), p)


def test_two_phases_and_history(tiny_data):
    x, y = tiny_data
    model = _model(x)
    h = two_phase_fit(model, x, y, eval_sets={"test": (x, y)}, map_snapshots=(0, 2, 4), **FAST)
    assert [r["phase"] for r in h.records] == [1, 1, 2, 2]
    assert model.frozen and model.pixel_rep is None
    assert set(h.maps) == {0, 2, 4} and h.maps[0].shape == (12, 12)
    assert (h.maps[2] == h.maps[4]).all() and not (h.maps[0] == h.maps[2]).all()
    assert h["test_acc"].shape == (4,) and h["train_l1"][0] > 0
    assert h.config["cutoff_epoch"] == 2 and h.config["n_train"] == 40


def test_learns_the_task(tiny_data):
    x, y = tiny_data
    model = _model(x)
    two_phase_fit(model, x, y, **{**FAST, "epochs": 15})
    assert evaluate(model, x, y)["acc"] > 0.9


def test_no_pixel_cnn_forward_after_freeze(tiny_data):
    x, y = tiny_data
    model = _model(x)
    calls = []
    model.pixel_cnn.register_forward_hook(lambda *a: calls.append(1))
    epochs_seen = []
    two_phase_fit(
        model, x, y, eval_sets={"test": (x, y)}, on_epoch_end=lambda e, r: epochs_seen.append((e, len(calls))), **FAST
    )
    after_phase1 = epochs_seen[1][1]
    assert after_phase1 > 0  # the map was computed while learning it...
    assert epochs_seen[-1][1] == after_phase1  # ...and never again in phase 2 (freeze computes it once)


def test_vanilla_model_trains_without_l1(tiny_data):
    x, y = tiny_data
    seed_everything(0)
    h = two_phase_fit(SmallCNN(2, width=4), x, y, **FAST)
    assert h.config["cutoff_epoch"] is None and (h["train_l1"] == 0).all()
    assert (h["phase"] == 1).all()


def test_resume_after_interruption_gives_same_weights(tiny_data, tmp_path):
    x, y = tiny_data
    straight = _model(x)
    two_phase_fit(straight, x, y, **FAST)

    ckpt = tmp_path / "run.pt"
    interrupted = _model(x)

    def stop(epoch, record):
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        two_phase_fit(interrupted, x, y, checkpoint=ckpt, on_epoch_end=stop, **FAST)
    assert ckpt.exists() and not (tmp_path / "run.pt.tmp").exists()

    resumed = _model(x, seed=123)  # a fresh process would build a new model: the checkpoint restores it
    h = two_phase_fit(resumed, x, y, checkpoint=ckpt, **FAST)
    assert [r["epoch"] for r in h.records] == [1, 2, 3, 4]
    for (k, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), k


def test_resume_sets_aside_a_checkpoint_of_other_settings(tiny_data, tmp_path):
    from gsa_utils.checkpoints import CheckpointRecoveryWarning

    x, y = tiny_data
    ckpt = tmp_path / "run.pt"
    two_phase_fit(_model(x), x, y, checkpoint=ckpt, **{**FAST, "epochs": 1})
    with pytest.warns(CheckpointRecoveryWarning, match=r"lr: checkpoint 0.01 vs now 0.001.*run\.pt\.foreign"):
        h = two_phase_fit(_model(x), x, y, checkpoint=ckpt, **{**FAST, "lr": 1e-3})
    assert len(h.records) == FAST["epochs"] and (tmp_path / "run.pt.foreign").exists()


def test_history_json_roundtrip(tiny_data, tmp_path):
    x, y = tiny_data
    h = two_phase_fit(_model(x), x, y, map_snapshots=(0, 4), **FAST)
    (tmp_path / "h.json").write_text(json.dumps(h.to_dict()))
    back = History.from_dict(json.loads((tmp_path / "h.json").read_text()))
    assert back.records == h.records and (back.maps[4] == h.maps[4]).all()


@pytest.mark.parametrize(
    "mutate, msg",
    [
        (lambda x, y: (x, y + 5), r"training labels\[\d+\] = \d+ is outside"),
        (lambda x, y: (x, torch.zeros_like(y)), "single class"),
        (lambda x, y: (x, y.float()), "integer"),
        (lambda x, y: (x[:10], y), "has 40 entries but there are 10 images"),
        (
            lambda x, y: (
                x.double().masked_fill(
                    torch.zeros_like(x, dtype=torch.bool).index_fill_(0, torch.tensor([3]), True), float("nan")
                ),
                y,
            ),
            r"training images\[3\] contains NaN",
        ),
        (lambda x, y: ((x * 255).to(torch.uint8), y), "floating point"),
    ],
)
def test_bad_training_input_is_named(tiny_data, mutate, msg, tmp_path):
    x, y = tiny_data
    bx, by = mutate(x, y)
    ckpt = tmp_path / "never.pt"
    with pytest.raises(DataError, match=msg):
        two_phase_fit(SmallCNN(2, width=4), bx, by, checkpoint=ckpt, num_classes=2, **FAST)
    assert not ckpt.exists()


def test_eval_set_of_other_size_is_rejected(tiny_data):
    x, y = tiny_data
    with pytest.raises(DataError, match="eval set 'test' images are"):
        two_phase_fit(SmallCNN(2, width=4), x, y, eval_sets={"test": (torch.rand(4, 3, 8, 8), y[:4])}, **FAST)


def test_map_warmup_holds_the_map_then_learns(tiny_data):
    x, y = tiny_data
    model = _model(x)
    h = two_phase_fit(model, x, y, map_snapshots=(0, 1, 2, 3), map_warmup_epochs=2, **{**FAST, "cutoff_epoch": 3})
    assert (h.maps[0] == h.maps[1]).all() and (h.maps[1] == h.maps[2]).all()
    assert not (h.maps[2] == h.maps[3]).all()
    assert h.config["map_warmup_epochs"] == 2


def test_fit_settings_one_object_from_profile_to_checkpoint(tiny_data, tmp_path):
    from gsa_utils import FitSettings, HasAttentionMap, TwoPhaseModel, get_profile

    assert FitSettings() == FitSettings(epochs=250, cutoff_epoch=60, lr=1e-4, batch_size=32)  # the paper's
    with pytest.raises(TypeError, match="no field"):
        FitSettings().replace(epoch=3)
    with pytest.raises(ValueError, match="epochs"):
        FitSettings(epochs=0)
    x, y = tiny_data
    model = _model(x)
    assert isinstance(model, TwoPhaseModel) and not isinstance(SmallCNN(2, width=4), HasAttentionMap)
    settings = get_profile("smoke").fit.replace(epochs=2, cutoff_epoch=1, batch_size=8)
    h = two_phase_fit(model, x, y, settings, checkpoint=tmp_path / "c.pt", progress=False)
    assert (
        FitSettings(**{k: h.config[k] for k in FitSettings.names()}) == settings
    )  # the history records the settings it ran with
    with pytest.warns(UserWarning, match="map_warmup_epochs"):  # a checkpoint of other settings is set aside
        two_phase_fit(
            _model(x), x, y, settings.replace(map_warmup_epochs=2), checkpoint=tmp_path / "c.pt", progress=False
        )


def test_l1_weights_starting_at_one_are_no_collapse(tiny_data):
    # the L1 baseline's weights start at 1 by design: no saturated sigmoid, no warning
    import warnings

    from gsa_utils.baselines import L1PixelWeights
    from gsa_utils.stability import CollapseWarning

    x, y = tiny_data
    seed_everything(0)
    model = L1PixelWeights(SmallCNN(2, width=4), tuple(x.shape[-2:]))
    with warnings.catch_warnings():
        warnings.simplefilter("error", CollapseWarning)
        history = two_phase_fit(model, x, y, **{**FAST, "epochs": 1, "l1_weight": 0.0, "lr": 1e-6})
    assert not history.records[-1]["collapsed"]
