"""The solver's state: what the Newton loop carries from one iteration to the next, what it
records of each, and the one record of a finished fit."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .objective import Evaluation

__all__ = ["FitState", "IterationRecord", "NewtonState"]


@dataclass
class NewtonState:
    """The iterate.

    The loop owns it; a direction strategy reads it and may replace ``current`` by an
    evaluation with the exact information *at the same* ``beta`` (when it leaves an
    approximate phase).

    Attributes
    ----------
    iteration : int
        The iteration under way (0 before the first).
    beta : ndarray, shape (J, p)
    current : Evaluation
        The objective at ``beta``; ``current.info`` is ``None`` unless the direction strategy
        asked for the exact information.
    full_step : bool
        Whether the last accepted step was the whole Newton step.
    last_decrement : float
        The Newton decrement :math:`g^\\top \\mathcal{I}^{-1} g` behind the last accepted step.
    moved : float
        The largest coordinate of the last accepted step, relative to ``1 + |beta|``.
    """

    iteration: int
    beta: np.ndarray
    current: Evaluation
    full_step: bool = False
    last_decrement: float = math.inf
    moved: float = math.inf

    @property
    def gradient(self) -> np.ndarray:
        """The score at ``beta``, flat (outcome-major)."""
        return self.current.score.ravel()


@dataclass(frozen=True)
class IterationRecord:
    """One row of the iteration log.

    Attributes
    ----------
    iteration : int
    llf : float
        The objective the solver maximises (the log-likelihood less any penalty).
    step : float
        The step length taken (0: none taken).
    max_abs_score : float
    decrement : float
        The Newton decrement of the direction (NaN in row 0).
    info_rows : float
        Rows behind the information the direction used.
    seconds : float
        Since the start of the solve.
    passes : int
        Full passes over the rows so far (on data larger than memory, the cost that counts).
    loglike, penalty : float
        The two parts of ``llf``; in the log only for a penalised fit.
    cg_iterations : int
        Conjugate-gradient iterations (passes with a Hessian-vector product) behind the
        direction; in the log only for a Newton-CG fit.
    """

    iteration: int
    llf: float
    step: float
    max_abs_score: float
    decrement: float
    info_rows: float
    seconds: float
    passes: int = 0
    loglike: float = math.nan
    penalty: float = 0.0
    cg_iterations: int = 0

    COLUMNS = (
        "iteration",
        "llf",
        "step",
        "max_abs_score",
        "decrement",
        "info_rows",
        "seconds",
        "passes",
    )
    PENALISED_COLUMNS = COLUMNS[:2] + ("loglike", "penalty") + COLUMNS[2:]

    @classmethod
    def columns(cls, penalised: bool = False, cg: bool = False) -> tuple:
        """The log's columns: ``loglike`` and ``penalty`` for a penalised fit,
        ``cg_iterations`` last for a Newton-CG fit."""
        cols = cls.PENALISED_COLUMNS if penalised else cls.COLUMNS
        return cols + ("cg_iterations",) if cg else cols

    def as_dict(self, penalised: bool = False, cg: bool = False) -> dict:
        """The row as the log and the callback see it."""
        return {c: getattr(self, c) for c in self.columns(penalised, cg)}


@dataclass(frozen=True)
class FitState:
    """Everything a fit produced, in the original coordinates of the design.

    Results objects read their estimates, convergence report and reliability flags from this
    record, so every results object derived from a fit without refitting (another covariance
    type, another reference outcome, a file read back) carries the same record.

    Attributes
    ----------
    beta : ndarray, shape (J, p)
        The estimates (0 for dropped aliased columns).
    llf : float
        Log-likelihood at ``beta``.
    score : ndarray, shape (J, p)
        Its gradient there.
    info : ndarray, shape (J p, J p)
        The exact information matrix there (an identity block for dropped columns).
    converged : bool
    n_iter : int
    log : DataFrame
        One row per iteration (see :mod:`multilogit.solve.newton`).
    message : str
        Why the solver stopped, when it did not converge.
    penalty : float
        The penalty at ``beta`` of a penalised fit (``llf`` is then the log-likelihood less
        it); 0 otherwise.
    options : dict
        The fit options as recorded once by the pipeline (method, tolerances, covariance
        type, ...); internal refits reuse them.
    aliased : ndarray of bool, shape (p,), optional
        Columns dropped as aliased (``fit(drop_collinear=True)``).
    separation : Separation, optional
        What the separation check found.
    notes : tuple of str
        Notes for the summary.
    trimmed : ndarray of bool, shape (J, p), optional
        Coefficients of an L1 or elastic-net fit set exactly to 0 at the optimum (their
        standard errors are NaN; ``info`` has an identity block for them).
    """

    beta: np.ndarray
    llf: float
    score: np.ndarray
    info: np.ndarray
    converged: bool
    n_iter: int
    log: pd.DataFrame = field(repr=False)
    message: str = ""
    penalty: float = 0.0
    options: dict = field(default_factory=dict)
    aliased: np.ndarray | None = field(default=None, repr=False)
    separation: object = None
    notes: tuple = ()
    trimmed: np.ndarray | None = field(default=None, repr=False)
