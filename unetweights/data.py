"""Weight maps in the data pipeline: a transform, a caching dataset, mask reading and batch precompute.

Everything here is numpy in, numpy out, and never imports torch, so data-loader workers stay light:
a ``torch.utils.data.DataLoader`` turns the numpy arrays these objects return into tensors itself.

- :class:`WeightMapTransform` adds a weight map to a sample, a dict (MONAI style) or an
  ``(image, labels)`` pair.
- :class:`WeightMapDataset` wraps a dataset of ``(image, mask)`` pairs and returns
  ``(image, target, weight)``, optionally caching the maps on disk.
- :func:`read_mask` reads an instance mask from .tif/.tiff, .png or .npy.
- :func:`precompute` writes one weight map per mask file, in parallel and resumable.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import secrets
import time
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, NamedTuple, Optional, Union

import numpy as np

from ._files import written_in_place
from .weightmaps import falk_weight_map, separate_touching, unet_weight_map
from .weightmaps.balance import check_class_weights

__all__ = [
    "CacheInfo",
    "PrecomputeReport",
    "WeightMapDataset",
    "WeightMapTransform",
    "precompute",
    "read_mask",
]

PathLike = Union[str, "os.PathLike[str]"]

# The weightings a dataset can use, by the value of its ``weighting`` option, and the keyword
# arguments of each that configure a whole dataset. ``classes`` is left out: it is a per-pixel
# array that belongs to one sample, not a setting.
WEIGHTINGS = {"unet": unet_weight_map, "falk": falk_weight_map}
_WEIGHTING_OPTIONS = {
    "unet": ("w0", "sigma", "class_weights", "spacing", "border", "tol", "separate", "ignore_label"),
    "falk": ("lam", "sigma", "v_bal", "sigma_bal", "spacing", "separate", "ignore_label"),
}
_WEIGHTING_DEFAULTS = {
    weighting: {
        "weighting": weighting,
        **{name: inspect.signature(WEIGHTINGS[weighting]).parameters[name].default for name in names},
    }
    for weighting, names in _WEIGHTING_OPTIONS.items()
}
_DEFAULTS = _WEIGHTING_DEFAULTS["unet"]

TARGETS = ("foreground", "separated", "labels")
MASK_SUFFIXES = (".tif", ".tiff", ".png", ".npy")

# Bump when the cache key or the layout of an entry changes, so old entries are never read as new.
_CACHE_VERSION = 1
_MANIFEST_NAME = "unetweights_manifest.json"
# 2: the manifest lists the outputs it owns (version 1 did not).
_MANIFEST_VERSION = 2
# Temporary files start with a dot and this prefix, so they never look like an entry or an output,
# and a later run can recognise the leftovers of a killed one.
_TMP_PREFIX = ".unetweights-tmp-"
# A cache temp file this old cannot belong to a live writer (a write takes milliseconds).
_STALE_TMP_SECONDS = 3600.0


def _library_version() -> str:
    # Read from the installed metadata rather than ``unetweights.__version__``: importing the
    # package's __init__ from here would be circular if __init__ ever imports this module eagerly.
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("unetweights")
    except PackageNotFoundError:
        return "unknown"


# ----------------------------------------------------------------------------------------------------
# Options
# ----------------------------------------------------------------------------------------------------


def _dry_run_labels(ndim: int) -> np.ndarray:
    """Two objects and background, so that every option (a class_weights mapping included) is used."""
    plane = np.array([[1, 1, 0, 0, 2, 2], [1, 1, 0, 0, 2, 2]], dtype=np.int32)
    return plane if ndim == 2 else np.stack([plane, plane])


def _spacing_rank(spacing) -> int:
    if spacing is None or np.ndim(spacing) == 0:
        return 2
    n = len(np.atleast_1d(np.asarray(spacing, dtype=object)))
    if n not in (2, 3):
        raise ValueError(f"spacing must have one entry per spatial axis (2 or 3 entries), got {n}: {spacing!r}")
    return n


def _weight_map_options(options: Mapping, owner: str) -> dict:
    """Validate the weight-map options once, and return them with defaults filled in.

    ``weighting`` picks the function ("unet": :func:`unet_weight_map`, the default; "falk":
    :func:`falk_weight_map`), and the other names must be options of that function; an unknown
    name raises TypeError. Values are checked by the weight-map code itself, with a dry run on a
    tiny mask of the rank ``spacing`` implies (2-D when it does not say), so the errors and their
    messages are exactly those a real call would give, but at construction time instead of inside
    a data-loader worker.
    """
    weighting = options.get("weighting", "unet")
    if not isinstance(weighting, str) or weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {sorted(WEIGHTINGS)}, got {weighting!r}")
    names = _WEIGHTING_OPTIONS[weighting]
    for name in options:
        if name != "weighting" and name not in names:
            raise TypeError(
                f"{name} is not an option of {owner} with weighting={weighting!r}; expected "
                f"{WEIGHTINGS[weighting].__name__} options among {names}"
            )
    full = dict(_WEIGHTING_DEFAULTS[weighting])
    full.update(options)
    _make_weight(_dry_run_labels(_spacing_rank(full["spacing"])), full)
    for name in ("w0", "sigma", "tol", "lam", "v_bal", "sigma_bal"):
        if name in full:
            full[name] = float(full[name])
    if full["spacing"] is not None:
        spacing = np.asarray(full["spacing"], dtype=np.float64)
        full["spacing"] = float(spacing) if spacing.ndim == 0 else tuple(spacing.tolist())
    if isinstance(full.get("class_weights"), Mapping):
        full["class_weights"] = check_class_weights(full["class_weights"])
    full["separate"] = bool(full["separate"])
    if full["ignore_label"] is not None:
        full["ignore_label"] = int(full["ignore_label"])
    return full


def _make_weight(labels, options: Mapping) -> np.ndarray:
    """The weight map of ``labels`` by validated ``options``: their ``weighting`` picks the function."""
    kwargs = {name: value for name, value in options.items() if name != "weighting"}
    return WEIGHTINGS[options.get("weighting", "unet")](labels, **kwargs)


def _canonical_options(options: dict) -> dict:
    """JSON-safe form of validated options: equal options give equal JSON, in cache keys and manifests."""
    canonical = dict(options)
    if isinstance(canonical.get("class_weights"), Mapping):
        canonical["class_weights"] = sorted([k, v] for k, v in canonical["class_weights"].items())
    if isinstance(canonical["spacing"], tuple):
        canonical["spacing"] = list(canonical["spacing"])
    return canonical


def _options_repr(options: dict) -> str:
    defaults = _WEIGHTING_DEFAULTS[options.get("weighting", "unet")]
    changed = {k: v for k, v in options.items() if k not in defaults or v != defaults[k]}
    return ", ".join(f"{k}={v!r}" for k, v in changed.items())


# ----------------------------------------------------------------------------------------------------
# Files
# ----------------------------------------------------------------------------------------------------


def _write_npy_atomic(path: Path, array: np.ndarray) -> None:
    """Write ``array`` to ``path`` so that other processes see either no file or the whole file.

    The data goes to a uniquely named temporary file in the same folder (so the rename stays on one
    file system) and is renamed over ``path``: concurrent writers of the same entry each rename a
    complete file, and the last rename wins. There is no fsync: it cost 10 % of precompute's
    throughput with two workers (their fsyncs queue on the file system's journal), and what it
    guards against, a machine crash, can only leave an output short, which readers detect.
    """
    # Named with the prefix that a later run's clean-up recognises as left behind.
    with written_in_place(path, f"{_TMP_PREFIX}{path.stem}-{secrets.token_hex(8)}.npy") as tmp:
        with open(tmp, "wb") as f:
            np.save(f, array, allow_pickle=False)


def _is_complete_npy(path: Path) -> bool:
    """Whether ``path`` is a whole float32 .npy weight map: its size is what its header announces.

    Reads only the header, so a resumed run can check every existing output cheaply. After a machine
    crash, an output renamed into place before its data reached the disk is empty or short.
    """
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                return False
            expected = f.tell() + int(np.prod(shape)) * dtype.itemsize
            return dtype == np.float32 and len(shape) in (2, 3) and os.fstat(f.fileno()).st_size == expected
    except (OSError, ValueError, EOFError):
        return False


def _writable_folder(folder: Path, name: str) -> None:
    """Create ``folder`` if it is missing, and make sure files can be created in it.

    Raises ValueError naming the argument ``name`` and the path, instead of the FileExistsError or
    PermissionError that the first write deep inside would give. Writability is tried, not asked:
    ``os.access`` says yes to root whatever the mode bits, and knows nothing of some read-only mounts.
    """
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{name} {str(folder)!r} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"{name} {str(folder)!r} cannot be created: {exc.strerror or exc}") from None
    probe = folder / f"{_TMP_PREFIX}probe-{secrets.token_hex(8)}"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError as exc:
        raise ValueError(f"{name} {str(folder)!r} is not writable: {exc.strerror or exc}") from None
    os.unlink(probe)


def _remove_temp_files(folder: Path, older_than: Optional[float] = None) -> None:
    now = time.time()
    for tmp in folder.glob(f"{_TMP_PREFIX}*"):
        try:
            if older_than is not None and now - tmp.stat().st_mtime < older_than:
                continue
            tmp.unlink()
        except FileNotFoundError:
            pass


class _UnreadableMask(Exception):
    """Why a mask file cannot be used; :func:`read_mask` adds the path."""


def _read_tiff(path: Path) -> np.ndarray:
    import tifffile

    with tifffile.TiffFile(path) as tif:
        if not tif.series:
            raise _UnreadableMask("cannot be read: the TIFF file holds no image")
        series = tif.series[0]
        array = series.asarray()
        axes = series.axes
    if len(axes) == array.ndim:
        for axis, (name, size) in reversed(list(enumerate(zip(axes, array.shape)))):
            # 'S' is samples per pixel (RGB and the like), 'C' an ImageJ/OME channel axis.
            if name in "SC":
                if size > 1:
                    raise _UnreadableMask(
                        f"multi-channel image (axes {axes!r}, shape {array.shape}); expected one label channel"
                    )
                array = np.squeeze(array, axis=axis)
    return array


def _read_png(path: Path) -> np.ndarray:
    # Pillow directly (it is what scikit-image and imageio read PNGs with): both of those turn a
    # palette PNG into RGB, and for a label mask the palette indices are the labels.
    from PIL import Image

    with Image.open(path) as image:
        image.load()
        mode = image.mode
        if mode not in ("1", "L", "P") and not mode.startswith("I"):
            if mode == "F":
                raise _UnreadableMask("holds floating-point pixels (PNG mode 'F'); expected integer labels")
            raise _UnreadableMask(
                f"multi-channel image (PNG mode {mode!r}, {len(image.getbands())} bands); "
                "expected a single-channel label image"
            )
        return np.asarray(image)


def _read_mask(path: Path) -> np.ndarray:
    suffix = path.suffix.lower()
    if suffix not in MASK_SUFFIXES:
        raise _UnreadableMask(f"unsupported file type {path.suffix!r}; expected one of {', '.join(MASK_SUFFIXES)}")
    try:
        if suffix in (".tif", ".tiff"):
            array = _read_tiff(path)
        elif suffix == ".png":
            array = _read_png(path)
        else:
            with open(path, "rb") as f:
                array = np.load(f, allow_pickle=False)
                if not isinstance(array, np.ndarray):
                    raise _UnreadableMask("is not a .npy array (an .npz archive?)")
    except _UnreadableMask:
        raise
    # The readers (tifffile, Pillow, numpy) raise many unrelated types for a damaged file.
    except Exception as exc:
        raise _UnreadableMask(f"cannot be read: {type(exc).__name__}: {exc}") from exc
    if not (array.dtype == bool or np.issubdtype(array.dtype, np.integer)):
        raise _UnreadableMask(f"holds {array.dtype} values; expected an integer or bool label image")
    if array.ndim not in (2, 3):
        raise _UnreadableMask(f"has shape {array.shape}; expected a 2-D or 3-D label image")
    return array


def _as_path(path, name: str) -> Path:
    if isinstance(path, (str, os.PathLike)):
        return Path(path)
    raise TypeError(f"{name} must be a str or os.PathLike, got {type(path).__name__}")


def read_mask(path: PathLike) -> np.ndarray:
    """Read an instance (or binary) label mask from a .tif/.tiff, .png or .npy file.

    Parameters
    ----------
    path : str or os.PathLike
        A .tif or .tiff file (read with tifffile: the first image series, 2-D or a 3-D stack), a .png
        (read with Pillow; for a palette PNG the palette indices are returned, not colours), or a
        .npy file (read with ``allow_pickle=False``). The suffix decides, case-insensitively.

    Returns
    -------
    ndarray of bool or integers, 2-D or 3-D
        As stored: no relabelling and no dtype change. A channel axis of size 1 (TIFF 'S' or 'C') is
        dropped.

    Raises
    ------
    ValueError
        Naming the path and the reason, when the suffix is not supported, the file cannot be read
        (missing, truncated, not the format its suffix says), the image has more than one channel
        (RGB, RGBA, a multi-channel stack), the values are not integers or bools (float masks are
        refused rather than guessed), or it is not 2-D or 3-D.
    TypeError
        When ``path`` is not a str or path-like.
    """
    path = _as_path(path, "path")
    try:
        return _read_mask(path)
    except _UnreadableMask as exc:
        raise ValueError(f"path {str(path)!r}: {exc}") from None


# ----------------------------------------------------------------------------------------------------
# Transform
# ----------------------------------------------------------------------------------------------------


def _as_label_input(labels) -> np.ndarray:
    try:
        return np.asarray(labels)
    except (TypeError, ValueError, RuntimeError) as exc:
        # e.g. a CUDA tensor, which must be moved to the CPU first
        raise TypeError(
            f"labels must be an array-like that numpy can read, got {type(labels).__name__}: {exc}"
        ) from None


class WeightMapTransform:
    """Add a U-Net weight map (:func:`unet_weight_map`) to a sample.

    Parameters
    ----------
    label_key : hashable, default "label"
        Where a dict sample holds its labels.
    weight_key : hashable, default "weight"
        Where the weight map goes in a dict sample; must differ from ``label_key``.
    channel_axis : int, optional
        For channel-first (or channel-last) labels such as ``(1, H, W)``: this axis, of size 1, is
        removed for the computation and put back on the weight map, which then has the labels' shape.
    **options
        Keyword arguments of :func:`unet_weight_map`: ``w0``, ``sigma``, ``class_weights``,
        ``spacing``, ``border``, ``tol``, ``separate``, ``ignore_label``; or ``weighting="falk"``
        and those of :func:`falk_weight_map` (``lam``, ``sigma``, ``v_bal``, ``sigma_bal``,
        ``spacing``, ``separate``, ``ignore_label``). They are checked here, once: an unknown name
        raises TypeError, a bad value the ValueError or TypeError the weight-map code gives. A
        ``class_weights`` mapping must give weights for 0 (background) and 1 (foreground).

    Notes
    -----
    Calling the transform on

    - a mapping returns a new ``dict`` with ``weight_key`` added (the input mapping is not modified;
      the other values are the same objects, not copies);
    - an ``(image, labels)`` tuple or list returns the tuple ``(image, labels, weight)``.

    The labels may be a numpy array or anything ``np.asarray`` reads, a CPU torch tensor included
    (a CUDA tensor raises TypeError). The weight map is always a float32 numpy array of the labels'
    shape; a torch ``DataLoader`` collates it into a tensor. The labels are never modified.
    Instances hold plain data and pickle, so they can go to data-loader worker processes.
    """

    def __init__(self, label_key="label", weight_key="weight", channel_axis: Optional[int] = None, **options):
        for name, key in (("label_key", label_key), ("weight_key", weight_key)):
            try:
                hash(key)
            except TypeError:
                raise TypeError(f"{name} must be hashable (a dict key), got {type(key).__name__}") from None
        if label_key == weight_key:
            raise ValueError(f"weight_key must differ from label_key, got {weight_key!r} for both")
        if channel_axis is not None and (
            isinstance(channel_axis, (bool, np.bool_)) or not isinstance(channel_axis, (int, np.integer))
        ):
            raise TypeError(f"channel_axis must be an int or None, got {channel_axis!r}")
        self.label_key = label_key
        self.weight_key = weight_key
        self.channel_axis = None if channel_axis is None else int(channel_axis)
        self.options = _weight_map_options(options, "WeightMapTransform")

    def __repr__(self) -> str:
        extra = _options_repr(self.options)
        return (
            f"WeightMapTransform(label_key={self.label_key!r}, weight_key={self.weight_key!r}, "
            f"channel_axis={self.channel_axis!r}{', ' + extra if extra else ''})"
        )

    def weight_map(self, labels) -> np.ndarray:
        """The float32 weight map of ``labels``, of the same shape (``channel_axis`` handled)."""
        labels = _as_label_input(labels)
        if self.channel_axis is None:
            return _make_weight(labels, self.options)
        axis = self.channel_axis
        if not -labels.ndim <= axis < labels.ndim:
            raise ValueError(f"channel_axis {axis} is out of range for labels of shape {labels.shape}")
        if labels.shape[axis] != 1:
            raise ValueError(
                f"channel_axis {axis} of labels must have size 1 (one label channel), got shape {labels.shape}"
            )
        weight = _make_weight(np.squeeze(labels, axis=axis), self.options)
        return np.expand_dims(weight, axis=axis)

    def __call__(self, data):
        if isinstance(data, Mapping):
            if self.label_key not in data:
                raise ValueError(f"data must hold the key {self.label_key!r} (label_key), got keys {list(data)}")
            out = dict(data)
            out[self.weight_key] = self.weight_map(data[self.label_key])
            return out
        if isinstance(data, (tuple, list)):
            if len(data) != 2:
                raise ValueError(
                    f"data must be an (image, labels) pair, got a {type(data).__name__} of {len(data)} items"
                )
            image, labels = data
            return image, labels, self.weight_map(labels)
        raise TypeError(f"data must be a mapping or an (image, labels) tuple, got {type(data).__name__}")


# ----------------------------------------------------------------------------------------------------
# Dataset
# ----------------------------------------------------------------------------------------------------


class CacheInfo(NamedTuple):
    """Counts of one process's :class:`WeightMapDataset` lookups.

    ``misses`` counts every computed map (always, without a cache); ``replaced`` counts the misses
    that found a corrupt or wrong-shaped entry and overwrote it.
    """

    hits: int
    misses: int
    replaced: int


class WeightMapDataset:
    """A dataset of ``(image, target, weight)`` built on one of ``(image, mask)`` pairs.

    Parameters
    ----------
    base : indexable dataset
        Anything with ``len(base)`` and ``base[i]`` returning ``(image, mask)``, where ``mask`` is an
        instance-label array (0 background, one positive id per object) or a bool mask, as numpy
        or anything ``np.asarray`` reads. The image must have the mask's shape, or that shape with
        one channel axis first or last (or None, for no image); ``dataset[i]`` raises ValueError
        naming both shapes otherwise.
    cache_dir : str or os.PathLike, optional
        Keep the weight maps here as ``.npy`` files (created if missing). A path that is a file,
        cannot be created or is not writable raises ValueError here, naming it. See Notes.
    target : {"foreground", "separated", "labels"}
        - ``"foreground"``: ``mask > 0``; the weight is ``unet_weight_map(mask, **options)``.
        - ``"separated"``: ``separate_touching(mask) > 0``, and the weight is computed with
          ``separate=True``, so the border term reaches the carved gaps the target has.
        - ``"labels"``: the mask itself (a bool mask gives 0/1); the weight as for "foreground".
    **options
        Keyword arguments of :func:`unet_weight_map` (``w0``, ``sigma``, ``class_weights``,
        ``spacing``, ``border``, ``tol``, ``ignore_label``), or ``weighting="falk"`` and those of
        :func:`falk_weight_map`, checked here once. ``separate`` follows from the target;
        it may be given only with the value the target implies (True for "separated", False for
        the others), and ValueError says so otherwise.

    Notes
    -----
    ``dataset[i]`` returns ``(image, target, weight)``: the image as ``base`` gave it, the target an
    int64 array of the mask's shape (what ``cross_entropy`` expects), and the weight a float32
    array of the mask's shape. A torch ``DataLoader`` collates them into tensors; the object pickles
    and keeps no file open, so ``num_workers > 0`` works (``base`` must pickle too).

    **The cache.** An entry is named by a SHA-256 of the mask's bytes, dtype and shape, every option,
    the target mode, the library version and a cache format version, so a changed mask or setting
    never serves an old map. Entries are written to a temporary file in ``cache_dir`` and renamed
    into place, so concurrent workers (or several training runs) filling the same entry each leave
    a complete file. Entries are read with ``np.load(allow_pickle=False)``; one that cannot be read,
    or holds something other than a float32 array of the mask's shape, is recomputed and replaced,
    never returned. (Damage that keeps a valid header, dtype and shape, such as flipped bits in
    the data, is not detected.) An entry path that is a folder (put there by something else) is
    left alone, and that map is computed on every call. Nothing is ever evicted: delete the folder
    to clear it. Temporary files more than an hour old, left by killed writers, are removed when a
    dataset is created.
    :meth:`cache_info` counts hits and misses in the calling process only (each data-loader worker
    keeps its own).

    With ``target="separated"``, ``separate_touching`` still runs on every call (on a cache hit
    too) to produce the target.
    """

    def __init__(self, base, cache_dir: Optional[PathLike] = None, target: str = "foreground", **options):
        if not (hasattr(base, "__len__") and hasattr(base, "__getitem__")):
            raise TypeError(f"base must be an indexable dataset (len() and [i]), got {type(base).__name__}")
        if not isinstance(target, str) or target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
        self.base = base
        self.target = target
        self.options = _weight_map_options(options, "WeightMapDataset")
        if "separate" in options and self.options["separate"] != (target == "separated"):
            raise ValueError(
                f"separate={options['separate']!r} contradicts target={target!r}: the target decides it "
                "(target='separated' computes the map with separate=True, the other targets without)"
            )
        # The map is computed on labels the target mode already carved (see _weight).
        del self.options["separate"]
        self.cache_dir: Optional[Path] = None
        if cache_dir is not None:
            self.cache_dir = _as_path(cache_dir, "cache_dir")
            _writable_folder(self.cache_dir, "cache_dir")
            _remove_temp_files(self.cache_dir, older_than=_STALE_TMP_SECONDS)
        key_header = {
            "cache_version": _CACHE_VERSION,
            "library": _library_version(),
            "options": _canonical_options(self.options),
            "target": target,
        }
        self._key_header = json.dumps(key_header, sort_keys=True).encode()
        self._hits = 0
        self._misses = 0
        self._replaced = 0

    def __repr__(self) -> str:
        extra = _options_repr(self.options)
        return (
            f"WeightMapDataset({type(self.base).__name__} of {len(self)}, target={self.target!r}, "
            f"cache_dir={None if self.cache_dir is None else str(self.cache_dir)!r}{', ' + extra if extra else ''})"
        )

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index):
        item = self.base[index]
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise TypeError(f"base[{index!r}] must be an (image, mask) pair, got {type(item).__name__}")
        image, mask = item
        mask = _as_label_input(mask)
        if image is not None:
            _check_image_shape(image, mask.shape, index)
        ignore = self.options["ignore_label"]
        ignored = None if ignore is None else mask == ignore
        labels = mask
        if self.target == "separated":
            # Carved as unet_weight_map(mask, separate=True, ignore_label=...) carves: ignored pixels
            # are background while carving, and marked again afterwards so the map gives them weight 0.
            labels = separate_touching(mask if ignored is None else np.where(ignored, 0, mask))
            if ignored is not None:
                labels = np.where(ignored, mask, labels)
        weight = self._weight(labels, key_source=mask)
        if self.target == "labels":
            target = mask.astype(np.int64)
        else:
            # Ignored pixels weigh 0; their target is background, a class every loss accepts.
            target = ((labels > 0) if ignored is None else (labels > 0) & ~ignored).astype(np.int64)
        return image, target, weight

    def cache_info(self) -> CacheInfo:
        """Hits, misses and replaced entries counted by this process since the dataset was built."""
        return CacheInfo(self._hits, self._misses, self._replaced)

    def cache_path(self, mask) -> Optional[Path]:
        """Where the weight map of ``mask`` (as ``base`` returns it) is cached; None without a cache."""
        if self.cache_dir is None:
            return None
        return self._entry_path(_as_label_input(mask))

    def _entry_path(self, mask: np.ndarray) -> Path:
        digest = hashlib.sha256(self._key_header)
        digest.update(f"|{mask.dtype.str}|{mask.shape}|".encode())
        digest.update(np.ascontiguousarray(mask))
        return self.cache_dir / f"{digest.hexdigest()}.npy"

    def _weight(self, labels: np.ndarray, key_source: np.ndarray) -> np.ndarray:
        # The key comes from the mask as base gave it (the target mode is in the key), so that
        # cache_path(mask) finds the entry; the map is computed on ``labels``, already carved for
        # "separated", which gives exactly unet_weight_map(mask, separate=True) without carving twice.
        if self.cache_dir is None:
            self._misses += 1
            return _make_weight(labels, self.options)
        path = self._entry_path(key_source)
        if path.is_dir():
            # Something else holds the entry's name. It is not ours to delete, and the map is only
            # a cache entry: compute it each time instead.
            self._misses += 1
            return _make_weight(labels, self.options)
        cached, damaged = _load_entry(path, labels.shape)
        if cached is not None:
            self._hits += 1
            return cached
        weight = _make_weight(labels, self.options)
        _write_npy_atomic(path, weight)
        self._misses += 1
        self._replaced += damaged
        return weight


def _check_image_shape(image, mask_shape: tuple, index) -> None:
    """ValueError unless the image has the mask's spatial shape, with at most one channel axis first or last.

    A mismatch would otherwise surface far away: as a batch that does not collate, or as a loss
    that silently broadcasts a map over pixels it does not belong to.
    """
    shape = tuple(image.shape) if hasattr(image, "shape") else np.shape(image)
    extra = len(shape) - len(mask_shape)
    if shape == mask_shape or (extra == 1 and mask_shape in (shape[1:], shape[:-1])):
        return
    raise ValueError(
        f"base[{index!r}]: image shape {shape} does not match mask shape {mask_shape}; expected the mask's "
        "spatial shape, with at most one channel axis first or last"
    )


def _load_entry(path: Path, shape: tuple) -> tuple[Optional[np.ndarray], bool]:
    """(the cached map or None, whether an entry existed but was unusable)."""
    try:
        with open(path, "rb") as f:
            entry = np.load(f, allow_pickle=False)
            if not isinstance(entry, np.ndarray):
                return None, True
    except FileNotFoundError:
        return None, False
    # np.load raises ValueError, EOFError or OSError (and, for a damaged .npz-looking header, zip
    # errors) for a file that is not a complete .npy; all mean the same here: recompute it.
    except Exception:
        return None, True
    if entry.dtype != np.float32 or entry.shape != shape:
        return None, True
    return entry, False


# ----------------------------------------------------------------------------------------------------
# Precompute
# ----------------------------------------------------------------------------------------------------


@dataclass
class PrecomputeReport:
    """What :func:`precompute` did.

    Attributes
    ----------
    written : int
        Weight maps computed and written by this run.
    skipped : int
        Masks whose output already existed, whole (a resumed run).
    failed : list of (path, reason)
        Masks that could not be read or computed, with why.
    seconds : float
        Wall time of the whole call, pool start-up included.
    workers : int
        Processes used (1: in-process).
    out_dir : str
        The output folder.
    removed : int
        Maps of masks not given in this call that ``overwrite=True`` with new options deleted,
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


def _compute_one(path: str, out_path: str, options: dict) -> Optional[str]:
    """Read, compute, write one map; the reason it failed, or None. Runs in pool workers too."""
    try:
        mask = _read_mask(Path(path))
        weight = _make_weight(mask, options)
        _write_npy_atomic(Path(out_path), weight)
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


def _output_paths(paths: list[Path], out_dir: Path) -> list[Path]:
    by_stem: dict[str, list[Path]] = {}
    for path in paths:
        by_stem.setdefault(path.stem, []).append(path)
    clashes = {stem: group for stem, group in by_stem.items() if len(group) > 1}
    if clashes:
        listed = "; ".join(f"{stem!r}: {', '.join(str(p) for p in group)}" for stem, group in clashes.items())
        raise ValueError(f"mask_paths must have distinct file stems (one output <stem>.npy each); clashes: {listed}")
    return [out_dir / f"{path.stem}.npy" for path in paths]


def _check_workers(workers) -> int:
    if isinstance(workers, (bool, np.bool_)) or not isinstance(workers, (int, np.integer)):
        raise TypeError(f"workers must be an int >= 1, got {workers!r}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    return int(workers)


def _refuse_inputs(paths: list[Path], targets: Iterable[tuple[Path, str]], out_dir: Path) -> None:
    """ValueError when a file this call would write or delete is one of its inputs.

    ``targets`` are (path, "write" or "delete"). Paths are compared resolved (symlinks followed)
    and, for files that exist, by device and inode (hard links). Called before any work: a mask
    written over by its own map, or deleted by ``overwrite``, is lost, and the run would only then
    report it unreadable.
    """
    by_path: dict[str, int] = {}
    by_inode: dict[tuple[int, int], int] = {}
    for i, path in enumerate(paths):
        by_path.setdefault(os.path.realpath(path), i)
        try:
            stat = os.stat(path)
        except OSError:
            continue
        by_inode.setdefault((stat.st_dev, stat.st_ino), i)
    for target, verb in targets:
        i = by_path.get(os.path.realpath(target))
        if i is None and by_inode:
            try:
                stat = os.stat(target)
            except OSError:
                continue
            i = by_inode.get((stat.st_dev, stat.st_ino))
        if i is not None:
            raise ValueError(
                f"out_dir {str(out_dir)!r}: precompute would {verb} {str(target)!r}, which is the input "
                f"mask_paths[{i}] {str(paths[i])!r}; it never writes over or deletes an input, so choose another out_dir"
            )


def _is_output_name(name) -> bool:
    """Whether a manifest entry can name an output: a visible ``.npy`` file directly in ``out_dir``."""
    return (
        isinstance(name, str)
        and name.endswith(".npy")
        and not name.startswith(".")
        and os.path.basename(name) == name
        and "\\" not in name
    )


def _read_manifest(manifest: Path) -> dict:
    """The manifest's content; ValueError saying why it is not one this library can trust."""
    try:
        found = json.loads(manifest.read_text())
    # UnicodeDecodeError and json's errors are ValueErrors.
    except (OSError, ValueError) as exc:
        raise ValueError(str(exc)) from None
    if not isinstance(found, dict) or not isinstance(found.get("options"), dict):
        raise ValueError("it is not a precompute manifest")
    if found.get("version") != _MANIFEST_VERSION:
        raise ValueError(
            f"it is format version {found.get('version')!r}; this library reads version {_MANIFEST_VERSION}, "
            "which lists the maps it owns"
        )
    outputs = found.get("outputs")
    if not isinstance(outputs, list) or not all(_is_output_name(name) for name in outputs):
        raise ValueError("its list of outputs is missing or damaged")
    # An option added after the manifest was written (ignore_label, weighting) was then at its default.
    defaults = _WEIGHTING_DEFAULTS.get(found["options"].get("weighting", "unet"), _DEFAULTS)
    for name, default in _canonical_options(dict(defaults)).items():
        found["options"].setdefault(name, default)
    return found


@dataclass
class _OutDirPlan:
    """What precompute does to ``out_dir`` before computing, decided before anything is touched."""

    remove: list[Path]  # files to delete before the manifest is written: outputs to redo, maps of old options
    owned: list[str]  # output names the manifest lists after this call, sorted
    write_manifest: bool
    removed_others: int  # of ``remove``, maps of masks not given in this call


def _plan_out_dir(out_dir: Path, outputs: list[Path], wanted: dict, overwrite: bool) -> _OutDirPlan:
    """Check the folder against the manifest and the options; raise ValueError where they do not agree.

    The manifest owns the maps it lists: precompute lists every output before writing it, and
    takes only listed ones for finished. See the precompute docstring for the rule.
    """
    manifest = out_dir / _MANIFEST_NAME
    if manifest.is_dir():
        raise ValueError(f"out_dir {str(out_dir)!r}: {manifest} is a folder, where precompute keeps its manifest")
    found, unreadable = None, None
    if manifest.exists():
        try:
            found = _read_manifest(manifest)
        except ValueError as exc:
            unreadable = str(exc)
    names = [path.name for path in outputs]
    existing = [path for path in outputs if os.path.lexists(path)]
    folders = [path for path in existing if path.is_dir()]
    if folders:
        raise ValueError(
            f"out_dir {str(out_dir)!r}: the output path {folders[0]} is a folder; precompute writes a map "
            "there and does not delete folders"
        )
    same_options = found is not None and found["options"] == wanted["options"]
    if not overwrite:
        if unreadable is not None:
            raise ValueError(f"out_dir manifest {manifest} cannot be read ({unreadable}); pass overwrite=True")
        if found is not None and not same_options:
            found_options = found["options"]
            differ = sorted(
                set(found_options) ^ set(wanted["options"])
                | {k for k in wanted["options"] if k in found_options and found_options[k] != wanted["options"][k]}
            )
            changes = ", ".join(
                f"{k}: {found_options.get(k, '<missing>')!r} -> {wanted['options'].get(k, '<missing>')!r}"
                for k in differ
            )
            raise ValueError(
                f"out_dir {out_dir} holds weight maps made with other options ({changes or 'other format'}); "
                "use another out_dir, the same options, or overwrite=True to recompute every map"
            )
        owned = set(found["outputs"]) if found is not None else set()
        strangers = [path for path in existing if path.name not in owned]
        if strangers and found is None:
            raise ValueError(
                f"out_dir {out_dir} already holds {len(strangers)} of the outputs (e.g. {strangers[0].name}) but no "
                f"{_MANIFEST_NAME}, so the options they were made with are unknown; pass overwrite=True"
            )
        if strangers:
            raise ValueError(
                f"out_dir {out_dir} holds {len(strangers)} of the outputs (e.g. {strangers[0].name}) that its "
                f"{_MANIFEST_NAME} does not list, so the options they were made with are unknown; pass overwrite=True"
            )
        new_owned = owned | set(names)
        return _OutDirPlan([], sorted(new_owned), found is None or new_owned != owned, 0)
    if same_options:
        return _OutDirPlan(existing, sorted(set(found["outputs"]) | set(names)), True, 0)
    # New options: every map the old manifest owns goes, not only those of the given masks, so
    # that no map of the old options stays under the new manifest. Only listed names are touched,
    # and only files: precompute never wrote anything else.
    old = set(found["outputs"]) if found is not None else set()
    others = [out_dir / name for name in sorted(old - set(names)) if (out_dir / name).is_file()]
    return _OutDirPlan(existing + others, sorted(names), True, len(others))


def _apply_out_dir_plan(out_dir: Path, plan: _OutDirPlan, wanted: dict) -> None:
    # Maps go before the new manifest: a run killed in between must not leave old maps that a
    # resume under the new options would take for its own.
    for path in plan.remove:
        try:
            path.unlink()
        except FileNotFoundError:
            pass
    if not plan.write_manifest:
        return
    payload = dict(wanted, library=_library_version(), outputs=plan.owned)
    text = json.dumps(payload, indent=2, sort_keys=True) + "\n"
    with written_in_place(out_dir / _MANIFEST_NAME, f"{_TMP_PREFIX}{secrets.token_hex(8)}.json") as tmp:
        Path(tmp).write_text(text)


def precompute(
    mask_paths: Iterable[PathLike],
    out_dir: PathLike,
    workers: int = 1,
    progress: bool = True,
    overwrite: bool = False,
    **options: Any,
) -> PrecomputeReport:
    """Write the weight map of every mask file to ``<out_dir>/<stem>.npy``: parallel and resumable.

    Parameters
    ----------
    mask_paths : iterable of str or os.PathLike
        Mask files, read with :func:`read_mask` (.tif/.tiff, .png, .npy). Their stems (file names
        without the suffix) must be distinct: two inputs with one stem raise ValueError up front,
        naming both.
    out_dir : str or os.PathLike
        Output folder, created if missing. It also receives ``unetweights_manifest.json``, which
        records the options and the outputs written under them. It must not be where an input
        is: an output path (or the manifest) that is one of ``mask_paths`` (the same path, a
        symlink or a hard link to it) raises ValueError before anything is written, naming both.
    workers : int, default 1
        1 computes in this process; more use a ``ProcessPoolExecutor`` of that many processes
        (at most one per mask to compute). Each map is single-threaded, so one worker per core.
    progress : bool, default True
        Show a tqdm progress bar (on stderr).
    overwrite : bool, default False
        Recompute every given mask, even where an output exists, and record the new options.
        With options other than the manifest's, every map the manifest owns is deleted first,
        those of masks not given in this call too (see Notes).
    **options
        Keyword arguments of :func:`unet_weight_map`: ``w0``, ``sigma``, ``class_weights``,
        ``spacing``, ``border``, ``tol``, ``separate``, ``ignore_label``; or ``weighting="falk"``
        and those of :func:`falk_weight_map`. Checked before any work starts.

    Returns
    -------
    PrecomputeReport
        Counts, failures, time; ``report.ok`` is False when any mask failed, and
        ``report.summary()`` is a short text for a terminal.

    Notes
    -----
    Edge-case policy:

    - **Resuming.** An output that exists and is whole (a float32 .npy whose size matches its
      header) is skipped without reading its mask; one that is not is recomputed. Outputs are
      written to a temporary file in ``out_dir`` and renamed into place, so a killed process never
      leaves a partial output; temporary files left by a killed run are removed at the start. A
      run killed at any point (SIGKILL included) and run again gives the same files, byte for
      byte, as one uninterrupted run. Outputs are not fsynced: after a crash of the machine itself
      an output can be empty or short, and the header check catches that on the next run.
    - **Options: the folder's maps always agree with its manifest.** The manifest records the
      options and the names of the maps made with them; each output is listed before it is
      written, and a resumed run skips only listed outputs. A run into a folder whose manifest
      records other options raises ValueError before writing anything, as does one where an
      output path already holds a file the manifest does not list (or there is no manifest).
      ``overwrite=True`` with the manifest's options deletes and recomputes the given masks'
      outputs, and keeps the other listed maps, which were made with the same options. With other
      options, it deletes the given masks' outputs *and every other map the old manifest lists*
      (``report.removed`` counts those), then writes a manifest that lists only this call's
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
    if not isinstance(progress, (bool, np.bool_)):
        raise TypeError(f"progress must be a bool, got {progress!r}")
    if not isinstance(overwrite, (bool, np.bool_)):
        raise TypeError(f"overwrite must be a bool, got {overwrite!r}")
    options = _weight_map_options(options, "precompute")
    outputs = _output_paths(paths, out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"out_dir {str(out_dir)!r} is a file, not a folder")
    # Every file this call can write or delete, checked against the inputs before any of them is
    # looked at further: the manifest check below would otherwise suggest overwrite=True to a user
    # whose masks are the outputs.
    leftovers = list(out_dir.glob(f"{_TMP_PREFIX}*")) if out_dir.is_dir() else []
    writes = [*outputs, out_dir / _MANIFEST_NAME]
    _refuse_inputs(paths, [(o, "write") for o in writes] + [(t, "delete") for t in leftovers], out_dir)
    wanted = {"format": "unetweights.precompute", "version": _MANIFEST_VERSION, "options": _canonical_options(options)}
    wanted = json.loads(json.dumps(wanted))
    plan = _plan_out_dir(out_dir, outputs, wanted, bool(overwrite))
    _refuse_inputs(paths, [(o, "delete") for o in plan.remove], out_dir)
    _writable_folder(out_dir, "out_dir")
    _remove_temp_files(out_dir)
    _apply_out_dir_plan(out_dir, plan, wanted)

    todo = [(str(p), str(o)) for p, o in zip(paths, outputs) if overwrite or not _is_complete_npy(o)]
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
            for path, out_path in todo:
                record(path, _compute_one(path, out_path, options))
        else:
            pool = ProcessPoolExecutor(max_workers=n_workers, mp_context=_pool_context())
            try:
                futures = {pool.submit(_compute_one, path, out_path, options): path for path, out_path in todo}
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
