# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Exact squared distances to the nearest and second-nearest distinct label, in one separable pass.

Every voxel carries (f1, l1, f2, l2): the two smallest squared distances to two distinct labels
over the axes processed so far, and those labels (inf and 0 for none). Axis 2 (contiguous) is
transformed from the labels by two scans per line; axes 1 and 0 then combine, per line, the two
entries of every column y into x's top two distinct labels over f_k[y] + w (x - y)^2, w the
axis's squared spacing.

Why two entries per column suffice: every stored value is a true distance to its label, so the
result is never too small; and a column that does not store the true second label L2 at x stores
two distinct labels each no farther than L2 there, so two distinct candidates no farther than d2
(and one no farther than d1) always survive. By induction over the axes the values are exact;
labels are exact up to ties.

One line of a later axis (the columns with a finite f1, in order, grouped into maximal runs of
equal l1):

- d1 is the lower envelope E1 of the f1 parabolas (Felzenszwalb and Huttenlocher). Its winner's
  label L(x) is x's nearest label, and since parabolas of one width cross once, the winner's
  column (so its run) never decreases with x.
- d2 = min(A(x), E2(x)), where E2 is the envelope of all f2 parabolas, labels ignored, and A(x)
  the smallest f1 parabola among columns whose l1 differs from L(x). An f2 term of a column whose
  l1 differs from L(x) is not below that column's f1 term, so it cannot undercut A; and where
  E2 < A strictly, its winner's l1 is L(x), so its l2 differs from L(x): the label is valid.
- A(x) is the smaller of a left and a right part. The left part is the envelope of the columns
  left of the run that holds x's winner, queried at x before that run is added to an envelope
  built left to right; the right part is the mirror image. Where the queried winner carries L(x)
  (a label that owns several runs of the line: a comb) a scan outwards from the run, skipping
  L(x)'s columns, finishes the job; it stops as soon as w (x - y)^2 alone exceeds the best value.

The kernel holds no Python objects and releases the GIL.
"""

import numpy as np

from libc.math cimport INFINITY, exp, sqrt

ctypedef int label_t  # int32 ids: the caller renumbers ids beyond its range (the kernel only compares them)


cdef inline void _see(label_t c, Py_ssize_t x, Py_ssize_t* near, label_t* near_label, Py_ssize_t* other,
                       label_t* other_label) noexcept nogil:
    """One step of a scan: after pixel x (label c), the nearest object pixel seen and the nearest
    pixel seen whose label differs from that one's."""
    if c != 0:
        if c != near_label[0]:
            other[0] = near[0]
            other_label[0] = near_label[0]
            near_label[0] = c
        near[0] = x


cdef inline double _squared_gap(Py_ssize_t y, Py_ssize_t x, double w) noexcept nogil:
    """w (x - y)^2, or inf when there is no such pixel (y < 0)."""
    cdef double d
    if y < 0:
        return INFINITY
    d = <double>(x - y)
    return w * d * d


cdef void _first_axis(const label_t* labels, Py_ssize_t n, double w, Py_ssize_t* left,
                      double* f1, label_t* l1, double* f2, label_t* l2) noexcept nogil:
    """Axis 2 of one line, from the labels: exact top two distinct labels along the line.

    On each side of x, the nearest object pixel (label a) and the nearest pixel of a label other
    than a are enough: the top two distinct of those four candidates are exact. A forward scan
    notes the left pair of every x (positions in ``left``, 2n entries); the backward scan pairs
    it with the right one and writes the result once.
    """
    cdef Py_ssize_t x, near = -1, other = -1, lnear, lother
    cdef label_t near_label = 0, other_label = 0, first_label
    cdef double dl1, dl2, dr1, dr2, first, second
    for x in range(n):
        _see(labels[x], x, &near, &near_label, &other, &other_label)
        left[2 * x] = near
        left[2 * x + 1] = other
    near = -1
    other = -1
    near_label = 0
    other_label = 0
    x = n - 1
    while x >= 0:
        _see(labels[x], x, &near, &near_label, &other, &other_label)
        lnear = left[2 * x]
        lother = left[2 * x + 1]
        dl1 = _squared_gap(lnear, x, w)
        dl2 = _squared_gap(lother, x, w)
        dr1 = _squared_gap(near, x, w)
        dr2 = _squared_gap(other, x, w)
        # The nearer first candidate wins; the runner-up is the best candidate of another label:
        # the same side's second (another label by construction) or the other side's first, or
        # its second where the first repeats the winner's label.
        if dl1 <= dr1:
            if lnear < 0:
                first = INFINITY
                first_label = 0
                second = INFINITY
                l2[x] = 0
            else:
                first = dl1
                first_label = labels[lnear]
                second = dl2
                l2[x] = labels[lother] if lother >= 0 else 0
                if near >= 0 and near_label != first_label:
                    if dr1 < second:
                        second = dr1
                        l2[x] = near_label
                elif other >= 0 and dr2 < second:
                    second = dr2
                    l2[x] = other_label
        else:
            first = dr1
            first_label = near_label
            second = dr2
            l2[x] = other_label if other >= 0 else 0
            if lnear >= 0 and labels[lnear] != first_label:
                if dl1 < second:
                    second = dl1
                    l2[x] = labels[lnear]
            elif lother >= 0 and dl2 < second:
                second = dl2
                l2[x] = labels[lother]
        f1[x] = first
        l1[x] = first_label
        f2[x] = second
        x -= 1


cdef struct Envelope:
    # The lower envelope of parabolas g[v[i]] + w (x - v[i])^2 for the columns added so far:
    # parabola v[i] is lowest on [z[i], z[i + 1]); z[0] = -inf, z[k + 1] = +inf.
    Py_ssize_t* v
    double* z
    Py_ssize_t k

# A sweep reads a line through (g, s): column q's value is g[s q]. s = 1 reads it as it is; s = -1,
# with g at the line's last entry, reads it mirrored, so a right-to-left sweep is the left-to-right
# code on mirrored columns, without a mirrored copy.


cdef inline double _cross(const double* g, Py_ssize_t s, double w, Py_ssize_t q, Py_ssize_t p) noexcept nogil:
    """Where the parabola of column q (q > p) drops below that of column p (one division)."""
    return (g[s * q] - g[s * p] + w * <double>(q * q - p * p)) / (2.0 * w * <double>(q - p))


cdef inline void _push(Envelope* e, const double* g, Py_ssize_t s, double w, Py_ssize_t q) noexcept nogil:
    """Add column q, right of every column already in ``e``."""
    cdef double z = -INFINITY
    # Drop the parabolas that column q's undercuts over their whole segment.
    while e.k >= 0:
        z = _cross(g, s, w, q, e.v[e.k])
        if z > e.z[e.k]:
            break
        e.k -= 1
    if e.k < 0:
        z = -INFINITY  # q is lowest everywhere
    e.k += 1
    e.v[e.k] = q
    e.z[e.k] = z
    e.z[e.k + 1] = INFINITY


cdef inline Py_ssize_t _locate(const Envelope* e, double x, Py_ssize_t i) noexcept nogil:
    """The envelope segment that holds x, walking from segment ``i`` (a previous answer).

    Queries come with x increasing, and pushes only change the envelope right of their new
    breakpoint: a previous answer that a push removed is at most one segment past the right one.
    So the walk is amortised O(1) per query, where a binary search would be O(log n).
    """
    if i > e.k:
        i = e.k
    while i > 0 and e.z[i] > x:
        i -= 1
    while e.z[i + 1] <= x:
        i += 1
    return i


cdef void _envelope_of(Envelope* e, const double* g, Py_ssize_t n, double w,
                       double* value, Py_ssize_t* winner) noexcept nogil:
    """The lower envelope of the finite g parabolas at every x: its value and winning column."""
    cdef Py_ssize_t x, i = 0, y
    cdef double d
    e.k = -1
    for y in range(n):
        if g[y] < INFINITY:
            _push(e, g, 1, w, y)
    if e.k < 0:
        for x in range(n):
            value[x] = INFINITY
            winner[x] = -1
        return
    for x in range(n):
        while e.z[i + 1] <= <double>x:
            i += 1
        y = e.v[i]
        d = <double>(x - y)
        value[x] = g[y] + w * d * d
        winner[x] = y


cdef double _scan(const double* g, const label_t* lab, Py_ssize_t s, Py_ssize_t start, Py_ssize_t x,
                  label_t skip, double w, double best, label_t* best_label) noexcept nogil:
    """The smallest g[y] + w (x - y)^2 over y = start, start - 1, ..., 0 (read through s) whose label is
    not ``skip``, below ``best``; stops once y is left of x and w (x - y)^2 alone reaches the best
    value. The caller seeds ``best_label`` with the label of the ``best`` it passes in."""
    cdef Py_ssize_t y = start
    cdef double d, value
    while y >= 0:
        d = <double>(x - y)
        # Only left of x does the distance grow with every step (the scan may start right of x).
        if y <= x and w * d * d >= best:
            break
        if g[s * y] < INFINITY and lab[s * y] != skip:
            value = g[s * y] + w * d * d
            if value < best:
                best = value
                best_label[0] = lab[s * y]
        y -= 1
    return best


cdef void _other_label(Envelope* e, const double* g, const label_t* lab, Py_ssize_t n, double w,
                       const Py_ssize_t* winner, const Py_ssize_t* run_of, const Py_ssize_t* first,
                       const Py_ssize_t* last, const label_t* nearest, double* best, label_t* best_label,
                       bint mirrored) noexcept nogil:
    """One part of A(x), in place: lower ``best[x]`` to the smallest f1 parabola of the columns left
    of the run holding x's winner (right of it when ``mirrored``) whose label differs from
    ``nearest[x]``.

    Columns are added run by run to an envelope built in the sweep's direction; the queries of the
    x whose winner lies in run j run just before run j is added. The mirrored sweep works in
    mirrored coordinates t = n - 1 - x, reading the line through s = -1.
    """
    cdef Py_ssize_t s = -1 if mirrored else 1
    cdef const double* gs = g + (n - 1 if mirrored else 0)
    cdef const label_t* ls = lab + (n - 1 if mirrored else 0)
    cdef Py_ssize_t t, x, y = 0, j, c, stop, segment = 0
    cdef double d, value
    cdef label_t found
    e.k = -1
    for t in range(n):
        x = n - 1 - t if mirrored else t
        j = run_of[winner[x]]
        # Add every column before run j, in the sweep's coordinates.
        stop = n - 1 - last[j] if mirrored else first[j]
        while y < stop:
            if gs[s * y] < INFINITY:
                _push(e, gs, s, w, y)
            y += 1
        if e.k >= 0:
            segment = _locate(e, <double>t, segment)
            c = e.v[segment]
            if ls[s * c] != nearest[x]:
                d = <double>(t - c)
                value = gs[s * c] + w * d * d
                if value < best[x]:
                    best[x] = value
                    best_label[x] = ls[s * c]
            else:
                # A comb: the lowest parabola carries x's own label; scan past it.
                found = best_label[x]
                best[x] = _scan(gs, ls, s, stop - 1, t, nearest[x], w, best[x], &found)
                best_label[x] = found


cdef inline void _runs(const double* g, const label_t* lab, Py_ssize_t n, Py_ssize_t* run_of,
                       Py_ssize_t* first, Py_ssize_t* last) noexcept nogil:
    """Number the maximal runs of equal label over the finite columns: ``run_of[y]`` for each finite
    column, and the first and last finite column of each run (the inf columns between runs add
    nothing to an envelope)."""
    cdef Py_ssize_t y, runs = 0
    cdef label_t previous = 0
    for y in range(n):
        if g[y] < INFINITY:
            if runs == 0 or lab[y] != previous:
                first[runs] = y
                runs += 1
                previous = lab[y]
            run_of[y] = runs - 1
            last[runs - 1] = y


cdef void _later_axis(Py_ssize_t n, double w, double* g1, label_t* a1, double* g2, label_t* a2,
                      double* dbuf, label_t* lbuf, Py_ssize_t* ibuf) noexcept nogil:
    """One line of a later axis, in place on the line's (g1, a1, g2, a2).

    Scratch: ``dbuf`` 4n + 2 doubles, ``lbuf`` 3n labels, ``ibuf`` 6n + 1 indices.
    """
    cdef Py_ssize_t x
    cdef double* e1 = dbuf
    cdef double* e2 = dbuf + n
    cdef double* best = dbuf + 2 * n
    cdef label_t* best_label = lbuf
    cdef label_t* e2_label = lbuf + n
    cdef label_t* nearest = lbuf + 2 * n
    cdef Py_ssize_t* winner = ibuf
    cdef Py_ssize_t* winner2 = ibuf + n
    cdef Py_ssize_t* run_of = ibuf + 2 * n
    cdef Py_ssize_t* first = ibuf + 3 * n
    cdef Py_ssize_t* last = ibuf + 4 * n
    cdef Envelope e
    e.v = ibuf + 5 * n                         # n + 1
    e.z = dbuf + 3 * n                         # n + 2

    _envelope_of(&e, g1, n, w, e1, winner)
    if winner[0] < 0:
        return  # no label on this line: everything stays inf
    _envelope_of(&e, g2, n, w, e2, winner2)
    for x in range(n):
        nearest[x] = a1[winner[x]]
        e2_label[x] = a2[winner2[x]] if winner2[x] >= 0 else 0
        best[x] = INFINITY
        best_label[x] = 0
    _runs(g1, a1, n, run_of, first, last)
    _other_label(&e, g1, a1, n, w, winner, run_of, first, last, nearest, best, best_label, False)
    _other_label(&e, g1, a1, n, w, winner, run_of, first, last, nearest, best, best_label, True)
    for x in range(n):
        # d2 = min(A, E2); on a tie A's label, which certainly differs from the nearest one.
        if e2[x] < best[x]:
            g2[x] = e2[x]
            a2[x] = e2_label[x]
        else:
            g2[x] = best[x]
            a2[x] = best_label[x]
        g1[x] = e1[x]
        a1[x] = nearest[x]


def nearest_two_squared(labels, spacing, Py_ssize_t threads=1):
    """Squared distances (d1², d2²) to the nearest and second-nearest distinct nonzero label.

    ``labels``: a C-contiguous int32 array of non-negative ids, of shape (P, M, N); ``spacing``: three positive floats;
    ``threads``: how many native threads share each axis's lines (the GIL released), >= 1.
    Returns two new float64 arrays of that shape, inf where there is no such label. Every line is
    computed alone, so the result is the same bit for bit whatever ``threads`` is.
    """
    cdef const label_t[:, :, ::1] lab = labels
    cdef Py_ssize_t P = lab.shape[0], M = lab.shape[1], N = lab.shape[2]
    f1_arr = np.empty((P, M, N), dtype=np.float64)
    f2_arr = np.empty((P, M, N), dtype=np.float64)
    if P * M * N == 0:
        return f1_arr, f2_arr
    l1_arr = np.empty((P, M, N), dtype=np.int32)
    l2_arr = np.empty((P, M, N), dtype=np.int32)
    arrays = (labels, f1_arr, l1_arr, f2_arr, l2_arr)
    # One job per axis: its independent lines (rows, or blocks of BLOCK columns) split into ranges.
    jobs = [(_first_axis_rows, (float(spacing[2]) ** 2,), P * M)]
    if M > 1:
        jobs.append((_later_blocks, (M, N, float(spacing[1]) ** 2), P * _blocks(N)))
    if P > 1:
        jobs.append((_later_blocks, (P, M * N, float(spacing[0]) ** 2), _blocks(M * N)))
    if threads <= 1:
        for run, options, items in jobs:
            run(arrays, options, 0, items)
        return f1_arr, f2_arr
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=threads) as pool:
        for run, options, items in jobs:
            # An axis starts once the one before it is complete everywhere.
            bounds = [items * t // threads for t in range(threads + 1)]
            ranges = [(bounds[t], bounds[t + 1]) for t in range(threads) if bounds[t + 1] > bounds[t]]
            for done in [pool.submit(run, arrays, options, a, b) for a, b in ranges]:
                done.result()
    return f1_arr, f2_arr


cdef inline Py_ssize_t _blocks(Py_ssize_t inner) noexcept nogil:
    return (inner + BLOCK - 1) // BLOCK


def _first_axis_rows(arrays, options, Py_ssize_t start, Py_ssize_t stop):
    """The contiguous axis of rows [start, stop) of the (P·M, N) view."""
    cdef const label_t[:, :, ::1] lab = arrays[0]
    cdef double[:, :, ::1] f1 = arrays[1]
    cdef label_t[:, :, ::1] l1 = arrays[2]
    cdef double[:, :, ::1] f2 = arrays[3]
    cdef label_t[:, :, ::1] l2 = arrays[4]
    cdef Py_ssize_t M = lab.shape[1], N = lab.shape[2], r, p, m
    cdef double w = options[0]
    cdef Py_ssize_t[::1] left = np.empty(2 * N, dtype=np.intp)
    with nogil:
        for r in range(start, stop):
            p = r // M
            m = r - p * M
            _first_axis(&lab[p, m, 0], N, w, &left[0], &f1[p, m, 0], &l1[p, m, 0], &f2[p, m, 0], &l2[p, m, 0])


def _later_blocks(arrays, options, Py_ssize_t start, Py_ssize_t stop):
    """The middle axis of the arrays viewed as (outer, n, inner), for blocks [start, stop) of BLOCK lines."""
    cdef double[::1] f1 = arrays[1].reshape(-1)
    cdef label_t[::1] l1 = arrays[2].reshape(-1)
    cdef double[::1] f2 = arrays[3].reshape(-1)
    cdef label_t[::1] l2 = arrays[4].reshape(-1)
    cdef Py_ssize_t n = options[0], inner = options[1]
    cdef double w = options[2]
    # Scratch for one line (see _later_axis for the layout) and one block, this range's own.
    cdef double[::1] dbuf = np.empty(4 * n + 2, dtype=np.float64)
    cdef label_t[::1] lbuf = np.empty(3 * n, dtype=np.int32)
    cdef Py_ssize_t[::1] ibuf = np.empty(6 * n + 1, dtype=np.intp)
    cdef double[::1] block_f = np.empty(2 * BLOCK * _row_stride(n), dtype=np.float64)
    cdef label_t[::1] block_l = np.empty(2 * BLOCK * _row_stride(n), dtype=np.int32)
    with nogil:
        _later_pass(&f1[0], &l1[0], &f2[0], &l2[0], n, inner, w, start, stop,
                    &dbuf[0], &lbuf[0], &ibuf[0], &block_f[0], &block_l[0])


cdef enum:
    BLOCK = 16  # lines gathered at once: neighbouring lines share every cache line of a strided read


cdef inline Py_ssize_t _row_stride(Py_ssize_t n) noexcept nogil:
    """n rounded up to an odd number of 64-byte lines of 8-byte values."""
    cdef Py_ssize_t lines = (n + 7) // 8
    if lines % 2 == 0:
        lines += 1
    return lines * 8


cdef void _later_pass(double* f1, label_t* l1, double* f2, label_t* l2, Py_ssize_t n, Py_ssize_t inner,
                      double w, Py_ssize_t start, Py_ssize_t stop, double* dbuf, label_t* lbuf, Py_ssize_t* ibuf,
                      double* block_f, label_t* block_l) noexcept nogil:
    """Transform the middle axis of arrays viewed as (outer, n, inner), BLOCK lines at a time: the
    blocks [start, stop) in the order (o, j), _blocks(inner) of them per o.

    Scratch: ``dbuf``, ``lbuf`` and ``ibuf`` as :func:`_later_axis` needs them, ``block_f``
    2 BLOCK ld doubles and ``block_l`` 2 BLOCK ld labels, ld = _row_stride(n).
    """
    cdef Py_ssize_t o, j, x, b, base, width, at, k, per_outer = _blocks(inner)
    # Line b of a block lives at [b ld, b ld + n) of each block buffer. ld is n rounded up to an odd
    # number of cache lines: with a power-of-two stride (n = 512, say) the 2 BLOCK lines written
    # for one x all fall into one cache set and evict each other.
    cdef Py_ssize_t ld = _row_stride(n)
    for k in range(start, stop):
        o = k // per_outer
        j = (k - o * per_outer) * BLOCK
        width = BLOCK if inner - j >= BLOCK else inner - j
        base = o * n * inner + j
        for x in range(n):
            at = base + x * inner
            for b in range(width):
                block_f[b * ld + x] = f1[at + b]
                block_f[(BLOCK + b) * ld + x] = f2[at + b]
                block_l[b * ld + x] = l1[at + b]
                block_l[(BLOCK + b) * ld + x] = l2[at + b]
        for b in range(width):
            _later_axis(n, w, block_f + b * ld, block_l + b * ld, block_f + (BLOCK + b) * ld,
                        block_l + (BLOCK + b) * ld, dbuf, lbuf, ibuf)
        for x in range(n):
            at = base + x * inner
            for b in range(width):
                f1[at + b] = block_f[b * ld + x]
                f2[at + b] = block_f[(BLOCK + b) * ld + x]
                l1[at + b] = block_l[b * ld + x]
                l2[at + b] = block_l[(BLOCK + b) * ld + x]


def add_border_term(f1_arr, f2_arr, labels, weights, double scale, double w0, double sigma, double cutoff,
                    bint background_only, Py_ssize_t threads=1):
    """Add w0 exp(-(d1 + d2)^2 / 2 sigma^2) to ``weights`` where d1 + d2 <= ``cutoff``, in one pass.

    ``f1_arr``, ``f2_arr``: the squared distances of :func:`nearest_two_squared` in the rescaled
    units (d = scale sqrt(f)); ``labels``: the kernel's int32 labels; ``weights``: float32, the
    same (P, M, N) shape, updated in place. With ``background_only`` only label-0 pixels change.
    The sum is formed as numpy would form it (sqrt, scale, add, divide by sigma) so that the map
    equals the plain formula to rounding. ``threads`` share the pixels, each a range of its own.
    """
    arrays = (f1_arr.reshape(-1), f2_arr.reshape(-1), labels.reshape(-1), weights.reshape(-1))
    options = (scale, w0, sigma, cutoff, background_only)
    size = arrays[0].shape[0]
    if threads <= 1:
        _border_range(arrays, options, 0, size)
        return
    from concurrent.futures import ThreadPoolExecutor

    bounds = [size * t // threads for t in range(threads + 1)]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for done in [pool.submit(_border_range, arrays, options, bounds[t], bounds[t + 1]) for t in range(threads)]:
            done.result()


def _border_range(arrays, options, Py_ssize_t start, Py_ssize_t stop):
    cdef const double[::1] f1 = arrays[0]
    cdef const double[::1] f2 = arrays[1]
    cdef const label_t[::1] lab = arrays[2]
    cdef float[::1] w = arrays[3]
    cdef double scale = options[0], w0 = options[1], sigma = options[2], cutoff = options[3]
    cdef bint background_only = options[4]
    cdef Py_ssize_t i
    cdef double total, z
    with nogil:
        for i in range(start, stop):
            if background_only and lab[i] != 0:
                continue
            total = sqrt(f1[i]) * scale + sqrt(f2[i]) * scale
            if total <= cutoff:
                z = total / sigma
                w[i] = <float>(<double>w[i] + w0 * exp(-0.5 * z * z))
