"""The trainers: nnU-Net's own training, with the loss on a weight map of every augmented patch.

- ``nnUNetTrainerUNetWeights``: weighted cross-entropy + soft Dice (nnU-Net's loss, its Dice
  weighted too) on the U-Net border map (w0 = 10, σ = 5 in the configuration's spacing units,
  "balanced" class weights);
- ``nnUNetTrainerFalkWeights``: the same loss on the map of the authors' plugin (Falk et al. 2019);
- ``nnUNetTrainerUWBoundary``: the weighted CE + soft Dice plus 0.1 x the boundary loss (Kervadec
  et al. 2019) on the signed distance map of each foreground class;
- ``nnUNetTrainerUWSkeletonRecall``: the weighted CE + soft Dice plus 1 x skeleton recall
  (Kirchhoff et al. 2024) on the tubed skeleton of each class (radius 1 in spacing units).

Each is nnU-Net's trainer with four changes: the pipelines carry the maps (``with_maps``), the
loss is :class:`~unetweights.nnunet.DeepSupervisedMapsLoss`, and the train and validation steps
hand the map to it. The rest (network, schedule, augmentation, deep-supervision weights,
validation, checkpoints) is nnU-Net's. Region-based datasets are refused with NotImplementedError.
Subclass and set ``recipe`` for other options.
"""

from __future__ import annotations

import numpy as np
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from torch import nn

from unetweights.losses import BoundaryLoss, CombinedLoss, SkeletonRecallLoss, SoftDiceLoss, WeightedCrossEntropyLoss
from unetweights.nnunet import DeepSupervisedMapsLoss, split_target, with_maps
from unetweights.weightmaps import WeightMapRecipe


class nnUNetTrainerWithMaps(nnUNetTrainer):
    """nnU-Net's trainer with the recipe's weight map in its loss (the base of the trainers here).

    ``extra_map`` ("distance", "skeleton" or None) is the recipe's map that the level criterion
    also takes, as its fourth argument, resized to each level (by area, or nearest for the skeleton).
    """

    recipe = WeightMapRecipe(sigma=5.0)
    extra_map = None

    def _maps_recipe(self) -> WeightMapRecipe:
        """The class's recipe in the configuration's physical spacing (built once: every step asks)."""
        cached = self.__dict__.get("_recipe_in_spacing")
        if cached is not None:
            return cached
        if self.label_manager.has_regions:
            raise NotImplementedError(
                f"{type(self).__name__}: region-based training is not supported (the weight map is made from one "
                "class map, region targets are overlapping binary channels); train with labels"
            )
        spacing = tuple(float(s) for s in self.configuration_manager.spacing)[-len(self.configuration_manager.patch_size):]
        recipe = self.recipe.replace(spacing=spacing) if "spacing" in self.recipe.options else self.recipe
        self._recipe_in_spacing = recipe
        return recipe

    def _with_maps(self, transforms):
        return with_maps(
            transforms, self._maps_recipe(), self.label_manager.num_segmentation_heads, self.label_manager.ignore_label
        )

    def get_training_transforms(self, *args, **kwargs):
        return self._with_maps(nnUNetTrainer.get_training_transforms(*args, **kwargs))

    def get_validation_transforms(self, *args, **kwargs):
        return self._with_maps(nnUNetTrainer.get_validation_transforms(*args, **kwargs))

    def map_criterion(self):
        """The weighted loss of one deep-supervision level: ``criterion(logits, labels, weight)``."""
        ignore = self.label_manager.ignore_label
        return CombinedLoss([
            WeightedCrossEntropyLoss(ignore_index=-100 if ignore is None else ignore),
            SoftDiceLoss(
                smooth=1e-5, include_background=False, per_image=not self.configuration_manager.batch_dice,
                ignore_index=ignore,
            ),
        ])

    def _build_loss(self):
        self._maps_recipe()  # refuses regions before any training
        if self.enable_deep_supervision:
            weights = np.array([1 / (2**i) for i in range(len(self._get_deep_supervision_scales()))])
            weights[-1] = 1e-6 if self.is_ddp else 0.0  # nnU-Net's rule (DDP wants every output used)
            weights = weights / weights.sum()
        else:
            weights = np.array([1.0])
        resize = "nearest" if self.extra_map == "skeleton" else "area"
        return DeepSupervisedMapsLoss(self.map_criterion(), weights.tolist(), extra_resize=resize)

    def _with_weight(self, step, batch: dict) -> dict:
        levels, maps = split_target(batch["target"], self._maps_recipe())
        weight = maps["weight"].to(self.device, non_blocking=True)
        extra = None if self.extra_map is None else maps[self.extra_map].to(self.device, non_blocking=True)
        loss = self.loss

        def with_map(output, target):
            outputs = output if isinstance(output, (list, tuple)) else [output]
            targets = target if isinstance(target, (list, tuple)) else [target]
            return loss(outputs, targets, weight, extra)

        self.loss = with_map
        try:
            return step({**batch, "target": levels if self.enable_deep_supervision else levels[0]})
        finally:
            self.loss = loss

    def train_step(self, batch: dict) -> dict:
        return self._with_weight(super().train_step, batch)

    def validation_step(self, batch: dict) -> dict:
        return self._with_weight(super().validation_step, batch)


class nnUNetTrainerUNetWeights(nnUNetTrainerWithMaps):
    """Weighted CE + soft Dice on the U-Net border map (w0 = 10, σ = 5, balanced class weights)."""

    recipe = WeightMapRecipe(sigma=5.0)


class nnUNetTrainerFalkWeights(nnUNetTrainerWithMaps):
    """Weighted CE + soft Dice on the map of the authors' plugin (λ = 50, σ = 6, v_bal = 0.1, σ_bal = 10)."""

    recipe = WeightMapRecipe("falk")


class _PlusBoundary(nn.Module):
    """``base(input, target, weight) + lam * boundary(input, target, weight, distance of the foreground classes)``."""

    def __init__(self, base: nn.Module, lam: float, ignore_index) -> None:
        super().__init__()
        self.base, self.lam = base, lam
        self.boundary = BoundaryLoss(include_background=False, ignore_index=ignore_index)

    def forward(self, input, target, weight, distance):
        return self.base(input, target, weight) + self.lam * self.boundary(input, target, weight, distance[:, 1:])


class _PlusSkeletonRecall(nn.Module):
    """``base(input, target, weight) + lam * skeleton_recall(input, skeleton, weight)``."""

    def __init__(self, base: nn.Module, lam: float) -> None:
        super().__init__()
        self.base, self.lam = base, lam
        self.recall = SkeletonRecallLoss()

    def forward(self, input, target, weight, skeleton):
        skeleton = skeleton[:, 0] if skeleton.dim() == input.dim() else skeleton
        return self.base(input, target, weight) + self.lam * self.recall(input, skeleton.long(), weight)


class nnUNetTrainerUWBoundary(nnUNetTrainerWithMaps):
    """Weighted CE + soft Dice + 0.1 x the boundary loss on each foreground class's signed distance map."""

    recipe = WeightMapRecipe(sigma=5.0, signed_distance=True)
    extra_map = "distance"
    boundary_weight = 0.1

    def map_criterion(self):
        return _PlusBoundary(super().map_criterion(), self.boundary_weight, self.label_manager.ignore_label)


class nnUNetTrainerUWSkeletonRecall(nnUNetTrainerWithMaps):
    """Weighted CE + soft Dice + 1 x skeleton recall on each class's tubed skeleton (radius 1)."""

    recipe = WeightMapRecipe(sigma=5.0, skeleton_radius=1.0)
    extra_map = "skeleton"
    recall_weight = 1.0

    def map_criterion(self):
        return _PlusSkeletonRecall(super().map_criterion(), self.recall_weight)
