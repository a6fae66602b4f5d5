"""The fit pipeline: rank checks, scaling, the Newton solve watched for separation, and the
refit without aliased columns."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

import numpy as np

from ..engine.scaled import ScaledBackend, scale_from_absmax
from ..exceptions import FitError, PerfectSeparationError
from ..results.results import MultinomialLogitResults
from ..solve.newton import NewtonResult, newton
from .rank import subset_model
from .separation import SeparationMonitor

__all__ = ["FlaggedState", "fit_without_aliased", "flag_state", "solve"]

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
    sol : NewtonResult
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
        sol = newton(backend, beta0, options, disp=disp, callback=callback, monitor=monitor)
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


@dataclass(frozen=True)
class FlaggedState(NewtonResult):
    """The solver's result plus what the reliability checks found.

    Results read ``aliased``, ``separation`` and ``notes`` from their state, so every results
    object derived from a fit without refitting (another covariance type, another reference
    outcome) keeps them.
    """

    aliased: np.ndarray | None = field(default=None, repr=False)
    separation: object = None
    notes: tuple = ()


def flag_state(state, **flags) -> FlaggedState:
    """``state`` (a :class:`NewtonResult`) with reliability flags attached (and any of its
    own fields replaced, e.g. ``message``)."""
    base = {f.name: flags.get(f.name, getattr(state, f.name)) for f in fields(NewtonResult)}
    for f in ("aliased", "separation", "notes"):
        base[f] = flags.get(f, getattr(state, f, FlaggedState.__dataclass_fields__[f].default))
    return FlaggedState(**base)


def fit_without_aliased(model, aliased, fit_kwds):
    """Fit ``model`` without its aliased columns and report those coefficients as NaN (R).

    Internally the dropped coefficients are 0 with zero covariance, and the information matrix
    has an identity block for them (uncoupled from the rest): predictions, marginal effects and
    sandwich covariances then equal those of the reduced model.  The results show NaN for them
    (``params``, ``bse``, ``cov_params()``).
    """

    keep = ~aliased
    sub = subset_model(model, keep)
    kw = dict(fit_kwds)
    start = kw.get("start_params")
    if start is not None:
        kw["start_params"] = np.nan_to_num(model._coerce_start(start))[:, keep]
    res = sub.fit(**kw, drop_collinear=False)
    J, p = model.J, model.k_exog
    flat_keep = np.tile(keep, J)
    beta = np.zeros((J, p))
    beta[:, keep] = res._beta
    cov = np.zeros((J * p, J * p))
    cov[np.ix_(flat_keep, flat_keep)] = res._cov
    score = np.zeros((J, p))
    score[:, keep] = np.asarray(res._state.score).reshape(J, -1)
    info = np.eye(J * p)
    info[np.ix_(flat_keep, flat_keep)] = res._state.info
    sep = res.separation
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
    state = flag_state(
        replace(res._state, beta=beta, score=score, info=info),
        aliased=aliased.copy(),
        separation=sep,
        notes=(note, *res._summary_notes),
    )
    fit_info = dict(
        converged=res.converged,
        n_iter=res.n_iter,
        log=res.iteration_log,
        message=res.fit_message,
        options=res.fit_options,
    )
    return MultinomialLogitResults(model, beta, state, cov, res._cov_estimator, fit_info)
