"""Object matching (unetweights.matching): against a brute-force float64 reference that enumerates
every one-to-one matching, against StarDist's ``matching`` and Cellpose's ``average_precision`` as
their documentation defines them (written here from those definitions; neither is installed), and
its own rules: empty images, 3D, semantic predictions, dataset sums, bad input."""

import math
import subprocess
import sys

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from unetweights.matching import OBJECT_FIELDS, THRESHOLD_FIELDS, ObjectMatching, match_instances, matched_pairs
from unetweights.weightmaps import label_instances

THRESHOLDS = [0.05, 0.1, 0.2, 0.25, 0.3, 1 / 3, 0.4, 0.5, 0.6, 0.75, 0.9, 1.0]


# -- references ---------------------------------------------------------------------------------


def ids(labels):
    return [int(i) for i in np.unique(labels) if i != 0]


def pair_ious(true, pred):
    """{(true id, pred id): IoU} of every overlapping pair, object by object, in float64."""
    out = {}
    for t in ids(true):
        a = true == t
        for p in ids(pred[a]):
            b = pred == p
            out[t, p] = np.count_nonzero(a & b) / np.count_nonzero(a | b)
    return out


def best_matching(ious, threshold):
    """(pairs, IoU sum) of the best one-to-one set of pairs with IoU >= threshold, by enumerating all."""
    candidates = sorted((pair, v) for pair, v in ious.items() if v >= threshold)
    best = [(0, 0.0)]

    def extend(start, used_t, used_p, count, total):
        best[0] = max(best[0], (count, total))
        for k in range(start, len(candidates)):
            (t, p), v = candidates[k]
            if t not in used_t and p not in used_p:
                extend(k + 1, used_t | {t}, used_p | {p}, count + 1, total + v)

    extend(0, frozenset(), frozenset(), 0, 0.0)
    return best[0]


def merges_and_splits(true, pred, containment=0.5):
    """The documented definition, object by object: A lies inside B when |A ∩ B| / |A| >= containment."""
    def inside(a, b):
        return np.count_nonzero(a & b) / np.count_nonzero(a) >= containment

    t_ids, p_ids = ids(true), ids(pred)
    merges = [p for p in p_ids if sum(inside(true == t, pred == p) for t in t_ids) >= 2]
    splits = [t for t in t_ids if sum(inside(pred == p, true == t) for p in p_ids) >= 2]
    merged = {t for p in merges for t in t_ids if inside(true == t, pred == p)}
    fragments = {p for t in splits for p in p_ids if inside(pred == p, true == t)}
    return {"merges": len(merges), "merged": len(merged), "splits": len(splits), "fragments": len(fragments)}


def dense_iou(true, pred, true_ids, pred_ids):
    iou = np.zeros((len(true_ids), len(pred_ids)))
    for i, t in enumerate(true_ids):
        for j, p in enumerate(pred_ids):
            union = np.count_nonzero((true == t) | (pred == p))
            iou[i, j] = np.count_nonzero((true == t) & (pred == p)) / union if union else 0.0
    return iou


def assignment_tp(iou, threshold):
    """StarDist's and Cellpose's documented assignment: minimise -[IoU >= t] - IoU / (2 min(n_true, n_pred))
    over full assignments; TP and the IoU sum of the assigned pairs at or above t."""
    n_min = min(iou.shape)
    if n_min == 0 or not (iou >= threshold).any():
        return 0, 0.0
    rows, cols = linear_sum_assignment(-(iou >= threshold).astype(float) - iou / (2 * n_min))
    ok = iou[rows, cols] >= threshold
    return int(ok.sum()), float(iou[rows, cols][ok].sum())


def stardist(true, pred, threshold):
    """``stardist.matching.matching`` as documented: ids relabelled, scores 0 when TP = 0, means 0 over nothing."""
    true_ids, pred_ids = ids(true), ids(pred)
    tp, total = assignment_tp(dense_iou(true, pred, true_ids, pred_ids), threshold)
    fp, fn = len(pred_ids) - tp, len(true_ids) - tp

    def if_tp(num, den):
        return num / den if tp > 0 else 0

    def safe(num, den):
        return num / den if den > 0 else 0.0

    return {"tp": tp, "fp": fp, "fn": fn, "precision": if_tp(tp, tp + fp), "recall": if_tp(tp, tp + fn),
            "accuracy": if_tp(tp, tp + fp + fn), "f1": if_tp(2 * tp, 2 * tp + fp + fn), "n_true": len(true_ids),
            "n_pred": len(pred_ids), "mean_matched_score": safe(total, tp),
            "panoptic_quality": safe(total, tp + fp / 2 + fn / 2)}


def cellpose(true, pred, thresholds):
    """``cellpose.metrics.average_precision`` of one image as documented: max(label) objects each,
    IoU 0 for an absent id, AP = TP / (TP + FP + FN) (NaN for 0/0)."""
    n_true, n_pred = int(true.max()), int(pred.max())
    iou = dense_iou(true, pred, range(1, n_true + 1), range(1, n_pred + 1))
    tp = np.array([assignment_tp(iou, t)[0] if n_pred > 0 else 0 for t in thresholds], dtype=float)
    fp, fn = n_pred - tp, n_true - tp
    with np.errstate(invalid="ignore"):
        return {"ap": tp / (tp + fp + fn), "tp": tp, "fp": fp, "fn": fn}


def random_pair(rng, shape=None, max_objects=5):
    """Label images with up to ``max_objects`` objects each: scattered pixels (many small overlaps)
    or blocks (few large ones), ids not consecutive; in a third of the pairs the prediction is the
    truth with a few pixels changed (good matches)."""
    shape = shape or tuple(rng.integers(3, 7, size=2))
    out = []
    for _ in range(2):
        if out and rng.random() < 1 / 3:
            noisy = out[0].copy()
            changed = rng.random(shape) < 0.2
            noisy[changed] = rng.choice(np.unique(noisy), size=int(changed.sum()))
            out.append(noisy)
            break
        n = int(rng.integers(0, max_objects + 1))
        if rng.random() < 0.5:
            small = rng.integers(0, n + 1, size=tuple(max(1, s // 2) for s in shape))
            labels = np.kron(small, np.ones((2,) * len(shape), dtype=np.int64))
            labels = np.pad(labels, [(0, s - l) for s, l in zip(shape, labels.shape)])[tuple(slice(s) for s in shape)]
        else:
            labels = rng.integers(0, n + 1, size=shape)
        ids_map = np.concatenate([[0], rng.choice(np.arange(1, 40), size=n, replace=False)]) if n else np.zeros(1, int)
        out.append(ids_map[labels].astype(rng.choice([np.int32, np.int64, np.uint16])))
    return out


def consecutive(labels):
    out = np.zeros_like(labels)
    for k, i in enumerate(ids(labels), start=1):
        out[labels == i] = k
    return out


# -- against the brute-force reference ----------------------------------------------------------


def check_against_reference(true, pred, thresholds=THRESHOLDS, containment=0.5):
    scores = match_instances(true, pred, thresholds, containment=containment)
    ious = pair_ious(true, pred)
    n_true, n_pred = len(ids(true)), len(ids(pred))
    assert (scores.n_true, scores.n_pred) == (n_true, n_pred)
    for k, t in enumerate(thresholds):
        count, total = best_matching(ious, t)
        assert scores.tp[k] == count and scores.fp[k] == n_pred - count and scores.fn[k] == n_true - count
        assert scores.sum_matched_iou[k] == pytest.approx(total, abs=1e-12)
        expect = {"precision": (count, n_pred), "recall": (count, n_true), "f1": (2 * count, n_true + n_pred),
                  "average_precision": (count, n_true + n_pred - count),
                  "panoptic_quality": (total, (n_true + n_pred) / 2), "mean_matched_iou": (total, count)}
        for name, (num, den) in expect.items():
            value = getattr(scores, name)[k]
            assert (math.isnan(value) and den == 0) or value == pytest.approx(num / den, abs=1e-12), (name, t)
        true_ids, pred_ids, pair_iou = matched_pairs(true, pred, t)
        assert len(set(true_ids)) == len(set(pred_ids)) == count and (pair_iou >= t).all()
        assert all(ious[int(a), int(b)] == v for a, b, v in zip(true_ids, pred_ids, pair_iou))
        assert math.fsum(pair_iou) == pytest.approx(total, abs=1e-12)
    counts = merges_and_splits(true, pred, containment)
    assert {name: getattr(scores, name) for name in counts} == counts


@pytest.mark.parametrize("seed", range(4))
def test_equals_the_brute_force_reference_on_random_images(seed):
    rng = np.random.default_rng(seed)
    for _ in range(60):
        true, pred = random_pair(rng)
        check_against_reference(true, pred, containment=float(rng.choice([0.5, 0.3, 0.8, 1.0])))


def test_equals_the_brute_force_reference_in_3d():
    rng = np.random.default_rng(11)
    for _ in range(15):
        check_against_reference(*random_pair(rng, shape=(3, 4, 5)))


def test_the_reference_finds_contested_matchings():
    """The random images hold groups where the assignment decides (not only pairs without rivals)."""
    rng = np.random.default_rng(0)
    contested = 0
    for _ in range(80):
        ious = pair_ious(*random_pair(rng))
        at = [pair for pair, v in ious.items() if v >= 0.2]
        contested += len({t for t, _ in at}) < len(at) or len({p for _, p in at}) < len(at)
    assert contested >= 10


def test_a_match_needs_iou_at_least_the_threshold():
    true = np.array([[1, 1, 1, 1, 0, 0]])
    pred = np.array([[0, 1, 1, 1, 0, 0]])  # IoU 3/4 exactly
    scores = match_instances(true, pred, [0.75, np.nextafter(0.75, 1)])
    assert scores.tp.tolist() == [1, 0]
    halves = np.array([[1, 1, 1, 1]]), np.array([[1, 1, 2, 2]])  # two candidates at IoU 1/2 exactly
    scores = match_instances(*halves, [0.5, 0.51])
    assert scores.tp.tolist() == [1, 0] and scores.sum_matched_iou[0] == 0.5 and scores.splits == 1


def test_the_most_matches_come_before_the_largest_iou_sum():
    """T1-P1 IoU 3/5 alone, or T1-P2 and T2-P1 at 1/4 each: two matches at t = 0.2, one at 0.3."""
    true = np.array([[1, 1, 1, 1, 2]])
    pred = np.array([[1, 1, 1, 2, 1]])
    scores = match_instances(true, pred, [0.2, 0.3])
    assert scores.tp.tolist() == [2, 1] and scores.sum_matched_iou.tolist() == [0.5, 0.6]
    assert stardist(true, pred, 0.2)["tp"] == 2


def test_many_objects_one_per_pixel():
    """6000 objects a side (the overlaps counted by a sort, not a table): a permutation of the ids
    matches all; 2x2 blocks over one-pixel objects match one pixel each at IoU 1/4 and merge four."""
    true = np.arange(1, 6001).reshape(60, 100)
    permuted = np.random.default_rng(0).permutation(6000)[true - 1] + 1
    assert match_instances(true, permuted).tp[0] == 6000
    blocks = np.kron(np.arange(1, 1501).reshape(30, 50), np.ones((2, 2), int))
    scores = match_instances(true, blocks, [0.25, 0.3])
    assert scores.tp.tolist() == [1500, 0] and scores.sum_matched_iou[0] == pytest.approx(375)
    assert (scores.merges, scores.merged, scores.splits) == (1500, 6000, 0)


def test_above_one_half_every_candidate_is_matched():
    rng = np.random.default_rng(5)
    for _ in range(30):
        true, pred = random_pair(rng)
        for t in (0.51, 0.75):
            expected = sorted(pair for pair, v in pair_ious(true, pred).items() if v >= t)
            a, b, _ = matched_pairs(true, pred, t)
            assert sorted(zip(a.tolist(), b.tolist())) == expected


# -- against StarDist and Cellpose --------------------------------------------------------------


def test_agrees_with_stardist_where_the_definitions_agree():
    rng = np.random.default_rng(1)
    checked = 0
    for _ in range(60):
        true, pred = random_pair(rng)
        scores = match_instances(true, pred, THRESHOLDS)
        for k, t in enumerate(THRESHOLDS):
            ref = stardist(true, pred, t)
            for name in ("tp", "fp", "fn", "n_true", "n_pred"):
                assert np.atleast_1d(getattr(scores, name))[-1 if name.startswith("n_") else k] == ref[name]
            if t < 0.5:  # the documented tie-break: the same counts, a matched IoU sum never smaller
                assert scores.sum_matched_iou[k] >= ref["mean_matched_score"] * ref["tp"] - 1e-12
            if ref["tp"] == 0 or t < 0.5:  # the documented differences: empty scores, the tie-break
                continue
            checked += 1
            mine = {"precision": scores.precision, "recall": scores.recall, "accuracy": scores.average_precision,
                    "f1": scores.f1, "mean_matched_score": scores.mean_matched_iou,
                    "panoptic_quality": scores.panoptic_quality}
            for name, values in mine.items():
                assert values[k] == pytest.approx(ref[name], abs=1e-12), name
    assert checked > 30


def test_agrees_with_cellpose_on_consecutive_ids():
    rng = np.random.default_rng(2)
    for _ in range(60):
        true, pred = (consecutive(x) for x in random_pair(rng))
        scores, ref = match_instances(true, pred, THRESHOLDS), cellpose(true, pred, THRESHOLDS)
        np.testing.assert_array_equal(scores.tp, ref["tp"])
        np.testing.assert_array_equal(scores.fp, ref["fp"])
        np.testing.assert_array_equal(scores.fn, ref["fn"])
        np.testing.assert_allclose(scores.average_precision, ref["ap"], rtol=0, atol=1e-12)  # NaN where both empty


def test_difference_empty_images_are_nan_not_zero():
    empty = np.zeros((4, 4), np.int32)
    scores = match_instances(empty, empty)
    for name in ("precision", "recall", "f1", "average_precision", "panoptic_quality", "mean_matched_iou"):
        assert math.isnan(getattr(scores, name)[0]) and stardist(empty, empty, 0.5)[
            {"average_precision": "accuracy", "mean_matched_iou": "mean_matched_score"}.get(name, name)] == 0
    assert math.isnan(cellpose(empty, empty, [0.5])["ap"][0])  # Cellpose: 0/0, as here
    zero = match_instances(empty, empty, empty_score=0.0)  # StarDist's values, but for the mean over no match
    assert zero.precision[0] == zero.recall[0] == zero.f1[0] == zero.panoptic_quality[0] == 0.0
    assert math.isnan(zero.mean_matched_iou[0])
    assert match_instances(empty, empty, empty_score=1.0).average_precision[0] == 1.0


def test_difference_one_side_empty():
    objects = np.zeros((4, 4), np.int32)
    objects[1:3, 1:3] = 7
    empty = np.zeros_like(objects)
    only_pred = match_instances(empty, objects)
    assert only_pred.precision[0] == 0 and math.isnan(only_pred.recall[0]) and only_pred.f1[0] == 0
    assert stardist(empty, objects, 0.5)["recall"] == 0  # StarDist: 0
    only_true = match_instances(objects, empty)
    assert math.isnan(only_true.precision[0]) and only_true.recall[0] == 0 and only_true.average_precision[0] == 0
    assert stardist(objects, empty, 0.5)["precision"] == 0 and cellpose(objects, empty, [0.5])["ap"][0] == 0
    assert math.isnan(only_true.mean_matched_iou[0]) and stardist(objects, empty, 0.5)["mean_matched_score"] == 0


def test_difference_the_tie_break_sums_matched_pairs_only():
    """At t = 0.3: T1-P1 IoU 1/2 and T2-P1 1/3 are the candidates (T1-P2 is 1/4). Either gives one
    match; StarDist and Cellpose add the unmatched T1-P2 to the sum and pick T2-P1."""
    true = np.array([[1, 1, 1, 2, 0]])
    pred = np.array([[1, 1, 2, 1, 2]])
    scores = match_instances(true, pred, 0.3)
    ref = stardist(true, pred, 0.3)
    assert scores.tp[0] == ref["tp"] == 1 and cellpose(true, pred, [0.3])["tp"][0] == 1
    assert scores.sum_matched_iou[0] == 0.5 and ref["mean_matched_score"] == pytest.approx(1 / 3)
    assert scores.panoptic_quality[0] == pytest.approx(0.5 / 2) and ref["panoptic_quality"] == pytest.approx(1 / 6)
    assert [x.tolist() for x in matched_pairs(true, pred, 0.3)[:2]] == [[1], [1]]


def test_difference_cellpose_counts_missing_ids():
    labels = np.zeros((5, 5), np.int32)
    labels[0, :2], labels[3, 3:] = 1, 3  # no object 2
    scores = match_instances(labels, labels)
    assert scores.average_precision[0] == 1.0 and stardist(labels, labels, 0.5)["accuracy"] == 1.0
    assert cellpose(labels, labels, [0.5])["ap"][0] == 0.5  # 2 TP, 1 FP, 1 FN


def test_difference_threshold_zero_is_refused():
    true = np.array([[1, 0, 0, 0]])
    pred = np.array([[0, 0, 0, 1]])
    assert stardist(true, pred, 0.0)["tp"] == 1  # StarDist: two disjoint objects match at t = 0
    with pytest.raises(ValueError, match=r"thresholds .*got 0\.0"):
        match_instances(true, pred, 0.0)
    assert match_instances(true, pred, 1e-9).tp[0] == 0


# -- merges, splits, semantic predictions -------------------------------------------------------


def test_merges_and_splits():
    true = np.zeros((6, 12), np.int32)
    true[1:5, 1:5], true[1:5, 6:10] = 1, 2
    fused = (true > 0).astype(np.int32) * 9
    fused[1:5, 5] = 9
    scores = match_instances(true, fused)
    assert (scores.merges, scores.merged, scores.splits, scores.fragments) == (1, 2, 0, 0)
    swapped = match_instances(fused, true)
    assert (swapped.merges, swapped.merged, swapped.splits, swapped.fragments) == (0, 0, 1, 2)
    assert swapped.fp[0] == scores.fn[0] and swapped.precision[0] == scores.recall[0]
    stray = true.copy()
    stray[0, 0] = 5  # a one-pixel predicted object beside true object 1, outside it: no split
    assert match_instances(true, stray).splits == 0
    stray[1, 1] = 5  # inside true object 1: it is split into 1 and 5
    scores = match_instances(true, stray)
    assert (scores.splits, scores.fragments) == (1, 2)
    assert match_instances(true, fused, containment=1.0).merges == 1
    shifted = np.roll(true, 3, axis=1) * 4  # each true object half inside a prediction
    assert match_instances(true, np.where(true > 0, 1, 0) + shifted, containment=0.9).merges == 0


def test_semantic_predictions_are_split_into_components_only_when_asked():
    true = np.zeros((5, 7), np.int32)
    true[0:2, 0:2], true[3:5, 3:5] = 1, 2
    mask = true > 0
    mask[2, 2] = True  # touches both objects by a corner only
    with pytest.raises(TypeError, match="pred is a bool mask.*semantic=True"):
        match_instances(true, mask)
    with pytest.raises(TypeError, match="true is a bool mask"):
        match_instances(mask, true)
    face = match_instances(true, mask, semantic=True)
    assert face.n_pred == 3 and face.tp[0] == 2
    corner = match_instances(true, mask, semantic=True, connectivity=2)
    assert corner.n_pred == 1 and corner.tp[0] == 0 and corner.merges == 1
    as_labels = match_instances(true, label_instances(mask, 2))
    np.testing.assert_equal(corner.as_dict(), as_labels.as_dict())  # NaN equals NaN here
    classes = mask.astype(np.int32)
    classes[3:5, 3:5] = 2  # a class map: components of equal value
    assert match_instances(true, classes, semantic=True).n_pred == 3
    volume = np.zeros((3, 4, 4), bool)
    volume[0, 0, 0] = volume[1, 1, 1] = True
    assert match_instances(np.zeros((3, 4, 4), np.int32), volume, semantic=True, connectivity=3).n_pred == 1
    with pytest.raises(ValueError, match="connectivity: applies only with semantic=True"):
        match_instances(true, true, connectivity=2)


def test_large_and_unsigned_ids_give_the_same_scores():
    rng = np.random.default_rng(3)
    for _ in range(10):
        true, pred = random_pair(rng)
        expected = match_instances(true, pred, THRESHOLDS).as_dict()
        big = true.astype(np.uint64) * np.uint64(2**40)  # ids far beyond the image size: sorted, not counted
        got = match_instances(big, pred.astype(np.uint8), THRESHOLDS).as_dict()
        for name, value in expected.items():
            np.testing.assert_array_equal(got[name], value)


# -- thresholds, results, dataset ---------------------------------------------------------------


def test_thresholds_keep_their_order_and_a_scalar_gives_one():
    rng = np.random.default_rng(4)
    true, pred = random_pair(rng, shape=(6, 6))
    many = match_instances(true, pred, [0.9, 0.1, 0.5])
    assert many.thresholds.tolist() == [0.9, 0.1, 0.5]
    for k, t in enumerate([0.9, 0.1, 0.5]):
        one = match_instances(true, pred, t)
        assert one.thresholds.shape == (1,) and one.tp[0] == many.tp[k] and one.sum_matched_iou[0] == many.sum_matched_iou[k]
    assert match_instances(true, pred, np.array([0.5, 0.75])).tp.shape == (2,)


def test_rows_and_table():
    true = np.array([[1, 1, 0, 2, 2, 0]])
    pred = np.array([[1, 1, 0, 0, 3, 3]])
    scores = match_instances(true, pred, [0.5, 0.3])
    rows = scores.rows()
    assert [row["threshold"] for row in rows] == [0.5, 0.3]
    assert list(rows[0]) == ["threshold", *THRESHOLD_FIELDS, *OBJECT_FIELDS, "images"]
    assert rows[1]["tp"] == 2 and isinstance(rows[1]["tp"], int) and rows[0]["recall"] == 0.5
    table = scores.table()
    assert "IoU >=" in table and "2 true, 2 predicted" in table
    assert "n/a" in match_instances(np.zeros((2, 2), int), np.zeros((2, 2), int)).table()


def test_dataset_sums_counts_and_is_not_the_mean_of_image_scores():
    true_a = np.zeros((4, 8), np.int32)
    true_a[:, :2], true_a[:, 3:5], true_a[:, 6:] = 1, 2, 3
    images = [(true_a, true_a), (np.array([[1, 0], [0, 0]]), np.array([[0, 0], [0, 2]]))]  # F1 1, then F1 0
    dataset = ObjectMatching([0.5, 0.75])
    per_image = [dataset.update(t, p) for t, p in images]
    total = dataset.compute()
    assert total.images == 2 and [s.images for s in per_image] == [1, 1]
    for name in ("tp", "fp", "fn", "sum_matched_iou"):
        np.testing.assert_array_equal(getattr(total, name), sum(getattr(s, name) for s in per_image))
    for name in OBJECT_FIELDS:
        assert getattr(total, name) == sum(getattr(s, name) for s in per_image)
    assert total.f1[0] == pytest.approx(2 * 3 / (2 * 3 + 1 + 1))  # 6/8 from the sums
    assert np.mean([s.f1[0] for s in per_image]) == 0.5  # the mean of the ratios differs
    assert total.recall[0] == 0.75 and total.precision[0] == 0.75
    with pytest.raises(ValueError, match="pred must have the shape of true"):
        dataset.update(true_a, true_a[:, :4])
    assert dataset.compute().images == 2  # the refused image added nothing
    dataset.reset()
    with pytest.raises(RuntimeError, match="no image was added"):
        dataset.compute()


def test_dataset_with_random_images_equals_summed_reference_counts():
    rng = np.random.default_rng(6)
    dataset = ObjectMatching(THRESHOLDS, containment=0.6)
    tp = np.zeros(len(THRESHOLDS))
    n_true = n_pred = 0
    for _ in range(10):
        true, pred = random_pair(rng)
        dataset.update(true, pred)
        ious = pair_ious(true, pred)
        tp += [best_matching(ious, t)[0] for t in THRESHOLDS]
        n_true, n_pred = n_true + len(ids(true)), n_pred + len(ids(pred))
    total = dataset.compute()
    np.testing.assert_array_equal(total.tp, tp)
    with np.errstate(invalid="ignore"):
        np.testing.assert_allclose(total.f1, 2 * tp / (n_true + n_pred), rtol=1e-12)


# -- bad input ----------------------------------------------------------------------------------


GOOD = np.array([[0, 1], [2, 2]], np.int32)


@pytest.mark.parametrize(
    "true,pred,kwargs,error,message",
    [
        (GOOD, GOOD[:1], {}, ValueError, r"pred must have the shape of true \(2, 2\), got \(1, 2\)"),
        (GOOD.astype(float), GOOD, {}, TypeError, r"true must be an integer label image .*float64"),
        (GOOD, np.array([[0, np.nan], [1, 1]]), {}, TypeError, r"pred must be an integer label image .*float64 holding NaN"),
        (GOOD, GOOD.astype(np.complex64), {}, TypeError, r"pred must be an integer label image"),
        (GOOD, np.array([["a", "b"], ["c", "d"]]), {}, TypeError, r"pred must be an integer label image"),
        (GOOD - 1, GOOD, {}, ValueError, r"true must be non-negative"),
        (GOOD, -GOOD, {}, ValueError, r"pred must be non-negative"),
        (np.zeros((0, 3), np.int32), np.zeros((0, 3), np.int32), {}, ValueError, r"true must not be empty"),
        (GOOD[0], GOOD[0], {}, ValueError, r"true must have 2 or 3 dimensions"),
        (GOOD, GOOD, {"thresholds": 0}, ValueError, r"thresholds must be a number in \(0, 1\]"),
        (GOOD, GOOD, {"thresholds": 1.5}, ValueError, r"thresholds .*got 1\.5"),
        (GOOD, GOOD, {"thresholds": [0.5, float("nan")]}, ValueError, r"thresholds .*got nan"),
        (GOOD, GOOD, {"thresholds": []}, ValueError, r"thresholds .*empty sequence"),
        (GOOD, GOOD, {"thresholds": True}, TypeError, r"thresholds .*no bools"),
        (GOOD, GOOD, {"thresholds": "0.5"}, TypeError, r"thresholds must be"),
        (GOOD, GOOD, {"containment": 0}, ValueError, r"containment must be > 0"),
        (GOOD, GOOD, {"containment": 1.2}, ValueError, r"containment must be <= 1"),
        (GOOD, GOOD, {"empty_score": math.inf}, TypeError, r"empty_score must be a finite number or NaN"),
        (GOOD, GOOD, {"semantic": 1}, TypeError, r"semantic must be a bool"),
        (GOOD, GOOD, {"semantic": True, "connectivity": 0}, ValueError, r"connectivity must be an integer in 1\.\.3"),
        (GOOD, GOOD > 0, {"semantic": True, "connectivity": 3}, ValueError, r"connectivity must be an integer in 1\.\.2"),
    ],
)
def test_bad_input_names_the_argument(true, pred, kwargs, error, message):
    with pytest.raises(error, match=message):
        match_instances(true, pred, **kwargs)


def test_the_module_does_not_import_torch():
    code = "import sys, unetweights.matching; assert 'torch' not in sys.modules, 'torch imported'"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).returncode == 0
