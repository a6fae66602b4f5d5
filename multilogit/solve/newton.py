"""Newton-Raphson (IRLS) with step-halving for the multinomial logit log-likelihood.

The solver follows fixed steps at each iteration: derivatives at the current point, Newton
direction from a Cholesky solve of the (symmetric positive-definite) information matrix, a
convergence check, step-halving until the log-likelihood does not decrease, and a row of the
iteration log.  All numbers come from a backend (see :mod:`multilogit.engine`); the solver only
combines them.

Two phases
----------
The exact information costs a rank-k update of an ``(n, J p)`` matrix, far more than the
log-likelihood and score (two thin matrix products).  On large data (``hessian="auto"``) the
iterations therefore start with the information of a fixed subsample of rows (the backend's
``approx_information``): the Newton direction is then inexact, the convergence linear with a
small rate instead of quadratic, but each iteration costs a few score evaluations.  This phase
runs to a tolerance 10 times tighter than ``tol``, then the exact information is computed once,
at that point.  If its Newton step is within ``tol`` the fit has converged there: the estimates
are the point where the exact information was evaluated, so the standard errors come from the
exact information at the reported estimates.  Otherwise exact Newton iterations continue.
``hessian="exact"`` (and any data too small for a subsample) uses the exact information at every
iteration.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import linalg

from ..exceptions import ConvergenceWarning, FitError

__all__ = ["NewtonOptions", "NewtonResult", "newton"]

# The subsample phase stops at this fraction of ``tol``: its last step leaves an error of about
# the convergence rate times that step, well below ``tol``, before the one exact information.
_APPROX_TOL_FACTOR = 1e-1
# A full sampled step that shrinks the Newton decrement by less than this factor: the sample
# is a poor stand-in for the data (a good one gives a few thousandths), switch to exact.
_SLOW_RATE = 0.25
# A sampled information is recomputed unless the last step was full and moved no parameter by
# more than this (relative to 1 + |beta|).
_REUSE_STEP = 1e-3


@dataclass(frozen=True)
class NewtonOptions:
    """Stopping rules.

    Attributes
    ----------
    maxiter : int
        Most Newton iterations.
    tol : float
        Stop once the Newton step is at most ``tol * (1 + |beta|)`` in every coordinate, or the
        Newton decrement :math:`g^\\top \\mathcal{I}^{-1} g` is at most ``tol**2 * (1 + |llf|)``;
        in the exact phase that last step is still taken, so with quadratic convergence the
        result is accurate to about ``tol**2``.
    max_halvings : int
        Most step-halvings in one iteration.
    hessian : {"auto", "exact"}
        ``"auto"``: subsampled information first when the backend offers it (see the module
        docstring); ``"exact"``: the exact information at every iteration.
    """

    maxiter: int = 100
    tol: float = 1e-8
    max_halvings: int = 40
    hessian: str = "auto"


@dataclass(frozen=True)
class NewtonResult:
    beta: np.ndarray
    llf: float
    score: np.ndarray
    info: np.ndarray
    converged: bool
    n_iter: int
    log: pd.DataFrame = field(repr=False)
    message: str = ""


@dataclass(frozen=True)
class _Point:
    """What the monitor sees: the derivatives at the current point and the information used."""

    llf: float
    score: np.ndarray
    info: np.ndarray | None


_LOG_COLUMNS = ["iteration", "llf", "step", "max_abs_score", "decrement", "info_rows", "seconds"]


def _cholesky(info):
    try:
        return linalg.cho_factor(info, lower=False, check_finite=True)
    except (linalg.LinAlgError, ValueError):
        return None


def _small(delta, dec, beta, llf, tol):
    """The stopping rule of :class:`NewtonOptions` at tolerance ``tol``."""
    small_step = np.all(np.abs(delta) <= tol * (1.0 + np.abs(beta.ravel())))
    return bool(small_step or dec <= tol**2 * (1.0 + abs(llf)))


def newton(
    backend, beta0, options=NewtonOptions(), disp=False, callback=None, monitor=None
) -> NewtonResult:
    """Maximise the log-likelihood from ``beta0`` (shape ``(J, p)``).

    Parameters
    ----------
    backend
        Object with ``derivatives(beta, hessian)`` returning ``Derivatives``; optionally
        ``approx_information(beta)`` (an approximate information matrix or ``None``) and
        ``n`` (rows, for the iteration log).
    beta0 : ndarray
    options : NewtonOptions
    disp : bool
        Print one line per iteration.
    callback : callable, optional
        Called as ``callback(beta, row)`` after each iteration with the flat parameters and the
        iteration-log row (a dict).
    monitor : callable, optional
        Called as ``monitor(it, beta, point)`` at the top of each iteration, where ``point`` has
        ``llf``, ``score`` and ``info`` (the information the iteration uses); a non-empty string
        return stops the solver with that message (unconverged, without a
        ``ConvergenceWarning``: the monitor reports the reason), e.g. on separation.

    Returns
    -------
    NewtonResult
        ``info`` is always the exact information at the returned ``beta``.
    """
    if options.hessian not in ("auto", "exact"):
        raise ValueError(f"hessian must be 'auto' or 'exact'; got {options.hessian!r}")
    t0 = time.perf_counter()
    beta = np.array(beta0, dtype=np.float64, copy=True)
    shape = beta.shape
    approx = getattr(backend, "approx_information", None)
    n_rows = float(getattr(backend, "n", np.nan))
    exact = options.hessian == "exact" or approx is None
    info = None
    if not exact:
        d = backend.derivatives(beta, hessian=False)
        info = approx(beta)
        exact = info is None
    if exact:
        d = backend.derivatives(beta, hessian=True)
    if not np.isfinite(d.llf):
        raise FitError("the log-likelihood is not finite at the start values")
    rows = []

    def record(it, step, dec, info_rows):
        row = dict(
            iteration=it,
            llf=d.llf,
            step=step,
            max_abs_score=float(np.max(np.abs(d.score))) if d.score.size else 0.0,
            decrement=dec,
            info_rows=info_rows,
            seconds=time.perf_counter() - t0,
        )
        rows.append(row)
        if disp:
            kind = "exact" if info_rows == n_rows or np.isnan(n_rows) else "sampled"
            print(
                f"iter {it:3d}  llf {row['llf']: .10f}  step {step:8.6f}  "
                f"|score| {row['max_abs_score']:.3e}  decrement {dec:.3e}  ({kind} information)"
            )
        if callback is not None:
            callback(beta.ravel().copy(), row)

    def sample_rows():
        return float(getattr(backend, "sample_rows", np.nan))

    record(0, 0.0, float("nan"), n_rows if exact else sample_rows())
    converged = False
    confirming = False  # the first exact information after the sampled phase
    full_step, prev_dec, moved = False, np.inf, np.inf
    message = ""
    it = 0
    stopped = ""
    for it in range(1, options.maxiter + 1):
        if not exact:
            # Near the optimum the information barely moves between iterations, far less than
            # the sample's own error: keep the last one (a chord step) once steps are tiny.
            if it > 1 and not (full_step and moved <= _REUSE_STEP):
                info = approx(beta)
        else:
            info = d.info
        if monitor is not None and (stopped := monitor(it, beta, _Point(d.llf, d.score, info))):
            message = stopped
            it -= 1  # this iteration was not carried out
            break
        g = d.score.ravel()
        cf = _cholesky(info)
        if not exact:
            delta = None if cf is None else linalg.cho_solve(cf, g)
            dec = np.inf if cf is None else float(g @ delta)
            # Linear convergence at a poor rate (or no definite direction at all) means the
            # sample does not stand for the data: go on with the exact information.
            if cf is None or (full_step and dec > _SLOW_RATE * prev_dec):
                exact, confirming = True, True
                d = backend.derivatives(beta, hessian=True)
                info = d.info
                cf = _cholesky(info)
        if cf is None:
            raise FitError(
                "the information matrix is not positive definite at iteration "
                f"{it - 1}: the design may be rank deficient or the data separated"
            )
        if exact:
            delta = linalg.cho_solve(cf, g)
            dec = float(g @ delta)
        tol = options.tol if exact else options.tol * _APPROX_TOL_FACTOR
        small = _small(delta, dec, beta, d.llf, tol)
        info_rows = n_rows if exact else sample_rows()
        if confirming and small:
            # The sampled phase ended within tol of the optimum: stop here, where the exact
            # information was evaluated (the remaining step is below the tolerance).
            converged = True
            record(it, 0.0, dec, info_rows)
            break
        confirming = False
        step = 1.0
        for _ in range(options.max_halvings + 1):
            cand = beta + step * delta.reshape(shape)
            trial = backend.derivatives(cand, hessian=False)
            # Rounding can lower the log-likelihood by a few ulps at the optimum: tolerate it.
            if np.isfinite(trial.llf) and trial.llf >= d.llf - 1e-12 * (1.0 + abs(d.llf)):
                break
            step *= 0.5
        else:
            if exact and small:
                converged = True
                record(it, 0.0, dec, info_rows)
                break
            if not exact:
                # No progress along the sampled direction: rounding level, or a poor sample.
                exact, confirming = True, True
                d = backend.derivatives(beta, hessian=True)
                record(it, 0.0, dec, info_rows)
                continue
            message = "step-halving could not increase the log-likelihood"
            record(it, 0.0, dec, info_rows)
            break
        beta = cand
        full_step, prev_dec = step == 1.0, dec
        moved = step * float(np.max(np.abs(delta) / (1.0 + np.abs(beta.ravel()))))
        if exact:
            d = backend.derivatives(beta, hessian=True)
        elif small:
            exact, confirming = True, True
            d = backend.derivatives(beta, hessian=True)
        else:
            d = trial
        record(it, step, dec, info_rows)
        if exact and small and not confirming:
            converged = True
            break
    else:
        message = f"no convergence in {options.maxiter} iterations"
    if d.info is None:
        # Stopped in the sampled phase: the covariance needs the exact information here.
        d = backend.derivatives(beta, hessian=True)
    if not converged and not stopped:
        warnings.warn(
            f"Newton-Raphson did not converge: {message}; the estimates are unreliable",
            ConvergenceWarning,
            stacklevel=3,
        )
    if not (np.all(np.isfinite(beta)) and np.isfinite(d.llf)):
        raise FitError("the fit produced non-finite estimates")
    log = pd.DataFrame(rows, columns=_LOG_COLUMNS)
    return NewtonResult(beta, d.llf, d.score, d.info, converged, it, log, message)
