"""Non-deep baselines on raw pixels: logistic regression (LR) and a support vector machine (SVM).

Introduced in chapter 10 (``10_baselines``). Structured images are aligned, so raw intensities
serve as features (Xu et al., sections 4.3-4.4). Images are flattened and standardised inside each
training fold, and a cross-validated grid search on the training set picks the hyper-parameters
(the paper gives no ranges; :data:`DEFAULT_PARAM_GRIDS` are ours).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.svm import SVC

from ..data.base import DataError, validate_images, validate_labels

#: Default hyper-parameter grids (keys are the classifier's own argument names).
DEFAULT_PARAM_GRIDS: dict[str, dict[str, list]] = {
    "lr": {"C": [1e-3, 1e-2, 0.1, 1.0, 10.0]},
    "svm": {"kernel": ["linear", "rbf"], "C": [0.1, 1.0, 10.0], "gamma": ["scale"]},
}

#: Iteration cap for the LR solver: enough for small standardised problems, short on big ones.
LR_MAX_ITER = 500


def _flatten(x: np.ndarray) -> np.ndarray:
    """N x C x H x W (or any N x ...) -> N x (C*H*W)."""
    return np.asarray(x).reshape(len(x), -1)


def _as_tensor(x: Any, what: str) -> Any:
    """A numpy array (or anything array-like) as a tensor; a tensor or anything else unchanged for the checks."""
    if isinstance(x, torch.Tensor) or not isinstance(x, (np.ndarray, list, tuple)):
        return x
    try:
        return torch.as_tensor(np.asarray(x))
    except TypeError:
        raise DataError(f"{what} must hold numbers, got dtype {np.asarray(x).dtype}") from None


def _as_pixel_array(x: Any, what: str) -> np.ndarray:
    """Images N x C x H x W (tensor or numpy array) as float64 numpy, checked by :func:`validate_images`."""
    images = _as_tensor(x, what)
    if isinstance(images, torch.Tensor) and not images.is_floating_point() and images.dtype != torch.bool:
        images = images.to(torch.float64)  # integer pixel values are numbers too
    return validate_images(images, what).detach().cpu().numpy().astype(np.float64, copy=False)


def _as_label_array(y: Any, n_expected: int, what: str) -> np.ndarray:
    """Labels as a 1-D int64 numpy array of length ``n_expected``, checked by :func:`validate_labels`."""
    labels = validate_labels(_as_tensor(y, what), what=what, n_expected=n_expected)
    return labels.detach().cpu().numpy().astype(np.int64, copy=False)


def _prefixed_grid(grid: Mapping[str, Sequence] | Sequence[Mapping[str, Sequence]]) -> Any:
    """Prefix bare classifier argument names with ``clf__`` (names with ``__`` stay as given)."""
    if isinstance(grid, Mapping):
        return {(k if "__" in k else f"clf__{k}"): list(v) for k, v in grid.items()}
    return [_prefixed_grid(g) for g in grid]


def make_pixel_pipeline(kind: str, seed: int = 0) -> Pipeline:
    """The unfitted pipeline ``flatten -> scale -> clf`` for ``kind`` ``"lr"`` or ``"svm"``."""
    if kind == "lr":
        clf = LogisticRegression(max_iter=LR_MAX_ITER, random_state=seed)
    elif kind == "svm":
        clf = SVC(random_state=seed)
    else:
        raise ValueError(f"kind must be 'lr' or 'svm', got {kind!r}")
    return Pipeline(
        [
            ("flatten", FunctionTransformer(_flatten)),
            ("scale", StandardScaler()),
            ("clf", clf),
        ]
    )


def fit_pixel_baseline(
    kind: str,
    x_train: Any,
    y_train: Any,
    param_grid: Mapping[str, Sequence] | Sequence[Mapping[str, Sequence]] | None = None,
    cv: int = 5,
    seed: int = 0,
    n_jobs: int = 1,
) -> GridSearchCV:
    """Fit LR or SVM on raw pixels, choosing hyper-parameters by cross-validation on the training set.

    Parameters
    ----------
    param_grid
        Keys are the classifier's argument names (``{"C": [...]}``) or pipeline names
        (``{"clf__C": [...]}``); ``None``: :data:`DEFAULT_PARAM_GRIDS`.
    cv
        Folds; fewer when the smallest class has fewer images than that.

    Returns
    -------
    GridSearchCV
        Fitted, its ``best_estimator_`` refitted on all of ``x_train``.
    """
    if kind not in DEFAULT_PARAM_GRIDS:
        raise ValueError(f"kind must be 'lr' or 'svm', got {kind!r}")
    if cv < 2:
        raise ValueError(f"cv must be at least 2 folds, got {cv}")
    x = _as_pixel_array(x_train, "x_train")
    y = _as_label_array(y_train, len(x), "y_train")
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        raise DataError(f"y_train holds a single class ({int(classes[0])}); a classifier needs at least 2")
    if counts.min() < 2:
        rare = int(classes[np.argmin(counts)])
        raise DataError(
            f"class {rare} has only {int(counts.min())} training image(s); cross-validated "
            f"grid search needs at least 2 per class"
        )
    n_splits = int(min(cv, counts.min()))
    folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    grid = _prefixed_grid(DEFAULT_PARAM_GRIDS[kind] if param_grid is None else param_grid)
    search = GridSearchCV(
        make_pixel_pipeline(kind, seed), grid, cv=folds, scoring="accuracy", n_jobs=n_jobs, refit=True
    )
    with warnings.catch_warnings():
        # Small-C / unscaled corners of the grid may stop at LR_MAX_ITER; that is expected there.
        warnings.simplefilter("ignore", category=ConvergenceWarning)
        search.fit(x, y)
    return search


def evaluate_pixel_baseline(model: GridSearchCV, x_test: Any, y_test: Any) -> dict[str, Any]:
    """``accuracy``, ``best_params`` (without ``clf__``), ``cv_accuracy`` and ``n_test`` of a fitted baseline."""
    x = _as_pixel_array(x_test, "x_test")
    y = _as_label_array(y_test, len(x), "y_test")
    accuracy = float(np.mean(model.predict(x) == y))
    params = getattr(model, "best_params_", None)
    if params is not None:
        params = {k.split("__", 1)[1] if k.startswith("clf__") else k: v for k, v in params.items()}
    cv_accuracy = getattr(model, "best_score_", None)
    return {
        "accuracy": accuracy,
        "best_params": params,
        "cv_accuracy": None if cv_accuracy is None else float(cv_accuracy),
        "n_test": int(len(y)),
    }
