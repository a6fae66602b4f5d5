"""Formula designs streamed from chunks of rows into a spill backend.

Data larger than memory arrive as a sequence of pandas chunks (a
:class:`~multilogit.data.parquet.ParquetSource`, or any callable returning an iterable of
DataFrames, called once per pass).  :func:`stream_design` reads them twice:

1. one preliminary pass (:class:`~multilogit.data.scan.Scan`) finds what the whole data fix:
   the outcome levels, each categorical factor's levels, the state of stateful transforms
   (``center``, ``standardize``: memorised chunk by chunk), the cluster levels, and counts
   missing, non-finite and negative values;
2. a second pass (:class:`~multilogit.data.spill_pass.SpillPass`) builds each chunk's design
   with that fixed state (patsy runs once per row) and appends it to a
   :class:`~multilogit.engine.spill.SpillWriter`.

A level absent from some chunks is coded as in memory, since levels come from the first pass.
The design equals patsy's in-memory design up to the rounding of the transforms' sums (exactly
when, as for integer data, the sums are exact).

When the design does not depend on the whole data (every factor numerical, no stateful
transform) and the outcome and cluster columns hold numbers or strings, the two passes are one:
each chunk is scanned and spilled at once, the outcome and cluster levels found on the way and
the spilled codes rewritten at the end if the order they were found in is not the sorted one.
The spill, the counts and the errors (in their order) are those of the two passes.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import patsy
import patsy.builtins
from patsy.eval import ast_names

from ..engine.progress import Progress
from ..engine.spill import SpillBackend
from ..exceptions import DataError
from . import guards
from .design import Design, Outcome, match_level, numpy_columns
from .digest import Digest, DigestSpec
from .factors import Factors
from .parquet import ParquetSource
from .scan import Scan, Unstable
from .source_rows import SourceRows, missing_rows
from .spill_pass import FixedCodes, FoundCodes, NotFound, SpillPass

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


def _reporting(
    chunks, total, unit="rows", labels=("multilogit: preliminary pass", "multilogit: design pass")
):
    """``chunks`` with a progress bar per pass over them (see :mod:`multilogit.engine.progress`):
    the preliminary pass first, then the design pass.  The bar counts rows, or with
    ``unit="partitions"`` chunks (a Dask DataFrame's partitions, whose lengths are not known
    before they are read)."""
    labels = iter(labels)

    def gen():
        bar = Progress(next(labels, "multilogit: pass"), total, unit)
        for df in chunks():
            bar.update(len(df) if unit == "rows" else 1)
            yield df
        bar.close()

    return gen


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
    s = _setup(formula, source, freq_weights, weights, groups, eval_env)
    spec = _digest_spec(source, s.desc, eval_env, s.yname, s.weight_cols, s.group_cols,
                        s.columns)  # fmt: skip
    digests = s.raw if spec is None else (lambda: source.digests(spec))
    chunks = _reporting(digests, s.total, s.unit)
    unstable: set = set()
    while True:  # again only when a categorical column changes its categories mid-stream
        factors = Factors(list(s.desc.rhs_termlist), eval_env)
        try:
            first = _prepass(_plain(chunks, unstable), _scan(s, factors, missing))
            break
        except Unstable as exc:
            unstable.add(exc.column)
    chunks = _plain(chunks, unstable)
    outcome = Outcome(s.yname, first.levels, match_level(ref, first.levels, s.yname))
    info = factors.design_info()
    design = Design(tuple(info.column_names), formula, info, eval_env)
    return DesignState(outcome, design, tuple(first.used), first.rows, first.dropped,
                       dict(first.group_levels), chunks, first,
                       _plain(s.raw, unstable))  # fmt: skip


@dataclass(frozen=True)
class _Setup:
    formula: str
    eval_env: object
    desc: object
    yname: str
    weight_cols: list
    group_cols: list
    columns: list | None
    raw: Callable
    total: int | None
    unit: str


def _setup(formula, source, freq_weights, weights, groups, eval_env) -> _Setup:
    """The formula parsed, the columns it needs (checked against the source's, when known)
    and the source as a callable returning chunks of them."""
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
    return _Setup(
        formula, eval_env, desc, yname, weight_cols, group_cols, columns, raw, total, unit
    )


def _scan(s: _Setup, factors: Factors, missing: str) -> Scan:
    def used(columns):
        return _used_columns(s.formula, s.desc, columns, s.eval_env)

    return Scan(factors, used, s.yname, s.weight_cols, s.group_cols, missing)


def _prepass(chunks, scan: Scan):
    for item in chunks():
        scan.add(item)
    return scan.finish()


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
    if missing not in ("raise", "drop"):
        raise ValueError(f"missing must be 'raise' or 'drop'; got {missing!r}")
    if not isinstance(eval_env, patsy.EvalEnvironment):
        eval_env = guards.with_numpy(patsy.EvalEnvironment.capture(eval_env + 1))
    # Taken before the first pass: the rows read again later must be the rows fitted.
    fingerprint = getattr(source, "fingerprint", None)
    stamp = fingerprint() if fingerprint is not None else None
    desc = "the Parquet data" if isinstance(source, ParquetSource) else "the source"
    spill = dict(fw=freq_weights, sw=weights, missing=missing, directory=directory,
                 chunk_rows=chunk_rows, threads=threads)  # fmt: skip
    if not hasattr(source, "digests"):  # chunks read here: the design may need one pass only
        s = _setup(formula, source, freq_weights, weights, groups, eval_env)
        factors = Factors(list(s.desc.rhs_termlist), eval_env)
        if not factors.passes:
            try:
                return _one_pass(s, factors, ref, missing, spill, fingerprint, stamp, desc)
            except _TwoPasses:
                pass
    state = design_state(formula, source, ref, missing, freq_weights, weights, groups, eval_env)

    def frames(n, nan_positions):
        return SourceRows(state.source, state.used, n, state.rows, nan_positions, fingerprint,
                          stamp, desc)  # fmt: skip

    first, outcome = state.first, state.outcome
    sp = SpillPass(state.design, first.used, outcome.name, freq_weights, weights,
                   _names(groups), FixedCodes(outcome.levels, outcome),
                   {g: FixedCodes(v) for g, v in first.group_levels.items()},
                   directory)  # fmt: skip
    try:
        offset = 0
        for df in state.chunks():
            if len(df):
                sp.add(df, offset)
                offset += len(df)
        dropped = sp.check(missing, first.dropped)
    except BaseException:
        sp.abort()
        raise
    return _finish(sp, state.design, outcome, sp.y_codes.counts, first, dropped, spill, frames)


class _TwoPasses(Exception):
    """The data turned out to need a preliminary pass of their own."""


def _one_pass(s: _Setup, factors, ref, missing, spill, fingerprint, stamp, desc):
    """The preliminary scan and the design pass in one pass over the source, for designs that
    do not depend on the whole data: every factor numerical, no stateful transform, and the
    outcome and cluster columns numbers or strings (not categoricals), whose levels are found
    on the way (:class:`~multilogit.data.spill_pass.FoundCodes`).

    Errors are those of the two passes, in their order: the scan's first (a build error is
    held while the scan reads on), then the design's.

    Raises
    ------
    _TwoPasses
        Data the single pass cannot code as the two passes would (categorical columns, values
        neither numbers nor strings): nothing was kept, the caller makes the two passes.
    """
    scan = _scan(s, factors, missing)
    y_codes = FoundCodes(lambda levels: match_level(ref, levels, s.yname))
    sp, failed, offset = None, None, 0
    raw = s.raw
    chunks = _reporting(raw, s.total, s.unit, ["multilogit: preliminary and design pass"])
    try:
        for item in chunks():
            try:
                dg = scan.add(item)
            except Unstable:
                raise _TwoPasses from None
            start, offset = offset, offset + dg.rows
            if dg.rows == 0 or len(dg.frame) == 0 or failed is not None:
                continue
            if sp is None:
                if not scan.factors_fed:  # the scan raises at its end: nothing to build
                    continue
                if factors.sniffers or any(
                    isinstance(dg.frame[c].dtype, pd.CategoricalDtype) for c in scan.out.used
                ):
                    raise _TwoPasses
                info = factors.design_info()
                design = Design(tuple(info.column_names), s.formula, info, s.eval_env)
                sp = SpillPass(design, scan.out.used, s.yname, spill["fw"], spill["sw"],
                               s.group_cols, y_codes, {g: FoundCodes() for g in s.group_cols},
                               spill["directory"])  # fmt: skip
            na = None
            if dg.missing_rows:
                na = lambda df=item, used=scan.out.used: missing_rows(df, used)  # noqa: E731
            try:
                sp.add_kept(dg.frame, start, na)
            except NotFound:
                raise _TwoPasses from None
            except DataError as exc:
                failed = exc  # raised after the scan's own errors, as two passes would
        first = scan.finish()
        outcome = Outcome(s.yname, first.levels, match_level(ref, first.levels, s.yname))
        if failed is not None:
            raise failed
        if sp is None:
            raise _TwoPasses
        dropped = sp.check(missing, first.dropped)
        try:
            table = y_codes.lookup(outcome.levels, outcome)
            counts = y_codes.final_counts(outcome.levels)
            tables = {g: sp.group_codes[g].lookup(v) for g, v in first.group_levels.items()}
        except NotFound:
            raise _TwoPasses from None
        if table is not None:
            sp.writer.recode(None, table, shift=1)
        for g, t in tables.items():
            if t is not None:
                sp.writer.recode(g, t)
    except BaseException:
        if sp is not None:
            sp.abort()
        raise

    def frames(n, nan_positions):
        return SourceRows(raw, first.used, n, first.rows, nan_positions, fingerprint, stamp,
                          desc)  # fmt: skip

    return _finish(sp, sp.design, outcome, counts, first, dropped, spill, frames)


def _finish(sp: SpillPass, design, outcome, counts, first, dropped, spill, frames):
    backend = sp.writer.finish(outcome.J, chunk_rows=spill["chunk_rows"],
                               threads=spill["threads"],
                               frames=frames(sp.writer.n, sp.positions()))  # fmt: skip
    backend.set_column_range(sp.lo, sp.hi)
    return StreamedDesign(
        backend,
        outcome,
        design,
        sp.nobs,
        dropped,
        counts,
        {g: len(v) for g, v in first.group_levels.items()},
        first.group_levels,
        tuple(first.used),
        sp.stats,
    )


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
