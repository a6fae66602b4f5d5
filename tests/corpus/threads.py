"""Threads: BLAS thread limits under concurrent fits."""

from __future__ import annotations

import threading

import threadpoolctl

import multilogit as ml

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


def _check_restored(value):
    before, after, errors = value
    assert errors == [] and after == before, value


def _check_user_limit(value):
    n, after, errors = value
    assert errors == [] and after == [3] * n, value


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
]
