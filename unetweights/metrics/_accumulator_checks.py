"""The checks of :class:`~unetweights.metrics.SegmentationMetrics`: its device and the counts it is given.

Plain Python: the accumulator is never scripted.
"""

from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np
import torch
from torch import Tensor

from ._per_image import COUNT_NAMES


def as_tensor(value: Any, name: str) -> Tensor:
    if isinstance(value, Tensor):
        return value.detach()
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value)
    raise ValueError(f"{name}: expected a torch tensor or a numpy array, got {type(value).__name__}")


# Accelerators whose availability torch.accelerator reports; other backends (xla, ...) are taken
# on trust and fail at the first update if absent.
_ACCELERATORS = ("cuda", "mps", "xpu", "mtia")


def checked_device(device: Any) -> Optional[torch.device]:
    if device is None:
        return None
    expected = "a torch.device or a device string such as 'cpu', 'cuda' or 'cuda:1'"
    if isinstance(device, (bool, np.bool_)) or not isinstance(device, (torch.device, str, int)):
        raise ValueError(f"device: expected {expected}, got {device!r}")
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"device: expected {expected}, got {device!r}") from None
    if parsed.type == "meta":
        raise ValueError(f"device: expected a device that holds data, got {device!r} (meta tensors have shapes only)")
    if parsed.type in _ACCELERATORS:
        # Availability and count only: nothing is allocated, so no context is made on a device
        # before the caller has chosen its own (torch.cuda.set_device in a distributed run).
        accelerator = torch.accelerator.current_accelerator(check_available=True)
        count = torch.accelerator.device_count() if accelerator is not None and accelerator.type == parsed.type else 0
        if count == 0 or (parsed.index is not None and parsed.index >= count):
            raise ValueError(f"device: {str(parsed)!r} is not available here ({count} {parsed.type} device(s))")
    return parsed


def ranks_holding(values: List[Any]) -> str:
    """'rank 0 has 3, ranks [1, 2] have 4' for the values of a group's ranks."""
    ranks: Dict[Any, List[int]] = {}
    for rank, value in enumerate(values):
        ranks.setdefault(value, []).append(rank)
    return ", ".join(
        f"rank {held[0]} has {value}" if len(held) == 1 else f"ranks {held} have {value}"
        for value, held in ranks.items()
    )


def _count_slack(counts: Mapping[str, Tensor]) -> float:
    """Relative slack for the relations between counts: √ε of the least precise count dtype.

    Counts summed in float32 (an exported graph's) carry rounding that float64 ones do not.
    """
    return max(torch.finfo(value.dtype).eps for value in counts.values()) ** 0.5


def _first_violation(violated: Tensor) -> str:
    index = violated.nonzero()[0].tolist()
    return f"image {index[0]}" + (f", class {index[1]}" if len(index) > 1 else "")


def check_count_relations(counts: Mapping[str, Tensor], activation: str) -> None:
    """Raise unless the counts (tp, sum_p, sum_t (N, C); mass (N,)) could be weighted counts.

    With p, t in [0, 1] and w >= 0 per pixel: tp <= Σp, tp <= Σt, and the true negatives
    mass - Σp - Σt + tp are not negative; "softmax" predicts one class per counted pixel, so
    Σ_c Σp = mass. Each relation holds within a relative slack for rounding; a NaN count (an
    image with invalid input) satisfies them all.
    """
    slack = _count_slack(counts)
    tp, sum_p, sum_t, mass = (counts[name].double() for name in COUNT_NAMES)
    mass = mass.reshape(-1, 1)
    for name in ("sum_p", "sum_t"):
        total = sum_p if name == "sum_p" else sum_t
        violated = tp > total + slack * (tp + total)
        if bool(violated.any()):
            where = _first_violation(violated)
            raise ValueError(
                f"tp: expected tp <= {name} for every image and class, found tp = {float(tp[violated][0])} > "
                f"{name} = {float(total[violated][0])} ({where})"
            )
    union = sum_p + sum_t - tp
    violated = union > mass + slack * (mass + sum_p + sum_t + tp)
    if bool(violated.any()):
        raise ValueError(
            f"mass: expected mass >= sum_p + sum_t - tp for every image and class (the true negatives are not "
            f"negative), found mass = {float(mass.expand_as(union)[violated][0])} < sum_p + sum_t - tp = "
            f"{float(union[violated][0])} ({_first_violation(violated)})"
        )
    if activation == "softmax":
        predicted, counted = sum_p.sum(1), mass[:, 0]
        violated = (predicted - counted).abs() > slack * (predicted + counted)
        if bool(violated.any()):
            raise ValueError(
                f"sum_p: expected its sum over the classes to equal mass with activation='softmax' (every "
                f"counted pixel predicts one class; are all C classes there, background included?), found "
                f"{float(predicted[violated][0])} and mass = {float(counted[violated][0])} "
                f"({_first_violation(violated)})"
            )


def checked_counts(values: Tuple[Any, Any, Any, Any], classes: Optional[int], source: str) -> Dict[str, Tensor]:
    """The counts ``(tp, sum_p, sum_t, mass)`` given to ``update_counts`` as tensors, their dtypes,
    shapes and values checked (C must equal ``classes`` when known; ``source`` says where it came from)."""
    tp, sum_p, sum_t, mass = values
    counts = {name: as_tensor(value, name) for name, value in zip(COUNT_NAMES, (tp, sum_p, sum_t, mass))}
    for name, value in counts.items():
        if not value.is_floating_point():
            raise ValueError(f"{name}: expected floating-point counts, got dtype {value.dtype}")
    first = counts["tp"]
    if first.dim() != 2 or first.shape[0] < 1:
        raise ValueError(f"tp: expected shape (N, C) with N >= 1, got {list(first.shape)}")
    if classes is not None and first.shape[1] != classes:
        raise ValueError(
            f"tp: expected shape (N, C) = [{first.shape[0]}, {classes}] ({source}; "
            f"every class, background included), got {list(first.shape)}"
        )
    for name in ("sum_p", "sum_t"):
        if list(counts[name].shape) != list(first.shape):
            raise ValueError(
                f"{name}: expected the shape of tp, (N, C) = {list(first.shape)}, got {list(counts[name].shape)}"
            )
    mass_shape = list(counts["mass"].shape)
    if mass_shape not in ([first.shape[0]], [first.shape[0], 1]):
        raise ValueError(f"mass: expected shape (N,) = [{first.shape[0]}] (or (N, 1)), got {mass_shape}")
    for name, value in counts.items():
        if bool(torch.isinf(value).any()):
            raise ValueError(
                f"{name}: expected finite counts (NaN for an image with invalid input), found "
                f"{float(value[torch.isinf(value)][0])}"
            )
        if bool((value < 0).any()):
            raise ValueError(
                f"{name}: expected non-negative counts (NaN for an image with invalid input), "
                f"found {float(value[value < 0].min())}"
            )
    return counts
