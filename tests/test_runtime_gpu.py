"""The CUDA path of OnnxEvaluator: runs only where onnxruntime's CUDA provider really starts.

On a machine with an NVIDIA GPU, onnxruntime-gpu and CUDA 13 / cuDNN 9 (for example
``pip install 'onnxruntime-gpu[cuda,cudnn]'``), ``benchmarks/run_gpu_checks.sh`` runs this file
and the GPU half of ``benchmarks/bench_eval.py``. Everywhere else it skips, saying why.
"""

import numpy as np
import pytest
import torch

from unetweights.export import to_onnx
from unetweights.runtime import OnnxEvaluator

from .export.graphs import softmax_graph, softmax_inputs

TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def cuda_setup(tmp_path_factory):
    if not torch.cuda.is_available():
        pytest.skip("torch sees no CUDA device")
    graph = softmax_graph()
    path = tmp_path_factory.mktemp("gpu") / "eval.onnx"
    to_onnx(graph, path, softmax_inputs((2, 3, 12, 10)))
    evaluator = OnnxEvaluator(path, providers="auto")
    if evaluator.provider != "CUDAExecutionProvider":
        pytest.skip(f"onnxruntime cannot use CUDA here: {evaluator.cuda_unavailable_reason}")
    return graph.cuda(), path, evaluator


def test_cuda_provider_is_active(cuda_setup):
    _, path, evaluator = cuda_setup
    assert evaluator.provider == "CUDAExecutionProvider"
    assert OnnxEvaluator(path, providers="cuda").provider == "CUDAExecutionProvider"


@pytest.mark.parametrize("shape", [(1, 3, 17, 9), (4, 3, 256, 200)])
def test_cuda_tensors_in_cuda_tensors_out_equal_torch(cuda_setup, shape, monkeypatch):
    graph, _, evaluator = cuda_setup
    inputs = [x.cuda() for x in softmax_inputs(shape, seed=shape[0])]
    bound = []
    original = evaluator._session.io_binding

    def spy():
        binding = original()
        bound.append(binding)
        return binding

    monkeypatch.setattr(evaluator._session, "io_binding", spy)
    # A host copy would have to go through numpy; make that impossible for the run.
    monkeypatch.setattr(torch.Tensor, "numpy", lambda self, *a, **k: pytest.fail("a tensor was copied to the host"))
    actual = evaluator(*inputs)
    monkeypatch.undo()
    assert len(bound) == 1
    with torch.no_grad():
        expected = graph(*inputs)
    for name, value in expected.items():
        assert actual[name].is_cuda, name
        assert actual[name].device == value.device
        diff = float((actual[name].double() - value.double()).abs().max())
        assert diff <= TOLERANCE, f"{name}: {diff:.3g}"


def test_numpy_inputs_on_a_cuda_session(cuda_setup):
    graph, _, evaluator = cuda_setup
    inputs = softmax_inputs((2, 3, 33, 21), seed=5)
    actual = evaluator(*(x.numpy() for x in inputs))
    with torch.no_grad():
        expected = graph(*(x.cuda() for x in inputs))
    for name, value in expected.items():
        assert isinstance(actual[name], np.ndarray)
        assert np.abs(actual[name] - value.cpu().numpy()).max() <= TOLERANCE, name
