"""The surface part of :class:`SegmentationMetrics`: the NSD's counts summed over the dataset, and
the per-image Hausdorff distance, average surface distance and NSD averaged, with their image
counts (plain Python and torch; never scripted).

A percentile does not decompose over images, so the Hausdorff distance and the average surface
distance of a dataset are means of per-image values; the NSD is a ratio of counts, so its micro
score sums the counts first, like the overlap scores.
"""

import math
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Tuple

import torch
from torch import Tensor

from .._stage.options import checked_flag, checked_real
from ._accumulator_checks import as_tensor
from ._surface import (
    _tolerance_list,
    average_from,
    check_percentile,
    check_tolerance,
    counts_from,
    hausdorff_from,
    surface_distances,
    target_boundary,
)
from ._surface_modules import AverageSurfaceDistance, HausdorffDistance, SurfaceCount, _checked_spacing

# The per-image values a surface update takes, in this order (also the graph outputs' names).
SURFACE_VALUES: Tuple[str, ...] = ("hd", "assd", "nsd_within", "nsd_boundary", "target_boundary")


@dataclass(frozen=True)
class SurfaceOptions:
    """The surface options of an accumulator: NSD tolerance(s), Hausdorff percentile, voxel spacing."""

    tolerance: Tuple[float, ...]
    percentile: float
    spacing: Optional[Tuple[float, ...]]

    @staticmethod
    def checked(surface: Any, tolerance: Any, percentile: Any, spacing: Any) -> Optional["SurfaceOptions"]:
        """The options when ``surface`` is True (``tolerance`` then required), else None."""
        if not checked_flag(surface, "surface"):
            return None
        if tolerance is None:
            raise ValueError(
                "tolerance: required with surface=True, the NSD's τ in units of spacing (a number, or one per class)"
            )
        taus = _tolerance_list(tolerance)
        percentile = checked_real(percentile, "percentile", "a number in (0, 100]")
        check_percentile(percentile)
        check_tolerance(taus)
        steps = _checked_spacing(spacing)
        return SurfaceOptions(tuple(taus), percentile, None if steps is None else tuple(steps))

    def modules(self, prefix: str, activation: str, threshold: float, ignore_index: Optional[int]) -> Dict[str, Any]:
        """Graph metric modules whose outputs :func:`surface_outputs` reads, named ``prefix`` + SURFACE_VALUES."""
        spacing = None if self.spacing is None else list(self.spacing)
        shared = dict(activation=activation, threshold=threshold, ignore_index=ignore_index, spacing=spacing)
        taus = list(self.tolerance)
        return {
            prefix + "hd": HausdorffDistance(percentile=self.percentile, **shared),
            prefix + "assd": AverageSurfaceDistance(**shared),
            prefix + "nsd_within": SurfaceCount("within", tolerance=taus, **shared),
            prefix + "nsd_boundary": SurfaceCount("boundary", tolerance=taus, **shared),
            prefix + "target_boundary": SurfaceCount("target", tolerance=taus, **shared),
        }


def surface_layout(classes: int) -> List[Tuple[str, int]]:
    """The surface states of the accumulator's flat buffer, each (C,)."""
    names = ["nsd_within", "nsd_boundary", "nsd_sum", "nsd_images", "hd_sum", "hd_images"]
    names += ["assd_sum", "assd_images", "one_empty"]
    return [(name, classes) for name in names]


def surface_values(
    input: Tensor,
    target: Tensor,
    weight: Optional[Tensor],
    options: SurfaceOptions,
    activation: str,
    threshold: float,
    ignore_index: Optional[int],
    spacing: Optional[List[float]],
) -> Dict[str, Tensor]:
    """The per-image values of SURFACE_VALUES for every class, (N, C) each, from one pair of transforms."""
    steps = spacing if spacing is not None else (None if options.spacing is None else list(options.spacing))
    distances = surface_distances(input, target, weight, activation, threshold, True, ignore_index, steps)
    within, boundary = counts_from(distances, list(options.tolerance))
    return {
        "hd": hausdorff_from(distances, options.percentile, False, math.nan),
        "assd": average_from(distances, True, math.nan),
        "nsd_within": within,
        "nsd_boundary": boundary,
        "target_boundary": target_boundary(distances),
    }


def surface_outputs(outputs: Mapping[str, Any], prefix: str, classes: Optional[int]) -> Dict[str, Tensor]:
    """SURFACE_VALUES read from a graph's outputs (or given by hand) and checked; ValueError naming the key."""
    missing = [prefix + name for name in SURFACE_VALUES if prefix + name not in outputs]
    if missing:
        raise ValueError(
            f"outputs: missing {missing}; build the accumulator with surface=True and put its "
            f"surface_modules(prefix={prefix!r}) in the graph's metrics (the outputs hold {sorted(outputs)})"
        )
    values = {name: as_tensor(outputs[prefix + name], prefix + name) for name in SURFACE_VALUES}
    shape = list(values["hd"].shape)
    if len(shape) != 2 or shape[0] < 1 or (classes is not None and shape[1] != classes):
        expected = "(N, C)" if classes is None else f"(N, {classes})"
        raise ValueError(f"{prefix}hd: expected shape {expected} with N >= 1, every class, got {shape}")
    for name, value in values.items():
        if not value.is_floating_point() or list(value.shape) != shape:
            raise ValueError(f"{prefix}{name}: expected floating-point values of the shape of hd, {shape}")
        low = bool((value < 0).any())
        if low or (name not in ("hd", "assd") and bool(torch.isinf(value).any())):
            raise ValueError(f"{prefix}{name}: expected {'non-negative' if name in ('hd', 'assd') else 'finite non-negative'} values (NaN for invalid input)")
    within, boundary, target = values["nsd_within"], values["nsd_boundary"], values["target_boundary"]
    if bool((within > boundary).any()) or bool((target > boundary).any()):
        raise ValueError(
            f"{prefix}nsd_within, {prefix}target_boundary: expected at most {prefix}nsd_boundary, the voxels of both boundaries"
        )
    return values


def add_surface(state: Mapping[str, Tensor], values: Mapping[str, Tensor], ignore_empty: bool) -> None:
    """Add one batch's per-image values to the states.

    An image enters class c's sums and means unless both its boundaries are empty there (nothing
    to measure) or, with ``ignore_empty``, its target's is. NaN values (invalid input) are not
    empty: they enter, and their NaN is carried on.
    """
    device = state["nsd_within"].device
    v = {name: value.to(device=device, dtype=torch.float64) for name, value in values.items()}
    boundary, target = v["nsd_boundary"], v["target_boundary"]
    counted = boundary != 0
    if ignore_empty:
        counted = counted & (target != 0)
    zero = torch.zeros_like(boundary)
    state["nsd_within"] += torch.where(counted, v["nsd_within"], zero).sum(0)
    state["nsd_boundary"] += torch.where(counted, boundary, zero).sum(0)
    nsd = v["nsd_within"] / torch.where(counted, boundary, torch.ones_like(boundary))
    for name, value in (("nsd", nsd), ("hd", v["hd"]), ("assd", v["assd"])):
        state[f"{name}_sum"] += torch.where(counted, value, zero).sum(0)
        state[f"{name}_images"] += counted.sum(0)
    # Exactly one boundary empty: the prediction's (boundary == target) or the target's.
    state["one_empty"] += (counted & ((target == 0) | (boundary == target))).sum(0)


def surface_results(state: Mapping[str, Tensor], first: int, empty_score: float) -> Dict[str, Tensor]:
    """The surface entries of :meth:`SegmentationMetrics.compute`, per class from ``first`` on."""
    within, boundary = state["nsd_within"][first:], state["nsd_boundary"][first:]
    result: Dict[str, Tensor] = {
        "nsd": torch.where(boundary == 0, torch.full_like(boundary, empty_score), within / boundary.clamp_min(1.0))
    }
    for name, key in (("nsd", "nsd_macro"), ("hd", "hd"), ("assd", "assd")):
        total, images = state[f"{name}_sum"][first:], state[f"{name}_images"][first:]
        # No image to average: the NSD follows empty_score like the overlap scores; a distance is NaN.
        empty = empty_score if name == "nsd" else math.nan
        result[key] = torch.where(images == 0, torch.full_like(total, empty), total / images.clamp_min(1.0))
        result[f"{name}_images"] = images.long()
    result["one_empty"] = state["one_empty"][first:].long()
    return result
