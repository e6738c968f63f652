"""Data that must not be read, or not be read twice: stale cache entries, quarantined files, pixel
bombs, the same picture in other bytes, files that look like images but do not decode, CSV and label slips."""

from __future__ import annotations

import os

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


def _two_classes(tmp_path, n=4):
    rng = np.random.default_rng(3)
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        for j in range(n):
            Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8)).save(tmp_path / cls / f"{j}.pgm")


@pytest.mark.parametrize("name", ["7.pgm.bad", "7.pgm.bak", "7.pgm.orig", "7.pgm~", "7.pgm.tmp", "7.pgm.part"])
def test_files_named_as_set_aside_are_never_read(tmp_path, name):
    """Extended Yale B ships its corrupt originals as ``*.pgm.bad``: they decode, as near-black frames."""
    _two_classes(tmp_path)
    Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(tmp_path / "a" / name, format="PPM")
    with pytest.warns(UserWarning, match=rf"skipped 1 file.*a/{name}"):
        ds = load_folder(tmp_path, channels=1, progress=False, cache_dir=False)
    assert len(ds.y_train) + len(ds.y_test) == 8 and ds.meta["ignored_files"] == [f"a/{name}"]
    (tmp_path / "labels.csv").write_text(f"path,label\na/0.pgm,a\nb/0.pgm,b\na/{name},a\n")
    with pytest.raises(DataError, match=rf"line 4: .*{name} has a name that marks it as set aside"):
        load_folder(tmp_path, csv="labels.csv", progress=False, cache_dir=False)


def test_an_npy_array_above_the_pixel_limit_is_refused_from_its_header(tmp_path, monkeypatch):
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        for j in range(4):
            np.save(tmp_path / cls / f"{j}.npy", np.full((8, 8), j + 10 * (cls == "b"), dtype=np.float32))
    big = np.lib.format.open_memmap(tmp_path / "a" / "huge.npy", mode="w+", dtype=np.uint8, shape=(20000, 20000))
    del big  # a sparse 400-Mpixel file: its header alone must refuse it
    with pytest.raises(
        DataError,
        match=r"huge\.npy: 20000 x 20000 x 1 \(NPY\) is larger than the limit of "
        r"178956970 pixels.*PIL.Image.MAX_IMAGE_PIXELS",
    ):
        load_folder(tmp_path, progress=False, cache_dir=False, channels=None)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)  # the same, configurable limit as for images
    (tmp_path / "a" / "huge.npy").unlink()
    with pytest.raises(DataError, match=r"8 x 8 x 1 \(NPY\) is larger than the limit of 20 pixels"):
        load_folder(tmp_path, progress=False, cache_dir=False, channels=None)


@pytest.mark.parametrize("layout", ["folders", "csv"])
def test_a_truncated_image_without_an_extension_is_an_error_not_dropped(tmp_path, layout):
    make_folder_fixture(tmp_path, layout=layout, n_per_class=4)
    folder = tmp_path / ("images" if layout == "csv" else "normal")
    whole = (folder / "normal_00.png").read_bytes()
    (folder / "scan17").write_bytes(whole[:20])  # the signature and part of the header
    csv = None
    if layout == "csv":
        csv = tmp_path / "labels.csv"
        csv.write_text(csv.read_text() + "images/scan17,normal\n")
    with pytest.raises(DataError, match=r"scan17: not a readable image"):
        load_folder(tmp_path, csv=csv, progress=False, cache_dir=False)


def test_csv_slips_are_named(tmp_path):
    make_folder_fixture(tmp_path, layout="csv", n_per_class=4)
    csv = tmp_path / "labels.csv"
    rows = csv.read_text().splitlines()
    csv.write_text("\n".join(["path,label,Label"] + [r + ",x" for r in rows[1:]]) + "\n")
    with pytest.raises(DataError, match=r"labels\.csv: the header names column 'label' twice \(columns \[2, 3\]\)"):
        load_folder(tmp_path, csv=csv, progress=False, cache_dir=False)
    csv.write_text("\n".join(rows + ["/dev/zero,normal"]) + "\n")
    with pytest.raises(DataError, match=r"line 10: /dev/zero is not a regular file"):
        load_folder(tmp_path, csv=csv, progress=False, cache_dir=False)


def test_integer_labels_with_gaps_are_mapped_and_said(tmp_path):
    make_folder_fixture(tmp_path, layout="csv", n_per_class=4, label_style="ints")
    csv = tmp_path / "labels.csv"
    csv.write_text(csv.read_text().replace(",1\n", ",7\n"))
    with pytest.warns(UserWarning, match=r"integer labels \[0, 7\] leave classes of 0\.\.7 empty.*7 -> 1"):
        ds = load_folder(tmp_path, csv=csv, progress=False, cache_dir=False)
    assert ds.class_names == ["0", "7"] and ds.num_classes == 2
    assert sorted(set(torch.cat([ds.y_train, ds.y_test]).tolist())) == [0, 1]


def test_a_class_folder_that_cannot_be_read_says_so(tmp_path, monkeypatch):
    _two_classes(tmp_path)
    real_scandir = os.scandir

    def denied(path="."):  # as for a folder without read permission (root ignores chmod)
        if os.fspath(path).endswith(os.sep + "b"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", denied)
    with pytest.raises(DataError, match=r"/b: folder cannot be read \(Permission denied\)"):
        load_folder(tmp_path, progress=False, cache_dir=False)


@pytest.mark.parametrize("copy_as", ["png9", "bmp"])
def test_the_same_image_in_other_bytes_in_another_class_is_refused_or_warned(tmp_path, copy_as):
    _two_classes(tmp_path)
    picture = np.asarray(Image.open(tmp_path / "a" / "0.pgm"))
    Image.fromarray(picture).save(tmp_path / "a" / "0.pgm")  # as it was
    if copy_as == "png9":  # the same pixels at another compression level
        Image.fromarray(picture).save(tmp_path / "b" / "copy.png", compress_level=9)
    else:
        Image.fromarray(picture).save(tmp_path / "b" / "copy.bmp")
    copy = next((tmp_path / "b").glob("copy.*"))
    assert copy.read_bytes() != (tmp_path / "a" / "0.pgm").read_bytes()
    with pytest.raises(DataError, match="decode to the same pixels"):
        load_folder(tmp_path, channels=1)
    with pytest.warns(UserWarning, match="decode to the same pixels"):
        ds = load_folder(tmp_path, channels=1, duplicates="warn")
    assert len(ds.meta["files"]) == 9
