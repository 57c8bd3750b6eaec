"""Chunked weight maps on Dask against the in-memory function: throughput and peak memory.

A generated label volume (default 128×384×384 int32 with spacing 2×1×1, in zarr chunks of
64×128×128, so the volume is 18 chunks) is turned into its weight map zarr array three ways, each
in a fresh Python process so that its peak resident memory (``ru_maxrss``) is its own:

- in memory: read the whole volume, ``unetweights.unet_weight_map``, write the result;
- chunked: ``unetweights.dask.precompute_zarr`` on the local threaded scheduler (2 threads), with
  the zarr chunks, and again with chunks half as deep (16 chunks).

Each process reports its wall time and its peak resident memory above what it held after
imports, sampled every 2 ms during the work. The
chunked outputs are checked against the in-memory one (max abs difference, must be ≤ tol).

    python benchmarks/bench_dask.py
    python benchmarks/bench_dask.py --shape 96 256 256 --chunks 48 128 128 --objects 600 --repeats 1
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from unetweights.synthetic import touching_nuclei  # noqa: E402

WORKER = r"""
import json, resource, sys, time
sys.path.insert(0, {root!r})
import numpy as np, zarr, dask
import unetweights
from unetweights.dask import precompute_zarr
mode, source, destination, chunks, options = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4]), json.loads(sys.argv[5])
options["spacing"] = tuple(options["spacing"])
import threading

def rss_mib():
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / 2**20

# ru_maxrss is a high-water mark that the imports may already have set, so sample the resident
# size during the work instead.
before = rss_mib()
peak = [before]
done = threading.Event()

def sample():
    while not done.is_set():
        peak[0] = max(peak[0], rss_mib())
        done.wait(0.002)

sampler = threading.Thread(target=sample, daemon=True)
sampler.start()
start = time.perf_counter()
if mode == "memory":
    labels = zarr.open(source, mode="r")[:]
    weights = unetweights.unet_weight_map(labels, **options)
    out = zarr.open(destination, mode="w", shape=weights.shape, chunks=tuple(chunks), dtype=np.float32)
    out[:] = weights
else:
    import dask.array as da
    from unetweights.dask import unet_weight_map
    with dask.config.set(scheduler="threads", num_workers=2):
        labels = da.from_zarr(source).rechunk(tuple(chunks))
        da.to_zarr(unet_weight_map(labels, **options), destination, mode="w")
seconds = time.perf_counter() - start
done.set()
sampler.join()
print(json.dumps({{"seconds": seconds, "peak_mib": peak[0] - before, "baseline_mib": before}}))
"""


def run(mode: str, source: str, destination: str, chunks, options) -> dict:
    code = WORKER.format(root=str(ROOT))
    result = subprocess.run(
        [sys.executable, "-c", code, mode, source, destination, json.dumps(list(chunks)), json.dumps(options)],
        capture_output=True, text=True, check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    import zarr

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs=3, default=[128, 384, 384])
    parser.add_argument("--chunks", type=int, nargs=3, default=[64, 128, 128])
    parser.add_argument("--objects", type=int, default=2000)
    parser.add_argument("--sigma", type=float, default=3.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    spacing = (2.0, 1.0, 1.0)
    options = {"sigma": args.sigma, "spacing": list(spacing)}
    shape, chunks = tuple(args.shape), tuple(args.chunks)
    half = (max(1, chunks[0] // 2),) + chunks[1:]

    with tempfile.TemporaryDirectory() as folder:
        labels = touching_nuclei(shape, args.objects, radius=10.0, spacing=spacing, seed=0)
        source = str(Path(folder) / "labels.zarr")
        zarr.open(source, mode="w", shape=shape, chunks=chunks, dtype=labels.dtype)[:] = labels
        voxels = int(np.prod(shape))
        chunk_mib = np.prod(chunks) * 4 / 2**20
        print(f"volume {list(shape)} int32 ({labels.nbytes / 2**20:.0f} MiB, {labels.max()} objects), spacing {list(spacing)}, "
              f"sigma {args.sigma:g}; zarr chunks {list(chunks)} ({chunk_mib:.0f} MiB as int32), "
              f"{voxels // int(np.prod(chunks))} chunks; medians of {args.repeats}")
        contenders = {
            "in memory": ("memory", chunks),
            f"chunked {list(chunks)}": ("chunked", chunks),
            f"chunked {list(half)}": ("chunked", half),
        }
        results = {name: [] for name in contenders}
        for _ in range(args.repeats):
            for name, (mode, c) in contenders.items():
                destination = str(Path(folder) / f"{mode}-{c[0]}.zarr")
                results[name].append(run(mode, source, destination, c, options))
        reference = zarr.open(str(Path(folder) / f"memory-{chunks[0]}.zarr"), mode="r")[:]
        print(f"{'':26s} {'seconds':>8s} {'Mvoxel/s':>9s} {'peak MiB':>9s} {'peak / volume':>13s} {'max |diff|':>11s}")
        for name, (mode, c) in contenders.items():
            seconds = statistics.median(r["seconds"] for r in results[name])
            peak = statistics.median(r["peak_mib"] for r in results[name])
            written = zarr.open(str(Path(folder) / f"{mode}-{c[0]}.zarr"), mode="r")[:]
            diff = float(np.abs(written - reference).max())
            print(f"{name:26s} {seconds:8.2f} {voxels / seconds / 1e6:9.2f} {peak:9.0f} {peak / (labels.nbytes / 2**20):13.2f} {diff:11.2e}")
        print(f"(peak: resident memory above the process's own after imports, about "
              f"{statistics.median(r['baseline_mib'] for r in results['in memory']):.0f} MiB; volume = the int32 labels)")


if __name__ == "__main__":
    main()
