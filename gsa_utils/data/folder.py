"""Your own structured image set: a folder per class, or a CSV of ``path,label``.

Introduced in chapter 1 (``01_structured_images``). Global spatial attention assumes the
images are *structured*: equally sized and aligned, so that pixel (i, j) means the same
place in every image (fundus photographs centred on the same landmarks, OCT thickness
maps on the same grid, ...). :func:`load_folder` therefore insists that all images share
one size unless you explicitly ask it to resize (``resize=True``); ``image_size`` resizes a
set whose images share one size, but does not make a mixed set acceptable.

Two layouts::

    root/                          root/
        glaucoma/img001.png            images/a.png
        glaucoma/img002.png            images/b.npy
        normal/img003.png              labels.csv   ->  path,label
        ...                                             images/a.png,glaucoma
                                                        images/b.npy,normal

Optional fixed split: a CSV (``path,split``) or a text file (``path split`` per line)
with ``train``/``test`` for every image; otherwise a seeded stratified split.
Supported files: whatever OpenCV or Pillow decodes (png, jpg/jpeg, tif/tiff, bmp, pgm/ppm,
gif, webp, ...; 8 or 16 bit, grey or colour; files without an extension too, when they
decode: one that begins like an image but does not decode is an error, as a damaged
``.jpg`` is), DICOM through the optional ``pydicom`` (``pip install 'gsa-utils[dicom]'``) and
``.npy`` arrays (H x W or H x W x C, e.g. OCT thickness maps in micrometres).

Files whose names mark them as set aside (ending in ``.bad``, ``.bak``, ``.orig``, ``~``,
``.tmp`` or ``.part``, e.g. the corrupt originals Extended Yale B ships as ``*.pgm.bad``) are
never read: a class folder skips them with one warning and lists them in
``meta["ignored_files"]``; a CSV row naming one is an error. A ``.npy`` array or DICOM image
larger than Pillow's decompression-bomb limit is refused from its header
(:func:`~gsa_utils.data.formats.max_image_pixels`).

The same file may not count twice: paths are compared after resolving ``..`` and
symbolic links, and files with identical bytes under two names, or with other bytes that
decode to the same pixels (one picture saved twice, as PNG and BMP say), are an error (or
a warning, with ``duplicates="warn"``), since one image in both the training and the test
set would inflate the test accuracy.
"""

from __future__ import annotations

import csv as _csv
import os
import warnings
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from ..files import file_sha256
from .base import DataError, StructuredDataset
from .cache import cached_arrays
from .formats import IMAGE_EXTENSIONS, SET_ASIDE_ENDINGS, is_dicom, is_image_file, is_set_aside
from .real import (
    as_size,
    is_hidden,
    make_real_dataset,
    peek_image,
    progress_bar,
    read_image,
    resize_image,
    stack_to_tensor,
    stratified_split,
    to_grey,
    to_rgb,
)

__all__ = ["load_folder"]


def _shorten(names: Sequence[str], n: int = 5) -> str:
    return ", ".join(names[:n]) + (f", ... ({len(names) - n} more)" if len(names) > n else "")


def _rel(p: Path, root: Path) -> str:
    try:
        return p.relative_to(root).as_posix()
    except ValueError:
        return p.as_posix()


def _check_duplicates(files: Sequence[Path], root: Path, lines: Sequence[int] | None, duplicates: str) -> None:
    """Refuse (or warn about) one file under two paths or byte-identical files under two names.

    Only files of equal size are hashed, so a folder without duplicates is read once per
    size collision at most.
    """

    def name(i: int) -> str:
        return _file_name(files, lines, i)

    found: list[str] = []
    first_of: dict[Path, int] = {}
    for i, f in enumerate(files):
        key = f.resolve()
        if key in first_of:  # symbolic links or '..' (the CSV scan catches these earlier, by line)
            found.append(f"{name(first_of[key])} and {name(i)} are the same file {key}")
        else:
            first_of[key] = i
    by_size: dict[int, list[int]] = defaultdict(list)
    for key, i in first_of.items():
        by_size[key.stat().st_size].append(i)
    for group in by_size.values():
        if len(group) < 2:
            continue
        by_digest: dict[str, int] = {}
        for i in sorted(group):
            d = file_sha256(files[i])
            if d in by_digest:
                found.append(f"{name(by_digest[d])} and {name(i)} are byte-identical")
            else:
                by_digest[d] = i
    _report_duplicates(found, root, duplicates)


def _report_duplicates(found: Sequence[str], root: Path, duplicates: str) -> None:
    """Raise (``duplicates="error"``) or warn about the duplicate pairs ``found``, if any."""
    if not found:
        return
    more = f" (and {len(found) - 3} more)" if len(found) > 3 else ""
    message = (
        f"folder {root.absolute()}: {'; '.join(found[:3])}{more}. The same image in two files "
        f"can land in both the training and the test set"
    )
    if duplicates == "error":
        raise DataError(message + "; remove the copies, or pass duplicates='warn' (--duplicates warn) to keep them")
    warnings.warn(message, stacklevel=4)


def _file_name(files: Sequence[Path], lines: Sequence[int] | None, i: int) -> str:
    return f"{files[i].absolute()}" + (f" (line {lines[i]})" if lines else "")


def pixel_digest(image: np.ndarray) -> np.ndarray:
    """SHA-256 (32 bytes, as uint8) of a decoded image's pixels, shape and dtype: equal for the same
    picture saved as PNG at two compression levels, or as PNG and BMP."""
    import hashlib

    image = np.ascontiguousarray(image)
    digest = hashlib.sha256(f"{image.shape}{image.dtype.str}".encode())
    digest.update(image.tobytes())
    return np.frombuffer(digest.digest(), dtype=np.uint8)


def _check_pixel_duplicates(
    digests: np.ndarray, files: Sequence[Path], root: Path, lines: Sequence[int] | None, duplicates: str
) -> None:
    """Refuse (or warn about) files with other bytes that decode to the same pixels.

    Byte-identical files were refused before decoding (:func:`_check_duplicates`); this catches
    the same image re-encoded, which would leak between training and test sets just the same.
    """
    first: dict[bytes, int] = {}
    found: list[str] = []
    for i, d in enumerate(digests):
        j = first.setdefault(bytes(d), i)
        if j != i:
            found.append(f"{_file_name(files, lines, j)} and {_file_name(files, lines, i)} decode to the same pixels")
    _report_duplicates(found, root, duplicates)


def _walk_files(folder: Path) -> list[Path]:
    """Every file under ``folder`` (sorted), or DataError naming a sub-folder that cannot be read."""

    def refuse(err: OSError) -> None:
        raise DataError(
            f"{Path(err.filename or folder).absolute()}: folder cannot be read "
            f"({err.strerror or type(err).__name__}); fix its permissions"
        )

    out: list[Path] = []
    for here, dirs, names in os.walk(folder, onerror=refuse):
        dirs.sort()
        out.extend(Path(here) / n for n in names)
    return sorted(out)


def _scan_class_folders(root: Path) -> tuple[list[Path], list[str], list[str], list[str]]:
    """Files, their label names, sorted class names and ignored (non-image or set-aside) files."""
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not is_hidden(p, root))
    if len(classes) < 2:
        raise DataError(
            f"{root}: expected one sub-folder per class (at least 2), found {classes}; "
            f"or pass csv= with columns path,label"
        )
    files: list[Path] = []
    labels: list[str] = []
    ignored: list[str] = []
    set_aside: list[str] = []
    for c in classes:
        found = 0
        for p in _walk_files(root / c):
            if not p.is_file() or is_hidden(p, root):
                continue
            if is_set_aside(p):
                set_aside.append(_rel(p, root))
                continue
            if not is_image_file(p):
                ignored.append(_rel(p, root))
                continue
            files.append(p)
            labels.append(c)
            found += 1
        if found == 0:
            raise DataError(
                f"{(root / c).absolute()}: class folder holds no images (no file that OpenCV, "
                f"Pillow or pydicom decodes, e.g. {', '.join(IMAGE_EXTENSIONS)})"
            )
    if set_aside:
        more = f" and {len(set_aside) - 3} more" if len(set_aside) > 3 else ""
        warnings.warn(
            f"folder {root}: skipped {len(set_aside)} file(s) whose names mark them as set aside "
            f"({', '.join(SET_ASIDE_ENDINGS)}): {', '.join(set_aside[:3])}{more}; listed in "
            f"meta['ignored_files']",
            stacklevel=3,
        )
    return files, labels, classes, ignored + set_aside


def _read_rows(path: Path, required: Sequence[str]) -> list[tuple[int, dict[str, str]]]:
    """CSV rows as dicts with normalised (lower-case, stripped) keys, with 1-based line numbers."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = list(_csv.reader(fh))
    except (OSError, UnicodeDecodeError, _csv.Error) as exc:
        raise DataError(f"{path}: cannot read CSV ({exc})") from None
    if not rows:
        raise DataError(f"{path}: file is empty (expected a header {','.join(required)})")
    header = [h.strip().lower() for h in rows[0]]
    twice = sorted({h for h in header if h and header.count(h) > 1})
    if twice:
        raise DataError(
            f"{path}: the header names column {twice[0]!r} twice (columns "
            f"{[i + 1 for i, h in enumerate(header) if h == twice[0]]}); keep one"
        )
    missing = [c for c in required if c not in header]
    if missing:
        raise DataError(f"{path}: header must contain columns {list(required)}, found {rows[0]}")
    out = []
    for lineno, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        out.append((lineno, {h: (row[i].strip() if i < len(row) else "") for i, h in enumerate(header)}))
    return out


def _scan_csv(root: Path, csv_path: Path) -> tuple[list[Path], list[str], list[int]]:
    files, labels, lines = [], [], []
    seen: dict[Path, tuple[int, str]] = {}
    for lineno, row in _read_rows(csv_path, ("path", "label")):
        rel, label = row["path"], row["label"]
        where = f"{csv_path}, line {lineno}"
        if not rel:
            raise DataError(f"{where}: empty path")
        if not label:
            raise DataError(f"{where}: empty label for {rel}")
        p = Path(rel).expanduser()
        p = p if p.is_absolute() else root / p
        if p.exists() and not p.is_file():
            raise DataError(f"{where}: {p.absolute()} is not a regular file (a folder, device or pipe)")
        if not p.is_file():
            raise DataError(f"{p.absolute()}: file listed in {csv_path.name} (line {lineno}) not found")
        if is_set_aside(p):
            raise DataError(
                f"{where}: {p.absolute()} has a name that marks it as set aside "
                f"({', '.join(SET_ASIDE_ENDINGS)}); remove the row, or rename the file if it is good"
            )
        if not is_image_file(p):
            raise DataError(
                f"{where}: {p.absolute()} is not an image OpenCV, Pillow or pydicom can read "
                f"(e.g. {', '.join(IMAGE_EXTENSIONS)})"
            )
        key = p.resolve()
        if key in seen:
            first_line, first_rel = seen[key]
            same = "listed twice" if first_rel == rel else f"is the same file as {first_rel!r}"
            raise DataError(f"{where}: {rel!r} {same} (line {first_line}; both are {key})")
        seen[key] = (lineno, rel)
        files.append(p)
        labels.append(label)
        lines.append(lineno)
    if not files:
        raise DataError(f"{csv_path}: no rows below the header")
    return files, labels, lines


def _encode_labels(
    labels: Sequence[str], class_names: Sequence[str] | None, source: str, lines: Sequence[int] | None
) -> tuple[np.ndarray, list[str]]:
    def where(i: int) -> str:
        return f"{source}, line {lines[i]}" if lines else source

    as_int = []
    for s in labels:
        try:
            as_int.append(int(s))
        except ValueError:
            as_int = None
            break
    if as_int is not None:
        for i, v in enumerate(as_int):
            if v < 0:
                raise DataError(f"{where(i)}: label {v} is negative")
        k = max(as_int) + 1
        present = sorted(set(as_int))
        if class_names is None and present != list(range(k)):
            warnings.warn(
                f"{source}: integer labels {present} leave classes of 0..{k - 1} empty; the labels are "
                f"mapped to their order ({', '.join(f'{v} -> {i}' for i, v in enumerate(present[:6]))}"
                f"{', ...' if len(present) > 6 else ''}) and the classes named {[str(v) for v in present]} "
                f"(write class names in the CSV to choose the classes yourself)",
                stacklevel=3,
            )
            order = {v: i for i, v in enumerate(present)}
            return np.array([order[v] for v in as_int], dtype=np.int64), [str(v) for v in present]
        names = list(class_names) if class_names is not None else [str(i) for i in range(k)]
        for i, v in enumerate(as_int):
            if v >= len(names):
                raise DataError(f"{where(i)}: label {v} is outside the {len(names)} classes {names}")
        return np.array(as_int, dtype=np.int64), names
    names = list(class_names) if class_names is not None else sorted(set(labels))
    index = {n: i for i, n in enumerate(names)}
    for i, s in enumerate(labels):
        if s not in index:
            raise DataError(f"{where(i)}: label {s!r} is not one of the classes {names}")
    return np.array([index[s] for s in labels], dtype=np.int64), names


def _read_split(split_file: Path, root: Path, files: Sequence[Path]) -> tuple[np.ndarray, np.ndarray]:
    if not split_file.is_file():
        raise DataError(f"split file not found: {split_file}")
    try:
        text = split_file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{split_file}: cannot read ({exc})") from None
    entries: dict[str, tuple[str, int]] = {}
    for lineno, line in enumerate(text.splitlines(), start=1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        parts = next(_csv.reader([s])) if "," in s else s.split()
        parts = [p.strip() for p in parts]
        if len(parts) < 2:
            raise DataError(f"{split_file}, line {lineno}: expected 'path,split', got {s!r}")
        path, split = parts[0], parts[1].lower()
        if lineno == 1 and path.lower() == "path" and split == "split":
            continue  # header
        if split not in ("train", "test"):
            raise DataError(f"{split_file}, line {lineno}: split must be 'train' or 'test', got {parts[1]!r}")
        p = Path(path).expanduser()
        key = (p if p.is_absolute() else root / p).resolve()
        if key in entries:
            raise DataError(f"{split_file}, line {lineno}: {path} is the same file as line {entries[key][1]} ({key})")
        entries[key] = (split, lineno)
    keys = [f.resolve() for f in files]
    known = set(keys)
    for key, (_, lineno) in entries.items():
        if key not in known:
            raise DataError(f"{split_file}, line {lineno}: {key} is not one of the dataset's images")
    for f, key in zip(files, keys):
        if key not in entries:
            raise DataError(f"{f}: image has no entry in split file {split_file}")
    is_test = np.array([entries[k][0] == "test" for k in keys])
    tr, te = np.flatnonzero(~is_test), np.flatnonzero(is_test)
    if len(tr) == 0 or len(te) == 0:
        raise DataError(f"{split_file}: both splits need images (train {len(tr)}, test {len(te)})")
    return tr, te


def _convert_channels(img: np.ndarray, channels: int | None, path: Path, is_npy: bool) -> np.ndarray:
    if not is_npy:
        img = to_rgb(img, path)
    if channels is None:
        return img
    c = 1 if img.ndim == 2 else img.shape[2]
    if channels == 1:
        if c == 1:
            return img if img.ndim == 2 else img[:, :, 0]
        if c == 3:
            return to_grey(img)
        raise DataError(f"{path}: has {c} channels; channels=1 needs grey or RGB (use channels=None)")
    if c == 3:
        return img
    if c == 1:
        g = img if img.ndim == 2 else img[:, :, 0]
        return np.repeat(g[:, :, None], 3, axis=2)
    raise DataError(f"{path}: has {c} channels; channels=3 needs grey or RGB (use channels=None)")


def _is_grey(img: np.ndarray) -> bool:
    """A single channel, or three equal ones (e.g. a grey GIF decoded through its palette)."""
    if img.ndim == 2 or img.shape[2] == 1:
        return True
    return img.shape[2] == 3 and bool((img[:, :, 0] == img[:, :, 1]).all() and (img[:, :, 1] == img[:, :, 2]).all())


def _auto_channels(images: list[np.ndarray], files: Sequence[Path]) -> list[np.ndarray]:
    """``channels="auto"``: grey when every image is grey, else as decoded when all agree, else grey and RGB
    images mixed as RGB (the grey ones replicated to 3 channels)."""
    if all(_is_grey(im) for im in images):
        return [im if im.ndim == 2 else im[:, :, 0] for im in images]
    counts = [1 if im.ndim == 2 else im.shape[2] for im in images]
    if len(set(counts)) == 1:
        return images
    odd = next((i for i, c in enumerate(counts) if c not in (1, 3)), None)
    if odd is not None:
        raise DataError(
            f"{files[odd]}: has {counts[odd]} channels; channels='auto' mixes only grey and RGB images "
            f"(pass channels=None to keep every file's channels when all agree)"
        )
    return [np.repeat(im.reshape(*im.shape[:2], 1), 3, axis=2) if c == 1 else im for im, c in zip(images, counts)]


def _as_float01(img: np.ndarray) -> np.ndarray:
    if img.dtype == np.uint8:
        return img.astype(np.float32) / 255.0
    if img.dtype == np.uint16:
        return img.astype(np.float32) / 65535.0
    return img.astype(np.float32)


def load_folder(
    root: str | os.PathLike,
    image_size: int | tuple[int, int] | None = None,
    resize: bool = False,
    test_fraction: float = 0.2,
    seed: int = 0,
    split_file: str | os.PathLike | None = None,
    csv: str | os.PathLike | None = None,
    channels: int | str | None = 3,
    standardize: bool | str = True,
    class_names: Sequence[str] | None = None,
    cache_dir: str | os.PathLike | bool | None = None,
    progress: bool = True,
    name: str | None = None,
    duplicates: str = "error",
) -> StructuredDataset:
    """Load your own structured image set from a folder per class or a ``path,label`` CSV.

    Parameters
    ----------
    root
        Folder with one sub-folder per class (class names = sorted folder names), or the
        folder the ``csv`` paths are relative to.
    image_size
        Resize every image to this size (int or (height, width)) with ``cv2.INTER_AREA``.
        The images must still share one size among themselves, unless ``resize=True``.
    resize
        Accept images of different sizes: resize every one to ``image_size``, or with
        ``image_size=None`` to the most common size. Without it, images of another size
        than the majority are a DataError naming them, even with ``image_size`` given.
    test_fraction, seed
        Seeded stratified split, used when no ``split_file`` is given.
    split_file
        CSV ``path,split`` (or text ``path split`` per line), split ``train`` or ``test``,
        paths relative to ``root``; must cover every image exactly once.
    csv
        CSV with columns ``path,label`` (paths relative to ``root``); labels are class
        names (classes = sorted names) or integers 0..K-1.
    channels
        3 (grey replicated, RGBA loses alpha), 1 (colour converted to grey), ``None``
        (keep what the files have; all must agree, e.g. multi-channel ``.npy`` maps) or
        ``"auto"`` (1 when every image is grey, three equal channels included, else 3).
    standardize
        ``True``: ImageNet means/stds for image files (as the paper), per-channel training
        mean/std for ``.npy`` arrays and DICOM; or ``"imagenet"``, ``"dataset"``, ``False``.
        With ``False``, ``meta["standardize_default"]`` says what ``True`` would use, and
        :func:`~gsa_utils.data.standardization.standardize_dataset` applies it with the
        statistics of the images a run trains on (e.g. its cross-validation folds).
    class_names
        Fix the class order (names) or give names to integer labels.
    cache_dir, progress
        See :func:`gsa_utils.data.idrid.load_idrid`.
    name
        Dataset name (default ``"folder-<root name>"``).
    duplicates
        ``"error"`` (default): one file listed under two paths (``a/../a/x.png``, symbolic
        links) or byte-identical files under two names raise DataError naming both;
        ``"warn"``: byte-identical files only warn (the same path twice is always an error
        in a CSV).

    Returns
    -------
    StructuredDataset
        ``x`` float32 N x C x H x W (8-bit images scaled to [0, 1], 16-bit by 65535,
        ``.npy`` values kept) then standardised; ``meta`` lists the files of each split.

    Raises
    ------
    DataError
        Before decoding: missing folder/CSV, bad CSV rows or labels (naming the line),
        listed files that do not exist, unreadable or truncated files, images of a size
        other than the majority (naming the first such file, its size and the majority
        size) when not resizing, split-file problems, classes too small to split.

    Introduced in chapter 1 (``01_structured_images``).
    """
    root = Path(root).expanduser().absolute()
    if not root.is_dir():
        raise DataError(f"folder {root} does not exist")
    if channels not in (1, 3, None, "auto"):
        raise DataError(f"channels must be 1, 3, None or 'auto', got {channels!r}")
    if duplicates not in ("error", "warn"):
        raise DataError(f"duplicates must be 'error' or 'warn', got {duplicates!r}")
    size = as_size(image_size) if image_size is not None else None
    lines = None
    ignored: list[str] = []
    if csv is not None:
        csv_path = Path(csv).expanduser()
        if not csv_path.is_file() and (root / csv_path).is_file():
            csv_path = root / csv_path
        if not csv_path.is_file():
            raise DataError(f"labels CSV not found: {csv_path}")
        files, label_names, lines = _scan_csv(root, csv_path)
        y, names = _encode_labels(label_names, class_names, str(csv_path), lines)
        layout = "csv"
    else:
        files, label_names, folders, ignored = _scan_class_folders(root)
        y, names = _encode_labels(label_names, class_names if class_names is not None else folders, str(root), None)
        layout = "class folders"
    if len(names) < 2:
        raise DataError(f"{root}: need at least 2 classes, found {names}")
    _check_duplicates(files, root, lines, duplicates)
    if split_file is not None:
        sp = Path(split_file).expanduser()
        if not sp.is_file() and (root / sp).is_file():
            sp = root / sp
        tr, te = _read_split(sp, root, files)
    else:
        tr, te = stratified_split(y, test_fraction, seed, names, f"folder {root}")

    has_raw = any(f.suffix.lower() == ".npy" or is_dicom(f) for f in files)  # not photographs
    settings = {
        "size": list(size) if size else ("majority" if resize else "as-is"),
        "channels": channels,
        "interpolation": "INTER_AREA",
        "pixel_hashes": 1,
        **({"mixed_sizes": True} if resize and size else {}),
    }
    info: dict = {}

    def compute() -> dict[str, np.ndarray]:
        headers = [peek_image(f) for f in files]  # validation before decoding anything
        counts = Counter(h.size for h in headers)
        majority = counts.most_common(1)[0][0]
        info["sizes"] = {f"{h}x{w}": n for (h, w), n in counts.items()}
        if not resize and len(counts) > 1:
            bad = [i for i, h in enumerate(headers) if h.size != majority]
            hb, wb = headers[bad[0]].size
            more = f" and {len(bad) - 1} more ({_shorten([_rel(files[i], root) for i in bad[1:]])})" if bad[1:] else ""
            raise DataError(
                f"{files[bad[0]]}: image is {hb} x {wb} (height x width){more}, but most images "
                f"({counts[majority]} of {len(files)}) are {majority[0]} x {majority[1]}; structured "
                f"images must share one size: fix or remove the odd files, or pass resize=True to "
                f"resize them all{' (image_size= alone resizes only a set of one size)' if size else ''}"
            )
        target = size or majority
        if channels is None:  # "auto" decides after decoding
            eff = [h.channels if h.format == "NPY" else min(h.channels, 3) for h in headers]
            if len(set(eff)) > 1:
                i = next(i for i, c in enumerate(eff) if c != eff[0])
                raise DataError(
                    f"{files[i]}: has {eff[i]} channels but {files[0]} has {eff[0]}; with "
                    f"channels=None all files must agree (or pass channels=1 or channels=3)"
                )
        out, hashes = [], []
        for f in progress_bar(files, total=len(files), desc=f"folder {root.name}", enabled=progress):
            img = _convert_channels(
                read_image(f, cv2.IMREAD_UNCHANGED),
                None if channels == "auto" else channels,
                f,
                f.suffix.lower() == ".npy",
            )
            hashes.append(pixel_digest(img))
            if img.dtype not in (np.uint8, np.uint16, np.float32, np.float64):
                img = img.astype(np.float32)
            out.append(resize_image(img, target, cv2.INTER_AREA))
        if channels == "auto":
            out = _auto_channels(out, files)
        if not all(o.dtype == out[0].dtype for o in out):
            out = [_as_float01(o) for o in out]
        return {"x": np.stack(out), "pixel_sha256": np.stack(hashes)}

    arrays, cache_info = cached_arrays("folder", files, settings, compute, cache_dir)
    _check_pixel_duplicates(arrays["pixel_sha256"], files, root, lines, duplicates)
    x = stack_to_tensor(arrays["x"])
    default_mode = "dataset" if has_raw or x.shape[1] not in (1, 3) else "imagenet"
    mode = default_mode if standardize is True else standardize
    meta = {
        "dataset": "folder",
        "root": str(root),
        "layout": layout,
        "files": [_rel(f, root) for f in files],
        "train_files": [_rel(files[i], root) for i in tr],
        "test_files": [_rel(files[i], root) for i in te],
        "train_index": tr,
        "test_index": te,
        "split": "file" if split_file is not None else f"stratified test_fraction={test_fraction} seed={seed}",
        "ignored_files": ignored,
        "channels": f"auto ({x.shape[1]})" if channels == "auto" else channels,
        "image_size": tuple(x.shape[2:]),
        "resized": bool(size is not None or resize),
        "interpolation": "cv2.INTER_AREA",
        **cache_info,
    }
    if "sizes" in info:
        meta["original_sizes"] = info["sizes"]
    description = f"Structured images from {root} ({layout}), {len(files)} images, {len(names)} classes."
    return make_real_dataset(
        name or f"folder-{root.name}",
        x[tr],
        y[tr],
        x[te],
        y[te],
        names,
        mode,
        description,
        meta,
        default_mode=default_mode,
    )
