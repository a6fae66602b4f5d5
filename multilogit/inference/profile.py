"""Profile-likelihood confidence intervals (``conf_int(method="profile")``).

For the coefficient :math:`\\beta_r` the profile log-likelihood is the maximum over the other
coefficients with :math:`\\beta_r` held at :math:`t`,

.. math::

    \\ell_p(t) = \\max_{\\beta:\\ \\beta_r = t} \\ell(\\beta),

and the :math:`1 - \\alpha` interval is the set where the likelihood-ratio statistic stays below
the :math:`\\chi^2_1` quantile,

.. math::

    \\{t : 2\\,(\\ell(\\hat\\beta) - \\ell_p(t)) \\le \\chi^2_{1, 1-\\alpha}\\}
    = \\{t : |z(t)| \\le z_{1-\\alpha/2}\\}, \\qquad
    z(t) = \\operatorname{sign}(t - \\hat\\beta_r)\\sqrt{2\\,(\\ell(\\hat\\beta) - \\ell_p(t))} .

Its bounds are the roots of :math:`z(t) = \\pm z_{1-\\alpha/2}`: the signed root :math:`z` is
nearly linear in :math:`t`, so each side is bracketed by stepping out from the Wald bound with
a secant-like prediction, and the root found by Brent's method (:func:`scipy.optimize.brentq`)
to about :math:`10^{-12}` relative.  Each evaluation of :math:`\\ell_p` is a Newton solve over
the free coefficients (:class:`~multilogit.solve.pinned.Pinned`) through the fit's backend,
warm-started from the nearest point already on the profile and moved along its tangent
:math:`d\\beta_F/dt = -\\mathcal{I}_{FF}^{-1}\\mathcal{I}_{Fr}`, so it takes two or three
iterations and never copies the data.

For a bias-reduced fit (``method="firth"``) :math:`\\ell` is the penalised log-likelihood
:math:`\\ell + \\tfrac12\\log\\det\\mathcal{I}(\\beta)`, with the information of the whole model
at the constrained :math:`\\beta`: the profile penalised likelihood intervals of Heinze and
Schemper (2002), R's ``logistf``.

For a separated maximum-likelihood fit, :math:`\\ell(\\hat\\beta)` is the supremum of the
log-likelihood, approached along the recession direction :math:`d` the separation check found.
It is computed far along :math:`d` (where the separated rows' probabilities are 0 or 1 to
rounding), holding the directions the limiting log-likelihood is flat in
(``separation.null_space``, which holds :math:`d`) and maximising over the others.  Then

- a diverging coefficient's interval is infinite on the side it diverges to; on the other its
  profile is searched as above, every other coefficient free (a refit that finds the data
  still separated with it held gives NaN, with a warning);
- a coefficient that does not diverge but that the limit does not identify has
  :math:`(-\\infty, \\infty)`: moving along a flat direction reaches any value of it at the
  supremum;
- the others' intervals are the profiles of the limiting log-likelihood, the flat directions
  held.

References
----------
Venzon, D. J. and Moolgavkar, S. H. (1988). A method for computing profile-likelihood-based
confidence intervals. *Applied Statistics* 37, 87-94.
Heinze, G. and Schemper, M. (2002). A solution to the problem of separation in logistic
regression. *Statistics in Medicine* 21, 2409-2419.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import linalg, optimize

from ..engine.scaled import ScaledBackend, scale_from_absmax
from ..exceptions import DataError, FitError
from ..solve.directions import ExactCholesky, cho_solve, cholesky
from ..solve.firth import FirthScoring, JeffreysPenalty
from ..solve.newton import NewtonOptions, newton
from ..solve.pinned import Pinned
from . import distributions as stats

__all__ = ["profile_conf_int"]

# Brent's method stops at this relative width (of the coefficient's scale): the signed root is
# computed to about 1e-13 of its size, so tighter bounds would only chase rounding.
_XTOL = 1e-12
# Most steps out from the Wald bound before a side is declared unbounded or failed.
_MAX_EXPANSIONS = 60
# Stepping out: the next step is the secant's predicted distance to the root times
# _OVERSHOOT (so that the root is usually bracketed at once), kept between _MIN_GROWTH and
# _MAX_GROWTH times the last step.
_MIN_GROWTH, _MAX_GROWTH, _OVERSHOOT = 0.25, 8.0, 1.1
# A likelihood-ratio statistic that rises by less than this over a doubling of the distance
# from the estimate has levelled off: the profile approaches its supremum below the quantile.
_FLAT = 1e-9
# Separated fits: the flagged coefficients start this far along the recession direction (in
# coordinates where every column's largest magnitude is 1), doubled until the limit's maximum
# stops changing, so that the separated rows' probabilities are 0 or 1 to rounding.
_LIMIT_START, _LIMIT_DOUBLINGS = 64.0, 40
# The rounding allowance of the objective, relative to 1 + |objective|.
_ROUNDING = 1e-12

_METHODS = ("newton", "firth")


class _RefitFailed(Exception):
    """A constrained solve did not converge: the bound it served is reported as NaN."""


@dataclass(frozen=True)
class _Point:
    t: float
    beta: np.ndarray  # (J, p), working coordinates
    value: float
    info: np.ndarray | None


class _Profiler:
    """The profile of one fit's objective, in the working coordinates of its backend.

    Parameters
    ----------
    res : MultinomialLogitResults
    """

    def __init__(self, res):
        model = res.model
        method = res.method
        if method not in _METHODS:
            raise ValueError(
                f"profile intervals need a likelihood to profile; a fit with method={method!r} "
                "has none: use method='wald'"
            )
        if model.weights is not None:
            raise DataError(
                "profile intervals need a likelihood; a model with sampling weights has a "
                "pseudo-likelihood: use method='wald' (with a robust covariance)"
            )
        beta = np.asarray(res.params.to_numpy(dtype=np.float64).T)  # (J, p), NaN if aliased
        self.keep = ~np.all(np.isnan(beta), axis=0)
        if not self.keep.all():
            # The aliased columns are not estimated: profile the model without them.
            model = model.submodel(columns=self.keep)
        beta = beta[:, self.keep]
        backend = model.backend
        lo, hi = backend.column_range() if backend.n else (None, None)
        amax = np.ones(beta.shape[1]) if lo is None else np.maximum(hi, -lo)
        scale = scale_from_absmax(amax)
        amax = np.where(np.isfinite(amax) & (amax > 0), amax, 1.0)
        self.scale = np.ones(beta.shape[1]) if scale is None else scale
        if scale is not None:
            backend = ScaledBackend(backend, scale, model.J)
        self.backend = backend
        self.unit = amax / self.scale  # working coefficient x unit = coefficient in unit coords
        self.firth = method == "firth"
        # The fit's stopping rule, but never looser than the default: the bounds are meant to
        # be accurate whatever accuracy the estimates were asked for, and warm-started refits
        # need few iterations.
        opts = res.fit_options
        self.options = NewtonOptions(
            maxiter=max(int(opts.get("maxiter", 100)), NewtonOptions.maxiter),
            tol=min(float(opts.get("tol", NewtonOptions.tol)), NewtonOptions.tol),
            hessian="exact",
        )
        self.beta_hat = beta * self.scale
        self.points: dict[int, list[_Point]] = {}
        self.failed = False
        self._top(res)

    # -- constrained solves -----------------------------------------------------------------

    def pinning(self, pinned: np.ndarray, held: bool) -> Pinned:
        """The direction strategy holding the coefficients ``pinned`` and, with ``held``, the
        separated fit's flat directions."""
        inner = FirthScoring() if self.firth else ExactCholesky()
        return Pinned(inner, pinned, self.flat if held else None)

    def solve(self, beta0: np.ndarray, pinning: Pinned) -> _Point:
        """Maximise the objective from ``beta0`` with ``pinning``'s coefficients held."""
        penalty = JeffreysPenalty(self.backend) if self.firth else None
        try:
            with warnings.catch_warnings():
                # Non-convergence is reported by the bound it affects, not once per solve.
                warnings.simplefilter("ignore")
                sol = newton(self.backend, beta0, self.options, direction=pinning, penalty=penalty)
        except FitError as exc:
            raise _RefitFailed(str(exc)) from None
        if not sol.converged:
            raise _RefitFailed(sol.message)
        return _Point(math.nan, sol.beta, float(sol.llf), sol.info)

    def _top(self, res) -> None:
        """The maximum of the objective (the supremum for a separated fit) and the Wald
        standard errors there, in working coordinates."""
        J, p = self.beta_hat.shape
        none = np.zeros(J * p, dtype=bool)
        self.flagged = none
        self.flat = None  # the separated limit's flat directions, working coordinates
        self.sides = {}  # flat index -> {side: bound} known without a search
        sep = res.separation if not self.firth else None
        if sep is None:
            try:
                self.top = self.solve(self.beta_hat, self.pinning(none, False))
            except _RefitFailed as exc:
                raise FitError(
                    "profile intervals need the maximum of the likelihood, which a refit from "
                    f"the estimates did not reach: {exc}"
                ) from None
        else:
            self.flagged = np.asarray(sep.params, dtype=bool)[:, self.keep].ravel()
            direction = np.asarray(sep.direction, dtype=np.float64)[:, self.keep] * self.scale
            for k in np.flatnonzero(self.flagged):
                d = direction.ravel()[k]
                # Diverging: unbounded on its side.  Not identified in the limit: the
                # profile is the supremum everywhere (move along a flat direction to any t).
                self.sides[k] = (
                    {-1: -math.inf, 1: math.inf} if d == 0 else {int(np.sign(d)): d * math.inf}
                )
            null = sep.null_space
            if null is None:
                null = direction[:, :, None]
            null = np.asarray(null, dtype=np.float64)[:, self.keep, :]
            self.flat = (null * self.scale[None, :, None]).reshape(J * p, -1)
            try:
                self.top = self._limit(direction)
            except _RefitFailed:
                self.top = None
                return
        # Wald standard errors within the complement of the held directions.
        pin = self.pinning(none, self.flat is not None)
        _, info = pin.project(np.zeros(J * p), self.top.info)
        cov = linalg.inv(info)
        if pin.basis is not None:
            cov -= pin.basis @ pin.basis.T
        self.se = np.sqrt(np.abs(np.diag(cov)))

    def _limit(self, direction: np.ndarray) -> _Point:
        """The supremum: far along the recession ``direction``, maximised across the flat
        directions; moved further until the maximum stops changing."""
        size = float(np.max(np.abs(direction * self.unit)))
        s = _LIMIT_START / size
        pin = self.pinning(np.zeros(direction.size, dtype=bool), True)
        last = None
        for _ in range(_LIMIT_DOUBLINGS):
            point = self.solve(self.beta_hat + s * direction, pin)
            if last is not None and abs(point.value - last.value) <= _ROUNDING * (
                1.0 + abs(point.value)
            ):
                return point
            last, s = point, 2.0 * s
        raise _RefitFailed("the log-likelihood does not level off along the separation")

    def value(self, r: int, t: float, pin: Pinned, base: _Point) -> float:
        """:math:`\\ell_p(t)` for flat coefficient ``r`` (working coordinates) with ``pin``'s
        coefficients held; started from the nearest point already on this profile (``base``
        for the first)."""
        pts = self.points.setdefault(r, [])
        if pts:
            base = min(pts, key=lambda pt: abs(pt.t - t))
            if base.t == t:
                return base.value
        beta0 = np.array(base.beta, dtype=np.float64, copy=True)
        flat = beta0.ravel()
        if base.info is not None:
            # Along the profile's tangent from there, e_r - x with x the constrained Newton
            # step for the score I e_r.  (Skipped where the projected information is not
            # positive definite: near a separated fit's limit, where the plain start serves.)
            g, info = pin.project(base.info[:, r], base.info)
            cf = cholesky(info)
            if cf is not None:
                slope = -cho_solve(cf, g)
                if np.all(np.isfinite(slope)):
                    flat += (t - flat[r]) * slope
        flat[r] = t
        point = self.solve(beta0, pin)
        pts.append(_Point(t, point.beta, point.value, point.info))
        return point.value

    # -- the root search --------------------------------------------------------------------

    def bound(self, r: int, side: int, q: float) -> float:
        """The bound on ``side`` (-1 lower, +1 upper) of flat coefficient ``r``, working
        coordinates."""
        known = self.sides.get(r, {})
        if side in known:
            return known[side]
        if self.top is None:
            self.failed = True
            return math.nan
        top = self.top.value
        only_r = np.zeros_like(self.flagged)
        only_r[r] = True
        if self.flagged[r]:
            # A diverging coefficient, on its finite side: the others move freely, from the
            # estimates where the fit stopped; the statistic is 0 in the limit, so every
            # finite t lies on this side of it.
            pin = self.pinning(only_r, False)
            start = _Point(math.nan, self.beta_hat, math.nan, None)
            origin = float(self.beta_hat.ravel()[r])
            step = 1.0 / self.unit[r % self.beta_hat.shape[1]]

            def sign(t):
                return side

        else:
            pin = self.pinning(only_r, self.flat is not None)
            start = self.top
            origin = float(self.top.beta.ravel()[r])
            step = self.se[r] if np.isfinite(self.se[r]) and self.se[r] > 0 else 1.0

            def sign(t):
                return 1.0 if t >= origin else -1.0

        def z(t: float) -> float:
            lr = 2.0 * (top - self.value(r, t, pin, start))
            if lr < -8.0 * _ROUNDING * (1.0 + abs(top)):
                raise _RefitFailed("a constrained maximum exceeds the maximum")
            return sign(t) * math.sqrt(max(lr, 0.0))

        z0 = z(origin) if self.flagged[r] else 0.0
        return self._search(side, q, origin, z0, step, z)

    def _search(self, side: int, q: float, origin: float, z0: float, step: float, z) -> float:
        """The root of ``side * z(t) = q`` on ``side`` of ``origin`` (where ``z`` is ``z0``):
        bracketed by stepping out (first by ``q * step``, then as the secant through the last
        two points predicts, with some overshoot), then found by Brent's method.  ``inf`` on
        that side when the statistic levels off below the quantile far out."""
        inside, z_in = origin, z0
        if side * z_in >= q:
            # The start is already outside (a diverging coefficient's stopped estimate):
            # walk back towards the limit until inside.
            d = step
            for _ in range(_MAX_EXPANSIONS):
                t = inside - side * d
                if side * z(t) < q:
                    return self._brent(side, q, t, inside, z)
                inside, d = t, 2.0 * d
            return math.nan
        d = q * step
        for _ in range(_MAX_EXPANSIONS):
            t = inside + side * d
            z_t = z(t)
            if side * z_t >= q:
                return self._brent(side, q, inside, t, z)
            rise = z_t**2 - z_in**2
            if rise <= _FLAT * (1.0 + z_t**2) and abs(t - origin) > 1e3 * step:
                return side * math.inf  # levelled off below the quantile
            gain = side * (z_t - z_in)
            if gain > 0:
                grow = min(max(_OVERSHOOT * (q - side * z_t) / gain, _MIN_GROWTH), _MAX_GROWTH)
            else:
                grow = _MAX_GROWTH
            inside, z_in, d = t, z_t, d * grow
        return side * math.inf if z_in**2 < q**2 else math.nan

    @staticmethod
    def _brent(side, q, inside, outside, z) -> float:
        lo, hi = sorted((inside, outside))
        xtol = _XTOL * max(abs(lo), abs(hi), abs(hi - lo))
        return optimize.brentq(lambda t: side * z(t) - q, lo, hi, xtol=xtol, rtol=1e-15)

    def interval(self, r: int, q: float) -> tuple[float, float]:
        out = []
        for side in (-1, 1):
            try:
                out.append(self.bound(r, side, q))
            except _RefitFailed:
                self.failed = True
                out.append(math.nan)
        k = r % self.beta_hat.shape[1]
        return out[0] / self.scale[k], out[1] / self.scale[k]

    def release(self) -> None:
        release = getattr(self.backend, "release", None)
        if release is not None:
            release()


def _selection(res, terms) -> list[tuple]:
    """The requested ``(outcome, term)`` pairs, in the flat order."""
    index = list(res.cov_params().index)
    if terms is None:
        return index
    if isinstance(terms, (str, tuple)):
        terms = [terms]
    if not isinstance(terms, Iterable):
        raise TypeError(
            f"terms must be a term name, an (outcome, term) pair or a list; got {terms!r}"
        )
    names = set(res.model.exog_names)
    wanted, unknown = set(), []
    for item in terms:
        if isinstance(item, tuple) and item in index:
            wanted.add(item)
        elif isinstance(item, str) and item in names:
            wanted.update(pair for pair in index if pair[1] == item)
        else:
            unknown.append(item)
    if unknown:
        raise ValueError(
            f"unknown term(s) {', '.join(map(repr, unknown))}: give term names "
            f"({', '.join(map(repr, res.model.exog_names))}) or (outcome, term) pairs"
        )
    return [pair for pair in index if pair in wanted]


def profile_conf_int(res, alpha: float = 0.05, terms=None) -> pd.DataFrame:
    """Profile-likelihood confidence intervals (see the module docstring for the method).

    Parameters
    ----------
    res : MultinomialLogitResults
        A maximum-likelihood or bias-reduced (``method="firth"``) fit.
    alpha : float
        1 - the coverage, in (0, 1).
    terms : str, tuple or list of them, optional
        Term names (every outcome's coefficient of each) or ``(outcome, term)`` pairs; default
        all.  Each bound costs several constrained refits.

    Returns
    -------
    DataFrame
        Indexed by ``(outcome, term)`` in the flat order, columns ``lower`` and ``upper``;
        ``-inf``/``inf`` where the profile never reaches the quantile (separated maximum
        likelihood fits), NaN for aliased coefficients and bounds whose refits failed (with a
        warning).
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1); got {alpha!r}")
    if getattr(res, "method", "newton") == "firth-median":
        raise DataError(
            "median bias reduction maximises no likelihood, so it has no profile intervals: "
            "use Wald intervals, or method='firth' for profile penalised-likelihood intervals"
        )
    if getattr(res, "penalty", None) is not None:
        raise DataError(
            "profile intervals of penalised fits are not available: the profile of the "
            "penalised likelihood is not a likelihood-ratio interval"
        )
    pairs = _selection(res, terms)
    q = float(stats.norm.ppf(1.0 - alpha / 2.0))
    outcomes = list(res.model.eq_outcomes)
    names = list(res.model.exog_names)
    profiler = _Profiler(res)
    # Flat index of each kept column in the profiled (aliased columns dropped) model.
    position = np.cumsum(profiler.keep) - 1
    p = int(profiler.keep.sum())
    rows = []
    try:
        for outcome, term in pairs:
            j, k = outcomes.index(outcome), names.index(term)
            if not profiler.keep[k]:
                rows.append((math.nan, math.nan))
                continue
            rows.append(profiler.interval(j * p + int(position[k]), q))
    finally:
        profiler.release()
    if profiler.failed:
        warnings.warn(
            "some profile-likelihood bounds could not be computed: a constrained refit did not "
            "converge (on separated data, the data may stay separated with the coefficient "
            "held); they are NaN",
            RuntimeWarning,
            stacklevel=3,
        )
    index = pd.MultiIndex.from_tuples(pairs, names=["outcome", "term"])
    return pd.DataFrame(rows, index=index, columns=["lower", "upper"], dtype=np.float64)
