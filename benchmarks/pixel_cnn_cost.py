"""Pixel-CNN time per training step (forward + backward) against N, full rank and low rank.

The paper's pixel representation has N*C channels, so the pixel CNN's first layer costs
time proportional to N. The low-rank representation (``gsa_utils.pixel.
lowrank_pixel_representation``) keeps r channels whatever N is. The script times one
forward + backward pass of the map for N = 100 ... 5000 random training images, both
ways, interleaved, and prints the median milliseconds and the ratio to N = 100. The
one-off cost of the principal components (an SVD, once before training) is printed too.

    python benchmarks/pixel_cnn_cost.py --image-size 28 --rank 16
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from gsa_utils.models import PixelCNN
from gsa_utils.pixel import lowrank_pixel_representation, pixel_representation


def step_ms(model: PixelCNN, rep: torch.Tensor, repeats: int) -> float:
    times = []
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        model.zero_grad(set_to_none=True)
        model(rep).sum().backward()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times[1:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--image-size", type=int, default=28)
    ap.add_argument("--channels", type=int, default=3)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 500, 1000, 2000, 5000])
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--hidden-channels", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    s, c = args.image_size, args.channels
    print(
        f"CPU, {args.threads} thread(s), {s}x{s}x{c} images, K={args.hidden_channels}, rank r={args.rank}; "
        "ms per pixel-CNN step (forward + backward), median of "
        f"{args.repeats}",
        flush=True,
    )
    print(
        f"{'N':>6} {'full ms':>9} {'x N=' + str(args.sizes[0]):>8} {'low-rank ms':>12} "
        f"{'x N=' + str(args.sizes[0]):>8} {'PCA once s':>11}",
        flush=True,
    )
    base_full = base_low = None
    for n in args.sizes:
        x = torch.randn(n, c, s, s)
        full = pixel_representation(x)
        t0 = time.perf_counter()
        low = lowrank_pixel_representation(x, args.rank).rep
        pca_s = time.perf_counter() - t0
        m_full = PixelCNN(full.shape[1], args.hidden_channels)
        m_low = PixelCNN(low.shape[1], args.hidden_channels)
        tf, tl = [], []
        for _ in range(3):  # interleaved rounds against drift
            tf.append(step_ms(m_full, full, args.repeats))
            tl.append(step_ms(m_low, low, args.repeats))
        tf_m, tl_m = statistics.median(tf), statistics.median(tl)
        base_full = base_full or tf_m
        base_low = base_low or tl_m
        print(
            f"{n:>6} {tf_m:9.2f} {tf_m / base_full:8.2f} {tl_m:12.3f} {tl_m / base_low:8.2f} {pca_s:11.3f}", flush=True
        )
        del x, full, low, m_full, m_low


if __name__ == "__main__":
    main()
