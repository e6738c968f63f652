"""Does the attention map learn or collapse? Vanilla, GSA recipes and the L1 baseline over seeds.

For every seed it trains each variant (interleaved, so machine drift hits all alike) and
records the final test accuracy, the final map's mean and saturated share (< 0.01 or
> 0.99), the map's ROC-AUC against the mask when the dataset has one, and the time per
training step in phase 1 and phase 2. A run counts as collapsed when more than 90% of its
final map is saturated, or when its test accuracy is at or below the majority-class rate.
Per variant it prints accuracy mean +- sd, Welch's p against vanilla, the map figures, the
collapse count and the step-time ratios to vanilla. Every finished run is appended to
``--out`` (JSON lines) and skipped when the script is started again, so nothing is lost on
interruption.

    python benchmarks/map_stability.py --dataset retinamnist --backbone small_cnn --seeds 10 --epochs 30
    python benchmarks/map_stability.py --dataset fundus --image-size 32 --variants vanilla recommended

Variants: ``vanilla``, ``l1`` (the L1 pixel-weights baseline), any name in
``gsa_utils.recipes.RECIPES``, or a recipe with changed fields, recipe fields or training
options (``FitSettings``), e.g. ``paper+l1_weight=0`` or ``paper+pixel_cnn_lr=1e-4+map_warmup_epochs=3``
(the former "smoke" options).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np
import torch

from gsa_utils import build_backbone, seed_everything
from gsa_utils.attention import AttentionMaps, faithfulness
from gsa_utils.baselines import L1PixelWeights
from gsa_utils.chapter_aids.stability_view import VariantSummary, summarise_stability, verdict_line
from gsa_utils.data.fingerprint import data_fingerprint
from gsa_utils.data.registry import describe_source, load_dataset
from gsa_utils.metrics import map_contrast, map_roc_auc
from gsa_utils.profiles import get_profile
from gsa_utils.recipes import PixelCNNDesign, Recipe, build_gsa, get_recipe
from gsa_utils.runs.config import profile_image_size
from gsa_utils.settings import FitSettings
from gsa_utils.stability import collapse_verdict
from gsa_utils.training import map_image, two_phase_fit


@dataclass(frozen=True)
class Variant:
    """A GSA variant: a recipe (how the map is built) and training options (``FitSettings`` fields)."""

    name: str
    recipe: Recipe
    fit: dict


def parse_variant(spec: str) -> Variant | str:
    """``vanilla``, ``l1``, a recipe name, or ``name+field=value+...`` (recipe or FitSettings fields)."""
    if spec in ("vanilla", "l1"):
        return spec
    name, *changes = spec.split("+")
    recipe = get_recipe(name)
    recipe_fields = {f.name for f in fields(Recipe)}
    fit_fields = set(FitSettings.names())
    kw: dict = {}
    fit: dict = {}
    for change in changes:
        key, _, raw = change.partition("=")
        if key not in recipe_fields | fit_fields:
            raise SystemExit(
                f"variant {spec!r}: unknown field {key!r}; recipe fields: {sorted(recipe_fields)}; "
                f"training options: {sorted(fit_fields)}"
            )
        value = (
            None
            if raw.lower() == "none"
            else (
                raw.lower() == "true"
                if raw.lower() in ("true", "false")
                else json.loads(raw)
                if raw[:1].isdigit() or raw[:1] in "-."
                else raw
            )
        )
        (kw if key in recipe_fields else fit)[key] = value
    return Variant(spec, replace(recipe, name=spec, **kw) if kw else recipe, fit)


#: The default path: every default of this script is the smoke profile's.
SMOKE = get_profile("smoke")


def run_one(variant: Variant | str, ds, args, seed: int) -> dict:
    seed_everything(seed)
    backbone = build_backbone(args.backbone, ds.num_classes, pretrained=False)
    fit = dict(l1_weight=0.0)
    if variant == "vanilla":
        model = backbone
    elif variant == "l1":
        model = L1PixelWeights(backbone, tuple(ds.x_train.shape[-2:]))
        fit = dict(l1_weight=args.l1_baseline_weight, l1_reduction="mean")
    else:
        model = build_gsa(backbone, ds.x_train, variant.recipe, PixelCNNDesign(args.hidden_channels))
        fit = variant.fit
    cutoff = args.cutoff if variant not in ("vanilla", "l1") else None
    # the smoke profile's training options, with this call's sizes: GSA trains as the chapters train it
    settings = SMOKE.fit.replace(
        epochs=args.epochs, cutoff_epoch=cutoff, lr=args.lr, batch_size=args.batch_size, weight_decay=args.weight_decay
    )
    hist = two_phase_fit(
        model,
        ds.x_train,
        ds.y_train,
        settings,
        eval_sets={"test": (ds.x_test, ds.y_test)},
        seed=seed,
        device="cpu",
        progress=False,
        num_classes=ds.num_classes,
        **fit,
    )
    steps = math.ceil(len(ds.y_train) / args.batch_size)
    sec = hist["seconds"] / steps
    phase = hist["phase"]
    rec = {
        "variant": variant if isinstance(variant, str) else variant.name,
        "seed": seed,
        "test_acc": float(hist["test_acc"][-1]),
        "test_acc_curve": [round(float(a), 4) for a in hist["test_acc"]],
        "step_phase1": float(np.mean(sec[phase == 1][1:] if (phase == 1).sum() > 1 else sec[phase == 1])),
        "step_phase2": float(np.mean(sec[phase == 2])) if (phase == 2).any() else float("nan"),
        "step_all": sec.tolist(),
    }
    amap = map_image(model)
    if amap is not None:
        verdict = collapse_verdict(amap, rec["test_acc"], majority_rate(ds))
        rec.update(
            map_mean=float(amap.mean()),
            map_contrast=map_contrast(amap),
            map_p5=float(np.percentile(amap, 5)),
            map_p95=float(np.percentile(amap, 95)),
            map_saturated=verdict.saturated_share,
            collapsed=verdict.collapsed,
            collapse_reason=verdict.reason,
            map_saturated_curve=[round(float(s), 3) for s in hist["map_saturated"]],
            map_contrast_curve=[round(float(c), 3) for c in hist["map_contrast"]],
            flat=bool(hist.records[-1].get("flat", False)),
            map=np.round(amap, 3).tolist(),
        )
        if ds.mask is not None:
            rec["map_auc"] = map_roc_auc(amap, ds.mask)
        rec.update(faithfulness_gaps(model, ds, amap, seed))
    else:
        verdict = collapse_verdict(None, rec["test_acc"], majority_rate(ds))
        rec.update(collapsed=verdict.collapsed, collapse_reason=verdict.reason)
    return rec


def faithfulness_gaps(model, ds, amap: np.ndarray, seed: int, n_images: int = 200) -> dict:
    """Deletion/insertion faithfulness gap of the learned map, a random map and a constant map.

    The gap (:attr:`gsa_utils.attention.Faithfulness.gap`) is > 0 when deleting the pixels a
    map ranks first hurts the prediction more than deleting those it ranks last; a random or
    constant map scores about 0. Deleted pixels become the mean training image.
    """
    x = ds.x_test[:n_images]
    rng = np.random.default_rng(seed)
    maps = {
        "faith_gap": amap,
        "faith_gap_random": rng.random(amap.shape),
        "faith_gap_constant": np.full(amap.shape, 0.5),
    }
    return {
        key: faithfulness(
            model, x, AttentionMaps("map", m[None], shared=True), baseline=ds.x_train.mean(0), seed=seed
        ).gap
        for key, m in maps.items()
    }


def majority_rate(ds) -> float:
    counts = torch.bincount(ds.y_test, minlength=ds.num_classes)
    return float(counts.max()) / len(ds.y_test)


def print_summary(summaries: list[VariantSummary], n_reference: int) -> None:
    def num(v, fmt="8.3f"):
        return f"{v:{fmt}}" if v is not None else f"{'-':>{fmt.split('.')[0]}}"

    print(
        f"\n{'variant':<28} {'n':>3} {'test acc':>15} {'p vs van':>8} {'map mean':>8} {'contrast':>8} "
        f"{'saturated':>9} {'collapsed':>9} {'flat':>7} {'map AUC':>13} {'ph1 x':>6} {'ph2 x':>6}"
    )
    for s in summaries:
        auc = f"{s.map_auc_mean:.3f} ± {s.map_auc_sd or 0:.3f}" if s.map_auc_mean is not None else "-"
        print(
            f"{s.variant:<28} {s.runs:>3} {s.accuracy_mean:7.3f} ± {s.accuracy_sd:5.3f} "
            f"{s.p_vs_reference:8.3f} {num(s.map_mean)} {num(s.contrast_mean, '8.2f')} {num(s.saturated, '9.3f')} "
            f"{s.collapsed:>5} of {s.runs:<2} {f'{s.flat:>3} of {s.runs:<2}' if s.map_mean is not None else '-':>7} "
            f"{auc:>13} {num(s.phase1_ratio, '6.2f')} {num(s.phase2_ratio, '6.2f')}"
        )
    print(f"(phase-1/phase-2 step time over vanilla's step, median over seeds; vanilla over {n_reference} seeds)")


def read_results(out: Path, settings: dict, check: bool = True) -> list[dict]:
    """The runs already in ``out``; its first line holds the settings they ran under.

    Raises SystemExit, naming the file and the differing settings, when they differ from
    this call's: runs of two settings are never pooled.
    """
    lines = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    if not lines or "settings" not in lines[0]:
        raise SystemExit(f"{out}: no settings line first; not a file this script wrote")
    differ = {k: (v, settings.get(k)) for k, v in lines[0]["settings"].items() if check and settings.get(k) != v}
    if differ:
        found = "; ".join(f"{k}: file {a!r}, now {b!r}" for k, (a, b) in differ.items())
        raise SystemExit(f"{out}: its runs used other settings ({found}); choose another --out")
    return lines[1:]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="retinamnist")
    ap.add_argument("--backbone", default="small_cnn")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=SMOKE.fit.epochs)
    ap.add_argument("--cutoff", type=int, default=None, help="E (default: half the epochs, as the smoke profile)")
    ap.add_argument(
        "--image-size",
        type=int,
        default=SMOKE.image_size,
        help="side in pixels (real data is never enlarged: RetinaMNIST stays at 28)",
    )
    ap.add_argument("--variants", nargs="+", default=["vanilla", "paper", "recommended", "l1"])
    ap.add_argument("--hidden-channels", type=int, default=SMOKE.hidden_channels)
    ap.add_argument("--lr", type=float, default=SMOKE.fit.lr)
    ap.add_argument("--batch-size", type=int, default=SMOKE.fit.batch_size)
    ap.add_argument("--weight-decay", type=float, default=SMOKE.fit.weight_decay)
    ap.add_argument("--l1-baseline-weight", type=float, default=1.0, help="coefficient of the L1 baseline (mean)")
    ap.add_argument("--n-train", type=int, default=None, help="use only the first N training images")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None, help="JSON-lines file of finished runs (resumed when it exists)")
    ap.add_argument("--summary-only", action="store_true", help="only summarise the runs already in --out")
    args = ap.parse_args()
    args.cutoff = args.cutoff or max(1, args.epochs // 2)
    if "vanilla" not in args.variants:
        args.variants = ["vanilla"] + args.variants
    torch.set_num_threads(args.threads)

    args.image_size = profile_image_size(args.image_size, args.dataset)
    ds = load_dataset(args.dataset, args.image_size)
    if args.n_train:
        ds = replace(ds, x_train=ds.x_train[: args.n_train], y_train=ds.y_train[: args.n_train])
    print(describe_source(ds), f"| majority rate {majority_rate(ds):.3f}", flush=True)
    print(
        f"backbone={args.backbone} epochs={args.epochs} E={args.cutoff} lr={args.lr} K={args.hidden_channels} "
        f"seeds={args.first_seed}..{args.first_seed + args.seeds - 1}",
        flush=True,
    )
    variants = [parse_variant(v) for v in args.variants]
    names = [v if isinstance(v, str) else v.name for v in variants]
    out = Path(args.out) if args.out else None
    # the data's fingerprint (source, file hash, shapes, content hash), never its path
    settings = {
        "dataset": args.dataset,
        "data": data_fingerprint(ds).as_dict(),
        "backbone": args.backbone,
        "epochs": args.epochs,
        "cutoff": args.cutoff,
        "image_size": args.image_size,
        "hidden_channels": args.hidden_channels,
        "lr": args.lr,
        "batch_size": args.batch_size,
        "weight_decay": args.weight_decay,
        "l1_baseline_weight": args.l1_baseline_weight,
        "n_train": args.n_train,
    }
    results: list[dict] = []
    if out and out.exists():
        results = read_results(out, settings, check=not args.summary_only)
        print(f"resuming: {len(results)} runs read from {out}", flush=True)
    elif out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"settings": settings}) + "\n")
    done = {(r["variant"], r["seed"]) for r in results}
    for seed in range(args.first_seed, args.first_seed + args.seeds) if not args.summary_only else ():
        order = variants if seed % 2 == 0 else list(reversed(variants))
        for v in order:
            name = v if isinstance(v, str) else v.name
            if (name, seed) in done:
                continue
            t0 = time.time()
            rec = run_one(v, ds, args, seed)
            results.append(rec)
            if out:
                with out.open("a") as f:
                    f.write(json.dumps(rec) + "\n")
            extra = (
                (
                    f" map mean {rec['map_mean']:.3f} contrast {rec['map_contrast']:.2f}"
                    f" saturated {rec['map_saturated']:.2f}"
                    + (f" AUC {rec['map_auc']:.3f}" if "map_auc" in rec else "")
                )
                if "map_mean" in rec
                else ""
            )
            print(
                f"seed {seed} {name:<28} acc {rec['test_acc']:.3f}{extra}"
                f"{' COLLAPSED (' + rec['collapse_reason'] + ')' if rec['collapsed'] else ''} "
                f"[{time.time() - t0:.0f}s]",
                flush=True,
            )
    seeds = set(range(args.first_seed, args.first_seed + args.seeds))
    summaries = summarise_stability([r for r in results if r["seed"] in seeds], names)
    print_summary(summaries, sum(r["variant"] == "vanilla" and r["seed"] in seeds for r in results))
    last = verdict_line(summaries)
    if last:
        print(last)


if __name__ == "__main__":
    main()
