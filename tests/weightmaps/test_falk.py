"""falk_weight_map against the plugin's formula (Falk et al. 2019), written out with the
per-object reference distances."""

import math

import numpy as np
import pytest

from unetweights import falk_weight_map, separate_touching
from unetweights.synthetic import touching_nuclei

from .reference import reference_nearest_two


def _formula(labels, lam=50.0, sigma=6.0, v_bal=0.1, sigma_bal=10.0, spacing=None):
    """Pixel by pixel, in float64: 1 on objects; on background v_bal + (1 - v_bal) e^{-d1²/2σ_bal²}
    + λ e^{-(d1 + d2)²/2σ²}."""
    d1, d2 = reference_nearest_two(labels, spacing)
    out = np.ones(labels.shape, dtype=np.float64)
    for index in zip(*np.nonzero(labels == 0)):
        a, b = d1[index], d2[index]
        out[index] = v_bal + (1 - v_bal) * math.exp(-(a * a) / (2 * sigma_bal**2)) + lam * math.exp(-((a + b) ** 2) / (2 * sigma**2))
    return out


@pytest.mark.parametrize(
    "options",
    [{}, {"lam": 10.0, "sigma": 3.0, "v_bal": 0.3, "sigma_bal": 4.0}, {"spacing": (2.0, 0.5)}, {"v_bal": 1.0, "lam": 0.0}],
)
def test_equals_the_formula_in_2d(options):
    labels = separate_touching(touching_nuclei((48, 64), 12, radius=6.0, seed=2))
    got = falk_weight_map(labels, **options)
    assert got.dtype == np.float32 and got.shape == labels.shape
    np.testing.assert_allclose(got, _formula(labels, **options), rtol=1e-6, atol=1e-6)


def test_equals_the_formula_in_3d_with_spacing():
    labels = touching_nuclei((10, 24, 24), 8, radius=4.0, spacing=(2.0, 1.0, 1.0), seed=3)
    got = falk_weight_map(labels, sigma=4.0, spacing=(2.0, 1.0, 1.0), separate=True)
    want = _formula(separate_touching(labels), sigma=4.0, spacing=(2.0, 1.0, 1.0))
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_defaults_are_the_plugins():
    import inspect

    defaults = {k: p.default for k, p in inspect.signature(falk_weight_map).parameters.items()}
    assert (defaults["lam"], defaults["sigma"], defaults["v_bal"], defaults["sigma_bal"]) == (50.0, 6.0, 0.1, 10.0)


def test_edge_cases():
    assert np.all(falk_weight_map(np.zeros((5, 6), dtype=int)) == np.float32(0.1))  # no object: far background
    one = np.zeros((9, 9), dtype=int)
    one[3:5, 3:5] = 1
    w = falk_weight_map(one)
    np.testing.assert_allclose(w, _formula(one), rtol=1e-6)  # d2 = inf: no border term
    assert w[0, 0] < 1.0 and w[3, 3] == 1.0


@pytest.mark.parametrize(
    "options, message",
    [
        ({"lam": math.nan}, "lam"),
        ({"lam": -1.0}, "lam"),
        ({"lam": 1e39}, "lam"),
        ({"sigma": 0.0}, "sigma"),
        ({"sigma": math.inf}, "sigma"),
        ({"sigma_bal": -2.0}, "sigma_bal"),
        ({"v_bal": 1.5}, "v_bal"),
        ({"v_bal": math.nan}, "v_bal"),
        ({"spacing": (1.0, 0.0)}, "spacing"),
    ],
)
def test_bad_options_are_refused_by_name(options, message):
    with pytest.raises(ValueError, match=message):
        falk_weight_map(np.zeros((4, 4), dtype=int), **options)


def test_ignore_label():
    labels = separate_touching(touching_nuclei((40, 40), 8, radius=5.0, seed=4))
    labels[:10] = 77
    got = falk_weight_map(labels, ignore_label=77)
    want = _formula(np.where(labels == 77, 0, labels))
    want[labels == 77] = 0.0
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="ignore_label"):
        falk_weight_map(labels, ignore_label=0)
