"""batchgeneratorsv2 transforms that compute the recipe's maps inside nnU-Net's training pipeline."""

from __future__ import annotations

import inspect
from typing import Optional

import numpy as np
import torch

try:
    from batchgeneratorsv2.transforms.base.basic_transform import BasicTransform
    from batchgeneratorsv2.transforms.utils.compose import ComposeTransforms
    from batchgeneratorsv2.transforms.utils.deep_supervision_downsampling import DownsampleSegForDSTransform
    from batchgeneratorsv2.transforms.utils.seg_to_regions import ConvertSegmentationToRegionsTransform
except ImportError as error:  # the optional extra
    raise ImportError("unetweights.nnunet needs nnU-Net v2: pip install 'unetweights[nnunet]'") from error

from ..weightmaps import label_instances, WeightMapRecipe

# The maps a recipe makes, in the order they are packed after the segmentation levels.
MAP_KEYS = ("weight", "distance", "skeleton")


def semantic_maps(recipe: WeightMapRecipe, segmentation: np.ndarray, num_classes: int, ignore_label=None) -> dict:
    """The recipe's maps of one nnU-Net segmentation (classes 0..num_classes-1, 0 background).

    The instances the border term separates are the connected components of each class (face
    connectivity); the class weights are those of the classes (for a weighting that takes
    ``classes``). ``ignore_label`` pixels weigh 0, are no object and count in no class; the
    recipe's own ``ignore_label`` is set to it. The distance map has one channel per class
    (``recipe.distance_map``), the skeleton holds class indices (``recipe.skeleton``).
    """
    seg = np.asarray(segmentation).astype(np.int64, copy=False)
    ignored = None if ignore_label is None else seg == ignore_label
    classes = seg if ignored is None else np.where(ignored, 0, seg)
    instances = label_instances(classes).astype(np.int64)
    if ignored is not None:
        if ignore_label < 1:
            raise ValueError(f"ignore_label: expected a label value >= 1 (nnU-Net's rule), got {ignore_label}")
        # Instance ids are arbitrary: skip the ignore value, then mark the ignored pixels with it.
        instances[instances >= ignore_label] += 1
        instances[ignored] = ignore_label
    takes_classes = "classes" in inspect.signature(recipe.spec.function).parameters
    maps = {"weight": recipe.weight_map(instances, classes=classes if takes_classes else None)}
    if recipe.signed_distance:
        maps["distance"] = recipe.distance_map(classes, num_classes, ignored)
    if recipe.skeleton_radius is not None:
        maps["skeleton"] = recipe.skeleton(classes, ignored)
    return maps


class WeightMapsTransform(BasicTransform):
    """Compute the recipe's maps from ``data_dict["segmentation"]`` (one channel, (1, *spatial)) as
    it is at this point of the pipeline, and add them under "weight", "distance", "skeleton".

    Put it after the spatial augmentation and ``RemoveLabelTransform`` and before regions and
    deep-supervision downsampling (:func:`with_maps` does). The maps are torch tensors: the weight
    map float32 (1, *spatial), the distance map float32 (num_classes, *spatial), the skeleton int64
    (1, *spatial).
    """

    def __init__(self, recipe: WeightMapRecipe, num_classes: int, ignore_label: Optional[int] = None):
        super().__init__()
        if not isinstance(recipe, WeightMapRecipe):
            raise TypeError(f"recipe: expected a WeightMapRecipe, got {type(recipe).__name__}")
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"num_classes: expected an int >= 2 (background and one class at least), got {num_classes!r}")
        if ignore_label is not None:
            if "ignore_label" not in recipe.options:
                raise ValueError(f"ignore_label: weighting {recipe.weighting!r} has no ignore_label option")
            recipe = recipe.replace(ignore_label=int(ignore_label))
        self.recipe = recipe
        self.num_classes = num_classes
        self.ignore_label = None if ignore_label is None else int(ignore_label)

    def apply(self, data_dict: dict, **params) -> dict:
        seg = data_dict["segmentation"]
        if isinstance(seg, (list, tuple)):
            raise RuntimeError(
                "WeightMapsTransform: the segmentation is already split into deep-supervision levels; put the "
                "transform before DownsampleSegForDSTransform (with_maps does)"
            )
        if seg.ndim < 3 or seg.shape[0] != 1:
            raise ValueError(
                f"segmentation: expected one channel, (1, *spatial), got shape {list(seg.shape)} (regions and "
                "cascades put more channels there; they are not supported)"
            )
        maps = semantic_maps(self.recipe, seg[0].cpu().numpy(), self.num_classes, self.ignore_label)
        for key, value in maps.items():
            tensor = torch.from_numpy(value)
            data_dict[key] = tensor if key == "distance" else tensor[None]
        return data_dict


class PackMapsTransform(BasicTransform):
    """Append the maps (``keys``, in order) to the segmentation list, which nnU-Net's loader stacks
    entry by entry: the batch's target becomes ``[levels..., maps...]`` (see :func:`split_target`)."""

    def __init__(self, keys=("weight",)):
        super().__init__()
        self.keys = tuple(keys)

    def apply(self, data_dict: dict, **params) -> dict:
        seg = data_dict["segmentation"]
        levels = list(seg) if isinstance(seg, (list, tuple)) else [seg]
        missing = [key for key in self.keys if key not in data_dict]
        if missing:
            raise KeyError(f"PackMapsTransform: no {missing} in the sample; WeightMapsTransform must run first")
        data_dict["segmentation"] = levels + [data_dict.pop(key) for key in self.keys]
        return data_dict


def with_maps(
    transforms: ComposeTransforms, recipe: WeightMapRecipe, num_classes: int, ignore_label: Optional[int] = None
) -> ComposeTransforms:
    """nnU-Net's pipeline (``get_training_transforms`` or ``get_validation_transforms``) with the
    maps: :class:`WeightMapsTransform` just before deep-supervision downsampling (or at the end),
    and :class:`PackMapsTransform` last. A new ComposeTransforms; the given one is not changed.

    Region-based training is refused (NotImplementedError): its targets are several overlapping
    binary channels, which the maps of one class map do not describe.
    """
    if not isinstance(transforms, ComposeTransforms):
        raise TypeError(f"transforms: expected nnU-Net's ComposeTransforms, got {type(transforms).__name__}")
    steps = list(transforms.transforms)
    if any(isinstance(t, ConvertSegmentationToRegionsTransform) for t in steps):
        raise NotImplementedError(
            "region-based training: the weight map is made from one class map, and region targets are several "
            "overlapping binary channels; train this dataset with labels, not regions"
        )
    at = next((i for i, t in enumerate(steps) if isinstance(t, DownsampleSegForDSTransform)), len(steps))
    compute = WeightMapsTransform(recipe, num_classes, ignore_label)
    steps.insert(at, compute)
    steps.append(PackMapsTransform(compute.recipe.outputs))
    return ComposeTransforms(steps)


def split_target(target: list, recipe: WeightMapRecipe) -> tuple:
    """(the deep-supervision levels, {map name: tensor}) of a batch's ``target`` packed by
    :class:`PackMapsTransform` with ``recipe``'s maps."""
    n = len(recipe.outputs)
    if not isinstance(target, (list, tuple)) or len(target) <= n:
        raise ValueError(f"target: expected a list of the segmentation levels and {n} map(s), got {type(target).__name__}")
    levels, maps = list(target[:-n]), dict(zip(recipe.outputs, target[-n:]))
    return levels, maps
