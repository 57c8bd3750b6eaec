"""Trust under bad input: every option of the weight-map functions is checked, NaN included.

A bad value raises the documented exception (TypeError: not a number at all, or a bool; ValueError:
a number with a bad value, NaN and infinities included) with a message that names the argument, for
every public function that takes that option. Extreme but valid values give the map of the plain
formula (the brute-force reference), or a clear error where float arithmetic cannot represent it.
"""

import warnings
from fractions import Fraction

import numpy as np
import pytest

import unetweights.weightmaps as wm

from .reference import (
    reference_nearest_two,
    reference_signed_distance,
    reference_unet_weight_map,
)

F32_MAX = float(np.finfo(np.float32).max)
NAN, INF = float("nan"), float("inf")


def _labels():
    labels = np.zeros((6, 9), dtype=np.int32)
    labels[1:3, 1:3] = 1
    labels[3:5, 5:8] = 2
    labels[0, 8] = 3
    return labels


LABELS = _labels()
MASK = LABELS > 0


@pytest.fixture(autouse=True)
def _warnings_are_errors():
    """An overflow that numpy only warns about is exactly the silent failure these tests look for."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


# Every public function that takes each option, called with that option only.
W0 = {
    "unet_weight_map": lambda v: wm.unet_weight_map(LABELS, w0=v),
    "border_cutoff": lambda v: wm.border_cutoff(w0=v),
}
SIGMA = {
    "unet_weight_map": lambda v: wm.unet_weight_map(LABELS, sigma=v),
    "border_cutoff": lambda v: wm.border_cutoff(sigma=v),
}
TOL = {
    "unet_weight_map": lambda v: wm.unet_weight_map(LABELS, tol=v),
    "border_cutoff": lambda v: wm.border_cutoff(tol=v),
}
SPACING = {
    "unet_weight_map": lambda v: wm.unet_weight_map(LABELS, spacing=v),
    "nearest_two_distances": lambda v: wm.nearest_two_distances(LABELS, spacing=v),
    "signed_distance_map": lambda v: wm.signed_distance_map(MASK, spacing=v),
    "signed_distance_map-channels": lambda v: wm.signed_distance_map(np.stack([MASK, ~MASK]), v, channel_axis=0),
    "tubed_skeleton": lambda v: wm.tubed_skeleton(LABELS, spacing=v),
    "tubed_skeleton-channels": lambda v: wm.tubed_skeleton(np.stack([MASK, ~MASK]), spacing=v, channel_axis=0),
}
MAX_DISTANCE = {
    "nearest_two_distances": lambda v: wm.nearest_two_distances(LABELS, max_distance=v),
}
CLASS_WEIGHTS = {
    "unet_weight_map": lambda v: wm.unet_weight_map(LABELS, class_weights=v),
    "class_balance_weights": lambda v: wm.class_balance_weights(MASK, v),
}
CONNECTIVITY = {
    "label_instances": lambda v: wm.label_instances(MASK, connectivity=v),
    "separate_touching": lambda v: wm.separate_touching(LABELS, connectivity=v),
}
CHANNEL_AXIS = {
    "signed_distance_map": lambda v: wm.signed_distance_map(np.stack([MASK, ~MASK]), channel_axis=v),
    "tubed_skeleton": lambda v: wm.tubed_skeleton(np.stack([MASK, ~MASK]), channel_axis=v),
}
RADIUS = {
    "tubed_skeleton": lambda v: wm.tubed_skeleton(LABELS, radius=v),
}


def _short(value) -> str:
    text = repr(value).replace("\n", "")
    return text if len(text) <= 24 else text[:21] + "..."


def _cases(option, callers, values):
    """(caller, value, option) for every public function that takes ``option`` and every value."""
    return [
        pytest.param(fn, value, option, id=f"{name}-{option}={_short(value)}")
        for name, fn in callers.items()
        for value in values
    ]


def _raises(error, option, call, value):
    with pytest.raises(error, match=rf"^{option}\b") as info:
        call(value)
    return str(info.value)


# ------------------------------------------------------------------ scalars: NaN, inf, range

NON_FINITE = [NAN, INF, -INF, np.float32("nan"), np.float64("inf"), np.array(NAN), 10**400]


@pytest.mark.parametrize(
    "call, value, option",
    _cases("w0", W0, NON_FINITE + [-1.0, -1e-300, 1e39, F32_MAX * 1.0000001])
    + _cases("sigma", SIGMA, NON_FINITE + [0.0, -5.0, -0.0])
    + _cases("tol", TOL, NON_FINITE + [0.0, -1e-6])
    + _cases("max_distance", MAX_DISTANCE, [NAN, -INF, 0.0, -1.0, np.float32("nan")])
    + _cases("radius", RADIUS, NON_FINITE + [-1.0, -1e-300]),
)
def test_bad_scalar_value(call, value, option):
    _raises(ValueError, option, call, value)


NOT_A_NUMBER = [True, False, np.True_, "1.0", b"1", 1 + 0j, np.complex128(2), [1.0], np.array([1.0]), {}]


@pytest.mark.parametrize(
    "call, value, option",
    _cases("w0", W0, NOT_A_NUMBER + [None])
    + _cases("sigma", SIGMA, NOT_A_NUMBER + [None])
    + _cases("tol", TOL, NOT_A_NUMBER + [None])
    + _cases("max_distance", MAX_DISTANCE, NOT_A_NUMBER)
    + _cases("radius", RADIUS, NOT_A_NUMBER + [None]),
)
def test_bad_scalar_kind(call, value, option):
    _raises(TypeError, option, call, value)


def test_non_finite_message_says_what_was_expected():
    message = _raises(ValueError, "sigma", SIGMA["unet_weight_map"], NAN)
    assert "finite" in message and "nan" in message
    message = _raises(ValueError, "w0", W0["unet_weight_map"], 1e39)
    assert "float32" in message and "1e+39" in message


def test_max_distance_inf_means_no_cap():
    """inf is the one documented non-finite value: no distance is above it, as with None."""
    for got, want in zip(wm.nearest_two_distances(LABELS, max_distance=INF), wm.nearest_two_distances(LABELS)):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("value", [Fraction(5, 2), np.float32(2.5), np.int64(3), np.array(2.5), 2])
def test_other_real_scalars_accepted(value):
    want = wm.unet_weight_map(LABELS, sigma=float(value))
    np.testing.assert_array_equal(wm.unet_weight_map(LABELS, sigma=value), want)


# ----------------------------------------------------------------------------------- spacing

BAD_SPACING_VALUES = [
    NAN, INF, -INF, 0.0, -1.0, np.array(NAN), 10**400,
    (NAN, 1.0), (1.0, INF), (0.0, 1.0), (1.0, -2.0), np.array([1.0, NAN]),
    (1.0,), (1.0, 1.0, 1.0), [[1.0, 1.0]], np.ones(3),
]
BAD_SPACING_KINDS = [
    True, np.True_, (True, 1.0), np.array([True, True]), "1.0", ("1", "1"), 1 + 0j, (1 + 0j, 1.0),
    {1: 2}, [[1.0], [2.0, 3.0]],
]


@pytest.mark.parametrize("call, value, option", _cases("spacing", SPACING, BAD_SPACING_VALUES))
def test_bad_spacing_value(call, value, option):
    _raises(ValueError, option, call, value)


@pytest.mark.parametrize("call, value, option", _cases("spacing", SPACING, BAD_SPACING_KINDS))
def test_bad_spacing_kind(call, value, option):
    _raises(TypeError, option, call, value)


@pytest.mark.parametrize(
    "call, value, option",
    _cases("spacing", SPACING, [(1e-100, 1e100), (1.0, 1e151), 1e308, (1e308, 1.0)]),
)
def test_spacing_beyond_float_range_refused(call, value, option):
    """Anisotropy beyond 1e150 underflows the transform; a diagonal beyond float64 overflows it."""
    _raises(ValueError, option, call, value)


@pytest.mark.parametrize("value", [1e38, 1e-40, (1e-39, 1.0)])
def test_spacing_beyond_float32_output_refused(value):
    """signed_distance_map returns float32: every distance must be a normal float32."""
    for name in ("signed_distance_map", "signed_distance_map-channels"):
        message = _raises(ValueError, "spacing", SPACING[name], value)
        assert "float32" in message


def test_spacing_float32_limits_do_not_apply_to_float64_outputs():
    d1, _ = wm.nearest_two_distances(LABELS, spacing=1e-40)
    r1, _ = reference_nearest_two(LABELS, 1e-40)
    np.testing.assert_array_equal(d1, r1)


@pytest.mark.parametrize("value", [Fraction(1, 2), np.array(0.5), (np.float32(0.5), 0.5), [0.5, Fraction(1, 2)]])
def test_spacing_other_real_forms_accepted(value):
    np.testing.assert_array_equal(wm.unet_weight_map(LABELS, spacing=value), wm.unet_weight_map(LABELS, spacing=0.5))


# ----------------------------------------------------------------------------- class weights

F32 = F32_MAX
BAD_WEIGHTS = [NAN, INF, -INF, -1.0, 1e39, F32 * 1.0000001, True, "x", 1 + 0j, None, [1.0], 10**400]


@pytest.mark.parametrize("call, value, option", _cases("class_weights", CLASS_WEIGHTS, BAD_WEIGHTS))
def test_bad_class_weight_value(call, value, option):
    """A bad weight is named by its class, whatever its kind (the data module relies on ValueError)."""
    with pytest.raises(ValueError, match=r"^class_weights\[1\] must be a finite number"):
        call({0: 1.0, 1: value})


@pytest.mark.parametrize("call, value, option", _cases("class_weights", CLASS_WEIGHTS, [NAN, 1e39, "x"]))
def test_bad_weight_of_an_absent_class_is_refused_too(call, value, option):
    """Options are accepted or refused independently of the image: class 7 is in no mask here."""
    with pytest.raises(ValueError, match=r"^class_weights\[7\]"):
        call({0: 1.0, 1: 2.0, 7: value})


@pytest.mark.parametrize("call, value, option", _cases("class_weights", CLASS_WEIGHTS, ["a", -1, 1.5, NAN, None]))
def test_bad_class_weight_key(call, value, option):
    with pytest.raises(ValueError, match=r"^class_weights keys must be class ids"):
        call({0: 1.0, 1: 2.0, value: 1.0})


@pytest.mark.parametrize(
    "call, value, option",
    _cases("class_weights", CLASS_WEIGHTS, [[1.0, 2.0], np.array([1.0, 2.0]), 1.0, NAN, True]),
)
def test_class_weights_not_a_mapping(call, value, option):
    message = _raises(TypeError, option, call, value)
    assert "mapping" in message


@pytest.mark.parametrize("call, value, option", _cases("class_weights", CLASS_WEIGHTS, ["uniform", ""]))
def test_class_weights_unknown_mode(call, value, option):
    _raises(ValueError, option, call, value)


@pytest.mark.parametrize(
    "mapping",
    [{0.0: 1.0, 1.0: 2.5}, {False: 1.0, True: 2.5}, {np.int64(0): np.float32(1.0), np.uint8(1): Fraction(5, 2)},
     {0: np.array(1.0), 1: 2.5}],
)
def test_class_weight_mapping_forms_accepted(mapping):
    want = wm.class_balance_weights(MASK, {0: 1.0, 1: 2.5})
    np.testing.assert_array_equal(wm.class_balance_weights(MASK, mapping), want)
    np.testing.assert_array_equal(
        wm.unet_weight_map(LABELS, class_weights=mapping), wm.unet_weight_map(LABELS, class_weights={0: 1.0, 1: 2.5})
    )


def test_class_weight_up_to_float32_max_accepted():
    w = wm.class_balance_weights(MASK, {0: 0.0, 1: F32})
    assert np.isfinite(w).all() and w.max() == np.float32(F32)


# ------------------------------------------------------- the float32 weight map cannot overflow


@pytest.mark.parametrize(
    "w0, class_weights",
    [(3e38, {0: 1.0, 1: 1e38}), (F32, {0: 1.0, 1: 1e32}), (2e38, {0: 2e38, 1: 0.0}),
     (1.8e38, {0: 1.0, 1: 1.0, 9: 1.8e38})],
    ids=["w0+wc", "max+wc", "background", "absent-class"],
)
def test_w0_plus_class_weight_overflowing_float32_refused(w0, class_weights):
    with pytest.raises(ValueError, match=r"^w0\b") as info:
        wm.unet_weight_map(LABELS, w0=w0, class_weights=class_weights)
    assert "class_weights" in str(info.value) and "float32" in str(info.value)


@pytest.mark.parametrize("class_weights", [None, "balanced", {0: 0.0, 1: 0.0}])
def test_largest_representable_w0_gives_a_finite_map(class_weights):
    # sigma huge: the border term is w0 itself between objects, so the peak is w_c + w0.
    w = wm.unet_weight_map(LABELS, w0=F32, sigma=1e30, class_weights=class_weights)
    assert w.dtype == np.float32 and np.isfinite(w).all()
    assert w.max() == np.float32(F32)


def test_w0_plus_class_weight_just_fitting_float32():
    w = wm.unet_weight_map(LABELS, w0=1.7e38, sigma=1e30, class_weights={0: 1.7e38, 1: 1.0})
    assert np.isfinite(w).all()
    assert w.max() > np.float32(3.3e38)


# ------------------------------------------------------------------ integer options


BAD_INTEGER_VALUES = [NAN, INF, -INF, 1.5, np.float32("nan"), 0, 3, -1, 10**400]
BAD_INTEGER_KINDS = [True, np.True_, "1", 1 + 0j, [1], np.array([1])]


@pytest.mark.parametrize("call, value, option", _cases("connectivity", CONNECTIVITY, BAD_INTEGER_VALUES))
def test_bad_connectivity_value(call, value, option):
    _raises(ValueError, option, call, value)


@pytest.mark.parametrize("call, value, option", _cases("connectivity", CONNECTIVITY, BAD_INTEGER_KINDS))
def test_bad_connectivity_kind(call, value, option):
    _raises(TypeError, option, call, value)


def test_label_instances_connectivity_none_refused():
    """None is separate_touching's default (full connectivity) but no value for label_instances."""
    _raises(TypeError, "connectivity", CONNECTIVITY["label_instances"], None)


@pytest.mark.parametrize("call, value, option", _cases("connectivity", CONNECTIVITY, [2.0, np.int64(2), np.array(2)]))
def test_connectivity_whole_numbers_accepted(call, value, option):
    np.testing.assert_array_equal(call(value), call(2))


@pytest.mark.parametrize("call, value, option", _cases("channel_axis", CHANNEL_AXIS, [NAN, INF, 1.5, 3, -4]))
def test_bad_channel_axis_value(call, value, option):
    _raises(ValueError, option, call, value)


@pytest.mark.parametrize("call, value, option", _cases("channel_axis", CHANNEL_AXIS, [True, np.False_, "0", 0j]))
def test_bad_channel_axis_kind(call, value, option):
    _raises(TypeError, option, call, value)


@pytest.mark.parametrize("call, value, option", _cases("channel_axis", CHANNEL_AXIS, [0.0, np.int8(0), -3]))
def test_channel_axis_whole_numbers_accepted(call, value, option):
    np.testing.assert_array_equal(call(value), call(0))


# ------------------------------------------------------------------------- other options


@pytest.mark.parametrize("value", [1, 0, "yes", None, np.array([True])])
def test_separate_must_be_a_bool(value):
    with pytest.raises(TypeError, match=r"^separate\b"):
        wm.unet_weight_map(LABELS, separate=value)


@pytest.mark.parametrize("value", ["inside", ["all"], np.array("all"), None, 1])
def test_border_must_be_one_of_the_names(value):
    with pytest.raises(ValueError, match=r"^border\b"):
        wm.unet_weight_map(LABELS, border=value)


# --------------------------------------------------- extreme valid values: the plain formula

W_ATOL = 2**-22  # float32 rounding of weights of order 10, on top of tol


def _check_map(kw, ref_kw=None, labels=LABELS):
    """unet_weight_map equals the reference (no cutoff, float64) to within tol + float32 rounding."""
    kw = dict(class_weights=None, **kw)
    tol = kw.get("tol", 1e-6)
    got = wm.unet_weight_map(labels, **kw)
    ref_kw = dict(kw if ref_kw is None else dict(class_weights=kw["class_weights"], **ref_kw))
    ref_kw.pop("tol", None)
    want = reference_unet_weight_map(labels, **ref_kw)
    assert got.dtype == np.float32 and got.shape == labels.shape
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, want, rtol=2**-23, atol=tol + W_ATOL)
    return got, want


EXTREMES = [
    dict(sigma=1e30),
    dict(sigma=1e30, border="all"),
    dict(spacing=1e-30),
    dict(spacing=(1e-30, 2e-30), border="all"),
    dict(sigma=1e-30),
    dict(sigma=1e-30, border="all"),
    dict(spacing=1e30),
    dict(spacing=1e30, sigma=3e30),
    dict(spacing=(1e-30, 1e30)),
    dict(tol=1e-300),
    dict(tol=5e-324),
    dict(tol=10.0),
    dict(tol=1e3),
    dict(w0=1e-7),
    dict(w0=0.0, sigma=1e30),
    dict(sigma=1.7e308, border="all"),
    dict(sigma=1e300, spacing=1e-300),
]


@pytest.mark.parametrize("kw", EXTREMES, ids=[repr(k) for k in EXTREMES])
def test_extreme_options_match_reference(kw):
    _check_map(kw)


@pytest.mark.parametrize("tol", [10.0, 10.5, 1e3])
def test_tol_at_or_above_w0_gives_the_class_weights(tol):
    """The border term never exceeds w0 <= tol, so dropping it everywhere is within tol."""
    np.testing.assert_array_equal(wm.unet_weight_map(LABELS, w0=10.0, tol=tol), wm.class_balance_weights(MASK))


def test_huge_sigma_gives_w0_between_objects():
    """The regression: the reach overflowed an int64 cast and the border term silently vanished."""
    for kw in (dict(sigma=1e30), dict(spacing=1e-30)):
        got, _ = _check_map(kw)
        d2 = reference_nearest_two(LABELS)[1]
        between = (LABELS == 0) & np.isfinite(d2)
        np.testing.assert_allclose(got[between], 11.0, rtol=2**-23)


@pytest.mark.parametrize(
    "kw, ref_kw",
    [
        (dict(spacing=1e-300), dict(sigma=5e300)),
        (dict(spacing=1e200, sigma=3e200), dict(sigma=3.0)),
        (dict(spacing=1e-200, sigma=3e-200), dict(sigma=3.0)),
        (dict(spacing=1e300, sigma=2e300, border="all"), dict(sigma=2.0, border="all")),
        (dict(spacing=(4e-200, 1e-200), sigma=1e-199), dict(spacing=(4.0, 1.0), sigma=10.0)),
    ],
    ids=["1e-300", "1e200", "1e-200", "1e300", "anisotropic-1e-200"],
)
def test_spacing_beyond_the_square_range_matches_rescaled_reference(kw, ref_kw):
    """Squares of these spacings overflow or underflow float64; the map depends on d / sigma only."""
    _check_map(kw, ref_kw)


@pytest.mark.parametrize(
    "labels",
    [np.zeros((4, 5), dtype=np.int32), np.pad(np.ones((2, 2), dtype=np.int32), 2),
     np.array([[0, 1, 0, 0, 2, 2, 0, 3]], dtype=np.int32)],
    ids=["empty", "one-object", "1xN"],
)
@pytest.mark.parametrize("kw", [dict(sigma=1e30), dict(spacing=1e-30), dict(sigma=1e-30), dict(tol=1e-300)],
                         ids=["sigma=1e30", "spacing=1e-30", "sigma=1e-30", "tol=1e-300"])
def test_edge_case_masks_at_extremes(labels, kw):
    got, _ = _check_map(kw, labels=labels)
    if labels.max() <= 1:
        np.testing.assert_array_equal(got, np.ones(labels.shape, dtype=np.float32))


def test_border_cutoff_extremes():
    assert wm.border_cutoff(w0=1.0, tol=1.0) == 0.0
    assert wm.border_cutoff(w0=0.0) == 0.0
    assert np.isfinite(wm.border_cutoff(tol=5e-324))  # w0 / tol overflows, the cutoff does not
    assert wm.border_cutoff(sigma=1.7e308) == INF  # T beyond float64: everything is within
    assert wm.border_cutoff(sigma=1e30) == pytest.approx(1e30 * np.sqrt(2 * np.log(1e7)))


@pytest.mark.parametrize(
    "spacing, max_distance",
    [(1e-30, 1e300), (1e-30, None), (1.0, 1e300), (1e30, 1e-300), (1e-300, 2.5e-300), (1e200, None)],
)
def test_nearest_two_extremes_match_reference(spacing, max_distance):
    d1, d2 = wm.nearest_two_distances(LABELS, spacing=spacing, max_distance=max_distance)
    r1, r2 = reference_nearest_two(LABELS)  # at spacing 1, then scaled: exact in float64 below
    r1, r2 = r1 * spacing, r2 * spacing
    if max_distance is not None:
        r1[r1 > max_distance] = INF
        r2[r2 > max_distance] = INF
    np.testing.assert_allclose(d1, r1, rtol=1e-15, atol=0)
    np.testing.assert_allclose(d2, r2, rtol=1e-15, atol=0)


@pytest.mark.parametrize("spacing", [1e-30, 1e30, (1e-30, 3e-30), 1e-37, 1e36])
def test_signed_distance_extremes_match_reference(spacing):
    for mask in (MASK, ~MASK):
        if np.ndim(spacing) == 0:  # at spacing 1, then scaled: the brute force squares the spacing
            want = reference_signed_distance(mask) * spacing
        else:
            want = reference_signed_distance(mask, spacing)
        got = wm.signed_distance_map(mask, spacing=spacing)
        assert got.dtype == np.float32 and np.isfinite(got).all() and (got != 0).all()
        np.testing.assert_allclose(got, want, rtol=2**-23, atol=0)
