"""Training checkpoints that hold only tensors and plain data, verified by a checksum.

A file is a header (:data:`CHECKPOINT_MAGIC`, ``sha256 <hex>``, ``bytes <n>``) and the bytes of
:func:`torch.save`. It is checked before anything is unpickled and loaded with ``weights_only=True``,
so a damaged or foreign file raises :class:`CheckpointError` and runs no code.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .files import move_aside, write_atomic

#: First line of every checkpoint file (the number is the format version).
CHECKPOINT_MAGIC = b"GSA-CHECKPOINT 1\n"
#: The lines after the first: the payload's SHA-256 and its length.
_HEADER = re.compile(rb"sha256 ([0-9a-f]{64})\nbytes (\d+)\n")


class CheckpointError(RuntimeError):
    """A checkpoint file is unusable; ``path`` names it and ``fault`` says what is wrong."""

    def __init__(self, path: str | os.PathLike, fault: str) -> None:
        self.path = Path(path)
        self.fault = fault
        super().__init__(f"checkpoint {self.path.absolute()}: {fault}")


class CheckpointRecoveryWarning(UserWarning):
    """A bad checkpoint was moved aside and the run resumes from an older state or from scratch."""


def previous_path(path: str | os.PathLike) -> Path:
    """Where :func:`save_checkpoint` keeps the checkpoint it replaced: ``<name>.prev``."""
    path = Path(path)
    return path.with_name(path.name + ".prev")


def to_plain(obj: Any, where: str = "state") -> Any:
    """``obj`` as tensors and plain data (numpy as numbers and lists, paths as strings), or TypeError naming the key."""
    if obj is None or isinstance(obj, (bool, int, float, str, torch.Tensor)):
        return obj
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, (str, int)) or isinstance(k, bool):
                raise TypeError(f"{where}: key {k!r} is a {type(k).__name__}; checkpoints take str or int keys")
            out[k] = to_plain(v, f"{where}[{k!r}]")
        return out
    if isinstance(obj, (list, tuple)):
        items = [to_plain(v, f"{where}[{i}]") for i, v in enumerate(obj)]
        return items if isinstance(obj, list) else tuple(items)
    raise TypeError(
        f"{where} is a {type(obj).__module__}.{type(obj).__qualname__}; checkpoints hold only "
        f"tensors and plain data (dict, list, tuple, str, int, float, bool, None)"
    )


def save_checkpoint(path: str | os.PathLike, state: dict, keep_previous: bool = True) -> Path:
    """Write ``state`` (tensors and plain data) with a SHA-256 checksum, atomically.

    The file it replaces is kept as ``<name>.prev`` unless ``keep_previous`` is false.
    """
    path = Path(path)
    buf = io.BytesIO()
    torch.save(to_plain(state), buf)
    payload = buf.getvalue()
    header = CHECKPOINT_MAGIC + f"sha256 {hashlib.sha256(payload).hexdigest()}\nbytes {len(payload)}\n".encode()
    write_atomic(path, header + payload, previous=previous_path(path))
    if not keep_previous:
        previous_path(path).unlink(missing_ok=True)
    return path


def _split_header(path: Path, data: bytes) -> bytes:
    """The verified payload of a checkpoint file's bytes, or CheckpointError."""
    if not data:
        raise CheckpointError(path, "file is empty (0 bytes)")
    if not data.startswith(CHECKPOINT_MAGIC):
        if data[:2] == b"PK" or data[:1] == b"\x80":
            raise CheckpointError(
                path,
                "no checksum header: written by plain torch.save (an older gsa_utils or "
                "another program), so its integrity cannot be checked",
            )
        raise CheckpointError(path, "not a gsa_utils checkpoint (unknown header)")
    header = _HEADER.match(data, len(CHECKPOINT_MAGIC))
    if header is None:
        raise CheckpointError(path, f"damaged header (unreadable or truncated, {len(data)} bytes)")
    digest, expected_len = header.group(1).decode(), int(header.group(2))
    payload = data[header.end() :]
    if len(payload) < expected_len:
        raise CheckpointError(path, f"truncated: {len(payload)} of {expected_len} payload bytes present")
    if len(payload) > expected_len:
        raise CheckpointError(path, f"{len(payload) - expected_len} unexpected bytes after the payload")
    got = hashlib.sha256(payload).hexdigest()
    if got != digest:
        raise CheckpointError(
            path, f"checksum mismatch (sha256 {got[:12]}... but the header says {digest[:12]}...): the file is corrupt"
        )
    return payload


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device | None = None) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint`, after verifying its checksum; else CheckpointError."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(path, "file not found") from None
    except OSError as exc:
        raise CheckpointError(path, f"cannot read ({exc})") from None
    payload = _split_header(path, data)
    try:
        state = torch.load(io.BytesIO(payload), map_location=map_location, weights_only=True)
    except Exception as exc:  # pickle.UnpicklingError for forbidden globals, RuntimeError for a bad zip
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(path, f"payload refused by torch.load(weights_only=True): {first}") from None
    if not isinstance(state, dict):
        raise CheckpointError(path, f"payload is a {type(state).__name__}, expected a dict")
    return state


def load_or_restart(path: str | os.PathLike, map_location: str | torch.device | None = None) -> dict | None:
    """The state to resume from, or ``None`` to start from scratch.

    A bad checkpoint is moved aside to ``<name>.corrupt`` and ``<name>.prev`` is tried the same way;
    a :class:`CheckpointRecoveryWarning` names each bad file and says where the run resumes from.
    """
    path = Path(path)
    prev = previous_path(path)
    faults: list[str] = []
    for candidate in (path, prev):
        if not candidate.exists():
            continue
        try:
            state = load_checkpoint(candidate, map_location)
        except CheckpointError as exc:
            moved = move_aside(candidate)
            faults.append(f"{exc} (moved to {moved.name})")
            continue
        if faults:
            warnings.warn(
                f"{'; '.join(faults)}; resuming from the previous checkpoint {candidate.absolute()}",
                CheckpointRecoveryWarning,
                stacklevel=2,
            )
        return state
    if faults:
        warnings.warn(
            f"{'; '.join(faults)}; no good checkpoint left: the run restarts from scratch",
            CheckpointRecoveryWarning,
            stacklevel=2,
        )
    return None


def remove_checkpoint(path: str | os.PathLike) -> None:
    """Delete a finished run's checkpoint and its ``<name>.prev`` (``.corrupt`` files are kept)."""
    path = Path(path)
    path.unlink(missing_ok=True)
    previous_path(path).unlink(missing_ok=True)
