"""Newton-Raphson (IRLS) with step-halving for the multinomial logit log-likelihood.

The solver follows fixed steps at each iteration: derivatives at the current point, Newton
direction from a Cholesky solve of the (symmetric positive-definite) information matrix, a
convergence check, step-halving until the log-likelihood does not decrease, and a row of the
iteration log.  All numbers come from a backend (see :mod:`multilogit.backends`); the solver only
combines them.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import linalg

from .exceptions import ConvergenceWarning, FitError

__all__ = ["NewtonOptions", "NewtonResult", "newton"]


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
        that last step is still taken, so with quadratic convergence the result is accurate to
        about ``tol**2``.
    max_halvings : int
        Most step-halvings in one iteration.
    """

    maxiter: int = 100
    tol: float = 1e-8
    max_halvings: int = 40


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


_LOG_COLUMNS = ["iteration", "llf", "step", "max_abs_score", "decrement", "seconds"]


def _cholesky(info):
    try:
        return linalg.cho_factor(info, lower=False, check_finite=True)
    except (linalg.LinAlgError, ValueError):
        return None


def newton(
    backend, beta0, options=NewtonOptions(), disp=False, callback=None, monitor=None
) -> NewtonResult:
    """Maximise the log-likelihood from ``beta0`` (shape ``(J, p)``).

    Parameters
    ----------
    backend
        Object with ``derivatives(beta, hessian)`` returning ``Derivatives``.
    beta0 : ndarray
    options : NewtonOptions
    disp : bool
        Print one line per iteration.
    callback : callable, optional
        Called as ``callback(beta, row)`` after each iteration with the flat parameters and the
        iteration-log row (a dict).
    monitor : callable, optional
        Called as ``monitor(it, beta, derivatives)`` at the top of each iteration; a non-empty
        string return stops the solver with that message (unconverged, without a
        ``ConvergenceWarning``: the monitor reports the reason), e.g. on separation.
    """
    t0 = time.perf_counter()
    beta = np.array(beta0, dtype=np.float64, copy=True)
    shape = beta.shape
    d = backend.derivatives(beta, hessian=True)
    if not np.isfinite(d.llf):
        raise FitError("the log-likelihood is not finite at the start values")
    rows = []

    def record(it, step, dec):
        row = dict(
            iteration=it,
            llf=d.llf,
            step=step,
            max_abs_score=float(np.max(np.abs(d.score))) if d.score.size else 0.0,
            decrement=dec,
            seconds=time.perf_counter() - t0,
        )
        rows.append(row)
        if disp:
            print(
                f"iter {it:3d}  llf {row['llf']: .10f}  step {step:8.6f}  "
                f"|score| {row['max_abs_score']:.3e}  decrement {dec:.3e}"
            )
        if callback is not None:
            callback(beta.ravel().copy(), row)

    record(0, 0.0, float("nan"))
    converged = False
    message = ""
    it = 0
    stopped = ""
    for it in range(1, options.maxiter + 1):
        if monitor is not None and (stopped := monitor(it, beta, d)):
            message = stopped
            it -= 1  # this iteration was not carried out
            break
        g = d.score.ravel()
        cf = _cholesky(d.info)
        if cf is None:
            raise FitError(
                "the information matrix is not positive definite at iteration "
                f"{it - 1}: the design may be rank deficient or the data separated"
            )
        delta = linalg.cho_solve(cf, g)
        dec = float(g @ delta)
        small_step = np.all(np.abs(delta) <= options.tol * (1.0 + np.abs(beta.ravel())))
        small_dec = dec <= options.tol**2 * (1.0 + abs(d.llf))
        step = 1.0
        for _ in range(options.max_halvings + 1):
            cand = beta + step * delta.reshape(shape)
            trial = backend.derivatives(cand, hessian=False)
            # Rounding can lower the log-likelihood by a few ulps at the optimum: tolerate it.
            if np.isfinite(trial.llf) and trial.llf >= d.llf - 1e-12 * (1.0 + abs(d.llf)):
                break
            step *= 0.5
        else:
            if small_step or small_dec:
                converged = True
                record(it, 0.0, dec)
                break
            message = "step-halving could not increase the log-likelihood"
            record(it, 0.0, dec)
            break
        beta = cand
        d = backend.derivatives(beta, hessian=True)
        record(it, step, dec)
        if small_step or small_dec:
            converged = True
            break
    else:
        message = f"no convergence in {options.maxiter} iterations"
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
