"""WeightMapDataset: (image, mask) pairs in, (image, target, weight) out, with an on-disk cache.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import NamedTuple, Optional

import numpy as np

from ..weightmaps import separate_touching
from ._masks import _as_label_input
from ._options import _canonical_options, _library_version, _make_weight, _options_repr, _weight_map_options
from ._storage import (
    _as_path,
    PathLike,
    _remove_temp_files,
    _STALE_TMP_SECONDS,
    _writable_folder,
    _write_npy_atomic,
)


TARGETS = ("foreground", "separated", "labels")

# Bump when the cache key or the layout of an entry changes, so old entries are never read as new.
_CACHE_VERSION = 1


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
