"""Which files are images, and decoders beyond OpenCV: Pillow for what it reads, pydicom for DICOM.

Introduced in chapter 1 (``01_structured_images``). DICOM needs the optional ``pydicom``
(``pip install 'gsa-utils[dicom]'``); without it a DICOM file is a DataError naming the extra.
"""

from __future__ import annotations

import importlib
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .base import DataError

# fmt: off
#: Extensions accepted by name (lower case). Files with other or no extensions are
#: accepted too when Pillow or pydicom decodes them (:func:`is_image_file`).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".pgm", ".ppm", ".pbm", ".pnm",
                    ".gif", ".webp", ".npy", ".dcm", ".dicom")
# fmt: on
#: Extensions of DICOM files.
DICOM_EXTENSIONS = (".dcm", ".dicom")
#: Name endings of files set aside by people or tools (quarantined, backups, partial downloads, temporary
#: files): never read as images, e.g. the corrupt originals Extended Yale B ships as ``*.pgm.bad``.
SET_ASIDE_ENDINGS = (".bad", ".bak", ".orig", "~", ".tmp", ".part")

# fmt: off
#: How image files begin (PNG, JPEG, GIF, BMP, TIFF both byte orders, WebP, JPEG 2000, PNM, ``.npy``).
_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"II*\x00", b"MM\x00*",
          b"\x00\x00\x00\x0cjP  ", b"\x93NUMPY")

_PIL_CHANNELS = {"1": 1, "L": 1, "P": 3, "I": 1, "F": 1, "I;16": 1, "I;16B": 1, "I;16L": 1, "I;16N": 1,
                 "LA": 4, "La": 4, "PA": 4, "RGB": 3, "YCbCr": 3, "LAB": 3, "HSV": 3, "RGBA": 4,
                 "RGBa": 4, "RGBX": 3, "CMYK": 3}
# fmt: on


@dataclass(frozen=True)
class ImageInfo:
    """What a file's header says: ``height``, ``width``, ``channels`` (1 = grey) and format."""

    height: int
    width: int
    channels: int
    format: str

    @property
    def size(self) -> tuple[int, int]:
        """(height, width)."""
        return (self.height, self.width)


def is_dicom(path: str | os.PathLike) -> bool:
    """True for a ``.dcm``/``.dicom`` name or a file with the DICOM marker ``DICM`` at byte 128."""
    path = Path(path)
    if path.suffix.lower() in DICOM_EXTENSIONS:
        return True
    try:
        with open(path, "rb") as fh:
            fh.seek(128)
            return fh.read(4) == b"DICM"
    except OSError:
        return False


def is_set_aside(path: str | os.PathLike) -> bool:
    """True for a name ending in one of :data:`SET_ASIDE_ENDINGS` (``x.pgm.bad``, ``x.png~``, ...)."""
    return Path(path).name.lower().endswith(SET_ASIDE_ENDINGS)


def looks_like_image(path: str | os.PathLike) -> bool:
    """True when the file begins as an image file does (PNG, JPEG, GIF, BMP, TIFF, WebP, PNM, ``.npy``),
    whether or not the rest decodes."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError:
        return False
    if head.startswith(_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        return True
    if head[:2] == b"BM" and head[6:10] == b"\x00\x00\x00\x00":  # BMP: size, then 4 reserved zero bytes
        return True
    return len(head) > 2 and head[:1] == b"P" and head[1:2] in b"1234567" and head[2:3] in b" \t\r\n"


def is_image_file(path: str | os.PathLike) -> bool:
    """True for an image extension, a DICOM file, or content Pillow recognises or that begins as an image does."""
    path = Path(path)
    if is_set_aside(path):
        return False
    if path.suffix.lower() in IMAGE_EXTENSIONS or is_dicom(path) or looks_like_image(path):
        return True
    try:
        with Image.open(path) as im:
            im.size  # noqa: B018  (the header was parsed)
        return True
    except Exception:
        return False


def max_image_pixels() -> int | None:
    """The most pixels one image may have (twice ``PIL.Image.MAX_IMAGE_PIXELS``), or ``None`` for no limit."""
    return None if Image.MAX_IMAGE_PIXELS is None else 2 * int(Image.MAX_IMAGE_PIXELS)


def check_pixel_count(path: str | os.PathLike, info: ImageInfo) -> ImageInfo:
    """``info`` when the image is within :func:`max_image_pixels`, else a DataError naming the file, before decoding."""
    limit = max_image_pixels()
    if limit is not None and info.height * info.width * max(1, info.channels / 4) > limit:
        raise DataError(
            f"{path}: {info.height} x {info.width} x {info.channels} ({info.format}) is larger than the "
            f"limit of {limit} pixels for one image (decoding it would take "
            f"{info.height * info.width * info.channels * 4 / 2**30:.1f} GiB or more); shrink the file, or "
            f"raise PIL.Image.MAX_IMAGE_PIXELS (the limit is twice it) if it is meant to be this large"
        )
    return info


def peek_pillow(path: Path) -> ImageInfo:
    """Header of an image Pillow reads, or DataError naming the file."""
    try:
        with Image.open(path) as im:
            w, h = im.size
            mode, fmt = im.mode, im.format or "unknown"
    except Exception as exc:
        raise DataError(f"{path}: not a readable image ({type(exc).__name__}: {exc})") from None
    return ImageInfo(int(h), int(w), _PIL_CHANNELS.get(mode, 3), fmt)


def read_pillow(path: Path, data: bytes | None = None) -> np.ndarray:
    """Decode the first frame with Pillow, in OpenCV's conventions (BGR/BGRA colour, grey 2-D)."""
    try:
        with Image.open(io.BytesIO(data) if data is not None else path) as im:
            im.seek(0)
            im.load()
            mode = im.mode
            if mode == "1":
                im = im.convert("L")
            elif mode in ("P", "PA"):
                im = im.convert("RGBA" if mode == "PA" or "transparency" in im.info else "RGB")
            elif mode in ("LA", "La", "RGBa"):
                im = im.convert("RGBA")
            elif mode in ("CMYK", "YCbCr", "LAB", "HSV", "RGBX"):
                im = im.convert("RGB")
            arr = np.array(im)
    except Exception as exc:
        raise DataError(f"{path}: cannot decode image ({type(exc).__name__}: {exc})") from None
    if arr.dtype == np.int32:
        arr = arr.astype(np.uint16) if arr.size and arr.min() >= 0 and arr.max() <= 65535 else arr.astype(np.float32)
    elif arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("="))
    if arr.ndim == 3 and arr.shape[2] in (3, 4):
        arr = np.ascontiguousarray(np.concatenate([arr[:, :, 2::-1], arr[:, :, 3:]], axis=2))
    if arr.size == 0:
        raise DataError(f"{path}: image has no pixels")
    return arr


def _pydicom(path: Path):
    try:
        return importlib.import_module("pydicom")
    except ImportError:
        raise DataError(
            f"{path}: DICOM file, and reading DICOM needs the optional 'pydicom' package: "
            f"pip install 'gsa-utils[dicom]' (or pip install pydicom)"
        ) from None


def peek_dicom(path: Path) -> ImageInfo:
    """Rows, columns and samples per pixel of a DICOM file, without its pixel data."""
    pydicom = _pydicom(path)
    try:
        ds = pydicom.dcmread(str(path), stop_before_pixels=True, force=True)
        h, w = int(ds.Rows), int(ds.Columns)
        c = int(getattr(ds, "SamplesPerPixel", 1))
        frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    except Exception as exc:
        raise DataError(f"{path}: not a readable DICOM image ({type(exc).__name__}: {exc})") from None
    if frames > 1:
        raise DataError(f"{path}: multi-frame DICOM ({frames} frames); export one 2-D image per file")
    return check_pixel_count(path, ImageInfo(h, w, c, "DICOM"))


def read_dicom(path: Path) -> np.ndarray:
    """Pixel data of a 2-D DICOM image in OpenCV's conventions (MONOCHROME1 inverted so that bright is dense)."""
    pydicom = _pydicom(path)
    try:
        ds = pydicom.dcmread(str(path), force=True)
        arr = np.asarray(ds.pixel_array)
    except Exception as exc:
        raise DataError(f"{path}: cannot decode DICOM pixel data ({type(exc).__name__}: {exc})") from None
    if arr.ndim not in (2, 3) or arr.size == 0 or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise DataError(f"{path}: DICOM pixel data of shape {arr.shape}; expected one 2-D grey or colour image")
    if str(getattr(ds, "PhotometricInterpretation", "")).upper() == "MONOCHROME1":
        arr = arr.max() - arr if np.issubdtype(arr.dtype, np.integer) else -arr
    if arr.ndim == 3:
        arr = np.ascontiguousarray(arr[:, :, 2::-1])
    if arr.dtype not in (np.uint8, np.uint16):
        arr = arr.astype(np.float32)
    return arr
