"""Soft Dice, Jaccard, generalized Dice, MCC and Tversky losses, with the weight map in the counts.

All are set losses: they compare a set of pixels at once. With ``per_image=True`` each
image is its own set; otherwise the batch is pooled into one. For each set and class

    tp = Σ w·p·t,    fp = Σ w·p·(1 - t),    fn = Σ w·(1 - p)·t,

where p is the activated prediction, t the target and w the weight map (zero where the target is
``ignore_index``), and MCC's tn = Σ w - tp - fp - fn. The weight multiplies the counts once: it
is never squared, and never applied to the logits before the activation.
"""

import math
from typing import List, Optional

import torch
from torch import Tensor

from .._stage.inputs import SetOptions, check_set_options, overlap_counts, reduce_sets
from .._stage.options import checked_flag, checked_real
from .._stage.reduce import as_option_tensor, check_option_range, ratio_or, safe_divide


def soft_dice_loss(
    input: Tensor,
    target: Tensor,
    weight: Optional[Tensor] = None,
    activation: str = "softmax",
    smooth: float = 1.0,
    per_image: bool = False,
    include_background: bool = True,
    squared: bool = False,
    class_weight: Optional[Tensor] = None,
    ignore_index: Optional[int] = None,
    reduction: str = "mean",
) -> Tensor:
    """Soft Dice loss with a per-pixel weight map, 1 - (2·tp + s) / (2·tp + fp + fn + s).

    Parameters
    ----------
    input : Tensor
        Logits (N, C, *), or probabilities with ``activation="none"``.
    target : Tensor
        Class indices (N, *) (softmax or none), or a binary/probability target (N, C, *).
    weight : Tensor, optional
        Per-pixel weight map (N, *) (or (N, 1, *)), finite and non-negative. It enters tp, fp and
        fn linearly, after the activation.
    activation : str
        "softmax" (over dim 1), "sigmoid" (per channel; needs a (N, C, *) target) or "none".
    smooth : float
        s ≥ 0 pixels, added to both numerator and denominator. With a weight map it is counted in
        pixels of the set's mean weight, s·w̄ with w̄ = Σ w / #{w > 0} over the counted pixels
        (:func:`._inputs.set_mass`); without one, s itself, as the peers (MONAI, smp) add it.
    per_image : bool
        True: one Dice per image and class. False: the batch is pooled into one set per class.
    include_background : bool
        False drops channel 0 from the loss (it still takes part in the softmax).
    squared : bool
        Use Σ w·p² + Σ w·t² as the denominator (Milletari et al.'s V-Net form) instead of
        Σ w·p + Σ w·t = 2·tp + fp + fn.
    class_weight : Tensor, optional
        Weight of each class in the mean, shape (C,) (entry 0 is dropped with
        ``include_background=False``).
    ignore_index : int, optional
        Pixels whose index target equals it count nowhere. None (the default) allows none, which
        saves a masking pass.
    reduction : str
        "none": cw·(1 - Dice) per set and class, shape (N, C') with ``per_image`` and (1, C')
        otherwise. "mean": Σ cw·(1 - Dice) / Σ cw over counted sets. "sum": Σ cw·(1 - Dice).
        "per_image" (needs ``per_image=True``): the mean over each image's classes, shape (N,).

    Notes
    -----
    Scale: the loss is invariant to multiplying ``weight`` by a positive constant, for every
    reduction: the counts and the smoothing term s·w̄ all scale with it.

    Empty ground truth: a class absent from a set's target (Σ w·t = 0) scores
    Dice = s·w̄ / (Σ w·p + s·w̄), so the loss penalises any predicted mass. With ``smooth=0`` and
    nothing predicted either, 0/0 is defined as Dice = 1 (loss 0), never NaN. A set whose pixels
    are all ignored or zero-weighted has loss 0 with zero gradient and is left out of the mean.
    These rules apply to sets that are truly empty: a NaN or infinite logit, a NaN target or (in
    a compiled or exported graph, where nothing can raise) an invalid weight or class index makes
    its set's loss NaN. float16 and bfloat16 inputs are counted in float32 (the loss is float32).
    """
    class_weight = check_set_options(input, smooth, class_weight, reduction, per_image)
    tp, sum_p, sum_t, mass, unit = overlap_counts(
        input, target, weight, activation, ignore_index, per_image, include_background, squared
    )
    s = smooth * unit
    dice = ratio_or(2.0 * tp + s, sum_p + sum_t + s, 1.0)
    return reduce_sets(1.0 - dice, mass, class_weight, include_background, reduction)


def soft_jaccard_loss(
    input: Tensor,
    target: Tensor,
    weight: Optional[Tensor] = None,
    activation: str = "softmax",
    smooth: float = 1.0,
    per_image: bool = False,
    include_background: bool = True,
    class_weight: Optional[Tensor] = None,
    ignore_index: Optional[int] = None,
    reduction: str = "mean",
) -> Tensor:
    """Soft Jaccard (IoU) loss with a per-pixel weight map, 1 - (tp + s) / (tp + fp + fn + s).

    tp = Σ w·p·t, fp = Σ w·p - tp, fn = Σ w·t - tp, as for :func:`soft_dice_loss`, whose
    parameters (but ``squared``) this takes with the same meaning and defaults. The Jaccard index
    J and the Dice score D of the same counts are tied by J = D / (2 - D); with ``smooth`` s this
    loss equals MONAI's ``DiceLoss(jaccard=True)`` at smooth_nr = smooth_dr = 2·s.

    Notes
    -----
    ``smooth`` is counted in pixels of the set's mean weight, and the loss is invariant to
    multiplying ``weight`` by a positive constant, as for :func:`soft_dice_loss`. Empty sets
    follow it too: a class absent from a set's target scores s·w̄ / (Σ w·p + s·w̄); with ``smooth=0`` and nothing predicted, 0/0 is J = 1 (loss 0), never NaN;
    a set whose pixels all weigh 0 or are ignored has loss 0 and is left out of the mean. A NaN or
    infinite logit, a NaN target, or (compiled or exported) an invalid weight or class index makes
    its set's loss NaN. float16 and bfloat16 inputs are counted in float32.
    """
    class_weight = check_set_options(input, smooth, class_weight, reduction, per_image)
    tp, sum_p, sum_t, mass, unit = overlap_counts(
        input, target, weight, activation, ignore_index, per_image, include_background, False
    )
    s = smooth * unit
    jaccard = ratio_or(tp + s, sum_p + sum_t - tp + s, 1.0)
    return reduce_sets(1.0 - jaccard, mass, class_weight, include_background, reduction)


def generalized_dice_loss(
    input: Tensor,
    target: Tensor,
    weight: Optional[Tensor] = None,
    activation: str = "softmax",
    smooth: float = 1e-5,
    per_image: bool = False,
    include_background: bool = True,
    ignore_index: Optional[int] = None,
    reduction: str = "mean",
) -> Tensor:
    """Generalized Dice loss (Sudre et al. 2017) with a per-pixel weight map.

    1 - (2 Σ_k v_k tp_k + s) / (Σ_k v_k (Σp_k + Σt_k) + s), one value per set, with every count
    taken as a fraction of the set's weight mass M = Σ w: tp_k = Σ w·p·t_k / M, Σp_k = Σ w·p_k / M,
    Σt_k = Σ w·t_k / M, and class weights v_k = 1 / Σt_k², so that small structures count as much
    as large ones. tp, Σp and Σt are the weighted counts of :func:`soft_dice_loss`, whose
    ``activation``, ``per_image``, ``include_background`` and ``ignore_index`` this takes;
    ``smooth`` s ≥ 0 defaults to 1e-5.

    Scale: because the counts are fractions, the loss is invariant to multiplying ``weight`` by a
    positive constant and does not depend on the image size, for every reduction, and s stays
    negligible beside the denominator, which is at least the number of present classes (an inverted
    prediction scores 1 - O(s), whatever the map's scale). In absolute counts, as MONAI's
    ``GeneralizedDiceLoss`` takes them, this is the loss with smoothing s / M: with weight=None
    this loss equals MONAI's with ``smooth_nr = smooth_dr = smooth / M`` (``batch=not
    per_image``; M is the set's pixel count). MONAI's own default, 1e-5 in absolute units, grows
    against v_k = 1/Σt² as the volume grows and pulls a wrong prediction's loss well below 1.

    A class absent from a set's target (v_k infinite) takes the largest weight of the set's
    present classes, as MONAI's does. A set with no target at all has every v_k = 0: the loss is
    1 - s / s = 0 (and 0/0 with ``smooth=0`` is a score of 1), never NaN.

    Returns (``reduction``): "none" one value per set, shape (N, 1) with ``per_image`` and (1, 1)
    otherwise; "mean" the mean over sets with weight mass; "sum"; "per_image" (needs
    ``per_image=True``) shape (N,). Invalid input makes its set's value NaN (see
    :func:`soft_dice_loss`). The class weights carry no gradient.
    """
    check_set_options(input, smooth, None, reduction, per_image)
    tp, sum_p, sum_t, mass, _ = overlap_counts(
        input, target, weight, activation, ignore_index, per_image, include_background, False
    )
    # Counts as fractions of the set's weight mass: the class weights and the sums below are then
    # free of the map's scale and of the set's size, and smooth is measured against them.
    tp, sum_p, sum_t = safe_divide(tp, mass), safe_divide(sum_p, mass), safe_divide(sum_t, mass)
    squared_volume = (sum_t * sum_t).detach()
    present = squared_volume != 0
    volume_weight = torch.where(
        present, 1.0 / torch.where(present, squared_volume, torch.ones_like(sum_t)), torch.zeros_like(sum_t)
    )
    heaviest = volume_weight.amax(1, keepdim=True).expand_as(volume_weight)
    volume_weight = torch.where(present, volume_weight, heaviest)
    num = 2.0 * (volume_weight * tp).sum(1, keepdim=True) + smooth
    den = (volume_weight * (sum_p + sum_t)).sum(1, keepdim=True) + smooth
    score = ratio_or(num, den, 1.0)
    return reduce_sets(1.0 - score, mass, None, include_background, reduction)


def mcc_loss(
    input: Tensor,
    target: Tensor,
    weight: Optional[Tensor] = None,
    activation: str = "softmax",
    smooth: float = 1e-5,
    per_image: bool = False,
    include_background: bool = True,
    class_weight: Optional[Tensor] = None,
    ignore_index: Optional[int] = None,
    reduction: str = "mean",
) -> Tensor:
    """Matthews correlation coefficient loss (Abhishek & Hamarneh 2021) with a per-pixel weight map.

    1 - MCC per set and class, with MCC = (tp·tn - fp·fn) / √((tp+fp)(tp+fn)(tn+fp)(tn+fn) + s)
    on the weighted soft counts tp = Σ w·p·t, fp = Σ w·p - tp, fn = Σ w·t - tp and
    tn = Σ w - tp - fp - fn, where Σ w is the set's weight mass (its pixel count with
    weight=None). Unlike Dice, MCC rewards true negatives, and a wrong prediction can score
    below 0 (loss up to 2). Where a set has no positives or no negatives at all (an empty class,
    even predicted empty) the coefficient is undefined (0/0): it is 0 there, a loss of 1, as in
    MONAI (smp adds eps to every count instead, and gives 0.5 for an empty set predicted empty). Parameters are those of
    :func:`soft_dice_loss` (but ``squared``); ``smooth`` s ≥ 0 enters the radicand only, as in
    MONAI's ``MCCLoss(smooth_nr=0, smooth_dr=s)``, which this loss equals with weight=None
    (``batch=not per_image``). The radicand is a fourth power of the counts, so with a weight map
    s is taken as s·w̄⁴ (w̄ the set's mean weight, see :func:`soft_dice_loss`): the loss is
    invariant to multiplying ``weight`` by a positive constant, for every reduction.

    Notes
    -----
    A set and class with fp = fn = 0 is a perfect prediction: loss 0, even where a margin of
    the denominator is 0 (MONAI's rule too). Where a margin is 0 otherwise and ``smooth=0``,
    MCC is defined as 0 (loss 1), as scikit-learn does, never NaN. A set with no weight mass has
    loss 0 and is left out of the mean. The ratio is taken in float64: the radicand is a
    fourth power of the counts. Invalid input makes its set's loss NaN (see
    :func:`soft_dice_loss`).
    """
    class_weight = check_set_options(input, smooth, class_weight, reduction, per_image)
    tp, sum_p, sum_t, mass, unit = overlap_counts(
        input, target, weight, activation, ignore_index, per_image, include_background, False
    )
    tp64, sum_p64, sum_t64 = tp.double(), sum_p.double(), sum_t.double()
    fp, fn = sum_p64 - tp64, sum_t64 - tp64
    tn = mass.double() - sum_p64 - fn
    # The radicand is a fourth power of the counts: smooth scales with the fourth power of the unit.
    radicand = sum_p64 * sum_t64 * (tn + fp) * (tn + fn) + smooth * unit.double() ** 4
    # sqrt at 0 has an infinite slope: keep it out of the graph where the ratio is not taken.
    den = torch.sqrt(torch.where(radicand == 0, torch.ones_like(radicand), radicand))
    den = torch.where(radicand == 0, torch.zeros_like(den), den)
    mcc = ratio_or(tp64 * tn - fp * fn, den, 0.0)
    perfect = (fp == 0) & (fn == 0)
    loss = torch.where(perfect, torch.zeros_like(mcc), 1.0 - mcc).to(tp.dtype)
    return reduce_sets(loss, mass, class_weight, include_background, reduction)


def tversky_loss(
    input: Tensor,
    target: Tensor,
    weight: Optional[Tensor] = None,
    activation: str = "softmax",
    alpha: float = 0.5,
    beta: float = 0.5,
    gamma: float = 1.0,
    smooth: float = 1.0,
    per_image: bool = False,
    include_background: bool = True,
    class_weight: Optional[Tensor] = None,
    ignore_index: Optional[int] = None,
    reduction: str = "mean",
) -> Tensor:
    """Tversky loss with a per-pixel weight map, (1 - TI)^γ with TI = (tp + s) / (tp + α·fp + β·fn + s).

    Parameters
    ----------
    input, target, weight, activation, smooth, per_image, include_background, class_weight, ignore_index
        As in :func:`soft_dice_loss`.
    alpha, beta : float
        Non-negative weights of false positives and false negatives. α = β = 0.5 is Dice's index
        (up to how ``smooth`` enters); β > α favours recall.
    gamma : float
        > 0. γ = 1 is the Tversky loss; other values give the focal Tversky loss (Abraham & Khan
        2019 write the exponent as 1/γ: their γ = 4/3 is ``gamma=0.75`` here).
    reduction : str
        As in :func:`soft_dice_loss`.

    Notes
    -----
    ``smooth`` is counted in pixels of the set's mean weight and the loss is invariant to
    multiplying ``weight`` by a positive constant, as for :func:`soft_dice_loss`. The
    empty-ground-truth and everything-ignored policies are those of :func:`soft_dice_loss`:
    0/0 is TI = 1, and a set with no weight mass has loss 0 and is left out of the mean.
    """
    class_weight = check_set_options(input, smooth, class_weight, reduction, per_image)
    _check_tversky_options(alpha, beta, gamma)
    tp, sum_p, sum_t, mass, unit = overlap_counts(
        input, target, weight, activation, ignore_index, per_image, include_background, False
    )
    s = smooth * unit
    index = ratio_or(tp + s, tp + alpha * (sum_p - tp) + beta * (sum_t - tp) + s, 1.0)
    loss = 1.0 - index
    if gamma != 1.0:
        loss = loss.clamp_min(1e-30).pow(gamma)
    return reduce_sets(loss, mass, class_weight, include_background, reduction)


def _check_tversky_options(alpha: float, beta: float, gamma: float) -> None:
    check_option_range(alpha, "alpha", 0.0, math.inf, False, True)
    check_option_range(beta, "beta", 0.0, math.inf, False, True)
    check_option_range(gamma, "gamma", 0.0, math.inf, True, True)


class _SetLoss(SetOptions):
    """The options of the per-class set losses, with soft Dice's defaults."""

    def __init__(
        self,
        activation: str = "softmax",
        smooth: float = 1.0,
        per_image: bool = False,
        include_background: bool = True,
        class_weight: Optional[Tensor] = None,
        ignore_index: Optional[int] = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(activation, smooth, per_image, ignore_index, reduction)
        self.include_background = checked_flag(include_background, "include_background")
        self.register_buffer("class_weight", as_option_tensor(class_weight, "class_weight"))


class SoftDiceLoss(_SetLoss):
    """Module form of :func:`soft_dice_loss`; options are fixed at construction."""

    def __init__(
        self,
        activation: str = "softmax",
        smooth: float = 1.0,
        per_image: bool = False,
        include_background: bool = True,
        squared: bool = False,
        class_weight: Optional[Tensor] = None,
        ignore_index: Optional[int] = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(activation, smooth, per_image, include_background, class_weight, ignore_index, reduction)
        self.squared = checked_flag(squared, "squared")

    def forward(self, input: Tensor, target: Tensor, weight: Optional[Tensor] = None) -> Tensor:
        return soft_dice_loss(
            input=input,
            target=target,
            weight=weight,
            activation=self.activation,
            smooth=self.smooth,
            per_image=self.per_image,
            include_background=self.include_background,
            squared=self.squared,
            class_weight=self.class_weight,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
        )


class SoftJaccardLoss(_SetLoss):
    """Module form of :func:`soft_jaccard_loss`; options (those of :class:`SoftDiceLoss` but
    ``squared``) are fixed at construction."""

    def forward(self, input: Tensor, target: Tensor, weight: Optional[Tensor] = None) -> Tensor:
        return soft_jaccard_loss(
            input=input,
            target=target,
            weight=weight,
            activation=self.activation,
            smooth=self.smooth,
            per_image=self.per_image,
            include_background=self.include_background,
            class_weight=self.class_weight,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
        )


class GeneralizedDiceLoss(_SetLoss):
    """Module form of :func:`generalized_dice_loss`; options are fixed at construction."""

    def __init__(
        self,
        activation: str = "softmax",
        smooth: float = 1e-5,
        per_image: bool = False,
        include_background: bool = True,
        ignore_index: Optional[int] = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(activation, smooth, per_image, include_background, None, ignore_index, reduction)

    def forward(self, input: Tensor, target: Tensor, weight: Optional[Tensor] = None) -> Tensor:
        return generalized_dice_loss(
            input=input,
            target=target,
            weight=weight,
            activation=self.activation,
            smooth=self.smooth,
            per_image=self.per_image,
            include_background=self.include_background,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
        )


class MCCLoss(_SetLoss):
    """Module form of :func:`mcc_loss`; options are fixed at construction."""

    def __init__(
        self,
        activation: str = "softmax",
        smooth: float = 1e-5,
        per_image: bool = False,
        include_background: bool = True,
        class_weight: Optional[Tensor] = None,
        ignore_index: Optional[int] = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(activation, smooth, per_image, include_background, class_weight, ignore_index, reduction)

    def forward(self, input: Tensor, target: Tensor, weight: Optional[Tensor] = None) -> Tensor:
        return mcc_loss(
            input=input,
            target=target,
            weight=weight,
            activation=self.activation,
            smooth=self.smooth,
            per_image=self.per_image,
            include_background=self.include_background,
            class_weight=self.class_weight,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
        )


class TverskyLoss(_SetLoss):
    """Module form of :func:`tversky_loss`; options are fixed at construction."""

    def __init__(
        self,
        activation: str = "softmax",
        alpha: float = 0.5,
        beta: float = 0.5,
        gamma: float = 1.0,
        smooth: float = 1.0,
        per_image: bool = False,
        include_background: bool = True,
        class_weight: Optional[Tensor] = None,
        ignore_index: Optional[int] = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(activation, smooth, per_image, include_background, class_weight, ignore_index, reduction)
        self.alpha = checked_real(alpha, "alpha")
        self.beta = checked_real(beta, "beta")
        self.gamma = checked_real(gamma, "gamma")
        _check_tversky_options(self.alpha, self.beta, self.gamma)

    def forward(self, input: Tensor, target: Tensor, weight: Optional[Tensor] = None) -> Tensor:
        return tversky_loss(
            input=input,
            target=target,
            weight=weight,
            activation=self.activation,
            alpha=self.alpha,
            beta=self.beta,
            gamma=self.gamma,
            smooth=self.smooth,
            per_image=self.per_image,
            include_background=self.include_background,
            class_weight=self.class_weight,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
        )


__all__: List[str] = [
    "GeneralizedDiceLoss",
    "MCCLoss",
    "SoftDiceLoss",
    "SoftJaccardLoss",
    "TverskyLoss",
    "generalized_dice_loss",
    "mcc_loss",
    "soft_dice_loss",
    "soft_jaccard_loss",
    "tversky_loss",
]
