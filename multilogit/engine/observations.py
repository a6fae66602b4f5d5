"""Per-row log-likelihood and score of a chunk of rows (``loglikeobs``, ``score_obs``).

Conventions
-----------
``beta`` is ``(J, p)``; ``y`` holds each row's equation index (``-1`` for the reference, any
negative code counts as the reference); ``w`` the likelihood weights, which multiply each row's
contribution so that the rows add up to the log-likelihood and the score of the fit.  A row's
score is flat outcome-major: ``(d_{i1} - P_{i1}) x_i, ..., (d_{iJ} - P_{iJ}) x_i``, the layout of
statsmodels' ``MNLogit.score_obs``.
"""

from __future__ import annotations

import numpy as np

from .memory import predict_linear

__all__ = ["chunk_loglikeobs", "chunk_score_obs"]


def _log_probabilities(X, beta) -> np.ndarray:
    """Log-probabilities ``(m, J + 1)`` (non-reference outcomes, then the reference), by a
    max-subtracted log-sum-exp so that tiny probabilities keep their logarithm."""
    eta = predict_linear(X, beta)
    full = np.column_stack([eta, np.zeros(len(eta))])
    top = full.max(axis=1, keepdims=True)
    lse = top + np.log(np.exp(full - top).sum(axis=1, keepdims=True))
    return full - lse


def _own(y, J) -> np.ndarray:
    return np.where(np.asarray(y) < 0, J, y).astype(np.int64)


def chunk_loglikeobs(X, y, w, beta) -> np.ndarray:
    """Each row's weighted log-likelihood :math:`w_i \\log P_{i, y_i}`, shape ``(m,)``."""
    logp = _log_probabilities(X, beta)
    own = _own(y, beta.shape[0])
    return np.asarray(w, dtype=np.float64) * logp[np.arange(len(own)), own]


def chunk_score_obs(X, y, w, beta) -> np.ndarray:
    """Each row's weighted score :math:`w_i (d_{ij} - P_{ij}) x_i`, shape ``(m, J p)``."""
    J = beta.shape[0]
    P = np.exp(_log_probabilities(X, beta)[:, :J])
    d = _own(y, J)[:, None] == np.arange(J)[None, :]
    resid = (d - P) * np.asarray(w, dtype=np.float64)[:, None]
    X = np.asarray(X, dtype=np.float64)
    return (resid[:, :, None] * X[:, None, :]).reshape(len(X), J * X.shape[1])
