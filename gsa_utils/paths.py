"""Where the book keeps data and results: one rule for both.

A folder is given by an environment variable when it is set, else lives in the
repository checkout (anchored to the repository, not the working directory, because
notebooks run inside ``notebooks/``), else in the working directory.
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["repo_root", "repo_folder"]


def repo_root() -> Path | None:
    """The checkout this package lives in, or ``None`` when it is installed elsewhere."""
    repo = Path(__file__).resolve().parents[1]
    return repo if (repo / "pyproject.toml").exists() and (repo / "gsa_utils").is_dir() else None


def repo_folder(env_var: str, name: str) -> Path:
    """``$env_var`` when set, else ``<repo>/name`` in a checkout, else ``./name``."""
    env = os.environ.get(env_var, "").strip()
    if env:
        return Path(env).expanduser()
    return (repo_root() or Path.cwd()) / name
