"""Per-pixel weighted cross-entropy, NLL and focal losses (functional forms and Modules).

The losses on class log-probabilities: :func:`weighted_nll_loss`, :func:`weighted_cross_entropy`
and :func:`focal_loss` (softmax, and sigmoid on the binary input stage,
:func:`._inputs.binary_parts`), with their Module twins. The binary cross-entropies are in
:mod:`.binary`.
"""

import math
from typing import List, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._stage.inputs import binary_parts
from .._stage.options import checked_int, checked_real
from .._stage.reduce import (
    check_finite_option,
    check_softmax_channels,
    as_float32,
    as_option_tensor,
    check_class_weight,
    check_floating,
    check_input_rank,
    check_option_range,
    check_reduction,
    checking_values,
    check_same_shape,
    checked_input,
    elementwise_weight,
    index_target,
    plain_index_target,
    input_poison,
    reduce_loss,
    reduce_product,
    weight_and_poison,
)


def _class_view(class_weight: Tensor, ndim: int) -> Tensor:
    """Reshape a (C,) vector to broadcast along dim 1 of an ``ndim``-dim tensor."""
    shape = [1] * ndim
    shape[1] = class_weight.shape[0]
    return class_weight.view(shape)


def _log_prob_loss(
    log_prob: Tensor,
    target: Tensor,
    weight: Optional[Tensor],
    class_weight: Optional[Tensor],
    ignore_index: int,
    label_smoothing: float,
    reduction: str,
    gamma: float,
    poison: Tensor,
) -> Tensor:
    """Shared body of cross-entropy, NLL and the softmax focal loss, on log-probabilities.

    With ``gamma > 0`` each class term is multiplied by (1 - p)^gamma (the focal modulation).
    ``poison`` (N,) is the inputs' NaN-or-0 per image (:func:`input_poison`).
    """
    check_reduction(reduction)
    check_input_rank(log_prob, 2, "(N, C, *)")
    num_classes = log_prob.shape[1]
    check_option_range(label_smoothing, "label_smoothing", 0.0, 1.0, False, False)
    class_weight = check_class_weight(class_weight, num_classes)
    # Per-class terms -log p_c, with the focal factor and the class weight folded in.
    terms = -log_prob
    if gamma > 0.0:
        terms = terms * _focal_factor(1.0 - log_prob.exp(), gamma)
    if class_weight is not None:
        terms = terms * _class_view(class_weight, log_prob.dim())
    if target.dim() == log_prob.dim():
        # Class probabilities (N, C, *): every element counts once in the mean, as in torch.
        check_floating(target, "target")
        check_same_shape(target, "target", list(log_prob.shape), "(N, C, *)")
        target = as_float32(target)
        if label_smoothing > 0.0:
            target = target * (1.0 - label_smoothing) + label_smoothing / num_classes
        loss = (target * terms).sum(1)
        norm: Optional[Tensor] = None
    else:
        valid, safe, bad_target = index_target(target, log_prob, ignore_index)
        if bad_target is not None:
            poison = poison + bad_target
        loss = terms.gather(1, safe.unsqueeze(1)).squeeze(1)
        if class_weight is None:
            norm = valid.to(loss.dtype)
        else:
            norm = torch.where(valid, class_weight[safe], torch.zeros_like(loss))
        if label_smoothing > 0.0:
            # torch's definition: (1 - eps) of the target term plus eps/C of every class's term,
            # normalised by the target classes' weights in the mean.
            loss = (1.0 - label_smoothing) * loss + (label_smoothing / num_classes) * terms.sum(1)
        loss = torch.where(valid, loss, torch.zeros_like(loss))
    pixel_weight = elementwise_weight(weight, list(loss.shape), False)
    if pixel_weight is not None:
        loss = loss * pixel_weight
        norm = pixel_weight if norm is None else norm * pixel_weight
    return reduce_loss(loss, norm, reduction, poison)


def _plain_cross_entropy(
    input: Tensor, indices: Tensor, weight: Optional[Tensor], class_weight: Optional[Tensor], reduction: str
) -> Tensor:
    """:func:`weighted_cross_entropy` of checked class indices with no pixel ignored and no smoothing:
    torch's fused cross-entropy, then the weight map and the reduction rule. The values of
    :func:`_log_prob_loss` (class weights included), in fewer passes."""
    check_reduction(reduction)
    class_weight = check_class_weight(class_weight, input.shape[1])
    if class_weight is not None:
        class_weight = class_weight.to(input.dtype)
    loss = F.cross_entropy(input, indices, weight=class_weight, reduction="none")
    norm: Optional[Tensor] = None if class_weight is None else class_weight[indices]
    pixel_weight = elementwise_weight(weight, list(loss.shape), False)
    if norm is None:
        return reduce_product(loss, pixel_weight, pixel_weight, reduction, input_poison(input))
    if pixel_weight is not None:
        loss = loss * pixel_weight
        norm = norm * pixel_weight
    return reduce_loss(loss, norm, reduction, input_poison(input))


def _index_cross_entropy(
    input: Tensor, target: Tensor, weight: Optional[Tensor], class_weight: Optional[Tensor], ignore_index: int,
    reduction: str,
) -> Tensor:
    """:func:`weighted_cross_entropy` of class indices without smoothing, as logsumexp(x) - x[t].

    The values of :func:`_log_prob_loss` on ``log_softmax(input)``, in fewer passes over the (N, C,
    *) logits: a max, one exp and a sum for the log-sum-exp, one gather, where the log-softmax
    route writes and reads the whole (N, C, *) tensor several times more. It is the path of
    exported and compiled graphs (onnxruntime runs it 2-3x faster) and of eager mode where
    ignored pixels rule out torch's fused loss.

    Each pixel's loss is multiplied by its weight in the mean, w·cw[t] (0 where ignored), rather
    than selected: the class weight is one ``gather`` and the mask one product, cheaper in
    onnxruntime than a lookup and two selections, and every pixel's log-sum-exp enters the sums,
    a NaN one (from a NaN or +inf logit) included, even at weight 0.
    """
    check_reduction(reduction)
    num_classes = input.shape[1]
    class_weight = check_class_weight(class_weight, num_classes)
    valid, safe, bad_target = index_target(target, input, ignore_index)
    # log Σ exp(x - max) - (x[t] - max): the target's logit gathered from the shifted logits.
    shifted = input - input.amax(1, keepdim=True)
    loss = shifted.exp().sum(1).log() - shifted.gather(1, safe.unsqueeze(1)).squeeze(1)
    norm = valid.to(loss.dtype)
    if class_weight is not None:
        norm = class_weight.to(loss.dtype).gather(0, safe.reshape(-1)).reshape(safe.shape) * norm
    pixel_weight, bad_weight = weight_and_poison(weight, list(loss.shape), False)
    if pixel_weight is not None:
        norm = norm * pixel_weight
    if checking_values() or reduction == "none":
        poison = input_poison(input)
    else:
        # Traced, reduced: a NaN or +inf logit reaches the sums through its pixel's log-sum-exp;
        # -inf at a class other than the target leaves that finite, so each image's lowest logit
        # is taken too (a read, where Σ 0·x costs a write as well).
        poison = input.detach().reshape(input.shape[0], -1).amin(1) * 0.0
    if bad_target is not None:
        poison = poison + bad_target
    if bad_weight is not None:
        poison = poison + bad_weight
    return reduce_loss(loss * norm, norm, reduction, poison)


def _focal_factor(one_minus_p: Tensor, gamma: float) -> Tensor:
    """(1 - p)^gamma, floored at a tiny base where gamma < 1, so that it keeps a finite gradient at p = 1.

    From gamma = 1 on, the power's gradient at 0 is finite already, and the floor (a pass of its
    own) would change a factor by at most 1e-30^gamma, so it is left out there.
    """
    if gamma < 1.0:
        one_minus_p = one_minus_p.clamp_min(1e-30)
    if gamma == 2.0:
        return one_minus_p * one_minus_p
    return one_minus_p.pow(gamma)


def weighted_nll_loss(
    input: Tensor,
    target: Tensor,
    weight: Optional[Tensor] = None,
    class_weight: Optional[Tensor] = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
) -> Tensor:
    """Negative log-likelihood of log-probabilities, weighted per pixel.

    Parameters
    ----------
    input : Tensor
        Log-probabilities, shape (N, C, *).
    target : Tensor
        Class indices (N, *), integer, each in [0, C) or equal to ``ignore_index``; or class
        probabilities (N, C, *), floating.
    weight : Tensor, optional
        Per-pixel weight map (N, *), finite and non-negative; same-rank shapes with size-1 dims
        broadcast.
    class_weight : Tensor, optional
        Weight of each class, shape (C,).
    ignore_index : int
        Index targets equal to it contribute nothing, not even to the mean's denominator.
    label_smoothing : float
        In [0, 1]. Written out as torch defines it: (1 - eps) times the target term plus eps/C
        times the sum over all classes.
    reduction : str
        "none" (per pixel, shape (N, *)), "mean", "sum" or "per_image" (the mean of each image
        alone, shape (N,)).

    Returns
    -------
    Tensor
        With index targets, ℓ = cw[y]·(-log p_y) (before smoothing); the "mean" is
        Σ w·ℓ / Σ w·cw[y] over non-ignored pixels. With probability targets,
        ℓ = -Σ_c cw[c]·t_c·log p_c and the "mean" is Σ w·ℓ / Σ w (class weights are not in the
        denominator, as in torch). If the denominator is 0 the loss is 0, with zero gradient.

    Notes
    -----
    With ``weight=None`` this equals ``torch.nn.functional.nll_loss`` (index targets) for every
    reduction, except that a mean over nothing is 0 where torch returns NaN, and that a NaN or +inf
    log-probability anywhere in an image makes that image's values NaN (-inf, a probability of 0,
    is valid). float16 and bfloat16 inputs are computed in float32 and give a float32 loss.

    Scale: "mean" and "per_image" are invariant to multiplying ``weight`` by a positive constant;
    "none" and "sum" are proportional to it.
    """
    input = checked_input(input, 2, "(N, C, *)")
    return _log_prob_loss(
        input, target, weight, class_weight, ignore_index, label_smoothing, reduction, 0.0, input_poison(input, True)
    )


def weighted_cross_entropy(
    input: Tensor,
    target: Tensor,
    weight: Optional[Tensor] = None,
    class_weight: Optional[Tensor] = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
) -> Tensor:
    """Cross-entropy of logits, weighted per pixel: :func:`weighted_nll_loss` of ``log_softmax(input)``.

    Parameters
    ----------
    input : Tensor
        Logits, shape (N, C, *).
    target, weight, class_weight, ignore_index, label_smoothing, reduction
        As in :func:`weighted_nll_loss`.

    Returns
    -------
    Tensor
        The "mean" is Σ w·ℓ / Σ w·cw[y] over non-ignored pixels (index targets) or Σ w·ℓ / Σ w
        (probability targets); 0 with zero gradient when that denominator is 0. "none" has shape
        (N, *) and is w·ℓ.

    Notes
    -----
    With ``weight=None`` this equals ``torch.nn.functional.cross_entropy`` for every reduction,
    including ``ignore_index``, class weights, label smoothing and probability targets, except that
    a mean over nothing (everything ignored) is 0 where torch returns NaN, and that a NaN or
    infinite logit anywhere in an image makes all of that image's values NaN. Label smoothing is
    written out here; the torch.export-based ONNX exporter drops torch's own. float16 and bfloat16
    inputs are computed in float32 and give a float32 loss.

    Scale: "mean" and "per_image" are invariant to multiplying ``weight`` by a positive constant;
    "none" and "sum" are proportional to it.
    """
    input = checked_input(input, 2, "(N, C, *)")
    check_softmax_channels(input, "for one channel of logits use weighted_bce_with_logits")
    if target.dim() != input.dim() and label_smoothing == 0.0 and checking_values():
        # Eager and TorchScript only: compiled, the decomposition below runs faster than torch's
        # fused loss, and torch 2.14's ONNX exporter translates F.cross_entropy's label_smoothing
        # with reduction="none" wrongly (off by 0.2 on unit logits), silently.
        indices = plain_index_target(target, input, ignore_index)
        if indices is not None:
            return _plain_cross_entropy(input, indices, weight, class_weight, reduction)
    if target.dim() != input.dim() and label_smoothing == 0.0:
        return _index_cross_entropy(input, target, weight, class_weight, ignore_index, reduction)
    return _log_prob_loss(
        F.log_softmax(input, 1),
        target,
        weight,
        class_weight,
        ignore_index,
        label_smoothing,
        reduction,
        0.0,
        input_poison(input),
    )


def focal_loss(
    input: Tensor,
    target: Tensor,
    weight: Optional[Tensor] = None,
    activation: str = "sigmoid",
    alpha: Optional[float] = None,
    gamma: float = 2.0,
    class_weight: Optional[Tensor] = None,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> Tensor:
    """Focal loss (Lin et al. 2017), sigmoid or softmax, weighted per pixel.

    Parameters
    ----------
    input : Tensor
        Logits. Sigmoid: any shape. Softmax: (N, C, *).
    target : Tensor
        Sigmoid: the shape of ``input``, binary or probabilities in [0, 1]. Softmax: class
        indices (N, *) or probabilities (N, C, *), as in :func:`weighted_cross_entropy`.
    weight : Tensor, optional
        Weight map, as in :func:`weighted_bce_with_logits` (sigmoid) or
        :func:`weighted_cross_entropy` (softmax).
    activation : str
        "sigmoid": ℓ = α_t·(1 - p_t)^γ·BCE with p_t = p·t + (1 - p)·(1 - t) and
        α_t = α·t + (1 - α)·(1 - t) (torchvision's ``sigmoid_focal_loss``).
        "softmax": ℓ = -α·Σ_c cw[c]·t_c·(1 - p_c)^γ·log p_c, with t one-hot for index targets.
    alpha : float, optional
        Sigmoid: the positive/negative balance in [0, 1]; softmax: a scalar factor. None (the
        default) leaves it out; torchvision uses 0.25 for the sigmoid form.
    gamma : float
        Focusing exponent, ≥ 0. With γ = 0 and no ``alpha`` the loss equals
        :func:`weighted_bce_with_logits` (sigmoid) or :func:`weighted_cross_entropy` (softmax).
    class_weight, ignore_index : optional
        Softmax only, as in :func:`weighted_cross_entropy`.
    reduction : str
        "none", "mean", "sum" or "per_image" under the package's rule; the softmax form normalises like
        :func:`weighted_cross_entropy`. Scale: "mean" and "per_image" are invariant to multiplying ``weight`` by a positive constant;
        "none" and "sum" are proportional to it.
    """
    check_reduction(reduction)
    check_focal_options(activation, alpha, gamma)
    if activation == "softmax":
        input = checked_input(input, 2, "(N, C, *)")
        check_softmax_channels(input, "for one channel use activation='sigmoid'")
        loss = _log_prob_loss(
            F.log_softmax(input, 1),
            target,
            weight,
            class_weight,
            ignore_index,
            0.0,
            reduction,
            gamma,
            input_poison(input),
        )
        if alpha is not None:
            loss = alpha * loss
        return loss
    if class_weight is not None:
        raise ValueError("class_weight: only the softmax focal loss takes class weights; use alpha for sigmoid")
    # Eager on the CPU, "mean" and "sum" need no pass of their own for the logits: a NaN or
    # infinite logit makes its BCE term NaN or inf (each form of it holds an x·t or x·(1 - t)), and
    # no factor below turns that finite, so a finite total proves the logits finite. Only a total
    # that is not finite takes the per-image poison (an overflowed sum of finite logits stays inf).
    # Traced (compiled or exported), they take it inside the loss's own reduction instead: 0·x is NaN
    # for a NaN or infinite logit and a target outside [0, 1] adds NaN, so no reduction of its own
    # reads x and t again (the per-image poison is then unused, and the graph drops it).
    pooled = reduction == "mean" or reduction == "sum"
    deferred = pooled and checking_values() and input.device.type == "cpu"
    fused = pooled and not checking_values()
    input, target, parts_poison = binary_parts(input, target, False, not deferred)
    poison: Optional[Tensor] = parts_poison
    pixel_weight = elementwise_weight(weight, list(input.shape), input.dim() >= 4)
    # torch's fused BCE of logits: (1 - t)·x + log(1 + e^-x), stable, in one pass and one backward.
    loss = F.binary_cross_entropy_with_logits(input, target, reduction="none")
    if fused:
        loss = loss + (0.0 * input.detach() + torch.where((target >= 0) & (target <= 1), 0.0, math.nan))
        poison = None
    factor: Optional[Tensor] = None
    if gamma > 0.0:
        # 1 - p_t = t + p·(1 - 2t), with p_t = p·t + (1 - p)·(1 - t): one multiply-add whose
        # backward is one product (1 - 2t holds no gradient); exact for binary t.
        factor = _focal_factor(torch.addcmul(target, torch.sigmoid(input), torch.rsub(target, 1.0, alpha=2.0)), gamma)
    if alpha is not None:
        # α_t = α·t + (1 - α)·(1 - t) = (1 - α) + (2α - 1)·t.
        balance = (2.0 * alpha - 1.0) * target + (1.0 - alpha)
        factor = balance if factor is None else factor * balance
    if pixel_weight is not None:
        factor = pixel_weight if factor is None else factor * pixel_weight
    total = reduce_product(loss, factor, pixel_weight, reduction, poison)
    if deferred and not bool(torch.isfinite(total)):
        total = total + input_poison(input).sum()
    return total


def check_focal_options(activation: str, alpha: Optional[float], gamma: float) -> None:
    """Raise unless the focal loss's activation, alpha and gamma are valid (NaN and inf refused)."""
    if activation != "sigmoid" and activation != "softmax":
        raise ValueError(f"activation: expected 'sigmoid' or 'softmax', got '{activation}'")
    check_option_range(gamma, "gamma", 0.0, math.inf, False, True)
    if alpha is not None:
        check_finite_option(alpha, "alpha")
        if activation == "sigmoid":
            if not (alpha >= 0.0 and alpha <= 1.0):
                raise ValueError(f"alpha: expected a value in [0, 1] for the sigmoid form, got {alpha}")
        elif not (alpha >= 0.0 and alpha < math.inf):
            raise ValueError(f"alpha: expected a finite value >= 0 for the softmax form, got {alpha}")


class WeightedNLLLoss(nn.Module):
    """Module form of :func:`weighted_nll_loss`; options are fixed at construction."""

    def __init__(
        self,
        class_weight: Optional[Tensor] = None,
        ignore_index: int = -100,
        label_smoothing: float = 0.0,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        self.register_buffer("class_weight", as_option_tensor(class_weight, "class_weight"))
        self.ignore_index = checked_int(ignore_index, "ignore_index")
        self.label_smoothing = checked_real(label_smoothing, "label_smoothing")
        check_option_range(self.label_smoothing, "label_smoothing", 0.0, 1.0, False, False)
        check_reduction(reduction)
        self.reduction = reduction

    def forward(self, input: Tensor, target: Tensor, weight: Optional[Tensor] = None) -> Tensor:
        return weighted_nll_loss(
            input=input,
            target=target,
            weight=weight,
            class_weight=self.class_weight,
            ignore_index=self.ignore_index,
            label_smoothing=self.label_smoothing,
            reduction=self.reduction,
        )


class WeightedCrossEntropyLoss(WeightedNLLLoss):
    """Module form of :func:`weighted_cross_entropy`; options are fixed at construction."""

    def forward(self, input: Tensor, target: Tensor, weight: Optional[Tensor] = None) -> Tensor:
        return weighted_cross_entropy(
            input=input,
            target=target,
            weight=weight,
            class_weight=self.class_weight,
            ignore_index=self.ignore_index,
            label_smoothing=self.label_smoothing,
            reduction=self.reduction,
        )


class FocalLoss(nn.Module):
    """Module form of :func:`focal_loss`; options are fixed at construction."""

    def __init__(
        self,
        activation: str = "sigmoid",
        alpha: Optional[float] = None,
        gamma: float = 2.0,
        class_weight: Optional[Tensor] = None,
        ignore_index: int = -100,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        self.activation = activation
        self.alpha = None if alpha is None else checked_real(alpha, "alpha")
        self.gamma = checked_real(gamma, "gamma")
        check_focal_options(activation, self.alpha, self.gamma)
        self.register_buffer("class_weight", as_option_tensor(class_weight, "class_weight"))
        self.ignore_index = checked_int(ignore_index, "ignore_index")
        check_reduction(reduction)
        self.reduction = reduction

    def forward(self, input: Tensor, target: Tensor, weight: Optional[Tensor] = None) -> Tensor:
        return focal_loss(
            input=input,
            target=target,
            weight=weight,
            activation=self.activation,
            alpha=self.alpha,
            gamma=self.gamma,
            class_weight=self.class_weight,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
        )


__all__: List[str] = [
    "FocalLoss",
    "WeightedCrossEntropyLoss",
    "WeightedNLLLoss",
    "focal_loss",
    "weighted_cross_entropy",
    "weighted_nll_loss",
]
