"""Training-step time of GSA relative to the vanilla CNN, phase 1 and phase 2, side by side.

Phase 1 runs the pixel CNN on the whole pixel representation at every step; phase 2 uses
the frozen map, so a step should cost what a vanilla step costs plus one multiplication.
The three variants are timed in interleaved rounds (shared machines drift), and the
script prints median seconds per step and the ratios to vanilla.

    python benchmarks/step_time.py                     # the current profile's sizes
    python benchmarks/step_time.py --image-size 224 --n-train 413 --backbone resnet152
    python benchmarks/step_time.py --image-size 28 --n-train 1200 --recipes paper recommended
"""

from __future__ import annotations

import argparse
import copy
import statistics

import torch

from gsa_utils import build_backbone, get_profile, pick_device, seed_everything
from gsa_utils.devices import flush_denormals
from gsa_utils.recipes import PixelCNNDesign, build_gsa
from gsa_utils.settings import FitSettings
from gsa_utils.training import Learner, train_one_epoch


def main() -> None:
    profile = get_profile()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--image-size", type=int, default=profile.image_size)
    ap.add_argument("--n-train", type=int, default=160)
    ap.add_argument("--backbone", default=profile.backbone)
    ap.add_argument("--hidden-channels", type=int, default=profile.hidden_channels)
    ap.add_argument("--batch-size", type=int, default=profile.fit.batch_size)
    ap.add_argument("--steps", type=int, default=10, help="training steps per timed round")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--device", default=None)
    ap.add_argument("--recipes", nargs="+", default=["paper"], help="GSA recipes to time (gsa_utils.recipes)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = ap.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    seed_everything(0)
    n, s = args.n_train, args.image_size
    x, _y = torch.rand(n, 3, s, s), torch.randint(0, 2, (n,))  # _y: same random stream as before
    backbone = build_backbone(args.backbone, 2, pretrained=False)
    variants = {"vanilla": copy.deepcopy(backbone)}
    for recipe in args.recipes:
        variants[f"{recipe} phase 1"] = build_gsa(
            copy.deepcopy(backbone), x, recipe, PixelCNNDesign(args.hidden_channels)
        )
        frozen = build_gsa(copy.deepcopy(backbone), x, recipe, PixelCNNDesign(args.hidden_channels))
        frozen.freeze()
        variants[f"{recipe} phase 2"] = frozen

    cuda = device.type == "cuda"
    steps_n = args.steps * args.batch_size
    state = {}
    for name, model in variants.items():
        model.to(device)
        opt = torch.optim.Adam(model.parameters(), lr=1e-4)
        scaler = torch.amp.GradScaler("cuda", enabled=False)
        state[name] = (model, opt, scaler)
    # the batches: a separate stack of steps x batch images, so every round runs exactly --steps steps
    xs, ys = torch.rand(steps_n, 3, s, s), torch.randint(0, 2, (steps_n,))
    xs, ys = (xs.to(device), ys.to(device)) if cuda else (xs, ys)

    def run(name: str, epoch: int) -> float:
        model, opt, scaler = state[name]
        rec = train_one_epoch(
            Learner(model, opt, scaler, device, mixed_precision=cuda),
            xs,
            ys,
            epoch=epoch,
            seed=0,
            settings=FitSettings(batch_size=args.batch_size, l1_weight=1e-4),
        )
        return rec["seconds"] / args.steps

    times = {k: [] for k in variants}
    with flush_denormals():
        for name in variants:  # warm-up
            run(name, 0)
        for r in range(args.rounds):
            order = list(variants) if r % 2 == 0 else list(reversed(variants))
            for name in order:
                times[name].append(run(name, r + 1))

    print(
        f"device={device} backbone={args.backbone} image={s}px N={n} K={args.hidden_channels} "
        f"batch={args.batch_size} steps/round={args.steps} rounds={args.rounds} ({profile.name} profile defaults)"
    )
    base = statistics.median(times["vanilla"])
    for name, ts in times.items():
        med = statistics.median(ts)
        print(
            f"{name:22s} {med * 1e3:9.2f} ms/step   ratio to vanilla {med / base:6.3f}   "
            f"(min {min(ts) * 1e3:.2f}, max {max(ts) * 1e3:.2f})"
        )


if __name__ == "__main__":
    main()
