"""The one reduction rule and the input checks that every loss shares.

Every function here is written so that the losses calling it run unchanged in eager mode, under
``torch.jit.script``, ``torch.compile(fullgraph=True)`` and ``torch.export``:

- checks of shapes, dtypes and options are plain ``if ...: raise ValueError(...)``; they run in
  every mode (under tracing the shapes are symbolic and a check becomes a guard);
- checks of *values* (NaN weights, a class index out of range) need the data on the host. They run
  in eager mode and in TorchScript, and are skipped while ``torch.compile`` or ``torch.export``
  traces, where reading a value would break the graph (:func:`checking_values`).

TorchScript turns a raised ``ValueError`` into ``torch.jit.Error`` whose message starts with
``builtins.ValueError:``; the text after it is the same.
"""

from typing import List, Optional, Tuple

import torch
from torch import Tensor


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


def check_floating(x: Tensor, name: str) -> None:
    """Raise unless ``x`` has a floating dtype."""
    if not x.is_floating_point():
        raise ValueError(f"{name}: expected a floating-point tensor, got an integer or bool tensor")


def check_finite_non_negative(x: Tensor, name: str) -> None:
    """Raise if ``x`` holds NaN, an infinity or a negative value (eager and TorchScript only)."""
    if checking_values():
        if bool((~torch.isfinite(x)).any()):
            raise ValueError(f"{name}: expected finite values, found NaN or inf")
        if bool((x < 0).any()):
            raise ValueError(f"{name}: expected non-negative values, found a minimum of {float(x.min())}")


def check_input_rank(input: Tensor, min_dim: int, layout: str) -> None:
    """Raise unless ``input`` has at least ``min_dim`` dims and no empty dim."""
    if input.dim() < min_dim:
        raise ValueError(f"input: expected shape {layout}, got {list(input.shape)}")
    if input.numel() == 0:
        raise ValueError(f"input: expected a non-empty tensor, got shape {list(input.shape)}")


def check_same_shape(x: Tensor, name: str, shape: List[int], layout: str) -> None:
    """Raise unless ``x`` has exactly ``shape``; ``layout`` names the expected axes."""
    if list(x.shape) != shape:
        raise ValueError(f"{name}: expected shape {layout} = {shape}, got {list(x.shape)}")


def check_class_weight(class_weight: Optional[Tensor], num_classes: int) -> None:
    """Raise unless ``class_weight`` is None or a finite, non-negative float vector of length C."""
    if class_weight is not None:
        check_floating(class_weight, "class_weight")
        if class_weight.dim() != 1 or class_weight.shape[0] != num_classes:
            raise ValueError(
                f"class_weight: expected shape (C,) = [{num_classes}], got {list(class_weight.shape)}"
            )
        check_finite_non_negative(class_weight, "class_weight")


def _indices_layout(target: Tensor, input: Tensor) -> Tensor:
    """Check that ``target`` holds integer class indices (N, *) for an (N, C, *) input; as int64."""
    expected = [input.shape[0]] + list(input.shape[2:])
    if target.is_floating_point() or target.dtype == torch.bool or target.is_complex():
        raise ValueError(
            f"target: expected integer class indices of shape (N, *) = {expected}, got a "
            f"non-integer tensor of shape {list(target.shape)} (probabilities have shape "
            f"(N, C, *) = {list(input.shape)})"
        )
    check_same_shape(target, "target", expected, "(N, *)")
    return target.long()


def _check_index_range(indices: Tensor, num_classes: int, ignore_index: Optional[int]) -> None:
    """Raise unless every index lies in [0, C) (ignored pixels already replaced by 0)."""
    if checking_values():
        low, high = torch.aminmax(indices)
        if int(low) < 0 or int(high) >= num_classes:
            allowed = "" if ignore_index is None else f" or equal ignore_index={ignore_index}"
            raise ValueError(
                f"target: class indices must lie in [0, {num_classes}){allowed}, found values "
                f"in [{int(low)}, {int(high)}]"
            )


def class_indices(target: Tensor, input: Tensor) -> Tensor:
    """Check class indices (N, *), each in [0, C), against an (N, C, *) input; return them as int64."""
    indices = _indices_layout(target, input)
    _check_index_range(indices, input.shape[1], None)
    return indices


def index_target(target: Tensor, input: Tensor, ignore_index: int) -> Tuple[Tensor, Tensor]:
    """Check class indices (N, *) that may hold ``ignore_index``; return ``(valid, safe)``.

    ``valid`` is False where the target equals ``ignore_index``; ``safe`` is the int64 target
    with those pixels set to class 0, ready for ``gather``. Every other value must lie in [0, C).
    """
    indices = _indices_layout(target, input)
    valid = indices != ignore_index
    safe = torch.where(valid, indices, torch.zeros_like(indices))
    _check_index_range(safe, input.shape[1], ignore_index)
    return valid, safe


def elementwise_weight(weight: Optional[Tensor], shape: List[int], channel_dim: bool) -> Optional[Tensor]:
    """Check a weight map against an element-wise loss of ``shape`` and return it broadcastable.

    ``weight`` has the loss's shape, or the same rank with size-1 dims that broadcast (a
    per-image weight (N, 1, 1), say). When dim 1 of the loss is a channel dim (``channel_dim``),
    a weight of the spatial layout (N, *) is also accepted and applies to every channel. Weights
    must be finite and non-negative.
    """
    if weight is None:
        return None
    check_floating(weight, "weight")
    w = weight
    if channel_dim and w.dim() == len(shape) - 1:
        w = w.unsqueeze(1)
    matches = w.dim() == len(shape)
    if matches:
        for d in range(len(shape)):
            if w.shape[d] != 1 and w.shape[d] != shape[d]:
                matches = False
    if not matches:
        # Built only here: torch.compile cannot trace string concatenation.
        per_pixel = f", or {[shape[0]] + shape[2:]} for a per-pixel map" if channel_dim else ""
        raise ValueError(
            f"weight: expected shape {shape} (size-1 dims broadcast){per_pixel}, got {list(weight.shape)}"
        )
    check_finite_non_negative(weight, "weight")
    return w


def as_option_tensor(value: object, name: str) -> Optional[Tensor]:
    """A Module option such as ``class_weight``: None, a float tensor, or a sequence made one.

    Called in ``__init__`` only (plain Python, not scripted), so the Module can store a buffer
    that ``.to(device)`` moves.
    """
    if value is None:
        return None
    tensor = value if isinstance(value, Tensor) else torch.as_tensor(value, dtype=torch.get_default_dtype())
    check_floating(tensor, name)
    check_finite_non_negative(tensor, name)
    return tensor


def safe_divide(num: Tensor, den: Tensor) -> Tensor:
    """``num / den`` where ``den > 0`` and 0 elsewhere, with a zero (never NaN) gradient there."""
    positive = den > 0
    return torch.where(positive, num / torch.where(positive, den, torch.ones_like(den)), torch.zeros_like(num))


def reduce_loss(loss: Tensor, norm: Optional[Tensor], reduction: str) -> Tensor:
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
    """
    if reduction == "none":
        return loss
    if reduction == "per_image":
        per_image = loss.reshape(loss.shape[0], -1).sum(1)
        if norm is None:
            return per_image / max(loss[0].numel(), 1)
        return safe_divide(per_image, norm.expand(loss.shape).reshape(loss.shape[0], -1).sum(1))
    total = loss.sum()
    if reduction == "sum":
        return total
    if norm is None:
        return total / max(loss.numel(), 1)
    return safe_divide(total, norm.expand(loss.shape).sum())
