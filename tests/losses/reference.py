"""Brute-force float64 reference implementations of the weighted losses in ``unetweights.losses``.

Everything here is derived from the docstrings of ``unetweights.losses`` (the specification) and
from the papers / torch definitions they cite.  The code is deliberately naive: plain Python loops
over images, classes and pixels, ``math`` scalar functions, and (for the Lovasz losses) the
Jaccard loss of every prefix recomputed from scratch.  Nothing here imports ``unetweights``.

Conventions
-----------
- Arrays are numpy float64 (targets: int64 for class indices).
- ``input`` is (N, C, *spatial); index targets are (N, *spatial).
- A weight map is either ``None``, or an array whose shape is the loss's element shape with size-1
  dims broadcasting, or (for an element shape (N, C, *)) an (N, *) map applied to every channel.
- Scalar results are returned as Python floats, "none" results as numpy arrays.
"""

from __future__ import annotations

import itertools
import math
from typing import List, Optional, Sequence, Tuple

import numpy as np

# ---------------------------------------------------------------------------------------------
# Small scalar helpers
# ---------------------------------------------------------------------------------------------


def _log_sigmoid(x: float) -> float:
    """log sigma(x), computed stably for either sign."""
    if x >= 0:
        return -math.log1p(math.exp(-x))
    return x - math.log1p(math.exp(x))


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def _log_softmax_vec(values: Sequence[float]) -> List[float]:
    m = max(values)
    s = 0.0
    for v in values:
        s += math.exp(v - m)
    lse = m + math.log(s)
    return [v - lse for v in values]


def _softmax_vec(values: Sequence[float]) -> List[float]:
    return [math.exp(v) for v in _log_softmax_vec(values)]


def _spatial_indices(spatial: Sequence[int]):
    return itertools.product(*[range(s) for s in spatial])


def _weight_at(weight: Optional[np.ndarray], index: Tuple[int, ...]) -> float:
    """Weight of the element at ``index`` of the full element shape.

    ``weight`` either has the rank of ``index`` (size-1 dims broadcast) or one dim less, in which
    case it is an (N, *) map for an (N, C, *) element shape and the channel index is skipped.
    """
    if weight is None:
        return 1.0
    if weight.ndim == len(index) - 1:
        index = (index[0],) + tuple(index[2:])
    if weight.ndim != len(index):
        raise AssertionError(f"bad weight rank {weight.shape} for index {index}")
    sub = tuple(0 if weight.shape[d] == 1 else index[d] for d in range(len(index)))
    return float(weight[sub])


def _pixel_weight(weight: Optional[np.ndarray], n: int, pos: Tuple[int, ...]) -> float:
    """Weight of pixel (n, *pos) for a map given as (N, *) or (N, 1, *) (size-1 dims broadcast)."""
    if weight is None:
        return 1.0
    if weight.ndim == len(pos) + 1:
        full = (n,) + tuple(pos)
    else:
        full = (n, 0) + tuple(pos)
    sub = tuple(0 if weight.shape[d] == 1 else full[d] for d in range(weight.ndim))
    return float(weight[sub])


def _finish(total: float, norm: float, reduction: str, none_value: np.ndarray):
    if reduction == "none":
        return none_value
    if reduction == "sum":
        return total
    if reduction == "mean":
        return total / norm if norm > 0 else 0.0
    raise AssertionError(reduction)


# ---------------------------------------------------------------------------------------------
# Cross-entropy / NLL / softmax focal
# ---------------------------------------------------------------------------------------------


def ref_nll(
    log_prob: np.ndarray,
    target: np.ndarray,
    weight: Optional[np.ndarray] = None,
    class_weight: Optional[Sequence[float]] = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
    gamma: float = 0.0,
    alpha: Optional[float] = None,
):
    """Weighted NLL on log-probabilities, pixel by pixel.

    Index target y (not ignored):
        l = (1 - eps) * cw[y] * f(p_y) * (-log p_y) + eps / C * sum_c cw[c] * f(p_c) * (-log p_c)
        with f(p) = (1 - p)^gamma (f = 1 for plain NLL); mean = sum w*l / sum w*cw[y].
    Probability target t (torch's smoothing t' = (1 - eps) t + eps / C):
        l = -sum_c cw[c] * t'_c * f(p_c) * log p_c; mean = sum w*l / sum w.
    ``alpha`` (softmax focal) multiplies the final value.
    """
    n_img, n_cls = log_prob.shape[:2]
    spatial = log_prob.shape[2:]
    cw = [1.0] * n_cls if class_weight is None else [float(v) for v in class_weight]
    prob_target = target.ndim == log_prob.ndim
    out = np.zeros((n_img,) + tuple(spatial))
    total = 0.0
    norm = 0.0

    def term(lp: float) -> float:
        t = -lp
        if gamma > 0.0:
            t *= (1.0 - math.exp(lp)) ** gamma
        return t

    for n in range(n_img):
        for pos in _spatial_indices(spatial):
            w = _pixel_weight(weight, n, pos)
            lps = [float(log_prob[(n, c) + pos]) for c in range(n_cls)]
            if prob_target:
                loss = 0.0
                for c in range(n_cls):
                    tc = float(target[(n, c) + pos])
                    tc = (1.0 - label_smoothing) * tc + label_smoothing / n_cls
                    loss += cw[c] * tc * term(lps[c])
                pixel_norm = w
            else:
                y = int(target[(n,) + pos])
                if y == ignore_index:
                    continue
                loss = (1.0 - label_smoothing) * cw[y] * term(lps[y])
                if label_smoothing > 0.0:
                    smooth = 0.0
                    for c in range(n_cls):
                        smooth += cw[c] * term(lps[c])
                    loss += label_smoothing / n_cls * smooth
                pixel_norm = w * cw[y]
            out[(n,) + pos] = w * loss
            total += w * loss
            norm += pixel_norm
    result = _finish(total, norm, reduction, out)
    if alpha is not None:
        result = alpha * result
    return result


def log_softmax(input: np.ndarray) -> np.ndarray:
    """log_softmax over dim 1, pixel by pixel."""
    out = np.zeros_like(input, dtype=np.float64)
    n_img, n_cls = input.shape[:2]
    for n in range(n_img):
        for pos in _spatial_indices(input.shape[2:]):
            lps = _log_softmax_vec([float(input[(n, c) + pos]) for c in range(n_cls)])
            for c in range(n_cls):
                out[(n, c) + pos] = lps[c]
    return out


def softmax(input: np.ndarray) -> np.ndarray:
    return np.exp(log_softmax(input))


def ref_cross_entropy(input, target, weight=None, class_weight=None, ignore_index=-100, label_smoothing=0.0,
                      reduction="mean"):
    return ref_nll(log_softmax(input), target, weight, class_weight, ignore_index, label_smoothing, reduction)


def ref_softmax_focal(input, target, weight=None, alpha=None, gamma=2.0, class_weight=None, ignore_index=-100,
                      reduction="mean"):
    """-alpha * sum_c cw[c] t_c (1 - p_c)^gamma log p_c, normalised like cross-entropy."""
    return ref_nll(log_softmax(input), target, weight, class_weight, ignore_index, 0.0, reduction, gamma, alpha)


# ---------------------------------------------------------------------------------------------
# Binary cross-entropy and sigmoid focal
# ---------------------------------------------------------------------------------------------


def _pos_weight_at(pos_weight: Optional[np.ndarray], index: Tuple[int, ...]) -> float:
    """torch broadcasting: pos_weight aligns with the trailing dims of the input."""
    if pos_weight is None:
        return 1.0
    pw = np.asarray(pos_weight)
    offset = len(index) - pw.ndim
    sub = tuple(0 if pw.shape[d] == 1 else index[offset + d] for d in range(pw.ndim))
    return float(pw[sub])


def _ref_bce(input, target, weight, pos_weight, balance, reduction, terms):
    """l = t l+ + (1 - t) l-, element by element, with (l+ / pw, l-) = terms(input element).

    balance=(a, b): a * sum w t l+ / sum w t + b * sum w (1-t) l- / sum w (1-t); a side with zero
    mass contributes 0.  "none" then returns each element's share; "mean"/"sum" both the value.
    """
    out = np.zeros(input.shape)
    total = 0.0
    norm = 0.0
    pos_mass = 0.0
    neg_mass = 0.0
    for idx in np.ndindex(*input.shape):
        w = _weight_at(weight, idx)
        lpos, lneg = terms(float(input[idx]))
        t = float(target[idx])
        loss = t * _pos_weight_at(pos_weight, idx) * lpos + (1.0 - t) * lneg
        out[idx] = w * loss
        total += w * loss
        norm += w
        pos_mass += w * t
        neg_mass += w * (1.0 - t)
    if balance is None:
        return _finish(total, norm, reduction, out)
    a, b = balance
    shares = np.zeros(input.shape)
    value = 0.0
    for idx in np.ndindex(*input.shape):
        w = _weight_at(weight, idx)
        lpos, lneg = terms(float(input[idx]))
        t = float(target[idx])
        s = 0.0
        if pos_mass > 0:
            s += a * w * t * _pos_weight_at(pos_weight, idx) * lpos / pos_mass
        if neg_mass > 0:
            s += b * w * (1.0 - t) * lneg / neg_mass
        shares[idx] = s
        value += s
    if reduction == "none":
        return shares
    return value


def ref_bce_with_logits(input, target, weight=None, pos_weight=None, balance=None, reduction="mean"):
    """l = -[pw t log s(x) + (1 - t) log(1 - s(x))]: l+ = -pw log s(x), l- = -log(1 - s(x))."""
    return _ref_bce(input, target, weight, pos_weight, balance, reduction, lambda x: (-_log_sigmoid(x), -_log_sigmoid(-x)))


def _clamped_log_pair(p: float) -> Tuple[float, float]:
    """(-log p, -log(1 - p)), each log clamped at -100 as torch's binary_cross_entropy does."""
    log_p = math.log(p) if p > 0.0 else -math.inf
    log_q = math.log1p(-p) if p < 1.0 else -math.inf
    return -max(log_p, -100.0), -max(log_q, -100.0)


def ref_binary_cross_entropy(input, target, weight=None, pos_weight=None, balance=None, reduction="mean"):
    """l = -[pw t max(log p, -100) + (1 - t) max(log(1 - p), -100)] on probabilities p."""
    return _ref_bce(input, target, weight, pos_weight, balance, reduction, _clamped_log_pair)


def ref_sigmoid_focal(input, target, weight=None, alpha=None, gamma=2.0, reduction="mean"):
    """torchvision's sigmoid_focal_loss, element by element, with the package's reduction."""
    out = np.zeros(input.shape)
    total = 0.0
    norm = 0.0
    for idx in np.ndindex(*input.shape):
        w = _weight_at(weight, idx)
        x = float(input[idx])
        t = float(target[idx])
        p = _sigmoid(x)
        ce = -(t * _log_sigmoid(x) + (1.0 - t) * _log_sigmoid(-x))
        p_t = p * t + (1.0 - p) * (1.0 - t)
        loss = ce * (1.0 - p_t) ** gamma
        if alpha is not None:
            loss *= alpha * t + (1.0 - alpha) * (1.0 - t)
        out[idx] = w * loss
        total += w * loss
        norm += w
    return _finish(total, norm, reduction, out)


# ---------------------------------------------------------------------------------------------
# Dice and Tversky
# ---------------------------------------------------------------------------------------------


def _activated(input: np.ndarray, activation: str) -> np.ndarray:
    if activation == "softmax":
        return softmax(input)
    if activation == "sigmoid":
        out = np.zeros(input.shape)
        for idx in np.ndindex(*input.shape):
            out[idx] = _sigmoid(float(input[idx]))
        return out
    if activation == "none":
        return np.array(input, dtype=np.float64)
    raise AssertionError(activation)


def _overlap_sets(input, target, weight, activation, ignore_index, per_image, include_background, squared):
    """Per set and (kept) class: tp, sum_p, sum_t, plus each set's weight mass and smoothing unit.

    Returns (stats, mass, units, classes) where stats[s][k] = (tp, sum_p, sum_t) for set s and the
    k-th kept class, mass[s] = sum of weights of non-ignored pixels, units[s] = mass[s] / the
    number of those pixels whose weight is not 0 (the mean weight a smoothing term is counted in;
    1 with weight=None), classes the kept class indices.
    """
    prob = _activated(input, activation)
    n_img, n_cls = input.shape[:2]
    spatial = input.shape[2:]
    index_target = target.ndim == input.ndim - 1
    classes = list(range(n_cls)) if include_background else list(range(1, n_cls))
    sets = [[n] for n in range(n_img)] if per_image else [list(range(n_img))]
    stats = []
    masses = []
    units = []
    for images in sets:
        mass = 0.0
        nonzero = 0
        row = []
        for c in classes:
            tp = sp = st = 0.0
            for n in images:
                for pos in _spatial_indices(spatial):
                    if index_target:
                        y = int(target[(n,) + pos])
                        if y == ignore_index:
                            continue
                        t = 1.0 if y == c else 0.0
                    else:
                        t = float(target[(n, c) + pos])
                    w = _pixel_weight(weight, n, pos)
                    p = float(prob[(n, c) + pos])
                    tp += w * p * t
                    if squared:
                        sp += w * p * p
                        st += w * t * t
                    else:
                        sp += w * p
                        st += w * t
            row.append((tp, sp, st))
        for n in images:
            for pos in _spatial_indices(spatial):
                if index_target and int(target[(n,) + pos]) == ignore_index:
                    continue
                mass += _pixel_weight(weight, n, pos)
                nonzero += _pixel_weight(weight, n, pos) != 0
        stats.append(row)
        masses.append(mass)
        units.append(mass / nonzero if nonzero else 0.0)
    return stats, masses, units, classes


def _reduce_set_losses(losses, masses, classes, class_weight, reduction):
    """losses[s][k]: per set and kept class. cw*(1 - score), mean over counted sets."""
    n_sets = len(losses)
    out = np.zeros((n_sets, len(classes)))
    total = 0.0
    norm = 0.0
    for s in range(n_sets):
        if masses[s] <= 0:
            continue  # loss 0, left out of the mean
        for k, c in enumerate(classes):
            cw = 1.0 if class_weight is None else float(class_weight[c])
            out[s, k] = cw * losses[s][k]
            total += cw * losses[s][k]
            norm += cw
    return _finish(total, norm, reduction, out)


def _ref_class_losses(loss_of, input, target, weight, activation, ignore_index, per_image, include_background,
                      squared, class_weight, reduction):
    """The shared scaffold of the per-class set losses: ``loss_of(tp, sum_p, sum_t)`` per set and class."""
    stats, masses, units, classes = _overlap_sets(
        input, target, weight, activation, ignore_index, per_image, include_background, squared
    )
    losses = [[loss_of(tp, sp, st, unit) for tp, sp, st in row] for row, unit in zip(stats, units)]
    return _reduce_set_losses(losses, masses, classes, class_weight, reduction)


def ref_soft_dice(input, target, weight=None, activation="softmax", smooth=1.0, per_image=False,
                  include_background=True, squared=False, class_weight=None, ignore_index=-100, reduction="mean"):
    def loss_of(tp, sp, st, unit):
        s = smooth * unit
        if squared:
            den = sp + st + s
        else:
            fp = sp - tp
            fn = st - tp
            den = 2.0 * tp + fp + fn + s
        return 1.0 - (1.0 if den == 0 else (2.0 * tp + s) / den)

    return _ref_class_losses(loss_of, input, target, weight, activation, ignore_index, per_image, include_background,
                             squared, class_weight, reduction)


def ref_soft_jaccard(input, target, weight=None, activation="softmax", smooth=1.0, per_image=False,
                     include_background=True, class_weight=None, ignore_index=-100, reduction="mean"):
    """1 - (tp + s) / (tp + fp + fn + s) per set and class, in float64 loops."""
    def loss_of(tp, sp, st, unit):
        den = tp + (sp - tp) + (st - tp) + smooth * unit
        return 1.0 - (1.0 if den == 0 else (tp + smooth * unit) / den)

    return _ref_class_losses(loss_of, input, target, weight, activation, ignore_index, per_image, include_background,
                             False, class_weight, reduction)


def ref_generalized_dice(input, target, weight=None, activation="softmax", smooth=1e-5, per_image=False,
                         include_background=True, ignore_index=-100, reduction="mean"):
    """Sudre et al. 2017 per set, in float64 loops: v_k = 1/(Σ w·t_k / M)², absent classes at the set's max.

    Every count is taken as a fraction of the set's weight mass M; 0 when M is 0.
    """
    stats, masses, _, classes = _overlap_sets(
        input, target, weight, activation, ignore_index, per_image, include_background, False
    )
    losses = []
    for row, mass in zip(stats, masses):
        row = [(tp / mass, sp / mass, st / mass) if mass else (0.0, 0.0, 0.0) for tp, sp, st in row]
        inverse = [1.0 / (st * st) if st * st > 0 else math.inf for _, _, st in row]
        heaviest = max((v for v in inverse if math.isfinite(v)), default=0.0)
        volume_weights = [v if math.isfinite(v) else heaviest for v in inverse]
        num = 2.0 * sum(v * tp for v, (tp, _, _) in zip(volume_weights, row)) + smooth
        den = sum(v * (sp + st) for v, (_, sp, st) in zip(volume_weights, row)) + smooth
        losses.append([1.0 - (1.0 if den == 0 else num / den)])
    return _reduce_set_losses(losses, masses, [0], None, reduction)


def ref_tversky(input, target, weight=None, activation="softmax", alpha=0.5, beta=0.5, gamma=1.0, smooth=1.0,
                per_image=False, include_background=True, class_weight=None, ignore_index=-100, reduction="mean"):
    def loss_of(tp, sp, st, unit):
        fp = sp - tp
        fn = st - tp
        den = tp + alpha * fp + beta * fn + smooth * unit
        ti = 1.0 if den == 0 else (tp + smooth * unit) / den
        return max(1.0 - ti, 0.0) ** gamma

    return _ref_class_losses(loss_of, input, target, weight, activation, ignore_index, per_image, include_background,
                             False, class_weight, reduction)


# ---------------------------------------------------------------------------------------------
# Lovasz
# ---------------------------------------------------------------------------------------------


def weighted_jaccard_loss(truth: Sequence[float], weights: Sequence[float], mispredicted: Sequence[bool]) -> float:
    """1 - |w-intersection| / |w-union| of gt and the prediction that gets ``mispredicted`` wrong.

    The prediction is gt with the mispredicted pixels flipped. 0/0 (no weight anywhere in the
    union) is taken as loss 0.
    """
    inter = 0.0
    union = 0.0
    for t, w, wrong in zip(truth, weights, mispredicted):
        gt = t == 1
        pred = (not gt) if wrong else gt
        if gt and pred:
            inter += w
        if gt or pred:
            union += w
    if union == 0:
        return 0.0
    return 1.0 - inter / union


def lovasz_extension(errors: Sequence[float], truth: Sequence[float], weights: Sequence[float], hinge: bool) -> float:
    """sum_k g(e_(k)) * (Delta(first k) - Delta(first k-1)), errors sorted in decreasing order.

    Delta is recomputed from scratch for every prefix. g = relu for the hinge, identity otherwise.
    """
    order = sorted(range(len(errors)), key=lambda i: -errors[i])
    wrong = [False] * len(errors)
    prev = weighted_jaccard_loss(truth, weights, wrong)  # Delta(empty set)
    total = 0.0
    for i in order:
        wrong[i] = True
        cur = weighted_jaccard_loss(truth, weights, wrong)
        e = errors[i]
        if hinge:
            e = max(e, 0.0)
        total += e * (cur - prev)
        prev = cur
    return total


def ref_lovasz_hinge(input, target, weight=None, per_image=True, ignore_index=-100, weight_mode="jaccard",
                     reduction="mean"):
    """Binary Lovasz hinge. input/target (N, *) or (N, 1, *); weight of target's shape or (N, *)."""
    n_img = input.shape[0]
    sets = [[n] for n in range(n_img)] if per_image else [list(range(n_img))]
    values = np.zeros(len(sets))
    total = 0.0
    counted = 0
    for s, images in enumerate(sets):
        errors, truth, counts = [], [], []
        for n in images:
            for idx in np.ndindex(*input.shape[1:]):
                full = (n,) + idx
                y = int(target[full])
                if y == ignore_index:
                    continue  # left out entirely
                w = _weight_at(weight, full)
                sign = 2.0 * y - 1.0
                x = float(input[full])
                if weight_mode == "jaccard":
                    errors.append(1.0 - x * sign)
                    counts.append(w)
                else:
                    errors.append(w - x * sign)
                    counts.append(1.0)
                truth.append(float(y))
        if sum(counts) <= 0:
            continue
        v = lovasz_extension(errors, truth, counts, hinge=True)
        values[s] = v
        total += v
        counted += 1
    return _finish(total, counted, reduction, values)


def ref_lovasz_softmax(input, target, weight=None, classes="present", per_image=False, ignore_index=-100,
                       reduction="mean"):
    prob = softmax(input)
    n_img, n_cls = input.shape[:2]
    spatial = input.shape[2:]
    sets = [[n] for n in range(n_img)] if per_image else [list(range(n_img))]
    values = np.zeros(len(sets))
    total = 0.0
    counted = 0
    for s, images in enumerate(sets):
        per_class = []
        for c in range(n_cls):
            errors, truth, counts = [], [], []
            for n in images:
                for pos in _spatial_indices(spatial):
                    y = int(target[(n,) + pos])
                    if y == ignore_index:
                        continue
                    fg = 1.0 if y == c else 0.0
                    errors.append(abs(fg - float(prob[(n, c) + pos])))
                    truth.append(fg)
                    counts.append(_pixel_weight(weight, n, pos))
            set_mass = sum(counts)
            present_mass = sum(w for w, t in zip(counts, truth) if t == 1.0)
            selected = present_mass > 0 if classes == "present" else set_mass > 0
            if selected:
                per_class.append(lovasz_extension(errors, truth, counts, hinge=False))
        if not per_class:
            continue
        v = sum(per_class) / len(per_class)
        values[s] = v
        total += v
        counted += 1
    return _finish(total, counted, reduction, values)


# ---------------------------------------------------------------------------------------------
# Regression
# ---------------------------------------------------------------------------------------------


def _elementwise(fn, input, target, weight, reduction):
    out = np.zeros(input.shape)
    total = 0.0
    norm = 0.0
    for idx in np.ndindex(*input.shape):
        w = _weight_at(weight, idx)
        loss = fn(float(input[idx]), float(target[idx]))
        out[idx] = w * loss
        total += w * loss
        norm += w
    return _finish(total, norm, reduction, out)


def ref_mse(input, target, weight=None, reduction="mean"):
    return _elementwise(lambda x, y: (x - y) ** 2, input, target, weight, reduction)


def ref_l1(input, target, weight=None, reduction="mean"):
    return _elementwise(lambda x, y: abs(x - y), input, target, weight, reduction)


def ref_huber(input, target, weight=None, delta=1.0, reduction="mean"):
    def f(x, y):
        d = abs(x - y)
        return 0.5 * d * d if d < delta else delta * (d - 0.5 * delta)

    return _elementwise(f, input, target, weight, reduction)


def ref_smooth_l1(input, target, weight=None, beta=1.0, reduction="mean"):
    def f(x, y):
        d = abs(x - y)
        if beta == 0.0:
            return d
        return 0.5 * d * d / beta if d < beta else d - 0.5 * beta

    return _elementwise(f, input, target, weight, reduction)


def ref_kl_div(input, target, weight=None, reduction="mean", log_target=False):
    def f(x, t):
        if log_target:
            return math.exp(t) * (t - x)
        if t == 0:
            return 0.0
        return t * (math.log(t) - x)

    if reduction == "batchmean":
        return _elementwise(f, input, target, weight, "sum") / input.shape[0]
    return _elementwise(f, input, target, weight, reduction)


# ---------------------------------------------------------------------------------------------
# MCC and the losses on distances and skeletons
# ---------------------------------------------------------------------------------------------


def ref_mcc(input, target, weight=None, activation="softmax", smooth=1e-5, per_image=False, include_background=True,
            class_weight=None, ignore_index=-100, reduction="mean"):
    """1 - MCC per set and class from the weighted soft confusion matrix, in float64 loops."""
    stats, masses, units, classes = _overlap_sets(
        input, target, weight, activation, ignore_index, per_image, include_background, False
    )
    losses = []
    for row, mass, unit in zip(stats, masses, units):
        out = []
        for tp, sp, st in row:
            fp, fn = sp - tp, st - tp
            tn = mass - tp - fp - fn
            if fp == 0 and fn == 0:
                out.append(0.0)
                continue
            den = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn) + smooth * unit**4)
            out.append(1.0 - ((tp * tn - fp * fn) / den if den > 0 else 0.0))
        losses.append(out)
    return _reduce_set_losses(losses, masses, classes, class_weight, reduction)


def brute_signed_distance(mask: np.ndarray, spacing: Sequence[float]) -> np.ndarray:
    """Outside: distance to the nearest True pixel; inside: minus the distance to the nearest False.

    By an explicit minimum over every pixel, in float64; 0 everywhere without a boundary.
    """
    mask = np.asarray(mask, dtype=bool)
    out = np.zeros(mask.shape)
    if mask.all() or not mask.any():
        return out
    points = np.stack(np.nonzero(np.ones(mask.shape, dtype=bool)), 1) * np.asarray(spacing, dtype=np.float64)
    flat = mask.reshape(-1)
    for i, here in enumerate(points):
        other = points[flat != flat[i]]
        nearest = math.sqrt(float(((other - here) ** 2).sum(1).min()))
        out.reshape(-1)[i] = -nearest if flat[i] else nearest
    return out


def _one_hot_truth(input: np.ndarray, target: np.ndarray, ignore_index) -> Tuple[np.ndarray, np.ndarray]:
    """(N, C, *) float64 truth (zero where ignored) and the (N, *) valid mask."""
    if target.ndim == input.ndim:
        return np.asarray(target, dtype=np.float64), np.ones((input.shape[0],) + input.shape[2:], dtype=bool)
    valid = target != ignore_index
    truth = np.stack([(target == c) & valid for c in range(input.shape[1])], 1).astype(np.float64)
    return truth, valid


def _pixel_weights(valid, weight) -> np.ndarray:
    """(N, *) float64 weights, 0 where ignored."""
    w = np.ones(valid.shape) if weight is None else np.asarray(weight, dtype=np.float64)
    return np.where(valid, w, 0.0)


def scipy_signed_distance(masks: np.ndarray, spacing=None) -> np.ndarray:
    """(N, C, *) masks: outside, scipy's distance to the nearest True pixel; inside, minus that to
    the nearest False one; 0 for a channel without a boundary."""
    from scipy import ndimage

    out = np.zeros(masks.shape)
    for index in np.ndindex(*masks.shape[:2]):
        mask = np.asarray(masks[index], dtype=bool)
        if mask.any() and not mask.all():
            out[index] = ndimage.distance_transform_edt(~mask, sampling=spacing)
            out[index] -= ndimage.distance_transform_edt(mask, sampling=spacing)
    return out


def _elementwise_distance_loss(values, valid, weight, reduction):
    """Reduce (N, C', *) element losses with the weight map (N, *) and the valid mask (N, *)."""
    w = _pixel_weights(valid, weight)[:, None]
    weighted = values * w
    if reduction == "none":
        return weighted
    norm = np.broadcast_to(w, values.shape)
    if reduction == "sum":
        return weighted.sum()
    if reduction == "per_image":
        num = weighted.reshape(len(values), -1).sum(1)
        den = norm.reshape(len(values), -1).sum(1)
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
    return weighted.sum() / norm.sum() if norm.sum() > 0 else 0.0


def ref_boundary(input, target, weight=None, distance=None, activation="softmax", include_background=True,
                 spacing=None, ignore_index=-100, reduction="mean"):
    """Σ w·φ_c·p_c / Σ w, φ from scipy's transform unless given."""
    prob = _activated(input, activation)
    truth, valid = _one_hot_truth(input, target, ignore_index)
    first = 0 if include_background else 1
    prob, truth = prob[:, first:], truth[:, first:]
    if distance is None:
        distance = scipy_signed_distance(truth > 0.5, spacing)
    return _elementwise_distance_loss(np.asarray(distance, dtype=np.float64) * prob, valid, weight, reduction)


def ref_hausdorff_dt(input, target, weight=None, activation="softmax", alpha=2.0, include_background=True,
                     spacing=None, ignore_index=-100, reduction="mean"):
    """(p - t)² (d_P^α + d_G^α) with d the unsigned distance to the boundary, from scipy.

    Where one of prediction (p > 0.5) and target fills a channel and the other is empty, neither
    has a boundary: both distances are then the image diagonal, between the centres of its
    first and last pixels.
    """
    prob = _activated(input, activation)
    truth, valid = _one_hot_truth(input, target, ignore_index)
    first = 0 if include_background else 1
    prob, truth = prob[:, first:], truth[:, first:]
    predicted_field = np.abs(scipy_signed_distance(prob > 0.5, spacing))
    target_field = np.abs(scipy_signed_distance(truth > 0.5, spacing))
    steps = np.ones(prob.ndim - 2) if spacing is None else np.asarray(spacing, dtype=np.float64)
    diagonal = math.sqrt(sum(((size - 1) * step) ** 2 for size, step in zip(prob.shape[2:], steps)))
    for index in np.ndindex(*prob.shape[:2]):
        p, t = prob[index] > 0.5, truth[index] > 0.5
        if (p.all() and not t.any()) or (t.all() and not p.any()):
            predicted_field[index] = diagonal
            target_field[index] = diagonal
    scale = predicted_field**alpha + target_field**alpha
    return _elementwise_distance_loss((prob - truth) ** 2 * scale, valid, weight, reduction)


def ref_soft_skeleton(x: np.ndarray, iterations: int) -> np.ndarray:
    """clDice's soft skeleton with scipy's grey filters: min over the axis cross, max over the 3^d box.

    ``mode="nearest"`` repeats the edge, which never beats the pixel itself: outside pixels never win.
    """
    from scipy import ndimage

    spatial = x.ndim - 2
    cross = ndimage.generate_binary_structure(spatial, 1)
    box = np.ones((3,) * spatial, dtype=bool)
    footprint_cross = cross[None, None]
    footprint_box = box[None, None]

    def erode(a):
        return ndimage.minimum_filter(a, footprint=footprint_cross, mode="nearest")

    def dilate(a):
        return ndimage.maximum_filter(a, footprint=footprint_box, mode="nearest")

    x = np.asarray(x, dtype=np.float64)
    skeleton = np.maximum(x - dilate(erode(x)), 0.0)
    for _ in range(iterations):
        x = erode(x)
        delta = np.maximum(x - dilate(erode(x)), 0.0)
        skeleton = skeleton + np.maximum(delta - skeleton * delta, 0.0)
    return skeleton


def _per_set(loss_of, num_images, num_classes, w, per_image, reduction):
    """``loss_of(images, k)`` for every set of images and scored class k, reduced like the set losses."""
    sets = [[n] for n in range(num_images)] if per_image else [list(range(num_images))]
    losses = [[loss_of(images, k) for k in range(num_classes)] for images in sets]
    masses = [float(w[images].sum()) for images in sets]
    return _reduce_set_losses(losses, masses, list(range(num_classes)), None, reduction)


def _unit(w: np.ndarray) -> float:
    """The mean weight of the pixels whose weight is not 0: the unit a set's smoothing is counted in."""
    nonzero = np.count_nonzero(w)
    return float(w.sum()) / nonzero if nonzero else 0.0


def _ratio(num: float, den: float) -> float:
    return 1.0 if den == 0 else num / den


def ref_cldice(input, target, weight=None, activation="softmax", iterations=3, smooth=1.0, per_image=False,
               include_background=True, ignore_index=-100, reduction="mean"):
    """1 - 2·Tprec·Tsens / (Tprec + Tsens) per set and class, skeletons from scipy's grey filters."""
    prob = _activated(input, activation)
    truth, valid = _one_hot_truth(input, target, ignore_index)
    first = 0 if include_background else 1
    prob, truth = prob[:, first:], truth[:, first:]
    skeleton_p, skeleton_t = ref_soft_skeleton(prob, iterations), ref_soft_skeleton(truth, iterations)
    w = _pixel_weights(valid, weight)

    def loss_of(images, k):
        ww, p, t, sp, st = w[images], prob[images, k], truth[images, k], skeleton_p[images, k], skeleton_t[images, k]
        s = smooth * _unit(ww)
        precision = _ratio((ww * sp * t).sum() + s, (ww * sp).sum() + s)
        sensitivity = _ratio((ww * st * p).sum() + s, (ww * st).sum() + s)
        return 1.0 - _ratio(2.0 * precision * sensitivity, precision + sensitivity)

    return _per_set(loss_of, len(input), prob.shape[1], w, per_image, reduction)


def ref_skeleton_recall(input, skeleton, weight=None, activation="softmax", smooth=1.0, per_image=False,
                        ignore_index=-100, reduction="mean"):
    """1 - (Σ w·p·s + smooth) / (Σ w·s + smooth) per set and class (class 0 left out of index skeletons)."""
    prob = _activated(input, activation)
    tube, valid = _one_hot_truth(input, skeleton, ignore_index)
    if skeleton.ndim != input.ndim:
        prob, tube = prob[:, 1:], tube[:, 1:]
    w = _pixel_weights(valid, weight)

    def loss_of(images, k):
        ww, p, t = w[images], prob[images, k], tube[images, k]
        s = smooth * _unit(ww)
        return 1.0 - _ratio((ww * p * t).sum() + s, (ww * t).sum() + s)

    return _per_set(loss_of, len(input), prob.shape[1], w, per_image, reduction)
