"""Make the inputs of ``unetweights_eval`` and Python's reference results; compare the two.

Run from the repository root with the project's venv::

    python export/cpp/make_inputs.py DIR [--ndim 2|3] [--batch N] [--classes C] [--size S ...] [--seed K]
    python export/cpp/make_inputs.py DIR --compare DIR/out.txt      # after the C++ program ran

The first form writes into DIR:

- ``loss.pt``: the training loss, scripted with :func:`unetweights.export.to_torchscript`, a
  :class:`~unetweights.losses.CombinedLoss` of class-weighted cross-entropy (ignore_index 255)
  and per-image soft Dice, returning a scalar;
- ``graph.pt``: the scripted :class:`~unetweights.evaluation.EvaluationGraph`, per-image losses
  (``ce``, ``dice_loss``) and metrics (``dice``, ``iou``, ``accuracy`` (N, C) and
  ``pixel_accuracy`` (N,));
- ``inputs.pt``: ``torch.save({"logits": ..., "target": ..., "weight": ...}, path)``: float32
  logits (N, C, *spatial), int64 target (N, *spatial) with some pixels at 255, and a float32
  weight map (N, *spatial) with values in [0.25, 3] and some zeros (no ``weight`` key with
  ``--no-weight``). C++ reads it with ``torch::jit::pickle_load``;
- ``reference.txt``: the eager Python results in the program's output format (below).

The second form reads the program's output and ``reference.txt`` next to it (or ``--reference``)
and checks that they hold the same tensors, with the same names, dtypes and shapes, to within
``--atol`` (1e-5); it exits 1 if they do not.

Results format (``unetweights_eval``'s OUT.txt, and reference.txt)
-----------------------------------------------------------------
A text file; lines starting with ``#`` are comments. Each tensor is one block: a header line
``NAME DTYPE NDIM D0 D1 ...`` (DTYPE as torch spells it: float32, int64, ...), then its
``D0*D1*...`` values in row-major order, one line per row of the last dim (a 0-dim tensor has
one value, an empty tensor none). Floats have enough digits to round-trip (9 significant digits
for float32, 17 for float64); NaN and infinities are ``nan``, ``inf``, ``-inf``. The names are
``graph.<output>`` for each evaluation-graph output in the graph's order, then ``loss`` (the
training loss, 0-dim) and ``grad`` (the gradient of the loss with respect to the logits).

Import it to use the same steps from Python (the tests do): :func:`make_inputs`,
:func:`read_results`, :func:`write_results`, :func:`compare_results`.
"""

import argparse
import math
import os
import sys
from typing import Dict, List, Optional, Sequence

import torch
from torch import Tensor

from unetweights.evaluation import EvaluationGraph
from unetweights.export import to_torchscript
from unetweights.losses import CombinedLoss, SoftDiceLoss, WeightedCrossEntropyLoss
from unetweights.metrics import DiceScore, IoUScore, PixelAccuracy

IGNORE_INDEX = 255
DEFAULT_SIZES = {2: (24, 40), 3: (6, 10, 14)}
FILE_NAMES = {"loss": "loss.pt", "graph": "graph.pt", "inputs": "inputs.pt", "reference": "reference.txt"}
HEADER = "# unetweights_eval results v1"


def class_weights(classes: int) -> Tensor:
    """A fixed, non-uniform class weight vector: 0.5, 1.0, 1.5, ... (C,)."""
    return torch.arange(1, classes + 1, dtype=torch.float32) * 0.5


def build_loss(classes: int) -> CombinedLoss:
    """The demo training loss: 1.0 x weighted cross-entropy + 0.5 x per-image soft Dice (a scalar)."""
    return CombinedLoss(
        [
            WeightedCrossEntropyLoss(class_weight=class_weights(classes), ignore_index=IGNORE_INDEX),
            SoftDiceLoss(per_image=True, ignore_index=IGNORE_INDEX),
        ],
        [1.0, 0.5],
    )


def build_graph(classes: int) -> EvaluationGraph:
    """The demo evaluation graph: per-image losses and hard metrics, ignoring label 255."""
    return EvaluationGraph(
        losses={
            "ce": WeightedCrossEntropyLoss(class_weight=class_weights(classes), ignore_index=IGNORE_INDEX),
            "dice_loss": SoftDiceLoss(per_image=True, ignore_index=IGNORE_INDEX),
        },
        metrics={
            "dice": DiceScore(ignore_index=IGNORE_INDEX),
            "iou": IoUScore(ignore_index=IGNORE_INDEX),
            "accuracy": PixelAccuracy(ignore_index=IGNORE_INDEX),
            "pixel_accuracy": PixelAccuracy(per_class=False, ignore_index=IGNORE_INDEX),
        },
    )


def random_inputs(
    ndim: int = 2,
    batch: int = 2,
    classes: int = 3,
    size: Optional[Sequence[int]] = None,
    seed: int = 0,
    weight: bool = True,
) -> Dict[str, Tensor]:
    """Random logits (N, C, *size), int64 target with ~10% ignored pixels and a weight map (N, *size)."""
    if ndim not in (2, 3):
        raise ValueError(f"ndim: expected 2 or 3, got {ndim}")
    size = tuple(DEFAULT_SIZES[ndim] if size is None else (int(s) for s in size))
    if len(size) != ndim or min(size) < 1:
        raise ValueError(f"size: expected {ndim} positive sizes, got {list(size)}")
    if batch < 1 or classes < 2:
        raise ValueError(f"batch, classes: expected batch >= 1 and classes >= 2, got {batch} and {classes}")
    generator = torch.Generator().manual_seed(seed)
    spatial = (batch,) + size
    logits = 2.0 * torch.randn((batch, classes) + size, generator=generator)
    target = torch.randint(0, classes, spatial, generator=generator)
    target[torch.rand(spatial, generator=generator) < 0.1] = IGNORE_INDEX
    inputs = {"logits": logits, "target": target}
    if weight:
        w = 0.25 + 2.75 * torch.rand(spatial, generator=generator)
        w[torch.rand(spatial, generator=generator) < 0.05] = 0.0
        inputs["weight"] = w
    return inputs


def reference_results(loss: torch.nn.Module, graph: EvaluationGraph, inputs: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """What ``unetweights_eval`` computes, in eager Python: graph outputs, the loss and its gradient."""
    logits, target, weight = inputs["logits"], inputs["target"], inputs.get("weight")
    results: Dict[str, Tensor] = {}
    with torch.no_grad():
        for name, value in graph(logits, target, weight).items():
            results[f"graph.{name}"] = value
    leaf = logits.detach().clone().requires_grad_(True)
    value = loss(leaf, target, weight)
    value.backward()
    results["loss"] = value.detach()
    results["grad"] = leaf.grad
    return results


def make_inputs(
    out_dir: str,
    ndim: int = 2,
    batch: int = 2,
    classes: int = 3,
    size: Optional[Sequence[int]] = None,
    seed: int = 0,
    weight: bool = True,
) -> Dict[str, str]:
    """Write loss.pt, graph.pt, inputs.pt and reference.txt into ``out_dir``; return their paths.

    The keys of the returned dict are "loss", "graph", "inputs" and "reference". Both modules are
    saved with :func:`~unetweights.export.to_torchscript`, which also checks that the reloaded
    modules match the eager ones on these inputs.
    """
    os.makedirs(out_dir, exist_ok=True)
    paths = {key: os.path.join(out_dir, name) for key, name in FILE_NAMES.items()}
    inputs = random_inputs(ndim, batch, classes, size, seed, weight)
    example = (inputs["logits"], inputs["target"]) + ((inputs["weight"],) if "weight" in inputs else ())
    loss = build_loss(classes)
    graph = build_graph(classes)
    to_torchscript(loss, paths["loss"], example_inputs=example)
    to_torchscript(graph, paths["graph"], example_inputs=example)
    torch.save({key: value.contiguous() for key, value in inputs.items()}, paths["inputs"])
    write_results(paths["reference"], reference_results(loss, graph, inputs))
    return paths


_DTYPES = {
    "float64": torch.float64,
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "int64": torch.int64,
    "int32": torch.int32,
    "int16": torch.int16,
    "int8": torch.int8,
    "uint8": torch.uint8,
    "bool": torch.bool,
}
_NAMES = {dtype: name for name, dtype in _DTYPES.items()}


def _format(value: float, digits: int) -> str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.{digits}g}"


def write_results(path: str, results: Dict[str, Tensor]) -> None:
    """Write named tensors in the results format (see the module docstring)."""
    lines = [HEADER]
    for name, tensor in results.items():
        if not name or any(c.isspace() for c in name):
            raise ValueError(f"results: names must be non-empty and without spaces, got {name!r}")
        tensor = tensor.detach().cpu()
        dtype = _NAMES.get(tensor.dtype)
        if dtype is None:
            raise ValueError(f"results['{name}']: unsupported dtype {tensor.dtype}")
        lines.append(" ".join([name, dtype, str(tensor.dim())] + [str(d) for d in tensor.shape]))
        if tensor.numel() == 0:
            continue
        rows = tensor.reshape(-1, tensor.shape[-1] if tensor.dim() else 1)
        if tensor.is_floating_point():
            digits = 17 if tensor.dtype == torch.float64 else 9
            for row in rows.double().tolist():
                lines.append(" ".join(_format(v, digits) for v in row))
        else:
            for row in rows.long().tolist():
                lines.append(" ".join(str(v) for v in row))
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")


def read_results(path: str) -> Dict[str, Tensor]:
    """Read a results file into an ordered dict of tensors; raise ValueError if it is malformed."""
    with open(path, encoding="utf-8") as handle:
        lines = [(i + 1, line.split()) for i, line in enumerate(handle) if line.strip() and not line.startswith("#")]
    results: Dict[str, Tensor] = {}
    k = 0
    while k < len(lines):
        number, header = lines[k]
        k += 1
        if len(header) < 3 or header[1] not in _DTYPES:
            raise ValueError(f"{path}:{number}: expected a header 'NAME DTYPE NDIM D0 ...', got {' '.join(header)!r}")
        name, dtype = header[0], _DTYPES[header[1]]
        try:
            ndim = int(header[2])
            shape = [int(d) for d in header[3:]]
        except ValueError:
            raise ValueError(f"{path}:{number}: non-integer NDIM or dims in {' '.join(header)!r}") from None
        if ndim != len(shape) or min(shape, default=0) < 0:
            raise ValueError(f"{path}:{number}: NDIM {ndim} does not match the dims {shape}")
        if name in results:
            raise ValueError(f"{path}:{number}: tensor '{name}' appears twice")
        count = math.prod(shape)
        values: List[str] = []
        while len(values) < count:
            if k >= len(lines):
                raise ValueError(f"{path}: tensor '{name}' has {len(values)} values, expected {count}")
            values.extend(lines[k][1])
            k += 1
        if len(values) != count:
            raise ValueError(f"{path}: tensor '{name}' has {len(values)} values, expected {count}")
        if dtype.is_floating_point:
            data = torch.tensor([float(v) for v in values], dtype=torch.float64)
        else:
            data = torch.tensor([int(v) for v in values], dtype=torch.int64)
        results[name] = data.reshape(shape).to(dtype)
    return results


def compare_results(actual: Dict[str, Tensor], expected: Dict[str, Tensor], atol: float = 1e-5) -> List[str]:
    """The differences between two result sets (names, order, dtypes, shapes, values); [] if none."""
    problems: List[str] = []
    if list(actual) != list(expected):
        problems.append(f"names: got {list(actual)}, expected {list(expected)}")
    for name in expected:
        if name not in actual:
            continue
        a, e = actual[name], expected[name]
        if a.dtype != e.dtype or a.shape != e.shape:
            problems.append(f"{name}: got {a.dtype} {list(a.shape)}, expected {e.dtype} {list(e.shape)}")
            continue
        if a.numel() == 0:
            continue
        a64, e64 = a.double(), e.double()
        same_nan = torch.isnan(a64) == torch.isnan(e64)
        # Equal values (infinities included) and NaN against NaN differ by 0.
        equal = (a64 == e64) | (torch.isnan(a64) & torch.isnan(e64))
        diff = torch.where(equal, torch.zeros_like(e64), (a64 - e64).abs())
        worst = float(diff.nan_to_num(nan=math.inf).max())
        if not bool(same_nan.all()) or not worst <= atol:
            problems.append(f"{name}: max abs difference {worst:.3g} > {atol:g}")
    return problems


def _parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Write loss.pt, graph.pt, inputs.pt and reference.txt for unetweights_eval into DIR, "
        "or (with --compare) check the program's output against reference.txt.",
    )
    parser.add_argument("dir", help="output folder (created if needed)")
    parser.add_argument("--ndim", type=int, choices=(2, 3), default=2, help="spatial dims (default 2)")
    parser.add_argument("--batch", type=int, default=2, help="images N (default 2)")
    parser.add_argument("--classes", type=int, default=3, help="classes C (default 3)")
    parser.add_argument(
        "--size", type=int, nargs="+", help="spatial sizes, ndim of them (default 24 40 in 2D, 6 10 14 in 3D)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--no-weight", action="store_true", help="leave the weight map out of inputs.pt")
    parser.add_argument(
        "--pt2", action="store_true",
        help="also write graph.pt2 (the graph as an AOTInductor package, for unetweights_aoti; compiling takes "
        "tens of seconds) and reference_graph.txt (the graph's outputs alone, to --compare its output with)",
    )
    parser.add_argument("--compare", metavar="OUT.txt", help="compare the program's output with the reference")
    parser.add_argument("--reference", metavar="REF.txt", help="reference for --compare (default DIR/reference.txt)")
    parser.add_argument("--atol", type=float, default=1e-5, help="absolute tolerance for --compare (default 1e-5)")
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parse_args(argv)
    if args.compare:
        reference = args.reference or os.path.join(args.dir, FILE_NAMES["reference"])
        problems = compare_results(read_results(args.compare), read_results(reference), args.atol)
        for problem in problems:
            print(f"MISMATCH {problem}")
        if problems:
            return 1
        print(f"{args.compare} matches {reference} (atol {args.atol:g})")
        return 0
    paths = make_inputs(args.dir, args.ndim, args.batch, args.classes, args.size, args.seed, not args.no_weight)
    inputs = torch.load(paths["inputs"])
    for key, value in inputs.items():
        print(f"{key:8s} {_NAMES[value.dtype]} {list(value.shape)}")
    for key in ("loss", "graph", "inputs", "reference"):
        print(f"wrote {paths[key]}")
    if args.pt2:
        from unetweights.export import to_pt2

        graph = build_graph(args.classes)
        example = tuple(inputs[key] for key in ("logits", "target", "weight") if key in inputs)
        package = os.path.join(args.dir, "graph.pt2")
        to_pt2(graph, package, example)
        reference = os.path.join(args.dir, "reference_graph.txt")
        with torch.no_grad():
            write_results(reference, {f"graph.{name}": value for name, value in graph(*example).items()})
        print(f"wrote {package}\nwrote {reference}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
