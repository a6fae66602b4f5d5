"""Plain NumPy twins of :mod:`multilogit.engine.kernels`, written for clarity, not speed.

They build the full ``(n, K)`` probability matrix and the dense Hessian blocks directly from the
textbook formulas; the tests check the Numba kernels against them.  Conventions as in
:mod:`multilogit.engine.kernels`.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

__all__ = ["loglike", "score", "information", "probabilities", "row_scores"]


def _eta_full(X, beta):
    """Linear predictors with the reference outcome appended as a zero last column."""
    eta = X @ beta.T
    return np.column_stack([eta, np.zeros(len(X))])


def probabilities(X, beta):
    """``(n, J + 1)``: non-reference outcomes, then the reference."""
    eta = _eta_full(X, beta)
    return np.exp(eta - logsumexp(eta, axis=1, keepdims=True))


def loglike(X, y, w, beta):
    eta = _eta_full(X, beta)
    J = beta.shape[0]
    col = np.where(y < 0, J, y)
    return float(np.sum(w * (eta[np.arange(len(X)), col] - logsumexp(eta, axis=1))))


def score(X, y, w, beta):
    J = beta.shape[0]
    P = probabilities(X, beta)[:, :J]
    D = (y[:, None] == np.arange(J)[None, :]).astype(float)
    return ((D - P) * w[:, None]).T @ X


def information(X, y, w, beta):
    J, p = beta.shape
    P = probabilities(X, beta)[:, :J]
    info = np.empty((J * p, J * p))
    for j in range(J):
        for k in range(J):
            c = w * (P[:, j] * (j == k) - P[:, j] * P[:, k])
            info[j * p : (j + 1) * p, k * p : (k + 1) * p] = (X * c[:, None]).T @ X
    return info


def row_scores(X, y, beta):
    """Unweighted per-row scores ``(n, J p)``, flat outcome-major: ``(d_i - P_i) (x) x_i``."""
    J = beta.shape[0]
    P = probabilities(X, beta)[:, :J]
    D = (y[:, None] == np.arange(J)[None, :]).astype(float)
    return np.einsum("ij,ik->ijk", D - P, X).reshape(len(X), -1)
