"""Loss modules and input builders shared by the execution-mode and edge-case tests."""

from dataclasses import dataclass
from typing import Callable, Optional, Tuple

import torch
from torch import nn

import unetweights.losses as L

IGNORE = -1


def make_inputs(kind: str, shape: Tuple[int, ...], seed: int = 0, weighted: bool = True, dtype=torch.float32):
    """Non-uniform logits, a target of the given kind and a weight map with some zeros."""
    g = torch.Generator().manual_seed(seed)
    n, c, *spatial = shape
    x = 3.0 * torch.randn(shape, generator=g, dtype=dtype)
    if kind == "index":
        target = torch.randint(0, c, (n, *spatial), generator=g)
        target[torch.rand(target.shape, generator=g) < 0.15] = IGNORE
    elif kind == "index_clean":
        target = torch.randint(0, c, (n, *spatial), generator=g)
    elif kind == "prob":
        target = torch.softmax(2.0 * torch.randn(shape, generator=g, dtype=dtype), 1)
    elif kind == "binary":
        target = (torch.rand(shape, generator=g) < 0.4).to(dtype)
    elif kind == "probability":
        # A sigmoid's output, kept off 0 and 1 even in float16: the edge tests saturate it.
        x = torch.sigmoid(0.5 * x)
        target = (torch.rand(shape, generator=g) < 0.4).to(dtype)
    elif kind == "binary1":
        x = x[:, :1]
        target = (torch.rand(x.shape, generator=g) < 0.4).long()
        target[torch.rand(target.shape, generator=g) < 0.15] = IGNORE
    elif kind == "real":
        target = torch.randn(shape, generator=g, dtype=dtype)
    elif kind == "logprob":
        x = torch.log_softmax(x, 1)
        target = torch.softmax(torch.randn(shape, generator=g, dtype=dtype), 1)
    else:
        raise AssertionError(kind)
    weight = None
    if weighted:
        weight = 0.1 + 3.0 * torch.rand((n, *spatial), generator=g, dtype=dtype)
        weight[torch.rand(weight.shape, generator=g) < 0.1] = 0.0
    return x, target, weight


@dataclass
class Case:
    name: str
    build: Callable[[int], nn.Module]  # takes the number of spatial dims
    kind: str
    # False for a variant whose compiled graph is the same code as another case's with another
    # activation: inductor's compile (tens of seconds for the distance losses on a cold cache) is
    # paid once per loss, and the variant still runs scripted and exported.
    compile: bool = True


def _cw(values=(0.5, 2.0, 1.0)):
    return torch.tensor(values)


CASES = [
    Case("ce", lambda rank: L.WeightedCrossEntropyLoss(class_weight=_cw(), ignore_index=IGNORE, label_smoothing=0.1), "index"),
    Case("ce_prob", lambda rank: L.WeightedCrossEntropyLoss(class_weight=_cw(), label_smoothing=0.05), "prob"),
    Case("nll", lambda rank: L.WeightedNLLLoss(class_weight=_cw(), ignore_index=IGNORE), "index"),
    Case("bce_pos", lambda rank: L.WeightedBCEWithLogitsLoss(pos_weight=torch.tensor([2.0, 1.0, 0.5]).view(3, *[1] * rank)), "binary"),
    Case("bce_balance", lambda rank: L.WeightedBCEWithLogitsLoss(balance=(0.25, 0.75)), "binary"),
    Case("bce_prob", lambda rank: L.WeightedBCELoss(pos_weight=torch.tensor([2.0, 1.0, 0.5]).view(3, *[1] * rank)), "probability"),
    Case("focal_sigmoid", lambda rank: L.FocalLoss("sigmoid", alpha=0.25, gamma=2.0), "binary"),
    Case("focal_softmax", lambda rank: L.FocalLoss("softmax", gamma=1.5, class_weight=_cw(), ignore_index=IGNORE), "index"),
    Case("dice", lambda rank: L.SoftDiceLoss(per_image=True, class_weight=_cw(), ignore_index=IGNORE), "index"),
    Case("dice_sigmoid", lambda rank: L.SoftDiceLoss("sigmoid", squared=True, include_background=False, smooth=0.0), "binary"),
    Case("tversky", lambda rank: L.TverskyLoss(alpha=0.3, beta=0.7, gamma=0.75, ignore_index=IGNORE), "index"),
    Case("jaccard", lambda rank: L.SoftJaccardLoss(per_image=True, class_weight=_cw(), ignore_index=IGNORE), "index"),
    Case("generalized_dice", lambda rank: L.GeneralizedDiceLoss(per_image=True, ignore_index=IGNORE), "index"),
    Case("mcc", lambda rank: L.MCCLoss(per_image=True, class_weight=_cw(), ignore_index=IGNORE), "index"),
    Case("mcc_sigmoid", lambda rank: L.MCCLoss("sigmoid", include_background=False, smooth=0.0), "binary", compile=False),
    Case("boundary", lambda rank: L.BoundaryLoss(include_background=False, spacing=[1.5, 0.5, 1.0][:rank], ignore_index=IGNORE), "index"),
    Case("boundary_sigmoid", lambda rank: L.BoundaryLoss("sigmoid"), "binary", compile=False),
    Case("hausdorff_dt", lambda rank: L.HausdorffDTLoss(ignore_index=IGNORE, reduction="sum"), "index"),
    Case("hausdorff_dt_sigmoid", lambda rank: L.HausdorffDTLoss("sigmoid", alpha=1.0, spacing=[2.0] * rank), "binary", compile=False),
    Case("cldice", lambda rank: L.ClDiceLoss(iterations=1, per_image=True, ignore_index=IGNORE), "index"),
    Case("cldice_sigmoid", lambda rank: L.ClDiceLoss("sigmoid", iterations=1, smooth=0.0), "binary", compile=False),
    Case("skeleton_recall", lambda rank: L.SkeletonRecallLoss(per_image=True, ignore_index=IGNORE), "index"),
    Case("skeleton_recall_sigmoid", lambda rank: L.SkeletonRecallLoss("sigmoid", smooth=0.0), "binary", compile=False),
    Case("lovasz_hinge", lambda rank: L.LovaszHingeLoss(ignore_index=IGNORE), "binary1"),
    Case("lovasz_hinge_margin", lambda rank: L.LovaszHingeLoss(per_image=False, weight_mode="margin", ignore_index=IGNORE), "binary1"),
    Case("lovasz_softmax", lambda rank: L.LovaszSoftmaxLoss(per_image=True, ignore_index=IGNORE), "index"),
    Case("lovasz_softmax_all", lambda rank: L.LovaszSoftmaxLoss(classes="all", ignore_index=IGNORE), "index"),
    Case("mse", lambda rank: L.WeightedMSELoss(), "real"),
    Case("l1", lambda rank: L.WeightedL1Loss(reduction="sum"), "real"),
    Case("smooth_l1", lambda rank: L.WeightedSmoothL1Loss(beta=0.5), "real"),
    Case("huber", lambda rank: L.WeightedHuberLoss(delta=0.7), "real"),
    Case("kl_div", lambda rank: L.WeightedKLDivLoss("batchmean"), "logprob"),
    Case(
        "combined",
        lambda rank: L.CombinedLoss(
            [L.WeightedCrossEntropyLoss(ignore_index=IGNORE), L.SoftDiceLoss(ignore_index=IGNORE)], [1.0, 0.5]
        ),
        "index",
    ),
]

# First shape, then a shape never seen before: batch 1 and odd, non-square sizes.
SHAPES = {
    "2d": ((2, 3, 6, 8), (1, 3, 5, 7)),
    "3d": ((2, 3, 4, 6, 5), (1, 3, 3, 5, 7)),
}


def loss_and_grad(fn: Callable, x: torch.Tensor, target: torch.Tensor, weight: Optional[torch.Tensor]):
    """The loss (summed if it is not a scalar) and its gradient with respect to ``x``."""
    x = x.detach().clone().requires_grad_(True)
    value = fn(x, target, weight)
    value.sum().backward()
    return value.detach(), x.grad
