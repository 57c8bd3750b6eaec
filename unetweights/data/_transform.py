"""WeightMapTransform: a weight map added to a sample, a dict (MONAI style) or an (image, labels) pair.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Optional

import numpy as np

from ..weightmaps import WeightMapRecipe
from ._masks import _as_label_input


class WeightMapTransform:
    """Add a U-Net weight map (:func:`unet_weight_map`) to a sample, and optionally the signed
    distance map and the tubed skeleton of its target.

    Parameters
    ----------
    label_key : hashable, default "label"
        Where a dict sample holds its labels.
    weight_key : hashable, default "weight"
        Where the weight map goes in a dict sample; must differ from ``label_key``.
    channel_axis : int, optional
        For channel-first (or channel-last) labels such as ``(1, H, W)``: this axis, of size 1, is
        removed for the computation and put back on the weight map, which then has the labels' shape.
    signed_distance : bool, default False
        Also add the signed distance map of the target, for the boundary and Hausdorff-DT losses
        (see Notes), under ``distance_key``.
    distance_key : hashable, default "distance"
        Where the signed distance map goes in a dict sample.
    skeleton_radius : float, optional
        Also add the tubed skeleton of the target (:func:`tubed_skeleton` with this radius, >= 0,
        in ``spacing`` units), for the skeleton-recall loss, under ``skeleton_key``. None (the
        default) adds none.
    skeleton_key : hashable, default "skeleton"
        Where the tubed skeleton goes in a dict sample.
    recipe : WeightMapRecipe, optional
        The weighting, its options and the extra maps, as one object; then give none of
        ``signed_distance``, ``skeleton_radius`` and ``**options``.
    **options
        The arguments of :class:`WeightMapRecipe`: ``weighting`` ("unet", the default, or
        "falk", or any registered weighting) and its options, e.g. those of
        :func:`unet_weight_map`: ``w0``, ``sigma``, ``class_weights``, ``spacing``, ``border``,
        ``tol``, ``separate``, ``ignore_label``; or of :func:`falk_weight_map` (``lam``,
        ``sigma``, ``v_bal``, ``sigma_bal``, ``spacing``, ``separate``, ``ignore_label``). They are
        checked here, once: an unknown name raises TypeError, a bad value the ValueError or
        TypeError the weight-map code gives. A ``class_weights`` mapping must give weights for 0
        (background) and 1 (foreground). The recipe is :attr:`recipe`.

    Notes
    -----
    Calling the transform on

    - a mapping returns a new ``dict`` with ``weight_key`` added, and ``distance_key`` and
      ``skeleton_key`` when asked for (the input mapping is not modified; the other values are
      the same objects, not copies);
    - an ``(image, labels)`` tuple or list returns the tuple ``(image, labels, weight)``, followed
      by the distance map and then the skeleton when asked for.

    The labels may be a numpy array or anything ``np.asarray`` reads, a CPU torch tensor included
    (a CUDA tensor raises TypeError). The weight map is always a float32 numpy array of the labels'
    shape; a torch ``DataLoader`` collates it into a tensor. The labels are never modified.
    Instances hold plain data and pickle, so they can go to data-loader worker processes.

    **The target's maps.** The target is the foreground the weight map goes with: the objects of
    the labels, carved first with ``separate=True``, and ``ignore_label`` pixels counted as
    background (they weigh 0, so a weighted loss leaves them out), the target
    ``WeightMapDataset(target="foreground")`` (or ``"separated"``) returns. Its two classes are 0
    (background) and 1 (foreground), so

    - the distance map is float32 of shape ``(2, *spatial)``: channel c is
      ``signed_distance_map(target == c, spacing)`` (negative inside, positive outside, in
      ``spacing`` units; channel 0 is minus channel 1), the (C, *) layout the boundary loss takes
      for two-class logits (use channel 1 alone with ``include_background=False``). With
      ``channel_axis`` the class axis takes the place of the labels' channel axis, so ``(1, H, W)``
      labels give ``(2, H, W)`` and ``(H, W, 1)`` labels ``(H, W, 2)``;
    - the skeleton is int64 class indices of the labels' shape, 1 on
      ``tubed_skeleton(target, skeleton_radius, spacing)`` and 0 elsewhere, as the skeleton-recall
      loss takes them.
    """

    def __init__(
        self,
        label_key="label",
        weight_key="weight",
        channel_axis: Optional[int] = None,
        *,
        signed_distance: bool = False,
        distance_key="distance",
        skeleton_radius: Optional[float] = None,
        skeleton_key="skeleton",
        recipe: Optional[WeightMapRecipe] = None,
        **options,
    ):
        keys = {
            "label_key": label_key, "weight_key": weight_key, "distance_key": distance_key, "skeleton_key": skeleton_key
        }
        for name, key in keys.items():
            try:
                hash(key)
            except TypeError:
                raise TypeError(f"{name} must be hashable (a dict key), got {type(key).__name__}") from None
        if channel_axis is not None and (
            isinstance(channel_axis, (bool, np.bool_)) or not isinstance(channel_axis, (int, np.integer))
        ):
            raise TypeError(f"channel_axis must be an int or None, got {channel_axis!r}")
        self.recipe = WeightMapRecipe.from_arguments(
            recipe, owner="WeightMapTransform", signed_distance=signed_distance, skeleton_radius=skeleton_radius,
            **options,
        )
        # The keys of the maps this transform adds, in the order the recipe makes them; a key of a
        # map it does not make may be anything.
        used = ["label_key", *(f"{output}_key" for output in self.recipe.outputs)]
        for i, name in enumerate(used):
            for earlier in used[:i]:
                if keys[name] == keys[earlier]:
                    raise ValueError(f"{name} must differ from {earlier}, got {keys[name]!r} for both")
        self._added_keys = tuple(keys[name] for name in used[1:])
        self.label_key = label_key
        self.weight_key = weight_key
        self.distance_key = distance_key
        self.skeleton_key = skeleton_key
        self.channel_axis = None if channel_axis is None else int(channel_axis)

    @property
    def options(self) -> dict:
        """The recipe's ``weighting`` and options, defaults filled in (a new dict each time)."""
        return {"weighting": self.recipe.weighting, **self.recipe.options}

    def __repr__(self) -> str:
        extra = "".join(f", {k}={v!r}" for k, v in self.recipe.arguments().items())
        if self.recipe.signed_distance:
            extra += f", distance_key={self.distance_key!r}"
        if self.recipe.skeleton_radius is not None:
            extra += f", skeleton_key={self.skeleton_key!r}"
        return (
            f"WeightMapTransform(label_key={self.label_key!r}, weight_key={self.weight_key!r}, "
            f"channel_axis={self.channel_axis!r}{extra})"
        )

    def weight_map(self, labels) -> np.ndarray:
        """The float32 weight map of ``labels``, of the same shape (``channel_axis`` handled)."""
        return self._maps(labels)[0]

    def _maps(self, labels, with_targets: bool = False) -> list:
        """[weight], followed with ``with_targets`` by the distance map and the skeleton asked for."""
        labels = _as_label_input(labels)
        axis = self.channel_axis
        if axis is not None:
            if not -labels.ndim <= axis < labels.ndim:
                raise ValueError(f"channel_axis {axis} is out of range for labels of shape {labels.shape}")
            if labels.shape[axis] != 1:
                raise ValueError(
                    f"channel_axis {axis} of labels must have size 1 (one label channel), got shape {labels.shape}"
                )
            labels = np.squeeze(labels, axis=axis)
        maps = list(self.recipe.maps(labels).values()) if with_targets else [self.recipe.weight_map(labels)]
        if axis is None:
            return maps
        # The class axis of the distance map takes the place of the labels' channel axis; the
        # other maps get that axis back with size 1.
        return [np.moveaxis(m, 0, axis) if m.ndim > labels.ndim else np.expand_dims(m, axis) for m in maps]

    def __call__(self, data):
        if isinstance(data, Mapping):
            if self.label_key not in data:
                raise ValueError(f"data must hold the key {self.label_key!r} (label_key), got keys {list(data)}")
            out = dict(data)
            out.update(zip(self._added_keys, self._maps(data[self.label_key], with_targets=True)))
            return out
        if isinstance(data, (tuple, list)):
            if len(data) != 2:
                raise ValueError(
                    f"data must be an (image, labels) pair, got a {type(data).__name__} of {len(data)} items"
                )
            image, labels = data
            return (image, labels, *self._maps(labels, with_targets=True))
        raise TypeError(f"data must be a mapping or an (image, labels) tuple, got {type(data).__name__}")
