"""Tests of the paper's baselines (chapter 10): LR/SVM on pixels, VGG-att3, ResAttNet-92."""

from __future__ import annotations

import hashlib
import os
import urllib.error

import numpy as np
import pytest
import torch
from torch import nn

from gsa_utils import backbones as gsa_models
from gsa_utils.baselines import (
    PARAMETER_TOLERANCE,
    PUBLISHED_PARAMETERS,
    ResAttNet56,
    ResAttNet92,
    SoftMaskBranch,
    VGGAtt3,
    evaluate_pixel_baseline,
    fit_pixel_baseline,
    vgg16_conv_parameter_count,
    vgg16_weights_file,
)
from gsa_utils.baselines.resattnet import PreActBottleneck
from gsa_utils.data import DataError


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# --------------------------------------------------------------------------- LR / SVM on pixels


def pixel_problem(n_per_class: int, seed: int, shift: float = 0.0):
    """3 classes of 1 x 6 x 6 images; class k brightens row k (plus noise)."""
    g = np.random.default_rng(seed)
    y = np.repeat(np.arange(3), n_per_class)
    x = g.normal(0.0, 0.3, size=(len(y), 1, 6, 6)) + shift
    for k in range(3):
        x[y == k, 0, 2 * k, :] += 1.5
    order = g.permutation(len(y))
    return torch.as_tensor(x[order], dtype=torch.float32), torch.as_tensor(y[order])


@pytest.fixture(scope="module")
def pixel_data():
    x_tr, y_tr = pixel_problem(20, seed=0)
    x_te, y_te = pixel_problem(10, seed=1)
    return x_tr, y_tr, x_te, y_te


@pytest.mark.parametrize("kind", ["lr", "svm"])
def test_pixel_baseline_grid_search_beats_chance(kind, pixel_data):
    x_tr, y_tr, x_te, y_te = pixel_data
    model = fit_pixel_baseline(kind, x_tr, y_tr, cv=5, seed=0)
    result = evaluate_pixel_baseline(model, x_te, y_te)
    assert result["accuracy"] >= 0.9  # chance is 1/3
    assert result["n_test"] == 30
    grid = {
        "lr": {"C": [1e-3, 1e-2, 0.1, 1.0, 10.0]},
        "svm": {"kernel": ["linear", "rbf"], "C": [0.1, 1.0, 10.0], "gamma": ["scale"]},
    }[kind]
    assert set(result["best_params"]) == set(grid)
    assert all(result["best_params"][k] in v for k, v in grid.items())
    n_settings = int(np.prod([len(v) for v in grid.values()]))
    assert len(model.cv_results_["params"]) == n_settings and model.n_splits_ == 5


def test_pixel_baseline_selects_on_training_folds_only(pixel_data):
    x_tr, y_tr, x_te, y_te = pixel_data
    model = fit_pixel_baseline("lr", x_tr, y_tr, cv=4, seed=3)
    # best_params_ is the arg-max of the cross-validated training score ...
    scores = model.cv_results_["mean_test_score"]
    assert model.best_params_ == model.cv_results_["params"][int(np.argmax(scores))]
    assert model.best_score_ == pytest.approx(scores.max())
    # ... and every fold and the final refit saw training images only.
    assert model.n_splits_ == 4
    scaler = model.best_estimator_.named_steps["scale"]
    assert scaler.n_samples_seen_ == len(y_tr)
    np.testing.assert_allclose(scaler.mean_, x_tr.reshape(len(x_tr), -1).double().mean(0).numpy(), atol=1e-6)
    before = scaler.mean_.copy()
    evaluate_pixel_baseline(model, x_te + 5.0, y_te)  # a shifted test set must not be learnt from
    np.testing.assert_array_equal(scaler.mean_, before)
    # the folds are seeded: refitting gives identical cross-validation results
    again = fit_pixel_baseline("lr", x_tr, y_tr, cv=4, seed=3)
    np.testing.assert_array_equal(again.cv_results_["mean_test_score"], scores)


def test_pixel_baseline_inputs_and_custom_grid(pixel_data):
    x_tr, y_tr, x_te, y_te = pixel_data
    model = fit_pixel_baseline("svm", x_tr.numpy(), y_tr.numpy(), param_grid={"kernel": ["linear"], "C": [1.0]})
    result = evaluate_pixel_baseline(model, x_te.numpy(), y_te.numpy())
    assert result["best_params"] == {"kernel": "linear", "C": 1.0}
    with pytest.raises(DataError, match="4-D"):
        fit_pixel_baseline("lr", x_tr[:, 0], y_tr)
    with pytest.raises(DataError, match="entries"):
        fit_pixel_baseline("lr", x_tr, y_tr[:-1])
    with pytest.raises(ValueError, match="kind"):
        fit_pixel_baseline("knn", x_tr, y_tr)


def test_pixel_baseline_cv_shrinks_for_small_classes(pixel_data):
    x_tr, y_tr, _, _ = pixel_data
    keep = torch.cat([torch.nonzero(y_tr != 2)[:, 0], torch.nonzero(y_tr == 2)[:3, 0]])
    model = fit_pixel_baseline("lr", x_tr[keep], y_tr[keep], param_grid={"C": [1.0]}, cv=5)
    assert model.n_splits_ == 3
    keep = torch.cat([torch.nonzero(y_tr != 2)[:, 0], torch.nonzero(y_tr == 2)[:1, 0]])
    with pytest.raises(DataError, match="class 2 has only 1 training image"):
        fit_pixel_baseline("lr", x_tr[keep], y_tr[keep])
    with pytest.raises(DataError, match="single class"):
        fit_pixel_baseline("lr", x_tr[y_tr == 0], y_tr[y_tr == 0])


# --------------------------------------------------------------------------- VGG-att3


def vgg_att3_parameter_formula(num_classes: int, image_size: int, global_dim: int = 512) -> int:
    """VGG-16 conv part + projection of conv3_3 (256 -> 512) + three u vectors + global FC + classifier."""
    conv = 14_714_688
    projection = 256 * global_dim
    compatibility = 3 * global_dim
    pooled = 512 * (image_size // 32) ** 2
    global_fc = pooled * global_dim + global_dim
    classifier = 3 * global_dim * num_classes + num_classes
    return conv + projection + compatibility + global_fc + classifier


@pytest.mark.parametrize("num_classes,image_size", [(1000, 224), (5, 224), (5, 32), (2, 64)])
def test_vgg_att3_parameter_count(num_classes, image_size):
    model = VGGAtt3(num_classes, image_size=image_size)
    assert vgg16_conv_parameter_count() == 14_714_688 == n_params(model.features)
    assert n_params(model) == vgg_att3_parameter_formula(num_classes, image_size)


def test_vgg_att3_small_images_shapes_and_attention():
    torch.manual_seed(0)
    model = VGGAtt3(num_classes=5, image_size=32)
    x = torch.randn(2, 3, 32, 32)
    logits, maps = model.forward_with_attention(x)
    assert logits.shape == (2, 5)
    assert [tuple(m.shape) for m in maps] == [(2, 8, 8), (2, 4, 4), (2, 2, 2)]
    for m in maps:
        assert (m >= 0).all()
        torch.testing.assert_close(m.sum(dim=(1, 2)), torch.ones(2))
    assert all(torch.equal(a, b) for a, b in zip(maps, model.attention_maps(x)))
    logits.sum().backward()
    assert model.features[0].weight.grad is not None
    with pytest.raises(ValueError, match="image_size"):
        model(torch.randn(1, 3, 64, 64))


def test_vgg_att3_224px():
    model = VGGAtt3(num_classes=5).eval()
    with torch.no_grad():
        logits, maps = model.forward_with_attention(torch.randn(1, 3, 224, 224))
    assert logits.shape == (1, 5) and torch.isfinite(logits).all()
    assert [tuple(m.shape) for m in maps] == [(1, 56, 56), (1, 28, 28), (1, 14, 14)]
    for m in maps:
        torch.testing.assert_close(m.sum(), torch.tensor(1.0))


def test_vgg_att3_compatibility_and_global_feature():
    """<u, l + g> = <u, l> + const: the softmax removes g; the dot product keeps it."""
    torch.manual_seed(1)
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    for compatibility, g_matters in [("pc", False), ("dp", True)]:
        model = VGGAtt3(num_classes=3, image_size=32, compatibility=compatibility).double()
        before = model.attention_maps(x)
        with torch.no_grad():
            model.global_fc.weight.normal_(0.0, 0.05)
            model.global_fc.bias.normal_(0.0, 0.5)
        after = model.attention_maps(x)
        same = all(torch.allclose(a, b, rtol=0.0, atol=1e-9) for a, b in zip(before, after))
        assert same is not g_matters, compatibility


def use_temporary_hub_dir(monkeypatch, tmp_path) -> None:
    """torch.hub.set_dir(tmp_path) for one test; monkeypatch puts the previous setting back."""
    monkeypatch.setattr(torch.hub, "_hub_dir", torch.hub._hub_dir)  # remember the current value
    torch.hub.set_dir(str(tmp_path))


def test_vgg_att3_pretrained_offline_error(monkeypatch, tmp_path):
    use_temporary_hub_dir(monkeypatch, tmp_path)

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    expected = os.path.join(str(tmp_path), "checkpoints", "vgg16-397923af.pth")
    assert vgg16_weights_file() == expected
    with pytest.raises(RuntimeError, match="vgg16-397923af.pth") as info:
        VGGAtt3(num_classes=2, pretrained=True, image_size=32)
    assert expected in str(info.value)
    assert isinstance(info.value.__cause__, urllib.error.URLError)


def test_vgg_att3_pretrained_loads_conv_weights_from_hub_cache(monkeypatch, tmp_path):
    from torchvision.models.vgg import cfgs, make_layers

    use_temporary_hub_dir(monkeypatch, tmp_path)
    torch.manual_seed(2)
    reference = make_layers(cfgs["D"])  # torchvision's own VGG-16 conv part (random weights)
    state = {f"features.{k}": v.clone() for k, v in reference.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(4, 4)  # a real file also holds the FC layers
    os.makedirs(tmp_path / "checkpoints")
    torch.save(state, vgg16_weights_file())
    # the planted file is not the published one: let its own hash stand in for the one in the published name
    planted = hashlib.sha256(open(vgg16_weights_file(), "rb").read()).hexdigest()[:8]
    monkeypatch.setattr(gsa_models, "_published_hash_prefix", lambda path: planted)
    model = VGGAtt3(num_classes=2, pretrained=True, image_size=32)
    loaded = model.features.state_dict()
    assert set(loaded) == {k[len("features.") :] for k in state if k.startswith("features.")}
    for key, value in loaded.items():
        assert torch.equal(value, state[f"features.{key}"]), key
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 2)


# --------------------------------------------------------------------------- ResAttNet-92


@pytest.mark.parametrize("cls,name", [(ResAttNet92, "ResAttNet-92"), (ResAttNet56, "ResAttNet-56")])
def test_resattnet_parameter_count_close_to_published(cls, name):
    n = n_params(cls(num_classes=1000))
    published = PUBLISHED_PARAMETERS[name]
    assert abs(n / published - 1.0) < PARAMETER_TOLERANCE, (name, n, published)


def test_resattnet92_structure():
    model = ResAttNet92(num_classes=10, base_width=4)
    masks = [m for m in model.modules() if isinstance(m, SoftMaskBranch)]
    assert [len(m.down) for m in masks] == [3, 2, 2, 1, 1, 1]  # 1, 2, 3 modules; depths 3, 2, 1
    mask_units = {id(u) for m in masks for u in m.modules() if isinstance(u, PreActBottleneck)}
    trunk_units = [u for u in model.modules() if isinstance(u, PreActBottleneck) and id(u) not in mask_units]
    # 92 trunk layers = stem conv + 3 convs per trunk residual unit + fully connected layer
    assert 1 + 3 * len(trunk_units) + 1 == 92
    assert [model.stages[i][0].conv3.out_channels for i in range(4)] == [16, 32, 64, 128]


def test_resattnet92_tiny_forward_backward_and_masks():
    torch.manual_seed(0)
    model = ResAttNet92(num_classes=3, base_width=4)
    x = torch.randn(2, 3, 64, 64)
    logits = model(x)
    assert logits.shape == (2, 3)
    nn.functional.cross_entropy(logits, torch.tensor([0, 2])).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    masks = model.soft_masks(x)
    assert [tuple(m.shape) for m in masks] == [(2, 16, 16, 16)] + [(2, 32, 8, 8)] * 2 + [(2, 64, 4, 4)] * 3
    for m in masks:
        assert bool((m > 0).all()) and bool((m < 1).all())
        assert float(m.std()) > 1e-3  # a real map, not a constant


def test_resattnet92_small_and_odd_sizes():
    model = ResAttNet92(num_classes=4, base_width=4).eval()
    with torch.no_grad():
        for size in (32, 45):  # 32 px reaches 1 x 1 in stage 4; 45 px gives odd sizes throughout
            assert model(torch.randn(2, 3, size, size)).shape == (2, 4)
        assert model(torch.randn(1, 3, 40, 56)).shape == (1, 4)  # non-square
