"""weighting="falk" (the authors' plugin weighting) through the data pipeline and the CLI."""

import numpy as np
import pytest

from unetweights import WeightMapTransform, falk_weight_map, unet_weight_map
from unetweights.cli import main
from unetweights.data import WeightMapDataset, precompute
from unetweights.synthetic import touching_nuclei


def _mask(seed=0):
    return touching_nuclei((36, 40), 7, radius=6.0, seed=seed)


@pytest.mark.parametrize("target", ["foreground", "separated"])
def test_dataset_and_transform(target, tmp_path):
    mask = _mask()
    dataset = WeightMapDataset([(None, mask)], target=target, cache_dir=tmp_path, weighting="falk", lam=20.0, sigma=4.0)
    want = falk_weight_map(mask, lam=20.0, sigma=4.0, separate=target == "separated")
    for _ in range(2):
        np.testing.assert_allclose(dataset[0][2], want, rtol=1e-6)
    # Same mask, same target, the other weighting: another cache entry, never the falk map.
    unet = WeightMapDataset([(None, mask)], target=target, cache_dir=tmp_path, sigma=4.0)
    np.testing.assert_allclose(unet[0][2], unet_weight_map(mask, sigma=4.0, separate=target == "separated"), rtol=1e-6)
    assert unet.cache_info().misses == 1
    sample = WeightMapTransform(weighting="falk", v_bal=0.2)({"label": mask})
    np.testing.assert_allclose(sample["weight"], falk_weight_map(mask, v_bal=0.2), rtol=1e-6)


def test_options_are_those_of_the_chosen_weighting():
    with pytest.raises(TypeError, match="w0 is not an option of WeightMapDataset with weighting='falk'"):
        WeightMapDataset([(None, _mask())], weighting="falk", w0=5.0)
    with pytest.raises(TypeError, match="lam is not an option of precompute with weighting='unet'"):
        precompute([], "unused", lam=3.0)
    with pytest.raises(ValueError, match="weighting must be one of"):
        WeightMapTransform(weighting="paper")
    with pytest.raises(ValueError, match="v_bal"):
        WeightMapTransform(weighting="falk", v_bal=2.0)


def test_precompute_and_cli(tmp_path, capsys):
    folder = tmp_path / "masks"
    folder.mkdir()
    np.save(folder / "a.npy", _mask(1))
    precompute([folder / "a.npy"], tmp_path / "out", progress=False, weighting="falk", lam=20.0)
    want = falk_weight_map(_mask(1), lam=20.0)
    np.testing.assert_allclose(np.load(tmp_path / "out" / "a.npy"), want, rtol=1e-6)
    with pytest.raises(ValueError, match="weighting"):
        precompute([folder / "a.npy"], tmp_path / "out", progress=False)  # other options than the manifest's
    assert main(["precompute", str(folder), "--out", str(tmp_path / "cli"), "--weighting", "falk", "--lam", "20", "--quiet"]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "cli" / "a.npy"), want, rtol=1e-6)
    assert main(["precompute", str(folder), "--out", str(tmp_path / "bad"), "--weighting", "falk", "--w0", "5", "--quiet"]) == 2
    assert "--w0: not an option of --weighting falk (its options: --lam, --sigma" in capsys.readouterr().err
    assert main(["precompute", "--zarr", "in.zarr", "out.zarr", "--weighting", "falk"]) == 2
    assert "--weighting: falk maps reach without bound, so chunks (--zarr) cannot give them exactly" in capsys.readouterr().err
