"""Marginal effects at several representative values in one call (Stata's
``margins, dydx(*) at(write=(30 50 70))``, marginaleffects' ``avg_slopes(newdata =
datagrid(...))``).

Each scenario of ``at`` (a grid of values, see
:func:`~multilogit.inference.predictive_margins.at_scenarios`) fixes its variables in every row
and averages the effects over the sample, exactly as
:func:`~multilogit.inference.margins.get_margeff` with that ``at`` dict; the effects of all
scenarios are stacked into one table whose covariance is joint (the stacked Jacobians times the
results' covariance), so effects at different values can be contrasted
(:meth:`~multilogit.inference.margins_table.MarginsTable.contrasts`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .margins import METHOD_NAMES, get_margeff
from .margins_table import MarginsTable
from .predictive_margins import at_scenarios

__all__ = ["MarginalEffectsAt", "get_margeff_at"]


def get_margeff_at(
    results, at: dict | list[dict], method: str = "dydx", dummy: bool = False, count: bool = False
) -> MarginalEffectsAt:
    """Average marginal effects with the variables of ``at`` fixed at each of its scenarios.

    Parameters
    ----------
    results : MultinomialLogitResults
    at : dict or list of dict
        ``{variable: value or list of values}`` (the Cartesian grid of the values) or a list
        of dicts with scalar values (one scenario each).
    method, dummy, count
        As :func:`~multilogit.inference.margins.get_margeff`.

    Returns
    -------
    MarginalEffectsAt
        ``summary_frame()`` indexed by ``(outcome, at keys..., term)``.
    """
    keys, scenarios = at_scenarios(at)
    model = results.model
    names = list(model.exog_names)
    labels = [
        names[k] if isinstance(k, int | np.integer) and not isinstance(k, bool) else str(k)
        for k in keys
    ]
    per = [
        get_margeff(results, dict(zip(keys, s, strict=True)), method, dummy=dummy, count=count)
        for s in scenarios
    ]
    terms = list(per[0].margeff.index)
    K = len(model.outcomes)
    T = len(terms)
    est = np.stack([m.margeff.to_numpy() for m in per], axis=0)  # (S, T, K)
    jac = np.stack([m.jacobian.reshape(K, T, -1) for m in per], axis=1)  # (K, S, T, P)
    est = np.transpose(est, (2, 0, 1))  # (K, S, T)
    rows = [(o,) + tuple(s) + (t,) for o in model.outcomes for s in scenarios for t in terms]
    index = pd.MultiIndex.from_tuples(rows, names=["outcome"] + labels + ["term"])
    return MarginalEffectsAt(
        results, est.ravel(), jac.reshape(K * len(scenarios) * T, -1), index, per[0].method, at
    )


class MarginalEffectsAt(MarginsTable):
    """Marginal effects at several values of some variables, with joint delta-method
    inference; returned by ``results.get_margeff(at={...lists...})``.

    ``contrasts(variable=<at key>)`` compares the effects at different values.
    """

    def __init__(self, results, estimates, jacobian, index, method, at):
        super().__init__(results, estimates, jacobian, index, stat=METHOD_NAMES[method])
        self.method = method
        self.at = at

    title = "Marginal Effects at Values"

    def _header(self) -> list:
        return [("Method:", [self.method])]
