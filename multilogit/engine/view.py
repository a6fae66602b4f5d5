"""The rows of a chunked backend seen another way, without copying them: some of the design
columns, the outcome recoded (another reference, outcomes merged), and the rows of left-out
outcomes at weight zero.  What refits and reparameterisations of a model on data larger than
memory read."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .chunked import ChunkedBackend, Rows

__all__ = ["DROP", "ViewBackend"]

#: In ``y_map``: the row is left out (read at weight zero).
DROP = -2


class ViewBackend(ChunkedBackend):
    """The rows of ``inner`` with columns ``columns`` and each row's equation code ``y`` read
    as ``y_map[y]``.

    Parameters
    ----------
    inner : ChunkedBackend
    columns : array of int, optional
        Design columns kept, in order (default all).
    y_map : ndarray of int, shape (inner.J + 1,), optional
        New equation code of each old one (the last entry is the old reference's, code
        ``-1``); :data:`DROP` leaves those rows out.  Default: unchanged.
    J : int, optional
        Equations of the new coding (default: ``inner.J``).
    """

    def __init__(self, inner: ChunkedBackend, columns=None, y_map=None, J=None):
        self.inner = inner
        self.columns = None if columns is None else np.asarray(columns, dtype=np.intp)
        if y_map is not None:
            y_map = np.asarray(y_map, dtype=np.int64)
            if y_map.shape != (inner.J + 1,):
                raise ValueError(f"y_map must have {inner.J + 1} entries; got {y_map.shape}")
        self.y_map = y_map
        p = inner.p if self.columns is None else len(self.columns)
        J = inner.J if J is None else int(J)
        super().__init__(inner.n, p, J, inner.chunk_rows, inner.threads, inner.has_sampling)

    def read_rows(self, start: int, stop: int) -> Rows:
        rows = self.inner.read_rows(start, stop)
        X = rows.X if self.columns is None else np.ascontiguousarray(rows.X[:, self.columns])
        y, w = rows.y, rows.w
        if self.y_map is not None:
            y = self.y_map[y]
            dropped = y == DROP
            if dropped.any():
                w = np.where(dropped, 0.0, w)
                y = np.where(dropped, -1, y)
        return replace(rows, X=X, y=y, w=w)

    def read_column(self, name: str, start: int, stop: int) -> np.ndarray:
        return self.inner.read_column(name, start, stop)

    def read_weights(self, start: int, stop: int) -> np.ndarray:
        if self.y_map is None:
            return self.inner.read_weights(start, stop)
        return self.read_rows(start, stop).w

    def frame_rows(self, start: int, stop: int):
        return self.inner.frame_rows(start, stop)

    def column_range(self) -> tuple[np.ndarray, np.ndarray]:
        # Over all rows of the inner design (left-out rows included): the scale of the columns.
        lo, hi = self.inner.column_range()
        return (lo, hi) if self.columns is None else (lo[self.columns], hi[self.columns])
