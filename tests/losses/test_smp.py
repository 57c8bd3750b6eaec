"""segmentation_models_pytorch (smp) as a peer: with ``weight=None`` our losses give smp's values
where the conventions agree, and where they differ the documented relation holds exactly.

The differences (README, "Peers"):
- smp's Dice, Jaccard and Tversky zero the loss of a class absent from the target (in the
  batch); ours score it like any other class. smp = mean over classes of ours per class times
  [class present].
- smp's Tversky raises the class *mean* to gamma; ours raises each class's loss (focal Tversky).
- smp's Dice counts ``smooth`` twice (it is Tversky's (I + s) / (I + fp/2 + fn/2 + s)): smp's
  smooth s is our 2s. Jaccard and Tversky count it as we do.
- smp's MCC adds eps to tp, tn, fp and fn; ours adds ``smooth`` to the radicand only. On an
  all-background image predicted all background, where the coefficient is 0/0, smp's MCC is 0.5
  (a loss of 0.5) and ours is 0 (a loss of 1), MONAI's value.
- smp's soft CE with ``ignore_index`` averages over every pixel, ignored ones counted as 0; ours
  over the pixels kept. smp = ours x kept / total.
- smp's multiclass focal is the mean over classes of a sigmoid focal loss on each class's one-hot
  target: our ``focal_loss(activation="sigmoid")`` on the one-hot target.
"""

import pytest
import torch
import torch.nn.functional as tF

smp_losses = pytest.importorskip("segmentation_models_pytorch.losses")

import unetweights.losses as L  # noqa: E402

TOL = dict(rtol=1e-5, atol=1e-6)


def _multiclass(seed=0, shape=(3, 4, 12, 10), absent=None):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=torch.float64) * 2
    target = torch.randint(0, shape[1], (shape[0], *shape[2:]), generator=g)
    if absent is not None:
        target[target == absent] = (absent + 1) % shape[1]
    return x, target


def _binary(seed=0, shape=(3, 1, 12, 10)):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=torch.float64) * 2
    return x, (torch.rand(shape, generator=g) > 0.6).double()


def _close(got, want):
    torch.testing.assert_close(got, want.to(got.dtype), **TOL)


def test_dice_and_jaccard_multiclass_and_binary():
    x, t = _multiclass()
    # smp's Dice smooth s is our 2s.
    _close(L.soft_dice_loss(x, t, smooth=1.0), smp_losses.DiceLoss("multiclass", smooth=0.5, eps=0.0)(x, t))
    _close(L.soft_jaccard_loss(x, t, smooth=1.0), smp_losses.JaccardLoss("multiclass", smooth=1.0, eps=0.0)(x, t))
    xb, tb = _binary()
    _close(
        L.soft_dice_loss(xb, tb, activation="sigmoid", smooth=0.5),
        smp_losses.DiceLoss("binary", smooth=0.25, eps=0.0)(xb, tb),
    )
    _close(
        L.soft_jaccard_loss(xb, tb, activation="sigmoid", smooth=0.5),
        smp_losses.JaccardLoss("binary", smooth=0.5, eps=0.0)(xb, tb),
    )


@pytest.mark.parametrize("ours, theirs, smp_smooth", [
    (L.soft_dice_loss, smp_losses.DiceLoss, 0.5), (L.soft_jaccard_loss, smp_losses.JaccardLoss, 1.0),
])
def test_a_class_absent_from_the_target_is_zeroed_by_smp(ours, theirs, smp_smooth):
    x, t = _multiclass(absent=2)
    per_class = ours(x, t, smooth=1.0, reduction="none").reshape(-1)  # one set per class: the batch
    assert per_class.shape == (4,) and per_class[2] > 0.5  # we score the absent class: it was predicted
    present = torch.bincount(t.flatten(), minlength=4) > 0
    smp = theirs("multiclass", smooth=smp_smooth, eps=0.0)(x, t)
    _close((per_class * present).mean(), smp)
    assert not torch.allclose(per_class.mean(), smp.to(per_class.dtype))


def test_tversky():
    x, t = _multiclass(seed=1)
    for alpha, beta in ((0.3, 0.7), (0.5, 0.5)):
        theirs = smp_losses.TverskyLoss("multiclass", alpha=alpha, beta=beta, smooth=1.0, eps=0.0)
        _close(L.tversky_loss(x, t, alpha=alpha, beta=beta, smooth=1.0), theirs(x, t))
    # gamma: smp raises the class mean, we raise each class's loss.
    per_class = L.tversky_loss(x, t, alpha=0.3, beta=0.7, smooth=1.0, reduction="none").reshape(-1)
    theirs = smp_losses.TverskyLoss("multiclass", alpha=0.3, beta=0.7, gamma=2.0, smooth=1.0, eps=0.0)(x, t)
    _close(per_class.mean() ** 2.0, theirs)
    _close(L.tversky_loss(x, t, alpha=0.3, beta=0.7, gamma=2.0, smooth=1.0), (per_class**2.0).mean())


def test_focal():
    xb, tb = _binary(seed=2)
    for alpha in (None, 0.25):
        theirs = smp_losses.FocalLoss("binary", alpha=alpha, gamma=2.0)(xb, tb)
        _close(L.focal_loss(xb, tb, activation="sigmoid", alpha=alpha, gamma=2.0), theirs)
    # Multiclass in smp: a sigmoid focal loss per class on its one-hot target, averaged.
    x, t = _multiclass(seed=2)
    one_hot = tF.one_hot(t, 4).movedim(-1, 1).double()
    _close(L.focal_loss(x, one_hot, activation="sigmoid", gamma=2.0), smp_losses.FocalLoss("multiclass", gamma=2.0)(x, t))


def test_lovasz():
    # float32: smp's Lovasz hinge mixes its gradient's dtype with float32 otherwise.
    xb, tb = (a.float() for a in _binary(seed=3))
    for per_image in (True, False):
        _close(L.lovasz_hinge(xb[:, 0], tb[:, 0], per_image=per_image), smp_losses.LovaszLoss("binary", per_image=per_image)(xb, tb))
    x, t = _multiclass(seed=3)
    x = x.float()
    for per_image in (True, False):
        _close(
            L.lovasz_softmax(x, t, per_image=per_image),
            smp_losses.LovaszLoss("multiclass", per_image=per_image)(x, t),
        )
    # ignore_index, where both drop the pixels.
    t_ignored = t.clone()
    t_ignored[:, :2] = 255
    _close(
        L.lovasz_softmax(x, t_ignored, ignore_index=255),
        smp_losses.LovaszLoss("multiclass", ignore_index=255)(x, t_ignored),
    )


def test_mcc_and_its_degenerate_case():
    xb, tb = _binary(seed=4)
    p = torch.sigmoid(xb)
    # smp's MCC takes probabilities and pools the batch; with a tiny eps on both sides they agree.
    _close(L.mcc_loss(xb, tb, activation="sigmoid", smooth=1e-12), smp_losses.MCCLoss(eps=1e-12)(p, tb))
    # All background, predicted all background: a perfect prediction. smp adds eps to each count.
    empty = torch.zeros(2, 1, 8, 8, dtype=torch.float64)
    theirs = smp_losses.MCCLoss(eps=1e-5)(empty, empty)
    _close(theirs, torch.tensor(0.5, dtype=torch.float64))
    ours = L.mcc_loss(torch.full_like(empty, -40.0), empty, activation="sigmoid")
    _close(ours, torch.tensor(1.0, dtype=torch.float64))


def test_soft_bce_and_soft_ce():
    xb, tb = _binary(seed=5)
    _close(L.weighted_bce_with_logits(xb, tb), smp_losses.SoftBCEWithLogitsLoss()(xb, tb))
    x, t = _multiclass(seed=5)
    _close(L.weighted_cross_entropy(x, t), smp_losses.SoftCrossEntropyLoss(smooth_factor=0.0)(x, t))
    _close(
        L.weighted_cross_entropy(x, t, label_smoothing=0.1),
        smp_losses.SoftCrossEntropyLoss(smooth_factor=0.1)(x, t),
    )
    # With ignored pixels smp averages over all of them (the ignored as 0), we over those kept.
    t[:, :3] = -100
    kept = (t != -100).double().mean()
    ours = L.weighted_cross_entropy(x, t, label_smoothing=0.1, ignore_index=-100)
    _close(ours * kept, smp_losses.SoftCrossEntropyLoss(smooth_factor=0.1, ignore_index=-100)(x, t))
