"""L1 and elastic-net penalties: the penalty, a proximal Newton direction and the trimming of
coefficients that are zero at the optimum.

The fit maximises

.. math::

    \\ell(\\beta) - \\sum_i a_i \\lvert \\beta_i \\rvert - \\tfrac12 \\sum_i r_i \\beta_i^2

with per-coefficient weights :math:`a_i, r_i \\ge 0` (statsmodels' ``MNLogit.fit_regularized``
is :math:`r = 0`; elastic net with strength :math:`\\alpha` and mix ``L1_wt`` is
:math:`a = \\alpha\\,\\text{L1\\_wt}`, :math:`r = \\alpha (1 - \\text{L1\\_wt})`).  The objective
is concave but not differentiable where a penalised coefficient is 0, so the Newton loop of
:mod:`multilogit.solve.newton` runs with a *proximal* Newton direction
(:class:`ProximalNewton`; Lee, Sun & Saunders 2014): at :math:`\\beta` with the smooth part's
score :math:`g` and information :math:`H` (one pass over the rows, through the backend), the
next point solves the L1-penalised quadratic model

.. math::

    z = \\arg\\min_z \\; \\tfrac12 (z - \\beta)^\\top H (z - \\beta) - g^\\top (z - \\beta)
        + \\sum_i a_i \\lvert z_i \\rvert,

a problem in the :math:`J p` coefficients alone (:func:`proximal_point`: coordinate descent to
find the zeros, then the exact solve on the others, accepted when it satisfies the model's
optimality conditions).  The step :math:`z - \\beta` is halved while the objective decreases,
as Newton's.  Once the zero pattern settles this is Newton's method on the nonzero
coefficients, so the convergence is quadratic and the zeros are exact.

Conventions
-----------
As :mod:`multilogit.solve.objective`: ``beta`` of shape ``(J, p)``, flat vectors outcome-major.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..exceptions import FitError
from .directions import ExactCholesky, Proposal, cho_solve, cholesky
from .objective import Objective
from .state import NewtonState

__all__ = ["ElasticNetPenalty", "ProximalNewton", "proximal_point", "trim"]

# Coordinate-descent sweeps between two attempts at the exact solve on the nonzero set.
_SWEEPS = 3
# Rounds of (sweeps, exact solve) before the coordinate-descent point is returned as it is.
_MAX_ROUNDS = 200
# Slack of the optimality check of the exact solve, relative to the weights (rounding).
_KKT_SLACK = 1e-9


class ElasticNetPenalty:
    """:math:`P(\\beta) = \\sum a_i \\lvert \\beta_i \\rvert + \\tfrac12 \\sum r_i \\beta_i^2`.

    Unlike a smooth :class:`~multilogit.solve.objective.Penalty`, ``gradient`` and
    ``hessian`` are those of the smooth (ridge) part only: the objective's score is then
    the smooth part's score, which only :class:`ProximalNewton` knows how to use (the L1 part
    enters through its weights ``l1``).  ``value`` is the whole penalty, so the line
    search sees the true objective.

    Parameters
    ----------
    l1, l2 : ndarray, shape (J, p)
        The weights :math:`a` and :math:`r`, finite and nonnegative.
    """

    def __init__(self, l1: np.ndarray, l2: np.ndarray | None = None):
        self.l1 = np.array(l1, dtype=np.float64)
        self.l2 = np.zeros_like(self.l1) if l2 is None else np.array(l2, dtype=np.float64)
        for name, w in (("l1", self.l1), ("l2", self.l2)):
            if w.ndim != 2 or not np.all(np.isfinite(w) & (w >= 0)):
                raise ValueError(f"{name} weights must be a finite nonnegative (J, p) array")
        if self.l2.shape != self.l1.shape:
            raise ValueError("l1 and l2 weights must have the same shape")

    def rescaled(self, scale: np.ndarray, J: int) -> ElasticNetPenalty:
        """The same penalty in coordinates :math:`\\tilde\\beta = \\beta S`: weights
        :math:`a / s` and :math:`r / s^2`."""
        s = np.asarray(scale, dtype=np.float64)
        return type(self)(self.l1 / s, self.l2 / s**2)

    def value(self, beta: np.ndarray) -> float:
        beta = np.asarray(beta, dtype=np.float64)
        return float(np.sum(self.l1 * np.abs(beta)) + 0.5 * np.sum(self.l2 * beta**2))

    def gradient(self, beta: np.ndarray) -> np.ndarray:
        return self.l2 * np.asarray(beta, dtype=np.float64)

    def hessian(self, beta: np.ndarray) -> np.ndarray:
        return np.diag(self.l2.ravel())

    def __repr__(self) -> str:
        return f"ElasticNetPenalty(l1={self.l1!r}, l2={self.l2!r})"


def _soft(x: float, t: float) -> float:
    """:math:`\\operatorname{sign}(x) \\max(|x| - t, 0)`."""
    if x > t:
        return x - t
    if x < -t:
        return x + t
    return 0.0


def proximal_point(H: np.ndarray, g: np.ndarray, beta: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Minimise :math:`\\tfrac12 (z - \\beta)^\\top H (z - \\beta) - g^\\top (z - \\beta) +
    \\sum_i a_i |z_i|` over :math:`z` (all flat, ``H`` positive definite).

    Coordinate descent (soft-thresholding one coordinate at a time) finds which coordinates
    are 0; on the others, with their signs :math:`s`, the minimiser solves
    :math:`H_{FF} (z_F - \\beta_F) = g_F + H_{FZ} \\beta_Z - a_F s_F`.  That exact solution is
    returned once its signs agree and the zeros satisfy :math:`|(H(z - \\beta) - g)_i| \\le
    a_i`, the conditions that certify the minimum; coordinate descent alone converges only
    linearly.
    """
    n = len(beta)
    z = np.array(beta, dtype=np.float64, copy=True)
    u = np.zeros(n)  # H (z - beta)
    diag = np.diag(H).copy()
    pen = a > 0
    for _ in range(_MAX_ROUNDS):
        for _ in range(_SWEEPS):
            for i in range(n):
                zi = _soft(z[i] - (u[i] - g[i]) / diag[i], a[i] / diag[i])
                dz = zi - z[i]
                if dz != 0.0:
                    z[i] = zi
                    u += dz * H[:, i]
        free = (z != 0.0) | ~pen
        sign = np.sign(z)
        cand = np.zeros(n)
        if free.any():
            rhs = g[free] + H[np.ix_(free, ~free)] @ beta[~free] - a[free] * sign[free]
            cf = cholesky(H[np.ix_(free, free)])
            if cf is None:
                raise FitError("the information matrix is not positive definite")
            cand[free] = beta[free] + cho_solve(cf, rhs)
        on = free & pen
        if np.all(np.sign(cand[on]) == sign[on]):
            resid = H @ (cand - beta) - g
            zero = ~free
            if np.all(np.abs(resid[zero]) <= a[zero] * (1.0 + _KKT_SLACK)):
                return cand
    return z


class ProximalNewton(ExactCholesky):
    """Proximal Newton steps for an objective with an :class:`ElasticNetPenalty`.

    Each step is :math:`z - \\beta` with :math:`z` from :func:`proximal_point` on the exact
    information of the smooth part; its Newton decrement is :math:`\\delta^\\top H \\delta`
    (0 exactly at the optimum).  The loop's stopping rule then applies unchanged.
    """

    def start(self, objective: Objective, beta: np.ndarray) -> None:
        penalty = objective.penalty
        if not isinstance(penalty, ElasticNetPenalty):
            raise TypeError("ProximalNewton needs an objective with an ElasticNetPenalty")
        self.objective = objective
        self._l1 = penalty.l1.ravel()
        return None

    def direction(self, state: NewtonState) -> Proposal:
        H = state.current.info
        beta = state.beta.ravel()
        if cholesky(H) is None:
            raise FitError(
                "the information matrix is not positive definite at iteration "
                f"{state.iteration - 1}: the design is rank deficient"
            )
        z = proximal_point(H, state.gradient, beta, self._l1)
        delta = z - beta
        return Proposal(delta, float(delta @ H @ delta), exact=True)


TRIM_MODES = ("auto", "size", "off")


def trim(
    beta: np.ndarray,
    score: np.ndarray,
    l1: np.ndarray,
    mode: str = "auto",
    auto_trim_tol: float = 0.01,
    size_trim_tol: float = 1e-4,
    qc_tol: float = 0.03,
    stacklevel: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Set to 0 the coefficients that are 0 at the optimum, as statsmodels'
    ``fit_regularized`` does.

    At the optimum either :math:`|g_i| = a_i` and :math:`\\beta_i \\ne 0`, or
    :math:`|g_i| \\le a_i` and :math:`\\beta_i = 0`, with :math:`g` the smooth part's score.
    ``"auto"`` trims a penalised coefficient with :math:`(a_i - |g_i|) / a_i >`
    ``auto_trim_tol``, unless some :math:`(|g_i| - a_i) / a_i` exceeds ``qc_tol`` (the solve
    did not reach the optimum: a ``ConvergenceWarning``, nothing trimmed); ``"size"`` trims
    those below ``size_trim_tol`` in size; ``"off"`` none.  Unpenalised coefficients are never
    trimmed.  ``stacklevel`` places the warning as :func:`warnings.warn` does, counted from
    the caller of this function.

    Returns
    -------
    beta : ndarray
        With the trimmed coefficients exactly 0 (a copy).
    trimmed : ndarray of bool, shape of ``beta``
    """
    if mode not in TRIM_MODES:
        raise ValueError(f"trim_mode must be 'auto', 'size' or 'off'; got {mode!r}")
    beta = np.array(beta, dtype=np.float64, copy=True)
    g = np.abs(np.asarray(score, dtype=np.float64)).reshape(beta.shape)
    a = np.asarray(l1, dtype=np.float64).reshape(beta.shape)
    pen = a > 0
    trimmed = np.zeros(beta.shape, dtype=bool)
    if mode == "auto":
        with np.errstate(divide="ignore", invalid="ignore"):
            excess = np.where(pen, (g - a) / a, -np.inf)
            margin = np.where(pen, (a - g) / a, -np.inf)
        if np.any(excess > qc_tol):
            from ..exceptions import ConvergenceWarning  # defining it imports statsmodels

            warnings.warn(
                f"the score exceeds the L1 weight by more than qc_tol={qc_tol} for "
                f"{int(np.sum(excess > qc_tol))} coefficient(s): the optimum was not reached, "
                "so nothing is trimmed (trim_mode='size' still trims)",
                ConvergenceWarning,
                stacklevel=stacklevel + 1,
            )
        else:
            trimmed = margin > auto_trim_tol
    elif mode == "size":
        trimmed = pen & (np.abs(beta) < size_trim_tol)
    beta[trimmed] = 0.0
    return beta, trimmed
