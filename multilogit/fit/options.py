"""The options of a fit, checked and recorded once: every internal refit (drop-one LR tests,
combined outcomes, the IIA test, the fit without aliased columns) reuses them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from ..inference import resampling  # noqa: F401  (registers cov_type bootstrap and jackknife)
from ..inference.covariance import get_estimator
from ..solve.newton import NewtonOptions
from .penalized import PenaltyOptions
from .separation import check_mode

__all__ = ["FitOptions"]

METHODS = ("newton", "firth")
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
    #: Linear constraints as recorded by :class:`~multilogit.fit.constraints.ConstraintSet`
    #: (``as_dict``), or None.
    constraints: dict | None = None

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"method must be 'newton' or 'firth'; got {self.method!r}")
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
            if self.method == "firth":
                raise ValueError(
                    "method='firth' is itself a penalised likelihood (Jeffreys prior): it "
                    "takes no other penalty"
                )

    def estimator(self):
        """The covariance estimator of :attr:`cov_type` with :attr:`cov_kwds`."""
        return get_estimator(self.cov_type, self.cov_kwds)

    @property
    def bias_reduced(self) -> bool:
        """Whether the fit maximises Firth's penalised likelihood instead of the likelihood."""
        return self.method == "firth"

    def newton(self) -> NewtonOptions:
        return NewtonOptions(maxiter=self.maxiter, tol=self.tol, hessian=self.hessian)

    def as_dict(self) -> dict:
        """All options, as recorded in the fit state (and shown as ``results.fit_options``)."""
        return asdict(self)
