"""JAFFE: the Japanese Female Facial Expression database, labelled by semantic ratings.

Introduced in chapter 1 (``01_structured_images``). JAFFE (Lyons et al., 1998;
https://zenodo.org/record/3451524, on request, non-commercial research only: never commit or
redistribute the images) holds 213 grey 256 x 256 TIFFs (``KA.AN1.39.tiff``: model ``KA``,
posed expression ``AN1``, image 39). The paper (supplement 1.2) labels each image with the
emotion of its largest averaged rating, read from the ratings table in the documentation
(``README_FIRST.txt``)::

    #  HAP  SAD  SUR  ANG  DIS  FEA  PIC
    1  2.87 2.52 2.10 1.97 1.97 2.06 KA-NE1
"""

from __future__ import annotations

import math
import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .base import DataError, StructuredDataset
from .cache import cached_arrays
from .real import (
    as_size,
    make_real_dataset,
    peek_image,
    progress_bar,
    read_image,
    resize_image,
    stack_to_tensor,
    stratified_split,
    to_grey,
    walk_files,
)

#: Class names, in the column order of the ratings table (HAP SAD SUR ANG DIS FEA).
JAFFE_CLASSES = ["happiness", "sadness", "surprise", "anger", "disgust", "fear"]
#: Ratings-table column codes, same order as :data:`JAFFE_CLASSES`.
JAFFE_RATING_COLUMNS = ("HAP", "SAD", "SUR", "ANG", "DIS", "FEA")

_FILE_RE = re.compile(r"^([A-Za-z]{2})\.([A-Za-z]{2}\d+)\.(\d+)\.tiff?$")
_PIC_RE = re.compile(r"^[A-Za-z]{2}-[A-Za-z]{2}\d+$")
_INT_RE = re.compile(r"^\d+$")
_LOOSE_PIC_RE = re.compile(r"^[A-Za-z]{2}\W?_?[A-Za-z]{2}\d+$")


@dataclass
class JaffeRatings:
    """Parsed ratings: picture id -> six ratings (``nan`` where a table lacks the column), with source lines."""

    path: Path
    ratings: dict[str, np.ndarray]
    source_line: dict[str, int]
    tables: list[dict]

    def label(self, pic: str) -> int:
        """Index of the largest rating (ties -> first in HAP..FEA order); missing columns never win."""
        return int(np.nanargmax(self.ratings[pic]))


def jaffe_picture_id(filename: str) -> str | None:
    """``"KA.AN1.39.tiff"`` -> ``"KA-AN1"`` (upper case); ``None`` if the name is not JAFFE-style.

    Introduced in chapter 1 (``01_structured_images``).
    """
    m = _FILE_RE.match(Path(filename).name)
    return f"{m.group(1).upper()}-{m.group(2).upper()}" if m else None


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _header_columns(line: str) -> list[str] | None:
    """Rating columns of a header line like ``#  HAP  SAD  SUR  ANG  DIS  FEA  PIC``, else None."""
    tokens = line.replace("#", " ").upper().split()
    if not tokens or tokens[-1] != "PIC":
        return None
    body = [t for t in tokens[:-1] if t not in {"NO", "NO.", "N", "ID"}]
    if not body or "HAP" not in body or any(t not in JAFFE_RATING_COLUMNS for t in body):
        return None
    if len(set(body)) != len(body):
        return None
    return body


def read_jaffe_ratings(path: str | os.PathLike) -> JaffeRatings:
    """Parse the JAFFE semantic-ratings table(s) of a text file.

    Introduced in chapter 1 (``01_structured_images``). Lenient about the text around a table
    and its spacing, strict about its rows (a DataError names the line). After a line mentioning
    "Fear Excluded" (the second rating study) rows may lack the FEA value; the first table that
    rates a picture wins, and a missing rating never wins the argmax.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise DataError(f"{path}: cannot read ratings file ({exc})") from None
    ratings: dict[str, np.ndarray] = {}
    source: dict[str, int] = {}
    table_of: dict[str, int] = {}
    tables: list[dict] = []
    columns: list[str] | None = None
    implicit = False  # inside a header-less table after a "Fear Excluded" title: parsed leniently
    fear_excluded = False
    for lineno, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        head = _header_columns(stripped) if stripped else None
        if head is not None:
            columns, implicit = head, False
            tables.append(
                {
                    "line": lineno,
                    "columns": list(head),
                    "rows": 0,
                    "implicit_header": False,
                    "fear_excluded": fear_excluded,
                }
            )
            continue
        if not stripped:
            continue
        tokens = stripped.split()
        is_row = (
            bool(_INT_RE.match(tokens[0]))
            and len(tokens) >= 3
            and (bool(_LOOSE_PIC_RE.match(tokens[-1])) or 2 * sum(map(_is_number, tokens[1:-1])) >= len(tokens) - 2)
        )
        if not is_row:
            columns = None  # text after a table ends it
            if "fear excluded" in " ".join(tokens).casefold():
                fear_excluded = True
            continue
        if columns is None:
            if not fear_excluded or len(tokens) != 7 or not _PIC_RE.match(tokens[-1]):
                continue  # a numbered line of documentation text, not a ratings row
            columns, implicit = [c for c in JAFFE_RATING_COLUMNS if c != "FEA"], True
            tables.append(
                {"line": lineno, "columns": list(columns), "rows": 0, "implicit_header": True, "fear_excluded": True}
            )
        where = f"{path}, line {lineno}"
        pic = tokens[-1]
        values = tokens[1:-1]
        cols = columns
        if tables[-1]["fear_excluded"] and "FEA" in columns and len(values) == len(columns) - 1:
            cols = [c for c in columns if c != "FEA"]  # "fear excluded" study under a six-column header
        if implicit and (not _PIC_RE.match(pic) or len(values) != len(cols)):
            continue
        if not _PIC_RE.match(pic):
            raise DataError(
                f"{where}: expected a picture id like 'KA-AN1' at the end of the row, got {pic!r} (row: {stripped!r})"
            )
        if len(values) != len(cols):
            raise DataError(
                f"{where}: expected {len(cols)} ratings ({' '.join(cols)}) for {pic}, got "
                f"{len(values)} (row: {stripped!r})"
            )
        row = np.full(len(JAFFE_RATING_COLUMNS), np.nan)
        for col, raw in zip(cols, values):
            try:
                v = float(raw)
            except ValueError:
                raise DataError(f"{where}: rating {col} of {pic} is not a number: {raw!r}") from None
            if not math.isfinite(v):
                raise DataError(f"{where}: rating {col} of {pic} is not finite: {raw!r}")
            row[JAFFE_RATING_COLUMNS.index(col)] = v
        tables[-1]["rows"] += 1
        pic = pic.upper()
        if pic in ratings:
            if table_of[pic] == len(tables) - 1:
                raise DataError(
                    f"{where}: picture {pic} is rated twice in the same table (first on line {source[pic]})"
                )
            continue  # an earlier table already rates it
        ratings[pic] = row
        source[pic] = lineno
        table_of[pic] = len(tables) - 1
    if not ratings:
        raise DataError(
            f"{path}: no JAFFE ratings table found (expected a header line like "
            f"'#  HAP  SAD  SUR  ANG  DIS  FEA  PIC' followed by rows like "
            f"'1 2.87 2.52 2.10 1.97 1.97 2.06 KA-NE1')"
        )
    return JaffeRatings(path, ratings, source, tables)


def _find_ratings_file(root: Path) -> Path:
    candidates = []
    for p in walk_files(root):
        if p.suffix.lower() not in {".txt", ".text", ".dat", ""}:
            continue
        if p.stat().st_size > 5_000_000 or len(p.relative_to(root).parts) > 4:
            continue
        try:
            with open(p, encoding="utf-8", errors="replace") as fh:
                if any(_header_columns(line.strip()) for line in fh):
                    candidates.append(p)
        except OSError:
            continue
    if not candidates:
        raise DataError(
            f"{root}: no JAFFE ratings file found (a text file such as README_FIRST.txt with a line "
            f"'#  HAP  SAD  SUR  ANG  DIS  FEA  PIC'); put it in the folder, or pass ratings_file= to load_jaffe"
        )
    if len(candidates) > 1:
        raise DataError(
            f"{root}: several files look like JAFFE ratings: {[str(c) for c in candidates]}; "
            f"keep one of them in the folder (the command line reads the single one), or choose one "
            f"with load_jaffe(..., ratings_file=...)"
        )
    return candidates[0]


def _find_tiffs(root: Path) -> list[Path]:
    tiffs = sorted((p for p in walk_files(root) if p.suffix.lower() in {".tif", ".tiff"}), key=lambda p: p.name)
    if not tiffs:
        raise DataError(f"{root}: no .tiff images found (expected the 213 JAFFE files such as KA.AN1.39.tiff)")
    return tiffs


def _preprocess(paths: Sequence[Path], size: tuple[int, int], progress: bool) -> np.ndarray:
    out = np.empty((len(paths), size[0], size[1]), dtype=np.uint8)
    for i, p in enumerate(progress_bar(paths, desc="JAFFE", enabled=progress)):
        img = read_image(p, cv2.IMREAD_UNCHANGED)
        if img.ndim == 3:  # some copies store grey as RGB: convert (no loss when channels are equal)
            img = to_grey(cv2.cvtColor(img[:, :, :3], cv2.COLOR_BGR2RGB))
        if img.dtype == np.uint16:
            img = (img / 257.0).round().astype(np.uint8)
        elif img.dtype != np.uint8:
            raise DataError(f"{p}: expected an 8-bit grey image, got dtype {img.dtype}")
        out[i] = resize_image(img, size, cv2.INTER_AREA)
    return out


def load_jaffe(
    root: str | os.PathLike,
    image_size: int | tuple[int, int] = 224,
    test_fraction: float = 0.2,
    seed: int = 0,
    cache_dir: str | os.PathLike | bool | None = None,
    progress: bool = True,
    channels: int = 3,
    standardize: bool = True,
    ratings_file: str | os.PathLike | None = None,
    missing_ratings: str = "error",
) -> StructuredDataset:
    """Load JAFFE with the paper's labels (argmax of the averaged ratings, supplement 1.2).

    Introduced in chapter 1 (``01_structured_images``). Caching and standardisation as for every
    loader (:mod:`gsa_utils.data.registry`); the split is per image, seeded and stratified (80/20).

    Parameters
    ----------
    root
        Folder holding the ``.tiff`` files (searched recursively).
    channels
        3 (default): grey replicated, as ImageNet-pretrained CNNs expect; 1 keeps grey.
    ratings_file
        By default the one text file under ``root`` holding a ratings table.
    missing_ratings
        ``"error"``: an image without a ratings row is a DataError; ``"skip"``: left out and listed.
    """
    size = as_size(image_size)
    if channels not in (1, 3):
        raise DataError(f"channels must be 1 or 3, got {channels!r}")
    if missing_ratings not in ("error", "skip"):
        raise DataError(f"missing_ratings must be 'error' or 'skip', got {missing_ratings!r}")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"JAFFE root {root} is not a folder")
    tiffs = _find_tiffs(root)
    rfile = Path(ratings_file).expanduser() if ratings_file is not None else _find_ratings_file(root)
    if not rfile.is_file():
        raise DataError(f"JAFFE ratings file not found: {rfile}")
    ratings = read_jaffe_ratings(rfile)

    paths: list[Path] = []
    pics: list[str] = []
    skipped: list[str] = []
    seen: dict[str, Path] = {}
    for p in tiffs:
        pic = jaffe_picture_id(p.name)
        if pic is None:
            raise DataError(f"{p}: file name is not JAFFE-style (expected e.g. KA.AN1.39.tiff)")
        if pic in seen:
            raise DataError(f"{p}: picture id {pic} already used by {seen[pic]}")
        seen[pic] = p
        if pic not in ratings.ratings:
            if missing_ratings == "skip":
                skipped.append(p.name)
                continue
            raise DataError(f"{p}: no row for picture {pic} in ratings file {rfile}")
        paths.append(p)
        pics.append(pic)
    if not paths:
        raise DataError(f"{root}: none of the {len(tiffs)} tiffs has a ratings row in {rfile}")
    r = np.stack([ratings.ratings[pic] for pic in pics])
    y = np.array([ratings.label(pic) for pic in pics], dtype=np.int64)
    top = np.nanmax(r, axis=1)
    ties = [pics[i] for i in range(len(pics)) if np.sum(r[i] == top[i]) > 1]
    tr, te = stratified_split(y, test_fraction, seed, JAFFE_CLASSES, f"JAFFE ({root})")

    settings = {"size": list(size), "interpolation": "INTER_AREA", "grey": True}

    def compute() -> dict[str, np.ndarray]:
        for p in paths:  # validation before decoding anything
            peek_image(p)
        return {"x": _preprocess(paths, size, progress)}

    arrays, cache_info = cached_arrays("jaffe", paths, settings, compute, cache_dir)
    x = stack_to_tensor(arrays["x"])
    if channels == 3:
        x = x.expand(-1, 3, -1, -1).contiguous()
    if ties:
        warnings.warn(
            f"JAFFE: {len(ties)} pictures have tied top ratings (first column wins): {ties[:5]}", stacklevel=2
        )
    meta = {
        "dataset": "JAFFE",
        "root": str(root),
        "ratings_file": str(rfile),
        "rating_columns": list(JAFFE_RATING_COLUMNS),
        "ratings_tables": ratings.tables,
        "files": [p.name for p in paths],
        "picture_ids": pics,
        "ratings": r,
        "train_index": tr,
        "test_index": te,
        "train_files": [paths[i].name for i in tr],
        "test_files": [paths[i].name for i in te],
        "test_fraction": test_fraction,
        "seed": seed,
        "channels": channels,
        "image_size": size,
        "interpolation": "cv2.INTER_AREA",
        "skipped_unrated": skipped,
        **cache_info,
    }
    description = (
        f"JAFFE faces, {len(paths)} images, labels = emotion with the largest averaged rating; "
        f"resized to {size[0]}x{size[1]}, {'grey replicated to 3 channels' if channels == 3 else 'grey'}."
    )
    return make_real_dataset(
        "jaffe", x[tr], y[tr], x[te], y[te], JAFFE_CLASSES, "imagenet" if standardize else False, description, meta
    )
