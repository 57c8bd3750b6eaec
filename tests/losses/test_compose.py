"""CombinedLoss and DeepSupervisionLoss against sums written out by hand."""

import pytest
import torch
import torch.nn.functional as F

import unetweights.losses as L


def _inputs(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=torch.float64)
    t = torch.randint(-1, shape[1], (shape[0], *shape[2:]), generator=g)
    w = torch.rand((shape[0], *shape[2:]), generator=g, dtype=torch.float64)
    return x, t, w


def test_combined_is_the_weighted_sum():
    x, t, w = _inputs((2, 3, 6, 5))
    ce = L.WeightedCrossEntropyLoss(ignore_index=-1)
    dice = L.SoftDiceLoss(ignore_index=-1, per_image=True)
    combined = L.CombinedLoss([ce, dice], [0.7, 2.0])
    torch.testing.assert_close(combined(x, t, w), 0.7 * ce(x, t, w) + 2.0 * dice(x, t, w))
    torch.testing.assert_close(L.CombinedLoss([ce, dice])(x, t), ce(x, t) + dice(x, t))


@pytest.mark.parametrize(
    "size,out",
    [((16, 24), (8, 12)), ((16, 24), (4, 6)), ((9, 7), (4, 3)), ((10, 13), (7, 5)), ((6, 8, 10), (3, 4, 5)), ((5, 7, 9), (2, 3, 4))],
)
def test_resize_nearest_matches_interpolate(size, out):
    t = torch.randint(-1, 50, (2, *size))
    want = F.interpolate(t.unsqueeze(1).double(), size=out, mode="nearest").squeeze(1).long()
    assert torch.equal(L.resize_nearest(t, list(out)), want)
    big = torch.full((1, *size), 2**62 + 1)  # would not survive a trip through float
    assert torch.equal(L.resize_nearest(big, list(out)), torch.full((1, *out), 2**62 + 1))


@pytest.mark.parametrize("size,out", [((16, 24), (8, 12)), ((9, 7), (4, 3)), ((10, 13), (7, 5)), ((6, 8, 10), (3, 4, 5))])
def test_resize_area_matches_interpolate(size, out):
    w = torch.rand(2, *size, dtype=torch.float64)
    want = F.interpolate(w.unsqueeze(1), size=out, mode="area").squeeze(1)
    torch.testing.assert_close(L.resize_area(w, list(out)), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("weight_mode", ("area", "nearest"))
@pytest.mark.parametrize("spatial", ((16, 12), (8, 12, 16)))
def test_deep_supervision_is_the_level_sum(weight_mode, spatial):
    x, t, w = _inputs((2, 3, *spatial), seed=1)
    outputs = [x] + [torch.randn(2, 3, *[s // 2**k for s in spatial], dtype=torch.float64) for k in (1, 2)]
    criterion = L.WeightedCrossEntropyLoss(ignore_index=-1)
    want = 0.0
    for k, level_weight in enumerate((1.0, 0.5, 0.25)):
        size = outputs[k].shape[2:]
        level_t = F.interpolate(t.unsqueeze(1).double(), size=size, mode="nearest").squeeze(1).long()
        level_w = F.interpolate(w.unsqueeze(1), size=size, mode=weight_mode).squeeze(1)
        want = want + level_weight * criterion(outputs[k], level_t, level_w)
    loss = L.DeepSupervisionLoss(criterion, [1.0, 0.5, 0.25], weight_mode=weight_mode)
    torch.testing.assert_close(loss(outputs, t, w), want)


def test_deep_supervision_default_level_weights():
    x, t, _ = _inputs((1, 2, 8, 8), seed=2)
    outputs = [x, x[:, :, ::2, ::2], x[:, :, ::4, ::4]]
    criterion = L.WeightedCrossEntropyLoss(ignore_index=-1)
    explicit = L.DeepSupervisionLoss(criterion, [4 / 7, 2 / 7, 1 / 7])
    torch.testing.assert_close(L.DeepSupervisionLoss(criterion)(outputs, t), explicit(outputs, t))
    single = L.DeepSupervisionLoss(criterion)([x], t)
    torch.testing.assert_close(single, criterion(x, t))


def test_deep_supervision_keeps_ignore_index():
    """Nearest resizing keeps -1 labels, so ignored pixels stay ignored at every level."""
    x = torch.randn(1, 2, 4, 4)
    t = torch.full((1, 8, 8), -1)
    loss = L.DeepSupervisionLoss(L.WeightedCrossEntropyLoss(ignore_index=-1), [1.0, 1.0])
    assert loss([torch.randn(1, 2, 8, 8), x], t).item() == 0.0
