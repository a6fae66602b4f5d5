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

import numpy as np
import pandas as pd

from ..data.large import is_dask_collection
from ..data.offsets import new_offsets
from ..engine import kernels
from ..engine.memory import predict_linear, predict_probabilities
from ..engine.offset import augmented
from ..engine.threads import block_runs, default_threads, map_runs, stop_if_cancelled
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


def _pair_blocks(V, J, p) -> np.ndarray:
    """The blocks :math:`V_{jl}`, ``j <= l``, of the flat covariance side by side: ``(p, npairs
    p)``, so that one product ``X @ S`` gives every row's :math:`x^\\top V_{jl}` (the blocks
    with ``j > l`` are transposes of these and add nothing to the quadratic forms)."""
    V4 = V.reshape(J, p, J, p)
    return np.ascontiguousarray(
        np.concatenate([V4[j, :, k, :] for j in range(J) for k in range(j, J)], axis=1)
    )


def _rows(X, beta, S, order, threads: int, offset=None) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities and their delta-method standard errors ``(m, K)``, in level order, of
    the rows ``X``; ``S`` from :func:`_pair_blocks`, ``order`` the internal column of each
    outcome; ``offset`` the rows' offsets ``(m, J)`` (they move the probabilities, not the
    gradient's form).

    Per block of rows one BLAS product ``x S`` and a Numba pass for the per-row quadratic
    forms (no ``(m, J, J, p)`` temporaries); the blocks are split into contiguous runs over
    ``threads`` threads, with BLAS on one thread throughout (its own threads are slow on these
    thin products).  Each row's numbers depend on that row alone.
    """
    m = X.shape[0]
    K = len(order)
    P, se = np.empty((m, K)), np.empty((m, K))
    blocks = [slice(a, min(a + _CHUNK_ROWS, m)) for a in range(0, m, _CHUNK_ROWS)]
    runs = block_runs(len(blocks), threads)

    def run(k):
        for sl in blocks[runs[k].start : runs[k].stop]:
            stop_if_cancelled()
            x = np.ascontiguousarray(X[sl], dtype=np.float64)
            p_ = predict_probabilities(*augmented(x, None if offset is None else offset[sl], beta))
            var = np.empty_like(p_)
            kernels.prob_variance_rows(x, x @ S, p_, var)
            P[sl] = p_[:, order]
            se[sl] = np.sqrt(var[:, order])

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
    """
    model = results.model
    beta = np.ascontiguousarray(results._beta)
    S = _pair_blocks(results._delta_cov, model.J, beta.shape[1])
    order = model.level_to_internal

    if exog is None:
        if offset is not None:
            raise DataError("offset= is for new rows: the estimation rows have theirs")
        index = model.row_labels if model.is_in_memory else pd.RangeIndex(model.n_rows)
        # Threads within a chunk where the chunks are evaluated in this process (a backend on
        # a cluster runs its chunks in parallel already).
        threads = int(getattr(model.backend, "threads", 1))
        parts = model.backend.reduce(
            lambda c: _rows(c.X, beta, S, order, threads, c.offset), _PASS_ROWS, frames=False
        )
        P, se = _stack(parts)
    else:
        X, index = _new_rows(model.design, exog, _missing_policy(model))
        offs = _new_offsets(model, exog, offset, index)
        P, se = _rows(X, beta, S, order, default_threads(), offs)
    return PredictionResults(P, se, pd.Index(index), list(model.outcomes), model)


def _stack(parts) -> tuple[np.ndarray, np.ndarray]:
    """The chunks' ``(P, se)`` stacked into two arrays, each chunk let go once copied."""
    n = sum(len(part[0]) for part in parts)
    K = parts[0][0].shape[1]
    P, se = np.empty((n, K)), np.empty((n, K))
    start = 0
    for k in range(len(parts)):
        p_, s_ = parts[k]
        parts[k] = None
        P[start : start + len(p_)] = p_
        se[start : start + len(p_)] = s_
        start += len(p_)
    return P, se


class PredictionResults:
    """Predicted probabilities with standard errors; from ``results.get_prediction()``.

    Attributes
    ----------
    predicted : DataFrame
        Probabilities, one row per observation, one column per outcome (level order).
    se : DataFrame
        Their delta-method standard errors.
    """

    def __init__(self, prob, se, index, outcomes, model):
        cols = pd.Index(outcomes, name=model.endog_names)
        # The arrays are this object's own: wrapped, not copied (n x K each).
        self.predicted = pd.DataFrame(prob, index=index, columns=cols, copy=False)
        self.se = pd.DataFrame(se, index=index, columns=cols, copy=False)
        self._outcomes = outcomes

    def conf_int(self, alpha: float = 0.05, method: str = "logit") -> tuple:
        """Lower and upper bounds, each a DataFrame shaped like ``predicted``.

        ``method="logit"``: :math:`\\operatorname{expit}(\\operatorname{logit} P \\pm z\\,
        \\mathrm{se}/(P(1-P)))`, inside (0, 1).  ``method="symmetric"``:
        :math:`P \\pm z\\, \\mathrm{se}` (Stata's ``margins``; may leave [0, 1]).
        """
        lo, hi = self._bounds(alpha, method)
        return self._like(lo), self._like(hi)

    def _bounds(self, alpha, method) -> tuple[np.ndarray, np.ndarray]:
        """The bounds of :meth:`conf_int` as arrays."""
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1); got {alpha!r}")
        if method not in _CI_METHODS:
            raise ValueError(f"method must be 'logit' or 'symmetric'; got {method!r}")
        q = stats.norm.ppf(1.0 - alpha / 2.0)
        P = self.predicted.to_numpy()
        se = self.se.to_numpy()
        if method == "symmetric":
            lo, hi = P - q * se, P + q * se
        else:
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                half = q * se / (P * (1.0 - P))
                # expit(logit P -+ half) in closed form: one exponential per value instead of
                # a logit and two expits (the same numbers to rounding, and the same NaN).
                e = np.exp(half)
                lo = P / (P + (1.0 - P) * e)
                hi = P / (P + (1.0 - P) / e)
        return lo, hi

    def _like(self, values) -> pd.DataFrame:
        return pd.DataFrame(
            values, index=self.predicted.index, columns=self.predicted.columns, copy=False
        )

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
        lo, hi = self._bounds(alpha, method)
        stats_ = {"prob": self.predicted.to_numpy(), "std err": self.se.to_numpy()}
        stats_.update(lower=lo, upper=hi)
        row_name = self.predicted.index.name or "row"
        if form == "long":
            idx = _long_index(self.predicted.index, self._outcomes, [row_name, "outcome"])
            # One (statistics, rows) block, as pandas stores a frame of floats: filled once
            # and wrapped, not assembled column by column and copied into a block again.
            block = np.empty((len(stats_), lo.size))
            for k, v in enumerate(stats_.values()):
                block[k] = v.ravel()
            return pd.DataFrame(block.T, index=idx, columns=list(stats_), copy=False)
        cols = pd.MultiIndex.from_product(
            [self._outcomes, list(stats_)], names=["outcome", "statistic"]
        )
        data = np.stack(list(stats_.values()), axis=2)  # (n, K, S)
        out = pd.DataFrame(data.reshape(len(data), -1), index=self.predicted.index, columns=cols)
        out.index.name = row_name
        return out

    def __repr__(self) -> str:
        n, K = self.predicted.shape
        return f"<PredictionResults: {n} rows x {K} outcomes>"


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


def _long_index(index, outcomes, names) -> pd.MultiIndex:
    """``(row, outcome)`` pairs, outcome fastest: the index of the long summary frame, built
    from the codes of the ``n`` rows and ``K`` outcomes rather than from ``n K`` objects."""
    n, K = len(index), len(outcomes)
    rows, row_level = _level(index)
    outs, out_level = _level(pd.Index(np.asarray(outcomes, dtype=object)))
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
