"""Worker threads for the backends: contiguous runs of rows, one per core.

The chunks are split into one contiguous run per thread; each thread sums its run into its own
accumulators and the runs are added in order, so for a given number of threads the result does
not depend on timing.  The kernels' BLAS calls and Numba loops release the GIL; while the threads
run, BLAS itself is held to one thread (through ``threadpoolctl``) so the two levels of
threading do not fight over the cores.  The number of threads is the number of cores this
process may use, or the environment variable ``MULTILOGIT_NUM_THREADS``.

BLAS thread counts are process-wide, and fits may run in several threads at once: every limit
the package sets goes through one reference-counted limiter (``blas_threads_at_most``),
which records the counts when the first holder enters and restores exactly those when the last
one leaves, whatever the order in which holders enter, leave or raise.

A pass split over threads stops early when the caller is interrupted (Ctrl-C) or one run
raises: the other runs stop at their next chunk (the loops over chunks call
:func:`stop_if_cancelled`), and :func:`map_runs` waits for them before the exception goes on,
so no worker is still computing once the caller sees it.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import Counter
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

__all__ = [
    "MIN_CHUNKS_PER_THREAD",
    "RunCancelled",
    "blas_threads_at_most",
    "block_runs",
    "chunk_runs",
    "default_threads",
    "map_runs",
    "row_runs",
    "single_threaded_blas",
    "small_dense_blas",
    "split_runs",
    "stop_if_cancelled",
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
_pool_lock = threading.Lock()


def _executor(threads: int) -> ThreadPoolExecutor:
    """The shared worker threads, grown when a caller asks for more."""
    global _pool, _pool_size
    with _pool_lock:
        if _pool is None or _pool_size < threads:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="multilogit")
            _pool_size = threads
        return _pool


class _BlasLimiter:
    """The process-wide BLAS thread limit, shared by every thread of the process.

    ``threadpoolctl``'s own contexts each save the counts they find and put them back on exit;
    two overlapping in different threads put back each other's limit in the wrong order and
    leave BLAS on one thread for good.  Here the holders are counted instead: the first to
    enter records the counts, every change applies the smallest limit held, and the last to
    leave restores the recorded counts exactly (what the user had set, not a default).

    ``threadpoolctl`` (3.8 on) lets one thread at a time change OpenBLAS's shared pool and
    silently ignores the others, so a limit set from a worker thread while the user holds a
    ``threadpool_limits`` context in the main thread would not apply (and the workers' BLAS
    calls, each on every core, would crawl).  Changes here are serialised by this limiter's
    lock, so each takes that control for its own duration and gives it back afterwards unless
    its thread holds a ``threadpoolctl`` limit of its own.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._controller = None
        self._ownership = None
        self._gate = None
        self._held: Counter[int] = Counter()
        self._original: list[tuple[object, int]] = []

    def _libraries(self) -> list:
        if self._controller is None:
            # The controller lists the BLAS libraries loaded when it is built, and is kept.
            # SciPy brings its own OpenBLAS, used by every fit (the factorisations, and Numba's
            # BLAS bindings); scipy.linalg is imported at its first use, not with multilogit,
            # so it is loaded here first: else SciPy's BLAS would stay on all cores for the
            # whole session, and a small factor would wait on a busy core.
            import scipy.linalg  # noqa: F401

            try:
                import threadpoolctl
            except ImportError:  # pragma: no cover - a declared dependency
                self._controller = False
            else:
                self._controller = threadpoolctl.ThreadpoolController()
                self._ownership = getattr(threadpoolctl, "CONTROLLING_THREAD_OWNERSHIP", None)
                self._gate = getattr(threadpoolctl, "OpenBLASController", None)
        if not self._controller:
            return []  # pragma: no cover
        return [lib for lib in self._controller.lib_controllers if lib.user_api == "blas"]

    def _set(self, counts: list[tuple[object, int]]) -> None:
        # Counted as a threadpoolctl limit of this thread while it lasts: on leaving, control
        # of OpenBLAS's pool is given up unless this thread holds a limit of its own.
        if self._ownership is not None:
            self._ownership.increment()
        try:
            if hasattr(self._gate, "clear_controlling_thread"):
                self._gate.clear_controlling_thread(force=True)
            for lib, count in counts:
                lib.set_num_threads(count)
        finally:
            if self._ownership is not None:
                self._ownership.decrement()

    def acquire(self, limit: int) -> None:
        with self._lock:
            if not self._held:
                self._original = [(lib, lib.num_threads) for lib in self._libraries()]
            self._held[limit] += 1
            self._apply()

    def release(self, limit: int) -> None:
        with self._lock:
            self._held[limit] -= 1
            if not self._held[limit]:
                del self._held[limit]
            if self._held:
                self._apply()
            else:
                self._set(self._original)
                self._original = []

    def _apply(self) -> None:
        limit = min(self._held)
        self._set([(lib, min(limit, count)) for lib, count in self._original])


_blas = _BlasLimiter()


class _BlasLimit:
    """One holder of the process-wide limit (see :func:`blas_threads_at_most`)."""

    def __init__(self, threads: int):
        self.threads = threads

    def __enter__(self):
        _blas.acquire(self.threads)
        return self

    def __exit__(self, *exc) -> None:
        _blas.release(self.threads)


def blas_threads_at_most(threads: int) -> _BlasLimit:
    """A context in which BLAS runs on at most ``threads`` threads, safe to overlap with others
    from any thread (see :class:`_BlasLimiter`); a no-op if ``threadpoolctl`` is missing.

    While several holders overlap the smallest limit is in force; when the last one leaves
    (normally or by an exception) BLAS has exactly the thread counts it had before the first
    entered.  Counts changed by other code while a limit is held are not kept.
    """
    if int(threads) < 1:
        raise ValueError(f"threads must be at least 1; got {threads}")
    return _BlasLimit(int(threads))


def single_threaded_blas() -> _BlasLimit:
    """A context in which BLAS runs on one thread (see :func:`blas_threads_at_most`).

    For the evaluation threads, and for small dense algebra (a ``q x q`` Cholesky factor or
    solve): split over cores, an 80 x 80 factor waits on the other core whenever it is busy,
    up to a hundred times longer than on one.
    """
    return blas_threads_at_most(1)


# Dense matrices up to this order are factored on one BLAS thread (an 80 x 80 Cholesky takes a
# tenth of a millisecond there); larger ones, as with thousands of parameters, gain from more.
SMALL_DENSE = 512


def small_dense_blas(order: int):
    """The BLAS context for dense algebra on an ``order x order`` matrix: one thread up to
    :data:`SMALL_DENSE`, BLAS's own choice above."""
    return single_threaded_blas() if order <= SMALL_DENSE else contextlib.nullcontext()


class RunCancelled(Exception):
    """Raised in a worker by :func:`stop_if_cancelled` once its pass was given up; never
    reaches the caller of :func:`map_runs`, who gets the exception that stopped the pass."""


_worker = threading.local()


def stop_if_cancelled() -> None:
    """Raise :class:`RunCancelled` if the pass this worker thread runs for was given up.

    Call it between chunks in a run of :func:`map_runs`: a run checking at every chunk stops
    within one chunk of an interruption.  Outside a worker it does nothing.
    """
    cancel = getattr(_worker, "cancel", None)
    if cancel is not None and cancel.is_set():
        raise RunCancelled


def _run(fn, k: int, cancel: threading.Event):
    outer = getattr(_worker, "cancel", None)
    _worker.cancel = cancel
    try:
        if cancel.is_set():  # given up before this run started
            raise RunCancelled
        return fn(k)
    finally:
        _worker.cancel = outer


def map_runs(fn, t: int) -> list:
    """``[fn(0), ..., fn(t - 1)]``, in parallel threads when ``t > 1``, BLAS on one thread
    either way (a single run is a few chunks at most: too small to split its products over
    cores).  Callers add the results in list order, so sums do not depend on timing.

    If a run raises, or the caller is interrupted while waiting (Ctrl-C), the other runs are
    told to stop (their next :func:`stop_if_cancelled` raises) and are waited for; then the
    exception goes on: that of the first run in order that failed, or the interruption.
    """
    with single_threaded_blas():
        if t <= 1:
            return [fn(0)]
        cancel = threading.Event()
        futures = []
        try:
            pool = _executor(t)
            for k in range(t):
                futures.append(pool.submit(_run, fn, k, cancel))
            wait(futures, return_when=FIRST_EXCEPTION)
        except BaseException:
            # Interrupted while waiting: no run may keep computing once the caller sees the
            # exception, nor hold a worker that the next pass needs.
            _give_up(futures, cancel)
            raise
        errors = [f.exception() for f in futures if f.done() and f.exception() is not None]
        if errors:
            _give_up(futures, cancel)
            errors = [f.exception() for f in futures if not f.cancelled() and f.exception()]
            raise next((e for e in errors if not isinstance(e, RunCancelled)), errors[0])
        return [f.result() for f in futures]


def _give_up(futures, cancel: threading.Event) -> None:
    """Stop the runs of a pass at their next chunk and wait until they have."""
    cancel.set()
    for f in futures:
        f.cancel()
    wait(futures)


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
