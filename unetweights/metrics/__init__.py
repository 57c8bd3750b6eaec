"""Segmentation metrics with a per-pixel weight map: Dice, IoU and pixel accuracy, per image and
over a dataset; and surface metrics (Hausdorff distance at a percentile, average surface distance,
normalized surface Dice), whose definitions and empty rules are in :mod:`._surface`.

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

A class absent from an image's target but predicted there has a denominator Σp > 0, so by
default its Dice and IoU are 0: nnU-Net's rule, under which a false positive in an image without
the class counts against it. ``ignore_empty=True`` (:func:`dice_score`, :func:`iou_score`, their
Modules and :class:`SegmentationMetrics`) is MONAI's rule (``ignore_empty=True``, the default of
its ``DiceMetric``, ``compute_dice``, ``MeanIoU`` and ``compute_iou``): a class absent from the
image's target, Σt = 0 with Σt the weighted count, scores ``empty_score`` whatever was
predicted, so such images drop out of the class's mean. With ``empty_score`` NaN (the default)
this reproduces MONAI's values and means; MONAI's ``ignore_empty=False`` is ours with
``empty_score=1.0``. Per-class accuracy (tp / Σt) follows MONAI's rule already and takes no
``ignore_empty``. A NaN Σt (invalid input) is not 0: the option never turns a NaN into a score.

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

# COUNT_NAMES, the order of the counts, is public but (as before the split) not in __all__.
from ._accumulator import SegmentationMetrics
from ._per_image import (
    COUNT_NAMES,
    DiceScore,
    IoUScore,
    PixelAccuracy,
    SegmentationCount,
    dice_score,
    iou_score,
    pixel_accuracy,
    segmentation_counts,
)
from ._surface import average_surface_distance, hausdorff_distance, surface_counts, surface_dice
from ._surface_modules import (
    AverageSurfaceDistance,
    HausdorffDistance,
    SurfaceCount,
    SurfaceDice,
    SurfaceGroup,
    surface_groups,
)

__all__ = [
    "AverageSurfaceDistance",
    "DiceScore",
    "HausdorffDistance",
    "IoUScore",
    "PixelAccuracy",
    "SegmentationCount",
    "SegmentationMetrics",
    "SurfaceCount",
    "SurfaceDice",
    "average_surface_distance",
    "dice_score",
    "hausdorff_distance",
    "iou_score",
    "pixel_accuracy",
    "segmentation_counts",
    "surface_counts",
    "surface_dice",
]
