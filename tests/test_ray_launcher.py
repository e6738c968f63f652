"""Sweeps on Ray (``sweep --launcher ray``): the same runs and tables as the sequential sweep, killed workers
resumed, reruns that train nothing, sweeps sharing a folder; on a local Ray with 2 CPUs."""

import _thread
import functools
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from gsa_utils.cli import main as cli_main
from gsa_utils.runs import locks, run_experiment, sweep, sweep_configs
from gsa_utils.runs.markdown import table_to_markdown
from gsa_utils.runs.tables import build_table

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py; each Ray task also trains on one thread


def _session_pids(session_dir: str) -> set[int]:
    """Processes whose command line names the Ray session folder (GCS, raylet, agents, workers)."""
    pids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if session_dir.encode() in (entry / "cmdline").read_bytes():
                    pids.add(int(entry.name))
            except OSError:
                pass
    return pids


@pytest.fixture(scope="module")
def local_ray():
    """Ray on this machine with 2 CPUs for the whole file; afterwards no Ray process is left."""
    pytest.importorskip("ray")
    from gsa_utils.runs.ray_launcher import init_ray

    ray = init_ray(num_cpus=2, num_gpus=0)
    # functions defined here travel to the workers by value (the workers cannot import this test file)
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    session = ray._private.worker._global_node.get_session_dir_path()
    yield ray
    ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    before = _session_pids(session)
    ray.shutdown()
    deadline = time.time() + 30
    while time.time() < deadline and _session_pids(session):
        time.sleep(0.2)
    assert before and not _session_pids(session), "Ray processes left running after ray.shutdown()"


def _configs(tiny, epochs=3):
    configs = sweep_configs(["fundus"], ["gsa", "vanilla"], folds="full,0", **{**tiny, "epochs": epochs})
    assert len(configs) == 4
    return configs


def _records(root: Path, cfg) -> list[dict]:
    return [
        {k: v for k, v in r.items() if k != "seconds"}
        for r in json.loads((root / cfg.run_id() / "history.json").read_text())["history"]["records"]
    ]


def _same_runs(a: Path, b: Path, configs) -> None:
    for cfg in configs:
        assert _records(a, cfg) == _records(b, cfg), cfg.run_id()
        maps = [root / cfg.run_id() / "attention_map.npy" for root in (a, b)]
        assert maps[0].exists() == maps[1].exists()
        if maps[0].exists():
            assert maps[0].read_bytes() == maps[1].read_bytes(), cfg.run_id()


# ---- without Ray --------------------------------------------------------------------------------
def test_without_ray_the_launcher_ends_with_one_error_line(tmp_path, monkeypatch, capsys, tiny_args):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    code = cli_main(
        [
            "sweep",
            "--dataset",
            "fundus",
            "--methods",
            "vanilla",
            "--folds",
            "full",
            *tiny_args,
            "--launcher",
            "ray",
            "--results",
            str(tmp_path),
            "--quiet",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error:") and "gsa-utils[ray]" in err[0]
    assert not list(tmp_path.glob("*/history.json"))
    code = cli_main(
        [
            "sweep",
            "--dataset",
            "fundus",
            "--methods",
            "vanilla",
            *tiny_args,
            "--launcher",
            "ray",
            "--shard",
            "1/2",
            "--results",
            str(tmp_path),
            "--quiet",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: --shard")


def test_a_retried_task_takes_over_the_lock_its_dead_attempt_left_on_another_machine(tmp_path):
    lock = tmp_path / "lock"
    lock.write_text(json.dumps({"token": "t", "host": "another-node", "pid": 1, "owner": "task-7"}))
    assert locks.claim(lock, 3600) is None  # fresh, and its process cannot be checked from here
    assert locks.claim(lock, 3600, owner="task-8") is None  # another task: still held
    token = locks.claim(lock, 3600, owner="task-7")  # a retry of the same task: its earlier attempt is dead
    info = json.loads(lock.read_text())
    assert token is not None and info["token"] == token and info["owner"] == "task-7" and info["pid"] == os.getpid()


# ---- on Ray -------------------------------------------------------------------------------------
def test_ray_sweep_gives_the_sequential_table_and_a_rerun_trains_nothing(tmp_path, local_ray, capsys, tiny, tiny_args):
    configs = _configs(tiny)
    seq, on_ray = tmp_path / "sequential", tmp_path / "ray"
    args = ["sweep", "--dataset", "fundus", "--methods", "gsa", "vanilla", "--folds", "full,0", *tiny_args]
    assert cli_main([*args, "--results", str(seq), "--quiet"]) == 0
    assert cli_main([*args, "--launcher", "ray", "--results", str(on_ray)]) == 0
    out = capsys.readouterr().out
    assert "ran 4, already finished 0" in out
    for k in range(1, 5):
        assert f"[{k}/4] " in out  # one line per finished run with a running count
    assert all(f"{c.run_id()}: {'test' if c.fold is None else 'val'}_acc " in out for c in configs)
    _same_runs(seq, on_ray, configs)
    assert table_to_markdown(build_table(seq)) == table_to_markdown(build_table(on_ray))

    stamps = {c.run_id(): (on_ray / c.run_id() / "history.json").stat().st_mtime_ns for c in configs}
    assert cli_main([*args, "--launcher", "ray", "--results", str(on_ray)]) == 0
    assert "ran 0, already finished 4" in capsys.readouterr().out
    assert stamps == {c.run_id(): (on_ray / c.run_id() / "history.json").stat().st_mtime_ns for c in configs}


def _kill_once(run_id: str, marker: str, lock: str, config, epoch: int, record: dict) -> None:
    """kill -9 of the worker in the middle of ``run_id`` (after epoch 2's checkpoint), on its first attempt only.

    Its lock is first made to look written on another machine, where this one cannot see that its process died:
    only the Ray task id in the lock lets the retry take it over.
    """
    if config.run_id() == run_id and epoch == 2 and not os.path.exists(marker):
        Path(marker).write_text(str(os.getpid()))
        info = json.loads(Path(lock).read_text())
        Path(lock).write_text(json.dumps({**info, "host": "another-node"}))
        os.kill(os.getpid(), signal.SIGKILL)


def test_a_killed_worker_is_retried_and_its_run_resumes_bit_identically(tmp_path, local_ray, tiny):
    from gsa_utils.runs.ray_launcher import ray_sweep

    configs = _configs(tiny, epochs=4)
    victim = configs[0]  # GSA's full run: its map must come out the same too
    marker = tmp_path / "killed"
    lock = tmp_path / "ray" / victim.run_id() / "lock"
    report = ray_sweep(
        configs,
        tmp_path / "ray",
        progress=False,
        on_epoch_end=functools.partial(_kill_once, victim.run_id(), str(marker), str(lock)),
    )
    assert marker.exists()  # the first attempt died by SIGKILL after epoch 2, its lock left behind
    assert sorted(report["ran"]) == sorted(c.run_id() for c in configs) and not report["failed"]
    assert report["resumed"] == [victim.run_id()]
    assert not list((tmp_path / "ray").glob("*/lock")) and not list((tmp_path / "ray").glob("*/checkpoint.pt"))
    run_experiment(victim, tmp_path / "straight")  # uninterrupted, in this process
    _same_runs(tmp_path / "straight", tmp_path / "ray", [victim])


def _log_epoch(log: str, hold_at_epoch_1: str | None, config, epoch: int, record: dict) -> None:
    """Log every trained epoch; with ``hold_at_epoch_1``, wait there (up to a minute) until that file exists."""
    with open(log, "a") as f:
        f.write(f"{config.run_id()} {epoch} {os.getpid()}\n")
    if hold_at_epoch_1 is not None and epoch == 1:
        _wait_for(Path(hold_at_epoch_1), timeout=60)


def test_two_ray_sweeps_sharing_a_folder_never_train_a_run_twice(tmp_path, local_ray, tiny):
    from gsa_utils.runs.ray_launcher import ray_sweep

    configs = _configs(tiny)[:2]
    log, second_done = tmp_path / "epochs.log", tmp_path / "second-done"
    first = {}
    # the first sweep holds both its runs after their first epoch until the second sweep has ended, so the
    # second sweep meets both runs while they are being trained (half a CPU per run: all four tasks fit at once)
    thread = threading.Thread(
        target=lambda: first.update(
            ray_sweep(
                configs,
                tmp_path / "shared",
                progress=False,
                cpus_per_run=0.5,
                on_epoch_end=functools.partial(_log_epoch, str(log), str(second_done)),
            )
        )
    )
    thread.start()
    deadline = time.time() + 120
    while time.time() < deadline and not (log.exists() and len(log.read_text().splitlines()) >= 2):
        time.sleep(0.05)
    second = ray_sweep(
        configs[::-1],
        tmp_path / "shared",
        progress=False,
        cpus_per_run=0.5,
        on_epoch_end=functools.partial(_log_epoch, str(log), None),
    )
    second_done.touch()
    thread.join()
    lines = [line.split() for line in log.read_text().splitlines()]
    trained = [(rid, epoch) for rid, epoch, _ in lines]
    assert sorted(trained) == sorted(set(trained))  # no epoch of any run was trained twice
    trainers = {c.run_id(): {pid for rid, _, pid in lines if rid == c.run_id()} for c in configs}
    assert all(len(pids) == 1 for pids in trainers.values()), trainers  # each run in one process only
    assert sorted(first["ran"]) == sorted(c.run_id() for c in configs) and not first["failed"]
    assert sorted(second["locked"]) == sorted(c.run_id() for c in configs)  # left to the first sweep
    assert second["ran"] == [] and not second["failed"]


def _hold_after_epoch_1(run_id: str, started: str, config, epoch: int, record: dict) -> None:
    """Hold one run after its first checkpoint until it is cancelled (at most 5 minutes): no race with its end."""
    if config.run_id() == run_id and epoch == 1:
        Path(started).touch()
        deadline = time.time() + 300
        while time.time() < deadline:
            time.sleep(0.1)  # the cancel's KeyboardInterrupt lands between two sleeps


def test_ctrl_c_cancels_the_tasks_cleanly_and_a_rerun_continues(tmp_path, local_ray, capsys, tiny):
    from gsa_utils.runs.ray_launcher import ray_sweep

    configs = _configs(tiny, epochs=6)
    started, stopped, pressed = tmp_path / "started", threading.Event(), threading.Event()

    def press_ctrl_c() -> None:
        # a cold Ray on a loaded 2-core machine can take minutes to start its workers
        _wait_for(started, timeout=600)
        if started.exists() and not stopped.is_set():
            pressed.set()
            _thread.interrupt_main()

    # Python's own SIGINT handler, whatever earlier tests or libraries left installed
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    watcher = threading.Thread(target=press_ctrl_c, daemon=True)
    watcher.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            ray_sweep(
                configs,
                tmp_path / "ray",
                on_epoch_end=functools.partial(_hold_after_epoch_1, configs[1].run_id(), str(started)),
            )
    finally:
        stopped.set()
        watcher.join(timeout=5)
        signal.signal(signal.SIGINT, previous)
    assert pressed.is_set(), "the held run never finished its first epoch: Ctrl-C was not pressed"
    out = capsys.readouterr().out
    assert "interrupted:" in out
    assert not list((tmp_path / "ray").glob("*/lock"))  # the cancelled run released its claim
    assert (tmp_path / "ray" / configs[1].run_id() / "checkpoint.pt").exists()  # its epoch-1 checkpoint is kept
    report = ray_sweep(configs, tmp_path / "ray", progress=False)
    assert configs[1].run_id() in report["resumed"] and not report["failed"]
    assert len(report["ran"]) + len(report["finished_before"]) == len(configs)
    sweep([configs[1]], tmp_path / "straight", progress=False)
    _same_runs(tmp_path / "straight", tmp_path / "ray", [configs[1]])


def _wait_for(path: Path, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while not path.exists() and time.time() < deadline:
        time.sleep(0.05)
