"""What the command line accepts: its commands and options, built from the config's dataclass fields.

Introduced in chapter 11 (``11_results``). Every setting is an option named by its flat name, typed by
its annotation and described by its docstring entry; those of ``config.fit`` and ``config.pixel_cnn``
are also ``--fit.NAME`` and ``--pixel-cnn.NAME``.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from typing import Any

from .backbones import BACKBONES
from .data.registry import DATASETS
from .profiles import PROFILES
from .protocol import N_SELECTED_EPOCHS
from .recipes import RECIPES, PixelCNNDesign, RecipeChoice
from .runs.config import DATA_DEFAULTS, FLAT_NAMES, METHODS, ExperimentConfig, coerce, field_type, normalise_method
from .runs.flat import DESIGN_NAMES, FIT_NAMES
from .runs.locks import DEFAULT_STALE_AFTER
from .runs.store import RESULTS_DIR_ENV
from .settings import FitSettings

#: Environment variable that makes the command line print full tracebacks (as ``--traceback`` does).
TRACEBACK_ENV = "GSA_TRACEBACK"

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

Settings not given come from the profile (--profile, else $GSA_PROFILE, else colab on a small CUDA GPU,
full on a larger one and smoke elsewhere). Results carry a profile label; only 'full' results on real data
are comparable with the paper.
Interrupt a sweep at any time and start it again: finished runs are skipped, interrupted ones resume from
their checkpoint, and runs locked by another process (sharing the folder) are left to it. A corrupt checkpoint
or result file is moved aside (*.corrupt) and the run restarts; `status` lists them by path.
"""


def parse_grid(items: Sequence[str] | None) -> dict[str, list]:
    """``--grid`` items as a grid of :func:`~gsa_utils.runs.sweeps.configs_from_grid` (flat names, ``method.name``)."""
    grid: dict[str, list] = {}
    for item in items or []:
        if "=" not in item:
            raise SystemExit(f"--grid {item!r}: expected key=value1,value2 (e.g. hidden_channels=16,32)")
        key, vals = item.split("=", 1)
        holder, _, name = key.strip().replace("-", "_").rpartition(".")
        if name not in FLAT_NAMES:
            raise SystemExit(f"--grid {item!r}: unknown setting {name!r}; settings: {', '.join(sorted(FLAT_NAMES))}")
        only = "" if holder in ("", *_HOLDERS) else normalise_method(holder) + "."
        grid[only + name] = [coerce(name, v) for v in vals.split(",") if v.strip()]
    return grid


def _parse_shard(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not m or int(m.group(2)) < 1 or int(m.group(1)) >= int(m.group(2)):
        raise argparse.ArgumentTypeError(f"--shard must be i/n with 0 <= i < n, e.g. 0/2; got {text!r}")
    return int(m.group(1)), int(m.group(2))


#: Options the commands declare themselves; every other config field is a setting built by :func:`_add_settings`.
_COMMAND_FIELDS = ("dataset", "method", "backbone", "fold", "profile")
#: The objects that hold nested settings, and their settings' flat names: ``--fit.NAME`` (and ``--NAME``).
_HOLDERS = {"fit": FIT_NAMES, "pixel_cnn": DESIGN_NAMES}
_CHOICES: dict[str, tuple] = {"recipe": tuple(sorted(RECIPES)), "duplicates": ("error", "warn"), "channels": (1, 3)}
#: Stands for an option given as ``none`` (``None`` in argparse means "not given").
_NONE = "none"


def _field_helps(doc: str) -> dict[str, str]:
    """Each field's description from a numpy-style ``Attributes`` section (one source for docs and ``--help``)."""
    section = doc.split("Attributes\n    ----------\n", 1)[-1].split("\n\n    Notes", 1)[0]
    helps: dict[str, str] = {}
    for entry in re.split(r"\n    (?=\S)", "\n" + section):
        names, _, text = entry.strip().partition("\n")
        for name in names.split(","):
            helps[name.strip()] = re.sub(r":\w+:`~?([^`]+)`", r"\1", " ".join(text.split())).replace("``", "")
    return helps


def _setting_names() -> tuple[str, ...]:
    return tuple(name for name in FLAT_NAMES if name not in _COMMAND_FIELDS)


def _setting_helps() -> dict[str, str]:
    """Each setting's description, from the docstrings of the dataclasses that hold it."""
    recipe = _field_helps(RecipeChoice.__doc__ or "")
    return {
        **_field_helps(ExperimentConfig.__doc__ or ""),
        **_field_helps(FitSettings.__doc__ or ""),
        **_field_helps(PixelCNNDesign.__doc__ or ""),
        "recipe": recipe["name"],
        "pixel_rank": recipe["rank"],
    }


def _flags(name: str) -> list[str]:
    """``--NAME``, and ``--HOLDER.NAME`` for a setting a :data:`_HOLDERS` object holds (``--fit.l1-weight``)."""
    flag = name.replace("_", "-")
    holders = [holder.replace("_", "-") for holder, names in _HOLDERS.items() if name in names]
    return [f"--{holder}.{flag}" for holder in holders] + [f"--{flag}"]


def _setting_type(name: str):  # noqa: ANN202 - an argparse type
    """Parses ``name``'s option by the field's annotation; ``none`` is kept as :data:`_NONE`."""

    def parse(text: str) -> Any:
        try:
            value = coerce(name, text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
        return _NONE if value is None else value

    parse.__name__ = name
    return parse


def _add_settings(p: argparse.ArgumentParser) -> None:
    """One option per setting, typed by its annotation (``--fit.NAME`` and ``--NAME`` for training settings)."""
    g = p.add_argument_group("settings (default: the profile's)")
    g.add_argument("--profile", choices=sorted(PROFILES), help="smoke, colab or full (default: $GSA_PROFILE or by GPU)")
    d = p.add_argument_group("how the data are read (part of the run's identity)")
    helps = _setting_helps()
    for name in _setting_names():
        names = _flags(name)
        group = d if name in DATA_DEFAULTS else g
        if field_type(name) is bool:
            group.add_argument(
                *names, dest=name, action=argparse.BooleanOptionalAction, default=None, help=helps.get(name)
            )
        else:
            group.add_argument(
                *names, dest=name, type=_setting_type(name), choices=_CHOICES.get(name), help=helps.get(name)
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


def overrides(args: argparse.Namespace) -> dict:
    """The settings given on the command line (an option given as ``none`` becomes ``None``)."""
    given = {k: getattr(args, k) for k in _setting_names() if getattr(args, k, None) is not None}
    return {k: (None if v == _NONE else v) for k, v in given.items()}


_DATASET_HELP = (
    f"{', '.join(DATASETS)} (every single-label 2-D MedMNIST set by its flag; --image-size 28, 64, "
    f"128 or 224 picks the MedMNIST+ file), or folder:<path>"
)


def _stale_after(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--stale-after",
        type=float,
        default=DEFAULT_STALE_AFTER,
        help="seconds after which an unrefreshed lock counts as left by a crashed process "
        f"(default {DEFAULT_STALE_AFTER:.0f}; locks are refreshed after every epoch)",
    )


def _training_command(sub: Any, name: str, help_text: str) -> argparse.ArgumentParser:
    """The ``run`` or ``sweep`` command's parser, with the examples and ``--stale-after``."""
    p = sub.add_parser(name, help=help_text, epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    _stale_after(p)
    return p


def parser() -> argparse.ArgumentParser:
    """The parser of ``python -m gsa_utils``; ``args.command`` names the command to run."""
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

    run = _training_command(sub, "run", "train one config (resumes an interrupted run)")
    run.add_argument("--dataset", required=True, help=_DATASET_HELP)
    run.add_argument("--method", default="gsa", choices=METHODS)
    run.add_argument("--backbone", choices=BACKBONES, help="image CNN for gsa, vanilla, l1 (default: the profile's)")
    run.add_argument(
        "--fold",
        help="CV fold 0..n_folds-1 (evaluated on its validation part), or 'full' "
        "(default: the whole training set, evaluated on the test set)",
    )
    _add_settings(run)

    sw = _training_command(
        sub, "sweep", "run a grid of configs (this shard's share), skipping finished and locked runs"
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

    sm = sub.add_parser("summary", help="the protocol's mean (std) for one dataset / method / backbone")
    sm.add_argument("--results")
    sm.add_argument("--dataset", required=True)
    sm.add_argument("--method", required=True, choices=METHODS)
    sm.add_argument("--backbone", choices=BACKBONES)
    sm.add_argument("--n-epochs", type=int, default=N_SELECTED_EPOCHS, help="epochs to select (paper: 30)")

    tb = sub.add_parser("table", help="Table 2 from a results folder, next to the paper's numbers")
    tb.add_argument("--results")
    tb.add_argument("--datasets", nargs="+", help="columns (default: every dataset with results)")
    tb.add_argument("--n-epochs", type=int, default=N_SELECTED_EPOCHS)
    tb.add_argument("--csv", help="also write the table as CSV")
    tb.add_argument("--markdown", help="also write the Markdown to this file")

    st = sub.add_parser(
        "status",
        help="list runs that are corrupt, running, interrupted, failed or not started, "
        "and checkpoints set aside as corrupt",
    )
    st.add_argument("--results")
    _stale_after(st)
    st.add_argument("--verbose", action="store_true", help="list finished runs too")
    return p
