"""The fit pipeline, in one place: checks -> scaling -> solve -> covariance -> results.

:func:`fit` is what ``MultinomialLogit.fit`` runs.  It checks the design (parameter count and
rank, see :mod:`~multilogit.fit.rank`), solves by Newton-Raphson in rescaled coordinates when the
columns need it (:mod:`~multilogit.engine.scaled`) while a monitor watches for separation
(:mod:`~multilogit.fit.separation`), computes the requested covariance at the estimates and
returns immutable results holding one :class:`~multilogit.solve.state.FitState` with the
options recorded once, for every later refit.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..engine.scaled import ScaledBackend, scale_from_absmax
from ..exceptions import DataError, FitError, PerfectSeparationError
from ..results.results import MultinomialLogitResults
from ..solve.conjugate import dense_fits, dense_information_bytes
from ..solve.newton import newton
from .options import FitOptions
from .rank import check_design
from .separation import SeparationMonitor, separated_covariance

__all__ = ["fit", "solve"]


def fit(
    model, options: FitOptions, start_params=None, disp: bool = False, callback=None
) -> MultinomialLogitResults:
    """Fit ``model`` with ``options``; see ``MultinomialLogit.fit`` for the meaning of each."""
    estimator = options.estimator()
    if model.nobs <= 0:
        raise DataError("no observations with positive weight")
    aliased = check_design(model, options.drop_collinear)
    _check_budget(model.J * model.k_exog, options.memory_budget)
    if aliased is not None:
        return _fit_without_aliased(model, aliased, options, start_params, disp, callback)
    beta0 = model.start_params() if start_params is None else model._coerce_start(start_params)
    backend = model.backend
    try:
        sol, sep = solve(
            model, backend, beta0, options.newton(), disp, callback, options.separation
        )
    finally:
        backend.release()  # work buffers and the row subsample are rebuilt when needed
    state = replace(sol, converged=sol.converged and sep is None, options=options.as_dict())
    if sep is not None:
        cov = separated_covariance(lambda: estimator.compute(model, state), model.J, model.k_exog)
        msg = sol.message or f"{sep.kind} separation found after the iterations"
        state = replace(state, separation=sep, notes=(sep.message(),), message=msg)
    else:
        cov = estimator.compute(model, state)
        if not np.all(np.isfinite(cov)):
            raise FitError("the covariance matrix is not finite at the estimates")
    return MultinomialLogitResults(model, state, cov, estimator)


def _check_budget(params: int, budget: float) -> None:
    """Refuse, before any pass over the rows, a fit whose covariance needs a dense information
    beyond the memory budget: the estimates alone would fit (Newton-CG), the results do not."""
    if dense_fits(params, budget):
        return
    need = dense_information_bytes(params) / 2**30
    raise FitError(
        f"the standard errors of {params} parameters need the dense information matrix, "
        f"about {need:.1f} GiB with its factor and the covariance, beyond memory_budget="
        f"{budget / 2**30:.2g} GiB; raise memory_budget (in bytes) if the machine has the "
        "memory, or fit the estimates alone with multilogit.solve.newton.newton(model.backend, "
        'beta0, NewtonOptions(method="newton-cg"))'
    )


# ---------------------------------------------------------------------------------------------
# The solve, as run by ``MultinomialLogit.fit``


def _unscaled_callback(callback, scale, J):
    if callback is None:
        return None

    flat = np.tile(scale, J)

    def wrapped(beta_flat, row):
        callback(beta_flat / flat, row)

    return wrapped


def solve(model, backend, beta0, options, disp, callback, separation):
    """Newton-Raphson in rescaled coordinates (when columns need it), watched for separation.

    Returns
    -------
    sol : FitState
        In the original coordinates.
    sep : Separation or None
    """
    amax = model._column_absmax() if backend.n else np.ones(backend.p)
    scale = scale_from_absmax(amax)
    amax = np.where(np.isfinite(amax) & (amax > 0), amax, 1.0)
    if scale is not None:
        backend = ScaledBackend(backend, scale, model.J)
        beta0 = backend.to_scaled(beta0)
        callback = _unscaled_callback(callback, scale, model.J)
    to_unit = amax if scale is None else amax / scale
    monitor = None if separation == "ignore" else SeparationMonitor(model, separation, to_unit)
    try:
        # A ConvergenceWarning names the user's line: past this function, fit() and the model.
        sol = newton(
            backend, beta0, options, disp=disp, callback=callback, monitor=monitor, stacklevel=4
        )
    except FitError as exc:
        # A saturated fit can make the information singular before the monitor's triggers
        # fire: if the data are separated, say so instead of blaming the algebra.
        if monitor is None or monitor.checked or isinstance(exc, PerfectSeparationError):
            raise
        sep = monitor.run_check(force=True)
        if sep is None:
            raise
        raise PerfectSeparationError(sep.message()) from None
    if scale is not None:
        sol = replace(
            sol,
            beta=backend.to_original(sol.beta),
            score=backend.unscale_score(sol.score),
            info=backend.unscale_info(sol.info),
        )
    sep = monitor.finish(sol.converged, sol.beta * amax) if monitor is not None else None
    return sol, sep


def _fit_without_aliased(model, aliased, options, start_params, disp, callback):
    """Fit ``model`` without its aliased columns and report those coefficients as NaN (R).

    Internally the dropped coefficients are 0 with zero covariance, and the information matrix
    has an identity block for them (uncoupled from the rest): predictions, marginal effects and
    sandwich covariances then equal those of the reduced model.  The results show NaN for them
    (``params``, ``bse``, ``cov_params()``).
    """
    keep = ~aliased
    sub = model.submodel(columns=keep)
    if start_params is not None:
        start_params = np.nan_to_num(model._coerce_start(start_params))[:, keep]
    res = fit(sub, replace(options, drop_collinear=False), start_params, disp, callback)
    J, p = model.J, model.k_exog
    flat_keep = np.tile(keep, J)
    beta = np.zeros((J, p))
    beta[:, keep] = res._state.beta
    cov = np.zeros((J * p, J * p))
    cov[np.ix_(flat_keep, flat_keep)] = res._cov
    score = np.zeros((J, p))
    score[:, keep] = np.asarray(res._state.score).reshape(J, -1)
    info = np.eye(J * p)
    info[np.ix_(flat_keep, flat_keep)] = res._state.info
    sep = res._state.separation
    if sep is not None:
        full = np.zeros((J, p), dtype=bool)
        full[:, keep] = sep.params
        direction = np.zeros((J, p))
        direction[:, keep] = sep.direction
        null = None
        if sep.null_space is not None:
            null = np.zeros((J, p, sep.null_space.shape[2]))
            null[:, keep, :] = sep.null_space
        sep = replace(
            sep,
            params=full,
            direction=direction,
            null_space=null,
            exog_names=tuple(model.exog_names),
        )
    dropped = [n for n, a in zip(model.exog_names, aliased, strict=True) if a]
    note = (
        f"Column(s) {', '.join(map(repr, dropped))} dropped as aliased (linear combinations of "
        "other columns, drop_collinear=True): their coefficients are NaN."
    )
    state = replace(
        res._state,
        beta=beta,
        score=score,
        info=info,
        options=options.as_dict(),
        aliased=aliased.copy(),
        separation=sep,
        notes=(note, *res._state.notes),
    )
    return MultinomialLogitResults(model, state, cov, res._cov_estimator)
