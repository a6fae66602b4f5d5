"""Marginal effects at every observation (statsmodels' ``get_margeff(at="all")``).

For each estimation row :math:`i` and outcome :math:`k`, with :math:`a_i = \\beta\\,
\\partial x_i / \\partial v` (the reference outcome's entry 0),

.. math::

    \\frac{\\partial P_{ik}}{\\partial v} = P_{ik} \\big(a_{ik} - \\textstyle\\sum_l P_{il}
    a_{il}\\big), \\qquad
    \\frac{\\partial \\log P_{ik}}{\\partial v} = a_{ik} - \\textstyle\\sum_l P_{il} a_{il},

times :math:`v_i` for the ``ex`` methods; discrete variables get their changes row by row
(see :mod:`multilogit.inference.margins`).  Their weighted average over the rows is
``get_margeff(at="overall")``.  As in statsmodels there is no inference at this level: the
result holds the effects alone.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..engine import kernels
from ..exceptions import DataError
from .margins import METHOD_NAMES, chunk_rows, effect_items

__all__ = ["RowMarginalEffects", "get_margeff_rows"]

_CHUNK_ROWS = 65536


def _probabilities(X, beta):
    E = np.ascontiguousarray(X, dtype=np.float64) @ beta.T
    P = np.empty((len(E), beta.shape[0] + 1))
    kernels.softmax_rows(E, P, np.empty(len(E)))
    return P  # reference last


def _chunk_effects(model, chunk, items, beta, method):
    sample = chunk_rows(model, chunk)
    m = len(chunk.X)
    sel = slice(0, m)
    dy = method in ("dydx", "dyex")
    ex = method in ("dyex", "eyex")
    sample.prepare(items, ex)
    X = sample.design(sel)
    P = _probabilities(X, beta)
    out = np.empty((m, len(items), P.shape[1]))

    def level(Xv):
        Pv = _probabilities(Xv, beta)
        return Pv if dy else np.log(Pv)

    for t, (_, var, how, spec) in enumerate(items):
        if how == "derivative":
            D = sample.direction(sel, var, X)
            A = np.zeros((max(len(D), 1), P.shape[1]))
            A[:, :-1] = D @ beta.T
            centred = A - np.sum(P * A, axis=1, keepdims=True)
            eff = P * centred if dy else np.broadcast_to(centred, P.shape)
            if ex:
                eff = eff * sample.values(sel, var)[:, None]
        elif how == "change":
            new, base = spec
            eff = level(sample.design(sel, (var, new))) - level(sample.design(sel, (var, base)))
        else:
            up, down = sample.shifted(sel, var, 1.0), sample.shifted(sel, var, -1.0)
            eff = 0.5 * (level(up) - level(down))
        out[:, t, :] = eff
    return out


def get_margeff_rows(
    results, method: str = "dydx", dummy: bool = False, count: bool = False
) -> RowMarginalEffects:
    """The marginal effects of every variable on every outcome at each estimation row.

    Parameters
    ----------
    results : MultinomialLogitResults
    method, dummy, count
        As :func:`~multilogit.inference.margins.get_margeff`.

    Returns
    -------
    RowMarginalEffects
    """
    if isinstance(method, str):
        method = method.lower()
    if method not in METHOD_NAMES:
        raise ValueError(f"method must be one of {', '.join(METHOD_NAMES)}; got {method!r}")
    model = results.model
    items = effect_items(model, dummy, count)
    discrete = [it[1].name for it in items if it[2] != "derivative"]
    if discrete and method in ("eyex", "dyex"):
        raise ValueError(
            f"method={method!r} is an elasticity with respect to x, not defined for the discrete "
            f"variable(s) {', '.join(dict.fromkeys(discrete))}; use 'dydx' or 'eydx'"
        )
    beta = np.ascontiguousarray(results._beta)
    formula = model.design.design_info is not None
    parts = model.backend.reduce(
        lambda chunk: _chunk_effects(model, chunk, items, beta, method),
        _CHUNK_ROWS,
        None if model.is_in_memory else "multilogit: marginal effects at every row",
        frames=formula,
    )
    eff = np.concatenate(parts, axis=0)[:, :, model.level_to_internal]
    index = model.row_labels if model.is_in_memory else pd.RangeIndex(len(eff))
    return RowMarginalEffects(results, eff, [it[0] for it in items], index, method)


class RowMarginalEffects:
    """Marginal effects at every estimation row; returned by ``get_margeff(at="all")``.

    Attributes
    ----------
    margeff : ndarray, shape (nobs, terms, K)
        The effects, outcomes in level order (the reference included).
    terms : list of str
    method : str
    """

    at = "all"

    def __init__(self, results, margeff, terms, index, method):
        self.results = results
        self.margeff = margeff
        self.margeff.flags.writeable = False
        self.terms = list(terms)
        self.method = method
        self._index = index

    def frame(self) -> pd.DataFrame:
        """The effects as a DataFrame: rows the observations, columns ``(term, outcome)``."""
        outcomes = list(self.results.model.outcomes)
        cols = pd.MultiIndex.from_product([self.terms, outcomes], names=["term", "outcome"])
        return pd.DataFrame(self.margeff.reshape(len(self.margeff), -1), self._index, cols)

    def summary_frame(self, alpha: float = 0.05):
        raise DataError(
            "effects at every row (at='all') carry no standard errors, as in statsmodels; use "
            "frame() for the effects, or at='overall' / a dict of values for inference"
        )

    summary = summary_frame

    def __repr__(self) -> str:
        return f"RowMarginalEffects ({METHOD_NAMES[self.method]}, at='all')\n{self.frame()}"
