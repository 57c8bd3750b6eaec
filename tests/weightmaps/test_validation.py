"""Public API surface, input validation and input immutability."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

PUBLIC = [
    "border_cutoff",
    "nearest_two_distances",
    "unet_weight_map",
    "class_balance_weights",
    "label_instances",
    "separate_touching",
    "signed_distance_map",
    "tubed_skeleton",
]


@pytest.mark.parametrize("name", PUBLIC)
def test_public_api_exported(name):
    import unetweights
    import unetweights.weightmaps as wm

    assert callable(getattr(wm, name))
    assert getattr(unetweights, name) is getattr(wm, name)


def test_import_does_not_pull_torch():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    code = "import unetweights.weightmaps, sys; assert 'torch' not in sys.modules, 'torch imported'"
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr


def _labels():
    labels = np.zeros((8, 9), dtype=np.int32)
    labels[1:3, 1:4] = 1
    labels[5:7, 4:8] = 2
    return labels


def _nearest(labels, **kw):
    from unetweights.weightmaps import nearest_two_distances

    return nearest_two_distances(labels, **kw)


def _unet(labels, **kw):
    from unetweights.weightmaps import unet_weight_map

    return unet_weight_map(labels, **kw)


BOTH = pytest.mark.parametrize("fn", [_nearest, _unet], ids=["nearest_two", "unet"])


# ----------------------------------------------------------------- labels


@BOTH
@pytest.mark.parametrize(
    "bad",
    [
        np.array([[0.0, 1.5], [2.0, 0.0]]),
        np.array([[0.0, 1.0], [np.nan, 0.0]]),
        np.array([[0, -1], [2, 0]], dtype=np.int32),
        np.array([[0.0, -2.0], [1.0, 0.0]]),
        np.zeros((0, 5), dtype=np.int32),
        np.zeros((3, 0, 2), dtype=np.int32),
        np.array([0, 1, 1, 0, 2], dtype=np.int32),
        np.zeros((2, 2, 2, 2), dtype=np.int32),
    ],
    ids=["fraction", "nan", "negative-int", "negative-float", "size0-2d", "size0-3d",
         "1d", "4d"],
)
def test_bad_label_values(fn, bad):
    with pytest.raises(ValueError, match="labels"):
        fn(bad)


@BOTH
@pytest.mark.parametrize(
    "bad",
    [
        np.array([[0, 1], [1, 0]], dtype=np.complex128),
        np.array([["a", "b"], ["c", "d"]]),
        np.array([[0, 1], [1, None]], dtype=object),
    ],
    ids=["complex", "str", "object"],
)
def test_bad_label_dtypes(fn, bad):
    with pytest.raises(TypeError, match="labels"):
        fn(bad)


@BOTH
@pytest.mark.parametrize(
    "dtype",
    [np.uint8, np.uint16, np.uint32, np.uint64, np.int8, np.int16, np.int32, np.int64,
     np.float32, np.float64],
)
def test_all_integer_and_integral_float_dtypes_agree(fn, dtype):
    base = _labels()
    ref = fn(base)
    got = fn(base.astype(dtype))
    if isinstance(ref, tuple):
        for a, b in zip(got, ref):
            np.testing.assert_array_equal(a, b)
    else:
        np.testing.assert_array_equal(got, ref)


# ---------------------------------------------------------------- spacing


@BOTH
@pytest.mark.parametrize(
    "spacing",
    [(1.0,), (1.0, 1.0, 1.0), (0.0, 1.0), (1.0, -2.0), (np.nan, 1.0), (1.0, np.inf),
     0.0, -1.0, np.nan, np.inf],
)
def test_bad_spacing(fn, spacing):
    with pytest.raises(ValueError, match="spacing"):
        fn(_labels(), spacing=spacing)


@BOTH
def test_bad_spacing_3d(fn):
    labels = np.zeros((3, 4, 5), dtype=np.int32)
    labels[0, 0, 0] = 1
    labels[2, 3, 4] = 2
    with pytest.raises(ValueError, match="spacing"):
        fn(labels, spacing=(1.0, 1.0))
    with pytest.raises(ValueError, match="spacing"):
        fn(labels, spacing=(1.0, 1.0, 0.0))


@BOTH
def test_scalar_and_list_spacing_accepted(fn):
    a = fn(_labels(), spacing=1.7)
    b = fn(_labels(), spacing=[1.7, 1.7])
    c = fn(_labels(), spacing=np.array([1.7, 1.7]))
    for x, y in ((a, b), (a, c)):
        if isinstance(x, tuple):
            for u, v in zip(x, y):
                np.testing.assert_array_equal(u, v)
        else:
            np.testing.assert_array_equal(x, y)


# ------------------------------------------------------------ scalars


@pytest.mark.parametrize(
    "kw, name",
    [
        ({"sigma": 0.0}, "sigma"),
        ({"sigma": -1.0}, "sigma"),
        ({"sigma": np.nan}, "sigma"),
        ({"sigma": np.inf}, "sigma"),
        ({"w0": -0.1}, "w0"),
        ({"w0": np.nan}, "w0"),
        ({"w0": np.inf}, "w0"),
        ({"tol": 0.0}, "tol"),
        ({"tol": -1e-6}, "tol"),
        ({"border": "inside"}, "border"),
        ({"class_weights": "uniform"}, "class_weights"),
        ({"classes": np.zeros((8, 8), dtype=np.int32)}, "classes"),
        ({"classes": np.zeros((9, 8), dtype=np.int32)}, "classes"),
    ],
)
def test_bad_unet_arguments(kw, name):
    with pytest.raises(ValueError, match=name):
        _unet(_labels(), **kw)


@pytest.mark.parametrize("md", [0.0, -1.0, np.nan, -np.inf])
def test_bad_max_distance(md):
    with pytest.raises(ValueError, match="max_distance"):
        _nearest(_labels(), max_distance=md)


def test_w0_zero_is_valid():
    w = _unet(_labels(), w0=0.0, class_weights=None)
    np.testing.assert_array_equal(w, np.ones((8, 9), dtype=np.float32))


# ---------------------------------------------------------- immutability


@pytest.mark.parametrize("layout", ["C", "F", "strided"])
@pytest.mark.parametrize("dtype", [np.int32, np.uint16, np.float64, bool])
def test_inputs_never_modified(layout, dtype):
    import unetweights.weightmaps as wm

    base = np.zeros((12, 14), dtype=np.int64)
    base[0:4, 0:4] = 3
    base[4:8, 4:8] = 1  # diagonal contact with 3
    base[4:8, 8:12] = 2  # face contact with 1
    base[10:12, 0:3] = 5
    arr = base.astype(dtype)
    if layout == "F":
        arr = np.asfortranarray(arr)
    elif layout == "strided":
        arr = np.zeros((24, 28), dtype=dtype)
        arr[::2, ::2] = base.astype(dtype)
        arr = arr[::2, ::2]
    snapshot = arr.copy()
    classes = np.asfortranarray((base % 2).astype(np.int32))
    classes_snapshot = classes.copy()
    wm.nearest_two_distances(arr)
    wm.nearest_two_distances(arr, spacing=(0.5, 2.0), max_distance=3.0)
    wm.unet_weight_map(arr)
    wm.unet_weight_map(arr, separate=True, border="all")
    wm.unet_weight_map(arr, classes=classes, class_weights={0: 1.0, 1: 2.0})
    wm.tubed_skeleton(arr, radius=1.5, spacing=(0.5, 2.0))
    if dtype is not np.float64:
        wm.label_instances(arr)
        wm.class_balance_weights(arr)
        if dtype is bool:
            wm.signed_distance_map(arr)
            wm.signed_distance_map(arr, spacing=(1.0, 3.0))
        else:
            wm.separate_touching(arr)
    np.testing.assert_array_equal(arr, snapshot)
    assert arr.dtype == snapshot.dtype
    np.testing.assert_array_equal(classes, classes_snapshot)
