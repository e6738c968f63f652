"""File locks that let many processes share one results folder without training a run twice.

A run is claimed with a lock file created atomically (``O_CREAT | O_EXCL``) and refreshed after every
epoch; :func:`stale_reason` is the one rule for a lock left by a crashed process.
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
#: Seconds an empty (or unreadable) lock may exist: the time between creating and writing it.
EMPTY_LOCK_GRACE = 10.0
LOCK_FILE = "lock"


class LockLost(RuntimeError):
    """Another process took over this run's lock (ours had gone stale)."""


def _lock_payload(token: str, owner: str | None = None) -> str:
    return json.dumps(
        {"token": token, "host": socket.gethostname(), "pid": os.getpid(), "started": time.time(), "owner": owner}
    )


def _lock_info(path: Path) -> dict | None:
    """The lock's contents, or ``None`` when it is absent, unreadable or not a JSON object."""
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def _left_by(path: Path, owner: str | None) -> bool:
    """True when ``owner`` (not ``None``) wrote the lock: an earlier attempt of the same task, now dead."""
    return owner is not None and (_lock_info(path) or {}).get("owner") == owner


def lock_age(path: Path) -> float | None:
    try:
        return time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return None


def _holder_is_gone(path: Path) -> bool:
    """True when the lock was written on this machine by a process that no longer runs (killed kernel)."""
    info = _lock_info(path) or {}
    if info.get("host") != socket.gethostname() or not isinstance(info.get("pid"), int):
        return False
    try:
        os.kill(info["pid"], 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _is_empty(path: Path) -> bool:
    return path.exists() and not (_lock_info(path) or {}).get("token")


def stale_reason(path: Path, stale_after: float) -> str | None:
    """Why the lock at ``path`` counts as left by a crashed process, or ``None`` when it is live (or absent)."""
    age = lock_age(path)
    if age is None:
        return None
    if _holder_is_gone(path):
        return "its process on this machine is gone"
    if age > stale_after:
        return f"not refreshed for {age:.0f} s (more than {stale_after:.0f} s)"
    if _is_empty(path) and age > EMPTY_LOCK_GRACE:
        return f"empty for {age:.0f} s (its process was killed while creating it)"
    return None


def _remove_if_stale(path: Path, stale_after: float) -> bool:
    """Move a stale lock (:func:`stale_reason`) aside and delete it; put it back if it turned out to be fresh."""
    if lock_age(path) is None:
        return True
    if stale_reason(path, stale_after) is None:
        return False
    aside = path.with_name(f"{path.name}.stale.{uuid.uuid4().hex[:8]}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return True
    if lock_age(aside) is not None and stale_reason(aside, stale_after) is None:
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

    ``owner``: who claims, when it outlives a process (a Ray task id, the same in Ray's retries, which
    run only after the earlier attempt died): a lock written by the same owner is taken over.
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
    return (_lock_info(lock) or {}).get("token") == token


def release(lock: Path, token: str) -> None:
    if holds(lock, token):
        lock.unlink(missing_ok=True)
