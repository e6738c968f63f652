"""The paper's evaluation protocol (section 4.6): CV-chosen epochs, mean and spread, t-tests.

Introduced in chapter 10 (``10_baselines``), which tells the steps. In short: cross-validate
each setting on the training set (:func:`stratified_folds`), pick the 30 epochs of highest mean
validation accuracy (:func:`select_epochs`) and the best setting (:func:`select_hyperparameters`),
retrain on the whole training set and report the test accuracy at those epochs
(:func:`protocol_accuracy`); compare models by Welch's t-test (:func:`t_test`, :func:`verdict`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from .data.base import DataError

if TYPE_CHECKING:
    import pandas as pd


#: Folds of the cross-validation on the training set (section 4.6).
N_FOLDS = 5
#: Epochs at which the test accuracy is measured (section 4.6).
N_SELECTED_EPOCHS = 30
#: Epochs measured without cross-validation in a run shorter than twice :data:`N_SELECTED_EPOCHS`.
N_FALLBACK_EPOCHS = 5
#: The paper's significance threshold ("p-values less than 0.01", section 4.6): the book's one
#: rule for "a variant against vanilla" (:func:`verdict`, :func:`compare_over_seeds`).
SIGNIFICANCE_LEVEL = 0.01


class ProtocolWarning(UserWarning):
    """The protocol had to deviate from the paper (e.g. fewer epochs than the 30 to select)."""


def stratified_folds(y: Any, k: int = N_FOLDS, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified, shuffled k-fold split of the **training** labels: ``k`` sorted (train_idx, val_idx) pairs.

    The same ``seed`` gives the same folds, so every setting is validated on identical folds.
    Raises DataError for labels that are not 1-D integers, ``k < 2``, or fewer images than folds.
    """
    if hasattr(y, "detach"):
        y = y.detach().cpu().numpy()
    y = np.asarray(y)
    if y.ndim != 1 or not (np.issubdtype(y.dtype, np.integer) or y.size == 0):
        raise DataError(f"stratified_folds: labels must be a 1-D integer array, got shape {y.shape}, dtype {y.dtype}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 2:
        raise DataError(f"stratified_folds: k must be an integer >= 2, got {k!r}")
    if len(y) < k:
        raise DataError(f"stratified_folds: {len(y)} training images cannot make {k} folds")
    from sklearn.model_selection import StratifiedKFold

    splitter = StratifiedKFold(n_splits=int(k), shuffle=True, random_state=int(seed))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        return [
            (np.sort(tr).astype(np.int64), np.sort(va).astype(np.int64))
            for tr, va in splitter.split(np.zeros(len(y)), y)
        ]


def _curve_matrix(val_acc: Any, what: str = "val_acc") -> np.ndarray:
    """folds x epochs float array from a 2-D array, a 1-D curve, or a list of equally long curves."""
    if isinstance(val_acc, (list, tuple)) and val_acc and not np.isscalar(val_acc[0]):
        lengths = {len(c) for c in val_acc}
        if len(lengths) > 1:
            raise ValueError(
                f"{what}: the folds' curves have different lengths {sorted(lengths)}; "
                "every fold must have trained for the same number of epochs"
            )
    arr = np.asarray(val_acc, dtype=float)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise ValueError(
            f"{what} must be a folds x epochs array or a 1-D curve with at least one epoch, got shape {arr.shape}"
        )
    return arr


def select_epochs(val_acc: Any, n: int = N_SELECTED_EPOCHS) -> np.ndarray:
    """The ``n`` epochs (1-based, ascending) with the highest mean validation accuracy across folds.

    ``val_acc`` is folds x epochs, or one curve. Ties go to the earlier epoch, NaN ranks last;
    with fewer than ``n`` epochs all are returned and a :class:`ProtocolWarning` is issued.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"select_epochs: n must be a positive integer, got {n!r}")
    mean = _curve_matrix(val_acc).mean(axis=0)
    n_epochs = len(mean)
    if n_epochs < n:
        warnings.warn(
            f"only {n_epochs} epochs were trained, fewer than the {n} to select: using all of them "
            "(the paper selects 30 of 250)",
            ProtocolWarning,
            stacklevel=2,
        )
        return np.arange(1, n_epochs + 1)
    key = np.where(np.isnan(mean), -np.inf, mean)
    order = np.argsort(-key, kind="stable")  # stable: equal means keep epoch order, so the earlier wins
    return np.sort(order[:n]) + 1


def fallback_epochs(n_trained: int, n: int = N_SELECTED_EPOCHS) -> np.ndarray:
    """The epochs measured when no cross-validation chooses them: the final ones, never the start.

    The last ``n`` epochs when the run has at least ``2 n``; else its last
    :data:`N_FALLBACK_EPOCHS` (at most its second half, at least its final epoch).
    """
    if isinstance(n_trained, bool) or not isinstance(n_trained, (int, np.integer)) or n_trained < 1:
        raise ValueError(f"fallback_epochs: n_trained must be a positive integer, got {n_trained!r}")
    k = n if n_trained >= 2 * n else max(1, min(N_FALLBACK_EPOCHS, n, n_trained // 2))
    return np.arange(n_trained - k + 1, n_trained + 1)


def protocol_accuracy(test_acc_per_epoch: Any, epochs: Any) -> tuple[float, float, np.ndarray]:
    """Mean, sample standard deviation (NaN for one sample) and the test accuracies at 1-based ``epochs``."""
    acc = np.asarray(test_acc_per_epoch, dtype=float).reshape(-1)
    ep = np.asarray(epochs).reshape(-1)
    if ep.size == 0:
        raise ValueError("protocol_accuracy: no epochs given")
    if not np.issubdtype(ep.dtype, np.integer):
        if not np.all(ep == np.round(ep)):
            raise ValueError(f"protocol_accuracy: epochs must be whole numbers, got {ep.tolist()}")
        ep = ep.astype(np.int64)
    bad = ep[(ep < 1) | (ep > len(acc))]
    if bad.size:
        raise ValueError(
            f"protocol_accuracy: epoch {int(bad[0])} is outside the {len(acc)} epochs of the test "
            "curve (epochs are 1-based)"
        )
    samples = acc[ep - 1]
    std = float(np.std(samples, ddof=1)) if samples.size > 1 else float("nan")
    return float(np.mean(samples)), std, samples


def t_test(a: Any, b: Any) -> float:
    """Two-sided p-value of Welch's (unpaired, unequal-variance) t-test; chapter 10 says why this test.

    Two constant samples give 1.0 when equal and 0.0 otherwise; a sample of fewer than 2 gives NaN.
    """
    from scipy import stats

    a = np.asarray(a, dtype=float).reshape(-1)
    b = np.asarray(b, dtype=float).reshape(-1)
    if a.size < 2 or b.size < 2:
        return float("nan")
    if np.ptp(a) == 0 and np.ptp(b) == 0:
        return 1.0 if a[0] == b[0] else 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        p = stats.ttest_ind(a, b, equal_var=False).pvalue
    return float(p)


def format_p(p: float) -> str:
    """A p-value as the book writes it: ``"p < 0.001"``, ``"p = 0.031"`` or ``"p = nan"``."""
    if p != p:
        return "p = nan"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def verdict(points: float, p: float) -> str:
    """The book's one verdict on a variant against a reference: Welch's p below :data:`SIGNIFICANCE_LEVEL`.

    ``points`` is the variant's mean minus the reference's. Returns ``"better"``, ``"worse"``,
    ``"no clear difference"``, or ``"too few seeds"`` when ``p`` is NaN.
    """
    if p != p:
        return "too few seeds"
    if p >= SIGNIFICANCE_LEVEL:
        return "no clear difference"
    return "better" if points > 0 else "worse"


def compare_over_seeds(accuracies: Mapping[str, Any], reference: str = "vanilla") -> pd.DataFrame:
    """Each variant against ``reference`` over seeds: one tidy table, one verdict rule.

    ``accuracies`` maps a variant to its test accuracies in [0, 1], one per seed. Returns one row
    per variant: ``seeds``, ``mean``, ``sd``, ``points`` (percentage points above the reference),
    ``p`` (:func:`t_test`) and ``verdict`` (:func:`verdict`; ``"reference"`` for the reference).
    """
    import pandas as pd

    ref = np.asarray(accuracies[reference], dtype=float)
    rows = []
    for name, values in accuracies.items():
        acc = np.asarray(values, dtype=float).reshape(-1)
        points = 100 * (acc.mean() - ref.mean())
        p = math.nan if name == reference else t_test(acc, ref)
        rows.append(
            {
                "variant": name,
                "seeds": acc.size,
                "mean": float(acc.mean()),
                "sd": float(acc.std(ddof=1)) if acc.size > 1 else math.nan,
                "points": float(points),
                "p": p,
                "verdict": "reference" if name == reference else verdict(points, p),
            }
        )
    return pd.DataFrame(rows).set_index("variant")


def select_hyperparameters(cv_results: Any, n: int = N_SELECTED_EPOCHS) -> dict:
    """The hyper-parameter setting with the highest mean CV accuracy over its selected epochs.

    Parameters
    ----------
    cv_results
        One ``{"params": {...}, "val_acc": folds x epochs}`` per setting, or a mapping from a
        label (a tuple of (name, value) pairs becomes the params dict) to ``val_acc``.

    Returns
    -------
    dict
        The winner's ``params``, ``score``, ``epochs`` and ``n_folds``; ``ranking``, every setting
        best first (ties to the one listed first); ``notes``, deviations from the paper in words.
    """
    if isinstance(cv_results, Mapping):
        entries = [{"params": dict(k) if isinstance(k, tuple) else k, "val_acc": v} for k, v in cv_results.items()]
    else:
        entries = list(cv_results)
    if not entries:
        raise ValueError("select_hyperparameters: no cross-validation results given")
    ranking = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, Mapping) or "val_acc" not in entry:
            raise ValueError(f"select_hyperparameters: entry {i} must be a dict with 'params' and 'val_acc'")
        curves = _curve_matrix(entry["val_acc"], f"entry {i} val_acc")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ProtocolWarning)
            epochs = select_epochs(curves, n)
        score = float(np.mean(curves[:, epochs - 1]))
        ranking.append(
            {"params": entry.get("params"), "score": score, "epochs": epochs, "n_folds": int(curves.shape[0])}
        )
    ranking.sort(key=lambda r: -r["score"] if not math.isnan(r["score"]) else math.inf)  # stable: ties keep their order
    notes = []
    n_available = min(len(r["epochs"]) for r in ranking)
    if n_available < n:
        notes.append(f"only {n_available} epochs trained: all used instead of the best {n}")
    return {**ranking[0], "ranking": ranking, "notes": notes}
