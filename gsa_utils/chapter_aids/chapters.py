"""What the dataset chapters share: banners, which runs to train, training them and reading them back."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..data.base import StructuredDataset
from ..data.registry import describe_source, is_stand_in
from ..paths import shown_path
from ..profiles import Profile
from ..runs.config import ExperimentConfig
from ..runs.store import RunRecord, default_results_dir, load_attention_map, load_results
from ..runs.sweeps import sweep
from .summaries import results_table


def data_banner(ds: StructuredDataset) -> str:
    """One plain line for the top of a chapter's output: real data or a synthetic stand-in, and where."""
    if is_stand_in(ds):
        head = "SYNTHETIC STAND-IN"
    elif ds.source == "real":
        head = "REAL DATA"
    else:
        head = "SYNTHETIC DATA"
    return f"{head}: {describe_source(ds)}"


def class_counts(ds: StructuredDataset) -> str:
    """The classes of a data set and how many training and test images each has, in two lines."""
    return (
        f"{ds.num_classes} classes {ds.class_names}\ntraining images per class "
        f"{ds.class_counts('train').tolist()}, test images per class {ds.class_counts('test').tolist()}"
    )


def chapter_seeds(profile: Profile, smoke_seeds: int, full_seeds: int | None = None) -> tuple[int, ...]:
    """The seeds a chapter trains: the first ``smoke_seeds`` of the smoke profile's, all the full profile's."""
    n = smoke_seeds if profile.name == "smoke" else (full_seeds or len(profile.seeds))
    if n < 1:
        raise ValueError(f"chapter_seeds: need at least one seed, got {n}")
    return tuple(profile.seeds[:n])


def chapter_configs(
    datasets: Sequence[str] | str,
    profile: Profile,
    seeds: Sequence[int],
    *,
    backbones: Sequence[str] | None = None,
    methods: Sequence[str] = ("vanilla", "gsa"),
    data_seeds: Mapping[str, int] | None = None,
    **overrides: Any,
) -> list[ExperimentConfig]:
    """The runs of a dataset chapter: datasets x backbones x methods x seeds, trained on the whole training set.

    ``overrides`` are further :class:`~gsa_utils.runs.ExperimentConfig` fields; the configs come
    in the order dataset, backbone, seed, method.
    """
    if isinstance(datasets, str):
        datasets = [datasets]
    backbones = list(backbones or profile.backbones)
    if not seeds:
        raise ValueError("chapter_configs: give at least one seed")
    data_seeds = data_seeds or {}
    return [
        ExperimentConfig.from_profile(
            ds,
            m,
            profile.name,
            backbone=bb,
            seed=int(seed),
            data_seed=int(data_seeds.get(ds, 0)),
            fold=None,
            **overrides,
        )
        for ds in datasets
        for bb in backbones
        for seed in seeds
        for m in methods
    ]


@dataclass
class ChapterResults:
    """The finished runs of a chapter and where they are."""

    runs: list[RunRecord]
    results_dir: Path
    trained: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)

    def select(self, **fields: object) -> list[RunRecord]:
        """The runs whose config has every given field value (``None`` matches any)."""
        return [r for r in self.runs if all(v is None or getattr(r.config, k) == v for k, v in fields.items())]

    def attention_map(self, dataset: str, backbone: str, seed: int | None = None) -> np.ndarray:
        """The final GSA map (H x W) of one run (the smallest seed when ``seed`` is None)."""
        runs = sorted(
            self.select(dataset=dataset, backbone=backbone, method="gsa", seed=seed), key=lambda r: r.config.seed
        )
        if not runs:
            raise KeyError(
                f"no finished GSA run for {dataset} / {backbone}" + (f" / seed {seed}" if seed is not None else "")
            )
        amap = load_attention_map(runs[0])
        if amap is None:
            raise FileNotFoundError(f"{runs[0].run_dir}: the GSA run has no attention_map.npy")
        return amap

    @property
    def table(self) -> pd.DataFrame:
        """:func:`results_table` of the runs."""
        return results_table(self.runs)


def run_chapter(
    configs: Sequence[ExperimentConfig],
    results_dir: str | os.PathLike | None = None,
    *,
    progress: bool = False,
    verbose: bool = True,
) -> ChapterResults:
    """Train every config through :func:`gsa_utils.runs.sweeps` and read the results back."""
    configs = list(configs)
    if not configs:
        raise ValueError("run_chapter: no configs")
    root = Path(results_dir) if results_dir is not None else default_results_dir()
    report = sweep(configs, root, progress=progress, raise_errors=True)
    busy = report["locked"] + report["lost"]
    if busy:
        raise RuntimeError(
            f"{len(busy)} run(s) are being trained by another process sharing {root} "
            f"({', '.join(busy)}); wait for it and run this cell again"
        )
    wanted = {c.run_id(): i for i, c in enumerate(configs)}
    found = {r.run_id: r for r in load_results(root) if r.run_id in wanted}
    missing = [rid for rid in wanted if rid not in found]
    if missing:
        raise RuntimeError(f"runs not finished in {root}: {', '.join(missing)}")
    runs = [found[c.run_id()] for c in configs]
    out = ChapterResults(
        runs=runs, results_dir=root, trained=list(report["ran"]), reused=list(report["finished_before"])
    )
    if verbose:
        for r in runs:
            state = "trained" if r.run_id in out.trained else "reused "
            acc = np.asarray(r.eval_curve, dtype=float)
            print(
                f"{state} {r.run_id}: {r.seconds or 0:6.1f} s, last test acc {100 * acc[-1]:.1f}%  [{r.profile_label}]"
            )
        print(
            f"{len(runs)} runs in {shown_path(root)}: {len(out.trained)} trained now, "
            f"{len(out.reused)} already finished (read back)"
        )
    return out


def initial_attention_map(config: ExperimentConfig, data_dir: str | os.PathLike | None = None) -> np.ndarray:
    """The map a GSA run starts from, before any training (the paper's Fig. 4a)."""
    from ..data.registry import load_dataset
    from ..devices import seed_everything
    from ..runs.runner import build_model
    from ..training import map_image

    if config.method != "gsa" or config.fold is not None:
        raise ValueError(
            f"initial_attention_map needs a GSA run with fold=None, got {config.method!r}, fold={config.fold!r}"
        )
    ds = load_dataset(config.dataset, config.image_size, seed=config.data_seed, data_dir=data_dir)
    if config.n_train is not None or config.n_test is not None:
        ds = ds.subset(config.n_train, config.n_test, seed=config.data_seed)
    seed_everything(config.seed)
    model = build_model(config, ds.num_classes, ds.x_train)
    amap = map_image(model)
    if amap is None:
        raise TypeError(f"{type(model).__name__} has no attention map")
    return amap
