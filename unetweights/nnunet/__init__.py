"""nnU-Net v2 trains on weight maps (the ``nnunet`` extra): the pieces that carry the recipe's maps
through nnU-Net's own data pipeline and deep supervision.

- :class:`WeightMapsTransform`, a batchgeneratorsv2 transform that computes the maps from the
  *augmented* segmentation; :func:`with_maps` puts it into nnU-Net's training pipeline after
  ``RemoveLabelTransform`` and before deep-supervision downsampling, with
  :class:`PackMapsTransform` at the end;
- :func:`semantic_maps`: the maps of one nnU-Net segmentation (semantic classes: the instances are
  the connected components of each class, and the dataset's ignore label weighs 0);
- :func:`split_target`: the batch's target back into the deep-supervision levels and the maps;
- :class:`DeepSupervisedMapsLoss`: nnU-Net's level weights, each level with its own area-resized map.

**How the maps reach the loss without a new data loader.** nnU-Net's ``nnUNetDataLoader`` keeps
only ``image`` and ``segmentation`` of what the transforms return, but it stacks a segmentation that
is a list (the deep-supervision levels) entry by entry, whatever each entry's dtype and shape.
:class:`PackMapsTransform` appends the maps to that list, so the batch's ``target`` arrives as
``[level 0, level 1, ..., weight, (distance), (skeleton)]`` through nnU-Net's unmodified loader and
its multi-process augmenter, and :func:`split_target` takes it apart in the trainer's step.

nnU-Net's labels are semantic: touching objects of one class are one object to the border term
unless the dataset separates them (for example with ``separate_touching`` when it is converted).
"""

from .loss import DeepSupervisedMapsLoss
from .transforms import MAP_KEYS, PackMapsTransform, WeightMapsTransform, semantic_maps, split_target, with_maps

__all__ = [
    "DeepSupervisedMapsLoss",
    "MAP_KEYS",
    "PackMapsTransform",
    "WeightMapsTransform",
    "semantic_maps",
    "split_target",
    "with_maps",
]
