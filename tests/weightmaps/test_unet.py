"""unet_weight_map and border_cutoff against the brute-force reference and
against hand-computed values of the paper's formula."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from .reference import (
    reference_separate_touching,
    reference_unet_weight_map,
)
from .strategies import (
    DEGENERATE_IDS,
    DEGENERATE_LABELS,
    PROPERTY_SETTINGS,
    PROPERTY_SETTINGS_3D,
    assert_weights_match,
    label_maps,
    spacings,
)

TOLS = (1e-6, 1e-3, 1e-2)


def run_and_compare(labels, *, w0=10.0, sigma=5.0, class_weights="balanced",
                    spacing=None, border="background", tol=1e-6, classes=None,
                    separate=False):
    from unetweights.weightmaps import unet_weight_map

    labels_before = np.array(labels, copy=True)
    classes_before = None if classes is None else np.array(classes, copy=True)
    w = unet_weight_map(labels, w0=w0, sigma=sigma, class_weights=class_weights,
                        spacing=spacing, border=border, tol=tol, classes=classes,
                        separate=separate)
    np.testing.assert_array_equal(np.asarray(labels), labels_before)
    if classes is not None:
        np.testing.assert_array_equal(np.asarray(classes), classes_before)
    ref_labels = np.asarray(labels)
    if separate:
        ref_labels = reference_separate_touching(ref_labels)
    ref = reference_unet_weight_map(ref_labels, w0=w0, sigma=sigma,
                                    class_weights=class_weights, spacing=spacing,
                                    border=border, classes=classes)
    assert_weights_match(w, ref, tol)
    return w, ref


@st.composite
def unet_params(draw, labels):
    """Draw the weight-map parameters for a given label map."""
    ndim = labels.ndim
    p = dict(
        w0=draw(st.floats(0.0, 20.0)),
        sigma=draw(st.floats(0.5, 8.0)),
        tol=draw(st.sampled_from(TOLS)),
        border=draw(st.sampled_from(["background", "all"])),
        spacing=draw(spacings(ndim)),
    )
    use_classes = draw(st.booleans())
    classes = None
    if use_classes:
        seed = draw(st.integers(0, 2**32 - 1))
        rng = np.random.default_rng(seed)
        classes = rng.integers(0, 4, size=labels.shape).astype(
            draw(st.sampled_from([np.uint8, np.int32, np.int64])))
    p["classes"] = classes
    cw = draw(st.sampled_from(["balanced", None, "dict"]))
    if cw == "dict":
        keys = range(4) if classes is not None else range(2)
        cw = {k: draw(st.floats(0.0, 5.0)) for k in keys}
        if draw(st.booleans()):
            cw[17] = 3.0  # extra class not present is harmless
    p["class_weights"] = cw
    p["separate"] = (classes is None and labels.dtype != bool
                     and draw(st.booleans()))
    return p


@PROPERTY_SETTINGS
@given(data=st.data(), labels=label_maps(ndim=2))
def test_unet_matches_reference_2d(data, labels):
    params = data.draw(unet_params(labels))
    run_and_compare(labels, **params)


@PROPERTY_SETTINGS_3D
@given(data=st.data(), labels=label_maps(ndim=3))
def test_unet_matches_reference_3d(data, labels):
    params = data.draw(unet_params(labels))
    run_and_compare(labels, **params)


# ------------------------------------------------------- paper formula by hand


def _two_squares_gap3():
    labels = np.zeros((20, 20), dtype=np.int32)
    labels[5:10, 3:8] = 1  # columns 3..7
    labels[5:10, 11:16] = 2  # columns 11..15 -> gap columns 8, 9, 10
    return labels


@pytest.mark.parametrize("w0, sigma", [(10.0, 5.0), (3.0, 2.0), (20.0, 1.0)])
def test_gap_centre_matches_paper_formula(w0, sigma):
    from unetweights.weightmaps import unet_weight_map

    labels = _two_squares_gap3()
    # centre of the gap (7, 9): d1 = d2 = 2 (to columns 7 and 11)
    expected_term = w0 * math.exp(-((2 + 2) ** 2) / (2 * sigma**2))

    w = unet_weight_map(labels, w0=w0, sigma=sigma, class_weights=None)
    assert w[7, 9] == pytest.approx(1.0 + expected_term, rel=2**-22, abs=1e-6)

    # balanced: 400 pixels, 50 foreground, 350 background, 2 classes present
    w = unet_weight_map(labels, w0=w0, sigma=sigma, class_weights="balanced")
    wc_bg = 400 / (2 * 350)
    wc_fg = 400 / (2 * 50)
    assert w[7, 9] == pytest.approx(wc_bg + expected_term, rel=2**-22, abs=1e-6)
    # inside an object with border="background": only the class weight
    assert w[7, 5] == pytest.approx(wc_fg, rel=2**-22)
    # far corner: d1 + d2 is large
    far = w0 * math.exp(-((math.hypot(5, 3) + math.hypot(5, 11)) ** 2) / (2 * sigma**2))
    assert w[0, 0] == pytest.approx(wc_bg + far, rel=2**-22, abs=1e-6)


def test_gap_centre_anisotropic_spacing():
    from unetweights.weightmaps import unet_weight_map

    labels = _two_squares_gap3()
    # columns are 0.5 apart: d1 = d2 = 1, sigma in physical units
    w0, sigma = 10.0, 1.5
    w = unet_weight_map(labels, w0=w0, sigma=sigma, class_weights=None,
                        spacing=(3.0, 0.5))
    expected = 1.0 + w0 * math.exp(-((1 + 1) ** 2) / (2 * sigma**2))
    assert w[7, 9] == pytest.approx(expected, rel=2**-22, abs=1e-6)
    # the same with doubled spacing and doubled sigma is the same map
    w2 = unet_weight_map(labels, w0=w0, sigma=2 * sigma, class_weights=None,
                         spacing=(6.0, 1.0))
    np.testing.assert_allclose(w2, w, rtol=1e-6, atol=2e-6)


def test_border_all_inside_objects_by_hand():
    from unetweights.weightmaps import unet_weight_map

    labels = _two_squares_gap3()
    w0, sigma = 10.0, 3.0
    w = unet_weight_map(labels, w0=w0, sigma=sigma, class_weights=None, border="all")
    # (7, 7): inside object 1 (d1 = 0), 4 columns from object 2
    assert w[7, 7] == pytest.approx(1 + w0 * math.exp(-16 / (2 * sigma**2)), rel=2**-22)
    # (7, 3): inside object 1, 8 columns from object 2
    assert w[7, 3] == pytest.approx(1 + w0 * math.exp(-64 / (2 * sigma**2)), rel=2**-22)
    wb = unet_weight_map(labels, w0=w0, sigma=sigma, class_weights=None)
    assert wb[7, 7] == pytest.approx(1.0, rel=2**-23)


def test_w0_zero_gives_class_weights_only():
    from unetweights.weightmaps import unet_weight_map

    labels = _two_squares_gap3()
    w = unet_weight_map(labels, w0=0.0, class_weights={0: 0.25, 1: 2.0})
    expected = np.where(labels > 0, 2.0, 0.25)
    np.testing.assert_array_equal(w, expected.astype(np.float32))


# ------------------------------------------------------------------ edge cases


@pytest.mark.parametrize("border", ["background", "all"])
def test_empty_mask(border):
    labels = np.zeros((7, 9), dtype=np.int32)
    w, _ = run_and_compare(labels, border=border)
    # balanced with one present class -> w == 1 everywhere, no border term
    np.testing.assert_array_equal(w, np.ones((7, 9), dtype=np.float32))
    run_and_compare(np.zeros((3, 4, 5), dtype=np.uint8), class_weights=None, border=border)


@pytest.mark.parametrize("border", ["background", "all"])
def test_one_object_has_no_border_term(border):
    labels = np.zeros((10, 10), dtype=np.uint16)
    labels[3:6, 2:8] = 9
    w, _ = run_and_compare(labels, class_weights=None, border=border, w0=15.0, sigma=1.0)
    np.testing.assert_array_equal(w, np.ones_like(w))


@pytest.mark.parametrize("border", ["background", "all"])
def test_all_foreground(border):
    one = np.full((5, 6), 2, dtype=np.int32)
    w, _ = run_and_compare(one, border=border)
    np.testing.assert_array_equal(w, np.ones_like(w))
    two = np.ones((5, 6), dtype=np.int32)
    two[:, 3:] = 4
    run_and_compare(two, border=border, sigma=2.0)
    run_and_compare(two, border=border, sigma=2.0, spacing=(0.5, 3.0), tol=1e-3)


@pytest.mark.parametrize(
    "dtype, ids",
    [
        (np.uint16, (65535, 7, 30000)),
        (np.uint32, (4_000_000_000, 4_000_000_001, 3)),
        (np.int64, (2**40, 2**40 + 17, 1)),
        (np.uint64, (2**63 + 5, 2**63 + 1, 12)),
    ],
)
@pytest.mark.parametrize("separate", [False, True])
def test_large_ids(dtype, ids, separate):
    labels = np.zeros((10, 12), dtype=dtype)
    labels[1:3, 1:4] = ids[0]
    labels[3:6, 4:6] = ids[1]
    labels[3:6, 6:8] = ids[2]  # touching ids[1] face to face
    run_and_compare(labels, sigma=2.0, separate=separate)
    run_and_compare(labels, sigma=2.0, border="all", spacing=(1.0, 0.7), separate=separate)


def test_bool_mask():
    mask = np.zeros((9, 9), dtype=bool)
    mask[1:4, 1:4] = True
    mask[4:7, 4:7] = True  # diagonal contact only -> 2 objects
    mask[8, 0:2] = True
    run_and_compare(mask, sigma=2.0)
    run_and_compare(mask, sigma=2.0, border="all", class_weights=None)


def test_bool_mask_separate_touching_diagonal():
    from unetweights.weightmaps import unet_weight_map

    mask = np.zeros((6, 6), dtype=bool)
    mask[0:3, 0:3] = True
    mask[3:6, 3:6] = True
    before = mask.copy()
    w = unet_weight_map(mask, sigma=2.0, separate=True)
    np.testing.assert_array_equal(mask, before)
    assert w.dtype == np.float32 and w.shape == mask.shape
    # whichever of the two diagonally touching blobs gets the lower id loses
    # exactly its corner pixel: (2, 2) or (3, 3) becomes background
    from .reference import reference_instances

    inst = reference_instances(mask)
    candidates = []
    swapped = inst.copy()
    swapped[inst == 1] = 2
    swapped[inst == 2] = 1
    for lab in (inst, swapped):
        carved = reference_separate_touching(lab)
        candidates.append(reference_unet_weight_map(carved, sigma=2.0))
    errs = [np.abs(w.astype(np.float64) - c) <= 1e-6 + 2**-23 * np.abs(c) for c in candidates]
    assert any(e.all() for e in errs)


def test_strided_and_fortran():
    rng = np.random.default_rng(1)
    base = np.zeros((24, 36), dtype=np.int32)
    for i in range(1, 9):
        r, c = rng.integers(0, 22), rng.integers(0, 33)
        base[r : r + 3, c : c + 4] = i
    view = base[::2, ::3]
    run_and_compare(view, sigma=1.5)
    run_and_compare(view, sigma=1.5, separate=True, border="all")
    fort = np.asfortranarray(base)
    run_and_compare(fort, sigma=3.0, spacing=(1.0, 0.5))
    run_and_compare(fort, sigma=3.0, separate=True)
    classes = np.asfortranarray((base % 3).astype(np.int64))
    run_and_compare(fort, sigma=3.0, classes=classes, class_weights={0: 1, 1: 2, 2: 3})


@pytest.mark.parametrize(
    "labels",
    DEGENERATE_LABELS,
    ids=DEGENERATE_IDS,
)
@pytest.mark.parametrize("border", ["background", "all"])
def test_degenerate_shapes(labels, border):
    run_and_compare(labels, border=border, sigma=1.0)
    run_and_compare(labels, border=border, sigma=3.0, class_weights=None, spacing=0.5)


@pytest.mark.parametrize("spacing", [(2, 1, 1), (0.5, 1, 3)])
@pytest.mark.parametrize("border", ["background", "all"])
def test_3d_anisotropic(spacing, border):
    labels = np.zeros((6, 9, 10), dtype=np.int32)
    labels[0:2, 0:3, 0:3] = 1
    labels[3:6, 5:9, 1:4] = 2
    labels[2, 2, 7:10] = 7
    labels[5, 0, 9] = 3
    run_and_compare(labels, spacing=spacing, border=border, sigma=2.5)
    run_and_compare(labels, spacing=spacing, border=border, sigma=6.0, tol=1e-2)


def test_float_integral_labels_equal_int():
    from unetweights.weightmaps import unet_weight_map

    labels = _two_squares_gap3()
    w_int = unet_weight_map(labels)
    for dt in (np.float32, np.float64):
        np.testing.assert_array_equal(unet_weight_map(labels.astype(dt)), w_int)


def test_scalar_spacing_broadcast():
    from unetweights.weightmaps import unet_weight_map

    labels = _two_squares_gap3()
    np.testing.assert_array_equal(
        unet_weight_map(labels, spacing=0.7), unet_weight_map(labels, spacing=(0.7, 0.7))
    )


def test_large_sigma_beyond_image():
    labels = np.zeros((16, 16), dtype=np.int32)
    labels[0, 0] = 1
    labels[15, 15] = 2
    labels[0, 15] = 3
    run_and_compare(labels, sigma=8.0, w0=20.0, border="all")
    run_and_compare(labels, sigma=0.5, w0=20.0)


# --------------------------------------------------------------- border_cutoff


@pytest.mark.parametrize("w0, sigma, tol", [(10.0, 5.0, 1e-6), (3.0, 0.7, 1e-3),
                                             (20.0, 8.0, 1e-2), (1.0, 2.0, 0.5)])
def test_border_cutoff_term_equals_tol(w0, sigma, tol):
    from unetweights.weightmaps import border_cutoff

    T = border_cutoff(w0=w0, sigma=sigma, tol=tol)
    assert isinstance(T, float)
    assert T == pytest.approx(sigma * math.sqrt(2 * math.log(w0 / tol)), rel=1e-12)
    assert math.isclose(w0 * math.exp(-(T**2) / (2 * sigma**2)), tol, rel_tol=1e-9)
    beyond = T * (1 + 1e-6)
    assert w0 * math.exp(-(beyond**2) / (2 * sigma**2)) < tol


def test_border_cutoff_default_and_linear_in_sigma():
    from unetweights.weightmaps import border_cutoff

    assert border_cutoff() == pytest.approx(5.0 * math.sqrt(2 * math.log(10.0 / 1e-6)))
    for s in (0.5, 1.0, 3.3, 8.0):
        assert border_cutoff(7.0, 2 * s, 1e-4) == pytest.approx(
            2 * border_cutoff(7.0, s, 1e-4), rel=1e-12)
        assert border_cutoff(7.0, s, 1e-4) == pytest.approx(
            s * border_cutoff(7.0, 1.0, 1e-4), rel=1e-12)


@pytest.mark.parametrize("w0, tol", [(0.0, 1e-6), (1e-6, 1e-6), (0.5, 1.0)])
def test_border_cutoff_zero_when_w0_not_above_tol(w0, tol):
    from unetweights.weightmaps import border_cutoff

    assert border_cutoff(w0=w0, sigma=3.0, tol=tol) == 0.0


@pytest.mark.parametrize(
    "shape, n, radius, spacing",
    [
        ((128, 128), 30, 9.0, (1.0, 1.0)),
        ((16, 32, 32), 40, 5.0, (1.0, 1.0, 1.0)),  # crowded volume
        ((12, 40, 40), 30, 6.0, (2.0, 1.0, 1.0)),
    ],
)
def test_realistic_touching_nuclei(shape, n, radius, spacing):
    """Touching nuclei bigger than the property tests, 2D and anisotropic 3D: equal to the reference."""
    from unetweights import unet_weight_map
    from unetweights.synthetic import touching_nuclei

    labels = touching_nuclei(shape, n, radius=radius, spacing=spacing, seed=7)
    for border in ("background", "all"):
        run_and_compare(labels, spacing=spacing, border=border)


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint16])
def test_peak_memory_per_voxel(dtype):
    """Issue 24: at most 32 bytes per voxel, the output included (tracemalloc sees numpy's arrays).

    The kernel's ids are int32 (its label scratch 8 B/voxel, freed before w_c is allocated); an
    int32 mask is read without a copy, other dtypes cost a 4-byte copy."""
    import tracemalloc

    from unetweights import unet_weight_map
    from unetweights.synthetic import touching_nuclei

    labels = touching_nuclei((24, 48, 64), 12, radius=6.0, seed=2).astype(dtype)
    tracemalloc.start()
    try:
        weights = unet_weight_map(labels, spacing=(2.0, 1.0, 1.0))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert weights.shape == labels.shape
    assert peak / labels.size <= 32.0, f"{peak / labels.size:.1f} B/voxel"
