"""ONNX export: the saved graph equals torch on shapes it never saw, and the checks on the file bite."""

import os

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from unetweights.evaluation import EvaluationGraph
from unetweights.export import append_to_model, dynamic_dims, to_onnx, to_torchscript

from .graphs import (
    computed_distance_graph,
    distance_graph,
    distance_inputs,
    probability_graph,
    probability_inputs,
    sigmoid_graph,
    sigmoid_inputs,
    softmax_graph,
    softmax_inputs,
)

TOLERANCE = 1e-5


def run_onnx(path, feeds):
    ort.set_default_logger_severity(3)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, {k: v.numpy() for k, v in feeds.items()})))


def assert_matches_torch(path, graph, inputs):
    names = ["logits", "target", "weight", "distance"][: len(inputs)]
    actual = run_onnx(path, dict(zip(names, inputs)))
    with torch.no_grad():
        expected = graph(*inputs)
    assert list(actual) == list(expected)
    for name, value in expected.items():
        assert actual[name].shape == tuple(value.shape), name
        # NaN only where torch has NaN (a class with nothing to score), and close elsewhere.
        np.testing.assert_allclose(actual[name], value.double().numpy(), rtol=0, atol=TOLERANCE, equal_nan=True,
                                   err_msg=name)
    return expected


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Each graph exported once, at one example shape; the tests run it at others."""
    folder = tmp_path_factory.mktemp("onnx")
    graphs = {}
    for key, graph, inputs in [
        ("softmax_2d", softmax_graph(), softmax_inputs((2, 3, 24, 20))),
        ("sigmoid_2d", sigmoid_graph(), sigmoid_inputs((2, 1, 16, 12))),
        ("probability_2d", probability_graph(), probability_inputs((2, 1, 16, 12))),
        # Only the losses that compute the map (the others run in distance_3d): a smaller export.
        ("distance_computed_2d", computed_distance_graph([1.0, 0.5]), softmax_inputs((2, 3, 24, 20))),
        ("distance_3d", distance_graph([2.0, 1.0, 1.0]), distance_inputs((2, 3, 6, 10, 8), [2.0, 1.0, 1.0])),
    ]:
        path = folder / f"{key}.onnx"
        graphs[key] = (graph, path, to_onnx(graph, path, inputs))
    return graphs


UNSEEN = {
    "softmax_2d": [(1, 3, 17, 9), (3, 3, 31, 40), (2, 3, 5, 64)],
    "sigmoid_2d": [(1, 1, 13, 29), (3, 1, 32, 7)],
    "probability_2d": [(1, 1, 13, 29), (3, 1, 32, 7)],
    "distance_computed_2d": [(1, 3, 17, 9), (3, 3, 31, 40)],
    "distance_3d": [(1, 3, 5, 7, 9), (3, 3, 4, 11, 6)],
}

SPACING = {"distance_computed_2d": [1.0, 0.5], "distance_3d": [2.0, 1.0, 1.0]}


@pytest.mark.parametrize("key,shape", [(k, s) for k, shapes in UNSEEN.items() for s in shapes])
def test_onnx_equals_torch_on_unseen_shapes(exported, key, shape):
    graph, path, _ = exported[key]
    if key.startswith("sigmoid"):
        inputs = sigmoid_inputs(shape, seed=sum(shape))
    elif key.startswith("probability"):
        inputs = probability_inputs(shape, seed=sum(shape))
    elif key in SPACING:
        inputs = distance_inputs(shape, SPACING[key], seed=sum(shape))[: 3 if "computed" in key else 4]
    else:
        inputs = softmax_inputs(shape, seed=sum(shape), weighted=key != "unweighted_2d")
    assert_matches_torch(path, graph, inputs)


def test_absent_class_is_nan_in_onnx_where_it_is_in_torch(exported):
    # In 2D here; the CLI's test runs the 3D default graph's absent class (--ignore-empty) through ONNX.
    graph, path, _ = exported["softmax_2d"]
    logits, target, weight = softmax_inputs((3, 3, 7, 5), seed=11)
    # Image 1 has no class 2 in its target or its prediction: its Dice, IoU and accuracy are NaN there.
    target[1][target[1] == 2] = 0
    logits[1, 2] -= 100.0
    # Image 2 has no class 1 in its target but predicts it: Dice scores it 0 (the default rule),
    # the IoU (ignore_empty=True, MONAI's rule) NaN.
    target[2][target[2] == 1] = 0
    expected = assert_matches_torch(path, graph, (logits, target, weight))
    assert torch.isnan(expected["dice"][1, 2]) and torch.isnan(expected["iou"][1, 1])
    assert torch.isfinite(expected["dice"][0]).all() and torch.isfinite(expected["dice"][1, :2]).all()
    assert expected["dice"][2, 1] == 0.0 and torch.isnan(expected["iou"][2, 0])
    assert torch.isfinite(expected["iou"][0]).all() and torch.isfinite(expected["iou"][2, 1])


@pytest.mark.parametrize("value", [1.5, -0.25, float("nan")])
def test_a_probability_outside_0_1_poisons_only_its_image_in_onnx(exported, value):
    """Eager mode refuses it; the exported graph, which cannot raise, makes the BCE of its image NaN."""
    graph, path, _ = exported["probability_2d"]
    probabilities, target, weight = probability_inputs((3, 1, 9, 11), seed=4)
    clean = assert_matches_torch(path, graph, (probabilities, target, weight))
    probabilities[1, 0, 2, 3] = value
    spoiled = run_onnx(path, {"logits": probabilities, "target": target, "weight": weight})
    for name in ("bce", "bce_balance"):
        assert np.isnan(spoiled[name][1]), name
        np.testing.assert_allclose(spoiled[name][[0, 2]], clean[name][[0, 2]].numpy(), rtol=0, atol=TOLERANCE, err_msg=name)


def test_distance_graph_computes_what_the_pipeline_precomputes(exported):
    """The graph exported without a distance input computes the target's map itself, in its spacing."""
    graph, path, report = exported["distance_computed_2d"]
    assert [s.name for s in report.inputs] == ["logits", "target", "weight"]
    inputs = distance_inputs((2, 3, 19, 13), [1.0, 0.5], seed=5)
    computed = run_onnx(path, dict(zip(["logits", "target", "weight"], inputs[:3])))
    with torch.no_grad():
        given = graph(*inputs)
    for name in ("boundary", "hausdorff_dt"):
        np.testing.assert_allclose(computed[name], given[name].numpy(), rtol=1e-5, atol=1e-5, err_msg=name)
    assert exported["distance_3d"][2].inputs[3].shape == ("batch", 2, "depth", "height", "width")


def test_report_lists_symbolic_shapes(exported):
    # The 3D export (the softmax family's 3D export is the CLI's test's, and test_modes exports every
    # loss in 3D with torch.export).
    graph, path, report = exported["distance_3d"]
    assert report.path == str(path)
    assert report.opset == 20
    assert report.file_size == os.path.getsize(path) > 0
    assert [(s.name, s.dtype, s.shape) for s in report.inputs] == [
        ("logits", "float32", ("batch", 3, "depth", "height", "width")),
        ("target", "int64", ("batch", "depth", "height", "width")),
        ("weight", "float32", ("batch", "depth", "height", "width")),
        ("distance", "float32", ("batch", 2, "depth", "height", "width")),
    ]
    assert [s.name for s in report.outputs] == graph.output_names
    shapes = {s.name: s.shape for s in report.outputs}
    assert shapes["generalized_dice"] == ("batch",) and shapes["boundary"] == ("batch",)
    assert shapes["dice"] == ("batch", 3)
    assert "logits: float32[batch, 3, depth, height, width]" in str(report)
    # And a 2D report: a metric without the background has C - 1 columns.
    shapes = {s.name: s.shape for s in exported["softmax_2d"][2].outputs}
    assert shapes["ce"] == ("batch",) and shapes["dice"] == ("batch", 3)
    assert shapes["iou"] == ("batch", 2) and shapes["overall_accuracy"] == ("batch",)


def test_softmax_is_written_as_reductions(exported):
    """onnxruntime transposes for Softmax/LogSoftmax on the class axis; the export avoids both ops."""
    _, path, _ = exported["softmax_2d"]
    ops = {node.op_type for node in onnx.load(str(path)).graph.node}
    assert not ops & {"Softmax", "LogSoftmax"}
    assert "ReduceMax" in ops


@pytest.fixture(scope="module")
def opset_18(tmp_path_factory):
    """The default graph exported at opset 18 once: checked here, and joined to an opset-20 network below."""
    graph = EvaluationGraph.default()
    path = tmp_path_factory.mktemp("opset18") / "eval18.onnx"
    return graph, path, to_onnx(graph, path, softmax_inputs((2, 3, 12, 10)), opset=18)


def test_opset_18(opset_18):
    graph, path, report = opset_18
    assert report.opset == 18
    inputs = softmax_inputs((3, 3, 7, 15), seed=3)
    inputs[1].clamp_(min=0)  # the default graph's metrics take no ignored pixels
    assert_matches_torch(path, graph, inputs)


def test_dynamic_false_fixes_every_dim(tmp_path):
    report = to_onnx(EvaluationGraph.default(), tmp_path / "g.onnx", softmax_inputs((2, 3, 8, 6)), dynamic=False)
    assert report.inputs[0].shape == (2, 3, 8, 6)
    assert report.outputs[0].shape == (2,)


class LoopOverBatch(nn.Module):
    def forward(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return torch.stack([x[i].mean() for i in range(x.shape[0])])


class SizeAsNumber(nn.Module):
    def forward(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], -1).sum(1) / int(x.shape[-1])


@pytest.mark.parametrize(
    "module,fixed",
    [(LoopOverBatch(), "input 'x' dim 0 ('batch') is fixed at 2"), (SizeAsNumber(), "input 'x' dim 3 ('width') is fixed at 6")],
)
def test_a_dim_the_code_fixes_is_an_error_and_no_file_is_left(tmp_path, module, fixed):
    path = tmp_path / "fixed.onnx"
    with pytest.raises(RuntimeError, match="came out fixed") as info:
        to_onnx(module, path, (torch.randn(2, 3, 8, 6), torch.randn(2, 8, 6)))
    assert fixed in str(info.value)
    assert f"nothing was written to {path}" in str(info.value)
    assert os.listdir(tmp_path) == []  # neither the file nor its temporary twin


def test_to_onnx_argument_errors(tmp_path):
    graph = EvaluationGraph.default()
    inputs = softmax_inputs((2, 3, 8, 6))
    with pytest.raises(TypeError, match="module: the ONNX exporter cannot take a TorchScript module"):
        to_onnx(torch.jit.script(graph), tmp_path / "g.onnx", inputs)
    with pytest.raises(ValueError, match=r"example_inputs\[0\]: dim 0 \('batch'\) has size 1"):
        to_onnx(graph, tmp_path / "g.onnx", softmax_inputs((1, 3, 8, 6)))
    with pytest.raises(ValueError, match=r"example_inputs\[0\]: dim 3 \('width'\) has size 1"):
        to_onnx(graph, tmp_path / "g.onnx", softmax_inputs((2, 3, 8, 1)))
    with pytest.raises(TypeError, match=r"example_inputs\[1\]: expected a tensor"):
        to_onnx(graph, tmp_path / "g.onnx", (inputs[0], inputs[1].numpy()))
    with pytest.raises(ValueError, match="example_inputs: expected at least one tensor"):
        to_onnx(graph, tmp_path / "g.onnx", ())
    with pytest.raises(ValueError, match="opset: the torch.export-based exporter writes opset 18 or newer, got 17"):
        to_onnx(graph, tmp_path / "g.onnx", inputs, opset=17)
    with pytest.raises(TypeError, match="module: expected an nn.Module"):
        to_onnx(lambda x: x, tmp_path / "g.onnx", inputs)


def test_dynamic_dims_names():
    x = torch.zeros(2, 3, 4, 5, 6)
    assert dynamic_dims([x, torch.zeros(2, 4, 5, 6), torch.zeros(2, 1, 4, 5, 6)]) == [
        {0: "batch", 2: "depth", 3: "height", 4: "width"},
        {0: "batch", 1: "depth", 2: "height", 3: "width"},
        {0: "batch", 2: "depth", 3: "height", 4: "width"},
    ]
    with pytest.raises(ValueError, match=r"example_inputs\[1\]: expected a batch dim and 3 spatial dims"):
        dynamic_dims([x, torch.zeros(4, 5)])


# -- TorchScript -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make_graph,make_inputs",
    [(softmax_graph, softmax_inputs), (sigmoid_graph, sigmoid_inputs), (probability_graph, probability_inputs)],
)
def test_torchscript_reload_equals_eager(tmp_path, make_graph, make_inputs):
    graph = make_graph()
    loaded = to_torchscript(graph, tmp_path / "g.pt", make_inputs((2, 3, 8, 6) if make_graph is softmax_graph else (2, 1, 8, 6)))
    assert isinstance(loaded, torch.jit.ScriptModule)
    shape = (3, 3, 5, 4, 7) if make_graph is softmax_graph else (1, 1, 9, 13)
    inputs = make_inputs(shape, seed=7)
    with torch.no_grad():
        expected, actual = graph(*inputs), loaded(*inputs)
    assert list(actual) == graph.output_names
    for name in expected:
        torch.testing.assert_close(actual[name], expected[name], rtol=0, atol=1e-6)


class Noisy(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.rand_like(x)


def test_torchscript_check_catches_a_reload_that_differs(tmp_path):
    with pytest.raises(RuntimeError, match="differs from eager"):
        to_torchscript(Noisy(), tmp_path / "n.pt", torch.zeros(100))
    with pytest.raises(RuntimeError, match="differs from eager by nan"):
        to_torchscript(NoisyNaN(), tmp_path / "n.pt", torch.zeros(100))


class NoisyNaN(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.where(torch.rand_like(x) < 0.5, torch.full_like(x, float("nan")), x)


def test_torchscript_check_accepts_nan_where_eager_has_it(tmp_path):
    # An example batch with a class absent from image 0: the default metrics are NaN there.
    logits, target, weight = softmax_inputs((2, 3, 8, 6), seed=3)
    target[0][target[0] == 2] = 0
    logits[0, 2] -= 100.0
    graph = EvaluationGraph.default(ignore_index=-1)
    loaded = to_torchscript(graph, tmp_path / "g.pt", (logits, target, weight))
    assert torch.isnan(loaded(logits, target, weight)["dice"][0, 2])


# -- one graph from images to metrics ----------------------------------------------------------


class TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3, padding=1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.conv(image)


def test_append_to_model(exported, tmp_path):
    torch.manual_seed(0)
    net = TinyNet().eval()
    # The evaluation side is the module's softmax graph, exported once for every test here.
    graph, evaluation, _ = exported["softmax_2d"]
    to_onnx(net, tmp_path / "net.onnx", torch.randn(2, 1, 24, 20), input_names=["image"], output_names=["logits"])
    joined = append_to_model(tmp_path / "net.onnx", evaluation, tmp_path / "joined.onnx", keep_model_outputs=True)
    assert [i.name for i in joined.graph.input] == ["image", "target", "weight"]
    assert [o.name for o in joined.graph.output] == ["logits", *graph.output_names]
    image = torch.randn(3, 1, 17, 30)
    _, target, weight = softmax_inputs((3, 3, 17, 30), seed=4)
    actual = run_onnx(tmp_path / "joined.onnx", {"image": image, "target": target, "weight": weight})
    with torch.no_grad():
        logits = net(image)
        expected = {"logits": logits, **graph(logits, target, weight)}
    for name, value in expected.items():
        np.testing.assert_allclose(actual[name], value.numpy(), rtol=0, atol=TOLERANCE, equal_nan=True, err_msg=name)
    assert not (tmp_path / "other.onnx").exists()
    only_metrics = append_to_model(onnx.load(str(tmp_path / "net.onnx")), onnx.load(str(evaluation)))
    assert [o.name for o in only_metrics.graph.output] == graph.output_names


def test_append_to_model_errors(opset_18, tmp_path):
    net = TinyNet().eval()
    to_onnx(net, tmp_path / "net.onnx", torch.randn(2, 1, 8, 6), input_names=["image"], output_names=["logits"])
    (tmp_path / "eval18.onnx").write_bytes(opset_18[1].read_bytes())
    with pytest.raises(ValueError, match="model, evaluation: expected the same opset, got 20 and 18"):
        append_to_model(tmp_path / "net.onnx", tmp_path / "eval18.onnx")
    with pytest.raises(ValueError, match=r"model_output: expected one of the model's outputs \['logits'\], got 'scores'"):
        append_to_model(tmp_path / "net.onnx", tmp_path / "eval18.onnx", model_output="scores")
    with pytest.raises(FileNotFoundError, match="evaluation: no such file"):
        append_to_model(tmp_path / "net.onnx", tmp_path / "missing.onnx")
    with pytest.raises(ValueError, match="evaluation: expected an input named 'logits'"):
        append_to_model(tmp_path / "net.onnx", tmp_path / "net.onnx")
    with pytest.raises(ValueError, match=r"^path: .* is a folder; expected the path of the file to write$"):
        append_to_model(tmp_path / "net.onnx", tmp_path / "eval18.onnx", tmp_path)
    with pytest.raises(ValueError, match=r"^path: the folder of .*joined.onnx does not exist"):
        append_to_model(tmp_path / "net.onnx", tmp_path / "eval18.onnx", tmp_path / "missing" / "joined.onnx")


def test_evaluator_checks_and_poisons_the_distance_input(exported):
    from unetweights.runtime import OnnxEvaluator

    graph, path, _ = exported["distance_3d"]
    logits, target, weight, distance = distance_inputs((2, 3, 4, 5, 6), [2.0, 1.0, 1.0], seed=3)
    distance[1, 0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="distance.*image 1"):
        OnnxEvaluator(path, providers="cpu", threads=1)(logits, target, weight, distance)
    outputs = OnnxEvaluator(path, providers="cpu", threads=1, check_values=False)(logits, target, weight, distance)
    for name in ("boundary", "hausdorff_dt"):
        assert torch.isfinite(outputs[name][0]) and torch.isnan(outputs[name][1]), name
