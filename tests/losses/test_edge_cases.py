"""Edge cases stay finite and defined; gradients agree with finite differences (gradcheck)."""

import pytest
import torch

import unetweights.losses as L

from .cases import CASES, IGNORE, make_inputs


def _value_and_grad(module, x, target, weight):
    x = x.detach().clone().requires_grad_(True)
    value = module(x, target, weight)
    value.sum().backward()
    return value.detach(), x.grad


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_extreme_logits_stay_finite(case):
    x, target, weight = make_inputs(case.kind, (2, 3, 5, 6), seed=0)
    if case.kind == "probability":
        x = (x > 0.5).to(x.dtype)  # saturated: exactly 0 and 1, right and wrong
    elif case.kind not in ("real", "logprob"):
        x = 1e4 * torch.sign(x)
    value, grad = _value_and_grad(case.build(2), x, target, weight)
    assert torch.isfinite(value).all()
    assert torch.isfinite(grad).all()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_single_pixel(case):
    x, target, weight = make_inputs(case.kind, (1, 3, 1, 1), seed=1, weighted=False)
    if case.kind in ("index", "binary1"):
        target = torch.zeros_like(target)
    value, grad = _value_and_grad(case.build(2), x, target, torch.ones(1, 1, 1))
    assert torch.isfinite(value).all()
    assert torch.isfinite(grad).all()


# In "margin" mode the weight map is the hinge margin, not a count: zero weight is zero margin.
@pytest.mark.parametrize("case", [c for c in CASES if c.name != "lovasz_hinge_margin"], ids=lambda c: c.name)
def test_zero_weight_everywhere_gives_zero_loss_and_gradient(case):
    x, target, weight = make_inputs(case.kind, (2, 3, 4, 5), seed=2)
    value, grad = _value_and_grad(case.build(2), x, target, torch.zeros_like(weight))
    assert torch.equal(value, torch.zeros_like(value))
    assert torch.equal(grad, torch.zeros_like(grad))


@pytest.mark.parametrize("case", [c for c in CASES if c.kind in ("index", "binary1")], ids=lambda c: c.name)
def test_everything_ignored_gives_zero_loss_and_gradient(case):
    x, target, weight = make_inputs(case.kind, (2, 3, 4, 5), seed=3)
    value, grad = _value_and_grad(case.build(2), x, torch.full_like(target, IGNORE), weight)
    assert torch.equal(value, torch.zeros_like(value))
    assert torch.equal(grad, torch.zeros_like(grad))


def test_torch_gives_nan_where_the_rule_gives_zero():
    """The one documented deviation from torch: a mean over nothing."""
    x = torch.randn(2, 3, 4, requires_grad=True)
    t = torch.full((2, 4), -100)
    assert torch.isnan(torch.nn.functional.cross_entropy(x, t))
    value = L.weighted_cross_entropy(x, t)
    value.backward()
    assert value.item() == 0.0 and torch.equal(x.grad, torch.zeros_like(x))


def test_empty_mask_dice_policy():
    """No foreground anywhere: Dice only penalises predicted foreground, and never returns NaN."""
    target = torch.zeros(2, 6, 7, dtype=torch.long)
    confident = torch.zeros(2, 2, 6, 7)
    confident[:, 0] = 20.0  # background predicted everywhere
    loss = L.soft_dice_loss(confident, target, include_background=False, smooth=1.0, reduction="none")
    assert torch.allclose(loss, torch.zeros_like(loss), atol=1e-6)
    # Without smoothing any predicted mass on an absent class scores Dice 0, however small.
    loss = L.soft_dice_loss(confident, target, include_background=False, smooth=0.0, reduction="none")
    assert torch.equal(loss, torch.ones_like(loss))
    wrong = torch.zeros(2, 2, 6, 7)
    wrong[:, 1] = 20.0
    loss = L.soft_dice_loss(wrong, target, include_background=False, smooth=1.0, reduction="none")
    assert torch.allclose(loss, torch.full_like(loss, 1.0 - 1.0 / (2 * 42.0 + 1.0)), atol=1e-5)  # pooled: 84 pixels
    exact = torch.zeros(1, 2, 3, 3)  # activation "none": p = 0 for class 1, 0/0 -> Dice 1
    exact[:, 0] = 1.0
    x = exact.clone().requires_grad_(True)
    loss = L.soft_dice_loss(x, torch.zeros(1, 3, 3, dtype=torch.long), activation="none", smooth=0.0)
    loss.backward()
    assert loss.item() == 0.0 and torch.isfinite(x.grad).all()


def test_lovasz_without_positives_penalises_the_largest_error():
    x = torch.tensor([[0.5, -2.0, 1.5, -0.3]])
    t = torch.zeros(1, 4, dtype=torch.long)
    assert torch.allclose(L.lovasz_hinge(x, t), torch.tensor(1.0 + 1.5))


FUNCTIONALS = {
    "cross_entropy": (lambda x, t, w: L.weighted_cross_entropy(x, t, w, torch.tensor([0.5, 2.0, 1.0], dtype=x.dtype), IGNORE, 0.1), "index"),
    "cross_entropy_prob": (lambda x, t, w: L.weighted_cross_entropy(x, t, w, None, -100, 0.1), "prob"),
    "bce": (lambda x, t, w: L.weighted_bce_with_logits(x, t, w, torch.tensor([2.0, 1.0, 0.5], dtype=x.dtype).view(3, 1, 1)), "binary"),
    "bce_balance": (lambda x, t, w: L.weighted_bce_with_logits(x, t, w, None, (0.3, 0.7)), "binary"),
    "bce_prob": (lambda x, t, w: L.weighted_binary_cross_entropy(x, t, w, torch.tensor([2.0, 1.0, 0.5], dtype=x.dtype).view(3, 1, 1), (0.3, 0.7)), "probability"),
    "focal_sigmoid": (lambda x, t, w: L.focal_loss(x, t, w, "sigmoid", 0.25, 2.0), "binary"),
    "focal_softmax": (lambda x, t, w: L.focal_loss(x, t, w, "softmax", None, 0.5, None, IGNORE), "index"),
    "dice": (lambda x, t, w: L.soft_dice_loss(x, t, w, per_image=True, ignore_index=IGNORE), "index"),
    "dice_squared": (lambda x, t, w: L.soft_dice_loss(x, t, w, "sigmoid", 0.5, False, False, True), "binary"),
    "tversky": (lambda x, t, w: L.tversky_loss(x, t, w, "softmax", 0.3, 0.7, 1.5, ignore_index=IGNORE), "index"),
    "mcc": (lambda x, t, w: L.mcc_loss(x, t, w, per_image=True, ignore_index=IGNORE), "index"),
    "boundary": (lambda x, t, w: L.boundary_loss(x, t, w, None, "softmax", False, [1.0, 2.0], IGNORE), "index"),
    "hausdorff_dt": (lambda x, t, w: L.hausdorff_dt_loss(x, t, w, None, "sigmoid", 1.5), "binary"),
    "cldice": (lambda x, t, w: L.cldice_loss(x, t, w, "softmax", 2, 1.0, True, True, IGNORE), "index"),
    "skeleton_recall": (lambda x, t, w: L.skeleton_recall_loss(x, t, w, "softmax", 1.0, True, IGNORE), "index"),
    "lovasz_hinge": (lambda x, t, w: L.lovasz_hinge(x, t, w, True, IGNORE), "binary1"),
    "lovasz_hinge_margin": (lambda x, t, w: L.lovasz_hinge(x, t, w, False, IGNORE, "margin"), "binary1"),
    "lovasz_softmax": (lambda x, t, w: L.lovasz_softmax(x, t, w, "present", True, IGNORE), "index"),
    "mse": (lambda x, t, w: L.weighted_mse_loss(x, t, w), "real"),
    "l1": (lambda x, t, w: L.weighted_l1_loss(x, t, w), "real"),
    "huber": (lambda x, t, w: L.weighted_huber_loss(x, t, w, 0.8), "real"),
    "smooth_l1": (lambda x, t, w: L.weighted_smooth_l1_loss(x, t, w, 0.6), "real"),
    "kl_div": (lambda x, t, w: L.weighted_kl_div(x, t, w, "batchmean"), "logprob"),
}


@pytest.mark.parametrize("name", sorted(FUNCTIONALS))
def test_gradcheck_float64(name):
    fn, kind = FUNCTIONALS[name]
    x, target, weight = make_inputs(kind, (2, 3, 3, 4), seed=5, dtype=torch.float64)
    x = x.detach().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a: fn(a, target, weight), (x,), eps=1e-6, atol=1e-5)


def test_poison_of_finite_logits_whose_sum_overflows_is_zero():
    # The eager shortcut reads one total; a total that overflows must take the exact way, not poison.
    from unetweights._stage.reduce import input_poison

    x = torch.full((2, 3, 4, 4), 3e38)
    assert torch.equal(input_poison(x), torch.zeros(2))
    x[1, 0, 0, 0] = float("-inf")
    assert torch.equal(input_poison(x).isnan(), torch.tensor([False, True]))
    assert torch.equal(input_poison(x, allow_negative_inf=True), torch.zeros(2))


def test_cross_entropy_fast_path_equals_the_decomposition():
    # Eager takes torch's fused loss where no pixel is ignored; with one ignored pixel it masks.
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 5, 6, generator=g, dtype=torch.float64)
    t = torch.randint(0, 3, (2, 5, 6), generator=g)
    w = torch.rand(2, 5, 6, generator=g, dtype=torch.float64)
    cw = torch.tensor([0.5, 2.0, 1.0], dtype=torch.float64)
    for reduction in ("none", "sum", "mean", "per_image"):
        plain = L.weighted_cross_entropy(x, t, w, class_weight=cw, reduction=reduction)
        ignored = t.clone()
        ignored[0, 0, 0] = -100
        masked = L.weighted_cross_entropy(x, ignored, w * (ignored != -100), class_weight=cw, reduction=reduction)
        manual = -torch.log_softmax(x, 1).gather(1, t.unsqueeze(1)).squeeze(1) * cw[t] * w
        if reduction == "none":
            torch.testing.assert_close(plain, manual)
        elif reduction == "mean":
            torch.testing.assert_close(plain, manual.sum() / (cw[t] * w).sum())
        # Ignoring a pixel equals giving it weight 0, through the masking path.
        torch.testing.assert_close(masked, L.weighted_cross_entropy(x, t, w * (ignored != -100), class_weight=cw, reduction=reduction))
