"""WeightMapTransform: a weight map added to a sample, a dict (MONAI style) or an (image, labels) pair.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Optional

import numpy as np

from ._masks import _as_label_input
from ._options import _make_weight, _options_repr, _weight_map_options


class WeightMapTransform:
    """Add a U-Net weight map (:func:`unet_weight_map`) to a sample.

    Parameters
    ----------
    label_key : hashable, default "label"
        Where a dict sample holds its labels.
    weight_key : hashable, default "weight"
        Where the weight map goes in a dict sample; must differ from ``label_key``.
    channel_axis : int, optional
        For channel-first (or channel-last) labels such as ``(1, H, W)``: this axis, of size 1, is
        removed for the computation and put back on the weight map, which then has the labels' shape.
    **options
        Keyword arguments of :func:`unet_weight_map`: ``w0``, ``sigma``, ``class_weights``,
        ``spacing``, ``border``, ``tol``, ``separate``, ``ignore_label``; or ``weighting="falk"``
        and those of :func:`falk_weight_map` (``lam``, ``sigma``, ``v_bal``, ``sigma_bal``,
        ``spacing``, ``separate``, ``ignore_label``). They are checked here, once: an unknown name
        raises TypeError, a bad value the ValueError or TypeError the weight-map code gives. A
        ``class_weights`` mapping must give weights for 0 (background) and 1 (foreground).

    Notes
    -----
    Calling the transform on

    - a mapping returns a new ``dict`` with ``weight_key`` added (the input mapping is not modified;
      the other values are the same objects, not copies);
    - an ``(image, labels)`` tuple or list returns the tuple ``(image, labels, weight)``.

    The labels may be a numpy array or anything ``np.asarray`` reads, a CPU torch tensor included
    (a CUDA tensor raises TypeError). The weight map is always a float32 numpy array of the labels'
    shape; a torch ``DataLoader`` collates it into a tensor. The labels are never modified.
    Instances hold plain data and pickle, so they can go to data-loader worker processes.
    """

    def __init__(self, label_key="label", weight_key="weight", channel_axis: Optional[int] = None, **options):
        for name, key in (("label_key", label_key), ("weight_key", weight_key)):
            try:
                hash(key)
            except TypeError:
                raise TypeError(f"{name} must be hashable (a dict key), got {type(key).__name__}") from None
        if label_key == weight_key:
            raise ValueError(f"weight_key must differ from label_key, got {weight_key!r} for both")
        if channel_axis is not None and (
            isinstance(channel_axis, (bool, np.bool_)) or not isinstance(channel_axis, (int, np.integer))
        ):
            raise TypeError(f"channel_axis must be an int or None, got {channel_axis!r}")
        self.label_key = label_key
        self.weight_key = weight_key
        self.channel_axis = None if channel_axis is None else int(channel_axis)
        self.options = _weight_map_options(options, "WeightMapTransform")

    def __repr__(self) -> str:
        extra = _options_repr(self.options)
        return (
            f"WeightMapTransform(label_key={self.label_key!r}, weight_key={self.weight_key!r}, "
            f"channel_axis={self.channel_axis!r}{', ' + extra if extra else ''})"
        )

    def weight_map(self, labels) -> np.ndarray:
        """The float32 weight map of ``labels``, of the same shape (``channel_axis`` handled)."""
        labels = _as_label_input(labels)
        if self.channel_axis is None:
            return _make_weight(labels, self.options)
        axis = self.channel_axis
        if not -labels.ndim <= axis < labels.ndim:
            raise ValueError(f"channel_axis {axis} is out of range for labels of shape {labels.shape}")
        if labels.shape[axis] != 1:
            raise ValueError(
                f"channel_axis {axis} of labels must have size 1 (one label channel), got shape {labels.shape}"
            )
        weight = _make_weight(np.squeeze(labels, axis=axis), self.options)
        return np.expand_dims(weight, axis=axis)

    def __call__(self, data):
        if isinstance(data, Mapping):
            if self.label_key not in data:
                raise ValueError(f"data must hold the key {self.label_key!r} (label_key), got keys {list(data)}")
            out = dict(data)
            out[self.weight_key] = self.weight_map(data[self.label_key])
            return out
        if isinstance(data, (tuple, list)):
            if len(data) != 2:
                raise ValueError(
                    f"data must be an (image, labels) pair, got a {type(data).__name__} of {len(data)} items"
                )
            image, labels = data
            return image, labels, self.weight_map(labels)
        raise TypeError(f"data must be a mapping or an (image, labels) tuple, got {type(data).__name__}")
