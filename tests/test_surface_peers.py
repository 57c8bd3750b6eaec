"""The surface metrics against their peers (issue 23, item 2).

- **MONAI** (``compute_hausdorff_distance``, ``compute_average_surface_distance``,
  ``compute_surface_dice`` with ``use_subvoxels=False``, Euclidean distance): the definition we
  implement, so equal values. MONAI's own test cases (files of Project-MONAI/MONAI's
  tests/metrics/, cited at each) are reproduced: inputs built the same way, expected values
  copied, most of them run without MONAI. Random 2D and 3D blobs are compared with the installed
  MONAI. The documented differences are pinned: where exactly one mask is empty, MONAI's
  Hausdorff distance with a ``percentile`` is NaN and ours is inf; with ``ignore_index`` a class
  index, MONAI's Hausdorff distance of that class is NaN.
- **DeepMind's surface-distance** (surface points at voxel corners, weighted by the area of their
  surface element): another definition. The size of the difference that the README states
  (benchmarks/compare_surface_definitions.py measures it) is pinned on blobs, so a change of our
  definition fails here.

MONAI cases left out, as out of scope: the chessboard and taxicab distances, the per-component
metrics (``per_component=True``) and the sub-voxel NSD (``use_subvoxels=True``,
test_surface_dice.py's test_compute_surface_dice_subvoxel); we implement the Euclidean voxel
definition only.
"""

import math
import warnings

import numpy as np
import pytest
import torch
from scipy import ndimage

import unetweights.metrics as M
from unetweights.evaluation import EvaluationGraph

INF = math.inf
NAN = math.nan

# MONAI warns about every empty class; the empty classes here are on purpose.
pytestmark = [
    pytest.mark.filterwarnings("ignore:the (ground truth|prediction) of class"),
    pytest.mark.filterwarnings("ignore:.*always_return_as_numpy:FutureWarning"),  # from MONAI 1.6 calling itself
]


@pytest.fixture(scope="module")
def monai_metrics():
    return pytest.importorskip("monai.metrics")


@pytest.fixture(scope="module")
def deepmind():
    return pytest.importorskip("surface_distance")


DISTANCES = ("hd", "hd_directed", "hd95", "hd95_directed", "assd", "asd")


def ours(input, target, spacing=None, tolerances=(), names=DISTANCES, **mask_options):
    """Our surface metrics ``names`` on one batch, from one graph (one pair of distance transforms).

    "hd": percentile 100 (the maximum), "hd95": percentile 95, each also "_directed"; "assd":
    symmetric, "asd": not. ``tolerances``: (name, tolerance) pairs, an NSD output each. Returns
    numpy (N, C') arrays.
    """
    options = {"spacing": None if spacing is None else [float(s) for s in spacing], **mask_options}
    distances = {
        "hd": lambda: M.HausdorffDistance(percentile=100.0, **options),
        "hd_directed": lambda: M.HausdorffDistance(percentile=100.0, directed=True, **options),
        "hd95": lambda: M.HausdorffDistance(percentile=95.0, **options),
        "hd95_directed": lambda: M.HausdorffDistance(percentile=95.0, directed=True, **options),
        "assd": lambda: M.AverageSurfaceDistance(**options),
        "asd": lambda: M.AverageSurfaceDistance(symmetric=False, **options),
    }
    metrics = {name: distances[name]() for name in names}
    for name, tolerance in tolerances:
        metrics[name] = M.SurfaceDice(tolerance=tolerance, **options)
    with torch.no_grad():
        return {name: value.numpy() for name, value in EvaluationGraph(metrics=metrics)(input, target).items()}


def binary(*masks):
    """Bool masks as an activation="none" batch: (1, 1, *) float32 each."""
    return [torch.as_tensor(np.asarray(m, dtype=np.float32)[None, None]) for m in masks]


def one_hot(labels, classes):
    """(N, *) class indices to (N, C, *) float32; any other value (an ignored pixel) is 0 in every channel."""
    labels = torch.as_tensor(labels)
    shape = [1, classes] + [1] * (labels.dim() - 1)
    return (labels.unsqueeze(1) == torch.arange(classes).view(shape)).to(torch.float32)


# ---------------------------------------------------------------------------------------------
# MONAI's test cases


def sphere(radius=20.0, centre=(49, 49, 49), shape=(99, 99, 99), spacing=(1.0, 1.0, 1.0)):
    """MONAI's create_spherical_seg_3d (tests/metrics/test_hausdorff_distance.py and
    test_surface_distance.py): the voxels whose position index × spacing lies within ``radius``
    of ``centre``. The squares are summed in MONAI's order (axis 1, 0, 2), so that a voxel on the
    sphere falls on the same side with a non-integer spacing."""
    index = np.ogrid[tuple(slice(0, n) for n in shape)]
    d = [i.astype(float) * s - c for i, s, c in zip(index, spacing, centre)]
    return d[1] * d[1] + d[0] * d[0] + d[2] * d[2] <= radius * radius


def cropped(*masks):
    """The masks cut to the bounding box of their union, to keep the test fast.

    The boundaries and distances are the same, since beyond the image counts as outside; MONAI
    too crops to the masks (with a margin of one voxel) before it measures (get_mask_edges).
    """
    union = np.logical_or.reduce(masks)
    if not union.any():
        return [m[(slice(0, 1),) * m.ndim] for m in masks]
    box = tuple(slice(int(i.min()), int(i.max()) + 1) for i in np.nonzero(union))
    return [m[box] for m in masks]


MONAI_SPACING = (0.85, 1.2, 0.9)  # test_spacing in both files
R20_AT = dict(radius=20, centre=(20, 33, 22))
R40_AT = dict(radius=40, centre=(20, 33, 22))
# (prediction sphere, target sphere (None: empty), spacing, expected values of our outputs).
# tests/metrics/test_hausdorff_distance.py, TEST_CASES: the Euclidean columns, directed
# (y_pred → y) and not ("hd", "hd_directed"; "hd95..." where the case has percentile 95).
# tests/metrics/test_surface_distance.py, TEST_CASES: symmetric and not ("assd", "asd"); the
# one-empty cases whatever their distance metric, since they measure no distance.
MONAI_DISTANCE_CASES = {
    "identical": ({}, {}, None, {"hd": 0.0, "hd_directed": 0.0, "assd": 0.0, "asd": 0.0}),
    "shifted-diagonally": (
        dict(radius=20, centre=(20, 20, 20)), dict(radius=20, centre=(19, 19, 19)), None,
        {"hd": 1.7320508075688772, "hd_directed": 1.7320508075688772},
    ),
    "shifted-one-voxel": (
        dict(radius=33, centre=(19, 33, 22)), dict(radius=33, centre=(20, 33, 22)), None,
        {"hd": 1.0, "hd_directed": 1.0, "assd": 0.350217, "asd": 0.3483278807706289},
    ),
    "r20-inside-r40": (
        R20_AT, R40_AT, None,
        {
            "hd": 20.223748416156685, "hd_directed": 20.09975124224178,
            "hd95": 20.09975124224178, "hd95_directed": 19.924858845171276,
            "assd": 15.117741, "asd": 12.040033513150455,
        },
    ),
    "prediction-empty": (None, R40_AT, None, {"hd": INF, "hd_directed": INF, "assd": INF, "asd": INF}),
    "target-empty": ({}, None, None, {"hd": INF, "hd_directed": INF, "assd": INF, "asd": INF}),
    "spacing-shifted-diagonally": (
        dict(radius=20, centre=(20, 20, 20), spacing=MONAI_SPACING),
        dict(radius=20, centre=(19, 19, 19), spacing=MONAI_SPACING),
        MONAI_SPACING,
        {"hd": 2.2671568, "hd_directed": 2.0808651447296143},
    ),
    "spacing-r15-inside-r30": (
        dict(radius=15, centre=(20, 33, 22), spacing=MONAI_SPACING),
        dict(radius=30, centre=(20, 33, 22), spacing=MONAI_SPACING),
        MONAI_SPACING,
        {"hd": 15.62594, "hd_directed": 15.439640998840332},
    ),
    "spacing-shifted-one-voxel": (
        dict(radius=33, centre=(42, 45, 52), spacing=MONAI_SPACING),
        dict(radius=33, centre=(43, 45, 52), spacing=MONAI_SPACING),
        MONAI_SPACING,
        {"assd": 0.4951, "asd": 0.4951},
    ),
    # TEST_CASES_NANS of both files: both masks empty, without and with spacing, is NaN (MONAI's
    # aggregate skips it: 0 with not_nans 0).
    "both-empty": (None, None, None, {name: NAN for name in ("hd", "hd_directed", "hd95", "assd", "asd")}),
    "both-empty-spacing": (None, None, MONAI_SPACING, {name: NAN for name in ("hd", "hd95", "assd", "asd")}),
}


@pytest.mark.parametrize("case", list(MONAI_DISTANCE_CASES))
def test_monai_hausdorff_and_surface_distance_cases(case):
    prediction, truth, spacing, expected = MONAI_DISTANCE_CASES[case]
    masks = [np.zeros((99, 99, 99), bool) if options is None else sphere(**options) for options in (prediction, truth)]
    got = ours(*binary(*cropped(*masks)), spacing=spacing, names=list(expected), activation="none")
    for name, value in expected.items():
        # MONAI's own tolerances: rtol 1e-6 for the Hausdorff distance, 1e-5 for the average.
        rtol = 1e-6 if name.startswith("hd") else 1e-5
        np.testing.assert_allclose(got[name][0, 0], value, rtol=rtol, err_msg=f"{case}: {name}")


def half_planes(shape, start_prediction=50, start_label=60):
    """test_surface_dice.py's half-plane batch: image 0 predicts the columns from 50 on, its label
    holds those from 60 on; image 1 is empty in both. (N, C=2, *) one-hot, MONAI's layout."""
    prediction = np.zeros((2, *shape), np.int64)
    label = np.zeros((2, *shape), np.int64)
    prediction[0, ..., start_prediction:] = 1
    label[0, ..., start_label:] = 1
    return one_hot(prediction, 2), one_hot(label, 2)


# The batches of test_surface_dice.py's test_tolerance_euclidean_distance(_with_spacing)
# (480×640) and test_tolerance_euclidean_distance_3d (200×110×80), made smaller to keep the test
# fast (48×96 and 20×11×80; the shift and where it starts are MONAI's): MONAI's expected value at
# τ = 0 is written below with the sizes as names (H = 480 rows and W = 640 columns in 2D; A = 200
# and B = 110 across the shift in 3D), so the same expressions hold at either size.
def expected_half_planes_2d(h, w):
    mismatched = (h - 2) + h + 9 * 2
    background = 1 - mismatched / (h * 4 + 48 * 2 + 58 * 2)
    foreground = 1 - mismatched / (h * 4 + (w - 52) * 2 + (w - 62) * 2)  # 588 and 578 at W = 640
    return np.array([[background, foreground], [1.0, NAN]])


def expected_half_planes_3d(a, b):
    mismatched = a * b + (a - 2) * (b - 2) + 9 * a * 2 + 9 * (b - 2) * 2
    background = 1 - mismatched / (a * b * 4 + (28 + 18) * a * 2 + (28 + 18) * (b - 2) * 2)
    foreground = 1 - mismatched / (a * b * 4 + (58 + 48) * a * 2 + (58 + 48) * (b - 2) * 2)
    return np.array([[background, foreground], [1.0, NAN]])


@pytest.mark.parametrize("spacing", [None, (0.85, 1.2)], ids=["unit", "spacing"])
def test_monai_surface_dice_half_planes_2d(spacing):
    h, w = 48, 96  # MONAI: 480, 640
    taus = [0, 1, 9, 10, 11, 12, 13]
    got = ours(*half_planes((h, w)), spacing=spacing, tolerances=[(f"nsd{t}", t) for t in taus], names=(), activation="none")
    np.testing.assert_allclose(got["nsd0"], expected_half_planes_2d(h, w), rtol=1e-6)
    np.testing.assert_allclose(expected_half_planes_2d(480, 640)[0, 1], 1 - (478 + 480 + 9 * 2) / (480 * 4 + 588 * 2 + 578 * 2))
    # MONAI's orderings: NSD grows with τ until the 10-column shift is within it (12 in units
    # of the spacing's 1.2 along the columns), then stays.
    strict = [0, 1, 9, 10, 11] if spacing else [0, 1, 9, 10]
    for low, high in zip(strict, strict[1:]):
        assert (got[f"nsd{low}"][0] < got[f"nsd{high}"][0]).all(), (low, high)
    same = (12, 13) if spacing else (10, 11)
    np.testing.assert_array_equal(got[f"nsd{same[0]}"], got[f"nsd{same[1]}"])


def test_monai_surface_dice_half_planes_3d():
    a, b = 20, 11  # MONAI: 200, 110 (80 along the shift, as there)
    taus = [0, 1, 10, 11]
    got = ours(*half_planes((a, b, 80), 20, 30), tolerances=[(f"nsd{t}", t) for t in taus], names=(), activation="none")
    np.testing.assert_allclose(got["nsd0"], expected_half_planes_3d(a, b), rtol=1e-6)
    assert (got["nsd0"][0] < got["nsd1"][0]).all() and (got["nsd1"][0] < got["nsd10"][0]).all()
    np.testing.assert_array_equal(got["nsd10"], got["nsd11"])


def test_monai_surface_dice_all_distances():
    # test_surface_dice.py, test_tolerance_all_distances (its Euclidean part): per-class thresholds.
    prediction = np.zeros((1, 10, 10), np.int64)
    label = np.zeros((1, 10, 10), np.int64)
    prediction[0, 1:4, 1] = 1
    label[0, 5:8, 6] = 1
    cases = {"t0": [0.0, 0.0], "t1": [2.8, 5.5], "t2": [3.0, 6.0]}
    got = ours(one_hot(prediction, 2), one_hot(label, 2), tolerances=cases.items(), names=(), activation="none")
    expected = {
        "t0": [[1 - (8 + 4) / (36 * 2 + 8 + 4), 0]],
        "t1": [[1 - 3 / (36 * 2 + 8 + 4), 1 - (2 + 2) / (3 + 3)]],
        "t2": [[1 - 1 / (36 * 2 + 8 + 4), 1 - 2 / (3 + 3)]],
    }
    for name, value in expected.items():
        np.testing.assert_array_almost_equal(got[name], value, err_msg=name)


def test_monai_surface_dice_not_predicted_not_present():
    # test_surface_dice.py, test_not_predicted_not_present: a class in the label only scores 0,
    # a class in neither NaN. Here through logits and a class-index target.
    prediction = torch.zeros((1, 80, 80), dtype=torch.int64)
    label = torch.zeros((1, 80, 80), dtype=torch.int64)
    prediction[0, 10:20, 10:20] = 1
    label[0, 10:20, 10:20] = 2
    logits = 10.0 * one_hot(prediction, 4)
    with_background = ours(logits, label, tolerances=[("nsd", [1.0] * 4)], names=())
    without = ours(logits, label, tolerances=[("nsd", [1.0] * 3)], names=(), include_background=False)
    np.testing.assert_array_equal(with_background["nsd"], [[1, 0, 0, NAN]])
    np.testing.assert_array_equal(without["nsd"], [[0, 0, NAN]])


def monai_per_image(monai_metrics, y_pred, y, ignore_index, tolerance):
    """MONAI's per-image values of its metric classes (they mask ignore_index out of both)."""
    options = {"include_background": True, "ignore_index": ignore_index}
    values = {
        "hd": monai_metrics.HausdorffDistanceMetric(**options)(y_pred, y),
        "asd": monai_metrics.SurfaceDistanceMetric(**options)(y_pred, y),
        "nsd": monai_metrics.SurfaceDiceMetric([tolerance] * y.shape[1], **options)(y_pred, y),
    }
    return {name: value.numpy() for name, value in values.items()}


def ignore_cases():
    # tests/metrics/test_ignore_index_metrics.py, TestIgnoreIndexSurfaceMetrics: two predictions
    # that differ only where the target is ignored score the same. There the ignored pixels are
    # all-zero one-hot (ignore_index 255) or a class index (0, 1); ours takes the ignore index
    # in a class-index target, here the same pixels.
    pred1 = torch.zeros((1, 2, 4, 4))
    pred1[:, 1, 0:2, :] = 1.0
    pred2 = pred1.clone()
    pred2[:, 1, 2:4, :] = 1.0
    target = torch.full((1, 4, 4), 255)
    target[:, 0:2, 0:2] = 1
    target[:, 0:2, 2:4] = 0
    yield "consistency-255", 255, pred1, pred2, target
    for ignore_index in (0, 1):
        rows = slice(0, 2) if ignore_index == 0 else slice(2, 4)
        pred1 = torch.zeros((1, 2, 4, 4))
        pred1[:, 0, 0:2, :] = 1.0
        pred1[:, 1, 2:4, :] = 1.0
        pred2 = pred1.clone()
        pred2[:, ignore_index, rows, :] = 0.0
        target = torch.zeros((1, 4, 4), dtype=torch.int64)
        target[:, 2:4, :] = 1
        yield f"class-{ignore_index}", ignore_index, pred1, pred2, target


@pytest.mark.parametrize("case", list(ignore_cases()), ids=lambda case: case[0])
def test_monai_ignore_index_cases(case, monai_metrics):
    _, ignore_index, pred1, pred2, target = case
    first, second = (
        ours(pred, target, tolerances=[("nsd", 0.5)], names=("hd", "asd"), activation="none", ignore_index=ignore_index)
        for pred in (pred1, pred2)
    )
    peer = monai_per_image(monai_metrics, pred1, one_hot(target, 2), ignore_index, 0.5)
    for name in ("hd", "asd", "nsd"):
        np.testing.assert_array_equal(first[name], second[name], err_msg=name)
        np.testing.assert_allclose(first[name], peer[name], rtol=1e-5, err_msg=name)


@pytest.mark.parametrize("empty", ["prediction", "target"])
def test_monai_one_empty_hausdorff_with_a_percentile_is_nan_ours_inf(empty, monai_metrics):
    """The documented difference: torch.quantile interpolates between two infinities (NaN) where
    MONAI is given a percentile, even 100; without one MONAI takes the maximum, inf, like us."""
    mask = np.zeros((12, 14), bool)
    mask[3:8, 4:11] = True
    pair = [mask, np.zeros_like(mask)] if empty == "target" else [np.zeros_like(mask), mask]
    y_pred, y = binary(*pair)
    for directed in (False, True):
        for percentile in (95, 100):
            peer = monai_metrics.compute_hausdorff_distance(
                y_pred, y, include_background=True, percentile=percentile, directed=directed
            )
            assert torch.isnan(peer).all()
            got = M.hausdorff_distance(y_pred, y, activation="none", percentile=percentile, directed=directed)
            assert torch.isinf(got).all()
        peer = monai_metrics.compute_hausdorff_distance(y_pred, y, include_background=True, directed=directed)
        assert torch.isinf(peer).all()


def test_monai_hausdorff_is_nan_for_an_ignored_class_index(monai_metrics):
    """A second difference, of MONAI's making: with ``ignore_index`` a class index, MONAI's
    Hausdorff distance is NaN for that class, while its average distance and NSD score what is
    left of the class, as all of ours do (here a prediction of the class outside its ignored
    pixels: inf, and NSD 0)."""
    target = torch.zeros((1, 8, 8), dtype=torch.int64)
    target[:, 3:5, :] = 1
    prediction = torch.zeros((1, 8, 8), dtype=torch.int64)
    prediction[:, 2:6, 2:6] = 1
    y_pred, y = one_hot(prediction, 2), one_hot(target, 2)
    got = ours(10.0 * y_pred, target, tolerances=[("nsd", 1.0)], names=("hd", "asd"), ignore_index=1)
    peer = monai_per_image(monai_metrics, y_pred, y, 1, 1.0)
    np.testing.assert_array_equal(peer["hd"], [[1.0, NAN]])
    np.testing.assert_array_equal(got["hd"], [[1.0, INF]])
    for name in ("asd", "nsd"):
        np.testing.assert_allclose(got[name], peer[name], rtol=1e-5, err_msg=name)
    np.testing.assert_array_equal(got["nsd"][0, 1], 0.0)


def test_percentile_as_precise_as_monai(monai_metrics):
    """HD95 where the percentile's rank, 0.95 × (m - 1), has a fraction: 2168 boundary voxels
    (rank 2058.65) whose sorted directed distances are 1 up to rank 2058, then √2, then 2."""
    width, near = 2168, 2059
    prediction = torch.zeros((1, 1, 3, width))
    prediction[0, 0, 0, :] = 1.0  # one row: every voxel is a boundary voxel
    target = torch.zeros((1, 1, 3, width))
    target[0, 0, 1, :near] = 1.0  # distance 1 below these,
    target[0, 0, 2, near:] = 1.0  # √2 for the first voxel past them, 2 for the others
    distances = np.concatenate([np.ones(near), [math.sqrt(2.0)], np.full(width - near - 1, 2.0)])
    exact = np.percentile(distances, 95)
    peer = monai_metrics.compute_hausdorff_distance(prediction, target, include_background=True, percentile=95, directed=True)
    got = M.hausdorff_distance(prediction, target, activation="none", percentile=95.0, directed=True)
    np.testing.assert_allclose(float(peer), exact, rtol=1e-5)
    np.testing.assert_allclose(float(got), exact, rtol=1e-5)


# ---------------------------------------------------------------------------------------------
# Random blobs against the installed MONAI


def smooth(rng, shape, spacing, scale):
    """A smooth random field: white noise blurred by ``scale`` physical units along each axis."""
    return ndimage.gaussian_filter(rng.standard_normal(shape), scale / np.asarray(spacing))


def random_batch(ndim, seed, ignore):
    """(target, prediction) class maps (3, *) of 3 classes from thresholded smooth random fields,
    with every kind of empty class: image 1 predicts no class 2 (empty prediction), image 2's
    target holds neither class 1 (empty target) nor 2 (both empty). With ``ignore``, blob-shaped
    regions of the target (about 10 %) are 255."""
    shape, spacing = ((32, 44), (2.5, 0.8)) if ndim == 2 else ((10, 16, 20), (3.0, 1.0, 1.0))
    rng = np.random.default_rng(seed)
    targets, predictions = [], []
    for _ in range(3):
        field = smooth(rng, shape, spacing, 3.0)
        noise = smooth(rng, shape, spacing, 1.5)
        cuts = np.quantile(field, [0.5, 0.75])
        targets.append(np.digitize(field, cuts))
        predictions.append(np.digitize(field + 0.4 * field.std() / noise.std() * noise, cuts))
        if ignore:
            hole = smooth(rng, shape, spacing, 2.0)
            targets[-1][hole > np.quantile(hole, 0.9)] = 255
    predictions[1][predictions[1] == 2] = 1
    targets[2][(targets[2] == 1) | (targets[2] == 2)] = 0
    predictions[2][predictions[2] == 2] = 0
    return torch.as_tensor(np.stack(targets)), torch.as_tensor(np.stack(predictions)), spacing


def one_empty(prediction, target, classes, include_background):
    """(N, C') bool: exactly one of the prediction and the target (ignored pixels left out) lacks the class."""
    valid = target < classes
    found = lambda labels: torch.stack([((labels == c) & valid).flatten(1).any(1) for c in range(classes)], 1)
    lacks = found(prediction) != found(target)
    return lacks if include_background else lacks[:, 1:]


@pytest.mark.parametrize("ignore", [None, 255], ids=["all-pixels", "ignore-255"])
@pytest.mark.parametrize("include_background", [True, False], ids=["background", "no-background"])
@pytest.mark.parametrize("ndim", [2, 3])
def test_random_blobs_equal_monai(ndim, include_background, ignore, monai_metrics):
    target, prediction, spacing = random_batch(ndim, seed=ndim + 10 * include_background, ignore=ignore)
    classes = 3
    taus = [0.8, 1.7, 2.5] if include_background else [1.7, 2.5]  # one per scored class
    logits = 10.0 * one_hot(prediction, classes)
    got = ours(
        logits, target, spacing, tolerances=[("nsd", taus)], include_background=include_background, ignore_index=ignore
    )
    y_pred, y = one_hot(prediction, classes), one_hot(target, classes)  # 255 is 0 in every channel of y
    common = {"include_background": include_background, "spacing": spacing}
    m = monai_metrics
    if ignore is None:
        def hd(percentile, directed):
            return m.compute_hausdorff_distance(y_pred, y, percentile=percentile, directed=directed, **common)

        def asd(symmetric):
            return m.compute_average_surface_distance(y_pred, y, symmetric=symmetric, **common)
    else:
        # MONAI's functional Hausdorff and average distances take ignore_index only to silence
        # their warnings (and, for a class index, to NaN that class's HD); its metric classes
        # mask the ignored pixels out of both masks, as compute_surface_dice and we do.
        def hd(percentile, directed):
            metric = m.HausdorffDistanceMetric(
                include_background, percentile=percentile, directed=directed, ignore_index=ignore
            )
            return metric(y_pred, y, spacing=spacing)

        def asd(symmetric):
            metric = m.SurfaceDistanceMetric(include_background, symmetric=symmetric, ignore_index=ignore)
            return metric(y_pred, y, spacing=spacing)

    nsd = m.compute_surface_dice(y_pred, y, taus, use_subvoxels=False, ignore_index=ignore, **common)
    lacks = one_empty(prediction, target, classes, include_background)
    assert lacks.any()  # the batch holds the cases the documented difference is about
    peers = {
        "hd": hd(None, False), "hd_directed": hd(None, True),
        "hd95": hd(95, False), "hd95_directed": hd(95, True),
        "assd": asd(True), "asd": asd(False), "nsd": nsd,
    }
    for name, peer in peers.items():
        if name.startswith("hd95"):
            # The documented difference: NaN there in MONAI, inf in ours.
            assert torch.isnan(peer[lacks]).all(), name
            peer = torch.where(lacks, torch.full_like(peer, INF), peer)
        np.testing.assert_allclose(got[name], peer.numpy(), rtol=1e-5, err_msg=name)


# ---------------------------------------------------------------------------------------------
# DeepMind's surface-distance: another definition, a difference of pinned size


def blob_pair(rng, shape, spacing, radius):
    """(target, prediction) bool masks as in benchmarks/compare_surface_definitions.py: a blob of
    ``radius`` voxels of the finest axis with a bumpy outline, and the same blob moved by up to
    1.5 voxels with smaller bumps of its own (round in physical units)."""
    step = np.asarray(spacing, float)
    radius = radius * step.min()
    axes = np.meshgrid(*[np.arange(n) * s for n, s in zip(shape, step)], indexing="ij")
    centre = (np.asarray(shape) / 2 + rng.uniform(-2, 2, len(shape))) * step

    def bumps(amplitude, scale):
        field = ndimage.gaussian_filter(rng.standard_normal(shape), scale / step)
        return amplitude * field / field.std()

    def inside(offset, outline):
        r = np.sqrt(sum((a - c - o) ** 2 for a, c, o in zip(axes, centre, offset)))
        return r < radius * (1.0 + outline)

    outline = bumps(0.12, radius / 2)
    target = inside(np.zeros(len(shape)), outline)
    shift = rng.uniform(-1.5, 1.5, len(shape)) * step.min()
    return target, inside(shift, outline + bumps(0.04, radius / 4))


def deepmind_values(deepmind, target, prediction, spacing, taus):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # its scipy.ndimage.filters / .morphology
        d = deepmind.compute_surface_distances(target, prediction, spacing)
    area_gt, area_pred = d["surfel_areas_gt"], d["surfel_areas_pred"]
    # Pooled over both surfaces' area, as ours is over both boundaries' voxels.
    pooled = (np.sum(d["distances_gt_to_pred"] * area_gt) + np.sum(d["distances_pred_to_gt"] * area_pred)) / (
        area_gt.sum() + area_pred.sum()
    )
    values = {
        "hd": deepmind.compute_robust_hausdorff(d, 100),
        "hd95": deepmind.compute_robust_hausdorff(d, 95),
        "assd": pooled,
        "asd": deepmind.compute_average_surface_distance(d)[1],  # its pred → gt mean, our directed one
    }
    for k, tau in enumerate(taus, 1):
        values[f"nsd{k}"] = deepmind.compute_surface_dice_at_tolerance(d, tau)
    return values


@pytest.mark.parametrize(
    "shape, spacing, radii",
    [
        ((96, 96), (1.0, 1.0), (5, 20)),
        ((96, 96), (2.5, 0.8), (5, 20)),
        ((28, 28, 28), (1.0, 1.0, 1.0), (5, 9)),
        ((28, 28, 28), (3.0, 1.0, 1.0), (5, 9)),
    ],
    ids=["2d", "2d-anisotropic", "3d", "3d-anisotropic"],
)
def test_deepmind_differs_by_the_documented_amount(shape, spacing, radii, deepmind):
    """The README's figures (benchmarks/compare_surface_definitions.py, 20 blobs of each setting),
    with room, on 4 smaller blobs of each: the HD within one voxel diagonal (a bound: every
    voxel-centre boundary point lies within half a diagonal of a corner surface point and back;
    measured: equal), HD95 too; our average distances larger by a median of 0-0.3 voxels of the
    finest axis (-0.2 to +0.5 each); our NSD lower (by up to 0.2 at τ = 1 voxel, 0.15 at 2;
    never higher by more than 0.01)."""
    rng = np.random.default_rng(len(shape) + 10 * int(spacing[0] != 1))
    voxel, diagonal = min(spacing), math.sqrt(sum(s * s for s in spacing))
    taus = [voxel, 2 * voxel]
    deltas = {name: [] for name in ("hd", "hd95", "assd", "asd", "nsd1", "nsd2")}
    for _ in range(4):
        target, prediction = blob_pair(rng, shape, spacing, rng.uniform(*radii))
        got = ours(
            *binary(prediction, target), spacing, [("nsd1", taus[0]), ("nsd2", taus[1])], ("hd", "hd95", "assd", "asd"),
            activation="none",
        )
        peer = deepmind_values(deepmind, target, prediction, spacing, taus)
        for name in deltas:
            deltas[name].append(float(got[name][0, 0]) - float(peer[name]))
    d = {name: np.array(values) for name, values in deltas.items()}
    assert np.abs(d["hd"]).max() <= diagonal + 1e-5, d["hd"]
    assert np.abs(d["hd95"]).max() <= diagonal + 1e-5, d["hd95"]
    for name in ("assd", "asd"):
        in_voxels = d[name] / voxel
        assert (in_voxels >= -0.2).all() and (in_voxels <= 0.5).all(), (name, in_voxels)
        assert 0.0 <= np.median(in_voxels) <= 0.35, (name, in_voxels)
    assert (d["nsd1"] >= -0.2).all() and (d["nsd1"] <= 0.01).all() and np.median(d["nsd1"]) <= -0.005, d["nsd1"]
    assert (d["nsd2"] >= -0.15).all() and (d["nsd2"] <= 0.01).all(), d["nsd2"]
