"""The console script: every subcommand runs, writes what it says, and user errors are one line."""

import csv
import json
import math
import re
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from unetweights.cli import build_parser, main
from unetweights.evaluation import EvaluationGraph
from unetweights.synthetic import touching_nuclei
from unetweights.weightmaps import unet_weight_map

SUBCOMMANDS = ["demo", "precompute", "export", "evaluate", "show"]


def assert_png(path, min_side=50):
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert min(image.size) >= min_side


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_has_help_with_an_example(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert "example:" in text and f"unetweights {command}" in text


def test_top_level_help_lists_the_subcommands(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    text = capsys.readouterr().out
    assert all(command in text for command in SUBCOMMANDS)


def test_demo_quick(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--workers", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "with weight map" in printed and "without weight map" in printed and "object F1" in printed
    assert "CPUExecutionProvider" in printed or "CUDAExecutionProvider" in printed
    for name in ("weight_map.png", "predictions.png", "loss_curve.png"):
        assert_png(out / name)
    assert (out / "eval.onnx").is_file()
    assert any((out / "cache").iterdir()), "the weight maps were cached by the DataLoader workers"


@pytest.fixture
def masks(tmp_path):
    folder = tmp_path / "masks"
    folder.mkdir()
    labels = [touching_nuclei((48, 40), 6, radius=8, seed=k) for k in range(3)]
    for k, mask in enumerate(labels):
        np.save(folder / f"mask{k}.npy", mask)
    return folder, labels


def test_precompute(tmp_path, masks, capsys):
    folder, labels = masks
    out = tmp_path / "weights"
    assert main(["precompute", str(folder), "--out", str(out), "--sigma", "3", "--quiet"]) == 0
    for k, mask in enumerate(labels):
        np.testing.assert_array_equal(np.load(out / f"mask{k}.npy"), unet_weight_map(mask, sigma=3.0))
    assert "3" in capsys.readouterr().out


def test_precompute_writes_the_target_maps(tmp_path, masks):
    from unetweights.weightmaps import signed_distance_map, tubed_skeleton

    folder, labels = masks
    out = tmp_path / "maps"
    argv = ["precompute", str(folder), "--out", str(out), "--quiet", "--spacing", "2", "1"]
    assert main(argv + ["--signed-distance", "--skeleton-radius", "1.5"]) == 0
    for k, mask in enumerate(labels):
        foreground = mask > 0
        want = np.stack([signed_distance_map(~foreground, (2, 1)), signed_distance_map(foreground, (2, 1))])
        np.testing.assert_array_equal(np.load(out / f"mask{k}.distance.npy"), want)
        skeleton = tubed_skeleton(foreground, radius=1.5, spacing=(2, 1)).astype(np.int64)
        np.testing.assert_array_equal(np.load(out / f"mask{k}.skeleton.npy"), skeleton)


def test_precompute_target_maps_need_mask_files(tmp_path, masks, capsys):
    assert main(["precompute", "--zarr", "a.zarr", "b.zarr", "--signed-distance"]) == 2
    assert "--signed-distance" in capsys.readouterr().err
    folder, _ = masks
    assert main(["precompute", str(folder), "--out", str(tmp_path / "o"), "--skeleton-radius", "nan"]) == 2
    assert "skeleton_radius" in capsys.readouterr().err


def test_precompute_reports_a_bad_file_and_exits_nonzero(tmp_path, masks, capsys):
    folder, _ = masks
    (folder / "broken.npy").write_bytes(b"not an array")
    out = tmp_path / "weights"
    assert main(["precompute", str(folder), "--out", str(out), "--quiet"]) == 1
    printed = capsys.readouterr().out
    assert "broken.npy" in printed
    assert sorted(p.name for p in out.glob("*.npy")) == ["mask0.npy", "mask1.npy", "mask2.npy"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("export")
    assert main(["export", "--classes", "3", "--out", str(out)]) == 0
    return out


def test_export(exported, capsys):
    assert (exported / "eval.onnx").is_file() and (exported / "eval.pt").is_file()
    loaded = torch.jit.load(str(exported / "eval.pt"))
    logits, target = torch.randn(1, 3, 5, 7), torch.randint(0, 3, (1, 5, 7))
    expected = EvaluationGraph.default()(logits, target)
    for name, value in loaded(logits, target).items():
        torch.testing.assert_close(value, expected[name])


@pytest.mark.parametrize("pt2", [False, True])
def test_export_writes_the_pt2_files_on_request(tmp_path, capsys, monkeypatch, pt2):
    """The wiring of --pt2, with the exporters replaced by recorders (to_pt2 itself is tested in
    tests/export/test_pt2.py, and one compile there costs tens of seconds)."""
    import unetweights.export as export

    calls = {}

    def recorder(name):
        def record(graph, path, example, **options):
            calls[name] = (graph, str(path), example, options)
            return "report"

        return record

    for name in ("to_onnx", "to_torchscript", "to_pt2"):
        monkeypatch.setattr(export, name, recorder(name))
    out = tmp_path / "graph"
    assert main(["export", "--classes", "3", "--out", str(out)] + (["--pt2"] if pt2 else [])) == 0
    printed = capsys.readouterr().out
    assert ("to_pt2" in calls) == pt2 and ("eval.pt2" in printed) == pt2
    if pt2:
        graph, path, example, options = calls["to_pt2"]
        assert isinstance(graph, EvaluationGraph) and graph.output_names == calls["to_onnx"][0].output_names
        assert path == str(out / "eval.pt2") and options == {"program_path": out / "eval_program.pt2"}
        assert example is calls["to_onnx"][2]
        assert "eval_program.pt2" in printed


def test_export_3d_without_weight_with_surface_metrics(tmp_path, capsys):
    surface = ["--surface", "1.0", "2.0", "--percentile", "90", "--spacing", "2", "1", "1", "--ignore-empty"]
    argv = ["export", "--classes", "2", "--ndim", "3", "--no-weight", *surface, "--out", str(tmp_path / "graph")]
    (tmp_path / "graph").mkdir()
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "logits: float32[batch, 2, depth, height, width]" in printed
    inputs = printed.split("inputs:")[1].split("outputs:")[0]
    assert "target: int64[batch, depth, height, width]" in inputs and "weight:" not in inputs
    # What the printout names is what both saved graphs compute, and nothing else (no dice_loss).
    graph = EvaluationGraph.default(ignore_empty=True, tolerance=[1.0, 2.0], percentile=90.0, spacing=[2.0, 1.0, 1.0])
    names = graph.output_names
    assert names[-3:] == ["hausdorff", "assd", "nsd"]
    onnx_outputs = printed.split("outputs:")[1].split(str(tmp_path / "graph" / "eval.pt"))[0].strip().splitlines()
    assert [line.split(":")[0].strip() for line in onnx_outputs] == names
    assert f"outputs {', '.join(names)};" in printed and "dice_loss" not in printed
    g = torch.Generator().manual_seed(3)
    logits, target = torch.randn(2, 2, 5, 9, 7, generator=g), torch.randint(0, 2, (2, 5, 9, 7), generator=g)
    target[0] = 0  # class 1 absent from image 0: NaN Dice with --ignore-empty, inf Hausdorff distance
    scripted = torch.jit.load(str(tmp_path / "graph" / "eval.pt"))(logits, target)
    assert list(scripted) == names
    expected = graph(logits, target)
    assert torch.isnan(expected["dice"][0, 1]) and torch.isinf(expected["hausdorff"][0, 1])
    # The command line's evaluate runs the ONNX graph to the same numbers.
    np.save(tmp_path / "logits.npy", logits.numpy())
    np.save(tmp_path / "target.npy", target.numpy())
    argv = [
        "evaluate", str(tmp_path / "graph" / "eval.onnx"), "--logits", str(tmp_path / "logits.npy"),
        "--target", str(tmp_path / "target.npy"), "--quiet", "--json", str(tmp_path / "scores.json"),
    ]
    assert main(argv) == 0
    rows = json.loads((tmp_path / "scores.json").read_text())["per_image"]
    for name in ("hausdorff", "assd", "nsd", "dice"):
        torch.testing.assert_close(scripted[name], expected[name], equal_nan=True)
        for k, row in enumerate(rows):
            for c in range(2):
                value, want = row[f"{name}_{c}"], float(expected[name][k, c])
                if value is None or isinstance(value, str):
                    # Strict JSON: NaN is null, an infinite distance "inf".
                    assert (value is None and math.isnan(want)) or (value == "inf" and want == math.inf), (name, k, c)
                else:
                    assert abs(value - want) <= 1e-5, (name, k, c)


@pytest.mark.parametrize(
    "flags, expected",
    [
        (["--spacing", "1", "1"], "--spacing: only the surface metrics"),
        (["--surface", "1", "--spacing", "1"], "--spacing: expected 2 values"),
        (["--surface", "-1"], "tolerance"),
        (["--surface", "1", "--percentile", "0"], "percentile"),
        (["--surface", "nan"], "--surface: expected finite"),
    ],
)
def test_export_refuses_bad_surface_options(tmp_path, capsys, flags, expected):
    assert main(["export", "--classes", "2", *flags, "--out", str(tmp_path)]) == 2
    assert expected in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_evaluate_writes_csv_and_json(exported, tmp_path, capsys):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(5, 3, 12, 9, generator=g)
    target = torch.randint(0, 3, (5, 12, 9), generator=g)
    weight = torch.rand(5, 12, 9, generator=g)
    np.save(tmp_path / "logits.npy", logits.double().numpy())  # float64 and int32 are cast to the graph's types
    np.save(tmp_path / "target.npy", target.int().numpy())
    np.save(tmp_path / "weight.npy", weight.numpy())
    argv = [
        "evaluate", str(exported / "eval.onnx"), "--logits", str(tmp_path / "logits.npy"), "--target",
        str(tmp_path / "target.npy"), "--weight", str(tmp_path / "weight.npy"), "--batch-size", "2", "--quiet",
        "--csv", str(tmp_path / "scores.csv"), "--json", str(tmp_path / "scores.json"),
    ]
    assert main(argv) == 0
    assert "5 images" in capsys.readouterr().out
    expected = EvaluationGraph.default()(logits, target, weight)
    with open(tmp_path / "scores.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 5
    for k, row in enumerate(rows):
        assert abs(float(row["ce"]) - float(expected["ce"][k])) <= 1e-5
        assert abs(float(row["dice_2"]) - float(expected["dice"][k, 2])) <= 1e-5
    summary = json.loads((tmp_path / "scores.json").read_text())["summary"]
    np.testing.assert_allclose(summary["iou"]["mean"], expected["iou"].double().mean(0).numpy(), atol=1e-5)


def _evaluate_inputs(folder, n=3, seed=4):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, 3, 10, 8, generator=g)
    target = torch.randint(0, 3, (n, 10, 8), generator=g)
    weight = 5.0 * torch.rand(n, 10, 8, generator=g)
    for name, value in (("logits", logits), ("target", target), ("weight", weight)):
        np.save(folder / f"{name}.npy", value.numpy())
    return logits, target, weight


def _evaluate_argv(exported, folder, weight="weight.npy", logits="logits.npy"):
    return [
        "evaluate", str(exported / "eval.onnx"), "--logits", str(folder / logits), "--target", str(folder / "target.npy"),
        "--weight", str(folder / weight), "--quiet", "--json", str(folder / "scores.json"),
    ]


def test_evaluate_reads_a_float_tiff_weight_map(exported, tmp_path, capsys):
    """A weight map is float values: a .tif of them is read as such, not as a label mask."""
    import tifffile

    logits, target, weight = _evaluate_inputs(tmp_path)
    tifffile.imwrite(tmp_path / "weight.tif", weight.numpy(), photometric="minisblack")
    assert main(_evaluate_argv(exported, tmp_path, weight="weight.tif")) == 0, capsys.readouterr().err
    rows = json.loads((tmp_path / "scores.json").read_text())["per_image"]
    expected = EvaluationGraph.default()(logits, target, weight)
    np.testing.assert_allclose([row["ce"] for row in rows], expected["ce"].numpy(), atol=1e-5)
    assert not np.allclose(expected["ce"].numpy(), EvaluationGraph.default()(logits, target)["ce"].numpy())


@pytest.mark.parametrize(
    "values,suffix,expected",
    [
        (lambda w: np.where(w > 4.0, np.nan, w), ".tif", r"--weight: .*bad.tif holds NaN or infinite weights"),
        (lambda w: -w, ".tif", r"--weight: .*bad.tif holds negative weights \(minimum -"),
        (lambda w: w > 1.0, ".npy", r"--weight: .*bad.npy holds bool values; expected real-valued weights"),
        (lambda w: w.astype(np.complex64), ".npy", r"--weight: .*bad.npy holds complex64 values; expected real-valued"),
        (lambda w: w[0].astype(np.uint8), ".png", r"--weight: .*bad.png: expected a weight map in a .npy or .tif/.tiff file"),
    ],
)
def test_evaluate_refuses_a_bad_weight_map_by_name(exported, tmp_path, capsys, values, suffix, expected):
    import tifffile
    from PIL import Image

    _, _, weight = _evaluate_inputs(tmp_path)
    bad = values(weight.numpy())
    path = tmp_path / f"bad{suffix}"
    {".tif": lambda: tifffile.imwrite(path, bad, photometric="minisblack"), ".npy": lambda: np.save(path, bad), ".png": lambda: Image.fromarray(bad).save(path)}[suffix]()
    assert main(_evaluate_argv(exported, tmp_path, weight=path.name)) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert re.search(expected, err), err


@pytest.mark.parametrize(
    "logits,expected",
    [
        (np.float32(1.5), r"--logits: .*logits0.npy has shape \[\]; the graph takes 4 dims float32\[batch, 3, height, width\] \(N, C, \*spatial\)"),
        (np.zeros((3, 10, 8), np.float32), r"--logits: .*logits0.npy has shape \[3, 10, 8\]; the graph takes 4 dims"),
        (np.zeros((0, 3, 10, 8), np.float32), r"--logits: .*logits0.npy holds no images \(shape \[0, 3, 10, 8\]\); expected at least one"),
    ],
)
def test_evaluate_names_logits_of_the_wrong_rank(exported, tmp_path, capsys, logits, expected):
    _evaluate_inputs(tmp_path)
    np.save(tmp_path / "logits0.npy", logits)
    assert main(_evaluate_argv(exported, tmp_path, logits="logits0.npy")) == 2
    err = capsys.readouterr().err.strip()
    assert re.search(expected, err), err
    assert "unsized" not in err


def test_show_reads_a_float_tiff_weight_map(tmp_path, monkeypatch, capsys):
    import tifffile

    import unetweights.plot

    labels = touching_nuclei((32, 40), 4, radius=7, seed=2)
    np.save(tmp_path / "labels.npy", labels)
    weight = unet_weight_map(labels, sigma=2.0)
    tifffile.imwrite(tmp_path / "weight.tif", weight)
    shown = {}
    monkeypatch.setattr(unetweights.plot, "plot_weight_map", lambda labels, weight, out, **kw: shown.update(weight=weight) or out)
    argv = ["show", str(tmp_path / "labels.npy"), "--weight", str(tmp_path / "weight.tif"), "--out", str(tmp_path / "w.png")]
    assert main(argv) == 0, capsys.readouterr().err
    np.testing.assert_array_equal(shown["weight"], weight)
    tifffile.imwrite(tmp_path / "weight.tif", weight[:, :-1])
    assert main(argv) == 2
    assert "--weight: shape [32, 39] does not match the labels' shape [32, 40]" in capsys.readouterr().err


def test_demo_without_matplotlib_prints_the_scores_and_names_the_skipped_figures(tmp_path, monkeypatch, capsys):
    """Figures are the only part that needs the plot extra: the demo trains, evaluates and prints
    its table, then says which figures it skipped and why, rather than failing at the end."""
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    with pytest.raises(ImportError):
        import matplotlib  # noqa: F401
    out = tmp_path / "demo"
    argv = ["demo", "--quick", "--steps", "2", "--size", "32", "--workers", "0", "--out", str(out)]
    assert main(argv) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "with weight map" in printed and "without weight map" in printed and "object F1" in printed
    assert re.search(
        r"figures +skipped \(weight_map.png, predictions.png, loss_curve.png\): figures need matplotlib: "
        r"pip install 'unetweights\[plot\]'", printed
    ), printed
    assert not list(out.glob("*.png")) and (out / "eval.onnx").is_file()


def test_evaluate_absent_class_is_na_in_the_table_and_null_in_json(exported, tmp_path, capsys):
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(3, 3, 6, 5, generator=g)
    logits[:, 2] -= 100.0  # class 2 is never predicted...
    target = torch.randint(0, 2, (3, 6, 5), generator=g)  # ...and never in the target
    target[0] = 0  # image 0 has no class 1 in its target, which it still predicts: Dice 0, accuracy NaN
    np.save(tmp_path / "logits.npy", logits.numpy())
    np.save(tmp_path / "target.npy", target.numpy())
    np.save(tmp_path / "weight.npy", np.ones((3, 6, 5), dtype=np.float32))
    argv = [
        "evaluate", str(exported / "eval.onnx"), "--logits", str(tmp_path / "logits.npy"), "--target",
        str(tmp_path / "target.npy"), "--weight", str(tmp_path / "weight.npy"), "--quiet",
        "--json", str(tmp_path / "scores.json"), "--csv", str(tmp_path / "scores.csv"),
    ]
    assert main(argv) == 0
    table = capsys.readouterr().out
    dice_row = next(line for line in table.splitlines() if line.startswith("dice "))
    assert dice_row.rstrip().endswith("n/a")
    accuracy_row = next(line for line in table.splitlines() if line.startswith("accuracy "))
    assert "[2]" in accuracy_row and accuracy_row.rstrip().endswith("n/a")
    document = json.loads((tmp_path / "scores.json").read_text())  # strict JSON: no NaN tokens
    assert document["summary"]["dice"]["mean"][2] is None and document["summary"]["dice"]["count"] == [3, 3, 0]
    assert document["summary"]["accuracy"]["count"] == [3, 2, 0]
    assert all(row["dice_2"] is None for row in document["per_image"]) and document["per_image"][0]["accuracy_1"] is None
    assert isinstance(document["per_image"][0]["dice_1"], float)
    with open(tmp_path / "scores.csv") as handle:
        assert all(row["dice_2"] == "nan" for row in csv.DictReader(handle))


def test_evaluate_feeds_the_distance_input(tmp_path, capsys):
    import unetweights.losses as L
    from unetweights.export import to_onnx

    graph = EvaluationGraph(losses={"boundary": L.BoundaryLoss(include_background=False)})
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(3, 2, 10, 7, generator=g)
    target = torch.randint(0, 2, (3, 10, 7), generator=g)
    weight = torch.rand(3, 10, 7, generator=g)
    distance = L.distance_transform((target == 1).unsqueeze(1))
    to_onnx(graph, tmp_path / "boundary.onnx", (logits[:2], target[:2], weight[:2], distance[:2]))
    for name, value in (("logits", logits), ("target", target), ("weight", weight), ("distance", distance)):
        np.save(tmp_path / f"{name}.npy", value.numpy())
    argv = ["evaluate", str(tmp_path / "boundary.onnx"), "--quiet", "--json", str(tmp_path / "scores.json")]
    for name in ("logits", "target", "weight"):
        argv += [f"--{name}", str(tmp_path / f"{name}.npy")]
    assert main(argv) == 2
    assert "give --distance" in capsys.readouterr().err
    assert main(argv + ["--distance", str(tmp_path / "distance.npy")]) == 0
    rows = json.loads((tmp_path / "scores.json").read_text())["per_image"]
    expected = graph(logits, target, weight, distance)["boundary"]
    np.testing.assert_allclose([row["boundary"] for row in rows], expected.numpy(), atol=1e-6)


def test_show_writes_a_png(tmp_path, capsys):
    labels = touching_nuclei((64, 80), 8, radius=10, seed=1)
    np.save(tmp_path / "labels.npy", labels)
    np.save(tmp_path / "image.npy", np.random.default_rng(0).random((64, 80)).astype(np.float32))
    out = tmp_path / "figure" / "labels.png"
    assert main(["show", str(tmp_path / "labels.npy"), "--image", str(tmp_path / "image.npy"), "--out", str(out)]) == 0
    assert_png(out)
    assert str(out) in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv,expected",
    [
        (["show", "missing.npy"], "labels: no such file"),
        (["show", "{labels}", "--sigma", "-1"], "sigma"),
        (["precompute", "nowhere/", "--out", "{tmp}"], "masks: no such file or folder"),
        (["precompute", "{labels}", "--out", "{tmp}", "--workers", "0"], "--workers: expected at least 1"),
        (["evaluate", "missing.onnx", "--logits", "a.npy", "--target", "b.npy"], "graph: no such file"),
        (["export", "--classes", "1", "--out", "{tmp}"], "--classes: expected at least 2"),
        (["demo", "--size", "30", "--quick", "--out", "{tmp}"], "size: expected a multiple of 4"),
    ],
)
def test_user_errors_are_one_line_and_nonzero(tmp_path, capsys, argv, expected):
    np.save(tmp_path / "labels.npy", touching_nuclei((32, 32), 3, radius=6))
    argv = [a.format(labels=tmp_path / "labels.npy", tmp=tmp_path / "out") for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and expected in err and "Traceback" not in err
