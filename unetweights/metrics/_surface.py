"""Surface metrics per image and class: Hausdorff distance (a percentile, or the maximum), average
surface distance and normalized surface Dice (NSD), in physical units of ``spacing``.

One definition, MONAI's voxel-based one (``compute_hausdorff_distance``,
``compute_average_surface_distance``, ``compute_surface_dice`` without sub-voxels), for every mode:

- **Masks.** The hard prediction P and the target T of each image and class, as the overlap
  metrics make them (:mod:`unetweights.metrics`); pixels of ``ignore_index`` or of weight 0 are
  left out of both (background in both masks, as MONAI does for ``ignore_index``). A weight map
  has no other effect: a distance has no per-pixel weight.
- **Boundary.** ∂M, the voxels of M with at least one face neighbour (2·d of them) outside M;
  the space beyond the image counts as outside, so a mask touching the image edge has a boundary
  there.
- **Distance.** d(x, ∂M), the Euclidean distance from the centre of voxel x to the nearest centre
  of a boundary voxel of M, each axis scaled by its ``spacing``; exact (the squared distances are
  float32 sums of squared steps, exact for integer spacings up to 2^24).
- **Directed distances.** D(P→T) = {d(x, ∂T) : x ∈ ∂P}, one value per boundary voxel, and D(T→P).
- **Hausdorff distance** at percentile q: max(Q_q(D(P→T)), Q_q(D(T→P))), or Q_q(D(P→T)) alone
  when ``directed``; Q_q is the linearly interpolated percentile of ``numpy.percentile`` and
  ``torch.quantile`` (rank q/100·(m - 1) of the m sorted values); q = 100 is the maximum, the
  classical Hausdorff distance.
- **Average surface distance**: the mean of D(P→T) ∪ D(T→P) (both sets pooled, so each boundary
  voxel counts once: (Σ D(P→T) + Σ D(T→P)) / (|∂P| + |∂T|)), or of D(P→T) alone unless ``symmetric``.
- **NSD** at tolerance τ: (|{x ∈ ∂P : d(x, ∂T) ≤ τ}| + |{x ∈ ∂T : d(x, ∂P) ≤ τ}|) / (|∂P| + |∂T|),
  in [0, 1]; a sum of counts, so a dataset's NSD is the ratio of the summed counts
  (:func:`surface_counts`).

Empty masks, documented like the NaN rule: where P and T are both empty there is nothing to
measure and every metric is ``empty_score`` (NaN by default: skipped by ``nanmean`` and by the
accumulator). Where exactly one of them is empty the distances are +inf (a Hausdorff distance and
an average surface distance of inf) and the NSD is 0 (no boundary voxel lies within τ of a
boundary that does not exist). These are MONAI's values.

Invalid input follows the package's NaN rule: a NaN or infinite logit, or (in a compiled or
exported graph) an invalid target or weight, makes every value of its image NaN.

Cost: two exact distance transforms per image and class (:func:`~unetweights.losses.distance_transform`'s
algorithm), and for a percentile other than 100 a sort of each image's distances. In an exported
graph each transform step holds at most (voxels × ⌈L / 16⌉) float32 values for the longest axis L.
"""

import math
from typing import List, Optional, Tuple

import torch
from torch import Tensor

from .._stage.inputs import weighted_parts
from .._stage.morphology import checked_spacing, squared_distance_to
from .._stage.options import check_number, checked_flag, checked_real, checked_reals
from .._stage.reduce import check_option_range, checking_values, input_poison
from ._per_image import _prediction, check_empty_score, check_prediction_options


def check_percentile(percentile: float) -> None:
    if not torch.jit.is_scripting() and checking_values():
        check_number(percentile, "percentile", "a number in (0, 100]")
    check_option_range(percentile, "percentile", 0.0, 100.0, True, False)


def check_tolerance(tolerance: List[float]) -> None:
    if not torch.jit.is_scripting() and checking_values():
        checked_reals(tolerance, "tolerance", "a non-negative number, or a list of one per scored class")
    if len(tolerance) == 0:
        raise ValueError("tolerance: expected a non-negative number, or a list of one per scored class, got []")
    for tau in tolerance:
        check_option_range(tau, "tolerance", 0.0, math.inf, False, True)


def _tolerance_list(tolerance: object) -> List[float]:
    """A Module's or an eager caller's ``tolerance``: a number becomes a list of one."""
    if isinstance(tolerance, (int, float)) and not isinstance(tolerance, bool):
        return [float(tolerance)]
    if isinstance(tolerance, (list, tuple)):
        return [checked_real(tau, "tolerance", "a non-negative number") for tau in tolerance]
    raise TypeError(
        f"tolerance: expected a non-negative number, or a list of one per scored class, got {type(tolerance).__name__}"
    )


def _boundary(mask: Tensor) -> Tensor:
    """The voxels of ``mask`` (N, C, *) with a face neighbour outside it (beyond the image is outside)."""
    interior = mask
    for dim in range(2, mask.dim()):
        length = mask.shape[dim]
        outside = torch.zeros_like(mask.narrow(dim, 0, 1))
        before = torch.cat([outside, mask.narrow(dim, 0, length - 1)], dim)
        after = torch.cat([mask.narrow(dim, 1, length - 1), outside], dim)
        interior = interior & before & after
    return mask & ~interior


def _masks(
    input: Tensor,
    target: Tensor,
    weight: Optional[Tensor],
    activation: str,
    threshold: float,
    include_background: bool,
    ignore_index: Optional[int],
) -> Tuple[Tensor, Tensor, Tensor]:
    """The hard prediction and target of each scored class as bool (N, C', *), and the (N,) poison."""
    check_prediction_options(activation, threshold)
    prediction = _prediction(input, target, activation, True, threshold)
    _, truth, pixel_weight, poison = weighted_parts(
        prediction, target, weight, "none", ignore_index, include_background, input_poison(input)
    )
    predicted = prediction > 0.5
    true = truth > 0.5
    if pixel_weight is not None:
        # Only the zeros of a weight map matter; an invalid weight (NaN while tracing) poisons.
        poison = poison + input_poison(pixel_weight)
        counted = pixel_weight > 0
        predicted = predicted & counted
        true = true & counted
    if not include_background:
        predicted, true = predicted[:, 1:], true[:, 1:]
    return predicted, true, poison


def _percentile(boundary: Tensor, distance: Tensor, count: Tensor, percentile: float) -> Tensor:
    """Q_q of ``distance`` over the ``count`` voxels of ``boundary``, per image and class (N, C').

    Rows with no boundary voxel give ±inf, which the caller's empty rule replaces.
    """
    if percentile >= 100.0:
        return _directed(boundary, distance, -math.inf).amax(-1)
    # The other voxels are +inf and sort last: the first ``count`` values are the boundary's.
    ordered, _ = torch.sort(_directed(boundary, distance, math.inf), -1)
    # The rank in float64: in float32 its fraction is already off by 1e-4 at 2,000 boundary voxels.
    rank = (count - 1).clamp_min(0).to(torch.float64) * (percentile / 100.0)
    below = rank.floor()
    low = ordered.gather(-1, below.to(torch.int64).unsqueeze(-1)).squeeze(-1)
    high = ordered.gather(-1, rank.ceil().to(torch.int64).unsqueeze(-1)).squeeze(-1)
    fraction = (rank - below).to(distance.dtype)
    # Equal ends (inf included, where inf - inf would be NaN) need no interpolation.
    return torch.where(high == low, low, low + fraction * (high - low))


def _directed(boundary: Tensor, distance: Tensor, fill: float) -> Tensor:
    """``distance`` at the voxels of ``boundary``, ``fill`` elsewhere, flattened to (N, C, V)."""
    values = torch.where(boundary, distance, torch.full_like(distance, fill))
    return values.reshape(values.shape[0], values.shape[1], -1)


def _empty_rule(value: Tensor, count_p: Tensor, count_t: Tensor, empty_score: float, one_empty: float) -> Tensor:
    """``empty_score`` where both boundaries are empty, ``one_empty`` where one of them is."""
    none_p = count_p == 0
    none_t = count_t == 0
    value = torch.where(none_p | none_t, torch.full_like(value, one_empty), value)
    return torch.where(none_p & none_t, torch.full_like(value, empty_score), value)


def surface_distances(
    input: Tensor,
    target: Tensor,
    weight: Optional[Tensor],
    activation: str,
    threshold: float,
    include_background: bool,
    ignore_index: Optional[int],
    spacing: Optional[List[float]],
) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """The boundaries and their distance fields: ``(boundary_p, boundary_t, to_t, to_p, poison)``.

    ``boundary_p`` and ``boundary_t`` are bool (N, C', *); ``to_t`` = d(x, ∂T) and ``to_p`` =
    d(x, ∂P) are float32 (N, C', *), +inf everywhere for an empty boundary; ``poison`` is (N,).
    """
    predicted, true, poison = _masks(input, target, weight, activation, threshold, include_background, ignore_index)
    steps = checked_spacing(spacing, predicted.dim() - 2)
    boundary_p = _boundary(predicted)
    boundary_t = _boundary(true)
    # Both transforms as one: half the operations in a graph.
    classes = boundary_p.shape[1]
    distance = torch.sqrt(squared_distance_to(torch.cat([boundary_t, boundary_p], 1), steps))
    return boundary_p, boundary_t, distance[:, :classes], distance[:, classes:], poison


def _counts(boundary: Tensor) -> Tensor:
    return boundary.reshape(boundary.shape[0], boundary.shape[1], -1).sum(-1).to(torch.float32)


def _poisoned(value: Tensor, poison: Tensor) -> Tensor:
    return value + poison.to(value.dtype).unsqueeze(1)


def target_boundary(distances: Tuple[Tensor, Tensor, Tensor, Tensor, Tensor]) -> Tensor:
    """|∂T| of each image and class, float32 (N, C'): 0 where the target lacks the class."""
    return _poisoned(_counts(distances[1]), distances[4])


def hausdorff_from(
    distances: Tuple[Tensor, Tensor, Tensor, Tensor, Tensor], percentile: float, directed: bool, empty_score: float
) -> Tensor:
    """:func:`hausdorff_distance` of the boundaries and distance fields of :func:`surface_distances`."""
    boundary_p, boundary_t, to_t, to_p, poison = distances
    count_p, count_t = _counts(boundary_p), _counts(boundary_t)
    value = _percentile(boundary_p, to_t, count_p, percentile)
    if not directed:
        value = torch.maximum(value, _percentile(boundary_t, to_p, count_t, percentile))
    return _poisoned(_empty_rule(value, count_p, count_t, empty_score, math.inf), poison)


def hausdorff_distance(
    input: Tensor,
    target: Tensor,
    weight: Optional[Tensor] = None,
    activation: str = "softmax",
    threshold: float = 0.5,
    percentile: float = 95.0,
    directed: bool = False,
    include_background: bool = True,
    ignore_index: Optional[int] = None,
    spacing: Optional[List[float]] = None,
    empty_score: float = math.nan,
) -> Tensor:
    """Hausdorff distance of each image and class at ``percentile`` (HD95 by default), in units of ``spacing``.

    max(Q_q(D(P→T)), Q_q(D(T→P))), the q-th percentile (linear interpolation) of the distances
    from each boundary voxel of the prediction to the target's boundary and back; ``directed``
    keeps Q_q(D(P→T)) alone; ``percentile=100`` is the maximum. Equal to MONAI's
    ``compute_hausdorff_distance``. The definitions (boundary, distance, empty masks) are in
    :mod:`unetweights.metrics._surface`'s docstring, repeated in the README.

    Parameters
    ----------
    input, target, weight, activation, threshold, include_background, ignore_index
        As for :func:`~unetweights.metrics.dice_score` (the prediction is always hard). Only the
        zeros of ``weight`` matter: those pixels are left out, like ``ignore_index``.
    percentile : float
        In (0, 100]; 95 by default.
    directed : bool
        True: the distances from the prediction to the target only.
    spacing : list of float, optional
        The physical size of a voxel along each spatial axis (default 1).
    empty_score : float
        The value where prediction and target are both empty (NaN by default). Where exactly one
        is empty the distance is +inf.

    Returns
    -------
    Tensor
        float32, shape (N, C), or (N, C - 1) without the background.
    """
    check_empty_score(empty_score)
    check_percentile(percentile)
    if not torch.jit.is_scripting():
        checked_flag(directed, "directed")
    distances = surface_distances(input, target, weight, activation, threshold, include_background, ignore_index, spacing)
    return hausdorff_from(distances, percentile, directed, empty_score)


def average_from(distances: Tuple[Tensor, Tensor, Tensor, Tensor, Tensor], symmetric: bool, empty_score: float) -> Tensor:
    """:func:`average_surface_distance` of the boundaries and distance fields of :func:`surface_distances`."""
    boundary_p, boundary_t, to_t, to_p, poison = distances
    count_p, count_t = _counts(boundary_p), _counts(boundary_t)
    total = _directed(boundary_p, to_t, 0.0).sum(-1)
    count = count_p
    if symmetric:
        total = total + _directed(boundary_t, to_p, 0.0).sum(-1)
        count = count + count_t
    value = total / count.clamp_min(1.0)
    return _poisoned(_empty_rule(value, count_p, count_t, empty_score, math.inf), poison)


def average_surface_distance(
    input: Tensor,
    target: Tensor,
    weight: Optional[Tensor] = None,
    activation: str = "softmax",
    threshold: float = 0.5,
    symmetric: bool = True,
    include_background: bool = True,
    ignore_index: Optional[int] = None,
    spacing: Optional[List[float]] = None,
    empty_score: float = math.nan,
) -> Tensor:
    """Average (symmetric) surface distance of each image and class, in units of ``spacing``.

    (Σ D(P→T) + Σ D(T→P)) / (|∂P| + |∂T|), the mean over both boundaries' voxels of the distance
    to the other boundary (ASSD); with ``symmetric=False`` the mean of D(P→T) alone. Equal to
    MONAI's ``compute_average_surface_distance`` (whose ``symmetric`` defaults to False). Where
    exactly one mask is empty the value is +inf; both empty, ``empty_score``. Parameters as for
    :func:`hausdorff_distance`.

    Returns
    -------
    Tensor
        float32, shape (N, C), or (N, C - 1) without the background.
    """
    check_empty_score(empty_score)
    if not torch.jit.is_scripting():
        checked_flag(symmetric, "symmetric")
    distances = surface_distances(input, target, weight, activation, threshold, include_background, ignore_index, spacing)
    return average_from(distances, symmetric, empty_score)


def _per_class(tolerance: List[float], classes: int) -> List[float]:
    if len(tolerance) == 1:
        return tolerance * classes
    if len(tolerance) != classes:
        raise ValueError(
            f"tolerance: expected one value or one per scored class ({classes}), got {len(tolerance)}"
        )
    return tolerance


def counts_from(distances: Tuple[Tensor, Tensor, Tensor, Tensor, Tensor], tolerance: List[float]) -> Tuple[Tensor, Tensor]:
    """:func:`surface_counts` of the boundaries and distance fields of :func:`surface_distances`."""
    boundary_p, boundary_t, to_t, to_p, poison = distances
    taus = _per_class(tolerance, boundary_p.shape[1])
    shape = [1, len(taus)] + [1] * (boundary_p.dim() - 2)
    tau = torch.tensor(taus, dtype=torch.float32, device=to_t.device).view(shape)
    within = _counts(boundary_p & (to_t <= tau)) + _counts(boundary_t & (to_p <= tau))
    boundary = _counts(boundary_p) + _counts(boundary_t)
    return _poisoned(within, poison), _poisoned(boundary, poison)


def nsd_from(within: Tensor, boundary: Tensor, empty_score: float) -> Tensor:
    """The NSD of each image and class from its counts; ``empty_score`` where both boundaries are empty."""
    value = within / boundary.clamp_min(1.0)
    return torch.where(boundary == 0, torch.full_like(value, empty_score), value)


def surface_counts(
    input: Tensor,
    target: Tensor,
    weight: Optional[Tensor] = None,
    activation: str = "softmax",
    threshold: float = 0.5,
    tolerance: Optional[List[float]] = None,
    include_background: bool = True,
    ignore_index: Optional[int] = None,
    spacing: Optional[List[float]] = None,
) -> Tuple[Tensor, Tensor]:
    """The counts the NSD is a ratio of: ``(within, boundary)``, each float32 (N, C').

    ``within`` = |{x ∈ ∂P : d(x, ∂T) ≤ τ}| + |{x ∈ ∂T : d(x, ∂P) ≤ τ}| and ``boundary`` =
    |∂P| + |∂T|; a dataset's NSD is Σ within / Σ boundary. ``tolerance`` is τ in units of
    ``spacing``, one value for every class or one per scored class. Other parameters as for
    :func:`hausdorff_distance`.
    """
    if tolerance is None:
        raise ValueError("tolerance: required, the distance τ (in units of spacing) within which a boundary voxel counts")
    taus = tolerance
    if not torch.jit.is_scripting():
        # Eager callers may pass a number or a tuple.
        taus = _tolerance_list(tolerance)
    check_tolerance(taus)
    distances = surface_distances(input, target, weight, activation, threshold, include_background, ignore_index, spacing)
    return counts_from(distances, taus)


def surface_dice(
    input: Tensor,
    target: Tensor,
    weight: Optional[Tensor] = None,
    activation: str = "softmax",
    threshold: float = 0.5,
    tolerance: Optional[List[float]] = None,
    include_background: bool = True,
    ignore_index: Optional[int] = None,
    spacing: Optional[List[float]] = None,
    empty_score: float = math.nan,
) -> Tensor:
    """Normalized surface Dice (NSD) of each image and class at tolerance τ, in [0, 1].

    The share of both boundaries' voxels that lie within τ (``tolerance``, in units of
    ``spacing``; one value or one per scored class) of the other boundary:
    (|{x ∈ ∂P : d(x, ∂T) ≤ τ}| + |{x ∈ ∂T : d(x, ∂P) ≤ τ}|) / (|∂P| + |∂T|). Equal to MONAI's
    ``compute_surface_dice`` with ``use_subvoxels=False``. Where exactly one mask is empty the
    NSD is 0; both empty, ``empty_score``. Other parameters as for :func:`hausdorff_distance`.

    Returns
    -------
    Tensor
        float32, shape (N, C), or (N, C - 1) without the background.
    """
    check_empty_score(empty_score)
    within, boundary = surface_counts(
        input, target, weight, activation, threshold, tolerance, include_background, ignore_index, spacing
    )
    return nsd_from(within, boundary, empty_score)
