"""Registry reliability: where data are looked for, stand-ins known before training, sizes, splits, identity."""

from __future__ import annotations

import hashlib
import warnings

import pytest
import torch

from gsa_utils.data import IMAGENET_MEAN, IMAGENET_STD, DataError
from gsa_utils.data.cache import CACHE_ENV
from gsa_utils.data.fingerprint import data_fingerprint
from gsa_utils.data.fixtures import make_folder_fixture, make_idrid_fixture, make_medmnist_fixture, write_idrid_csv
from gsa_utils.data.idrid import load_idrid
from gsa_utils.data.medmnist import load_medmnist
from gsa_utils.data.registry import describe_source, load_dataset, plan_data
from gsa_utils.data.standardization import standardize_dataset
from gsa_utils.paths import DATA_DIR_ENV, RESULTS_DIR_ENV, data_dir, repo_root, shown_path

pytestmark = pytest.mark.filterwarnings("ignore:IDRiD .* official set")


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / ".cache"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)


# -- one rule, absolute paths, known before training -----------------------------------


def test_plan_says_stand_in_before_loading_with_shown_paths_and_hint(tmp_path, monkeypatch):
    work = tmp_path / "work"
    make_medmnist_fixture(work / "data" / "medmnist")  # the user put the file in ./data/medmnist
    monkeypatch.chdir(work)
    official = tmp_path / "official"
    official.mkdir()
    monkeypatch.setenv(DATA_DIR_ENV, str(official))
    plan = plan_data("retinamnist")
    assert plan.uses_stand_in and plan.path == official / "medmnist"
    assert f"not found under ${DATA_DIR_ENV}/medmnist/retinamnist*.npz" in plan.reason
    assert f"${DATA_DIR_ENV}" in plan.hint and f"set {DATA_DIR_ENV}={shown_path(work / 'data')}" in plan.hint
    assert str(tmp_path) not in plan.reason + plan.hint, "a machine path in what the chapters print"
    assert plan.statement().startswith("retinamnist: STAND-IN")
    ds = load_dataset("retinamnist", data_dir="../official")  # a relative data_dir is printed resolved
    assert shown_path(official / "medmnist") in describe_source(ds) and ds.meta["stand_in_for"] == "retinamnist"
    monkeypatch.setenv(DATA_DIR_ENV, str(work / "data"))
    real = plan_data("retinamnist")
    assert (
        not real.uses_stand_in and real.kind == "real" and real.path == work / "data" / "medmnist" / "retinamnist.npz"
    )
    assert plan_data("fundus").kind == "synthetic" and plan_data("glaucoma-oct").uses_stand_in
    with pytest.raises(DataError, match="unknown dataset"):
        plan_data("idrid")


def test_load_medmnist_default_root_is_the_data_folder(tmp_path, monkeypatch):
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "d"))
    assert data_dir() == tmp_path / "d"
    make_medmnist_fixture(tmp_path / "d" / "medmnist")
    assert load_medmnist().x_train.shape[0] == 25
    make_medmnist_fixture(tmp_path / "home" / ".medmnist", size=64)
    with pytest.raises(DataError, match=r"/d/medmnist/retinamnist_64\.npz.*a copy exists at .*\.medmnist"):
        load_medmnist(size=64)


# -- cache options on the registry --------------------------------------------------------


def test_registry_cache_options(tmp_path):
    make_folder_fixture(tmp_path / "mine", n_per_class=4)
    load_dataset(f"folder:{tmp_path / 'mine'}", cache_dir=False)
    assert not (tmp_path / ".cache").exists()
    load_dataset(f"folder:{tmp_path / 'mine'}", cache_dir=tmp_path / "elsewhere")
    assert len(list((tmp_path / "elsewhere").glob("folder-*.npz"))) == 1 and not (tmp_path / ".cache").exists()
    ds = load_dataset(f"folder:{tmp_path / 'mine'}", cache_dir=tmp_path / "elsewhere")
    assert ds.meta["cache_hit"]


# -- native size unless asked, official validation split -----------------------------------


def test_native_sizes_unless_asked(tmp_path):
    make_medmnist_fixture(tmp_path / "medmnist", size=28)
    make_medmnist_fixture(tmp_path / "medmnist", size=64)
    assert load_dataset("retinamnist", data_dir=tmp_path).image_shape == (3, 28, 28)
    asked = load_dataset("retinamnist", 32, data_dir=tmp_path)
    assert asked.image_shape == (3, 32, 32) and "resized from 64 to 32 px" in describe_source(asked)
    assert load_dataset("retinamnist", 64, data_dir=tmp_path).meta["file"].endswith("retinamnist_64.npz")
    make_folder_fixture(tmp_path / "mine", size=(24, 32), n_per_class=4)
    assert load_dataset("folder:mine", data_dir=tmp_path).image_shape == (3, 24, 32)
    assert load_dataset("fundus").image_shape[1] == 64
    assert load_dataset("retinamnist", data_dir=tmp_path / "empty").image_shape == (3, 28, 28)  # stand-in


def test_official_validation_split_kept_apart(tmp_path):
    make_medmnist_fixture(tmp_path / "medmnist", counts=(20, 5, 10))
    merged = load_dataset("retinamnist", data_dir=tmp_path)
    assert len(merged.y_train) == 25 and "x_val" not in merged.meta
    apart = load_dataset("retinamnist", data_dir=tmp_path, merge_val=False, standardize=False)
    assert len(apart.y_train) == 20 and apart.meta["x_val"].shape == (5, 3, 28, 28) and len(apart.y_test) == 10
    assert "20 train / 5 val / 10 test" in describe_source(apart)
    std = standardize_dataset(apart)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std_dev = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    assert torch.allclose(std.meta["x_val"], (apart.meta["x_val"] - mean) / std_dev, atol=1e-5)


# -- IDRiD's other task -------------------------------------------------------------------------


def test_idrid_other_tasks_column_is_checked(tmp_path):
    fx = make_idrid_fixture(tmp_path / "d", n_train=6, n_test=3, height=16)
    rows = [(f"IDRiD_{i + 1:03d}", i % 5, i % 3) for i in range(6)]
    rows[3] = ("IDRiD_004", 3, 7)
    write_idrid_csv(fx.train_csv, rows)
    with pytest.warns(
        UserWarning,
        match=r"Training Labels\.csv: 'Risk of macular edema'.*not used for task "
        r"'retinopathy'.*line 5 \(IDRiD_004\): '7'",
    ):
        load_idrid(fx.parent, image_size=8, cache_dir=False, progress=False)
    write_idrid_csv(fx.train_csv, [(r[0], r[1]) for r in rows], header=["Image name", "Retinopathy grade"])
    with pytest.warns(UserWarning, match=r"Training Labels\.csv: no 'Risk of macular edema' column"):
        load_idrid(fx.parent, image_size=8, cache_dir=False, progress=False)
    write_idrid_csv(fx.train_csv, [(f"IDRiD_{i + 1:03d}", i % 5, i % 3) for i in range(6)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", "IDRiD .* official set")
        load_idrid(fx.parent, image_size=8, cache_dir=False, progress=False)


# -- a fingerprint that separates stand-in and real data ------------------------------


def test_fingerprint_separates_stand_in_real_and_changed_files(tmp_path):
    stand_in = data_fingerprint(load_dataset("retinamnist", data_dir=tmp_path))
    path = make_medmnist_fixture(tmp_path / "medmnist")
    expected_origin = "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    real = data_fingerprint(load_dataset("retinamnist", data_dir=tmp_path))
    assert stand_in.source == "stand-in" and real.source == "real" and stand_in.key != real.key
    assert real.origin == expected_origin and real.image_shape == (3, 28, 28) and real.n_train == 25
    assert data_fingerprint(load_dataset("retinamnist", data_dir=tmp_path)).key == real.key  # stable
    make_medmnist_fixture(tmp_path / "medmnist", seed=1)  # same name, other content
    assert data_fingerprint(load_dataset("retinamnist", data_dir=tmp_path)).origin != real.origin
    assert data_fingerprint(load_dataset("retinamnist", 32, data_dir=tmp_path)).image_shape == (3, 32, 32)
    make_folder_fixture(tmp_path / "mine", n_per_class=4)
    own = data_fingerprint(load_dataset("folder:mine", data_dir=tmp_path, cache_dir=False))
    assert own.origin.startswith("files:") and own.source == "real"
    assert set(real.as_dict()) >= {"source", "origin", "image_shape", "n_train", "n_val", "n_test"}


def test_shown_path_names_the_folders_never_the_machine(tmp_path, monkeypatch):
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "d"))
    monkeypatch.setenv(RESULTS_DIR_ENV, str(tmp_path / "r"))
    assert shown_path(tmp_path / "d" / "medmnist" / "x.npz") == f"${DATA_DIR_ENV}/medmnist/x.npz"
    assert shown_path(tmp_path / "r") == f"${RESULTS_DIR_ENV}"
    assert shown_path(tmp_path / "other").startswith("<tmp>/") and str(tmp_path) not in shown_path(tmp_path)
    monkeypatch.delenv(RESULTS_DIR_ENV)
    if repo_root() is not None:
        assert shown_path(repo_root() / "results" / "run") == "results/run"
        assert shown_path(repo_root() / "notebooks") == "notebooks"


def test_shown_text_rewrites_every_known_folder_in_a_message(tmp_path, monkeypatch):
    from gsa_utils.paths import shown_text

    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "d"))
    message = f"{tmp_path / 'd' / 'idrid'}: not found; copy in {tmp_path / 'x.png'}"
    assert shown_text(message) == f"${DATA_DIR_ENV}/idrid: not found; copy in {shown_path(tmp_path / 'x.png')}"
    assert str(tmp_path) not in shown_text(message)
