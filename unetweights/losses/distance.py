"""Losses on distance maps: boundary and Hausdorff distance transform (functional forms and Modules).

The boundary and Hausdorff-DT losses consume the target's signed distance map, which the data
pipeline precomputes in physical units (:func:`unetweights.weightmaps.signed_distance_map` with
``spacing``, or the ``distance`` option of the dataset and transforms). Where it is not passed,
and for the prediction's distances, which change with every step, they compute it in the graph
with :func:`distance_transform`: an exact separable Euclidean distance transform written in
torch, so the losses still script, compile, export to ONNX and run on the GPU. The losses on
skeletons (clDice, skeleton recall) are in :mod:`.skeleton`.

The losses follow the package's rules (weight map, reduction, NaN in is NaN out, the same
numbers eager, scripted, compiled and exported); each docstring states its formula.
"""

import math
from typing import List, Optional

import torch
from torch import Tensor, nn

from .._stage.inputs import check_activation, scored_parts
from .._stage.morphology import checked_spacing, distance_transform
from .._stage.options import checked_flag, checked_index, checked_real, checked_reals
from .._stage.reduce import (
    check_option_range,
    check_reduction,
    check_same_shape,
    checking_values,
    input_poison,
    poison_rows,
    reduce_loss,
)


def _checked_distance(
    distance: Optional[Tensor], truth: Tensor, spacing: Optional[List[float]], name: str = "distance"
) -> Tensor:
    """The target's signed distance map: ``distance`` checked against ``truth``, or computed from it."""
    if distance is None:
        return distance_transform(truth, spacing)
    if not distance.is_floating_point():
        raise ValueError(f"{name}: expected a floating-point distance map, got an integer or bool tensor")
    check_same_shape(distance, name, list(truth.shape), "(N, C', *), one channel per scored class")
    # Σ 0·d poisons an image whose distances are NaN or infinite, like a bad logit.
    return poison_rows(distance.to(truth.dtype), input_poison(distance))


def _element_reduce(loss: Tensor, pixel_weight: Optional[Tensor], reduction: str, poison: Tensor) -> Tensor:
    """The reduction rule for (N, C', *) element losses weighted by an (N, 1, *) ``pixel_weight``."""
    if pixel_weight is not None:
        loss = loss * pixel_weight
        pixel_weight = pixel_weight.expand(loss.shape)
    return reduce_loss(loss, pixel_weight, reduction, poison)


def boundary_loss(
    input: Tensor,
    target: Tensor,
    weight: Optional[Tensor] = None,
    distance: Optional[Tensor] = None,
    activation: str = "softmax",
    include_background: bool = True,
    spacing: Optional[List[float]] = None,
    ignore_index: Optional[int] = None,
    reduction: str = "mean",
) -> Tensor:
    """Boundary loss (Kervadec et al. 2019) with a per-pixel weight map: ℓ = φ_c · p_c per element.

    φ_c is the signed distance to the boundary of class c in the target (negative inside,
    positive outside, in physical units); p_c the activated prediction. The loss is smallest
    when the prediction fills exactly the target, and it can be negative. Kervadec et al. score
    the foreground classes only and add it to a region loss (Dice) with a weight that grows over
    training: use ``include_background=False`` and :class:`CombinedLoss` for that.

    Parameters
    ----------
    input : Tensor
        Logits (N, C, *), or probabilities with ``activation="none"``.
    target : Tensor
        Class indices (N, *), or a binary/probability target (N, C, *) (thresholded at 0.5 for
        distances computed here).
    weight : Tensor, optional
        Per-pixel weight map (N, *) (or (N, 1, *)), finite and non-negative.
    distance : Tensor, optional
        The target's signed distance map (N, C', *), one channel per scored class (C' = C - 1
        without the background), precomputed by the data pipeline with
        :func:`unetweights.weightmaps.signed_distance_map` (``channel_axis`` for a one-hot
        mask). None: computed here from the target with :func:`distance_transform` (exact, in
        ``spacing`` units; costs O(L) per pixel and axis).
    activation : str
        "softmax", "sigmoid" (needs a (N, C, *) target) or "none".
    include_background : bool
        False drops channel 0 (it still takes part in the softmax).
    spacing : list of float, optional
        Physical pixel size per spatial axis, for distances computed here.
    ignore_index : int, optional
        Index-target pixels equal to it count nowhere (for distances computed here they belong
        to no class).
    reduction : str
        "none": w·ℓ, shape (N, C', *). "mean": Σ w·ℓ / Σ w over elements. "sum", "per_image".
        "mean" and "per_image" are invariant to multiplying ``weight`` by a positive constant;
        "none" and "sum" are proportional to it.

    Notes
    -----
    A class absent from an image's target (or filling it) has no boundary: φ = 0 there, so it
    adds nothing (but still counts in the mean), as in MONAI's ``BoundaryLoss``. That loss
    equals this one given MONAI's own distance map; MONAI's map is ours shifted by +1 inside
    the object (its inner boundary pixels are 0, ours -1), so with our maps the loss is lower by
    the weighted mean of p_c over class c's pixels. A NaN or infinite logit or distance (and,
    compiled or exported, an invalid weight or class index) makes its image's values NaN.
    """
    check_reduction(reduction)
    prob, truth, pixel_weight, poison = scored_parts(
        input, target, weight, activation, include_background, ignore_index
    )
    phi = _checked_distance(distance, truth, spacing)
    return _element_reduce(phi * prob, pixel_weight, reduction, poison)


def hausdorff_dt_loss(
    input: Tensor,
    target: Tensor,
    weight: Optional[Tensor] = None,
    distance: Optional[Tensor] = None,
    activation: str = "softmax",
    alpha: float = 2.0,
    include_background: bool = True,
    spacing: Optional[List[float]] = None,
    ignore_index: Optional[int] = None,
    prediction_distance: Optional[Tensor] = None,
    reduction: str = "mean",
) -> Tensor:
    """Hausdorff distance-transform loss (Karimi & Salcudean 2019), ℓ = (p - t)² · (d_P^α + d_G^α).

    d_G is the distance of each element to the target's boundary, d_P to the boundary of the
    prediction thresholded at 0.5 (p > 0.5, as MONAI's ``HausdorffDTLoss``), per class. Errors
    far from either boundary weigh most, which approximates the Hausdorff distance.

    Parameters
    ----------
    input, target, weight, activation, include_background, spacing, ignore_index
        As in :func:`boundary_loss`.
    distance : Tensor, optional
        The target's distance map (N, C', *), signed or not (its absolute value is d_G), from the
        data pipeline; None computes it here.
    alpha : float
        The exponent α > 0 of the distances (2 in the paper and MONAI).
    prediction_distance : Tensor, optional
        d_P (N, C', *) if the caller computed it (a faster transform, say); None computes it
        here with :func:`distance_transform`. It carries no gradient either way.
    reduction : str
        As in :func:`boundary_loss` (and so is the effect of scaling ``weight``).

    Notes
    -----
    With weight=None this equals MONAI's ``HausdorffDTLoss`` wherever both sides of every
    boundary hold a pixel. A channel with no boundary (all foreground or all background) has
    d = 0, except where the target and the thresholded prediction are opposite there (one fills
    the channel, the other is empty): every element is then wrong with no boundary to measure
    from, and both distances are the image's diagonal (between the centres of its first and
    last elements, in ``spacing`` units), so the worst prediction costs most instead of nothing.
    (MONAI takes its transform over the channel axis too, and scores such a case by the
    distance between channels.) An element with p = t adds nothing. A NaN or infinite logit or
    distance (and, compiled or exported, an invalid weight or class index) makes its image's
    values NaN.

    d^α is taken in the input's floating type: where it overflows (α = 25 with distances of 40
    pixels overflows float32), eager mode and TorchScript raise a ``ValueError`` naming
    ``alpha``; a compiled or exported graph, which cannot raise, gives inf. float64 input holds
    far larger values.
    """
    check_reduction(reduction)
    check_option_range(alpha, "alpha", 0.0, math.inf, True, True)
    prob, truth, pixel_weight, poison = scored_parts(
        input, target, weight, activation, include_background, ignore_index
    )
    predicted = prob.detach() > 0.5
    target_field = _checked_distance(distance, truth, spacing).abs()
    if prediction_distance is None:
        prediction_field = distance_transform(predicted, spacing, False)
    else:
        prediction_field = _checked_distance(prediction_distance, truth, spacing, "prediction_distance").abs().detach()
    # Neither side has a boundary, and one fills the channel where the other is empty: every
    # element is wrong and there is no boundary to measure from, so both distances are the
    # largest the image holds, its diagonal (a field of 0 would make the worst prediction free).
    true = truth > 0.5
    opposite = _all_and_none(true, predicted) | _all_and_none(predicted, true)
    diagonal = _diagonal(list(prob.shape[2:]), checked_spacing(spacing, prob.dim() - 2))
    target_field = torch.where(opposite, torch.full_like(target_field, diagonal), target_field)
    prediction_field = torch.where(opposite, torch.full_like(prediction_field, diagonal), prediction_field)
    # In the input's type: float64 input holds d^alpha far beyond float32's range.
    scale = prediction_field.to(prob.dtype).pow(alpha) + target_field.to(prob.dtype).pow(alpha)
    if checking_values() and bool(torch.isinf(scale).any()):
        largest = float(torch.maximum(target_field, prediction_field).nan_to_num(0.0).amax())
        raise ValueError(
            f"alpha: d^alpha overflows the input's floating type here (alpha={alpha}, distances up to "
            f"{largest}); use a smaller alpha, or float64 input"
        )
    return _element_reduce((prob - truth) ** 2 * scale, pixel_weight, reduction, poison)


def _all_and_none(full: Tensor, empty: Tensor) -> Tensor:
    """(N, C, 1, ...): True for each channel where ``full`` is True everywhere and ``empty`` nowhere."""
    full_flat = full.reshape(full.shape[0], full.shape[1], -1)
    empty_flat = empty.reshape(full_flat.shape)
    both = full_flat.all(-1) & ~empty_flat.any(-1)
    return both.view(list(full.shape[:2]) + [1] * (full.dim() - 2))


def _diagonal(sizes: List[int], spacing: List[float]) -> float:
    """The length of the image's diagonal, from the first element's centre to the last's, in spacing units."""
    squared = 0.0
    for size, step in zip(sizes, spacing):
        squared += ((size - 1) * step) ** 2
    return squared**0.5


def _module_spacing(spacing: Optional[List[float]], name: str) -> Optional[List[float]]:
    """A Module's ``spacing`` option as a list of floats, each finite and > 0."""
    if spacing is None:
        return None
    steps = checked_reals(spacing, name)
    for step in steps:
        check_option_range(step, name, 0.0, math.inf, True, True)
    return steps


class _DistanceLoss(nn.Module):
    """Options of the losses on distance maps; ``forward`` takes the target's map as ``distance``.

    ``takes_distance`` tells an :class:`~unetweights.evaluation.EvaluationGraph` to pass its
    ``distance`` input on.
    """

    takes_distance = True

    def __init__(
        self,
        activation: str,
        include_background: bool,
        spacing: Optional[List[float]],
        ignore_index: Optional[int],
        reduction: str,
    ) -> None:
        super().__init__()
        check_activation(activation)
        check_reduction(reduction)
        self.activation = activation
        self.include_background = checked_flag(include_background, "include_background")
        self.spacing = _module_spacing(spacing, "spacing")
        self.ignore_index = checked_index(ignore_index)
        self.reduction = reduction


class BoundaryLoss(_DistanceLoss):
    """Module form of :func:`boundary_loss`: ``forward(input, target, weight=None, distance=None)``."""

    def __init__(
        self,
        activation: str = "softmax",
        include_background: bool = True,
        spacing: Optional[List[float]] = None,
        ignore_index: Optional[int] = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(activation, include_background, spacing, ignore_index, reduction)

    def forward(
        self, input: Tensor, target: Tensor, weight: Optional[Tensor] = None, distance: Optional[Tensor] = None
    ) -> Tensor:
        return boundary_loss(
            input=input,
            target=target,
            weight=weight,
            distance=distance,
            activation=self.activation,
            include_background=self.include_background,
            spacing=self.spacing,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
        )


class HausdorffDTLoss(_DistanceLoss):
    """Module form of :func:`hausdorff_dt_loss`: ``forward(input, target, weight=None, distance=None)``.

    The prediction's distances are computed in the graph (the functional form also takes them).
    """

    def __init__(
        self,
        activation: str = "softmax",
        alpha: float = 2.0,
        include_background: bool = True,
        spacing: Optional[List[float]] = None,
        ignore_index: Optional[int] = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(activation, include_background, spacing, ignore_index, reduction)
        self.alpha = checked_real(alpha, "alpha")
        check_option_range(self.alpha, "alpha", 0.0, math.inf, True, True)

    def forward(
        self, input: Tensor, target: Tensor, weight: Optional[Tensor] = None, distance: Optional[Tensor] = None
    ) -> Tensor:
        return hausdorff_dt_loss(
            input=input,
            target=target,
            weight=weight,
            distance=distance,
            activation=self.activation,
            alpha=self.alpha,
            include_background=self.include_background,
            spacing=self.spacing,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
        )


__all__: List[str] = [
    "BoundaryLoss",
    "HausdorffDTLoss",
    "boundary_loss",
    "hausdorff_dt_loss",
]
