"""Predictive margins: the average predicted probability of every outcome with some variables
fixed (Stata's ``margins x`` and ``margins, at()``, marginaleffects' ``avg_predictions``).

For a scenario :math:`s` (every row with the variables of :math:`s` set to its values) and a
group :math:`g` of the estimation rows (all of them without ``over``), the margin of outcome
:math:`k` is the weighted average

.. math::

    \\bar P_k(s, g) = \\frac{\\sum_{i \\in g} w_i \\, P_k(x_i(s))}{\\sum_{i \\in g} w_i},

with :math:`w_i` the likelihood weights (frequency times sampling weight) and :math:`x_i(s)`
row :math:`i`'s design rebuilt with the variables of :math:`s` fixed.  Its Jacobian with
respect to the parameters, :math:`\\sum_i w_i P_k(x_i) (e_k - P(x_i)) \\otimes x_i / \\sum w`,
is summed block by block with the kernels of :mod:`multilogit.inference.margin_sums`, in one
pass over the rows through the model's backend (so data larger than memory are streamed), and
the covariance of the margins is the delta method's :math:`G V G^\\top` (see
:mod:`multilogit.inference.margins_table`).  The weights of the groups are treated as fixed
(Stata's default ``vce(delta)``).

Scenarios
---------
* ``variables``: the categorical variables of a formula whose every level is a scenario
  (``margins ses``); several variables give the grid of their levels.
* ``at``: ``{variable: value or list of values}`` gives the Cartesian grid of the values
  (``at={"write": [30, 50, 70], "ses": "high"}``); a list of such dicts with scalar values
  gives one scenario each (Stata's repeated ``at()``).  Keys are data columns of a formula
  model, names or positions of exog columns of an array model.
* ``over``: data columns (exog columns of an array model) whose distinct values split the
  estimation rows into groups, each averaged on its own (Stata's ``over()``); rows with a
  missing value of an ``over`` column belong to no group.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from ..exceptions import DataError
from . import margin_sums
from .margins import check_at, design_at, formula_variables, mean_designs
from .margins_table import MarginsTable

__all__ = ["PredictiveMargins", "get_margins", "at_scenarios", "is_grid"]

# Rows per chunk of the pass: formula rows are rebuilt by patsy, whose per-call overhead
# favours larger chunks; the per-row factors stay (rows, K J) per scenario.
_CHUNK_ROWS = 65536
_MAX_SCENARIOS = 10000


def _listlike(value) -> bool:
    return isinstance(value, list | tuple | np.ndarray | pd.Series | pd.Index | range)


def is_grid(at) -> bool:
    """Whether ``at`` asks for several scenarios: a dict with a list of values, or a list of
    dicts."""
    if isinstance(at, dict):
        return any(_listlike(v) for v in at.values())
    return isinstance(at, list | tuple) and len(at) > 0 and all(isinstance(a, dict) for a in at)


def at_scenarios(at) -> tuple[list, list[tuple]]:
    """The keys of ``at`` and its scenarios (tuples of values in key order): the Cartesian
    grid of a dict of values or lists, or one scenario per dict of a list of dicts (all with
    the same keys)."""
    if at is None:
        return [], [()]
    if isinstance(at, dict):
        keys = list(at)
        values = []
        for k in keys:
            v = at[k]
            v = list(v) if _listlike(v) else [v]
            if not v:
                raise DataError(f"at: the list of values of {k!r} is empty")
            values.append(v)
        return keys, list(itertools.product(*values))
    if isinstance(at, list | tuple) and at and all(isinstance(a, dict) for a in at):
        keys = list(at[0])
        for a in at[1:]:
            if list(a) != keys:
                raise DataError(
                    "at: every dict of a list must fix the same variables, in the same order; "
                    f"got {list(a)} after {keys}"
                )
        out = []
        for a in at:
            listed = [k for k, v in a.items() if _listlike(v)]
            if listed:
                raise DataError(
                    f"at: in a list of dicts each value is one value; {listed[0]!r} has a list "
                    "(use one dict of lists for a grid)"
                )
            out.append(tuple(a[k] for k in keys))
        return keys, out
    raise DataError(
        "at must be a dict {variable: value or list of values} or a list of such dicts; "
        f"got {at!r}"
    )


def _names(arg, what) -> list:
    if arg is None:
        return []
    if isinstance(arg, str):
        return [arg]
    if isinstance(arg, list | tuple):
        return list(arg)
    raise DataError(f"{what} must be a name or a list of names; got {arg!r}")


class _Plan:
    """What to compute: scenarios (labels and the values they fix) and ``over`` columns."""

    def __init__(self, results, variables, at, over):
        model = results.model
        self.model = model
        self.formula = model.design.design_info is not None
        variables = _names(variables, "variables")
        over = _names(over, "over")
        if self.formula:
            known = {
                v.name: v for v in formula_variables(model, model.source_columns, False, False)
            }
        else:
            known = {}
        factor_levels = []
        for name in variables:
            var = known.get(name)
            if not self.formula:
                raise DataError(
                    "variables= takes the categorical variables of a formula; an array model "
                    f"has none: fix {name!r} at chosen values with at={{{name!r}: [...]}}"
                )
            if var is None:
                raise DataError(
                    f"variables: {name!r} is not a variable of the formula "
                    f"({', '.join(map(repr, known))})"
                )
            if var.kind != "categorical":
                raise DataError(
                    f"variables: {name!r} is numeric; give the values to fix it at with "
                    f"at={{{name!r}: [...]}}"
                )
            factor_levels.append(list(var.levels))
        keys, at_values = at_scenarios(at)
        both = [k for k in keys if k in variables]
        if both:
            raise DataError(f"{both[0]!r} is in both variables= and at=")
        if len(set(variables)) != len(variables):
            raise DataError(f"variables: a name is repeated in {variables}")
        names = list(model.exog_names)
        labels = [
            names[k] if not self.formula and isinstance(k, int | np.integer) else k for k in keys
        ]
        self.dims = list(variables) + [str(k) for k in labels]
        self.scenarios = []  # (label tuple, overrides)
        grid = list(itertools.product(*factor_levels, at_values))
        if len(grid) > _MAX_SCENARIOS:
            raise DataError(f"{len(grid)} scenarios asked for; at most {_MAX_SCENARIOS}")
        for combo in grid:
            levels, values = combo[:-1], combo[-1]
            fixed = dict(zip(variables, levels, strict=True))
            fixed.update(zip(keys, values, strict=True))
            overrides = check_at(model, list(known.values()), fixed)
            self.scenarios.append((tuple(levels) + tuple(values), overrides))
        self.over = over
        if over:
            if self.formula:
                have = list(model.source_columns)
                where = "the data columns of the estimation rows"
            else:
                have = names
                where = "the columns of exog"
            missing = [o for o in over if o not in have]
            if missing:
                hint = (
                    "; a fit streamed from Parquet reads only the columns its formula, weights "
                    "and groups use"
                    if self.formula and not model.is_in_memory
                    else ""
                )
                raise DataError(
                    f"over: {missing[0]!r} is not one of {where} ({', '.join(have)}){hint}"
                )
            self.over_cols = None if self.formula else [names.index(o) for o in over]

    def groups(self, chunk):
        """Each row's group code and the groups' keys (tuples), or None without ``over``."""
        if not self.over:
            return None
        if self.formula:
            keys = chunk.frame[self.over].reset_index(drop=True)
        else:
            keys = pd.DataFrame(chunk.X[:, self.over_cols], columns=self.over)
        ok = keys.notna().all(axis=1).to_numpy()
        codes = np.full(len(keys), -1, dtype=np.intp)
        if not ok.any():
            return codes, []
        found, uniq = pd.factorize(pd.MultiIndex.from_frame(keys[ok]))
        codes[ok] = found
        return codes, [tuple(u) for u in uniq]


def _chunk_sums(plan, beta, chunk) -> dict:
    """One chunk's weighted sums: ``{group key: (weight, [(eff, jac) per scenario])}``."""
    w = np.ascontiguousarray(chunk.weights, dtype=np.float64)
    grouping = plan.groups(chunk)
    if grouping is None:
        codes, keys = np.zeros(len(w), dtype=np.intp), [()]
    else:
        codes, keys = grouping
    weights = np.bincount(codes[codes >= 0], weights=w[codes >= 0], minlength=len(keys))
    out = {key: (float(weights[g]), []) for g, key in enumerate(keys)}
    for _, overrides in plan.scenarios:
        rows = margin_sums.RowProbabilities(design_at(plan.model, chunk, overrides), beta)
        for key, sums in zip(
            keys, margin_sums.group_level_sums(rows, w, codes, len(keys)), strict=True
        ):
            out[key][1].append(sums)
    return out


def _merge(parts) -> dict:
    total: dict = {}
    for part in parts:  # in row order: reproducible
        for key, (weight, sums) in part.items():
            if key not in total:
                total[key] = [weight, [(e.copy(), j.copy()) for e, j in sums]]
                continue
            total[key][0] += weight
            for (e, j), (e2, j2) in zip(total[key][1], sums, strict=True):
                e += e2
                j += j2
    return total


def _sorted_keys(keys):
    try:
        return sorted(keys)
    except TypeError:  # values of mixed types: first-seen order
        return list(keys)


def _atmeans_sums(plan, beta) -> dict:
    """The margins at the means (one design row per scenario), as :func:`_merge` gives them."""
    overrides = [o for _, o in plan.scenarios]
    sums = []
    for X in mean_designs(plan.model, overrides):
        level = margin_sums.LevelSum(margin_sums.RowProbabilities(X, beta), np.ones(1), False)
        sums.append((level.eff, level.jac))
    return {(): [1.0, sums]}


def get_margins(
    results,
    variables: str | list[str] | None = None,
    at: dict | list[dict] | None = None,
    over: str | list[str] | None = None,
    atmeans: bool = False,
    by: str | list[str] | None = None,
) -> PredictiveMargins:
    """Predictive margins: average predicted probabilities of every outcome.

    Parameters
    ----------
    results : MultinomialLogitResults
    variables : str or list of str, optional
        Categorical variables of a formula; every row is set to each of their levels in turn
        (Stata ``margins ses``).
    at : dict or list of dict, optional
        ``{variable: value or list}``: the Cartesian grid of the values (Stata
        ``margins, at(write=(30 50 70))``); a list of dicts: one scenario each.
    over : str or list of str, optional
        Columns whose values split the estimation rows into groups, each averaged on its own.
    atmeans : bool
        Adjusted predictions at the means instead of averages over the rows (Stata
        ``margins ses, atmeans``): the other numeric variables at their weighted means, the
        other categorical variables' indicators at their sample shares (columns' means for
        an array model).  The means are treated as fixed.  Not with ``over``.
    by : str or list of str, optional
        Another name for ``over`` (marginaleffects' ``avg_predictions(by=...)``).

    Returns
    -------
    PredictiveMargins
        ``summary_frame()`` indexed by ``(outcome, variables..., at keys..., over...)``.

    Notes
    -----
    Without any argument: the average predicted probabilities over the estimation sample,
    which for a model with intercepts equal the sample shares of the outcomes.
    """
    if by is not None:
        if over is not None:
            raise DataError("over= and by= are the same option; give one of them")
        over = by
    plan = _Plan(results, variables, at, over)
    model = plan.model
    beta = np.ascontiguousarray(results._beta)
    if atmeans:
        if plan.over:
            raise DataError("atmeans=True is not available with over=; drop one of them")
        sums = _atmeans_sums(plan, beta)
    else:
        progress = None if model.is_in_memory else "multilogit: predictive margins"
        parts = model.backend.reduce(
            lambda chunk: _chunk_sums(plan, beta, chunk),
            _CHUNK_ROWS,
            progress,
            frames=plan.formula,
        )
        sums = _merge(parts)
    keys = [k for k in _sorted_keys(sums) if sums[k][0] > 0]
    if not keys:
        raise DataError("no estimation row belongs to an over= group with positive weight")
    J, p = beta.shape
    K = J + 1
    order = model.level_to_internal  # internal row of each outcome, in level order
    S, Gn = len(plan.scenarios), len(keys)
    est = np.empty((K, S, Gn))
    jac = np.empty((K, S, Gn, J * p))
    for g, key in enumerate(keys):
        weight, per = sums[key]
        for s, (e, j) in enumerate(per):
            est[:, s, g] = e[order] / weight
            jac[:, s, g] = j.reshape(K, J * p)[order] / weight
    outcomes = list(model.outcomes)
    labels = [lab for lab, _ in plan.scenarios]
    rows = [(o,) + lab + key for o in outcomes for lab in labels for key in keys]
    names = ["outcome"] + plan.dims + plan.over
    if len(names) == 1:
        index = pd.Index([r[0] for r in rows], name="outcome")
    else:
        index = pd.MultiIndex.from_tuples(rows, names=names)
    return PredictiveMargins(
        results, est.ravel(), jac.reshape(-1, J * p), index, variables, at, over, atmeans
    )


class PredictiveMargins(MarginsTable):
    """Average predicted probabilities with delta-method inference; returned by
    ``results.get_margins()``.

    Attributes
    ----------
    variables, at, over, atmeans
        The options used.
    jacobian : ndarray
        Derivatives of the flat margins with respect to the flat parameters.

    See :class:`~multilogit.inference.margins_table.MarginsTable` for ``summary_frame``,
    ``conf_int``, ``cov_params``, ``frame``, ``contrasts`` and ``test_equal``.
    """

    def __init__(self, results, estimates, jacobian, index, variables, at, over, atmeans=False):
        super().__init__(results, estimates, jacobian, index, stat="margin")
        self.variables = variables
        self.at = at
        self.over = over
        self.atmeans = atmeans
        self.title = "Adjusted Predictions at Means" if atmeans else "Predictive Margins"

    def _header(self) -> list:
        rows = [("Expression:", [f"Pr({self.results.model.endog_names})"])]
        if self.over:
            over = [self.over] if isinstance(self.over, str) else list(self.over)
            rows.append(("Over:", [", ".join(map(str, over))]))
        return rows
