"""Threads under stress: BLAS thread limits from overlapping fits, and interrupted passes.

BLAS thread counts are process-wide, so a limit set by one fit while another thread's fit holds
its own must still leave the count exactly as the user had it once the last fit is done,
whatever the order in which the fits enter and leave (and when they raise).
"""

import random
import threading

import pytest

import multilogit as ml
from multilogit.engine import threads

threadpoolctl = pytest.importorskip("threadpoolctl")


def blas_threads() -> list[int]:
    return [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]


@pytest.fixture(autouse=True)
def _restore_blas():
    """Put BLAS back as found whatever a test does, so one failure does not cascade."""
    before = threadpoolctl.threadpool_info()
    yield
    controller = threadpoolctl.ThreadpoolController()
    for lib, info in zip(controller.lib_controllers, before, strict=False):
        lib.set_num_threads(info["num_threads"])
    # threadpoolctl 3.8 lets only the thread that last set OpenBLAS's count set it again until
    # that thread gives up control: give it up, as threadpoolctl's own contexts do.
    gate = getattr(threadpoolctl, "OpenBLASController", None)
    if hasattr(gate, "clear_controlling_thread"):
        gate.clear_controlling_thread()


def _concurrent_fits(data, n_threads=4, fits=3):
    """``fits`` fits in each of ``n_threads`` threads started together; their errors."""
    barrier = threading.Barrier(n_threads)
    errors = []

    def work():
        try:
            barrier.wait()
            for _ in range(fits):
                ml.mnlogit("prog ~ write + read", data).fit(disp=0)
        except BaseException as exc:  # reported by the test
            errors.append(exc)

    pool = [threading.Thread(target=work) for _ in range(n_threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return errors


# -- BLAS thread limits ----------------------------------------------------------------------


def test_blas_threads_are_restored_after_concurrent_fits(hsbdemo):
    before = blas_threads()
    assert _concurrent_fits(hsbdemo) == []
    assert blas_threads() == before


def _probe_from_a_thread() -> list:
    """BLAS's thread counts as seen by the workers of a pass started from another thread."""
    seen = []

    def probe(k):
        seen.append(blas_threads())
        return k

    t = threading.Thread(target=threads.map_runs, args=(probe, 2))
    t.start()
    t.join()
    return seen


def test_user_limit_held_in_a_context_is_what_concurrent_fits_leave(hsbdemo):
    before = blas_threads()
    # 3 is neither the library default (the cores) nor the fits' own limit (1).  The user's
    # context holds threadpoolctl's control of OpenBLAS in this thread; the fits' workers in
    # other threads must still run BLAS on one thread, and leave it at 3.
    with threadpoolctl.threadpool_limits(limits=3, user_api="blas"):
        assert blas_threads() == [3] * len(before)
        assert _probe_from_a_thread() == [[1] * len(before)] * 2
        assert _concurrent_fits(hsbdemo) == []
        assert blas_threads() == [3] * len(before)
    assert blas_threads() == before


def test_user_limit_set_before_concurrent_fits_is_what_they_leave(hsbdemo):
    before = blas_threads()
    # Set once by a thread that has ended (as by an initialiser): no threadpoolctl context
    # holds it, so the fits do limit BLAS, and must put back 3, not the default.
    setter = threading.Thread(target=threadpoolctl.threadpool_limits, args=(3, "blas"))
    setter.start()
    setter.join()
    assert blas_threads() == [3] * len(before)
    assert _concurrent_fits(hsbdemo) == []
    assert _probe_from_a_thread() == [[1] * len(before)] * 2
    assert blas_threads() == [3] * len(before)


def _schedule(rng: random.Random, n: int) -> list[tuple[str, int]]:
    """A random order of ``n`` enters and ``n`` leaves, each holder leaving after it entered."""
    waiting, inside, out = list(range(n)), [], []
    while waiting or inside:
        options = [("in", k) for k in waiting] + [("out", k) for k in inside]
        step = rng.choice(options)
        (waiting if step[0] == "in" else inside).remove(step[1])
        if step[0] == "in":
            inside.append(step[1])
        out.append(step)
    return out


def _contexts():
    """Every way the package limits BLAS threads, one per holder."""
    return [
        threads.single_threaded_blas,
        lambda: threads.small_dense_blas(40),
        lambda: threads.blas_threads_at_most(1),
    ]


@pytest.mark.parametrize("seed", range(8))
def test_overlapping_blas_limits_from_many_threads_in_any_order(seed):
    """Holders enter and leave in a random interleaving (some raise inside): while any holds
    the limit BLAS is on one thread, and once all have left it is exactly as before."""
    rng = random.Random(seed)
    before = blas_threads()
    n = 6
    enter, entered = [threading.Event() for _ in range(n)], [threading.Event() for _ in range(n)]
    leave, left = [threading.Event() for _ in range(n)], [threading.Event() for _ in range(n)]
    raising = set(rng.sample(range(n), 2))
    kinds = [rng.choice(_contexts()) for _ in range(n)]
    escaped = []

    def holder(k):
        enter[k].wait()
        try:
            with kinds[k]():
                if k % 2:  # nested in the same thread: held until the outer one leaves
                    with threads.single_threaded_blas():
                        pass
                entered[k].set()
                leave[k].wait()
                if k in raising:
                    raise RuntimeError(f"holder {k} fails inside the limit")
        except RuntimeError as exc:
            escaped.append(str(exc))
        finally:
            left[k].set()

    pool = [threading.Thread(target=holder, args=(k,), daemon=True) for k in range(n)]
    for t in pool:
        t.start()
    holding = 0
    try:
        for what, k in _schedule(rng, n):
            if what == "in":
                enter[k].set()
                assert entered[k].wait(10)
                holding += 1
            else:
                leave[k].set()
                assert left[k].wait(10)
                holding -= 1
            expected = [min(1, b) for b in before] if holding else before
            assert blas_threads() == expected, (what, k, holding)
    finally:
        for e in enter + leave:
            e.set()
        for t in pool:
            t.join(10)
    assert len(escaped) == len(raising)
    assert blas_threads() == before


def test_nested_requests_for_different_limits_take_the_smallest():
    before = blas_threads()
    with threadpoolctl.threadpool_limits(limits=3, user_api="blas"):
        outer = threads.blas_threads_at_most(2)
        outer.__enter__()
        assert blas_threads() == [2] * len(before)
        inner = threads.single_threaded_blas()
        inner.__enter__()
        assert blas_threads() == [1] * len(before)
        outer.__exit__(None, None, None)  # left out of order: the smaller limit still holds
        assert blas_threads() == [1] * len(before)
        inner.__exit__(None, None, None)
        assert blas_threads() == [3] * len(before)
    assert blas_threads() == before


def test_blas_limit_is_in_force_inside_the_worker_threads():
    before = blas_threads()
    seen = threads.map_runs(lambda k: blas_threads(), 2)
    assert seen == [[1] * len(before)] * 2
    assert blas_threads() == before


def test_limits_are_restored_when_a_pass_raises():
    before = blas_threads()

    def run(k):
        raise ValueError(f"run {k} failed")

    with pytest.raises(ValueError, match="run 0 failed"):
        threads.map_runs(run, 2)
    assert blas_threads() == before
