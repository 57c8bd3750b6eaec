"""The ``unetweights`` console script: parses arguments, calls the library, prints.

Subcommands: ``demo`` (the whole pipeline on generated data), ``precompute`` (weight maps for a
folder of masks), ``export`` (an evaluation graph to ONNX and TorchScript), ``evaluate`` (an ONNX
graph on saved predictions, or instance masks object by object) and ``show`` (a PNG of a mask and its weight map). User errors print
one line and exit with status 2; nothing prints a traceback for them. Files a command writes are
checked before it starts: never one of its inputs, never a folder, in a folder that can be written.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from ._evaluate_objects import add_object_options
from ._export_command import add_export_options
from ._files import check_output_file, same_file, write_text_in_place
from ._weight_flags import add_weight_options, weight_options


class UsageError(Exception):
    """A mistake in the command line or its files, reported as one line."""


def _add_count(parser: argparse.ArgumentParser, option: str, minimum: int, **kwargs) -> None:
    """An int option that ``main`` checks against ``minimum`` before the command runs.

    Checked there rather than by an argparse ``type``, so that a bad value is one line and status 2
    like every other user error (argparse's own errors print the usage too and raise SystemExit).
    """
    parser.add_argument(option, type=int, **kwargs)
    parser.set_defaults(minimums={**(parser.get_default("minimums") or {}), option: minimum})


def _check_counts(args: argparse.Namespace) -> None:
    for option, minimum in (getattr(args, "minimums", None) or {}).items():
        value = getattr(args, option.lstrip("-").replace("-", "_"))
        if value is not None and value < minimum:
            raise UsageError(f"{option}: expected at least {minimum}, got {value}")


def _load_array(path: str, what: str, integers: bool = False) -> np.ndarray:
    """A .npy array as stored, or a mask image read with ``read_mask`` (``integers`` passed on:
    a bool .npy then comes as uint8 too)."""
    file = Path(path)
    if not file.is_file():
        raise UsageError(f"{what}: no such file: {path}")
    if file.suffix.lower() == ".npy":
        try:
            array = np.load(file, allow_pickle=False)
        except ValueError as error:
            raise UsageError(f"{what}: cannot read {path}: {error}") from error
        return array.astype(np.uint8) if integers and array.dtype == bool else array
    from .data import read_mask

    return read_mask(file, integers=integers)


_WEIGHT_SUFFIXES = (".npy", ".tif", ".tiff")


def _load_weight(path: str, option: str) -> np.ndarray:
    """A weight map as float32 values from a .npy or .tif/.tiff file: real, finite and non-negative.

    Read as the values it holds, never as a label mask, and refused by ``option`` otherwise.
    """
    from .data import read_image

    file = Path(path)
    if not file.is_file():
        raise UsageError(f"{option}: no such file: {path}")
    if file.suffix.lower() not in _WEIGHT_SUFFIXES:
        raise UsageError(f"{option}: {path}: expected a weight map in a .npy or .tif/.tiff file, got {file.suffix!r}")
    try:
        array = read_image(file)
    except ValueError as error:
        raise UsageError(f"{option}: {error}") from None
    if array.dtype == bool or not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise UsageError(f"{option}: {path} holds {array.dtype} values; expected real-valued weights (float or integer)")
    with np.errstate(over="ignore"):
        weight = array.astype(np.float32)
    if not np.isfinite(weight).all():
        raise UsageError(
            f"{option}: {path} holds NaN or infinite weights (or values beyond float32); expected finite, non-negative weights"
        )
    if weight.size and weight.min() < 0:
        raise UsageError(f"{option}: {path} holds negative weights (minimum {weight.min():g}); expected finite, non-negative weights")
    return weight


# -- demo ---------------------------------------------------------------------------------------


def _demo(args: argparse.Namespace) -> int:
    from .demo import FIGURES, run_demo

    steps, n_train, n_test = args.steps, args.train_images, args.test_images
    if args.quick:
        steps, n_train, n_test = min(steps, 20), min(n_train, 8), min(n_test, 2)
    result = run_demo(
        Path(args.out), steps=steps, n_train=n_train, n_test=n_test, size=args.size, workers=args.workers,
        seed=args.seed, providers=args.providers,
    )
    print()
    print(f"held-out scores (mean over {n_test} images; Dice and IoU from the ONNX graph on {result.provider})")
    print(result.table())
    print()
    print("object F1: cells matched one-to-one by a connected component (IoU >= 0.5, all images' counts); merged: share of cells fused")
    if result.figures_skipped:
        print(f"figures    skipped ({', '.join(FIGURES)}): {result.figures_skipped}")
    else:
        print(f"figures    {', '.join(str(p) for p in result.files)}")
    print(f"time       {result.seconds['total']:.1f} s")
    return 0


# -- precompute ---------------------------------------------------------------------------------


def _mask_paths(inputs: Sequence[str], argument: str = "masks") -> List[Path]:
    from .data import MASK_SUFFIXES

    paths: List[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            paths.extend(sorted(p for p in path.iterdir() if p.suffix.lower() in MASK_SUFFIXES))
        elif path.exists():
            paths.append(path)
        else:
            raise UsageError(f"{argument}: no such file or folder: {item}")
    if not paths:
        raise UsageError(f"{argument}: no .npy, .png or .tif files in {', '.join(inputs)}")
    return paths


def _precompute(args: argparse.Namespace) -> int:
    if args.zarr:
        return _precompute_zarr(args)
    if not args.masks or args.out is None:
        raise UsageError("masks: give mask files or folders and --out, or --zarr IN OUT")
    from .data import precompute

    report = precompute(
        _mask_paths(args.masks), args.out, workers=args.workers, progress=not args.quiet, overwrite=args.overwrite,
        signed_distance=args.signed_distance, skeleton_radius=args.skeleton_radius, threads=args.threads,
        **weight_options(args),
    )
    print(report.summary())
    return 0 if report.ok else 1


def _precompute_zarr(args: argparse.Namespace) -> int:
    from .dask import precompute_zarr

    if args.masks or args.out is not None:
        raise UsageError("--zarr: give either --zarr IN OUT or mask files with --out, not both")
    if args.signed_distance or args.skeleton_radius is not None:
        raise UsageError("--zarr: chunked volumes get weight maps only, not --signed-distance or --skeleton-radius")
    if args.threads != 1:
        raise UsageError("--threads: with --zarr the scheduler runs the chunks in parallel; leave --threads at 1")
    source, destination = args.zarr
    options = weight_options(args)
    from .weightmaps import WEIGHTINGS

    if WEIGHTINGS[options["weighting"]].reach is None:
        raise UsageError(
            f"--weighting: {options['weighting']} maps reach without bound, so chunks (--zarr) cannot give them "
            f"exactly; chunked weightings: {', '.join(w.name for w in WEIGHTINGS.values() if w.reach is not None)}"
        )
    report = precompute_zarr(
        source, destination, scheduler=args.scheduler, progress=not args.quiet, overwrite=args.overwrite, **options
    )
    print(report.summary())
    return 0


# -- export -------------------------------------------------------------------------------------


# -- evaluate -----------------------------------------------------------------------------------


# The layout of each input the evaluate command documents (its --help), batch first.
_LAYOUTS = {
    "logits": "(N, C, *spatial)", "target": "(N, *spatial) or (N, C, *spatial)", "weight": "(N, *spatial)",
    "distance": "(N, C', *spatial)",
}


def _evaluate(args: argparse.Namespace) -> int:
    from .runtime import OnnxEvaluator

    if not Path(args.graph).is_file():
        raise UsageError(f"graph: no such file: {args.graph}")
    inputs = {
        "graph": args.graph, "--logits": args.logits, "--target": args.target, "--weight": args.weight,
        "--distance": args.distance,
    }
    if args.csv is not None and args.json is not None and same_file(Path(args.csv), Path(args.json)):
        raise UsageError(f"--json: {args.json} is also the --csv file; give two different files")
    for option, path in (("--csv", args.csv), ("--json", args.json)):
        if path is not None:
            check_output_file(path, option, "evaluate", inputs.items())
    evaluator = OnnxEvaluator(args.graph, providers=args.providers)
    arrays = {"logits": _load_array(args.logits, "--logits"), "target": _load_array(args.target, "--target")}
    if args.weight:
        arrays["weight"] = _load_weight(args.weight, "--weight")
    if args.distance:
        arrays["distance"] = _load_array(args.distance, "--distance")
    names = [spec.name for spec in evaluator.inputs]
    missing = [name for name in names if name not in arrays]
    if missing:
        raise UsageError(f"--{missing[0]}: the graph {args.graph} takes inputs {names}; give --{missing[0]}")
    extra = [name for name in arrays if name not in names]
    if extra:
        raise UsageError(f"--{extra[0]}: the graph {args.graph} has no '{extra[0]}' input (it takes {names})")
    for spec in evaluator.inputs:  # saved arrays often come as float64 or int32: cast to the graph's type
        array, path = arrays[spec.name], inputs[f"--{spec.name}"]
        # Batch first, as the graph takes them: each array is cut into batches along dim 0.
        if array.ndim != len(spec.shape):
            raise UsageError(
                f"--{spec.name}: {path} has shape {list(array.shape)}; the graph takes {len(spec.shape)} dims "
                f"{spec.describe()} {_LAYOUTS[spec.name]}"
            )
        if len(array) == 0:
            raise UsageError(f"--{spec.name}: {path} holds no images (shape {list(array.shape)}); expected at least one")
        if np.issubdtype(spec.dtype, np.integer) and not np.issubdtype(array.dtype, np.integer):
            raise UsageError(f"--{spec.name}: expected integer class indices, got {array.dtype}")
        arrays[spec.name] = array.astype(spec.dtype, copy=False)
    total = len(arrays["logits"])
    batches = [
        tuple(arrays[name][start : start + args.batch_size] for name in names) for start in range(0, total, args.batch_size)
    ]
    result = evaluator.evaluate(batches, progress=not args.quiet)
    print(f"{args.graph} on {evaluator.provider}")
    print(result.format_summary())
    rows = _per_image_rows(result.per_image)
    if args.csv:
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        write_text_in_place(args.csv, text.getvalue())
        print(f"wrote      {args.csv} ({len(rows)} images)")
    if args.json:
        summary = {
            name: {stat: _null_for_nan(np.asarray(value).tolist()) for stat, value in stats.items()}
            for name, stats in result.summary.items()
        }
        per_image = [{key: _null_for_nan(value) for key, value in row.items()} for row in rows]
        document = {"graph": args.graph, "provider": evaluator.provider, "summary": summary, "per_image": per_image}
        write_text_in_place(args.json, json.dumps(document, indent=1, allow_nan=False))
        print(f"wrote      {args.json}")
    return 0


def _null_for_nan(value):
    """``value`` (a number or nested lists of them) as strict JSON, which has no NaN or infinity: NaN
    (a metric with nothing to score, or an image with invalid input) as null, and an infinite
    distance (a class on one side only) as the string "inf" (or "-inf")."""
    if isinstance(value, list):
        return [_null_for_nan(item) for item in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def _per_image_rows(per_image: Dict[str, np.ndarray]) -> List[Dict[str, float]]:
    count = len(next(iter(per_image.values())))
    rows: List[Dict[str, float]] = [{"image": k} for k in range(count)]
    for name, values in per_image.items():
        values = np.asarray(values)
        for k in range(count):
            if values.ndim == 1:
                rows[k][name] = float(values[k])
            else:
                for c in range(values.shape[1]):
                    rows[k][f"{name}_{c}"] = float(values[k, c])
    return rows


# -- show ---------------------------------------------------------------------------------------


def _show(args: argparse.Namespace) -> int:
    from .plot import plot_weight_map
    from .weightmaps import WeightMapRecipe

    inputs = {"labels": args.labels, "--image": args.image, "--weight": args.weight}
    check_output_file(args.out, "--out", "show", inputs.items(), create_folder=True)
    # An ignore label is a value of the labels as the file holds them, as precompute reads them.
    labels = _load_array(args.labels, "labels", integers=getattr(args, "ignore_label", None) is not None)
    if labels.ndim != 2:
        raise UsageError(f"labels: expected a 2D mask, got shape {list(labels.shape)}")
    given = {"--weight": _load_weight(args.weight, "--weight") if args.weight else None}
    given["--image"] = _load_array(args.image, "--image") if args.image else None
    for option, array in given.items():
        # A (1, H, W) image is a one-channel image of the mask's shape; anything else must match.
        if array is not None and array.shape not in (labels.shape, (1, *labels.shape)):
            raise UsageError(f"{option}: shape {list(array.shape)} does not match the labels' shape {list(labels.shape)}")
    weight = given["--weight"]
    if weight is None:
        weight = WeightMapRecipe.from_arguments(owner="show", **weight_options(args)).weight_map(labels)
    image = given["--image"]
    path = plot_weight_map(labels, weight, args.out, image=image, title=Path(args.labels).name)
    print(f"wrote      {path}")
    return 0


# -- nnunet -------------------------------------------------------------------------------------


def _nnunet_convert(args: argparse.Namespace) -> int:
    from .nnunet.convert import convert_dataset

    summary = convert_dataset(
        _mask_paths(args.masks), _mask_paths(args.images, "--images"), args.out, spacing=args.spacing, channel_names=args.channel_names,
        overwrite=args.overwrite,
    )
    print(f"wrote      {summary['out_dir']}: {summary['cases']} cases, {summary['channels']} channel(s), dataset.json")
    return 0



def _nnunet_path(args: argparse.Namespace) -> int:
    print(Path(__file__).resolve().parent / "nnunet" / "trainers")
    return 0


# -- parser -------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="unetweights", description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, summary: str, example: str) -> argparse.ArgumentParser:
        return sub.add_parser(
            name, help=summary, description=summary, epilog=f"example:\n  {example}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    demo = command(
        "demo",
        "Train a small U-Net on generated touching cells with and without the weight map, score both with the "
        "exported ONNX graph, and save figures.",
        "unetweights demo --steps 300 --out demo_out",
    )
    _add_count(demo, "--steps", 1, default=300, help="training steps per model (default 300)")
    _add_count(demo, "--train-images", 1, default=24, help="generated training images (default 24)")
    _add_count(demo, "--test-images", 1, default=8, help="generated held-out images (default 8)")
    _add_count(demo, "--size", 4, default=96, help="image side, a multiple of 4 (default 96)")
    _add_count(demo, "--workers", 0, default=2, help="DataLoader workers computing the maps (default 2; 0: in-process)")
    demo.add_argument("--providers", choices=["auto", "cuda", "cpu"], default="auto", help="onnxruntime provider")
    _add_count(demo, "--seed", 0, default=0)
    demo.add_argument("--quick", action="store_true", help="a few steps on a few images: checks the pipeline, not the model")
    demo.add_argument("--out", default="demo_out", help="output folder (default demo_out)")
    demo.set_defaults(run=_demo)

    pre = command(
        "precompute",
        "Compute the weight map of every mask (.npy, .png, .tif) into OUT/<name>.npy, in parallel and resumably; "
        "or, with --zarr, of a zarr label volume larger than memory, chunk by chunk with Dask.",
        "unetweights precompute masks/ --out weights/ --workers 2 --w0 10 --sigma 5\n"
        "  unetweights precompute --zarr labels.zarr weights.zarr --sigma 5 --spacing 2 1 1 [--scheduler tcp://host:8786]",
    )
    pre.add_argument("masks", nargs="*", help="mask files or folders of them")
    pre.add_argument("--out", help="output folder (for mask files)")
    pre.add_argument("--zarr", nargs=2, metavar=("IN", "OUT"), help="a zarr label volume in, a chunked zarr weight map out")
    pre.add_argument("--scheduler", help="with --zarr: a dask.distributed scheduler address (default: local threads)")
    _add_count(pre, "--workers", 1, default=1, help="processes (default 1)")
    _add_count(pre, "--threads", 0, default=1, help="threads per map (default 1; 0: every core, for large volumes)")
    pre.add_argument("--overwrite", action="store_true", help="recompute everything, even with other options")
    pre.add_argument("--quiet", action="store_true", help="no progress bar")
    pre.add_argument(
        "--signed-distance", action="store_true",
        help="also write the target's signed distance map (2, *) to OUT/<name>.distance.npy (boundary, Hausdorff-DT losses)",
    )
    pre.add_argument(
        "--skeleton-radius", type=float, metavar="R",
        help="also write the target's tubed skeleton of radius R (spacing units) to OUT/<name>.skeleton.npy",
    )
    add_weight_options(pre)
    pre.set_defaults(run=_precompute)

    exp = command(
        "export",
        "Write the default evaluation graph (cross-entropy or BCE, Dice, IoU, accuracy per image; with --surface "
        "also the Hausdorff distance, ASSD and NSD) as OUT/eval.onnx and OUT/eval.pt.",
        "unetweights export --classes 3 --out graphs/",
    )
    add_export_options(exp, _add_count, UsageError)

    ev = command(
        "evaluate",
        "Run an exported ONNX graph on saved logits, targets and weight maps (.npy, batch first), or with --instances match "
        "instance masks object by object; print the scores and write per-image rows.",
        "unetweights evaluate graphs/eval.onnx --logits logits.npy --target target.npy --weight weight.npy --csv scores.csv\n"
        "  unetweights evaluate --instances true_masks/ predicted_masks/ --thresholds 0.5 0.75 0.9 --csv objects.csv",
    )
    ev.add_argument("graph", nargs="?", help="the .onnx file (required, unless --instances)")
    ev.add_argument("--logits", help=".npy (N, C, *spatial), required with a graph")
    ev.add_argument("--target", help=".npy (N, *spatial) class indices, or (N, C, *spatial) for sigmoid; required with a graph")
    ev.add_argument("--weight", help=".npy or .tif (N, *spatial) of finite non-negative weights, if the graph takes one")
    ev.add_argument("--distance", help=".npy (N, C', *spatial): the targets' signed distance maps, if the graph takes them")
    _add_count(ev, "--batch-size", 1, default=8, help="images per run (default 8)")
    ev.add_argument("--providers", choices=["auto", "cuda", "cpu"], default="auto")
    ev.add_argument("--csv", help="write one row per image (with --instances, per image and threshold)")
    ev.add_argument("--json", help="write the summary and the per-image rows")
    ev.add_argument("--quiet", action="store_true", help="no progress bar")
    add_object_options(ev, _evaluate, UsageError)  # --instances and its flags; run: _evaluate without them

    show = command(
        "show",
        "Save a PNG of a mask, its weight map (computed unless given) with the object contours, and the image.",
        "unetweights show labels.tif --image image.tif --out labels.png --sigma 5",
    )
    show.add_argument("labels", help="instance mask (.npy, .png, .tif), 2D")
    show.add_argument("--image", help="the raw image to show beside it")
    show.add_argument("--weight", help="a weight map (.npy or .tif, finite non-negative values) instead of computing one")
    show.add_argument("--out", default="weight_map.png", help="the PNG to write (default weight_map.png)")
    add_weight_options(show)
    show.set_defaults(run=_show)

    conv = command(
        "nnunet-convert",
        "Write instance masks and their images as an nnU-Net raw dataset (imagesTr, labelsTr, dataset.json), "
        "touching instances separated by a one-pixel gap so that the weight map sees every object.",
        "unetweights nnunet-convert masks/ --images images/ --out $nnUNet_raw/Dataset001_Cells --spacing 1 1",
    )
    conv.add_argument("masks", nargs="+", help="mask files or folders of them (.npy, .png, .tif)")
    conv.add_argument("--images", nargs="+", required=True, help="image files or folders; each image has its mask's stem")
    conv.add_argument("--out", required=True, help="the dataset folder, nnUNet_raw/DatasetXXX_Name")
    conv.add_argument("--spacing", type=float, nargs="+", help="pixel or voxel size per axis (default 1)")
    conv.add_argument("--channel-names", nargs="+", help="one name per image channel (default image)")
    conv.add_argument("--overwrite", action="store_true", help="replace a dataset.json already there")
    conv.set_defaults(run=_nnunet_convert)

    nn = command(
        "nnunet-path",
        "Print the folder of unetweights' nnU-Net trainers, for the nnUNet_extTrainer environment variable "
        "(nnU-Net 2.8+), then select one with nnUNetv2_train ... -tr NAME.",
        'export nnUNet_extTrainer="$(unetweights nnunet-path)"; nnUNetv2_train 1 2d 0 -tr nnUNetTrainerUNetWeights',
    )
    nn.set_defaults(run=_nnunet_path)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        _check_counts(args)
        return args.run(args)
    except (UsageError, ValueError, TypeError, OSError, ImportError, RuntimeError) as err:
        message = " ".join(str(err).split())  # one line, whatever the library wrote
        print(f"unetweights {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
