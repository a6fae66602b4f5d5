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

     \\mathcal{I} = \\operatorname{blockdiag}_j\\big(X^\\top W P_j X\\big) - B^\\top B,
     \\qquad B_{i\\cdot} = \\sqrt{w_i}\\,(P_{i1} x_i^\\top, \\dots, P_{iJ} x_i^\\top).

The exponentials are max-subtracted (log-sum-exp), so no finite input overflows or yields NaN.

The per-chunk primitive is :func:`chunk_derivatives`: one pass over a block of rows gives the
log-likelihood and the score, and (optionally) adds the block's information to an accumulator via
two BLAS rank-k updates.  The numba part never allocates; the ``(m, J p)`` work buffers are sized
by the caller to one chunk, so memory stays flat in ``n``.  Every backend (in-memory, chunked
out-of-core, Dask) sums these per-chunk results in a fixed order.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from scipy.linalg.blas import dsyrk

__all__ = [
    "chunk_loglike_score",
    "chunk_derivatives",
    "chunk_probabilities",
    "chunk_linear",
    "HessianWorkspace",
]


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


@nb.njit(cache=True, nogil=True)
def chunk_loglike_score(X, y, w, beta, score):
    """Log-likelihood of the rows; their score is *added* to ``score`` (shape ``(J, p)``)."""
    n, p = X.shape
    J = beta.shape[0]
    eta = np.empty(J)
    ll = 0.0
    for i in range(n):
        wi = w[i]
        if wi == 0.0:
            continue
        _, lse = _row_softmax(X[i], beta, eta)
        yi = y[i]
        ll += wi * ((eta[yi] if yi >= 0 else 0.0) - lse)
        for j in range(J):
            r = -np.exp(eta[j] - lse)
            if yi == j:
                r += 1.0
            r *= wi
            for k in range(p):
                score[j, k] += r * X[i, k]
    return ll


@nb.njit(cache=True, nogil=True)
def _chunk_fill(X, y, w, beta, score, B, C):
    """Log-likelihood and score as above; also fill the rank-k factors of the information.

    ``B[i, j*p + k] = sqrt(w_i) P_ij x_ik`` and ``C[j, i, k] = sqrt(w_i P_ij) x_ik``.
    """
    n, p = X.shape
    J = beta.shape[0]
    eta = np.empty(J)
    ll = 0.0
    for i in range(n):
        wi = w[i]
        sw = np.sqrt(wi)
        _, lse = _row_softmax(X[i], beta, eta)
        yi = y[i]
        if wi != 0.0:
            ll += wi * ((eta[yi] if yi >= 0 else 0.0) - lse)
        for j in range(J):
            pij = np.exp(eta[j] - lse)
            r = -pij
            if yi == j:
                r += 1.0
            r *= wi
            b = sw * pij
            c = np.sqrt(wi * pij)
            off = j * p
            for k in range(p):
                xik = X[i, k]
                score[j, k] += r * xik
                B[i, off + k] = b * xik
                C[j, i, k] = c * xik
    return ll


class HessianWorkspace:
    """Work buffers for :func:`chunk_derivatives`, sized for chunks of at most ``rows`` rows.

    Holding them in one object lets a driver reuse the same memory for every chunk and every
    Newton iteration.
    """

    def __init__(self, rows: int, p: int, J: int):
        self.rows = int(rows)
        # Fortran-ordered transposes so BLAS reads them without a copy.
        self.B = np.empty((self.rows, J * p))
        self.C = np.empty((J, self.rows, p))

    def views(self, m: int):
        return self.B[:m], self.C[:, :m]


def chunk_derivatives(X, y, w, beta, score, info=None, work=None):
    """Per-chunk primitive: log-likelihood, score and (optionally) information.

    Parameters
    ----------
    X, y, w, beta
        One chunk of rows, see the module Conventions.
    score : ndarray, shape (J, p)
        Accumulator; the chunk's score is added in place.
    info : ndarray, shape (J p, J p), Fortran-ordered, optional
        Accumulator for the information matrix; only its upper triangle is referenced and
        updated (the matrix is symmetric).  When ``None`` only the log-likelihood and the score
        are computed.
    work : HessianWorkspace, optional
        Buffers of at least ``len(X)`` rows; required when ``info`` is given.

    Returns
    -------
    float
        The chunk's log-likelihood.
    """
    if info is None:
        return chunk_loglike_score(X, y, w, beta, score)
    m = X.shape[0]
    J, p = beta.shape
    B, C = work.views(m)
    ll = _chunk_fill(X, y, w, beta, score, B, C)
    # info -= B'B over the whole (Jp x Jp) matrix (upper triangle).
    dsyrk(-1.0, B.T, beta=1.0, c=info, trans=0, lower=0, overwrite_c=1)
    for j in range(J):
        sl = slice(j * p, (j + 1) * p)
        blk = np.asfortranarray(info[sl, sl])
        dsyrk(1.0, C[j].T, beta=1.0, c=blk, trans=0, lower=0, overwrite_c=1)
        info[sl, sl] = blk
    return ll


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
