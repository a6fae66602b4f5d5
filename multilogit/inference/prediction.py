"""Predicted probabilities with delta-method standard errors and confidence intervals.

For row :math:`x` the probability of outcome ``k`` (reference included) has gradient

.. math::

    \\frac{\\partial P_k}{\\partial \\beta_j} = P_k (\\delta_{kj} - P_j)\\, x ,
    \\qquad j = 1, \\dots, K-1 ,

so with :math:`c_k = P_k (e_k - P_{1:J})` (:math:`e_\\mathrm{ref} = 0`) and the ``J x J`` matrix
:math:`Q_{jl} = x^\\top V_{jl}\\, x` built from the blocks of ``V = results.cov_params()``,

.. math::

    \\operatorname{Var}(\\hat P_k) = c_k^\\top Q\\, c_k .

Intervals are either on the logit scale of each probability (default; they stay inside (0, 1)
and, for K = 2, equal statsmodels' ``Logit.get_prediction`` intervals), or symmetric on the
probability scale (Stata's ``margins``).
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import pandas as pd

from ..data.large import is_dask_collection
from ..data.offsets import new_offsets
from ..engine.memory import predict_linear, predict_probabilities
from ..engine.offset import augmented
from ..engine.prediction_kernels import logit_bounds, pair_blocks, prediction_rows
from ..engine.threads import (
    block_runs,
    default_threads,
    map_runs,
    row_runs,
    stop_if_cancelled,
)
from ..exceptions import DataError
from . import distributions as stats

__all__ = ["PredictionResults", "get_prediction"]

# Rows per block of the quadratic forms: their ``(m, J(J+1)/2 p)`` products stay in cache
# between the BLAS product and the Numba pass that reads them.  Rows per chunk of a pass over
# the backend's rows: fewer, larger results to stack.
_CHUNK_ROWS = 1024
_PASS_ROWS = 65536
_CI_METHODS = ("logit", "symmetric")
# What predict returns: see predict (statsmodels' "mean" is accepted for "prob").
_WHICH = ("prob", "var", "class", "linear")


def _rows(X, beta, S, order, threads: int, offset=None, out=None) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities and their delta-method standard errors ``(m, K)``, in level order, of
    the rows ``X``; ``S`` from :func:`~multilogit.engine.prediction_kernels.pair_blocks`,
    ``order`` the internal column of each outcome; ``offset`` the rows' offsets ``(m, J)``
    (they move the probabilities, not the gradient's form); ``out`` the two ``(m, K)`` arrays
    to fill (new ones if ``None``).

    Per block of rows one BLAS product :math:`S^\\top x^\\top` into a buffer of the thread and
    a Numba pass writing the block's rows of the outputs (no ``(m, J, J, p)`` or ``(m, K, J p)``
    temporaries); the blocks are split into contiguous runs over ``threads`` threads, with
    BLAS on one thread throughout (its own threads are slow on these thin products).  Each
    row's numbers depend on that row alone.
    """
    m = X.shape[0]
    K = len(order)
    P, se = (np.empty((m, K)), np.empty((m, K))) if out is None else out
    no_offset = np.empty((0, beta.shape[0]))
    blocks = [slice(a, min(a + _CHUNK_ROWS, m)) for a in range(0, m, _CHUNK_ROWS)]
    runs = block_runs(len(blocks), threads)

    def run(k):
        # The block transposed and its product with S, rows last: the kernel's loops run
        # over rows.  Buffers of the thread, reused for each block.
        xbuf = np.empty(min(_CHUNK_ROWS, m) * X.shape[1])
        zbuf = np.empty(min(_CHUNK_ROWS, m) * S.shape[1])
        for sl in blocks[runs[k].start : runs[k].stop]:
            stop_if_cancelled()
            mb = sl.stop - sl.start
            xt = xbuf[: mb * X.shape[1]].reshape(X.shape[1], mb)
            np.copyto(xt, X[sl].T)
            zt = zbuf[: mb * S.shape[1]].reshape(S.shape[1], mb)
            np.matmul(S.T, xt, out=zt)
            offs = no_offset if offset is None else np.ascontiguousarray(offset[sl], np.float64)
            prediction_rows(xt, offs, beta, zt, order, P[sl], se[sl])

    if blocks:
        map_runs(run, len(runs))
    return P, se


def get_prediction(results, exog=None, offset=None) -> PredictionResults:
    """Predicted probabilities of every outcome with delta-method uncertainty.

    Parameters
    ----------
    results : MultinomialLogitResults
    exog : DataFrame or array, optional
        New data as for ``results.predict`` (a DataFrame with the formula's columns, or the
        fitted columns of an array model).  Default: the estimation sample.
    offset : optional
        The offsets of the new rows for a model with an offset, as for
        :meth:`~multilogit.MultinomialLogitResults.predict`.

    Returns
    -------
    PredictionResults
        For new rows, with the numbers computed.  For the estimation sample, they are
        computed from the model's rows when first asked for, and
        :meth:`~PredictionResults.summary_frame` computes them straight into its table unless
        ``predicted`` or ``se`` was read before (then they are kept): on a large sample the
        table is then the only memory of its size.
    """
    model = results.model
    beta = np.ascontiguousarray(results._beta)
    S = pair_blocks(results._delta_cov, model.J, beta.shape[1])
    order = np.ascontiguousarray(model.level_to_internal, dtype=np.int64)

    if exog is None:
        if offset is not None:
            raise DataError("offset= is for new rows: the estimation rows have theirs")
        index = model.row_labels if model.is_in_memory else pd.RangeIndex(model.n_rows)
        values = _EstimationRows(model, beta, S, order)
    else:
        X, index = _new_rows(model.design, exog, _missing_policy(model))
        offs = _new_offsets(model, exog, offset, index)
        values = _rows(X, beta, S, order, default_threads(), offs)
    return PredictionResults(values, pd.Index(index), list(model.outcomes), model)


class _EstimationRows:
    """The probabilities and standard errors of a model's estimation rows, computed into
    given ``(n, K)`` arrays by one pass over the model's backend."""

    def __init__(self, model, beta, S, order):
        self.model, self.beta, self.S, self.order = model, beta, S, order

    def __call__(self, P, se) -> None:
        model = self.model
        beta, S, order = self.beta, self.S, self.order
        # Threads within a chunk where the chunks are evaluated in this process (a backend on
        # a cluster runs its chunks in parallel already).
        threads = int(getattr(model.backend, "threads", 1))
        if model.is_in_memory:
            # Chunks evaluated here write their rows of the outputs: nothing to stack.
            def write(c):
                _rows(c.X, beta, S, order, threads, c.offset, (P[c.rows], se[c.rows]))

            model.backend.reduce(write, _PASS_ROWS, frames=False)
            return
        parts = model.backend.reduce(
            lambda c: _rows(c.X, beta, S, order, threads, c.offset), _PASS_ROWS, frames=False
        )
        _stack(parts, P, se)


def _stack(parts, P, se) -> None:
    """The chunks' ``(P, se)`` copied in order into ``P`` and ``se``, each chunk let go once
    copied."""
    start = 0
    for k in range(len(parts)):
        p_, s_ = parts[k]
        parts[k] = None
        P[start : start + len(p_)] = p_
        se[start : start + len(p_)] = s_
        start += len(p_)


class PredictionResults:
    """Predicted probabilities with standard errors; from ``results.get_prediction()``.

    :attr:`predicted` holds the probabilities and :attr:`se` their standard errors.

    Notes
    -----
    For the estimation sample the numbers are computed when first needed: ``predicted``,
    ``se``, :meth:`conf_int` and the wide :meth:`summary_frame` compute and keep them, while
    the long :meth:`summary_frame` computes them into its own table when they are not kept
    (one pass over the rows each time, and no second ``(n, K)`` copy).
    """

    def __init__(self, values, index, outcomes, model):
        # values: the (P, se) arrays, this object's own (wrapped, not copied); or a callable
        # filling two given (n, K) arrays with them on demand.
        self._fill = values if callable(values) else None
        self._arrays = None if callable(values) else values
        self._index = index
        self._outcomes = outcomes
        self._columns = pd.Index(outcomes, name=model.endog_names)

    def _values(self) -> tuple[np.ndarray, np.ndarray]:
        """The ``(n, K)`` probabilities and standard errors, computed once and kept."""
        if self._arrays is None:
            P, se = self._empty(), self._empty()
            self._fill(P, se)
            self._arrays = (P, se)
        return self._arrays

    def _empty(self) -> np.ndarray:
        return np.empty((len(self._index), len(self._outcomes)))

    def _into(self, P, se) -> None:
        """Write the probabilities and standard errors into ``P`` and ``se``, ``(n, K)``:
        copies of the kept ones, or computed there."""
        if self._arrays is None:
            self._fill(P, se)
        else:
            P[...], se[...] = self._arrays

    @cached_property
    def predicted(self) -> pd.DataFrame:
        """Probabilities, one row per observation, one column per outcome (level order)."""
        return self._like(self._values()[0])

    @cached_property
    def se(self) -> pd.DataFrame:
        """Delta-method standard errors of :attr:`predicted`, shaped like it."""
        return self._like(self._values()[1])

    def conf_int(self, alpha: float = 0.05, method: str = "logit") -> tuple:
        """Lower and upper bounds, each a DataFrame shaped like ``predicted``.

        ``method="logit"``: :math:`\\operatorname{expit}(\\operatorname{logit} P \\pm z\\,
        \\mathrm{se}/(P(1-P)))`, inside (0, 1).  ``method="symmetric"``:
        :math:`P \\pm z\\, \\mathrm{se}` (Stata's ``margins``; may leave [0, 1]).
        """
        q = _critical(alpha, method)
        P, se = self._values()
        lo, hi = self._empty(), self._empty()
        _bounds_into(P.ravel(), se.ravel(), q, method, lo.ravel(), hi.ravel())
        return self._like(lo), self._like(hi)

    def _like(self, values) -> pd.DataFrame:
        return pd.DataFrame(values, index=self._index, columns=self._columns, copy=False)

    def summary_frame(
        self, alpha: float = 0.05, form: str = "long", method: str = "logit"
    ) -> pd.DataFrame:
        """Predictions, standard errors and intervals as one DataFrame.

        Parameters
        ----------
        alpha : float
            Intervals have coverage ``1 - alpha``.
        form : {"long", "wide"}
            ``"long"``: one row per (observation, outcome), indexed by ``(row, outcome)``,
            columns ``prob``, ``std err``, ``lower``, ``upper``.  ``"wide"``: one row per
            observation, columns a MultiIndex ``(outcome, statistic)``, outcome-major.
        method : {"logit", "symmetric"}
            How intervals are formed; see :meth:`conf_int`.
        """
        if form not in ("long", "wide"):
            raise ValueError(f"form must be 'long' or 'wide'; got {form!r}")
        q = _critical(alpha, method)
        names = ["prob", "std err", "lower", "upper"]
        n, K = len(self._index), len(self._outcomes)
        row_name = self._index.name or "row"
        if form == "long":
            # One (statistics, rows) block, as pandas stores a frame of floats: filled in place
            # (the probabilities and standard errors computed into it) and wrapped, not
            # assembled column by column and copied into a block again.
            block = np.empty((len(names), n * K))
            self._into(block[0].reshape(n, K), block[1].reshape(n, K))
            _bounds_into(block[0], block[1], q, method, block[2], block[3])
            idx = _long_index(self._index, self._outcomes, [row_name, "outcome"])
            return pd.DataFrame(block.T, index=idx, columns=names, copy=False)
        data = np.empty((n, K, len(names)))
        P, se = self._values()
        lo, hi = self._empty(), self._empty()
        _bounds_into(P.ravel(), se.ravel(), q, method, lo.ravel(), hi.ravel())
        for k, v in enumerate((P, se, lo, hi)):
            data[:, :, k] = v
        cols = pd.MultiIndex.from_product([self._outcomes, names], names=["outcome", "statistic"])
        flat = data.reshape(n, K * len(names))
        out = pd.DataFrame(flat, index=self._index, columns=cols, copy=False)
        out.index.name = row_name
        return out

    def __repr__(self) -> str:
        return f"<PredictionResults: {len(self._index)} rows x {len(self._outcomes)} outcomes>"


def _critical(alpha, method) -> float:
    """The normal quantile of intervals of coverage ``1 - alpha``, once both are checked."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1); got {alpha!r}")
    if method not in _CI_METHODS:
        raise ValueError(f"method must be 'logit' or 'symmetric'; got {method!r}")
    return float(stats.norm.ppf(1.0 - alpha / 2.0))


def _bounds_into(P, se, q, method, lo, hi) -> None:
    """Interval bounds of the flat ``P`` and ``se`` into the flat ``lo`` and ``hi``.

    ``"logit"``: :func:`~multilogit.engine.prediction_kernels.logit_bounds`, in contiguous
    runs over the cores; ``"symmetric"``: :math:`P \\mp q\\, \\mathrm{se}`, written in place.
    """
    if method == "symmetric":
        np.multiply(se, q, out=lo)
        np.subtract(P, lo, out=lo)
        np.multiply(se, q, out=hi)
        np.add(P, hi, out=hi)
        return
    runs = row_runs(len(P), default_threads())
    if len(runs) <= 1:
        logit_bounds(P, se, q, lo, hi)
        return

    def run(k):
        sl = runs[k]
        logit_bounds(P[sl], se[sl], q, lo[sl], hi[sl])

    map_runs(run, len(runs))


def _level(values) -> tuple[np.ndarray, pd.Index]:
    """Codes and sorted distinct values of ``values``, the level of a MultiIndex as pandas
    builds it from the values as Python objects (integers as int64, floats as float64), without
    turning a numeric row index into objects."""
    codes, uniques = pd.factorize(values, sort=True)
    arr = np.asarray(uniques)
    if arr.dtype.kind == "i":
        return codes, pd.Index(arr.astype(np.int64))
    if arr.dtype.kind == "f":
        return codes, pd.Index(arr.astype(np.float64))
    return codes, pd.Index(np.asarray(uniques, dtype=object)).infer_objects()


def _code_type(levels: int) -> type:
    """The integer type pandas stores the codes of a level of ``levels`` values in."""
    for t in (np.int8, np.int16, np.int32):
        if levels < np.iinfo(t).max:
            return t
    return np.int64


def _long_index(index, outcomes, names) -> pd.MultiIndex:
    """``(row, outcome)`` pairs, outcome fastest: the index of the long summary frame, built
    from the codes of the ``n`` rows and ``K`` outcomes rather than from ``n K`` objects."""
    n, K = len(index), len(outcomes)
    rows, row_level = _level(index)
    outs, out_level = _level(pd.Index(np.asarray(outcomes, dtype=object)))
    # Codes repeated in the narrowest type the MultiIndex keeps them in (it would cast n K
    # int64 codes down, a copy of n K int64 first).
    rows = rows.astype(_code_type(len(row_level)), copy=False)
    outs = outs.astype(_code_type(len(out_level)), copy=False)
    return pd.MultiIndex(
        levels=[row_level, out_level],
        codes=[np.repeat(rows, K), np.tile(outs, n)],
        names=names,
        verify_integrity=False,
    )


def _new_rows(design, exog, missing: str = "raise") -> tuple[np.ndarray, pd.Index]:
    """The design of new data ``exog``, rebuilt as at fit time, and its row labels; rows with
    missing or infinite values raise or are dropped by the model's ``missing`` policy."""
    X, index = design.build_rows(exog, missing)
    X = np.ascontiguousarray(X, dtype=np.float64)
    return X, (pd.RangeIndex(X.shape[0]) if index is None else index)


def _positions(exog, index) -> np.ndarray:
    """Positions in ``exog`` of the new rows kept (labelled ``index``)."""
    n = len(exog)
    if len(index) == n:
        return np.arange(n)
    if isinstance(exog, pd.Series | pd.DataFrame):
        pos = exog.index.get_indexer(index) if exog.index.is_unique else None
        if pos is None or np.any(pos < 0):
            raise DataError(
                "rows of the new data were dropped for missing values and its index labels "
                "are not unique: give the offsets of the rows kept, or drop the rows first"
            )
        return pos
    return np.asarray(index, dtype=np.int64)


def _new_offsets(model, exog, offset, index):
    """The offsets of new rows (``None`` for a model without an offset)."""
    return new_offsets(
        getattr(model, "_offset_spec", None),
        model.J,
        model.eq_outcomes,
        exog,
        offset,
        _positions(exog, index),
    )


def predict(model, beta, exog=None, which: str = "prob", offset=None):
    """Predictions of ``model`` at coefficients ``beta`` (shape ``(J, p)``).

    Parameters
    ----------
    exog : DataFrame or array, optional
        New data: for a formula model, a DataFrame with the columns the formula uses (the
        design is rebuilt with the categorical levels and transforms fixed at fit time); for
        an array model, a matrix with the fitted columns; a Dask DataFrame gives a Dask
        DataFrame (or Series), computed partition by partition.  Default: the estimation
        sample (for a model on a Dask DataFrame, a Dask result; for a streamed Parquet
        source, all its rows in memory, indexed ``0..n-1``).
    which : {"prob", "mean", "var", "class", "linear"}
        ``"prob"`` (or ``"mean"``, statsmodels' name): probability of each of the K outcomes
        (DataFrame, one column per outcome label); ``"var"``: the variance
        :math:`P_k (1 - P_k)` of each outcome's indicator (as statsmodels' ``MNLogit``);
        ``"class"``: the most probable outcome (Series of labels); ``"linear"``: the linear
        predictors, i.e. log odds against the reference (DataFrame with K columns, the
        reference's identically 0), the offsets included.
    offset : optional
        The offsets of the new rows ``exog`` for a model with an offset (a vector, an
        ``(m, J)`` matrix, or column name(s) of ``exog``); by default the model's offset
        columns when ``exog`` holds them.  Required for a model with an offset otherwise
        (:func:`multilogit.data.offsets.new_offsets`).
    """
    if which == "mean":
        which = "prob"
    if which not in _WHICH:
        raise ValueError(
            "which must be one of " + ", ".join(map(repr, _WHICH + ("mean",))) + f"; got {which!r}"
        )
    beta = np.ascontiguousarray(beta, dtype=np.float64)
    predictor = _Predictor(model.design, model.outcome, beta, _missing_policy(model))
    if exog is None and model.rows_frame is not None:
        exog = model.rows_frame
    if is_dask_collection(exog):
        if getattr(model, "_offset_spec", None) is not None:
            raise DataError("predictions of a model with an offset need new data in memory")
        return predictor.dask(exog, which)
    if exog is None and offset is not None:
        raise DataError("offset= is for new rows: the estimation rows have theirs")
    if exog is None:
        # The estimation sample: its rows are the backend's.
        rows = model.backend
        index = model.row_labels if model.is_in_memory else pd.RangeIndex(rows.n)
        eta = rows.linear(beta) if which == "linear" else None
        prob = None if which == "linear" else rows.probabilities(beta)
        if is_dask_collection(prob if eta is None else eta):
            return predictor.dask_blocks(eta, prob, which)
        return predictor.frame(eta, prob, index, which)
    if getattr(model, "_offset_spec", None) is not None or offset is not None:
        X, index = _new_rows(model.design, exog, predictor.missing)
        offs = _new_offsets(model, exog, offset, index)
        eta = predict_linear(*augmented(X, offs, beta)) if which == "linear" else None
        prob = None if which == "linear" else predict_probabilities(*augmented(X, offs, beta))
        return predictor.frame(eta, prob, index, which)
    return predictor(exog, which)


def _missing_policy(model) -> str:
    """The model's ``missing`` policy (``"raise"`` for a model read back without it)."""
    return getattr(model, "missing", "raise")


class _Predictor:
    """What prediction needs of a fit, small enough to ship to the workers of a cluster: the
    design state, the outcome coding and the coefficients."""

    def __init__(self, design, outcome, beta, missing="raise"):
        self.design, self.outcome, self.beta = design, outcome, beta
        self.missing = missing
        self.order = outcome.level_to_internal

    def __call__(self, exog, which):
        X, index = _new_rows(self.design, exog, self.missing)
        eta = predict_linear(X, self.beta) if which == "linear" else None
        prob = None if which == "linear" else predict_probabilities(X, self.beta)
        return self.frame(eta, prob, index, which)

    def frame(self, eta, prob, index, which):
        cols = pd.Index(list(self.outcome.levels), name=self.outcome.name)
        if which == "linear":
            full = np.column_stack([eta, np.zeros(len(eta))])
            return pd.DataFrame(full[:, self.order], index=index, columns=cols)
        prob = prob[:, self.order]
        if which == "prob":
            return pd.DataFrame(prob, index=index, columns=cols)
        if which == "var":
            return pd.DataFrame(prob * (1.0 - prob), index=index, columns=cols)
        levels = list(self.outcome.levels)
        labels = np.asarray(levels, dtype=object)[np.argmax(prob, axis=1)]
        return pd.Series(
            pd.Categorical(labels, categories=levels), index=index, name=self.outcome.name
        )

    def dask_blocks(self, eta, prob, which):
        """Predictions from Dask arrays of linear predictors or probabilities (one block per
        partition of the rows), as a Dask DataFrame or Series."""
        import dask
        import dask.dataframe as dd

        empty = np.zeros((0, len(self.outcome.levels) - 1))
        meta = self.frame(empty, np.zeros((0, len(self.outcome.levels))), pd.RangeIndex(0), which)
        arr = eta if which == "linear" else prob
        blocks = arr.to_delayed().ravel()
        # Rows keep their positions in the data: 0..n-1 across the partitions.
        starts = np.concatenate([[0], np.cumsum(arr.chunks[0])])
        parts = [
            dask.delayed(self.frame)(
                b if which == "linear" else None,
                None if which == "linear" else b,
                pd.RangeIndex(int(a), int(z)),
                which,
            )
            for b, a, z in zip(blocks, starts[:-1], starts[1:], strict=True)
        ]
        return dd.from_delayed(parts, meta=meta, verify_meta=False)

    def dask(self, frame, which):
        """Predictions for every partition of a Dask DataFrame, as a Dask collection."""
        from dask.dataframe.utils import make_meta

        meta = self(make_meta(frame), which)
        return frame.map_partitions(self, which, meta=meta)
