"""Where the book keeps data and results: one rule for both.

A folder is given by an environment variable (``GSA_DATA_DIR``, ``GSA_RESULTS_DIR``), else lives in
the repository checkout (``data/``, ``results/``), else in the working directory; paths are absolute.
What the chapters print names these folders, not the machine's paths (:func:`shown_path`).
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

#: Environment variable that overrides the default data folder.
DATA_DIR_ENV = "GSA_DATA_DIR"
#: Environment variable that moves the default results folder.
RESULTS_DIR_ENV = "GSA_RESULTS_DIR"


def repo_root() -> Path | None:
    """The checkout this package lives in, or ``None`` when it is installed elsewhere."""
    repo = Path(__file__).resolve().parents[1]
    return repo if (repo / "pyproject.toml").exists() and (repo / "gsa_utils").is_dir() else None


def repo_folder(env_var: str, name: str) -> Path:
    """``$env_var`` when set, else ``<repo>/name`` in a checkout, else ``./name`` (absolute)."""
    env = os.environ.get(env_var, "").strip()
    if env:
        return Path(os.path.abspath(Path(env).expanduser()))
    return Path(os.path.abspath((repo_root() or Path.cwd()) / name))


def data_dir() -> Path:
    """The data folder: ``$GSA_DATA_DIR``, else ``<repo>/data``, else ``./data`` (absolute)."""
    return repo_folder(DATA_DIR_ENV, "data")


def data_dir_rule() -> str:
    """Why :func:`data_dir` is where it is, in words, for messages."""
    if os.environ.get(DATA_DIR_ENV, "").strip():
        return f"${DATA_DIR_ENV}"
    if repo_root() is not None:
        return f"the repository's data folder (${DATA_DIR_ENV} is not set)"
    return f"./data in the working directory (${DATA_DIR_ENV} is not set)"


def _shown_folders() -> list[tuple[Path, str]]:
    """(folder, label) pairs for :func:`shown_path`, the most specific (longest) first."""
    folders = [
        (repo_folder(env, name), f"${env}" if os.environ.get(env, "").strip() else name)
        for env, name in ((DATA_DIR_ENV, "data"), (RESULTS_DIR_ENV, "results"))
    ]
    repo = repo_root()
    if repo is not None:
        folders.append((repo, "."))
    folders += [(Path(os.path.abspath(tempfile.gettempdir())), "<tmp>"), (Path.home(), "~")]
    return sorted(folders, key=lambda pair: len(str(pair[0])), reverse=True)


def shown_path(path: str | os.PathLike) -> str:
    """``path`` as a page may print it: from ``$GSA_DATA_DIR`` (or ``data``), ``results``, the repository,
    ``<tmp>`` or ``~``, whichever holds it most closely; any other path as it is."""
    target = Path(os.path.abspath(Path(path).expanduser()))
    for folder, label in _shown_folders():
        if target == folder or folder in target.parents:
            relative = target.relative_to(folder).as_posix()
            if label == ".":
                return relative
            return label if relative == "." else f"{label}/{relative}"
    return str(target)


def shown_text(text: str) -> str:
    """``text`` (a message, say) with the paths of those folders written as :func:`shown_path` does."""
    for folder, label in _shown_folders():
        prefix = re.escape(str(folder))
        if label == ".":
            text = re.sub(prefix + "/", "", text)
            text = re.sub(prefix + r"(?![\w.-])", ".", text)
        else:
            text = re.sub(prefix + r"(?![\w.-])", lambda _, label=label: label, text)
    return text
