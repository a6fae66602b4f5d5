"""The one record of a fit: where the solver stopped, the derivatives there, and what the fit
pipeline learned about the data on the way."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["FitState"]


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
    options : dict
        The fit options as recorded once by the pipeline (method, tolerances, covariance
        type, ...); internal refits reuse them.
    aliased : ndarray of bool, shape (p,), optional
        Columns dropped as aliased (``fit(drop_collinear=True)``).
    separation : Separation, optional
        What the separation check found.
    notes : tuple of str
        Notes for the summary.
    """

    beta: np.ndarray
    llf: float
    score: np.ndarray
    info: np.ndarray
    converged: bool
    n_iter: int
    log: pd.DataFrame = field(repr=False)
    message: str = ""
    options: dict = field(default_factory=dict)
    aliased: np.ndarray | None = field(default=None, repr=False)
    separation: object = None
    notes: tuple = ()
