"""cli's ``unetweights export``: the default evaluation graph, with the surface metrics and MONAI's
empty-class rule on request, written as OUT/eval.onnx and OUT/eval.pt (and, with ``--pt2``, as an
AOTInductor package OUT/eval.pt2 and a saved ExportedProgram OUT/eval_program.pt2). A part of cli (only cli
imports it), split off to keep cli.py under 500 lines; user errors are cli's ``UsageError``, passed in.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Callable

from ._files import check_writable_folder


def add_export_options(parser: argparse.ArgumentParser, add_count: Callable, error: type) -> None:
    """The export command's flags; its ``run`` builds and writes the graph."""
    parser.add_argument("--out", required=True, help="output folder")
    add_count(parser, "--classes", 1, default=2, help="channels of the logits (default 2)")
    parser.add_argument("--activation", choices=["softmax", "sigmoid"], default="softmax")
    parser.add_argument("--ndim", type=int, choices=[2, 3], default=2, help="spatial dims (default 2)")
    parser.add_argument("--ignore-index", type=int, help="target value to ignore (softmax only)")
    parser.add_argument(
        "--ignore-empty", action="store_true",
        help="MONAI's rule for Dice and IoU: an image whose target lacks a class scores NaN for it, whatever was predicted",
    )
    parser.add_argument(
        "--surface", type=float, nargs="+", metavar="TAU",
        help="add the surface metrics hausdorff, assd and nsd; TAU is the NSD's tolerance in units of --spacing "
        "(one value, or one per class)",
    )
    parser.add_argument("--percentile", type=float, default=95.0, help="of the Hausdorff distance, in (0, 100] (default 95)")
    parser.add_argument("--spacing", type=float, nargs="+", help="voxel size, one per spatial axis (default 1), with --surface")
    parser.add_argument("--no-weight", action="store_true", help="a graph without the weight-map input")
    parser.add_argument("--opset", type=int, help="ONNX opset (default 20, at least 18)")
    parser.add_argument(
        "--pt2", action="store_true",
        help="also write eval.pt2 (an AOTInductor package, for C++ with libtorch; compiling takes tens of seconds) "
        "and eval_program.pt2 (the ExportedProgram, for torch.export.load)",
    )
    parser.set_defaults(run=lambda args: run_export(args, error))


def run_export(args: argparse.Namespace, error: type) -> int:
    import torch

    from .evaluation import EvaluationGraph
    from .export import to_onnx, to_pt2, to_torchscript

    if args.classes < 1 or (args.activation == "softmax" and args.classes < 2):
        raise error(f"--classes: expected at least {2 if args.activation == 'softmax' else 1}, got {args.classes}")
    if args.surface is None and (args.spacing is not None or args.percentile != 95.0):
        raise error(f"--{'spacing' if args.spacing is not None else 'percentile'}: only the surface metrics use it; add --surface TAU")
    if args.spacing is not None and len(args.spacing) != args.ndim:
        raise error(f"--spacing: expected {args.ndim} values, one per spatial axis (--ndim), got {len(args.spacing)}")
    for option, values in (("--surface", args.surface), ("--spacing", args.spacing), ("--percentile", [args.percentile])):
        if values is not None and not all(math.isfinite(v) for v in values):
            raise error(f"{option}: expected finite numbers, got {values}")
    try:
        graph = EvaluationGraph.default(
            args.activation, ignore_index=args.ignore_index, ignore_empty=args.ignore_empty,
            tolerance=args.surface, percentile=args.percentile, spacing=args.spacing,
        )
    except ValueError as failure:
        # The metrics' own messages name the option: tolerance, percentile, spacing.
        raise error(f"{failure} (from --surface, --percentile, --spacing)") from None
    spatial = (6, 10, 8) if args.ndim == 3 else (24, 20)
    logits = torch.randn(2, args.classes, *spatial)
    if args.activation == "softmax":
        target = torch.randint(0, args.classes, (2, *spatial))
    else:
        target = (torch.rand(2, args.classes, *spatial) > 0.5).float()
    example = (logits, target) if args.no_weight else (logits, target, torch.rand(2, *spatial))
    out = Path(args.out)
    check_writable_folder(out, "--out")
    report = to_onnx(graph, out / "eval.onnx", example, opset=args.opset)
    to_torchscript(graph, out / "eval.pt", example)
    print(report)
    # The outputs named here come from the graph itself, like the ONNX report's above, so the text
    # cannot promise an output (a Dice loss, say) that this graph does not compute.
    print(f"{out / 'eval.pt'} (TorchScript of the same graph, outputs {', '.join(graph.output_names)}; for libtorch programs)")
    if args.pt2:
        to_pt2(graph, out / "eval.pt2", example, program_path=out / "eval_program.pt2")
        print(f"{out / 'eval.pt2'} (AOTInductor package of the same graph, checked on unseen shapes; for "
              "torch::inductor::AOTIModelPackageLoader and torch._inductor.aoti_load_package)")
        print(f"{out / 'eval_program.pt2'} (its ExportedProgram; for torch.export.load)")
    return 0
