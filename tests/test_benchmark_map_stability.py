"""benchmarks/map_stability.py end to end on a tiny synthetic set: its last line, its
resumable record file, and its refusal to pool runs of other settings."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "map_stability.py"
LAST_LINE = re.compile(
    r"^recommended recipe: collapsed \d+ of \d+ seeds; flat \d+ of \d+; contrast \d+\.\d\d; "
    r"GSA - vanilla = [+-]\d+\.\d points \((p = \d\.\d{3}|p = nan|p < 0\.001)\)$"
)


def _run(out: Path, *extra: str) -> subprocess.CompletedProcess:
    args = [
        sys.executable,
        str(SCRIPT),
        "--dataset",
        "fundus",
        "--image-size",
        "16",
        "--seeds",
        "2",
        "--epochs",
        "2",
        "--n-train",
        "24",
        "--variants",
        "vanilla",
        "recommended",
        "--out",
        str(out),
        *extra,
    ]
    return subprocess.run(args, capture_output=True, text=True, cwd=ROOT, timeout=600)


def test_map_stability_records_resumes_and_refuses_other_settings(tmp_path):
    out = tmp_path / "runs.jsonl"
    first = _run(out)
    assert first.returncode == 0, first.stderr
    assert LAST_LINE.match(first.stdout.strip().splitlines()[-1]), first.stdout
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines[0]["settings"]["epochs"] == 2 and lines[0]["settings"]["data"]["n_train"] == 24
    gsa = [r for r in lines[1:] if r["variant"] == "recommended"]
    assert all(len(r["map"]) == 16 and "map_contrast" in r and "faith_gap_random" in r for r in gsa)
    assert sorted((r["variant"], r["seed"]) for r in lines[1:]) == [
        ("recommended", 0),
        ("recommended", 1),
        ("vanilla", 0),
        ("vanilla", 1),
    ]

    again = _run(out)  # everything recorded: nothing is trained again
    assert "resuming: 4 runs" in again.stdout and len(out.read_text().splitlines()) == 5

    other = _run(out, "--cutoff", "2")
    assert other.returncode != 0
    assert str(out) in other.stderr and "cutoff: file 1, now 2" in other.stderr
