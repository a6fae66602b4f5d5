"""What the preliminary pass needs of a chunk of rows, computed where the chunk is.

The preliminary pass over a Dask DataFrame used to bring every partition to this process, which
costs a transfer of the whole data.  Most of it is not needed: the pass counts rows, missing,
infinite and negative values, and finds levels, which depend only on the distinct values of the
outcome, the cluster columns and the columns of categorical factors.  :func:`digest` runs on a
worker and returns those counts and a small frame: the first rows kept (for the widths of numeric
factors) and one kept row per distinct combination of those columns.  Fed to the preliminary
pass, the small frame finds the same levels as the whole partition.

Formulas with stateful transforms (``center``, ``standardize``) memorise every row, and get
whole partitions as before; chunks read in this process are digested here with every kept row,
so the preliminary pass has one way of counting.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from .design import numpy_columns
from .source_rows import missing_values

__all__ = ["Digest", "DigestSpec", "digest"]

# Kept rows of each chunk sent whole, whatever their values.
HEAD_ROWS = 64


@dataclass(frozen=True)
class DigestSpec:
    """What to digest.

    Attributes
    ----------
    used : tuple of str
        Columns the formula, weights and groups use (a row missing any of them is dropped).
    distinct : tuple of str or None
        Columns whose distinct combinations are kept: the outcome, cluster columns and the
        columns of categorical factors; ``None`` keeps every row kept (a chunk read here,
        which stateful transforms must see whole).
    outcome : str
    weights : tuple of str
        Weight columns: infinite and negative values are counted.
    """

    used: tuple
    distinct: tuple
    outcome: str
    weights: tuple = ()


@dataclass(frozen=True)
class Digest:
    """Counts of one chunk and its kept rows, reduced.

    Attributes
    ----------
    rows : int
        Rows of the chunk.
    missing : dict of str to int
        Missing values per used column.
    missing_rows : int
        Rows with a missing value in a used column (dropped).
    infinite, negative : dict of str to int
        Infinite values of the outcome and weights, negative weights (of kept rows).
    frame : DataFrame
        The first kept rows, then one kept row per distinct combination of ``spec.distinct``
        (every kept row if ``spec.distinct`` is None); pandas' nullable columns as NumPy
        columns (``numpy_columns``).
    """

    rows: int
    missing: dict
    missing_rows: int
    infinite: dict = field(default_factory=dict)
    negative: dict = field(default_factory=dict)
    frame: pd.DataFrame = None

    def __len__(self) -> int:
        return self.rows

    def with_frame(self, frame: pd.DataFrame) -> Digest:
        return replace(self, frame=frame)


def digest(df: pd.DataFrame, spec: DigestSpec) -> Digest:
    """The :class:`Digest` of ``df``."""
    used = [c for c in spec.used if c in df.columns]
    na = missing_values(df, used)
    bad = na.any(axis=1)
    kept = numpy_columns(df.loc[~bad] if bad.any() else df, used)
    infinite, negative = {}, {}
    y = kept[spec.outcome] if spec.outcome in kept.columns else None
    if y is not None and not isinstance(y.dtype, pd.CategoricalDtype) and y.dtype.kind == "f":
        infinite[spec.outcome] = int((~np.isfinite(y.to_numpy())).sum())
    for c in spec.weights:
        col = kept[c] if c in kept.columns else None
        if col is None or not pd.api.types.is_numeric_dtype(col) or col.dtype == bool:
            continue  # the preliminary pass names the column from the frame's dtype
        w = col.to_numpy(dtype=np.float64)
        infinite[c] = int((~np.isfinite(w)).sum())
        negative[c] = int((w < 0).sum())
    if spec.distinct is None:
        frame = kept
    else:
        distinct = [c for c in spec.distinct if c in kept.columns]
        parts = [kept.iloc[:HEAD_ROWS]]
        if distinct and len(kept) > HEAD_ROWS:
            parts.append(kept.drop_duplicates(subset=distinct))
        frame = pd.concat(parts) if len(parts) > 1 else parts[0]
    return Digest(
        rows=len(df),
        missing=dict(zip(used, (int(k) for k in na.sum(axis=0)), strict=True)),
        missing_rows=int(bad.sum()),
        infinite=infinite,
        negative=negative,
        frame=frame,
    )
