"""Input checks shared by the numpy side of the package: the weight maps, the data pipeline, the
chunked maps and the generated data. Imports only numpy (as ``_files`` imports nothing), so every
room may use it.

Every check raises ``TypeError`` (wrong kind of thing) or ``ValueError`` (right kind, bad value) with
a message that names the argument and says what was expected. A bool is never taken for a number.
NaN and infinities are refused wherever a finite value is expected; the one documented exception is
``max_distance=inf``, which means no cap.
"""

from __future__ import annotations

import math
import os
import numbers
from typing import Optional, Sequence, Union

import numpy as np

SpacingLike = Union[None, float, Sequence[float]]

# The weight map is float32: no weight (w_c + w0 at most) may exceed this.
FLOAT32_MAX = float(np.finfo(np.float32).max)
# Distances are computed in float64 on a spacing rescaled by a power of two (exact), so only the
# ratio of the spacing entries matters: beyond this ratio the squared steps along the finest axis
# underflow, and the distance transform would see those pixels as coincident.
MAX_ANISOTROPY = 1e150


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


def _is_real(value) -> bool:
    """A real number that is not a bool (Python, numpy, or a 0-d array of either)."""
    return not isinstance(value, (bool, np.bool_)) and isinstance(value, (numbers.Real, np.integer, np.floating))


def _unwrap(value):
    """The scalar inside a 0-d numeric array; anything else unchanged."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value[()]
    return value


def real_number(value) -> Optional[float]:
    """``value`` as a float (+-inf when an int is too large for one), or None when it is no real number."""
    value = _unwrap(value)
    if not _is_real(value):
        return None
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def as_spacing(spacing: SpacingLike, ndim: int) -> np.ndarray:
    """Return the voxel size as a float64 vector of length ``ndim`` (a scalar is broadcast)."""
    if spacing is None:
        return np.ones(ndim, dtype=np.float64)
    scalar = real_number(spacing)
    if scalar is not None:
        values = np.full(ndim, scalar)
    else:
        expected = f"spacing must be a number or a sequence of {ndim} numbers"
        if isinstance(spacing, (str, bytes)) or _unwrap(spacing) is not spacing:
            raise TypeError(f"{expected}, got {spacing!r}")
        # As objects, so that every entry keeps its own type: (True, 1.0) must not pass as (1.0, 1.0).
        arr = np.asarray(spacing, dtype=object)
        if arr.ndim == 0:
            raise TypeError(f"{expected}, got {spacing!r}")
        if arr.ndim != 1 or arr.shape[0] != ndim:
            raise ValueError(
                f"spacing must have one entry per axis ({ndim}), got {len(np.atleast_1d(arr))}: {spacing!r}"
            )
        entries = [real_number(v) for v in arr.tolist()]
        if None in entries:
            raise TypeError(f"{expected} (no bools, strings or complex values), got {spacing!r}")
        values = np.array(entries, dtype=np.float64)
    if not np.isfinite(values).all() or (values <= 0).any():
        raise ValueError(f"spacing entries must be finite and > 0, got {values.tolist()}")
    return values


def check_spacing_range(spacing: np.ndarray, shape: tuple, dtype, output: str, factor: float = 1.0) -> None:
    """Refuse a (valid) spacing whose distances over this image ``dtype`` cannot represent.

    Every distance between two pixels must be a normal number of ``dtype``, and ``factor`` times the
    image diagonal must stay finite (2 for a weight map, which adds d1 and d2). ``output`` names what
    holds the distances, for the message.
    """
    info = np.finfo(dtype)
    with np.errstate(over="ignore"):
        ratio = float(spacing.max() / spacing.min())
    if ratio > MAX_ANISOTROPY:
        raise ValueError(
            f"spacing entries must differ by a factor of at most {MAX_ANISOTROPY:g}, got {spacing.tolist()} "
            f"(factor {ratio:.3g}): steps along the finest axis would underflow in the distance transform"
        )
    if spacing.min() < info.tiny:
        raise ValueError(
            f"spacing entries must be >= {float(info.tiny):.4g} (the smallest normal {info.dtype}) for "
            f"{output}, got {spacing.tolist()}"
        )
    with np.errstate(over="ignore"):
        diagonal = math.hypot(*(np.asarray(shape, dtype=np.float64) * spacing).tolist())
    largest = float(info.max) / factor
    if not diagonal <= largest:
        raise ValueError(
            f"spacing {spacing.tolist()} makes the diagonal of this {shape} image {diagonal:.4g} long, "
            f"more than {largest:.4g}, the largest distance {output} can hold"
        )


def positive_float(
    value, name: str, allow_zero: bool = False, allow_inf: bool = False, maximum: Optional[float] = None,
    why: str = "",
) -> float:
    """Check a scalar parameter: a real number, > 0 (or >= 0), finite unless ``allow_inf``, and at most
    ``maximum`` (``why`` says where that bound comes from)."""
    number = real_number(value)
    if number is None:
        raise TypeError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
    if math.isnan(number) or (math.isinf(number) and not allow_inf):
        raise ValueError(f"{name} must be a finite number, got {number}")
    if number < 0 or (number == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be {bound}, got {number}")
    if maximum is not None and number > maximum:
        raise ValueError(f"{name} must be <= {maximum:.8g}{why}, got {number:.8g}")
    return number


def optional_positive_float(value, name: str) -> Optional[float]:
    """None, or a number > 0 where inf is allowed (it means no bound)."""
    return None if value is None else positive_float(value, name, allow_inf=True)


def integer_in_range(value, name: str, low: int, high: int, what: str = "") -> int:
    """An integer option in ``low..high``; whole-valued floats are accepted, bools are not."""
    expected = f"{name} must be an integer in {low}..{high}{what}"
    scalar = _unwrap(value)
    if not _is_real(scalar):
        raise TypeError(f"{expected}, got {value!r} ({type(value).__name__})")
    if isinstance(scalar, (numbers.Integral, np.integer)):
        result = int(scalar)
    else:
        number = float(scalar)
        if not math.isfinite(number) or not number.is_integer():
            raise ValueError(f"{expected}, got {number}")
        result = int(number)
    if not low <= result <= high:
        raise ValueError(f"{expected}, got {result}")
    return result


def check_same_shape(arr: np.ndarray, name: str, shape: tuple, other: str = "labels") -> None:
    if arr.shape != shape:
        raise ValueError(f"{name} must have the same shape as {other} {shape}, got {arr.shape}")


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the system has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def thread_count(value) -> int:
    """``threads``: a positive integer, or 0 or None for every core this process may use."""
    if value is None:
        return available_cores()
    count = integer_in_range(value, "threads", 0, 1 << 16, " (0 or None: every core)")
    return count if count > 0 else available_cores()
