"""Class-frequency weights w_c, the first term of the U-Net weight map."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Union

import numpy as np

from ._validation import as_label_array

ClassWeights = Union[None, str, Mapping]

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


def class_balance_weights(classes, mode: ClassWeights = "balanced") -> np.ndarray:
    """Per-pixel class weight w_c.

    Parameters
    ----------
    classes : array of bool or non-negative integers, any shape
        The class of each pixel, e.g. ``labels > 0`` for background / foreground.
    mode : {"balanced"}, None or Mapping
        - ``"balanced"``: w_c(k) = n_pixels / (n_classes * n_k), where n_k counts the pixels of class
          k and n_classes counts the classes present in ``classes`` (the scikit-learn convention).
          Every class then carries the same total weight. A mask with a single class gets 1.
        - ``None``: w_c = 1 everywhere.
        - a mapping ``{class: weight}``: must cover every class present; weights finite and >= 0.

    Returns
    -------
    ndarray of float32, same shape as ``classes``
    """
    arr = as_label_array(classes, name="classes", ndims=range(0, 33))
    if mode is None:
        return np.ones(arr.shape, dtype=np.float32)
    values, counts, index = _class_counts(arr)
    present = counts > 0
    if isinstance(mode, str):
        if mode != "balanced":
            raise ValueError(f"class_weights (mode) must be 'balanced', None or a mapping, got {mode!r}")
        table = np.zeros(values.size, dtype=np.float64)
        table[present] = arr.size / (np.count_nonzero(present) * counts[present])
    elif isinstance(mode, Mapping):
        table = np.zeros(values.size, dtype=np.float64)
        for k in values[present].tolist():
            if k not in mode:
                raise ValueError(
                    f"class_weights mapping has no weight for class {k}, which is present; "
                    f"it covers {sorted(mode)}"
                )
            w = mode[k]
            if isinstance(w, (bool, np.bool_)) or not np.isscalar(w) or not np.isfinite(w) or w < 0:
                raise ValueError(f"class_weights[{k}] must be a finite number >= 0, got {w!r}")
            table[np.searchsorted(values, k)] = float(w)
    else:
        raise TypeError(f"class_weights (mode) must be 'balanced', None or a mapping, got {type(mode).__name__}")
    return table.astype(np.float32)[index]
