"""File locks that let many processes share one results folder without training a run twice.

A run is claimed with a lock file created atomically (``O_CREAT | O_EXCL``), refreshed after
every epoch; a lock not refreshed for ``stale_after`` seconds, or whose process on this
machine is gone, counts as left by a crashed process. A claim may name its ``owner`` (a Ray task
id, which stays the same when Ray retries the task): a lock left by the same owner is taken over
at once, whichever machine the earlier attempt ran on.
"""
from __future__ import annotations

import json
import os
import socket
import time
import uuid
from pathlib import Path

#: Seconds after which a lock that was not refreshed counts as left by a crashed process.
DEFAULT_STALE_AFTER = 3 * 3600.0
LOCK_FILE = "lock"


class LockLost(RuntimeError):
    """Another process took over this run's lock (ours had gone stale)."""


def _lock_payload(token: str, owner: str | None = None) -> str:
    return json.dumps({"token": token, "host": socket.gethostname(), "pid": os.getpid(), "started": time.time(),
                       "owner": owner})


def _left_by(path: Path, owner: str | None) -> bool:
    """True when ``owner`` (not ``None``) wrote the lock: an earlier attempt of the same task, now dead."""
    if owner is None:
        return False
    try:
        return json.loads(path.read_text()).get("owner") == owner
    except (FileNotFoundError, ValueError, AttributeError):
        return False


def lock_age(path: Path) -> float | None:
    try:
        return time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return None


def _holder_is_gone(path: Path) -> bool:
    """True when the lock was written on this machine by a process that no longer runs (killed kernel)."""
    try:
        info = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return False
    if info.get("host") != socket.gethostname() or not isinstance(info.get("pid"), int):
        return False
    try:
        os.kill(info["pid"], 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _remove_if_stale(path: Path, stale_after: float) -> bool:
    """Move a stale lock aside and delete it; put it back if it turned out to be fresh.

    A lock is stale when it was not refreshed for ``stale_after`` seconds, or at once when
    its process, on this machine, is gone.
    """
    age = lock_age(path)
    if age is None:
        return True
    gone = _holder_is_gone(path)
    if age <= stale_after and not gone:
        return False
    aside = path.with_name(f"{path.name}.stale.{uuid.uuid4().hex[:8]}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return True
    moved_age = lock_age(aside)
    if moved_age is not None and moved_age <= stale_after and not (gone and _holder_is_gone(aside)):
        # someone refreshed or re-created it meanwhile
        try:
            os.link(aside, path)
        except FileExistsError:
            pass
        aside.unlink(missing_ok=True)
        return False
    aside.unlink(missing_ok=True)
    return True


def claim(lock: Path, stale_after: float, owner: str | None = None) -> str | None:
    """Create ``lock`` exclusively; returns our token, or ``None`` when another process holds it.

    ``owner``: who claims, when it outlives a process (a Ray task id: Ray runs a retry only
    after the earlier attempt died); a lock written by the same owner is taken over.
    """
    token = uuid.uuid4().hex
    for attempt in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if attempt == 0 and _left_by(lock, owner):
                lock.unlink(missing_ok=True)
                continue
            if attempt == 0 and _remove_if_stale(lock, stale_after):
                continue
            return None
        with os.fdopen(fd, "w") as f:
            f.write(_lock_payload(token, owner))
        return token
    return None


def holds(lock: Path, token: str) -> bool:
    try:
        return json.loads(lock.read_text()).get("token") == token
    except (FileNotFoundError, ValueError):
        return False


def release(lock: Path, token: str) -> None:
    if holds(lock, token):
        lock.unlink(missing_ok=True)

