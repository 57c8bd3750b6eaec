"""Weighted losses of ``unetweights.losses`` against the brute-force float64 references.

Inputs are non-uniform float64 tensors: multi-class logits, index targets with ignored pixels,
weight maps with some exact zeros, in 2D (N, C, H, W) and 3D (N, C, D, H, W).  Every comparison
is at rtol=1e-10.
"""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import unetweights.losses as L

from . import reference as R

RTOL = 1e-10
ATOL = 1e-12
SHAPES = {"2d": (2, 3, 5, 7), "3d": (2, 3, 3, 4, 5)}
REDUCTIONS = ("none", "mean", "sum")
CLASS_WEIGHT = np.array([0.4, 2.0, 1.3])


# ------------------------------------------------------------------------------------------------
# Input builders
# ------------------------------------------------------------------------------------------------


def _seed(name: str) -> int:
    # stable across runs (str hash is salted per process)
    return sum((i + 1) * ord(ch) for i, ch in enumerate(name))


def logits(shape, seed, scale=2.0):
    return np.random.default_rng(seed).normal(0.0, scale, shape)


def index_target(shape, seed, ignore_index=None, frac=0.15):
    rng = np.random.default_rng(seed + 1)
    n, c, *sp = shape
    y = rng.integers(0, c, (n, *sp))
    if ignore_index is not None:
        y[rng.random(y.shape) < frac] = ignore_index
    return y


def prob_target(shape, seed):
    rng = np.random.default_rng(seed + 2)
    return R.softmax(rng.normal(0.0, 1.5, shape))


def binary_target(shape, seed, p=0.4):
    rng = np.random.default_rng(seed + 3)
    return (rng.random(shape) < p).astype(np.float64)


def probabilities(x):
    """The sigmoid of ``x``, with exact 0 and 1 and a p whose log the clamp at -100 cuts."""
    p = 1.0 / (1.0 + np.exp(-x))
    p.reshape(-1)[:4] = [0.0, 1.0, 1e-50, 1.0 - 2.0**-53]
    return p


def weight_map(shape, seed, zero_frac=0.2):
    """Non-uniform non-negative weights with some exact zeros."""
    rng = np.random.default_rng(seed + 4)
    w = rng.uniform(0.1, 3.0, shape)
    w[rng.random(shape) < zero_frac] = 0.0
    return w


def pixel_weight(shape, seed, zero_frac=0.2):
    n, c, *sp = shape
    return weight_map((n, *sp), seed, zero_frac)


def t(a):
    a = np.asarray(a)
    if a.dtype.kind in "iu":
        return torch.tensor(a, dtype=torch.int64)
    return torch.tensor(a, dtype=torch.float64)


def check(out, ref, shape=None):
    got = out.detach().numpy()
    ref = np.asarray(ref, dtype=np.float64)
    if shape is not None:
        assert tuple(got.shape) == tuple(shape)
    else:
        assert got.ndim == 0, got.shape
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, ref, rtol=RTOL, atol=ATOL)


def none_shape(reduction, shape):
    return shape if reduction == "none" else None


# ------------------------------------------------------------------------------------------------
# The reference itself agrees with torch where the docstrings say the library does (weight=None)
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("cw", [False, True])
def test_reference_cross_entropy_matches_torch(reduction, smoothing, cw):
    shape = SHAPES["2d"]
    x = logits(shape, 1)
    y = index_target(shape, 1, ignore_index=-100)
    cwt = t(CLASS_WEIGHT) if cw else None
    expected = F.cross_entropy(t(x), t(y), weight=cwt, label_smoothing=smoothing, reduction=reduction)
    ref = R.ref_cross_entropy(x, y, None, CLASS_WEIGHT if cw else None, -100, smoothing, reduction)
    np.testing.assert_allclose(expected.numpy(), ref, rtol=RTOL, atol=ATOL)
    p = prob_target(shape, 1)
    expected = F.cross_entropy(t(x), t(p), weight=cwt, label_smoothing=smoothing, reduction=reduction)
    ref = R.ref_cross_entropy(x, p, None, CLASS_WEIGHT if cw else None, -100, smoothing, reduction)
    np.testing.assert_allclose(expected.numpy(), ref, rtol=RTOL, atol=ATOL)


@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides")
def test_reference_bce_and_regression_match_torch():
    shape = SHAPES["2d"]
    x = logits(shape, 2)
    tg = binary_target(shape, 2)
    pw = np.array([0.5, 2.0, 3.0]).reshape(3, 1, 1)
    for red in REDUCTIONS:
        e = F.binary_cross_entropy_with_logits(t(x), t(tg), pos_weight=t(pw), reduction=red)
        np.testing.assert_allclose(e.numpy(), R.ref_bce_with_logits(x, tg, None, pw, None, red), rtol=RTOL)
        p = probabilities(x)
        e = F.binary_cross_entropy(t(p), t(tg), reduction=red)
        np.testing.assert_allclose(e.numpy(), R.ref_binary_cross_entropy(p, tg, None, None, None, red), rtol=RTOL)
        y = logits(shape, 3)
        np.testing.assert_allclose(F.mse_loss(t(x), t(y), reduction=red).numpy(), R.ref_mse(x, y, None, red),
                                   rtol=RTOL)
        np.testing.assert_allclose(F.huber_loss(t(x), t(y), reduction=red, delta=0.7).numpy(),
                                   R.ref_huber(x, y, None, 0.7, red), rtol=RTOL)
        np.testing.assert_allclose(F.smooth_l1_loss(t(x), t(y), reduction=red, beta=0.7).numpy(),
                                   R.ref_smooth_l1(x, y, None, 0.7, red), rtol=RTOL)
    lp = R.log_softmax(x)
    q = prob_target(shape, 5)
    q[0, :, 0, 0] = [0.0, 0.25, 0.75]
    for red in ("none", "mean", "sum", "batchmean"):
        np.testing.assert_allclose(F.kl_div(t(lp), t(q), reduction=red).numpy(), R.ref_kl_div(lp, q, None, red),
                                   rtol=RTOL, atol=ATOL)


def test_reference_lovasz_unweighted_matches_original_algorithm():
    """With unit weights the from-scratch extension equals Berman et al.'s sorted-gradient formula."""
    rng = np.random.default_rng(7)
    for _ in range(5):
        errors = rng.normal(0.5, 1.0, 30)
        gt = (rng.random(30) < 0.4).astype(float)
        order = np.argsort(-errors)
        gts = gt[order]
        inter = gts.sum() - np.cumsum(gts)
        union = gts.sum() + np.cumsum(1 - gts)
        jac = 1.0 - inter / union
        grad = np.concatenate([jac[:1], jac[1:] - jac[:-1]])
        original = float(np.dot(np.maximum(errors[order], 0), grad))
        mine = R.lovasz_extension(list(errors), list(gt), [1.0] * 30, hinge=True)
        assert math.isclose(original, mine, rel_tol=1e-12)


# ------------------------------------------------------------------------------------------------
# Cross-entropy and NLL
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dims", SHAPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("cw", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.15])
@pytest.mark.parametrize("ignore_index", [-100, 1])
def test_cross_entropy_index(dims, reduction, cw, smoothing, ignore_index):
    shape = SHAPES[dims]
    seed = _seed(dims) + 11
    x = logits(shape, seed)
    y = index_target(shape, seed, ignore_index=-100 if ignore_index == -100 else None)
    w = pixel_weight(shape, seed)
    cwn = CLASS_WEIGHT if cw else None
    out = L.weighted_cross_entropy(t(x), t(y), t(w), t(cwn) if cw else None, ignore_index, smoothing, reduction)
    ref = R.ref_cross_entropy(x, y, w, cwn, ignore_index, smoothing, reduction)
    n, c, *sp = shape
    check(out, ref, none_shape(reduction, (n, *sp)))


@pytest.mark.parametrize("dims", SHAPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("cw", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.15])
def test_cross_entropy_prob_target(dims, reduction, cw, smoothing):
    shape = SHAPES[dims]
    seed = _seed(dims) + 12
    x = logits(shape, seed)
    p = prob_target(shape, seed)
    w = pixel_weight(shape, seed)
    cwn = CLASS_WEIGHT if cw else None
    out = L.weighted_cross_entropy(t(x), t(p), t(w), t(cwn) if cw else None, -100, smoothing, reduction)
    ref = R.ref_cross_entropy(x, p, w, cwn, -100, smoothing, reduction)
    n, c, *sp = shape
    check(out, ref, none_shape(reduction, (n, *sp)))


@pytest.mark.parametrize("dims", SHAPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("target_kind", ["index", "prob"])
@pytest.mark.parametrize("smoothing", [0.0, 0.3])
def test_nll(dims, reduction, target_kind, smoothing):
    shape = SHAPES[dims]
    seed = _seed(dims) + 13
    lp = R.log_softmax(logits(shape, seed))
    y = index_target(shape, seed, ignore_index=-7) if target_kind == "index" else prob_target(shape, seed)
    w = pixel_weight(shape, seed)
    out = L.weighted_nll_loss(t(lp), t(y), t(w), t(CLASS_WEIGHT), -7, smoothing, reduction)
    ref = R.ref_nll(lp, y, w, CLASS_WEIGHT, -7, smoothing, reduction)
    n, c, *sp = shape
    check(out, ref, none_shape(reduction, (n, *sp)))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_same_rank_broadcast_weight(reduction):
    shape = SHAPES["3d"]
    x = logits(shape, 14)
    y = index_target(shape, 14, ignore_index=-100)
    w = np.array([0.7, 2.5]).reshape(2, 1, 1, 1)  # (N, 1, 1, 1): a per-image weight of (N, *) rank
    out = L.weighted_cross_entropy(t(x), t(y), t(w), t(CLASS_WEIGHT), reduction=reduction)
    ref = R.ref_cross_entropy(x, y, w, CLASS_WEIGHT, -100, 0.0, reduction)
    check(out, ref, none_shape(reduction, (2, 3, 4, 5)))


# ------------------------------------------------------------------------------------------------
# BCE with logits
# ------------------------------------------------------------------------------------------------


def _bce_weight(kind, shape, seed):
    n, c, *sp = shape
    if kind == "pixel":
        return pixel_weight(shape, seed)
    if kind == "full":
        return weight_map(shape, seed)
    if kind == "image":
        return np.array([0.6, 1.9]).reshape([n] + [1] * (len(shape) - 1))
    raise AssertionError(kind)


# Each BCE form: (the loss, its reference, its input made from logits).
BCE_FORMS = {
    "logits": (L.weighted_bce_with_logits, R.ref_bce_with_logits, lambda x: x),
    "probabilities": (L.weighted_binary_cross_entropy, R.ref_binary_cross_entropy, probabilities),
}


@pytest.mark.parametrize("form", BCE_FORMS)
@pytest.mark.parametrize("dims", SHAPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weight_kind", ["pixel", "full", "image"])
@pytest.mark.parametrize("pos_weight", [False, True])
@pytest.mark.parametrize("balance", [None, (0.7, 0.3)])
@pytest.mark.parametrize("soft", [False, True])
def test_bce(form, dims, reduction, weight_kind, pos_weight, balance, soft):
    loss, reference, make_input = BCE_FORMS[form]
    shape = SHAPES[dims]
    seed = _seed(dims) + 21
    x = make_input(logits(shape, seed))
    tg = prob_target(shape, seed) if soft else binary_target(shape, seed)
    w = _bce_weight(weight_kind, shape, seed)
    pw = np.array([0.5, 2.0, 3.0]).reshape([3] + [1] * (len(shape) - 2)) if pos_weight else None
    out = loss(t(x), t(tg), t(w), t(pw) if pos_weight else None, balance, reduction)
    ref = reference(x, tg, w, pw, balance, reduction)
    check(out, ref, none_shape(reduction, shape))


@pytest.mark.parametrize("form", BCE_FORMS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", ["all_positive", "positives_zero_weight"])
def test_bce_balance_empty_side(form, reduction, case):
    loss, reference, make_input = BCE_FORMS[form]
    shape = SHAPES["2d"]
    x = make_input(logits(shape, 22))
    w = pixel_weight(shape, 22)
    if case == "all_positive":
        tg = np.ones(shape)
    else:
        tg = binary_target(shape, 22)
        w = np.broadcast_to(w[:, None], shape).copy()
        w[tg == 1] = 0.0
    out = loss(t(x), t(tg), t(w), None, (0.6, 0.4), reduction)
    ref = reference(x, tg, w, None, (0.6, 0.4), reduction)
    check(out, ref, none_shape(reduction, shape))


# ------------------------------------------------------------------------------------------------
# Focal
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dims", SHAPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("alpha", [None, 0.25])
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
@pytest.mark.parametrize("soft", [False, True])
def test_focal_sigmoid(dims, reduction, alpha, gamma, soft):
    shape = SHAPES[dims]
    seed = _seed(dims) + 31
    x = logits(shape, seed)
    tg = prob_target(shape, seed) if soft else binary_target(shape, seed)
    w = pixel_weight(shape, seed)
    out = L.focal_loss(t(x), t(tg), t(w), "sigmoid", alpha, gamma, reduction=reduction)
    ref = R.ref_sigmoid_focal(x, tg, w, alpha, gamma, reduction)
    check(out, ref, none_shape(reduction, shape))


@pytest.mark.parametrize("dims", SHAPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("alpha", [None, 0.4])
@pytest.mark.parametrize("gamma", [0.0, 0.7, 2.0])
@pytest.mark.parametrize("cw", [False, True])
@pytest.mark.parametrize("target_kind", ["index", "prob"])
def test_focal_softmax(dims, reduction, alpha, gamma, cw, target_kind):
    shape = SHAPES[dims]
    seed = _seed(dims) + 32
    x = logits(shape, seed)
    y = index_target(shape, seed, ignore_index=-100) if target_kind == "index" else prob_target(shape, seed)
    w = pixel_weight(shape, seed)
    cwn = CLASS_WEIGHT if cw else None
    out = L.focal_loss(t(x), t(y), t(w), "softmax", alpha, gamma, t(cwn) if cw else None, -100, reduction)
    ref = R.ref_softmax_focal(x, y, w, alpha, gamma, cwn, -100, reduction)
    n, c, *sp = shape
    check(out, ref, none_shape(reduction, (n, *sp)))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_focal_gamma0_equals_ce_and_bce(reduction):
    shape = SHAPES["2d"]
    x = logits(shape, 33)
    y = index_target(shape, 33, ignore_index=-100)
    w = pixel_weight(shape, 33)
    a = L.focal_loss(t(x), t(y), t(w), "softmax", None, 0.0, t(CLASS_WEIGHT), reduction=reduction)
    b = L.weighted_cross_entropy(t(x), t(y), t(w), t(CLASS_WEIGHT), reduction=reduction)
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=RTOL, atol=ATOL)
    tg = binary_target(shape, 33)
    a = L.focal_loss(t(x), t(tg), t(w), "sigmoid", None, 0.0, reduction=reduction)
    b = L.weighted_bce_with_logits(t(x), t(tg), t(w), reduction=reduction)
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=RTOL, atol=ATOL)


# ------------------------------------------------------------------------------------------------
# Dice and Tversky
# ------------------------------------------------------------------------------------------------


def _overlap_inputs(activation, shape, seed, ignore_index=-100):
    """(input, target) for an activation: logits + index target (softmax), logits + binary target
    (sigmoid), probabilities + index target (none)."""
    x = logits(shape, seed)
    if activation == "softmax":
        return x, index_target(shape, seed, ignore_index=ignore_index)
    if activation == "sigmoid":
        return x, binary_target(shape, seed)
    if activation == "none":
        return R.softmax(x), index_target(shape, seed, ignore_index=ignore_index)
    raise AssertionError(activation)


DICE_VARIANTS = {
    "plain": dict(),
    "cw": dict(class_weight=CLASS_WEIGHT),
    "squared": dict(squared=True),
    "smooth0_cw_squared": dict(smooth=0.0, class_weight=CLASS_WEIGHT, squared=True),
    "smooth0": dict(smooth=0.0),
}


@pytest.mark.parametrize("dims", SHAPES)
@pytest.mark.parametrize("activation", ["softmax", "sigmoid", "none"])
@pytest.mark.parametrize("per_image", [False, True])
@pytest.mark.parametrize("include_background", [True, False])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("variant", DICE_VARIANTS)
def test_soft_dice(dims, activation, per_image, include_background, reduction, variant):
    shape = SHAPES[dims]
    seed = _seed(dims) + 41
    x, y = _overlap_inputs(activation, shape, seed)
    w = pixel_weight(shape, seed)
    opts = dict(smooth=1.0, squared=False, class_weight=None)
    opts.update(DICE_VARIANTS[variant])
    cw = opts["class_weight"]
    out = L.soft_dice_loss(
        t(x), t(y), t(w), activation, opts["smooth"], per_image, include_background, opts["squared"],
        None if cw is None else t(cw), -100, reduction,
    )
    ref = R.ref_soft_dice(x, y, w, activation, opts["smooth"], per_image, include_background, opts["squared"], cw,
                          -100, reduction)
    n, c = shape[:2]
    check(out, ref, none_shape(reduction, (n if per_image else 1, c if include_background else c - 1)))


JACCARD_VARIANTS = {"plain": dict(), "cw": dict(class_weight=CLASS_WEIGHT), "smooth0": dict(smooth=0.0)}


@pytest.mark.parametrize("dims", SHAPES)
@pytest.mark.parametrize("activation", ["softmax", "sigmoid", "none"])
@pytest.mark.parametrize("per_image", [False, True])
@pytest.mark.parametrize("include_background", [True, False])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("variant", JACCARD_VARIANTS)
def test_soft_jaccard(dims, activation, per_image, include_background, reduction, variant):
    shape = SHAPES[dims]
    seed = _seed(dims) + 43
    x, y = _overlap_inputs(activation, shape, seed)
    w = pixel_weight(shape, seed)
    opts = dict(smooth=1.0, class_weight=None)
    opts.update(JACCARD_VARIANTS[variant])
    cw = opts["class_weight"]
    out = L.soft_jaccard_loss(
        t(x), t(y), t(w), activation, opts["smooth"], per_image, include_background,
        None if cw is None else t(cw), -100, reduction,
    )
    ref = R.ref_soft_jaccard(x, y, w, activation, opts["smooth"], per_image, include_background, cw, -100, reduction)
    n, c = shape[:2]
    check(out, ref, none_shape(reduction, (n if per_image else 1, c if include_background else c - 1)))


@pytest.mark.parametrize("dims", SHAPES)
@pytest.mark.parametrize("activation", ["softmax", "sigmoid", "none"])
@pytest.mark.parametrize("per_image", [False, True])
@pytest.mark.parametrize("include_background", [True, False])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smooth", [1e-5, 1.0])
def test_generalized_dice(dims, activation, per_image, include_background, reduction, smooth):
    shape = SHAPES[dims]
    seed = _seed(dims) + 47
    x, y = _overlap_inputs(activation, shape, seed)
    w = pixel_weight(shape, seed)
    out = L.generalized_dice_loss(t(x), t(y), t(w), activation, smooth, per_image, include_background, -100, reduction)
    ref = R.ref_generalized_dice(x, y, w, activation, smooth, per_image, include_background, -100, reduction)
    n = shape[0]
    check(out, ref, none_shape(reduction, (n if per_image else 1, 1)))


def test_generalized_dice_absent_class_takes_the_heaviest_weight_and_empty_sets_score_zero():
    x = torch.randn(2, 3, 6, 7, dtype=torch.float64)
    y = torch.zeros(2, 6, 7, dtype=torch.long)
    y[0, :2] = 1  # image 0: classes 0 and 1, class 2 absent; image 1: class 0 only
    w = torch.rand(2, 6, 7, dtype=torch.float64) + 0.1
    out = L.generalized_dice_loss(x, y, w, per_image=True, reduction="none")
    ref = R.ref_generalized_dice(x.numpy(), y.numpy(), w.numpy(), per_image=True, reduction="none")
    torch.testing.assert_close(out, torch.as_tensor(ref), rtol=1e-10, atol=1e-12)
    nothing = L.generalized_dice_loss(x, y, torch.zeros_like(w), per_image=True, smooth=0.0, reduction="none")
    assert torch.equal(nothing, torch.zeros(2, 1, dtype=torch.float64))


@pytest.mark.parametrize("batch", [True, False])
def test_generalized_dice_equals_monai(batch):
    monai_losses = pytest.importorskip("monai.losses")
    g = torch.Generator().manual_seed(11)
    x = torch.randn(3, 4, 9, 11, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (3, 9, 11), generator=g)  # class 3 absent everywhere
    y[1] = 0  # and image 1 holds only class 0
    # Our counts are fractions of each set's pixel count M, so our smooth s is MONAI's s / M.
    pixels = y[0].numel() * (len(y) if batch else 1)
    smooth = 1e-5 / pixels
    theirs = monai_losses.GeneralizedDiceLoss(
        softmax=True, to_onehot_y=True, batch=batch, smooth_nr=smooth, smooth_dr=smooth
    )(x, y.unsqueeze(1))
    ours = L.generalized_dice_loss(x, y, per_image=not batch)
    # MONAI computes its class weights in float32 (ground_o.float()); ours follow the input's dtype.
    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("smooth", [0.0, 1.0])
@pytest.mark.parametrize("batch", [True, False])
def test_soft_jaccard_equals_monai_jaccard_dice_loss(smooth, batch):
    """With weight=None, MONAI's DiceLoss(jaccard=True) is the same loss at smooth_nr = smooth_dr = 2·s."""
    monai_losses = pytest.importorskip("monai.losses")
    g = torch.Generator().manual_seed(7)
    x = torch.randn(3, 4, 9, 11, generator=g, dtype=torch.float64)
    y = torch.randint(0, 4, (3, 9, 11), generator=g)
    theirs = monai_losses.DiceLoss(softmax=True, to_onehot_y=True, jaccard=True, batch=batch,
                                   smooth_nr=2 * smooth, smooth_dr=2 * smooth)(x, y.unsqueeze(1))
    ours = L.soft_jaccard_loss(x, y, smooth=smooth, per_image=not batch)
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dims", SHAPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("squared", [False, True])
def test_soft_dice_empty_gt_and_zero_mass_image(dims, reduction, squared):
    """Class 2 absent from image 0; image 1 has zero weight everywhere (excluded from the mean)."""
    shape = SHAPES[dims]
    seed = _seed(dims) + 42
    x = logits(shape, seed)
    y = index_target(shape, seed, ignore_index=-100)
    y[0][y[0] == 2] = 0
    w = pixel_weight(shape, seed)
    w[1] = 0.0
    kw = dict(activation="softmax", smooth=0.5, per_image=True, squared=squared, class_weight=CLASS_WEIGHT)
    out = L.soft_dice_loss(t(x), t(y), t(w), kw["activation"], kw["smooth"], True, True, squared, t(CLASS_WEIGHT),
                           -100, reduction)
    ref = R.ref_soft_dice(x, y, w, reduction=reduction, **kw)
    check(out, ref, none_shape(reduction, (2, 3)))
    if reduction == "none":
        # Empty gt: Dice = s / (sum w p + s) (the non-squared and squared forms agree when t = 0),
        # with s = 0.5 pixels of the image's mean weight over its counted, non-zero-weight pixels.
        p = R.softmax(x)
        valid = y[0] != -100
        sp = float(np.sum(w[0][valid] * (p[0, 2][valid] ** (2 if squared else 1))))
        s = 0.5 * np.sum(w[0][valid]) / np.count_nonzero(w[0][valid])
        expected = CLASS_WEIGHT[2] * (1.0 - s / (sp + s))
        assert math.isclose(float(out[0, 2]), expected, rel_tol=1e-10)
        assert np.all(out[1].numpy() == 0.0)
    if reduction == "mean":
        full = R.ref_soft_dice(x, y, w, reduction="none", **kw)
        assert math.isclose(float(out), float(full[0].sum() / CLASS_WEIGHT.sum()), rel_tol=1e-10)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("per_image", [False, True])
def test_soft_dice_zero_over_zero_is_one(reduction, per_image):
    """smooth=0, class absent and nothing predicted for it: Dice = 1 (loss 0), never NaN."""
    shape = SHAPES["2d"]
    p = R.softmax(logits(shape, 43))
    p[:, 2] = 0.0  # probabilities (activation none): nothing predicted for class 2
    y = index_target(shape, 43, ignore_index=-100)
    y[y == 2] = 1
    w = pixel_weight(shape, 43)
    x = t(p).requires_grad_(True)
    out = L.soft_dice_loss(x, t(y), t(w), "none", 0.0, per_image, True, False, None, -100, reduction)
    ref = R.ref_soft_dice(p, y, w, "none", 0.0, per_image, True, False, None, -100, reduction)
    check(out, ref, none_shape(reduction, (2 if per_image else 1, 3)))
    if reduction == "none":
        assert np.all(out[:, 2].detach().numpy() == 0.0)
    out.sum().backward()
    assert torch.all(torch.isfinite(x.grad))


TVERSKY_PARAMS = [(0.3, 0.7, 1.0), (0.7, 0.3, 0.75), (0.5, 0.5, 2.0), (0.0, 1.0, 1.3)]


@pytest.mark.parametrize("dims", SHAPES)
@pytest.mark.parametrize("activation", ["softmax", "sigmoid", "none"])
@pytest.mark.parametrize("per_image", [False, True])
@pytest.mark.parametrize("include_background", [True, False])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("abg", TVERSKY_PARAMS, ids=str)
def test_tversky(dims, activation, per_image, include_background, reduction, abg):
    shape = SHAPES[dims]
    seed = _seed(dims) + 51
    x, y = _overlap_inputs(activation, shape, seed)
    w = pixel_weight(shape, seed)
    a, b, g = abg
    cw = CLASS_WEIGHT if g != 1.0 else None
    smooth = 0.0 if a == 0.0 else 1.0
    out = L.tversky_loss(t(x), t(y), t(w), activation, a, b, g, smooth, per_image, include_background,
                         None if cw is None else t(cw), -100, reduction)
    ref = R.ref_tversky(x, y, w, activation, a, b, g, smooth, per_image, include_background, cw, -100, reduction)
    n, c = shape[:2]
    check(out, ref, none_shape(reduction, (n if per_image else 1, c if include_background else c - 1)))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_tversky_empty_gt_and_zero_mass(reduction):
    shape = SHAPES["3d"]
    x = logits(shape, 52)
    y = index_target(shape, 52, ignore_index=-100)
    y[1][y[1] == 1] = 2
    w = pixel_weight(shape, 52)
    w[0] = 0.0
    out = L.tversky_loss(t(x), t(y), t(w), "softmax", 0.2, 0.8, 1.5, 0.3, True, True, t(CLASS_WEIGHT), -100,
                         reduction)
    ref = R.ref_tversky(x, y, w, "softmax", 0.2, 0.8, 1.5, 0.3, True, True, CLASS_WEIGHT, -100, reduction)
    check(out, ref, none_shape(reduction, (2, 3)))


def test_tversky_gamma_below_one_perfect_score_is_zero():
    """(1 - TI)^gamma with TI = 1 (empty gt, nothing predicted, smooth=0) is exactly 0."""
    shape = SHAPES["2d"]
    p = R.softmax(logits(shape, 53))
    p[:, 2] = 0.0
    y = index_target(shape, 53)
    y[y == 2] = 0
    w = pixel_weight(shape, 53)
    out = L.tversky_loss(t(p), t(y), t(w), "none", 0.5, 0.5, 0.75, 0.0, True, True, None, -100, "none")
    ref = R.ref_tversky(p, y, w, "none", 0.5, 0.5, 0.75, 0.0, True, True, None, -100, "none")
    check(out, ref, (2, 3))
    assert abs(float(out[0, 2])) < 1e-20  # the library clamps 1 - TI at 1e-30 before the power


# ------------------------------------------------------------------------------------------------
# Lovasz
# ------------------------------------------------------------------------------------------------

HINGE_SHAPES = {"2d_chan": (2, 1, 5, 7), "2d_flat": (2, 5, 7), "3d_chan": (2, 1, 3, 4, 5)}


def _hinge_inputs(shape, seed, ignore_index):
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.5, shape)
    y = (rng.random(shape) < 0.4).astype(np.int64)
    if ignore_index is not None:
        y[rng.random(shape) < 0.15] = ignore_index
    n = shape[0]
    spatial = (n,) + tuple(shape[2:]) if len(shape) > 3 and shape[1] == 1 else shape
    w = weight_map(spatial, seed)
    return x, y, w


@pytest.mark.parametrize("dims", HINGE_SHAPES)
@pytest.mark.parametrize("weight_mode", ["jaccard", "margin"])
@pytest.mark.parametrize("per_image", [True, False])
@pytest.mark.parametrize("ignore_index", [None, 255])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_lovasz_hinge(dims, weight_mode, per_image, ignore_index, reduction):
    shape = HINGE_SHAPES[dims]
    x, y, w = _hinge_inputs(shape, _seed(dims) + 61, ignore_index)
    ii = -100 if ignore_index is None else ignore_index
    out = L.lovasz_hinge(t(x), t(y), t(w), per_image, ii, weight_mode, reduction)
    ref = R.ref_lovasz_hinge(x, y, w, per_image, ii, weight_mode, reduction)
    check(out, ref, none_shape(reduction, (2 if per_image else 1,)))


@pytest.mark.parametrize("weight_mode", ["jaccard", "margin"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_lovasz_hinge_special_sets(weight_mode, reduction):
    """Image 0 has no positive pixel, image 1 zero weight everywhere, image 2 fully ignored."""
    shape = (4, 1, 4, 6)
    x, y, w = _hinge_inputs(shape, 62, 255)
    y[0][y[0] == 1] = 0
    w[1] = 0.0
    y[2] = 255
    out = L.lovasz_hinge(t(x), t(y), t(w), True, 255, weight_mode, reduction)
    ref = R.ref_lovasz_hinge(x, y, w, True, 255, weight_mode, reduction)
    check(out, ref, none_shape(reduction, (4,)))


@pytest.mark.parametrize("dims", SHAPES)
@pytest.mark.parametrize("classes", ["present", "all"])
@pytest.mark.parametrize("per_image", [False, True])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_lovasz_softmax(dims, classes, per_image, reduction):
    shape = SHAPES[dims]
    seed = _seed(dims) + 71
    x = logits(shape, seed)
    y = index_target(shape, seed, ignore_index=-1)
    y[1][y[1] == 2] = 0  # class 2 absent from image 1
    w = pixel_weight(shape, seed)
    out = L.lovasz_softmax(t(x), t(y), t(w), classes, per_image, -1, reduction)
    ref = R.ref_lovasz_softmax(x, y, w, classes, per_image, -1, reduction)
    check(out, ref, none_shape(reduction, (2 if per_image else 1,)))


@pytest.mark.parametrize("classes", ["present", "all"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_lovasz_softmax_special_sets(classes, reduction):
    """Image 0: class 1 present only on zero-weight pixels; image 1 zero weight; image 2 ignored."""
    shape = (3, 3, 4, 5)
    x = logits(shape, 72)
    y = index_target(shape, 72, ignore_index=-100)
    w = pixel_weight(shape, 72)
    w[0][y[0] == 1] = 0.0
    w[1] = 0.0
    y[2] = -100
    out = L.lovasz_softmax(t(x), t(y), t(w), classes, True, -100, reduction)
    ref = R.ref_lovasz_softmax(x, y, w, classes, True, -100, reduction)
    check(out, ref, none_shape(reduction, (3,)))


# ------------------------------------------------------------------------------------------------
# Regression
# ------------------------------------------------------------------------------------------------


def _reg_weight(kind, shape, seed):
    n, c, *sp = shape
    if kind == "pixel":
        return pixel_weight(shape, seed)
    if kind == "full":
        return weight_map(shape, seed)
    if kind == "image":
        return np.array([0.6, 1.9]).reshape([n] + [1] * (len(shape) - 1))
    if kind == "channel":
        return np.array([0.0, 1.5, 0.3]).reshape([1, c] + [1] * (len(shape) - 2))
    raise AssertionError(kind)


REGRESSION = {
    "mse": (L.weighted_mse_loss, R.ref_mse, {}),
    "l1": (L.weighted_l1_loss, R.ref_l1, {}),
    "huber_0.5": (L.weighted_huber_loss, R.ref_huber, {"delta": 0.5}),
    "huber_1.5": (L.weighted_huber_loss, R.ref_huber, {"delta": 1.5}),
    "smooth_l1_0": (L.weighted_smooth_l1_loss, R.ref_smooth_l1, {"beta": 0.0}),
    "smooth_l1_0.6": (L.weighted_smooth_l1_loss, R.ref_smooth_l1, {"beta": 0.6}),
    "smooth_l1_2": (L.weighted_smooth_l1_loss, R.ref_smooth_l1, {"beta": 2.0}),
}


@pytest.mark.parametrize("dims", SHAPES)
@pytest.mark.parametrize("name", REGRESSION)
@pytest.mark.parametrize("weight_kind", ["pixel", "full", "image", "channel"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_regression(dims, name, weight_kind, reduction):
    shape = SHAPES[dims]
    seed = _seed(dims) + 81
    x = logits(shape, seed)
    y = logits(shape, seed + 100, scale=1.0)
    w = _reg_weight(weight_kind, shape, seed)
    fn, ref_fn, kw = REGRESSION[name]
    out = fn(t(x), t(y), t(w), reduction=reduction, **kw)
    ref = ref_fn(x, y, w, reduction=reduction, **kw)
    check(out, ref, none_shape(reduction, shape))


@pytest.mark.parametrize("dims", SHAPES)
@pytest.mark.parametrize("log_target", [False, True])
@pytest.mark.parametrize("weight_kind", ["pixel", "full", "image"])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum", "batchmean"])
def test_kl_div(dims, log_target, weight_kind, reduction):
    shape = SHAPES[dims]
    seed = _seed(dims) + 91
    x = R.log_softmax(logits(shape, seed))
    q = prob_target(shape, seed)
    if not log_target:  # exact zero probabilities (log t = -inf would be NaN in torch too)
        zeros = (0,) * (len(shape) - 2)
        q[(0, slice(None)) + zeros] = [0.0, 0.4, 0.6]
        q[(1, slice(None)) + zeros] = [0.0, 0.0, 1.0]
    tg = np.log(q) if log_target else q
    w = _reg_weight(weight_kind, shape, seed)
    out = L.weighted_kl_div(t(x), t(tg), t(w), reduction, log_target)
    ref = R.ref_kl_div(x, tg, w, reduction, log_target)
    check(out, ref, none_shape(reduction, shape))


# ------------------------------------------------------------------------------------------------
# "mean" over nothing: exactly 0 with an exactly zero gradient
# ------------------------------------------------------------------------------------------------

SHAPE0 = SHAPES["2d"]
N0, C0, H0, W0 = SHAPE0


def _idx(ignore=False):
    y = index_target(SHAPE0, 99)
    if ignore:
        y[:] = -100
    return t(y)


def _zero_w(shape=(N0, H0, W0)):
    return torch.zeros(shape, dtype=torch.float64)


def _pos_w():
    return t(pixel_weight(SHAPE0, 99))


EMPTY_CASES = {
    "ce_zero_w": lambda x: L.weighted_cross_entropy(x, _idx(), _zero_w(), t(CLASS_WEIGHT), label_smoothing=0.1),
    "ce_ignored": lambda x: L.weighted_cross_entropy(x, _idx(True), _pos_w(), t(CLASS_WEIGHT), label_smoothing=0.1),
    "ce_ignored_noweight": lambda x: L.weighted_cross_entropy(x, _idx(True)),
    "ce_zero_classweight": lambda x: L.weighted_cross_entropy(x, _idx(), _pos_w(), torch.zeros(3, dtype=torch.float64)),
    "ce_prob_zero_w": lambda x: L.weighted_cross_entropy(x, t(prob_target(SHAPE0, 99)), _zero_w()),
    "nll_ignored": lambda x: L.weighted_nll_loss(F.log_softmax(x, 1), _idx(True), _pos_w()),
    "bce_zero_w": lambda x: L.weighted_bce_with_logits(x, t(binary_target(SHAPE0, 99)), _zero_w()),
    "bce_balance_zero_w": lambda x: L.weighted_bce_with_logits(
        x, t(binary_target(SHAPE0, 99)), _zero_w(), balance=(0.5, 0.5)
    ),
    "bce_prob_zero_w": lambda x: L.weighted_binary_cross_entropy(torch.sigmoid(x), t(binary_target(SHAPE0, 99)), _zero_w()),
    "focal_sigmoid_zero_w": lambda x: L.focal_loss(x, t(binary_target(SHAPE0, 99)), _zero_w(), "sigmoid", 0.25, 0.5),
    "focal_softmax_ignored": lambda x: L.focal_loss(x, _idx(True), _pos_w(), "softmax", 0.5, 0.5),
    "focal_softmax_zero_w": lambda x: L.focal_loss(x, _idx(), _zero_w(), "softmax", None, 2.0, t(CLASS_WEIGHT)),
    "dice_zero_w": lambda x: L.soft_dice_loss(x, _idx(), _zero_w(), smooth=0.0),
    "dice_ignored_per_image": lambda x: L.soft_dice_loss(x, _idx(True), _pos_w(), smooth=1.0, per_image=True, ignore_index=-100),
    "dice_sigmoid_zero_w": lambda x: L.soft_dice_loss(
        x, t(binary_target(SHAPE0, 99)), _zero_w(), "sigmoid", smooth=0.0, squared=True
    ),
    "tversky_zero_w": lambda x: L.tversky_loss(x, _idx(), _zero_w(), gamma=0.75, smooth=0.0),
    "tversky_ignored": lambda x: L.tversky_loss(x, _idx(True), _pos_w(), gamma=2.0, per_image=True, ignore_index=-100),
    "lovasz_softmax_zero_w": lambda x: L.lovasz_softmax(x, _idx(), _zero_w()),
    "lovasz_softmax_ignored_per_image": lambda x: L.lovasz_softmax(x, _idx(True), _pos_w(), "all", True, -100),
    "lovasz_hinge_zero_w": lambda x: L.lovasz_hinge(x[:, :1], t(binary_target((N0, 1, H0, W0), 99)), _zero_w()),
    "lovasz_hinge_ignored_margin": lambda x: L.lovasz_hinge(
        x[:, :1], torch.full((N0, 1, H0, W0), -100, dtype=torch.int64), _pos_w(), False, -100, weight_mode="margin"
    ),
    "mse_zero_w": lambda x: L.weighted_mse_loss(x, torch.ones_like(x), _zero_w()),
    "l1_zero_w": lambda x: L.weighted_l1_loss(x, torch.ones_like(x), _zero_w()),
    "huber_zero_w": lambda x: L.weighted_huber_loss(x, torch.ones_like(x), _zero_w(), 0.5),
    "smooth_l1_zero_w": lambda x: L.weighted_smooth_l1_loss(x, torch.ones_like(x), _zero_w(), 0.0),
    "kl_zero_w": lambda x: L.weighted_kl_div(F.log_softmax(x, 1), t(prob_target(SHAPE0, 99)), _zero_w()),
    "kl_log_zero_w": lambda x: L.weighted_kl_div(
        F.log_softmax(x, 1), torch.log(t(prob_target(SHAPE0, 99))), _zero_w((N0, 1, 1, 1)), log_target=True
    ),
}


@pytest.mark.parametrize("name", EMPTY_CASES)
def test_mean_over_nothing_is_zero_with_zero_gradient(name):
    x = t(logits(SHAPE0, 98)).requires_grad_(True)
    out = EMPTY_CASES[name](x)
    assert out.dim() == 0
    assert float(out.detach()) == 0.0
    out.backward()
    assert x.grad is not None
    assert not torch.isnan(x.grad).any()
    assert torch.all(x.grad == 0.0)


@pytest.mark.parametrize(
    "name",
    ["nll", "focal_softmax", "dice", "tversky", "lovasz_softmax", "lovasz_softmax_all"],
)
def test_everything_ignored_without_weight_map(name):
    x = t(logits(SHAPE0, 97)).requires_grad_(True)
    y = _idx(True)
    if name == "nll":
        out = L.weighted_nll_loss(F.log_softmax(x, 1), y)
    elif name == "focal_softmax":
        out = L.focal_loss(x, y, None, "softmax", 0.3, 2.0, t(CLASS_WEIGHT))
    elif name == "dice":
        out = L.soft_dice_loss(x, y, None, smooth=0.0, per_image=True, ignore_index=-100)
    elif name == "tversky":
        out = L.tversky_loss(x, y, None, alpha=0.3, beta=0.7, gamma=0.5, smooth=0.0, ignore_index=-100)
    elif name == "lovasz_softmax":
        out = L.lovasz_softmax(x, y, ignore_index=-100)
    else:
        out = L.lovasz_softmax(x, y, None, "all", True, -100)
    assert float(out.detach()) == 0.0
    out.backward()
    assert torch.all(x.grad == 0.0)
    hinge = L.lovasz_hinge(x[:, 0], torch.full((N0, H0, W0), -100, dtype=torch.int64), ignore_index=-100)
    assert float(hinge.detach()) == 0.0


# ------------------------------------------------------------------------------------------------
# Weight-map layouts of the set losses, ignore_index equal to a real class, float hinge targets
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["N1HW", "N11", "N111"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_set_losses_weight_layouts(layout, reduction):
    shape = SHAPES["2d"]
    x = logits(shape, 101)
    y = index_target(shape, 101, ignore_index=-100)
    w = pixel_weight(shape, 101)
    if layout == "N1HW":
        wl = w[:, None]
    elif layout == "N11":
        wl = np.array([0.3, 2.2]).reshape(2, 1, 1)
    else:
        wl = np.array([0.3, 2.2]).reshape(2, 1, 1, 1)
    out = L.soft_dice_loss(t(x), t(y), t(wl), per_image=True, class_weight=t(CLASS_WEIGHT), ignore_index=-100, reduction=reduction)
    ref = R.ref_soft_dice(x, y, wl, per_image=True, class_weight=CLASS_WEIGHT, reduction=reduction)
    check(out, ref, none_shape(reduction, (2, 3)))
    out = L.tversky_loss(t(x), t(y), t(wl), alpha=0.2, beta=0.8, ignore_index=-100, reduction=reduction)
    ref = R.ref_tversky(x, y, wl, alpha=0.2, beta=0.8, reduction=reduction)
    check(out, ref, none_shape(reduction, (1, 3)))
    if layout != "N1HW":
        out = L.lovasz_softmax(t(x), t(y), t(wl), per_image=True, ignore_index=-100, reduction=reduction)
        ref = R.ref_lovasz_softmax(x, y, wl, per_image=True, reduction=reduction)
        check(out, ref, none_shape(reduction, (2,)))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("per_image", [False, True])
def test_ignore_index_equal_to_a_class(reduction, per_image):
    """ignore_index=1 is a valid class index: its pixels count nowhere (class 1 becomes absent)."""
    shape = SHAPES["3d"]
    x = logits(shape, 102)
    y = index_target(shape, 102)
    w = pixel_weight(shape, 102)
    ii = 1
    check(
        L.soft_dice_loss(t(x), t(y), t(w), per_image=per_image, ignore_index=ii, reduction=reduction),
        R.ref_soft_dice(x, y, w, per_image=per_image, ignore_index=ii, reduction=reduction),
        none_shape(reduction, (2 if per_image else 1, 3)),
    )
    check(
        L.tversky_loss(t(x), t(y), t(w), alpha=0.6, beta=0.4, per_image=per_image, ignore_index=ii,
                       reduction=reduction),
        R.ref_tversky(x, y, w, alpha=0.6, beta=0.4, per_image=per_image, ignore_index=ii, reduction=reduction),
        none_shape(reduction, (2 if per_image else 1, 3)),
    )
    for classes in ("present", "all"):
        check(
            L.lovasz_softmax(t(x), t(y), t(w), classes, per_image, ii, reduction),
            R.ref_lovasz_softmax(x, y, w, classes, per_image, ii, reduction),
            none_shape(reduction, (2 if per_image else 1,)),
        )
    check(
        L.focal_loss(t(x), t(y), t(w), "softmax", None, 1.5, t(CLASS_WEIGHT), ii, reduction),
        R.ref_softmax_focal(x, y, w, None, 1.5, CLASS_WEIGHT, ii, reduction),
        none_shape(reduction, (2, 3, 4, 5)),
    )


@pytest.mark.parametrize("weight_mode", ["jaccard", "margin"])
@pytest.mark.parametrize("dtype", ["float", "bool"])
def test_lovasz_hinge_target_dtypes(weight_mode, dtype):
    shape = (3, 4, 6)
    x, y, w = _hinge_inputs(shape, 103, None)
    yt = t(y.astype(np.float64)) if dtype == "float" else torch.tensor(y.astype(bool))
    for per_image in (True, False):
        out = L.lovasz_hinge(t(x), yt, t(w), per_image, -100, weight_mode, "none")
        ref = R.ref_lovasz_hinge(x, y, w, per_image, -100, weight_mode, "none")
        check(out, ref, (3 if per_image else 1,))


# ------------------------------------------------------------------------------------------------
# Module forms equal the reference with the same options
# ------------------------------------------------------------------------------------------------


def test_modules_match_reference():
    shape = SHAPES["2d"]
    x = logits(shape, 104)
    y = index_target(shape, 104, ignore_index=-100)
    p = prob_target(shape, 104)
    b = binary_target(shape, 104)
    w = pixel_weight(shape, 104)
    cw = t(CLASS_WEIGHT)
    pw = np.array([0.5, 2.0, 3.0]).reshape(3, 1, 1)
    cases = [
        (L.WeightedCrossEntropyLoss(cw, -100, 0.1, "sum"), (x, y), R.ref_cross_entropy(x, y, w, CLASS_WEIGHT, -100,
                                                                                     0.1, "sum")),
        (L.WeightedNLLLoss(cw, -100, 0.0, "mean"), (R.log_softmax(x), y),
         R.ref_nll(R.log_softmax(x), y, w, CLASS_WEIGHT, -100, 0.0, "mean")),
        (L.WeightedBCEWithLogitsLoss(t(pw), (0.3, 0.7), "mean"), (x, b),
         R.ref_bce_with_logits(x, b, w, pw, (0.3, 0.7), "mean")),
        (L.WeightedBCELoss(t(pw), (0.3, 0.7), "sum"), (probabilities(x), b),
         R.ref_binary_cross_entropy(probabilities(x), b, w, pw, (0.3, 0.7), "sum")),
        (L.FocalLoss("sigmoid", 0.25, 1.5), (x, b), R.ref_sigmoid_focal(x, b, w, 0.25, 1.5, "mean")),
        (L.FocalLoss("softmax", 0.5, 2.0, cw, -100, "mean"), (x, y),
         R.ref_softmax_focal(x, y, w, 0.5, 2.0, CLASS_WEIGHT, -100, "mean")),
        (L.SoftDiceLoss("softmax", 0.5, True, False, True, cw, -100, "mean"), (x, y),
         R.ref_soft_dice(x, y, w, "softmax", 0.5, True, False, True, CLASS_WEIGHT, -100, "mean")),
        (L.TverskyLoss("sigmoid", 0.3, 0.7, 0.75, 1.0, True, True, cw, -100, "sum"), (x, b),
         R.ref_tversky(x, b, w, "sigmoid", 0.3, 0.7, 0.75, 1.0, True, True, CLASS_WEIGHT, -100, "sum")),
        (L.LovaszSoftmaxLoss("all", True, -100, "mean"), (x, y),
         R.ref_lovasz_softmax(x, y, w, "all", True, -100, "mean")),
        (L.LovaszHingeLoss(False, -100, "margin", "mean"), (x[:, 0], (b[:, 0] > 0).astype(np.int64)),
         R.ref_lovasz_hinge(x[:, 0], (b[:, 0] > 0).astype(np.int64), w, False, -100, "margin", "mean")),
        (L.WeightedMSELoss("sum"), (x, p), R.ref_mse(x, p, w, "sum")),
        (L.WeightedL1Loss("mean"), (x, p), R.ref_l1(x, p, w, "mean")),
        (L.WeightedHuberLoss(0.4, "mean"), (x, p), R.ref_huber(x, p, w, 0.4, "mean")),
        (L.WeightedSmoothL1Loss(0.0, "mean"), (x, p), R.ref_smooth_l1(x, p, w, 0.0, "mean")),
        (L.WeightedKLDivLoss("batchmean", False), (R.log_softmax(x), p),
         R.ref_kl_div(R.log_softmax(x), p, w, "batchmean", False)),
    ]
    for module, (a, tg), ref in cases:
        check(module(t(a), t(tg), t(w)), ref)


# ------------------------------------------------------------------------------------------------
# Gradients: autograd of the library vs central differences of the reference
# ------------------------------------------------------------------------------------------------

TINY = (2, 3, 2, 3)


def _tiny_case(name):
    x = logits(TINY, 105)
    y = index_target(TINY, 105, ignore_index=-100)
    y[0, 0, 0], y[1, 1, 2] = -100, -100
    w = pixel_weight(TINY, 105)
    w[0, 1, 1] = 0.0
    b = binary_target(TINY, 105)
    cw = t(CLASS_WEIGHT)
    pw = np.array([0.5, 2.0, 3.0]).reshape(3, 1, 1)
    if name == "bce_prob":
        x = 1.0 / (1.0 + np.exp(-x))  # probabilities, off the clamps
    table = {
        "ce": (lambda a: L.weighted_cross_entropy(a, t(y), t(w), cw, -100, 0.2),
               lambda a: R.ref_cross_entropy(a, y, w, CLASS_WEIGHT, -100, 0.2)),
        "bce_balance": (lambda a: L.weighted_bce_with_logits(a, t(b), t(w), None, (0.6, 0.4)),
                        lambda a: R.ref_bce_with_logits(a, b, w, None, (0.6, 0.4))),
        "bce_prob": (lambda a: L.weighted_binary_cross_entropy(a, t(prob_target(TINY, 105)), t(w), t(pw)),
                     lambda a: R.ref_binary_cross_entropy(a, prob_target(TINY, 105), w, pw)),
        "focal_sigmoid": (lambda a: L.focal_loss(a, t(b), t(w), "sigmoid", 0.25, 1.5),
                          lambda a: R.ref_sigmoid_focal(a, b, w, 0.25, 1.5)),
        "focal_softmax": (lambda a: L.focal_loss(a, t(y), t(w), "softmax", 0.5, 2.0, cw),
                          lambda a: R.ref_softmax_focal(a, y, w, 0.5, 2.0, CLASS_WEIGHT)),
        "dice": (lambda a: L.soft_dice_loss(a, t(y), t(w), per_image=True, squared=True, class_weight=cw, ignore_index=-100),
                 lambda a: R.ref_soft_dice(a, y, w, per_image=True, squared=True, class_weight=CLASS_WEIGHT)),
        "tversky": (lambda a: L.tversky_loss(a, t(y), t(w), alpha=0.3, beta=0.7, gamma=0.75, ignore_index=-100),
                    lambda a: R.ref_tversky(a, y, w, alpha=0.3, beta=0.7, gamma=0.75)),
        "lovasz_softmax": (lambda a: L.lovasz_softmax(a, t(y), t(w), "all", True, -100),
                           lambda a: R.ref_lovasz_softmax(a, y, w, "all", True)),
        "lovasz_hinge": (lambda a: L.lovasz_hinge(a[:, :1], t(b[:, :1].astype(np.int64)), t(w), True),
                         lambda a: R.ref_lovasz_hinge(a[:, :1], b[:, :1].astype(np.int64), w, True)),
        "huber": (lambda a: L.weighted_huber_loss(a, t(b), t(w), 0.8),
                  lambda a: R.ref_huber(a, b, w, 0.8)),
    }
    return x, table[name]


@pytest.mark.parametrize(
    "name",
    ["ce", "bce_balance", "bce_prob", "focal_sigmoid", "focal_softmax", "dice", "tversky", "lovasz_softmax", "lovasz_hinge",
     "huber"],
)
def test_gradient_matches_reference_finite_differences(name):
    x, (lib, ref) = _tiny_case(name)
    xt = t(x).requires_grad_(True)
    lib(xt).backward()
    h = 1e-6
    numeric = np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += h
        xm[idx] -= h
        numeric[idx] = (ref(xp) - ref(xm)) / (2 * h)
    np.testing.assert_allclose(xt.grad.numpy(), numeric, rtol=1e-6, atol=1e-8)


# ------------------------------------------------------------------------------------------------
# Remaining target / pos_weight layouts
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("form", BCE_FORMS)
@pytest.mark.parametrize("dims", SHAPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("balance", [None, (1.0, 0.5)])
def test_bce_pos_weight_last_dim_vector(form, dims, reduction, balance):
    """A 1-D pos_weight aligns with the last dim of the input, as in torch."""
    loss, reference, make_input = BCE_FORMS[form]
    shape = SHAPES[dims]
    x = make_input(logits(shape, 106))
    tg = binary_target(shape, 106)
    w = pixel_weight(shape, 106)
    pw = np.linspace(0.2, 3.0, shape[-1])
    out = loss(t(x), t(tg), t(w), t(pw), balance, reduction)
    ref = reference(x, tg, w, pw, balance, reduction)
    check(out, ref, none_shape(reduction, shape))


@pytest.mark.parametrize("dims", SHAPES)
@pytest.mark.parametrize("activation", ["softmax", "sigmoid", "none"])
@pytest.mark.parametrize("target_kind", ["prob", "onehot_int"])
@pytest.mark.parametrize("per_image", [False, True])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_overlap_dense_targets(dims, activation, target_kind, per_image, reduction):
    """(N, C, *) targets: probabilities (float) or one-hot integers, for Dice and Tversky."""
    shape = SHAPES[dims]
    x = logits(shape, 107)
    if activation == "none":
        x = R.softmax(x)
    if target_kind == "prob":
        tg = prob_target(shape, 107)
    else:
        y = index_target(shape, 107)
        tg = np.stack([(y == c).astype(np.int64) for c in range(shape[1])], 1)
    w = pixel_weight(shape, 107)
    w[0] = 0.0 if per_image else w[0]
    cw = CLASS_WEIGHT
    out = L.soft_dice_loss(t(x), t(tg), t(w), activation, 0.3, per_image, False, False, t(cw), -100, reduction)
    ref = R.ref_soft_dice(x, tg, w, activation, 0.3, per_image, False, False, cw, -100, reduction)
    check(out, ref, none_shape(reduction, (2 if per_image else 1, 2)))
    out = L.tversky_loss(t(x), t(tg), t(w), activation, 0.7, 0.3, 1.5, 0.3, per_image, True, None, -100, reduction)
    ref = R.ref_tversky(x, tg, w, activation, 0.7, 0.3, 1.5, 0.3, per_image, True, None, -100, reduction)
    check(out, ref, none_shape(reduction, (2 if per_image else 1, 3)))


@pytest.mark.parametrize("weight_mode", ["jaccard", "margin"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_lovasz_hinge_weight_of_target_shape(weight_mode, reduction):
    """A (N, 1, *) weight for an (N, 1, *) input (the target's shape) and a per-image (N, 1, 1, 1)."""
    shape = (3, 1, 4, 5)
    x, y, w = _hinge_inputs(shape, 108, 255)
    for wl in (w[:, None], np.array([0.5, 0.0, 2.0]).reshape(3, 1, 1, 1)):
        for per_image in (True, False):
            out = L.lovasz_hinge(t(x), t(y), t(wl), per_image, 255, weight_mode, reduction)
            ref = R.ref_lovasz_hinge(x, y, wl, per_image, 255, weight_mode, reduction)
            check(out, ref, none_shape(reduction, (3 if per_image else 1,)))
