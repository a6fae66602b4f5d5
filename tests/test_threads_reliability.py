"""Threads under stress: BLAS thread limits from overlapping fits, and interrupted passes.

BLAS thread counts are process-wide, so a limit set by one fit while another thread's fit holds
its own must still leave the count exactly as the user had it once the last fit is done,
whatever the order in which the fits enter and leave (and when they raise).  A pass split over
worker threads that is interrupted (Ctrl-C, or an error in one run) must stop its workers at
the next chunk boundary before the exception reaches the caller.
"""

import json
import os
import random
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import multilogit as ml
from multilogit.engine import threads
from multilogit.engine.chunked import ArrayBackend

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


# -- interrupted passes ------------------------------------------------------------------------


class SlowRows(ArrayBackend):
    """Rows read at the pace of a slow disk (``delay`` seconds a chunk); reading the chunk that
    starts at row ``fail_at`` raises ``OSError``, as a vanished file would."""

    def __init__(self, n, chunk_rows, delay, fail_at=None):
        rng = np.random.default_rng(3)
        X = np.column_stack([np.ones(n), rng.normal(size=(n, 2))])
        super().__init__(X, rng.integers(-1, 2, n), np.ones(n), 2, chunk_rows, threads=2)
        self.delay, self.fail_at = delay, fail_at
        self.reads: list[float] = []

    def read_rows(self, start, stop):
        if start == self.fail_at:
            raise OSError(f"rows {start}:{stop} could not be read")
        time.sleep(self.delay)
        self.reads.append(time.perf_counter())
        return super().read_rows(start, stop)


def test_an_error_in_one_run_stops_the_other_runs_at_their_next_chunk():
    # Two runs of 100 chunks of 10 ms: the second fails at its third chunk.  The first must
    # stop at its next chunk (about 30 ms in), not read on for the whole second of its run.
    be = SlowRows(n=200 * 50, chunk_rows=50, delay=0.01, fail_at=100 * 50 + 2 * 50)
    assert len(be._runs) == 2
    t0 = time.perf_counter()
    with pytest.raises(OSError, match="could not be read"):
        be.derivatives(np.zeros((2, 3)))
    raised = time.perf_counter()
    done = len(be.reads)
    time.sleep(0.1)
    assert len(be.reads) == done, "a worker read on after the error reached the caller"
    assert max(be.reads) <= raised
    assert raised - t0 < 0.6, raised - t0  # the whole of the first run takes 1 s
    assert done < 40


def test_when_the_first_run_fails_the_others_stop_before_the_error_returns():
    # The first run fails at its third chunk: the second (a second of reading) must stop at its
    # next chunk, and its worker be free, by the time the error reaches the caller.
    be = SlowRows(n=200 * 50, chunk_rows=50, delay=0.01, fail_at=2 * 50)
    with pytest.raises(OSError, match="could not be read"):
        be.derivatives(np.zeros((2, 3)))
    raised = time.perf_counter()
    done = len(be.reads)
    time.sleep(0.1)
    assert len(be.reads) == done, "a worker read on after the error reached the caller"
    assert max(be.reads) <= raised
    t0 = time.perf_counter()
    assert threads.map_runs(lambda k: k, 2) == [0, 1]
    assert time.perf_counter() - t0 < 0.5


_CTRL_C_CHILD = textwrap.dedent(
    """
    import atexit, json, signal, sys, threading, time
    import numpy as np
    import multilogit as ml
    from multilogit.engine.chunked import ChunkedBackend

    N = int(sys.argv[1])
    lock = threading.Lock()
    state = {"reads": 0, "hessian_reads": 0, "last": 0.0, "signalled": None}
    main = threading.main_thread().ident
    read_code = ChunkedBackend._read.__code__

    def profile(frame, event, arg):
        # Every chunk a worker thread reads from the full data; at the eighth of the first pass
        # for the information, Ctrl-C as a terminal sends it, to the main thread.
        if event != "call" or frame.f_code is not read_code or frame.f_locals["self"].n != N:
            return
        with lock:
            state["reads"] += 1
            state["last"] = time.perf_counter()
            if state["signalled"] is None and frame.f_back.f_locals.get("hessian"):
                state["hessian_reads"] += 1
                if state["hessian_reads"] == 8:
                    state["signalled"] = state["last"]
                    signal.pthread_kill(main, signal.SIGINT)

    # Runs once the interpreter has joined the worker threads: the reads of the whole process.
    atexit.register(lambda: print(json.dumps(dict(state, exit=time.perf_counter())), flush=True))
    threading.setprofile(profile)
    rng = np.random.default_rng(0)
    X = np.column_stack([np.ones(N), rng.standard_normal((N, 19))])
    y = rng.integers(0, 5, N)
    caught = None
    try:
        ml.MultinomialLogit(y, X).fit(hessian="exact")
    except KeyboardInterrupt:
        caught = time.perf_counter()
    with lock:
        at_catch = state["reads"]
    t0 = time.perf_counter()
    ml.mnlogit("prog ~ write + read", ml.datasets.load("hsbdemo")).fit(disp=0)
    second = time.perf_counter() - t0
    print(json.dumps(dict(caught=caught, at_catch=at_catch, second=second)), flush=True)
    """
)


@pytest.mark.slow
def test_ctrl_c_during_a_fit_stops_the_workers_before_it_returns():
    root = os.path.dirname(os.path.dirname(os.path.abspath(ml.__file__)))
    env = dict(os.environ, PYTHONPATH=root, MULTILOGIT_NUM_THREADS="2")
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", _CTRL_C_CHILD, "200000"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    elapsed = time.perf_counter() - t0
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    got = json.loads(lines[-2]) | json.loads(lines[-1])
    assert got["signalled"] is not None and got["caught"] is not None, got
    # Not one chunk is read, up to the process's exit, once the KeyboardInterrupt has reached
    # the caller: the workers stopped at their next chunk boundary and were waited for.  (They
    # used to read on to the end of their runs, with BLAS back on all cores in each of them.)
    assert got["reads"] == got["at_catch"], got
    assert got["last"] <= got["caught"], got
    assert got["caught"] - got["signalled"] < 5.0, got  # one chunk: milliseconds
    assert got["second"] < 20.0, got
    assert got["exit"] - got["caught"] < 20.0, got
    assert elapsed < 60.0


_FIRST_LIMIT_CHILD = textwrap.dedent(
    """
    import json, sys
    import threadpoolctl
    import multilogit
    from multilogit.engine import threads

    def blas():
        info = threadpoolctl.threadpool_info()
        return [i["num_threads"] for i in info if i["user_api"] == "blas"]

    scipy_before = "scipy.linalg" in sys.modules
    with threads.single_threaded_blas():
        import scipy.linalg  # SciPy's own OpenBLAS, loaded after multilogit

        inside = blas()
    after = blas()
    print(json.dumps(dict(scipy_before=scipy_before, inside=inside, after=after)))
    """
)


def test_first_blas_limit_also_holds_scipys_blas_imported_after_multilogit():
    # scipy.linalg is imported at its first use, not with multilogit; a limiter that listed
    # the BLAS libraries before it was loaded left SciPy's (its own OpenBLAS) on every core
    # for the whole session, and each small factorisation of a fit waited on a busy core.
    root = os.path.dirname(os.path.dirname(os.path.abspath(ml.__file__)))
    # Two threads by default, so that a library left out is seen even on one core.
    env = dict(os.environ, PYTHONPATH=root, OPENBLAS_NUM_THREADS="2")
    out = subprocess.run(
        [sys.executable, "-c", _FIRST_LIMIT_CHILD], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert not got["scipy_before"]
    assert got["inside"] and got["inside"] == [1] * len(got["after"]), got
    assert got["after"] == [2] * len(got["after"]), got
