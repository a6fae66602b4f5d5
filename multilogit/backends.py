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

# Rows per chunk: the chunk of X and its (m, J) blocks stay around 1 MiB, in cache between the
# BLAS products and the Numba loops, while chunks stay long enough that the per-chunk call
# overhead is small.  The information factors of a chunk are at most a few MiB on top.
_CHUNK_BYTES = 1 << 20

# The subsample of approx_information: at least this many rows per parameter (the relative error
# of a sampled information matrix shrinks like sqrt(params / rows)) and at least 1/SAMPLE_FRACTION
# of the data; only used when the data hold SAMPLE_MIN_RATIO times as many rows.
SAMPLE_ROWS_PER_PARAM = 64
SAMPLE_FRACTION = 32
SAMPLE_MIN_RATIO = 4


def default_chunk_rows(p: int, J: int) -> int:
    """Rows per chunk so that the work buffers of one chunk stay cache-sized."""
    return int(min(max(_CHUNK_BYTES // (8 * (p + 2 * J + 2)), 256), 16384))


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
        self._sample = None

    def _chunks(self):
        step = self.chunk_rows
        for start in range(0, self.n, step):
            yield slice(start, min(start + step, self.n))

    def workspace(self):
        """The chunk buffers, created on first use and reused by every later evaluation."""
        if self._work is None:
            self._work = kernels.HessianWorkspace(min(self.chunk_rows, self.n), self.p, self.J)
        return self._work

    def derivatives(self, beta, hessian=True) -> Derivatives:
        """Sum the per-chunk log-likelihood, score and (if asked) information at ``beta``."""
        beta = np.ascontiguousarray(beta, dtype=np.float64).reshape(self.J, self.p)
        score = np.zeros((self.J, self.p))
        work = self.workspace()
        acc = work.new_accumulator() if hessian else None
        llf = 0.0
        for sl in self._chunks():
            llf += kernels.chunk_derivatives(
                self.X[sl], self.y[sl], self.w[sl], beta, score, acc, work
            )
        info = kernels.finish_information(acc) if hessian else None
        return Derivatives(llf, score, info)

    # -- a cheap approximation of the information, for the solver's early iterations ----------

    @property
    def sample_rows(self) -> int:
        """Rows of the subsample behind :meth:`approx_information` (0: not worth it)."""
        m = max(SAMPLE_ROWS_PER_PARAM * self.J * self.p, self.n // SAMPLE_FRACTION)
        return m if SAMPLE_MIN_RATIO * m <= self.n else 0

    def approx_information(self, beta) -> np.ndarray | None:
        """The information of a fixed systematic subsample of rows, scaled to the whole data.

        Every ``n // m``-th row (``m`` = :attr:`sample_rows`) is copied once and reused at every
        call, so a call costs about ``m / n`` of :meth:`derivatives` with the information.  It
        estimates the information well enough for Newton directions (the solver converges
        linearly with it, at a rate near the estimate's relative error); it is never used for
        standard errors.  ``None`` when the data are too small
        for a subsample to pay off, or the subsample has no weight.
        """
        if self._sample is None:
            m = self.sample_rows
            if m == 0:
                self._sample = (None, 0.0)
            else:
                rows = np.arange(m) * (self.n // m)
                w = self.w[rows]
                sub = InMemoryBackend(self.X[rows], self.y[rows], w, self.J, self.chunk_rows)
                total = float(w.sum())
                self._sample = (sub, float(self.w.sum()) / total) if total > 0 else (None, 0.0)
        sub, factor = self._sample
        if sub is None:
            return None
        info = sub.derivatives(beta, hessian=True).info
        info *= factor
        return info

    def release(self):
        """Drop the work buffers and the subsample (they are re-created on demand)."""
        self._work = None
        self._sample = None


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
