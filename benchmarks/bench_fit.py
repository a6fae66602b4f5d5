"""Time and size multilogit's fit against statsmodels, scikit-learn and a BLAS floor.

Usage::

    python benchmarks/bench_fit.py                    # everything (5 to 10 minutes, 2 cores)
    python benchmarks/bench_fit.py --quick            # small sizes only: checks the script
    python benchmarks/bench_fit.py --only inference   # one part: fit, inference, startup

Every fit runs in its own freshly spawned process that builds the data from a fixed seed,
warms up on a small fit (imports, Numba kernels loaded from the cache), then times the fit and
records its peak resident memory above what the process held before it.  multilogit's child
also reports the passes over the rows of its fit and compares it with the exact Newton fit.
The steps after a fit (robust and cluster covariances, marginal effects, predictions) are timed
in one more child against one exact information pass; the import and the first fit in fresh
interpreters.  The parent process never builds the data, so it holds nothing that would
distort the children.  See ``benchmarks/README.md`` for what is measured and how to read the
output.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import gc
import importlib.metadata
import importlib.util
import json
import math
import multiprocessing
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SEED = 20240607
SHAPES = (
    (10_000, 10, 3),
    (100_000, 20, 5),
    (300_000, 20, 5),
    (1_000_000, 20, 5),
    (200_000, 10, 30),
)
QUICK_SHAPES = ((10_000, 10, 3),)
#: Rows of the inference timings (covariances, margins, predictions), with p = 20, K = 5.
INFERENCE_ROWS = 1_000_000
QUICK_INFERENCE_ROWS = 20_000
INFERENCE_P, INFERENCE_K = 20, 5
#: Clusters of the cluster-robust covariance: row ``i`` is in group ``i % CLUSTER_GROUPS``.
CLUSTER_GROUPS = 1000
#: Fresh ``python -c "import ..."`` processes behind each import time (the median).
IMPORT_RUNS = 5
#: What ``import multilogit`` needs: its floor.  scipy.linalg is not among them; a first fit
#: imports it (so does Numba when it first loads a kernel).
IMPORT_BASELINE = "numpy, pandas, numba"
#: Default per-tool time budget of the repeats (``--max-seconds``): a tool whose one fit takes
#: more than half of it is timed once (statsmodels at 1e6,20,5 and 2e5,10,30).
MAX_SECONDS = 15.0
#: Parts of a run, for ``--only``.
PARTS = ("fit", "inference", "startup")
RESULTS_DIR = Path(__file__).resolve().parent / "results"
MB = 1e6
#: The log-likelihood of multilogit must agree with statsmodels' to this relative difference.
LLF_RTOL = 1e-8
#: Repeats of the SYRK floor; its time is the minimum, not the median.
FLOOR_REPEATS = 5
#: Rows per block when generating data or evaluating a log-likelihood (bounds temporaries).
BLOCK_ROWS = 65_536
SKLEARN_TOL = 1e-8
SKLEARN_MAX_ITER = {"newton-cholesky": 100, "lbfgs": 10_000}
STATSMODELS_MAXITER = 100
#: Rows of multilogit's warm-up fit (see ``_warmup_rows``).
MULTILOGIT_WARMUP_ROWS = 50_000


# -- data ----------------------------------------------------------------------------------------


def make_data(n: int, p: int, k: int, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic multinomial-logit data, identical in every process for the same arguments.

    Parameters
    ----------
    n, p, k : int
        Rows, columns (including the constant) and outcomes.
    seed : int
        Seed of the generator.

    Returns
    -------
    X : ndarray, shape (n, p)
        Float64, C-contiguous; ``X[:, 0] == 1`` and the other columns are standard normal.
    y : ndarray of int64, shape (n,)
        Outcome codes ``0 .. k-1`` drawn from the softmax probabilities; code 0 is the
        reference (its coefficients are zero).

    Notes
    -----
    The true coefficients are normal with scale ``0.5 / sqrt(p)``, so each linear predictor
    has a standard deviation of about 0.5: the probabilities stay away from 0 and 1 and all
    ``k`` outcomes occur with similar frequency, also for ``k = 30``.  The coefficients are
    drawn first, so they depend on ``(p, k)`` and the seed only.
    """
    rng = np.random.default_rng(seed)
    beta = rng.normal(scale=0.5 / math.sqrt(p), size=(p, k))
    beta[:, 0] = 0.0
    X = rng.standard_normal((n, p))
    X[:, 0] = 1.0
    u = rng.random(n)
    y = np.empty(n, dtype=np.int64)
    for start in range(0, n, BLOCK_ROWS):
        rows = slice(start, start + BLOCK_ROWS)
        eta = X[rows] @ beta
        eta -= eta.max(axis=1, keepdims=True)
        np.exp(eta, out=eta)
        cum = np.cumsum(eta, axis=1)
        draw = u[rows, None] * cum[:, -1:]
        y[rows] = np.minimum((draw > cum).sum(axis=1), k - 1)
    return X, y


def softmax_loglike(X: np.ndarray, y: np.ndarray, coef: np.ndarray) -> float:
    """Log-likelihood of coefficients in scikit-learn's layout.

    Parameters
    ----------
    X : ndarray, shape (n, p)
    y : ndarray of int, shape (n,)
        Outcome codes ``0 .. k-1``.
    coef : ndarray, shape (k, p) or (1, p)
        One row per outcome (symmetric parametrisation), or a single row for a binary model
        (the logit of outcome 1 against outcome 0).
    """
    from scipy.special import logsumexp

    total = 0.0
    for start in range(0, X.shape[0], BLOCK_ROWS):
        rows = slice(start, start + BLOCK_ROWS)
        eta = X[rows] @ coef.T
        if coef.shape[0] == 1:
            eta = np.column_stack([np.zeros(eta.shape[0]), eta[:, 0]])
        picked = np.take_along_axis(eta, y[rows, None], axis=1)[:, 0]
        total += float(np.sum(picked - logsumexp(eta, axis=1)))
    return total


# -- memory --------------------------------------------------------------------------------------


def _proc_status_bytes(field: str) -> int:
    """A ``kB`` field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``) in bytes."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise OSError(f"{field} not in /proc/self/status")


def reset_peak_rss() -> int:
    """Reset the peak-RSS counter of this process; return the current RSS in bytes.

    Writing ``5`` to ``/proc/self/clear_refs`` sets ``VmHWM`` back to the current RSS (Linux).
    Raises ``OSError`` where that is not possible.
    """
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    return _proc_status_bytes("VmRSS")


def peak_rss() -> int:
    """Peak RSS (``VmHWM``) of this process in bytes since the last reset."""
    return _proc_status_bytes("VmHWM")


# -- tools ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tool:
    """A fitting routine under test.

    Attributes
    ----------
    name : str
        Name used by ``--tools`` and in the JSON.
    label : str
        Name in the printed table.
    fit : callable
        ``fit(X, y) -> result``: everything that is timed.
    describe : callable
        ``describe(result, X, y) -> dict`` with ``n_iter``, ``converged`` and ``llf``; not
        timed.
    with_se : bool
        Whether the timed fit includes standard errors.
    extra : callable, optional
        ``extra(X, y, info) -> dict``: more untimed measurements, run after the timed repeats
        with ``info`` the dict ``describe`` returned (its keys starting with ``_`` are for
        ``extra`` only and are not reported).
    """

    name: str
    label: str
    fit: Callable
    describe: Callable
    with_se: bool
    extra: Callable | None = None


def _fit_multilogit(X, y):
    import multilogit

    res = multilogit.MultinomialLogit(y, X).fit()
    res.bse  # noqa: B018 -- standard errors are part of the timed work
    return res


#: Where multilogit's results keep the iteration log (the first attribute found is used).
ITERATION_LOG_ATTRS = ("iteration_log", "fit_history")


def fit_passes(res) -> int | None:
    """Full passes over the rows of a multilogit fit: the last ``passes`` of its iteration log.

    ``None`` if the results have no iteration log with a ``passes`` column.
    """
    for attr in ITERATION_LOG_ATTRS:
        log = getattr(res, attr, None)
        if log is not None and "passes" in getattr(log, "columns", ()):
            return int(np.max(log["passes"])) if len(log) else 0
    return None


def _describe_multilogit(res, X, y) -> dict:
    return {
        "n_iter": int(res.n_iter),
        "converged": bool(res.converged),
        "llf": float(res.llf),
        "passes": fit_passes(res),
        "_params": np.asarray(res.params, dtype=np.float64),
        "_bse": np.asarray(res.bse, dtype=np.float64),
    }


def max_rel_diff(a: np.ndarray, b: np.ndarray) -> float:
    """``max |a - b| / max |b|``: the largest difference relative to the largest entry of b."""
    scale = float(np.max(np.abs(b)))
    diff = float(np.max(np.abs(a - b)))
    return diff / scale if scale > 0 else diff


def _exact_multilogit(X, y, info: dict) -> dict:
    """Fit again with the exact information at every iteration (untimed) and compare.

    The default fit may take its early Newton steps with a subsampled information; the
    estimates must still be the same maximum.  Reported: ``max |a - b| / max |b|`` of
    ``params`` and of ``bse`` (``b`` the exact fit), its iterations, passes and seconds.
    """
    import multilogit

    params, bse = info.pop("_params"), info.pop("_bse")
    t0 = time.perf_counter()
    exact = multilogit.MultinomialLogit(y, X).fit(hessian="exact")
    exact_bse = np.asarray(exact.bse, dtype=np.float64)
    seconds = time.perf_counter() - t0
    exact_params = np.asarray(exact.params, dtype=np.float64)
    return {
        "exact": {
            "params_rel_diff": max_rel_diff(params, exact_params),
            "bse_rel_diff": max_rel_diff(bse, exact_bse),
            "n_iter": int(exact.n_iter),
            "converged": bool(exact.converged),
            "passes": fit_passes(exact),
            "seconds": seconds,
        }
    }


def _fit_statsmodels(X, y):
    import statsmodels.api as sm

    res = sm.MNLogit(y, X).fit(method="newton", maxiter=STATSMODELS_MAXITER, disp=0)
    res.bse  # noqa: B018 -- standard errors are part of the timed work
    return res


def _describe_statsmodels(res, X, y) -> dict:
    retvals = res.mle_retvals
    return {
        "n_iter": int(retvals["iterations"]),
        "converged": bool(retvals["converged"]),
        "llf": float(res.llf),
    }


def _version_tuple(version: str) -> tuple[int, ...]:
    """Leading numeric parts of a version string: ``"1.10.dev0"`` -> ``(1, 10)``."""
    match = re.match(r"\d+(?:\.\d+)*", version)
    return tuple(int(part) for part in match.group().split(".")) if match else ()


def sklearn_unpenalized_kwargs() -> dict:
    """Keyword arguments that switch off the penalty of ``LogisticRegression``.

    scikit-learn 1.8 deprecated ``penalty`` in favour of ``C=np.inf``; older versions want
    ``penalty=None``.  Either way no warning is raised.
    """
    import sklearn

    if _version_tuple(sklearn.__version__) >= (1, 8):
        return {"C": np.inf}
    return {"penalty": None}


def sklearn_multinomial_newton_ok() -> bool:
    """Whether ``solver="newton-cholesky"`` fits the multinomial model (scikit-learn >= 1.6).

    Before 1.6 it fitted one-vs-rest for more than two classes, a different model.  Read from
    the package metadata, so the parent process need not import scikit-learn.
    """
    try:
        version = importlib.metadata.version("scikit-learn")
    except importlib.metadata.PackageNotFoundError:
        return True  # the child reports the missing package
    return _version_tuple(version) >= (1, 6)


def _fit_sklearn(solver: str):
    def fit(X, y):
        from sklearn.linear_model import LogisticRegression

        est = LogisticRegression(
            solver=solver,
            tol=SKLEARN_TOL,
            max_iter=SKLEARN_MAX_ITER[solver],
            fit_intercept=False,
            **sklearn_unpenalized_kwargs(),
        )
        return est.fit(X, y)

    return fit


def _describe_sklearn(solver: str):
    def describe(est, X, y) -> dict:
        n_iter = int(np.max(est.n_iter_))
        return {
            "n_iter": n_iter,
            "converged": n_iter < SKLEARN_MAX_ITER[solver],
            "llf": softmax_loglike(X, y, est.coef_),
        }

    return describe


TOOLS = {
    tool.name: tool
    for tool in (
        Tool(
            "multilogit",
            "multilogit",
            _fit_multilogit,
            _describe_multilogit,
            True,
            _exact_multilogit,
        ),
        Tool("statsmodels", "statsmodels", _fit_statsmodels, _describe_statsmodels, True),
        Tool(
            "sklearn-newton",
            "sklearn newton-chol*",
            _fit_sklearn("newton-cholesky"),
            _describe_sklearn("newton-cholesky"),
            False,
        ),
        Tool(
            "sklearn-lbfgs",
            "sklearn lbfgs*",
            _fit_sklearn("lbfgs"),
            _describe_sklearn("lbfgs"),
            False,
        ),
    )
}
FLOOR = "floor"
ALL_TOOLS = (*TOOLS, FLOOR)


# -- child processes -----------------------------------------------------------------------------


def _warmup_rows(tool: str, n: int, p: int, k: int) -> int:
    """Rows of the untimed warm-up fit.

    Small, but enough for every outcome to be estimated.  multilogit's warm-up spans several
    of its row chunks: a fit on a single chunk does not load every Numba specialisation the
    timed fit needs, and the first timed fit would pay for the rest.
    """
    rows = max(2_000, 20 * p * k)
    if tool == "multilogit":
        rows = max(rows, MULTILOGIT_WARMUP_ROWS)
    return min(n, rows)


def _unique_warnings(caught) -> list[str]:
    """Distinct ``Category: message`` strings of recorded warnings, in order of appearance."""
    seen = []
    for w in caught:
        text = f"{w.category.__name__}: {str(w.message).strip()[:300]}"
        if text not in seen:
            seen.append(text)
    return seen


def time_repeats(
    fn: Callable,
    repeats: int,
    max_seconds: float,
    memory: bool,
    on_first: Callable | None = None,
) -> dict:
    """Time ``fn()`` up to ``repeats`` times; the peak memory of the first call.

    Before each call the garbage is collected.  No further call starts once the seconds spent
    plus one more call would pass ``max_seconds``.  With ``memory``, the peak-RSS counter is
    reset just before the first call and read just after it.  ``on_first(result)`` runs on the
    first call's result (untimed); every result is dropped before the next call.

    Returns
    -------
    dict
        ``times``, ``median``, ``repeats``, ``budget_stop``, ``peak_bytes`` (``None`` without
        a memory reading) and ``memory_error``.
    """
    out = {"peak_bytes": None, "memory_error": None}
    times: list[float] = []
    budget_stop = False
    for rep in range(repeats):
        gc.collect()
        rss_before = None
        if rep == 0 and memory:
            try:
                rss_before = reset_peak_rss()
            except OSError as exc:
                out["memory_error"] = repr(exc)
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
        if rss_before is not None:
            out["peak_bytes"] = max(peak_rss() - rss_before, 0)
        if rep == 0 and on_first is not None:
            on_first(result)
        del result
        if rep + 1 < repeats and sum(times) + times[-1] > max_seconds:
            budget_stop = True
            break
    out.update(
        times=times,
        median=statistics.median(times),
        repeats=len(times),
        budget_stop=budget_stop,
    )
    return out


def time_tool(task: dict) -> dict:
    """Run one tool on one shape; meant to run in a fresh process.

    Parameters
    ----------
    task : dict
        ``tool``, ``shape`` ``(n, p, k)``, ``seed``, ``repeats``, ``max_seconds`` and
        ``memory`` (bool).

    Returns
    -------
    dict
        ``times`` (seconds of each repeat), ``median``, ``repeats``, ``budget_stop``,
        ``n_iter``, ``converged``, ``llf``, ``peak_bytes`` (peak RSS of the first timed fit
        above the RSS just before it; ``None`` without memory), ``x_bytes``, ``warnings``
        (raised during the timed fits) and whatever the tool's ``extra`` adds (for
        multilogit: ``passes`` and ``exact``, the comparison with the exact Newton fit).
    """
    n, p, k = task["shape"]
    tool = TOOLS[task["tool"]]
    X, y = make_data(n, p, k, task["seed"])
    Xw, yw = make_data(_warmup_rows(task["tool"], n, p, k), p, k, task["seed"] + 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tool.fit(Xw, yw)  # imports and Numba cache loads, not timed
    del Xw, yw
    info: dict = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = time_repeats(
            lambda: tool.fit(X, y),
            task["repeats"],
            task["max_seconds"],
            task["memory"],
            on_first=lambda res: info.update(tool.describe(res, X, y)),
        )
    out["warnings"] = _unique_warnings(caught)
    if tool.extra is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                info.update(tool.extra(X, y, info))
            except Exception as exc:  # noqa: BLE001 -- report it, keep the timings
                info["extra_error"] = f"{type(exc).__name__}: {exc}"
    out.update({key: value for key, value in info.items() if not key.startswith("_")})
    out["x_bytes"] = int(X.nbytes)
    return out


def time_floor(task: dict) -> dict:
    """Time one BLAS SYRK of an ``n x (k-1) p`` float64 matrix (the floor); fresh process.

    ``dsyrk`` gets the Fortran-ordered ``(q, n)`` view of a C-contiguous ``(n, q)`` array, so
    nothing is copied inside the timed call.  The time reported is the minimum of
    ``FLOOR_REPEATS`` calls after one untimed call.
    """
    from scipy.linalg.blas import dsyrk

    n, p, k = task["shape"]
    q = (k - 1) * p
    A = np.random.default_rng(task["seed"]).random((n, q))
    dsyrk(1.0, A.T, trans=0)
    times = []
    for _ in range(FLOOR_REPEATS):
        t0 = time.perf_counter()
        dsyrk(1.0, A.T, trans=0)
        times.append(time.perf_counter() - t0)
    flops = float(n) * q * (q + 1)
    best = min(times)
    return {
        "times": times,
        "median": best,
        "statistic": "min",
        "repeats": len(times),
        "q": q,
        "flops": flops,
        "gflops_per_s": flops / best / 1e9,
        "warnings": [],
    }


# -- inference: covariances, margins and predictions after a fit -------------------------------


def information_pass(res) -> tuple[Callable | None, str]:
    """A call computing one exact information matrix at the estimates, as the fit does.

    The fit reads every row through its model's backend (``res.model.backend``) and gets the
    exact information from ``derivatives(beta, hessian=True)``: one pass over the rows that
    also yields the log-likelihood and score.  If the backend is not there, the model's
    statsmodels-style ``hessian(params)`` (the same pass, negated); if neither, ``None``.

    Returns
    -------
    call : callable or None
    how : str
        What ``call`` runs, or why there is none.
    """
    model = res.model
    beta = np.ascontiguousarray(np.asarray(res.params, dtype=np.float64).T)  # (J, p)
    backend = getattr(model, "backend", None)
    if backend is not None and callable(getattr(backend, "derivatives", None)):
        return (
            lambda: backend.derivatives(beta, hessian=True),
            "res.model.backend.derivatives(beta, hessian=True)",
        )
    if callable(getattr(model, "hessian", None)):
        flat = beta.ravel()
        return lambda: model.hessian(flat), "res.model.hessian(params)"
    return None, "no res.model.backend.derivatives nor res.model.hessian: cannot time it"


def inference_operations(res, groups) -> list[tuple[str, str, Callable, bool]]:
    """The timed steps after a fit: ``(name, what is timed, call, minus_fit)``.

    ``minus_fit``: the call refits (the results cannot give another covariance without), so
    its time less the default fit's is the covariance step.
    """
    ops = []
    for cov_type, kwds in (("HC0", {}), ("HC1", {}), ("cluster", {"groups": groups})):
        if callable(getattr(res, "get_robustcov_results", None)):

            def call(cov_type=cov_type, kwds=kwds):
                return res.get_robustcov_results(cov_type, **kwds).bse

            what = f'res.get_robustcov_results("{cov_type}"{", groups=g" if kwds else ""}).bse'
            ops.append((cov_type, what, call, False))
        else:

            def call(cov_type=cov_type, kwds=kwds):
                return res.model.fit(cov_type=cov_type, cov_kwds=kwds).bse

            kw = ', cov_kwds={"groups": g}' if kwds else ""
            what = f'res.model.fit(cov_type="{cov_type}"{kw}).bse minus the default fit'
            ops.append((cov_type, what, call, True))
    ops.append(
        (
            "margeff",
            "res.get_margeff().summary_frame()",
            lambda: res.get_margeff().summary_frame(),
            False,
        )
    )
    ops.append(
        (
            "prediction",
            "res.get_prediction().summary_frame()",
            lambda: res.get_prediction().summary_frame(),
            False,
        )
    )
    return ops


def _nbytes(obj) -> int | None:
    """Bytes of a returned DataFrame (index and object values included), else ``None``."""
    usage = getattr(obj, "memory_usage", None)
    if usage is None:
        return None
    try:
        return int(usage(index=True, deep=True).sum())
    except Exception:  # noqa: BLE001 -- a size for context only
        return None


def time_inference(task: dict) -> dict:
    """Time the default fit, one exact information pass, the robust and cluster covariances,
    the average marginal effects and the predictions on ``(rows, 20, 5)``; fresh process.

    Everything runs once untimed on 5e4 rows first (imports, Numba cache loads).  Each step
    is then timed as in :func:`time_repeats`, peak memory above the RSS before it included.
    Clusters: row ``i`` is in group ``i % CLUSTER_GROUPS``.
    """
    import multilogit

    n, p, k = task["rows"], INFERENCE_P, INFERENCE_K
    X, y = make_data(n, p, k, task["seed"])
    groups = np.arange(n) % CLUSTER_GROUPS
    nw = min(n, MULTILOGIT_WARMUP_ROWS)
    Xw, yw = make_data(nw, p, k, task["seed"] + 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res_w = multilogit.MultinomialLogit(yw, Xw).fit()
        res_w.bse  # noqa: B018
        warm = [op for _, _, op, _ in inference_operations(res_w, np.arange(nw) % CLUSTER_GROUPS)]
        call, _ = information_pass(res_w)
        for op in warm if call is None else [call, *warm]:
            try:
                op()
            except Exception:  # noqa: BLE001, S110 -- the timed call reports it
                pass
    del res_w, Xw, yw
    repeats, budget, memory = task["repeats"], task["max_seconds"], task["memory"]
    held: dict = {}

    def fit():
        res = multilogit.MultinomialLogit(y, X).fit()
        res.bse  # noqa: B018 -- standard errors are part of the timed work
        return res

    steps: dict = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        steps["fit"] = {
            "what": "multilogit.MultinomialLogit(y, X).fit() and .bse",
            **time_repeats(fit, repeats, budget, memory, on_first=lambda r: held.update(res=r)),
        }
        res = held.pop("res")
        call, how = information_pass(res)
        if call is None:
            steps["info"] = {"what": how, "error": how}
        else:
            try:
                call()  # work buffers are rebuilt after the fit released them: not timed
                steps["info"] = {"what": how, **time_repeats(call, repeats, budget, memory)}
            except Exception as exc:  # noqa: BLE001 -- the steps are still timed
                steps["info"] = {"what": how, "error": f"{type(exc).__name__}: {exc}"}
        for name, what, op, minus_fit in inference_operations(res, groups):
            sizes: dict = {}
            try:
                row = time_repeats(
                    op,
                    repeats,
                    budget,
                    memory,
                    on_first=lambda out, sizes=sizes: sizes.update(output_bytes=_nbytes(out)),
                )
            except Exception as exc:  # noqa: BLE001 -- one failing step must not end the rest
                steps[name] = {"what": what, "error": f"{type(exc).__name__}: {exc}"}
                continue
            if minus_fit:
                row["median_with_fit"] = row["median"]
                row["median"] = row["median"] - steps["fit"]["median"]
            steps[name] = {"what": what, "minus_fit": minus_fit, **row, **sizes}
    return {
        "shape": [n, p, k],
        "x_bytes": int(X.nbytes),
        "cluster_groups": CLUSTER_GROUPS,
        "steps": steps,
        "warnings": _unique_warnings(caught),
    }


def _child_entry(task: dict) -> dict:
    if task.get("kind") == "inference":
        return time_inference(task)
    if task["tool"] == FLOOR:
        return time_floor(task)
    return time_tool(task)


def run_in_fresh_process(func: Callable, *args):
    """Call ``func(*args)`` in a newly spawned process and return its result.

    Raises the child's exception, or ``BrokenProcessPool`` if the child died (e.g. killed
    for lack of memory).
    """
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        return pool.submit(func, *args).result()


def run_task(task: dict) -> dict:
    """Run a tool in a fresh process; an error becomes ``{"error": ...}`` instead of raising."""
    try:
        return run_in_fresh_process(_child_entry, task)
    except Exception as exc:  # noqa: BLE001 -- one failing tool must not end the benchmark
        return {"error": f"{type(exc).__name__}: {exc}"}


# -- import time ---------------------------------------------------------------------------------

IMPORT_CODE = """
import time
t0 = time.perf_counter()
import {modules}
print(time.perf_counter() - t0)
"""


def fresh_env(**extra: str) -> dict:
    """The environment of the fresh interpreters: this one's, with bytecode writing allowed.

    An installed package comes with its bytecode (pip compiles it; the dependencies here have
    theirs).  Under ``PYTHONDONTWRITEBYTECODE`` the untimed first run could not write
    multilogit's, and every timed interpreter would compile all its modules from source
    (about 0.08 s here), a cost no installed copy has.
    """
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    return {**env, **extra}


def _import_once(modules: str) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", IMPORT_CODE.format(modules=modules)],
        env=fresh_env(),
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"import of {modules} failed:\n{proc.stderr.strip()[-2000:]}")
    return {"import_s": float(proc.stdout.strip().splitlines()[-1]), "process_s": wall}


def import_times(modules: str, runs: int) -> dict:
    """Seconds of ``import <modules>`` in ``runs`` fresh interpreters, after one untimed run.

    The untimed run writes any missing bytecode (see :func:`fresh_env`) and warms the file
    cache.  ``import_s`` is timed inside the interpreter around the import statement alone;
    ``process_s`` is the whole ``python -c`` run seen from outside (interpreter start-up and
    exit included).

    Returns
    -------
    dict
        ``modules``, ``runs``, the medians ``import_s`` and ``process_s``, and ``rows``.
    """
    _import_once(modules)
    rows = [_import_once(modules) for _ in range(runs)]
    return {
        "modules": modules,
        "runs": runs,
        "import_s": statistics.median(row["import_s"] for row in rows),
        "process_s": statistics.median(row["process_s"] for row in rows),
        "rows": rows,
    }


# -- cold start ----------------------------------------------------------------------------------

COLD_START_CODE = """
import json, time
t0 = time.perf_counter()
import multilogit
t1 = time.perf_counter()
df = multilogit.datasets.load("hsbdemo")
t2 = time.perf_counter()
multilogit.mnlogit("prog ~ C(ses) + write", df, ref="academic").fit()
t3 = time.perf_counter()
multilogit.mnlogit("prog ~ C(ses) + write", df, ref="academic").fit()
t4 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "first_fit_s": t3 - t2, "warm_fit_s": t4 - t3}))
"""


def _cold_start_once(cache_dir: str) -> dict:
    """One fresh interpreter: import, first fit, second fit, with ``NUMBA_CACHE_DIR`` set."""
    env = fresh_env(NUMBA_CACHE_DIR=cache_dir)
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", COLD_START_CODE], env=env, capture_output=True, text=True
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"cold-start child failed:\n{proc.stderr.strip()[-2000:]}")
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    row["first_minus_warm_s"] = row["first_fit_s"] - row["warm_fit_s"]
    # What a session pays once, wherever it falls: deferring an import from the import
    # statement to the first fit moves time between the two goals without lowering this.
    row["startup_s"] = row["import_s"] + row["first_minus_warm_s"]
    row["process_s"] = wall
    return row


def _median_rows(rows: list[dict]) -> dict:
    keys = ("import_s", "first_fit_s", "warm_fit_s", "first_minus_warm_s", "startup_s")
    keys += ("process_s",)
    return {key: statistics.median(row[key] for row in rows) for key in keys}


def cold_start(warm_runs: int) -> dict:
    """Time ``import multilogit`` and the first fits in fresh interpreters.

    The first run uses an empty Numba cache (a new temporary ``NUMBA_CACHE_DIR``), so every
    kernel is compiled; it fills the cache, and the next ``warm_runs`` runs load from it.

    Returns
    -------
    dict
        ``empty`` and ``warm``: medians of ``import_s``, ``first_fit_s``, ``warm_fit_s``,
        ``first_minus_warm_s``, ``startup_s`` (``import_s + first_minus_warm_s``, per run)
        and ``process_s`` (the whole interpreter, as seen from outside), plus ``runs`` and
        the raw rows.
    """
    with tempfile.TemporaryDirectory(prefix="multilogit-numba-cache-") as cache_dir:
        empty = [_cold_start_once(cache_dir)]
        warm = [_cold_start_once(cache_dir) for _ in range(warm_runs)]
    return {
        "fit": 'multilogit.mnlogit("prog ~ C(ses) + write", hsbdemo, ref="academic").fit()',
        "empty": {**_median_rows(empty), "runs": len(empty), "rows": empty},
        "warm": {**_median_rows(warm), "runs": len(warm), "rows": warm},
    }


# -- machine -------------------------------------------------------------------------------------


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _mem_total_bytes() -> int | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _versions() -> dict:
    names = ("multilogit", "numpy", "scipy", "pandas", "statsmodels", "scikit-learn", "numba")
    out = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def _multilogit_source() -> dict:
    """Where multilogit is imported from, and its git commit if it is a checkout."""
    spec = importlib.util.find_spec("multilogit")
    if spec is None or spec.origin is None:
        return {"path": None}
    path = Path(spec.origin).resolve().parent
    out = {"path": str(path), "git_commit": None, "git_dirty": None}
    try:
        commit = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True
        )
        if commit.returncode == 0:
            out["git_commit"] = commit.stdout.strip()
            status = subprocess.run(
                ["git", "-C", str(path), "status", "--porcelain", "--", "."],
                capture_output=True,
                text=True,
            )
            out["git_dirty"] = bool(status.stdout.strip())
    except OSError:
        pass
    return out


def blas_info() -> list[dict] | None:
    """threadpoolctl's view of the BLAS and OpenMP libraries the tools load (fresh process)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    import scipy.linalg  # noqa: F401

    import multilogit  # noqa: F401

    try:
        import sklearn.linear_model  # noqa: F401
    except ImportError:
        pass
    keep = ("user_api", "internal_api", "num_threads", "version", "threading_layer", "filepath")
    return [{key: lib.get(key) for key in keep} for lib in threadpool_info()]


def machine_info() -> dict:
    """CPU, memory, versions, thread settings and BLAS of this machine."""
    thread_vars = (
        "OMP_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "MKL_NUM_THREADS",
        "NUMBA_NUM_THREADS",
        "NUMBA_CACHE_DIR",
    )
    try:
        blas = run_in_fresh_process(blas_info)
    except Exception as exc:  # noqa: BLE001 -- machine info is best effort
        blas = f"unavailable: {type(exc).__name__}: {exc}"
    return {
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "mem_total_bytes": _mem_total_bytes(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": _versions(),
        "multilogit_source": _multilogit_source(),
        "env": {var: os.environ.get(var) for var in thread_vars if var in os.environ},
        "blas": blas,
    }


# -- analysis ------------------------------------------------------------------------------------


def shape_key(shape) -> str:
    """Compact label of a shape: ``(1000000, 20, 5)`` -> ``"1e6,20,5"``."""
    n, p, k = shape
    exp = int(math.floor(math.log10(n))) if n > 0 else 0
    mant = n / 10**exp
    text = f"{mant:g}e{exp}" if exp >= 3 and mant == int(mant) else str(n)
    return f"{text},{p},{k}"


def rel_diff(a: float | None, b: float | None) -> float | None:
    """``|a - b| / |b|``, or None if either is missing."""
    if a is None or b is None or not (math.isfinite(a) and math.isfinite(b)) or b == 0:
        return None
    return abs(a - b) / abs(b)


def analyse_shape(entry: dict) -> None:
    """Add ratios, log-likelihood differences and memory shares to one shape's results."""
    tools = entry["tools"]
    ok = {name: res for name, res in tools.items() if "error" not in res}
    ml = ok.get("multilogit")
    sm = ok.get("statsmodels")
    ref_name = "statsmodels" if sm else ("multilogit" if ml else None)
    entry["llf_reference"] = ref_name
    ref_llf = ok[ref_name]["llf"] if ref_name else None
    for name, res in ok.items():
        if name == FLOOR:
            res["ratio"] = ml["median"] / res["median"] if ml else None
            continue
        res["ratio"] = res["median"] / ml["median"] if ml and name != "multilogit" else None
        res["llf_rel_diff"] = None if name == ref_name else rel_diff(res["llf"], ref_llf)
        peak = res.get("peak_bytes")
        res["peak_frac_x"] = peak / res["x_bytes"] if peak is not None else None
        sm_peak = sm.get("peak_bytes") if sm else None
        res["mem_vs_statsmodels"] = peak / sm_peak if peak is not None and sm_peak else None
    entry["llf_check"] = None
    if ml and sm:
        diff = rel_diff(ml["llf"], sm["llf"])
        entry["llf_check"] = {"rel_diff": diff, "ok": diff is not None and diff <= LLF_RTOL}


@dataclass(frozen=True)
class Target:
    """A performance target: ``value(results) op limit``."""

    label: str
    op: str
    limit: float
    value: Callable


def _tool_value(shape, tool, field):
    def get(results):
        entry = results["shapes"].get(shape_key(shape))
        res = entry["tools"].get(tool) if entry else None
        return None if res is None or "error" in res else res.get(field)

    return get


def _cold_start_value(results):
    cold = results.get("cold_start")
    return cold["warm"]["first_minus_warm_s"] if cold else None


def _import_value(results):
    imports = results.get("imports")
    row = imports.get("multilogit") if imports else None
    return row["import_s"] if row else None


def _exact_value(field):
    """The largest ``field`` of the comparison with the exact Newton fit over the shapes run."""

    def get(results):
        values = [
            entry["tools"]["multilogit"]["exact"][field]
            for entry in results["shapes"].values()
            if "exact" in entry["tools"].get("multilogit", {})
        ]
        return max(values) if values else None

    return get


def _inference_value(step, field):
    """``field`` of an inference step, if it was measured at ``INFERENCE_SHAPE``."""

    def get(results):
        inf = results.get("inference")
        if not inf or "steps" not in inf or tuple(inf["shape"]) != INFERENCE_SHAPE:
            return None
        return inf["steps"].get(step, {}).get(field)

    return get


SMALL = (100_000, 20, 5)
MID = (300_000, 20, 5)
BIG = (1_000_000, 20, 5)
WIDE = (200_000, 10, 30)
INFERENCE_SHAPE = (INFERENCE_ROWS, INFERENCE_P, INFERENCE_K)
#: The timed steps after a fit: key in the results, label in the tables.
INFERENCE_STEPS = {
    "HC0": "HC0 covariance",
    "HC1": "HC1 covariance",
    "cluster": "cluster covariance",
    "margeff": "get_margeff",
    "prediction": "get_prediction",
}
_INF = shape_key(INFERENCE_SHAPE)
TARGETS = (
    Target("(1e5,20,5) multilogit / floor", "<=", 4, _tool_value(SMALL, FLOOR, "ratio")),
    Target("(3e5,20,5) multilogit / floor", "<=", 2.5, _tool_value(MID, FLOOR, "ratio")),
    Target("(1e6,20,5) multilogit / floor", "<=", 2.5, _tool_value(BIG, FLOOR, "ratio")),
    Target(
        "(1e6,20,5) statsmodels / multilogit", ">=", 20, _tool_value(BIG, "statsmodels", "ratio")
    ),
    Target(
        "(1e6,20,5) sklearn newton-cholesky / multilogit",
        ">=",
        5,
        _tool_value(BIG, "sklearn-newton", "ratio"),
    ),
    Target(
        "(1e6,20,5) sklearn lbfgs / multilogit",
        ">=",
        5,
        _tool_value(BIG, "sklearn-lbfgs", "ratio"),
    ),
    Target(
        "(1e6,20,5) multilogit peak memory / X.nbytes",
        "<=",
        0.25,
        _tool_value(BIG, "multilogit", "peak_frac_x"),
    ),
    Target(
        "(2e5,10,30) statsmodels / multilogit", ">=", 10, _tool_value(WIDE, "statsmodels", "ratio")
    ),
    Target(
        "all shapes run: params vs exact Newton fit, max rel. diff",
        "<=",
        1e-10,
        _exact_value("params_rel_diff"),
    ),
    # The default fit's covariance is the exact information at the start of its last (settled)
    # step, within tol/10 of the estimates: the standard errors agree to the precision of the
    # exact reference numbers (1e-9), far below any printed digit.
    Target(
        "all shapes run: bse vs exact Newton fit, max rel. diff",
        "<=",
        1e-9,
        _exact_value("bse_rel_diff"),
    ),
    *(
        Target(
            f"({shape_key(shape)}) passes over X, default fit",
            "<=",
            4,
            _tool_value(shape, "multilogit", "passes"),
        )
        for shape in (SMALL, MID, BIG)
    ),
    *(
        Target(
            f"({_INF}) {label} / one exact information pass",
            "<=",
            1.5,
            _inference_value(step, "ratio"),
        )
        for step, label in INFERENCE_STEPS.items()
    ),
    *(
        Target(
            f"({_INF}) {label} peak memory less its output / X.nbytes",
            "<=",
            0.25,
            _inference_value(step, "peak_frac_x"),
        )
        for step, label in INFERENCE_STEPS.items()
    ),
    Target("import multilogit, median of fresh processes (s)", "<=", 0.4, _import_value),
    Target("cold start: first fit - warm fit, warm cache (s)", "<=", 0.3, _cold_start_value),
)


def analyse_inference(inf: dict) -> None:
    """Add each step's time relative to one exact information pass and its peak / X.nbytes."""
    steps = inf.get("steps")
    if not steps:
        return
    info = steps.get("info", {})
    base = info.get("median") if "error" not in info else None
    for name, row in steps.items():
        if "error" in row:
            continue
        row["ratio"] = row["median"] / base if base and name != "info" else None
        peak = row.get("peak_bytes")
        # The returned frame is the result, not working memory: a long summary frame of 1e6
        # rows and 5 outcomes is itself larger than X.
        if peak is not None:
            peak = max(peak - (row.get("output_bytes") or 0), 0)
        row["peak_frac_x"] = peak / inf["x_bytes"] if peak is not None else None


def evaluate_targets(results: dict) -> list[dict]:
    """PASS/MISS of each target, or SKIP if it was not measured in this run."""
    out = []
    for target in TARGETS:
        value = target.value(results)
        if value is None:
            status = "SKIP"
        elif target.op == "<=":
            status = "PASS" if value <= target.limit else "MISS"
        else:
            status = "PASS" if value >= target.limit else "MISS"
        out.append(
            {
                "target": target.label,
                "op": target.op,
                "limit": target.limit,
                "value": value,
                "status": status,
            }
        )
    return out


# -- output --------------------------------------------------------------------------------------


def _fmt(value, spec: str, missing: str = "-") -> str:
    return missing if value is None else format(value, spec)


def _row_notes(name: str, res: dict, entry: dict) -> str:
    notes = []
    if res.get("budget_stop"):
        notes.append("time budget")
    if res.get("converged") is False:
        notes.append("NOT CONVERGED")
    if name == "multilogit" and entry.get("llf_check") and not entry["llf_check"]["ok"]:
        notes.append("LLF MISMATCH")
    if res.get("warnings"):
        notes.append(f"{len(res['warnings'])} warning(s)")
    if res.get("memory_error"):
        notes.append("no memory reading")
    return ", ".join(notes)


def format_table(results: dict) -> str:
    """The per-shape, per-tool table with its legend."""
    head = (
        f"{'shape N,p,K':<12} {'tool':<21} {'reps':>4} {'median s':>9} {'ratio':>7} "
        f"{'iters':>5} {'llf rel.diff':>12} {'peak MB':>8} {'% of X':>7} {'mem/sm':>6}  notes"
    )
    lines = [head, "-" * len(head)]
    for key, entry in results["shapes"].items():
        first = True
        for name, res in entry["tools"].items():
            label = TOOLS[name].label if name in TOOLS else "floor: 1 SYRK"
            shape = key if first else ""
            first = False
            if "error" in res:
                lines.append(f"{shape:<12} {label:<21} ERROR {res['error'][:120]}")
                continue
            if name == FLOOR:
                lines.append(
                    f"{shape:<12} {label:<21} {res['repeats']:>4} {res['median']:>9.4f} "
                    f"{_fmt(res.get('ratio'), '.2f'):>7}   (min; {res['gflops_per_s']:.1f} "
                    f"GFLOP/s, q = {res['q']})"
                )
                continue
            peak = res.get("peak_bytes")
            lines.append(
                f"{shape:<12} {label:<21} {res['repeats']:>4} {res['median']:>9.4f} "
                f"{_fmt(res.get('ratio'), '.2f'):>7} {res['n_iter']:>5} "
                f"{_fmt(res.get('llf_rel_diff'), '.1e', 'ref'):>12} "
                f"{_fmt(None if peak is None else peak / MB, '.1f'):>8} "
                f"{_fmt(None if peak is None else 100 * res['peak_frac_x'], '.1f'):>7} "
                f"{_fmt(res.get('mem_vs_statsmodels'), '.2f'):>6}  {_row_notes(name, res, entry)}"
            )
    lines += [
        "",
        "reps: timed repeats behind the median (fewer than asked when the time budget ran out).",
        "ratio: tool time / multilogit time (how many times faster multilogit is); on the floor",
        "  row, multilogit time / floor time (how far multilogit is from the floor).",
        "iters: Newton iterations (multilogit n_iter, statsmodels mle_retvals['iterations'],",
        "  scikit-learn n_iter_; for lbfgs these are L-BFGS iterations).",
        "llf rel.diff: |llf - llf_ref| / |llf_ref| with statsmodels as ref (multilogit if",
        "  statsmodels was not run); for scikit-learn, the log-likelihood of its coefficients.",
        "peak MB: peak RSS of one fit above the RSS before it (1 MB = 1e6 bytes), in a fresh",
        "  process; % of X: that peak as a share of X.nbytes; mem/sm: peak / statsmodels' peak.",
        "* point estimates only: scikit-learn computes no standard errors, the others include",
        "  them in the timed fit.",
    ]
    return "\n".join(line.rstrip() for line in lines)


def format_exact(results: dict) -> str | None:
    """Passes over X of the default fit, and its agreement with the exact Newton fit."""
    head = (
        f"{'shape N,p,K':<12} {'passes':>6} {'iters':>5} {'exact passes':>12} "
        f"{'exact iters':>11} {'exact s':>8} {'params rel.diff':>15} {'bse rel.diff':>12}"
    )
    lines = []
    for key, entry in results["shapes"].items():
        res = entry["tools"].get("multilogit")
        if res is None or "error" in res:
            continue
        exact = res.get("exact")
        if exact is None:
            why = res.get("extra_error", "not run")
            lines.append(f"{key:<12} {_fmt(res.get('passes'), 'd'):>6} {res['n_iter']:>5}  {why}")
            continue
        note = "" if exact["converged"] else "  exact fit NOT CONVERGED"
        lines.append(
            f"{key:<12} {_fmt(res.get('passes'), 'd'):>6} {res['n_iter']:>5} "
            f"{_fmt(exact.get('passes'), 'd'):>12} {exact['n_iter']:>11} "
            f"{exact['seconds']:>8.3f} {exact['params_rel_diff']:>15.1e} "
            f"{exact['bse_rel_diff']:>12.1e}{note}"
        )
    if not lines:
        return None
    return "\n".join(
        [
            'multilogit\'s default fit against the exact Newton fit, fit(hessian="exact")'
            " (untimed, same process)",
            head,
            *lines,
            "passes: full passes over the rows (the iteration log's last `passes`); rel.diff:",
            "  max |default - exact| / max |exact|.",
        ]
    )


def format_inference(inf: dict) -> str:
    """The table of the steps after a fit: times, ratio to one information pass, memory."""
    n, p, k = inf["shape"]
    head = (
        f"{'step':<20} {'reps':>4} {'median s':>9} {'/ info':>7} {'peak MB':>8} "
        f"{'% of X':>7} {'output MB':>9}  notes"
    )
    lines = [
        f"After a fit on {shape_key((n, p, k))} (X: {inf['x_bytes'] / MB:.0f} MB; "
        f"cluster: {inf['cluster_groups']} groups, row i in group i % "
        f"{inf['cluster_groups']})",
        head,
        "-" * len(head),
    ]
    labels = {"fit": "fit + bse", "info": "1 exact information", **INFERENCE_STEPS}
    for name, row in inf["steps"].items():
        label = labels.get(name, name)
        if "error" in row:
            lines.append(f"{label:<20} ERROR {row['error'][:120]}")
            continue
        peak = row.get("peak_bytes")
        out_bytes = row.get("output_bytes")
        notes = []
        if row.get("budget_stop"):
            notes.append("time budget")
        if row.get("minus_fit"):
            notes.append(f"refit {row['median_with_fit']:.3f} s minus the fit")
        if row.get("memory_error"):
            notes.append("no memory reading")
        lines.append(
            f"{label:<20} {row['repeats']:>4} {row['median']:>9.4f} "
            f"{_fmt(row.get('ratio'), '.2f'):>7} "
            f"{_fmt(None if peak is None else peak / MB, '.1f'):>8} "
            f"{_fmt(None if peak is None else 100 * row['peak_frac_x'], '.1f'):>7} "
            f"{_fmt(None if out_bytes is None else out_bytes / MB, '.1f'):>9}  " + ", ".join(notes)
        )
    lines.append("Timed:")
    lines += [f"  {labels.get(name, name)}: {row['what']}" for name, row in inf["steps"].items()]
    lines += [
        "/ info: median seconds / those of one exact information pass (1 exact information);",
        "peak MB: peak RSS above the RSS before the step; % of X: as a share of X.nbytes;",
        "output MB: size of the returned DataFrame (index included), part of the peak.",
    ]
    return "\n".join(line.rstrip() for line in lines)


def format_imports(imports: dict) -> str:
    """Import seconds of multilogit and of its heavy dependencies, in fresh interpreters."""
    lines = [
        f"{'import (fresh interpreter)':<40} {'runs':>4} {'import s':>9} {'process s':>9}",
    ]
    for row in imports.values():
        lines.append(
            f"{row['modules']:<40} {row['runs']:>4} {row['import_s']:>9.3f} "
            f"{row['process_s']:>9.3f}"
        )
    lines.append(
        "(medians; import s: the import statement, timed inside the interpreter; process s:"
    )
    lines.append(" the whole python -c run seen from outside)")
    return "\n".join(lines)


def format_cold_start(cold: dict) -> str:
    """The cold-start table."""
    head = (
        f"{'Numba cache':<12} {'runs':>4} {'import s':>9} {'first fit s':>11} "
        f"{'warm fit s':>10} {'first-warm s':>12} {'import+f-w s':>12} {'process s':>9}"
    )
    lines = [f"Cold start in a fresh interpreter: import multilogit, then {cold['fit']}", head]
    for name in ("empty", "warm"):
        row = cold[name]
        lines.append(
            f"{name:<12} {row['runs']:>4} {row['import_s']:>9.3f} {row['first_fit_s']:>11.3f} "
            f"{row['warm_fit_s']:>10.4f} {row['first_minus_warm_s']:>12.3f} "
            f"{row.get('startup_s', math.nan):>12.3f} {row['process_s']:>9.2f}"
        )
    lines.append("(medians; import+f-w s: import plus first-warm, the one-time cost of a session;")
    lines.append(" process s is the whole interpreter run, seen from outside)")
    return "\n".join(lines)


def format_checks(results: dict) -> str:
    """Log-likelihood agreement per shape, target PASS/MISS lines and warnings raised."""
    lines = []
    if results["shapes"]:
        lines.append("Log-likelihood agreement, multilogit vs statsmodels (must be <= 1e-8)")
    for key, entry in results["shapes"].items():
        check = entry.get("llf_check")
        if check is None:
            lines.append(f"  SKIP  {key}: needs both multilogit and statsmodels")
        else:
            status = "PASS" if check["ok"] else "FAIL"
            lines.append(f"  {status}  {key}: rel. diff {_fmt(check['rel_diff'], '.2e')}")
    lines += [""] * bool(lines) + ["Targets"]
    for row in results["targets"]:
        value = _fmt(row["value"], ".3g", "not measured in this run")
        lines.append(
            f"  {row['status']:<4}  {row['target']} {row['op']} {row['limit']:g}: {value}"
        )
    warned = [
        (key, name, text)
        for key, entry in results["shapes"].items()
        for name, res in entry["tools"].items()
        for text in res.get("warnings", [])
    ]
    inf = results.get("inference") or {}
    warned += [("inference", "multilogit", text) for text in inf.get("warnings", [])]
    if warned:
        lines += ["", "Warnings raised during the timed fits"]
        lines += [f"  {key} {name}: {text}" for key, name, text in warned]
    return "\n".join(lines)


def write_json(results: dict, path: Path, latest: bool) -> list[Path]:
    """Write the results to ``path`` and, if ``latest``, to ``results/latest.json``."""
    paths = [path] + ([RESULTS_DIR / "latest.json"] if latest else [])
    text = json.dumps(results, indent=2, default=str) + "\n"
    for out in paths:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(text)
        tmp.replace(out)
    return paths


# -- command line --------------------------------------------------------------------------------


def parse_shape(text: str) -> tuple[int, int, int]:
    """``"1e6,20,5"`` -> ``(1000000, 20, 5)``."""
    try:
        n, p, k = (float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"shape must be N,p,K (e.g. 1e5,20,5); got {text!r}"
        ) from None
    if not all(v == int(v) for v in (n, p, k)) or p < 1 or k < 2 or n < 10 * p * k:
        raise argparse.ArgumentTypeError(f"need integers with p >= 1, K >= 2, N >= 10 p K: {text}")
    return int(n), int(p), int(k)


def parse_parts(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in PARTS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"parts are {', '.join(PARTS)}; got {text!r}")
    return names


def parse_rows(text: str) -> int:
    """``"1e6"`` -> ``1000000``; at least enough rows for a (p = 20, K = 5) fit."""
    try:
        n = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"rows must be a number (e.g. 1e6); got {text!r}"
        ) from None
    if n != int(n) or n < 10 * INFERENCE_P * INFERENCE_K:
        raise argparse.ArgumentTypeError(
            f"rows must be an integer >= {10 * INFERENCE_P * INFERENCE_K}: {text}"
        )
    return int(n)


def parse_tools(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in ALL_TOOLS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"tools are {', '.join(ALL_TOOLS)}; got {text!r}")
    return names


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Time multilogit's fit against statsmodels, scikit-learn and a BLAS floor.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="only the smallest shape, 2 repeats, inference on "
        f"{QUICK_INFERENCE_ROWS:.0e} rows: checks that the script works",
    )
    parser.add_argument(
        "--only",
        type=parse_parts,
        default=PARTS,
        metavar="PART[,PART]",
        help="run only these parts: fit (the shapes table, passes and the exact Newton "
        "comparison), inference (covariances, margins, predictions after a fit), startup "
        "(import times, cold start); default: all",
    )
    parser.add_argument(
        "--inference-rows",
        type=parse_rows,
        metavar="N",
        help=f"rows of the inference part, p = {INFERENCE_P}, K = {INFERENCE_K} (default "
        f"{INFERENCE_ROWS:.0e}; --quick: {QUICK_INFERENCE_ROWS:.0e})",
    )
    parser.add_argument(
        "--shapes",
        nargs="+",
        type=parse_shape,
        metavar="N,p,K",
        help="shapes to run (default: " + " ".join(shape_key(s) for s in SHAPES) + ")",
    )
    parser.add_argument(
        "--tools",
        type=parse_tools,
        default=ALL_TOOLS,
        help="comma-separated subset of " + ",".join(ALL_TOOLS) + " (default: all)",
    )
    parser.add_argument("--repeats", type=int, help="timed repeats per tool (default 3)")
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=MAX_SECONDS,
        help="no further repeat of a tool (or an inference step) starts once its timed "
        f"seconds plus one more repeat would pass this (default {MAX_SECONDS:g})",
    )
    parser.add_argument("--seed", type=int, default=SEED, help=f"data seed (default {SEED})")
    parser.add_argument(
        "--json",
        type=Path,
        help="write the results here only (default: results/bench_fit-<date>.json and "
        "results/latest.json; a --quick run writes results/bench_fit-<date>-quick.json only)",
    )
    parser.add_argument(
        "--installed",
        action="store_true",
        help="time the installed multilogit (default: the checkout holding this script)",
    )
    parser.add_argument("--no-memory", action="store_true", help="skip peak-memory readings")
    parser.add_argument(
        "--no-cold-start",
        action="store_true",
        help="skip the startup part (import times and cold start)",
    )
    return parser


def _log(text: str) -> None:
    print(f"[bench_fit] {text}", file=sys.stderr, flush=True)


def run_startup(results: dict, repeats: int, quick: bool) -> None:
    """Import times (multilogit, and its heavy dependencies for context) and the cold start."""
    runs = 2 if quick else IMPORT_RUNS
    results["imports"] = {}
    for name, modules in (("multilogit", "multilogit"), ("baseline", IMPORT_BASELINE)):
        _log(f"import {modules} ...")
        try:
            results["imports"][name] = import_times(modules, runs)
        except Exception as exc:  # noqa: BLE001 -- report it, keep the rest
            results.setdefault("imports_error", {})[name] = f"{type(exc).__name__}: {exc}"
    _log("cold start ...")
    try:
        results["cold_start"] = cold_start(repeats)
    except Exception as exc:  # noqa: BLE001 -- report it, keep the rest
        results["cold_start"] = None
        results["cold_start_error"] = f"{type(exc).__name__}: {exc}"


def use_this_checkout() -> str | None:
    """Import multilogit from the checkout this script belongs to, in every process.

    An editable install points at one checkout; run from another (a git worktree), the
    script would time the installed code while ``python -c`` children started from the
    checkout import its own.  Puts the checkout first on ``sys.path`` (inherited by spawned
    children) and on ``PYTHONPATH`` (inherited by subprocesses).  Returns its path, or
    ``None`` if this script is not inside a checkout of multilogit.
    """
    root = Path(__file__).resolve().parents[1]
    if not (root / "multilogit" / "__init__.py").is_file():
        return None
    sys.path.insert(0, str(root))
    paths = [str(root), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    os.environ["PYTHONPATH"] = os.pathsep.join(paths)
    return str(root)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if not args.installed:
        use_this_checkout()
    shapes = args.shapes or (QUICK_SHAPES if args.quick else SHAPES)
    repeats = args.repeats or (2 if args.quick else 3)
    if repeats < 1:
        raise SystemExit("--repeats must be at least 1")
    parts = [part for part in PARTS if part in args.only]
    if args.no_cold_start and "startup" in parts:
        parts.remove("startup")
    inference_rows = args.inference_rows or (
        QUICK_INFERENCE_ROWS if args.quick else INFERENCE_ROWS
    )
    started = datetime.datetime.now().astimezone()
    t_start = time.perf_counter()
    results = {
        "benchmark": "bench_fit",
        "created": started.isoformat(timespec="seconds"),
        "command": [Path(sys.argv[0]).name, *(sys.argv[1:] if argv is None else argv)],
        "quick": args.quick,
        "options": {
            "parts": parts,
            "shapes": [list(s) for s in shapes],
            "tools": list(args.tools),
            "repeats": repeats,
            "max_seconds": args.max_seconds,
            "seed": args.seed,
            "memory": not args.no_memory,
            "installed": args.installed,
            "floor_repeats": FLOOR_REPEATS,
            "llf_rtol": LLF_RTOL,
            "sklearn": {"tol": SKLEARN_TOL, "max_iter": SKLEARN_MAX_ITER},
            "statsmodels_maxiter": STATSMODELS_MAXITER,
            "inference_shape": [inference_rows, INFERENCE_P, INFERENCE_K],
            "cluster_groups": CLUSTER_GROUPS,
        },
        "machine": machine_info(),
        "shapes": {},
        "inference": None,
        "imports": None,
        "cold_start": None,
    }
    for shape in shapes if "fit" in parts else ():
        entry = {"shape": list(shape), "tools": {}}
        results["shapes"][shape_key(shape)] = entry
        for name in args.tools:
            _log(f"{shape_key(shape)} {name} ...")
            if name == "sklearn-newton" and not sklearn_multinomial_newton_ok():
                entry["tools"][name] = {"error": "needs scikit-learn >= 1.6 (multinomial)"}
                continue
            task = {
                "tool": name,
                "shape": shape,
                "seed": args.seed,
                "repeats": repeats,
                "max_seconds": args.max_seconds,
                "memory": not args.no_memory,
            }
            entry["tools"][name] = run_task(task)
        analyse_shape(entry)
    if "inference" in parts:
        _log(f"inference on {shape_key((inference_rows, INFERENCE_P, INFERENCE_K))} ...")
        task = {
            "kind": "inference",
            "tool": "multilogit",
            "rows": inference_rows,
            "seed": args.seed,
            "repeats": repeats,
            "max_seconds": args.max_seconds,
            "memory": not args.no_memory,
        }
        results["inference"] = run_task(task)
        analyse_inference(results["inference"])
    if "startup" in parts:
        run_startup(results, repeats, args.quick)
    results["targets"] = evaluate_targets(results)
    results["elapsed_s"] = time.perf_counter() - t_start

    machine = results["machine"]
    print(
        f"multilogit fit benchmark, {started:%Y-%m-%d %H:%M}, {machine['cpu_model']}, "
        f"{machine['cpu_count']} cores; seed {args.seed}" + (" (quick run)" if args.quick else "")
    )
    source = machine["multilogit_source"]
    commit = (source.get("git_commit") or "")[:10]
    print(
        f"multilogit from {source.get('path')}"
        + (
            f" at {commit}{' (with uncommitted changes)' if source.get('git_dirty') else ''}"
            if commit
            else ""
        )
    )
    print()
    if results["shapes"]:
        print(format_table(results))
        print()
        exact = format_exact(results)
        if exact:
            print(exact)
            print()
    inf = results["inference"]
    if inf is not None:
        print(format_inference(inf) if "error" not in inf else f"Inference failed: {inf['error']}")
        print()
    if results["imports"]:
        print(format_imports(results["imports"]))
        print()
    for name, error in results.get("imports_error", {}).items():
        print(f"Import timing ({name}) failed: {error}\n")
    if results["cold_start"]:
        print(format_cold_start(results["cold_start"]))
        print()
    elif "cold_start_error" in results:
        print(f"Cold start failed: {results['cold_start_error']}\n")
    print(format_checks(results))
    stamp = started.strftime("%Y%m%d-%H%M%S")
    partial = args.quick or tuple(parts) != PARTS
    suffix = "-quick" if args.quick else ("-" + "-".join(parts) if partial else "")
    path = args.json or RESULTS_DIR / f"bench_fit-{stamp}{suffix}.json"
    written = write_json(results, path, latest=not (partial or args.json))
    print()
    print(f"Results: {', '.join(str(p) for p in written)} ({results['elapsed_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
