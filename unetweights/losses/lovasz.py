"""Lovasz hinge and Lovasz-softmax losses (Berman et al. 2018) with per-pixel weights.

The Lovasz extension of the Jaccard loss sorts the errors of a set of pixels in decreasing order
and takes their dot product with the discrete gradient of the Jaccard index along that order.
Here a pixel's weight multiplies its count in the Jaccard index (weighted intersection over
weighted union); that set function is still submodular, so its Lovasz extension is still a tight
convex surrogate. Weight 1 everywhere gives the original losses; weight 0 removes a pixel exactly
as the original implementation's filtering of ``ignore_index`` does.

Sets are rows: one per image with ``per_image=True``, or the whole batch pooled into one row. All
rows are sorted in one call, so there is no Python loop over images.
"""

from typing import List, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._reduce import (
    check_floating,
    check_input_rank,
    check_reduction,
    check_same_shape,
    checking_values,
    elementwise_weight,
    reduce_loss,
)
from .overlap import one_hot_target


def lovasz_gradient(truth_sorted: Tensor, weight_sorted: Tensor) -> Tensor:
    """Discrete gradient of the weighted Jaccard loss along the last dim, for sorted rows.

    ``truth_sorted`` (0/1) and ``weight_sorted`` hold each row's pixels in decreasing order of
    error. Entry k is J(first k + 1 pixels) - J(first k), where J = 1 - Σ w·t·[kept] /
    Σ w·max(t, [taken]) is the Jaccard loss of mispredicting those pixels. A prefix with no weight
    at all has J = 0.
    """
    weighted_truth = weight_sorted * truth_sorted
    total = weighted_truth.sum(-1, keepdim=True)
    intersection = total - weighted_truth.cumsum(-1)
    union = total + (weight_sorted - weighted_truth).cumsum(-1)
    positive = union > 0
    jaccard = torch.where(
        positive, 1.0 - intersection / torch.where(positive, union, torch.ones_like(union)), torch.zeros_like(union)
    )
    return torch.cat([jaccard[..., :1], jaccard[..., 1:] - jaccard[..., :-1]], -1)


def _sorted_dot(errors: Tensor, truth: Tensor, weight: Tensor) -> Tensor:
    """Σ_k relu(error)_(k) · gradient_k over the last dim, errors sorted in decreasing order."""
    errors_sorted, order = torch.sort(errors, dim=-1, descending=True)
    truth_sorted = truth.gather(-1, order)
    weight_sorted = weight.gather(-1, order)
    gradient = lovasz_gradient(truth_sorted, weight_sorted).detach()
    return (F.relu(errors_sorted) * gradient).sum(-1)


def _reduce_rows(loss: Tensor, counted: Tensor, reduction: str) -> Tensor:
    """Reduce per-row losses: rows with no weight at all count in neither sum nor mean."""
    return reduce_loss(loss * counted, counted, reduction)


def _check_margin_mode(weight_mode: str) -> None:
    if weight_mode != "jaccard" and weight_mode != "margin":
        raise ValueError(f"weight_mode: expected 'jaccard' or 'margin', got '{weight_mode}'")


def lovasz_hinge(
    input: Tensor,
    target: Tensor,
    weight: Optional[Tensor] = None,
    per_image: bool = True,
    ignore_index: int = -100,
    weight_mode: str = "jaccard",
    reduction: str = "mean",
) -> Tensor:
    """Binary Lovasz hinge loss with a per-pixel weight or margin.

    Parameters
    ----------
    input : Tensor
        Binary logits, (N, 1, *) or (N, *).
    target : Tensor
        The shape of ``input``: 0/1 labels (integer, bool or float), or ``ignore_index``.
    weight : Tensor, optional
        Per-pixel map of the shape of ``target`` (or (N, *) for an (N, 1, *) input), finite and
        non-negative. See ``weight_mode``.
    per_image : bool
        True: one loss per image (the default, as in the paper's segmentation experiments).
        False: the batch is one set.
    ignore_index : int
        Pixels whose target equals it are left out.
    weight_mode : str
        "jaccard": the weight multiplies each pixel's count in the Jaccard index, and the hinge
        errors are 1 - x·s with s = ±1. "margin": the weight is each pixel's hinge margin,
        errors w - x·s, and every pixel counts once in the index (w = 1 is the original loss).
    reduction : str
        "none": one value per set, shape (N,) with ``per_image`` or (1,) otherwise.
        "mean": the mean over sets that have at least one counted pixel. "sum": their sum.

    Notes
    -----
    A set whose pixels are all ignored (or all zero-weighted in "jaccard" mode) has loss 0 with
    zero gradient and is left out of the mean; if no set counts, the mean is 0. A set with no
    positive pixel penalises its largest error, as in the original.
    """
    check_reduction(reduction)
    _check_margin_mode(weight_mode)
    check_input_rank(input, 1, "(N, 1, *) or (N, *)")
    check_floating(input, "input")
    check_same_shape(target, "target", list(input.shape), "input.shape")
    valid = target != ignore_index
    truth = torch.where(valid, target, torch.zeros_like(target)).to(input.dtype)
    if checking_values():
        if bool(((truth != 0) & (truth != 1)).any()):
            raise ValueError(f"target: expected 0/1 labels or ignore_index={ignore_index}")
    count = valid.to(input.dtype)
    margin = torch.ones_like(input)
    w = elementwise_weight(weight, list(input.shape))
    if w is not None:
        if weight_mode == "jaccard":
            count = count * w
        else:
            margin = margin * w
    count = count.expand(input.shape)
    rows = input.shape[0] if per_image else 1
    errors = margin - input * (2.0 * truth - 1.0)
    loss = _sorted_dot(errors.reshape(rows, -1), truth.reshape(rows, -1), count.reshape(rows, -1))
    counted = (count.reshape(rows, -1).sum(-1) > 0).to(loss.dtype)
    return _reduce_rows(loss, counted, reduction)


def lovasz_softmax(
    input: Tensor,
    target: Tensor,
    weight: Optional[Tensor] = None,
    classes: str = "present",
    per_image: bool = False,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> Tensor:
    """Lovasz-softmax loss with a per-pixel weight map.

    For each set and class c the errors |[y = c] - softmax(x)_c| are sorted and dotted with the
    weighted Jaccard gradient; a set's loss is the mean over its selected classes.

    Parameters
    ----------
    input : Tensor
        Logits (N, C, *).
    target : Tensor
        Class indices (N, *), each in [0, C) or equal to ``ignore_index``.
    weight : Tensor, optional
        Per-pixel weight map (N, *), finite and non-negative: each pixel's count in the weighted
        Jaccard index.
    classes : str
        "present": average over the classes present in the set's (non-ignored, weighted)
        target, as in the original. "all": average over all C classes.
    per_image : bool
        True: one loss per image. False (the default, as in the original): the batch is one set.
    ignore_index : int
        Pixels whose target equals it are left out.
    reduction : str
        "none": one value per set, shape (N,) with ``per_image`` or (1,) otherwise. "mean": the
        mean over sets with at least one counted pixel. "sum": their sum.

    Notes
    -----
    A set with no counted pixel, or (with "present") no present class, has loss 0 with zero
    gradient and is left out of the mean; if no set counts, the mean is 0.
    """
    check_reduction(reduction)
    if classes != "present" and classes != "all":
        raise ValueError(f"classes: expected 'present' or 'all', got '{classes}'")
    check_input_rank(input, 3, "(N, C, *)")
    check_floating(input, "input")
    num_classes = input.shape[1]
    truth, valid = one_hot_target(target, input, ignore_index)
    count = valid.unsqueeze(1).to(input.dtype)
    w = elementwise_weight(weight, [input.shape[0], 1] + list(input.shape[2:]))
    if w is not None:
        count = count * w
    count = count.expand(input.shape)
    prob = F.softmax(input, 1)
    errors = (truth - prob).abs()
    if per_image:
        shape = [input.shape[0], num_classes, -1]
        errors, truth, count = errors.reshape(shape), truth.reshape(shape), count.reshape(shape)
    else:
        errors = errors.transpose(0, 1).reshape(1, num_classes, -1)
        truth = truth.transpose(0, 1).reshape(1, num_classes, -1)
        count = count.transpose(0, 1).reshape(1, num_classes, -1)
    per_class = _sorted_dot(errors, truth, count)
    if classes == "present":
        selected = ((count * truth).sum(-1) > 0).to(per_class.dtype)
    else:
        selected = (count.sum(-1) > 0).to(per_class.dtype)
    selected_count = selected.sum(-1)
    loss = (per_class * selected).sum(-1) / selected_count.clamp_min(1.0)
    return _reduce_rows(loss, (selected_count > 0).to(loss.dtype), reduction)


class LovaszHingeLoss(nn.Module):
    """Module form of :func:`lovasz_hinge`; options are fixed at construction."""

    def __init__(
        self, per_image: bool = True, ignore_index: int = -100, weight_mode: str = "jaccard", reduction: str = "mean"
    ) -> None:
        super().__init__()
        _check_margin_mode(weight_mode)
        check_reduction(reduction)
        self.per_image = bool(per_image)
        self.ignore_index = ignore_index
        self.weight_mode = weight_mode
        self.reduction = reduction

    def forward(self, input: Tensor, target: Tensor, weight: Optional[Tensor] = None) -> Tensor:
        return lovasz_hinge(input, target, weight, self.per_image, self.ignore_index, self.weight_mode, self.reduction)


class LovaszSoftmaxLoss(nn.Module):
    """Module form of :func:`lovasz_softmax`; options are fixed at construction."""

    def __init__(
        self, classes: str = "present", per_image: bool = False, ignore_index: int = -100, reduction: str = "mean"
    ) -> None:
        super().__init__()
        if classes != "present" and classes != "all":
            raise ValueError(f"classes: expected 'present' or 'all', got '{classes}'")
        check_reduction(reduction)
        self.classes = classes
        self.per_image = bool(per_image)
        self.ignore_index = ignore_index
        self.reduction = reduction

    def forward(self, input: Tensor, target: Tensor, weight: Optional[Tensor] = None) -> Tensor:
        return lovasz_softmax(input, target, weight, self.classes, self.per_image, self.ignore_index, self.reduction)


__all__: List[str] = ["LovaszHingeLoss", "LovaszSoftmaxLoss", "lovasz_hinge", "lovasz_softmax"]
