import os

import pytest
import torch

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture
def tiny_data():
    """40 random 3 x 12 x 12 images whose class is the brightness of a 4 x 4 patch."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(40, 3, 12, 12, generator=g) * 0.5
    y = torch.arange(40) % 2
    x[y == 1, :, 2:6, 2:6] += 0.5
    return x, y


@pytest.fixture
def one_thread():
    """Tiny CPU models are far faster on one thread (and two test processes do not fight over cores)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
