"""precompute: one weight map per mask file (and the target's signed distance map and tubed
skeleton when asked for), in parallel and resumable, kept in agreement with its manifest.
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import as_completed, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional

import numpy as np

from .._files import check_writable_folder, refuse_file_as_folder, refuse_overlap
from .._validation import thread_count
from ..weightmaps import WeightMapRecipe
from ._manifest import _apply_out_dir_plan, _MANIFEST_NAME, _MANIFEST_VERSION, _plan_out_dir
from ._masks import _read_mask, _UnreadableMask
from ._storage import (
    _as_path,
    _is_complete_npy,
    PathLike,
    _remove_temp_files,
    _TMP_PREFIX,
    _write_npy_atomic,
)


_OUTPUTS = {
    "weight": (".npy", np.float32, (2, 3)),
    "distance": (".distance.npy", np.float32, (3, 4)),
    "skeleton": (".skeleton.npy", np.int64, (2, 3)),
}


@dataclass
class PrecomputeReport:
    """What :func:`precompute` did.

    Attributes
    ----------
    written : int
        Masks whose maps (the weight map, and the distance map and skeleton when asked for)
        this run computed and wrote.
    skipped : int
        Masks whose outputs all already existed, whole (a resumed run).
    failed : list of (path, reason)
        Masks that could not be read or computed, with why.
    seconds : float
        Wall time of the whole call, pool start-up included.
    workers : int
        Processes used (1: in-process).
    out_dir : str
        The output folder.
    removed : int
        Map files of masks not given in this call that ``overwrite=True`` with new options deleted,
        because the old manifest owned them (see :func:`precompute`); a later run with those masks
        computes them again.
    """

    written: int = 0
    skipped: int = 0
    failed: list = field(default_factory=list)
    seconds: float = 0.0
    workers: int = 1
    out_dir: str = ""
    removed: int = 0

    @property
    def ok(self) -> bool:
        """True when no mask failed."""
        return not self.failed

    @property
    def total(self) -> int:
        return self.written + self.skipped + len(self.failed)

    @property
    def masks_per_second(self) -> float:
        """Written maps per second of wall time (0.0 when nothing was written)."""
        if self.written == 0 or self.seconds <= 0.0:
            return 0.0
        return self.written / self.seconds

    def summary(self) -> str:
        """A few lines for a terminal: counts, time, throughput, then one line per failure."""
        lines = [
            f"{self.total} masks -> {self.out_dir}: {self.written} written, {self.skipped} skipped "
            f"(already there), {len(self.failed)} failed",
            f"{self.seconds:.2f} s, {self.masks_per_second:.1f} masks/s with {self.workers} "
            f"worker{'s' if self.workers != 1 else ''}",
        ]
        if self.removed:
            lines.append(
                f"{self.removed} map{'s' if self.removed != 1 else ''} of other masks, made with the old options, "
                "removed: run those masks again to recompute them"
            )
        lines += [f"FAILED {path}: {reason}" for path, reason in self.failed]
        return "\n".join(lines)


def _compute_one(path: str, out_paths: dict, recipe: WeightMapRecipe, threads: int = 1) -> Optional[str]:
    """Read a mask, compute and write its maps ({output: path}); the reason it failed, or None.

    Runs in pool workers too.
    """
    try:
        # An ignore label is a value of the labels as the file holds them (see read_mask).
        mask = _read_mask(Path(path), integers=recipe.options.get("ignore_label") is not None)
        maps = recipe.maps(mask, threads=threads)
        for output, out_path in out_paths.items():
            _write_npy_atomic(Path(out_path), maps[output])
    except (_UnreadableMask, ValueError, TypeError) as exc:
        return str(exc)
    # Anything else (MemoryError, an OSError while writing) is still one file's failure, not the run's.
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def _pool_context():
    # Not "fork": the caller may hold threads (torch's, tqdm's monitor) and forking a threaded
    # process can deadlock the child. A fork server starts once per process, with this module
    # imported, and forks workers from that clean process: start-up is paid once, not per pool.
    import multiprocessing

    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload([__name__])
        return ctx
    return multiprocessing.get_context("spawn")


def _mask_path_list(mask_paths) -> list[Path]:
    if isinstance(mask_paths, (str, bytes, os.PathLike)):
        raise TypeError("mask_paths must be an iterable of paths, got a single path; wrap it in a list")
    try:
        items = list(mask_paths)
    except TypeError:
        raise TypeError(f"mask_paths must be an iterable of paths, got {type(mask_paths).__name__}") from None
    return [_as_path(p, f"mask_paths[{i}]") for i, p in enumerate(items)]


def _output_paths(paths: list[Path], out_dir: Path, outputs: list[str]) -> list[dict]:
    """For each mask, {output: path} of the ``outputs`` it gives; ValueError where two masks would
    write one file."""
    by_stem: dict[str, list[Path]] = {}
    for path in paths:
        by_stem.setdefault(path.stem, []).append(path)
    clashes = {stem: group for stem, group in by_stem.items() if len(group) > 1}
    if clashes:
        listed = "; ".join(f"{stem!r}: {', '.join(str(p) for p in group)}" for stem, group in clashes.items())
        raise ValueError(f"mask_paths must have distinct file stems (one output <stem>.npy each); clashes: {listed}")
    # A stem such as "a.distance" makes the weight map of one mask the distance map of another.
    writer: dict[str, int] = {}
    for i, path in enumerate(paths):
        for output in outputs:
            name = path.stem + _OUTPUTS[output][0]
            if name in writer:
                raise ValueError(
                    f"mask_paths[{writer[name]}] {str(paths[writer[name]])!r} and mask_paths[{i}] {str(path)!r} "
                    f"would both write {name!r} (maps are <stem>.npy, <stem>.distance.npy and <stem>.skeleton.npy); "
                    "rename one"
                )
            writer[name] = i
    return [{output: out_dir / f"{path.stem}{_OUTPUTS[output][0]}" for output in outputs} for path in paths]


def _given_names(paths: list[Path]) -> set[str]:
    """Every file name a map of these masks can have, asked for in this call or not."""
    return {path.stem + suffix for path in paths for suffix, _, _ in _OUTPUTS.values()}


def _check_workers(workers) -> int:
    if isinstance(workers, (bool, np.bool_)) or not isinstance(workers, (int, np.integer)):
        raise TypeError(f"workers must be an int >= 1, got {workers!r}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    return int(workers)


def precompute(
    mask_paths: Iterable[PathLike],
    out_dir: PathLike,
    workers: int = 1,
    progress: bool = True,
    overwrite: bool = False,
    *,
    signed_distance: bool = False,
    skeleton_radius: Optional[float] = None,
    recipe: Optional[WeightMapRecipe] = None,
    threads: Optional[int] = 1,
    **options: Any,
) -> PrecomputeReport:
    """Write the weight map of every mask file to ``<out_dir>/<stem>.npy``: parallel and resumable.

    With ``signed_distance`` and ``skeleton_radius``, also the signed distance map and the tubed
    skeleton of the mask's target, to ``<stem>.distance.npy`` and ``<stem>.skeleton.npy``.

    Parameters
    ----------
    mask_paths : iterable of str or os.PathLike
        Mask files, read with :func:`read_mask` (.tif/.tiff, .png, .npy); with an
        ``ignore_label``, with ``read_mask(path, integers=True)``, so that it is compared with
        the values the file holds: a mask stored as bool (a 1-bit PNG, say) is then read as its
        integers, one object per value like any integer mask, instead of being labelled into
        objects. Their stems (file names
        without the suffix) must be distinct, and so must every output name they give (a mask
        named ``a.distance.tif`` and a mask ``a`` with ``signed_distance``): a clash raises
        ValueError up front, naming both.
    out_dir : str or os.PathLike
        Output folder, created if missing. It also receives ``unetweights_manifest.json``, which
        records the options and the outputs written under them. It must not be where an input
        is: an output path (or the manifest) that is one of ``mask_paths`` (the same path, a
        symlink or a hard link to it) raises ValueError before anything is written, naming both.
    workers : int, default 1
        1 computes in this process; more use a ``ProcessPoolExecutor`` of that many processes
        (at most one per mask to compute). Each map runs on ``threads`` threads, so with the
        default of one, one worker per core.
    progress : bool, default True
        Show a tqdm progress bar (on stderr).
    overwrite : bool, default False
        Recompute every given mask, even where an output exists, and record the new options.
        With options other than the manifest's, every map the manifest owns is deleted first,
        those of masks not given in this call too (see Notes).
    signed_distance : bool, default False
        Also write ``<stem>.distance.npy``: float32 of shape ``(2, *mask.shape)``, channel c
        being ``signed_distance_map(target == c, spacing)`` for the classes 0 (background) and 1
        (foreground) of the target, as :class:`WeightMapTransform` adds it (see there).
    skeleton_radius : float, optional
        Also write ``<stem>.skeleton.npy``: int64 of the mask's shape, 1 on
        ``tubed_skeleton(target, skeleton_radius, spacing)`` and 0 elsewhere. None (the default)
        writes none.
    recipe : WeightMapRecipe, optional
        The weighting, its options and the extra maps as one object, instead of
        ``signed_distance``, ``skeleton_radius`` and ``**options``.
    threads : int or None, default 1
        Native threads for each map's distance transform (a weighting that takes ``threads``:
        "unet" and "falk"); 0 or None for every core. For a few large volumes, ``workers=1``
        with ``threads=0`` uses every core on each; the maps are the same whatever the count, so
        it is not recorded in the manifest.
    **options
        The arguments of :class:`WeightMapRecipe`: ``weighting`` and its options, by default
        those of :func:`unet_weight_map`: ``w0``, ``sigma``, ``class_weights``, ``spacing``,
        ``border``, ``tol``, ``separate``, ``ignore_label``; or ``weighting="falk"`` and those of
        :func:`falk_weight_map`. Checked before any work starts; the manifest records the
        recipe's canonical form (:meth:`WeightMapRecipe.canonical`).

        The target is the foreground the weight map goes with: the mask's objects, carved first
        with ``separate=True``, with ``ignore_label`` pixels as background.

    Returns
    -------
    PrecomputeReport
        Counts, failures, time; ``report.ok`` is False when any mask failed, and
        ``report.summary()`` is a short text for a terminal.

    Notes
    -----
    Edge-case policy:

    - **Resuming.** A mask whose outputs all exist and are whole (.npy files of the right dtype
      and rank whose size matches their header) is skipped without being read; one with an
      output that is not is recomputed, all its maps. Outputs are
      written to a temporary file in ``out_dir`` and renamed into place, so a killed process never
      leaves a partial output; temporary files left by a killed run are removed at the start. A
      run killed at any point (SIGKILL included) and run again gives the same files, byte for
      byte, as one uninterrupted run. Outputs are not fsynced: after a crash of the machine itself
      an output can be empty or short, and the header check catches that on the next run.
    - **Options: the folder's maps always agree with its manifest.** The manifest records the
      options (``signed_distance`` and ``skeleton_radius`` among them) and the names of the maps
      made with them, distance maps and skeletons included; each output is listed before it is
      written, and a resumed run skips only listed outputs. A run into a folder whose manifest
      records other options raises ValueError before writing anything, as does one where an
      output path already holds a file the manifest does not list (or there is no manifest).
      ``overwrite=True`` with the manifest's options deletes and recomputes the given masks'
      outputs, and keeps the other listed maps, which were made with the same options. With other
      options, it deletes the given masks' outputs *and every other map the old manifest lists*
      (the given masks' distance maps or skeletons that the new options no longer make, and the
      maps of the other masks, which ``report.removed`` counts), then writes a manifest that lists only this call's
      outputs: a partial overwrite never leaves maps of the old options under the new manifest,
      and running the other masks later recomputes theirs. Only files the manifest names are
      deleted, never a folder, never an input, never anything else in ``out_dir``. A manifest
      that cannot be read (or one written by an older version, which lists no outputs) owns
      nothing: an overwrite replaces the given outputs only, and later runs refuse, rather than
      skip, the old files they meet.
    - **Inputs are never touched.** An output path, the manifest or a file an overwrite would
      delete that is one of ``mask_paths`` (compared resolved, and by inode for hard links)
      raises ValueError before anything is created, deleted or written. ``out_dir`` that is a
      file, cannot be created or is not writable raises ValueError naming it.
    - **Failures.** A mask that cannot be read or computed (unsupported suffix, damaged file,
      float or multi-channel image, wrong rank, a ``spacing`` of the wrong length, ...) is recorded
      in ``report.failed`` with its path and reason; every other mask is still written. A worker
      process that dies (killed, out of memory) fails the masks it had not finished, with that
      reason; run again to resume them.
    - With ``workers > 1`` the worker processes start from a fork server (spawn where there is
      none), not by forking the caller, which may hold threads; as with any such process pool, a
      script that calls ``precompute`` must do so under ``if __name__ == "__main__":``.
    - Two ``precompute`` calls writing into the same ``out_dir`` at the same time are not supported.
    - An empty ``mask_paths`` writes only the manifest.

    Raises
    ------
    TypeError, ValueError
        For bad arguments or options, duplicate stems, an output that is an input, an ``out_dir``
        that is not a writable folder, or a manifest that does not match, all before any mask is
        read.
    """
    start = time.perf_counter()
    paths = _mask_path_list(mask_paths)
    out_dir = _as_path(out_dir, "out_dir")
    workers = _check_workers(workers)
    threads = thread_count(threads)
    if not isinstance(progress, (bool, np.bool_)):
        raise TypeError(f"progress must be a bool, got {progress!r}")
    if not isinstance(overwrite, (bool, np.bool_)):
        raise TypeError(f"overwrite must be a bool, got {overwrite!r}")
    recipe = WeightMapRecipe.from_arguments(
        recipe, owner="precompute", signed_distance=signed_distance, skeleton_radius=skeleton_radius, **options
    )
    outputs = _output_paths(paths, out_dir, list(recipe.outputs))
    every_output = [path for mask_outputs in outputs for path in mask_outputs.values()]
    refuse_file_as_folder(out_dir, "out_dir")
    # Every file this call can write or delete, checked against the inputs before any of them is
    # looked at further: the manifest check below would otherwise suggest overwrite=True to a user
    # whose masks are the outputs. A mask written over by its own map, or deleted by ``overwrite``,
    # is lost, and the run would only then report it unreadable.
    inputs = [(f"mask_paths[{i}]", path) for i, path in enumerate(paths)]
    leftovers = list(out_dir.glob(f"{_TMP_PREFIX}*")) if out_dir.is_dir() else []
    refuse_overlap(inputs, [*every_output, out_dir / _MANIFEST_NAME], "out_dir", "precompute")
    refuse_overlap(inputs, leftovers, "out_dir", "precompute", "delete")
    wanted = {"format": "unetweights.precompute", "version": _MANIFEST_VERSION, "options": recipe.canonical()}
    wanted = json.loads(json.dumps(wanted))
    plan = _plan_out_dir(out_dir, every_output, _given_names(paths), wanted, bool(overwrite))
    refuse_overlap(inputs, plan.remove, "out_dir", "precompute", "delete")
    check_writable_folder(out_dir, "out_dir")
    _remove_temp_files(out_dir)
    _apply_out_dir_plan(out_dir, plan, wanted)

    todo = [
        (str(path), {output: str(o) for output, o in mask_outputs.items()})
        for path, mask_outputs in zip(paths, outputs)
        if overwrite or not all(_is_complete_npy(o, *_OUTPUTS[output][1:]) for output, o in mask_outputs.items())
    ]
    report = PrecomputeReport(
        skipped=len(paths) - len(todo), out_dir=str(out_dir), removed=plan.removed_others
    )
    n_workers = min(workers, len(todo)) if todo else 1
    report.workers = n_workers

    from tqdm.auto import tqdm

    with tqdm(total=len(paths), initial=report.skipped, disable=not progress, unit="mask", desc="weight maps") as bar:

        def record(path: str, reason: Optional[str]) -> None:
            if reason is None:
                report.written += 1
            else:
                report.failed.append((path, reason))
            bar.update(1)

        if n_workers == 1:
            for path, out_paths in todo:
                record(path, _compute_one(path, out_paths, recipe, threads))
        else:
            pool = ProcessPoolExecutor(max_workers=n_workers, mp_context=_pool_context())
            try:
                futures = {
                    pool.submit(_compute_one, path, out_paths, recipe, threads): path for path, out_paths in todo
                }
                for future in as_completed(futures):
                    try:
                        reason = future.result()
                    # BrokenProcessPool: a worker died (killed, out of memory); its masks fail, the
                    # others already written stay, and a rerun resumes the rest.
                    except Exception as exc:
                        reason = f"worker process failed: {type(exc).__name__}: {exc}"
                    record(futures[future], reason)
            finally:
                # On Ctrl-C, drop the queued masks instead of computing them all before returning.
                pool.shutdown(wait=True, cancel_futures=True)

    # Failures in input order, so that reports of the same inputs read the same.
    order = {str(p): i for i, p in enumerate(paths)}
    report.failed.sort(key=lambda item: order[item[0]])
    report.seconds = time.perf_counter() - start
    return report
