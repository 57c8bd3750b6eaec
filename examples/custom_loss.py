"""Compose a new weight-map loss from the library's parts, script it, and put it in an exported graph.

The loss below mixes a class-weighted cross-entropy with a per-image soft Dice on the foreground
classes and a Tversky term that punishes missed foreground more than false alarms. It is written
the way the library's own losses are (typed functional calls, no data-dependent Python control
flow), so it runs eagerly, under torch.jit.script (and from C++), and exports to ONNX.

    python examples/custom_loss.py
"""

import io
from pathlib import Path
import warnings
from typing import List, Optional

import torch
from torch import Tensor, nn

from unetweights import EvaluationGraph, soft_dice_loss, tversky_loss, weighted_cross_entropy, with_reduction
from unetweights.export import to_onnx
from unetweights.metrics import DiceScore


class BoundaryAwareLoss(nn.Module):
    """ce_weight·CE(w) + dice_weight·Dice(w, foreground) + tversky_weight·Tversky(w, α=0.3, β=0.7)."""

    def __init__(self, class_weight: List[float], ce_weight: float = 1.0, dice_weight: float = 0.5, tversky_weight: float = 0.5):
        super().__init__()
        self.register_buffer("class_weight", torch.tensor(class_weight))
        self.ce_weight = ce_weight
        self.dice_weight = dice_weight
        self.tversky_weight = tversky_weight
        # The library's losses take reduction="per_image" too; keep the option so that
        # with_reduction() can turn this loss into one value per image for an evaluation graph.
        self.reduction = "mean"
        self.per_image = True

    def forward(self, input: Tensor, target: Tensor, weight: Optional[Tensor] = None) -> Tensor:
        ce = weighted_cross_entropy(input, target, weight, class_weight=self.class_weight, reduction=self.reduction)
        dice = soft_dice_loss(input, target, weight, per_image=True, include_background=False, reduction=self.reduction)
        tversky = tversky_loss(
            input, target, weight, alpha=0.3, beta=0.7, per_image=True, include_background=False, reduction=self.reduction
        )
        return self.ce_weight * ce + self.dice_weight * dice + self.tversky_weight * tversky


def main() -> None:
    torch.manual_seed(0)
    logits = torch.randn(4, 3, 64, 48, requires_grad=True)
    target = torch.randint(0, 3, (4, 64, 48))
    weight = 1.0 + 9.0 * torch.rand(4, 64, 48)
    loss = BoundaryAwareLoss(class_weight=[0.5, 1.0, 2.0])

    value = loss(logits, target, weight)
    (grad,) = torch.autograd.grad(value, logits)

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.\w+` is deprecated")
        scripted = torch.jit.script(loss)
        buffer = io.BytesIO()
        torch.jit.save(scripted, buffer)
        buffer.seek(0)
        reloaded = torch.jit.load(buffer)
    scripted_value = reloaded(logits, target, weight)
    (scripted_grad,) = torch.autograd.grad(scripted_value, logits)
    print(f"eager {value.item():.6f}, scripted and reloaded {scripted_value.item():.6f}, "
          f"max gradient difference {float((grad - scripted_grad).abs().max()):.2e}")

    graph = EvaluationGraph(losses={"boundary_aware": loss}, metrics={"dice": DiceScore(include_background=False)})
    per_image = with_reduction(loss, "per_image")(logits, target, weight)
    Path("example_out").mkdir(exist_ok=True)
    report = to_onnx(graph, "example_out/custom_loss.onnx", (logits.detach()[:2], target[:2], weight[:2]))
    print(report)
    print("per-image loss in torch:", [round(v, 6) for v in per_image.tolist()])


if __name__ == "__main__":
    main()
