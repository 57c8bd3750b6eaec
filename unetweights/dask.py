"""Weight maps of label volumes larger than memory, chunk by chunk with Dask (the ``dask`` extra).

Why chunks with a halo are exact, not an approximation: a weighting's row of
:data:`~unetweights.WEIGHTINGS` gives its reach T, beyond which the labels no longer change the map
at a voxel. For "unet", the border term at a voxel x is dropped where d1 + d2 > T =
:func:`~unetweights.border_cutoff` (w0, sigma, tol), so only objects within distance T of x
matter, and each of them only through its voxels within T of x. A chunk grown by a halo of
ceil(T / spacing) voxels along each axis holds every such voxel (the box holds the ball of radius
T), and instance ids are global, so the map computed on the grown chunk equals the map of the
whole volume on the chunk's own voxels. Carving touching objects (``separate=True``) looks one
voxel further, so the halo grows by one. The halo is derived from the options; a smaller one
cannot be asked for (:func:`required_halo`). A weighting of unbounded reach ("falk", whose
background weight decays with the distance to the nearest object, however far) is refused.

Class weights of ``"balanced"`` or ``"sqrt"`` depend on class counts over the whole volume; they
are counted in a first pass (when :func:`weight_map` is called) and every chunk then uses the
same explicit table.
"""

from __future__ import annotations

import inspect
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import numpy as np

from ._files import location, refuse_overlap
from .weightmaps import separate_touching, WeightMapRecipe
from .weightmaps.balance import BALANCING_MODES, balanced_table

HaloLike = Union[int, Sequence[int]]


def _dask_array():
    try:
        import dask.array as da
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("unetweights.dask needs dask: pip install 'unetweights[dask]'") from error
    return da


def required_halo(
    ndim: int, recipe: Optional[WeightMapRecipe] = None, *, shape: Optional[Sequence[int]] = None, **options
) -> Tuple[int, ...]:
    """The smallest halo, in voxels per axis, that keeps a chunked map exact.

    ceil(T / spacing[axis]) with T the weighting's reach (for "unet", ``border_cutoff(w0, sigma,
    tol)``), plus one with ``separate=True`` (carving looks at the neighbours). The weight map is
    given as a ``recipe`` or by its arguments (``weighting`` and its options, "unet" by default).
    With the volume's ``shape`` each entry is at most that axis's length: a halo that long already
    holds the whole axis, however far the map reaches (a huge ``sigma`` or a tiny spacing).
    Without it a reach too long for any array is capped at ``sys.maxsize``. ValueError for a
    weighting of unbounded reach, which chunks cannot give exactly.
    """
    recipe = WeightMapRecipe.from_arguments(recipe, owner="required_halo", **options)
    return _required_halo(recipe, ndim, shape)


def _required_halo(recipe: WeightMapRecipe, ndim: int, shape: Optional[Sequence[int]]) -> Tuple[int, ...]:
    if recipe.spec.reach is None:
        raise ValueError(
            f"weighting: {recipe.weighting!r} has no bounded reach (its row of WEIGHTINGS gives none), so chunks "
            "cannot give its map exactly; compute it in memory"
        )
    reach = float(recipe.spec.reach(recipe.options))
    spacing = np.broadcast_to(np.asarray(1.0 if recipe.spacing is None else recipe.spacing, np.float64), (ndim,))
    limits = [sys.maxsize] * ndim if shape is None else [int(n) for n in shape]
    if len(limits) != ndim:
        raise ValueError(f"shape: expected {ndim} axis lengths, got {list(limits)}")
    extra = int(bool(recipe.options.get("separate", False)))
    # Compared in float before the cast: reach / s may be far beyond int64, or infinite.
    return tuple(
        limit if reach / s + extra >= limit else int(math.ceil(reach / s)) + extra for s, limit in zip(spacing, limits)
    )


def _halo(recipe: WeightMapRecipe, shape: Sequence[int], halo: Optional[HaloLike]) -> Tuple[int, ...]:
    """The halo to use: :func:`required_halo`, or ``halo`` if it is at least that on every axis."""
    ndim = len(shape)
    needed = _required_halo(recipe, ndim, shape)
    if halo is None:
        return needed
    depth = tuple(int(h) for h in np.broadcast_to(np.asarray(halo), (ndim,)))
    if any(d < n for d, n in zip(depth, needed)):
        raise ValueError(
            f"halo: {list(depth)} voxels is less than the {list(needed)} these parameters need "
            f"(the map reaches {float(recipe.spec.reach(recipe.options)):.3g} in spacing units); a smaller halo "
            "would change the map"
        )
    return depth


def _check_labels(labels: Any):
    da = _dask_array()
    if not isinstance(labels, da.Array):
        raise TypeError(
            f"labels: expected a dask array, got {type(labels).__name__}; for an in-memory array use "
            "unetweights.unet_weight_map"
        )
    if labels.ndim not in (2, 3):
        raise ValueError(f"labels: expected a 2D or 3D array, got {labels.ndim} dims")
    if labels.dtype == bool:
        raise ValueError(
            "labels: a bool mask needs connected components over the whole volume, which chunks cannot give; "
            "label it first (dask_image.ndmeasure.label, say) and pass the instance ids"
        )
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels: expected integer instance ids, got dtype {labels.dtype}")
    if labels.size == 0:
        raise ValueError(f"labels: expected a non-empty array, got shape {list(labels.shape)}")
    return da


def _global_class_weights(da, labels, classes, separate: bool, mode: str, ignore_label: Optional[int]) -> Dict[int, float]:
    """The "balanced" (or "sqrt") table from class counts over the whole volume.

    Pixels of ``ignore_label`` count in no class, and are background while carving, as in memory.
    """
    kept = None if ignore_label is None else labels != ignore_label
    n_kept = labels.size if kept is None else int(kept.sum().compute())
    if classes is None:
        base = labels if kept is None else da.where(kept, labels, 0)
        carved = base.map_overlap(separate_touching, depth=1, boundary="none", dtype=labels.dtype) if separate else base
        foreground = int((carved > 0).sum().compute())
        counts = {0: n_kept - foreground, 1: foreground}
    else:
        # Ignored pixels become class -1 (classes are non-negative), which is then dropped.
        counted = classes if kept is None else da.where(kept, classes.astype(np.int64), -1)
        values, counts_array = da.compute(*da.unique(counted, return_counts=True))
        counts = {int(v): int(c) for v, c in zip(values, counts_array) if v >= 0}
    present = {k: n for k, n in counts.items() if n > 0}
    table = balanced_table(n_kept, np.array(list(present.values())), mode)
    return dict(zip(present, table.tolist()))


def weight_map(
    labels,
    recipe: Optional[WeightMapRecipe] = None,
    *,
    classes=None,
    halo: Optional[HaloLike] = None,
    **options,
):
    """The weight map of a dask array by a :class:`WeightMapRecipe`, as a lazy dask array.

    Parameters
    ----------
    labels : dask.array.Array, 2D or 3D, integer
        Instance ids, global across chunks (0 background). A bool mask is refused: its objects
        are connected components of the whole volume; label it first.
    recipe : WeightMapRecipe, optional
        The weighting and its options; or give them as keyword arguments (``weighting``, "unet"
        by default, and its options). The result equals ``recipe.weight_map`` of the whole
        array (for "unet", within ``tol`` everywhere). Only the weight map: a recipe that also
        asks for the distance map or the skeleton is refused, and so is a weighting of unbounded
        reach. A ``class_weights`` of "balanced" or "sqrt" counts the classes over the whole
        array first (this pass runs now, when the function is called).
    classes : dask.array.Array, optional
        Semantic class per voxel, the shape of ``labels`` (rechunked to match), for a weighting
        whose function takes ``classes`` (:func:`unet_weight_map`).
    halo : int or sequence of int, optional
        Overlap in voxels per axis. By default :func:`required_halo`; a value smaller than that
        on any axis raises ValueError, since it would change the map.

    Returns
    -------
    dask.array.Array of float32
        The labels' shape and chunks. Each chunk is computed from the chunk grown by the halo
        (``map_overlap`` with no padding at the array's own edges), so memory per task is a
        grown chunk and a few float64 arrays of its size. Chunks thinner than the halo are merged
        with a neighbour for the computation and split again afterwards.
    """
    recipe = WeightMapRecipe.from_arguments(recipe, owner="unetweights.dask.weight_map", **options)
    if recipe.outputs != ("weight",):
        raise ValueError(
            f"recipe: chunked maps are weight maps only; got one that also makes {list(recipe.outputs[1:])}"
        )
    da = _check_labels(labels)
    # The in-memory function checks the options against the rank (spacing's length) and names
    # the bad one; a tiny mask is enough.
    recipe.weight_map(np.zeros((2,) * labels.ndim, dtype=np.int32))
    depth = _halo(recipe, labels.shape, halo)
    function, chunk_options = recipe.spec.function, recipe.options
    if classes is not None:
        if "classes" not in inspect.signature(function).parameters:
            raise TypeError(f"classes: weighting {recipe.weighting!r} takes no classes")
        if not isinstance(classes, da.Array) or classes.shape != labels.shape:
            raise ValueError(f"classes: expected a dask array of the labels' shape {list(labels.shape)}")
        classes = classes.rechunk(labels.chunks)
    for option in recipe.spec.options:
        mode = chunk_options[option.name]
        if option.kind == "class_weights" and isinstance(mode, str) and mode in BALANCING_MODES:
            chunk_options[option.name] = _global_class_weights(
                da, labels, classes, chunk_options.get("separate", False), mode, chunk_options.get("ignore_label")
            )

    def block(label_block, *class_block):
        extra = {"classes": class_block[0]} if class_block else {}
        return function(label_block, **chunk_options, **extra)

    arrays = [labels] if classes is None else [labels, classes]
    weights = da.map_overlap(
        block, *arrays, depth=dict(enumerate(depth)), boundary="none", dtype=np.float32, meta=np.empty((0,) * labels.ndim, np.float32)
    )
    # map_overlap merges chunks thinner than the halo (a short last chunk, say); give the caller
    # back the labels' chunks, which zarr needs regular.
    return weights if weights.chunks == labels.chunks else weights.rechunk(labels.chunks)


def unet_weight_map(labels, *, classes=None, halo: Optional[HaloLike] = None, **options):
    """:func:`unetweights.unet_weight_map` of a dask array, as a lazy dask array: :func:`weight_map`
    with ``weighting="unet"`` and the options of the in-memory function (``w0``, ``sigma``,
    ``class_weights``, ``spacing``, ``border``, ``tol``, ``separate``, ``ignore_label``), as
    keywords. The result equals the in-memory map within ``tol`` everywhere."""
    if options.get("weighting", "unet") != "unet":
        raise ValueError(f"weighting: unet_weight_map makes the 'unet' weighting; got {options['weighting']!r}")
    return weight_map(labels, classes=classes, halo=halo, **options)


@dataclass
class ZarrReport:
    """What :func:`precompute_zarr` wrote."""

    source: str
    destination: str
    shape: Tuple[int, ...]
    chunks: Tuple[int, ...]
    halo: Tuple[int, ...]
    seconds: float

    @property
    def voxels_per_second(self) -> float:
        return float(np.prod(self.shape)) / self.seconds if self.seconds > 0 else float("inf")

    def summary(self) -> str:
        return "\n".join(
            [
                f"read       {self.source}: {list(self.shape)} in chunks of {list(self.chunks)}",
                f"wrote      {self.destination}: float32 weight map, same chunks, halo {list(self.halo)} voxels",
                f"time       {self.seconds:.1f} s, {self.voxels_per_second / 1e6:.2f} Mvoxel/s",
            ]
        )


def _check_local_destination(destination: str, path: PurePath, overwrite: bool) -> None:
    """Refuse a local destination that exists (without ``overwrite``) or is not a zarr array.

    zarr's ``mode="w"`` empties whatever folder is there, zarr or not; only a zarr array (what a
    previous run wrote) may be replaced, and only when asked.
    """
    import zarr

    if not os.path.lexists(path):
        return
    if not os.path.isdir(path):
        raise ValueError(f"destination: {destination} is a file, not a zarr array")
    if not overwrite:
        raise ValueError(f"destination: {destination} exists; pass overwrite=True (--overwrite) to replace it")
    try:
        zarr.open_array(str(path), mode="r")
    except Exception:  # zarr raises several types for a folder that is not an array
        raise ValueError(
            f"destination: {destination} exists and is not a zarr array; overwrite replaces only a zarr array, "
            "so remove it yourself or choose another destination"
        ) from None


def precompute_zarr(
    source: str,
    destination: str,
    scheduler: Optional[str] = None,
    progress: bool = True,
    overwrite: bool = False,
    *,
    recipe: Optional[WeightMapRecipe] = None,
    halo: Optional[HaloLike] = None,
    **options,
) -> ZarrReport:
    """Read a zarr label volume, write its weight map as a zarr array with the same chunks.

    Parameters
    ----------
    source, destination : str or os.PathLike
        Paths (or URLs) of zarr arrays. ``destination`` must not exist unless ``overwrite``, and
        even then a local one must be a zarr array (one this function wrote, say): any other
        folder is refused rather than emptied. A destination that is the source, lies inside it
        or contains it raises ValueError naming both, before anything is read or written.
    scheduler : str, optional
        Address of a ``dask.distributed`` scheduler (``tcp://host:8786``); by default the local
        threaded scheduler.
    progress : bool
        A tqdm bar over the chunks written (local scheduler) or distributed's progress bar.
    recipe, halo, **options
        As in :func:`weight_map`: a :class:`WeightMapRecipe`, or ``weighting`` ("unet" by
        default) and its options as keywords; checked before anything is read.
    """
    da = _dask_array()
    import zarr

    recipe = WeightMapRecipe.from_arguments(recipe, owner="precompute_zarr", **options)
    source, destination = os.fspath(source), os.fspath(destination)
    # Writing with mode="w" first clears the destination: one that is the source, lies inside it
    # or contains it would delete the labels before they are read.
    refuse_overlap([("source", source)], [destination], "destination", "precompute_zarr", "destroy")
    try:
        labels = da.from_zarr(source)
    except Exception as error:  # zarr raises several types for a missing or malformed store
        raise ValueError(f"source: cannot open {source} as a zarr array: {error}") from error
    where, path = location(destination)
    if where == "":
        _check_local_destination(destination, path, overwrite)
    elif not overwrite:
        try:
            zarr.open(destination, mode="r")
        except Exception:  # nothing there (or nothing zarr can read): free to write
            pass
        else:
            raise ValueError(f"destination: {destination} exists; pass overwrite=True (--overwrite) to replace it")
    # With "balanced" class weights this already reads the volume once, to count the classes.
    weights = weight_map(labels, recipe, halo=halo)
    halo = _halo(recipe, labels.shape, halo)
    store = da.to_zarr(weights, destination, compute=False, mode="w")
    start = time.perf_counter()
    if scheduler is not None:
        from distributed import Client, progress as distributed_progress

        with Client(scheduler) as client:
            future = client.compute(store)
            if progress:
                distributed_progress(future)
            future.result()
    else:
        with _TqdmCallback(enabled=progress, total=int(np.prod(weights.numblocks))):
            store.compute()
    seconds = time.perf_counter() - start
    return ZarrReport(source, destination, tuple(labels.shape), tuple(c[0] for c in labels.chunks), halo, seconds)


class _TqdmCallback:
    """A dask local-scheduler callback that advances a tqdm bar once per chunk stored."""

    def __init__(self, enabled: bool, total: int) -> None:
        self.enabled = enabled
        self.total = total

    def __enter__(self):
        from dask.callbacks import Callback
        from tqdm.auto import tqdm

        bar = tqdm(total=self.total, desc="weight map", unit="chunk", disable=not self.enabled)

        def posttask(key, result, dsk, state, worker_id):
            name = key[0] if isinstance(key, tuple) else key
            if isinstance(name, str) and name.startswith("store-map"):
                bar.update(1)

        self._bar = bar
        self._callback = Callback(posttask=posttask)
        self._callback.__enter__()
        return self

    def __exit__(self, *exc):
        self._callback.__exit__(*exc)
        self._bar.close()
        return False


__all__ = ["ZarrReport", "precompute_zarr", "required_halo", "unet_weight_map", "weight_map"]
