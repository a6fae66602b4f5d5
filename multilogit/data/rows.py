"""The source rows of a formula model's fit: the data as given, less the rows dropped for
missing values."""

from __future__ import annotations

import pandas as pd

from ..exceptions import DataError

__all__ = ["estimation_frame"]


def estimation_frame(source: pd.DataFrame | None, row_labels, n_dropped: int) -> pd.DataFrame:
    """The formula data ``source`` restricted to the rows used in the fit (labelled
    ``row_labels``; ``n_dropped`` rows were dropped for missing values).

    Raises
    ------
    DataError
        The model does not hold its data, or rows were dropped and the data's index has
        duplicate labels (the estimation rows cannot be recovered).
    """
    if source is None:
        raise DataError(
            "this formula model does not hold its data; refit it with mnlogit(formula, data)"
        )
    # A loaded model holds the estimation rows only, already in order.
    if not n_dropped or source.index.equals(row_labels):
        return source
    if not source.index.is_unique:
        raise DataError(
            "rows were dropped for missing values and the data's index has duplicate labels, "
            "so the estimation rows cannot be recovered; reset the index before fitting"
        )
    return source.iloc[source.index.get_indexer(row_labels)]
