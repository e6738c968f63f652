"""A small on-disk cache for preprocessed real datasets.

Introduced in chapter 1 (``01_structured_images``). Decoding the 516 IDRiD photographs takes
about a minute; reading the preprocessed stack back takes milliseconds. Entries are plain
``.npz`` files in ``$GSA_CACHE_DIR`` (else ``~/.cache/gsa_utils``), keyed by the content of
every source file and the preprocessing settings, and written atomically; an unreadable entry
is rebuilt. Standardisation and the split are cheap and applied after reading.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from ..files import file_sha256, write_atomic

#: Environment variable that overrides the default cache folder.
CACHE_ENV = "GSA_CACHE_DIR"
#: Bumped whenever the layout or the key of cached entries changes, so old entries are not reused.
CACHE_VERSION = 2


def resolve_cache_dir(cache_dir: str | os.PathLike | bool | None) -> Path | None:
    """A loader's ``cache_dir`` as a folder: ``None``/``True`` the default, ``False`` no caching (``None``).

    Introduced in chapter 1 (``01_structured_images``).
    """
    if cache_dir is False:
        return None
    if cache_dir is None or cache_dir is True:
        env = os.environ.get(CACHE_ENV, "").strip()
        return Path(env or "~/.cache/gsa_utils").expanduser()
    return Path(cache_dir).expanduser()


def cache_key(dataset: str, files: Sequence[str | os.PathLike], settings: Mapping) -> str:
    """SHA-256 (24 hex digits) of the loader's name, the files' names and contents, in order, and the settings.

    Introduced in chapter 1 (``01_structured_images``).
    """
    h = hashlib.sha256()
    header = {"dataset": dataset, "version": CACHE_VERSION, "settings": settings}
    h.update(json.dumps(header, sort_keys=True, default=str).encode())
    for f in map(Path, files):
        h.update(json.dumps([f.name, int(f.stat().st_size), file_sha256(f)]).encode())
        h.update(b"\n")
    return h.hexdigest()[:24]


def _read_entry(path: Path) -> dict[str, np.ndarray] | None:
    """A cache entry's arrays; ``None`` (with a warning when it is unreadable) otherwise."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except Exception as exc:  # corrupt entry: rebuild rather than fail
        warnings.warn(f"ignoring unreadable cache entry {path} ({exc}); it will be rebuilt", stacklevel=3)
        return None


def cached_arrays(
    dataset: str,
    files: Sequence[str | os.PathLike],
    settings: Mapping,
    compute: Callable[[], Mapping[str, np.ndarray]],
    cache_dir: str | os.PathLike | bool | None = None,
) -> tuple[dict[str, np.ndarray], dict]:
    """``compute()``'s arrays, from the cache when an entry for these files and settings exists.

    Introduced in chapter 1 (``01_structured_images``).

    Returns
    -------
    arrays, info
        ``info`` has ``cache_file`` (or ``None``), ``cache_hit`` and ``cache_key`` (also when
        caching is off: see :func:`gsa_utils.data.fingerprint.data_fingerprint`).
    """
    folder = resolve_cache_dir(cache_dir)
    key = cache_key(dataset, files, settings)
    if folder is None:
        return dict(compute()), {"cache_file": None, "cache_hit": False, "cache_key": key}
    entry = folder / f"{dataset}-{key}.npz"
    arrays = _read_entry(entry)
    if arrays is not None:
        return arrays, {"cache_file": str(entry), "cache_hit": True, "cache_key": key}
    arrays = dict(compute())
    buffer = io.BytesIO()
    np.savez(buffer, **{k: np.asarray(v) for k, v in arrays.items()})
    try:
        write_atomic(entry, buffer.getvalue())
    except OSError as exc:  # read-only or full disk: still return the data
        warnings.warn(f"could not write cache entry {entry} ({exc}); continuing without cache", stacklevel=2)
        return arrays, {"cache_file": None, "cache_hit": False, "cache_key": key}
    return arrays, {"cache_file": str(entry), "cache_hit": False, "cache_key": key}
