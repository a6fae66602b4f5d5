"""Threads: BLAS thread limits under concurrent fits, and passes whose runs fail."""

from __future__ import annotations

import threading
import time

import numpy as np
import threadpoolctl

import multilogit as ml
from multilogit.engine.chunked import ArrayBackend

from . import Case, Right


def _blas_threads() -> list[int]:
    return [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]


def _put_back(counts: list[int]) -> None:
    """Set BLAS's thread counts (a case must leave the process as it found it)."""
    libs = [
        c for c in threadpoolctl.ThreadpoolController().lib_controllers if c.user_api == "blas"
    ]
    for lib, n in zip(libs, counts, strict=True):
        lib.set_num_threads(n)
    gate = getattr(threadpoolctl, "OpenBLASController", None)
    if hasattr(gate, "clear_controlling_thread"):
        gate.clear_controlling_thread()


def _fits_in_four_threads() -> list:
    data = ml.datasets.load("hsbdemo")
    barrier, errors = threading.Barrier(4), []

    def work():
        try:
            barrier.wait()
            for _ in range(3):
                ml.mnlogit("prog ~ write + read", data).fit(disp=0)
        except Exception as exc:  # reported by the check
            errors.append(exc)

    pool = [threading.Thread(target=work) for _ in range(4)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return errors


def _concurrent_fits_restore_blas():
    before = _blas_threads()
    try:
        errors = _fits_in_four_threads()
        return before, _blas_threads(), errors
    finally:
        _put_back(before)


def _user_limit_survives_concurrent_fits():
    before = _blas_threads()
    try:
        # Set once by a thread that has ended, as by an initialiser: 3 is neither the default
        # nor the fits' own limit.
        setter = threading.Thread(target=threadpoolctl.threadpool_limits, args=(3, "blas"))
        setter.start()
        setter.join()
        errors = _fits_in_four_threads()
        return len(before), _blas_threads(), errors
    finally:
        _put_back(before)


class _FailingRows(ArrayBackend):
    """Chunks read at 10 ms each; the chunk at row ``fail_at`` cannot be read."""

    def __init__(self, fail_at: int):
        rng = np.random.default_rng(3)
        n = 200 * 50
        X = np.column_stack([np.ones(n), rng.normal(size=(n, 2))])
        super().__init__(X, rng.integers(-1, 2, n), np.ones(n), 2, 50, threads=2)
        self.fail_at, self.reads = fail_at, []

    def read_rows(self, start, stop):
        if start == self.fail_at:
            raise OSError(f"rows {start}:{stop} could not be read")
        time.sleep(0.01)
        self.reads.append(time.perf_counter())
        return super().read_rows(start, stop)


def _failed_run_stops_the_others():
    # The second run fails at its third chunk; the first has a second of reading left.
    be = _FailingRows(fail_at=100 * 50 + 2 * 50)
    t0 = time.perf_counter()
    try:
        be.derivatives(np.zeros((2, 3)))
    except OSError as exc:
        raised, message = time.perf_counter(), str(exc)
    else:
        raise AssertionError("the unreadable chunk raised nothing")
    done = len(be.reads)
    time.sleep(0.05)
    return message, raised - t0, done, len(be.reads), max(be.reads) <= raised


def _check_restored(value):
    before, after, errors = value
    assert errors == [] and after == before, value


def _check_user_limit(value):
    n, after, errors = value
    assert errors == [] and after == [3] * n, value


def _check_stopped(value):
    message, seconds, done, later, before_raise = value
    assert "could not be read" in message
    assert later == done and before_raise, value  # no read once the error reached the caller
    assert seconds < 0.6 and done < 40, value  # not the first run's whole second


CASES = [
    Case(
        "threads-blas-restored-after-concurrent-fits",
        _concurrent_fits_restore_blas,
        Right(_check_restored),
    ),
    Case(
        "threads-user-blas-limit-kept-after-concurrent-fits",
        _user_limit_survives_concurrent_fits,
        Right(_check_user_limit),
    ),
    Case(
        "threads-failed-run-stops-the-other-runs",
        _failed_run_stops_the_others,
        Right(_check_stopped),
    ),
]
