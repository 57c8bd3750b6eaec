"""Distances to the nearest and second-nearest object, and signed distance maps.

The expensive part of a U-Net weight map is d2, the distance to the second-nearest *distinct*
object. scipy's distance transform handles one feature set, so every scipy-based scheme needs
several transforms. Here one exact separable transform carries, for every pixel, the two smallest
squared distances to two distinct labels and those labels, axis by axis (the compiled kernel
``_two_nearest``, whose docstring holds the algorithm and why it is exact). It costs about one
distance transform of the image, whatever the number of objects, and gives d2 everywhere, so a
bound (``max_distance``, the weight map's cutoff) changes what is reported, not the cost.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

try:
    from ._two_nearest import add_border_term, nearest_two_squared
except ImportError as error:  # a source checkout used without installing it
    raise ImportError(
        "unetweights.weightmaps._two_nearest, the compiled distance kernel, is missing: install the package "
        "(pip install -e . in a checkout, or make venv), which builds it with Cython and a C compiler"
    ) from error
from .._validation import (
    SpacingLike,
    as_label_array,
    as_spacing,
    check_spacing_range,
    integer_in_range,
    optional_positive_float,
    thread_count,
)
from .instances import as_instances


def _unit_sampling(spacing: np.ndarray) -> tuple[np.ndarray, float]:
    """(spacing / scale, scale) with scale a power of two and the largest entry in [1, 2).

    scipy's distance transform squares the physical steps, which overflows or underflows for
    spacings far from 1 (1e200, 1e-200). Transforms run on the rescaled sampling and their output is
    multiplied by ``scale``. Scaling by a power of two is exact, so the result is bit for bit that of
    the plain transform wherever that one neither overflows nor underflows.
    """
    scale = math.ldexp(1.0, math.frexp(float(spacing.max()))[1] - 1)
    return spacing / scale, scale


def _kernel_labels(labels: np.ndarray) -> np.ndarray:
    """``labels`` as the C-contiguous int32 (P, M, N) array the kernel reads (2D as P = 1).

    Ids keep their values where int32 holds them (no copy for a C-contiguous int32 mask); larger
    ids are renumbered 1..n in order, since the kernel compares ids and never uses them as indices.
    int32 rather than int64 ids halve the kernel's label traffic and its memory (issue 24).
    """
    if labels.ndim == 2:
        labels = labels[np.newaxis]
    if labels.dtype.itemsize >= 4 and labels.dtype != np.int32 and int(labels.max()) > np.iinfo(np.int32).max:
        values, inverse = np.unique(labels, return_inverse=True)
        labels = inverse.reshape(labels.shape) + (0 if values[0] == 0 else 1)
    return np.ascontiguousarray(labels, dtype=np.int32)


def _squared(
    labels: np.ndarray, spacing: np.ndarray, threads: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(d1², d2², kernel labels, scale): the kernel's squared distances in rescaled units, d = scale·√f."""
    sampling, scale = _unit_sampling(spacing)
    kernel_labels = _kernel_labels(labels)
    step = np.concatenate([np.ones(3 - labels.ndim), sampling])
    f1, f2 = nearest_two_squared(kernel_labels, step, threads)
    return f1, f2, kernel_labels, scale


def _add_border_term_in_place(
    weights: np.ndarray,
    squared: tuple[np.ndarray, np.ndarray, np.ndarray, float],
    w0: float,
    sigma: float,
    cutoff: float,
    background_only: bool,
    threads: int = 1,
) -> None:
    """Add w0·exp(−(d1 + d2)²/2σ²) to ``weights`` (float32, in place) where d1 + d2 <= ``cutoff``.

    ``squared``: :func:`_squared` of the labels. The distances never become arrays of their own:
    one compiled pass reads the squared ones, and forms (d / σ)² rather than d² / σ², whose parts
    overflow or underflow (to inf / inf or 0 / 0) for extreme σ or spacing.
    """
    if not weights.flags.c_contiguous or weights.dtype != np.float32:
        raise AssertionError("weights must be a C-contiguous float32 array: it is updated through a flat view")
    f1, f2, kernel_labels, scale = squared
    add_border_term(
        f1, f2, kernel_labels, weights.reshape(kernel_labels.shape), scale, w0, sigma, cutoff, background_only, threads
    )


def _nearest_two(labels: np.ndarray, spacing: np.ndarray, threads: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Exact distances (d1, d2) to the nearest and second-nearest distinct positive id.

    The transform runs on the power-of-two rescaled sampling of :func:`_unit_sampling`, so squared
    steps neither overflow nor underflow; the result is scaled back exactly.
    """
    d1, d2, _, scale = _squared(labels, spacing, threads)
    d1 = np.sqrt(d1, out=d1).reshape(labels.shape)
    d2 = np.sqrt(d2, out=d2).reshape(labels.shape)
    if scale != 1.0:
        d1 *= scale
        d2 *= scale
    return d1, d2


def nearest_two_distances(
    labels, spacing: SpacingLike = None, max_distance: Optional[float] = None, threads: Optional[int] = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Distance from every pixel to the nearest and the second-nearest object.

    Parameters
    ----------
    labels : (M, N) or (P, M, N) array
        Instance labels: every positive id is one object, 0 is background. Ids need not be
        consecutive; any integer dtype works, and whole-valued floats are accepted. A bool mask is
        split into objects by face connectivity (:func:`label_instances`).
    spacing : float or sequence of float, optional
        Physical size of a pixel along each axis (default 1). Distances are in these units. Entries
        are finite and > 0; a spacing whose distances float64 cannot hold (entries differing by more
        than 1e150, an image diagonal beyond the float64 maximum) is refused.
    max_distance : float, optional
        Distances above this are reported as ``inf``. ``None`` (default), or ``inf``, reports every
        distance. Either way the cost is one exact transform of the image, about that of one
        ``scipy.ndimage.distance_transform_edt`` (see benchmarks/RESULTS.md).
    threads : int or None
        Native threads that share the lines of each axis, the GIL released: 1 (the default, so
        that data-loader workers never oversubscribe the cores), or 0 / None for every core this
        process may use. The result is the same bit for bit whatever the count.

    Returns
    -------
    d1, d2 : ndarray of float64, same shape as ``labels``
        d1 is the distance to the nearest object (0 inside an object), d2 the distance to the
        nearest *other* object (inside object i: the distance to the closest object that is not i).
        Where fewer than one (d1) or two (d2) objects lie within ``max_distance``, the value is inf;
        an image without objects gives inf everywhere.
    """
    labels = as_instances(labels)
    spacing = as_spacing(spacing, labels.ndim)
    max_distance = optional_positive_float(max_distance, "max_distance")
    threads = thread_count(threads)
    check_spacing_range(spacing, labels.shape, np.float64, "the float64 output")
    d1, d2 = _nearest_two(labels, spacing, threads)
    if max_distance is not None and not math.isinf(max_distance):
        d1[d1 > max_distance] = np.inf
        d2[d2 > max_distance] = np.inf
    return d1, d2


def signed_distance_map(mask, spacing: SpacingLike = None, channel_axis: Optional[int] = None) -> np.ndarray:
    """Signed Euclidean distance to the mask's boundary, for boundary and Hausdorff-style losses.

    Sign convention: positive outside the object, negative inside. A background pixel gets the
    distance to the nearest foreground pixel; a foreground pixel gets minus the distance to the
    nearest background pixel. Distances run between pixel centres, so no pixel of a mask that holds
    both classes is 0: the zero level lies between the two sides, and ``|phi| >= min(spacing)``.

    Parameters
    ----------
    mask : array of bool or {0, 1}
        Spatial shape (M, N) or (P, M, N); with ``channel_axis``, one extra axis of C classes, e.g.
        a one-hot (C, M, N) mask, and each channel is transformed on its own.
    spacing : float or sequence of float, optional
        Physical pixel size per spatial axis (default 1). Entries are finite and > 0; a spacing
        whose distances the float32 output cannot hold (an entry below the smallest normal float32,
        about 1.2e-38, an image diagonal above the largest, about 3.4e38, or entries differing by
        more than 1e150) is refused.
    channel_axis : int, optional
        The class axis of a multi-class mask, in -ndim..ndim-1 (a whole-valued float is accepted, a
        bool is not).

    Returns
    -------
    ndarray of float32, same shape as ``mask``
        A channel (or mask) with no foreground, or with no background, has no boundary: it is 0
        everywhere, so a loss that multiplies it by predictions gets no signal from that class.
    """
    arr = np.asarray(mask)
    if channel_axis is not None:
        channel_axis = integer_in_range(
            channel_axis, "channel_axis", -arr.ndim, arr.ndim - 1, f" (an axis of mask, ndim {arr.ndim})"
        )
        channels = np.moveaxis(arr, channel_axis, 0)
        arr_check = as_label_array(channels, name="mask", ndims=(3, 4))
        spacing = as_spacing(spacing, arr_check.ndim - 1)
        check_spacing_range(spacing, arr_check.shape[1:], np.float32, "the float32 output")
        out = np.stack([_signed_distance(ch, spacing) for ch in arr_check])
        return np.moveaxis(out, 0, channel_axis)
    arr = as_label_array(arr, name="mask")
    spacing = as_spacing(spacing, arr.ndim)
    check_spacing_range(spacing, arr.shape, np.float32, "the float32 output")
    return _signed_distance(arr, spacing)


def _signed_distance(mask: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    if mask.dtype != bool:
        if mask.max() > 1:
            raise ValueError(f"mask must be binary (bool or 0/1), found value {mask.max()}")
        mask = mask.astype(bool)
    n_fg = np.count_nonzero(mask)
    if n_fg == 0 or n_fg == mask.size:
        return np.zeros(mask.shape, dtype=np.float32)
    from scipy import ndimage as ndi  # here: importing scipy.ndimage costs 0.2 s, which a weight map never needs

    sampling, scale = _unit_sampling(spacing)
    outside = ndi.distance_transform_edt(~mask, sampling=sampling)
    outside -= ndi.distance_transform_edt(mask, sampling=sampling)
    if scale != 1.0:
        outside *= scale
    return outside.astype(np.float32)
