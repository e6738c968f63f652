"""build_backbone: the paper's four CNNs plus quick ones, and pretrained-weight handling."""
import urllib.error

import pytest
import torch
import torchvision

from gsa_utils import BACKBONES, PretrainedWeightsError, build_backbone
from gsa_utils.models import weights_cache_path


@pytest.mark.parametrize("name", BACKBONES)
def test_every_backbone_gets_a_new_head(name):
    torch.manual_seed(0)
    model = build_backbone(name, num_classes=5, pretrained=False).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, 32, 32))
    assert out.shape == (2, 5)


def test_pretrained_loads_exact_weights_from_the_torch_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path))
    weights = torchvision.models.ResNet18_Weights.IMAGENET1K_V1
    path = weights_cache_path(weights)
    assert path.startswith(str(tmp_path)) and path.endswith(".pth")
    torch.manual_seed(1)
    reference = torchvision.models.resnet18().state_dict()
    (tmp_path / "checkpoints").mkdir()
    torch.save(reference, path)
    model = build_backbone("resnet18", num_classes=3, pretrained=True)
    for k, v in model.state_dict().items():
        if not k.startswith("fc."):
            assert torch.equal(v, reference[k]), k
    assert model.fc.out_features == 3


def test_missing_weights_error_says_where_to_put_them(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", offline)
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
