"""WeightMapRecipe and the table of weightings: checked once, one canonical form, maps equal to the
functions they name."""

import json
import pickle

import numpy as np
import pytest

from unetweights import (
    WEIGHTINGS,
    Option,
    WeightMapRecipe,
    Weighting,
    falk_weight_map,
    register_weighting,
    separate_touching,
    signed_distance_map,
    tubed_skeleton,
    unet_weight_map,
)
from unetweights.synthetic import touching_nuclei


def _mask():
    return touching_nuclei((30, 34), 6, radius=6.0, seed=2)


@pytest.mark.parametrize(
    "arguments, function, options",
    [
        ({}, unet_weight_map, {}),
        ({"w0": 4, "sigma": 2, "class_weights": {0: 1, 1: 3}, "border": "all", "separate": True},
         unet_weight_map, {"w0": 4, "sigma": 2, "class_weights": {0: 1, 1: 3}, "border": "all", "separate": True}),
        ({"weighting": "falk", "lam": 20, "spacing": (2, 1), "ignore_label": 3},
         falk_weight_map, {"lam": 20, "spacing": (2, 1), "ignore_label": 3}),
    ],
)
def test_maps_are_those_of_the_functions(arguments, function, options):
    mask = _mask()
    recipe = WeightMapRecipe(signed_distance=True, skeleton_radius=1.0, **arguments)
    maps = recipe.maps(mask)
    assert tuple(maps) == recipe.outputs == ("weight", "distance", "skeleton")
    np.testing.assert_array_equal(maps["weight"], function(mask, **options))
    # The target: carved with separate, ignored pixels background.
    target = mask.copy()
    if options.get("ignore_label") is not None:
        target[target == options["ignore_label"]] = 0
    if options.get("separate"):
        target = separate_touching(target)
    target = target > 0
    spacing = options.get("spacing")
    np.testing.assert_array_equal(maps["distance"][1], signed_distance_map(target, spacing=spacing))
    np.testing.assert_array_equal(maps["distance"][0], signed_distance_map(~target, spacing=spacing))
    np.testing.assert_array_equal(maps["skeleton"], tubed_skeleton(target.astype(np.int64), 1.0, spacing=spacing))
    assert maps["weight"].dtype == np.float32 and maps["distance"].dtype == np.float32
    assert maps["skeleton"].dtype == np.int64


def test_only_the_maps_asked_for():
    assert WeightMapRecipe().outputs == ("weight",)
    assert tuple(WeightMapRecipe().maps(_mask())) == ("weight",)
    assert WeightMapRecipe(skeleton_radius=0).outputs == ("weight", "skeleton")
    with pytest.raises(ValueError, match="skeleton_radius: this recipe makes no skeleton"):
        WeightMapRecipe().skeleton(_mask() > 0)


def test_class_maps_with_ignored_pixels():
    target = np.array([[0, 1, 1, 2, 2, 2], [0, 1, 1, 2, 2, 5]] * 3)
    ignored = target == 5
    recipe = WeightMapRecipe(skeleton_radius=0, spacing=(1, 2))
    distance = recipe.distance_map(target, num_classes=3, ignored=ignored)
    for c in range(3):
        np.testing.assert_array_equal(distance[c], signed_distance_map((target == c) & ~ignored, spacing=(1, 2)))
    want = tubed_skeleton(np.where(ignored, 0, target), 0.0, spacing=(1, 2))
    np.testing.assert_array_equal(recipe.skeleton(target, ignored), want)


def test_canonical_form_equality_hash_pickle():
    a = WeightMapRecipe(sigma=3, class_weights={1: 2, 0: 1}, spacing=[2, 1])
    b = WeightMapRecipe(sigma=3.0, class_weights={0: 1.0, 1: 2.0}, spacing=(2.0, 1.0))
    assert a == b and hash(a) == hash(b)
    form = a.canonical()
    assert json.loads(json.dumps(form)) == form
    assert form["class_weights"] == [[0, 1.0], [1, 2.0]] and form["spacing"] == [2.0, 1.0]
    assert form["signed_distance"] is False and form["skeleton_radius"] is None
    assert "signed_distance" not in a.canonical(targets=False)
    assert a != WeightMapRecipe(sigma=3, spacing=(2, 1)) and a != a.replace(signed_distance=True)
    assert pickle.loads(pickle.dumps(a)) == a
    assert WeightMapRecipe(**a.arguments()) == a
    assert repr(a) == "WeightMapRecipe(sigma=3.0, class_weights={1: 2.0, 0: 1.0}, spacing=(2.0, 1.0))"
    with pytest.raises(AttributeError, match="cannot be changed"):
        a.sigma = 4.0
    options = a.options
    options["sigma"] = 100.0  # a copy: the recipe keeps its own
    assert a.options["sigma"] == 3.0


def test_replace_checks_like_a_new_recipe():
    recipe = WeightMapRecipe(sigma=3, w0=4)
    assert recipe.replace(w0=5) == WeightMapRecipe(sigma=3, w0=5)
    # The other weighting keeps the options it also has.
    assert recipe.replace(weighting="falk") == WeightMapRecipe(weighting="falk", sigma=3)
    with pytest.raises(ValueError, match="sigma"):
        recipe.replace(sigma=-1.0)
    with pytest.raises(TypeError, match="lam is not an option of WeightMapRecipe with weighting='unet'"):
        recipe.replace(lam=2.0)


@pytest.mark.parametrize(
    "arguments, error, match",
    [
        ({"weighting": "paper"}, ValueError, "weighting must be one of"),
        ({"weighting": None}, ValueError, "weighting must be one of"),
        ({"w0": float("nan")}, ValueError, "w0"),
        ({"sigma": float("inf")}, ValueError, "sigma"),
        ({"spacing": (1, 2, 3, 4)}, ValueError, "spacing must have one entry per spatial axis"),
        ({"class_weights": "cube"}, ValueError, "class_weights"),
        ({"signed_distance": 1}, TypeError, "signed_distance must be a bool"),
        ({"skeleton_radius": -1.0}, ValueError, "skeleton_radius"),
        ({"skeleton_radius": float("nan")}, ValueError, "skeleton_radius"),
        ({"signed_distance": True, "spacing": 1e-40}, ValueError, "spacing"),
        ({"weighting": "falk", "w0": 2.0}, TypeError, "w0 is not an option of WeightMapRecipe with weighting='falk'"),
    ],
)
def test_bad_arguments_are_named(arguments, error, match):
    with pytest.raises(error, match=match):
        WeightMapRecipe(**arguments)


def test_from_arguments_takes_a_recipe_or_options():
    recipe = WeightMapRecipe(sigma=2)
    assert WeightMapRecipe.from_arguments(recipe, owner="X") is recipe
    assert WeightMapRecipe.from_arguments(owner="X", sigma=2) == recipe
    with pytest.raises(TypeError, match=r"X: give either recipe or weight-map options, not both \(got recipe and \['w0'\]\)"):
        WeightMapRecipe.from_arguments(recipe, owner="X", w0=3)
    with pytest.raises(TypeError, match="signed_distance"):
        WeightMapRecipe.from_arguments(recipe, owner="X", signed_distance=True)
    with pytest.raises(TypeError, match="recipe: expected a WeightMapRecipe, got dict"):
        WeightMapRecipe.from_arguments({"sigma": 2}, owner="X")
    with pytest.raises(TypeError, match="lam is not an option of X with weighting='unet'"):
        WeightMapRecipe.from_arguments(owner="X", lam=2)


def _toy(labels, level=1.0, mode="a", flag=False):
    return np.full(np.shape(labels), level, np.float32)


@pytest.mark.parametrize(
    "row, error, match",
    [
        (Weighting("unet", _toy, ()), ValueError, "'unet' is already registered"),
        (Weighting("two words", _toy, ()), ValueError, "expected an identifier"),
        (Weighting("t", "not callable", ()), TypeError, "weighting.function"),
        (Weighting("t", _toy, (Option("level", "number", ""),)), ValueError, "kind must be one of"),
        (Weighting("t", _toy, (Option("other", "float", ""),)), ValueError, "keyword parameter with a default"),
        (Weighting("t", _toy, (Option("labels", "float", ""),)), ValueError, "kept for the entry points"),
        (Weighting("t", _toy, (Option("level", "float", ""),) * 2), ValueError, "names must be distinct"),
        (Weighting("t", _toy, (Option("mode", "choice", "", ("b",)),)), ValueError, "choices that hold its default"),
        (Weighting("t", lambda labels, sigma=1: labels, (Option("sigma", "int", ""),)), ValueError, "share one command-line flag"),
        (Weighting("t", lambda labels, flag=True: labels, (Option("flag", "flag", ""),)), ValueError, "a flag must default to False"),
        (Weighting("t", _toy, (), reach=3.0), TypeError, "weighting.reach"),
    ],
)
def test_register_weighting_checks_the_row(row, error, match):
    before = dict(WEIGHTINGS)
    with pytest.raises(error, match=match):
        register_weighting(row)
    assert WEIGHTINGS == before


def test_every_option_of_the_table_is_a_parameter_with_its_recorded_default():
    for name, row in WEIGHTINGS.items():
        assert row.name == name
        recipe = WeightMapRecipe(name)
        assert set(recipe.options) == {o.name for o in row.options}
        assert recipe.arguments() == ({} if name == "unet" else {"weighting": name})


def test_every_option_kind_has_a_command_line_flag():
    from unetweights._weight_flags import _FLAG_KINDS
    from unetweights.weightmaps.recipe import OPTION_KINDS

    assert set(_FLAG_KINDS) == set(OPTION_KINDS)


def test_classes_go_to_a_weighting_that_takes_them():
    mask = _mask()
    classes = (mask % 2 + 1) * (mask > 0)
    recipe = WeightMapRecipe(sigma=3)
    np.testing.assert_array_equal(recipe.weight_map(mask, classes=classes), unet_weight_map(mask, sigma=3, classes=classes))
    with pytest.raises(TypeError, match="classes: weighting 'falk' takes no per-pixel classes"):
        WeightMapRecipe("falk").weight_map(mask, classes=classes)
