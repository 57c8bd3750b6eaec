"""ignore_label through the data pipeline: dataset, transform, precompute (and its manifest), CLI,
and end to end into a weighted loss, where ignored pixels change nothing."""

import json

import numpy as np
import pytest
import torch

from unetweights import WeightMapTransform, WeightedCrossEntropyLoss, separate_touching, unet_weight_map
from unetweights.cli import main
from unetweights.data import WeightMapDataset, precompute
from unetweights.synthetic import touching_nuclei

IGNORE = 99


def _mask(seed=0, shape=(40, 48)):
    mask = touching_nuclei(shape, 8, radius=6.0, seed=seed)
    mask[: shape[0] // 4] = IGNORE  # an unannotated strip, over objects and background alike
    return mask


@pytest.mark.parametrize("target", ["foreground", "separated", "labels"])
def test_dataset_weights_zero_and_matches_the_function(target, tmp_path):
    mask = _mask()
    ignored = mask == IGNORE
    dataset = WeightMapDataset([(None, mask)], target=target, ignore_label=IGNORE, sigma=3.0, cache_dir=tmp_path)
    for _ in range(2):  # computed, then from the cache
        _, label, weight = dataset[0]
        assert np.all(weight[ignored] == 0.0) and np.all(weight[~ignored] > 0.0)
        want = unet_weight_map(mask, sigma=3.0, ignore_label=IGNORE, separate=target == "separated")
        np.testing.assert_allclose(weight, want, rtol=1e-6)
        if target == "labels":
            np.testing.assert_array_equal(label, mask)
        else:
            carved = separate_touching(np.where(ignored, 0, mask)) if target == "separated" else mask
            np.testing.assert_array_equal(label, (carved > 0) & ~ignored)
    assert dataset.cache_info().hits == 1


def test_ignored_pixels_change_nothing_in_the_loss():
    mask = _mask(seed=1)
    _, label, weight = WeightMapDataset([(None, mask)], target="separated", ignore_label=IGNORE)[0]
    target = torch.from_numpy(label)[None]
    w = torch.from_numpy(weight)[None]
    logits = torch.randn(1, 2, *mask.shape, requires_grad=True)
    loss = WeightedCrossEntropyLoss()
    scrambled = logits.detach().clone()
    scrambled[:, :, torch.from_numpy(mask == IGNORE)] = 100.0 * torch.randn(2, int((mask == IGNORE).sum()))
    assert torch.allclose(loss(logits, target, w), loss(scrambled, target, w))
    loss(logits, target, w).backward()
    assert torch.all(logits.grad[:, :, torch.from_numpy(mask == IGNORE)] == 0)


def test_transform_passes_it_on():
    mask = _mask(seed=2)
    sample = WeightMapTransform(ignore_label=IGNORE, sigma=3.0)({"label": mask})
    np.testing.assert_allclose(sample["weight"], unet_weight_map(mask, sigma=3.0, ignore_label=IGNORE), rtol=1e-6)


def test_precompute_and_the_cli_and_an_older_manifest(tmp_path, capsys):
    folder = tmp_path / "masks"
    folder.mkdir()
    for k in range(2):
        np.save(folder / f"m{k}.npy", _mask(seed=k))
    report = precompute(sorted(folder.glob("*.npy")), tmp_path / "out", progress=False, ignore_label=IGNORE, sigma=3.0)
    assert report.written == 2
    got = np.load(tmp_path / "out" / "m0.npy")
    np.testing.assert_allclose(got, unet_weight_map(_mask(seed=0), sigma=3.0, ignore_label=IGNORE), rtol=1e-6)
    assert main(["precompute", str(folder), "--out", str(tmp_path / "cli"), "--sigma", "3", "--ignore-label", str(IGNORE), "--quiet"]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "cli" / "m0.npy"), got)
    # A folder written before ignore_label and weighting existed resumes under their defaults.
    plain = tmp_path / "plain"
    precompute(sorted(folder.glob("*.npy")), plain, progress=False, sigma=3.0)
    manifest = plain / "unetweights_manifest.json"
    content = json.loads(manifest.read_text())
    del content["options"]["ignore_label"], content["options"]["weighting"]  # options added since
    manifest.write_text(json.dumps(content))
    again = precompute(sorted(folder.glob("*.npy")), plain, progress=False, sigma=3.0)
    assert again.written == 0 and again.skipped == 2
    with pytest.raises(ValueError, match="ignore_label"):
        precompute(sorted(folder.glob("*.npy")), plain, progress=False, sigma=3.0, ignore_label=IGNORE)
