import numpy as np
from scipy import ndimage as ndi

from unetweights.synthetic import touching_nuclei


def test_touching_nuclei_are_consecutive_touching_objects():
    labels = touching_nuclei((128, 128), 30, radius=12, seed=5)
    ids = np.unique(labels)
    assert labels.dtype == np.int32 and ids[0] == 0 and np.array_equal(ids[1:], np.arange(1, ids.size))
    assert 20 <= ids.size - 1 <= 30
    # Some pair of objects shares a face: a pixel whose right neighbour is another object.
    left, right = labels[:, :-1], labels[:, 1:]
    assert np.any((left > 0) & (right > 0) & (left != right))
    # Every object is one connected piece, no larger than a disc of the radius.
    sizes = ndi.sum_labels(np.ones_like(labels), labels, index=ids[1:])
    assert sizes.max() <= np.pi * 12.5**2
    assert np.array_equal(touching_nuclei((128, 128), 30, radius=12, seed=5), labels)


def test_touching_nuclei_respects_spacing():
    labels = touching_nuclei((16, 64, 64), 6, radius=10, spacing=(4.0, 1.0, 1.0), seed=2)
    extent = [np.ptp(np.nonzero(labels == 1)[k]) for k in range(3)]
    assert extent[0] <= 20 / 4 + 1 and extent[1] <= 21


def test_touching_cells_images_show_the_cells_and_dim_their_contacts():
    from skimage.segmentation import find_boundaries

    from unetweights.synthetic import cell_image, touching_cells

    pairs = touching_cells(3, size=64, n_objects=10, radius=10, seed=2)
    assert len(pairs) == 3
    for image, labels in pairs:
        assert image.shape == (1, 64, 64) and image.dtype == np.float32 and labels.shape == (64, 64)
    labels = pairs[0][1]
    clean = cell_image(labels, seed=0, noise=0.0)
    interior = (labels > 0) & ~find_boundaries(labels, mode="thick")
    assert clean[interior].mean() > clean[labels == 0].mean() + 0.3
    left, right = labels[:, :-1], labels[:, 1:]
    contact = np.zeros_like(labels, dtype=bool)
    contact[:, :-1] |= (left > 0) & (right > 0) & (left != right)
    assert clean[contact].mean() < clean[interior].mean()
    again = touching_cells(3, size=64, n_objects=10, radius=10, seed=2)
    assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) for a, b in zip(pairs, again))
