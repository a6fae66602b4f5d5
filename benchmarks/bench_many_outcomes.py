"""Many outcomes: multilogit's Newton-CG against scikit-learn's lbfgs and newton-cg.

Usage::

    python benchmarks/bench_many_outcomes.py            # K = 100, 300, 1000; p = 20; N = 2e5
    python benchmarks/bench_many_outcomes.py --quick    # small sizes only: checks the script
    python benchmarks/bench_many_outcomes.py --budget 16e9   # standard errors at K = 1000 too

Every fit runs in a freshly spawned process that builds the data from a fixed seed
(``bench_fit.make_data``: a constant and standard normal columns, coefficients of scale
``0.5 / sqrt(p)``, outcome 0 the reference), warms up on a small fit, then times one fit and
records its peak resident memory above what the process held before.  Each child then
measures, untimed, how converged its solution is with one yardstick for all tools: the largest
score of the reference-coded log-likelihood at its coefficients (scikit-learn's ``K`` sets
turned into contrasts with outcome 0), over the number of rows, the gradient of the mean
log-likelihood that scikit-learn's tolerance refers to.  A fit counts as converged at
``max_rel_score <= 1e-6``.  Agreement is the largest difference of the contrasts from
multilogit's, relative to ``1 + |beta|``, and of the log-likelihoods.

Tools:

* ``multilogit``: ``fit(method="newton-cg")`` with standard errors when the dense information
  fits the memory budget (``--budget``, default 2 GiB); beyond it the solver alone
  (``multilogit.solve.newton.newton`` with ``method="newton-cg"``), estimates without standard
  errors.  ``solve_s`` is the solver's part of the time (the rest: the information at the
  estimates and its inverse).
* ``multilogit-dense``: ``fit(hessian="exact")``, dense Newton with the exact information at
  every iteration, for comparison; only up to :data:`DENSE_MAX_PARAMS` parameters (an
  information pass costs ``N q^2`` flops) and where the dense information fits the budget.
  (The default ``fit()`` takes Newton-CG from 300 parameters on: it is ``multilogit`` here.)
* ``sklearn-lbfgs``, ``sklearn-newton-cg``: ``LogisticRegression`` without penalty,
  ``tol=1e-7``, no intercept (``X`` carries the constant); point estimates only.

Results go to ``benchmarks/results/bench_many_outcomes-<date>.json`` (``-quick`` for a quick
run).
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_fit as bf  # noqa: E402  (the house helpers: data, memory, processes)

SHAPES = ((200_000, 20, 100), (200_000, 20, 300), (200_000, 20, 1000))
QUICK_SHAPES = ((20_000, 10, 20), (20_000, 10, 50), (20_000, 10, 300))
TOOLS = ("multilogit", "multilogit-dense", "sklearn-lbfgs", "sklearn-newton-cg")
#: Most parameters of the dense comparison (K = 100 at p = 20).
DENSE_MAX_PARAMS = 2_000
SKLEARN_TOL = 1e-7
SKLEARN_MAX_ITER = {"lbfgs": 20_000, "newton-cg": 200}
CONVERGED = 1e-6
WARMUP_ROWS = 2_000
GIB = 2**30


def _backend(X, y, K):
    from multilogit.engine.memory import InMemoryBackend

    return InMemoryBackend(X, np.where(y == 0, -1, y - 1), np.ones(len(y)), K - 1)


def _fit(tool: str, X, y, K: int, budget: float):
    """The timed fit: ``(contrasts (K-1, p), llf or None, extra dict)``."""
    from multilogit.solve.conjugate import dense_fits

    q = (K - 1) * X.shape[1]
    if tool.startswith("multilogit"):
        import multilogit as ml
        from multilogit.solve.newton import NewtonOptions, newton

        if tool == "multilogit-dense" or dense_fits(q, budget):
            how = {"hessian": "exact"} if tool == "multilogit-dense" else {"method": "newton-cg"}
            # Integer codes of K categories: said so, as the continuous-outcome guard asks.
            labels = pd.Categorical(y)
            res = ml.MultinomialLogit(labels, X).fit(memory_budget=budget, **how)
            log = res.iteration_log
            bse = res.bse.to_numpy()
            return (
                np.ascontiguousarray(res.params.to_numpy().T),
                res.llf,
                {
                    "with_se": bool(np.all(np.isfinite(bse))),
                    "solve_s": float(log["seconds"].iloc[-1]),
                    "n_iter": int(res.n_iter),
                    "passes": int(log["passes"].iloc[-1]),
                    "cg_iterations": int(log["cg_iterations"].sum())
                    if "cg_iterations" in log
                    else 0,
                },
            )
        opts = NewtonOptions(method="newton-cg", memory_budget=budget)
        st = newton(_backend(X, y, K), np.zeros((K - 1, X.shape[1])), opts)
        return (
            st.beta,
            st.llf,
            {
                "with_se": False,
                "solve_s": float(st.log["seconds"].iloc[-1]),
                "n_iter": int(st.n_iter),
                "passes": int(st.log["passes"].iloc[-1]),
                "cg_iterations": int(st.log["cg_iterations"].sum()),
            },
        )
    from sklearn.linear_model import LogisticRegression

    solver = tool.removeprefix("sklearn-")
    est = LogisticRegression(
        solver=solver,
        tol=SKLEARN_TOL,
        max_iter=SKLEARN_MAX_ITER[solver],
        fit_intercept=False,
        **bf.sklearn_unpenalized_kwargs(),
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.fit(X, y)
    coef = est.coef_
    return (
        coef[1:] - coef[0],
        None,
        {
            "with_se": False,
            "n_iter": int(np.max(est.n_iter_)),
            "warnings": sorted({str(w.message).splitlines()[0] for w in caught}),
        },
    )


def time_tool(task: dict) -> dict:
    """In a fresh process: warm up, time one fit, measure its peak memory and convergence."""
    n, p, K, tool, budget = task["n"], task["p"], task["K"], task["tool"], task["budget"]
    Xw, yw = bf.make_data(WARMUP_ROWS, p, min(K, 5))
    _fit(tool, Xw, yw, min(K, 5), budget)
    X, y = bf.make_data(n, p, K)
    gc.collect()
    try:
        base = bf.reset_peak_rss()
    except OSError:
        base = None
    t0 = time.perf_counter()
    beta, llf, extra = _fit(tool, X, y, K, budget)
    seconds = time.perf_counter() - t0
    peak = None if base is None else bf.peak_rss() - base
    d = _backend(X, y, K).derivatives(beta, hessian=False)
    rel = float(np.abs(d.score).max()) / n
    return {
        "seconds": seconds,
        "peak_mb": None if peak is None else peak / bf.MB,
        "llf": float(d.llf),
        "max_rel_score": rel,
        "converged": rel <= CONVERGED,
        "_beta": beta.tolist(),
        **extra,
    }


def run(shapes, tools, budget: float) -> list[dict]:
    from multilogit.solve.conjugate import dense_fits

    rows = []
    for n, p, K in shapes:
        q = (K - 1) * p
        print(
            f"N={n:,} p={p} K={K}  ({q:,} parameters; dense information fits: "
            f"{dense_fits(q, budget)})",
            flush=True,
        )
        entry = {"n": n, "p": p, "K": K, "params": q, "tools": {}}
        for tool in tools:
            if tool == "multilogit-dense" and not (
                dense_fits(q, budget) and q <= DENSE_MAX_PARAMS
            ):
                continue
            task = {"n": n, "p": p, "K": K, "tool": tool, "budget": budget}
            try:
                out = bf.run_in_fresh_process(time_tool, task)
            except Exception as exc:  # noqa: BLE001 -- one failing tool must not end the run
                out = {"error": f"{type(exc).__name__}: {exc}"}
            entry["tools"][tool] = out
        ref = entry["tools"].get("multilogit", {})
        if "_beta" in ref:
            b0 = np.asarray(ref["_beta"])
            for out in entry["tools"].values():
                if "_beta" in out:
                    b = np.asarray(out.pop("_beta"))
                    out["max_rel_diff"] = float(np.max(np.abs(b - b0) / (1 + np.abs(b0))))
                    out["llf_diff"] = out["llf"] - ref["llf"]
        for tool, out in entry["tools"].items():
            out.pop("_beta", None)
            if "error" in out:
                print(f"  {tool:18s} error: {out['error']}")
                continue
            solve = f"  solve {out['solve_s']:7.2f} s" if "solve_s" in out else " " * 16
            print(
                f"  {tool:18s} {out['seconds']:8.2f} s{solve}  peak {out['peak_mb'] or 0:8.0f} MB"
                f"  rel score {out['max_rel_score']:.1e}  diff {out.get('max_rel_diff', 0):.1e}"
                f"  SE {'yes' if out['with_se'] else 'no'}  iter {out['n_iter']}"
                + (f"  CG {out['cg_iterations']}" if "cg_iterations" in out else ""),
                flush=True,
            )
        rows.append(entry)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small shapes: checks the script")
    parser.add_argument("--tools", default=",".join(TOOLS), help="comma-separated tools")
    parser.add_argument(
        "--outcomes", default="", help="comma-separated K of the full run to keep, e.g. 100,300"
    )
    parser.add_argument(
        "--budget", type=float, default=2 * GIB, help="multilogit's memory_budget in bytes"
    )
    args = parser.parse_args(argv)
    bf.use_this_checkout()
    shapes = QUICK_SHAPES if args.quick else SHAPES
    if args.outcomes:
        keep = {int(k) for k in args.outcomes.split(",") if k}
        shapes = tuple(s for s in shapes if s[2] in keep)
    tools = tuple(t for t in args.tools.split(",") if t)
    unknown = set(tools) - set(TOOLS)
    if unknown:
        parser.error(f"unknown tools: {sorted(unknown)}")
    started = datetime.datetime.now(datetime.UTC)
    rows = run(shapes, tools, args.budget)
    results = {
        "script": "bench_many_outcomes",
        "started": started.isoformat(),
        "quick": args.quick,
        "budget": args.budget,
        "converged_at": CONVERGED,
        "machine": bf.machine_info(),
        "shapes": rows,
    }
    stamp = started.strftime("%Y%m%d-%H%M%S")
    path = bf.RESULTS_DIR / f"bench_many_outcomes-{stamp}{'-quick' if args.quick else ''}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
