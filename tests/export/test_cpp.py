"""The C++ consumer in export/cpp: build unetweights_eval against the wheel's libtorch, run it on
inputs from export/cpp/make_inputs.py, and compare every result with eager Python.

The program is built once per session with CMake into a temporary folder (.cpp_build). The tests skip only
when cmake or a C++ compiler is missing; a failed configure or build fails every test that needs
the program, with the build log in the message.
"""

import math
import subprocess
from pathlib import Path
from typing import Dict

import pytest
import torch

from .cpp_build import Build, build, load_make_inputs

RUN_TIMEOUT_S = 300
ATOL = 1e-5
# The gradient is small (about 1 / the number of pixels), so it is also held to a bound relative
# to its own scale: a program that wrote zeros would pass ATOL alone.
RTOL_OF_SCALE = 1e-4


make_inputs = load_make_inputs("_unetweights_cpp_make_inputs")


@pytest.fixture(scope="session")
def cpp_build(tmp_path_factory) -> Build:
    return build(tmp_path_factory, "unetweights_eval")


def _run(program: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(program), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=RUN_TIMEOUT_S
    )


def _check_close(actual: Dict[str, torch.Tensor], expected: Dict[str, torch.Tensor]) -> None:
    assert list(actual) == list(expected)
    for name, e in expected.items():
        a = actual[name]
        assert a.dtype == e.dtype and a.shape == e.shape, f"{name}: {a.dtype} {list(a.shape)} vs {e.dtype} {list(e.shape)}"
        assert bool(torch.isfinite(e).all()), f"{name}: the Python reference is not finite"
        if e.numel() == 0:
            continue
        diff = float((a.double() - e.double()).abs().max())
        scale = float(e.double().abs().max())
        assert diff <= ATOL, f"{name}: max abs difference {diff:.3g} > {ATOL:g}"
        assert diff <= RTOL_OF_SCALE * scale + 1e-12, (
            f"{name}: max abs difference {diff:.3g} is more than {RTOL_OF_SCALE:g} of the largest value {scale:.3g}"
        )


CASES = {
    "2d": dict(ndim=2, batch=3, classes=4, size=(20, 33), seed=1),
    "3d": dict(ndim=3, batch=2, classes=3, size=(5, 9, 12), seed=2),
    "2d-no-weight": dict(ndim=2, batch=2, classes=3, size=(16, 24), seed=3, weight=False),
}


@pytest.mark.parametrize("case", list(CASES))
def test_matches_python(cpp_build, tmp_path, case):
    program = cpp_build.program()
    options = CASES[case]
    paths = make_inputs.make_inputs(str(tmp_path), **options)
    out = tmp_path / "out.txt"
    result = _run(program, paths["loss"], paths["graph"], paths["inputs"], str(out))
    assert result.returncode == 0, f"unetweights_eval failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"

    # Eager Python on the very inputs the program read.
    inputs = torch.load(paths["inputs"])
    assert ("weight" in inputs) == options.get("weight", True)
    graph = make_inputs.build_graph(options["classes"])
    expected = make_inputs.reference_results(make_inputs.build_loss(options["classes"]), graph, inputs)
    assert list(expected) == [f"graph.{name}" for name in graph.output_names] + ["loss", "grad"]
    assert float(expected["grad"].abs().max()) > 0.0

    actual = make_inputs.read_results(str(out))
    _check_close(actual, expected)
    # The reference file that make_inputs.py writes holds the same numbers (it round-trips).
    _check_close(make_inputs.read_results(paths["reference"]), expected)
    assert make_inputs.compare_results(actual, make_inputs.read_results(paths["reference"]), ATOL) == []

    for name in expected:
        assert name in result.stdout, f"the summary does not mention {name}:\n{result.stdout}"


def test_missing_file_fails_with_message(cpp_build, tmp_path):
    program = cpp_build.program()
    paths = make_inputs.make_inputs(str(tmp_path), ndim=2, batch=2, classes=3, size=(6, 7))
    missing = str(tmp_path / "no_such_graph.pt")
    out = tmp_path / "out.txt"
    result = _run(program, paths["loss"], missing, paths["inputs"], str(out))
    assert result.returncode != 0
    assert "error" in result.stderr and missing in result.stderr, result.stderr
    assert not out.exists()


def test_bad_arguments_fail_with_usage(cpp_build):
    program = cpp_build.program()
    result = _run(program, "only_one.pt")
    assert result.returncode == 2
    assert "usage: unetweights_eval LOSS.pt GRAPH.pt INPUTS.pt OUT.txt" in result.stderr


def test_inputs_that_are_not_a_dict_fail_with_message(cpp_build, tmp_path):
    program = cpp_build.program()
    paths = make_inputs.make_inputs(str(tmp_path), ndim=2, batch=2, classes=3, size=(6, 7))
    result = _run(program, paths["loss"], paths["graph"], paths["loss"], str(tmp_path / "out.txt"))
    assert result.returncode == 1
    assert "cannot read inputs" in result.stderr, result.stderr


def test_results_format_round_trip(tmp_path):
    """The text format without the program: dtypes, 0-dim, empty and non-finite values."""
    results = {
        "graph.a": torch.tensor([[1.0 / 3.0, -2.5e-8], [float("nan"), float("inf")]]),
        "graph.b": torch.tensor([math.pi, -math.e], dtype=torch.float64),
        "labels": torch.tensor([[0, -7, 255]], dtype=torch.int64),
        "empty": torch.zeros(2, 0, 3),
        "loss": torch.tensor(0.1234567890123),
    }
    path = tmp_path / "results.txt"
    make_inputs.write_results(str(path), results)
    read = make_inputs.read_results(str(path))
    assert list(read) == list(results)
    for name, value in results.items():
        assert read[name].dtype == value.dtype and read[name].shape == value.shape
        assert torch.equal(torch.nan_to_num(read[name]), torch.nan_to_num(value)), name
    assert bool(torch.isnan(read["graph.a"][1, 0]))
    assert make_inputs.compare_results(read, results) == []
    assert make_inputs.compare_results(read, {**results, "loss": torch.tensor(0.2)}) != []
