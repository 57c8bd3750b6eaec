"""Hypothesis strategies and comparison helpers shared by the weightmaps tests."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

PROPERTY_SETTINGS = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=False,
)
PROPERTY_SETTINGS_3D = settings(PROPERTY_SETTINGS, max_examples=40)

# Tiny and one-pixel-wide images: 1x1 with and without an object, 1xN, Nx1, and a 4x1x1 volume.
DEGENERATE_LABELS = [
    np.array([[0]], dtype=np.int32),
    np.array([[4]], dtype=np.int32),
    np.array([[0, 1, 0, 0, 2, 2, 0, 3]], dtype=np.int32),
    np.array([[0], [1], [0], [0], [2], [0], [0]], dtype=np.uint8),
    np.array([[1, 2]], dtype=np.int64),
    np.array([[[0]], [[5]], [[0]], [[6]]], dtype=np.int32),
]
DEGENERATE_IDS = ["1x1-empty", "1x1-object", "1xN", "Nx1", "1x2-two", "4x1x1"]

_ID_DTYPES = {
    "consecutive": (np.uint8, np.int16, np.uint16, np.int32, np.int64),
    "random": (np.uint16, np.int32, np.uint32, np.int64),
    "large": (np.uint32, np.int64, np.uint64),
}


def shapes(ndim):
    if ndim == 2:
        return st.tuples(st.integers(1, 24), st.integers(1, 24))
    return st.tuples(st.integers(1, 8), st.integers(1, 12), st.integers(1, 12))


def _draw_ids(rng, n, id_kind, dtype):
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if id_kind == "consecutive":
        return np.arange(1, n + 1, dtype=np.int64)
    if id_kind == "random":
        return rng.choice(np.arange(1, 1001), size=n, replace=False).astype(np.int64)
    hi = {np.dtype(np.uint32): 2**32 - 1, np.dtype(np.int64): 2**40,
          np.dtype(np.uint64): 2**62}[np.dtype(dtype)]
    ids = set()
    while len(ids) < n:
        ids.add(int(rng.integers(1, hi, endpoint=True)))
    return np.array(sorted(ids), dtype=np.uint64)


@st.composite
def label_maps(draw, ndim=2, allow_bool=True):
    """Random small instance maps: sparse single pixels, overlapping boxes
    (touching / crowded objects) or per-pixel noise (fragmented objects),
    with random ids and integer dtypes (optionally a bool mask)."""
    shape = draw(shapes(ndim))
    kind = draw(st.sampled_from(["boxes", "pixels", "sparse"]))
    n_obj = draw(st.integers(0, 12))
    id_kinds = ["consecutive", "random", "large"] + (["bool"] if allow_bool else [])
    id_kind = draw(st.sampled_from(id_kinds))
    dtype = (np.bool_ if id_kind == "bool"
             else draw(st.sampled_from(_ID_DTYPES[id_kind])))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    if id_kind == "consecutive" and np.dtype(dtype) == np.uint8:
        n_obj = min(n_obj, 255)
    ids = _draw_ids(rng, n_obj, "consecutive" if id_kind == "bool" else id_kind, dtype)
    lab = np.zeros(shape, dtype=np.uint64)
    if n_obj:
        if kind == "boxes":
            for i in ids:
                start = [int(rng.integers(0, s)) for s in shape]
                size = [int(rng.integers(1, max(1, s // 2) + 1)) for s in shape]
                sl = tuple(slice(a, a + b) for a, b in zip(start, size))
                lab[sl] = i
        elif kind == "pixels":
            p = rng.uniform(0.05, 0.9)
            fg = rng.random(shape) < p
            lab[fg] = rng.choice(ids, size=int(fg.sum()))
        else:
            for i in ids:
                idx = tuple(int(rng.integers(0, s)) for s in shape)
                lab[idx] = i
    return lab.astype(dtype)


def spacings(ndim):
    f = st.floats(0.3, 3.0)
    return st.one_of(st.none(), f, st.tuples(*([f] * ndim)))


def assert_distances_match(got, ref, max_distance, name):
    """Compare an implementation distance map against the reference under
    the max_distance contract (equal within 1e-9 where ref <= max_distance,
    inf where ref > max_distance)."""
    got = np.asarray(got)
    assert got.shape == ref.shape, f"{name}: shape {got.shape} != {ref.shape}"
    assert got.dtype == np.float64, f"{name}: dtype {got.dtype}"
    assert not np.isnan(got).any(), f"{name}: NaN at {np.argwhere(np.isnan(got))[:5]}"
    md = np.inf if max_distance is None else float(max_distance)
    eps = 1e-9
    inside = np.isfinite(ref) & (ref <= md - eps)
    beyond = ref > md + eps  # includes ref == inf
    band = ~inside & ~beyond
    with np.errstate(invalid="ignore"):
        close = np.abs(got - ref) <= eps
    bad = inside & ~close
    bad |= beyond & ~np.isposinf(got)
    bad |= band & ~(np.isposinf(got) | close)
    if bad.any():
        idx = np.argwhere(bad)[:8]
        details = ", ".join(
            f"{tuple(int(x) for x in i)}: got {got[tuple(i)]!r} ref {ref[tuple(i)]!r}"
            for i in idx
        )
        raise AssertionError(
            f"{name} mismatch at {int(bad.sum())} pixel(s) (max_distance={max_distance}): {details}"
        )


def assert_weights_match(got, ref, tol, name="w"):
    """|w - ref| <= tol + 2**-23 |ref| everywhere; float32 of the right shape."""
    got = np.asarray(got)
    assert got.dtype == np.float32, f"{name}: dtype {got.dtype}"
    assert got.shape == ref.shape, f"{name}: shape {got.shape} != {ref.shape}"
    err = np.abs(got.astype(np.float64) - ref)
    bound = tol + 2.0**-23 * np.abs(ref)
    bad = ~(err <= bound)
    if bad.any():
        idx = np.argwhere(bad)[:8]
        details = ", ".join(
            f"{tuple(int(x) for x in i)}: got {float(got[tuple(i)])!r} ref {ref[tuple(i)]!r}"
            for i in idx
        )
        raise AssertionError(
            f"{name}: {int(bad.sum())} pixel(s) outside tolerance (tol={tol}, "
            f"max err {float(err.max())!r}): {details}"
        )
