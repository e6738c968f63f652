"""The command line: ``python -m gsa_utils run | sweep | summary | table | status``.

Introduced in chapter 11 (``11_results``); ``python -m gsa_utils --help`` lists the commands.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

from .chapter_aids.table_markdown import table_to_markdown
from .checkpoints import CheckpointError
from .data.base import DataError
from .data.registry import DATASETS, plan_data
from .files import orphaned_temp_files, write_atomic
from .models import BACKBONES
from .profiles import PROFILES
from .protocol import N_SELECTED_EPOCHS
from .recipes import RECIPES
from .runs import ray_launcher
from .runs.config import (
    BOOL_FIELDS,
    FLOAT_FIELDS,
    INT_FIELDS,
    METHODS,
    ExperimentConfig,
    coerce_field,
    normalise_method,
    profile_label,
)
from .runs.locks import DEFAULT_STALE_AFTER, LOCK_FILE, stale_reason
from .runs.store import (
    CHECKPOINT_FILE,
    RESULT_FILE,
    RESULTS_DIR_ENV,
    SET_ASIDE_MARK,
    ResultError,
    corrupt_results,
    default_results_dir,
    read_result,
)
from .runs.summary import setting_summaries
from .runs.sweeps import run_locked, sweep, sweep_configs
from .runs.tables import build_table, table_to_csv

_EPILOG = """\
examples:
  # one run (smoke-sized), then its folder results/<run_id>/ holds config.json and history.json
  python -m gsa_utils run --dataset fundus --method gsa --backbone small_cnn --epochs 5 --results results/

  # the protocol's runs for GSA and vanilla: the full-training run and 5 CV folds per setting,
  # K in {16, 32}; this process takes every second config (start --shard 1/2 elsewhere)
  python -m gsa_utils sweep --dataset fundus --methods gsa vanilla --folds all \\
      --shard 0/2 --grid hidden_channels=16,32 --results results/

  # the same sweep as one Ray task per run: Ray on this machine, or a cluster with --address auto
  # (the results folder must then be shared storage); four small runs share each GPU
  python -m gsa_utils sweep --dataset fundus --methods gsa vanilla --folds all --launcher ray \\
      --gpus-per-run 0.25 --results /shared/results/

  # the paper's full grid (K, lambda, weight decay; L1 coefficients) on a GPU machine
  GSA_PROFILE=full python -m gsa_utils sweep --dataset idrid-edema \\
      --methods gsa vanilla l1 lr svm vgg_att3 resattnet92 --backbones resnet152 --paper-grid --results results/

  # the paper's GSA recipe beside the recommended one (the default), 3 seeds each
  python -m gsa_utils sweep --dataset retinamnist --methods gsa vanilla --folds full \
      --grid gsa.recipe=paper,recommended seed=0,1,2 --results results/

  # any single-label 2-D MedMNIST set by its flag (file data/medmnist/pneumoniamnist_64.npz), and your own
  # images laid out as a path,label CSV with a fixed split (grey images stay grey)
  python -m gsa_utils sweep --dataset pneumoniamnist --image-size 64 --methods gsa vanilla --results results/
  python -m gsa_utils sweep --dataset folder:data/my_faces --csv labels.csv --split-file split.csv \
      --methods gsa vanilla --results results/

  # the protocol's number for one cell, and Table 2 next to the paper's
  python -m gsa_utils summary --results results/ --dataset fundus --method gsa --backbone small_cnn
  python -m gsa_utils table --results results/ --csv table2.csv

Settings not given come from the profile (--profile, else $GSA_PROFILE, else full on a CUDA GPU and smoke
elsewhere). Results carry a profile label; only 'full' results on real data are comparable with the paper.
Interrupt a sweep at any time and start it again: finished runs are skipped, interrupted ones resume from
their checkpoint, and runs locked by another process (sharing the folder) are left to it. A corrupt checkpoint
or result file is moved aside (*.corrupt) and the run restarts; `status` lists them by path.
Before training, run and sweep say where the data come from; --no-stand-in refuses synthetic stand-ins.
Any error ends with one line saying what failed; --traceback (or GSA_TRACEBACK=1) shows the full trace.
"""


def _parse_value(field_name: str, text: str) -> Any:
    t = text.strip()
    if t.lower() in ("none", "null"):
        return None
    if field_name in BOOL_FIELDS:
        return coerce_field(field_name, t)
    if field_name in INT_FIELDS:
        return int(float(t))
    if field_name in FLOAT_FIELDS:
        return float(t)
    return t


def _parse_grid(items: Sequence[str] | None) -> dict[str, list]:
    names = {f.name for f in fields(ExperimentConfig)}
    grid: dict[str, list] = {}
    for item in items or []:
        if "=" not in item:
            raise SystemExit(f"--grid {item!r}: expected key=value1,value2 (e.g. hidden_channels=16,32)")
        key, vals = item.split("=", 1)
        key = key.strip()
        if "." in key:
            only, field_name = key.split(".", 1)
            field_name = field_name.replace("-", "_")
            key = f"{normalise_method(only)}.{field_name}"
        else:
            key = field_name = key.replace("-", "_")
        if field_name not in names:
            raise SystemExit(f"--grid {item!r}: unknown field {field_name!r}; fields: {', '.join(sorted(names))}")
        grid[key] = [_parse_value(field_name, v) for v in vals.split(",") if v.strip()]
    return grid


def _parse_shard(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not m or int(m.group(2)) < 1 or int(m.group(1)) >= int(m.group(2)):
        raise argparse.ArgumentTypeError(f"--shard must be i/n with 0 <= i < n, e.g. 0/2; got {text!r}")
    return int(m.group(1)), int(m.group(2))


def _add_settings(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("settings (default: the profile's)")
    g.add_argument("--profile", choices=sorted(PROFILES), help="smoke or full (default: $GSA_PROFILE or by GPU)")
    g.add_argument("--image-size", type=int)
    g.add_argument("--epochs", type=int)
    g.add_argument("--cutoff-epoch", type=int, help="GSA's E: the pixel CNN is frozen after it")
    g.add_argument("--hidden-channels", type=int, help="GSA's K")
    g.add_argument("--l1-weight", type=float, help="GSA's lambda, or the L1 baseline's coefficient")
    g.add_argument("--weight-decay", type=float)
    g.add_argument("--lr", type=float)
    g.add_argument("--batch-size", type=int)
    g.add_argument(
        "--pretrained", action=argparse.BooleanOptionalAction, default=None, help="start from ImageNet weights"
    )
    g.add_argument("--seed", type=int, help="model initialisation and shuffling (default 0)")
    g.add_argument("--data-seed", type=int, help="synthetic data, random splits and CV folds (default 0)")
    g.add_argument("--n-folds", type=int, help="CV folds (default 5)")
    g.add_argument("--n-train", type=int, help="cap on training images (a random subset)")
    g.add_argument("--n-test", type=int, help="cap on test images")
    g.add_argument(
        "--recipe",
        choices=sorted(RECIPES),
        help="how GSA's map is built (gsa_utils.recipes; default: the profile's, 'recommended')",
    )
    g.add_argument(
        "--pixel-cnn-lr",
        type=_float_or_none,
        help="separate learning rate for the pixel CNN; 'none': the same as --lr (the paper)",
    )
    g.add_argument("--map-warmup-epochs", type=int, help="epochs the map is held still at the start (GSA)")
    g.add_argument("--model-width", type=int, help="ResAttNet-92 base width (default 64)")
    g.add_argument(
        "--merge-val",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="MedMNIST: join the official validation split to the training set (default) or, with "
        "--no-merge-val, keep it apart for epoch selection",
    )
    d = p.add_argument_group("how the data are read (part of the run's identity)")
    d.add_argument(
        "--channels",
        type=int,
        choices=(1, 3),
        help="1: colour to grey, 3: grey replicated (default: the images' own; folder: and MedMNIST only)",
    )
    d.add_argument(
        "--csv", help="folder: a path,label CSV (paths relative to the folder) instead of a folder per class"
    )
    d.add_argument("--split-file", help="folder: a fixed train/test split, 'path,split' per line")
    d.add_argument(
        "--duplicates",
        choices=("error", "warn"),
        help="folder: byte-identical files under two names are an error (default) or a warning",
    )
    d.add_argument(
        "--resize",
        action="store_true",
        default=None,
        help="folder: accept images of different sizes and resize them all; without it a folder whose "
        "images differ in size is refused, whatever the image size",
    )
    r = p.add_argument_group("where")
    r.add_argument("--results", help=f"results folder (default: ${RESULTS_DIR_ENV} or <repo>/results)")
    r.add_argument("--data-dir", help="folder with idrid/, jaffe/, medmnist/ (default: $GSA_DATA_DIR or data/)")
    r.add_argument(
        "--cache-dir",
        help="cache of decoded images for IDRiD, JAFFE and folder: data (default: the loaders' own folder)",
    )
    r.add_argument("--no-cache", action="store_true", help="do not read or write the cache of decoded images")
    r.add_argument(
        "--no-stand-in",
        action="store_true",
        help="refuse to train on a synthetic stand-in when a dataset's real files are absent",
    )
    r.add_argument("--device", help="cuda, cpu, mps (default: the best available)")
    r.add_argument("--quiet", action="store_true", help="no progress output")


#: Stands for an option given as ``none`` (``None`` in argparse means "not given").
_NONE = "none"


def _float_or_none(text: str) -> float | str:
    """A float, or ``"none"`` (passed on as ``None``: e.g. no separate pixel-CNN learning rate)."""
    if text.strip().lower() in ("none", "null"):
        return _NONE
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'none', got {text!r}") from None


def _overrides(args: argparse.Namespace) -> dict:
    """The settings given on the command line (an option given as ``none`` becomes ``None``)."""
    keys = (
        "image_size",
        "epochs",
        "cutoff_epoch",
        "hidden_channels",
        "l1_weight",
        "weight_decay",
        "lr",
        "batch_size",
        "pretrained",
        "seed",
        "data_seed",
        "n_folds",
        "n_train",
        "n_test",
        "pixel_cnn_lr",
        "map_warmup_epochs",
        "model_width",
        "merge_val",
        "recipe",
        "channels",
        "csv",
        "split_file",
        "duplicates",
        "resize",
    )
    given = {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}
    return {k: (None if v == _NONE else v) for k, v in given.items()}


def _cache_dir(args: argparse.Namespace) -> str | bool | None:
    return False if args.no_cache else args.cache_dir


def _announce_data(configs: Sequence[ExperimentConfig], args: argparse.Namespace) -> None:
    """Print, before any training, where each dataset's data will come from; refuse stand-ins with --no-stand-in."""
    seen: set[tuple] = set()
    for cfg in configs:
        key = (cfg.dataset, cfg.image_size)
        if key in seen:
            continue
        seen.add(key)
        plan = plan_data(cfg.dataset, cfg.image_size, args.data_dir)
        if plan.uses_stand_in and args.no_stand_in:
            raise DataError(
                f"{plan.statement()}; refused by --no-stand-in (put the files in place, or drop "
                f"--no-stand-in to train on the stand-in)"
            )
        size = (
            f"; images resized to {cfg.image_size} px"
            if plan.file_size is not None and cfg.image_size != plan.file_size
            else ""
        )
        if plan.uses_stand_in:  # said even with --quiet: results on a stand-in are not results on the real data
            print(
                f"data: {plan.statement()}; refuse stand-ins with --no-stand-in",
                file=sys.stderr if args.quiet else sys.stdout,
                flush=True,
            )
        elif not args.quiet:
            print(f"data: {plan.statement()}{size}", flush=True)


def _fmt(x: float | None) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.2f}"


def _cmd_run(args: argparse.Namespace) -> int:
    fold = None if args.fold in (None, "full", "none") else int(args.fold)
    cfg = ExperimentConfig.from_profile(
        args.dataset,
        args.method,
        args.profile,
        **{**_overrides(args), "fold": fold, **({"backbone": args.backbone} if args.backbone else {})},
    )
    results = Path(args.results)
    _announce_data([cfg], args)
    if not args.quiet:
        print(f"run {cfg.run_id()} ({profile_label(cfg)}) -> {results / cfg.run_id()}", flush=True)
    status, result = run_locked(
        cfg,
        results,
        args.stale_after,
        data_dir=args.data_dir,
        cache_dir=_cache_dir(args),
        device=args.device,
        progress=not args.quiet,
    )
    if status == "locked":
        print(f"{cfg.run_id()} is locked by another process ({results / cfg.run_id() / LOCK_FILE})", file=sys.stderr)
        return 3
    if status == "lost":
        print(f"{cfg.run_id()}: another process took the run over", file=sys.stderr)
        return 3
    if result is None:
        result = read_result(results / cfg.run_id())
        print("already finished")
    hist = result.history
    key = f"{result.eval_set}_acc"
    if not args.quiet:
        print(_statement(result))
        print(
            f"{key} after the last epoch: {_fmt(float(hist[key][-1]))}%  ({len(hist.records)} epoch(s), "
            f"{result.seconds:.1f} s)"
        )
    return 0


def _statement(result: Mapping[str, Any]) -> str:
    """The dataset statement stored with a run (what the data were, stand-in or real)."""
    return str(result.dataset.get("statement", ""))


def _cmd_sweep(args: argparse.Namespace) -> int:
    grid = _parse_grid(args.grid)
    configs = sweep_configs(
        args.dataset,
        args.methods,
        backbones=args.backbones,
        folds=args.folds,
        grid=grid,
        use_paper_grid=args.paper_grid,
        profile=args.profile,
        **_overrides(args),
    )
    if not args.quiet:
        i, n = args.shard
        print(f"{len(configs)} configs in the sweep; shard {i}/{n} takes {len(range(i, len(configs), n))}", flush=True)
    if args.dry_run:
        for k, c in enumerate(configs):
            if k % args.shard[1] == args.shard[0]:
                print(c.run_id())
        return 0
    _announce_data(configs, args)
    if args.launcher == "ray":
        if args.shard != (0, 1):
            raise ValueError("--shard splits a sweep by hand; with --launcher ray, Ray spreads the runs: drop --shard")
        try:
            report = ray_launcher.ray_sweep(
                configs,
                args.results,
                address=args.address,
                gpus_per_run=args.gpus_per_run,
                cpus_per_run=args.cpus_per_run,
                max_retries=args.max_retries,
                progress=not args.quiet,
                stale_after=args.stale_after,
                data_dir=args.data_dir,
                cache_dir=_cache_dir(args),
                device=args.device,
            )
        except ImportError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    else:
        report = sweep(
            configs,
            args.results,
            shard=args.shard,
            progress=not args.quiet,
            stale_after=args.stale_after,
            data_dir=args.data_dir,
            cache_dir=_cache_dir(args),
            device=args.device,
        )
    print(
        f"ran {len(report['ran'])}, already finished {len(report['finished_before'])}, locked by others "
        f"{len(report['locked'])}, lost {len(report['lost'])}, failed {len(report['failed'])}"
    )
    for rid, msg in report["failed"].items():
        print(f"  failed {rid}: {msg}", file=sys.stderr)
    return 1 if report["failed"] else 0


def _cmd_summary(args: argparse.Namespace) -> int:
    where = f"{args.dataset} / {args.method}{' / ' + args.backbone if args.backbone else ''}"
    summaries = setting_summaries(args.results, args.dataset, args.method, args.backbone, n_epochs=args.n_epochs)
    for label, s in summaries.items():
        spread = f"over {len(s.seeds)} seeds" if len(s.seeds) > 1 else f"over {len(s.samples)} epoch(s)"
        print(
            f"{where}{'' if len(summaries) == 1 else ' / ' + label}: {_fmt(s.mean)}% (std {_fmt(s.std)}) "
            f"{spread}; profile: {s.profile}"
        )
        print(f"best params: {s.best_params}; CV folds done: {s.n_folds_done}; CV score: {_fmt(s.cv_score)}%")
        if s.dataset_statement:
            print(f"data: {s.dataset_statement}")
        for note in s.notes:
            print(f"note: {note}")
    return 0 if all(s.mean is not None for s in summaries.values()) else 1


def _cmd_table(args: argparse.Namespace) -> int:

    rows = build_table(args.results, datasets=args.datasets, n_epochs=args.n_epochs)
    text = table_to_markdown(rows)
    print(text)
    if args.csv:
        table_to_csv(rows, args.csv)
        print(f"\nwritten {args.csv}")
    if args.markdown:
        write_atomic(Path(args.markdown), text.encode())
        print(f"written {args.markdown}")
    corrupt = corrupt_results(args.results)
    for _run_dir, _, err in corrupt:
        print(f"corrupt run left out of the table: {err}", file=sys.stderr)
    if corrupt:
        print(f"{len(corrupt)} corrupt run(s): run the same sweep again to re-run them", file=sys.stderr)
    return 1 if corrupt else 0


def _cmd_status(args: argparse.Namespace) -> int:
    root = Path(args.results)
    if not root.is_dir():
        print(f"{root} does not exist")
        return 0
    counts = {
        "finished": 0,
        "set aside": 0,
        "corrupt": 0,
        "running": 0,
        "interrupted": 0,
        "failed": 0,
        "not started": 0,
    }
    problems: list[str] = []
    for run_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for bad in sorted(run_dir.glob(f"{CHECKPOINT_FILE}*.corrupt*")):
            problems.append(f"corrupt checkpoint set aside (kept for inspection): {bad.absolute()}")
        for bad in sorted(run_dir.glob(f"{CHECKPOINT_FILE}*.foreign*")):
            problems.append(f"checkpoint of other settings set aside (kept for inspection): {bad.absolute()}")
        for tmp in orphaned_temp_files(run_dir):
            size = tmp.stat().st_size if tmp.exists() else 0
            problems.append(
                f"temporary file of a killed writer ({size / 2**20:.1f} MiB): {tmp.absolute()}; the next "
                f"run of {run_dir.name} removes it"
            )
        result_error = None
        if (run_dir / RESULT_FILE).exists():
            try:
                read_result(run_dir)
            except ResultError as err:
                result_error = err
        if SET_ASIDE_MARK in run_dir.name:
            state = "set aside"  # results made on other data, kept for reference
        elif (run_dir / RESULT_FILE).exists() and result_error is None:
            state = "finished"
        elif result_error is not None:
            state = "corrupt"
            problems.append(f"{result_error}; the sweep re-runs it")
        elif (run_dir / LOCK_FILE).exists():
            why = stale_reason(run_dir / LOCK_FILE, args.stale_after)  # the rule run and sweep use to take it over
            state = "running" if why is None else "interrupted"
            if why is not None:
                problems.append(
                    f"lock {(run_dir / LOCK_FILE).absolute()} left by a crashed process ({why}); "
                    f"the next run or sweep takes it over"
                )
        elif (run_dir / "error.txt").exists():
            state = "failed"
        elif (run_dir / CHECKPOINT_FILE).exists():
            state = "interrupted"
        else:
            state = "not started"
        counts[state] += 1
        if args.verbose or state != "finished":
            print(f"{state:12s} {run_dir.name}")
    for line in problems:
        print(line)
    print(", ".join(f"{v} {k}" for k, v in counts.items()))
    return 1 if counts["corrupt"] else 0


_DATASET_HELP = (
    f"{', '.join(DATASETS)} (every single-label 2-D MedMNIST set by its flag; --image-size 28, 64, "
    f"128 or 224 picks the MedMNIST+ file), or folder:<path>"
)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m gsa_utils",
        description="Run the paper's experiments (Xu et al., section 4) as resumable, shareable runs: one folder "
        "per config under --results, each finished when its history.json exists.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--traceback",
        action="store_true",
        help=f"on an error, print the full Python traceback (also ${TRACEBACK_ENV}=1)",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser(
        "run",
        help="train one config (resumes an interrupted run)",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("--dataset", required=True, help=_DATASET_HELP)
    run.add_argument("--method", default="gsa", choices=METHODS)
    run.add_argument("--backbone", choices=BACKBONES, help="image CNN for gsa, vanilla, l1 (default: the profile's)")
    run.add_argument(
        "--fold",
        help="CV fold 0..n_folds-1 (evaluated on its validation part), or 'full' "
        "(default: the whole training set, evaluated on the test set)",
    )
    run.add_argument(
        "--stale-after",
        type=float,
        default=DEFAULT_STALE_AFTER,
        help="seconds after which another process's unrefreshed lock is removed",
    )
    _add_settings(run)
    run.set_defaults(func=_cmd_run)

    sw = sub.add_parser(
        "sweep",
        help="run a grid of configs (this shard's share), skipping finished and locked runs",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sw.add_argument("--dataset", nargs="+", required=True, help="one or more of: " + _DATASET_HELP)
    sw.add_argument("--methods", nargs="+", default=["gsa", "vanilla"], choices=METHODS)
    sw.add_argument("--backbones", nargs="+", choices=BACKBONES, help="image CNNs for gsa, vanilla, l1")
    sw.add_argument(
        "--folds",
        default="all",
        help="'all' (full run + every CV fold; needed by the protocol), 'cv', 'full', or e.g. 'full,0,1'",
    )
    sw.add_argument(
        "--grid",
        nargs="+",
        action="extend",
        help="field=v1,v2 (repeatable); 'method.field=...' applies to one method only, e.g. l1.l1_weight=1,10",
    )
    sw.add_argument(
        "--paper-grid",
        action="store_true",
        help="add the paper's grids: GSA K x lambda x weight decay, L1 coefficients, weight decays",
    )
    sw.add_argument("--shard", type=_parse_shard, default=(0, 1), help="i/n: run configs whose index mod n is i")
    sw.add_argument(
        "--stale-after",
        type=float,
        default=DEFAULT_STALE_AFTER,
        help="seconds after which an unrefreshed lock counts as left by a crashed process "
        f"(default {DEFAULT_STALE_AFTER:.0f}; locks are refreshed after every epoch)",
    )
    sw.add_argument("--dry-run", action="store_true", help="list this shard's run ids and stop")
    launch = sw.add_argument_group("launcher (default: this process, one run after another; --shard splits by hand)")
    launch.add_argument(
        "--launcher",
        choices=("local", "ray"),
        default="local",
        help="'ray': one Ray task per run, on this machine or a cluster (pip install 'gsa-utils[ray]')",
    )
    launch.add_argument(
        "--address", help="Ray cluster to join: 'auto' or HOST:PORT (default: start Ray on this machine)"
    )
    launch.add_argument(
        "--gpus-per-run",
        type=float,
        help="GPUs per run; a fraction packs runs on one GPU, e.g. 0.25 (default: 1 when the cluster has GPUs, else 0)",
    )
    launch.add_argument("--cpus-per-run", type=float, default=1.0, help="CPUs (and torch threads) per run (default 1)")
    launch.add_argument(
        "--max-retries",
        type=int,
        default=3,
        help="retries of a run whose worker died; each resumes from its checkpoint (default 3)",
    )
    _add_settings(sw)
    sw.set_defaults(func=_cmd_sweep)

    sm = sub.add_parser("summary", help="the protocol's mean (std) for one dataset / method / backbone")
    sm.add_argument("--results")
    sm.add_argument("--dataset", required=True)
    sm.add_argument("--method", required=True, choices=METHODS)
    sm.add_argument("--backbone", choices=BACKBONES)
    sm.add_argument("--n-epochs", type=int, default=N_SELECTED_EPOCHS, help="epochs to select (paper: 30)")
    sm.set_defaults(func=_cmd_summary)

    tb = sub.add_parser("table", help="Table 2 from a results folder, next to the paper's numbers")
    tb.add_argument("--results")
    tb.add_argument("--datasets", nargs="+", help="columns (default: every dataset with results)")
    tb.add_argument("--n-epochs", type=int, default=N_SELECTED_EPOCHS)
    tb.add_argument("--csv", help="also write the table as CSV")
    tb.add_argument("--markdown", help="also write the Markdown to this file")
    tb.set_defaults(func=_cmd_table)

    st = sub.add_parser(
        "status",
        help="list runs that are corrupt, running, interrupted, failed or not started, "
        "and checkpoints set aside as corrupt",
    )
    st.add_argument("--results")
    st.add_argument("--stale-after", type=float, default=DEFAULT_STALE_AFTER)
    st.add_argument("--verbose", action="store_true", help="list finished runs too")
    st.set_defaults(func=_cmd_status)
    return p


#: Environment variable that makes the command line print full tracebacks (as ``--traceback`` does).
TRACEBACK_ENV = "GSA_TRACEBACK"


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    print(f"warning: {message}", file=sys.stderr, flush=True)


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text or type(err).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (``python -m gsa_utils --help``).

    Introduced in chapter 10 (``10_baselines``). Every failure ends with one line on stderr
    saying what failed and what to do, and a non-zero exit status: 2 for bad data, settings,
    checkpoints or result files, 4 for file-system errors, 130 for an interruption, 1 for
    anything unexpected (``--traceback`` or ``GSA_TRACEBACK=1`` print the full trace).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    show_trace = "--traceback" in argv or os.environ.get(TRACEBACK_ENV, "") not in ("", "0")
    argv = [a for a in argv if a != "--traceback"]
    args = _parser().parse_args(argv)
    if getattr(args, "results", "unset") is None:
        args.results = str(default_results_dir())
    try:
        with warnings.catch_warnings():
            if not show_trace:
                warnings.showwarning = _show_warning
            return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(
            "interrupted: run the same command again to resume (finished runs are kept, the interrupted one "
            "continues from its last checkpoint)",
            file=sys.stderr,
        )
        return 130
    except Exception as err:  # noqa: BLE001 - the one place that turns any failure into one clear line
        if show_trace:
            raise
        code = 2
        if isinstance(err, CheckpointError):
            msg = (
                f"error: {err}; move or delete {err.path.absolute()} and run the command again "
                f"(the run restarts from its previous checkpoint or from scratch)"
            )
        elif isinstance(err, ResultError):
            msg = f"error: {err}; move or delete it and run the command again to re-run the run"
        elif isinstance(err, (DataError, ValueError)):
            msg = f"error: {_one_line(err)}"
        elif isinstance(err, OSError):
            code = 4
            where = f" ({err.filename})" if getattr(err, "filename", None) else ""
            msg = (
                f"error: {type(err).__name__}{where}: {err.strerror or _one_line(err)}; check the path, its "
                f"permissions and free disk space, then run the command again"
            )
        else:
            code = 1
            msg = (
                f"error: unexpected {type(err).__name__}: {_one_line(err)} (run again with --traceback or "
                f"{TRACEBACK_ENV}=1 for the full trace, and report it)"
            )
        print(msg, file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
