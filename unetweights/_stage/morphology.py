"""The exact Euclidean distance transform and soft morphology, written in torch.

What the distance losses (:mod:`.distance`) compute in the graph: :func:`distance_transform`, the
distance of each element to its channel's boundary, for a target whose distance map was not
passed and for the prediction, which changes with every step; and :func:`soft_skeleton`,
clDice's skeleton of probabilities by soft erosion and dilation. Both are morphology (scipy keeps
its distance transforms in ``ndimage.morphology`` too), both run unchanged eager, scripted,
compiled and exported, on the CPU and the GPU, and neither knows about losses.
"""

import math
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .options import checked_reals
from .reduce import check_option_range, checking_values


def checked_spacing(spacing: Optional[List[float]], ndim: int) -> List[float]:
    """``spacing`` checked to have one finite positive entry per spatial axis; ones if None."""
    if spacing is None:
        return [1.0] * ndim
    if not torch.jit.is_scripting() and checking_values():
        checked_reals(spacing, "spacing")
    if len(spacing) != ndim:
        raise ValueError(f"spacing: expected {ndim} entries, one per spatial axis, got {len(spacing)}")
    for step in spacing:
        check_option_range(step, "spacing", 0.0, math.inf, True, True)
    return spacing


def _lower_envelope(f: Tensor, step: float) -> Tensor:
    """Along the last dim of ``f`` (lines of length L): out[x] = min over y of f[y] + (step·(x - y))²."""
    length = f.shape[-1]
    position = torch.arange(length, device=f.device, dtype=f.dtype) * step
    if not checking_values():
        if not torch.jit.is_scripting():
            # (Nested: TorchScript skips only a block whose whole condition is is_scripting.)
            if torch.compiler.is_exporting():
                return _envelope_scanned(f, position, step)
        # torch.compile fuses the sum into the minimum: nothing of (elements × L) is stored.
        return (f.unsqueeze(-2) + (position.unsqueeze(1) - position.unsqueeze(0)).square()).amin(-1)
    cost = (position.unsqueeze(1) - position.unsqueeze(0)) ** 2
    lines = f.reshape(-1, length)
    # At most 2^24 (line, x, y) values per chunk, 64 MiB in float32 (a literal: TorchScript
    # cannot read module globals).
    chunk = max(1, 16777216 // (length * length))
    parts: List[Tensor] = []
    for start in range(0, lines.shape[0], chunk):
        parts.append((lines[start : start + chunk].unsqueeze(1) + cost).amin(-1))
    return torch.cat(parts, 0).reshape(f.shape)


def _envelope_scanned(f: Tensor, position: Tensor, step: float) -> Tensor:
    """:func:`_lower_envelope` for an exported graph: the candidates y 8 at a time, in a loop.

    An exported graph has symbolic sizes and runs where nothing fuses the sum into the minimum
    (onnxruntime), so taking every y at once would store (elements × L) values: 1 GiB for a 128³
    float32 volume. Here a scan (an ONNX ``Scan``) carries the running minimum over slices of 8
    candidates, so no step holds more than (elements × 8) values, whatever the size (slices of 16
    ran 1.35x faster and took twice the memory: 1.5 GiB more for a 128³ graph of three classes,
    benchmarks/RESULTS.md). The lines
    are padded with +inf to a whole number of slices, at least two (a loop of one would be
    specialised by the exporter).
    """
    from torch._higher_order_ops.scan import scan

    width = 8
    slices = f.shape[-1] // width + 2
    padded = F.pad(f, [0, slices * width - f.shape[-1]], value=math.inf)
    # unfold, not reshape: the exporter proves its sizes without a divisibility guard.
    candidates = padded.unfold(-1, width, width).movedim(-2, 0).contiguous()
    places = (torch.arange(slices * width, device=f.device, dtype=f.dtype) * step).unfold(0, width, width)

    def take(best: Tensor, slice_: List[Tensor]) -> Tuple[Tensor, Tensor]:
        values, at = slice_[0], slice_[1]
        cost = (position.unsqueeze(1) - at).square()
        best = torch.minimum(best, (values.unsqueeze(-2) + cost).amin(-1))
        # scan stacks a per-step output; one scalar costs nothing.
        return best, best.new_zeros(())

    best, _ = scan(take, torch.full(f.shape, math.inf, dtype=f.dtype, device=f.device), [candidates, places.contiguous()])
    return best


def squared_distance_to(mask: Tensor, spacing: Optional[List[float]] = None, dims: int = -1) -> Tensor:
    """Squared Euclidean distance from every element to the nearest True element of ``mask``.

    Parameters
    ----------
    mask : Tensor of bool
        Shape (*batch, *spatial).
    spacing : list of float, optional
        Physical size of a step along each spatial axis (default 1).
    dims : int
        The number of trailing spatial dims; -1 means all but the first two (an (N, C, *) mask).

    Returns
    -------
    Tensor of float32
        Same shape; inf across a whole (*batch) entry that holds no True element.

    Notes
    -----
    Exact: the squared Euclidean distance separates into one lower envelope of parabolas per axis
    (out[x] = min_y f[y] + (s·(x - y))²), taken here by brute force over y in O(L) per element and
    axis. Eager mode and TorchScript find the last axis's distances with running maxima in O(1)
    per element (the same values), and process the other axes' lines in chunks of at most 2^24
    (line, x, y) triples; torch.compile takes each axis whole (it fuses the sum into the
    minimum, storing nothing of that size), and an exported graph (torch.export, ONNX) loops over
    the candidates y 8 at a time, so no step holds more than (elements × 8) floats.
    """
    ndim = mask.dim() - 2 if dims == -1 else dims
    if ndim < 1 or ndim > mask.dim():
        raise ValueError(f"dims: expected 1 to {mask.dim()} spatial dims, got {ndim}")
    steps = checked_spacing(spacing, ndim)
    if checking_values():
        # Eager and TorchScript: along the last axis the nearest True element is found by two
        # running maxima, O(1) per element instead of O(L).
        squared = _nearest_along_last(mask, steps[ndim - 1])
    else:
        # Traced graphs: the same in O(1) per element with what every exporter takes (a cumulative
        # count, a scatter and two gathers); ONNX has no running maximum.
        squared = _nearest_along_last_traced(mask, steps[ndim - 1])
    axes = ndim - 1
    for axis in range(axes):
        dim = mask.dim() - ndim + axis
        moved = squared.movedim(dim, -1)
        squared = _lower_envelope(moved, steps[axis]).movedim(-1, dim)
    return squared


def _nearest_along_last(mask: Tensor, step: float) -> Tensor:
    """Squared distance along the last dim to the nearest True element of its line (inf if none)."""
    position = torch.arange(mask.shape[-1], device=mask.device, dtype=torch.float32)
    nowhere = torch.full_like(position, -math.inf)
    # The last True at or before x, and minus the first True at or after x: running maxima.
    before = torch.cummax(torch.where(mask, position, nowhere), -1)[0]
    after = -torch.cummax(torch.where(mask, -position, nowhere).flip(-1), -1)[0].flip(-1)
    gap = torch.minimum(position - before, after - position) * step
    return gap * gap


def _nearest_along_last_traced(mask: Tensor, step: float) -> Tensor:
    """:func:`_nearest_along_last` without a running maximum: where the k-th True element of each line
    lies, from a cumulative count, a scatter into a table of positions and two gathers."""
    length = mask.shape[-1]
    lines = mask.reshape(-1, length)
    position = torch.arange(length, device=mask.device, dtype=torch.float32).expand(lines.shape)
    count = lines.to(torch.int64).cumsum(-1)  # True elements at or before x
    # Slot k of the table holds the position of the k-th True element (k = 1, 2, ...); slot 0 is
    # "none before" (-inf) and every slot past the last one "none after" (+inf). Elements that
    # are not True all write -inf into slot 0.
    table = torch.full([lines.shape[0], length + 2], math.inf, device=mask.device, dtype=torch.float32)
    table = torch.cat([torch.full_like(table[:, :1], -math.inf), table[:, 1:]], 1)
    slots = torch.where(lines, count, torch.zeros_like(count))
    table = table.scatter(1, slots, torch.where(lines, position, torch.full_like(position, -math.inf)))
    before = table.gather(1, count)
    after = table.gather(1, count - lines.to(torch.int64) + 1)
    gap = torch.minimum(position - before, after - position) * step
    return (gap * gap).reshape(mask.shape)


def distance_transform(mask: Tensor, spacing: Optional[List[float]] = None, signed: bool = True) -> Tensor:
    """Euclidean distance of each element of ``mask`` (N, C, *) to its channel's boundary, in torch.

    With ``signed`` (the default), the convention of
    :func:`unetweights.weightmaps.signed_distance_map`: outside the mask, the distance to the
    nearest True element; inside, minus the distance to the nearest False element. Without it,
    the absolute value of that (the distance field of Karimi & Salcudean 2019). A channel of an
    image with no True or no False element has no boundary and is 0. float32, no gradient.
    ``spacing`` gives the physical step of each spatial axis. See :func:`squared_distance_to` for
    the algorithm and its memory.
    """
    if mask.dim() < 3:
        raise ValueError(f"mask: expected shape (N, C, *), got {list(mask.shape)}")
    mask = mask.detach() if mask.dtype == torch.bool else mask.detach() > 0.5
    outside = torch.sqrt(squared_distance_to(mask, spacing))
    inside = torch.sqrt(squared_distance_to(~mask, spacing))
    flat = mask.reshape(mask.shape[0], mask.shape[1], -1)
    has_boundary = (flat.any(-1) & ~flat.all(-1)).view(list(mask.shape[:2]) + [1] * (mask.dim() - 2))
    field = outside - inside if signed else outside + inside
    return torch.where(has_boundary, field, torch.zeros_like(field))


def _neighbours(x: Tensor, dim: int, fill: float) -> Tuple[Tensor, Tensor]:
    """x shifted by one step each way along ``dim``, with ``fill`` shifted in from outside."""
    moved = x.movedim(dim, -1)
    length = moved.shape[-1]
    padded = F.pad(moved, [1, 1], value=fill)
    return padded.narrow(-1, 0, length).movedim(-1, dim), padded.narrow(-1, 2, length).movedim(-1, dim)


# Both take extremes with elementwise minimum/maximum, not pooling: where neighbours tie, these
# share the gradient by a fixed rule in every mode, while pooling's choice of one index differs
# between eager and compiled kernels. Elementwise chains also fuse into one compiled kernel.
def _soft_erode(x: Tensor) -> Tensor:
    """Soft erosion: the minimum over the cross of each element and its 2·d axis neighbours."""
    eroded = x
    for dim in range(2, x.dim()):
        before, after = _neighbours(x, dim, math.inf)
        eroded = torch.minimum(eroded, torch.minimum(before, after))
    return eroded


def _soft_dilate(x: Tensor) -> Tensor:
    """Soft dilation: the maximum over the full 3^d box, one axis at a time."""
    for dim in range(2, x.dim()):
        before, after = _neighbours(x, dim, -math.inf)
        x = torch.maximum(x, torch.maximum(before, after))
    return x


def soft_skeleton(x: Tensor, iterations: int = 3) -> Tensor:
    """Soft skeleton of probabilities ``x`` (N, C, *) (Shit et al. 2021), in any number of spatial dims.

    Iterated morphological thinning with min-pooling (erosion) and max-pooling (dilation):
    skeleton = relu(x - open(x)), then ``iterations`` times x ← erode(x) and the skeleton gains
    relu(δ - skeleton·δ) with δ = relu(x - open(x)). On a binary mask it approaches the
    morphological skeleton as ``iterations`` reaches the structures' half-width. Erosion is the
    minimum over each element's cross of axis neighbours, dilation the maximum over its 3^d box;
    pixels outside the image never win either. Scripts and exports.
    """
    if x.dim() < 3:
        raise ValueError(f"input: expected shape (N, C, *) for a soft skeleton, got {list(x.shape)}")
    skeleton = F.relu(x - _soft_dilate(_soft_erode(x)))
    for _ in range(iterations):
        x = _soft_erode(x)
        delta = F.relu(x - _soft_dilate(_soft_erode(x)))
        skeleton = skeleton + F.relu(delta - skeleton * delta)
    return skeleton

__all__: List[str] = ["checked_spacing", "distance_transform", "soft_skeleton", "squared_distance_to"]
