"""Checkpoints: no code runs from a planted file, corruption is detected and recovered from."""

from __future__ import annotations

import hashlib
import io
import warnings

import pytest
import torch
from torch import nn

from gsa_utils.checkpoints import (
    CHECKPOINT_MAGIC,
    CheckpointError,
    CheckpointRecoveryWarning,
    load_checkpoint,
    load_or_restart,
    previous_path,
    remove_checkpoint,
    save_checkpoint,
)


class _Planted:
    """Unpickling this calls ``open(marker, "w")``: harmless, but visible."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _state(seed: int = 0) -> dict:
    torch.manual_seed(seed)
    model = nn.Linear(64, 8)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.randn(4, 64)).sum().backward()
    opt.step()
    return {
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "scaler": {},
        "history": {
            "records": [{"epoch": 1, "train_loss": 0.5}],
            "config": {"lr": 1e-3, "n_train": None},
            "maps": {"0": [[0.5, 0.25]]},
        },
    }


def _with_header(payload: bytes) -> bytes:
    digest = hashlib.sha256(payload).hexdigest()
    return CHECKPOINT_MAGIC + f"sha256 {digest}\nbytes {len(payload)}\n".encode() + payload


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def test_round_trip_restores_model_and_optimizer(tmp_path):
    state = _state()
    path = save_checkpoint(tmp_path / "ckpt.pt", state)
    back = load_checkpoint(path)
    assert _same(state, back)
    model, opt = nn.Linear(64, 8), None
    model.load_state_dict(back["model"])
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    opt.load_state_dict(back["optimizer"])


def test_saving_an_arbitrary_object_is_refused(tmp_path):
    with pytest.raises(TypeError, match=r"state\['history'\]\['bad'\].*_Planted"):
        save_checkpoint(tmp_path / "c.pt", {"history": {"bad": _Planted(tmp_path / "m")}})
    assert not (tmp_path / "c.pt").exists()


@pytest.mark.parametrize("with_valid_header", [False, True])
def test_planted_pickle_is_not_executed(tmp_path, with_valid_header):
    marker = tmp_path / "payload-ran"
    buf = io.BytesIO()
    torch.save({"model": {}, "history": _Planted(marker)}, buf)
    path = tmp_path / "ckpt.pt"
    path.write_bytes(_with_header(buf.getvalue()) if with_valid_header else buf.getvalue())
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    assert str(path.absolute()) in str(err.value)
    assert not marker.exists(), "the planted payload ran"
    with pytest.warns(CheckpointRecoveryWarning, match="from scratch"):
        assert load_or_restart(path) is None
    assert not marker.exists()


def _flip_bit(data: bytes, offset: int) -> bytes:
    b = bytearray(data)
    b[offset] ^= 0x10
    return bytes(b)


@pytest.mark.parametrize(
    "fault, match",
    [
        ("flip-payload", "checksum mismatch"),
        ("flip-weight", "checksum mismatch"),
        ("flip-header", "checksum mismatch|damaged header"),
        ("truncate", "truncated"),
        ("truncate-header", "truncated|damaged"),
        ("zero-bytes", "empty"),
        ("appended", "unexpected bytes"),
        ("plain-torch-save", "no checksum header"),
        ("garbage", "not a gsa_utils checkpoint"),
    ],
)
def test_corrupt_checkpoints_raise_naming_file_and_fault(tmp_path, fault, match):
    state = _state()
    path = save_checkpoint(tmp_path / "ckpt.pt", state)
    data = path.read_bytes()
    header_len = data.index(b"\n", data.index(b"bytes ")) + 1
    if fault == "flip-payload":
        data = _flip_bit(data, header_len + (len(data) - header_len) // 2)
    elif fault == "flip-weight":  # a bit of one float of the weight matrix, found by its bytes
        raw = state["model"]["weight"].numpy().tobytes()[:16]
        data = _flip_bit(data, data.index(raw) + 3)
    elif fault == "flip-header":
        data = _flip_bit(data, len(CHECKPOINT_MAGIC) + 10)
    elif fault == "truncate":
        data = data[: len(data) * 2 // 3]
    elif fault == "truncate-header":
        data = data[: len(CHECKPOINT_MAGIC) + 20]
    elif fault == "zero-bytes":
        data = b""
    elif fault == "appended":
        data = data + b"\0" * 7
    elif fault == "plain-torch-save":
        buf = io.BytesIO()
        torch.save(state, buf)
        data = buf.getvalue()
    elif fault == "garbage":
        data = b"hello world\n" * 10
    path.write_bytes(data)
    with pytest.raises(CheckpointError, match=match) as err:
        load_checkpoint(path)
    assert err.value.path == path and str(path.absolute()) in str(err.value)


@pytest.mark.parametrize("fault", ["flip", "truncate"])
def test_recovery_from_previous_checkpoint(tmp_path, fault):
    path = tmp_path / "ckpt.pt"
    older, newer = _state(0), _state(1)
    save_checkpoint(path, older)
    save_checkpoint(path, newer)
    assert previous_path(path).exists()
    data = path.read_bytes()
    path.write_bytes(_flip_bit(data, len(data) - 100) if fault == "flip" else data[:-50])
    with pytest.warns(CheckpointRecoveryWarning, match=r"ckpt\.pt.*moved to ckpt\.pt\.corrupt.*previous checkpoint"):
        state = load_or_restart(path)
    assert _same(state, older)
    assert (tmp_path / "ckpt.pt.corrupt").exists() and not path.exists()
    # the next save writes the main file again and keeps the good previous one
    save_checkpoint(path, newer)
    assert _same(load_or_restart(path), newer)


def test_recovery_from_scratch_when_both_bad_and_nothing_overwritten(tmp_path):
    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, _state(0))
    save_checkpoint(path, _state(1))
    path.write_bytes(b"")
    previous_path(path).write_bytes(b"junk")
    (tmp_path / "ckpt.pt.corrupt").write_bytes(b"an older corrupt file")
    with pytest.warns(CheckpointRecoveryWarning, match="restarts from scratch"):
        assert load_or_restart(path) is None
    assert (tmp_path / "ckpt.pt.corrupt").read_bytes() == b"an older corrupt file"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "ckpt.pt.corrupt",
        "ckpt.pt.corrupt-2",
        "ckpt.pt.prev.corrupt",
    ]


def test_fresh_run_and_interrupted_rename(tmp_path):
    path = tmp_path / "ckpt.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_or_restart(path) is None  # no checkpoint: silent fresh start
        save_checkpoint(path, _state(0))
        save_checkpoint(path, _state(1))
        path.unlink()  # killed between the two renames: only .prev is left
        assert _same(load_or_restart(path), _state(0))


def test_two_phase_fit_resume_does_not_run_planted_checkpoint(tmp_path):
    """The training loop must load through gsa_utils.checkpoints (wired by the lead)."""
    from gsa_utils.training import two_phase_fit

    marker = tmp_path / "payload-ran"
    path = tmp_path / "ckpt.pt"
    torch.save(
        {
            "model": {},
            "optimizer": {},
            "scaler": {},
            "history": {"records": [], "config": _Planted(marker), "maps": {}},
        },
        path,
    )
    x, y = torch.rand(8, 3, 8, 8), torch.arange(8) % 2
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 64, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            two_phase_fit(model, x, y, epochs=1, cutoff_epoch=None, checkpoint=path, progress=False)
        except Exception:
            pass
    assert not marker.exists(), "two_phase_fit ran code from a planted checkpoint"


def test_remove_checkpoint_removes_previous_too(tmp_path):
    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, _state(0))
    save_checkpoint(path, _state(1))
    (tmp_path / "ckpt.pt.corrupt").write_bytes(b"kept for inspection")
    remove_checkpoint(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.pt.corrupt"]


def test_two_phase_fit_recovers_from_flipped_bit_bit_identically(tmp_path):
    from gsa_utils.training import two_phase_fit

    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(16, 3, 8, 8, generator=g), torch.arange(16) % 2

    def model():
        torch.manual_seed(0)
        return nn.Sequential(nn.Flatten(), nn.Linear(3 * 64, 2))

    fit = dict(cutoff_epoch=None, batch_size=4, lr=1e-2, progress=False, device="cpu")
    straight = two_phase_fit(model(), x, y, epochs=3, **fit)
    path = tmp_path / "ckpt.pt"
    two_phase_fit(model(), x, y, epochs=2, checkpoint=path, **fit)
    data = path.read_bytes()
    path.write_bytes(_flip_bit(data, len(data) - 200))
    with pytest.warns(CheckpointRecoveryWarning, match=r"ckpt\.pt.*checksum mismatch.*previous checkpoint"):
        resumed = two_phase_fit(model(), x, y, epochs=3, checkpoint=path, **fit)
    assert [r["train_loss"] for r in resumed.records] == [r["train_loss"] for r in straight.records]
