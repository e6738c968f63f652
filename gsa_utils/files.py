"""Atomic file writes: a file is either its old content or its new one, never half written."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np


def file_sha256(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """Hex digest (SHA-256, or another :mod:`hashlib` ``algorithm``) of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.new(algorithm)
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


#: Seconds after which a temporary file of :func:`write_atomic` whose writer cannot be checked (another
#: machine, or a name without a process id) counts as orphaned.
ORPHAN_AFTER = 3 * 3600.0


def _temp_name(path: Path) -> Path:
    """``.<name>.<host>.<pid>.<random>.tmp``: who writes it, so a temp file of a killed writer can be recognised."""
    host = socket.gethostname().replace(".", "-") or "host"
    return path.with_name(f".{path.name}.{host}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")


def write_atomic(path: Path, data: bytes, previous: Path | None = None) -> None:
    """Write ``data`` to a unique temp file next to ``path``, then rename it into place.

    With ``previous``, a file already at ``path`` is first renamed to ``previous`` (so a
    checkpoint keeps the one before it). An :class:`OSError` (full disk, read-only folder)
    names ``path``. The temp file's name says which process writes it
    (:func:`orphaned_temp_files` finds those of killed writers).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_name(path)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if previous is not None and path.exists():
            os.replace(path, previous)
        os.replace(tmp, path)
    except OSError as err:
        if err.filename in (None, str(tmp), tmp):  # say which file could not be written, not its temp name
            raise OSError(err.errno, err.strerror or str(err), str(path)) from err
        raise
    finally:
        if tmp.exists():
            tmp.unlink()


def orphaned_temp_files(folder: Path, older_than: float = ORPHAN_AFTER) -> list[Path]:
    """Temporary files of :func:`write_atomic` in ``folder`` whose writer is gone.

    A writer on this machine is gone when its process no longer runs; a temp file from another
    machine, or without a process id in its name, counts as orphaned once it is ``older_than``
    seconds old.
    """
    out: list[Path] = []
    host = socket.gethostname().replace(".", "-") or "host"
    try:
        candidates = sorted(p for p in Path(folder).iterdir() if p.name.startswith(".") and p.name.endswith(".tmp"))
    except OSError:
        return out
    for p in candidates:
        parts = p.name[: -len(".tmp")].split(".")
        try:
            age = time.time() - p.stat().st_mtime
        except OSError:
            continue
        if len(parts) >= 4 and parts[-3] == host and parts[-2].isdigit():
            if not _process_runs(int(parts[-2])):
                out.append(p)
        elif age > older_than:
            out.append(p)
    return out


def _process_runs(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
