"""Every operation of the backend protocol over one primitive: reading a range of rows.

A :class:`ChunkedBackend` knows only how to read rows ``start:stop`` (the design rows, the
equation codes, the likelihood and the sampling weights; optionally named integer columns and
the source data).  Every reduction of :class:`~multilogit.engine.backend.Backend` is built on
that: the rows are cut into chunks of ``chunk_rows``, the chunks into one contiguous run per
thread; each thread reads its own run chunk by chunk, applies the per-chunk kernel of
:mod:`multilogit.engine.kernels` and sums into its own accumulator; the runs are added in run
order.  For a fixed ``chunk_rows`` and number of threads the results are therefore bitwise
reproducible and do not depend on where the rows come from: arrays in memory
(:class:`ArrayBackend`, :class:`~multilogit.engine.memory.InMemoryBackend`) or files on disk
(:class:`~multilogit.engine.spill.SpillBackend`).  At most one chunk per thread is held at a
time, so memory does not grow with the number of rows (except where an operation's result
does: :meth:`ChunkedBackend.probabilities`, :meth:`ChunkedBackend.distinct_rows`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from ..lazy import lazy_module
from . import kernels
from .backend import Chunk, Derivatives, default_chunk_rows, scale_derivatives
from .progress import Progress
from .threads import chunk_runs, default_threads, map_runs, stop_if_cancelled

# Imported at the first factorisation, not with multilogit (see multilogit.lazy).
linalg = lazy_module("scipy.linalg")

__all__ = ["ArrayBackend", "ChunkedBackend", "Rows", "subsample_size"]

# The subsample of approx_information: at least this many rows per parameter (the relative error
# of a sampled information matrix shrinks like sqrt(params / rows)) and at least 1/SAMPLE_FRACTION
# of the data; only used when the data hold SAMPLE_MIN_RATIO times as many rows.
SAMPLE_ROWS_PER_PARAM = 64
SAMPLE_FRACTION = 32
SAMPLE_MIN_RATIO = 4
# ... but no more than this many rows (or SAMPLE_ROWS_PER_PARAM per parameter, if more): the
# subsample is held in memory, and for data larger than memory it must not grow with the rows.
# At 2**18 rows its relative error is already a few percent at most for models whose
# information fits in memory, so the sampled Newton phase still converges fast.
SAMPLE_MAX_ROWS = 1 << 18


def subsample_size(n: int, p: int, J: int) -> int:
    """Rows of the subsample behind ``approx_information`` for ``n`` rows and ``J p``
    parameters (0: not worth it).  Every backend uses this rule, so the solver takes the same
    path whatever holds the rows."""
    per_param = SAMPLE_ROWS_PER_PARAM * J * p
    m = max(per_param, min(n // SAMPLE_FRACTION, SAMPLE_MAX_ROWS))
    return m if SAMPLE_MIN_RATIO * m <= n else 0


# cluster_meat holds the score sums of at most this many bytes of groups at a time (all threads'
# accumulators together): a few percent of a design of a million rows, and large enough that
# tens of thousands of groups take one pass.
GROUP_BLOCK_BYTES = 1 << 24

# r_factor stacks one q x q factor per block of rows; past this many the stack is factored into
# one, so its memory stays bounded however many rows there are.
R_STACK_BLOCKS = 512


@dataclass(frozen=True)
class Rows:
    """Rows ``start:stop`` of a backend, as read by ``ChunkedBackend.read_rows``.

    Attributes
    ----------
    rows : slice
        Their positions among the backend's rows.
    X : ndarray, shape (m, p)
        Design rows, float64, C-contiguous.
    y : ndarray of int64, shape (m,)
        Equation index of each row's outcome (``-1`` for the reference).
    w : ndarray, shape (m,)
        Likelihood weights :math:`f_i w_i`.
    sampling : ndarray, shape (m,), or None
        Sampling weights alone (``None``: the backend has none).
    """

    rows: slice
    X: np.ndarray
    y: np.ndarray
    w: np.ndarray
    sampling: np.ndarray | None = None

    @property
    def meat_weights(self) -> np.ndarray:
        """:math:`f_i w_i^2`: the weight of a row's score outer product in the robust meat."""
        return self.w if self.sampling is None else self.w * self.sampling


class ChunkedBackend(ABC):
    """A :class:`~multilogit.engine.backend.Backend` built on reading ranges of rows.

    Subclasses implement :meth:`read_rows`; they may override :meth:`read_column` (named integer
    columns, e.g. cluster codes), :meth:`read_weights` (when the weights can be read without the
    design rows) and :meth:`frame_rows` (the source data of a range of rows).

    Parameters
    ----------
    n, p, J : int
        Rows, design columns and non-reference outcomes.
    chunk_rows : int, optional
        Rows per chunk (default: :func:`~multilogit.engine.backend.default_chunk_rows`).
    threads : int, optional
        Threads of one evaluation (default: :func:`~multilogit.engine.threads.default_threads`).
    has_sampling : bool
        Whether :meth:`read_rows` returns sampling weights.
    """

    def __init__(
        self,
        n: int,
        p: int,
        J: int,
        chunk_rows: int | None = None,
        threads: int | None = None,
        has_sampling: bool = False,
    ):
        self.n, self.p, self.J = int(n), int(p), int(J)
        self.chunk_rows = int(chunk_rows or default_chunk_rows(self.p, self.J))
        if self.chunk_rows < 1:
            raise ValueError(f"chunk_rows must be positive; got {chunk_rows}")
        self.threads = int(threads or default_threads())
        self.has_sampling = bool(has_sampling)
        self._runs = self._split()
        self._work = [None] * len(self._runs)
        self._sample = None
        self._range = None
        self._total = None

    # -- the primitive -------------------------------------------------------------------------

    @abstractmethod
    def read_rows(self, start: int, stop: int) -> Rows:
        """Rows ``start:stop`` (``0 <= start <= stop <= n``)."""

    def read_column(self, name: str, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` of the named int64 column (``KeyError``: no such column)."""
        raise KeyError(f"this backend holds no column {name!r}")

    def read_weights(self, start: int, stop: int) -> np.ndarray:
        """Likelihood weights of rows ``start:stop``."""
        return self.read_rows(start, stop).w

    def frame_rows(self, start: int, stop: int):
        """The source data of rows ``start:stop`` (``None``: the backend does not hold it)."""
        return None

    def read_chunk(self, k: int) -> Rows:
        """Chunk ``k``: rows ``k * chunk_rows`` up to the next multiple or ``n``."""
        if not 0 <= k < self.n_chunks:
            raise IndexError(f"chunk {k} out of range (the backend has {self.n_chunks})")
        start = k * self.chunk_rows
        return self.read_rows(start, min(start + self.chunk_rows, self.n))

    @property
    def n_chunks(self) -> int:
        return -(-self.n // self.chunk_rows)

    # -- runs and chunks -----------------------------------------------------------------------

    def _split(self) -> list[slice]:
        """Contiguous runs of whole chunks, one per thread (fixed by n, chunk_rows, threads)."""
        return chunk_runs(self.n, self.chunk_rows, self.threads)

    def _chunks_of(self, run: slice) -> Iterator[slice]:
        """The chunks of a run; in a worker of an interrupted pass, none after the next."""
        for start in range(run.start, run.stop, self.chunk_rows):
            stop_if_cancelled()
            yield slice(start, min(start + self.chunk_rows, run.stop))

    def _map_chunks(self, fn: Callable[[slice], object]) -> list:
        """Per run (one per thread), ``fn(rows)`` over its chunks summed in order; the runs'
        sums, in run order."""

        def run(k):
            total = None
            for sl in self._chunks_of(self._runs[k]):
                part = fn(sl)
                total = part if total is None else total + part
            return total

        return [part for part in map_runs(run, len(self._runs)) if part is not None]

    def _sum_runs(self, run: Callable[[int], np.ndarray]) -> np.ndarray:
        """``run(0) + run(1) + ...`` over the threads' runs, computed in parallel and added in
        run order (reproducible); ``run(k)`` returns its run's own accumulator."""
        parts = map_runs(run, len(self._runs))
        out = parts[0]
        for part in parts[1:]:
            out += part
        return out

    def _sum_chunks(self, fn, zero):
        out = zero
        for part in self._map_chunks(fn):  # in run order: reproducible
            out = out + part
        return out

    def _read(self, sl: slice) -> Rows:
        return self.read_rows(sl.start, sl.stop)

    def _beta(self, beta) -> np.ndarray:
        return np.ascontiguousarray(beta, dtype=np.float64).reshape(self.J, self.p)

    # -- log-likelihood, score and information -------------------------------------------------

    def _workspace(self, k: int) -> kernels.HessianWorkspace:
        work = self._work[k]
        if work is None or work.rows < min(self.chunk_rows, self.n):
            work = kernels.HessianWorkspace(min(self.chunk_rows, self.n), self.p, self.J)
            self._work[k] = work
        return work

    def _evaluate_run(self, k, beta, hessian):
        """Log-likelihood, score and information (or ``None``) of run ``k``."""
        work = self._workspace(k)
        score = np.zeros((self.J, self.p))
        acc = work.new_accumulator() if hessian else None
        llf = 0.0
        for sl in self._chunks_of(self._runs[k]):
            r = self._read(sl)
            llf += kernels.chunk_derivatives(r.X, r.y, r.w, beta, score, acc, work)
        return llf, score, acc

    def derivatives(self, beta, hessian: bool = True) -> Derivatives:
        """Sum the per-chunk log-likelihood, score and (if asked) information at ``beta``."""
        beta = self._beta(beta)
        parts = map_runs(lambda k: self._evaluate_run(k, beta, hessian), len(self._runs))
        llf, score, info = parts[0]
        for part in parts[1:]:  # in run order: reproducible
            llf += part[0]
            score += part[1]
            if hessian:
                info += part[2]
        return Derivatives(llf, score, info)

    def information_derivatives(self, beta) -> Derivatives:
        """:meth:`derivatives` with the information, for one evaluation of a large one (the
        covariance after a matrix-free fit): the rows are read in blocks of about ``J p / 4``
        rows (whole chunks) instead of chunk by chunk.

        Each block adds its ``B^T B`` to the ``(J p)^2`` accumulator, which for hundreds of
        outcomes is far larger than the cache: per chunk, reading and writing it costs more
        than the product, and blocks of ``J p / 4`` rows cut that traffic while the block's
        factor stays a quarter of the accumulator.  The same sums as :meth:`derivatives` up
        to rounding (the same when the blocks are single chunks).
        """
        beta = self._beta(beta)
        per = (self.J * self.p // 4) // self.chunk_rows
        if per <= 1:
            return self.derivatives(beta, hessian=True)
        step = per * self.chunk_rows

        def run(k):
            rows = self._runs[k]
            size = max(0, min(step, rows.stop - rows.start))
            work = kernels.HessianWorkspace(size, self.p, self.J)
            score = np.zeros((self.J, self.p))
            acc = work.new_accumulator()
            llf = 0.0
            for start in range(rows.start, rows.stop, step):
                r = self.read_rows(start, min(start + step, rows.stop))
                llf += kernels.chunk_derivatives(r.X, r.y, r.w, beta, score, acc, work)
            return llf, score, acc

        parts = map_runs(run, len(self._runs))
        llf, score, info = parts[0]
        for part in parts[1:]:  # in run order: reproducible
            llf += part[0]
            score += part[1]
            info += part[2]
        return Derivatives(llf, score, info)

    # -- a subsample: a cheap information for the solver's early iterations --------------------

    @property
    def sample_rows(self) -> int:
        """Rows of the subsample behind :meth:`approx_information` (0: not worth it)."""
        return subsample_size(self.n, self.p, self.J)

    def gather(self, positions: np.ndarray) -> Rows:
        """The rows at increasing ``positions``, copied into memory (one pass over the chunks
        that hold them)."""
        positions = np.asarray(positions, dtype=np.int64)
        parts = []
        for k in range(self.n_chunks):
            a, b = k * self.chunk_rows, min((k + 1) * self.chunk_rows, self.n)
            lo, hi = np.searchsorted(positions, [a, b])
            if hi > lo:
                r = self.read_rows(a, b)
                sel = positions[lo:hi] - a
                s = None if r.sampling is None else r.sampling[sel]
                parts.append((r.X[sel], r.y[sel], r.w[sel], s))
        if not parts:
            return Rows(slice(0, 0), np.empty((0, self.p)), np.empty(0, np.int64), np.empty(0))
        X, y, w = (np.concatenate([p[i] for p in parts]) for i in range(3))
        s = None if parts[0][3] is None else np.concatenate([p[3] for p in parts])
        return Rows(slice(0, len(positions)), np.ascontiguousarray(X), y, w, s)

    def total_weight(self) -> float:
        """The sum of the likelihood weights (per-chunk sums added in chunk order)."""
        if self._total is None:
            total = 0.0
            for k in range(self.n_chunks):
                a = k * self.chunk_rows
                total += float(self.read_weights(a, min(a + self.chunk_rows, self.n)).sum())
            self._total = total
        return self._total

    def subsample(self) -> ArrayBackend | None:
        """A backend on every ``n // m``-th row (``m`` = :attr:`sample_rows`), or ``None`` when
        the data are too small for a subsample to pay off or the subsample has no weight.

        The rows are read once and kept in memory (``m`` is at most ``n / 4``, and ``n / 32``
        on large data); the subsample shares this backend's work buffers (the two are never
        evaluated at the same time).
        """
        if self._sample is None:
            m = self.sample_rows
            sub, factor = None, 0.0
            if m:
                rows = self.gather(np.arange(m) * (self.n // m))
                # Read-only like the model's design and weights: Numba compiles (and a fresh
                # process loads from its cache) one specialisation per array flag set, so the
                # kernels then run one for the subsample and the full data.
                rows.X.setflags(write=False)
                rows.w.setflags(write=False)
                if rows.w.sum() > 0:
                    sub = ArrayBackend(
                        rows.X, rows.y, rows.w, self.J, self.chunk_rows, self.threads
                    )
                    sub._work = self._work
                    factor = self.total_weight() / float(rows.w.sum())
            self._sample = (sub, factor)
        return self._sample[0]

    def approx_derivatives(self, beta, hessian: bool = True) -> Derivatives | None:
        """Log-likelihood, score and (with ``hessian``) information of :meth:`subsample`,
        each scaled to the whole data (``None`` without a subsample).

        A call costs about ``m / n`` of :meth:`derivatives`.  The information estimates the
        data's well enough for Newton directions (the solver converges linearly with it, at a
        rate near the estimate's relative error); it is never used for standard errors.
        """
        sub = self.subsample()
        if sub is None:
            return None
        return scale_derivatives(sub.derivatives(beta, hessian=hessian), self._sample[1])

    def approx_information(self, beta) -> np.ndarray | None:
        """The information of :meth:`subsample`, scaled to the whole data (``None`` without a
        subsample); see :meth:`approx_derivatives`."""
        d = self.approx_derivatives(beta, hessian=True)
        return None if d is None else d.info

    def release(self) -> None:
        """Drop the work buffers and the subsample (they are re-created on demand)."""
        self._work = [None] * len(self._runs)
        self._sample = None
        self._probability_store = None

    # -- the other reductions of the Backend protocol ------------------------------------------

    def hessian_vector(self, beta, v) -> np.ndarray:
        """The information at ``beta`` times ``v`` (flat, ``(J p,)``), matrix-free."""
        beta = self._beta(beta)
        V = np.ascontiguousarray(v, dtype=np.float64).reshape(self.J, self.p)

        def chunk(sl):
            r = self._read(sl)
            out = np.zeros((self.J, self.p))
            kernels.chunk_hessian_vector(r.X, r.w, beta, V, out)
            return out

        return self._sum_chunks(chunk, np.zeros((self.J, self.p))).ravel()

    def block_information(self, beta) -> np.ndarray:
        """The ``J`` diagonal ``p x p`` blocks of the information at ``beta`` and, last, the
        sum of all its blocks, ``(J + 1, p, p)``: one pass, never the ``(J p)^2`` matrix (see
        :func:`~multilogit.engine.kernels.chunk_block_information`)."""
        beta = self._beta(beta)
        tri = self.p * (self.p + 1) // 2

        def run(k):
            work = self._workspace(k)
            acc = np.zeros((self.J + 1, tri))
            for sl in self._chunks_of(self._runs[k]):
                r = self._read(sl)
                kernels.chunk_block_information(r.X, r.w, beta, acc, work)
            return acc

        return kernels.unpack_blocks(self._sum_runs(run), self.p)

    def hessian_operator(self, beta, max_bytes: float = 0) -> Callable[[np.ndarray], np.ndarray]:
        """:meth:`hessian_vector` at a fixed ``beta``, as a function of ``v``, for a solver that
        multiplies one information by many vectors (conjugate gradients).

        When the probabilities of all rows take at most ``max_bytes`` (``8 n J`` bytes) the
        first product keeps them: each later one then costs two thin BLAS products per chunk
        instead of three and the exponentials.  Otherwise each product recomputes them.  The
        ``(n, J)`` buffer is kept for the next operator (one per Newton iteration) until
        :meth:`release`; an operator is valid until the next one is made.
        """
        beta = self._beta(beta)
        store = self._probability_buffer(max_bytes)
        return self._operator(beta, store, [False] * len(self._runs))

    def derivatives_and_operator(self, beta, max_bytes: float = 0):
        """:meth:`derivatives` without the information, and :meth:`hessian_operator` at the
        same ``beta``, in one pass: when the probabilities fit ``max_bytes`` the pass keeps
        them, so the operator's first product needs no exponentials either.  The
        log-likelihood and score are those of :meth:`derivatives`, bit for bit.

        Returns
        -------
        (Derivatives, callable)
        """
        beta = self._beta(beta)
        store = self._probability_buffer(max_bytes)
        if store is None:
            return self.derivatives(beta, hessian=False), self._operator(beta, None, None)

        def run(k):
            # _evaluate_run's sums, in its order, keeping each chunk's probabilities.
            work = self._workspace(k)
            score = np.zeros((self.J, self.p))
            llf = 0.0
            for sl in self._chunks_of(self._runs[k]):
                r = self._read(sl)
                llf += kernels.chunk_derivatives(r.X, r.y, r.w, beta, score, None, work)
                store[sl] = work.E[: sl.stop - sl.start]
            return llf, score

        parts = map_runs(run, len(self._runs))
        llf, score = parts[0]
        for part in parts[1:]:  # in run order: reproducible
            llf += part[0]
            score += part[1]
        return Derivatives(llf, score, None), self._operator(beta, store, [True] * len(parts))

    def _probability_buffer(self, max_bytes: float) -> np.ndarray | None:
        """The ``(n, J)`` buffer of kept probabilities, when it fits ``max_bytes``."""
        if 8.0 * self.n * self.J > max_bytes:
            return None
        store = getattr(self, "_probability_store", None)
        if store is None or store.shape != (self.n, self.J):
            store = np.empty((self.n, self.J))
            self._probability_store = store
        return store

    def _operator(self, beta, store, filled):
        """The products at ``beta``; ``store`` holds (``filled[k]``: already, else from the
        first product on) the probabilities of run ``k``'s rows, or is ``None``."""

        def apply(v) -> np.ndarray:
            V = np.ascontiguousarray(v, dtype=np.float64).reshape(self.J, self.p)

            def run(k):
                work = self._workspace(k)
                out = np.zeros((self.J, self.p))
                for sl in self._chunks_of(self._runs[k]):
                    r = self._read(sl)
                    m = sl.stop - sl.start
                    if store is None:
                        P = kernels.chunk_probabilities_nonref(r.X, beta, work.E[:m])
                    elif filled[k]:
                        P = store[sl]
                    else:
                        P = kernels.chunk_probabilities_nonref(r.X, beta, store[sl])
                    kernels.hessian_vector_at(r.X, r.w, P, V, out, work.R[:m])
                if store is not None:
                    filled[k] = True  # each run is one thread's: no two write one entry
                return out

            return self._sum_runs(run).ravel()

        return apply

    def score_outer(self, beta) -> np.ndarray:
        """:math:`\\sum_i f_i w_i^2 s_i s_i^\\top` (the robust meat), ``(J p, J p)``.

        One pass: each thread fills one chunk-sized buffer of scaled scores at a time and adds
        its ``syrk`` product to its own accumulator; the runs are added in order.
        """
        beta = self._beta(beta)
        q = self.J * self.p
        rows = min(self.chunk_rows, self.n)

        def run(k):
            work = kernels.ScoreWorkspace(rows, self.p, self.J)
            acc = np.zeros((q, q))
            for sl in self._chunks_of(self._runs[k]):
                r = self._read(sl)
                kernels.chunk_meat(r.X, r.y, r.meat_weights, beta, acc, work)
            return acc

        return self._sum_runs(run)

    def _codes(self, codes, n_groups: int) -> Callable[[slice], np.ndarray]:
        """A reader of the group codes of a range of rows, from an array or a named column."""
        if isinstance(codes, str):
            name = codes

            def read(sl):
                c = np.ascontiguousarray(self.read_column(name, sl.start, sl.stop), np.int64)
                if len(c) and (c.min() < 0 or c.max() >= n_groups):
                    raise ValueError(f"column {name!r} holds codes outside 0..{n_groups - 1}")
                return c

            return read
        codes = np.ascontiguousarray(codes, dtype=np.int64)
        if codes.shape != (self.n,):
            raise ValueError(f"codes must have one entry per row ({self.n}); got {codes.shape}")
        if self.n and (codes.min() < 0 or codes.max() >= n_groups):
            raise ValueError(f"codes must lie in 0..{n_groups - 1}")
        return lambda sl: codes[sl]

    def group_scores(self, beta, codes, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
        """:math:`u_g = \\sum_{i \\in g} f_i w_i s_i` for groups ``0..n_groups-1``,
        ``(n_groups, J p)``, and each group's total likelihood weight.

        Parameters
        ----------
        beta : ndarray, shape (J, p)
        codes : ndarray of int, shape (n,), or str
            Each row's group, or the name of a column the backend holds
            (:meth:`read_column`), so that the codes of data larger than memory stay on disk.
        n_groups : int
        """
        beta = self._beta(beta)
        read_codes = self._codes(codes, n_groups)
        sums = self._block_sums(beta, read_codes, 0, n_groups)
        return sums, self._group_weights(read_codes, n_groups)

    def _block_sums(self, beta, read_codes, g0: int, size: int) -> np.ndarray:
        """The score sums of groups ``g0 .. g0 + size - 1``, ``(size, J p)``: one accumulator
        per thread, added to in place chunk after chunk, the runs added in order."""
        q = self.J * self.p

        def run(k):
            sums = np.zeros((size, q))
            for sl in self._chunks_of(self._runs[k]):
                r = self._read(sl)
                kernels.chunk_cluster_sums(r.X, r.y, r.w, read_codes(sl), beta, g0, sums)
            return sums

        return self._sum_runs(run)

    def cluster_meat(self, beta, codes, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
        """:math:`\\sum_g u_g u_g^\\top` of the group score sums :math:`u_g` of
        :meth:`group_scores`, ``(J p, J p)``, and each group's total likelihood weight.

        The sums are never held for all groups at once: the groups are taken in blocks whose
        sums (one accumulator per thread) fit in :data:`GROUP_BLOCK_BYTES`, one pass over the
        rows per block, and each block's sums are added to the meat by one ``syrk`` product.
        A pass skips the rows of other blocks after reading their code, so more blocks cost
        little more than one pass in memory; rows read from disk are read once per block.
        """
        beta = self._beta(beta)
        read_codes = self._codes(codes, n_groups)
        q = self.J * self.p
        per_group = 8 * q * (len(self._runs) + 1)
        block = max(1, min(n_groups, GROUP_BLOCK_BYTES // per_group))
        meat = np.zeros((q, q))
        for g0 in range(0, n_groups, block):
            sums = self._block_sums(beta, read_codes, g0, min(block, n_groups - g0))
            meat += sums.T @ sums
        return meat, self._group_weights(read_codes, n_groups)

    def _group_weights(self, read_codes, n_groups: int) -> np.ndarray:
        def chunk(sl):
            w = self.read_weights(sl.start, sl.stop)
            return np.bincount(read_codes(sl), weights=w, minlength=n_groups)

        return self._sum_chunks(chunk, np.zeros(n_groups))

    def positive_rows(self) -> int:
        """The number of rows with positive likelihood weight."""
        counts = self._map_chunks(
            lambda sl: int(np.count_nonzero(self.read_weights(sl.start, sl.stop) > 0))
        )
        return int(sum(counts))

    def column_range(self) -> tuple[np.ndarray, np.ndarray]:
        """Each design column's smallest and largest finite value over all rows."""
        if self._range is None:
            lo, hi = np.full(self.p, np.inf), np.full(self.p, -np.inf)
            if self.n:

                def run(k):
                    a, b = np.full(self.p, np.inf), np.full(self.p, -np.inf)
                    for sl in self._chunks_of(self._runs[k]):
                        X = self._read(sl).X
                        clo, chi = kernels.scan_columns(X, np.empty(len(X), dtype=np.bool_))
                        np.minimum(a, clo, out=a)
                        np.maximum(b, chi, out=b)
                    return a, b

                for a, b in map_runs(run, len(self._runs)):
                    np.minimum(lo, a, out=lo)
                    np.maximum(hi, b, out=hi)
            self._range = (lo, hi)
        return self._range

    def set_column_range(self, lo: np.ndarray, hi: np.ndarray) -> None:
        """Adopt a column range already found (by the missing-value scan of the design)."""
        self._range = (np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64))

    @staticmethod
    def _positive(r: Rows) -> np.ndarray:
        return r.X if np.all(r.w > 0) else r.X[r.w > 0]

    def gram(self, scale) -> np.ndarray:
        """:math:`\\tilde X^\\top \\tilde X` of :math:`\\tilde X = X / \\text{scale}` over the
        rows with positive weight."""
        scale = np.asarray(scale, dtype=np.float64)

        def chunk(sl):
            Xs = self._positive(self._read(sl)) / scale
            return Xs.T @ Xs

        with np.errstate(over="ignore", invalid="ignore"):
            return self._sum_chunks(chunk, np.zeros((self.p, self.p)))

    def _positive_blocks(self, step: int) -> Iterator[np.ndarray]:
        """The rows with positive weight, in order, in blocks of ``step`` rows (the last may be
        shorter), whatever the chunking."""
        pending, held = [], 0
        for k in range(self.n_chunks):
            X = self._positive(self.read_chunk(k))
            while len(X):
                take = min(step - held, len(X))
                pending.append(X[:take])
                held += take
                X = X[take:]
                if held == step:
                    yield pending[0] if len(pending) == 1 else np.vstack(pending)
                    pending, held = [], 0
        if held:
            yield pending[0] if len(pending) == 1 else np.vstack(pending)

    def r_factor(self, scale, ones: bool = False) -> np.ndarray:
        """The triangular factor ``R`` of a QR decomposition of :math:`X / \\text{scale}` (rows
        with positive weight; with ``ones``, a column of ones appended): its columns have the
        norms and angles of the design's, so rank decisions on ``R`` are those on the design.

        Tall-skinny QR: the R factors of blocks of rows, stacked and factored again, are an R of
        the whole (orthogonal transformations preserve column norms and angles).  The stack is
        factored into one whenever it holds :data:`R_STACK_BLOCKS` factors.
        """
        scale = np.asarray(scale, dtype=np.float64)
        q = self.p + bool(ones)

        def qr(B):
            return linalg.qr(B, mode="r", check_finite=False)[0]

        Rs = []
        for X in self._positive_blocks(max(self.chunk_rows, 4 * q)):
            B = X / scale
            Rs.append(qr(np.column_stack([B, np.ones(len(B))]) if ones else B))
            if self._r_stack_blocks and len(Rs) >= self._r_stack_blocks:
                Rs = [qr(np.vstack(Rs))]
        if not Rs:
            return np.zeros((0, q))
        R = Rs[0] if len(Rs) == 1 else qr(np.vstack(Rs))
        return R[: min(R.shape)]

    _r_stack_blocks: int | None = R_STACK_BLOCKS

    def pair_stats(self, D) -> np.ndarray:
        """Separation statistics of a direction ``D`` (``(J, p)``) over rows with positive
        weight (see :meth:`~multilogit.engine.backend.Backend.pair_stats`)."""
        D = self._beta(D)

        def run(k):
            out = np.array([0.0, 0.0, np.inf, -np.inf])
            for sl in self._chunks_of(self._runs[k]):
                r = self._read(sl)
                kernels.chunk_pair_stats(r.X @ D.T, r.y, r.w, out)
            return out

        parts = map_runs(run, len(self._runs))
        out = parts[0]
        for part in parts[1:]:
            out[:2] += part[:2]
            out[2], out[3] = min(out[2], part[2]), max(out[3], part[3])
        return out

    def distinct_rows(self, scale) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Distinct ``(x / scale, y)`` rows with positive weight and their summed weights.

        Each chunk is reduced to its distinct rows first, so memory grows with the number of
        distinct rows, not with the number of rows.
        """
        scale = np.asarray(scale, dtype=np.float64)
        keys, sums = [], []
        for k in range(self.n_chunks):
            r = self.read_chunk(k)
            pos = r.w > 0
            key = np.column_stack([r.X[pos] / scale, r.y[pos].astype(np.float64)])
            uniq, inverse = np.unique(key, axis=0, return_inverse=True)
            keys.append(uniq)
            sums.append(np.bincount(inverse.ravel(), weights=r.w[pos], minlength=len(uniq)))
        if not keys:
            return np.empty((0, self.p)), np.empty(0, np.int64), np.empty(0)
        uniq, inverse = np.unique(np.vstack(keys), axis=0, return_inverse=True)
        wsum = np.bincount(inverse.ravel(), weights=np.concatenate(sums), minlength=len(uniq))
        return uniq[:, :-1], uniq[:, -1].astype(np.int64), wsum

    def iter_probabilities(
        self, beta, chunk_rows: int | None = None
    ) -> Iterator[tuple[slice, np.ndarray]]:
        """Fitted probabilities chunk by chunk: ``(rows, P)`` with ``P`` of shape
        ``(m, J + 1)`` (the J non-reference outcomes, then the reference), for outputs too
        large to hold."""
        beta = self._beta(beta)
        for sl in self._steps(chunk_rows):
            X = self._read(sl).X
            yield sl, kernels.chunk_probabilities(X, beta, np.empty((len(X), self.J + 1)))

    def iter_linear(
        self, beta, chunk_rows: int | None = None
    ) -> Iterator[tuple[slice, np.ndarray]]:
        """Linear predictors chunk by chunk: ``(rows, eta)`` with ``eta`` of shape ``(m, J)``."""
        beta = self._beta(beta)
        for sl in self._steps(chunk_rows):
            X = self._read(sl).X
            yield sl, kernels.chunk_linear(X, beta, np.empty((len(X), self.J)))

    def probabilities(self, beta) -> np.ndarray:
        """Fitted probabilities ``(n, J + 1)``: the J non-reference outcomes, then the
        reference."""
        out = np.empty((self.n, self.J + 1))
        for sl, P in self.iter_probabilities(beta):
            out[sl] = P
        return out

    def linear(self, beta) -> np.ndarray:
        """Linear predictors ``(n, J)`` against the reference outcome."""
        out = np.empty((self.n, self.J))
        for sl, eta in self.iter_linear(beta):
            out[sl] = eta
        return out

    def _steps(self, chunk_rows: int | None) -> Iterator[slice]:
        step = int(chunk_rows or self.chunk_rows)
        for start in range(0, self.n, step):
            yield slice(start, min(start + step, self.n))

    def reduce(
        self,
        fn: Callable[[Chunk], object],
        chunk_rows: int | None = None,
        progress: str | None = None,
        frames: bool = True,
    ) -> list:
        """``[fn(chunk) for chunk in the rows]``, in row order (for reductions whose per-chunk
        work is not one of the operations above, such as marginal effects); with
        ``progress``, a bar of that label over the rows (see :mod:`.progress`); with
        ``frames=False``, chunks without their source data (:meth:`frame_rows` not read)."""
        bar = Progress(progress, self.n, "rows", enabled=None if progress else False)
        out = []
        for sl in self._steps(chunk_rows):
            r = self._read(sl)
            frame = self.frame_rows(sl.start, sl.stop) if frames else None
            out.append(fn(Chunk(sl, r.X, r.y, r.w, frame)))
            bar.update(sl.stop - sl.start)
        bar.close()
        return out


class ArrayBackend(ChunkedBackend):
    """A :class:`ChunkedBackend` whose chunks are slices of arrays held in memory.

    Every operation is the generic chunked one; :class:`~multilogit.engine.memory.
    InMemoryBackend` adds the source data of formula models and whole-array shortcuts.

    Parameters
    ----------
    X : ndarray, shape (n, p)
    y : ndarray of int, shape (n,)
        Equation index of each row's outcome, ``-1`` for the reference.
    w : ndarray, shape (n,)
        Likelihood weights (frequency times sampling weight).
    J : int
        Number of non-reference outcomes.
    chunk_rows, threads : int, optional
    sampling : ndarray, shape (n,), optional
        Sampling weights alone (they enter the robust meat squared); ``None``: none.
    columns : dict of str to ndarray, optional
        Named integer columns (e.g. cluster codes), read by :meth:`read_column`.
    """

    def __init__(
        self,
        X,
        y,
        w,
        J: int,
        chunk_rows: int | None = None,
        threads: int | None = None,
        sampling=None,
        columns: dict | None = None,
    ):
        self.X = np.ascontiguousarray(X, dtype=np.float64)
        self.y = np.ascontiguousarray(y, dtype=np.int64)
        self.w = np.ascontiguousarray(w, dtype=np.float64)
        self.sampling = None if sampling is None else np.asarray(sampling, dtype=np.float64)
        self.columns = {k: np.asarray(v, dtype=np.int64) for k, v in (columns or {}).items()}
        n, p = self.X.shape
        super().__init__(n, p, J, chunk_rows, threads, has_sampling=sampling is not None)

    def read_rows(self, start: int, stop: int) -> Rows:
        sl = slice(start, stop)
        s = None if self.sampling is None else self.sampling[sl]
        return Rows(sl, self.X[sl], self.y[sl], self.w[sl], s)

    def read_weights(self, start: int, stop: int) -> np.ndarray:
        return self.w[start:stop]

    def read_column(self, name: str, start: int, stop: int) -> np.ndarray:
        if name not in self.columns:
            raise KeyError(f"this backend holds no column {name!r}")
        return self.columns[name][start:stop]

    def total_weight(self) -> float:
        return float(self.w.sum())

    def gather(self, positions: np.ndarray) -> Rows:
        positions = np.asarray(positions, dtype=np.int64)
        s = None if self.sampling is None else self.sampling[positions]
        return Rows(
            slice(0, len(positions)), self.X[positions], self.y[positions], self.w[positions], s
        )
