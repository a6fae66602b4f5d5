"""Worker threads for the backends: contiguous runs of rows, one per core.

The chunks are split into one contiguous run per thread; each thread sums its run into its own
accumulators and the runs are added in order, so for a given number of threads the result does
not depend on timing.  The kernels' BLAS calls and Numba loops release the GIL; while the threads
run, BLAS itself is held to one thread (through ``threadpoolctl``) so the two levels of
threading do not fight over the cores.  The number of threads is the number of cores this
process may use, or the environment variable ``MULTILOGIT_NUM_THREADS``.
"""

from __future__ import annotations

import contextlib
import os
from concurrent.futures import ThreadPoolExecutor

__all__ = [
    "MIN_CHUNKS_PER_THREAD",
    "block_runs",
    "chunk_runs",
    "default_threads",
    "map_runs",
    "row_runs",
    "single_threaded_blas",
    "small_dense_blas",
    "split_runs",
]


def default_threads() -> int:
    """Threads for one evaluation: ``MULTILOGIT_NUM_THREADS`` or the cores this process may
    use."""
    env = os.environ.get("MULTILOGIT_NUM_THREADS", "").strip()
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            raise ValueError(
                f"MULTILOGIT_NUM_THREADS must be a positive integer; got {env!r}"
            ) from None
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_blas_controller = None


def _executor(threads: int) -> ThreadPoolExecutor:
    """The shared worker threads, grown when a caller asks for more."""
    global _pool, _pool_size
    if _pool is None or _pool_size < threads:
        if _pool is not None:
            _pool.shutdown(wait=False)
        _pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="multilogit")
        _pool_size = threads
    return _pool


def single_threaded_blas():
    """A context in which BLAS runs on one thread (a no-op if ``threadpoolctl`` is missing).

    For the evaluation threads, and for small dense algebra (a ``q x q`` Cholesky factor or
    solve): split over cores, an 80 x 80 factor waits on the other core whenever it is busy,
    up to a hundred times longer than on one.
    """
    global _blas_controller
    if _blas_controller is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # pragma: no cover - a declared dependency
            return contextlib.nullcontext()
        _blas_controller = ThreadpoolController()
    return _blas_controller.limit(limits=1, user_api="blas")


# Dense matrices up to this order are factored on one BLAS thread (an 80 x 80 Cholesky takes a
# tenth of a millisecond there); larger ones, as with thousands of parameters, gain from more.
SMALL_DENSE = 512


def small_dense_blas(order: int):
    """The BLAS context for dense algebra on an ``order x order`` matrix: one thread up to
    :data:`SMALL_DENSE`, BLAS's own choice above."""
    return single_threaded_blas() if order <= SMALL_DENSE else contextlib.nullcontext()


def map_runs(fn, t: int) -> list:
    """``[fn(0), ..., fn(t - 1)]``, in parallel threads when ``t > 1``, BLAS on one thread
    either way (a single run is a few chunks at most: too small to split its products over
    cores).  Callers add the results in list order, so sums do not depend on timing."""
    with single_threaded_blas():
        if t <= 1:
            return [fn(0)]
        return list(_executor(t).map(fn, range(t)))


def split_runs(n: int, t: int, align: int = 1) -> list[slice]:
    """``n`` rows as ``t`` contiguous runs of about equal size, cut at multiples of ``align``
    rows (whole chunks); the one splitter of every backend, so runs depend only on ``n``,
    ``t`` and ``align``."""
    t = max(1, t)
    blocks = -(-n // align)
    cuts = [min(align * (k * blocks // t), n) for k in range(t)] + [n]
    return [slice(a, b) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]


# A thread gets at least this many chunks: below that the start-up costs more than it saves.
MIN_CHUNKS_PER_THREAD = 2


def block_runs(n_blocks: int, threads: int) -> list[slice]:
    """Blocks ``0 .. n_blocks - 1`` as contiguous runs, one per thread (at most ``threads``,
    each with at least :data:`MIN_CHUNKS_PER_THREAD` blocks)."""
    return split_runs(n_blocks, min(threads, n_blocks // MIN_CHUNKS_PER_THREAD))


def chunk_runs(n: int, chunk_rows: int, threads: int) -> list[slice]:
    """``n`` rows in chunks of ``chunk_rows`` as contiguous runs of whole chunks: the rows of
    :func:`block_runs` of the chunks; fixed by ``n``, ``chunk_rows`` and ``threads``."""
    n_chunks = -(-n // chunk_rows)
    return split_runs(n, len(block_runs(n_chunks, threads)), align=chunk_rows)


def row_runs(n: int, threads: int | None = None, min_rows: int = 65536) -> list[slice]:
    """Split ``n`` rows into at most ``threads`` contiguous runs of at least ``min_rows``."""
    return split_runs(n, min(threads or default_threads(), n // max(min_rows, 1)))
