"""tubed_skeleton against a brute-force reference: scikit-image's skeleton of each class on the whole
image, and the tube by an explicit minimum over skeleton pixels of the physical distance, in float64."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import ndimage
from skimage.morphology import dilation, skeletonize

from unetweights.weightmaps import tubed_skeleton

from .reference import reference_spacing


def _pairwise(points, others, sampling):
    """Physical distance between every pixel index and every other (float64, rows: points).

    The index difference is scaled, not the difference of scaled positions, whose rounding would
    make equal distances unequal (5·0.8 − 4·0.8 ≠ 0.8).
    """
    steps = (points[:, None, :] - others[None, :, :]) * sampling
    return np.sqrt((steps**2).sum(axis=-1))


def _reference_skeleton(region, sampling):
    """skimage's skeleton of the whole image; a 26- (8-) connected component it deletes entirely
    gets its pixels of largest distance to the background, the image border included."""
    skeleton = skeletonize(region).astype(bool)
    components, count = ndimage.label(region, structure=np.ones((3,) * region.ndim))
    padded = np.pad(region, 1)
    depth = np.zeros(padded.shape)
    depth[padded] = _pairwise(np.argwhere(padded), np.argwhere(~padded), sampling).min(axis=1)
    depth = depth[(slice(1, -1),) * region.ndim]
    for c in range(1, count + 1):
        component = components == c
        if not skeleton[component].any():
            skeleton |= component & (depth == depth[component].max())
    return skeleton


def reference_tubed_skeleton(mask, radius, spacing=None):
    """(tube, distance to the class's skeleton (inf off the class), float64) of a bool or class map."""
    mask = np.asarray(mask)
    sampling = np.asarray(reference_spacing(spacing, mask.ndim))
    tube = np.zeros(mask.shape, dtype=mask.dtype)
    distance = np.full(mask.shape, np.inf)
    coords = np.argwhere(np.ones(mask.shape, dtype=bool))
    for value in np.unique(mask[mask != 0]):
        region = mask == value
        skeleton = _reference_skeleton(region, sampling)
        flat = region.reshape(-1)
        distance.reshape(-1)[flat] = _pairwise(coords[flat], coords[skeleton.reshape(-1)], sampling).min(axis=1)
        tube[region & (distance <= radius)] = value
    return tube, distance


def _check(mask, radius, spacing=None, **kwargs):
    before = mask.copy()
    got = tubed_skeleton(mask, radius=radius, spacing=spacing, **kwargs)
    np.testing.assert_array_equal(mask, before)
    want, distance = reference_tubed_skeleton(mask, radius, spacing)
    assert got.shape == mask.shape and got.dtype == want.dtype
    # At a distance within rounding of the radius, two exact computations may round either way.
    tie = np.abs(distance - radius) <= 1e-12 * max(radius, 1.0)
    np.testing.assert_array_equal(got[~tie], want[~tie])
    return got


def _spacing(ndim):
    value = st.floats(0.3, 3.0)
    return st.one_of(st.none(), value, st.tuples(*[value] * ndim))


@st.composite
def masks(draw, ndim, max_side):
    shape = draw(hnp.array_shapes(min_dims=ndim, max_dims=ndim, min_side=1, max_side=max_side))
    dtype = draw(st.sampled_from([np.bool_, np.uint8, np.int32, np.uint16]))
    if dtype == np.bool_:
        return draw(hnp.arrays(np.bool_, shape))
    # Blocks of a few classes, so that classes touch and have insides to thin.
    coarse = draw(hnp.arrays(dtype, tuple(-(-n // 2) for n in shape), elements=st.integers(0, 3)))
    block = np.kron(coarse, np.ones((2,) * ndim, dtype=dtype))
    return np.ascontiguousarray(block[tuple(slice(0, n) for n in shape)])


@settings(max_examples=60, deadline=None)
@given(mask=masks(2, 14), radius=st.floats(0.0, 4.0), spacing=_spacing(2))
def test_2d_equals_the_brute_force_reference(mask, radius, spacing):
    _check(mask, radius, spacing)


@settings(max_examples=40, deadline=None)
@given(mask=masks(3, 7), radius=st.floats(0.0, 3.0), spacing=_spacing(3))
def test_3d_equals_the_brute_force_reference(mask, radius, spacing):
    _check(mask, radius, spacing)


def _tubes_and_blobs():
    """A 2D bool mask of thin, branching and thick structures."""
    yy, xx = np.mgrid[:40, :48]
    mask = (np.abs(yy - 0.4 * xx - 8) < 2.5) | (np.abs(xx - 30) < 2) | ((yy - 30) ** 2 + (xx - 10) ** 2 < 36)
    mask[:, 44:] = False
    return mask


def test_2d_radius_2_is_the_authors_two_cross_dilations():
    """With unit spacing in 2D the radius-2 disc is two dilations by the 3x3 cross (skimage's
    default footprint), which is how the authors' code makes its tube, kept inside the mask."""
    mask = _tubes_and_blobs()
    want = dilation(dilation(skeletonize(mask))) & mask
    np.testing.assert_array_equal(tubed_skeleton(mask, radius=2.0), want)
    np.testing.assert_array_equal(tubed_skeleton(mask), want)  # the default radius
    np.testing.assert_array_equal(tubed_skeleton(mask.astype(np.uint8)), want.astype(np.uint8))


@pytest.mark.parametrize("ndim", [2, 3])
def test_radius_0_is_the_skeleton_inside_the_mask(ndim):
    mask = _tubes_and_blobs()
    if ndim == 3:
        mask = np.stack([mask] * 5)
        mask[0] = mask[-1] = False
    skeleton = skeletonize(mask)
    assert skeleton.any() and not (skeleton & ~mask).any()
    np.testing.assert_array_equal(tubed_skeleton(mask, radius=0.0), skeleton)
    np.testing.assert_array_equal(_check(mask, 0.0), skeleton)


def test_anisotropic_spacing_widens_the_tube_along_the_fine_axis():
    mask = np.zeros((11, 30), dtype=bool)
    mask[2:9, :] = True  # a bar seven rows high: its centre line is row 5 away from the ends
    middle = slice(8, 22)
    iso = tubed_skeleton(mask, radius=1.0)
    fine_rows = tubed_skeleton(mask, radius=1.0, spacing=(0.5, 1.0))
    assert iso[:, middle].sum(axis=0).tolist() == [3] * 14  # rows 4..6
    assert fine_rows[:, middle].sum(axis=0).tolist() == [5] * 14  # rows 3..7: two rows are 1.0 away
    _check(mask, 1.0, (0.5, 1.0))
    _check(mask, 2.5, (3.0, 0.7))


def test_class_map_keeps_ids_and_each_class_gets_its_own_centre_line():
    mask = np.zeros((20, 30), dtype=np.uint16)
    mask[2:18, 2:15] = 7
    mask[2:18, 15:28] = 3  # touches class 7 along a whole side
    got = _check(mask, 1.5)
    assert got.dtype == np.uint16 and set(np.unique(got)) == {0, 3, 7}
    # Each class's tube lies inside that class: the classes' tubes cannot overlap.
    assert np.all((got == 0) | (got == mask))
    # The authors' union skeleton is one centre line across both classes; here each has its own.
    union = skeletonize(mask > 0)
    assert not np.array_equal(got > 0, dilation(union) & (mask > 0))
    for k in (3, 7):
        np.testing.assert_array_equal(got == k, tubed_skeleton(mask == k, radius=1.5))


def test_instance_ids_any_size_and_no_background():
    base = np.zeros((12, 16), dtype=np.int64)
    base[1:6, 1:15] = 1
    base[7:11, 2:14] = 2
    huge = np.where(base == 1, 2**63 + 5, np.where(base == 2, 2**62, 0)).astype(np.uint64)
    got = _check(huge, 1.0)
    np.testing.assert_array_equal(got == 2**63 + 5, tubed_skeleton(base == 1, radius=1.0))
    full = np.where(base == 1, 4, 9).astype(np.int32)  # every pixel is in a class
    got = _check(full, 1.0)
    assert set(np.unique(got)) == {0, 4, 9}
    whole = np.array(base, dtype=np.float32)
    assert tubed_skeleton(whole).dtype == np.int64
    np.testing.assert_array_equal(tubed_skeleton(whole), tubed_skeleton(base))


@pytest.mark.parametrize("shape", [(8, 9), (4, 5, 6)])
@pytest.mark.parametrize("dtype", [bool, np.uint8])
def test_empty_and_full_masks(shape, dtype):
    empty = tubed_skeleton(np.zeros(shape, dtype=dtype), radius=3.0)
    assert empty.dtype == dtype and not empty.any()
    full = np.ones(shape, dtype=dtype)
    got = _check(full, 1.0, spacing=(0.7,) * len(shape))
    assert got.any(), "the border counts as background: a full mask has a centre line"


def test_objects_3d_thinning_deletes_get_their_deepest_voxels():
    """scikit-image's Lee thinning deletes some even-thickness blocks entirely (its issue #3757)."""
    volume = np.zeros((8, 12, 14), dtype=bool)
    volume[1:3, 1:3, 1:11] = True  # a 2x2x10 rod
    volume[3:7, 6:10, 6:10] = True  # a 4x4x4 cube, which touches no other object
    components, _ = ndimage.label(volume, np.ones((3, 3, 3)))
    thinned = skeletonize(volume)
    assert not thinned.any(), "the premise: skimage keeps nothing of either"
    got = tubed_skeleton(volume, radius=0.0)
    rod, cube = components == components[1, 1, 1], components == components[4, 7, 7]
    # Every rod voxel touches the background (depth 1): the whole rod; the cube's centre 2x2x2.
    np.testing.assert_array_equal(got & rod, rod)
    centre = np.zeros_like(volume)
    centre[4:6, 7:9, 7:9] = True
    np.testing.assert_array_equal(got & cube, centre)
    _check(volume, 0.0)
    _check(volume, 1.5, spacing=(2.0, 1.0, 0.8))


@pytest.mark.parametrize("axis", [0, -1])
def test_channel_axis_each_channel_on_its_own(axis):
    mask = _tubes_and_blobs()
    other = np.zeros_like(mask)
    other[5:30, 5:20] = True
    channels = np.stack([mask, other, np.zeros_like(mask)], axis=axis).astype(np.uint8)
    got = tubed_skeleton(channels, radius=1.5, spacing=(1.0, 0.6), channel_axis=axis)
    assert got.dtype == bool and got.shape == channels.shape
    for k, channel in enumerate((mask, other, np.zeros_like(mask))):
        want, _ = reference_tubed_skeleton(channel, 1.5, (1.0, 0.6))
        np.testing.assert_array_equal(np.take(got, k, axis=axis), want)


def test_inputs_are_never_modified_whatever_their_layout():
    mask = np.asfortranarray(_tubes_and_blobs().astype(np.int32) * 5)
    strided = np.repeat(mask, 2, axis=1)[:, ::2]
    for arr in (mask, strided, mask > 0):
        before = arr.copy()
        _check(arr, 2.0, (1.0, 0.5))
        np.testing.assert_array_equal(arr, before)


@pytest.mark.parametrize(
    "kwargs, error, start",
    [
        (dict(mask=np.zeros(5, dtype=bool)), ValueError, "mask must have 2 or 3 dimensions"),
        (dict(mask=np.zeros((0, 4), dtype=bool)), ValueError, "mask must not be empty"),
        (dict(mask=-np.ones((3, 3), dtype=np.int32)), ValueError, "mask must be non-negative"),
        (dict(mask=np.full((3, 3), 0.5)), ValueError, "mask must hold whole numbers"),
        (dict(mask=np.full((3, 3), "a")), TypeError, "mask must be a bool, integer"),
        (dict(mask=np.full((2, 3, 3), 2), channel_axis=0), ValueError, "mask must hold binary channels"),
        (dict(mask=np.ones((2, 3, 3, 3, 3), dtype=bool), channel_axis=0), ValueError, "mask must have 3 or 4"),
        (dict(mask=np.ones((3, 3), dtype=bool), radius=-0.5), ValueError, "radius must be >= 0"),
        (dict(mask=np.ones((3, 3), dtype=bool), radius=float("inf")), ValueError, "radius must be a finite"),
        (dict(mask=np.ones((3, 3), dtype=bool), radius="2"), TypeError, "radius must be a real number"),
        (dict(mask=np.ones((3, 3), dtype=bool), spacing=(1.0, 0.0)), ValueError, "spacing entries must be"),
        (dict(mask=np.ones((3, 3), dtype=bool), spacing=(1.0, 1.0, 1.0)), ValueError, "spacing must have one entry"),
    ],
)
def test_bad_input(kwargs, error, start):
    with pytest.raises(error, match=f"^{start}"):
        tubed_skeleton(**kwargs)
