"""Evaluation graphs and inputs shared by the ONNX, TorchScript and runtime tests."""

import numpy as np
import torch

import unetweights.losses as L
import unetweights.metrics as M
from unetweights.evaluation import EvaluationGraph
from unetweights.weightmaps import signed_distance_map

IGNORE = -1
CLASS_WEIGHT = (0.5, 2.0, 1.0)


def softmax_graph() -> EvaluationGraph:
    """Every softmax-family loss and metric, with class weights and ignored pixels."""
    return EvaluationGraph(
        losses={
            "ce": L.WeightedCrossEntropyLoss(class_weight=CLASS_WEIGHT, ignore_index=IGNORE, label_smoothing=0.1),
            "focal": L.FocalLoss("softmax", gamma=2.0, class_weight=CLASS_WEIGHT, ignore_index=IGNORE),
            "dice_loss": L.SoftDiceLoss(per_image=True, class_weight=CLASS_WEIGHT, ignore_index=IGNORE),
            "tversky": L.TverskyLoss(alpha=0.3, beta=0.7, gamma=0.75, per_image=True, ignore_index=IGNORE),
            "jaccard": L.SoftJaccardLoss(per_image=True, class_weight=CLASS_WEIGHT, ignore_index=IGNORE),
            "generalized_dice": L.GeneralizedDiceLoss(per_image=True, ignore_index=IGNORE),
            "lovasz": L.LovaszSoftmaxLoss(per_image=True, ignore_index=IGNORE),
            "combined": L.CombinedLoss(
                [L.WeightedCrossEntropyLoss(ignore_index=IGNORE), L.LovaszSoftmaxLoss(classes="all", per_image=True, ignore_index=IGNORE)],
                [1.0, 0.5],
            ),
        },
        metrics={
            "dice": M.DiceScore(ignore_index=IGNORE),
            "dice_soft": M.DiceScore(hard=False, ignore_index=IGNORE),
            "iou": M.IoUScore(include_background=False, ignore_index=IGNORE, ignore_empty=True),
            "accuracy": M.PixelAccuracy(ignore_index=IGNORE),
            "overall_accuracy": M.PixelAccuracy(per_class=False, ignore_index=IGNORE),
        },
    )


def sigmoid_graph() -> EvaluationGraph:
    """The binary and regression losses and the sigmoid metrics, for one channel: (N, 1, *) binary targets."""
    return EvaluationGraph(
        losses={
            "bce": L.WeightedBCEWithLogitsLoss(pos_weight=torch.tensor([2.0]).view(1, 1, 1)),
            "bce_balance": L.WeightedBCEWithLogitsLoss(balance=(0.25, 0.75)),
            "focal": L.FocalLoss("sigmoid", alpha=0.25, gamma=2.0),
            "dice_loss": L.SoftDiceLoss("sigmoid", per_image=True, squared=True),
            "lovasz": L.LovaszHingeLoss(),
            "mse": L.WeightedMSELoss(),
            "huber": L.WeightedHuberLoss(delta=0.7),
        },
        metrics={
            "dice": M.DiceScore("sigmoid"),
            "iou": M.IoUScore("sigmoid", threshold=0.3),
            "accuracy": M.PixelAccuracy("sigmoid", per_class=False),
        },
    )


def probability_graph() -> EvaluationGraph:
    """The losses of a network that ends in a sigmoid: its ``logits`` input holds probabilities."""
    return EvaluationGraph(
        losses={
            "bce": L.WeightedBCELoss(pos_weight=torch.tensor([2.0]).view(1, 1, 1)),
            "bce_balance": L.WeightedBCELoss(balance=(0.25, 0.75)),
            "dice_loss": L.SoftDiceLoss("none", per_image=True),
        },
        metrics={"dice": M.DiceScore("none")},
    )


def softmax_inputs(shape, seed=0, weighted=True):
    """Logits (N, C, *), int64 targets with ~10% ignored pixels, and a weight map with zeros."""
    g = torch.Generator().manual_seed(seed)
    n, c, *spatial = shape
    logits = 3.0 * torch.randn(shape, generator=g)
    target = torch.randint(0, c, (n, *spatial), generator=g)
    target[torch.rand(target.shape, generator=g) < 0.1] = IGNORE
    if not weighted:
        return logits, target
    weight = 0.1 + 3.0 * torch.rand((n, *spatial), generator=g)
    weight[torch.rand(weight.shape, generator=g) < 0.1] = 0.0
    return logits, target, weight


def sigmoid_inputs(shape, seed=0):
    """Logits (N, C, *), a float 0/1 target of the same shape, and a weight map (N, *)."""
    g = torch.Generator().manual_seed(seed)
    n, c, *spatial = shape
    logits = 3.0 * torch.randn(shape, generator=g)
    target = (torch.rand(shape, generator=g) < 0.4).float()
    weight = 0.1 + 3.0 * torch.rand((n, *spatial), generator=g)
    return logits, target, weight


def probability_inputs(shape, seed=0):
    """sigmoid_inputs with the logits made probabilities, an exact 0 and 1 among them (the clamps)."""
    logits, target, weight = sigmoid_inputs(shape, seed)
    probabilities = torch.sigmoid(logits)
    probabilities.view(-1)[:2] = torch.tensor([0.0, 1.0])
    return probabilities, target, weight


def distance_graph(spacing) -> EvaluationGraph:
    """Generalized Dice with the losses on distances and skeletons, scoring the foreground classes."""
    return EvaluationGraph(
        losses={
            "generalized_dice": L.GeneralizedDiceLoss(per_image=True, ignore_index=IGNORE),
            "boundary": L.BoundaryLoss(include_background=False, spacing=spacing, ignore_index=IGNORE),
            "hausdorff_dt": L.HausdorffDTLoss(include_background=False, spacing=spacing, ignore_index=IGNORE),
            "cldice": L.ClDiceLoss(iterations=2, per_image=True, include_background=False, ignore_index=IGNORE),
            "mcc": L.MCCLoss(per_image=True, ignore_index=IGNORE),
        },
        metrics={"dice": M.DiceScore(ignore_index=IGNORE)},
    )


def distance_inputs(shape, spacing, seed=0):
    """softmax_inputs plus the target's signed distance map of the foreground classes, (N, C - 1, *),
    as the data pipeline precomputes it (ignored pixels in no class)."""
    logits, target, weight = softmax_inputs(shape, seed)
    classes = np.arange(1, shape[1]).reshape((1, -1) + (1,) * (len(shape) - 2))
    one_hot = target.numpy()[:, None] == classes
    distance = np.stack([signed_distance_map(image, spacing, channel_axis=0) for image in one_hot])
    return logits, target, weight, torch.from_numpy(distance)


def computed_distance_graph(spacing) -> EvaluationGraph:
    """The two losses that compute the target's distance map in the graph when none is given."""
    return EvaluationGraph(
        losses={
            "boundary": L.BoundaryLoss(include_background=False, spacing=spacing, ignore_index=IGNORE),
            "hausdorff_dt": L.HausdorffDTLoss(include_background=False, spacing=spacing, ignore_index=IGNORE),
        },
        metrics={"dice": M.DiceScore(ignore_index=IGNORE)},
    )
