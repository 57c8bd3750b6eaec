"""The training hot path: weighted cross-entropy against the naive formula, and the sigmoid focal
loss against segmentation_models_pytorch's FocalLoss, forward + backward, eager and compiled.

    .venv/bin/python benchmarks/bench_hot_path.py [--shape 8 3 256 256] [--repeats 20] [--threads 1] [--eager-only]

Prints one table: ms per forward + backward (the median over blocks of 5 steps, the contenders'
blocks interleaved) and the ratio ours / theirs, for torch eager and for ``torch.compile`` (default
options; compiled once before timing). The naive weighted CE is ``(F.cross_entropy(x, t, reduction="none") * w).sum() / w.sum()``:
no check, no NaN rule, no empty-set guard, which the library's function keeps.
"""

from __future__ import annotations

import argparse
import platform
import sys
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import unetweights.losses as L  # noqa: E402
from benchmarks._timing import median_times  # noqa: E402


BLOCK = 5  # forward + backward steps per timed block


def naive_weighted_ce(x, t, w):
    return (F.cross_entropy(x, t, reduction="none") * w).sum() / w.sum()


def contenders(shape):
    n, c, h, w = shape
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(n, c, h, w, generator=g)
    index = torch.randint(0, c, (n, h, w), generator=g)
    weight = 0.5 + 10.0 * torch.rand(n, h, w, generator=g)
    binary_logits = torch.randn(n, 1, h, w, generator=g)
    binary = (torch.rand(n, 1, h, w, generator=g) > 0.5).float()
    pairs = {
        "weighted CE vs naive formula": (
            logits, lambda x: L.weighted_cross_entropy(x, index, weight), lambda x: naive_weighted_ce(x, index, weight)
        ),
    }
    try:
        import segmentation_models_pytorch.losses as smp
    except ImportError:  # smp needs torchvision: the row is left out where it does not import
        print("(segmentation_models_pytorch is not installed: no focal row)")
    else:
        smp_focal = smp.FocalLoss("binary")
        pairs["focal (sigmoid) vs smp FocalLoss"] = (
            binary_logits, lambda x: L.focal_loss(x, binary, activation="sigmoid"), lambda x: smp_focal(x, binary)
        )
    return pairs


def run_table(shape, repeats: int, modes=("eager", "compiled")) -> None:
    print(f"forward + backward, {'x'.join(map(str, shape))} float32, CPU, median of {repeats}")
    print("| loss | mode | ours ms | theirs ms | ours / theirs |\n| --- | --- | --- | --- | --- |")
    for name, (x0, ours, theirs) in contenders(shape).items():
        for mode in modes:
            if mode == "compiled":
                torch._dynamo.reset()
                ours_fn, theirs_fn = torch.compile(ours), torch.compile(theirs)
            else:
                ours_fn, theirs_fn = ours, theirs

            def block(loss):
                # A block of calls per timing, so that one timer read spans milliseconds, not one call.
                for _ in range(BLOCK):
                    x = x0.clone().requires_grad_(True)
                    loss(x).backward()

            times = median_times({"ours": lambda: block(ours_fn), "theirs": lambda: block(theirs_fn)}, repeats)
            times = {name: t / BLOCK for name, t in times.items()}
            ratio = times["ours"] / times["theirs"]
            print(f"| {name} | {mode} | {1e3 * times['ours']:.2f} | {1e3 * times['theirs']:.2f} | {ratio:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", type=int, nargs=4, default=[8, 3, 256, 256])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None, help="torch's intra-op threads (default: torch's own)")
    parser.add_argument("--eager-only", action="store_true", help="leave out the compiled rows")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__} on {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}")
    run_table(args.shape, args.repeats, ("eager",) if args.eager_only else ("eager", "compiled"))


if __name__ == "__main__":
    main()
