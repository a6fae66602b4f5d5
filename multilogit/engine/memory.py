"""The in-memory backend: sums the per-chunk kernel results over arrays held in memory.

A backend owns the data and hands out three things to the solver: the log-likelihood with the
score, the same plus the information matrix, and fitted probabilities.  It holds no numerics of
its own: every number comes from :mod:`multilogit.engine.kernels`, summed over chunks in a fixed
order (runs of chunks on threads, see :mod:`multilogit.engine.threads`) so results are bitwise
reproducible.
"""

from __future__ import annotations

import numpy as np

from . import kernels
from .backend import Derivatives, default_chunk_rows
from .threads import default_threads, map_runs

__all__ = ["InMemoryBackend", "predict_linear", "predict_probabilities"]

# The subsample of approx_information: at least this many rows per parameter (the relative error
# of a sampled information matrix shrinks like sqrt(params / rows)) and at least 1/SAMPLE_FRACTION
# of the data; only used when the data hold SAMPLE_MIN_RATIO times as many rows.
SAMPLE_ROWS_PER_PARAM = 64
SAMPLE_FRACTION = 32
SAMPLE_MIN_RATIO = 4

# A thread gets at least this many chunks: below that the start-up costs more than it saves.
_MIN_CHUNKS_PER_THREAD = 2


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

    def __init__(self, X, y, w, J, chunk_rows=None, threads=None):
        self.X = np.ascontiguousarray(X, dtype=np.float64)
        self.y = np.ascontiguousarray(y, dtype=np.int64)
        self.w = np.ascontiguousarray(w, dtype=np.float64)
        self.n, self.p = self.X.shape
        self.J = int(J)
        self.chunk_rows = int(chunk_rows or default_chunk_rows(self.p, self.J))
        self.threads = int(threads or default_threads())
        self._runs = self._split()
        self._work = [None] * len(self._runs)
        self._sample = None

    def _split(self) -> list[slice]:
        """Contiguous runs of whole chunks, one per thread (fixed by n, chunk_rows, threads)."""
        n_chunks = -(-self.n // self.chunk_rows)
        t = max(1, min(self.threads, n_chunks // _MIN_CHUNKS_PER_THREAD))
        cuts = [self.chunk_rows * (k * n_chunks // t) for k in range(t)] + [self.n]
        return [slice(a, b) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]

    def _evaluate_run(self, k, beta, hessian):
        """Log-likelihood, score and information (or ``None``) of run ``k``."""
        work = self._work[k]
        if work is None or work.rows < min(self.chunk_rows, self.n):
            work = kernels.HessianWorkspace(min(self.chunk_rows, self.n), self.p, self.J)
            self._work[k] = work
        run = self._runs[k]
        score = np.zeros((self.J, self.p))
        acc = work.new_accumulator() if hessian else None
        llf = 0.0
        for start in range(run.start, run.stop, self.chunk_rows):
            sl = slice(start, min(start + self.chunk_rows, run.stop))
            llf += kernels.chunk_derivatives(
                self.X[sl], self.y[sl], self.w[sl], beta, score, acc, work
            )
        return llf, score, acc

    def derivatives(self, beta, hessian=True) -> Derivatives:
        """Sum the per-chunk log-likelihood, score and (if asked) information at ``beta``."""
        beta = np.ascontiguousarray(beta, dtype=np.float64).reshape(self.J, self.p)
        parts = map_runs(lambda k: self._evaluate_run(k, beta, hessian), len(self._runs))
        llf, score, info = parts[0]
        for part in parts[1:]:  # in run order: reproducible
            llf += part[0]
            score += part[1]
            if hessian:
                info += part[2]
        return Derivatives(llf, score, info)

    # -- a subsample: a cheap information for the solver's early iterations -------------------

    @property
    def sample_rows(self) -> int:
        """Rows of the subsample behind :meth:`approx_information` (0: not worth it)."""
        m = max(SAMPLE_ROWS_PER_PARAM * self.J * self.p, self.n // SAMPLE_FRACTION)
        return m if SAMPLE_MIN_RATIO * m <= self.n else 0

    def subsample(self):
        """A backend on every ``n // m``-th row (``m`` = :attr:`sample_rows`), or ``None`` when
        the data are too small for a subsample to pay off or the subsample has no weight.

        The rows are copied once (``m`` is at most ``n / 4``) and the backend is kept; it shares
        this backend's work buffers (the two are never evaluated at the same time).
        """
        if self._sample is None:
            m = self.sample_rows
            sub, factor = None, 0.0
            if m:
                rows = np.arange(m) * (self.n // m)
                w = self.w[rows]
                if w.sum() > 0:
                    sub = InMemoryBackend(
                        self.X[rows], self.y[rows], w, self.J, self.chunk_rows, self.threads
                    )
                    sub._work = self._work
                    factor = float(self.w.sum()) / float(w.sum())
            self._sample = (sub, factor)
        return self._sample[0]

    def approx_information(self, beta) -> np.ndarray | None:
        """The information of :meth:`subsample`, scaled to the whole data (``None`` without a
        subsample).

        A call costs about ``m / n`` of :meth:`derivatives` with the information.  It estimates
        the information well enough for Newton directions (the solver converges linearly with
        it, at a rate near the estimate's relative error); it is never used for standard errors.
        """
        sub = self.subsample()
        if sub is None:
            return None
        info = sub.derivatives(beta, hessian=True).info
        info *= self._sample[1]
        return info

    def release(self):
        """Drop the work buffers and the subsample (they are re-created on demand)."""
        self._work = [None] * len(self._runs)
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
