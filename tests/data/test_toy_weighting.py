"""A weighting is one function plus one table row: a toy weighting registered here reaches the
recipe, the transform, the dataset, precompute (in worker processes too), the command line (its
flags generated from the row), Dask and MONAI's WeightMapd, with nothing else written for it."""

import numpy as np
import pytest

from tests.data_fixtures import toy_weight_map, toy_weighting
from unetweights import WEIGHTINGS, WeightMapRecipe, WeightMapTransform, register_weighting
from unetweights.cli import build_parser, main
from unetweights.data import WeightMapDataset, precompute
from unetweights.synthetic import touching_nuclei


@pytest.fixture
def toy():
    register_weighting(toy_weighting())
    yield
    del WEIGHTINGS["toy"]


def _mask(seed=0, shape=(28, 30)):
    return touching_nuclei(shape, 5, radius=6.0, seed=seed)


def test_recipe_transform_and_dataset(toy, tmp_path):
    mask = _mask()
    want = toy_weight_map(mask, level=3.0, separate=True)
    recipe = WeightMapRecipe("toy", level=3, separate=True, skeleton_radius=0)
    np.testing.assert_array_equal(recipe.weight_map(mask), want)
    assert recipe.canonical(targets=False) == {
        "weighting": "toy", "level": 3.0, "spacing": None, "separate": True, "ignore_label": None
    }
    sample = WeightMapTransform(weighting="toy", level=3, separate=True)({"label": mask})
    np.testing.assert_array_equal(sample["weight"], want)
    assert WeightMapTransform(recipe=recipe)({"label": mask}).keys() == {"label", "weight", "skeleton"}
    dataset = WeightMapDataset([(None, mask)], cache_dir=tmp_path, target="separated", weighting="toy", level=3)
    for _ in range(2):
        np.testing.assert_array_equal(dataset[0][2], want)
    assert dataset.cache_info() == (1, 1, 0)
    assert dataset.recipe == WeightMapRecipe("toy", level=3, separate=True)
    with pytest.raises(ValueError, match="level must be a finite number"):
        WeightMapTransform(weighting="toy", level=float("nan"))
    with pytest.raises(TypeError, match="w0 is not an option of WeightMapDataset with weighting='toy'"):
        WeightMapDataset([], weighting="toy", w0=2.0)


@pytest.mark.parametrize("workers", [1, 2])
def test_precompute(toy, tmp_path, workers):
    masks = [_mask(seed) for seed in range(2)]
    paths = []
    for k, mask in enumerate(masks):
        paths.append(tmp_path / f"m{k}.npy")
        np.save(paths[-1], mask)
    report = precompute(paths, tmp_path / "out", workers=workers, progress=False, weighting="toy", level=0.5)
    assert report.ok and report.written == 2
    for path, mask in zip(paths, masks):
        np.testing.assert_array_equal(np.load(tmp_path / "out" / path.name), toy_weight_map(mask, level=0.5))
    # Resumed: the manifest records the toy's canonical form, and another level is refused.
    assert precompute(paths, tmp_path / "out", progress=False, weighting="toy", level=0.5).skipped == 2
    with pytest.raises(ValueError, match="level: 0.5 -> 1.0"):
        precompute(paths, tmp_path / "out", progress=False, weighting="toy", level=1.0)


def test_command_line(toy, tmp_path, capsys):
    parser = build_parser()
    flags = {a.dest: a for a in parser._subparsers._group_actions[0].choices["precompute"]._actions}
    assert "toy" in flags["weighting"].choices and flags["level"].type is float
    assert "toy: the toy's weight of a neighbourhood full of foreground (default 2.0)" == flags["level"].help
    mask = _mask()
    np.save(tmp_path / "m.npy", mask)
    argv = ["precompute", str(tmp_path / "m.npy"), "--out", str(tmp_path / "out"), "--quiet"]
    assert main([*argv, "--weighting", "toy", "--level", "4", "--separate"]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "out" / "m.npy"), toy_weight_map(mask, level=4.0, separate=True))
    capsys.readouterr()
    assert main([*argv, "--weighting", "toy", "--w0", "4"]) == 2
    assert "--w0: not an option of --weighting toy (its options: --level, --spacing, --separate, --ignore-label)" in (
        capsys.readouterr().err
    )
    assert main([*argv[:-1], "--weighting", "unet", "--level", "4", "--overwrite"]) == 2
    assert "--level: not an option of --weighting unet" in capsys.readouterr().err
    assert main(["show", str(tmp_path / "m.npy"), "--out", str(tmp_path / "m.png"), "--weighting", "toy", "--level", "1"]) == 0
    assert (tmp_path / "m.png").stat().st_size > 0


def test_dask(toy, tmp_path):
    da = pytest.importorskip("dask.array")
    zarr = pytest.importorskip("zarr")
    from unetweights.dask import precompute_zarr, required_halo, weight_map

    labels = touching_nuclei((20, 26, 30), 8, radius=5.0, seed=1)
    chunked = da.from_array(labels, chunks=(7, 9, 11))
    assert required_halo(3, weighting="toy", spacing=(2, 1, 1)) == (1, 2, 2)
    recipe = WeightMapRecipe("toy", level=2.5, spacing=(2, 1, 1), ignore_label=3)
    np.testing.assert_allclose(weight_map(chunked, recipe).compute(), recipe.weight_map(labels), rtol=1e-6)
    source, destination = str(tmp_path / "labels.zarr"), str(tmp_path / "weights.zarr")
    store = zarr.open(source, mode="w", shape=labels.shape, chunks=(7, 9, 11), dtype=labels.dtype)
    store[:] = labels
    assert main(["precompute", "--zarr", source, destination, "--weighting", "toy", "--level", "2.5", "--quiet"]) == 0
    np.testing.assert_allclose(zarr.open(destination, mode="r")[:], toy_weight_map(labels, level=2.5), rtol=1e-6)
    report = precompute_zarr(source, destination, progress=False, overwrite=True, recipe=recipe)
    assert report.halo == (1, 2, 2)


def test_monai(toy):
    pytest.importorskip("monai")
    import torch
    from monai.data import MetaTensor

    from unetweights.monai import WeightMapd

    mask = _mask()
    affine = torch.diag(torch.tensor([2.0, 1.0, 1.0, 1.0], dtype=torch.float64))
    label = MetaTensor(torch.from_numpy(mask[np.newaxis]), affine=affine)
    out = WeightMapd(keys="label", weighting="toy", level=1.5, spacing_from_meta=True, signed_distance=True)({"label": label})
    np.testing.assert_array_equal(out["weight"][0].numpy(), toy_weight_map(mask, level=1.5))
    recipe = WeightMapRecipe("toy", level=1.5, spacing=(2.0, 1.0), signed_distance=True)
    np.testing.assert_array_equal(out["distance"].numpy(), recipe.maps(mask)["distance"])
