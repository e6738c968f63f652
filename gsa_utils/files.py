"""Atomic file writes: a file is either its old content or its new one, never half written."""
from __future__ import annotations

import hashlib
import json
import os
import uuid
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["write_atomic", "write_json", "move_aside", "file_sha256"]


def file_sha256(path: "str | os.PathLike") -> str:
    """SHA-256 of a file's bytes (read in 1 MiB chunks)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, tuple):
        return list(o)
    return str(o)


def write_atomic(path: Path, data: bytes, previous: Path | None = None) -> None:
    """Write ``data`` to a unique temp file next to ``path``, then rename it into place.

    With ``previous``, a file already at ``path`` is first renamed to ``previous`` (so a
    checkpoint keeps the one before it).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if previous is not None and path.exists():
            os.replace(path, previous)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_json(path: Path, obj: Any) -> None:
    write_atomic(path, json.dumps(obj, indent=1, default=json_default).encode())



def move_aside(path: Path, suffix: str = ".corrupt") -> Path:
    """Rename ``path`` to ``<name><suffix>`` (``-2``, ... appended when taken); return the new path."""
    path = Path(path)
    target = path.with_name(path.name + suffix)
    n = 2
    while target.exists():
        target = path.with_name(f"{path.name}{suffix}-{n}")
        n += 1
    os.replace(path, target)
    return target
