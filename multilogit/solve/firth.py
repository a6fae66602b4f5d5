"""Firth's bias reduction: the Jeffreys-prior penalty and the scoring iteration that solves it.

For a canonical-link model such as the multinomial logit, mean bias reduction (Firth 1993;
Kosmidis & Firth 2011, R's ``brglm2::brmultinom(type = "AS_mean")``) maximises the penalised
log-likelihood

.. math::

    \\ell^*(\\beta) = \\ell(\\beta) + \\tfrac12 \\log\\det \\mathcal{I}(\\beta),

whose score is the bias-reducing adjusted score
:math:`g + \\tfrac12 \\nabla \\log\\det\\mathcal{I}`.  The estimates are finite even when the data
are separated, and their first-order bias is removed.

The Hessian of the penalty couples every pair of rows, so, as brglm2 does, each step solves
with the likelihood's information alone: :math:`\\delta = \\mathcal{I}^{-1} g^*` (quasi Fisher
scoring).  The iteration converges linearly, at a rate near 0 for ordinary data and slower when
the penalty carries the fit (separated data), so the stopping rule allows for the rate: it
stops when the predicted remaining change, not the last step, is within the tolerance.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from ..engine.jeffreys import chunk_logdet_gradient, chunk_third_cumulants
from ..engine.threads import single_threaded_blas
from ..exceptions import FitError
from .directions import ExactCholesky, Proposal, cho_solve, cholesky
from .objective import Objective
from .state import NewtonState

__all__ = ["FirthScoring", "JeffreysPenalty", "MedianAdjustment", "logdet"]


def logdet(info: np.ndarray) -> float:
    """:math:`\\log\\det` of a positive definite ``info`` (``-inf`` when it is not)."""
    cf = cholesky(info)
    if cf is None:
        return -math.inf
    return 2.0 * float(np.sum(np.log(np.diag(cf[0]))))


def _inverse(info: np.ndarray):
    """The Cholesky factor of ``info`` and its inverse, or ``None`` where it is not positive
    definite (the adjusted score is not defined there: the line search rejects the point)."""
    cf = cholesky(info)
    if cf is None:
        return None
    return cf, cho_solve(cf, np.eye(len(info)))


def _row_sums(backend, kernels, beta: np.ndarray, cov: np.ndarray) -> list[np.ndarray]:
    """The sums over the rows of ``kernel(X, weights, beta, cov)`` for each kernel, added in
    row order (so they do not depend on timing)."""
    # The chunks' products are small: BLAS threads would only contend.
    with single_threaded_blas():
        parts = backend.reduce(
            lambda c: [kernel(c.X, c.weights, beta, cov) for kernel in kernels], frames=False
        )
    totals = [None] * len(kernels)
    for part in parts:
        totals = [p if t is None else t + p for t, p in zip(totals, part, strict=True)]
    return totals


class JeffreysPenalty:
    """:math:`P(\\beta) = -\\tfrac12 \\log\\det \\mathcal{I}(\\beta)` on a backend's rows.

    A :class:`~multilogit.solve.objective.DataPenalty`: each evaluation factors the
    information the objective computed at ``beta`` and adds one pass over the rows for the
    gradient (:func:`~multilogit.engine.jeffreys.chunk_logdet_gradient`).  All quantities
    are in the backend's coordinates (a column rescaling only adds a constant to ``P``).

    Parameters
    ----------
    backend
        The rows of the fit; its ``reduce`` hands out chunks with ``X`` and ``weights``.
    """

    needs_information = True

    def __init__(self, backend):
        self.backend = backend

    def terms(self, beta: np.ndarray, derivatives) -> tuple[float, np.ndarray, None]:
        factored = _inverse(derivatives.info)
        if factored is None:
            return math.inf, np.full(beta.shape, np.nan), None
        cf, cov = factored
        beta = np.asarray(beta, dtype=np.float64)
        (grad,) = _row_sums(self.backend, [chunk_logdet_gradient], beta, cov)
        half_logdet = float(np.sum(np.log(np.diag(cf[0]))))
        return -half_logdet, -0.5 * grad, None


class MedianAdjustment:
    """Median bias reduction (Kenne Pagui, Salvan and Sartori 2017; R's
    ``brglm2::brmultinom(type = "AS_median")``): the root of the adjusted score

    .. math::

        g^\\dagger = g + \\tfrac12 \\nabla \\log\\det\\mathcal{I} + \\mathcal{I}\\, b, \\qquad
        b_t = -\\frac{1}{3\\, C_{tt}} \\sum_i w_i\\, \\kappa_{3,i}(z_{it}, z_{it}, z_{it}),

    with :math:`C = \\mathcal{I}^{-1}` and :math:`\\kappa_3` the multinomial third cumulants of
    :func:`~multilogit.engine.jeffreys.chunk_third_cumulants`.  Each estimate is, to third
    order, median unbiased; the estimates are equivariant under rescaling a column, not under
    every reparameterisation (the reference outcome matters).

    The adjusted score is not the gradient of a function, so as a
    :class:`~multilogit.solve.objective.DataPenalty` it supplies a merit function instead:
    the objective becomes :math:`-\\tfrac12 g^{\\dagger\\top} C g^\\dagger` (minus half the
    Newton decrement), which the scoring steps :math:`C g^\\dagger` increase to first order and
    whose maximum 0 is attained exactly at the roots; the line search halves steps against it.
    """

    needs_information = True

    def __init__(self, backend):
        self.backend = backend

    def terms(self, beta: np.ndarray, derivatives) -> tuple[float, np.ndarray, None]:
        info = derivatives.info
        factored = _inverse(info)
        if factored is None:
            return math.inf, np.full(beta.shape, np.nan), None
        cf, cov = factored
        beta = np.asarray(beta, dtype=np.float64)
        grad, cumulants = _row_sums(
            self.backend, [chunk_logdet_gradient, chunk_third_cumulants], beta, cov
        )
        b = -cumulants / (3.0 * np.diag(cov))
        adjustment = 0.5 * grad + (info @ b).reshape(beta.shape)
        adjusted = (np.asarray(derivatives.score) + adjustment).ravel()
        merit = 0.5 * float(adjusted @ cho_solve(cf, adjusted))
        # Objective = llf - penalty = -merit; the score less the gradient = the adjusted score.
        return float(derivatives.llf) + merit, -adjustment, None


# A contraction rate at or below this counts as fast: the last step then bounds the error.
_FAST_RATE = 0.5
# The predicted remaining change must be this fraction of ``tol``: linear convergence gains
# little per iteration near the end, and Newton's last step on the likelihood leaves about
# ``tol**2``, so this keeps bias-reduced estimates about as accurate (1e-11 at the default tol)
# for a few more iterations at the usual rates of 0.1 to 0.3.
_ACCURACY = 1e-3
# The stopping rule never tightens by more than this further factor.
_MIN_TOL_FACTOR = 1e-4


class FirthScoring(ExactCholesky):
    """Steps :math:`\\delta = \\mathcal{I}(\\beta)^{-1} g^*(\\beta)` with the likelihood's
    information :math:`\\mathcal{I}` and the penalised score :math:`g^*`.

    The convergence is linear with rate :math:`\\rho`, measured as the ratio of successive full
    steps; after a step :math:`\\delta` the remaining distance to the solution is about
    :math:`\\rho/(1-\\rho)\\,|\\delta|`, so the tolerance applied to the step is
    :math:`10^{-3}` times ``tol``, scaled further by :math:`(1-\\rho)/\\rho` when
    :math:`\\rho > 1/2`.  The information behind the covariance
    is the likelihood's at the estimates, as brglm2 reports it.
    """

    def start(self, objective: Objective, beta: np.ndarray) -> None:
        super().start(objective, beta)
        self._previous: float | None = None
        self._rate = 1.0

    def direction(self, state: NewtonState) -> Proposal:
        try:
            step = super().direction(state)
        except FitError as exc:
            raise FitError(
                f"{exc} (bias reduction keeps separated estimates finite, not unidentified ones)"
            ) from None
        delta = step.delta
        size = float(np.max(np.abs(delta) / (1.0 + np.abs(state.beta.ravel()))))
        if self._previous is not None and self._previous > 0:
            self._rate = size / self._previous
        rate = self._rate
        if rate <= _FAST_RATE:
            factor = 1.0
        elif rate < 1.0:
            factor = max((1.0 - rate) / rate, _MIN_TOL_FACTOR)
        else:
            factor = _MIN_TOL_FACTOR
        self._size = size
        return replace(step, tol_factor=_ACCURACY * factor)

    def accepted(self, state: NewtonState, proposal: Proposal, small: bool) -> None:
        # Only full steps measure the rate; a halved one restarts the measurement.
        self._previous = self._size if state.full_step else None
        if not state.full_step:
            self._rate = 1.0
