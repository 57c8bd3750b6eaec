"""label_instances and separate_touching."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from skimage.measure import label as sk_label

from .reference import reference_separate_touching
from .strategies import label_maps

FAST = settings(max_examples=50, deadline=None)


def assert_same_partition(got, ref):
    """got and ref describe the same partition into instances (ids may be
    permuted): same background, and a bijection between foreground ids."""
    got = np.asarray(got)
    assert got.shape == ref.shape
    assert np.issubdtype(got.dtype, np.integer), got.dtype
    np.testing.assert_array_equal(got == 0, ref == 0)
    fg = ref > 0
    assert (got[fg] > 0).all()
    if not fg.any():
        return
    pairs = np.unique(np.stack([got[fg].astype(np.int64), ref[fg].astype(np.int64)]), axis=1)
    n_got = np.unique(pairs[0]).size
    n_ref = np.unique(pairs[1]).size
    assert n_got == pairs.shape[1] == n_ref, (
        f"not a bijection: {n_got} got ids, {n_ref} reference ids, {pairs.shape[1]} pairs"
    )


@st.composite
def masks(draw):
    ndim = draw(st.sampled_from([2, 3]))
    shape = draw(hnp.array_shapes(min_dims=ndim, max_dims=ndim, min_side=1,
                                  max_side=12 if ndim == 2 else 7))
    kind = draw(st.sampled_from(["bool", "01", "semantic"]))
    if kind == "bool":
        arr = draw(hnp.arrays(np.bool_, shape))
    elif kind == "01":
        arr = draw(hnp.arrays(draw(st.sampled_from([np.uint8, np.int32, np.int64])),
                              shape, elements=st.integers(0, 1)))
    else:
        arr = draw(hnp.arrays(draw(st.sampled_from([np.uint8, np.int16, np.int64])),
                              shape, elements=st.integers(0, 3)))
    conn = draw(st.one_of(st.none(), st.integers(1, ndim)))
    return arr, conn


@FAST
@given(case=masks())
def test_label_instances_matches_skimage_partition(case):
    from unetweights.weightmaps import label_instances

    mask, conn = case
    before = mask.copy()
    got = label_instances(mask) if conn is None else label_instances(mask, connectivity=conn)
    np.testing.assert_array_equal(mask, before)
    ref = sk_label(mask, background=0, connectivity=1 if conn is None else conn)
    assert_same_partition(got, ref)


def test_label_instances_by_hand():
    from unetweights.weightmaps import label_instances

    diag = np.array([[1, 0], [0, 1]], dtype=bool)
    a = label_instances(diag)
    assert a[0, 0] > 0 and a[1, 1] > 0 and a[0, 0] != a[1, 1]
    b = label_instances(diag, connectivity=2)
    assert b[0, 0] == b[1, 1] > 0
    assert a[0, 1] == a[1, 0] == 0
    sem = np.array([[1, 1, 2], [0, 2, 2], [1, 0, 0]], dtype=np.uint8)
    s = label_instances(sem)
    assert s[0, 0] == s[0, 1]
    assert s[0, 2] == s[1, 1] == s[1, 2]
    assert len({s[0, 0], s[0, 2], s[2, 0]}) == 3  # touching different values split
    assert (s[sem == 0] == 0).all()


@pytest.mark.parametrize("conn", [0, 3])
def test_label_instances_bad_connectivity(conn):
    from unetweights.weightmaps import label_instances

    with pytest.raises(ValueError, match="connectivity"):
        label_instances(np.ones((3, 3), dtype=bool), connectivity=conn)


# ------------------------------------------------------------ separate_touching


def _check_separate(labels, conn):
    from unetweights.weightmaps import separate_touching

    before = labels.copy()
    out = separate_touching(labels) if conn is None else separate_touching(
        labels, connectivity=conn)
    np.testing.assert_array_equal(labels, before)
    assert isinstance(out, np.ndarray)
    assert out.dtype == labels.dtype and out.shape == labels.shape
    assert not np.shares_memory(out, labels)
    np.testing.assert_array_equal(out, reference_separate_touching(labels, conn))
    return out


def _full_offsets(ndim):
    return [o for o in itertools.product((-1, 0, 1), repeat=ndim) if any(o)]


def _no_different_labels_adjacent(out):
    shape = out.shape
    for o in _full_offsets(out.ndim):
        src = tuple(slice(max(0, -d), s - max(0, d)) for d, s in zip(o, shape))
        dst = tuple(slice(max(0, d), s - max(0, -d)) for d, s in zip(o, shape))
        a, b = out[src], out[dst]
        if ((a > 0) & (b > 0) & (a != b)).any():
            return False
    return True


@FAST
@given(labels=label_maps(ndim=2, allow_bool=False), conn=st.sampled_from([None, 1, 2]))
def test_separate_touching_2d_matches_brute_force(labels, conn):
    out = _check_separate(labels, conn)
    if conn in (None, 2):
        assert _no_different_labels_adjacent(out)


@settings(max_examples=30, deadline=None)
@given(labels=label_maps(ndim=3, allow_bool=False), conn=st.sampled_from([None, 1, 2, 3]))
def test_separate_touching_3d_matches_brute_force(labels, conn):
    out = _check_separate(labels, conn)
    if conn in (None, 3):
        assert _no_different_labels_adjacent(out)


def test_separate_touching_by_hand():
    labels = np.array(
        [[1, 1, 2, 0],
         [1, 1, 2, 0],
         [0, 0, 0, 3],
         [5, 0, 0, 0]], dtype=np.uint16)
    out = _check_separate(labels, None)
    expected = np.array(
        [[1, 0, 2, 0],
         [1, 0, 0, 0],
         [0, 0, 0, 3],
         [5, 0, 0, 0]], dtype=np.uint16)
    np.testing.assert_array_equal(out, expected)
    out1 = _check_separate(labels, 1)
    expected1 = np.array(
        [[1, 0, 2, 0],
         [1, 0, 2, 0],
         [0, 0, 0, 3],
         [5, 0, 0, 0]], dtype=np.uint16)
    np.testing.assert_array_equal(out1, expected1)


def test_separate_touching_large_ids_and_layouts():
    labels = np.zeros((6, 7), dtype=np.uint64)
    labels[0:3, 0:3] = 2**63 + 1
    labels[0:3, 3:5] = 2**63 + 7
    labels[3:6, 2:5] = 9
    _check_separate(labels, None)
    small = np.zeros((6, 7), dtype=np.int64)
    small[labels == 2**63 + 1] = 4
    small[labels == 2**63 + 7] = 11
    small[labels == 9] = 6
    _check_separate(np.asfortranarray(small), None)
    _check_separate(np.asfortranarray(small), 1)
    big = np.arange(48, dtype=np.int32).reshape(6, 8)
    _check_separate(big[::2, ::3], None)
    _check_separate(np.zeros((1, 1), dtype=np.int32), None)
