"""MCC and the losses on distances and skeletons against float64 references and their MONAI peers.

The references (tests/losses/reference.py) take distances from scipy's transform and soft
skeletons from scipy's grey filters, independently of the torch code under test; the torch
distance transform itself is checked against an explicit minimum over every pixel.
"""

import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import unetweights.losses as L
from unetweights.weightmaps import signed_distance_map, tubed_skeleton

from . import reference as R
from .cases import IGNORE

REDUCTIONS = ("none", "mean", "sum", "per_image")
SPATIAL = {"2d": (7, 9), "3d": (4, 5, 6)}
SPACING = {"2d": [1.5, 0.5], "3d": [2.0, 1.0, 0.75]}


def _inputs(dims, activation="softmax", seed=0, classes=3, images=2):
    """float64 logits, a target with ignored pixels (index) or binary channels (sigmoid), a weight map with zeros."""
    g = torch.Generator().manual_seed(seed)
    spatial = SPATIAL[dims]
    x = 2.0 * torch.randn((images, classes) + spatial, generator=g, dtype=torch.float64)
    if activation == "sigmoid":
        target = (torch.rand(x.shape, generator=g) < 0.4).double()
    else:
        target = torch.randint(0, classes, (images,) + spatial, generator=g)
        target[torch.rand(target.shape, generator=g) < 0.1] = IGNORE
    weight = 0.2 + 2.0 * torch.rand((images,) + spatial, generator=g, dtype=torch.float64)
    weight[torch.rand(weight.shape, generator=g) < 0.1] = 0.0
    return x, target, weight


def _check(out, ref, tol=1e-9):
    np.testing.assert_allclose(out.detach().numpy(), np.asarray(ref, dtype=np.float64), rtol=tol, atol=tol)


# --- the torch distance transform --------------------------------------------------------------


@pytest.mark.parametrize("dims", sorted(SPATIAL))
def test_distance_transform_is_exact(dims):
    g = torch.Generator().manual_seed(1)
    mask = torch.rand((2, 2) + SPATIAL[dims], generator=g) < 0.25
    mask[1, 1] = False  # no boundary: 0 everywhere
    got = L.distance_transform(mask, SPACING[dims]).double()
    for n in range(2):
        for c in range(2):
            want = R.brute_signed_distance(mask[n, c].numpy(), SPACING[dims])
            np.testing.assert_allclose(got[n, c].numpy(), want, rtol=1e-6, atol=1e-6)
            # The numpy map the data pipeline precomputes is the same map.
            np.testing.assert_allclose(got[n, c].numpy(), signed_distance_map(mask[n, c].numpy(), SPACING[dims]), rtol=1e-6)
    unsigned = L.distance_transform(mask, SPACING[dims], signed=False)
    torch.testing.assert_close(unsigned, got.abs().float())
    assert torch.equal(got[1, 1], torch.zeros_like(got[1, 1]))


def test_distance_transform_in_chunks_is_exact():
    """A long axis takes one line per chunk in eager mode; the values do not change."""
    mask = torch.zeros(1, 1, 2, 3000, dtype=torch.bool)
    mask[0, 0, 0, 17] = True
    mask[0, 0, 1, 2900] = True
    got = L.distance_transform(mask, [3.0, 0.5])[0, 0].double().numpy()
    x = np.arange(3000) * 0.5
    rows = np.array([0.0, 3.0])
    points = [(0.0, 17 * 0.5), (3.0, 2900 * 0.5)]
    want = np.min([np.sqrt((rows[:, None] - r) ** 2 + (x[None] - c) ** 2) for r, c in points], 0)
    for r, c in ((0, 17), (1, 2900)):
        want[r, c] = -0.5  # inside: the nearest background pixel is one step along the row
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_distance_transform_refuses_bad_spacing():
    mask = torch.zeros(1, 1, 3, 3, dtype=torch.bool)
    with pytest.raises(ValueError, match="spacing: expected 2 entries"):
        L.distance_transform(mask, [1.0])
    for bad in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="spacing"):
            L.distance_transform(mask, [1.0, bad])
    with pytest.raises(ValueError, match="spacing"):
        L.BoundaryLoss(spacing=[1.0, math.nan])


# --- MCC -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", ("none", "mean", "sum"))
@pytest.mark.parametrize("per_image", (True, False))
@pytest.mark.parametrize("activation", ("softmax", "sigmoid"))
def test_mcc_equals_reference(activation, per_image, reduction):
    x, y, w = _inputs("2d", activation, seed=2)
    cw = torch.tensor([0.5, 2.0, 1.0], dtype=torch.float64)
    ignore = None if activation == "sigmoid" else IGNORE
    out = L.mcc_loss(x, y, w, activation, 1e-5, per_image, False, cw, ignore, reduction)
    ref = R.ref_mcc(x.numpy(), y.numpy(), w.numpy(), activation, 1e-5, per_image, False, cw.numpy(), IGNORE, reduction)
    _check(out, ref)


@pytest.mark.parametrize("include_background", (True, False))
@pytest.mark.parametrize("batch", (True, False))
def test_mcc_equals_monai(batch, include_background):
    monai_losses = pytest.importorskip("monai.losses")
    x, y, _ = _inputs("3d", seed=3)
    y = y.clamp_min(0)
    one_hot = F.one_hot(y, 3).movedim(-1, 1).double()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = monai_losses.MCCLoss(include_background=include_background, softmax=True, batch=batch, reduction="none")
        want = theirs(x, one_hot).reshape(-1)
    got = L.mcc_loss(x, y, per_image=not batch, include_background=include_background, reduction="none").reshape(-1)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_mcc_perfect_and_degenerate_predictions():
    target = torch.zeros(1, 4, 4, dtype=torch.long)
    target[0, :2] = 1
    perfect = F.one_hot(target, 2).movedim(-1, 1).double().requires_grad_(True)
    loss = L.mcc_loss(perfect, target, activation="none", smooth=0.0, reduction="none")
    assert torch.equal(loss, torch.zeros_like(loss))
    # Everything predicted as class 1: tn + fn = 0 for class 1, so MCC is defined as 0 (loss 1).
    flat = torch.zeros(1, 2, 4, 4, dtype=torch.float64)
    flat[:, 1] = 1.0
    flat.requires_grad_(True)
    loss = L.mcc_loss(flat, target, activation="none", smooth=0.0, reduction="none")
    torch.testing.assert_close(loss, torch.ones_like(loss))
    loss.sum().backward()
    assert torch.isfinite(flat.grad).all()


# --- boundary and Hausdorff-DT ----------------------------------------------------------------------


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dims", sorted(SPATIAL))
def test_boundary_equals_reference(dims, reduction):
    x, y, w = _inputs(dims, seed=4)
    spacing = SPACING[dims]
    out = L.boundary_loss(x, y, w, None, "softmax", False, spacing, IGNORE, reduction)
    ref = R.ref_boundary(x.numpy(), y.numpy(), w.numpy(), None, "softmax", False, spacing, IGNORE, reduction)
    _check(out, ref, 1e-6)  # the torch transform is float32


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_boundary_takes_the_precomputed_map(reduction):
    """The data pipeline's map (signed_distance_map with spacing) gives what the graph computes."""
    x, y, w = _inputs("2d", "sigmoid", seed=5)
    distance = torch.from_numpy(np.stack([signed_distance_map(t > 0.5, [1.5, 0.5], channel_axis=0) for t in y.numpy()]))
    given = L.boundary_loss(x, y, w, distance, "sigmoid", reduction=reduction)
    computed = L.boundary_loss(x, y, w, None, "sigmoid", spacing=[1.5, 0.5], reduction=reduction)
    torch.testing.assert_close(given, computed, rtol=1e-6, atol=1e-6)
    ref = R.ref_boundary(x.numpy(), y.numpy(), w.numpy(), distance.numpy(), "sigmoid", reduction=reduction)
    _check(given, ref)


def test_boundary_gradient_is_the_distance():
    """With probabilities, ∂(Σ w·φ·p / Σ w)/∂p = w·φ / Σ w."""
    x, y, w = _inputs("2d", "sigmoid", seed=6)
    p = torch.sigmoid(x).detach().requires_grad_(True)
    distance = L.distance_transform(y > 0.5).double()
    L.boundary_loss(p, y, w, distance, "none").backward()
    want = w.unsqueeze(1) * distance / (w.sum() * p.shape[1])
    torch.testing.assert_close(p.grad, want)


@pytest.mark.parametrize("include_background", (True, False))
def test_boundary_equals_monai_with_monais_map(include_background):
    """MONAI's map is 0 on the inner boundary pixels (ours -1); given its map the losses agree."""
    monai_losses = pytest.importorskip("monai.losses")
    x, y, _ = _inputs("2d", seed=7)
    y = y.clamp_min(0)
    one_hot = F.one_hot(y, 3).movedim(-1, 1).double()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = monai_losses.BoundaryLoss(include_background=include_background, softmax=True, reduction="none")
        want = theirs(x, one_hot)
        their_map = theirs.compute_distance_map(one_hot[:, 0 if include_background else 1 :])
    got = L.boundary_loss(x, y, None, their_map.double(), include_background=include_background, reduction="none")
    torch.testing.assert_close(got.mean((2, 3)), want, rtol=1e-12, atol=1e-12)
    # With our own map the difference is exactly the mean of p over each class's pixels.
    ours = L.boundary_loss(x, y, include_background=include_background, reduction="none").mean((2, 3))
    first = 0 if include_background else 1
    inside = (torch.softmax(x, 1) * one_hot)[:, first:].mean((2, 3))
    torch.testing.assert_close(want - ours, inside, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dims", sorted(SPATIAL))
def test_hausdorff_dt_equals_reference(dims, reduction):
    x, y, w = _inputs(dims, seed=8)
    spacing = SPACING[dims]
    out = L.hausdorff_dt_loss(x, y, w, None, "softmax", 1.5, True, spacing, IGNORE, None, reduction)
    ref = R.ref_hausdorff_dt(x.numpy(), y.numpy(), w.numpy(), "softmax", 1.5, True, spacing, IGNORE, reduction)
    _check(out, ref, 2e-6)


def test_hausdorff_dt_takes_precomputed_distances():
    x, y, w = _inputs("3d", "sigmoid", seed=9)
    target_map = torch.from_numpy(np.stack([signed_distance_map(t > 0.5, channel_axis=0) for t in y.numpy()]))
    prediction_map = L.distance_transform(torch.sigmoid(x) > 0.5)
    computed = L.hausdorff_dt_loss(x, y, w, None, "sigmoid")
    given = L.hausdorff_dt_loss(x, y, w, target_map, "sigmoid", prediction_distance=prediction_map)
    torch.testing.assert_close(given, computed, rtol=1e-6, atol=1e-6)
    # The prediction's distances carry no gradient: only (p - t)² does.
    p = torch.sigmoid(x).detach().requires_grad_(True)
    L.hausdorff_dt_loss(p, y, None, target_map, "none", alpha=1.0, reduction="sum").backward()
    scale = L.distance_transform(p.detach() > 0.5, signed=False) + target_map.abs()
    torch.testing.assert_close(p.grad, 2.0 * (p.detach() - y) * scale)


@pytest.mark.parametrize("include_background", (True, False))
@pytest.mark.parametrize("dims", sorted(SPATIAL))
def test_hausdorff_dt_equals_monai(dims, include_background):
    monai_losses = pytest.importorskip("monai.losses")
    x, y, _ = _inputs(dims, seed=10)
    y = y.clamp_min(0)
    one_hot = F.one_hot(y, 3).movedim(-1, 1).double()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = monai_losses.HausdorffDTLoss(include_background=include_background, softmax=True, reduction="none")
        want = theirs(x, one_hot).reshape(2, -1)
    got = L.hausdorff_dt_loss(x, y, include_background=include_background, reduction="none")
    got = got.reshape(got.shape[0], got.shape[1], -1).mean(-1)
    # Both take float32 distances.
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)


# --- clDice and skeleton recall ---------------------------------------------------------------------


@pytest.mark.parametrize("dims", sorted(SPATIAL))
def test_soft_skeleton_equals_grey_filters(dims):
    g = torch.Generator().manual_seed(11)
    x = torch.rand((2, 2) + SPATIAL[dims], generator=g, dtype=torch.float64)
    for iterations in (0, 1, 3):
        _check(L.soft_skeleton(x, iterations), R.ref_soft_skeleton(x.numpy(), iterations), 1e-12)


@pytest.mark.parametrize("reduction", ("none", "mean", "sum"))
@pytest.mark.parametrize("per_image", (True, False))
@pytest.mark.parametrize("dims", sorted(SPATIAL))
def test_cldice_equals_reference(dims, per_image, reduction):
    x, y, w = _inputs(dims, seed=12)
    out = L.cldice_loss(x, y, w, "softmax", 2, 1.0, per_image, False, IGNORE, reduction)
    ref = R.ref_cldice(x.numpy(), y.numpy(), w.numpy(), "softmax", 2, 1.0, per_image, False, IGNORE, reduction)
    _check(out, ref)


@pytest.mark.parametrize("dims", sorted(SPATIAL))
def test_cldice_equals_monai_for_one_channel(dims):
    """MONAI sums over the channels as well; with one scored channel the two are the same loss."""
    monai_losses = pytest.importorskip("monai.losses")
    x, y, _ = _inputs(dims, "sigmoid", seed=13, classes=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = monai_losses.SoftclDiceLoss(iter_=3, smooth=1e-12, sigmoid=True, reduction="none")
        want = theirs(x, y)
    got = L.cldice_loss(x, y, activation="sigmoid", per_image=True, reduction="none").reshape(-1)
    torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9)


def test_cldice_prefers_connected_structures():
    """A gap across a vessel costs clDice more than the same number of pixels lost at its side."""
    target = torch.zeros(1, 1, 16, 16)
    target[0, 0, 6:10, :] = 1.0
    broken = target.clone()
    broken[0, 0, 6:10, 7:9] = 0.0  # 8 pixels: the vessel is cut
    thinner = target.clone()
    thinner[0, 0, 6, 4:12] = 0.0  # 8 pixels off one side: still connected
    cut = L.cldice_loss(broken, target, activation="none", smooth=1e-3)
    side = L.cldice_loss(thinner, target, activation="none", smooth=1e-3)
    assert cut > side
    assert L.soft_dice_loss(broken, target, activation="none") == pytest.approx(
        L.soft_dice_loss(thinner, target, activation="none").item(), rel=1e-6
    )


@pytest.mark.parametrize("reduction", ("none", "mean", "sum"))
@pytest.mark.parametrize("per_image", (True, False))
@pytest.mark.parametrize("activation", ("softmax", "sigmoid"))
def test_skeleton_recall_equals_reference(activation, per_image, reduction):
    x, y, w = _inputs("3d", activation, seed=14)
    ignore = None if activation == "sigmoid" else IGNORE
    out = L.skeleton_recall_loss(x, y, w, activation, 1.0, per_image, ignore, reduction)
    ref = R.ref_skeleton_recall(x.numpy(), y.numpy(), w.numpy(), activation, 1.0, per_image, IGNORE, reduction)
    _check(out, ref)


def test_skeleton_recall_on_a_tubed_skeleton_sees_a_break():
    """With the weightmaps target, a gap in a predicted vessel loses recall; a thinner vessel does not."""
    labels = np.zeros((24, 24), dtype=np.int64)
    labels[8:16, 2:22] = 1
    tube = torch.from_numpy(tubed_skeleton(labels, radius=1.0))[None]
    truth = torch.from_numpy(labels).double()[None]
    broken = truth.clone()
    broken[0, :, 10:13] = 0.0
    thinner = truth.clone()
    thinner[0, 8:10] = 0.0
    thinner[0, 14:16] = 0.0

    def loss(p):
        return L.skeleton_recall_loss(torch.stack([1.0 - p, p], 1), tube, activation="none", smooth=0.0)

    assert loss(truth) == 0.0
    assert loss(thinner) == 0.0
    assert loss(broken) > 0.1


def test_bad_distance_and_iterations_are_refused_by_name():
    x, y, w = _inputs("2d", seed=15)
    distance = torch.zeros(2, 2, *SPATIAL["2d"], dtype=torch.float64)
    with pytest.raises(ValueError, match=r"distance: expected shape \(N, C', \*\)"):
        L.boundary_loss(x, y, w, distance, ignore_index=IGNORE)  # 3 scored classes, 2 channels
    with pytest.raises(ValueError, match="distance: expected a floating-point"):
        L.hausdorff_dt_loss(x, y, w, torch.zeros(2, 3, *SPATIAL["2d"], dtype=torch.long), ignore_index=IGNORE)
    with pytest.raises(ValueError, match=r"prediction_distance: expected shape \(N, C', \*\)"):
        L.hausdorff_dt_loss(x, y, w, None, ignore_index=IGNORE, prediction_distance=torch.zeros(2, 1, *SPATIAL["2d"]))
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="iterations: expected an integer >= 0"):
            L.ClDiceLoss(iterations=bad)
    with pytest.raises(ValueError, match="iterations: expected an integer >= 0"):
        L.cldice_loss(x, y, w, iterations=-1)
    with pytest.raises(ValueError, match="include_background: False leaves no class"):
        L.boundary_loss(x[:, :1], (y > 0).double().unsqueeze(1), None, None, "sigmoid", False)


def test_hausdorff_dt_scores_a_prediction_opposite_to_a_boundaryless_target():
    """Issue 19: a target that is one class everywhere has no boundary; the completely wrong
    prediction has none either, and scored 0. Both distances are now the image diagonal."""
    target = torch.zeros(2, 8, 10, dtype=torch.long)
    target[1, :4] = 1  # image 1 has a boundary: unchanged by the rule
    wrong = torch.zeros(2, 2, 8, 10, dtype=torch.float64)
    wrong[:, 1] = 6.0  # class 1 everywhere in both images
    spacing = [2.0, 0.5]
    for prediction, alpha in ((wrong, 2.0), (-wrong, 1.5)):
        got = L.hausdorff_dt_loss(prediction, target, spacing=spacing, alpha=alpha, reduction="per_image")
        want = R.ref_hausdorff_dt(prediction.numpy(), target.numpy(), spacing=spacing, alpha=alpha, reduction="per_image")
        # The torch transform's distances are float32 (documented), so 1e-6 and not 1e-10.
        torch.testing.assert_close(got, torch.as_tensor(want), rtol=1e-6, atol=1e-10)
    # Image 0 by hand: every pixel wrong in both channels, by (p - t)² = σ(6)² (softmax of 0 and 6).
    diagonal = math.hypot(7 * 2.0, 9 * 0.5)
    miss = torch.sigmoid(torch.tensor(6.0, dtype=torch.float64)) ** 2
    got = L.hausdorff_dt_loss(wrong, target, spacing=spacing, reduction="per_image")
    torch.testing.assert_close(got[0], miss * 2 * diagonal**2, rtol=1e-6, atol=0.0)
    # The right prediction of the same target costs almost nothing, as before.
    right = L.hausdorff_dt_loss(-wrong, target, spacing=spacing, reduction="per_image")
    assert float(right[0]) < 1e-3 * float(got[0])


def test_hausdorff_dt_names_alpha_where_the_distances_overflow():
    """Issue 19: alpha=25 on a 40x40 image gave inf in float32."""
    target = torch.zeros(1, 40, 40, dtype=torch.long)
    target[0, 0, 0] = 1  # distances up to the diagonal, 55 px: 55^25 > float32's largest
    x = torch.randn(1, 2, 40, 40, generator=torch.Generator().manual_seed(1))
    for loss in (L.HausdorffDTLoss(alpha=25.0), torch.jit.script(L.HausdorffDTLoss(alpha=25.0))):
        with pytest.raises((ValueError, torch.jit.Error), match="alpha: d\\^alpha overflows"):
            loss(x, target)
    # float64 holds it, and equals the reference.
    got = L.hausdorff_dt_loss(x.double(), target, alpha=25.0)
    want = R.ref_hausdorff_dt(x.double().numpy(), target.numpy(), alpha=25.0)
    assert math.isfinite(float(got))
    # float32 distances to the 25th power: 25 times their relative rounding.
    torch.testing.assert_close(got, torch.as_tensor(want, dtype=torch.float64), rtol=1e-5, atol=0.0)


def test_nan_distance_poisons_only_its_image():
    x, y, w = _inputs("2d", seed=16)
    distance = L.distance_transform(F.one_hot(y.clamp_min(0), 3).movedim(-1, 1).bool()).double()
    distance[1, 0, 0, 0] = math.nan
    for loss in (L.boundary_loss(x, y, w, distance, ignore_index=IGNORE, reduction="per_image"),
                 L.hausdorff_dt_loss(x, y, w, distance, ignore_index=IGNORE, reduction="per_image")):
        assert torch.isfinite(loss[0]) and torch.isnan(loss[1])
