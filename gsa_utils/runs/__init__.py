"""Experiments as files: configs, one folder per run, resumable sweeps, the protocol summary, Table 2.

Introduced in chapter 10 (``10_baselines``). From the bottom up: ``config`` (what a run is), ``store``
(its folder), ``runner`` (one run), ``locks``, ``sweeps`` and ``ray_launcher`` (many runs), ``summary``
(the paper's protocol) and ``tables`` (Table 2); the command line is :mod:`gsa_utils.cli`.
"""

from .config import (
    BACKBONE_METHODS,
    METHODS,
    PIXEL_METHODS,
    TUNABLE_FIELDS,
    ExperimentConfig,
    differing_fields,
    normalise_method,
    profile_base,
    profile_label,
    variant_label,
)
from .locks import DEFAULT_STALE_AFTER
from .methods import L1_DEFAULT_COEFFICIENT, SMOKE_RESATTNET_WIDTH
from .runner import build_model, run_experiment
from .store import RESULTS_DIR_ENV, RunRecord, default_results_dir, load_attention_map, load_results, save_result
from .summary import ProtocolSummary, protocol_summary
from .sweeps import configs_from_grid, paper_grid, sweep, sweep_configs
from .tables import DATASET_COLUMNS, build_table, row_label, rows_of_dataset, table_to_csv

__all__ = [
    "METHODS",
    "BACKBONE_METHODS",
    "PIXEL_METHODS",
    "TUNABLE_FIELDS",
    "L1_DEFAULT_COEFFICIENT",
    "SMOKE_RESATTNET_WIDTH",
    "DEFAULT_STALE_AFTER",
    "differing_fields",
    "variant_label",
    "RunRecord",
    "ProtocolSummary",
    "RESULTS_DIR_ENV",
    "ExperimentConfig",
    "normalise_method",
    "profile_label",
    "profile_base",
    "build_model",
    "run_experiment",
    "save_result",
    "default_results_dir",
    "configs_from_grid",
    "sweep_configs",
    "paper_grid",
    "sweep",
    "load_results",
    "load_attention_map",
    "protocol_summary",
    "DATASET_COLUMNS",
    "build_table",
    "row_label",
    "rows_of_dataset",
    "table_to_csv",
]
