"""Weight maps ahead of training: precompute throughput, and what the dataset cache costs per sample.

1. ``precompute`` over a folder of 512×512 masks of touching nuclei, with 1 and with 2 workers,
   interleaved (1, 2, 1, 2, ...), each run into a fresh output folder. Prints masks/s and the
   2-worker / 1-worker ratio (target: >= 1.8 on 2 cores). The first run of each count is a warm-up
   and is left out: it also pays the one-time start of the process pool's fork server, printed
   separately. Interleaved with those runs, the same masks are read and their maps computed, not
   written, by one process and by a warm pool of two: the ratio the machine itself gives two
   processes of this work (the ceiling for precompute's ratio).
2. ``WeightMapDataset`` per sample, in µs: the base dataset alone (loads the mask .npy), the dataset
   on a cache hit, and the dataset without a cache (computes the map), plus the parts of a hit
   (hash of the mask, load of the entry, the target array).

    python benchmarks/bench_precompute.py                          # 64 masks, 5 repeats
    python benchmarks/bench_precompute.py --masks 96 --repeats 7 --format tif
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._timing import median_times  # noqa: E402
from unetweights.data import WeightMapDataset, precompute, read_mask  # noqa: E402
from unetweights.data._precompute import _pool_context  # noqa: E402
from unetweights.synthetic import touching_nuclei  # noqa: E402
from unetweights.weightmaps import unet_weight_map  # noqa: E402

SHAPE, OBJECTS, RADIUS = (512, 512), 125, 20.0


class MaskFolder:
    """The base dataset: (image, mask), the mask read from its file (read_mask) on every access."""

    def __init__(self, paths):
        self.paths = list(paths)

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        return None, read_mask(self.paths[index])


def write_masks(folder: Path, n: int, fmt: str) -> list[Path]:
    paths = []
    for k in range(n):
        mask = touching_nuclei(SHAPE, OBJECTS, radius=RADIUS, seed=k)
        path = folder / f"mask{k:03d}.{fmt}"
        if fmt == "npy":
            np.save(path, mask)
        else:
            import tifffile

            tifffile.imwrite(path, mask.astype(np.uint16))
        paths.append(path)
    return paths


def compute_only(path: Path) -> None:
    unet_weight_map(read_mask(path))


def bench_precompute(paths: list[Path], work: Path, repeats: int) -> None:
    n = len(paths)
    print(f"\n[precompute] {n} masks {SHAPE[0]}x{SHAPE[1]} ({OBJECTS} objects r={RADIUS:g}, {paths[0].suffix}), "
          f"default options, {repeats} repeats after one warm-up each, interleaved")
    counter = iter(range(10**6))

    def run(workers: int) -> float:
        out = work / f"out{next(counter)}"
        report = precompute(paths, out, workers=workers, progress=False)
        assert report.ok and report.written == n, report.summary()
        shutil.rmtree(out)
        return report.seconds

    first = {w: run(w) for w in (1, 2)}
    pool = ProcessPoolExecutor(2, mp_context=_pool_context())
    contenders = {
        "precompute, 1 worker": lambda: run(1),
        "precompute, 2 workers": lambda: run(2),
        "compute only, 1 process": lambda: [compute_only(p) for p in paths],
        "compute only, warm pool of 2": lambda: list(pool.map(compute_only, paths)),
    }
    contenders["compute only, warm pool of 2"]()
    seconds = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, fn in contenders.items():
            start = time.perf_counter()
            fn()
            seconds[name].append(time.perf_counter() - start)
    pool.shutdown()
    rate = {name: n / statistics.median(s) for name, s in seconds.items()}
    for name, s in seconds.items():
        runs = ", ".join(f"{n / t:.1f}" for t in s)
        print(f"  {name:30s} {rate[name]:6.1f} masks/s  ({statistics.median(s) / n * 1e3:5.1f} ms/mask; runs: {runs})")
    print(f"  warm-up runs: 1 worker {n / first[1]:.1f} masks/s, 2 workers {n / first[2]:.1f} masks/s "
          f"(the latter includes starting the fork server: "
          f"{first[2] - statistics.median(seconds['precompute, 2 workers']):+.2f} s)")
    ratio = rate["precompute, 2 workers"] / rate["precompute, 1 worker"]
    ceiling = rate["compute only, warm pool of 2"] / rate["compute only, 1 process"]
    paired = statistics.median(a / b for a, b in zip(seconds["precompute, 1 worker"], seconds["precompute, 2 workers"]))
    verdict = "met" if ratio >= 1.8 else "NOT met"
    print(f"  => precompute 2 workers / 1 worker: {ratio:.2f}x (medians; {paired:.2f}x median of paired runs); "
          f"target >= 1.8x {verdict}")
    print(f"  => the machine's own ratio for this work (compute only): {ceiling:.2f}x; "
          f"precompute reaches {ratio / ceiling:.0%} of it")


def bench_dataset(paths: list[Path], work: Path, repeats: int) -> None:
    n = len(paths)
    print(f"\n[dataset] per-sample cost over {n} masks {SHAPE[0]}x{SHAPE[1]}, median of {repeats} passes")
    base = MaskFolder(paths)
    cache = work / "cache"
    hit = WeightMapDataset(base, cache_dir=cache)
    hit_separated = WeightMapDataset(base, cache_dir=cache, target="separated")
    uncached = WeightMapDataset(base)
    for i in range(n):
        hit[i]
        hit_separated[i]
    masks = [base[i][1] for i in range(n)]
    entries = [hit.cache_path(m) for m in masks]

    def each(fn):
        return lambda: [fn(i) for i in range(n)]

    timed = median_times(
        {
            "base dataset alone (read_mask)": each(lambda i: base[i]),
            "WeightMapDataset, cache hit": each(lambda i: hit[i]),
            "WeightMapDataset, cache hit, target='separated'": each(lambda i: hit_separated[i]),
            "  part: sha256 of the mask": each(lambda i: hashlib.sha256(masks[i]).digest()),
            "  part: np.load of the cached map": each(lambda i: np.load(entries[i], allow_pickle=False)),
            "  part: target (mask > 0) as int64": each(lambda i: (masks[i] > 0).astype(np.int64)),
        },
        repeats,
    )
    timed.update(median_times({"WeightMapDataset, no cache (computes the map)": each(lambda i: uncached[i])},
                              max(1, repeats // 2)))
    assert hit.cache_info().misses == n, "every timed access of the cached dataset was a hit"
    per_sample = {label: t / n * 1e6 for label, t in timed.items()}
    for label, us in per_sample.items():
        print(f"  {label:50s} {us:9.0f} µs")
    base_us = per_sample["base dataset alone (read_mask)"]
    hit_us = per_sample["WeightMapDataset, cache hit"]
    cold_us = per_sample["WeightMapDataset, no cache (computes the map)"]
    print(f"  => cache hit adds {hit_us - base_us:.0f} µs per sample to loading the mask "
          f"({hit_us / base_us:.1f}x the base); computing instead adds {cold_us - base_us:.0f} µs "
          f"({(cold_us - base_us) / (hit_us - base_us):.0f}x the hit's overhead)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--masks", type=int, default=64, help="masks in the folder (default 64)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats (default 5)")
    parser.add_argument("--format", choices=["npy", "tif"], default="npy", help="mask file format (default npy)")
    parser.add_argument("--skip", choices=["precompute", "dataset"], help="leave one part out")
    args = parser.parse_args()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_precompute_") as tmp:
        work = Path(tmp)
        (work / "masks").mkdir()
        paths = write_masks(work / "masks", args.masks, args.format)
        if args.skip != "precompute":
            bench_precompute(paths, work, args.repeats)
        if args.skip != "dataset":
            bench_dataset(paths, work, args.repeats)
    print(f"\n(total {time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
