"""What the weight map costs inside nnU-Net's data pipeline, per sample, against nnU-Net's own augmentation.

nnU-Net's training transforms (``nnUNetTrainer.get_training_transforms``: spatial, intensity,
mirror, RemoveLabel, deep-supervision downsampling) on a generated segmentation of touching cells
(two classes), with and without ``with_maps`` (the U-Net map, w0 = 10, σ = 5, of the augmented
patch), in 2D (a 512×512 patch) and in 3D (128×128×128, nnU-Net's usual 3D patch size). Means over
samples with fresh random augmentations (nnU-Net's transforms are random, most of them applied
with a probability, so the mean is what a loader pays; the median is printed too), the two
pipelines interleaved.

    python benchmarks/bench_nnunet.py
    python benchmarks/bench_nnunet.py --repeats 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
    os.environ.setdefault(name, os.devnull)

from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer  # noqa: E402

from unetweights import WeightMapRecipe  # noqa: E402
from unetweights.nnunet import with_maps  # noqa: E402
from unetweights.synthetic import touching_nuclei  # noqa: E402

CASES = {
    "2D 512x512": dict(patch=(512, 512), objects=120, radius=16.0, rotation=(-np.pi, np.pi)),
    "3D 128x128x128": dict(patch=(128, 128, 128), objects=60, radius=12.0, rotation=(-0.52, 0.52)),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=20, help="samples per pipeline")
    args = parser.parse_args()
    print(f"torch {torch.__version__} on {torch.get_num_threads()} threads")
    print(
        "| patch | nnU-Net's augmentation: mean (median) | with the weight map: mean (median) | the map's share |\n"
        "| --- | --- | --- | --- |"
    )
    for name, case in CASES.items():
        ndim = len(case["patch"])
        scales = [[1.0] * ndim, [0.5] * ndim, [0.25] * ndim]
        base = nnUNetTrainer.get_training_transforms(
            patch_size=case["patch"], rotation_for_DA=case["rotation"], deep_supervision_scales=scales,
            mirror_axes=tuple(range(ndim)), do_dummy_2d_data_aug=False,
        )
        mapped = with_maps(base, WeightMapRecipe(sigma=5.0), 3)
        cells = touching_nuclei(case["patch"], case["objects"], radius=case["radius"], seed=0)
        seg = torch.from_numpy(np.where(cells > 0, 1 + (cells % 2), 0).astype(np.int16)[None])
        image = torch.rand(1, *case["patch"])
        times = {"base": [], "mapped": []}
        for _ in range(args.repeats + 1):
            for key, pipeline in (("base", base), ("mapped", mapped)):
                start = time.perf_counter()
                pipeline(image=image.clone(), segmentation=seg.clone())
                times[key].append(time.perf_counter() - start)
        mean = {k: statistics.mean(t[1:]) for k, t in times.items()}
        median = {k: statistics.median(t[1:]) for k, t in times.items()}
        share = (mean["mapped"] - mean["base"]) / mean["mapped"]
        print(
            f"| {name} | {1e3 * mean['base']:.0f} ms ({1e3 * median['base']:.0f}) | "
            f"{1e3 * mean['mapped']:.0f} ms ({1e3 * median['mapped']:.0f}) | {100 * share:.0f} % |"
        )


if __name__ == "__main__":
    main()
