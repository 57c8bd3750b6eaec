"""What multiplying the weight map by a positive constant does to every loss and metric that takes one.

The rule (README, "A NaN in is a NaN out"; each docstring says which case it is in):
- per-pixel losses under "mean" and "per_image" are invariant, Σ c·w·ℓ / Σ c·w; under "sum" and
  "none" (and KL's "batchmean") they are proportional to c;
- set losses (Dice, Jaccard, Tversky, MCC, generalized Dice, clDice, skeleton recall, Lovasz) are
  invariant for every reduction: their smoothing is counted in the map's own unit, the mean weight
  of the counted pixels (generalized Dice: in fractions of the set's weight mass);
- the metrics are ratios of weighted counts, invariant; ``segmentation_counts`` are proportional.
The one exception is the Lovasz hinge's ``weight_mode="margin"``, where the map is a margin in logit
units: a larger map asks for a larger margin.
"""

import numpy as np
import pytest
import torch
from skimage.draw import disk

import unetweights.losses as L
import unetweights.metrics as M
from unetweights.weightmaps import unet_weight_map

from .losses.cases import CASES, SHAPES, make_inputs

SET_LOSSES = {
    "dice", "dice_sigmoid", "tversky", "jaccard", "generalized_dice", "mcc", "mcc_sigmoid", "cldice", "cldice_sigmoid",
    "skeleton_recall", "skeleton_recall_sigmoid", "lovasz_hinge", "lovasz_softmax", "lovasz_softmax_all",
}
NOT_SCALE_FREE = {"lovasz_hinge_margin"}
SCALES = (1e-3, 1e6)


def _expected(case, module) -> str:
    if case.name in SET_LOSSES:
        return "invariant"
    if case.name == "combined":
        # Its parts here are cross-entropy under "mean" and soft Dice.
        return "invariant"
    return "invariant" if module.reduction in ("mean", "per_image") else "proportional"


def test_every_case_has_a_rule():
    element = {case.name for case in CASES} - SET_LOSSES - NOT_SCALE_FREE - {"combined"}
    modules = {case.name: case.build(2) for case in CASES}
    # Every element-wise case names its reduction: the rule follows from it.
    assert all(hasattr(modules[name], "reduction") for name in element)
    assert SET_LOSSES | NOT_SCALE_FREE <= set(modules)


@pytest.mark.parametrize("case", [c for c in CASES if c.name not in NOT_SCALE_FREE], ids=lambda c: c.name)
def test_losses_under_a_scaled_map(case):
    module = case.build(2)
    x, target, weight = make_inputs(case.kind, SHAPES["2d"][0], seed=5)
    x = x.double()
    target = target.double() if target.is_floating_point() else target
    weight = weight.double()
    base = module(x, target, weight)
    assert torch.isfinite(base).all() and base.abs().sum() > 0
    rule = _expected(case, module)
    for scale in SCALES:
        scaled = module(x, target, weight * scale)
        want = base if rule == "invariant" else base * scale
        torch.testing.assert_close(scaled, want, rtol=1e-9, atol=1e-12 * max(scale, 1.0))


def test_margin_lovasz_is_not_scale_free():
    """The documented exception: the map is a margin in logit units."""
    (case,) = [c for c in CASES if c.name == "lovasz_hinge_margin"]
    module = case.build(2)
    x, target, weight = make_inputs(case.kind, SHAPES["2d"][0], seed=5)
    assert not torch.allclose(module(x, target, weight * 10.0), module(x, target, weight))


@pytest.mark.parametrize("scale", SCALES)
def test_set_losses_in_float32_at_extreme_scales(scale):
    """The smoothing follows the map in float32 too: nothing underflows or swamps the counts."""
    x, target, weight = make_inputs("index", (2, 3, 16, 12), seed=9)
    target = target.clamp_min(0)
    for loss in (L.soft_dice_loss, L.soft_jaccard_loss, L.tversky_loss, L.generalized_dice_loss, L.mcc_loss,
                 L.cldice_loss):
        torch.testing.assert_close(loss(x, target, weight * scale), loss(x, target, weight), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(
    "metric",
    [M.dice_score, M.iou_score, M.pixel_accuracy, lambda *a: M.dice_score(*a, hard=False)],
    ids=["dice", "iou", "accuracy", "soft_dice"],
)
def test_metrics_are_invariant(metric):
    x, target, weight = make_inputs("index", (2, 3, 9, 7), seed=6)
    target = target.clamp_min(0)
    base = metric(x, target, weight)
    for scale in SCALES:
        torch.testing.assert_close(metric(x, target, weight * scale), base, rtol=1e-5, atol=1e-7)


def test_counts_are_proportional_and_the_accumulator_invariant():
    x, target, weight = make_inputs("index", (2, 3, 9, 7), seed=7)
    target = target.clamp_min(0)
    x, weight = x.double(), weight.double()
    base = M.segmentation_counts(x, target, weight)
    results = []
    for scale in (1.0,) + SCALES:
        for got, want in zip(M.segmentation_counts(x, target, weight * scale), base):
            torch.testing.assert_close(got, want * scale, rtol=1e-12, atol=0.0)
        metrics = M.SegmentationMetrics(num_classes=3)
        metrics.update(x, target, weight * scale)
        results.append(metrics.compute())
    for other in results[1:]:
        for name, value in results[0].items():
            torch.testing.assert_close(other[name], value, rtol=1e-9, atol=1e-12, equal_nan=True)


def _nuclei_labels(seed: int, size: int = 256) -> np.ndarray:
    """Touching and separate disks of 6-14 px radius: the case the U-Net border term is for."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((size, size), np.int32)
    for label in range(1, 40):
        r, c = rng.integers(10, size - 10, 2)
        rr, cc = disk((r, c), rng.integers(6, 15), shape=labels.shape)
        labels[rr, cc] = label
    return labels


def test_generalized_dice_of_an_inverted_prediction_is_near_one_at_every_map_scale():
    """Issue 19: with the smoothing fixed in absolute units, 8 U-Net maps made an inverted
    prediction score 0.58 (0.12 with the map x10, 0.0 at x1e20)."""
    labels = np.stack([_nuclei_labels(seed) for seed in range(8)])
    weight = torch.from_numpy(np.stack([unet_weight_map(lab) for lab in labels]))
    target = torch.from_numpy(labels > 0).long()
    one_hot = torch.nn.functional.one_hot(target, 2).permute(0, 3, 1, 2).float()
    inverted = 10.0 * (1.0 - 2.0 * one_hot)  # confident in the wrong class everywhere
    for scale in (1e-3, 1.0, 10.0, 1e6):
        for per_image in (False, True):
            loss = L.generalized_dice_loss(inverted, target, weight * scale, per_image=per_image)
            assert abs(float(loss) - 1.0) < 1e-3, (scale, per_image, float(loss))
    # And a perfect prediction still scores 0 at the extremes of the map's scale.
    for scale in (1e-3, 1e6):
        assert float(L.generalized_dice_loss(-inverted, target, weight * scale)) < 1e-3
