"""Measures of fit, as Stata's ``fitstat`` (Long and Freese's SPost13) reports them after
``mlogit``.

With :math:`\\ell_1` the log-likelihood of the model, :math:`\\ell_0` that of the
intercept-only model, :math:`N` the number of observations (the sum of frequency weights),
:math:`P` the number of parameters and :math:`d` the number of slopes (the LR test's degrees
of freedom):

.. math::

    R^2_{\\mathrm{McF}} &= 1 - \\ell_1 / \\ell_0, \\qquad
    R^2_{\\mathrm{McF,adj}} = 1 - (\\ell_1 - P) / \\ell_0, \\\\
    R^2_{\\mathrm{ML}} &= 1 - \\exp\\{2 (\\ell_0 - \\ell_1) / N\\}
        \\quad \\text{(Cox-Snell)}, \\qquad
    R^2_{\\mathrm{CU}} = R^2_{\\mathrm{ML}} / (1 - \\exp\\{2 \\ell_0 / N\\})
        \\quad \\text{(Cragg-Uhler, Nagelkerke)}, \\\\
    R^2_{\\mathrm{count}} &= \\tfrac1N \\textstyle\\sum_j n_{jj}, \\qquad
    R^2_{\\mathrm{count,adj}} = \\dfrac{\\sum_j n_{jj} - \\max_r n_{r+}}{N - \\max_r n_{r+}}, \\\\
    \\mathrm{AIC} &= -2\\ell_1 + 2P, \\qquad \\mathrm{BIC} = -2\\ell_1 + P \\log N, \\qquad
    \\mathrm{BIC}' = -\\mathrm{LR} + d \\log N ,

where :math:`n_{jj}` counts the observations of outcome :math:`j` predicted as :math:`j`
(the outcome of highest fitted probability) and :math:`n_{r+}` those of outcome :math:`r`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..exceptions import DataError
from . import distributions as stats

__all__ = ["fitstat"]


def _correct_counts(res) -> tuple[float, float]:
    """Weighted count of observations whose outcome has the highest fitted probability, and
    the count of the most frequent outcome."""
    model = res.model
    probs = res.predict()[list(model.outcomes)]  # columns in level order: argmax is a code
    predicted = np.argmax(probs.to_numpy(dtype=np.float64), axis=1)
    weights = np.asarray(model.freq_weights, dtype=np.float64)
    correct = float(np.sum(weights[predicted == np.asarray(model.level_codes)]))
    return correct, float(np.max(model.outcome_counts))


def fitstat(res) -> pd.Series:
    """Measures of fit of a fitted multinomial logit, as Stata's ``fitstat``.

    Parameters
    ----------
    res : MultinomialLogitResults
        Fitted by maximum likelihood without sampling weights (the measures need a
        likelihood); the estimation sample's rows must be at hand (the count measures predict
        them).

    Returns
    -------
    pandas.Series
        Labelled values: ``loglike``, ``loglike_null``, ``deviance``, ``deviance_df``,
        ``lr``, ``lr_df``, ``lr_pvalue``, ``mcfadden``, ``mcfadden_adj``, ``cox_snell``,
        ``cragg_uhler``, ``count``, ``count_adj``, ``aic``, ``aic_n``, ``bic``, ``bic_prime``,
        ``nobs``, ``k_params`` (the definitions are in the module docstring).
    """
    model = res.model
    if model.weights is not None:
        raise DataError(
            "fitstat needs a likelihood; a model with sampling weights has a pseudo-likelihood"
        )
    if getattr(res, "method", "newton") != "newton":
        raise DataError(
            f"fitstat describes maximum-likelihood fits; these results are {res.method!r}"
        )
    ll1, ll0, n = float(res.llf), float(res.llnull), float(res.nobs)
    k = float(res.k_params)
    df = float(res.df_model)
    lr = 2.0 * (ll1 - ll0)
    cox_snell = -np.expm1(2.0 * (ll0 - ll1) / n)
    correct, most = _correct_counts(res)
    values = {
        "loglike": ll1,
        "loglike_null": ll0,
        "deviance": -2.0 * ll1,
        "deviance_df": n - k,
        "lr": lr,
        "lr_df": df,
        "lr_pvalue": float(stats.chi2.sf(lr, df)) if df > 0 else np.nan,
        "mcfadden": 1.0 - ll1 / ll0,
        "mcfadden_adj": 1.0 - (ll1 - k) / ll0,
        "cox_snell": cox_snell,
        "cragg_uhler": cox_snell / -np.expm1(2.0 * ll0 / n),
        "count": correct / n,
        "count_adj": (correct - most) / (n - most) if n > most else np.nan,
        "aic": -2.0 * ll1 + 2.0 * k,
        "aic_n": (-2.0 * ll1 + 2.0 * k) / n,
        "bic": -2.0 * ll1 + k * np.log(n),
        "bic_prime": -lr + df * np.log(n),
        "nobs": n,
        "k_params": k,
    }
    return pd.Series(values, name="fitstat", dtype=np.float64)
