"""The maps that go beside the weight map: the signed distance map and the tubed skeleton of the
segmentation target, for the boundary, Hausdorff-DT and skeleton-recall losses.

Both are maps of the *target* the weight map goes with, never of the instance labels: the
foreground of the labels (carved first with ``separate``, ``ignore_label`` pixels as background),
or the class map of ``WeightMapDataset(target="labels")``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Optional

import numpy as np

from ..weightmaps import prepare_labels, signed_distance_map, tubed_skeleton
from ..weightmaps._validation import integer_in_range, positive_float
from ._options import _dry_run_labels, _spacing_rank

# The values that make no extra map; an option missing from an older manifest had this value.
_TARGET_DEFAULTS = {"signed_distance": False, "skeleton_radius": None}

# The number of classes of a foreground target: background (0) and foreground (1).
_FOREGROUND_CLASSES = 2


def _target_options(signed_distance, skeleton_radius, options: Mapping) -> dict:
    """Check the extra-map options against the validated weight-map ``options`` (for ``spacing``).

    A spacing that the float32 signed distance map cannot hold (an entry below the smallest normal
    float32) is refused here, by a dry run, rather than in a data-loader worker.
    """
    if not isinstance(signed_distance, (bool, np.bool_)):
        raise TypeError(f"signed_distance must be a bool, got {signed_distance!r}")
    if skeleton_radius is not None:
        skeleton_radius = positive_float(skeleton_radius, "skeleton_radius", allow_zero=True)
    if signed_distance:
        signed_distance_map(_dry_run_labels(_spacing_rank(options["spacing"])) > 0, spacing=options["spacing"])
    return {"signed_distance": bool(signed_distance), "skeleton_radius": skeleton_radius}


def _num_classes(num_classes, target: str, signed_distance: bool) -> Optional[int]:
    """The class count of ``WeightMapDataset``'s target: 2 for the foreground targets, None where a
    class map's count is neither given nor needed."""
    if num_classes is None:
        if target != "labels":
            return _FOREGROUND_CLASSES
        if signed_distance:
            raise ValueError(
                "num_classes is needed with target='labels' and signed_distance=True: the distance map has one "
                "channel per class, and every item must have the same number of channels"
            )
        return None
    num_classes = integer_in_range(num_classes, "num_classes", 2, np.iinfo(np.int32).max)
    if target != "labels" and num_classes != _FOREGROUND_CLASSES:
        raise ValueError(
            f"num_classes must be 2 (background, foreground) or None with target={target!r}, got {num_classes}"
        )
    return num_classes


def _foreground(labels: np.ndarray, options: Mapping) -> np.ndarray:
    """The bool target that the weight map of ``labels`` under ``options`` goes with.

    The objects after the carving of ``separate=True``, with ``ignore_label`` pixels as background:
    exactly the labels the weight map is made from, so the two always agree.
    """
    prepared, _ = prepare_labels(labels, options["separate"], options["ignore_label"])
    return prepared > 0


def _foreground_maps(labels: np.ndarray, options: Mapping, targets: Mapping) -> dict:
    """The maps ``targets`` asks for, of the foreground target of the instance ``labels``.

    {"distance": (2, *) float32, "skeleton": int64 of the labels' shape}, each only when asked
    for; {} when neither is.
    """
    maps = {}
    if targets["signed_distance"] or targets["skeleton_radius"] is not None:
        target = _foreground(labels, options)
        if targets["signed_distance"]:
            maps["distance"] = _signed_distances(target, _FOREGROUND_CLASSES, options["spacing"])
        if targets["skeleton_radius"] is not None:
            maps["skeleton"] = _skeleton(target, targets["skeleton_radius"], options["spacing"])
    return maps


def _signed_distances(
    target: np.ndarray, num_classes: int, spacing, ignored: Optional[np.ndarray] = None
) -> np.ndarray:
    """(C, *) float32: channel c is ``signed_distance_map(target == c, spacing)``.

    ``ignored`` pixels belong to no class: they are outside every class.
    """
    classes = np.arange(num_classes).reshape((-1,) + (1,) * target.ndim)
    one_hot = target[np.newaxis] == classes
    if ignored is not None:
        one_hot &= ~ignored
    return signed_distance_map(one_hot, spacing=spacing, channel_axis=0)


def _skeleton(target: np.ndarray, radius: float, spacing, ignored: Optional[np.ndarray] = None) -> np.ndarray:
    """int64 class indices: the tubed skeleton of every class of ``target`` (0 off the tubes).

    ``ignored`` pixels belong to no class: they are in no skeleton and no tube.
    """
    classes = np.asarray(target, dtype=np.int64)
    if ignored is not None:
        classes = np.where(ignored, 0, classes)
    return tubed_skeleton(classes, radius=radius, spacing=spacing)
