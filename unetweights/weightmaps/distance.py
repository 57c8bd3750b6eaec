"""Distances to the nearest and second-nearest object, and signed distance maps.

The expensive part of a U-Net weight map is d2, the distance to the second-nearest object. The
textbook way runs one full-image distance transform per object: objects x pixels. Here every
object's distance is needed only up to a reach R (the border cutoff T for weight maps), which gives
two exact strategies built on :func:`scipy.ndimage.distance_transform_edt`:

``"windows"``
    One transform per object, on its bounding box grown by R. A window holds the whole object, so
    its distances are exact everywhere in the window, and it holds every pixel within R of the
    object. Small windows also stay in cache, which makes them several times cheaper per pixel than
    one transform of the whole image.
``"colouring"``
    Colour the objects so that two objects closer than a pair reach P never share a colour. For a
    pixel whose two nearest objects are within P of each other, those two then differ in some bit
    of their colour index; split the objects by that bit, run one transform per side, and the
    larger of the two is exactly d2. So 2 * ceil(log2(colours)) transforms, each over the bounding
    box of its objects grown by R, replace one per object. This wins when windows would overlap
    heavily (small, crowded volumes).

Both keep, for every pixel, the two smallest distances to distinct objects seen so far. Each value
is a true distance to some object, so the result is never smaller than the exact one, and it is
exact wherever the guarantee of :func:`_nearest_two` holds. A cost model picks the cheaper strategy.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
from scipy import ndimage as ndi

from ._validation import (
    SpacingLike,
    as_label_array,
    as_spacing,
    check_spacing_range,
    integer_in_range,
    optional_positive_float,
)
from .instances import as_instances

# Tests set this to "windows" or "colouring" to run one strategy on every input.
_FORCED_STRATEGY: Optional[str] = None

# Cost model, in units of one pixel of a single-object window transform. A transform over many
# objects, or over an array that falls out of cache, costs more per pixel (scipy 1.17, measured per
# pixel: single-object windows 26-45 ns; multi-object regions 41-61 ns up to 2**17 pixels, 105-180 ns
# beyond, the higher figures in 3D).
_SMALL_REGION = 1 << 17
_REGION_FACTOR_SMALL = 2.0
_REGION_FACTOR_LARGE = 3.5


def _objects(labels: np.ndarray) -> tuple[np.ndarray, list, np.ndarray]:
    """Return (ids, bounding-box slices, labels usable with ``find_objects``) for the positive ids.

    Sparse or huge ids (uint32 near 4e9, int64 beyond) are relabelled to 1..n first, because
    ``find_objects`` allocates one entry per possible id.
    """
    if labels.dtype == bool:
        labels = labels.view(np.uint8)
    max_id = int(labels.max())
    if max_id == 0:
        return np.zeros(0, dtype=np.int64), [], labels
    if max_id > max(labels.size, 1 << 20):
        values, inverse = np.unique(labels, return_inverse=True)
        offset = 0 if values[0] == 0 else 1
        labels = (inverse.reshape(labels.shape) + offset).astype(np.int64)
    slices = ndi.find_objects(labels)
    ids = np.array([i + 1 for i, s in enumerate(slices) if s is not None], dtype=np.int64)
    boxes = [slices[i - 1] for i in ids]
    return ids, boxes, labels


def _grow(box: tuple, margin: np.ndarray, shape: tuple) -> tuple:
    return tuple(
        slice(max(0, s.start - int(m)), min(n, s.stop + int(m))) for s, m, n in zip(box, margin, shape)
    )


def _margin(reach: float, spacing: np.ndarray, shape: tuple) -> np.ndarray:
    """Pixels per axis covering a physical reach, at most the axis length (all of it when unbounded).

    Clipped in floating point before the cast: a huge reach (or a tiny spacing) gives a pixel count
    beyond int64, which would wrap around and shrink the windows instead of covering the image.
    """
    with np.errstate(over="ignore"):
        pixels = np.floor(reach / spacing)
    return np.minimum(pixels, np.asarray(shape, dtype=np.float64)).astype(np.int64)


def _unit_sampling(spacing: np.ndarray) -> tuple[np.ndarray, float]:
    """(spacing / scale, scale) with scale a power of two and the largest entry in [1, 2).

    scipy's distance transform squares the physical steps, which overflows or underflows for
    spacings far from 1 (1e200, 1e-200). Transforms run on the rescaled sampling and their output is
    multiplied by ``scale``. Scaling by a power of two is exact, so the result is bit for bit that of
    the plain transform wherever that one neither overflows nor underflows.
    """
    scale = math.ldexp(1.0, math.frexp(float(spacing.max()))[1] - 1)
    return spacing / scale, scale


def _volume(box: tuple) -> int:
    return int(np.prod([s.stop - s.start for s in box]))


def _region_cost(box: tuple) -> float:
    n = _volume(box)
    return n * (_REGION_FACTOR_SMALL if n <= _SMALL_REGION else _REGION_FACTOR_LARGE)


def _conflict_graph(boxes: list, spacing: np.ndarray, pair_reach: float) -> list[list[int]]:
    """Neighbours of each object: the others whose bounding boxes lie within ``pair_reach``.

    The gap between bounding boxes is a lower bound of the distance between the objects, so this is
    a superset of the pairs that are truly that close, which is what exactness needs.
    """
    n = len(boxes)
    lo = np.array([[s.start for s in b] for b in boxes], dtype=np.float64)
    hi = np.array([[s.stop - 1 for s in b] for b in boxes], dtype=np.float64)
    order = np.argsort(lo[:, 0], kind="stable")
    lo, hi = lo[order], hi[order]
    with np.errstate(over="ignore"):
        # inf for a reach far beyond the pixel size: every later box is then a candidate, as it should.
        reach0 = pair_reach / spacing[0]
    neighbours: list[list[int]] = [[] for _ in range(n)]
    for k in range(n):
        # Sweep along axis 0: only boxes starting before this one ends (+ reach) can be close.
        end = np.searchsorted(lo[:, 0], hi[k, 0] + reach0, side="right")
        if end <= k + 1:
            continue
        gap = np.maximum(0.0, np.maximum(lo[k + 1:end] - hi[k], lo[k] - hi[k + 1:end])) * spacing
        close = np.flatnonzero(np.einsum("ij,ij->i", gap, gap) <= pair_reach * pair_reach) + k + 1
        a = int(order[k])
        for j in order[close].tolist():
            neighbours[a].append(j)
            neighbours[j].append(a)
    return neighbours


def _bit_partitions(colours: np.ndarray, windows: list) -> list:
    """Two-way splits of the objects, one per bit of the colour index, each part with its region.

    Two objects of different colours differ in at least one bit, so some split puts them on
    different sides; there the larger of the two sides' distances is exactly d2. Taking the
    smallest of these over all splits gives d2 with 2 * ceil(log2(k)) transforms for k colours,
    instead of k. With a single colour one transform (all objects) still gives d1.
    """
    n_bits = max(1, int(colours.max()).bit_length())
    partitions = []
    for bit in range(n_bits):
        side = (colours >> bit) & 1
        parts = []
        for value in (0, 1):
            members = np.flatnonzero(side == value)
            if members.size:
                parts.append((members, _union(windows[i] for i in members.tolist())))
        partitions.append(parts)
    return partitions


def _union(boxes) -> tuple:
    boxes = list(boxes)
    return tuple(
        slice(min(b[k].start for b in boxes), max(b[k].stop for b in boxes)) for k in range(len(boxes[0]))
    )


def _greedy_colouring(neighbours: list[list[int]]) -> np.ndarray:
    """Colours such that neighbours differ; largest degree first (Welsh-Powell)."""
    n = len(neighbours)
    colour = np.full(n, -1, dtype=np.int64)
    for i in sorted(range(n), key=lambda i: -len(neighbours[i])):
        used = {int(colour[j]) for j in neighbours[i]}
        c = 0
        while c in used:
            c += 1
        colour[i] = c
    return colour


class _TopTwo:
    """Running two smallest distances to distinct objects, per pixel."""

    def __init__(self, shape: tuple):
        self.d1 = np.full(shape, np.inf)
        self.d2 = np.full(shape, np.inf)
        self._scratch = np.empty(0)

    def update(self, region: tuple, distance: np.ndarray) -> None:
        """Fold in the distances to one object (or one side of a split) over ``region``."""
        d1 = self.d1[region]
        d2 = self.d2[region]
        if self._scratch.size < distance.size:
            self._scratch = np.empty(distance.size)
        larger = self._scratch[: distance.size].reshape(distance.shape)
        np.maximum(d1, distance, out=larger)
        np.minimum(d2, larger, out=d2)
        np.minimum(d1, distance, out=d1)


def _plan(
    boxes: list, windows: list, shape: tuple, spacing: np.ndarray, pair_reach: float, strategy: Optional[str]
) -> Optional[list]:
    """The colour splits to run, or None to run per-object windows, by the cost model."""
    if strategy == "windows" or len(boxes) < 2 or math.isinf(pair_reach):
        return None
    window_cost = sum(_volume(w) for w in windows)
    # Any split needs two region transforms at least; skip the graph when windows are cheaper.
    if strategy != "colouring" and window_cost <= 2 * _region_cost(tuple(slice(0, n) for n in shape)):
        return None
    partitions = _bit_partitions(_greedy_colouring(_conflict_graph(boxes, spacing, pair_reach)), windows)
    if strategy != "colouring" and sum(_region_cost(r) for p in partitions for _, r in p) >= window_cost:
        return None
    return partitions


def _nearest_two(
    labels: np.ndarray, spacing: np.ndarray, reach: float, pair_reach: float, strategy: Optional[str] = None
) -> tuple[np.ndarray, np.ndarray]:
    """Two smallest distances to distinct objects, exact where it matters.

    Guarantee: d1 is exact wherever the true d1 <= ``reach``; d2 is exact wherever the true
    d2 <= ``reach`` and d1 + d2 <= ``pair_reach``. Everywhere else the values are not smaller than
    the true ones (possibly inf). Weight maps use reach = pair_reach = T; a capped
    :func:`nearest_two_distances` uses reach = M and pair_reach = 2M.
    """
    strategy = strategy or _FORCED_STRATEGY
    ids, boxes, labels = _objects(labels)
    top = _TopTwo(labels.shape)
    if ids.size == 0:
        return top.d1, top.d2
    margin = _margin(reach, spacing, labels.shape)
    windows = [_grow(b, margin, labels.shape) for b in boxes]
    sampling, scale = _unit_sampling(spacing)

    # The conflict graph squares gaps; in rescaled units they neither overflow nor underflow.
    partitions = _plan(boxes, windows, labels.shape, sampling, pair_reach / scale, strategy)
    if partitions is None:
        for obj_id, window in zip(ids.tolist(), windows):
            top.update(window, ndi.distance_transform_edt(labels[window] != obj_id, sampling=sampling))
        return _rescale(top, scale)

    # The first split gives d1 and a candidate d2; every further split can only lower d2.
    lut = np.zeros(int(labels.max()) + 1, dtype=bool)
    split = top
    for p, parts in enumerate(partitions):
        if p == 1:
            split = _TopTwo(labels.shape)
        elif p > 1:
            split.d1.fill(np.inf)
            split.d2.fill(np.inf)
        for members, region in parts:
            lut[:] = False
            lut[ids[members]] = True
            split.update(region, ndi.distance_transform_edt(~lut[labels[region]], sampling=sampling))
        if p:
            np.minimum(top.d2, split.d2, out=top.d2)
    return _rescale(top, scale)


def _rescale(top: _TopTwo, scale: float) -> tuple[np.ndarray, np.ndarray]:
    if scale != 1.0:
        top.d1 *= scale
        top.d2 *= scale
    return top.d1, top.d2


def nearest_two_distances(
    labels, spacing: SpacingLike = None, max_distance: Optional[float] = None
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
        Distances above this are reported as ``inf``. Bounding them bounds the work: each object is
        processed only within ``max_distance`` of itself. ``None`` (default), or ``inf``, computes
        exact values everywhere, at the cost of one image-wide distance transform per object.

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
    check_spacing_range(spacing, labels.shape, np.float64, "the float64 output")
    reach = math.inf if max_distance is None else max_distance
    d1, d2 = _nearest_two(labels, spacing, reach, 2 * reach)
    if not math.isinf(reach):
        d1[d1 > reach] = np.inf
        d2[d2 > reach] = np.inf
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
    sampling, scale = _unit_sampling(spacing)
    outside = ndi.distance_transform_edt(~mask, sampling=sampling)
    outside -= ndi.distance_transform_edt(mask, sampling=sampling)
    if scale != 1.0:
        outside *= scale
    return outside.astype(np.float32)
