"""Summary tables built with statsmodels' own table tools (text, HTML and LaTeX)."""

from __future__ import annotations

import numpy as np
from statsmodels.iolib.summary import Summary, summary_params, table_extend
from statsmodels.iolib.table import SimpleTable

from ..data.labelling import TermLabels, outcome_labels_map
from ..exceptions import CovarianceBudgetError
from ..inference import distributions as stats

__all__ = ["COMPACT_OUTCOMES", "build_summary", "compact_table"]


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


#: Beyond this many equations ``summary()`` without ``outcomes`` is compact (one row per term).
COMPACT_OUTCOMES = 20
#: Outcomes a compact row shows per term.
COMPACT_TOP = 3


def build_summary(
    res,
    alpha=0.05,
    title=None,
    rrr=False,
    labels=None,
    outcome_labels=None,
    short_names=False,
    outcomes=None,
    compact=None,
) -> Summary:
    """One header table and one coefficient block per non-reference outcome.

    ``labels``, ``outcome_labels`` and ``short_names`` print terms and outcomes as
    :class:`~multilogit.data.labelling.TermLabels` and
    :func:`~multilogit.data.labelling.outcome_labels_map` say.  ``outcomes`` keeps the blocks
    of those equations only (in the order given).  ``compact`` replaces the blocks by one row
    per term (:func:`compact_table`); by default it is on when there are more than
    :data:`COMPACT_OUTCOMES` equations and ``outcomes`` is not given.
    """
    from .subsets import subset_outcomes

    model = res.model
    if compact is None:
        compact = outcomes is None and model.J > COMPACT_OUTCOMES
    if compact and outcomes is not None:
        raise ValueError("compact=True shows every outcome: give outcomes or compact, not both")
    eqs = subset_outcomes(model, outcomes)
    term_label = TermLabels(model.exog_names, labels, short=short_names)
    out_label = outcome_labels_map(res.outcomes, outcome_labels)
    smry = Summary()
    left, right = header_items(res, outcome_labels)
    title = title or f"Multinomial Logit Regression Results (reference: {out_label[res.ref]})"
    smry.add_table_2cols(res, gleft=left, gright=right, title=title)
    names = [term_label(n) for n in model.exog_names]
    extra = notes(res)
    if compact:
        table, note = compact_table(res, names, out_label, alpha, rrr)
        smry.tables.append(table)
        extra.append(note)
    else:
        p = model.k_exog
        crit = stats.norm.ppf(1.0 - alpha / 2.0)
        blocks = []
        for j in eqs:
            outcome = model.eq_outcomes[j]
            idx = j * p + np.arange(p)
            coef = res.params[outcome].to_numpy()
            se, z, pv = res._stats_at(idx)
            ci = np.column_stack([coef - crit * se, coef + crit * se])
            if not res._classical_intervals:
                ci[:] = np.nan
            if rrr:
                # Relative-risk ratios (Stata's mlogit, rrr): exp(coef), delta-method SE,
                # exp(CI).
                coef, se, ci = np.exp(coef), np.exp(coef) * se, np.exp(ci)
            block = (res, coef, se, z, pv, ci)
            # table_extend moves each block's title into its top-left header cell, so every
            # block is headed by the equation's name, with the user's outcome label.
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
        if outcomes is not None and len(eqs) < model.J:
            extra.append(
                f"Equations of {len(eqs)} of the {model.J} non-reference outcomes shown "
                "(summary(outcomes=[...]))."
            )
    if extra:
        smry.add_extra_txt([f"[{i + 1}] {t}" for i, t in enumerate(extra)])
    return smry


def compact_table(res, names, out_label, alpha=0.05, rrr=False):
    """One row per term: the ``COMPACT_TOP`` outcomes with the largest absolute z (the
    largest absolute coefficient when the fit has no standard errors for all, beyond the
    memory budget), each as ``outcome coef (z)``, the range of the coefficients over the
    equations, and in how many equations the term's coefficient differs from 0 at ``alpha``.

    Returns
    -------
    table : SimpleTable
    note : str
        What the table shows and how to see whole equations.
    """
    model = res.model
    J, p = model.J, model.k_exog
    beta = res.params.to_numpy().T  # (J, p)
    try:
        z = np.asarray(res.tvalues.to_numpy().T, dtype=np.float64)
        pv = np.asarray(res.pvalues.to_numpy().T, dtype=np.float64)
    except CovarianceBudgetError:
        z = pv = None
    show = np.exp(beta) if rrr else beta
    key = np.abs(beta) if z is None else np.where(np.isfinite(z), np.abs(z), -np.inf)
    top = min(COMPACT_TOP, J)
    rows = []
    for k in range(p):
        order = np.argsort(-key[:, k], kind="stable")[:top]
        cells = [names[k]]
        for j in order:
            text = f"{out_label[model.eq_outcomes[j]]}: {show[j, k]:.4g}"
            if z is not None:
                text += f" ({z[j, k]:.2f})"
            cells.append(text)
        cells += [""] * (top - len(order))
        cells += [f"{np.nanmin(show[:, k]):.4g}", f"{np.nanmax(show[:, k]):.4g}"]
        if pv is not None:
            cells.append(f"{int(np.sum(pv[:, k] < alpha))}/{J}")
        rows.append(cells)
    what = "rrr" if rrr else "coef"
    headers = ["", *[f"#{i + 1} outcome {what} (z)" for i in range(top)]]
    if z is None:
        headers = ["", *[f"#{i + 1} outcome {what}" for i in range(top)]]
    headers += [f"min {what}", f"max {what}"]
    if pv is not None:
        headers.append(f"P<{alpha:g}")
    table = SimpleTable(rows, headers=headers, title=f"{model.endog_names}: {J} equations")
    ranked = "absolute z" if z is not None else "absolute coefficient (no standard errors)"
    note = (
        f"Compact table ({J} equations): one row per term, the {top} outcomes with the largest "
        f"{ranked}"
        + (f", and in how many equations p < {alpha:g}" if pv is not None else "")
        + ". summary(outcomes=[...]) shows the full blocks of chosen equations; "
        "summary(compact=False) all of them."
    )
    return table, note


def _relabel_coef(table):
    """Head the coefficient column ``rrr`` instead of ``coef`` (summary(rrr=True))."""
    for row in table:
        for cell in row:
            if str(cell.data).strip() == "coef":
                cell.data = "rrr"
