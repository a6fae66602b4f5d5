r"""Covariance estimators of the parameter vector, one small class per type, in a registry.

Each estimator takes the model and its fit state (parameters, information matrix at the optimum)
and returns the ``(J p, J p)`` covariance in the package's flat outcome-major order.

Conventions
-----------
With :math:`H` the information (minus the Hessian of the log-likelihood) at the estimates and
:math:`s_i = \partial \ell_i / \partial \beta` the score of row :math:`i` (unweighted),
:math:`f_i` its frequency weight and :math:`w_i` its sampling weight (1 when absent):

``nonrobust``
    :math:`H^{-1}`.
``HC0``
    The plain sandwich :math:`H^{-1} \big(\sum_i f_i w_i^2 s_i s_i^\top\big) H^{-1}`
    (:math:`H^{-1} S^\top S H^{-1}` without weights).  Equal to statsmodels'
    ``MNLogit.fit(cov_type="HC0")``.
``HC1``
    ``HC0`` times :math:`n / (n - 1)`, ``n = nobs``: Stata's ``mlogit, vce(robust)`` (and the
    default with sampling weights).  Note that statsmodels' ``MNLogit`` ``"HC1"`` applies no
    correction at all (its numbers equal ``HC0``).
``cluster``
    :math:`\frac{G}{G-1} H^{-1} \big(\sum_g u_g u_g^\top\big) H^{-1}` with
    :math:`u_g = \sum_{i \in g} f_i w_i s_i`, as Stata's maximum-likelihood commands
    (``vce(cluster g)``).  With ``df_correction="statsmodels"`` the factor is
    :math:`\frac{G}{G-1}\frac{N-1}{N-k}` with ``k = (K-1) p`` all parameters, which reproduces
    statsmodels' ``MNLogit.fit(cov_type="cluster")`` exactly; ``df_correction=False`` applies none.

The meat is a reduction over the rows by the model's backend (see
:mod:`multilogit.engine.backend`): memory stays at one chunk of scores per thread plus the
``(J p, J p)`` accumulators (and a bounded block of group sums for ``cluster``), whatever holds
the rows.
"""

from __future__ import annotations

import difflib
import inspect
from abc import ABC, abstractmethod

import numpy as np

from ..engine.constrained import constrained_bread
from ..engine.threads import small_dense_blas
from ..exceptions import DataError, FitError
from ..lazy import lazy_module

# Imported at the first factorisation, not with multilogit (see multilogit.lazy).
linalg = lazy_module("scipy.linalg")
lapack = lazy_module("scipy.linalg.lapack")

__all__ = [
    "CovarianceEstimator",
    "NonRobust",
    "HC0",
    "HC1",
    "Cluster",
    "available_cov_types",
    "get_estimator",
    "bread",
    "inverse_information",
]


def inverse_information(info: np.ndarray) -> np.ndarray:
    r""":math:`\mathcal{I}^{-1}` by Cholesky (the information is symmetric positive definite).

    LAPACK ``potrf`` then ``potri``: the inverse from the factor in about :math:`q^3 / 3`
    flops more, a third of solving the factor against the identity, which matters once the
    covariance of thousands of parameters (many outcomes) is wanted.  The result is exactly
    symmetric (one triangle mirrored).
    """
    q = info.shape[0]
    with small_dense_blas(q):
        a = np.array(info, dtype=np.float64, order="F")
        if not np.all(np.isfinite(a)):
            raise ValueError("the information matrix must not contain infs or NaNs")
        c, fail = lapack.dpotrf(a, lower=0, clean=0, overwrite_a=1)
        if fail == 0:
            inv, fail = lapack.dpotri(c, lower=0, overwrite_c=1)
        if fail != 0:
            raise FitError(
                "the information matrix is singular at the estimates: standard errors do not "
                "exist (collinear design or separated data)"
            )
    upper = np.triu(inv)
    return np.ascontiguousarray(upper + np.triu(upper, 1).T)


def bread(state, info: np.ndarray | None = None) -> np.ndarray:
    r"""The inverse information of the fit ``state`` (at ``info``, default ``state.info``):
    :math:`\mathcal{I}^{-1}`, or for a fit under linear constraints :math:`R\beta = q`
    (recorded in its options) :math:`T (T^\top \mathcal{I} T)^{-1} T^\top` with :math:`T` a
    basis of the null space of :math:`R` (see :mod:`multilogit.engine.constrained`), which
    makes every covariance below the constrained one."""
    info = state.info if info is None else info
    options = getattr(state, "options", None) or {}
    cons = options.get("constraints")
    if cons is None:
        return inverse_information(info)
    with small_dense_blas(info.shape[0]):
        try:
            return constrained_bread(info, np.asarray(cons["R"], dtype=np.float64))
        except linalg.LinAlgError:
            raise FitError(
                "the information matrix restricted to the constraints is singular at the "
                "estimates: standard errors do not exist (collinear design or separated data)"
            ) from None


class CovarianceEstimator(ABC):
    """Base class: ``name`` for the summary, ``compute(model, state)`` for the matrix."""

    name = ""
    label = ""

    def __init__(self, **kwds):
        if kwds:
            raise TypeError(f"cov_type {self.name!r} takes no options; got {sorted(kwds)}")
        self.kwds = {}

    @abstractmethod
    def compute(self, model, state) -> np.ndarray:
        """The covariance matrix of ``model``'s fit ``state`` (a
        :class:`~multilogit.solve.state.FitState`: ``beta`` and ``info`` are read)."""

    def describe(self) -> str:
        return self.label or self.name


class NonRobust(CovarianceEstimator):
    """Inverse of the observed information at the MLE (equal to the expected information for
    the multinomial logit, whose Hessian does not depend on the outcome)."""

    name = "nonrobust"
    label = "nonrobust"

    def compute(self, model, state):
        return bread(state)


_REGISTRY: dict[str, type[CovarianceEstimator]] = {"nonrobust": NonRobust}


def register(cls: type[CovarianceEstimator]) -> type[CovarianceEstimator]:
    """Add an estimator class to the registry under ``cls.name``."""
    _REGISTRY[cls.name] = cls
    return cls


def available_cov_types() -> list[str]:
    """The registered covariance types, in registration order."""
    return list(_REGISTRY)


def get_estimator(cov_type: str, cov_kwds=None) -> CovarianceEstimator:
    """Instantiate the estimator registered as ``cov_type`` with its options."""
    key = cov_type if cov_type in _REGISTRY else str(cov_type)
    if key not in _REGISTRY:
        raise ValueError(
            f"unknown cov_type {cov_type!r}; available: {', '.join(sorted(_REGISTRY))}"
        )
    cls = _REGISTRY[key]
    _check_options(cls, dict(cov_kwds or {}))
    return cls(**(cov_kwds or {}))


# Options of other packages' covariance calls, and their name here.
_SYNONYMS = {"cluster": "groups", "clusters": "groups", "group": "groups", "vce": "cov_type"}


def _check_options(cls: type[CovarianceEstimator], kwds: dict) -> None:
    """Refuse an option ``cls`` does not take, naming the option it probably meant."""
    params = inspect.signature(cls.__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    known = [n for n in params if n != "self"]
    for key in kwds:
        if key in known:
            continue
        guess = _SYNONYMS.get(key)
        close = [guess] if guess in known else difflib.get_close_matches(str(key), known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        takes = f"its options: {', '.join(known)}" if known else "it takes no options"
        raise TypeError(f"cov_type {cls.name!r} has no option {key!r}{hint} ({takes})")


# -- robust (sandwich) estimators ---------------------------------------------------------------


def _sandwich(model, state, meat):
    # The meat comes from the backend's rows, whose sampling weights are divided by the
    # model's weight scale (a power of two, so exactly): the bread is taken in that scale too,
    # where neither the squared weights of the meat nor the information can underflow or
    # overflow.  The sandwich does not depend on the scale.
    scale = getattr(model, "weight_scale", 1.0)
    inv = bread(state, state.info / scale if scale != 1.0 else state.info)
    cov = inv @ meat @ inv
    return (cov + cov.T) / 2.0


class HC0(CovarianceEstimator):
    r"""Plain sandwich :math:`H^{-1} (S^\top S) H^{-1}`; equals statsmodels' MNLogit ``HC0``."""

    name = "HC0"
    label = "HC0"
    factor_label = ""

    def meat(self, model, state) -> np.ndarray:
        return model.backend.score_outer(state.beta)

    def factor(self, model) -> float:
        return 1.0

    def note(self) -> str:
        return "Heteroskedasticity-robust standard errors (HC0, no small-sample factor)."

    def compute(self, model, state):
        return self.factor(model) * _sandwich(model, state, self.meat(model, state))


class HC1(HC0):
    """``HC0`` times ``n / (n - 1)`` as Stata's ``mlogit, vce(robust)``.

    statsmodels' MNLogit ``cov_type="HC1"`` applies no small-sample factor (it equals ``HC0``).
    """

    name = "HC1"
    label = "HC1"

    def factor(self, model) -> float:
        n = model.nobs
        if n <= 1:
            raise DataError("HC1 needs more than one observation")
        return n / (n - 1.0)

    def note(self) -> str:
        return "Robust standard errors (HC1: sandwich times n/(n-1), as Stata's vce(robust))."


_DF_CORRECTIONS = {True: "stata", "stata": "stata", "statsmodels": "statsmodels", False: "none"}


class Cluster(CovarianceEstimator):
    r"""Cluster-robust sandwich over the groups ``groups``.

    Parameters
    ----------
    groups : array-like or str
        Cluster id of each row (of the data as given, or of the rows kept); with a formula model
        also a column name.  Rows dropped for missing values are dropped from ``groups`` too.
    df_correction : {True, "stata", "statsmodels", False}
        ``True``/``"stata"`` (default): :math:`G/(G-1)` as Stata's ML commands;
        ``"statsmodels"``: :math:`G/(G-1) \cdot (N-1)/(N-k)`, ``k`` all ``(K-1) p``
        parameters, as statsmodels' MNLogit; ``False``: none.
    """

    name = "cluster"
    label = "cluster"

    def __init__(self, groups=None, df_correction=True):
        if groups is None:
            raise TypeError("cov_type 'cluster' needs cov_kwds={'groups': ...}")
        key = df_correction if isinstance(df_correction, bool | str) else None
        if key not in _DF_CORRECTIONS:
            raise ValueError(
                "df_correction must be True, 'stata', 'statsmodels' or False; "
                f"got {df_correction!r}"
            )
        self.df_correction = _DF_CORRECTIONS[key]
        self.kwds = {"groups": groups, "df_correction": df_correction}
        self.n_groups = None

    def compute(self, model, state):
        # Row-aligned codes in the backend's own form (an array, a stored column, a Dask array).
        codes, n_codes = model.group_codes(self.kwds["groups"])
        meat, weight = model.backend.cluster_meat(state.beta, codes, n_codes)
        G = int(np.count_nonzero(weight > 0))
        if G < 2:
            raise DataError(f"cluster-robust covariance needs at least 2 clusters; got {G}")
        self.n_groups = G
        fac = G / (G - 1.0)
        if self.df_correction == "statsmodels":
            n, k = model.nobs, state.beta.size
            cons = (getattr(state, "options", None) or {}).get("constraints")
            if cons is not None:
                k -= len(cons["R"])  # free parameters of a constrained fit
            fac *= (n - 1.0) / (n - k)
        elif self.df_correction == "none":
            fac = 1.0
        return fac * _sandwich(model, state, meat)

    def describe(self) -> str:
        return "cluster"

    def note(self) -> str:
        fac = {
            "stata": "G/(G-1)",
            "statsmodels": "G/(G-1) (N-1)/(N-k)",
            "none": "no small-sample factor",
        }[self.df_correction]
        return f"Standard errors robust to clustering in {self.n_groups} clusters ({fac})."


for _cls in (HC0, HC1, Cluster):
    register(_cls)
