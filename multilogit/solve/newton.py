"""Newton-Raphson with step-halving for the (penalised) multinomial logit log-likelihood.

Each iteration takes the same fixed steps (:class:`NewtonSolver`):

1. *curvature*: the direction strategy picks the information matrix it will use (exact, or
   that of a subsample) and a monitor may stop the fit on seeing it;
2. *inner solve*: the strategy turns the score into a step and its Newton decrement;
3. *convergence check*: a step or decrement below the tolerance (see :class:`NewtonOptions`);
4. *line search*: the step is halved until the objective does not decrease;
5. *log*: a row of the iteration log (:class:`~multilogit.solve.state.IterationRecord`).

The numbers come from an :class:`~multilogit.solve.objective.Objective` (a backend's
log-likelihood less an optional penalty, see :mod:`multilogit.engine.backend`) and the directions
from a strategy (:mod:`multilogit.solve.directions`); the loop only combines them.  With
``hessian="auto"`` the strategy is
:class:`~multilogit.solve.directions.SampledThenExact` (a warm start on a row subsample,
then its information, one or two exact informations to finish), with ``hessian="exact"``
:class:`~multilogit.solve.directions.ExactCholesky`.  With ``method="newton-cg"``, when the
dense information does not fit ``memory_budget``, or (``hessian="auto"``) from
:data:`~multilogit.solve.conjugate.AUTO_CG_PARAMS` parameters on, it is the matrix-free
:class:`~multilogit.solve.conjugate.NewtonCG` (conjugate gradients on Hessian-vector
products); the iteration log then has a ``cg_iterations`` column.

Conventions
-----------
``beta`` has shape ``(J, p)`` (non-reference outcomes by terms); flat vectors, the score and
the information follow ``beta.ravel()``, outcome-major.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..engine.backend import Derivatives
from ..exceptions import FitError
from .conjugate import AUTO_CG_PARAMS, DEFAULT_MEMORY_BUDGET, NewtonCG, dense_fits
from .directions import DirectionStrategy, ExactCholesky, Proposal, SampledThenExact
from .objective import Objective, Penalty, halve_step
from .state import FitState, IterationRecord, NewtonState

__all__ = ["METHODS", "NewtonOptions", "NewtonSolver", "default_direction", "newton"]

#: The solver's methods: ``"newton"`` picks the dense or the matrix-free direction by the memory
#: budget and the number of parameters, ``"newton-cg"`` is matrix-free throughout.
METHODS = ("newton", "newton-cg")


@dataclass(frozen=True)
class NewtonOptions:
    """Stopping rules.

    Attributes
    ----------
    maxiter : int
        Most Newton iterations.
    tol : float
        Stop once the Newton step is at most ``tol * (1 + |beta|)`` in every coordinate, or the
        Newton decrement :math:`g^\\top \\mathcal{I}^{-1} g` is at most ``tol**2 * (1 + |llf|)``;
        in the exact phase that last step is still taken, so with quadratic convergence the
        result is accurate to about ``tol**2``.
    max_halvings : int
        Most step-halvings in one iteration.
    hessian : {"auto", "exact"}
        ``"auto"``: subsampled information first when the backend offers it
        (:class:`~multilogit.solve.directions.SampledThenExact`); ``"exact"``: the exact
        information at every iteration
        (:class:`~multilogit.solve.directions.ExactCholesky`).  Only for the dense path.
    method : {"newton", "newton-cg"}
        ``"newton"``: the dense path (``hessian``) while the information fits
        ``memory_budget`` and, with ``hessian="auto"``, there are fewer than
        :data:`~multilogit.solve.conjugate.AUTO_CG_PARAMS` parameters; Newton-CG otherwise.
        ``"newton-cg"``: Newton-CG (:class:`~multilogit.solve.conjugate.NewtonCG`).
    memory_budget : float
        Bytes the dense information may take, all copies
        (:func:`~multilogit.solve.conjugate.dense_information_bytes`); default 2 GiB.  Also
        decides whether a Newton-CG fit forms the exact information at the estimates, and
        how much memory Newton-CG may spend on keeping the rows' probabilities.
    """

    maxiter: int = 100
    tol: float = 1e-8
    max_halvings: int = 40
    hessian: str = "auto"
    method: str = "newton"
    memory_budget: float = DEFAULT_MEMORY_BUDGET


def default_direction(
    objective: Objective,
    hessian: str = "auto",
    tol: float = NewtonOptions.tol,
    method: str = "newton",
    memory_budget: float = DEFAULT_MEMORY_BUDGET,
) -> DirectionStrategy:
    """The strategy for ``NewtonOptions``: Newton-CG for ``method="newton-cg"``, and, when the
    backend offers Hessian-vector products, when the dense information of the objective's
    parameters does not fit ``memory_budget`` or with ``hessian="auto"`` from
    :data:`~multilogit.solve.conjugate.AUTO_CG_PARAMS` parameters on; else, for
    ``hessian="auto"``, subsampled information first when the backend can approximate the
    information, and the exact one otherwise."""
    params = objective.parameters
    fits = dense_fits(params, memory_budget)
    many = hessian == "auto" and params >= AUTO_CG_PARAMS
    if method == "newton-cg" and not objective.can_multiply:
        raise ValueError(
            'method="newton-cg" needs Hessian-vector products (hessian_vector) from the backend'
        )
    if method == "newton-cg" or (objective.can_multiply and (not fits or many)):
        return NewtonCG(tol, final_information=fits, cache_bytes=memory_budget)
    if hessian == "auto" and objective.can_approximate:
        return SampledThenExact(tol)
    return ExactCholesky()


class NewtonSolver:
    """The Newton loop, one method per step (see the module docstring).

    Parameters
    ----------
    objective : Objective
    direction : DirectionStrategy
        Started afresh by :meth:`setup`, so one strategy object can serve several solves (not
        at the same time).
    options : NewtonOptions
    disp, callback, monitor
        As in :func:`newton`.
    """

    def __init__(
        self,
        objective: Objective,
        direction: DirectionStrategy,
        options: NewtonOptions = NewtonOptions(),
        disp: bool = False,
        callback=None,
        monitor=None,
    ):
        self.objective = objective
        self.strategy = direction
        self.options = options
        self.disp = disp
        self.callback = callback
        self.monitor = monitor

    # -- the steps --------------------------------------------------------------------------

    def setup(self, beta0: np.ndarray) -> NewtonState:
        """Start the strategy and evaluate the objective at ``beta0``; log row 0."""
        self._t0 = time.perf_counter()
        self.rows: list[dict] = []
        self.converged, self.stopped, self.message, self.n_iter = False, False, "", 0
        self._cg = hasattr(self.strategy, "cg_iterations")
        # A matrix-free strategy multiplies by the information at each accepted point: its
        # evaluations keep what the products need (up to this many bytes).
        self._products = getattr(self.strategy, "product_bytes", None)
        beta = np.array(beta0, dtype=np.float64, copy=True)
        warm = self.strategy.start(self.objective, beta)
        if warm is not None:
            beta = np.array(warm, dtype=np.float64, copy=True)
            if self.disp:
                print(
                    f"warm start: {getattr(self.strategy, 'warm_iterations', 0)} Newton "
                    f"iterations on {self.strategy.info_rows:.0f} sampled rows"
                )
        current = self.objective.evaluate(
            beta, hessian=self.strategy.needs_information, products=self._products
        )
        if not np.isfinite(current.value):
            raise FitError("the log-likelihood is not finite at the start values")
        self.state = NewtonState(0, beta, current)
        self.record(0.0, float("nan"), self.strategy.info_rows)
        return self.state

    def curvature(self) -> str | None:
        """The information this iteration uses, shown to the monitor; its message if it stops
        the fit (empty or ``None`` otherwise)."""
        info = self.strategy.information(self.state)
        if self.monitor is None:
            return ""
        state, cur = self.state, self.state.current
        return self.monitor(state.iteration, state.beta, Derivatives(cur.value, cur.score, info))

    def inner_solve(self) -> Proposal:
        return self.strategy.direction(self.state)

    def check_convergence(self, proposal: Proposal) -> bool:
        """The stopping rule of :class:`NewtonOptions`, at the proposal's tolerance."""
        tol = self.options.tol * proposal.tol_factor
        beta, dec = self.state.beta, proposal.decrement
        small_step = np.all(np.abs(proposal.delta) <= tol * (1.0 + np.abs(beta.ravel())))
        return bool(small_step or dec <= tol**2 * (1.0 + abs(self.state.current.value)))

    def line_search(self, proposal: Proposal, information: bool = False):
        """Halve the step until the objective does not decrease.

        Parameters
        ----------
        proposal : Proposal
        information : bool
            Evaluate the full step's point with the exact information (in the same pass over
            the rows): the strategy will need it there, and Newton's full step is usually
            taken.

        Returns
        -------
        (step, beta, Evaluation) or None
            The step length, the new point and the objective there (with the information only
            for a full step evaluated with it); ``None`` if ``max_halvings`` halvings did not do.
        """
        beta = self.state.beta
        return halve_step(
            lambda point, step: self.objective.evaluate(
                point, information and step == 1.0, self._products
            ),
            beta,
            proposal.delta.reshape(beta.shape),
            self.state.current.value,
            self.options.max_halvings,
        )

    def accept(self, proposal: Proposal, step: float, beta: np.ndarray, trial, small: bool):
        """Move to ``beta``; evaluate the information there if the strategy needs it."""
        state = self.state
        state.beta = beta
        state.full_step, state.last_decrement = step == 1.0, proposal.decrement
        rel = np.abs(proposal.delta) / (1.0 + np.abs(beta.ravel()))
        state.moved = step * float(np.max(rel))
        self.strategy.accepted(state, proposal, small)
        if self.strategy.needs_information and trial.info is None:
            state.current = self.objective.evaluate(beta, hessian=True)
        else:
            state.current = trial

    def settle(self, proposal: Proposal) -> None:
        """Take the (small, exact) step without evaluating its end: the evaluation, and so the
        information behind the covariance, stays the one at its start."""
        state = self.state
        state.beta = state.beta + proposal.delta.reshape(state.beta.shape)
        state.full_step, state.last_decrement = True, proposal.decrement

    def record(self, step: float, decrement: float, info_rows: float) -> None:
        """Append a row to the iteration log; print it and pass it to the callback."""
        state, cur = self.state, self.state.current
        rec = IterationRecord(
            iteration=state.iteration,
            llf=cur.value,
            step=step,
            max_abs_score=float(np.max(np.abs(cur.score))) if cur.score.size else 0.0,
            decrement=decrement,
            info_rows=info_rows,
            seconds=time.perf_counter() - self._t0,
            passes=self.objective.passes,
            loglike=cur.loglike,
            penalty=cur.penalty,
            cg_iterations=getattr(self.strategy, "cg_iterations", 0) if state.iteration else 0,
        )
        row = rec.as_dict(self.objective.penalty is not None, self._cg)
        self.rows.append(row)
        if self.disp:
            n_rows = self.objective.n_rows
            kind = "exact" if info_rows == n_rows or np.isnan(n_rows) else "sampled"
            if self._cg:
                kind = f"{rec.cg_iterations} CG products of the"
            print(
                f"iter {rec.iteration:3d}  llf {rec.llf: .10f}  step {step:8.6f}  "
                f"|score| {rec.max_abs_score:.3e}  decrement {decrement:.3e}  "
                f"({kind} information; {rec.passes} passes, {rec.seconds:.1f} s)"
            )
        if self.callback is not None:
            self.callback(state.beta.ravel().copy(), row)

    def finalize(self, stacklevel: int = 1) -> FitState:
        """The result, with the exact information at the estimates; warn if not converged
        (``stacklevel`` as in :meth:`solve`)."""
        state = self.state
        if state.current.info is None and getattr(self.strategy, "final_information", True):
            # Stopped without the exact information: the covariance needs it here.
            state.current = self.objective.evaluate_information(state.beta)
        if not self.converged and not self.stopped:
            from ..exceptions import ConvergenceWarning  # defining it imports statsmodels

            warnings.warn(
                f"Newton-Raphson did not converge: {self.message}; the estimates are unreliable",
                ConvergenceWarning,
                stacklevel=stacklevel + 1,
            )
        cur = state.current
        if not (np.all(np.isfinite(state.beta)) and np.isfinite(cur.value)):
            raise FitError("the fit produced non-finite estimates")
        cols = IterationRecord.columns(self.objective.penalty is not None, self._cg)
        log = pd.DataFrame(self.rows, columns=list(cols))
        return FitState(
            beta=state.beta,
            llf=cur.value,
            score=cur.score,
            info=cur.info,
            converged=self.converged,
            n_iter=self.n_iter,
            log=log,
            message=self.message,
            penalty=cur.penalty,
        )

    # -- the loop ---------------------------------------------------------------------------

    def solve(self, beta0: np.ndarray, stacklevel: int = 1) -> FitState:
        """Maximise the objective from ``beta0``; ``stacklevel`` places a
        ``ConvergenceWarning`` relative to the caller (1: the caller itself)."""
        state = self.setup(beta0)
        strategy = self.strategy
        for it in range(1, self.options.maxiter + 1):
            state.iteration = self.n_iter = it
            if stopped := self.curvature():
                self.message, self.stopped = stopped, True
                self.n_iter = it - 1  # this iteration was not carried out
                break
            proposal = self.inner_solve()
            info_rows = strategy.info_rows
            dec = proposal.decrement
            small = self.check_convergence(proposal)
            if proposal.settle and small:
                self.settle(proposal)
                self.converged = True
                self.record(1.0, dec, info_rows)
                break
            ahead = getattr(strategy, "information_after", None)
            found = self.line_search(proposal, bool(ahead and ahead(small)))
            if found is None:
                if proposal.exact and small:
                    self.converged = True
                elif strategy.rejected(state, proposal, small):
                    state.current = self.objective.evaluate(
                        state.beta, hessian=strategy.needs_information
                    )
                    self.record(0.0, dec, info_rows)
                    continue
                else:
                    self.message = "step-halving could not increase the log-likelihood"
                self.record(0.0, dec, info_rows)
                break
            self.accept(proposal, *found, small)
            self.record(found[0], dec, info_rows)
            if proposal.exact and small:
                self.converged = True
                break
        else:
            self.message = f"no convergence in {self.options.maxiter} iterations"
        return self.finalize(stacklevel + 1)


def newton(
    backend,
    beta0,
    options=NewtonOptions(),
    disp=False,
    callback=None,
    monitor=None,
    *,
    direction: DirectionStrategy | None = None,
    penalty: Penalty | None = None,
    stacklevel: int = 1,
) -> FitState:
    """Maximise the log-likelihood (less ``penalty``) from ``beta0`` (shape ``(J, p)``).

    Parameters
    ----------
    backend
        Object with ``derivatives(beta, hessian)`` returning ``Derivatives``; optionally
        ``approx_information(beta)`` (an approximate information matrix or ``None``) and
        ``n`` (rows, for the iteration log).
    beta0 : ndarray
    options : NewtonOptions
    disp : bool
        Print one line per iteration.
    callback : callable, optional
        Called as ``callback(beta, row)`` after each iteration with the flat parameters and the
        iteration-log row (a dict).
    monitor : callable, optional
        Called as ``monitor(it, beta, point)`` at the top of each iteration, where ``point`` has
        ``llf``, ``score`` and ``info`` (the information the iteration uses); a non-empty string
        return stops the solver with that message (unconverged, without a
        ``ConvergenceWarning``: the monitor reports the reason), e.g. on separation.
    direction : DirectionStrategy, optional
        Overrides the strategy ``options.hessian`` selects (:func:`default_direction`).
    penalty : Penalty, optional
        Maximise :math:`\\ell(\\beta) - P(\\beta)` instead; the iteration log then has the
        columns ``loglike`` and ``penalty`` beside ``llf`` (the objective).
    stacklevel : int
        Where a ``ConvergenceWarning`` points: 1, the caller of this function; more, that
        many frames further out (a fit pipeline points it at the user's call).

    Returns
    -------
    FitState
        ``info`` is the exact information (of the objective) at the returned ``beta``, or
        ``None`` after a Newton-CG fit whose information does not fit ``memory_budget``.
    """
    if options.hessian not in ("auto", "exact"):
        raise ValueError(f"hessian must be 'auto' or 'exact'; got {options.hessian!r}")
    if options.method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {options.method!r}")
    objective = Objective(backend, penalty)
    if direction is None:
        direction = default_direction(
            objective, options.hessian, options.tol, options.method, options.memory_budget
        )
    solver = NewtonSolver(objective, direction, options, disp, callback, monitor)
    return solver.solve(beta0, stacklevel=stacklevel + 1)
