"""Known answers for gsa_utils.attention and the relevance rank accuracy in gsa_utils.metrics."""

import numpy as np
import pytest
import torch
from torch import nn

from gsa_utils import GlobalSpatialAttention, PixelCNN, build_backbone, pixel_representation
from gsa_utils.attention import (
    AttentionMaps,
    faithfulness,
    global_map,
    grad_cam_maps,
    localisation,
    resattnet_maps,
    variability,
    vgg_att_maps,
)
from gsa_utils.baselines import L1PixelWeights, ResAttNet92, VGGAtt3
from gsa_utils.metrics import relevance_rank_accuracy

H = W = 16


def square_mask() -> np.ndarray:
    mask = np.zeros((H, W), bool)
    mask[4:10, 5:12] = True
    return mask


def test_map_equal_to_mask_scores_one():
    mask = square_mask()
    loc = localisation(AttentionMaps("truth", mask[None].astype(float), shared=True), mask)
    assert loc.roc_auc == 1.0 and loc.pointing_game == 1.0
    assert loc.mass_inside == 1.0 and loc.rank_accuracy == 1.0
    assert loc.mask_fraction == pytest.approx(mask.mean())


def test_constant_map_is_at_chance():
    mask = square_mask()
    loc = localisation(AttentionMaps("flat", np.full((1, H, W), 0.3), shared=True), mask)
    assert loc.roc_auc == 0.5
    for value in (loc.pointing_game, loc.mass_inside, loc.rank_accuracy):
        assert value == pytest.approx(mask.mean())


def test_inverted_mask_scores_zero_and_per_image_maps_average():
    mask = square_mask()
    maps = np.stack([mask, ~mask]).astype(float)  # one perfect, one inverted
    loc = localisation(AttentionMaps("mixed", maps, shared=False), mask)
    assert loc.roc_auc == pytest.approx(0.5) and loc.pointing_game == pytest.approx(0.5)
    assert relevance_rank_accuracy(~mask, mask) == 0.0


class RegionModel(nn.Module):
    """Logits from the mean of channel 0 inside a fixed region only."""

    def __init__(self, mask: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("region", torch.as_tensor(mask, dtype=torch.float32))
        self.scale = nn.Parameter(torch.tensor(3.0))

    def forward(self, x):
        s = (x[:, 0] * self.region).sum((1, 2)) / self.region.sum()
        return torch.stack([-self.scale * s, self.scale * s], 1)


def test_deleting_ignored_pixels_does_not_change_the_output():
    mask = square_mask()
    model = RegionModel(mask)
    x = torch.rand(12, 3, H, W) * 2 - 0.5
    # a map that ranks the ignored pixels first: deleting "most relevant first" removes them
    wrong = AttentionMaps("outside", (~mask)[None].astype(float), shared=True)
    res = faithfulness(model, x, wrong, baseline=0.0, steps=8)
    n_out = (~mask).sum() / mask.size
    flat_part = res.fractions <= n_out + 1e-9
    assert np.allclose(res.deletion_most[flat_part], res.deletion_most[0], atol=1e-6)
    # the right map changes the output at once, and beats its least-relevant-first control
    right = faithfulness(model, x, AttentionMaps("inside", mask[None].astype(float), True), steps=8)
    assert right.gap > 0.1 and res.gap < -0.1
    assert right.deletion_most[0] == pytest.approx(right.insertion_most[-1])
    assert right.deletion_least == pytest.approx(right.insertion_most[::-1])
    random_map = AttentionMaps("random", np.random.default_rng(0).random((12, H, W)), False)
    assert abs(faithfulness(model, x, random_map, steps=8).gap) < abs(right.gap) / 2


def test_gsa_model_ignores_pixels_its_map_zeroes():
    torch.manual_seed(0)
    x = torch.rand(6, 3, 32, 32)
    rep = pixel_representation(x)
    model = GlobalSpatialAttention(build_backbone("small_cnn", 2, pretrained=False), PixelCNN(rep.shape[1], 4), rep)
    model.freeze()
    mask = np.zeros((32, 32), bool)
    mask[8:20, 8:20] = True
    model.attention.copy_(torch.as_tensor(mask, dtype=torch.float32)[None, None])
    res = faithfulness(model, x, AttentionMaps("inverse", (~mask)[None].astype(float), True), steps=4)
    assert res.fractions[3] <= (~mask).mean()
    assert np.allclose(res.deletion_most[:4], res.deletion_most[0], atol=1e-5)
    gm = global_map(model)
    assert gm.shared and gm.maps.shape == (1, 32, 32)


def test_grad_cam_shapes_and_range():
    torch.manual_seed(0)
    model = build_backbone("small_cnn", 3, pretrained=False)
    x = torch.rand(5, 3, 32, 32)
    for plus in (False, True):
        maps = grad_cam_maps(model, x, plus_plus=plus, targets=torch.tensor([0, 1, 2, 0, 1]))
        assert maps.maps.shape == (5, 32, 32) and not maps.shared
        assert maps.maps.min() >= 0 and maps.maps.max() <= 1 + 1e-6


def test_local_attention_read_outs_have_image_size():
    torch.manual_seed(0)
    x = torch.rand(3, 3, 32, 32)
    vgg = vgg_att_maps(VGGAtt3(2, image_size=32), x)
    res = resattnet_maps(ResAttNet92(2, base_width=2), x)
    for maps in (vgg, res):
        assert maps.maps.shape == (3, 32, 32) and np.isfinite(maps.maps).all()
    assert vgg.maps.mean() == pytest.approx(1.0, rel=0.05)  # each level averages 1
    l1 = global_map(L1PixelWeights(build_backbone("small_cnn", 2, pretrained=False), (32, 32)), "L1")
    assert l1.maps.shape == (1, 32, 32) and np.all(l1.maps == 1)


def test_variability_known_answers():
    rng = np.random.default_rng(0)
    one = rng.random((H, W))
    same = variability(AttentionMaps("same", np.repeat(one[None], 10, 0), shared=False))
    assert same.mean_correlation == pytest.approx(1.0) and same.mean_top_iou == pytest.approx(1.0)
    shared = variability(AttentionMaps("shared", one[None], shared=True))
    assert shared.mean_correlation == pytest.approx(1.0) and np.isnan(shared.content_correlation)
    noise = variability(AttentionMaps("noise", rng.random((40, H, W)), shared=False))
    assert abs(noise.mean_correlation) < 0.02
    assert noise.mean_top_iou == pytest.approx(0.2 / 1.8, abs=0.02)  # chance IoU of two 20% sets


def test_variability_that_follows_content_or_labels():
    rng = np.random.default_rng(1)
    images = torch.as_tensor(rng.random((30, 1, H, W)), dtype=torch.float32)
    labels = torch.as_tensor(rng.integers(0, 2, 30))
    follows_image = variability(AttentionMaps("copy", images[:, 0].numpy(), False), images, labels)
    assert follows_image.content_correlation > 0.9
    class_maps = rng.random((2, H, W))
    per_label = class_maps[labels.numpy()] + 0.3 * rng.random((30, H, W))
    follows_label = variability(AttentionMaps("label", per_label, False), images, labels)
    assert follows_label.label_correlation > 0.8 and abs(follows_label.content_correlation) < 0.2
