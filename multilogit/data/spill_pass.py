"""The design pass of streamed rows: each chunk's design built once and spilled.

A :class:`SpillPass` takes chunks of rows (their rows with missing values dropped), builds
their design with a fixed patsy design (:class:`~multilogit.data.fastbuild.DesignBuilder`),
drops rows whose design has a NaN, and appends design, equation codes, weights and cluster codes
to a :class:`~multilogit.engine.spill.SpillWriter`, counting what the model needs (rows per
outcome level, weighted rows, column ranges, each numeric source column's summary).

The outcome and cluster columns are coded by a coder: :class:`FixedCodes` when their levels are
known before the pass, :class:`FoundCodes` when they are found during it (a single pass over the
source): values are then coded in the order their levels are first seen and the spilled codes
are rewritten once at the end, and only if that order differs from the sorted levels.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..engine import kernels
from ..engine.spill import SpillWriter
from ..exceptions import DataError
from .design import Design, Outcome, numpy_columns
from .fastbuild import DesignBuilder
from .scan import Counts, native, sort_levels
from .source_rows import NO_VALUES, fold_summary, missing_rows

__all__ = ["FixedCodes", "FoundCodes", "NotFound", "SpillPass", "column_values"]


def column_values(s: pd.Series) -> np.ndarray:
    """A column's values as a NumPy array (a categorical's as objects)."""
    return (
        s.astype(object).to_numpy() if isinstance(s.dtype, pd.CategoricalDtype) else s.to_numpy()
    )


class NotFound(Exception):
    """Values a :class:`FoundCodes` cannot code as the sorted levels would: the levels must be
    found in a pass of their own."""


class FixedCodes:
    """Codes ``0..L-1`` of values whose levels are known (``levels``), and ``-1`` for the
    reference level with ``outcome`` (the equation codes)."""

    def __init__(self, levels, outcome: Outcome | None = None):
        self.index = pd.Index(list(levels))
        self.outcome = outcome
        self.counts = np.zeros(len(levels), np.int64)

    def __call__(self, values: np.ndarray) -> np.ndarray:
        level = self.index.get_indexer(values)
        if self.outcome is None:
            return level
        self.counts += np.bincount(level, minlength=len(self.counts))
        return self.outcome.eq_codes(level)


def _plain_kind(values: np.ndarray) -> bool:
    """Values whose hash lookups code them as the sorted levels do: numbers or strings."""
    if values.dtype.kind in "iuf":
        return True
    return values.dtype.kind in "OU" and pd.api.types.infer_dtype(values, skipna=False) in (
        "string",
        "empty",
    )


class FoundCodes:
    """Codes of values whose levels are found while coding them.

    A level gets the next code when first seen (the new levels of a chunk in sorted order, so
    a first chunk holding every level codes them as the sorted levels do).  With ``ref`` (a
    callable giving the reference among the levels of the first chunk, or raising) the codes
    are equation codes: ``-1`` for that reference, one less for the levels coded after it.
    :meth:`lookup` then maps each code written to the code of the final levels.

    Raises
    ------
    NotFound
        Values other than numbers or strings (their equality is not a hash lookup's).
    """

    def __init__(self, ref=None):
        self.ref = ref
        self.r = None  # code of the provisional reference (outcome only)
        self.levels: list = []
        self.index = pd.Index([])
        self.counts = np.zeros(0, np.int64)

    def __call__(self, values: np.ndarray) -> np.ndarray:
        if not _plain_kind(values):
            raise NotFound
        code = self.index.get_indexer(values) if len(self.levels) else np.full(len(values), -1)
        new = code < 0
        if new.any():
            self.levels += sort_levels({native(v) for v in pd.unique(values[new])})
            self.index = pd.Index(self.levels)
            code = self.index.get_indexer(values)
            if (code < 0).any() or len(set(self.index)) != len(self.levels):
                raise NotFound
        if self.ref is None:
            return code
        if self.r is None:
            try:
                self.r = self.levels.index(self.ref(tuple(self.levels)))
            except (DataError, ValueError):
                self.r = 0  # the reference is not among the first levels: recoded at the end
        counts = np.bincount(code, minlength=len(self.levels))
        counts[: len(self.counts)] += self.counts
        self.counts = counts
        out = code.astype(np.int64)
        out[code == self.r] = -1
        out[code > self.r] -= 1
        return out

    def positions(self, levels) -> np.ndarray:
        """Each level found, as its position in the final ``levels``."""
        pos = pd.Index(list(levels)).get_indexer(pd.Index(self.levels, dtype=object))
        if len(self.levels) != len(levels) or (pos < 0).any() or len(set(pos)) != len(pos):
            raise NotFound
        return pos

    def lookup(self, levels, outcome: Outcome | None = None) -> np.ndarray | None:
        """For each code written (shifted by one for equation codes), its code with the final
        ``levels`` (and ``outcome``'s reference); None when they are the same."""
        pos = self.positions(levels)
        if outcome is None:
            return None if np.array_equal(pos, np.arange(len(pos))) else pos
        k = np.arange(len(pos))
        written = np.where(k == self.r, -1, np.where(k > self.r, k - 1, k))
        table = np.empty(len(pos), np.int64)
        table[written + 1] = outcome.eq_codes(pos)
        return None if np.array_equal(table, np.arange(-1, len(pos) - 1)) else table

    def final_counts(self, levels) -> np.ndarray:
        """Rows per final level."""
        out = np.zeros(len(levels), np.int64)
        out[self.positions(levels)] = self.counts
        return out


class SpillPass:
    """Build and spill the designs of chunks of rows.

    Parameters
    ----------
    design : Design
        The fixed design.
    used : list of str
        The data columns used (a row missing any is dropped).
    yname : str
    fw, sw : str or None
        Frequency and sampling weight columns.
    group_cols : list of str
    y_codes : FixedCodes or FoundCodes
        Codes the outcome (equation codes) and counts rows per level.
    group_codes : dict of str to FixedCodes or FoundCodes
    directory : str or Path, optional
        Parent of the spill directory.
    """

    def __init__(self, design: Design, used, yname, fw, sw, group_cols, y_codes, group_codes,
                 directory=None):  # fmt: skip
        p = len(design.names)
        self.design, self.used, self.yname = design, list(used), yname
        self.fw, self.sw, self.group_cols = fw, sw, list(group_cols)
        self.y_codes, self.group_codes = y_codes, group_codes
        self.writer = SpillWriter(p, directory, sampling=sw is not None, columns=group_cols)
        self.build = DesignBuilder(design.design_info, design.formula)
        self.lo, self.hi = np.full(p, np.inf), np.full(p, -np.inf)
        self.nan_rows, self.inf_cols, self.checked = 0, Counts(), False
        self.nobs = 0.0
        # Source positions of the rows dropped for a NaN in their design: what reading the
        # source again cannot find without building the design (rows missing values it finds
        # itself).
        self.nan_positions: list = []
        self.stats: dict = {}
        self.plain = _plain_columns(design)

    def add(self, df: pd.DataFrame, start: int) -> None:
        """Spill the chunk ``df`` of source rows ``start:start + len(df)``."""
        na = missing_rows(df, self.used)
        if na.any():
            df = df.loc[~na]
        if len(df) == 0:
            return
        self.add_kept(numpy_columns(df, self.used), start, lambda: na)

    def add_kept(self, df: pd.DataFrame, start: int, na=None) -> None:
        """Spill ``df``, the rows of a chunk of source rows ``start:...`` without missing values
        (as :func:`~multilogit.data.design.numpy_columns`); ``na()`` gives the chunk's rows
        dropped for them (``na=None``: none were)."""
        design = self.design
        X = self.build(df)
        if not self.checked and len(df) >= 2:
            _check_row_wise(design, self.build, df, X)
            self.checked = True
        bad = np.empty(len(X), np.bool_)
        clo, chi = kernels.scan_columns(X, bad)
        if bad.any():
            sub = X[bad]
            for k in np.flatnonzero(np.isinf(sub).any(axis=0)):
                self.inf_cols.add(design.names[k], np.isinf(sub[:, k]).sum())
            self.nan_rows += int(bad.sum())
            kept = np.arange(len(df)) if na is None else np.flatnonzero(~na())
            self.nan_positions.append(start + kept[bad])
            keep = ~bad
            X, df = np.ascontiguousarray(X[keep]), df.loc[keep]
            if len(df) == 0:
                return
            # The ranges of the rows kept only.
            clo, chi = kernels.scan_columns(X, np.empty(len(X), np.bool_))
        np.minimum(self.lo, clo, out=self.lo)
        np.maximum(self.hi, chi, out=self.hi)
        y = self.y_codes(column_values(df[self.yname]))
        fw, sw = self.fw, self.sw
        f = np.ones(len(df)) if fw is None else df[fw].to_numpy(dtype=np.float64)
        s = None if sw is None else df[sw].to_numpy(dtype=np.float64)
        self.nobs += float(f.sum() if s is None else f[s > 0].sum())
        codes = {g: self.group_codes[g](column_values(df[g])) for g in self.group_cols}
        self.writer.append(X, y, f if s is None else f * s, s, **codes)
        _update_stats(self.stats, df, self.used, self.plain, clo, chi)

    def check(self, missing: str, dropped: int) -> int:
        """Raise for what the designs hold (infinite values; NaN with ``missing="raise"``; no
        row left); return the rows dropped in all, ``dropped`` before this pass included."""
        if self.inf_cols.by_column:
            raise DataError(f"infinite values in design column(s) {self.inf_cols.text()}")
        if self.nan_rows and missing == "raise":
            raise DataError(
                f"{self.nan_rows} row(s) have missing values in the design (from a transform); "
                "pass missing='drop' to drop them"
            )
        dropped += self.nan_rows
        if self.writer.n == 0:
            raise DataError(f"no rows left to fit after dropping {dropped} with missing values")
        return dropped

    def positions(self) -> np.ndarray:
        """Source positions of the rows dropped for a NaN in their design."""
        pos = self.nan_positions
        return np.concatenate(pos) if pos else np.empty(0, np.int64)

    def abort(self) -> None:
        self.writer.abort()


def _check_row_wise(design, build, df, X) -> None:
    """A design column whose value depends on other rows of the chunk (``x - x.mean()``,
    ``pd.qcut(x, 4)``) would change with the chunking: refuse it."""
    h = len(df) // 2
    Xh = build(df.iloc[:h])
    same = (Xh == X[:h]) | (np.isnan(Xh) & np.isnan(X[:h]))
    bad = [design.names[k] for k in np.flatnonzero(~same.all(axis=0))]
    if bad:
        raise DataError(
            f"design column(s) {', '.join(map(repr, bad))} depend on other rows than their own "
            "(e.g. x - x.mean()): they cannot be computed chunk by chunk; use a stateful "
            "transform such as center() or standardize(), or precompute the column"
        )


def _plain_columns(design: Design) -> dict:
    """Data columns that are design columns as they are (a term ``x`` of a numeric column
    ``x``): name to design column.  Their range is the design column's, already scanned."""
    out = {}
    info = design.design_info
    for f, fi in info.factor_infos.items():
        code = getattr(f, "code", None)
        numeric = fi.type == "numerical" and fi.num_columns == 1
        if numeric and not fi.state.get("transforms") and code in design.names:
            out[code] = design.names.index(code)
    return out


def _update_stats(stats: dict, df: pd.DataFrame, columns, plain, lo, hi) -> None:
    """Fold the kept rows ``df`` into each numeric column's ``(integers, min, max)``; a column
    of ``plain`` whose values are no longer all integers takes the range ``lo``, ``hi`` of its
    design column (the same values, converted to float64, all finite)."""
    for c in columns:
        col = df[c]
        if col.dtype.kind in "biuf":
            before = stats.get(c, NO_VALUES)
            k = plain.get(c)
            if k is not None and not before[0] and col.dtype.kind == "f":
                stats[c] = (False, min(before[1], lo[k]), max(before[2], hi[k]))
            else:
                stats[c] = fold_summary(before, col)
