"""reduction="per_image": entry n equals the "mean" of image n alone, values and gradients."""

import pytest
import torch

import unetweights.losses as L

from .cases import CASES, SHAPES, loss_and_grad, make_inputs


def _per_image_sets(module):
    """The case's module with every set loss made per image (the batch-pooled form has no per-image value)."""
    for part in module.modules():
        if hasattr(part, "per_image"):
            part.per_image = True
    return module


@pytest.mark.parametrize("rank", ["2d", "3d"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_per_image_is_the_mean_of_each_image_alone(case, rank):
    module = _per_image_sets(case.build(len(SHAPES[rank][0]) - 2))
    shape = (3,) + SHAPES[rank][0][1:]
    x, target, weight = (t.double() if t is not None and t.is_floating_point() else t for t in make_inputs(case.kind, shape, seed=5))
    module = module.double()
    per_image = L.with_reduction(module, "per_image")
    mean = L.with_reduction(module, "mean")
    value, grad = loss_and_grad(per_image, x, target, weight)
    assert value.shape == (shape[0],)
    for n in range(shape[0]):
        one = slice(n, n + 1)
        expected, expected_grad = loss_and_grad(mean, x[one], target[one], weight[one])
        torch.testing.assert_close(value[n], expected, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(grad[one], expected_grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case", [c for c in CASES if c.name in ("ce", "dice", "lovasz_hinge", "bce_balance", "combined")], ids=lambda c: c.name)
def test_per_image_scripts(case):
    module = L.with_reduction(_per_image_sets(case.build(2)), "per_image")
    x, target, weight = make_inputs(case.kind, SHAPES["2d"][0], seed=1)
    scripted = torch.jit.script(module)
    torch.testing.assert_close(scripted(x, target, weight), module(x, target, weight))


def test_with_reduction_leaves_the_original_alone_and_reaches_every_part():
    combined = L.CombinedLoss([L.WeightedCrossEntropyLoss(), L.SoftDiceLoss(per_image=True)])
    copy = L.with_reduction(combined, "per_image")
    assert [m.reduction for m in combined.losses] == ["mean", "mean"]
    assert [m.reduction for m in copy.losses] == ["per_image", "per_image"]
    deep = L.with_reduction(L.DeepSupervisionLoss(L.WeightedCrossEntropyLoss()), "sum")
    assert deep.criterion.reduction == "sum"


@pytest.mark.parametrize(
    "loss",
    [L.SoftDiceLoss(), L.TverskyLoss(), L.LovaszSoftmaxLoss(), L.LovaszHingeLoss(per_image=False)],
    ids=lambda m: type(m).__name__,
)
def test_per_image_needs_per_image_sets(loss):
    with pytest.raises(ValueError, match=r"loss: .*per_image=False"):
        L.with_reduction(loss, "per_image")
    with pytest.raises(ValueError, match=r"reduction: 'per_image' needs per_image=True"):
        type(loss)(per_image=False, reduction="per_image")


def test_per_image_needs_per_image_sets_in_the_functional_form():
    x, target, _ = make_inputs("index_clean", (2, 3, 4, 4))
    with pytest.raises(ValueError, match=r"reduction: 'per_image' needs per_image=True"):
        L.soft_dice_loss(x, target, reduction="per_image")
    with pytest.raises(ValueError, match=r"reduction: 'per_image' needs per_image=True"):
        L.lovasz_softmax(x, target, reduction="per_image")


def test_with_reduction_errors():
    with pytest.raises(TypeError, match="loss: expected an nn.Module"):
        L.with_reduction(lambda x: x, "mean")
    with pytest.raises(TypeError, match="no part with a 'reduction' option"):
        L.with_reduction(torch.nn.Identity(), "mean")
    with pytest.raises(ValueError, match="reduction: expected"):
        L.with_reduction(L.WeightedMSELoss(), "average")
