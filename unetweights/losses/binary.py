"""Per-pixel weighted binary cross-entropy, of logits and of probabilities (functional forms and Modules).

:func:`weighted_bce_with_logits` and :func:`weighted_binary_cross_entropy` share one body
(pos_weight, ``balance`` and the reduction); :func:`check_balance` checks the ``balance`` option;
:class:`WeightedBCEWithLogitsLoss` and :class:`WeightedBCELoss` are their Module twins. The input
and target are checked by the binary input stage (:func:`._inputs.binary_parts`), which the
sigmoid focal loss (:mod:`.classification`) shares.
"""

import math
from typing import Any, List, Optional, Tuple

import torch
from torch import Tensor, nn

from .._stage.inputs import binary_parts, softplus_neg
from .._stage.options import checked_reals
from .._stage.reduce import (
    as_option_tensor,
    check_finite_non_negative,
    check_floating,
    check_reduction,
    checking_values,
    elementwise_weight,
    reduce_loss,
    safe_divide,
)


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
    input, target, poison = binary_parts(input, target, probabilities)
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
        pos_loss = softplus_neg(input)
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


__all__: List[str] = [
    "WeightedBCELoss",
    "WeightedBCEWithLogitsLoss",
    "weighted_bce_with_logits",
    "weighted_binary_cross_entropy",
]
