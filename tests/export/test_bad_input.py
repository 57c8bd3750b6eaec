"""Trust under bad input: the evaluator's host-side value checks, the ignore index that to_onnx
records for them, to_onnx's checks of its output path, and what an exported graph returns for a
bad value when nobody checks (every output of that image NaN, the other images untouched)."""

import os
import re
import stat
import sys

import numpy as np
import onnx
import pytest
import torch
from torch import nn

import unetweights.losses as L
import unetweights.metrics as M
from unetweights._onnx_export import graph_ignore_index
from unetweights.evaluation import EvaluationGraph
from unetweights.export import IGNORE_INDEX_METADATA, append_to_model, to_onnx
from unetweights.runtime import OnnxEvaluator

from .graphs import sigmoid_inputs, softmax_inputs

C = 3  # classes of the softmax graphs
SIGMOID_C = 2  # channels of the sigmoid graph: a target of C = 2 is out of [0, 1] too
SHAPE = (3, C, 5, 7)  # the shape every run here uses: never the export's


def softmax_poison_graph() -> EvaluationGraph:
    """The graph of the poisoning contract; its parts ignore no common value (CE -100, the rest none).

    Its IoU takes MONAI's ignore_empty with a finite empty_score: a NaN Σt taken for a class
    absent from the target would show as 0 instead of NaN.
    """
    return EvaluationGraph(
        losses={"ce": L.WeightedCrossEntropyLoss(), "dice_loss": L.SoftDiceLoss(per_image=True)},
        metrics={
            "dice": M.DiceScore(),
            "iou": M.IoUScore(empty_score=0.0, ignore_empty=True),
            "accuracy": M.PixelAccuracy(),
        },
    )


def sigmoid_poison_graph() -> EvaluationGraph:
    return EvaluationGraph(
        losses={"bce": L.WeightedBCEWithLogitsLoss(), "dice_loss": L.SoftDiceLoss("sigmoid", per_image=True)},
        metrics={
            "dice": M.DiceScore("sigmoid"),
            "iou": M.IoUScore("sigmoid"),
            "accuracy": M.PixelAccuracy("sigmoid"),
        },
    )


def ignoring_graph(ignore_index: int) -> EvaluationGraph:
    """Every part ignores ``ignore_index``, one of them inside a CombinedLoss."""
    return EvaluationGraph(
        losses={
            "combined": L.CombinedLoss(
                [L.WeightedCrossEntropyLoss(ignore_index=ignore_index), L.SoftDiceLoss(per_image=True, ignore_index=ignore_index)]
            )
        },
        metrics={"dice": M.DiceScore(ignore_index=ignore_index)},
    )


def clean_inputs(shape=SHAPE, seed=0):
    """Softmax inputs with no ignored pixel (the poisoning graph ignores none) and positive weights."""
    logits, target, weight = softmax_inputs(shape, seed=seed)
    return logits, target.clamp(min=0), weight + 0.1


@pytest.fixture(scope="module")
def graphs(tmp_path_factory):
    """Each graph exported once, small; the tests run them at SHAPE."""
    folder = tmp_path_factory.mktemp("bad_input")
    exported = {}
    for key, graph, example in [
        ("softmax", softmax_poison_graph(), clean_inputs((2, C, 6, 4))),
        ("sigmoid", sigmoid_poison_graph(), sigmoid_inputs((2, SIGMOID_C, 6, 4))),
        ("ignore_255", ignoring_graph(255), softmax_inputs((2, C, 6, 4))),
    ]:
        path = folder / f"{key}.onnx"
        to_onnx(graph, path, example)
        exported[key] = (graph, path)
    return exported


@pytest.fixture(scope="module")
def checked(graphs):
    return OnnxEvaluator(graphs["softmax"][1], providers="cpu")


def _metadata(path):
    return {entry.key: entry.value for entry in onnx.load(str(path)).metadata_props}


# -- the ignore index that to_onnx records ---------------------------------------------------------


def test_to_onnx_records_the_common_ignore_index(graphs):
    assert _metadata(graphs["ignore_255"][1])[IGNORE_INDEX_METADATA] == "255"
    assert OnnxEvaluator(graphs["ignore_255"][1], providers="cpu").ignore_index == 255


def test_to_onnx_records_nothing_when_the_parts_disagree_or_targets_are_binary(graphs):
    # Softmax: the cross-entropy ignores -100, the Dice loss and the metrics nothing.
    assert IGNORE_INDEX_METADATA not in _metadata(graphs["softmax"][1])
    assert OnnxEvaluator(graphs["softmax"][1], providers="cpu").ignore_index is None
    # Sigmoid: (N, C, *) targets hold no class indices, so there is nothing to ignore.
    assert IGNORE_INDEX_METADATA not in _metadata(graphs["sigmoid"][1])


class _Custom(nn.Module):
    """A metric that names no ignore index: it takes every value outside [0, C) as out of range."""

    def forward(self, input, target, weight=None):
        return input.mean((1, 2, 3))


@pytest.mark.parametrize(
    "losses,metrics,expected",
    [
        ({"ce": L.WeightedCrossEntropyLoss(ignore_index=255)}, {"dice": M.DiceScore(ignore_index=255)}, 255),
        ({"ce": L.WeightedCrossEntropyLoss(ignore_index=-1)}, {}, -1),
        ({"ce": L.WeightedCrossEntropyLoss(ignore_index=0)}, {"dice": M.DiceScore(ignore_index=0)}, 0),
        # EvaluationGraph.default(): cross-entropy -100, metrics None: nothing is ignored by all.
        ({"ce": L.WeightedCrossEntropyLoss()}, {"dice": M.DiceScore()}, None),
        ({"ce": L.WeightedCrossEntropyLoss(ignore_index=255)}, {"dice": M.DiceScore(ignore_index=254)}, None),
        ({"ce": L.WeightedCrossEntropyLoss(ignore_index=255)}, {"custom": _Custom()}, None),
        # A CombinedLoss speaks through each of its losses.
        ({"sum": L.CombinedLoss([L.WeightedCrossEntropyLoss(ignore_index=7), L.LovaszSoftmaxLoss(per_image=True, ignore_index=7)])}, {}, 7),
        ({"sum": L.CombinedLoss([L.WeightedCrossEntropyLoss(ignore_index=7), L.LovaszSoftmaxLoss(per_image=True)])}, {}, None),
    ],
)
def test_the_ignore_index_is_the_intersection_over_parts(losses, metrics, expected):
    assert graph_ignore_index(EvaluationGraph(losses, metrics)) == expected


def test_default_graphs_record_their_ignore_index_only_when_every_part_has_it():
    assert graph_ignore_index(EvaluationGraph.default()) is None
    assert graph_ignore_index(EvaluationGraph.default(ignore_index=255)) == 255


def test_a_joined_graph_keeps_the_ignore_index(graphs, tmp_path):
    net = nn.Conv2d(1, C, 3, padding=1).eval()
    to_onnx(net, tmp_path / "net.onnx", torch.randn(2, 1, 6, 4), input_names=["image"], output_names=["logits"])
    joined = append_to_model(tmp_path / "net.onnx", graphs["ignore_255"][1], tmp_path / "joined.onnx")
    assert {p.key: p.value for p in joined.metadata_props}[IGNORE_INDEX_METADATA] == "255"
    assert _metadata(tmp_path / "joined.onnx")[IGNORE_INDEX_METADATA] == "255"
    assert sorted(os.listdir(tmp_path)) == ["joined.onnx", "net.onnx"]


def test_a_malformed_recorded_ignore_index_is_named(graphs, tmp_path):
    model = onnx.load(str(graphs["ignore_255"][1]))
    onnx.helper.set_model_props(model, {IGNORE_INDEX_METADATA: "background"})
    onnx.save(model, str(tmp_path / "odd.onnx"))
    with pytest.raises(ValueError, match=rf"^path: .*odd\.onnx records {IGNORE_INDEX_METADATA} = 'background', which is not an integer$"):
        OnnxEvaluator(tmp_path / "odd.onnx", providers="cpu")


# -- the evaluator's host-side checks --------------------------------------------------------------


def _spoil(inputs, name, index, value):
    logits, target, weight = (x.clone() for x in inputs)
    tensor = {"logits": logits, "target": target, "weight": weight}[name]
    tensor[index] = value
    return logits, target, weight


NAN, INF = float("nan"), float("inf")

BAD_SOFTMAX = [
    ("logits", (1, 0, 2, 3), NAN, "logits: expected finite values, found NaN at image 1"),
    ("logits", (2, 1, 0, 0), INF, "logits: expected finite values, found inf at image 2"),
    ("logits", (0, 2, 4, 6), -INF, "logits: expected finite values, found -inf at image 0"),
    ("weight", (1, 2, 3), NAN, "weight: expected finite non-negative values, found NaN at image 1"),
    ("weight", (1, 2, 3), INF, "weight: expected finite non-negative values, found inf at image 1"),
    ("weight", (2, 0, 0), -0.5, "weight: expected finite non-negative values, found -0.5 at image 2"),
    ("target", (1, 2, 3), -1, r"target: expected class indices in \[0, 3\) \(the graph records no ignore index\), found -1 at image 1"),
    ("target", (1, 2, 3), C, r"target: expected class indices in \[0, 3\) \(the graph records no ignore index\), found 3 at image 1"),
    ("target", (0, 0, 0), -100, r"target: expected class indices in \[0, 3\) \(the graph records no ignore index\), found -100 at image 0"),
]


@pytest.mark.parametrize("kind", ["numpy", "torch"])
@pytest.mark.parametrize("name,index,value,message", BAD_SOFTMAX)
def test_each_bad_value_is_named(checked, kind, name, index, value, message):
    inputs = _spoil(clean_inputs(), name, index, value)
    if kind == "numpy":
        inputs = [x.numpy() for x in inputs]
    with pytest.raises(ValueError, match=f"^{message}$"):
        checked(*inputs)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name,index,value,message", BAD_SOFTMAX)
def test_each_bad_value_is_named_on_cuda(graphs, name, index, value, message):
    evaluator = OnnxEvaluator(graphs["softmax"][1], providers="auto")
    if evaluator.provider != "CUDAExecutionProvider":
        pytest.skip(f"onnxruntime cannot use CUDA here: {evaluator.cuda_unavailable_reason}")
    inputs = [x.cuda() for x in _spoil(clean_inputs(), name, index, value)]
    with pytest.raises(ValueError, match=f"^{message}$"):
        evaluator(*inputs)


def test_the_recorded_ignore_index_is_allowed_and_only_it(graphs):
    evaluator = OnnxEvaluator(graphs["ignore_255"][1], providers="cpu")
    logits, target, weight = clean_inputs()
    target[0, :2] = 255
    evaluator(logits, target, weight)
    evaluator(logits.numpy(), target.numpy(), weight.numpy())
    target[2, 1, 1] = -1
    with pytest.raises(ValueError, match=r"^target: expected class indices in \[0, 3\) or the ignore index 255, found -1 at image 2$"):
        evaluator(logits, target, weight)


def test_ignore_index_overrides_the_graph(graphs):
    logits, target, weight = clean_inputs()
    target[1, 0, 0] = -1
    OnnxEvaluator(graphs["softmax"][1], providers="cpu", ignore_index=-1)(logits, target, weight)
    overridden = OnnxEvaluator(graphs["ignore_255"][1], providers="cpu", ignore_index=-1)
    assert overridden.ignore_index == -1
    overridden(logits, target, weight)
    target[1, 0, 0] = 255
    with pytest.raises(ValueError, match=r"^target: expected class indices in \[0, 3\) or the ignore index -1, found 255 at image 1$"):
        overridden(logits, target, weight)


@pytest.mark.parametrize(
    "index,value,message",
    [
        ((1, 0, 2, 3), -1.0, "found -1 at image 1"),
        ((2, 1, 0, 0), 2.0, "found 2 at image 2"),
        ((0, 1, 4, 6), 1.5, "found 1.5 at image 0"),
        ((1, 0, 0, 0), NAN, "found NaN at image 1"),
    ],
)
def test_binary_targets_must_lie_in_0_1(graphs, index, value, message):
    evaluator = OnnxEvaluator(graphs["sigmoid"][1], providers="cpu")
    logits, target, weight = sigmoid_inputs((3, SIGMOID_C, 5, 7))
    evaluator(logits, target, weight)
    target[index] = value
    with pytest.raises(ValueError, match=rf"^target: expected finite values in \[0, 1\], {message}$"):
        evaluator(logits.numpy(), target.numpy(), weight.numpy())


def test_check_values_false_runs_and_returns_nan_not_an_error(graphs):
    evaluator = OnnxEvaluator(graphs["softmax"][1], providers="cpu", check_values=False)
    assert evaluator.check_values is False
    logits, target, weight = _spoil(clean_inputs(), "weight", (1, 0, 0), NAN)
    outputs = evaluator(logits.numpy(), target.numpy(), weight.numpy())
    assert list(outputs) == ["ce", "dice_loss", "dice", "iou", "accuracy"]
    assert np.isnan(outputs["ce"][1])  # the weighted mean of image 1 takes the NaN weight in


def test_evaluate_names_the_batch_and_the_image(checked):
    good = clean_inputs()
    bad = _spoil(clean_inputs(seed=1), "logits", (2, 0, 0, 0), NAN)
    with pytest.raises(ValueError, match=r"^logits: expected finite values, found NaN at image 2 of data\[1\]$"):
        checked.evaluate([good, bad], progress=False)


def test_read_only_and_non_contiguous_numpy_inputs_are_checked_in_place(checked):
    logits, target, weight = (x.numpy() for x in clean_inputs())
    logits = np.asfortranarray(logits)
    weight.flags.writeable = False
    checked(logits, target, weight)
    logits = logits.copy(order="F")
    logits[1, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="^logits: expected finite values, found NaN at image 1$"):
        checked(logits, target, weight)


class _Weighted(nn.Module):
    def forward(self, scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return (scores * mask.unsqueeze(1)).mean((1, 2, 3))


def test_a_graph_with_other_input_names_gets_no_value_checks(tmp_path):
    to_onnx(_Weighted(), tmp_path / "other.onnx", (torch.randn(2, C, 6, 4), torch.rand(2, 6, 4)), input_names=["scores", "mask"])
    evaluator = OnnxEvaluator(tmp_path / "other.onnx", providers="cpu")
    scores, mask = torch.randn(3, C, 5, 7), torch.rand(3, 5, 7)
    scores[1, 0, 0, 0] = NAN
    mask[2, 0, 0] = -1.0
    out = evaluator(scores, mask)
    assert torch.isnan(out[evaluator.output_names[0]][1])


@pytest.mark.parametrize(
    "options,error,message",
    [
        ({"check_values": 1}, TypeError, "^check_values: expected a bool, got int$"),
        ({"ignore_index": 2.0}, TypeError, "^ignore_index: expected an int or None, got float$"),
        ({"ignore_index": True}, TypeError, "^ignore_index: expected an int or None, got bool$"),
    ],
)
def test_option_errors(graphs, options, error, message):
    with pytest.raises(error, match=message):
        OnnxEvaluator(graphs["softmax"][1], providers="cpu", **options)


# -- the evaluator's path ---------------------------------------------------------------------------


@pytest.mark.parametrize("path,kind", [(3, "int"), (None, "NoneType"), (1.5, "float")])
def test_evaluator_path_must_be_a_path(path, kind):
    with pytest.raises(TypeError, match=f"^path: expected a str or os.PathLike naming an .onnx file, got {kind}$"):
        OnnxEvaluator(path)


def test_evaluator_refuses_bytes_even_a_serialized_model(graphs):
    model_bytes = graphs["softmax"][1].read_bytes()
    for value in (model_bytes, os.fsencode(str(graphs["softmax"][1])), bytearray(model_bytes)):
        with pytest.raises(TypeError, match=r"^path: expected a str or os.PathLike naming an .onnx file, got (bytes|bytearray) \(for a serialized model, write it to a file first\)$"):
            OnnxEvaluator(value)


# -- to_onnx's output path --------------------------------------------------------------------------

SMALL = clean_inputs((2, C, 6, 4))


def test_to_onnx_refuses_a_folder(tmp_path):
    with pytest.raises(ValueError, match=f"^path: {re.escape(str(tmp_path))} is a folder; expected the path of the file to write$"):
        to_onnx(softmax_poison_graph(), tmp_path, SMALL)
    assert os.listdir(tmp_path) == []


def test_to_onnx_refuses_a_missing_folder(tmp_path):
    path = tmp_path / "missing" / "eval.onnx"
    missing = re.escape(f"path: the folder of {path} does not exist ({tmp_path / 'missing'})")
    with pytest.raises(ValueError, match=f"^{missing}$"):
        to_onnx(softmax_poison_graph(), path, SMALL)
    (tmp_path / "file").write_text("x")
    a_file = re.escape(f"path: the folder of {tmp_path / 'file' / 'eval.onnx'} is a file ({tmp_path / 'file'})")
    with pytest.raises(ValueError, match=f"^{a_file}$"):
        to_onnx(softmax_poison_graph(), tmp_path / "file" / "eval.onnx", SMALL)
    assert os.listdir(tmp_path) == ["file"]


@pytest.mark.parametrize("path,kind", [(3, "int"), (None, "NoneType"), (b"eval.onnx", "bytes")])
def test_to_onnx_path_must_be_a_path(path, kind):
    with pytest.raises(TypeError, match=f"^path: expected a str or os.PathLike, got {kind}$"):
        to_onnx(softmax_poison_graph(), path, SMALL)


def _unwritable_folder(tmp_path):
    """A folder that refuses a new file to this process, or None where none can be provoked."""
    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        os.close(os.open(folder / "probe", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except OSError:
        return folder
    os.unlink(folder / "probe")  # root is not refused by mode bits
    if sys.platform.startswith("linux") and os.path.isdir("/sys"):
        try:  # sysfs refuses new files even to root
            os.close(os.open("/sys/unetweights-probe", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except OSError:
            return "/sys"
        os.unlink("/sys/unetweights-probe")
    return None


def test_to_onnx_refuses_a_folder_it_cannot_write_before_exporting(tmp_path, monkeypatch):
    folder = _unwritable_folder(tmp_path)
    if folder is None:
        pytest.skip("no folder here refuses this process a new file")
    exported = []
    monkeypatch.setattr(torch.onnx, "export", lambda *a, **k: exported.append(a))
    path = os.path.join(folder, "eval.onnx")
    try:
        refused = re.escape(f"path: cannot write {path}: the folder {folder} refuses a new file")
        with pytest.raises(ValueError, match=f"^{refused} \\(.+\\)$"):
            to_onnx(softmax_poison_graph(), path, SMALL)
    finally:
        os.chmod(tmp_path / "read_only", stat.S_IRWXU)
    assert exported == []  # refused before any work
    assert not os.path.exists(path)


def test_a_failed_export_leaves_no_partial_file_and_the_old_file_as_it_was(tmp_path, monkeypatch):
    path = tmp_path / "eval.onnx"
    path.write_bytes(b"the old graph")

    def broken_export(module, args, f, **kwargs):
        with open(f, "wb") as out:
            out.write(b"half a graph")
        raise RuntimeError("the exporter failed")

    monkeypatch.setattr(torch.onnx, "export", broken_export)
    with pytest.raises(RuntimeError, match="^the exporter failed$"):
        to_onnx(softmax_poison_graph(), path, SMALL)
    assert os.listdir(tmp_path) == ["eval.onnx"]
    assert path.read_bytes() == b"the old graph"


def test_a_written_graph_gets_the_umask_permissions_and_no_temporary_file(graphs):
    path = graphs["softmax"][1]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~umask
    assert not [name for name in os.listdir(path.parent) if name.startswith(".")]


# -- what the graph itself returns for a bad value (the contract of export/README.md) -------------

POISON = [
    ("a_nan_logit", "logits", NAN),
    ("b_inf_logit", "logits", INF),
    ("c_nan_weight", "weight", NAN),
    ("d_negative_weight", "weight", -1.0),
    ("e_inf_weight", "weight", INF),
    ("f_target_minus_1", "target", -1),
    ("g_target_minus_3", "target", -3),
    ("h_target_C", "target", "C"),
    ("i_minus_inf_logit", "logits", -INF),
]


def _assert_only_image_1_is_nan(outputs, clean):
    for name, value in outputs.items():
        rows = np.asarray(value, dtype=np.float64).reshape(len(value), -1)
        assert np.isnan(rows[1]).all(), f"{name}: image 1 is {rows[1]}, expected all NaN"
        expected = np.asarray(clean[name], dtype=np.float64).reshape(len(value), -1)
        np.testing.assert_allclose(rows[[0, 2]], expected[[0, 2]], rtol=0, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("case,name,value", POISON, ids=[case for case, _, _ in POISON])
def test_softmax_graph_poisons_only_the_bad_image(graphs, case, name, value):
    evaluator = OnnxEvaluator(graphs["softmax"][1], providers="cpu", check_values=False)
    inputs = clean_inputs()
    clean = evaluator(*(x.numpy() for x in inputs))
    # A logit at a class other than the pixel's target: -inf there leaves the cross-entropy's
    # log-sum-exp finite, so only the graph's own test of the logits can catch it.
    other_class = (int(inputs[1][1, 2, 3]) + 1) % C
    index = {"logits": (1, other_class, 2, 3), "weight": (1, 2, 3), "target": (1, 2, 3)}[name]
    spoiled = _spoil(inputs, name, index, C if value == "C" else value)
    _assert_only_image_1_is_nan(evaluator(*(x.numpy() for x in spoiled)), clean)


@pytest.mark.parametrize("name,value", [("logits", NAN), ("logits", -INF), ("weight", NAN), ("weight", INF)])
def test_a_bad_value_at_an_ignored_pixel_still_poisons_its_image(graphs, name, value):
    """An ignored pixel counts nowhere, but a bad value there is still bad input."""
    evaluator = OnnxEvaluator(graphs["ignore_255"][1], providers="cpu", check_values=False)
    logits, target, weight = clean_inputs()
    target[1, 2, 3] = 255
    clean = evaluator(logits.numpy(), target.numpy(), weight.numpy())
    spoiled = _spoil((logits, target, weight), name, (1, 0, 2, 3) if name == "logits" else (1, 2, 3), value)
    _assert_only_image_1_is_nan(evaluator(*(x.numpy() for x in spoiled)), clean)


@pytest.mark.parametrize("case,name,value", POISON, ids=[case for case, _, _ in POISON])
def test_sigmoid_graph_poisons_only_the_bad_image(graphs, case, name, value):
    evaluator = OnnxEvaluator(graphs["sigmoid"][1], providers="cpu", check_values=False)
    inputs = sigmoid_inputs((3, SIGMOID_C, 5, 7), seed=2)
    clean = evaluator(*(x.numpy() for x in inputs))
    index = {"logits": (1, 1, 2, 3), "weight": (1, 2, 3), "target": (1, 0, 2, 3)}[name]
    spoiled = _spoil(inputs, name, index, SIGMOID_C if value == "C" else value)
    _assert_only_image_1_is_nan(evaluator(*(x.numpy() for x in spoiled)), clean)


# -- outputs that would replace an input, and a TorchScript file that fails its check --------------


def test_append_to_model_refuses_to_write_over_either_input(graphs, tmp_path):
    net = nn.Conv2d(1, C, 3, padding=1).eval()
    net_path = tmp_path / "net.onnx"
    to_onnx(net, net_path, torch.randn(2, 1, 6, 4), input_names=["image"], output_names=["logits"])
    eval_path = tmp_path / "eval.onnx"
    eval_path.write_bytes(graphs["softmax"][1].read_bytes())
    os.symlink(net_path, tmp_path / "link.onnx")
    before = {p: p.read_bytes() for p in (net_path, eval_path)}
    for out, argument in ((net_path, "model"), (eval_path, "evaluation"), (tmp_path / "link.onnx", "model")):
        with pytest.raises(ValueError, match=f"^path: .* is the {argument} input "):
            append_to_model(net_path, eval_path, out)
    assert {p: p.read_bytes() for p in before} == before
    append_to_model(net_path, eval_path, tmp_path / "joined.onnx")  # a new path is fine


class _Drifting(nn.Module):
    """Scripts and saves, but its reload differs from eager (random output)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.rand_like(x)


def test_to_torchscript_keeps_the_old_file_when_the_check_fails(tmp_path):
    from unetweights.export import to_torchscript

    path = tmp_path / "loss.pt"
    path.write_bytes(b"the old module")
    with pytest.raises(RuntimeError, match="differs from eager"):
        to_torchscript(_Drifting(), path, torch.zeros(100))
    assert os.listdir(tmp_path) == ["loss.pt"]
    assert path.read_bytes() == b"the old module"
    with pytest.raises(ValueError, match="^path: .* is a folder"):
        to_torchscript(_Drifting(), tmp_path)
    loaded = to_torchscript(L.WeightedCrossEntropyLoss(), path)
    assert os.listdir(tmp_path) == ["loss.pt"] and isinstance(loaded, torch.jit.ScriptModule)
