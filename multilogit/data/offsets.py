"""Offsets of a model: ``offset=`` lined up with the rows kept, one column per equation.

An offset :math:`o_{ij}` is added to the linear predictor of equation ``j`` (non-reference
outcome) for row ``i``: :math:`\\eta_{ij} = x_i^\\top\\beta_j + o_{ij}`, as R's
``offset`` (VGAM: one per linear predictor).  It is given as

- a column name of the formula data, or a vector (array, Series): the same offset in every
  equation;
- a list of ``J`` column names, or an ``(n, J)`` matrix or DataFrame: one per equation, in the
  order of the non-reference outcomes (a DataFrame whose columns are those outcome labels is
  lined up by label).

Rows are lined up as weights are (``multilogit.data.weights.resolve_rows``): by index
label for labelled data, else by position, with the rows dropped for missing values dropped
here too.  Predictions on new rows need their offsets: :func:`new_offsets`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..exceptions import DataError
from .weights import resolve_rows

__all__ = ["offset_spec", "resolve_offset", "new_offsets", "rereferenced"]


def _as_columns(offset, J: int, eq_outcomes) -> list:
    """The offset as a list of J per-equation specifications (each a name, a Series or a
    1-D array), or one repeated J times."""
    if isinstance(offset, str):
        return [offset] * J
    if isinstance(offset, list | tuple) and offset and all(isinstance(c, str) for c in offset):
        if len(offset) != J:
            raise DataError(
                f"offset names {len(offset)} column(s); give one per equation ({J}: "
                f"{', '.join(map(repr, eq_outcomes))}) or one for all"
            )
        return list(offset)
    if isinstance(offset, pd.DataFrame):
        if offset.shape[1] == 1:
            return [offset.iloc[:, 0]] * J
        labels = [str(c) for c in offset.columns]
        wanted = [str(o) for o in eq_outcomes]
        if sorted(labels) == sorted(wanted):
            offset = offset.iloc[:, [labels.index(w) for w in wanted]]
        if offset.shape[1] != J:
            raise DataError(
                f"offset has {offset.shape[1]} columns; give one per equation ({J}: "
                f"{', '.join(map(repr, eq_outcomes))}) or one for all"
            )
        return [offset.iloc[:, j] for j in range(J)]
    if isinstance(offset, pd.Series):
        return [offset] * J
    try:
        arr = np.asarray(offset, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(
            "offset must be a column name, a list of column names, a vector or an (n, J) "
            f"matrix of numbers; got {type(offset).__name__}"
        ) from None
    if arr.ndim == 1 or (arr.ndim == 2 and arr.shape[1] == 1):
        return [arr.reshape(-1)] * J
    if arr.ndim != 2 or arr.shape[1] != J:
        raise DataError(
            f"an offset matrix must have one column per equation ({J}: "
            f"{', '.join(map(repr, eq_outcomes))}); got shape {arr.shape}"
        )
    return [arr[:, j] for j in range(J)]


def _checked(offs: np.ndarray) -> np.ndarray:
    bad = ~np.isfinite(offs)
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=1))
        raise DataError(
            f"offset has {len(rows)} row(s) with missing or non-finite values (first at row "
            f"position {rows[0]}); drop those rows or give finite offsets"
        )
    return offs


def offset_spec(offset) -> dict:
    """What prediction on new rows needs to know of the offset as given: the column names
    that hold it in new data, if it was given by name."""
    if isinstance(offset, str):
        return {"names": [offset], "each": False}
    if isinstance(offset, list | tuple) and offset and all(isinstance(c, str) for c in offset):
        return {"names": list(offset), "each": True}
    return {"names": None, "each": None}


def resolve_offset(model, offset) -> np.ndarray:
    """``(n_kept, J)`` offsets of ``model``'s rows (read-only).

    Raises
    ------
    DataError
        An unknown column, a count of values or columns that fits neither the data nor the
        equations, or missing or non-finite values.
    """
    J = model.J
    cols = _as_columns(offset, J, model.eq_outcomes)
    parts = []
    for c in cols:
        v = resolve_rows(model, c, "offset")
        try:
            parts.append(np.asarray(v, dtype=np.float64))
        except (TypeError, ValueError):
            raise DataError("offset must hold numbers") from None
    offs = _checked(np.ascontiguousarray(np.column_stack(parts)))
    offs.setflags(write=False)
    return offs


def new_offsets(spec: dict | None, J: int, eq_outcomes, exog, offset, positions) -> np.ndarray:
    """Offsets ``(m, J)`` of the new rows ``exog`` kept at ``positions`` (their positions
    in ``exog``), for prediction.

    Parameters
    ----------
    spec : dict or None
        ``offset_spec`` of the model (``None``: the model has no offset).
    offset : optional
        The offsets given to ``predict``: a vector, an ``(m, J)`` matrix or DataFrame, column
        name(s) of ``exog``; default the model's offset columns when ``exog`` holds them.

    Raises
    ------
    DataError
        Offsets missing for a model with an offset, or given for one without.
    """
    if spec is None:
        if offset is not None:
            raise DataError("the model has no offset: predict takes no offset=")
        return None
    if offset is None:
        names = spec.get("names")
        if names and isinstance(exog, pd.DataFrame) and all(n in exog.columns for n in names):
            offset = names[0] if not spec.get("each") else list(names)
        else:
            hint = f" (its columns {names!r} in the new data, or" if names else " ("
            raise DataError(
                "the model has an offset: predictions on new rows need their offsets"
                f"{hint} offset=: a vector, or an (m, J) matrix with one column per equation)"
            )
    if isinstance(offset, str) or (
        isinstance(offset, list | tuple) and offset and all(isinstance(c, str) for c in offset)
    ):
        if not isinstance(exog, pd.DataFrame):
            raise DataError("offset names columns of the new data, which is not a DataFrame")
        missing = [c for c in ([offset] if isinstance(offset, str) else offset) if c not in exog]
        if missing:
            raise DataError(f"offset: column(s) {missing!r} are not in the new data")
        offset = exog[offset] if isinstance(offset, str) else exog[list(offset)]
    if isinstance(offset, pd.Series | pd.DataFrame):
        offset = offset.to_frame() if isinstance(offset, pd.Series) else offset
    cols = _as_columns(offset, J, eq_outcomes)
    arrs = [np.asarray(c, dtype=np.float64).reshape(-1) for c in cols]
    n_given = len(exog)
    if any(len(a) != n_given for a in arrs):
        raise DataError(
            f"offset has {len(arrs[0])} rows; the new data have {n_given} (one offset per row)"
        )
    offs = np.column_stack(arrs)[np.asarray(positions)]
    return _checked(np.ascontiguousarray(offs))


def rereferenced(offs: np.ndarray, outcome, new_outcome) -> np.ndarray:
    """Offsets against another reference outcome: with :math:`o_k` the offset of outcome
    ``k`` (0 for the old reference), :math:`o'_k = o_k - o_{\\mathrm{new\\ ref}}`."""
    K = len(outcome.levels)
    full = np.zeros((offs.shape[0], K))
    old_eq = list(outcome.eq_levels)
    for j, lv in enumerate(old_eq):
        full[:, list(outcome.levels).index(lv)] = offs[:, j]
    ref = full[:, list(outcome.levels).index(new_outcome.ref)]
    out = np.column_stack(
        [full[:, list(outcome.levels).index(lv)] - ref for lv in new_outcome.eq_levels]
    )
    out = np.ascontiguousarray(out)
    out.setflags(write=False)
    return out
