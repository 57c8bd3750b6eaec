"""What do the losses cost, eager, scripted and compiled, and what does vectorising Lovasz buy?

Prints, from one run, four tables:

1. forward + backward median per loss at N×C×H×W (default 8×3×256×256, CPU, float32), eager
   vs ``torch.jit.script`` vs ``torch.compile(fullgraph=True)``, with scripted/eager and
   compiled/eager ratios (contenders interleaved, so a noisy machine slows them alike);
2. ``lovasz_softmax`` and ``lovasz_hinge`` on a batch of 16, the batched call against a Python
   loop over the images running the same per-image computation, at several image sizes;
3. ``soft_dice_loss(weight=None)`` against MONAI's ``DiceLoss`` at the same settings, if MONAI is
   importable (it is not a dependency);
4. what the NaN rule adds in eager mode: the per-image poison pass and the weight check, alone,
   as fractions of whole losses;
5. the losses on distances and skeletons (MCC beside them), eager and scripted, with the target's
   distance map precomputed or computed in the graph by the torch transform, against soft Dice
   and against MONAI's BoundaryLoss, HausdorffDTLoss and SoftclDiceLoss (scipy per image).

    python benchmarks/bench_losses.py                     # everything, 7 repeats
    python benchmarks/bench_losses.py --only modes --repeats 5
    python benchmarks/bench_losses.py --only modes --losses kl_div huber --repeats 21
    python benchmarks/bench_losses.py --only distance --shape 8 3 128 128
"""

from __future__ import annotations

import argparse
import platform
import sys
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import unetweights.losses as L  # noqa: E402
from benchmarks._timing import median_times  # noqa: E402

warnings.filterwarnings("ignore", message=r"`torch\.jit\.\w+` is deprecated")

# name: (module, target kind)
LOSSES = {
    "cross_entropy": (lambda: L.WeightedCrossEntropyLoss(ignore_index=-1, label_smoothing=0.1), "index"),
    "nll": (lambda: L.WeightedNLLLoss(ignore_index=-1), "index"),
    "bce_with_logits": (lambda: L.WeightedBCEWithLogitsLoss(), "binary"),
    "bce_balanced": (lambda: L.WeightedBCEWithLogitsLoss(balance=(0.25, 0.75)), "binary"),
    "focal_sigmoid": (lambda: L.FocalLoss("sigmoid", alpha=0.25), "binary"),
    "focal_softmax": (lambda: L.FocalLoss("softmax", ignore_index=-1), "index"),
    "soft_dice": (lambda: L.SoftDiceLoss(ignore_index=-1), "index"),
    "soft_dice_per_image": (lambda: L.SoftDiceLoss(per_image=True, ignore_index=-1), "index"),
    "tversky": (lambda: L.TverskyLoss(alpha=0.3, beta=0.7, gamma=0.75, ignore_index=-1), "index"),
    "lovasz_hinge": (lambda: L.LovaszHingeLoss(ignore_index=-1), "binary1"),
    "lovasz_softmax": (lambda: L.LovaszSoftmaxLoss(per_image=True, ignore_index=-1), "index"),
    "mse": (lambda: L.WeightedMSELoss(), "real"),
    "l1": (lambda: L.WeightedL1Loss(), "real"),
    "smooth_l1": (lambda: L.WeightedSmoothL1Loss(), "real"),
    "huber": (lambda: L.WeightedHuberLoss(), "real"),
    "kl_div": (lambda: L.WeightedKLDivLoss("batchmean"), "logprob"),
    "ce + dice": (
        lambda: L.CombinedLoss([L.WeightedCrossEntropyLoss(ignore_index=-1), L.SoftDiceLoss(ignore_index=-1)]),
        "index",
    ),
}


def make_inputs(kind: str, shape, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    n, c, *spatial = shape
    x = 3.0 * torch.randn(shape, generator=g)
    if kind == "index":
        target = torch.randint(-1, c, (n, *spatial), generator=g)
    elif kind == "binary":
        target = (torch.rand(shape, generator=g) < 0.4).float()
    elif kind == "binary1":
        x = x[:, :1].contiguous()
        target = (torch.rand(x.shape, generator=g) < 0.4).long()
    elif kind == "real":
        target = torch.randn(shape, generator=g)
    else:
        x = torch.log_softmax(x, 1)
        target = torch.softmax(torch.randn(shape, generator=g), 1)
    weight = 0.1 + torch.rand((n, *spatial), generator=g)
    return x, target, weight


def step(fn, x, target, weight):
    """One forward + backward, as a training step runs it."""

    def run():
        x.grad = None
        fn(x, target, weight).sum().backward()

    return run


def modes_table(shape, repeats: int, names) -> None:
    print(f"\n## forward + backward per loss, {'×'.join(map(str, shape))} float32, median of {repeats}")
    print(f"{'loss':<22}{'eager ms':>10}{'script ms':>11}{'compile ms':>12}{'script/eager':>14}{'compile/eager':>15}")
    for name in names:
        build, kind = LOSSES[name]
        module = build()
        x, target, weight = make_inputs(kind, shape)
        x.requires_grad_(True)
        scripted = torch.jit.script(module)
        torch._dynamo.reset()
        compiled = torch.compile(module, fullgraph=True)
        for warm in (scripted, compiled, compiled):  # TorchScript profiles, compile builds, on first calls
            step(warm, x, target, weight)()
        t = median_times(
            {mode: step(fn, x, target, weight) for mode, fn in (("eager", module), ("script", scripted), ("compile", compiled))},
            repeats,
        )
        print(
            f"{name:<22}{t['eager'] * 1e3:>10.1f}{t['script'] * 1e3:>11.1f}{t['compile'] * 1e3:>12.1f}"
            f"{t['script'] / t['eager']:>14.2f}{t['compile'] / t['eager']:>15.2f}",
            flush=True,
        )


def looped(fn):
    """The same loss computed image by image in a Python loop, then averaged."""

    def run(x, target, weight):
        total = x.new_zeros(())
        for i in range(x.shape[0]):
            total = total + fn(x[i : i + 1], target[i : i + 1], weight[i : i + 1])
        return total / x.shape[0]

    return run


def per_class_loop(x, target, weight):
    """Lovasz-softmax as the original code runs it: a Python loop over images and over classes."""
    total = x.new_zeros(())
    prob = torch.softmax(x, 1)
    for i in range(x.shape[0]):
        valid = (target[i] != -1).flatten()
        labels = target[i].flatten()[valid]
        w = weight[i].flatten()[valid]
        image_total, present = x.new_zeros(()), 0
        for c in range(x.shape[1]):
            fg = (labels == c).to(x.dtype)
            if fg.sum() == 0:
                continue
            errors = (fg - prob[i, c].flatten()[valid]).abs()
            errors_sorted, order = torch.sort(errors, descending=True)
            gradient = L.lovasz.lovasz_gradient((fg * w)[order], w[order])
            image_total = image_total + torch.dot(errors_sorted, gradient)
            present += 1
        total = total + image_total / max(present, 1)
    return total / x.shape[0]


def lovasz_table(repeats: int) -> None:
    print(f"\n## Lovasz on a batch of 16: one batched call vs Python loops, median of {repeats}")
    print("loop: the batched function called per image; class loop: per image and class, as the original code")
    print(f"{'loss':<16}{'image':>10}{'batched ms':>12}{'loop ms':>10}{'loop/batched':>14}{'class loop ms':>15}{'class loop/batched':>20}")
    cases = {
        "lovasz_softmax": (lambda x, t, w: L.lovasz_softmax(x, t, w, "present", True, -1), "index"),
        "lovasz_hinge": (lambda x, t, w: L.lovasz_hinge(x, t, w, True, -1), "binary1"),
    }
    for name, (fn, kind) in cases.items():
        for size in (32, 64, 128, 256):
            x, target, weight = make_inputs(kind, (16, 3, size, size))
            x.requires_grad_(True)
            contenders = {"batched": fn, "loop": looped(fn)}
            if name == "lovasz_softmax":
                contenders["class loop"] = per_class_loop
            for other in list(contenders)[1:]:
                torch.testing.assert_close(contenders[other](x, target, weight), fn(x, target, weight))  # same computation
            t = median_times({k: step(f, x, target, weight) for k, f in contenders.items()}, repeats)
            line = f"{name:<16}{f'{size}×{size}':>10}{t['batched'] * 1e3:>12.1f}{t['loop'] * 1e3:>10.1f}{t['loop'] / t['batched']:>14.2f}"
            if "class loop" in t:
                line += f"{t['class loop'] * 1e3:>15.1f}{t['class loop'] / t['batched']:>20.2f}"
            print(line, flush=True)


def monai_table(shape, repeats: int) -> None:
    try:
        from monai.losses import DiceLoss
    except ImportError:
        print("\n## MONAI DiceLoss: skipped, MONAI is not installed")
        return
    import monai

    print(f"\n## soft Dice (weight=None) vs MONAI {monai.__version__} DiceLoss, {'×'.join(map(str, shape))}, median of {repeats}")
    print(f"{'settings':<34}{'ours ms':>9}{'MONAI ms':>10}{'ours/MONAI':>12}")
    x, target, _ = make_inputs("index", shape)
    target = target.clamp_min(0)
    x.requires_grad_(True)
    for batch in (True, False):
        ours = L.SoftDiceLoss(smooth=1.0, per_image=not batch)  # no ignore_index: MONAI has none
        theirs = DiceLoss(softmax=True, to_onehot_y=True, smooth_nr=1.0, smooth_dr=1.0, batch=batch)
        mine = lambda a, t, w, f=ours: f(a, t)  # noqa: E731
        monai_fn = lambda a, t, w, f=theirs: f(a, t.unsqueeze(1))  # noqa: E731
        torch.testing.assert_close(mine(x, target, None), monai_fn(x, target, None))  # same settings, same value
        t = median_times({"ours": step(mine, x, target, None), "monai": step(monai_fn, x, target, None)}, repeats)
        label = f"softmax, smooth 1, {'batch' if batch else 'per image'}"
        print(f"{label:<34}{t['ours'] * 1e3:>9.1f}{t['monai'] * 1e3:>10.1f}{t['ours'] / t['monai']:>12.2f}", flush=True)


def checks_table(shape, repeats: int) -> None:
    """What the NaN rule costs in eager mode: the passes every call adds, against whole losses."""
    from unetweights._stage.reduce import check_finite_non_negative, input_poison, poison_unless_all

    x, target, weight = make_inputs("index", shape)
    n = shape[0]
    passes = {
        "poison Σ0·x": lambda: input_poison(x),
        "poison isfinite": lambda: poison_unless_all(torch.isfinite(x).reshape(n, -1), x.dtype),
        "weight check": lambda: check_finite_non_negative(weight, "weight"),
    }
    x.requires_grad_(True)
    losses = {name: LOSSES[name][0]() for name in ("cross_entropy", "soft_dice", "lovasz_softmax")}
    contenders = dict(passes)
    contenders.update({name: step(loss, x, target, weight) for name, loss in losses.items()})
    t = median_times(contenders, repeats)
    print(f"\n## The NaN rule's passes in eager mode, {'×'.join(map(str, shape))}, median of {repeats}")
    print("poison Σ0·x: the per-image poison every loss adds (isfinite: the form it replaced); weight check: one aminmax")
    print(f"{'pass':<18}{'ms':>8}" + "".join(f"{'/ ' + name:>18}" for name in losses))
    for name in passes:
        ratios = "".join(f"{t[name] / t[loss]:>18.3f}" for loss in losses)
        print(f"{name:<18}{t[name] * 1e3:>8.2f}{ratios}", flush=True)
    print(f"{'(loss fwd+bwd ms)':<26}" + "".join(f"{t[loss] * 1e3:>18.1f}" for loss in losses))


def distance_table(shape, repeats: int) -> None:
    """The losses that consume distances and skeletons, where their cost is the distance transform."""
    x, target, weight = make_inputs("index", shape)
    target = target.clamp_min(0)  # MONAI takes no ignore index
    x.requires_grad_(True)
    one_hot = torch.nn.functional.one_hot(target, shape[1]).movedim(-1, 1).float()
    distance = L.distance_transform(one_hot.bool())  # what the data pipeline would precompute
    ours = {
        "soft_dice": (L.SoftDiceLoss(), False),
        "mcc": (L.MCCLoss(), False),
        "boundary, map given": (L.BoundaryLoss(), True),
        "boundary, map computed": (L.BoundaryLoss(), False),
        "hausdorff_dt, map given": (L.HausdorffDTLoss(), True),
        "hausdorff_dt, both computed": (L.HausdorffDTLoss(), False),
        "cldice, 3 iterations": (L.ClDiceLoss(), False),
        "skeleton_recall": (L.SkeletonRecallLoss(), False),
    }
    contenders = {}
    for name, (module, given) in ours.items():
        scripted = torch.jit.script(module)
        for mode, fn in (("eager", module), ("script", scripted)):
            if given:
                call = lambda a, t, w, f=fn: f(a, t, w, distance)  # noqa: E731
            else:
                call = fn
            contenders[(name, mode)] = step(call, x, target, weight)
    try:
        import monai
        from monai.losses import BoundaryLoss, HausdorffDTLoss, SoftclDiceLoss
    except ImportError:
        monai = None
    if monai is not None:
        for name, module in (
            (f"MONAI {monai.__version__} BoundaryLoss", BoundaryLoss(softmax=True)),
            ("MONAI HausdorffDTLoss", HausdorffDTLoss(softmax=True)),
            ("MONAI SoftclDiceLoss", SoftclDiceLoss(softmax=True)),
        ):
            contenders[(name, "eager")] = step(lambda a, t, w, f=module: f(a, one_hot), x, target, weight)
    t = median_times(contenders, repeats)
    base = t[("soft_dice", "eager")]
    print(f"\n## losses on distances and skeletons, forward + backward, {'×'.join(map(str, shape))}, median of {repeats}")
    print(f"{'loss':<32}{'eager ms':>10}{'script ms':>11}{'eager/soft Dice':>17}")
    for name in dict.fromkeys(key[0] for key in t):
        script = t.get((name, "script"))
        script_text = f"{script * 1e3:>11.1f}" if script is not None else f"{'-':>11}"
        print(f"{name:<32}{t[(name, 'eager')] * 1e3:>10.1f}{script_text}{t[(name, 'eager')] / base:>17.2f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only",
        choices=("modes", "lovasz", "monai", "checks", "distance"),
        nargs="+",
        default=("modes", "lovasz", "monai", "checks", "distance"),
    )
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--losses", nargs="+", choices=sorted(LOSSES), default=list(LOSSES), help="for the modes table")
    parser.add_argument("--shape", type=int, nargs="+", default=(8, 3, 256, 256))
    args = parser.parse_args()
    shape = tuple(args.shape)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}")
    if "modes" in args.only:
        modes_table(shape, args.repeats, args.losses)
    if "lovasz" in args.only:
        lovasz_table(args.repeats)
    if "monai" in args.only:
        monai_table(shape, args.repeats)
    if "checks" in args.only:
        checks_table(shape, args.repeats)
    if "distance" in args.only:
        distance_table(shape, args.repeats)


if __name__ == "__main__":
    main()
