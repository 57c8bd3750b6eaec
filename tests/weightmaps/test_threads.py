"""The ``threads`` option of the two-nearest-label kernel: the same bits whatever the count, checked
arguments, single-threaded by default. (Its speed-up is measured in benchmarks/bench_weightmaps.py.)"""

import inspect

import numpy as np
import pytest

from unetweights.weightmaps import falk_weight_map, nearest_two_distances, unet_weight_map
from unetweights.weightmaps._two_nearest import nearest_two_squared


def _labels(shape, seed, objects=40):
    rng = np.random.default_rng(seed)
    labels = np.zeros(shape, dtype=np.int64)
    for k in range(1, objects + 1):
        centre = [rng.integers(0, n) for n in shape]
        box = tuple(slice(max(c - 3, 0), c + 3) for c in centre)
        labels[box] = k
    return labels


@pytest.mark.parametrize(
    "shape, spacing",
    [
        ((37, 53), None),
        ((1, 70), None),  # one line: fewer lines than threads
        ((70, 1), None),
        ((9, 23, 41), (3.0, 1.0, 0.7)),
        ((5, 1, 18), (1.0, 1.0, 1.0)),
        ((3, 17, 5), (0.5, 2.0, 1.0)),  # fewer columns than a block of lines
    ],
)
def test_every_thread_count_gives_the_same_bits(shape, spacing):
    labels = _labels(shape, seed=sum(shape))
    d1, d2 = nearest_two_distances(labels, spacing)
    for threads in (2, 3, 7, 0, None):
        t1, t2 = nearest_two_distances(labels, spacing, threads=threads)
        assert t1.tobytes() == d1.tobytes() and t2.tobytes() == d2.tobytes(), threads


def test_the_kernel_splits_lines_beyond_their_count():
    labels = _labels((4, 6, 50), seed=1).astype(np.int32)
    one = nearest_two_squared(labels, (2.0, 1.0, 1.0), 1)
    many = nearest_two_squared(labels, (2.0, 1.0, 1.0), 64)
    assert all(a.tobytes() == b.tobytes() for a, b in zip(one, many))


@pytest.mark.parametrize("function", [unet_weight_map, falk_weight_map])
def test_weight_maps_are_the_same_with_threads(function):
    labels = _labels((11, 40, 33), seed=5)
    expected = function(labels, spacing=(2.0, 1.0, 1.0))
    assert function(labels, spacing=(2.0, 1.0, 1.0), threads=2).tobytes() == expected.tobytes()
    assert inspect.signature(function).parameters["threads"].default == 1


@pytest.mark.parametrize("threads, error", [(-1, ValueError), (1.5, ValueError), ("2", TypeError), (True, TypeError)])
@pytest.mark.parametrize("function", [nearest_two_distances, unet_weight_map, falk_weight_map])
def test_bad_thread_counts_are_refused_by_name(function, threads, error):
    with pytest.raises(error, match="threads"):
        function(_labels((8, 8), seed=0, objects=2), threads=threads)


def test_input_unchanged_with_threads():
    labels = _labels((20, 30), seed=2)
    before = labels.copy()
    unet_weight_map(labels, threads=2)
    assert np.array_equal(labels, before)


def test_precompute_and_the_command_line_take_threads(tmp_path):
    from unetweights.cli import main
    from unetweights.data import precompute

    masks = tmp_path / "masks"
    masks.mkdir()
    for k in range(2):
        np.save(masks / f"m{k}.npy", _labels((6, 30, 28), seed=k))
    paths = sorted(masks.glob("*.npy"))
    one = precompute(paths, tmp_path / "one", progress=False, spacing=(2.0, 1.0, 1.0))
    two = precompute(paths, tmp_path / "two", progress=False, spacing=(2.0, 1.0, 1.0), threads=2)
    assert one.ok and two.ok
    for name in ("m0.npy", "m1.npy"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
    # The count changes no map, so the manifests agree: a run with another count resumes the folder.
    manifest = "unetweights_manifest.json"
    assert (tmp_path / "one" / manifest).read_text() == (tmp_path / "two" / manifest).read_text()
    again = precompute(paths, tmp_path / "one", progress=False, spacing=(2.0, 1.0, 1.0), threads=0)
    assert again.skipped == 2
    assert main(["precompute", str(masks), "--out", str(tmp_path / "cli"), "--threads", "2", "--spacing", "2", "1", "1", "--quiet"]) == 0
    assert (tmp_path / "cli" / "m0.npy").read_bytes() == (tmp_path / "one" / "m0.npy").read_bytes()
    with pytest.raises(ValueError, match="threads"):
        precompute(paths, tmp_path / "bad", progress=False, threads=-2)
