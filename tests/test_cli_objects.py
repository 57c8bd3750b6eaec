"""``unetweights evaluate --instances TRUE PRED``: instance masks matched object by object, the
dataset's scores printed, per-image and dataset rows written; user errors are one line, status 2."""

import csv
import json
import math

import numpy as np
import pytest
import tifffile
from PIL import Image

from unetweights.cli import main
from unetweights.matching import ObjectMatching
from unetweights.synthetic import touching_nuclei


def write(path, array):
    {".npy": lambda: np.save(path, array), ".tif": lambda: tifffile.imwrite(path, array),
     ".png": lambda: Image.fromarray(array).save(path)}[path.suffix]()


@pytest.fixture
def folders(tmp_path):
    """Three images a side, in three formats, the predictions binary (for --semantic); and an
    image with no object on either side."""
    true_dir, pred_dir = tmp_path / "true", tmp_path / "pred"
    true_dir.mkdir()
    pred_dir.mkdir()
    pairs = []
    for k, suffix in enumerate([".npy", ".tif", ".png"]):
        labels = touching_nuclei((40, 48), 6, radius=7, seed=k).astype(np.uint8)
        pred = (np.roll(labels, k, axis=1) > 0).astype(np.uint8)
        write(true_dir / f"cell{k}{suffix}", labels)
        write(pred_dir / f"cell{k}{'.png' if suffix == '.npy' else '.npy'}", pred)  # paired by name, not suffix
        pairs.append((labels, pred))
    empty = np.zeros((8, 8), np.uint8)
    write(true_dir / "empty.npy", empty)
    write(pred_dir / "empty.npy", empty)
    pairs.append((empty, empty))
    return true_dir, pred_dir, pairs


def test_folders_are_matched_and_written(folders, tmp_path, capsys):
    true_dir, pred_dir, pairs = folders
    argv = ["evaluate", "--instances", str(true_dir), str(pred_dir), "--semantic", "--thresholds", "0.5", "0.75",
            "--containment", "0.6", "--csv", str(tmp_path / "objects.csv"), "--json", str(tmp_path / "objects.json")]
    assert main(argv) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    expected = ObjectMatching([0.5, 0.75], semantic=True, containment=0.6)
    per_image = [expected.update(t, p) for t, p in pairs]
    total = expected.compute()
    assert "4 image(s)" in printed and f"{total.n_true} true, {total.n_pred} predicted" in printed
    with open(tmp_path / "objects.csv") as handle:
        rows = list(csv.DictReader(handle))
    names = ["cell0", "cell1", "cell2", "empty"]
    assert [row["image"] for row in rows] == [n for n in names for _ in range(2)] + ["(dataset)"] * 2
    for row, scores, k in zip(rows, [s for s in per_image for _ in range(2)] + [total] * 2, [0, 1] * 5):
        assert float(row["threshold"]) == [0.5, 0.75][k]
        assert int(row["tp"]) == scores.tp[k] and int(row["merges"]) == scores.merges
        f1 = scores.f1[k]
        assert (math.isnan(f1) and row["f1"] == "nan") or float(row["f1"]) == pytest.approx(f1, abs=1e-12)
    document = json.loads((tmp_path / "objects.json").read_text())  # strict JSON: NaN as null
    assert document["thresholds"] == [0.5, 0.75]
    assert document["dataset"][1]["panoptic_quality"] == pytest.approx(total.panoptic_quality[1])
    assert document["per_image"][6]["image"] == "empty" and document["per_image"][6]["f1"] is None
    assert len(document["per_image"]) == 8


def test_two_files_of_instance_labels_3d(tmp_path, capsys):
    true = np.zeros((3, 6, 6), np.int32)
    true[:, :3, :3], true[:, 3:, 3:] = 4, 9
    pred = true.copy()
    pred[:, :3, :3] = 0  # one object missed
    np.save(tmp_path / "t.npy", true)
    np.save(tmp_path / "p.npy", pred)
    assert main(["evaluate", "--instances", str(tmp_path / "t.npy"), str(tmp_path / "p.npy")]) == 0
    printed = capsys.readouterr().out
    line = next(line for line in printed.splitlines() if line.split()[:1] == ["0.5"])
    assert line.split()[1:7] == ["1", "0", "1", "1.000", "0.500", "0.667"]


@pytest.mark.parametrize(
    "extra,expected",
    [
        (["--thresholds", "0"], r"--thresholds: expected IoU thresholds in \(0, 1\]"),
        (["--containment", "1.5"], r"--containment: expected a share in \(0, 1\], got 1.5"),
        (["--connectivity", "2"], r"--connectivity: only with --semantic"),
        (["--semantic", "--connectivity", "4"], r"--connectivity: expected 1, 2 or 3"),
        (["--logits", "x.npy"], r"--logits: not with --instances"),
    ],
)
def test_bad_options_are_one_line(folders, capsys, extra, expected):
    import re

    true_dir, pred_dir, _ = folders
    assert main(["evaluate", "--instances", str(true_dir), str(pred_dir), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and re.search(expected, err), err


def test_inputs_that_do_not_pair_are_refused(folders, tmp_path, capsys):
    true_dir, pred_dir, _ = folders
    (pred_dir / "empty.npy").unlink()
    assert main(["evaluate", "--instances", str(true_dir), str(pred_dir), "--semantic"]) == 2
    assert "PRED" in (err := capsys.readouterr().err) and "no mask named like empty.npy (1 missing)" in err
    assert main(["evaluate", "--instances", str(true_dir / "cell0.npy"), str(pred_dir)]) == 2
    assert "must be two files or two folders" in capsys.readouterr().err
    assert main(["evaluate", "--instances", str(true_dir / "nothing.npy"), str(pred_dir)]) == 2
    assert "TRUE: no such file or folder" in capsys.readouterr().err


def test_a_binary_prediction_needs_semantic(folders, capsys):
    true_dir, pred_dir, _ = folders
    np.save(pred_dir / "empty.npy", np.zeros((8, 8), bool))  # the others are uint8: instance labels as given
    assert main(["evaluate", "--instances", str(true_dir), str(pred_dir)]) == 2
    assert "empty" in (err := capsys.readouterr().err) and "give --semantic" in err


def test_outputs_never_overwrite_an_input(folders, tmp_path, capsys):
    true_dir, pred_dir, _ = folders
    target = pred_dir / "cell0.png"
    before = target.read_bytes()
    argv = ["evaluate", "--instances", str(true_dir / "cell0.npy"), str(target), "--semantic", "--csv", str(target)]
    assert main(argv) == 2
    assert "--csv" in (err := capsys.readouterr().err) and "is the --instances PRED input" in err
    assert target.read_bytes() == before
    both = str(tmp_path / "same.txt")
    assert main(["evaluate", "--instances", str(true_dir), str(pred_dir), "--csv", both, "--json", both]) == 2
    assert "is also the --csv file" in capsys.readouterr().err


def test_the_graph_mode_still_needs_its_arguments(capsys):
    assert main(["evaluate"]) == 2
    assert "graph: required to run a graph (or give --instances TRUE PRED" in capsys.readouterr().err
    assert main(["evaluate", "g.onnx", "--logits", "l.npy"]) == 2
    assert "--target: required to run a graph" in capsys.readouterr().err
    assert main(["evaluate", "g.onnx", "--logits", "l.npy", "--target", "t.npy", "--semantic"]) == 2
    assert "--semantic: only with --instances" in capsys.readouterr().err
