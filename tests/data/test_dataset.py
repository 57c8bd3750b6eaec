"""unetweights.data: the transform, the cached dataset, read_mask and precompute."""

import json
import multiprocessing
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from unetweights.data import (
    CacheInfo,
    PrecomputeReport,
    WeightMapDataset,
    WeightMapTransform,
    precompute,
    read_mask,
)
from unetweights.weightmaps import separate_touching, unet_weight_map

from ..data_fixtures import PairDataset, churn_cache, make_masks

OPTIONS = dict(w0=8.0, sigma=3.0, class_weights={0: 1.0, 1: 2.5}, border="all")


@pytest.fixture(scope="module")
def masks():
    return make_masks(6)


def tmp_files(folder):
    return sorted(p.name for p in Path(folder).iterdir() if p.name.startswith("."))


def npy_files(folder):
    """The .npy files a user sees: pathlib's glob also matches the hidden temporary files."""
    return sorted(p.name for p in Path(folder).glob("*.npy") if not p.name.startswith("."))


# -- WeightMapTransform ---------------------------------------------------------------------------


def test_transform_on_a_dict_adds_the_map_and_leaves_the_input_alone(masks):
    labels = masks[0]
    before = labels.copy()
    sample = {"image": np.zeros(labels.shape), "label": labels}
    out = WeightMapTransform(**OPTIONS)(sample)
    assert out is not sample and set(sample) == {"image", "label"}
    assert out["image"] is sample["image"] and out["label"] is labels
    assert out["weight"].dtype == np.float32 and out["weight"].shape == labels.shape
    np.testing.assert_array_equal(out["weight"], unet_weight_map(labels, **OPTIONS))
    np.testing.assert_array_equal(labels, before)


def test_transform_keys_are_configurable(masks):
    out = WeightMapTransform(label_key="seg", weight_key="w")({"seg": masks[1]})
    assert set(out) == {"seg", "w"}
    np.testing.assert_array_equal(out["w"], unet_weight_map(masks[1]))


@pytest.mark.parametrize("container", [tuple, list])
def test_transform_on_a_pair_returns_a_triple(masks, container):
    image = np.ones(masks[2].shape)
    out = WeightMapTransform(sigma=2.0, separate=True)(container([image, masks[2]]))
    assert isinstance(out, tuple) and len(out) == 3
    assert out[0] is image and out[1] is masks[2]
    np.testing.assert_array_equal(out[2], unet_weight_map(masks[2], sigma=2.0, separate=True))


@pytest.mark.parametrize("axis, expand", [(0, 0), (-1, -1), (2, -1)])
def test_transform_channel_axis(masks, axis, expand):
    labels = np.expand_dims(masks[3], expand)
    weight = WeightMapTransform(channel_axis=axis, sigma=3.0)((None, labels))[2]
    assert weight.shape == labels.shape and weight.dtype == np.float32
    np.testing.assert_array_equal(np.squeeze(weight, expand), unet_weight_map(masks[3], sigma=3.0))


def test_transform_channel_axis_3d_with_spacing():
    volume = np.stack(make_masks(3, shape=(20, 18), objects=4, radius=5.0))
    labels = volume[None]
    transform = WeightMapTransform(channel_axis=0, spacing=(2.0, 1.0, 1.0))
    weight = transform({"label": labels})["weight"]
    assert weight.shape == (1, 3, 20, 18)
    np.testing.assert_array_equal(weight[0], unet_weight_map(volume, spacing=(2.0, 1.0, 1.0)))


def test_transform_channel_axis_errors(masks):
    with pytest.raises(ValueError, match=r"^channel_axis 0 of labels must have size 1"):
        WeightMapTransform(channel_axis=0)((None, np.stack([masks[0], masks[0]])))
    with pytest.raises(ValueError, match=r"^channel_axis 3 is out of range"):
        WeightMapTransform(channel_axis=3)((None, masks[0][None]))
    with pytest.raises(TypeError, match=r"^channel_axis must be an int"):
        WeightMapTransform(channel_axis="0")


def test_transform_accepts_a_cpu_torch_tensor(masks):
    torch = pytest.importorskip("torch")
    labels = torch.from_numpy(masks[4])[None]
    weight = WeightMapTransform(channel_axis=0)({"label": labels})["weight"]
    assert isinstance(weight, np.ndarray)
    np.testing.assert_array_equal(weight[0], unet_weight_map(masks[4]))


def test_transform_pickles(masks):
    transform = WeightMapTransform(label_key="mask", channel_axis=0, **OPTIONS)
    clone = pickle.loads(pickle.dumps(transform))
    sample = {"mask": masks[0][None]}
    np.testing.assert_array_equal(clone(sample)["weight"], transform(sample)["weight"])
    assert "w0=8.0" in repr(clone)


@pytest.mark.parametrize(
    "options, error, start",
    [
        (dict(wo=10.0), TypeError, "wo is not an option"),
        (dict(classes=np.zeros((2, 2))), TypeError, "classes is not an option"),
        (dict(w0=-1.0), ValueError, "w0 must be"),
        (dict(sigma=0.0), ValueError, "sigma must be"),
        (dict(tol=0.0), ValueError, "tol must be"),
        (dict(sigma="3"), TypeError, "sigma must be"),
        (dict(border="inside"), ValueError, "border must be"),
        (dict(spacing=(1.0, -1.0)), ValueError, "spacing entries must be"),
        (dict(spacing=(1.0, 1.0, 1.0, 1.0)), ValueError, "spacing must have one entry per spatial axis"),
        (dict(class_weights="inverse"), ValueError, "class_weights"),
        (dict(class_weights={1: 2.0}), ValueError, "class_weights mapping has no weight for class 0"),
        (dict(class_weights={0: 1.0, 1: -2.0}), ValueError, r"class_weights\[1\]"),
        (dict(class_weights={0: 1.0, 1: 2.0, 2: "x"}), ValueError, r"class_weights\[2\] must be a finite number"),
        (dict(class_weights={0: 1.0, 1: 2.0, "a": 1.0}), ValueError, "class_weights keys must be class ids"),
        (dict(separate="yes"), TypeError, "separate must be a bool"),
    ],
)
def test_transform_checks_options_at_construction(options, error, start):
    with pytest.raises(error, match=f"^{start}"):
        WeightMapTransform(**options)


def test_transform_bad_samples(masks):
    transform = WeightMapTransform()
    with pytest.raises(ValueError, match=r"^data must hold the key 'label'"):
        transform({"seg": masks[0]})
    with pytest.raises(ValueError, match=r"^data must be an \(image, labels\) pair"):
        transform((1, 2, 3))
    with pytest.raises(TypeError, match=r"^data must be a mapping"):
        transform(masks[0])
    with pytest.raises(ValueError, match=r"^weight_key must differ from label_key"):
        WeightMapTransform(label_key="x", weight_key="x")


def test_data_module_does_not_import_torch():
    code = "import sys, unetweights.data; assert 'torch' not in sys.modules, 'torch was imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


# -- WeightMapDataset ------------------------------------------------------------------------------


def expected_item(mask, target, **options):
    if target == "separated":
        return (separate_touching(mask) > 0).astype(np.int64), unet_weight_map(mask, separate=True, **options)
    wanted = mask.astype(np.int64) if target == "labels" else (mask > 0).astype(np.int64)
    return wanted, unet_weight_map(mask, **options)


@pytest.mark.parametrize("target", ["foreground", "separated", "labels"])
@pytest.mark.parametrize("cached", [False, True], ids=["no cache", "cache"])
def test_dataset_items_equal_direct_computation(tmp_path, masks, target, cached):
    base = PairDataset(masks[:3])
    dataset = WeightMapDataset(base, cache_dir=tmp_path / "cache" if cached else None, target=target, sigma=3.0)
    assert len(dataset) == 3
    for _ in range(2):  # the second pass reads the cache
        for i in range(3):
            image, got_target, weight = dataset[i]
            wanted_target, wanted_weight = expected_item(masks[i], target, sigma=3.0)
            assert image is base.images[i]
            assert got_target.dtype == np.int64 and weight.dtype == np.float32
            np.testing.assert_array_equal(got_target, wanted_target)
            np.testing.assert_array_equal(weight, wanted_weight)
    assert dataset.cache_info() == ((3, 3, 0) if cached else (0, 6, 0))


def test_dataset_accepts_bool_masks_and_the_demo_spelling(tmp_path, masks):
    foreground = masks[0] > 0
    dataset = WeightMapDataset(PairDataset([foreground]), tmp_path, target="separated", separate=True)
    _, target, weight = dataset[0]
    np.testing.assert_array_equal(weight, unet_weight_map(foreground, separate=True))
    np.testing.assert_array_equal(target, separate_touching(foreground) > 0)


def test_dataset_with_a_dataloader_of_two_workers(tmp_path, masks):
    torch = pytest.importorskip("torch")
    from torch.utils.data import DataLoader

    dataset = WeightMapDataset(PairDataset(masks), cache_dir=tmp_path / "cache", target="separated", **OPTIONS)
    for epoch in range(2):  # the second epoch's workers read what the first one's wrote
        loader = DataLoader(dataset, batch_size=2, num_workers=2, shuffle=False)
        batches = list(loader)
        assert len(batches) == 3
        for b, (images, targets, weights) in enumerate(batches):
            assert isinstance(weights, torch.Tensor) and weights.dtype == torch.float32
            assert targets.dtype == torch.int64
            for k in range(2):
                wanted_target, wanted_weight = expected_item(masks[2 * b + k], "separated", **OPTIONS)
                np.testing.assert_array_equal(targets[k].numpy(), wanted_target)
                np.testing.assert_array_equal(weights[k].numpy(), wanted_weight)
    assert len(npy_files(tmp_path / "cache")) == len(masks)
    assert dataset.cache_info() == (0, 0, 0), "counts are per process: the workers did the work"


def test_cache_hits_misses_and_invalidation(tmp_path, masks):
    cache = tmp_path / "cache"
    mask = masks[0].copy()
    base = PairDataset([mask])
    dataset = WeightMapDataset(base, cache_dir=cache, sigma=3.0)
    dataset[0]
    dataset[0]
    assert dataset.cache_info() == CacheInfo(hits=1, misses=1, replaced=0)

    # The same options spelled another way share the entries.
    same = WeightMapDataset(base, cache_dir=cache, sigma=3, w0=10, tol=1e-6, class_weights="balanced")
    same[0]
    assert same.cache_info() == (1, 0, 0)

    # A changed option, target mode or mask is a new entry, never the old map.
    for changed in (
        WeightMapDataset(base, cache_dir=cache, sigma=4.0),
        WeightMapDataset(base, cache_dir=cache, sigma=3.0, border="all"),
        WeightMapDataset(base, cache_dir=cache, sigma=3.0, class_weights=None),
        WeightMapDataset(base, cache_dir=cache, sigma=3.0, spacing=(1.0, 2.0)),
        WeightMapDataset(base, cache_dir=cache, sigma=3.0, target="separated"),
    ):
        _, _, weight = changed[0]
        assert changed.cache_info() == (0, 1, 0)
        options = {k: v for k, v in changed.options.items() if k != "weighting"}
        assert changed.options["weighting"] == "unet"
        np.testing.assert_array_equal(weight, unet_weight_map(mask, separate=changed.target == "separated", **options))
    mask[10, 10] = 0 if mask[10, 10] else 1
    _, _, weight = dataset[0]
    assert dataset.cache_info() == (1, 2, 0)
    np.testing.assert_array_equal(weight, unet_weight_map(mask, sigma=3.0))
    as_int64 = WeightMapDataset(PairDataset([mask.astype(np.int64)]), cache_dir=cache, sigma=3.0)
    as_int64[0]
    assert as_int64.cache_info() == (0, 1, 0), "the dtype is part of the key"
    assert len(npy_files(cache)) == 8 and tmp_files(cache) == []


def corrupt_entries(good):
    return {
        "garbage": b"this is not an npy file",
        "empty": b"",
        "truncated": good[: len(good) // 2],
        "pickle": pickle.dumps(np.zeros(3)),
    }


@pytest.mark.parametrize("damage", ["garbage", "empty", "truncated", "pickle", "wrong shape", "wrong dtype"])
def test_a_damaged_cache_entry_is_recomputed_and_replaced(tmp_path, masks, damage):
    dataset = WeightMapDataset(PairDataset(masks[:1]), cache_dir=tmp_path, sigma=3.0)
    _, _, expected = dataset[0]
    entry = dataset.cache_path(masks[0])
    good = entry.read_bytes()
    if damage == "wrong shape":
        np.save(entry, np.ones((4, 4), dtype=np.float32))
    elif damage == "wrong dtype":
        np.save(entry, expected.astype(np.float64))
    else:
        entry.write_bytes(corrupt_entries(good)[damage])
    _, _, weight = dataset[0]
    np.testing.assert_array_equal(weight, expected)
    assert dataset.cache_info() == (0, 2, 1)
    assert entry.read_bytes() == good
    dataset[0]
    assert dataset.cache_info() == (1, 2, 1)


def test_concurrent_writers_leave_valid_entries(tmp_path):
    masks = make_masks(4, shape=(64, 64), objects=8)
    expected = [unet_weight_map(m, sigma=3.0) for m in masks]
    cache = tmp_path / "cache"
    WeightMapDataset(PairDataset(masks), cache_dir=cache)  # creates the folder before the race
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    jobs = [(str(cache), masks, expected, 40, k) for k in range(4)]
    with ProcessPoolExecutor(4, mp_context=context) as pool:
        results = list(pool.map(churn_cache, jobs))
    for (hits, misses, replaced), all_equal in results:
        assert all_equal
        assert replaced == 0, "a reader saw a partly written entry"
        assert hits + misses == 40 * len(masks)
    assert sum(r[0][0] for r in results) > 0 and sum(r[0][1] for r in results) > 40
    dataset = WeightMapDataset(PairDataset(masks), cache_dir=cache, sigma=3.0)
    for i, mask in enumerate(masks):
        if dataset.cache_path(mask).exists():
            np.testing.assert_array_equal(np.load(dataset.cache_path(mask), allow_pickle=False), expected[i])
    assert tmp_files(cache) == []


def test_cache_dir_is_created_and_stale_temp_files_go(tmp_path, masks):
    cache = tmp_path / "a" / "b"
    WeightMapDataset(PairDataset(masks), cache_dir=cache)
    assert cache.is_dir()
    stale, fresh = cache / ".unetweights-tmp-old.npy", cache / ".unetweights-tmp-new.npy"
    stale.write_bytes(b"x")
    fresh.write_bytes(b"x")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    WeightMapDataset(PairDataset(masks), cache_dir=cache)
    assert not stale.exists() and fresh.exists(), "a fresh temp file may belong to a live writer"


def test_dataset_errors(masks):
    base = PairDataset(masks)
    with pytest.raises(ValueError, match=r"^target must be one of"):
        WeightMapDataset(base, target="instances")
    with pytest.raises(TypeError, match=r"^base must be an indexable dataset"):
        WeightMapDataset(42)
    with pytest.raises(ValueError, match=r"^separate=True contradicts target='foreground'"):
        WeightMapDataset(base, separate=True)
    with pytest.raises(TypeError, match=r"^sigmas is not an option"):
        WeightMapDataset(base, sigmas=3.0)
    with pytest.raises(ValueError, match=r"^w0 must be"):
        WeightMapDataset(base, w0=-2.0)
    with pytest.raises(TypeError, match=r"^base\[0\] must be an \(image, mask\) pair"):
        WeightMapDataset([masks[0]])[0]
    with pytest.raises(ValueError, match=r"^labels must have 2 or 3 dimensions"):
        WeightMapDataset([(None, np.zeros(5, dtype=int))])[0]


def test_dataset_pickles_without_open_files(tmp_path, masks):
    dataset = WeightMapDataset(PairDataset(masks), cache_dir=tmp_path, target="labels", sigma=3.0)
    dataset[0]
    clone = pickle.loads(pickle.dumps(dataset))
    np.testing.assert_array_equal(clone[0][2], dataset[0][2])
    assert clone.cache_info() == (1, 1, 0)  # the counters travel, then count per process


# -- read_mask -------------------------------------------------------------------------------------


def test_read_mask_formats(tmp_path, masks):
    labels = masks[0]
    volume = np.stack(masks[:3]).astype(np.uint16)
    np.save(tmp_path / "a.npy", labels)
    tifffile.imwrite(tmp_path / "b.tif", labels.astype(np.uint16))
    tifffile.imwrite(tmp_path / "c.TIFF", volume, photometric="minisblack")
    tifffile.imwrite(tmp_path / "d.tif", labels.astype(np.uint16)[None], photometric="minisblack",
                     metadata={"axes": "CYX"})
    Image.fromarray(labels.astype(np.uint8)).save(tmp_path / "e.png")
    Image.fromarray(labels.astype(np.uint16)).save(tmp_path / "f.png")
    palette = Image.fromarray(labels.astype(np.uint8)).convert("P")
    palette.putpalette([c for k in range(256) for c in (k, 255 - k, 7)])
    palette.save(tmp_path / "g.png")
    Image.fromarray(labels > 0).save(tmp_path / "h.png")
    np.save(tmp_path / "i.npy", labels > 0)

    cases = {"a.npy": labels, "b.tif": labels, "c.TIFF": volume, "d.tif": labels, "e.png": labels,
             "f.png": labels, "g.png": labels, "h.png": labels > 0, "i.npy": labels > 0}
    for name, wanted in cases.items():
        got = read_mask(tmp_path / name)
        assert got.shape == wanted.shape, name
        np.testing.assert_array_equal(got, wanted, err_msg=name)
    assert read_mask(str(tmp_path / "a.npy")).dtype == labels.dtype
    assert read_mask(tmp_path / "h.png").dtype == bool


def bad_mask_files(folder, labels):
    """Files read_mask must refuse, with a fragment of the reason it must give."""
    (folder / "junk.tif").write_bytes(b"II*\x00 not really a tiff")
    (folder / "junk.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    (folder / "junk.npy").write_bytes(b"not an array")
    np.save(folder / "float.npy", labels.astype(np.float32))
    np.save(folder / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    np.save(folder / "four_d.npy", labels[None, None])
    tifffile.imwrite(folder / "float.tif", labels.astype(np.float32))
    tifffile.imwrite(folder / "rgb.tif", np.stack([labels.astype(np.uint8)] * 3, axis=-1), photometric="rgb")
    tifffile.imwrite(folder / "extra.tif", np.stack([labels.astype(np.uint8)] * 2, axis=-1),
                     photometric="minisblack", planarconfig="contig", extrasamples=["unspecified"])
    Image.fromarray(np.stack([labels.astype(np.uint8)] * 3, axis=-1)).save(folder / "rgb.png")
    Image.fromarray(labels.astype(np.uint8)).convert("LA").save(folder / "grey_alpha.png")
    (folder / "mask.jpg").write_bytes(b"\xff\xd8\xff")
    return {
        "junk.tif": "cannot be read",
        "junk.png": "cannot be read",
        "junk.npy": "cannot be read",
        "float.npy": "holds float32 values; expected an integer or bool",
        "objects.npy": "cannot be read",
        "four_d.npy": "expected a 2-D or 3-D label image",
        "float.tif": "holds float32 values",
        "rgb.tif": "multi-channel image",
        "extra.tif": "multi-channel image",
        "rgb.png": "multi-channel image",
        "grey_alpha.png": "multi-channel image",
        "mask.jpg": "unsupported file type '.jpg'",
        "missing.npy": "cannot be read: FileNotFoundError",
    }


def test_read_mask_errors_name_the_path_and_the_reason(tmp_path, masks):
    for name, reason in bad_mask_files(tmp_path, masks[0]).items():
        with pytest.raises(ValueError) as info:
            read_mask(tmp_path / name)
        message = str(info.value)
        assert message.startswith(f"path '{tmp_path / name}': "), message
        assert reason in message, message
    with pytest.raises(TypeError, match=r"^path must be a str or os.PathLike"):
        read_mask(3)


# -- precompute ------------------------------------------------------------------------------------


def write_masks(folder, masks):
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, mask in enumerate(masks):
        path = folder / f"mask{k:02d}.{('npy', 'tif', 'png')[k % 3]}"
        if path.suffix == ".npy":
            np.save(path, mask)
        elif path.suffix == ".tif":
            tifffile.imwrite(path, mask.astype(np.uint16))
        else:
            Image.fromarray(mask.astype(np.uint8)).save(path)
        paths.append(path)
    return paths


def folder_bytes(folder):
    return {p.name: p.read_bytes() for p in sorted(Path(folder).iterdir())}


@pytest.mark.parametrize("workers", [1, 2])
def test_precompute_writes_the_maps(tmp_path, masks, workers):
    paths = write_masks(tmp_path / "masks", masks)
    out = tmp_path / "out" / "nested"
    report = precompute(paths, out, workers=workers, progress=False, **OPTIONS)
    assert report.ok and report.written == len(masks) and report.skipped == 0 and report.workers == workers
    assert report.masks_per_second > 0 and report.seconds > 0
    for k, mask in enumerate(masks):
        weight = np.load(out / f"mask{k:02d}.npy", allow_pickle=False)
        assert weight.dtype == np.float32
        np.testing.assert_array_equal(weight, unet_weight_map(mask, **OPTIONS))
    manifest = json.loads((out / "unetweights_manifest.json").read_text())
    assert manifest["options"]["class_weights"] == [[0, 1.0], [1, 2.5]]
    assert manifest["options"]["sigma"] == 3.0 and manifest["options"]["separate"] is False
    assert tmp_files(out) == []


def test_precompute_resumes_and_checks_the_options(tmp_path, masks):
    paths = write_masks(tmp_path / "masks", masks)
    out = tmp_path / "out"
    precompute(paths, out, progress=False, sigma=3.0)
    first = folder_bytes(out)

    again = precompute(paths, out, progress=False, sigma=3)
    assert (again.written, again.skipped, again.ok) == (0, len(masks), True)
    (out / "mask02.npy").unlink()
    again = precompute(paths, out, progress=False, sigma=3.0)
    assert (again.written, again.skipped) == (1, len(masks) - 1)
    assert folder_bytes(out) == first

    with pytest.raises(ValueError, match=r"^out_dir .* other options \(sigma: 3.0 -> 4.0\)"):
        precompute(paths, out, progress=False, sigma=4.0)
    assert folder_bytes(out) == first, "a refused run writes nothing"

    redone = precompute(paths, out, progress=False, overwrite=True, sigma=4.0)
    assert (redone.written, redone.skipped) == (len(masks), 0)
    np.testing.assert_array_equal(np.load(out / "mask00.npy"), unet_weight_map(masks[0], sigma=4.0))
    assert json.loads((out / "unetweights_manifest.json").read_text())["options"]["sigma"] == 4.0


@pytest.mark.parametrize("damage", ["empty", "truncated", "not npy"])
def test_precompute_recomputes_an_output_that_is_not_whole(tmp_path, masks, damage):
    paths = write_masks(tmp_path / "masks", masks[:3])
    out = tmp_path / "out"
    precompute(paths, out, progress=False)
    first = folder_bytes(out)
    output = out / "mask01.npy"
    output.write_bytes({"empty": b"", "truncated": first["mask01.npy"][:-100], "not npy": b"x" * 200}[damage])
    report = precompute(paths, out, progress=False)
    assert (report.written, report.skipped) == (1, 2)
    assert folder_bytes(out) == first


def test_precompute_refuses_outputs_without_a_manifest(tmp_path, masks):
    paths = write_masks(tmp_path / "masks", masks[:2])
    out = tmp_path / "out"
    out.mkdir()
    np.save(out / "mask00.npy", np.zeros(3))
    with pytest.raises(ValueError, match=r"^out_dir .* no unetweights_manifest.json"):
        precompute(paths, out, progress=False)
    assert precompute(paths, out, progress=False, overwrite=True).written == 2


def test_precompute_refuses_duplicate_stems(tmp_path, masks):
    paths = write_masks(tmp_path / "a", masks[:2])
    other = tmp_path / "b" / "mask01.tif"
    other.parent.mkdir()
    tifffile.imwrite(other, masks[1].astype(np.uint16))
    with pytest.raises(ValueError) as info:
        precompute(paths + [other], tmp_path / "out", progress=False)
    message = str(info.value)
    assert message.startswith("mask_paths must have distinct file stems")
    assert str(paths[1]) in message and str(other) in message
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("workers", [1, 2])
def test_precompute_reports_bad_files_and_writes_the_others(tmp_path, masks, workers):
    good = write_masks(tmp_path / "masks", masks[:3])
    reasons = bad_mask_files(tmp_path / "masks", masks[0])
    bad = [tmp_path / "masks" / name for name in ("junk.tif", "mask.jpg", "float.npy", "rgb.png", "missing.npy")]
    spacing_3d = tmp_path / "masks" / "volume.npy"
    np.save(spacing_3d, np.stack(masks[:2]))
    paths = [bad[0], *good[:2], *bad[1:], good[2], spacing_3d]
    out = tmp_path / "out"
    report = precompute(paths, out, workers=workers, progress=False, spacing=(1.0, 1.0))
    assert not report.ok
    assert report.written == 3
    assert [path for path, _ in report.failed] == [str(p) for p in bad + [spacing_3d]]
    for (path, reason), file in zip(report.failed, bad):
        assert reasons[file.name] in reason
    assert "spacing must have one entry per axis (3)" in report.failed[-1][1]
    assert npy_files(out) == ["mask00.npy", "mask01.npy", "mask02.npy"]
    summary = report.summary()
    assert "3 written" in summary and f"{len(bad) + 1} failed" in summary and "masks/s" in summary
    for path, reason in report.failed:
        assert f"{path}: {reason}" in summary


def test_precompute_argument_errors(tmp_path, masks):
    paths = write_masks(tmp_path / "masks", masks[:1])
    with pytest.raises(TypeError, match=r"^mask_paths must be an iterable of paths, got a single path"):
        precompute(str(paths[0]), tmp_path / "out")
    with pytest.raises(ValueError, match=r"^workers must be >= 1"):
        precompute(paths, tmp_path / "out", workers=0)
    with pytest.raises(TypeError, match=r"^workers must be an int"):
        precompute(paths, tmp_path / "out", workers=1.5)
    with pytest.raises(TypeError, match=r"^sigmas is not an option of precompute"):
        precompute(paths, tmp_path / "out", sigmas=2.0)
    with pytest.raises(ValueError, match=r"^border must be"):
        precompute(paths, tmp_path / "out", border="none")
    assert not (tmp_path / "out").exists()
    report = precompute([], tmp_path / "empty", progress=False)
    assert report.ok and report.total == 0 and report.masks_per_second == 0.0


def test_report_summary():
    report = PrecomputeReport(written=3, skipped=1, failed=[("a/b.tif", "cannot be read")], seconds=1.5,
                              workers=2, out_dir="out")
    assert not report.ok and report.total == 5 and report.masks_per_second == 2.0
    assert report.summary().splitlines() == [
        "5 masks -> out: 3 written, 1 skipped (already there), 1 failed",
        "1.50 s, 2.0 masks/s with 2 workers",
        "FAILED a/b.tif: cannot be read",
    ]


# Slows every output's write while its temporary file exists, so that the kill below lands
# mid-write. At module level, so that it also runs in the pool's worker processes.
KILLED_RUN = textwrap.dedent(
    """
    import sys, time

    import numpy as np

    _save = np.save

    def slow_save(file, array, **kwargs):
        _save(file, array, **kwargs)
        time.sleep(0.04)

    np.save = slow_save

    if __name__ == "__main__":
        from unetweights.data import precompute

        out, workers, *paths = sys.argv[1:]
        precompute(paths, out, workers=int(workers), progress=False, sigma=3.0)
    """
)


@pytest.mark.parametrize("workers", [1, 2])
def test_precompute_killed_halfway_then_rerun_is_byte_identical(tmp_path, workers):
    paths = write_masks(tmp_path / "masks", make_masks(16))
    out, clean = tmp_path / "out", tmp_path / "clean"
    script = tmp_path / "run.py"
    script.write_text(KILLED_RUN)
    process = subprocess.Popen(
        [sys.executable, str(script), str(out), str(workers), *map(str, paths)], start_new_session=True
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, "the run finished before it could be killed"
            assert time.monotonic() < deadline, "no output appeared"
            done = npy_files(out) if out.exists() else []
            if 3 <= len(done) and tmp_files(out):
                break
            time.sleep(0.002)
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the pool's workers too
        process.wait()
    assert process.returncode == -signal.SIGKILL
    finished = len(npy_files(out))
    assert 3 <= finished < len(paths)
    assert tmp_files(out), "a temporary file was left behind mid-write"

    report = precompute(paths, out, workers=workers, progress=False, sigma=3.0)
    assert report.ok and (report.skipped, report.written) == (finished, len(paths) - finished)
    precompute(paths, clean, workers=1, progress=False, sigma=3.0)
    assert folder_bytes(out) == folder_bytes(clean)
    assert tmp_files(out) == []
