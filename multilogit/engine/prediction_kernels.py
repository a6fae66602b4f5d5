"""Numba kernels of predicted probabilities with delta-method standard errors, and of their
confidence bounds.

For row :math:`x` with probabilities :math:`P` (``K`` outcomes, the reference included), the
gradient of :math:`P_k` with respect to the coefficients :math:`\\beta_j` of equation ``j`` is
:math:`P_k (\\delta_{kj} - P_j)\\, x`.  With :math:`c_k = P_k (e_k - P_{1:J})`
(:math:`e_\\mathrm{ref} = 0`) and the ``J x J`` matrix :math:`Q_{jl} = x^\\top V_{jl}\\, x` of
the quadratic forms of the ``p x p`` blocks of the coefficients' covariance ``V``,

.. math::

    \\operatorname{Var}(\\hat P_k) = (c_k \\otimes x)^\\top V (c_k \\otimes x)
    = c_k^\\top Q\\, c_k .

So a row needs only the ``J (J + 1) / 2`` numbers :math:`Q_{jl}`, ``j <= l``, never the
``K x J p`` gradient: with :math:`Z = X S` for :math:`S = [V_{11}, V_{12}, \\dots, V_{JJ}]`
(:func:`pair_blocks`, one BLAS product per block of rows), :math:`Q_{jl}` is the dot product
of ``x`` with the ``p`` columns of ``Z`` of the pair.  :func:`prediction_rows` forms the
probabilities, the quadratic forms and the ``K`` variances of a block of rows with the rows in
the innermost loops (so they vectorise); it writes only ``(m, K)`` outputs.  Its numbers for a
row depend on that row alone, whatever the blocking (the BLAS product may round a row
differently in blocks of another size).  The kernels never raise on IEEE special values: a NaN
covariance (coefficients without a meaningful estimate) gives a NaN standard error and NaN
bounds.
"""

from __future__ import annotations

import numba as nb
import numpy as np

__all__ = ["logit_bounds", "pair_blocks", "prediction_rows"]


def pair_blocks(V: np.ndarray, J: int, p: int) -> np.ndarray:
    """The blocks :math:`V_{jl}`, ``j <= l`` in row-major order, of the flat ``(J p, J p)``
    covariance side by side: ``(p, J (J + 1) / 2 * p)``.

    One product ``X @ S`` then gives every row's :math:`x^\\top V_{jl}`; the blocks with
    ``j > l`` are transposes of these and add nothing to the quadratic forms.
    """
    V4 = np.asarray(V, dtype=np.float64).reshape(J, p, J, p)
    return np.ascontiguousarray(
        np.concatenate([V4[j, :, k, :] for j in range(J) for k in range(j, J)], axis=1)
    )


@nb.njit(cache=True, nogil=True, error_model="numpy")
def prediction_rows(Xt, offset, beta, Zt, order, P_out, se_out):
    """Probabilities and their delta-method standard errors of the rows of a block.

    Parameters
    ----------
    Xt : ndarray, shape (p, m)
        The block's design rows, transposed.
    offset : ndarray, shape (m, J) or (0, J)
        The rows' offsets (added to the linear predictors), or no rows: none.
    beta : ndarray, shape (J, p)
    Zt : ndarray, shape (J (J + 1) / 2 * p, m)
        ``pair_blocks(V, J, p).T @ Xt``.
    order : ndarray of int, shape (K,)
        Output column ``k`` holds the outcome of internal column ``order[k]`` (internal: the
        ``J`` equations, then the reference).
    P_out, se_out : ndarray, shape (m, K)
        Filled with the probabilities and standard errors, columns in ``order``.

    Notes
    -----
    Every step runs over the block's rows in the innermost loop (the rows are the columns of
    ``Xt`` and ``Zt``), so it vectorises whatever ``J`` and ``p``, and each row's numbers come
    from the same operations in the same order whatever the block.  The probabilities are a
    max-subtracted softmax (the reference's linear predictor is 0), so no finite input
    overflows; :math:`\\operatorname{Var}(P_k) = P_k^2 \\sum_{j, l} d_j d_l Q_{jl}` with
    :math:`d = e_k - P_{1:J}`.  A variance below 0 (rounding) is clipped to 0; NaN stays.
    """
    p, m = Xt.shape
    J = beta.shape[0]
    K = J + 1
    prob = np.empty((K, m))
    Q = np.empty((J * (J + 1) // 2, m))
    top = np.zeros(m)
    acc = np.empty(m)
    for j in range(J):
        e = prob[j]
        b = beta[j, 0]
        for i in range(m):
            e[i] = b * Xt[0, i]
        for r in range(1, p):
            b = beta[j, r]
            for i in range(m):
                e[i] += b * Xt[r, i]
        if offset.shape[0] > 0:
            for i in range(m):
                e[i] += offset[i, j]
        for i in range(m):
            top[i] = max(top[i], e[i])
    total = acc
    for i in range(m):
        prob[J, i] = np.exp(-top[i])
        total[i] = prob[J, i]
    for j in range(J):
        e = prob[j]
        for i in range(m):
            e[i] = np.exp(e[i] - top[i])
            total[i] += e[i]
    for k in range(K):
        e = prob[k]
        for i in range(m):
            e[i] /= total[i]
    for pair in range(Q.shape[0]):
        q = Q[pair]
        off = pair * p
        for i in range(m):
            q[i] = Zt[off, i] * Xt[0, i]
        for r in range(1, p):
            for i in range(m):
                q[i] += Zt[off + r, i] * Xt[r, i]
    for col in range(K):
        k = order[col]
        for i in range(m):
            acc[i] = 0.0
        pair = 0
        for j in range(J):
            pj = prob[j]
            ej = 1.0 if j == k else 0.0
            for ll in range(j, J):
                pl = prob[ll]
                el = 1.0 if ll == k else 0.0
                twice = 1.0 if ll == j else 2.0  # Q is symmetric: (j, l) and (l, j) at once
                q = Q[pair]
                for i in range(m):
                    acc[i] += twice * (ej - pj[i]) * (el - pl[i]) * q[i]
                pair += 1
        pk = prob[k]
        for i in range(m):
            v = pk[i] * pk[i] * acc[i]
            P_out[i, col] = pk[i]
            se_out[i, col] = np.sqrt(0.0 if v < 0.0 else v)  # NaN (no estimate) stays NaN


@nb.njit(cache=True, nogil=True, error_model="numpy")
def logit_bounds(P, se, q, lo, hi):
    """Interval bounds on the logit scale of each probability, elementwise (1-D arrays).

    .. math::

        \\operatorname{expit}\\big(\\operatorname{logit} P \\mp q\\, \\mathrm{se} /
        (P (1 - P))\\big) = \\frac{P}{P + (1 - P)\\, e^{\\pm h}},
        \\qquad h = \\frac{q\\, \\mathrm{se}}{P (1 - P)} ,

    the closed form: one exponential per value instead of a logit and two expits.  Divisions
    by 0 follow IEEE arithmetic (``P`` of exactly 0 or 1 has no logit: its bounds come out 0,
    1 or NaN as the formula gives them); a NaN gives NaN.
    """
    for t in range(P.shape[0]):
        pt = P[t]
        e = np.exp(q * se[t] / (pt * (1.0 - pt)))
        lo[t] = pt / (pt + (1.0 - pt) * e)
        hi[t] = pt / (pt + (1.0 - pt) / e)
