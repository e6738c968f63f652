"""Label and split files of an image set: CSV tables read with errors that name the file and line."""

from __future__ import annotations

import csv
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .base import DataError
from .formats import IMAGE_EXTENSIONS, SET_ASIDE_ENDINGS, is_image_file, is_set_aside


def normalise_header(name: str) -> str:
    """Header comparison: collapse white space, ignore case (a real IDRiD header has a trailing space)."""
    return " ".join(name.split()).casefold()


def read_csv_table(path: Path, expected_header: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header row and the non-blank rows with their 1-based line numbers; DataError naming ``path``."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: cannot read CSV ({exc})") from None
    if not rows:
        raise DataError(f"{path}: file is empty (expected a header {expected_header})")
    return rows[0], [(n, row) for n, row in enumerate(rows[1:], start=2) if any(cell.strip() for cell in row)]


def read_csv_rows(path: Path, required: Sequence[str]) -> list[tuple[int, dict[str, str]]]:
    """CSV rows as dicts with normalised (lower-case, stripped) keys, with 1-based line numbers."""
    raw_header, body = read_csv_table(path, ",".join(required))
    header = [normalise_header(h) for h in raw_header]
    twice = sorted({h for h in header if h and header.count(h) > 1})
    if twice:
        raise DataError(
            f"{path}: the header names column {twice[0]!r} twice (columns "
            f"{[i + 1 for i, h in enumerate(header) if h == twice[0]]}); keep one"
        )
    missing = [c for c in required if c not in header]
    if missing:
        raise DataError(f"{path}: header must contain columns {list(required)}, found {raw_header}")
    return [
        (lineno, {h: (row[i].strip() if i < len(row) else "") for i, h in enumerate(header)}) for lineno, row in body
    ]


def scan_label_csv(root: Path, csv_path: Path) -> tuple[list[Path], list[str], list[int]]:
    """Files (resolved under ``root``), their label strings and line numbers from a ``path,label`` CSV."""
    files, labels, lines = [], [], []
    seen: dict[Path, tuple[int, str]] = {}
    for lineno, row in read_csv_rows(csv_path, ("path", "label")):
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


def encode_labels(
    labels: Sequence[str], class_names: Sequence[str] | None, source: str, lines: Sequence[int] | None
) -> tuple[np.ndarray, list[str]]:
    """Integer labels and class names from label strings: class names, or integers 0..K-1."""

    def where(i: int) -> str:
        return f"{source}, line {lines[i]}" if lines else source

    try:
        as_int = [int(s) for s in labels]
    except ValueError:
        as_int = None
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


def read_split_file(split_file: Path, root: Path, files: Sequence[Path]) -> tuple[np.ndarray, np.ndarray]:
    """Train and test indices of ``files`` from a ``path,split`` CSV (or ``path split`` text) covering each once."""
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
        parts = next(csv.reader([s])) if "," in s else s.split()
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
