"""Losses that take a per-pixel weight map, identical eager, scripted, compiled and exported.

Every loss has a functional form ``name(input, target, weight=None, <options>)`` and an
``nn.Module`` twin that keeps the options and runs ``forward(input, target, weight=None)``.
Layout is torch's: ``input`` (N, C, *spatial) logits, ``target`` (N, *spatial) class indices or
(N, C, *spatial) probabilities, ``weight`` (N, *spatial), finite and non-negative.

The reduction rule, the same for every loss
-------------------------------------------
- "none" returns w·ℓ per element; set losses (Dice, Tversky, Lovasz) return one value per set
  instead: per image, or per image and class, as each docstring says.
- "sum" is Σ w·ℓ.
- "mean" is Σ w·ℓ / Σ w over the elements that are not ignored, where w folds in the class weight
  where a loss has one. With no weight map it is the plain mean.
- "per_image" returns shape (N,): entry n is "mean" applied to image n alone. Set losses need
  ``per_image=True`` for it. Evaluation graphs use it for their per-image losses.
- If Σ w = 0 (everything ignored, all weights zero) the loss is 0 with zero gradient, never NaN.
- Scale: multiplying ``weight`` by a positive constant leaves "mean" and "per_image" unchanged and
  scales "none" and "sum" of the per-pixel losses; the set losses are unchanged for every
  reduction, their ``smooth`` being counted in the map's own unit (each docstring says which).

With ``weight=None`` each loss equals its ``torch.nn.functional`` counterpart (cross_entropy,
nll_loss, binary_cross_entropy_with_logits, binary_cross_entropy, mse_loss, l1_loss, smooth_l1_loss,
huber_loss, kl_div) for every reduction, except that a mean over nothing is 0 where torch gives NaN.

Execution modes
---------------
The sources are plain, type-annotated torch: no data-dependent shapes, no ``.item()`` in the
computation, label smoothing written out. Bad shapes, dtypes and options raise ``ValueError``
naming the argument in every mode (``torch.jit.Error`` carrying the same text under TorchScript;
under ``torch.compile(fullgraph=True)`` Dynamo's ``Unsupported`` error, whose message carries it).
Options are checked at construction and in the functional forms; NaN and infinities are refused.

A NaN in is a NaN out
---------------------
A NaN or infinite logit makes the value of its image NaN (every value of the image for set
losses; the regression losses carry an infinite input on as inf), in every mode: the empty-set
rules apply only to what is truly empty. Checks that read values (NaN, infinite or negative
weights, class indices outside [0, C) that are not ``ignore_index``, binary or probability
targets outside [0, 1], finite probabilities outside [0, 1] given to
``weighted_binary_cross_entropy``) raise in eager mode and TorchScript; inside ``torch.compile`` and
``torch.export`` graphs, which cannot raise on a value, they make that image's values NaN.
float16 and bfloat16 inputs are accumulated in float32, and the loss is float32.

Importing this package does not touch TorchScript, so it emits no deprecation warning;
``torch.jit.script(loss)`` is the caller's choice.
"""

from typing import List

from .._stage.morphology import distance_transform, soft_skeleton
from .binary import WeightedBCELoss, WeightedBCEWithLogitsLoss, weighted_bce_with_logits, weighted_binary_cross_entropy
from .classification import (
    FocalLoss,
    WeightedCrossEntropyLoss,
    WeightedNLLLoss,
    focal_loss,
    weighted_cross_entropy,
    weighted_nll_loss,
)
from .compose import CombinedLoss, DeepSupervisionLoss, resize_area, resize_nearest, with_reduction
from .distance import BoundaryLoss, HausdorffDTLoss, boundary_loss, hausdorff_dt_loss
from .lovasz import LovaszHingeLoss, LovaszSoftmaxLoss, lovasz_hinge, lovasz_softmax
from .overlap import (
    GeneralizedDiceLoss,
    MCCLoss,
    SoftDiceLoss,
    SoftJaccardLoss,
    TverskyLoss,
    generalized_dice_loss,
    mcc_loss,
    soft_dice_loss,
    soft_jaccard_loss,
    tversky_loss,
)
from .regression import (
    WeightedHuberLoss,
    WeightedKLDivLoss,
    WeightedL1Loss,
    WeightedMSELoss,
    WeightedSmoothL1Loss,
    weighted_huber_loss,
    weighted_kl_div,
    weighted_l1_loss,
    weighted_mse_loss,
    weighted_smooth_l1_loss,
)
from .skeleton import ClDiceLoss, SkeletonRecallLoss, cldice_loss, skeleton_recall_loss

__all__: List[str] = [
    "BoundaryLoss",
    "ClDiceLoss",
    "CombinedLoss",
    "DeepSupervisionLoss",
    "FocalLoss",
    "GeneralizedDiceLoss",
    "HausdorffDTLoss",
    "LovaszHingeLoss",
    "LovaszSoftmaxLoss",
    "MCCLoss",
    "SkeletonRecallLoss",
    "SoftDiceLoss",
    "SoftJaccardLoss",
    "TverskyLoss",
    "WeightedBCELoss",
    "WeightedBCEWithLogitsLoss",
    "WeightedCrossEntropyLoss",
    "WeightedHuberLoss",
    "WeightedKLDivLoss",
    "WeightedL1Loss",
    "WeightedMSELoss",
    "WeightedNLLLoss",
    "WeightedSmoothL1Loss",
    "boundary_loss",
    "cldice_loss",
    "distance_transform",
    "focal_loss",
    "generalized_dice_loss",
    "hausdorff_dt_loss",
    "lovasz_hinge",
    "lovasz_softmax",
    "mcc_loss",
    "resize_area",
    "resize_nearest",
    "skeleton_recall_loss",
    "soft_dice_loss",
    "soft_jaccard_loss",
    "soft_skeleton",
    "tversky_loss",
    "weighted_bce_with_logits",
    "weighted_binary_cross_entropy",
    "weighted_cross_entropy",
    "weighted_huber_loss",
    "weighted_kl_div",
    "weighted_l1_loss",
    "weighted_mse_loss",
    "weighted_nll_loss",
    "weighted_smooth_l1_loss",
    "with_reduction",
]
