"""GPU-hours of the paper's full Table 2 grid at 224 px, estimated from FLOPs, with and without packing.

The grid is what ``sweep --paper-grid --folds all`` runs in the ``full`` profile: Table 2's
four columns (glaucoma OCT, IDRiD retinopathy, IDRiD edema, JAFFE) x the seven methods x the
four backbones where a method has one, x each method's search grid (K x lambda x weight decay
for GSA, coefficients x weight decay for L1, weight decays for the other CNNs), x the
full-training run and five CV folds. Each run: 250 epochs of Adam, batch 32, on 80 % of the
data set's images (4/5 of that in a CV fold), evaluated after every epoch; GSA adds its pixel
CNN (forward and backward on the N*C x 224 x 224 pixel representation) at every step of its
first E = 60 epochs. LR and SVM train on the CPU and are left out.

FLOPs are counted by ``torch.utils.flop_counter`` on the meta device (nothing is computed),
one image forward and backward for training, forward only for evaluation. They
become hours at a stated fraction of the GPU's peak (``--peak-tflops``, default an H200's
dense TF32 tensor-core figure): one small-batch run alone keeps a large GPU far from its peak
(``--alone``), packed runs fill it better (``--packed``). Both fractions are assumptions to
replace by a measurement on the GPU at hand.

    python benchmarks/grid_gpu_hours.py --markdown benchmarks/results/grid_gpu_hours.md   # the book's figures
    python benchmarks/grid_gpu_hours.py --peak-tflops 989 --alone 0.03 --packed 0.12   # against the bf16 peak
"""

from __future__ import annotations

import argparse
import math
from collections import Counter
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from gsa_utils.models import PixelCNN
from gsa_utils.protocol import N_FOLDS
from gsa_utils.runs import METHODS, PIXEL_METHODS, build_model, sweep_configs
from gsa_utils.settings import PAPER_BACKBONES, PAPER_CUTOFF_EPOCH, PAPER_EPOCHS

#: Table 2's columns: images in the data set (Table 1 of the paper) and classes.
DATASETS = {"glaucoma-oct": (591, 3), "idrid-retinopathy": (516, 5), "idrid-edema": (516, 3), "jaffe": (213, 6)}
SIZE, CHANNELS, BATCH = 224, 3, 32


def flops(model: torch.nn.Module, x: torch.Tensor, backward: bool) -> float:
    with FlopCounterMode(display=False) as counter:
        out = model(x)
        if backward:
            out.sum().backward()
    return float(counter.get_total_flops())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peak-tflops", type=float, default=494.0, help="the GPU's peak (H200 TF32 dense: 494)")
    ap.add_argument("--alone", type=float, default=0.05, help="fraction of the peak one run reaches alone")
    ap.add_argument("--packed", type=float, default=0.20, help="fraction of the peak packed runs reach together")
    ap.add_argument("--markdown", help="also write the book's table to this file")
    args = ap.parse_args()

    configs = sweep_configs(
        list(DATASETS),
        list(METHODS),
        backbones=list(PAPER_BACKBONES),
        folds="all",
        use_paper_grid=True,
        profile="full",
        image_size=SIZE,
        pretrained=False,
    )
    gpu_configs = [c for c in configs if c.method not in PIXEL_METHODS]
    print(
        f"Table 2 grid: {len(configs)} runs, {len(gpu_configs)} on the GPU "
        f"({len(configs) - len(gpu_configs)} LR/SVM runs on the CPU)"
    )
    per_image: dict[tuple, tuple[float, float]] = {}
    pixel_step: dict[tuple, float] = {}
    total = 0.0
    by_method: Counter = Counter()
    for c in gpu_configs:
        n_images, n_classes = DATASETS[c.dataset]
        n_train_all = round(0.8 * n_images)
        n_train = n_train_all if c.fold is None else n_train_all - math.ceil(n_train_all / N_FOLDS)
        n_eval = n_images - n_train_all if c.fold is None else math.ceil(n_train_all / N_FOLDS)
        key = (c.method, c.backbone, n_classes)
        if key not in per_image:
            with torch.device("meta"):
                x = torch.empty(1, CHANNELS, SIZE, SIZE)
                model = build_model(c.replace(method="vanilla") if c.method in ("gsa", "l1") else c, n_classes, x)
                per_image[key] = (flops(model, x, backward=True), flops(model, x, backward=False))
        train_img, eval_img = per_image[key]
        run = c.fit.epochs * (n_train * train_img + n_eval * eval_img)
        if c.method == "gsa":
            pkey = (n_train, c.pixel_cnn)
            if pkey not in pixel_step:
                with torch.device("meta"):
                    cnn = PixelCNN(n_train * CHANNELS, **c.pixel_cnn.to_dict())
                    pixel_step[pkey] = flops(cnn, torch.empty(1, n_train * CHANNELS, SIZE, SIZE), backward=True)
            cutoff = min(c.fit.cutoff_epoch or PAPER_CUTOFF_EPOCH, c.fit.epochs)
            run += cutoff * math.ceil(n_train / BATCH) * pixel_step[pkey]
        total += run
        by_method[c.method] += run
    peak = args.peak_tflops * 1e12
    lines = ["| method | GPU runs | EFLOP | share |", "| --- | ---: | ---: | ---: |"]
    for method, f in by_method.most_common():
        n = sum(1 for c in gpu_configs if c.method == method)
        lines.append(f"| {method} | {n} | {f / 1e18:.2f} | {100 * f / total:.1f} % |")
    lines += [
        f"| all | {len(gpu_configs)} | {total / 1e18:.1f} | 100 % |",
        "",
        "| how the runs share the GPUs | fraction of the peak | GPU-hours |",
        "| --- | ---: | ---: |",
    ]
    for label, frac in (
        ("one run per GPU", args.alone),
        ("runs packed per GPU", args.packed),
        ("lower bound: the peak itself", 1.0),
    ):
        lines.append(
            f"| {label} | {100 * frac:.0f} % of {args.peak_tflops:g} TFLOP/s | {total / (peak * frac) / 3600:.0f} |"
        )
    lines += [
        "",
        f"{len(configs)} runs in the grid, {len(gpu_configs)} of them on the GPU (LR and SVM on the CPU); "
        f"{PAPER_EPOCHS} epochs each at {SIZE} px.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text)


if __name__ == "__main__":
    main()
