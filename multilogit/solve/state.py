"""What the Newton loop carries from one iteration to the next, and what it records of each."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .objective import Evaluation

__all__ = ["IterationRecord", "NewtonState"]


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
    loglike, penalty : float
        The two parts of ``llf``; in the log only for a penalised fit.
    """

    iteration: int
    llf: float
    step: float
    max_abs_score: float
    decrement: float
    info_rows: float
    seconds: float
    loglike: float = math.nan
    penalty: float = 0.0

    COLUMNS = ("iteration", "llf", "step", "max_abs_score", "decrement", "info_rows", "seconds")
    PENALISED_COLUMNS = COLUMNS[:2] + ("loglike", "penalty") + COLUMNS[2:]

    def as_dict(self, penalised: bool = False) -> dict:
        """The row as the log and the callback see it."""
        cols = self.PENALISED_COLUMNS if penalised else self.COLUMNS
        return {c: getattr(self, c) for c in cols}
