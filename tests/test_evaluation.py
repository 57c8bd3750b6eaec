"""EvaluationGraph: named per-image outputs that equal the losses and metrics it was built from."""

import pytest
import torch

import unetweights.losses as L
import unetweights.metrics as M
from unetweights.evaluation import EvaluationGraph

from .export.graphs import IGNORE, distance_graph, distance_inputs, sigmoid_graph, sigmoid_inputs, softmax_graph, softmax_inputs


def test_outputs_are_the_parts_per_image():
    ce = L.WeightedCrossEntropyLoss(class_weight=[0.5, 2.0, 1.0], ignore_index=IGNORE)
    dice = L.SoftDiceLoss(per_image=True, ignore_index=IGNORE)
    metric = M.IoUScore(ignore_index=IGNORE)
    graph = EvaluationGraph(losses={"ce": ce, "dice_loss": dice}, metrics={"iou": metric})
    logits, target, weight = softmax_inputs((3, 3, 9, 7), seed=2)
    out = graph(logits, target, weight)
    assert list(out) == graph.output_names == ["ce", "dice_loss", "iou"]
    for n in range(3):
        one = slice(n, n + 1)
        torch.testing.assert_close(out["ce"][n], ce(logits[one], target[one], weight[one]))
        torch.testing.assert_close(out["dice_loss"][n], dice(logits[one], target[one], weight[one]))
    torch.testing.assert_close(out["iou"], metric(logits, target, weight))
    # The given modules keep their own reduction.
    assert ce.reduction == "mean" and dice.reduction == "mean"
    assert ce(logits, target, weight).dim() == 0


def test_weight_may_be_left_out():
    graph = softmax_graph()
    logits, target = softmax_inputs((2, 3, 6, 5), weighted=False)
    ones = torch.ones(2, 6, 5)
    without, with_ones = graph(logits, target), graph(logits, target, ones)
    for name in graph.output_names:
        torch.testing.assert_close(without[name], with_ones[name])


@pytest.mark.parametrize("shape,spacing", [((2, 3, 9, 7), [1.0, 0.5]), ((2, 3, 4, 6, 5), [2.0, 1.0, 1.0])])
def test_distance_losses_take_the_distance_input(shape, spacing):
    """Boundary and Hausdorff-DT get the graph's fourth input, or compute the same map themselves."""
    graph = distance_graph(spacing)
    logits, target, weight, distance = distance_inputs(shape, spacing, seed=4)
    given = graph(logits, target, weight, distance)
    computed = graph(logits, target, weight)
    assert list(given) == graph.output_names == ["generalized_dice", "boundary", "hausdorff_dt", "cldice", "mcc", "dice"]
    boundary = L.BoundaryLoss(include_background=False, ignore_index=IGNORE, reduction="per_image")
    torch.testing.assert_close(given["boundary"], boundary(logits, target, weight, distance))
    for name in graph.output_names:
        torch.testing.assert_close(computed[name], given[name], rtol=1e-5, atol=1e-5, equal_nan=True)
    scripted = torch.jit.script(graph)
    for name, value in scripted(logits, target, weight, distance).items():
        torch.testing.assert_close(value, given[name], equal_nan=True)
    for name, value in scripted(logits, target, weight).items():
        torch.testing.assert_close(value, computed[name], equal_nan=True)


@pytest.mark.parametrize("make_graph,make_inputs,channels", [(softmax_graph, softmax_inputs, 3), (sigmoid_graph, sigmoid_inputs, 1)])
def test_output_shapes_and_scripting(make_graph, make_inputs, channels):
    graph = make_graph()
    inputs = make_inputs((2, channels, 6, 5, 4), seed=1)
    out = graph(*inputs)
    for name, value in out.items():
        assert value.shape[0] == 2, name
        assert torch.isfinite(value).all(), name
    scripted = torch.jit.script(graph)
    for name, value in scripted(*inputs).items():
        torch.testing.assert_close(value, out[name])


@pytest.mark.parametrize("activation,channels,target_kind", [("softmax", 3, "index"), ("sigmoid", 2, "binary")])
def test_default_graph(activation, channels, target_kind):
    graph = EvaluationGraph.default(activation)
    assert graph.output_names == (["ce"] if activation == "softmax" else ["bce"]) + ["dice", "iou", "accuracy"]
    logits = torch.randn(2, channels, 5, 6)
    target = torch.randint(0, channels, (2, 5, 6)) if target_kind == "index" else (torch.rand(2, channels, 5, 6) > 0.5).float()
    out = graph(logits, target)
    assert out["dice"].shape == (2, channels)
    torch.testing.assert_close(out["dice"], M.dice_score(logits, target, activation=activation))


def test_default_graph_with_ignore_index():
    graph = EvaluationGraph.default(ignore_index=255)
    logits = torch.randn(1, 3, 4, 4)
    target = torch.randint(0, 3, (1, 4, 4))
    target[0, 0] = 255
    out = graph(logits, target)
    torch.testing.assert_close(out["ce"][0], L.weighted_cross_entropy(logits, target, ignore_index=255))


def test_construction_errors():
    ce = L.WeightedCrossEntropyLoss()
    with pytest.raises(ValueError, match="losses, metrics: expected at least one loss or metric"):
        EvaluationGraph()
    with pytest.raises(ValueError, match=r"losses: output names must be identifiers .* got 'cross entropy'"):
        EvaluationGraph(losses={"cross entropy": ce})
    with pytest.raises(ValueError, match=r"metrics: output names must be identifiers .* got 'class'"):
        EvaluationGraph(metrics={"class": M.DiceScore()})
    with pytest.raises(ValueError, match=r"metrics: output names must differ from the loss names, both have \['dice'\]"):
        EvaluationGraph(losses={"dice": L.SoftDiceLoss(per_image=True)}, metrics={"dice": M.DiceScore()})
    with pytest.raises(TypeError, match=r"losses\['ce'\]: expected an nn.Module, got function"):
        EvaluationGraph(losses={"ce": L.weighted_cross_entropy})
    with pytest.raises(TypeError, match=r"losses\['deep'\]: DeepSupervisionLoss takes a list of outputs"):
        EvaluationGraph(losses={"deep": L.DeepSupervisionLoss(ce)})
    # It fed the class target to the skeleton recall loss as the skeleton: plain soft recall.
    for recall in (L.SkeletonRecallLoss(per_image=True), L.CombinedLoss([ce, L.SkeletonRecallLoss(per_image=True)])):
        with pytest.raises(TypeError, match=r"losses\['recall'\]: SkeletonRecallLoss scores the tubed skeleton"):
            EvaluationGraph(losses={"recall": recall})
    with pytest.raises(TypeError, match="losses: expected a mapping"):
        EvaluationGraph(losses=[ce])
    with pytest.raises(ValueError, match=r"loss: SoftDiceLoss pools the batch into one set \(per_image=False\)"):
        EvaluationGraph(losses={"dice": L.SoftDiceLoss()})
    with pytest.raises(ValueError, match=r"loss: LovaszSoftmaxLoss \(part 'losses.1'\) pools the batch"):
        EvaluationGraph(losses={"mix": L.CombinedLoss([ce, L.LovaszSoftmaxLoss()])})
    with pytest.raises(ValueError, match="activation: expected 'softmax' or 'sigmoid', got 'none'"):
        EvaluationGraph.default("none")
    with pytest.raises(ValueError, match="ignore_index: a sigmoid graph takes"):
        EvaluationGraph.default("sigmoid", ignore_index=255)


def test_compiled_graph_matches_eager_on_unseen_shapes():
    """torch.compile(fullgraph=True, dynamic=True), as users call it for varying sizes, gives the
    eager outputs and gradients on a shape it never saw. Each loss's own graph is compiled with
    dynamic=True in tests/losses/test_modes.py; here a graph of a per-pixel loss, two set losses
    (one with a float option) and three metrics (the IoU with ignore_empty) is traced whole with
    the "aot_eager" backend (the full softmax graph would take half a minute)."""
    graph = EvaluationGraph(
        losses={
            "ce": L.WeightedCrossEntropyLoss(ignore_index=IGNORE, label_smoothing=0.1),
            "dice_loss": L.SoftDiceLoss(per_image=True, ignore_index=IGNORE),
            "tversky": L.TverskyLoss(alpha=0.3, beta=0.7, per_image=True, ignore_index=IGNORE),
        },
        metrics={
            "dice": M.DiceScore(ignore_index=IGNORE),
            "iou": M.IoUScore(include_background=False, ignore_index=IGNORE, ignore_empty=True),
            "accuracy": M.PixelAccuracy(per_class=False, ignore_index=IGNORE),
        },
    )
    torch._dynamo.reset()
    compiled = torch.compile(graph, fullgraph=True, dynamic=True, backend="aot_eager")
    for seed, shape in enumerate(((2, 3, 6, 8), (1, 3, 5, 7))):
        inputs = softmax_inputs(shape, seed + 3)
        inputs[1][0][inputs[1][0] == 2] = 1  # image 0 lacks class 2, which it predicts: IoU NaN there
        results = []
        for run in (graph, compiled):
            logits = inputs[0].clone().requires_grad_(True)
            out = run(logits, *inputs[1:])
            sum(value.nan_to_num().sum() for value in out.values()).backward()
            results.append((out, logits.grad))
        (want, want_grad), (got, got_grad) = results
        assert list(got) == list(want)
        for name in want:
            torch.testing.assert_close(got[name], want[name], rtol=2e-5, atol=2e-6, equal_nan=True)
        torch.testing.assert_close(got_grad, want_grad, rtol=2e-5, atol=2e-6)
        assert want["dice"][0, 2] == 0.0 and torch.isnan(got["iou"][0, 1])
