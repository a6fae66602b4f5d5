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

6. optionally, for a strategy without the information: ``final_information`` (attribute,
   default ``True``), whether the loop forms the exact information at the estimates;
   ``product_bytes`` (attribute), whether the loop's evaluations keep what Hessian-vector
   products at their point need (``Evaluation.products``), up to that many bytes; and
   ``cg_iterations`` (attribute), the products behind the last direction, which adds a column
   to the iteration log.

plus ``start(objective, beta)`` before the first evaluation, which may return a better start
(e.g. the end of a warm start on a row subsample) or ``None``, and ``info_rows`` (attribute),
the rows behind the information, for the iteration log.

The matrix-free Newton-CG strategy (:class:`~multilogit.solve.conjugate.NewtonCG`) fits the
same interface: ``start`` keeps the objective, ``needs_information`` is ``False`` and
``information`` returns ``None`` (the loop then computes the exact information once, at the
estimates, for the covariance, when it fits the memory budget); ``direction`` runs
preconditioned conjugate gradients on :math:`\\mathcal{I}\\delta = g` using only
Hessian-vector products :math:`v \\mapsto \\mathcal{I} v` (one kernel pass over the rows each,
plus the penalty's product), stops at a relative residual :math:`\\eta` that shrinks with
:math:`\\lVert g\\rVert`, and solves the last step (within the tolerance) to rounding level;
``rejected`` retries a loosely solved direction once, tightly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from ..engine.threads import small_dense_blas
from ..exceptions import FitError
from ..lazy import lazy_module
from .acceleration import AndersonAcceleration
from .objective import Objective, halve_step
from .state import NewtonState

# Imported at the first factorisation, not with multilogit (see multilogit.lazy).
linalg = lazy_module("scipy.linalg")

__all__ = ["DirectionStrategy", "ExactCholesky", "Proposal", "SampledThenExact"]

# The sampled phase stops at this fraction of ``tol`` if it has not handed over before: its
# last step leaves an error of about the convergence rate times that step, well below ``tol``.
APPROX_TOL_FACTOR = 1e-1
# A full sampled step that shrinks the Newton decrement by less than this factor: the sample
# is a poor stand-in for the data (a good one gives a few thousandths), switch to exact.
SLOW_RATE = 0.25
# A sampled information is recomputed unless the last step was full and moved no parameter by
# more than this (relative to 1 + |beta|).
REUSE_STEP = 1e-3
# The sampled phase may hand over to the exact information once the point its step reaches is
# predicted within sqrt(SWITCH_FACTOR * tol) of the MLE (relative to 1 + |beta|): Newton's
# quadratic convergence takes one exact step from there to within SETTLE_FACTOR * tol.
SWITCH_FACTOR = 1e-2
# An exact step within SETTLE_FACTOR * tol ends the fit, taken without a new evaluation: the
# information at its start stands for the one at its end to about that relative accuracy, so
# the standard errors agree with exact Newton's to about 1e-10 (measured: 1e-12 to 1e-10 on
# 1e5 to 1e6 rows), far below any printed digit; a tenth of that saves about a pass on
# smaller data.
SETTLE_FACTOR = 1e-1
# The cost of a pass with the information over a score pass is modelled as
# 1 + (q^2 + p q) / (INFO_COST_PER_PARAM (p + q)) for q parameters and p design columns: the
# information's products against the score's, whose passes are bound by reading the design;
# about 4.6 for 80 parameters in 4 equations, as measured on two cores.
INFO_COST_PER_PARAM = 22.0
# The sampled information's relative error is about RATE_PRIOR * sqrt(params / sample rows)
# (the contraction of the error per sampled step), until a step has measured it.
RATE_PRIOR = 1.5
# The warm start: at most WARM_MAXITER Newton iterations on the subsample, ending at a step of
# WARM_TOL (relative to 1 + |beta|).  The subsample's MLE lies about sqrt(n / m) standard errors
# from the data's, so it is wanted to far less than that: a loose tolerance does.
WARM_MAXITER = 25
WARM_TOL = 1e-6
# The warm start is skipped when the start values are about as close to the data's MLE as the
# subsample's: their sampled decrement is at most WARM_SKIP times params * n / m (its mean at
# the data's MLE, where the subsample's score is noise).
WARM_SKIP = 4.0
# Step-halvings of one warm-start iteration: at most 40 trial steps.
WARM_MAX_HALVINGS = 39
# Sampled steps are Anderson-accelerated with this many earlier iterates
# (:mod:`multilogit.solve.acceleration`).
ANDERSON_MEMORY = 5


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
    settle : bool
        A step within the tolerance ends the fit taken *without* a new evaluation: the
        estimates move by it, the log-likelihood, score and information stay those at its
        start.  Only for exact steps below a fraction of ``tol``, where the two points differ
        far below any printed digit and the information at the start is accurate to about that
        fraction (relative).
    """

    delta: np.ndarray
    decrement: float
    exact: bool = True
    tol_factor: float = 1.0
    settle: bool = False


@runtime_checkable
class DirectionStrategy(Protocol):
    """The interface of a direction strategy (see the module docstring)."""

    needs_information: bool
    info_rows: float

    def start(self, objective: Objective, beta: np.ndarray) -> np.ndarray | None: ...

    def information(self, state: NewtonState) -> np.ndarray | None: ...

    def direction(self, state: NewtonState) -> Proposal: ...

    def accepted(self, state: NewtonState, proposal: Proposal, small: bool) -> None: ...

    def rejected(self, state: NewtonState, proposal: Proposal, small: bool) -> bool: ...


def cholesky(info: np.ndarray):
    """The upper Cholesky factor of ``info`` for :func:`scipy.linalg.cho_solve`, or ``None``
    if ``info`` is not (numerically) positive definite or not finite."""
    try:
        with small_dense_blas(len(info)):
            return linalg.cho_factor(info, lower=False, check_finite=True)
    except (linalg.LinAlgError, ValueError):
        return None


def cho_solve(cf, g: np.ndarray) -> np.ndarray:
    """``info^{-1} g`` from :func:`cholesky`'s factor, on one BLAS thread for a small one (see
    :func:`~multilogit.engine.threads.small_dense_blas`)."""
    with small_dense_blas(len(g)):
        return linalg.cho_solve(cf, g)


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
        delta = cho_solve(cf, g)
        return Proposal(delta, float(g @ delta))

    def accepted(self, state: NewtonState, proposal: Proposal, small: bool) -> None:
        pass

    def rejected(self, state: NewtonState, proposal: Proposal, small: bool) -> bool:
        return False

    def information_after(self, small: bool) -> bool:
        return True


class SampledThenExact:
    """A subsample's information first, then the exact information (``hessian="auto"``).

    Three phases, each cheaper per pass over the rows than the next:

    1. *Warm start* (:meth:`start`): Newton's method on the backend's row subsample alone
       (:meth:`~multilogit.solve.objective.Objective.approx_evaluate`, the subsample's
       log-likelihood scaled to the data), from the start values to the subsample's MLE.  It
       reads only the subsample (about ``m / n`` of a pass an iteration) and ends about
       :math:`\\sqrt{n / m}` standard errors from the data's MLE, past the iterations that are
       far from it.  It is skipped when the start values are already that close, and given up
       (the fit starts from the start values) when it does not converge: a subsample can be
       separated where the data are not.
    2. *Sampled* phase: one pass over the rows an iteration for the score, the direction
       solving with the subsample's information (at the current point, or kept while steps
       are small: a chord step).  The error shrinks by about the sample's relative error
       :math:`\\epsilon \\approx \\sqrt{J p / m}` a step (measured by the last step's
       shrinking of the decrement), faster with ``accelerate``: Anderson acceleration on the
       last ``ANDERSON_MEMORY`` scores (:mod:`multilogit.solve.acceleration`).  Once
       the point its step reaches is predicted within
       :math:`\\sqrt{\\text{switch\\_factor}\\cdot\\text{tol}}` of the MLE (:math:`\\epsilon`
       times the step), it takes the cheaper way on (``_hand_over``): hand over, that
       point evaluated with the exact information in the same pass and one exact step to
       follow, or sample on until the exact step at the end settles, with one pass with the
       information.  It also hands over when a full step shrank the decrement by less than
       ``slow_rate``, when the sampled matrix is not positive definite, or when no step along
       its direction raises the objective: the sample does not stand for the data.
    3. *Exact* phase: Newton's method, converging quadratically: one exact step from the
       hand-over point reaches about the square of its error.  After a sampled phase, a step
       within ``settle_factor * tol`` ends the fit, taken without a new evaluation (see
       :class:`Proposal`).

    A default fit thus reads the rows five to nine times, once or twice with the exact
    information.  Without a subsample (a backend without one, or data too small for one to pay
    off) it is :class:`ExactCholesky` throughout.

    Parameters
    ----------
    tol : float
        The solver's tolerance (``NewtonOptions.tol``): the hand-over point depends on it.
    slow_rate, reuse_step, switch_factor, settle_factor : float
    warm : bool
        Whether to warm-start on the subsample.
    accelerate : bool
        Whether to Anderson-accelerate the sampled steps.
    """

    def __init__(
        self,
        tol: float = 1e-8,
        slow_rate: float = SLOW_RATE,
        reuse_step: float = REUSE_STEP,
        switch_factor: float = SWITCH_FACTOR,
        settle_factor: float = SETTLE_FACTOR,
        warm: bool = True,
        accelerate: bool = True,
    ):
        self.tol = float(tol)
        self.slow_rate = float(slow_rate)
        self.reuse_step = float(reuse_step)
        self.switch_step = math.sqrt(float(switch_factor) * self.tol)
        self.settle_factor = float(settle_factor)
        self.warm = bool(warm)
        self.exact_strategy = ExactCholesky()
        self.objective: Objective | None = None
        self.sampled = self.had_sample = False
        self.warm_iterations = 0
        self.accelerate = bool(accelerate)
        self._anderson = AndersonAcceleration(ANDERSON_MEMORY)

    # -- the warm start ---------------------------------------------------------------------

    def start(self, objective: Objective, beta: np.ndarray) -> np.ndarray | None:
        """Start on ``objective``; return a better start than ``beta`` (the warm start's
        end) or ``None`` to keep it."""
        self.objective = objective
        self.exact_strategy.start(objective, beta)
        self.warm_iterations = 0
        self._switch = False
        self._rate = None
        self._fresh = True
        self._last_plain = math.inf
        self._anderson.reset()
        moved, info = None, None
        if self.warm and objective.can_approximate_objective:
            moved, info = self._warm_start(beta)
        if info is None:
            # The matrix for the first iteration, evaluated here: its absence decides the phase.
            info = objective.approx_information(beta if moved is None else moved)
        self._info = info
        # Without a subsample this is ExactCholesky throughout, to the last bit.
        self.sampled = self.had_sample = info is not None
        return moved

    def _warm_start(self, beta0: np.ndarray):
        """Newton's method on the subsample from ``beta0``: ``(end, information there)``;
        ``(None, information at beta0)`` when ``beta0`` is as good a start, ``(None, None)``
        when it fails."""
        obj = self.objective
        ev = obj.approx_evaluate(beta0, hessian=True)
        if ev is None or not np.isfinite(ev.value):
            return None, None
        # At the data's MLE the subsample's scaled decrement averages params * n / m.
        noise = beta0.size * obj.n_rows / obj.sample_rows
        beta = np.array(beta0, dtype=np.float64, copy=True)
        for it in range(WARM_MAXITER + 1):
            cf = cholesky(ev.info)
            if cf is None:
                return None, None
            g = ev.score.ravel()
            delta = cho_solve(cf, g)
            if it == 0 and float(g @ delta) <= WARM_SKIP * noise:
                return None, ev.info
            if np.all(np.abs(delta) <= WARM_TOL * (1.0 + np.abs(beta.ravel()))):
                self.warm_iterations = it
                return beta, ev.info
            if it == WARM_MAXITER:
                break
            found = halve_step(
                lambda point, step: obj.approx_evaluate(point, hessian=True),
                beta,
                delta.reshape(beta.shape),
                ev.value,
                WARM_MAX_HALVINGS,
            )
            if found is None:
                return None, None
            _, beta, ev = found
        # Not converged: a separated or unrepresentative subsample; start from beta0.
        return None, None

    # -- the iterations ---------------------------------------------------------------------

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
        self.sampled, self._switch = False, False
        if state is not None:
            state.current = self.objective.evaluate(state.beta, hessian=True)

    def information(self, state: NewtonState) -> np.ndarray | None:
        if not self.sampled:
            return self.exact_strategy.information(state)
        if not (self._fresh or (state.full_step and state.moved <= self.reuse_step)):
            self._info = self.objective.approx_information(state.beta)
        self._fresh = False
        return self._info

    def _hand_over(self, predicted: float, rate: float) -> bool:
        """Whether the point this sampled step reaches (predicted ``predicted`` from the MLE,
        relative) is evaluated with the exact information.

        Yes when it is within the settling tolerance already (the exact step there ends the
        fit).  Otherwise, once one exact step from it would get there (``predicted`` below
        ``switch_step``), the cheaper of two ways on: hand over now, which costs two passes
        with the information, or go on sampling, ``m`` score passes and one with the
        information, where ``m`` is the sampled steps still needed at ``rate``; the score
        passes are weighed by the information's relative cost (:data:`INFO_COST_PER_PARAM`).
        """
        target = 0.5 * self.settle_factor * self.tol
        if predicted <= target:
            return True
        if predicted > self.switch_step:
            return False
        if not 0.0 < rate < 1.0:
            return True
        more = math.ceil(math.log(predicted / target) / -math.log(rate))
        return more >= self._information_cost()

    def _information_cost(self) -> float:
        """A pass with the information over a score pass, from the flops of the two (the
        score's are bound by reading the design: a multiply-add of a product with the design
        costs about INFO_COST_PER_PARAM of those of the information's symmetric products)."""
        q = self._info.shape[0]
        p = q // (self.objective.equations or 1)
        return 1.0 + (q * q + p * q) / (INFO_COST_PER_PARAM * (p + q))

    def _prior_rate(self) -> float:
        """The sampled step's expected contraction of the error before one is measured."""
        m = self.objective.sample_rows
        params = self._info.shape[0]
        return min(1.0, RATE_PRIOR * math.sqrt(params / m)) if m > 0 else 1.0

    def direction(self, state: NewtonState) -> Proposal:
        if self.sampled:
            cf = cholesky(self._info)
            if cf is not None:
                g = state.gradient
                delta = cho_solve(cf, g)
                dec = float(g @ delta)
                last = self._last_plain
                # Linear convergence at a poor rate means the sample does not stand for the data.
                if not (state.full_step and dec > self.slow_rate * last):
                    if state.full_step and math.isfinite(last) and last > 0:
                        self._rate = math.sqrt(max(dec, 0.0) / last)
                    self._last_plain = dec
                    if not state.full_step:
                        self._anderson.reset()
                    if self.accelerate:
                        delta = self._anderson.step(state.beta.ravel(), g, cf, delta)
                    rate = self._prior_rate() if self._rate is None else self._rate
                    beta = state.beta.ravel()
                    step = float(np.max(np.abs(delta) / (1.0 + np.abs(beta)), initial=0.0))
                    self._switch = self._hand_over(rate * step, rate)
                    return Proposal(
                        delta, float(g @ delta), exact=False, tol_factor=APPROX_TOL_FACTOR
                    )
            self._leave_sampled(state)
        proposal = self.exact_strategy.direction(state)
        if not self.had_sample:
            return proposal
        return Proposal(
            proposal.delta, proposal.decrement, tol_factor=self.settle_factor, settle=True
        )

    def accepted(self, state: NewtonState, proposal: Proposal, small: bool) -> None:
        if self.sampled and (small or self._switch):
            self._leave_sampled(None)  # the loop evaluates the new point with the information

    def information_after(self, small: bool) -> bool:
        # A hand-over makes the exact information the next iteration's.
        return not self.sampled or small or self._switch

    def rejected(self, state: NewtonState, proposal: Proposal, small: bool) -> bool:
        if not self.sampled:
            return False
        # No progress along the sampled direction: rounding level, or a poor sample.
        self._leave_sampled(None)
        return True
