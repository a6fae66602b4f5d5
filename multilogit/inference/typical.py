"""Typical values of the estimation rows by reductions over them: weighted means, category
shares, ranges and exact medians, without holding the rows in this process.

Marginal effects at the means or medians and the plots hold covariates at typical values.  For
rows in memory they are read off the data frame; for rows a backend holds elsewhere (partitions
on a Dask cluster, a Parquet spill) they are computed here, through
:meth:`~multilogit.engine.backend.Backend.reduce`, from what each chunk carries: its source
rows (``chunk.frame``, formula models) or its design rows (``chunk.X``, array models), and its
likelihood weights (``chunk.weights``).

* :func:`moments`: one pass for the row count, the total weight, each numeric column's weighted
  sum, minimum and maximum, and each categorical column's weighted level counts.
* :func:`medians`: exact medians by selection, as the in-memory code defines them (see
  :func:`medians`): a few passes that each count the values in buckets of the range still in
  play, until the bucket holding the median holds few enough values to be collected and
  sorted.  Memory stays bounded by the bucket counts and the collected bucket, whatever the
  number of rows.

Buckets split the *bit patterns* of the values, mapped to integers in the order of the values,
not the real line: ties, values all equal and extreme magnitudes cost nothing special, and a
64-bit pattern is narrowed to one value in at most ``ceil(64 / bits)`` passes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..exceptions import DataError

__all__ = ["Columns", "Moments", "medians", "moments"]

# Rows per chunk of these passes: large enough that pandas' per-call overhead is small, and that
# the per-chunk bucket counts handed back stay few.
_CHUNK_ROWS = 1 << 18
# Buckets per pass: 2**_BITS.
_BITS = 10
# A bucket with at most this many values is collected and sorted.
_COLLECT = 1 << 16
_SIGN = np.int64(0x7FFFFFFFFFFFFFFF)


@dataclass(frozen=True)
class Columns:
    """Which columns of each chunk the typical values are taken of.

    Parameters
    ----------
    numeric : sequence of str or int
        Numeric columns: names of the chunk's source rows (``chunk.frame``), or positions of
        its design rows (``chunk.X``) when ``design`` is true.
    categorical : sequence of (str, sequence)
        Categorical columns of the source rows and their levels, in the order counted.
    design : bool
        Read ``numeric`` from the design rows (array models).
    """

    numeric: Sequence = ()
    categorical: Sequence = ()
    design: bool = False

    def _frame(self, chunk):
        if chunk.frame is None:
            raise DataError(
                "typical values (means, medians, ranges) of a formula model's variables need "
                "the source rows of each chunk, which this model's backend does not hand out"
            )
        return chunk.frame

    def values(self, chunk) -> np.ndarray:
        """The chunk's numeric columns, ``(m, q)`` float64 (``-0.0`` read as ``0.0``)."""
        if self.design:
            V = np.asarray(chunk.X, dtype=np.float64)[:, list(self.numeric)]
        elif not self.numeric:
            V = np.empty((len(chunk.weights), 0))
        else:
            frame = self._frame(chunk)
            V = np.column_stack(
                [pd.to_numeric(frame[nm]).to_numpy(dtype=np.float64) for nm in self.numeric]
            )
        # -0.0 and 0.0 are equal values but different bit patterns (see _keys).
        return V + 0.0

    def codes(self, chunk) -> list[np.ndarray]:
        """Level codes of the chunk's categorical columns (``-1``: not a level)."""
        if not self.categorical:
            return []
        frame = self._frame(chunk)
        return [
            np.asarray(pd.Categorical(frame[nm], categories=list(levels)).codes)
            for nm, levels in self.categorical
        ]


@dataclass(frozen=True)
class Moments:
    """What one pass over the rows gives (see :func:`moments`).

    Attributes
    ----------
    rows : int
        Number of rows.
    total : float
        Sum of the likelihood weights.
    equal_weights : bool
        Whether every row has the same weight.
    sums : ndarray, shape (q,)
        Weighted sum of each numeric column.
    lo, hi : ndarray, shape (q,)
        Smallest and largest value of each numeric column.
    counts : list of ndarray
        Weighted count of each level of each categorical column.
    template : DataFrame or None
        The first source row (formula models), to build representative rows from.
    """

    rows: int
    total: float
    equal_weights: bool
    sums: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    counts: list
    template: pd.DataFrame | None

    @property
    def means(self) -> np.ndarray:
        """Weighted mean of each numeric column."""
        return self.sums / self.total

    @property
    def shares(self) -> list[np.ndarray]:
        """Weighted share of each level of each categorical column."""
        return [c / c.sum() for c in self.counts]


def moments(backend, columns: Columns, chunk_rows: int | None = _CHUNK_ROWS) -> Moments:
    """Counts, weighted sums, ranges and level counts of ``columns`` in one pass.

    Parameters
    ----------
    backend : Backend
        The rows (any backend whose chunks carry ``frame`` when ``columns`` names columns of
        the source rows).
    columns : Columns
    chunk_rows : int, optional
        Rows per chunk of the pass.

    Returns
    -------
    Moments
    """
    q = len(columns.numeric)
    levels = [len(lv) for _, lv in columns.categorical]

    def part(chunk):
        w = np.asarray(chunk.weights, dtype=np.float64)
        V = columns.values(chunk)
        counts = [
            np.bincount(c[c >= 0], weights=w[c >= 0], minlength=k)
            for c, k in zip(columns.codes(chunk), levels, strict=True)
        ]
        empty = len(w) == 0
        # Values near the float64 limits overflow the sums (their means are then infinite,
        # as in memory) but not the ranges and medians, which need no arithmetic on values.
        with np.errstate(over="ignore", invalid="ignore"):
            sums = w @ V
        first = None
        if chunk.frame is not None and not columns.design and not empty:
            first = chunk.frame.iloc[:1]
        return (
            len(w),
            w.sum(),
            np.inf if empty else w.min(),
            -np.inf if empty else w.max(),
            sums,
            np.full(q, np.inf) if empty else V.min(axis=0),
            np.full(q, -np.inf) if empty else V.max(axis=0),
            counts,
            first,
        )

    parts = backend.reduce(part, chunk_rows)
    if not parts or sum(p[0] for p in parts) == 0:
        raise DataError("typical values need at least one estimation row")
    # Partial results added in row order: reproducible for a fixed chunking.
    rows, total, sums = 0, 0.0, np.zeros(q)
    lo, hi = np.full(q, np.inf), np.full(q, -np.inf)
    counts = [np.zeros(k) for k in levels]
    wmin, wmax, template = np.inf, -np.inf, None
    for m, wsum, w0, w1, s, a, b, cnt, first in parts:
        rows += m
        total += wsum
        wmin, wmax = min(wmin, w0), max(wmax, w1)
        with np.errstate(over="ignore", invalid="ignore"):
            sums = sums + s
        lo, hi = np.minimum(lo, a), np.maximum(hi, b)
        counts = [x + y for x, y in zip(counts, cnt, strict=True)]
        if template is None and first is not None:
            template = first
    return Moments(rows, float(total), bool(wmin == wmax), sums, lo, hi, counts, template)


# ---------------------------------------------------------------------------------------------
# Exact medians by selection


def _keys(v: np.ndarray) -> np.ndarray:
    """int64 keys in the order of the float64 values ``v`` (their bit patterns, the bits
    after the sign flipped for negative values)."""
    b = np.ascontiguousarray(v, dtype=np.float64).view(np.int64)
    return b ^ ((b >> np.int64(63)) & _SIGN)


def _value(key: int) -> float:
    """The float64 of a key of :func:`_keys` (the map is its own inverse)."""
    return float(_keys(np.array([key], dtype=np.int64).view(np.float64)).view(np.float64)[0])


@dataclass
class _Target:
    """The smallest value ``x`` of column ``column`` with ``measure(values <= x) >= need``.

    The search is within keys ``lo..hi``; ``below`` is the measure of the values under ``lo``.
    """

    column: int
    need: float
    lo: int
    hi: int
    below: float = 0.0
    collect: bool = False
    value: float | None = None


def _in_range(keys, lo, hi):
    return (keys >= np.int64(lo)) & (keys <= np.int64(hi))


def _buckets(keys, lo, shift):
    """Bucket of each key ``>= lo``: ``(key - lo) >> shift``, in unsigned arithmetic (the
    difference of two int64 keys can exceed the int64 range)."""
    off = keys.view(np.uint64) - np.array(lo, dtype=np.int64).view(np.uint64)
    return (off >> np.uint64(shift)).astype(np.intp)


def medians(
    backend,
    columns: Columns,
    summary: Moments | None = None,
    chunk_rows: int | None = _CHUNK_ROWS,
    bits: int = _BITS,
    collect: int = _COLLECT,
) -> np.ndarray:
    """Exact median of each numeric column of ``columns`` over the rows of ``backend``.

    The medians are those of the in-memory code: with every row of the same weight, NumPy's
    median (the mean of the two middle values for an even count); otherwise the lower weighted
    median, the smallest value :math:`x` whose rows weigh at least half the total,
    :math:`\\sum_{v_i \\le x} w_i \\ge \\tfrac12 \\sum_i w_i`.

    Parameters
    ----------
    backend : Backend
    columns : Columns
        Only ``numeric`` is used.
    summary : Moments, optional
        :func:`moments` of the same rows and columns (computed when not given).
    chunk_rows : int, optional
        Rows per chunk of each pass.
    bits : int
        Each pass counts the values of the range in play in ``2**bits`` buckets.
    collect : int
        A bucket of at most this many values is collected and sorted.

    Returns
    -------
    ndarray, shape (q,)
    """
    if not 1 <= int(bits) <= 24:
        raise ValueError(f"bits must be in 1..24; got {bits!r}")
    if int(collect) < 1:
        raise ValueError(f"collect must be positive; got {collect!r}")
    if summary is None:
        summary = moments(backend, columns, chunk_rows)
    n = summary.rows
    weighted = not summary.equal_weights
    targets = []
    for j in range(len(columns.numeric)):
        lo, hi = (int(k) for k in _keys(np.array([summary.lo[j], summary.hi[j]])))
        # Ranks (from one) of the middle values; NumPy averages the two for an even count.
        needs = [summary.total / 2.0] if weighted else [(n - 1) // 2 + 1, n // 2 + 1]
        targets.append([_Target(j, need, lo, hi) for need in needs])
    flat = [t for ts in targets for t in ts]
    for t in flat:
        if t.lo == t.hi:
            t.value = _value(t.lo)
        elif n <= collect:
            t.collect = True
    while any(t.value is None for t in flat):
        _refine(
            backend,
            columns,
            [t for t in flat if t.value is None],
            weighted,
            chunk_rows,
            int(bits),
            int(collect),
        )
    out = np.empty(len(targets))
    for j, ts in enumerate(targets):
        vals = np.array([t.value for t in ts])
        out[j] = vals[0] if len(vals) == 1 or n % 2 else np.mean(vals)
    return out


def _refine(backend, columns, active, weighted, chunk_rows, bits, collect):
    """One pass: the buckets of the targets still searching, or the values of those whose
    bucket is small enough to collect; narrows or settles every target."""
    # Targets on the same column and range share one request.
    requests: dict[tuple, list[_Target]] = {}
    for t in active:
        requests.setdefault((t.column, t.lo, t.hi, t.collect), []).append(t)
    keys_of = list(requests)

    def part(chunk):
        V = columns.values(chunk)
        w = np.asarray(chunk.weights, dtype=np.float64)
        keys = {}
        out = []
        for j, lo, hi, take in keys_of:
            if j not in keys:
                keys[j] = _keys(V[:, j])
            inside = _in_range(keys[j], lo, hi)
            if take:
                out.append((V[inside, j], w[inside]))
                continue
            shift = max(0, (hi - lo).bit_length() - bits)
            b = _buckets(keys[j][inside], lo, shift)
            nb = ((hi - lo) >> shift) + 1
            size = np.bincount(b, minlength=nb)
            out.append(
                (size, np.bincount(b, weights=w[inside], minlength=nb) if weighted else None)
            )
        return out

    parts = backend.reduce(part, chunk_rows)
    for r, key in enumerate(keys_of):
        j, lo, hi, take = key
        if take:
            v = np.concatenate([p[r][0] for p in parts])
            w = np.concatenate([p[r][1] for p in parts])
            o = np.argsort(v, kind="stable")
            v, w = v[o], w[o]
            for t in requests[key]:
                if weighted:
                    cum = t.below + np.cumsum(w)
                    k = int(np.searchsorted(cum, t.need, side="left"))
                else:
                    k = int(t.need - t.below) - 1
                # Rounding of the weight sums may put the crossing a hair past the last value.
                t.value = float(v[min(max(k, 0), len(v) - 1)])
            continue
        size = np.sum([p[r][0] for p in parts], axis=0)
        measure = np.sum([p[r][1] for p in parts], axis=0) if weighted else size
        shift = max(0, (hi - lo).bit_length() - bits)
        for t in requests[key]:
            cum = t.below + np.cumsum(measure)
            b = min(int(np.searchsorted(cum, t.need, side="left")), len(cum) - 1)
            t.below = float(cum[b - 1]) if b > 0 else t.below
            t.lo = lo + (b << shift)
            t.hi = min(hi, t.lo + (1 << shift) - 1)
            if t.lo == t.hi:
                t.value = _value(t.lo)
            elif size[b] <= collect:
                t.collect = True
