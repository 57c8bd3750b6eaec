"""signed_distance_map against a brute-force pairwise-distance reference."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from .reference import reference_signed_distance

FAST = settings(max_examples=50, deadline=None)


def _sp(ndim):
    f = st.floats(0.3, 3.0)
    return st.one_of(st.none(), f, st.tuples(*([f] * ndim)))


@st.composite
def spatial_masks(draw, ndim):
    shape = draw(hnp.array_shapes(min_dims=ndim, max_dims=ndim, min_side=1,
                                  max_side=12 if ndim == 2 else 6))
    dtype = draw(st.sampled_from([np.bool_, np.uint8, np.int32]))
    if dtype == np.bool_:
        return draw(hnp.arrays(np.bool_, shape))
    return draw(hnp.arrays(dtype, shape, elements=st.integers(0, 1)))


def _check(mask, spacing=None, channel_axis=None):
    from unetweights.weightmaps import signed_distance_map

    before = mask.copy()
    kwargs = {}
    if spacing is not None:
        kwargs["spacing"] = spacing
    if channel_axis is not None:
        kwargs["channel_axis"] = channel_axis
    phi = signed_distance_map(mask, **kwargs)
    np.testing.assert_array_equal(mask, before)
    assert phi.dtype == np.float32 and phi.shape == mask.shape
    if channel_axis is None:
        ref = reference_signed_distance(mask, spacing)
    else:
        moved = np.moveaxis(mask, channel_axis, 0)
        ref = np.moveaxis(
            np.stack([reference_signed_distance(c, spacing) for c in moved]), 0, channel_axis)
    np.testing.assert_allclose(phi, ref, rtol=2**-22, atol=1e-6)
    return phi, ref


@FAST
@given(mask=spatial_masks(2), spacing=_sp(2))
def test_signed_distance_2d(mask, spacing):
    phi, ref = _check(mask, spacing)
    fg = mask.astype(bool)
    if fg.any() and not fg.all():
        # sign convention and |phi| >= min spacing on a mixed mask
        assert (phi[fg] < 0).all() and (phi[~fg] > 0).all()
        sp = 1.0 if spacing is None else np.min(spacing)
        assert (np.abs(phi) >= np.float32(sp) * (1 - 1e-6)).all()


@settings(max_examples=30, deadline=None)
@given(mask=spatial_masks(3), spacing=_sp(3))
def test_signed_distance_3d(mask, spacing):
    _check(mask, spacing)


@settings(max_examples=30, deadline=None)
@given(data=st.data(), ndim=st.sampled_from([2, 3]), n_channels=st.integers(1, 3))
def test_signed_distance_channels_first(data, ndim, n_channels):
    first = data.draw(spatial_masks(ndim)).astype(bool)
    shape = first.shape
    chans = [first] + [
        data.draw(hnp.arrays(np.bool_, shape)) for _ in range(n_channels - 1)]
    mask = np.stack(chans)
    _check(mask, data.draw(_sp(ndim)), channel_axis=0)


def test_signed_distance_channels_last_and_empty_channel():
    mask = np.zeros((5, 6, 3), dtype=bool)
    mask[1:3, 2:5, 0] = True
    mask[..., 1] = True  # all foreground -> 0
    # channel 2 all background -> 0
    phi, _ = _check(mask, spacing=(1.5, 0.5), channel_axis=-1)
    assert (phi[..., 1] == 0).all() and (phi[..., 2] == 0).all()
    assert (phi[..., 0] != 0).all()


def test_signed_distance_by_hand():
    from unetweights.weightmaps import signed_distance_map

    mask = np.zeros((1, 6), dtype=bool)
    mask[0, 2:4] = True
    phi = signed_distance_map(mask)
    np.testing.assert_array_equal(phi[0], np.array([2, 1, -1, -1, 1, 2], dtype=np.float32))
    phi = signed_distance_map(mask, spacing=(4.0, 0.25))
    np.testing.assert_allclose(phi[0], [0.5, 0.25, -0.25, -0.25, 0.25, 0.5])


@pytest.mark.parametrize("fill", [0, 1])
def test_uniform_mask_is_zero(fill):
    from unetweights.weightmaps import signed_distance_map

    for shape in [(4, 5), (2, 3, 4)]:
        phi = signed_distance_map(np.full(shape, fill, dtype=np.uint8))
        assert phi.dtype == np.float32
        np.testing.assert_array_equal(phi, np.zeros(shape, dtype=np.float32))


def test_signed_distance_fortran_and_strided():
    rng = np.random.default_rng(3)
    base = rng.random((12, 15)) < 0.3
    _check(np.asfortranarray(base), spacing=(0.5, 2.0))
    _check(base[::2, ::3])
