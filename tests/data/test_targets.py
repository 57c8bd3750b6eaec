"""The signed distance map and the tubed skeleton beside the weight map: transform, dataset (and its
cache), precompute (and its manifest). Every map equals signed_distance_map / tubed_skeleton computed
directly on the target the pipeline produces."""

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from unetweights.data import WeightMapDataset, WeightMapTransform, precompute
from unetweights.synthetic import touching_nuclei
from unetweights.weightmaps import separate_touching, signed_distance_map, tubed_skeleton, unet_weight_map

from ..data_fixtures import write_npy_masks

MANIFEST = "unetweights_manifest.json"
IGNORE = 99


def mask_2d(seed=0):
    return touching_nuclei((36, 40), 7, radius=6.0, seed=seed)


def mask_3d(seed=0):
    return touching_nuclei((10, 24, 26), 6, radius=5.0, spacing=(2.0, 1.0, 1.0), seed=seed)


CASES = {"2d": (mask_2d, None), "3d": (mask_3d, (2.0, 1.0, 0.8))}


def expected_distance(target, num_classes, spacing, no_class=None):
    """(C, *) from the public function, one class at a time."""
    channels = []
    for c in range(num_classes):
        member = target == c
        if no_class is not None:
            member &= ~no_class
        channels.append(signed_distance_map(member, spacing=spacing))
    return np.stack(channels)


def expected_foreground(mask, separate=False, ignore_label=None):
    labels = mask if ignore_label is None else np.where(mask == ignore_label, 0, mask)
    return (separate_touching(labels) if separate else labels) > 0


def assert_same(got, want):
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


# -- WeightMapTransform -----------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("separate", [False, True])
def test_transform_adds_the_maps_of_the_foreground(case, separate):
    make, spacing = CASES[case]
    mask = make()
    before = mask.copy()
    transform = WeightMapTransform(
        signed_distance=True, skeleton_radius=1.5, spacing=spacing, separate=separate, sigma=3.0
    )
    out = transform({"label": mask})
    assert set(out) == {"label", "weight", "distance", "skeleton"}
    foreground = expected_foreground(mask, separate)
    assert_same(out["weight"], unet_weight_map(mask, sigma=3.0, spacing=spacing, separate=separate))
    assert_same(out["distance"], expected_distance(foreground, 2, spacing))
    assert_same(out["skeleton"], tubed_skeleton(foreground, radius=1.5, spacing=spacing).astype(np.int64))
    assert out["skeleton"].any() and (out["distance"][1] < 0).any()
    np.testing.assert_array_equal(mask, before)
    image, labels, *maps = transform((None, mask))
    assert labels is mask and len(maps) == 3
    for got, key in zip(maps, ("weight", "distance", "skeleton")):
        assert_same(got, out[key])


def test_transform_ignored_pixels_are_background():
    mask = mask_2d(1)
    mask[:9] = IGNORE
    out = WeightMapTransform(signed_distance=True, skeleton_radius=2.0, ignore_label=IGNORE)({"label": mask})
    foreground = expected_foreground(mask, ignore_label=IGNORE)
    assert_same(out["distance"], expected_distance(foreground, 2, None))
    assert_same(out["skeleton"], tubed_skeleton(foreground, radius=2.0).astype(np.int64))
    assert (out["distance"][1][:9] > 0).all() and not out["skeleton"][:9].any()


@pytest.mark.parametrize("axis, expand", [(0, 0), (-1, -1), (2, -1)])
def test_transform_channel_axis(axis, expand):
    mask = mask_2d(2)
    labels = np.expand_dims(mask, expand)
    out = WeightMapTransform(channel_axis=axis, signed_distance=True, skeleton_radius=1.0)({"label": labels})
    # The class axis sits where the labels' channel axis is; the skeleton keeps the labels' shape.
    assert_same(out["distance"], np.moveaxis(expected_distance(mask > 0, 2, None), 0, expand))
    assert_same(out["skeleton"], np.expand_dims(tubed_skeleton(mask > 0, radius=1.0).astype(np.int64), expand))
    assert out["weight"].shape == labels.shape


def test_transform_only_what_was_asked_for_and_custom_keys():
    mask = mask_2d(3)
    assert set(WeightMapTransform()({"label": mask})) == {"label", "weight"}
    assert len(WeightMapTransform()((None, mask))) == 3
    only_skeleton = WeightMapTransform(skeleton_radius=0.0, skeleton_key="skel")({"label": mask})
    assert set(only_skeleton) == {"label", "weight", "skel"}
    assert_same(only_skeleton["skel"], tubed_skeleton(mask > 0, radius=0.0).astype(np.int64))
    transform = WeightMapTransform(signed_distance=True, distance_key="sdm")
    assert len(transform((None, mask))) == 4
    clone = pickle.loads(pickle.dumps(transform))
    assert "signed_distance=True" in repr(clone)
    assert_same(clone({"label": mask})["sdm"], transform({"label": mask})["sdm"])


@pytest.mark.parametrize(
    "kwargs, error, start",
    [
        (dict(signed_distance="yes"), TypeError, "signed_distance must be a bool"),
        (dict(signed_distance=1), TypeError, "signed_distance must be a bool"),
        (dict(skeleton_radius=-1.0), ValueError, "skeleton_radius must be >= 0"),
        (dict(skeleton_radius=float("nan")), ValueError, "skeleton_radius must be a finite"),
        (dict(skeleton_radius="2"), TypeError, "skeleton_radius must be a real number"),
        (dict(signed_distance=True, spacing=1e-40), ValueError, "spacing entries must be >= .* float32"),
        (dict(signed_distance=True, distance_key="label"), ValueError, "distance_key must differ from label_key"),
        (dict(signed_distance=True, distance_key="weight"), ValueError, "distance_key must differ from weight_key"),
        (dict(signed_distance=True, skeleton_radius=1.0, skeleton_key="distance"), ValueError,
         "skeleton_key must differ from distance_key"),
        (dict(distance_key=[1]), TypeError, "distance_key must be hashable"),
    ],
)
def test_transform_bad_options(kwargs, error, start):
    with pytest.raises(error, match=f"^{start}"):
        WeightMapTransform(**kwargs)


def test_unused_keys_may_repeat_others():
    """A key for a map that is not made cannot clash with anything."""
    out = WeightMapTransform(distance_key="weight", skeleton_key="label")({"label": mask_2d()})
    assert set(out) == {"label", "weight"}


# -- WeightMapDataset ---------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("target", ["foreground", "separated"])
def test_dataset_maps_are_those_of_its_target(tmp_path, case, target):
    make, spacing = CASES[case]
    masks = [make(0), make(1)]
    before = [m.copy() for m in masks]
    dataset = WeightMapDataset(
        [(None, m) for m in masks], cache_dir=tmp_path, target=target, signed_distance=True, skeleton_radius=1.5,
        spacing=spacing, sigma=3.0,
    )
    first = [dataset[i] for i in range(2)]
    for (_, label, weight, distance, skeleton), mask in zip(first, masks):
        want = expected_foreground(mask, separate=target == "separated").astype(np.int64)
        assert_same(label, want)
        assert_same(weight, unet_weight_map(mask, sigma=3.0, spacing=spacing, separate=target == "separated"))
        assert_same(distance, expected_distance(label, 2, spacing))
        assert_same(skeleton, tubed_skeleton(label, radius=1.5, spacing=spacing))
    assert dataset.cache_info() == (0, 6, 0)
    for i, item in enumerate(first):  # from the cache: the same arrays, bit for bit
        for got, want in zip(dataset[i][1:], item[1:]):
            assert_same(got, want)
    assert dataset.cache_info() == (6, 6, 0)
    for mask, copy in zip(masks, before):
        np.testing.assert_array_equal(mask, copy)


def test_dataset_class_map_with_ignored_pixels(tmp_path):
    classes = np.zeros((30, 34), dtype=np.uint8)
    classes[3:20, 4:30] = 1
    classes[12:27, 10:22] = 2
    classes[:, :3] = IGNORE
    classes[28:, :] = IGNORE
    no_class = classes == IGNORE
    dataset = WeightMapDataset(
        [(None, classes)], cache_dir=tmp_path, target="labels", signed_distance=True, num_classes=4,
        skeleton_radius=1.0, ignore_label=IGNORE, spacing=(1.0, 0.5),
    )
    for _ in range(2):
        _, label, weight, distance, skeleton = dataset[0]
        assert_same(label, classes.astype(np.int64))
        assert_same(distance, expected_distance(label, 4, (1.0, 0.5), no_class))
        assert (distance[3] == 0).all(), "class 3 is absent: no boundary"
        assert (distance[:3, no_class] > 0).all(), "ignored pixels are outside every present class"
        assert_same(skeleton, tubed_skeleton(np.where(no_class, 0, label), radius=1.0, spacing=(1.0, 0.5)))
        assert set(np.unique(skeleton)) == {0, 1, 2} and (weight[no_class] == 0).all()
    assert dataset.cache_info().hits == 3


def test_dataset_ignored_pixels_are_background_of_the_foreground_target():
    mask = mask_2d(4)
    mask[:, :8] = IGNORE
    _, label, _, distance, skeleton = WeightMapDataset(
        [(None, mask)], signed_distance=True, skeleton_radius=1.0, ignore_label=IGNORE
    )[0]
    assert (label[:, :8] == 0).all()
    assert_same(distance, expected_distance(label, 2, None))
    assert_same(skeleton, tubed_skeleton(label, radius=1.0))


def test_cache_entries_of_each_map(tmp_path):
    mask = mask_2d(5)
    base = [(None, mask)]
    plain = WeightMapDataset(base, cache_dir=tmp_path, sigma=3.0)
    plain[0]
    # The weight map's entry is shared with a dataset that also makes the other maps.
    both = WeightMapDataset(base, cache_dir=tmp_path, sigma=3.0, signed_distance=True, skeleton_radius=2.0)
    item = both[0]
    assert both.cache_info() == (1, 2, 0)
    for output, got in zip(("weight", "distance", "skeleton"), item[2:]):
        entry = both.cache_path(mask, output)
        assert_same(np.load(entry, allow_pickle=False), got)
    assert both.cache_path(mask, "weight") == plain.cache_path(mask)
    assert len({both.cache_path(mask, output) for output in ("weight", "distance", "skeleton")}) == 3

    # A changed radius misses the skeleton only; changed spacing misses everything; 2 and 2.0 agree.
    same = WeightMapDataset(base, cache_dir=tmp_path, sigma=3, signed_distance=True, skeleton_radius=2)
    same[0]
    assert same.cache_info() == (3, 0, 0)
    wider = WeightMapDataset(base, cache_dir=tmp_path, sigma=3.0, signed_distance=True, skeleton_radius=3.0)
    _, _, _, _, skeleton = wider[0]
    assert wider.cache_info() == (2, 1, 0)
    assert_same(skeleton, tubed_skeleton((mask > 0).astype(np.int64), radius=3.0))
    assert not np.array_equal(skeleton, item[4])
    finer = WeightMapDataset(base, cache_dir=tmp_path, sigma=3.0, signed_distance=True, spacing=(0.5, 1.0))
    _, label, _, distance = finer[0]
    assert finer.cache_info() == (0, 2, 0)
    assert_same(distance, expected_distance(label, 2, (0.5, 1.0)))


def test_cache_class_count_is_part_of_the_distance_key(tmp_path):
    classes = np.zeros((20, 24), dtype=np.int32)
    classes[2:12, 2:20] = 1
    options = dict(cache_dir=tmp_path, target="labels", signed_distance=True)
    three = WeightMapDataset([(None, classes)], num_classes=3, **options)
    assert three[0][3].shape == (3, 20, 24)
    two = WeightMapDataset([(None, classes)], num_classes=2, **options)
    distance = two[0][3]
    assert two.cache_info() == (1, 1, 0)
    assert_same(distance, expected_distance(classes, 2, None))


@pytest.mark.parametrize("damage", ["wrong shape", "wrong dtype", "garbage"])
@pytest.mark.parametrize("output", ["distance", "skeleton"])
def test_damaged_entries_are_recomputed(tmp_path, output, damage):
    mask = mask_2d(6)
    dataset = WeightMapDataset([(None, mask)], cache_dir=tmp_path, signed_distance=True, skeleton_radius=1.0)
    expected = dataset[0]
    entry = dataset.cache_path(mask, output)
    good = entry.read_bytes()
    if damage == "wrong shape":
        np.save(entry, np.zeros((3, 3), dtype=np.float32 if output == "distance" else np.int64))
    elif damage == "wrong dtype":
        np.save(entry, np.load(entry).astype(np.float64))
    else:
        entry.write_bytes(b"not an npy file")
    again = dataset[0]
    for got, want in zip(again[1:], expected[1:]):
        assert_same(got, want)
    assert dataset.cache_info() == (2, 4, 1)
    assert entry.read_bytes() == good


def test_dataset_bad_options_and_classes(tmp_path):
    base = [(None, mask_2d())]
    with pytest.raises(ValueError, match=r"^num_classes is needed with target='labels' and signed_distance=True"):
        WeightMapDataset(base, target="labels", signed_distance=True)
    with pytest.raises(ValueError, match=r"^num_classes must be 2 \(background, foreground\) or None with target="):
        WeightMapDataset(base, num_classes=3)
    with pytest.raises(ValueError, match=r"^num_classes must be an integer in 2\.\."):
        WeightMapDataset(base, target="labels", signed_distance=True, num_classes=1)
    with pytest.raises(TypeError, match=r"^num_classes must be an integer"):
        WeightMapDataset(base, target="labels", num_classes=True)
    with pytest.raises(TypeError, match=r"^signed_distance must be a bool"):
        WeightMapDataset(base, signed_distance="true")
    with pytest.raises(ValueError, match=r"^skeleton_radius must be >= 0"):
        WeightMapDataset(base, skeleton_radius=-2)
    with pytest.raises(TypeError, match=r"^signed_distances is not an option"):
        WeightMapDataset(base, signed_distances=True)
    assert WeightMapDataset(base, num_classes=2, signed_distance=True)[0][3].shape == (2, 36, 40)
    # Instance ids are no classes: num_classes is checked on every item of a class map.
    labels = WeightMapDataset(base, target="labels", signed_distance=True, num_classes=3, cache_dir=tmp_path)
    with pytest.raises(ValueError, match=r"^base\[0\]: the mask holds class 7, but num_classes=3 allows 0\.\.2"):
        labels[0]
    with pytest.raises(ValueError, match=r"^output must be one of"):
        labels.cache_path(base[0][1], "weights")


def test_dataset_repr_names_the_maps():
    text = repr(WeightMapDataset([(None, mask_2d())], target="labels", signed_distance=True, num_classes=8,
                                 skeleton_radius=1.0))
    assert "signed_distance=True" in text and "num_classes=8" in text and "skeleton_radius=1.0" in text


# -- precompute ----------------------------------------------------------------------------------------


def files(folder):
    return {p.name: p.read_bytes() for p in sorted(Path(folder).iterdir()) if not p.name.startswith(".")}


@pytest.mark.parametrize("case, workers", [("2d", 1), ("3d", 1), ("2d", 2)])
def test_precompute_writes_the_maps_beside_the_weights(tmp_path, case, workers):
    make, spacing = CASES[case]
    masks = [make(k) for k in range(3)]
    masks[1][: masks[1].shape[0] // 3] = IGNORE
    paths = write_npy_masks(tmp_path / "masks", masks, prefix="m")
    inputs = files(tmp_path / "masks")
    out = tmp_path / "out"
    options = dict(spacing=spacing, separate=True, ignore_label=IGNORE, sigma=3.0)
    report = precompute(
        paths, out, workers=workers, progress=False, signed_distance=True, skeleton_radius=1.5, **options
    )
    assert report.ok and report.written == 3
    for k, mask in enumerate(masks):
        foreground = expected_foreground(mask, separate=True, ignore_label=IGNORE)
        assert_same(np.load(out / f"m{k}.npy"), unet_weight_map(mask, **options))
        assert_same(np.load(out / f"m{k}.distance.npy"), expected_distance(foreground, 2, spacing))
        assert_same(np.load(out / f"m{k}.skeleton.npy"), tubed_skeleton(foreground, 1.5, spacing).astype(np.int64))
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["options"]["signed_distance"] is True and manifest["options"]["skeleton_radius"] == 1.5
    ends = (".npy", ".distance.npy", ".skeleton.npy")
    assert manifest["outputs"] == sorted(f"m{k}{end}" for k in range(3) for end in ends)
    assert files(tmp_path / "masks") == inputs


def test_precompute_resumes_a_mask_whose_distance_map_is_missing(tmp_path):
    paths = write_npy_masks(tmp_path / "masks", [mask_2d(k) for k in range(3)], prefix="m")
    out = tmp_path / "out"
    precompute(paths, out, progress=False, signed_distance=True, skeleton_radius=1.0)
    first = files(out)
    again = precompute(paths, out, progress=False, signed_distance=True, skeleton_radius=1)
    assert (again.written, again.skipped) == (0, 3)
    (out / "m1.distance.npy").unlink()
    (out / "m2.skeleton.npy").write_bytes(first["m2.skeleton.npy"][:-40])  # short: a crash mid-write
    again = precompute(paths, out, progress=False, signed_distance=True, skeleton_radius=1.0)
    assert (again.written, again.skipped) == (2, 1)
    assert files(out) == first


def test_precompute_manifest_guards_the_new_options(tmp_path):
    masks = [mask_2d(k) for k in range(4)]
    paths = write_npy_masks(tmp_path / "masks", masks, prefix="m")
    out = tmp_path / "out"
    precompute(paths, out, progress=False, sigma=3.0)
    before = files(out)
    with pytest.raises(ValueError, match=r"^out_dir .* other options \(signed_distance: False -> True\)"):
        precompute(paths, out, progress=False, sigma=3.0, signed_distance=True)
    with pytest.raises(ValueError, match=r"skeleton_radius: None -> 2.0"):
        precompute(paths, out, progress=False, sigma=3.0, skeleton_radius=2.0)
    assert files(out) == before, "a refused run writes nothing"

    report = precompute(
        paths, out, progress=False, overwrite=True, sigma=3.0, signed_distance=True, skeleton_radius=1.0
    )
    assert (report.written, report.removed) == (4, 0)
    assert len(files(out)) == 4 * 3 + 1

    # New options for two masks: their distance maps and skeletons, no longer made, go (but are no
    # other masks' maps), and so does every map of the other two masks.
    report = precompute(paths[:2], out, progress=False, overwrite=True, sigma=3.0)
    assert (report.written, report.removed) == (2, 6)
    assert sorted(files(out)) == ["m0.npy", "m1.npy", MANIFEST]
    assert json.loads((out / MANIFEST).read_text())["outputs"] == ["m0.npy", "m1.npy"]


def test_precompute_same_options_overwrite_keeps_the_other_masks_maps(tmp_path):
    paths = write_npy_masks(tmp_path / "masks", [mask_2d(k) for k in range(3)], prefix="m")
    out = tmp_path / "out"
    precompute(paths, out, progress=False, signed_distance=True)
    kept = (out / "m2.distance.npy").read_bytes()
    report = precompute(paths[:1], out, progress=False, overwrite=True, signed_distance=True)
    assert (report.written, report.removed) == (1, 0)
    assert (out / "m2.distance.npy").read_bytes() == kept


def test_precompute_an_older_manifest_resumes_under_the_defaults(tmp_path):
    paths = write_npy_masks(tmp_path / "masks", [mask_2d(k) for k in range(2)], prefix="m")
    out = tmp_path / "out"
    precompute(paths, out, progress=False)
    manifest = json.loads((out / MANIFEST).read_text())
    del manifest["options"]["signed_distance"], manifest["options"]["skeleton_radius"]
    (out / MANIFEST).write_text(json.dumps(manifest))
    assert precompute(paths, out, progress=False).skipped == 2
    with pytest.raises(ValueError, match="signed_distance"):
        precompute(paths, out, progress=False, signed_distance=True)


def test_precompute_refuses_unlisted_distance_files(tmp_path):
    paths = write_npy_masks(tmp_path / "masks", [mask_2d(k) for k in range(2)], prefix="m")
    out = tmp_path / "out"
    precompute(paths[:1], out, progress=False, signed_distance=True)
    np.save(out / "m1.distance.npy", np.zeros((2, 36, 40), np.float32))  # whole, but not precompute's
    with pytest.raises(ValueError, match=r"1 of the outputs \(e.g. m1.distance.npy\) that its unetweights_manifest"):
        precompute(paths, out, progress=False, signed_distance=True)


def test_precompute_output_names_must_not_clash(tmp_path):
    folder = tmp_path / "masks"
    folder.mkdir()
    np.save(folder / "a.npy", mask_2d(0))
    np.save(folder / "a.distance.npy", mask_2d(1))
    paths = [folder / "a.npy", folder / "a.distance.npy"]
    with pytest.raises(ValueError) as info:
        precompute(paths, tmp_path / "out", progress=False, signed_distance=True)
    message = str(info.value)
    assert "would both write 'a.distance.npy'" in message and str(paths[0]) in message and str(paths[1]) in message
    assert not (tmp_path / "out").exists()
    assert precompute(paths, tmp_path / "out", progress=False).written == 2  # without distance maps, no clash


def test_precompute_never_writes_a_distance_map_over_an_input(tmp_path):
    paths = write_npy_masks(tmp_path / "masks", [mask_2d(k) for k in range(2)], prefix="m")
    out = tmp_path / "out"
    out.mkdir()
    os.link(paths[1], out / "m0.distance.npy")  # an input, where m0's distance map would go
    before = files(tmp_path / "masks")
    with pytest.raises(ValueError) as info:
        precompute(paths, out, progress=False, overwrite=True, signed_distance=True)
    message = str(info.value)
    assert "would write" in message and str(out / "m0.distance.npy") in message and str(paths[1]) in message
    assert files(tmp_path / "masks") == before and sorted(files(out)) == ["m0.distance.npy"]


def test_precompute_never_deletes_an_input_that_an_old_distance_map_became(tmp_path):
    paths = write_npy_masks(tmp_path / "masks", [mask_2d(k) for k in range(3)], prefix="m")
    out = tmp_path / "out"
    precompute(paths, out, progress=False, signed_distance=True)
    taken = tmp_path / "elsewhere" / "taken.npy"
    taken.parent.mkdir()
    os.link(out / "m2.distance.npy", taken)  # a user takes an old distance map as an input
    before = files(out)
    with pytest.raises(ValueError) as info:
        precompute([paths[0], taken], out, progress=False, overwrite=True)
    assert "would delete" in str(info.value) and str(taken) in str(info.value)
    assert files(out) == before


@pytest.mark.parametrize(
    "kwargs, error, start",
    [
        (dict(signed_distance=None), TypeError, "signed_distance must be a bool"),
        (dict(skeleton_radius=float("inf")), ValueError, "skeleton_radius must be a finite"),
        (dict(skeleton_radius=[1.0]), TypeError, "skeleton_radius must be a real number"),
    ],
)
def test_precompute_bad_options_write_nothing(tmp_path, kwargs, error, start):
    paths = write_npy_masks(tmp_path / "masks", [mask_2d()], prefix="m")
    with pytest.raises(error, match=f"^{start}"):
        precompute(paths, tmp_path / "out", progress=False, **kwargs)
    assert not (tmp_path / "out").exists()
