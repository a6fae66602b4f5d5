"""Outcome coding and design matrices: the only module that talks to patsy.

It turns what the user gives (a formula and a DataFrame, or arrays) into the three arrays the
kernels need, remembers how it did so (outcome levels, patsy design state), and can rebuild the
design for new data with the levels fixed at fit time.
"""

from __future__ import annotations

import ast
import builtins
import functools
import re
import warnings
import weakref
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from ..engine import kernels
from ..engine.threads import default_threads, map_runs, row_runs
from ..exceptions import DataError
from ..lazy import lazy_module
from . import guards
from .factors import Factors
from .fastbuild import DesignBuilder

__all__ = ["Outcome", "Design", "ModelData", "from_formula", "from_arrays"]

# patsy is imported at the first formula: array models never need it.
patsy = lazy_module("patsy")


@functools.cache
def patsy_builtins() -> dict:
    """patsy's builtins (``C``, ``I``, ``Q``, ...) by name: what factor code sees behind the
    caller's namespace."""
    import patsy.builtins

    return {name: getattr(patsy.builtins, name) for name in patsy.builtins.__all__}


def ast_names(code: str):
    """The names a factor's code reads (an iterator), as patsy finds them, and the columns it
    quotes with ``Q("a.b")``, which patsy's parser sees as a string, not a name."""
    from patsy.eval import ast_names as names

    yield from names(code)
    if "Q(" in code:
        for node in ast.walk(ast.parse(code.strip(), mode="eval")):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "Q"
                and len(node.args) == 1
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                yield node.args[0].value


# ---------------------------------------------------------------------------------------------
# Outcome


@dataclass(frozen=True)
class Outcome:
    """The K outcome levels, in order, and the reference (pivot) level.

    Attributes
    ----------
    name : str
        Name of the dependent variable.
    levels : tuple
        All K outcome labels, in the Categorical's order or sorted.
    ref : object
        The reference label (an element of ``levels``).
    """

    name: str
    levels: tuple
    ref: object

    @property
    def ref_index(self) -> int:
        return self.levels.index(self.ref)

    @property
    def eq_levels(self) -> tuple:
        """The K-1 non-reference labels, in level order: one equation each."""
        return tuple(lv for lv in self.levels if lv != self.ref)

    @property
    def J(self) -> int:
        return len(self.levels) - 1

    def with_ref(self, ref) -> Outcome:
        return Outcome(self.name, self.levels, match_level(ref, self.levels, self.name))

    @property
    def level_to_internal(self) -> np.ndarray:
        """For each level (in order), its column in the kernels' (non-reference...,
        reference) layout."""
        r, K = self.ref_index, len(self.levels)
        return np.array([K - 1 if k == r else (k if k < r else k - 1) for k in range(K)])

    def eq_codes(self, level_codes: np.ndarray) -> np.ndarray:
        """Map level indices ``0..K-1`` to equation indices (``-1`` for the reference)."""
        r, K = self.ref_index, len(self.levels)
        # One gather through a table instead of masks over all rows; its last entry maps a
        # missing value's code (-1) to -1, as the masks did.
        table = np.append(np.arange(K, dtype=np.int64), -1)
        table[r] = -1
        table[r + 1 : K] -= 1
        return table[level_codes]


def _native(v):
    return v.item() if isinstance(v, np.generic) else v


def match_level(ref, levels, name):
    if ref is None:
        return levels[0]
    for lv in levels:
        if lv == ref and type(lv) is not bool or (lv is ref):
            return lv
    # Labels read from a command line arrive as strings: accept "2" for the level 2.
    by_str = [lv for lv in levels if str(lv) == str(ref)]
    if len(by_str) == 1:
        return by_str[0]
    raise DataError(
        f"reference outcome {ref!r} is not a level of {name!r}; levels are: "
        + ", ".join(repr(lv) for lv in levels)
    )


def encode_outcome(values, name: str, ref=None):
    """Code an outcome variable.

    Returns
    -------
    outcome : Outcome
    codes : ndarray of int64
        Level index ``0..K-1`` of each row, ``-1`` where the value is missing.
    """
    if isinstance(values, pd.DataFrame):
        if values.shape[1] != 1:
            raise DataError(f"the outcome must be one column; got {values.shape[1]} columns")
        values = values.iloc[:, 0]
    if isinstance(values, np.ndarray) and values.ndim != 1:
        if values.ndim == 2 and values.shape[1] == 1:
            values = values[:, 0]
        else:
            raise DataError(f"the outcome must be 1-D; got an array of shape {values.shape}")
    fast = _integer_codes(values.to_numpy() if isinstance(values, pd.Series) else values)
    if fast is not None:
        return _checked_outcome(*fast, name, ref)
    s = _untupled(values if isinstance(values, pd.Series) else pd.Series(values))
    if isinstance(s.dtype, pd.CategoricalDtype):
        cat = s.cat
        used = pd.unique(cat.codes[cat.codes >= 0])
        unused = [c for i, c in enumerate(cat.categories) if i not in set(used.tolist())]
        if unused:
            warnings.warn(
                f"outcome {name!r}: level(s) {', '.join(map(repr, map(_native, unused)))} "
                "have no rows and are dropped",
                UserWarning,
                stacklevel=4,
            )
            s = s.cat.remove_categories(unused)
        levels = tuple(_native(c) for c in s.cat.categories)
        codes = s.cat.codes.to_numpy().astype(np.int64)
    else:
        if s.dtype.kind == "f":
            finite = s.dropna()
            if not np.all(np.isfinite(finite)):
                raise DataError(f"outcome {name!r} holds infinite values")
            if not np.all(finite == np.round(finite)):
                raise DataError(
                    f"outcome {name!r} is continuous (non-integer values); a multinomial "
                    "logit needs categorical labels"
                )
        missing = s.isna().to_numpy()
        present = s[~missing]
        uniq = pd.unique(present)
        try:
            uniq = sorted(uniq)
        except TypeError:
            uniq = sorted(uniq, key=str)
        levels = tuple(_native(u) for u in uniq)
        codes = np.full(len(s), -1, dtype=np.int64)
        if len(present):
            codes[~missing] = pd.Index(uniq).get_indexer(present.to_numpy())
    return _checked_outcome(levels, codes, name, ref)


def _is_tuple(v) -> bool:
    return isinstance(v, tuple)


def _untupled(s: pd.Series) -> pd.Series:
    """Tuple labels as their strings: pandas turns a list of tuples into a MultiIndex, so
    tuples cannot label the columns of ``params`` and the other tables; ``str(label)`` keeps
    them apart and readable, and ``ref=`` still matches the tuple by its string."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        cats = s.cat.categories
        if cats.dtype == object and any(map(_is_tuple, cats)):
            return s.cat.rename_categories([str(c) if _is_tuple(c) else c for c in cats])
        return s
    if s.dtype == object and any(map(_is_tuple, pd.unique(s.dropna()))):
        return s.map(lambda v: str(v) if _is_tuple(v) else v)
    return s


def _checked_outcome(levels, codes, name, ref):
    if len(levels) < 2:
        shown = f" (only {levels[0]!r})" if levels else ""
        raise DataError(
            f"outcome {name!r} has {len(levels)} level{'s' if len(levels) != 1 else ''}{shown}; "
            "a multinomial logit needs at least two"
        )
    return Outcome(name, levels, match_level(ref, levels, name)), codes


# Integer outcomes spanning at most this many values are coded by counting, not sorting.
_COUNTING_SPAN = 1 << 16


def _integer_codes(v):
    """``(levels, codes)`` of a 1-D array of NumPy integers (never missing) by one count of
    each value: the levels and codes of the general path, without its sort; ``None`` for
    anything else or values spread too widely."""
    if not isinstance(v, np.ndarray) or v.ndim != 1 or v.dtype.kind not in "iu" or not len(v):
        return None
    lo, hi = int(v.min()), int(v.max())
    if hi - lo >= _COUNTING_SPAN:
        return None
    shifted = (v - lo).astype(np.intp, copy=False)
    present = np.flatnonzero(np.bincount(shifted, minlength=hi - lo + 1))
    table = np.full(hi - lo + 1, -1, dtype=np.int64)
    table[present] = np.arange(len(present))
    levels = tuple(_native(v.dtype.type(u + lo)) for u in present)
    return levels, table[shifted]


# ---------------------------------------------------------------------------------------------
# Design


@dataclass(frozen=True)
class Design:
    """How the design matrix was built: column names and (for formulas) patsy's state."""

    names: tuple
    formula: str | None = None
    design_info: patsy.DesignInfo | None = field(default=None, compare=False)
    eval_env: patsy.EvalEnvironment | None = field(default=None, compare=False, repr=False)

    @property
    def has_intercept(self) -> bool:
        return "Intercept" in self.names or "const" in self.names

    def build(self, data) -> tuple[np.ndarray, pd.Index | None]:
        """Design matrix for new data, with levels and transforms fixed at fit time.

        Returns the matrix and the index of the rows (``None`` for arrays).
        """
        if self.design_info is None:
            return self._build_array(data)
        return self._build_formula(data)

    def build_rows(self, data, missing: str = "raise") -> tuple[np.ndarray, pd.Index | None]:
        """:meth:`build` with a model's missing-value policy applied to the new rows.

        Rows with a missing value in a column the formula uses, or with a design value that is
        missing or infinite (an infinite input, a transform such as ``np.log(0)``), raise a
        :class:`~multilogit.DataError` naming the columns (``missing="raise"``), or are dropped
        with a ``UserWarning`` saying how many (``missing="drop"``): they have no prediction,
        never a silent NaN or a degenerate probability.

        Returns the matrix of the rows kept and their index (``None`` for arrays of rows all
        kept).
        """
        check_missing_policy(missing)
        n_given, dropped = None, {}
        if self.design_info is not None and isinstance(data, pd.DataFrame | dict):
            data = pd.DataFrame(data) if isinstance(data, dict) else data
            n_given = len(data)
            rhs = self.formula.split("~", 1)[-1] if self.formula else ""
            cols = _formula_columns(rhs, data)
            na = {c: data[c].isna().to_numpy() for c in cols}
            na = {c: m for c, m in na.items() if m.any()}
            if na:
                rows = np.logical_or.reduce(list(na.values()))
                if missing == "raise":
                    raise _new_rows_error(int(rows.sum()), n_given, na, "missing")
                dropped.update({c: int(m.sum()) for c, m in na.items()})
                data = data.loc[~rows]
                if len(data) == 0:
                    raise DataError(f"none of the {n_given} new rows is without missing values")
        X, index = self.build(data)
        if n_given is None:
            n_given = len(X)
        bad = ~np.isfinite(X)
        if bad.any():
            rows = bad.any(axis=1)
            per_col = {self.names[k]: bad[:, k] for k in np.flatnonzero(bad.any(axis=0))}
            if missing == "raise":
                raise _new_rows_error(int(rows.sum()), len(X), per_col, "missing or infinite")
            for c, m in per_col.items():
                dropped[c] = dropped.get(c, 0) + int(m.sum())
            X = X[~rows]
            index = (pd.RangeIndex(len(rows)) if index is None else index)[~rows]
            if len(X) == 0:
                raise DataError(
                    f"none of the {n_given} new rows has finite values in every design column"
                )
        if dropped:
            n_kept = len(X)
            warnings.warn(
                f"{n_given - n_kept} of {n_given} new row(s) have missing or infinite values in "
                + ", ".join(f"{c!r} ({k})" for c, k in dropped.items())
                + " and have no prediction (missing='drop'); the result's index says which "
                "rows are kept",
                UserWarning,
                stacklevel=4,
            )
        return X, index

    def term_columns(self, names) -> tuple[np.ndarray, tuple[str, ...]]:
        """The design columns that move with the data columns ``names`` (a formula design).

        Returns the positions of the columns of every term with a factor that reads one of
        ``names``, in design order, and the names of the data columns those terms read.
        Marginal effects change one variable at a time: only these columns need rebuilding.
        """
        cols, _, reads = _partial_design(self.design_info, frozenset(names))
        return cols, reads

    def build_columns(self, data: pd.DataFrame, names) -> np.ndarray:
        """The columns :meth:`term_columns` of ``names`` of the design of ``data``.

        The same numbers as the full design's columns (one design state, one builder), for
        the cost of those terms alone; ``data`` needs only the columns they read.  Rows whose
        design would hold a missing value raise :class:`~multilogit.DataError` as :meth:`build`
        does.
        """
        cols, sub, _ = _partial_design(self.design_info, frozenset(names))
        if not len(cols):
            return np.empty((len(data), 0))
        data = numpy_columns(data, list(data.columns))
        X = _builder(sub, self.formula)(data)
        if np.isnan(X).any():
            Design(self.names, self.formula, sub, self.eval_env)._build_formula(data)
        return X

    def _build_array(self, exog):
        if isinstance(exog, pd.Series):
            exog = exog.to_frame()
        if isinstance(exog, pd.DataFrame):
            missing = [c for c in self.names if c not in exog.columns]
            if missing and list(map(str, exog.columns)) != list(self.names):
                if exog.shape[1] == len(self.names) and not any(
                    c in exog.columns for c in self.names
                ):
                    pass  # unnamed positional frame: accept by position
                else:
                    raise DataError(
                        "exog is missing column(s) "
                        + ", ".join(map(repr, missing))
                        + " used in the fit"
                    )
            else:
                exog = exog[list(self.names)]
            index = exog.index
            X = _numeric_matrix(exog, "exog")
        else:
            index = None
            X = _numeric_matrix(exog, "exog")
        if X.ndim == 1:
            X = X[None, :] if X.shape[0] == len(self.names) else X[:, None]
        if X.shape[1] != len(self.names):
            raise DataError(
                f"exog has {X.shape[1]} columns; the model was fitted with {len(self.names)} "
                f"({', '.join(self.names)})"
            )
        return X, index

    def _build_formula(self, data):
        if not isinstance(data, pd.DataFrame):
            if isinstance(data, dict):
                data = pd.DataFrame(data)
            else:
                raise DataError(
                    "this model was specified by a formula: pass new data as a DataFrame "
                    "with the columns the formula uses"
                )
        _check_columns(self.design_info, data, self.eval_env)
        data = numpy_columns(data, _formula_columns(self.formula, data))
        data = guards.align_categoricals(self.design_info, data)
        _check_levels(self.design_info, data)
        _check_numeric(self.design_info, data)
        try:
            X = _builder(self.design_info, self.formula)(data)
        except DataError:
            X = None
        if X is not None and not np.isnan(X).any():
            return X, data.index
        # Missing values (or a surprise): patsy's own build, for its result or its message.
        try:
            (X,) = patsy.build_design_matrices(
                [self.design_info], data, NA_action="raise", return_type="dataframe"
            )
        except patsy.PatsyError as exc:
            raise DataError(_patsy_message(exc)) from None
        except (TypeError, ValueError, AttributeError) as exc:
            # patsy's own error path can fail on unexpected dtypes: still say what happened.
            raise DataError(
                f"cannot build the design from the new data ({type(exc).__name__}: {exc})"
            ) from None
        return np.asarray(X, dtype=np.float64), X.index


# One builder per design, kept while the design lives: prediction and marginal effects build
# many designs from the same one, and a builder checks itself against patsy on its first call.
_BUILDERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _builder(design_info, formula) -> DesignBuilder:
    build = _BUILDERS.get(design_info)
    if build is None:
        build = _BUILDERS[design_info] = DesignBuilder(design_info, formula)
    return build


# The sub-designs of term_columns / build_columns, per design and set of data columns: each
# keeps its own builder (checked against patsy once), so they are made once per design.
_PARTIAL: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _partial_design(design_info, names: frozenset):
    cache = _PARTIAL.setdefault(design_info, {})
    hit = cache.get(names)
    if hit is not None:
        return hit
    terms, cols, reads = [], [], []
    for term in design_info.terms:
        used = [nm for f in term.factors for nm in ast_names(f.code)]
        if not names.intersection(used):
            continue
        terms.append(term)
        sl = design_info.term_slices[term]
        cols.extend(range(sl.start, sl.stop))
        reads.extend(nm for nm in used if nm not in reads)
    sub = design_info.subset(terms) if terms else None
    hit = cache[names] = (np.asarray(cols, dtype=np.intp), sub, tuple(reads))
    return hit


def _patsy_message(exc) -> str:
    # patsy appends the formula with a caret marker on separate lines; keep the first line.
    return str(exc).splitlines()[0].strip()


def _unknown_names(codes, data, eval_env):
    """Names used by factor ``codes`` that are neither data columns nor defined elsewhere."""
    namespaces = list(getattr(eval_env, "_namespaces", [])) + [patsy_builtins()]
    unknown = []
    for code in codes:
        for nm in ast_names(code):
            if nm in data.columns or hasattr(builtins, nm) or nm in unknown:
                continue
            if not any(nm in ns for ns in namespaces):
                unknown.append(nm)
    return unknown


def _check_columns(design_info, data, eval_env):
    codes = [f.code for f in design_info.factor_infos if hasattr(f, "code")]
    missing = _unknown_names(codes, data, eval_env)
    if missing:
        raise DataError(
            "new data is missing column(s) "
            + ", ".join(map(repr, missing))
            + " used by the formula"
        )


def _check_levels(design_info, data):
    for factor, info in design_info.factor_infos.items():
        if info.type != "categorical":
            continue
        names = [nm for nm in ast_names(factor.code) if nm in data.columns]
        if len(names) != 1:
            continue
        col = data[names[0]]
        known = set(info.categories)
        seen = pd.unique(col.dropna())
        unseen = [_native(v) for v in seen if _native(v) not in known]
        if unseen:
            raise DataError(
                f"column {names[0]!r} has level(s) {', '.join(map(repr, unseen))} not seen when "
                f"the model was fitted (levels: {', '.join(map(repr, info.categories))})"
            )


def numpy_columns(data: pd.DataFrame, columns) -> pd.DataFrame:
    """``data`` with pandas' nullable ``boolean``, ``Int*`` and ``Float*`` columns among
    ``columns`` as NumPy columns, which patsy can read (it fails on the nullable dtypes with a
    TypeError from NumPy).  Missing values become NaN (integers and floats) or None
    (booleans, as object); callers drop or refuse them as for any column."""
    convert = {}
    for c in columns:
        if c not in data.columns:
            continue
        col = data[c]
        dtype = col.dtype
        if not isinstance(dtype, pd.api.extensions.ExtensionDtype) or dtype.kind not in "biuf":
            continue  # NumPy columns, Categoricals and strings: patsy reads them
        if not col.isna().any():
            convert[c] = col.to_numpy(dtype.numpy_dtype)
        elif dtype.kind == "b":
            convert[c] = col.astype(object).to_numpy()
        else:
            convert[c] = col.to_numpy(np.float64, na_value=np.nan)
    if not convert:
        return data
    data = data.copy(deep=False)
    for c, values in convert.items():
        data[c] = pd.Series(values, index=data.index, name=c)
    return data


def _check_numeric(design_info, data):
    """Columns a numeric term uses must hold numbers (patsy fails obscurely otherwise)."""
    bad = []
    for factor, info in design_info.factor_infos.items():
        if info.type != "numerical":
            continue
        for nm in ast_names(factor.code):
            if nm in data.columns and nm not in bad:
                col = data[nm]
                if not (pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)):
                    bad.append(nm)
    if bad:
        raise DataError(
            "column(s) "
            + ", ".join(f"{c!r} ({data[c].dtype})" for c in bad)
            + " must be numeric: the model uses them as numbers"
        )


def _numeric_matrix(exog, what):
    if isinstance(exog, pd.DataFrame):
        bad = [
            c
            for c in exog.columns
            if not (pd.api.types.is_numeric_dtype(exog[c]) or pd.api.types.is_bool_dtype(exog[c]))
        ]
        if bad:
            raise DataError(
                f"{what} column(s) {', '.join(map(repr, bad))} are not numeric; use a formula "
                "with C() for categorical variables, or code them as dummies"
            )
        return exog.to_numpy(dtype=np.float64, na_value=np.nan)
    arr = np.asarray(exog)
    if arr.dtype.kind not in "biuf":
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError):
            raise DataError(
                f"{what} holds non-numeric values (dtype {arr.dtype}); pass numbers, or use a "
                "formula with C() for categorical variables"
            ) from None
    if arr.ndim > 2 or arr.ndim == 0:
        raise DataError(f"{what} must be 2-D; got an array of shape {arr.shape}")
    return np.asarray(arr, dtype=np.float64)


# ---------------------------------------------------------------------------------------------
# Model data


@dataclass(frozen=True)
class ModelData:
    """Everything the estimator needs, after missing-value handling.

    ``X`` (n, p), ``y`` level codes ``0..K-1``, ``row_labels`` the index of the rows kept,
    ``n_dropped`` rows dropped for missing values, ``col_range`` each column's ``(lo, hi)``
    when known (found by the missing-value scan).
    """

    X: np.ndarray
    codes: np.ndarray
    outcome: Outcome
    design: Design
    row_labels: pd.Index
    n_dropped: int = 0
    col_range: tuple | None = field(default=None, repr=False)


def _new_rows_error(n_bad, n, detail, what) -> DataError:
    parts = ", ".join(f"{c!r} ({int(np.sum(m))})" for c, m in detail.items())
    return DataError(
        f"{n_bad} of {n} new row(s) have {what} values in column(s) {parts}; predictions need "
        "finite values (the model's missing='raise'): drop those rows, or build the model with "
        "missing='drop' so that predict drops them"
    )


def _missing_error(n_miss, n, detail):
    parts = ", ".join(f"{c!r} ({k})" for c, k in detail.items() if k)
    return DataError(
        f"{n_miss} of {n} rows have missing values"
        + (f" in column(s) {parts}" if parts else "")
        + "; pass missing='drop' to drop them"
    )


def check_missing_policy(missing):
    if missing not in ("raise", "drop"):
        raise ValueError(f"missing must be 'raise' or 'drop'; got {missing!r}")


def _nonfinite_rows(X):
    """Rows of ``X`` holding NaN or inf, the entry masks of just those rows, and each column's
    finite range ``(lo, hi)``, from one pass over ``X`` without an ``(n, p)`` temporary."""
    X = np.ascontiguousarray(X)
    bad = np.empty(len(X), dtype=np.bool_)
    # One run of rows per core: the scan is bound by reading X.
    runs = row_runs(len(X), default_threads())
    parts = map_runs(lambda k: kernels.scan_columns(X[runs[k]], bad[runs[k]]), len(runs))
    lo = np.min([part[0] for part in parts], axis=0)
    hi = np.max([part[1] for part in parts], axis=0)
    rows = np.flatnonzero(bad)
    sub = X[rows]
    return rows, ~np.isfinite(sub), np.isnan(sub), (lo, hi)


def _finalize(X, codes, outcome_values, name, ref, design, index, pre_missing, missing, cols):
    """Apply the missing-value policy and code the outcome on the rows kept."""
    check_missing_policy(missing)
    rows, nonfinite_x, nan_x, col_range = _nonfinite_rows(X)
    inf_x = nonfinite_x & ~nan_x
    if inf_x.any():
        bad = [design.names[k] for k in np.flatnonzero(inf_x.any(axis=0))]
        raise DataError(
            f"{int(inf_x.any(axis=1).sum())} row(s) hold infinite values in column(s) "
            + ", ".join(map(repr, bad))
        )
    y_missing = pd.isna(pd.Series(outcome_values)).to_numpy()
    miss = y_missing | pre_missing
    miss[rows[nan_x.any(axis=1)]] = True
    n_miss = int(miss.sum()) + 0
    if n_miss and missing != "drop":
        detail = dict(cols)
        if y_missing.any():
            detail[name] = int(y_missing.sum())
        for k in np.flatnonzero(nan_x.any(axis=0)):
            detail.setdefault(design.names[k], int(nan_x[:, k].sum()))
        raise _missing_error(n_miss, len(miss), detail)
    keep = ~miss
    # Without missing rows the design is used as given: no copy of a large X.
    X = np.ascontiguousarray(X[keep] if n_miss else X)
    vals = pd.Series(outcome_values)
    if n_miss:
        vals = vals.iloc[np.flatnonzero(keep)].reset_index(drop=True)
    if len(X) == 0:
        raise DataError(
            "no rows left to fit" + (" after dropping missing values" if n_miss else "")
        )
    outcome, codes = encode_outcome(vals, name, ref)
    guards.warn_continuous_outcome(vals, name, len(outcome.levels))
    rows_kept = index[keep] if n_miss else index
    # The column range describes the rows kept only when none was dropped.
    return ModelData(X, codes, outcome, design, rows_kept, n_miss, None if n_miss else col_range)


def from_arrays(endog, exog, ref=None, missing="raise") -> ModelData:
    """Model data from an outcome vector and a design matrix (no intercept is added)."""
    if isinstance(exog, pd.Series):
        exog = exog.to_frame()
    if isinstance(exog, pd.DataFrame):
        names = tuple(str(c) for c in exog.columns)
        index = exog.index
    else:
        arr = np.asarray(exog)
        if arr.ndim == 1:
            arr = arr[:, None]
        exog = arr
        names = tuple(f"x{k + 1}" for k in range(arr.shape[1] if arr.ndim == 2 else 0))
        index = None
    X = _numeric_matrix(exog, "exog")
    if X.ndim != 2:
        raise DataError(f"exog must be 2-D; got an array of shape {X.shape}")
    name = getattr(endog, "name", None) or "y"
    n_y = len(endog) if hasattr(endog, "__len__") else np.size(endog)
    if n_y != X.shape[0]:
        raise DataError(
            f"endog has {n_y} rows but exog has {X.shape[0]}; they must have the same length"
        )
    if X.shape[1] == 0:
        raise DataError("exog has no columns: the model has no parameters")
    if index is None:
        index = endog.index if isinstance(endog, pd.Series) else pd.RangeIndex(X.shape[0])
    values = (
        endog.to_numpy()
        if isinstance(endog, pd.Series) and not isinstance(endog.dtype, pd.CategoricalDtype)
        else endog
    )
    if isinstance(values, pd.DataFrame):
        values = values.iloc[:, 0]
    design = Design(names)
    return _finalize(
        X, None, values, str(name), ref, design, index, np.zeros(len(X), bool), missing, {}
    )


def _lhs_values(code, data, eval_env):
    if code in data.columns:
        return data[code]
    try:
        val = eval_env.eval(code, inner_namespace=data)
    except Exception as exc:  # the user's own expression failed
        raise DataError(f"cannot evaluate the outcome {code!r}: {exc}") from None
    # C(y, levels=[...]) returns patsy's categorical box: honour its level order.
    if hasattr(val, "data") and hasattr(val, "levels"):
        levels = val.levels
        inner = pd.Series(np.asarray(val.data), index=data.index)
        if levels is not None:
            return pd.Series(pd.Categorical(inner, categories=list(levels)), index=data.index)
        return inner
    return pd.Series(np.asarray(val), index=data.index)


def from_formula(formula: str, data, ref=None, missing="raise", eval_env=0) -> ModelData:
    """Model data from an R-style formula ``outcome ~ terms`` and a DataFrame."""
    check_missing_policy(missing)
    if not isinstance(formula, str) or "~" not in formula:
        raise DataError(f"formula must be a string 'outcome ~ terms'; got {formula!r}")
    if isinstance(data, dict):
        data = pd.DataFrame(data)
    if not isinstance(data, pd.DataFrame):
        raise DataError("data must be a pandas DataFrame (or a dict of columns)")
    if len(data) == 0:
        raise DataError("data has no rows")
    if not isinstance(eval_env, patsy.EvalEnvironment):
        eval_env = patsy.EvalEnvironment.capture(eval_env + 1)
    eval_env = guards.with_numpy(eval_env)
    try:
        desc = patsy.ModelDesc.from_formula(formula)
    except patsy.PatsyError as exc:
        hint = guards.caret_hint(formula)
        raise DataError(f"cannot parse formula {formula!r}: {_patsy_message(exc)}{hint}") from None
    lhs = [t for t in desc.lhs_termlist]
    if len(lhs) != 1 or len(lhs[0].factors) != 1:
        raise DataError(f"the left side of {formula!r} must be one outcome variable")
    code = lhs[0].factors[0].code
    # The left side is evaluated as patsy evaluates factors: patsy's builtins (C, I, Q, ...)
    # behind the caller's namespace.
    lhs_env = eval_env.with_outer_namespace(patsy_builtins())
    unknown = _unknown_names([code], data, lhs_env)
    if unknown:
        raise DataError(f"outcome column {unknown[0]!r} is not in the data")
    rhs_codes = [f.code for t in desc.rhs_termlist for f in t.factors]
    guards.warn_caret([code, *rhs_codes])
    unknown = _unknown_names(rhs_codes, data, eval_env)
    if unknown:
        raise DataError(
            f"formula {formula!r} uses {', '.join(map(repr, unknown))}, which "
            + ("is not a column" if len(unknown) == 1 else "are not columns")
            + " of the data"
        )
    rhs = patsy.ModelDesc([], desc.rhs_termlist)
    n_pre = 0
    # Count missing values per column the formula uses before patsy sees them, so the message
    # can name the columns; with missing="drop" those rows never reach patsy.
    counts = {}
    pre_missing = np.zeros(len(data), bool)
    for c in _formula_columns(formula, data):
        m = data[c].isna().to_numpy()
        if m.any():
            counts[c] = int(m.sum())
            pre_missing |= m
    if missing == "drop" and pre_missing.any():
        n_pre = int(pre_missing.sum())
        data = data.loc[~pre_missing]
        if len(data) == 0:
            raise DataError(f"no rows left to fit after dropping {n_pre} rows with missing values")
    elif pre_missing.any():
        raise _missing_error(int(pre_missing.sum()), len(data), counts)
    try:
        # NA_types=[]: remaining NaN (e.g. from a transform) reach _finalize, which counts them.
        data = numpy_columns(data, [c for c in _formula_columns(formula, data) if c != code])
        factors = Factors(rhs.rhs_termlist, eval_env, streamed=False)
        factors.see(data)
        info = factors.design_info()
        guards.warn_text_numbers(info, data)
        if not info.column_names:
            raise DataError(
                f"formula {formula!r} has no terms on the right side: the model has no "
                "parameters; add terms, or 1 for an intercept-only model"
            )
        X = DesignBuilder(info, formula)(data)
    except patsy.PatsyError as exc:
        raise DataError(
            f"cannot build the design for {formula!r}: {_patsy_message(exc)}"
        ) from None
    except NameError as exc:
        raise DataError(f"formula {formula!r}: {exc}") from None
    y_raw = _lhs_values(code, data, lhs_env).reset_index(drop=True)
    design = Design(tuple(info.column_names), formula, info, eval_env)
    md = _finalize(
        X,
        None,
        y_raw,
        code,
        ref,
        design,
        data.index,
        np.zeros(len(data), bool),
        missing,
        {},
    )
    if n_pre:
        md = replace(md, n_dropped=md.n_dropped + n_pre)
    return md


def _formula_columns(formula, data):
    tokens = set(re.findall(r"[A-Za-z_][A-Za-z0-9_.]*", formula))
    quoted = set(re.findall(r"Q\(\s*['\"](.+?)['\"]\s*\)", formula))
    return [c for c in data.columns if isinstance(c, str) and (c in tokens or c in quoted)]
