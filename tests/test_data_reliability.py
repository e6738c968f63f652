"""Data reliability: duplicates under two names, formats users have, standardisation on training folds."""

from __future__ import annotations

import importlib
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from gsa_utils.data import DataError
from gsa_utils.data.cache import CACHE_ENV
from gsa_utils.data.fixtures import make_folder_fixture
from gsa_utils.data.folder import load_folder
from gsa_utils.data.standardization import fit_standardization, standardize_dataset


@pytest.fixture(autouse=True)
def _no_default_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / ".cache"))  # hidden: not a class folder


# -- the same image under two names ------------------------------------------------


def _csv_set(tmp_path, n_per_class=6):
    make_folder_fixture(tmp_path, layout="csv", n_per_class=n_per_class)
    return tmp_path / "labels.csv"


def test_csv_path_alias_is_caught(tmp_path):
    csv = _csv_set(tmp_path)
    lines = csv.read_text().splitlines()
    lines.append("images/../images/glaucoma_03.png,glaucoma")
    csv.write_text("\n".join(lines) + "\n")
    with pytest.raises(
        DataError,
        match=r"line 14.*images/\.\./images/glaucoma_03\.png.*same file as "
        r"'images/glaucoma_03\.png'.*line 5",
    ) as err:
        load_folder(tmp_path, csv="labels.csv", progress=False)
    assert str((tmp_path / "images" / "glaucoma_03.png").resolve()) in str(err.value)


def test_symlink_into_another_class_is_caught(tmp_path):
    make_folder_fixture(tmp_path, n_per_class=6)
    (tmp_path / "normal" / "alias.png").symlink_to(tmp_path / "glaucoma" / "glaucoma_01.png")
    with pytest.raises(DataError, match=r"glaucoma_01\.png and .*alias\.png are the same file"):
        load_folder(tmp_path, progress=False)


@pytest.mark.parametrize("layout", ["csv", "folders"])
def test_byte_identical_copies_rejected_or_warned_naming_both(tmp_path, layout):
    make_folder_fixture(tmp_path, layout=layout, n_per_class=6)
    src = tmp_path / ("images" if layout == "csv" else "glaucoma") / "glaucoma_02.png"
    dst = src.with_name("copy_of_02.png")
    shutil.copyfile(src, dst)
    csv = None
    if layout == "csv":
        csv = tmp_path / "labels.csv"
        csv.write_text(csv.read_text() + "images/copy_of_02.png,glaucoma\n")
    both = r"(glaucoma_02\.png.* and .*copy_of_02\.png|copy_of_02\.png.* and .*glaucoma_02\.png).* are byte-identical"
    with pytest.raises(DataError, match=both):
        load_folder(tmp_path, csv=csv, progress=False)
    with pytest.warns(UserWarning, match=both):
        ds = load_folder(tmp_path, csv=csv, progress=False, duplicates="warn", cache_dir=False)
    assert len(ds.y_train) + len(ds.y_test) == 13


def test_split_file_alias_matches_the_same_image(tmp_path):
    make_folder_fixture(tmp_path, n_per_class=4)
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.png"))
    rows = [
        f"{cls}/../{f},{'test' if i % 4 == 0 else 'train'}" for i, f in enumerate(files) for cls in [f.split("/")[0]]
    ]
    (tmp_path / "split.csv").write_text("path,split\n" + "\n".join(rows) + "\n")
    ds = load_folder(tmp_path, split_file="split.csv", progress=False, cache_dir=False)
    assert len(ds.y_test) == 2 and len(ds.y_train) == 6


# -- formats ------------------------------------------------------------------------


def _write_pil(path, arr, **kw):
    Image.fromarray(arr).save(path, **kw)


def test_folder_of_pgm_files_loads(tmp_path):
    """ORL/AT&T faces and Extended Yale B ship as .pgm."""
    rng = np.random.default_rng(0)
    for k, cls in enumerate(("s1", "s2")):
        (tmp_path / cls).mkdir()
        for j in range(5):
            img = rng.integers(0, 100, (28, 23), dtype=np.uint8)
            img[5:10, 5 + 8 * k : 10 + 8 * k] = 250
            _write_pil(tmp_path / cls / f"{j + 1}.pgm", img)
    ds = load_folder(tmp_path, channels=1, standardize=False, progress=False, test_fraction=0.4)
    assert ds.image_shape == (1, 28, 23) and ds.class_names == ["s1", "s2"]
    assert len(ds.y_train) + len(ds.y_test) == 10
    first = np.asarray(Image.open(tmp_path / "s1" / "1.pgm"), dtype=np.float32) / 255
    files = ds.meta["train_files"] + ds.meta["test_files"]
    x = torch.cat([ds.x_train, ds.x_test])
    assert np.allclose(x[files.index("s1/1.pgm"), 0].numpy(), first)


def test_sixteen_bit_pgm_keeps_depth(tmp_path):
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        for j in range(3):
            arr = np.full((8, 8), 1000 * (j + 1) + (cls == "b") * 30000, dtype=np.uint16)
            Image.fromarray(arr).save(tmp_path / cls / f"{j}.pgm")
    ds = load_folder(tmp_path, channels=1, standardize=False, progress=False, test_fraction=0.34)
    vals = sorted(set(np.round(torch.cat([ds.x_train, ds.x_test]).flatten().numpy() * 65535).astype(int)))
    assert vals == [1000, 2000, 3000, 31000, 32000, 33000]


@pytest.mark.parametrize(
    "ext, save", [(".ppm", {}), (".gif", {}), (".webp", {"lossless": True}), ("", {"format": "PNG"})]
)
def test_pillow_formats_and_files_without_extension(tmp_path, ext, save):
    rng = np.random.default_rng(1)
    pictures = {}
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        for j in range(3):
            arr = rng.integers(0, 256, (6, 7, 3), dtype=np.uint8)
            if ext == ".gif":  # GIF is paletted: use few colours so it stays lossless
                arr = (arr // 128 * 255).astype(np.uint8)
            _write_pil(tmp_path / cls / f"img{j}{ext}", arr, **save)
            pictures[f"{cls}/img{j}{ext}"] = arr
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    ds = load_folder(tmp_path, standardize=False, progress=False, test_fraction=0.34)
    assert ds.meta["ignored_files"] == ["a/notes.txt"]
    x = torch.cat([ds.x_train, ds.x_test])
    for i, f in enumerate(ds.meta["train_files"] + ds.meta["test_files"]):
        got = (x[i].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        assert np.array_equal(got, pictures[f]), f  # RGB order, exact pixels


def test_csv_may_list_files_without_extension_but_not_text(tmp_path):
    make_folder_fixture(tmp_path, layout="csv", n_per_class=4)
    shutil.copyfile(tmp_path / "images" / "normal_00.png", tmp_path / "images" / "scan17")
    (tmp_path / "images" / "normal_00.png").unlink()
    csv = tmp_path / "labels.csv"
    csv.write_text(csv.read_text().replace("images/normal_00.png", "images/scan17"))
    ds = load_folder(tmp_path, csv=csv, progress=False, test_fraction=0.25, cache_dir=False)
    assert "images/scan17" in ds.meta["files"]
    (tmp_path / "images" / "scan17").write_text("just text")
    with pytest.raises(DataError, match=r"line \d+: .*scan17 is not an image"):
        load_folder(tmp_path, csv=csv, progress=False, cache_dir=False)


def _write_dicom(path, arr, monochrome1=False):
    pydicom = pytest.importorskip("pydicom")
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.Rows, ds.Columns = arr.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME1" if monochrome1 else "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = arr.astype(np.uint16).tobytes()
    ds.save_as(str(path), enforce_file_format=True) if int(pydicom.__version__[0]) >= 3 else ds.save_as(
        str(path), write_like_original=False
    )


def test_dicom_folder_with_and_without_extension(tmp_path):
    pytest.importorskip("pydicom")
    for k, cls in enumerate(("a", "b")):
        (tmp_path / cls).mkdir()
        for j in range(3):
            arr = np.full((10, 12), 100 * j + 1000 * k, dtype=np.uint16)
            name = f"im{j}.dcm" if j else "IM0000"  # DICOM exports often have no extension
            _write_dicom(tmp_path / cls / name, arr)
    ds = load_folder(tmp_path, channels=1, standardize=False, progress=False, test_fraction=0.34)
    assert ds.image_shape == (1, 10, 12)
    assert ds.meta["standardize_default"] == "dataset"  # raw intensities, not photographs
    x = torch.cat([ds.x_train, ds.x_test])
    files = ds.meta["train_files"] + ds.meta["test_files"]
    assert x[files.index("b/im2.dcm")].max() * 65535 == pytest.approx(1200, abs=0.01)


def test_dicom_without_pydicom_names_file_and_extra(tmp_path, monkeypatch):
    pytest.importorskip("pydicom")
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        for j in range(3):
            _write_dicom(tmp_path / cls / f"im{j}.dcm", np.full((4, 4), j))
    real_import = importlib.import_module

    def no_pydicom(name, *a, **k):
        if name == "pydicom":
            raise ImportError("No module named 'pydicom'")
        return real_import(name, *a, **k)

    monkeypatch.setattr(importlib, "import_module", no_pydicom)
    with pytest.raises(DataError, match=r"im0\.dcm: DICOM file.*pydicom.*gsa-utils\[dicom\]"):
        load_folder(tmp_path, progress=False, cache_dir=False, test_fraction=0.34)


# -- statistics from the images a run trains on --------------------------------------


def test_dataset_statistics_come_from_given_training_indices(tmp_path):
    make_folder_fixture(tmp_path, ext=".npy", colour=False, n_per_class=8)
    raw = load_folder(tmp_path, standardize=False, progress=False)
    assert raw.meta["standardize"] == "none" and raw.meta["standardize_default"] == "dataset"
    fold = np.arange(0, len(raw.y_train), 2)
    ds = standardize_dataset(raw, train_index=fold)
    x_fold = raw.x_train[torch.as_tensor(fold)].double()
    mean, std = x_fold.mean(dim=(0, 2, 3)).view(1, -1, 1, 1), x_fold.std(dim=(0, 2, 3)).view(1, -1, 1, 1)
    assert torch.allclose(ds.x_train.double(), (raw.x_train - mean) / std, atol=1e-4)
    assert torch.allclose(ds.x_test.double(), (raw.x_test - mean) / std, atol=1e-4)
    assert ds.meta["standardize_n"] == len(fold)
    # the statistics of the fold differ from those of the whole training set (the old behaviour)
    assert fit_standardization(raw.x_train, "dataset").mean != ds.meta["mean"]
    with pytest.raises(DataError, match="already standardised"):
        standardize_dataset(ds)


def test_imagenet_default_for_photographs(tmp_path):
    make_folder_fixture(tmp_path, n_per_class=4)
    raw = load_folder(tmp_path, standardize=False, progress=False)
    assert raw.meta["standardize_default"] == "imagenet"
    direct = load_folder(tmp_path, progress=False)
    assert torch.allclose(standardize_dataset(raw).x_train, direct.x_train)
