"""The notebook cache shared by the notebook tests and the book build: each chapter runs once.

``make test`` runs every notebook under nbval; ``notebooks/conftest.py`` stores each
notebook that ran without error, with its outputs, in the jupyter-cache folder that
``_config.yml`` names (``execute.cache``). ``make book`` (``execute_notebooks: cache``)
then renders those outputs instead of executing the notebook again.

A cached notebook is only reused when it ran in the same circumstances as the build:
the same profile, the same ``gsa_utils`` source, the same data folder and the same
torch. The book build removes every cached notebook whose :func:`fingerprint` differs
(:func:`prune_stale`), so a changed library or profile is never shown with old outputs.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[2]
CONFIG_FILE = ROOT / "_config.yml"
FINGERPRINT_KEY = "gsa_fingerprint"
DEFAULT_CACHE = "_build/.jupyter_cache"
_VERSIONED = ("torch", "torchvision", "numpy")


def cache_dir(root: Path = ROOT) -> Path:
    """The jupyter-cache folder named by ``execute.cache`` in ``_config.yml`` (absolute)."""
    import yaml

    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf8")) or {}
    folder = (config.get("execute") or {}).get("cache") or DEFAULT_CACHE
    path = Path(folder)
    return path if path.is_absolute() else root / path


def library_digest(root: Path = ROOT) -> str:
    """SHA-256 over the ``gsa_utils`` sources (names and contents), in a stable order."""
    digest = hashlib.sha256()
    for path in sorted((root / "gsa_utils").rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def fingerprint(root: Path = ROOT) -> dict[str, str]:
    """What a notebook's outputs depend on besides its own code.

    The profile (as ``gsa_utils.get_profile`` resolves it here), the library source,
    the data folder (``GSA_DATA_DIR``) and the torch, torchvision and numpy versions.
    """
    from gsa_utils.profiles import get_profile

    prints = {
        "profile": get_profile().name,
        "gsa_utils": library_digest(root),
        "GSA_DATA_DIR": os.path.abspath(os.environ["GSA_DATA_DIR"]) if os.environ.get("GSA_DATA_DIR") else "",
    }
    for package in _VERSIONED:
        prints[package] = metadata.version(package)
    return prints


def outputs_from_messages(messages: Iterable[dict]) -> list[nbformat.NotebookNode]:
    """Notebook outputs of one cell, from its kernel iopub messages, as nbclient builds them.

    Consecutive stream messages of the same name are merged, ``clear_output`` empties the
    list, and messages that are not outputs (status, execute_input, comms) are ignored.
    """
    outputs: list[nbformat.NotebookNode] = []
    for message in messages:
        kind = message["msg_type"]
        if kind == "clear_output":
            outputs.clear()
        elif kind in ("stream", "display_data", "execute_result", "error"):
            output = nbformat.v4.output_from_msg(message)
            last = outputs[-1] if outputs else None
            if kind == "stream" and last is not None and last.output_type == "stream" and last.name == output.name:
                last.text += output.text
            else:
                outputs.append(output)
    return outputs


@dataclass
class ExecutedNotebook:
    """One notebook run by the tests: its path, each code cell's outputs, its run time."""

    path: Path
    cell_outputs: list[list[nbformat.NotebookNode]]
    seconds: float


def store(run: ExecutedNotebook, prints: dict[str, str], folder: Path | None = None) -> int:
    """Write an executed notebook into the cache; return the cache record's id.

    Raises
    ------
    ValueError
        When the number of executed cells differs from the notebook's code cells.
    """
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    notebook = nbformat.read(run.path, as_version=4)
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    if len(code_cells) != len(run.cell_outputs):
        raise ValueError(
            f"{run.path}: {len(code_cells)} code cells but {len(run.cell_outputs)} were executed; not cached"
        )
    for count, (cell, outputs) in enumerate(zip(code_cells, run.cell_outputs), start=1):
        cell.execution_count = count
        cell.outputs = outputs
        for output in outputs:
            if output.output_type == "execute_result":
                output.execution_count = count
    nbformat.validate(notebook)
    cache = get_cache(str(folder or cache_dir()))
    record = cache.cache_notebook_bundle(
        CacheBundleIn(
            notebook, str(run.path.resolve()), data={"execution_seconds": run.seconds, FINGERPRINT_KEY: prints}
        ),
        check_validity=True,
        overwrite=True,
    )
    return record.pk


def prune_stale(prints: dict[str, str], folder: Path | None = None) -> list[str]:
    """Remove cached notebooks whose fingerprint differs from ``prints``; return their uris.

    Notebooks cached by the book build itself (no fingerprint) are removed as well: only
    what ran under a known fingerprint is trusted.
    """
    folder = folder or cache_dir()
    if not folder.exists():
        return []
    from jupyter_cache import get_cache

    cache = get_cache(str(folder))
    removed = []
    for record in cache.list_cache_records():
        if (record.data or {}).get(FINGERPRINT_KEY) != prints:
            removed.append(record.uri)
            cache.remove_cache(record.pk)
    return removed


def cached_uris(prints: dict[str, str], folder: Path | None = None) -> dict[str, float]:
    """Notebook paths cached under ``prints``, with their execution time in seconds."""
    folder = folder or cache_dir()
    if not folder.exists():
        return {}
    from jupyter_cache import get_cache

    return {
        record.uri: float(record.data.get("execution_seconds") or 0.0)
        for record in get_cache(str(folder)).list_cache_records()
        if (record.data or {}).get(FINGERPRINT_KEY) == prints
    }


def stamp_unmarked(prints: dict[str, str], folder: Path | None = None) -> int:
    """Give ``prints`` to cached notebooks that have no fingerprint; return how many.

    Called when a book build ends: after :func:`prune_stale` at its start, a notebook
    without a fingerprint can only have been executed (and cached) by this build.
    """
    folder = folder or cache_dir()
    if not folder.exists():
        return 0
    from jupyter_cache import get_cache
    from jupyter_cache.cache.db import NbCacheRecord, session_context

    cache = get_cache(str(folder))
    stamped = 0
    with session_context(cache.db) as session:
        for record in session.query(NbCacheRecord).all():
            data = dict(record.data or {})
            if FINGERPRINT_KEY not in data:
                data[FINGERPRINT_KEY] = prints
                record.data = data
                stamped += 1
        session.commit()
    return stamped
