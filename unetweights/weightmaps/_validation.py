"""Input checks shared by the weight-map functions.

Every check raises ``TypeError`` (wrong kind of thing) or ``ValueError`` (right kind, bad value) with
a message that names the argument and says what was expected.
"""

from __future__ import annotations

import math
import numbers
from typing import Optional, Sequence, Union

import numpy as np

SpacingLike = Union[None, float, Sequence[float]]


def as_label_array(labels, name: str = "labels", ndims: Sequence[int] = (2, 3)) -> np.ndarray:
    """Return ``labels`` as a bool or non-negative integer ndarray, without copying when possible.

    Floats are accepted when every value is a whole number (label maps read from TIFF often are),
    and converted to int64.
    """
    arr = np.asarray(labels)
    if arr.dtype == object or not (
        arr.dtype == bool or np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    ):
        raise TypeError(f"{name} must be a bool, integer or whole-valued float array, got dtype {arr.dtype}")
    if arr.ndim not in ndims:
        expected = " or ".join(str(n) for n in ndims)
        raise ValueError(f"{name} must have {expected} dimensions, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {arr.shape}")
    if arr.dtype == bool:
        return arr
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} must be finite, found NaN or inf")
        if (arr != np.floor(arr)).any():
            raise ValueError(f"{name} must hold whole numbers (instance ids), found fractional values")
        if arr.min() < 0:
            raise ValueError(f"{name} must be non-negative (0 is background), found minimum {arr.min():g}")
        if arr.max() > 2.0**53:
            raise ValueError(f"{name} holds float ids above 2**53, which cannot be represented exactly")
        return arr.astype(np.int64)
    if np.issubdtype(arr.dtype, np.signedinteger) and arr.min() < 0:
        raise ValueError(f"{name} must be non-negative (0 is background), found minimum {arr.min()}")
    return arr


def as_spacing(spacing: SpacingLike, ndim: int) -> np.ndarray:
    """Return the voxel size as a float64 vector of length ``ndim`` (a scalar is broadcast)."""
    if spacing is None:
        return np.ones(ndim, dtype=np.float64)
    if isinstance(spacing, (numbers.Number, np.generic)) and not isinstance(spacing, (bool, np.bool_)):
        values = np.full(ndim, float(spacing))
    else:
        try:
            values = np.asarray(spacing, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"spacing must be a number or a sequence of {ndim} numbers, got {spacing!r}") from None
        if values.ndim != 1 or values.shape[0] != ndim:
            raise ValueError(
                f"spacing must have one entry per axis ({ndim}), got {len(np.atleast_1d(values))}: {spacing!r}"
            )
    if not np.isfinite(values).all() or (values <= 0).any():
        raise ValueError(f"spacing entries must be finite and > 0, got {values.tolist()}")
    return values


def positive_float(value, name: str, allow_zero: bool = False, allow_inf: bool = False) -> float:
    """Check a scalar parameter: a real number, > 0 (or >= 0), finite unless ``allow_inf``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.floating, np.integer)):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if math.isnan(value) or (math.isinf(value) and not allow_inf):
        raise ValueError(f"{name} must be finite, got {value}")
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return value


def optional_positive_float(value, name: str) -> Optional[float]:
    return None if value is None else positive_float(value, name, allow_inf=True)


def check_same_shape(arr: np.ndarray, name: str, shape: tuple, other: str = "labels") -> None:
    if arr.shape != shape:
        raise ValueError(f"{name} must have the same shape as {other} {shape}, got {arr.shape}")
