"""pytest hooks for the notebook run: cache what nbval executed for the book, time each
notebook.

nbval executes every code cell of a notebook in one kernel. These hooks record the
kernel's output messages, and when every cell of a notebook has passed they store the
executed notebook in the book's jupyter-cache (``book/_ext/nbcache.py``), so that
``make book`` renders it without running it again. A notebook with a failing or skipped
cell is not cached (the book build would execute it). At the end, the terminal summary
lists each notebook's execution time.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "book" / "_ext"))
import nbcache  # noqa: E402

# Progress bars are noise in a test log and in a rendered page (the book build sets the
# same).
os.environ.setdefault("TQDM_DISABLE", "1")


@dataclass
class _NotebookRun:
    """Messages and outcome of one notebook under nbval."""

    path: Path
    started: float
    messages: list[dict] = field(default_factory=list)
    cell_outputs: list[list] = field(default_factory=list)
    seconds: float = 0.0


_runs: dict[str, _NotebookRun] = {}
_failed: set[str] = set()
_fingerprint: dict[str, str] | None = None


def _is_cell(item: pytest.Item) -> bool:
    return type(item).__name__ == "IPyNbCell"


def _run_for(item: pytest.Item) -> _NotebookRun:
    notebook = item.parent
    key = notebook.nodeid
    if key not in _runs:
        run = _runs[key] = _NotebookRun(
            path=Path(notebook.path), started=time.perf_counter()
        )
        read_message = notebook.get_kernel_message

        def recording(timeout=None, stream="iopub"):
            message = read_message(timeout=timeout, stream=stream)
            if stream == "iopub":
                run.messages.append(message)
            return message

        notebook.get_kernel_message = recording
    return _runs[key]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    if _is_cell(item):
        _run_for(item)  # before nbval starts the kernel: the time includes its start


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item):
    if not _is_cell(item):
        yield
        return
    run = _run_for(item)
    first = len(run.messages)
    yield
    messages = run.messages[first:]
    request_ids = {
        m["parent_header"].get("msg_id")
        for m in messages
        if m["msg_type"] == "execute_input" and m["content"]["code"] == item.cell.source
    }
    run.cell_outputs.append(
        nbcache.outputs_from_messages(
            m for m in messages if m["parent_header"].get("msg_id") in request_ids
        )
    )


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.failed or report.skipped:
        _failed.add(report.nodeid.split("::")[0])


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    if not _is_cell(item) or (nextitem is not None and nextitem.parent is item.parent):
        return
    global _fingerprint
    run = _runs.get(item.parent.nodeid)
    if run is None:
        return
    run.seconds = time.perf_counter() - run.started
    run.messages.clear()
    if item.parent.nodeid in _failed:
        return
    if _fingerprint is None:
        _fingerprint = nbcache.fingerprint()
    nbcache.store(
        nbcache.ExecutedNotebook(run.path, run.cell_outputs, run.seconds), _fingerprint
    )


def pytest_terminal_summary(terminalreporter) -> None:
    if not _runs:
        return
    terminalreporter.section("notebook execution times")
    for key, run in _runs.items():
        status = (
            "FAILED or skipped cells: not cached"
            if key in _failed
            else "cached for the book"
        )
        terminalreporter.write_line(
            f"{run.seconds:8.1f} s  {run.path.name}  ({status})"
        )
    terminalreporter.write_line(
        f"{sum(r.seconds for r in _runs.values()):8.1f} s  in all"
    )
