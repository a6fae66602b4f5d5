"""Design checks run before a fit: parameter count, rank deficiency and column scaling.

A multinomial logit with a rank-deficient design has no unique maximum: the information matrix is
singular and Newton-Raphson either fails inside a Cholesky factorisation or wanders along the null
space.  We find the aliased columns up front, as R's ``lm``/``glm`` do, and either name them in a
:class:`~multilogit.exceptions.DataError` or, with ``fit(drop_collinear=True)``, fit without them
and report their coefficients as NaN.

Columns on wildly different scales (say ``1e-6`` and ``1e6``) make the Newton step test
``|delta| <= tol (1 + |beta|)`` meaningless for the small or the large coefficients.  The solver
then works in rescaled coordinates, :math:`\\tilde X = X S^{-1}`, :math:`\\tilde\\beta = \\beta S`,
with :math:`S` a diagonal matrix of powers of two: multiplying by a power of two is exact in binary
floating point, so the rescaled problem is the same problem, evaluated with the same rounding,
and mapping back is exact.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, fields, replace

import numpy as np
from scipy import linalg

from . import backends, kernels
from .design import Design, ModelData
from .exceptions import DataError
from .solver import NewtonResult

__all__ = [
    "ALIAS_TOL",
    "aliased_columns",
    "check_design",
    "column_scale",
    "ScaledBackend",
    "subset_model",
]

#: Relative tolerance of the rank test: a column is aliased when the part of it orthogonal to
#: the earlier columns has norm below ``ALIAS_TOL`` times its own norm (R's ``lm`` default).
ALIAS_TOL = 1e-7

# Columns whose largest magnitude is within [2**-10, 2**10] are left alone: rescaling them gains
# nothing, and leaving them keeps the common case bitwise identical to an unscaled solve.
_SCALE_FREE_EXPONENT = 10


def _col_absmax(X: np.ndarray) -> np.ndarray:
    """Largest magnitude of each column, in one pass without an n x p temporary."""
    if X.shape[0] == 0:
        return np.zeros(X.shape[1])
    X = np.ascontiguousarray(X, dtype=np.float64)
    lo, hi = kernels.scan_columns(X, np.empty(len(X), dtype=np.bool_))
    return np.maximum(hi, -lo)


def aliased_columns(X: np.ndarray, tol: float = ALIAS_TOL, amax=None) -> np.ndarray:
    """Columns of ``X`` that are linear combinations of earlier columns.

    Parameters
    ----------
    X : ndarray, shape (n, p)
    tol : float
        Column ``k`` is aliased when the part of it orthogonal to the earlier non-aliased columns
        has norm below ``tol`` times its own norm, so the earlier of two identical columns is
        kept, as in R.  All-zero columns are aliased.
    amax : ndarray, shape (p,), optional
        Each column's largest magnitude, when the caller knows it.

    Returns
    -------
    ndarray of bool, shape (p,)
    """
    X = np.asarray(X, dtype=np.float64)
    n, p = X.shape
    amax = _col_absmax(X) if amax is None else np.asarray(amax, dtype=np.float64)
    zero = ~(amax > 0)
    # Fast path, without copying X: the Cholesky factor of the Gram matrix of unit-norm columns
    # has the diagonal of R.  When every entry is comfortably away from zero the design has full
    # rank and the O(n p^2) orthogonalisation below is not needed.
    if not zero.any() and n >= p:
        runs = backends.row_runs(n)
        with np.errstate(over="ignore", invalid="ignore"):
            # May overflow for values near 1e300: then take the slow path.
            parts = backends.map_runs(lambda k: X[runs[k]].T @ X[runs[k]], len(runs))
            G = sum(parts[1:], parts[0])
        d = np.sqrt(np.diag(G))
        if np.all(np.isfinite(G)) and np.all(d > 0):
            try:
                L = linalg.cholesky(G / np.outer(d, d), lower=True, check_finite=False)
                if np.all(np.abs(np.diag(L)) > 1e-3):
                    return np.zeros(p, dtype=bool)
            except linalg.LinAlgError:
                pass
    # Divide by the largest magnitude first: squares of values near 1e300 would overflow.
    X = X / np.where(zero, 1.0, amax)
    norms = np.sqrt(np.einsum("ij,ij->j", X, X))
    zero |= ~(norms > 0)
    unit = X / np.where(zero, 1.0, norms)
    # Gram-Schmidt in column order, orthogonalising twice ("twice is enough"), with aliased
    # columns left out of the basis: R's limited pivoting.  A plain QR would spend a basis vector
    # on the rounding residue of an aliased column and could then flag a later, independent
    # column.
    Q = np.empty((n, min(n, p)))
    r = 0
    out = zero.copy()
    for k in np.flatnonzero(~zero):
        v = unit[:, k].copy()
        for _ in range(2):
            v -= Q[:, :r] @ (Q[:, :r].T @ v)
        nv = float(np.sqrt(v @ v))
        if nv < tol or r == Q.shape[1]:
            out[k] = True
            continue
        Q[:, r] = v / nv
        r += 1
    return out


def _alias_partners(X, aliased, names):
    """For each aliased column, the kept columns it is (numerically) a combination of."""
    kept = np.flatnonzero(~aliased)
    out = {}
    if len(kept) == 0:
        return out
    Xk = X[:, kept]
    scale = np.maximum(np.abs(Xk).max(axis=0), 1e-300)
    for k in np.flatnonzero(aliased):
        if not np.any(X[:, k]):
            out[names[k]] = None
            continue
        coef = np.linalg.lstsq(Xk / scale, X[:, k], rcond=None)[0]
        big = np.abs(coef) > 1e-8 * max(np.abs(coef).max(), 1e-300)
        out[names[k]] = [names[j] for j in kept[big]]
    return out


def rank_message(X: np.ndarray, aliased: np.ndarray, names) -> str:
    """Explain which columns are aliased, and with what."""
    names = [str(n) for n in names]
    parts = []
    for col, partners in _alias_partners(X, aliased, names).items():
        if partners is None:
            parts.append(f"{col!r} is all zero")
        else:
            parts.append(f"{col!r} is a linear combination of " + ", ".join(map(repr, partners)))
    p = len(names)
    return (
        f"the design matrix is rank deficient (rank {p - int(aliased.sum())} < {p} columns): "
        + "; ".join(parts)
        + ". Remove the aliased column(s) or pass fit(drop_collinear=True) to drop them "
        "(their coefficients are then reported as NaN)"
    )


def check_parameter_count(n_rows: int, J: int, p: int, what: str = "") -> None:
    """Raise :class:`DataError` when the model has more parameters than observations."""
    if J * p > n_rows:
        raise DataError(
            f"the model has {J * p} parameters ({J} outcome equations x {p} terms{what}) but "
            f"only {n_rows} observations; use fewer terms or more data"
        )


def check_design(model, drop_collinear: bool) -> np.ndarray | None:
    """Checks run by ``fit``: parameter count and rank.

    Returns
    -------
    ndarray of bool or None
        ``None`` when the design is fine; otherwise (only with ``drop_collinear=True``) the mask
        of aliased columns to drop.

    Raises
    ------
    DataError
        More parameters than observations, or a rank-deficient design without
        ``drop_collinear``.
    """
    X = model.exog
    # Rows with zero (likelihood) weight do not inform the fit: a dummy that is zero on every
    # weighted row is aliased.
    w = getattr(model, "_lik_weights", None)
    amax = None
    if w is not None and not np.all(w > 0):
        X = X[w > 0]
    elif len(X):
        amax = model._column_absmax()
    n, p = X.shape
    if not drop_collinear:
        check_parameter_count(n, model.J, p)
    aliased = aliased_columns(X, amax=amax)
    if not aliased.any():
        return None
    if not drop_collinear:
        raise DataError(rank_message(X, aliased, model.exog_names))
    if aliased.all():
        raise DataError("every column of the design is zero: nothing to fit")
    check_parameter_count(n, model.J, int((~aliased).sum()), " after dropping aliased ones")
    return aliased


def subset_model(model, keep: np.ndarray):
    """A shallow copy of ``model`` with only the columns ``keep`` (used to fit without aliased
    columns).  Everything else (rows, outcome, weights) is shared with ``model``."""
    keep = np.asarray(keep, dtype=bool)
    sub = copy.copy(model)
    X = np.ascontiguousarray(model.exog[:, keep])
    X.setflags(write=False)
    names = tuple(n for n, k in zip(model.exog_names, keep, strict=True) if k)
    md = model._data
    design = Design(names)
    sub._data = ModelData(X, md.codes, md.outcome, design, md.row_labels, md.n_dropped)
    sub.exog = X
    sub.design = design
    return sub


# ---------------------------------------------------------------------------------------------
# Column scaling


def column_scale(X: np.ndarray) -> np.ndarray | None:
    """Power-of-two column scales that bring every column's largest magnitude near 1.

    Returns ``None`` when every column is already within a factor ``2**10`` of 1 (no rescaling
    needed).  All-zero and non-finite columns get scale 1.
    """
    return _scale_from_absmax(_col_absmax(X) if X.shape[0] else np.ones(X.shape[1]))


def _scale_from_absmax(amax: np.ndarray) -> np.ndarray | None:
    with np.errstate(divide="ignore", invalid="ignore"):
        expo = np.where(np.isfinite(amax) & (amax > 0), np.round(np.log2(amax)), 0.0)
    if np.all(np.abs(expo) <= _SCALE_FREE_EXPONENT):
        return None
    return np.ldexp(1.0, expo.astype(int))


@dataclass(frozen=True)
class _ScaledDerivatives:
    llf: float
    score: np.ndarray
    info: np.ndarray | None


class ScaledBackend:
    """A backend in rescaled coordinates :math:`\\tilde\\beta = \\beta S`.

    With :math:`\\tilde X = X S^{-1}` the linear predictors do not change; the score is
    :math:`\\tilde g = g S^{-1}` and the information :math:`S^{-1} \\mathcal{I} S^{-1}` (per
    equation block).  The wrapped backend still sees the original coordinates, so any backend
    (in memory, chunked, Dask) can be wrapped without copying the data.

    Parameters
    ----------
    inner
        A backend with ``derivatives(beta, hessian)``.
    scale : ndarray, shape (p,)
        Powers of two (see :func:`column_scale`).
    J : int
        Number of equations.
    """

    def __init__(self, inner, scale: np.ndarray, J: int):
        self.inner = inner
        self.scale = np.asarray(scale, dtype=np.float64)
        self.J = int(J)
        self._flat = np.tile(self.scale, self.J)

    def to_original(self, beta_scaled: np.ndarray) -> np.ndarray:
        return np.asarray(beta_scaled) / self.scale

    def to_scaled(self, beta: np.ndarray) -> np.ndarray:
        return np.asarray(beta) * self.scale

    def derivatives(self, beta, hessian=True):
        d = self.inner.derivatives(self.to_original(beta), hessian=hessian)
        info = None
        if d.info is not None:
            info = d.info / np.outer(self._flat, self._flat)
        return _ScaledDerivatives(d.llf, d.score / self.scale, info)

    @property
    def n(self):
        return getattr(self.inner, "n", None)

    @property
    def sample_rows(self):
        return getattr(self.inner, "sample_rows", None)

    @property
    def approx_information(self):
        """The inner backend's approximate information, rescaled (``None`` if it has none)."""
        inner = getattr(self.inner, "approx_information", None)
        if inner is None:
            return None

        def approx(beta):
            info = inner(self.to_original(beta))
            return None if info is None else info / np.outer(self._flat, self._flat)

        return approx

    def unscale_info(self, info_scaled: np.ndarray) -> np.ndarray:
        """Information in the original coordinates."""
        return info_scaled * np.outer(self._flat, self._flat)

    def unscale_score(self, score_scaled: np.ndarray) -> np.ndarray:
        return np.asarray(score_scaled) * self.scale


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
    from . import solver
    from .exceptions import FitError, PerfectSeparationError
    from .separation import SeparationMonitor

    X = model.exog
    amax = model._column_absmax() if X.shape[0] else np.ones(X.shape[1])
    scale = _scale_from_absmax(amax)
    amax = np.where(np.isfinite(amax) & (amax > 0), amax, 1.0)
    if scale is not None:
        backend = ScaledBackend(backend, scale, model.J)
        beta0 = backend.to_scaled(beta0)
        callback = _unscaled_callback(callback, scale, model.J)
    to_unit = amax if scale is None else amax / scale
    monitor = None if separation == "ignore" else SeparationMonitor(model, separation, to_unit)
    try:
        sol = solver.newton(backend, beta0, options, disp=disp, callback=callback, monitor=monitor)
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
    from .results import MultinomialLogitResults

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
