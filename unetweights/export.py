"""Export modules (evaluation graphs, losses) to ONNX, AOTInductor and TorchScript; check what was saved.

:func:`to_pt2` (torch.export and AOTInductor: C++ with libtorch, Python without the source) is
written in ``_pt2_export``, with its notes.

ONNX goes through torch's torch.export-based exporter with dynamic batch and spatial dims. That
exporter silently fixes any dim the code forces to be constant (a Python loop over the batch, a
size read into a Python int), so :func:`to_onnx` reads the saved file back and raises if a dim
meant to be dynamic came out fixed. ``onnx`` and ``onnxscript`` are needed (the ``onnx`` extra).

Files are written to a temporary file beside the destination and renamed into place once they
have passed every check, so a failed export leaves nothing behind (and an older file at the
destination as it was).
"""

import os
import warnings
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from ._artefacts import compare, default_opset, load_model
from ._files import check_output_file, written_in_place
from ._graph import IGNORE_INDEX_METADATA, INPUT_NAMES, LOGITS
from ._onnx_export import (
    check_example_sizes,
    dynamic_dims,
    example_tuple,
    graph_ignore_index,
    quiet_exporter,
    torch_dynamic_shapes,
    translations,
)
from ._pt2_export import INPUTS_METADATA, OUTPUTS_METADATA, to_pt2
from .evaluation import EvaluationGraph

DEFAULT_OPSET = 20
MIN_OPSET = 18

@dataclass(frozen=True)
class TensorSpec:
    """One input or output of a saved graph: its name, element type and shape.

    ``shape`` holds an int for each fixed dim and the symbol's name (a str) for each dynamic dim.
    """

    name: str
    dtype: str
    shape: Tuple[Union[int, str], ...]

    def __str__(self) -> str:
        return f"{self.name}: {self.dtype}[{', '.join(str(d) for d in self.shape)}]"


@dataclass(frozen=True)
class ExportReport:
    """What :func:`to_onnx` saved: the file, its opset, inputs and outputs, and size in bytes."""

    path: str
    opset: int
    inputs: Tuple[TensorSpec, ...]
    outputs: Tuple[TensorSpec, ...]
    file_size: int

    def __str__(self) -> str:
        lines = [f"{self.path} (opset {self.opset}, {self.file_size / 1024:.1f} KiB)", "inputs:"]
        lines += [f"  {spec}" for spec in self.inputs]
        lines.append("outputs:")
        lines += [f"  {spec}" for spec in self.outputs]
        return "\n".join(lines)


def _require_onnx():
    try:
        import onnx
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "to_onnx needs the onnx and onnxscript packages: pip install 'unetweights[onnx]'"
        ) from error
    return onnx


def _elem_type_name(onnx, elem_type: int) -> str:
    return onnx.helper.tensor_dtype_to_np_dtype(elem_type).name


def _specs(onnx, values) -> Tuple[TensorSpec, ...]:
    specs = []
    for value in values:
        tensor_type = value.type.tensor_type
        shape = tuple(d.dim_param if d.dim_param else d.dim_value for d in tensor_type.shape.dim)
        specs.append(TensorSpec(value.name, _elem_type_name(onnx, tensor_type.elem_type), shape))
    return tuple(specs)


def to_onnx(
    module: nn.Module,
    path: Union[str, os.PathLike],
    example_inputs: Any,
    dynamic: bool = True,
    opset: Optional[int] = None,
    input_names: Optional[Sequence[str]] = None,
    output_names: Optional[Sequence[str]] = None,
) -> ExportReport:
    """Export ``module`` to an ONNX file with dynamic batch and spatial dims, and check the file.

    Parameters
    ----------
    module : nn.Module
        An eager module, for example an :class:`~unetweights.evaluation.EvaluationGraph` or a
        loss. A ``torch.jit.ScriptModule`` is refused (the exporter cannot take one); export
        the eager module it was scripted from.
    path : str or os.PathLike
        Where to write the ``.onnx`` file (one file, no external data). Its folder must exist
        and take a new file, which is checked before the export; the graph goes to a temporary
        file there and is renamed to ``path`` once it has passed every check.
    example_inputs : Tensor or sequence of Tensor
        Inputs to trace with, in ``forward``'s order. Every dim that will be dynamic needs an
        example size of at least 2, and sizes that differ from each other keep the export
        honest (two dims that happen to be equal in the example are still separate symbols).
    dynamic : bool
        True: dim 0 of every input ("batch") and its trailing spatial dims (as many as
        ``example_inputs[0]`` has after (N, C)) are dynamic, see :func:`dynamic_dims`.
        False: every dim is fixed at its example size.
    opset : int, optional
        ONNX opset, at least 18; 20 by default. Softmax and log-softmax are written as max, exp
        and sum reductions along their axis, which onnxruntime runs several times faster than
        its Softmax and LogSoftmax ops on the class axis of (N, C, *) tensors.
    input_names, output_names : sequence of str, optional
        Names in the graph. By default an EvaluationGraph's inputs are "logits", "target",
        "weight" and its outputs its ``output_names``; otherwise the exporter's defaults.

    Returns
    -------
    ExportReport
        Inputs and outputs with their symbolic shapes, the opset and the file size.

    Raises
    ------
    TypeError
        For a ScriptModule, non-tensor example inputs, or a ``path`` that is not a str or
        os.PathLike.
    ValueError
        For an example size below 2 in a dynamic dim, or a ``path`` that is a folder, whose
        folder does not exist, or whose folder refuses a new file.
    RuntimeError
        If a dim meant to be dynamic came out fixed in the saved graph, or ``onnx.checker``
        rejects it. Nothing is written to ``path`` then.

    Notes
    -----
    For an EvaluationGraph exported with class-index targets ((N, *) beside (N, C, *) logits),
    the file's metadata_props record under :data:`IGNORE_INDEX_METADATA` the target value that
    every loss and metric of the graph ignores, if there is one: a value that one part ignores
    and another does not (the default graph's cross-entropy ignores -100, its metrics nothing)
    is not recorded. :class:`~unetweights.runtime.OnnxEvaluator` allows the recorded value in
    its target check.
    """
    onnx = _require_onnx()
    if isinstance(module, (torch.jit.ScriptModule, torch.jit.ScriptFunction)):
        raise TypeError(
            "module: the ONNX exporter cannot take a TorchScript module; pass the eager module it was scripted from"
        )
    if not isinstance(module, nn.Module):
        raise TypeError(f"module: expected an nn.Module, got {type(module).__name__}")
    inputs = example_tuple(example_inputs)
    opset = DEFAULT_OPSET if opset is None else int(opset)
    if opset < MIN_OPSET:
        raise ValueError(f"opset: the torch.export-based exporter writes opset {MIN_OPSET} or newer, got {opset}")
    if isinstance(module, EvaluationGraph):
        if input_names is None:
            input_names = INPUT_NAMES[: len(inputs)]
        if output_names is None:
            output_names = module.output_names
    dims = dynamic_dims(inputs) if dynamic else [{} for _ in inputs]
    check_example_sizes(inputs, dims)
    path = check_output_file(path, "path", "to_onnx")
    metadata: Dict[str, str] = {}
    if isinstance(module, EvaluationGraph) and len(inputs) >= 2:
        logits, target = inputs[0], inputs[1]
        if target.dim() == logits.dim() - 1 and not target.is_floating_point():
            ignore_index = graph_ignore_index(module)
            if ignore_index is not None:
                metadata[IGNORE_INDEX_METADATA] = str(ignore_index)
    with written_in_place(path, argument="path") as tmp:
        report = _export_checked(onnx, module, inputs, path, tmp, dims, dynamic, opset, input_names, output_names, metadata)
    return report


def _export_checked(
    onnx,
    module: nn.Module,
    inputs: Tuple[Tensor, ...],
    path: str,
    tmp: str,
    dims: Sequence[Dict[int, str]],
    dynamic: bool,
    opset: int,
    input_names: Optional[Sequence[str]],
    output_names: Optional[Sequence[str]],
    metadata: Dict[str, str],
) -> ExportReport:
    """Export to ``tmp``, add ``metadata``, and check the saved graph; the report names ``path``."""
    was_training = module.training
    module.eval()
    try:
        with quiet_exporter():
            torch.onnx.export(
                module,
                inputs,
                tmp,
                dynamo=True,
                opset_version=opset,
                dynamic_shapes=torch_dynamic_shapes(dims) if dynamic else None,
                input_names=None if input_names is None else list(input_names),
                output_names=None if output_names is None else list(output_names),
                external_data=False,
                custom_translation_table=translations(),
                verbose=False,
            )
    finally:
        module.train(was_training)
    model = onnx.load(tmp)
    if metadata:
        props = {entry.key: entry.value for entry in model.metadata_props}
        props.update(metadata)
        onnx.helper.set_model_props(model, props)
        onnx.save(model, tmp)
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as error:
        raise RuntimeError(f"to_onnx: onnx.checker rejected the graph for {path}; nothing was written: {error}") from error
    report = ExportReport(
        path=path,
        opset=default_opset(model),
        inputs=_specs(onnx, model.graph.input),
        outputs=_specs(onnx, model.graph.output),
        file_size=os.path.getsize(tmp),
    )
    fixed = []
    for spec, wanted in zip(report.inputs, dims):
        for d, name in wanted.items():
            if not isinstance(spec.shape[d], str):
                fixed.append(f"input '{spec.name}' dim {d} ('{name}') is fixed at {spec.shape[d]}")
    if isinstance(module, EvaluationGraph) and dynamic:
        for spec in report.outputs:
            if spec.shape and not isinstance(spec.shape[0], str):
                fixed.append(f"output '{spec.name}' dim 0 (batch) is fixed at {spec.shape[0]}")
    if fixed:
        raise RuntimeError(
            "to_onnx: dims meant to be dynamic came out fixed in the saved graph, so it would only run at the "
            f"example's sizes ({'; '.join(fixed)}). The module's code forces these sizes (a Python loop over the "
            f"batch, or a size read into a Python number); nothing was written to {path}"
        )
    return report


def to_torchscript(
    module: nn.Module,
    path: Union[str, os.PathLike],
    example_inputs: Any = None,
    atol: float = 1e-6,
) -> torch.jit.ScriptModule:
    """Script ``module`` with ``torch.jit.script``, save it, and return the reloaded module.

    The saved file loads in Python (``torch.jit.load``) and in C++ (``torch::jit::load``), where
    a scripted loss still runs backward. TorchScript is deprecated upstream (a
    DeprecationWarning from torch 2.10, a FutureWarning, shown to users by default, from 2.14); it is still the only way a C++ program runs a
    Python-written loss with autograd. This function keeps that warning to itself.

    Parameters
    ----------
    module : nn.Module
        The eager module (a ScriptModule is saved as it is).
    path : str or os.PathLike
        Where to write the ``.pt`` file; checked like :func:`to_onnx`'s ``path`` before any work.
        The file is written beside it and renamed into place only once it reloads (and passes
        the check below), so a failure leaves whatever ``path`` held as it was.
    example_inputs : Tensor or sequence of Tensor, optional
        If given, the reloaded module is run on them and must match the eager module within
        ``atol`` (tensors, or dicts/lists/tuples of them; NaN matches NaN), else RuntimeError.
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"module: expected an nn.Module, got {type(module).__name__}")
    path = check_output_file(path, "path", "to_torchscript")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.\w+` is deprecated")
        scripted = module if isinstance(module, torch.jit.ScriptModule) else torch.jit.script(module)
        # Saved, reloaded and checked beside the destination: a file that fails the check never
        # replaces what ``path`` held.
        with written_in_place(path, argument="path") as tmp:
            torch.jit.save(scripted, tmp)
            loaded = torch.jit.load(tmp)
            if example_inputs is not None:
                inputs = example_tuple(example_inputs)
                with torch.no_grad():
                    expected = module(*inputs)
                    actual = loaded(*inputs)
                compare(expected, actual, atol, "output")
    return loaded


def append_to_model(
    model: Any,
    evaluation: Any,
    path: Optional[Union[str, os.PathLike]] = None,
    model_output: Optional[str] = None,
    keep_model_outputs: bool = False,
):
    """Join a network's ONNX graph to an evaluation graph: images and labels in, metrics out.

    The network's output ``model_output`` (its only output by default) feeds the evaluation
    graph's ``logits`` input, with ``onnx.compose.merge_models``. The joined graph's inputs are
    the network's inputs followed by the evaluation graph's other inputs (``target`` and, if it
    has one, ``weight``); its outputs are the evaluation outputs (and the network's outputs too,
    with ``keep_model_outputs``).

    Parameters
    ----------
    model, evaluation : onnx.ModelProto or path
        The two graphs; both must use the same default-domain opset (export both with
        :func:`to_onnx` and the same ``opset``).
    path : str or os.PathLike, optional
        Where to save the joined graph (checked with ``onnx.checker`` first). Checked like
        :func:`to_onnx`'s ``path`` before any work, and written through a temporary file.
    model_output : str, optional
        The network output that holds the logits; needed when the network has several.
    keep_model_outputs : bool
        Also output the network's own outputs.

    Notes
    -----
    Internal names get the prefixes "net_" and "eval_" so that the two graphs cannot clash (a
    convolution's initializer called "weight", say); inputs and outputs keep their names. The
    metadata_props of both graphs are kept (the evaluation graph's ignore index among them).

    Returns
    -------
    onnx.ModelProto
    """
    onnx = _require_onnx()
    from onnx import compose

    if path is not None:
        given = (("model", model), ("evaluation", evaluation))
        inputs = [(argument, value) for argument, value in given if isinstance(value, (str, os.PathLike))]
        path = check_output_file(path, "path", "append_to_model", inputs)
    first = load_model(onnx, model, "model")
    second = load_model(onnx, evaluation, "evaluation")
    outputs = [o.name for o in first.graph.output]
    if model_output is None:
        if len(outputs) != 1:
            raise ValueError(f"model_output: the model has outputs {outputs}; name the one that holds the logits")
        model_output = outputs[0]
    elif model_output not in outputs:
        raise ValueError(f"model_output: expected one of the model's outputs {outputs}, got '{model_output}'")
    eval_inputs = [i.name for i in second.graph.input]
    if LOGITS not in eval_inputs:
        raise ValueError(f"evaluation: expected an input named '{LOGITS}', got inputs {eval_inputs}")
    opsets = [default_opset(first), default_opset(second)]
    if opsets[0] != opsets[1]:
        raise ValueError(f"model, evaluation: expected the same opset, got {opsets[0]} and {opsets[1]}; export both with one opset")
    if first.ir_version != second.ir_version:
        ir_version = max(first.ir_version, second.ir_version)
        first.ir_version = ir_version
        second.ir_version = ir_version
    first = compose.add_prefix(first, "net_", rename_inputs=False, rename_outputs=False)
    second = compose.add_prefix(second, "eval_", rename_inputs=False, rename_outputs=False)
    merged_outputs = [o.name for o in second.graph.output]
    if keep_model_outputs:
        merged_outputs = outputs + merged_outputs
    merged = compose.merge_models(first, second, io_map=[(model_output, LOGITS)], outputs=merged_outputs)
    onnx.checker.check_model(merged, full_check=True)
    if path is not None:
        with written_in_place(path, argument="path") as tmp:
            onnx.save(merged, tmp)
    return merged


__all__: List[str] = [
    "DEFAULT_OPSET", "IGNORE_INDEX_METADATA", "INPUTS_METADATA", "MIN_OPSET", "OUTPUTS_METADATA", "ExportReport", "TensorSpec",
    "append_to_model", "dynamic_dims", "to_onnx", "to_pt2", "to_torchscript",
]
