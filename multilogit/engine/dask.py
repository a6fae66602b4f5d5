"""The Dask backend: the rows of a fit partitioned on a Dask cluster.

Each operation runs one task per partition that evaluates the partition's rows with the
in-memory backend (:class:`~multilogit.engine.memory.InMemoryBackend` on one thread, so the
per-chunk kernels and their numerics are shared), then combines the per-partition results in a
binary tree of fixed shape over the partitions in order: adjacent pairs first, then pairs of
pairs.  The combination runs in the cluster, so the driver receives one final result
(``(J p, J p)`` at most for the information and the robust meat) and never a block of rows,
except for the row subsample of :meth:`DaskBackend.subsample`.

Reproducibility
---------------
For a fixed partitioning the tree, and every chunk inside a partition, are fixed, so repeated
evaluations give the same bits whatever the timing or the worker a task lands on.  Another
partitioning adds the same per-row terms in another order: the results agree with the
in-memory backend to rounding.

This module imports Dask; nothing in the package imports it unless the user hands over Dask
collections.
"""

from __future__ import annotations

from collections.abc import Callable

import dask
import dask.array as da
import numpy as np
from scipy import linalg

from .backend import Chunk, Derivatives, scale_derivatives
from .chunked import Rows, subsample_size
from .memory import (
    InMemoryBackend,
    predict_linear,
    predict_probabilities,
)
from .progress import Progress

__all__ = ["DaskBackend", "compute_each", "tree_reduce", "with_known_rows"]


# -- per-partition tasks: the in-memory backend on one block --------------------------------


def _local(block, J):
    X, y, w, s = block
    return InMemoryBackend(X, y, w, J, threads=1, sampling=s)


def _partition_op(block, J, method, *args):
    """``InMemoryBackend(block).method(*args)`` (one thread: the cluster parallelises)."""
    return getattr(_local(block, J), method)(*args)


def _partition_groups(block, J, beta, codes):
    """The block's group sums for the groups present in it: ``(codes, sums, weights)``."""
    codes = np.asarray(codes, dtype=np.int64)
    present, local = np.unique(codes, return_inverse=True)
    sums, weight = _local(block, J).group_scores(beta, local.ravel(), len(present))
    return present, sums, weight


def _partition_take(block, rows):
    X, y, w, _ = block
    return X[rows], y[rows], w[rows]


def _partition_weight(block):
    return float(block[2].sum())


def _readonly(a):
    a = a.view()
    a.flags.writeable = False
    return a


def _partition_reduce(fn, block, frame, offset, step):
    """``fn`` on the block's chunks of ``step`` rows (all rows when ``step`` is None)."""
    X, y, w, _ = block
    n = len(y)
    if frame is not None and len(frame) != n:
        raise ValueError(
            f"the frame's partition at row {offset} has {len(frame)} rows; the design block "
            f"has {n}"
        )
    X, y, w = _readonly(X), _readonly(y), _readonly(w)
    step = int(step or max(n, 1))
    out = []
    for a in range(0, n, step):
        sl = slice(a, min(a + step, n))
        part = None if frame is None else frame.iloc[sl]
        out.append(fn(Chunk(slice(offset + a, offset + sl.stop), X[sl], y[sl], w[sl], part)))
    return out


def _stack(*xs):
    return xs


def _block_rows(block, offset) -> Rows:
    X, y, w, s = block
    return Rows(slice(offset, offset + len(y)), X, y, w, s)


def _partition_pair(fn, block_a, block_b, offset):
    """``fn`` on the rows of two backends at the same positions (blocks of equal length)."""
    a, b = _block_rows(block_a, offset), _block_rows(block_b, offset)
    if len(a.y) != len(b.y):
        raise ValueError(f"paired blocks at row {offset} differ in length")
    return fn(a, b)


# -- combinations: each takes two partial results in partition order ------------------------


def _add(a, b):
    return a + b


def _add_quiet(a, b):
    # Huge unscaled columns may overflow a Gram matrix; the in-memory backend ignores that too.
    with np.errstate(over="ignore", invalid="ignore"):
        return a + b


def _add_derivatives(a, b):
    info = None if a.info is None else a.info + b.info
    return Derivatives(a.llf + b.llf, a.score + b.score, info)


def _add_pair_stats(a, b):
    return np.array([a[0] + b[0], a[1] + b[1], min(a[2], b[2]), max(a[3], b[3])])


def _range(a, b):
    return np.minimum(a[0], b[0]), np.maximum(a[1], b[1])


def _stack_r(a, b):
    # Tall-skinny QR: R factors of row blocks, stacked and factored again, are an R of the
    # rows of both blocks.
    S = np.vstack([a, b])
    if len(S) == 0:
        return S
    R = linalg.qr(S, mode="r", check_finite=False)[0]
    return R[: min(R.shape)]


def _merge_groups(a, b):
    # A group present on one side only keeps its sum exactly (0 + x == x), so the sums equal
    # those of dense (n_groups, J p) partials added in the same tree.
    codes = np.union1d(a[0], b[0])
    ia, ib = np.searchsorted(codes, a[0]), np.searchsorted(codes, b[0])
    sums = np.zeros((len(codes), a[1].shape[1]))
    weight = np.zeros(len(codes))
    sums[ia] = a[1]
    weight[ia] = a[2]
    sums[ib] += b[1]
    weight[ib] += b[2]
    return codes, sums, weight


def _merge_distinct(a, b):
    key = np.vstack(
        [
            np.column_stack([a[0], a[1].astype(np.float64)]),
            np.column_stack([b[0], b[1].astype(np.float64)]),
        ]
    )
    uniq, inverse = np.unique(key, axis=0, return_inverse=True)
    wsum = np.bincount(inverse.ravel(), weights=np.concatenate([a[2], b[2]]), minlength=len(uniq))
    return uniq[:, :-1], uniq[:, -1].astype(np.int64), wsum


def tree_reduce(parts: list, combine: Callable) -> object:
    """Combine delayed partial results with ``combine`` in a binary tree of fixed shape.

    Adjacent pairs are combined first (an odd one out moves up unchanged), then pairs of
    those, so the order of the additions depends only on ``len(parts)``, never on timing.

    Parameters
    ----------
    parts : list of dask.delayed.Delayed
        Partial results, in partition order (at least one).
    combine : callable
        ``combine(left, right)`` of two partial results.

    Returns
    -------
    dask.delayed.Delayed
    """
    level = list(parts)
    while len(level) > 1:
        nxt = [dask.delayed(combine)(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def _rows(block):
    return len(block)


def _distributed_client(client):
    """The distributed client that runs a computation: ``client``, else the one
    ``dask.compute`` would use (``None``: a local scheduler)."""
    if client is not None:
        return client
    owner = getattr(dask.base.get_scheduler(), "__self__", None)
    return owner if hasattr(owner, "gather") and hasattr(owner, "compute") else None


def compute_each(tasks: list, client, bar: Progress) -> list:
    """Compute delayed ``tasks`` and return their results in task order, advancing ``bar`` by
    one as each task finishes (in whatever order they finish).

    Parameters
    ----------
    tasks : list of dask.delayed.Delayed
    client : distributed.Client or None
        ``None``: Dask's current scheduler (a default client, or a local scheduler).
    bar : Progress

    Returns
    -------
    list
    """
    client = _distributed_client(client)
    if client is not None:
        from distributed import as_completed

        futures = client.compute(tasks)
        for _ in as_completed(futures, loop=client.loop):
            bar.update(1)
        return client.gather(futures)
    from dask.callbacks import Callback

    keys = {t.key for t in tasks}

    def done(key, *_):
        if key in keys:
            bar.update(1)

    # A local scheduler calls its callbacks from the thread that waits for the results.
    with Callback(posttask=done):
        return dask.compute(tasks)[0]


def with_known_rows(a: da.Array, compute: Callable) -> da.Array:
    """``a`` with its row chunk sizes known (counted with ``compute``, a ``dask.compute``-like
    function, when they are not)."""
    if not any(np.isnan(c) for c in a.chunks[0]):
        return a
    rows = compute([dask.delayed(_rows)(b) for b in a.to_delayed().ravel()])
    chunks = (tuple(int(r) for r in rows),) + a.chunks[1:]
    return da.Array(a.__dask_graph__(), a.name, chunks, dtype=a.dtype)


def _as_rows(a, chunks, name, compute):
    """``a`` as a 1-D Dask array with the row chunks ``chunks``."""
    if not isinstance(a, da.Array):
        a = np.asarray(a)
        if a.shape != (sum(chunks),):
            raise ValueError(f"{name} must have one entry per row ({sum(chunks)}); got {a.shape}")
        a = da.from_array(a, chunks=(chunks,))
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D; got {a.ndim} dimensions")
    a = with_known_rows(a, compute)
    if a.shape[0] != sum(chunks):
        raise ValueError(f"{name} must have one entry per row ({sum(chunks)}); got {a.shape[0]}")
    return a if a.chunks[0] == chunks else a.rechunk((chunks,))


class DaskBackend:
    """The :class:`~.backend.Backend` of rows partitioned on a Dask cluster.

    Parameters
    ----------
    X : dask.array.Array, shape (n, p)
        Design rows, chunked by rows (columns are brought into one chunk).
    y : dask.array.Array of int, shape (n,)
        Equation index of each row's outcome, ``-1`` for the reference.
    w : dask.array.Array, shape (n,)
        Likelihood weights (frequency times sampling weight).
    J : int
        Number of non-reference outcomes.
    sampling : dask.array.Array, shape (n,), optional
        Sampling weights alone (they enter the robust meat squared); ``None``: none.
    frame : dask.dataframe.DataFrame, optional
        The source rows (formula models), in partitions of the same lengths as the blocks of
        ``X``; :meth:`reduce` hands each chunk's rows to its function.  It is not persisted:
        reading it again costs what reading the source costs.
    client : distributed.Client, optional
        Where to run; ``None``: Dask's current scheduler (a default client, or the one set with
        ``dask.config.set(scheduler=...)``).
    persist : bool
        Keep the design blocks in the cluster's memory, so the design (a patsy pass upstream)
        is built once, not at every evaluation.

    Notes
    -----
    ``y``, ``w`` and ``sampling`` (NumPy arrays are accepted) are rechunked to the row chunks
    of ``X`` when they differ.  Partition ``k`` is evaluated as
    ``InMemoryBackend(X_k, y_k, w_k, J, threads=1)``; the per-partition results are combined
    by :func:`tree_reduce`.
    """

    def __init__(self, X, y, w, J, sampling=None, frame=None, client=None, persist=True):
        if not isinstance(X, da.Array) or X.ndim != 2:
            raise TypeError("X must be a 2-D dask array")
        X = X.astype(np.float64)
        if X.numblocks[1] != 1:
            X = X.rechunk({1: -1})
        self.client = client
        if persist and any(np.isnan(c) for c in X.chunks[0]):
            X = self._persist(X)[0]
        X = with_known_rows(X, self._compute)
        chunks = X.chunks[0]
        arrays = [X, _as_rows(y, chunks, "y", self._compute).astype(np.int64)]
        arrays.append(_as_rows(w, chunks, "w", self._compute).astype(np.float64))
        if sampling is not None:
            s = _as_rows(sampling, chunks, "sampling", self._compute)
            arrays.append(s.astype(np.float64))
        if persist:
            arrays = self._persist(*arrays)
        self.X, self.y, self.w = arrays[:3]
        self.sampling = arrays[3] if sampling is not None else None
        self.n, self.p = (int(d) for d in self.X.shape)
        self.J = int(J)
        self.row_counts = np.array(chunks, dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.row_counts)[:-1]]).astype(np.int64)
        if frame is not None and frame.npartitions != len(chunks):
            raise ValueError(
                f"frame has {frame.npartitions} partitions; the design has {len(chunks)} blocks"
            )
        self.frame = frame
        cols = [a.to_delayed().ravel() for a in arrays]
        none = [None] * len(chunks)
        self._blocks = [
            dask.delayed(_stack)(*b)
            for b in zip(*cols[:3], cols[3] if len(cols) > 3 else none, strict=True)
        ]
        self._sample = None
        self._range = None

    # -- running ------------------------------------------------------------------------------

    def _persist(self, *arrays):
        if self.client is not None:
            return list(self.client.persist(list(arrays)))
        return list(dask.persist(*arrays))

    def _compute(self, obj):
        if self.client is not None:
            return self.client.compute(obj, sync=True)
        return dask.compute(obj)[0]

    def _map(self, method, *args) -> list:
        """One delayed ``InMemoryBackend.method(*args)`` per partition, in order."""
        task = dask.delayed(_partition_op)
        return [task(b, self.J, method, *args) for b in self._blocks]

    def _reduce(self, combine, method, *args):
        return self._compute(tree_reduce(self._map(method, *args), combine))

    @property
    def npartitions(self) -> int:
        return len(self._blocks)

    # -- the Backend protocol -----------------------------------------------------------------

    def derivatives(self, beta: np.ndarray, hessian: bool = True) -> Derivatives:
        """Log-likelihood, score and (with ``hessian``) the information, summed over the
        partitions."""
        beta = np.ascontiguousarray(beta, dtype=np.float64).reshape(self.J, self.p)
        return self._reduce(_add_derivatives, "derivatives", beta, hessian)

    def hessian_vector(self, beta: np.ndarray, v: np.ndarray) -> np.ndarray:
        beta = np.ascontiguousarray(beta, dtype=np.float64).reshape(self.J, self.p)
        v = np.ascontiguousarray(v, dtype=np.float64).ravel()
        return self._reduce(_add, "hessian_vector", beta, v)

    def block_information(self, beta: np.ndarray) -> np.ndarray:
        beta = np.ascontiguousarray(beta, dtype=np.float64).reshape(self.J, self.p)
        return self._reduce(_add, "block_information", beta)

    def score_outer(self, beta: np.ndarray) -> np.ndarray:
        beta = np.ascontiguousarray(beta, dtype=np.float64).reshape(self.J, self.p)
        return self._reduce(_add, "score_outer", beta)

    def group_scores(
        self, beta: np.ndarray, codes, n_groups: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Group sums of the weighted scores and each group's weight.

        ``codes`` (a Dask array aligned with the rows, or a NumPy array) holds global group
        codes: a group may span partitions.  Each partition sends only its groups' sums, merged
        by code up the tree.
        """
        beta = np.ascontiguousarray(beta, dtype=np.float64).reshape(self.J, self.p)
        if isinstance(codes, da.Array):
            if codes.ndim != 1 or codes.shape[0] != self.n:
                raise ValueError(
                    f"codes must have one entry per row ({self.n}); got {codes.shape}"
                )
            codes = _as_rows(codes, self.X.chunks[0], "codes", self._compute)
            parts = codes.to_delayed().ravel()
        else:
            codes = np.asarray(codes, dtype=np.int64)
            if codes.shape != (self.n,):
                raise ValueError(
                    f"codes must have one entry per row ({self.n}); got {codes.shape}"
                )
            parts = [codes[o : o + m] for o, m in zip(self.offsets, self.row_counts, strict=True)]
        task = dask.delayed(_partition_groups)
        tasks = [task(b, self.J, beta, c) for b, c in zip(self._blocks, parts, strict=True)]
        present, sums, weight = self._compute(tree_reduce(tasks, _merge_groups))
        if len(present) and (present[0] < 0 or present[-1] >= n_groups):
            raise ValueError(f"group codes must lie in [0, {n_groups}); got {present[[0, -1]]}")
        out = np.zeros((n_groups, self.J * self.p))
        total = np.zeros(n_groups)
        out[present] = sums
        total[present] = weight
        return out, total

    def cluster_meat(
        self, beta: np.ndarray, codes, n_groups: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """:math:`\\sum_g u_g u_g^\\top` of :meth:`group_scores` and each group's weight.

        A group may span partitions, so its sum is only complete once merged: the meat is
        the one ``syrk`` product of the merged sums.
        """
        sums, weight = self.group_scores(beta, codes, n_groups)
        return sums.T @ sums, weight

    def positive_rows(self) -> int:
        return int(self._reduce(_add, "positive_rows"))

    def column_range(self) -> tuple[np.ndarray, np.ndarray]:
        if self._range is None:
            self._range = self._reduce(_range, "column_range")
        return self._range

    def set_column_range(self, lo: np.ndarray, hi: np.ndarray) -> None:
        """Adopt a column range already found (by the missing-value scan of the design)."""
        self._range = (np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64))

    def gram(self, scale: np.ndarray) -> np.ndarray:
        return self._reduce(_add_quiet, "gram", np.asarray(scale, dtype=np.float64))

    def r_factor(self, scale: np.ndarray, ones: bool = False) -> np.ndarray:
        return self._reduce(_stack_r, "r_factor", np.asarray(scale, dtype=np.float64), ones)

    def pair_stats(self, D: np.ndarray) -> np.ndarray:
        D = np.ascontiguousarray(D, dtype=np.float64).reshape(self.J, self.p)
        return self._reduce(_add_pair_stats, "pair_stats", D)

    def distinct_rows(self, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Distinct ``(x / scale, y)`` rows, merged up the tree; the result (as large as the
        number of distinct rows) comes to the driver."""
        return self._reduce(_merge_distinct, "distinct_rows", np.asarray(scale, dtype=np.float64))

    def probabilities(self, beta: np.ndarray) -> da.Array:
        """Fitted probabilities ``(n, J + 1)`` as a lazy Dask array, one block per partition
        (the model layer wraps it in a Dask DataFrame for ``predict``)."""
        beta = np.ascontiguousarray(beta, dtype=np.float64).reshape(self.J, self.p)
        chunks = (self.X.chunks[0], (self.J + 1,))
        return self.X.map_blocks(predict_probabilities, beta, chunks=chunks, dtype=np.float64)

    def linear(self, beta: np.ndarray) -> da.Array:
        """Linear predictors ``(n, J)`` as a lazy Dask array, one block per partition."""
        beta = np.ascontiguousarray(beta, dtype=np.float64).reshape(self.J, self.p)
        chunks = (self.X.chunks[0], (self.J,))
        return self.X.map_blocks(predict_linear, beta, chunks=chunks, dtype=np.float64)

    def source_frame(self):
        """The source rows (a Dask DataFrame, ``None`` for array models)."""
        return self.frame

    def reduce(
        self,
        fn: Callable[[Chunk], object],
        chunk_rows: int | None = None,
        progress: str | None = None,
        frames: bool = True,
    ) -> list:
        """``fn`` on every chunk, run on the workers; the results in row order.

        Without ``chunk_rows`` a partition is one chunk; with it, partitions are cut into
        chunks of at most ``chunk_rows`` rows (a chunk never spans partitions).  ``fn`` is
        shipped to the workers with cloudpickle; each chunk carries the partition's rows of
        the source frame when the backend has one.  With ``progress``, a bar of that label
        counts the partitions done (the results still come back in partition order).  With
        ``frames=False`` the source frame is not read (chunks carry ``frame=None``).
        """
        if self.frame is None or not frames:
            sources = [None] * self.npartitions
        else:
            sources = list(self.frame.to_delayed())
        task = dask.delayed(_partition_reduce)
        tasks = [
            task(fn, b, f, int(o), chunk_rows)
            for b, f, o in zip(self._blocks, sources, self.offsets, strict=True)
        ]
        bar = Progress(progress, len(tasks), "partitions", enabled=None if progress else False)
        parts = compute_each(tasks, self.client, bar) if bar.enabled else self._compute(tasks)
        bar.close()
        return [r for part in parts for r in part]

    # -- two backends' rows side by side --------------------------------------------------------

    def _blocks_like(self, chunks) -> list:
        """This backend's ``(X, y, w, sampling)`` blocks cut at the row chunks ``chunks``
        (rechunked on the cluster when they are cut elsewhere)."""
        if tuple(chunks) == tuple(self.row_counts):
            return self._blocks
        arrays = [self.X.rechunk((chunks, self.X.chunks[1]))]
        arrays += [a.rechunk((chunks,)) for a in (self.y, self.w)]
        if self.sampling is not None:
            arrays.append(self.sampling.rechunk((chunks,)))
        cols = [a.to_delayed().ravel() for a in arrays]
        if self.sampling is None:
            cols.append([None] * len(chunks))
        return [dask.delayed(_stack)(*b) for b in zip(*cols, strict=True)]

    def reduce_pairs(self, other: DaskBackend, fn: Callable, combine: Callable) -> object:
        """``fn(rows_self, rows_other)`` on the rows of both backends at the same positions,
        one task per partition of this backend, combined by :func:`tree_reduce`.

        ``other`` (the same number of rows) is cut at this backend's partition boundaries
        first (a rechunk on the cluster when its partitions differ), so neither backend's rows
        come to this process.  ``fn`` gets two :class:`~multilogit.engine.chunked.Rows` and is
        shipped to the workers with cloudpickle.
        """
        if other.n != self.n:
            raise ValueError(f"the backends hold {self.n} and {other.n} rows")
        chunks = tuple(int(c) for c in self.row_counts)
        task = dask.delayed(_partition_pair)
        tasks = [
            task(fn, a, b, int(o))
            for a, b, o in zip(self._blocks, other._blocks_like(chunks), self.offsets, strict=True)
        ]
        return self._compute(tree_reduce(tasks, combine))

    def iter_blocks(self):
        """The partitions' rows brought to this process one at a time, in order, as
        :class:`~multilogit.engine.chunked.Rows` (for pairing with rows held elsewhere)."""
        for block, offset in zip(self._blocks, self.offsets, strict=True):
            yield _block_rows(self._compute(block), int(offset))

    # -- the row subsample behind approx_information ------------------------------------------

    @property
    def sample_rows(self) -> int:
        """Rows of the subsample behind :meth:`approx_information` (0: not worth it); the
        in-memory backend's rule on the whole data."""
        return subsample_size(self.n, self.p, self.J)

    def subsample(self) -> InMemoryBackend | None:
        """An in-memory backend on every ``n // m``-th row (``m`` = :attr:`sample_rows`): the
        rows the in-memory backend picks on the same data, gathered to the driver once.
        ``None`` when the data are too small or the subsample has no weight."""
        if self._sample is None:
            m = self.sample_rows
            sub, factor = None, 0.0
            if m:
                rows = np.arange(m) * (self.n // m)
                take, weight = dask.delayed(_partition_take), dask.delayed(_partition_weight)
                tasks = []
                for b, o, k in zip(self._blocks, self.offsets, self.row_counts, strict=True):
                    local = rows[(rows >= o) & (rows < o + k)] - o
                    if len(local):
                        tasks.append(take(b, local))
                total = tree_reduce([weight(b) for b in self._blocks], _add)
                pieces, total = self._compute((tasks, total))
                X, y, w = (np.concatenate(a) for a in zip(*pieces, strict=True))
                if w.sum() > 0:
                    sub = InMemoryBackend(X, y, w, self.J)
                    factor = float(total) / float(w.sum())
            self._sample = (sub, factor)
        return self._sample[0]

    def approx_derivatives(self, beta: np.ndarray, hessian: bool = True) -> Derivatives | None:
        """Log-likelihood, score and (with ``hessian``) information of :meth:`subsample`,
        scaled to the whole data (``None`` without a subsample); evaluated on the driver."""
        sub = self.subsample()
        if sub is None:
            return None
        return scale_derivatives(sub.derivatives(beta, hessian=hessian), self._sample[1])

    def approx_information(self, beta: np.ndarray) -> np.ndarray | None:
        """The information of :meth:`subsample`, scaled to the whole data (``None`` without
        a subsample)."""
        d = self.approx_derivatives(beta, hessian=True)
        return None if d is None else d.info

    def release(self) -> None:
        """Drop the subsample (it is gathered again on demand); the blocks stay persisted."""
        self._sample = None
