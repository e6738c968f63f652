"""The whitened low-rank pixel representation and the new pixel-CNN options."""

import pytest
import torch
import torch.nn.functional as F

from gsa_utils.models import PixelCNN
from gsa_utils.pixel import lowrank_pixel_representation, pixel_representation


def _images(n=6, c=2, s=7, seed=0):
    return torch.randn(n, c, s, s, generator=torch.Generator().manual_seed(seed))


def test_whitened_components_have_zero_mean_unit_variance_and_are_uncorrelated():
    low = lowrank_pixel_representation(_images(), rank=5)
    z = low.rep.reshape(5, -1)
    assert torch.allclose(z.mean(1), torch.zeros(5), atol=1e-5)
    cov = z @ z.t() / z.shape[1]
    assert torch.allclose(cov, torch.eye(5), atol=1e-4)


def test_full_rank_is_an_invertible_map_of_the_centred_p():
    """At full rank the first layer on P (centred) equals a first layer on the whitened rep
    with mapped weights, at every pixel including the zero-padded border."""
    x = _images()
    p = pixel_representation(x)
    nc = p.shape[1]
    low = lowrank_pixel_representation(x, rank=nc)
    assert low.rank == nc and low.explained_variance == pytest.approx(1.0, abs=1e-6)
    centred = p - low.channel_mean.reshape(1, nc, 1, 1)
    # z = centred @ components  =>  centred = z @ pinv(components)
    back = torch.linalg.pinv(low.components.double()).float()  # r x NC
    w = torch.randn(4, nc, 3, 3)
    w_low = torch.einsum("ri,oihw->orhw", back, w)
    assert torch.allclose(F.conv2d(centred, w, padding=1), F.conv2d(low.rep, w_low, padding=1), atol=1e-3)


def test_components_come_from_the_images_given_only():
    x = _images()
    a = lowrank_pixel_representation(x, rank=3)
    b = lowrank_pixel_representation(torch.cat([x, _images(seed=1)]), rank=3)
    assert not torch.allclose(a.rep.abs(), b.rep.abs(), atol=1e-3)  # other images, other components
    assert torch.equal(lowrank_pixel_representation(x, rank=3).rep, a.rep)  # deterministic


def test_rank_is_clipped_and_validated():
    low = lowrank_pixel_representation(_images(n=2, c=1, s=5), rank=50)
    assert low.rank <= 2  # two channels: at most two non-zero components
    with pytest.raises(ValueError, match="rank"):
        lowrank_pixel_representation(_images(), rank=0)


def test_fan_in_scaling_keeps_the_initial_map_and_shrinks_the_step():
    torch.manual_seed(0)
    plain = PixelCNN(50, 4)
    torch.manual_seed(0)
    scaled = PixelCNN(50, 4, fan_in_reference=9)
    rep = torch.randn(1, 50, 6, 6)
    assert torch.allclose(plain(rep), scaled(rep), atol=1e-5)
    assert scaled.first_layer_scale == pytest.approx(9 / 450)
    moves = []
    for m in (plain, scaled):
        opt = torch.optim.Adam(m.parameters(), lr=1e-2)
        before = m.logits(rep).detach()
        m(rep).sum().backward()
        opt.step()
        moves.append((m.logits(rep).detach() - before).abs().mean().item())
    assert moves[1] < moves[0] / 5


def test_standardised_map_has_fixed_level_and_spread():
    m = PixelCNN(8, 4, map_norm="standardize", map_gain=2.0, map_level=0.3)
    amap = m(torch.randn(1, 8, 9, 9))
    logit = torch.logit(amap)
    assert logit.mean().item() == pytest.approx(torch.logit(torch.tensor(0.3)).item(), abs=1e-4)
    assert logit.std(unbiased=True).item() == pytest.approx(2.0, rel=1e-3)
    with pytest.raises(ValueError, match="map_norm"):
        PixelCNN(8, 4, map_norm="mean")


def test_standardised_map_of_a_flat_start_has_finite_gradients():
    m = PixelCNN(8, 4, map_norm="standardize", flat_start=True)
    m(torch.randn(1, 8, 5, 5)).sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in m.parameters() if p.grad is not None)
