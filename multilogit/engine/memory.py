"""The in-memory backend: sums the per-chunk kernel results over arrays held in memory.

A backend owns the data and hands out three things to the solver: the log-likelihood with the
score, the same plus the information matrix, and fitted probabilities.  It holds no numerics of
its own: every number comes from :mod:`multilogit.engine.kernels`, summed over chunks in a fixed
order (runs of chunks on threads, see :mod:`multilogit.engine.threads`) so results are bitwise
reproducible.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg

from . import kernels
from .backend import Chunk, Derivatives, default_chunk_rows
from .threads import default_threads, map_runs, row_runs

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
    """Chunked evaluation over arrays held in memory: the :class:`~.backend.Backend` of
    pandas and NumPy data.

    Parameters
    ----------
    X : ndarray, shape (n, p)
    y : ndarray of int, shape (n,)
        Equation index of each row's outcome, ``-1`` for the reference (see kernels).
    w : ndarray, shape (n,)
        Likelihood weights (frequency times sampling weight).
    J : int
        Number of non-reference outcomes.
    chunk_rows : int, optional
    threads : int, optional
    sampling : ndarray, shape (n,), optional
        Sampling weights alone (they enter the robust meat squared); ``None``: none.
    frame : DataFrame or callable, optional
        The source data of the rows (formula models), handed to :meth:`reduce`; a callable
        returning it is called on first use.
    """

    def __init__(self, X, y, w, J, chunk_rows=None, threads=None, sampling=None, frame=None):
        self.X = np.ascontiguousarray(X, dtype=np.float64)
        self.y = np.ascontiguousarray(y, dtype=np.int64)
        self.w = np.ascontiguousarray(w, dtype=np.float64)
        self.sampling = None if sampling is None else np.asarray(sampling, dtype=np.float64)
        self.frame = frame
        self.n, self.p = self.X.shape
        self.J = int(J)
        self.chunk_rows = int(chunk_rows or default_chunk_rows(self.p, self.J))
        self.threads = int(threads or default_threads())
        self._runs = self._split()
        self._work = [None] * len(self._runs)
        self._sample = None
        self._range = None

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

    # -- the other reductions of the Backend protocol ------------------------------------------

    def _map_chunks(self, fn) -> list:
        """Per run (one per thread), ``fn(slice)`` over its chunks summed in order; the runs'
        sums, in run order."""

        def run(k):
            r = self._runs[k]
            total = None
            for start in range(r.start, r.stop, self.chunk_rows):
                part = fn(slice(start, min(start + self.chunk_rows, r.stop)))
                total = part if total is None else total + part
            return total

        return [part for part in map_runs(run, len(self._runs)) if part is not None]

    def _sum_chunks(self, fn, zero):
        parts = self._map_chunks(fn)
        out = zero
        for part in parts:  # in run order: reproducible
            out = out + part
        return out

    def hessian_vector(self, beta, v) -> np.ndarray:
        beta = np.ascontiguousarray(beta, dtype=np.float64).reshape(self.J, self.p)
        V = np.ascontiguousarray(v, dtype=np.float64).reshape(self.J, self.p)

        def chunk(sl):
            out = np.zeros((self.J, self.p))
            kernels.chunk_hessian_vector(self.X[sl], self.w[sl], beta, V, out)
            return out

        return self._sum_chunks(chunk, np.zeros((self.J, self.p))).ravel()

    def _meat_weights(self) -> np.ndarray:
        return self.w if self.sampling is None else self.w * self.sampling

    def score_outer(self, beta) -> np.ndarray:
        beta = np.ascontiguousarray(beta, dtype=np.float64).reshape(self.J, self.p)
        a = self._meat_weights()
        q = self.J * self.p

        def chunk(sl):
            out = np.zeros((q, q))
            kernels.chunk_score_outer(self.X[sl], self.y[sl], a[sl], beta, out)
            return out

        return self._sum_chunks(chunk, np.zeros((q, q)))

    def group_scores(self, beta, codes, n_groups) -> np.ndarray:
        beta = np.ascontiguousarray(beta, dtype=np.float64).reshape(self.J, self.p)
        codes = np.ascontiguousarray(codes, dtype=np.int64)
        if codes.shape != (self.n,):
            raise ValueError(f"codes must have one entry per row ({self.n}); got {codes.shape}")
        q = self.J * self.p

        def chunk(sl):
            out = np.zeros((n_groups, q))
            kernels.chunk_group_scores(self.X[sl], self.y[sl], self.w[sl], codes[sl], beta, out)
            return out

        sums = self._sum_chunks(chunk, np.zeros((n_groups, q)))
        return sums, np.bincount(codes, weights=self.w, minlength=n_groups)

    def column_range(self) -> tuple[np.ndarray, np.ndarray]:
        if self._range is None:
            if self.n == 0:
                self._range = (np.full(self.p, np.inf), np.full(self.p, -np.inf))
            else:
                self._range = kernels.scan_columns(self.X, np.empty(self.n, dtype=np.bool_))
        return self._range

    def set_column_range(self, lo: np.ndarray, hi: np.ndarray) -> None:
        """Adopt a column range already found (by the missing-value scan of the design)."""
        self._range = (np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64))

    def positive_rows(self) -> int:
        return int(np.count_nonzero(self.w > 0))

    def _positive_rows(self):
        """The design rows with positive weight (a view when every row has one)."""
        return self.X if np.all(self.w > 0) else self.X[self.w > 0]

    def gram(self, scale) -> np.ndarray:
        scale = np.asarray(scale, dtype=np.float64)
        X = self._positive_rows()
        runs = row_runs(len(X), self.threads)

        def run(k):
            Xs = X[runs[k]] / scale
            return Xs.T @ Xs

        with np.errstate(over="ignore", invalid="ignore"):
            parts = map_runs(run, len(runs))
            return sum(parts[1:], parts[0])

    def r_factor(self, scale, ones=False) -> np.ndarray:
        scale = np.asarray(scale, dtype=np.float64)
        X = self._positive_rows()
        q = self.p + bool(ones)

        def block(a, b):
            B = X[a:b] / scale
            return np.column_stack([B, np.ones(len(B))]) if ones else B

        # Tall-skinny QR: the R factors of row blocks, stacked and factored again, are an R of
        # the whole (orthogonal transformations preserve column norms and angles).
        step = max(self.chunk_rows, 4 * q)
        Rs = [
            linalg.qr(block(a, a + step), mode="r", check_finite=False)[0]
            for a in range(0, len(X), step)
        ]
        if not Rs:
            return np.zeros((0, q))
        R = Rs[0] if len(Rs) == 1 else linalg.qr(np.vstack(Rs), mode="r", check_finite=False)[0]
        return R[: min(R.shape)]

    def pair_stats(self, D) -> np.ndarray:
        D = np.ascontiguousarray(D, dtype=np.float64).reshape(self.J, self.p)

        def run(k):
            out = np.array([0.0, 0.0, np.inf, -np.inf])
            r = self._runs[k]
            for start in range(r.start, r.stop, self.chunk_rows):
                sl = slice(start, min(start + self.chunk_rows, r.stop))
                kernels.chunk_pair_stats(self.X[sl] @ D.T, self.y[sl], self.w[sl], out)
            return out

        parts = map_runs(run, len(self._runs))
        out = parts[0]
        for part in parts[1:]:
            out[:2] += part[:2]
            out[2], out[3] = min(out[2], part[2]), max(out[3], part[3])
        return out

    def distinct_rows(self, scale):
        pos = self.w > 0
        key = np.column_stack([self.X[pos] / scale, self.y[pos].astype(np.float64)])
        uniq, inverse = np.unique(key, axis=0, return_inverse=True)
        wsum = np.bincount(inverse.ravel(), weights=self.w[pos], minlength=len(uniq))
        return uniq[:, :-1], uniq[:, -1].astype(np.int64), wsum

    def probabilities(self, beta) -> np.ndarray:
        return predict_probabilities(self.X, beta)

    def linear(self, beta) -> np.ndarray:
        return predict_linear(self.X, beta)

    def source_frame(self):
        """The source data of the rows (``None`` for array models)."""
        if callable(self.frame):
            self.frame = self.frame()
        return self.frame

    def reduce(self, fn, chunk_rows=None) -> list:
        step = int(chunk_rows or self.chunk_rows)
        out = []
        for start in range(0, self.n, step):
            sl = slice(start, min(start + step, self.n))
            frame = None if self.frame is None else self.source_frame().iloc[sl]
            out.append(fn(Chunk(sl, self.X[sl], self.y[sl], self.w[sl], frame)))
        return out


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
