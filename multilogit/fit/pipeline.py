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
from ..solve.firth import FirthScoring, JeffreysPenalty, logdet
from ..solve.l1 import ElasticNetPenalty, ProximalNewton
from ..solve.newton import newton
from .options import FitOptions
from .penalized import build_penalty, finish_sparse
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
    if aliased is not None:
        return _fit_without_aliased(model, aliased, options, start_params, disp, callback)
    beta0 = model.start_params() if start_params is None else model._coerce_start(start_params)
    backend = model.backend
    penalty = build_penalty(model, options.penalty)
    try:
        sol, sep = solve(
            model,
            backend,
            beta0,
            options.newton(),
            disp,
            callback,
            options.separation,
            options.bias_reduced,
            penalty=penalty,
        )
        if isinstance(penalty, ElasticNetPenalty):
            sol = finish_sparse(model, sol, penalty, options.penalty)
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
        if state.trimmed is not None:
            # Trimmed coefficients have no standard errors (statsmodels' convention); NaN in
            # the stored matrix keeps that in a saved fit.
            flat = state.trimmed.ravel()
            cov[flat, :] = np.nan
            cov[:, flat] = np.nan
    return MultinomialLogitResults(model, state, cov, estimator)


# ---------------------------------------------------------------------------------------------
# The solve, as run by ``MultinomialLogit.fit``


def _unscaled_callback(callback, scale, J):
    if callback is None:
        return None

    flat = np.tile(scale, J)

    def wrapped(beta_flat, row):
        callback(beta_flat / flat, row)

    return wrapped


def solve(
    model, backend, beta0, options, disp, callback, separation, bias_reduced=False, penalty=None
):
    """Newton-Raphson in rescaled coordinates (when columns need it), watched for separation.

    With ``bias_reduced``, Firth's penalised likelihood by quasi Fisher scoring instead
    (:mod:`multilogit.solve.firth`): its estimates exist on separated data, so nothing watches
    for separation.  With a ``penalty`` (in the original coordinates; see
    :mod:`multilogit.fit.penalized`) the log-likelihood less it, by proximal Newton for one
    with an L1 part (:mod:`multilogit.solve.l1`).  Nothing watches a penalised fit for
    separation: a penalty on every slope keeps the estimates finite, and one that leaves a
    diverging coefficient unpenalised lets it grow until the log-likelihood is flat in
    floating point, as an unwatched ML fit (a zero penalty is ML, and watched).

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
    watch = separation != "ignore" and not bias_reduced and penalty is None
    monitor = SeparationMonitor(model, separation, to_unit) if watch else None
    extra = {}
    if bias_reduced:
        extra = {"direction": FirthScoring(), "penalty": JeffreysPenalty(backend)}
    elif penalty is not None:
        if scale is not None:
            penalty = penalty.rescaled(scale, model.J)
        extra = {"penalty": penalty}
        if isinstance(penalty, ElasticNetPenalty):
            extra["direction"] = ProximalNewton()
    try:
        # A ConvergenceWarning names the user's line: past this function, fit() and the model.
        sol = newton(
            backend,
            beta0,
            options,
            disp=disp,
            callback=callback,
            monitor=monitor,
            stacklevel=4,
            **extra,
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
    if bias_reduced:
        # The penalty in the rescaled coordinates differs from the original one by a constant
        # (the log-determinant of the scaling): state it in the original coordinates.
        loglike = sol.llf + sol.penalty
        penalty = -0.5 * logdet(sol.info)
        sol = replace(sol, llf=loglike - penalty, penalty=penalty)
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
