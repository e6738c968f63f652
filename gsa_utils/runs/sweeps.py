"""Grids and sweeps: the configs of a comparison, run shard by shard under locks, resumable.

Introduced in chapter 10 (``10_baselines``).
"""

from __future__ import annotations

import itertools
import os
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..files import orphaned_temp_files, write_atomic
from ..protocol import N_FOLDS
from .config import BACKBONE_METHODS, FLAT_NAMES, PIXEL_METHODS, ExperimentConfig, normalise_method
from .locks import DEFAULT_STALE_AFTER, LOCK_FILE, LockLost, claim, holds, release
from .methods import METHOD_TABLE
from .runner import reusable_result, run_experiment
from .store import RESULT_FILE, ResultError, read_result


def configs_from_grid(base: Mapping[str, Any], grid: Mapping[str, Sequence[Any]]) -> list[ExperimentConfig]:
    """Every combination of ``grid`` values on top of the flat settings ``base``, in product order, each once.

    Introduced in chapter 10 (``10_baselines``). ``grid`` keys are flat names (``"l1_weight"``), or
    name the object that holds the setting (``"fit.l1_weight"``, ``"pixel_cnn.kernel_size"``) or the
    one method they apply to (``"l1.l1_weight"``); a single value needs no list.
    """
    grid = {_flat_key(key): values for key, values in grid.items()}
    keys = list(grid)
    for key in keys:
        field_name = key.split(".", 1)[1] if "." in key else key
        if field_name not in FLAT_NAMES:
            raise ValueError(
                f"grid key {key!r}: {field_name!r} is not an ExperimentConfig setting ({', '.join(sorted(FLAT_NAMES))})"
            )
    values = [list(v) if isinstance(v, (list, tuple, range, np.ndarray)) else [v] for v in grid.values()]
    for key, vals in zip(keys, values):
        if not vals:
            raise ValueError(f"grid key {key!r} has no values")
    out: list[ExperimentConfig] = []
    for combo in itertools.product(*values) if keys else [()]:
        d = dict(base)
        qualified = []
        for key, value in zip(keys, combo):
            if "." in key:
                qualified.append((key, value))
            else:
                d[key] = value
        method = str(d.get("method", "gsa")).lower()
        for key, value in qualified:
            only, field_name = key.split(".", 1)
            if only.lower() == method:
                d[field_name] = value
        out.append(ExperimentConfig.from_flat(d))
    return unique(out)


def unique(configs: Iterable[ExperimentConfig]) -> list[ExperimentConfig]:
    """``configs`` without repeats (same run id), in order."""
    return list({cfg.run_id(): cfg for cfg in configs}.values())


def _flat_key(key: str) -> str:
    """A grid key with the object that holds the setting dropped: ``"fit.l1_weight"`` -> ``"l1_weight"``."""
    holder, _, name = key.partition(".")
    return name if holder in ("fit", "pixel_cnn") else key


def paper_grid(method: str) -> dict[str, tuple]:
    """The paper's hyper-parameter grid for a method (section 4.4; ``{}`` for LR and SVM, which search inside).

    Introduced in chapter 10 (``10_baselines``).
    """
    return dict(METHOD_TABLE[normalise_method(method)].grid)


def _fold_values(folds: str | Sequence[int | None], n_folds: int) -> list[int | None]:
    if isinstance(folds, str):
        spec = folds.strip().lower()
        if spec == "all":
            return [None] + list(range(n_folds))
        if spec == "cv":
            return list(range(n_folds))
        if spec in ("full", "none"):
            return [None]
        out: list[int | None] = []
        for part in spec.split(","):
            part = part.strip()
            out.append(None if part in ("full", "none") else int(part))
        return out
    return list(folds)


def sweep_configs(
    datasets: Sequence[str],
    methods: Sequence[str],
    *,
    backbones: Sequence[str] | None = None,
    folds: str | Sequence[int | None] = "all",
    grid: Mapping[str, Sequence[Any]] | None = None,
    use_paper_grid: bool = False,
    profile: str | None = None,
    **overrides: Any,
) -> list[ExperimentConfig]:
    """The configs of a comparison: datasets x methods x backbones x grid x folds.

    Introduced in chapter 10 (``10_baselines``).

    Parameters
    ----------
    backbones
        Image CNNs for ``gsa``, ``vanilla`` and ``l1`` (``None``: the profile's backbone).
    folds
        ``"all"`` (the full run and every CV fold: what :func:`protocol_summary` needs), ``"cv"``,
        ``"full"``, ``"full,0,1"`` or a list (``None`` = full run); LR and SVM get the full run only.
    grid, use_paper_grid
        A grid (:func:`configs_from_grid`), on top of :func:`paper_grid` when ``use_paper_grid``.
    profile, overrides
        Settings, as for :meth:`ExperimentConfig.from_profile`.
    """
    n_folds = int(overrides.get("n_folds") or N_FOLDS)
    fold_values = _fold_values(folds, n_folds)
    out: list[ExperimentConfig] = []
    for dataset in datasets:
        for method in methods:
            method_backbones = list(backbones) if (backbones and method in BACKBONE_METHODS) else [None]
            for backbone in method_backbones:
                extra = {} if backbone is None else {"backbone": backbone}
                base = ExperimentConfig.from_profile(dataset, method, profile, **{**overrides, **extra}).to_dict()
                g: dict[str, Sequence[Any]] = {}
                if use_paper_grid:
                    g.update(paper_grid(base["method"]))
                for key, vals in (grid or {}).items():
                    g[key] = vals
                g["fold"] = [None] if base["method"] in PIXEL_METHODS else fold_values
                out += configs_from_grid(base, g)
    return unique(out)


def is_finished(results_dir: Path, config: ExperimentConfig) -> bool:
    """True when the run's ``history.json`` exists, parses and is complete (a corrupt one counts as not finished)."""
    if not (results_dir / config.run_id() / RESULT_FILE).exists():
        return False
    try:
        read_result(results_dir / config.run_id())
    except ResultError:
        return False
    return True


def run_locked(
    config: ExperimentConfig,
    results_dir: Path,
    stale_after: float,
    *,
    data_dir=None,
    cache_dir=None,
    device=None,
    progress: bool = False,
    on_epoch_end: Callable[[ExperimentConfig, int, dict], None] | None = None,
    owner: str | None = None,
) -> tuple[str, dict | None]:
    """Claim, run and release one config: ``(status, result)``, status ``ran``, ``finished``, ``locked`` or ``lost``.

    ``owner``: see :func:`~gsa_utils.runs.locks.claim`.
    """
    if reusable_result(config, results_dir, data_dir, cache_dir) is not None:
        return "finished", None
    run_dir = results_dir / config.run_id()
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = run_dir / LOCK_FILE
    token = claim(lock, stale_after, owner)
    if token is None:
        return "locked", None
    try:
        if is_finished(results_dir, config):  # finished by another process between our check and our claim
            return "finished", None
        for tmp in orphaned_temp_files(run_dir):  # left by a killed writer (a checkpoint can be hundreds of MB)
            tmp.unlink(missing_ok=True)

        def heartbeat(epoch: int, record: dict) -> None:
            if not holds(lock, token):
                raise LockLost(f"{config.run_id()}: the lock was taken over by another process")
            os.utime(lock)
            if on_epoch_end is not None:
                on_epoch_end(config, epoch, record)

        result = run_experiment(
            config,
            results_dir,
            data_dir=data_dir,
            cache_dir=cache_dir,
            device=device,
            progress=progress,
            on_epoch_end=heartbeat,
        )
        return "ran", result
    except LockLost:
        return "lost", None
    finally:
        release(lock, token)


def record_error(run_dir: Path) -> None:
    """Write the exception being handled to ``run_dir/error.txt``, if the folder can be written."""
    try:
        write_atomic(run_dir / "error.txt", traceback.format_exc().encode())
    except OSError:
        pass


def new_report(n_configs: int, **extra: Any) -> dict[str, Any]:
    """A sweep's report before its first run: no run ids under any outcome yet (``failed``: run id -> message)."""
    return {"ran": [], "finished_before": [], "locked": [], "lost": [], "failed": {}, **extra, "n_configs": n_configs}


def sweep(
    configs: Iterable[ExperimentConfig],
    results_dir: str | os.PathLike,
    shard: tuple[int, int] = (0, 1),
    progress: bool = True,
    *,
    stale_after: float = DEFAULT_STALE_AFTER,
    data_dir: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | bool | None = None,
    device: str | None = None,
    raise_errors: bool = False,
    on_epoch_end: Callable[[ExperimentConfig, int, dict], None] | None = None,
) -> dict:
    """Run this shard's unfinished configs, each claimed by a lock, skipping those others hold.

    Introduced in chapter 10 (``10_baselines``).

    Parameters
    ----------
    configs
        All configs of the sweep, in the same order in every process.
    shard
        ``(i, n)``: run the configs whose index mod ``n`` is ``i``.
    stale_after
        Seconds after which a lock not refreshed (it is, every epoch) counts as left by a crashed process.
    raise_errors
        Re-raise a failing run's exception; by default it is recorded (report and ``<run_dir>/error.txt``)
        and the sweep goes on. An :class:`OSError` always ends the sweep: every run would fail alike.
    on_epoch_end
        ``on_epoch_end(config, epoch, record)`` after every epoch of every run.

    Returns
    -------
    dict
        Run ids by outcome: ``ran``, ``finished_before``, ``locked``, ``lost``, and ``failed`` (run id
        -> message); ``shard``, ``n_configs``. Ctrl-C releases the lock and keeps the checkpoint:
        run the sweep again to resume.
    """
    i, n = shard
    if not (isinstance(i, int) and isinstance(n, int) and n >= 1 and 0 <= i < n):
        raise ValueError(f"shard must be (i, n) with 0 <= i < n, got {shard!r}")
    results_dir = Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    mine = list(configs)[i::n]
    report = new_report(len(mine), shard=(i, n))
    for pos, cfg in enumerate(mine, 1):
        rid = cfg.run_id()
        if progress:
            print(f"[shard {i}/{n}: {pos}/{len(mine)}] {rid}", flush=True)
        try:
            status, _ = run_locked(
                cfg,
                results_dir,
                stale_after,
                data_dir=data_dir,
                cache_dir=cache_dir,
                device=device,
                progress=progress,
                on_epoch_end=on_epoch_end,
            )
        except KeyboardInterrupt:
            if progress:
                print(f"interrupted during {rid}: its checkpoint is kept; run the sweep again to resume", flush=True)
            raise
        except OSError:  # a read-only, full or vanished folder fails every run alike: stop, as `run` does
            raise
        except Exception as err:  # noqa: BLE001 - one failing run must not end a long sweep
            message = f"{type(err).__name__}: {err}"
            report["failed"][rid] = message
            record_error(results_dir / rid)
            if progress:
                print(f"  failed: {message}", flush=True)
            if raise_errors:
                raise
            continue
        key = {"ran": "ran", "finished": "finished_before", "locked": "locked", "lost": "lost"}[status]
        report[key].append(rid)
        if progress and status != "ran":
            print(f"  {'already finished' if status == 'finished' else status}", flush=True)
    return report
