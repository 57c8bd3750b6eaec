"""Per-image segmentation metrics with a per-pixel weight map: Dice, IoU and pixel accuracy.

Every metric returns one value per image and class, shape (N, C) (or (N, C - 1) without the
background class), so an evaluation graph can report them per image and a consumer can average
them any way it likes. The sources follow the loss library's rules: they run unchanged in eager
mode, under ``torch.jit.script``, ``torch.compile`` and ``torch.export`` (and so through the ONNX
exporter), with no data-dependent shapes.

For each image and class, with p the prediction, t the target and w the weight map (zero where
the target equals ``ignore_index``)

    tp = Σ w·p·t,    Σp = Σ w·p,    Σt = Σ w·t,

    Dice = 2·tp / (Σp + Σt),    IoU = tp / (Σp + Σt - tp),    accuracy = tp / Σt.

*Hard* metrics (the default) take p as the predicted label: one-hot of the argmax over channels
("softmax"), or ``sigmoid(x) > threshold`` per channel ("sigmoid"), or ``x > threshold`` for
probabilities ("none"). *Soft* metrics (``hard=False``) take p as the activated probabilities.

Empty sets: where the denominator is 0 (the class is absent from both prediction and target, or
every pixel of the image weighs 0), the value is ``empty_score``: 1.0 by default (nothing to find
and nothing found), never a silent NaN. Pass ``float("nan")`` to mark those entries instead and
average with ``nanmean``.

Invalid input: a NaN or infinite logit, a NaN target, or (in a compiled or exported graph, where
nothing can raise) a NaN, infinite or negative weight or a class index outside [0, C) that is not
``ignore_index`` makes every value of its image NaN. The argmax or threshold of a hard metric never
turns a NaN logit into a class, and the empty-set rule applies only to a denominator that is
truly 0. float16 and bfloat16 inputs are counted in float32.
"""

import math
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .losses._reduce import checked_input, input_poison, ratio_or
from .losses.overlap import check_activation, overlap_counts


def _check_metric_options(activation: str, threshold: float, empty_score: float) -> None:
    check_activation(activation)
    if not (threshold > 0.0 and threshold < 1.0):
        raise ValueError(f"threshold: expected a value in (0, 1), got {threshold}")
    if empty_score == math.inf or empty_score == -math.inf:
        raise ValueError(f"empty_score: expected a finite number or NaN, got {empty_score}")


def _prediction(input: Tensor, target: Tensor, activation: str, hard: bool, threshold: float) -> Tensor:
    """The prediction p (N, C, *): probabilities, or the hard labels as 0/1 in ``input``'s dtype."""
    input = checked_input(input, 3, "(N, C, *)")
    if activation == "sigmoid" and target.dim() != input.dim():
        raise ValueError(
            f"target: activation='sigmoid' needs a (N, C, *) = {list(input.shape)} binary target, got "
            f"{list(target.shape)}; for one channel pass target.unsqueeze(1)"
        )
    if not hard:
        if activation == "softmax":
            return F.softmax(input, 1)
        if activation == "sigmoid":
            return torch.sigmoid(input)
        return input
    if activation == "softmax":
        classes = torch.arange(input.shape[1], device=input.device).view([1, -1] + [1] * (input.dim() - 2))
        # max's indices, not argmax: the same first-maximum rule, and 10x faster along dim 1 on CPU.
        _, index = input.max(1, keepdim=True)
        return (index == classes).to(input.dtype)
    if activation == "sigmoid":
        # sigmoid(x) > threshold  <=>  x > logit(threshold); no sigmoid needed.
        return (input > math.log(threshold / (1.0 - threshold))).to(input.dtype)
    return (input > threshold).to(input.dtype)


def _counts(
    input: Tensor,
    target: Tensor,
    weight: Optional[Tensor],
    activation: str,
    hard: bool,
    threshold: float,
    include_background: bool,
    ignore_index: Optional[int],
    empty_score: float,
) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    _check_metric_options(activation, threshold, empty_score)
    prediction = _prediction(input, target, activation, hard, threshold)
    # The poison of the logits themselves: the hard prediction no longer shows a NaN.
    return overlap_counts(
        prediction, target, weight, "none", ignore_index, True, include_background, False, input_poison(input)
    )


def _overlap_score(
    input: Tensor,
    target: Tensor,
    weight: Optional[Tensor],
    activation: str,
    hard: bool,
    threshold: float,
    include_background: bool,
    ignore_index: Optional[int],
    empty_score: float,
    iou: bool,
) -> Tensor:
    tp, sum_p, sum_t, _ = _counts(
        input, target, weight, activation, hard, threshold, include_background, ignore_index, empty_score
    )
    if iou:
        return ratio_or(tp, sum_p + sum_t - tp, empty_score)
    return ratio_or(2.0 * tp, sum_p + sum_t, empty_score)


def dice_score(
    input: Tensor,
    target: Tensor,
    weight: Optional[Tensor] = None,
    activation: str = "softmax",
    hard: bool = True,
    threshold: float = 0.5,
    include_background: bool = True,
    ignore_index: Optional[int] = None,
    empty_score: float = 1.0,
) -> Tensor:
    """Weighted Dice coefficient per image and class, 2·tp / (Σp + Σt).

    Parameters
    ----------
    input : Tensor
        Logits (N, C, *), or probabilities with ``activation="none"``.
    target : Tensor
        Class indices (N, *) ("softmax" or "none"), or a binary/probability target (N, C, *).
    weight : Tensor, optional
        Per-pixel weight map (N, *) (or (N, 1, *)), finite and non-negative.
    activation : str
        "softmax", "sigmoid" (needs a (N, C, *) target) or "none"; see the module docstring for
        how each makes a hard prediction.
    hard : bool
        True (the default): score the predicted labels. False: score the probabilities (the
        soft Dice, 1 minus :func:`~unetweights.losses.soft_dice_loss` with ``smooth=0``).
    threshold : float
        In (0, 1): the probability above which a "sigmoid" or "none" channel counts as predicted.
    include_background : bool
        False drops channel 0 from the output.
    ignore_index : int, optional
        Index-target pixels equal to it count nowhere.
    empty_score : float
        The value where Σp + Σt = 0 (see the module docstring).

    Returns
    -------
    Tensor
        Shape (N, C), or (N, C - 1) without the background. The dtype is ``input``'s, promoted
        by torch's rules with a floating ``target`` or ``weight`` (a float64 weight map gives
        float64 scores).
    """
    return _overlap_score(
        input, target, weight, activation, hard, threshold, include_background, ignore_index, empty_score, False
    )


def iou_score(
    input: Tensor,
    target: Tensor,
    weight: Optional[Tensor] = None,
    activation: str = "softmax",
    hard: bool = True,
    threshold: float = 0.5,
    include_background: bool = True,
    ignore_index: Optional[int] = None,
    empty_score: float = 1.0,
) -> Tensor:
    """Weighted intersection over union (Jaccard index) per image and class, tp / (Σp + Σt - tp).

    Parameters are those of :func:`dice_score`; ``empty_score`` applies where Σp + Σt - tp = 0.
    With ``hard=False`` this is the soft Jaccard index on probabilities.

    Returns
    -------
    Tensor
        Shape (N, C), or (N, C - 1) without the background.
    """
    return _overlap_score(
        input, target, weight, activation, hard, threshold, include_background, ignore_index, empty_score, True
    )


def pixel_accuracy(
    input: Tensor,
    target: Tensor,
    weight: Optional[Tensor] = None,
    activation: str = "softmax",
    threshold: float = 0.5,
    per_class: bool = True,
    include_background: bool = True,
    ignore_index: Optional[int] = None,
    empty_score: float = 1.0,
) -> Tensor:
    """Weighted pixel accuracy of the hard prediction, per class or over all classes.

    Parameters
    ----------
    per_class : bool
        True: for each class, the weighted fraction of its target pixels predicted as that
        class, tp / Σt (the per-class accuracy of Long et al.'s "mean accuracy"; for "sigmoid"
        channels, each channel's sensitivity), shape (N, C) or (N, C - 1); ``empty_score`` where
        the class is absent from the target. False: the weighted fraction of all counted
        elements predicted correctly, shape (N,): pixels for "softmax" (Σ w·[argmax = t] / Σ w),
        pixels and channels for "sigmoid" and "none"; ``empty_score`` where Σ w = 0 (and
        ``include_background`` does not apply).

    The other parameters are those of :func:`dice_score`; the prediction is always hard.
    """
    if per_class:
        tp, _, sum_t, _ = _counts(
            input, target, weight, activation, True, threshold, include_background, ignore_index, empty_score
        )
        return ratio_or(tp, sum_t, empty_score)
    tp, sum_p, sum_t, mass = _counts(input, target, weight, activation, True, threshold, True, ignore_index, empty_score)
    if activation == "softmax":
        # Every counted pixel predicts exactly one class: correct pixels Σ_c tp, pixels Σ_c Σp.
        return ratio_or(tp.sum(1), sum_p.sum(1), empty_score)
    # Per channel, correct = tp + tn and tn = mass - Σp - Σt + tp, so correct = mass - Σp - Σt + 2·tp;
    # every channel counts the image's whole mass.
    correct = mass - sum_p - sum_t + 2.0 * tp
    return ratio_or(correct.sum(1), mass.squeeze(1) * tp.shape[1], empty_score)


class _Metric(nn.Module):
    def __init__(
        self,
        activation: str,
        threshold: float,
        include_background: bool,
        ignore_index: Optional[int],
        empty_score: float,
    ) -> None:
        super().__init__()
        _check_metric_options(activation, threshold, float(empty_score))
        self.activation = activation
        self.threshold = float(threshold)
        self.include_background = bool(include_background)
        self.ignore_index = ignore_index
        self.empty_score = float(empty_score)


class _OverlapScore(_Metric):
    """Dice and IoU share their options and counts; the subclass says which ratio it takes."""

    _iou = False

    def __init__(
        self,
        activation: str = "softmax",
        hard: bool = True,
        threshold: float = 0.5,
        include_background: bool = True,
        ignore_index: Optional[int] = None,
        empty_score: float = 1.0,
    ) -> None:
        super().__init__(activation, threshold, include_background, ignore_index, empty_score)
        self.hard = bool(hard)
        self.iou = type(self)._iou

    def forward(self, input: Tensor, target: Tensor, weight: Optional[Tensor] = None) -> Tensor:
        return _overlap_score(
            input,
            target,
            weight,
            self.activation,
            self.hard,
            self.threshold,
            self.include_background,
            self.ignore_index,
            self.empty_score,
            self.iou,
        )


class DiceScore(_OverlapScore):
    """Module form of :func:`dice_score`; options are fixed at construction."""


class IoUScore(_OverlapScore):
    """Module form of :func:`iou_score`; options are fixed at construction."""

    _iou = True


class PixelAccuracy(_Metric):
    """Module form of :func:`pixel_accuracy`; options are fixed at construction."""

    def __init__(
        self,
        activation: str = "softmax",
        threshold: float = 0.5,
        per_class: bool = True,
        include_background: bool = True,
        ignore_index: Optional[int] = None,
        empty_score: float = 1.0,
    ) -> None:
        super().__init__(activation, threshold, include_background, ignore_index, empty_score)
        self.per_class = bool(per_class)

    def forward(self, input: Tensor, target: Tensor, weight: Optional[Tensor] = None) -> Tensor:
        return pixel_accuracy(
            input,
            target,
            weight,
            self.activation,
            self.threshold,
            self.per_class,
            self.include_background,
            self.ignore_index,
            self.empty_score,
        )


__all__: List[str] = ["DiceScore", "IoUScore", "PixelAccuracy", "dice_score", "iou_score", "pixel_accuracy"]
