"""Synthetic label masks of touching, nucleus-like objects, for demos, tests and benchmarks."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
from skimage.segmentation import expand_labels

from ._validation import as_spacing


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


def cell_image(labels: np.ndarray, seed: int = 0, noise: float = 0.08, contact_contrast: float = 0.35) -> np.ndarray:
    """A fluorescence-like image of ``labels``: bright cells, dimmer where two cells touch, noisy.

    Each object gets its own brightness in [0.5, 0.9] on a 0.1 background. Pixels on a contact
    between two objects are dimmed by ``contact_contrast``, so the split between touching cells
    is visible but faint, the case border weights are made for. The image is blurred (sigma 1
    pixel) and Gaussian noise of standard deviation ``noise`` is added.

    Returns
    -------
    ndarray of float32, the shape of ``labels``
    """
    from scipy import ndimage as ndi
    from skimage.segmentation import find_boundaries

    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    brightness = np.concatenate([[0.1], 0.5 + 0.4 * rng.random(int(labels.max()))])
    image = brightness[labels]
    # A contact: an object pixel whose neighbourhood holds another object (not background).
    other = ndi.maximum_filter(labels, size=3) != ndi.minimum_filter(np.where(labels > 0, labels, labels.max() + 1), size=3)
    contacts = find_boundaries(labels, mode="inner") & other & (labels > 0)
    image = np.where(contacts, image * (1.0 - contact_contrast), image)
    image = ndi.gaussian_filter(image, 1.0) + rng.normal(0.0, noise, labels.shape)
    return image.astype(np.float32)


def touching_cells(
    n_images: int, size: int = 96, n_objects: int = 14, radius: float = 14.0, seed: int = 0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n_images`` pairs of (image (1, size, size) float32, instance labels (size, size) int32).

    Labels from :func:`touching_nuclei`, images from :func:`cell_image`; every pair has its own
    seed derived from ``seed``, so the set is reproducible.
    """
    pairs = []
    for k in range(n_images):
        labels = touching_nuclei((size, size), n_objects, radius=radius, seed=seed * 100_003 + k)
        pairs.append((cell_image(labels, seed=seed * 100_003 + k)[None], labels))
    return pairs
