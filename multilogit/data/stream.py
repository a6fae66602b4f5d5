"""Formula designs streamed from chunks of rows into a spill backend.

Data larger than memory arrive as a sequence of pandas chunks (a
:class:`~multilogit.data.parquet.ParquetSource`, or any callable returning an iterable of
DataFrames, called once per pass).  :func:`stream_design` reads them twice:

1. one preliminary pass finds what the whole data fix: the outcome levels, each categorical
   factor's levels, the state of stateful transforms (``center``, ``standardize``: memorised
   chunk by chunk), the cluster levels, and counts missing, non-finite and negative values;
2. a second pass builds each chunk's design with that fixed state (patsy runs once per row)
   and appends it to a :class:`~multilogit.engine.spill.SpillWriter`.

A level absent from some chunks is coded as in memory, since levels come from the first pass.
The design equals patsy's in-memory design up to the rounding of the transforms' sums (exactly
when, as for integer data, the sums are exact).
"""

from __future__ import annotations

import builtins
import re
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import patsy
import patsy.builtins
from patsy.eval import ast_names

from ..engine import kernels
from ..engine.progress import Progress
from ..engine.spill import SpillBackend, SpillWriter
from ..exceptions import DataError
from . import guards
from .design import Design, Outcome, match_level, numpy_columns
from .digest import Digest, DigestSpec, digest
from .factors import Factors
from .fastbuild import DesignBuilder
from .parquet import ParquetSource
from .source_rows import (
    NO_VALUES,
    SourceRows,
    fold_summary,
    missing_rows,
)

__all__ = ["DesignState", "StreamedDesign", "design_state", "stream_design"]

_BUILTINS = {name: getattr(patsy.builtins, name) for name in patsy.builtins.__all__}


@dataclass(frozen=True)
class StreamedDesign:
    """What a model needs from data streamed into a spill backend.

    Attributes
    ----------
    backend : SpillBackend
        The rows kept: design, equation codes, likelihood weights :math:`f_i w_i`, sampling
        weights (with ``weights``) and one int64 code column per ``groups`` column.
    outcome : Outcome
    design : Design
        Names, formula, patsy design info and environment: ``design.build(new_data)`` builds
        designs for prediction as for an in-memory fit.
    nobs : float
        Rows kept, counted with their frequency weights (rows with zero sampling weight not
        counted).
    n_dropped : int
        Rows dropped for missing values (``missing="drop"``).
    outcome_counts : ndarray of int64, shape (K,)
        Rows kept per outcome level, in level order.
    groups : dict of str to int
        For each ``groups`` column, its number of levels; its codes ``0..G-1`` are the
        backend column of the same name (``backend.group_scores(beta, name, G)``).
    group_levels : dict of str to ndarray
        For each ``groups`` column, its levels (code ``g`` is ``group_levels[name][g]``).
    columns : tuple of str
        The data columns the formula, weights and groups use; the backend's
        ``frame_rows`` reads them again from the source (:mod:`multilogit.data.source_rows`).
    column_stats : dict of str to tuple
        For each numeric column of ``columns``: ``(all values integers, minimum, maximum)``
        over the rows kept, found while spilling (marginal effects need them to tell a
        variable's kind, and would otherwise read the source once more).
    """

    backend: SpillBackend
    outcome: Outcome
    design: Design
    nobs: float
    n_dropped: int
    outcome_counts: np.ndarray
    groups: dict = field(default_factory=dict)
    group_levels: dict = field(default_factory=dict, repr=False)
    columns: tuple = ()
    column_stats: dict = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class DesignState:
    """The result of the preliminary pass of :func:`design_state`.

    Attributes
    ----------
    outcome : Outcome
    design : Design
        Fixed for every chunk and for prediction.
    used : tuple of str
        The data columns the formula, weights and groups use (missing values are looked for
        in these).
    rows, dropped : int
        Rows seen, and rows with missing values in ``used`` (``missing="drop"``).
    group_levels : dict of str to ndarray
        Each ``groups`` column's sorted levels.
    chunks : callable
        The source of chunks the pass read, for later passes.
    first : object
        The preliminary pass's findings, for the design pass.
    source : callable
        The same chunks without progress bars, for passes other than the fit's own.
    """

    outcome: Outcome
    design: Design
    used: tuple
    rows: int
    dropped: int
    group_levels: dict
    chunks: Callable = field(repr=False)
    first: object = field(repr=False)
    source: Callable | None = field(default=None, repr=False)


def _chunks(source, columns) -> Callable[[], Iterable[pd.DataFrame]]:
    if isinstance(source, ParquetSource) or hasattr(source, "batches"):
        return lambda: source.batches(columns)
    if callable(source):
        return source
    raise DataError(
        "source must be a ParquetSource (multilogit.parquet(...)) or a callable returning an "
        f"iterable of DataFrames; got {type(source).__name__}"
    )


def _reporting(chunks, total, unit="rows"):
    """``chunks`` with a progress bar per pass over them (see :mod:`multilogit.engine.progress`):
    the preliminary pass first, then the design pass.  The bar counts rows, or with
    ``unit="partitions"`` chunks (a Dask DataFrame's partitions, whose lengths are not known
    before they are read)."""
    labels = iter(["multilogit: preliminary pass", "multilogit: design pass"])

    def gen():
        bar = Progress(next(labels, "multilogit: pass"), total, unit)
        for df in chunks():
            bar.update(len(df) if unit == "rows" else 1)
            yield df
        bar.close()

    return gen


def _sort_levels(values) -> list:
    try:
        return sorted(values)
    except TypeError:
        return sorted(values, key=str)


def _native(v):
    return v.item() if isinstance(v, np.generic) else v


def _names(*groups) -> list[str]:
    out = []
    for g in groups:
        if g is None:
            continue
        for c in [g] if isinstance(g, str) else list(g):
            if not isinstance(c, str):
                raise DataError(f"weights and groups must be column names; got {c!r}")
            out.append(c)
    return out


class _Counts:
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


def _parse(formula, eval_env):
    if not isinstance(formula, str) or "~" not in formula:
        raise DataError(f"formula must be a string 'outcome ~ terms'; got {formula!r}")
    try:
        desc = patsy.ModelDesc.from_formula(formula)
    except patsy.PatsyError as exc:
        first = str(exc).splitlines()[0].strip()
        raise DataError(f"cannot parse formula {formula!r}: {first}") from None
    lhs = desc.lhs_termlist
    if len(lhs) != 1 or len(lhs[0].factors) != 1:
        raise DataError(f"the left side of {formula!r} must be one outcome variable")
    code = lhs[0].factors[0].code
    m = re.fullmatch(r"Q\(\s*['\"](.+)['\"]\s*\)", code)
    return desc, (m.group(1) if m else code)


def _used_columns(formula, desc, available, eval_env) -> list[str]:
    """The data columns the right-hand side uses; names neither columns nor defined raise."""
    tokens = set(re.findall(r"[A-Za-z_][A-Za-z0-9_.]*", formula))
    tokens |= set(re.findall(r"Q\(\s*['\"](.+?)['\"]\s*\)", formula))
    namespaces = list(getattr(eval_env, "_namespaces", [])) + [_BUILTINS]
    unknown = []
    for t in desc.rhs_termlist:
        for f in t.factors:
            for nm in ast_names(f.code):
                if nm in available or nm in unknown or any(nm in ns for ns in namespaces):
                    continue
                if not hasattr(builtins, nm):
                    unknown.append(nm)
    if unknown:
        raise DataError(
            f"formula {formula!r} uses {', '.join(map(repr, unknown))}, which "
            + ("is not a column" if len(unknown) == 1 else "are not columns")
            + " of the data"
        )
    return [c for c in available if c in tokens]


def design_state(
    formula: str,
    source,
    ref=None,
    missing: str = "raise",
    freq_weights: str | None = None,
    weights: str | None = None,
    groups: str | Sequence[str] | None = None,
    eval_env=0,
) -> DesignState:
    """One preliminary pass over chunks of rows: the outcome levels, the patsy design state
    (categorical levels over all chunks, stateful transforms memorised chunk by chunk), row
    counts and cluster levels.  The state is then fixed for every chunk and for prediction.

    Parameters
    ----------
    formula : str
        ``outcome ~ terms``; the outcome is a column (or ``Q("name")``).
    source : ParquetSource or callable
        The rows: a :class:`~multilogit.data.parquet.ParquetSource` (only the columns needed
        are read) or a callable returning an iterable of DataFrames (called once per pass;
        every pass must yield the same rows in the same order).
    ref : optional
        Reference outcome (default: the first level).
    missing : {"raise", "drop"}
        Rows with a missing value in a column used (formula, weights, groups) or a NaN in the
        design raise, naming the columns and counts, or are dropped and counted.
    freq_weights, weights : str, optional
        Columns of frequency weights and sampling weights.
    groups : str or sequence of str, optional
        Cluster id columns, coded ``0..G-1`` over the whole data (sorted levels) and spilled
        as backend columns of the same names.
    eval_env : int or patsy.EvalEnvironment
        Where the formula's names are looked up (0: the caller's namespace).

    Returns
    -------
    DesignState

    Raises
    ------
    DataError
        A missing column, an outcome with fewer than two levels, missing values with
        ``missing="raise"``, infinite values, negative or non-numeric weights, a transform that
        cannot be memorised chunk by chunk or whose value depends on other rows, no rows left.
    """
    if missing not in ("raise", "drop"):
        raise ValueError(f"missing must be 'raise' or 'drop'; got {missing!r}")
    if not isinstance(eval_env, patsy.EvalEnvironment):
        eval_env = guards.with_numpy(patsy.EvalEnvironment.capture(eval_env + 1))
    desc, yname = _parse(formula, eval_env)
    weight_cols = _names(freq_weights, weights)
    group_cols = _names(groups)
    known = getattr(source, "column_names", None)
    if known is not None:
        needed = [yname, *weight_cols, *group_cols]
        absent = [c for c in needed if c not in known]
        if absent:
            raise DataError(f"the data have no column(s) {', '.join(map(repr, absent))}")
        rhs_cols = _used_columns(formula, desc, known, eval_env)
        columns = list(dict.fromkeys([yname, *rhs_cols, *weight_cols, *group_cols]))
    else:
        columns = None
    if hasattr(source, "npartitions"):  # one chunk per partition: the bar counts them
        total, unit = source.npartitions, "partitions"
    else:
        total = source.count_rows() if hasattr(source, "count_rows") else None
        unit = "rows"
    raw = _chunks(source, columns)
    spec = _digest_spec(source, desc, eval_env, yname, weight_cols, group_cols, columns)
    chunks = _reporting(raw if spec is None else (lambda: source.digests(spec)), total, unit)
    unstable: set = set()
    while True:  # again only when a categorical column changes its categories mid-stream
        factors = Factors(list(desc.rhs_termlist), eval_env)
        try:
            first = _prepass(
                _plain(chunks, unstable), factors, formula, desc, eval_env, yname,
                weight_cols, group_cols, missing,
            )  # fmt: skip
            break
        except _Unstable as exc:
            unstable.add(exc.column)
    chunks = _plain(chunks, unstable)
    outcome = Outcome(yname, first.levels, match_level(ref, first.levels, yname))
    info = factors.design_info()
    design = Design(tuple(info.column_names), formula, info, eval_env)
    return DesignState(outcome, design, tuple(first.used), first.rows, first.dropped,
                       dict(first.group_levels), chunks, first, _plain(raw, unstable))  # fmt: skip


def _digest_spec(source, desc, eval_env, yname, weight_cols, group_cols, columns):
    """What a source that digests its chunks where they are (Dask partitions on the workers)
    must keep of them, or None to bring whole chunks (another source, or a stateful
    transform, which memorises every row)."""
    if not hasattr(source, "digests") or columns is None:
        return None
    try:
        probe = Factors(list(desc.rhs_termlist), eval_env)
        probe.see(numpy_columns(source.head(), columns))
    except Exception:  # the pass over whole chunks raises it, with its counts
        return None
    if probe.passes:
        return None
    # A factor's type depends on its column's dtype, not on which rows: the head tells.
    names = {nm for f in probe.sniffers for nm in ast_names(f.code)}
    distinct = [c for c in columns if c in names or c == yname or c in group_cols]
    return DigestSpec(tuple(columns), tuple(distinct), yname, tuple(weight_cols))


def stream_design(
    formula: str,
    source,
    ref=None,
    missing: str = "raise",
    freq_weights: str | None = None,
    weights: str | None = None,
    groups: str | Sequence[str] | None = None,
    eval_env=0,
    directory=None,
    chunk_rows: int | None = None,
    threads: int | None = None,
) -> StreamedDesign:
    """Stream a formula design from chunks of rows into a :class:`SpillBackend`: the
    preliminary pass of :func:`design_state`, then a second pass that builds each chunk's
    design with the fixed state and spills it (so patsy runs once per row).

    Parameters are those of :func:`design_state`, and

    directory : str or Path, optional
        Parent of the spill directory (default: the system's temporary directory).
    chunk_rows, threads : int, optional
        The backend's chunking (see :class:`~multilogit.engine.chunked.ChunkedBackend`).
    """
    if not isinstance(eval_env, patsy.EvalEnvironment):
        eval_env = guards.with_numpy(patsy.EvalEnvironment.capture(eval_env + 1))
    # Taken before the first pass: the rows read again later must be the rows fitted.
    fingerprint = getattr(source, "fingerprint", None)
    stamp = fingerprint() if fingerprint is not None else None
    state = design_state(formula, source, ref, missing, freq_weights, weights, groups, eval_env)

    def frames(n, nan_positions):
        desc = "the Parquet data" if isinstance(source, ParquetSource) else "the source"
        return SourceRows(state.source, state.used, n, state.rows, nan_positions, fingerprint,
                          stamp, desc)  # fmt: skip

    return _spill(state.chunks, state.first, state.outcome, state.design, freq_weights,
                  weights, _names(groups), missing, directory, chunk_rows, threads,
                  frames)  # fmt: skip


class _Unstable(Exception):
    def __init__(self, column):
        self.column = column


def _plain(chunks, columns: set):
    """Chunks with the categorical ``columns`` as plain values: their categories differ from
    chunk to chunk, so their levels are those found over all chunks, sorted."""
    if not columns:
        return chunks

    def plain(df):
        cols = [c for c in columns if c in df.columns]
        return df.astype({c: object for c in cols}) if cols else df

    def gen():
        for item in chunks():
            yield item.with_frame(plain(item.frame)) if isinstance(item, Digest) else plain(item)

    return gen


@dataclass
class _FirstPass:
    used: list
    levels: tuple = ()
    rows: int = 0
    dropped: int = 0
    group_levels: dict = field(default_factory=dict)


def _prepass(chunks, factors, formula, desc, eval_env, yname, weight_cols, group_cols, missing):
    miss, infinite, negative = _Counts(), _Counts(), _Counts()
    out = None
    values, cats, seen_codes = set(), None, set()
    groups = {g: set() for g in group_cols}
    categories: dict = {}
    for item in chunks():
        # Every chunk is counted through its Digest: made where the chunk is (its kept rows
        # reduced to what the levels depend on), or here (every kept row).
        if not isinstance(item, (Digest, pd.DataFrame)):
            raise DataError(f"the source must yield DataFrames; got {type(item).__name__}")
        df = item.frame if isinstance(item, Digest) else item
        if out is None:
            absent = [c for c in [yname, *weight_cols, *group_cols] if c not in df.columns]
            if absent:
                raise DataError(f"the data have no column(s) {', '.join(map(repr, absent))}")
            used = _used_columns(formula, desc, list(df.columns), eval_env)
            out = _FirstPass(list(dict.fromkeys([yname, *used, *weight_cols, *group_cols])))
            whole = DigestSpec(tuple(out.used), None, yname, tuple(weight_cols))
        dg = item if isinstance(item, Digest) else digest(item, whole)
        if dg.rows == 0:
            continue
        df = dg.frame
        for c in out.used:
            if isinstance(df[c].dtype, pd.CategoricalDtype):
                cur = tuple(df[c].cat.categories)
                if categories.setdefault(c, cur) != cur:
                    raise _Unstable(c)
        for c, k in dg.missing.items():
            miss.add(c, k)
        miss.rows += dg.missing_rows
        out.rows += dg.rows
        out.dropped += dg.missing_rows
        if len(df) == 0:
            continue
        y = df[yname]
        if isinstance(y.dtype, pd.CategoricalDtype):
            cur = tuple(_native(c) for c in y.cat.categories)
            cats = cur if cats is None else (cats if cats == cur else False)
            seen_codes.update(pd.unique(y.cat.codes).tolist())
            values.update(_native(v) for v in pd.unique(y.astype(object)))
        else:
            if y.dtype.kind == "f":
                infinite.add(yname, dg.infinite[yname])
                if not np.all(y == np.round(y)):
                    raise DataError(
                        f"outcome {yname!r} is continuous (non-integer values); a multinomial "
                        "logit needs categorical labels"
                    )
            values.update(_native(v) for v in pd.unique(y))
        for c in weight_cols:
            if not pd.api.types.is_numeric_dtype(df[c]) or pd.api.types.is_bool_dtype(df[c]):
                raise DataError(f"weights column {c!r} must be numeric; got {df[c].dtype}")
            infinite.add(c, dg.infinite[c])
            negative.add(c, dg.negative[c])
        for g in group_cols:
            groups[g].update(_native(v) for v in pd.unique(df[g]))
        if not infinite.by_column and not (missing == "raise" and miss.rows):
            factors.see(df)
    if out is None or out.rows == 0:
        raise DataError("the data have no rows")
    if missing == "raise" and miss.rows:
        raise DataError(
            f"{miss.rows} of {out.rows} rows have missing values in column(s) "
            f"{miss.text(out.used)}; pass missing='drop' to drop them"
        )
    if infinite.by_column:
        raise DataError(f"infinite values in column(s) {infinite.text(out.used)}")
    if negative.by_column:
        raise DataError(f"negative weights in column(s) {negative.text()}")
    if out.rows == out.dropped:
        raise DataError(f"no rows left to fit after dropping {out.dropped} with missing values")
    if cats:
        used = [c for i, c in enumerate(cats) if i in seen_codes]
        if len(used) < len(cats):
            unused = [c for c in cats if c not in used]
            warnings.warn(
                f"outcome {yname!r}: level(s) {', '.join(map(repr, unused))} have no rows and "
                "are dropped",
                UserWarning,
                stacklevel=3,
            )
        out.levels = tuple(used)
    else:
        out.levels = tuple(_sort_levels(values))
    if len(out.levels) < 2:
        shown = f" (only {out.levels[0]!r})" if out.levels else ""
        raise DataError(
            f"outcome {yname!r} has {len(out.levels)} level(s){shown}; a multinomial logit "
            "needs at least two"
        )
    out.group_levels = {g: np.asarray(_sort_levels(v), dtype=object) for g, v in groups.items()}
    return out


def _values(s: pd.Series) -> np.ndarray:
    return (
        s.astype(object).to_numpy() if isinstance(s.dtype, pd.CategoricalDtype) else s.to_numpy()
    )


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


def _spill(
    chunks, first, outcome, design, fw, sw, group_cols, missing, directory, rows, threads, frames
):
    p = len(design.names)
    writer = SpillWriter(p, directory, sampling=sw is not None, columns=group_cols)
    build = DesignBuilder(design.design_info, design.formula)
    index = pd.Index(list(outcome.levels))
    group_index = {g: pd.Index(list(v)) for g, v in first.group_levels.items()}
    counts = np.zeros(len(outcome.levels), np.int64)
    lo, hi = np.full(p, np.inf), np.full(p, -np.inf)
    nan_rows, inf_cols, dropped, checked = 0, _Counts(), first.dropped, False
    nobs = 0.0
    # Source positions of the rows dropped for a NaN in their design: what reading the source
    # again cannot find without building the design (rows missing values it finds itself).
    nan_positions, offset = [], 0
    stats: dict = {}
    try:
        for df in chunks():
            if len(df) == 0:
                continue
            start, offset = offset, offset + len(df)
            na = missing_rows(df, first.used)
            if na.any():
                df = df.loc[~na]
            if len(df) == 0:
                continue
            df = numpy_columns(df, first.used)
            X = build(df)
            if not checked and len(df) >= 2:
                _check_row_wise(design, build, df, X)
                checked = True
            bad = np.empty(len(X), np.bool_)
            clo, chi = kernels.scan_columns(X, bad)
            if bad.any():
                sub = X[bad]
                for k in np.flatnonzero(np.isinf(sub).any(axis=0)):
                    inf_cols.add(design.names[k], np.isinf(sub[:, k]).sum())
                nan_rows += int(bad.sum())
                nan_positions.append(start + np.flatnonzero(~na)[bad])
                keep = ~bad
                X, df = np.ascontiguousarray(X[keep]), df.loc[keep]
                if len(df) == 0:
                    continue
                # The ranges of the rows kept only.
                clo, chi = kernels.scan_columns(X, np.empty(len(X), np.bool_))
            np.minimum(lo, clo, out=lo)
            np.maximum(hi, chi, out=hi)
            level = index.get_indexer(_values(df[outcome.name]))
            counts += np.bincount(level, minlength=len(counts))
            f = np.ones(len(df)) if fw is None else df[fw].to_numpy(dtype=np.float64)
            s = None if sw is None else df[sw].to_numpy(dtype=np.float64)
            nobs += float(f.sum() if s is None else f[s > 0].sum())
            codes = {g: group_index[g].get_indexer(_values(df[g])) for g in group_cols}
            writer.append(X, outcome.eq_codes(level), f if s is None else f * s, s, **codes)
            _update_stats(stats, df, first.used)
        if inf_cols.by_column:
            raise DataError(f"infinite values in design column(s) {inf_cols.text()}")
        if nan_rows and missing == "raise":
            raise DataError(
                f"{nan_rows} row(s) have missing values in the design (from a transform); "
                "pass missing='drop' to drop them"
            )
        dropped += nan_rows
        if writer.n == 0:
            raise DataError(f"no rows left to fit after dropping {dropped} with missing values")
    except BaseException:
        writer.abort()
        raise
    nan_positions = np.concatenate(nan_positions) if nan_positions else np.empty(0, np.int64)
    backend = writer.finish(
        outcome.J, chunk_rows=rows, threads=threads, frames=frames(writer.n, nan_positions)
    )
    backend.set_column_range(lo, hi)
    return StreamedDesign(
        backend,
        outcome,
        design,
        nobs,
        dropped,
        counts,
        {g: len(v) for g, v in first.group_levels.items()},
        first.group_levels,
        tuple(first.used),
        stats,
    )


def _update_stats(stats: dict, df: pd.DataFrame, columns) -> None:
    """Fold the kept rows ``df`` into each numeric column's ``(integers, min, max)``."""
    for c in columns:
        col = df[c]
        if col.dtype.kind in "biuf":
            stats[c] = fold_summary(stats.get(c, NO_VALUES), col)
