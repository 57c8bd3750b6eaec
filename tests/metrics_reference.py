"""Brute-force float64 references for ``unetweights.metrics``, written from its docstrings.

Plain Python loops over images, classes and pixels; torch is only used to turn input tensors into
numpy arrays. Nothing is imported from ``unetweights``.

For each image n and class c, with p the prediction, t the target and w the weight map (zero where
the index target equals ``ignore_index``)

    tp = Σ w·p·t,    Σp = Σ w·p,    Σt = Σ w·t,

    Dice = 2·tp / (Σp + Σt),    IoU = tp / (Σp + Σt - tp),    accuracy = tp / Σt,

and ``empty_score`` (NaN unless given) wherever the denominator is 0. With ``ignore_empty``
(Dice and IoU), ``empty_score`` also wherever Σt = 0, whatever was predicted; over a dataset the
images whose Σt is 0 for a class add nothing to that class's micro sums.
"""

import math
from typing import Optional

import numpy as np


def to_numpy(x) -> Optional[np.ndarray]:
    if x is None:
        return None
    if hasattr(x, "detach"):
        x = x.detach().cpu()
        if x.dtype.is_floating_point:
            x = x.double()
        return x.numpy()
    return np.asarray(x)


def _sigmoid(v: float) -> float:
    if v >= 0:
        return 1.0 / (1.0 + math.exp(-v))
    e = math.exp(v)
    return e / (1.0 + e)


def _pixels(shape):
    """Every spatial index tuple of ``shape``."""
    return list(np.ndindex(*shape))


def _prepare(input, target, weight, activation, hard, threshold, ignore_index):
    """Return (p, t, w, spatial pixels) as nested float64 numpy arrays.

    p and t have shape (N, C, *), w has shape (N, *).
    """
    x = to_numpy(input).astype(np.float64)
    n, c = x.shape[0], x.shape[1]
    spatial = x.shape[2:]
    pixels = _pixels(spatial)
    y = to_numpy(target)

    # prediction
    p = np.zeros(x.shape, dtype=np.float64)
    for i in range(n):
        for pix in pixels:
            logits = [float(x[(i, k) + pix]) for k in range(c)]
            if activation == "softmax":
                if hard:
                    best = 0
                    for k in range(1, c):
                        if logits[k] > logits[best]:  # ties keep the lowest index
                            best = k
                    p[(i, best) + pix] = 1.0
                else:
                    m = max(logits)
                    exps = [math.exp(v - m) for v in logits]
                    s = sum(exps)
                    for k in range(c):
                        p[(i, k) + pix] = exps[k] / s
            elif activation == "sigmoid":
                for k in range(c):
                    s = _sigmoid(logits[k])
                    p[(i, k) + pix] = (1.0 if s > threshold else 0.0) if hard else s
            elif activation == "none":
                for k in range(c):
                    v = logits[k]
                    p[(i, k) + pix] = (1.0 if v > threshold else 0.0) if hard else v
            else:
                raise AssertionError(activation)

    # weight map
    w = np.ones((n,) + tuple(spatial), dtype=np.float64)
    if weight is not None:
        wt = to_numpy(weight).astype(np.float64)
        if wt.ndim == x.ndim:  # (N, 1, *)
            wt = wt[:, 0]
        for i in range(n):
            for pix in pixels:
                # size-1 dims broadcast
                idx = tuple(0 if wt.shape[d + 1] == 1 else pix[d] for d in range(len(pix)))
                w[(i,) + pix] = float(wt[(i if wt.shape[0] > 1 else 0,) + idx])

    # target
    t = np.zeros(x.shape, dtype=np.float64)
    if y.ndim == x.ndim:
        for i in range(n):
            for k in range(c):
                for pix in pixels:
                    t[(i, k) + pix] = float(y[(i, k) + pix])
    else:
        for i in range(n):
            for pix in pixels:
                label = int(y[(i,) + pix])
                if ignore_index is not None and label == ignore_index:
                    w[(i,) + pix] = 0.0
                    continue
                assert 0 <= label < c, label
                t[(i, label) + pix] = 1.0
    return p, t, w, pixels


def _counts(p, t, w, pixels):
    n, c = p.shape[0], p.shape[1]
    tp = np.zeros((n, c))
    sp = np.zeros((n, c))
    st = np.zeros((n, c))
    for i in range(n):
        for k in range(c):
            a = b = d = 0.0
            for pix in pixels:
                wi = w[(i,) + pix]
                pi = p[(i, k) + pix]
                ti = t[(i, k) + pix]
                a += wi * pi * ti
                b += wi * pi
                d += wi * ti
            tp[i, k], sp[i, k], st[i, k] = a, b, d
    return tp, sp, st


def _ratio(num, den, empty_score, st=None):
    """num / den per entry, ``empty_score`` where den is 0 or (given ``st``) where st is 0."""
    out = np.zeros(num.shape)
    for idx in np.ndindex(*num.shape):
        absent = st is not None and st[idx] == 0
        out[idx] = num[idx] / den[idx] if den[idx] > 0 and not absent else empty_score
    return out


def _drop_background(values, include_background):
    return values if include_background else values[:, 1:]


def ref_dice(
    input,
    target,
    weight=None,
    activation="softmax",
    hard=True,
    threshold=0.5,
    include_background=True,
    ignore_index=None,
    empty_score=math.nan,
    ignore_empty=False,
):
    p, t, w, pixels = _prepare(input, target, weight, activation, hard, threshold, ignore_index)
    tp, sp, st = _counts(p, t, w, pixels)
    return _drop_background(_ratio(2.0 * tp, sp + st, empty_score, st if ignore_empty else None), include_background)


def ref_iou(
    input,
    target,
    weight=None,
    activation="softmax",
    hard=True,
    threshold=0.5,
    include_background=True,
    ignore_index=None,
    empty_score=math.nan,
    ignore_empty=False,
):
    p, t, w, pixels = _prepare(input, target, weight, activation, hard, threshold, ignore_index)
    tp, sp, st = _counts(p, t, w, pixels)
    return _drop_background(_ratio(tp, sp + st - tp, empty_score, st if ignore_empty else None), include_background)


def ref_accuracy(
    input,
    target,
    weight=None,
    activation="softmax",
    threshold=0.5,
    per_class=True,
    include_background=True,
    ignore_index=None,
    empty_score=math.nan,
):
    p, t, w, pixels = _prepare(input, target, weight, activation, True, threshold, ignore_index)
    n, c = p.shape[0], p.shape[1]
    if per_class:
        tp, _, st = _counts(p, t, w, pixels)
        return _drop_background(_ratio(tp, st, empty_score), include_background)
    out = np.zeros(n)
    for i in range(n):
        correct = 0.0
        mass = 0.0
        for pix in pixels:
            wi = w[(i,) + pix]
            if activation == "softmax":
                # p is one-hot of the argmax: Σ_c p·t is the target mass of the predicted class
                # (1/0 for index targets: [argmax = t]); every counted pixel predicts one class.
                correct += wi * sum(p[(i, k) + pix] * t[(i, k) + pix] for k in range(c))
                mass += wi
            else:
                for k in range(c):
                    ph = p[(i, k) + pix]
                    tk = t[(i, k) + pix]
                    correct += wi * (ph * tk + (1.0 - ph) * (1.0 - tk))
                    mass += wi
        out[i] = correct / mass if mass > 0 else empty_score
    return out


def ref_dataset(
    batches,
    activation="softmax",
    hard=True,
    threshold=0.5,
    include_background=True,
    ignore_index=None,
    empty_score=math.nan,
    ignore_empty=False,
):
    """The scores of ``SegmentationMetrics`` over ``batches`` of (input, target, weight), by loops.

    Micro: the ratio of the counts summed over every image. Macro: the mean over images of the
    per-image ratio, leaving out the images whose denominator is 0 when ``empty_score`` is NaN
    (and averaging ``empty_score`` for them otherwise). With ``ignore_empty``, an image whose Σt
    is 0 for a class has, for Dice and IoU, a per-image denominator of 0 and adds nothing to the
    micro sums of that class (its Σp is left out). The overall accuracy counts pixels
    ("softmax") or pixels and channels ("sigmoid", "none"), background included. Returns a dict of
    float64 arrays with the accumulator's keys.
    """
    skip = math.isnan(empty_score)
    per_image = {"dice": [], "iou": [], "class_accuracy": [], "accuracy": []}
    total = {"tp": 0.0, "sp": 0.0, "sp_in_target": 0.0, "st": 0.0, "correct": 0.0, "counted": 0.0}
    images = 0
    for input, target, weight in batches:
        p, t, w, pixels = _prepare(input, target, weight, activation, hard, threshold, ignore_index)
        tp, sp, st = _counts(p, t, w, pixels)
        n, c = tp.shape
        images += n
        total["tp"] = total["tp"] + tp.sum(0)
        total["sp"] = total["sp"] + sp.sum(0)
        total["st"] = total["st"] + st.sum(0)
        for i in range(n):
            absent = [bool(ignore_empty and st[i, k] == 0) for k in range(c)]
            total["sp_in_target"] = total["sp_in_target"] + np.array([0.0 if absent[k] else sp[i, k] for k in range(c)])
            per_image["dice"].append([(2 * tp[i, k], 0.0 if absent[k] else sp[i, k] + st[i, k]) for k in range(c)])
            per_image["iou"].append([(tp[i, k], 0.0 if absent[k] else sp[i, k] + st[i, k] - tp[i, k]) for k in range(c)])
            per_image["class_accuracy"].append([(tp[i, k], st[i, k]) for k in range(c)])
            correct = counted = 0.0
            for pix in pixels:
                wi = w[(i,) + pix]
                for k in range(c):
                    ph, tk = p[(i, k) + pix], t[(i, k) + pix]
                    if activation == "softmax":
                        correct += wi * ph * tk  # one-hot prediction: only the predicted class adds
                    else:
                        correct += wi * (ph * tk + (1.0 - ph) * (1.0 - tk))
                        counted += wi
                if activation == "softmax":
                    counted += wi
            per_image["accuracy"].append([(correct, counted)])
            total["correct"] += correct
            total["counted"] += counted

    def ratio(num, den):
        return num / den if den > 0 else empty_score

    first = 0 if include_background else 1
    overlap_sp = total["sp_in_target"] if ignore_empty else total["sp"]
    micro = {
        "dice": [ratio(2 * a, b + d) for a, b, d in zip(total["tp"], overlap_sp, total["st"])],
        "iou": [ratio(a, b + d - a) for a, b, d in zip(total["tp"], overlap_sp, total["st"])],
        "class_accuracy": [ratio(a, d) for a, d in zip(total["tp"], total["st"])],
        "accuracy": [ratio(total["correct"], total["counted"])],
    }
    result = {"images": np.array(images)}
    for name, rows in per_image.items():
        if not hard and name in ("class_accuracy", "accuracy"):
            continue
        columns = len(rows[0])
        macro, counts = [], []
        for k in range(columns):
            values = [ratio(num, den) for num, den in (row[k] for row in rows) if not (skip and den == 0)]
            counts.append(len(values))
            macro.append(sum(values) / len(values) if values else empty_score)
        keep = slice(None) if name == "accuracy" else slice(first, None)
        result[name] = np.array(micro[name][keep])
        result[f"{name}_macro"] = np.array(macro[keep])
        result[f"{name}_images"] = np.array(counts[keep])
        if name == "accuracy":
            result[name], result[f"{name}_macro"], result[f"{name}_images"] = (
                result[name][0], result[f"{name}_macro"][0], result[f"{name}_images"][0])
    return result


# ------------------------------------------------------------------------------------------------
# MONAI's own values for ignore_empty=True (its default)
# ------------------------------------------------------------------------------------------------
# Data, not code: the inputs and expected values of TEST_CASE_4 to TEST_CASE_8, the cases of
# ``test_nans_class``, in Project-MONAI/MONAI tests/metrics/test_compute_meandice.py (DiceMetric)
# and tests/metrics/test_compute_meaniou.py (MeanIoU). Both files share the inputs: one
# prediction, (2, 3, 2, 2) multi-label 0/1, and two one-hot targets. MONAI's reductions, per
# class c and image n of the per-image values v[n, c] (NaN where the target lacks c):
# "mean_batch" the mean over n of the non-NaN v[:, c]; "sum_batch" their sum; "mean" the mean
# over n of each image's mean over its non-NaN classes.

MONAI_PREDICTION = [
    [[[1.0, 1.0], [1.0, 0.0]], [[0.0, 1.0], [0.0, 0.0]], [[0.0, 1.0], [1.0, 1.0]]],
    [[[1.0, 0.0], [1.0, 1.0]], [[0.0, 1.0], [1.0, 1.0]], [[0.0, 1.0], [1.0, 0.0]]],
]
# TEST_CASE_4 and 5: image 0 holds class 0 only, image 1 all three classes.
MONAI_TARGET_A = [
    [[[1.0, 1.0], [1.0, 1.0]], [[0.0, 0.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]],
    [[[0.0, 0.0], [0.0, 1.0]], [[1.0, 1.0], [0.0, 0.0]], [[0.0, 0.0], [1.0, 0.0]]],
]
# TEST_CASE_6, 7 and 8: both images hold class 0 only.
MONAI_TARGET_B = [
    [[[1.0, 1.0], [1.0, 1.0]], [[0.0, 0.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]],
    [[[1.0, 1.0], [1.0, 1.0]], [[0.0, 0.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]],
]
# (case, target, include_background, reduction, expected Dice, expected IoU); MONAI checks them
# at atol 1e-4.
MONAI_NANS_CLASS = [
    ("TEST_CASE_4", MONAI_TARGET_A, True, "mean_batch", [0.6786, 0.4000, 0.6667], [0.5416, 0.2500, 0.5000]),
    ("TEST_CASE_5", MONAI_TARGET_A, True, "mean", 0.689683, 0.5555),
    ("TEST_CASE_6", MONAI_TARGET_B, True, "sum_batch", [1.7143, 0.0000, 0.0000], [1.5000, 0.0000, 0.0000]),
    ("TEST_CASE_7", MONAI_TARGET_B, True, "mean", 0.857143, 0.7500),
    ("TEST_CASE_8", MONAI_TARGET_B, False, "sum_batch", [0.0000, 0.0000], [0.0000, 0.0000]),
]
