"""Warnings and errors raised by multilogit.

Every user-facing failure is one of these (or a plain ``ValueError`` subclass), so callers can
catch the package's own errors without catching bugs.
"""

from statsmodels.tools.sm_exceptions import ConvergenceWarning as _SMConvergenceWarning

__all__ = [
    "ConvergenceWarning",
    "MultilogitError",
    "DataError",
    "FitError",
    "PerfectSeparationError",
    "PerfectSeparationWarning",
    "PersistenceError",
]


class MultilogitError(ValueError):
    """Base class of the errors raised for bad input or an impossible fit."""


class DataError(MultilogitError):
    """The data cannot define a model: missing values, bad shapes, unknown levels, ..."""


class FitError(MultilogitError):
    """The likelihood cannot be maximised (singular information matrix, non-finite values)."""


class ConvergenceWarning(_SMConvergenceWarning):
    """Newton-Raphson stopped at ``maxiter`` before meeting the convergence criterion.

    A subclass of statsmodels' ``ConvergenceWarning`` so existing warning filters still apply.
    """


class PerfectSeparationWarning(UserWarning):
    """The data are (quasi-)completely separated; some estimates diverge."""


class PerfectSeparationError(FitError):
    """Raised by ``fit(separation="raise")`` when the data are (quasi-)completely separated."""


class PersistenceError(MultilogitError):
    """A saved results file is unreadable, corrupted, tampered with or of an unknown format."""
