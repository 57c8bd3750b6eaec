"""Weight maps in the data pipeline: a transform, a caching dataset, mask reading and batch precompute.

Everything here is numpy in, numpy out, and never imports torch, so data-loader workers stay light:
a ``torch.utils.data.DataLoader`` turns the numpy arrays these objects return into tensors itself.

- :class:`WeightMapTransform` adds a weight map to a sample, a dict (MONAI style) or an
  ``(image, labels)`` pair.
- :class:`WeightMapDataset` wraps a dataset of ``(image, mask)`` pairs and returns
  ``(image, target, weight)``, optionally caching the maps on disk.
- :func:`read_mask` reads an instance mask from .tif/.tiff, .png or .npy (:func:`read_image` any
  array such a file holds, a weight map say).
- :func:`precompute` writes one weight map per mask file, in parallel and resumable.

The transform, the dataset and precompute can also give the target's signed distance map
(``signed_distance=True``) and tubed skeleton (``skeleton_radius=...``) beside the weight map,
cached and recorded like it.

The weighting, its options and the extra maps are one :class:`WeightMapRecipe` (from
:mod:`unetweights.weightmaps`, re-exported here), which every entry point takes.

One concern per module: ``_storage`` (atomic writes, folders, leftovers, the library version),
``_masks`` (reading masks), ``_transform``, ``_dataset`` (with its on-disk cache), ``_precompute``
and ``_manifest`` (what a precompute folder's manifest records, and the plan that keeps the
folder in agreement with it).
"""

from ._dataset import TARGETS, CacheInfo, WeightMapDataset
from ._masks import MASK_SUFFIXES, read_image, read_mask
from ..weightmaps import WEIGHTINGS, WeightMapRecipe
from ._precompute import PrecomputeReport, precompute
from ._transform import WeightMapTransform


__all__ = [
    "CacheInfo",
    "PrecomputeReport",
    "WeightMapDataset",
    "WeightMapRecipe",
    "WeightMapTransform",
    "precompute",
    "read_image",
    "read_mask",
]
