"""Segmentation metrics with a per-pixel weight map: Dice, IoU and pixel accuracy, per image and
over a dataset.

Per image, every metric returns one value per image and class, shape (N, C) (or (N, C - 1)
without the background class), so an evaluation graph can report them per image and a consumer
can average them any way it likes. The sources follow the loss library's rules: they run
unchanged in eager mode, under ``torch.jit.script``, ``torch.compile`` and ``torch.export`` (and
so through the ONNX exporter), with no data-dependent shapes.

Over a dataset, :class:`SegmentationMetrics` sums the weighted counts batch by batch (and across
processes with ``torch.distributed``), with torchmetrics' ``update`` / ``compute`` / ``reset``
interface, and gives micro scores (the ratio of the summed counts) and macro scores (the mean
over images of the per-image score). :class:`SegmentationCount` puts the per-image counts into an
exported evaluation graph, so that the accumulator also consumes what
:class:`~unetweights.runtime.OnnxEvaluator` computes.

For each image and class, with p the prediction, t the target and w the weight map (zero where
the target equals ``ignore_index``)

    tp = Σ w·p·t,    Σp = Σ w·p,    Σt = Σ w·t,

    Dice = 2·tp / (Σp + Σt),    IoU = tp / (Σp + Σt - tp),    accuracy = tp / Σt.

Every metric is a ratio of weighted counts with no smoothing term, so it is invariant to
multiplying the weight map by a positive constant, per image and over a dataset; the counts
themselves (:func:`segmentation_counts`, :class:`SegmentationCount`) are proportional to it.

*Hard* metrics (the default) take p as the predicted label: one-hot of the argmax over channels
("softmax"), or ``sigmoid(x) > threshold`` per channel ("sigmoid"), or ``x > threshold`` for
probabilities ("none"; this also takes hard predictions given as one-hot or binary (N, C, *)
tensors). *Soft* metrics (``hard=False``) take p as the activated probabilities.

Absent classes: where a denominator is exactly 0 there is nothing to score: a class absent from
both prediction and target (Dice, IoU), a class absent from the target (per-class accuracy), or
an image whose every pixel is ignored or weighs 0 (every metric). The value there is
``empty_score``: NaN by default, as in torchmetrics, MONAI and nnU-Net, and means skip it
(``nanmean``; the summaries of :class:`~unetweights.runtime.EvaluationResult` and the macro means
of :class:`SegmentationMetrics` do). ``empty_score=1.0`` keeps the older convention (nothing to
find and nothing found is a perfect score), which inflates the mean of a rare class.

Invalid input: a NaN or infinite logit, a NaN target, or (in a compiled or exported graph, where
nothing can raise) a NaN, infinite or negative weight or a class index outside [0, C) that is not
``ignore_index`` makes every value of its image NaN, whatever ``empty_score`` is. The argmax or
threshold of a hard metric never turns a NaN logit into a class, and the empty-set rule applies
only to a denominator that is truly 0. float16 and bfloat16 inputs are counted in float32.

So a NaN has two causes, which differ in extent: an absent class makes its one entry NaN, while
invalid input makes the whole row of its image NaN, present classes included. A whole row is NaN
for a valid reason only where the image has nothing to score in any class: no counted pixel, or
(per channel, as with "sigmoid") nothing in any channel of target or prediction. Where the two
must never be confused, pass a finite ``empty_score`` (a NaN then always means invalid input), or let the
values be checked: eager mode and TorchScript raise for bad targets and weights, and
``OnnxEvaluator`` checks logits, targets and weights before each run by default.
:class:`SegmentationMetrics` keeps the two apart by itself: it sees the counts, skips a zero
denominator and carries a NaN count on.
"""

import math
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from .losses._options import check_number, checked_flag, checked_index, checked_real
from .losses._reduce import check_softmax_channels, checked_input, checking_values, input_poison, ratio_or
from .losses.overlap import check_activation, check_sigmoid_target, overlap_counts

COUNT_NAMES: Tuple[str, str, str, str] = ("tp", "sum_p", "sum_t", "mass")


def _check_prediction_options(activation: str, threshold: float) -> None:
    check_activation(activation)
    if not torch.jit.is_scripting() and checking_values():
        check_number(threshold, "threshold", "a value in (0, 1)")
    if not (threshold > 0.0 and threshold < 1.0):
        raise ValueError(f"threshold: expected a value in (0, 1), got {threshold}")


def _check_empty_score(empty_score: float) -> None:
    if not torch.jit.is_scripting() and checking_values():
        check_number(empty_score, "empty_score", "a finite number or NaN")
    if empty_score == math.inf or empty_score == -math.inf:
        raise ValueError(f"empty_score: expected a finite number or NaN, got {empty_score}")


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
    _check_prediction_options(activation, threshold)
    if activation == "softmax":
        check_softmax_channels(input, "for one channel use activation='sigmoid' with a (N, 1, *) binary target")
    prediction = _prediction(input, target, activation, hard, threshold)
    # The poison of the logits themselves: the hard prediction no longer shows a NaN.
    tp, sum_p, sum_t, mass, _ = overlap_counts(
        prediction, target, weight, "none", ignore_index, True, include_background, False, input_poison(input)
    )
    return tp, sum_p, sum_t, mass


def _dice_fraction(tp: Tensor, sum_p: Tensor, sum_t: Tensor) -> Tuple[Tensor, Tensor]:
    return 2.0 * tp, sum_p + sum_t


def _iou_fraction(tp: Tensor, sum_p: Tensor, sum_t: Tensor) -> Tuple[Tensor, Tensor]:
    return tp, sum_p + sum_t - tp


def _accuracy_fraction(tp: Tensor, sum_p: Tensor, sum_t: Tensor, mass: Tensor, activation: str) -> Tuple[Tensor, Tensor]:
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
    iou: bool,
) -> Tensor:
    _check_empty_score(empty_score)
    tp, sum_p, sum_t, _ = _counts(input, target, weight, activation, hard, threshold, include_background, ignore_index)
    if iou:
        num, den = _iou_fraction(tp, sum_p, sum_t)
    else:
        num, den = _dice_fraction(tp, sum_p, sum_t)
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
        The value where Σp + Σt = 0, a class absent from both prediction and target: NaN (the
        default) marks it for means to skip; 1.0 scores it as perfect. See the module docstring.

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
    empty_score: float = math.nan,
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
    empty_score: float = math.nan,
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
    _check_empty_score(empty_score)
    if per_class:
        tp, _, sum_t, _ = _counts(input, target, weight, activation, True, threshold, include_background, ignore_index)
        return ratio_or(tp, sum_t, empty_score)
    tp, sum_p, sum_t, mass = _counts(input, target, weight, activation, True, threshold, True, ignore_index)
    correct, counted = _accuracy_fraction(tp, sum_p, sum_t, mass, activation)
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
        _check_prediction_options(activation, threshold)
        _check_empty_score(empty_score)
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
    ) -> None:
        super().__init__(activation, threshold, include_background, ignore_index, empty_score)
        self.hard = checked_flag(hard, "hard")
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
        0). Every count of an image is NaN where the image holds invalid input (see the module
        docstring).
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
        _check_prediction_options(activation, threshold)
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


def _as_tensor(value: Any, name: str) -> Tensor:
    if isinstance(value, Tensor):
        return value.detach()
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value)
    raise ValueError(f"{name}: expected a torch tensor or a numpy array, got {type(value).__name__}")


# -- SegmentationMetrics' checks (plain Python: the accumulator is never scripted) ------------------


# Accelerators whose availability torch.accelerator reports; other backends (xla, ...) are taken
# on trust and fail at the first update if absent.
_ACCELERATORS = ("cuda", "mps", "xpu", "mtia")


def _checked_device(device: Any) -> Optional[torch.device]:
    if device is None:
        return None
    expected = "a torch.device or a device string such as 'cpu', 'cuda' or 'cuda:1'"
    if isinstance(device, (bool, np.bool_)) or not isinstance(device, (torch.device, str, int)):
        raise ValueError(f"device: expected {expected}, got {device!r}")
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"device: expected {expected}, got {device!r}") from None
    if parsed.type == "meta":
        raise ValueError(f"device: expected a device that holds data, got {device!r} (meta tensors have shapes only)")
    if parsed.type in _ACCELERATORS:
        # Availability and count only: nothing is allocated, so no context is made on a device
        # before the caller has chosen its own (torch.cuda.set_device in a distributed run).
        accelerator = torch.accelerator.current_accelerator(check_available=True)
        count = torch.accelerator.device_count() if accelerator is not None and accelerator.type == parsed.type else 0
        if count == 0 or (parsed.index is not None and parsed.index >= count):
            raise ValueError(f"device: {str(parsed)!r} is not available here ({count} {parsed.type} device(s))")
    return parsed


def _ranks_holding(values: List[Any]) -> str:
    """'rank 0 has 3, ranks [1, 2] have 4' for the values of a group's ranks."""
    ranks: Dict[Any, List[int]] = {}
    for rank, value in enumerate(values):
        ranks.setdefault(value, []).append(rank)
    return ", ".join(
        f"rank {held[0]} has {value}" if len(held) == 1 else f"ranks {held} have {value}"
        for value, held in ranks.items()
    )


def _count_slack(counts: Mapping[str, Tensor]) -> float:
    """Relative slack for the relations between counts: √ε of the least precise count dtype.

    Counts summed in float32 (an exported graph's) carry rounding that float64 ones do not.
    """
    return max(torch.finfo(value.dtype).eps for value in counts.values()) ** 0.5


def _first_violation(violated: Tensor) -> str:
    index = violated.nonzero()[0].tolist()
    return f"image {index[0]}" + (f", class {index[1]}" if len(index) > 1 else "")


def _check_count_relations(counts: Mapping[str, Tensor], activation: str) -> None:
    """Raise unless the counts (tp, sum_p, sum_t (N, C); mass (N,)) could be weighted counts.

    With p, t in [0, 1] and w >= 0 per pixel: tp <= Σp, tp <= Σt, and the true negatives
    mass - Σp - Σt + tp are not negative; "softmax" predicts one class per counted pixel, so
    Σ_c Σp = mass. Each relation holds within a relative slack for rounding; a NaN count (an
    image with invalid input) satisfies them all.
    """
    slack = _count_slack(counts)
    tp, sum_p, sum_t, mass = (counts[name].double() for name in COUNT_NAMES)
    mass = mass.reshape(-1, 1)
    for name in ("sum_p", "sum_t"):
        total = sum_p if name == "sum_p" else sum_t
        violated = tp > total + slack * (tp + total)
        if bool(violated.any()):
            where = _first_violation(violated)
            raise ValueError(
                f"tp: expected tp <= {name} for every image and class, found tp = {float(tp[violated][0])} > "
                f"{name} = {float(total[violated][0])} ({where})"
            )
    union = sum_p + sum_t - tp
    violated = union > mass + slack * (mass + sum_p + sum_t + tp)
    if bool(violated.any()):
        raise ValueError(
            f"mass: expected mass >= sum_p + sum_t - tp for every image and class (the true negatives are not "
            f"negative), found mass = {float(mass.expand_as(union)[violated][0])} < sum_p + sum_t - tp = "
            f"{float(union[violated][0])} ({_first_violation(violated)})"
        )
    if activation == "softmax":
        predicted, counted = sum_p.sum(1), mass[:, 0]
        violated = (predicted - counted).abs() > slack * (predicted + counted)
        if bool(violated.any()):
            raise ValueError(
                f"sum_p: expected its sum over the classes to equal mass with activation='softmax' (every "
                f"counted pixel predicts one class; are all C classes there, background included?), found "
                f"{float(predicted[violated][0])} and mass = {float(counted[violated][0])} "
                f"({_first_violation(violated)})"
            )


class SegmentationMetrics:
    """Dataset-level Dice, IoU and pixel accuracy: weighted counts summed over batches and processes.

    The interface follows torchmetrics (without needing it): :meth:`update` with each batch,
    :meth:`compute` for the scores so far (summed over every process of a ``torch.distributed``
    group), :meth:`reset` to start again. The options are those of :func:`dice_score`.

    Parameters
    ----------
    num_classes : int, optional
        C, the channels of the input. None (the default): taken from the first update. Give it
        when a process of a distributed run may see no data, so that it still takes part in the
        sync.
    activation, hard, threshold, ignore_index
        How the prediction and the counts are made, as for :func:`dice_score`. With
        ``hard=False`` Dice and IoU are soft and the result holds no accuracy (defined on hard
        labels only).
    include_background : bool
        False drops class 0 from the per-class results (the overall accuracy still counts it, as
        :func:`pixel_accuracy` does).
    empty_score : float
        The value of a score whose denominator is 0. NaN (the default): such an entry is left
        out of the macro mean (and a class absent from the whole dataset is NaN in the micro
        score too); a finite value is averaged like any other, as :func:`dice_score` gives it.
    sync_on_compute : bool
        True (the default): :meth:`compute` sums the states over the default process group (or
        ``process_group``) when ``torch.distributed`` is initialised with more than one process.
        Every process must then call :meth:`compute`, with the same C, ``hard``, ``activation``
        and ``empty_score``; where they differ, every process raises the same ValueError.
    process_group : optional
        The ``torch.distributed`` group to sync over; None is the default group.
    device : torch.device or str, optional
        Where the states live. None (the default): the device of the first update; later
        updates are moved there (a process without updates syncs from the CPU, or from the
        current CUDA device with NCCL). A NCCL group needs them on CUDA: pass ``device="cuda"``
        when the updates are numpy counts from onnxruntime. An unknown or unavailable device is
        refused with a ValueError naming ``device``.

    Notes
    -----
    Each update adds, for every class c, the weighted counts of :func:`segmentation_counts`
    (tp, Σp, Σt) and the counted mass, and for every score the sum of its per-image values and
    how many images that sum holds, all in float64 (one flat buffer: a sync is one
    ``all_reduce``). :meth:`compute` gives, per class,

        micro Dice = 2·Σ_n tp / (Σ_n Σp + Σ_n Σt),   micro IoU = Σ_n tp / (Σ_n Σp + Σ_n Σt - Σ_n tp),
        micro class accuracy = Σ_n tp / Σ_n Σt,      macro X = mean over images n of X_n,

    and the overall pixel accuracy: the correct over the counted weight mass (pixels for
    "softmax"; pixels and channels for "sigmoid" and "none"), micro and macro.

    Absent classes and invalid input are kept apart with the counts themselves. An image whose
    denominator is exactly 0 for a class (the class absent from it) is left out of that class's
    macro mean when ``empty_score`` is NaN; ``<name>_images`` says how many images each entry
    averages. An image with invalid input (a NaN or infinite logit, say: see the module
    docstring) has NaN counts, so every micro score and every macro mean it enters is NaN from
    then on: a NaN in is a NaN out, never a silently skipped image. Eager updates raise for a bad
    target or weight instead.

    :meth:`update_counts` and :meth:`update_from_outputs` take the counts computed elsewhere,
    for example by the :class:`SegmentationCount` modules of an exported graph run with
    :class:`~unetweights.runtime.OnnxEvaluator` (build them with :meth:`count_modules`, so that
    they share these options).

    Examples
    --------
    >>> metrics = SegmentationMetrics(num_classes=3, ignore_index=255)
    >>> for logits, target, weight in loader:  # doctest: +SKIP
    ...     metrics.update(logits, target, weight)
    >>> scores = metrics.compute()  # doctest: +SKIP
    >>> scores["dice"], scores["dice_macro"], scores["accuracy"]  # doctest: +SKIP
    """

    def __init__(
        self,
        num_classes: Optional[int] = None,
        activation: str = "softmax",
        hard: bool = True,
        threshold: float = 0.5,
        include_background: bool = True,
        ignore_index: Optional[int] = None,
        empty_score: float = math.nan,
        sync_on_compute: bool = True,
        process_group: Optional[Any] = None,
        device: Optional[Any] = None,
    ) -> None:
        if num_classes is not None and (
            isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1
        ):
            raise ValueError(f"num_classes: expected a positive int or None, got {num_classes!r}")
        threshold = checked_real(threshold, "threshold", "a value in (0, 1)")
        _check_prediction_options(activation, threshold)
        empty_score = checked_real(empty_score, "empty_score", "a finite number or NaN")
        _check_empty_score(empty_score)
        if ignore_index is not None and (
            isinstance(ignore_index, bool) or not isinstance(ignore_index, (int, np.integer))
        ):
            raise ValueError(f"ignore_index: expected an int or None, got {ignore_index!r}")
        if process_group is not None and not (dist.is_available() and isinstance(process_group, dist.ProcessGroup)):
            raise ValueError(
                f"process_group: expected a torch.distributed ProcessGroup or None, got {type(process_group).__name__}"
            )
        self.num_classes = None if num_classes is None else int(num_classes)
        self.activation = activation
        self.hard = checked_flag(hard, "hard")
        self.threshold = threshold
        self.include_background = checked_flag(include_background, "include_background")
        self.ignore_index = None if ignore_index is None else int(ignore_index)
        self.empty_score = empty_score
        self.sync_on_compute = checked_flag(sync_on_compute, "sync_on_compute")
        self.process_group = process_group
        self.device = _checked_device(device)
        if self.num_classes is not None:
            self._check_classes(self.num_classes)
        self.reset()

    # -- state -----------------------------------------------------------------------------------

    def _scores(self) -> List[str]:
        return ["dice", "iou", "class_accuracy", "accuracy"] if self.hard else ["dice", "iou"]

    def _layout(self, classes: int) -> List[Tuple[str, int]]:
        """Each state's name and length, in the order of the one flat float64 buffer."""
        layout = [("tp", classes), ("sum_p", classes), ("sum_t", classes), ("mass", 1), ("images", 1)]
        for name in self._scores():
            size = 1 if name == "accuracy" else classes
            layout += [(f"{name}_sum", size), (f"{name}_images", size)]
        return layout

    def _views(self, buffer: Tensor, classes: int) -> Dict[str, Tensor]:
        views, start = {}, 0
        for name, size in self._layout(classes):
            views[name] = buffer[start : start + size]
            start += size
        return views

    def reset(self) -> None:
        """Forget every update; C is forgotten too unless ``num_classes`` was given."""
        self._classes: Optional[int] = self.num_classes
        # One flat buffer, so that a sync is a single all_reduce; the states are views into it.
        self._buffer: Optional[Tensor] = None
        self._state: Dict[str, Tensor] = {}

    def _check_classes(self, classes: int) -> None:
        if not self.include_background and classes < 2:
            raise ValueError(f"include_background: False leaves no class for an input with C = {classes} channel")

    def _allocate(self, classes: int, device: torch.device) -> None:
        size = sum(length for _, length in self._layout(classes))
        self._buffer = torch.zeros(size, dtype=torch.float64, device=device)
        self._state = self._views(self._buffer, classes)

    # -- updates ---------------------------------------------------------------------------------

    def update(self, input: Tensor, target: Tensor, weight: Optional[Tensor] = None) -> None:
        """Add a batch: logits (N, C, *) (or what ``activation`` says), its target and weight map.

        The layouts and checks are those of :func:`dice_score`; C must equal ``num_classes`` or
        the first update's C (ValueError naming ``input`` otherwise). A batch that raises adds
        nothing. An image with a NaN or infinite logit adds NaN counts (see the Notes).
        """
        if not isinstance(input, Tensor):
            raise ValueError(f"input: expected a torch tensor (N, C, *), got {type(input).__name__}")
        if input.dim() >= 2 and self._classes is not None and input.shape[1] != self._classes:
            raise ValueError(
                f"input: expected C = {self._classes} channels ({self._classes_source()}), "
                f"got shape {list(input.shape)}"
            )
        with torch.no_grad():
            tp, sum_p, sum_t, mass = segmentation_counts(
                input, target, weight, self.activation, self.hard, self.threshold, self.ignore_index
            )
        self._add(tp, sum_p, sum_t, mass)

    def update_counts(self, tp: Any, sum_p: Any, sum_t: Any, mass: Any) -> None:
        """Add the counts of a batch computed elsewhere (torch tensors or numpy arrays).

        Parameters
        ----------
        tp, sum_p, sum_t : Tensor or ndarray
            (N, C) each, for every class (background included), as :func:`segmentation_counts`
            returns them: non-negative, or NaN for an image with invalid input.
        mass : Tensor or ndarray
            (N,) (or (N, 1)): the counted weight mass of each image.

        They must come from the same options as this accumulator's (:meth:`count_modules` builds
        graph modules that do). ValueError naming the argument for a shape, a C, a dtype or a
        value that cannot be such counts: an infinite or negative count, tp > sum_p, tp > sum_t,
        sum_p + sum_t - tp > mass (negative true negatives) or, with "softmax", Σ_c sum_p ≠ mass
        (each counted pixel predicts one class). The relations hold within a relative √ε of the
        counts' dtype, for rounding. A batch that raises adds nothing.
        """
        counts = {name: _as_tensor(value, name) for name, value in zip(COUNT_NAMES, (tp, sum_p, sum_t, mass))}
        for name, value in counts.items():
            if not value.is_floating_point():
                raise ValueError(f"{name}: expected floating-point counts, got dtype {value.dtype}")
        first = counts["tp"]
        if first.dim() != 2 or first.shape[0] < 1:
            raise ValueError(f"tp: expected shape (N, C) with N >= 1, got {list(first.shape)}")
        if self._classes is not None and first.shape[1] != self._classes:
            raise ValueError(
                f"tp: expected shape (N, C) = [{first.shape[0]}, {self._classes}] ({self._classes_source()}; "
                f"every class, background included), got {list(first.shape)}"
            )
        for name in ("sum_p", "sum_t"):
            if list(counts[name].shape) != list(first.shape):
                raise ValueError(
                    f"{name}: expected the shape of tp, (N, C) = {list(first.shape)}, got {list(counts[name].shape)}"
                )
        mass_shape = list(counts["mass"].shape)
        if mass_shape not in ([first.shape[0]], [first.shape[0], 1]):
            raise ValueError(f"mass: expected shape (N,) = [{first.shape[0]}] (or (N, 1)), got {mass_shape}")
        for name, value in counts.items():
            if bool(torch.isinf(value).any()):
                raise ValueError(
                    f"{name}: expected finite counts (NaN for an image with invalid input), found "
                    f"{float(value[torch.isinf(value)][0])}"
                )
            if bool((value < 0).any()):
                raise ValueError(
                    f"{name}: expected non-negative counts (NaN for an image with invalid input), "
                    f"found {float(value[value < 0].min())}"
                )
        _check_count_relations(counts, self.activation)
        self._add(counts["tp"], counts["sum_p"], counts["sum_t"], counts["mass"].reshape(-1))

    def update_from_outputs(self, outputs: Mapping[str, Any], prefix: str = "") -> None:
        """Add the count outputs of a graph run: ``outputs[prefix + name]`` for tp, sum_p, sum_t and mass.

        ``outputs`` is what :class:`~unetweights.runtime.OnnxEvaluator` returns for a graph that
        holds :meth:`count_modules` (or an ``EvaluationResult.per_image``); other keys are
        ignored.
        """
        missing = [prefix + name for name in COUNT_NAMES if prefix + name not in outputs]
        if missing:
            raise ValueError(
                f"outputs: missing {missing}; put SegmentationMetrics.count_modules(prefix={prefix!r}) in the "
                f"graph's metrics (the outputs hold {sorted(outputs)})"
            )
        self.update_counts(*(outputs[prefix + name] for name in COUNT_NAMES))

    def count_modules(self, prefix: str = "") -> Dict[str, SegmentationCount]:
        """Graph metric modules that output this accumulator's counts, named ``prefix`` + tp, sum_p, sum_t, mass.

        Pass them as (part of) an :class:`~unetweights.evaluation.EvaluationGraph`'s ``metrics``.
        """
        return {
            prefix + name: SegmentationCount(name, self.activation, self.hard, self.threshold, self.ignore_index)
            for name in COUNT_NAMES
        }

    def _classes_source(self) -> str:
        return f"num_classes={self.num_classes}" if self.num_classes is not None else "the first update's C"

    def _fractions(self, tp: Tensor, sum_p: Tensor, sum_t: Tensor, mass: Tensor) -> Dict[str, Tuple[Tensor, Tensor]]:
        """Numerator and denominator of each score, per set: (S, C), or (S,) for the overall accuracy."""
        fractions = {"dice": _dice_fraction(tp, sum_p, sum_t), "iou": _iou_fraction(tp, sum_p, sum_t)}
        if self.hard:
            fractions["class_accuracy"] = (tp, sum_t)
            fractions["accuracy"] = _accuracy_fraction(tp, sum_p, sum_t, mass.unsqueeze(1), self.activation)
        return fractions

    def _add(self, tp: Tensor, sum_p: Tensor, sum_t: Tensor, mass: Tensor) -> None:
        classes = tp.shape[1]
        if self._buffer is None:
            self._check_classes(classes)
            self._allocate(classes, tp.device if self.device is None else self.device)
            self._classes = classes
        state = self._state
        device = state["tp"].device
        tp, sum_p, sum_t, mass = (x.to(device=device, dtype=torch.float64) for x in (tp, sum_p, sum_t, mass))
        state["tp"] += tp.sum(0)
        state["sum_p"] += sum_p.sum(0)
        state["sum_t"] += sum_t.sum(0)
        state["mass"] += mass.sum()
        state["images"] += tp.shape[0]
        skip_empty = math.isnan(self.empty_score)
        for name, (num, den) in self._fractions(tp, sum_p, sum_t, mass).items():
            # den == 0 is an absent class, skipped when empty_score is NaN; a NaN den (invalid
            # input) is not 0, so it counts and its NaN reaches the sum.
            counted = den != 0 if skip_empty else torch.ones_like(den, dtype=torch.bool)
            score = ratio_or(num, den, self.empty_score)
            state[f"{name}_sum"] += torch.where(counted, score, torch.zeros_like(score)).sum(0)
            state[f"{name}_images"] += counted.sum(0)

    # -- results ---------------------------------------------------------------------------------

    def _synced(self) -> Dict[str, Tensor]:
        """The states summed over the process group (or this process's own when not syncing)."""
        syncing = (
            self.sync_on_compute
            and dist.is_available()
            and dist.is_initialized()
            and dist.get_world_size(self.process_group) > 1
        )
        if syncing:
            self._check_ranks_agree()
        if self._buffer is None:
            if self._classes is None:
                raise RuntimeError(
                    "compute: no update yet, so C is unknown; call update() first (or pass num_classes, so "
                    "that a process without data can take part in a distributed sync)"
                )
            self._allocate(self._classes, self._state_device(syncing))
        if not syncing:
            return self._state
        # A copy: the local states stay this process's own, so updates can go on after compute().
        buffer = self._buffer.clone()
        dist.all_reduce(buffer, op=dist.ReduceOp.SUM, group=self.process_group)
        return self._views(buffer, self._classes)

    def _state_device(self, syncing: bool) -> torch.device:
        if self._buffer is not None:
            return self._buffer.device
        if self.device is not None:
            return self.device
        # A process without data: where the group's collectives run (NCCL moves CUDA tensors only;
        # gloo, and a "cpu:gloo,cuda:nccl" group, take CPU ones).
        if syncing and dist.get_backend(self.process_group) == "nccl":
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")

    def _check_ranks_agree(self) -> None:
        """Raise the same error on every process of the group unless their states can be summed.

        The all_reduce of buffers of different lengths aborts inside the backend (gloo: SIGABRT on
        one process, a reset connection on the other) instead of raising, so C and the options
        that give the buffer its layout and its states their meaning are gathered first.
        """
        activations = ("softmax", "sigmoid", "none")
        mine = [
            float(self._classes or 0), float(self.hard), float(activations.index(self.activation)), self.empty_score
        ]
        header = torch.tensor(mine, dtype=torch.float64, device=self._state_device(True))
        gathered = [torch.empty_like(header) for _ in range(dist.get_world_size(self.process_group))]
        dist.all_gather(gathered, header, group=self.process_group)
        rows = torch.stack(gathered).cpu().tolist()
        unknown = [rank for rank, row in enumerate(rows) if row[0] == 0]
        if unknown:
            raise RuntimeError(
                f"compute: C is unknown on rank(s) {unknown}, which had no update; pass num_classes, so that a "
                f"process without data can take part in a distributed sync"
            )
        shown = {
            "num_classes": [int(row[0]) for row in rows],
            "hard": [bool(row[1]) for row in rows],
            "activation": [repr(activations[int(row[2])]) for row in rows],
            # NaN != NaN, but two NaN empty scores agree.
            "empty_score": ["nan" if math.isnan(row[3]) else row[3] for row in rows],
        }
        for name, values in shown.items():
            if len(set(values)) > 1:
                what = "C (num_classes or the first update's)" if name == "num_classes" else name
                raise ValueError(
                    f"{name} differs across ranks: {_ranks_holding(values)}; every process must compute with "
                    f"the same {what}"
                )

    def compute(self) -> Dict[str, Tensor]:
        """The scores of everything added since the last :meth:`reset` (all processes' when syncing).

        Returns
        -------
        dict of str to Tensor
            float64 tensors on the states' device, with C' = C, or C - 1 without the background:

            - "dice", "iou": micro Dice and IoU per class, (C',);
            - "dice_macro", "iou_macro": the mean over images of the per-image Dice and IoU, (C',);
            - "class_accuracy", "class_accuracy_macro": tp / Σt per class, micro and macro, (C',);
            - "accuracy", "accuracy_macro": the overall pixel accuracy, micro and macro, ();
            - "<score>_images" for each score above: the number of images its macro mean
              averages, int64, (C',) or ();
            - "images": the number of images added, int64, ().

            The accuracy keys are left out with ``hard=False``.

        Raises
        ------
        RuntimeError
            When no image was added (on any process, when syncing), or when C is unknown
            because this process (or, when syncing, any process) has had no update and no
            ``num_classes``.
        ValueError
            When syncing, on every process, if the processes differ in C, ``hard``,
            ``activation`` or ``empty_score``.
        """
        state = self._synced()
        if float(state["images"]) == 0:
            raise RuntimeError("compute: no image was added; call update() first")
        first = 0 if self.include_background else 1
        totals = [state[name].unsqueeze(0) for name in ("tp", "sum_p", "sum_t")]
        result: Dict[str, Tensor] = {}
        for name, (num, den) in self._fractions(*totals, state["mass"]).items():
            micro = ratio_or(num, den, self.empty_score)[0]
            macro = ratio_or(state[f"{name}_sum"], state[f"{name}_images"], self.empty_score)
            images = state[f"{name}_images"].long()
            if name == "accuracy":
                macro, images = macro[0], images[0]
            else:
                micro, macro, images = micro[first:], macro[first:], images[first:]
            result[name] = micro
            result[f"{name}_macro"] = macro
            result[f"{name}_images"] = images
        result["images"] = state["images"][0].long()
        return result


__all__: List[str] = [
    "DiceScore",
    "IoUScore",
    "PixelAccuracy",
    "SegmentationCount",
    "SegmentationMetrics",
    "dice_score",
    "iou_score",
    "pixel_accuracy",
    "segmentation_counts",
]
