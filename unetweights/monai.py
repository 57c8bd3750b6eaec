"""A MONAI dictionary transform that adds a weight map computed from the (augmented) labels.

Needs the ``monai`` extra. Put :class:`WeightMapd` after the spatial augmentations of a
``monai.transforms.Compose``: the map is then computed from the labels as the network will see
them, which is exact (the map of the augmented labels), where warping a precomputed map only
approximates it::

    from monai.transforms import Compose, LoadImaged, EnsureChannelFirstd, RandAffined
    from unetweights.monai import WeightMapd

    train = Compose([
        LoadImaged(keys=["image", "label"]), EnsureChannelFirstd(keys=["image", "label"]),
        RandAffined(keys=["image", "label"], prob=1.0, rotate_range=0.3, mode=("bilinear", "nearest")),
        WeightMapd(keys="label", weight_keys="weight", sigma=5.0, spacing_from_meta=True),
    ])

It is an ordinary ``MapTransform``: ``keys``, ``allow_missing_keys`` and MONAI's key iteration
behave as in MONAI's own transforms, and it works in ``Compose``, ``CacheDataset``,
``PersistentDataset`` and DataLoader workers.
"""

from __future__ import annotations

from typing import Any, Hashable, Mapping, Optional, Sequence, Union

import numpy as np
import torch

try:
    from monai.config import KeysCollection
    from monai.data import MetaTensor
    from monai.transforms import MapTransform
except ImportError as error:  # the optional extra
    raise ImportError("unetweights.monai needs MONAI: pip install 'unetweights[monai]' (or monai)") from error

from .weightmaps import check_ignore_label, WeightMapRecipe

__all__ = ["WeightMapd"]


class WeightMapd(MapTransform):
    """Add the weight map of each label key under its own output key, and optionally the signed
    distance map and the tubed skeleton of its target.

    Parameters
    ----------
    keys : str or sequence of str
        The label keys. Each holds channel-first labels as MONAI loads them: ``(1, H, W)`` or
        ``(1, D, H, W)`` (one channel), as a ``MetaTensor``, a torch tensor or a numpy array, of
        integer instance ids (or whole-valued floats, which nearest-neighbour resampling gives;
        a bool mask is split into objects by face connectivity).
    weight_keys : str or sequence of str, optional
        Where each map goes, one per key. Default: ``"weight"`` for a single key, else
        ``f"{key}_weight"`` for each.
    spacing_from_meta : bool
        Take ``spacing`` from each label's metadata (the lengths of the columns of the spatial
        block of its affine, as ``MetaTensor.pixdim`` gives them), so that sigma (and the
        distances and the skeleton's radius) are in physical units whatever the resampling did.
        Needs ``MetaTensor`` labels, and ``spacing`` must then not be given. An affine with no
        voxel size (a zero, singular or non-finite spatial block) raises ValueError naming the
        key: ``pixdim`` would silently take 1 for a zero column.
    allow_missing_keys : bool
        As in MONAI: skip absent keys instead of raising KeyError.
    signed_distance : bool
        Also add the signed distance map of the target: ``(2, H, W)`` or ``(2, D, H, W)`` float32,
        channel c being ``signed_distance_map(target == c, spacing)`` for the classes 0
        (background) and 1 (foreground), as :class:`unetweights.WeightMapTransform` makes it.
    distance_keys : str or sequence of str, optional
        Where each distance map goes, one per key. Default: ``"distance"`` for a single key, else
        ``f"{key}_distance"``.
    skeleton_radius : float, optional
        Also add the tubed skeleton of the target (:func:`unetweights.tubed_skeleton` with this
        radius, in ``spacing`` units): ``(1, H, W)`` or ``(1, D, H, W)`` int64, 1 on the tube and 0
        elsewhere. None (the default) adds none.
    skeleton_keys : str or sequence of str, optional
        Where each skeleton goes, one per key. Default: ``"skeleton"`` for a single key, else
        ``f"{key}_skeleton"``.
    recipe : unetweights.WeightMapRecipe, optional
        The weighting, its options and the extra maps as one object, instead of
        ``signed_distance``, ``skeleton_radius`` and ``**options``.
    **options
        The arguments of :class:`unetweights.WeightMapRecipe`: ``weighting`` and its options,
        by default those of :func:`unetweights.unet_weight_map` (``w0``, ``sigma``,
        ``class_weights``, ``spacing``, ``border``, ``tol``, ``separate``, ``ignore_label``).
        Checked here, once; the recipe is :attr:`recipe`.

    Notes
    -----
    The map has the label's shape, channel included, and the label's type: a ``MetaTensor`` in
    gives a ``MetaTensor`` out carrying a copy of the label's metadata (affine, pixdim, applied
    operations), a tensor a tensor on the label's device, an array a float32 array. The map is
    computed on the CPU (the labels are copied there if they are on a GPU). The distance map and
    the skeleton come the same way. Their target is the foreground the weight map goes with: the
    objects of the labels (carved first with ``separate=True``), ``ignore_label`` pixels counted
    as background.
    """

    def __init__(
        self,
        keys: KeysCollection,
        weight_keys: Optional[Union[Hashable, Sequence[Hashable]]] = None,
        spacing_from_meta: bool = False,
        allow_missing_keys: bool = False,
        signed_distance: bool = False,
        distance_keys: Optional[Union[Hashable, Sequence[Hashable]]] = None,
        skeleton_radius: Optional[float] = None,
        skeleton_keys: Optional[Union[Hashable, Sequence[Hashable]]] = None,
        recipe: Optional[WeightMapRecipe] = None,
        **options: Any,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        if not isinstance(spacing_from_meta, bool):
            raise TypeError(f"spacing_from_meta: expected a bool, got {type(spacing_from_meta).__name__}")
        self.recipe = WeightMapRecipe.from_arguments(
            recipe, owner="WeightMapd", signed_distance=signed_distance, skeleton_radius=skeleton_radius, **options
        )
        if spacing_from_meta and self.recipe.spacing is not None:
            raise ValueError("spacing: give either spacing or spacing_from_meta=True, not both")
        if spacing_from_meta and "spacing" not in self.recipe.options:
            raise ValueError(f"spacing_from_meta: weighting {self.recipe.weighting!r} has no spacing option")
        self.spacing_from_meta = spacing_from_meta
        self._by_spacing: dict = {}
        # One tuple of output keys per map made, in the order the recipe makes them.
        given = {"weight": weight_keys, "distance": distance_keys, "skeleton": skeleton_keys}
        self.output_keys = {
            output: self._output_keys(f"{output}_keys", given[output], output) for output in self.recipe.outputs
        }
        self.weight_keys = self.output_keys["weight"]
        seen = set(self.keys)
        for name, given in self.output_keys.items():
            clash = seen & set(given)
            if clash:
                raise ValueError(f"{name}_keys: {sorted(map(str, clash))} would overwrite the labels or another map")
            seen |= set(given)

    @property
    def options(self) -> dict:
        """The recipe's ``weighting`` and options, defaults filled in (a new dict each time)."""
        return {"weighting": self.recipe.weighting, **self.recipe.options}

    def _output_keys(self, name: str, given, suffix: str) -> tuple:
        if given is None:
            return (suffix,) if len(self.keys) == 1 else tuple(f"{key}_{suffix}" for key in self.keys)
        if isinstance(given, (str, bytes)) or not isinstance(given, Sequence):
            given = (given,)
        if len(given) != len(self.keys):
            raise ValueError(f"{name}: expected one per key ({len(self.keys)}: {list(self.keys)}), got {list(given)}")
        return tuple(given)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict:
        d = dict(data)
        outputs = list(zip(*self.output_keys.values()))
        for key, out_keys in self.key_iterator(d, outputs):
            d.update(zip(out_keys, self._maps(d[key], key)))
        return d

    def _maps(self, label: Any, key: Hashable) -> list:
        """The weight map, then the distance map and the skeleton asked for, each like ``label``."""
        array = label.detach().cpu().numpy() if isinstance(label, torch.Tensor) else np.asarray(label)
        if array.ndim not in (3, 4) or array.shape[0] != 1:
            raise ValueError(
                f"{key}: expected channel-first labels with one channel, (1, H, W) or (1, D, H, W), "
                f"got shape {list(array.shape)}"
            )
        recipe = self.recipe
        check_ignore_label(array, recipe.options.get("ignore_label"), str(key))
        if self.spacing_from_meta:
            if not isinstance(label, MetaTensor):
                raise TypeError(f"{key}: spacing_from_meta=True needs a MetaTensor, got {type(label).__name__}")
            spacing = _spacing_from_affine(label.affine, key, array.ndim - 1)
            # A dataset has few voxel sizes: the recipe of each is checked once, not per sample.
            recipe = self._by_spacing.get(spacing)
            if recipe is None:
                if len(self._by_spacing) >= 64:
                    self._by_spacing.clear()
                recipe = self._by_spacing[spacing] = self.recipe.replace(spacing=spacing)
        maps = recipe.maps(array[0])
        # The distance map's class axis is already its channel axis; the others get one of size 1.
        return [_like(label, m if name == "distance" else m[np.newaxis]) for name, m in maps.items()]


def _spacing_from_affine(affine: Any, key: Hashable, spatial: int) -> tuple:
    """The voxel size per spatial axis: the lengths of the columns of ``affine[:spatial, :spatial]``.

    This is what ``MetaTensor.pixdim`` computes, except that pixdim replaces a zero length by 1;
    here an affine that gives no voxel size is refused instead.
    """
    matrix = np.asarray(affine.detach().cpu() if isinstance(affine, torch.Tensor) else affine, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] <= spatial:
        raise ValueError(
            f"{key}: spacing_from_meta=True needs the label's affine to be a square matrix of size at least "
            f"{spatial + 1} (for {spatial} spatial axes), got shape {list(matrix.shape)}"
        )
    block = matrix[:spatial, :spatial]
    with np.errstate(over="ignore", invalid="ignore"):
        spacing = np.sqrt((block * block).sum(axis=0))
    # The rank of the block with unit columns: scale-free, so tiny or huge voxels are not singular.
    singular = np.isfinite(spacing).all() and (spacing > 0).all() and np.linalg.matrix_rank(block / spacing) < spatial
    if not np.isfinite(block).all() or not np.isfinite(spacing).all() or (spacing <= 0).any() or singular:
        raise ValueError(
            f"{key}: spacing_from_meta=True needs the label's affine to give finite, non-zero voxel sizes "
            f"(a finite, non-singular affine[:{spatial}, :{spatial}]), got {block.tolist()} "
            f"(voxel sizes {spacing.tolist()}); fix the affine in the label's metadata, or pass spacing instead"
        )
    return tuple(spacing.tolist())


def _like(label: Any, array: np.ndarray) -> Any:
    """``array`` as the type of ``label``: an array, a tensor on its device, or a MetaTensor with its metadata."""
    if not isinstance(label, torch.Tensor):
        return array
    tensor = torch.as_tensor(array, device=label.device)
    if isinstance(label, MetaTensor):
        out = MetaTensor(tensor)
        out.copy_meta_from(label, copy_attr=True)
        return out
    return tensor
