"""Helpers shared by the loaders of real data: reading, checking and converting images.

Introduced in chapter 1 (``01_structured_images``). Every loader first checks every input
(CSV rows, files, image headers) and raises :class:`~gsa_utils.data.DataError` naming the file
before any image is decoded; then it decodes with OpenCV (BGR order, as the paper), crops,
resizes with ``cv2.INTER_AREA`` and caches the result (:mod:`.cache`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import cv2
import numpy as np
import torch

from .base import DataError, StructuredDataset
from .formats import (
    ImageInfo,
    check_pixel_count,
    is_dicom,
    peek_dicom,
    peek_pillow,
    read_dicom,
    read_pillow,
)
from .standardization import fit_standardization

_JPEG = (".jpg", ".jpeg", ".jpe", ".jfif")
T = TypeVar("T")


def is_hidden(path: Path, root: Path) -> bool:
    """True for dot-files/folders below ``root``, macOS ``._*`` files and anything under ``__MACOSX``."""
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        parts = (path.name,)
    return any(part.startswith(".") or part == "__MACOSX" for part in parts)


def walk_files(folder: Path) -> list[Path]:
    """Every file under ``folder`` that is not hidden (:func:`is_hidden`), sorted.

    A sub-folder that cannot be read is a DataError naming it.
    """

    def refuse(err: OSError) -> None:
        raise DataError(
            f"{Path(err.filename or folder).absolute()}: folder cannot be read "
            f"({err.strerror or type(err).__name__}); fix its permissions"
        )

    out: list[Path] = []
    for here, dirs, names in os.walk(folder, onerror=refuse):
        dirs.sort()
        out.extend(Path(here) / n for n in names)
    return sorted(p for p in out if p.is_file() and not is_hidden(p, folder))


def _check_jpeg_end(path: Path, tail: bytes | None = None) -> None:
    """A complete JPEG ends with the EOI marker FF D9 (in ``tail``, its last bytes); a truncated download does not."""
    if path.suffix.lower() not in _JPEG:
        return
    if tail is None:
        with open(path, "rb") as fh:
            fh.seek(max(0, path.stat().st_size - 4096))
            tail = fh.read()
    if b"\xff\xd9" not in tail:
        raise DataError(f"{path}: JPEG file is truncated (no end-of-image marker); download or extract it again")


def _load_npy(path: Path, mmap: bool = False) -> np.ndarray:
    """A ``.npy`` array of shape H x W or H x W x C with numbers (or booleans), else DataError naming ``path``."""
    try:
        arr = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except Exception as exc:
        raise DataError(f"{path}: not a readable .npy array ({exc})") from None
    if arr.ndim not in (2, 3) or arr.size == 0:
        raise DataError(f"{path}: .npy array must be H x W or H x W x C, got shape {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise DataError(f"{path}: .npy array must be numeric, got dtype {arr.dtype}")
    return arr


def peek_image(path: str | os.PathLike) -> ImageInfo:
    """Size and channels from an image's header (or a ``.npy`` array's), without decoding it.

    Introduced in chapter 1 (``01_structured_images``). Raises DataError naming a file that is
    missing, empty, not an image, a truncated JPEG, or over
    :func:`~gsa_utils.data.formats.max_image_pixels`.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty")
    if path.suffix.lower() == ".npy":
        arr = _load_npy(path, mmap=True)
        return check_pixel_count(
            path, ImageInfo(int(arr.shape[0]), int(arr.shape[1]), 1 if arr.ndim == 2 else int(arr.shape[2]), "NPY")
        )
    if is_dicom(path):
        return peek_dicom(path)
    _check_jpeg_end(path)
    return peek_pillow(path)


def read_image(path: str | os.PathLike, flags: int = cv2.IMREAD_UNCHANGED) -> np.ndarray:
    """Decode an image with OpenCV (BGR colour), Pillow or pydicom, or load a ``.npy`` array.

    Introduced in chapter 1 (``01_structured_images``). Raises DataError naming a file that
    cannot be read or decoded.
    """
    path = Path(path)
    if path.suffix.lower() == ".npy":
        arr = _load_npy(path)
        if arr.dtype == bool:
            arr = arr.astype(np.uint8)
        if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
            raise DataError(f"{path}: .npy array contains NaN or infinite values")
        return arr
    if is_dicom(path):
        return read_dicom(path)
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        raise DataError(f"{path}: cannot read file ({exc})") from None
    if data.size == 0:
        raise DataError(f"{path}: file is empty")
    _check_jpeg_end(path, data[-4096:].tobytes())
    try:
        img = cv2.imdecode(data, flags)
    except cv2.error:
        img = None
    if img is None or img.size == 0:  # a format OpenCV does not read (gif, ...) or a corrupt file
        return read_pillow(path, data.tobytes())
    return img


def to_rgb(img: np.ndarray, path: str | os.PathLike = "image") -> np.ndarray:
    """OpenCV BGR/BGRA -> RGB; grey (H x W) is returned unchanged.

    Introduced in chapter 1 (``01_structured_images``).
    """
    if img.ndim == 2:
        return img
    c = img.shape[2]
    if c == 1:
        return img[:, :, 0]
    if c == 3:
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    if c == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    raise DataError(f"{path}: unsupported number of channels {c} (expected 1, 3 or 4)")


def to_grey(img: np.ndarray) -> np.ndarray:
    """RGB (H x W x 3) -> grey with the usual luminance weights; grey stays grey.

    Introduced in chapter 1 (``01_structured_images``).
    """
    if img.ndim == 2:
        return img
    if img.shape[2] == 1:
        return img[:, :, 0]
    return cv2.cvtColor(np.ascontiguousarray(img[:, :, :3]), cv2.COLOR_RGB2GRAY)


def as_size(image_size: int | Sequence[int], what: str = "image_size") -> tuple[int, int]:
    """``224`` -> ``(224, 224)``; ``(h, w)`` -> ``(h, w)``; anything else -> DataError.

    Introduced in chapter 1 (``01_structured_images``).
    """
    if isinstance(image_size, (int, np.integer)) and not isinstance(image_size, bool):
        size = (int(image_size), int(image_size))
    elif (
        isinstance(image_size, (tuple, list))
        and len(image_size) == 2
        and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in image_size)
    ):
        size = (int(image_size[0]), int(image_size[1]))
    else:
        raise DataError(f"{what} must be an int or a (height, width) pair, got {image_size!r}")
    if min(size) < 1:
        raise DataError(f"{what} must be positive, got {image_size!r}")
    return size


def resize_image(img: np.ndarray, size: tuple[int, int], interpolation: int = cv2.INTER_AREA) -> np.ndarray:
    """Resize to ``size`` = (height, width) with OpenCV (default ``INTER_AREA``, as the paper).

    Introduced in chapter 1 (``01_structured_images``).
    """
    h, w = size
    if img.shape[:2] == (h, w):
        return img
    squeeze = img.ndim == 3 and img.shape[2] == 1
    out = cv2.resize(np.ascontiguousarray(img), (w, h), interpolation=interpolation)
    return out[:, :, None] if squeeze and out.ndim == 2 else out


def stack_to_tensor(stack: np.ndarray) -> torch.Tensor:
    """N x H x W (x C) array -> float32 N x C x H x W tensor; ``uint8``/``uint16`` scaled to [0, 1].

    Introduced in chapter 1 (``01_structured_images``).
    """
    arr = np.asarray(stack)
    if arr.ndim == 3:
        arr = arr[:, :, :, None]
    if arr.dtype == np.uint8:
        scale = 255.0
    elif arr.dtype == np.uint16:
        scale = 65535.0
    else:
        scale = 1.0
    t = torch.from_numpy(np.ascontiguousarray(arr.transpose(0, 3, 1, 2))).to(torch.float32)
    return t / scale if scale != 1.0 else t


def stratified_split(
    y: np.ndarray, test_fraction: float, seed: int, class_names: Sequence[str], what: str
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded stratified train/test split of ``range(len(y))`` as sorted index arrays; DataError for a class too small.

    Introduced in chapter 1 (``01_structured_images``).
    """
    if not (isinstance(test_fraction, (float, int)) and 0 < float(test_fraction) < 1):
        raise DataError(f"{what}: test_fraction must be strictly between 0 and 1, got {test_fraction!r}")
    y = np.asarray(y)
    counts = np.bincount(y, minlength=len(class_names))
    for k, n in enumerate(counts):
        if n == 1:
            raise DataError(
                f"{what}: class {class_names[k]!r} has only 1 image; a stratified split needs at "
                f"least 2 per class (add images, drop the class, or give a fixed split)"
            )
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    try:
        tr, te = train_test_split(idx, test_size=float(test_fraction), random_state=seed, stratify=y)
    except ValueError as exc:
        raise DataError(
            f"{what}: cannot make a stratified split with test_fraction={test_fraction} "
            f"of {len(y)} images in {int((counts > 0).sum())} classes ({exc})"
        ) from None
    return np.sort(tr), np.sort(te)


def progress_bar(items: Sequence[T], desc: str = "", enabled: bool = True) -> Iterator[T]:
    """``tqdm.auto`` progress bar over ``items`` (a plain iterator when disabled).

    Introduced in chapter 1 (``01_structured_images``).
    """
    if not enabled:
        return iter(items)
    from tqdm.auto import tqdm

    return iter(tqdm(items, desc=desc, leave=False))


def make_real_dataset(
    name: str,
    x_train: torch.Tensor,
    y_train: np.ndarray,
    x_test: torch.Tensor,
    y_test: np.ndarray,
    class_names: Sequence[str],
    standardize_mode: str | bool | None,
    description: str,
    meta: dict,
    default_mode: str = "imagenet",
) -> StructuredDataset:
    """Standardise (``standardize_mode``), and build a ``source="real"`` :class:`StructuredDataset`.

    ``default_mode``, what ``standardize=True`` means for these data, goes to ``meta["standardize_default"]``.
    """
    fitted = fit_standardization(x_train, standardize_mode)
    meta = dict(meta)
    meta.update(fitted.as_meta())
    meta["standardize_default"] = default_mode
    return StructuredDataset(
        name=name,
        x_train=fitted.apply(x_train).contiguous(),
        y_train=torch.as_tensor(np.asarray(y_train, dtype=np.int64)),
        x_test=fitted.apply(x_test).contiguous(),
        y_test=torch.as_tensor(np.asarray(y_test, dtype=np.int64)),
        class_names=list(class_names),
        mask=None,
        source="real",
        description=description,
        meta=meta,
    )
