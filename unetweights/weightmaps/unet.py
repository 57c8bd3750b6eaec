"""The U-Net border weight map of Ronneberger et al. (2015)."""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

from .._validation import (
    FLOAT32_MAX,
    SpacingLike,
    as_label_array,
    as_spacing,
    check_same_shape,
    check_spacing_range,
    integer_in_range,
    positive_float,
    thread_count,
)
from .balance import ClassWeights, check_class_weights, class_balance_weights
from .distance import _add_border_term_in_place, _nearest_two, _squared
from .instances import label_instances, separate_touching

BORDERS = ("background", "all")


def _check_w0(w0) -> float:
    return positive_float(
        w0, "w0", allow_zero=True, maximum=FLOAT32_MAX, why=" (the largest float32: weight maps are float32)"
    )


def border_cutoff(w0: float = 10.0, sigma: float = 5.0, tol: float = 1e-6) -> float:
    """Distance sum beyond which the border term falls below ``tol``.

    T = sigma * sqrt(2 ln(w0 / tol)): where d1 + d2 > T, w0 exp(-(d1 + d2)^2 / (2 sigma^2)) < tol.
    This is the only reach a weight map needs, and the halo a chunked computation needs. Returns
    0.0 when ``w0 <= tol`` (the term never reaches ``tol``), and inf when T is beyond the float64
    range (sigma above about 1e306). Same units as ``sigma``. The options are checked as
    :func:`unet_weight_map` checks them: w0 in [0, largest float32], sigma and tol finite and > 0.
    """
    w0 = _check_w0(w0)
    sigma = positive_float(sigma, "sigma")
    tol = positive_float(tol, "tol")
    if w0 <= tol:
        return 0.0
    ratio = w0 / tol
    # w0 / tol overflows for a tiny tol (1e-320); log(w0) - log(tol) is the same number, finite.
    log_ratio = math.log(ratio) if math.isfinite(ratio) else math.log(w0) - math.log(tol)
    return sigma * math.sqrt(2.0 * log_ratio)


def _check_peak(w0: float, class_weights, n_pixels: int) -> None:
    """Refuse options whose largest weight, w_c + w0, has no finite float32."""
    if class_weights is None:
        largest, source = 1.0, "class_weights=None gives 1"
    elif isinstance(class_weights, str):
        largest, source = float(n_pixels), f"'{class_weights}' gives at most the pixel count {n_pixels}"
    else:
        largest = max(class_weights.values(), default=0.0)
        source = "the largest value in the class_weights mapping"
    with np.errstate(over="ignore"):
        peak = np.array(float(np.float32(largest)) + w0).astype(np.float32)
    if not np.isfinite(peak):
        raise ValueError(
            f"w0 + the largest class weight must be at most {FLOAT32_MAX:.8g} (the largest float32: weight "
            f"maps are float32), got w0 = {w0:.8g} plus {largest:.8g} ({source}); lower w0 or class_weights"
        )


def unet_weight_map(
    labels,
    w0: float = 10.0,
    sigma: float = 5.0,
    class_weights: ClassWeights = "balanced",
    spacing: SpacingLike = None,
    border: str = "background",
    tol: float = 1e-6,
    classes=None,
    separate: bool = False,
    ignore_label: Optional[int] = None,
    threads: Optional[int] = 1,
) -> np.ndarray:
    """Per-pixel loss weights that balance classes and emphasise thin gaps between objects.

    w(x) = w_c(x) + w0 * exp(-(d1(x) + d2(x))^2 / (2 sigma^2)), where d1 and d2 are the distances from
    x to the nearest and the second-nearest object (Ronneberger et al. 2015, eq. 2).

    The result equals this formula, evaluated with one distance transform per object over the whole
    image, to within ``tol`` at every pixel (plus the rounding of the float32 output). The border term
    is dropped where d1 + d2 > T = :func:`border_cutoff` (w0, sigma, tol), where it is below ``tol``.
    d1 and d2 come from one exact transform of the whole image, so the cost grows with the image
    area, not with the number of objects.

    Parameters
    ----------
    labels : (M, N) or (P, M, N) array
        Instance labels (every positive id is one object, 0 is background; any integer dtype,
        ids need not be consecutive), or a bool mask, which is split into objects by face
        connectivity. Touching objects must carry different ids to get a border between them.
    w0 : float
        Border weight, >= 0 (paper: 10). The largest weight, w0 + the largest class weight, must be
        finite in float32 (at most about 3.4e38).
    sigma : float
        Width of the border term, finite and > 0, in the same physical units as ``spacing`` (pixels
        when spacing is not given; paper: about 5 pixels).
    class_weights : {"balanced", "sqrt"}, None or Mapping
        w_c, see :func:`class_balance_weights`: ``"balanced"`` gives n_pixels / (n_classes * n_k)
        computed on this mask, ``"sqrt"`` its square root (the cap the U-Net authors advise for
        rare foreground), None gives 1, a mapping gives {class: weight}.
    spacing : float or sequence of float, optional
        Physical pixel size per axis (default 1), e.g. ``(2.0, 0.5, 0.5)`` for anisotropic voxels.
        Finite and > 0; a spacing whose distances float64 cannot hold (entries differing by more
        than 1e150, or an image diagonal near the float64 maximum) is refused.
    border : {"background", "all"}
        ``"background"`` (the paper's figure) adds the border term on label-0 pixels only; ``"all"``
        adds it everywhere, inside objects too.
    tol : float
        Accuracy target, finite and > 0. With ``tol >= w0`` the border term never exceeds ``tol``
        and the map is w_c.
    classes : array of non-negative int or bool, optional
        Semantic class of each pixel, for w_c; same shape as ``labels``. Default: background (0) and
        foreground (1) from ``labels > 0``.
    separate : bool
        Carve one-pixel gaps between touching objects first (:func:`separate_touching`). The map is
        then that of the carved labels: use ``separate_touching(labels)`` as the matching target.
    ignore_label : int, optional
        A label value (> 0) that marks pixels to ignore, such as unannotated regions: they get
        weight 0, are not objects (no border is drawn around them; carving treats them as
        background), and do not count in the class frequencies of "balanced" or "sqrt". The
        losses of :mod:`unetweights.losses` leave weight-0 pixels out of every reduction. It is a
        value of ``labels`` as given, never an id that labelling a bool mask generates: with a
        bool mask, which holds no label values, it raises ValueError.
    threads : int or None
        Native threads for the distance transform (:func:`nearest_two_distances`): 1 by default
        (data-loader workers never oversubscribe), 0 or None for every core. The map is the same
        bit for bit whatever the count.

    Returns
    -------
    ndarray of float32, same shape as ``labels``
        Edge cases: with fewer than two objects there is no border term (d2 is infinite), so the map
        is w_c; an all-background mask with "balanced" weights is 1 everywhere. The input is never
        modified.
    """
    labels, spacing = _labels_and_spacing(labels, spacing)
    w0 = _check_w0(w0)
    sigma = positive_float(sigma, "sigma")
    tol = positive_float(tol, "tol")
    class_weights = check_class_weights(class_weights)
    _check_peak(w0, class_weights, labels.size)
    if not isinstance(border, str) or border not in BORDERS:
        raise ValueError(f"border must be one of {BORDERS}, got {border!r}")
    _check_separate(separate)
    threads = thread_count(threads)
    if classes is not None:
        classes = as_label_array(classes, name="classes", ndims=(labels.ndim,))
        check_same_shape(classes, "classes", labels.shape)
    labels, ignored = _prepared(labels, separate, ignore_label)
    # The distances come first: the kernel's label scratch (8 B/voxel) is freed before w_c and the
    # class mask exist, which keeps the peak at about 28 B/voxel (issue 24). Beyond the cutoff the
    # border term is below tol, and with a zero cutoff it is left out altogether.
    cutoff = border_cutoff(w0, sigma, tol)
    squared = _squared(labels, spacing, threads) if cutoff > 0.0 else None
    classes = labels > 0 if classes is None else classes
    if ignored is None:
        # C order: the border term is added in place through a flat view (F-ordered labels give F-ordered w_c).
        weights = np.ascontiguousarray(class_balance_weights(classes, class_weights))
    else:
        weights = np.zeros(labels.shape, dtype=np.float32)
        kept = ~ignored
        if kept.any():
            weights[kept] = class_balance_weights(classes[kept], class_weights)
    if squared is not None:
        _add_border_term_in_place(weights, squared, w0, sigma, cutoff, border == "background", threads)
    if ignored is not None:
        weights[ignored] = 0.0
    return weights


def falk_weight_map(
    labels,
    lam: float = 50.0,
    sigma: float = 6.0,
    v_bal: float = 0.1,
    sigma_bal: float = 10.0,
    spacing: SpacingLike = None,
    separate: bool = False,
    ignore_label: Optional[int] = None,
    threads: Optional[int] = 1,
) -> np.ndarray:
    """The weighting of the U-Net authors' ImageJ plugin (Falk et al. 2019, Nature Methods).

    Foreground pixels weigh 1. A background pixel x weighs

        w(x) = v_bal + (1 - v_bal) · exp(-d1(x)² / 2 sigma_bal²) + lam · exp(-(d1(x) + d2(x))² / 2 sigma²),

    so background far from every object weighs ``v_bal`` (a fixed foreground/background ratio in
    place of frequency balancing), background near an object decays smoothly from 1 to ``v_bal``,
    and the gaps between touching objects get the border term. d1 and d2 are the exact distances
    to the nearest and second-nearest object, in the units of ``spacing``.

    Parameters
    ----------
    labels : (M, N) or (P, M, N) array of non-negative integers, or bool
        Instance labels as for :func:`unet_weight_map`. The plugin carves gaps between touching
        objects first: pass ``separate=True`` (or already separated labels) to do the same.
    lam : float
        Border weight λ, >= 0 (plugin default 50). lam + 1 must be finite in float32.
    sigma : float
        Width of the border term, finite and > 0 (plugin default 6), in units of ``spacing``.
    v_bal : float
        Weight of background far from objects, in [0, 1] (plugin default 0.1).
    sigma_bal : float
        Width of the decay from 1 to ``v_bal`` around objects, finite and > 0 (plugin default 10).
    spacing : float or sequence of float, optional
        Physical pixel size per axis (default 1).
    separate : bool
        Carve one-pixel gaps between touching objects first (:func:`separate_touching`).
    ignore_label : int, optional
        As in :func:`unet_weight_map`: those pixels weigh 0 and are no objects. A value of the
        labels as given; refused (ValueError) with a bool mask.
    threads : int or None
        As in :func:`unet_weight_map`.

    Returns
    -------
    ndarray of float32, same shape as ``labels``
        With no object, every pixel is background at distance inf: the map is ``v_bal``. With one
        object there is no border term (d2 is inf). The input is never modified.
    """
    labels, spacing = _labels_and_spacing(labels, spacing)
    lam = positive_float(
        lam, "lam", allow_zero=True, maximum=FLOAT32_MAX - 1.0, why=" (lam + 1 must be finite in float32)"
    )
    sigma = positive_float(sigma, "sigma")
    sigma_bal = positive_float(sigma_bal, "sigma_bal")
    v_bal = positive_float(v_bal, "v_bal", allow_zero=True, maximum=1.0, why=" (a weight between 0 and 1)")
    _check_separate(separate)
    threads = thread_count(threads)
    labels, ignored = _prepared(labels, separate, ignore_label)
    d1, d2 = _nearest_two(labels, spacing, threads)
    background = labels == 0
    near = d1[background] / sigma_bal
    border = (d1[background] + d2[background]) / sigma
    weights = np.ones(labels.shape, dtype=np.float32)
    weights[background] = v_bal + (1.0 - v_bal) * np.exp(-0.5 * near * near) + lam * np.exp(-0.5 * border * border)
    if ignored is not None:
        weights[ignored] = 0.0
    return weights


def _labels_and_spacing(labels, spacing: SpacingLike) -> tuple[np.ndarray, np.ndarray]:
    """Validated labels (a bool mask still unlabelled, see :func:`_prepared`) and spacing, refusing a
    spacing whose d1 + d2 float64 cannot hold."""
    labels = as_label_array(labels)
    spacing = as_spacing(spacing, labels.ndim)
    check_spacing_range(spacing, labels.shape, np.float64, "the sum d1 + d2 in float64", factor=2.0)
    return labels, spacing


def _check_separate(separate) -> None:
    if not isinstance(separate, (bool, np.bool_)):
        raise TypeError(f"separate must be a bool, got {separate!r}")


def check_ignore_label(labels, ignore_label, name: str = "labels") -> Optional[int]:
    """``ignore_label`` as an int (None stays None), checked against ``labels`` as given.

    It is a value those labels hold: a bool mask holds none, only the ids that labelling it
    generates, and comparing with those would silently drop whichever object got that id, so
    with a bool mask it raises a ``ValueError`` naming both (``name`` names the labels). An
    ignore label must be a positive integer (0 is background).
    """
    if ignore_label is None:
        return None
    ignore_label = integer_in_range(ignore_label, "ignore_label", 1, np.iinfo(np.int64).max, " (0 is background)")
    if np.asarray(labels).dtype == bool:
        raise ValueError(
            f"ignore_label={ignore_label} cannot apply to a bool mask ({name} of dtype bool): a bool mask has no "
            "label values, only the object ids its labelling generates; pass integer labels that hold the "
            "ignore value, or ignore_label=None"
        )
    return ignore_label


def prepare_labels(labels, separate: bool = False, ignore_label: Optional[int] = None) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """The instance labels a map is made from, and the mask of the ignored pixels.

    The one label preparation of :func:`unet_weight_map`, :func:`falk_weight_map` and the data
    pipeline's targets, in this order: ``ignore_label`` is checked against ``labels`` as given
    (refused for a bool mask, :func:`check_ignore_label`); a bool mask is labelled into objects
    (:func:`label_instances`); pixels equal to ``ignore_label`` become background, so no object;
    with ``separate``, one-pixel gaps are carved between touching objects
    (:func:`separate_touching`).

    Parameters
    ----------
    labels : array_like
        2-D or 3-D instance labels (0 is background) or a bool mask.
    separate : bool
        Carve gaps between touching objects, as the authors' plugin does.
    ignore_label : int, optional
        A value of ``labels`` whose pixels count in no object.

    Returns
    -------
    labels : ndarray
        Integer instance labels (``labels`` itself where nothing changes; never written to).
    ignored : ndarray of bool or None
        True where ``labels`` held ``ignore_label``; None where no pixel did (or none is given).
    """
    return _prepared(as_label_array(labels), separate, ignore_label)


def _prepared(labels: np.ndarray, separate: bool, ignore_label) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """(the instance labels a map is made from, the mask of ``ignore_label`` pixels or None if there are none).

    ``labels`` are as given (checked by ``as_label_array``): ``ignore_label`` is compared with them
    before a bool mask is labelled into objects, and refused for one. Ignored pixels become
    background, and so no object, before the gaps are carved.
    """
    ignore_label = check_ignore_label(labels, ignore_label)
    if labels.dtype == bool:
        labels = label_instances(labels)
    ignored = None
    if ignore_label is not None:
        ignored = labels == ignore_label
        if ignored.any():
            labels = np.where(ignored, 0, labels)
        else:
            ignored = None
    if separate:
        labels = separate_touching(labels)
    return labels, ignored
