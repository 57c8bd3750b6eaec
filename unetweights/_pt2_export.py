"""torch.export and AOTInductor: :func:`to_pt2`, the deployment path PyTorch keeps.

An evaluation graph or a loss is exported once with ``torch.export`` (dynamic batch and spatial
dims, as for ONNX), then

- compiled ahead of time by AOTInductor into a package (``.pt2``) that a C++ program loads with
  ``torch::inductor::AOTIModelPackageLoader`` and Python with ``torch._inductor.aoti_load_package``,
  no Python source needed (``export/cpp/unetweights_aoti.cpp`` is such a program);
- and, on request, saved as the ``ExportedProgram`` itself (``torch.export.save``), which Python
  loads with ``torch.export.load`` and runs eagerly or compiles again.

Both files are written beside their destination, read back, run on inputs of sizes the export
never saw, held to the eager module, and only then renamed into place.

Part of the export room: imports torch (``torch._inductor`` when it runs) and ``evaluation``.
"""

import contextlib
import os
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from ._artefacts import compare
from ._files import check_output_file, written_in_place
from ._graph import IGNORE_INDEX_METADATA, INPUT_NAMES
from ._onnx_export import check_example_sizes, dynamic_dims, example_tuple, graph_ignore_index, torch_dynamic_shapes
from .evaluation import EvaluationGraph

# Keys of the package's metadata (AOTIModelPackageLoader::get_metadata in C++): the names of the
# inputs and of the flat outputs, in order, comma-separated.
INPUTS_METADATA = "unetweights.inputs"
OUTPUTS_METADATA = "unetweights.outputs"


def _unseen_inputs(inputs: Sequence[Tensor], dims: Sequence[Dict[int, str]], seed: int) -> Tuple[Tensor, ...]:
    """Inputs like ``inputs`` whose dynamic dims all take sizes the export did not see.

    Every symbol (a dim shared by several inputs, such as "batch") grows by the same amount
    everywhere. Each value is drawn from the example's own values, so that class indices stay
    classes (or the ignore index), weights keep their zeros and probabilities stay in [0, 1].
    """
    generator = torch.Generator().manual_seed(seed)
    grow: Dict[str, int] = {}
    for spec in dims:
        for name in spec.values():
            grow.setdefault(name, 1 + 2 * len(grow))
    unseen = []
    for x, spec in zip(inputs, dims):
        shape = [size + grow[spec[d]] if d in spec else size for d, size in enumerate(x.shape)]
        flat = x.reshape(-1)
        picks = torch.randint(0, flat.numel(), shape, generator=generator).to(x.device)
        unseen.append(flat[picks])
    return tuple(unseen)


def _output_names(module: nn.Module, example_output: Any) -> List[str]:
    if isinstance(module, EvaluationGraph):
        return list(module.output_names)
    if isinstance(example_output, dict):
        return [str(key) for key in example_output]
    if isinstance(example_output, (list, tuple)):
        return [f"output{i}" for i in range(len(example_output))]
    return ["loss" if example_output.dim() == 0 else "output"]


def to_pt2(
    module: nn.Module,
    path: Union[str, os.PathLike],
    example_inputs: Any,
    dynamic: bool = True,
    program_path: Optional[Union[str, os.PathLike]] = None,
    atol: float = 1e-5,
    check_inputs: Any = None,
) -> Callable:
    """Export ``module`` with torch.export, compile it with AOTInductor into a ``.pt2`` package, check it.

    Parameters
    ----------
    module : nn.Module
        An eager module: an :class:`~unetweights.evaluation.EvaluationGraph` or a loss. A
        ``torch.jit.ScriptModule`` is refused; export the eager module it was scripted from. It
        runs in eval mode for the export and comes back in the mode it had.
    path : str or os.PathLike
        Where to write the AOTInductor package; it must end in ``.pt2`` (AOTInductor's rule). Checked
        like :func:`~unetweights.export.to_onnx`'s ``path`` before any work; the package is built
        in a temporary file beside it and renamed onto it only once it has passed the check below,
        so a failure leaves whatever ``path`` held as it was.
    example_inputs : Tensor or sequence of Tensor
        Inputs to export with, in ``forward``'s order, as for ``to_onnx``: every dynamic dim needs
        an example size of at least 2.
    dynamic : bool
        True: dim 0 of every input and its trailing spatial dims are dynamic (see
        :func:`~unetweights.export.dynamic_dims`); False: every dim is fixed at its example size.
    program_path : str or os.PathLike, optional
        Also save the ``ExportedProgram`` here with ``torch.export.save`` (a ``.pt2`` file too, for
        Python consumers: ``torch.export.load(path).module()``), checked the same way. It must
        differ from ``path``.
    atol : float
        The largest difference from eager allowed in the check (NaN matches NaN only).
    check_inputs : Tensor or sequence of Tensor, optional
        What the check runs. By default inputs of sizes the export never saw (with ``dynamic``:
        every dynamic dim grown, each symbol by its own amount), each value drawn from the
        example's own values; with ``dynamic=False`` the examples themselves.

    Returns
    -------
    callable
        The package as loaded back by ``torch._inductor.aoti_load_package``: call it with the
        forward's tensors; an EvaluationGraph's package returns its dict of outputs. It has no
        autograd: a loss's package gives its value, not its gradient.

    Raises
    ------
    TypeError, ValueError
        As ``to_onnx`` for the module, the examples and the paths; ValueError for a ``path`` that
        does not end in ``.pt2`` or a ``program_path`` equal to ``path``.
    RuntimeError
        If the loaded package (or program) differs from eager by more than ``atol`` on the check
        inputs, or returns another structure. Neither file is written then: both are renamed into
        place only once both have passed.

    Notes
    -----
    The package's metadata (``AOTIModelPackageLoader::get_metadata()`` in C++) holds the input
    names under ``"unetweights.inputs"`` and the names of its flat outputs, in order, under
    ``"unetweights.outputs"`` (comma-separated), and for an EvaluationGraph of class-index
    targets the ignore index as ``to_onnx`` records it. Compiling takes tens of seconds (a C++
    compiler builds the kernels); the package runs on the device it was exported on.
    """
    if isinstance(module, (torch.jit.ScriptModule, torch.jit.ScriptFunction)):
        raise TypeError("module: torch.export cannot take a TorchScript module; pass the eager module it was scripted from")
    if not isinstance(module, nn.Module):
        raise TypeError(f"module: expected an nn.Module, got {type(module).__name__}")
    if not isinstance(atol, (int, float)) or isinstance(atol, bool) or not atol >= 0.0:
        raise ValueError(f"atol: expected a number >= 0, got {atol!r}")
    inputs = example_tuple(example_inputs)
    dims = dynamic_dims(inputs) if dynamic else [{} for _ in inputs]
    check_example_sizes(inputs, dims)
    path = check_output_file(path, "path", "to_pt2")
    if not path.endswith(".pt2"):
        raise ValueError(f"path: AOTInductor writes packages whose name ends in '.pt2', got {path}")
    if program_path is not None:
        program_path = check_output_file(program_path, "program_path", "to_pt2")
        if os.path.abspath(program_path) == os.path.abspath(path):
            raise ValueError(f"program_path: {program_path} is also path; the package and the program need two files")
    if check_inputs is not None:
        checks = example_tuple(check_inputs)
    elif dynamic:
        checks = _unseen_inputs(inputs, dims, seed=0)
    else:
        checks = inputs

    from torch._inductor import aoti_compile_and_package, aoti_load_package

    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            expected = module(*checks)
        program = torch.export.export(module, inputs, dynamic_shapes=torch_dynamic_shapes(dims) if dynamic else None)
    finally:
        module.train(was_training)
    # The check's outputs have the structure of every output: they name them, with no run of their own.
    metadata = {OUTPUTS_METADATA: ",".join(_output_names(module, expected))}
    if isinstance(module, EvaluationGraph):
        metadata[INPUTS_METADATA] = ",".join(INPUT_NAMES[: len(inputs)])
        if len(inputs) >= 2 and inputs[1].dim() == inputs[0].dim() - 1 and not inputs[1].is_floating_point():
            ignore_index = graph_ignore_index(module)
            if ignore_index is not None:
                metadata[IGNORE_INDEX_METADATA] = str(ignore_index)
    else:
        metadata[INPUTS_METADATA] = ",".join(f"input{i}" for i in range(len(inputs)))
    # Both files are built and checked before either is renamed into place: a failure leaves both
    # destinations as they were.
    with contextlib.ExitStack() as stack:
        if program_path is not None:
            program_tmp = stack.enter_context(written_in_place(program_path, argument="program_path"))
            torch.export.save(program, program_tmp)
            with torch.no_grad():
                reloaded = torch.export.load(program_tmp).module()(*checks)
            compare(expected, reloaded, atol, "output", "to_pt2 (the saved program)")
        tmp = stack.enter_context(written_in_place(path, argument="path"))
        aoti_compile_and_package(program, package_path=tmp, inductor_configs={"aot_inductor.metadata": metadata})
        loaded = aoti_load_package(tmp)
        with torch.no_grad():
            compare(expected, loaded(*checks), atol, "output", "to_pt2 (the package)")
    return loaded


__all__: List[str] = ["INPUTS_METADATA", "OUTPUTS_METADATA", "to_pt2"]
