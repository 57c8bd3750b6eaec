"""Run an exported evaluation graph with onnxruntime, on CUDA when it really works.

``onnxruntime-gpu`` lists ``CUDAExecutionProvider`` even on a machine with no GPU or no CUDA
libraries; a session asked for it then falls back to CPU and logs errors. :class:`OnnxEvaluator`
decides quietly instead: "auto" tries CUDA only where an NVIDIA device is present, with
onnxruntime's logging turned down for that one attempt, and reports which provider runs.

A graph cannot raise on bad values: the package's losses and metrics make every output of an
image NaN when that image has a NaN or infinite logit, a bad weight or a target out of range.
The evaluator checks those values on the host side before the run (``check_values``), so that a
Python caller gets an error that names the input and the image instead of a row of NaNs.
"""

import os
import warnings
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from ._graph import IGNORE_INDEX_METADATA
from ._input_checks import check_input_values, check_inputs
from ._providers import CPU, CUDA, import_onnxruntime, open_session

# onnxruntime's element types as they appear in NodeArg.type, and the numpy dtype of each.
_ELEMENT_TYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(float16)": np.float16,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(int16)": np.int16,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(bool)": np.bool_,
}
_OPTIMIZATION = ("disable", "basic", "extended", "all")


@dataclass(frozen=True)
class GraphInput:
    """An input of the loaded graph: name, numpy dtype, and shape (int fixed, str symbolic)."""

    name: str
    dtype: Any
    shape: Tuple[Union[int, str], ...]

    def describe(self) -> str:
        return f"{np.dtype(self.dtype).name}[{', '.join(str(d) for d in self.shape)}]"


@dataclass
class EvaluationResult:
    """What :meth:`OnnxEvaluator.evaluate` returns.

    Attributes
    ----------
    per_image : dict of str to ndarray
        Each graph output over the whole dataset, images along dim 0: (images,) for a loss,
        (images, C) for a per-class metric.
    summary : dict of str to dict
        For each output, over the images (per class for (images, C) outputs): "mean" and "std"
        (the population standard deviation, ddof=0) of the entries that are not NaN, and
        "count", how many images those are. A metric leaves a class NaN where it has nothing to
        score (absent from prediction and target, with the default ``empty_score``), so a class's
        mean is over the images that hold it; a column with no such image has mean and std NaN
        and count 0.
    provider : str
        The onnxruntime execution provider that ran the graph.
    """

    per_image: Dict[str, np.ndarray]
    summary: Dict[str, Dict[str, np.ndarray]] = field(default_factory=dict)
    provider: str = CPU

    @property
    def num_images(self) -> int:
        return len(next(iter(self.per_image.values()))) if self.per_image else 0

    def format_summary(self, digits: int = 4) -> str:
        """The summary as an aligned text table: one row per output, mean ± std per column.

        A column whose mean is over fewer than all images says over how many, as ``[k]``; one
        with no image to average (NaN in every image) reads ``n/a``.
        """
        rows = []
        partial = False
        for name, stats in self.summary.items():
            means = np.atleast_1d(stats["mean"])
            stds = np.atleast_1d(stats["std"])
            counts = np.atleast_1d(stats["count"])
            cells = []
            for mean, std, count in zip(means, stds, counts):
                if count == 0:
                    cells.append("n/a")
                    continue
                cell = f"{mean:.{digits}f} ± {std:.{digits}f}"
                if count < self.num_images:
                    cell += f" [{count}]"
                    partial = True
                cells.append(cell)
            rows.append((name, cells))
        width = max([len(name) for name, _ in rows] + [6])
        note = "; [k]: over the k images where it is not NaN" if partial else ""
        lines = [f"{'output':<{width}}  mean ± std (per class where there are classes), {self.num_images} images{note}"]
        lines += [f"{name:<{width}}  " + "   ".join(cells) for name, cells in rows]
        return "\n".join(lines)


def _summarise(per_image: Mapping[str, np.ndarray]) -> Dict[str, Dict[str, np.ndarray]]:
    summary = {}
    for name, values in per_image.items():
        values = np.asarray(values, dtype=np.float64)
        with warnings.catch_warnings():
            # A column that is NaN in every image has a NaN mean and std; numpy warns about it.
            warnings.simplefilter("ignore", RuntimeWarning)
            summary[name] = {
                "mean": np.nanmean(values, axis=0),
                "std": np.nanstd(values, axis=0),
                "count": np.sum(~np.isnan(values), axis=0),
            }
    return summary


class OnnxEvaluator:
    """An onnxruntime session for an exported graph, fed with numpy arrays or torch tensors.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.onnx`` file (from :func:`unetweights.export.to_onnx`, say).
    providers : str or sequence
        "auto" (the default): CUDA when it really works here, otherwise CPU, decided without
        error logs. "cuda": CUDA or a RuntimeError that says why not. "cpu": CPU only. A
        sequence is passed to onnxruntime as it is.
    device_id : int
        The CUDA device.
    threads : int, optional
        onnxruntime's intra-op thread count; its default (one per physical core) if None.
    optimization : str
        onnxruntime's graph optimisation level: "disable", "basic", "extended" or "all".
    session_config : mapping of str to str, optional
        Extra onnxruntime session config entries, for example
        ``{"session.intra_op.allow_spinning": "0"}`` so that idle worker threads sleep instead
        of spinning (kinder to a torch process sharing the cores, at some latency).
    check_values : bool
        True (the default): before each run, check the values of the inputs named ``logits``,
        ``target``, ``weight`` and ``distance`` (see Notes) and raise ValueError naming the input and the
        image. False skips that for speed; a bad value then makes that image's outputs NaN.
    ignore_index : int, optional
        The target value, other than a class index, that the check allows. None (the default):
        the value the graph records (``to_onnx`` writes it for an EvaluationGraph whose losses
        and metrics all ignore one value), or no value if it records none.

    Attributes
    ----------
    provider : str
        The execution provider that runs the graph ("CUDAExecutionProvider" or
        "CPUExecutionProvider").
    inputs : list of GraphInput
        The graph's inputs, with dtype and symbolic shape.
    output_names : list of str
    check_values : bool
    ignore_index : int or None
        The target value that the check allows besides the class indices.

    Notes
    -----
    The value checks recognise the inputs by the names that ``to_onnx`` gives an EvaluationGraph's
    inputs (``logits``, ``target``, ``weight``, ``distance``); inputs named otherwise are not
    checked, and a graph with none of those names gets no value checks. ``logits`` and
    ``distance`` must be finite. ``weight`` must be finite and non-negative. ``target`` (checked only where the graph has a ``logits``
    input, which gives C = ``logits.shape[1]``) holds class indices in [0, C) or ``ignore_index``
    when it has one dim fewer than the logits, and finite values in [0, 1] (binary or
    probability targets) when it has as many. The check costs a min and a max over each input
    (a sum for the logits and distances, which need only be finite; in numpy on one thread for
    numpy arrays and CPU tensors, which leaves torch's thread pool asleep while the session runs;
    in torch for CUDA tensors, with one transfer of those numbers to the host); a class-index target that holds values outside the classes takes two more
    passes, to mask the ignore index, and only an input found bad is ranged again, image by
    image, to name the image. See benchmarks/RESULTS.md for its cost against a run.

    Calling the evaluator (or :meth:`run`) with numpy arrays returns numpy arrays. With torch
    tensors it returns torch tensors on the same device: the inputs are bound to the session by
    pointer (IOBinding) and the outputs, allocated by onnxruntime on that device, are taken over
    through DLPack. Nothing is copied (except a non-contiguous input, made contiguous first), and
    a CUDA tensor on a CUDA session never goes through host memory. Torch tensors must all sit
    on one device; a CUDA tensor needs the CUDA provider.

    CUDA needs onnxruntime-gpu with CUDA 13 and cuDNN 9, for example from
    ``pip install 'onnxruntime-gpu[cuda,cudnn]'``; the evaluator calls
    ``onnxruntime.preload_dlls()`` to find pip-installed CUDA libraries. While it tries CUDA, it turns
    onnxruntime's process-wide default logger down to fatal, and afterwards sets it back to
    onnxruntime's default level (warning): onnxruntime offers no way to read the previous level.
    """

    def __init__(
        self,
        path: Union[str, os.PathLike],
        providers: Union[str, Sequence[Any]] = "auto",
        device_id: int = 0,
        threads: Optional[int] = None,
        optimization: str = "all",
        session_config: Optional[Mapping[str, str]] = None,
        check_values: bool = True,
        ignore_index: Optional[int] = None,
    ) -> None:
        ort = import_onnxruntime()
        if isinstance(path, (bytes, bytearray, memoryview)):
            raise TypeError(
                f"path: expected a str or os.PathLike naming an .onnx file, got {type(path).__name__} "
                "(for a serialized model, write it to a file first)"
            )
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path: expected a str or os.PathLike naming an .onnx file, got {type(path).__name__}")
        path = os.fsdecode(os.fspath(path))
        if not isinstance(check_values, bool):
            raise TypeError(f"check_values: expected a bool, got {type(check_values).__name__}")
        if ignore_index is not None and (isinstance(ignore_index, bool) or not isinstance(ignore_index, int)):
            raise TypeError(f"ignore_index: expected an int or None, got {type(ignore_index).__name__}")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"path: no ONNX file at {path}")
        if optimization not in _OPTIMIZATION:
            raise ValueError(f"optimization: expected one of {list(_OPTIMIZATION)}, got {optimization!r}")
        if threads is not None and (not isinstance(threads, int) or threads < 1):
            raise ValueError(f"threads: expected a positive int or None, got {threads!r}")
        options = ort.SessionOptions()
        options.graph_optimization_level = {
            "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }[optimization]
        if threads is not None:
            options.intra_op_num_threads = threads
        for key, value in (session_config or {}).items():
            options.add_session_config_entry(str(key), str(value))
        self.path = path
        self.device_id = int(device_id)
        self._session, reason = open_session(ort, path, options, providers, self.device_id)
        #: Why "auto" fell back to CPU (None when it did not, or was not asked to choose).
        self.cuda_unavailable_reason: Optional[str] = reason
        self.provider: str = self._session.get_providers()[0]
        self.inputs: List[GraphInput] = [self._input_spec(arg) for arg in self._session.get_inputs()]
        self.output_names: List[str] = [arg.name for arg in self._session.get_outputs()]
        self.check_values = check_values
        self.ignore_index: Optional[int] = self._read_ignore_index() if ignore_index is None else int(ignore_index)

    def _read_ignore_index(self) -> Optional[int]:
        recorded = self._session.get_modelmeta().custom_metadata_map.get(IGNORE_INDEX_METADATA)
        if recorded is None:
            return None
        try:
            return int(recorded)
        except ValueError:
            raise ValueError(
                f"path: {self.path} records {IGNORE_INDEX_METADATA} = {recorded!r}, which is not an integer"
            ) from None

    @staticmethod
    def _input_spec(arg: Any) -> GraphInput:
        if arg.type not in _ELEMENT_TYPES:
            raise ValueError(f"path: graph input '{arg.name}' has type {arg.type}, which OnnxEvaluator does not feed")
        shape = tuple(d if isinstance(d, int) else str(d) for d in arg.shape)
        return GraphInput(arg.name, _ELEMENT_TYPES[arg.type], shape)

    # -- running -----------------------------------------------------------------------------

    def _gather(self, args: Sequence[Any], named: Mapping[str, Any]) -> List[Any]:
        names = [spec.name for spec in self.inputs]
        if len(args) > len(names):
            raise ValueError(f"inputs: the graph takes {len(names)} inputs {names}, got {len(args)} positional ones")
        values = dict(zip(names, args))
        for name, value in named.items():
            if name not in names:
                raise ValueError(f"{name}: not an input of the graph; its inputs are {names}")
            if name in values:
                raise ValueError(f"{name}: given both by position and by name")
            values[name] = value
        missing = [name for name in names if name not in values]
        if missing:
            raise ValueError(f"inputs: missing {missing}; the graph takes {names}")
        return [values[name] for name in names]

    def _check_values(self, arrays: Sequence[Any], where: str) -> None:
        """Raise ValueError for a bad value in ``logits``, ``target``, ``weight`` or ``distance`` (see the Notes).

        Runs after the dtype and shape checks, so every input has at least one image and one element
        per image (:func:`unetweights._input_checks.check_input_values`).
        """
        check_input_values(self.inputs, arrays, self.ignore_index, where)

    def run(self, *inputs: Any, **named_inputs: Any) -> Dict[str, Any]:
        """Run the graph once; inputs by position (graph order) or by name.

        Returns a dict from output name to numpy array (numpy inputs) or torch tensor (torch
        inputs, on their device).

        Raises
        ------
        ValueError
            For a missing or unknown input, a wrong dtype or rank, a dim that differs from the
            graph's fixed size, two inputs that disagree on a shared symbolic dim ("batch"), or
            an empty input (no image along dim 0, or a dim of size 0), which has no per-image
            outputs to give.
            With ``check_values``: for a NaN or infinite logit, a NaN, infinite or negative
            weight, or a target out of range; the message names the input and the image.
        TypeError
            For an input that is neither a numpy array nor a torch tensor.
        """
        return self._run(self._gather(inputs, named_inputs), "")

    __call__ = run

    def _run(self, arrays: List[Any], where: str) -> Dict[str, Any]:
        check_inputs(self.inputs, arrays)
        tensors = [a for a in arrays if isinstance(a, torch.Tensor)]
        if tensors and len(tensors) != len(arrays):
            raise TypeError("inputs: expected all numpy arrays or all torch tensors, got a mix")
        device = self._device_of(tensors) if tensors else None
        if self.check_values:
            self._check_values(arrays, where)
        if device is None:
            results = self._session.run(self.output_names, {s.name: a for s, a in zip(self.inputs, arrays)})
            return dict(zip(self.output_names, results))
        return self._run_bound(arrays, device)

    def _device_of(self, tensors: Sequence[torch.Tensor]) -> torch.device:
        """The one device of ``tensors``, which the session must be able to bind."""
        devices = {t.device for t in tensors}
        if len(devices) != 1:
            raise ValueError(f"inputs: expected tensors on one device, got {sorted(str(d) for d in devices)}")
        device = tensors[0].device
        if device.type == "cuda" and self.provider != CUDA:
            raise ValueError(
                f"inputs: CUDA tensors need the CUDA provider, but this session runs on {self.provider}; "
                "pass CPU tensors or numpy arrays, or open the evaluator with providers='cuda'"
            )
        if device.type not in ("cuda", "cpu"):
            raise ValueError(f"inputs: tensors on {device} are not supported; use CPU or CUDA tensors")
        return device

    def _run_bound(self, tensors: Sequence[torch.Tensor], device: torch.device) -> Dict[str, torch.Tensor]:
        if device.type == "cuda":
            device_type, device_id = "cuda", device.index if device.index is not None else torch.cuda.current_device()
            # The session runs on its own stream: let the kernels that wrote the inputs finish.
            torch.cuda.current_stream(device).synchronize()
        else:
            device_type, device_id = "cpu", 0
        binding = self._session.io_binding()
        kept = []  # the contiguous tensors must outlive the run
        for spec, tensor in zip(self.inputs, tensors):
            tensor = tensor.detach().contiguous()
            kept.append(tensor)
            binding.bind_input(spec.name, device_type, device_id, spec.dtype, list(tensor.shape), tensor.data_ptr())
        for name in self.output_names:
            binding.bind_output(name, device_type, device_id)
        self._session.run_with_iobinding(binding)
        outputs = binding.get_outputs()
        # The DLPack capsule shares the OrtValue's buffer and keeps it alive after the OrtValue
        # object is gone (tests/test_runtime.py checks that outputs outlive later runs).
        return {name: torch.from_dlpack(value) for name, value in zip(self.output_names, outputs)}

    # -- datasets ----------------------------------------------------------------------------

    def _item_inputs(self, item: Any, index: int) -> List[Any]:
        if isinstance(item, Mapping):
            names = [spec.name for spec in self.inputs]
            missing = [name for name in names if name not in item]
            if missing:
                raise ValueError(f"data[{index}]: missing keys {missing}; the graph takes {names}, got keys {list(item)}")
            values = [item[name] for name in names]
        elif isinstance(item, (tuple, list)):
            values = list(item)
            if len(values) != len(self.inputs):
                raise ValueError(
                    f"data[{index}]: expected {len(self.inputs)} arrays {[s.name for s in self.inputs]}, got {len(values)}"
                )
        else:
            raise TypeError(f"data[{index}]: expected a tuple of arrays or a dict keyed by input name, got {type(item).__name__}")
        first = values[0]
        if hasattr(first, "shape") and len(first.shape) == len(self.inputs[0].shape) - 1:
            # One sample, not a batch (a Dataset rather than a DataLoader): add the batch dim.
            values = [v.unsqueeze(0) if isinstance(v, torch.Tensor) else np.asarray(v)[None] for v in values]
        return values

    def evaluate(self, data: Iterable[Any], progress: bool = True, description: str = "evaluate") -> EvaluationResult:
        """Run the graph over a dataset or DataLoader and summarise the per-image outputs.

        Parameters
        ----------
        data : iterable
            Items that are tuples of arrays in the graph's input order, or dicts keyed by input
            name (other keys are ignored). An item may be one batch (a DataLoader's) or one
            sample without the batch dim (a Dataset's).
        progress : bool
            Show a tqdm progress bar (total from ``len(data)`` where it has one).

        Returns
        -------
        EvaluationResult
            Per-image outputs (numpy, images along dim 0), mean and std per output, and the
            provider. An empty ``data`` raises ValueError.
        """
        from tqdm.auto import tqdm

        collected: Dict[str, List[np.ndarray]] = {name: [] for name in self.output_names}
        total = len(data) if hasattr(data, "__len__") else None
        for index, item in enumerate(tqdm(data, total=total, desc=description, disable=not progress, unit="batch")):
            outputs = self._run(self._item_inputs(item, index), f"data[{index}]")
            for name, value in outputs.items():
                array = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
                collected[name].append(array)
        if not any(collected.values()):
            raise ValueError("data: expected at least one item, got none")
        per_image = {name: np.concatenate(chunks, axis=0) for name, chunks in collected.items()}
        return EvaluationResult(per_image=per_image, summary=_summarise(per_image), provider=self.provider)

    def __repr__(self) -> str:
        inputs = ", ".join(f"{s.name}: {s.describe()}" for s in self.inputs)
        return f"OnnxEvaluator({self.path!r}, provider={self.provider!r}, inputs=[{inputs}], outputs={self.output_names})"


__all__: List[str] = ["EvaluationResult", "GraphInput", "OnnxEvaluator"]
