"""The checks :class:`~unetweights.runtime.OnnxEvaluator` runs on its inputs before each run.

:func:`check_inputs` holds each array to its graph input: numpy array or torch tensor, dtype,
rank, fixed dims, symbolic dims that agree between inputs, nothing empty.
:func:`check_input_values` checks the values of the inputs named ``logits``, ``target``,
``weight`` and ``distance`` by one table (``_VALUE_CHECKS``): a graph cannot raise on a bad
value, so this is where a Python caller gets an error that names the input and the image
instead of a row of NaNs.

Part of the runtime room: imports numpy, torch and ``_graph``, nothing else of the package.
"""

import math
import sys
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import torch

from ._graph import DISTANCE, LOGITS, TARGET, WEIGHT

# The torch dtype of each numpy dtype that a graph input can have (runtime's _ELEMENT_TYPES).
_TORCH_DTYPES = {
    np.float32: torch.float32,
    np.float64: torch.float64,
    np.float16: torch.float16,
    np.int64: torch.int64,
    np.int32: torch.int32,
    np.int16: torch.int16,
    np.int8: torch.int8,
    np.uint8: torch.uint8,
    np.bool_: torch.bool,
}


def _host_or_device(array: Any) -> Any:
    """What the value checks range: a numpy view of a numpy array or CPU tensor (nothing copied),
    or the CUDA tensor itself.

    On the host the checks run in numpy, on one thread: torch's CPU reductions would wake its
    thread pool, whose threads then spin for milliseconds on the cores onnxruntime is about to
    run the graph on (several ms per run on a 2-core machine).
    """
    if isinstance(array, torch.Tensor):
        array = array.detach()
        if array.device.type != "cpu":
            return array
        if array.dtype == torch.bfloat16:
            array = array.float()
        return array.numpy()
    return np.asarray(array)


def _ranges(values: Sequence[Any], finite_only: Sequence[bool]) -> List[Tuple[float, float]]:
    """The minimum and maximum of each whole input (NaN when it holds a NaN): numpy's on the
    host; for CUDA tensors torch's, brought to the host in one transfer (the only point where
    the host waits for the device). On the host, an input that need only be finite is summed
    first (one pass, not two): a finite sum stands for a range that passes, and any other takes
    the min and max."""
    on_device = [torch.stack(torch.aminmax(v)).to(torch.float64) for v in values if isinstance(v, torch.Tensor)]
    device_ranges = iter(torch.stack(on_device).cpu().tolist() if on_device else [])
    ranges = []
    for v, finite in zip(values, finite_only):
        if isinstance(v, torch.Tensor):
            ranges.append(next(device_ranges))
            continue
        total = float(v.sum()) if finite else math.nan
        ranges.append((total, total) if math.isfinite(total) else (float(v.min()), float(v.max())))
    return ranges


def _per_image_ranges(values: Any) -> List[Tuple[float, float]]:
    """Each image's minimum and maximum (NaN where an image holds a NaN)."""
    if isinstance(values, torch.Tensor):
        low, high = torch.aminmax(values.reshape(values.shape[0], -1), dim=1)
        return torch.stack([low, high], 1).to(torch.float64).cpu().tolist()
    flat = values.reshape(values.shape[0], -1)
    return list(zip(flat.min(1).astype(np.float64).tolist(), flat.max(1).astype(np.float64).tolist()))


def _format_value(value: float) -> str:
    if np.isnan(value):
        return "NaN"
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _is_floating(array: Any) -> bool:
    return array.is_floating_point() if isinstance(array, torch.Tensor) else np.issubdtype(array.dtype, np.floating)


def _is_bool(array: Any) -> bool:
    return array.dtype == (torch.bool if isinstance(array, torch.Tensor) else np.bool_)


def _floating(array: Any, logits: Any) -> bool:
    return _is_floating(array)


def _class_index_layout(array: Any, logits: Any) -> bool:
    """A target of class indices: integer, with one dim fewer than the logits."""
    return (
        logits is not None
        and len(array.shape) == len(logits.shape) - 1
        and not _is_floating(array)
        and not _is_bool(array)
    )


def _logits_layout(array: Any, logits: Any) -> bool:
    """A binary or probability target: as many dims as the logits (a bool one holds only 0 and 1)."""
    return logits is not None and len(array.shape) == len(logits.shape) and not _is_bool(array)


class _ValueCheck(NamedTuple):
    """What one graph input must hold: each image's minimum and maximum lie in [lowest, highest]."""

    name: str
    applies: Callable[[Any, Any], bool]  # (the input, the logits or None): whether to check it
    what: str  # for the message
    lowest: float
    highest: Optional[float]  # None: C - 1, the last class index (C from the logits)


_LARGEST = sys.float_info.max  # finite values lie in [-_LARGEST, _LARGEST]; a NaN lies in no range

# OnnxEvaluator's value checks, in the order they run (the first bad value found is the one
# raised). The target checks need the logits, which say C and the target's layout.
_VALUE_CHECKS = (
    _ValueCheck(LOGITS, _floating, "finite values", -_LARGEST, _LARGEST),
    _ValueCheck(WEIGHT, _floating, "finite non-negative values", 0.0, _LARGEST),
    _ValueCheck(DISTANCE, _floating, "finite values", -_LARGEST, _LARGEST),
    _ValueCheck(TARGET, _class_index_layout, "class indices in [0, {classes})", 0.0, None),
    _ValueCheck(TARGET, _logits_layout, "finite values in [0, 1]", 0.0, 1.0),
)


def check_inputs(inputs: Sequence[Any], arrays: Sequence[Any]) -> None:
    """Raise for an array that does not fit its input of ``inputs`` (GraphInputs, in graph order)."""
    sizes: Dict[str, Tuple[str, int]] = {}
    for spec, array in zip(inputs, arrays):
        if isinstance(array, torch.Tensor):
            dtype_ok = array.dtype == _TORCH_DTYPES[spec.dtype]
            actual = str(array.dtype).replace("torch.", "")
        elif isinstance(array, np.ndarray):
            dtype_ok = array.dtype == spec.dtype
            actual = array.dtype.name
        else:
            raise TypeError(f"{spec.name}: expected a numpy array or a torch tensor, got {type(array).__name__}")
        shape = tuple(array.shape)
        if len(shape) != len(spec.shape):
            raise ValueError(
                f"{spec.name}: expected {len(spec.shape)} dims {spec.describe()}, got shape {list(shape)}"
            )
        if not dtype_ok:
            raise ValueError(f"{spec.name}: expected dtype {np.dtype(spec.dtype).name}, got {actual}")
        for d, (want, got) in enumerate(zip(spec.shape, shape)):
            # onnxruntime fails on an empty input deep inside a kernel (a Broadcaster error);
            # an image with no pixels has no loss or metric to give.
            if got == 0 and d == 0:
                raise ValueError(
                    f"{spec.name}: expected a non-empty batch (at least one image along dim 0), got shape {list(shape)}"
                )
            if got == 0:
                raise ValueError(
                    f"{spec.name}: dim {d} ('{want}') is 0; expected at least one element along every dim "
                    f"{spec.describe()}, got shape {list(shape)}"
                )
            if isinstance(want, int):
                if want != got:
                    raise ValueError(
                        f"{spec.name}: dim {d} is fixed at {want} in the graph {spec.describe()}, got {got}"
                    )
            elif want in sizes and sizes[want][1] != got:
                other, size = sizes[want]
                raise ValueError(
                    f"{spec.name}: dim {d} ('{want}') is {got}, but {other} has {want} = {size}"
                )
            else:
                sizes.setdefault(want, (spec.name, got))


def check_input_values(inputs: Sequence[Any], arrays: Sequence[Any], ignore_index: Optional[int], where: str) -> None:
    """Raise ValueError for a bad value in ``logits``, ``target``, ``weight`` or ``distance``.

    What each must hold is in the Notes of :class:`~unetweights.runtime.OnnxEvaluator`;
    ``ignore_index`` is the target value allowed besides the class indices.

    Runs after :func:`check_inputs`, so every input has at least one image and one element per image.

    Each checked input costs one min and one max over the whole input: in numpy on the host, in
    torch on a CUDA device, whose ranges then come to the host in one transfer; the host decides.
    Only an input whose range fails is ranged again per image, to name the first image that holds
    a bad value.
    """
    named = {spec.name: array for spec, array in zip(inputs, arrays)}
    logits = named.get(LOGITS)
    classes = logits.shape[1] if logits is not None and len(logits.shape) >= 2 else 0
    checks = []  # (name, what the input must hold, lowest, highest, its values, the ignore index or None)
    for check in _VALUE_CHECKS:
        array = named.get(check.name)
        if array is None or not check.applies(array, logits):
            continue
        what, highest, ignore = check.what, check.highest, None
        if highest is None:
            what, ignore = _class_indices(what.format(classes=classes), classes, ignore_index)
            highest = classes - 1
        checks.append((check.name, what, check.lowest, highest, _host_or_device(array), ignore))
    if not checks:
        return
    finite_only = [lowest == -_LARGEST and highest == _LARGEST for _, _, lowest, highest, _, _ in checks]
    ranges = _ranges([check[4] for check in checks], finite_only)
    for (name, what, lowest, highest, values, ignore), (low, high) in zip(checks, ranges):
        if lowest <= low and high <= highest:
            continue
        if ignore is not None:
            # The target holds a value outside the classes, perhaps only the ignore index:
            # ignored pixels become class 0, so that min and max see only class indices.
            if isinstance(values, torch.Tensor):
                values = values.masked_fill(values == ignore, 0)
            else:
                values = np.where(values == ignore, 0, values)
            (low, high), = _ranges([values], [False])
            if lowest <= low and high <= highest:
                continue
        for image, (low, high) in enumerate(_per_image_ranges(values)):
            if not (lowest <= low and high <= highest):
                found = high if lowest <= low <= highest else low
                place = f"image {image}" + (f" of {where}" if where else "")
                raise ValueError(f"{name}: expected {what}, found {_format_value(found)} at {place}")


def _class_indices(what: str, classes: int, ignore: Optional[int]) -> Tuple[str, Optional[int]]:
    """What a class-index target must hold, and the ignore index to mask when a value falls
    outside the classes (None: no ignore index, or one inside [0, C) that the range covers)."""
    if ignore is None:
        return f"{what} (the graph records no ignore index)", None
    return f"{what} or the ignore index {ignore}", None if 0 <= ignore < classes else ignore
