"""Parquet files as a source of pandas chunks, read in record batches with pyarrow."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator, Sequence

import pandas as pd

from ..exceptions import DataError
from .prefetch import prefetched

__all__ = ["ParquetSource", "parquet"]


class ParquetSource:
    """Rows of a Parquet dataset, handed out as pandas DataFrames of at most ``batch_rows``.

    Parameters
    ----------
    source : str, Path, sequence of paths or pyarrow.dataset.Dataset
        A file, a directory (every Parquet file below it), a glob pattern (``"data/*.parquet"``)
        or an open dataset.
    batch_rows : int
        Largest number of rows per chunk.
    prefetch : bool
        Read and convert the next chunk in a background thread while the current one is used
        (pyarrow's decoding releases the GIL; at most one chunk waits).  Off by default: on a
        machine whose cores are busy the extra thread costs more than it overlaps.

    Notes
    -----
    Files are read in the dataset's file order and each file in row-group order, so every pass
    sees the rows in the same order.  Dictionary-encoded columns (pandas categoricals when
    written from pandas) arrive as pandas categoricals with their dictionary as categories.
    """

    def __init__(self, source, batch_rows: int = 65536, prefetch: bool = False):
        import pyarrow.dataset as ds

        if int(batch_rows) < 1:
            raise ValueError(f"batch_rows must be positive; got {batch_rows}")
        self.batch_rows = int(batch_rows)
        self.prefetch = bool(prefetch)
        if isinstance(source, ds.Dataset):
            self.dataset = source
            return
        if isinstance(source, str | os.PathLike):
            text = os.fspath(source)
            if glob.has_magic(text):
                files = sorted(glob.glob(text))
                if not files:
                    raise DataError(f"no Parquet file matches {text!r}")
                source = files
            elif not os.path.exists(text):
                raise DataError(f"no such Parquet file or directory: {text!r}")
            else:
                source = text
        else:
            source = [os.fspath(s) for s in source]
        try:
            self.dataset = ds.dataset(source, format="parquet")
        except (OSError, ValueError) as exc:
            raise DataError(f"cannot open Parquet data {source!r}: {exc}") from None

    @property
    def column_names(self) -> list[str]:
        """The columns of the dataset."""
        return list(self.dataset.schema.names)

    def count_rows(self) -> int:
        """Rows of the dataset (from the files' metadata)."""
        return int(self.dataset.count_rows())

    def fingerprint(self) -> tuple:
        """What identifies the dataset's contents without reading them: its row count and,
        for a dataset of files, each file's path, size and modification time.  A later pass
        that must see the same rows (reading them again for marginal effects) compares it."""
        files = getattr(self.dataset, "files", None)
        stamp = ()
        if files is not None:
            infos = self.dataset.filesystem.get_file_info(list(files))
            stamp = tuple((i.path, i.size, i.mtime_ns) for i in infos)
        return (self.count_rows(), stamp)

    def batches(self, columns: Sequence[str] | None = None) -> Iterator[pd.DataFrame]:
        """One pass over the rows: DataFrames of at most :attr:`batch_rows` rows, holding only
        ``columns`` (default: all)."""
        if columns is not None:
            missing = [c for c in columns if c not in self.column_names]
            if missing:
                raise DataError(
                    f"the Parquet data have no column(s) {', '.join(map(repr, missing))}"
                )
        frames = (b.to_pandas() for b in self._record_batches(columns) if b.num_rows)
        if not self.prefetch:
            yield from frames
            return
        yield from prefetched(frames)

    def _record_batches(self, columns):
        import pyarrow.parquet as pq

        # File by file, row group by row group, without pre-buffering or read-ahead: the
        # dataset scanner's defaults hold several files' column chunks at once, and its memory
        # pool keeps what it once held, so the memory of a pass would grow with the data.
        files = getattr(self.dataset, "files", None)
        if files is None:  # not a dataset of files: its own scanner, with little read-ahead
            yield from self.dataset.to_batches(
                columns=columns, batch_size=self.batch_rows, batch_readahead=1
            )
            return
        fs = self.dataset.filesystem
        for path in files:
            with fs.open_input_file(path) as fh:
                pf = pq.ParquetFile(fh, pre_buffer=False)
                yield from pf.iter_batches(
                    batch_size=self.batch_rows, columns=columns, use_threads=False
                )

    def __call__(self) -> Iterator[pd.DataFrame]:
        return self.batches()

    def __repr__(self) -> str:
        return f"ParquetSource({len(self.dataset.files)} file(s), batch_rows={self.batch_rows})"


def parquet(path, **kw) -> ParquetSource:
    """A Parquet file, directory, glob pattern or pyarrow dataset as a source of row chunks
    (see :class:`~multilogit.data.parquet.ParquetSource`), for fits on data larger than memory.

    Examples
    --------
    >>> src = multilogit.parquet("hsb/*.parquet", batch_rows=100_000)  # doctest: +SKIP
    """
    return ParquetSource(path, **kw)
