"""Numba kernels: log-likelihood, score and information of the multinomial logit on a chunk.

Conventions
-----------
``K`` outcomes, of which one is the reference; ``J = K - 1`` equations; ``p`` design columns.

* ``X`` is an ``(n, p)`` float64 C-contiguous array, ``y`` an ``(n,)`` int64 array holding the
  equation index ``0 .. J-1`` of each row's outcome, or ``-1`` for the reference outcome, and
  ``w`` an ``(n,)`` float64 array of non-negative row weights.
* ``beta`` is the ``(J, p)`` coefficient matrix; its flat (C-order) view is the package's one
  parameter vector, ordered outcome-major: all terms of the first non-reference outcome, then the
  next.  The score and information use the same flat order.
* With :math:`\\eta_{ij} = x_i^\\top \\beta_j` and :math:`\\eta_{i,\\mathrm{ref}} = 0`,

  .. math::

     \\ell = \\sum_i w_i \\Big(\\eta_{i y_i} - \\log\\big(1 + \\sum_j e^{\\eta_{ij}}\\big)\\Big),
     \\qquad
     \\frac{\\partial \\ell}{\\partial \\beta_j} = \\sum_i w_i (d_{ij} - P_{ij}) x_i,

  and the information (minus the Hessian) is

  .. math::

     \\mathcal{I} = \\sum_i w_i \\big(\\operatorname{diag}(P_i) - P_i P_i^\\top\\big)
     \\otimes x_i x_i^\\top
     = \\operatorname{blockdiag}_j\\big(X^\\top W P_j X\\big) - B^\\top B,
     \\qquad B_{i\\cdot} = \\sqrt{w_i}\\,(P_{i1} x_i^\\top, \\dots, P_{iJ} x_i^\\top).

The exponentials are max-subtracted (log-sum-exp), so no finite input overflows or yields NaN.

How a chunk is evaluated
------------------------
The per-chunk primitive is :func:`chunk_derivatives`.  The two products with the design,
:math:`E = X\\beta^\\top` and the score :math:`R^\\top X`, are BLAS matrix products on the chunk;
the exponentials are one vectorised ``np.exp`` over the chunk's ``(m, J)`` block; the rest (row
maxima, normalisation, log-likelihood, residuals) are small Numba loops.  The information is
accumulated from the BLAS products :math:`B^\\top B` and :math:`S^\\top B` with
:math:`S = \\sqrt{W} X`, whose ``p x p`` diagonal blocks are the :math:`X^\\top W P_j X`.  The
BLAS calls release the GIL, so a driver can evaluate chunks in parallel threads (each with its
own buffers and accumulators).

For many outcomes, where the ``(J p)^2`` information is out of reach, the matrix-free kernels
give what conjugate gradients need: :func:`chunk_hessian_vector` (the information times a
direction, three thin products per chunk; :func:`hessian_vector_at` with the chunk's
probabilities kept) and :func:`chunk_block_information` (the ``J`` diagonal ``p x p`` blocks
and their sum over all blocks, one product of ``J p^2`` flops a row).

The Numba parts never allocate; the work buffers are sized by the caller to one chunk, so memory
stays flat in ``n``.  Every backend (in-memory, chunked out-of-core, Dask) sums these per-chunk
results in a fixed order.
"""

from __future__ import annotations

import numba as nb
import numpy as np

__all__ = [
    "chunk_derivatives",
    "chunk_hessian_vector",
    "hessian_vector_at",
    "chunk_probabilities_nonref",
    "chunk_block_information",
    "unpack_blocks",
    "chunk_probabilities",
    "chunk_linear",
    "scan_columns",
    "chunk_pair_stats",
    "chunk_separation_summary",
    "chunk_meat",
    "chunk_cluster_sums",
    "group_order",
    "sorted_cluster_sums",
    "HessianWorkspace",
    "softmax_rows",
    "margeff_shared_factors",
    "margeff_row_weights",
    "margeff_level_weights",
    "ScoreWorkspace",
]


@nb.njit(cache=True, nogil=True)
def _row_max(e):
    """The largest of a row's linear predictors ``e`` and the reference's 0."""
    mx = 0.0
    for v in e:
        if v > mx:
            mx = v
    return mx


@nb.njit(cache=True, nogil=True)
def _row_softmax(x_row, beta, eta):
    """Fill ``eta`` with the row's linear predictors; return ``(m, log-sum-exp)``.

    ``m`` is the max over ``eta`` and the reference's 0, so ``exp(eta - m) <= 1``.
    """
    J, p = beta.shape
    m = 0.0
    for j in range(J):
        s = 0.0
        for k in range(p):
            s += x_row[k] * beta[j, k]
        eta[j] = s
        if s > m:
            m = s
    tot = np.exp(-m)
    for j in range(J):
        tot += np.exp(eta[j] - m)
    return m, m + np.log(tot)


# --- fit kernels ---


@nb.njit(cache=True, nogil=True)
def _shift_rows(E, y, shift, own):
    """Subtract each row's max (over ``E`` and the reference's 0) in place.

    ``shift[i]`` keeps the max and ``own[i]`` the shifted linear predictor of the row's own
    outcome, so the log-likelihood needs no logarithm of a possibly underflowed exponential.
    """
    m, J = E.shape
    for i in range(m):
        mx = 0.0
        for j in range(J):
            if E[i, j] > mx:
                mx = E[i, j]
        for j in range(J):
            E[i, j] -= mx
        shift[i] = mx
        own[i] = E[i, y[i]] if y[i] >= 0 else -mx


@nb.njit(cache=True, nogil=True)
def _normalise_rows(E, y, w, shift, own, R):
    """``E`` holds ``exp(eta - max)``: turn it into probabilities, ``R = w (d - P)``; return the
    rows' log-likelihood."""
    m, J = E.shape
    ll = 0.0
    for i in range(m):
        tot = np.exp(-shift[i])
        for j in range(J):
            tot += E[i, j]
        inv = 1.0 / tot
        wi = w[i]
        if wi != 0.0:
            ll += wi * (own[i] - np.log(tot))
        yi = y[i]
        for j in range(J):
            pij = E[i, j] * inv
            E[i, j] = pij
            R[i, j] = wi * ((1.0 if yi == j else 0.0) - pij)
    return ll


@nb.njit(cache=True, nogil=True)
def _fill_factors(P, w, X, B, S):
    """Factors of the information: ``B[i, j*p + k] = sqrt(w_i) P_ij x_ik`` and
    ``S[i, k] = sqrt(w_i) x_ik``."""
    m, J = P.shape
    p = X.shape[1]
    for i in range(m):
        sw = np.sqrt(w[i])
        for k in range(p):
            S[i, k] = sw * X[i, k]
        for j in range(J):
            b = sw * P[i, j]
            off = j * p
            for k in range(p):
                B[i, off + k] = b * X[i, k]


class HessianWorkspace:
    """Work buffers for :func:`chunk_derivatives`, sized for chunks of at most ``rows`` rows.

    Holding them in one object lets a driver reuse the same memory for every chunk and every
    Newton iteration.
    """

    def __init__(self, rows: int, p: int, J: int):
        self.rows, self.p, self.J = int(rows), int(p), int(J)
        self.E = np.empty((self.rows, J))
        self.R = np.empty((self.rows, J))
        self.shift = np.empty(self.rows)
        self.own = np.empty(self.rows)
        self._factors = None

    def factors(self):
        """The factors ``B`` (rows, J p) and ``S`` (rows, p) of the information, allocated on
        first use (evaluations without the information never need them)."""
        if self._factors is None:
            J, p, m = self.J, self.p, self.rows
            self._factors = (np.empty((m, J * p)), np.empty((m, p)))
        return self._factors

    def new_accumulator(self):
        """A zero information accumulator."""
        q = self.J * self.p
        return np.zeros((q, q))


def chunk_derivatives(X, y, w, beta, score, acc=None, work=None):
    """Per-chunk primitive: log-likelihood, score and (optionally) information.

    Parameters
    ----------
    X, y, w, beta
        One chunk of rows, see the module Conventions.
    score : ndarray, shape (J, p)
        Accumulator; the chunk's score is added in place.
    acc : ndarray, shape (J p, J p), optional
        Information accumulator (e.g. ``work.new_accumulator()``); the chunk's information is
        added in place.  When ``None`` only the log-likelihood and the score are computed.
    work : HessianWorkspace
        Buffers of at least ``len(X)`` rows.

    Returns
    -------
    float
        The chunk's log-likelihood.
    """
    m = X.shape[0]
    E, R = work.E[:m], work.R[:m]
    shift, own = work.shift[:m], work.own[:m]
    np.matmul(X, beta.T, out=E)
    _shift_rows(E, y, shift, own)
    np.exp(E, out=E)
    ll = _normalise_rows(E, y, w, shift, own, R)
    score += R.T @ X
    if acc is None:
        return ll
    B, S = work.factors()
    B, S = B[:m], S[:m]
    _fill_factors(E, w, X, B, S)
    # B'B is a product of a matrix with its own transpose: NumPy hands it to BLAS syrk (and
    # releases the GIL, so a driver can run chunks in parallel threads), exactly symmetric.
    acc -= B.T @ B
    # The diagonal blocks X' W P_j X are the p x p blocks of one product S'B.
    G = S.T @ B
    p = X.shape[1]
    for j in range(beta.shape[0]):
        g = G[:, j * p : (j + 1) * p]
        acc[j * p : (j + 1) * p, j * p : (j + 1) * p] += 0.5 * (g + g.T)
    return ll


@nb.njit(cache=True, nogil=True)
def scan_columns(X, bad):
    """One pass over the rows: each column's smallest and largest finite value, and
    ``bad[i] = True`` for each row holding NaN or inf (no temporaries).

    Branch-free in the inner loop (``v - v`` is 0 exactly for finite ``v``, NaN otherwise;
    selects instead of ``if``), so the compiler vectorises it across columns: the scan then
    runs at about the speed of reading ``X``.
    """
    n, p = X.shape
    lo = np.full(p, np.inf)
    hi = np.full(p, -np.inf)
    for i in range(n):
        nonfinite = 0
        for k in range(p):
            v = X[i, k]
            finite = (v - v) == 0.0
            nonfinite += 0 if finite else 1
            a = v if finite else np.inf
            b = v if finite else -np.inf
            lo[k] = a if a < lo[k] else lo[k]
            hi[k] = b if b > hi[k] else hi[k]
        bad[i] = nonfinite > 0
    return lo, hi


@nb.njit(cache=True, nogil=True)
def summarize_values(v, check_integers):
    """One pass over a 1-D array: its smallest and largest value (NaN if it holds a NaN, as
    NumPy's ``min``/``max``) and whether every value is an integer (finite and whole; only
    looked at with ``check_integers``)."""
    lo, hi = np.inf, -np.inf
    integers = check_integers
    nan = False
    for i in range(v.shape[0]):
        x = float(v[i])
        if x != x:
            nan = True
            integers = False
            continue
        if x < lo:
            lo = x
        if x > hi:
            hi = x
        if integers and not (np.isfinite(x) and np.floor(x) == x):
            integers = False
    if nan:
        return np.nan, np.nan, False
    return lo, hi, integers


@nb.njit(cache=True, nogil=True)
def chunk_pair_stats(E, y, w, out):
    """Accumulate statistics of :math:`a_{ik} = e_{i y_i} - e_{ik}` over rows with ``w > 0``.

    ``E`` holds ``(m, J)`` linear predictors along a direction (the reference's is 0).  ``out``
    (length 4) gets ``+= sum w a^+``, ``+= sum w a^-`` (positive and negative parts), and the
    running minimum and maximum of ``a``.  Used by the separation checks to ask whether a
    direction raises every observed outcome's odds against every other outcome.
    """
    m, J = E.shape
    for i in range(m):
        wi = w[i]
        if not wi > 0.0:
            continue
        own = E[i, y[i]] if y[i] >= 0 else 0.0
        for k in range(J + 1):
            a = own - (E[i, k] if k < J else 0.0)
            if a > 0.0:
                out[0] += wi * a
            else:
                out[1] -= wi * a
            if a < out[2]:
                out[2] = a
            if a > out[3]:
                out[3] = a


@nb.njit(cache=True, nogil=True)
def chunk_separation_summary(X, y, w, colscale, D, strict_tol, counts, involved, B, S):
    """What a recession direction does to the rows of one chunk with ``w > 0``.

    With :math:`\\tilde x_i = x_i / \\text{colscale}` and
    :math:`a_{ik} = \\tilde x_i^\\top (d_{y_i} - d_k)` over the outcomes :math:`k \\ne y_i`
    (``D``: ``(J, p)``, the reference's row 0), a pair is strict when
    :math:`a_{ik} >` ``strict_tol``.  Adds to ``counts`` the rows' weight, the weight of rows
    with some strict pair, the weight of rows with every pair strict, and the number of rows
    with some pair not strict; sets ``involved[k]`` (``k = J``: the reference) for both
    outcomes of every strict pair.  Packs, for the information of the limit (each row's
    probability spread evenly over its own outcome and those tied with it), the factors
    ``B[r, j p + k] = sqrt(w_i) P_ij x~_ik`` and ``S[r, k] = sqrt(w_i) x~_ik`` at the top of
    ``B`` and ``S``; returns the number of rows packed.
    """
    m, p = X.shape
    J = D.shape[0]
    alive = np.empty(J + 1, dtype=np.bool_)
    xs = np.empty(p)
    r = 0
    for i in range(m):
        wi = w[i]
        if not wi > 0.0:
            continue
        own = y[i] if y[i] >= 0 else J
        for k in range(p):
            xs[k] = X[i, k] / colscale[k]
        n_alive = 1
        n_strict = 0
        for o in range(J + 1):
            alive[o] = o == own
            if o == own:
                continue
            a = 0.0
            for k in range(p):
                a += xs[k] * ((D[own, k] if own < J else 0.0) - (D[o, k] if o < J else 0.0))
            if a > strict_tol:
                n_strict += 1
                involved[own] = True
                involved[o] = True
            else:
                alive[o] = True
                n_alive += 1
        counts[0] += wi
        if n_strict > 0:
            counts[1] += wi
        if n_strict == J:
            counts[2] += wi
        else:
            counts[3] += 1.0
        sw = np.sqrt(wi)
        for k in range(p):
            S[r, k] = sw * xs[k]
        for j in range(J):
            pj = sw / n_alive if alive[j] else 0.0
            for k in range(p):
                B[r, j * p + k] = pj * xs[k]
        r += 1
    return r


@nb.njit(cache=True, nogil=True)
def chunk_probabilities(X, beta, out):
    """Fitted probabilities of the ``J`` non-reference outcomes into ``out[:, :J]`` and of the
    reference outcome into ``out[:, J]``."""
    n = X.shape[0]
    J = beta.shape[0]
    eta = np.empty(J)
    for i in range(n):
        _, lse = _row_softmax(X[i], beta, eta)
        for j in range(J):
            out[i, j] = np.exp(eta[j] - lse)
        out[i, J] = np.exp(-lse)
    return out


@nb.njit(cache=True, nogil=True)
def chunk_linear(X, beta, out):
    """Linear predictors (log odds against the reference), shape ``(n, J)``."""
    n = X.shape[0]
    J = beta.shape[0]
    eta = np.empty(J)
    for i in range(n):
        _row_softmax(X[i], beta, eta)
        for j in range(J):
            out[i, j] = eta[j]
    return out


# --- kernels of the covariance meat and of matrix-free Newton ---


class ScoreWorkspace:
    """Work buffers for :func:`chunk_meat`, sized for chunks of at most ``rows`` rows: the
    linear predictors ``E`` ``(rows, J)`` and the scaled scores ``B`` ``(rows, J p)``.

    One per thread, reused for every chunk of its run, so a pass over the rows allocates
    nothing per chunk.
    """

    def __init__(self, rows: int, p: int, J: int):
        self.rows = int(rows)
        self.E = np.empty((self.rows, J))
        self.B = np.empty((self.rows, J * p))


@nb.njit(cache=True, nogil=True)
def _fill_scaled_scores(E, y, a, X, B):
    """Rows of ``B``: :math:`\\sqrt{a_i}\\, s_i` for the rows with ``a_i > 0``, packed at the top;
    returns their number.

    ``E`` holds the chunk's linear predictors and is overwritten by the max-shifted
    exponentials.  Packing leaves rows without weight out of the product that follows.
    """
    m, J = E.shape
    p = X.shape[1]
    r = 0
    for i in range(m):
        ai = a[i]
        if not ai > 0.0:
            continue
        mx = _row_max(E[i])
        tot = np.exp(-mx)
        for j in range(J):
            e = np.exp(E[i, j] - mx)
            E[i, j] = e
            tot += e
        inv = 1.0 / tot
        sa = np.sqrt(ai)
        yi = y[i]
        for j in range(J):
            c = sa * ((1.0 if yi == j else 0.0) - E[i, j] * inv)
            off = j * p
            for k in range(p):
                B[r, off + k] = c * X[i, k]
        r += 1
    return r


def chunk_meat(X, y, a, beta, out, work):
    """Add :math:`\\sum_i a_i s_i s_i^\\top` of one chunk to ``out`` (``(J p, J p)``).

    With ``a = f w^2`` (frequency times squared sampling weight) the sum is the meat of the
    robust sandwich.  No ``(m, J, p)`` temporaries: the scores scaled by :math:`\\sqrt{a_i}`
    are written into ``work.B`` (a :class:`ScoreWorkspace` of at least ``len(X)`` rows) and the
    sum is the one product :math:`B^\\top B`, which NumPy hands to BLAS ``syrk`` (half the flops
    of a general product, exactly symmetric, and the GIL is released so threads can run chunks
    in parallel).  ``a`` must be non-negative (it is :math:`f_i w_i^2`).
    """
    m = X.shape[0]
    E = work.E[:m]
    np.matmul(X, beta.T, out=E)
    r = _fill_scaled_scores(E, y, a, X, work.B)
    B = work.B[:r]
    out += B.T @ B


@nb.njit(cache=True, nogil=True)
def _add_row_score(x, yi, ai, beta, eta, out):
    """``out += a_i s_i`` for one row: :math:`s_i = (d_i - P_i) \\otimes x_i`, flat
    outcome-major (``eta``: a work vector of length ``J``)."""
    p = x.shape[0]
    _, lse = _row_softmax(x, beta, eta)
    for j in range(beta.shape[0]):
        r = ai * ((1.0 if yi == j else 0.0) - np.exp(eta[j] - lse))
        off = j * p
        for k in range(p):
            out[off + k] += r * x[k]


@nb.njit(cache=True, nogil=True)
def chunk_cluster_sums(X, y, a, codes, beta, g0, sums):
    """Add :math:`a_i s_i` of each row of one chunk whose group lies in
    ``g0 .. g0 + len(sums) - 1`` to ``sums[codes[i] - g0]`` (``sums``: ``(G, J p)``).

    Rows of other groups (and rows with ``a_i = 0``) are skipped before their probabilities
    are computed, so the groups can be visited in blocks, one pass per block, at the cost of
    one scan of the codes per block.  Nothing is allocated per row or per chunk.
    """
    m = X.shape[0]
    J = beta.shape[0]
    G = sums.shape[0]
    eta = np.empty(J)
    for i in range(m):
        g = codes[i] - g0
        if g < 0 or g >= G:
            continue
        ai = a[i]
        if ai == 0.0:
            continue
        _add_row_score(X[i], y[i], ai, beta, eta, sums[g])


@nb.njit(cache=True, nogil=True)
def group_order(codes, n_groups):
    """Stable counting sort of the rows by group: ``order`` ``(n,)`` lists the rows of group
    0, then of group 1, ... (each in row order), and the rows of group ``g`` are
    ``order[starts[g]:starts[g + 1]]`` (``starts``: ``(n_groups + 1,)``).  ``O(n + G)``."""
    n = codes.shape[0]
    starts = np.zeros(n_groups + 1, dtype=np.int64)
    for i in range(n):
        starts[codes[i] + 1] += 1
    for g in range(n_groups):
        starts[g + 1] += starts[g]
    fill = starts[:n_groups].copy()
    order = np.empty(n, dtype=np.int64)
    for i in range(n):
        g = codes[i]
        order[fill[g]] = i
        fill[g] += 1
    return order, starts


@nb.njit(cache=True, nogil=True)
def sorted_cluster_sums(X, y, a, beta, order, starts, g0, U):
    """``U[g - g0]`` = :math:`u_g = \\sum_{i \\in g} a_i s_i` for the groups
    ``g0 .. g0 + len(U) - 1``, their rows read through :func:`group_order`'s ``order`` and
    ``starts``.

    Each sum is added in row order with the arithmetic of :func:`chunk_cluster_sums`, so the
    two give the same numbers; here a group's sum is complete once its rows are read, so only
    a block of groups is ever held.
    """
    J = beta.shape[0]
    eta = np.empty(J)
    for b in range(U.shape[0]):
        g = g0 + b
        for c in range(U.shape[1]):
            U[b, c] = 0.0
        for t in range(starts[g], starts[g + 1]):
            i = order[t]
            ai = a[i]
            if ai == 0.0:
                continue
            _add_row_score(X[i], y[i], ai, beta, eta, U[b])


@nb.njit(cache=True, nogil=True)
def _softmax_in_place(E):
    """Turn the linear predictors ``E`` (``(m, J)``) into the non-reference probabilities, in
    place, max-subtracted (the reference's linear predictor is 0)."""
    m, J = E.shape
    for i in range(m):
        mx = _row_max(E[i])
        tot = np.exp(-mx)
        for j in range(J):
            e = np.exp(E[i, j] - mx)
            E[i, j] = e
            tot += e
        inv = 1.0 / tot
        for j in range(J):
            E[i, j] *= inv


@nb.njit(cache=True, nogil=True)
def _information_action(P, w, U):
    """``U <- w (P o U - P (P'U))`` row by row: the action of :math:`w_i(\\operatorname{diag}
    (P_i) - P_i P_i^\\top)` on each row's :math:`u_i`, in place."""
    m, J = P.shape
    for i in range(m):
        s = 0.0
        for j in range(J):
            s += P[i, j] * U[i, j]
        wi = w[i]
        for j in range(J):
            U[i, j] = wi * P[i, j] * (U[i, j] - s)


def chunk_hessian_vector(X, w, beta, V, out, work=None):
    """Add the information of one chunk times ``V`` (``(J, p)``, flat outcome-major) to
    ``out`` (``(J, p)``), without forming the information.

    With :math:`u_i = V x_i` and :math:`P_i` the non-reference probabilities of row ``i``,

    .. math::

        \\mathcal{I} v = \\sum_i w_i \\big(P_i \\circ u_i - P_i (P_i^\\top u_i)\\big)
        \\otimes x_i,

    that is :math:`T^\\top X` with :math:`T_{ij} = w_i P_{ij}(u_{ij} - P_i^\\top u_i)`: three
    thin BLAS products (:math:`X\\beta^\\top`, :math:`X V^\\top`, :math:`T^\\top X`), ``O(m J p)``
    flops, and ``O(m J)`` memory.  ``work`` (a :class:`HessianWorkspace` of at least
    ``len(X)`` rows) holds the two ``(m, J)`` blocks; without it they are allocated.
    """
    m = X.shape[0]
    J = beta.shape[0]
    if work is None:
        P, U = np.empty((m, J)), np.empty((m, J))
    else:
        P, U = work.E[:m], work.R[:m]
    np.matmul(X, beta.T, out=P)
    _softmax_in_place(P)
    hessian_vector_at(X, w, P, V, out, U)


def hessian_vector_at(X, w, P, V, out, U=None):
    """:func:`chunk_hessian_vector` with the chunk's probabilities ``P`` (``(m, J)``, the
    non-reference outcomes) already computed: what a solver that multiplies the information
    at one point by many vectors (conjugate gradients) repeats.  ``U``: an ``(m, J)`` buffer."""
    m, J = P.shape
    if U is None:
        U = np.empty((m, J))
    np.matmul(X, V.T, out=U)
    _information_action(P, w, U)
    out += U.T @ X


def chunk_probabilities_nonref(X, beta, out):
    """The non-reference probabilities ``(m, J)`` of a chunk into ``out``: one BLAS product
    and a max-subtracted softmax per row (no ``(m, J, p)`` temporary)."""
    np.matmul(X, beta.T, out=out)
    _softmax_in_place(out)
    return out


@nb.njit(cache=True, nogil=True)
def _block_weights(P, w, Z):
    """``Z[:, j] = w P_j (1 - P_j)`` for the equations ``j < J`` and ``Z[:, J] = w P_0 (1 - P_0)``
    for the reference outcome (:math:`P_0 = 1 - \\sum_j P_j`): each row's weight in the
    diagonal information blocks and in their sum."""
    m, J = P.shape
    for i in range(m):
        wi = w[i]
        total = 0.0
        for j in range(J):
            pij = P[i, j]
            total += pij
            Z[i, j] = wi * pij * (1.0 - pij)
        p0 = max(1.0 - total, 0.0)
        Z[i, J] = wi * p0 * (1.0 - p0)


@nb.njit(cache=True, nogil=True)
def _column_pairs(X, XX):
    """``XX[i, t] = X[i, k] X[i, l]`` over the pairs ``k <= l`` in row-major order."""
    m, p = X.shape
    for i in range(m):
        t = 0
        for k in range(p):
            xk = X[i, k]
            for ll in range(k, p):
                XX[i, t] = xk * X[i, ll]
                t += 1


def chunk_block_information(X, w, beta, out, work=None):
    """Add the chunk's diagonal blocks of the information, and the sum of all its blocks, to
    ``out`` (``(J + 1, p (p + 1) / 2)``, each block's upper triangle packed row-major;
    :func:`unpack_blocks` unfolds them).

    Rows ``0 .. J-1`` get the equations' diagonal blocks and row ``J`` the sum of all
    :math:`J^2` blocks, which is the information of the reference outcome's own binary
    contrast (with :math:`P_0 = 1 - \\sum_j P_j`, :math:`\\sum_{jl}(\\delta_{jl} P_j - P_j P_l)
    = P_0 (1 - P_0)`):

    .. math::

        \\mathcal{I}_{jj} = \\sum_i w_i P_{ij} (1 - P_{ij})\\, x_i x_i^\\top, \\qquad
        \\sum_{j, l} \\mathcal{I}_{jl} = \\sum_i w_i P_{i0} (1 - P_{i0})\\, x_i x_i^\\top.

    All ``J + 1`` of them are one BLAS product :math:`Z^\\top (x_{ik} x_{il})_{k \\le l}` of the
    ``(m, J + 1)`` row weights with the ``(m, p (p + 1) / 2)`` column products: ``J p^2 m``
    flops and no ``(J p)^2`` matrix (the preconditioner of Newton-CG).
    """
    m, p = X.shape
    J = beta.shape[0]
    P = np.empty((m, J)) if work is None else work.E[:m]
    Z = np.empty((m, J + 1))
    np.matmul(X, beta.T, out=P)
    _softmax_in_place(P)
    _block_weights(P, w, Z)
    XX = np.empty((m, p * (p + 1) // 2))
    _column_pairs(X, XX)
    out += Z.T @ XX


def unpack_blocks(packed, p):
    """The ``(B, p, p)`` symmetric blocks from :func:`chunk_block_information`'s packed
    upper triangles ``(B, p (p + 1) / 2)``."""
    J = packed.shape[0]
    iu = np.triu_indices(p)
    out = np.zeros((J, p, p))
    out[:, iu[0], iu[1]] = packed
    out[:, iu[1], iu[0]] = packed
    return out


# --- margins kernels ---
#
# Marginal effects and their delta-method Jacobian, accumulated over one chunk of rows.  With
# K = J + 1 outcomes laid out as (non-reference ..., reference), a direction ``d`` in design
# space (the derivative of the design row with respect to the variable of interest) and
# :math:`a_k = \beta_k^\top d` (:math:`a_\mathrm{ref} = 0`), :math:`\bar a = \sum_l P_l a_l`,
# :math:`g_k = a_k - \bar a`:
#
#   dP_k/dv = P_k g_k,   d log P_k / dv = g_k,
#   dP_k/dbeta_jq = P_k (delta_kj - P_j) x_q,
#   dg_k/dbeta_jq = d_q (delta_kj - P_j) - P_j x_q g_j.
#
# The effects and Jacobian rows are summed with row weights straight into small (K,) and
# (K, J p) accumulators, so no per-row array of derivatives is ever formed.


@nb.njit(cache=True, nogil=True)
def _row_probs(x_row, beta, eta, P):
    """Fill ``P`` (length J+1, reference last) for one row; return the log-sum-exp."""
    J = beta.shape[0]
    _, lse = _row_softmax(x_row, beta, eta)
    for j in range(J):
        P[j] = np.exp(eta[j] - lse)
    P[J] = np.exp(-lse)
    return lse


@nb.njit(cache=True, nogil=True)
def chunk_margeff_derivative(X, D, s, w, beta, dy, eff, jac):
    """Add the weighted derivative effects of one variable on a chunk to ``eff`` and ``jac``.

    Parameters
    ----------
    X : ndarray, shape (m, p)
        Design rows at which the effect is evaluated.
    D : ndarray, shape (m, p) or (1, p)
        Derivative of each design row with respect to the variable (one row: the same for all).
    s : ndarray, shape (m,) or (1,)
        Row scale: the variable's value for the ``ex`` methods, else ones.
    w : ndarray, shape (m,)
        Row weights (summing to one over all chunks for an average effect).
    beta : ndarray, shape (J, p)
    dy : bool
        True for an effect on the probability (``dydx``, ``dyex``), False for an effect on its
        log (``eydx``, ``eyex``).
    eff : ndarray, shape (J + 1,)
        Accumulator of the effect on each outcome (internal order, reference last).
    jac : ndarray, shape (J + 1, J p)
        Accumulator of the effect's derivative with respect to the flat parameters.
    """
    m, p = X.shape
    J = beta.shape[0]
    K = J + 1
    eta = np.empty(J)
    P = np.empty(K)
    a = np.empty(K)
    g = np.empty(K)
    for i in range(m):
        wi = w[i]
        if wi == 0.0:
            continue
        _row_probs(X[i], beta, eta, P)
        di = i if D.shape[0] > 1 else 0
        si = s[i] if s.shape[0] > 1 else s[0]
        abar = 0.0
        for j in range(J):
            acc = 0.0
            for q in range(p):
                acc += beta[j, q] * D[di, q]
            a[j] = acc
            abar += P[j] * acc
        a[J] = 0.0
        for k in range(K):
            g[k] = a[k] - abar
        c = wi * si
        for k in range(K):
            fk = P[k] if dy else 1.0
            eff[k] += c * fk * g[k]
            for j in range(J):
                t = (1.0 if k == j else 0.0) - P[j]
                pg = P[j] * g[j]
                off = j * p
                for q in range(p):
                    xq = X[i, q]
                    dg = D[di, q] * t - pg * xq
                    if dy:
                        jac[k, off + q] += c * P[k] * (t * xq * g[k] + dg)
                    else:
                        jac[k, off + q] += c * dg


@nb.njit(cache=True, nogil=True)
def chunk_margeff_level(X, w, beta, logp, sign, eff, jac):
    """Add ``sign`` times the weighted probabilities (or log-probabilities) of a chunk.

    A discrete change is two calls: the rows at the new value with ``sign = 1`` and at the base
    value with ``sign = -1``.  Shapes as in :func:`chunk_margeff_derivative`; ``logp`` selects
    :math:`\\log P_k` (the ``ey`` methods) instead of :math:`P_k`.
    """
    m, p = X.shape
    J = beta.shape[0]
    K = J + 1
    eta = np.empty(J)
    P = np.empty(K)
    for i in range(m):
        c = sign * w[i]
        if c == 0.0:
            continue
        lse = _row_probs(X[i], beta, eta, P)
        for k in range(K):
            if logp:
                eff[k] += c * ((eta[k] if k < J else 0.0) - lse)
            else:
                eff[k] += c * P[k]
            f = 1.0 if logp else P[k]
            for j in range(J):
                t = c * f * ((1.0 if k == j else 0.0) - P[j])
                off = j * p
                for q in range(p):
                    jac[k, off + q] += t * X[i, q]


# --- fused margins kernels: BLAS products over a chunk, Numba for the per-row factors ---
#
# The same effects and Jacobians as above, with the sums over the rows moved into BLAS
# products.  With :math:`G_{kl} = \delta_{kl} - P_l` (``K x J``; :math:`\delta_{\mathrm{ref},l}
# = 0`) a row's :math:`g = G a` is linear in :math:`a = \beta d`, so for the ``dydx`` method
#
#   eff_k        = sum_i c_i P_ik g_ik                          = (H a)_k,
#   jac[k, j, :] = X' [c P_k (G_kj g_k - P_j g_j)] + H_kj d     = (X' M)[:, k, j, :] a + H_kj d,
#
# with :math:`H_{kl} = \sum_i c_i P_{ik} G_{ikl}` and
# :math:`M_{i,kjl} = c_i P_{ik} (G_{ikj} G_{ikl} - P_{ij} G_{ijl})`; for ``eydx``
# :math:`H_{kl} = \sum_i c_i G_{ikl}` and :math:`M_{i,jl} = -c_i P_{ij} G_{ijl}` (no ``k``).
# One ``p x K J J`` product therefore serves every variable whose direction ``d`` is the same
# in all rows (a design column's unit vector): the cost no longer grows with the number of
# variables.  Variables with a direction or scale of their own per row use the row weights
# ``W = M a`` instead (:func:`margeff_row_weights`).


@nb.njit(cache=True, nogil=True)
def softmax_rows(E, P, lse):
    """Probabilities ``P`` (``(m, J + 1)``, reference last) and each row's log-sum-exp ``lse``
    from linear predictors ``E`` (``(m, J)``), max-subtracted."""
    m, J = E.shape
    for i in range(m):
        mx = _row_max(E[i])
        tot = np.exp(-mx)
        for j in range(J):
            tot += np.exp(E[i, j] - mx)
        ls = mx + np.log(tot)
        lse[i] = ls
        for j in range(J):
            P[i, j] = np.exp(E[i, j] - ls)
        P[i, J] = np.exp(-ls)


@nb.njit(cache=True, nogil=True)
def margeff_shared_factors(P, c, dy, M, H):
    """The row factors ``M`` (``(m, K J J)`` for ``dy``, else ``(m, J J)``) of the effects of
    variables with one direction for all rows, and ``H`` (``(K, J)``, added to).

    ``P`` holds the rows' probabilities (``(m, K)``, reference last) and ``c`` their weights.
    The chunk's share of the Jacobian is then ``X' M`` (see the comment above).
    """
    m, K = P.shape
    J = K - 1
    for i in range(m):
        ci = c[i]
        if dy:
            for k in range(K):
                pk = ci * P[i, k]
                for j in range(J):
                    gkj = (1.0 if k == j else 0.0) - P[i, j]
                    H[k, j] += pk * gkj
                    pj = P[i, j]
                    base = (k * J + j) * J
                    for ll in range(J):
                        gkl = (1.0 if k == ll else 0.0) - P[i, ll]
                        gjl = (1.0 if j == ll else 0.0) - P[i, ll]
                        M[i, base + ll] = pk * (gkj * gkl - pj * gjl)
        else:
            for k in range(K):
                for j in range(J):
                    H[k, j] += ci * ((1.0 if k == j else 0.0) - P[i, j])
            for j in range(J):
                pj = ci * P[i, j]
                for ll in range(J):
                    M[i, j * J + ll] = -pj * ((1.0 if j == ll else 0.0) - P[i, ll])


@nb.njit(cache=True, nogil=True)
def margeff_row_weights(P, A, c, dy, W, V, eff):
    """Row weights of one variable's derivative effect, for directions or scales per row.

    Parameters
    ----------
    P : ndarray, shape (m, K)
        Probabilities, reference last.
    A : ndarray, shape (m, J) or (1, J)
        :math:`a_i = \\beta d_i` of each row (one row: the same for all).
    c : ndarray, shape (m,)
        Row weights times the row scale.
    dy : bool
        Effect on the probability (else on its log).
    W, V : ndarray, shape (m, K J)
        Filled: the chunk adds ``W' X + V' D`` to the ``(K J, p)`` Jacobian.
    eff : ndarray, shape (K,)
        Accumulator of the effect.
    """
    m, K = P.shape
    J = K - 1
    g = np.empty(K)
    for i in range(m):
        ci = c[i]
        ai = i if A.shape[0] > 1 else 0
        abar = 0.0
        for j in range(J):
            abar += P[i, j] * A[ai, j]
        for j in range(J):
            g[j] = A[ai, j] - abar
        g[J] = -abar
        for k in range(K):
            fk = ci * P[i, k] if dy else ci
            eff[k] += fk * g[k]
            for j in range(J):
                gkj = (1.0 if k == j else 0.0) - P[i, j]
                t = -ci * P[i, j] * g[j]
                if dy:
                    W[i, k * J + j] = fk * gkj * g[k] + P[i, k] * t
                else:
                    W[i, k * J + j] = t
                V[i, k * J + j] = fk * gkj


@nb.njit(cache=True, nogil=True)
def margeff_level_weights(P, E, lse, c, logp, V, eff):
    """Row weights of ``sum_i c_i P_ik`` (or of ``log P_ik`` with ``logp``) at the rows of one
    design ``X``: ``eff`` (``(K,)``) gets the sum and the chunk adds ``V' X`` (``V`` of shape
    ``(m, K J)``) to the ``(K J, p)`` Jacobian.  ``E`` and ``lse`` are the rows' linear
    predictors and log-sum-exp (for the log-probabilities)."""
    m, K = P.shape
    J = K - 1
    for i in range(m):
        ci = c[i]
        for k in range(K):
            if logp:
                eff[k] += ci * ((E[i, k] if k < J else 0.0) - lse[i])
                fk = ci
            else:
                eff[k] += ci * P[i, k]
                fk = ci * P[i, k]
            for j in range(J):
                V[i, k * J + j] = fk * ((1.0 if k == j else 0.0) - P[i, j])
