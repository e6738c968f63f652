"""MedMNIST (e.g. RetinaMNIST) from the official ``.npz`` files.

Introduced in chapter 1 (``01_structured_images``). MedMNIST (Yang et al., 2023;
https://medmnist.com, CC BY 4.0 for most sets) ships each set as ``{flag}.npz`` (28 px) or
``{flag}_{size}.npz`` with official train/val/test splits. The paper's protocol has only a
training and a test set, so by default the validation images join the training set.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import cv2
import numpy as np
import torch

from ..files import file_sha256
from ..paths import data_dir
from .base import DataError, StructuredDataset
from .real import as_size, make_real_dataset, resize_image, stack_to_tensor, to_grey
from .standardization import fit_standardization

#: Image sizes MedMNIST+ provides.
MEDMNIST_SIZES = (28, 64, 128, 224)
#: Arrays every MedMNIST ``.npz`` holds.
MEDMNIST_KEYS = ("train_images", "train_labels", "val_images", "val_labels", "test_images", "test_labels")

#: The 2-D MedMNIST sets by flag: (name as printed, classes, channels, licence), as MedMNIST v3
#: publishes them (``medmnist.INFO``); kept here so that the names, stand-ins and data/README.md
#: work without the medmnist package. The loader takes the classes and channels from the file.
MEDMNIST_SETS: dict[str, tuple[str, int, int, str]] = {
    "pathmnist": ("PathMNIST", 9, 3, "CC BY 4.0"),
    "chestmnist": ("ChestMNIST", 14, 1, "CC BY 4.0"),
    "dermamnist": ("DermaMNIST", 7, 3, "CC BY-NC 4.0"),
    "octmnist": ("OCTMNIST", 4, 1, "CC BY 4.0"),
    "pneumoniamnist": ("PneumoniaMNIST", 2, 1, "CC BY 4.0"),
    "retinamnist": ("RetinaMNIST", 5, 3, "CC BY 4.0"),
    "breastmnist": ("BreastMNIST", 2, 1, "CC BY 4.0"),
    "bloodmnist": ("BloodMNIST", 8, 3, "CC BY 4.0"),
    "tissuemnist": ("TissueMNIST", 8, 1, "CC BY 4.0"),
    "organamnist": ("OrganAMNIST", 11, 1, "CC BY 4.0"),
    "organcmnist": ("OrganCMNIST", 11, 1, "CC BY 4.0"),
    "organsmnist": ("OrganSMNIST", 11, 1, "CC BY 4.0"),
}
#: Sets whose images carry several labels at once; a single-label classifier cannot learn them.
MULTI_LABEL_SETS = ("chestmnist",)


def medmnist_info(flag: str) -> dict | None:
    """``medmnist.INFO[flag]`` with the medmnist package installed, else ``None``."""
    mm = _import_medmnist()
    info = getattr(mm, "INFO", {}).get(flag) if mm is not None else None
    return dict(info) if info else None


def medmnist_filename(flag: str, size: int = 28) -> str:
    """``"retinamnist", 28`` -> ``"retinamnist.npz"``; other sizes -> ``"retinamnist_64.npz"``.

    Introduced in chapter 1 (``01_structured_images``).
    """
    return f"{flag}.npz" if size == 28 else f"{flag}_{size}.npz"


def _import_medmnist():
    try:
        return importlib.import_module("medmnist")
    except ImportError:
        return None


def _download(flag: str, root: Path, size: int) -> None:
    mm = _import_medmnist()
    if mm is None:
        raise DataError(
            "download=True needs the 'medmnist' package: pip install 'medmnist>=3' "
            "(or pip install 'gsa-utils[medmnist]'), or download the .npz by hand "
            "(see data/README.md)"
        )
    info = getattr(mm, "INFO", {}).get(flag)
    if info is None:
        raise DataError(f"unknown MedMNIST flag {flag!r}; known: {sorted(getattr(mm, 'INFO', {}))}")
    cls = getattr(mm, info["python_class"])
    root.mkdir(parents=True, exist_ok=True)
    try:
        cls(split="train", download=True, root=str(root), size=size)
    except Exception as exc:
        raise DataError(f"MedMNIST download of {medmnist_filename(flag, size)} into {root} failed: {exc}") from None


def _resize_stack(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if images.shape[1:3] == size:
        return images
    shrink = size[0] <= images.shape[1] and size[1] <= images.shape[2]
    interp = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    return np.stack([resize_image(im, size, interp) for im in images])


def _channels(images: np.ndarray, channels: int | None) -> np.ndarray:
    colour = images.ndim == 4 and images.shape[3] == 3
    if channels is None:
        return images
    if channels == 3 and not colour:
        g = images if images.ndim == 3 else images[..., 0]
        return np.repeat(g[..., None], 3, axis=3)
    if channels == 1 and colour:
        return np.stack([to_grey(im) for im in images])
    return images


def load_medmnist(
    flag: str = "retinamnist",
    root: str | os.PathLike | None = None,
    size: int = 28,
    download: bool = False,
    merge_val: bool = True,
    image_size: int | tuple[int, int] | None = None,
    channels: int | None = None,
    standardize: bool = True,
    verify_md5: bool = False,
) -> StructuredDataset:
    """Load a 2-D single-label MedMNIST dataset (default RetinaMNIST) as a StructuredDataset.

    Introduced in chapter 1 (``01_structured_images``). Standardisation as for every loader
    (:mod:`gsa_utils.data.registry`); class names from the medmnist package when installed.

    Parameters
    ----------
    root
        Folder of the ``.npz`` files; default ``<data folder>/medmnist``.
    size
        Which file: 28 (``{flag}.npz``), 64, 128 or 224 (``{flag}_{size}.npz``).
    download
        Fetch an absent file with the ``medmnist`` package; otherwise it is a DataError.
    merge_val
        Append the validation images to the training set (``meta["val_index"]``), else keep
        them in ``meta["x_val"]``, ``meta["y_val"]``.
    image_size
        Resize (``INTER_AREA`` shrinking, ``INTER_LINEAR`` enlarging); ``None`` keeps ``size``.
    channels
        ``None`` as the file stores them, 3 replicates grey, 1 converts to grey.
    verify_md5
        Compare the file's MD5 with the one the medmnist package lists.
    """
    if not isinstance(flag, str) or not flag:
        raise DataError(f"flag must be a MedMNIST name such as 'retinamnist', got {flag!r}")
    flag = flag.lower()
    if size not in MEDMNIST_SIZES:
        raise DataError(f"size must be one of {MEDMNIST_SIZES}, got {size!r}")
    if channels not in (1, 3, None):
        raise DataError(f"channels must be 1, 3 or None, got {channels!r}")
    out_size = as_size(image_size) if image_size is not None else None
    root = Path(os.path.abspath(Path(root).expanduser() if root is not None else data_dir() / "medmnist"))
    path = root / medmnist_filename(flag, size)
    if not path.is_file():
        if not download:
            elsewhere = [
                p
                for p in (Path("~/.medmnist").expanduser() / path.name, Path.cwd() / "data" / "medmnist" / path.name)
                if p.is_file() and p.absolute() != path
            ]
            hint = (
                f"; a copy exists at {elsewhere[0].absolute()}: move it there, or pass root= to load_medmnist"
                if elsewhere
                else ""
            )
            raise DataError(
                f"{path}: MedMNIST file not found; put {path.name} there (see data/README.md; the "
                f"command line looks in $GSA_DATA_DIR/medmnist), or pass download=True to load_medmnist "
                f"(needs the medmnist package and internet){hint}"
            )
        _download(flag, root, size)
        if not path.is_file():
            raise DataError(f"{path}: still missing after download")

    info = medmnist_info(flag)
    if info and "multi-label" in str(info.get("task", "")) or flag in MULTI_LABEL_SETS:
        raise DataError(
            f"{path}: {flag} is a multi-label task ({(info or {}).get('task', 'multi-label')}): every "
            f"image has several labels at once, and gsa_utils trains single-label classifiers; "
            f"choose a single-label MedMNIST set"
        )
    if verify_md5:
        key = "MD5" if size == 28 else f"MD5_{size}"
        expected = info.get(key) if info else None
        if expected is None:
            raise DataError(f"verify_md5=True needs the medmnist package's checksum for {path.name}")
        got = file_sha256(path, "md5")
        if got != expected:
            raise DataError(f"{path}: MD5 {got} differs from the published {expected}; download it again")

    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in MEDMNIST_KEYS if k not in z.files]
            if missing:
                raise DataError(f"{path}: missing arrays {missing} (has {sorted(z.files)})")
            arrays = {k: z[k] for k in MEDMNIST_KEYS}
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"{path}: not a readable MedMNIST .npz ({exc})") from None

    labels = {}
    for split in ("train", "val", "test"):
        im, lab = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if im.ndim not in (3, 4) or (im.ndim == 4 and im.shape[3] not in (1, 3)) or im.shape[0] == 0:
            raise DataError(f"{path}: {split}_images must be N x H x W or N x H x W x 3, got {im.shape}")
        if im.shape[1:3] != (size, size):
            raise DataError(f"{path}: {split}_images are {im.shape[1]} x {im.shape[2]} but size={size}")
        if lab.ndim == 2 and lab.shape[1] != 1 or lab.ndim not in (1, 2):
            raise DataError(
                f"{path}: {split}_labels has shape {lab.shape}; only single-label tasks (N x 1) "
                f"are supported (multi-label flags such as chestmnist are not)"
            )
        lab = lab.reshape(-1)
        if lab.shape[0] != im.shape[0]:
            raise DataError(f"{path}: {split}_labels has {lab.shape[0]} entries but {split}_images has {im.shape[0]}")
        if not np.issubdtype(lab.dtype, np.integer):
            raise DataError(f"{path}: {split}_labels must be integers, got dtype {lab.dtype}")
        labels[split] = lab.astype(np.int64)
    if info and isinstance(info.get("label"), dict):
        class_names = [str(info["label"][k]) for k in sorted(info["label"], key=int)]
    else:
        class_names = [str(i) for i in range(int(max(v.max() for v in labels.values())) + 1)]
    for split, lab in labels.items():
        bad = np.flatnonzero((lab < 0) | (lab >= len(class_names)))
        if bad.size:
            raise DataError(f"{path}: {split}_labels[{bad[0]}] = {lab[bad[0]]} is outside 0..{len(class_names) - 1}")

    def prep(split: str) -> torch.Tensor:
        im = _channels(arrays[f"{split}_images"], channels)
        if out_size is not None:
            im = _resize_stack(im, out_size)
        return stack_to_tensor(im)

    x_train, x_val, x_test = prep("train"), prep("val"), prep("test")
    y_train, y_val = labels["train"], labels["val"]
    meta = {
        "dataset": f"MedMNIST {flag}",
        "file": str(path),
        "size": size,
        "image_size": tuple(x_train.shape[2:]),
        "merge_val": merge_val,
        "task": info.get("task") if info else None,
        "license": info.get("license") if info else (MEDMNIST_SETS[flag][3] if flag in MEDMNIST_SETS else None),
    }
    if merge_val:
        n = x_train.shape[0]
        meta["val_index"] = np.arange(n, n + x_val.shape[0])
        x_train = torch.cat([x_train, x_val])
        y_train = np.concatenate([y_train, y_val])
    else:
        meta["x_val"] = fit_standardization(x_train, "imagenet" if standardize else False).apply(x_val)
        meta["y_val"] = torch.as_tensor(y_val)
    description = (
        f"MedMNIST {flag} ({size} px{f', resized to {out_size[0]}x{out_size[1]}' if out_size else ''}), "
        f"{len(class_names)} classes, official test split"
        f"{', validation merged into training' if merge_val else ''}."
    )
    return make_real_dataset(
        f"medmnist-{flag}",
        x_train,
        y_train,
        x_test,
        labels["test"],
        class_names,
        "imagenet" if standardize else False,
        description,
        meta,
    )
