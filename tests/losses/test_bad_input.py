"""Invalid input never becomes a plausible number: a NaN in is a NaN out, in every mode.

For every loss and metric, with a reduction that keeps images apart:

- a NaN or infinite logit makes that image's values non-finite (NaN for the classification, set
  and overlap losses and for the metrics), eager, scripted and compiled, and leaves the other
  image's values as they were;
- a NaN, infinite or negative weight and a class index outside [0, C) that is not the ignore index
  raise a ValueError naming the argument where values can be read (eager, TorchScript), and poison
  only that image inside a compiled graph, which cannot raise;
- options that are NaN or infinite are refused by name, at construction and in the functional form;
- float16 and bfloat16 inputs are accumulated in float32: the values equal the float32 ones and
  are finite wherever torch's own loss is.
"""

import math
import warnings
from dataclasses import dataclass
from typing import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import unetweights.losses as L
import unetweights.metrics as M

from .cases import CASES, IGNORE, make_inputs

SHAPE = (2, 3, 5, 6)


@dataclass
class PerImage:
    name: str
    build: Callable[[], nn.Module]
    kind: str
    # Losses whose value is NaN (not only non-finite) for a NaN or infinite logit.
    nan: bool = True
    # The name of the second argument, which errors about it must use.
    target_name: str = "target"


def _cw():
    return torch.tensor([0.5, 2.0, 1.0])


PER_IMAGE = [
    PerImage("ce", lambda: L.WeightedCrossEntropyLoss(class_weight=_cw(), ignore_index=IGNORE, label_smoothing=0.1, reduction="per_image"), "index"),
    PerImage("ce_prob", lambda: L.WeightedCrossEntropyLoss(label_smoothing=0.05, reduction="per_image"), "prob"),
    PerImage("nll", lambda: L.WeightedNLLLoss(class_weight=_cw(), ignore_index=IGNORE, reduction="per_image"), "index"),
    PerImage("bce", lambda: L.WeightedBCEWithLogitsLoss(pos_weight=torch.tensor([2.0, 1.0, 0.5]).view(3, 1, 1), reduction="per_image"), "binary"),
    PerImage("bce_balance", lambda: L.WeightedBCEWithLogitsLoss(balance=(0.25, 0.75), reduction="per_image"), "binary"),
    PerImage("bce_prob", lambda: L.WeightedBCELoss(pos_weight=torch.tensor([2.0, 1.0, 0.5]).view(3, 1, 1), reduction="per_image"), "probability"),
    PerImage("bce_prob_balance", lambda: L.WeightedBCELoss(balance=(0.25, 0.75), reduction="per_image"), "probability"),
    PerImage("focal_sigmoid", lambda: L.FocalLoss("sigmoid", alpha=0.25, reduction="per_image"), "binary"),
    PerImage("focal_softmax", lambda: L.FocalLoss("softmax", gamma=1.5, class_weight=_cw(), ignore_index=IGNORE, reduction="per_image"), "index"),
    PerImage("dice", lambda: L.SoftDiceLoss(per_image=True, class_weight=_cw(), ignore_index=IGNORE, reduction="none"), "index"),
    PerImage("dice_sigmoid", lambda: L.SoftDiceLoss("sigmoid", per_image=True, squared=True, smooth=0.0, reduction="none"), "binary"),
    PerImage("jaccard", lambda: L.SoftJaccardLoss(per_image=True, ignore_index=IGNORE, reduction="none"), "index"),
    PerImage("generalized_dice", lambda: L.GeneralizedDiceLoss(per_image=True, ignore_index=IGNORE, reduction="none"), "index"),
    PerImage("mcc", lambda: L.MCCLoss(per_image=True, ignore_index=IGNORE, reduction="none"), "index"),
    PerImage("boundary", lambda: L.BoundaryLoss(ignore_index=IGNORE, reduction="per_image"), "index"),
    PerImage("hausdorff_dt", lambda: L.HausdorffDTLoss("sigmoid", reduction="per_image"), "binary"),
    PerImage("cldice", lambda: L.ClDiceLoss(per_image=True, ignore_index=IGNORE, reduction="none"), "index"),
    PerImage("skeleton_recall", lambda: L.SkeletonRecallLoss(per_image=True, ignore_index=IGNORE, reduction="none"), "index", target_name="skeleton"),
    PerImage("tversky", lambda: L.TverskyLoss(alpha=0.3, beta=0.7, gamma=0.75, per_image=True, ignore_index=IGNORE, reduction="none"), "index"),
    PerImage("lovasz_hinge", lambda: L.LovaszHingeLoss(per_image=True, ignore_index=IGNORE, reduction="none"), "binary1"),
    PerImage("lovasz_softmax", lambda: L.LovaszSoftmaxLoss(per_image=True, ignore_index=IGNORE, reduction="none"), "index"),
    PerImage("mse", lambda: L.WeightedMSELoss(reduction="per_image"), "real", nan=False),
    PerImage("l1", lambda: L.WeightedL1Loss(reduction="per_image"), "real", nan=False),
    PerImage("smooth_l1", lambda: L.WeightedSmoothL1Loss(beta=0.5, reduction="per_image"), "real", nan=False),
    PerImage("huber", lambda: L.WeightedHuberLoss(delta=0.7, reduction="per_image"), "real", nan=False),
    PerImage("kl_div", lambda: L.WeightedKLDivLoss(reduction="per_image"), "logprob", nan=False),
    PerImage("dice_score", lambda: M.DiceScore(ignore_index=IGNORE), "index"),
    # MONAI's rule with a finite empty_score: a NaN Σt taken for an absent class would show as 0.
    PerImage("iou_soft", lambda: M.IoUScore(hard=False, ignore_index=IGNORE, empty_score=0.0, ignore_empty=True), "index"),
    PerImage("dice_score_sigmoid", lambda: M.DiceScore("sigmoid"), "binary"),
    PerImage("accuracy", lambda: M.PixelAccuracy(per_class=False, ignore_index=IGNORE), "index"),
    PerImage("accuracy_sigmoid", lambda: M.PixelAccuracy("sigmoid"), "binary"),
]

MODES = ("eager", "script", "compile")
# What TorchScript raises for a ValueError: torch.jit.Error carries the same text.
RAISED = (ValueError, torch.jit.Error)


def _build(mode, module, tmp_path):
    if mode == "eager":
        return module
    if mode == "script":
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"`torch\.jit\.\w+` is deprecated")
            path = tmp_path / "loss.pt"
            torch.jit.save(torch.jit.script(module), str(path))
            return torch.jit.load(str(path))
    torch._dynamo.reset()
    return torch.compile(module, fullgraph=True)


def _logit_corruptions(case):
    """(label, bad value) for the logits; NLL and KL take log-probabilities, where -inf is a 0."""
    values = [("nan", math.nan), ("inf", math.inf)]
    if case.kind not in ("logprob",) and case.name != "nll":
        values.append(("-inf", -math.inf))
    return values


def _target_corruptions(case, channels):
    """(label, corrupt target maker) for the targets, each wrong at one pixel of image 0."""
    if case.kind in ("index", "binary1"):
        high = channels if case.kind == "index" else 2
        return [(f"target={v}", v) for v in (-3, high, 100)]
    return [("target=nan", math.nan), ("target=inf", math.inf)]


def _at(t, value, channel=True):
    t = t.clone()
    index = (0, min(1, t.shape[1] - 1), 2, 3) if channel and t.dim() == 4 else (0, 2, 3)
    t[index] = value
    return t


def _expect_poisoned(case, out, clean, strict_nan):
    bad, good = out[0], out[1]
    if strict_nan:
        assert torch.isnan(bad).all(), f"{case.name}: image 0 should be NaN, got {bad}"
    else:
        assert not torch.isfinite(bad).all(), f"{case.name}: image 0 should not be finite, got {bad}"
    torch.testing.assert_close(good, clean[1], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", PER_IMAGE, ids=lambda c: c.name)
def test_invalid_values_poison_only_their_image(case, mode, tmp_path):
    module = case.build()
    run = _build(mode, module, tmp_path)
    x, target, weight = make_inputs(case.kind, SHAPE, seed=3)
    clean = module(x, target, weight)
    assert torch.isfinite(clean).all()
    torch.testing.assert_close(run(x, target, weight), clean, rtol=1e-5, atol=1e-6)

    # Logits: NaN out in every mode.
    for label, value in _logit_corruptions(case):
        out = run(_at(x, value), target, weight)
        strict = case.nan or label == "nan"
        _expect_poisoned(case, out, clean, strict)

    # Weights and targets: an error naming the argument where values can be read, poison where not.
    bad_inputs = [(f"weight={v}", "weight", (x, target, _at(weight, v, channel=False))) for v in (math.nan, math.inf, -1.0)]
    for label, value in _target_corruptions(case, x.shape[1]):
        bad_inputs.append((label, case.target_name, (x, _at(target, value), weight)))
    for label, argument, inputs in bad_inputs:
        float_target = argument == case.target_name and target.is_floating_point()
        if mode == "compile":
            # An infinite probability or regression target is carried on as inf, as in eager mode.
            _expect_poisoned(case, run(*inputs), clean, not (float_target and "inf" in label))
            continue
        if float_target:
            # A probability or regression target: either refused by name (binary targets are
            # checked to lie in [0, 1]) or read by the arithmetic, which carries NaN and inf on.
            try:
                out = run(*inputs)
            except RAISED as error:
                assert f"{case.target_name}:" in str(error)
                continue
            _expect_poisoned(case, out, clean, "nan" in label)
            continue
        with pytest.raises(RAISED, match=f"{argument}:"):
            run(*inputs)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("value", [-0.25, 1.5, 2.5], ids=["-0.25", "1.5", "2.5"])
def test_probabilities_outside_0_1_are_refused_or_poison_their_image(value, mode, tmp_path):
    """A finite probability outside [0, 1] (a logit passed by mistake) is named where values can
    be read, and poisons only its image inside a compiled graph, for either reduction path."""
    for build in (lambda: L.WeightedBCELoss(reduction="per_image"), lambda: L.WeightedBCELoss(balance=(0.5, 0.5), reduction="per_image")):
        module = build()
        run = _build(mode, module, tmp_path)
        x, target, weight = make_inputs("probability", SHAPE, seed=11)
        clean = module(x, target, weight)
        bad = _at(x, value)
        if mode == "compile":
            _expect_poisoned(PerImage("bce_prob", build, "probability"), run(bad, target, weight), clean, True)
        else:
            with pytest.raises(RAISED, match=r"input: expected probabilities in \[0, 1\] \(for logits use weighted_bce_with_logits\)") as info:
                run(bad, target, weight)
            # The finite range found, with the bad value at its end.
            assert (f"found values in [{value}, " if value < 0 else f", {value}]") in str(info.value)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_nan_logit_is_nan_loss_for_every_reduction_in_cases(case):
    """The modules as users build them (mean, sum, per-image sets): one NaN logit gives a NaN loss."""
    x, target, weight = make_inputs(case.kind, SHAPE, seed=4)
    value = case.build(2)(_at(x, math.nan), target, weight)
    assert torch.isnan(value).any() and not torch.isfinite(value).all()


def test_nan_logit_cannot_hide_behind_an_empty_set():
    """An image with nothing to find scores empty_score (1.0 here, where NaN could not be told
    apart); the same image with a NaN logit is NaN."""
    x = torch.randn(2, 2, 4, 4)
    target = torch.zeros(2, 4, 4, dtype=torch.long)
    weight = torch.ones(2, 4, 4)
    weight[:, 0, 0] = 0.0
    empty = M.dice_score(x, target, torch.zeros_like(weight), empty_score=1.0)
    assert torch.equal(empty, torch.ones_like(empty))
    x[0, 1, 0, 0] = math.nan  # in a pixel that weighs 0: still an invalid prediction
    for hard in (True, False):
        got = M.dice_score(x, target, weight, hard=hard, empty_score=1.0)
        assert torch.isnan(got[0]).all() and torch.isfinite(got[1]).all()
        loss = L.soft_dice_loss(x, target, weight, per_image=True, reduction="none")
        assert torch.isnan(loss[0]).all() and torch.isfinite(loss[1]).all()
    # The hard argmax of NaN logits is not class 0: accuracy is NaN, not 1.
    x = torch.full((1, 2, 3, 3), math.nan)
    assert torch.isnan(M.pixel_accuracy(x, torch.zeros(1, 3, 3, dtype=torch.long), empty_score=1.0)).all()


# ---- options -------------------------------------------------------------------------------

def _tensor_option(v):
    return torch.tensor([1.0, v, 1.0])


OPTIONS = [
    ("label_smoothing", lambda v: L.WeightedCrossEntropyLoss(label_smoothing=v), lambda x, t, b, w, v: L.weighted_cross_entropy(x, t, w, label_smoothing=v)),
    ("label_smoothing", lambda v: L.WeightedNLLLoss(label_smoothing=v), lambda x, t, b, w, v: L.weighted_nll_loss(x, t, w, label_smoothing=v)),
    ("class_weight", lambda v: L.WeightedCrossEntropyLoss(class_weight=_tensor_option(v)), lambda x, t, b, w, v: L.weighted_cross_entropy(x, t, w, class_weight=_tensor_option(v))),
    ("class_weight", lambda v: L.SoftDiceLoss(class_weight=_tensor_option(v)), lambda x, t, b, w, v: L.soft_dice_loss(x, t, w, class_weight=_tensor_option(v))),
    ("class_weight", lambda v: L.FocalLoss("softmax", class_weight=_tensor_option(v)), lambda x, t, b, w, v: L.focal_loss(x, t, w, "softmax", class_weight=_tensor_option(v))),
    ("gamma", lambda v: L.FocalLoss(gamma=v), lambda x, t, b, w, v: L.focal_loss(x, b, w, gamma=v)),
    ("alpha", lambda v: L.FocalLoss(alpha=v), lambda x, t, b, w, v: L.focal_loss(x, b, w, alpha=v)),
    ("balance", lambda v: L.WeightedBCEWithLogitsLoss(balance=(v, 1.0)), lambda x, t, b, w, v: L.weighted_bce_with_logits(x, b, w, balance=(1.0, v))),
    ("pos_weight", lambda v: L.WeightedBCEWithLogitsLoss(pos_weight=_tensor_option(v).view(3, 1, 1)), lambda x, t, b, w, v: L.weighted_bce_with_logits(x, b, w, pos_weight=_tensor_option(v).view(3, 1, 1))),
    ("balance", lambda v: L.WeightedBCELoss(balance=(1.0, v)), lambda x, t, b, w, v: L.weighted_binary_cross_entropy(torch.sigmoid(x), b, w, balance=(v, 1.0))),
    ("pos_weight", lambda v: L.WeightedBCELoss(pos_weight=_tensor_option(v).view(3, 1, 1)), lambda x, t, b, w, v: L.weighted_binary_cross_entropy(torch.sigmoid(x), b, w, pos_weight=_tensor_option(v).view(3, 1, 1))),
    ("smooth", lambda v: L.SoftDiceLoss(smooth=v), lambda x, t, b, w, v: L.soft_dice_loss(x, t, w, smooth=v)),
    ("smooth", lambda v: L.TverskyLoss(smooth=v), lambda x, t, b, w, v: L.tversky_loss(x, t, w, smooth=v)),
    ("alpha", lambda v: L.TverskyLoss(alpha=v), lambda x, t, b, w, v: L.tversky_loss(x, t, w, alpha=v)),
    ("beta", lambda v: L.TverskyLoss(beta=v), lambda x, t, b, w, v: L.tversky_loss(x, t, w, beta=v)),
    ("gamma", lambda v: L.TverskyLoss(gamma=v), lambda x, t, b, w, v: L.tversky_loss(x, t, w, gamma=v)),
    ("smooth", lambda v: L.MCCLoss(smooth=v), lambda x, t, b, w, v: L.mcc_loss(x, t, w, smooth=v)),
    ("smooth", lambda v: L.ClDiceLoss(smooth=v), lambda x, t, b, w, v: L.cldice_loss(x, t, w, smooth=v)),
    ("smooth", lambda v: L.SkeletonRecallLoss(smooth=v), lambda x, t, b, w, v: L.skeleton_recall_loss(x, t, w, smooth=v)),
    ("alpha", lambda v: L.HausdorffDTLoss(alpha=v), lambda x, t, b, w, v: L.hausdorff_dt_loss(x, t, w, alpha=v)),
    ("spacing", lambda v: L.BoundaryLoss(spacing=[1.0, v]), lambda x, t, b, w, v: L.boundary_loss(x, t, w, spacing=[v, 1.0])),
    ("spacing", lambda v: L.HausdorffDTLoss(spacing=[v, 1.0]), lambda x, t, b, w, v: L.hausdorff_dt_loss(x, t, w, spacing=[1.0, v])),
    ("delta", lambda v: L.WeightedHuberLoss(delta=v), lambda x, t, b, w, v: L.weighted_huber_loss(x, x, w, delta=v)),
    ("beta", lambda v: L.WeightedSmoothL1Loss(beta=v), lambda x, t, b, w, v: L.weighted_smooth_l1_loss(x, x, w, beta=v)),
    ("threshold", lambda v: M.DiceScore("sigmoid", threshold=v), lambda x, t, b, w, v: M.dice_score(x, b, w, "sigmoid", threshold=v)),
    ("weights", lambda v: L.CombinedLoss([L.WeightedCrossEntropyLoss()], [v]), None),
    ("weights", lambda v: L.DeepSupervisionLoss(L.WeightedCrossEntropyLoss(), [1.0, v]), None),
]


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("name, build, call", OPTIONS, ids=[f"{o[0]}-{i}" for i, o in enumerate(OPTIONS)])
def test_non_finite_options_are_refused_by_name(name, build, call, value):
    _assert_refused(build, call, value, f"{name}")


def _assert_refused(build, call, value, match):
    """Both the Module built with ``value`` and, if there is one, the functional call refuse it."""
    with pytest.raises(ValueError, match=match):
        build(value)
    if call is None:
        return
    x, t, w = make_inputs("index_clean", SHAPE, seed=5)
    b = (torch.rand(x.shape) < 0.5).float()
    with pytest.raises(ValueError, match=match):
        call(x, t, b, w, value)


def _wrong_types():
    """The options of OPTIONS that are numbers (not tensors), each with a string, None and a bool;
    not None for the focal loss's alpha, where it is the documented default."""
    for i, (name, build, call) in enumerate(OPTIONS):
        if name in ("class_weight", "pos_weight"):
            continue
        focal_alpha = name == "alpha" and isinstance(build(0.25), L.FocalLoss)
        for label, value in (("str", "2"), ("none", None), ("bool", True)):
            if not (focal_alpha and value is None):
                yield pytest.param(name, build, call, value, id=f"{name}-{i}-{label}")


@pytest.mark.parametrize("name, build, call, value", list(_wrong_types()))
def test_options_of_the_wrong_type_are_refused_by_name(name, build, call, value):
    """Issue 19: HausdorffDTLoss(alpha='2') was read as 2, SkeletonRecallLoss(smooth=None) raised
    Python's own TypeError. A string, None or a bool where a number goes is refused by name."""
    _assert_refused(build, call, value, f"{name}: expected")


WRONG_TYPES = [
    ("iterations", lambda: L.ClDiceLoss(iterations=2.5)),
    ("iterations", lambda: L.cldice_loss(*make_inputs("index_clean", SHAPE)[:2], iterations=2.5)),
    ("iterations", lambda: L.cldice_loss(*make_inputs("index_clean", SHAPE)[:2], iterations="3")),
    ("spacing", lambda: L.BoundaryLoss(spacing="ab")),
    ("spacing", lambda: L.boundary_loss(*make_inputs("index_clean", SHAPE)[:2], spacing="ab")),
    ("spacing", lambda: L.HausdorffDTLoss(spacing=[1.0, "2"])),
    ("per_image", lambda: L.SoftDiceLoss(per_image="False")),
    ("include_background", lambda: L.MCCLoss(include_background="no")),
    ("squared", lambda: L.SoftDiceLoss(squared=1)),
    ("per_image", lambda: L.LovaszSoftmaxLoss(per_image=None)),
    ("log_target", lambda: L.WeightedKLDivLoss(log_target="yes")),
    ("ignore_index", lambda: L.WeightedCrossEntropyLoss(ignore_index=2.5)),
    ("ignore_index", lambda: L.SoftDiceLoss(ignore_index="255")),
    ("balance", lambda: L.WeightedBCEWithLogitsLoss(balance=(0.5, 0.25, 0.25))),
    ("balance", lambda: L.WeightedBCEWithLogitsLoss(balance="ab")),
    ("hard", lambda: M.DiceScore(hard="False")),
    ("threshold", lambda: M.IoUScore("sigmoid", threshold="0.5")),
    ("empty_score", lambda: M.PixelAccuracy(empty_score="nan")),
    ("per_class", lambda: M.PixelAccuracy(per_class=0)),
    ("ignore_empty", lambda: M.DiceScore(ignore_empty="False")),
    ("ignore_empty", lambda: M.IoUScore(ignore_empty=None)),
    ("ignore_empty", lambda: M.iou_score(*make_inputs("index_clean", SHAPE)[:2], ignore_empty=1)),
]


@pytest.mark.parametrize("name, make", WRONG_TYPES, ids=[f"{w[0]}-{i}" for i, w in enumerate(WRONG_TYPES)])
def test_flags_integers_and_sequences_of_the_wrong_type_are_refused_by_name(name, make):
    with pytest.raises(ValueError, match=f"{name}: expected"):
        make()


SOFTMAX_ONE_CHANNEL = [
    ("soft_dice", lambda x, t: L.soft_dice_loss(x, t), "activation='sigmoid'"),
    ("soft_jaccard", lambda x, t: L.SoftJaccardLoss()(x, t), "activation='sigmoid'"),
    ("generalized_dice", lambda x, t: L.generalized_dice_loss(x, t), "activation='sigmoid'"),
    ("mcc", lambda x, t: L.MCCLoss()(x, t), "activation='sigmoid'"),
    ("tversky", lambda x, t: L.tversky_loss(x, t), "activation='sigmoid'"),
    ("cldice", lambda x, t: L.cldice_loss(x, t), "activation='sigmoid'"),
    ("skeleton_recall", lambda x, t: L.skeleton_recall_loss(x, t), "activation='sigmoid'"),
    ("boundary", lambda x, t: L.boundary_loss(x, t), "activation='sigmoid'"),
    ("hausdorff_dt", lambda x, t: L.hausdorff_dt_loss(x, t), "activation='sigmoid'"),
    ("cross_entropy", lambda x, t: L.weighted_cross_entropy(x, t), "weighted_bce_with_logits"),
    ("focal_softmax", lambda x, t: L.FocalLoss("softmax")(x, t), "activation='sigmoid'"),
    ("lovasz_softmax", lambda x, t: L.lovasz_softmax(x, t), "lovasz_hinge"),
    ("dice_score", lambda x, t: M.dice_score(x, t), "activation='sigmoid'"),
    ("scripted_dice", lambda x, t: torch.jit.script(L.SoftDiceLoss())(x, t), "activation='sigmoid'"),
]


@pytest.mark.parametrize("name, call, instead", SOFTMAX_ONE_CHANNEL, ids=[c[0] for c in SOFTMAX_ONE_CHANNEL])
def test_a_softmax_over_one_channel_is_refused(name, call, instead):
    """Issue 19: a softmax over one channel is 1 everywhere, so these were constant (a set loss 0,
    a score 1) with no word; the error points to what a single channel needs."""
    x = torch.randn(2, 1, 6, 7)
    t = torch.zeros(2, 6, 7, dtype=torch.long)
    with pytest.raises(RAISED, match=f"input: a softmax over C = 1 channel.*{instead}"):
        call(x, t)


def test_empty_score_refuses_infinity_but_takes_nan():
    x, t, w = make_inputs("index_clean", SHAPE, seed=6)
    for value in (math.inf, -math.inf):
        with pytest.raises(ValueError, match="empty_score"):
            M.IoUScore(empty_score=value)
        with pytest.raises(ValueError, match="empty_score"):
            M.iou_score(x, t, w, empty_score=value)
    got = M.iou_score(x, t, torch.zeros_like(w), empty_score=math.nan)
    assert torch.isnan(got).all()


# ---- half precision ------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_half_precision_is_accumulated_in_float32(case, dtype):
    x, target, weight = make_inputs(case.kind, SHAPE, seed=7)
    half = [t.to(dtype) if t.is_floating_point() else t for t in (x, target, weight)]
    module = case.build(2)
    widened = [t.float() if t.is_floating_point() else t for t in half]
    xh = half[0].clone().requires_grad_(True)
    got = module(xh, half[1], half[2])
    want = module(*widened)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)
    got.sum().backward()
    assert xh.grad.dtype == dtype and torch.isfinite(xh.grad).all()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
def test_half_precision_is_finite_where_torch_is(dtype):
    g = torch.Generator().manual_seed(8)
    x = (1e4 * torch.sign(torch.randn(4, 3, 16, 16, generator=g))).to(dtype)
    b = (torch.rand(x.shape, generator=g) < 0.5).to(dtype)
    t = torch.randint(0, 3, (4, 16, 16), generator=g)
    pairs = [
        (F.binary_cross_entropy_with_logits(x, b), L.weighted_bce_with_logits(x, b)),
        (F.binary_cross_entropy(torch.sigmoid(x), b), L.weighted_binary_cross_entropy(torch.sigmoid(x), b)),
        (F.cross_entropy(x, t), L.weighted_cross_entropy(x, t)),
        (F.cross_entropy(x, t, label_smoothing=0.1), L.weighted_cross_entropy(x, t, label_smoothing=0.1)),
        (F.mse_loss(x, b), L.weighted_mse_loss(x, b)),
        (F.l1_loss(x, b, reduction="sum"), L.weighted_l1_loss(x, b, reduction="sum")),
        (F.smooth_l1_loss(x, b), L.weighted_smooth_l1_loss(x, b)),
        (F.huber_loss(x, b), L.weighted_huber_loss(x, b)),
    ]
    for theirs, ours in pairs:
        reference = theirs.float()
        assert torch.isfinite(ours), (theirs, ours)
        if torch.isfinite(theirs):
            # torch accumulates in the input dtype; ours in float32 is at least as close to the truth.
            torch.testing.assert_close(ours, reference, rtol=1e-2, atol=0.0)
    # Where torch's float16 sum overflows, ours does not.
    assert torch.isinf(F.l1_loss(x.to(torch.float16), b.to(torch.float16), reduction="sum")) or dtype == torch.bfloat16
    assert torch.isfinite(L.weighted_bce_with_logits(x, b, reduction="sum"))
    assert torch.isfinite(L.weighted_binary_cross_entropy(torch.sigmoid(x), b, reduction="sum"))


# ---- errors under torch.compile(fullgraph=True) --------------------------------------------

def test_fullgraph_compile_errors_still_name_the_argument():
    """Dynamo wraps a ValueError raised while tracing; the argument's message is in its text."""
    torch._dynamo.reset()
    run = torch.compile(L.WeightedCrossEntropyLoss(), fullgraph=True)
    x, t, w = make_inputs("index_clean", SHAPE, seed=9)
    with pytest.raises(Exception, match=r"weight: expected shape \[2, 5, 6\]") as info:
        run(x, t, w[:, :4])
    assert isinstance(info.value, (ValueError, torch._dynamo.exc.Unsupported))
    with pytest.raises(Exception, match="input: expected a floating"):
        run(x.long(), t, w)


@pytest.mark.parametrize("mode", MODES)
def test_pooled_sigmoid_focal_keeps_the_nan_rule(mode, tmp_path):
    """"mean" and "sum" of the sigmoid focal loss check the logits from the total (eager, on the CPU)
    or inside the loss's own reduction (compiled), not in a pass of their own: a NaN or infinite
    logit is still a NaN loss, a zero weight does not hide it, a bad target is still refused (or
    NaN, compiled), and an overflowed sum of finite logits stays inf rather than NaN."""
    x, target, weight = make_inputs("binary", SHAPE, seed=21)
    weight[0, 2, 3] = 0.0
    for reduction in ("mean", "sum"):
        module = L.FocalLoss("sigmoid", alpha=0.25, reduction=reduction)
        run = _build(mode, module, tmp_path)
        clean = module(x, target, weight)
        torch.testing.assert_close(run(x, target, weight), clean, rtol=1e-5, atol=1e-6)
        for value in (math.nan, math.inf, -math.inf):
            assert torch.isnan(run(_at(x, value), target, weight)), (reduction, value)
        for value in (math.nan, 2.0, -0.5):
            if mode == "compile":
                assert torch.isnan(run(x, _at(target, value), weight)), (reduction, value)
            else:
                with pytest.raises(RAISED, match="target:"):
                    run(x, _at(target, value), weight)
        huge = torch.full_like(x, 3e38)
        assert run(huge, torch.zeros_like(target), None).item() == math.inf, reduction
