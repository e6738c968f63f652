"""Data that must not be read, or not be read twice: stale cache entries, quarantined files, pixel
bombs, the same picture in other bytes, files that look like images but do not decode, CSV and label slips."""
from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from gsa_utils.data import DataError
from gsa_utils.data.cache import CACHE_ENV
from gsa_utils.data.fixtures import make_folder_fixture
from gsa_utils.data.folder import load_folder


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / ".cache"))  # hidden: not a class folder


def _pixels(ds, name: str) -> np.ndarray:
    files = ds.meta["train_files"] + ds.meta["test_files"]
    return torch.cat([ds.x_train, ds.x_test])[files.index(name)].numpy()


def test_a_file_rewritten_with_its_old_size_and_mtime_is_not_served_from_the_cache(tmp_path):
    """What ``cp -p``, ``rsync -a`` and ``tar x`` do: new pixels, same size, old modification time."""
    make_folder_fixture(tmp_path, n_per_class=4, ext=".bmp")  # uncompressed: same size for new pixels
    target = tmp_path / "glaucoma" / "glaucoma_01.bmp"
    first = load_folder(tmp_path, standardize=False, progress=False)
    assert not first.meta["cache_hit"]
    assert load_folder(tmp_path, standardize=False, progress=False).meta["cache_hit"]
    st = target.stat()
    Image.fromarray(np.full((24, 32, 3), 7, dtype=np.uint8)).save(target)
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert target.stat().st_size == st.st_size and target.stat().st_mtime_ns == st.st_mtime_ns
    again = load_folder(tmp_path, standardize=False, progress=False)
    assert not again.meta["cache_hit"]
    assert np.allclose(_pixels(again, "glaucoma/glaucoma_01.bmp"), 7 / 255)
