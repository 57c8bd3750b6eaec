"""The separable two-nearest-label kernel against the per-object reference, on the inputs that
stress its parts: combs (one label owning many runs of a line), dense label noise (every line has
many short runs), huge and sparse ids, thin images, objects on the border, anisotropic spacing."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from unetweights import nearest_two_distances, unet_weight_map

from .reference import reference_nearest_two, reference_unet_weight_map
from .strategies import PROPERTY_SETTINGS


def _assert_exact(labels, spacing):
    d1, d2 = nearest_two_distances(labels, spacing=spacing)
    r1, r2 = reference_nearest_two(labels, spacing)
    for got, want in ((d1, r1), (d2, r2)):
        assert np.array_equal(np.isinf(got), np.isinf(want))
        finite = np.isfinite(want)
        np.testing.assert_allclose(got[finite], want[finite], rtol=0, atol=1e-9)


def _comb(shape, period, teeth_label=1, seed=0):
    """Label 1 owns every ``period``-th column; other labels fill the columns between the teeth."""
    rng = np.random.default_rng(seed)
    labels = np.zeros(shape, dtype=np.int32)
    labels[..., ::period] = teeth_label
    between = np.arange(period // 2, shape[-1], period)
    labels[..., between] = rng.integers(2, 2 + len(between), size=len(between))
    labels[..., rng.random(shape[-2]) < 0.3, :] = 0  # some lines without any object
    return labels


@pytest.mark.parametrize("period", [2, 3, 4, 7])
@pytest.mark.parametrize("spacing", [(1.0, 1.0), (0.4, 2.5), (3.0, 0.7)])
def test_combs_along_both_axes(period, spacing):
    comb = _comb((40, 60), period, seed=period)
    _assert_exact(comb, spacing)
    _assert_exact(np.ascontiguousarray(comb.T), spacing)


def test_comb_in_3d_along_every_axis():
    comb = _comb((6, 20, 30), 3, seed=1)
    for axes in ((0, 1, 2), (2, 0, 1), (1, 2, 0)):
        _assert_exact(np.ascontiguousarray(comb.transpose(axes)), (2.0, 1.0, 0.5))


@PROPERTY_SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    ndim=st.sampled_from([2, 3]),
    n_labels=st.integers(1, 6),
    fill=st.floats(0.05, 1.0),
    spacing=st.lists(st.floats(0.2, 5.0), min_size=3, max_size=3),
)
def test_dense_label_noise(seed, ndim, n_labels, fill, spacing):
    """Few labels scattered pixel by pixel: every line has many runs, and every label many of them."""
    rng = np.random.default_rng(seed)
    shape = tuple(rng.integers(1, 14 if ndim == 3 else 40, size=ndim))
    labels = rng.integers(1, n_labels + 1, size=shape) * (rng.random(shape) < fill)
    _assert_exact(labels, tuple(spacing[:ndim]))


def test_huge_sparse_ids_beyond_int64():
    labels = np.zeros((9, 11), dtype=np.uint64)
    labels[1, 1] = 2**64 - 1
    labels[7, 9] = 2**63 + 5
    labels[4, 3:6] = 3
    d1, d2 = nearest_two_distances(labels)
    # Only which pixels share an id matters: the reference runs on the ids renumbered 0, 1, 2, ...
    renumbered = np.unique(labels, return_inverse=True)[1].reshape(labels.shape)
    r1, r2 = reference_nearest_two(renumbered)
    np.testing.assert_allclose(d1, r1, rtol=0, atol=1e-12)
    np.testing.assert_allclose(d2, r2, rtol=0, atol=1e-12)


@pytest.mark.parametrize("shape", [(1, 50), (50, 1), (1, 1, 40), (40, 1, 1), (1, 40, 1)])
def test_thin_images(shape):
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 4, size=shape) * (rng.random(shape) < 0.3)
    _assert_exact(labels, None)


def test_objects_on_every_border_and_a_single_object():
    labels = np.zeros((30, 25), dtype=np.int32)
    labels[0, 3:9] = 1
    labels[-1, 10:20] = 2
    labels[5:12, 0] = 3
    labels[14:20, -1] = 4
    _assert_exact(labels, (1.5, 0.75))
    single = np.zeros((12, 14), dtype=np.int32)
    single[3:5, 6:9] = 8
    d1, d2 = nearest_two_distances(single)
    assert np.isinf(d2).all() and d1.min() == 0.0
    _assert_exact(single, None)


def test_weight_map_on_a_comb_equals_the_formula():
    comb = _comb((48, 64), 4, seed=5)
    got = unet_weight_map(comb, w0=10.0, sigma=3.0, spacing=(1.0, 0.8))
    want = reference_unet_weight_map(comb, w0=10.0, sigma=3.0, spacing=(1.0, 0.8))
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-5)
