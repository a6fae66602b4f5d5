"""Summary tables built with statsmodels' own table tools (text, HTML and LaTeX)."""

from __future__ import annotations

import numpy as np
from statsmodels.iolib.summary import Summary, summary_params, table_extend

from ..data.labelling import TermLabels, outcome_labels_map

__all__ = ["build_summary"]


_METHODS = {
    "newton": "MLE (Newton-Raphson)",
    "firth": "Firth (mean bias-reduced)",
    "firth-median": "Median bias-reduced",
}


def _fmt(x, spec):
    # Header statistics that do not exist (llnull without a constant) are "n/a", not "nan".
    return "n/a" if x is None or (isinstance(x, float) and np.isnan(x)) else format(x, spec)


def header_items(res, outcome_labels=None):
    """Left and right columns of the header table as ``(label, [value])`` pairs."""
    model = res.model
    ref_label = outcome_labels_map(res.outcomes, outcome_labels)[res.ref]
    left = [
        ("Dep. Variable:", [str(model.endog_names)]),
        ("Model:", ["MultinomialLogit"]),
        ("Method:", [_method_label(res)]),
        ("No. Observations:", [f"{res.nobs:g}"]),
        ("Df Residuals:", [f"{res.df_resid:g}"]),
        ("Df Model:", [f"{res.df_model:g}"]),
        ("Reference outcome:", [ref_label]),
        ("Covariance Type:", [res._cov_estimator.describe()]),
    ]
    n_groups = getattr(res._cov_estimator, "n_groups", None)
    if n_groups is not None:
        left.append(("No. Clusters:", [str(n_groups)]))
    right = [
        ("Pseudo R-squ.:", [_fmt(res.prsquared, ".4f")]),
        ("Log-Likelihood:", [_fmt(res.llf, ".6g")]),
        *(
            [("Penalized LL:", [_fmt(res.llf_penalized, ".6g")])]
            if res.method == "firth" or res.penalty is not None
            else []
        ),
        ("LL-Null:", [_fmt(res.llnull, ".6g")]),
        ("LLR p-value:", [_fmt(res.llr_pvalue, ".4g")]),
        ("AIC:", [_fmt(res.aic, ".6g")]),
        ("BIC:", [_fmt(res.bic, ".6g")]),
        ("converged:", [str(res.converged)]),
        ("Iterations:", [str(res.n_iter)]),
    ]
    return left, right


def _method_label(res) -> str:
    pen = res.penalty
    if pen is None:
        return _METHODS.get(res.method, res.method)
    return {"l2": "Penalized ML (ridge)", "l1": "Penalized ML (L1)"}.get(
        pen["name"], "Penalized ML (elastic net)"
    )


def _penalty_note(res) -> str | None:
    pen = res.penalty
    if pen is None:
        return None
    alpha = pen["alpha"]
    strength = f"alpha={alpha:g}" if isinstance(alpha, float | int) else "alpha per coefficient"
    if pen["name"] == "l2":
        where = "intercepts penalized" if pen["penalize_intercept"] else "intercepts unpenalized"
        return (
            f"Ridge penalty ({pen['l2_form']} form, {strength}, {where}): standard errors from "
            "the inverse penalized information, an approximate posterior covariance; the "
            "intervals are approximate credible intervals and the p-values (and the LLR test) "
            "are not classical tests."
        )
    kind = "L1" if pen["name"] == "l1" else f"Elastic-net (L1_wt={pen['L1_wt']:g})"
    text = (
        f"{kind} penalty ({strength}): {res.k_params} coefficients not trimmed (0 with NaN "
        "standard errors otherwise); their standard errors treat the selected set as fixed. "
    )
    if pen.get("naive_inference"):
        return text + "p-values and intervals (naive_inference=True) ignore the selection."
    return text + "No p-values or intervals: they would ignore the selection."


def notes(res) -> list[str]:
    """Footnotes: anything a reader must know before trusting the table."""
    out = []
    pen_note = _penalty_note(res)
    if pen_note is not None:
        out.append(pen_note)
    if not res.converged:
        out.append(
            f"Newton-Raphson did not converge ({res.fit_message}); the estimates are unreliable."
        )
    n_dropped = getattr(res.model, "n_dropped", 0)
    if n_dropped:
        out.append(f"{n_dropped} rows with missing values were dropped.")
    if getattr(res.model, "weights", None) is not None:
        out.append(
            "Sampling weights: the log-likelihood is a pseudo-likelihood, so LR statistics "
            f"(LLR p-value) are not valid tests; covariance {res.cov_type}."
        )
    if res.k_constant == 0:
        out.append(
            "The model has no constant: the intercept-only model is not nested in it, so "
            "LL-Null, the LR test and the pseudo R-squared are not available (n/a)."
        )
    spec = getattr(res.model, "_offset_spec", None)
    if spec is not None:
        names = spec.get("names")
        what = (
            "Offset " + ", ".join(repr(n) for n in names)
            if names
            else "An offset (given as values)"
        )
        out.append(
            f"{what} added to the linear predictors (a known term, not a parameter); "
            "LL-Null is the fit of the intercepts with the offset."
        )
    cov_note = getattr(res._cov_estimator, "note", None)
    if cov_note is not None:
        out.append(cov_note())
    out.extend(getattr(res, "_summary_notes", ()))
    return out


def build_summary(
    res,
    alpha=0.05,
    title=None,
    rrr=False,
    labels=None,
    outcome_labels=None,
    short_names=False,
) -> Summary:
    """One header table and one coefficient block per non-reference outcome.

    ``labels``, ``outcome_labels`` and ``short_names`` print terms and outcomes as
    :class:`~multilogit.data.labelling.TermLabels` and
    :func:`~multilogit.data.labelling.outcome_labels_map` say.
    """
    model = res.model
    term_label = TermLabels(model.exog_names, labels, short=short_names)
    out_label = outcome_labels_map(res.outcomes, outcome_labels)
    smry = Summary()
    left, right = header_items(res, outcome_labels)
    title = title or f"Multinomial Logit Regression Results (reference: {out_label[res.ref]})"
    smry.add_table_2cols(res, gleft=left, gright=right, title=title)
    ci = res.conf_int(alpha)
    params, bse = res.params, res.bse
    if rrr:
        # Relative-risk ratios (Stata's mlogit, rrr): exp(coef), delta-method SE, exp(CI).
        params, bse = np.exp(params), np.exp(params) * bse
        ci = np.exp(ci)
    names = [term_label(n) for n in model.exog_names]
    blocks = []
    for outcome in model.eq_outcomes:
        block = (
            res,
            params[outcome].to_numpy(),
            bse[outcome].to_numpy(),
            res.tvalues[outcome].to_numpy(),
            res.pvalues[outcome].to_numpy(),
            ci.loc[outcome].to_numpy(),
        )
        # table_extend moves each block's title into its top-left header cell, so every block
        # is headed by the equation's name, with the user's outcome label.
        blocks.append(
            summary_params(
                block,
                xname=names,
                alpha=alpha,
                use_t=False,
                title=f"{model.endog_names}={out_label[outcome]}",
            )
        )
    table = table_extend(blocks, keep_headers=True)
    if rrr:
        _relabel_coef(table)
    smry.tables.append(table)
    extra = notes(res)
    if extra:
        smry.add_extra_txt([f"[{i + 1}] {t}" for i, t in enumerate(extra)])
    return smry


def _relabel_coef(table):
    """Head the coefficient column ``rrr`` instead of ``coef`` (summary(rrr=True))."""
    for row in table:
        for cell in row:
            if str(cell.data).strip() == "coef":
                cell.data = "rrr"
