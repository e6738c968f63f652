"""Loaders of real data (IDRiD, JAFFE, own folder, MedMNIST) and their cache, on layout-exact fixtures."""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from gsa_utils.data import IMAGENET_MEAN, IMAGENET_STD, DataError, StructuredDataset
from gsa_utils.data import folder as folder_mod
from gsa_utils.data import idrid as idrid_mod
from gsa_utils.data import jaffe as jaffe_mod
from gsa_utils.data.cache import CACHE_ENV, cache_key, resolve_cache_dir
from gsa_utils.data.fixtures import (
    make_folder_fixture,
    make_idrid_fixture,
    make_jaffe_fixture,
    make_medmnist_fixture,
    write_idrid_csv,
    write_jaffe_ratings,
)
from gsa_utils.data.folder import load_folder
from gsa_utils.data.idrid import IDRID_CROP_START, IDRID_CROP_STOP, IDRID_FLIP_TEST, IDRID_FLIP_TRAIN, load_idrid
from gsa_utils.data.jaffe import JAFFE_CLASSES, jaffe_picture_id, load_jaffe, read_jaffe_ratings
from gsa_utils.data.medmnist import load_medmnist

pytestmark = pytest.mark.filterwarnings("ignore:IDRiD .* official set")

SMALL = 32  # output size for most tests (the paper's 224 is checked once, on full-size images)


@pytest.fixture(autouse=True)
def _no_default_cache(tmp_path, monkeypatch):
    """No test may write into the user's ~/.cache: the default cache goes to a temp folder."""
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "default-cache"))


@pytest.fixture(scope="module")
def idrid_fx(tmp_path_factory):
    return make_idrid_fixture(tmp_path_factory.mktemp("idrid"), n_train=10, n_test=6)


def count_reads(monkeypatch, module):
    """Wrap ``module.read_image`` and return a list that records every decoded file."""
    calls: list[Path] = []
    original = module.read_image

    def counting(path, *args, **kwargs):
        calls.append(Path(path))
        return original(path, *args, **kwargs)

    monkeypatch.setattr(module, "read_image", counting)
    return calls


def copy_tree(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def unstandardize(x: torch.Tensor) -> torch.Tensor:
    m = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    s = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return x * s + m


# ----------------------------------------------------------------------------------------------- IDRiD


def test_idrid_flip_lists_match_paper():
    assert len(IDRID_FLIP_TRAIN) == 204 and len(IDRID_FLIP_TEST) == 47
    assert IDRID_FLIP_TRAIN[:5] == (0, 6, 8, 9, 12) and IDRID_FLIP_TRAIN[-3:] == (409, 411, 412)
    assert IDRID_FLIP_TEST[:4] == (1, 3, 4, 5) and IDRID_FLIP_TEST[-2:] == (100, 102)
    assert list(IDRID_FLIP_TRAIN) == sorted(set(IDRID_FLIP_TRAIN)) and max(IDRID_FLIP_TRAIN) < 413
    assert list(IDRID_FLIP_TEST) == sorted(set(IDRID_FLIP_TEST)) and max(IDRID_FLIP_TEST) < 103
    assert (IDRID_CROP_START, IDRID_CROP_STOP) == (260, 3686)


@pytest.mark.parametrize("use_parent", [True, False])
def test_idrid_happy_path_root_parent_or_grading_folder(idrid_fx, tmp_path, use_parent):
    root = idrid_fx.parent if use_parent else idrid_fx.grading_dir
    ds = load_idrid(root, image_size=SMALL, cache_dir=tmp_path, progress=False)
    assert isinstance(ds, StructuredDataset) and ds.source == "real" and ds.mask is None
    assert ds.x_train.shape == (10, 3, SMALL, SMALL) and ds.x_test.shape == (6, 3, SMALL, SMALL)
    assert ds.x_train.dtype == torch.float32 and ds.y_train.dtype == torch.int64
    assert ds.y_train.tolist() == idrid_fx.retinopathy["train"] and ds.y_test.tolist() == idrid_fx.retinopathy["test"]
    assert ds.num_classes == 5 and ds.name == "idrid-retinopathy"
    assert ds.meta["flipped_train"] == [0, 6, 8, 9] and ds.meta["flipped_test"] == [1, 3, 4, 5]
    assert ds.meta["train_files"][0] == "IDRiD_001.jpg" and len(ds.meta["test_files"]) == 6
    assert Path(ds.meta["root"]) == idrid_fx.grading_dir


def test_idrid_edema_task_has_three_classes(idrid_fx, tmp_path):
    ds = load_idrid(idrid_fx.grading_dir, task="edema", image_size=SMALL, cache_dir=tmp_path, progress=False)
    assert ds.num_classes == 3 and ds.name == "idrid-edema"
    assert ds.y_train.tolist() == idrid_fx.edema["train"] and ds.y_test.tolist() == idrid_fx.edema["test"]
    with pytest.raises(DataError, match="task must be one of"):
        load_idrid(idrid_fx.grading_dir, task="glaucoma", cache_dir=tmp_path)


def test_idrid_flips_exactly_listed_images_and_crops(idrid_fx, tmp_path):
    """The fixture draws right eyes (optic disc on the right) at the listed indices: after loading,
    every optic disc is on the left. The white columns outside the crop must be gone."""
    ds = load_idrid(idrid_fx.parent, image_size=SMALL, standardize=False, cache_dir=tmp_path, progress=False)
    for x in (ds.x_train, ds.x_test):
        assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
        green = x[:, 1]  # the yellow disc is bright in green, the dark-red retina is not
        left, right = green[:, :, : SMALL // 2].mean(dim=(1, 2)), green[:, :, SMALL // 2 :].mean(dim=(1, 2))
        assert bool((left > right + 0.1).all()), (left, right)
        # outside-crop columns are white (1, 1, 1); the edge columns (retina, no disc) have dark blue
        assert float(x[:, 2, :, 0].max()) < 0.2 and float(x[:, 2, :, -1].max()) < 0.2
    # without flips the right eyes keep their disc on the right
    raw = load_idrid(
        idrid_fx.parent, image_size=SMALL, standardize=False, flip=False, cache_dir=tmp_path, progress=False
    )
    g = raw.x_train[:, 1]
    disc_right = (g[:, :, SMALL // 2 :].mean(dim=(1, 2)) > g[:, :, : SMALL // 2].mean(dim=(1, 2))).nonzero()
    assert disc_right.flatten().tolist() == idrid_fx.right_eye["train"] == [0, 6, 8, 9]
    assert raw.meta["flipped_train"] == []


def test_idrid_pixels_equal_manual_pipeline(idrid_fx, tmp_path):
    """Crop, INTER_AREA resize, flip, BGR->RGB, /255, ImageNet standardisation, by hand."""
    ds = load_idrid(idrid_fx.parent, image_size=SMALL, cache_dir=False, progress=False)
    for i in (0, 1, 6):  # 0 and 6 flipped, 1 not
        bgr = cv2.imread(str(idrid_fx.train_files[i]))
        img = cv2.resize(bgr[:, 260:3686], (SMALL, SMALL), interpolation=cv2.INTER_AREA)
        if i in IDRID_FLIP_TRAIN:
            img = img[:, ::-1]
        rgb = torch.from_numpy(np.ascontiguousarray(img[:, :, ::-1])).permute(2, 0, 1).float() / 255
        expected = (rgb - torch.tensor(IMAGENET_MEAN).view(3, 1, 1)) / torch.tensor(IMAGENET_STD).view(3, 1, 1)
        torch.testing.assert_close(ds.x_train[i], expected)
    assert ds.meta["standardize"] == "imagenet" and ds.meta["mean"] == list(IMAGENET_MEAN)


def test_idrid_full_size_images_default_224(tmp_path):
    fx = make_idrid_fixture(tmp_path / "full", n_train=2, n_test=1, height=2848)
    with pytest.warns(UserWarning, match="official set"):
        ds = load_idrid(fx.parent, cache_dir=tmp_path / "c", progress=False)
    assert ds.x_train.shape == (2, 3, 224, 224) and ds.x_test.shape == (1, 3, 224, 224)
    assert ds.meta["original_sizes"] == {"4288x2848": 3}
    g = unstandardize(ds.x_train)[:, 1]
    assert bool((g[:, :, :112].mean(dim=(1, 2)) > g[:, :, 112:].mean(dim=(1, 2))).all())


def _break_idrid(fx, case: str) -> tuple[Path, str]:
    """Damage a copy of the fixture; returns (root to load, text the error must contain)."""
    g = fx.grading_dir
    train_dir = g / "1. Original Images" / "a. Training Set"
    if case == "csv_missing":
        fx.test_csv.unlink()
        return g, str(fx.test_csv)
    if case == "image_absent":
        (train_dir / "IDRiD_004.jpg").unlink()
        return g, "IDRiD_004.jpg"
    if case == "truncated":
        p = train_dir / "IDRiD_003.jpg"
        p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
        return g, "IDRiD_003.jpg"
    if case == "corrupt":
        (train_dir / "IDRiD_005.jpg").write_bytes(b"this is not a jpeg" * 50)
        return g, "IDRiD_005.jpg"
    if case == "grey":
        grey = cv2.cvtColor(cv2.imread(str(train_dir / "IDRiD_002.jpg")), cv2.COLOR_BGR2GRAY)
        cv2.imwrite(str(train_dir / "IDRiD_002.jpg"), grey)
        return g, "IDRiD_002.jpg"
    if case == "narrow":
        img = cv2.imread(str(train_dir / "IDRiD_006.jpg"))[:, :3000]
        cv2.imwrite(str(train_dir / "IDRiD_006.jpg"), img)
        return g, "IDRiD_006.jpg"
    rows = [(f"IDRiD_{i + 1:03d}", i % 5, i % 3) for i in range(10)]
    if case == "label_out_of_range":
        rows[7] = ("IDRiD_008", 5, 0)
        write_idrid_csv(fx.train_csv, rows)
        return g, "IDRiD_008"
    if case == "label_not_int":
        rows[2] = ("IDRiD_003", "moderate", 0)
        write_idrid_csv(fx.train_csv, rows)
        return g, "line 4"
    if case == "duplicate_name":
        rows[4] = ("IDRiD_002", 1, 1)
        write_idrid_csv(fx.train_csv, rows)
        return g, "duplicate"
    if case == "missing_name":
        rows[1] = ("", 1, 1)
        write_idrid_csv(fx.train_csv, rows)
        return g, "line 3"
    if case == "wrong_header":
        write_idrid_csv(fx.train_csv, rows, header=["Image", "Grade", "Edema"])
        return g, "Retinopathy grade"
    raise AssertionError(case)


@pytest.mark.parametrize(
    "case",
    [
        "csv_missing",
        "image_absent",
        "truncated",
        "corrupt",
        "grey",
        "narrow",
        "label_out_of_range",
        "label_not_int",
        "duplicate_name",
        "missing_name",
        "wrong_header",
    ],
)
def test_idrid_bad_input_raises_dataerror_before_decoding(tmp_path, monkeypatch, case):
    fx = make_idrid_fixture(tmp_path / "d", n_train=10, n_test=3, height=16)
    root, needle = _break_idrid(fx, case)
    reads = count_reads(monkeypatch, idrid_mod)
    with pytest.raises(DataError) as err:
        load_idrid(root, image_size=8, cache_dir=tmp_path / "c", progress=False)
    assert needle in str(err.value), str(err.value)
    assert reads == [], f"{case}: {len(reads)} images were decoded before the error"
    assert not list((tmp_path / "c").glob("*.npz")), "no cache entry may be written on failure"


def test_idrid_label_range_depends_on_task(tmp_path):
    fx = make_idrid_fixture(tmp_path / "d", n_train=6, n_test=3, height=16)
    rows = [(f"IDRiD_{i + 1:03d}", 4, 2) for i in range(6)]
    rows[3] = ("IDRiD_004", 4, 3)  # grade 4 is fine for retinopathy; edema risk 3 is not
    write_idrid_csv(fx.train_csv, rows)
    with pytest.warns(UserWarning, match=r"line 5 \(IDRiD_004\): '3'"):  # the other task's column is checked
        assert load_idrid(fx.parent, image_size=8, cache_dir=False, progress=False).y_train.tolist() == [4] * 6
    with pytest.raises(DataError, match=r"IDRiD_004.*Risk of macular edema.*outside 0\.\.2"):
        load_idrid(fx.parent, task="edema", image_size=8, cache_dir=False, progress=False)


def test_idrid_header_whitespace_and_bom_tolerated(tmp_path):
    fx = make_idrid_fixture(tmp_path / "d", n_train=4, n_test=2, height=16)
    rows = [(f"IDRiD_{i + 1:03d}", i % 5, i % 3) for i in range(4)]
    write_idrid_csv(
        fx.train_csv,
        rows,
        header=["\ufeffImage name ", " Retinopathy  grade", "Risk of macular edema   "],
        trailing_columns=0,
        trailing_blank_rows=3,
    )
    ds = load_idrid(fx.parent, task="edema", image_size=8, cache_dir=False, progress=False)
    assert ds.y_train.tolist() == [0, 1, 2, 0]


def test_idrid_root_that_is_not_idrid(tmp_path):
    (tmp_path / "something").mkdir()
    with pytest.raises(DataError, match="B. Disease Grading"):
        load_idrid(tmp_path / "something", cache_dir=False)
    with pytest.raises(DataError, match="does not exist"):
        load_idrid(tmp_path / "nowhere", cache_dir=False)


def test_idrid_garbage_scan_data_names_file(tmp_path):
    """A JPEG whose header survives but whose scan data is destroyed is rejected, naming the file."""
    fx = make_idrid_fixture(tmp_path / "d", n_train=3, n_test=2, height=16)
    p = fx.train_files[1]
    data = bytearray(p.read_bytes())
    sos = data.find(b"\xff\xda")
    data[sos + 2 : len(data) - 2] = b"\xff" * (len(data) - 2 - sos - 2)  # keep SOI ... SOS marker and EOI
    p.write_bytes(bytes(data))
    with pytest.raises(DataError, match="IDRiD_002.jpg"):
        load_idrid(fx.parent, image_size=8, cache_dir=False, progress=False)


# ----------------------------------------------------------------------------------------------- cache


def test_cache_hit_decodes_nothing_and_returns_same_data(idrid_fx, tmp_path, monkeypatch):
    reads = count_reads(monkeypatch, idrid_mod)
    first = load_idrid(idrid_fx.parent, image_size=SMALL, cache_dir=tmp_path, progress=False)
    assert len(reads) == 16 and first.meta["cache_hit"] is False
    assert Path(first.meta["cache_file"]).is_file() and Path(first.meta["cache_file"]).parent == tmp_path
    second = load_idrid(idrid_fx.parent, image_size=SMALL, cache_dir=tmp_path, progress=False)
    assert len(reads) == 16 and second.meta["cache_hit"] is True
    torch.testing.assert_close(first.x_train, second.x_train, rtol=0, atol=0)
    torch.testing.assert_close(first.x_test, second.x_test, rtol=0, atol=0)
    # a different setting is a different entry
    load_idrid(idrid_fx.parent, image_size=16, cache_dir=tmp_path, progress=False)
    assert len(reads) == 32
    assert not list(tmp_path.glob("*.tmp")), "temporary files must not be left behind"


def test_cache_kept_by_touch_and_rebuilt_when_corrupt(tmp_path, monkeypatch):
    """The key is the files' content: touching a file keeps the entry; a damaged entry is rebuilt."""
    fx = make_idrid_fixture(tmp_path / "d", n_train=4, n_test=2, height=16)
    reads = count_reads(monkeypatch, idrid_mod)
    first = load_idrid(fx.parent, image_size=8, cache_dir=tmp_path / "c", progress=False)
    st = fx.train_files[0].stat()
    os.utime(fx.train_files[0], ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    again = load_idrid(fx.parent, image_size=8, cache_dir=tmp_path / "c", progress=False)
    assert again.meta["cache_hit"] is True and len(reads) == 6
    Path(again.meta["cache_file"]).write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="unreadable cache entry"):
        rebuilt = load_idrid(fx.parent, image_size=8, cache_dir=tmp_path / "c", progress=False)
    assert rebuilt.meta["cache_hit"] is False and len(reads) == 12
    torch.testing.assert_close(first.x_train, rebuilt.x_train)


def test_cache_dir_default_env_and_off(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "envcache"))
    assert resolve_cache_dir(None) == tmp_path / "envcache" == resolve_cache_dir(True)
    assert resolve_cache_dir(False) is None
    monkeypatch.delenv(CACHE_ENV)
    assert resolve_cache_dir(None) == Path("~/.cache/gsa_utils").expanduser()
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "envcache"))
    fx = make_idrid_fixture(tmp_path / "d", n_train=3, n_test=2, height=16)
    ds = load_idrid(fx.parent, image_size=8, progress=False)  # cache_dir=None -> $GSA_CACHE_DIR
    assert Path(ds.meta["cache_file"]).parent == tmp_path / "envcache"
    off = load_idrid(fx.parent, image_size=8, cache_dir=False, progress=False)
    assert off.meta["cache_file"] is None and off.meta["cache_hit"] is False
    a = cache_key("x", fx.train_files, {"size": 8})
    assert a != cache_key("x", fx.train_files, {"size": 9}) and a != cache_key("x", fx.train_files[::-1], {"size": 8})


# ----------------------------------------------------------------------------------------------- JAFFE


@pytest.fixture(scope="module")
def jaffe_fx(tmp_path_factory):
    return make_jaffe_fixture(tmp_path_factory.mktemp("jaffe"), n_images=30)


def test_jaffe_picture_id():
    assert jaffe_picture_id("KA.AN1.39.tiff") == "KA-AN1"
    assert jaffe_picture_id("YM.NE3.52.tif") == "YM-NE3"
    assert jaffe_picture_id("notes.tiff") is None


def test_jaffe_happy_path(jaffe_fx, tmp_path):
    ds = load_jaffe(jaffe_fx.root, image_size=SMALL, cache_dir=tmp_path, progress=False)
    assert ds.class_names == JAFFE_CLASSES == ["happiness", "sadness", "surprise", "anger", "disgust", "fear"]
    assert ds.x_train.shape == (24, 3, SMALL, SMALL) and ds.x_test.shape == (6, 3, SMALL, SMALL)
    assert ds.source == "real" and ds.mask is None
    files = ds.meta["files"]
    assert files == [p.name for p in jaffe_fx.tiffs] and ds.meta["picture_ids"] == jaffe_fx.picture_ids
    y_all = np.empty(30, dtype=np.int64)
    y_all[ds.meta["train_index"]] = ds.y_train.numpy()
    y_all[ds.meta["test_index"]] = ds.y_test.numpy()
    assert y_all.tolist() == jaffe_fx.labels  # argmax of the first table, not the fear-excluded one
    assert ds.class_counts("test").tolist() == [1] * 6  # stratified: 5 per class -> 1 per class in test
    assert Path(ds.meta["ratings_file"]).name == "README_FIRST.txt"
    assert [t["columns"][-1] for t in ds.meta["ratings_tables"]] == ["FEA", "DIS"]
    again = load_jaffe(jaffe_fx.root, image_size=SMALL, cache_dir=tmp_path, progress=False)
    assert again.meta["test_files"] == ds.meta["test_files"]  # seeded
    other = load_jaffe(jaffe_fx.root, image_size=SMALL, seed=3, cache_dir=tmp_path, progress=False)
    assert other.meta["test_files"] != ds.meta["test_files"]


def test_jaffe_grey_replicated_and_standardised(jaffe_fx, tmp_path):
    raw = load_jaffe(jaffe_fx.root, image_size=SMALL, standardize=False, cache_dir=tmp_path, progress=False)
    assert torch.equal(raw.x_train[:, 0], raw.x_train[:, 1]) and torch.equal(raw.x_train[:, 0], raw.x_train[:, 2])
    i = raw.meta["train_index"][0]
    grey = cv2.imread(str(jaffe_fx.root / "jaffe" / raw.meta["files"][i]), cv2.IMREAD_UNCHANGED)
    assert grey.shape == (256, 256)
    expected = cv2.resize(grey, (SMALL, SMALL), interpolation=cv2.INTER_AREA) / 255.0
    np.testing.assert_allclose(raw.x_train[0, 0].numpy(), expected, atol=1e-6)
    std = load_jaffe(jaffe_fx.root, image_size=SMALL, cache_dir=tmp_path, progress=False)
    torch.testing.assert_close(unstandardize(std.x_train), raw.x_train)
    one = load_jaffe(jaffe_fx.root, image_size=SMALL, channels=1, cache_dir=tmp_path, progress=False)
    assert one.x_train.shape == (24, 1, SMALL, SMALL) and one.meta["channels"] == 1


def test_jaffe_bare_table_without_fear_column_and_loose_header(tmp_path):
    fx = make_jaffe_fixture(tmp_path / "j", n_images=25, layout="table", fear_column=False)
    text = fx.ratings_file.read_text().replace("#  HAP  SAD  SUR  ANG  DIS  PIC", "#HAP\tSAD SUR   ANG DIS     PIC")
    fx.ratings_file.write_text(text)
    ds = load_jaffe(fx.root, image_size=8, cache_dir=False, progress=False)
    assert ds.num_classes == 6 and ds.class_counts("train")[5] == 0 and ds.class_counts("test")[5] == 0
    y = np.empty(25, dtype=np.int64)
    y[ds.meta["train_index"]], y[ds.meta["test_index"]] = ds.y_train.numpy(), ds.y_test.numpy()
    assert y.tolist() == fx.labels and max(fx.labels) == 4
    r = read_jaffe_ratings(fx.ratings_file)
    assert all(np.isnan(v[5]) for v in r.ratings.values())


@pytest.mark.parametrize("second_header", [True, False])
def test_jaffe_second_table_fills_pictures_missing_from_first(tmp_path, second_header):
    rows = [("KA-AN1", [1, 1, 1, 4, 1, 1])]
    second = [("KA-AN1", [5, 1, 1, 1, 1]), ("KA-HA1", [4.5, 1, 1, 1, 1])]
    path = write_jaffe_ratings(tmp_path / "README_FIRST.txt", rows, second_table=second, second_header=second_header)
    r = read_jaffe_ratings(path)
    assert r.label("KA-AN1") == 3 and r.label("KA-HA1") == 0 and np.isnan(r.ratings["KA-HA1"][5])
    assert [t["implicit_header"] for t in r.tables] == [False, not second_header]
    # a "fear excluded" table under a six-column header, rows without the FEA value
    text = path.read_text().replace("#  HAP  SAD  SUR  ANG  DIS  PIC", "#  HAP  SAD  SUR  ANG  DIS  FEA  PIC")
    path.write_text(text)
    assert read_jaffe_ratings(path).label("KA-HA1") == 0


def test_jaffe_ratings_text_around_tables(tmp_path):
    """Numbered documentation lines end a table instead of being taken for rows."""
    path = tmp_path / "README_FIRST.txt"
    path.write_text(
        "1 Introduction\n#  HAP  SAD  SUR  ANG  DIS  FEA  PIC\n"
        "1 2.87 2.52 2.10 1.97 1.97 2.06 KA-NE1\n\n2  3.10 1.00 1.2 1.1 1.0 1.0   KA-HA1\n"
        "3 subjects were excluded from the analysis\n4 5.0 1 1 1 1 1 KL-HA1\n"
    )
    r = read_jaffe_ratings(path)
    assert sorted(r.ratings) == ["KA-HA1", "KA-NE1"] and r.label("KA-NE1") == 0 and r.source_line["KA-HA1"] == 5
    (tmp_path / "empty.txt").write_text("no table here\n")
    with pytest.raises(DataError, match="empty.txt: no JAFFE ratings table"):
        read_jaffe_ratings(tmp_path / "empty.txt")


@pytest.mark.parametrize("case", ["missing_value", "non_numeric", "bad_pic"])
def test_jaffe_bad_ratings_row_names_line(tmp_path, monkeypatch, case):
    fx = make_jaffe_fixture(tmp_path / "j", n_images=12)
    lines = fx.ratings_file.read_text().splitlines()
    k = next(i for i, line in enumerate(lines) if line.startswith("3 "))
    tokens = lines[k].split()
    if case == "missing_value":
        del tokens[4]
    elif case == "non_numeric":
        tokens[2] = "2,5"
    else:
        tokens[-1] = "KA_AN1"
    lines[k] = " ".join(tokens)
    fx.ratings_file.write_text("\n".join(lines) + "\n")
    reads = count_reads(monkeypatch, jaffe_mod)
    with pytest.raises(DataError) as err:
        load_jaffe(fx.root, image_size=8, cache_dir=False, progress=False)
    assert f"line {k + 1}" in str(err.value) and "README_FIRST.txt" in str(err.value)
    assert reads == []


def test_jaffe_tiff_without_ratings_row(tmp_path):
    fx = make_jaffe_fixture(tmp_path / "j", n_images=30)
    extra = fx.root / "jaffe" / "UY.SU3.999.tiff"
    cv2.imwrite(str(extra), np.full((256, 256), 128, np.uint8))
    with pytest.raises(DataError, match=r"UY\.SU3\.999\.tiff.*UY-SU3"):
        load_jaffe(fx.root, image_size=8, cache_dir=False, progress=False)
    ds = load_jaffe(fx.root, image_size=8, cache_dir=False, progress=False, missing_ratings="skip")
    assert ds.meta["skipped_unrated"] == ["UY.SU3.999.tiff"] and len(ds.y_train) + len(ds.y_test) == 30


def test_jaffe_other_bad_inputs(tmp_path, monkeypatch):
    fx = make_jaffe_fixture(tmp_path / "j", n_images=30)
    bad = fx.root / "jaffe" / "scan of something.tiff"
    bad.write_bytes(b"II*\0")
    with pytest.raises(DataError, match="scan of something.tiff.*not JAFFE-style"):
        load_jaffe(fx.root, cache_dir=False, progress=False)
    bad.unlink()
    # corrupt tiff: a valid name, garbage content
    fx.tiffs[5].write_bytes(b"not a tiff at all" * 10)
    reads = count_reads(monkeypatch, jaffe_mod)
    with pytest.raises(DataError, match=fx.tiffs[5].name.replace(".", r"\.")):
        load_jaffe(fx.root, image_size=8, cache_dir=False, progress=False)
    assert reads == []
    # no ratings file at all / explicit missing ratings file
    fx2 = make_jaffe_fixture(tmp_path / "k", n_images=12)
    fx2.ratings_file.unlink()
    with pytest.raises(DataError, match="no JAFFE ratings file found"):
        load_jaffe(fx2.root, cache_dir=False, progress=False)
    with pytest.raises(DataError, match="ratings file not found"):
        load_jaffe(fx2.root, ratings_file=tmp_path / "nope.txt", cache_dir=False, progress=False)
    # macOS archive debris is ignored
    mac = fx2.root / "__MACOSX" / "jaffe"
    mac.mkdir(parents=True)
    (mac / "._KA.AN1.1.tiff").write_bytes(b"\0\5\26\7")
    rows = [(p, [4, 1, 1, 1, 1, 1]) for p in fx2.picture_ids]
    rows[7] = (rows[7][0], [1, 1, 1, 1, 1, 4])  # the only 'fear' image: cannot be stratified
    write_jaffe_ratings(fx2.root / "README_FIRST.txt", rows)
    with pytest.raises(DataError, match="'fear' has only 1 image"):
        load_jaffe(fx2.root, test_fraction=0.5, cache_dir=False, progress=False)
    rows[7] = (rows[7][0], [5, 1, 1, 1, 1, 4])
    write_jaffe_ratings(fx2.root / "README_FIRST.txt", rows)
    ds = load_jaffe(fx2.root, image_size=8, test_fraction=0.25, cache_dir=False, progress=False)
    assert ds.class_counts("train").tolist() == [9, 0, 0, 0, 0, 0]  # __MACOSX/._* debris was not read


def test_jaffe_cache_hit(jaffe_fx, tmp_path, monkeypatch):
    reads = count_reads(monkeypatch, jaffe_mod)
    a = load_jaffe(jaffe_fx.root, image_size=SMALL, cache_dir=tmp_path, progress=False)
    b = load_jaffe(jaffe_fx.root, image_size=SMALL, cache_dir=tmp_path, progress=False, seed=1)
    assert len(reads) == 30 and a.meta["cache_hit"] is False and b.meta["cache_hit"] is True


# ----------------------------------------------------------------------------------------------- folder


def test_folder_class_folders(tmp_path):
    items = make_folder_fixture(tmp_path / "f", classes=("normal", "glaucoma", "suspect"), n_per_class=5)
    (tmp_path / "f" / "normal" / "notes.txt").write_text("not an image")
    ds = load_folder(tmp_path / "f", cache_dir=tmp_path / "c", progress=False)
    assert ds.class_names == ["glaucoma", "normal", "suspect"]
    assert ds.x_train.shape == (12, 3, 24, 32) and ds.x_test.shape == (3, 3, 24, 32)
    assert ds.class_counts("test").tolist() == [1, 1, 1]
    assert ds.meta["ignored_files"] == ["normal/notes.txt"] and ds.meta["standardize"] == "imagenet"
    rel = {p.relative_to(tmp_path / "f").as_posix(): y for p, y in items}
    assert [rel[f] for f in ds.meta["train_files"]] == ds.y_train.tolist()


@pytest.mark.parametrize("ext", [".jpg", ".tif", ".bmp"])
def test_folder_other_formats_grey_to_one_channel(tmp_path, ext):
    make_folder_fixture(tmp_path / "f", ext=ext, colour=False, n_per_class=5)
    ds = load_folder(tmp_path / "f", channels=1, test_fraction=0.4, cache_dir=False, progress=False)
    assert ds.x_train.shape[1:] == (1, 24, 32) and len(ds.y_test) == 4


def test_folder_csv_names_ints_and_split_file(tmp_path):
    items = make_folder_fixture(tmp_path / "a", layout="csv", n_per_class=5)
    ds = load_folder(tmp_path / "a", csv="labels.csv", cache_dir=False, progress=False)
    assert ds.class_names == ["glaucoma", "normal"] and ds.meta["layout"] == "csv"
    make_folder_fixture(tmp_path / "b", layout="csv", label_style="ints", n_per_class=5)
    ds = load_folder(
        tmp_path / "b",
        csv=tmp_path / "b" / "labels.csv",
        class_names=["healthy", "sick"],
        cache_dir=False,
        progress=False,
    )
    assert ds.class_names == ["healthy", "sick"]
    lines = ["path,split"] + [
        f"{p.relative_to(tmp_path / 'a').as_posix()},{'test' if i % 5 == 0 else 'train'}"
        for i, (p, _) in enumerate(items)
    ]
    (tmp_path / "a" / "split.csv").write_text("\n".join(lines) + "\n")
    ds = load_folder(tmp_path / "a", csv="labels.csv", split_file="split.csv", cache_dir=False, progress=False)
    assert ds.meta["test_files"] == ["images/glaucoma_00.png", "images/normal_00.png"]
    assert ds.y_test.tolist() == [0, 1] and len(ds.y_train) == 8
    (tmp_path / "a" / "split.txt").write_text("\n".join(line.replace(",", " ") for line in lines[1:4]) + "\n")
    with pytest.raises(DataError, match="no entry in split file"):
        load_folder(tmp_path / "a", csv="labels.csv", split_file="split.txt", cache_dir=False, progress=False)
    (tmp_path / "a" / "split.txt").write_text("images/glaucoma_00.png validation\n")
    with pytest.raises(DataError, match=r"split\.txt, line 1.*'train' or 'test'"):
        load_folder(tmp_path / "a", csv="labels.csv", split_file="split.txt", cache_dir=False, progress=False)


def test_folder_csv_bad_rows(tmp_path):
    make_folder_fixture(tmp_path / "a", layout="csv", n_per_class=3)
    csv_path = tmp_path / "a" / "labels.csv"
    lines = csv_path.read_text().splitlines()
    csv_path.write_text("\n".join(lines + ["images/missing.png,normal"]) + "\n")
    with pytest.raises(DataError, match=r"missing\.png.*line 8"):
        load_folder(tmp_path / "a", csv="labels.csv", cache_dir=False)
    csv_path.write_text("\n".join(lines[:3] + ["images/normal_00.png,"]) + "\n")
    with pytest.raises(DataError, match="line 4: empty label"):
        load_folder(tmp_path / "a", csv="labels.csv", cache_dir=False)
    csv_path.write_text("file,class\nimages/normal_00.png,normal\n")
    with pytest.raises(DataError, match="path.*label"):
        load_folder(tmp_path / "a", csv="labels.csv", cache_dir=False)


def test_folder_size_mismatch_and_resize(tmp_path, monkeypatch):
    make_folder_fixture(tmp_path / "f", n_per_class=5)
    odd = tmp_path / "f" / "normal" / "normal_03.png"
    cv2.imwrite(str(odd), np.zeros((30, 30, 3), np.uint8))
    reads = count_reads(monkeypatch, folder_mod)
    with pytest.raises(DataError) as err:
        load_folder(tmp_path / "f", cache_dir=tmp_path / "c", progress=False)
    msg = str(err.value)
    assert "normal_03.png" in msg and "30 x 30" in msg and "24 x 32" in msg and "9 of 10" in msg
    assert reads == []
    ds = load_folder(tmp_path / "f", resize=True, cache_dir=tmp_path / "c", progress=False)
    assert ds.image_shape == (3, 24, 32) and ds.meta["original_sizes"] == {"24x32": 9, "30x30": 1}
    with pytest.raises(DataError, match="normal_03.png.*image_size= alone"):  # a size does not excuse mixing
        load_folder(tmp_path / "f", image_size=16, cache_dir=tmp_path / "c", progress=False)
    ds = load_folder(tmp_path / "f", image_size=16, resize=True, cache_dir=tmp_path / "c", progress=False)
    assert ds.image_shape == (3, 16, 16)


def test_folder_unreadable_file_named(tmp_path):
    make_folder_fixture(tmp_path / "f", n_per_class=4)
    bad = tmp_path / "f" / "glaucoma" / "glaucoma_02.png"
    bad.write_bytes(b"\x89PNG broken")
    with pytest.raises(DataError, match="glaucoma_02.png"):
        load_folder(tmp_path / "f", cache_dir=False, progress=False)
    # a PNG whose header is fine but whose compressed data is damaged: found at decode time
    cv2.imwrite(str(bad), np.random.default_rng(0).integers(0, 255, (24, 32, 3), dtype=np.uint8))
    data = bytearray(bad.read_bytes())
    i = data.find(b"IDAT")
    data[i + 20 : i + 60] = b"\0" * 40
    bad.write_bytes(bytes(data))
    from gsa_utils.data.real import peek_image

    assert peek_image(bad).size == (24, 32)  # passes the header check ...
    with pytest.raises(DataError, match="glaucoma_02.png.*cannot decode"):  # ... fails at decoding
        load_folder(tmp_path / "f", cache_dir=tmp_path / "c", progress=False)
    assert not list((tmp_path / "c").glob("*")), "nothing may be cached after a failure"
    (tmp_path / "g" / "only").mkdir(parents=True)
    with pytest.raises(DataError, match="one sub-folder per class"):
        load_folder(tmp_path / "g", cache_dir=False)


def test_folder_npy_thickness_maps(tmp_path):
    make_folder_fixture(tmp_path / "grey", ext=".npy", colour=False, n_per_class=5)
    ds = load_folder(tmp_path / "grey", channels=None, cache_dir=tmp_path / "c", progress=False)
    assert ds.image_shape == (1, 24, 32) and ds.meta["standardize"] == "dataset"
    assert abs(float(ds.x_train.mean())) < 1e-4 and abs(float(ds.x_train.std()) - 1) < 0.05
    raw = load_folder(tmp_path / "grey", channels=None, standardize=False, cache_dir=tmp_path / "c", progress=False)
    assert float(raw.x_train.max()) > 100  # micrometres, not rescaled
    make_folder_fixture(tmp_path / "rgb", ext=".npy", colour=True, n_per_class=5)
    ds3 = load_folder(tmp_path / "rgb", channels=None, cache_dir=False, progress=False)
    assert ds3.image_shape == (3, 24, 32)
    np.save(tmp_path / "rgb" / "normal" / "normal_01.npy", np.zeros((24, 32, 4), np.float32))
    with pytest.raises(DataError, match="normal_01.npy.*4 channels"):
        load_folder(tmp_path / "rgb", channels=None, cache_dir=False, progress=False)


# ----------------------------------------------------------------------------------------------- MedMNIST


@pytest.fixture
def no_home_side_effects(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()


def test_medmnist_npz(tmp_path, no_home_side_effects):
    make_medmnist_fixture(tmp_path / "mm", counts=(20, 5, 10))
    ds = load_medmnist("retinamnist", root=tmp_path / "mm")
    assert ds.x_train.shape == (25, 3, 28, 28) and ds.x_test.shape == (10, 3, 28, 28)
    assert ds.class_names == ["0", "1", "2", "3", "4"] and ds.source == "real"
    assert ds.meta["val_index"].tolist() == list(range(20, 25))
    sep = load_medmnist(root=tmp_path / "mm", merge_val=False, image_size=32, channels=1)
    assert sep.x_train.shape == (20, 1, 32, 32) and sep.meta["x_val"].shape == (5, 1, 32, 32)
    assert sep.meta["y_val"].tolist() == [0, 1, 2, 3, 4]
    make_medmnist_fixture(tmp_path / "mm", size=64, counts=(10, 2, 5))
    assert load_medmnist(root=tmp_path / "mm", size=64).image_shape == (3, 64, 64)


def test_medmnist_errors(tmp_path, monkeypatch, no_home_side_effects):
    with pytest.raises(DataError, match=r"retinamnist_128\.npz.*download=True"):
        load_medmnist(root=tmp_path / "none", size=128)
    with pytest.raises(DataError, match="size must be one of"):
        load_medmnist(root=tmp_path, size=32)
    make_medmnist_fixture(tmp_path / "ml", flag="chestmnist", multilabel=True)
    with pytest.raises(DataError, match="chestmnist.npz.*single-label"):
        load_medmnist("chestmnist", root=tmp_path / "ml")
    np.savez(tmp_path / "ml" / "bloodmnist.npz", train_images=np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(DataError, match=r"bloodmnist\.npz: missing arrays.*train_labels"):
        load_medmnist("bloodmnist", root=tmp_path / "ml")
    monkeypatch.setitem(sys.modules, "medmnist", None)  # not installed
    with pytest.raises(DataError, match="pip install"):
        load_medmnist(root=tmp_path / "none", download=True)


def test_medmnist_download_uses_package(tmp_path, monkeypatch):
    calls = []

    class RetinaMNIST:
        def __init__(self, split, download, root, size):
            calls.append((split, download, root, size))
            make_medmnist_fixture(root, size=size, counts=(6, 2, 4))

    fake = types.SimpleNamespace(
        INFO={
            "retinamnist": {
                "python_class": "RetinaMNIST",
                "task": "ordinal-regression",
                "label": {str(i): f"grade {i}" for i in range(5)},
            }
        },
        RetinaMNIST=RetinaMNIST,
    )
    monkeypatch.setitem(sys.modules, "medmnist", fake)
    ds = load_medmnist(root=tmp_path / "dl", size=64, download=True)
    assert calls == [("train", True, str(tmp_path / "dl"), 64)]
    assert ds.class_names == [f"grade {i}" for i in range(5)] and ds.image_shape == (3, 64, 64)
