"""Design blocks of a Dask DataFrame, built partition by partition from a fixed patsy design.

The design state (levels of categorical factors, stateful transforms such as ``center``) comes
from a pass over the whole data made beforehand; each partition is then built with
:func:`patsy.build_design_matrices` on that state, so a partition that lacks a level gets the
same columns, coded the same way, as every other.  The blocks are persisted once: patsy runs
once per row however many times the fit reads them.

This module imports Dask; nothing in the package imports it unless the user hands over Dask
collections.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import dask
import dask.array as da
import numpy as np
import pandas as pd
import patsy

from ..engine.dask import DaskBackend
from ..exceptions import DataError
from . import design_state  # noqa: F401  (registers how a Design pickles: patsy refuses)
from .design import Design, numpy_columns
from .fastbuild import DesignBuilder

__all__ = ["DaskDesign", "design_from_frame"]


@dataclass(frozen=True)
class DaskDesign:
    """The row arrays of a fit as Dask arrays with one block per source partition.

    Attributes
    ----------
    X : dask.array.Array, shape (n, p)
    y : dask.array.Array of int64, shape (n,)
        Equation codes (``-1`` for the reference outcome).
    w : dask.array.Array, shape (n,)
        Likelihood weights (frequency times sampling weight).
    sampling : dask.array.Array or None
        Sampling weights alone.
    names : tuple of str
        The design's column names.
    """

    X: da.Array
    y: da.Array
    w: da.Array
    sampling: da.Array | None
    names: tuple

    def backend(self, J: int, frame=None, client=None) -> DaskBackend:
        """A :class:`~multilogit.engine.dask.DaskBackend` on these blocks (already persisted
        when built so)."""
        return DaskBackend(
            self.X,
            self.y,
            self.w,
            J,
            sampling=self.sampling,
            frame=frame,
            client=client,
            persist=False,
        )


def _fast_design(design, part):
    """The partition's design by :class:`DesignBuilder`, or None if it has missing values."""
    try:
        X = DesignBuilder(design.design_info, design.formula)(part)
    except DataError:
        return None
    return None if np.isnan(X).any() else X


def _build_partition(part, design, outcome, labels, eq_codes, freq_weights, weights):
    """``(X, y, w, sampling)`` of one partition."""
    design_info = design.design_info
    p = len(design_info.column_names)
    part = numpy_columns(part, part.columns)  # nullable dtypes, which patsy cannot read
    X = np.zeros((0, p)) if len(part) == 0 else _fast_design(design, part)
    if X is None:  # missing values: patsy's own build, for its message
        try:
            (X,) = patsy.build_design_matrices([design_info], part, NA_action="raise")
        except patsy.PatsyError as exc:
            raise DataError(str(exc).splitlines()[0].strip()) from None
    X = np.ascontiguousarray(X, dtype=np.float64)
    values = part[outcome]
    pos = pd.Index(labels).get_indexer(np.asarray(values, dtype=object))
    if np.any(pos < 0):
        unknown = pd.unique(np.asarray(values, dtype=object)[pos < 0])
        raise DataError(
            f"outcome {outcome!r}: value(s) {', '.join(map(repr, unknown[:5]))} are not "
            "outcome levels of the fit"
        )
    y = eq_codes[pos]
    f = np.ones(len(part)) if freq_weights is None else part[freq_weights].to_numpy(np.float64)
    s = None if weights is None else part[weights].to_numpy(np.float64)
    return X, y, f if s is None else f * s, s


def _item(t, k):
    return t[k]


def _rows(t):
    # A built partition (X, y, w, s) or a source partition.
    return len(t[1]) if isinstance(t, tuple) else len(t)


def design_from_frame(
    frame,
    design_info: patsy.DesignInfo | Design,
    outcome: str,
    coding: Mapping,
    *,
    freq_weights: str | None = None,
    weights: str | None = None,
    client=None,
    persist: bool = True,
) -> DaskDesign:
    """Build the design, outcome codes and weights of every partition of ``frame``.

    Parameters
    ----------
    frame : dask.dataframe.DataFrame
        The source rows; the blocks follow its partitions.
    design_info : patsy.DesignInfo or Design
        The design state fixed on the whole data (levels, transforms); it is shipped to the
        workers as a :class:`~multilogit.data.design.Design` pickles, by value.
    outcome : str
        The outcome column.
    coding : mapping
        Outcome label -> equation code (``-1`` for the reference).
    freq_weights, weights : str, optional
        Columns of frequency and sampling weights.
    client : distributed.Client, optional
        Where to persist; ``None``: Dask's current scheduler.
    persist : bool
        Build the blocks now and keep them in the cluster's memory (otherwise every
        evaluation builds them again).

    Returns
    -------
    DaskDesign

    Raises
    ------
    DataError
        A missing value, a level or an outcome label the fit does not know (when the blocks
        are built).
    """
    if isinstance(design_info, Design):
        design, design_info = design_info, design_info.design_info
    else:
        design = Design(tuple(design_info.column_names), None, design_info)
    labels = list(coding)
    eq_codes = np.array([coding[lv] for lv in labels], dtype=np.int64)
    p = len(design_info.column_names)
    build = dask.delayed(_build_partition)
    parts = [
        build(d, design, outcome, labels, eq_codes, freq_weights, weights)
        for d in frame.to_delayed()
    ]
    item = dask.delayed(_item)

    def column(k, shape, dtype):
        blocks = [
            da.from_delayed(item(t, k), shape=shape(int(m)), dtype=dtype)
            for t, m in zip(parts, counts, strict=True)
        ]
        return da.concatenate(blocks, axis=0)

    if persist:  # each partition is built once, here; the blocks below are views of these
        parts = list(client.persist(parts)) if client is not None else list(dask.persist(*parts))
        sources = parts
    else:  # only the lengths: counted on the source rows, without building the design
        sources = frame.to_delayed()
    rows = dask.delayed(_rows)
    counts = [rows(t) for t in sources]
    counts = client.compute(counts, sync=True) if client is not None else dask.compute(counts)[0]
    arrays = [
        column(0, lambda m: (m, p), np.float64),
        column(1, lambda m: (m,), np.int64),
        column(2, lambda m: (m,), np.float64),
    ]
    if weights is not None:
        arrays.append(column(3, lambda m: (m,), np.float64))
    if persist:
        arrays = list(client.persist(arrays) if client is not None else dask.persist(*arrays))
    sampling = arrays[3] if weights is not None else None
    return DaskDesign(*arrays[:3], sampling, tuple(design_info.column_names))
