"""Losses on skeletons, for thin structures: clDice and skeleton recall (functional forms and Modules).

clDice and skeleton recall are for thin structures (vessels, neurites, membranes): clDice
compares soft skeletons made by min/max pooling (:func:`soft_skeleton`); skeleton recall scores
the soft prediction on a tubed skeleton of the target
(:func:`unetweights.weightmaps.tubed_skeleton`), precomputed. Both are set losses, reduced like
those of :mod:`.overlap`. The losses on distance maps (boundary, Hausdorff-DT) are in
:mod:`.distance`.

The losses follow the package's rules (weight map, reduction, NaN in is NaN out, the same
numbers eager, scripted, compiled and exported); each docstring states its formula.
"""

from typing import List, Optional

import torch
from torch import Tensor

from .._stage.inputs import SetOptions, check_set_options, reduce_sets, scored_parts, set_mass
from .._stage.morphology import soft_skeleton
from .._stage.options import checked_flag, checked_int
from .._stage.reduce import checking_values, poison_rows, ratio_or


def _check_iterations(iterations: int) -> None:
    if not torch.jit.is_scripting() and checking_values():
        checked_int(iterations, "iterations", "an integer >= 0")
    if iterations < 0:
        raise ValueError(f"iterations: expected an integer >= 0, got {iterations}")


def _set_sums(x: Tensor, pixel_weight: Optional[Tensor], per_image: bool) -> Tensor:
    """Σ of x (N, C, *) over the spatial dims, weighted by ``pixel_weight``; over the batch too unless ``per_image``."""
    if pixel_weight is not None:
        x = x * pixel_weight
    sums = x.reshape(x.shape[0], x.shape[1], -1).sum(-1)
    return sums if per_image else sums.sum(0, keepdim=True)


def _reduce_set_scores(
    score: Tensor, mass: Tensor, poison: Tensor, per_image: bool, include_background: bool, reduction: str
) -> Tensor:
    """1 - ``score`` per set and class (N, C') or (1, C'), reduced like the set losses.

    ``mass`` is each set's weight Σ w (:func:`._inputs.set_mass`); a poisoned image makes its
    set's loss NaN.
    """
    loss = 1.0 - score
    if per_image:
        loss = poison_rows(loss, poison)
    else:
        loss = loss + poison.sum()
    return reduce_sets(loss, mass, None, include_background, reduction)


def cldice_loss(
    input: Tensor,
    target: Tensor,
    weight: Optional[Tensor] = None,
    activation: str = "softmax",
    iterations: int = 3,
    smooth: float = 1.0,
    per_image: bool = False,
    include_background: bool = True,
    ignore_index: Optional[int] = None,
    reduction: str = "mean",
) -> Tensor:
    """Soft clDice loss (Shit et al. 2021) with a per-pixel weight map, per set and class.

    With S_P, S_T the soft skeletons (:func:`soft_skeleton`) of the prediction p and the target
    t, topology precision and sensitivity are

        Tprec = (Σ w·S_P·t + s) / (Σ w·S_P + s),    Tsens = (Σ w·S_T·p + s) / (Σ w·S_T + s),

    and the loss is 1 - 2·Tprec·Tsens / (Tprec + Tsens). Gradients flow through both p and
    S_P. Parameters as in :func:`soft_dice_loss`; ``iterations`` (≥ 0) thinning steps should
    reach the half-width of the thickest structure; ``smooth`` s ≥ 0 (1 in the paper), counted in
    pixels of the set's mean weight as for :func:`soft_dice_loss`, so that the loss is invariant
    to multiplying ``weight`` by a positive constant, for every reduction.

    Notes
    -----
    MONAI's ``SoftclDiceLoss`` sums over the channels too, giving one value per image; with one
    scored channel (a sigmoid output, or two classes without the background) and ``smooth``
    1e-4 apart, this loss equals it with weight=None and ``per_image=True``. A class with an
    empty skeleton on both sides scores 0/0 as 1 with ``smooth=0`` (loss 0), never NaN. A set
    with no weight mass has loss 0 and is left out of the mean. Invalid input makes its set's
    loss NaN.
    """
    check_set_options(input, smooth, None, reduction, per_image)
    _check_iterations(iterations)
    prob, truth, pixel_weight, poison = scored_parts(
        input, target, weight, activation, include_background, ignore_index
    )
    mass, unit = set_mass(pixel_weight, weight is not None, list(prob.shape), poison, per_image)
    s = smooth * unit
    skeleton_p = soft_skeleton(prob, iterations)
    skeleton_t = soft_skeleton(truth, iterations)
    precision = ratio_or(
        _set_sums(skeleton_p * truth, pixel_weight, per_image) + s,
        _set_sums(skeleton_p, pixel_weight, per_image) + s,
        1.0,
    )
    sensitivity = ratio_or(
        _set_sums(skeleton_t * prob, pixel_weight, per_image) + s,
        _set_sums(skeleton_t, pixel_weight, per_image) + s,
        1.0,
    )
    score = ratio_or(2.0 * precision * sensitivity, precision + sensitivity, 1.0)
    return _reduce_set_scores(score, mass, poison, per_image, include_background, reduction)


def skeleton_recall_loss(
    input: Tensor,
    skeleton: Tensor,
    weight: Optional[Tensor] = None,
    activation: str = "softmax",
    smooth: float = 1.0,
    per_image: bool = False,
    ignore_index: Optional[int] = None,
    reduction: str = "mean",
) -> Tensor:
    """Skeleton recall loss (Kirchhoff et al. 2024) with a per-pixel weight map, per set and class.

    1 - (Σ w·p_c·s_c + smooth) / (Σ w·s_c + smooth): the soft recall of class c's tubed skeleton
    s_c (:func:`unetweights.weightmaps.tubed_skeleton`, precomputed) under the prediction p_c.
    It rewards predictions that keep thin structures connected, and is added to a region loss.

    Parameters
    ----------
    input : Tensor
        Logits (N, C, *), or probabilities with ``activation="none"``.
    skeleton : Tensor
        The tubed skeleton: class indices (N, *) where 0 is "no skeleton" and c > 0 a tube of
        class c (softmax or none; the background class 0 is not scored, as in the paper), or a
        binary (N, C, *) tube per channel (every channel scored; needed for "sigmoid").
    weight, activation, smooth, per_image, ignore_index, reduction
        As in :func:`soft_dice_loss` (``smooth`` ≥ 0, 1 by default as in the paper, counted in
        pixels of the set's mean weight: the loss is invariant to multiplying ``weight`` by a
        positive constant, for every reduction).

    Notes
    -----
    A class without skeleton in a set scores smooth / smooth = 1 (loss 0), and 0/0 with
    ``smooth=0`` is 1 too, never NaN; it still counts in the mean. A set with no weight mass has
    loss 0 and is left out of the mean. Invalid input makes its set's loss NaN.
    """
    check_set_options(input, smooth, None, reduction, per_image)
    include_background = skeleton.dim() == input.dim()
    prob, tube, pixel_weight, poison = scored_parts(
        input, skeleton, weight, activation, include_background, ignore_index, "skeleton"
    )
    mass, unit = set_mass(pixel_weight, weight is not None, list(prob.shape), poison, per_image)
    s = smooth * unit
    recall = ratio_or(
        _set_sums(prob * tube, pixel_weight, per_image) + s, _set_sums(tube, pixel_weight, per_image) + s, 1.0
    )
    return _reduce_set_scores(recall, mass, poison, per_image, include_background, reduction)


class ClDiceLoss(SetOptions):
    """Module form of :func:`cldice_loss`; options are fixed at construction."""

    def __init__(
        self,
        activation: str = "softmax",
        iterations: int = 3,
        smooth: float = 1.0,
        per_image: bool = False,
        include_background: bool = True,
        ignore_index: Optional[int] = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(activation, smooth, per_image, ignore_index, reduction)
        self.iterations = checked_int(iterations, "iterations", "an integer >= 0")
        _check_iterations(self.iterations)
        self.include_background = checked_flag(include_background, "include_background")

    def forward(self, input: Tensor, target: Tensor, weight: Optional[Tensor] = None) -> Tensor:
        return cldice_loss(
            input=input,
            target=target,
            weight=weight,
            activation=self.activation,
            iterations=self.iterations,
            smooth=self.smooth,
            per_image=self.per_image,
            include_background=self.include_background,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
        )


class SkeletonRecallLoss(SetOptions):
    """Module form of :func:`skeleton_recall_loss`: ``forward(input, skeleton, weight=None)``."""

    def __init__(
        self,
        activation: str = "softmax",
        smooth: float = 1.0,
        per_image: bool = False,
        ignore_index: Optional[int] = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(activation, smooth, per_image, ignore_index, reduction)

    def forward(self, input: Tensor, skeleton: Tensor, weight: Optional[Tensor] = None) -> Tensor:
        return skeleton_recall_loss(
            input=input,
            skeleton=skeleton,
            weight=weight,
            activation=self.activation,
            smooth=self.smooth,
            per_image=self.per_image,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
        )


__all__: List[str] = [
    "ClDiceLoss",
    "SkeletonRecallLoss",
    "cldice_loss",
    "skeleton_recall_loss",
]
