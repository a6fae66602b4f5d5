"""Penalised fits: the options of a penalty, the penalty they define on a model, and what a
fit does after the solve (trimming the zeros of an L1 fit, the covariance it reports).

Three penalties, all subtracted from the log-likelihood (not scaled by :math:`1/n`):

``"l2"`` (``fit(penalty="l2", alpha=...)``)
    :math:`\\tfrac{\\alpha}{2}\\,Q(\\beta)`, a ridge.  ``l2_form="symmetric"`` (default):
    :math:`Q` is the sum of squares of the coefficients of the symmetric parameterisation, one
    vector per outcome centred to sum to 0 (scikit-learn's multinomial ``LogisticRegression``
    with ``C = 1 / alpha``, glmnet); it does not depend on the reference outcome.
    ``l2_form="reference"``: :math:`Q` is the sum of squares of the reference-coded
    coefficients (``params``), which depends on the reference; with
    ``penalize_intercept=True`` this is nnet's ``multinom(decay = alpha / 2)``.  Intercepts are
    unpenalised unless ``penalize_intercept`` (see
    :class:`~multilogit.solve.objective.QuadraticPenalty`).
``"l1"`` (``fit_regularized(method="l1", alpha=...)``)
    :math:`\\sum_i \\alpha_i |\\beta_i|` on the reference-coded coefficients, ``alpha`` a
    scalar or one weight per coefficient (statsmodels' ``MNLogit.fit_regularized``, the same
    order); zeros are trimmed as statsmodels does (:func:`~multilogit.solve.l1.trim`).
``"elastic_net"`` (``fit_regularized(method="elastic_net", alpha=..., L1_wt=...)``)
    :math:`\\sum_i \\alpha_i \\big(\\text{L1\\_wt}\\,|\\beta_i| + \\tfrac{1 - \\text{L1\\_wt}}{2}
    \\beta_i^2\\big)`, statsmodels' ``GLM.fit_regularized`` elastic net without its
    :math:`1/n` (GLM's ``alpha`` is ours divided by ``nobs``).

Inference.  The ridge's standard errors are the square roots of the diagonal of the inverse
*penalised* information :math:`(\\mathcal{I} + \\alpha A)^{-1}`: the covariance of the
Laplace approximation to the posterior under the Gaussian prior the penalty is, so the
intervals are approximate credible intervals and the z statistics are not classical tests
(the estimates are shrunk toward 0).  Robust covariance types use the same bread around the
likelihood's score outer products.  For L1 and elastic net the standard errors are
statsmodels': from the inverse information of the smooth part restricted to the coefficients
not trimmed, NaN for the trimmed ones; they treat the selected set as fixed, so p-values and
confidence intervals, which would ignore the selection, are NaN unless
``naive_inference=True`` asks for them (statsmodels reports them without a warning).
statsmodels' own penalised GLM fits (``GLM.fit_regularized``) report no standard errors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from ..solve.l1 import TRIM_MODES, ElasticNetPenalty, trim
from ..solve.objective import QuadraticPenalty

__all__ = ["PenaltyOptions", "build_penalty", "coerce_alpha", "finish_sparse"]

PENALTIES = ("l2", "l1", "elastic_net")
L2_FORMS = ("symmetric", "reference")


@dataclass(frozen=True)
class PenaltyOptions:
    """What penalty a fit maximises the log-likelihood less (see the module docstring).

    ``alpha`` is a nonnegative float, or (``"l1"``, ``"elastic_net"``) a tuple of one weight
    per coefficient in the flat outcome-major order (:func:`coerce_alpha` makes it from what a
    user passes).
    """

    name: str
    alpha: float | tuple = 0.0
    l2_form: str = "symmetric"
    penalize_intercept: bool = False
    L1_wt: float = 1.0
    trim_mode: str = "auto"
    auto_trim_tol: float = 0.01
    size_trim_tol: float = 1e-4
    qc_tol: float = 0.03
    naive_inference: bool = False

    def __post_init__(self):
        if self.name not in PENALTIES:
            raise ValueError(
                f"unknown penalty {self.name!r}; available: 'l2' (fit), 'l1' and 'elastic_net' "
                "(fit_regularized)"
            )
        if isinstance(self.alpha, tuple):
            if self.name == "l2":
                raise ValueError("penalty='l2' takes one alpha (a nonnegative number)")
            values = np.asarray(self.alpha, dtype=np.float64)
            if not np.all(np.isfinite(values) & (values >= 0)):
                raise ValueError("alpha must be finite and nonnegative in every coefficient")
        else:
            object.__setattr__(self, "alpha", _nonnegative("alpha", self.alpha))
        if self.l2_form not in L2_FORMS:
            raise ValueError(f"l2_form must be 'symmetric' or 'reference'; got {self.l2_form!r}")
        wt = _nonnegative("L1_wt", self.L1_wt)
        if wt > 1:
            raise ValueError(f"L1_wt must be in [0, 1]; got {self.L1_wt!r}")
        object.__setattr__(self, "L1_wt", 1.0 if self.name == "l1" else wt)
        if self.trim_mode not in TRIM_MODES:
            raise ValueError(f"trim_mode must be 'auto', 'size' or 'off'; got {self.trim_mode!r}")
        for name in ("auto_trim_tol", "size_trim_tol", "qc_tol"):
            object.__setattr__(self, name, _nonnegative(name, getattr(self, name)))
        object.__setattr__(self, "penalize_intercept", bool(self.penalize_intercept))
        object.__setattr__(self, "naive_inference", bool(self.naive_inference))

    @property
    def sparse(self) -> bool:
        """Whether the penalty has an L1 part (zeros, trimming, no p-values by default)."""
        return self.name != "l2" and self.L1_wt > 0

    def describe(self) -> str:
        """A short label for the summary."""
        if self.name == "l2":
            where = "" if self.penalize_intercept else ", intercepts unpenalized"
            return f"Ridge (L2, {self.l2_form}{where})"
        if self.name == "l1":
            return "L1 (lasso)"
        return f"Elastic net (L1_wt={self.L1_wt:g})"


def _nonnegative(name: str, value) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a nonnegative number; got {value!r}") from None
    if not (math.isfinite(x) and x >= 0):
        raise ValueError(f"{name} must be finite and nonnegative; got {value!r}")
    return x


def coerce_alpha(model, alpha) -> float | tuple:
    """``alpha`` as :class:`PenaltyOptions` holds it: a float, or one weight per coefficient
    (flat outcome-major) from a flat array or one shaped like ``params`` (terms x outcomes,
    statsmodels' shape; a DataFrame is aligned on its labels)."""
    import pandas as pd

    if alpha is None:
        raise ValueError("a penalty needs alpha (its strength)")
    if isinstance(alpha, pd.DataFrame):
        try:
            alpha = alpha.loc[list(model.exog_names), list(model.eq_outcomes)]
        except KeyError:
            raise ValueError(
                "alpha as a DataFrame must have the terms as rows and the non-reference "
                "outcomes as columns, as params"
            ) from None
    a = np.asarray(alpha)
    if a.ndim == 0:
        return _nonnegative("alpha", a)
    if not np.issubdtype(a.dtype, np.number) or np.iscomplexobj(a):
        raise ValueError(f"alpha must be nonnegative numbers; got dtype {a.dtype}")
    J, p = model.J, model.k_exog
    if a.size != J * p or a.ndim > 2:
        raise ValueError(
            f"alpha must be a number or have one value per coefficient ({J} outcomes x {p} "
            f"terms = {J * p}); got shape {a.shape}"
        )
    a = a.astype(np.float64)
    if a.ndim == 2 and a.shape == (p, J):
        a = a.T
    flat = tuple(float(x) for x in a.ravel())
    if not all(math.isfinite(x) and x >= 0 for x in flat):
        raise ValueError("alpha must be finite and nonnegative in every coefficient")
    return flat


def _term_weights(model, penalize_intercept: bool) -> np.ndarray:
    w = np.ones(model.k_exog)
    ic = model._intercept_col()
    if ic is not None and not penalize_intercept:
        w[ic] = 0.0
    return w


def build_penalty(model, opts: PenaltyOptions | None):
    """The penalty of ``opts`` on ``model``'s coefficients (original coordinates), or
    ``None`` (no options, or every weight 0)."""
    if opts is None or not np.any(np.asarray(opts.alpha, dtype=np.float64) > 0):
        # No penalty at all is maximum likelihood, watched for separation as usual.
        return None
    J, p = model.J, model.k_exog
    if opts.name == "l2":
        w = _term_weights(model, opts.penalize_intercept)
        if opts.l2_form == "symmetric":
            return QuadraticPenalty.symmetric(opts.alpha, J, w)
        return QuadraticPenalty.reference(opts.alpha, J, w)
    if isinstance(opts.alpha, tuple):
        if len(opts.alpha) != J * p:
            raise ValueError(
                f"alpha has {len(opts.alpha)} values; the model has {J * p} coefficients"
            )
        alpha = np.asarray(opts.alpha).reshape(J, p)
    else:
        # statsmodels applies a scalar alpha to every coefficient, intercepts too
        # (fit_regularized's default penalize_intercept=True); False exempts them.
        alpha = np.full((J, p), opts.alpha) * _term_weights(model, opts.penalize_intercept)
    return ElasticNetPenalty(alpha * opts.L1_wt, alpha * (1.0 - opts.L1_wt))


def finish_sparse(model, state, penalty: ElasticNetPenalty, opts: PenaltyOptions):
    """Trim an L1 or elastic-net fit's zeros and set up the information for its covariance.

    Returns a new state whose ``beta`` has the trimmed coefficients exactly 0, ``trimmed``
    marks them, and ``info`` is the smooth part's information with the trimmed rows and
    columns replaced by an identity block: its inverse is then, on the other coefficients,
    the inverse of the information restricted to them (statsmodels' covariance of an L1 fit),
    and every covariance type applies unchanged.  The log-likelihood is evaluated again only if
    trimming moved a coefficient.
    """
    beta, trimmed = trim(
        state.beta,
        state.score,
        penalty.l1,
        opts.trim_mode,
        opts.auto_trim_tol,
        opts.size_trim_tol,
        opts.qc_tol,
        stacklevel=4,  # the user's call: finish_sparse, fit, fit_regularized, user
    )
    info, score, llf = state.info, state.score, state.llf
    if np.any(beta != state.beta):
        d = model.backend.derivatives(beta, hessian=True)
        pen = penalty.value(beta)
        info = d.info + penalty.hessian(beta)
        score = d.score - penalty.gradient(beta)
        llf = d.llf - pen
        state = replace(state, penalty=pen)
    flat = trimmed.ravel()
    info = np.array(info, dtype=np.float64, copy=True)
    info[flat, :] = 0.0
    info[:, flat] = 0.0
    info[flat, flat] = 1.0
    return replace(state, beta=beta, score=score, llf=llf, info=info, trimmed=trimmed)
