"""Another reference outcome on the same rows, without copying them: a chunked backend whose
equation codes are mapped as they are read."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .chunked import ChunkedBackend, Rows

__all__ = ["RecodedBackend"]


class RecodedBackend(ChunkedBackend):
    """The rows of ``inner`` with each row's equation code ``y`` read as ``y_map[y]``.

    Parameters
    ----------
    inner : ChunkedBackend
    y_map : ndarray of int, shape (J + 1,)
        New equation code of each old one; the last entry is that of the old reference
        outcome (code ``-1``, which indexes the last entry).
    """

    def __init__(self, inner: ChunkedBackend, y_map):
        y_map = np.asarray(y_map, dtype=np.int64)
        if y_map.shape != (inner.J + 1,):
            raise ValueError(f"y_map must have {inner.J + 1} entries; got {y_map.shape}")
        super().__init__(
            inner.n, inner.p, inner.J, inner.chunk_rows, inner.threads, inner.has_sampling
        )
        self.inner = inner
        self.y_map = y_map

    def read_rows(self, start: int, stop: int) -> Rows:
        rows = self.inner.read_rows(start, stop)
        return replace(rows, y=self.y_map[rows.y])

    def read_column(self, name: str, start: int, stop: int) -> np.ndarray:
        return self.inner.read_column(name, start, stop)

    def read_weights(self, start: int, stop: int) -> np.ndarray:
        return self.inner.read_weights(start, stop)

    def frame_rows(self, start: int, stop: int):
        return self.inner.frame_rows(start, stop)

    def column_range(self) -> tuple[np.ndarray, np.ndarray]:
        # The design is the inner backend's: its (cached) range.
        return self.inner.column_range()
