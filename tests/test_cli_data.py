"""Any MedMNIST set and your own folder from the command line: grey kept grey, checks before training, one size."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from gsa_utils.backbones import GreyToColour, SmallCNN, build_backbone
from gsa_utils.cli import main as cli_main
from gsa_utils.data import DataError
from gsa_utils.data.cache import CACHE_ENV
from gsa_utils.data.fixtures import make_folder_fixture, make_medmnist_fixture
from gsa_utils.data.medmnist import MEDMNIST_SETS
from gsa_utils.data.registry import MEDMNIST_NAMES, load_dataset, plan_data
from gsa_utils.paths import DATA_DIR_ENV
from gsa_utils.runs import ExperimentConfig
from gsa_utils.settings import FitSettings
from gsa_utils.training import two_phase_fit

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

QUICK = ["--epochs", "2", "--cutoff-epoch", "1", "--hidden-channels", "4", "--quiet"]


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / ".cache"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)


def _results(root: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(root.glob("*/history.json"))]


# ---- MedMNIST by name -----------------------------------------------------------------------------
def test_grey_pneumoniamnist_trains_from_the_cli_with_a_two_class_head_and_a_one_channel_p(tmp_path):
    make_medmnist_fixture(tmp_path / "data" / "medmnist", "pneumoniamnist", channels=1, n_classes=2)
    code = cli_main(
        [
            "sweep",
            "--dataset",
            "pneumoniamnist",
            "--methods",
            "gsa",
            "vanilla",
            "--folds",
            "full",
            "--recipe",
            "paper",
            *QUICK,
            "--data-dir",
            str(tmp_path / "data"),
            "--results",
            str(tmp_path / "res"),
            "--no-stand-in",
        ]
    )
    assert code == 0
    done = _results(tmp_path / "res")
    assert len(done) == 2
    for result in done:
        assert result["dataset"]["num_classes"] == 2 and result["dataset"]["image_shape"] == [1, 28, 28]
        assert "PneumoniaMNIST" in result["dataset"]["statement"]
    gsa = next(r for r in done if r.get("pixel_channels"))
    assert gsa["pixel_channels"] == gsa["dataset"]["n_train_used"]  # N x 1 channels, not 3N


def test_medmnist_plus_size_picks_its_file_and_the_stand_in_rule_holds(tmp_path):
    make_medmnist_fixture(tmp_path / "medmnist", "breastmnist", size=64, channels=1, n_classes=2)
    plan = plan_data("breastmnist", 64, tmp_path)
    assert plan.kind == "real" and plan.path.name == "breastmnist_64.npz" and plan.file_size == 64
    assert ExperimentConfig.from_profile("breastmnist", "gsa", "full").image_size == 224
    assert ExperimentConfig.from_profile("BreastMNIST", "gsa", "smoke").image_size == 28
    absent = plan_data("dermamnist", 28, tmp_path)
    assert absent.uses_stand_in and "DermaMNIST not found" in absent.reason
    stand_in = load_dataset("dermamnist", data_dir=tmp_path)
    assert stand_in.meta["stand_in_for"] == "dermamnist" and "DermaMNIST has 7" in stand_in.meta["source_statement"]


def test_multi_label_and_3d_sets_are_refused_by_name(tmp_path, capsys):
    with pytest.raises(DataError, match="multi-label"):
        ExperimentConfig.from_profile("chestmnist", "gsa", "smoke")
    code = cli_main(["run", "--dataset", "organmnist3d", "--results", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error:") and "3-D" in err[0]


def test_the_offline_table_of_medmnist_sets_agrees_with_the_medmnist_package():
    medmnist = pytest.importorskip("medmnist")
    for flag, (name, classes, channels, licence) in MEDMNIST_SETS.items():
        info = medmnist.INFO[flag]
        assert (info["python_class"], len(info["label"]), info["n_channels"], info["license"]) == (
            name,
            classes,
            channels,
            licence,
        )
    assert "pneumoniamnist" in MEDMNIST_NAMES and "chestmnist" not in MEDMNIST_NAMES
    readme = (Path(__file__).resolve().parents[1] / "data" / "README.md").read_text()
    for flag in MEDMNIST_SETS:
        assert f"`{flag}`" in readme or flag == "chestmnist", flag
    assert "CC BY-NC 4.0" in readme  # DermaMNIST's licence differs


# ---- grey stays grey, checks before training --------------------------------------------------------
def test_backbones_take_the_images_channels():
    x = torch.randn(2, 1, 32, 32)
    assert build_backbone("small_cnn", 2, False, in_channels=1)(x).shape == (2, 2)
    resnet = build_backbone("resnet18", 2, False, in_channels=1)
    assert isinstance(resnet, GreyToColour) and resnet(x).shape == (2, 2)
    with pytest.raises(DataError, match="takes images of 3 channels.*have 5"):
        build_backbone("resnet18", 2, False, in_channels=5)


def test_a_model_that_does_not_fit_the_data_is_refused_before_the_first_step():
    x, y = torch.randn(8, 1, 16, 16), torch.tensor([0, 1] * 4)
    settings = FitSettings(epochs=1, cutoff_epoch=None)
    with pytest.raises(DataError, match=r"images have 1 channel\(s\).*first layer takes 3"):
        two_phase_fit(SmallCNN(2, in_channels=3), x, y, settings, progress=False)
    with pytest.raises(DataError, match=r"\(5,\) outputs.*2 classes"):
        two_phase_fit(SmallCNN(5, in_channels=1), x, y, settings, num_classes=2, progress=False)


# ---- folder: options, one size unless asked --------------------------------------------------------------
def _write_split(root: Path, files: list[Path]) -> Path:
    lines = ["path,split"] + [
        f"{p.relative_to(root).as_posix()},{'test' if i % 4 == 0 else 'train'}" for i, p in enumerate(files)
    ]
    (root / "split.csv").write_text("\n".join(lines) + "\n")
    return root / "split.csv"


def test_a_csv_layout_with_a_split_file_runs_from_the_cli_and_is_part_of_the_runs_identity(tmp_path):
    root = tmp_path / "faces"
    files = [p for p, _ in make_folder_fixture(root, layout="csv", colour=False, ext=".pgm", n_per_class=8)]
    _write_split(root, files)
    args = [
        "run",
        "--dataset",
        f"folder:{root}",
        "--method",
        "gsa",
        "--recipe",
        "paper",
        *QUICK,
        "--image-size",
        "16",
        "--results",
        str(tmp_path / "res"),
    ]
    assert cli_main(args) == 2  # a CSV layout without --csv: no class folders
    assert cli_main([*args, "--csv", "labels.csv", "--split-file", "split.csv"]) == 0
    (result,) = _results(tmp_path / "res")
    assert result["dataset"]["n_train"] == 12 and result["dataset"]["n_test"] == 4
    assert result["dataset"]["image_shape"] == [1, 16, 16] and result["pixel_channels"] == 12  # grey PGM stays grey
    cfg = ExperimentConfig.from_profile(f"folder:{root}", "gsa", "smoke", csv="labels.csv", split_file="split.csv")
    assert cfg.run_id() != cfg.replace(duplicates="warn").run_id() != cfg.replace(resize=True).run_id()
    assert (
        cfg.replace(csv=None, split_file=None).run_id()
        == ExperimentConfig.from_profile(f"folder:{root}", "gsa", "smoke").run_id()
    )  # defaults leave earlier run ids as they were


def test_grey_gif_faces_stay_grey_on_the_folder_route(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (tmp_path / "gif" / cls).mkdir(parents=True)
        for j in range(5):
            Image.fromarray(rng.integers(0, 256, (20, 18), dtype=np.uint8)).convert("P").save(
                tmp_path / "gif" / cls / f"{j}.gif"
            )
    ds = load_dataset(f"folder:{tmp_path / 'gif'}", 16, cache_dir=False)
    assert ds.image_shape == (1, 16, 16)
    assert load_dataset(f"folder:{tmp_path / 'gif'}", 16, cache_dir=False, channels=3).image_shape == (3, 16, 16)


def test_a_mixed_size_folder_is_refused_even_with_an_image_size_unless_resize(tmp_path, capsys):
    root = tmp_path / "mixed"
    files = [p for p, _ in make_folder_fixture(root, size=(24, 32))]
    rng = np.random.default_rng(1)
    for odd in files[:2]:
        cv2.imwrite(str(odd.with_name("uncropped_" + odd.name)), rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
    args = [
        "run",
        "--dataset",
        f"folder:{root}",
        "--method",
        "vanilla",
        *QUICK,
        "--image-size",
        "16",
        "--results",
        str(tmp_path / "res"),
        "--no-cache",
    ]
    assert cli_main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:")
    assert "uncropped_" in err[0] and "and 1 more" in err[0] and "(12 of 14) are 24 x 32" in err[0]
    assert "--resize" in err[0] or "resize=True" in err[0]
    assert cli_main([*args, "--resize"]) == 0
