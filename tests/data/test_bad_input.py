"""Trust under bad input: no operation destroys an input, outputs agree with their manifest, and
bad paths or shapes fail early with a message that names the argument (and both paths)."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from unetweights.cli import main
from unetweights.data import WeightMapDataset, precompute
from unetweights.synthetic import touching_nuclei
from unetweights.weightmaps import unet_weight_map

from ..data_fixtures import write_npy_masks

MANIFEST = "unetweights_manifest.json"


def small_masks(n, shape=(24, 20)):
    return [touching_nuclei(shape, 3, radius=5.0, seed=k) for k in range(n)]


def snapshot(folder):
    """Every file under ``folder`` with its bytes and mtime: equal snapshots mean nothing was touched."""
    return {
        str(path.relative_to(folder)): (path.read_bytes(), path.stat().st_mtime_ns)
        for path in sorted(Path(folder).rglob("*"))
        if path.is_file()
    }


def one_line_error(capsys):
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    return err


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder no file can be created in, or a skip where mode bits do not stop this user (root)."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        (folder / "probe").touch()
    except PermissionError:
        yield folder
    else:
        pytest.skip("a 0o500 folder is writable for this user (root); the check cannot be provoked")
    finally:
        folder.chmod(0o700)


# -- precompute never writes over or deletes an input ---------------------------------------------------


@pytest.mark.parametrize("overwrite", [False, True])
def test_precompute_into_the_masks_own_folder_is_refused(tmp_path, overwrite):
    folder = tmp_path / "masks"
    paths = write_npy_masks(folder, small_masks(3))
    before = snapshot(folder)
    with pytest.raises(ValueError) as info:
        precompute(paths, folder, progress=False, overwrite=overwrite)
    message = str(info.value)
    assert message.startswith("out_dir: ") and str(folder) in message
    assert f"is the mask_paths[0] input {paths[0]}," in message and "never writes over or deletes an input" in message
    assert snapshot(folder) == before, "the masks are byte-identical, nothing was added"


@pytest.mark.parametrize("overwrite", [False, True])
def test_precompute_through_a_symlinked_out_dir_is_refused(tmp_path, overwrite):
    folder = tmp_path / "masks"
    paths = write_npy_masks(folder, small_masks(2))
    link = tmp_path / "link"
    link.symlink_to(folder, target_is_directory=True)
    before = snapshot(folder)
    with pytest.raises(ValueError, match=r"^out_dir: .* is the mask_paths\[0\] input "):
        precompute(paths, link, progress=False, overwrite=overwrite)
    assert snapshot(folder) == before


def test_precompute_refuses_an_output_hard_linked_to_an_input(tmp_path):
    paths = write_npy_masks(tmp_path / "masks", small_masks(2))
    out = tmp_path / "out"
    out.mkdir()
    os.link(paths[1], out / "mask1.npy")
    before = snapshot(tmp_path)
    with pytest.raises(ValueError) as info:
        precompute(paths, out, progress=False, overwrite=True)
    assert str(out / "mask1.npy") in str(info.value) and str(paths[1]) in str(info.value)
    assert snapshot(tmp_path) == before


def test_an_overwrite_never_deletes_an_input_that_the_old_manifest_owns(tmp_path):
    masks = small_masks(3)
    paths = write_npy_masks(tmp_path / "masks", masks)
    out = tmp_path / "out"
    precompute(paths, out, progress=False, sigma=3.0)
    # A user takes one finished map as an input elsewhere, through a hard link.
    elsewhere = tmp_path / "elsewhere" / "taken.npy"
    elsewhere.parent.mkdir()
    os.link(out / "mask2.npy", elsewhere)
    before = snapshot(tmp_path)
    with pytest.raises(ValueError) as info:
        precompute([paths[0], elsewhere], out, progress=False, overwrite=True, sigma=4.0)
    message = str(info.value)
    assert "would delete" in message and str(out / "mask2.npy") in message and str(elsewhere) in message
    assert snapshot(tmp_path) == before


# -- the folder's maps always agree with its manifest -----------------------------------------------------


def test_a_partial_overwrite_with_new_options_leaves_no_old_map(tmp_path):
    masks = small_masks(4)
    paths = write_npy_masks(tmp_path / "masks", masks)
    out = tmp_path / "out"
    precompute(paths, out, progress=False, sigma=3.0)
    (out / "notes.txt").write_text("mine")
    np.save(out / "other.npy", np.zeros(3))  # not precompute's: never deleted

    report = precompute(paths[:2], out, progress=False, overwrite=True, sigma=4.0)
    assert (report.written, report.removed) == (2, 2)
    assert "2 maps of other masks, made with the old options, removed" in report.summary()
    assert not (out / "mask2.npy").exists() and not (out / "mask3.npy").exists()
    assert (out / "notes.txt").read_text() == "mine" and (out / "other.npy").exists()
    assert json.loads((out / MANIFEST).read_text())["outputs"] == ["mask0.npy", "mask1.npy"]

    resumed = precompute(paths, out, progress=False, sigma=4.0)
    assert (resumed.skipped, resumed.written) == (2, 2)
    for k, mask in enumerate(masks):
        np.testing.assert_array_equal(np.load(out / f"mask{k}.npy"), unet_weight_map(mask, sigma=4.0))


def test_an_overwrite_with_the_same_options_keeps_the_other_maps(tmp_path):
    paths = write_npy_masks(tmp_path / "masks", small_masks(3))
    out = tmp_path / "out"
    precompute(paths, out, progress=False, sigma=3.0)
    kept = (out / "mask2.npy").read_bytes()
    report = precompute(paths[:1], out, progress=False, overwrite=True, sigma=3.0)
    assert (report.written, report.removed) == (1, 0)
    assert (out / "mask2.npy").read_bytes() == kept
    assert json.loads((out / MANIFEST).read_text())["outputs"] == ["mask0.npy", "mask1.npy", "mask2.npy"]


def test_a_resume_never_takes_an_unlisted_file_for_a_finished_map(tmp_path):
    masks = small_masks(2)
    paths = write_npy_masks(tmp_path / "masks", masks)
    out = tmp_path / "out"
    precompute(paths[:1], out, progress=False, sigma=3.0)
    np.save(out / "mask1.npy", np.ones((24, 20), np.float32))  # whole, but not precompute's
    before = snapshot(out)
    with pytest.raises(ValueError, match=r"^out_dir .* 1 of the outputs \(e.g. mask1.npy\) that its "
                       r"unetweights_manifest.json does not list"):
        precompute(paths, out, progress=False, sigma=3.0)
    assert snapshot(out) == before
    assert precompute(paths, out, progress=False, overwrite=True, sigma=3.0).written == 2
    np.testing.assert_array_equal(np.load(out / "mask1.npy"), unet_weight_map(masks[1], sigma=3.0))


def test_an_old_manifest_without_an_outputs_list_owns_nothing(tmp_path):
    paths = write_npy_masks(tmp_path / "masks", small_masks(2))
    out = tmp_path / "out"
    precompute(paths, out, progress=False)
    manifest = json.loads((out / MANIFEST).read_text())
    del manifest["outputs"]
    manifest["version"] = 1
    (out / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match=r"^out_dir manifest .* cannot be read \(it is format version 1"):
        precompute(paths, out, progress=False)
    report = precompute(paths[:1], out, progress=False, overwrite=True)
    assert (report.written, report.removed) == (1, 0)
    with pytest.raises(ValueError, match=r"does not list"):  # mask1.npy of the old manifest: not taken as done
        precompute(paths, out, progress=False)


# -- out_dir and cache_dir that cannot hold the outputs --------------------------------------------------


def test_precompute_out_dir_that_is_a_file(tmp_path):
    paths = write_npy_masks(tmp_path / "masks", small_masks(1))
    out = tmp_path / "out.npy"
    out.write_bytes(b"a file")
    with pytest.raises(ValueError) as info:
        precompute(paths, out, progress=False)
    assert str(info.value) == f"out_dir {str(out)!r} is a file, not a folder"
    with pytest.raises(ValueError, match=r"^out_dir '.*out.npy/sub' cannot be created"):
        precompute(paths, out / "sub", progress=False)
    assert out.read_bytes() == b"a file"


def test_precompute_output_path_that_is_a_folder(tmp_path):
    paths = write_npy_masks(tmp_path / "masks", small_masks(2))
    out = tmp_path / "out"
    (out / "mask1.npy").mkdir(parents=True)
    for overwrite in (False, True):
        with pytest.raises(ValueError, match=r"^out_dir .* the output path .*mask1.npy is a folder"):
            precompute(paths, out, progress=False, overwrite=overwrite)
    assert (out / "mask1.npy").is_dir() and not (out / MANIFEST).exists()


def test_precompute_unwritable_out_dir(tmp_path, read_only_folder):
    paths = write_npy_masks(tmp_path / "masks", small_masks(1))
    with pytest.raises(ValueError, match=rf"^out_dir {str(read_only_folder)!r} is not writable"):
        precompute(paths, read_only_folder, progress=False)


def test_cache_dir_that_is_a_file_or_below_one(tmp_path):
    pairs = [(None, m) for m in small_masks(1)]
    file = tmp_path / "cache"
    file.write_text("x")
    with pytest.raises(ValueError) as info:
        WeightMapDataset(pairs, cache_dir=file)
    assert str(info.value) == f"cache_dir {str(file)!r} is a file, not a folder"
    with pytest.raises(ValueError, match=r"^cache_dir '.*cache/sub' cannot be created"):
        WeightMapDataset(pairs, cache_dir=file / "sub")


def test_unwritable_cache_dir(read_only_folder):
    with pytest.raises(ValueError, match=rf"^cache_dir {str(read_only_folder)!r} is not writable"):
        WeightMapDataset([(None, small_masks(1)[0])], cache_dir=read_only_folder)


def test_a_cache_entry_that_is_a_folder_is_recomputed_and_left_alone(tmp_path):
    mask = small_masks(1)[0]
    dataset = WeightMapDataset([(None, mask)], cache_dir=tmp_path, sigma=3.0)
    entry = dataset.cache_path(mask)
    entry.mkdir()
    (entry / "inside.txt").write_text("not the cache's")
    for _ in range(2):
        _, _, weight = dataset[0]
        np.testing.assert_array_equal(weight, unet_weight_map(mask, sigma=3.0))
    assert dataset.cache_info() == (0, 2, 0)
    assert (entry / "inside.txt").read_text() == "not the cache's"


def test_dataset_image_and_mask_shapes_must_agree():
    mask = small_masks(1)[0]
    for image in (np.zeros((24, 20)), np.zeros((1, 24, 20)), np.zeros((24, 20, 3))):
        assert WeightMapDataset([(image, mask)])[0][1].shape == (24, 20)
    with pytest.raises(ValueError) as info:
        WeightMapDataset([(np.zeros((20, 24)), mask)])[0]
    assert str(info.value).startswith("base[0]: image shape (20, 24) does not match mask shape (24, 20)")


# -- precompute_zarr onto its source ------------------------------------------------------------------------


@pytest.fixture
def zarr_source(tmp_path):
    zarr = pytest.importorskip("zarr")
    pytest.importorskip("dask.array")
    source = tmp_path / "labels.zarr"
    labels = touching_nuclei((8, 24, 20), 4, radius=5.0, seed=1)
    zarr.open(str(source), mode="w", shape=labels.shape, chunks=(4, 12, 10), dtype=labels.dtype)[:] = labels
    return source


@pytest.mark.parametrize("overwrite", [False, True])
@pytest.mark.parametrize("where, relation", [(".", "is"), ("./inside", "lies inside"), ("..", "contains")])
def test_precompute_zarr_refuses_its_source(tmp_path, zarr_source, where, relation, overwrite):
    from unetweights.dask import precompute_zarr

    destination = os.path.normpath(zarr_source / where)
    before = snapshot(tmp_path)
    with pytest.raises(ValueError) as info:
        precompute_zarr(str(zarr_source), destination, progress=False, overwrite=overwrite, sigma=2.0)
    assert str(info.value).startswith(f"destination: {destination} {relation} the source input {zarr_source},")
    assert snapshot(tmp_path) == before


def test_precompute_zarr_never_empties_a_folder_that_is_not_a_zarr_array(tmp_path, zarr_source, capsys):
    from unetweights.dask import precompute_zarr

    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "precious.txt").write_text("keep")
    with pytest.raises(ValueError, match=r"^destination: .*results exists; pass overwrite=True"):
        precompute_zarr(str(zarr_source), str(folder), progress=False)
    with pytest.raises(ValueError, match=r"^destination: .*results exists and is not a zarr array"):
        precompute_zarr(str(zarr_source), str(folder), progress=False, overwrite=True)
    assert main(["precompute", "--zarr", str(zarr_source), str(zarr_source), "--overwrite", "--quiet"]) == 2
    assert "is the source" in one_line_error(capsys)
    assert (folder / "precious.txt").read_text() == "keep"


# -- the command line ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_cli_precompute_into_the_masks_own_folder(tmp_path, capsys, overwrite):
    folder = tmp_path / "masks"
    paths = write_npy_masks(folder, small_masks(2))
    before = snapshot(folder)
    assert main(["precompute", str(folder), "--out", str(folder), "--quiet", *overwrite]) == 2
    err = one_line_error(capsys)
    assert "out_dir" in err and str(paths[0]) in err
    assert snapshot(folder) == before


@pytest.mark.parametrize(
    "argv, option, minimum",
    [
        (["demo", "--steps", "-1"], "--steps", 1),
        (["demo", "--steps", "0"], "--steps", 1),
        (["demo", "--train-images", "0"], "--train-images", 1),
        (["demo", "--test-images", "0"], "--test-images", 1),
        (["demo", "--size", "0"], "--size", 4),
        (["demo", "--workers", "-1"], "--workers", 0),
        (["demo", "--seed", "-3"], "--seed", 0),
        (["precompute", "masks", "--out", "out", "--workers", "-2"], "--workers", 1),
        (["export", "--out", "out", "--classes", "0"], "--classes", 1),
        (["evaluate", "g.onnx", "--logits", "a.npy", "--target", "b.npy", "--batch-size", "0"], "--batch-size", 1),
    ],
)
def test_cli_refuses_counts_below_their_minimum(tmp_path, capsys, monkeypatch, argv, option, minimum):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = one_line_error(capsys)
    assert err.endswith(f"error: {option}: expected at least {minimum}, got {argv[argv.index(option) + 1]}")
    assert list(tmp_path.iterdir()) == [], "refused before anything was written"


def test_run_demo_checks_its_arguments(tmp_path):
    from unetweights.demo import run_demo

    for name, value in (("steps", 0), ("n_train", 0), ("n_test", -1), ("workers", -1), ("steps", 2.5)):
        with pytest.raises(ValueError, match=rf"^{name}: expected an integer >= "):
            run_demo(tmp_path / "out", **{name: value})
    file = tmp_path / "file"
    file.write_text("x")
    with pytest.raises(ValueError, match=rf"^out {str(file)!r} is a file"):
        run_demo(file)
    assert not (tmp_path / "out").exists()


@pytest.fixture
def evaluate_inputs(tmp_path):
    """A graph file (never loaded: the output checks come first) and inputs, as evaluate's argv."""
    (tmp_path / "eval.onnx").write_bytes(b"not loaded before the outputs are checked")
    np.save(tmp_path / "logits.npy", np.zeros((1, 2, 4, 4), np.float32))
    np.save(tmp_path / "target.npy", np.zeros((1, 4, 4), np.int64))
    return ["evaluate", str(tmp_path / "eval.onnx"), "--logits", str(tmp_path / "logits.npy"),
            "--target", str(tmp_path / "target.npy"), "--quiet"]


@pytest.mark.parametrize("option", ["--csv", "--json"])
def test_cli_evaluate_refuses_unwritable_outputs_before_evaluating(tmp_path, capsys, evaluate_inputs, option):
    (tmp_path / "folder").mkdir()
    cases = {
        str(tmp_path / "folder"): "is a folder",
        str(tmp_path / "missing" / "scores"): "the folder",
        str(tmp_path / "logits.npy"): "is the --logits input",
        str(tmp_path / "eval.onnx"): "is the graph input",
    }
    before = snapshot(tmp_path)
    for path, reason in cases.items():
        assert main([*evaluate_inputs, option, path]) == 2
        err = one_line_error(capsys)
        assert any(f"error: {option}: {head}{path}" in err for head in ("", "cannot write ", "the folder of ")), err
        assert reason in err, err
    assert snapshot(tmp_path) == before


def test_cli_evaluate_refuses_one_file_for_csv_and_json(tmp_path, capsys, evaluate_inputs):
    path = str(tmp_path / "scores")
    assert main([*evaluate_inputs, "--csv", path, "--json", path]) == 2
    assert "--json:" in one_line_error(capsys)


def test_cli_evaluate_refuses_a_read_only_folder(capsys, evaluate_inputs, read_only_folder):
    path = str(read_only_folder / "scores.csv")
    assert main([*evaluate_inputs, "--csv", path]) == 2
    err = one_line_error(capsys)
    assert f"--csv: cannot write {path}" in err and "is not writable" in err


def test_cli_show_checks_shapes_and_never_overwrites_its_input(tmp_path, capsys):
    labels = small_masks(1)[0]
    np.save(tmp_path / "labels.npy", labels)
    np.save(tmp_path / "image.npy", np.zeros((20, 24), np.float32))
    np.save(tmp_path / "weight.npy", np.zeros((24, 21), np.float32))
    base = ["show", str(tmp_path / "labels.npy"), "--out", str(tmp_path / "figure.png")]
    assert main([*base, "--image", str(tmp_path / "image.npy")]) == 2
    assert "--image: shape [20, 24] does not match the labels' shape [24, 20]" in one_line_error(capsys)
    assert main([*base, "--weight", str(tmp_path / "weight.npy")]) == 2
    assert "--weight: shape [24, 21] does not match the labels' shape [24, 20]" in one_line_error(capsys)
    before = snapshot(tmp_path)
    assert main(["show", str(tmp_path / "labels.npy"), "--out", str(tmp_path / "labels.npy")]) == 2
    assert "--out:" in one_line_error(capsys)
    assert main(["show", str(tmp_path / "labels.npy"), "--out", str(tmp_path)]) == 2
    assert "is a folder" in one_line_error(capsys)
    assert snapshot(tmp_path) == before


def test_cli_export_out_that_is_a_file(tmp_path, capsys):
    file = tmp_path / "graphs"
    file.write_text("x")
    assert main(["export", "--out", str(file)]) == 2
    assert f"--out {str(file)!r} is a file, not a folder" in one_line_error(capsys)
    assert file.read_text() == "x"
