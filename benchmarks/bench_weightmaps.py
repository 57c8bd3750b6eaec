"""How much does an exact U-Net weight map cost, next to one distance transform?

For each case this prints, from one run, the median time of

- ``unet_weight_map`` (automatic strategy, and each strategy forced),
- one ``scipy.ndimage.distance_transform_edt`` of the same mask (with its spacing),
- the per-object reference of the tests (one full-image EDT per object, two smallest kept),

and the ratios between them. The contenders run interleaved (EDT, auto, windows, colouring, EDT,
...), so that a noisy machine slows them alike; ratios from one run are what to compare.

    python benchmarks/bench_weightmaps.py                 # all four cases, 5 repeats
    python benchmarks/bench_weightmaps.py --cases 2d small3d --repeats 7
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._timing import median_times  # noqa: E402
from tests.weightmaps.reference import reference_unet_weight_map  # noqa: E402
from unetweights import unet_weight_map  # noqa: E402
from unetweights.synthetic import touching_nuclei  # noqa: E402
from unetweights.weightmaps import distance  # noqa: E402

# name: (shape, objects, radius in physical units, spacing, run the reference)
CASES = {
    "2d": ((512, 512), 125, 20.0, (1.0, 1.0), True),
    "3d": ((64, 256, 256), 200, 20.0, (2.0, 1.0, 1.0), True),
    "small3d": ((32, 64, 64), 50, 8.0, (1.0, 1.0, 1.0), True),
    "mosaic": ((4096, 4096), 8000, 20.0, (1.0, 1.0), False),
}


def forced(strategy, labels, spacing):
    def run():
        distance._FORCED_STRATEGY = strategy
        try:
            unet_weight_map(labels, spacing=spacing)
        finally:
            distance._FORCED_STRATEGY = None

    return run


def run_case(name: str, repeats: int, ref_repeats: int) -> None:
    shape, n_objects, radius, spacing, with_reference = CASES[name]
    labels = touching_nuclei(shape, n_objects, radius=radius, spacing=spacing, seed=1)
    n_found = int(labels.max())
    touching = np.count_nonzero(ndi.grey_dilation(labels, size=3) != ndi.grey_erosion(labels, size=3))
    print(f"\n[{name}] shape {shape}, spacing {spacing}, {n_found} objects of radius {radius:g}, "
          f"foreground {np.mean(labels > 0):.0%}, contact/edge pixels {touching / labels.size:.1%}")

    contenders = {"one scipy EDT": lambda: ndi.distance_transform_edt(labels == 0, sampling=spacing)}
    for strategy in (None, "windows", "colouring"):
        contenders[f"unet_weight_map [{strategy or 'auto'}]"] = forced(strategy, labels, spacing)
    timed = median_times(contenders, repeats)
    if with_reference:
        timed.update(median_times({"per-object reference": lambda: reference_unet_weight_map(labels, spacing=spacing)},
                                  ref_repeats))
    rows = list(timed.items())
    edt = timed["one scipy EDT"]
    ours = timed["unet_weight_map [auto]"]
    ref = timed.get("per-object reference")
    for label, t in rows:
        line = f"  {label:32s} {t * 1e3:10.1f} ms   {t / edt:7.2f}x EDT"
        if with_reference:
            line += f"   reference/this {ref / t:7.1f}x"
        print(line)
    if with_reference:
        print(f"  => auto: {ours / edt:.2f}x one EDT, {ref / ours:.1f}x faster than the per-object reference")
    else:
        print(f"  => auto: {ours / edt:.2f}x one EDT")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES), default=list(CASES))
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per measurement (median)")
    parser.add_argument("--ref-repeats", type=int, default=5, help="timed runs of the slow reference")
    args = parser.parse_args()
    import scipy

    print(f"numpy {np.__version__}, scipy {scipy.__version__}; medians of {args.repeats} runs "
          f"({args.ref_repeats} for the reference), after one warm-up run")
    for name in args.cases:
        run_case(name, args.repeats, args.ref_repeats)


if __name__ == "__main__":
    main()
