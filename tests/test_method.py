"""Pixel representation, pixel CNN, attention wrapper and loss (chapters 2-5)."""

import pytest
import torch

from gsa_utils import (
    DataError,
    GlobalSpatialAttention,
    PixelCNN,
    SmallCNN,
    combined_loss,
    count_parameters,
    map_l1,
    pixel_cnn_parameter_count,
    pixel_representation,
)


def test_pixel_representation_layout():
    x = torch.rand(5, 3, 7, 9)
    p = pixel_representation(x)
    assert p.shape == (1, 15, 7, 9)
    for n in range(5):
        for c in range(3):
            assert torch.equal(p[0, n * 3 + c], x[n, c])
    x.zero_()  # a copy: freeing or changing the images leaves P intact
    assert p.abs().sum() > 0


def test_pixel_representation_from_list_and_bad_sizes():
    ims = [torch.rand(1, 4, 4) for _ in range(3)]
    assert pixel_representation(ims).shape == (1, 3, 4, 4)
    ims[2] = torch.rand(1, 4, 5)
    with pytest.raises(DataError, match=r"image 2 has size \(1, 4, 5\)"):
        pixel_representation(ims)


@pytest.mark.parametrize(
    "bad, msg",
    [
        (torch.rand(0, 3, 4, 4), "empty"),
        (torch.rand(3, 4, 4), "4-D"),
        (torch.randint(0, 255, (2, 3, 4, 4), dtype=torch.uint8), "floating point"),
        ([], "empty list"),
    ],
)
def test_pixel_representation_rejects(bad, msg):
    with pytest.raises(DataError, match=msg):
        pixel_representation(bad)


def test_pixel_representation_names_nan_image():
    x = torch.rand(4, 1, 3, 3)
    x[2, 0, 1, 1] = float("nan")
    with pytest.raises(DataError, match=r"\[2\] contains NaN"):
        pixel_representation(x)


@pytest.mark.parametrize("n, c, k", [(10, 3, 32), (413, 3, 64), (7, 1, 5)])
def test_pixel_cnn_parameter_count_matches_paper(n, c, k):
    assert count_parameters(PixelCNN(n * c, k)) == pixel_cnn_parameter_count(n, c, k) == k * (9 * n * c + 1) + k + 1


def test_pixel_cnn_map_shape_and_range():
    m = PixelCNN(12, 8)(torch.randn(1, 12, 10, 11) * 5).detach()
    assert m.shape == (1, 1, 10, 11)
    assert float(m.min()) >= 0 and float(m.max()) <= 1


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(kernel_size=5),
        dict(kernel_size=7),
        dict(num_hidden_layers=3),
        dict(last_kernel_size=3),
        dict(dense=True, num_hidden_layers=3),
    ],
)
def test_pixel_cnn_variants_keep_size(kwargs):
    net = PixelCNN(6, 4, **kwargs)
    assert net(torch.rand(1, 6, 9, 9)).shape == (1, 1, 9, 9)
    assert count_parameters(net) != pixel_cnn_parameter_count(2, 3, 4)


def test_pixel_cnn_dense_parameter_count():
    # hidden layers see all earlier hidden outputs: 6->4, 4->4, 8->4, output 12->1 (k = 3, last 1x1)
    net = PixelCNN(6, 4, num_hidden_layers=3, dense=True)
    assert count_parameters(net) == (6 * 9 * 4 + 4) + (4 * 9 * 4 + 4) + (8 * 9 * 4 + 4) + (12 + 1)


def test_pixel_cnn_rejects_even_kernel_and_wrong_input():
    with pytest.raises(ValueError, match="odd"):
        PixelCNN(3, 4, kernel_size=4)
    with pytest.raises(DataError, match="1 x 3 x H x W"):
        PixelCNN(3, 4)(torch.rand(1, 6, 5, 5))


def test_output_bias_sets_starting_level():
    torch.manual_seed(0)
    p = torch.rand(1, 30, 16, 16)
    default = PixelCNN(30, 8)(p)
    dim = PixelCNN(30, 8, output_bias=-3.0)(p)
    assert 0.3 < float(default.mean()) < 0.7
    assert float(dim.mean()) < 0.15


def _gsa(x, num_classes=2, k=4):
    p = pixel_representation(x)
    return GlobalSpatialAttention(SmallCNN(num_classes, width=4), PixelCNN(p.shape[1], k), p)


def test_map_is_shared_by_every_image_and_channel(tiny_data):
    x, _ = tiny_data
    model = _gsa(x).eval()
    seen = {}
    model.backbone.register_forward_pre_hook(lambda m, args: seen.setdefault("input", args[0]))
    batch = x[:7]
    model(batch)
    ratio = seen["input"] / batch  # backbone input = batch * map
    amap = model.attention_map().detach()
    assert torch.allclose(ratio, amap.expand_as(ratio), rtol=1e-5, atol=1e-6)


def test_map_unchanged_by_test_images(tiny_data):
    x, _ = tiny_data
    model = _gsa(x[:30]).eval()
    before = model.attention_map().detach().clone()
    with torch.no_grad():
        model(torch.rand(10, 3, 12, 12) * 100)
    assert torch.equal(model.attention_map().detach(), before)


def test_freeze_stores_map_and_releases_pixel_rep(tiny_data):
    x, _ = tiny_data
    model = _gsa(x)
    expected = model.pixel_cnn(model.pixel_rep).detach()
    model.freeze()
    assert model.frozen and model.pixel_rep is None
    assert torch.equal(model.attention_map(), expected)
    assert not any(p.requires_grad for p in model.pixel_cnn.parameters())
    calls = []
    model.pixel_cnn.register_forward_hook(lambda *a: calls.append(1))
    model(x[:4]).sum().backward()
    assert calls == []


def test_saved_model_predicts_without_training_set(tiny_data):
    x, _ = tiny_data
    model = _gsa(x).eval()
    model.freeze()
    expected = model(x[:5])
    clone = GlobalSpatialAttention(SmallCNN(2, width=4), PixelCNN(x.shape[0] * 3, 4), None, image_size=(12, 12))
    clone.load_state_dict(model.state_dict())
    clone.eval()
    assert "pixel_rep" not in model.state_dict()
    assert clone.frozen and not any(p.requires_grad for p in clone.pixel_cnn.parameters())
    assert torch.allclose(clone(x[:5]), expected)


def test_combined_loss_sum_and_mean():
    logits, y = torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
    amap = torch.full((1, 1, 10, 10), 0.5)
    ce = torch.nn.functional.cross_entropy(logits, y)
    s = combined_loss(logits, y, amap, 0.1, "sum")
    m = combined_loss(logits, y, amap, 0.1, "mean")
    assert torch.isclose(s.l1, torch.tensor(0.1 * 50.0)) and torch.isclose(m.l1, torch.tensor(0.1 * 0.5))
    assert torch.isclose(s.total, ce + s.l1) and torch.isclose(s.ce, ce)
    assert combined_loss(logits, y, None, 0.1).l1 == 0
    with pytest.raises(ValueError, match="'sum' or 'mean'"):
        map_l1(amap, "max")


def test_l1_term_pushes_map_down(tiny_data):
    x, y = tiny_data
    model = _gsa(x)
    opt = torch.optim.Adam(model.pixel_cnn.parameters(), lr=1e-2)
    start = float(model.attention_map().mean())
    for _ in range(20):
        amap = model.attention_map()
        loss = combined_loss(model(x, amap), y, amap, l1_weight=1.0).total
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(model.attention_map().mean()) < start - 0.2


def test_flat_start_gives_a_uniform_map():
    net = PixelCNN(30, 8, output_bias=-1.0, flat_start=True)
    m = net(torch.rand(1, 30, 9, 9)).detach()
    assert torch.allclose(m, torch.full_like(m, torch.sigmoid(torch.tensor(-1.0)).item()))


def test_pixel_representation_bytes_is_what_the_tensor_holds():
    from gsa_utils.pixel import pixel_representation, pixel_representation_bytes

    x = torch.rand(5, 3, 7, 6)
    p = pixel_representation(x)
    assert p.element_size() * p.nelement() == pixel_representation_bytes(5, 3, 7, 6)
