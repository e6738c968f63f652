"""Runs per hour of a fixed small grid: the sequential sweep against the Ray launcher, side by side.

The grid is the protocol's runs for GSA and vanilla on the synthetic fundus set (the
full-training run and every CV fold: 12 runs). Each round trains it three ways into fresh
results folders, interleaved (a shared machine drifts): sequentially with one torch thread,
sequentially with ``--threads`` torch threads (what one process on the machine gets), and on a
local Ray with ``--workers`` workers of one thread each. Ray starts once, before the rounds
(its start-up is printed apart); the first round also pays for starting Ray's workers. The
script prints each round's runs per hour and the medians' ratios, and checks that the Ray
results equal the sequential ones bit for bit. Ray would run its workers at a lower priority than
the process that starts it (niceness 15 above it); the script sets ``RAY_worker_niceness=0`` so that,
on a machine shared with other jobs, every variant competes for the cores on equal terms (start the
script itself with ``nice`` to yield to the other jobs).

    python benchmarks/grid_throughput.py                   # 3 rounds, 2 workers
    python benchmarks/grid_throughput.py --rounds 4 --epochs 8 --json benchmarks/results/grid_throughput.json \
        --markdown benchmarks/results/grid_throughput.md  # the figures of the book's page
    python benchmarks/grid_throughput.py --from-json benchmarks/results/grid_throughput.json --markdown table.md
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch

from gsa_utils.runs import sweep, sweep_configs
from gsa_utils.runs.ray_launcher import init_ray, ray_sweep


def records(root: Path, run_id: str) -> list[dict]:
    data = json.loads((root / run_id / "history.json").read_text())
    return [{k: v for k, v in r.items() if k != "seconds"} for r in data["history"]["records"]]


def to_markdown(result: dict) -> str:
    """The page's table: each variant's runs per hour by round, the median and Ray's ratio to it."""
    med, rates = result["median"], result["runs_per_hour"]
    ray_name = next(name for name in med if name.startswith("Ray"))
    lines = ["| variant | runs per hour, by round | median | Ray / variant |", "| --- | --- | ---: | ---: |"]
    for name, m in med.items():
        ratio = "" if name == ray_name else f"{med[ray_name] / m:.2f}x"
        lines.append(f"| {name} | {', '.join(f'{r:.0f}' for r in rates[name])} | {m:.0f} | {ratio} |")
    a = result["args"]
    lines += [
        "",
        f"{result['runs']} runs per round at {a['image_size']} px, {a['epochs']} epochs, {a['n_train']} "
        f"training images; {a['rounds']} rounds, interleaved; Ray's start "
        f"({result['ray_start_seconds']:.0f} s) not counted, its workers' start counted in round 1. "
        f"Ray's results equal the sequential ones bit for bit: {'yes' if result['identical'] else 'NO'}.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2, help="Ray CPUs, one run (one torch thread) each")
    ap.add_argument(
        "--threads",
        type=int,
        default=os.cpu_count() or 1,
        help="torch threads of the second sequential variant (default: the machine's cores; 1: none)",
    )
    ap.add_argument("--image-size", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--n-train", type=int, default=160)
    ap.add_argument("--json", help="also write the measurements to this file")
    ap.add_argument("--markdown", help="also write the table of the book's page to this file")
    ap.add_argument("--from-json", help="measure nothing: write --markdown from the measurements in this file")
    args = ap.parse_args()
    if args.from_json:
        text = to_markdown(json.loads(Path(args.from_json).read_text()))
        print(text)
        if args.markdown:
            Path(args.markdown).write_text(text)
        return

    os.environ.setdefault("RAY_worker_niceness", "0")  # Ray's workers at this process's priority
    configs = sweep_configs(
        ["fundus"],
        ["gsa", "vanilla"],
        folds="all",
        profile="smoke",
        image_size=args.image_size,
        epochs=args.epochs,
        cutoff_epoch=max(1, args.epochs // 2),
        n_train=args.n_train,
        n_test=args.n_train // 4,
    )
    n = len(configs)
    t0 = time.perf_counter()
    ray = init_ray(num_cpus=args.workers, num_gpus=0)
    ray_start = time.perf_counter() - t0
    print(
        f"grid: {n} runs ({configs[0].dataset}, {args.image_size} px, {args.epochs} epochs, {args.n_train} training "
        f"images); {os.cpu_count()} cores; Ray started in {ray_start:.1f} s",
        flush=True,
    )
    variants = {
        "sequential, 1 thread": 1,
        f"sequential, {args.threads} threads": args.threads,
        f"Ray, {args.workers} workers": None,
    }
    if args.threads <= 1:
        del variants[f"sequential, {args.threads} threads"]
    rates: dict[str, list[float]] = {name: [] for name in variants}
    identical = True
    scratch = Path(tempfile.mkdtemp(prefix="grid_throughput_"))
    try:
        for rnd in range(args.rounds):
            order = list(variants) if rnd % 2 == 0 else list(variants)[::-1]
            folders = {}
            for name in order:
                folder = folders[name] = scratch / f"r{rnd}-{name.split(',')[0]}-{len(folders)}"
                t = time.perf_counter()
                if variants[name] is None:
                    report = ray_sweep(configs, folder, progress=False, cpus_per_run=1)
                else:
                    before = torch.get_num_threads()
                    torch.set_num_threads(variants[name])
                    report = sweep(configs, folder, progress=False)
                    torch.set_num_threads(before)
                seconds = time.perf_counter() - t
                assert len(report["ran"]) == n and not report["failed"], report
                rates[name].append(3600 * n / seconds)
                print(f"round {rnd + 1}: {name:24s} {seconds:7.1f} s  {rates[name][-1]:7.0f} runs/h", flush=True)
            seq1 = folders["sequential, 1 thread"]
            ray_folder = folders[f"Ray, {args.workers} workers"]
            identical &= all(records(seq1, c.run_id()) == records(ray_folder, c.run_id()) for c in configs)
            for folder in folders.values():
                shutil.rmtree(folder, ignore_errors=True)
    finally:
        ray.shutdown()
        shutil.rmtree(scratch, ignore_errors=True)
    med = {name: statistics.median(r) for name, r in rates.items()}
    ray_name = f"Ray, {args.workers} workers"
    print("\nmedian runs per hour:")
    for name, m in med.items():
        print(f"  {name:24s} {m:7.0f}" + ("" if name == ray_name else f"   Ray / this = {med[ray_name] / m:.2f}x"))
    print(f"Ray results equal the sequential (1 thread) ones bit for bit: {identical}")
    result = {
        "runs": n,
        "args": {k: v for k, v in vars(args).items() if k not in ("json", "markdown", "from_json")},
        "cores": os.cpu_count(),
        "ray_start_seconds": ray_start,
        "runs_per_hour": rates,
        "median": med,
        "identical": identical,
    }
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    if args.markdown:
        Path(args.markdown).write_text(to_markdown(result))


if __name__ == "__main__":
    main()
