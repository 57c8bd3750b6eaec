"""Surface metrics (Hausdorff distance, average surface distance, NSD): a brute-force float64
reference, the empty and NaN rules, every mode (eager, TorchScript, torch.compile static and
dynamic, ONNX on unseen 2D and 3D shapes) and the dataset accumulator.

The comparisons with MONAI's and DeepMind's implementations are in test_surface_peers.py.
"""

import math

import numpy as np
import pytest
import torch
from scipy import ndimage
from scipy.spatial.distance import cdist

import unetweights.metrics as M
from unetweights.evaluation import EvaluationGraph

# -- the reference: every boundary voxel against every other, in float64 ----------------------------


def ref_boundary(mask):
    """Voxels of ``mask`` with a face neighbour outside it, the space beyond the image outside."""
    padded = np.pad(mask, 1)
    inner = tuple(slice(1, -1) for _ in range(mask.ndim))
    interior = mask.copy()
    for axis in range(mask.ndim):
        for shift in (-1, 1):
            interior &= np.roll(padded, shift, axis)[inner]
    return mask & ~interior


def ref_directed(a, b, spacing):
    """For each voxel of boundary ``a``, the distance to the nearest voxel of boundary ``b``."""
    pa, pb = np.argwhere(a) * spacing, np.argwhere(b) * spacing
    if len(pb) == 0:
        return np.full(len(pa), np.inf)
    return cdist(pa, pb).min(1) if len(pa) else np.zeros(0)


def ref_masks(logits, target, weight=None, ignore_index=None):
    """Hard softmax prediction and one-hot target, (N, C, *) bool, ignored and zero-weight pixels out."""
    x = logits.double().numpy()
    t = target.numpy()
    classes = x.shape[1]
    pred = np.stack([x.argmax(1) == c for c in range(classes)], 1)
    true = np.stack([t == c for c in range(classes)], 1)
    keep = np.ones(t.shape, bool)
    if ignore_index is not None:
        keep &= t != ignore_index
    if weight is not None:
        keep &= weight.numpy() > 0
    return pred & keep[:, None], true & keep[:, None]


def ref_surface(logits, target, spacing, percentile=95.0, tolerance=1.0, directed=False, symmetric=True, **masks):
    """Per image and class: HD at ``percentile``, ASSD, NSD of the hard softmax prediction."""
    pred, true = ref_masks(logits, target, **masks)
    return ref_values(pred, true, spacing, percentile, tolerance, directed, symmetric)


def ref_values(pred, true, spacing, percentile=95.0, tolerance=1.0, directed=False, symmetric=True):
    """Per image and class of bool masks (N, C, *): HD, ASSD, NSD, with the documented empty rules."""
    n, c = pred.shape[:2]
    out = {key: np.zeros((n, c)) for key in ("hd", "assd", "nsd")}
    step = np.asarray(spacing, float)
    for i in range(n):
        for k in range(c):
            bp, bt = ref_boundary(pred[i, k]), ref_boundary(true[i, k])
            d_pt, d_tp = ref_directed(bp, bt, step), ref_directed(bt, bp, step)
            if not bp.any() and not bt.any():
                out["hd"][i, k] = out["assd"][i, k] = out["nsd"][i, k] = np.nan
                continue
            if not bp.any() or not bt.any():
                out["hd"][i, k] = out["assd"][i, k] = np.inf
                out["nsd"][i, k] = 0.0
                continue
            hd = np.percentile(d_pt, percentile)
            out["hd"][i, k] = hd if directed else max(hd, np.percentile(d_tp, percentile))
            pooled = d_pt if not symmetric else np.concatenate([d_pt, d_tp])
            out["assd"][i, k] = pooled.mean()
            out["nsd"][i, k] = ((d_pt <= tolerance).sum() + (d_tp <= tolerance).sum()) / (len(d_pt) + len(d_tp))
    return out


def blobs(shape, classes, seed, sigma=2.0):
    """Smooth random logits (blob-like classes) and a target that agrees with them in part."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((shape[0], classes) + tuple(shape[1:]))
    smooth = ndimage.gaussian_filter(noise, [0, 0] + [sigma] * (len(shape) - 1))
    logits = torch.from_numpy(smooth * 10).float()
    other = ndimage.gaussian_filter(rng.standard_normal(noise.shape), [0, 0] + [sigma] * (len(shape) - 1))
    target = torch.from_numpy((smooth + 0.7 * other).argmax(1))
    return logits, target


def assert_close(actual, expected, name=""):
    np.testing.assert_allclose(np.asarray(actual, float), expected, rtol=2e-6, atol=1e-5, equal_nan=True, err_msg=name)


CASES = [
    ((3, 28, 23), 3, [1.0, 1.0]),
    ((2, 30, 19), 4, [2.5, 0.8]),
    ((2, 9, 14, 11), 3, [3.0, 1.0, 1.0]),
]


# -- values --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape, classes, spacing", CASES)
def test_equals_the_brute_force_reference(shape, classes, spacing):
    logits, target = blobs(shape, classes, seed=sum(shape))
    target[0][target[0] == classes - 1] = 0  # a class absent from one image's target
    for percentile in (95.0, 100.0, 50.0):
        ref = ref_surface(logits, target, spacing, percentile=percentile)
        assert_close(M.hausdorff_distance(logits, target, percentile=percentile, spacing=spacing), ref["hd"], "hd")
    ref = ref_surface(logits, target, spacing, percentile=90.0, directed=True, symmetric=False, tolerance=1.7)
    assert_close(M.hausdorff_distance(logits, target, percentile=90.0, directed=True, spacing=spacing), ref["hd"])
    assert_close(M.average_surface_distance(logits, target, symmetric=False, spacing=spacing), ref["assd"])
    assert_close(M.surface_dice(logits, target, tolerance=1.7, spacing=spacing), ref["nsd"])
    ref = ref_surface(logits, target, spacing, tolerance=2.0)
    assert_close(M.average_surface_distance(logits, target, spacing=spacing), ref["assd"])
    assert_close(M.surface_dice(logits, target, tolerance=2.0, spacing=spacing), ref["nsd"])


def test_ignored_and_zero_weight_pixels_are_left_out_of_both_masks():
    logits, target = blobs((2, 26, 21), 3, seed=5)
    weight = torch.ones(target.shape)
    weight[:, :6] = 0.0
    target[:, -5:, :7] = 255
    ref = ref_surface(logits, target, [1.0, 1.5], ignore_index=255, weight=weight)
    kwargs = dict(weight=weight, ignore_index=255, spacing=[1.0, 1.5])
    assert_close(M.hausdorff_distance(logits, target, **kwargs), ref["hd"])
    assert_close(M.average_surface_distance(logits, target, **kwargs), ref["assd"])
    assert_close(M.surface_dice(logits, target, tolerance=1.0, **kwargs), ref["nsd"])


def test_per_class_tolerance_and_no_background():
    logits, target = blobs((2, 24, 20), 3, seed=9)
    per_class = [ref_surface(logits, target, [1.0, 1.0], tolerance=tau)["nsd"] for tau in (1.0, 2.5)]
    got = M.surface_dice(logits, target, tolerance=[1.0, 2.5], include_background=False)
    assert_close(got, np.stack([per_class[0][:, 1], per_class[1][:, 2]], 1))


def test_sigmoid_and_probabilities_threshold_each_channel():
    logits, classes = blobs((2, 22, 18), 2, seed=3)
    target = torch.nn.functional.one_hot(classes, 2).movedim(-1, 1).float()  # two binary channels
    by_sigmoid = M.hausdorff_distance(logits, target, activation="sigmoid", threshold=0.3)
    by_none = M.hausdorff_distance(torch.sigmoid(logits), target, activation="none", threshold=0.3)
    assert_close(by_sigmoid, by_none.numpy())
    expected = ref_values(torch.sigmoid(logits).numpy() > 0.3, target.numpy() > 0.5, [1.0, 1.0])["hd"]
    assert np.isfinite(expected).any()
    assert_close(by_sigmoid, expected)


def test_empty_rules():
    logits = torch.zeros(1, 2, 8, 8)
    logits[0, 1, 2:5, 2:5] = 5.0  # class 1 predicted in a square
    absent = torch.zeros(1, 8, 8, dtype=torch.long)  # target: background only
    hd = M.hausdorff_distance(logits, absent)
    # Class 1: predicted, absent from the target: inf; both distances and the NSD of class 0 finite.
    assert math.isinf(hd[0, 1]) and math.isfinite(hd[0, 0])
    assert math.isinf(M.average_surface_distance(logits, absent)[0, 1])
    assert float(M.surface_dice(logits, absent, tolerance=1.0)[0, 1]) == 0.0
    # Neither predicted nor in the target: empty_score (NaN by default).
    nothing = torch.zeros(1, 2, 8, 8)
    nothing[0, 0] = 1.0
    for fn, kwargs in ((M.hausdorff_distance, {}), (M.average_surface_distance, {}), (M.surface_dice, {"tolerance": 1.0})):
        assert math.isnan(fn(nothing, absent, **kwargs)[0, 1])
        assert float(fn(nothing, absent, empty_score=0.0, **kwargs)[0, 1]) == 0.0
    # A target without the class and a prediction without it either, on the other side: inf.
    present = absent.clone()
    present[0, 4:7, 4:7] = 1
    assert math.isinf(M.hausdorff_distance(nothing, present, percentile=100.0)[0, 1])


def test_perfect_prediction_scores_zero_distance_and_nsd_one():
    logits, target = blobs((2, 20, 17), 3, seed=1)
    perfect = torch.nn.functional.one_hot(target, 3).movedim(-1, 1).float() * 10
    assert torch.all(M.hausdorff_distance(perfect, target, percentile=100.0).nan_to_num(0.0) == 0)
    assert torch.all(M.surface_dice(perfect, target, tolerance=0.0).nan_to_num(1.0) == 1)


def test_nan_logit_poisons_its_image_only():
    logits, target = blobs((2, 18, 15), 3, seed=2)
    logits[1, 0, 3, 3] = math.nan
    for value in (
        M.hausdorff_distance(logits, target),
        M.average_surface_distance(logits, target),
        M.surface_dice(logits, target, tolerance=1.0),
    ):
        assert torch.isnan(value[1]).all() and not torch.isnan(value[0]).any()


def test_input_is_not_changed():
    logits, target = blobs((1, 12, 11), 2, seed=4)
    before = logits.clone(), target.clone()
    M.surface_dice(logits, target, tolerance=1.0)
    assert torch.equal(before[0], logits) and torch.equal(before[1], target)


@pytest.mark.parametrize(
    "call, argument",
    [
        (lambda x, t: M.hausdorff_distance(x, t, percentile=0.0), "percentile"),
        (lambda x, t: M.hausdorff_distance(x, t, percentile=100.5), "percentile"),
        (lambda x, t: M.hausdorff_distance(x, t, percentile=math.nan), "percentile"),
        (lambda x, t: M.hausdorff_distance(x, t, percentile="95"), "percentile"),
        (lambda x, t: M.hausdorff_distance(x, t, directed=1), "directed"),
        (lambda x, t: M.hausdorff_distance(x, t, spacing=[1.0]), "spacing"),
        (lambda x, t: M.hausdorff_distance(x, t, spacing=[1.0, 0.0]), "spacing"),
        (lambda x, t: M.hausdorff_distance(x, t, spacing=[1.0, math.inf]), "spacing"),
        (lambda x, t: M.hausdorff_distance(x, t, empty_score=math.inf), "empty_score"),
        (lambda x, t: M.average_surface_distance(x, t, symmetric="yes"), "symmetric"),
        (lambda x, t: M.surface_dice(x, t), "tolerance"),
        (lambda x, t: M.surface_dice(x, t, tolerance=-1.0), "tolerance"),
        (lambda x, t: M.surface_dice(x, t, tolerance=math.nan), "tolerance"),
        (lambda x, t: M.surface_dice(x, t, tolerance=[]), "tolerance"),
        (lambda x, t: M.surface_dice(x, t, tolerance=[1.0, 2.0]), "tolerance"),
        (lambda x, t: M.surface_dice(x, t, tolerance="1"), "tolerance"),
        (lambda x, t: M.surface_dice(x, t[:, :5], tolerance=1.0), "target"),
        (lambda x, t: M.hausdorff_distance(x, t + 7), "target"),
        (lambda x, t: M.hausdorff_distance(x, t, weight=-torch.ones(t.shape)), "weight"),
        (lambda x, t: M.SurfaceDice(tolerance=None), "tolerance"),
        (lambda x, t: M.HausdorffDistance(percentile=-5), "percentile"),
        (lambda x, t: M.HausdorffDistance(spacing=[1.0, -2.0]), "spacing"),
    ],
)
def test_errors_name_the_argument(call, argument):
    logits, target = blobs((1, 10, 9), 3, seed=0)
    with pytest.raises((ValueError, TypeError), match=argument):
        call(logits, target)


# -- modes and the evaluation graph -------------------------------------------------------------------


def surface_graph(spacing):
    accumulator = M.SegmentationMetrics(surface=True, tolerance=[1.0, 1.5, 2.0], spacing=spacing)
    metrics = {
        "hd95": M.HausdorffDistance(spacing=spacing),
        "hd": M.HausdorffDistance(percentile=100.0, directed=True, spacing=spacing),
        "assd": M.AverageSurfaceDistance(spacing=spacing, include_background=False),
        "nsd": M.SurfaceDice(tolerance=1.5, spacing=spacing),
        "dice": M.DiceScore(),
        **accumulator.count_modules("ds_"),
    }
    return EvaluationGraph(metrics=metrics), accumulator


def functional_outputs(logits, target, spacing):
    outputs = {
        "hd95": M.hausdorff_distance(logits, target, spacing=spacing),
        "hd": M.hausdorff_distance(logits, target, percentile=100.0, directed=True, spacing=spacing),
        "assd": M.average_surface_distance(logits, target, spacing=spacing, include_background=False),
        "nsd": M.surface_dice(logits, target, tolerance=1.5, spacing=spacing),
    }
    outputs["ds_within"], outputs["ds_boundary"] = M.surface_counts(logits, target, tolerance=[1.0, 1.5, 2.0], spacing=spacing)
    return outputs


def test_graph_groups_the_surface_metrics_and_equals_the_functions():
    graph, _ = surface_graph([2.0, 1.0])
    # One group for the options of every surface metric but ASSD's (no background): two transforms each.
    assert len(graph.surface_groups) == 2
    logits, target = blobs((2, 21, 18), 3, seed=11)
    outputs = graph(logits, target)
    assert list(outputs) == graph.output_names
    for name, value in functional_outputs(logits, target, [2.0, 1.0]).items():
        assert_close(outputs[name.replace("ds_within", "ds_nsd_within").replace("ds_boundary", "ds_nsd_boundary")], value.numpy(), name)


def test_torchscript_equals_eager():
    graph, _ = surface_graph([2.0, 1.0])
    scripted = torch.jit.script(graph)
    logits, target = blobs((2, 19, 24), 3, seed=12)
    logits[1, 0, 0, 0] = math.nan
    expected, actual = graph(logits, target), scripted(logits, target)
    for name in expected:
        assert_close(actual[name], expected[name].double().numpy(), name)


def test_compiled_with_dynamic_shapes_equals_eager():
    # One group (the metrics share their masks), the costly part of a graph, compiled with dynamic
    # shapes on 3D volumes of two sizes. (Static shapes trace the same code: the losses' compile
    # tests cover that mode; the CLI's test runs the 3D graph exported.)
    torch._dynamo.reset()
    spacing = [1.0, 0.7, 1.3]
    metrics = {
        "hd95": M.HausdorffDistance(spacing=spacing),
        "assd": M.AverageSurfaceDistance(spacing=spacing),
        "nsd": M.SurfaceDice(tolerance=1.5, spacing=spacing),
    }
    graph = EvaluationGraph(metrics=metrics)
    compiled = torch.compile(graph, fullgraph=True, dynamic=True)
    for shape in ((1, 6, 12, 8), (3, 8, 9, 11)):
        logits, target = blobs(shape, 3, seed=sum(shape))
        logits[0, 1, 0, 0] = math.nan
        expected, actual = graph(logits, target), compiled(logits, target)
        for name in expected:
            assert_close(actual[name], expected[name].double().numpy(), f"{shape} {name}")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The 2D graph exported once (the CLI's test exports and runs a 3D one with the surface metrics)."""
    pytest.importorskip("onnxruntime")
    from unetweights.export import to_onnx

    spacing = [2.0, 1.0]
    graph, accumulator = surface_graph(spacing)
    path = tmp_path_factory.mktemp("surface") / "2d.onnx"
    to_onnx(graph, path, blobs((2, 20, 17), 3, seed=0))
    return {"2d": (path, graph, accumulator, spacing)}


def test_onnx_equals_torch_on_unseen_shapes(exported):
    from unetweights.runtime import OnnxEvaluator

    path, graph, _, _ = exported["2d"]
    evaluator = OnnxEvaluator(path, providers=["CPUExecutionProvider"])
    for shape in ((1, 33, 12), (3, 17, 40)):
        logits, target = blobs(shape, 3, seed=sum(shape))
        target[0][target[0] == 2] = 0
        actual = evaluator.run(logits.numpy(), target.numpy())
        expected = graph(logits, target)
        for name in expected:
            assert_close(actual[name], expected[name].double().numpy(), f"{shape} {name}")


def test_onnx_poisons_an_invalid_image_only(exported):
    from unetweights.runtime import OnnxEvaluator

    path, graph, _, _ = exported["2d"]
    evaluator = OnnxEvaluator(path, providers=["CPUExecutionProvider"], check_values=False)
    logits, target = blobs((3, 15, 22), 3, seed=21)
    target[1, 2, 2] = 9  # a class index out of range: refused in eager, NaN in the graph
    actual = evaluator.run(logits.numpy(), target.numpy())
    for name in ("hd95", "assd", "nsd", "ds_nsd_within"):
        assert np.isnan(actual[name][1]).all(), name
        assert not np.isnan(actual[name][[0, 2]]).all(), name
        assert_close(actual[name][[0, 2]], graph(logits[[0, 2]], target[[0, 2]])[name].double().numpy(), name)


def test_accumulator_from_onnx_outputs_equals_torch_updates(exported):
    from unetweights.runtime import OnnxEvaluator

    path, _, accumulator, spacing = exported["2d"]
    evaluator = OnnxEvaluator(path, providers=["CPUExecutionProvider"])
    direct = M.SegmentationMetrics(surface=True, tolerance=[1.0, 1.5, 2.0], spacing=spacing)
    for shape in ((2, 19, 23), (1, 25, 14)):
        logits, target = blobs(shape, 3, seed=sum(shape))
        accumulator.update_from_outputs(evaluator.run(logits.numpy(), target.numpy()), prefix="ds_")
        direct.update(logits, target)
    from_graph, from_torch = accumulator.compute(), direct.compute()
    assert set(from_graph) == set(from_torch)
    for name, value in from_torch.items():
        assert_close(from_graph[name].double().numpy(), value.double().numpy(), name)


# -- the accumulator ----------------------------------------------------------------------------------


def test_accumulator_sums_nsd_counts_and_averages_distances():
    spacing = [1.5, 1.0]
    metrics = M.SegmentationMetrics(surface=True, tolerance=1.2, percentile=90.0, spacing=spacing)
    batches = [blobs((2, 23, 19), 3, seed=s) for s in (1, 2)]
    batches[1][1][0][batches[1][1][0] == 2] = 0  # class 2 absent from one target: inf distances
    refs = []
    for logits, target in batches:
        metrics.update(logits, target)
        refs.append(ref_surface(logits, target, spacing, percentile=90.0, tolerance=1.2))
    result = metrics.compute()
    hd = np.concatenate([r["hd"] for r in refs])
    assert_close(result["hd"], np.nanmean(hd, 0))
    assert result["one_empty"].tolist() == np.isinf(hd).sum(0).tolist()
    assert result["hd_images"].tolist() == (~np.isnan(hd)).sum(0).tolist()
    assert_close(result["assd"], np.nanmean(np.concatenate([r["assd"] for r in refs]), 0))
    assert_close(result["nsd_macro"], np.nanmean(np.concatenate([r["nsd"] for r in refs]), 0))
    within = sum(M.surface_counts(x, t, tolerance=1.2, spacing=spacing)[0].double().sum(0) for x, t in batches)
    boundary = sum(M.surface_counts(x, t, tolerance=1.2, spacing=spacing)[1].double().sum(0) for x, t in batches)
    assert_close(result["nsd"], (within / boundary).numpy())


def test_accumulator_ignore_empty_leaves_out_images_whose_target_lacks_the_class():
    logits, target = blobs((3, 20, 20), 3, seed=7)
    target[0][target[0] == 2] = 0
    plain = M.SegmentationMetrics(surface=True, tolerance=1.0)
    monai_rule = M.SegmentationMetrics(surface=True, tolerance=1.0, ignore_empty=True)
    plain.update(logits, target)
    monai_rule.update(logits, target)
    keep = M.SegmentationMetrics(surface=True, tolerance=1.0)
    keep.update(logits[1:], target[1:])
    assert math.isinf(plain.compute()["hd"][2])
    for name in ("hd", "assd", "nsd", "nsd_macro"):
        assert_close(monai_rule.compute()[name][2], float(keep.compute()[name][2]), name)


def test_accumulator_per_batch_spacing_and_nan_carried():
    logits, target = blobs((2, 16, 14), 2, seed=8)
    metrics = M.SegmentationMetrics(surface=True, tolerance=1.0, spacing=[1.0, 1.0])
    metrics.update(logits, target, spacing=[2.0, 0.5])
    ref = ref_surface(logits, target, [2.0, 0.5])
    assert_close(metrics.compute()["hd"], np.nanmean(ref["hd"], 0))
    logits[0, 0, 0, 0] = math.inf
    metrics.update(logits, target)
    assert torch.isnan(metrics.compute()["hd"]).all() and torch.isnan(metrics.compute()["nsd"]).all()


@pytest.mark.parametrize(
    "make, argument",
    [
        (lambda: M.SegmentationMetrics(surface=True), "tolerance"),
        (lambda: M.SegmentationMetrics(surface="yes", tolerance=1.0), "surface"),
        (lambda: M.SegmentationMetrics(surface=True, tolerance=1.0, percentile=0), "percentile"),
        (lambda: M.SegmentationMetrics(surface=True, tolerance=1.0, spacing=[1.0, 0.0]), "spacing"),
    ],
)
def test_accumulator_options_are_checked(make, argument):
    with pytest.raises((ValueError, TypeError), match=argument):
        make()


def test_accumulator_update_counts_checks_the_surface_values():
    metrics = M.SegmentationMetrics(surface=True, tolerance=1.0)
    logits, target = blobs((2, 12, 12), 2, seed=3)
    counts = M.segmentation_counts(logits, target)
    with pytest.raises(ValueError, match="surface"):
        metrics.update_counts(*counts)
    graph = EvaluationGraph(metrics=metrics.count_modules())
    outputs = {k: v.numpy() for k, v in graph(logits, target).items()}
    bad = dict(outputs, nsd_within=outputs["nsd_boundary"] + 1)
    with pytest.raises(ValueError, match="nsd_within"):
        metrics.update_from_outputs(bad)
    with pytest.raises(ValueError, match="assd"):
        metrics.update_from_outputs(dict(outputs, assd=-outputs["nsd_boundary"] - 1))
    with pytest.raises(ValueError, match="missing"):
        metrics.update_from_outputs({k: v for k, v in outputs.items() if k != "hd"})
    with pytest.raises(ValueError, match="spacing"):
        M.SegmentationMetrics().update(logits, target, spacing=[1.0, 1.0])
    metrics.update_from_outputs(outputs)
    assert int(metrics.compute()["images"]) == 2
