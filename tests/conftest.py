import os

import pytest
import torch

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture
def tiny_data():
    """40 random 3 x 12 x 12 images whose class is the brightness of a 4 x 4 patch."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(40, 3, 12, 12, generator=g) * 0.5
    y = torch.arange(40) % 2
    x[y == 1, :, 2:6, 2:6] += 0.5
    return x, y


@pytest.fixture
def one_thread():
    """Tiny CPU models are far faster on one thread (and two test processes do not fight over cores)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def tiny():
    """Run settings small enough to train a run in seconds on a CPU (flat names, as ``from_profile`` takes them)."""
    return dict(
        profile="smoke",
        image_size=16,
        epochs=3,
        cutoff_epoch=2,
        n_train=40,
        n_test=20,
        n_folds=2,
        hidden_channels=4,
        batch_size=16,
    )


@pytest.fixture
def tiny_args(tiny):
    """:func:`tiny` as command-line options (``--image-size 16`` ...)."""
    return [arg for name, value in tiny.items() for arg in (f"--{name.replace('_', '-')}", str(value))]


def finished_history(config, curve=None, keys=None, **extra):
    """A complete :class:`~gsa_utils.training.History` for a fabricated finished run of ``config``.

    One record per epoch ``1..config.fit.epochs`` (one for LR and SVM) with the accuracies in
    ``curve`` (0.5 when not given) under ``keys`` (``test_acc`` for the full run, ``val_acc``
    for a fold) plus ``extra``; for GSA and L1 a map after the last epoch.
    """
    import numpy as np

    from gsa_utils.history import History
    from gsa_utils.runs.config import MAP_METHODS

    n = config.fit.epochs if config.fit is not None else 1
    curve = np.full(n, 0.5) if curve is None else np.asarray(curve, dtype=float)
    assert len(curve) == n, f"{config.run_id()}: {len(curve)} accuracies for {n} epochs"
    keys = keys or (("test_acc",) if config.fold is None else ("val_acc",))
    records = [{"epoch": e + 1, "phase": 1, **{k: float(v) for k in keys}, **extra} for e, v in enumerate(curve)]
    maps = {n: np.zeros((4, 4), dtype=np.float32)} if config.method in MAP_METHODS else {}
    return History(records=records, maps=maps)
