"""IDRiD "B. Disease Grading": fundus photographs graded for retinopathy and macular edema.

Introduced in chapter 1 (``01_structured_images``). IDRiD (Porwal et al., 2018;
https://idrid.grand-challenge.org/Data/, CC BY 4.0) is one of the paper's datasets.
:func:`load_idrid` reads the official layout (:data:`IDRID_LAYOUT`) and preprocesses as the
paper's supplement 1.1: keep columns 260..3685, resize to 224 x 224 with ``cv2.INTER_AREA``,
flip the right eyes (:data:`IDRID_FLIP_TRAIN`, :data:`IDRID_FLIP_TEST`), standardise.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from .base import DataError, StructuredDataset
from .cache import cached_arrays
from .label_files import normalise_header, read_csv_table
from .real import (
    as_size,
    make_real_dataset,
    peek_image,
    progress_bar,
    read_image,
    resize_image,
    stack_to_tensor,
    to_rgb,
)

#: First column kept (the supplement removes pixels with horizontal index < 260).
IDRID_CROP_START = 260
#: One past the last column kept (it removes indices > 3685): the crop is ``x[:, 260:3686]``.
IDRID_CROP_STOP = 3686

#: Official number of training and test images.
IDRID_N_TRAIN = 413
IDRID_N_TEST = 103

# fmt: off
#: 0-based indices (in image-name order) of the training images the paper flipped
#: horizontally (right eyes), copied from supplement 1.1.
IDRID_FLIP_TRAIN: tuple[int, ...] = (
    0, 6, 8, 9, 12, 13, 16, 17, 19, 21, 22, 24, 26, 28, 30, 32, 34, 36, 38, 40, 45, 46, 48, 51, 54, 56, 58,
    60, 61, 63, 64, 65, 66, 68, 70, 73, 75, 77, 79, 81, 84, 86, 89, 90, 93, 94, 98, 99, 100, 101, 102, 104,
    106, 109, 111, 115, 117, 118, 119, 123, 124, 127, 128, 131, 134, 135, 137, 139, 141, 144, 145, 147, 149,
    151, 152, 156, 157, 158, 159, 160, 163, 166, 168, 170, 171, 172, 174, 176, 177, 181, 183, 184, 186, 187,
    188, 190, 192, 193, 194, 195, 197, 200, 201, 202, 204, 206, 209, 211, 212, 214, 216, 217, 220, 222, 226,
    230, 234, 235, 238, 241, 244, 246, 248, 251, 252, 253, 256, 258, 259, 261, 264, 268, 270, 272, 273, 274,
    275, 276, 279, 282, 284, 286, 288, 289, 291, 292, 299, 300, 302, 304, 305, 306, 307, 309, 312, 314, 315,
    318, 320, 321, 322, 325, 329, 331, 333, 334, 337, 340, 341, 343, 345, 349, 351, 356, 357, 359, 361, 362,
    367, 369, 370, 372, 373, 375, 377, 378, 381, 383, 384, 387, 389, 392, 394, 396, 398, 402, 403, 405, 406,
    407, 408, 409, 411, 412,
)

#: Same for the test images (supplement 1.1).
IDRID_FLIP_TEST: tuple[int, ...] = (
    1, 3, 4, 5, 8, 9, 14, 15, 16, 19, 21, 24, 26, 27, 31, 34, 35, 36, 38, 39, 41, 42, 45, 48, 50, 53, 55, 57,
    60, 62, 63, 64, 66, 67, 69, 71, 76, 81, 82, 84, 86, 87, 90, 94, 96, 100, 102,
)
# fmt: on

#: task -> (CSV column, class names). Retinopathy uses the international 5-level scale;
#: macular-edema risk: 0 no hard exudates, 1 exudates further than one disc diameter
#: from the macula centre, 2 within one disc diameter.
IDRID_TASKS: dict[str, tuple[str, list[str]]] = {
    "retinopathy": (
        "Retinopathy grade",
        ["0 no retinopathy", "1 mild NPDR", "2 moderate NPDR", "3 severe NPDR", "4 PDR"],
    ),
    "edema": ("Risk of macular edema", ["0 no exudates", "1 exudates away from macula", "2 exudates near macula"]),
}

#: Folder and file names of the official archive.
IDRID_LAYOUT = {
    "grading": "B. Disease Grading",
    "images": "1. Original Images",
    "train_images": "a. Training Set",
    "test_images": "b. Testing Set",
    "groundtruths": "2. Groundtruths",
    "train_csv": "a. IDRiD_Disease Grading_Training Labels.csv",
    "test_csv": "b. IDRiD_Disease Grading_Testing Labels.csv",
}

_NAME_COLUMN = "Image name"
_IMAGE_SUFFIXES = (".jpg", ".JPG", ".jpeg", ".JPEG", ".png", ".tif", ".tiff")


def _child(folder: Path, name: str) -> Path | None:
    """``folder / name`` if it exists, else the one entry whose name matches ignoring case/whitespace."""
    exact = folder / name
    if exact.exists():
        return exact
    if not folder.is_dir():
        return None
    matches = [p for p in folder.iterdir() if normalise_header(p.name) == normalise_header(name)]
    return matches[0] if len(matches) == 1 else None


def _grading_root(root: Path) -> Path:
    if not root.exists():
        raise DataError(f"IDRiD root {root} does not exist")
    candidates = [root]
    sub = _child(root, IDRID_LAYOUT["grading"])
    if sub is not None:
        candidates.append(sub)
    for cand in candidates:
        if _child(cand, IDRID_LAYOUT["images"]) is not None or _child(cand, IDRID_LAYOUT["groundtruths"]) is not None:
            return cand
    raise DataError(
        f"{root} is not the IDRiD '{IDRID_LAYOUT['grading']}' folder (nor its parent): expected "
        f"'{root / IDRID_LAYOUT['images']}' and '{root / IDRID_LAYOUT['groundtruths']}', or the same under "
        f"'{root / IDRID_LAYOUT['grading']}'. Download 'B. Disease Grading' from https://idrid.grand-challenge.org/Data/"
    )


def _parse_int_label(raw: str) -> int | None:
    """``"3"`` or ``"3.0"`` -> 3; anything else -> ``None``."""
    try:
        v = float(raw)
    except ValueError:
        return None
    return int(v) if v.is_integer() else None


def _read_grading_csv(path: Path, column: str, n_classes: int, task: str) -> list[tuple[str, int, int]]:
    """Rows ``(image name, label, line number)`` of a grading CSV, fully validated."""
    if not path.is_file():
        raise DataError(f"IDRiD labels file not found: expected {path}")
    raw_header, rows = read_csv_table(path, f"'{_NAME_COLUMN},{column},...'")
    header = [normalise_header(h) for h in raw_header]
    try:
        i_name = header.index(normalise_header(_NAME_COLUMN))
        i_label = header.index(normalise_header(column))
    except ValueError:
        raise DataError(
            f"{path}: header must contain columns {_NAME_COLUMN!r} and {column!r}; "
            f"found {[h for h in raw_header if h.strip()]}"
        ) from None
    other_task, (other_column, other_names) = next((t, v) for t, v in IDRID_TASKS.items() if t != task)
    i_other = header.index(normalise_header(other_column)) if normalise_header(other_column) in header else None
    if i_other is None:
        warnings.warn(
            f"{path}: no {other_column!r} column (the {other_task!r} task's); the official CSV has "
            f"both grades - is this the right file?",
            stacklevel=3,
        )
    other_bad: list[str] = []
    out: list[tuple[str, int, int]] = []
    seen: dict[str, int] = {}
    for lineno, row in rows:  # blank or all-empty trailing rows (",,,,") are left out
        name = row[i_name].strip() if i_name < len(row) else ""
        if not name:
            raise DataError(f"{path}, line {lineno}: missing {_NAME_COLUMN!r}")
        key = name.casefold()
        if key in seen:
            raise DataError(f"{path}, line {lineno}: duplicate {_NAME_COLUMN} {name!r} (already on line {seen[key]})")
        seen[key] = lineno
        raw = row[i_label] if i_label < len(row) else ""
        label = _parse_int_label(raw)
        if label is None:
            raise DataError(f"{path}, line {lineno} ({name}): {column!r} = {raw.strip()!r} is not an integer grade")
        if not 0 <= label < n_classes:
            raise DataError(
                f"{path}, line {lineno} ({name}): {column!r} = {label} is outside 0..{n_classes - 1} for task {task!r}"
            )
        if i_other is not None:
            raw_other = row[i_other] if i_other < len(row) else ""
            other = _parse_int_label(raw_other)
            if other is None or not 0 <= other < len(other_names):
                other_bad.append(f"line {lineno} ({name}): {raw_other.strip()!r}")
        out.append((name, label, lineno))
    if other_bad:
        more = f" and {len(other_bad) - 5} more" if len(other_bad) > 5 else ""
        warnings.warn(
            f"{path}: {other_column!r} (the {other_task!r} task's column, not used for task {task!r}) "
            f"is not a grade 0..{len(other_names) - 1} on {'; '.join(other_bad[:5])}{more}; the file may "
            f"be damaged",
            stacklevel=3,
        )
    if not out:
        raise DataError(f"{path}: no image rows below the header")
    return out


def _image_path(folder: Path, name: str, csv_path: Path, lineno: int) -> Path:
    if Path(name).suffix.lower() in {s.lower() for s in _IMAGE_SUFFIXES}:
        p = folder / name
        if p.is_file():
            return p
    else:
        for suffix in _IMAGE_SUFFIXES:
            p = folder / f"{name}{suffix}"
            if p.is_file():
                return p
    expected = folder / (name if Path(name).suffix else f"{name}.jpg")
    raise DataError(f"{expected}: image listed in {csv_path.name} (line {lineno}) not found")


def _check_headers(paths: Sequence[Path]) -> dict[str, int]:
    """Header checks on every file (colour, wide enough); returns counts of the sizes seen."""
    sizes: dict[str, int] = {}
    for p in paths:
        info = peek_image(p)
        if info.channels == 1:
            raise DataError(
                f"{p}: grey image ({info.width} x {info.height}); IDRiD photographs are colour "
                f"(3 channels) - replace the file with the original"
            )
        if info.width < IDRID_CROP_STOP:
            raise DataError(
                f"{p}: image is {info.width} px wide; the paper's crop keeps columns "
                f"{IDRID_CROP_START}..{IDRID_CROP_STOP - 1}, so at least {IDRID_CROP_STOP} px are "
                f"needed (the official images are 4288 x 2848)"
            )
        key = f"{info.width}x{info.height}"
        sizes[key] = sizes.get(key, 0) + 1
    return sizes


def _preprocess(paths: Sequence[Path], flips: set[int], size: tuple[int, int], progress: bool, desc: str) -> np.ndarray:
    out = np.empty((len(paths), size[0], size[1], 3), dtype=np.uint8)
    for i, p in enumerate(progress_bar(paths, desc=desc, enabled=progress)):
        img = read_image(p, cv2.IMREAD_UNCHANGED)
        if img.ndim == 2 or img.shape[2] == 1:
            raise DataError(f"{p}: grey image; IDRiD photographs are colour (3 channels)")
        if img.dtype != np.uint8:
            raise DataError(f"{p}: expected 8-bit colour, got dtype {img.dtype}")
        if img.shape[1] < IDRID_CROP_STOP:
            raise DataError(f"{p}: image is {img.shape[1]} px wide; at least {IDRID_CROP_STOP} px are needed")
        img = img[:, IDRID_CROP_START:IDRID_CROP_STOP]
        img = resize_image(img, size, cv2.INTER_AREA)
        if i in flips:
            img = img[:, ::-1]
        out[i] = to_rgb(np.ascontiguousarray(img), p)
    return out


def load_idrid(
    root: str | os.PathLike,
    task: str = "retinopathy",
    image_size: int | tuple[int, int] = 224,
    standardize: bool = True,
    cache_dir: str | os.PathLike | bool | None = None,
    progress: bool = True,
    flip: bool = True,
) -> StructuredDataset:
    """Load IDRiD disease grading, preprocessed as in the paper (supplement 1.1).

    Introduced in chapter 1 (``01_structured_images``). Caching and standardisation as for every
    loader (:mod:`gsa_utils.data.registry`); every file is checked, and a fault named, before any
    image is decoded.

    Parameters
    ----------
    root
        The extracted ``B. Disease Grading`` folder, or the folder that contains it.
    task
        ``"retinopathy"`` (5 grades) or ``"edema"`` (3 grades). The paper's Table 1 swaps these counts.
    flip
        Flip the right eyes; the indices only fit the official 413 + 103 images (else a warning).
    """
    if task not in IDRID_TASKS:
        raise DataError(f"task must be one of {sorted(IDRID_TASKS)}, got {task!r}")
    size = as_size(image_size)
    column, class_names = IDRID_TASKS[task]
    base = _grading_root(Path(root).expanduser())
    images_dir = _child(base, IDRID_LAYOUT["images"]) or base / IDRID_LAYOUT["images"]
    gt_dir = _child(base, IDRID_LAYOUT["groundtruths"]) or base / IDRID_LAYOUT["groundtruths"]

    splits = {}
    for split, img_key, csv_key, flip_list, n_official in (
        ("train", "train_images", "train_csv", IDRID_FLIP_TRAIN, IDRID_N_TRAIN),
        ("test", "test_images", "test_csv", IDRID_FLIP_TEST, IDRID_N_TEST),
    ):
        csv_path = _child(gt_dir, IDRID_LAYOUT[csv_key]) or gt_dir / IDRID_LAYOUT[csv_key]
        rows = _read_grading_csv(csv_path, column, len(class_names), task)
        rows = sorted(rows, key=lambda r: r[0])
        folder = _child(images_dir, IDRID_LAYOUT[img_key]) or images_dir / IDRID_LAYOUT[img_key]
        if not folder.is_dir():
            raise DataError(f"IDRiD {split} images folder not found: expected {folder}")
        paths = [_image_path(folder, name, csv_path, lineno) for name, _, lineno in rows]
        if flip and len(paths) != n_official:
            warnings.warn(
                f"IDRiD {split}: {len(paths)} images listed in {csv_path.name}, the official set has "
                f"{n_official}; the paper's flip indices were made for the official set",
                stacklevel=2,
            )
        flips = sorted(i for i in flip_list if i < len(paths)) if flip else []
        splits[split] = {"rows": rows, "paths": paths, "flips": flips}

    all_paths = splits["train"]["paths"] + splits["test"]["paths"]
    settings = {
        "crop": [IDRID_CROP_START, IDRID_CROP_STOP],
        "size": list(size),
        "interpolation": "INTER_AREA",
        "flips_train": splits["train"]["flips"],
        "flips_test": splits["test"]["flips"],
        "order": "rgb",
        "n_train": len(splits["train"]["paths"]),
    }
    header_info: dict = {}

    def compute() -> dict[str, np.ndarray]:
        header_info["sizes"] = _check_headers(all_paths)  # validation before decoding anything
        return {
            s: _preprocess(splits[s]["paths"], set(splits[s]["flips"]), size, progress, f"IDRiD {s}")
            for s in ("train", "test")
        }

    arrays, cache_info = cached_arrays("idrid", all_paths, settings, compute, cache_dir)
    if header_info.get("sizes") and len(header_info["sizes"]) > 1:
        warnings.warn(
            f"IDRiD images come in several sizes {header_info['sizes']}; the official ones are all 4288x2848",
            stacklevel=2,
        )

    meta = {
        "dataset": "IDRiD B. Disease Grading",
        "root": str(base),
        "task": task,
        "train_files": [p.name for p in splits["train"]["paths"]],
        "test_files": [p.name for p in splits["test"]["paths"]],
        "flipped_train": list(splits["train"]["flips"]),
        "flipped_test": list(splits["test"]["flips"]),
        "image_size": size,
        "interpolation": "cv2.INTER_AREA",
        **cache_info,
    }
    if "sizes" in header_info:
        meta["original_sizes"] = header_info["sizes"]
    y_train = np.array([r[1] for r in splits["train"]["rows"]], dtype=np.int64)
    y_test = np.array([r[1] for r in splits["test"]["rows"]], dtype=np.int64)
    description = (
        f"IDRiD fundus photographs, {task} grading ({len(class_names)} classes): columns "
        f"{IDRID_CROP_START}-{IDRID_CROP_STOP - 1} kept, resized to {size[0]}x{size[1]}, right eyes "
        f"flipped (paper supplement 1.1)."
    )
    return make_real_dataset(
        f"idrid-{task}",
        stack_to_tensor(arrays["train"]),
        y_train,
        stack_to_tensor(arrays["test"]),
        y_test,
        class_names,
        "imagenet" if standardize else False,
        description,
        meta,
    )
