"""Design matrices from a fixed patsy design: patsy's numbers, without patsy's per-call costs.

:func:`patsy.build_design_matrices` evaluates every factor through a pandas round trip, checks
missing values factor by factor, codes categorical values one Python dict lookup per row, and
returns a Fortran-ordered matrix the engine then copies.  On data streamed in batches these costs
dominate the whole fit.  :class:`DesignBuilder` builds the same matrix from the same fixed
:class:`patsy.DesignInfo`:

* a factor that is a bare column name (``x1``, ``Q("my col")``) with no stateful transform is
  read from the column, and any other factor is evaluated by patsy itself (``factor.eval``), so
  transforms and their memorised state are patsy's own;
* categorical values are coded by a vectorised index lookup where that gives the same codes as
  patsy's dict lookup (string or numeric levels), and by patsy otherwise;
* every design column is the running product, in patsy's factor order, of its factors' columns
  and contrast entries, written into a C-ordered float64 matrix: the same floating-point
  operations as patsy, so the same bits.

Missing values are not looked for: numeric NaN pass through to the design (the caller counts them,
as with ``NAAction(NA_types=[])``) and a categorical value that is no level raises, as in patsy.

The first rows a builder sees (up to 4096) are also built by patsy and compared bit for bit: a
design the fast path does not reproduce exactly (an exotic factor type) makes the builder use
patsy from then on, so a surprise costs speed, not a wrong number.
"""

from __future__ import annotations

import itertools
import re

import numpy as np
import pandas as pd

from ..exceptions import DataError
from ..lazy import lazy_module
from .factors import is_categorical_box, no_na_action

__all__ = ["DesignBuilder"]

patsy = lazy_module("patsy")  # imported at the first formula: array models never need it

# Rows of the first batch compared with patsy (all of a smaller batch).
_CHECK_ROWS = 4096
_QUOTED = re.compile(r"Q\(\s*(['\"])(.+)\1\s*\)")


class DesignBuilder:
    """Build design matrices of a fixed patsy design, batch by batch.

    Parameters
    ----------
    design_info : patsy.DesignInfo
        The design, with every factor's state and categorical levels fixed (by a preliminary
        pass over the data).
    formula : str
        For messages.

    Attributes
    ----------
    fast : bool or None
        ``None`` before the first batch; then whether the fast path reproduced patsy's design
        of it exactly (and is used from then on).
    """

    def __init__(self, design_info, formula: str = ""):
        self.design_info = design_info
        self.formula = formula
        self.fast: bool | None = None
        self._columns = {f: _plain_column(f, info) for f, info in design_info.factor_infos.items()}

    def __call__(self, df: pd.DataFrame) -> np.ndarray:
        """The design of ``df``: float64, C-contiguous, shape ``(len(df), p)``; NaN from
        missing numeric values or transforms (log of a negative) pass through."""
        if self.fast is None:
            head = df.iloc[:_CHECK_ROWS]
            ref = self._patsy(head)
            try:
                mine = self._fast(head)
            except Exception:  # any surprise in the fast path: patsy alone from now on
                mine = None
            self.fast = (
                mine is not None
                and mine.shape == ref.shape
                and bool(np.all((mine == ref) | (np.isnan(mine) & np.isnan(ref))))
            )
            if len(head) == len(df):
                return ref
        if self.fast:
            try:
                return self._fast(df)
            except DataError:
                raise
            except Exception:  # a batch unlike the first (another dtype): patsy decides
                return self._patsy(df)
        return self._patsy(df)

    def _patsy(self, df) -> np.ndarray:
        try:
            with np.errstate(invalid="ignore", divide="ignore"):
                (X,) = patsy.build_design_matrices(
                    [self.design_info], df, NA_action=no_na_action()
                )
        except patsy.PatsyError as exc:
            first = str(exc).splitlines()[0].strip()
            raise DataError(f"cannot build the design for {self.formula!r}: {first}") from None
        except (TypeError, ValueError, AttributeError) as exc:
            # patsy's own error path can fail on unexpected dtypes: still say what happened.
            raise DataError(
                f"cannot build the design for {self.formula!r} ({type(exc).__name__}: {exc})"
            ) from None
        return np.ascontiguousarray(X, dtype=np.float64)

    def _fast(self, df) -> np.ndarray:
        di = self.design_info
        n = len(df)
        values = {}
        with np.errstate(invalid="ignore", divide="ignore"):
            for factor, info in di.factor_infos.items():
                values[factor] = self._factor(factor, info, df, n)
        # Each design column is built in a row of a (p, n) buffer (contiguous writes), and the
        # buffer transposed once into the C-ordered design at the end.
        out = np.empty((len(di.column_names), n), dtype=np.float64)
        col = 0
        for subterms in di.term_codings.values():
            for sub in subterms:
                widths = [
                    sub.contrast_matrices[f].matrix.shape[1]
                    if f in sub.contrast_matrices
                    else di.factor_infos[f].num_columns
                    for f in sub.factors
                ]
                # patsy's column order: the left-most factor's columns vary fastest.
                for combo in itertools.product(*(range(w) for w in reversed(widths))):
                    combo = combo[::-1]
                    acc = out[col]
                    acc[:] = 1.0
                    for f, j in zip(sub.factors, combo, strict=True):
                        if f in sub.contrast_matrices:
                            acc *= sub.contrast_matrices[f].matrix[values[f], j]
                        else:
                            acc *= values[f][:, j]
                    col += 1
        if col != out.shape[0]:
            raise AssertionError("design columns do not add up")  # caught by the first check
        return np.ascontiguousarray(out.T)

    def _factor(self, factor, info, df, n) -> np.ndarray:
        name = self._columns[factor]
        if info.type == "numerical":
            if name is not None and name in df.columns:
                v = df[name].to_numpy()
            else:
                v = np.asarray(factor.eval(info.state, df))
            if v.dtype.kind == "O":  # numbers as objects (a batch of missing values, say)
                try:
                    v = pd.to_numeric(pd.Series(v.ravel())).to_numpy(np.float64)
                except (TypeError, ValueError):
                    raise DataError(
                        f"{factor.name()}: non-numeric values in a numeric term"
                    ) from None
            if v.dtype.kind not in "iuf":
                raise TypeError(f"non-numeric values for numeric factor {factor.name()}")
            v = v.astype(np.float64, copy=False)
            v = v.reshape(n, -1) if v.ndim == 1 else v
            if v.shape != (n, info.num_columns):
                raise ValueError(f"factor {factor.name()} has shape {v.shape}")
            return v
        value = df[name] if name is not None and name in df.columns else None
        if value is None:
            value = factor.eval(info.state, df)
        return _codes(value, tuple(info.categories), factor)


def _plain_column(factor, info):
    """The data column a factor reads unchanged (``x``, ``Q("x y")``), else None."""
    code = getattr(factor, "code", None)
    if code is None or info.state.get("transforms"):
        return None
    m = _QUOTED.fullmatch(code)
    if m:
        return m.group(2)
    return code if code.isidentifier() else None


def _codes(value, levels: tuple, factor) -> np.ndarray:
    """Level codes ``0..L-1`` of categorical values, as :func:`patsy.categorical_to_int`."""
    box_levels = getattr(value, "levels", None)
    if is_categorical_box(value):
        if box_levels is not None and tuple(box_levels) != levels:
            return _patsy_codes(value, levels, factor)
        value = value.data
    if isinstance(value, pd.Series) and isinstance(value.dtype, pd.CategoricalDtype):
        if tuple(value.cat.categories) != levels:
            return _patsy_codes(value, levels, factor)
        return _complete(value.cat.codes.to_numpy().astype(np.intp), factor)
    arr = value.to_numpy() if isinstance(value, pd.Series) else np.asarray(value)
    if arr.ndim != 1 or not _indexable(levels, arr):
        return _patsy_codes(value, levels, factor)
    codes = pd.Index(list(levels), dtype=object).get_indexer(arr.astype(object, copy=False))
    if (codes < 0).any():  # not a level: patsy's own message
        return _patsy_codes(value, levels, factor)
    return codes


def _indexable(levels: tuple, arr: np.ndarray) -> bool:
    """Whether a hash-index lookup codes ``arr`` as patsy's dict lookup does: all-string
    levels and values, or all-numeric (not boolean) levels and values."""
    if all(isinstance(v, str) for v in levels):
        return arr.dtype.kind in "OUS" and (
            arr.dtype.kind != "O" or pd.api.types.infer_dtype(arr, skipna=False) == "string"
        )
    number = (int, float, np.integer, np.floating)
    numeric = all(isinstance(v, number) and not isinstance(v, (bool, np.bool_)) for v in levels)
    return numeric and arr.dtype.kind in "iuf"


def _patsy_codes(value, levels, factor) -> np.ndarray:
    from patsy.categorical import categorical_to_int

    try:
        codes = categorical_to_int(value, levels, no_na_action(), origin=factor)
    except patsy.PatsyError as exc:
        raise DataError(str(exc).splitlines()[0].strip()) from None
    return _complete(np.asarray(codes, dtype=np.intp), factor)


def _complete(codes: np.ndarray, factor) -> np.ndarray:
    """``codes``, unless one is missing (-1): patsy refuses such a design, and so do we."""
    if (codes < 0).any():
        raise DataError(
            f"{factor.name()}: {int((codes < 0).sum())} missing value(s); a design matrix "
            "cannot contain missing categorical values"
        )
    return codes
