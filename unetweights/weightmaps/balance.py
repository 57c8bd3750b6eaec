"""Class-frequency weights w_c, the first term of the U-Net weight map."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Union

import numpy as np

from .._validation import FLOAT32_MAX, as_label_array, real_number

ClassWeights = Union[None, str, Mapping]

# The modes computed from the class counts of the mask.
BALANCING_MODES = ("balanced", "sqrt")

# Above this many possible class values a lookup table is wasteful; count the values present instead.
_MAX_TABLE = 1 << 16


def _class_counts(classes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (sorted class values, their pixel counts, per-pixel index into both).

    Values may include absent classes (count 0) when a dense table is cheaper than a sort.
    """
    if classes.dtype == bool:
        counts = np.array([classes.size - np.count_nonzero(classes), np.count_nonzero(classes)])
        values = np.array([0, 1])
        index = classes.view(np.uint8)
    elif int(classes.max()) < _MAX_TABLE:
        counts = np.bincount(classes.ravel(), minlength=1)
        values = np.arange(counts.size)
        index = classes
    else:
        values, inverse, counts = np.unique(classes, return_inverse=True, return_counts=True)
        index = inverse.reshape(classes.shape)
    return values, counts, index


def check_class_weights(mode: ClassWeights) -> Union[None, str, dict]:
    """Validate a ``class_weights`` option before any work.

    Returns None, ``"balanced"``, ``"sqrt"``, or a mapping as ``{int class: float weight}``. Every entry of a
    mapping is checked, not only those of the classes an image happens to hold, so that an option is
    accepted or refused independently of the data.
    """
    if mode is None:
        return None
    if isinstance(mode, str):
        if mode not in BALANCING_MODES:
            raise ValueError(f"class_weights (mode) must be 'balanced', 'sqrt', None or a mapping, got {mode!r}")
        return mode
    if not isinstance(mode, Mapping):
        explicit = isinstance(mode, (list, tuple, np.ndarray))
        hint = "; give explicit weights as a mapping {class: weight}" if explicit else ""
        raise TypeError(
            f"class_weights (mode) must be 'balanced', 'sqrt', None or a mapping, got {type(mode).__name__}{hint}"
        )
    table = {}
    for key, value in mode.items():
        number = real_number(key) if not isinstance(key, (bool, np.bool_)) else float(key)
        if number is None or not math.isfinite(number) or not number.is_integer() or number < 0:
            raise ValueError(f"class_weights keys must be class ids (non-negative integers), got {key!r}")
        weight = real_number(value)
        if weight is None or not math.isfinite(weight) or not 0 <= weight <= FLOAT32_MAX:
            raise ValueError(
                f"class_weights[{key}] must be a finite number >= 0 and <= {FLOAT32_MAX:.8g} "
                f"(the largest float32: weights are float32), got {value!r}"
            )
        table[int(number)] = weight
    return table


def balanced_table(n_pixels: int, counts: np.ndarray, mode: str) -> np.ndarray:
    """The weights of ``mode`` ("balanced" or "sqrt") for the present classes' pixel ``counts``."""
    table = n_pixels / (counts.size * np.asarray(counts, dtype=np.float64))
    return np.sqrt(table) if mode == "sqrt" else table


def class_balance_weights(classes, mode: ClassWeights = "balanced") -> np.ndarray:
    """Per-pixel class weight w_c.

    Parameters
    ----------
    classes : array of bool or non-negative integers, any shape
        The class of each pixel, e.g. ``labels > 0`` for background / foreground.
    mode : {"balanced", "sqrt"}, None or Mapping
        - ``"balanced"``: w_c(k) = n_pixels / (n_classes * n_k), where n_k counts the pixels of class
          k and n_classes counts the classes present in ``classes`` (the scikit-learn convention).
          Every class then carries the same total weight. A mask with a single class gets 1. With
          rare foreground this grows large: 0.3 % foreground gets about 167, background 0.5.
        - ``"sqrt"``: the square root of ``"balanced"``, sqrt(n_pixels / (n_classes * n_k)): the
          ratio between two classes' weights is sqrt(n_j / n_k) instead of n_j / n_k. This is the
          cap the U-Net authors advise (Falk et al. 2019: a foreground/background ratio of no more
          than about sqrt(bg / fg)); 0.3 % foreground gets about 12.9, background 0.71, a ratio
          of 18.2 where "balanced" gives 332.
        - ``None``: w_c = 1 everywhere.
        - a mapping ``{class: weight}``: must cover every class present. Keys are non-negative
          whole numbers (or bools); every weight is a real number, finite, >= 0 and at most the
          largest float32 (about 3.4e38), the absent classes' weights included.

    Returns
    -------
    ndarray of float32, same shape as ``classes``
    """
    mode = check_class_weights(mode)
    arr = as_label_array(classes, name="classes", ndims=range(0, 33))
    if mode is None:
        return np.ones(arr.shape, dtype=np.float32)
    values, counts, index = _class_counts(arr)
    present = counts > 0
    table = np.zeros(values.size, dtype=np.float64)
    if mode in BALANCING_MODES:
        table[present] = balanced_table(arr.size, counts[present], mode)
    else:
        for k in values[present].tolist():
            if k not in mode:
                raise ValueError(
                    f"class_weights mapping has no weight for class {k}, which is present; "
                    f"it covers {sorted(mode)}"
                )
            table[np.searchsorted(values, k)] = mode[k]
    return table.astype(np.float32)[index]
