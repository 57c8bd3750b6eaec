"""ignore_label: weight 0, no object, no border around it, not counted in the class frequencies."""

import numpy as np
import pytest

from unetweights import class_balance_weights, falk_weight_map, separate_touching, unet_weight_map

from .reference import reference_unet_weight_map

IGNORE = 255


def _labels():
    labels = np.zeros((40, 50), dtype=np.int32)
    labels[5:15, 5:15] = 1
    labels[5:15, 16:25] = 2  # a one-pixel gap from object 1
    labels[20:30, 5:45] = IGNORE  # unannotated band
    labels[31:38, 10:20] = 3  # right next to the band
    labels[0:4, 30:40] = IGNORE
    return labels


def _expected(labels, mode="balanced", **options):
    """The map of the labels with the ignored pixels made background, w_c counted over the others,
    and 0 on the ignored pixels: the rule written out with the per-object reference."""
    ignored = labels == IGNORE
    cleared = np.where(ignored, 0, labels)
    if options.pop("separate", False):
        cleared = separate_touching(cleared)
    border_only = reference_unet_weight_map(cleared, class_weights=None, **options) - 1.0
    w_c = np.zeros(labels.shape)
    w_c[~ignored] = class_balance_weights(cleared[~ignored] > 0, mode)
    return np.where(ignored, 0.0, w_c + border_only)


@pytest.mark.parametrize("mode", ["balanced", "sqrt"])
@pytest.mark.parametrize("options", [{}, {"separate": True}, {"border": "all", "spacing": (1.5, 0.75)}])
def test_matches_the_rule(mode, options):
    labels = _labels()
    got = unet_weight_map(labels, class_weights=mode, ignore_label=IGNORE, **options)
    np.testing.assert_allclose(got, _expected(labels, mode, **dict(options)), rtol=1e-5, atol=1e-5)
    assert np.all(got[labels == IGNORE] == 0.0)


def test_no_border_is_drawn_around_ignored_pixels():
    """Object 3 and the band touch: the band is not an object, so no ridge between them."""
    labels = _labels()
    ignored = unet_weight_map(labels, ignore_label=IGNORE, class_weights=None)
    as_object = unet_weight_map(labels, class_weights=None)
    gap = (slice(30, 31), slice(10, 20))  # background row between the band and object 3
    assert ignored[gap].max() < 2.0 < as_object[gap].min()


def test_class_frequencies_leave_ignored_pixels_out():
    labels = np.zeros((10, 10), dtype=np.int32)
    labels[:2, :2] = 1  # 4 foreground pixels
    labels[5:, :] = IGNORE  # 50 ignored; 46 background are counted, not 96
    w = unet_weight_map(labels, ignore_label=IGNORE, w0=0.0)
    assert w[0, 0] == pytest.approx(50 / (2 * 4))
    assert w[3, 5] == pytest.approx(50 / (2 * 46))


def test_edge_cases_and_errors():
    labels = np.full((6, 7), IGNORE)
    assert np.all(unet_weight_map(labels, ignore_label=IGNORE) == 0.0)  # everything ignored
    plain = np.zeros((6, 7), dtype=int)
    plain[1:3, 1:3] = 1
    np.testing.assert_array_equal(unet_weight_map(plain, ignore_label=IGNORE), unet_weight_map(plain))  # absent
    for bad, error in ((0, ValueError), (-1, ValueError), (2.5, ValueError), ("255", TypeError), (True, TypeError)):
        with pytest.raises(error, match="ignore_label"):
            unet_weight_map(plain, ignore_label=bad)


def _grid_of_dots():
    """A bool mask of 800 one-pixel objects: labelled, their ids run 1..800, 255 among them."""
    mask = np.zeros((40, 80), dtype=bool)
    mask[1::2, 1::2] = True
    return mask


@pytest.mark.parametrize("weight_map", [unet_weight_map, falk_weight_map])
@pytest.mark.parametrize("separate", [False, True])
def test_a_bool_mask_refuses_an_ignore_label(weight_map, separate):
    """A bool mask holds no label values: ignore_label would only hit an id its labelling generates
    (here object 255 of 800), so it is refused rather than silently dropping that object."""
    mask = _grid_of_dots()
    with pytest.raises(ValueError, match=r"ignore_label=255.*bool mask.*integer labels.*ignore_label=None"):
        weight_map(mask, ignore_label=IGNORE, separate=separate)
    # Without it every dot is an object and weighs more than nothing; as integers, 255 is a value.
    assert np.all(weight_map(mask, separate=separate)[mask] > 0)
    as_uint8 = mask.astype(np.uint8) * IGNORE
    np.testing.assert_array_equal(weight_map(as_uint8, ignore_label=IGNORE, separate=separate)[mask], 0.0)


def test_prepare_labels_is_the_maps_own_preparation():
    """The public label preparation: ignored pixels cleared, then gaps carved; nothing written to
    the input; a bool mask labelled; an ignore value refused for it; None where nothing is ignored."""
    from scipy import ndimage

    from unetweights.weightmaps import prepare_labels

    labels = _labels()
    before = labels.copy()
    prepared, ignored = prepare_labels(labels, separate=True, ignore_label=IGNORE)
    np.testing.assert_array_equal(labels, before)
    np.testing.assert_array_equal(ignored, labels == IGNORE)
    np.testing.assert_array_equal(prepared, separate_touching(np.where(labels == IGNORE, 0, labels)))
    # The maps made from it equal the maps of the labels with the ignore value (weight 0 there).
    cleared = unet_weight_map(prepared, class_weights=None)
    with_ignore = unet_weight_map(labels, class_weights=None, ignore_label=IGNORE, separate=True)
    np.testing.assert_allclose(with_ignore[~ignored], cleared[~ignored], rtol=1e-6)

    mask = labels == 1
    mask[30:35, 30:35] = True
    objects, none = prepare_labels(mask)
    assert none is None
    np.testing.assert_array_equal(objects > 0, mask)
    assert objects.max() == ndimage.label(mask)[1] == 2
    with pytest.raises(ValueError, match="ignore_label=255 cannot apply to a bool mask"):
        prepare_labels(mask, ignore_label=IGNORE)
    assert prepare_labels(np.where(labels == IGNORE, 0, labels), ignore_label=IGNORE)[1] is None
