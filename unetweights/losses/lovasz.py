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

from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._stage.options import checked_flag, checked_index
from .._stage.reduce import (
    check_softmax_channels,
    check_per_image_sets,
    check_reduction,
    check_same_shape,
    checked_input,
    checking_values,
    class_indices,
    elementwise_weight,
    index_target,
    input_poison,
    poison_unless_all,
    reduce_loss,
)


def lovasz_gradient(weighted_truth: Tensor, weight: Tensor) -> Tensor:
    """Discrete gradient of the weighted Jaccard loss along the last dim, for sorted rows.

    ``weighted_truth`` (w·t, t in {0, 1}) and ``weight`` (w) hold each row's pixels in decreasing
    order of error. Mispredicting the first k pixels costs
    J_k = 1 - (weighted intersection) / (weighted union) = W_k / (P + W_k - T_k), with P = Σ w·t
    over the row, W_k = Σ w and T_k = Σ w·t over the first k pixels; a prefix with no weight
    costs 0. Entry k is J_k - J_(k-1).
    """
    seen = weight.cumsum(-1)
    union = weighted_truth.sum(-1, keepdim=True) + seen - weighted_truth.cumsum(-1)
    jaccard = seen / torch.where(union == 0, torch.ones_like(union), union)
    return torch.cat([jaccard[..., :1], jaccard[..., 1:] - jaccard[..., :-1]], -1)


def _sorted(errors: Tensor, sources: List[Tensor]) -> Tuple[Tensor, List[Tensor]]:
    """Sort the rows of ``errors`` (R, K, L) in decreasing order; gather each source (R, L) alike.

    The K rows of a set (its classes) share the set's per-pixel sources, so they are gathered
    from the (R, L) originals instead of K-fold copies.
    """
    errors_sorted, order = torch.sort(errors, dim=-1, descending=True)
    flat_order = order.reshape(order.shape[0], -1)
    return errors_sorted, [source.gather(-1, flat_order).reshape(order.shape) for source in sources]


def _reduce_rows(loss: Tensor, counted: Tensor, reduction: str, poison: Tensor, per_image: bool) -> Tensor:
    """Reduce per-row losses: rows with no weight at all count in neither sum nor mean.

    ``poison`` (N,) holds NaN for each image with an invalid value; a pooled row takes their sum.
    """
    row_poison = poison if per_image else poison.sum(0, keepdim=True)
    return reduce_loss(loss * counted, counted, reduction, row_poison)


def _check_margin_mode(weight_mode: str) -> None:
    if weight_mode != "jaccard" and weight_mode != "margin":
        raise ValueError(f"weight_mode: expected 'jaccard' or 'margin', got '{weight_mode}'")


def lovasz_hinge(
    input: Tensor,
    target: Tensor,
    weight: Optional[Tensor] = None,
    per_image: bool = True,
    ignore_index: Optional[int] = None,
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
        Per-pixel map of the shape of ``target`` (or (N, *spatial) for an (N, 1, *spatial) image or volume), finite and
        non-negative. See ``weight_mode``.
    per_image : bool
        True: one loss per image (the default, as in the paper's segmentation experiments).
        False: the batch is one set.
    ignore_index : int, optional
        Pixels whose target equals it are left out; None (the default) allows none.
    weight_mode : str
        "jaccard": the weight multiplies each pixel's count in the Jaccard index, and the hinge
        errors are 1 - x·s with s = ±1. "margin": the weight is each pixel's hinge margin,
        errors w - x·s, and every pixel counts once in the index (w = 1 is the original loss).
    reduction : str
        "none": one value per set, shape (N,) with ``per_image`` or (1,) otherwise.
        "mean": the mean over sets that have at least one counted pixel. "sum": their sum.
        "per_image" (needs ``per_image=True``): each image's loss, 0 for an image with no
        counted pixel, shape (N,).

    Notes
    -----
    A set whose pixels are all ignored (or all zero-weighted in "jaccard" mode) has loss 0 with
    zero gradient and is left out of the mean; if no set counts, the mean is 0. A set with no
    positive pixel penalises its largest error, as in the original.

    Scale: in "jaccard" mode the loss is invariant to multiplying ``weight`` by a positive
    constant, for every reduction (the index is a ratio of weighted counts). In "margin" mode it
    is not: the weight is a margin in logit units, and a larger map asks for larger margins.
    """
    check_reduction(reduction)
    check_per_image_sets(reduction, per_image)
    _check_margin_mode(weight_mode)
    input = checked_input(input, 1, "(N, 1, *) or (N, *)")
    check_same_shape(target, "target", list(input.shape), "input.shape")
    poison = input_poison(input)
    if ignore_index is None:
        truth = target.to(input.dtype)
        count = torch.ones_like(input)
    else:
        valid = target != ignore_index
        truth = torch.where(valid, target, torch.zeros_like(target)).to(input.dtype)
        count = valid.to(input.dtype)
    binary = (truth == 0) | (truth == 1)
    if checking_values():
        if not bool(binary.all()):
            allowed = "" if ignore_index is None else f" or ignore_index={ignore_index}"
            raise ValueError(f"target: expected 0/1 labels{allowed}")
    else:
        poison = poison + poison_unless_all(binary, input.dtype)
    signs = 2.0 * truth - 1.0
    errors = 1.0 - input * signs
    pixel_weight = elementwise_weight(weight, list(input.shape), input.dim() >= 4 and input.shape[1] == 1)
    if pixel_weight is not None:
        if weight_mode == "jaccard":
            count = count * pixel_weight
        else:
            errors = errors + (pixel_weight - 1.0)
    rows = input.shape[0] if per_image else 1
    count = count.expand(input.shape).reshape(rows, -1)
    # One gather carries both the weight and the label: w·(2t - 1) (a zero weight needs no label).
    errors_sorted, picked = _sorted(errors.reshape(rows, 1, -1), [count * signs.reshape(rows, -1)])
    signed = picked[0]
    gradient = lovasz_gradient(F.relu(signed), signed.abs()).detach()
    loss = (F.relu(errors_sorted) * gradient).sum(-1).squeeze(1)
    counted = (count.sum(-1) != 0).to(loss.dtype)
    return _reduce_rows(loss, counted, reduction, poison, per_image)


def lovasz_softmax(
    input: Tensor,
    target: Tensor,
    weight: Optional[Tensor] = None,
    classes: str = "present",
    per_image: bool = False,
    ignore_index: Optional[int] = None,
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
    ignore_index : int, optional
        Pixels whose target equals it are left out; None (the default) allows none.
    reduction : str
        "none": one value per set, shape (N,) with ``per_image`` or (1,) otherwise. "mean": the
        mean over sets with at least one counted pixel. "sum": their sum.
        "per_image" (needs ``per_image=True``): each image's loss, 0 for an image that does not
        count, shape (N,).

    Notes
    -----
    A set with no counted pixel, or (with "present") no present class, has loss 0 with zero
    gradient and is left out of the mean; if no set counts, the mean is 0. The loss is invariant
    to multiplying ``weight`` by a positive constant, for every reduction (each class's index is
    a ratio of weighted counts).
    """
    check_reduction(reduction)
    check_per_image_sets(reduction, per_image)
    if classes != "present" and classes != "all":
        raise ValueError(f"classes: expected 'present' or 'all', got '{classes}'")
    input = checked_input(input, 3, "(N, C, *)")
    check_softmax_channels(input, "for one channel use lovasz_hinge")
    poison = input_poison(input)
    num_images = input.shape[0]
    num_classes = input.shape[1]
    if ignore_index is None:
        safe, bad_target = class_indices(target, input)
        count = torch.ones_like(safe, dtype=input.dtype)
    else:
        valid, safe, bad_target = index_target(target, input, ignore_index)
        count = valid.to(input.dtype)
    if bad_target is not None:
        poison = poison + bad_target
    pixel_weight = elementwise_weight(weight, [num_images, 1] + list(input.shape[2:]), True)
    if pixel_weight is not None:
        count = count * pixel_weight.squeeze(1)
    prob = F.softmax(input, 1).reshape(num_images, num_classes, -1)
    classes_view = torch.arange(num_classes, device=input.device).view(1, -1, 1)
    is_class = safe.reshape(num_images, 1, -1) == classes_view
    errors = torch.where(is_class, 1.0 - prob, prob)
    rows = num_images if per_image else 1
    if not per_image:
        errors = errors.transpose(0, 1).reshape(1, num_classes, -1)
    count = count.reshape(rows, -1)
    labels = safe.reshape(rows, -1)
    errors_sorted, picked = _sorted(errors, [labels, count])
    weight_sorted = picked[1]
    truth_weight_sorted = torch.where(picked[0] == classes_view, weight_sorted, torch.zeros_like(weight_sorted))
    gradient = lovasz_gradient(truth_weight_sorted, weight_sorted).detach()
    per_class = (errors_sorted * gradient).sum(-1)
    if classes == "present":
        mass = torch.zeros_like(per_class).scatter_add(1, labels, count)
    else:
        mass = count.sum(-1, keepdim=True).expand(per_class.shape)
    selected = (mass != 0).to(per_class.dtype)
    selected_count = selected.sum(-1)
    loss = (per_class * selected).sum(-1) / selected_count.clamp_min(1.0)
    return _reduce_rows(loss, (selected_count > 0).to(loss.dtype), reduction, poison, per_image)


class LovaszHingeLoss(nn.Module):
    """Module form of :func:`lovasz_hinge`; options are fixed at construction."""

    def __init__(
        self, per_image: bool = True, ignore_index: Optional[int] = None, weight_mode: str = "jaccard", reduction: str = "mean"
    ) -> None:
        super().__init__()
        _check_margin_mode(weight_mode)
        check_reduction(reduction)
        check_per_image_sets(reduction, per_image)
        self.per_image = checked_flag(per_image, "per_image")
        self.ignore_index = checked_index(ignore_index)
        self.weight_mode = weight_mode
        self.reduction = reduction

    def forward(self, input: Tensor, target: Tensor, weight: Optional[Tensor] = None) -> Tensor:
        return lovasz_hinge(
            input=input,
            target=target,
            weight=weight,
            per_image=self.per_image,
            ignore_index=self.ignore_index,
            weight_mode=self.weight_mode,
            reduction=self.reduction,
        )


class LovaszSoftmaxLoss(nn.Module):
    """Module form of :func:`lovasz_softmax`; options are fixed at construction."""

    def __init__(
        self, classes: str = "present", per_image: bool = False, ignore_index: Optional[int] = None, reduction: str = "mean"
    ) -> None:
        super().__init__()
        if classes != "present" and classes != "all":
            raise ValueError(f"classes: expected 'present' or 'all', got '{classes}'")
        check_reduction(reduction)
        check_per_image_sets(reduction, per_image)
        self.classes = classes
        self.per_image = checked_flag(per_image, "per_image")
        self.ignore_index = checked_index(ignore_index)
        self.reduction = reduction

    def forward(self, input: Tensor, target: Tensor, weight: Optional[Tensor] = None) -> Tensor:
        return lovasz_softmax(
            input=input,
            target=target,
            weight=weight,
            classes=self.classes,
            per_image=self.per_image,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
        )


__all__: List[str] = ["LovaszHingeLoss", "LovaszSoftmaxLoss", "lovasz_hinge", "lovasz_softmax"]
