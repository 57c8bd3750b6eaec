"""Writes the files of tests/data/test_compat.py: what release 0.1.0 (commit 9cf9ba2, before the
weight-map recipe) recorded for a set of options, so that later code is checked against it.

Run once, from the repository root, with the code whose records are to be kept:
    python tests/data/compat/make_fixtures.py
Do not rerun it with newer code: the files are the record of the old format.
"""

import json
import shutil
from pathlib import Path

import numpy as np

from unetweights.data import WeightMapDataset, precompute

HERE = Path(__file__).parent

# (dataset keyword arguments, precompute keyword arguments)
CONFIGS = [
    {},
    {"w0": 5, "sigma": 3, "class_weights": {1: 2, 0: 1}, "spacing": (2, 1), "border": "all", "tol": 1e-5},
    {"class_weights": "sqrt", "ignore_label": 7, "spacing": 0.5},
    {"class_weights": None},
    {"weighting": "falk", "lam": 20, "sigma_bal": 4, "spacing": [1, 2]},
]
TARGETS = [{"signed_distance": True, "skeleton_radius": 1.0}, {"skeleton_radius": 0}, {}]


def masks():
    rng = np.random.default_rng(0)
    a = np.zeros((16, 16), np.int32)
    a[2:7, 2:7], a[7:12, 4:10], a[12:15, 11:15] = 1, 2, 3
    b = rng.integers(0, 4, (16, 16)).astype(np.uint8)
    return {"a": a, "b": b}


def main():
    records = []
    for i, options in enumerate(CONFIGS):
        for j, targets in enumerate(TARGETS):
            for target in ("foreground", "separated", "labels"):
                kwargs = dict(options, **targets)
                if target == "labels" and targets.get("signed_distance"):
                    kwargs["num_classes"] = 8
                dataset = WeightMapDataset([], target=target, **kwargs)
                records.append({
                    "kind": "dataset", "target": target, "kwargs": _jsonable(kwargs),
                    "key_headers": {k: v.decode() for k, v in dataset._key_headers.items()},
                })
            folder = HERE / "tmp"
            shutil.rmtree(folder, ignore_errors=True)
            precompute([], folder, progress=False, **options, **targets)
            manifest = json.loads((folder / "unetweights_manifest.json").read_text())
            shutil.rmtree(folder)
            records.append({"kind": "manifest", "kwargs": _jsonable(dict(options, **targets)), "options": manifest["options"]})
    (HERE / "records_0_1_0.json").write_text(json.dumps(records, indent=1, sort_keys=True) + "\n")

    # A real folder and a real cache, for the end-to-end checks.
    source = HERE / "masks"
    shutil.rmtree(source, ignore_errors=True)
    source.mkdir()
    for name, mask in masks().items():
        np.save(source / f"{name}.npy", mask)
    paths = sorted(source.glob("*.npy"))
    out = HERE / "precomputed"
    shutil.rmtree(out, ignore_errors=True)
    report = precompute(paths, out, progress=False, sigma=3, class_weights={0: 1, 1: 3}, signed_distance=True)
    assert report.ok and report.written == 2
    cache = HERE / "cache"
    shutil.rmtree(cache, ignore_errors=True)
    dataset = WeightMapDataset(
        [(None, np.load(p)) for p in paths], cache_dir=cache, target="separated", sigma=3, skeleton_radius=1.0
    )
    for i in range(len(dataset)):
        dataset[i]
    assert dataset.cache_info().misses == 4


def _jsonable(kwargs):
    out = dict(kwargs)
    if isinstance(out.get("class_weights"), dict):
        out["class_weights"] = {"__mapping__": sorted([k, v] for k, v in out["class_weights"].items())}
    return out


if __name__ == "__main__":
    main()
