"""class_balance_weights."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from unetweights.weightmaps import class_balance_weights

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


def test_sqrt_balancing_caps_rare_foreground_as_the_authors_advise():
    """0.3 % foreground: "balanced" gives it about 167 (332x the background); "sqrt" gives the
    ratio sqrt(bg / fg) = 18.2 that Falk et al. 2019 advise as the upper end."""
    classes = np.zeros((500, 600), dtype=bool)
    classes[100:130, 200:230] = True  # 900 of 300000 pixels: 0.3 %
    n, fg = classes.size, 900
    balanced = class_balance_weights(classes, "balanced")
    capped = class_balance_weights(classes, "sqrt")
    assert balanced[classes][0] == pytest.approx(n / (2 * fg), rel=1e-6)  # 166.7
    assert capped[classes][0] == pytest.approx(np.sqrt(n / (2 * fg)), rel=1e-6)  # 12.9
    assert capped[~classes][0] == pytest.approx(np.sqrt(n / (2 * (n - fg))), rel=1e-6)  # 0.708
    assert capped[classes][0] / capped[~classes][0] == pytest.approx(np.sqrt((n - fg) / fg), rel=1e-6)  # 18.2
    np.testing.assert_allclose(capped, np.sqrt(balanced), rtol=1e-6)


def test_sqrt_balancing_with_several_classes_and_in_the_weight_map():
    from unetweights import unet_weight_map

    rng = np.random.default_rng(0)
    classes = rng.choice(4, size=(40, 50), p=[0.7, 0.2, 0.09, 0.01])
    counts = np.bincount(classes.ravel(), minlength=4)
    want = np.sqrt(classes.size / (4 * counts))[classes]
    np.testing.assert_allclose(class_balance_weights(classes, "sqrt"), want, rtol=1e-6)
    labels = np.zeros((30, 40), dtype=np.int32)
    labels[5:12, 5:12] = 1
    labels[5:12, 14:20] = 2
    w0 = unet_weight_map(labels, class_weights="sqrt", w0=0.0)
    np.testing.assert_allclose(w0, class_balance_weights(labels > 0, "sqrt"), rtol=1e-6)
    with_border = unet_weight_map(labels, class_weights="sqrt")
    without_class = unet_weight_map(labels, class_weights=None)
    np.testing.assert_allclose(with_border - w0, without_class - 1.0, rtol=1e-5, atol=1e-5)
