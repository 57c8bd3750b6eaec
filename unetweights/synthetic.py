"""Synthetic label masks of touching, nucleus-like objects, for demos, tests and benchmarks."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
from skimage.segmentation import expand_labels

from .weightmaps._validation import as_spacing


def touching_nuclei(
    shape: Sequence[int],
    n_objects: int,
    radius: float,
    spacing: Optional[Sequence[float]] = None,
    seed: int = 0,
) -> np.ndarray:
    """Random instance labels: ``n_objects`` round objects of ``radius`` that touch where crowded.

    Centres are drawn uniformly, rejecting those closer than ``radius`` (physical units) to an
    earlier one, so objects do not swallow each other; each centre then grows to ``radius`` and stops
    where it meets a neighbour, which gives the flat contacts of packed nuclei. Fewer objects than
    asked are returned when the image cannot hold them.

    Returns
    -------
    ndarray of int32, ids 1..n, 0 background
    """
    shape = tuple(int(s) for s in shape)
    spacing = as_spacing(spacing, len(shape))
    rng = np.random.default_rng(seed)
    centres: list[np.ndarray] = []
    for _ in range(50 * n_objects):
        if len(centres) == n_objects:
            break
        c = rng.integers(0, shape)
        if not centres or np.min(np.linalg.norm((np.array(centres) - c) * spacing, axis=1)) >= radius:
            centres.append(c)
    seeds = np.zeros(shape, dtype=np.int32)
    for i, c in enumerate(centres, start=1):
        seeds[tuple(c)] = i
    return expand_labels(seeds, distance=radius, spacing=spacing).astype(np.int32)
