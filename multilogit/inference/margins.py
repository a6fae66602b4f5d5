"""Marginal effects on the probability of every outcome, with delta-method standard errors.

With :math:`P_k(x)` the probability of outcome ``k`` (reference included) and a variable
:math:`v` that enters the design row :math:`x(v)`, the effects reported are

.. math::

    \\texttt{dydx} = \\frac{\\partial P_k}{\\partial v}
                  = P_k \\big(\\beta_k - \\textstyle\\sum_l P_l \\beta_l\\big)^\\top
                    \\frac{\\partial x}{\\partial v},
    \\quad
    \\texttt{eydx} = \\frac{\\partial \\log P_k}{\\partial v},
    \\quad
    \\texttt{dyex} = v \\frac{\\partial P_k}{\\partial v},
    \\quad
    \\texttt{eyex} = v \\frac{\\partial \\log P_k}{\\partial v},

averaged over the sample (``at="overall"``, Stata's default average marginal effects) or
evaluated at a representative row (``at="mean"`` / ``"median"``).  Discrete variables get a
discrete change instead of a derivative:

* a categorical term of a formula: the change from its base level to each other level, with
  every row set to that level (Stata's factor-variable ``margins, dydx()``);
* with ``dummy=True`` (not the default), a numeric 0/1 variable: :math:`P_k(v=1) - P_k(v=0)`
  (as statsmodels' ``dummy=True``);
* with ``count=True``, a non-negative integer variable:
  :math:`\\{P_k(v+1) - P_k(v-1)\\}/2` (statsmodels' definition).

For the ``ey`` methods a discrete change is a difference of log-probabilities.

The covariance of the effects is :math:`G V G^\\top`, with :math:`V` = ``results.cov_params()``
(whatever covariance type the results carry) and :math:`G` the analytic Jacobian of the effects
with respect to the parameters, summed over the rows block by block with BLAS products
(:mod:`multilogit.inference.margin_sums`): every variable entering as one design column shares
one product per block, so the cost hardly grows with the number of variables.

How ``x(v)`` is obtained
------------------------
* Array models: each non-constant design column is a variable; :math:`\\partial x/\\partial v`
  is the unit vector of that column (exact).
* Formula models: variables are the data columns the formula uses.  A numeric variable that
  enters only as itself (``write``) gets the exact unit vector.  One that enters through a
  transform or an interaction (``I(write**2)``, ``np.log(read)``, ``female:read``) gets
  :math:`\\partial x/\\partial v` by a central finite difference of the *rebuilt design* in the
  variable (step :math:`\\epsilon^{1/3}\\max(|v|, 1)`, relative error about ``1e-10``); the
  parameter Jacobian is still analytic given that direction.

Only the design columns of the terms that read the changed variable are rebuilt, once per
chunk of rows, from the few data columns those terms read; the other columns are the
backend's design rows.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd

# design.py is the one module that imports patsy; reuse its name parser from there.
from ..data.design import ast_names
from ..data.labelling import relabel_index
from ..data.labels import equation_label, level_label
from ..data.source_rows import NO_VALUES, fold_summary, merge_summaries
from ..engine.threads import block_runs, map_runs, stop_if_cancelled
from ..exceptions import DataError
from . import distributions as stats
from . import margin_sums, typical
from .margins_table import wald_table

__all__ = ["MarginalEffects", "get_margeff"]

METHODS = ("dydx", "eyex", "dyex", "eydx")
METHOD_NAMES = {
    "dydx": "dy/dx",
    "eyex": "d(lny)/d(lnx)",
    "dyex": "dy/d(lnx)",
    "eydx": "d(lny)/dx",
}
_FD_STEP = np.finfo(float).eps ** (1.0 / 3.0)
# Rows per block of the margins kernels: the per-row factors of a block, (rows, K J J), stay
# a few MiB.  A pass over an array model's rows takes larger chunks, split into blocks over
# the threads.
_CHUNK_ROWS = 8192
_PASS_ROWS = 65536
# Formula rows are rebuilt by patsy, whose per-call overhead favours larger chunks.
_FRAME_CHUNK_ROWS = 65536
_MAX_GRID = 4096


# ---------------------------------------------------------------------------------------------
# Variables


@dataclass
class _Variable:
    """One variable whose effect is reported.

    ``kind`` is ``"continuous"``, ``"dummy"``, ``"count"`` or ``"categorical"``.  ``column`` is
    the design column when :math:`\\partial x / \\partial v` is that column's unit vector.
    """

    name: str
    kind: str
    column: int | None = None
    levels: tuple = ()
    base: object = None


def _kind_from_stats(integer: bool, lo: float, hi: float, dummy: bool, count: bool) -> str:
    """How a numeric variable's effect is reported, from its summaries (all values integers,
    minimum, maximum), by statsmodels' rules: a dummy is integer-valued from 0 to 1; a count
    is non-negative integers, not constant and not a dummy."""
    if dummy and integer and lo == 0 and hi == 1:
        return "dummy"
    if count and integer and lo >= 0 and hi != lo and not (lo == 0 and hi == 1):
        return "count"
    return "continuous"


def _array_variables(model, dummy, count) -> list[_Variable]:
    backend = model.backend
    lo, hi = backend.column_range()
    # Whether each column holds only integers matters only to columns whose range allows a
    # dummy (0 to 1) or a count (non-negative): one reduction over the rows, of those alone.
    candidate = np.flatnonzero((dummy & (lo == 0) & (hi == 1)) | (count & (lo >= 0) & (hi != lo)))
    integer = np.zeros(len(lo), dtype=bool)
    if len(candidate):
        integer[candidate] = np.logical_and.reduce(
            backend.reduce(
                lambda chunk: np.all(chunk.X[:, candidate] % 1.0 == 0, axis=0), frames=False
            ),
            axis=0,
        )
    out = []
    for c, name in enumerate(model.exog_names):
        if lo[c] == hi[c]:
            continue  # the constant (statsmodels drops every zero-variance column)
        kind = _kind_from_stats(bool(integer[c]), lo[c], hi[c], dummy, count)
        out.append(_Variable(str(name), kind, column=c))
    return out


def _categorical_base(design_info, factor, levels):
    """The level coded as all zeros (the treatment reference), else the first level."""
    for codings in design_info.term_codings.values():
        for sub in codings:
            cm = sub.contrast_matrices.get(factor)
            if cm is None:
                continue
            zero = np.flatnonzero(np.all(np.asarray(cm.matrix) == 0.0, axis=1))
            if len(zero):
                return levels[int(zero[0])]
    return levels[0]


def _progress(model, label: str) -> str | None:
    """The label of a progress bar for a pass over the rows of data larger than memory (none
    for data in memory, where a pass is quick)."""
    return None if model.is_in_memory else f"multilogit: {label}"


def _numeric_stats(model, names, dummy: bool = True, count: bool = True) -> dict:
    """For each numeric data column: whether all its values are integers, its minimum and
    maximum over the estimation rows (one reduction over the rows' source data).

    The integer test is what costs; it is made only on chunks whose values could still belong
    to a dummy (``dummy``: from 0 to 1) or a count (``count``: non-negative).  A column failing
    that somewhere is reported as not integer, which gives it the same kind.
    """
    if not names:
        return {}
    known = model.source_column_stats
    if all(nm in known for nm in names):  # found while streaming: no pass over the source
        return {nm: known[nm] for nm in names}

    def summary(values):
        v = pd.to_numeric(values, errors="coerce")
        _, lo, hi = fold_summary((False, np.inf, -np.inf), v)  # the range alone
        could = (dummy and lo >= 0 and hi <= 1) or (count and lo >= 0)
        return fold_summary(NO_VALUES, v) if could else (False, lo, hi)

    def chunk(c):
        return [summary(c.frame[nm]) for nm in names]

    progress = _progress(model, "marginal effects, variables")
    parts = model.backend.reduce(chunk, _FRAME_CHUNK_ROWS, progress)
    # In row order, as the streaming pass folds its batches.
    return {
        nm: functools.reduce(merge_summaries, (p[k] for p in parts), NO_VALUES)
        for k, nm in enumerate(names)
    }


def formula_variables(model, columns, dummy, count) -> list[_Variable]:
    """The variables of a formula model whose effects are reported, given the data columns
    ``columns`` of its source rows (a numeric variable's kind takes one pass over them)."""
    di = model.design.design_info
    cols = set(columns)
    cats: dict[str, _Variable] = {}
    nums: dict[str, list] = {}
    order: list[str] = []
    for term in di.terms:
        for factor in term.factors:
            info = di.factor_infos[factor]
            names = [nm for nm in ast_names(factor.code) if nm in cols]
            if info.type == "categorical":
                if len(names) != 1:
                    raise DataError(
                        f"cannot attribute the categorical term {factor.code!r} to one data "
                        "column, so its discrete changes are not defined"
                    )
                nm = names[0]
                levels = tuple(info.categories)
                base = _categorical_base(di, factor, levels)
                prev = cats.get(nm)
                if prev is not None and prev.levels != levels:
                    raise DataError(f"column {nm!r} enters the formula with different levels")
                cats[nm] = _Variable(nm, "categorical", levels=levels, base=base)
            else:
                for nm in names:
                    nums.setdefault(nm, []).append((term, factor))
            for nm in names:
                if nm not in order:
                    order.append(nm)
    both = sorted(set(cats) & set(nums))
    if both:
        raise DataError(
            f"column(s) {', '.join(map(repr, both))} enter the formula both as categorical and "
            "as numeric; their marginal effect is not defined"
        )
    # Only dummies and counts need the values' summaries: without them, no pass over the rows.
    numeric = [nm for nm in order if nm not in cats]
    stats = _numeric_stats(model, numeric, dummy, count) if dummy or count else {}
    out = []
    for nm in order:
        if nm in cats:
            out.append(cats[nm])
            continue
        integer, lo, hi = stats.get(nm, (False, -np.inf, np.inf))
        var = _Variable(nm, _kind_from_stats(integer, lo, hi, dummy, count))
        uses = nums[nm]
        # Exact unit direction when the variable enters only as itself, in one-factor terms.
        plain = all(len(term.factors) == 1 and factor.code.strip() == nm for term, factor in uses)
        if plain and len({id(t) for t, _ in uses}) == 1:
            sl = di.term_slices[uses[0][0]]
            var.column = int(sl.start)
        out.append(var)
    return out


# ---------------------------------------------------------------------------------------------
# Samples: where the effects are evaluated


def _weighted_median(v, w):
    """NumPy's median when every weight is the same, else the lower weighted median: the
    smallest value whose rows weigh at least half the total.  The weights are summed as given,
    not normalised, so that integer weights reaching exactly half the total are found exactly
    (as by the reductions of :func:`multilogit.inference.typical.medians`), not by rounding."""
    if np.all(w == w[0]):
        return float(np.median(v))
    o = np.argsort(v, kind="stable")
    cw = np.cumsum(w[o])
    return float(v[o][min(int(np.searchsorted(cw, cw[-1] / 2.0)), len(v) - 1)])


class _ArrayRows:
    """Design rows of an array model (one chunk of the estimation sample, or one
    representative row), with the values of ``overrides`` fixed."""

    def __init__(self, X, w, overrides):
        if overrides:
            X = np.array(X, dtype=np.float64)  # copy only when values are fixed
            for c, val in overrides.items():
                X[:, c] = val
        self.X, self.w = X, w

    def chunks(self):
        n = len(self.X)
        return [slice(a, min(a + _CHUNK_ROWS, n)) for a in range(0, n, _CHUNK_ROWS)]

    def prepare(self, items, ex):
        pass  # nothing is rebuilt

    def weights(self, sel):
        return self.w[sel]

    def values(self, sel, var):
        return np.ascontiguousarray(self.X[sel, var.column])

    def design(self, sel, override=None):
        X = self.X[sel]
        if override is None:
            return np.ascontiguousarray(X)
        X = X.copy()
        var, value = override
        X[:, var.column] = value
        return X

    def shifted(self, sel, var, delta):
        return self.design(sel, (var, self.values(sel, var) + delta))

    def direction(self, sel, var, X):
        D = np.zeros((1, X.shape[1]))
        D[0, var.column] = 1.0
        return D


def _total_weight(backend) -> float:
    return float(np.sum(backend.reduce(lambda chunk: chunk.weights.sum(), frames=False)))


def design_means(model) -> np.ndarray:
    """Each design column's mean over the estimation rows, weighted by the likelihood weights
    (one pass through the backend)."""
    backend = model.backend
    sums = np.sum(backend.reduce(lambda chunk: chunk.weights @ chunk.X, frames=False), axis=0)
    return sums / _total_weight(backend)


def _array_point(model, at, overrides):
    """The representative row of ``at="mean"`` / ``"median"`` (weighted, over the rows), or of
    ``at="zero"``: every column 0 but the constant ones (statsmodels' definition)."""
    if at == "zero":
        lo, hi = model.backend.column_range()
        row = np.where(lo == hi, lo, 0.0)
    elif at == "mean":
        row = design_means(model)
    elif model.is_in_memory:
        X = np.vstack(model.backend.reduce(lambda chunk: chunk.X, frames=False))
        w = _likelihood_weights(model)
        row = np.array([_weighted_median(X[:, c], w) for c in range(X.shape[1])])
    else:
        # Rows held elsewhere are not gathered: medians by selection, pass by pass.
        row = typical.medians(model.backend, typical.Columns(range(model.backend.p), design=True))
    return _ArrayRows(row[None, :], np.ones(1), overrides)


def _likelihood_weights(model) -> np.ndarray:
    return np.concatenate(model.backend.reduce(lambda chunk: chunk.weights, frames=False))


def row_weights(model) -> np.ndarray:
    """Averaging weights of the estimation rows: the likelihood weights (frequency x
    sampling), summing to one."""
    w = _likelihood_weights(model)
    return w / w.sum()


def estimation_frame(model) -> pd.DataFrame:
    """The formula data of the estimation rows (see ``MultinomialLogit.estimation_frame``)."""
    return model.estimation_frame()


def _typical_point(model, at, variables, overrides=None):
    """A template row and the typical values of ``at="mean"/"median"`` of a model whose rows
    a backend holds elsewhere, found by reductions over the rows (see
    :mod:`multilogit.inference.typical`); the variables of ``overrides`` take their fixed
    values (the mean or median of a column set to one value everywhere)."""
    template, point = _typical_values(model, at, variables)
    return template, _fixed_point(point, overrides or {}, {v.name: v for v in variables})


def _fixed_point(point, overrides, by_name):
    """``point`` (typical values, level shares) with the variables of ``overrides`` at their
    values: the typical value of a column set to one value everywhere."""
    rep, shares = dict(point[0]), dict(point[1])
    for name, value in overrides.items():
        var = by_name[name]
        if var.kind == "categorical":
            shares[name] = np.array([lv == value for lv in var.levels], dtype=np.float64)
        else:
            rep[name] = float(value)
    return rep, shares


def _typical_values(model, at, variables):
    numeric = [v.name for v in variables if v.kind != "categorical"]
    columns = typical.Columns(
        numeric, [(v.name, v.levels) for v in variables if v.kind == "categorical"]
    )
    summary = typical.moments(model.backend, columns)
    if summary.template is None:
        raise DataError("the model's backend hands out no source rows to build the point from")
    if at == "zero":
        rep = np.zeros(len(numeric))
        shares = {v.name: _base_share(v) for v in variables if v.kind == "categorical"}
        return summary.template, (dict(zip(numeric, rep, strict=True)), shares)
    rep = summary.means if at == "mean" else typical.medians(model.backend, columns, summary)
    shares = dict(zip([nm for nm, _ in columns.categorical], summary.counts, strict=True))
    return summary.template, (dict(zip(numeric, rep, strict=True)), shares)


def _base_share(var) -> np.ndarray:
    """Level shares putting every row at the base level (``at="zero"``: every indicator 0)."""
    return np.array([lv == var.base for lv in var.levels], dtype=np.float64)


def _assign(frame, name, value):
    """Set column ``name`` of ``frame`` (a copy) to ``value``, keeping a categorical dtype."""
    col = frame[name]
    if isinstance(col.dtype, pd.CategoricalDtype):
        vals = np.broadcast_to(np.asarray(value, dtype=object), (len(frame),))
        frame[name] = pd.Categorical(vals, categories=col.cat.categories)
    else:
        frame[name] = np.broadcast_to(np.asarray(value), (len(frame),)).copy()
    return frame


class _FrameSample:
    """Rows of a formula model's data; or, for ``at="mean"/"median"``, a small weighted grid.

    The representative row of ``at="mean"`` is Stata's ``atmeans``: numeric variables at their
    means and every categorical variable's indicators at the sample shares.  Since the design is
    linear in each categorical factor's indicators, that row is the share-weighted average of the
    design over the grid of categorical levels, with the numeric variables at their means.

    For ``at="mean"/"median"``, ``w`` holds the likelihood weights of the rows of ``frame``;
    or ``point`` gives the typical values already found (``(rep, shares)``: each numeric
    variable's value, each categorical variable's level shares) and ``frame`` is any one row of
    the data, the template of the grid.
    """

    def __init__(self, design, frame, w, overrides, at="overall", variables=(), point=None):
        if overrides:
            frame = frame.copy()
        for name, val in overrides.items():
            frame = _assign(frame, name, val)
        self.design_obj = design
        self.collapsed = at != "overall"
        if not self.collapsed:
            self.frame, self.w = frame, w
            return
        grid = frame.iloc[[0]].copy()
        self.rep = {}
        cats = []
        wn = None if point is not None else w / w.sum()
        for var in variables:
            if var.kind == "categorical":
                if at == "median":
                    raise ValueError(
                        f"at='median' is not defined for the categorical variable "
                        f"{var.name!r}; use at='mean'"
                    )
                if point is not None:
                    share = point[1][var.name]
                elif at == "zero":
                    share = _base_share(var)
                else:
                    codes = pd.Categorical(frame[var.name], categories=list(var.levels))
                    share = np.bincount(
                        codes.codes[codes.codes >= 0],
                        weights=wn[codes.codes >= 0],
                        minlength=len(var.levels),
                    )
                cats.append((var.name, var.levels, share / share.sum()))
            else:
                if point is not None:
                    self.rep[var.name] = float(point[0][var.name])
                elif at == "zero":
                    self.rep[var.name] = 0.0
                else:
                    v = pd.to_numeric(frame[var.name]).to_numpy(dtype=np.float64)
                    self.rep[var.name] = float(wn @ v) if at == "mean" else _weighted_median(v, w)
                grid = _assign(grid, var.name, self.rep[var.name])
        combos = list(itertools.product(*[range(len(lv)) for _, lv, _ in cats]))
        if len(combos) > _MAX_GRID:
            raise ValueError(
                f"at='mean' needs {len(combos)} combinations of categorical levels; use "
                "at='overall'"
            )
        grid = grid.iloc[np.zeros(len(combos), dtype=np.intp)].reset_index(drop=True)
        pi = np.ones(len(combos))
        for c, (name, levels, share) in enumerate(cats):
            idx = np.array([combo[c] for combo in combos], dtype=np.intp)
            grid = _assign(grid, name, np.asarray(levels, dtype=object)[idx])
            pi *= share[idx]
        self.frame, self.pi, self.w = grid, pi, np.ones(1)

    def chunks(self):
        return [slice(None)]

    def prepare(self, items, ex):
        pass  # designs are built per call: a grid of a few rows

    def weights(self, sel):
        return self.w if self.collapsed else self.w[sel]

    def values(self, sel, var):
        if self.collapsed:
            return np.array([self.rep[var.name]])
        return pd.to_numeric(self.frame[var.name].iloc[sel]).to_numpy(dtype=np.float64)

    def design(self, sel, override=None):
        f = self.frame.iloc[sel]
        if override is not None:
            var, value = override
            f = _assign(f.copy(), var.name, value)
        X, _ = self.design_obj.build(f)
        if self.collapsed:
            X = (self.pi @ X)[None, :]
        return np.ascontiguousarray(X)

    def shifted(self, sel, var, delta):
        return self.design(sel, (var, self.values(sel, var) + delta))

    def direction(self, sel, var, X):
        if var.column is not None:
            D = np.zeros((1, X.shape[1]))
            D[0, var.column] = 1.0
            return D
        v = self.values(sel, var)
        h = _FD_STEP * np.maximum(np.abs(v), 1.0)
        # The step is exactly representable in v's scale, so the divisor matches the change.
        h = (v + h) - v
        Xp = self.design(sel, (var, v + h))
        Xm = self.design(sel, (var, v - h))
        return np.ascontiguousarray((Xp - Xm) / (2.0 * h)[:, None])


class _FrameRows:
    """One chunk of a formula model's estimation rows, with the values of ``overrides`` fixed.

    Its design is the backend's (``X``, the rows the fit used).  A design with one variable
    changed differs from it only in the columns of the terms that read the variable, so only
    those are rebuilt (:meth:`multilogit.data.design.Design.build_columns`), from the few data
    columns they read, once for the whole chunk; the blocks of :meth:`chunks` then take slices
    of them.  Nothing copies the chunk's data frame.
    """

    def __init__(self, design, frame, X, w, overrides):
        self.design_obj, self.frame, self.w = design, frame, w
        self.overrides = dict(overrides)
        self._built: dict = {}
        if self.overrides:
            cols, Xc = self._build(frozenset(self.overrides), {})
            X = np.array(X, dtype=np.float64)  # copy only when values are fixed
            X[:, cols] = Xc
        self.X = X

    def _build(self, names, values, frame=None):
        """The design columns of the terms reading ``names``, with ``values`` (and the
        overrides) set: their positions and values for every row of the chunk (of
        ``frame``, if given)."""
        cols, reads = self.design_obj.term_columns(names)
        frame = self.frame if frame is None else frame
        data = frame[[c for c in reads if c in frame.columns]]
        for name, val in {**self.overrides, **values}.items():
            if name in data.columns:
                data = _assign(data, name, val)
        return cols, self.design_obj.build_columns(data, names)

    def _at(self, var, key, value):
        """:meth:`_build` of ``var`` set to ``value``, kept under ``key`` for the chunk."""
        key = (var.name, key)
        if key not in self._built:
            names = frozenset([var.name])
            _, reads = self.design_obj.term_columns(names)
            if np.ndim(value) == 0 and set(reads) & set(self.frame.columns) == names:
                # The terms read nothing but the variable, set to one value: their columns are
                # the same in every row, built once from one row.
                cols, Xc = self._build(names, {var.name: value}, self.frame.iloc[:1])
                self._built[key] = (cols, np.broadcast_to(Xc, (len(self.X), len(cols))))
            else:
                self._built[key] = self._build(names, {var.name: value})
        return self._built[key]

    def chunks(self):
        n = len(self.X)
        return [slice(a, min(a + _CHUNK_ROWS, n)) for a in range(0, n, _CHUNK_ROWS)]

    def prepare(self, items, ex):
        """Rebuild every changed design the effects of ``items`` need, for the whole chunk."""
        for _, var, how, spec in items:
            if how == "change":
                for value in spec:
                    self._at(var, ("level", value), value)
            elif how == "count":
                for delta in (1.0, -1.0):
                    self._at(var, ("shift", delta), self._values(var) + delta)
            elif var.column is None:
                self.direction(slice(0, 0), var, self.X[:0])
            elif ex:
                self._values(var)

    def weights(self, sel):
        return self.w[sel]

    def _values(self, var):
        if var.name in self.overrides:
            return np.full(len(self.X), float(self.overrides[var.name]))
        key = (var.name, "values")
        if key not in self._built:
            col = pd.to_numeric(self.frame[var.name])
            self._built[key] = col.to_numpy(dtype=np.float64)
        return self._built[key]

    def values(self, sel, var):
        return self._values(var)[sel]

    def _with(self, sel, built):
        cols, Xc = built
        X = np.array(self.X[sel], dtype=np.float64)
        X[:, cols] = Xc[sel]
        return X

    def design(self, sel, override=None):
        if override is None:
            return np.ascontiguousarray(self.X[sel], dtype=np.float64)
        var, value = override
        return self._with(sel, self._at(var, ("level", value), value))

    def shifted(self, sel, var, delta):
        return self._with(sel, self._at(var, ("shift", delta), self._values(var) + delta))

    def direction(self, sel, var, X):
        if var.column is not None:
            D = np.zeros((1, X.shape[1]))
            D[0, var.column] = 1.0
            return D
        key = (var.name, "direction")
        if key not in self._built:
            v = self._values(var)
            h = _FD_STEP * np.maximum(np.abs(v), 1.0)
            # The step is exactly representable in v's scale, so the divisor matches the change.
            h = (v + h) - v
            cols, Xp = self._build(frozenset([var.name]), {var.name: v + h})
            _, Xm = self._build(frozenset([var.name]), {var.name: v - h})
            self._built[key] = (cols, (Xp - Xm) / (2.0 * h)[:, None])
        cols, Dc = self._built[key]
        D = np.zeros((len(X), X.shape[1]))
        D[:, cols] = Dc[sel]
        return D


# ---------------------------------------------------------------------------------------------
# Driver


def _check_options(at, method):
    if isinstance(method, str):
        method = method.lower()
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    if isinstance(at, str):
        at = at.lower()
        if at not in ("overall", "mean", "median", "zero"):
            raise ValueError(
                f"at must be 'overall', 'mean', 'median', 'zero' or a dict; got {at!r}"
            )
    elif not isinstance(at, dict):
        raise ValueError(f"at must be 'overall', 'mean', 'median', 'zero' or a dict; got {at!r}")
    return at, method


def _finite_number(val) -> bool:
    return (
        isinstance(val, int | float | np.integer | np.floating)
        and not isinstance(val, bool)
        and bool(np.isfinite(val))
    )


def _array_overrides(model, at):
    names = list(model.exog_names)
    out = {}
    for key, val in at.items():
        if isinstance(key, int | np.integer) and not isinstance(key, bool):
            if not 0 <= key < len(names):
                raise DataError(f"at: column index {key} is out of range (0..{len(names) - 1})")
            c = int(key)
        elif key in names:
            c = names.index(key)
        else:
            raise DataError(f"at: {key!r} is not a column of exog ({', '.join(names)})")
        if not _finite_number(val):
            raise DataError(f"at: the value of {key!r} must be a finite number; got {val!r}")
        out[c] = float(val)
    return out


def _formula_overrides(variables, at):
    by_name = {v.name: v for v in variables}
    for key, val in at.items():
        var = by_name.get(key)
        if var is None:
            raise DataError(f"at: {key!r} is not a variable of the formula ({', '.join(by_name)})")
        if var.kind == "categorical":
            if val not in var.levels:
                raise DataError(
                    f"at: {val!r} is not a level of {key!r} (levels: "
                    + ", ".join(map(repr, var.levels))
                    + ")"
                )
        elif not _finite_number(val):
            raise DataError(f"at: the value of {key!r} must be a finite number; got {val!r}")
    return dict(at)


def check_at(model, variables, at: dict) -> dict:
    """``at`` (``{variable: value}``) checked against the model's variables: data columns of a
    formula model (``variables`` from :func:`formula_variables`; a level for a categorical
    one), names or positions of exog columns of an array model (then keyed by position)."""
    if model.design.design_info is not None:
        return _formula_overrides(variables, at)
    return _array_overrides(model, at)


def design_at(model, chunk, overrides: dict) -> np.ndarray:
    """The design rows of one chunk of the estimation rows (a backend's
    :class:`~multilogit.engine.backend.Chunk`) with the variables of ``overrides`` (checked by
    :func:`check_at`) fixed in every row; only the columns of the terms reading them are
    rebuilt."""
    if model.design.design_info is not None:
        return _FrameRows(model.design, chunk.frame, chunk.X, None, overrides).X
    return _ArrayRows(chunk.X, None, overrides).X


def effect_items(model, dummy: bool, count: bool) -> list:
    """The effects reported for ``model``: one ``(label, variable, how, spec)`` per row of
    ``get_margeff``'s table, ``how`` being ``"derivative"``, ``"change"`` (``spec``: the new
    and base values) or ``"count"``."""
    if model.design.design_info is not None:
        variables = formula_variables(model, model.source_columns, dummy, count)
    else:
        variables = _array_variables(model, dummy, count)
    if not variables:
        raise DataError("the model has no variables besides the constant")
    return _items(variables)


def chunk_rows(model, chunk):
    """One chunk of the estimation rows as a sample whose ``design(sel, (var, value))``,
    ``shifted``, ``direction`` and ``values`` give the designs and directions of
    :func:`effect_items` (``sel``: a slice of the chunk's rows)."""
    if model.design.design_info is not None:
        return _FrameRows(model.design, chunk.frame, chunk.X, chunk.weights, {})
    return _ArrayRows(chunk.X, chunk.weights, {})


def mean_designs(model, overrides_list: list) -> list[np.ndarray]:
    """Stata's ``atmeans`` design rows ``(1, p)``, one per ``overrides`` (checked by
    :func:`check_at`): the variables of ``overrides`` at their values, every other numeric
    variable at its weighted mean and every other categorical one's indicators at its sample
    shares (see :class:`_FrameSample`); for an array model, the columns' means with the
    overridden columns set."""
    if model.design.design_info is None:
        return [_array_point(model, "mean", o).X for o in overrides_list]
    variables = formula_variables(model, model.source_columns, False, False)
    by_name = {v.name: v for v in variables}
    if model.is_in_memory:
        frame, w = estimation_frame(model), _likelihood_weights(model)
        return [
            _FrameSample(model.design, frame, w, o, "mean", variables).design(slice(None))
            for o in overrides_list
        ]
    template, point = _typical_values(model, "mean", variables)
    out = []
    for o in overrides_list:
        fixed = _fixed_point(point, o, by_name)
        sample = _FrameSample(model.design, template, None, o, "mean", variables, fixed)
        out.append(sample.design(slice(None)))
    return out


def total_weight(backend) -> float:
    """The sum of the likelihood weights of the rows (one pass)."""
    return _total_weight(backend)


def _items(variables):
    """One entry per reported row: (label, variable, how, spec)."""
    items = []
    for var in variables:
        if var.kind == "continuous":
            items.append((var.name, var, "derivative", None))
        elif var.kind == "dummy":
            items.append((var.name, var, "change", (1.0, 0.0)))
        elif var.kind == "count":
            items.append((var.name, var, "count", None))
        else:
            for lv in var.levels:
                if lv != var.base:
                    items.append((f"{var.name}[T.{lv}]", var, "change", (lv, var.base)))
    return items


def _accumulate(sample, items, beta, method, threads: int = 1) -> margin_sums.EffectSums:
    """The sums over ``sample``'s rows of the effects of ``items`` and of their Jacobians.

    The sample's blocks of rows are split into contiguous runs, one per thread (at most
    ``threads``), each summed into its own sums and added in run order: BLAS runs on one
    thread throughout, which on these thin products is much faster than BLAS's own threads.
    """
    dy = method in ("dydx", "dyex")
    ex = method in ("dyex", "eyex")
    # Unit directions without a row scale share one product per block of rows.
    shared = {
        t: var.column
        for t, (_, var, how, _) in enumerate(items)
        if how == "derivative" and not ex and var.column is not None
    }
    sample.prepare(items, ex)  # any design rebuilt once, before the threads read it
    blocks = sample.chunks()
    runs = block_runs(len(blocks), threads)

    def run(k):
        sums = margin_sums.EffectSums(len(items), beta, dy, shared)
        for b in range(runs[k].start, runs[k].stop):
            stop_if_cancelled()
            _add_block(sums, sample, blocks[b], items, beta, dy, ex, shared)
        return sums

    parts = map_runs(run, len(runs))  # BLAS on one thread: the products are thin
    sums = parts[0]
    for part in parts[1:]:  # in run order: reproducible for a number of threads
        sums += part
    return sums


def _add_block(sums, sample, sel, items, beta, dy, ex, shared) -> None:
    """One block's share of every effect of ``items`` (see :func:`_accumulate`)."""
    w = np.ascontiguousarray(sample.weights(sel), dtype=np.float64)
    X = sample.design(sel)
    rows = margin_sums.RowProbabilities(X, beta)
    sums.add_shared(rows, w)
    # Designs with one variable at one value, kept for this block: a categorical variable's
    # base level serves every other level's change.
    levels: dict = {}
    for t, (_, var, how, spec) in enumerate(items):
        if how == "derivative":
            if t in shared:
                continue
            D = np.ascontiguousarray(sample.direction(sel, var, X))
            c = w * sample.values(sel, var) if ex else w
            sums.add_derivative(t, rows, D, np.ascontiguousarray(c, dtype=np.float64))
        elif how == "change":  # spec: (new value, base value)
            for value, sign in zip(spec, (1.0, -1.0), strict=True):
                key = (var.name, value)
                if key not in levels:
                    at = margin_sums.RowProbabilities(sample.design(sel, (var, value)), beta)
                    levels[key] = margin_sums.LevelSum(at, w, not dy)
                sums.add_level(t, levels[key], sign)
        else:  # count: centred change of one unit, as statsmodels
            for delta, sign in ((1.0, 0.5), (-1.0, -0.5)):
                at = margin_sums.RowProbabilities(sample.shifted(sel, var, delta), beta)
                sums.add_level(t, margin_sums.LevelSum(at, w, not dy), sign)


def _accumulate_rows(model, make_sample, items, beta, method, chunk_rows):
    """:func:`_accumulate` over the estimation rows, chunk by chunk through the model's
    backend; ``make_sample(chunk, total_weight)`` gives the sample of one chunk."""
    backend = model.backend
    total = _total_weight(backend)
    # Threads for the blocks of a chunk where the chunks are evaluated in this process (a
    # backend on a cluster runs its chunks in parallel already).
    threads = int(getattr(backend, "threads", 1))
    parts = backend.reduce(
        lambda chunk: _accumulate(make_sample(chunk, total), items, beta, method, threads),
        chunk_rows,
        _progress(model, "marginal effects"),
    )
    sums = parts[0]
    for part in parts[1:]:  # in row order: reproducible
        sums += part
    return sums


def get_margeff(
    results,
    at: str | dict = "overall",
    method: str = "dydx",
    atexog: dict | None = None,
    dummy: bool = False,
    count: bool = False,
) -> MarginalEffects:
    """Marginal effects of every variable on the probability of every outcome.

    Parameters
    ----------
    results : MultinomialLogitResults
    at : {"overall", "mean", "median", "zero"} or dict
        ``"overall"``: average of the effects over the estimation sample (average marginal
        effects).  ``"mean"``: effects at the means (Stata's ``atmeans``; categorical
        indicators at their sample shares).  ``"median"``: at the medians (numeric variables
        only; NumPy's median when every row weighs the same, else the lower weighted median).
        Both weighted by the likelihood weights; for rows a backend holds elsewhere (Dask data)
        computed by reductions over them (:mod:`multilogit.inference.typical`).  A dict
        ``{variable: value}`` fixes those variables at the given values in every row and
        averages over the sample (Stata's ``at()``); keys are data columns for a formula model
        (a level for a categorical variable), column names or positions for an array model.
        ``"zero"``: at one row with every variable 0 (statsmodels: every design column 0 but
        the constant; for a formula model every numeric variable 0 and every categorical one
        at its base level).  For several values at once (a dict of lists) see
        ``results.get_margeff`` and :mod:`multilogit.inference.effects_at`; for the effects
        at every row (``at="all"``), :mod:`multilogit.inference.margeff_rows`.
    method : {"dydx", "eyex", "dyex", "eydx"}
        Derivative, elasticity or semi-elasticities (``ey``: of the log-probability, ``ex``:
        with respect to the log of the variable).
    atexog : dict, optional
        statsmodels' ``atexog``: ``{variable: value}`` fixed in every row before ``at``
        applies (with ``at="overall"`` the same as a dict ``at``; with ``"mean"`` or
        ``"median"`` the fixed variables' typical value is their value).  Keys as for a
        dict ``at``: exog column positions or names, data columns of a formula.
    dummy : bool
        Treat numeric 0/1 variables as discrete: the change from 0 to 1.  Off by default, as
        statsmodels, Stata (``margins, dydx(x)`` on a numeric 0/1 column) and marginaleffects
        treat such a column as continuous; categorical terms of a formula always get discrete
        changes.
    count : bool
        Treat non-negative integer variables as discrete: :math:`\\{P(v+1) - P(v-1)\\}/2`.

    Returns
    -------
    MarginalEffects

    Notes
    -----
    For ``dydx`` and ``dyex`` the effects on the K probabilities sum to zero, since the
    probabilities sum to one.  Standard errors use ``results.cov_params()`` and treat the
    evaluation points (means, medians) as fixed.
    """
    at, method = _check_options(at, method)
    if atexog is not None:
        if not isinstance(atexog, dict):
            raise DataError(
                f"atexog must be a dict {{column: value}}; got {type(atexog).__name__}"
            )
        if isinstance(at, dict):
            raise ValueError("give the fixed values in at= or in atexog=, not both")
        if at == "zero":
            raise ValueError("at='zero' sets every variable to 0, so atexog would be ignored")
    fixed = at if isinstance(at, dict) else (atexog or {})
    model = results.model
    formula = model.design.design_info is not None
    if formula:
        variables = formula_variables(model, model.source_columns, dummy, count)
        overrides = _formula_overrides(variables, fixed) if fixed else {}
    else:
        variables = _array_variables(model, dummy, count)
        overrides = _array_overrides(model, fixed) if fixed else {}
    if not variables:
        raise DataError("the model has no variables besides the constant")
    discrete = [v.name for v in variables if v.kind != "continuous"]
    if discrete and method in ("eyex", "dyex"):
        raise ValueError(
            f"method={method!r} is an elasticity with respect to x, not defined for the discrete "
            f"variable(s) {', '.join(map(repr, discrete))}; use 'dydx' or 'eydx' (or dummy=False"
            " / count=False to treat numeric ones as continuous)"
        )
    if discrete and at == "median":
        raise ValueError(
            f"at='median' is not defined for the discrete variable(s) "
            f"{', '.join(map(repr, discrete))}; use at='mean' (or dummy=False / count=False)"
        )
    numeric_discrete = [v.name for v in variables if v.kind in ("dummy", "count")]
    if numeric_discrete and at == "zero":
        raise ValueError(
            f"at='zero' is not defined for the discrete variable(s) "
            f"{', '.join(map(repr, numeric_discrete))} (as statsmodels); use dummy=False / "
            "count=False"
        )
    mode = "overall" if isinstance(at, dict) else at
    items = _items(variables)
    beta = np.ascontiguousarray(results._beta)
    if mode == "overall":
        if formula:

            def make(chunk, total):
                return _FrameRows(
                    model.design, chunk.frame, chunk.X, chunk.weights / total, overrides
                )

            rows = _FRAME_CHUNK_ROWS
        else:

            def make(chunk, total):
                return _ArrayRows(chunk.X, chunk.weights / total, overrides)

            rows = _PASS_ROWS
        sums = _accumulate_rows(model, make, items, beta, method, rows)
    elif formula and model.is_in_memory:
        sample = _FrameSample(
            model.design,
            estimation_frame(model),
            _likelihood_weights(model),
            overrides,
            mode,
            variables,
        )
        sums = _accumulate(sample, items, beta, method)
    elif formula:
        template, point = _typical_point(model, mode, variables, overrides)
        sample = _FrameSample(model.design, template, None, overrides, mode, variables, point)
        sums = _accumulate(sample, items, beta, method)
    else:
        sums = _accumulate(_array_point(model, mode, overrides), items, beta, method)
    eff, jac = sums.finish()
    order = model.level_to_internal  # internal column of each outcome, in level order
    eff = eff[:, order]
    jac = jac[:, order, :]
    # Flat layout: outcome-major over (outcome, term), as everywhere in the package.
    G = np.transpose(jac, (1, 0, 2)).reshape(-1, jac.shape[2])
    cov = results._delta_form(G)
    cov = 0.5 * (cov + cov.T)
    aliased = results._nan_params
    if aliased is not None and aliased.any():
        # An effect that moves only with dropped (aliased) coefficients is not identified by
        # the data (Stata marks it "omitted"): report it as NaN rather than a confident 0.
        free = np.any(G[:, ~aliased] != 0.0, axis=1)
        omitted = ~free & np.any(G[:, aliased] != 0.0, axis=1)
        if omitted.any():
            flat_eff = np.ascontiguousarray(eff.T).ravel()  # outcome-major, like G's rows
            flat_eff[omitted] = np.nan
            eff = flat_eff.reshape(eff.shape[1], eff.shape[0]).T
            cov[omitted, :] = np.nan
            cov[:, omitted] = np.nan
    return MarginalEffects(
        results=results,
        terms=[it[0] for it in items],
        margeff=eff,
        cov=cov,
        jacobian=G,
        method=method,
        at=at,
        kinds=[it[1].kind for it in items],
    )


# ---------------------------------------------------------------------------------------------
# Results


class MarginalEffects:
    """Marginal effects with delta-method inference; returned by ``results.get_margeff()``.

    Attributes
    ----------
    margeff : DataFrame
        Effects, rows terms, columns all K outcomes (reference included) in level order.
    margeff_se : DataFrame
        Standard errors, same shape.
    margeff_cov : DataFrame
        Covariance of the flat effects, indexed by ``(outcome, term)`` (outcome-major).
    jacobian : ndarray
        Derivative of the flat effects with respect to the flat parameters.
    method, at
        The options used.
    """

    def __init__(self, results, terms, margeff, cov, jacobian, method, at, kinds=None):
        self.results = results
        kinds = kinds or ["continuous"] * len(terms)
        self._discrete = [t for t, k in zip(terms, kinds, strict=True) if k in ("dummy", "count")]
        self._categorical = any(k == "categorical" for k in kinds)
        self.method = method
        self.at = at
        self.jacobian = jacobian
        model = results.model
        self._outcomes = list(model.outcomes)
        self._terms = list(terms)
        self._eff = np.asarray(margeff)  # (terms, K)
        self._cov = cov
        self._se = np.sqrt(np.clip(np.diag(cov), 0.0, None)).reshape(len(self._outcomes), -1).T
        cols = pd.Index(self._outcomes, name=model.endog_names)
        rows = pd.Index(self._terms, name="term")
        self.margeff = pd.DataFrame(self._eff, index=rows, columns=cols)
        self.margeff_se = pd.DataFrame(self._se, index=rows, columns=cols)
        self._flat_index = pd.MultiIndex.from_product(
            [self._outcomes, self._terms], names=["outcome", "term"]
        )
        self.margeff_cov = pd.DataFrame(cov, index=self._flat_index, columns=self._flat_index)

    @property
    def tvalues(self) -> pd.DataFrame:
        """z statistics, shaped like ``margeff``."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.margeff / self.margeff_se

    @property
    def pvalues(self) -> pd.DataFrame:
        """Two-sided normal p-values, shaped like ``margeff``."""
        return pd.DataFrame(
            2.0 * stats.norm.sf(np.abs(self.tvalues.to_numpy())),
            index=self.margeff.index,
            columns=self.margeff.columns,
        )

    def conf_int(self, alpha: float = 0.05) -> pd.DataFrame:
        """Wald intervals indexed by ``(outcome, term)``, columns lower and upper."""
        sf = self.summary_frame(alpha)
        return sf[["lower", "upper"]]

    def summary_frame(
        self, alpha: float = 0.05, labels=None, outcome_labels=None, short_names=False
    ) -> pd.DataFrame:
        """Long table indexed by ``(outcome, term)``, outcome-major in outcome order.

        Columns: ``effect``, ``std err``, ``z``, ``P>|z|``, ``lower``, ``upper``.
        ``labels`` (``{term or variable: label}``), ``outcome_labels`` and ``short_names``
        print the index as the results' tables do
        (:func:`~multilogit.data.labelling.relabel_index`).
        """
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1); got {alpha!r}")
        return wald_table(
            "effect",
            self._eff.T.ravel(),
            self._se.T.ravel(),
            alpha,
            self._labelled(labels, outcome_labels, short_names),
        )

    def _labelled(self, labels, outcome_labels, short_names):
        model = self.results.model
        return relabel_index(
            self._flat_index, model.exog_names, model.outcomes, labels, outcome_labels, short_names
        )

    def summary(self, alpha: float = 0.05, labels=None, outcome_labels=None, short_names=False):
        """statsmodels ``Summary``: ``str()``, ``as_html()``, ``as_latex()``; labels as
        :meth:`summary_frame`."""
        from statsmodels.iolib.summary import Summary, summary_params, table_extend

        res = self.results
        model = res.model
        at = (
            self.at
            if isinstance(self.at, str)
            else ", ".join(f"{k}={v}" for k, v in self.at.items())
        )
        smry = Summary()
        left = [
            ("Dep. Variable:", [str(model.endog_names)]),
            ("Method:", [self.method]),
            ("At:", [at]),
        ]
        right = [
            ("Reference outcome:", [level_label(res.ref)]),
            ("Covariance Type:", [res.cov_type]),
            ("No. Observations:", [f"{res.nobs:g}"]),
        ]
        smry.add_table_2cols(
            res, gleft=left, gright=right, title="MultinomialLogit Marginal Effects"
        )
        ci = self.conf_int(alpha)
        printed = self._labelled(labels, outcome_labels, short_names)
        n_terms = len(self._terms)
        term_names = [str(t) for t in printed.get_level_values(1)[:n_terms]]
        outcome_names = [str(o) for o in printed.get_level_values(0)[::n_terms]]
        relabelled = labels is not None or outcome_labels is not None or short_names
        blocks = []
        for k, outcome in enumerate(self._outcomes):
            tbl = summary_params(
                (
                    res,
                    self._eff[:, k],
                    self._se[:, k],
                    self.tvalues.to_numpy()[:, k],
                    self.pvalues.to_numpy()[:, k],
                    ci.loc[outcome].to_numpy(),
                ),
                xname=term_names if relabelled else [str(t) for t in self._terms],
                alpha=alpha,
                use_t=False,
                title=(
                    f"{model.endog_names}={outcome_names[k]}"
                    if relabelled
                    else equation_label(model.endog_names, outcome)
                ),
            )
            # Name the statistic (dy/dx, ...) in the header instead of "coef".
            tbl[0][1].data = METHOD_NAMES[self.method]
            blocks.append(tbl)
        smry.tables.append(table_extend(blocks, keep_headers=True))
        notes = []
        if self._categorical:
            notes.append(
                "Terms like v[T.level] are discrete changes from the base level of v (all rows "
                "set to each level)."
            )
        if self._discrete:
            notes.append(
                "Discrete change (0 to 1 for dummies, centred unit change for counts) for: "
                + ", ".join(self._discrete)
                + "."
            )
        if notes:
            smry.add_extra_txt([f"[{i + 1}] {t}" for i, t in enumerate(notes)])
        return smry

    def __repr__(self) -> str:
        return str(self.summary())

    def _repr_html_(self) -> str:
        return self.summary().as_html()
