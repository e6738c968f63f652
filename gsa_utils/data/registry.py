"""One name per dataset: the synthetic sets, the paper's data, and stand-ins when the data are absent.

Introduced in chapter 10 (``10_baselines``), where the paper's evaluation protocol runs on every
dataset by name, and used by :mod:`gsa_utils.runs`.

:func:`load_dataset` accepts the names in :data:`DATASETS` and ``"folder:<path>"``:

* ``fundus``, ``faces``, ``oct``, ``digits-clutter``: always synthetic
  (:mod:`gsa_utils.data.synthetic`).
* ``idrid-retinopathy``, ``idrid-edema``: IDRiD under ``<data_dir>/idrid/`` (the "B. Disease
  Grading" folder or its parent, :func:`~gsa_utils.data.idrid.load_idrid`); stand-in: ``fundus``
  with as many grades as the generator makes up to the real count (3; retinopathy has 5).
* ``jaffe``: JAFFE under ``<data_dir>/jaffe/`` (tiffs and ratings file,
  :func:`~gsa_utils.data.jaffe.load_jaffe`); stand-in: ``faces`` (3 expressions; JAFFE has 6).
* ``retinamnist`` and every other single-label 2-D MedMNIST set by its flag (``pneumoniamnist``,
  ``breastmnist``, ``dermamnist``, ``octmnist``, ``bloodmnist``, ``pathmnist``, ``organamnist``, ...;
  :data:`MEDMNIST_NAMES`): ``<data_dir>/medmnist/<flag>.npz`` or ``<flag>_{64,128,224}.npz``
  (:func:`~gsa_utils.data.medmnist.load_medmnist`; classes and channels from the file);
  stand-in: ``fundus`` for RetinaMNIST (3 of 5 grades) and the other colour sets, ``oct`` for
  the grey ones. ChestMNIST (multi-label) is refused by name.
* ``glaucoma-oct``: always the synthetic ``oct`` stand-in (3 severities, as the paper's): the
  paper's glaucoma OCT data are private.
* ``folder:<path>``: your own images (:func:`~gsa_utils.data.folder.load_folder`), the path
  absolute, relative to the working directory, or relative to ``data_dir``; no stand-in: a
  missing folder is an error.

Where each name's files are looked for, and the plan :func:`load_dataset` follows, are in
:mod:`gsa_utils.data.plan` (:func:`plan_data`, re-exported here). Image sizes: ``image_size=None``
keeps each dataset's own size (:data:`NATIVE_SIZES`; a ``folder:`` set as its files are), a
number resizes.

A stand-in is an ordinary synthetic dataset whose ``source`` is ``"synthetic"``, with
``meta["stand_in_for"]`` set to the requested name; :func:`describe_source` gives the
one-line statement notebooks print at the top, e.g. *"IDRiD not found under
data/idrid: using the synthetic fundus stand-in (3 classes; IDRiD retinopathy has 5, more
than the fundus generator makes) (the data folder is data: the repository's data folder
($GSA_DATA_DIR is not set))"*. Its paths are written by :func:`gsa_utils.paths.shown_path`:
from the data folder, never the machine's folders.
"""

from __future__ import annotations

import os
from dataclasses import replace

from ..paths import DATA_DIR_ENV, shown_path
from .base import DataError, StructuredDataset
from .medmnist import MEDMNIST_SETS
from .plan import (
    DATASETS,
    MEDMNIST_NAMES,
    REAL_NAMES,
    REAL_SUBFOLDERS,
    SYNTHETIC_NAMES,
    DataPlan,
    check_dataset_name,
    normalise_dataset_name,
    plan_data,
)
from .standardization import standardize_dataset

__all__ = [
    "DATASETS",
    "SYNTHETIC_NAMES",
    "REAL_NAMES",
    "MEDMNIST_NAMES",
    "DATA_DIR_ENV",
    "REAL_SUBFOLDERS",
    "STAND_INS",
    "NATIVE_SIZES",
    "DataPlan",
    "plan_data",
    "check_dataset_name",
    "load_dataset",
    "describe_source",
    "is_stand_in",
    "normalise_dataset_name",
]

#: name -> (synthetic generator, number of classes of the real data, human-readable name).
STAND_INS: dict[str, tuple[str, int, str]] = {
    "idrid-retinopathy": ("fundus", 5, "IDRiD retinopathy"),
    "idrid-edema": ("fundus", 3, "IDRiD macular edema"),
    "jaffe": ("faces", 6, "JAFFE"),
    "glaucoma-oct": ("oct", 3, "the paper's glaucoma OCT set"),
    **{
        flag: ("fundus" if MEDMNIST_SETS[flag][2] == 3 else "oct", MEDMNIST_SETS[flag][1], MEDMNIST_SETS[flag][0])
        for flag in MEDMNIST_NAMES
    },
}

#: Image side each dataset is loaded at with ``image_size=None``: IDRiD at the paper's 224
#: (the photographs are 4288 x 2848), JAFFE at its 256, RetinaMNIST at the smallest file
#: present (28 for ``retinamnist.npz``; the 28 here is for its stand-in), synthetic sets
#: at their generators' default. Stand-ins are made at the size of the data they replace.
NATIVE_SIZES: dict[str, int] = {
    "idrid-retinopathy": 224,
    "idrid-edema": 224,
    "jaffe": 256,
    "glaucoma-oct": 64,
    "fundus": 64,
    "faces": 64,
    "oct": 64,
    "digits-clutter": 64,
    **{flag: 28 for flag in MEDMNIST_NAMES},
}

_GENERATOR_WORDS = {"fundus": "fundus", "faces": "faces", "oct": "OCT thickness-map"}


def _synthetic(generator: str, image_size: int | None, seed: int, num_classes: int | None = None) -> StructuredDataset:
    """Generate a synthetic set; with ``num_classes``, the most classes up to it the generator makes."""
    from .synthetic import load_synthetic

    size = {} if image_size is None else {"image_size": image_size}
    if num_classes is not None:
        for k in range(num_classes, 1, -1):
            try:
                return load_synthetic(generator, seed=seed, num_classes=k, **size)
            except DataError:
                continue  # this generator cannot make k classes (or takes no num_classes): try fewer
    return load_synthetic(generator, seed=seed, **size)


def _stand_in(name: str, image_size: int | None, seed: int, reason: str) -> StructuredDataset:
    generator, real_classes, label = STAND_INS[name]
    ds = _synthetic(generator, image_size or NATIVE_SIZES[name], seed, real_classes)
    k = ds.num_classes
    if k == real_classes:
        classes = f"{k} classes, as {label}"
    else:
        classes = (
            f"{k} classes; {label} has {real_classes}, more than the {generator} generator makes"
            if k < real_classes
            else f"{k} classes; {label} has {real_classes}"
        )
    statement = f"{reason}: using the synthetic {_GENERATOR_WORDS[generator]} stand-in ({classes})"
    meta = dict(ds.meta)
    meta.update(
        {
            "stand_in_for": name,
            "stand_in_generator": generator,
            "real_num_classes": real_classes,
            "source_statement": statement,
        }
    )
    return replace(
        ds, name=name, source="synthetic", meta=meta, description=f"Synthetic stand-in for {label}. " + ds.description
    )


def load_dataset(
    name: str,
    image_size: int | None = None,
    seed: int = 0,
    data_dir: str | os.PathLike | None = None,
    standardize: bool = True,
    cache_dir: str | os.PathLike | bool | None = None,
    merge_val: bool = True,
    *,
    channels: int | None = None,
    csv: str | os.PathLike | None = None,
    split_file: str | os.PathLike | None = None,
    duplicates: str = "error",
    resize: bool = False,
) -> StructuredDataset:
    """Load a dataset by name, or its synthetic stand-in when its files are absent.

    Introduced in chapter 10 (``10_baselines``).

    Parameters
    ----------
    name
        One of :data:`DATASETS` or ``"folder:<path>"`` (see the module docstring for where
        each is looked up and what stands in for it).
    image_size
        ``None`` (default): each dataset's own size (:data:`NATIVE_SIZES`; a ``folder:``
        set as its files are, which must then share one size). A number: square images of
        that side (real data are resized, synthetic sets generated at it; 16 to 256).
    seed
        Seed of the synthetic generators and of the random 80/20 split of JAFFE and
        ``folder:`` data (IDRiD and MedMNIST have official splits).
    data_dir
        Folder holding ``idrid/``, ``jaffe/``, ``medmnist/``; ``None`` uses
        :func:`gsa_utils.paths.data_dir` (``$GSA_DATA_DIR`` or ``<repo>/data``).
    standardize
        Standardise with the ImageNet means and stds as the paper does (real loaders do it
        themselves; synthetic sets are standardised here too, so every dataset arrives
        preprocessed alike). ``False`` keeps the unstandardised pictures, e.g. to show them,
        or to standardise with the statistics of a run's own training folds
        (:func:`~gsa_utils.data.standardization.standardize_dataset`;
        ``meta["standardize_default"]`` says which mode ``True`` would have used).
    cache_dir
        The loaders' cache of decoded images (IDRiD, JAFFE, ``folder:``; see
        :mod:`gsa_utils.data.cache`): ``None`` the default folder, a path, or ``False`` (off).
    merge_val
        MedMNIST's official validation split: ``True`` joins it to the training set (the
        paper's train/test protocol); ``False`` keeps it in ``meta["x_val"]``/``meta["y_val"]``
        for epoch or hyper-parameter selection. Other datasets have no official validation split.
    channels
        ``None`` (default): the images' own channels (a ``folder:`` set grey when all its
        images are grey, ``channels="auto"`` of :func:`~gsa_utils.data.folder.load_folder`;
        MedMNIST as its file stores them). 1 converts colour to grey, 3 replicates grey.
        ``folder:`` and MedMNIST sets only.
    csv, split_file, duplicates, resize
        ``folder:`` sets only: :func:`~gsa_utils.data.folder.load_folder`'s options (a
        ``path,label`` CSV instead of a folder per class, a fixed train/test split, whether
        byte-identical files are an error or a warning, and whether images of different
        sizes may be resized to one).

    Returns
    -------
    StructuredDataset
        ``name`` is the requested name. A stand-in has ``source == "synthetic"`` and
        ``meta["stand_in_for"] == name``; every dataset has ``meta["source_statement"]``,
        the line :func:`describe_source` returns, and ``meta["standardize_default"]``.

    Raises
    ------
    DataError
        Unknown name (the message lists the known ones), a ``folder:`` path that does not
        exist, or a real dataset folder that exists but cannot be read (the loader's message).
    """
    if image_size is not None and (isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1):
        raise DataError(f"load_dataset({name!r}): image_size must be a positive integer or None, got {image_size!r}")
    plan = plan_data(name, image_size, data_dir)
    key = plan.name
    folder_options = {"csv": csv, "split_file": split_file, "duplicates": duplicates, "resize": resize}
    given = [k for k, v in folder_options.items() if v != {"duplicates": "error", "resize": False}.get(k)]
    if given and plan.kind != "folder":
        raise DataError(f"load_dataset({name!r}): {', '.join(given)} apply to 'folder:<path>' datasets only")
    if channels is not None and plan.kind != "folder" and key not in MEDMNIST_NAMES:
        raise DataError(
            f"load_dataset({name!r}): channels={channels!r} applies to 'folder:<path>' and MedMNIST datasets only"
        )

    def finish(ds: StructuredDataset, statement: str, synthetic: bool) -> StructuredDataset:
        meta = dict(ds.meta)
        meta["source_statement"] = statement
        meta.setdefault("standardize_default", "imagenet")
        meta["data_plan"] = {"kind": plan.kind, "path": str(plan.path) if plan.path else None}
        ds = replace(ds, name=key, meta=meta)
        return standardize_dataset(ds, "imagenet") if synthetic and standardize else ds

    loader_options = {"standardize": standardize, "progress": False, "cache_dir": cache_dir}
    if plan.kind == "folder":
        from .folder import load_folder

        ds = load_folder(
            plan.path,
            image_size=image_size,
            seed=seed,
            channels="auto" if channels is None else channels,
            **folder_options,
            **loader_options,
        )
        return finish(
            ds,
            f"{key}: your own images from {shown_path(plan.path)} ({_sizes(ds)}, "
            f"{ds.image_shape[1]}x{ds.image_shape[2]} px, {ds.image_shape[0]} channel(s))",
            False,
        )
    if plan.kind == "synthetic":
        ds = _synthetic(key, image_size, seed)
        origin = "synthetic data generated" if ds.source == "synthetic" else "built from bundled data"
        h = ds.image_shape[1]
        return finish(
            ds,
            f"{key}: {origin} by gsa_utils (seed {seed}, {h} px, {_sizes(ds)})",
            True,
        )
    if plan.kind == "stand-in":
        ds = _stand_in(key, image_size, seed, plan.reason)
        return finish(ds, ds.meta["source_statement"] + (f" ({plan.hint})" if plan.hint else ""), True)

    if key in ("idrid-retinopathy", "idrid-edema"):
        from .idrid import load_idrid

        ds = load_idrid(
            plan.path,
            task=key.split("-", 1)[1],
            image_size=image_size or NATIVE_SIZES[key],
            **loader_options,
        )
        what = "IDRiD"
    elif key == "jaffe":
        from .jaffe import load_jaffe

        ds = load_jaffe(
            plan.path,
            image_size=image_size or NATIVE_SIZES[key],
            seed=seed,
            **loader_options,
        )
        what = "JAFFE"
    else:
        from .medmnist import load_medmnist

        size = plan.file_size
        scaled = image_size is not None and image_size != size
        ds = load_medmnist(
            key,
            root=plan.path.parent,
            size=size,
            image_size=image_size if scaled else None,
            standardize=standardize,
            merge_val=merge_val,
            channels=channels,
        )
        what = (
            f"{MEDMNIST_SETS[key][0]} ({plan.path.name}{', grey' if ds.image_shape[0] == 1 else ''}"
            f"{f', resized from {size} to {image_size} px' if scaled else ''})"
        )
    where = shown_path(plan.path.parent if key in MEDMNIST_NAMES else plan.path)
    return finish(
        ds,
        f"{what} loaded from {where} ({_sizes(ds)})",
        False,
    )


def _sizes(ds: StructuredDataset) -> str:
    """``"120 train / 30 test, 5 classes"``, with ``" / N val"`` after train when a validation split is kept."""
    val = f" / {len(ds.meta['y_val'])} val" if "y_val" in ds.meta else ""
    return f"{len(ds.y_train)} train{val} / {len(ds.y_test)} test, {ds.num_classes} classes"


def is_stand_in(ds: StructuredDataset) -> bool:
    """True when ``ds`` is a synthetic stand-in for absent real data.

    Introduced in chapter 10 (``10_baselines``).
    """
    return bool(ds.meta.get("stand_in_for"))


def describe_source(ds: StructuredDataset) -> str:
    """One plain line saying where the data come from, for the top of a notebook.

    Introduced in chapter 10 (``10_baselines``).

    Examples: ``"IDRiD not found under data/idrid (...): using the synthetic
    fundus stand-in (3 classes; IDRiD macular edema has 3)"``, ``"JAFFE loaded from
    $GSA_DATA_DIR/jaffe (170 train / 43 test, 6 classes)"``, ``"fundus: synthetic data
    generated by gsa_utils (seed 0, 32 px, ...)"``.
    """
    statement = ds.meta.get("source_statement")
    if statement:
        return str(statement)
    if is_stand_in(ds):
        return f"{ds.meta['stand_in_for']}: synthetic stand-in ({ds.name})"
    return f"{ds.name}: {ds.source} data ({_sizes(ds)})"
