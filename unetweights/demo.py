"""The whole story on generated data: mask → weight map → scripted-loss training → ONNX metrics.

:func:`run_demo` trains the same small U-Net twice on generated images of touching cells, once
with the U-Net weight map in a ``torch.jit.script``-ed weighted cross-entropy and once without a
map, then scores both on held-out images with the exported evaluation graph under onnxruntime,
and adds object-level scores (:mod:`unetweights.matching`: the object F1 of the foreground's
connected components at IoU >= 0.5 from the counts summed over the held-out images, and the share
of cells merged with a neighbour), which is what the border weights are for. Weight maps are computed in DataLoader workers through
:class:`~unetweights.data.WeightMapDataset` and cached on disk. Used by ``unetweights demo`` and
``examples/train_unet.py``.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np
import torch
from torch import Tensor, nn

from ._files import check_writable_folder
from .matching import ObjectMatching, match_instances

TORCHSCRIPT_DEPRECATION = r"`torch\.jit\.\w+` is deprecated"


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU(inplace=True)
    )


class SmallUNet(nn.Module):
    """A two-level U-Net (Ronneberger et al. 2015, scaled down): 1 input channel, 2 classes.

    Spatial sizes must be divisible by 4.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 2, width: int = 8) -> None:
        super().__init__()
        self.down0 = _block(in_channels, width)
        self.down1 = _block(width, 2 * width)
        self.bottom = _block(2 * width, 4 * width)
        self.up1 = nn.ConvTranspose2d(4 * width, 2 * width, 2, stride=2)
        self.merge1 = _block(4 * width, 2 * width)
        self.up0 = nn.ConvTranspose2d(2 * width, width, 2, stride=2)
        self.merge0 = _block(2 * width, width)
        self.head = nn.Conv2d(width, num_classes, 1)

    def forward(self, x: Tensor) -> Tensor:
        s0 = self.down0(x)
        s1 = self.down1(nn.functional.max_pool2d(s0, 2))
        b = self.bottom(nn.functional.max_pool2d(s1, 2))
        u1 = self.merge1(torch.cat([self.up1(b), s1], 1))
        u0 = self.merge0(torch.cat([self.up0(u1), s0], 1))
        return self.head(u0)


def object_scores(predicted: np.ndarray, labels: np.ndarray, iou: float = 0.5) -> Dict[str, float]:
    """Object-level agreement of a foreground prediction with instance labels, by
    :func:`unetweights.matching.match_instances`.

    The predicted foreground (``predicted > 0``) is split into connected components
    (4-connectivity), and a true object is found when a component matches it one-to-one with IoU
    >= ``iou``. Returns precision, recall and F1 over objects, and "merged": the share of true
    objects that lie (at least half) inside a component holding another true object. A share with
    nothing to count (no components for precision, no true objects for recall and "merged", neither
    for F1) is NaN. (Before the matching module: IoU > ``iou`` rather than >=, 1.0 for precision and
    recall with nothing to count, and "merged" counted from each object's best component.)
    """
    scores = match_instances(labels, np.asarray(predicted) > 0, iou, semantic=True)
    merged = scores.merged / scores.n_true if scores.n_true else math.nan
    return {"precision": float(scores.precision[0]), "recall": float(scores.recall[0]), "f1": float(scores.f1[0]),
            "merged": merged}


# The figures run_demo draws into its output folder (with matplotlib, the ``plot`` extra).
FIGURES = ("weight_map.png", "predictions.png", "loss_curve.png")


@dataclass
class DemoResult:
    """Per-model losses, metrics and timings from :func:`run_demo`.

    ``files`` are the figures written; ``figures_skipped`` says why none were (matplotlib
    missing), and is empty when they were.
    """

    curves: Dict[str, List[float]] = field(default_factory=dict)
    metrics: Dict[str, Dict[str, float]] = field(default_factory=dict)
    provider: str = ""
    seconds: Dict[str, float] = field(default_factory=dict)
    files: List[Path] = field(default_factory=list)
    figures_skipped: str = ""

    def table(self) -> str:
        columns = [
            ("weighted CE", "ce"),
            ("Dice fg", "dice"),
            ("IoU fg", "iou"),
            ("object F1", "f1"),
            ("merged", "merged"),
        ]
        width = max(len(name) for name in self.metrics) + 2
        lines = [f"{'model':<{width}}" + "".join(f"{title:>13}" for title, _ in columns)]
        for name, values in self.metrics.items():
            # A score is NaN only where no held-out image had anything to score for it.
            lines.append(
                f"{name:<{width}}"
                + "".join("n/a".rjust(13) if np.isnan(values[key]) else f"{values[key]:13.3f}" for _, key in columns)
            )
        return "\n".join(lines)


def _augment(generator: torch.Generator, crop: int, *tensors: Tensor) -> List[Tensor]:
    """The same random crop, flips and transpose for image, target and weight (spatial dims last)."""
    height, width = tensors[0].shape[-2:]
    top = int(torch.randint(0, height - crop + 1, (1,), generator=generator))
    left = int(torch.randint(0, width - crop + 1, (1,), generator=generator))
    flips = torch.randint(0, 2, (3,), generator=generator).tolist()
    out = []
    for t in tensors:
        t = t[..., top : top + crop, left : left + crop]
        if flips[0]:
            t = t.flip(-1)
        if flips[1]:
            t = t.flip(-2)
        if flips[2]:
            t = t.transpose(-1, -2)
        out.append(t)
    return out


def train(
    model: nn.Module,
    loader,
    criterion: Callable[[Tensor, Tensor, Optional[Tensor]], Tensor],
    steps: int,
    use_weight: bool,
    seed: int = 0,
    lr: float = 3e-3,
    crop: int = 64,
) -> List[float]:
    """Train ``model`` for ``steps`` Adam steps on (image, target, weight) batches; return the losses.

    Each batch is cropped to ``crop`` × ``crop`` at a random place and flipped at random, the
    same way for image, target and weight.
    """
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    losses: List[float] = []
    model.train()
    while len(losses) < steps:
        for image, target, weight in loader:
            image, target, weight = _augment(generator, crop, image.float(), target.long(), weight.float())
            loss = criterion(model(image), target, weight if use_weight else None)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(loss.item())
            if len(losses) == steps:
                break
    return losses


def run_demo(
    out: Path,
    steps: int = 300,
    n_train: int = 24,
    n_test: int = 8,
    size: int = 96,
    workers: int = 2,
    seed: int = 0,
    w0: float = 10.0,
    sigma: float = 3.0,
    providers: str = "auto",
    log: Callable[[str], None] = print,
) -> DemoResult:
    """Run the demo and write its figures and graph into ``out``; see the module docstring.

    ``steps``, ``n_train``, ``n_test`` and ``size`` must be at least 1 (``size`` a multiple of 4),
    ``workers`` at least 0 (0 computes the maps in this process), and ``out`` a writable folder or
    a path where one can be created; ValueError naming the argument otherwise, before any work.
    Training crops are 64 pixels square, or the whole image when ``size`` is smaller. The figures
    need matplotlib (the ``plot`` extra); without it the demo still trains and scores both
    models, draws no figure, and says why in ``figures_skipped`` (and in the log, at the start).
    """
    from torch.utils.data import DataLoader

    from .data import WeightMapDataset
    from .evaluation import EvaluationGraph
    from .export import to_onnx
    from .losses import WeightedCrossEntropyLoss
    from .metrics import DiceScore, IoUScore
    from .plot import plot_loss_curves, plot_predictions, plot_weight_map, pyplot
    from .runtime import OnnxEvaluator
    from .synthetic import touching_cells

    minimums = {"steps": (steps, 1), "n_train": (n_train, 1), "n_test": (n_test, 1), "size": (size, 1), "workers": (workers, 0)}
    for name, (value, minimum) in minimums.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
            raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    if size % 4:
        raise ValueError(f"size: expected a multiple of 4 (the U-Net pools twice), got {size}")
    out = Path(out)
    check_writable_folder(out, "out")
    result = DemoResult()
    try:  # known before the training: the figures are drawn only at the end
        pyplot()
    except ImportError as error:
        result.figures_skipped = str(error)
        log(f"figures    none will be drawn ({error}); the models are trained and scored all the same")
    start = time.perf_counter()
    torch.manual_seed(seed)

    pairs = touching_cells(n_train + n_test, size=size, seed=seed)
    options = dict(w0=w0, sigma=sigma, separate=True)
    train_set = WeightMapDataset(pairs[:n_train], cache_dir=out / "cache", target="separated", **options)
    test_set = WeightMapDataset(pairs[n_train:], target="separated", **options)
    loader = DataLoader(
        train_set, batch_size=8, shuffle=True, num_workers=workers, persistent_workers=workers > 0,
        generator=torch.Generator().manual_seed(seed),
    )
    log(f"data       {n_train} training and {n_test} test images {size}x{size} of touching cells (generated, seed {seed})")
    log(f"           weight maps w0={w0:g}, sigma={sigma:g} px, touching cells split, computed in {workers} DataLoader workers")

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=TORCHSCRIPT_DEPRECATION)
        criterion = torch.jit.script(WeightedCrossEntropyLoss())
    models = {}
    for name, use_weight in (("with weight map", True), ("without weight map", False)):
        torch.manual_seed(seed)
        model = SmallUNet()
        tick = time.perf_counter()
        result.curves[name] = train(model, loader, criterion, steps, use_weight, seed=seed, crop=min(64, size))
        result.seconds[f"train {name}"] = time.perf_counter() - tick
        models[name] = model.eval()
        log(f"train      {name}: {steps} steps, scripted weighted cross-entropy, "
            f"final loss {np.mean(result.curves[name][-10:]):.3f} ({result.seconds[f'train {name}']:.1f} s)")

    images = torch.from_numpy(np.stack([pairs[n_train + k][0] for k in range(n_test)]))
    test_items = [test_set[k] for k in range(n_test)]  # uncached: each item computes its map
    targets = torch.from_numpy(np.stack([item[1] for item in test_items]))
    weights = torch.from_numpy(np.stack([item[2] for item in test_items]))
    graph = EvaluationGraph(
        losses={"ce": WeightedCrossEntropyLoss()},
        metrics={"dice": DiceScore(include_background=False), "iou": IoUScore(include_background=False)},
    )
    with torch.no_grad():
        logits = {name: model(images) for name, model in models.items()}
    tick = time.perf_counter()
    report = to_onnx(graph, out / "eval.onnx", (logits["with weight map"][:2], targets[:2], weights[:2]))
    evaluator = OnnxEvaluator(report.path, providers=providers)
    result.provider = evaluator.provider
    for name, model_logits in logits.items():
        scores = evaluator.evaluate([(model_logits, targets, weights)], progress=False).summary
        predicted = model_logits.argmax(1).numpy()
        objects = ObjectMatching(0.5, semantic=True)  # the foreground's components, counts summed over images
        for k in range(n_test):
            objects.update(pairs[n_train + k][1], predicted[k] > 0)
        found = objects.compute()
        result.metrics[name] = {
            "ce": float(scores["ce"]["mean"]),
            "dice": float(scores["dice"]["mean"][0]),
            "iou": float(scores["iou"]["mean"][0]),
            "f1": float(found.f1[0]),
            "merged": found.merged / found.n_true if found.n_true else math.nan,
        }
    result.seconds["export and evaluate"] = time.perf_counter() - tick
    log(f"evaluate   {report.path} on {n_test} held-out images with onnxruntime ({evaluator.provider})")

    if not result.figures_skipped:
        first_image, first_labels = pairs[0]
        first_weight = train_set[0][2]
        predictions = {name: _instances(logits[name][0].argmax(0).numpy()) for name in logits}
        weight_png, predictions_png, loss_png = (out / name for name in FIGURES)
        result.files = [
            plot_weight_map(first_labels, first_weight, weight_png, image=first_image,
                            title="a training image and its U-Net weight map"),
            plot_predictions(images[0, 0].numpy(), pairs[n_train][1], predictions, predictions_png),
            plot_loss_curves(result.curves, loss_png),
        ]
    result.seconds["total"] = time.perf_counter() - start
    return result


def _instances(foreground: np.ndarray) -> np.ndarray:
    from skimage.measure import label

    return label(foreground > 0, connectivity=1)


__all__ = ["FIGURES", "DemoResult", "SmallUNet", "object_scores", "run_demo", "train"]
