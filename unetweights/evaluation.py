"""EvaluationGraph: losses and metrics per image, as one module that scripts and exports.

An evaluation graph maps ``(logits, target, weight, distance)`` to named per-image outputs: each
loss as shape (N,) and each metric as (N, C) (or (N,) for an overall accuracy). It is written
like the losses (no data-dependent Python control flow, no loop over the batch), so the same
module runs eagerly, under ``torch.jit.script`` (and from C++ through libtorch), and exports to
ONNX with dynamic batch and spatial dims (:func:`unetweights.export.to_onnx`).
"""

import keyword
import re
from typing import Dict, List, Mapping, Optional

from torch import Tensor, nn

from ._graph import INPUT_NAMES
from .losses.binary import WeightedBCEWithLogitsLoss
from .losses.classification import WeightedCrossEntropyLoss
from .losses.compose import DeepSupervisionLoss, with_reduction
from .losses.skeleton import SkeletonRecallLoss
from .metrics import (
    AverageSurfaceDistance,
    DiceScore,
    HausdorffDistance,
    IoUScore,
    PixelAccuracy,
    SurfaceDice,
    surface_groups,
)

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _check_parts(parts: Optional[Mapping[str, nn.Module]], argument: str) -> Dict[str, nn.Module]:
    if parts is None:
        return {}
    if not isinstance(parts, Mapping):
        raise TypeError(f"{argument}: expected a mapping from output name to module, got {type(parts).__name__}")
    checked: Dict[str, nn.Module] = {}
    for name, module in parts.items():
        if not isinstance(name, str) or not _NAME.match(name) or keyword.iskeyword(name):
            raise ValueError(f"{argument}: output names must be identifiers ([A-Za-z_][A-Za-z0-9_]*), got {name!r}")
        if not isinstance(module, nn.Module):
            raise TypeError(f"{argument}['{name}']: expected an nn.Module, got {type(module).__name__}")
        if isinstance(module, DeepSupervisionLoss):
            raise TypeError(
                f"{argument}['{name}']: DeepSupervisionLoss takes a list of outputs; an evaluation graph "
                "scores one output, so pass its criterion instead"
            )
        if any(isinstance(part, SkeletonRecallLoss) for part in module.modules()):
            raise TypeError(
                f"{argument}['{name}']: SkeletonRecallLoss scores the tubed skeleton of the target, which "
                "an evaluation graph has no input for (it would score the class target as the skeleton); "
                "evaluate it beside the graph, or use ClDiceLoss, which skeletonises the target itself"
            )
        checked[name] = module
    return checked


def _takes_distance(module: nn.Module) -> bool:
    """Whether ``module``'s forward takes the target's distance map as a fourth argument."""
    return bool(getattr(module, "takes_distance", False))


class EvaluationGraph(nn.Module):
    """Per-image losses and metrics as one module: ``forward(logits, target, weight=None, distance=None)``.

    Parameters
    ----------
    losses : mapping of str to nn.Module, optional
        Output name to loss module from :mod:`unetweights.losses`, with its options, for example
        ``{"ce": WeightedCrossEntropyLoss(class_weight=cw), "dice": SoftDiceLoss(per_image=True)}``.
        The graph evaluates a copy with ``reduction="per_image"`` (:func:`with_reduction`), so
        each loss output is shape (N,): the loss's "mean" on each image alone. Set losses must be
        built with ``per_image=True``. The given modules are not changed.
    metrics : mapping of str to nn.Module, optional
        Output name to metric module from :mod:`unetweights.metrics` (or any module with the
        ``forward(input, target, weight=None)`` signature that returns one row per image).

    Notes
    -----
    Output names are the keys, losses first and then metrics, each in the order given; they are
    identifiers and unique, and ``output_names`` lists them. ``forward`` returns a dict in that
    order; exported graphs use the same names for their outputs, and ``logits``, ``target``,
    ``weight`` and ``distance`` for their inputs. ``weight`` may be left out (every pixel weighs
    1); a graph exported without it has two inputs. ``distance``, the target's signed distance
    map (N, C', *) with one channel per class the distance losses score (all of them must score
    the same classes), is for graphs that hold such losses: left out, they compute it from the
    target in the graph (exact, in their ``spacing``; see
    :func:`~unetweights.losses.distance_transform` for its memory). A graph exported with it has
    four inputs (pass ``weight`` too).

    Examples
    --------
    >>> from unetweights.losses import WeightedCrossEntropyLoss, SoftDiceLoss
    >>> from unetweights.metrics import DiceScore
    >>> graph = EvaluationGraph(
    ...     losses={"ce": WeightedCrossEntropyLoss(), "dice_loss": SoftDiceLoss(per_image=True)},
    ...     metrics={"dice": DiceScore()},
    ... )
    >>> graph.output_names
    ['ce', 'dice_loss', 'dice']
    """

    def __init__(
        self, losses: Optional[Mapping[str, nn.Module]] = None, metrics: Optional[Mapping[str, nn.Module]] = None
    ) -> None:
        super().__init__()
        loss_parts = _check_parts(losses, "losses")
        metric_parts = _check_parts(metrics, "metrics")
        shared = sorted(set(loss_parts) & set(metric_parts))
        if shared:
            raise ValueError(f"metrics: output names must differ from the loss names, both have {shared}")
        if not loss_parts and not metric_parts:
            raise ValueError("losses, metrics: expected at least one loss or metric, got none")
        per_image = {name: with_reduction(loss, "per_image") for name, loss in loss_parts.items()}
        # Two dicts: TorchScript unrolls each loop with one call signature.
        self.losses = nn.ModuleDict({name: loss for name, loss in per_image.items() if not _takes_distance(loss)})
        self.distance_losses = nn.ModuleDict({name: loss for name, loss in per_image.items() if _takes_distance(loss)})
        # Surface metrics with equal mask options share their distance transforms, a group each.
        groups = surface_groups(metric_parts)
        grouped = {name for group in groups for name in group.metrics}
        self.metrics = nn.ModuleDict({name: metric for name, metric in metric_parts.items() if name not in grouped})
        self.surface_groups = nn.ModuleList(groups)
        self.output_names: List[str] = [*loss_parts, *metric_parts]

    @classmethod
    def default(
        cls,
        activation: str = "softmax",
        ignore_index: Optional[int] = None,
        ignore_empty: bool = False,
        tolerance: Optional[object] = None,
        percentile: float = 95.0,
        spacing: Optional[List[float]] = None,
    ) -> "EvaluationGraph":
        """Hard Dice, IoU and per-class accuracy, plus the weighted loss that fits ``activation``.

        "softmax" adds the weighted cross-entropy ("ce"), "sigmoid" the weighted BCE ("bce");
        the metrics are "dice", "iou" and "accuracy", each (N, C); ``ignore_empty`` gives Dice
        and IoU MONAI's empty-class rule. With ``tolerance`` (the NSD's τ in units of
        ``spacing``: a number, or one per class) the surface metrics join them, each (N, C) and
        computed from one pair of distance transforms: "hausdorff" (at ``percentile``), "assd"
        and "nsd".
        """
        if activation == "softmax":
            losses: Dict[str, nn.Module] = {
                "ce": WeightedCrossEntropyLoss(ignore_index=-100 if ignore_index is None else ignore_index)
            }
        elif activation == "sigmoid":
            if ignore_index is not None:
                raise ValueError("ignore_index: a sigmoid graph takes a (N, C, *) binary target; use zero weights instead")
            losses = {"bce": WeightedBCEWithLogitsLoss()}
        else:
            raise ValueError(f"activation: expected 'softmax' or 'sigmoid', got '{activation}'")
        metrics: Dict[str, nn.Module] = {
            "dice": DiceScore(activation, ignore_index=ignore_index, ignore_empty=ignore_empty),
            "iou": IoUScore(activation, ignore_index=ignore_index, ignore_empty=ignore_empty),
            "accuracy": PixelAccuracy(activation, ignore_index=ignore_index),
        }
        if tolerance is not None:
            shared = dict(activation=activation, ignore_index=ignore_index, spacing=spacing)
            metrics["hausdorff"] = HausdorffDistance(percentile=percentile, **shared)
            metrics["assd"] = AverageSurfaceDistance(**shared)
            metrics["nsd"] = SurfaceDice(tolerance=tolerance, **shared)
        return cls(losses, metrics)

    def forward(
        self, logits: Tensor, target: Tensor, weight: Optional[Tensor] = None, distance: Optional[Tensor] = None
    ) -> Dict[str, Tensor]:
        outputs: Dict[str, Tensor] = {}
        for name, loss in self.losses.items():
            outputs[name] = loss(logits, target, weight)
        for name, loss in self.distance_losses.items():
            outputs[name] = loss(logits, target, weight, distance)
        for name, metric in self.metrics.items():
            outputs[name] = metric(logits, target, weight)
        for group in self.surface_groups:
            for name, value in group(logits, target, weight).items():
                outputs[name] = value
        ordered: Dict[str, Tensor] = {}
        for name in self.output_names:
            ordered[name] = outputs[name]
        return ordered


__all__: List[str] = ["EvaluationGraph", "INPUT_NAMES"]
