"""How far are our surface metrics (MONAI's voxel definition) from DeepMind's surface-distance?

DeepMind's ``surface_distance`` puts its surface points at voxel corners (the corners whose 2×2,
or 2×2×2, neighbourhood of voxels is partly inside the mask) and weights each by the length or
area of its surface element; ours (and MONAI's) are the centres of the mask voxels with a face
neighbour outside, each counted once. On the same masks the two give different numbers. This
script measures how different, on realistic shapes: as the target a blob, round in physical units,
with a smooth bumpy outline (radius 5-30 voxels of the finest axis; 5-24 in 3D, so that it stays
inside the image), and as the prediction the same blob moved by up to 1.5 voxels with smaller
bumps of its own, in four settings: 2D 256×256 with spacing (1, 1) and (2.5, 0.8), 3D 64×64×64
with spacing (1, 1, 1) and (3, 1, 1). τ, the NSD tolerance, is 1 and 2 voxels of the finest axis.

For each metric and setting it prints Δ = ours − DeepMind's over the shapes: its median and its
range [min, max] (distances in voxels of the finest axis: Δ divided by its spacing), then |Δ|
relative to DeepMind's value, median / max. The metrics: HD, the maximum
(``compute_robust_hausdorff(d, 100)``); HD95 (``compute_robust_hausdorff(d, 95)``, an
area-weighted percentile without interpolation, against our linearly interpolated one); ASD P→T
and T→P (the two directed means that DeepMind's ``compute_average_surface_distance`` returns,
against ours with ``symmetric=False`` each way); ASSD (ours pooled over both boundaries' voxels,
against DeepMind's pooled over both surfaces' area, (Σ a·d(gt→pred) + Σ b·d(pred→gt)) / (Σ a +
Σ b)); NSD at τ (``compute_surface_dice_at_tolerance``). Needs ``surface-distance`` (the test
extra).

    python benchmarks/compare_surface_definitions.py              # 20 shapes per setting, 1.5 minutes on 2 cores
    python benchmarks/compare_surface_definitions.py --shapes 50 --seed 1
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import surface_distance  # noqa: E402

import unetweights.metrics as M  # noqa: E402
from unetweights.evaluation import EvaluationGraph  # noqa: E402

SETTINGS = [
    ("2D 256², (1, 1)", (256, 256), (1.0, 1.0), (5.0, 30.0)),
    ("2D 256², (2.5, 0.8)", (256, 256), (2.5, 0.8), (5.0, 30.0)),
    ("3D 64³, (1, 1, 1)", (64, 64, 64), (1.0, 1.0, 1.0), (5.0, 24.0)),
    ("3D 64³, (3, 1, 1)", (64, 64, 64), (3.0, 1.0, 1.0), (5.0, 24.0)),
]
# Output name: the label of the table's row.
METRICS = {
    "hd": "HD", "hd95": "HD95", "assd": "ASSD", "asd_pt": "ASD P→T", "asd_tp": "ASD T→P",
    "nsd1": "NSD τ = 1 voxel", "nsd2": "NSD τ = 2 voxels",
}
DISTANCES = {"hd", "hd95", "assd", "asd_pt", "asd_tp"}


def blob_pair(rng: np.random.Generator, shape, spacing, radius: float):
    """(target, prediction) bool masks: a blob of ``radius`` voxels of the finest axis with a bumpy
    outline, and the same blob moved by up to 1.5 voxels with smaller bumps of its own.

    The blob is round in physical units, so it spans fewer voxels along a coarse axis.
    """
    step = np.asarray(spacing, float)
    radius = radius * step.min()
    axes = np.meshgrid(*[np.arange(n) * s for n, s in zip(shape, step)], indexing="ij")
    centre = (np.asarray(shape) / 2 + rng.uniform(-2, 2, len(shape))) * step

    def bumps(amplitude: float, scale: float) -> np.ndarray:
        field = ndimage.gaussian_filter(rng.standard_normal(shape), scale / step)
        return amplitude * field / field.std()

    def inside(offset: np.ndarray, outline: np.ndarray) -> np.ndarray:
        r = np.sqrt(sum((a - c - o) ** 2 for a, c, o in zip(axes, centre, offset)))
        return r < radius * (1.0 + outline)

    outline = bumps(0.12, radius / 2)
    target = inside(np.zeros(len(shape)), outline)
    shift = rng.uniform(-1.5, 1.5, len(shape)) * step.min()
    prediction = inside(shift, outline + bumps(0.04, radius / 4))
    return target, prediction


def ours(target: np.ndarray, prediction: np.ndarray, spacing, taus) -> dict:
    """Our metrics of one pair: one graph (one pair of distance transforms) and the reverse ASD."""
    options = {"activation": "none", "spacing": list(spacing)}
    metrics = {
        "hd": M.HausdorffDistance(percentile=100.0, **options),
        "hd95": M.HausdorffDistance(percentile=95.0, **options),
        "assd": M.AverageSurfaceDistance(**options),
        "asd_pt": M.AverageSurfaceDistance(symmetric=False, **options),
    }
    for k, tau in enumerate(taus, 1):
        metrics[f"nsd{k}"] = M.SurfaceDice(tolerance=tau, **options)
    t = torch.as_tensor(target[None, None], dtype=torch.float32)
    p = torch.as_tensor(prediction[None, None], dtype=torch.float32)
    with torch.no_grad():
        out = {name: float(value) for name, value in EvaluationGraph(metrics=metrics)(p, t).items()}
        out["asd_tp"] = float(M.average_surface_distance(t, p, symmetric=False, **options))
    return out


def deepmind(target: np.ndarray, prediction: np.ndarray, spacing, taus) -> dict:
    d = surface_distance.compute_surface_distances(target, prediction, spacing)
    to_pred, to_gt = surface_distance.compute_average_surface_distance(d)
    area_gt, area_pred = d["surfel_areas_gt"], d["surfel_areas_pred"]
    pooled = (np.sum(d["distances_gt_to_pred"] * area_gt) + np.sum(d["distances_pred_to_gt"] * area_pred)) / (
        area_gt.sum() + area_pred.sum()
    )
    out = {
        "hd": surface_distance.compute_robust_hausdorff(d, 100),
        "hd95": surface_distance.compute_robust_hausdorff(d, 95),
        "assd": pooled,
        "asd_pt": to_gt,
        "asd_tp": to_pred,
    }
    for k, tau in enumerate(taus, 1):
        out[f"nsd{k}"] = surface_distance.compute_surface_dice_at_tolerance(d, tau)
    return {name: float(value) for name, value in out.items()}


def measure(shape, spacing, radii, shapes: int, seed: int) -> dict:
    """Δ = ours − DeepMind's of each metric over ``shapes`` blob pairs: {metric: (Δ in voxels, |Δ| / DM)}."""
    rng = np.random.default_rng(seed)
    voxel = min(spacing)
    taus = [voxel, 2 * voxel]
    deltas = {name: [] for name in METRICS}
    for _ in range(shapes):
        target, prediction = blob_pair(rng, shape, spacing, rng.uniform(*radii))
        a, b = ours(target, prediction, spacing, taus), deepmind(target, prediction, spacing, taus)
        for name in METRICS:
            scale = voxel if name in DISTANCES else 1.0
            relative = abs(a[name] - b[name]) / b[name] if b[name] > 0 else (0.0 if a[name] == 0 else np.inf)
            deltas[name].append(((a[name] - b[name]) / scale, relative, b[name] / scale))
    return {name: np.array(rows) for name, rows in deltas.items()}


def signed(x: float) -> str:
    return f"{round(float(x), 2) + 0.0:+.2f}"  # + 0.0 turns -0.0 into 0.0: no "-0.00"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", type=int, default=20, help="blob pairs per setting (default 20)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    # surface-distance 0.1 calls scipy.ndimage's deprecated submodules.
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    print(f"ours − DeepMind's surface-distance, {args.shapes} blob pairs per setting, seed {args.seed}.")
    print("Each cell: median Δ [min Δ, max Δ] (distances in voxels of the finest axis, NSD as a fraction);")
    print("then |Δ| / DeepMind's value, median / max.\n")
    results = {label: measure(shape, spacing, radii, args.shapes, args.seed) for label, shape, spacing, radii in SETTINGS}
    print("| metric | " + " | ".join(label for label, *_ in SETTINGS) + " |")
    print("| --- " * (len(SETTINGS) + 1) + "|")
    for name, row in METRICS.items():
        cells = []
        for label, *_ in SETTINGS:
            rows = results[label][name]
            delta, relative = rows[:, 0], rows[:, 1]
            cells.append(
                f"{signed(np.median(delta))} [{signed(delta.min())}, {signed(delta.max())}]; "
                f"{100 * np.median(relative):.0f} % / {100 * relative.max():.0f} %"
            )
        print(f"| {row} | " + " | ".join(cells) + " |")
    typical = ", ".join(
        f"{label}: HD95 {np.median(results[label]['hd95'][:, 2]):.2f}, ASSD {np.median(results[label]['assd'][:, 2]):.2f}"
        for label, *_ in SETTINGS
    )
    print(f"\nDeepMind's medians (voxels of the finest axis): {typical}.")


if __name__ == "__main__":
    main()
