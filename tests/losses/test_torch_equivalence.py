"""With weight=None every loss equals its torch.nn.functional counterpart, values and gradients."""

import itertools
import warnings

import pytest
import torch
import torch.nn.functional as F

import unetweights.losses as L

REDUCTIONS = ("none", "mean", "sum")
SHAPES = ((3, 4, 5, 6), (2, 4, 3, 4, 5), (5, 4))


def _both(ours, theirs, *tensors):
    """Values and gradients (w.r.t. the first tensor) of two callables on the same inputs."""
    out = []
    for fn in (ours, theirs):
        x = tensors[0].detach().clone().requires_grad_(True)
        value = fn(x, *tensors[1:])
        value.sum().backward()
        out.append((value.detach(), x.grad))
    return out


def _assert_same(ours, theirs, *tensors):
    (a, ga), (b, gb) = _both(ours, theirs, *tensors)
    assert a.shape == b.shape
    torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(ga, gb, rtol=1e-10, atol=1e-12)


def _logits_and_target(shape, seed, ignore=None):
    g = torch.Generator().manual_seed(seed)
    x = 2.5 * torch.randn(shape, generator=g, dtype=torch.float64)
    target = torch.randint(0, shape[1], (shape[0], *shape[2:]), generator=g)
    if ignore is not None:
        target[torch.rand(target.shape, generator=g) < 0.2] = ignore
    return x, target


CE_OPTIONS = list(itertools.product((None, -100, 2), (False, True), (0.0, 0.15), REDUCTIONS))


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("ignore,class_weighted,smoothing,reduction", CE_OPTIONS)
def test_cross_entropy_index_targets(shape, ignore, class_weighted, smoothing, reduction):
    x, target = _logits_and_target(shape, 0, ignore)
    cw = torch.tensor([0.5, 2.0, 1.0, 3.0], dtype=torch.float64) if class_weighted else None
    ii = -100 if ignore is None else ignore
    _assert_same(
        lambda a, t: L.weighted_cross_entropy(a, t, None, cw, ii, smoothing, reduction),
        lambda a, t: F.cross_entropy(a, t, cw, ignore_index=ii, reduction=reduction, label_smoothing=smoothing),
        x,
        target,
    )


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("class_weighted,smoothing,reduction", list(itertools.product((False, True), (0.0, 0.2), REDUCTIONS)))
def test_cross_entropy_probability_targets(shape, class_weighted, smoothing, reduction):
    x, _ = _logits_and_target(shape, 1)
    probs = torch.softmax(torch.randn(shape, dtype=torch.float64), 1)
    cw = torch.tensor([0.5, 2.0, 1.0, 3.0], dtype=torch.float64) if class_weighted else None
    _assert_same(
        lambda a, t: L.weighted_cross_entropy(a, t, None, cw, -100, smoothing, reduction),
        lambda a, t: F.cross_entropy(a, t, cw, reduction=reduction, label_smoothing=smoothing),
        x,
        probs,
    )


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("ignore,class_weighted,reduction", list(itertools.product((None, 1), (False, True), REDUCTIONS)))
def test_nll_loss(shape, ignore, class_weighted, reduction):
    x, target = _logits_and_target(shape, 2, ignore)
    log_p = torch.log_softmax(x, 1)
    cw = torch.tensor([0.5, 2.0, 1.0, 3.0], dtype=torch.float64) if class_weighted else None
    ii = -100 if ignore is None else ignore
    _assert_same(
        lambda a, t: L.weighted_nll_loss(a, t, None, cw, ii, 0.0, reduction),
        lambda a, t: F.nll_loss(a, t, cw, ignore_index=ii, reduction=reduction),
        log_p,
        target,
    )


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("pos_weight_kind,reduction", list(itertools.product((None, "last", "channel"), REDUCTIONS)))
def test_bce_with_logits(shape, pos_weight_kind, reduction):
    g = torch.Generator().manual_seed(3)
    x = 4.0 * torch.randn(shape, generator=g, dtype=torch.float64)
    soft = torch.rand(shape, generator=g, dtype=torch.float64)
    target = torch.where(soft < 0.3, torch.zeros_like(soft), torch.where(soft > 0.7, torch.ones_like(soft), soft))
    pos_weight = None
    if pos_weight_kind == "last":
        pos_weight = 0.5 + torch.rand(shape[-1], generator=g, dtype=torch.float64) * 3
    elif pos_weight_kind == "channel":
        pos_weight = (0.5 + torch.rand(shape[1], generator=g, dtype=torch.float64) * 3).view(-1, *[1] * (len(shape) - 2))
    _assert_same(
        lambda a, t: L.weighted_bce_with_logits(a, t, None, pos_weight, None, reduction),
        lambda a, t: F.binary_cross_entropy_with_logits(a, t, pos_weight=pos_weight, reduction=reduction),
        x,
        target,
    )


def _probabilities_and_target(shape, seed, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    p = torch.sigmoid(3.0 * torch.randn(shape, generator=g, dtype=dtype))
    soft = torch.rand(shape, generator=g, dtype=dtype)
    target = torch.where(soft < 0.3, torch.zeros_like(soft), torch.where(soft > 0.7, torch.ones_like(soft), soft))
    return p, target


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_cross_entropy(shape, reduction):
    p, target = _probabilities_and_target(shape, 8)
    _assert_same(
        lambda a, t: L.weighted_binary_cross_entropy(a, t, None, None, None, reduction),
        lambda a, t: F.binary_cross_entropy(a, t, reduction=reduction),
        p,
        target,
    )
    _assert_same(lambda a, t: L.WeightedBCELoss(reduction=reduction)(a, t), torch.nn.BCELoss(reduction=reduction), p, target)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_cross_entropy_with_a_map_is_torchs_weighted_sum_over_the_map(reduction):
    """torch's ``weight`` multiplies each element; "mean" here divides that sum by Σ w, not by the count."""
    p, target = _probabilities_and_target((2, 3, 4, 5), 9)
    w = torch.rand(2, 4, 5, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    w[0, 1] = 0.0
    full = w.unsqueeze(1).expand_as(p)

    def theirs(a, t):
        if reduction == "none":
            return F.binary_cross_entropy(a, t, weight=full, reduction="none")
        total = F.binary_cross_entropy(a, t, weight=full, reduction="sum")
        return total / full.sum() if reduction == "mean" else total

    _assert_same(lambda a, t: L.weighted_binary_cross_entropy(a, t, w, reduction=reduction), theirs, p, target)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_cross_entropy_at_0_and_1_clamps_as_torch(dtype, reduction):
    """p = 0 and 1, a p whose log the clamp at -100 cuts (a float32 subnormal), and p just either side
    of where torch's gradient floor p(1 - p) >= 1e-12 starts: finite values and gradients, torch's."""
    tiny = 1e-44 if dtype == torch.float32 else 1e-50
    points = torch.tensor([0.0, 1.0, tiny, 1e-30, 5e-13, 2e-12, 0.5, 1.0 - 2e-7], dtype=dtype)
    labels = torch.tensor([0.0, 1.0, 0.3], dtype=dtype)
    p, target = (g.reshape(-1) for g in torch.meshgrid(points, labels, indexing="ij"))
    (ours, our_grad), (torchs, torch_grad) = _both(
        lambda a, t: L.weighted_binary_cross_entropy(a, t, reduction=reduction),
        lambda a, t: F.binary_cross_entropy(a, t, reduction=reduction),
        p,
        target,
    )
    assert torch.isfinite(ours).all() and torch.isfinite(our_grad).all()
    if reduction == "none":
        assert float(ours.max()) == 100.0  # the clamp: p = 0 with t = 1, p = 1 with t = 0
    tolerance = dict(rtol=1e-10, atol=1e-12) if dtype == torch.float64 else dict(rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(ours, torchs, **tolerance)
    torch.testing.assert_close(our_grad, torch_grad, **tolerance)


REGRESSION = [
    ("mse", lambda a, t, r: L.weighted_mse_loss(a, t, None, r), lambda a, t, r: F.mse_loss(a, t, reduction=r)),
    ("l1", lambda a, t, r: L.weighted_l1_loss(a, t, None, r), lambda a, t, r: F.l1_loss(a, t, reduction=r)),
    *[
        (
            f"smooth_l1_beta{beta}",
            lambda a, t, r, beta=beta: L.weighted_smooth_l1_loss(a, t, None, beta, r),
            lambda a, t, r, beta=beta: F.smooth_l1_loss(a, t, reduction=r, beta=beta),
        )
        for beta in (0.0, 0.5, 1.0, 2.0)
    ],
    *[
        (
            f"huber_delta{delta}",
            lambda a, t, r, delta=delta: L.weighted_huber_loss(a, t, None, delta, r),
            lambda a, t, r, delta=delta: F.huber_loss(a, t, reduction=r, delta=delta),
        )
        for delta in (0.3, 1.0, 2.5)
    ],
]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name,ours,theirs", REGRESSION, ids=[r[0] for r in REGRESSION])
def test_regression(name, ours, theirs, shape, reduction):
    g = torch.Generator().manual_seed(4)
    x = 2.0 * torch.randn(shape, generator=g, dtype=torch.float64)
    target = 2.0 * torch.randn(shape, generator=g, dtype=torch.float64)
    _assert_same(lambda a, t: ours(a, t, reduction), lambda a, t: theirs(a, t, reduction), x, target)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("log_target", (False, True))
@pytest.mark.parametrize("reduction", REDUCTIONS + ("batchmean",))
def test_kl_div(shape, log_target, reduction):
    g = torch.Generator().manual_seed(5)
    x = torch.log_softmax(torch.randn(shape, generator=g, dtype=torch.float64), 1)
    p = torch.softmax(3 * torch.randn(shape, generator=g, dtype=torch.float64), 1)
    if log_target:
        target = torch.log(p)
    else:
        target = torch.where(p < 0.05, torch.zeros_like(p), p)  # exact zeros: 0·log 0 = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns that 'mean' is not the KL divergence
        _assert_same(
            lambda a, t: L.weighted_kl_div(a, t, None, reduction, log_target),
            lambda a, t: F.kl_div(a, t, reduction=reduction, log_target=log_target),
            x,
            target,
        )


def test_focal_with_gamma_zero_is_cross_entropy():
    x, target = _logits_and_target((2, 4, 5, 6), 6, -1)
    cw = torch.tensor([0.5, 2.0, 1.0, 3.0], dtype=torch.float64)
    w = torch.rand(2, 5, 6, dtype=torch.float64)
    _assert_same(
        lambda a, t: L.focal_loss(a, t, w, "softmax", None, 0.0, cw, -1),
        lambda a, t: L.weighted_cross_entropy(a, t, w, cw, -1),
        x,
        target,
    )
    binary = (torch.rand(2, 4, 5, 6, dtype=torch.float64) < 0.5).double()
    _assert_same(
        lambda a, t: L.focal_loss(a, t, w, "sigmoid", None, 0.0),
        lambda a, t: L.weighted_bce_with_logits(a, t, w),
        x,
        binary,
    )


def test_uniform_weight_map_changes_nothing_in_the_mean():
    """A constant weight map cancels in Σ w·ℓ / Σ w, so it must give the unweighted mean."""
    x, target = _logits_and_target((2, 4, 5, 6), 7, -100)
    _assert_same(
        lambda a, t: L.weighted_cross_entropy(a, t, torch.full((2, 5, 6), 3.5, dtype=torch.float64)),
        lambda a, t: F.cross_entropy(a, t),
        x,
        target,
    )
