"""The rows of two backends side by side: reductions over two fits of the same sample.

Comparing two models fitted on the same rows (a likelihood-ratio test) needs each row of one
next to the same row of the other: whether the two hold the same outcome and weight at every
position, and how the two designs relate.  :func:`paired_reduce` walks both backends in
lockstep over matching row ranges and never holds more than one range of each:

* two chunked backends (in memory, a spill, views of either): the same chunks of both are
  read, one contiguous run of chunks per thread;
* two Dask backends: one task per partition of the first, the second cut at the same
  boundaries on the cluster (``DaskBackend.reduce_pairs``);
* a Dask backend and a chunked one: the partitions come to this process one at a time and are
  paired with the chunked backend's rows at the same positions.

Partial results are combined in row order (a fixed tree on Dask), so results do not depend on
timing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

from .chunked import ChunkedBackend, Rows
from .threads import chunk_runs, map_runs, stop_if_cancelled

__all__ = ["RowComparison", "compare_rows", "paired_reduce", "residual_absmax"]


def _is_dask(backend) -> bool:
    # Duck-typed, so that nothing here imports Dask.
    return callable(getattr(backend, "reduce_pairs", None))


def _slice(rows: Rows, a: int, b: int) -> Rows:
    """Rows ``a:b`` (local positions) of ``rows``."""
    s = None if rows.sampling is None else rows.sampling[a:b]
    start = rows.rows.start
    return Rows(slice(start + a, start + b), rows.X[a:b], rows.y[a:b], rows.w[a:b], s)


def _fold(parts, combine):
    total = None
    for part in parts:  # in row order: reproducible
        total = part if total is None else combine(total, part)
    return total


def _chunked_pairs(a: ChunkedBackend, b: ChunkedBackend, fn, combine):
    step = min(a.chunk_rows, b.chunk_rows)
    runs = chunk_runs(a.n, step, min(a.threads, b.threads))

    def run(k):
        sl = runs[k]

        def pairs():
            for i in range(sl.start, sl.stop, step):
                stop_if_cancelled()
                j = min(i + step, sl.stop)
                yield fn(a.read_rows(i, j), b.read_rows(i, j))

        return _fold(pairs(), combine)

    return _fold((p for p in map_runs(run, len(runs)) if p is not None), combine)


def _mixed_pairs(a, b, fn, combine):
    """One backend on Dask, the other chunked: the partitions come here one at a time."""
    first = _is_dask(a)
    dask_side, other = (a, b) if first else (b, a)
    step = other.chunk_rows

    def parts():
        for block in dask_side.iter_blocks():
            o, m = block.rows.start, len(block.y)
            for i in range(0, m, step):
                d = _slice(block, i, min(i + step, m))
                c = other.read_rows(o + i, o + min(i + step, m))
                yield fn(d, c) if first else fn(c, d)

    return _fold(parts(), combine)


def paired_reduce(a, b, fn: Callable[[Rows, Rows], object], combine: Callable) -> object:
    """``fn(rows_a, rows_b)`` over matching row ranges of two backends, combined in row order.

    Parameters
    ----------
    a, b : ChunkedBackend or DaskBackend
        Backends with the same number of rows.
    fn : callable
        ``fn(rows_a, rows_b)`` of the :class:`~multilogit.engine.chunked.Rows` of both
        backends at the same positions (``rows_a.rows == rows_b.rows``); on Dask it runs on
        the workers.
    combine : callable
        ``combine(left, right)`` of two partial results, ``left`` holding earlier rows.

    Returns
    -------
    object
        The combined result (``None`` when there are no rows).
    """
    if a.n != b.n:
        raise ValueError(f"the backends hold {a.n} and {b.n} rows")
    if a.n == 0:
        return None
    if _is_dask(a) and _is_dask(b):
        return a.reduce_pairs(b, fn, combine)
    if _is_dask(a) or _is_dask(b):
        return _mixed_pairs(a, b, fn, combine)
    if isinstance(a, ChunkedBackend) and isinstance(b, ChunkedBackend):
        return _chunked_pairs(a, b, fn, combine)
    raise TypeError(f"cannot pair a {type(a).__name__} with a {type(b).__name__}")


# -- comparing two fits' rows -----------------------------------------------------------------


@dataclass(frozen=True)
class RowComparison:
    """What one lockstep pass over two backends found.

    Attributes
    ----------
    outcome_mismatches : int
        Rows whose outcome level differs.
    weight_mismatches : int
        Rows whose likelihood weight differs.
    first_mismatch : int
        Position of the first row that differs in either (``-1``: none).
    R : ndarray, shape (min(n, pa + pb), pa + pb)
        A triangular factor of the joint design ``[X_a, X_b]`` (all rows): ``R^T R`` is its
        Gram matrix, and least squares between columns of ``R`` have the same coefficients and
        residual norms as between the columns of the design (``R = Q^T [X_a, X_b]`` with
        orthonormal ``Q``).
    """

    outcome_mismatches: int
    weight_mismatches: int
    first_mismatch: int
    R: np.ndarray


def _triangular(Z: np.ndarray) -> np.ndarray:
    return np.linalg.qr(Z, mode="r")


def _compare_chunk(levels_a, levels_b, ra: Rows, rb: Rows):
    code = levels_a[ra.y] != levels_b[rb.y]
    weight = ra.w != rb.w
    differ = np.flatnonzero(code | weight)
    first = int(ra.rows.start + differ[0]) if len(differ) else -1
    R = _triangular(np.column_stack([ra.X, rb.X]))
    return int(code.sum()), int(weight.sum()), first, R


def _combine_comparisons(x, y):
    # Tall-skinny QR: the factors of two row blocks, stacked and factored again, are a factor
    # of the rows of both.
    first = x[2] if x[2] >= 0 else y[2]
    return x[0] + y[0], x[1] + y[1], first, _triangular(np.vstack([x[3], y[3]]))


def compare_rows(a, b, levels_a: np.ndarray, levels_b: np.ndarray) -> RowComparison:
    """Compare two backends' rows position by position in one lockstep pass.

    Parameters
    ----------
    a, b : ChunkedBackend or DaskBackend
        Backends with the same number of rows.
    levels_a, levels_b : ndarray of int, shape (J + 1,)
        The outcome level of each equation code of each backend (the reference's, code
        ``-1``, last), so that backends with different references compare outcomes.

    Returns
    -------
    RowComparison
    """
    fn = partial(
        _compare_chunk,
        np.asarray(levels_a, dtype=np.int64),
        np.asarray(levels_b, dtype=np.int64),
    )
    out = paired_reduce(a, b, fn, _combine_comparisons)
    return RowComparison(*out)


def _residual_chunk(x_cols, y_cols, coef, ra: Rows, rb: Rows):
    Z = np.column_stack([ra.X, rb.X])
    return np.abs(Z[:, y_cols] - Z[:, x_cols] @ coef).max(axis=0, initial=0.0)


def residual_absmax(a, b, x_cols, y_cols, coef: np.ndarray) -> np.ndarray:
    """Each column's largest magnitude of ``Z[:, y_cols] - Z[:, x_cols] @ coef`` over all rows,
    ``Z = [X_a, X_b]`` (one lockstep pass).

    Parameters
    ----------
    a, b : ChunkedBackend or DaskBackend
        Backends with the same number of rows.
    x_cols, y_cols : array of int
        Columns of the joint design ``Z``.
    coef : ndarray, shape (len(x_cols), len(y_cols))
    """
    fn = partial(
        _residual_chunk,
        np.asarray(x_cols, dtype=np.intp),
        np.asarray(y_cols, dtype=np.intp),
        np.asarray(coef, dtype=np.float64),
    )
    return paired_reduce(a, b, fn, np.maximum)
