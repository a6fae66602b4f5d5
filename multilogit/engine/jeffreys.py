"""The gradient of :math:`\\log\\det\\mathcal{I}(\\beta)` for one chunk of rows: the adjustment
that turns the score into Firth's bias-reducing (Jeffreys-prior) score.

For the multinomial logit with :math:`J` non-reference outcomes, row probabilities
:math:`\\pi_i` and likelihood weights :math:`w_i`, the information is

.. math::

    \\mathcal{I}(\\beta) = \\sum_i w_i\\, (\\operatorname{diag}\\pi_i - \\pi_i \\pi_i^\\top)
    \\otimes x_i x_i^\\top .

Its derivative in the linear predictor :math:`\\eta_{ic}` is the third cumulant of the
multinomial,

.. math::

    \\kappa_{abc} = \\delta_{abc}\\pi_a - \\delta_{ab}\\pi_a\\pi_c - \\delta_{ac}\\pi_a\\pi_b
    - \\delta_{bc}\\pi_a\\pi_b + 2\\pi_a\\pi_b\\pi_c ,

so with :math:`C = \\mathcal{I}^{-1}` in :math:`J \\times J` blocks :math:`C_{ab}` of size
:math:`p \\times p` and :math:`Q_{i,ab} = x_i^\\top C_{ab} x_i`,

.. math::

    \\frac{\\partial \\log\\det\\mathcal{I}}{\\partial \\beta_{cj}}
    = \\operatorname{tr}\\Big(C \\frac{\\partial \\mathcal{I}}{\\partial \\beta_{cj}}\\Big)
    = \\sum_i w_i x_{ij} h_{ic}, \\qquad
    h_{ic} = \\pi_{ic}\\big(Q_{i,cc} - 2 (Q_i \\pi_i)_c - \\textstyle\\sum_a \\pi_{ia} Q_{i,aa}
    + 2\\, \\pi_i^\\top Q_i \\pi_i\\big).

With :math:`y_i = \\pi_i \\otimes x_i`, :math:`(Q_i \\pi_i)_c = x_i^\\top (C y_i)_c` (the
:math:`c`-th block of :math:`C y_i`), so a chunk costs one product :math:`Y C` of its
:math:`m \\times Jp` rows :math:`y_i` with :math:`C` (:math:`m J^2 p^2` multiply-adds, as the
chunk's information) plus :math:`J` products :math:`X C_{cc}` for the diagonal blocks, with
temporaries of :math:`m \\times J p` numbers only.
"""

from __future__ import annotations

import numpy as np

__all__ = ["chunk_logdet_gradient", "chunk_third_cumulants"]

# Elements of the (rows, J, J p) temporary per block of rows in chunk_third_cumulants: 2 MiB.
_BLOCK_ELEMENTS = 1 << 18


def _probabilities(X: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """Non-reference probabilities ``(m, J)``, stable for large linear predictors."""
    eta = X @ beta.T
    top = np.maximum(eta.max(axis=1, keepdims=True), 0.0)
    e = np.exp(eta - top)
    return e / (np.exp(-top) + e.sum(axis=1, keepdims=True))


def chunk_logdet_gradient(
    X: np.ndarray, weights: np.ndarray, beta: np.ndarray, cov: np.ndarray
) -> np.ndarray:
    """This chunk's part of :math:`\\nabla_\\beta \\log\\det\\mathcal{I}(\\beta)`.

    Parameters
    ----------
    X : ndarray, shape (m, p)
        Design rows.
    weights : ndarray, shape (m,)
        Likelihood weights.
    beta : ndarray, shape (J, p)
        Coefficients.
    cov : ndarray, shape (J p, J p)
        The inverse of the information at ``beta`` (of all rows, not just this chunk's),
        outcome-major.

    Returns
    -------
    ndarray, shape (J, p)
        :math:`\\sum_i w_i h_i x_i^\\top` over the chunk's rows (see the module docstring).
    """
    X = np.asarray(X, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    J, p = beta.shape
    m = X.shape[0]
    P = _probabilities(X, beta)
    Y = (P[:, :, None] * X[:, None, :]).reshape(m, J * p)
    CY = (Y @ cov).reshape(m, J, p)
    QP = np.einsum("iak,ik->ia", CY, X)
    diag = np.empty((m, J))
    for c in range(J):
        block = cov[c * p : (c + 1) * p, c * p : (c + 1) * p]
        diag[:, c] = np.einsum("ik,ik->i", X @ block, X)
    common = np.einsum("ia,ia->i", P, 2.0 * QP - diag)
    h = P * (diag - 2.0 * QP + common[:, None])
    return (h * w[:, None]).T @ X


def chunk_third_cumulants(
    X: np.ndarray, weights: np.ndarray, beta: np.ndarray, cov: np.ndarray
) -> np.ndarray:
    """This chunk's part of :math:`\\sum_i w_i \\kappa_{3,i}(z_{it}, z_{it}, z_{it})` for every
    parameter :math:`t`: the third cumulants that median bias reduction needs.

    With :math:`c_t` the :math:`t`-th column of :math:`C = \\mathcal{I}^{-1}` and
    :math:`z_{it} = (x_i^\\top c_t^{(a)})_a` its blocks applied to row :math:`i` (one number per
    non-reference outcome, 0 for the reference), :math:`\\kappa_{3,i}(z, z, z)` is the third
    central moment of the value :math:`z_a` taken with the row's probability
    :math:`\\pi_{ia}`:

    .. math::

        \\kappa_{3,i}(z,z,z) = \\textstyle\\sum_a \\pi_a z_a^3
        - 3 \\big(\\sum_a \\pi_a z_a\\big)\\big(\\sum_a \\pi_a z_a^2\\big)
        + 2 \\big(\\sum_a \\pi_a z_a\\big)^3 .

    Parameters
    ----------
    X, weights, beta, cov
        As :func:`chunk_logdet_gradient`.

    Returns
    -------
    ndarray, shape (J p,)
    """
    X = np.asarray(X, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    J, p = beta.shape
    # C3[k, a, t] = C[a p + k, t]: x_i^T C3[:, a, :] gives z_{it} for every t at once.
    C3 = cov.reshape(J, p, J * p).transpose(1, 0, 2).reshape(p, J * J * p)
    out = np.zeros(J * p)
    block = max(16, _BLOCK_ELEMENTS // max(J * J * p, 1))
    for start in range(0, X.shape[0], block):
        Xb = X[start : start + block]
        P = _probabilities(Xb, beta)
        Z = (Xb @ C3).reshape(-1, J, J * p)
        m1 = np.zeros((Xb.shape[0], J * p))
        m2 = np.zeros_like(m1)
        m3 = np.zeros_like(m1)
        for a in range(J):  # J passes over (rows, J p) arrays: cheaper than a 3-index einsum
            za = Z[:, a, :]
            pa = P[:, a : a + 1]
            pz = pa * za
            m1 += pz
            pz *= za
            m2 += pz
            pz *= za
            m3 += pz
        out += w[start : start + block] @ (m3 - 3.0 * m1 * m2 + 2.0 * m1**3)
    return out
