"""nnU-Net's deep supervision with a weight map of each level's own resolution."""

from __future__ import annotations

from typing import List, Optional, Sequence

from torch import nn, Tensor

from ..losses import resize_area, resize_nearest


class DeepSupervisedMapsLoss(nn.Module):
    """Σ_k λ_k · criterion(outputs[k], targets[k], weight_k), with weight_k the full-resolution map
    resized to level k by area averaging (each coarse pixel gets the mean weight of the pixels it
    covers, as :class:`~unetweights.DeepSupervisionLoss` does).

    Parameters
    ----------
    criterion : nn.Module
        A weighted loss ``criterion(input, target, weight)``: (N, C, *) logits, (N, *) class
        indices, (N, *) weights (``CombinedLoss`` of a weighted CE and a soft Dice, say).
    level_weights : sequence of float
        nnU-Net's weights per level (1/2^k normalised, the last 0); a level of weight 0 is skipped.
    extra_resize : {"area", "nearest"}
        How an ``extra`` map is resized to each level: "area" for a distance map (the mean over the
        pixels a coarse pixel covers), "nearest" for class indices (a skeleton).

    ``forward(outputs, targets, weight, extra=None)`` takes nnU-Net's lists: the network's outputs
    per level, the targets per level as nnU-Net downsamples them ((N, 1, *) or (N, *)), the map of
    the full-resolution target ((N, 1, *) or (N, *)), and optionally a full-resolution extra map
    ((N, C, *): a distance map, or (N, 1, *) class indices), which then goes to the criterion as
    its fourth argument, resized to the level. Lists of different lengths raise ValueError (``zip``
    would train only the common levels, silently).
    """

    def __init__(self, criterion: nn.Module, level_weights: Sequence[float], extra_resize: str = "area") -> None:
        super().__init__()
        weights = [float(w) for w in level_weights]
        if not weights or any(not (w >= 0.0) or w == float("inf") for w in weights) or not any(weights):
            raise ValueError(f"level_weights: expected finite weights >= 0, not all 0, got {list(level_weights)}")
        if extra_resize not in ("area", "nearest"):
            raise ValueError(f"extra_resize: expected 'area' or 'nearest', got {extra_resize!r}")
        self.criterion = criterion
        self.level_weights = weights
        self.extra_resize = extra_resize

    def forward(
        self, outputs: List[Tensor], targets: List[Tensor], weight: Tensor, extra: Optional[Tensor] = None
    ) -> Tensor:
        if not (len(outputs) == len(targets) == len(self.level_weights)):
            raise ValueError(
                f"outputs, targets, level_weights: expected one per deep-supervision level each, got "
                f"{len(outputs)}, {len(targets)} and {len(self.level_weights)}"
            )
        full = weight[:, 0] if weight.dim() == outputs[0].dim() else weight
        total: Optional[Tensor] = None
        for output, target, level_weight in zip(outputs, targets, self.level_weights):
            if level_weight == 0.0:
                continue
            size = list(output.shape[2:])
            level_map = full if list(full.shape[1:]) == size else resize_area(full, size)
            labels = target[:, 0] if target.dim() == output.dim() else target
            if extra is None:
                term = self.criterion(output, labels.long(), level_map.to(output.dtype))
            else:
                level_extra = extra
                if list(extra.shape[2:]) != size:
                    level_extra = resize_area(extra, size) if self.extra_resize == "area" else resize_nearest(extra, size)
                term = self.criterion(output, labels.long(), level_map.to(output.dtype), level_extra)
            term = level_weight * term
            total = term if total is None else total + term
        assert total is not None  # level_weights has a non-zero entry
        return total
