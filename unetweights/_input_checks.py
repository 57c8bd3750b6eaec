"""The checks :class:`~unetweights.runtime.OnnxEvaluator` runs on its inputs before each run.

:func:`check_inputs` holds each array to its graph input: numpy array or torch tensor, dtype,
rank, fixed dims, symbolic dims that agree between inputs, nothing empty.
:func:`check_input_values` checks the values of the inputs named ``logits``, ``target``,
``weight`` and ``distance`` by one table (``_VALUE_CHECKS``): a graph cannot raise on a bad
value, so this is where a Python caller gets an error that names the input and the image
instead of a row of NaNs.

Part of the runtime room: imports numpy, torch and ``_graph``, nothing else of the package.
"""

import sys
import warnings
from typing import Any, Callable, Dict, NamedTuple, Optional, Sequence, Tuple

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


def _as_torch(array: Any) -> torch.Tensor:
    """A tensor view of an array, for the value checks: numpy arrays are shared, not copied."""
    if isinstance(array, torch.Tensor):
        return array.detach()
    with warnings.catch_warnings():
        # A read-only array is shared with a tensor that only reads it; torch warns regardless.
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(np.ascontiguousarray(array))


def _range(x: torch.Tensor) -> torch.Tensor:
    """The minimum and maximum of the whole input, (2,) float64; NaN when it holds a NaN."""
    return torch.stack(torch.aminmax(x)).to(torch.float64)


def _per_image_range(x: torch.Tensor) -> torch.Tensor:
    """Each image's minimum and maximum, (N, 2) float64; NaN where an image holds a NaN."""
    low, high = torch.aminmax(x.reshape(x.shape[0], -1), dim=1)
    return torch.stack([low, high], 1).to(torch.float64)


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

    Each checked input costs one min/max pass over the whole input, in torch on the inputs'
    device (a reduction per image runs several times slower on the CPU); the ranges then come to
    the host in one transfer, and the host decides. Only an input whose range fails is ranged
    again per image, to name the first image that holds a bad value.
    """
    named = {spec.name: array for spec, array in zip(inputs, arrays)}
    logits = named.get(LOGITS)
    classes = logits.shape[1] if logits is not None and len(logits.shape) >= 2 else 0
    checks = []  # (name, what the input must hold, lowest, highest, the tensor, the ignore index or None)
    for check in _VALUE_CHECKS:
        array = named.get(check.name)
        if array is None or not check.applies(array, logits):
            continue
        what, highest, ignore = check.what, check.highest, None
        if highest is None:
            what, ignore = _class_indices(what.format(classes=classes), classes, ignore_index)
            highest = classes - 1
        checks.append((check.name, what, check.lowest, highest, _as_torch(array), ignore))
    if not checks:
        return
    # One transfer: for CUDA inputs this is the only point where the host waits for the device.
    ranges = torch.stack([_range(check[4]) for check in checks]).cpu().tolist()
    for (name, what, lowest, highest, tensor, ignore), (low, high) in zip(checks, ranges):
        if lowest <= low and high <= highest:
            continue
        if ignore is not None:
            # The target holds a value outside the classes, perhaps only the ignore index:
            # ignored pixels become class 0, so that min and max see only class indices.
            tensor = tensor.masked_fill(tensor == ignore, 0)
            low, high = _range(tensor).cpu().tolist()
            if lowest <= low and high <= highest:
                continue
        for image, (low, high) in enumerate(_per_image_range(tensor).cpu().tolist()):
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
