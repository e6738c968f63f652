"""GPU time and memory of the dataset chapters per profile, estimated from counted FLOPs.

No GPU was at hand when this was written, so nothing here is a GPU measurement. The
script counts the floating-point operations of one forward pass of each image CNN and
of the pixel CNN on the pixel representation (``torch.utils.flop_counter.FlopCounterMode``
on ``meta`` tensors: nothing is computed), takes a training step as 3 forward passes
(forward + backward), adds the test set's forward pass after every epoch, and divides by
an assumed *effective* throughput:

* T4 (free Colab, 16 GB): 8 TFLOP/s with mixed precision (fp16 autocast; about an eighth
  of its 65 TFLOP/s fp16 tensor-core peak, and its fp32 peak; small batches, data
  movement and the optimiser keep real training far from the peak);
* A100 (a data-centre GPU, 40/80 GB): 60 TFLOP/s with mixed precision (about a fifth of
  its 312 TFLOP/s bf16 peak).

Chapter 10 (IDRiD retinopathy's sizes, the paper's setting) trains GSA, the vanilla CNN
and the L1 baseline (six coefficients) and both local-attention networks, each on the whole
training set and five folds (60 GPU runs; every run counted as a whole-training-set run, a
slight overestimate); LR and SVM run on the CPU and are left out.

Memory is parameters x 4 copies (weights, gradients, Adam's two moments, fp32), the
tensors saved for the backward pass of one batch (counted with saved-tensor hooks, fp32;
autocast roughly halves them, which is not credited), the pixel representation and the
training set on the GPU, plus 0.5 GiB of CUDA context. Treat every number as +-50 %.

    python benchmarks/chapter_costs.py               # the table the chapters quote
    python benchmarks/chapter_costs.py --t4-tflops 5 # a more pessimistic T4
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from gsa_utils import PixelCNN, build_backbone
from gsa_utils.baselines import ResAttNet92, VGGAtt3
from gsa_utils.data.idrid import IDRID_N_TEST, IDRID_N_TRAIN
from gsa_utils.profiles import PROFILES, Profile

CUDA_CONTEXT_GIB = 0.5
TRAIN_OVER_FORWARD = 3.0  # forward + backward (about twice the forward)


@dataclass(frozen=True)
class Chapter:
    """The training runs of one dataset chapter, per seed and backbone."""

    name: str
    tasks: int
    n_train: int
    n_test: int
    num_classes: int


#: Data sizes: IDRiD's official split (two tasks), JAFFE's 170/43 split, chapter 8's
#: 192/48 example folder, RetinaMNIST with its validation images merged (1200/400).
CHAPTERS = (
    Chapter("06_idrid", 2, IDRID_N_TRAIN, IDRID_N_TEST, 5),
    Chapter("07_jaffe", 1, 170, 43, 6),
    Chapter("08_your_own_data", 1, 192, 48, 3),
    Chapter("09_retinamnist", 1, 1200, 400, 5),
)


@dataclass(frozen=True)
class Costs:
    """Forward FLOPs of one image, and the training memory of one batch, for a backbone."""

    forward_flops: float
    train_bytes: float


def _forward_flops(model: torch.nn.Module, x: torch.Tensor) -> float:
    with FlopCounterMode(display=False) as counter:
        model(x)
    return float(counter.get_total_flops())


def _build(name: str, num_classes: int, size: int) -> torch.nn.Module:
    if name == "vgg_att3":
        return VGGAtt3(num_classes, image_size=size)
    if name == "resattnet92":
        return ResAttNet92(num_classes)
    return build_backbone(name, num_classes, pretrained=False)


def backbone_costs(name: str, size: int, batch: int, num_classes: int) -> Costs:
    """FLOPs of one image's forward pass and the training bytes of one batch (meta tensors)."""
    with torch.device("meta"):
        model = _build(name, num_classes, size)
        flops = _forward_flops(model.eval(), torch.empty(1, 3, size, size))
        saved = []
        with torch.autograd.graph.saved_tensors_hooks(
            lambda t: saved.append(t.numel() * t.element_size()) or t, lambda t: t
        ):
            model.train()(torch.empty(batch, 3, size, size))
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    return Costs(flops, 4 * params + sum(saved))


def pixel_cnn_flops(n_train: int, size: int, hidden: int) -> float:
    """Forward FLOPs of the pixel CNN on the whole pixel representation (once per step)."""
    with torch.device("meta"):
        net = PixelCNN(3 * n_train, hidden)
        return _forward_flops(net, torch.empty(1, 3 * n_train, size, size))


def chapter_cost(chapter: Chapter, profile: Profile, seeds: int, tflops: float, cache: dict) -> tuple[float, float]:
    """Hours and peak GiB of a chapter: tasks x backbones x (vanilla, GSA) x seeds."""
    fit, size = profile.fit, profile.image_size
    steps = -(-chapter.n_train // fit.batch_size)
    cutoff = fit.epochs if fit.cutoff_epoch is None else min(fit.cutoff_epoch, fit.epochs)
    map_flops = pixel_cnn_flops(chapter.n_train, size, profile.hidden_channels)
    total, peak = 0.0, 0.0
    for backbone in profile.backbones:
        key = (backbone, size, fit.batch_size, chapter.num_classes)
        if key not in cache:
            cache[key] = backbone_costs(*key)
        cost = cache[key]
        epoch = (TRAIN_OVER_FORWARD * chapter.n_train + chapter.n_test) * cost.forward_flops
        vanilla = fit.epochs * epoch
        gsa = vanilla + cutoff * steps * TRAIN_OVER_FORWARD * map_flops
        total += chapter.tasks * seeds * (vanilla + gsa)
        data = 4 * 3 * size * size * (2 * chapter.n_train + chapter.n_test)  # images and P
        peak = max(peak, cost.train_bytes + data)
    return total / (tflops * 1e12) / 3600, peak / 2**30 + CUDA_CONTEXT_GIB


def chapter10_cost(profile: Profile, tflops: float, cache: dict) -> tuple[float, float, int]:
    """Hours, peak GiB and runs of chapter 10 outside the smoke profile (60 GPU runs)."""
    fit, size, folds = profile.fit, profile.image_size, 6  # whole training set + 5 folds
    per_run = {"gsa": folds, "vanilla": folds, "l1": 6 * folds, "vgg_att3": folds, "resattnet92": folds}
    chapter = Chapter("10_baselines", 1, IDRID_N_TRAIN, IDRID_N_TEST, 5)
    total, peak = 0.0, 0.0
    for method, runs in per_run.items():
        name = method if method in ("vgg_att3", "resattnet92") else profile.backbone
        key = (name, size, fit.batch_size, chapter.num_classes)
        if key not in cache:
            cache[key] = backbone_costs(*key)
        cost = cache[key]
        epoch = (TRAIN_OVER_FORWARD * chapter.n_train + chapter.n_test) * cost.forward_flops
        flops = fit.epochs * epoch
        if method == "gsa":
            steps = -(-chapter.n_train // fit.batch_size)
            cutoff = min(fit.cutoff_epoch or fit.epochs, fit.epochs)
            flops += (
                cutoff * steps * TRAIN_OVER_FORWARD * pixel_cnn_flops(chapter.n_train, size, profile.hidden_channels)
            )
        total += runs * flops
        peak = max(peak, cost.train_bytes + 4 * 3 * size * size * (2 * chapter.n_train + chapter.n_test))
    return total / (tflops * 1e12) / 3600, peak / 2**30 + CUDA_CONTEXT_GIB, sum(per_run.values())


def minutes(hours: float) -> str:
    """'< 1 min', 'N min' or 'N.N h'."""
    m = hours * 60
    return "< 1 min" if m < 1 else f"{m:.0f} min" if m < 120 else f"{hours:.1f} h"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--t4-tflops", type=float, default=8.0)
    ap.add_argument("--a100-tflops", type=float, default=60.0)
    args = ap.parse_args()
    cache: dict = {}
    print("| chapter | profile | runs | GPU memory | T4 (Colab) | A100 |")
    print("|---|---|---|---|---|---|")
    for chapter in CHAPTERS:
        for name in ("colab", "full"):
            profile = PROFILES[name]
            seeds = len(profile.seeds)
            t4, gib = chapter_cost(chapter, profile, seeds, args.t4_tflops, cache)
            a100, _ = chapter_cost(chapter, profile, seeds, args.a100_tflops, cache)
            runs = chapter.tasks * len(profile.backbones) * 2 * seeds
            print(f"| {chapter.name} | {name} | {runs} | about {gib:.0f} GiB | {minutes(t4)} | {minutes(a100)} |")
    for name in ("colab", "full"):
        t4, gib, runs = chapter10_cost(PROFILES[name], args.t4_tflops, cache)
        a100, _, _ = chapter10_cost(PROFILES[name], args.a100_tflops, cache)
        print(f"| 10_baselines | {name} | {runs} | about {gib:.0f} GiB | {minutes(t4)} | {minutes(a100)} |")


if __name__ == "__main__":
    main()
