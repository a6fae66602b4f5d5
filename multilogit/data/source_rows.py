"""The source rows of a streamed fit, read again in step with the rows it kept.

A fit streamed from Parquet keeps designs in its spill, not the data they were built from.
What needs the data of the estimation rows (marginal effects rebuild the design with a variable
changed) reads the source again: the same batches, in the same order, with the same columns.
The rows the streaming pass dropped are dropped again: those with a missing value in a column
used are found again in each batch, those whose design had a NaN (a transform such as the log
of a negative number) are left out by the positions recorded while spilling.  Before every
pass the source's fingerprint (row count; each file's size and modification time) is compared
with the one taken before the fit, and the rows seen and kept are counted, so a source that
changed since the fit raises a :class:`~multilogit.exceptions.DataError` instead of pairing
rows with the wrong designs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence

import numpy as np
import pandas as pd

from ..engine import kernels
from ..exceptions import DataError

__all__ = [
    "NO_VALUES",
    "SourceRows",
    "fold_summary",
    "merge_summaries",
    "missing_rows",
    "missing_values",
]


#: The summary of no values (folding values into it gives theirs): see :func:`fold_summary`.
NO_VALUES = (True, np.inf, -np.inf)


def fold_summary(summary: tuple, values) -> tuple:
    """``summary`` (``(all values integers, minimum, maximum)`` of the values seen so far, what
    tells a variable's kind, a 0/1 dummy or a count, and its range) with ``values`` added.

    Once a value was not an integer the test is not made again: on streamed batches it costs
    more than the rest of the summary.
    """
    v = np.asarray(values)
    if v.dtype.kind not in "iuf" or v.ndim != 1:
        v = np.asarray(v, dtype=np.float64).ravel()
    if not v.size:
        return summary
    if v.dtype.kind in "iu":  # integers: converting the extremes gives the converted extremes
        integers, lo, hi = True, np.float64(v.min()), np.float64(v.max())
    elif summary[0]:  # one fused pass, no temporaries: NumPy's min, max and v % 1 == 0
        lo, hi, integers = kernels.summarize_values(v, True)
        lo, hi = np.float64(lo), np.float64(hi)
    else:
        integers, lo, hi = False, v.min(), v.max()
    return summary[0] and integers, min(summary[1], lo), max(summary[2], hi)


def merge_summaries(a: tuple, b: tuple) -> tuple:
    """The summary of two sets of values from theirs (see :func:`fold_summary`)."""
    return a[0] and b[0], min(a[1], b[1]), max(a[2], b[2])


def missing_values(df: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """Where ``df`` has missing values in ``columns``: a boolean ``(len(df), len(columns))``
    array (one isna over the columns' blocks: per-column access costs more than the test)."""
    return df[list(columns)].isna().to_numpy()


def missing_rows(df: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """Rows of ``df`` with a missing value in any of ``columns`` (a boolean mask)."""
    return missing_values(df, columns).any(axis=1)


class SourceRows:
    """``rows(start, stop)``: the source data of rows ``start:stop`` of the rows a streamed fit
    kept, as a DataFrame indexed by each row's position in the source.

    Reads in increasing order (as a backend's ``reduce`` makes them) continue the same pass
    over the source, holding at most one batch beyond the rows asked for; a read before the
    current position starts a new pass.

    Parameters
    ----------
    chunks : callable
        Returns an iterable of DataFrames: the source's batches, as the streaming pass read
        them (same columns, same conversions).
    used : sequence of str
        The columns whose missing values dropped a row.
    n : int
        Rows kept.
    rows : int
        Rows of the source (kept and dropped).
    nan_positions : array of int
        Source positions (increasing) of the rows dropped because their design had a NaN.
    fingerprint : callable, optional
        Returns what identifies the source's contents (compared with ``stamp`` before every
        pass); ``None``: the source cannot be fingerprinted, only its rows are counted.
    stamp : optional
        ``fingerprint()`` when the fit began.
    description : str
        The source, for messages.
    """

    def __init__(
        self,
        chunks: Callable[[], Iterable[pd.DataFrame]],
        used: Sequence[str],
        n: int,
        rows: int,
        nan_positions,
        fingerprint: Callable[[], object] | None = None,
        stamp=None,
        description: str = "the source",
    ):
        self.chunks = chunks
        self.used = tuple(used)
        self.n, self.rows = int(n), int(rows)
        self.nan_positions = np.asarray(nan_positions, dtype=np.int64)
        self.fingerprint, self.stamp = fingerprint, stamp
        self.description = description
        # A backend's reduce reads in order from one thread; the lock keeps the cursor whole
        # should two callers share it.
        self._lock = threading.Lock()
        self._iter: Iterator[pd.DataFrame] | None = None
        self._held: pd.DataFrame | None = None
        self._pos = 0

    def __call__(self, start: int, stop: int) -> pd.DataFrame:
        if not 0 <= start <= stop <= self.n:
            raise IndexError(f"rows {start}:{stop} out of range 0:{self.n}")
        with self._lock:
            try:
                return self._read(start, stop)
            except BaseException:
                self._close()
                raise

    def _read(self, start: int, stop: int) -> pd.DataFrame:
        if self._iter is None or start < self._pos:
            self._restart()
        held = self._held
        while self._pos + len(held) <= start and self._pos + len(held) < stop:
            self._pos += len(held)  # rows before start: not asked for
            held = self._next()
        pieces = [held.iloc[start - self._pos :]]
        have = len(pieces[0])
        while have < stop - start:
            nxt = self._next()
            pieces.append(nxt)
            have += len(nxt)
        whole = pieces[0] if len(pieces) == 1 else pd.concat(pieces)
        self._held, self._pos = whole.iloc[stop - start :], stop
        if stop == self.n:
            self._finish()
        return whole.iloc[: stop - start]

    def _changed(self, what: str) -> DataError:
        return DataError(
            f"{self.description} changed since the fit ({what}): the rows the fit kept cannot be "
            "read again (as marginal effects do); refit the model on the data as they are now"
        )

    def _restart(self) -> None:
        self._close()
        if self.fingerprint is not None:
            try:
                now = self.fingerprint()
            except (OSError, ValueError) as exc:
                raise self._changed(f"it cannot be read: {exc}") from None
            if now != self.stamp:
                raise self._changed("row count, file sizes or modification times differ")
        self._iter = self._kept()
        self._held = None
        self._pos = 0
        self._held = self._next()

    def _next(self, required: bool = True) -> pd.DataFrame | None:
        try:
            df = next(self._iter, None)
        except DataError:
            raise
        except (OSError, ValueError) as exc:  # pyarrow's errors of a file rewritten meanwhile
            raise self._changed(f"reading it failed: {exc}") from None
        if df is None and required:
            raise self._changed(f"it holds fewer than the {self.n:,} rows kept")
        return df

    def _finish(self) -> None:
        """At the last row kept: nothing may follow, then the pass is over."""
        if len(self._held) or self._next(required=False) is not None:
            raise self._changed(f"it holds more than the {self.n:,} rows kept")
        self._close()

    def _close(self) -> None:
        if self._iter is not None:
            close = getattr(self._iter, "close", None)
            if close is not None:
                close()  # a generator closes the file it reads
        self._iter, self._held, self._pos = None, None, 0

    def _kept(self) -> Iterator[pd.DataFrame]:
        """The source's batches with the dropped rows left out (empty ones skipped)."""
        offset = 0
        nan = self.nan_positions
        for df in self.chunks():
            m = len(df)
            if m == 0:
                continue
            keep = ~missing_rows(df, self.used)
            lo, hi = np.searchsorted(nan, [offset, offset + m])
            if hi > lo:
                local = nan[lo:hi] - offset
                if not keep[local].all():
                    raise self._changed("a row dropped for its design now misses a value")
                keep[local] = False
            df = df.set_axis(pd.RangeIndex(offset, offset + m))
            offset += m
            if offset > self.rows:
                break
            if keep.all():
                yield df
            elif keep.any():
                yield df[keep]
        if offset != self.rows:
            raise self._changed(f"it holds {offset:,} rows, the fit read {self.rows:,}")
