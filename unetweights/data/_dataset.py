"""WeightMapDataset: (image, mask) pairs in, (image, target, weight) out, with an on-disk cache;
optionally the target's signed distance map and tubed skeleton beside the weight map, cached alike.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import NamedTuple, Optional

import numpy as np

from .._files import check_writable_folder
from ..weightmaps import check_ignore_label, prepare_labels, WeightMapRecipe
from ..weightmaps.recipe import FOREGROUND_CLASSES
from .._validation import integer_in_range
from ._masks import _as_label_input
from ._storage import (
    _as_path,
    _library_version,
    PathLike,
    _remove_temp_files,
    _STALE_TMP_SECONDS,
    _write_npy_atomic,
)


TARGETS = ("foreground", "separated", "labels")

# The maps an item can hold beside its target, in the order it holds them.
_OUTPUTS = ("weight", "distance", "skeleton")

# Bump when the cache key or the layout of an entry changes, so old entries are never read as new.
_CACHE_VERSION = 1


class CacheInfo(NamedTuple):
    """Counts of one process's :class:`WeightMapDataset` lookups.

    Every map counts (the weight map, and the distance map and the skeleton when the dataset makes
    them). ``misses`` counts every computed map (always, without a cache); ``replaced`` counts the
    misses that found a corrupt or wrong-shaped entry and overwrote it.
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
    signed_distance : bool, default False
        Also return the signed distance map of the target, for the boundary and Hausdorff-DT
        losses: float32 of shape ``(C, *mask.shape)``, channel c being
        ``signed_distance_map(target == c, spacing)`` (see Notes).
    num_classes : int, optional
        The number of classes C of the target. With ``target="labels"`` every value of the mask
        other than ``ignore_label`` must be below it, checked on every item, and it is required with
        ``signed_distance=True``, so that every item has the same channels. The other targets
        have C = 2 (background, foreground): None or 2.
    skeleton_radius : float, optional
        Also return the tubed skeleton of the target (:func:`tubed_skeleton` with this radius,
        >= 0, in ``spacing`` units), for the skeleton-recall loss. None (the default) returns none.
    recipe : WeightMapRecipe, optional
        The weighting, its options and the extra maps as one object, instead of
        ``signed_distance``, ``skeleton_radius`` and ``**options``.
    **options
        The arguments of :class:`WeightMapRecipe`: ``weighting`` and its options, those of
        :func:`unet_weight_map` (``w0``, ``sigma``, ``class_weights``, ``spacing``, ``border``,
        ``tol``, ``ignore_label``) by default, checked here once. ``separate`` follows from the
        target; it may be given only with the value the target implies (True for "separated",
        False for the others), and ValueError says so otherwise; a recipe with ``separate=True``
        needs ``target="separated"``. :attr:`recipe` is the recipe with the target's ``separate``.

    Notes
    -----
    ``dataset[i]`` returns ``(image, target, weight)``: the image as ``base`` gave it, the target an
    int64 array of the mask's shape (what ``cross_entropy`` expects), and the weight a float32
    array of the mask's shape; then the distance map if ``signed_distance``, then the skeleton
    if ``skeleton_radius`` is given: ``(image, target, weight, distance, skeleton)`` with both. A
    torch ``DataLoader`` collates them into tensors; the object pickles and keeps no file open,
    so ``num_workers > 0`` works (``base`` must pickle too).

    **The target's maps** are computed from the target this item returns, never from the instance
    labels, in the physical units of ``spacing``:

    - the distance map has one channel per class c in 0..C-1, background included (the (N, C, *)
      layout of the boundary loss; pass ``distance[:, 1:]`` to a loss with
      ``include_background=False``): negative inside class c, positive outside, and 0 everywhere
      for a class absent from the image. For the foreground targets channel 0 is minus channel 1.
    - the skeleton is int64 class indices of the mask's shape: class c on its tube, 0 elsewhere
      (the index layout of the skeleton-recall loss).
    - ``ignore_label`` pixels are background in the foreground targets (as the target says), and in
      no class for ``target="labels"``, where the target keeps the ignore value: outside every
      class for the distance map, in no tube. Either way the weight map is 0 there, so a weighted
      loss (or ``ignore_index``) leaves them out. ``ignore_label`` is a value of the mask as
      ``base`` gives it: an item whose mask is bool raises ValueError, before the cache is read.

    **The cache.** An entry is named by a SHA-256 of the mask's bytes, dtype and shape, every option,
    the target mode, the library version and a cache format version, so a changed mask or setting
    never serves an old map. The distance map and the skeleton are entries of their own, whose
    key adds ``num_classes`` or ``skeleton_radius``: datasets that differ only in these share the
    weight map's entry. Entries are written to a temporary file in ``cache_dir`` and renamed
    into place, so concurrent workers (or several training runs) filling the same entry each leave
    a complete file. Entries are read with ``np.load(allow_pickle=False)``; one that cannot be read,
    or holds something other than an array of the expected dtype and shape (float32 of the mask's
    shape for the weight map), is recomputed and replaced, never returned. (Damage that keeps a
    valid header, dtype and shape, such as flipped bits in the data, is not detected.) An entry
    path that is a folder (put there by something else) is left alone, and that map is computed
    on every call. Nothing is ever evicted: delete the folder to clear it. Temporary files more
    than an hour old, left by killed writers, are removed when a dataset is created.
    :meth:`cache_info` counts hits and misses in the calling process only (each data-loader worker
    keeps its own).

    With ``target="separated"``, ``separate_touching`` still runs on every call (on a cache hit
    too) to produce the target.
    """

    def __init__(
        self,
        base,
        cache_dir: Optional[PathLike] = None,
        target: str = "foreground",
        *,
        signed_distance: bool = False,
        num_classes: Optional[int] = None,
        skeleton_radius: Optional[float] = None,
        recipe: Optional[WeightMapRecipe] = None,
        **options,
    ):
        if not (hasattr(base, "__len__") and hasattr(base, "__getitem__")):
            raise TypeError(f"base must be an indexable dataset (len() and [i]), got {type(base).__name__}")
        if not isinstance(target, str) or target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
        self.base = base
        self.target = target
        recipe = WeightMapRecipe.from_arguments(
            recipe, owner="WeightMapDataset", signed_distance=signed_distance, skeleton_radius=skeleton_radius,
            **options,
        )
        separate = recipe.options.get("separate")
        given = options.get("separate", separate or None)
        if given is not None and bool(given) != (target == "separated"):
            raise ValueError(
                f"separate={given!r} contradicts target={target!r}: the target decides it "
                "(target='separated' computes the map with separate=True, the other targets without)"
            )
        # The weight map is computed on labels the target mode already carved (see __getitem__),
        # by ``_compute``; ``recipe`` says what the maps are, carving included.
        self._compute = recipe if separate is None else recipe.replace(separate=False)
        self.recipe = recipe if separate is None else recipe.replace(separate=target == "separated")
        self.num_classes = _num_classes(num_classes, target, recipe.signed_distance)
        self.cache_dir: Optional[Path] = None
        if cache_dir is not None:
            self.cache_dir = _as_path(cache_dir, "cache_dir")
            check_writable_folder(self.cache_dir, "cache_dir")
            _remove_temp_files(self.cache_dir, older_than=_STALE_TMP_SECONDS)
        options_key = self._compute.canonical(targets=False)
        options_key.pop("separate", None)
        key_header = {
            "cache_version": _CACHE_VERSION,
            "library": _library_version(),
            "options": options_key,
            "target": target,
        }
        # The weight map's key is the header alone, as before these maps existed; each other map
        # adds its name and its own option, so its entries never mix with the weight map's.
        self._key_headers = {
            "weight": _key_bytes(key_header),
            "distance": _key_bytes({**key_header, "output": "distance", "num_classes": self.num_classes}),
            "skeleton": _key_bytes(
                {**key_header, "output": "skeleton", "skeleton_radius": recipe.skeleton_radius}
            ),
        }
        self._hits = 0
        self._misses = 0
        self._replaced = 0

    @property
    def options(self) -> dict:
        """The recipe's ``weighting`` and options but ``separate`` (the target decides it), defaults
        filled in (a new dict each time)."""
        options = {"weighting": self.recipe.weighting, **self.recipe.options}
        options.pop("separate", None)
        return options

    def __repr__(self) -> str:
        arguments = self.recipe.arguments()
        arguments.pop("separate", None)
        if self.target == "labels" and self.num_classes is not None:
            arguments["num_classes"] = self.num_classes
        extra = "".join(f", {k}={v!r}" for k, v in arguments.items())
        return (
            f"WeightMapDataset({type(self.base).__name__} of {len(self)}, target={self.target!r}, "
            f"cache_dir={None if self.cache_dir is None else str(self.cache_dir)!r}{extra})"
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
        ignore = self.recipe.options.get("ignore_label")
        # Before the cache is looked at: an entry made for a bool mask with an ignore value would
        # hold a map that dropped whichever object its labelling happened to number so.
        check_ignore_label(mask, ignore, f"base[{index!r}] mask")
        ignored = None if ignore is None else mask == ignore
        labels = mask
        if self.target == "separated":
            # Carved by unet_weight_map's own step (ignored pixels are background while carving),
            # with the ignore value put back so that the map gives those pixels weight 0.
            carved, carved_ignored = prepare_labels(mask, True, ignore)
            labels = carved if carved_ignored is None else np.where(carved_ignored, mask, carved)
        # The key comes from the mask as base gave it (the target mode is in the key), so that
        # cache_path(mask) finds the entry; the map is computed on ``labels``, already carved for
        # "separated", which gives exactly unet_weight_map(mask, separate=True) without carving twice.
        weight = self._cached("weight", mask, mask.shape, np.float32, self._compute.weight_map, labels)
        if self.target == "labels":
            target = mask.astype(np.int64)
            self._check_classes(target, ignored, index)
        else:
            # Ignored pixels weigh 0; their target is background, a class every loss accepts.
            target = ((labels > 0) if ignored is None else (labels > 0) & ~ignored).astype(np.int64)
        item = [image, target, weight]
        # Only the class map keeps the ignore value in its target; there it is in no class.
        no_class = ignored if self.target == "labels" else None
        if self.recipe.signed_distance:
            item.append(self._cached(
                "distance", mask, (self.num_classes, *mask.shape), np.float32,
                self.recipe.distance_map, target, self.num_classes, no_class,
            ))
        if self.recipe.skeleton_radius is not None:
            item.append(self._cached("skeleton", mask, mask.shape, np.int64, self.recipe.skeleton, target, no_class))
        return tuple(item)

    def _check_classes(self, target: np.ndarray, ignored: Optional[np.ndarray], index) -> None:
        """ValueError when a class map holds a class at or above ``num_classes`` (ignored pixels aside)."""
        if self.num_classes is None:
            return
        classes = target if ignored is None else target[~ignored]
        if classes.size and classes.max() >= self.num_classes:
            raise ValueError(
                f"base[{index!r}]: the mask holds class {classes.max()}, but num_classes={self.num_classes} "
                f"allows 0..{self.num_classes - 1} (besides ignore_label)"
            )

    def cache_info(self) -> CacheInfo:
        """Hits, misses and replaced entries counted by this process since the dataset was built."""
        return CacheInfo(self._hits, self._misses, self._replaced)

    def cache_path(self, mask, output: str = "weight") -> Optional[Path]:
        """Where ``output`` ("weight", "distance" or "skeleton") of ``mask`` (as ``base`` returns it)
        is cached; None without a cache."""
        if not isinstance(output, str) or output not in _OUTPUTS:
            raise ValueError(f"output must be one of {_OUTPUTS}, got {output!r}")
        if self.cache_dir is None:
            return None
        return self._entry_path(_as_label_input(mask), output)

    def _entry_path(self, mask: np.ndarray, output: str) -> Path:
        digest = hashlib.sha256(self._key_headers[output])
        digest.update(f"|{mask.dtype.str}|{mask.shape}|".encode())
        digest.update(np.ascontiguousarray(mask))
        return self.cache_dir / f"{digest.hexdigest()}.npy"

    def _cached(self, output: str, key_source: np.ndarray, shape: tuple, dtype, compute, *args) -> np.ndarray:
        """The ``output`` map of the mask ``key_source``: from the cache, or ``compute(*args)`` (then cached).

        ``shape`` and ``dtype`` are what a usable entry holds.
        """
        if self.cache_dir is None:
            self._misses += 1
            return compute(*args)
        path = self._entry_path(key_source, output)
        if path.is_dir():
            # Something else holds the entry's name. It is not ours to delete, and the map is only
            # a cache entry: compute it each time instead.
            self._misses += 1
            return compute(*args)
        cached, damaged = _load_entry(path, shape, dtype)
        if cached is not None:
            self._hits += 1
            return cached
        value = compute(*args)
        _write_npy_atomic(path, value)
        self._misses += 1
        self._replaced += damaged
        return value


def _num_classes(num_classes, target: str, signed_distance: bool) -> Optional[int]:
    """The class count of the target: 2 for the foreground targets, None where a class map's count
    is neither given nor needed."""
    if num_classes is None:
        if target != "labels":
            return FOREGROUND_CLASSES
        if signed_distance:
            raise ValueError(
                "num_classes is needed with target='labels' and signed_distance=True: the distance map has one "
                "channel per class, and every item must have the same number of channels"
            )
        return None
    num_classes = integer_in_range(num_classes, "num_classes", 2, np.iinfo(np.int32).max)
    if target != "labels" and num_classes != FOREGROUND_CLASSES:
        raise ValueError(
            f"num_classes must be 2 (background, foreground) or None with target={target!r}, got {num_classes}"
        )
    return num_classes


def _key_bytes(header: dict) -> bytes:
    return json.dumps(header, sort_keys=True).encode()


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


def _load_entry(path: Path, shape: tuple, dtype) -> tuple[Optional[np.ndarray], bool]:
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
    if entry.dtype != dtype or entry.shape != shape:
        return None, True
    return entry, False
