"""Object-level matching of instance segmentations: which predicted object is which true object, and
the detection scores that follow (precision, recall, F1, average precision, panoptic quality), per
image and summed over a dataset. numpy and scipy only; never imports torch.

Definitions
-----------
**Objects.** ``true`` and ``pred`` are integer label images of one shape, 2D or 3D: each non-zero
value is one object (its pixels need not be connected), 0 is background. Ids need not be
consecutive; ``n_true`` and ``n_pred`` count the ids present. A binary or semantic prediction is
split into objects only when asked, with ``semantic=True``: its connected components of equal
non-zero value, by :func:`~unetweights.weightmaps.label_instances` and its ``connectivity``. A
bool array is otherwise refused, never guessed.

**IoU** of a true object T and a predicted object P: |T ∩ P| / |T ∪ P| in pixels, one float64
division of exact counts (so an IoU of 3/4 equals the threshold 0.75).

**Matches at a threshold t**, t in (0, 1]. A pair is a candidate when IoU >= t (greater or
equal, as in StarDist's ``matching`` and Cellpose's ``average_precision``). The matching is a set
of candidates in which no object appears twice, chosen to have the most pairs and, among those,
the largest summed IoU: an optimal assignment (``scipy.optimize.linear_sum_assignment``) on each
connected group of candidates. For t > 0.5 no object has two candidates (IoU > 1/2 puts more
than half of each object inside the other, which two disjoint objects cannot both do), so every
candidate is matched and the matching is unique. At t = 0.5 an object can have two candidates of IoU exactly 1/2 (its two
halves); which one is matched is then arbitrary, the counts and sums below are not.

**Counts** per threshold: TP the matched pairs, FP = n_pred - TP, FN = n_true - TP,
``sum_matched_iou`` the IoU summed over the matched pairs. **Scores**: precision = TP / n_pred,
recall = TP / n_true, F1 = 2 TP / (2 TP + FP + FN), ``average_precision`` = TP / (TP + FP + FN)
(Cellpose's "AP", StarDist's "accuracy", the Data Science Bowl 2018 score),
``panoptic_quality`` = sum_matched_iou / (TP + FP/2 + FN/2) (Kirillov et al. 2019),
``mean_matched_iou`` = sum_matched_iou / TP.

**Nothing to score.** A score whose denominator is 0 is ``empty_score``, NaN by default (the rule
of :mod:`unetweights.metrics`): precision without predicted objects, recall without true objects,
F1, average precision and panoptic quality without either. Where there are objects but no match,
the scores are 0. ``mean_matched_iou`` is NaN whenever TP = 0 whatever ``empty_score`` is: it is
a mean over no pairs, and a finite stand-in would read as a quality that no match has.

**Merges and splits** (independent of the threshold). An object A lies inside an object B of the
other image when at least ``containment`` (default 0.5) of A's pixels are in B. A *merge* is a
predicted object with two or more true objects inside it, and ``merged`` counts the true objects
inside merges; a *split* is a true object with two or more predicted objects inside it, and
``fragments`` counts the predicted objects inside splits. Swapping true and pred swaps merges with
splits and merged with fragments. Small pieces count: a true object that holds a predicted object
and a stray predicted pixel is split, as a predicted object that covers a one-pixel true object
besides its own is a merge.

**Over a dataset**, :class:`ObjectMatching` sums the counts (TP, FP, FN, sum_matched_iou, n_true,
n_pred, merges, merged, splits, fragments) over images and computes the scores from the sums, as
StarDist's ``matching_dataset(by_image=False)``: a micro score, not the mean of per-image scores.

Differences from StarDist (``stardist.matching.matching``) and Cellpose
(``cellpose.metrics.average_precision``), which agree with each other otherwise:

- Empty denominators: StarDist gives 0 for precision, recall, accuracy and F1 whenever TP = 0,
  and 0 for a mean matched score or panoptic quality over nothing; Cellpose's AP of an image
  without objects is 0/0 (NaN). Here only a zero denominator gives ``empty_score``: an image with
  predicted but no true objects has precision 0 and recall NaN (StarDist: 0 and 0), and one with
  neither has NaN scores (StarDist: 0; ``empty_score=0.0`` gives its values there).
- The tie-break: both maximise the number of matches, then the IoU summed over *every* assigned
  pair, those below the threshold included (their cost -[IoU >= t] - IoU / (2 min(n_true,
  n_pred))). Here the second criterion sums the matched pairs only. TP, FP and FN are the same;
  for t < 0.5 their matched IoU sum (so panoptic quality and mean matched IoU) can be smaller.
- Cellpose counts ``max(label)`` objects, so a missing id counts as a missed object; here (and in
  StarDist, which relabels) only the ids present count.
- StarDist accepts t = 0, where every pair matches, even two disjoint objects; here t is in (0, 1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Dict, List, Optional, Tuple

import numpy as np

from ._validation import as_label_array, integer_in_range, positive_float, real_number
from .weightmaps import label_instances

# The per-threshold fields of MatchingScores, and the object counts that do not depend on it.
THRESHOLD_FIELDS = (
    "tp", "fp", "fn", "precision", "recall", "f1", "average_precision", "panoptic_quality", "mean_matched_iou",
    "sum_matched_iou",
)
OBJECT_FIELDS = ("n_true", "n_pred", "merges", "merged", "splits", "fragments")
_SUMMED = ("tp", "fp", "fn", "sum_matched_iou", *OBJECT_FIELDS)


@dataclass(frozen=True)
class MatchingScores:
    """The counts and scores of one image (:func:`match_instances`, :meth:`ObjectMatching.update`) or
    of a dataset (:meth:`ObjectMatching.compute`); see :mod:`unetweights.matching` for definitions.

    The per-threshold fields (``THRESHOLD_FIELDS``) are float64 arrays of shape (T,), in the order
    of ``thresholds`` (the counts are whole numbers); the object counts (``OBJECT_FIELDS``) and
    ``images`` are ints.
    """

    thresholds: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    average_precision: np.ndarray
    panoptic_quality: np.ndarray
    mean_matched_iou: np.ndarray
    sum_matched_iou: np.ndarray
    n_true: int
    n_pred: int
    merges: int
    merged: int
    splits: int
    fragments: int
    images: int

    def as_dict(self) -> Dict[str, object]:
        """Every field by name: arrays of shape (T,) and ints."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def rows(self) -> List[Dict[str, float]]:
        """One dict per threshold ("threshold", the per-threshold fields, then the object counts),
        for ``csv.DictWriter``; NaN stays NaN."""
        counts = {name: getattr(self, name) for name in (*OBJECT_FIELDS, "images")}
        return [
            {"threshold": float(t), **{name: _number(name, getattr(self, name)[k]) for name in THRESHOLD_FIELDS}, **counts}
            for k, t in enumerate(self.thresholds)
        ]

    def table(self) -> str:
        """The scores per threshold and the object counts as aligned text, NaN as ``n/a``."""
        columns = [("IoU >=", None), ("TP", "tp"), ("FP", "fp"), ("FN", "fn"), ("precision", "precision"),
                   ("recall", "recall"), ("F1", "f1"), ("AP", "average_precision"), ("PQ", "panoptic_quality"),
                   ("mean IoU", "mean_matched_iou")]
        lines = ["".join(f"{title:>10}" for title, _ in columns)]
        for row in self.rows():
            cells = [f"{row['threshold']:10.3g}"]
            for _, key in columns[1:]:
                value = row[key]
                cells.append(f"{int(value):10d}" if key in ("tp", "fp", "fn") else
                             ("n/a".rjust(10) if math.isnan(value) else f"{value:10.3f}"))
            lines.append("".join(cells))
        lines.append(
            f"objects: {self.n_true} true, {self.n_pred} predicted in {self.images} image(s); "
            f"merges {self.merges} (holding {self.merged} true objects), splits {self.splits} "
            f"(into {self.fragments} predicted objects)"
        )
        return "\n".join(lines)


def _number(name: str, value) -> float:
    """A per-threshold value as a Python number: the counts TP, FP and FN as ints."""
    return int(value) if name in ("tp", "fp", "fn") else float(value)


# -- checks -------------------------------------------------------------------------------------


def _label_image(labels, name: str, semantic: bool = False, connectivity: Optional[int] = None) -> np.ndarray:
    """``labels`` as a checked integer label image (with ``semantic``, its connected components)."""
    try:
        arr = np.asarray(labels)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise TypeError(f"{name} must be an array-like that numpy can read, got {type(labels).__name__}: {exc}") from None
    integer = np.issubdtype(arr.dtype, np.integer)
    if arr.dtype == bool and not semantic:
        hint = "pass semantic=True to split it into connected components" if name == "pred" else "label it first"
        raise TypeError(f"{name} is a bool mask, not instance labels; {hint}")
    if not (integer or arr.dtype == bool):
        nan = " holding NaN" if np.issubdtype(arr.dtype, np.floating) and np.isnan(arr).any() else ""
        raise TypeError(f"{name} must be an integer label image (0 background, one id per object), got dtype {arr.dtype}{nan}")
    arr = as_label_array(arr, name)
    return label_instances(arr, connectivity) if semantic else arr


def _thresholds(value) -> np.ndarray:
    expected = "thresholds must be a number in (0, 1] or a sequence of them"
    if real_number(value) is not None or isinstance(value, (bool, np.bool_)):
        items = [value]
    elif isinstance(value, (str, bytes)):
        raise TypeError(f"{expected}, got {value!r}")
    else:
        try:
            items = list(value)
        except TypeError:
            raise TypeError(f"{expected}, got {value!r} ({type(value).__name__})") from None
    if not items:
        raise ValueError(f"{expected}, got an empty sequence")
    numbers = [real_number(item) for item in items]
    for item, number in zip(items, numbers):
        if number is None:
            raise TypeError(f"{expected} (no bools or strings), got {item!r} in {value!r}")
        if not 0 < number <= 1:  # NaN fails too
            raise ValueError(f"{expected}: a match needs IoU >= t > 0, got {number}")
    return np.array(numbers, dtype=np.float64)


def _options(semantic, connectivity, containment, empty_score) -> Tuple[bool, Optional[int], float, float]:
    if not isinstance(semantic, (bool, np.bool_)):
        raise TypeError(f"semantic must be a bool, got {semantic!r}")
    if connectivity is not None:
        if not semantic:
            raise ValueError("connectivity: applies only with semantic=True (the components of a semantic pred)")
        connectivity = integer_in_range(connectivity, "connectivity", 1, 3, " (at most the images' ndim)")
    containment = positive_float(containment, "containment", maximum=1.0)
    score = real_number(empty_score)
    if score is None or math.isinf(score):
        raise TypeError(f"empty_score must be a finite number or NaN, got {empty_score!r}")
    return bool(semantic), (1 if connectivity is None and semantic else connectivity), containment, score


def _pair(true, pred, semantic: bool, connectivity: Optional[int]) -> Tuple[np.ndarray, np.ndarray]:
    true = _label_image(true, "true")
    pred = _label_image(pred, "pred", semantic, connectivity)
    if true.shape != pred.shape:
        raise ValueError(f"pred must have the shape of true {true.shape}, got {pred.shape}")
    return true, pred


# -- the counts ---------------------------------------------------------------------------------


def _objects(labels: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(index of each pixel's object, -1 for background; area of each object; its id), objects in
    id order. A counting sort where the ids are dense enough, else a sort."""
    flat = labels.ravel()
    top = int(flat.max())
    if top <= 4 * flat.size + 1024:
        counts = np.bincount(flat.astype(np.intp, copy=False), minlength=top + 1)
        counts[0] = 0
        ids = np.flatnonzero(counts)
        lookup = np.full(top + 1, -1, dtype=np.intp)
        lookup[ids] = np.arange(ids.size)
        return lookup[flat], counts[ids], ids
    ids, inverse, counts = np.unique(flat, return_inverse=True, return_counts=True)
    if ids[0] == 0:
        return inverse.reshape(-1) - 1, counts[1:], ids[1:]
    return inverse.reshape(-1), counts, ids


@dataclass(frozen=True)
class _Overlaps:
    """Every pair of overlapping objects (indices into the objects of ``_objects``), sparse."""

    true_index: np.ndarray
    pred_index: np.ndarray
    intersection: np.ndarray
    iou: np.ndarray
    true_area: np.ndarray
    pred_area: np.ndarray
    true_ids: np.ndarray
    pred_ids: np.ndarray


def _overlaps(true: np.ndarray, pred: np.ndarray) -> _Overlaps:
    ti, true_area, true_ids = _objects(true)
    pi, pred_area, pred_ids = _objects(pred)
    n_pred = max(pred_ids.size, 1)
    both = (ti >= 0) & (pi >= 0)
    codes = ti[both].astype(np.int64) * n_pred + pi[both]
    if true_ids.size * n_pred <= 4 * codes.size + 1024:
        counts = np.bincount(codes, minlength=true_ids.size * n_pred)
        codes = np.flatnonzero(counts)
        counts = counts[codes]
    else:
        codes, counts = np.unique(codes, return_counts=True)
    t, p = codes // n_pred, codes % n_pred
    union = true_area[t] + pred_area[p] - counts
    iou = counts.astype(np.float64) / union
    return _Overlaps(t, p, counts, iou, true_area, pred_area, true_ids, pred_ids)


def _matched(overlaps: _Overlaps, threshold: float) -> np.ndarray:
    """Indices (into the overlap pairs) of the matching at ``threshold``: the most pairs with IoU >=
    threshold, no object twice, then the largest summed IoU."""
    candidates = np.flatnonzero(overlaps.iou >= threshold)
    t, p = overlaps.true_index[candidates], overlaps.pred_index[candidates]
    alone = (np.bincount(t)[t] == 1) & (np.bincount(p)[p] == 1) if candidates.size else np.ones(0, bool)
    contested = candidates[~alone]
    if contested.size == 0:  # always so for threshold > 0.5
        return candidates
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    t, p = overlaps.true_index[contested], overlaps.pred_index[contested]
    n_true = overlaps.true_ids.size
    graph = coo_matrix((np.ones(contested.size), (t, n_true + p)), shape=(n_true + overlaps.pred_ids.size,) * 2)
    group = connected_components(graph, directed=False)[1][t]
    order = np.argsort(group, kind="stable")
    chosen = [candidates[alone]]
    for members in np.split(contested[order], np.flatnonzero(np.diff(group[order])) + 1):
        chosen.append(members[_assign(overlaps.true_index[members], overlaps.pred_index[members], overlaps.iou[members])])
    return np.sort(np.concatenate(chosen))


def _assign(t: np.ndarray, p: np.ndarray, iou: np.ndarray) -> np.ndarray:
    """Positions of the chosen candidates of one connected group: most pairs, then largest IoU sum.

    Each candidate weighs 1 + IoU / (m + 1), m the most pairs possible, so no IoU sum (< m / (m + 1)
    < 1) outweighs one more pair; non-candidates weigh 0 and are dropped from the assignment."""
    from scipy.optimize import linear_sum_assignment

    rows, r = np.unique(t, return_inverse=True)
    cols, c = np.unique(p, return_inverse=True)
    m = min(rows.size, cols.size)
    weight = np.zeros((rows.size, cols.size))
    weight[r, c] = 1.0 + iou / (m + 1)
    position = np.full(weight.shape, -1, dtype=np.intp)
    position[r, c] = np.arange(t.size)
    rr, cc = linear_sum_assignment(weight, maximize=True)
    found = position[rr, cc]
    return found[found >= 0]


def _merges_and_splits(overlaps: _Overlaps, containment: float) -> Dict[str, int]:
    o = overlaps
    true_inside = o.intersection / o.true_area[o.true_index] >= containment  # T lies inside P
    pred_inside = o.intersection / o.pred_area[o.pred_index] >= containment  # P lies inside T
    merge = np.bincount(o.pred_index[true_inside], minlength=o.pred_ids.size) >= 2
    split = np.bincount(o.true_index[pred_inside], minlength=o.true_ids.size) >= 2
    return {
        "merges": int(merge.sum()),
        "merged": int(np.unique(o.true_index[true_inside & merge[o.pred_index]]).size),
        "splits": int(split.sum()),
        "fragments": int(np.unique(o.pred_index[pred_inside & split[o.true_index]]).size),
    }


def _image_counts(true: np.ndarray, pred: np.ndarray, thresholds: np.ndarray, containment: float) -> Dict[str, object]:
    overlaps = _overlaps(true, pred)
    n_true, n_pred = int(overlaps.true_ids.size), int(overlaps.pred_ids.size)
    tp, total = np.zeros(thresholds.size), np.zeros(thresholds.size)
    for k, threshold in enumerate(thresholds):
        matched = _matched(overlaps, float(threshold))
        tp[k], total[k] = matched.size, math.fsum(overlaps.iou[matched])
    return {"tp": tp, "fp": n_pred - tp, "fn": n_true - tp, "sum_matched_iou": total, "n_true": n_true,
            "n_pred": n_pred, **_merges_and_splits(overlaps, containment)}


def _ratio(numerator: np.ndarray, denominator: np.ndarray, empty: float) -> np.ndarray:
    out = np.full(np.shape(denominator), empty, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=np.asarray(denominator) != 0)
    return out


def _scores(counts: Dict[str, object], thresholds: np.ndarray, images: int, empty: float) -> MatchingScores:
    tp, fp, fn, total = (np.asarray(counts[name], dtype=np.float64) for name in ("tp", "fp", "fn", "sum_matched_iou"))
    n_true, n_pred = (np.full(thresholds.size, float(counts[name])) for name in ("n_true", "n_pred"))
    return MatchingScores(
        thresholds=thresholds.copy(), tp=tp, fp=fp, fn=fn,
        precision=_ratio(tp, n_pred, empty), recall=_ratio(tp, n_true, empty), f1=_ratio(2 * tp, 2 * tp + fp + fn, empty),
        average_precision=_ratio(tp, tp + fp + fn, empty), panoptic_quality=_ratio(total, tp + (fp + fn) / 2, empty),
        mean_matched_iou=_ratio(total, tp, math.nan), sum_matched_iou=total,
        **{name: int(counts[name]) for name in OBJECT_FIELDS}, images=images,
    )


# -- public API ---------------------------------------------------------------------------------


def match_instances(
    true, pred, thresholds=0.5, *, semantic: bool = False, connectivity: Optional[int] = None,
    containment: float = 0.5, empty_score: float = math.nan,
) -> MatchingScores:
    """Match the objects of ``pred`` to those of ``true`` and score them (definitions: :mod:`unetweights.matching`).

    Parameters
    ----------
    true : (M, N) or (P, M, N) integer array
        The true instance labels, 0 background; non-negative, ids need not be consecutive.
    pred : integer array of the same shape
        The predicted instance labels; with ``semantic=True`` a bool or integer (class) mask whose
        connected components of equal non-zero value are the predicted objects.
    thresholds : float or sequence of floats in (0, 1]
        IoU thresholds; a pair matches at t when IoU >= t.
    semantic : bool
        Split ``pred`` into connected components (:func:`~unetweights.weightmaps.label_instances`).
    connectivity : int, optional
        With ``semantic``: 1 (default) joins pixels that share a face, ``ndim`` also a corner.
    containment : float in (0, 1]
        The fraction of an object that must lie in another for it to count inside (merges, splits).
    empty_score : float
        The score where a denominator is 0 (nothing to score): NaN by default.

    Returns
    -------
    MatchingScores
        Per-threshold arrays (T,) and object counts; ``images`` is 1.

    Raises
    ------
    TypeError
        Naming ``true`` or ``pred``: a float, bool (unless ``pred`` with ``semantic``) or
        non-numeric array; or a threshold or option of the wrong type.
    ValueError
        Naming the argument: shapes that differ, not 2D or 3D, empty, negative labels, a threshold
        outside (0, 1], ``containment`` outside (0, 1], ``connectivity`` without ``semantic``.
    """
    thresholds = _thresholds(thresholds)
    semantic, connectivity, containment, empty = _options(semantic, connectivity, containment, empty_score)
    true, pred = _pair(true, pred, semantic, connectivity)
    return _scores(_image_counts(true, pred, thresholds, containment), thresholds, 1, empty)


def matched_pairs(
    true, pred, threshold: float = 0.5, *, semantic: bool = False, connectivity: Optional[int] = None
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The matching at one threshold as (true ids, predicted ids, their IoU), sorted by true id.

    The same matching :func:`match_instances` counts (its TP is the length, its
    ``sum_matched_iou`` the sum of the IoUs); options as there. Ids as in the images (with
    ``semantic``, the component ids of :func:`~unetweights.weightmaps.label_instances`).
    """
    (threshold,) = _thresholds([threshold])
    semantic, connectivity, _, _ = _options(semantic, connectivity, 0.5, math.nan)
    overlaps = _overlaps(*_pair(true, pred, semantic, connectivity))
    chosen = _matched(overlaps, float(threshold))
    return (overlaps.true_ids[overlaps.true_index[chosen]], overlaps.pred_ids[overlaps.pred_index[chosen]],
            overlaps.iou[chosen])


class ObjectMatching:
    """Object matching over a dataset: ``update(true, pred)`` per image, ``compute()``, ``reset()``.

    Sums the counts of every image per threshold (TP, FP, FN, sum_matched_iou) and the object
    counts (n_true, n_pred, merges, merged, splits, fragments), and computes the scores from the
    sums: micro scores, as StarDist's ``matching_dataset(by_image=False)``, not the mean of the
    per-image scores (which :meth:`update` returns, for a per-image table). Images may differ in
    shape and dimension. The options are those of :func:`match_instances`, checked here once.
    """

    def __init__(
        self, thresholds=0.5, *, semantic: bool = False, connectivity: Optional[int] = None,
        containment: float = 0.5, empty_score: float = math.nan,
    ) -> None:
        self.thresholds = _thresholds(thresholds)
        self.semantic, self.connectivity, self.containment, self.empty_score = _options(
            semantic, connectivity, containment, empty_score
        )
        self.reset()

    def reset(self) -> None:
        """Forget every image added."""
        self._sums = {name: (np.zeros(self.thresholds.size) if name in THRESHOLD_FIELDS else 0) for name in _SUMMED}
        self.images = 0

    def update(self, true, pred) -> MatchingScores:
        """Add one image; return its own scores. Nothing is added when the input is refused."""
        true, pred = _pair(true, pred, self.semantic, self.connectivity)
        counts = _image_counts(true, pred, self.thresholds, self.containment)
        for name in _SUMMED:
            self._sums[name] = self._sums[name] + counts[name]
        self.images += 1
        return _scores(counts, self.thresholds, 1, self.empty_score)

    def compute(self) -> MatchingScores:
        """The scores of the summed counts of every image added since the last :meth:`reset`.

        Raises RuntimeError when no image was added (as :class:`~unetweights.SegmentationMetrics`).
        """
        if self.images == 0:
            raise RuntimeError("compute: no image was added; call update() first")
        return _scores(self._sums, self.thresholds, self.images, self.empty_score)


__all__ = ["MatchingScores", "ObjectMatching", "match_instances", "matched_pairs"]
