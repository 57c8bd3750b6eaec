"""Per-image metrics: Dice, IoU and pixel accuracy of each image and class, and the weighted counts
they are ratios of.

The sources follow the loss library's rules: they run unchanged in eager mode, under
``torch.jit.script``, ``torch.compile`` and ``torch.export`` (and so through the ONNX exporter),
with no data-dependent shapes. The formulas and the rules for absent classes and invalid input
are in the package docstring, :mod:`unetweights.metrics`.
"""

import math
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._stage.inputs import check_activation, check_sigmoid_target, overlap_counts
from .._stage.options import check_number, checked_flag, checked_index
from .._stage.reduce import check_softmax_channels, checked_input, checking_values, input_poison, ratio_or

COUNT_NAMES: Tuple[str, str, str, str] = ("tp", "sum_p", "sum_t", "mass")


def check_prediction_options(activation: str, threshold: float) -> None:
    check_activation(activation)
    if not torch.jit.is_scripting() and checking_values():
        check_number(threshold, "threshold", "a value in (0, 1)")
    if not (threshold > 0.0 and threshold < 1.0):
        raise ValueError(f"threshold: expected a value in (0, 1), got {threshold}")


def check_empty_score(empty_score: float) -> None:
    if not torch.jit.is_scripting() and checking_values():
        check_number(empty_score, "empty_score", "a finite number or NaN")
    if empty_score == math.inf or empty_score == -math.inf:
        raise ValueError(f"empty_score: expected a finite number or NaN, got {empty_score}")


def check_ignore_empty(ignore_empty: bool) -> None:
    """Refuse a non-bool ``ignore_empty`` by name in eager mode (TorchScript checks the annotation)."""
    if not torch.jit.is_scripting() and checking_values():
        checked_flag(ignore_empty, "ignore_empty")


def _prediction(input: Tensor, target: Tensor, activation: str, hard: bool, threshold: float) -> Tensor:
    """The prediction p (N, C, *): probabilities, or the hard labels as 0/1 in ``input``'s dtype."""
    input = checked_input(input, 3, "(N, C, *)")
    check_sigmoid_target(input, target, activation)
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
) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    check_prediction_options(activation, threshold)
    if activation == "softmax":
        check_softmax_channels(input, "for one channel use activation='sigmoid' with a (N, 1, *) binary target")
    prediction = _prediction(input, target, activation, hard, threshold)
    # The poison of the logits themselves: the hard prediction no longer shows a NaN.
    tp, sum_p, sum_t, mass, _ = overlap_counts(
        prediction, target, weight, "none", ignore_index, True, include_background, False, input_poison(input)
    )
    return tp, sum_p, sum_t, mass


def in_target(sum_p: Tensor, sum_t: Tensor) -> Tensor:
    """Σp where the class is in the target (Σt ≠ 0) and 0 where it is absent: the rule of ``ignore_empty``.

    Dice and IoU computed from it have a denominator of exactly 0 wherever Σt = 0 (tp is 0 there
    too), and so score ``empty_score`` whatever was predicted. A NaN Σt is not 0, and 0·NaN is
    NaN: a NaN count keeps its NaN and is never taken for an absent class.
    """
    return sum_p * (sum_t != 0).to(sum_p.dtype)


def dice_fraction(tp: Tensor, sum_p: Tensor, sum_t: Tensor) -> Tuple[Tensor, Tensor]:
    return 2.0 * tp, sum_p + sum_t


def iou_fraction(tp: Tensor, sum_p: Tensor, sum_t: Tensor) -> Tuple[Tensor, Tensor]:
    return tp, sum_p + sum_t - tp


def accuracy_fraction(tp: Tensor, sum_p: Tensor, sum_t: Tensor, mass: Tensor, activation: str) -> Tuple[Tensor, Tensor]:
    """Correct and counted mass of each set, (S,), from the counts (S, C) of every class and mass (S, 1)."""
    if activation == "softmax":
        # Every counted pixel predicts exactly one class: correct pixels Σ_c tp, pixels Σ_c Σp.
        return tp.sum(1), sum_p.sum(1)
    # Per channel, correct = tp + tn and tn = mass - Σp - Σt + tp, so correct = mass - Σp - Σt + 2·tp;
    # every channel counts the image's whole mass.
    correct = mass - sum_p - sum_t + 2.0 * tp
    return correct.sum(1), mass.squeeze(1) * tp.shape[1]


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
    ignore_empty: bool,
    iou: bool,
) -> Tensor:
    check_empty_score(empty_score)
    check_ignore_empty(ignore_empty)
    tp, sum_p, sum_t, _ = _counts(input, target, weight, activation, hard, threshold, include_background, ignore_index)
    if ignore_empty:
        sum_p = in_target(sum_p, sum_t)
    if iou:
        num, den = iou_fraction(tp, sum_p, sum_t)
    else:
        num, den = dice_fraction(tp, sum_p, sum_t)
    return ratio_or(num, den, empty_score)


def dice_score(
    input: Tensor,
    target: Tensor,
    weight: Optional[Tensor] = None,
    activation: str = "softmax",
    hard: bool = True,
    threshold: float = 0.5,
    include_background: bool = True,
    ignore_index: Optional[int] = None,
    empty_score: float = math.nan,
    ignore_empty: bool = False,
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
        "softmax", "sigmoid" (needs a (N, C, *) target) or "none"; see :mod:`unetweights.metrics`
        for how each makes a hard prediction.
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
        The value where Σp + Σt = 0, a class absent from both prediction and target: NaN (the
        default) marks it for means to skip; 1.0 scores it as perfect. See :mod:`unetweights.metrics`.
    ignore_empty : bool
        False (the default, nnU-Net's rule): a class absent from the image's target but predicted
        scores 0 (its denominator Σp + Σt is Σp > 0). True (MONAI's ``ignore_empty=True``): a
        class absent from the target, Σt = 0 (Σt being the weighted count, so a class present
        only on ignored or zero-weight pixels is absent too), scores ``empty_score`` whatever was
        predicted, so that a mean with NaN skipped leaves such images out. A NaN count is not
        absent: invalid input stays NaN.

    Returns
    -------
    Tensor
        Shape (N, C), or (N, C - 1) without the background. The dtype is ``input``'s, promoted
        by torch's rules with a floating ``target`` or ``weight`` (a float64 weight map gives
        float64 scores).
    """
    return _overlap_score(
        input, target, weight, activation, hard, threshold, include_background, ignore_index, empty_score,
        ignore_empty, False,
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
    empty_score: float = math.nan,
    ignore_empty: bool = False,
) -> Tensor:
    """Weighted intersection over union (Jaccard index) per image and class, tp / (Σp + Σt - tp).

    Parameters are those of :func:`dice_score`; ``empty_score`` applies where Σp + Σt - tp = 0,
    and with ``ignore_empty=True`` wherever Σt = 0 (MONAI's ``MeanIoU`` / ``compute_iou`` rule).
    With ``hard=False`` this is the soft Jaccard index on probabilities.

    Returns
    -------
    Tensor
        Shape (N, C), or (N, C - 1) without the background.
    """
    return _overlap_score(
        input, target, weight, activation, hard, threshold, include_background, ignore_index, empty_score,
        ignore_empty, True,
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
    empty_score: float = math.nan,
) -> Tensor:
    """Weighted pixel accuracy of the hard prediction, per class or over all classes.

    Parameters
    ----------
    per_class : bool
        True: for each class, the weighted fraction of its target pixels predicted as that
        class, tp / Σt (the per-class accuracy of Long et al.'s "mean accuracy"; for "sigmoid"
        channels, each channel's sensitivity), shape (N, C) or (N, C - 1); ``empty_score`` where
        the class is absent from the target (so it needs no ``ignore_empty``: it already
        follows that rule). False: the weighted fraction of all counted
        elements predicted correctly, shape (N,): pixels for "softmax" (Σ w·[argmax = t] / Σ w),
        pixels and channels for "sigmoid" and "none"; ``empty_score`` where Σ w = 0 (and
        ``include_background`` does not apply).

    The other parameters are those of :func:`dice_score` (but ``hard`` and ``ignore_empty``);
    the prediction is always hard.
    """
    check_empty_score(empty_score)
    if per_class:
        tp, _, sum_t, _ = _counts(input, target, weight, activation, True, threshold, include_background, ignore_index)
        return ratio_or(tp, sum_t, empty_score)
    tp, sum_p, sum_t, mass = _counts(input, target, weight, activation, True, threshold, True, ignore_index)
    correct, counted = accuracy_fraction(tp, sum_p, sum_t, mass, activation)
    return ratio_or(correct, counted, empty_score)


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
        check_prediction_options(activation, threshold)
        check_empty_score(empty_score)
        self.activation = activation
        self.threshold = float(threshold)
        self.include_background = checked_flag(include_background, "include_background")
        self.ignore_index = checked_index(ignore_index)
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
        empty_score: float = math.nan,
        ignore_empty: bool = False,
    ) -> None:
        super().__init__(activation, threshold, include_background, ignore_index, empty_score)
        self.hard = checked_flag(hard, "hard")
        self.ignore_empty = checked_flag(ignore_empty, "ignore_empty")
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
            self.ignore_empty,
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
        empty_score: float = math.nan,
    ) -> None:
        super().__init__(activation, threshold, include_background, ignore_index, empty_score)
        self.per_class = checked_flag(per_class, "per_class")

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


def segmentation_counts(
    input: Tensor,
    target: Tensor,
    weight: Optional[Tensor] = None,
    activation: str = "softmax",
    hard: bool = True,
    threshold: float = 0.5,
    ignore_index: Optional[int] = None,
) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """The weighted counts of every image and class from which each metric here is a ratio.

    Parameters are those of :func:`dice_score`. Every class is counted (there is no
    ``include_background``): the overall accuracy needs them all.

    Returns
    -------
    tuple of Tensor
        ``(tp, sum_p, sum_t, mass)``: tp = Σ w·p·t, Σp = Σ w·p and Σt = Σ w·t, each (N, C), and
        the counted weight mass Σ w of each image, (N,) (0 where every pixel is ignored or weighs
        0). Every count of an image is NaN where the image holds invalid input (see
        :mod:`unetweights.metrics`).
    """
    tp, sum_p, sum_t, mass = _counts(input, target, weight, activation, hard, threshold, True, ignore_index)
    return tp, sum_p, sum_t, mass.squeeze(1)


class SegmentationCount(nn.Module):
    """One of the counts of :func:`segmentation_counts` as a metric module for an evaluation graph.

    Parameters
    ----------
    count : str
        Which count the module returns: "tp", "sum_p" or "sum_t" (N, C), or "mass" (N,).
    activation, hard, threshold, ignore_index
        As for :func:`segmentation_counts`.

    Notes
    -----
    :meth:`SegmentationMetrics.count_modules` builds the four with the accumulator's options; put
    them in an :class:`~unetweights.evaluation.EvaluationGraph`'s ``metrics`` and feed the graph's
    outputs to :meth:`SegmentationMetrics.update_from_outputs`. Each module computes the
    prediction and all four counts, and returns one: eager and TorchScript graphs repeat that
    work per module, while the ONNX exporter merges the repeats (a graph with the four count
    outputs has 67 nodes, one with only tp 59).
    """

    def __init__(
        self,
        count: str,
        activation: str = "softmax",
        hard: bool = True,
        threshold: float = 0.5,
        ignore_index: Optional[int] = None,
    ) -> None:
        super().__init__()
        if count not in COUNT_NAMES:
            raise ValueError(f"count: expected one of {list(COUNT_NAMES)}, got {count!r}")
        check_prediction_options(activation, threshold)
        self.count = count
        self.activation = activation
        self.hard = checked_flag(hard, "hard")
        self.threshold = float(threshold)
        self.ignore_index = checked_index(ignore_index)

    def forward(self, input: Tensor, target: Tensor, weight: Optional[Tensor] = None) -> Tensor:
        tp, sum_p, sum_t, mass = segmentation_counts(
            input, target, weight, self.activation, self.hard, self.threshold, self.ignore_index
        )
        if self.count == "tp":
            return tp
        if self.count == "sum_p":
            return sum_p
        if self.count == "sum_t":
            return sum_t
        return mass
