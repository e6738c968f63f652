"""Datasets by name, runs as folders, resumable sharded sweeps, the protocol summary, Table 2 (chapter 10)."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import finished_history

import gsa_utils.runs.locks as locks
import gsa_utils.runs.methods as methods
import gsa_utils.runs.sweeps as sweep_module
from gsa_utils.cli import main as cli_main
from gsa_utils.data import DataError
from gsa_utils.data.registry import DATASETS, describe_source, load_dataset
from gsa_utils.paths import shown_path
from gsa_utils.profiles import get_profile
from gsa_utils.protocol import stratified_folds
from gsa_utils.runs import (
    METHODS,
    PIXEL_METHODS,
    ExperimentConfig,
    build_model,
    configs_from_grid,
    load_results,
    paper_grid,
    profile_label,
    protocol_summary,
    run_experiment,
    save_result,
    sweep,
    sweep_configs,
)
from gsa_utils.runs.markdown import table_to_markdown
from gsa_utils.runs.summary import setting_summaries
from gsa_utils.runs.tables import L1_MARKER, VANILLA_MARKER, build_table, table_to_csv

REPO = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


# ---- datasets by name ---------------------------------------------------------------------------
def test_registry_stand_ins_are_marked(tmp_path):
    assert {"fundus", "idrid-retinopathy", "idrid-edema", "jaffe", "retinamnist", "glaucoma-oct"} <= set(DATASETS)
    edema = load_dataset("idrid-edema", 16, data_dir=tmp_path)
    assert edema.source == "synthetic" and edema.meta["stand_in_for"] == "idrid-edema"
    assert edema.name == "idrid-edema" and edema.num_classes == 3
    assert describe_source(edema).startswith(
        f"IDRiD not found under {shown_path(tmp_path / 'idrid')}: using the synthetic fundus"
    )
    retino = load_dataset("idrid-retinopathy", 16, data_dir=tmp_path)
    assert "has 5" in describe_source(retino)  # says it cannot match the 5 grades
    jaffe = load_dataset("jaffe", 16, data_dir=tmp_path)
    assert jaffe.meta["stand_in_for"] == "jaffe" and "faces" in describe_source(jaffe)
    glaucoma = load_dataset("glaucoma-oct", 16, data_dir=tmp_path)
    assert glaucoma.meta["stand_in_for"] == "glaucoma-oct" and "private" in describe_source(glaucoma)
    fundus = load_dataset("fundus", 16)
    assert "stand_in_for" not in fundus.meta and fundus.source == "synthetic"
    raw = load_dataset("fundus", 16, standardize=False)
    assert raw.x_train.min() >= 0 and fundus.x_train.min() < 0  # standardised like the paper's images
    with pytest.raises(DataError, match="unknown dataset 'idrid'"):
        load_dataset("idrid", 16)
    with pytest.raises(DataError, match="no such folder"):
        load_dataset(f"folder:{tmp_path / 'nowhere'}", 16)


def test_registry_loads_real_data_when_present(tmp_path):
    from gsa_utils.data.fixtures import make_folder_fixture, make_medmnist_fixture

    make_medmnist_fixture(tmp_path / "medmnist", size=28)
    ds = load_dataset("retinamnist", 16, data_dir=tmp_path)
    assert ds.source == "real" and "stand_in_for" not in ds.meta and ds.image_shape == (3, 16, 16)
    assert describe_source(ds).startswith("RetinaMNIST (retinamnist.npz, resized from 28 to 16 px) loaded from")
    make_folder_fixture(tmp_path / "mine")
    own = load_dataset("folder:mine", 16, data_dir=tmp_path)  # relative to data_dir
    assert own.source == "real" and own.name == "folder:mine" and "your own images" in describe_source(own)


# ---- configs ----------------------------------------------------------------------------------
def test_config_normalises_unused_fields_and_ids_are_stable():
    van = ExperimentConfig.from_flat(
        {"dataset": "fundus", "method": "vanilla", "hidden_channels": 64, "l1_weight": 0.1, "cutoff_epoch": 3}
    )
    assert van.pixel_cnn is None and van.fit.l1_weight == 0.0 and van.fit.cutoff_epoch is None
    assert (van.to_dict()["hidden_channels"], van.to_dict()["l1_weight"]) == (None, None)
    svm = ExperimentConfig("fundus", method="svm", backbone="resnet18", pretrained=True)
    assert svm.backbone is None and svm.pretrained is False and svm.fit is None and svm.to_dict()["epochs"] is None
    a = ExperimentConfig.from_flat({"dataset": "fundus", "l1_weight": 1})
    assert a.run_id() == ExperimentConfig.from_flat({"dataset": "fundus", "l1_weight": 1.0}).run_id()
    assert a.run_id().startswith("fundus_gsa-recommended_small_cnn_full_s0_")
    assert a.run_id() != a.replace(fold=0).run_id() and a.group_key() == a.replace(fold=0).group_key()
    assert ExperimentConfig.from_dict(a.to_dict()) == a
    with pytest.raises(ValueError, match="unknown method"):
        ExperimentConfig("fundus", method="cnn")
    with pytest.raises(ValueError, match="fold must be"):
        ExperimentConfig("fundus", fold=5)
    with pytest.raises(ValueError, match="unknown dataset"):
        ExperimentConfig("idrid")
    assert ExperimentConfig("IDRiD_Edema").dataset == "idrid-edema"
    grid = configs_from_grid(
        ExperimentConfig("fundus", method="vanilla").to_dict(),
        {"hidden_channels": [8, 16], "weight_decay": [1e-4, 1e-5]},
    )
    assert len(grid) == 2  # K does not multiply vanilla runs
    mixed = configs_from_grid({"dataset": "fundus", "method": "l1"}, {"l1.l1_weight": [1, 10], "gsa.l1_weight": [0.1]})
    assert sorted(c.fit.l1_weight for c in mixed) == [1.0, 10.0]
    assert profile_label(ExperimentConfig.from_profile("fundus", "gsa", "smoke")) == "smoke"
    assert (
        profile_label(ExperimentConfig.from_profile("fundus", "gsa", "full", epochs=5)) == "full (modified: epochs=5)"
    )


# ---- one run ---------------------------------------------------------------------------------
def test_run_experiment_on_a_fold_writes_files_and_uses_only_that_folds_images(tmp_path, monkeypatch, tiny):
    seen = []
    real = methods.build_gsa
    monkeypatch.setattr(methods, "build_gsa", lambda bb, x, *a, **k: seen.append(x.clone()) or real(bb, x, *a, **k))
    cfg = ExperimentConfig.from_profile("fundus", "gsa", **{**tiny, "n_folds": 3}, fold=1, recipe="paper")
    result = run_experiment(cfg, tmp_path)

    ds = load_dataset("fundus", 16).subset(40, 20, seed=0)
    tr, va = stratified_folds(ds.y_train, 3, seed=0)[1]
    assert len(seen) == 1 and torch.equal(seen[0], ds.x_train[torch.as_tensor(tr)])
    assert result.pixel_channels == len(tr) * 3 == result.model.pixel_cnn.in_channels
    run_dir = tmp_path / cfg.run_id()
    assert {p.name for p in run_dir.iterdir()} == {"config.json", "history.json", "attention_map.npy"}
    h = result.history
    assert len(h["val_acc"]) == 3 and all("test_acc" not in r for r in h.records)  # the test set is not touched
    assert result.eval_set == "val" and result.dataset["n_train_used"] == len(tr)
    assert json.loads((run_dir / "config.json").read_text())["config"] == cfg.to_dict()
    assert "l1_weight" not in (run_dir / "history.json").read_text()  # lambda is stored once, in config.json
    assert np.load(run_dir / "attention_map.npy").shape == (16, 16)
    again = run_experiment(cfg, tmp_path)  # finished: read back, not trained
    assert again.model is None and again.history.records == h.records
    assert [r.run_id for r in load_results(tmp_path)] == [cfg.run_id()]


def test_pixel_baseline_run_records_one_accuracy(tmp_path, tiny):
    cfg = ExperimentConfig.from_profile("fundus", "lr", **tiny)
    result = run_experiment(cfg, tmp_path)
    assert len(result.history.records) == 1 and 0 <= result.history["test_acc"][0] <= 1
    assert "C" in result.baseline["best_params"]
    s = protocol_summary(tmp_path, "fundus", "lr")
    assert s.mean == pytest.approx(result.history["test_acc"][0]) and np.isnan(s.std)


# ---- sweeps -----------------------------------------------------------------------------------
@pytest.fixture
def tiny_configs(tiny):
    """GSA and vanilla on the fundus set, the full run and every CV fold, each trained in seconds."""
    return sweep_configs(["fundus"], ["gsa", "vanilla"], folds="all", **tiny)


def _cells(rows):
    return {(r.label, ds): (c.mean, c.std, c.markers, c.epochs) for r in rows for ds, c in r.cells.items()}


def test_interrupted_sweep_resumed_gives_the_same_table(tmp_path, tiny_configs):
    configs = tiny_configs
    assert len(configs) == 6  # 2 methods x (full run + 2 folds)
    straight = sweep(configs, tmp_path / "a", progress=False)
    assert len(straight["ran"]) == 6

    def stop(config, epoch, record):
        if config == configs[1] and epoch == 2:
            raise KeyboardInterrupt

    b = tmp_path / "b"
    with pytest.raises(KeyboardInterrupt):
        sweep(configs, b, progress=False, on_epoch_end=stop)
    run_dir = b / configs[1].run_id()
    assert (b / configs[0].run_id() / "history.json").exists()
    assert (run_dir / "checkpoint.pt").exists() and not (run_dir / "history.json").exists()
    assert not (run_dir / "lock").exists()  # Ctrl-C releases the claim
    resumed = sweep(configs, b, progress=False)
    assert resumed["finished_before"] == [configs[0].run_id()] and len(resumed["ran"]) == 5
    assert not (run_dir / "checkpoint.pt").exists()

    def records(root, cfg):
        return [
            {k: v for k, v in r.items() if k != "seconds"}
            for r in json.loads((root / cfg.run_id() / "history.json").read_text())["history"]["records"]
        ]

    assert records(b, configs[1]) == records(tmp_path / "a", configs[1])
    table_a, table_b = build_table(tmp_path / "a"), build_table(b)
    assert _cells(table_a) == _cells(table_b)
    assert table_to_markdown(table_a) == table_to_markdown(table_b)
    assert {r.label for r in table_a} == {"SmallCNN", "SmallCNN (with global attention)"}


def test_shards_partition_the_configs(tmp_path, monkeypatch, tiny):
    ran = []

    def fake_run(config, results_dir, **kwargs):
        ran.append(config.run_id())
        save_result(config, results_dir, finished_history(config, keys=("test_acc", "val_acc")))

    monkeypatch.setattr(sweep_module, "run_experiment", fake_run)
    configs = sweep_configs(["fundus", "faces"], ["gsa", "vanilla", "svm"], folds="all", **tiny)
    assert len(configs) == 2 * (3 + 3 + 1)  # LR/SVM only get the full run
    shares = []
    for i in range(3):
        ran.clear()
        report = sweep(configs, tmp_path, shard=(i, 3), progress=False)
        shares.append(set(ran))
        assert report["ran"] == ran and report["n_configs"] == len(ran)
        assert ran == [c.run_id() for k, c in enumerate(configs) if k % 3 == i]
    assert set.union(*shares) == {c.run_id() for c in configs}
    assert sum(len(s) for s in shares) == len(configs)
    ran.clear()
    assert sweep(configs, tmp_path, progress=False)["finished_before"] == [c.run_id() for c in configs]
    assert ran == []


def test_a_second_processs_lock_is_respected_and_stale_locks_are_removed(tmp_path, monkeypatch, tiny_configs):
    ran = []

    def fake_run(config, results_dir, **kwargs):
        ran.append(config.run_id())
        save_result(config, results_dir, finished_history(config))

    monkeypatch.setattr(sweep_module, "run_experiment", fake_run)
    configs = tiny_configs[:2]
    lock = tmp_path / configs[0].run_id() / "lock"
    lock.parent.mkdir(parents=True)
    # another process claims the first run the way sweep() does: an exclusively created lock file
    code = (
        "import json, os, sys; fd = os.open(sys.argv[1], os.O_CREAT | os.O_EXCL | os.O_WRONLY); "
        "os.write(fd, json.dumps({'token': 'other', 'pid': os.getpid()}).encode())"
    )
    subprocess.run([sys.executable, "-S", "-c", code, str(lock)], check=True)
    held = lock.read_text()
    assert locks.claim(lock, 3600) is None  # our own claim fails while theirs is fresh
    report = sweep(configs, tmp_path, progress=False, stale_after=3600)
    assert report["locked"] == [configs[0].run_id()] and ran == [configs[1].run_id()]
    assert lock.read_text() == held and not (lock.parent / "history.json").exists()
    old = time.time() - 7200
    os.utime(lock, (old, old))  # the other process died two hours ago
    report = sweep(configs, tmp_path, progress=False, stale_after=3600)
    assert report["ran"] == [configs[0].run_id()] and report["finished_before"] == [configs[1].run_id()]
    assert not lock.exists()


def test_a_run_whose_lock_is_taken_over_stops(tmp_path, monkeypatch, tiny_configs):
    def fake_run(config, results_dir, on_epoch_end=None, **kwargs):
        lock = Path(results_dir) / config.run_id() / "lock"
        lock.write_text(json.dumps({"token": "someone-else"}))
        on_epoch_end(1, {})
        raise AssertionError("not reached")

    monkeypatch.setattr(sweep_module, "run_experiment", fake_run)
    cfg = tiny_configs[0]
    report = sweep([cfg], tmp_path, progress=False)
    assert report["lost"] == [cfg.run_id()]
    assert json.loads((tmp_path / cfg.run_id() / "lock").read_text())["token"] == "someone-else"


def test_a_failing_run_is_recorded_and_the_sweep_goes_on(tmp_path, monkeypatch, tiny_configs):
    def fake_run(config, results_dir, **kwargs):
        if config.method == "gsa":
            raise RuntimeError("out of memory")
        save_result(config, results_dir, finished_history(config))

    monkeypatch.setattr(sweep_module, "run_experiment", fake_run)
    configs = tiny_configs
    report = sweep(configs, tmp_path, progress=False)
    assert len(report["failed"]) == 3 and len(report["ran"]) == 3
    rid = configs[0].run_id()
    assert "out of memory" in report["failed"][rid] and (tmp_path / rid / "error.txt").exists()
    assert not (tmp_path / rid / "lock").exists()


# ---- protocol summary and table on fabricated results -------------------------------------------
def _fabricate(root, dataset, method, backbone, val_curves, test_curve, stand_in=None, profile="full", **settings):
    base = ExperimentConfig.from_profile(dataset, method, profile, backbone=backbone, **settings)
    info = {
        "name": dataset,
        "source": "synthetic" if stand_in else "real",
        "stand_in_for": stand_in,
        "statement": f"{dataset}: fabricated",
    }
    for fold, curve in enumerate(val_curves):
        cfg = base.replace(fold=fold)
        save_result(cfg, root, finished_history(cfg, curve), dataset=info)
    if test_curve is not None:
        save_result(base, root, finished_history(base, test_curve), dataset=info)
    return base


def _curves(rng, level, spread, n=250):
    return np.clip(level + rng.normal(0, spread, n), 0, 1)


@pytest.fixture
def fabricated(tmp_path):
    rng = np.random.default_rng(0)
    n = 250
    good_val = np.full((5, n), 0.6)
    good_val[:, 100:130] = 0.8  # CV picks epochs 101..130
    test_gsa = _curves(rng, 0.70, 0.01)
    test_gsa[100:130] = 0.85 + rng.normal(0, 0.01, 30)
    # GSA, two settings: K=64 wins the CV; K=32's full run is better on the test set but must not be chosen
    _fabricate(tmp_path, "idrid-edema", "gsa", "resnet152", good_val, test_gsa, hidden_channels=64)
    _fabricate(tmp_path, "idrid-edema", "gsa", "resnet152", np.full((5, n), 0.7), np.full(n, 0.99), hidden_channels=32)
    van_val = np.full((5, n), 0.5)
    van_val[:, :30] = 0.7  # epochs 1..30
    test_van = _curves(rng, 0.60, 0.02)
    _fabricate(tmp_path, "idrid-edema", "vanilla", "resnet152", van_val, test_van)
    test_l1 = _curves(rng, 0.70, 0.01)
    test_l1[100:130] = test_gsa[100:130][::-1] + 0.001  # same level as GSA: no L1 marker
    _fabricate(tmp_path, "idrid-edema", "l1", "resnet152", good_val, test_l1)
    _fabricate(tmp_path, "idrid-edema", "lr", None, [], np.array([0.66]))
    # JAFFE: GSA equals vanilla but beats L1 -> only the L1 marker
    _fabricate(tmp_path, "jaffe", "gsa", "vgg16", good_val, test_gsa)
    same = test_gsa.copy()
    same[100:130] = same[100:130][::-1]  # the same 30 values in another order
    _fabricate(tmp_path, "jaffe", "vanilla", "vgg16", good_val, same)
    _fabricate(tmp_path, "jaffe", "l1", "vgg16", good_val, test_van)
    return tmp_path, test_gsa, test_van


def test_protocol_summary_chooses_by_cv_and_reads_the_full_run(fabricated):
    root, test_gsa, _ = fabricated
    s = protocol_summary(root, "idrid-edema", "gsa", "resnet152")
    assert s.best_params["hidden_channels"] == 64 and s.n_folds_done == 5 and s.n_settings == 2
    assert s.epochs == list(range(101, 131))
    assert s.mean == pytest.approx(test_gsa[100:130].mean())
    assert s.std == pytest.approx(test_gsa[100:130].std(ddof=1))
    assert s.profile == "full" and s.cv_score == pytest.approx(0.8) and s.notes == []
    assert protocol_summary(root, "idrid-edema", "vanilla", "resnet152").epochs == list(range(1, 31))
    missing = protocol_summary(root, "jaffe", "gsa", "resnet152")
    assert missing.mean is None and missing.notes == ["no finished runs"]


def test_table_cells_markers_and_paper_figures(fabricated, tmp_path):
    root, test_gsa, test_van = fabricated
    rows = build_table(root)
    by_label = {r.label: r.cells["idrid-edema"] for r in rows}
    assert list(by_label)[:4] == ["LR", "SVM", "VGG-att3", "ResAttNet-92"]  # the paper's rows, in its order
    gsa = by_label["ResNet-152 (with global attention)"]
    assert gsa.mean == pytest.approx(100 * test_gsa[100:130].mean())
    assert gsa.markers == VANILLA_MARKER and gsa.p_vs_vanilla < 0.01 and gsa.p_vs_l1 > 0.01
    jaffe = {r.label: r.cells["jaffe"] for r in rows}["VGG-16 (with global attention)"]
    assert jaffe.markers == L1_MARKER and jaffe.paper_text == "84.26(6.19)"
    assert [r.cells["jaffe"].mean is None for r in rows if r.label.startswith("ResNet")] == [True] * 3
    assert gsa.text == f"{gsa.mean:.2f} ({gsa.std:.2f}){VANILLA_MARKER}"
    assert gsa.paper_text == "*82.13(0.70)" and gsa.profile == "full"
    van = by_label["ResNet-152"]
    assert van.mean == pytest.approx(100 * test_van[:30].mean()) and van.markers == ""
    assert by_label["LR"].text == "66.00" and by_label["LR"].paper_text == "66.99"
    assert by_label["GoogleNet"].mean is None and by_label["GoogleNet"].paper_text == "80.49(1.90)"
    md = table_to_markdown(rows)
    assert "| idrid-edema: ours | IDRiD Macular Edema: paper | jaffe: ours | JAFFE: paper |" in md
    assert f"| ResNet-152 (with global attention) [recipe: recommended] | {gsa.text} | \\*82.13(0.70) |" in md
    assert "Not a reproduction" not in md and "Profile of every result: full." in md
    path = table_to_csv(rows, tmp_path / "t.csv")
    lines = path.read_text().splitlines()
    assert lines[0].startswith("method,idrid-edema mean,idrid-edema std")
    assert any(
        line.startswith("ResNet-152 (with global attention),") and ",full,real,*82.13(0.70)" in line for line in lines
    )


def test_smoke_and_stand_in_results_are_never_presented_as_a_reproduction(tmp_path):
    rng = np.random.default_rng(0)
    _fabricate(
        tmp_path,
        "idrid-edema",
        "vanilla",
        "small_cnn",
        rng.random((2, 12)),
        rng.random(12),
        stand_in="idrid-edema",
        profile="smoke",
        n_folds=2,
        epochs=12,
    )
    md = table_to_markdown(build_table(tmp_path))
    assert md.startswith("**Not a reproduction of the paper**")
    assert "with the 'smoke' profile" in md and "stand-ins instead of the real data for idrid-edema" in md
    assert "only 12 epochs trained" in md


# ---- command line -------------------------------------------------------------------------------
def _cli(*args, cwd):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GSA_PROFILE": "smoke"}
    return subprocess.run(
        [sys.executable, "-m", "gsa_utils", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_cli_tiny_run_in_a_subprocess(tmp_path):
    out = _cli(
        "run",
        "--dataset",
        "fundus",
        "--method",
        "gsa",
        "--backbone",
        "small_cnn",
        "--epochs",
        "2",
        "--image-size",
        "16",
        "--n-train",
        "30",
        "--n-test",
        "10",
        "--hidden-channels",
        "4",
        "--results",
        str(tmp_path / "results"),
        "--quiet",
        cwd=REPO,
    )
    assert out.returncode == 0, out.stderr
    [result] = load_results(tmp_path / "results")
    assert result.config.fit.epochs == 2 and len(result.history["test_acc"]) == 2
    assert result.config.profile == "smoke"


def test_cli_help_and_bad_input(capsys, tmp_path):
    with pytest.raises(SystemExit) as stop:
        cli_main(["--help"])
    assert stop.value.code == 0
    helped = capsys.readouterr().out
    assert "sweep" in helped and "--shard 0/2" in helped and "python -m gsa_utils run" in helped
    for sub in ("run", "sweep", "summary", "table", "status"):
        with pytest.raises(SystemExit) as stop:
            cli_main([sub, "--help"])
        assert stop.value.code == 0
    assert "--paper-grid" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli_main(["sweep", "--dataset", "fundus", "--shard", "2/2"])
    assert cli_main(["run", "--dataset", "nonsense", "--epochs", "1", "--results", str(tmp_path)]) == 2
    assert "unknown dataset" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # rejected before anything is written


def test_lock_of_a_dead_local_process_is_taken_over(tmp_path):
    import json as _json
    import socket
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    lock = tmp_path / "lock"
    lock.write_text(_json.dumps({"token": "x", "host": socket.gethostname(), "pid": int(dead.stdout), "started": 0}))
    assert locks.claim(lock, stale_after=3600) is not None  # fresh by age, but its process is gone
    held = tmp_path / "held"
    held.write_text(_json.dumps({"token": "y", "host": socket.gethostname(), "pid": os.getpid(), "started": 0}))
    assert locks.claim(held, stale_after=3600) is None  # a live holder keeps it


# ---- one table for every summary: settings never pooled, spread over seeds -----------------------
def test_two_settings_without_cv_get_one_summary_each_and_the_cli_succeeds(tmp_path, capsys):
    test_a, test_b = np.full(30, 0.6), np.full(30, 0.8)  # the smoke profile's 30 epochs
    _fabricate(tmp_path, "fundus", "gsa", "small_cnn", [], test_a, profile="smoke", map_warmup_epochs=0)
    _fabricate(tmp_path, "fundus", "gsa", "small_cnn", [], test_b, profile="smoke", map_warmup_epochs=3)
    assert protocol_summary(tmp_path, "fundus", "gsa").mean is None  # the protocol cannot choose without CV
    per_setting = setting_summaries(tmp_path, "fundus", "gsa")
    assert {k: s.mean for k, s in per_setting.items()} == {
        "gsa (map_warmup_epochs=0)": pytest.approx(0.6),
        "gsa (map_warmup_epochs=3)": pytest.approx(0.8),
    }
    assert cli_main(["summary", "--results", str(tmp_path), "--dataset", "fundus", "--method", "gsa"]) == 0
    out = capsys.readouterr().out
    assert "map_warmup_epochs=0): 60.00%" in out and "map_warmup_epochs=3): 80.00%" in out


def test_several_seeds_give_mean_and_spread_over_seeds(tmp_path):
    val = np.full((5, 30), 0.7)  # the smoke profile's 30 epochs
    for seed, level in ((0, 0.6), (1, 0.7), (2, 0.8)):
        _fabricate(tmp_path, "fundus", "gsa", "small_cnn", val, np.full(30, level), profile="smoke", seed=seed)
    s = protocol_summary(tmp_path, "fundus", "gsa")
    assert s.seeds == [0, 1, 2] and s.samples == pytest.approx([0.6, 0.7, 0.8])
    assert s.mean == pytest.approx(0.7) and s.std == pytest.approx(0.1)
    one = protocol_summary(tmp_path, "fundus", "gsa", seed=1)
    assert one.seeds == [1] and one.mean == pytest.approx(0.7) and one.std == pytest.approx(0.0)
    cell = build_table(tmp_path).pop().cells["fundus"]
    assert cell.n == 3 and cell.std == pytest.approx(10.0)  # percent, over the three seeds


def test_method_table_drives_configs_grids_and_networks():
    from gsa_utils.runs.methods import METHOD_TABLE

    assert set(METHOD_TABLE) == set(METHODS) and PIXEL_METHODS == ("lr", "svm")
    l1 = ExperimentConfig.from_profile("fundus", "l1", "smoke")
    assert l1.fit.l1_reduction == "mean" and l1.pixel_cnn is None
    assert ExperimentConfig.from_profile("fundus", "gsa", "smoke").fit == get_profile("smoke").fit
    assert paper_grid("l1")["l1_weight"] == METHOD_TABLE["l1"].grid["l1_weight"]
    with pytest.raises(ValueError, match="no network"):
        build_model(ExperimentConfig.from_profile("fundus", "svm", "smoke"), 2, torch.rand(4, 3, 16, 16))


# ---- short runs without CV: the final epochs, and the right t-test ------------------------------
@pytest.mark.parametrize(
    "n_epochs, measured", [(30, list(range(26, 31))), (60, list(range(31, 61))), (6, [4, 5, 6]), (2, [2]), (1, [1])]
)
def test_the_short_run_fallback_never_averages_the_untrained_start(tmp_path, n_epochs, measured):
    curve = np.full(n_epochs, 0.9)
    curve[0] = 0.1  # the first, barely trained epoch
    _fabricate(
        tmp_path,
        "fundus",
        "gsa",
        "small_cnn",
        [],
        curve,
        profile="smoke",
        epochs=n_epochs,
        cutoff_epoch=min(15, n_epochs),
    )
    s = protocol_summary(tmp_path, "fundus", "gsa")
    assert s.epochs == measured
    assert s.mean == pytest.approx(0.9 if n_epochs > 1 else 0.1)
    assert any(f"last {len(measured)} of {n_epochs} epochs" in n for n in s.notes)


def test_table_tests_over_seeds_and_never_mixes_seeds_with_epochs(tmp_path):
    rng = np.random.default_rng(0)
    for seed, level in ((0, 0.90), (1, 0.91), (2, 0.92)):
        _fabricate(
            tmp_path,
            "fundus",
            "gsa",
            "small_cnn",
            [],
            _curves(rng, level, 0.01, 40),
            profile="smoke",
            seed=seed,
            epochs=40,
        )
    _fabricate(tmp_path, "fundus", "vanilla", "small_cnn", [], _curves(rng, 0.5, 0.01, 40), profile="smoke", epochs=40)
    cell = next(r for r in build_table(tmp_path) if r.method == "gsa").cells["fundus"]
    assert cell.markers == "" and cell.p_vs_vanilla is None  # 3 seed means against 5 epochs of one run: no test
    assert any("no test against vanilla" in n for n in cell.notes)
    for seed, level in ((1, 0.93), (2, 0.88)):
        _fabricate(
            tmp_path,
            "fundus",
            "vanilla",
            "small_cnn",
            [],
            _curves(rng, level, 0.01, 40),
            profile="smoke",
            seed=seed,
            epochs=40,
        )
    cell = next(r for r in build_table(tmp_path) if r.method == "gsa").cells["fundus"]
    assert any("over seeds (3 and 3)" in n for n in cell.notes)
    van = protocol_summary(tmp_path, "fundus", "vanilla")
    gsa = protocol_summary(tmp_path, "fundus", "gsa")
    from gsa_utils.protocol import t_test

    assert cell.p_vs_vanilla == pytest.approx(t_test(gsa.samples, van.samples)) and len(van.samples) == 3


def test_paper_figures_stand_beside_real_data_only(tmp_path):
    # a row of stand-in results must not carry the paper's number for the real data set
    val = np.full((5, 1), 0.6)  # LR and SVM are fitted once: one record per run
    _fabricate(tmp_path, "idrid-edema", "lr", None, val, [0.6], stand_in="idrid-edema")
    _fabricate(tmp_path, "idrid-edema", "svm", None, val, [0.6])
    rows = {r.label: r.cells["idrid-edema"] for r in build_table(tmp_path)}
    assert rows["LR [stand-in data]"].mean is not None
    assert rows["LR [stand-in data]"].paper is None and rows["LR [stand-in data]"].paper_text == ""
    assert rows["LR [real data]"].paper_text == "66.99" and rows["SVM [real data]"].paper_text != ""


def test_tables_carry_captions_and_split_by_data_set(fabricated):
    from gsa_utils.runs.markdown import PAPER_TABLE_CAPTION, paper_table_to_markdown
    from gsa_utils.runs.tables import rows_of_dataset

    root, _, _ = fabricated
    rows = build_table(root)
    one = rows_of_dataset(rows, "jaffe")
    assert one and all(list(r.cells) == ["jaffe"] for r in one) and len(rows[0].cells) > 1
    md = table_to_markdown(one, caption="Ours, jaffe")
    assert md.startswith("**Ours, jaffe**\n\n| Accuracy % (std) | jaffe: ours | JAFFE: paper |")
    assert paper_table_to_markdown().startswith(f"**{PAPER_TABLE_CAPTION}**\n\n|")


def test_markdown_tables_escape_dollar_signs(fabricated):
    # MyST reads $...$ as maths: "$GSA_DATA_DIR/idrid ... $GSA_DATA_DIR" became one equation
    root, _, _ = fabricated
    md = table_to_markdown(build_table(root), caption="data in $GSA_DATA_DIR and $GSA_RESULTS_DIR")
    assert "$GSA" not in md.replace("\\$GSA", "") and "\\$GSA_DATA_DIR" in md
