"""OnnxEvaluator on CPU: results equal torch, providers are chosen quietly, bad input is named."""

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import unetweights.metrics as M
from unetweights import _providers
from unetweights.evaluation import EvaluationGraph
from unetweights.export import to_onnx
from unetweights.runtime import OnnxEvaluator

from .export.graphs import softmax_graph, softmax_inputs

TOLERANCE = 1e-5


def _cuda_really_works() -> bool:
    return _providers.CUDA in ort.get_available_providers() and _providers._nvidia_device_present()


@pytest.fixture(scope="module")
def graph_file(tmp_path_factory):
    graph = softmax_graph()
    path = tmp_path_factory.mktemp("runtime") / "eval.onnx"
    to_onnx(graph, path, softmax_inputs((2, 3, 12, 10)))
    return graph, path


@pytest.fixture(scope="module")
def evaluator(graph_file):
    return OnnxEvaluator(graph_file[1], providers="cpu")


def _assert_close(actual, expected):
    assert list(actual) == list(expected)
    for name, value in expected.items():
        got = actual[name].detach().cpu().numpy() if isinstance(actual[name], torch.Tensor) else actual[name]
        assert got.shape == tuple(value.shape), name
        np.testing.assert_allclose(got.astype(np.float64), value.double().numpy(), rtol=0, atol=TOLERANCE,
                                   equal_nan=True, err_msg=name)


def test_numpy_in_numpy_out(graph_file, evaluator):
    graph, _ = graph_file
    inputs = softmax_inputs((3, 3, 17, 9), seed=1)
    actual = evaluator(*(x.numpy() for x in inputs))
    assert all(isinstance(v, np.ndarray) for v in actual.values())
    with torch.no_grad():
        _assert_close(actual, graph(*inputs))


def test_torch_in_torch_out_through_iobinding(graph_file, evaluator):
    graph, _ = graph_file
    logits, target, weight = softmax_inputs((2, 3, 9, 21), seed=2)
    # A non-contiguous view must be bound by its values, not its storage order.
    logits_t = logits.transpose(2, 3).contiguous().transpose(2, 3)
    assert not logits_t.is_contiguous()
    actual = evaluator.run(logits_t, target=target, weight=weight)
    assert all(isinstance(v, torch.Tensor) and v.device.type == "cpu" for v in actual.values())
    with torch.no_grad():
        _assert_close(actual, graph(logits, target, weight))


def test_torch_outputs_outlive_later_runs(evaluator):
    """Outputs taken over from onnxruntime must own their memory: later runs must not touch them."""
    import gc

    inputs = softmax_inputs((2, 3, 40, 30), seed=4)
    first = evaluator(*inputs)
    kept = {name: value.clone() for name, value in first.items()}
    for scale in range(2, 12):
        evaluator(inputs[0] * scale, inputs[1], inputs[2])
    gc.collect()
    for name, value in first.items():
        torch.testing.assert_close(value, kept[name], rtol=0, atol=0)


def test_session_config_entries(graph_file, evaluator):
    inputs = [x.numpy() for x in softmax_inputs((2, 3, 8, 8), seed=3)]
    quiet = OnnxEvaluator(graph_file[1], providers="cpu", session_config={"session.intra_op.allow_spinning": "0"})
    for name, value in evaluator(*inputs).items():
        np.testing.assert_array_equal(quiet(*inputs)[name], value)


def test_threads_and_optimisation_levels_agree(graph_file, evaluator):
    inputs = [x.numpy() for x in softmax_inputs((2, 3, 8, 8), seed=3)]
    reference = evaluator(*inputs)
    for options in ({"threads": 1}, {"optimization": "disable"}, {"optimization": "basic"}):
        other = OnnxEvaluator(graph_file[1], providers="cpu", **options)(*inputs)
        for name in reference:
            np.testing.assert_allclose(other[name], reference[name], rtol=0, atol=TOLERANCE)


def test_describes_the_graph(evaluator, graph_file):
    assert evaluator.provider == "CPUExecutionProvider"
    assert [(s.name, s.shape) for s in evaluator.inputs] == [
        ("logits", ("batch", 3, "height", "width")),
        ("target", ("batch", "height", "width")),
        ("weight", ("batch", "height", "width")),
    ]
    assert evaluator.output_names == graph_file[0].output_names
    assert "provider='CPUExecutionProvider'" in repr(evaluator)
    # Every part of the test graph ignores -1, so to_onnx recorded it for the value checks.
    assert evaluator.check_values is True and evaluator.ignore_index == -1


# -- provider choice -----------------------------------------------------------------------------


@pytest.mark.skipif(_cuda_really_works(), reason="this machine has a working CUDA provider")
def test_auto_falls_back_to_cpu_without_a_word(graph_file, capfd):
    evaluator = OnnxEvaluator(graph_file[1])
    assert evaluator.provider == "CPUExecutionProvider"
    assert evaluator.cuda_unavailable_reason
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""


def test_a_cuda_provider_that_fails_to_start_is_detected_quietly(graph_file, monkeypatch, capfd):
    """The provider is listed but cannot start (here: no CUDA libraries); no error log escapes."""
    if _cuda_really_works():
        pytest.skip("CUDA works here; the failure path cannot be provoked")
    if _providers.CUDA not in ort.get_available_providers():
        pytest.skip("this onnxruntime build has no CUDA provider to fail")
    monkeypatch.setattr(_providers, "_nvidia_device_present", lambda: True)
    evaluator = OnnxEvaluator(graph_file[1], providers="auto")
    assert evaluator.provider == "CPUExecutionProvider"
    assert "could not start its CUDA provider" in evaluator.cuda_unavailable_reason
    with pytest.raises(RuntimeError, match="providers: 'cuda' was asked for, but onnxruntime could not start"):
        OnnxEvaluator(graph_file[1], providers="cuda")
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""
    # The default logger is back at onnxruntime's own level afterwards.
    assert _providers._ORT_DEFAULT_SEVERITY == 2


def test_no_cuda_provider_in_the_build(graph_file, monkeypatch):
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    evaluator = OnnxEvaluator(graph_file[1])
    assert evaluator.provider == "CPUExecutionProvider"
    assert "no CUDA provider" in evaluator.cuda_unavailable_reason
    with pytest.raises(RuntimeError, match="providers: 'cuda' was asked for, but this onnxruntime build has no CUDA provider"):
        OnnxEvaluator(graph_file[1], providers="cuda")


def test_no_gpu_on_the_machine(graph_file, monkeypatch):
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setattr(_providers, "_nvidia_device_present", lambda: False)
    evaluator = OnnxEvaluator(graph_file[1])
    assert evaluator.provider == "CPUExecutionProvider"
    with pytest.raises(RuntimeError, match="providers: 'cuda' was asked for, but no NVIDIA GPU"):
        OnnxEvaluator(graph_file[1], providers="cuda")


class _SessionReportingCuda(ort.InferenceSession):
    """A real CPU session that reports the CUDA provider first, as a working CUDA session does."""

    asked = []

    def __init__(self, path, options=None, providers=None):
        _SessionReportingCuda.asked.append(providers)
        super().__init__(path, options, providers=["CPUExecutionProvider"])

    def get_providers(self):
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]


def test_auto_and_cuda_pick_a_working_cuda_provider(graph_file, monkeypatch):
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setattr(_providers, "_nvidia_device_present", lambda: True)
    monkeypatch.setattr(ort, "InferenceSession", _SessionReportingCuda)
    _SessionReportingCuda.asked.clear()
    for choice in ("auto", "cuda"):
        evaluator = OnnxEvaluator(graph_file[1], providers=choice, device_id=1)
        assert evaluator.provider == "CUDAExecutionProvider"
        assert evaluator.cuda_unavailable_reason is None
    assert _SessionReportingCuda.asked[-1] == [("CUDAExecutionProvider", {"device_id": 1}), "CPUExecutionProvider"]


def test_cpu_never_tries_cuda(graph_file, monkeypatch):
    monkeypatch.setattr(ort, "InferenceSession", _SessionReportingCuda)
    _SessionReportingCuda.asked.clear()
    OnnxEvaluator(graph_file[1], providers="cpu")
    assert _SessionReportingCuda.asked == [["CPUExecutionProvider"]]


def test_explicit_provider_list_is_passed_through(graph_file):
    evaluator = OnnxEvaluator(graph_file[1], providers=["CPUExecutionProvider"])
    assert evaluator.provider == "CPUExecutionProvider"


# -- errors -----------------------------------------------------------------------------------


def test_constructor_errors(graph_file, tmp_path):
    with pytest.raises(FileNotFoundError, match="path: no ONNX file at .*missing.onnx"):
        OnnxEvaluator(tmp_path / "missing.onnx")
    with pytest.raises(TypeError, match="path: expected a str or os.PathLike naming an .onnx file, got int"):
        OnnxEvaluator(3)
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="path: onnxruntime cannot load .*broken.onnx"):
        OnnxEvaluator(broken, providers="cpu")
    with pytest.raises(ValueError, match="providers: expected 'auto', 'cuda', 'cpu' or a list of providers, got 'gpu'"):
        OnnxEvaluator(graph_file[1], providers="gpu")
    with pytest.raises(ValueError, match="optimization: expected one of"):
        OnnxEvaluator(graph_file[1], optimization="max")
    with pytest.raises(ValueError, match="threads: expected a positive int or None, got 0"):
        OnnxEvaluator(graph_file[1], threads=0)


@pytest.mark.parametrize(
    "change,error,message",
    [
        (lambda x, t, w: (x[0], t, w), ValueError, r"logits: expected 4 dims float32\[batch, 3, height, width\], got shape \[3, 8, 6\]"),
        (lambda x, t, w: (x.double(), t, w), ValueError, "logits: expected dtype float32, got float64"),
        (lambda x, t, w: (x, t.int(), w), ValueError, "target: expected dtype int64, got int32"),
        (lambda x, t, w: (x[:, :2], t, w), ValueError, r"logits: dim 1 is fixed at 3 in the graph float32\[batch, 3, height, width\], got 2"),
        (lambda x, t, w: (x, t[:1], w), ValueError, r"target: dim 0 \('batch'\) is 1, but logits has batch = 2"),
        (lambda x, t, w: (x, t, w[:, :, :5]), ValueError, r"weight: dim 2 \('width'\) is 5, but logits has width = 6"),
        (lambda x, t, w: (x, t), ValueError, r"inputs: missing \['weight'\]"),
        (lambda x, t, w: (x, t, w, w), ValueError, "inputs: the graph takes 3 inputs"),
        (lambda x, t, w: (x, t, w.tolist()), TypeError, "weight: expected a numpy array or a torch tensor, got list"),
        (lambda x, t, w: (x, t.numpy(), w), TypeError, "inputs: expected all numpy arrays or all torch tensors"),
    ],
)
def test_run_errors(evaluator, change, error, message):
    inputs = change(*softmax_inputs((2, 3, 8, 6)))
    with pytest.raises(error, match=message):
        evaluator(*inputs)


@pytest.mark.parametrize("as_torch", [False, True])
def test_an_empty_batch_or_image_is_named_before_the_run(evaluator, as_torch, capfd):
    """onnxruntime itself fails deep inside (a Broadcaster error, with error logs): an empty batch
    has no per-image outputs to give, so it is refused by name before the session runs."""
    x, t, w = softmax_inputs((2, 3, 8, 6))
    convert = (lambda v: v) if as_torch else (lambda v: v.numpy())
    with pytest.raises(ValueError, match=r"logits: expected a non-empty batch \(at least one image along dim 0\), got shape \[0, 3, 8, 6\]"):
        evaluator(*(convert(v[:0]) for v in (x, t, w)))
    with pytest.raises(ValueError, match=r"logits: dim 3 \('width'\) is 0; expected at least one element along every dim"):
        evaluator(*(convert(v[..., :0]) for v in (x, t, w)))
    assert "onnxruntime" not in capfd.readouterr().err


def test_named_input_errors(evaluator):
    x, t, w = softmax_inputs((2, 3, 8, 6))
    with pytest.raises(ValueError, match=r"labels: not an input of the graph; its inputs are \['logits', 'target', 'weight'\]"):
        evaluator(x, t, w, labels=t)
    with pytest.raises(ValueError, match="target: given both by position and by name"):
        evaluator(x, t, w, target=t)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA tensor")
def test_cuda_tensors_need_the_cuda_provider(evaluator):
    inputs = [x.cuda() for x in softmax_inputs((2, 3, 8, 6))]
    with pytest.raises(ValueError, match="inputs: CUDA tensors need the CUDA provider"):
        evaluator(*inputs)


def test_fixed_graph_rejects_other_sizes(tmp_path):
    path = tmp_path / "fixed.onnx"
    to_onnx(EvaluationGraph.default(), path, softmax_inputs((2, 3, 8, 6)), dynamic=False)
    evaluator = OnnxEvaluator(path, providers="cpu")
    x, t, w = (v.clamp(min=0) if v.dtype == torch.int64 else v for v in softmax_inputs((2, 3, 8, 7)))
    with pytest.raises(ValueError, match=r"logits: dim 3 is fixed at 6 in the graph float32\[2, 3, 8, 6\], got 7"):
        evaluator(x, t, w)


# -- evaluate ---------------------------------------------------------------------------------


def test_evaluate_batches_samples_and_dicts_agree_with_torch(graph_file, evaluator, capsys):
    graph, _ = graph_file
    inputs = softmax_inputs((5, 3, 10, 7), seed=9)
    with torch.no_grad():
        expected = graph(*inputs)
    dataset = TensorDataset(*inputs)
    by_batch = evaluator.evaluate(DataLoader(dataset, batch_size=2), progress=False)
    by_sample = evaluator.evaluate(dataset, progress=False)
    as_dicts = [dict(zip(["logits", "target", "weight", "name"], (*item, f"image{i}"))) for i, item in enumerate(dataset)]
    by_dict = evaluator.evaluate(as_dicts, progress=False)
    numpy_items = [tuple(v.numpy() for v in item) for item in dataset]
    by_numpy = evaluator.evaluate(numpy_items, progress=False)
    for result in (by_batch, by_sample, by_dict, by_numpy):
        assert result.num_images == 5
        assert result.provider == "CPUExecutionProvider"
        _assert_close(result.per_image, expected)
        for name, value in expected.items():
            values = value.double().numpy()
            np.testing.assert_allclose(result.summary[name]["mean"], values.mean(0), rtol=0, atol=TOLERANCE)
            np.testing.assert_allclose(result.summary[name]["std"], values.std(0), rtol=0, atol=TOLERANCE)
            np.testing.assert_array_equal(result.summary[name]["count"], np.full(values.shape[1:], 5))
    table = by_batch.format_summary()
    assert "5 images" in table and "ce" in table and "±" in table
    assert "[" not in table and "n/a" not in table  # every image counts in every column
    assert capsys.readouterr().err == ""


def test_evaluate_shows_progress(evaluator, capsys):
    dataset = TensorDataset(*softmax_inputs((3, 3, 6, 6), seed=1))
    evaluator.evaluate(DataLoader(dataset, batch_size=1), description="scoring")
    err = capsys.readouterr().err
    assert "scoring" in err and "3/3" in err


def test_evaluate_summary_leaves_nan_out(tmp_path):
    graph = EvaluationGraph(metrics={"dice": M.DiceScore()})  # an absent class is NaN by default
    path = tmp_path / "nan.onnx"
    to_onnx(graph, path, softmax_inputs((2, 3, 6, 6), weighted=False))
    logits, _ = softmax_inputs((2, 3, 6, 6), weighted=False)
    target = torch.zeros(2, 6, 6, dtype=torch.long)  # class 1 and 2 absent from the target...
    logits[:, 0] += 100.0  # ...and from the prediction in image 0
    logits[1, 2, 0, 0] += 1000.0  # image 1 predicts class 2 once: Dice 0 there
    result = OnnxEvaluator(path, providers="cpu").evaluate([(logits, target)], progress=False)
    dice = result.per_image["dice"]
    assert np.isnan(dice[0, 1]) and np.isnan(dice[0, 2]) and dice[1, 2] == 0.0
    np.testing.assert_allclose(result.summary["dice"]["mean"][2], 0.0)
    assert np.isnan(result.summary["dice"]["mean"][1]) and np.isnan(result.summary["dice"]["std"][1])
    np.testing.assert_array_equal(result.summary["dice"]["count"], [2, 0, 1])
    # The table says over how many images a mean is, and n/a where there is none.
    row = result.format_summary().splitlines()[1]
    assert row.split()[0] == "dice"
    cells = row[len("dice"):].strip().split("   ")
    assert cells[0] == f"{result.summary['dice']['mean'][0]:.4f} ± {result.summary['dice']['std'][0]:.4f}"
    assert cells[1:] == ["n/a", "0.0000 ± 0.0000 [1]"]
    assert "[k]: over the k images where it is not NaN" in result.format_summary()


def test_evaluate_errors(evaluator):
    x, t, w = softmax_inputs((2, 3, 6, 6))
    with pytest.raises(ValueError, match="data: expected at least one item"):
        evaluator.evaluate([], progress=False)
    with pytest.raises(ValueError, match=r"data\[0\]: missing keys \['weight'\]"):
        evaluator.evaluate([{"logits": x, "target": t}], progress=False)
    with pytest.raises(ValueError, match=r"data\[1\]: expected 3 arrays"):
        evaluator.evaluate([(x, t, w), (x, t)], progress=False)
    with pytest.raises(TypeError, match=r"data\[0\]: expected a tuple of arrays or a dict"):
        evaluator.evaluate([x], progress=False)
