"""Tiny, layout-exact copies of the real datasets, for tests and offline demos.

Introduced in chapter 1 (``01_structured_images``). The real data cannot be bundled, so these
builders write synthetic images under exactly the real folder names, file names, CSV headers
and ratings-file format; the loaders then run the same code paths on them as on real files.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .idrid import IDRID_CROP_START, IDRID_CROP_STOP, IDRID_FLIP_TEST, IDRID_FLIP_TRAIN, IDRID_LAYOUT
from .jaffe import JAFFE_RATING_COLUMNS
from .medmnist import medmnist_filename

#: Posed-expression codes in JAFFE file names.
JAFFE_CODES = ("AN", "DI", "FE", "HA", "NE", "SA", "SU")
_JAFFE_MODELS = ("KA", "KL", "KM", "KR", "MK", "NA", "NM", "TM", "UY", "YM")

IDRID_HEADER = ["Image name", "Retinopathy grade", "Risk of macular edema "]


@dataclass
class IdridFixture:
    """Where :func:`make_idrid_fixture` wrote things and what the labels are."""

    parent: Path
    grading_dir: Path
    train_files: list[Path]
    test_files: list[Path]
    train_csv: Path
    test_csv: Path
    retinopathy: dict[str, list[int]] = field(default_factory=dict)  # split -> grades
    edema: dict[str, list[int]] = field(default_factory=dict)
    right_eye: dict[str, list[int]] = field(default_factory=dict)  # split -> indices drawn as right eyes


@dataclass
class JaffeFixture:
    """Where :func:`make_jaffe_fixture` wrote things, and the labels the loader should find."""

    root: Path
    tiffs: list[Path]
    ratings_file: Path
    picture_ids: list[str]
    labels: list[int]  # argmax labels, in the order of ``tiffs``


def _write_image(path: Path, image: np.ndarray, params: Sequence[int] = ()) -> None:
    if not cv2.imwrite(str(path), image, list(params)):
        raise OSError(f"could not write {path}")


def _idrid_image(right_eye: bool, height: int = 48, width: int = 4288, seed: int = 0) -> np.ndarray:
    """A synthetic BGR "fundus" of the real IDRiD width.

    Columns outside the paper's crop are white, so a test can see whether the crop happened; the
    yellow "optic disc" lies left (left eye) or right (right eye), so after the flips all lie alike.
    """
    rng = np.random.default_rng(seed)
    img = np.zeros((height, width, 3), np.uint8)
    img[:, :] = (255, 255, 255)
    inner = img[:, IDRID_CROP_START:IDRID_CROP_STOP]
    inner[:] = (30, 50, 140)  # BGR: dark red
    inner += rng.integers(0, 12, size=inner.shape, dtype=np.uint8)
    w = inner.shape[1]
    disc = slice(int(0.05 * w), int(0.25 * w))
    if right_eye:
        disc = slice(w - disc.stop, w - disc.start)
    inner[height // 4 : 3 * height // 4, disc] = (60, 230, 250)  # BGR: yellow
    return img


def write_idrid_csv(
    path: Path,
    rows: Sequence[Sequence],
    header: Sequence[str] = IDRID_HEADER,
    trailing_columns: int = 8,
    trailing_blank_rows: int = 1,
) -> Path:
    """Write a grading CSV like the official one (header with trailing space, empty trailing columns)."""
    pad = "," * trailing_columns
    lines = [",".join(header) + pad]
    lines += [",".join(str(v) for v in row) + pad for row in rows]
    lines += [pad] * trailing_blank_rows
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def make_idrid_fixture(
    root: str | os.PathLike,
    n_train: int = 10,
    n_test: int = 6,
    height: int = 48,
    width: int = 4288,
) -> IdridFixture:
    """Write a miniature IDRiD "B. Disease Grading" tree under ``root``.

    Introduced in chapter 1 (``01_structured_images``). Image ``i`` of a split has retinopathy
    grade ``i % 5`` and edema risk ``i % 3``, and is a right eye iff ``i`` is in the paper's flip list.
    """
    parent = Path(root)
    grading = parent / IDRID_LAYOUT["grading"]
    fx = IdridFixture(
        parent=parent,
        grading_dir=grading,
        train_files=[],
        test_files=[],
        train_csv=grading / IDRID_LAYOUT["groundtruths"] / IDRID_LAYOUT["train_csv"],
        test_csv=grading / IDRID_LAYOUT["groundtruths"] / IDRID_LAYOUT["test_csv"],
    )
    for split, n, folder_key, csv_path, flips in (
        ("train", n_train, "train_images", fx.train_csv, IDRID_FLIP_TRAIN),
        ("test", n_test, "test_images", fx.test_csv, IDRID_FLIP_TEST),
    ):
        folder = grading / IDRID_LAYOUT["images"] / IDRID_LAYOUT[folder_key]
        folder.mkdir(parents=True, exist_ok=True)
        rows, files = [], []
        flip_set = set(flips)
        for i in range(n):
            name = f"IDRiD_{i + 1:03d}"
            path = folder / f"{name}.jpg"
            img = _idrid_image(i in flip_set, height, width, seed=i + (0 if split == "train" else 1000))
            _write_image(path, img, [cv2.IMWRITE_JPEG_QUALITY, 95])
            files.append(path)
            rows.append((name, i % 5, i % 3))
        write_idrid_csv(csv_path, rows)
        getattr(fx, f"{split}_files").extend(files)
        fx.retinopathy[split] = [r[1] for r in rows]
        fx.edema[split] = [r[2] for r in rows]
        fx.right_eye[split] = [i for i in range(n) if i in flip_set]
    return fx


def _face(label: int, seed: int, size: int = 256) -> np.ndarray:
    """A synthetic grey 'face': ellipse, eyes, and a mouth whose shape depends on the label."""
    rng = np.random.default_rng(seed)
    img = np.full((size, size), 90, np.uint8)
    c = size // 2
    cv2.ellipse(img, (c, c), (size // 3, int(size / 2.4)), 0, 0, 360, 170, -1)
    for dx in (-size // 8, size // 8):
        cv2.circle(img, (c + dx, c - size // 10), size // 28, 40, -1)
    mouth_h = 4 + 6 * label
    cv2.ellipse(img, (c, c + size // 5), (size // 8, mouth_h), 0, 0, 360, 60, -1)
    noise = rng.integers(-6, 7, size=img.shape)
    return np.clip(img.astype(int) + noise, 0, 255).astype(np.uint8)


def write_jaffe_ratings(
    path: Path,
    rows: Sequence[tuple[str, Sequence[float]]],
    columns: Sequence[str] = JAFFE_RATING_COLUMNS,
    layout: str = "readme",
    second_table: Sequence[tuple[str, Sequence[float]]] | None = None,
    second_header: bool = True,
) -> Path:
    """Write JAFFE semantic ratings: a header ``#  HAP ... PIC`` then numbered rows.

    ``layout="readme"`` surrounds the table(s) with documentation text, ``"table"`` writes it bare;
    ``second_table`` adds a "fear excluded" table, with or without a header line.
    """

    def table(cols: Sequence[str], body: Sequence[tuple[str, Sequence[float]]], header: bool = True) -> list[str]:
        out = ["#  " + "  ".join(cols) + "  PIC"] if header else []
        for k, (pic, vals) in enumerate(body, start=1):
            out.append(f"{k} " + " ".join(f"{v:.2f}" for v in vals) + f" {pic}")
        return out

    lines: list[str] = []
    if layout == "readme":
        lines += [
            "The Japanese Female Facial Expression (JAFFE) Database (synthetic test fixture)",
            "",
            "Images are 256x256 gray level, in .tiff format, with no compression.",
            "",
            "Semantic Ratings Data",
            "",
            "Averaged over the subjects; 1 = low, 5 = high.",
            "",
        ]
    lines += table(columns, rows)
    if second_table is not None:
        lines += ["", "Semantic Ratings Data (Fear Excluded)", ""]
        lines += table([c for c in columns if c != "FEA"], second_table, second_header)
    if layout == "readme":
        lines += ["", "Please cite the publication listed above in any work that uses the images."]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def make_jaffe_fixture(
    root: str | os.PathLike,
    n_images: int = 30,
    layout: str = "readme",
    fear_column: bool = True,
    seed: int = 0,
) -> JaffeFixture:
    """Write ``n_images`` grey 256 x 256 TIFFs named like ``KA.AN1.39.tiff`` and a ratings file.

    Introduced in chapter 1 (``01_structured_images``). Labels cycle through the emotions; with
    ``layout="readme"`` a second "fear excluded" table would give other labels, so that a test
    sees the first table win.
    """
    root = Path(root)
    img_dir = root / "jaffe"
    img_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    columns = list(JAFFE_RATING_COLUMNS) if fear_column else [c for c in JAFFE_RATING_COLUMNS if c != "FEA"]
    n_labels = len(columns)
    counters: dict[tuple[str, str], int] = {}
    tiffs, pics, labels, rows, second = [], [], [], [], []
    for i in range(n_images):
        model = _JAFFE_MODELS[i % len(_JAFFE_MODELS)]
        code = JAFFE_CODES[(i // len(_JAFFE_MODELS) + i) % len(JAFFE_CODES)]
        k = counters.get((model, code), 0) + 1
        counters[(model, code)] = k
        pic = f"{model}-{code}{k}"
        label = i % n_labels
        vals = rng.uniform(1.2, 2.8, size=n_labels)
        vals[label] = rng.uniform(3.5, 4.9)
        path = img_dir / f"{model}.{code}{k}.{i + 1}.tiff"
        _write_image(path, _face(label, seed * 1000 + i), [cv2.IMWRITE_TIFF_COMPRESSION, 1])
        tiffs.append(path)
        pics.append(pic)
        labels.append(JAFFE_RATING_COLUMNS.index(columns[label]))
        rows.append((pic, vals))
        alt = np.full(5, 1.5)
        alt[(label + 1) % 5] = 4.8  # deliberately a different winner
        second.append((pic, alt))
    name = "README_FIRST.txt" if layout == "readme" else "ratings.txt"
    rfile = write_jaffe_ratings(
        root / name,
        rows,
        columns,
        layout,
        second if (layout == "readme" and fear_column) else None,
    )
    order = sorted(range(n_images), key=lambda j: tiffs[j].name)
    return JaffeFixture(
        root=root,
        tiffs=[tiffs[j] for j in order],
        ratings_file=rfile,
        picture_ids=[pics[j] for j in order],
        labels=[labels[j] for j in order],
    )


def make_folder_fixture(
    root: str | os.PathLike,
    classes: Sequence[str] = ("glaucoma", "normal"),
    n_per_class: int = 6,
    size: tuple[int, int] = (24, 32),
    ext: str = ".png",
    layout: str = "folders",
    colour: bool = True,
    label_style: str = "names",
    seed: int = 0,
) -> list[tuple[Path, int]]:
    """Write a small structured set: ``root/<class>/*<ext>``, or ``root/images/*`` and ``root/labels.csv``.

    Introduced in chapter 1 (``01_structured_images``). Returns ``(path, label index)`` pairs.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    out: list[tuple[Path, int]] = []
    csv_lines = ["path,label"]
    names = sorted(classes)
    h, w = size
    for label, cls in enumerate(names):
        for j in range(n_per_class):
            folder = root / cls if layout == "folders" else root / "images"
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{cls}_{j:02d}{ext}"
            base = rng.integers(20, 60, size=(h, w, 3) if colour else (h, w))
            base[h // 3 : 2 * h // 3, (w // 4) * (1 + label) : (w // 4) * (2 + label)] += 150
            if ext == ".npy":
                np.save(path, (base * 1.5).astype(np.float32))  # "thickness" in micrometres
            else:
                _write_image(path, base.astype(np.uint8))
            out.append((path, label))
            rel = path.relative_to(root).as_posix()
            csv_lines.append(f"{rel},{cls if label_style == 'names' else label}")
    if layout == "csv":
        (root / "labels.csv").write_text("\n".join(csv_lines) + "\n", encoding="utf-8")
    return out


def make_medmnist_fixture(
    root: str | os.PathLike,
    flag: str = "retinamnist",
    size: int = 28,
    counts: tuple[int, int, int] = (20, 5, 10),
    n_classes: int = 5,
    channels: int = 3,
    seed: int = 0,
    multilabel: bool = False,
) -> Path:
    """Write ``{flag}.npz`` (or ``{flag}_{size}.npz``) with the official keys and (n, 1) uint8 labels.

    Introduced in chapter 1 (``01_structured_images``).
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in zip(("train", "val", "test"), counts):
        shape = (n, size, size, 3) if channels == 3 else (n, size, size)
        arrays[f"{split}_images"] = rng.integers(0, 256, size=shape, dtype=np.uint8)
        if multilabel:
            arrays[f"{split}_labels"] = rng.integers(0, 2, size=(n, 14), dtype=np.uint8)
        else:
            arrays[f"{split}_labels"] = (np.arange(n) % n_classes).astype(np.uint8)[:, None]
    path = root / medmnist_filename(flag, size)
    np.savez_compressed(path, **arrays)
    return path
