"""Covariance estimators of the parameter vector, one small class per type, in a registry.

Each estimator takes the fitted state (model, parameters, information matrix at the optimum) and
returns the ``(J p, J p)`` covariance in the package's flat outcome-major order.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
from scipy import linalg

from .exceptions import FitError

__all__ = ["CovarianceEstimator", "NonRobust", "get_estimator", "inverse_information"]


def inverse_information(info: np.ndarray) -> np.ndarray:
    """:math:`\\mathcal{I}^{-1}` by Cholesky (the information is symmetric positive definite)."""
    try:
        cf = linalg.cho_factor(info, lower=False)
    except linalg.LinAlgError:
        raise FitError(
            "the information matrix is singular at the estimates: standard errors do not exist "
            "(collinear design or separated data)"
        ) from None
    inv = linalg.cho_solve(cf, np.eye(info.shape[0]))
    return (inv + inv.T) / 2.0


class CovarianceEstimator(ABC):
    """Base class: ``name`` for the summary, ``compute(state)`` for the matrix."""

    name = ""
    label = ""

    def __init__(self, **kwds):
        if kwds:
            raise TypeError(f"cov_type {self.name!r} takes no options; got {sorted(kwds)}")
        self.kwds = {}

    @abstractmethod
    def compute(self, state) -> np.ndarray:
        """The covariance matrix for the fitted ``state``."""

    def describe(self) -> str:
        return self.label or self.name


class NonRobust(CovarianceEstimator):
    """Inverse of the observed information at the MLE (equal to the expected information for
    the multinomial logit, whose Hessian does not depend on the outcome)."""

    name = "nonrobust"
    label = "nonrobust"

    def compute(self, state):
        return inverse_information(state.info)


_REGISTRY: dict[str, type[CovarianceEstimator]] = {"nonrobust": NonRobust}


def register(cls: type[CovarianceEstimator]) -> type[CovarianceEstimator]:
    """Add an estimator class to the registry under ``cls.name``."""
    _REGISTRY[cls.name] = cls
    return cls


def get_estimator(cov_type: str, cov_kwds=None) -> CovarianceEstimator:
    """Instantiate the estimator registered as ``cov_type`` with its options."""
    key = cov_type if cov_type in _REGISTRY else str(cov_type)
    if key not in _REGISTRY:
        raise ValueError(
            f"unknown cov_type {cov_type!r}; available: {', '.join(sorted(_REGISTRY))}"
        )
    return _REGISTRY[key](**(cov_kwds or {}))
