"""The dataset accumulator :class:`SegmentationMetrics`: weighted counts summed over batches and
processes (plain Python and ``torch.distributed``; never scripted).
"""

import math
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor

from .._stage.options import checked_flag, checked_real
from .._stage.reduce import ratio_or
from ._accumulator_checks import check_count_relations, checked_counts, checked_device, ranks_holding
from ._accumulator_surface import SurfaceOptions, add_surface, surface_layout, surface_outputs, surface_results, surface_values
from ._per_image import (
    COUNT_NAMES,
    SegmentationCount,
    accuracy_fraction,
    check_empty_score,
    check_prediction_options,
    dice_fraction,
    in_target,
    iou_fraction,
    segmentation_counts,
)


class SegmentationMetrics:
    """Dataset-level Dice, IoU and pixel accuracy: weighted counts summed over batches and processes.

    The interface follows torchmetrics (without needing it): :meth:`update` with each batch,
    :meth:`compute` for the scores so far (summed over every process of a ``torch.distributed``
    group), :meth:`reset` to start again. The options are those of :func:`dice_score`.

    Parameters
    ----------
    num_classes : int, optional
        C, the channels of the input. None (the default): taken from the first update. Give it
        when a process of a distributed run may see no data, so that it still takes part in the
        sync.
    activation, hard, threshold, ignore_index
        How the prediction and the counts are made, as for :func:`dice_score`. With
        ``hard=False`` Dice and IoU are soft and the result holds no accuracy (defined on hard
        labels only).
    include_background : bool
        False drops class 0 from the per-class results (the overall accuracy still counts it, as
        :func:`pixel_accuracy` does).
    empty_score : float
        The value of a score whose denominator is 0. NaN (the default): such an entry is left
        out of the macro mean (and a class absent from the whole dataset is NaN in the micro
        score too); a finite value is averaged like any other, as :func:`dice_score` gives it.
    ignore_empty : bool
        False (the default, nnU-Net's rule): an image whose target lacks a class but whose
        prediction has it scores 0 for that class. True (MONAI's rule): Dice and IoU leave out,
        for each class, the images whose target lacks it (Σt = 0), in the macro and the micro
        scores alike (see the Notes). The accuracies are unchanged: the class accuracy tp / Σt
        already follows this rule, and the overall accuracy has no class to leave out.
    surface : bool
        True: also the surface metrics of :mod:`unetweights.metrics._surface` (every class; see
        the Notes), with ``tolerance`` (required: the NSD's τ in units of ``spacing``, one value or
        one per class), ``percentile`` (of the Hausdorff distance, 95 by default) and ``spacing``
        (the voxel size; :meth:`update` may give each batch its own).
    sync_on_compute : bool
        True (the default): :meth:`compute` sums the states over the default process group (or
        ``process_group``) when ``torch.distributed`` is initialised with more than one process.
        Every process must then call :meth:`compute`, with the same C, ``hard``, ``activation``,
        ``empty_score`` and ``ignore_empty``; where they differ, every process raises the same
        ValueError.
    process_group : optional
        The ``torch.distributed`` group to sync over; None is the default group.
    device : torch.device or str, optional
        Where the states live. None (the default): the device of the first update; later
        updates are moved there (a process without updates syncs from the CPU, or from the
        current CUDA device with NCCL). A NCCL group needs them on CUDA: pass ``device="cuda"``
        when the updates are numpy counts from onnxruntime. An unknown or unavailable device is
        refused with a ValueError naming ``device``.

    Notes
    -----
    Each update adds, for every class c, the weighted counts of :func:`segmentation_counts`
    (tp, Σp, Σt) and the counted mass, and for every score the sum of its per-image values and
    how many images that sum holds, all in float64 (one flat buffer: a sync is one
    ``all_reduce``). :meth:`compute` gives, per class,

        micro Dice = 2·Σ_n tp / (Σ_n Σp + Σ_n Σt),   micro IoU = Σ_n tp / (Σ_n Σp + Σ_n Σt - Σ_n tp),
        micro class accuracy = Σ_n tp / Σ_n Σt,      macro X = mean over images n of X_n,

    and the overall pixel accuracy: the correct over the counted weight mass (pixels for
    "softmax"; pixels and channels for "sigmoid" and "none"), micro and macro.

    With ``ignore_empty=True`` the images whose target lacks class c (Σt = 0) are left out of
    class c's Dice and IoU: each gets ``empty_score`` as its per-image value (as
    :func:`dice_score` gives it; skipped in the macro mean when NaN), and its Σp is left out of
    the micro sums (its tp and Σt are 0), so micro Dice = 2·Σ_n tp / (Σ_{n: Σt > 0} Σp + Σ_n Σt),
    the micro score over the images that hold the class, and ``empty_score`` for a class that no
    image's target holds. An image with NaN counts is not "lacking" a class: its NaN is carried on.

    Absent classes and invalid input are kept apart with the counts themselves. An image whose
    denominator is exactly 0 for a class (the class absent from it) is left out of that class's
    macro mean when ``empty_score`` is NaN; ``<name>_images`` says how many images each entry
    averages. An image with invalid input (a NaN or infinite logit, say: see
    :mod:`unetweights.metrics`) has NaN counts, so every micro score and every macro mean it enters is NaN from
    then on: a NaN in is a NaN out, never a silently skipped image. Eager updates raise for a bad
    target or weight instead.

    :meth:`update_counts` and :meth:`update_from_outputs` take the counts computed elsewhere,
    for example by the :class:`SegmentationCount` modules of an exported graph run with
    :class:`~unetweights.runtime.OnnxEvaluator` (build them with :meth:`count_modules`, so that
    they share these options).

    Examples
    --------
    >>> metrics = SegmentationMetrics(num_classes=3, ignore_index=255)
    >>> for logits, target, weight in loader:  # doctest: +SKIP
    ...     metrics.update(logits, target, weight)
    >>> scores = metrics.compute()  # doctest: +SKIP
    >>> scores["dice"], scores["dice_macro"], scores["accuracy"]  # doctest: +SKIP
    """

    def __init__(
        self,
        num_classes: Optional[int] = None,
        activation: str = "softmax",
        hard: bool = True,
        threshold: float = 0.5,
        include_background: bool = True,
        ignore_index: Optional[int] = None,
        empty_score: float = math.nan,
        ignore_empty: bool = False,
        surface: bool = False,
        tolerance: Any = None,
        percentile: float = 95.0,
        spacing: Optional[Sequence[float]] = None,
        sync_on_compute: bool = True,
        process_group: Optional[Any] = None,
        device: Optional[Any] = None,
    ) -> None:
        if num_classes is not None and (
            isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1
        ):
            raise ValueError(f"num_classes: expected a positive int or None, got {num_classes!r}")
        threshold = checked_real(threshold, "threshold", "a value in (0, 1)")
        check_prediction_options(activation, threshold)
        empty_score = checked_real(empty_score, "empty_score", "a finite number or NaN")
        check_empty_score(empty_score)
        if ignore_index is not None and (
            isinstance(ignore_index, bool) or not isinstance(ignore_index, (int, np.integer))
        ):
            raise ValueError(f"ignore_index: expected an int or None, got {ignore_index!r}")
        if process_group is not None and not (dist.is_available() and isinstance(process_group, dist.ProcessGroup)):
            raise ValueError(
                f"process_group: expected a torch.distributed ProcessGroup or None, got {type(process_group).__name__}"
            )
        self.num_classes = None if num_classes is None else int(num_classes)
        self.activation = activation
        self.hard = checked_flag(hard, "hard")
        self.threshold = threshold
        self.include_background = checked_flag(include_background, "include_background")
        self.ignore_index = None if ignore_index is None else int(ignore_index)
        self.empty_score = empty_score
        self.ignore_empty = checked_flag(ignore_empty, "ignore_empty")
        self.surface = SurfaceOptions.checked(surface, tolerance, percentile, spacing)
        self.sync_on_compute = checked_flag(sync_on_compute, "sync_on_compute")
        self.process_group = process_group
        self.device = checked_device(device)
        if self.num_classes is not None:
            self._check_classes(self.num_classes)
        self.reset()

    # -- state -----------------------------------------------------------------------------------

    def _scores(self) -> List[str]:
        return ["dice", "iou", "class_accuracy", "accuracy"] if self.hard else ["dice", "iou"]

    def _layout(self, classes: int) -> List[Tuple[str, int]]:
        """Each state's name and length, in the order of the one flat float64 buffer."""
        layout = [("tp", classes), ("sum_p", classes), ("sum_t", classes), ("mass", 1), ("images", 1)]
        if self.ignore_empty:
            # Σp of the images whose target holds the class: the micro Dice and IoU's own sum.
            layout.append(("sum_p_in_target", classes))
        for name in self._scores():
            size = 1 if name == "accuracy" else classes
            layout += [(f"{name}_sum", size), (f"{name}_images", size)]
        return layout + (surface_layout(classes) if self.surface is not None else [])

    def _views(self, buffer: Tensor, classes: int) -> Dict[str, Tensor]:
        views, start = {}, 0
        for name, size in self._layout(classes):
            views[name] = buffer[start : start + size]
            start += size
        return views

    def reset(self) -> None:
        """Forget every update; C is forgotten too unless ``num_classes`` was given."""
        self._classes: Optional[int] = self.num_classes
        # One flat buffer, so that a sync is a single all_reduce; the states are views into it.
        self._buffer: Optional[Tensor] = None
        self._state: Dict[str, Tensor] = {}

    def _check_classes(self, classes: int) -> None:
        if not self.include_background and classes < 2:
            raise ValueError(f"include_background: False leaves no class for an input with C = {classes} channel")

    def _allocate(self, classes: int, device: torch.device) -> None:
        size = sum(length for _, length in self._layout(classes))
        self._buffer = torch.zeros(size, dtype=torch.float64, device=device)
        self._state = self._views(self._buffer, classes)

    # -- updates ---------------------------------------------------------------------------------

    def update(
        self, input: Tensor, target: Tensor, weight: Optional[Tensor] = None, spacing: Optional[Sequence[float]] = None
    ) -> None:
        """Add a batch: logits (N, C, *) (or what ``activation`` says), its target and weight map.

        The layouts and checks are those of :func:`dice_score`; C must equal ``num_classes`` or
        the first update's C (ValueError naming ``input`` otherwise). A batch that raises adds
        nothing. An image with a NaN or infinite logit adds NaN counts (see the Notes).
        ``spacing``, with ``surface=True`` only, is this batch's voxel size (the constructor's by default).
        """
        if spacing is not None and self.surface is None:
            raise ValueError("spacing: only the surface metrics use it; build the accumulator with surface=True")
        if not isinstance(input, Tensor):
            raise ValueError(f"input: expected a torch tensor (N, C, *), got {type(input).__name__}")
        if input.dim() >= 2 and self._classes is not None and input.shape[1] != self._classes:
            raise ValueError(
                f"input: expected C = {self._classes} channels ({self._classes_source()}), "
                f"got shape {list(input.shape)}"
            )
        with torch.no_grad():
            tp, sum_p, sum_t, mass = segmentation_counts(
                input, target, weight, self.activation, self.hard, self.threshold, self.ignore_index
            )
            surface = None
            if self.surface is not None:
                steps = None if spacing is None else list(spacing)
                options = (self.activation, self.threshold, self.ignore_index, steps)
                surface = surface_values(input, target, weight, self.surface, *options)
        self._add(tp, sum_p, sum_t, mass, surface)

    def update_counts(self, tp: Any, sum_p: Any, sum_t: Any, mass: Any, surface: Optional[Mapping[str, Any]] = None) -> None:
        """Add the counts of a batch computed elsewhere (torch tensors or numpy arrays).

        Parameters
        ----------
        tp, sum_p, sum_t : Tensor or ndarray
            (N, C) each, for every class (background included), as :func:`segmentation_counts`
            returns them: non-negative, or NaN for an image with invalid input.
        mass : Tensor or ndarray
            (N,) (or (N, 1)): the counted weight mass of each image.

        They must come from the same options as this accumulator's (:meth:`count_modules` builds
        graph modules that do). ValueError naming the argument for a shape, a C, a dtype or a
        value that cannot be such counts: an infinite or negative count, tp > sum_p, tp > sum_t,
        sum_p + sum_t - tp > mass (negative true negatives) or, with "softmax", Σ_c sum_p ≠ mass
        (each counted pixel predicts one class). The relations hold within a relative √ε of the
        counts' dtype, for rounding. A batch that raises adds nothing. With ``surface=True``,
        ``surface`` (required) maps hd, assd, nsd_within, nsd_boundary and target_boundary to
        their (N, C) per-image values, as the graph modules of :meth:`count_modules` give them.
        """
        if (surface is None) != (self.surface is None):
            raise ValueError(
                "surface: expected the per-image surface values with surface=True, and none without, got "
                f"{'none' if surface is None else sorted(surface)} with surface={self.surface is not None}"
            )
        counts = checked_counts((tp, sum_p, sum_t, mass), self._classes, self._classes_source())
        check_count_relations(counts, self.activation)
        values = None if surface is None else surface_outputs(surface, "", counts["tp"].shape[1])
        if values is not None and values["hd"].shape[0] != counts["tp"].shape[0]:
            raise ValueError(f"surface: expected N = {counts['tp'].shape[0]} images, as tp, got {values['hd'].shape[0]}")
        self._add(counts["tp"], counts["sum_p"], counts["sum_t"], counts["mass"].reshape(-1), values)

    def update_from_outputs(self, outputs: Mapping[str, Any], prefix: str = "") -> None:
        """Add the count outputs of a graph run: ``outputs[prefix + name]`` for tp, sum_p, sum_t and mass.

        ``outputs`` is what :class:`~unetweights.runtime.OnnxEvaluator` returns for a graph that
        holds :meth:`count_modules` (or an ``EvaluationResult.per_image``); other keys are
        ignored.
        """
        missing = [prefix + name for name in COUNT_NAMES if prefix + name not in outputs]
        if missing:
            raise ValueError(
                f"outputs: missing {missing}; put SegmentationMetrics.count_modules(prefix={prefix!r}) in the "
                f"graph's metrics (the outputs hold {sorted(outputs)})"
            )
        surface = None
        if self.surface is not None:
            surface = {name[len(prefix) :]: value for name, value in outputs.items() if name.startswith(prefix)}
        self.update_counts(*(outputs[prefix + name] for name in COUNT_NAMES), surface=surface)

    def count_modules(self, prefix: str = "") -> Dict[str, Any]:
        """Graph metric modules that output this accumulator's counts, named ``prefix`` + tp, sum_p, sum_t, mass.

        With ``surface=True`` also its surface values, ``prefix`` + hd, assd, nsd_within,
        nsd_boundary and target_boundary (:class:`HausdorffDistance`, :class:`AverageSurfaceDistance`,
        :class:`SurfaceCount`; the graph computes their distance transforms once).

        Pass them as (part of) an :class:`~unetweights.evaluation.EvaluationGraph`'s ``metrics``.
        The counts do not depend on ``include_background``, ``empty_score`` or ``ignore_empty``:
        the accumulator applies those to the counts itself.
        """
        modules: Dict[str, Any] = {
            prefix + name: SegmentationCount(name, self.activation, self.hard, self.threshold, self.ignore_index)
            for name in COUNT_NAMES
        }
        if self.surface is not None:
            modules.update(self.surface.modules(prefix, self.activation, self.threshold, self.ignore_index))
        return modules

    def _classes_source(self) -> str:
        return f"num_classes={self.num_classes}" if self.num_classes is not None else "the first update's C"

    def _fractions(
        self, tp: Tensor, sum_p: Tensor, sum_t: Tensor, mass: Tensor, overlap_p: Tensor
    ) -> Dict[str, Tuple[Tensor, Tensor]]:
        """Numerator and denominator of each score, per set: (S, C), or (S,) for the overall accuracy.

        ``overlap_p`` is the Σp of Dice and IoU: ``sum_p``, or with ``ignore_empty`` its part in
        the sets whose target holds the class.
        """
        fractions = {"dice": dice_fraction(tp, overlap_p, sum_t), "iou": iou_fraction(tp, overlap_p, sum_t)}
        if self.hard:
            fractions["class_accuracy"] = (tp, sum_t)
            fractions["accuracy"] = accuracy_fraction(tp, sum_p, sum_t, mass.unsqueeze(1), self.activation)
        return fractions

    def _add(self, tp: Tensor, sum_p: Tensor, sum_t: Tensor, mass: Tensor, surface: Optional[Mapping[str, Tensor]]) -> None:
        classes = tp.shape[1]
        if self._buffer is None:
            self._check_classes(classes)
            self._allocate(classes, tp.device if self.device is None else self.device)
            self._classes = classes
        state = self._state
        device = state["tp"].device
        tp, sum_p, sum_t, mass = (x.to(device=device, dtype=torch.float64) for x in (tp, sum_p, sum_t, mass))
        state["tp"] += tp.sum(0)
        state["sum_p"] += sum_p.sum(0)
        state["sum_t"] += sum_t.sum(0)
        state["mass"] += mass.sum()
        state["images"] += tp.shape[0]
        overlap_p = sum_p
        if self.ignore_empty:
            overlap_p = in_target(sum_p, sum_t)
            state["sum_p_in_target"] += overlap_p.sum(0)
        skip_empty = math.isnan(self.empty_score)
        for name, (num, den) in self._fractions(tp, sum_p, sum_t, mass, overlap_p).items():
            # den == 0 is an absent class, skipped when empty_score is NaN; a NaN den (invalid
            # input) is not 0, so it counts and its NaN reaches the sum.
            counted = den != 0 if skip_empty else torch.ones_like(den, dtype=torch.bool)
            score = ratio_or(num, den, self.empty_score)
            state[f"{name}_sum"] += torch.where(counted, score, torch.zeros_like(score)).sum(0)
            state[f"{name}_images"] += counted.sum(0)
        if surface is not None:
            add_surface(state, surface, self.ignore_empty)

    # -- results ---------------------------------------------------------------------------------

    def _synced(self) -> Dict[str, Tensor]:
        """The states summed over the process group (or this process's own when not syncing)."""
        syncing = (
            self.sync_on_compute
            and dist.is_available()
            and dist.is_initialized()
            and dist.get_world_size(self.process_group) > 1
        )
        if syncing:
            self._check_ranks_agree()
        if self._buffer is None:
            if self._classes is None:
                raise RuntimeError(
                    "compute: no update yet, so C is unknown; call update() first (or pass num_classes, so "
                    "that a process without data can take part in a distributed sync)"
                )
            self._allocate(self._classes, self._state_device(syncing))
        if not syncing:
            return self._state
        # A copy: the local states stay this process's own, so updates can go on after compute().
        buffer = self._buffer.clone()
        dist.all_reduce(buffer, op=dist.ReduceOp.SUM, group=self.process_group)
        return self._views(buffer, self._classes)

    def _state_device(self, syncing: bool) -> torch.device:
        if self._buffer is not None:
            return self._buffer.device
        if self.device is not None:
            return self.device
        # A process without data: where the group's collectives run (NCCL moves CUDA tensors only;
        # gloo, and a "cpu:gloo,cuda:nccl" group, take CPU ones).
        if syncing and dist.get_backend(self.process_group) == "nccl":
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")

    def _check_ranks_agree(self) -> None:
        """Raise the same error on every process of the group unless their states can be summed.

        The all_reduce of buffers of different lengths aborts inside the backend (gloo: SIGABRT on
        one process, a reset connection on the other) instead of raising, so C and the options
        that give the buffer its layout and its states their meaning are gathered first.
        """
        activations = ("softmax", "sigmoid", "none")
        mine = [
            float(self._classes or 0),
            float(self.hard),
            float(activations.index(self.activation)),
            self.empty_score,
            float(self.ignore_empty),
            float(self.surface is not None),
        ]
        header = torch.tensor(mine, dtype=torch.float64, device=self._state_device(True))
        gathered = [torch.empty_like(header) for _ in range(dist.get_world_size(self.process_group))]
        dist.all_gather(gathered, header, group=self.process_group)
        rows = torch.stack(gathered).cpu().tolist()
        unknown = [rank for rank, row in enumerate(rows) if row[0] == 0]
        if unknown:
            raise RuntimeError(
                f"compute: C is unknown on rank(s) {unknown}, which had no update; pass num_classes, so that a "
                f"process without data can take part in a distributed sync"
            )
        shown = {
            "num_classes": [int(row[0]) for row in rows],
            "hard": [bool(row[1]) for row in rows],
            "activation": [repr(activations[int(row[2])]) for row in rows],
            # NaN != NaN, but two NaN empty scores agree.
            "empty_score": ["nan" if math.isnan(row[3]) else row[3] for row in rows],
            "ignore_empty": [bool(row[4]) for row in rows],
            "surface": [bool(row[5]) for row in rows],
        }
        for name, values in shown.items():
            if len(set(values)) > 1:
                what = "C (num_classes or the first update's)" if name == "num_classes" else name
                raise ValueError(
                    f"{name} differs across ranks: {ranks_holding(values)}; every process must compute with "
                    f"the same {what}"
                )

    def compute(self) -> Dict[str, Tensor]:
        """The scores of everything added since the last :meth:`reset` (all processes' when syncing).

        Returns
        -------
        dict of str to Tensor
            float64 tensors on the states' device, with C' = C, or C - 1 without the background:

            - "dice", "iou": micro Dice and IoU per class, (C',);
            - "dice_macro", "iou_macro": the mean over images of the per-image Dice and IoU, (C',);
            - "class_accuracy", "class_accuracy_macro": tp / Σt per class, micro and macro, (C',);
            - "accuracy", "accuracy_macro": the overall pixel accuracy, micro and macro, ();
            - "<score>_images" for each score above: the number of images its macro mean
              averages, int64, (C',) or ();
            - "images": the number of images added, int64, ().

            The accuracy keys are left out with ``hard=False``.

        Raises
        ------
        RuntimeError
            When no image was added (on any process, when syncing), or when C is unknown
            because this process (or, when syncing, any process) has had no update and no
            ``num_classes``.
        ValueError
            When syncing, on every process, if the processes differ in C, ``hard``,
            ``activation``, ``empty_score`` or ``ignore_empty``.
        """
        state = self._synced()
        if float(state["images"]) == 0:
            raise RuntimeError("compute: no image was added; call update() first")
        first = 0 if self.include_background else 1
        totals = [state[name].unsqueeze(0) for name in ("tp", "sum_p", "sum_t")]
        overlap_p = state["sum_p_in_target"].unsqueeze(0) if self.ignore_empty else totals[1]
        result: Dict[str, Tensor] = {}
        for name, (num, den) in self._fractions(*totals, state["mass"], overlap_p).items():
            micro = ratio_or(num, den, self.empty_score)[0]
            macro = ratio_or(state[f"{name}_sum"], state[f"{name}_images"], self.empty_score)
            images = state[f"{name}_images"].long()
            if name == "accuracy":
                macro, images = macro[0], images[0]
            else:
                micro, macro, images = micro[first:], macro[first:], images[first:]
            result[name] = micro
            result[f"{name}_macro"] = macro
            result[f"{name}_images"] = images
        if self.surface is not None:
            result.update(surface_results(state, first, self.empty_score))
        result["images"] = state["images"][0].long()
        return result
