"""Data larger than pandas: a Parquet source or a Dask DataFrame as the rows of a model.

A Parquet source (:func:`multilogit.parquet`) is streamed in record batches: one preliminary
pass fixes the outcome levels and the formula's design state, a second builds each batch's
design once and writes it to a local spill that every later pass reads chunk by chunk
(:mod:`multilogit.data.stream`, :mod:`multilogit.engine.spill`).  A Dask DataFrame gets the
same preliminary pass, one partition at a time, and its design blocks are then built and kept
in the cluster's memory, partition by partition (:mod:`multilogit.data.dask_source`,
:mod:`multilogit.engine.dask`).  Either way the model holds no row of the data: everything
goes through the backend.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from ..exceptions import DataError
from ..lazy import lazy_module
from . import guards
from .design import Design, Outcome
from .parquet import ParquetSource

patsy = lazy_module("patsy")  # imported at the first formula: array models never need it

__all__ = ["LargeRows", "array_rows", "formula_rows", "is_dask_collection", "is_large"]


@dataclass(frozen=True)
class LargeRows:
    """The rows of a model held by a backend, and what the model knows of them.

    Attributes
    ----------
    backend
        A :class:`~multilogit.engine.backend.Backend` (spill or Dask).
    outcome : Outcome
    design : Design
        Fixed by the preliminary pass; ``design.build(new_data)`` serves prediction.
    nobs : float
        Rows kept, counted with their frequency weights.
    n_dropped : int
        Rows dropped for missing values.
    sampling : bool
        Whether there are sampling weights.
    description : str
        Where the rows are, for messages.
    frame : dask.dataframe.DataFrame or None
        The source rows, partitioned as the backend's (Dask), for marginal effects and
        predictions on the estimation sample.
    groups : dict of str to int
        Cluster columns coded in the streaming pass: their number of levels.
    columns : tuple of str
        The data columns of the source rows the backend's chunks carry (a streamed fit reads
        them again from its source; see :mod:`multilogit.data.source_rows`).
    column_stats : dict of str to tuple
        Numeric source columns' ``(all integers, minimum, maximum)`` over the rows, where the
        streaming pass found them (empty otherwise).
    """

    backend: object
    outcome: Outcome
    design: Design
    nobs: float
    n_dropped: int
    sampling: bool
    description: str
    frame: object = None
    groups: dict = field(default_factory=dict)
    columns: tuple = ()
    column_stats: dict = field(default_factory=dict, repr=False)

    def source_frame(self):
        """The source rows (Dask); a streamed fit keeps none (its backend reads them again,
        chunk by chunk, for marginal effects)."""
        if self.frame is None:
            raise DataError(
                f"the rows are {self.description}: this needs the source rows as one frame, "
                "which a streamed Parquet fit does not keep (marginal effects averaged over the "
                "rows, at='overall' or at={...}, read them again from the files)"
            )
        return self.frame

    @property
    def source_columns(self) -> list[str]:
        """The data columns of the source rows."""
        return list(self.frame.columns) if self.frame is not None else list(self.columns)

    def recoded(self, outcome: Outcome) -> LargeRows:
        """The same rows with ``outcome`` (the same levels, another reference) coded: the
        backend maps each row's equation code as it reads it."""
        old = self.outcome
        K = len(old.levels)
        y_map = np.empty(K, dtype=np.int64)
        y_map[old.eq_codes(np.arange(K))] = outcome.eq_codes(np.arange(K))
        return replace(self, backend=self._view(None, y_map, outcome.J), outcome=outcome)

    def view(self, columns, y_map, outcome: Outcome, design: Design) -> LargeRows:
        """The same rows with design columns ``columns`` and the outcome recoded by ``y_map``
        (new equation code of each old one, the old reference's last; ``-2`` leaves those rows
        out): what refits of likelihood-ratio tests fit."""
        backend = self._view(np.asarray(columns), y_map, outcome.J)
        nobs = self.nobs
        if np.any(np.asarray(y_map) < -1):
            if self.sampling:
                raise DataError(
                    "leaving outcomes out of a fit with sampling weights is not supported"
                )
            nobs = float(np.sum(backend.reduce(lambda c: c.weights.sum(), frames=False)))
        return replace(self, backend=backend, outcome=outcome, design=design, nobs=nobs)

    def _view(self, columns, y_map, J):
        if self.frame is not None or hasattr(self.backend, "npartitions"):
            from ..engine.dask import DaskBackend

            be = self.backend
            X = be.X if columns is None else be.X[:, columns]
            y, w = be.y, be.w
            if y_map is not None:
                y_new = be.y.map_blocks(lambda b: y_map[b], dtype=np.int64)
                w = _dask_where(y_new < -1, 0.0, be.w)
                y = _dask_where(y_new < -1, -1, y_new)
            return DaskBackend(X, y, w, J, sampling=be.sampling, frame=be.frame, persist=False)
        from ..engine.view import ViewBackend

        return ViewBackend(self.backend, columns, y_map, J)

    def group_codes(self, groups):
        """Row-aligned cluster codes in the backend's own form, and their number."""
        if isinstance(groups, str) and groups in self.groups:
            return groups, self.groups[groups]  # a column of the spill
        if self.frame is not None and isinstance(groups, str):
            return _dask_group_codes(self.frame, groups)
        if is_dask_collection(groups) and hasattr(self.backend, "npartitions"):
            return _dask_array_codes(groups)
        known = ", ".join(map(repr, self.groups)) or "none"
        raise DataError(
            f"cluster groups {groups!r}: with rows {self.description}, give the cluster "
            f"column's name when creating the model (groups=...); coded columns: {known}"
        )


def is_dask_collection(obj) -> bool:
    """Whether ``obj`` is a Dask collection (without importing Dask)."""
    mod = type(obj).__module__ or ""
    return mod.split(".")[0] in ("dask", "dask_expr") and hasattr(obj, "__dask_graph__")


def is_large(data) -> bool:
    """Whether ``data`` is a Parquet source or a Dask DataFrame."""
    return isinstance(data, ParquetSource) or is_dask_collection(data)


def formula_rows(
    formula: str,
    data,
    ref=None,
    missing: str = "raise",
    eval_env=0,
    freq_weights=None,
    weights=None,
    groups=None,
) -> LargeRows:
    """The rows of a formula model on a Parquet source or a Dask DataFrame."""
    from .stream import design_state, stream_design

    for what, value in (("freq_weights", freq_weights), ("weights", weights)):
        if value is not None and not isinstance(value, str):
            raise DataError(
                f"{what}: with data larger than memory, give the name of a column of the data"
            )
    if not isinstance(eval_env, patsy.EvalEnvironment):
        eval_env = guards.with_numpy(patsy.EvalEnvironment.capture(eval_env + 1))
    if isinstance(data, ParquetSource):
        sd = stream_design(
            formula,
            data,
            ref=ref,
            missing=missing,
            freq_weights=freq_weights,
            weights=weights,
            groups=groups,
            eval_env=eval_env,
        )
        return LargeRows(
            sd.backend,
            sd.outcome,
            sd.design,
            sd.nobs,
            sd.n_dropped,
            weights is not None,
            "streamed from Parquet",
            groups=dict(sd.groups),
            columns=sd.columns,
            column_stats=dict(sd.column_stats),
        )
    frame = data
    partitions = _Partitions(frame)
    state = design_state(
        formula, partitions, ref, missing, freq_weights, weights, groups, eval_env
    )
    if state.dropped:
        frame = frame.dropna(subset=list(state.used))
    return _dask_rows(frame, state, freq_weights, weights)


class _Partitions:
    """A Dask DataFrame as chunks for the preliminary pass: digested on the workers
    (:mod:`multilogit.data.digest`), a few partitions at a time, or brought whole to this
    process one at a time; ``npartitions`` lets its progress bar count them."""

    # Partitions digested at once: both workers busy, few digests held here.
    WINDOW = 4

    def __init__(self, frame):
        self.frame = frame
        self.npartitions = frame.npartitions
        self.column_names = [c for c in frame.columns]

    def __call__(self):
        return (self.frame.get_partition(k).compute() for k in range(self.npartitions))

    def head(self, rows: int = 256) -> pd.DataFrame:
        """The first rows (of the first partition), to tell the factors' types."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # a first partition of fewer rows
            return self.frame.head(rows, npartitions=1)

    def digests(self, spec):
        """Each partition's :class:`~multilogit.data.digest.Digest`, in partition order."""
        import dask

        from .digest import digest

        tasks = [dask.delayed(digest)(part, spec) for part in self.frame.to_delayed()]
        for start in range(0, len(tasks), self.WINDOW):
            yield from dask.compute(*tasks[start : start + self.WINDOW])


def _dask_rows(frame, state, freq_weights, weights) -> LargeRows:
    from .dask_source import design_from_frame

    outcome = state.outcome
    coding = dict(
        zip(outcome.levels, outcome.eq_codes(np.arange(len(outcome.levels))), strict=True)
    )
    built = design_from_frame(
        frame,
        state.design,
        outcome.name,
        coding,
        freq_weights=freq_weights,
        weights=weights,
    )
    backend = built.backend(outcome.J, frame=frame)
    nobs = _dask_nobs(built)
    return LargeRows(
        backend,
        outcome,
        state.design,
        nobs,
        state.dropped,
        weights is not None,
        f"in {frame.npartitions} Dask partition(s)",
        frame=frame,
    )


def _dask_nobs(built) -> float:
    import dask

    if built.sampling is None:
        return float(dask.compute(built.w.sum())[0])
    pos = built.sampling > 0
    return float(dask.compute((built.w[pos] / built.sampling[pos]).sum())[0])


def _dask_blocks(obj, dtype=None):
    """A Dask Series or DataFrame as a Dask array, one block per partition of its graph.

    ``to_dask_array(lengths=True)`` can count the partitions of a column projected from
    ``read_parquet`` (which Dask fuses) differently from the graph it builds, and then fails;
    here the lengths and the blocks come from the same delayed partitions.
    """
    import dask
    import dask.array as da

    parts = obj.to_delayed()
    lengths = dask.compute(*[dask.delayed(len)(p) for p in parts])
    if dtype is None:
        dtypes = [obj.dtype] if obj.ndim == 1 else list(obj.dtypes)
        dtype = (
            np.result_type(*[getattr(t, "numpy_dtype", t) for t in dtypes])
            if all(getattr(t, "kind", "O") in "biuf" for t in dtypes)
            else np.dtype(object)
        )
    width = () if obj.ndim == 1 else (len(obj.columns),)
    values = dask.delayed(_values_of)
    blocks = [
        da.from_delayed(values(p, dtype), shape=(int(m), *width), dtype=dtype)
        for p, m in zip(parts, lengths, strict=True)
    ]
    return da.concatenate(blocks) if blocks else da.zeros((0, *width), dtype=dtype)


def _values_of(part, dtype):
    return part.to_numpy(dtype=dtype)


def _dask_array_codes(groups, what: str = "groups"):
    """Global codes ``0..G-1`` (sorted ids) of a Dask array or Series of cluster ids, and
    their number: the distinct ids are found block by block and merged here (no shuffle on
    the cluster); ``what`` names the ids in messages."""
    import dask
    import dask.array as da

    arr = _dask_blocks(groups) if hasattr(groups, "to_dask_array") else groups
    arr = da.asarray(arr)
    distinct, n_missing = dask.compute(
        arr.map_blocks(lambda b: pd.unique(b[pd.notna(b)]), chunks=(np.nan,), dtype=arr.dtype),
        da.isnull(arr).sum(),
    )
    if int(n_missing):
        raise DataError(f"{what} holds {int(n_missing)} missing value(s)")
    levels = pd.Index(sorted(set(distinct.tolist())))
    codes = arr.map_blocks(lambda b: levels.get_indexer(b).astype(np.int64), dtype=np.int64)
    return codes, len(levels)


def _dask_group_codes(frame, column):
    """Global codes ``0..G-1`` (sorted levels) of a cluster column of a Dask DataFrame, as a
    Dask array (the backend lines them up with its own partitions)."""
    if column not in frame.columns:
        raise DataError(f"cluster groups {column!r} is not a column of the data")
    return _dask_array_codes(frame[column], f"cluster groups {column!r}")


def array_rows(endog, exog, ref=None, freq_weights=None, weights=None) -> LargeRows:
    """The rows of an array model on Dask collections: ``exog`` a 2-D Dask array or Dask
    DataFrame of numbers (used as given: add a constant column for an intercept), ``endog`` a
    1-D Dask array or Series of labels, weights 1-D Dask arrays or Series (or None).

    The outcome levels are found in one pass (sorted, as for arrays in memory); the blocks
    stay on the cluster.  Missing or infinite values are refused (drop them from the
    collections first).
    """
    import dask
    import dask.array as da

    from ..engine.dask import DaskBackend
    from .design import Outcome, match_level

    if hasattr(exog, "to_dask_array"):
        names = tuple(str(c) for c in exog.columns)
        exog = _dask_blocks(exog)
    else:
        exog = da.asarray(exog)
        if exog.ndim == 1:
            exog = exog[:, None]
        names = tuple(f"x{k + 1}" for k in range(exog.shape[1] if exog.ndim == 2 else 0))
    if exog.ndim != 2 or not names:
        raise DataError(f"exog must be a 2-D array with columns; got shape {exog.shape}")
    # A Dask array's ``name`` is its graph key, not a variable name: only a Series has one.
    series_name = getattr(endog, "name", None) if hasattr(endog, "to_dask_array") else None
    name = str(series_name) if series_name is not None else "y"
    if hasattr(endog, "to_dask_array"):
        endog = _dask_blocks(endog)
    endog = da.asarray(endog)
    if endog.ndim != 1:
        raise DataError(f"the outcome must be 1-D; got an array of shape {endog.shape}")
    X = exog.astype(np.float64)
    # One pass: distinct outcome labels per block, the design's finiteness, row counts.
    distinct = endog.map_blocks(
        lambda b: np.unique(b[pd.notna(b)]) if b.dtype == object else np.unique(b),
        chunks=(np.nan,),
        dtype=endog.dtype,
    )
    labels, finite, n_missing_y = dask.compute(
        distinct, da.isfinite(X).all(axis=1).sum(), da.isnull(endog).sum()
    )
    n = X.shape[0] if not np.isnan(X.shape[0]) else int(finite)
    if int(n_missing_y):
        raise DataError(f"the outcome holds {int(n_missing_y)} missing value(s)")
    if int(finite) != n:
        raise DataError(f"exog has {n - int(finite)} row(s) with missing or infinite values")
    levels = tuple(v.item() if isinstance(v, np.generic) else v for v in np.unique(labels))
    if len(levels) < 2:
        raise DataError(f"the outcome {name!r} has {len(levels)} level(s); it needs two or more")
    outcome = Outcome(name, levels, match_level(ref, levels, name))
    eq = outcome.eq_codes(np.arange(len(levels)))
    index = pd.Index(list(levels))
    y = endog.map_blocks(lambda b: eq[index.get_indexer(b)], dtype=np.int64)
    w = _weights_array(freq_weights, endog, "freq_weights")
    sw = _weights_array(weights, endog, "weights")
    lik = w if sw is None else w * sw
    backend = DaskBackend(X, y, lik, outcome.J, sampling=sw)
    nobs = float(dask.compute(w.sum() if sw is None else w[sw > 0].sum())[0])
    return LargeRows(
        backend,
        outcome,
        Design(names),
        nobs,
        0,
        sw is not None,
        f"in {X.numblocks[0]} Dask block(s)",
    )


def _weights_array(values, like, what):
    import dask.array as da

    if values is None:
        return da.ones_like(like, dtype=np.float64) if what == "freq_weights" else None
    if hasattr(values, "to_dask_array"):
        values = _dask_blocks(values)
    arr = da.asarray(values).astype(np.float64)
    if arr.shape != like.shape:
        raise DataError(f"{what} has shape {arr.shape}; the outcome has {like.shape}")
    return arr


def _dask_where(cond, a, b):
    """``dask.array.where``, imported only for Dask data."""
    import dask.array as da

    return da.where(cond, a, b)
