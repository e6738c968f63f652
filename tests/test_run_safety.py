"""Runs that must not count as finished: made on data that changed since, with lost epoch records or a
missing map; and what the command line and the run folders do about dead processes and full disks."""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest
from conftest import finished_history
from PIL import Image

from gsa_utils.checkpoints import CheckpointRecoveryWarning
from gsa_utils.cli import main as cli_main
from gsa_utils.data.cache import CACHE_ENV
from gsa_utils.data.fixtures import make_folder_fixture
from gsa_utils.runs import ExperimentConfig, load_results, run_experiment, save_result
from gsa_utils.runs.store import MAP_FILE, RESULT_FILE
from gsa_utils.runs.sweeps import is_finished, sweep

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

TINY = dict(profile="smoke", image_size=16, epochs=1, backbone="small_cnn")  # as the command line below says


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))


def test_a_finished_folder_run_is_not_reused_after_an_image_changed(tmp_path, capsys):
    data = tmp_path / "images"
    make_folder_fixture(data, n_per_class=6)
    cfg = ExperimentConfig.from_profile(f"folder:{data}", "vanilla", **TINY)
    root = tmp_path / "results"
    first = run_experiment(cfg, root)
    assert first.dataset["fingerprint"]["origin"].startswith("files:")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert run_experiment(cfg, root).finished == first.finished  # unchanged data: reused
    Image.fromarray(np.full((24, 32, 3), 200, dtype=np.uint8)).save(data / "normal" / "normal_03.png")
    args = [
        "run",
        "--dataset",
        f"folder:{data}",
        "--method",
        "vanilla",
        "--backbone",
        "small_cnn",
        "--epochs",
        "1",
        "--image-size",
        "16",
        "--profile",
        "smoke",
        "--results",
        str(root),
    ]
    assert cli_main(args) == 0
    out, err = capsys.readouterr()
    assert "already finished" not in out and "changed since it was made" in err
    assert len(list(root.glob(f"{cfg.run_id()}~real-*"))) == 1  # the old result kept aside, not read
    again = load_results(root)
    assert len(again) == 1 and again[0].dataset["fingerprint"]["content"] != first.dataset["fingerprint"]["content"]
    # an image added to a class: stale again, also for sweep
    Image.fromarray(np.full((24, 32, 3), 90, dtype=np.uint8)).save(data / "glaucoma" / "extra.png")
    with pytest.warns(UserWarning, match="changed since it was made"):
        report = sweep([cfg], root, progress=False)
    assert report["ran"] == [cfg.run_id()]


def _finished(root, method="vanilla", epochs=5):
    cfg = ExperimentConfig.from_profile("fundus", method, "smoke", epochs=epochs, backbone="small_cnn")
    save_result(cfg, root, finished_history(cfg), dataset={"name": "fundus", "source": "synthetic"})
    return cfg, root / cfg.run_id()


def test_a_result_that_lost_epoch_records_is_not_finished(tmp_path, capsys):
    cfg, run_dir = _finished(tmp_path)
    assert is_finished(tmp_path, cfg)
    data = json.loads((run_dir / RESULT_FILE).read_text())
    data["history"]["records"] = data["history"]["records"][:2]  # still valid JSON, 2 of 5 epochs
    (run_dir / RESULT_FILE).write_text(json.dumps(data))
    assert not is_finished(tmp_path, cfg)
    with pytest.warns(UserWarning, match=r"epoch records 1\.\.2 but the config asks for 1\.\.5"):
        assert load_results(tmp_path) == []
    assert cli_main(["status", "--results", str(tmp_path)]) == 1
    assert "corrupt" in capsys.readouterr().out
    assert cli_main(["table", "--results", str(tmp_path)]) == 1
    with pytest.raises(ValueError, match="not a finished run"):  # and none is written so
        save_result(cfg.replace(seed=1), tmp_path, finished_history(cfg.replace(epochs=2)))


def test_a_gsa_result_without_its_map_is_not_finished(tmp_path):
    cfg, run_dir = _finished(tmp_path, "gsa", epochs=2)
    assert (run_dir / MAP_FILE).is_file() and is_finished(tmp_path, cfg)
    (run_dir / MAP_FILE).unlink()
    assert not is_finished(tmp_path, cfg)
    with pytest.warns(UserWarning, match=f"{MAP_FILE} is missing"):
        assert load_results(tmp_path) == []
    no_map = finished_history(cfg)
    no_map.maps.clear()
    with pytest.raises(ValueError, match="no attention map"):
        save_result(cfg.replace(seed=1), tmp_path, no_map)


# ---- dead processes, full disks, foreign checkpoints ---------------------------------------------
RUN = dict(profile="smoke", image_size=16, epochs=2, n_train=40, n_test=20, batch_size=16, backbone="small_cnn")


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(proc.stdout)


def test_status_and_sweep_agree_on_dead_and_empty_locks(tmp_path, capsys):
    cfg = ExperimentConfig.from_profile("fundus", "vanilla", **RUN)
    lock = tmp_path / cfg.run_id() / "lock"
    lock.parent.mkdir(parents=True)
    lock.write_text(json.dumps({"token": "t", "host": socket.gethostname(), "pid": _dead_pid(), "started": 0}))
    assert cli_main(["status", "--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"interrupted  {cfg.run_id()}" in out and "its process on this machine is gone" in out
    lock.write_text("")  # killed between creating the lock and writing it
    assert cli_main(["status", "--results", str(tmp_path)]) == 0
    assert f"running      {cfg.run_id()}" in capsys.readouterr().out  # young: its writer may be at work
    old = time.time() - 60
    os.utime(lock, (old, old))
    assert cli_main(["status", "--results", str(tmp_path)]) == 0
    assert "empty for 60 s" in capsys.readouterr().out
    assert sweep([cfg], tmp_path, progress=False)["ran"] == [cfg.run_id()]


def test_temp_files_of_killed_writers_are_reported_and_removed(tmp_path, capsys):
    cfg = ExperimentConfig.from_profile("fundus", "vanilla", **RUN)
    run_dir = tmp_path / cfg.run_id()
    run_dir.mkdir(parents=True)
    host = socket.gethostname().replace(".", "-")
    dead = run_dir / f".checkpoint.pt.{host}.{_dead_pid()}.0123abcd.tmp"
    dead.write_bytes(b"\0" * 2**20)
    legacy = run_dir / ".checkpoint.pt.89abcdef.tmp"  # no writer in its name: orphaned once old
    legacy.write_bytes(b"\0")
    live = run_dir / f".history.json.{host}.{os.getpid()}.fedcba98.tmp"  # this process: still writing
    live.write_bytes(b"\0")
    assert cli_main(["status", "--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"temporary file of a killed writer (1.0 MiB): {dead}" in out and str(legacy) not in out
    old = time.time() - 4 * 3600
    os.utime(legacy, (old, old))
    assert sweep([cfg], tmp_path, progress=False)["ran"] == [cfg.run_id()]
    assert not dead.exists() and not legacy.exists() and live.exists()


def test_sweep_on_a_full_disk_ends_with_one_error_line_naming_the_file(tmp_path, monkeypatch, capsys):
    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    code = cli_main(
        [
            "sweep",
            "--dataset",
            "fundus",
            "--methods",
            "vanilla",
            "lr",
            "--folds",
            "full",
            "--profile",
            "smoke",
            "--epochs",
            "1",
            "--results",
            str(tmp_path),
            "--quiet",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 4 and len(err) == 1, err
    assert err[0].startswith("error: OSError (") and "config.json): No space left on device" in err[0]


def test_a_checkpoint_of_other_settings_is_set_aside_and_the_run_goes_on(tmp_path):
    cfg = ExperimentConfig.from_profile("fundus", "vanilla", **RUN)
    other = cfg.replace(lr=cfg.fit.lr * 2)
    straight = run_experiment(cfg, tmp_path / "straight")

    class Stop(Exception):
        pass

    def stop(epoch, record):
        raise Stop

    with pytest.raises(Stop):
        run_experiment(other, tmp_path / "other", on_epoch_end=stop)
    run_dir = tmp_path / "results" / cfg.run_id()
    run_dir.mkdir(parents=True)
    shutil.copy(tmp_path / "other" / other.run_id() / "checkpoint.pt", run_dir / "checkpoint.pt")
    with pytest.warns(
        CheckpointRecoveryWarning,
        match=r"checkpoint\.pt was written with other settings \(lr: "
        r".*moved to checkpoint\.pt\.foreign.*from scratch",
    ):
        resumed = run_experiment(cfg, tmp_path / "results")
    assert [r["train_loss"] for r in resumed.history.records] == [r["train_loss"] for r in straight.history.records]
    assert (run_dir / "checkpoint.pt.foreign").exists()
