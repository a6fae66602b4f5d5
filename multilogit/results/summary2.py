"""``results.summary2()``: the summary in the form of statsmodels' ``summary2`` (tables held as
DataFrames, rendered as text, HTML or LaTeX by :mod:`statsmodels.iolib.summary2`).

Where it differs from statsmodels' ``MNLogitResults.summary2`` on purpose: each equation is
headed by its outcome label (``prog = general``; statsmodels numbers the equations from 0, so
its first block reads ``y = 0`` although 0 is the reference), the statistic columns read ``z``
and ``P>|z|`` (statsmodels heads the same normal-theory numbers ``t``), and the header names
the reference outcome and the covariance type.
"""

from __future__ import annotations

import datetime

from statsmodels.iolib import summary2 as sm_summary2

from ..data.labelling import TermLabels, outcome_labels_map
from .summary import notes

__all__ = ["build_summary2"]


def _info(res, ref_label: str) -> dict:
    """The header of the summary: statsmodels' keys where it has them, in its order."""
    return {
        "Model:": "MultinomialLogit",
        "Dependent Variable:": str(res.model.endog_names),
        "Date:": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "No. Observations:": f"{res.nobs:g}",
        "Df Model:": f"{res.df_model:g}",
        "Df Residuals:": f"{res.df_resid:g}",
        "Converged:": str(res.converged),
        "No. Iterations:": str(res.n_iter),
        "Method:": {"newton": "MLE", "firth": "Firth"}.get(res.method, res.method),
        "Reference outcome:": ref_label,
        "Cov. Type:": res.cov_type,
        "Pseudo R-squared:": f"{res.prsquared:#8.3f}",
        "AIC:": f"{res.aic:8.4f}",
        "BIC:": f"{res.bic:8.4f}",
        "Log-Likelihood:": f"{res.llf:#8.5g}",
        "LL-Null:": f"{res.llnull:#8.5g}",
        "LLR p-value:": f"{res.llr_pvalue:#8.5g}",
    }


def build_summary2(
    res,
    alpha: float = 0.05,
    float_format: str = "%.4f",
    labels=None,
    outcome_labels=None,
    short_names: bool = False,
):
    """A :class:`statsmodels.iolib.summary2.Summary`: the header, then one coefficient table
    per non-reference outcome (its first column the equation's heading and the terms), then
    the notes of :meth:`~multilogit.MultinomialLogitResults.summary`.

    Parameters
    ----------
    res : MultinomialLogitResults
    alpha : float
        Confidence intervals have coverage ``1 - alpha``.
    float_format : str
        printf-style format of the numbers in the coefficient tables.
    labels, outcome_labels, short_names
        How terms and outcomes are printed, as in
        :meth:`~multilogit.MultinomialLogitResults.summary`.
    """
    model = res.model
    term_label = TermLabels(model.exog_names, labels, short=short_names)
    out_label = outcome_labels_map(res.outcomes, outcome_labels)
    smry = sm_summary2.Summary()
    smry.add_dict(_info(res, out_label[res.ref]))
    ci = res.conf_int(alpha)
    names = [term_label(n) for n in model.exog_names]
    for outcome in model.eq_outcomes:
        table = sm_summary2.summary_params(
            (
                res,
                res.params[outcome].to_numpy(),
                res.bse[outcome].to_numpy(),
                res.tvalues[outcome].to_numpy(),
                res.pvalues[outcome].to_numpy(),
                ci.loc[outcome].to_numpy(),
            ),
            xname=names,
            alpha=alpha,
            use_t=False,
        )
        heading = f"{model.endog_names} = {out_label[outcome]}"
        table.insert(0, heading, table.index)
        smry.add_df(table, index=False, header=True, float_format=float_format)
    smry.add_title(f"Results: MultinomialLogit (reference: {out_label[res.ref]})")
    extra = notes(res)
    if extra:
        smry.add_text("\n".join(f"[{i + 1}] {t}" for i, t in enumerate(extra)))
    return smry
