"""Why the map collapses: how far one Adam step moves the pixel CNN, per recipe, on real data.

For each recipe it builds GSA on the dataset's training images and takes Adam steps of
the training loss (cross-entropy + the recipe's L1 term), printing

* the first layer's fan-in and the mean |change| of its pre-activations after step 1,
  next to their spread at initialisation (hypothesis 1: Adam moves each of the fan-in
  weights by about lr, so the pre-activation moves by up to lr x fan-in);
* the mean |change| of the map's logit z after step 1;
* the map's mean and saturated share after 1, 5, 20 steps and one epoch;
* for the paper recipe also with lambda = 0 (is the L1 term the cause?), and the BN
  backbone's output for the input scaled by 0.01 (hypothesis 2: a BN backbone ignores the
  map's level, so the L1 term can shrink it for free).

    python benchmarks/map_diagnostics.py --dataset retinamnist --image-size 28
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from gsa_utils import build_backbone, seed_everything
from gsa_utils.data.registry import describe_source, load_dataset
from gsa_utils.losses import combined_loss
from gsa_utils.metrics import saturated_fraction
from gsa_utils.recipes import PixelCNNDesign, build_gsa, get_recipe
from gsa_utils.settings import PAPER_L1_WEIGHT


def first_layer_preactivation(model) -> torch.Tensor:
    pc = model.pixel_cnn
    layer = pc.hidden[0]
    with torch.no_grad():
        return F.conv2d(model.pixel_rep, layer.weight * pc.first_layer_scale, layer.bias, padding=layer.padding)


def probe(recipe, ds, args, seed: int, l1_weight: float = PAPER_L1_WEIGHT, label: str | None = None) -> None:
    seed_everything(seed)
    model = build_gsa(
        build_backbone(args.backbone, ds.num_classes, False), ds.x_train, recipe, PixelCNNDesign(args.hidden_channels)
    )
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    pc = model.pixel_cnn
    fan_in = pc.in_channels * pc.hidden[0].kernel_size[0] ** 2
    a0 = first_layer_preactivation(model)
    with torch.no_grad():
        z0 = pc.logits(model.pixel_rep)
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(ds.y_train), generator=g)
    line = f"{label or recipe.name:<22} fan-in {fan_in:>6} (scale {pc.first_layer_scale:.4f})"
    model.train()
    for step in range(1, len(order) // args.batch_size + 1):
        idx = order[(step - 1) * args.batch_size : step * args.batch_size]
        amap = model.attention_map()
        parts = combined_loss(model(ds.x_train[idx], amap), ds.y_train[idx], amap, l1_weight, "sum")
        opt.zero_grad()
        parts.total.backward()
        opt.step()
        if step == 1:
            da = (first_layer_preactivation(model) - a0).abs().mean().item()
            with torch.no_grad():
                dz = (pc.logits(model.pixel_rep) - z0).abs().mean().item()
            line += f" | step 1: |d pre-act| {da:8.3f} (init sd {a0.std().item():.3f}), |d z| {dz:8.3f}"
        if step in (1, 5, 20) or step == len(order) // args.batch_size:
            with torch.no_grad():
                m = model.pixel_cnn(model.pixel_rep)
            line += f" | {step:>2}: mean {m.mean().item():.3f} sat {saturated_fraction(m):.2f}"
    print(line, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="retinamnist")
    ap.add_argument("--image-size", type=int, default=28)
    ap.add_argument("--backbone", default="small_cnn")
    ap.add_argument(
        "--recipes", nargs="+", default=["paper", "fan_in", "hidden_norm", "map_norm", "lowrank_mapnorm", "recommended"]
    )
    ap.add_argument("--hidden-channels", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    ds = load_dataset(args.dataset, args.image_size)
    print(describe_source(ds), flush=True)
    for name in args.recipes:
        probe(get_recipe(name), ds, args, args.seed)
        if name == "paper":  # lambda (a training option, FitSettings.l1_weight) set to 0
            probe(get_recipe(name), ds, args, args.seed, l1_weight=0.0, label="paper, lambda=0")
    seed_everything(args.seed)
    bb = build_backbone(args.backbone, ds.num_classes, False).train()
    for m in bb.modules():  # same dropout mask for every call: only batch normalisation stays in training mode
        if isinstance(m, torch.nn.Dropout):
            m.eval()
    x = ds.x_train[:64]
    with torch.no_grad():
        ref = bb(x)
        diffs = ", ".join(f"{c:g}: {(bb(c * x) - ref).abs().max().item():.1e}" for c in (0.5, 0.1, 0.03, 0.01))
    print(
        f"{args.backbone} (BN in training mode), mean |logit| {ref.abs().mean().item():.3f}; max |logits(x) - "
        f"logits(c x)| for a map level c = {diffs} (0 = blind to the map's overall level)"
    )


if __name__ == "__main__":
    main()
