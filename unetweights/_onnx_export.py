"""The torch side of :func:`unetweights.export.to_onnx` (and the example shapes of ``to_pt2``): what they derive, how they call the exporter.

- :func:`graph_ignore_index`: the target value that every part of an EvaluationGraph ignores,
  which ``to_onnx`` records in the file's metadata for :class:`~unetweights.runtime.OnnxEvaluator`.
- :func:`example_tuple`, :func:`dynamic_dims`, :func:`check_example_sizes` and
  :func:`torch_dynamic_shapes`: the example inputs, which of their dims are dynamic (shared by
  ``to_onnx`` and ``to_pt2``), and those dims as ``torch.export.Dim`` symbols, each with an example
  size that torch.export keeps symbolic.
- :func:`translations`: softmax and log-softmax written as reductions, for onnxruntime's speed.
- :func:`quiet_exporter`: the exporter's prints, logs and self-addressed warnings kept quiet.

Part of the export room: imports torch (onnxscript lazily) and ``evaluation``.
"""

import contextlib
import io
import logging
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from .evaluation import EvaluationGraph


def _ignore_values(module: nn.Module) -> List[Optional[int]]:
    """The ignore index of each part of ``module`` that takes class indices; None for "none"."""
    if hasattr(module, "ignore_index"):
        value = module.ignore_index
        return [value if isinstance(value, int) and not isinstance(value, bool) else None]
    children = list(module.children())
    if not children:
        # A leaf that names no ignore index (a custom metric, say) treats every value outside
        # [0, C) as a class index out of range.
        return [None]
    # A container (CombinedLoss) passes the target to each of its losses.
    return [value for child in children for value in _ignore_values(child)]


def graph_ignore_index(graph: EvaluationGraph) -> Optional[int]:
    """The target value that every loss and metric of ``graph`` ignores, or None if there is none.

    Each part contributes the ``ignore_index`` of the modules that compute it (every loss of a
    :class:`~unetweights.losses.CombinedLoss`); a part without one, or with ``ignore_index=None``,
    ignores nothing, and then no value is ignored by all. For example
    ``EvaluationGraph.default()`` has a cross-entropy that ignores -100 and metrics that ignore
    nothing: a target of -100 would make the metrics' outputs NaN, so the graph ignores none.
    """
    values = [value for part in (*graph.losses.values(), *graph.metrics.values()) for value in _ignore_values(part)]
    if not values or any(value is None for value in values) or len(set(values)) != 1:
        return None
    return values[0]


_SPATIAL_NAMES = {1: ["length"], 2: ["height", "width"], 3: ["depth", "height", "width"]}


def example_tuple(example_inputs: Any) -> Tuple[Tensor, ...]:
    """``example_inputs`` (one tensor or a sequence) as a tuple of detached tensors, checked."""
    inputs = (example_inputs,) if isinstance(example_inputs, Tensor) else tuple(example_inputs)
    if not inputs:
        raise ValueError("example_inputs: expected at least one tensor, got none")
    for i, x in enumerate(inputs):
        if not isinstance(x, Tensor):
            raise TypeError(f"example_inputs[{i}]: expected a tensor, got {type(x).__name__}")
    return tuple(x.detach() for x in inputs)


def dynamic_dims(example_inputs: Sequence[Tensor]) -> List[Dict[int, str]]:
    """The dims that :func:`to_onnx` makes dynamic, with their symbol names, for each input.

    Segmentation layout: the first input is (N, C, *spatial). Dim 0 of every input is the batch,
    and the trailing ``len(spatial)`` dims of every input are the spatial dims, named "height"
    and "width" in 2D and "depth", "height", "width" in 3D. Dims in between (channels) stay
    fixed.
    """
    first = example_inputs[0]
    if first.dim() < 2:
        raise ValueError(
            f"example_inputs[0]: expected shape (N, C, *spatial) to derive the dynamic dims, got {list(first.shape)}"
        )
    rank = first.dim() - 2
    spatial = _SPATIAL_NAMES.get(rank, [f"spatial_{k}" for k in range(rank)])
    dims: List[Dict[int, str]] = []
    for i, x in enumerate(example_inputs):
        if x.dim() < rank + 1:
            raise ValueError(
                f"example_inputs[{i}]: expected a batch dim and {rank} spatial dims, got shape {list(x.shape)}"
            )
        spec = {0: "batch"}
        spec.update({x.dim() - rank + k: spatial[k] for k in range(rank)})
        dims.append(spec)
    return dims


def check_example_sizes(example_inputs: Sequence[Tensor], dims: Sequence[Dict[int, str]]) -> None:
    for i, (x, spec) in enumerate(zip(example_inputs, dims)):
        for d, name in spec.items():
            if x.shape[d] < 2:
                raise ValueError(
                    f"example_inputs[{i}]: dim {d} ('{name}') has size {x.shape[d]}; torch.export fixes sizes 0 "
                    "and 1, so give every dynamic dim an example size of at least 2"
                )


def torch_dynamic_shapes(dims: Sequence[Dict[int, str]]) -> Tuple[Dict[int, Any], ...]:
    symbols: Dict[str, Any] = {}
    shapes = []
    for spec in dims:
        shapes.append({d: symbols.setdefault(name, torch.export.Dim(name)) for d, name in spec.items()})
    return tuple(shapes)


def translations() -> Dict[Any, Any]:
    """Softmax and log-softmax written as reductions along their axis, for onnxruntime's sake.

    onnxruntime runs Softmax and LogSoftmax on an axis other than the last by transposing the
    tensor, which made them 4-8x slower than torch on (N, C, H, W) logits; a max, an exp and a
    sum along the class axis run at the speed of a few element-wise passes. Both forms subtract
    the maximum first, so they agree to float rounding.
    """
    from onnxscript import opset18 as op

    def log_softmax(self, dim: int, half_to_float: bool = False):
        axes = op.Constant(value_ints=[dim])
        shifted = op.Sub(self, op.ReduceMax(self, axes, keepdims=1))
        return op.Sub(shifted, op.Log(op.ReduceSum(op.Exp(shifted), axes, keepdims=1)))

    def softmax(self, dim: int, half_to_float: bool = False):
        axes = op.Constant(value_ints=[dim])
        exp = op.Exp(op.Sub(self, op.ReduceMax(self, axes, keepdims=1)))
        return op.Div(exp, op.ReduceSum(exp, axes, keepdims=1))

    aten = torch.ops.aten
    return {
        aten._log_softmax.default: log_softmax,
        aten.log_softmax.int: log_softmax,
        aten._softmax.default: softmax,
        aten.softmax.int: softmax,
    }


@contextlib.contextmanager
def quiet_exporter():
    """Silence the exporter's progress prints, info logs and the warnings it raises for itself."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "torch._export", "onnxscript")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.filterwarnings("ignore", message=r".*axis name.*will not be used", category=UserWarning)
            warnings.filterwarnings("ignore", message=r".*LeafSpec.*", category=FutureWarning)
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
