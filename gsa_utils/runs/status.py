"""The state of every run in a results folder, and the files that need a look (``python -m gsa_utils status``)."""

from __future__ import annotations

import os
from pathlib import Path

from ..files import orphaned_temp_files
from .locks import LOCK_FILE, stale_reason
from .store import CHECKPOINT_FILE, RESULT_FILE, SET_ASIDE_MARK, ResultError, read_result

#: Every state a run folder can be in, in the order they are counted.
RUN_STATES = ("finished", "set aside", "corrupt", "running", "interrupted", "failed", "not started")


def _left_behind(run_dir: Path) -> list[str]:
    """Checkpoints set aside and temporary files of killed writers in ``run_dir``."""
    found = [
        f"corrupt checkpoint set aside (kept for inspection): {bad.absolute()}"
        for bad in sorted(run_dir.glob(f"{CHECKPOINT_FILE}*.corrupt*"))
    ]
    found += [
        f"checkpoint of other settings set aside (kept for inspection): {bad.absolute()}"
        for bad in sorted(run_dir.glob(f"{CHECKPOINT_FILE}*.foreign*"))
    ]
    for tmp in orphaned_temp_files(run_dir):
        size = tmp.stat().st_size if tmp.exists() else 0
        found.append(
            f"temporary file of a killed writer ({size / 2**20:.1f} MiB): {tmp.absolute()}; the next "
            f"run of {run_dir.name} removes it"
        )
    return found


def run_state(run_dir: Path, stale_after: float) -> tuple[str, str | None]:
    """The state of one run folder (one of :data:`RUN_STATES`) and, for a corrupt result or a stale lock, why."""
    result_error = None
    if (run_dir / RESULT_FILE).exists():
        try:
            read_result(run_dir)
        except ResultError as err:
            result_error = err
    if SET_ASIDE_MARK in run_dir.name:
        return "set aside", None  # results made on other data, kept for reference
    if result_error is not None:
        return "corrupt", f"{result_error}; the sweep re-runs it"
    if (run_dir / RESULT_FILE).exists():
        return "finished", None
    if (run_dir / LOCK_FILE).exists():
        why = stale_reason(run_dir / LOCK_FILE, stale_after)  # the rule run and sweep use to take it over
        if why is None:
            return "running", None
        return "interrupted", (
            f"lock {(run_dir / LOCK_FILE).absolute()} left by a crashed process ({why}); "
            f"the next run or sweep takes it over"
        )
    if (run_dir / "error.txt").exists():
        return "failed", None
    return ("interrupted" if (run_dir / CHECKPOINT_FILE).exists() else "not started"), None


def results_status(results: str | os.PathLike, stale_after: float) -> tuple[dict[str, str], list[str]]:
    """``{run folder name: state}`` for every run under ``results``, and the problems found (one line each)."""
    states: dict[str, str] = {}
    problems: list[str] = []
    for run_dir in sorted(p for p in Path(results).iterdir() if p.is_dir()):
        problems += _left_behind(run_dir)
        states[run_dir.name], why = run_state(run_dir, stale_after)
        if why is not None:
            problems.append(why)
    return states, problems
