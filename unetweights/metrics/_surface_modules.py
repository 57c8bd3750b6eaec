"""The Module forms of the surface metrics, and the group an evaluation graph computes them in.

Every surface metric starts from the same two distance transforms of the same masks. A
:class:`SurfaceGroup` holds the metrics that share their mask options (activation, threshold,
background, ignore index, spacing) and computes those transforms once for all of them:
:class:`~unetweights.evaluation.EvaluationGraph` builds one group per set of options, so a graph
with HD95, ASSD, NSD and the NSD counts of the accumulator runs two transforms, not eight.
"""

import math
from typing import Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn

from .._stage.morphology import checked_spacing
from .._stage.options import checked_flag, checked_index, checked_reals
from ._per_image import check_empty_score, check_prediction_options
from ._surface import (
    _tolerance_list,
    average_from,
    check_percentile,
    check_tolerance,
    counts_from,
    hausdorff_from,
    nsd_from,
    surface_distances,
    target_boundary,
)

Distances = Tuple[Tensor, Tensor, Tensor, Tensor, Tensor]


def _checked_spacing(spacing: Optional[List[float]]) -> Optional[List[float]]:
    if spacing is None:
        return None
    steps = [float(step) for step in checked_reals(spacing, "spacing")]
    return checked_spacing(steps, len(steps))


def _required_tolerance(tolerance: object) -> List[float]:
    if tolerance is None:
        raise ValueError("tolerance: required, the distance τ (in units of spacing) within which a boundary voxel counts")
    taus = _tolerance_list(tolerance)
    check_tolerance(taus)
    return taus


class _MaskOptions(nn.Module):
    """The options that make the masks and their distance fields, shared by a metric and a group."""

    def __init__(
        self,
        activation: str,
        threshold: float,
        include_background: bool,
        ignore_index: Optional[int],
        spacing: Optional[List[float]],
    ) -> None:
        super().__init__()
        check_prediction_options(activation, threshold)
        self.activation = activation
        self.threshold = float(threshold)
        self.include_background = checked_flag(include_background, "include_background")
        self.ignore_index = checked_index(ignore_index)
        self.spacing: Optional[List[float]] = _checked_spacing(spacing)

    def mask_options(self) -> Tuple[str, float, bool, Optional[int], Optional[Tuple[float, ...]]]:
        """The options that decide the masks and their distances: metrics with equal ones share them."""
        spacing = None if self.spacing is None else tuple(self.spacing)
        return self.activation, self.threshold, self.include_background, self.ignore_index, spacing

    def distances(self, input: Tensor, target: Tensor, weight: Optional[Tensor]) -> Distances:
        return surface_distances(
            input, target, weight, self.activation, self.threshold, self.include_background, self.ignore_index, self.spacing
        )


class _SurfaceMetric(_MaskOptions):
    """A surface metric: its forward scores the distance fields of its own masks."""

    def forward(self, input: Tensor, target: Tensor, weight: Optional[Tensor] = None) -> Tensor:
        return self.from_distances(self.distances(input, target, weight))

    @torch.jit.export
    def from_distances(self, distances: Distances) -> Tensor:
        raise NotImplementedError("a surface metric scores the distances")


class HausdorffDistance(_SurfaceMetric):
    """Module form of :func:`hausdorff_distance`; options are fixed at construction."""

    def __init__(
        self,
        activation: str = "softmax",
        threshold: float = 0.5,
        percentile: float = 95.0,
        directed: bool = False,
        include_background: bool = True,
        ignore_index: Optional[int] = None,
        spacing: Optional[List[float]] = None,
        empty_score: float = math.nan,
    ) -> None:
        super().__init__(activation, threshold, include_background, ignore_index, spacing)
        check_percentile(percentile)
        check_empty_score(empty_score)
        self.percentile = float(percentile)
        self.directed = checked_flag(directed, "directed")
        self.empty_score = float(empty_score)

    @torch.jit.export
    def from_distances(self, distances: Distances) -> Tensor:
        return hausdorff_from(distances, self.percentile, self.directed, self.empty_score)


class AverageSurfaceDistance(_SurfaceMetric):
    """Module form of :func:`average_surface_distance`; options are fixed at construction."""

    def __init__(
        self,
        activation: str = "softmax",
        threshold: float = 0.5,
        symmetric: bool = True,
        include_background: bool = True,
        ignore_index: Optional[int] = None,
        spacing: Optional[List[float]] = None,
        empty_score: float = math.nan,
    ) -> None:
        super().__init__(activation, threshold, include_background, ignore_index, spacing)
        check_empty_score(empty_score)
        self.symmetric = checked_flag(symmetric, "symmetric")
        self.empty_score = float(empty_score)

    @torch.jit.export
    def from_distances(self, distances: Distances) -> Tensor:
        return average_from(distances, self.symmetric, self.empty_score)


class SurfaceDice(_SurfaceMetric):
    """Module form of :func:`surface_dice`; options are fixed at construction.

    ``tolerance`` (required: None is refused) is τ in units of ``spacing``, a number or a
    sequence with one per scored class.
    """

    def __init__(
        self,
        activation: str = "softmax",
        threshold: float = 0.5,
        tolerance: Optional[List[float]] = None,
        include_background: bool = True,
        ignore_index: Optional[int] = None,
        spacing: Optional[List[float]] = None,
        empty_score: float = math.nan,
    ) -> None:
        super().__init__(activation, threshold, include_background, ignore_index, spacing)
        check_empty_score(empty_score)
        self.tolerance: List[float] = _required_tolerance(tolerance)
        self.empty_score = float(empty_score)

    @torch.jit.export
    def from_distances(self, distances: Distances) -> Tensor:
        within, boundary = counts_from(distances, self.tolerance)
        return nsd_from(within, boundary, self.empty_score)


class SurfaceCount(_SurfaceMetric):
    """One count of :func:`surface_counts` for an evaluation graph.

    ``count`` is "within" (boundary voxels within τ of the other boundary), "boundary"
    (|∂P| + |∂T|) or "target" (|∂T|, which tells an image whose target lacks the class), each
    (N, C') per class; :meth:`SegmentationMetrics.count_modules` builds them with the
    accumulator's options (``surface=True``), and ``update_from_outputs`` reads them back. The
    other options are those of :func:`surface_counts`.
    """

    def __init__(
        self,
        count: str,
        activation: str = "softmax",
        threshold: float = 0.5,
        tolerance: Optional[List[float]] = None,
        include_background: bool = True,
        ignore_index: Optional[int] = None,
        spacing: Optional[List[float]] = None,
    ) -> None:
        super().__init__(activation, threshold, include_background, ignore_index, spacing)
        if count not in ("within", "boundary", "target"):
            raise ValueError(f"count: expected 'within', 'boundary' or 'target', got {count!r}")
        self.count = count
        self.tolerance: List[float] = _required_tolerance(tolerance)

    @torch.jit.export
    def from_distances(self, distances: Distances) -> Tensor:
        if self.count == "target":
            return target_boundary(distances)
        within, boundary = counts_from(distances, self.tolerance)
        return within if self.count == "within" else boundary


def is_surface_metric(module: nn.Module) -> bool:
    return isinstance(module, _SurfaceMetric)


class SurfaceGroup(_MaskOptions):
    """Surface metrics with equal mask options, scored from one pair of distance transforms.

    ``forward(input, target, weight)`` returns each metric's output under its name. Built by
    :func:`surface_groups`; every metric must have the mask options of the first.
    """

    def __init__(self, metrics: Dict[str, nn.Module]) -> None:
        first = next(iter(metrics.values()))
        options = first.mask_options()
        for name, metric in metrics.items():
            if metric.mask_options() != options:
                raise ValueError(f"metrics['{name}']: its mask options {metric.mask_options()} differ from {options}")
        super().__init__(first.activation, first.threshold, first.include_background, first.ignore_index, first.spacing)
        self.metrics = nn.ModuleDict(metrics)

    def forward(self, input: Tensor, target: Tensor, weight: Optional[Tensor] = None) -> Dict[str, Tensor]:
        distances = self.distances(input, target, weight)
        outputs: Dict[str, Tensor] = {}
        for name, metric in self.metrics.items():
            outputs[name] = metric.from_distances(distances)
        return outputs


def surface_groups(metrics: Dict[str, nn.Module]) -> List[SurfaceGroup]:
    """The surface metrics among ``metrics`` in groups of equal mask options, in order of appearance."""
    groups: Dict[object, Dict[str, nn.Module]] = {}
    for name, metric in metrics.items():
        if is_surface_metric(metric):
            groups.setdefault(metric.mask_options(), {})[name] = metric
    return [SurfaceGroup(group) for group in groups.values()]
