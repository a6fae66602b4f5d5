"""The preliminary scan of streamed rows: what the whole data fix before a design is spilled.

A :class:`Scan` takes chunks one at a time (each through its
:class:`~multilogit.data.digest.Digest`) and finds the outcome levels, the cluster levels and the
formula's factor state (through :class:`~multilogit.data.factors.Factors`), counting rows,
missing, infinite and negative values on the way; :meth:`Scan.finish` checks the counts and
fixes the levels.  :mod:`multilogit.data.stream` runs it as a pass of its own (before the design
pass) or, when the design does not depend on the whole data, chunk by chunk beside the design
pass.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..exceptions import DataError
from .digest import Digest, DigestSpec, digest
from .factors import Factors

__all__ = ["Counts", "FirstPass", "Scan", "Unstable", "native", "sort_levels"]


def sort_levels(values) -> list:
    """``values`` sorted (by their text when they do not compare)."""
    try:
        return sorted(values)
    except TypeError:
        return sorted(values, key=str)


def native(v):
    """A NumPy scalar as the Python value it holds (levels compare and print as Python's)."""
    return v.item() if isinstance(v, np.generic) else v


class Unstable(Exception):
    """A categorical ``column`` changed its categories between chunks: its levels must be found
    as plain values over all chunks (the scan starts again with it plain)."""

    def __init__(self, column):
        super().__init__(column)
        self.column = column


class Counts:
    """Per-column counts of bad values over a pass, for one message naming them all."""

    def __init__(self):
        self.by_column: dict[str, int] = {}
        self.rows = 0

    def add(self, column: str, k: int) -> None:
        if k:
            self.by_column[column] = self.by_column.get(column, 0) + int(k)

    def text(self, order=()) -> str:
        """``'a' (3), 'b' (1)``: columns in ``order`` first (so messages do not depend on which
        chunk came first), then in the order found."""
        cols = [c for c in order if c in self.by_column]
        cols += [c for c in self.by_column if c not in cols]
        return ", ".join(f"{c!r} ({self.by_column[c]})" for c in cols)


@dataclass
class FirstPass:
    """What the scan found: the columns used, the outcome levels, the rows seen and dropped,
    each cluster column's sorted levels."""

    used: list
    levels: tuple = ()
    rows: int = 0
    dropped: int = 0
    group_levels: dict = field(default_factory=dict)


class Scan:
    """The preliminary pass over chunks of rows, one chunk per :meth:`add`.

    Parameters
    ----------
    factors : Factors
        Sees every chunk's kept rows (memorising transforms, finding factor types and levels).
    used_columns : callable
        ``used_columns(columns)``: the data columns the formula's right-hand side uses, given
        the first chunk's columns (raises naming a name that is no column).
    yname : str
    weight_cols, group_cols : list of str
    missing : {"raise", "drop"}
    """

    def __init__(self, factors: Factors, used_columns, yname, weight_cols, group_cols, missing):
        self.factors = factors
        self.used_columns = used_columns
        self.yname, self.weight_cols, self.group_cols = yname, weight_cols, group_cols
        self.missing = missing
        self.miss, self.infinite, self.negative = Counts(), Counts(), Counts()
        self.out: FirstPass | None = None
        self.values, self.cats, self.seen_codes = set(), None, set()
        self.groups = {g: set() for g in group_cols}
        self.categories: dict = {}
        self._whole = None

    def add(self, item) -> Digest:
        """Count one chunk (a DataFrame, or a :class:`Digest` made where the chunk is) and
        return its digest, whose frame holds its kept rows (all of them for a DataFrame)."""
        # Every chunk is counted through its Digest: made where the chunk is (its kept rows
        # reduced to what the levels depend on), or here (every kept row).
        if not isinstance(item, (Digest, pd.DataFrame)):
            raise DataError(f"the source must yield DataFrames; got {type(item).__name__}")
        df = item.frame if isinstance(item, Digest) else item
        yname = self.yname
        if self.out is None:
            needed = [yname, *self.weight_cols, *self.group_cols]
            absent = [c for c in needed if c not in df.columns]
            if absent:
                raise DataError(f"the data have no column(s) {', '.join(map(repr, absent))}")
            used = self.used_columns(list(df.columns))
            self.out = FirstPass(list(dict.fromkeys([*needed[:1], *used, *needed[1:]])))
            self._whole = DigestSpec(tuple(self.out.used), None, yname, tuple(self.weight_cols))
        out = self.out
        dg = item if isinstance(item, Digest) else digest(item, self._whole)
        if dg.rows == 0:
            return dg
        df = dg.frame
        for c in out.used:
            if isinstance(df[c].dtype, pd.CategoricalDtype):
                cur = tuple(df[c].cat.categories)
                if self.categories.setdefault(c, cur) != cur:
                    raise Unstable(c)
        for c, k in dg.missing.items():
            self.miss.add(c, k)
        self.miss.rows += dg.missing_rows
        out.rows += dg.rows
        out.dropped += dg.missing_rows
        if len(df) == 0:
            return dg
        y = df[yname]
        if isinstance(y.dtype, pd.CategoricalDtype):
            cur = tuple(native(c) for c in y.cat.categories)
            cats = self.cats
            self.cats = cur if cats is None else (cats if cats == cur else False)
            self.seen_codes.update(pd.unique(y.cat.codes).tolist())
            self.values.update(native(v) for v in pd.unique(y.astype(object)))
        else:
            if y.dtype.kind == "f":
                self.infinite.add(yname, dg.infinite[yname])
                if not np.all(y == np.round(y)):
                    raise DataError(
                        f"outcome {yname!r} is continuous (non-integer values); a multinomial "
                        "logit needs categorical labels"
                    )
            self.values.update(native(v) for v in pd.unique(y))
        for c in self.weight_cols:
            if not pd.api.types.is_numeric_dtype(df[c]) or pd.api.types.is_bool_dtype(df[c]):
                raise DataError(f"weights column {c!r} must be numeric; got {df[c].dtype}")
            self.infinite.add(c, dg.infinite[c])
            self.negative.add(c, dg.negative[c])
        for g in self.group_cols:
            self.groups[g].update(native(v) for v in pd.unique(df[g]))
        if self.factors_fed:
            self.factors.see(df)
        return dg

    @property
    def factors_fed(self) -> bool:
        """Whether the chunks seen so far reach the factors (not once a bad value is counted
        that makes :meth:`finish` raise)."""
        return not self.infinite.by_column and not (self.missing == "raise" and self.miss.rows)

    def finish(self) -> FirstPass:
        """Check the counts and fix the levels; raise naming what is wrong with the data."""
        out, miss = self.out, self.miss
        yname = self.yname
        if out is None or out.rows == 0:
            raise DataError("the data have no rows")
        if self.missing == "raise" and miss.rows:
            raise DataError(
                f"{miss.rows} of {out.rows} rows have missing values in column(s) "
                f"{miss.text(out.used)}; pass missing='drop' to drop them"
            )
        if self.infinite.by_column:
            raise DataError(f"infinite values in column(s) {self.infinite.text(out.used)}")
        if self.negative.by_column:
            raise DataError(f"negative weights in column(s) {self.negative.text()}")
        if out.rows == out.dropped:
            raise DataError(
                f"no rows left to fit after dropping {out.dropped} with missing values"
            )
        if self.cats:
            used = [c for i, c in enumerate(self.cats) if i in self.seen_codes]
            if len(used) < len(self.cats):
                unused = [c for c in self.cats if c not in used]
                warnings.warn(
                    f"outcome {yname!r}: level(s) {', '.join(map(repr, unused))} have no rows "
                    "and are dropped",
                    UserWarning,
                    stacklevel=4,
                )
            out.levels = tuple(used)
        else:
            out.levels = tuple(sort_levels(self.values))
        if len(out.levels) < 2:
            shown = f" (only {out.levels[0]!r})" if out.levels else ""
            raise DataError(
                f"outcome {yname!r} has {len(out.levels)} level(s){shown}; a multinomial logit "
                "needs at least two"
            )
        out.group_levels = {
            g: np.asarray(sort_levels(v), dtype=object) for g, v in self.groups.items()
        }
        return out
