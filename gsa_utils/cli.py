"""The command line: ``python -m gsa_utils run | sweep | summary | table | status``.

Introduced in chapter 11 (``11_results``); ``python -m gsa_utils --help`` lists the commands.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from .checkpoints import CheckpointError
from .cli_options import TRACEBACK_ENV, overrides, parse_grid
from .cli_options import parser as _parser
from .data.base import DataError
from .data.registry import plan_data
from .files import write_atomic
from .runs import ray_launcher
from .runs.config import ExperimentConfig, profile_label
from .runs.locks import LOCK_FILE
from .runs.markdown import table_to_markdown
from .runs.store import (
    RUN_STATES,
    ResultError,
    corrupt_results,
    default_results_dir,
    read_result,
    results_status,
)
from .runs.summary import setting_summaries
from .runs.sweeps import run_locked, sweep, sweep_configs
from .runs.tables import build_table, table_to_csv


def _cache_dir(args: argparse.Namespace) -> str | bool | None:
    return False if args.no_cache else args.cache_dir


def _announce_data(configs: Sequence[ExperimentConfig], args: argparse.Namespace) -> None:
    """Print, before any training, where each dataset's data will come from; refuse stand-ins with --no-stand-in."""
    for dataset, image_size in dict.fromkeys((cfg.dataset, cfg.image_size) for cfg in configs):
        plan = plan_data(dataset, image_size, args.data_dir)
        if plan.uses_stand_in and args.no_stand_in:
            raise DataError(
                f"{plan.statement()}; refused by --no-stand-in (put the files in place, or drop "
                f"--no-stand-in to train on the stand-in)"
            )
        size = f"; images resized to {image_size} px" if plan.file_size not in (None, image_size) else ""
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
        **{**overrides(args), "fold": fold, **({"backbone": args.backbone} if args.backbone else {})},
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
        print(result.dataset.get("statement", ""))
        print(
            f"{key} after the last epoch: {_fmt(float(hist[key][-1]))}%  ({len(hist.records)} epoch(s), "
            f"{result.seconds:.1f} s)"
        )
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    grid = parse_grid(args.grid)
    configs = sweep_configs(
        args.dataset,
        args.methods,
        backbones=args.backbones,
        folds=args.folds,
        grid=grid,
        use_paper_grid=args.paper_grid,
        profile=args.profile,
        **overrides(args),
    )
    i, n = args.shard
    if not args.quiet:
        print(f"{len(configs)} configs in the sweep; shard {i}/{n} takes {len(configs[i::n])}", flush=True)
    if args.dry_run:
        for cfg in configs[i::n]:
            print(cfg.run_id())
        return 0
    _announce_data(configs, args)
    where = dict(
        progress=not args.quiet,
        stale_after=args.stale_after,
        data_dir=args.data_dir,
        cache_dir=_cache_dir(args),
        device=args.device,
    )
    if args.launcher == "local":
        report = sweep(configs, args.results, shard=args.shard, **where)
    elif args.shard != (0, 1):
        raise ValueError("--shard splits a sweep by hand; with --launcher ray, Ray spreads the runs: drop --shard")
    else:
        try:
            report = ray_launcher.ray_sweep(
                configs,
                args.results,
                address=args.address,
                gpus_per_run=args.gpus_per_run,
                cpus_per_run=args.cpus_per_run,
                max_retries=args.max_retries,
                **where,
            )
        except ImportError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
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
    states, problems = results_status(root, args.stale_after)
    for name, state in states.items():
        if args.verbose or state != "finished":
            print(f"{state:12s} {name}")
    for line in problems:
        print(line)
    counts = {state: list(states.values()).count(state) for state in RUN_STATES}
    print(", ".join(f"{v} {k}" for k, v in counts.items()))
    return 1 if counts["corrupt"] else 0


_COMMANDS = {"run": _cmd_run, "sweep": _cmd_sweep, "summary": _cmd_summary, "table": _cmd_table, "status": _cmd_status}


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    print(f"warning: {message}", file=sys.stderr, flush=True)


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text or type(err).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (``python -m gsa_utils --help``).

    Introduced in chapter 10 (``10_baselines``). A failure ends with one line on stderr and exit
    status 2 (bad data, settings, checkpoints, results), 4 (file system), 130 (Ctrl-C) or 1.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    show_trace = "--traceback" in argv or os.environ.get(TRACEBACK_ENV, "") not in ("", "0")
    argv = [a for a in argv if a != "--traceback"]
    args = _parser().parse_args(argv)
    args.func = _COMMANDS[args.command]
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
