"""Other parameterisations of a fitted multinomial logit: relative-risk ratios, another reference
outcome, and the K softmax coefficient sets -- all exact transforms of the fitted results, no
refit.

Conventions
-----------
With reference outcome :math:`r`, the model's coefficients are :math:`\\beta_k - \\beta_r` for the
K - 1 other outcomes (the softmax is unchanged by adding one vector to every :math:`\\beta_k`).
Changing the reference to :math:`r'` is the linear map

.. math::

    \\gamma_l = \\beta_l - \\beta_{r'} \\quad (l \\ne r'), \\qquad \\beta_r = 0,

so :math:`\\hat\\gamma = A \\hat\\beta` and :math:`\\widehat{\\mathrm{Var}}(\\hat\\gamma) =
A \\widehat{\\mathrm{Var}}(\\hat\\beta) A^\\top` for every covariance type (the sandwich estimators
are equivariant under an invertible linear reparameterisation), and the refit gives the same
numbers up to the solver's tolerance.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from ..data import design
from ..data.labelling import relabel_index
from . import distributions as stats

__all__ = ["rrr", "repivot", "softmax_params", "SoftmaxParams", "pivot_matrix"]


def rrr(
    res,
    alpha: float = 0.05,
    labels: dict | None = None,
    outcome_labels: dict | None = None,
    short_names: bool = False,
) -> pd.DataFrame:
    """Relative-risk ratios :math:`e^{\\beta}` as Stata's ``mlogit, rrr``.

    Returns a DataFrame indexed by ``(outcome, term)`` with columns ``rrr``, ``std err`` (delta
    method, :math:`e^{\\beta} \\mathrm{se}(\\beta)`), ``z`` and ``P>|z|`` (those of the
    coefficient: the test of ``rrr = 1``), and the confidence limits ``lower``/``upper``
    :math:`= e^{\\beta \\mp z_{1-\\alpha/2} \\mathrm{se}}` (not symmetric around the ratio).
    ``labels``, ``outcome_labels`` and ``short_names`` print the terms and outcomes of the
    index as :class:`~multilogit.data.labelling.TermLabels` and
    :func:`~multilogit.data.labelling.outcome_labels_map` say (``outcome`` then holds the
    printed labels, strings).
    """
    ci = res.conf_int(alpha)
    b = res._beta.ravel()
    se = res._bse_flat
    ratio = np.exp(b)
    z = b / se
    return pd.DataFrame(
        {
            "rrr": ratio,
            "std err": ratio * se,
            "z": z,
            "P>|z|": 2.0 * stats.norm.sf(np.abs(z)),
            "lower": np.exp(ci["lower"].to_numpy()),
            "upper": np.exp(ci["upper"].to_numpy()),
        },
        index=relabel_index(
            res._flat_index,
            res.model.exog_names,
            res.model.outcomes,
            labels,
            outcome_labels,
            short_names,
        ),
    )


def pivot_matrix(outcome: design.Outcome, new_ref, p: int) -> np.ndarray:
    """The ``(J p, J p)`` map ``A`` from the flat parameters with ``outcome.ref`` as reference to
    those with ``new_ref``."""
    new = outcome.with_ref(new_ref)
    old_eq = {lv: j for j, lv in enumerate(outcome.eq_levels)}
    J = outcome.J
    T = np.zeros((J, J))
    for jn, lv in enumerate(new.eq_levels):
        if lv in old_eq and lv != outcome.ref:
            T[jn, old_eq[lv]] += 1.0
        if new.ref != outcome.ref:
            T[jn, old_eq[new.ref]] -= 1.0
    return np.kron(T, np.eye(p))


def repivot(res, new_ref):
    """Results with ``new_ref`` as reference outcome, computed exactly from ``res`` (no refit).

    Parameters, covariance (of whatever type ``res`` has), score and information are mapped
    linearly (see the module Conventions); the log-likelihood and predictions are unchanged.
    Returns a new results object; ``res`` is not modified.
    """
    model = res.model
    new_model = model.with_reference(new_ref)
    if new_model.ref == model.ref:
        return res
    p = model.k_exog
    A = pivot_matrix(model.outcome, new_model.ref, p)
    A_inv_T = np.linalg.inv(A).T
    beta = (A @ res._beta.ravel()).reshape(model.J, p)
    cov = A @ res._cov @ A.T
    st = res._state
    options = dict(st.options)
    cons = options.get("constraints")
    if cons is not None:
        # R beta = q is R A^{-1} beta' = q in the new coefficients; the labels keep the
        # constraints as written, in the coefficients of the reference they were written for.
        where = f" (written with reference {model.ref!r})"
        options["constraints"] = {
            **cons,
            "R": (np.asarray(cons["R"], dtype=np.float64) @ A_inv_T.T).tolist(),
            "labels": [t if t.endswith(where) else t + where for t in cons["labels"]],
        }
    # Score and information are covariant: s' = A^{-T} s, I' = A^{-T} I A^{-1}.
    state = replace(
        st,
        beta=beta,
        score=(A_inv_T @ np.asarray(st.score).ravel()).reshape(model.J, p),
        info=A_inv_T @ st.info @ A_inv_T.T,
        options=options,
    )
    cov = (cov + cov.T) / 2.0
    return type(res)(new_model, state, cov, res._cov_estimator)


@dataclass(frozen=True)
class SoftmaxParams:
    """All K coefficient sets of the softmax.

    Attributes
    ----------
    params : DataFrame
        Rows terms, one column per outcome (all K, in level order).
    cov : DataFrame
        Covariance of the flattened ``params.T`` (outcome-major), indexed by ``(outcome, term)``;
        singular (rank ``(K-1) p``), since only differences of columns are identified.
    center : str
        ``"reference"`` or ``"mean"``.
    """

    params: pd.DataFrame
    cov: pd.DataFrame
    center: str

    @property
    def bse(self) -> pd.DataFrame:
        """Standard errors shaped like ``params``."""
        se = np.sqrt(np.clip(np.diag(self.cov.to_numpy()), 0.0, None))
        K = self.params.shape[1]
        return pd.DataFrame(
            se.reshape(K, -1).T, index=self.params.index, columns=self.params.columns
        )


def softmax_params(res, center: str = "reference") -> SoftmaxParams:
    """The K coefficient sets :math:`\\beta_1, \\dots, \\beta_K` of the softmax.

    The model only identifies differences :math:`\\beta_k - \\beta_l` of any two columns:
    adding one vector to every column leaves every probability unchanged.  Two normalisations:

    ``center="reference"``
        :math:`\\beta_{\\mathrm{ref}} = 0` (the model's own; the reference column is zero with
        zero variance).
    ``center="mean"``
        Sum-to-zero: :math:`\\tilde\\beta_k = \\beta_k - \\frac1K \\sum_l \\beta_l`, whose
        covariance :math:`M V M^\\top` follows from the linear map ``M``; it does not depend on
        the reference the model was fitted with.
    """
    if center not in ("reference", "mean"):
        raise ValueError(f"center must be 'reference' or 'mean'; got {center!r}")
    model = res.model
    K, J, p = len(model.outcomes), model.J, model.k_exog
    # E maps the flat (J p) parameters to all K sets in level order (reference set zero).
    E = np.zeros((K, J))
    for jj, k in enumerate(k for k in range(K) if k != model.outcome.ref_index):
        E[k, jj] = 1.0
    if center == "mean":
        E = (np.eye(K) - 1.0 / K) @ E
    M = np.kron(E, np.eye(p))
    flat = M @ res._beta.ravel()
    cov = M @ res._cov @ M.T
    cols = pd.Index(model.outcomes, name=model.endog_names)
    terms = pd.Index(model.exog_names, name="term")
    idx = pd.MultiIndex.from_product(
        [list(model.outcomes), list(terms)], names=["outcome", "term"]
    )
    return SoftmaxParams(
        pd.DataFrame(flat.reshape(K, p).T, index=terms, columns=cols),
        pd.DataFrame((cov + cov.T) / 2.0, index=idx, columns=idx),
        center,
    )
