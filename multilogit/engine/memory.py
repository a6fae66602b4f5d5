"""The in-memory backend: the chunked reductions over arrays held in memory.

Its chunks are slices of the arrays (:class:`~multilogit.engine.chunked.ArrayBackend`), so every
number comes from the same per-chunk kernels, summed in the same fixed order, as for rows read
from disk (:mod:`multilogit.engine.spill`).  A few operations whose generic form would copy
rows chunk by chunk work on the whole arrays instead (the Gram matrix, the distinct rows, the
groups' weights, the cluster meat read in group order); they are exact reductions of the same
rows.
"""

from __future__ import annotations

import numpy as np

from . import kernels
from .chunked import ArrayBackend
from .threads import map_runs, row_runs, stop_if_cancelled

__all__ = [
    "GRAM_BLOCK_ROWS",
    "InMemoryBackend",
    "SORTED_GROUP_BLOCK",
    "predict_linear",
    "predict_probabilities",
]

#: Groups whose score sums a thread of :meth:`InMemoryBackend.cluster_meat` holds at a time:
#: their ``(block, J p)`` sums stay in cache, and one ``syrk`` product per block is long enough
#: to run at BLAS speed.
SORTED_GROUP_BLOCK = 1024

#: Rows per block of :meth:`InMemoryBackend.gram` where some rows have no weight: the rows with
#: weight of a block are compressed into a buffer of this many rows (a few MiB at most).
GRAM_BLOCK_ROWS = 1 << 14


class InMemoryBackend(ArrayBackend):
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
        The source data of the rows (formula models), handed to
        :meth:`~multilogit.engine.backend.Backend.reduce`; a callable
        returning it is called on first use.
    """

    # The arrays are in memory already: the stacked block factors of r_factor are a quarter of
    # the design at most, and factoring them in one go keeps the numbers of earlier releases.
    _r_stack_blocks = None

    def __init__(self, X, y, w, J, chunk_rows=None, threads=None, sampling=None, frame=None):
        super().__init__(X, y, w, J, chunk_rows, threads, sampling)
        self.frame = frame

    def source_frame(self):
        """The source data of the rows (``None`` for array models)."""
        if callable(self.frame):
            self.frame = self.frame()
        return self.frame

    def frame_rows(self, start: int, stop: int):
        return None if self.frame is None else self.source_frame().iloc[start:stop]

    def _group_weights(self, read_codes, n_groups: int) -> np.ndarray:
        return np.bincount(read_codes(slice(0, self.n)), weights=self.w, minlength=n_groups)

    def cluster_meat(self, beta, codes, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
        """:math:`\\sum_g u_g u_g^\\top` of the group score sums, ``(J p, J p)``, and each
        group's total likelihood weight.

        One pass over the rows in group order (a counting sort of the codes: one ``(n,)``
        index, no copy of the rows): a group's sum is complete once its last row is read, so
        each thread holds the sums of :data:`SORTED_GROUP_BLOCK` groups at a time and folds them
        into its meat with one ``syrk`` product.  The generic pass over row chunks would have
        to scatter into every group's sum at once (or read the rows once per block of groups).
        Threads take contiguous ranges of groups with about equal numbers of rows; their meats
        are added in order.
        """
        beta = self._beta(beta)
        read_codes = self._codes(codes, n_groups)
        order, starts = kernels.group_order(read_codes(slice(0, self.n)), n_groups)
        q = self.J * self.p
        t = len(self._runs)
        cuts = np.searchsorted(starts, [self.n * k // t for k in range(t)]).tolist()
        cuts = [min(c, n_groups) for c in cuts] + [n_groups]
        cuts[0] = 0

        def run(k):
            meat = np.zeros((q, q))
            U = np.empty((min(SORTED_GROUP_BLOCK, max(cuts[k + 1] - cuts[k], 0)), q))
            for g0 in range(cuts[k], cuts[k + 1], SORTED_GROUP_BLOCK):
                stop_if_cancelled()
                Ub = U[: min(SORTED_GROUP_BLOCK, cuts[k + 1] - g0)]
                kernels.sorted_cluster_sums(self.X, self.y, self.w, beta, order, starts, g0, Ub)
                meat += Ub.T @ Ub
            return meat

        return self._sum_runs(run), self._group_weights(read_codes, n_groups)

    def gram(self, scale) -> np.ndarray:
        # One BLAS product per thread over the whole arrays beats one per chunk.  Rows without
        # weight are left out block by block (compressed into a small per-thread buffer), never
        # by indexing the whole design, which would copy it.
        scale = np.asarray(scale, dtype=np.float64)
        X, pos = self.X, self.w > 0
        runs = row_runs(self.n, self.threads)

        def run(k):
            # X'X of the rows as they are, scaled afterwards: dividing first would copy X.
            sl = runs[k]
            if pos[sl].all():
                Xr = X[sl]
                return Xr.T @ Xr
            buf = np.empty((min(GRAM_BLOCK_ROWS, sl.stop - sl.start), self.p))
            out = np.zeros((self.p, self.p))
            for a in range(sl.start, sl.stop, GRAM_BLOCK_ROWS):
                stop_if_cancelled()
                b = min(a + GRAM_BLOCK_ROWS, sl.stop)
                keep = pos[a:b]
                Xb = (
                    X[a:b]
                    if keep.all()
                    else np.compress(keep, X[a:b], axis=0, out=buf[: int(keep.sum())])
                )
                out += Xb.T @ Xb
            return out

        with np.errstate(over="ignore", invalid="ignore"):
            parts = map_runs(run, len(runs))
            return sum(parts[1:], parts[0]) / np.outer(scale, scale)

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
