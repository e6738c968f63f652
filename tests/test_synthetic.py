"""Tests for the embedded synthetic datasets (gsa_utils.data.synthetic)."""

import warnings

import cv2
import numpy as np
import pytest
import torch

from gsa_utils.data import DataError, StructuredDataset
from gsa_utils.data.synthetic import (
    SYNTHETIC_DATASETS,
    drawing,
    faces,
    fundus,
    load_synthetic,
    make_digits_in_clutter,
    make_faces,
    make_fundus,
    make_oct_thickness,
)
from gsa_utils.data.synthetic import digits as digits_in_clutter
from gsa_utils.data.synthetic import oct as oct_maps

GENERATORS = {
    "fundus": make_fundus,
    "faces": make_faces,
    "oct": make_oct_thickness,
    "digits-clutter": make_digits_in_clutter,
}
NUM_CLASSES = {"fundus": 2, "faces": 3, "oct": 3, "digits-clutter": 10}
SMALL = dict(n_train=20, n_test=10, image_size=32)


@pytest.fixture(scope="module")
def small():
    """Every dataset once, small and at 32 px."""
    return {name: load_synthetic(name, **SMALL) for name in SYNTHETIC_DATASETS}


def test_names_match_generators():
    assert SYNTHETIC_DATASETS == ("fundus", "faces", "oct", "digits-clutter")
    for _name, gen in GENERATORS.items():
        assert gen.__doc__ and "Introduced in chapter 1 (``01_structured_images``)" in gen.__doc__


@pytest.mark.parametrize("name", SYNTHETIC_DATASETS)
def test_shapes_dtypes_ranges(small, name):
    ds = small[name]
    assert isinstance(ds, StructuredDataset)
    assert ds.name == name
    assert ds.source == ("embedded" if name == "digits-clutter" else "synthetic")
    assert ds.x_train.shape == (20, 3, 32, 32) and ds.x_test.shape == (10, 3, 32, 32)
    for x in (ds.x_train, ds.x_test):
        assert x.dtype == torch.float32 and x.is_contiguous()
        assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
        assert float(x.std()) > 0.05  # not blank
    for y in (ds.y_train, ds.y_test):
        assert y.dtype == torch.int64 and y.dim() == 1
    assert ds.num_classes == NUM_CLASSES[name] == len(ds.class_names)
    assert ds.mask.dtype == torch.bool and tuple(ds.mask.shape) == (32, 32)
    assert isinstance(ds.description, str) and len(ds.description) > 20


@pytest.mark.parametrize("name", SYNTHETIC_DATASETS)
def test_balanced_classes(small, name):
    ds = small[name]
    for split in ("train", "test"):
        counts = ds.class_counts(split)
        assert counts.min() >= 1 and counts.max() - counts.min() <= 1, (split, counts)


@pytest.mark.parametrize("name", SYNTHETIC_DATASETS)
def test_mask_covers_a_sensible_fraction(name):
    for size in (32, 64, 224):
        frac = float(load_synthetic(name, n_train=10, n_test=10, image_size=size).mask.float().mean())
        assert 0.03 <= frac <= 0.40, (size, frac)


@pytest.mark.parametrize("name", SYNTHETIC_DATASETS)
def test_deterministic_and_seed_dependent(small, name):
    a = small[name]
    b = load_synthetic(name, **SMALL)
    c = load_synthetic(name, **SMALL, seed=1)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.x_test, b.x_test)
    assert torch.equal(a.y_train, b.y_train) and torch.equal(a.mask, b.mask)
    assert not torch.equal(a.x_train, c.x_train)
    assert not torch.equal(a.x_test, c.x_test)


@pytest.mark.parametrize("name", SYNTHETIC_DATASETS)
def test_train_and_test_differ(small, name):
    ds = small[name]
    flat_train = ds.x_train.reshape(len(ds.x_train), -1)
    flat_test = ds.x_test.reshape(len(ds.x_test), -1)
    # no test image equals any training image
    assert float(torch.cdist(flat_test, flat_train).min()) > 1.0


@pytest.mark.parametrize("size", [16, 17, 100, 256])
def test_any_size_in_range_works(size):
    for name in SYNTHETIC_DATASETS:
        ds = load_synthetic(name, n_train=10, n_test=10, image_size=size)
        assert ds.image_shape == (3, size, size)
        assert ds.mask.any() and not ds.mask.all()


def test_fundus_three_classes():
    ds = make_fundus(n_train=9, n_test=6, image_size=32, num_classes=3)
    assert ds.class_names == ["normal", "mild", "severe"]
    assert list(ds.class_counts("train")) == [3, 3, 3]


@pytest.mark.parametrize("name", ["fundus", "faces", "oct"])
@pytest.mark.parametrize("size", [16, 32, 64])
def test_label_changes_only_masked_pixels(name, size):
    """The same scene drawn with each label differs inside the mask and nowhere else."""
    grid = drawing.Grid(size)
    if name == "fundus":
        mask = make_fundus(n_train=2, n_test=2, image_size=size).mask.numpy()
        render = lambda seed, label: fundus._render_fundus(grid, seed, label, 3)  # noqa: E731
    elif name == "faces":
        mask = faces._face_mask(grid)
        render = lambda seed, label: faces._render_face(grid, seed, label)  # noqa: E731
    else:
        mask, weight = oct_maps._oct_point_weights(grid)
        idx = np.flatnonzero(weight)
        render = lambda seed, label: oct_maps._render_oct(grid, seed, label, idx, weight.reshape(-1)[idx])  # noqa: E731
    for seed in range(12):
        images = [np.clip(render(seed, label), 0, 1) for label in range(3)]
        for a, b in ((0, 1), (1, 2), (0, 2)):
            diff = np.abs(images[a] - images[b]).max(axis=0)
            assert diff[~mask].max() == 0.0, (seed, a, b)
            assert diff[mask].max() > 0.02, (seed, a, b)


def test_digits_label_changes_only_the_paste_square():
    digits, labels = digits_in_clutter._sklearn_digits()
    grid = drawing.Grid(32)
    ds = make_digits_in_clutter(n_train=10, n_test=10, image_size=32)
    pool = np.arange(100, 200)
    a = digits_in_clutter._render_digits(grid, 5, digits[0], pool, digits, set())
    b = digits_in_clutter._render_digits(grid, 5, digits[1], pool, digits, set())
    diff = np.abs(a - b).max(axis=0)
    mask = ds.mask.numpy()
    assert diff[~mask].max() == 0.0 and diff[mask].max() > 0.3


def _logistic_accuracy(x_train, y_train, x_test, y_test) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=30, tol=1e-3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: the outside-mask fit chases noise
        clf.fit(x_train, y_train)
    return float(clf.score(x_test, y_test))


def _local_contrast(x: torch.Tensor) -> np.ndarray:
    """|image - blurred image| per pixel and channel: where small spots (lesions) are."""
    from scipy.ndimage import gaussian_filter

    x = x.numpy()
    return np.abs(x - gaussian_filter(x, (0, 0, 1.5, 1.5)))


@pytest.mark.parametrize(
    "name,kwargs",
    [
        ("fundus", dict(n_train=300, n_test=200)),
        ("faces", dict(n_train=120, n_test=150)),
        ("oct", dict(n_train=120, n_test=150)),
        ("digits-clutter", dict(n_train=200, n_test=200, num_classes=4)),
    ],
)
def test_label_is_readable_inside_the_mask_only(name, kwargs):
    """Logistic regression on the masked pixels beats one on all the other pixels by far.

    Raw pixels for faces, OCT and digits (one channel: they are grey). For the fundus a
    count of small spots is not linear in raw pixels under varying brightness, so both
    models see the local contrast instead.
    """
    ds = load_synthetic(name, image_size=32, seed=1, **kwargs)
    mask = ds.mask.numpy()
    chance = 1.0 / ds.num_classes
    if name == "fundus":
        x_train, x_test = _local_contrast(ds.x_train), _local_contrast(ds.x_test)
    elif name == "digits-clutter":
        x_train, x_test = ds.x_train[:, :1].numpy(), ds.x_test[:, :1].numpy()
    else:
        x_train, x_test = ds.x_train.numpy(), ds.x_test.numpy()

    acc = {
        where: _logistic_accuracy(
            x_train[:, :, region].reshape(len(x_train), -1),
            ds.y_train.numpy(),
            x_test[:, :, region].reshape(len(x_test), -1),
            ds.y_test.numpy(),
        )
        for where, region in (("inside", mask), ("outside", ~mask))
    }
    assert acc["inside"] >= chance + 0.25, acc
    assert acc["inside"] >= acc["outside"] + 0.25, acc
    assert acc["outside"] <= chance + 0.15, acc


def test_digits_splits_share_no_source_digit():
    ds = make_digits_in_clutter(n_train=100, n_test=100, image_size=32, seed=3)
    train, test = set(ds.meta["train_sources"]), set(ds.meta["test_sources"])
    assert len(train) >= 100 and len(test) >= 100  # targets plus distractors
    assert not train & test
    assert max(train | test) < 1797


def test_digits_targets_are_real_sklearn_digits():
    """The paste square holds an upscaled sklearn digit of the labelled class."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    ds = make_digits_in_clutter(n_train=20, n_test=10, image_size=32, num_classes=2)
    off, side = ds.meta["paste_box"]["offset"], ds.meta["paste_box"]["side"]
    crops = ds.x_train[:, 0, off : off + side, off : off + side].reshape(20, -1).numpy()
    templates = np.stack([bunch.images[bunch.target == c].mean(0) for c in (0, 1)])
    templates = np.stack([cv2.resize(t.astype(np.float32), (side, side)).ravel() for t in templates])
    crops = crops - crops.mean(1, keepdims=True)
    templates = templates - templates.mean(1, keepdims=True)
    predicted = np.argmax(crops @ templates.T / np.linalg.norm(templates, axis=1), axis=1)
    assert (predicted == ds.y_train.numpy()).mean() >= 0.9


def test_digits_too_many_requested():
    with pytest.raises(DataError, match="distinct images of digit"):
        make_digits_in_clutter(n_train=1700, n_test=100, image_size=16)


def test_load_synthetic_dispatch_and_errors():
    ds = load_synthetic("OCT", n_train=3, n_test=3, image_size=16)
    assert ds.name == "oct"
    assert load_synthetic("digits_clutter", n_train=10, n_test=10, image_size=16).name == "digits-clutter"
    with pytest.raises(DataError, match="known: fundus, faces, oct, digits-clutter"):
        load_synthetic("mnist")
    with pytest.raises(DataError, match="unknown synthetic dataset"):
        load_synthetic(None)  # type: ignore[arg-type]
    with pytest.raises(DataError, match="num_classes"):
        load_synthetic("faces", num_classes=3)


@pytest.mark.parametrize("name", SYNTHETIC_DATASETS)
@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(image_size=15), "image_size must be between 16 and 256"),
        (dict(image_size=257), "image_size must be between 16 and 256"),
        (dict(image_size=32.0), "image_size must be an integer"),
        (dict(n_train=1), "n_train=1 is smaller than"),
        (dict(n_test=0), "n_test must be >= 1"),
        (dict(n_train=True), "n_train must be an integer"),
        (dict(seed=-1), "seed must be >= 0"),
        (dict(n_train=100_000, image_size=256), "GiB"),
    ],
)
def test_bad_arguments_raise(name, kwargs, match):
    with pytest.raises(DataError, match=match) as info:
        GENERATORS[name](**kwargs)
    assert name in str(info.value)


@pytest.mark.parametrize(
    "gen,value",
    [(make_fundus, 4), (make_fundus, 1), (make_fundus, "2"), (make_digits_in_clutter, 1), (make_digits_in_clutter, 11)],
)
def test_bad_num_classes(gen, value):
    with pytest.raises(DataError, match="num_classes"):
        gen(num_classes=value)
