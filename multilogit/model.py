"""The multinomial logit model: data, likelihood and the ``fit`` driver.

Conventions
-----------
An outcome with K levels and a chosen reference (pivot) level has ``J = K - 1`` equations.
For row ``i`` with design row :math:`x_i` (``p`` columns),

.. math::

    P(y_i = j) = \\frac{\\exp(x_i^\\top \\beta_j)}{1 + \\sum_{l \\ne \\mathrm{ref}}
    \\exp(x_i^\\top \\beta_l)}, \\qquad \\beta_{\\mathrm{ref}} = 0 .

The parameter vector is flat and outcome-major (all ``p`` terms of the first non-reference
outcome, then the next): ``params.T.ravel()`` in terms of the public ``params`` DataFrame.
With K = 2 this is binary logistic regression of the non-reference outcome.
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd

from .data import design, large, offsets, rows
from .data import weights as _weights
from .engine import observations
from .engine.memory import InMemoryBackend
from .engine.offset import OffsetBackend, augmented
from .exceptions import DataError
from .fit import pipeline, rank
from .fit.constraints import parse_constraints
from .fit.options import FitOptions
from .fit.penalized import PENALTIES, PenaltyOptions, coerce_alpha
from .inference.prediction import predict
from .results.results import MultinomialLogitResults

__all__ = ["MultinomialLogit", "mnlogit"]

_LARGE_OFFSET = (
    "offset= needs the rows in memory: a model on a Parquet source or Dask data takes no offset"
)


class MultinomialLogit:
    """Multinomial (softmax) logistic regression with a reference outcome.

    Parameters
    ----------
    endog : array-like, Series or Categorical, shape (n,)
        Outcome labels: strings, integers, booleans or a Categorical (whose category order is
        the level order; otherwise levels are the sorted unique values).  Tuple labels are
        used as their strings.
    exog : array-like or DataFrame, shape (n, p)
        Design matrix, used as given (add a constant column for an intercept).  DataFrame
        column names label the coefficients.
    ref : label, optional
        Reference outcome; default the first level.
    missing : {"raise", "drop"}
        What to do with rows holding missing values; ``predict`` applies it to new rows too
        (missing or infinite values).
    freq_weights : array-like, optional
        Frequency weights (Stata ``fweight``): a row with weight ``f`` counts as ``f``
        identical rows; ``nobs`` is their sum.  One value per row of the data as given (rows
        dropped for missing values are dropped here too) or per row kept; with a formula, also
        a column name.  With pandas data a Series is lined up by its index, not by position.
    weights : array-like, optional
        Sampling weights (Stata ``pweight``).  The robust sandwich ``HC1`` becomes the default
        covariance, as Stata.  The fit does not depend on their scale; the log-likelihood is
        reported in it.  See :mod:`multilogit.data.weights`.
    offset : array-like, str or list, optional
        Known terms added to the linear predictors, :math:`\\eta_{ij} = x_i^\\top\\beta_j +
        o_{ij}` (R's and VGAM's ``offset``): a vector for every equation, an ``(n, J)`` matrix
        (or DataFrame, its columns lined up by outcome label) with one column per
        non-reference outcome, or with a formula column name(s).  Lined up with the rows as
        the weights are; predictions on new rows need theirs (``predict(exog, offset=...)``).
        See :mod:`multilogit.data.offsets`.

    See Also
    --------
    MultinomialLogit.from_formula : R-style formula interface (adds an intercept).
    """

    # Rows held by a backend (Parquet or Dask data): see _from_rows.  None for data in memory.
    _rows = None
    # The missing-value policy, which prediction on new rows applies too.
    missing = "raise"
    # Offsets (n, J) of the rows (None: no offset) and what prediction on new rows needs to
    # know of them (see multilogit.data.offsets).
    offset = None
    _offset_spec = None

    # Per-row arrays of data in memory; a model on larger data has none of them.
    _ROW_ARRAYS = frozenset(
        ("exog", "endog", "level_codes", "freq_weights", "_lik_weights", "row_labels", "_data")
    )

    def __getattr__(self, name):
        # Only reached when normal lookup fails: on a model whose rows a backend holds.
        if name in MultinomialLogit._ROW_ARRAYS and self.__dict__.get("_rows") is not None:
            raise DataError(
                f"this model's rows are {self._rows.description}, not in memory: {name!r} is not "
                "available (fit, summaries, covariances, tests and predictions work on them)"
            )
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __new__(cls, endog=None, exog=None, *args, **kwargs):
        # Arrays on a Dask cluster: a model whose rows stay there (see _from_rows).
        if large.is_dask_collection(exog) or large.is_dask_collection(endog):
            names = ("ref", "missing", "freq_weights", "weights", "offset")
            opts = dict(zip(names, args, strict=False), **kwargs)
            if opts.get("offset") is not None:
                raise DataError(_LARGE_OFFSET)
            if opts.get("missing", "raise") != "raise":
                raise ValueError(
                    "missing='drop' needs data in memory; drop rows from the Dask data"
                )
            rows = large.array_rows(
                endog, exog, opts.get("ref"), opts.get("freq_weights"), opts.get("weights")
            )
            return cls._from_rows(rows)
        return super().__new__(cls)

    def __init__(
        self, endog, exog, ref=None, missing="raise", freq_weights=None, weights=None, offset=None
    ):
        if self._rows is not None:
            return  # built by __new__ from Dask arrays
        self._setup(design.from_arrays(endog, exog, ref=ref, missing=missing))
        self.missing = missing
        self._source_data = None
        self._source_index = _source_index(endog, exog)
        # Only labelled data lines up Series of weights and cluster ids by index.
        self._source_labelled = isinstance(exog, pd.Series | pd.DataFrame) or isinstance(
            endog, pd.Series | pd.DataFrame
        )
        self._set_weights(freq_weights, weights)
        self._set_offset(offset)

    @classmethod
    def from_formula(
        cls,
        formula: str,
        data,
        ref=None,
        missing="raise",
        eval_env=0,
        freq_weights=None,
        weights=None,
        groups=None,
        offset=None,
    ):
        """Model from an R-style formula such as ``"prog ~ C(ses) + write"``.

        The left side is one column of strings, a categorical or integers, used as labels (no
        recoding needed).  The right side is expanded by patsy, with an intercept unless the
        formula says ``- 1``.  ``freq_weights`` and ``weights`` may name columns of ``data``.

        ``data`` may also be larger than memory: a Parquet source (:func:`multilogit.parquet`),
        streamed in batches into a local spill, or a Dask DataFrame, whose design blocks are
        built and kept on the cluster (see ``multilogit.data.large``).  The model then holds
        no row of the data.  With a Parquet source, cluster columns for
        ``fit(cov_type="cluster", cov_kwds={"groups": name})`` are named here, ``groups=``
        (a name or a list of names), so the streaming pass codes them.

        ``offset``: a known term added to the linear predictors (a column name, a list of one
        column name per equation, a vector for every equation or an ``(n, J)`` matrix; see
        :mod:`multilogit.data.offsets`), for data in memory.
        """
        if isinstance(eval_env, int):
            eval_env += 1
        if large.is_large(data):
            if offset is not None:
                raise DataError(_LARGE_OFFSET)
            rows = large.formula_rows(
                formula, data, ref, missing, eval_env, freq_weights, weights, groups
            )
            self = cls._from_rows(rows)
            self.missing = missing
            return self
        if groups is not None:
            raise ValueError(
                "groups= codes cluster columns while streaming a Parquet source; with data in "
                "memory pass them to fit(cov_type='cluster', cov_kwds={'groups': ...})"
            )
        md = design.from_formula(formula, data, ref=ref, missing=missing, eval_env=eval_env)
        self = cls.__new__(cls)
        self._setup(md)
        self.missing = missing
        # Kept (by reference) so that weights and cluster ids can be given as column names.
        self._source_data = pd.DataFrame(data) if isinstance(data, dict) else data
        self._source_index = self._source_data.index
        self._source_labelled = True
        self._set_weights(freq_weights, weights)
        self._set_offset(offset)
        return self

    @classmethod
    def _from_rows(cls, rows) -> MultinomialLogit:
        """A model on rows held by a backend (a Dask DataFrame or a Parquet source, see
        ``multilogit.data.large``): nothing per row lives in this process."""
        if not len(rows.design.names):
            what = f"formula {rows.design.formula!r}" if rows.design.formula else "exog"
            raise DataError(f"{what} has no columns: the model has no parameters")
        self = cls.__new__(cls)
        self._rows = rows
        self.outcome = rows.outcome
        self.design = rows.design
        self.n_dropped = rows.n_dropped
        # Only whether there are sampling weights matters here (default covariance, tests).
        self.weights = np.full(0, np.nan) if rows.sampling else None
        self._source_data = rows.frame
        self._source_index = None
        self._source_labelled = False
        return self

    def with_reference(self, ref) -> MultinomialLogit:
        """The same model with ``ref`` as reference outcome (the rows are shared, not copied);
        see :meth:`MultinomialLogitResults.repivot` for results without a refit."""
        outcome = self.outcome.with_ref(ref)
        new = copy.copy(self)
        new.outcome = outcome
        if self._rows is not None:
            new._rows = self._rows.recoded(outcome)
            return new
        new.endog = outcome.eq_codes(self.level_codes)
        if self.offset is not None:
            new.offset = offsets.rereferenced(self.offset, self.outcome, outcome)
            new.__dict__.pop("_backend_cache", None)
        md = self._data
        new._data = design.ModelData(
            md.X, md.codes, outcome, md.design, md.row_labels, md.n_dropped, md.col_range
        )
        return new

    def group_codes(self, groups) -> tuple:
        """Cluster codes ``0..G-1`` of ``groups`` aligned with the rows, in the backend's own
        form, and ``G``.  ``groups``: one id per row (of the data as given, or of the rows
        kept), or a column name of the formula data (any hashable ids)."""
        if self._rows is not None:
            return self._rows.group_codes(groups)
        g = _weights.resolve_rows(self, groups, "groups")
        # factorize: any hashable ids (mixed types too); missing ids get code -1.
        codes, _ = pd.factorize(pd.Series(g, dtype=object if g.dtype == object else None))
        if (codes < 0).any():
            raise DataError(f"groups holds {int((codes < 0).sum())} missing value(s)")
        return codes.astype(np.int64, copy=False), int(codes.max()) + 1

    @property
    def is_in_memory(self) -> bool:
        """Whether the rows are arrays in this process (else a backend holds them)."""
        return self._rows is None

    @property
    def rows_frame(self):
        """The Dask DataFrame of the estimation rows of a model on Dask data, else None."""
        return None if self._rows is None else self._rows.frame

    @property
    def n_rows(self) -> int:
        """Rows of the estimation sample (before weights)."""
        return self._rows.backend.n if self._rows is not None else len(self.exog)

    def _setup(self, md: design.ModelData):
        self._data = md
        self.outcome = md.outcome
        self.design = md.design
        # A read-only view: the model never writes to the design, which may be the caller's
        # own array (not copied), and the caller's array stays writable.
        self.exog = md.X.view()
        self.exog.setflags(write=False)
        self.level_codes = md.codes
        self.endog = self.outcome.eq_codes(md.codes)
        self.row_labels = md.row_labels
        self.n_dropped = md.n_dropped
        self.freq_weights = np.ones(len(self.exog))
        self.weights = None
        self._lik_weights = self.freq_weights
        n, p = self.exog.shape
        if n == 0:
            raise DataError("no rows to fit")

    # -- weights (see multilogit.data.weights) -------------------------------------------------

    def _set_weights(self, freq_weights, weights):
        if freq_weights is not None:
            fw = _weights.resolve_rows(self, freq_weights, "freq_weights")
            fw = _weights.check_weights(fw, "freq_weights")
            self.freq_weights = _weights.check_freq_weights(fw)
        if weights is not None:
            pw = _weights.resolve_rows(self, weights, "weights")
            self.weights = _weights.check_weights(pw, "weights")
            _weights.sampling_scale(self.weights)  # weights it cannot normalise raise here
        for arr in (self.freq_weights, self.weights):
            if arr is not None:
                arr.setflags(write=False)
        self._lik_weights = _weights.likelihood_weights(self.freq_weights, self.weights)
        if not (self._lik_weights > 0).any():
            raise DataError("every row has zero weight")

    def _set_offset(self, offset) -> None:
        if offset is None:
            return
        self.offset = offsets.resolve_offset(self, offset)
        self._offset_spec = offsets.offset_spec(offset)

    @property
    def weight_scale(self) -> float:
        """What the sampling weights are divided by in the rows the solver and the
        covariances read: a power of two near their mean (1 without sampling weights, and for
        rows a backend holds); see :mod:`multilogit.data.weights`.  Reported statistics are
        in the scale of the weights as given."""
        w = self.weights
        if self._rows is not None or w is None:
            return 1.0
        cached = self.__dict__.get("_weight_scale_cache")
        if cached is not None and cached[0] is w:
            return cached[1]
        scale = _weights.sampling_scale(w)
        self.__dict__["_weight_scale_cache"] = (w, scale)
        return scale

    @property
    def default_cov_type(self) -> str:
        """``"HC1"`` with sampling weights (as Stata), else ``"nonrobust"``."""
        return "nonrobust" if self.weights is None else "HC1"

    # -- descriptive attributes ----------------------------------------------------------------

    @property
    def formula(self) -> str | None:
        return self.design.formula

    @property
    def endog_names(self) -> str:
        return self.outcome.name

    @property
    def exog_names(self) -> list:
        return list(self.design.names)

    @property
    def outcomes(self) -> tuple:
        return self.outcome.levels

    @property
    def eq_outcomes(self) -> tuple:
        return self.outcome.eq_levels

    @property
    def ref(self):
        return self.outcome.ref

    @property
    def J(self) -> int:
        return self.outcome.J

    @property
    def k_exog(self) -> int:
        return len(self.design.names)

    @property
    def nobs(self) -> float:
        """Sum of the frequency weights of the rows with positive (sampling) weight."""
        if self._rows is not None:
            return float(self._rows.nobs)
        if self.weights is None:
            return float(self.freq_weights.sum())
        return float(self.freq_weights[self.weights > 0].sum())

    @property
    def k_constant(self) -> int:
        """1 when a constant is in the column span of the design, else 0 (statsmodels'
        ``k_constant``): a constant column, or columns adding up to one, such as the full set of
        dummies of ``y ~ 0 + C(f) + x``.  Rows with zero weight are left out, as in the rank
        check."""
        cached = getattr(self, "_k_constant_cache", None)
        if cached is not None and cached[0] is self.backend:
            return cached[1]
        if self.n_rows == 0:
            return 0
        if self._intercept_col() is not None:
            k = 1
        else:
            k = int(rank.constant_in_span(self.backend))
        self._k_constant_cache = (self.backend, k)
        return k

    @property
    def df_model(self) -> int:
        """Slope parameters, ``J (p - k_constant)``: a constant in the span of the columns is
        the intercept, whether a column or a full set of dummies."""
        return self.J * (self.k_exog - self.k_constant)

    @property
    def outcome_counts(self) -> np.ndarray:
        """Weighted count of each of the K outcomes (likelihood weights), in level order."""
        if self._rows is not None:
            # One pass over the rows: equation codes (reference last) to level order.
            J = self.J
            internal = np.sum(
                self.backend.reduce(
                    lambda c: np.bincount(np.where(c.y < 0, J, c.y), c.weights, J + 1),
                    frames=False,
                ),
                axis=0,
            )
            return internal[self.level_to_internal]
        return np.bincount(
            self.level_codes, weights=self._lik_weights, minlength=len(self.outcomes)
        )

    @property
    def level_to_internal(self) -> np.ndarray:
        """For each level (in order), its column in the kernels' (non-reference..., reference)
        layout."""
        return self.outcome.level_to_internal

    @property
    def backend(self):
        """The rows of this model behind the :class:`~multilogit.engine.backend.Backend`
        protocol: every pass over them (the solve, the rank and separation checks, robust
        covariances, fitted values, residuals, marginal effects) goes through it.  Built once
        per design and weights."""
        if self._rows is not None:
            return self._rows.backend
        key = (self.exog, self.endog, self._lik_weights, self.weights, self.offset)
        cached = self.__dict__.get("_backend_cache")
        if cached is not None and all(a is b for a, b in zip(cached[0], key, strict=True)):
            return cached[1]
        # Sampling weights normalised (exactly, by a power of two): see weight_scale.
        scale = self.weight_scale
        be = InMemoryBackend(
            self.exog,
            self.endog,
            self._lik_weights if scale == 1.0 else self._lik_weights / scale,
            self.J,
            sampling=self.weights if scale == 1.0 else self.weights / scale,
            frame=self.estimation_frame if self.design.design_info is not None else None,
        )
        rng = getattr(self._data, "col_range", None)
        if rng is not None and self._data.X.shape == self.exog.shape:
            # The missing-value scan of the design found the column ranges already.
            be.set_column_range(*rng)
        if self.offset is not None:
            full = InMemoryBackend(
                np.hstack([self.exog, self.offset]),
                self.endog,
                be.w,
                self.J,
                sampling=be.sampling,
            )
            be = OffsetBackend(be, full, self.offset)
        self.__dict__["_backend_cache"] = (key, be)
        return be

    def estimation_frame(self) -> pd.DataFrame:
        """The formula data restricted to the rows used in the fit (a Dask DataFrame for a
        model on Dask data; a model streamed from Parquet keeps none)."""
        if self._rows is not None:
            return self._rows.source_frame()
        return rows.estimation_frame(self._source_data, self.row_labels, self.n_dropped)

    @property
    def source_columns(self) -> list[str]:
        """The data columns of the estimation rows' source data (formula models): all columns
        of a DataFrame in memory or on Dask; for a fit streamed from Parquet, the columns it
        read (those the formula, the weights and the groups use)."""
        if self._rows is not None:
            return self._rows.source_columns
        return list(self.estimation_frame().columns)

    @property
    def source_column_stats(self) -> dict:
        """Numeric source columns' ``(all integers, minimum, maximum)`` over the estimation
        rows, where they were found while the rows were streamed (empty otherwise: they are
        then computed from the rows when needed)."""
        return {} if self._rows is None else dict(self._rows.column_stats)

    def _column_range(self):
        """Each design column's ``(lo, hi)`` (see :meth:`backend`)."""
        return self.backend.column_range()

    def _column_absmax(self) -> np.ndarray:
        """Each design column's largest magnitude (from :meth:`_column_range`)."""
        lo, hi = self._column_range()
        return np.maximum(hi, -lo)

    def _intercept_col(self):
        """The constant column, if any: the first column of ones, else the first constant
        nonzero column (as statsmodels)."""
        if self.n_rows == 0:
            return None
        lo, hi = self._column_range()
        const = np.flatnonzero((lo == hi) & (lo != 0))
        if not len(const):
            return None
        ones = const[lo[const] == 1.0]
        return int(ones[0] if len(ones) else const[0])

    # -- likelihood (statsmodels-style, on flat parameters) ------------------------------------

    def _backend(self):
        return self.backend

    def _beta(self, params):
        if isinstance(params, pd.DataFrame | pd.Series):
            params = params.to_numpy()
        params = np.asarray(params)
        # A cast would drop the imaginary part with only a warning, so complex-step derivative
        # tools would get silently wrong (zero) derivatives.
        if np.iscomplexobj(params):
            raise TypeError(
                "params must be real; got complex values (the likelihood is evaluated in real "
                "arithmetic, so complex-step derivatives are not supported; use finite "
                "differences or the analytic score and hessian)"
            )
        params = params.astype(np.float64, copy=False)
        if params.size != self.J * self.k_exog:
            raise ValueError(
                f"params must have {self.J * self.k_exog} values ({self.J} outcomes x "
                f"{self.k_exog} terms); got {params.size}"
            )
        if params.ndim == 2 and params.shape == (self.k_exog, self.J):
            return np.ascontiguousarray(params.T)
        return params.reshape(self.J, self.k_exog)

    # The backend's rows carry normalised sampling weights: these three are in the scale of
    # the weights as given (multiplying by a power of two is exact).

    def loglike(self, params) -> float:
        """Log-likelihood at ``params`` (flat outcome-major, or shaped like ``params``)."""
        d = self._backend().derivatives(self._beta(params), hessian=False)
        return d.llf * self.weight_scale

    def score(self, params) -> np.ndarray:
        """Gradient of the log-likelihood, flat outcome-major."""
        d = self._backend().derivatives(self._beta(params), hessian=False)
        return d.score.ravel() * self.weight_scale

    def hessian(self, params) -> np.ndarray:
        """Hessian of the log-likelihood (minus the information), flat outcome-major."""
        d = self._backend().derivatives(self._beta(params), hessian=True)
        return -d.info * self.weight_scale

    def information(self, params) -> np.ndarray:
        """Fisher information at ``params``, minus :meth:`hessian` (observed and expected
        information agree for the logit link), flat outcome-major."""
        return self._backend().derivatives(self._beta(params), hessian=True).info

    def loglike_and_score(self, params) -> tuple[float, np.ndarray]:
        """:meth:`loglike` and :meth:`score` from one pass over the rows (statsmodels'
        ``loglike_and_score``; neither is negated)."""
        d = self._backend().derivatives(self._beta(params), hessian=False)
        return d.llf, d.score.ravel()

    def loglikeobs(self, params) -> np.ndarray:
        """Each row's log-likelihood :math:`w_i \\log P(y_i)` at ``params``, shape ``(n,)``.

        Rows are those of the estimation sample, in order; the weights are the likelihood
        weights (frequency times sampling weight, 1 without weights), so the rows add up to
        :meth:`loglike`.  statsmodels' ``MNLogit.loglikeobs`` returns the ``(n, K)`` matrix
        :math:`d_{ik} \\log P_{ik}` whose row sums these are.  On data a backend holds
        (Parquet, Dask) the rows are streamed and the result comes back in memory.
        """
        beta = self._beta(params)
        return self._stack_rows(lambda c: observations.chunk_loglikeobs(*_with_offset(c, beta)), 1)

    def score_obs(self, params) -> np.ndarray:
        """Each row's score at ``params``, shape ``(n, J p)``, flat outcome-major as
        statsmodels' ``MNLogit.score_obs``: :math:`w_i (d_{ij} - P_{ij}) x_i`; the rows add up
        to :meth:`score`.  Weights and large data as :meth:`loglikeobs`."""
        beta = self._beta(params)
        p = self.k_exog

        def chunk(c):
            X, y, w, b = _with_offset(c, beta)
            out = observations.chunk_score_obs(X, y, w, b)
            # Only the design columns' scores (the offsets' coefficients are not parameters).
            return (
                out
                if b is beta
                else out.reshape(len(out), self.J, -1)[:, :, :p].reshape(len(out), -1)
            )

        return self._stack_rows(chunk, beta.size)

    def _stack_rows(self, fn, width: int) -> np.ndarray:
        """``fn`` on every chunk of the rows, stacked in row order."""
        parts = self._backend().reduce(fn, frames=False)
        if not parts:
            return np.zeros((0,) if width == 1 else (0, width))
        return np.concatenate(parts, axis=0)

    # -- fitting ---------------------------------------------------------------------------------

    def start_params(self) -> np.ndarray:
        """Intercepts at the log odds of the outcome shares against the reference; slopes 0.

        With a constant column of value ``c`` its coefficients are the log odds over ``c``, so
        the start is the intercept-only fit."""
        beta = np.zeros((self.J, self.k_exog))
        ic = self._intercept_col()
        if ic is not None:
            counts = self.outcome_counts
            internal = counts[np.argsort(self.level_to_internal)]
            c = self._column_range()[0][ic]
            beta[:, ic] = np.log(internal[: self.J] / internal[self.J]) / c
        return beta

    def _coerce_start(self, start_params):
        if isinstance(start_params, pd.DataFrame):
            start_params = start_params.to_numpy()
        beta = self._beta(start_params).copy()
        if not np.all(np.isfinite(beta)):
            raise ValueError("start_params must be finite")
        return beta

    def fit(
        self,
        method: str = "newton",
        maxiter: int = 100,
        tol: float = 1e-8,
        start_params=None,
        disp: bool = False,
        callback=None,
        cov_type: str | None = None,
        cov_kwds: dict | None = None,
        separation: str = "warn",
        drop_collinear: bool = False,
        hessian: str = "auto",
        penalty: str | None = None,
        alpha: float | None = None,
        l2_form: str = "symmetric",
        penalize_intercept: bool = False,
        memory_budget: float | None = None,
        constraints=None,
    ) -> MultinomialLogitResults:
        """Maximum-likelihood (or bias-reduced, or ridge) fit by Newton-Raphson with
        step-halving.

        Parameters
        ----------
        method : {"newton", "newton-cg", "firth", "firth-median"}
            ``"newton"``: maximum likelihood by Newton-Raphson (IRLS), each step solved with
            the dense information while it fits ``memory_budget`` and the model has fewer than
            300 parameters (with ``hessian="auto"``), by conjugate gradients on
            Hessian-vector products otherwise; ``"newton-cg"`` always by conjugate gradients
            (see :mod:`multilogit.solve.conjugate`); either way the same MLE.  ``"firth"``: mean
            bias reduction (Firth 1993; R's ``brglm2::brmultinom(type = "AS_mean")``), the maximum
            of the Jeffreys-prior penalised log-likelihood
            :math:`\\ell(\\beta) + \\tfrac12\\log\\det\\mathcal{I}(\\beta)`: finite
            estimates on separated data, first-order bias removed.  Its standard errors come
            from the information at the estimates (as brglm2's); ``llf`` is the ordinary
            log-likelihood there and ``llf_penalized`` the maximised one; ``separation`` does
            not apply.  ``"firth-median"``: median bias reduction (Kenne Pagui, Salvan and
            Sartori 2017; ``brmultinom(type = "AS_median")``), each estimate median unbiased
            to third order, also finite on separated data; ``llf_penalized`` is NaN (it
            maximises nothing).  See :mod:`multilogit.solve.firth`.
        maxiter : int
            Most iterations; if reached, a ``ConvergenceWarning`` is issued and the results say
            ``converged=False``.
        tol : float
            Stop once the Newton step is below ``tol`` relative to the parameters (or the
            decrement below ``tol**2``); the final step is taken, so the result is accurate to
            about ``tol**2``.
        start_params : array-like, optional
            Flat outcome-major, or shaped like ``params`` (terms x outcomes).
        disp : bool
            Print the iteration log (also kept as ``results.iteration_log``).
        callback : callable, optional
            ``callback(params_flat, log_row)`` after each iteration.
        cov_type : {"nonrobust", "HC0", "HC1", "cluster"}, optional
            Covariance of the estimates; ``"nonrobust"`` (the inverse information) unless the
            model has sampling weights, then ``"HC1"``.  See
            :mod:`~multilogit.inference.covariance` for the conventions (small-sample factors of
            Stata and statsmodels).
        cov_kwds : dict, optional
            Options of the covariance type, e.g. ``{"groups": "cid"}`` for ``"cluster"``
            (a column name works with a formula model).
        separation : {"warn", "raise", "ignore"}
            When the data are completely or quasi-completely separated the maximum likelihood
            estimate does not exist.  ``"warn"``: stop early, warn with
            ``PerfectSeparationWarning`` naming the outcomes and terms, report NaN standard
            errors for the diverging coefficients and ``converged=False`` (details in
            ``results.separation``); ``"raise"``: raise ``PerfectSeparationError``;
            ``"ignore"``: no detection.  See :mod:`multilogit.fit.separation`.
        drop_collinear : bool
            A rank-deficient design raises ``DataError`` naming the aliased columns; with
            ``True`` they are dropped as in R (NaN coefficients, a note in the summary).
        hessian : {"auto", "exact"}
            Information matrix of the Newton steps.  ``"auto"``: on large data the early
            iterations use the information of a fixed subsample of rows, then the exact
            information is computed once near the optimum and the fit stops there only if its
            Newton step is within ``tol`` (see :mod:`multilogit.solve.newton`); ``"exact"``: the
            exact information at every iteration.  Either way the estimates are the same MLE
            and the standard errors come from the exact information at the estimates.
        memory_budget : float, optional
            Bytes the dense information may take, all copies (about ``5 * 8 * (J p)**2``);
            default 2 GiB (:data:`~multilogit.solve.conjugate.DEFAULT_MEMORY_BUDGET`).  Beyond
            it the fit takes Newton-CG and returns
            :class:`~multilogit.results.budget.MatrixFreeResults`, whose covariance is an
            operator: standard errors, intervals, Wald tests and marginal effects for chosen
            terms and outcomes by conjugate gradients (``bse_for``, ``conf_int(terms=...,
            outcomes=...)``, ``summary(outcomes=...)``), classical or ``HC0``/``HC1``.
            Cluster covariances, robust ones with sampling weights, bias reduction, penalties
            and constraints need the dense matrices and are refused beyond it with a
            ``FitError`` before any pass over the rows.

        penalty : {None, "l2"}
            ``"l2"``: maximise the log-likelihood less the ridge
            :math:`\\tfrac{\\alpha}{2} Q(\\beta)` (no :math:`1/n`); ``llf`` is then the
            log-likelihood and ``llf_penalized`` the maximised objective.  Standard errors come
            from the inverse of the penalised information (an approximate posterior covariance:
            see ``results.inference``).  L1 and elastic net: :meth:`fit_regularized`.  See
            :mod:`multilogit.fit.penalized`.
        alpha : float
            The ridge's strength, at least 0 (required with ``penalty``).  scikit-learn's
            ``LogisticRegression(C=c)`` is ``alpha = 1 / c``; nnet's ``multinom(decay=d)`` is
            ``alpha = 2 * d`` with ``l2_form="reference", penalize_intercept=True``.
        l2_form : {"symmetric", "reference"}
            ``"symmetric"``: :math:`Q` sums the squares of every outcome's coefficients in the
            symmetric parameterisation (centred over the K outcomes), as scikit-learn and
            glmnet; the fit does not depend on the reference outcome.  ``"reference"``:
            :math:`Q` sums the squares of ``params`` (reference-coded), as nnet.
        penalize_intercept : bool
            Penalise the intercepts too (nnet does; scikit-learn and glmnet do not).
        constraints : str, list of str or (R, q), optional
            Linear equality constraints on the coefficients, as Stata's
            ``mlogit, constraints()`` and VGAM's constraint matrices: strings as in
            :meth:`~multilogit.MultinomialLogitResults.wald_test`
            (``"general:write = vocation:write"``, ``"vocation:female = 0"``, a bare term for
            every equation), or a pair ``(R, q)`` meaning :math:`R\\beta = q` for the flat
            outcome-major parameters (``R`` alone: ``q = 0``).  Maximum likelihood under them
            by Newton in null-space coordinates; constrained standard errors (the covariance
            has rank ``k_params``); the constraints are listed in the summary and
            :attr:`~multilogit.MultinomialLogitResults.constraints`, and
            ``results.lr_test(unconstrained)`` tests them.  A constraint implied by the others
            is dropped with a note; contradictory ones raise ``DataError``.  See
            :mod:`multilogit.fit.constraints`.

        Raises
        ------
        DataError
            More parameters than observations, or aliased columns without ``drop_collinear``.
        """
        if isinstance(penalty, dict):
            # A refit from a penalised fit's recorded options (likelihood-ratio statistics).
            raise ValueError(
                "likelihood-ratio tests and refits are not available for penalised fits: the "
                "penalised likelihood ratio has no chi-square distribution"
            )
        pen_options = None
        if penalty is not None:
            if penalty != "l2":
                extra = " (L1 and elastic net: fit_regularized)" if penalty in PENALTIES else ""
                raise ValueError(f"penalty must be None or 'l2'; got {penalty!r}{extra}")
            pen_options = PenaltyOptions(
                "l2",
                alpha=coerce_alpha(self, alpha),
                l2_form=l2_form,
                penalize_intercept=penalize_intercept,
            )
        elif alpha is not None:
            raise ValueError("alpha is the strength of a penalty: pass penalty='l2' with it")
        cons = parse_constraints(self, constraints)
        options = FitOptions(
            method=method,
            maxiter=maxiter,
            tol=tol,
            hessian=hessian,
            separation=separation,
            drop_collinear=drop_collinear,
            cov_type=self.default_cov_type if cov_type is None else cov_type,
            cov_kwds=cov_kwds,
            penalty=pen_options,
            constraints=None if cons is None else cons.as_dict(),
            **({} if memory_budget is None else {"memory_budget": memory_budget}),
        )
        return pipeline.fit(self, options, start_params, disp, callback)

    def fit_regularized(
        self,
        start_params=None,
        method: str = "l1",
        maxiter: int = 100,
        disp: bool = False,
        callback=None,
        alpha=0,
        trim_mode: str = "auto",
        auto_trim_tol: float = 0.01,
        size_trim_tol: float = 1e-4,
        qc_tol: float = 0.03,
        L1_wt: float = 1.0,
        penalize_intercept: bool = True,
        naive_inference: bool = False,
        tol: float = 1e-8,
        cov_type: str | None = None,
        cov_kwds: dict | None = None,
        hessian: str = "exact",
    ) -> MultinomialLogitResults:
        """L1 (lasso) or elastic-net penalised fit, with statsmodels'
        ``MNLogit.fit_regularized`` semantics.

        Maximises

        .. math::

            \\ell(\\beta) - \\sum_i \\alpha_i \\big(\\text{L1\\_wt}\\,|\\beta_i| +
            \\tfrac{1 - \\text{L1\\_wt}}{2} \\beta_i^2\\big)

        over the reference-coded coefficients by proximal Newton (exact zeros, quadratic
        convergence; every pass over the rows goes through the backend, so it works on data
        of any size Newton works on).  See :mod:`multilogit.fit.penalized` and
        :mod:`multilogit.solve.l1`.

        Parameters
        ----------
        method : {"l1", "elastic_net"}
            ``"l1"`` is ``L1_wt=1``.
        alpha : float or array-like
            Nonnegative weights: a number for every coefficient (the intercepts too unless
            ``penalize_intercept=False``, as statsmodels), or one per coefficient, flat
            outcome-major (statsmodels' order) or shaped like ``params`` (terms x outcomes; a
            DataFrame is aligned on its labels).  Not scaled by :math:`1/n` (statsmodels'
            ``GLM.fit_regularized`` elastic net is, so its alpha is ours over ``nobs``).
        trim_mode : {"auto", "size", "off"}
            After the solve, set coefficients to exactly 0 and give them NaN standard errors as
            statsmodels: ``"auto"`` those whose score is below their weight by more than
            ``auto_trim_tol`` (relative), unless the optimality check fails by more than
            ``qc_tol`` (then nothing, with a ``ConvergenceWarning``); ``"size"`` those below
            ``size_trim_tol`` in size; ``"off"`` none.
        L1_wt : float
            Elastic-net mix, in [0, 1] (``method="elastic_net"``).
        penalize_intercept : bool
            With a scalar ``alpha``, whether the intercepts get it too (statsmodels: yes).
        naive_inference : bool
            Report p-values and confidence intervals from the standard errors of the
            coefficients not trimmed, as statsmodels does.  They ignore that the data chose
            those coefficients, so they are not valid tests; by default they are NaN.
        maxiter, tol, start_params, disp, callback, cov_type, cov_kwds
            As in :meth:`fit`.
        hessian : {"exact"}
            The proximal steps use the exact information (one pass over the rows each).

        Returns
        -------
        MultinomialLogitResults
            ``params`` with exact zeros, ``trimmed`` and ``nnz_params``; ``bse`` from the
            inverse of the smooth part's information on the coefficients not trimmed (NaN for
            the trimmed, as statsmodels); ``aic``/``bic`` count ``nnz_params``;
            ``llf`` the log-likelihood and ``llf_penalized`` the maximised objective.
        """
        if method not in ("l1", "elastic_net"):
            raise ValueError(
                f"method must be 'l1' or 'elastic_net'; got {method!r} (ridge: fit(penalty='l2'))"
            )
        if hessian != "exact":
            raise ValueError(f"fit_regularized uses hessian='exact'; got {hessian!r}")
        pen_options = PenaltyOptions(
            method,
            alpha=coerce_alpha(self, alpha),
            L1_wt=1.0 if method == "l1" else L1_wt,
            penalize_intercept=penalize_intercept,
            trim_mode=trim_mode,
            auto_trim_tol=auto_trim_tol,
            size_trim_tol=size_trim_tol,
            qc_tol=qc_tol,
            naive_inference=naive_inference,
        )
        options = FitOptions(
            maxiter=maxiter,
            tol=tol,
            hessian="exact",
            cov_type=self.default_cov_type if cov_type is None else cov_type,
            cov_kwds=cov_kwds,
            penalty=pen_options,
        )
        return pipeline.fit(self, options, start_params, disp, callback)

    def submodel(self, columns=None, level_map=None, levels=None, ref=None) -> MultinomialLogit:
        """A model on some of this model's columns, or with its outcome recoded: what internal
        refits (drop-one tests, combined outcomes, the IIA test, the fit without aliased
        columns) fit, on the same rows with the same weights.

        Parameters
        ----------
        columns : array of bool or int, optional
            Design columns to keep (default all).
        level_map : array of int, shape (K,), optional
            For each current outcome level, its index among ``levels``, or -1 to leave that
            outcome's rows out (default: the levels as they are).
        levels, ref : optional
            The new outcome levels and the reference among them (default: the current ones).
        """
        cols = np.arange(self.k_exog) if columns is None else np.arange(self.k_exog)[columns]
        levels = self.outcome.levels if levels is None else tuple(levels)
        K = len(self.outcome.levels)
        level_map = np.arange(K) if level_map is None else np.asarray(level_map, dtype=np.int64)
        ref = self.ref if ref is None and self.ref in levels else ref
        outcome = design.Outcome(self.outcome.name, levels, design.match_level(ref, levels, ""))
        names = tuple(self.exog_names[k] for k in cols)
        if self._rows is not None:
            # The same rows, read through a view: other columns, recoded outcomes, and the
            # rows of a left-out outcome at weight zero.
            new_eq = np.where(level_map >= 0, outcome.eq_codes(np.maximum(level_map, 0)), -2)
            y_map = np.empty(K, dtype=np.int64)
            y_map[self.outcome.eq_codes(np.arange(K))] = new_eq
            rows = self._rows.view(cols, y_map, outcome, design.Design(names))
            return type(self)._from_rows(rows)
        if self.offset is not None and (
            not np.array_equal(level_map, np.arange(K))
            or tuple(levels) != tuple(self.outcome.levels)
            or outcome.ref != self.ref
        ):
            raise DataError(
                "this refit recodes the outcome (combining or leaving out outcomes), where the "
                "offsets of the equations have no meaning: it is not available for a model "
                "with an offset"
            )
        new_codes = level_map[self.level_codes]
        sel = new_codes >= 0
        every = bool(sel.all())
        X = self.exog[:, cols] if every else self.exog[sel][:, cols]
        X = np.ascontiguousarray(X)
        X.setflags(write=False)
        row_labels = self.row_labels if every else self.row_labels[sel]
        md = design.ModelData(X, new_codes[sel], outcome, design.Design(names), row_labels, 0)
        new = type(self).__new__(type(self))
        new._setup(md)
        new._source_data = None
        new._source_index = None
        new._source_labelled = False
        new.freq_weights = self.freq_weights[sel]
        new.weights = None if self.weights is None else self.weights[sel]
        new._lik_weights = self._lik_weights[sel]
        if self.offset is not None:
            new.offset, new._offset_spec = self.offset, self._offset_spec
        return new

    def reweighted(self, freq_weights=None, weights=None) -> MultinomialLogit:
        """This model's rows with other weights, without copying the design: what resampling
        covariances refit (a bootstrap draw as frequency weights, a jackknife deletion as a
        zero weight).

        Parameters
        ----------
        freq_weights, weights : array_like, optional
            One entry per row of the model (the rows kept); ``None`` keeps the model's own.

        Raises
        ------
        DataError
            For a model whose rows are not in memory, or weights that are not valid.
        """
        if self._rows is not None:
            raise DataError(
                "resampling refits need the rows in memory; this model reads them from a "
                "file or a cluster"
            )
        new = copy.copy(self)
        new.__dict__.pop("_backend_cache", None)
        new.__dict__.pop("_k_constant_cache", None)
        n = len(self.endog)
        for name, value in (("freq_weights", freq_weights), ("weights", weights)):
            if value is None:
                continue
            arr = _weights.check_weights(np.asarray(value, dtype=np.float64), name)
            if arr.shape != (n,):
                raise DataError(f"{name} must have one entry per row of the model ({n})")
            arr.setflags(write=False)
            setattr(new, name, arr)
        new._lik_weights = _weights.likelihood_weights(new.freq_weights, new.weights)
        if not (new._lik_weights > 0).any():
            raise DataError("every row has zero weight")
        return new

    # -- prediction ------------------------------------------------------------------------------

    def predict(self, params, exog=None, which="prob", offset=None):
        """Predictions at ``params``; see :meth:`MultinomialLogitResults.predict`."""
        return predict(self, self._beta(params), exog, which, offset)

    # -- without the rows (results.remove_data) ------------------------------------------------

    def without_data(self) -> MultinomialLogit:
        """A copy of this model without its rows, for
        :meth:`~multilogit.MultinomialLogitResults.remove_data`: what summaries, tests and
        predictions on new data need is kept (the design state, the outcome coding, ``nobs``,
        the outcome counts, ``k_constant``); anything that reads the estimation rows raises a
        :class:`DataError` saying so.  This model is not changed."""
        new = ModelWithoutData.__new__(ModelWithoutData)
        new.__dict__.update(
            {k: v for k, v in self.__dict__.items() if k not in ModelWithoutData.ROW_STATE}
        )
        new._kept = {
            "nobs": self.nobs,
            "n_rows": self.n_rows,
            "outcome_counts": np.asarray(self.outcome_counts, dtype=np.float64),
            "k_constant": self.k_constant,
        }
        # Whether there were sampling weights matters to the summary and the default
        # covariance; their values are row data.
        new.weights = None if self.weights is None else np.full(0, np.nan)
        return new

    def __repr__(self) -> str:
        src = f"formula={self.formula!r}" if self.formula else f"{self.k_exog} columns"
        return (
            f"<MultinomialLogit {src}: {len(self.outcomes)} outcomes, ref={self.ref!r}, "
            f"n={self.n_rows}>"
        )


class ModelWithoutData(MultinomialLogit):
    """A :class:`MultinomialLogit` whose rows were removed (:meth:`MultinomialLogit.
    without_data`, used by :meth:`MultinomialLogitResults.remove_data`).

    Descriptive attributes, ``nobs``, ``k_constant``, ``outcome_counts`` and predictions on new
    data work; everything that reads the estimation rows raises :class:`DataError`.
    """

    #: The per-row state of a model (arrays in memory, or the backend of larger data).
    ROW_STATE = frozenset(
        (
            "exog",
            "endog",
            "level_codes",
            "freq_weights",
            "_lik_weights",
            "row_labels",
            "_data",
            "_source_data",
            "_source_index",
            "_backend_cache",
            "_k_constant_cache",
            "_rows",
            "weights",
            "offset",
        )
    )

    def _removed(self, name: str = "the estimation rows"):
        raise DataError(
            f"the estimation data were removed by remove_data(): {name} is not available; "
            "pass new data to predict (exog=...), or keep a results object that has its data"
        )

    def __getattr__(self, name):
        if name in ModelWithoutData.ROW_STATE:
            self._removed(repr(name))
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    backend = property(lambda self: self._removed("the backend of the rows"))
    rows_frame = None
    is_in_memory = True
    nobs = property(lambda self: float(self._kept["nobs"]))
    n_rows = property(lambda self: int(self._kept["n_rows"]))
    outcome_counts = property(lambda self: self._kept["outcome_counts"].copy())
    k_constant = property(lambda self: int(self._kept["k_constant"]))

    def estimation_frame(self):
        self._removed("estimation_frame()")

    source_columns = property(lambda self: self._removed("source_columns"))
    source_column_stats = property(lambda self: self._removed("source_column_stats"))

    def with_reference(self, ref) -> ModelWithoutData:
        """The same model with ``ref`` as reference outcome (for ``repivot``)."""
        new = copy.copy(self)
        new.outcome = self.outcome.with_ref(ref)
        return new

    def without_data(self) -> ModelWithoutData:
        return self

    def group_codes(self, groups):
        self._removed("the cluster ids of the rows")

    def submodel(self, *args, **kwargs):
        self._removed("submodel()")

    def fit(self, *args, **kwargs):
        self._removed("fit()")

    def __repr__(self) -> str:
        return super().__repr__().replace("<MultinomialLogit ", "<MultinomialLogit (no data) ", 1)


def mnlogit(
    formula: str,
    data,
    ref=None,
    missing="raise",
    eval_env=0,
    freq_weights=None,
    weights=None,
    groups=None,
    offset=None,
):
    """Multinomial logit from a formula: ``mnlogit("prog ~ C(ses) + write", df)``.

    Same as :meth:`MultinomialLogit.from_formula`; call ``.fit()`` on the result.
    """
    if isinstance(eval_env, int):
        eval_env += 1
    return MultinomialLogit.from_formula(
        formula,
        data,
        ref=ref,
        missing=missing,
        eval_env=eval_env,
        freq_weights=freq_weights,
        weights=weights,
        groups=groups,
        offset=offset,
    )


def _with_offset(c, beta):
    """``(X, y, weights, beta)`` of a chunk for a kernel, the chunk's offsets included."""
    X, b = augmented(c.X, c.offset, beta)
    return X, c.y, c.weights, b


def _source_index(endog, exog) -> pd.Index | None:
    """Index of the data as given to the constructor (as :func:`design.from_arrays` reads it)."""
    for obj in (exog, endog):
        if isinstance(obj, pd.Series | pd.DataFrame):
            return obj.index
    n = len(exog) if hasattr(exog, "__len__") else None
    return pd.RangeIndex(n) if n is not None else None
