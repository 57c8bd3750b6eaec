"""Per-pixel weighted cross-entropy, NLL, BCE (of logits and of probabilities) and focal losses (functional forms and Modules)."""

import math
from typing import Any, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._options import checked_int, checked_real, checked_reals
from ._reduce import (
    check_finite_option,
    check_softmax_channels,
    as_float32,
    as_option_tensor,
    check_class_weight,
    check_finite_non_negative,
    check_floating,
    check_input_rank,
    check_option_range,
    check_reduction,
    check_same_shape,
    checked_input,
    checking_values,
    elementwise_weight,
    index_target,
    input_poison,
    poison_unless_all,
    probability_target,
    reduce_loss,
    safe_divide,
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


def _focal_factor(one_minus_p: Tensor, gamma: float) -> Tensor:
    """(1 - p)^gamma, floored at a tiny base so that gamma < 1 keeps a finite gradient at p = 1."""
    return one_minus_p.clamp_min(1e-30).pow(gamma)


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


def _binary_check(input: Tensor, target: Tensor, probabilities: bool = False) -> Tuple[Tensor, Tensor, Tensor]:
    """Check an input/target pair of the same shape: logits, or probabilities with ``probabilities``.

    Returns ``(input, target, poison)``: both in float32 (or float64), and the (N,) poison of the
    images with a NaN or infinite input or, while tracing, a target (or a probability input)
    outside [0, 1] (eager and TorchScript raise for those).
    """
    if input.dim() < 1:
        raise ValueError(f"input: expected at least one dim, got shape {list(input.shape)}")
    if input.numel() == 0:
        raise ValueError(f"input: expected a non-empty tensor, got shape {list(input.shape)}")
    check_floating(input, "input")
    check_same_shape(target, "target", list(input.shape), "input.shape")
    input = as_float32(input)
    target, target_poison = probability_target(target, input.dtype)
    if probabilities:
        return input, target, _probability_poison(input) + target_poison
    return input, target, input_poison(input) + target_poison


def _probability_poison(input: Tensor) -> Tensor:
    """(N,) NaN for each image whose ``input`` holds a value outside [0, 1] (NaN and ±inf included), else 0.

    A NaN or infinite probability is a NaN out in every mode, as a NaN logit is. A finite value
    outside [0, 1] is refused where values can be read (eager, TorchScript): it is a logit passed
    where a probability belongs, not a diverged network.
    """
    if checking_values():
        # The finite values only (NaN and ±inf become 0.5): their extremes tell whether one is outside.
        values = input.detach()
        low, high = torch.aminmax(torch.where(values.abs() < math.inf, values, 0.5))
        lowest, highest = float(low), float(high)
        if lowest < 0.0 or highest > 1.0:
            raise ValueError(
                f"input: expected probabilities in [0, 1] (for logits use weighted_bce_with_logits), "
                f"found values in [{lowest}, {highest}]"
            )
    return poison_unless_all((input >= 0) & (input <= 1), input.dtype)


def _softplus_neg(input: Tensor) -> Tensor:
    """-log sigmoid(x) = log(1 + exp(-x)), stable for logits of any size."""
    return (-input).clamp_min(0) + torch.log1p(torch.exp(-input.abs()))


def _clamped_neg_logs(p: Tensor) -> Tuple[Tensor, Tensor]:
    """``(-log p, -log(1 - p))``, each at most 100, with torch's ``binary_cross_entropy`` gradient.

    torch clamps both logs at -100, so that p = 0 and p = 1 give finite values, and divides its
    gradient (p - t) by max(p(1 - p), eps) with eps = float32(1e-12), so that it stays finite
    there too. Where p(1 - p) >= eps both terms are the plain logs (no clamp is reached; every
    derivative is the true one). Elsewhere the value is the clamped log and the gradient is
    torch's share of it: -(1 - p)/eps and p/eps, from a detached copy, with no second derivative.
    """
    eps = 9.999999960041972e-13  # float32(1e-12), as torch's backward compares it
    q = p.detach()
    inside = q * (1.0 - q) >= eps
    # The plain logs see 0.5 where they are not taken: the zero gradient that where passes
    # them, times 1/p at p = 0, would be NaN.
    safe = torch.where(inside, p, 0.5)
    step = p - q  # 0, carrying the gradient of p
    neg_log_p = torch.where(inside, -torch.log(safe), step * ((q - 1.0) / eps) - torch.log(q).clamp_min(-100.0))
    neg_log_1mp = torch.where(inside, -torch.log1p(-safe), step * (q / eps) - torch.log1p(-q).clamp_min(-100.0))
    return neg_log_p, neg_log_1mp


def _binary_cross_entropy(
    input: Tensor,
    target: Tensor,
    weight: Optional[Tensor],
    pos_weight: Optional[Tensor],
    balance: Optional[Tuple[float, float]],
    reduction: str,
    probabilities: bool,
) -> Tensor:
    """Shared body of :func:`weighted_bce_with_logits` and :func:`weighted_binary_cross_entropy`.

    ``probabilities`` says whether ``input`` holds probabilities (the clamped logs) or logits
    (the stable log-sigmoid); everything else, pos_weight, balance and reduction, is one code.
    """
    check_reduction(reduction)
    check_balance(balance)
    input, target, poison = _binary_check(input, target, probabilities)
    shape = list(input.shape)
    if pos_weight is not None:
        check_floating(pos_weight, "pos_weight")
        if pos_weight.dim() > input.dim():
            raise ValueError(f"pos_weight: expected at most {input.dim()} dims, got {list(pos_weight.shape)}")
        offset = input.dim() - pos_weight.dim()
        for d in range(pos_weight.dim()):
            if pos_weight.shape[d] != 1 and pos_weight.shape[d] != shape[offset + d]:
                raise ValueError(
                    f"pos_weight: shape {list(pos_weight.shape)} does not broadcast against input {shape}"
                )
        pos_weight = check_finite_non_negative(pos_weight, "pos_weight")
    pixel_weight = elementwise_weight(weight, shape, input.dim() >= 4)
    # ℓ⁺ = -pw·log p and ℓ⁻ = -log(1 - p).
    if probabilities:
        pos_loss, neg_loss = _clamped_neg_logs(input)
    else:
        pos_loss = _softplus_neg(input)
        neg_loss = pos_loss + input
    if pos_weight is not None:
        pos_loss = pos_weight * pos_loss
    if balance is None:
        loss = target * pos_loss + (1.0 - target) * neg_loss
        if pixel_weight is not None:
            loss = loss * pixel_weight
        return reduce_loss(loss, pixel_weight, reduction, poison)
    # Each side is a mean under the shared rule, Σ w·t·ℓ⁺ / Σ w·t and Σ w·(1 - t)·ℓ⁻ / Σ w·(1 - t)
    # (0 with zero gradient for a side with no weight), and the loss mixes the two.
    pos_share, neg_share = balance
    pos_mass = target if pixel_weight is None else target * pixel_weight
    neg_mass = 1.0 - target if pixel_weight is None else (1.0 - target) * pixel_weight
    pos_part, neg_part = pos_mass * pos_loss, neg_mass * neg_loss
    if reduction == "none":
        # Each element's share of the batch's value: its side's share, over that side's weight mass.
        loss = pos_share * safe_divide(pos_part, pos_mass.sum()) + neg_share * safe_divide(neg_part, neg_mass.sum())
        return reduce_loss(loss, None, "none", poison)
    # "mean" and "sum" both give the mix of the batch's two means; "per_image" mixes each image's own.
    side = "per_image" if reduction == "per_image" else "mean"
    # The poison rides on one side: NaN times a share of 0 is still NaN.
    pos_mean = reduce_loss(pos_part, pos_mass, side, poison)
    return pos_share * pos_mean + neg_share * reduce_loss(neg_part, neg_mass, side)


def weighted_bce_with_logits(
    input: Tensor,
    target: Tensor,
    weight: Optional[Tensor] = None,
    pos_weight: Optional[Tensor] = None,
    balance: Optional[Tuple[float, float]] = None,
    reduction: str = "mean",
) -> Tensor:
    """Binary cross-entropy of logits, weighted per pixel.

    ℓ = -[pw·t·log σ(x) + (1 - t)·log(1 - σ(x))].

    Parameters
    ----------
    input : Tensor
        Logits of any shape.
    target : Tensor
        Same shape as ``input``: binary labels or probabilities in [0, 1] (integer and bool
        targets are converted).
    weight : Tensor, optional
        Weight map, the shape of ``input`` (size-1 dims broadcast), or (N, *spatial) for an
        (N, C, *spatial) input with two or three spatial dims (applied to every channel).
    pos_weight : Tensor, optional
        Weight of the positive term, broadcast against ``input`` as in torch (a (C,) vector
        aligns with the *last* dim; use (C, 1, 1) for (N, C, H, W)).
    balance : tuple of float, optional
        ``(pos_share, neg_share)``: the loss becomes
        pos_share·Σ w·t·ℓ⁺ / Σ w·t + neg_share·Σ w·(1-t)·ℓ⁻ / Σ w·(1-t), where ℓ⁺ = -pw·log σ(x)
        and ℓ⁻ = -log(1 - σ(x)). A side with no weight (no positives, say) contributes 0. Then
        "mean" and "sum" both return this value and "none" returns each element's share of it;
        "per_image" computes the two means within each image.
    reduction : str
        "none" (the shape of ``input``), "mean" (Σ w·ℓ / Σ w), "sum", or "per_image" (the mean
        of each image alone, shape (N,)).

    Notes
    -----
    With ``weight=None`` and no ``balance`` this equals
    ``torch.nn.functional.binary_cross_entropy_with_logits`` (with ``pos_weight``) for every
    reduction. torch's own ``weight`` argument divides a weighted sum by the element count; here
    "mean" divides by Σ w. Prefer this form to :func:`weighted_binary_cross_entropy` on a
    sigmoid's output: log σ(x) is computed in one stable step, so a saturated logit keeps its
    gradient.

    Scale: "mean" and "per_image" are invariant to multiplying ``weight`` by a positive constant;
    "none" and "sum" are proportional to it. With ``balance`` every reduction is invariant: each
    side is divided by its own weight mass.
    """
    return _binary_cross_entropy(input, target, weight, pos_weight, balance, reduction, False)


def weighted_binary_cross_entropy(
    input: Tensor,
    target: Tensor,
    weight: Optional[Tensor] = None,
    pos_weight: Optional[Tensor] = None,
    balance: Optional[Tuple[float, float]] = None,
    reduction: str = "mean",
) -> Tensor:
    """Binary cross-entropy of probabilities (a sigmoid's output), weighted per pixel.

    ℓ = -[pw·t·max(log p, -100) + (1 - t)·max(log(1 - p), -100)].

    Parameters
    ----------
    input : Tensor
        Probabilities p in [0, 1], any shape.
    target : Tensor
        Same shape as ``input``: binary labels or probabilities in [0, 1] (integer and bool
        targets are converted).
    weight, pos_weight, balance, reduction
        As in :func:`weighted_bce_with_logits`, with ℓ⁺ = -pw·max(log p, -100) and
        ℓ⁻ = -max(log(1 - p), -100).

    Returns
    -------
    Tensor
        "none": w·ℓ, the shape of ``input``. "mean": Σ w·ℓ / Σ w, 0 with zero gradient when
        Σ w = 0. "sum": Σ w·ℓ. "per_image": shape (N,), the mean of each image alone.

    Notes
    -----
    With ``weight=None`` and no ``balance`` this equals ``torch.nn.functional.binary_cross_entropy``
    (``torch.nn.BCELoss``) for every reduction, values and gradients, at p = 0 and p = 1 too: the
    logs are clamped at -100 as torch clamps them, so every value is finite (at most 100·pw per
    element), and the gradient is torch's, (p - t)/max(p(1 - p), 1e-12), finite as well. With a
    map, "mean" is ``binary_cross_entropy(input, target, weight=w, reduction="sum") / Σ w``.
    Scale: "mean" and "per_image" are invariant to multiplying ``weight`` by a positive constant;
    "none" and "sum" are proportional to it; with ``balance`` every reduction is invariant, as for
    :func:`weighted_bce_with_logits`.

    Edge cases: a NaN or infinite probability makes its image's values NaN, in every mode. A
    finite value outside [0, 1] (a logit passed by mistake) raises a ``ValueError`` naming
    ``input`` in eager mode and TorchScript, and makes its image's values NaN inside
    ``torch.compile`` and ``torch.export`` graphs, as a target outside [0, 1] does. float16 and
    bfloat16 inputs are computed in float32 and give a float32 loss; but torch's gradient
    reaches 1e12 at a saturated p with the wrong target, more than float16 holds, so a float16
    input's gradient can be inf there (torch's autocast refuses this loss for that reason).

    Prefer :func:`weighted_bce_with_logits` where the logits are at hand: the clamp makes a
    saturated sigmoid (p rounded to 0 or 1) lose its gradient and cost a flat 100, where the
    logits form, with log σ(x) fused, keeps both exact.
    """
    return _binary_cross_entropy(input, target, weight, pos_weight, balance, reduction, True)


def _checked_balance(balance: Any) -> Tuple[float, float]:
    """``balance`` as two floats, refused by name unless it is a pair of numbers (plain Python)."""
    shares = checked_reals(balance, "balance", "two numbers (pos_share, neg_share)")
    if len(shares) != 2:
        raise ValueError(f"balance: expected two numbers (pos_share, neg_share), got {balance!r}")
    return shares[0], shares[1]


def check_balance(balance: Optional[Tuple[float, float]]) -> None:
    """Raise unless ``balance`` is None or two finite, non-negative shares."""
    if balance is not None:
        if not torch.jit.is_scripting() and checking_values():
            _checked_balance(balance)
        pos_share, neg_share = balance
        if not (pos_share >= 0.0 and neg_share >= 0.0 and pos_share < math.inf and neg_share < math.inf):
            raise ValueError(f"balance: expected finite, non-negative (pos_share, neg_share), got {balance}")


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
    input, target, poison = _binary_check(input, target)
    pixel_weight = elementwise_weight(weight, list(input.shape), input.dim() >= 4)
    loss = (1.0 - target) * input + _softplus_neg(input)
    if gamma > 0.0:
        p = torch.sigmoid(input)
        loss = loss * _focal_factor(p + target * (1.0 - 2.0 * p), gamma)
    if alpha is not None:
        loss = loss * (alpha * target + (1.0 - alpha) * (1.0 - target))
    if pixel_weight is not None:
        loss = loss * pixel_weight
    return reduce_loss(loss, pixel_weight, reduction, poison)


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


class WeightedBCELoss(nn.Module):
    """Module form of :func:`weighted_binary_cross_entropy`; options are fixed at construction."""

    def __init__(
        self,
        pos_weight: Optional[Tensor] = None,
        balance: Optional[Tuple[float, float]] = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        self.register_buffer("pos_weight", as_option_tensor(pos_weight, "pos_weight"))
        self.balance = None if balance is None else _checked_balance(balance)
        check_balance(self.balance)
        check_reduction(reduction)
        self.reduction = reduction

    def forward(self, input: Tensor, target: Tensor, weight: Optional[Tensor] = None) -> Tensor:
        return weighted_binary_cross_entropy(
            input=input,
            target=target,
            weight=weight,
            pos_weight=self.pos_weight,
            balance=self.balance,
            reduction=self.reduction,
        )


class WeightedBCEWithLogitsLoss(WeightedBCELoss):
    """Module form of :func:`weighted_bce_with_logits`; options are fixed at construction."""

    def forward(self, input: Tensor, target: Tensor, weight: Optional[Tensor] = None) -> Tensor:
        return weighted_bce_with_logits(
            input=input,
            target=target,
            weight=weight,
            pos_weight=self.pos_weight,
            balance=self.balance,
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
    "WeightedBCELoss",
    "WeightedBCEWithLogitsLoss",
    "WeightedCrossEntropyLoss",
    "WeightedNLLLoss",
    "focal_loss",
    "weighted_bce_with_logits",
    "weighted_binary_cross_entropy",
    "weighted_cross_entropy",
    "weighted_nll_loss",
]
