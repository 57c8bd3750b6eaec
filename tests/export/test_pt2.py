"""to_pt2: an evaluation graph as an AOTInductor package (and a saved ExportedProgram), run from
Python and from C++ (export/cpp's unetweights_aoti), against eager Python on shapes the export
never saw, 2D and 3D, the NaN rule included.

Compiling a package takes tens of seconds, so each dimensionality is compiled once per session
and every test reuses it; the refusals run before any compile.
"""

import math
import subprocess

import pytest
import torch

from unetweights import EvaluationGraph
from unetweights.export import INPUTS_METADATA, OUTPUTS_METADATA, to_pt2
from unetweights.losses import GeneralizedDiceLoss, WeightedCrossEntropyLoss
from unetweights.metrics import DiceScore, IoUScore

from .cpp_build import build, load_make_inputs

ATOL = 1e-5
IGNORE = 255
EXAMPLE_SIZES = {2: (24, 20), 3: (6, 10, 8)}
UNSEEN_SIZES = {2: (37, 15), 3: (9, 7, 13)}


make_inputs = load_make_inputs("_unetweights_cpp_make_inputs_pt2")


def _graph():
    """The issue's graph: generalized Dice and weighted cross-entropy per image, Dice and IoU per class."""
    return EvaluationGraph(
        losses={"gdice": GeneralizedDiceLoss(per_image=True, ignore_index=IGNORE), "ce": WeightedCrossEntropyLoss(ignore_index=IGNORE)},
        metrics={"dice": DiceScore(ignore_index=IGNORE), "iou": IoUScore(ignore_index=IGNORE)},
    )


def _inputs(ndim, batch, size, seed):
    """logits, target (with ignored pixels) and a weight map (with zeros), as export/cpp's tests draw them."""
    drawn = make_inputs.random_inputs(ndim=ndim, batch=batch, classes=3, size=size, seed=seed)
    return drawn["logits"], drawn["target"], drawn["weight"]


@pytest.fixture(scope="module")
def packages(tmp_path_factory):
    """ndim -> (graph, package path, program path or None, the loaded package): compiled once."""
    folder = tmp_path_factory.mktemp("pt2")
    built = {}
    for ndim in (2, 3):
        graph = _graph()
        path = folder / f"eval{ndim}d.pt2"
        program = folder / f"eval{ndim}d_program.pt2" if ndim == 2 else None
        loaded = to_pt2(graph, path, _inputs(ndim, 2, EXAMPLE_SIZES[ndim], seed=ndim), program_path=program)
        built[ndim] = (graph, path, program, loaded)
    return built


def _poisoned(inputs):
    """The inputs with one NaN logit in image 0: its outputs must all be NaN, the others unchanged."""
    logits = inputs[0].clone()
    logits[(0, 1) + (2,) * (logits.dim() - 2)] = math.nan
    return (logits,) + tuple(inputs[1:])


def _assert_same(actual, expected):
    assert list(actual) == list(expected)
    for name, e in expected.items():
        a = actual[name]
        assert a.shape == e.shape and a.dtype == e.dtype, name
        assert torch.equal(torch.isnan(a), torch.isnan(e)), f"{name}: NaN in other places"
        diff = (a.double() - e.double()).nan_to_num(0.0).abs().max()
        assert float(diff) <= ATOL, f"{name}: {float(diff):.3g}"


@pytest.mark.parametrize("ndim", [2, 3])
def test_package_matches_eager_on_unseen_shapes(packages, ndim):
    graph, _, _, loaded = packages[ndim]
    inputs = _poisoned(_inputs(ndim, 3, UNSEEN_SIZES[ndim], seed=10 + ndim))
    with torch.no_grad():
        expected = graph(*inputs)
        actual = loaded(*inputs)
    _assert_same(actual, expected)
    for name, value in expected.items():
        assert bool(torch.isnan(value[0]).all()), f"{name}: image 0 holds a NaN logit"
        assert bool(torch.isfinite(value[1:]).all()), f"{name}: the other images are valid"


def test_saved_program_matches_eager(packages):
    graph, _, program, _ = packages[2]
    inputs = _inputs(2, 4, UNSEEN_SIZES[2], seed=30)
    with torch.no_grad():
        _assert_same(torch.export.load(str(program)).module()(*inputs), graph(*inputs))


def test_package_metadata_names_inputs_and_outputs(packages):
    graph, path, _, _ = packages[2]
    from torch._inductor.package import load_package

    metadata = load_package(str(path)).get_metadata()
    assert metadata[INPUTS_METADATA] == "logits,target,weight"
    assert metadata[OUTPUTS_METADATA] == ",".join(graph.output_names)
    # Every part ignores 255: recorded as to_onnx records it.
    assert metadata["unetweights.ignore_index"] == str(IGNORE)


@pytest.fixture(scope="module")
def aoti_program(tmp_path_factory):
    return build(tmp_path_factory, "unetweights_aoti")


@pytest.mark.parametrize("ndim", [2, 3])
def test_cpp_program_matches_python(packages, aoti_program, tmp_path, ndim):
    program = aoti_program.program()
    graph, path, _, _ = packages[ndim]
    inputs = _poisoned(_inputs(ndim, 3, UNSEEN_SIZES[ndim], seed=20 + ndim))
    torch.save(dict(zip(("logits", "target", "weight"), inputs)), tmp_path / "inputs.pt")
    out = tmp_path / "out.txt"
    result = subprocess.run(
        [str(program), str(path), str(tmp_path / "inputs.pt"), str(out), "--repeat", "2"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, f"unetweights_aoti failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    assert "ms per run" in result.stdout
    with torch.no_grad():
        expected = {f"graph.{name}": value for name, value in graph(*inputs).items()}
    actual = make_inputs.read_results(str(out))
    assert make_inputs.compare_results(actual, expected, ATOL) == []
    for name, value in actual.items():
        assert bool(torch.isnan(value[0]).all()) and bool(torch.isfinite(value[1:]).all()), name


def test_cpp_program_refuses_inputs_that_do_not_fit(packages, aoti_program, tmp_path):
    program = aoti_program.program()
    _, path, _, _ = packages[2]
    logits, target, _ = _inputs(2, 2, (5, 6), seed=1)
    torch.save({"logits": logits, "target": target}, tmp_path / "inputs.pt")
    result = subprocess.run([str(program), str(path), str(tmp_path / "inputs.pt"), str(tmp_path / "out.txt")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert "takes the inputs (logits, target, weight)" in result.stderr and "holds (logits, target)" in result.stderr
    assert not (tmp_path / "out.txt").exists()
    result = subprocess.run([str(program), str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "usage: unetweights_aoti" in result.stderr


def test_refusals_come_before_any_work(tmp_path):
    graph = _graph()
    example = _inputs(2, 2, (6, 5), seed=3)
    with pytest.raises(ValueError, match=r"path: AOTInductor writes packages whose name ends in '\.pt2'"):
        to_pt2(graph, tmp_path / "eval.so", example)
    with pytest.raises(ValueError, match="program_path: .* is also path"):
        to_pt2(graph, tmp_path / "eval.pt2", example, program_path=tmp_path / "eval.pt2")
    with pytest.raises(TypeError, match="module: torch.export cannot take a TorchScript module"):
        to_pt2(torch.jit.script(torch.nn.Identity()), tmp_path / "eval.pt2", example)
    with pytest.raises(ValueError, match=r"example_inputs\[0\]: dim 0 \('batch'\) has size 1"):
        to_pt2(graph, tmp_path / "eval.pt2", tuple(x[:1] for x in example))
    with pytest.raises(ValueError, match="atol"):
        to_pt2(graph, tmp_path / "eval.pt2", example, atol=math.nan)
    assert list(tmp_path.iterdir()) == []


def test_a_package_that_fails_its_check_leaves_both_destinations_as_they_were(tmp_path, monkeypatch):
    """The package is built beside ``path`` and renamed only after its check: here the compiler
    (replaced, to keep the test fast) writes a file that does not load."""
    import torch._inductor as inductor

    destination = tmp_path / "eval.pt2"
    destination.write_bytes(b"the user's older package")

    def broken_compile(program, package_path, inductor_configs=None):
        with open(package_path, "wb") as handle:
            handle.write(b"not a package")
        return package_path

    monkeypatch.setattr(inductor, "aoti_compile_and_package", broken_compile)
    with pytest.raises(Exception):
        # The saved program passes its own check; it is not renamed either, since the package failed.
        to_pt2(_graph(), destination, _inputs(2, 2, (6, 5), seed=4), program_path=tmp_path / "eval_program.pt2")
    assert destination.read_bytes() == b"the user's older package"
    assert [p.name for p in tmp_path.iterdir()] == ["eval.pt2"]
