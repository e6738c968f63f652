"""build_backbone: the paper's four CNNs plus quick ones, and pretrained-weight handling."""

import hashlib
import re
import urllib.error
from dataclasses import dataclass, field

import pytest
import torch
import torchvision

from gsa_utils import BACKBONES, PretrainedWeightsError, build_backbone
from gsa_utils import backbones as gsa_models
from gsa_utils.backbones import weights_cache_path


@pytest.mark.parametrize("name", BACKBONES)
def test_every_backbone_gets_a_new_head(name):
    torch.manual_seed(0)
    model = build_backbone(name, num_classes=5, pretrained=False).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, 32, 32))
    assert out.shape == (2, 5)


@dataclass(frozen=True)
class _Weights:
    """Stands in for a torchvision weights enum whose published file name carries ``prefix``."""

    url: str
    meta: dict = field(default_factory=lambda: {"categories": [str(i) for i in range(1000)]})


def _publish(tmp_path, obj, stem: str = "resnet18") -> _Weights:
    """Save ``obj`` as a weights file named, as torchvision names its files, by its SHA-256 prefix."""
    (tmp_path / "checkpoints").mkdir(exist_ok=True)
    staged = tmp_path / "staged.pth"
    torch.save(obj, staged)
    prefix = hashlib.sha256(staged.read_bytes()).hexdigest()[:8]
    staged.rename(tmp_path / "checkpoints" / f"{stem}-{prefix}.pth")
    return _Weights(f"https://example.org/models/{stem}-{prefix}.pth")


def _use_weights(monkeypatch, weights: _Weights) -> None:
    builders = gsa_models._torchvision_builders()
    builder, _, head = builders["resnet18"]
    monkeypatch.setattr(gsa_models, "_torchvision_builders", lambda: {**builders, "resnet18": (builder, weights, head)})


def test_pretrained_loads_exact_weights_from_the_torch_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path))
    torch.manual_seed(1)
    reference = torchvision.models.resnet18().state_dict()
    weights = _publish(tmp_path, reference)
    assert weights_cache_path(weights).startswith(str(tmp_path))
    _use_weights(monkeypatch, weights)
    model = build_backbone("resnet18", num_classes=3, pretrained=True)
    for k, v in model.state_dict().items():
        if not k.startswith("fc."):
            assert torch.equal(v, reference[k]), k
    assert model.fc.out_features == 3


class _Payload:
    """Unpickling this creates ``marker``: proof that code from the file ran."""

    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_planted_weights_file_runs_nothing(tmp_path, monkeypatch):
    """A file put where torchvision's weights belong (as the offline advice says) is checked before it is read."""
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path))
    marker = tmp_path / "payload-ran"
    weights = torchvision.models.ResNet18_Weights.IMAGENET1K_V1
    (tmp_path / "checkpoints").mkdir()
    torch.save({"fc.weight": _Payload(marker)}, weights_cache_path(weights))
    with pytest.raises(PretrainedWeightsError) as err:
        build_backbone("resnet18", num_classes=2, pretrained=True)
    assert not marker.exists()
    assert "not the published weights file" in str(err.value) and weights_cache_path(weights) in str(err.value)
    # a payload whose name carries its own hash passes the hash check and is still refused by the safe load
    _use_weights(monkeypatch, _publish(tmp_path, {"fc.weight": _Payload(marker)}))
    with pytest.raises(PretrainedWeightsError) as err:
        build_backbone("resnet18", num_classes=2, pretrained=True)
    assert not marker.exists()
    assert "nothing in it ran" in str(err.value) and "weights_only" not in str(err.value)
    assert err.value.__cause__ is None and err.value.__suppress_context__


def test_missing_weights_error_says_where_to_put_them(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(PretrainedWeightsError) as err:
        build_backbone("densenet161", num_classes=2, pretrained=True)
    msg = str(err.value)
    assert str(tmp_path / "checkpoints" / "densenet161-8d451a50.pth") in msg and "pretrained=False" in msg


def test_unknown_or_impossible_requests():
    with pytest.raises(ValueError, match="unknown backbone 'alexnet'"):
        build_backbone("alexnet", 2, pretrained=False)
    with pytest.raises(PretrainedWeightsError, match="small_cnn has no ImageNet weights"):
        build_backbone("small_cnn", 2, pretrained=True)
    with pytest.raises(ValueError, match="num_classes"):
        build_backbone("resnet18", 1, pretrained=False)


@pytest.mark.parametrize("name", ["googlenet", "densenet161"])
def test_pretrained_networks_are_built_as_torchvision_builds_them(name, tmp_path, monkeypatch):
    """GoogLeNet keeps torchvision's input transform and drops its unpretrained auxiliary heads; DenseNet's
    published files use the old layer names (``norm.1``)."""
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path))
    torch.manual_seed(2)
    if name == "googlenet":
        reference = torchvision.models.googlenet(aux_logits=True, init_weights=False).state_dict()
        published = reference
    else:
        reference = torchvision.models.densenet161().state_dict()
        published = {
            re.sub(r"(denselayer\d+\.(?:norm|relu|conv))([12])\.", r"\1.\2.", k): v
            for k, v in reference.items()
            if not k.endswith("num_batches_tracked")
        }  # as published
        assert published.keys() != reference.keys()
    weights = _publish(tmp_path, published, stem=name)
    builders = gsa_models._torchvision_builders()
    builder, _, head = builders[name]
    monkeypatch.setattr(gsa_models, "_torchvision_builders", lambda: {**builders, name: (builder, weights, head)})
    model = build_backbone(name, num_classes=2, pretrained=True)
    state = model.state_dict()
    assert all(
        torch.equal(state[k], reference[k])
        for k in state
        if not k.startswith(("fc.", "classifier.")) and not k.endswith("num_batches_tracked")
    )
    if name == "googlenet":
        assert model.transform_input and model.aux1 is None and not model.aux_logits
