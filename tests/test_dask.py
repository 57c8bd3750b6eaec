"""Chunked weight maps on Dask equal the in-memory map, locally and on a distributed cluster."""

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
zarr = pytest.importorskip("zarr")

import unetweights.dask as ud  # noqa: E402
from unetweights import border_cutoff, unet_weight_map  # noqa: E402
from unetweights.cli import main  # noqa: E402
from unetweights.synthetic import touching_nuclei  # noqa: E402

SPACING = (2.0, 1.0, 0.75)
SIGMA = 3.0


@pytest.fixture(scope="module")
def volume():
    labels = touching_nuclei((36, 60, 70), 70, radius=9.0, spacing=SPACING, seed=4)
    chunks = (12, 24, 28)  # 3 x 3 x 3 = 27 chunks
    return labels, da.from_array(labels, chunks=chunks)


def crossing_objects(labels, chunks):
    """Ids that appear in more than one chunk."""
    seen = {}
    for index in np.ndindex(*[int(np.ceil(s / c)) for s, c in zip(labels.shape, chunks)]):
        block = labels[tuple(slice(i * c, (i + 1) * c) for i, c in zip(index, chunks))]
        for obj in np.unique(block[block > 0]):
            seen.setdefault(int(obj), set()).add(index)
    return [obj for obj, blocks in seen.items() if len(blocks) > 1]


def test_the_volume_is_a_real_test(volume):
    labels, chunked = volume
    assert np.prod(chunked.numblocks) >= 8
    assert len(crossing_objects(labels, chunked.chunksize)) >= 20
    assert max(ud.required_halo(3, sigma=SIGMA, spacing=SPACING)) > 0


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"separate": True},
        {"border": "all", "w0": 5.0},
        {"class_weights": None, "tol": 1e-3},
        {"class_weights": {0: 0.5, 1: 2.0}},
    ],
    ids=["balanced", "separate", "border-all", "no-class-weights", "class-mapping"],
)
def test_chunked_equals_in_memory_on_anisotropic_volume(volume, options):
    labels, chunked = volume
    options = {"sigma": SIGMA, "spacing": SPACING, **options}
    lazy = ud.unet_weight_map(chunked, **options)
    assert lazy.chunks == chunked.chunks and lazy.dtype == np.float32
    result = lazy.compute()
    expected = unet_weight_map(labels, **options)
    assert result.dtype == np.float32
    assert np.abs(result - expected).max() <= options.get("tol", 1e-6)


def test_semantic_classes_are_counted_globally(volume):
    labels, chunked = volume
    classes = np.where(labels > 0, 1 + labels % 3, 0)
    lazy = ud.unet_weight_map(chunked, sigma=SIGMA, spacing=SPACING, classes=da.from_array(classes, chunks=(36, 30, 35)))
    expected = unet_weight_map(labels, sigma=SIGMA, spacing=SPACING, classes=classes)
    assert np.abs(lazy.compute() - expected).max() <= 1e-6


@pytest.mark.parametrize("separate", [False, True])
@pytest.mark.parametrize("semantic", [False, True])
def test_ignore_label_is_left_out_of_the_global_counts(volume, semantic, separate):
    labels, _ = volume
    labels = labels.copy()
    labels[: labels.shape[0] // 3] = 77  # ignored slab across several chunks
    classes = np.where(labels > 0, 1 + labels % 3, 0) if semantic else None
    chunked = da.from_array(labels, chunks=(36, 30, 35))
    lazy_classes = None if classes is None else da.from_array(classes, chunks=(36, 30, 35))
    options = dict(sigma=SIGMA, spacing=SPACING, ignore_label=77, separate=separate)
    lazy = ud.unet_weight_map(chunked, classes=lazy_classes, **options)
    expected = unet_weight_map(labels, classes=classes, **options)
    assert np.abs(lazy.compute() - expected).max() <= 1e-5
    assert np.all(expected[labels == 77] == 0.0)


@pytest.mark.parametrize("semantic", [False, True])
def test_sqrt_balancing_is_counted_globally(volume, semantic):
    labels, chunked = volume
    classes = np.where(labels > 0, 1 + labels % 3, 0) if semantic else None
    lazy_classes = None if classes is None else da.from_array(classes, chunks=(36, 30, 35))
    lazy = ud.unet_weight_map(chunked, sigma=SIGMA, spacing=SPACING, class_weights="sqrt", classes=lazy_classes)
    expected = unet_weight_map(labels, sigma=SIGMA, spacing=SPACING, class_weights="sqrt", classes=classes)
    assert np.abs(lazy.compute() - expected).max() <= 1e-5


def test_2d_and_chunks_smaller_than_the_halo():
    labels = touching_nuclei((90, 80), 40, radius=7.0, seed=2)
    chunked = da.from_array(labels, chunks=(10, 12))  # T = 5·√(2 ln 1e7) = 28.4, so the halo is 29 pixels
    assert ud.required_halo(2) == (29, 29)
    result = ud.unet_weight_map(chunked).compute()
    assert np.abs(result - unet_weight_map(labels)).max() <= 1e-6



def test_a_reach_longer_than_the_volume_takes_the_whole_axis():
    """A huge sigma or a tiny spacing: the halo stops at the axis length, and the map stays exact."""
    import sys

    assert ud.required_halo(2, sigma=1e300) == (sys.maxsize, sys.maxsize)
    # The finest spacing the maps accept beside 1 (a factor of 1e150; required_halo checks the
    # options as the map does, so a finer one is refused as it is there).
    assert ud.required_halo(2, spacing=(1e-140, 1.0)) == (sys.maxsize, 29)
    with pytest.raises(ValueError, match="spacing entries must differ by a factor of at most"):
        ud.required_halo(2, spacing=(1e-300, 1.0))
    assert ud.required_halo(2, sigma=1e6, shape=(40, 30)) == (40, 30)
    labels = touching_nuclei((40, 30), 6, radius=5.0, seed=3)
    chunked = da.from_array(labels, chunks=(16, 16))
    result = ud.unet_weight_map(chunked, sigma=1e6).compute()
    want = unet_weight_map(labels, sigma=1e6)
    assert np.abs(result - want).max() <= 1e-6
    assert want.max() > 5.0  # the border term is there, not lost to an overflow

def test_halo_is_derived_and_cannot_be_too_small(volume):
    labels, chunked = volume
    needed = ud.required_halo(3, sigma=SIGMA, spacing=SPACING)
    cutoff = border_cutoff(10.0, SIGMA, 1e-6)
    assert needed == tuple(int(np.ceil(cutoff / s)) for s in SPACING)
    assert ud.required_halo(3, sigma=SIGMA, spacing=SPACING, separate=True) == tuple(n + 1 for n in needed)
    with pytest.raises(ValueError, match=r"halo: \[.*\] voxels is less than the .* these parameters need"):
        ud.unet_weight_map(chunked, sigma=SIGMA, spacing=SPACING, halo=[n - 1 for n in needed])
    with pytest.raises(ValueError, match="halo: "):
        ud.unet_weight_map(chunked, sigma=SIGMA, spacing=SPACING, halo=3)
    wider = ud.unet_weight_map(chunked, sigma=SIGMA, spacing=SPACING, halo=[n + 2 for n in needed]).compute()
    assert np.abs(wider - unet_weight_map(labels, sigma=SIGMA, spacing=SPACING)).max() <= 1e-6


def test_input_errors(volume):
    labels, chunked = volume
    with pytest.raises(TypeError, match="labels: expected a dask array, got ndarray"):
        ud.unet_weight_map(labels)
    with pytest.raises(ValueError, match="labels: a bool mask needs connected components"):
        ud.unet_weight_map(chunked > 0)
    with pytest.raises(ValueError, match="labels: expected integer instance ids, got dtype float32"):
        ud.unet_weight_map(chunked.astype(np.float32))
    with pytest.raises(ValueError, match="labels: expected a 2D or 3D array"):
        ud.unet_weight_map(da.zeros((2, 3, 4, 5), dtype=np.int32))
    with pytest.raises(ValueError, match="sigma"):
        ud.unet_weight_map(chunked, sigma=-1.0)
    with pytest.raises(ValueError, match="spacing"):
        ud.unet_weight_map(chunked, spacing=(1.0, 1.0))
    with pytest.raises(ValueError, match="classes: expected a dask array of the labels' shape"):
        ud.unet_weight_map(chunked, classes=da.zeros((3, 3, 3), dtype=np.int32))


def test_precompute_zarr_and_the_cli(volume, tmp_path, capsys):
    labels, chunked = volume
    source = str(tmp_path / "labels.zarr")
    store = zarr.open(source, mode="w", shape=labels.shape, chunks=chunked.chunksize, dtype=labels.dtype)
    store[:] = labels
    destination = str(tmp_path / "weights.zarr")
    argv = ["precompute", "--zarr", source, destination, "--sigma", str(SIGMA), "--spacing", *map(str, SPACING), "--quiet"]
    assert main(argv) == 0
    assert "Mvoxel/s" in capsys.readouterr().out
    written = zarr.open(destination, mode="r")
    assert written.chunks == chunked.chunksize and written.dtype == np.float32
    assert np.abs(written[:] - unet_weight_map(labels, sigma=SIGMA, spacing=SPACING)).max() <= 1e-6
    assert main(argv) == 2  # the output exists
    assert "destination:" in capsys.readouterr().err
    assert main(argv + ["--overwrite"]) == 0
    assert main(["precompute", "--zarr", str(tmp_path / "missing.zarr"), destination, "--quiet"]) == 2
    assert "source: cannot open" in capsys.readouterr().err


def test_progress_bar_counts_chunks(volume, tmp_path):
    labels, chunked = volume
    source = str(tmp_path / "labels.zarr")
    zarr.open(source, mode="w", shape=labels.shape, chunks=chunked.chunksize, dtype=labels.dtype)[:] = labels
    counted = []

    class Recorder:
        def __init__(self, *args, total=None, **kwargs):
            counted.append(total)
            self.n = 0

        def update(self, n):
            self.n += n
            counted.append(self.n)

        def close(self):
            pass

    import tqdm.auto

    original = tqdm.auto.tqdm
    tqdm.auto.tqdm = Recorder
    try:
        ud.precompute_zarr(source, str(tmp_path / "w.zarr"), sigma=SIGMA, spacing=SPACING)
    finally:
        tqdm.auto.tqdm = original
    assert counted[0] == 27 and counted[-1] == 27


def test_local_cluster_gives_the_same_map(volume, tmp_path):
    distributed = pytest.importorskip("distributed")
    labels, chunked = volume
    expected = unet_weight_map(labels, sigma=SIGMA, spacing=SPACING, separate=True)
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster, distributed.Client(cluster) as client:
        result = client.compute(ud.unet_weight_map(chunked, sigma=SIGMA, spacing=SPACING, separate=True)).result()
        assert np.abs(result - expected).max() <= 1e-6
        assert len(client.scheduler_info()["workers"]) == 2
        source = str(tmp_path / "labels.zarr")
        zarr.open(source, mode="w", shape=labels.shape, chunks=chunked.chunksize, dtype=labels.dtype)[:] = labels
        report = ud.precompute_zarr(
            source, str(tmp_path / "w.zarr"), scheduler=cluster.scheduler_address, progress=False,
            sigma=SIGMA, spacing=SPACING,
        )
        assert report.shape == labels.shape
    written = zarr.open(str(tmp_path / "w.zarr"), mode="r")[:]
    assert np.abs(written - unet_weight_map(labels, sigma=SIGMA, spacing=SPACING)).max() <= 1e-6
