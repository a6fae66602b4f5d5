"""The options of a fit, checked and recorded once: every internal refit (drop-one LR tests,
combined outcomes, the IIA test, the fit without aliased columns) reuses them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from ..inference import resampling  # noqa: F401  (registers cov_type bootstrap and jackknife)
from ..inference.covariance import get_estimator
from ..solve.conjugate import DEFAULT_MEMORY_BUDGET
from ..solve.newton import NewtonOptions
from .penalized import PenaltyOptions
from .separation import check_mode

__all__ = ["FitOptions"]

METHODS = ("newton", "newton-cg", "firth", "firth-median")
HESSIANS = ("auto", "exact")


@dataclass(frozen=True)
class FitOptions:
    """What ``MultinomialLogit.fit`` was asked to do (see its docstring).

    Recorded in the fit state as :meth:`as_dict`; refits for likelihood-ratio statistics
    reuse every option but the covariance ones (``cov_*``), which belong to other rows.
    """

    method: str = "newton"
    maxiter: int = 100
    tol: float = 1e-8
    hessian: str = "auto"
    separation: str = "warn"
    drop_collinear: bool = False
    cov_type: str = "nonrobust"
    cov_kwds: dict = field(default_factory=dict)
    penalty: PenaltyOptions | None = None
    memory_budget: float = DEFAULT_MEMORY_BUDGET
    #: Linear constraints as recorded by :class:`~multilogit.fit.constraints.ConstraintSet`
    #: (``as_dict``), or None.
    constraints: dict | None = None

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(
                "method must be 'newton', 'newton-cg', 'firth' or 'firth-median'; "
                f"got {self.method!r}"
            )
        try:
            budget_ok = bool(self.memory_budget > 0)
        except TypeError:
            budget_ok = False
        if not budget_ok:
            raise ValueError(
                f"memory_budget must be a positive number of bytes; got {self.memory_budget!r}"
            )
        object.__setattr__(self, "memory_budget", float(self.memory_budget))
        if self.hessian not in HESSIANS:
            raise ValueError(f"hessian must be 'auto' or 'exact'; got {self.hessian!r}")
        check_mode(self.separation)
        # None is refused as by statsmodels' solvers (there it fails comparing with an int);
        # booleans are refused too: maxiter=True or tol=True is a slip, not a number.
        try:
            maxiter = -1 if isinstance(self.maxiter, bool | np.bool_) else int(self.maxiter)
        except (TypeError, ValueError, OverflowError):
            maxiter = -1
        if maxiter < 0 or maxiter != self.maxiter:
            raise ValueError(f"maxiter must be a non-negative integer; got {self.maxiter!r}")
        try:
            tol_ok = not isinstance(self.tol, bool | np.bool_ | str) and bool(
                np.isfinite(self.tol) and self.tol > 0
            )
        except (TypeError, ValueError):
            tol_ok = False
        if not tol_ok:
            raise ValueError(f"tol must be a positive number; got {self.tol!r}")
        object.__setattr__(self, "maxiter", maxiter)
        object.__setattr__(self, "tol", float(self.tol))
        object.__setattr__(self, "drop_collinear", bool(self.drop_collinear))
        object.__setattr__(self, "cov_kwds", dict(self.cov_kwds or {}))
        if self.constraints is not None and (self.method == "firth" or self.penalty):
            what = "method='firth'" if self.method == "firth" else "a penalised fit"
            raise ValueError(
                f"constraints are not available with {what}: constrained maximum likelihood "
                "only (method='newton', no penalty)"
            )
        if self.penalty is not None:
            if not isinstance(self.penalty, PenaltyOptions):
                raise TypeError("penalty must be a PenaltyOptions")
            if self.method in ("firth", "firth-median"):
                raise ValueError(
                    f"method={self.method!r} is itself a bias reduction: it takes no other penalty"
                )

    def estimator(self):
        """The covariance estimator of ``cov_type`` with ``cov_kwds``."""
        return get_estimator(self.cov_type, self.cov_kwds)

    @property
    def bias_reduced(self) -> str | None:
        """``"mean"`` (``method="firth"``) or ``"median"`` (``"firth-median"``) for a
        bias-reduced fit, else ``None``."""
        return {"firth": "mean", "firth-median": "median"}.get(self.method)

    def newton(self) -> NewtonOptions:
        # Bias reduction brings its own direction; the solver's method picks the dense or the
        # matrix-free Newton direction otherwise.
        return NewtonOptions(
            maxiter=self.maxiter,
            tol=self.tol,
            hessian=self.hessian,
            method="newton-cg" if self.method == "newton-cg" else "newton",
            memory_budget=self.memory_budget,
        )

    def as_dict(self) -> dict:
        """All options, as recorded in the fit state (and shown as ``results.fit_options``)."""
        return asdict(self)
