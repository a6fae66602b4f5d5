"""Guards against silent mistakes in the data and the formula.

Each guard looks for an input that fits without error but almost surely not as meant, and
warns (:class:`~multilogit.exceptions.DataWarning`) saying what it saw and how to say "yes, I
mean it":

- a column of numbers stored as text, used as a covariate: patsy makes it a factor with one
  dummy per distinct value;
- a numeric outcome with many distinct values (``write ~ ...``): one equation per value;
- ``^`` inside a Python expression of a formula (``I(write^2)``): Python's bitwise XOR, not a
  power.  (Between terms, R's ``(a + b)^2`` is a parse error in patsy, which writes ``**``;
  the error says so.)

It also gives formulas ``np`` and ``numpy`` without the caller importing them, and recodes a
Categorical of new data whose levels are the fitted ones in another order (or some of them).
"""

from __future__ import annotations

import ast
import os
import sys
import warnings

import numpy as np
import pandas as pd

from ..exceptions import DataWarning

__all__ = [
    "CONTINUOUS_LEVELS",
    "align_categoricals",
    "caret_hint",
    "warn_caret",
    "warn_continuous_outcome",
    "warn_text_numbers",
    "with_numpy",
]

#: A numeric outcome with more distinct values than this looks continuous.
CONTINUOUS_LEVELS = 20

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _warn(message: str) -> None:
    # Point the warning at the caller's line, wherever in the package it was raised.
    level, frame = 2, sys._getframe(1)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(
        _PACKAGE_DIR + os.sep
    ):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, DataWarning, stacklevel=level)


def with_numpy(eval_env):
    """``eval_env`` (a ``patsy.EvalEnvironment``) with ``np`` and ``numpy`` behind the
    caller's own names, so ``np.log(x)`` works in a formula written where numpy was not
    imported (a script, the command line).  A caller's own ``np`` still wins."""
    return eval_env.with_outer_namespace({"np": np, "numpy": np})


def _xor_codes(codes) -> list[str]:
    out = []
    for code in codes:
        try:
            tree = ast.parse(code, mode="eval")
        except SyntaxError:
            continue  # patsy reports it
        if any(isinstance(n, ast.BinOp) and isinstance(n.op, ast.BitXor) for n in ast.walk(tree)):
            out.append(code)
    return out


def caret_hint(formula: str) -> str:
    """For a formula patsy cannot parse: how patsy writes an interaction power, when the
    formula uses R's ``^``."""
    if "^" not in formula:
        return ""
    return f" (patsy writes R's '^' between terms as '**': {formula.replace('^', '**')!r})"


def warn_caret(codes) -> None:
    """Warn for each factor code (a Python expression of the formula) that uses ``^``."""
    for code in _xor_codes(codes):
        _warn(
            f"formula term {code!r} uses '^', which inside a Python expression is bitwise XOR, "
            f"not a power: write {code.replace('^', '**')!r} for a power"
        )


def _names_read(code: str) -> list:
    """The variables a factor code reads: its names, and the columns it quotes with Q()."""
    try:
        tree = ast.parse(code, mode="eval")
    except SyntaxError:
        return []
    out = []
    for n in ast.walk(tree):
        if isinstance(n, ast.Name):
            out.append(n.id)
        elif (
            isinstance(n, ast.Call)
            and isinstance(n.func, ast.Name)
            and n.func.id == "Q"
            and n.args
            and isinstance(n.args[0], ast.Constant)
        ):
            out.append(n.args[0].value)
    return out


def _column_of(code: str, data: pd.DataFrame):
    """The data column a factor code names as a bare variable (``x`` or ``Q("x")``)."""
    if code in data.columns:
        return code
    try:
        tree = ast.parse(code, mode="eval").body
    except SyntaxError:
        return None
    if (
        isinstance(tree, ast.Call)
        and isinstance(tree.func, ast.Name)
        and tree.func.id == "Q"
        and len(tree.args) == 1
        and isinstance(tree.args[0], ast.Constant)
        and tree.args[0].value in data.columns
    ):
        return tree.args[0].value
    return None


def warn_text_numbers(design_info, data: pd.DataFrame) -> None:
    """Warn for a covariate read as categories although every value is a number in text.

    Only bare column names are checked: ``C(x)`` says the categories are meant.
    """
    for factor, info in design_info.factor_infos.items():
        if info.type != "categorical":
            continue
        col = _column_of(factor.code, data)
        if col is None:
            continue
        s = data[col]
        if isinstance(s.dtype, pd.CategoricalDtype) or not pd.api.types.is_string_dtype(s.dtype):
            continue
        present = s.dropna()
        if not len(present) or not all(isinstance(v, str) for v in present.iloc[:1000]):
            continue
        numbers = pd.to_numeric(present, errors="coerce")
        k = len(info.categories)
        if numbers.notna().all() and k > 2:
            _warn(
                f"column {col!r} holds numbers stored as text: it is used as categories, with "
                f"{k - 1} dummy coefficients; convert it with pd.to_numeric(data[{col!r}]) "
                f"for one slope, or write C({col}) to keep the categories"
            )


def warn_continuous_outcome(values: pd.Series, name: str, k: int) -> None:
    """Warn when a numeric (not categorical, not boolean) outcome has ``k`` (its number of
    distinct values) above :data:`CONTINUOUS_LEVELS`."""
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(dtype):
        return
    if pd.api.types.is_bool_dtype(dtype):
        return
    if k > CONTINUOUS_LEVELS:
        _warn(
            f"outcome {name!r} is numeric with {k} distinct values: it looks continuous, and a "
            f"multinomial logit fits {k - 1} equations, one per value but the reference.  If "
            "the values are categories, pass the outcome as a Categorical (e.g. "
            f"data[{name!r}].astype('category')) or as strings, and this warning goes away"
        )


def align_categoricals(design_info, data: pd.DataFrame) -> pd.DataFrame:
    """``data`` with each Categorical column a factor reads recoded to the fitted level order
    when its categories are the fitted levels in another order (or some of them); other
    columns as they are."""
    recode = {}
    for factor, info in design_info.factor_infos.items():
        if info.type != "categorical":
            continue
        names = [
            c
            for c in _names_read(factor.code)
            if c in data.columns and isinstance(data[c].dtype, pd.CategoricalDtype)
        ]
        if len(names) != 1:
            continue
        col = data[names[0]]
        levels = list(info.categories)
        cats = list(col.cat.categories)
        if cats == levels or not set(cats) <= set(levels):
            continue
        recode[names[0]] = col.cat.set_categories(levels)
    if not recode:
        return data
    data = data.copy(deep=False)
    for c, values in recode.items():
        data[c] = values
    return data
