"""The fit pipeline, in one place: checks -> scaling -> solve -> covariance -> results.

:func:`fit` is what ``MultinomialLogit.fit`` runs.  It checks the design (parameter count and
rank, see :mod:`~multilogit.fit.rank`), solves by Newton-Raphson in rescaled coordinates when the
columns need it (:mod:`~multilogit.engine.scaled`) while a monitor watches for separation
(:mod:`~multilogit.fit.separation`), computes the requested covariance at the estimates and
returns immutable results holding one :class:`~multilogit.solve.state.FitState` with the
options recorded once, for every later refit.
"""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np

from ..engine.constrained import ConstrainedBackend, particular_solution
from ..engine.scaled import ScaledBackend, WeightScaledBackend, scale_from_absmax
from ..exceptions import DataError, FitError, PerfectSeparationError
from ..results.budget import (
    MATRIX_FREE_COV_TYPES,
    CovarianceOperator,
    MatrixFreeResults,
    sandwich_refusal,
)
from ..results.results import MultinomialLogitResults
from ..solve.conjugate import dense_fits, dense_information_bytes
from ..solve.firth import FirthScoring, JeffreysPenalty, MedianAdjustment, logdet
from ..solve.l1 import ElasticNetPenalty, ProximalNewton
from ..solve.newton import newton
from ..solve.objective import QuadraticPenalty
from .constraints import ConstraintSet, constraints_note
from .options import FitOptions
from .penalized import build_penalty, finish_sparse
from .rank import check_design, conditioning_note
from .separation import SeparationMonitor, separated_covariance

__all__ = ["check_outcome_weights", "fit", "rows_weight_scale", "solve"]


def fit(
    model, options: FitOptions, start_params=None, disp: bool = False, callback=None
) -> MultinomialLogitResults:
    """Fit ``model`` with ``options``; see ``MultinomialLogit.fit`` for the meaning of each."""
    estimator = options.estimator()
    if model.nobs <= 0:
        raise DataError("no observations with positive weight")
    if options.bias_reduced and model.weights is not None:
        # Firth's penalty is not invariant to the scale of the weights, so it has no meaning
        # for sampling weights; brglm2 treats weights as counts.
        raise DataError(
            f"method={options.method!r} treats weights as counts, as brglm2: give them as "
            "freq_weights, "
            "not as sampling weights"
        )
    if options.bias_reduced and getattr(model, "offset", None) is not None:
        raise DataError(f"method={options.method!r} is not available for a model with an offset")
    if model.is_in_memory:
        check_outcome_weights(model)
    beyond = not dense_fits(model.J * model.k_exog, options.memory_budget)
    if beyond:
        _check_budget(model, options)
    found: dict = {}
    aliased = check_design(model, options.drop_collinear, found)
    if aliased is not None and beyond:
        _check_budget(model, options, "a design with aliased columns (drop_collinear=True)")
    if aliased is not None:
        return _fit_without_aliased(model, aliased, options, start_params, disp, callback)
    conditioning = conditioning_note(found["cond"]) if "cond" in found else None
    if conditioning is not None:
        # Past pipeline.fit and the model's fit: the user's line.
        warnings.warn(conditioning, UserWarning, stacklevel=3)
    beta0 = model.start_params() if start_params is None else model._coerce_start(start_params)
    backend = model.backend
    penalty = build_penalty(model, options.penalty)
    constraints = None
    if options.constraints is not None:
        constraints = ConstraintSet.from_dict(options.constraints)
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
            constraints=constraints,
        )
        if isinstance(penalty, ElasticNetPenalty):
            sol = finish_sparse(model, sol, penalty, options.penalty)
    finally:
        backend.release()  # work buffers and the row subsample are rebuilt when needed
    state = replace(sol, converged=sol.converged and sep is None, options=options.as_dict())
    if conditioning is not None:
        state = replace(state, notes=(*state.notes, conditioning))
    if constraints is not None:
        state = replace(state, notes=(constraints_note(constraints), *state.notes))
    if beyond:
        # The covariance stays an operator: columns are solved when asked for.
        if sep is not None:
            msg = sol.message or f"{sep.kind} separation found after the iterations"
            state = replace(
                state, separation=sep, notes=(sep.message(), *state.notes), message=msg
            )
        operator = _covariance_operator(model, state, options)
        return MatrixFreeResults(model, state, operator, estimator)
    if sep is not None:
        cov = separated_covariance(lambda: estimator.compute(model, state), model.J, model.k_exog)
        msg = sol.message or f"{sep.kind} separation found after the iterations"
        state = replace(state, separation=sep, notes=(sep.message(), *state.notes), message=msg)
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


def check_outcome_weights(model) -> None:
    """Every outcome must have positive total weight.

    An outcome whose rows all have weight 0 is not in the likelihood: the reference would
    leave nothing to compare with, another outcome's coefficients would diverge to minus
    infinity (a separation in appearance only).  Either is a property of the weights, said
    here naming the outcome.

    Raises
    ------
    DataError
    """
    counts = np.asarray(model.outcome_counts)
    empty = np.flatnonzero(~(counts > 0))
    if not len(empty):
        return
    levels = list(model.outcomes)
    rows = np.bincount(model.level_codes, minlength=len(levels))
    ref = model.outcome.ref_index
    if ref in empty:
        others = [repr(levels[k]) for k in range(len(levels)) if counts[k] > 0]
        raise DataError(
            f"the reference outcome {levels[ref]!r} has zero total weight (its {rows[ref]} "
            "row(s) all have weight 0), so no outcome can be compared with it; choose another "
            f"ref= among the outcomes with positive weight: {', '.join(others)}"
        )
    names = ", ".join(f"{levels[k]!r} ({rows[k]} row(s))" for k in empty)
    raise DataError(
        f"outcome(s) {names} have zero total weight: every row of them has weight 0, so "
        "their coefficients are not identified; drop those rows (and the unused level) or "
        "give them positive weight"
    )


def _check_budget(model, options: FitOptions, what: str | None = None) -> None:
    """Refuse, before any pass over the rows, a fit beyond the memory budget that needs the
    dense information: its estimates would fit (Newton-CG), its covariance would not.

    Beyond the budget the classical covariance is an operator (columns by conjugate gradients,
    :class:`~multilogit.results.budget.CovarianceOperator`); a sandwich needs the dense meat,
    and bias reduction, penalties, constraints and aliased columns need the dense information
    in the fit itself or in its results.
    """
    params = model.J * model.k_exog
    if what is None:
        if options.bias_reduced:
            what = f"method={options.method!r} (its penalty is the log-determinant of it)"
        elif options.penalty is not None:
            what = "a penalised fit"
        elif options.constraints is not None:
            what = "a constrained fit (fit(constraints=...))"
        elif options.cov_type not in MATRIX_FREE_COV_TYPES or (
            options.cov_type != "nonrobust" and model.weights is not None
        ):
            raise FitError(sandwich_refusal(options.cov_type, model.weights is not None))
        else:
            return
    need = dense_information_bytes(params) / 2**30
    raise FitError(
        f"{what} needs the dense information matrix of {params} parameters, about "
        f"{need:.1f} GiB with its factor and the covariance, beyond memory_budget="
        f"{options.memory_budget / 2**30:.2g} GiB. Beyond the budget only maximum likelihood "
        "with cov_type='nonrobust' is available (standard errors for chosen terms and "
        "outcomes by conjugate gradients); raise memory_budget (in bytes) if the machine has "
        "the memory"
    )


def _covariance_operator(model, state, options: FitOptions) -> CovarianceOperator:
    """The classical covariance at the estimates as an operator on the rows the solver read
    (sampling weights divided as there)."""
    backend = model.backend
    weight_scale = model.weight_scale
    if model.weights is not None and not model.is_in_memory:
        weight_scale = rows_weight_scale(backend)
        backend = WeightScaledBackend(backend, weight_scale)
    return CovarianceOperator(backend, state.beta, weight_scale, options.memory_budget)


# ---------------------------------------------------------------------------------------------
# The solve, as run by ``MultinomialLogit.fit``


def _unscaled_callback(callback, scale, J, weight_scale=1.0):
    if callback is None:
        return None

    flat = None if scale is None else np.tile(scale, J)

    def wrapped(beta_flat, row):
        if weight_scale != 1.0:
            row = _row_in_weight_scale(row, weight_scale)
        callback(beta_flat if flat is None else beta_flat / flat, row)

    return wrapped


# Iteration-log columns proportional to the weights: the objective, its parts, the score and
# the Newton decrement g' I^{-1} g.
_WEIGHTED_LOG_COLUMNS = ("llf", "loglike", "penalty", "max_abs_score", "decrement")


def _row_in_weight_scale(row: dict, weight_scale: float) -> dict:
    return {k: v * weight_scale if k in _WEIGHTED_LOG_COLUMNS else v for k, v in dict(row).items()}


def _in_weight_scale(sol, weight_scale: float):
    """The solver's state, found on rows with normalised sampling weights, in the scale of
    the weights as given (see :mod:`multilogit.data.weights`): the log-likelihood, score,
    information and the log's columns that scale with the weights."""
    log = sol.log.copy()
    for col in _WEIGHTED_LOG_COLUMNS:
        if col in log:
            log[col] = log[col] * weight_scale
    return replace(
        sol,
        llf=sol.llf * weight_scale,
        score=np.asarray(sol.score) * weight_scale,
        # No information beyond the memory budget (the covariance is an operator there).
        info=None if sol.info is None else np.asarray(sol.info) * weight_scale,
        penalty=sol.penalty * weight_scale,
        log=log,
    )


def solve(
    model,
    backend,
    beta0,
    options,
    disp,
    callback,
    separation,
    bias_reduced=None,
    penalty=None,
    constraints=None,
):
    """Newton-Raphson in rescaled coordinates (when columns need it), watched for separation.

    With ``bias_reduced`` (``"mean"`` or ``"median"``), Firth's penalised likelihood or the
    root of the median-bias-reducing adjusted score by quasi Fisher scoring instead
    (:mod:`multilogit.solve.firth`): its estimates exist on separated data, so nothing watches
    for separation.  With a ``penalty`` (in the original coordinates; see
    :mod:`multilogit.fit.penalized`) the log-likelihood less it, by proximal Newton for one
    with an L1 part (:mod:`multilogit.solve.l1`).  Nothing watches a penalised fit for
    separation: a penalty on every slope keeps the estimates finite, and one that leaves a
    diverging coefficient unpenalised lets it grow until the log-likelihood is flat in
    floating point, as an unwatched ML fit (a zero penalty is ML, and watched).

    With ``constraints`` (a :class:`~multilogit.fit.constraints.ConstraintSet`), Newton in
    the null-space coordinates of :class:`~multilogit.engine.constrained.ConstrainedBackend`
    (outside any rescaling, the constraints carried into the rescaled coordinates), started
    from the projection of ``beta0`` on the constrained set; nothing watches a constrained
    fit for separation (a separated one stops with a ``ConvergenceWarning``).  The state's
    score and information are then those of the unconstrained likelihood at the estimates.

    Returns
    -------
    sol : FitState
        In the original coordinates.
    sep : Separation or None
    """
    amax = model._column_absmax() if backend.n else np.ones(backend.p)
    scale = scale_from_absmax(amax)
    amax = np.where(np.isfinite(amax) & (amax > 0), amax, 1.0)
    # The solver reads rows whose sampling weights are normalised: in memory the backend's rows
    # carry them so (model.weight_scale); rows a backend holds are divided on the way.
    weight_scale = model.weight_scale
    if model.weights is not None and not model.is_in_memory:
        weight_scale = rows_weight_scale(backend)
        backend = WeightScaledBackend(backend, weight_scale)
    if scale is not None:
        backend = ScaledBackend(backend, scale, model.J)
        beta0 = backend.to_scaled(beta0)
    user_callback = _unscaled_callback(callback, scale, model.J, weight_scale)
    full_backend = backend
    if constraints is not None:
        backend = _constrained(backend, constraints, scale, model.J, model.k_exog)
        beta0 = backend.to_gamma(beta0)
        if user_callback is not None:
            user_callback = _in_beta(user_callback, backend)
    last = _LastIterate(beta0, user_callback)
    to_unit = amax if scale is None else amax / scale
    watch = separation != "ignore" and not bias_reduced and penalty is None and constraints is None
    monitor = SeparationMonitor(model, separation, to_unit) if watch else None
    extra = {}
    if bias_reduced:
        adjust = JeffreysPenalty if bias_reduced == "mean" else MedianAdjustment
        extra = {"direction": FirthScoring(), "penalty": adjust(backend)}
    elif penalty is not None:
        if weight_scale != 1.0:
            # The rows' weights are divided by weight_scale: so is the penalty, which keeps the
            # optimum of the log-likelihood less the penalty where it was.
            penalty = _divided(penalty, weight_scale)
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
            callback=last,
            monitor=monitor,
            stacklevel=4,
            **extra,
        )
    except FitError as exc:
        if isinstance(exc, PerfectSeparationError):
            raise
        # A saturated fit can make the information singular (or the start values infinite, an
        # outcome without weight) before the monitor's triggers fire: if the data are
        # separated, say so instead of blaming the algebra.
        sep = None
        if monitor is not None:
            sep = monitor.result if monitor.checked else monitor.run_check(force=True)
        if sep is None:
            # The design passed the rank check and the data are not separated (or the check
            # was turned off): what is left is numerical trouble at the iterate, said as such.
            raise FitError(_ill_conditioned_message(exc, backend, last, separation)) from None
        # separation="warn" (run_check raised under "raise"): report the fit where the solver
        # last stood, stopped there as the monitor would have stopped it.
        start = monitor.last_beta
        if start is None:
            start = np.where(np.isfinite(beta0), beta0, 0.0)
        monitor.stop_now = True
        sol = newton(
            backend, start, options, disp=disp, callback=last, monitor=monitor, stacklevel=4
        )
    if constraints is not None:
        # The state holds beta and the unconstrained likelihood's score and information there
        # (one more pass), from which every covariance is computed with the constraints.
        beta = backend.to_beta(sol.beta)
        d = full_backend.derivatives(beta, hessian=True)
        sol = replace(sol, beta=beta, score=d.score, info=d.info)
        backend = full_backend
    if scale is not None:
        sol = replace(
            sol,
            beta=backend.to_original(sol.beta),
            score=backend.unscale_score(sol.score),
            info=backend.unscale_info(sol.info),
        )
    if weight_scale != 1.0:
        sol = _in_weight_scale(sol, weight_scale)
    if bias_reduced == "mean":
        # The penalty in the rescaled coordinates differs from the original one by a constant
        # (the log-determinant of the scaling): state it in the original coordinates.
        loglike = sol.llf + sol.penalty
        penalty = -0.5 * logdet(sol.info)
        sol = replace(sol, llf=loglike - penalty, penalty=penalty)
    elif bias_reduced == "median":
        # Median bias reduction maximises nothing: keep the log-likelihood alone.
        sol = replace(sol, llf=sol.llf + sol.penalty, penalty=0.0)
    sep = monitor.finish(sol.converged, sol.beta * amax) if monitor is not None else None
    return sol, sep


def _constrained(backend, constraints, scale, J: int, p: int) -> ConstrainedBackend:
    """``backend`` in the null-space coordinates of ``constraints``; with column scales,
    the constraints in the rescaled coordinates :math:`\\tilde\\beta = \\beta S`:
    :math:`R S^{-1} \\tilde\\beta = q`."""
    R = constraints.R
    if scale is not None:
        R = R / np.tile(scale, J)
    cons = ConstraintSet(R, constraints.q, constraints.labels)
    return ConstrainedBackend(backend, cons.basis(), particular_solution(R, cons.q), J, p)


def _in_beta(callback, backend):
    """``callback`` called with the coefficients of the iterate, not its null-space
    coordinates."""

    def wrapped(gamma_flat, row):
        callback(backend.to_beta(gamma_flat).ravel(), row)

    return wrapped


def _divided(penalty, factor: float):
    """``penalty`` divided by ``factor`` (both penalties are linear in their weights)."""
    if isinstance(penalty, ElasticNetPenalty):
        return ElasticNetPenalty(penalty.l1 / factor, penalty.l2 / factor)
    return QuadraticPenalty(penalty.matrix / factor)


#: Sampling weights of rows a backend holds stay as given for the robust covariances, whose
#: meat squares them: beyond 2**500 (about 3e150) either way, the squares leave the float64
#: range.
_ROWS_WEIGHT_EXPONENT = 500


def rows_weight_scale(backend) -> float:
    """The power of two nearest the mean positive likelihood weight of rows a backend holds
    (one pass; see :func:`multilogit.data.weights.sampling_scale` for rows in memory).

    Raises
    ------
    DataError
        Weights so small or large that their squares in a robust covariance leave the float64
        range.
    """

    def chunk(c):
        w = np.asarray(c.weights, dtype=np.float64)
        pos = w[w > 0]
        if not len(pos):
            return 0, 0, 0.0
        _, e = np.frexp(pos.max())
        return len(pos), int(e), float(np.sum(np.ldexp(pos, -int(e))))

    parts = [part for part in backend.reduce(chunk, frames=False) if part[0]]
    if not parts:
        return 1.0
    top = max(e for _, e, _ in parts)
    total = sum(np.ldexp(s, e - top) for _, e, s in parts)
    exponent = int(np.round(np.log2(total / sum(n for n, _, _ in parts)))) + top
    if abs(exponent) > _ROWS_WEIGHT_EXPONENT:
        raise DataError(
            f"the weights average about 2**{exponent} ({np.ldexp(1.0, exponent):.3g}): on data "
            "larger than memory the robust covariance squares them as given, beyond the "
            "float64 range; divide the sampling weights by a constant (e.g. their mean), "
            "which changes neither the estimates nor the robust standard errors"
        )
    return float(np.ldexp(1.0, exponent))


class _LastIterate:
    """The solver's callback: keeps the last iterate (in the solver's coordinates) and its
    iteration, then passes them on to ``callback``."""

    def __init__(self, beta0, callback):
        self.beta, self.iteration, self.callback = np.asarray(beta0), None, callback

    def __call__(self, beta_flat, row):
        self.beta, self.iteration = beta_flat, row.get("iteration")
        if self.callback is not None:
            self.callback(beta_flat, row)


def _ill_conditioned_message(exc, backend, last, separation) -> str:
    """Why Newton-Raphson failed on a full-rank design that is not separated: the condition
    number of the information at the last iterate (rows and columns scaled to a unit
    diagonal), and what to try."""
    where = "at the start" if not last.iteration else f"at iteration {last.iteration}"
    observed = "non-finite entries"
    try:
        beta = np.reshape(last.beta, (backend.J, backend.p))
        with np.errstate(all="ignore"):
            info = backend.derivatives(beta, hessian=True).info
            d = np.sqrt(np.abs(np.diag(info)))
            if np.all(np.isfinite(info)) and not np.all(d > 0):
                observed = (
                    "some coefficients have zero information: the fitted probabilities they "
                    "act on are all 0 or 1 in floating point"
                )
            elif np.all(np.isfinite(info)):
                ev = np.linalg.eigvalsh(info / np.outer(d, d))
                if ev[0] > 0:
                    observed = (
                        f"its condition number, rows and columns scaled to a unit diagonal, "
                        f"is {ev[-1] / ev[0]:.2g}"
                    )
                else:
                    observed = (
                        "condition number beyond 1e16: with rows and columns scaled to a unit "
                        f"diagonal its smallest eigenvalue is {ev[0]:.2g} and its largest "
                        f"{ev[-1]:.2g}"
                    )
    except (FloatingPointError, ValueError, np.linalg.LinAlgError):
        pass
    checked = (
        "the data are not separated"
        if separation != "ignore"
        else "the separation check was off (separation='ignore')"
    )
    return (
        f"Newton-Raphson failed ({str(exc).split(':')[0]}): the information matrix {where} is "
        f"numerically singular ({observed}), although the design has full rank and "
        f"{checked}. This is ill-conditioning: fitted probabilities driven to 0 or 1 "
        "by start values far from the estimates, columns with large offsets or very different "
        "scales, or extreme values. Try centring and scaling the columns, checking for "
        "outliers, or other start_params (the default start is the intercept-only fit)"
    )


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
    J, p = model.J, model.k_exog
    flat_keep = np.tile(keep, J)
    sub_options = replace(options, drop_collinear=False)
    if options.constraints is not None:
        # The constraints of the other coefficients carry over; one on a dropped (not
        # estimable) coefficient has no meaning.
        R = np.asarray(options.constraints["R"], dtype=np.float64)
        if np.any(R[:, ~flat_keep] != 0):
            dropped = [n for n, a in zip(model.exog_names, aliased, strict=True) if a]
            raise DataError(
                f"the constraints involve the coefficients of column(s) {dropped!r}, dropped "
                "as aliased (drop_collinear=True): they are not estimable"
            )
        cons = {**options.constraints, "R": R[:, flat_keep].tolist()}
        sub_options = replace(sub_options, constraints=cons)
    res = fit(sub, sub_options, start_params, disp, callback)
    beta = np.zeros((J, p))
    beta[:, keep] = res._state.beta
    cov = np.zeros((J * p, J * p))
    cov[np.ix_(flat_keep, flat_keep)] = res._cov
    score = np.zeros((J, p))
    score[:, keep] = np.asarray(res._state.score).reshape(J, -1)
    # The identity block in the scale of the weights as given, like the rest of the state (a
    # robust covariance divides the information by the weight scale).
    info = np.eye(J * p) * model.weight_scale
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
