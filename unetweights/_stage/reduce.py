"""The one reduction rule and the input checks that every loss shares.

Every function here is written so that the losses calling it run unchanged in eager mode, under
``torch.jit.script``, ``torch.compile(fullgraph=True)`` and ``torch.export``:

- checks of shapes, dtypes and options are plain ``if ...: raise ValueError(...)``; they run in
  every mode (under tracing the shapes are symbolic and a check becomes a guard);
- checks of *values* (NaN weights, a class index out of range) need the data on the host. They run
  in eager mode and in TorchScript, and are skipped while ``torch.compile`` or ``torch.export``
  traces, where reading a value would break the graph (:func:`checking_values`). There, and so in
  every exported ONNX graph, the same invalid values *poison* instead: the outputs of the image
  that holds them become NaN, never a plausible number.
- NaN in, NaN out: a NaN or infinite logit makes its image's values NaN in every mode
  (:func:`input_poison`), and every empty-set guard tests ``den == 0``, which NaN fails, rather
  than ``den > 0``, which would treat NaN as empty.
- float16 and bfloat16 tensors are computed in float32 (:func:`as_float32`), as torch's autocast
  does for losses, so sums cannot overflow the half type.

TorchScript turns a raised ``ValueError`` into ``torch.jit.Error`` whose message starts with
``builtins.ValueError:``; the text after it is the same. Under ``torch.compile(fullgraph=True)``
Dynamo cannot raise a Python exception from inside a full graph: a shape or option error
surfaces as ``torch._dynamo.exc.Unsupported`` ("Observed exception") whose text carries the
``ValueError``'s message; without ``fullgraph`` Dynamo falls back to eager and raises the
``ValueError`` itself.
"""

import math
from typing import List, Optional, Tuple

import torch
from torch import Tensor

from .options import check_number


def checking_values() -> bool:
    """Whether data-dependent checks run: True in eager mode and TorchScript, False while tracing."""
    return not torch.compiler.is_compiling()


def check_reduction(reduction: str) -> None:
    """Raise unless ``reduction`` is "none", "mean", "sum" or "per_image"."""
    if reduction != "none" and reduction != "mean" and reduction != "sum" and reduction != "per_image":
        raise ValueError(f"reduction: expected 'none', 'mean', 'sum' or 'per_image', got '{reduction}'")


def check_per_image_sets(reduction: str, per_image: bool) -> None:
    """Raise if a set loss pools the batch into one set but one value per image is asked for."""
    if reduction == "per_image" and not per_image:
        raise ValueError(
            "reduction: 'per_image' needs per_image=True (one set per image); with per_image=False "
            "the batch is one set and has no per-image value"
        )


def as_float32(x: Tensor) -> Tensor:
    """``x`` in float32 when it is float16 or bfloat16, else unchanged: losses accumulate in float32."""
    if x.dtype == torch.float16 or x.dtype == torch.bfloat16:
        return x.float()
    return x


def check_finite_option(value: float, name: str) -> None:
    """Raise unless the option ``value`` is a finite number (NaN and infinities are refused).

    In eager mode its type is checked too: a string, None or a bool is refused by name. (TorchScript
    checks the annotated type itself, and under tracing the value is a number Dynamo made.)
    """
    if not torch.jit.is_scripting() and checking_values():
        check_number(value, name)
    # Two comparisons, which NaN fails, rather than math.isfinite: torch.compile(dynamic=True)
    # makes a float option a symbolic float, which math.isfinite cannot take inside a full graph;
    # and not value == value, which TorchScript evaluates as True for NaN.
    if not (value > -math.inf and value < math.inf):
        raise ValueError(f"{name}: expected a finite number, got {value}")


def check_option_range(value: float, name: str, low: float, high: float, low_open: bool, high_open: bool) -> None:
    """Raise unless ``value`` is finite and lies in the interval from ``low`` to ``high``.

    ``low_open``/``high_open`` exclude the ends; an infinite end means "unbounded" (the value
    must still be finite). Written so that NaN fails every comparison and is refused.
    """
    check_finite_option(value, name)
    above = value > low if low_open else value >= low
    below = value < high if high_open else value <= high
    if not (above and below):
        if high == math.inf:
            sign = ">" if low_open else ">="
            raise ValueError(f"{name}: expected a finite value {sign} {_number(low)}, got {value}")
        left = "(" if low_open else "["
        right = ")" if high_open else "]"
        raise ValueError(f"{name}: expected a value in {left}{_number(low)}, {_number(high)}{right}, got {value}")


def _number(value: float) -> str:
    """``value`` as written by a person: whole numbers without a trailing ``.0``."""
    if math.isfinite(value) and value == float(int(value)):
        return str(int(value))
    return str(value)


def input_poison(input: Tensor, allow_negative_inf: bool = False) -> Tensor:
    """Shape (N,): 0 for each image whose values are all finite, NaN for the others.

    Added to an image's outputs, it makes them NaN exactly where a NaN or infinite logit came in,
    in every mode: argmax, thresholds, a class the target does not pick and empty-set guards
    would otherwise hide it. ``allow_negative_inf`` accepts -inf (a log-probability of 0).

    Computed as Σ 0·x per image, which is 0 for finite values and NaN for NaN and ±inf, with no
    overflow: one multiply-and-sum pass, cheaper than ``isfinite`` and its reduction, the same in
    every mode and in onnxruntime, and outside autograd.
    """
    flat = input.detach().reshape(input.shape[0], -1)
    if allow_negative_inf:
        # Only to make -inf finite: the value itself is multiplied by 0.
        flat = flat.clamp_min(-1e30)
    if checking_values() and flat.device.type == "cpu":
        # Valid input, the usual case, costs one read and no copy: a finite total means no NaN and
        # no infinity anywhere. (A total that overflows takes the exact way below.) Not on a GPU,
        # where reading the total back would stall the stream.
        if bool(torch.isfinite(flat.sum())):
            return torch.zeros(flat.shape[0], dtype=flat.dtype, device=flat.device)
    return (flat * 0.0).sum(1)


def poison_unless_all(ok: Tensor, dtype: torch.dtype) -> Tensor:
    """Shape (N,) of ``dtype`` from a bool (N, *) tensor: NaN for each image where ``ok`` is not
    True everywhere, 0 for the others."""
    bad = ~ok.reshape(ok.shape[0], -1).all(1)
    return torch.zeros(bad.shape, dtype=dtype, device=bad.device).masked_fill(bad, math.nan)


def poison_rows(value: Tensor, poison: Optional[Tensor]) -> Tensor:
    """``value`` with dim 0 indexing images, plus each image's poison broadcast over its other dims."""
    if poison is None:
        return value
    return value + poison.reshape([-1] + [1] * (value.dim() - 1))


def probability_target(target: Tensor, dtype: torch.dtype, name: str = "target") -> Tuple[Tensor, Tensor]:
    """A (N, C, *) binary or probability ``target`` in ``dtype`` (float32 for half), and its poison.

    Eager and TorchScript raise for a NaN or a value outside [0, 1]. While tracing, the (N,)
    poison is NaN for each image that holds one, so that a target of -1 or 2 cannot pass for a
    plausible probability; it is 0 otherwise.
    """
    truth = as_float32(target) if target.is_floating_point() else target.to(dtype)
    if checking_values():
        # One pass, and none for a bool target: a NaN anywhere makes both ends NaN, failing both tests.
        if target.dtype != torch.bool:
            low, high = torch.aminmax(truth.detach())
            if not (float(low) >= 0.0 and float(high) <= 1.0):
                raise ValueError(
                    f"{name}: expected binary targets or probabilities in [0, 1], found NaN or values outside"
                )
        # What raises here is what the poison would mark: nothing is left to mark.
        return truth, torch.zeros(truth.shape[0], dtype=truth.dtype, device=truth.device)
    return truth, poison_unless_all((truth >= 0) & (truth <= 1), truth.dtype)


def check_floating(x: Tensor, name: str) -> None:
    """Raise unless ``x`` has a floating dtype."""
    if not x.is_floating_point():
        raise ValueError(f"{name}: expected a floating-point tensor, got an integer or bool tensor")


def check_finite_non_negative(x: Tensor, name: str) -> Tensor:
    """Raise if ``x`` holds NaN, an infinity or a negative value (eager and TorchScript).

    While tracing, nothing can raise: ``x`` comes back with those entries made NaN, so they poison
    whatever they enter. Otherwise ``x`` comes back unchanged.
    """
    if checking_values():
        # One pass: a NaN anywhere makes both ends NaN, and an infinity shows at one end.
        low, high = torch.aminmax(x)
        lowest, highest = float(low), float(high)
        if not (math.isfinite(lowest) and math.isfinite(highest)):
            raise ValueError(f"{name}: expected finite values, found NaN or inf")
        if lowest < 0:
            raise ValueError(f"{name}: expected non-negative values, found a minimum of {lowest}")
        return x
    # NaN fails both tests, so NaN, infinities and negative values all become NaN.
    return torch.where((x >= 0) & (x < math.inf), x, math.nan)


def check_input_rank(input: Tensor, min_dim: int, layout: str) -> None:
    """Raise unless ``input`` has at least ``min_dim`` dims and no empty dim."""
    if input.dim() < min_dim:
        raise ValueError(f"input: expected shape {layout}, got {list(input.shape)}")
    if input.numel() == 0:
        raise ValueError(f"input: expected a non-empty tensor, got shape {list(input.shape)}")


def check_softmax_channels(input: Tensor, instead: str) -> None:
    """Raise for a softmax over one channel: it is 1 everywhere whatever the logits, so a loss on it
    is constant and its gradient 0. ``instead`` names what to use for a single channel."""
    if input.dim() >= 2 and input.shape[1] == 1:
        raise ValueError(
            f"input: a softmax over C = 1 channel is 1 everywhere, whatever the logits, so this would "
            f"be constant; {instead}, or give two channels (background and foreground)"
        )


def checked_input(input: Tensor, min_dim: int, layout: str) -> Tensor:
    """``input`` checked to be a floating tensor of at least ``min_dim`` non-empty dims
    (``layout`` names them in the error), in float32 when it is float16 or bfloat16."""
    check_input_rank(input, min_dim, layout)
    check_floating(input, "input")
    return as_float32(input)


def check_same_shape(x: Tensor, name: str, shape: List[int], layout: str) -> None:
    """Raise unless ``x`` has exactly ``shape``; ``layout`` names the expected axes."""
    if list(x.shape) != shape:
        raise ValueError(f"{name}: expected shape {layout} = {shape}, got {list(x.shape)}")


def check_class_weight(class_weight: Optional[Tensor], num_classes: int) -> Optional[Tensor]:
    """Check that ``class_weight`` is None or a finite, non-negative float vector of length C.

    Returns it, with invalid entries made NaN while tracing (where nothing can raise).
    """
    if class_weight is None:
        return None
    check_floating(class_weight, "class_weight")
    if class_weight.dim() != 1 or class_weight.shape[0] != num_classes:
        raise ValueError(f"class_weight: expected shape (C,) = [{num_classes}], got {list(class_weight.shape)}")
    return check_finite_non_negative(class_weight, "class_weight")


def _indices_layout(target: Tensor, input: Tensor, name: str) -> Tensor:
    """Check that ``target`` (the argument ``name``) holds integer class indices (N, *) for an
    (N, C, *) input; as int64."""
    expected = [input.shape[0]] + list(input.shape[2:])
    if target.is_floating_point() or target.dtype == torch.bool or target.is_complex():
        raise ValueError(
            f"{name}: expected integer class indices of shape (N, *) = {expected}, got a "
            f"non-integer tensor of shape {list(target.shape)} (probabilities have shape "
            f"(N, C, *) = {list(input.shape)})"
        )
    check_same_shape(target, name, expected, "(N, *)")
    return target.long()


def _checked_indices(
    indices: Tensor, num_classes: int, ignore_index: Optional[int], dtype: torch.dtype, name: str
) -> Tuple[Tensor, Optional[Tensor]]:
    """Check that every index lies in [0, C) (ignored pixels already replaced by 0).

    Eager and TorchScript raise, and return ``(indices, None)``. While tracing nothing can raise:
    see :func:`_traced_indices`.
    """
    if checking_values():
        low, high = torch.aminmax(indices)
        if int(low) < 0 or int(high) >= num_classes:
            allowed = "" if ignore_index is None else f" or equal ignore_index={ignore_index}"
            raise ValueError(
                f"{name}: class indices must lie in [0, {num_classes}){allowed}, found values "
                f"in [{int(low)}, {int(high)}]"
            )
        return indices, None
    safe, _, poison = _traced_indices(indices, num_classes, None, dtype)
    return safe, poison


def _traced_indices(
    indices: Tensor, num_classes: int, ignore_index: Optional[int], dtype: torch.dtype
) -> Tuple[Tensor, Optional[Tensor], Tensor]:
    """While tracing: :func:`_traced_values` with the values as int64, safe to ``gather``."""
    values, keep, poison = _traced_values(indices, num_classes, ignore_index, dtype)
    return values.to(torch.int64), keep, poison


def _traced_values(
    indices: Tensor, num_classes: int, ignore_index: Optional[int], dtype: torch.dtype
) -> Tuple[Tensor, Optional[Tensor], Tensor]:
    """While tracing: the int64 ``indices`` as float32 clamped into [0, C) (``ignore_index`` taken
    as class 0), the bool ``keep`` of the pixels not ignored (None without an ignore index), and
    the (N,) ``poison`` of ``dtype``, NaN for each image that held an index out of range.

    The target is read once, into float32, which holds every index up to 2^24 exactly and rounds
    a larger one to a value still out of range (and equal to no ignore index up to 2^24; a larger
    one is compared in int64). A min and a max per image, then one clamp: onnxruntime runs these
    float kernels several times faster than its int64 clamp and comparisons.
    """
    values = indices.to(torch.float32)
    keep: Optional[Tensor] = None
    if ignore_index is not None:
        if -16777216 <= ignore_index and ignore_index <= 16777216:  # 2^24: exact in float32
            keep = values != float(ignore_index)
        else:
            keep = indices != ignore_index
        values = values * keep.to(torch.float32)
    flat = values.reshape(values.shape[0], -1)
    in_range = (flat.amin(1) >= 0) & (flat.amax(1) <= num_classes - 1)
    return values.clamp(0, num_classes - 1), keep, poison_unless_all(in_range, dtype)


def traced_class_values(
    target: Tensor, input: Tensor, ignore_index: Optional[int], name: str = "target"
) -> Tuple[Tensor, Optional[Tensor], Tensor]:
    """While tracing only: class indices (N, *) of an (N, C, *) input as float32 values, for a
    one-hot compared in float: ``(values, keep, poison)`` of :func:`_traced_values`, with -1 (no
    class) where the target equals ``ignore_index``."""
    indices = _indices_layout(target, input, name)
    values, keep, poison = _traced_values(indices, input.shape[1], ignore_index, input.dtype)
    if keep is not None:
        values = torch.where(keep, values, -1.0)
    return values, keep, poison


def class_indices(target: Tensor, input: Tensor, name: str = "target") -> Tuple[Tensor, Optional[Tensor]]:
    """Check class indices (N, *), each in [0, C), against an (N, C, *) input.

    Returns ``(labels, poison)``: the int64 labels, safe to ``gather``, and the (N,) poison or None
    (see :func:`_checked_indices`).
    """
    return _checked_indices(_indices_layout(target, input, name), input.shape[1], None, input.dtype, name)


def index_target(
    target: Tensor, input: Tensor, ignore_index: int, name: str = "target"
) -> Tuple[Tensor, Tensor, Optional[Tensor]]:
    """Check class indices (N, *) that may hold ``ignore_index``; return ``(valid, safe, poison)``.

    ``valid`` is False where the target equals ``ignore_index``; ``safe`` is the int64 target
    with those pixels set to class 0, ready for ``gather``. Every other value must lie in [0, C):
    eager and TorchScript raise; while tracing, such a pixel is clamped into [0, C) and its
    image's entry of the (N,) ``poison`` is NaN (``poison`` is None when the values were checked).
    """
    indices = _indices_layout(target, input, name)
    if checking_values():
        valid = indices != ignore_index
        safe, poison = _checked_indices(
            torch.where(valid, indices, torch.zeros_like(indices)), input.shape[1], ignore_index, input.dtype, name
        )
        return valid, safe, poison
    safe, keep, traced_poison = _traced_indices(indices, input.shape[1], ignore_index, input.dtype)
    assert keep is not None  # an ignore index was given
    return keep, safe, traced_poison


def plain_index_target(target: Tensor, input: Tensor, ignore_index: int, name: str = "target") -> Optional[Tensor]:
    """Eager and TorchScript only: the (N, *) int64 class indices when every value is a class in
    [0, C) and none can be ``ignore_index``, checked in one pass; None otherwise (ignored pixels
    may be present, or a value is out of range: :func:`index_target` then masks or raises)."""
    indices = _indices_layout(target, input, name)
    num_classes = input.shape[1]
    if 0 <= ignore_index and ignore_index < num_classes:
        return None
    low, high = torch.aminmax(indices)
    if int(low) < 0 or int(high) >= num_classes:
        return None
    return indices


def elementwise_weight(weight: Optional[Tensor], shape: List[int], channel_dim: bool) -> Optional[Tensor]:
    """Check a weight map against an element-wise loss of ``shape`` and return it broadcastable.

    ``weight`` has the loss's shape, or the same rank with size-1 dims that broadcast (a
    per-image weight (N, 1, 1), say). When dim 1 of the loss is a channel dim (``channel_dim``),
    a weight of the spatial layout (N, *) is also accepted and applies to every channel. Weights
    must be finite and non-negative: eager and TorchScript raise otherwise; while tracing, an
    image with an invalid weight has all its weights NaN (a NaN entry at least that entry), which
    poisons its values. float16 and bfloat16 weights are returned in float32.
    """
    pixel_weight, poison = weight_and_poison(weight, shape, channel_dim)
    if pixel_weight is None or poison is None:
        return pixel_weight
    return poison_rows(pixel_weight, poison)


def weight_and_poison(
    weight: Optional[Tensor], shape: List[int], channel_dim: bool
) -> Tuple[Optional[Tensor], Optional[Tensor]]:
    """:func:`elementwise_weight` with the traced (N,) poison kept apart, for a caller that adds it
    to its own: ``(weight, poison)``; poison is None where values were checked or no weight came."""
    if weight is None:
        return None, None
    check_floating(weight, "weight")
    pixel_weight = as_float32(weight)
    if channel_dim and pixel_weight.dim() == len(shape) - 1:
        pixel_weight = pixel_weight.unsqueeze(1)
    matches = pixel_weight.dim() == len(shape)
    if matches:
        for d in range(len(shape)):
            if pixel_weight.shape[d] != 1 and pixel_weight.shape[d] != shape[d]:
                matches = False
    if not matches:
        # Built only here: torch.compile cannot trace string concatenation.
        per_pixel = f", or {[shape[0]] + shape[2:]} for a per-pixel map" if channel_dim else ""
        raise ValueError(
            f"weight: expected shape {shape} (size-1 dims broadcast){per_pixel}, got {list(weight.shape)}"
        )
    if checking_values():
        return check_finite_non_negative(pixel_weight, "weight"), None
    # Traced: a min and a max per image (reads), cheaper in onnxruntime than marking each bad
    # entry; a NaN entry stays NaN where they skip it (onnxruntime's do).
    flat = pixel_weight.reshape(pixel_weight.shape[0], -1)
    return pixel_weight, torch.where(flat.amin(1) >= 0, flat.amax(1) * 0.0, math.nan)


def as_option_tensor(value: object, name: str) -> Optional[Tensor]:
    """A Module option such as ``class_weight``: None, a float tensor, or a sequence made one.

    Called in ``__init__`` only (plain Python, not scripted), so the Module can store a buffer
    that ``.to(device)`` moves.
    """
    if value is None:
        return None
    tensor = value if isinstance(value, Tensor) else torch.as_tensor(value, dtype=torch.get_default_dtype())
    check_floating(tensor, name)
    # Checked here whatever mode the forward runs in later: a compiled forward skips value checks.
    if not bool(torch.isfinite(tensor).all()):
        raise ValueError(f"{name}: expected finite values, found NaN or inf in {tensor.tolist()}")
    if bool((tensor < 0).any()):
        raise ValueError(f"{name}: expected non-negative values, got {tensor.tolist()}")
    return tensor


def safe_divide(num: Tensor, den: Tensor) -> Tensor:
    """``num / den`` where ``den != 0`` and 0 where ``den == 0``, with a zero (never NaN) gradient there.

    Only a true zero is "empty": a NaN denominator fails ``den == 0`` and gives NaN.
    """
    nonzero = den != 0
    return torch.where(nonzero, num / torch.where(nonzero, den, torch.ones_like(den)), torch.zeros_like(num))


def ratio_or(num: Tensor, den: Tensor, empty: float) -> Tensor:
    """``num / den``, and ``empty`` where ``den`` is truly 0 (a NaN denominator stays NaN).

    The empty-set rule of the set losses (a score of 1) and of the metrics (``empty_score``).
    """
    return torch.where(den == 0, torch.full_like(den, empty), safe_divide(num, den))


def reduce_loss(loss: Tensor, norm: Optional[Tensor], reduction: str, poison: Optional[Tensor] = None) -> Tensor:
    """Apply the package's one reduction rule.

    Parameters
    ----------
    loss : Tensor
        Element values already multiplied by their weight, w·ℓ. This is what "none" returns.
    norm : Tensor or None
        The weight of each element in the mean (broadcastable to ``loss``): the weight map times
        the class weight, zero where ignored. None means every element counts once.
    reduction : str
        "none", "mean" (Σ w·ℓ / Σ w, and 0 with zero gradient when Σ w = 0), "sum" (Σ w·ℓ), or
        "per_image": shape (N,), entry n the "mean" of image n alone (dim 0 of ``loss`` indexes
        the images).
    poison : Tensor, optional
        Shape (N,) (or (1,) for a pooled set): 0, or NaN for an image whose outputs must be NaN.
        It costs a full pass only with "none".
    """
    if reduction == "none":
        return poison_rows(loss, poison)
    if reduction == "per_image":
        per_image = loss.reshape(loss.shape[0], -1).sum(1)
        if norm is None:
            per_image = per_image / max(loss[0].numel(), 1)
        else:
            per_image = safe_divide(per_image, norm.expand(loss.shape).reshape(loss.shape[0], -1).sum(1))
        return poison_rows(per_image, poison)
    total = loss.sum()
    if reduction == "mean":
        total = _mean_of(total, loss, norm)
    if poison is not None:
        total = total + poison.sum()
    return total


def _mean_of(total: Tensor, loss: Tensor, norm: Optional[Tensor]) -> Tensor:
    """The "mean" of a loss that sums to ``total``: Σ w·ℓ / Σ w (0 when Σ w = 0), or / the count."""
    if norm is None:
        return total / max(loss.numel(), 1)
    return safe_divide(total, norm.expand(loss.shape).sum())


def reduce_product(
    loss: Tensor, factor: Optional[Tensor], norm: Optional[Tensor], reduction: str, poison: Optional[Tensor] = None
) -> Tensor:
    """:func:`reduce_loss` of ``loss * factor`` (``factor`` None: of ``loss``), ``norm`` as there.

    Eager and TorchScript, "mean" and "sum" with a factor of the loss's shape and dtype take one dot
    product for the sum: no product tensor is written, and the backward is the product's. (Traced,
    the product and the sum fuse into one kernel anyway, where a dot would be a library call.)
    """
    if factor is None:
        return reduce_loss(loss, norm, reduction, poison)
    pooled = reduction == "mean" or reduction == "sum"
    if pooled and checking_values() and factor.shape == loss.shape and factor.dtype == loss.dtype:
        total = torch.dot(loss.reshape(-1), factor.reshape(-1))
        if reduction == "mean":
            total = _mean_of(total, loss, norm)
        if poison is not None:
            total = total + poison.sum()
        return total
    return reduce_loss(loss * factor, norm, reduction, poison)
