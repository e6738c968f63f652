"""Your own structured image set: a folder per class, or a CSV of ``path,label``.

Introduced in chapter 1 (``01_structured_images``). Structured images share one size and are
aligned, so :func:`load_folder` refuses a set of mixed sizes unless asked to resize. Two layouts::

    root/glaucoma/img001.png  ...       root/images/a.png, root/labels.csv (path,label)

Files whose names mark them as set aside (:data:`~gsa_utils.data.formats.SET_ASIDE_ENDINGS`)
are never read. The same image may not count twice (one file under two paths, byte-identical
copies, or copies that decode to the same pixels): it could land in both training and test set.
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np

from ..files import file_sha256
from .base import DataError, StructuredDataset
from .cache import cached_arrays
from .formats import IMAGE_EXTENSIONS, SET_ASIDE_ENDINGS, is_dicom, is_image_file, is_set_aside
from .label_files import encode_labels, read_split_file, scan_label_csv
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
    walk_files,
)


def _shorten(names: Sequence[str], n: int = 5) -> str:
    return ", ".join(names[:n]) + (f", ... ({len(names) - n} more)" if len(names) > n else "")


def _rel(p: Path, root: Path) -> str:
    try:
        return p.relative_to(root).as_posix()
    except ValueError:
        return p.as_posix()


def _given_file(path: str | os.PathLike, root: Path) -> Path:
    """``path`` as given, or relative to ``root`` when only that exists."""
    given = Path(path).expanduser()
    return root / given if not given.is_file() and (root / given).is_file() else given


def _repeats(keys: Mapping[int, object]) -> list[tuple[int, int]]:
    """``(first, later)`` index pairs of the items whose keys are equal, in index order."""
    first: dict[object, int] = {}
    pairs = []
    for i, key in sorted(keys.items()):
        j = first.setdefault(key, i)
        if j != i:
            pairs.append((j, i))
    return pairs


def _check_duplicates(files: Sequence[Path], root: Path, lines: Sequence[int] | None, duplicates: str) -> None:
    """Refuse (or warn about) one file under two paths or byte-identical files under two names."""
    resolved = dict(enumerate(f.resolve() for f in files))
    same_path = _repeats(resolved)
    found = [
        f"{_file_name(files, lines, j)} and {_file_name(files, lines, i)} are the same file {resolved[i]}"
        for j, i in same_path
    ]
    later = {i for _, i in same_path}
    sizes = {i: path.stat().st_size for i, path in resolved.items() if i not in later}
    shared = Counter(sizes.values())
    digests = {i: file_sha256(files[i]) for i, size in sizes.items() if shared[size] > 1}
    found += [
        f"{_file_name(files, lines, j)} and {_file_name(files, lines, i)} are byte-identical"
        for j, i in _repeats(digests)
    ]
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
    """SHA-256 (32 bytes, as uint8) of a decoded image's pixels, shape and dtype."""
    import hashlib

    image = np.ascontiguousarray(image)
    digest = hashlib.sha256(f"{image.shape}{image.dtype.str}".encode())
    digest.update(image.tobytes())
    return np.frombuffer(digest.digest(), dtype=np.uint8)


def _check_pixel_duplicates(
    digests: np.ndarray, files: Sequence[Path], root: Path, lines: Sequence[int] | None, duplicates: str
) -> None:
    """Refuse (or warn about) files with other bytes that decode to the same pixels."""
    found = [
        f"{_file_name(files, lines, j)} and {_file_name(files, lines, i)} decode to the same pixels"
        for j, i in _repeats({i: bytes(d) for i, d in enumerate(digests)})
    ]
    _report_duplicates(found, root, duplicates)


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
        for p in walk_files(root / c):
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
    """``channels="auto"``: grey when every image is grey, else as decoded, grey ones replicated to RGB when mixed."""
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
    duplicates: str = "error",
) -> StructuredDataset:
    """Load your own structured image set from a folder per class or a ``path,label`` CSV.

    Introduced in chapter 1 (``01_structured_images``). Caching and standardisation as for every
    loader (:mod:`gsa_utils.data.registry`).

    Parameters
    ----------
    root
        Folder with one sub-folder per class, or the folder the ``csv`` paths are relative to.
    image_size
        Resize every image to this size; the images must still share one size unless ``resize``.
    resize
        Accept images of different sizes: resize them to ``image_size``, or to the most common size.
    test_fraction, seed
        Seeded stratified split, used when no ``split_file`` is given.
    split_file
        CSV ``path,split`` (or text ``path split``) with ``train``/``test`` for every image.
    csv
        CSV with columns ``path,label``; labels are class names or integers 0..K-1.
    channels
        3, 1, ``None`` (as the files are, all agreeing) or ``"auto"`` (1 when every image is grey).
    standardize
        ``True``: ImageNet statistics for pictures, the training images' own for ``.npy`` and DICOM.
    class_names
        Fix the class order, or name integer labels.
    duplicates
        ``"error"`` or ``"warn"`` for byte-identical files (one file under two paths is always an error).
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
        csv_path = _given_file(csv, root)
        if not csv_path.is_file():
            raise DataError(f"labels CSV not found: {csv_path}")
        files, label_names, lines = scan_label_csv(root, csv_path)
        y, names = encode_labels(label_names, class_names, str(csv_path), lines)
        layout = "csv"
    else:
        files, label_names, folders, ignored = _scan_class_folders(root)
        y, names = encode_labels(label_names, class_names if class_names is not None else folders, str(root), None)
        layout = "class folders"
    if len(names) < 2:
        raise DataError(f"{root}: need at least 2 classes, found {names}")
    _check_duplicates(files, root, lines, duplicates)
    if split_file is not None:
        tr, te = read_split_file(_given_file(split_file, root), root, files)
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
        for f in progress_bar(files, desc=f"folder {root.name}", enabled=progress):
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
        "interpolation": "cv2.INTER_AREA",
        **cache_info,
    }
    if "sizes" in info:
        meta["original_sizes"] = info["sizes"]
    description = f"Structured images from {root} ({layout}), {len(files)} images, {len(names)} classes."
    return make_real_dataset(
        f"folder-{root.name}",
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
