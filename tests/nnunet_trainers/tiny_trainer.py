"""A trainer of the end-to-end test (tests/test_nnunet_train.py): nnUNetTrainerUNetWeights with one
tiny epoch, recording what its loss receives to <output folder>/maps_seen.json.

Found by nnU-Net through nnUNet_extTrainer (the test points it at this folder, which holds nothing
else: nnU-Net imports every module of it while it looks), so it must import
without the test's fixtures.
"""

import json
import os

import numpy as np
import torch

from unetweights import label_instances, resize_area, unet_weight_map
from unetweights.nnunet import split_target
from unetweights.nnunet.trainers.unetweights_trainers import (
    nnUNetTrainerFalkWeights,
    nnUNetTrainerUNetWeights,
    nnUNetTrainerUWBoundary,
    nnUNetTrainerUWSkeletonRecall,
)


def _tiny(base):
    class Tiny(base):
        def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict, device: torch.device = torch.device("cuda")):
            super().__init__(plans, configuration, fold, dataset_json, device)
            self.num_epochs = 1
            self.num_iterations_per_epoch = 2
            self.num_val_iterations_per_epoch = 1

    # nnU-Net names the results folder after the class.
    Tiny.__name__ = Tiny.__qualname__ = f"{base.__name__}TestTiny"
    return Tiny


class _Recording(torch.nn.Module):
    """The level criterion, noting the shape and spread of each level's map and its distance from
    the area-resized full map."""

    def __init__(self, criterion, full, levels):
        super().__init__()
        self.criterion, self.full, self.levels = criterion, full, levels

    def forward(self, output, target, level_map):
        size = list(output.shape[2:])
        full = self.full.to(level_map.device)
        expected = full if list(full.shape[1:]) == size else resize_area(full, size)
        self.levels.append({"shape": size, "std": float(level_map.std()), "error": float((level_map - expected).abs().max())})
        return self.criterion(output, target, level_map)


class nnUNetTrainerUNetWeightsTestTiny(_tiny(nnUNetTrainerUNetWeights)):
    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict, device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.seen = []

    def train_step(self, batch: dict) -> dict:
        levels, maps = split_target(batch["target"], self._maps_recipe())
        weight = maps["weight"][:, 0]
        record = {"levels": [], "reference_error": 0.0}
        for k in range(weight.shape[0]):  # the map of the augmented full-resolution segmentation
            seg = levels[0][k, 0].numpy().astype(np.int64)
            want = unet_weight_map(label_instances(seg), sigma=5.0, classes=seg, spacing=self._maps_recipe().spacing)
            record["reference_error"] = max(record["reference_error"], float(np.abs(weight[k].numpy() - want).max()))
        loss = self.loss
        original = loss.criterion
        loss.criterion = _Recording(original, weight, record["levels"])
        try:
            result = super().train_step(batch)
        finally:
            loss.criterion = original
        self.seen.append(record)
        with open(os.path.join(self.output_folder, "maps_seen.json"), "w") as f:
            json.dump(self.seen, f)
        return result


nnUNetTrainerFalkWeightsTestTiny = _tiny(nnUNetTrainerFalkWeights)
nnUNetTrainerUWBoundaryTestTiny = _tiny(nnUNetTrainerUWBoundary)
nnUNetTrainerUWSkeletonRecallTestTiny = _tiny(nnUNetTrainerUWSkeletonRecall)
