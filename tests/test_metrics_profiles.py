import numpy as np
import pytest
import torch

from gsa_utils import attention_quality, get_profile, map_roc_auc, mass_inside, pointing_game
from gsa_utils.profiles import PROFILES


def _mask():
    m = np.zeros((10, 10), bool)
    m[2:5, 2:5] = True
    return m


def test_perfect_inverse_and_flat_maps():
    m = _mask()
    assert map_roc_auc(m.astype(float), m) == 1.0
    assert map_roc_auc(1 - m.astype(float), m) == 0.0
    assert map_roc_auc(np.full((10, 10), 0.3), m) == 0.5
    assert pointing_game(m * 0.9 + 0.05, m) == 1.0
    assert pointing_game(np.full((10, 10), 0.3), m) == pytest.approx(0.09)
    assert mass_inside(np.ones((10, 10)), m) == pytest.approx(0.09)


def test_accepts_tensors_of_map_shape_and_reports_chance():
    m = _mask()
    amap = torch.rand(1, 1, 10, 10)
    q = attention_quality(amap, torch.as_tensor(m))
    assert set(q) == {"roc_auc", "pointing_game", "mass_inside", "mask_fraction"}
    assert q["mask_fraction"] == pytest.approx(0.09)


@pytest.mark.parametrize(
    "amap, mask, msg",
    [
        (np.ones((4, 4)), np.ones((5, 5), bool), "differs"),
        (np.ones((4, 4)), np.ones((4, 4), bool), "both relevant and irrelevant"),
        (np.full((10, 10), np.nan), _mask(), "NaN"),
    ],
)
def test_metric_input_errors(amap, mask, msg):
    with pytest.raises(ValueError, match=msg):
        map_roc_auc(amap, mask)


def test_profile_choice(monkeypatch):
    monkeypatch.setenv("GSA_PROFILE", "full")
    p = get_profile()
    assert p.name == "full" and "GSA_PROFILE" in p.reason
    assert (p.image_size, p.fit.epochs, p.fit.cutoff_epoch, p.fit.lr, p.fit.batch_size) == (224, 250, 60, 1e-4, 32)
    assert p.backbones == ("googlenet", "vgg16", "resnet152", "densenet161") and p.pretrained
    monkeypatch.delenv("GSA_PROFILE")
    if not torch.cuda.is_available():
        assert get_profile().name == "smoke"
    monkeypatch.setenv("GSA_PROFILE", "huge")
    with pytest.raises(ValueError, match="unknown profile 'huge'"):
        get_profile()
    assert get_profile("smoke").reason == "chosen explicitly"
    assert set(PROFILES) == {"smoke", "colab", "full"}


@pytest.mark.parametrize("gib, expected", [(15.0, "colab"), (39.5, "full")])
def test_profile_on_a_cuda_gpu_depends_on_its_memory(monkeypatch, gib, expected):
    from types import SimpleNamespace

    monkeypatch.delenv("GSA_PROFILE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: "a test GPU")
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i=0: SimpleNamespace(total_memory=int(gib * 2**30)))
    p = get_profile()
    assert p.name == expected and "a test GPU" in p.reason


def test_colab_profile_sits_between_smoke_and_full(monkeypatch):
    monkeypatch.setenv("GSA_PROFILE", "colab")
    colab, smoke, full = get_profile(), PROFILES["smoke"], PROFILES["full"]
    assert colab.name == "colab" and colab.image_size == full.image_size == 224
    assert colab.pretrained and len(colab.backbones) == 1 and colab.backbone == colab.backbones[0]
    assert len(smoke.seeds) >= len(colab.seeds) and len(colab.seeds) < len(full.seeds)
    assert colab.fit.epochs < full.fit.epochs and colab.fit.cutoff_epoch < colab.fit.epochs


def test_notebooks_install_from_the_configured_repository():
    """Every chapter's Colab cell installs from the one address set in _config.yml."""
    import json
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    url = re.search(r"^\s*url:\s*(\S+)", (root / "_config.yml").read_text(), re.M).group(1)
    notebooks = sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert notebooks
    toc = (root / "_toc.yml").read_text()
    for nb in notebooks:
        cells = json.loads(nb.read_text())["cells"]
        first_code = next(c for c in cells if c["cell_type"] == "code")
        source = "".join(first_code["source"])
        assert "google.colab" in source and f"git+{url}" in source, nb.name
        assert f"notebooks/{nb.stem}" in toc, f"{nb.name} is not listed in _toc.yml"


@pytest.mark.parametrize("levels", [None, 3, 2])
def test_map_roc_auc_equals_sklearn_with_and_without_ties(levels):
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(levels or 0)
    scores = rng.random((16, 16))
    if levels:  # few distinct values: many ties, as in a saturated map
        scores = np.round(scores * (levels - 1))
    mask = rng.random((16, 16)) < 0.3
    assert map_roc_auc(scores, mask) == pytest.approx(roc_auc_score(mask.ravel(), scores.ravel()))
