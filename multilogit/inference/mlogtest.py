"""Stata's ``mlogtest`` in one call, and the Small-Hsiao test of the independence of
irrelevant alternatives.

:func:`mlogtest` gathers the tests that follow a multinomial logit (Long and Freese, SPost13):
for each term, that its coefficients are zero in every equation (likelihood-ratio and Wald, a
factor tested as a whole); for each pair of outcomes, that they can be combined (Wald and
likelihood-ratio); and the IIA tests of Hausman and McFadden and of Small and Hsiao for each
omitted outcome.

Small-Hsiao (1985)
------------------
The rows are split in halves :math:`A` and :math:`B` (at random with a seed, or by a split the
user gives, as ``mlogtest, smhsiao`` with ``samp()``).  The full model is fitted on each half,
and the estimates are combined as

.. math::

    \\hat\\beta_{AB} = \\tfrac{1}{\\sqrt2}\\, \\hat\\beta_A
    + \\big(1 - \\tfrac{1}{\\sqrt2}\\big)\\, \\hat\\beta_B .

The restricted model (outcome :math:`o` left out, its rows dropped) is fitted on half
:math:`B`, giving :math:`\\ell_r(\\hat\\beta^r_B)`; its log-likelihood is also evaluated at the
corresponding coefficients of :math:`\\hat\\beta_{AB}`.  Under IIA

.. math::

    SH = -2\\, \\big\\{\\ell_r(\\hat\\beta_{AB}) - \\ell_r(\\hat\\beta^r_B)\\big\\}
    \\sim \\chi^2_{q},

with :math:`q` the number of coefficients of the restricted model.  The reference outcome of
the fits is the model's, or, when that is the omitted one, the first other outcome.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..data.design import match_level
from ..exceptions import DataError
from . import distributions as stats
from .hypothesis import TestResult, anova, iia_test, test_combine, wald_test_terms

__all__ = ["MlogtestResults", "mlogtest", "small_hsiao"]


def _halves(n: int, seed, split) -> np.ndarray:
    """Boolean mask of half A: the user's ``split`` or a random half drawn with ``seed``."""
    if split is not None:
        mask = np.asarray(split)
        if mask.shape != (n,):
            raise DataError(
                f"split must have one entry per row of the model ({n}); got {mask.shape}"
            )
        if mask.dtype != bool:
            values = set(np.unique(mask).tolist())
            if not values <= {0, 1}:
                raise DataError("split must be boolean or 0/1 (1 or True: the first half)")
            mask = mask.astype(bool)
        if mask.all() or not mask.any():
            raise DataError("split puts every row in one half; both halves need rows")
        return mask
    rng = np.random.default_rng(seed)
    mask = np.zeros(n, dtype=bool)
    mask[rng.permutation(n)[: n // 2]] = True
    return mask


def _restricted_loglike(X, codes, weights, beta: np.ndarray) -> float:
    """Log-likelihood of rows with level codes ``codes`` (0 the reference) under ``beta``
    (shape ``(J, p)``, one row per non-reference code 1..J)."""
    eta = np.column_stack([np.zeros(len(X)), X @ beta.T])
    top = eta.max(axis=1, keepdims=True)
    logp = eta - top - np.log(np.exp(eta - top).sum(axis=1, keepdims=True))
    return float(np.sum(weights * logp[np.arange(len(X)), codes]))


def small_hsiao(res, omit, seed=None, split=None) -> TestResult:
    """Small-Hsiao test that the odds between the other outcomes do not depend on ``omit``.

    Parameters
    ----------
    res : MultinomialLogitResults
        A maximum-likelihood fit of an in-memory model without sampling weights.
    omit
        The outcome left out of the restricted model.
    seed : int or numpy.random.Generator, optional
        Seed of the random split in halves (reproducible for a seed).
    split : array_like of bool, optional
        Instead of a random split: True (or 1) for the rows of the first half :math:`A`.

    Returns
    -------
    TestResult
        The statistic :math:`SH`, its degrees of freedom and p-value; the note gives
        :math:`\\ell_r(\\hat\\beta_{AB})` and :math:`\\ell_r(\\hat\\beta^r_B)`.
    """
    model = res.model
    if model.weights is not None:
        raise DataError("the Small-Hsiao test needs a likelihood; the model has sampling weights")
    if getattr(model, "offset", None) is not None:
        raise DataError(
            "the Small-Hsiao test refits the model without an outcome, where the offsets of "
            "the equations have no meaning: it is not available for a model with an offset"
        )
    if res.fit_options.get("constraints") is not None:
        raise DataError(
            "the Small-Hsiao test refits the model without an outcome, where the constraints "
            "of a constrained fit have no meaning: it is not available for a constrained fit"
        )
    if not getattr(model, "is_in_memory", True):
        raise DataError(
            "the Small-Hsiao test refits halves of the rows: it needs an in-memory model"
        )
    levels = list(model.outcomes)
    if len(levels) < 3:
        raise DataError("the Small-Hsiao test needs at least three outcomes")
    omit = match_level(omit, model.outcomes, model.endog_names)
    ref = model.ref if model.ref != omit else next(lv for lv in levels if lv != omit)
    X = np.asarray(model.exog, dtype=np.float64)
    codes = np.asarray(model.level_codes)
    weights = np.asarray(model.freq_weights, dtype=np.float64)
    keep = weights > 0
    X, codes, weights = X[keep], codes[keep], weights[keep]
    labels = np.asarray(levels, dtype=object)[codes]
    exog = pd.DataFrame(X, columns=list(model.exog_names))
    in_a = _halves(len(X), seed, split)
    fit_options = {k: v for k, v in res.fit_options.items() if not k.startswith("cov_")}

    def fit(rows):
        sub = type(model)(
            pd.Series(labels[rows], name=model.endog_names),
            exog[rows].reset_index(drop=True),
            ref=ref,
            freq_weights=weights[rows],
        )
        return sub.fit(**fit_options)

    full_a, full_b = fit(in_a), fit(~in_a)
    if list(full_a.model.outcomes) != levels or list(full_b.model.outcomes) != levels:
        raise DataError(
            "a half of the split has no rows of some outcome; use another seed or split"
        )
    beta_ab = (full_a.params.to_numpy() / math.sqrt(2.0)) + (
        1.0 - 1.0 / math.sqrt(2.0)
    ) * full_b.params.to_numpy()
    beta_ab = pd.DataFrame(beta_ab, index=full_a.params.index, columns=full_a.params.columns)
    b_rows = ~in_a & (labels != omit)
    restricted = fit(b_rows)
    rest_levels = list(restricted.model.outcomes)
    if omit in rest_levels or len(rest_levels) != len(levels) - 1:
        raise DataError("half B lacks rows of an outcome other than the omitted one")
    # The restricted model's equations, in its order, from the combined full estimates.
    eqs = list(restricted.model.eq_outcomes)
    beta_r = beta_ab[eqs].to_numpy().T
    order = [restricted.model.ref, *eqs]
    sub_codes = np.array([order.index(lv) for lv in labels[b_rows]])
    ll_ab = _restricted_loglike(X[b_rows], sub_codes, weights[b_rows], beta_r)
    ll_r = float(restricted.llf)
    stat = -2.0 * (ll_ab - ll_r)
    df = float(beta_r.size)
    return TestResult(
        stat,
        df,
        float(stats.chi2.sf(stat, df)) if stat >= 0 else 1.0,
        "Small-Hsiao test of IIA",
        f"odds between the remaining outcomes do not depend on {omit!r} (IIA)",
        f"lnL(full, combined halves) = {ll_ab:.6g}; lnL(omit) = {ll_r:.6g}",
    )


@dataclass(frozen=True)
class MlogtestResults:
    """The tables of :func:`mlogtest`; each a DataFrame with ``statistic``, ``df`` and
    ``pvalue`` (``None`` when not asked for or not available, with the reason in ``notes``)."""

    lr: pd.DataFrame | None = None
    wald: pd.DataFrame | None = None
    combine_wald: pd.DataFrame | None = None
    combine_lr: pd.DataFrame | None = None
    hausman: pd.DataFrame | None = None
    small_hsiao: pd.DataFrame | None = None
    notes: tuple = field(default_factory=tuple)

    _TITLES = {
        "lr": "LR tests for independent variables (H0: all coefficients of the term are 0)",
        "wald": "Wald tests for independent variables (H0: all coefficients of the term are 0)",
        "combine_wald": "Wald tests for combining outcomes (H0: all slopes equal)",
        "combine_lr": "LR tests for combining outcomes (H0: all slopes equal)",
        "hausman": "Hausman-McFadden tests of IIA (H0: odds independent of the omitted outcome)",
        "small_hsiao": "Small-Hsiao tests of IIA (H0: odds independent of the omitted outcome)",
    }

    def tables(self) -> dict[str, pd.DataFrame]:
        """The computed tables by name, in the order of ``mlogtest``'s output."""
        return {k: getattr(self, k) for k in self._TITLES if getattr(self, k) is not None}

    def __str__(self) -> str:
        parts = []
        for key, table in self.tables().items():
            parts.append(f"{self._TITLES[key]}\n{table.to_string()}")
        parts.extend(f"Note: {n}" for n in self.notes)
        return "\n\n".join(parts)

    def _repr_html_(self) -> str:
        out = []
        for key, table in self.tables().items():
            out.append(f"<h4>{html.escape(self._TITLES[key])}</h4>{table.to_html()}")
        out.extend(f"<p>Note: {html.escape(n)}</p>" for n in self.notes)
        return "".join(out)


_TESTS = ("lr", "wald", "combine", "lrcombine", "hausman", "smhsiao")


def _table(rows: dict, names) -> pd.DataFrame:
    frame = pd.DataFrame.from_dict(
        {k: (t.statistic, t.df, t.pvalue) for k, t in rows.items()},
        orient="index",
        columns=["statistic", "df", "pvalue"],
    )
    if isinstance(names, list):
        frame.index = pd.MultiIndex.from_tuples(frame.index, names=names)
    else:
        frame.index.name = names
    return frame


def mlogtest(res, tests=_TESTS, seed=None, split=None) -> MlogtestResults:
    """The tests of Stata's ``mlogtest`` after a multinomial logit.

    Parameters
    ----------
    res : MultinomialLogitResults
    tests : sequence of str
        Any of ``"lr"`` and ``"wald"`` (each term's coefficients zero in every equation; see
        :func:`~.hypothesis.anova` and :func:`~.hypothesis.wald_test_terms`), ``"combine"``
        and ``"lrcombine"`` (each pair of outcomes combinable; see
        :func:`~.hypothesis.test_combine`), ``"hausman"`` and ``"smhsiao"`` (IIA for each
        omitted outcome; see :func:`~.hypothesis.iia_test` and :func:`small_hsiao`).  Default:
        all.
    seed, split
        The halves of the Small-Hsiao test (see :func:`small_hsiao`); one split serves every
        omitted outcome, as ``mlogtest``.

    Returns
    -------
    MlogtestResults
        Likelihood-ratio tests are left out, with a note, for a model with sampling weights.
    """
    tests = (tests,) if isinstance(tests, str) else tuple(tests)
    unknown = [t for t in tests if t not in _TESTS]
    if unknown:
        raise ValueError(f"unknown test(s) {unknown}; choose from {list(_TESTS)}")
    model = res.model
    likelihood = model.weights is None
    notes = []
    if not likelihood and {"lr", "lrcombine", "hausman", "smhsiao"} & set(tests):
        notes.append(
            "likelihood-ratio and IIA tests left out: the model has sampling weights (a "
            "pseudo-likelihood)"
        )
    out = {}
    if "lr" in tests and likelihood:
        out["lr"] = anova(res)
    if "wald" in tests:
        wald = wald_test_terms(res)
        ic = model._intercept_col()
        if ic is not None and model.exog_names[ic] in wald.index:
            wald = wald.drop(index=model.exog_names[ic])
        out["wald"] = wald
    levels = list(model.outcomes)
    pairs = [(a, b) for i, a in enumerate(levels) for b in levels[i + 1 :]]
    if "combine" in tests:
        rows = {(a, b): test_combine(res, a, b, "wald") for a, b in pairs}
        out["combine_wald"] = _table(rows, ["outcome", "versus"])
    if "lrcombine" in tests and likelihood:
        rows = {(a, b): test_combine(res, a, b, "lr") for a, b in pairs}
        out["combine_lr"] = _table(rows, ["outcome", "versus"])
    if len(levels) >= 3:
        if "hausman" in tests and likelihood:
            out["hausman"] = _table({o: iia_test(res, o) for o in levels}, "omitted")
        if "smhsiao" in tests and likelihood:
            mask = None if split is None else np.asarray(split)
            if mask is None:
                n = int(np.sum(np.asarray(model.freq_weights) > 0))
                mask = _halves(n, seed, None)
            rows = {o: small_hsiao(res, o, split=mask) for o in levels}
            out["small_hsiao"] = _table(rows, "omitted")
    elif {"hausman", "smhsiao"} & set(tests):
        notes.append("IIA tests need at least three outcomes")
    return MlogtestResults(**out, notes=tuple(notes))
