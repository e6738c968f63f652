"""Sweeps on Ray: one Ray task per run, on this machine or on a cluster.

The runs, folders and locks are :func:`~gsa_utils.runs.sweeps.sweep`'s, so the two launchers can
share a results folder; Ray only schedules, and retries a task whose worker died (it resumes from
its checkpoint). Ray is optional (``pip install 'gsa-utils[ray]'``); the book's page "Running the
grid on many machines" says how to start a cluster.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import ExperimentConfig
from .locks import DEFAULT_STALE_AFTER
from .runner import absolute, reusable_result
from .store import CHECKPOINT_FILE
from .sweeps import new_report, record_error, run_locked


def import_ray() -> Any:
    """The ``ray`` module, or an ``ImportError`` saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ImportError(
            "the Ray launcher needs Ray, which is not installed: pip install 'gsa-utils[ray]' (or pip install ray)"
        ) from None
    return ray


def init_ray(address: str | None = None, attempts: int = 3, **kwargs: Any) -> Any:
    """Join the Ray cluster at ``address``, or start Ray here (``None``; tried ``attempts`` times); returns ``ray``.

    ``kwargs`` go to ``ray.init`` (e.g. ``num_cpus``).
    """
    ray = import_ray()
    for attempt in range(1, attempts + 1):
        try:
            ray.init(address=address, include_dashboard=False, logging_level="WARNING", **kwargs)
            return ray
        except Exception as err:  # noqa: BLE001 - Ray raises a bare Exception when its node does not come up
            ray.shutdown()
            if address is not None or attempt == attempts:
                raise RuntimeError(
                    f"Ray did not start{'' if address is None else ' at ' + address}: {_first_line(err)}"
                ) from err
            print(
                f"Ray did not start in time ({_first_line(err)}); trying again ({attempt + 1}/{attempts})", flush=True
            )
    return ray


@dataclass
class RunOutcome:
    """What one Ray task reports back: a status of :func:`~gsa_utils.runs.sweeps.run_locked` or ``"failed"``,
    the accuracy after the last epoch, and whether the run resumed from a checkpoint."""

    run_id: str
    status: str
    accuracy: float | None = None
    eval_set: str | None = None
    seconds: float = 0.0
    resumed: bool = False
    error: str | None = None


def run_task(
    config: ExperimentConfig,
    results_dir: str,
    stale_after: float,
    data_dir: str | None,
    cache_dir: str | bool | None,
    device: str | None,
    threads: int,
    on_epoch_end: Callable[[ExperimentConfig, int, dict], None] | None = None,
) -> RunOutcome:
    """One run inside a Ray task, locked with the task id as owner."""
    import ray
    import torch

    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    rid = config.run_id()
    resumed = (Path(results_dir) / rid / CHECKPOINT_FILE).exists()
    try:
        status, result = run_locked(
            config,
            Path(results_dir),
            stale_after,
            data_dir=data_dir,
            cache_dir=cache_dir,
            device=device,
            on_epoch_end=on_epoch_end,
            owner=ray.get_runtime_context().get_task_id(),
        )
    except Exception as err:  # noqa: BLE001 - reported to the driver; the sweep goes on
        record_error(Path(results_dir) / rid)
        return RunOutcome(rid, "failed", seconds=time.perf_counter() - t0, error=f"{type(err).__name__}: {err}")
    outcome = RunOutcome(rid, status, seconds=time.perf_counter() - t0, resumed=resumed and status == "ran")
    if result is not None:
        outcome.eval_set = result.eval_set
        outcome.accuracy = float(result.eval_curve[-1])
    return outcome


def _line(outcome: RunOutcome) -> str:
    if outcome.status == "ran":
        acc = "-" if outcome.accuracy is None or math.isnan(outcome.accuracy) else f"{100 * outcome.accuracy:.2f}%"
        return (
            f"{outcome.run_id}: {outcome.eval_set}_acc {acc}, {outcome.seconds:.1f} s"
            f"{' (resumed from its checkpoint)' if outcome.resumed else ''}"
        )
    says = {
        "finished": "finished meanwhile by another sweep",
        "locked": "being trained by another sweep: left to it",
        "lost": "its lock was taken over by another sweep",
    }
    return f"{outcome.run_id}: {says.get(outcome.status, 'failed: ' + str(outcome.error))}"


def ray_sweep(
    configs: Iterable[ExperimentConfig],
    results_dir: str | os.PathLike,
    *,
    address: str | None = None,
    gpus_per_run: float | None = None,
    cpus_per_run: float = 1.0,
    max_retries: int = 3,
    progress: bool = True,
    stale_after: float = DEFAULT_STALE_AFTER,
    data_dir: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | bool | None = None,
    device: str | None = None,
    on_epoch_end: Callable[[ExperimentConfig, int, dict], None] | None = None,
) -> dict:
    """Run every unfinished config as one Ray task; the same runs, folders and report as :func:`sweep`.

    Parameters
    ----------
    results_dir
        On a cluster, storage that every node sees at the same path.
    address
        ``None``: the Ray this process is connected to, else one started here (and stopped at the
        end); ``"auto"`` or ``"HOST:PORT"``: join that cluster.
    gpus_per_run, cpus_per_run
        Per task; a GPU fraction packs runs on one GPU (``None``: 1 when the cluster has GPUs,
        else 0, and the runs train on the CPU). Each run uses ``cpus_per_run`` torch threads.
    max_retries
        How often Ray retries a task whose worker died.
    on_epoch_end
        As for :func:`~gsa_utils.runs.sweeps.sweep`; it runs inside the task, so it must pickle.

    Returns
    -------
    dict
        :func:`sweep`'s report, plus ``resumed`` and ``runs_per_hour``. Ctrl-C cancels the pending
        tasks, keeping their checkpoints: run the sweep again to resume.
    """
    ray = import_ray()
    t0 = time.perf_counter()
    results = Path(results_dir).expanduser().resolve()
    results.mkdir(parents=True, exist_ok=True)
    configs = list(configs)
    report = new_report(len(configs), resumed=[], runs_per_hour=None)
    todo = []
    for cfg in configs:
        if reusable_result(cfg, results, data_dir, cache_dir) is not None:
            report["finished_before"].append(cfg.run_id())
        else:
            todo.append(cfg)
    if progress:
        print(
            f"{len(configs)} configs, {len(report['finished_before'])} already finished, {len(todo)} to run on Ray",
            flush=True,
        )
    if not todo:
        return report
    started = not ray.is_initialized()
    if started:
        init_ray(address)
    pending: dict = {}  # task -> config, until its outcome is collected
    try:
        if gpus_per_run is None:
            gpus_per_run = 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0
        if device is None and gpus_per_run == 0:
            device = "cpu"  # no GPU was asked for: do not use one Ray did not assign
        if progress:
            print(
                f"Ray: {ray.cluster_resources().get('CPU', 0):g} CPUs, {ray.cluster_resources().get('GPU', 0):g} "
                f"GPUs; {cpus_per_run:g} CPU(s) and {gpus_per_run:g} GPU(s) per run",
                flush=True,
            )
        task = ray.remote(run_task).options(
            num_cpus=cpus_per_run, num_gpus=gpus_per_run, max_retries=max_retries, retry_exceptions=False
        )
        threads = max(1, int(cpus_per_run))
        for cfg in todo:
            pending[
                task.remote(
                    cfg,
                    str(results),
                    stale_after,
                    absolute(data_dir),
                    absolute(cache_dir),
                    device,
                    threads,
                    on_epoch_end,
                )
            ] = cfg
        _collect(ray, pending, report, progress, len(todo))
    except KeyboardInterrupt:  # wherever it lands: while submitting, waiting or recording
        _cancel(ray, pending, progress)
        raise
    finally:
        if started:
            ray.shutdown()
    hours = (time.perf_counter() - t0) / 3600
    report["runs_per_hour"] = len(report["ran"]) / hours if hours > 0 else None
    return report


def _collect(ray: Any, pending: dict, report: dict, progress: bool, total: int) -> None:
    """Wait for the tasks one by one, recording each outcome (and removing it from ``pending``)."""
    done = 0
    while pending:
        # a timeout brings the driver back to Python every second, where Ctrl-C is delivered
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
        for ref in ready:
            cfg = pending.pop(ref)
            try:
                outcome = ray.get(ref)
            except ray.exceptions.RayError as err:  # its worker died more than max_retries times
                outcome = RunOutcome(cfg.run_id(), "failed", error=f"{type(err).__name__}: {_first_line(err)}")
            done += 1
            key = {"finished": "finished_before"}.get(outcome.status, outcome.status)
            if key == "failed":
                report["failed"][outcome.run_id] = outcome.error
            else:
                report[key].append(outcome.run_id)
            if outcome.resumed:
                report["resumed"].append(outcome.run_id)
            if progress:
                print(f"[{done}/{total}] {_line(outcome)}", flush=True)


def _cancel(ray: Any, pending: dict, progress: bool) -> None:
    """Cancel the pending tasks and wait (up to a minute) until they have stopped."""
    if progress:
        print(
            f"interrupted: cancelling {len(pending)} run(s), their checkpoints kept; run the sweep again to resume",
            flush=True,
        )
    for ref in pending:
        ray.cancel(ref)  # raises KeyboardInterrupt in a running task: its lock is released, its checkpoint kept
    if pending:
        ray.wait(list(pending), num_returns=len(pending), timeout=60)


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__
