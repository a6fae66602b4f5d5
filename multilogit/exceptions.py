"""Warnings and errors raised by multilogit.

Every user-facing failure is one of these (or a plain ``ValueError`` subclass), so callers can
catch the package's own errors without catching bugs.
"""

__all__ = [
    "ConvergenceWarning",  # noqa: F822 - defined at first access, by __getattr__ below
    "MultilogitError",
    "DataError",
    "DataWarning",
    "FitError",
    "CovarianceBudgetError",
    "PerfectSeparationError",
    "PerfectSeparationWarning",
    "PersistenceError",
]


class MultilogitError(ValueError):
    """Base class of the errors raised for bad input or an impossible fit."""


class DataError(MultilogitError):
    """The data cannot define a model: missing values, bad shapes, unknown levels, ..."""


class DataWarning(UserWarning):
    """The data or the formula fit, but probably not as meant (numbers stored as text, an
    outcome that looks continuous, ``^`` in an expression); the message says how to proceed."""


class FitError(MultilogitError):
    """The likelihood cannot be maximised (singular information matrix, non-finite values)."""


class CovarianceBudgetError(FitError):
    """A quantity needs more of the covariance matrix than the fit's ``memory_budget`` holds
    (a fit beyond the budget keeps its covariance as an operator): ask for a subset."""


class PerfectSeparationWarning(UserWarning):
    """The data are (quasi-)completely separated; some estimates diverge."""


class PerfectSeparationError(FitError):
    """Raised by ``fit(separation="raise")`` when the data are (quasi-)completely separated."""


class PersistenceError(MultilogitError):
    """A saved results file is unreadable, corrupted, tampered with or of an unknown format."""


def _convergence_warning() -> type:
    """Define :class:`ConvergenceWarning` (importing statsmodels for its base class)."""
    from statsmodels.tools.sm_exceptions import ConvergenceWarning as StatsmodelsWarning

    class ConvergenceWarning(StatsmodelsWarning):
        """Newton-Raphson stopped at ``maxiter`` before meeting the convergence criterion.

        A subclass of statsmodels' ``ConvergenceWarning`` so existing warning filters still
        apply.
        """

    # Named as if defined at module level, which is where pickle and the docs look it up.
    ConvergenceWarning.__module__ = __name__
    ConvergenceWarning.__qualname__ = "ConvergenceWarning"
    return ConvergenceWarning


def __getattr__(name: str):
    # ``ConvergenceWarning`` derives from statsmodels' class, and importing statsmodels costs
    # more than the rest of ``import multilogit``.  It is defined on first access (a warning
    # filter, an import of the name, a fit that stops at ``maxiter``) and kept, so the class is
    # one object and pickles by its name.
    if name == "ConvergenceWarning":
        cls = globals()["ConvergenceWarning"] = _convergence_warning()
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
