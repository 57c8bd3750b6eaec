"""Weight maps under augmentation: compute on the fly, or precompute once and warp?

Both in a MONAI pipeline, on generated touching cells with a random rotation and scaling (and, in
2D, an elastic deformation): image bilinear, labels nearest.

- on the fly: the spatial transform, then ``WeightMapd`` on the augmented labels (exact);
- warp: ``unet_weight_map`` of the original labels computed once (not timed), then the same spatial
  transform on the map too, bilinear.

Both pipelines get the same random parameters (same seed). Printed per case: the median time per
sample of each workflow, and how far the warped map is from the map of the augmented labels,
over all pixels and over the border pixels (where the exact border term exceeds 1): mean and 99th
percentile of the absolute difference, with w0 = 10.

    python benchmarks/bench_workflows.py
    python benchmarks/bench_workflows.py --samples 20 --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import Compose, Rand2DElasticd, RandAffined

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from unetweights import unet_weight_map  # noqa: E402
from unetweights.monai import WeightMapd  # noqa: E402
from unetweights.synthetic import touching_nuclei  # noqa: E402

SIGMA = 5.0
CASES = {
    "2d": ((256, 256), 60, 14.0),
    "3d": ((48, 128, 128), 60, 12.0),
}


def spatial(keys, modes, ndim):
    steps = [RandAffined(keys=keys, prob=1.0, rotate_range=np.pi if ndim == 2 else (0.3, 0.0, 0.0), scale_range=0.15,
                         mode=modes, padding_mode="zeros")]
    if ndim == 2:
        steps.append(Rand2DElasticd(keys=keys, prob=1.0, spacing=(32, 32), magnitude_range=(1, 2), mode=modes))
    return steps


def run_case(name, n_samples, repeats):
    shape, n_objects, radius = CASES[name]
    ndim = len(shape)
    samples = []
    for seed in range(n_samples):
        labels = touching_nuclei(shape, n_objects, radius=radius, seed=seed)
        image = (labels > 0).astype(np.float32)
        samples.append({
            "image": MetaTensor(torch.as_tensor(image[None])),
            "label": MetaTensor(torch.as_tensor(labels[None])),
            "weight": MetaTensor(torch.as_tensor(unet_weight_map(labels, sigma=SIGMA)[None])),
        })
    on_the_fly = Compose([*spatial(["image", "label"], ("bilinear", "nearest"), ndim), WeightMapd(keys="label", sigma=SIGMA)])
    warp = Compose(spatial(["image", "label", "weight"], ("bilinear", "nearest", "bilinear"), ndim))
    times = {"on the fly": [], "warp": []}
    for _ in range(repeats):
        for label, pipeline in (("on the fly", on_the_fly), ("warp", warp)):
            start = time.perf_counter()
            for sample in samples:
                pipeline(sample)
            times[label].append((time.perf_counter() - start) / n_samples)
    # Accuracy: one random transform applied to the precomputed map too, and the exact map of the
    # labels it produced, side by side.
    both = Compose([*spatial(["image", "label", "weight"], ("bilinear", "nearest", "bilinear"), ndim),
                    WeightMapd(keys="label", weight_keys="exact", sigma=SIGMA)])
    both.set_random_state(seed=1)
    all_diff, border_diff = [], []
    for sample in samples:
        out = both(sample)
        exact, moved = out["exact"][0].numpy(), out["weight"][0].numpy()
        border = exact - unet_weight_map(out["label"][0].numpy(), sigma=SIGMA, w0=0.0) > 1.0
        diff = np.abs(moved - exact)
        all_diff.append(diff.ravel())
        border_diff.append(diff[border])
    all_diff = np.concatenate(all_diff)
    border_diff = np.concatenate(border_diff)
    on, wp = (statistics.median(times[k]) for k in ("on the fly", "warp"))
    print(f"\n[{name}] {shape}, {n_objects} touching objects, sigma {SIGMA:g}, w0 10, {n_samples} samples x {repeats}")
    print(f"  on the fly (augment + WeightMapd)  {on * 1e3:8.1f} ms/sample")
    print(f"  warp (augment the map too)         {wp * 1e3:8.1f} ms/sample   on the fly / warp {on / wp:5.2f}")
    print(f"  |warped - exact|, all pixels:    mean {all_diff.mean():.3f}  p99 {np.percentile(all_diff, 99):.3f}")
    print(f"  |warped - exact|, border pixels: mean {border_diff.mean():.3f}  p99 {np.percentile(border_diff, 99):.3f} "
          f"({border_diff.size / all_diff.size:.1%} of pixels)")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES), default=list(CASES))
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import monai

    print(f"monai {monai.__version__}, torch {torch.__version__} on {torch.get_num_threads()} threads; medians over repeats")
    for name in args.cases:
        run_case(name, args.samples, args.repeats)


if __name__ == "__main__":
    main()
