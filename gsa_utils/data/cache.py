"""A small on-disk cache for preprocessed real datasets.

Introduced in chapter 1 (``01_structured_images``). Decoding 516 fundus photographs of
4288 x 2848 pixels takes about a minute; the result (516 x 224 x 224 x 3 bytes) takes
a few milliseconds to read back. The loaders in :mod:`gsa_utils.data` therefore
preprocess once and store the arrays in a cache folder:

* the folder is ``$GSA_CACHE_DIR`` when that variable is set, else ``~/.cache/gsa_utils``;
  every loader also takes ``cache_dir=`` (a path, or ``False`` to switch caching off);
* the key is a SHA-256 of the source files (name, size and the SHA-256 of the bytes of
  each, in order) and of the preprocessing settings, so changing any source file's content,
  also when its size and modification time are kept (``cp -p``, ``rsync -a``, ``tar x``), or a
  setting such as ``image_size``, makes a new entry; moving the folder does not;
* entries are plain ``.npz`` files (no pickle) written with
  :func:`gsa_utils.files.write_atomic`, so an interrupted run never leaves a half-written
  entry behind;
* an unreadable entry is ignored (with a warning) and rebuilt.

What is cached is the deterministic, expensive part (decode, crop, resize, flip) as
``uint8`` where possible; standardisation and the train/test split are cheap and are
applied after reading, so they are not part of the key.
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

__all__ = [
    "CACHE_ENV",
    "CACHE_VERSION",
    "default_cache_dir",
    "resolve_cache_dir",
    "cache_key",
    "load_arrays",
    "save_arrays",
    "cached_arrays",
    "clear_cache",
]

#: Environment variable that overrides the default cache folder.
CACHE_ENV = "GSA_CACHE_DIR"
#: Bumped whenever the layout or the key of cached entries changes, so old entries are not reused.
CACHE_VERSION = 2


def default_cache_dir() -> Path:
    """``$GSA_CACHE_DIR`` if set, else ``~/.cache/gsa_utils`` (not created here).

    Introduced in chapter 1 (``01_structured_images``).
    """
    env = os.environ.get(CACHE_ENV, "").strip()
    return Path(env).expanduser() if env else Path("~/.cache/gsa_utils").expanduser()


def resolve_cache_dir(cache_dir: str | os.PathLike | bool | None) -> Path | None:
    """Turn a loader's ``cache_dir`` argument into a folder, or ``None`` (no caching).

    ``None`` or ``True`` -> :func:`default_cache_dir`; ``False`` -> caching off;
    anything else is used as a path.

    Introduced in chapter 1 (``01_structured_images``).
    """
    if cache_dir is False:
        return None
    if cache_dir is None or cache_dir is True:
        return default_cache_dir()
    return Path(cache_dir).expanduser()


def _fingerprint(path: Path) -> list:
    return [path.name, int(path.stat().st_size), file_sha256(path)]


def cache_key(dataset: str, files: Sequence[str | os.PathLike], settings: Mapping) -> str:
    """SHA-256 (first 24 hex digits) of the source files' names and contents and of the settings.

    Every file is read and hashed (about 1 GB/s), so a file rewritten with its old size and
    modification time still gets a new key.

    Parameters
    ----------
    dataset
        Loader name, e.g. ``"idrid"``.
    files
        Source files, in the order they are processed (the order matters: it is the
        order of the cached stack).
    settings
        JSON-serialisable preprocessing settings (image size, crop, flips, ...).

    Introduced in chapter 1 (``01_structured_images``).
    """
    h = hashlib.sha256()
    header = {"dataset": dataset, "version": CACHE_VERSION, "settings": settings}
    h.update(json.dumps(header, sort_keys=True, default=str).encode())
    for f in files:
        h.update(json.dumps(_fingerprint(Path(f))).encode())
        h.update(b"\n")
    return h.hexdigest()[:24]


def load_arrays(path: str | os.PathLike) -> dict[str, np.ndarray] | None:
    """Read a cache entry; ``None`` (with a warning) if it is missing keys or unreadable.

    Introduced in chapter 1 (``01_structured_images``).
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except Exception as exc:  # corrupt entry: rebuild rather than fail
        warnings.warn(f"ignoring unreadable cache entry {path} ({exc}); it will be rebuilt", stacklevel=2)
        return None


def save_arrays(path: str | os.PathLike, arrays: Mapping[str, np.ndarray]) -> Path:
    """Write ``arrays`` to ``path`` (``.npz``) atomically, with :func:`gsa_utils.files.write_atomic`.

    Introduced in chapter 1 (``01_structured_images``).
    """
    buffer = io.BytesIO()
    np.savez(buffer, **{k: np.asarray(v) for k, v in arrays.items()})
    write_atomic(Path(path), buffer.getvalue())
    return Path(path)


def cached_arrays(
    dataset: str,
    files: Sequence[str | os.PathLike],
    settings: Mapping,
    compute: Callable[[], Mapping[str, np.ndarray]],
    cache_dir: str | os.PathLike | bool | None = None,
) -> tuple[dict[str, np.ndarray], dict]:
    """Return ``compute()``'s arrays, from the cache when an entry for these files and settings exists.

    Parameters
    ----------
    dataset, files, settings
        See :func:`cache_key`.
    compute
        Zero-argument function doing the expensive work; called only on a cache miss.
    cache_dir
        See :func:`resolve_cache_dir`.

    Returns
    -------
    arrays, info
        ``info`` has ``cache_file`` (str or ``None``), ``cache_hit`` (bool) and ``cache_key``
        (the key of these files and settings, also when caching is off: a cheap identity of
        the source data, see :func:`gsa_utils.data.fingerprint.data_fingerprint`).

    Introduced in chapter 1 (``01_structured_images``).
    """
    folder = resolve_cache_dir(cache_dir)
    key = cache_key(dataset, files, settings)
    if folder is None:
        return dict(compute()), {"cache_file": None, "cache_hit": False, "cache_key": key}
    entry = folder / f"{dataset}-{key}.npz"
    arrays = load_arrays(entry)
    if arrays is not None:
        return arrays, {"cache_file": str(entry), "cache_hit": True, "cache_key": key}
    arrays = dict(compute())
    try:
        save_arrays(entry, arrays)
    except OSError as exc:  # read-only or full disk: still return the data
        warnings.warn(f"could not write cache entry {entry} ({exc}); continuing without cache", stacklevel=2)
        return arrays, {"cache_file": None, "cache_hit": False, "cache_key": key}
    return arrays, {"cache_file": str(entry), "cache_hit": False, "cache_key": key}


def clear_cache(dataset: str | None = None, cache_dir: str | os.PathLike | bool | None = None) -> int:
    """Delete cache entries (all, or those of one loader); returns how many were removed.

    Introduced in chapter 1 (``01_structured_images``).
    """
    folder = resolve_cache_dir(cache_dir)
    if folder is None or not folder.is_dir():
        return 0
    pattern = f"{dataset}-*.npz" if dataset else "*.npz"
    n = 0
    for p in folder.glob(pattern):
        p.unlink()
        n += 1
    return n
