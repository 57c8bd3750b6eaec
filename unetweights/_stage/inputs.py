"""The input stage shared by every loss and metric on (N, C, *) probabilities, and by the binary losses.

The set losses (:mod:`.overlap`), the distance and skeleton losses (:mod:`.distance`,
:mod:`.skeleton`) and the metrics (:mod:`unetweights.metrics`) start alike: check the activation,
the input, the weight map and the target, turn an index target into one-hot truth with the
ignored pixels left out, collect the (N,) poison of invalid values, then count or reduce per set.
That stage lives here, once, built from the elementary checks of :mod:`._reduce`:

- :func:`weighted_parts`: the activated prediction, the (N, C, *) truth, the weight of each pixel
  and the poison; :func:`scored_parts` the same with class 0 dropped without the background;
- :func:`binary_parts` and :func:`softplus_neg`: the checked input/target pair of the binary
  losses on logits or probabilities of any shape (:mod:`.binary`, the sigmoid focal loss of
  :mod:`.classification`), and the stable -log σ(x) they share;
- :func:`overlap_counts` and :func:`set_mass`: the weighted counts tp, Σp, Σt, and each set's
  weight mass and smoothing unit;
- :func:`check_set_options`, :func:`reduce_sets` and :class:`SetOptions`: the options every set
  loss shares, checked in the functional form and at construction, and their reduction.

One name for the per-pixel weight, in every loss: ``weight`` is the map as the caller passes it;
``pixel_weight`` is what multiplies each pixel's term, that map checked and made broadcastable
(:func:`._reduce.elementwise_weight`: finite, non-negative, float32 for half types), or None
without one. From :func:`weighted_parts` on it is also 0 where the target is ``ignore_index``,
and None only when every pixel weighs 1 (no map, nothing ignored). ``norm`` is kept for the
argument of :func:`._reduce.reduce_loss`: the weight of each element of a loss in its mean, the
pixel weight times the class weight and the ignore mask where a loss has them, or one per set in
the set losses (:func:`reduce_sets`).
"""

import math
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .options import checked_flag, checked_index, checked_real
from .reduce import (
    as_float32,
    check_class_weight,
    check_floating,
    check_option_range,
    check_per_image_sets,
    check_reduction,
    check_same_shape,
    check_softmax_channels,
    checked_input,
    checking_values,
    class_indices,
    elementwise_weight,
    index_target,
    input_poison,
    poison_unless_all,
    probability_target,
    reduce_loss,
    safe_divide,
    traced_class_values,
)


def check_activation(activation: str) -> None:
    """Raise unless ``activation`` is "softmax", "sigmoid" or "none"."""
    if activation != "softmax" and activation != "sigmoid" and activation != "none":
        raise ValueError(f"activation: expected 'softmax', 'sigmoid' or 'none', got '{activation}'")


def _activate(input: Tensor, activation: str) -> Tensor:
    if activation == "softmax":
        return F.softmax(input, 1)
    if activation == "sigmoid":
        return torch.sigmoid(input)
    return input


def check_sigmoid_target(input: Tensor, target: Tensor, activation: str, name: str = "target") -> None:
    """Raise unless a "sigmoid" ``input`` (N, C, *) has a per-channel target (the argument ``name``) of its rank."""
    if activation == "sigmoid" and target.dim() != input.dim():
        raise ValueError(
            f"{name}: activation='sigmoid' needs a (N, C, *) = {list(input.shape)} binary target, got "
            f"{list(target.shape)}; for one channel pass {name}.unsqueeze(1)"
        )


def target_classes(
    input: Tensor, target: Tensor, activation: str, ignore_index: Optional[int], name: str = "target"
) -> Tuple[Tensor, Optional[Tensor], Optional[Tensor]]:
    """The target of an (N, C, *) ``input`` as (N, C, *) truth in ``input``'s dtype.

    Returns ``(truth, valid, poison)``. A (N, C, *) binary or probability target is checked and
    taken as it is; class indices (N, *) become one-hot (not with ``activation="sigmoid"``, which
    needs a per-channel target). ``valid`` is None, or (N, 1, *) in ``input``'s dtype, 0 where
    the index target equals ``ignore_index`` (those pixels are all-zero in ``truth``). ``poison``
    is None or the (N,) NaN-or-0 vector of the images whose target holds an invalid value while
    tracing (eager and TorchScript raise for those). Errors name the target ``name``.
    """
    if target.dim() == input.dim():
        check_same_shape(target, name, list(input.shape), "(N, C, *)")
        truth, poison = probability_target(target, input.dtype, name)
        return truth, None, poison
    check_sigmoid_target(input, target, activation, name)
    valid: Optional[Tensor] = None
    classes = torch.arange(input.shape[1], device=input.device).view([1, -1] + [1] * (input.dim() - 2))
    if not checking_values():
        values, keep, bad_values = traced_class_values(target, input, ignore_index, name)
        if keep is not None:
            valid = keep.to(input.dtype).unsqueeze(1)
        truth = (values.unsqueeze(1) == classes.to(torch.float32)).to(input.dtype)
        return truth, valid, bad_values
    if ignore_index is None:
        labels, bad_target = class_indices(target, input, name)
    else:
        keep, labels, bad_target = index_target(target, input, ignore_index, name)
        valid = keep.to(input.dtype).unsqueeze(1)
        # -1 matches no class: an ignored pixel is 0 in every channel.
        labels = torch.where(keep, labels, torch.full_like(labels, -1))
    truth = (labels.unsqueeze(1) == classes).to(input.dtype)
    return truth, valid, bad_target


def weighted_parts(
    input: Tensor,
    target: Tensor,
    weight: Optional[Tensor],
    activation: str,
    ignore_index: Optional[int],
    include_background: bool,
    poison: Optional[Tensor] = None,
    name: str = "target",
) -> Tuple[Tensor, Tensor, Optional[Tensor], Tensor]:
    """The checked pieces every loss on (N, C, *) probabilities starts from.

    Returns ``(prob, truth, pixel_weight, poison)``: the activated input (float32 for half inputs), the
    target as (N, C, *) truth (:func:`target_classes`), the weight of each pixel, (N, 1, *) or
    broadcastable to it, with ignored pixels at 0 (None when every pixel weighs 1), and the (N,)
    poison of the input (``poison`` when given: the logits' poison for a thresholded input) plus
    that of an invalid target. Nothing is dropped for ``include_background=False``, which is only
    checked to leave a class. Errors about the target name it ``name``.
    """
    check_activation(activation)
    input = checked_input(input, 3, "(N, C, *)")
    if activation == "softmax":
        check_softmax_channels(input, "for one channel use activation='sigmoid' with a (N, 1, *) binary target")
    if poison is None:
        poison = input_poison(input)
    if not include_background and input.shape[1] < 2:
        raise ValueError(f"include_background: False leaves no class for an input with C = {input.shape[1]} channel")
    pixel_weight = elementwise_weight(weight, [input.shape[0], 1] + list(input.shape[2:]), True)
    truth, valid, target_poison = target_classes(input, target, activation, ignore_index, name)
    if target_poison is not None:
        poison = poison + target_poison
    if valid is not None:
        pixel_weight = valid if pixel_weight is None else pixel_weight * valid
    return _activate(input, activation), truth, pixel_weight, poison


def scored_parts(
    input: Tensor,
    target: Tensor,
    weight: Optional[Tensor],
    activation: str,
    include_background: bool,
    ignore_index: Optional[int],
    name: str = "target",
) -> Tuple[Tensor, Tensor, Optional[Tensor], Tensor]:
    """The checked pieces of an element-wise loss on (N, C', *) probabilities.

    Returns ``(prob, truth, pixel_weight, poison)``: the activated input and the target's (N, C, *)
    truth (class 0 dropped without the background), the weight of each pixel ((N, 1, *) or None
    when every pixel weighs 1; 0 where ignored), and the (N,) poison of invalid logits, weights
    and targets. Errors about the target name it ``name``.
    """
    prob, truth, pixel_weight, poison = weighted_parts(
        input, target, weight, activation, ignore_index, include_background, None, name
    )
    if not include_background:
        prob, truth = prob[:, 1:], truth[:, 1:]
    return prob, truth, pixel_weight, poison


def binary_parts(
    input: Tensor, target: Tensor, probabilities: bool = False, input_values: bool = True
) -> Tuple[Tensor, Tensor, Tensor]:
    """Check an input/target pair of the same shape: logits, or probabilities with ``probabilities``.

    Returns ``(input, target, poison)``: both in float32 (or float64), and the (N,) poison of the
    images with a NaN or infinite input or, while tracing, a target (or a probability input)
    outside [0, 1] (eager and TorchScript raise for those). Without ``input_values`` the logits'
    values are left to the caller, which then owns the NaN rule for them: the poison covers the
    target only.
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
    if not input_values:
        return input, target, target_poison
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


def softplus_neg(input: Tensor) -> Tensor:
    """-log sigmoid(x) = log(1 + exp(-x)), stable for logits of any size."""
    return (-input).clamp_min(0) + torch.log1p(torch.exp(-input.abs()))


def overlap_counts(
    input: Tensor,
    target: Tensor,
    weight: Optional[Tensor],
    activation: str,
    ignore_index: Optional[int],
    per_image: bool,
    include_background: bool,
    squared: bool,
    poison: Optional[Tensor] = None,
) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Weighted counts per set and class, each of shape (N, C') or (1, C').

    Returns ``(tp, sum_p, sum_t, mass, unit)``: Σ w·p·t, Σ w·p (Σ w·p² when ``squared``),
    Σ w·t (Σ w·t² when ``squared``), the weight mass Σ w of each set's counted pixels (0 for a
    set whose pixels are all ignored or zero-weighted), shape (N, 1) or (1, 1), and each set's
    smoothing unit of the same shape (:func:`set_mass`). C' = C - 1 without the background class.

    Every count of an image is NaN where its input holds a NaN or infinite value (``poison``, the
    (N,) NaN-or-0 vector of :func:`input_poison`, computed from ``input`` when None; a caller that
    passes thresholded predictions passes the poison of the logits they came from), and, while
    tracing, where its weight or target holds an invalid value: a class index outside [0, C) that
    is not ``ignore_index``, or a (N, C, *) target value that is NaN or outside [0, 1] (eager and
    TorchScript raise for those). float16 and bfloat16 inputs are
    counted in float32.
    """
    prob, truth, pixel_weight, poison = weighted_parts(
        input, target, weight, activation, ignore_index, include_background, poison
    )
    num_images, num_classes = prob.shape[0], prob.shape[1]
    mass, unit = set_mass(pixel_weight, weight is not None, list(prob.shape), poison, per_image)
    # From here on each pixel's weight lies on one flat spatial axis, (N, 1, P).
    if pixel_weight is not None:
        pixel_weight = pixel_weight.expand([num_images, 1] + list(prob.shape[2:])).reshape(num_images, 1, -1)
    prob = prob.reshape(num_images, num_classes, -1)
    truth = truth.reshape(prob.shape)
    one_hot = target.dim() != input.dim()
    weighted_truth = truth if pixel_weight is None else truth * pixel_weight
    tp = (weighted_truth * prob).sum(-1)
    sum_t = (weighted_truth * truth).sum(-1) if squared and not one_hot else weighted_truth.sum(-1)
    weighted_prob = prob if pixel_weight is None else prob * pixel_weight
    sum_p = (weighted_prob * prob).sum(-1) if squared else weighted_prob.sum(-1)
    if not include_background:
        tp, sum_p, sum_t = tp[:, 1:], sum_p[:, 1:], sum_t[:, 1:]
    image_poison = poison.unsqueeze(1)
    tp, sum_p, sum_t = tp + image_poison, sum_p + image_poison, sum_t + image_poison
    if not per_image:
        tp = tp.sum(0, keepdim=True)
        sum_p = sum_p.sum(0, keepdim=True)
        sum_t = sum_t.sum(0, keepdim=True)
    return tp, sum_p, sum_t, mass, unit


def set_mass(
    pixel_weight: Optional[Tensor], weighted: bool, shape: List[int], poison: Tensor, per_image: bool
) -> Tuple[Tensor, Tensor]:
    """Each set's weight mass and smoothing unit, both (N, 1) with ``per_image`` and (1, 1) otherwise.

    ``pixel_weight`` is the weight of each pixel, (N, 1, *) or broadcastable to it, 0 where ignored (None
    when every pixel weighs 1); ``shape`` is the (N, C, *) shape of the prediction; ``weighted``
    says whether a weight map came in (zeros at the ignored pixels alone are not one). The mass
    is Σ w over the set. The unit is the mean weight of the pixels that count,
    w̄ = Σ w / #{w > 0}, or exactly 1 without a weight map: a set loss adds its ``smooth`` in
    units of w̄, so that with a weight map s pixels are worth s pixels of mean weight, multiplying
    the map by a constant leaves the loss unchanged, and without one ``smooth`` is used as given
    (the peers' convention). A poisoned image makes its set's mass and unit NaN; a set with no
    weight mass has unit 0.
    """
    num_images = shape[0]
    image_poison = poison.unsqueeze(1)
    # The count of weighted pixels, taken only where a weight map came in: without one the unit is 1.
    counted: Optional[Tensor] = None
    if pixel_weight is None:
        pixels = 1
        for size in shape[2:]:
            pixels *= size
        # The size as an int, not a float, so that a compiled graph does not specialise on it.
        mass = torch.full([num_images, 1], pixels, dtype=poison.dtype, device=poison.device)
    else:
        flat = pixel_weight.expand([num_images, 1] + shape[2:]).reshape(num_images, -1)
        mass = flat.sum(-1, keepdim=True)
        if weighted:
            if checking_values():
                counted = (flat != 0).sum(-1, keepdim=True).to(mass.dtype)
            else:
                # Counted in float, which onnxruntime sums several times faster than int64: exact
                # to 2^24 pixels per image, within float rounding of the mean weight beyond.
                counted = (flat != 0).to(mass.dtype).sum(-1, keepdim=True)
    mass = mass + image_poison
    if not per_image:
        mass = mass.sum(0, keepdim=True)
    if counted is None:
        return mass, torch.ones_like(mass)
    if not per_image:
        counted = counted.sum(0, keepdim=True)
    return mass, safe_divide(mass, counted)


def check_set_options(
    input: Tensor, smooth: float, class_weight: Optional[Tensor], reduction: str, per_image: bool
) -> Optional[Tensor]:
    """The option checks that every set loss shares; returns the checked class weight."""
    check_reduction(reduction)
    check_per_image_sets(reduction, per_image)
    check_option_range(smooth, "smooth", 0.0, math.inf, False, True)
    return check_class_weight(class_weight, input.shape[1] if input.dim() >= 2 else 0)


def reduce_sets(
    loss: Tensor, mass: Tensor, class_weight: Optional[Tensor], include_background: bool, reduction: str
) -> Tensor:
    """Reduce (sets, classes) losses: sets with no weight mass and the class weights set the mean.

    A NaN mass (a poisoned set) is not zero, so the set counts and its NaN reaches the mean.
    """
    norm = (mass != 0).to(loss.dtype)
    if class_weight is not None:
        cw = class_weight if include_background else class_weight[1:]
        norm = norm * cw.unsqueeze(0)
    return reduce_loss(loss * norm, norm, reduction)


class SetOptions(nn.Module):
    """The options every set loss has, checked and stored once."""

    def __init__(self, activation: str, smooth: float, per_image: bool, ignore_index: Optional[int], reduction: str):
        super().__init__()
        check_activation(activation)
        check_reduction(reduction)
        check_per_image_sets(reduction, per_image)
        self.smooth = checked_real(smooth, "smooth")
        check_option_range(self.smooth, "smooth", 0.0, math.inf, False, True)
        self.activation = activation
        self.per_image = checked_flag(per_image, "per_image")
        self.ignore_index = checked_index(ignore_index)
        self.reduction = reduction


__all__: List[str] = [
    "SetOptions",
    "binary_parts",
    "check_activation",
    "check_set_options",
    "check_sigmoid_target",
    "overlap_counts",
    "reduce_sets",
    "scored_parts",
    "set_mass",
    "softplus_neg",
    "target_classes",
    "weighted_parts",
]
