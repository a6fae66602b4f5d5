"""Newton direction strategies: how the solver gets from the score to a step.

A strategy answers, at each iteration, four questions of the loop in
:mod:`multilogit.solve.newton`:

1. ``needs_information`` (attribute): must the evaluation at each new iterate carry the exact
   information?  ``True`` for a strategy that solves with it; ``False`` while it works without.
2. ``information(state)``: the curvature matrix this iteration will use (shown to the monitor,
   which may stop the fit before any work on the direction), or ``None`` if it uses none.
3. ``direction(state)``: a :class:`Proposal`, the step :math:`\\delta` with its Newton
   decrement :math:`g^\\top \\delta` and how far the loop may trust it (may a small step end the
   fit, at which tolerance, with or without taking it).
4. ``accepted(state, proposal, small)`` after a successful line search and
   ``rejected(state, proposal, small)`` after a failed one: a chance to change course (e.g.
   leave an approximate phase); ``rejected`` returns ``True`` to retry from the same point.
5. optionally, ``information_after(small)``: will the next iterate need the exact
   information if the full step of this iteration's proposal (``small``: within the tolerance)
   is taken?  The loop then evaluates the full step's point with the information in the same
   pass over the rows, instead of a second pass once the step is accepted (without the method:
   never).

plus ``start(objective, beta)`` before the first evaluation and ``info_rows`` (attribute),
the rows behind the information, for the iteration log.

A matrix-free Newton-CG strategy fits the same interface: ``start`` keeps the objective,
``needs_information`` is ``False`` and ``information`` returns ``None`` (the loop then computes
the exact information once, at the estimates, for the covariance); ``direction`` runs conjugate
gradients on :math:`\\mathcal{I}\\delta = g` using only Hessian-vector products
:math:`v \\mapsto \\mathcal{I} v` (one kernel pass over the rows each, plus the penalty's
product), stops at a residual :math:`\\lVert g - \\mathcal{I}\\delta\\rVert \\le \\eta
\\lVert g\\rVert` with a forcing term :math:`\\eta` that shrinks with :math:`\\lVert g\\rVert`,
and reports ``exact=True`` once :math:`\\eta` is below the Newton tolerance; negative curvature
met along the way ends the inner solve with the last positive-curvature iterate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
from scipy import linalg

from ..exceptions import FitError
from .objective import Objective
from .state import NewtonState

__all__ = ["DirectionStrategy", "ExactCholesky", "Proposal", "SampledThenExact"]

# The sampled phase stops at this fraction of ``tol``: its last step leaves an error of about
# the convergence rate times that step, well below ``tol``, before the one exact information.
APPROX_TOL_FACTOR = 1e-1
# A full sampled step that shrinks the Newton decrement by less than this factor: the sample
# is a poor stand-in for the data (a good one gives a few thousandths), switch to exact.
SLOW_RATE = 0.25
# A sampled information is recomputed unless the last step was full and moved no parameter by
# more than this (relative to 1 + |beta|).
REUSE_STEP = 1e-3


@dataclass(frozen=True)
class Proposal:
    """A search direction and how far the loop may trust it.

    Attributes
    ----------
    delta : ndarray, shape (J p,)
        The full step (flat, outcome-major).
    decrement : float
        The Newton decrement :math:`g^\\top \\delta`.
    exact : bool
        Whether ``delta`` is the exact Newton step: only then does a step below the tolerance
        end the fit.
    tol_factor : float
        The stopping rule's tolerance for this direction, relative to ``NewtonOptions.tol``.
    in_place : bool
        A small step ends the fit *without* being taken: the information was evaluated at the
        current point, after an approximate phase, so the estimates and their standard errors
        come from one point.
    """

    delta: np.ndarray
    decrement: float
    exact: bool = True
    tol_factor: float = 1.0
    in_place: bool = False


@runtime_checkable
class DirectionStrategy(Protocol):
    """The interface of a direction strategy (see the module docstring)."""

    needs_information: bool
    info_rows: float

    def start(self, objective: Objective, beta: np.ndarray) -> None: ...

    def information(self, state: NewtonState) -> np.ndarray | None: ...

    def direction(self, state: NewtonState) -> Proposal: ...

    def accepted(self, state: NewtonState, proposal: Proposal, small: bool) -> None: ...

    def rejected(self, state: NewtonState, proposal: Proposal, small: bool) -> bool: ...


def cholesky(info: np.ndarray):
    """The upper Cholesky factor of ``info`` for :func:`scipy.linalg.cho_solve`, or ``None``
    if ``info`` is not (numerically) positive definite or not finite."""
    try:
        return linalg.cho_factor(info, lower=False, check_finite=True)
    except (linalg.LinAlgError, ValueError):
        return None


class ExactCholesky:
    """Newton's method: the exact information at every iterate, solved by Cholesky.

    .. math:: \\delta = \\mathcal{I}(\\beta)^{-1} g(\\beta)

    Convergence is quadratic near the optimum.  The information costs a pass over the rows
    that forms :math:`J(J+1)/2` blocks of :math:`X^\\top W X`, far more than the score.
    """

    needs_information = True
    objective: Objective | None = None

    def start(self, objective: Objective, beta: np.ndarray) -> None:
        self.objective = objective

    @property
    def info_rows(self) -> float:
        return math.nan if self.objective is None else self.objective.n_rows

    def information(self, state: NewtonState) -> np.ndarray | None:
        return state.current.info

    def direction(self, state: NewtonState) -> Proposal:
        cf = cholesky(state.current.info)
        if cf is None:
            raise FitError(
                "the information matrix is not positive definite at iteration "
                f"{state.iteration - 1}: the design may be rank deficient or the data separated"
            )
        g = state.gradient
        delta = linalg.cho_solve(cf, g)
        return Proposal(delta, float(g @ delta))

    def accepted(self, state: NewtonState, proposal: Proposal, small: bool) -> None:
        pass

    def rejected(self, state: NewtonState, proposal: Proposal, small: bool) -> bool:
        return False

    def information_after(self, small: bool) -> bool:
        return True


class SampledThenExact:
    """The information of a subsample first, then the exact information (``hessian="auto"``).

    While sampled, each iteration costs a few score passes: the direction solves with the
    backend's ``approx_information`` (the information of a fixed subsample of rows, scaled to
    the data), so convergence is linear at a rate near the sample's relative error.  Near the
    optimum the information barely moves between iterations, far less than that error, so once
    a full step moves no coefficient by more than ``reuse_step`` (relative to
    :math:`1 + |\\beta|`) the last matrix and its factor are kept (a chord step).

    The sampled phase ends

    * when its step is below ``tol_factor * tol``: the exact information is evaluated once at
      the new point, and if its Newton step is within ``tol`` the fit stops there (in place), so
      the estimates are where the exact information was evaluated;
    * when a full step shrank the decrement by less than ``slow_rate``, or the sampled matrix is
      not positive definite, or no step along its direction raises the objective: the sample
      does not stand for the data, so the exact information takes over at the current point.

    After that it is :class:`ExactCholesky`.  Without an approximate information (a backend
    without one, or data too small for a subsample) it is :class:`ExactCholesky` throughout.

    Parameters
    ----------
    tol_factor, slow_rate, reuse_step : float
    """

    def __init__(
        self,
        tol_factor: float = APPROX_TOL_FACTOR,
        slow_rate: float = SLOW_RATE,
        reuse_step: float = REUSE_STEP,
    ):
        self.tol_factor = float(tol_factor)
        self.slow_rate = float(slow_rate)
        self.reuse_step = float(reuse_step)
        self.exact_strategy = ExactCholesky()
        self.objective: Objective | None = None
        self.sampled = False

    def start(self, objective: Objective, beta: np.ndarray) -> None:
        self.objective = objective
        self.exact_strategy.start(objective, beta)
        # The matrix for the first iteration, evaluated here: its absence decides the phase.
        self._info = objective.approx_information(beta)
        self.sampled = self._info is not None
        self._fresh = True
        self._confirming = False

    @property
    def needs_information(self) -> bool:
        return not self.sampled

    @property
    def info_rows(self) -> float:
        if self.objective is None:
            return math.nan
        return self.objective.sample_rows if self.sampled else self.objective.n_rows

    def _leave_sampled(self, state: NewtonState | None) -> None:
        """Go on with the exact information; evaluate it at the current point if ``state``."""
        self.sampled, self._confirming = False, True
        if state is not None:
            state.current = self.objective.evaluate(state.beta, hessian=True)

    def information(self, state: NewtonState) -> np.ndarray | None:
        if not self.sampled:
            return self.exact_strategy.information(state)
        if not (self._fresh or (state.full_step and state.moved <= self.reuse_step)):
            self._info = self.objective.approx_information(state.beta)
        self._fresh = False
        return self._info

    def direction(self, state: NewtonState) -> Proposal:
        if self.sampled:
            cf = cholesky(self._info)
            if cf is not None:
                g = state.gradient
                delta = linalg.cho_solve(cf, g)
                dec = float(g @ delta)
                # Linear convergence at a poor rate means the sample does not stand for the data.
                if not (state.full_step and dec > self.slow_rate * state.last_decrement):
                    return Proposal(delta, dec, exact=False, tol_factor=self.tol_factor)
            self._leave_sampled(state)
        proposal = self.exact_strategy.direction(state)
        if self._confirming:
            self._confirming = False
            proposal = Proposal(proposal.delta, proposal.decrement, in_place=True)
        return proposal

    def accepted(self, state: NewtonState, proposal: Proposal, small: bool) -> None:
        if self.sampled and small:
            self._leave_sampled(None)  # the loop evaluates the new point with the information

    def information_after(self, small: bool) -> bool:
        # A small sampled step ends the sampled phase: the exact information is next.
        return not self.sampled or small

    def rejected(self, state: NewtonState, proposal: Proposal, small: bool) -> bool:
        if not self.sampled:
            return False
        # No progress along the sampled direction: rounding level, or a poor sample.
        self._leave_sampled(None)
        return True
