"""Train a small U-Net with and without U-Net weight maps, and score both with onnxruntime.

The same pipeline as `unetweights demo`, as a script whose knobs are arguments: generated images
of touching cells, weight maps computed in DataLoader workers (and cached on disk), a
torch.jit.script-ed weighted cross-entropy, the evaluation graph exported to ONNX and run by
onnxruntime, an object-level score, and figures.

    python examples/train_unet.py --out train_out
    python examples/train_unet.py --steps 600 --train-images 48 --w0 10 --sigma 3 --workers 2
"""

import argparse
from pathlib import Path

from unetweights.demo import run_demo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="train_out")
    parser.add_argument("--steps", type=int, default=300, help="Adam steps per model")
    parser.add_argument("--train-images", type=int, default=24)
    parser.add_argument("--test-images", type=int, default=8)
    parser.add_argument("--size", type=int, default=96, help="image side, a multiple of 4")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers that compute the weight maps")
    parser.add_argument("--w0", type=float, default=10.0, help="border weight")
    parser.add_argument("--sigma", type=float, default=3.0, help="border width in pixels")
    parser.add_argument("--providers", default="auto", choices=["auto", "cuda", "cpu"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    result = run_demo(
        Path(args.out), steps=args.steps, n_train=args.train_images, n_test=args.test_images, size=args.size,
        workers=args.workers, seed=args.seed, w0=args.w0, sigma=args.sigma, providers=args.providers,
    )
    print()
    print(result.table())
    # Without matplotlib no figure is drawn, and figures_skipped says why.
    print("figures:", result.figures_skipped or ", ".join(str(p) for p in result.files))


if __name__ == "__main__":
    main()
