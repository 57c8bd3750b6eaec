"""Brute-force float64 reference implementations for ``unetweights.weightmaps``.

These functions are deliberately plain: they favour obvious correctness over
speed (one full-image Euclidean distance transform per object, Python loops
over pixels).  They are used by the test suite and by the benchmark script as
the ground truth the fast implementation is compared against.  Nothing here
imports ``unetweights``.
"""

from __future__ import annotations

import itertools
from typing import Mapping, Optional, Sequence, Tuple, Union

import numpy as np
from scipy import ndimage

__all__ = [
    "reference_spacing",
    "reference_instances",
    "reference_nearest_two",
    "reference_class_weights",
    "reference_unet_weight_map",
    "reference_separate_touching",
    "reference_signed_distance",
]

SpacingLike = Union[None, float, Sequence[float]]


def reference_spacing(spacing: SpacingLike, ndim: int) -> Tuple[float, ...]:
    """Return the per-axis spacing as a tuple of floats (None -> all ones,
    a scalar is broadcast to every axis)."""
    if spacing is None:
        return (1.0,) * ndim
    if np.ndim(spacing) == 0:
        return (float(spacing),) * ndim
    spacing = tuple(float(s) for s in spacing)
    if len(spacing) != ndim:
        raise ValueError("spacing length must equal ndim")
    return spacing


def reference_instances(labels: np.ndarray) -> np.ndarray:
    """Instance map used by the references: a bool mask is split into its
    face-connected components (``scipy.ndimage.label``); integer (or
    integral float) maps are taken as instance ids as given."""
    labels = np.asarray(labels)
    if labels.dtype == bool:
        out, _ = ndimage.label(labels)
        return out.astype(np.int64)
    return labels


def reference_nearest_two(
    labels: np.ndarray, spacing: SpacingLike = None
) -> Tuple[np.ndarray, np.ndarray]:
    """Distances to the nearest (d1) and second-nearest (d2) distinct object.

    For every distinct positive id ``i`` the full-image Euclidean distance
    transform of ``labels != i`` (with ``sampling=spacing``) gives the
    distance of each pixel to object ``i`` (0 inside ``i``).  The per-object
    maps are stacked and sorted along the object axis (in chunks, carrying the
    two smallest so far); d1 is the smallest and d2 the second smallest.  d1 (d2) is ``inf`` where fewer than one (two)
    objects exist.  Returns two float64 arrays of ``labels.shape``.
    """
    labels = reference_instances(labels)
    sampling = reference_spacing(spacing, labels.ndim)
    d1 = np.full(labels.shape, np.inf, dtype=np.float64)
    d2 = np.full(labels.shape, np.inf, dtype=np.float64)
    ids = np.unique(labels[labels > 0])
    if ids.size == 0:
        return d1, d2
    # Sort in chunks of objects, carrying the two smallest so far, so that large benchmark volumes
    # do not need (objects x pixels) memory; the result is the same as one big sort.
    for start in range(0, ids.size, 16):
        stack = np.stack(
            [d1, d2]
            + [
                ndimage.distance_transform_edt(labels != i, sampling=sampling).astype(np.float64)
                for i in ids[start:start + 16]
            ]
        )
        stack.sort(axis=0)
        d1, d2 = stack[0].copy(), stack[1].copy()
    return d1, d2


def reference_class_weights(
    classes: np.ndarray,
    class_weights: Union[None, str, Mapping[int, float]] = "balanced",
) -> np.ndarray:
    """Per-pixel class weight w_c as float64.

    ``"balanced"``: w_c(k) = n_pixels / (n_present_classes * n_k) over the
    classes present; ``None``: all ones; a mapping: ``mapping[class]``.
    """
    classes = np.asarray(classes)
    out = np.empty(classes.shape, dtype=np.float64)
    values = np.unique(classes)
    if class_weights is None:
        out[...] = 1.0
    elif isinstance(class_weights, str):
        if class_weights != "balanced":
            raise ValueError(class_weights)
        n = classes.size
        for k in values:
            n_k = np.count_nonzero(classes == k)
            out[classes == k] = n / (len(values) * n_k)
    else:
        for k in values:
            key = bool(k) if classes.dtype == bool else int(k)
            out[classes == k] = float(class_weights[key])
    return out


def reference_unet_weight_map(
    labels: np.ndarray,
    w0: float = 10.0,
    sigma: float = 5.0,
    class_weights: Union[None, str, Mapping[int, float]] = "balanced",
    spacing: SpacingLike = None,
    border: str = "background",
    classes: Optional[np.ndarray] = None,
) -> np.ndarray:
    """U-Net weight map (Ronneberger et al. 2015) in float64, without cutoff.

    w = w_c + w0 * exp(-(d1 + d2)^2 / (2 sigma^2)); the border term is 0
    where d2 is inf.  ``border="background"`` applies the term only where
    ``labels == 0``, ``"all"`` everywhere.  ``classes`` defaults to
    ``(labels > 0).astype(int)``.
    """
    labels = reference_instances(labels)
    if classes is None:
        classes = (labels > 0).astype(np.int64)
    wc = reference_class_weights(classes, class_weights)
    d1, d2 = reference_nearest_two(labels, spacing)
    finite = np.isfinite(d2)
    s = np.where(finite, d1 + d2, 0.0)
    # (s / sigma)^2 / 2, the same value as s^2 / (2 sigma^2) without inf / inf or 0 / 0 for extreme
    # sigma; a square that overflows to inf correctly gives exp(-inf) = 0.
    with np.errstate(over="ignore"):
        term = np.where(finite, float(w0) * np.exp(-0.5 * (s / float(sigma)) ** 2), 0.0)
    if border == "background":
        term = np.where(labels == 0, term, 0.0)
    elif border != "all":
        raise ValueError(border)
    return wc + term


def reference_separate_touching(
    labels: np.ndarray, connectivity: Optional[int] = None
) -> np.ndarray:
    """Brute-force loop: a pixel p with label > 0 becomes 0 when any
    neighbour (offsets in {-1,0,1}^ndim with 1 <= sum|o| <= connectivity;
    None means ndim, i.e. full connectivity) in the *input* carries a label
    greater than label(p)."""
    labels = np.asarray(labels)
    ndim = labels.ndim
    conn = ndim if connectivity is None else int(connectivity)
    offsets = [
        o
        for o in itertools.product((-1, 0, 1), repeat=ndim)
        if 1 <= sum(abs(x) for x in o) <= conn
    ]
    out = labels.copy()
    shape = labels.shape
    for idx in np.ndindex(shape):
        v = labels[idx]
        if v == 0:
            continue
        for o in offsets:
            q = tuple(i + d for i, d in zip(idx, o))
            if all(0 <= qi < n for qi, n in zip(q, shape)) and labels[q] > v:
                out[idx] = 0
                break
    return out


def reference_signed_distance(
    mask: np.ndarray, spacing: SpacingLike = None
) -> np.ndarray:
    """Brute-force signed distance (float64) of a single-channel mask.

    Background pixel: + min physical Euclidean distance to a foreground
    pixel.  Foreground pixel: - min distance to a background pixel.  A mask
    without foreground or without background gives all zeros.
    """
    fg = np.asarray(mask).astype(bool)
    sampling = np.asarray(reference_spacing(spacing, fg.ndim), dtype=np.float64)
    out = np.zeros(fg.shape, dtype=np.float64)
    if fg.all() or not fg.any():
        return out
    coords = np.stack(np.indices(fg.shape), axis=-1).reshape(-1, fg.ndim) * sampling
    flat = fg.reshape(-1)
    fg_pts = coords[flat]
    bg_pts = coords[~flat]
    # distance from every background pixel to every foreground pixel
    dist = np.sqrt(((bg_pts[:, None, :] - fg_pts[None, :, :]) ** 2).sum(axis=-1))
    res = np.empty(flat.shape, dtype=np.float64)
    res[~flat] = dist.min(axis=1)
    res[flat] = -dist.min(axis=0)
    return res.reshape(fg.shape)
