"""Per-pixel weighted regression losses: mse, l1, smooth_l1, huber and kl_div.

Each takes ``input`` and ``target`` of the same shape and a weight map of that shape (size-1 dims
broadcast), or (N, *spatial) for an (N, C, *spatial) image or volume. "mean" is Σ w·ℓ / Σ w over all elements, which with
``weight=None`` is the plain mean, so each equals its ``torch.nn.functional`` counterpart there
(torch's own weighted forms differ: mse and l1 divide by Σ w, huber by the element count).

Invalid values: a NaN input or target gives NaN, and an infinite one inf or NaN, as in torch, for
that element and every reduction over it; a weight map follows the package's rule (eager and
TorchScript raise on NaN, inf or negative weights; compiled and exported graphs make them NaN).
float16 and bfloat16 tensors are computed in float32 and give a float32 loss.
"""

import math
from typing import List, Optional, Tuple

import torch
from torch import Tensor, nn

from .._stage.options import checked_flag, checked_real
from .._stage.reduce import (
    as_float32,
    check_floating,
    check_option_range,
    check_reduction,
    check_same_shape,
    elementwise_weight,
    reduce_loss,
)


def _pair(
    input: Tensor, target: Tensor, weight: Optional[Tensor], reduction: str
) -> Tuple[Tensor, Tensor, Optional[Tensor]]:
    """Check a regression input/target pair; return both (half types in float32) and the weight."""
    check_reduction(reduction)
    check_floating(input, "input")
    check_floating(target, "target")
    if input.numel() == 0:
        raise ValueError(f"input: expected a non-empty tensor, got shape {list(input.shape)}")
    check_same_shape(target, "target", list(input.shape), "input.shape")
    return as_float32(input), as_float32(target), elementwise_weight(weight, list(input.shape), input.dim() >= 4)


def _weighted(loss: Tensor, pixel_weight: Optional[Tensor], reduction: str) -> Tensor:
    if pixel_weight is not None:
        loss = loss * pixel_weight
    return reduce_loss(loss, pixel_weight, reduction)


def _check_kl_reduction(reduction: str) -> None:
    if reduction != "batchmean":
        if reduction != "none" and reduction != "mean" and reduction != "sum" and reduction != "per_image":
            raise ValueError(
                f"reduction: expected 'none', 'mean', 'sum', 'per_image' or 'batchmean', got '{reduction}'"
            )


def weighted_mse_loss(
    input: Tensor, target: Tensor, weight: Optional[Tensor] = None, reduction: str = "mean"
) -> Tensor:
    """Squared error (x - y)², weighted per element; equals ``F.mse_loss`` when ``weight`` is None.

    Parameters
    ----------
    input, target : Tensor
        Floating tensors of the same shape.
    weight : Tensor, optional
        Finite, non-negative weights: ``input``'s shape (size-1 dims broadcast), or (N, *spatial)
        for an (N, C, *spatial) input with two or three spatial dims.
    reduction : str
        "none" (w·ℓ, ``input``'s shape), "mean" (Σ w·ℓ / Σ w; 0 when Σ w = 0), "sum", or
        "per_image" (the mean of each image alone, shape (N,)). "mean" and "per_image" are
        invariant to multiplying ``weight`` by a positive constant; "none" and "sum" are
        proportional to it (here and in the other regression losses).
    """
    input, target, pixel_weight = _pair(input, target, weight, reduction)
    return _weighted((input - target) ** 2, pixel_weight, reduction)


def weighted_l1_loss(
    input: Tensor, target: Tensor, weight: Optional[Tensor] = None, reduction: str = "mean"
) -> Tensor:
    """Absolute error |x - y|, weighted per element; equals ``F.l1_loss`` when ``weight`` is None.

    Parameters are those of :func:`weighted_mse_loss`.
    """
    input, target, pixel_weight = _pair(input, target, weight, reduction)
    return _weighted((input - target).abs(), pixel_weight, reduction)


def weighted_huber_loss(
    input: Tensor, target: Tensor, weight: Optional[Tensor] = None, delta: float = 1.0, reduction: str = "mean"
) -> Tensor:
    """Huber loss, weighted per element; equals ``F.huber_loss`` when ``weight`` is None.

    ℓ = ½·d² where d = |x - y| < δ, and δ·(d - ½·δ) elsewhere. ``delta`` must be positive; the
    other parameters are those of :func:`weighted_mse_loss`.
    """
    check_option_range(delta, "delta", 0.0, math.inf, True, True)
    input, target, pixel_weight = _pair(input, target, weight, reduction)
    d = (input - target).abs()
    # c·(d - c/2) with c = min(d, δ) is both branches at once, and one op fewer for autograd.
    c = d.clamp_max(delta)
    return _weighted(c * (d - 0.5 * c), pixel_weight, reduction)


def weighted_smooth_l1_loss(
    input: Tensor, target: Tensor, weight: Optional[Tensor] = None, beta: float = 1.0, reduction: str = "mean"
) -> Tensor:
    """Smooth L1 loss, weighted per element; equals ``F.smooth_l1_loss`` when ``weight`` is None.

    ℓ = ½·d²/β where d = |x - y| < β, and d - ½·β elsewhere; β = 0 is the L1 loss. ``beta`` must
    be non-negative; the other parameters are those of :func:`weighted_mse_loss`.
    """
    check_option_range(beta, "beta", 0.0, math.inf, False, True)
    input, target, pixel_weight = _pair(input, target, weight, reduction)
    d = (input - target).abs()
    if beta == 0.0:
        return _weighted(d, pixel_weight, reduction)
    c = d.clamp_max(beta)
    return _weighted(c * (d - 0.5 * c) / beta, pixel_weight, reduction)


def weighted_kl_div(
    input: Tensor,
    target: Tensor,
    weight: Optional[Tensor] = None,
    reduction: str = "mean",
    log_target: bool = False,
) -> Tensor:
    """Kullback-Leibler divergence terms t·(log t - x), weighted per element.

    Parameters
    ----------
    input : Tensor
        Log-probabilities x.
    target : Tensor
        Probabilities t (terms with t = 0 are 0), or log-probabilities with ``log_target``.
    weight : Tensor, optional
        As in :func:`weighted_mse_loss`.
    reduction : str
        "none", "mean" (Σ w·ℓ / Σ w over elements), "sum", "per_image" (the mean of each image
        alone, shape (N,)), or "batchmean" (Σ w·ℓ / N, the true KL divergence per sample when
        the class dim is summed).
    log_target : bool
        Whether ``target`` holds log-probabilities.

    Notes
    -----
    With ``weight=None`` this equals ``torch.nn.functional.kl_div`` for every reduction.
    Scale: "mean" and "per_image" are invariant to multiplying ``weight`` by a positive constant;
    "none", "sum" and "batchmean" are proportional to it.
    """
    batchmean = reduction == "batchmean"
    _check_kl_reduction(reduction)
    input, target, pixel_weight = _pair(input, target, weight, "sum" if batchmean else reduction)
    if log_target:
        loss = target.exp() * (target - input)
    else:
        # log(1) = 0 stands in where t = 0, so those terms are t·(0 - x) = 0, as 0·log 0 = 0.
        log_t = torch.log(torch.where(target > 0, target, torch.ones_like(target)))
        loss = target * (log_t - input)
    if batchmean:
        return _weighted(loss, pixel_weight, "sum") / input.shape[0]
    return _weighted(loss, pixel_weight, reduction)


class _Regression(nn.Module):
    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        check_reduction(reduction)
        self.reduction = reduction


class WeightedMSELoss(_Regression):
    """Module form of :func:`weighted_mse_loss`."""

    def forward(self, input: Tensor, target: Tensor, weight: Optional[Tensor] = None) -> Tensor:
        return weighted_mse_loss(input=input, target=target, weight=weight, reduction=self.reduction)


class WeightedL1Loss(_Regression):
    """Module form of :func:`weighted_l1_loss`."""

    def forward(self, input: Tensor, target: Tensor, weight: Optional[Tensor] = None) -> Tensor:
        return weighted_l1_loss(input=input, target=target, weight=weight, reduction=self.reduction)


class WeightedHuberLoss(_Regression):
    """Module form of :func:`weighted_huber_loss`."""

    def __init__(self, delta: float = 1.0, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.delta = checked_real(delta, "delta")
        check_option_range(self.delta, "delta", 0.0, math.inf, True, True)

    def forward(self, input: Tensor, target: Tensor, weight: Optional[Tensor] = None) -> Tensor:
        return weighted_huber_loss(
            input=input,
            target=target,
            weight=weight,
            delta=self.delta,
            reduction=self.reduction,
        )


class WeightedSmoothL1Loss(_Regression):
    """Module form of :func:`weighted_smooth_l1_loss`."""

    def __init__(self, beta: float = 1.0, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.beta = checked_real(beta, "beta")
        check_option_range(self.beta, "beta", 0.0, math.inf, False, True)

    def forward(self, input: Tensor, target: Tensor, weight: Optional[Tensor] = None) -> Tensor:
        return weighted_smooth_l1_loss(
            input=input,
            target=target,
            weight=weight,
            beta=self.beta,
            reduction=self.reduction,
        )


class WeightedKLDivLoss(nn.Module):
    """Module form of :func:`weighted_kl_div`."""

    def __init__(self, reduction: str = "mean", log_target: bool = False) -> None:
        super().__init__()
        _check_kl_reduction(reduction)
        self.reduction = reduction
        self.log_target = checked_flag(log_target, "log_target")

    def forward(self, input: Tensor, target: Tensor, weight: Optional[Tensor] = None) -> Tensor:
        return weighted_kl_div(
            input=input,
            target=target,
            weight=weight,
            reduction=self.reduction,
            log_target=self.log_target,
        )


__all__: List[str] = [
    "WeightedHuberLoss",
    "WeightedKLDivLoss",
    "WeightedL1Loss",
    "WeightedMSELoss",
    "WeightedSmoothL1Loss",
    "weighted_huber_loss",
    "weighted_kl_div",
    "weighted_l1_loss",
    "weighted_mse_loss",
    "weighted_smooth_l1_loss",
]
