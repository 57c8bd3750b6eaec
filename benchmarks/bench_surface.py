"""Surface metrics (HD95, ASSD, NSD in one graph): onnxruntime, torch eager and MONAI, time and peak memory.

Two cases, N = 1 and C = 3 classes (background, an "organ", its "core"): 2D 1024×1024 with spacing
(1, 1), and 3D 128³ with spacing (2, 1, 1). The target thresholds a smooth random field (Gaussian
filter of white noise, 12 physical units in 2D, 8 in 3D) at its 60 % and 85 % quantiles, which
gives round blobs (in 2D about 90 organ and 150 core components, nuclei-like; in 3D a few large
organ-like ones); the prediction thresholds the same field plus a smaller, independent one, so
its boundaries wander by one to a few voxels (about 7.5 % of the voxels change class). The logits
are 4 × the one-hot prediction. The graph holds ``HausdorffDistance(percentile=95)``,
``AverageSurfaceDistance()`` and ``SurfaceDice(tolerance=2)``, all with the case's spacing and
``include_background=False`` (MONAI's default), so it computes the pair of exact distance
transforms once for the three.

Printed, from one run:

1. the export time of each case's graph (``unetweights.export.to_onnx``, once, on small example
   inputs: the graph has dynamic sizes);
2. time: the median of ``--repeats`` runs after one warm-up, interleaved, of the exported graph
   in onnxruntime (CPU, through :class:`OnnxEvaluator`), of the same graph in torch eager
   (``no_grad``), and of MONAI's three functions (``compute_hausdorff_distance``,
   ``compute_average_surface_distance(symmetric=True)``, ``compute_surface_dice(use_subvoxels=False)``)
   on the one-hot prediction and target (their input; making it is not timed), with ours / MONAI;
3. peak memory: each contender again in a fresh process that loads its session or graph and the
   inputs, resets the kernel's high-water mark (``/proc/self/clear_refs``), runs once, and reads
   ``VmHWM`` (what ``ru_maxrss`` reports): the peak resident memory of the run, and its increase
   over the resident memory once loaded. The process's peak while loading is printed too.
   OnnxEvaluator imports torch (about 0.5 GiB resident), so two more rows run the graph in a bare
   ``onnxruntime.InferenceSession`` in a process that imports numpy and onnxruntime only, with
   and without onnxruntime's CPU memory arena;
4. with ``--profile``: one onnxruntime run per case under its profiler, kernel time per op type.

The values of onnxruntime and torch (from their last timed runs) are compared with MONAI's: max |difference|.

    python benchmarks/bench_surface.py                     # both cases, 3 repeats: about 8 minutes on 2 cores
    python benchmarks/bench_surface.py --cases 3d --repeats 5
    python benchmarks/bench_surface.py --cases 3d --profile   # plus onnxruntime's time per op type
"""

from __future__ import annotations

import argparse
import collections
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import unetweights.metrics as M  # noqa: E402
from benchmarks._timing import median_times  # noqa: E402
from unetweights.evaluation import EvaluationGraph  # noqa: E402

# name: (label, spatial shape, spacing, smoothing scale in physical units, small example shape for export)
CASES = {
    "2d": ("2D 1024×1024, spacing (1, 1)", (1024, 1024), (1.0, 1.0), 12.0, (24, 20)),
    "3d": ("3D 128³, spacing (2, 1, 1)", (128, 128, 128), (2.0, 1.0, 1.0), 8.0, (8, 12, 10)),
}
TOLERANCE = 2.0  # NSD tolerance, physical units
# onnxruntime's idle threads spin by default; interleaved with torch they would steal its cores.
NO_SPIN = {"session.intra_op.allow_spinning": "0"}


def masks(spatial, spacing, scale: float, classes: int, seed: int = 0):
    """(target, prediction) class maps, int64: a smooth field thresholded, and the same field perturbed."""
    rng = np.random.default_rng(seed)
    sigma = [scale / s for s in spacing]

    def field(sigma):
        f = ndimage.gaussian_filter(rng.standard_normal(spatial, dtype=np.float32), sigma)
        return (f - f.mean()) / f.std()

    base, wander = field(sigma), field([s / 2 for s in sigma])
    levels = np.quantile(base, [0.6, 0.85, 0.95][: classes - 1])
    return np.digitize(base, levels).astype(np.int64), np.digitize(base + 0.15 * wander, levels).astype(np.int64)


def graph(spacing) -> EvaluationGraph:
    options = {"spacing": list(spacing), "include_background": False}
    return EvaluationGraph(metrics={
        "hd95": M.HausdorffDistance(percentile=95.0, **options),
        "assd": M.AverageSurfaceDistance(symmetric=True, **options),
        "nsd": M.SurfaceDice(tolerance=TOLERANCE, **options),
    })


def monai_metrics(spacing, classes: int):
    """MONAI's three functions on one-hot (N, C, *) float tensors, returning a dict like the graph's."""
    from monai.metrics import compute_average_surface_distance, compute_hausdorff_distance, compute_surface_dice

    spacing = list(spacing)

    def run(y_pred, y):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return {
                "hd95": compute_hausdorff_distance(y_pred, y, include_background=False, percentile=95, spacing=spacing),
                "assd": compute_average_surface_distance(y_pred, y, include_background=False, symmetric=True, spacing=spacing),
                "nsd": compute_surface_dice(y_pred, y, [TOLERANCE] * (classes - 1), include_background=False,
                                            spacing=spacing, use_subvoxels=False),
            }

    return run


def one_hot(classes_map: np.ndarray, classes: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.from_numpy(classes_map), classes).movedim(-1, 1).float()


def load(folder: Path, case: str):
    """The inputs saved by the parent: logits (1, C, *) float32, target and prediction (1, *) int64."""
    return [np.load(folder / f"{case}_{name}.npy") for name in ("logits", "target", "prediction")]


def contender(name: str, folder: Path, case: str, classes: int):
    """A callable running ``name`` once on the case's inputs, everything loaded beforehand."""
    spacing = CASES[case][2]
    logits, target, prediction = load(folder, case)
    if name == "onnxruntime":
        from unetweights.runtime import OnnxEvaluator

        evaluator = OnnxEvaluator(folder / f"{case}.onnx", providers=["CPUExecutionProvider"], session_config=NO_SPIN)
        return lambda: evaluator.run(logits, target)
    if name == "torch":
        module = graph(spacing)
        x, t = torch.from_numpy(logits), torch.from_numpy(target)

        def run():
            with torch.no_grad():
                return module(x, t)

        return run
    run, y_pred, y = monai_metrics(spacing, classes), one_hot(prediction, classes), one_hot(target, classes)
    return lambda: run(y_pred, y)


def status_mib() -> dict:
    with open("/proc/self/status") as handle:
        fields = dict(line.split(":", 1) for line in handle)
    return {key: int(fields[key].split()[0]) / 1024 for key in ("VmRSS", "VmHWM")}


# One run, measured: resident memory once loaded, then the high-water mark reset to it (Linux >= 4.0),
# so that VmHWM (and ru_maxrss) becomes the peak of the run alone.
MEASURE = """
loaded = status_mib()
with open("/proc/self/clear_refs", "w") as handle:
    handle.write("5")
start = time.perf_counter()
run()
seconds = time.perf_counter() - start
after = status_mib()
print(json.dumps({
    "loaded_mib": loaded["VmRSS"], "loading_peak_mib": loaded["VmHWM"], "run_peak_mib": after["VmHWM"],
    "ru_maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "seconds": seconds,
}))
"""
# A bare onnxruntime session, in a process that imports numpy and onnxruntime only (OnnxEvaluator
# imports torch, about 0.5 GiB resident): what a deployment without torch pays.
BARE = r"""
import json, resource, sys, time
import numpy as np
import onnxruntime as ort

def status_mib():
    with open("/proc/self/status") as handle:
        fields = dict(line.split(":", 1) for line in handle)
    return {key: int(fields[key].split()[0]) / 1024 for key in ("VmRSS", "VmHWM")}

folder, case, arena = sys.argv[1], sys.argv[2], sys.argv[3] == "arena"
options = ort.SessionOptions()
options.enable_cpu_mem_arena = arena
session = ort.InferenceSession(f"{folder}/{case}.onnx", options, providers=["CPUExecutionProvider"])
feed = {i.name: np.load(f"{folder}/{case}_{name}.npy") for i, name in zip(session.get_inputs(), ("logits", "target"))}
""" + MEASURE.replace("run()", "session.run(None, feed)")


def worker(name: str, folder: Path, case: str, classes: int) -> None:
    """One run of one contender in this fresh process; prints its memory figures as JSON."""
    exec(MEASURE, {**globals(), "run": contender(name, folder, case, classes)})


def memory(name: str, folder: Path, case: str, classes: int) -> dict:
    if name.startswith("bare"):
        command = [sys.executable, "-c", BARE, str(folder), case, "arena" if name == "bare session" else "none"]
    else:
        command = [sys.executable, __file__, "--worker", name, "--folder", str(folder), "--cases", case,
                   "--classes", str(classes)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{name} {case} worker failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def profile(folder: Path, case: str, classes: int, top: int = 12) -> None:
    """One onnxruntime run with its profiler on: total time per op type, inner nodes of the Scan included."""
    import onnxruntime as ort

    logits, target, _ = load(folder, case)
    options = ort.SessionOptions()
    options.enable_profiling = True
    options.profile_file_prefix = str(folder / f"profile_{case}")
    session = ort.InferenceSession(str(folder / f"{case}.onnx"), options, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    session.run(None, dict(zip(names, [logits, target])))
    events = json.loads(Path(session.end_profiling()).read_text())
    per_type: dict = collections.defaultdict(lambda: [0.0, 0])
    run_us = sum(e["dur"] for e in events if e.get("cat") == "Session" and e["name"] == "model_run")
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            entry = per_type[e["args"]["op_name"]]
            entry[0] += e["dur"]
            entry[1] += 1
    print(f"onnxruntime profile, {CASES[case][0]}: model_run {run_us / 1e6:.2f} s; kernel time per op type "
          "(a Scan's time includes its body's nodes, which are listed too):")
    for op, (us, calls) in sorted(per_type.items(), key=lambda kv: -kv[1][0])[:top]:
        print(f"  {op:<22} {us / 1e6:8.2f} s  {100 * us / run_us:5.1f} % of the run  {calls:6d} calls")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES), default=sorted(CASES))
    parser.add_argument("--classes", type=int, default=3, choices=(2, 3, 4))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="also profile one onnxruntime run per case")
    parser.add_argument("--worker", choices=("onnxruntime", "torch", "monai"), help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.folder, args.cases[0], args.classes)
        return

    import monai
    import onnxruntime as ort

    from unetweights.export import to_onnx

    print(f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, python "
          f"{platform.python_version()}, torch {torch.__version__}, onnxruntime {ort.__version__}, MONAI {monai.__version__}; "
          f"N = 1, C = {args.classes}, background excluded, NSD tolerance {TOLERANCE:g}; medians of {args.repeats}")
    names = ("onnxruntime", "torch", "monai")
    bare = ("bare session", "bare session, no arena")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for case in args.cases:
            label, spatial, spacing, scale, example = CASES[case]
            target, prediction = masks(spatial, spacing, scale, args.classes)
            np.save(folder / f"{case}_target.npy", target[None])
            np.save(folder / f"{case}_prediction.npy", prediction[None])
            np.save(folder / f"{case}_logits.npy", (4.0 * one_hot(prediction[None], args.classes)).numpy())
            g = torch.Generator().manual_seed(0)
            inputs = (torch.randn((2, args.classes, *example), generator=g),
                      torch.randint(0, args.classes, (2, *example), generator=g))
            start = time.perf_counter()
            to_onnx(graph(spacing), folder / f"{case}.onnx", inputs)
            export_s = time.perf_counter() - start
            components = [ndimage.label(target == c)[1] for c in range(1, args.classes)]
            print(f"\n{label}: export {export_s:.1f} s ({(folder / f'{case}.onnx').stat().st_size / 1024:.0f} KiB); "
                  f"components per class {components}, {100 * (prediction != target).mean():.1f} % of voxels differ",
                  flush=True)

            values: dict = {}

            def keeping(name, fn):
                def call():
                    values[name] = fn()
                return call

            fns = {name: keeping(name, contender(name, folder, case, args.classes)) for name in names}
            times = median_times(fns, args.repeats)
            reference = {k: np.asarray(v, np.float64) for k, v in values["monai"].items()}
            for name in ("onnxruntime", "torch"):
                worst = max(float(np.abs(np.asarray(values[name][k], np.float64) - reference[k]).max()) for k in reference)
                print(f"  {name} vs MONAI: max |diff| {worst:.1e}")
            print("  values (classes 1, 2): " + ", ".join(f"{k} {np.round(v.ravel(), 4).tolist()}" for k, v in reference.items()))
            del fns, values
            peaks = {name: memory(name, folder, case, args.classes) for name in names + bare}
            rows.append((label, export_s, times, peaks))
            if args.profile:
                profile(folder, case, args.classes)

    print(f"\n{'case':<28} {'contender':<24} {'time s':>7} {'/ MONAI':>8} {'run peak MiB':>13} {'+ over loaded':>14} "
          f"{'loaded MiB':>11} {'loading peak':>13} {'1st run s':>10}")
    for label, export_s, times, peaks in rows:
        for name in names + bare:
            p = peaks[name]
            timed = f"{times[name]:7.2f} {times[name] / times['monai']:8.2f}" if name in times else f"{'':7} {'':8}"
            print(f"{label:<28} {name:<24} {timed} {p['run_peak_mib']:13.0f} {p['run_peak_mib'] - p['loaded_mib']:14.0f} "
                  f"{p['loaded_mib']:11.0f} {p['loading_peak_mib']:13.0f} {p['seconds']:10.2f}")
        print(f"{label:<28} {'to_onnx (export)':<24} {export_s:7.2f}")
    print("(time: median after a warm-up, interleaved; run peak: VmHWM of a fresh process over one run, reset after "
          "loading; + over loaded: that minus the resident memory once the session or graph and the inputs were loaded; "
          "loading peak: VmHWM before the reset; 1st run s: that run's time. bare session: a plain onnxruntime "
          "InferenceSession in a process without torch, with and without its CPU memory arena)")


if __name__ == "__main__":
    main()
