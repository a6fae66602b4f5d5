"""Drivers that sum the per-chunk kernel results over a data set.

A backend owns the data and hands out three things to the solver: the log-likelihood with the
score, the same plus the information matrix, and fitted probabilities.  It holds no numerics of
its own: every number comes from :mod:`multilogit.kernels`, summed over chunks in a fixed order so
results are bitwise reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import kernels

__all__ = ["Derivatives", "InMemoryBackend", "default_chunk_rows"]

# Keep one chunk's rank-k factor (rows x J p doubles) around 1 MiB: it stays in cache between
# the numba fill and the BLAS update.
_CHUNK_BYTES = 1 << 20


def default_chunk_rows(p: int, J: int) -> int:
    """Rows per chunk so that the work buffers of one chunk stay cache-sized."""
    return int(min(max(_CHUNK_BYTES // (8 * max(J * p, 1)), 256), 16384))


@dataclass(frozen=True)
class Derivatives:
    """Log-likelihood, score ``(J, p)`` and information ``(J p, J p)`` (or ``None``)."""

    llf: float
    score: np.ndarray
    info: np.ndarray | None


class InMemoryBackend:
    """Chunked evaluation over arrays held in memory.

    Parameters
    ----------
    X : ndarray, shape (n, p)
    y : ndarray of int, shape (n,)
        Equation index of each row's outcome, ``-1`` for the reference (see kernels).
    w : ndarray, shape (n,)
        Row weights.
    J : int
        Number of non-reference outcomes.
    chunk_rows : int, optional
    """

    def __init__(self, X, y, w, J, chunk_rows=None):
        self.X = np.ascontiguousarray(X, dtype=np.float64)
        self.y = np.ascontiguousarray(y, dtype=np.int64)
        self.w = np.ascontiguousarray(w, dtype=np.float64)
        self.n, self.p = self.X.shape
        self.J = int(J)
        self.chunk_rows = int(chunk_rows or default_chunk_rows(self.p, self.J))
        self._work = None

    def _chunks(self):
        step = self.chunk_rows
        for start in range(0, self.n, step):
            yield slice(start, min(start + step, self.n))

    def derivatives(self, beta, hessian=True) -> Derivatives:
        """Sum the per-chunk log-likelihood, score and (if asked) information at ``beta``."""
        beta = np.ascontiguousarray(beta, dtype=np.float64).reshape(self.J, self.p)
        score = np.zeros((self.J, self.p))
        info = None
        if hessian:
            q = self.J * self.p
            info = np.zeros((q, q), order="F")
            if self._work is None:
                self._work = kernels.HessianWorkspace(min(self.chunk_rows, self.n), self.p, self.J)
        llf = 0.0
        for sl in self._chunks():
            llf += kernels.chunk_derivatives(
                self.X[sl], self.y[sl], self.w[sl], beta, score, info, self._work
            )
        if info is not None:
            # Only the upper triangle was accumulated (symmetry); mirror it once at the end.
            iu = np.triu_indices(info.shape[0], 1)
            info[iu[1], iu[0]] = info[iu]
            info = np.ascontiguousarray(info)
        return Derivatives(llf, score, info)

    def release(self):
        """Drop the Hessian work buffers (they are re-created on demand)."""
        self._work = None


def predict_probabilities(X, beta):
    """Probabilities ``(n, J + 1)``: the J non-reference outcomes, then the reference."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    beta = np.ascontiguousarray(beta, dtype=np.float64)
    out = np.empty((X.shape[0], beta.shape[0] + 1))
    return kernels.chunk_probabilities(X, beta, out)


def predict_linear(X, beta):
    """Linear predictors ``(n, J)`` against the reference outcome."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    beta = np.ascontiguousarray(beta, dtype=np.float64)
    out = np.empty((X.shape[0], beta.shape[0]))
    return kernels.chunk_linear(X, beta, out)
