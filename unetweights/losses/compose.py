"""Composition: a weighted sum of losses, and deep supervision over several output resolutions."""

import copy
import math
from typing import List, Optional, Sequence

import torch
from torch import Tensor, nn

from .._stage.options import checked_real
from .._stage.reduce import check_reduction


def _check_coefficients(values: Sequence[float], name: str, length: int) -> List[float]:
    values = [checked_real(v, name) for v in values]
    if len(values) != length:
        raise ValueError(f"{name}: expected {length} values, got {len(values)}")
    if any(not math.isfinite(v) or v < 0 for v in values):
        raise ValueError(f"{name}: expected finite, non-negative values, got {values}")
    return values


class CombinedLoss(nn.Module):
    """A weighted sum of losses applied to the same output: Σ_i λ_i·loss_i(input, target, weight).

    Parameters
    ----------
    losses : sequence of nn.Module
        Loss modules with the package's ``forward(input, target, weight=None)`` signature, for
        example ``[WeightedCrossEntropyLoss(), SoftDiceLoss()]``. They should return tensors of
        the same shape (scalars with "mean" or "sum", (N,) with "per_image").
    weights : sequence of float, optional
        The λ_i, finite and non-negative; 1 each by default.

    Multiplying ``weight`` by a positive constant acts on each part as that part's docstring
    says: the sum is invariant when every part is (set losses, "mean" and "per_image").
    The module scripts with ``torch.jit.script``, compiles and exports like its parts.
    """

    def __init__(self, losses: Sequence[nn.Module], weights: Optional[Sequence[float]] = None) -> None:
        super().__init__()
        losses = list(losses)
        if len(losses) == 0:
            raise ValueError("losses: expected at least one loss module, got none")
        for i, loss in enumerate(losses):
            if not isinstance(loss, nn.Module):
                raise TypeError(f"losses[{i}]: expected an nn.Module, got {type(loss).__name__}")
        self.losses = nn.ModuleList(losses)
        self.weights: List[float] = _check_coefficients(
            [1.0] * len(losses) if weights is None else weights, "weights", len(losses)
        )

    def forward(self, input: Tensor, target: Tensor, weight: Optional[Tensor] = None) -> Tensor:
        total = torch.zeros((), dtype=input.dtype, device=input.device)
        for i, loss in enumerate(self.losses):
            total = total + self.weights[i] * loss(input, target, weight)
        return total


def _area_matrix(n_in: int, n_out: int, like: Tensor) -> Tensor:
    """(n_out, n_in) averaging matrix of adaptive average pooling: row i covers [⌊i·n/m⌋, ⌈(i+1)·n/m⌉)."""
    rows = torch.arange(n_out, device=like.device)
    start = torch.div(rows * n_in, n_out, rounding_mode="floor")
    end = torch.div((rows + 1) * n_in + n_out - 1, n_out, rounding_mode="floor")
    cols = torch.arange(n_in, device=like.device).unsqueeze(0)
    inside = (cols >= start.unsqueeze(1)) & (cols < end.unsqueeze(1))
    return inside.to(like.dtype) / (end - start).unsqueeze(1).to(like.dtype)


def _resize_trailing(x: Tensor, size: List[int], area: bool) -> Tensor:
    """Resize the trailing ``len(size)`` dims one at a time, by area averaging or nearest neighbour."""
    offset = x.dim() - len(size)
    if offset < 0:
        raise ValueError(f"size: expected at most {x.dim()} sizes for a tensor of shape {list(x.shape)}, got {size}")
    for i in range(len(size)):
        dim = offset + i
        if x.shape[dim] != size[i]:
            if area:
                matrix = _area_matrix(x.shape[dim], size[i], x)
                x = torch.matmul(x.movedim(dim, -1), matrix.t()).movedim(-1, dim)
            else:
                index = torch.div(torch.arange(size[i], device=x.device) * x.shape[dim], size[i], rounding_mode="floor")
                x = x.index_select(dim, index)
    return x


def resize_nearest(x: Tensor, size: List[int]) -> Tensor:
    """Resize the trailing ``len(size)`` dims of ``x`` by nearest neighbour, exactly, for any dtype.

    Output index i takes input index floor(i·n_in / n_out) (integer arithmetic), which is
    ``F.interpolate(mode="nearest")``'s rule, without a round trip of labels through float.
    """
    return _resize_trailing(x, size, False)


def resize_area(x: Tensor, size: List[int]) -> Tensor:
    """Resize the trailing ``len(size)`` dims of a floating ``x`` by area averaging.

    Each output pixel is the mean of the input pixels it covers, with the bounds of
    ``F.interpolate(mode="area")`` (adaptive average pooling), applied one dim at a time as a small
    matrix product. Unlike the pooling kernel this traces with symbolic sizes under
    ``torch.compile(dynamic=True)`` and ``torch.export``.
    """
    return _resize_trailing(x, size, True)


class DeepSupervisionLoss(nn.Module):
    """One criterion applied to several outputs at several resolutions: Σ_k λ_k·criterion(x_k, t_k, w_k).

    Parameters
    ----------
    criterion : nn.Module
        A loss with the package's ``forward(input, target, weight=None)`` signature.
    level_weights : sequence of float, optional
        λ_k for each output, finite and non-negative; then ``forward`` must get exactly that many
        outputs. By default λ_k ∝ 2^-k, normalised to sum to 1 (as nnU-Net does), for however
        many outputs arrive.
    weight_mode : str
        How the weight map is resized: "area" (the default: each coarse pixel gets the mean weight
        of the fine pixels it covers, so thin border ridges survive downsampling) or "nearest".

    Notes
    -----
    ``forward(inputs, target, weight=None)`` takes the outputs as a list, full resolution first
    by convention, each (N, C, *spatial_k). The target, class indices (N, *) or a (N, C, *) map,
    is resized to each spatial_k by nearest neighbour (exact for labels, so ``ignore_index``
    survives); the weight map (N, *) by ``weight_mode``. Both resizings are linear in the map,
    so scaling ``weight`` acts on the sum as it acts on ``criterion``.
    """

    def __init__(
        self, criterion: nn.Module, level_weights: Optional[Sequence[float]] = None, weight_mode: str = "area"
    ) -> None:
        super().__init__()
        if not isinstance(criterion, nn.Module):
            raise TypeError(f"criterion: expected an nn.Module, got {type(criterion).__name__}")
        if weight_mode != "area" and weight_mode != "nearest":
            raise ValueError(f"weight_mode: expected 'area' or 'nearest', got '{weight_mode}'")
        self.criterion = criterion
        self.level_weights: Optional[List[float]] = (
            None if level_weights is None else _check_coefficients(level_weights, "level_weights", len(level_weights))
        )
        if self.level_weights is not None and len(self.level_weights) == 0:
            raise ValueError("level_weights: expected at least one value, got none")
        self.weight_mode = weight_mode

    def forward(self, inputs: List[Tensor], target: Tensor, weight: Optional[Tensor] = None) -> Tensor:
        levels = len(inputs)
        if levels == 0:
            raise ValueError("inputs: expected at least one output, got an empty list")
        level_weights = self.level_weights
        if level_weights is None:
            norm = 2.0 - 0.5 ** (levels - 1)
            coefficients = [0.5**k / norm for k in range(levels)]
        else:
            if len(level_weights) != levels:
                raise ValueError(f"inputs: expected {len(level_weights)} outputs (one per level weight), got {levels}")
            coefficients = level_weights
        total = torch.zeros((), dtype=inputs[0].dtype, device=inputs[0].device)
        for k, output in enumerate(inputs):
            if output.dim() < 3:
                raise ValueError(f"inputs[{k}]: expected shape (N, C, *spatial), got {list(output.shape)}")
            size = list(output.shape[2:])
            level_target = resize_nearest(target, size)
            level_weight: Optional[Tensor] = None
            if weight is not None:
                level_weight = _resize_trailing(weight, size, self.weight_mode == "area")
            total = total + coefficients[k] * self.criterion(output, level_target, level_weight)
        return total


def with_reduction(loss: nn.Module, reduction: str) -> nn.Module:
    """A deep copy of ``loss`` whose every part uses ``reduction``; ``loss`` itself is unchanged.

    Every submodule with a ``reduction`` option gets the new value, so a :class:`CombinedLoss` or
    :class:`DeepSupervisionLoss` changes as a whole. ``with_reduction(loss, "per_image")`` gives
    one value per image, shape (N,), which is what evaluation graphs report.

    Raises
    ------
    TypeError
        If ``loss`` is not a module or has no part with a ``reduction`` option.
    ValueError
        If ``reduction`` is not one the losses accept, or it is "per_image" and a set loss (Dice,
        Tversky, Lovasz) pools the batch into one set (``per_image=False``).
    """
    if not isinstance(loss, nn.Module):
        raise TypeError(f"loss: expected an nn.Module, got {type(loss).__name__}")
    check_reduction(reduction)
    result = copy.deepcopy(loss)
    parts = [(name, module) for name, module in result.named_modules() if hasattr(module, "reduction")]
    if not parts:
        raise TypeError(f"loss: {type(loss).__name__} has no part with a 'reduction' option")
    for name, module in parts:
        if reduction == "per_image" and getattr(module, "per_image", True) is False:
            where = f" (part '{name}')" if name else ""
            raise ValueError(
                f"loss: {type(module).__name__}{where} pools the batch into one set (per_image=False), so it has "
                "no per-image value; build it with per_image=True"
            )
        module.reduction = reduction
    return result


__all__: List[str] = ["CombinedLoss", "DeepSupervisionLoss", "resize_area", "resize_nearest", "with_reduction"]
