"""Caches and manifests written by release 0.1.0 keep working: the records in tests/data/compat were
written by the code before the weight-map recipe (tests/data/compat/make_fixtures.py, commit
9cf9ba2), and the code of today must read and write exactly the same."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import unetweights.data._dataset as dataset_module
from unetweights.data import WeightMapDataset, WeightMapRecipe, precompute

COMPAT = Path(__file__).parent / "compat"
RECORDS = json.loads((COMPAT / "records_0_1_0.json").read_text())
RECORDED_VERSION = "0.1.0"


def _kwargs(record):
    kwargs = dict(record["kwargs"])
    if isinstance(kwargs.get("class_weights"), dict):
        kwargs["class_weights"] = dict(map(tuple, kwargs["class_weights"]["__mapping__"]))
    return kwargs


@pytest.fixture
def old_version(monkeypatch):
    """The library version the records were written with (it is part of every cache key)."""
    monkeypatch.setattr(dataset_module, "_library_version", lambda: RECORDED_VERSION)


def test_the_records_cover_every_weighting_target_and_output():
    datasets = [r for r in RECORDS if r["kind"] == "dataset"]
    assert {r["target"] for r in datasets} == {"foreground", "separated", "labels"}
    assert {r["kwargs"].get("weighting", "unet") for r in datasets} == {"unet", "falk"}
    assert len([r for r in RECORDS if r["kind"] == "manifest"]) == 15


@pytest.mark.parametrize("record", [r for r in RECORDS if r["kind"] == "dataset"], ids=lambda r: str(r["kwargs"]))
def test_cache_keys_are_those_of_0_1_0(record, old_version):
    kwargs = _kwargs(record)
    dataset = WeightMapDataset([], target=record["target"], **kwargs)
    for output, header in record["key_headers"].items():
        assert dataset._key_headers[output].decode() == header
    # The same key from a recipe given whole.
    num_classes = kwargs.pop("num_classes", None)
    from_recipe = WeightMapDataset([], target=record["target"], num_classes=num_classes, recipe=WeightMapRecipe(**kwargs))
    assert from_recipe._key_headers == dataset._key_headers


@pytest.mark.parametrize("record", [r for r in RECORDS if r["kind"] == "manifest"], ids=lambda r: str(r["kwargs"]))
def test_manifest_options_are_those_of_0_1_0(record):
    assert WeightMapRecipe(**_kwargs(record)).canonical() == record["options"]


def test_a_folder_written_by_0_1_0_resumes(tmp_path):
    out = tmp_path / "precomputed"
    shutil.copytree(COMPAT / "precomputed", out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    masks = sorted((COMPAT / "masks").glob("*.npy"))
    options = dict(sigma=3, class_weights={0: 1, 1: 3}, signed_distance=True)
    report = precompute(masks, out, progress=False, **options)
    assert (report.written, report.skipped, report.failed) == (0, 2, [])
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    # And the maps there are today's maps of those masks.
    recipe = WeightMapRecipe(**options)
    for path in masks:
        maps = recipe.maps(np.load(path))
        np.testing.assert_array_equal(np.load(out / path.name), maps["weight"])
        np.testing.assert_array_equal(np.load(out / f"{path.stem}.distance.npy"), maps["distance"])
    # Other options are refused, as they were.
    with pytest.raises(ValueError, match="other options"):
        precompute(masks, out, progress=False, sigma=4)


def test_a_cache_written_by_0_1_0_is_read(tmp_path, old_version):
    cache = tmp_path / "cache"
    shutil.copytree(COMPAT / "cache", cache)
    masks = [np.load(p) for p in sorted((COMPAT / "masks").glob("*.npy"))]
    dataset = WeightMapDataset(
        [(None, m) for m in masks], cache_dir=cache, target="separated", sigma=3, skeleton_radius=1.0
    )
    items = [dataset[i] for i in range(len(dataset))]
    assert dataset.cache_info() == (4, 0, 0)
    assert sorted(p.name for p in cache.iterdir()) == sorted(p.name for p in (COMPAT / "cache").iterdir())
    fresh = WeightMapDataset([(None, m) for m in masks], target="separated", sigma=3, skeleton_radius=1.0)
    for i, item in enumerate(items):
        for got, want in zip(item[1:], fresh[i][1:]):
            np.testing.assert_array_equal(got, want)
