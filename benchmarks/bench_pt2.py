"""Four ways to run an evaluation graph outside training: torch eager, TorchScript, AOTInductor
(``to_pt2``) and onnxruntime (``to_onnx``), and what each costs to prepare.

Prints, from one run on the CPU at N×C×H×W (default 8×3×256×256, float32), for the graph of issue
25 (generalized Dice and weighted cross-entropy per image, Dice and IoU per class):

- prepare: what it takes before the first call (scripting and saving; torch.export and the
  AOTInductor compile; the ONNX export and the session), and loading the saved file;
- first call: the first run of the freshly loaded artefact (TorchScript's profiling executor and
  onnxruntime's first run do extra work there);
- steady: the median of ``--repeats`` runs, the contenders interleaved, and the ratio to eager.

Then the same for one weighted loss (``WeightedCrossEntropyLoss``, "mean"), forward + backward in
eager, TorchScript and ``torch.compile``; AOTInductor compiles inference graphs only (it has no
autograd), so its row is the forward alone.

    python benchmarks/bench_pt2.py
    python benchmarks/bench_pt2.py --shape 4 3 128 128 --repeats 10
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import unetweights.losses as L  # noqa: E402
import unetweights.metrics as M  # noqa: E402
from benchmarks._timing import median_times  # noqa: E402
from unetweights.evaluation import EvaluationGraph  # noqa: E402
from unetweights.export import to_onnx, to_pt2  # noqa: E402
from unetweights.runtime import OnnxEvaluator  # noqa: E402


def graph() -> EvaluationGraph:
    return EvaluationGraph(
        losses={"gdice": L.GeneralizedDiceLoss(per_image=True), "ce": L.WeightedCrossEntropyLoss()},
        metrics={"dice": M.DiceScore(), "iou": M.IoUScore()},
    )


def inputs(shape, seed=0):
    n, c, h, w = shape
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, c, h, w, generator=g), torch.randint(0, c, (n, h, w), generator=g), 0.5 + torch.rand(n, h, w, generator=g)


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def graph_table(shape, repeats: int, folder: Path) -> None:
    module = graph().eval()
    x = inputs(shape)
    small = inputs((2, shape[1], 24, 20), seed=1)
    arrays = [t.numpy() for t in x]
    prepared = {}

    def scripted():
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"`torch\.jit\.\w+` is deprecated")
            torch.jit.save(torch.jit.script(module), str(folder / "eval.pt"))

    _, prepared["TorchScript"] = timed(scripted)
    loaded_ts, load_ts = timed(lambda: torch.jit.load(str(folder / "eval.pt")))
    _, prepared["AOTInductor"] = timed(lambda: to_pt2(module, folder / "eval.pt2", small))
    from torch._inductor import aoti_load_package

    loaded_aoti, load_aoti = timed(lambda: aoti_load_package(str(folder / "eval.pt2")))
    _, prepared["onnxruntime"] = timed(lambda: to_onnx(module, folder / "eval.onnx", small))
    no_spin = {"session.intra_op.allow_spinning": "0"}  # as bench_eval: spinning threads would slow the others
    evaluator, load_ort = timed(lambda: OnnxEvaluator(str(folder / "eval.onnx"), providers="cpu", session_config=no_spin))

    runs = {
        "eager": lambda: module(*x),
        "TorchScript": lambda: loaded_ts(*x),
        "AOTInductor": lambda: loaded_aoti(*x),
        "onnxruntime": lambda: evaluator(*arrays),
    }
    loads = {"eager": 0.0, "TorchScript": load_ts, "AOTInductor": load_aoti, "onnxruntime": load_ort}
    prepared["eager"] = 0.0
    with torch.no_grad():
        first = {name: timed(fn)[1] for name, fn in runs.items()}
        steady = median_times(runs, repeats)
    print(f"\nevaluation graph {list(module.output_names)}, {'x'.join(map(str, shape))}, CPU, median of {repeats}")
    print("| path | prepare s | load s | first call ms | steady ms | steady / eager |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name in runs:
        print(f"| {name} | {prepared[name]:.1f} | {loads[name]:.3f} | {1e3 * first[name]:.1f} | "
              f"{1e3 * steady[name]:.1f} | {steady[name] / steady['eager']:.2f} |")
    note = "(TorchScript's prepare: script + save; AOTInductor's: to_pt2, which exports, compiles and checks;"
    print(note + " onnxruntime's: to_onnx, which exports and checks)")


def loss_table(shape, repeats: int, folder: Path) -> None:
    loss = L.WeightedCrossEntropyLoss()
    x0, target, weight = inputs(shape)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.\w+` is deprecated")
        scripted, script_s = timed(lambda: torch.jit.script(loss))
    compiled = torch.compile(loss)
    small = tuple(t[:2, ..., :24, :20].clone() for t in (x0, target, weight))
    package, aoti_s = timed(lambda: to_pt2(loss, folder / "loss.pt2", small))

    def step(fn):
        def run():
            x = x0.clone().requires_grad_(True)
            fn(x, target, weight).backward()

        return run

    runs = {"eager": step(loss), "TorchScript": step(scripted), "torch.compile": step(compiled)}
    first = {name: timed(fn)[1] for name, fn in runs.items()}
    with torch.no_grad():
        first["AOTInductor (forward only)"] = timed(lambda: package(x0, target, weight))[1]
    runs["AOTInductor (forward only)"] = lambda: package(x0, target, weight)
    runs["eager (forward only)"] = lambda: loss(x0, target, weight)
    with torch.no_grad():
        first["eager (forward only)"] = timed(runs["eager (forward only)"])[1]
    steady = median_times(runs, repeats)
    print(f"\nweighted cross-entropy ('mean'), {'x'.join(map(str, shape))}, CPU, forward + backward unless said, median of {repeats}")
    print(f"(scripting took {script_s:.1f} s, to_pt2 {aoti_s:.1f} s; torch.compile's first call includes its compile)")
    print("| path | first call ms | steady ms | steady / eager (same pass) |")
    print("| --- | --- | --- | --- |")
    for name in runs:
        base = steady["eager (forward only)"] if "forward only" in name else steady["eager"]
        print(f"| {name} | {1e3 * first[name]:.1f} | {1e3 * steady[name]:.1f} | {steady[name] / base:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", type=int, nargs=4, default=[8, 3, 256, 256])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=UserWarning)
    print(f"torch {torch.__version__} on {torch.get_num_threads()} threads, numpy {np.__version__}, "
          f"{platform.processor() or platform.machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        graph_table(tuple(args.shape), args.repeats, Path(tmp))
        loss_table(tuple(args.shape), args.repeats, Path(tmp))


if __name__ == "__main__":
    main()
