"""Rows spilled to local files: a backend for data larger than memory.

A :class:`SpillWriter` appends chunks of rows to binary files in a spill directory, written
once: the design matrix (float64, row-major), the equation codes (int64), the likelihood
weights, the sampling weights (float64; optional) and any named integer columns (int64, e.g.
cluster codes).  :meth:`SpillWriter.finish` turns the directory into a :class:`SpillBackend`,
which reads rows with explicit positioned reads (``os.preadv``) into fresh buffers, one chunk
per thread at a time: no memory map grows with the data, so the peak memory of a pass does not
depend on the number of rows.  The directory is deleted when the backend is closed or
garbage-collected.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import weakref
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from .chunked import ChunkedBackend, Rows

__all__ = ["SpillBackend", "SpillWriter"]

_MANIFEST = "manifest.json"
_X, _Y, _W, _S = "X.f64", "y.i64", "w.f64", "sampling.f64"


def _column_file(name: str) -> str:
    return f"col-{name.encode().hex()}.i64"


def _remove(path: str, fds: list[int]) -> None:
    _close_files(fds)
    shutil.rmtree(path, ignore_errors=True)


def _read_into(fd: int, out: np.ndarray, offset: int) -> np.ndarray:
    """Fill ``out`` with the bytes of ``fd`` at ``offset`` (positioned reads: each thread reads
    its own rows without a shared file position)."""
    view = memoryview(out).cast("B")
    done = 0
    while done < len(view):
        if hasattr(os, "preadv"):
            got = os.preadv(fd, [view[done:]], offset + done)
        else:  # pragma: no cover - platforms without preadv
            data = os.pread(fd, len(view) - done, offset + done)
            view[done : done + len(data)] = data
            got = len(data)
        if got == 0:
            raise OSError(f"spill file ended early (read {done} of {len(view)} bytes)")
        done += got
    return out


class SpillWriter:
    """Append chunks of rows to a spill directory; :meth:`finish` makes it a backend.

    Parameters
    ----------
    p : int
        Design columns.
    directory : str or Path, optional
        Where to create the spill directory (a fresh subdirectory, deleted with the backend);
        default :func:`tempfile.gettempdir`.
    sampling : bool
        Whether every chunk brings sampling weights.
    columns : sequence of str
        Names of the int64 columns every chunk brings (e.g. cluster codes).

    Examples
    --------
    >>> with SpillWriter(2) as writer:  # doctest: +SKIP
    ...     for X, y, w in chunks:
    ...         writer.append(X, y, w)
    ...     backend = writer.finish(J=2)
    """

    def __init__(
        self,
        p: int,
        directory: str | os.PathLike | None = None,
        sampling: bool = False,
        columns: tuple[str, ...] | list[str] = (),
    ):
        self.p = int(p)
        self.sampling = bool(sampling)
        self.columns = tuple(columns)
        if len(set(self.columns)) != len(self.columns):
            raise ValueError(f"column names must be distinct; got {self.columns}")
        parent = tempfile.gettempdir() if directory is None else os.fspath(directory)
        os.makedirs(parent, exist_ok=True)
        # A leading dot: dataset readers (pyarrow's among them) skip it, so a spill under the
        # directory of the data it came from is never taken for more data.
        self.path = tempfile.mkdtemp(prefix=".multilogit-spill-", dir=parent)
        self.n = 0
        names = [_X, _Y, _W] + ([_S] if self.sampling else [])
        names += [_column_file(c) for c in self.columns]
        # Readable too: recode reads codes back.
        self._files = {nm: open(os.path.join(self.path, nm), "w+b") for nm in names}
        self._cleanup = weakref.finalize(self, _remove, self.path, [])
        self._finished = False
        # One thread writes while the caller builds the next chunk (file writes release the
        # GIL); at most one chunk waits, so memory stays at two chunks.
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="multilogit-spill")
        self._pending = None

    def __enter__(self) -> SpillWriter:
        return self

    def __exit__(self, *exc) -> None:
        if not self._finished:
            self.abort()

    def append(self, X, y, w, sampling=None, **columns) -> None:
        """Append rows.

        The arrays are written by a background thread after this returns: do not modify them
        until the next call of :meth:`append` or :meth:`finish` (which wait for the write).

        Parameters
        ----------
        X : array_like, shape (m, p)
        y : array_like of int, shape (m,)
            Equation codes (``-1`` for the reference outcome).
        w : array_like, shape (m,)
            Likelihood weights.
        sampling : array_like, shape (m,), optional
            Sampling weights (required when the writer was made with ``sampling=True``).
        **columns : array_like of int, shape (m,)
            One array per name given to the writer.
        """
        if self._finished:
            raise RuntimeError("this spill writer is finished")
        X = np.ascontiguousarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.p:
            raise ValueError(f"X must have shape (m, {self.p}); got {X.shape}")
        m = len(X)
        parts = {
            _X: X,
            _Y: np.ascontiguousarray(y, dtype=np.int64),
            _W: np.ascontiguousarray(w, dtype=np.float64),
        }
        if (sampling is not None) != self.sampling:
            raise ValueError(
                "sampling weights must be given with every chunk"
                if self.sampling
                else "this writer was made without sampling weights"
            )
        if self.sampling:
            parts[_S] = np.ascontiguousarray(sampling, dtype=np.float64)
        if set(columns) != set(self.columns):
            raise ValueError(f"columns must be exactly {self.columns}; got {tuple(columns)}")
        for name, values in columns.items():
            parts[_column_file(name)] = np.ascontiguousarray(values, dtype=np.int64)
        for name, arr in parts.items():
            if name != _X and arr.shape != (m,):
                raise ValueError(f"every row array must have {m} entries; {name} has {arr.shape}")
        self._wait()
        self._pending = self._pool.submit(self._write, parts)
        self.n += m

    def _write(self, parts) -> None:
        for name, arr in parts.items():
            self._files[name].write(memoryview(arr).cast("B"))

    def _wait(self) -> None:
        """Wait for the pending write; its error (a full disk) is raised here."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def recode(self, column: str | None, lookup, shift: int = 0) -> None:
        """Rewrite the codes written so far: each code ``c`` becomes ``lookup[c + shift]``.

        ``column`` names an int64 column given to the writer, or is None for the equation
        codes (then ``shift=1`` indexes ``lookup`` from the reference's ``-1``).  Rows whose
        codes were written before their levels were all known are coded once at the end,
        block by block (the memory of a block, whatever the number of rows).
        """
        self._wait()
        name = _Y if column is None else _column_file(column)
        fh = self._files[name]
        fh.flush()
        lookup = np.asarray(lookup, dtype=np.int64)
        block = np.empty(1 << 20, np.int64)
        fd = fh.fileno()
        for start in range(0, self.n, len(block)):
            part = block[: min(len(block), self.n - start)]
            _read_into(fd, part, start * 8)
            new = lookup[part + shift]
            view = memoryview(new).cast("B")
            done = 0
            while done < len(view):
                done += os.pwrite(fd, view[done:], start * 8 + done)

    def finish(
        self, J: int, chunk_rows: int | None = None, threads: int | None = None, frames=None
    ) -> SpillBackend:
        """Close the files and hand the directory to a :class:`SpillBackend` (which deletes
        it when closed); ``frames`` serves the source data of its rows (see there)."""
        try:
            self._wait()
        finally:
            self._pool.shutdown()
        for f in self._files.values():
            f.close()
        manifest = {"n": self.n, "p": self.p, "sampling": self.sampling, "columns": self.columns}
        Path(self.path, _MANIFEST).write_text(json.dumps(manifest))
        self._finished = True
        self._cleanup.detach()
        return SpillBackend(self.path, J, chunk_rows, threads, delete=True, frames=frames)

    def abort(self) -> None:
        """Close the files and delete the spill directory."""
        try:
            self._wait()
        except OSError:
            pass  # the spill is deleted anyway
        finally:
            self._pool.shutdown()
        for f in self._files.values():
            f.close()
        self._finished = True
        self._cleanup()


class SpillBackend(ChunkedBackend):
    """A :class:`~multilogit.engine.chunked.ChunkedBackend` over rows in a spill directory.

    Parameters
    ----------
    path : str or Path
        A directory written by :class:`SpillWriter`.
    J : int
        Non-reference outcomes.
    chunk_rows, threads : int, optional
    delete : bool
        Delete the directory when the backend is closed or garbage-collected.
    frames : callable, optional
        ``frames(start, stop)``: the source data of rows ``start:stop`` as a DataFrame, for
        :meth:`frame_rows` (the spill holds designs, not the data they were built from; a
        streamed fit reads its source again in step with the rows).  Reads in increasing
        order, as :meth:`reduce` makes them, should be cheap.

    Notes
    -----
    The numbers equal those of an :class:`~multilogit.engine.memory.InMemoryBackend` on the
    same rows with the same ``chunk_rows`` and ``threads`` (the same kernels summed in the same
    order), except :meth:`gram` and :meth:`distinct_rows`, which the in-memory backend sums over
    the whole arrays (equal to rounding).  :meth:`probabilities` and :meth:`linear` return all
    rows; :meth:`iter_probabilities` and :meth:`iter_linear` hand them out chunk by chunk.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        J: int,
        chunk_rows: int | None = None,
        threads: int | None = None,
        delete: bool = True,
        frames=None,
    ):
        self.path = os.fspath(path)
        self.frames = frames
        meta = json.loads(Path(self.path, _MANIFEST).read_text())
        self.columns = tuple(meta["columns"])
        self._fds: list[int] = []
        names = [_X, _Y, _W] + ([_S] if meta["sampling"] else [])
        names += [_column_file(c) for c in self.columns]
        self._fd = {}
        for nm in names:
            fd = os.open(os.path.join(self.path, nm), os.O_RDONLY)
            self._fds.append(fd)
            self._fd[nm] = fd
        if delete:
            self._closer = weakref.finalize(self, _remove, self.path, self._fds)
        else:
            self._closer = weakref.finalize(self, _close_files, self._fds)
        super().__init__(meta["n"], meta["p"], J, chunk_rows, threads, meta["sampling"])
        size = os.fstat(self._fd[_X]).st_size
        if size != 8 * self.n * self.p:
            raise ValueError(f"{self.path}: the design file holds {size} bytes, not n * p * 8")

    def close(self) -> None:
        """Close the files (and delete the directory if the backend owns it)."""
        self._closer()

    @property
    def closed(self) -> bool:
        return not self._closer.alive

    def __enter__(self) -> SpillBackend:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _check(self, start: int, stop: int) -> None:
        if self.closed:
            raise ValueError("the spill backend is closed")
        if not 0 <= start <= stop <= self.n:
            raise IndexError(f"rows {start}:{stop} out of range 0:{self.n}")

    def _vector(self, name: str, dtype, start: int, stop: int) -> np.ndarray:
        return _read_into(self._fd[name], np.empty(stop - start, dtype), 8 * start)

    def read_rows(self, start: int, stop: int) -> Rows:
        self._check(start, stop)
        m = stop - start
        X = _read_into(self._fd[_X], np.empty((m, self.p)), 8 * self.p * start)
        y = self._vector(_Y, np.int64, start, stop)
        w = self._vector(_W, np.float64, start, stop)
        s = self._vector(_S, np.float64, start, stop) if self.has_sampling else None
        return Rows(slice(start, stop), X, y, w, s)

    def read_weights(self, start: int, stop: int) -> np.ndarray:
        self._check(start, stop)
        return self._vector(_W, np.float64, start, stop)

    #: Rows farther apart than this many bytes of the design are gathered one by one (a
    #: positioned read each) instead of by reading every chunk that holds them: on large data
    #: the subsample's rows lie tens of kilobytes apart, and reading only them spares a full
    #: pass over the spill.
    sparse_gather_bytes = 1 << 16

    def gather(self, positions: np.ndarray) -> Rows:
        """The rows at increasing ``positions``, copied into memory; see
        :meth:`~multilogit.engine.chunked.ChunkedBackend.gather`."""
        positions = np.asarray(positions, dtype=np.int64)
        gaps = np.diff(positions)
        if len(positions) < 2 or gaps.min() * 8 * self.p < self.sparse_gather_bytes:
            return super().gather(positions)
        self._check(int(positions[0]), int(positions[-1]) + 1)
        m = len(positions)
        X = np.empty((m, self.p))
        y = np.empty(m, dtype=np.int64)
        w = np.empty(m)
        s = np.empty(m) if self.has_sampling else None
        fx, fy, fw = self._fd[_X], self._fd[_Y], self._fd[_W]
        fs = self._fd[_S] if self.has_sampling else None
        row = 8 * self.p
        for k, i in enumerate(positions.tolist()):
            _read_into(fx, X[k], row * i)
            _read_into(fy, y[k : k + 1], 8 * i)
            _read_into(fw, w[k : k + 1], 8 * i)
            if s is not None:
                _read_into(fs, s[k : k + 1], 8 * i)
        return Rows(slice(0, m), X, y, w, s)

    def frame_rows(self, start: int, stop: int):
        if self.frames is None:
            return None
        self._check(start, stop)
        return self.frames(start, stop)

    def read_column(self, name: str, start: int, stop: int) -> np.ndarray:
        if name not in self.columns:
            raise KeyError(f"the spill holds no column {name!r}; it holds {self.columns}")
        self._check(start, stop)
        return self._vector(_column_file(name), np.int64, start, stop)


def _close_files(fds: list[int]) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass
    fds.clear()
