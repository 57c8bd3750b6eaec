"""torchvision v2 and segmentation_models_pytorch: what the adapter costs, and our losses beside smp's.

Prints, from one run, two tables:

1. per sample, a v2 pipeline on generated touching cells (256×256, 60 objects): random rotation,
   elastic deformation and a resized crop, then either ``AddWeightMaps`` on the augmented mask
   ("on the fly", exact) or the same transforms on a ``WeightMap`` computed once beforehand and
   not timed ("warp", bilinear); and the augmentation alone, for scale;
2. forward + backward, eager, at N×C×H×W (default 8×3×256×256, float32, ``weight=None``): our
   losses against smp's at the settings where they agree (tests/losses/test_smp.py), with the
   ratio ours / smp.

Medians; contenders interleaved so that machine noise hits them alike.

    python benchmarks/bench_torchvision.py
    python benchmarks/bench_torchvision.py --samples 20 --repeats 7 --shape 8 3 128 128
"""

from __future__ import annotations

import argparse
import platform
import sys
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import segmentation_models_pytorch.losses as smp  # noqa: E402
from torchvision import tv_tensors  # noqa: E402
from torchvision.transforms import v2  # noqa: E402

import unetweights.losses as L  # noqa: E402
from benchmarks._timing import median_times  # noqa: E402
from unetweights import unet_weight_map  # noqa: E402
from unetweights.synthetic import touching_nuclei  # noqa: E402
from unetweights.torchvision import AddWeightMaps, WeightMap  # noqa: E402

warnings.filterwarnings("ignore", message=r"`torch\.jit\.\w+` is deprecated")


def _augment():
    return [v2.RandomRotation(180), v2.ElasticTransform(alpha=30.0), v2.RandomResizedCrop(224, scale=(0.6, 1.0), antialias=True)]


def workflows(samples: int, repeats: int) -> None:
    cases = []
    for seed in range(samples):
        labels = touching_nuclei((256, 256), 60, radius=12.0, seed=seed)
        image = tv_tensors.Image(torch.rand(1, 256, 256))
        mask = tv_tensors.Mask(torch.from_numpy(labels)[None])
        weight = WeightMap(torch.from_numpy(unet_weight_map(labels, sigma=5.0))[None])
        cases.append((image, mask, weight))
    augment, on_the_fly = v2.Compose(_augment()), v2.Compose([*_augment(), AddWeightMaps(sigma=5.0)])
    fns = {
        "augmentation alone": lambda: [augment(i, m) for i, m, _ in cases],
        "on the fly": lambda: [on_the_fly(i, m) for i, m, _ in cases],
        "warp": lambda: [augment(i, m, w) for i, m, w in cases],
    }
    times = median_times(fns, repeats)
    print(f"\n1. v2 pipeline per sample, 256x256, {samples} samples, median of {repeats}")
    print("| workflow | ms / sample | / warp |\n| --- | --- | --- |")
    for name, t in times.items():
        print(f"| {name} | {1e3 * t / samples:.1f} | {t / times['warp']:.2f} |")


def peers(shape, repeats: int) -> None:
    n, c, h, w = shape
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(n, c, h, w, generator=g)
    index = torch.randint(0, c, (n, h, w), generator=g)
    binary_logits = torch.randn(n, 1, h, w, generator=g)
    binary = (torch.rand(n, 1, h, w, generator=g) > 0.5).float()
    pairs = {
        "Dice (multiclass)": (lambda x: L.soft_dice_loss(x, index, smooth=1.0), smp.DiceLoss("multiclass", smooth=0.5, eps=0.0), "index"),
        "Jaccard (multiclass)": (lambda x: L.soft_jaccard_loss(x, index), smp.JaccardLoss("multiclass", smooth=1.0, eps=0.0), "index"),
        "Tversky (multiclass)": (
            lambda x: L.tversky_loss(x, index, alpha=0.3, beta=0.7), smp.TverskyLoss("multiclass", alpha=0.3, beta=0.7, smooth=1.0, eps=0.0), "index",
        ),
        "focal (binary)": (lambda x: L.focal_loss(x, binary, activation="sigmoid"), smp.FocalLoss("binary"), "binary"),
        "Lovasz (binary)": (lambda x: L.lovasz_hinge(x[:, 0], binary[:, 0]), smp.LovaszLoss("binary"), "binary"),
        "Lovasz (multiclass)": (lambda x: L.lovasz_softmax(x, index), smp.LovaszLoss("multiclass"), "index"),
        "soft BCE": (lambda x: L.weighted_bce_with_logits(x, binary), smp.SoftBCEWithLogitsLoss(), "binary"),
        "soft CE (label smoothing 0.1)": (
            lambda x: L.weighted_cross_entropy(x, index, label_smoothing=0.1), smp.SoftCrossEntropyLoss(smooth_factor=0.1), "index",
        ),
    }
    print(f"\n2. forward + backward, eager, {n}x{c}x{h}x{w} float32, weight=None, median of {repeats}")
    print("| loss | ours ms | smp ms | ours / smp |\n| --- | --- | --- | --- |")
    for name, (ours, theirs, kind) in pairs.items():
        x0 = logits if kind == "index" else binary_logits
        target = index if kind == "index" else binary

        def run(loss):
            x = x0.clone().requires_grad_(True)
            loss(x).backward()

        times = median_times({"ours": lambda: run(ours), "smp": lambda: run(lambda x: theirs(x, target))}, repeats)
        print(f"| {name} | {1e3 * times['ours']:.1f} | {1e3 * times['smp']:.1f} | {times['ours'] / times['smp']:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--shape", type=int, nargs=4, default=[8, 3, 256, 256])
    args = parser.parse_args()
    print(f"torch {torch.__version__} on {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}")
    workflows(args.samples, args.repeats)
    peers(args.shape, args.repeats)


if __name__ == "__main__":
    main()
