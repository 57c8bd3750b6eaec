"""SegmentationMetrics, the dataset accumulator, against a brute-force float64 reference.

- seeded random datasets (several batches of different sizes, 2D and 3D, every activation, index
  and binary targets, weights with zeros, ignored pixels, classes absent from some images) give
  the micro and macro scores of ``tests/metrics_reference.py``'s ``ref_dataset`` at 1e-10;
- how the batches are split does not matter, and the macro means are the ``nanmean`` of the
  per-image metrics;
- a NaN logit makes every micro score and every macro mean NaN, never a silent 1.0 or a
  skipped image, while an absent class is skipped;
- ``ignore_empty=True`` leaves the images whose target lacks a class out of that class's Dice and
  IoU, micro and macro (by hand, against the reference, and against MONAI's ``DiceMetric`` and
  ``MeanIoU`` and their own test values), and never takes NaN counts for an absent class;
- a real 2-process gloo group: the synced result equals one process's result on the union, and
  processes that differ in C or in the options that shape the summed states all raise the same
  named error (instead of an abort inside gloo);
- the counts of an exported graph run by OnnxEvaluator give the result of the torch logits;
- bad input raises a ValueError that starts with the argument's name: bad options, and counts
  that no data can give (tp > Σp, negative true negatives, ...).
"""

import math
import re
import warnings

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from unetweights.evaluation import EvaluationGraph
from unetweights.metrics import (
    COUNT_NAMES,
    DiceScore,
    SegmentationCount,
    SegmentationMetrics,
    dice_score,
    iou_score,
    pixel_accuracy,
    segmentation_counts,
)

from . import metrics_reference as R

RTOL = 1e-10
ATOL = 1e-12
NAN = float("nan")
IGNORE = 255


# ------------------------------------------------------------------------------------------------
# Data
# ------------------------------------------------------------------------------------------------


def make_batch(rng, n, c, spatial, activation, target_kind, ignore_index=None, weight_kind="pixel", absent=True):
    """Float64 (input, target, weight); with ``absent``, each image leaves some classes out of both
    its target and its prediction, so that their Dice denominator is exactly 0."""
    shape = (n, c, *spatial)
    x = rng.normal(0.0, 2.0, shape)
    present = np.ones((n, c), dtype=bool)
    if absent and c > 1:
        for i in range(n):
            keep = rng.permutation(c)[: int(rng.integers(1, c + 1))]
            present[i] = np.isin(np.arange(c), keep)
    mask = present.reshape(n, c, *([1] * len(spatial)))
    if activation == "softmax":
        x = np.where(mask, x, -100.0)  # an absent class is never the argmax, and its softmax is ~0
    elif activation == "sigmoid":
        x = np.where(mask, x, -100.0)  # sigmoid(-100) is below every threshold
    else:
        x = np.where(mask, 1.0 / (1.0 + np.exp(-x)), 0.0)
    if target_kind == "index":
        y = np.empty((n, *spatial), dtype=np.int64)
        for i in range(n):
            y[i] = rng.choice(np.flatnonzero(present[i]), size=spatial)
        if ignore_index is not None:
            y[rng.random(y.shape) < 0.2] = ignore_index
        target = torch.tensor(y)
    else:
        target = torch.tensor(((rng.random(shape) < 0.4) & mask).astype(np.float64))
    weight = None
    if weight_kind is not None:
        w = rng.uniform(0.1, 3.0, (n, *spatial))
        w[rng.random(w.shape) < 0.2] = 0.0
        if weight_kind == "zeros":
            w[0] = 0.0  # an image that weighs nothing at all
        weight = torch.tensor(w)
    return torch.tensor(x), target, weight


def random_dataset(index):
    rng = np.random.default_rng([index, 14])

    def pick(values):
        return values[int(rng.integers(len(values)))]

    activation = pick(["softmax", "sigmoid", "none"])
    target_kind = "binary" if activation == "sigmoid" else pick(["index", "index", "binary"])
    c = int(rng.integers(1, 5)) if activation != "softmax" else int(rng.integers(2, 5))
    hard = pick([True, True, False])
    options = dict(
        activation=activation,
        hard=hard,
        threshold=pick([0.3, 0.5, 0.7]),
        include_background=pick([True, False]) if c >= 2 else True,
        ignore_index=pick([None, IGNORE, -1]) if target_kind == "index" else None,
        empty_score=pick([NAN, NAN, 1.0, 0.0]),
    )
    rank = pick([2, 3])
    batches = []
    for _ in range(int(rng.integers(1, 4))):
        spatial = tuple(int(rng.integers(1, 4 if rank == 2 else 3) + 1) for _ in range(rank))
        batches.append(
            make_batch(rng, int(rng.integers(1, 4)), c, spatial, activation, target_kind, options["ignore_index"],
                       pick([None, "pixel", "zeros"]), absent=pick([True, True, False]))
        )
    options["ignore_empty"] = pick([False, True])  # drawn last: the earlier draws stay as they were
    return batches, options


def accumulate(batches, **options):
    metrics = SegmentationMetrics(**options)
    for batch in batches:
        metrics.update(*batch)
    return metrics.compute()


def assert_result(got, expected, rtol=RTOL, atol=ATOL):
    assert set(got) == set(expected), (sorted(got), sorted(expected))
    for name, value in expected.items():
        actual = got[name]
        assert tuple(actual.shape) == np.shape(value), name
        if name == "images" or name.endswith("_images"):
            assert actual.dtype == torch.int64, name
            np.testing.assert_array_equal(actual.cpu().numpy(), value, err_msg=name)
        else:
            assert actual.dtype == torch.float64, name
            np.testing.assert_allclose(actual.cpu().numpy(), value, rtol=rtol, atol=atol, equal_nan=True, err_msg=name)


def all_present_batches(seed=0, shapes=((2, 3, 4, 5), (3, 3, 3, 3))):
    """Softmax batches in which every class is in the target and the prediction of every image."""
    g = torch.Generator().manual_seed(seed)
    batches = []
    for n, c, *spatial in shapes:
        target = torch.arange(c).repeat(int(np.prod(spatial)) // c + 1)[: int(np.prod(spatial))]
        target = torch.stack([target[torch.randperm(target.numel(), generator=g)] for _ in range(n)]).view(n, *spatial)
        logits = torch.randn(n, c, *spatial, generator=g, dtype=torch.float64)
        logits += 3.0 * torch.nn.functional.one_hot(target, c).movedim(-1, 1)
        weight = torch.rand(n, *spatial, generator=g, dtype=torch.float64) + 0.5
        batches.append((logits, target, weight))
    return batches


# ------------------------------------------------------------------------------------------------
# Against the reference
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("index", range(60))
def test_random_dataset_matches_reference(index):
    batches, options = random_dataset(index)
    assert_result(accumulate(batches, **options), R.ref_dataset(batches, **options))


@pytest.mark.parametrize("activation,target_kind", [("softmax", "index"), ("softmax", "binary"), ("sigmoid", "binary"),
                                                    ("none", "index")])
@pytest.mark.parametrize("empty_score", [NAN, 1.0])
def test_fixed_cases_match_reference(activation, target_kind, empty_score):
    # Weights, ignored pixels, absent classes and background dropped, on a 2D and a 3D batch.
    rng = np.random.default_rng(len(activation) + 10 * len(target_kind))
    ignore = IGNORE if target_kind == "index" else None
    batches = [make_batch(rng, 3, 3, (4, 3), activation, target_kind, ignore),
               make_batch(rng, 2, 3, (2, 3, 2), activation, target_kind, ignore, weight_kind="zeros")]
    for include_background, ignore_empty in ((True, False), (False, True)):
        options = dict(activation=activation, include_background=include_background, ignore_index=ignore,
                       empty_score=empty_score, ignore_empty=ignore_empty)
        got = accumulate(batches, **options)
        assert_result(got, R.ref_dataset(batches, **options))
        assert got["images"] == 5
    # The absent classes are really there to skip: some macro mean averages fewer than 5 images.
    if math.isnan(empty_score):
        assert (got["dice_images"] < 5).any()


def test_hand_example():
    # Two 1x2 images, two classes, weights 1. Image 0: prediction [1, 1], target [1, 0]; image 1:
    # prediction [0, 0], target [0, 0] (class 1 absent from both).
    # class 0: tp 0 + 2, Σp 0 + 2, Σt 1 + 2: micro Dice 4/5, IoU 2/(5 - 2) = 2/3, accuracy 2/3;
    #   per image Dice 0 and 1 -> macro 1/2; IoU 0 and 1 -> 1/2; accuracy 0 and 1 -> 1/2.
    # class 1: tp 1, Σp 2, Σt 1: micro Dice 2/3, IoU 1/2, accuracy 1; image 1 is absent (skipped):
    #   macro Dice 2/3, IoU 1/2, accuracy 1, each over 1 image.
    # overall accuracy: 1 + 2 of 4 pixels right, micro 3/4; per image 1/2 and 1 -> macro 3/4.
    x = torch.zeros(2, 2, 1, 2, dtype=torch.float64)
    x[0, 1] = 1.0
    x[1, 0] = 1.0
    y = torch.tensor([[[1, 0]], [[0, 0]]])
    got = accumulate([(x, y, None)])
    assert_result(got, {
        "dice": np.array([0.8, 2 / 3]), "dice_macro": np.array([0.5, 2 / 3]), "dice_images": np.array([2, 1]),
        "iou": np.array([2 / 3, 0.5]), "iou_macro": np.array([0.5, 0.5]), "iou_images": np.array([2, 1]),
        "class_accuracy": np.array([2 / 3, 1.0]), "class_accuracy_macro": np.array([0.5, 1.0]),
        "class_accuracy_images": np.array([2, 1]),
        "accuracy": np.array(0.75), "accuracy_macro": np.array(0.75), "accuracy_images": np.array(2),
        "images": np.array(2),
    })
    # empty_score=1.0 averages the absent class as a perfect score.
    one = accumulate([(x, y, None)], empty_score=1.0)
    np.testing.assert_allclose(one["dice_macro"].numpy(), [0.5, (2 / 3 + 1.0) / 2], rtol=RTOL)
    np.testing.assert_array_equal(one["dice_images"].numpy(), [2, 2])


def test_class_absent_from_the_whole_dataset_is_empty_score():
    x = torch.zeros(2, 3, 2, 2, dtype=torch.float64)
    x[:, 0] = 1.0
    x[1, 1, 0, 0] = 5.0  # image 1 predicts class 1 once; class 2 is nowhere
    y = torch.zeros(2, 2, 2, dtype=torch.long)
    got = accumulate([(x, y, None)])
    assert math.isnan(got["dice"][2]) and math.isnan(got["dice_macro"][2]) and got["dice_images"][2] == 0
    assert got["dice"][1] == 0.0 and got["dice_images"][1] == 1
    assert math.isnan(got["class_accuracy"][1]) and got["class_accuracy_images"][1] == 0
    zero = accumulate([(x, y, None)], empty_score=0.0)
    assert zero["dice"][2] == 0.0 and zero["dice_macro"][2] == 0.0 and zero["dice_images"][2] == 2
    # With ignore_empty, class 1, predicted once but in no target, has nothing to score either.
    ignoring = accumulate([(x, y, None)], ignore_empty=True)
    for name in ("dice", "iou"):
        assert torch.isnan(ignoring[name][1:]).all() and torch.isnan(ignoring[f"{name}_macro"][1:]).all()
        assert ignoring[f"{name}_images"].tolist() == [2, 0, 0]


def test_hand_example_ignore_empty():
    # Two 1x2 images, two classes, weights 1. Image 0: prediction [1, 1], target [0, 0] (class 1
    # predicted, absent from the target); image 1: prediction [1, 0], target [1, 0].
    # Image 0: class 0 tp 0, Σp 0, Σt 2; class 1 tp 0, Σp 2, Σt 0. Image 1: tp 1, Σp 1, Σt 1 each.
    # Default: per-image Dice [0, 0] and [1, 1]: macro [1/2, 1/2]; micro class 0 2/(1 + 3),
    #   class 1 2/(3 + 1): [1/2, 1/2]; IoU micro 1/(4 - 1) = 1/3 each, macro [1/2, 1/2].
    # ignore_empty: image 0's class 1 leaves the macro mean (Dice and IoU [1/2, 1], over [2, 1]
    #   images) and its Σp = 2 the micro sums: class 1 Dice 2/(1 + 1) = 1, IoU 1/(2 - 1) = 1.
    # Accuracies do not change: class accuracy micro [1/3, 1], macro [1/2, 1] over [2, 1]
    #   images; overall 2/4 micro and macro.
    x = torch.zeros(2, 2, 1, 2, dtype=torch.float64)
    x[0, 1] = 1.0
    x[1, 1, 0, 0] = 1.0
    x[1, 0, 0, 1] = 1.0
    y = torch.tensor([[[0, 0]], [[1, 0]]])
    accuracies = {
        "class_accuracy": np.array([1 / 3, 1.0]), "class_accuracy_macro": np.array([0.5, 1.0]),
        "class_accuracy_images": np.array([2, 1]),
        "accuracy": np.array(0.5), "accuracy_macro": np.array(0.5), "accuracy_images": np.array(2),
        "images": np.array(2),
    }
    assert_result(accumulate([(x, y, None)]), {
        "dice": np.array([0.5, 0.5]), "dice_macro": np.array([0.5, 0.5]), "dice_images": np.array([2, 2]),
        "iou": np.array([1 / 3, 1 / 3]), "iou_macro": np.array([0.5, 0.5]), "iou_images": np.array([2, 2]),
        **accuracies,
    })
    ignoring = {
        "dice": np.array([0.5, 1.0]), "dice_macro": np.array([0.5, 1.0]), "dice_images": np.array([2, 1]),
        "iou": np.array([1 / 3, 1.0]), "iou_macro": np.array([0.5, 1.0]), "iou_images": np.array([2, 1]),
        **accuracies,
    }
    assert_result(accumulate([(x, y, None)], ignore_empty=True), ignoring)
    # The same from counts, one image at a time: update_counts applies the rule too.
    metrics = SegmentationMetrics(ignore_empty=True)
    for image in range(2):
        metrics.update_counts(*(c.numpy() for c in segmentation_counts(x[image:image + 1], y[image:image + 1])))
    assert_result(metrics.compute(), ignoring)
    # A finite empty_score is averaged for the image that lacks the class, as dice_score gives it.
    zero = accumulate([(x, y, None)], ignore_empty=True, empty_score=0.0)
    np.testing.assert_allclose(zero["dice_macro"].numpy(), [0.5, 0.5], rtol=RTOL)
    np.testing.assert_array_equal(zero["dice_images"].numpy(), [2, 2])
    np.testing.assert_allclose(zero["dice"].numpy(), [0.5, 1.0], rtol=RTOL)


def test_split_into_batches_changes_nothing():
    rng = np.random.default_rng(3)
    x, y, w = make_batch(rng, 6, 4, (5, 4), "softmax", "index", IGNORE)
    whole = accumulate([(x, y, w)], ignore_index=IGNORE)
    parts = accumulate([(x[:1], y[:1], w[:1]), (x[1:4], y[1:4], w[1:4]), (x[4:], y[4:], w[4:])], ignore_index=IGNORE)
    assert_result(parts, {name: value.numpy() for name, value in whole.items()}, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("ignore_empty", [False, True])
def test_macro_is_the_nanmean_of_the_per_image_metrics(ignore_empty):
    rng = np.random.default_rng(4)
    batches = [make_batch(rng, 3, 3, (4, 4), "softmax", "index", IGNORE) for _ in range(2)]
    if ignore_empty:
        # Class 2 predicted in an image whose target lacks it: the two rules differ there.
        batches[0][1][0][batches[0][1][0] == 2] = 1
        batches[0][0][0, 2] = 0.0
    got = accumulate(batches, ignore_index=IGNORE, include_background=False, ignore_empty=ignore_empty)
    for name, metric in (("dice", dice_score), ("iou", iou_score), ("class_accuracy", pixel_accuracy)):
        opts = dict(ignore_empty=ignore_empty) if name != "class_accuracy" else {}
        per_image = torch.cat([metric(*batch, ignore_index=IGNORE, include_background=False, **opts)
                               for batch in batches])
        counted = (~torch.isnan(per_image)).sum(0)
        assert (counted < 6).any(), "the data should leave some classes out of some images"
        np.testing.assert_allclose(got[f"{name}_macro"].numpy(), np.nanmean(per_image.numpy(), 0), rtol=RTOL)
        np.testing.assert_array_equal(got[f"{name}_images"].numpy(), counted.numpy())
    overall = torch.cat([pixel_accuracy(*batch, per_class=False, ignore_index=IGNORE) for batch in batches])
    np.testing.assert_allclose(float(got["accuracy_macro"]), float(overall.mean()), rtol=RTOL)
    if ignore_empty:
        # Image 0's class 2 is predicted: 0 under the default rule, left out under this one.
        assert dice_score(*batches[0], ignore_index=IGNORE)[0, 2] == 0.0
        default = accumulate(batches, ignore_index=IGNORE, include_background=False)
        assert default["dice_images"][1] == got["dice_images"][1] + 1


def test_soft_scores_have_no_accuracy():
    rng = np.random.default_rng(5)
    batch = make_batch(rng, 2, 3, (3, 3), "softmax", "index")
    got = accumulate([batch], hard=False)
    assert sorted(got) == sorted(["dice", "dice_macro", "dice_images", "iou", "iou_macro", "iou_images", "images"])
    assert_result(got, R.ref_dataset([batch], hard=False))


def test_float32_input_is_accumulated_in_float64():
    rng = np.random.default_rng(6)
    batches = [make_batch(rng, 2, 3, (6, 5), "softmax", "index", IGNORE) for _ in range(3)]
    single = [tuple(t.float() if t is not None and t.is_floating_point() else t for t in batch) for batch in batches]
    got = accumulate(single, ignore_index=IGNORE)
    assert all(value.dtype in (torch.float64, torch.int64) for value in got.values())
    assert_result(got, R.ref_dataset(single, ignore_index=IGNORE), rtol=1e-6, atol=1e-7)


# ------------------------------------------------------------------------------------------------
# State: reset, compute, devices
# ------------------------------------------------------------------------------------------------


def test_compute_leaves_the_state_and_reset_clears_it():
    batches = all_present_batches()
    metrics = SegmentationMetrics()
    metrics.update(*batches[0])
    first = metrics.compute()
    assert_result(metrics.compute(), {k: v.numpy() for k, v in first.items()}, rtol=0, atol=0)
    metrics.update(*batches[1])
    assert_result(metrics.compute(), {k: v.numpy() for k, v in accumulate(batches).items()}, rtol=0, atol=0)
    metrics.reset()
    with pytest.raises(RuntimeError, match="compute: no update yet"):
        metrics.compute()
    # C is forgotten with the data: the next dataset may have another C.
    metrics.update(torch.randn(1, 5, 2, 2), torch.zeros(1, 2, 2, dtype=torch.long))
    assert metrics.compute()["dice"].shape == (5,)


def test_num_classes_fixes_c_across_reset():
    metrics = SegmentationMetrics(num_classes=3)
    with pytest.raises(RuntimeError, match="compute: no image was added"):
        metrics.compute()
    metrics.update(*all_present_batches()[0])
    metrics.reset()
    with pytest.raises(ValueError, match=r"^input: expected C = 3 channels \(num_classes=3\)"):
        metrics.update(torch.randn(1, 4, 2, 2), torch.zeros(1, 2, 2, dtype=torch.long))


def test_update_does_not_track_gradients():
    x, y, w = all_present_batches()[0]
    metrics = SegmentationMetrics()
    metrics.update(x.requires_grad_(True), y, w)
    assert not any(value.requires_grad for value in metrics.compute().values())


def test_states_live_on_the_given_device():
    batches = all_present_batches()
    metrics = SegmentationMetrics(device="cpu")
    metrics.update_counts(*(c.numpy() for c in segmentation_counts(*batches[0])))
    metrics.update(*batches[1])
    assert all(value.device.type == "cpu" for value in metrics.compute().values())
    assert_result(metrics.compute(), {k: v.numpy() for k, v in accumulate(batches).items()})


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_updates_and_numpy_counts_meet_on_the_first_device():
    batches = all_present_batches()
    metrics = SegmentationMetrics()
    metrics.update(*(t.cuda() for t in batches[0]))
    metrics.update_counts(*(c.numpy() for c in segmentation_counts(*batches[1])))
    got = metrics.compute()
    assert all(value.device.type == "cuda" for value in got.values())
    assert_result({k: v.cpu() for k, v in got.items()}, {k: v.numpy() for k, v in accumulate(batches).items()},
                  rtol=1e-9, atol=1e-12)


# ------------------------------------------------------------------------------------------------
# A NaN in is a NaN out; an absent class is not a NaN in
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("empty_score", [NAN, 1.0])
def test_nan_logit_makes_every_score_nan(empty_score):
    batches = all_present_batches()
    clean = accumulate(batches, empty_score=empty_score)
    assert all(bool(torch.isfinite(value).all()) for value in clean.values())
    logits, target, weight = batches[1]
    poisoned = logits.clone()
    poisoned[1, 2, 0, 0] = NAN  # one logit of one image
    got = accumulate([batches[0], (poisoned, target, weight)], empty_score=empty_score)
    for name, value in got.items():
        if name == "images" or name.endswith("_images"):
            # The poisoned image is counted, not skipped: that is what carries its NaN.
            torch.testing.assert_close(value, clean[name], rtol=0, atol=0)
        else:
            assert torch.isnan(value).all(), f"{name}: expected NaN, got {value}"
    # Without the poisoned image, everything is finite again: the NaN came from that image only.
    without = accumulate([batches[0], (logits[[0, 2]], target[[0, 2]], weight[[0, 2]])], empty_score=empty_score)
    assert all(bool(torch.isfinite(value).all()) for value in without.values())


def test_absent_class_is_skipped_but_nan_counts_are_not():
    # Image 0 has no class 2 anywhere: skipped in class 2's macro mean. The same image's counts
    # made NaN (what a graph gives for a NaN logit) are not skipped: they poison every score.
    x, y, w = all_present_batches()[0]
    x, y = x.clone(), y.clone()
    y[0][y[0] == 2] = 0
    x[0, 2] = -100.0
    counts = [c.clone() for c in segmentation_counts(x, y, w)]
    clean = SegmentationMetrics()
    clean.update_counts(*counts)
    got = clean.compute()
    assert got["dice_images"].tolist() == [2, 2, 1] and bool(torch.isfinite(got["dice_macro"]).all())
    for count in counts:
        count[0] = NAN
    poisoned = SegmentationMetrics()
    poisoned.update_counts(*counts)
    got = poisoned.compute()
    assert got["dice_images"].tolist() == [2, 2, 2]
    assert all(bool(torch.isnan(got[name]).all()) for name in got if not name.endswith("images"))


def test_ignore_empty_never_takes_nan_counts_for_an_absent_class():
    # A finite empty_score, so that NaN counts taken for an absent class would show as 1.0.
    # Image 0 is valid (class 1 absent from its target, predicted on 2 pixels); image 1 is NaN
    # where the default rule and this one read it: everywhere, or only its class-1 Σp beside a
    # Σt of 0.
    image0 = ([2.0, 0.0], [2.0, 2.0], [4.0, 0.0], 4.0)
    for image1 in (([NAN] * 2, [NAN] * 2, [NAN] * 2, NAN), ([1.0, 0.0], [2.0, NAN], [2.0, 0.0], 4.0)):
        counts = [np.array([a, b], dtype=np.float64) for a, b in zip(image0, image1)]
        metrics = SegmentationMetrics(ignore_empty=True, empty_score=1.0)
        metrics.update_counts(*counts)
        got = metrics.compute()
        for name in ("dice", "iou", "dice_macro", "iou_macro"):
            assert bool(torch.isnan(got[name][1])), (name, got[name])
        assert got["dice_images"].tolist() == [2, 2]
    # Image 0 alone: class 0 Dice 2·2/(2 + 4); class 1 scores empty_score, micro and macro.
    metrics = SegmentationMetrics(ignore_empty=True, empty_score=1.0)
    metrics.update_counts(*(np.array([value]) for value in image0))
    got = metrics.compute()
    np.testing.assert_allclose(got["dice"].numpy(), [2 / 3, 1.0], rtol=RTOL)
    np.testing.assert_allclose(got["dice_macro"].numpy(), [2 / 3, 1.0], rtol=RTOL)


# MONAI's "mean" averages over the classes of each image first: the accumulator has no such
# score, and test_metrics.py checks those cases on the per-image scores.
PER_CLASS_MONAI_CASES = [case for case in R.MONAI_NANS_CLASS if case[3] != "mean"]


@pytest.mark.parametrize("case", PER_CLASS_MONAI_CASES, ids=[case[0] for case in PER_CLASS_MONAI_CASES])
def test_monai_nans_class_values_over_a_dataset(case):
    """MONAI's test_nans_class values (tests/metrics_reference.py) from the macro scores with
    ignore_empty=True: "mean_batch" is the macro score, "sum_batch" the macro score times the
    images it averages."""
    _, target, include_background, reduction, dice, iou = case
    prediction = torch.tensor(R.MONAI_PREDICTION, dtype=torch.float64)
    got = accumulate([(prediction, torch.tensor(target, dtype=torch.float64), None)], activation="none",
                     include_background=include_background, ignore_empty=True)
    for name, expected in (("dice", dice), ("iou", iou)):
        value = got[f"{name}_macro"]
        if reduction == "sum_batch":
            value = value.nan_to_num(0.0) * got[f"{name}_images"]
        np.testing.assert_allclose(value.numpy(), expected, rtol=0, atol=1e-4, err_msg=name)


@pytest.mark.parametrize("include_background", [True, False])
@pytest.mark.parametrize("ignore_empty", [True, False])
def test_macro_matches_monai_dice_metric_and_mean_iou(ignore_empty, include_background):
    """MONAI's DiceMetric and MeanIoU with reduction="mean_batch" over several batches are the
    macro scores, with MONAI's ignore_empty and its 1 for a class absent from both as empty_score."""
    monai_metrics = pytest.importorskip("monai.metrics")
    from .test_metrics import _monai_batch

    rng = np.random.default_rng(22)
    batches = [_monai_batch(rng, n=n) for n in (3, 1, 4)]
    kwargs = dict(include_background=include_background, reduction="mean_batch", ignore_empty=ignore_empty)
    theirs = {"dice": monai_metrics.DiceMetric(**kwargs), "iou": monai_metrics.MeanIoU(**kwargs)}
    ours = SegmentationMetrics(activation="none", include_background=include_background, ignore_empty=ignore_empty,
                               empty_score=NAN if ignore_empty else 1.0)
    for prediction, target in batches:
        ours.update(prediction, target)
        for metric in theirs.values():
            metric(y_pred=prediction, y=target)
    got = ours.compute()
    for name, metric in theirs.items():
        np.testing.assert_allclose(got[f"{name}_macro"].numpy(), metric.aggregate().numpy(), rtol=1e-6, atol=1e-7,
                                   err_msg=name)
    if ignore_empty:
        assert (got["dice_images"] < 8).any()  # some images were left out of some class


# ------------------------------------------------------------------------------------------------
# Counts: the functional, the module, TorchScript
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("activation,target_kind,hard", [("softmax", "index", True), ("softmax", "index", False),
                                                         ("sigmoid", "binary", True), ("none", "binary", False)])
def test_segmentation_counts_match_reference(activation, target_kind, hard):
    rng = np.random.default_rng(7)
    ignore = IGNORE if target_kind == "index" else None
    x, y, w = make_batch(rng, 3, 3, (4, 3), activation, target_kind, ignore)
    tp, sum_p, sum_t, mass = segmentation_counts(x, y, w, activation, hard, 0.5, ignore)
    p, t, wr, pixels = R._prepare(x, y, w, activation, hard, 0.5, ignore)
    ref_tp, ref_sp, ref_st = R._counts(p, t, wr, pixels)
    for got, ref in ((tp, ref_tp), (sum_p, ref_sp), (sum_t, ref_st), (mass, wr.reshape(3, -1).sum(1))):
        np.testing.assert_allclose(got.numpy(), ref, rtol=RTOL, atol=ATOL)
    module_counts = [SegmentationCount(name, activation, hard, 0.5, ignore)(x, y, w) for name in COUNT_NAMES]
    for got, expected in zip(module_counts, (tp, sum_p, sum_t, mass)):
        torch.testing.assert_close(got, expected, rtol=0, atol=0)


def test_scripted_count_modules_match_eager():
    x, y, w = all_present_batches()[0]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.\w+` is deprecated")
        for name, module in SegmentationMetrics(ignore_index=IGNORE).count_modules("c_").items():
            scripted = torch.jit.script(module)
            for weight in (w, None):
                torch.testing.assert_close(scripted(x, y, weight), module(x, y, weight), rtol=0, atol=0, msg=name)


# ------------------------------------------------------------------------------------------------
# Exported graph + OnnxEvaluator
# ------------------------------------------------------------------------------------------------


def test_counts_from_an_exported_graph_equal_the_torch_path(tmp_path):
    pytest.importorskip("onnxruntime")
    from unetweights.export import to_onnx
    from unetweights.runtime import OnnxEvaluator

    from .export.graphs import softmax_inputs

    # ignore_empty: the counts are the same, and the accumulator applies the rule to them.
    options = dict(ignore_index=-1, include_background=False, ignore_empty=True)
    torch_metrics = SegmentationMetrics(**options)
    graph = EvaluationGraph(metrics={**torch_metrics.count_modules("n_"),
                                     "dice": DiceScore(ignore_index=-1, ignore_empty=True)})
    report = to_onnx(graph, tmp_path / "counts.onnx", softmax_inputs((2, 3, 6, 5)))
    assert [spec.shape for spec in report.outputs] == [("batch", 3)] * 3 + [("batch",)] + [("batch", 3)]
    evaluator = OnnxEvaluator(report.path, providers="cpu")
    batches = [softmax_inputs(shape, seed=seed) for seed, shape in enumerate([(3, 3, 7, 4), (1, 3, 5, 9), (2, 3, 4, 4)])]
    target = batches[0][1][0]
    target[target == 2] = 1  # image 0 lacks class 2, which its logits predict somewhere
    assert DiceScore(ignore_index=-1)(*batches[0])[0, 2] == 0.0
    from_numpy, from_torch = SegmentationMetrics(**options), SegmentationMetrics(**options)
    for logits, target, weight in batches:
        torch_metrics.update(logits, target, weight)
        from_numpy.update_from_outputs(evaluator(logits.numpy(), target.numpy(), weight.numpy()), prefix="n_")
        from_torch.update_from_outputs(evaluator(logits, target, weight), prefix="n_")
    expected = {name: value.numpy() for name, value in torch_metrics.compute().items()}
    assert_result(from_numpy.compute(), expected, rtol=1e-5, atol=1e-6)
    assert_result(from_torch.compute(), expected, rtol=1e-5, atol=1e-6)
    # The whole dataset through evaluate(): its per-image outputs are counts too.
    result = evaluator.evaluate(batches, progress=False)
    from_result = SegmentationMetrics(**options)
    from_result.update_from_outputs(result.per_image, prefix="n_")
    assert_result(from_result.compute(), expected, rtol=1e-5, atol=1e-6)
    # Its macro Dice is the mean of the graph's own per-image Dice, absent classes left out.
    np.testing.assert_allclose(expected["dice_macro"], np.nanmean(result.per_image["dice"][:, 1:], 0), rtol=1e-5)
    assert np.isnan(result.per_image["dice"][0, 2]) and expected["dice_images"][1] == 5
    assert_result(torch_metrics.compute(), R.ref_dataset(batches, **options), rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------------------------
# torch.distributed: two gloo processes on CPU
# ------------------------------------------------------------------------------------------------


def _disagreeing_computes(rank):
    """Each case: an accumulator whose C or options differ between the two ranks, updated once."""
    x, y, w = all_present_batches(seed=2, shapes=((2, 3 + rank, 3, 3),))[0]  # C = 3 on rank 0, 4 on rank 1
    same_c = all_present_batches(seed=2, shapes=((2, 3, 3, 3),))[0]
    cases = {
        "num_classes": (SegmentationMetrics(), (x, y, w)),
        "hard": (SegmentationMetrics(hard=rank == 0), same_c),
        "activation": (SegmentationMetrics(activation="softmax" if rank == 0 else "none"), same_c),
        "empty_score": (SegmentationMetrics(empty_score=NAN if rank == 0 else 1.0), same_c),
        "ignore_empty": (SegmentationMetrics(ignore_empty=rank == 1), same_c),
        # Rank 1 has no data and no num_classes: its C is unknown.
        "unknown": (SegmentationMetrics(), same_c if rank == 0 else None),
    }
    errors = {}
    for name, (metrics, batch) in cases.items():
        if batch is not None:
            metrics.update(*batch)
        try:
            metrics.compute()
            errors[name] = "no error"
        except (ValueError, RuntimeError) as error:
            errors[name] = f"{type(error).__name__}: {error}"
    return errors


def _distributed_worker(rank, init_file, out_dir):
    import datetime

    import torch.distributed as dist

    # A short timeout: a process left alone in a collective fails the test instead of hanging it.
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2,
                            timeout=datetime.timedelta(seconds=30))
    try:
        batches = all_present_batches(seed=1, shapes=((2, 3, 4, 5), (1, 3, 3, 3), (3, 3, 2, 6)))
        mine = batches[rank::2]
        shared = SegmentationMetrics(ignore_index=-1)
        local = SegmentationMetrics(ignore_index=-1, sync_on_compute=False)
        for batch in mine:
            shared.update(*batch)
            local.update(*batch)
        results = {"synced": shared.compute(), "local": local.compute()}
        # compute() does not fold the other process's counts into this one's state.
        shared.update(*mine[0])
        results["synced_again"] = shared.compute()
        # A process without data takes part when C is given.
        idle = SegmentationMetrics(num_classes=3)
        if rank == 0:
            for batch in batches:
                idle.update(*batch)
        results["one_sided"] = idle.compute()
        results["errors"] = _disagreeing_computes(rank)
        # After the refused syncs the group still works: the same sync again.
        results["after_errors"] = shared.compute()
        torch.save(results, f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def gloo_results(tmp_path_factory):
    """What each of two gloo processes computed (one spawn serves every distributed test)."""
    import torch.distributed as dist

    if not dist.is_available():
        pytest.skip("torch.distributed is not available")
    folder = tmp_path_factory.mktemp("gloo")
    mp.spawn(_distributed_worker, args=(str(folder / "init"), str(folder)), nprocs=2, join=True)
    return [torch.load(folder / f"rank{rank}.pt", weights_only=True) for rank in range(2)]


def test_two_gloo_processes_sync_to_the_union(gloo_results):
    batches = all_present_batches(seed=1, shapes=((2, 3, 4, 5), (1, 3, 3, 3), (3, 3, 2, 6)))
    union = {k: v.numpy() for k, v in accumulate(batches, ignore_index=-1).items()}
    again = {k: v.numpy() for k, v in accumulate(batches + [batches[0], batches[1]], ignore_index=-1).items()}
    for rank, results in enumerate(gloo_results):
        assert_result(results["synced"], union, rtol=1e-12, atol=1e-14)
        assert_result(results["local"], {k: v.numpy() for k, v in accumulate(batches[rank::2], ignore_index=-1).items()})
        assert_result(results["synced_again"], again, rtol=1e-12, atol=1e-14)
        assert_result(results["after_errors"], again, rtol=1e-12, atol=1e-14)
        one_sided = {k: v.numpy() for k, v in accumulate(batches).items()}
        assert_result(results["one_sided"], one_sided, rtol=1e-12, atol=1e-14)


def test_ranks_that_disagree_raise_the_same_named_error(gloo_results):
    expected = {
        "num_classes": r"ValueError: num_classes differs across ranks: rank 0 has 3, rank 1 has 4; every process "
                       r"must compute with the same C",
        "hard": r"ValueError: hard differs across ranks: rank 0 has True, rank 1 has False;",
        "activation": r"ValueError: activation differs across ranks: rank 0 has 'softmax', rank 1 has 'none';",
        "empty_score": r"ValueError: empty_score differs across ranks: rank 0 has nan, rank 1 has 1.0;",
        "ignore_empty": r"ValueError: ignore_empty differs across ranks: rank 0 has False, rank 1 has True;",
        "unknown": r"RuntimeError: compute: C is unknown on rank\(s\) \[1\], which had no update; pass num_classes",
    }
    errors = [results["errors"] for results in gloo_results]
    assert errors[0] == errors[1], "every rank must raise the same error"
    for name, pattern in expected.items():
        assert re.match(pattern, errors[0][name]), (name, errors[0][name])


# ------------------------------------------------------------------------------------------------
# Bad input
# ------------------------------------------------------------------------------------------------


def _counts3():
    return [c.clone() for c in segmentation_counts(*all_present_batches()[0])]


CONSTRUCTION_ERRORS = [
    ("num_classes", dict(num_classes=0), r"expected a positive int or None, got 0"),
    ("num_classes", dict(num_classes=2.0), r"expected a positive int or None, got 2.0"),
    ("num_classes", dict(num_classes=True), r"expected a positive int or None, got True"),
    ("activation", dict(activation="relu"), r"expected 'softmax', 'sigmoid' or 'none', got 'relu'"),
    ("threshold", dict(threshold=1.0), r"expected a value in \(0, 1\), got 1.0"),
    ("threshold", dict(threshold=NAN), r"expected a value in \(0, 1\), got nan"),
    ("threshold", dict(threshold=math.inf), r"expected a value in \(0, 1\), got inf"),
    ("threshold", dict(threshold="0.5"), r"expected a value in \(0, 1\), got '0.5'"),
    ("threshold", dict(threshold=None), r"expected a value in \(0, 1\), got None"),
    ("empty_score", dict(empty_score=math.inf), r"expected a finite number or NaN, got inf"),
    ("empty_score", dict(empty_score="nan"), r"expected a finite number or NaN, got 'nan'"),
    ("empty_score", dict(empty_score="abc"), r"expected a finite number or NaN, got 'abc'"),
    ("empty_score", dict(empty_score=None), r"expected a finite number or NaN, got None"),
    ("empty_score", dict(empty_score=True), r"expected a finite number or NaN, got True"),
    ("ignore_index", dict(ignore_index=1.5), r"expected an int or None, got 1.5"),
    ("ignore_index", dict(ignore_index="255"), r"expected an int or None, got '255'"),
    ("include_background", dict(num_classes=1, include_background=False), r"False leaves no class"),
    ("hard", dict(hard="False"), r"expected True or False, got 'False'"),
    ("include_background", dict(include_background="no"), r"expected True or False, got 'no'"),
    ("sync_on_compute", dict(sync_on_compute=0), r"expected True or False, got 0"),
    ("ignore_empty", dict(ignore_empty="yes"), r"expected True or False, got 'yes'"),
    ("ignore_empty", dict(ignore_empty=None), r"expected True or False, got None"),
    ("process_group", dict(process_group="gloo"), r"expected a torch.distributed ProcessGroup or None, got str"),
    ("device", dict(device="tpu"), r"expected a torch.device or a device string such as 'cpu', 'cuda' or 'cuda:1', "
                                   r"got 'tpu'"),
    ("device", dict(device=1.5), r"expected a torch.device or a device string .*, got 1.5"),
    ("device", dict(device=torch.float64), r"expected a torch.device or a device string .*, got torch.float64"),
    ("device", dict(device="meta"), r"expected a device that holds data, got 'meta'"),
    ("device", dict(device="cuda:99"), r"'cuda:99' is not available here \(\d+ cuda device\(s\)\)"),
]


@pytest.mark.parametrize("argument,options,message", CONSTRUCTION_ERRORS)
def test_bad_options_are_named(argument, options, message):
    with pytest.raises(ValueError, match=rf"^{argument}: {message}"):
        SegmentationMetrics(**options)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal of a CUDA device where there is none")
def test_cuda_device_is_refused_without_cuda():
    with pytest.raises(ValueError, match=r"^device: 'cuda' is not available here \(0 cuda device\(s\)\)"):
        SegmentationMetrics(device="cuda")


def test_numpy_scalars_and_devices_are_accepted_as_their_python_values():
    rng = np.random.default_rng(8)
    batch = make_batch(rng, 2, 3, (4, 3), "sigmoid", "binary")
    numpy_options = dict(activation="sigmoid", threshold=np.float32(0.25), empty_score=np.int64(0),
                         hard=np.bool_(True), device=torch.device("cpu"))
    assert_result(accumulate([batch], **numpy_options),
                  R.ref_dataset([batch], activation="sigmoid", threshold=0.25, empty_score=0.0))
    index_batch = make_batch(rng, 2, 3, (4, 3), "softmax", "index", IGNORE)
    assert_result(accumulate([index_batch], ignore_index=np.int64(IGNORE), device="cpu"),
                  R.ref_dataset([index_batch], ignore_index=IGNORE))


def test_bad_count_name():
    with pytest.raises(ValueError, match=r"^count: expected one of \['tp', 'sum_p', 'sum_t', 'mass'\], got 'fp'"):
        SegmentationCount("fp")


def test_update_errors_name_the_argument():
    x, y, w = all_present_batches()[0]
    metrics = SegmentationMetrics()
    metrics.update(x, y, w)
    with pytest.raises(ValueError, match=r"^input: expected C = 3 channels \(the first update's C\), got shape \[2, 4, 4, 5\]"):
        metrics.update(torch.randn(2, 4, 4, 5), y)
    with pytest.raises(ValueError, match=r"^input: expected shape \(N, C, \*\)"):
        metrics.update(torch.randn(2, 3), y)
    with pytest.raises(ValueError, match=r"^input: expected a torch tensor"):
        metrics.update(x.numpy(), y)
    with pytest.raises(ValueError, match=r"^target:"):
        metrics.update(x, y[:, :2])
    with pytest.raises(ValueError, match=r"^target: class indices must lie in \[0, 3\)"):
        metrics.update(x, y + 1)
    with pytest.raises(ValueError, match=r"^weight:"):
        metrics.update(x, y, -w)
    with pytest.raises(ValueError, match=r"^include_background: False leaves no class"):
        SegmentationMetrics(activation="sigmoid", include_background=False).update(x[:, :1], (y[:, None] > 0).double())
    # None of the refused updates reached the state.
    assert_result(metrics.compute(), {k: v.numpy() for k, v in accumulate([(x, y, w)]).items()}, rtol=0, atol=0)


def test_update_counts_errors_name_the_argument():
    tp, sum_p, sum_t, mass = _counts3()
    metrics = SegmentationMetrics()
    metrics.update_counts(tp, sum_p, sum_t, mass)
    cases = [
        ("tp", r"expected shape \(N, C\) with N >= 1, got \[3\]", (tp[0], sum_p, sum_t, mass)),
        ("tp", r"expected shape \(N, C\) with N >= 1, got \[0, 3\]", (tp[:0], sum_p[:0], sum_t[:0], mass[:0])),
        ("tp", r"expected shape \(N, C\) = \[2, 3\] \(the first update's C; every class, background included\), got \[2, 2\]",
         (tp[:, 1:], sum_p[:, 1:], sum_t[:, 1:], mass)),
        ("sum_p", r"expected the shape of tp", (tp, sum_p[:1], sum_t, mass)),
        ("sum_t", r"expected the shape of tp", (tp, sum_p, sum_t.T, mass)),
        ("mass", r"expected shape \(N,\) = \[2\] \(or \(N, 1\)\), got \[2, 3\]", (tp, sum_p, sum_t, sum_t)),
        ("sum_p", r"expected non-negative counts", (tp, -sum_p, sum_t, mass)),
        ("tp", r"expected floating-point counts, got dtype torch.int64", (tp.long(), sum_p, sum_t, mass)),
        ("sum_t", r"expected a torch tensor or a numpy array, got list", (tp, sum_p, sum_t.tolist(), mass)),
    ]
    for argument, message, counts in cases:
        with pytest.raises(ValueError, match=rf"^{argument}: {message}"):
            metrics.update_counts(*counts)
    with pytest.raises(ValueError, match=r"^outputs: missing \['x_mass'\]"):
        metrics.update_from_outputs({"x_tp": tp, "x_sum_p": sum_p, "x_sum_t": sum_t}, prefix="x_")
    # (N, 1) mass, as overlap_counts gives it, is accepted.
    metrics.update_counts(tp, sum_p, sum_t, mass[:, None])
    assert int(metrics.compute()["images"]) == 4


def _hand_counts(image1):
    """Counts of two images and two classes as numpy float64: image 0 is valid (tp [1, 2], Σp [2, 2],
    Σt [1, 3], mass 4: a 4-pixel image, one pixel of class 0 found, two of class 1, one class-1
    pixel predicted as 0); image 1 is given as (tp, sum_p, sum_t, mass)."""
    image0 = ([1.0, 2.0], [2.0, 2.0], [1.0, 3.0], 4.0)
    return [np.array([a, b], dtype=np.float64) for a, b in zip(image0, image1)]


IMPOSSIBLE_COUNTS = [
    # tp > Σp: Dice 2·3 / (2 + 3) = 1.2 for class 1 of image 1.
    (([1, 3], [2, 2], [1, 3], 4), r"^tp: expected tp <= sum_p for every image and class, found tp = 3.0 > "
                                  r"sum_p = 2.0 \(image 1, class 1\)"),
    (([1, 2], [2, 2], [1, 1.5], 4), r"^tp: expected tp <= sum_t for every image and class, found tp = 2.0 > "
                                    r"sum_t = 1.5 \(image 1, class 1\)"),
    # True negatives 4 - 2 - 3 + 0 = -1 for class 1.
    (([1, 0], [2, 2], [1, 3], 4), r"^mass: expected mass >= sum_p \+ sum_t - tp for every image and class \(the "
                                  r"true negatives are not negative\), found mass = 4.0 < sum_p \+ sum_t - tp = 5.0 "
                                  r"\(image 1, class 1\)"),
    # "softmax" predicts one class per pixel: Σ_c Σp = 3 for a mass of 4.
    (([1, 1], [2, 1], [1, 1], 4), r"^sum_p: expected its sum over the classes to equal mass with "
                                  r"activation='softmax' .*, found 3.0 and mass = 4.0 \(image 1\)"),
    (([1, 1], [2, 2], [1, math.inf], 4), r"^sum_t: expected finite counts \(NaN for an image with invalid input\), "
                                         r"found inf"),
    (([1, 1], [2, 2], [1, 1], math.inf), r"^mass: expected finite counts"),
]


@pytest.mark.parametrize("image1,message", IMPOSSIBLE_COUNTS)
def test_update_counts_refuses_impossible_counts(image1, message):
    metrics = SegmentationMetrics()
    with pytest.raises(ValueError, match=message):
        metrics.update_counts(*_hand_counts(image1))
    # The refused batch added nothing; a valid one gives its hand-computed scores.
    metrics.update_counts(*_hand_counts(([1, 1], [2, 2], [1, 1], 4)))
    got = metrics.compute()
    # Summed: tp [2, 3], Σp [4, 4], Σt [2, 4]: Dice 2·tp / (Σp + Σt) = [4/6, 6/8].
    np.testing.assert_allclose(got["dice"].numpy(), [4 / 6, 6 / 8], rtol=RTOL)
    assert int(got["images"]) == 2


def test_count_relations_allow_rounding_and_depend_on_the_activation():
    # float32 counts (an exported graph's) may carry rounding: tp one ulp above Σp is accepted,
    # 0.1 % above is not.
    sum_p = np.float32(1000.0)
    for tp, accepted in ((np.nextafter(sum_p, np.float32(2000)), True), (sum_p * np.float32(1.001), False)):
        counts = [np.array([[a, 0.0]], np.float32) for a in (tp, sum_p, 1500.0)] + [np.array([2000.0], np.float32)]
        metrics = SegmentationMetrics(activation="sigmoid")
        if accepted:
            metrics.update_counts(*counts)
        else:
            with pytest.raises(ValueError, match=r"^tp: expected tp <= sum_p"):
                metrics.update_counts(*counts)
    # Counts without the background class: Σ_c Σp falls short of the mass, which "softmax"
    # refuses (a likely mistake) and "sigmoid", whose channels are independent, accepts.
    tp, sum_p, sum_t, mass = _counts3()
    with pytest.raises(ValueError, match=r"^sum_p: expected its sum over the classes to equal mass .* \(image 0\)"):
        SegmentationMetrics().update_counts(tp[:, 1:], sum_p[:, 1:], sum_t[:, 1:], mass)
    SegmentationMetrics(activation="sigmoid").update_counts(tp[:, 1:], sum_p[:, 1:], sum_t[:, 1:], mass)
    # A NaN image (invalid input) satisfies every relation and is carried on.
    for count in (tp, sum_p, sum_t, mass):
        count[1] = NAN
    metrics = SegmentationMetrics()
    metrics.update_counts(tp, sum_p, sum_t, mass)
    assert bool(torch.isnan(metrics.compute()["dice"]).all())
