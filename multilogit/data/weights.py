"""Row-aligned side variables: frequency weights, sampling weights and cluster ids.

Weights and cluster ids arrive as arrays (of the full data or of the rows kept), pandas Series, or,
for a formula model, the name of a data column.  This module lines them up with the rows the model
keeps after dropping missing values (``model.row_labels``) and checks them.

When the model's data carries row labels (formula data, or ``endog``/``exog`` given as pandas
objects) a Series is lined up by its index, as pandas lines up columns: a Series in another row
order must give the same estimates, never silently other ones.  Its labels must be unique, all
in the data's index, and cover every row kept (labels of rows dropped for missing values may be
absent).  Arrays, lists and Series given with plain-array data are matched by position.

Conventions
-----------
* ``freq_weights`` (Stata ``fweight``): a row with weight :math:`f_i` counts as :math:`f_i`
  identical rows.  Estimates, standard errors and ``nobs`` (:math:`\\sum_i f_i`) equal those of
  the expanded data.
* ``weights`` (Stata ``pweight``, sampling weights): row :math:`i` enters the log
  pseudo-likelihood with weight :math:`w_i`; the estimates are those of the weighted likelihood,
  but the inverse information is not a valid covariance, so the robust sandwich (``HC1``, as
  Stata) is the default.  ``nobs`` counts the rows with positive weight.
* The likelihood weight of a row is :math:`f_i w_i`.

Scale
-----
Sampling weights are defined up to a factor: weights times any positive constant give the
same estimates and robust standard errors (Stata, statsmodels).  The rows the solver and the
covariances read carry them divided by ``sampling_scale``, the power of two nearest their
mean, so the convergence test, the information and the squared weights of the robust meat
never depend on the scale (weights of ``1e-200`` would otherwise stop the solver at once and
square to zero in the meat; weights of ``1e200`` would overflow).  Dividing by a power of two
is exact, and every statistic is reported in the original scale: the log-likelihood and
``llnull`` are those of the weights as given (they scale with them, as Stata's log
pseudolikelihood), and so is the ``nonrobust`` covariance, the inverse of that weighted
information.  Frequency weights are counts and are never rescaled: their sum is ``nobs``, so
it must be at least 1 and at most ``MAX_FREQ_TOTAL``.

Rows a backend holds (Parquet, Dask) keep their weights as stored: the solver reads their
derivatives divided by such a power of two (``fit.pipeline.rows_weight_scale``), and the robust
covariances square the weights as given, so there weights beyond ``2**500`` either way are
refused.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..exceptions import DataError

__all__ = [
    "MAX_FREQ_TOTAL",
    "check_freq_weights",
    "check_weights",
    "likelihood_weights",
    "resolve_rows",
    "sampling_scale",
]

#: Largest total of frequency weights: beyond 2**53 counts are no longer whole numbers in
#: float64, and sums of them lose whole observations.
MAX_FREQ_TOTAL = float(2**53)


def _kept_positions(model) -> np.ndarray | None:
    """Positions (in the data as given) of the rows the model kept; ``None`` when all kept."""
    if not model.n_dropped:
        return None
    src = model._source_index
    if src is None or not src.is_unique:
        raise DataError(
            "rows with missing values were dropped and the data index is not unique, so an array "
            "cannot be lined up with the rows kept; pass values for the kept rows only"
        )
    return src.get_indexer(model.row_labels)


def resolve_rows(model, values, what: str) -> np.ndarray:
    """``values`` lined up with the model's rows (after missing-row dropping).

    Parameters
    ----------
    model : MultinomialLogit
    values : str, Series, one-column DataFrame or array-like
        A column name of the formula data; a Series, lined up by index label when the model's
        data has row labels (see the module notes); or an array with one value per row of the
        data as given (rows dropped for missing values are dropped here too) or per row kept.
    what : str
        Name used in error messages (``"freq_weights"``, ``"groups"``, ...).

    Returns
    -------
    ndarray, shape (n_rows_kept,)

    Raises
    ------
    DataError
        An unknown column name, a value count that fits neither the data nor the rows kept, or a
        Series whose labels do not match the data's index (missing, extra or repeated labels).
    """
    if isinstance(values, str):
        data = model._source_data
        if data is None:
            raise DataError(
                f"{what}={values!r} names a column, which needs a formula model "
                "(from_formula / mnlogit); pass an array"
            )
        if values not in data.columns:
            raise DataError(f"{what}: column {values!r} is not in the data")
        values = data[values]
    if isinstance(values, pd.DataFrame):
        if values.shape[1] != 1:
            raise DataError(f"{what} must be one column; got {values.shape[1]}")
        values = values.iloc[:, 0]
    if isinstance(values, pd.Series) and getattr(model, "_source_labelled", False):
        return _by_label(model, values, what)
    arr = values.to_numpy() if isinstance(values, pd.Series) else np.asarray(values)
    return _by_position(model, arr, what)


def _by_position(model, arr: np.ndarray, what: str) -> np.ndarray:
    n = len(model.exog)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise DataError(f"{what} must be 1-D; got shape {arr.shape}")
    n_given = n + model.n_dropped
    if len(arr) == n:
        return arr
    if model.n_dropped and len(arr) == n_given:
        return arr[_kept_positions(model)]
    expect = f"{n}" if not model.n_dropped else f"{n_given} (the data) or {n} (rows kept)"
    raise DataError(f"{what} has {len(arr)} values; expected {expect}")


def _by_label(model, values: pd.Series, what: str) -> np.ndarray:
    """A Series lined up with the rows kept by its index labels."""
    labels, given, kept = values.index, model._source_index, model.row_labels
    # The same labels in the same order: positions agree, and a repeated data index is fine.
    if labels.equals(given):
        return _by_position(model, values.to_numpy(), what)
    if labels.equals(kept):
        return values.to_numpy()
    hint = "; pass an array (e.g. .to_numpy()) to match rows by position"
    if labels.has_duplicates:
        dup = labels[labels.duplicated()]
        raise DataError(
            f"{what}: the Series index repeats {len(dup)} label(s) (e.g. {dup[0]!r}), so it "
            f"cannot be lined up with the data's rows{hint}"
        )
    if given is None or given.has_duplicates:
        raise DataError(
            f"{what}: the data's index is not unique, so a Series cannot be lined up with its "
            f"rows by label{hint}"
        )
    extra = labels[~labels.isin(given)]
    missing = kept[~kept.isin(labels)]
    if len(extra) or len(missing):
        parts = []
        if len(missing):
            rows = "rows kept" if model.n_dropped else "data's rows"
            parts.append(
                f"{len(missing)} of the {len(kept)} {rows} have no value (e.g. label "
                f"{missing[0]!r})"
            )
        if len(extra):
            parts.append(f"{len(extra)} label(s) are not in the data (e.g. {extra[0]!r})")
        raise DataError(
            f"{what}: the Series index does not match the data's index: "
            + " and ".join(parts)
            + hint
        )
    return values.to_numpy()[labels.get_indexer(kept)]


def check_weights(arr, what: str) -> np.ndarray:
    """Weights as float64; non-numeric, negative, non-finite or all-zero weights raise."""
    try:
        w = np.asarray(arr, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{what} must be numeric") from None
    bad = ~np.isfinite(w)
    if bad.any():
        raise DataError(f"{what} holds {int(bad.sum())} missing or non-finite value(s)")
    neg = w < 0
    if neg.any():
        raise DataError(f"{what} holds {int(neg.sum())} negative value(s)")
    if not (w > 0).any():
        raise DataError(f"{what} are all zero")
    return w


def likelihood_weights(freq_weights: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
    """The weight of each row's log-likelihood, :math:`f_i w_i` (frequency times sampling
    weight; the frequency weights alone without sampling weights)."""
    return freq_weights if weights is None else freq_weights * weights


def check_freq_weights(fw: np.ndarray) -> np.ndarray:
    """Frequency weights (checked by :func:`check_weights`) whose total is a usable count.

    Raises
    ------
    DataError
        A total below 1 (frequency weights count observations: ``nobs`` is their sum) or
        above ``MAX_FREQ_TOTAL``, or a sum that overflows.
    """
    with np.errstate(over="ignore"):
        total = float(np.sum(fw))
    if not total >= 1.0:
        raise DataError(
            f"freq_weights sum to {total:.3g}: frequency weights count observations (nobs is "
            "their sum), so they must add up to at least 1; for weights defined up to a "
            "factor, pass them as sampling weights (weights=)"
        )
    if not total <= MAX_FREQ_TOTAL:
        big = float(np.max(fw))
        raise DataError(
            f"freq_weights sum to {total:.3g} (largest {big:.3g}): more than 2**53 "
            "observations cannot be counted exactly in float64; for weights defined up to a "
            "factor, pass them as sampling weights (weights=)"
        )
    return fw


def sampling_scale(w: np.ndarray) -> float:
    """The power of two nearest the mean positive sampling weight: what the rows the solver
    reads are divided by (see the module notes).

    Raises
    ------
    DataError
        The weights span so many orders of magnitude that the smallest positive one would be
        lost (below the smallest normal float64) once the others are near 1.
    """
    pos = w[w > 0]
    if not len(pos):
        return 1.0
    # The mean of weights near 1e308 overflows: take it of the weights divided by a power of
    # two near the largest, exactly.
    _, e_max = np.frexp(pos.max())
    mean = float(np.mean(np.ldexp(pos, -int(e_max))))
    scale = float(np.ldexp(1.0, int(np.round(np.log2(mean))) + int(e_max)))
    smallest = float(pos.min()) / scale
    if smallest < np.finfo(np.float64).tiny:
        raise DataError(
            f"weights span too many orders of magnitude (from {float(pos.min()):.3g} to "
            f"{float(pos.max()):.3g}): relative to their mean the smallest positive weights "
            "are below the float64 range; set negligible weights to 0"
        )
    return scale
