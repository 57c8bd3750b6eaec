"""Brute-force float64 references for ``unetweights.metrics``, written from its docstrings.

Plain Python loops over images, classes and pixels; torch is only used to turn input tensors into
numpy arrays. Nothing is imported from ``unetweights``.

For each image n and class c, with p the prediction, t the target and w the weight map (zero where
the index target equals ``ignore_index``)

    tp = Σ w·p·t,    Σp = Σ w·p,    Σt = Σ w·t,

    Dice = 2·tp / (Σp + Σt),    IoU = tp / (Σp + Σt - tp),    accuracy = tp / Σt,

and ``empty_score`` wherever the denominator is 0.
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


def _ratio(num, den, empty_score):
    out = np.zeros(num.shape)
    for idx in np.ndindex(*num.shape):
        out[idx] = num[idx] / den[idx] if den[idx] > 0 else empty_score
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
    empty_score=1.0,
):
    p, t, w, pixels = _prepare(input, target, weight, activation, hard, threshold, ignore_index)
    tp, sp, st = _counts(p, t, w, pixels)
    return _drop_background(_ratio(2.0 * tp, sp + st, empty_score), include_background)


def ref_iou(
    input,
    target,
    weight=None,
    activation="softmax",
    hard=True,
    threshold=0.5,
    include_background=True,
    ignore_index=None,
    empty_score=1.0,
):
    p, t, w, pixels = _prepare(input, target, weight, activation, hard, threshold, ignore_index)
    tp, sp, st = _counts(p, t, w, pixels)
    return _drop_background(_ratio(tp, sp + st - tp, empty_score), include_background)


def ref_accuracy(
    input,
    target,
    weight=None,
    activation="softmax",
    threshold=0.5,
    per_class=True,
    include_background=True,
    ignore_index=None,
    empty_score=1.0,
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
