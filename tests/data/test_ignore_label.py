"""ignore_label through the data pipeline: dataset, transform, precompute (and its manifest), CLI,
and end to end into a weighted loss, where ignored pixels change nothing."""

import json

import numpy as np
import pytest
import torch

from unetweights import WeightMapTransform, WeightedCrossEntropyLoss, separate_touching, unet_weight_map
from unetweights.cli import main
from unetweights.data import WeightMapDataset, precompute, read_mask
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


def _dots():
    """A bool mask of 800 one-pixel objects: labelled, their ids run 1..800, 255 among them."""
    mask = np.zeros((40, 80), dtype=bool)
    mask[1::2, 1::2] = True
    return mask


BOOL_REFUSED = r"ignore_label=255 cannot apply to a bool mask .*integer labels.*ignore_label=None"


@pytest.mark.parametrize("target", ["foreground", "separated", "labels"])
def test_a_bool_mask_refuses_it_before_the_cache_is_read(target, tmp_path):
    """ignore_label is a value of the mask as given: a bool mask has none, and labelling it would
    have numbered one dot 255 and dropped it (a foreground pixel with weight 0)."""
    mask = _dots()
    dataset = WeightMapDataset([(None, mask)], target=target, ignore_label=255, cache_dir=tmp_path)
    with pytest.raises(ValueError, match=r"ignore_label=255 cannot apply to a bool mask \(base\[0\] mask of dtype bool\)"):
        dataset[0]
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match=BOOL_REFUSED):
        WeightMapTransform(ignore_label=255)({"label": mask})
    with pytest.raises(ValueError, match=BOOL_REFUSED):
        WeightMapTransform(ignore_label=255, signed_distance=True)((None, mask))
    _, _, weight = WeightMapDataset([(None, mask)], target=target)[0]  # without it, every dot counts
    assert np.all(weight[mask] > 0)


def _one_bit_png(path, mask):
    from PIL import Image

    Image.fromarray(mask).save(path)  # mode "1": Pillow gives its pixels as 0 and 255
    with Image.open(path) as image:
        assert image.mode == "1" and image.getextrema() == (0, 255)


def test_precompute_compares_it_with_the_values_the_file_holds(tmp_path):
    """With an ignore label a mask stored as bool is read as the integers its reader gives, as a
    uint8 mask would be: a 1-bit PNG as 0 and 255 (the same picture saved with 8 bits), a bool
    .npy as 0 and 1; without one, it is labelled into objects as before."""
    from PIL import Image

    mask = _dots()
    folder = tmp_path / "masks"
    folder.mkdir()
    _one_bit_png(folder / "bits.png", mask)
    Image.fromarray(mask.astype(np.uint8) * 255).save(folder / "bytes.png")
    np.save(folder / "flags.npy", mask)
    paths = sorted(folder.iterdir())
    report = precompute(paths, tmp_path / "ignored", progress=False, ignore_label=255, sigma=3.0)
    assert report.ok and report.written == 3
    bits, as_bytes = (np.load(tmp_path / "ignored" / f"{name}.npy") for name in ("bits", "bytes"))
    np.testing.assert_array_equal(bits, as_bytes)
    assert np.all(bits[mask] == 0.0) and np.all(bits[~mask] > 0.0)  # every 255 pixel ignored, nothing else
    np.testing.assert_array_equal(
        np.load(tmp_path / "ignored" / "flags.npy"), unet_weight_map(mask.astype(np.uint8), sigma=3.0, ignore_label=255)
    )
    assert json.loads((tmp_path / "ignored" / "unetweights_manifest.json").read_text())["options"]["ignore_label"] == 255
    plain = precompute(paths, tmp_path / "plain", progress=False, sigma=3.0)
    assert plain.ok
    np.testing.assert_array_equal(np.load(tmp_path / "plain" / "bits.npy"), unet_weight_map(mask, sigma=3.0))
    # The command line reads them the same way.
    assert main(["precompute", str(folder), "--out", str(tmp_path / "cli"), "--sigma", "3", "--ignore-label", "255", "--quiet"]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "cli" / "bits.npy"), bits)
    # read_mask reads them so when asked: 0 and 255 for the 1-bit PNG, bool otherwise.
    np.testing.assert_array_equal(read_mask(folder / "bits.png", integers=True), mask.astype(np.uint8) * 255)
    assert read_mask(folder / "bits.png").dtype == bool
    with pytest.raises(TypeError, match="integers must be a bool, got 'yes'"):
        read_mask(folder / "bits.png", integers="yes")


def test_show_reads_a_one_bit_png_with_its_values(tmp_path, monkeypatch):
    import unetweights.plot

    mask = _dots()
    _one_bit_png(tmp_path / "bits.png", mask)
    shown = {}
    monkeypatch.setattr(unetweights.plot, "plot_weight_map", lambda labels, weight, out, **kw: shown.update(weight=weight) or out)
    assert main(["show", str(tmp_path / "bits.png"), "--ignore-label", "255", "--out", str(tmp_path / "w.png")]) == 0
    np.testing.assert_array_equal(shown["weight"], unet_weight_map(mask.astype(np.uint8) * 255, ignore_label=255))
