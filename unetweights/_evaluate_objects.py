"""cli's object evaluation, ``unetweights evaluate --instances TRUE PRED``: instance masks read (two
files, or two folders whose files pair by name), matched object by object with
:class:`unetweights.matching.ObjectMatching`, the dataset's scores printed, and one row per image
and threshold (and the dataset's rows) written to ``--csv`` / ``--json``. A part of cli (only cli
imports it), split off to keep cli.py under 500 lines; user errors are cli's ``UsageError``, passed in.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
from pathlib import Path
from typing import Callable, Dict, List, Tuple

from ._files import check_output_file, same_file, write_text_in_place

# The "image" of the rows that hold the scores of the summed counts, after the per-image rows.
DATASET_ROW = "(dataset)"


def add_object_options(parser: argparse.ArgumentParser, run_graph: Callable, error: type) -> None:
    """Add the ``--instances`` flags to the evaluate command, whose ``run`` becomes: object matching
    with ``--instances``, else ``run_graph`` once the graph's arguments are there."""
    parser.add_argument(
        "--instances", nargs=2, metavar=("TRUE", "PRED"),
        help="match instance masks instead of running a graph: two mask files (.npy, .png, .tif; 2D or 3D, "
        "0 background), or two folders whose files pair by name without suffix",
    )
    parser.add_argument(
        "--thresholds", type=float, nargs="+", metavar="T", help="with --instances: IoU thresholds in (0, 1] (default 0.5)"
    )
    parser.add_argument(
        "--semantic", action="store_true",
        help="with --instances: PRED holds binary (or class) masks, whose connected components are the objects",
    )
    parser.add_argument("--connectivity", type=int, help="with --semantic: 1 (default) joins pixels sharing a face, ndim also a corner")
    parser.add_argument(
        "--containment", type=float, help="with --instances: the share of an object inside another for merges and splits (default 0.5)"
    )
    parser.set_defaults(run=lambda args: _run(args, run_graph, error))


def _run(args: argparse.Namespace, run_graph: Callable, error: type) -> int:
    if args.instances is None:
        flags = {"--thresholds": args.thresholds, "--semantic": args.semantic or None, "--connectivity": args.connectivity,
                 "--containment": args.containment}
        for flag, value in flags.items():
            if value is not None:
                raise error(f"{flag}: only with --instances TRUE PRED")
        for name, value in (("graph", args.graph), ("--logits", args.logits), ("--target", args.target)):
            if value is None:
                raise error(f"{name}: required to run a graph (or give --instances TRUE PRED to match instance masks)")
        return run_graph(args)
    graph = {"graph": args.graph, "--logits": args.logits, "--target": args.target, "--weight": args.weight,
             "--distance": args.distance}
    for name, value in graph.items():
        if value is not None:
            raise error(f"{name}: not with --instances, which matches instance masks without a graph")
    if args.connectivity is not None and not args.semantic:
        raise error("--connectivity: only with --semantic (the connected components of a binary PRED)")
    return _evaluate_objects(args, error)


def _masks(folder: Path, argument: str, error: type) -> Dict[str, Path]:
    from .data import MASK_SUFFIXES

    found: Dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in MASK_SUFFIXES and path.is_file():
            if path.stem in found:
                raise error(f"--instances: {argument} holds {found[path.stem].name} and {path.name}; one mask per name")
            found[path.stem] = path
    return found


def _pairs(true: Path, pred: Path, error: type) -> List[Tuple[str, Path, Path]]:
    """(name, true file, predicted file) of each image: the two files, or the folders' files by name."""
    for argument, path in (("TRUE", true), ("PRED", pred)):
        if not path.exists():
            raise error(f"--instances: {argument}: no such file or folder: {path}")
    if true.is_dir() != pred.is_dir():
        raise error(f"--instances: TRUE {true} and PRED {pred} must be two files or two folders")
    if not true.is_dir():
        return [(true.name, true, pred)]
    true_files, pred_files = _masks(true, "TRUE", error), _masks(pred, "PRED", error)
    for argument, mine, other, folder in (("PRED", true_files, pred_files, pred), ("TRUE", pred_files, true_files, true)):
        missing = sorted(set(mine) - set(other))
        if missing:
            shown = ", ".join(mine[name].name for name in missing[:3]) + (", ..." if len(missing) > 3 else "")
            raise error(f"--instances: {argument} {folder} has no mask named like {shown} ({len(missing)} missing)")
    if not true_files:
        raise error(f"--instances: no .npy, .png or .tif masks in {true} and {pred}")
    return [(name, true_files[name], pred_files[name]) for name in sorted(true_files)]


def _evaluate_objects(args: argparse.Namespace, error: type) -> int:
    from .data import read_mask
    from .matching import ObjectMatching

    true_arg, pred_arg = args.instances
    pairs = _pairs(Path(true_arg), Path(pred_arg), error)
    inputs = [("--instances TRUE", true_arg), ("--instances PRED", pred_arg)]
    if args.csv is not None and args.json is not None and same_file(Path(args.csv), Path(args.json)):
        raise error(f"--json: {args.json} is also the --csv file; give two different files")
    for option, path in (("--csv", args.csv), ("--json", args.json)):
        if path is not None:
            check_output_file(path, option, "evaluate", inputs)
    thresholds = [0.5] if args.thresholds is None else args.thresholds
    bad = [t for t in thresholds if not 0 < t <= 1]
    if bad:
        raise error(f"--thresholds: expected IoU thresholds in (0, 1] (a match needs IoU >= t > 0), got {bad[0]}")
    if args.containment is not None and not 0 < args.containment <= 1:
        raise error(f"--containment: expected a share in (0, 1], got {args.containment}")
    if args.connectivity is not None and not 1 <= args.connectivity <= 3:
        raise error(f"--connectivity: expected 1, 2 or 3 (at most the masks' ndim), got {args.connectivity}")
    matching = ObjectMatching(
        thresholds, semantic=args.semantic, connectivity=args.connectivity,
        containment=0.5 if args.containment is None else args.containment,
    )
    image_rows: List[Dict[str, object]] = []
    for name, true_path, pred_path in pairs:
        try:
            true, pred = read_mask(true_path), read_mask(pred_path)
            if pred.dtype == bool and not args.semantic:
                raise ValueError("PRED is a binary mask; give --semantic to split it into connected components")
            scores = matching.update(true, pred)
        except (TypeError, ValueError) as exc:
            raise error(f"--instances: {name} ({true_path} against {pred_path}): {exc}") from None
        image_rows.extend({"image": name, **row} for row in scores.rows())
    total = matching.compute()
    dataset_rows = [{"image": DATASET_ROW, **row} for row in total.rows()]
    print(f"{true_arg} against {pred_arg}: {len(pairs)} image(s), scores of the counts summed over them")
    print(total.table())
    if args.csv:
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=list(image_rows[0]))
        writer.writeheader()
        writer.writerows(image_rows + dataset_rows)
        write_text_in_place(args.csv, text.getvalue())
        print(f"wrote      {args.csv} (a row per image and threshold, then the dataset's, image {DATASET_ROW})")
    if args.json:
        document = {
            "true": true_arg, "pred": pred_arg, "thresholds": total.thresholds.tolist(),
            "dataset": [_null_for_nan(row) for row in total.rows()],
            "per_image": [_null_for_nan(row) for row in image_rows],
        }
        write_text_in_place(args.json, json.dumps(document, indent=1))
        print(f"wrote      {args.json}")
    return 0


def _null_for_nan(row: Dict[str, object]) -> Dict[str, object]:
    """JSON has no NaN: a score with nothing to score is null."""
    return {key: None if isinstance(value, float) and math.isnan(value) else value for key, value in row.items()}
