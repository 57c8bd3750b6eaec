"""nearest_two_distances against the brute-force reference."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from .reference import reference_nearest_two
from .strategies import (
    DEGENERATE_IDS,
    DEGENERATE_LABELS,
    PROPERTY_SETTINGS,
    PROPERTY_SETTINGS_3D,
    assert_distances_match,
    label_maps,
    spacings,
)

max_distances = st.one_of(
    st.none(), st.floats(0.05, 40.0), st.just(float("inf")), st.sampled_from([1.0, 2.0, 3.0])
)


def check(labels, spacing=None, max_distance=None):
    from unetweights.weightmaps import nearest_two_distances

    before = np.array(labels, copy=True)
    kwargs = {}
    if spacing is not None:
        kwargs["spacing"] = spacing
    if max_distance is not None:
        kwargs["max_distance"] = max_distance
    d1, d2 = nearest_two_distances(labels, **kwargs)
    np.testing.assert_array_equal(np.asarray(labels), before)  # input untouched
    r1, r2 = reference_nearest_two(np.asarray(labels), spacing)
    assert_distances_match(d1, r1, max_distance, "d1")
    assert_distances_match(d2, r2, max_distance, "d2")
    return d1, d2


@PROPERTY_SETTINGS
@given(labels=label_maps(ndim=2), spacing=spacings(2), max_distance=max_distances)
def test_nearest_two_matches_reference_2d(labels, spacing, max_distance):
    check(labels, spacing, max_distance)


@PROPERTY_SETTINGS_3D
@given(labels=label_maps(ndim=3), spacing=spacings(3), max_distance=max_distances)
def test_nearest_two_matches_reference_3d(labels, spacing, max_distance):
    check(labels, spacing, max_distance)


# ---------------------------------------------------------------- hand checks


def test_hand_computed_distances_on_a_line():
    from unetweights.weightmaps import nearest_two_distances

    labels = np.zeros((1, 7), dtype=np.int32)
    labels[0, 0] = 5
    labels[0, 6] = 2
    d1, d2 = nearest_two_distances(labels)
    np.testing.assert_allclose(d1[0], [0, 1, 2, 3, 2, 1, 0], atol=1e-12)
    np.testing.assert_allclose(d2[0], [6, 5, 4, 3, 4, 5, 6], atol=1e-12)
    d1, d2 = nearest_two_distances(labels, spacing=(7.0, 0.5))
    np.testing.assert_allclose(d1[0], 0.5 * np.array([0, 1, 2, 3, 2, 1, 0]), atol=1e-12)
    np.testing.assert_allclose(d2[0], 0.5 * np.array([6, 5, 4, 3, 4, 5, 6]), atol=1e-12)
    d1, d2 = nearest_two_distances(labels, max_distance=4.5)
    np.testing.assert_allclose(d1[0], [0, 1, 2, 3, 2, 1, 0], atol=1e-12)
    inf = np.inf
    np.testing.assert_array_equal(d2[0], [inf, inf, 4, 3, 4, inf, inf])


def test_hand_computed_diagonal_anisotropic():
    from unetweights.weightmaps import nearest_two_distances

    labels = np.zeros((4, 5), dtype=np.uint8)
    labels[0, 0] = 1
    labels[3, 4] = 9
    d1, d2 = nearest_two_distances(labels, spacing=(2.0, 0.5))
    # pixel (3, 0): to (0,0) is 3*2 = 6; to (3,4) is 4*0.5 = 2
    assert d1[3, 0] == pytest.approx(2.0, abs=1e-12)
    assert d2[3, 0] == pytest.approx(6.0, abs=1e-12)
    # pixel (1, 2): to (0,0) sqrt(2^2 + 1^2); to (3,4) sqrt(4^2 + 1^2)
    assert d1[1, 2] == pytest.approx(np.sqrt(5.0), abs=1e-12)
    assert d2[1, 2] == pytest.approx(np.sqrt(17.0), abs=1e-12)


# ---------------------------------------------------------------- edge cases


def test_empty_mask_all_inf():
    from unetweights.weightmaps import nearest_two_distances

    for shape in [(5, 7), (3, 4, 5), (1, 1)]:
        labels = np.zeros(shape, dtype=np.int32)
        d1, d2 = nearest_two_distances(labels)
        assert d1.dtype == np.float64 and d2.dtype == np.float64
        assert d1.shape == shape and d2.shape == shape
        assert np.isposinf(d1).all() and np.isposinf(d2).all()


def test_single_object():
    labels = np.zeros((9, 11), dtype=np.uint16)
    labels[2:5, 3:8] = 42
    d1, d2 = check(labels)
    assert np.isposinf(d2).all()
    assert (d1[labels == 42] == 0).all()
    check(labels, spacing=(0.7, 2.2), max_distance=3.1)


def test_all_foreground_single_object():
    labels = np.full((6, 8), 3, dtype=np.int64)
    d1, d2 = check(labels)
    assert (d1 == 0).all() and np.isposinf(d2).all()


def test_all_foreground_two_objects():
    labels = np.ones((6, 8), dtype=np.int32)
    labels[:, 5:] = 2
    check(labels)
    check(labels, spacing=(1.5, 0.4))
    check(labels, max_distance=1.0)


@pytest.mark.parametrize(
    "dtype, ids",
    [
        (np.uint16, (65535, 7, 30000)),
        (np.uint32, (4_000_000_000, 4_000_000_001, 3)),
        (np.int64, (2**40, 2**40 + 17, 1)),
        (np.uint64, (2**63 + 5, 2**63 + 1, 12)),
        (np.int8, (127, 1, 64)),
    ],
)
def test_large_and_non_consecutive_ids(dtype, ids):
    labels = np.zeros((10, 12), dtype=dtype)
    labels[1:3, 1:4] = ids[0]
    labels[3:6, 4:6] = ids[1]  # touches the first diagonally
    labels[8:10, 9:12] = ids[2]  # touches the image border
    check(labels)
    check(labels, spacing=(1.0, 2.5), max_distance=4.0)


def test_bool_mask_is_split_into_components():
    from unetweights.weightmaps import nearest_two_distances

    mask = np.zeros((7, 9), dtype=bool)
    mask[1:3, 1:3] = True
    mask[4:6, 5:8] = True
    d1, d2 = nearest_two_distances(mask)
    # two separate blobs -> two objects -> d2 finite everywhere
    assert np.isfinite(d2).all()
    check(mask)
    # diagonal-only contact is two objects under face connectivity
    diag = np.zeros((4, 4), dtype=bool)
    diag[0:2, 0:2] = True
    diag[2:4, 2:4] = True
    d1, d2 = check(diag)
    assert d2[1, 1] == pytest.approx(np.sqrt(2.0))


def test_bool_mask_equals_labelled_int_map():
    from unetweights.weightmaps import nearest_two_distances

    mask = np.zeros((8, 8), dtype=bool)
    mask[0:3, 0:3] = True
    mask[5:8, 2:4] = True
    mask[1, 6] = True
    ints = np.zeros(mask.shape, dtype=np.int32)
    ints[0:3, 0:3] = 1
    ints[5:8, 2:4] = 2
    ints[1, 6] = 3
    a = nearest_two_distances(mask)
    b = nearest_two_distances(ints)
    np.testing.assert_allclose(a[0], b[0], atol=1e-12)
    np.testing.assert_allclose(a[1], b[1], atol=1e-12)


def test_strided_and_fortran_inputs():
    rng = np.random.default_rng(0)
    base = np.zeros((20, 30), dtype=np.int32)
    for i in range(1, 7):
        r, c = rng.integers(0, 18), rng.integers(0, 27)
        base[r : r + 3, c : c + 4] = i * 11
    view = base[::2, ::3]
    assert not view.flags.c_contiguous
    check(view)
    check(view, spacing=(2.0, 3.0), max_distance=10.0)
    fort = np.asfortranarray(base)
    check(fort)
    check(fort, spacing=(0.5, 1.25))
    vol = np.asfortranarray(np.stack([base[:, :12], base[:, 12:24], base[:, 18:30]]))
    check(vol, spacing=(2.0, 1.0, 1.0))


@pytest.mark.parametrize(
    "labels",
    DEGENERATE_LABELS,
    ids=DEGENERATE_IDS,
)
def test_degenerate_shapes(labels):
    check(labels)
    check(labels, spacing=0.5)
    check(labels, max_distance=1.5)


def test_objects_touching_image_border():
    labels = np.zeros((9, 9), dtype=np.int32)
    labels[0, :] = 1
    labels[:, 8] = 2
    labels[8, 0:3] = 3
    check(labels)
    check(labels, spacing=(1.3, 0.6), max_distance=2.0)


@pytest.mark.parametrize("spacing", [(2, 1, 1), (0.5, 1, 3)])
def test_3d_anisotropic(spacing):
    labels = np.zeros((6, 9, 10), dtype=np.int32)
    labels[0:2, 0:3, 0:3] = 1
    labels[3:6, 5:9, 1:4] = 2
    labels[2, 2, 7:10] = 7
    labels[5, 0, 9] = 3
    check(labels, spacing=spacing)
    check(labels, spacing=spacing, max_distance=3.0)


def test_max_distance_inf_equals_none():
    from unetweights.weightmaps import nearest_two_distances

    labels = np.zeros((12, 12), dtype=np.int32)
    labels[0:2, 0:2] = 1
    labels[9:12, 8:12] = 2
    labels[5, 5] = 3
    a = nearest_two_distances(labels)
    b = nearest_two_distances(labels, max_distance=float("inf"))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_max_distance_values_bounded():
    from unetweights.weightmaps import nearest_two_distances

    labels = np.zeros((15, 15), dtype=np.int32)
    labels[0, 0] = 1
    labels[14, 14] = 2
    labels[7, 3] = 3
    for md in (0.5, 1.0, 2.5, 6.0, 100.0):
        d1, d2 = nearest_two_distances(labels, max_distance=md)
        for d in (d1, d2):
            finite = np.isfinite(d)
            assert (d[finite] <= md + 1e-12).all()
        check(labels, max_distance=md)
