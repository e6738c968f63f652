"""Map contrast, the flat-map flag and the chance-level one-class rule."""

import math
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from gsa_utils.backbones import SmallCNN
from gsa_utils.metrics import FLAT_CONTRAST, map_contrast
from gsa_utils.models import GlobalSpatialAttention, PixelCNN
from gsa_utils.pixel import pixel_representation
from gsa_utils.stability import CollapseWarning, FlatMapWarning, chance_loss, record_collapse
from gsa_utils.training import two_phase_fit


def test_map_contrast_known_values_and_scale_free():
    assert map_contrast(np.full((8, 8), 0.5)) == 0.0
    assert map_contrast(np.zeros((8, 8))) == 0.0
    two_level = np.where(np.arange(64).reshape(8, 8) < 32, 0.9, 0.1)
    assert map_contrast(two_level) == pytest.approx((0.9 - 0.1) / 0.5)
    assert map_contrast(0.1 * two_level) == pytest.approx(map_contrast(two_level))
    # a map that ranks pixels perfectly but barely moves from 0.5 has a low contrast
    assert map_contrast(0.5 + 0.01 * (two_level - 0.5)) < 0.05
    with pytest.raises(ValueError, match="NaN"):
        map_contrast(np.array([[np.nan, 1.0]]))


class _FixedMap(nn.Module):
    """A classifier whose input is weighted by a fixed map."""

    def __init__(self, amap: torch.Tensor):
        super().__init__()
        self.amap = amap
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 12 * 12, 2))

    def attention_map(self):
        return self.amap

    def forward(self, x, attention_map=None):
        return self.net(x * (attention_map if attention_map is not None else self.amap))


@pytest.fixture
def tiny_data():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(40, 3, 12, 12, generator=g)
    y = torch.arange(40) % 2
    x[y == 1, :, 4:8, 4:8] += 1.0
    return x, y


def _fit(model, x, y, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        hist = two_phase_fit(model, x, y, batch_size=20, progress=False, eval_sets={"test": (x, y)}, **kw)
    return hist, [w for w in caught if issubclass(w.category, FlatMapWarning)]


def test_a_flat_map_is_flagged_once_at_the_end_of_phase_1(tiny_data):
    x, y = tiny_data
    torch.manual_seed(0)
    pixel_cnn = PixelCNN(3 * len(x), 4, flat_start=True)  # the map starts at exactly 0.5
    model = GlobalSpatialAttention(SmallCNN(2), pixel_cnn, pixel_representation(x))
    hist, flat = _fit(model, x, y, epochs=4, cutoff_epoch=2, lr=1e-3, pixel_cnn_lr=1e-12, l1_weight=0.0)
    assert len(flat) == 1 and "epoch 2:" in str(flat[0].message)
    assert [r["flat"] for r in hist.records] == [False, True, True, True]
    assert hist.records[1]["map_contrast"] < FLAT_CONTRAST


def test_a_map_with_contrast_is_not_flat_and_a_map_free_run_ends_phase_1_at_its_last_epoch(tiny_data):
    x, y = tiny_data
    torch.manual_seed(0)
    ramp = torch.linspace(0.05, 0.95, 144).reshape(1, 1, 12, 12)
    hist, flat = _fit(_FixedMap(ramp), x, y, epochs=2, lr=1e-3)
    assert not flat and [r["flat"] for r in hist.records] == [False, False]
    hist, flat = _fit(_FixedMap(torch.full((1, 1, 12, 12), 0.5)), x, y, epochs=3, lr=1e-3)
    assert len(flat) == 1 and "epoch 3:" in str(flat[0].message) and hist.records[-1]["flat"]


def test_chance_loss_is_the_label_entropy():
    assert chance_loss([0, 1, 0, 1]) == pytest.approx(math.log(2))
    assert chance_loss(np.repeat(np.arange(40), 8)) == pytest.approx(math.log(40))
    assert chance_loss([3, 3, 3]) == 0.0


@pytest.mark.parametrize("classes", [2, 40])
def test_one_class_rule_spares_a_learning_start_and_flags_a_stuck_run(classes):
    chance = math.log(classes)

    def run(ce_per_epoch):
        previous, flagged = None, []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CollapseWarning)
            for epoch, ce in enumerate(ce_per_epoch, 1):
                record = {"epoch": epoch, "train_ce": ce, "test_pred_classes": 1}
                record_collapse(record, None, previous, chance=chance)
                flagged.append(record["collapsed"])
                previous = record
        return flagged

    # one predicted class for 5 epochs while the loss already falls below chance: learning
    assert run([chance * f for f in (0.97, 0.9, 0.85, 0.8, 0.7)]) == [False] * 5
    # one predicted class at chance-level loss: stuck, flagged once it lasts three epochs
    assert run([chance * 1.01] * 4) == [False, False, True, True]
