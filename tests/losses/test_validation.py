"""Bad input raises an error that names the argument, in eager mode and from a scripted module."""

import warnings
from typing import Optional

import pytest
import torch
from torch import nn

import unetweights.losses as L

ERRORS = (ValueError, torch.jit.Error)


def _scripted(module):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.\w+` is deprecated")
        return torch.jit.script(module)


def _good():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 4, 5, generator=g)
    t = torch.randint(0, 3, (2, 4, 5), generator=g)
    w = torch.rand(2, 4, 5, generator=g)
    return x, t, w


def _nan_weight():
    x, t, w = _good()
    w[0, 1, 1] = float("nan")
    return x, t, w


def _negative_weight():
    x, t, w = _good()
    w[1, 0, 2] = -0.5
    return x, t, w


def _out_of_range():
    x, t, w = _good()
    t[0, 0, 0] = 3
    return x, t, w


def _negative_class():
    x, t, w = _good()
    t[1, 2, 2] = -2
    return x, t, w


def _float_target():
    x, t, w = _good()
    return x, t.float(), w


def _target_shape():
    x, t, w = _good()
    return x, t[:, :3], w


def _weight_shape():
    x, t, w = _good()
    return x, t, w[:, :, :4]


def _weight_batch():
    x, t, w = _good()
    return x, t, w[:1].expand(3, 4, 5).contiguous()


def _binary():
    x, _, w = _good()
    return x, (torch.rand(2, 3, 4, 5) > 0.5).float(), w


def _binary_target_shape():
    x, t, w = _binary()
    return x, t[:, :2], w


def _binary_out_of_range():
    x, t, w = _binary()
    t[0, 0, 0, 0] = 2.0
    return x, t, w


INDEX_LOSSES = [
    ("ce", lambda: L.WeightedCrossEntropyLoss()),
    ("nll", lambda: L.WeightedNLLLoss()),
    ("focal_softmax", lambda: L.FocalLoss("softmax")),
    ("dice", lambda: L.SoftDiceLoss()),
    ("tversky", lambda: L.TverskyLoss()),
    ("lovasz_softmax", lambda: L.LovaszSoftmaxLoss()),
    ("jaccard", lambda: L.SoftJaccardLoss()),
    ("generalized_dice", lambda: L.GeneralizedDiceLoss()),
    ("mcc", lambda: L.MCCLoss()),
    ("boundary", lambda: L.BoundaryLoss()),
    ("hausdorff_dt", lambda: L.HausdorffDTLoss()),
    ("cldice", lambda: L.ClDiceLoss()),
    ("skeleton_recall", lambda: L.SkeletonRecallLoss()),
]

INDEX_CASES = [
    ("nan weight", _nan_weight, "weight: expected finite values"),
    ("negative weight", _negative_weight, "weight: expected non-negative values"),
    ("class index too large", _out_of_range, r"target: class indices must lie in \[0, 3\)"),
    ("negative class index", _negative_class, r"target: class indices must lie in \[0, 3\)"),
    ("float target", _float_target, "target: expected integer class indices"),
    ("target shape", _target_shape, r"target: expected shape \(N, \*\) = \[2, 4, 5\], got \[2, 3, 5\]"),
    ("weight shape", _weight_shape, r"weight: expected shape"),
    ("weight batch", _weight_batch, r"weight: expected shape"),
]


# The second argument of a loss is its target, but the skeleton recall loss calls it ``skeleton``.
TARGET_NAMES = {"skeleton_recall": "skeleton"}


@pytest.mark.parametrize("scripted", (False, True), ids=("eager", "script"))
@pytest.mark.parametrize("make,match", [c[1:] for c in INDEX_CASES], ids=[c[0] for c in INDEX_CASES])
@pytest.mark.parametrize("name,build", INDEX_LOSSES, ids=[b[0] for b in INDEX_LOSSES])
def test_index_target_losses_reject(name, build, make, match, scripted):
    module = build()
    if scripted:
        module = _scripted(module)
    with pytest.raises(ERRORS, match=match.replace("target:", f"{TARGET_NAMES.get(name, 'target')}:")):
        module(*make())


class _OnSigmoid(nn.Module):
    """A loss on probabilities, fed the sigmoid of the logits these cases build."""

    def __init__(self, loss: nn.Module) -> None:
        super().__init__()
        self.loss = loss

    def forward(self, input: torch.Tensor, target: torch.Tensor, weight: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.loss(torch.sigmoid(input), target, weight)


BINARY_LOSSES = [
    ("bce", lambda: L.WeightedBCEWithLogitsLoss()),
    ("bce_balance", lambda: L.WeightedBCEWithLogitsLoss(balance=(0.5, 0.5))),
    ("bce_prob", lambda: _OnSigmoid(L.WeightedBCELoss())),
    ("bce_prob_balance", lambda: _OnSigmoid(L.WeightedBCELoss(balance=(0.5, 0.5)))),
    ("focal_sigmoid", lambda: L.FocalLoss("sigmoid")),
]

BINARY_CASES = [
    ("target shape", _binary_target_shape, r"target: expected shape input.shape = \[2, 3, 4, 5\], got \[2, 2, 4, 5\]"),
    ("target range", _binary_out_of_range, r"target: expected binary targets or probabilities in \[0, 1\]"),
    ("nan weight", lambda: (_binary()[0], _binary()[1], _nan_weight()[2]), "weight: expected finite values"),
    ("negative weight", lambda: (_binary()[0], _binary()[1], _negative_weight()[2]), "weight: expected non-negative"),
    ("weight shape", lambda: (_binary()[0], _binary()[1], _weight_shape()[2]), "weight: expected shape"),
]


@pytest.mark.parametrize("scripted", (False, True), ids=("eager", "script"))
@pytest.mark.parametrize("make,match", [c[1:] for c in BINARY_CASES], ids=[c[0] for c in BINARY_CASES])
@pytest.mark.parametrize("build", [b[1] for b in BINARY_LOSSES], ids=[b[0] for b in BINARY_LOSSES])
def test_binary_losses_reject(build, make, match, scripted):
    module = build()
    if scripted:
        module = _scripted(module)
    with pytest.raises(ERRORS, match=match):
        module(*make())


REGRESSION = [L.WeightedMSELoss, L.WeightedL1Loss, L.WeightedHuberLoss, L.WeightedSmoothL1Loss, L.WeightedKLDivLoss]


@pytest.mark.parametrize("scripted", (False, True), ids=("eager", "script"))
@pytest.mark.parametrize("cls", REGRESSION, ids=lambda c: c.__name__)
def test_regression_losses_reject(cls, scripted):
    module = cls()
    if scripted:
        module = _scripted(module)
    x = torch.randn(2, 3, 4, 5)
    with pytest.raises(ERRORS, match=r"target: expected shape input.shape"):
        module(x, torch.randn(2, 3, 4, 4))
    with pytest.raises(ERRORS, match="target: expected a floating-point tensor"):
        module(x, torch.ones(2, 3, 4, 5, dtype=torch.long))
    with pytest.raises(ERRORS, match="weight: expected non-negative"):
        module(x, x, -torch.ones(2, 4, 5))
    with pytest.raises(ERRORS, match="weight: expected shape"):
        module(x, x, torch.ones(2, 5, 4))


@pytest.mark.parametrize("scripted", (False, True), ids=("eager", "script"))
def test_lovasz_hinge_rejects(scripted):
    module = L.LovaszHingeLoss(ignore_index=255)
    if scripted:
        module = _scripted(module)
    x = torch.randn(2, 1, 4, 5)
    t = (torch.rand(2, 1, 4, 5) > 0.5).long()
    module(x, t, torch.rand(2, 4, 5))
    with pytest.raises(ERRORS, match="target: expected 0/1 labels or ignore_index=255"):
        module(x, t * 2)
    with pytest.raises(ERRORS, match=r"target: expected shape input.shape"):
        module(x, t[:, 0])
    with pytest.raises(ERRORS, match="weight: expected finite values"):
        module(x, t, torch.full((2, 4, 5), float("nan")))


def test_class_weight_length():
    x, t, w = _good()
    for fn in (L.weighted_cross_entropy, L.weighted_nll_loss, L.soft_dice_loss, L.tversky_loss):
        with pytest.raises(ValueError, match=r"class_weight: expected shape \(C,\) = \[3\], got \[2\]"):
            fn(x, t, w, class_weight=torch.ones(2))
    for module in (L.WeightedCrossEntropyLoss(class_weight=torch.ones(4)), L.SoftDiceLoss(class_weight=torch.ones(4))):
        with pytest.raises(ERRORS, match=r"class_weight: expected shape \(C,\) = \[3\], got \[4\]"):
            _scripted(module)(x, t, w)
    with pytest.raises(ValueError, match="class_weight: expected non-negative"):
        L.weighted_cross_entropy(x, t, w, class_weight=torch.tensor([1.0, -1.0, 1.0]))
    with pytest.raises(ValueError, match="class_weight: expected a floating-point tensor"):
        L.weighted_cross_entropy(x, t, w, class_weight=torch.ones(3, dtype=torch.long))


FUNCTIONALS = [
    lambda r, x, t, w: L.weighted_cross_entropy(x, t, w, reduction=r),
    lambda r, x, t, w: L.weighted_nll_loss(x, t, w, reduction=r),
    lambda r, x, t, w: L.focal_loss(x, t, w, "softmax", reduction=r),
    lambda r, x, t, w: L.soft_dice_loss(x, t, w, reduction=r),
    lambda r, x, t, w: L.tversky_loss(x, t, w, reduction=r),
    lambda r, x, t, w: L.lovasz_softmax(x, t, w, reduction=r),
    lambda r, x, t, w: L.mcc_loss(x, t, w, reduction=r),
    lambda r, x, t, w: L.boundary_loss(x, t, w, reduction=r),
    lambda r, x, t, w: L.hausdorff_dt_loss(x, t, w, reduction=r),
    lambda r, x, t, w: L.cldice_loss(x, t, w, reduction=r),
    lambda r, x, t, w: L.skeleton_recall_loss(x, t, w, reduction=r),
    lambda r, x, t, w: L.weighted_bce_with_logits(x, (t.unsqueeze(1) == 1).float().expand_as(x), w, reduction=r),
    lambda r, x, t, w: L.weighted_binary_cross_entropy(torch.sigmoid(x), (t.unsqueeze(1) == 1).float().expand_as(x), w, reduction=r),
    lambda r, x, t, w: L.weighted_mse_loss(x, x, w, reduction=r),
    lambda r, x, t, w: L.weighted_kl_div(x, x, w, reduction=r),
]


@pytest.mark.parametrize("fn", FUNCTIONALS)
def test_unknown_reduction(fn):
    with pytest.raises(ValueError, match="reduction: expected 'none', 'mean'.* got 'avg'"):
        fn("avg", *_good())


@pytest.mark.parametrize(
    "build",
    [
        lambda: L.WeightedCrossEntropyLoss(reduction="avg"),
        lambda: L.WeightedBCEWithLogitsLoss(reduction="avg"),
        lambda: L.WeightedBCELoss(reduction="avg"),
        lambda: L.FocalLoss(reduction="avg"),
        lambda: L.SoftDiceLoss(reduction="avg"),
        lambda: L.TverskyLoss(reduction="avg"),
        lambda: L.LovaszHingeLoss(reduction="avg"),
        lambda: L.LovaszSoftmaxLoss(reduction="avg"),
        lambda: L.MCCLoss(reduction="avg"),
        lambda: L.BoundaryLoss(reduction="avg"),
        lambda: L.HausdorffDTLoss(reduction="avg"),
        lambda: L.ClDiceLoss(reduction="avg"),
        lambda: L.SkeletonRecallLoss(reduction="avg"),
        lambda: L.WeightedMSELoss(reduction="avg"),
        lambda: L.WeightedKLDivLoss(reduction="avg"),
    ],
)
def test_unknown_reduction_at_construction(build):
    with pytest.raises(ValueError, match="reduction: expected .* got 'avg'"):
        build()


def test_unknown_activation_and_modes():
    x, t, w = _good()
    with pytest.raises(ValueError, match="activation: expected 'softmax', 'sigmoid' or 'none', got 'relu'"):
        L.soft_dice_loss(x, t, w, activation="relu")
    with pytest.raises(ValueError, match="activation: expected 'softmax', 'sigmoid' or 'none', got 'relu'"):
        L.SoftDiceLoss(activation="relu")
    with pytest.raises(ValueError, match="activation: expected 'softmax', 'sigmoid' or 'none', got 'tanh'"):
        L.tversky_loss(x, t, w, activation="tanh")
    with pytest.raises(ValueError, match="activation: expected 'sigmoid' or 'softmax', got 'relu'"):
        L.focal_loss(x, t, w, activation="relu")
    with pytest.raises(ValueError, match="activation: expected 'sigmoid' or 'softmax', got 'relu'"):
        L.FocalLoss(activation="relu")
    with pytest.raises(ValueError, match="classes: expected 'present' or 'all', got 'some'"):
        L.lovasz_softmax(x, t, w, classes="some")
    with pytest.raises(ValueError, match="weight_mode: expected 'jaccard' or 'margin', got 'scale'"):
        L.LovaszHingeLoss(weight_mode="scale")
    with pytest.raises(ERRORS, match="activation: expected 'softmax', 'sigmoid' or 'none', got 'relu'"):
        module = L.SoftDiceLoss()
        module.activation = "relu"
        _scripted(module)(x, t, w)


def test_option_ranges():
    x, t, w = _good()
    b = (torch.rand(2, 3, 4, 5) > 0.5).float()
    with pytest.raises(ValueError, match="label_smoothing: expected a value in \\[0, 1\\], got 1.5"):
        L.weighted_cross_entropy(x, t, w, label_smoothing=1.5)
    with pytest.raises(ValueError, match="smooth: expected a finite value >= 0"):
        L.soft_dice_loss(x, t, w, smooth=-1.0)
    with pytest.raises(ValueError, match="gamma: expected a finite value >= 0"):
        L.focal_loss(x, b, w, gamma=-1.0)
    with pytest.raises(ValueError, match="alpha: expected a value in \\[0, 1\\]"):
        L.focal_loss(x, b, w, alpha=1.5)
    with pytest.raises(ValueError, match="alpha: expected a finite value >= 0, got -0.1"):
        L.tversky_loss(x, t, w, alpha=-0.1)
    with pytest.raises(ValueError, match="gamma: expected a finite value > 0"):
        L.tversky_loss(x, t, w, gamma=0.0)
    with pytest.raises(ValueError, match="balance: expected finite, non-negative"):
        L.weighted_bce_with_logits(x, b, w, balance=(-1.0, 1.0))
    with pytest.raises(ValueError, match="pos_weight: shape \\[4\\] does not broadcast"):
        L.weighted_bce_with_logits(x, b, w, pos_weight=torch.ones(4))
    with pytest.raises(ValueError, match="balance: expected finite, non-negative"):
        L.WeightedBCELoss(balance=(1.0, -1.0))
    with pytest.raises(ValueError, match="pos_weight: shape \\[4\\] does not broadcast"):
        L.weighted_binary_cross_entropy(torch.sigmoid(x), b, w, pos_weight=torch.ones(4))
    with pytest.raises(ValueError, match="delta: expected a finite value > 0"):
        L.WeightedHuberLoss(delta=0.0)
    with pytest.raises(ValueError, match="beta: expected a finite value >= 0"):
        L.weighted_smooth_l1_loss(x, x, w, beta=-1.0)
    with pytest.raises(ValueError, match="include_background: False leaves no class"):
        L.soft_dice_loss(x[:, :1], b[:, :1], w, activation="sigmoid", include_background=False)
    with pytest.raises(ValueError, match="target: activation='sigmoid' needs a \\(N, C, \\*\\)"):
        L.soft_dice_loss(x, t, w, activation="sigmoid")
    with pytest.raises(ValueError, match="class_weight: only the softmax focal loss"):
        L.focal_loss(x, b, w, class_weight=torch.ones(3))


def test_input_rank_and_empty():
    with pytest.raises(ValueError, match=r"input: expected shape \(N, C, \*\), got \[5\]"):
        L.weighted_cross_entropy(torch.randn(5), torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="input: expected a non-empty tensor"):
        L.weighted_cross_entropy(torch.randn(0, 3, 4), torch.zeros(0, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="input: expected a non-empty tensor"):
        L.weighted_mse_loss(torch.randn(0, 3), torch.randn(0, 3))
    with pytest.raises(ValueError, match="input: expected a floating-point tensor"):
        L.weighted_cross_entropy(torch.ones(2, 3, 4, dtype=torch.long), torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="input: expected a floating-point tensor"):
        L.weighted_binary_cross_entropy(torch.ones(2, 3, dtype=torch.long), torch.ones(2, 3))
    with pytest.raises(ValueError, match="input: expected a non-empty tensor"):
        L.weighted_binary_cross_entropy(torch.ones(0, 3), torch.ones(0, 3))


def test_composition_rejects():
    with pytest.raises(ValueError, match="losses: expected at least one loss module"):
        L.CombinedLoss([])
    with pytest.raises(TypeError, match=r"losses\[1\]: expected an nn.Module, got function"):
        L.CombinedLoss([L.WeightedMSELoss(), L.weighted_mse_loss])
    with pytest.raises(ValueError, match="weights: expected 2 values, got 1"):
        L.CombinedLoss([L.WeightedMSELoss(), L.WeightedL1Loss()], [1.0])
    with pytest.raises(ValueError, match="weights: expected finite, non-negative values"):
        L.CombinedLoss([L.WeightedMSELoss()], [float("nan")])
    with pytest.raises(ValueError, match="weight_mode: expected 'area' or 'nearest'"):
        L.DeepSupervisionLoss(L.WeightedMSELoss(), weight_mode="bilinear")
    loss = L.DeepSupervisionLoss(L.WeightedCrossEntropyLoss(), [1.0, 0.5])
    x, t, w = _good()
    with pytest.raises(ValueError, match="inputs: expected 2 outputs"):
        loss([x], t, w)
    with pytest.raises(ValueError, match="inputs: expected at least one output"):
        loss([], t, w)


def test_module_options_accept_sequences_and_are_checked():
    x, t, w = _good()
    from_list = L.WeightedCrossEntropyLoss(class_weight=[0.5, 2.0, 1.0])
    from_tensor = L.WeightedCrossEntropyLoss(class_weight=torch.tensor([0.5, 2.0, 1.0]))
    torch.testing.assert_close(from_list(x, t, w), from_tensor(x, t, w))
    assert "class_weight" in dict(from_list.named_buffers())
    with pytest.raises(ValueError, match="class_weight: expected non-negative values"):
        L.SoftDiceLoss(class_weight=[1.0, -1.0, 1.0])
    with pytest.raises(ValueError, match="pos_weight: expected finite values"):
        L.WeightedBCEWithLogitsLoss(pos_weight=[float("nan")])
    with pytest.raises(ValueError, match="pos_weight: expected non-negative values"):
        L.WeightedBCELoss(pos_weight=[-1.0])
    with pytest.raises(ValueError, match="alpha: expected a finite value >= 0 for the softmax form"):
        L.focal_loss(x, t, w, "softmax", alpha=-1.0)


def test_weight_with_a_dim_missing_only_where_a_channel_dim_is():
    x, t, w = _good()
    with pytest.raises(ValueError, match=r"weight: expected shape \[2, 4, 5\]"):
        L.weighted_cross_entropy(x, t, w[:, 0])  # (N, W) for an (N, H, W) target
    with pytest.raises(ValueError, match=r"weight: expected shape \[2, 4, 5\]"):
        L.weighted_mse_loss(x[:, 0], x[:, 0], w[:, 0])  # no channel dim to skip in (N, H, W)
    b = (torch.rand(2, 3, 4, 5) > 0.5).float()
    torch.testing.assert_close(
        L.weighted_bce_with_logits(x, b, w), L.weighted_bce_with_logits(x, b, w.unsqueeze(1).expand(2, 3, 4, 5))
    )
