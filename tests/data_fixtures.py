"""Importable helpers for the data tests (tests/data/): what worker processes must be able to unpickle."""

from pathlib import Path

import numpy as np

from unetweights.data import WeightMapDataset
from unetweights.synthetic import touching_nuclei


def write_npy_masks(folder, masks, prefix="mask"):
    """Save ``masks`` as ``folder/<prefix><k>.npy`` (the folder is created); return the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, mask in enumerate(masks):
        paths.append(folder / f"{prefix}{k}.npy")
        np.save(paths[-1], mask)
    return paths


def make_masks(n, shape=(48, 40), objects=6, radius=8.0):
    return [touching_nuclei(shape, objects, radius=radius, seed=k) for k in range(n)]


class PairDataset:
    """A minimal map-style dataset of (image, mask) pairs, held in memory."""

    def __init__(self, masks):
        self.masks = list(masks)
        self.images = [np.random.default_rng(k).random(m.shape, dtype=np.float32) for k, m in enumerate(self.masks)]
        self.calls = 0

    def __len__(self):
        return len(self.masks)

    def __getitem__(self, index):
        self.calls += 1
        return self.images[index], self.masks[index]


def churn_cache(args):
    """One of several processes filling the same cache entries at once.

    Each round deletes an entry and asks for it again, so that writers keep replacing entries while
    the other processes read them. Returns the process's cache counts and whether every map it got
    equalled the expected one.
    """
    cache_dir, masks, expected, rounds, offset = args
    dataset = WeightMapDataset(PairDataset(masks), cache_dir=cache_dir, sigma=3.0)
    all_equal = True
    for r in range(rounds):
        for i in range(len(masks)):
            j = (i + offset + r) % len(masks)
            if (r + offset) % 2 == 0:
                try:
                    Path(dataset.cache_path(masks[j])).unlink()
                except FileNotFoundError:
                    pass
            _, _, weight = dataset[j]
            all_equal &= bool(np.array_equal(weight, expected[j]))
    return tuple(dataset.cache_info()), all_equal


def toy_weight_map(labels, level=2.0, spacing=None, separate=False, ignore_label=None):
    """A weighting that exists only in the tests: 1 + level * the share of foreground in each
    pixel's 3x3 (3x3x3) neighbourhood, 0 on ignored pixels. It reaches one pixel, so chunks with a
    halo of one give it exactly. Defined here, importable, so that worker processes unpickle it."""
    from scipy.ndimage import uniform_filter

    from unetweights.weightmaps import prepare_labels

    if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0 <= level < 1e30:
        raise ValueError(f"level must be a finite number >= 0, got {level!r}")
    prepared, ignored = prepare_labels(labels, separate, ignore_label)
    weight = 1.0 + level * uniform_filter((prepared > 0).astype(np.float64), size=3, mode="nearest")
    if ignored is not None:
        weight[ignored] = 0.0
    return weight.astype(np.float32)


def toy_reach(options):
    """One pixel along the coarsest axis, in spacing units."""
    spacing = options["spacing"]
    return float(np.max(1.0 if spacing is None else spacing))


def toy_weighting():
    from unetweights import Option, Weighting

    return Weighting(
        "toy", toy_weight_map,
        (
            Option("level", "float", "the toy's weight of a neighbourhood full of foreground"),
            Option("spacing", "spacing", "pixel or voxel size"),
            Option("separate", "flag", "carve touching objects first"),
            Option("ignore_label", "int", "a label value whose pixels weigh 0"),
        ),
        help="a weighting of the tests",
        reach=toy_reach,
    )
