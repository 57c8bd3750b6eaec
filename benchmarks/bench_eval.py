"""Is onnxruntime at least as fast as torch on the evaluation graph?

Prints, from one run:

1. CPU, N×C×H×W (default 8×3×256×256, float32): the median time of each part of an evaluation
   graph (per-image cross-entropy, soft Dice, Lovasz-softmax, the hard metrics) and of the whole
   graph, torch eager (no_grad) against onnxruntime on CPU through :class:`OnnxEvaluator` (its
   value checks included, as a user runs it), with the ratio ort/torch (below 1: onnxruntime
   faster). Each runs with its own default threading (onnxruntime's idle threads spin for a
   while after a run, as torch's OpenMP threads do); the contenders run in interleaved blocks of
   ``--block`` calls, each block after one untimed call, so that one's spinning threads do not
   steal the other's cores in a timed call and a noisy machine slows both alike. ``--variants``
   adds onnxruntime with its threads not spinning, with one thread, with basic graph
   optimisation only, and the graph exported without the softmax rewrite.
2. GPU, if torch sees CUDA and onnxruntime's CUDA provider starts: the whole graph at
   16×4×512×512 (``--gpu-shape``), torch CUDA against onnxruntime CUDA fed with torch CUDA
   tensors (IOBinding, no host copy), each synchronised.
3. With ``--check-values``: what :class:`OnnxEvaluator`'s host-side value checks cost against a
   run of the whole graph on CPU at ``--shape``: the run without checks
   (``check_values=False``), the checks alone, and the run with them (the default), for numpy
   inputs, torch CPU tensors, and numpy inputs with an ignore index outside [0, C) (255, ~10 %
   of the pixels), which costs the check one more pass over the target. On a CUDA machine a row
   for torch CUDA tensors is added (the check runs on the device, with one host transfer).
4. With ``--floors``: the core of two graphs in onnxruntime's kernels against torch's own, the
   bound below which no graph of ours can go: the bare cross-entropy (log-sum-exp minus the
   target's logit) against torch's fused ``F.cross_entropy``, and Lovasz's sort (``TopK``)
   against ``torch.sort``.

    python benchmarks/bench_eval.py
    python benchmarks/bench_eval.py --repeats 15 --variants
    python benchmarks/bench_eval.py --block 1     # every call timed alone
    python benchmarks/bench_eval.py --threads 1   # torch and onnxruntime on one thread each
    python benchmarks/bench_eval.py --skip-cpu --floors --threads 1   # onnxruntime's kernel floors
    python benchmarks/bench_eval.py --skip-cpu            # GPU part only
    python benchmarks/bench_eval.py --skip-cpu --check-values   # value checks (and GPU)
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
from pathlib import Path
from unittest import mock

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import onnxruntime as ort  # noqa: E402

import unetweights.export as export  # noqa: E402
import unetweights.losses as L  # noqa: E402
import unetweights.metrics as M  # noqa: E402
from benchmarks._timing import median_times  # noqa: E402
from unetweights.evaluation import EvaluationGraph  # noqa: E402
from unetweights.runtime import OnnxEvaluator  # noqa: E402


def parts(num_classes: int, ignore_index=None) -> dict:
    class_weight = [1.0] * num_classes
    ignore = {} if ignore_index is None else {"ignore_index": ignore_index}
    losses = {
        "ce": L.WeightedCrossEntropyLoss(class_weight=class_weight, **ignore),
        "dice_loss": L.SoftDiceLoss(per_image=True, **ignore),
        "lovasz": L.LovaszSoftmaxLoss(per_image=True, **ignore),
    }
    metrics = {"dice": M.DiceScore(**ignore), "iou": M.IoUScore(**ignore), "accuracy": M.PixelAccuracy(**ignore)}
    graphs = {name: EvaluationGraph(losses={name: loss}) for name, loss in losses.items()}
    graphs["metrics"] = EvaluationGraph(metrics=metrics)
    graphs["whole graph"] = EvaluationGraph(losses=losses, metrics=metrics)
    return graphs


def inputs(shape, device="cpu", seed=0):
    g = torch.Generator().manual_seed(seed)
    n, c, *spatial = shape
    logits = 3.0 * torch.randn(shape, generator=g)
    target = torch.randint(0, c, (n, *spatial), generator=g)
    weight = 0.1 + 3.0 * torch.rand((n, *spatial), generator=g)
    return [x.to(device) for x in (logits, target, weight)]


def export_graph(graph, folder: Path, name: str, num_classes: int, rewrite: bool = True) -> Path:
    path = folder / f"{name.replace(' ', '_')}{'' if rewrite else '_plain'}.onnx"
    example = inputs((2, num_classes, 24, 20))
    if rewrite:
        export.to_onnx(graph, path, example)
    else:
        with mock.patch.object(export, "translations", lambda: None):
            export.to_onnx(graph, path, example)
    return path


# onnxruntime's idle threads spin by default; the variant that sleeps when idle instead (what a
# process that shares its cores with other work may want).
NO_SPIN = {"session.intra_op.allow_spinning": "0"}


def cpu_table(shape, repeats: int, variants: bool, folder: Path, block: int, threads=None) -> None:
    logits, target, weight = inputs(shape)
    arrays = [x.numpy() for x in (logits, target, weight)]
    print(f"CPU, {'x'.join(map(str, shape))} float32, torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"onnxruntime {ort.__version__} ({threads or 'its default'} threads), medians of {repeats} blocks of {block}")
    header = f"{'graph':<14} {'torch ms':>9} {'ort ms':>9} {'ort/torch':>9}"
    if variants:
        header += f" {'no spin':>9} {'1 thread':>9} {'basic opt':>9} {'no rewrite':>10}"
    print(header)
    for name, graph in parts(shape[1]).items():
        path = export_graph(graph, folder, name, shape[1])
        evaluator = OnnxEvaluator(path, providers="cpu", threads=threads)
        fns = {"torch": lambda: graph(logits, target, weight), "ort": lambda: evaluator(*arrays)}
        if variants:
            no_spin = OnnxEvaluator(path, providers="cpu", threads=threads, session_config=NO_SPIN)
            one_thread = OnnxEvaluator(path, providers="cpu", threads=1)
            basic = OnnxEvaluator(path, providers="cpu", threads=threads, optimization="basic")
            plain_path = export_graph(graph, folder, name, shape[1], rewrite=False)
            plain = OnnxEvaluator(plain_path, providers="cpu", threads=threads)
            fns.update({"no spin": lambda: no_spin(*arrays), "1 thread": lambda: one_thread(*arrays),
                        "basic": lambda: basic(*arrays), "plain": lambda: plain(*arrays)})
        with torch.no_grad():
            t = median_times(fns, repeats, block)
        row = f"{name:<14} {t['torch'] * 1e3:9.1f} {t['ort'] * 1e3:9.1f} {t['ort'] / t['torch']:9.2f}"
        if variants:
            row += f" {t['no spin'] / t['torch']:9.2f} {t['1 thread'] / t['torch']:9.2f} {t['basic'] / t['torch']:9.2f} {t['plain'] / t['torch']:10.2f}"
        print(row, flush=True)
    if variants:
        print("(variant columns are ort/torch ratios too)")


def gpu_table(shape, repeats: int, folder: Path) -> None:
    if not torch.cuda.is_available():
        print("GPU: skipped, torch sees no CUDA device")
        return
    graph = parts(shape[1])["whole graph"]
    path = export_graph(graph, folder, "whole graph", shape[1])
    evaluator = OnnxEvaluator(path, providers="auto")
    if evaluator.provider != "CUDAExecutionProvider":
        print(f"GPU: skipped, onnxruntime cannot use CUDA here: {evaluator.cuda_unavailable_reason}")
        return
    device = torch.device("cuda")
    logits, target, weight = inputs(shape, device)
    graph = graph.to(device)

    def torch_run():
        graph(logits, target, weight)
        torch.cuda.synchronize()

    def ort_run():
        evaluator(logits, target, weight)
        torch.cuda.synchronize()

    with torch.no_grad():
        outputs = evaluator(logits, target, weight)
        expected = graph(logits, target, weight)
        worst = max(float((outputs[k].double() - expected[k].double()).abs().max()) for k in expected)
        on_gpu = all(v.is_cuda for v in outputs.values())
        t = median_times({"torch": torch_run, "ort": ort_run}, repeats)
    print(f"GPU {torch.cuda.get_device_name()}, {'x'.join(map(str, shape))} float32, medians of {repeats}; "
          f"outputs on CUDA: {on_gpu}, max |ort - torch| = {worst:.2e}")
    print(f"{'whole graph':<14} torch {t['torch'] * 1e3:.2f} ms, ort {t['ort'] * 1e3:.2f} ms, ort/torch {t['ort'] / t['torch']:.2f}")


def check_table(shape, repeats: int, folder: Path) -> None:
    path = export_graph(parts(shape[1])["whole graph"], folder, "whole graph", shape[1])
    # Every part ignores 255, so to_onnx records it and the check masks it out of the target.
    ignoring = export_graph(parts(shape[1], ignore_index=255)["whole graph"], folder, "whole graph 255", shape[1])
    logits, target, weight = inputs(shape)
    ignored = target.clone()
    ignored[torch.rand(ignored.shape, generator=torch.Generator().manual_seed(1)) < 0.1] = 255
    cases = {
        "numpy": (path, [x.numpy() for x in (logits, target, weight)], "cpu"),
        "torch CPU": (path, [logits, target, weight], "cpu"),
        "numpy, ignore 255": (ignoring, [x.numpy() for x in (logits, ignored, weight)], "cpu"),
    }
    if torch.cuda.is_available():
        cases["torch CUDA"] = (path, [x.cuda() for x in (logits, target, weight)], "auto")
    print(f"Value checks, whole graph, {'x'.join(map(str, shape))} float32, medians of {repeats}")
    print(f"{'inputs':<18} {'run ms':>8} {'check ms':>9} {'checked run ms':>15} {'check/run':>10}")
    for name, (path, arrays, providers) in cases.items():
        options = dict(providers=providers)
        if providers == "cpu":
            options["session_config"] = NO_SPIN
        plain = OnnxEvaluator(path, check_values=False, **options)
        checked = OnnxEvaluator(path, **options)
        if name == "torch CUDA" and checked.provider != "CUDAExecutionProvider":
            print(f"{name:<18} skipped: {checked.cuda_unavailable_reason}")
            continue
        sync = torch.cuda.synchronize if name == "torch CUDA" else (lambda: None)

        def timed(fn):
            def call():
                fn()
                sync()
            return call

        fns = {
            "run": timed(lambda: plain(*arrays)),
            # The check alone, as run() calls it: one pass per input and one transfer to the host.
            "check": timed(lambda: checked._check_values(arrays, "")),
            "checked run": timed(lambda: checked(*arrays)),
        }
        t = median_times(fns, repeats)
        print(f"{name:<18} {t['run'] * 1e3:8.1f} {t['check'] * 1e3:9.2f} {t['checked run'] * 1e3:15.1f} "
              f"{t['check'] / t['run']:10.3f}", flush=True)


class _BareCrossEntropy(torch.nn.Module):
    """The least an exported cross-entropy runs: log-sum-exp minus the target's logit, summed per image."""

    def forward(self, logits, target):
        peak = logits.amax(1, keepdim=True)
        log_sum_exp = (logits - peak).exp().sum(1).log() + peak.squeeze(1)
        loss = log_sum_exp - logits.gather(1, target.unsqueeze(1)).squeeze(1)
        return loss.reshape(loss.shape[0], -1).sum(1)


class _Sort(torch.nn.Module):
    """Lovasz's sort: each row's errors in descending order, with the permutation."""

    def forward(self, errors):
        return torch.sort(errors, dim=-1, descending=True)


def floors_table(shape, repeats: int, folder: Path, threads) -> None:
    """What onnxruntime's kernels cost for the core of two graphs, against torch's own kernels."""
    logits, target, _ = inputs(shape)
    n, c, *spatial = shape
    errors = torch.rand(n * c, 1, int(np.prod(spatial)), generator=torch.Generator().manual_seed(2))
    export.to_onnx(_BareCrossEntropy(), folder / "bare_ce.onnx", inputs((2, c, 24, 20))[:2])
    export.to_onnx(_Sort(), folder / "sort.onnx", torch.rand(3, 1, 40))
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
    bare = ort.InferenceSession(str(folder / "bare_ce.onnx"), options, providers=["CPUExecutionProvider"])
    sort = ort.InferenceSession(str(folder / "sort.onnx"), options, providers=["CPUExecutionProvider"])
    feeds = [{i.name: x.numpy() for i, x in zip(session.get_inputs(), args)}
             for session, args in ((bare, (logits, target)), (sort, (errors,)))]
    fns = {
        "torch F.cross_entropy (fused, reduction='none')": lambda: torch.nn.functional.cross_entropy(logits, target, reduction="none"),
        "ort: max, sub, exp, sum, log, gather, sum": lambda: bare.run(None, feeds[0]),
        f"torch.sort, {n * c} rows of {errors.shape[-1]}": lambda: torch.sort(errors, dim=-1, descending=True),
        "ort: TopK (torch.sort's export), same rows": lambda: sort.run(None, feeds[1]),
    }
    with torch.no_grad():
        t = median_times(fns, repeats, 5)
    print(f"Floors, {'x'.join(map(str, shape))}, medians of {repeats} blocks of 5")
    for name, seconds in t.items():
        print(f"{name:<52} {seconds * 1e3:8.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs="+", default=[8, 3, 256, 256])
    parser.add_argument("--gpu-shape", type=int, nargs="+", default=[16, 4, 512, 512])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for both on the CPU (torch.set_num_threads and the session's); default: each its own")
    parser.add_argument("--block", type=int, default=5, help="calls per timed block on the CPU (1: each call timed alone)")
    parser.add_argument("--variants", action="store_true", help="also time ort variants (threads, optimisation, rewrite)")
    parser.add_argument("--skip-cpu", action="store_true", help="skip the CPU table of torch against onnxruntime")
    parser.add_argument("--floors", action="store_true",
                        help="also time onnxruntime's kernels for the core of the CE and Lovasz graphs against torch's")
    parser.add_argument("--check-values", action="store_true", help="also time the evaluator's value checks against a run")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    print(f"{platform.processor() or platform.machine()}, python {platform.python_version()}, numpy {np.__version__}")
    with tempfile.TemporaryDirectory() as folder:
        if not args.skip_cpu:
            cpu_table(tuple(args.shape), args.repeats, args.variants, Path(folder), args.block, args.threads)
        gpu_table(tuple(args.gpu_shape), args.repeats, Path(folder))
        if args.check_values:
            check_table(tuple(args.shape), args.repeats, Path(folder))
        if args.floors:
            floors_table(tuple(args.shape), args.repeats, Path(folder), args.threads)


if __name__ == "__main__":
    main()
