"""How much does an exact U-Net weight map cost, next to one distance transform?

For each case this prints, from one run, the median time of

- ``unet_weight_map`` and the unbounded ``nearest_two_distances`` (both on the two-nearest-label
  kernel, single thread),
- one ``scipy.ndimage.distance_transform_edt`` of the same mask (with its spacing): the unit,
- one seung-lab ``edt`` transform (the ``edt`` package, a benchmark-only dependency: the next bar
  to beat; it gives no second-nearest label), if it is installed,
- the per-object reference of the tests (one full-image EDT per object, two smallest kept),

and the ratios to one scipy EDT. The contenders run interleaved, so that a noisy machine slows
them alike; ratios from one run are what to compare. Then, unless skipped:

- peak memory of ``nearest_two_distances`` and ``unet_weight_map`` per voxel (tracemalloc, which
  numpy reports its arrays to), on the 3D case;
- ``threads=2`` against ``threads=1`` on the 3D volume and the 4096² mosaic (the kernel splits each
  axis's lines among native threads, the GIL released), with the outputs compared bit for bit;
- a fresh process: ``import unetweights`` and then the first map of a 512x512 mask.

    python benchmarks/bench_weightmaps.py                      # every case, 5 repeats
    python benchmarks/bench_weightmaps.py --cases 2d small3d --repeats 7 --skip-extras
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._timing import median_times  # noqa: E402
from tests.weightmaps.reference import reference_unet_weight_map  # noqa: E402
from unetweights import nearest_two_distances, unet_weight_map  # noqa: E402
from unetweights.synthetic import touching_nuclei  # noqa: E402

try:
    import edt as seung_edt
except ImportError:  # benchmark-only dependency: pip install edt
    seung_edt = None


def comb(shape, period=4, seed=1):
    """Adversarial for the kernel: label 1 owns every ``period``-th column, others fill between."""
    rng = np.random.default_rng(seed)
    labels = np.zeros(shape, dtype=np.int32)
    labels[:, ::period] = 1
    between = np.arange(period // 2, shape[1], period)
    labels[:, between] = rng.integers(2, 2 + len(between), size=len(between))
    return labels


# name: (make the labels, spacing, run the reference, target ratio to one scipy EDT)
CASES = {
    "2d": (lambda: touching_nuclei((512, 512), 125, radius=20.0, seed=1), (1.0, 1.0), True, 1.0),
    "mosaic": (lambda: touching_nuclei((4096, 4096), 8000, radius=20.0, seed=1), (1.0, 1.0), False, 1.0),
    "3d": (lambda: touching_nuclei((64, 256, 256), 200, radius=20.0, spacing=(2.0, 1.0, 1.0), seed=1), (2.0, 1.0, 1.0), False, 0.8),
    "small3d": (lambda: touching_nuclei((32, 64, 64), 50, radius=8.0, seed=1), (1.0, 1.0, 1.0), True, 1.2),
    "comb": (lambda: comb((512, 512)), (1.0, 1.0), False, 3.0),
    # A 3D training patch (nnU-Net's default 3D patches are around 128³): its ms per patch, no target.
    "patch": (lambda: touching_nuclei((128, 128, 128), 120, radius=12.0, seed=1), (1.0, 1.0, 1.0), False, None),
    "patch_aniso": (
        lambda: touching_nuclei((128, 128, 128), 120, radius=12.0, spacing=(3.0, 1.0, 1.0), seed=1), (3.0, 1.0, 1.0), False, None,
    ),
}


def run_case(name: str, repeats: int, ref_repeats: int) -> None:
    make, spacing, with_reference, target = CASES[name]
    labels = make()
    goal = "no target" if target is None else f"target: unet_weight_map at most {target:g}x one EDT"
    print(f"\n[{name}] shape {labels.shape}, spacing {spacing}, {len(np.unique(labels)) - 1} objects, "
          f"foreground {np.mean(labels > 0):.0%}; {goal}")
    contenders = {
        "one scipy EDT": lambda: ndi.distance_transform_edt(labels == 0, sampling=spacing),
        "unet_weight_map": lambda: unet_weight_map(labels, spacing=spacing),
        "nearest_two_distances": lambda: nearest_two_distances(labels, spacing=spacing),
    }
    if seung_edt is not None:
        contenders["one seung-lab edt"] = lambda: seung_edt.edt(labels == 0, anisotropy=spacing, parallel=1)
    timed = median_times(contenders, repeats)
    if with_reference:
        timed.update(median_times({"per-object reference": lambda: reference_unet_weight_map(labels, spacing=spacing)},
                                  ref_repeats))
    edt = timed["one scipy EDT"]
    for label, t in timed.items():
        print(f"  {label:26s} {t * 1e3:10.1f} ms   {t / edt:7.2f}x EDT")
    ours = timed["unet_weight_map"] / edt
    verdict = "" if target is None else f" (target {target:g}x: {'met' if ours <= target else 'not met'})"
    print(f"  => unet_weight_map {ours:.2f}x one EDT{verdict}")
    if seung_edt is not None:
        print(f"  => unet_weight_map {timed['unet_weight_map'] / timed['one seung-lab edt']:.2f}x one seung-lab edt")


def memory(repeats: int) -> None:
    labels = CASES["3d"][0]()
    spacing = CASES["3d"][1]
    print(f"\n[memory] peak of numpy allocations per voxel, {labels.shape} int32 labels")
    for label, fn in (("nearest_two_distances", nearest_two_distances), ("unet_weight_map", unet_weight_map)):
        tracemalloc.start()
        fn(labels, spacing=spacing)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"  {label:26s} {peak / labels.size:6.1f} B/voxel (outputs included)")


def threads(repeats: int) -> None:
    """The ``threads`` option: one volume and one large image, 1 against 2 threads, same bits."""
    for name in ("3d", "mosaic"):
        make, spacing = CASES[name][0], CASES[name][1]
        labels = make()
        one, two = (unet_weight_map(labels, spacing=spacing, threads=t) for t in (1, 2))
        same = one.tobytes() == two.tobytes()
        timed = median_times(
            {f"threads={t}": (lambda t=t: unet_weight_map(labels, spacing=spacing, threads=t)) for t in (1, 2)}, repeats
        )
        print(f"\n[threads] unet_weight_map on {name} {labels.shape} (outputs identical: {same})")
        for label, t in timed.items():
            print(f"  {label:26s} {t * 1e3:10.1f} ms")
        print(f"  => speed-up {timed['threads=1'] / timed['threads=2']:.2f}x with 2 threads (target 1.8x)")


FRESH = """
import time
start = time.perf_counter()
import unetweights
imported = time.perf_counter()
from unetweights.synthetic import touching_nuclei  # the test mask's maker (scipy): not timed
labels = touching_nuclei((512, 512), 125, radius=20.0, seed=1)
made = time.perf_counter()
unetweights.unet_weight_map(labels)
done = time.perf_counter()
print(f"{imported - start:.3f} {done - made:.3f}")
"""


def fresh_process(repeats: int) -> None:
    runs = []
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-c", FRESH], capture_output=True, text=True, check=True, cwd=ROOT)
        runs.append([float(v) for v in out.stdout.split()])
    imported, first = np.median(np.array(runs), axis=0)
    print(f"\n[fresh process] median of {repeats}: import unetweights {imported:.3f} s, first 512x512 map "
          f"{first:.3f} s, together {imported + first:.3f} s (issue 24's target: 0.25 s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per measurement (median)")
    parser.add_argument("--ref-repeats", type=int, default=3, help="timed runs of the slow reference")
    parser.add_argument("--skip-extras", action="store_true", help="only the cases: no memory, threads, fresh process")
    args = parser.parse_args()
    import importlib.metadata

    import scipy

    edt_version = importlib.metadata.version("edt") if seung_edt is not None else "not installed"
    print(f"numpy {np.__version__}, scipy {scipy.__version__}, edt {edt_version}; "
          f"medians of {args.repeats} runs ({args.ref_repeats} for the reference), after one warm-up run")
    for name in args.cases:
        run_case(name, args.repeats, args.ref_repeats)
    if not args.skip_extras:
        memory(args.repeats)
        threads(args.repeats)
        fresh_process(args.repeats)


if __name__ == "__main__":
    main()
