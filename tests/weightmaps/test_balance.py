"""class_balance_weights."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from .reference import reference_class_weights

class_maps = hnp.arrays(
    dtype=st.sampled_from([np.uint8, np.int16, np.int32, np.int64, np.uint32]),
    shape=hnp.array_shapes(min_dims=2, max_dims=3, min_side=1, max_side=10),
    elements=st.integers(0, 5),
)


@settings(max_examples=60, deadline=None)
@given(classes=class_maps)
def test_balanced_matches_reference(classes):
    from unetweights.weightmaps import class_balance_weights

    before = classes.copy()
    w = class_balance_weights(classes, mode="balanced")
    np.testing.assert_array_equal(classes, before)
    assert w.dtype == np.float32 and w.shape == classes.shape
    ref = reference_class_weights(classes, "balanced")
    np.testing.assert_allclose(w, ref, rtol=2**-22, atol=0)
    # each present class carries the same total weight n / K -> sum == n
    assert float(w.astype(np.float64).sum()) == pytest.approx(classes.size, rel=1e-5)


def test_balanced_default_mode():
    from unetweights.weightmaps import class_balance_weights

    classes = np.array([[0, 0, 0], [0, 1, 1]])
    np.testing.assert_array_equal(
        class_balance_weights(classes), class_balance_weights(classes, mode="balanced"))


def test_balanced_by_hand():
    from unetweights.weightmaps import class_balance_weights

    classes = np.array([[0, 0, 0, 0], [0, 0, 3, 3]], dtype=np.int32)  # 6 zeros, 2 threes
    w = class_balance_weights(classes, "balanced")
    expected = np.where(classes == 0, 8 / (2 * 6), 8 / (2 * 2))
    assert w.dtype == np.float32
    np.testing.assert_allclose(w, expected, rtol=2**-22)


def test_balanced_single_class_is_one():
    from unetweights.weightmaps import class_balance_weights

    for c in (0, 2):
        w = class_balance_weights(np.full((4, 5), c, dtype=np.uint8), "balanced")
        np.testing.assert_array_equal(w, np.ones((4, 5), dtype=np.float32))


def test_bool_classes():
    from unetweights.weightmaps import class_balance_weights

    classes = np.zeros((3, 4), dtype=bool)
    classes[0, :3] = True  # 3 True, 9 False
    w = class_balance_weights(classes, "balanced")
    expected = np.where(classes, 12 / (2 * 3), 12 / (2 * 9))
    np.testing.assert_allclose(w, expected, rtol=2**-22)
    w = class_balance_weights(classes, {0: 0.5, 1: 4.0})
    np.testing.assert_array_equal(w, np.where(classes, 4.0, 0.5).astype(np.float32))


@settings(max_examples=40, deadline=None)
@given(classes=class_maps, data=st.data())
def test_mapping_and_none(classes, data):
    from unetweights.weightmaps import class_balance_weights

    present = [int(k) for k in np.unique(classes)]
    mapping = {k: data.draw(st.floats(0.0, 100.0)) for k in present}
    if data.draw(st.booleans()):
        mapping[99] = 1.5
    w = class_balance_weights(classes, mode=mapping)
    assert w.dtype == np.float32 and w.shape == classes.shape
    expected = reference_class_weights(classes, mapping).astype(np.float32)
    np.testing.assert_array_equal(w, expected)
    ones = class_balance_weights(classes, mode=None)
    assert ones.dtype == np.float32
    np.testing.assert_array_equal(ones, np.ones(classes.shape, dtype=np.float32))


def test_mapping_missing_class_raises():
    from unetweights.weightmaps import class_balance_weights

    classes = np.array([[0, 1], [2, 2]])
    with pytest.raises(ValueError):
        class_balance_weights(classes, {0: 1.0, 1: 2.0})


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf"), -float("inf")])
def test_mapping_bad_weight_raises(bad):
    from unetweights.weightmaps import class_balance_weights

    classes = np.array([[0, 1], [1, 1]])
    with pytest.raises(ValueError):
        class_balance_weights(classes, {0: 1.0, 1: bad})


def test_unknown_mode_raises_with_mode_name():
    from unetweights.weightmaps import class_balance_weights

    with pytest.raises(ValueError, match="frobnicate"):
        class_balance_weights(np.zeros((3, 3), dtype=int), "frobnicate")


def test_negative_classes_raise():
    from unetweights.weightmaps import class_balance_weights

    with pytest.raises(ValueError):
        class_balance_weights(np.array([[0, -1], [1, 1]]), "balanced")


def test_fractional_classes_rejected():
    from unetweights.weightmaps import class_balance_weights

    with pytest.raises((TypeError, ValueError)):
        class_balance_weights(np.array([[0.0, 0.5], [1.0, 1.0]]), "balanced")
