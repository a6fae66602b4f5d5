"""Results of a multinomial logit fit: immutable, with derived statistics cached.

Conventions
-----------
``params`` is a DataFrame with one row per design term and one column per non-reference outcome
(in level order).  Everything flat -- ``cov_params()``, ``conf_int()``, the internal vector -- is
ordered outcome-major and indexed by ``(outcome, term)``: all terms of the first non-reference
outcome, then the next.  This is the C-order flattening of ``params.T``.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import pandas as pd

from ..engine.memory import predict_probabilities
from ..engine.offset import augmented
from ..exceptions import DataError
from ..inference import distributions as stats
from ..inference.covariance import get_estimator
from ..inference.prediction import predict

__all__ = ["MultinomialLogitResults"]


class MultinomialLogitResults:
    """Fitted multinomial logit.

    Not created directly: returned by :meth:`MultinomialLogit.fit`.  Attributes mirror
    statsmodels' names.  The object never changes after creation; another covariance type or
    reference outcome gives a new object.
    """

    def __init__(self, model, state, cov, cov_estimator):
        self._init_common(model, state, cov_estimator)
        self._cov = np.asarray(cov, dtype=np.float64)
        self._cov.setflags(write=False)

    def _init_common(self, model, state, cov_estimator) -> None:
        """Everything but the covariance (a fit beyond the memory budget holds an operator
        instead: :class:`~multilogit.results.budget.MatrixFreeResults`)."""
        self.model = model
        self._beta = np.asarray(state.beta, dtype=np.float64).reshape(model.J, model.k_exog)
        self._beta.setflags(write=False)
        self._state = state
        self._cov_estimator = cov_estimator
        self.converged = bool(state.converged)
        self.n_iter = int(state.n_iter)
        self.iteration_log = state.log
        self.fit_message = state.message
        self.fit_options = dict(state.options)
        #: :class:`~multilogit.fit.separation.Separation` when the data are separated, else
        #: None.  Carried by the state, so results derived without refitting keep it.
        sep = state.separation
        self.separation = None if sep is None else sep.for_model(model, state.aliased)
        self._aliased = state.aliased
        self._summary_notes = tuple(state.notes)

    # -- labels ------------------------------------------------------------------------------

    @property
    def ref(self):
        """The reference (pivot) outcome label."""
        return self.model.ref

    @property
    def outcomes(self) -> list:
        """All K outcome labels, in order."""
        return list(self.model.outcomes)

    @property
    def cov_type(self) -> str:
        return self._cov_estimator.name

    @property
    def cov_kwds(self) -> dict:
        return dict(self._cov_estimator.kwds)

    @cached_property
    def _flat_index(self) -> pd.MultiIndex:
        return pd.MultiIndex.from_product(
            [list(self.model.eq_outcomes), list(self.model.exog_names)], names=["outcome", "term"]
        )

    def _frame(self, values) -> pd.DataFrame:
        return pd.DataFrame(
            np.array(values).reshape(self.model.J, self.model.k_exog).T,
            index=pd.Index(self.model.exog_names, name="term"),
            columns=pd.Index(self.model.eq_outcomes, name=self.model.endog_names),
        )

    # -- estimates and inference ---------------------------------------------------------------

    # The public frames are rebuilt from read-only arrays at each access: handing out one cached
    # DataFrame would let a caller's edit change the results.

    @property
    def params(self) -> pd.DataFrame:
        """Coefficients: rows are terms, columns the non-reference outcomes."""
        return self._frame(_masked(self._beta.ravel(), self._nan_params))

    def cov_params(self, r_matrix=None, column=None) -> pd.DataFrame:
        """Covariance of the parameters, indexed by ``(outcome, term)`` on both axes.

        Parameters
        ----------
        r_matrix : array-like, shape (r, J p), optional
            :math:`R\\,C R^\\top` instead (statsmodels' ``r_matrix``), rows and columns
            numbered as the rows of ``R``.
        column : array of int or of ``(outcome, term)`` pairs, optional
            The block of those coefficients only (statsmodels' ``column``).

        Beyond the memory budget only these two forms exist; each costs a conjugate-gradient
        solve per row of ``R`` or per coefficient (see :mod:`multilogit.results.budget`).
        """
        if r_matrix is not None and column is not None:
            raise ValueError("give r_matrix or column, not both")
        if r_matrix is not None:
            R = np.atleast_2d(np.asarray(r_matrix, dtype=np.float64))
            if R.ndim != 2 or R.shape[1] != self._beta.size:
                raise DataError(
                    f"r_matrix must have {self._beta.size} columns (one per parameter, in the "
                    f"order of cov_params()); got shape {R.shape}"
                )
            out = self._delta_form(R)
            return pd.DataFrame(out)
        if column is not None:
            idx = self._column_positions(column)
            cols = self._cov_columns(idx)[idx, :]
            if self._nan_cov is not None:
                bad = self._nan_cov[idx]
                cols = cols.copy()
                cols[bad, :] = np.nan
                cols[:, bad] = np.nan
            index = self._flat_index[idx]
            return pd.DataFrame(cols, index=index, columns=index)
        cov = self._cov.copy()
        if self._nan_cov is not None:
            cov[self._nan_cov, :] = np.nan
            cov[:, self._nan_cov] = np.nan
        return pd.DataFrame(cov, index=self._flat_index, columns=self._flat_index)

    # Dropped (aliased) coefficients are 0 internally and NaN in public; diverging ones under
    # separation keep their value but have NaN standard errors.
    @cached_property
    def _nan_params(self) -> np.ndarray | None:
        if self._aliased is None:
            return None
        return np.tile(np.asarray(self._aliased, dtype=bool), self.model.J)

    @cached_property
    def _nan_cov(self) -> np.ndarray | None:
        masks = [m for m in (self._nan_params, self._trimmed) if m is not None]
        if self.separation is not None:
            masks.append(np.asarray(self.separation.params, dtype=bool).ravel())
        return np.logical_or.reduce(masks) if masks else None

    @cached_property
    def _delta_cov(self) -> np.ndarray:
        """Covariance for delta-method quantities (predictions, effects, Wald tests).

        Dropped (aliased) coefficients are fixed at 0, so they contribute no variance: their
        rows and columns are 0 here, not NaN.  Coefficients affected by separation stay NaN, so
        anything that depends on them is reported as not meaningful.
        """
        cov = self._cov.copy()
        if self.separation is not None:
            bad = np.asarray(self.separation.params, dtype=bool).ravel()
            if self._nan_params is not None:
                bad &= ~self._nan_params
            cov[bad, :] = np.nan
            cov[:, bad] = np.nan
        if self._trimmed is not None:
            # Trimmed coefficients are fixed at 0, as dropped ones.
            cov[self._trimmed, :] = 0.0
            cov[:, self._trimmed] = 0.0
        return _readonly(cov)

    @cached_property
    def _bse_flat(self) -> np.ndarray:
        se = np.sqrt(np.diag(self._cov))
        if self._fixed is not None:
            # Fixed by the constraints: no sampling variation (rounding aside).
            se = np.where(self._fixed, 0.0, se)
        return _readonly(_masked(se, self._nan_cov))

    @cached_property
    def _z_flat(self) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            z = self._beta.ravel() / self._bse_flat
        if self._fixed is not None:
            z = np.where(self._fixed, np.nan, z)
        return _readonly(z)

    # -- linear constraints (fit(constraints=...)) ---------------------------------------------

    @cached_property
    def _constraints(self) -> tuple[np.ndarray, np.ndarray, tuple] | None:
        cons = self._state.options.get("constraints")
        if cons is None:
            return None
        R = np.atleast_2d(np.asarray(cons["R"], dtype=np.float64))
        return (
            _readonly(R),
            _readonly(np.asarray(cons["q"], dtype=np.float64)),
            tuple(cons["labels"]),
        )

    @property
    def constraints(self) -> pd.DataFrame | None:
        """The linear constraints :math:`R\\beta = q` of a constrained fit
        (``fit(constraints=...)``), without those dropped as redundant: one row per
        constraint (indexed by the constraint as written), a column per coefficient
        (``(outcome, term)``, the order of ``cov_params()``) holding ``R`` and a last column
        ``"q"``; ``None`` for a fit without constraints."""
        if self._constraints is None:
            return None
        R, q, labels = self._constraints
        cols = pd.MultiIndex.from_tuples([*self._flat_index, ("q", "")])
        return pd.DataFrame(
            np.column_stack([R, q]), index=pd.Index(labels, name="constraint"), columns=cols
        )

    @property
    def _n_constraints(self) -> int:
        return 0 if self._constraints is None else int(self._constraints[0].shape[0])

    @cached_property
    def _fixed(self) -> np.ndarray | None:
        """Coefficients the constraints fix at a value (no free direction moves them)."""
        if self._constraints is None:
            return None
        from ..engine.constrained import null_space

        T = null_space(self._constraints[0])
        return _readonly(np.linalg.norm(T, axis=1) <= 1e-10)

    @cached_property
    def _null_nested(self) -> bool:
        """Whether the intercept-only model satisfies the constraints (whatever its
        intercepts): only then is it nested in the constrained model."""
        if self._constraints is None:
            return True
        R, q, _ = self._constraints
        if np.any(q != 0):
            return False
        try:
            ic = self.model._intercept_col()
        except DataError:
            ic = None
        if ic is None:
            return False
        cols = ic + self.model.k_exog * np.arange(self.model.J)
        return bool(np.all(R[:, cols] == 0))

    @cached_property
    def _p_flat(self) -> np.ndarray:
        if not self._classical_intervals:
            return _readonly(np.full(self._beta.size, np.nan))
        return _readonly(2.0 * stats.norm.sf(np.abs(self._z_flat)))

    # -- subsets: what a fit beyond the memory budget can compute -----------------------------

    def _cov_columns(self, idx: np.ndarray) -> np.ndarray:
        """Columns ``idx`` of the covariance, shape ``(J p, len(idx))``."""
        return self._cov[:, idx]

    def _delta_form(self, G: np.ndarray, used: np.ndarray | None = None) -> np.ndarray:
        """:math:`G V G^\\top` with ``V`` the covariance of delta-method quantities
        (``_delta_cov``); with a mask ``used``, ``G`` has one column per used coefficient."""
        if used is None:
            return G @ self._delta_cov @ G.T
        return G @ self._delta_cov[np.ix_(used, used)] @ G.T

    def _se_at(self, idx: np.ndarray) -> np.ndarray:
        return self._bse_flat[idx]

    def _stats_at(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Standard errors, z and p-values of the flat coefficients ``idx``."""
        idx = np.asarray(idx, dtype=np.int64)
        se = self._se_at(idx)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = self._beta.ravel()[idx] / se
        if self._fixed is not None:
            z = np.where(self._fixed[idx], np.nan, z)
        if self._classical_intervals:
            p = 2.0 * stats.norm.sf(np.abs(z))
        else:
            p = np.full(idx.size, np.nan)
        return se, z, p

    def _column_positions(self, column) -> np.ndarray:
        """Flat positions of ``column``: integers, or ``(outcome, term)`` pairs."""
        items = [column] if isinstance(column, tuple | int | np.integer) else list(column)
        q = self._beta.size
        out = []
        for item in items:
            if isinstance(item, tuple):
                if item not in self._flat_index:
                    raise DataError(
                        f"unknown coefficient {item!r}: give (outcome, term) pairs with an "
                        f"outcome among {list(self.model.eq_outcomes)!r} and a term among "
                        f"{list(self.model.exog_names)!r}"
                    )
                out.append(self._flat_index.get_loc(item))
            elif isinstance(item, int | np.integer) and 0 <= int(item) < q:
                out.append(int(item))
            else:
                raise DataError(
                    f"column entries must be flat positions in 0..{q - 1} or (outcome, term) "
                    f"pairs; got {item!r}"
                )
        return np.asarray(out, dtype=np.int64)

    def _subset(self, terms=None, outcomes=None) -> np.ndarray:
        """Flat (outcome-major) positions of ``terms`` in the equations of ``outcomes``
        (default all of either)."""
        from .subsets import subset_positions

        return subset_positions(self.model, terms, outcomes)

    def bse_for(self, terms=None, outcomes=None) -> pd.DataFrame:
        """Standard errors of a subset, shaped like ``params`` restricted to it: ``terms``
        (design column names, or formula terms such as ``"C(ses)"``) in the equations of
        ``outcomes`` (non-reference outcome labels); default all of either.

        The same numbers as ``bse.loc[terms, outcomes]``; beyond the memory budget, where
        ``bse`` is not available, one conjugate-gradient solve per coefficient.
        """
        idx = self._subset(terms, outcomes)
        se = self._se_at(idx)
        names, outs = _labels_of(self, idx)
        frame = pd.Series(se, index=pd.MultiIndex.from_arrays([outs, names])).unstack(0)
        frame = frame.reindex(index=_unique(names), columns=_unique(outs))
        frame.index.name = "term"
        frame.columns.name = self.model.endog_names
        return frame

    @property
    def bse(self) -> pd.DataFrame:
        """Standard errors, shaped like ``params``."""
        return self._frame(self._bse_flat)

    @property
    def tvalues(self) -> pd.DataFrame:
        """z statistics (coefficient / standard error), shaped like ``params``."""
        return self._frame(self._z_flat)

    @property
    def pvalues(self) -> pd.DataFrame:
        """Two-sided p-values of the z statistics (standard normal)."""
        return self._frame(self._p_flat)

    def conf_int(
        self, alpha: float = 0.05, method: str = "wald", terms=None, outcomes=None
    ) -> pd.DataFrame:
        """Confidence intervals, indexed by ``(outcome, term)``, columns lower and upper.

        Parameters
        ----------
        alpha : float
            1 - the coverage, in (0, 1).
        method : {"wald", "profile"}
            ``"wald"``: :math:`\\hat\\beta \\pm z_{1-\\alpha/2}\\,\\mathrm{se}` with the
            fit's covariance type.  ``"profile"``: profile-likelihood intervals, the
            coefficients where twice the drop of the profile log-likelihood stays within the
            :math:`\\chi^2_1` quantile (R's ``confint`` on a ``glm``; for ``method="firth"``
            fits the profile penalised likelihood, as ``logistf``), with infinite bounds where
            a separated maximum-likelihood fit's profile never reaches it; see
            :mod:`multilogit.inference.profile`.  They are likelihood-based, so the covariance
            type (robust, cluster) does not change them, as in R.
        terms : str, tuple or list, optional
            The coefficients to compute, default all.  ``method="profile"``: term names or
            ``(outcome, term)`` pairs (each bound costs several constrained refits).
            ``method="wald"``: term names (design columns or formula terms).
        outcomes : list, optional
            ``method="wald"`` only: the equations (non-reference outcomes) of the rows;
            default all.  Beyond the memory budget a Wald interval costs a conjugate-gradient
            solve per coefficient, and ``terms`` or ``outcomes`` must be given.
        """
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1); got {alpha!r}")
        if method == "profile":
            from ..inference.profile import profile_conf_int

            if self._constraints is not None:
                raise DataError(
                    "profile-likelihood intervals are not available for a constrained fit "
                    "(fit(constraints=...)); use method='wald'"
                )

            if outcomes is not None:
                raise ValueError(
                    "outcomes applies to method='wald'; for profile intervals give "
                    "(outcome, term) pairs in terms"
                )
            return profile_conf_int(self, alpha, terms)
        if method != "wald":
            raise ValueError(f"method must be 'wald' or 'profile'; got {method!r}")
        q = stats.norm.ppf(1.0 - alpha / 2.0) if self._classical_intervals else np.nan
        if terms is None and outcomes is None:
            b, se, index = self._beta.ravel(), self._bse_flat, self._flat_index
        else:
            idx = self._subset(terms, outcomes)
            b, se, index = self._beta.ravel()[idx], self._se_at(idx), self._flat_index[idx]
        return pd.DataFrame({"lower": b - q * se, "upper": b + q * se}, index=index)

    # -- likelihood statistics ----------------------------------------------------------------

    @property
    def llf(self) -> float:
        """Log-likelihood at the estimates (for a bias-reduced fit too: the ordinary one, as
        brglm2's ``logLik``; the maximised one is :attr:`llf_penalized`)."""
        return float(self._state.llf + self._state.penalty)

    @property
    def llf_penalized(self) -> float:
        """The objective the fit maximised: :attr:`llf` for maximum likelihood; for
        ``method="firth"`` the penalised log-likelihood
        :math:`\\ell(\\hat\\beta) + \\tfrac12 \\log\\det \\mathcal{I}(\\hat\\beta)`; for a
        penalised fit (:attr:`penalty`) the log-likelihood less the penalty; NaN for
        ``method="firth-median"``, which solves an adjusted score that is the gradient of
        nothing."""
        if self.method == "firth-median":
            return float("nan")
        return float(self._state.llf)

    # -- penalised fits -----------------------------------------------------------------------

    @property
    def penalty(self) -> dict | None:
        """The penalty of a penalised fit (``fit(penalty="l2")``, ``fit_regularized``) as its
        options (``name``, ``alpha``, ...; see :mod:`multilogit.fit.penalized`); ``None``
        for maximum likelihood and Firth fits."""
        pen = self._state.options.get("penalty")
        if pen is None:
            return None
        pen = dict(pen)
        if isinstance(pen.get("alpha"), list | tuple):  # a saved fit reads back a list
            pen["alpha"] = tuple(float(a) for a in pen["alpha"])
        return pen

    @property
    def _sparse(self) -> bool:
        pen = self._state.options.get("penalty")
        if pen is None or pen.get("name") == "l2" or float(pen.get("L1_wt", 1)) == 0:
            return False
        # With every weight 0 nothing is selected: the fit is maximum likelihood.
        return bool(np.any(np.asarray(pen.get("alpha", 0), dtype=np.float64) > 0))

    @property
    def _classical_intervals(self) -> bool:
        """Whether p-values and confidence intervals are reported: not for an L1 or elastic
        net fit (they would ignore the selection) unless ``naive_inference`` asked."""
        if not self._sparse:
            return True
        return bool(self._state.options["penalty"].get("naive_inference", False))

    @cached_property
    def _trimmed(self) -> np.ndarray | None:
        if self._state.trimmed is not None:
            return _readonly(np.asarray(self._state.trimmed, dtype=bool).ravel().copy())
        if not self._sparse:
            return None
        # A loaded fit keeps the mask as the NaN standard errors of its zeros.
        return _readonly(np.isnan(np.diag(self._cov)) & (self._beta.ravel() == 0))

    @property
    def trimmed(self) -> pd.DataFrame | None:
        """For an L1 or elastic-net fit, the coefficients set to 0 (shaped like ``params``;
        statsmodels' ``trimmed``); ``None`` otherwise."""
        pen = self._state.options.get("penalty")
        if pen is None or pen.get("name") == "l2":
            return None
        if self._trimmed is None:
            return self._frame(np.zeros(self._beta.size, dtype=bool))
        return self._frame(self._trimmed)

    @property
    def nnz_params(self) -> int:
        """Coefficients not trimmed (statsmodels' ``nnz_params``; :attr:`k_params`)."""
        return self.k_params

    @property
    def inference(self) -> str:
        """What the standard errors, z statistics and p-values mean for this fit."""
        pen = self.penalty
        if pen is None:
            return "classical: Wald inference from the covariance of the estimates"
        if pen["name"] == "l2":
            return (
                "approximate Bayesian: standard errors from the inverse penalized information "
                "(the posterior under the Gaussian prior the ridge is); intervals are "
                "approximate credible intervals, p-values not classical tests"
            )
        if self._classical_intervals:
            return (
                "naive: standard errors of the coefficients not trimmed, as if the selected "
                "set were fixed; p-values and intervals ignore the selection"
            )
        return (
            "none by default: standard errors of the coefficients not trimmed, as if the "
            "selected set were fixed; no p-values or intervals (naive_inference=True gives "
            "them, ignoring the selection)"
        )

    @property
    def method(self) -> str:
        """How the estimates were obtained: ``"newton"`` (maximum likelihood) or ``"firth"``
        (mean bias reduction, Jeffreys-prior penalised likelihood)."""
        return str(self._state.options.get("method", "newton"))

    @cached_property
    def llnull(self) -> float:
        """Log-likelihood of the intercept-only model: :math:`\\sum_k n_k \\log(n_k/n)`.

        NaN when no constant is in the column span of the design (``model.k_constant == 0``,
        e.g. ``y ~ 0 + x``): the intercept-only model is then not nested in the model, so
        :attr:`llr`, :attr:`llr_pvalue` and the pseudo R-squared measures built on it would
        compare non-nested models, and they are NaN too (the summary shows them as not
        available and says why).  So is it for a constrained fit whose constraints the
        intercept-only model does not satisfy (a constraint with a nonzero right-hand side or
        involving an intercept).  statsmodels' ``MNLogit`` reports the intercept-only
        log-likelihood regardless, with a p-value of no valid test.  A constant in the span
        that is not a column, such as the full set of dummies of ``y ~ 0 + C(f)``, counts."""
        if self.k_constant == 0 or not self._null_nested:
            return np.nan
        if getattr(self.model, "_offset_spec", None) is not None:
            return self._llnull_with_offset()
        n_k = self.model.outcome_counts
        share = n_k / n_k.sum()
        pos = n_k > 0
        return float(np.sum(n_k[pos] * np.log(share[pos])))

    def _llnull_with_offset(self) -> float:
        """The intercept-only model with the offset has no closed form: it is fitted (with
        this fit's options but the covariance, penalty and constraints)."""
        ic = self.model._intercept_col()
        if ic is None:
            return np.nan
        skip = ("penalty", "constraints")
        options = {
            k: v for k, v in self.fit_options.items() if not k.startswith("cov_") and k not in skip
        }
        options["drop_collinear"] = False
        return float(self.model.submodel(columns=[ic]).fit(**options).llf)

    @property
    def k_constant(self) -> int:
        """1 when a constant is in the column span of the design, else 0
        (``model.k_constant``; for a model read back without its data, from the ``df_model``
        it kept, ``J (p - k_constant)``)."""
        k = getattr(self.model, "k_constant", None)
        if k is None:
            k = round(self.model.k_exog - self.model.df_model / self.model.J)
        return int(k)

    @property
    def nobs(self) -> float:
        """Number of observations (the sum of frequency weights when given)."""
        return self.model.nobs

    @property
    def df_model(self) -> float:
        """Slope parameters: ``(p - 1) (K - 1)`` with a constant in the column span
        (``model.k_constant``), else ``p (K - 1)``; aliased columns are not counted."""
        return float(
            self.model.df_model
            - self.model.J * self._n_aliased
            - self._n_trimmed
            - self._n_constraints
        )

    @property
    def df_resid(self) -> float:
        return float(self.nobs - self.k_params)

    @property
    def k_params(self) -> int:
        """Number of estimated parameters, ``(K - 1) p`` (less any aliased, and for an L1 fit
        the trimmed coefficients, as statsmodels' ``nnz_params``)."""
        return (
            self.model.J * (self.model.k_exog - self._n_aliased)
            - self._n_trimmed
            - self._n_constraints
        )

    @property
    def _n_trimmed(self) -> int:
        return 0 if self._trimmed is None else int(np.sum(self._trimmed))

    @property
    def _n_aliased(self) -> int:
        return 0 if self._aliased is None else int(np.sum(self._aliased))

    @cached_property
    def llr(self) -> float:
        """Likelihood-ratio statistic against the intercept-only model."""
        return 2.0 * (self.llf - self.llnull)

    @cached_property
    def llr_pvalue(self) -> float:
        """P-value of :attr:`llr` on a chi-squared distribution with :attr:`df_model` degrees of
        freedom, as statsmodels; NaN without a constant in the model (see :attr:`llnull`)."""
        return float(stats.chi2.sf(self.llr, self.df_model)) if self.df_model > 0 else np.nan

    @cached_property
    def prsquared(self) -> float:
        """McFadden's pseudo R-squared, :math:`1 - \\ell / \\ell_0`."""
        return 1.0 - self.llf / self.llnull

    @property
    def deviance(self) -> float:
        return -2.0 * self.llf

    @cached_property
    def aic(self) -> float:
        return -2.0 * self.llf + 2.0 * self.k_params

    @cached_property
    def bic(self) -> float:
        return -2.0 * self.llf + np.log(self.nobs) * self.k_params

    # -- predictions --------------------------------------------------------------------------

    @property
    def fittedvalues(self) -> pd.DataFrame:
        """Fitted probabilities on the estimation sample."""
        return self.predict()

    def predict(self, exog=None, which: str = "prob", offset=None):
        """Predictions on the estimation data or on new data (with their ``offset`` for a
        model with an offset); see :func:`predict`."""
        return predict(self.model, self._beta, exog, which, offset)

    # -- persistence (issue 5) ----------------------------------------------------------------

    def save(self, path, include_data: bool = False, key: bytes | str | None = None) -> None:
        """Save to one ``.npz`` file (no pickle); read back with :func:`multilogit.load`.

        The format is described in :mod:`multilogit.results.persistence`.  ``include_data`` also
        stores the estimation data; ``key`` signs the file (HMAC-SHA-256).
        """
        from .persistence import save

        save(self, path, include_data=include_data, key=key)

    # -- marginal effects, predictions with uncertainty, plots (thin wrappers) -----------------

    def get_margeff(
        self, at="overall", method: str = "dydx", atexog=None, dummy: bool = False, count=False
    ):
        """Marginal effects on every outcome's probability; see
        :func:`~multilogit.inference.margins.get_margeff` (arguments in statsmodels' order).

        ``at`` with lists of values (``{"write": [30, 50, 70]}``) or a list of dicts gives the
        effects at each scenario in one table
        (:func:`~multilogit.inference.effects_at.get_margeff_at`);
        ``at="all"`` the effects at every row, without inference, as statsmodels
        (:func:`~multilogit.inference.margeff_rows.get_margeff_rows`).
        """
        self._no_offset("marginal effects")
        from ..inference.predictive_margins import is_grid

        special = isinstance(at, str) and at.lower() == "all" or is_grid(at)
        if special and atexog is not None:
            raise ValueError(
                "atexog goes with at='overall', 'mean' or 'median'; put the fixed values in the "
                "dicts of at= instead"
            )
        if isinstance(at, str) and at.lower() == "all":
            from ..inference.margeff_rows import get_margeff_rows

            return get_margeff_rows(self, method=method, dummy=dummy, count=count)
        if is_grid(at):
            from ..inference.effects_at import get_margeff_at

            return get_margeff_at(self, at, method=method, dummy=dummy, count=count)
        from ..inference.margins import get_margeff

        return get_margeff(self, at=at, method=method, atexog=atexog, dummy=dummy, count=count)

    def get_margins(self, variables=None, at=None, over=None, atmeans: bool = False, by=None):
        """Predictive margins (average predicted probabilities) at the levels of
        ``variables`` and the values of ``at``, within ``over`` (or ``by``) groups
        (``atmeans``: at the means instead); see
        :func:`~multilogit.inference.predictive_margins.get_margins`."""
        self._no_offset("predictive margins")
        from ..inference.predictive_margins import get_margins

        return get_margins(self, variables, at=at, over=over, atmeans=atmeans, by=by)

    def plot_margins(self, variables=None, at=None, over=None, atmeans=False, **kwargs):
        """Plot of the predictive margins of :meth:`get_margins` (Stata's ``marginsplot``);
        keywords go to :func:`multilogit.results.margins_plot.plot_margins`."""
        from .margins_plot import plot_margins

        margins = self.get_margins(variables=variables, at=at, over=over, atmeans=atmeans)
        return plot_margins(margins, **kwargs)

    def get_prediction(self, exog=None, offset=None):
        """Probabilities with delta-method errors; see
        :func:`~multilogit.inference.prediction.get_prediction`."""
        from ..inference.prediction import get_prediction

        return get_prediction(self, exog, offset)

    def plot_predicted(self, term, at=None, kind: str = "line", **kwargs):
        """Predicted probabilities over ``term``; see
        :func:`~multilogit.results.plotting.plot_predicted`."""
        self._no_offset("plot_predicted")
        from .plotting import plot_predicted

        return plot_predicted(self, term, at=at, kind=kind, **kwargs)

    def plot_coefficients(self, rrr: bool = False, **kwargs):
        """Forest plot of coefficients or RRRs; see
        :func:`~multilogit.results.plotting.plot_coefficients`."""
        from .plotting import plot_coefficients

        return plot_coefficients(self, rrr=rrr, **kwargs)

    def _no_offset(self, what: str) -> None:
        if getattr(self.model, "_offset_spec", None) is not None:
            raise DataError(
                f"{what} of a model with an offset are not available: they evaluate the model "
                "at rows built from typical or changed values, which have no offsets; use "
                "predict or get_prediction with the offsets of the rows you want"
            )

    # -- display ------------------------------------------------------------------------------

    def summary(
        self,
        alpha: float = 0.05,
        title: str | None = None,
        rrr: bool = False,
        labels: dict | None = None,
        outcome_labels: dict | None = None,
        short_names: bool = False,
        outcomes=None,
        compact: bool | None = None,
    ):
        """Summary table: a statsmodels ``Summary`` (text, ``_repr_html_``, ``as_latex()``).

        ``outcomes`` (a list of non-reference outcome labels) shows those equations' blocks
        only.  ``compact`` shows one row per term instead, with the outcomes where the term's
        coefficient is largest in absolute z (in absolute value, without standard errors,
        beyond the memory budget) and how many equations reject at ``alpha``; the default
        is compact when there are more than
        :data:`~multilogit.results.summary.COMPACT_OUTCOMES` equations and no ``outcomes``
        are given.  See :func:`~multilogit.results.summary.build_summary`.

        With ``rrr=True`` the coefficient blocks show relative-risk ratios ``exp(coef)`` with
        delta-method standard errors and exponentiated confidence limits (Stata's
        ``mlogit, rrr``); see :meth:`~multilogit.MultinomialLogitResults.rrr`.  ``labels``
        (``{term or variable: label}``), ``outcome_labels`` (``{outcome: label}``) and
        ``short_names`` (``ses: middle`` for ``C(ses)[T.middle]``) change how terms and
        outcomes are printed; see
        :class:`~multilogit.data.labelling.TermLabels`.
        """
        from .summary import build_summary

        return build_summary(
            self,
            alpha=alpha,
            title=title,
            rrr=rrr,
            labels=labels,
            outcome_labels=outcome_labels,
            short_names=short_names,
            outcomes=outcomes,
            compact=compact,
        )

    # --- inference (robust covariances, tests, reparameterisations, fit statistics) ----------
    # Thin wrappers: the work is done in covariance.py, hypothesis.py and reparam.py.

    def get_robustcov_results(self, cov_type: str = "HC1", **cov_kwds):
        """New results with another covariance type (the estimates are not refitted).

        Parameters
        ----------
        cov_type : {"nonrobust", "HC0", "HC1", "cluster"}
            See :mod:`~multilogit.inference.covariance` for the formulas and small-sample factors
            (``HC1`` is Stata's ``vce(robust)``; ``cluster`` uses ``G/(G-1)`` unless
            ``df_correction="statsmodels"``).
        **cov_kwds
            Options, e.g. ``groups=`` (an array, or a column name with a formula model).
        """
        est = get_estimator(cov_type, cov_kwds)
        cov = est.compute(self.model, self._state)
        return type(self)(self.model, self._state, cov, est)

    @property
    def n_groups(self) -> int | None:
        """Number of clusters of a ``cluster`` covariance (else ``None``)."""
        return getattr(self._cov_estimator, "n_groups", None)

    def wald_test(
        self,
        constraints,
        q=None,
        *,
        cov_p=None,
        invcov=None,
        use_f: bool | None = None,
        df_constraints: int | None = None,
        scalar: bool | None = None,
    ):
        """Wald test of linear constraints; see
        :func:`~multilogit.inference.hypothesis.wald_test`.

        With any of statsmodels' options (``scalar``, ``use_f``, ``cov_p``, ``invcov``,
        ``df_constraints``; keywords only, since the second argument is ``q``) the result is
        statsmodels' ``ContrastResults``, as :func:`multilogit.inference.contrasts.wald_test`.
        """
        sm_options = (cov_p, invcov, use_f, df_constraints, scalar)
        if any(o is not None for o in sm_options):
            from ..inference import contrasts

            return contrasts.wald_test(
                self,
                constraints,
                q,
                cov_p=cov_p,
                invcov=invcov,
                use_f=use_f,
                df_constraints=df_constraints,
                scalar=True if scalar is None else scalar,
            )
        from ..inference.hypothesis import wald_test

        return wald_test(self, constraints, q)

    def t_test(self, r_matrix, cov_p=None, use_t: bool | None = None):
        """Separate tests of linear contrasts, as statsmodels' ``t_test`` (a
        ``ContrastResults`` with ``summary()``); see
        :func:`multilogit.inference.contrasts.t_test`."""
        from ..inference.contrasts import t_test

        return t_test(self, r_matrix, cov_p=cov_p, use_t=use_t)

    def f_test(self, r_matrix, cov_p=None, invcov=None):
        """Joint F test of linear constraints, as statsmodels' ``f_test``; see
        :func:`multilogit.inference.contrasts.f_test`."""
        from ..inference.contrasts import f_test

        return f_test(self, r_matrix, cov_p=cov_p, invcov=invcov)

    def wald_test_terms(self) -> pd.DataFrame:
        """Joint Wald test per formula term; see
        :func:`~multilogit.inference.hypothesis.wald_test_terms`."""
        from ..inference.hypothesis import wald_test_terms

        return wald_test_terms(self)

    def lr_test(self, restricted):
        """Likelihood-ratio test against a nested model; see
        :func:`multilogit.inference.hypothesis.lr_test`."""
        from ..inference.hypothesis import lr_test

        return lr_test(self, restricted)

    def compare_lr_test(self, restricted) -> tuple[float, float, float]:
        """statsmodels-style ``(lr_stat, p_value, df_diff)`` of :meth:`lr_test`."""
        t = self.lr_test(restricted)
        return t.statistic, t.pvalue, t.df

    def anova(self, *others) -> pd.DataFrame:
        """Drop-one LR tests per term, or sequential LR tests against ``others``; see
        :func:`multilogit.inference.hypothesis.anova`."""
        from ..inference.hypothesis import anova

        return anova(self, *others)

    def test_combine(self, a, b, method: str = "wald"):
        """Test that outcomes ``a`` and ``b`` can be combined; see
        :func:`multilogit.inference.hypothesis.test_combine`."""
        from ..inference.hypothesis import test_combine

        return test_combine(self, a, b, method)

    def iia_test(self, omit, include_intercept: bool = True):
        """Hausman-McFadden IIA test; see :func:`multilogit.inference.hypothesis.iia_test`."""
        from ..inference.hypothesis import iia_test

        return iia_test(self, omit, include_intercept)

    def small_hsiao(self, omit, seed=None, split=None):
        """Small-Hsiao IIA test on random (``seed``) or given (``split``) halves of the rows;
        see :func:`multilogit.inference.mlogtest.small_hsiao`."""
        from ..inference.mlogtest import small_hsiao

        return small_hsiao(self, omit, seed=seed, split=split)

    def mlogtest(
        self,
        tests=("lr", "wald", "combine", "lrcombine", "hausman", "smhsiao"),
        seed=None,
        split=None,
    ):
        """The tests of Stata's ``mlogtest`` in one call; see
        :func:`multilogit.inference.mlogtest.mlogtest`."""
        from ..inference.mlogtest import mlogtest

        return mlogtest(self, tests, seed=seed, split=split)

    def fitstat(self) -> pd.Series:
        """Measures of fit as Stata's ``fitstat`` (McFadden, Cox-Snell, Cragg-Uhler, count
        R-squared, AIC, BIC, ...); see :func:`multilogit.inference.fitstat.fitstat`."""
        from ..inference.fitstat import fitstat

        return fitstat(self)

    def listcoef(self, pairs: str = "all") -> pd.DataFrame:
        """Factor changes in the odds of every pair of outcomes, as Stata's ``listcoef``; see
        :func:`multilogit.inference.listcoef.listcoef`."""
        from ..inference.listcoef import listcoef

        return listcoef(self, pairs)

    def rrr(
        self,
        alpha: float = 0.05,
        labels: dict | None = None,
        outcome_labels: dict | None = None,
        short_names: bool = False,
    ) -> pd.DataFrame:
        """Relative-risk ratios with delta-method SEs; see
        :func:`~multilogit.inference.reparam.rrr`."""
        from ..inference.reparam import rrr

        return rrr(
            self, alpha, labels=labels, outcome_labels=outcome_labels, short_names=short_names
        )

    def repivot(self, new_ref):
        """New results for another reference outcome, without refitting; see
        :func:`multilogit.inference.reparam.repivot`.

        Not for an L1 or elastic-net fit with trimmed coefficients: their zeros (and the
        covariance of the others) do not map to another reference, and the penalty of
        reference-coded coefficients depends on the reference, so refit with ``ref=``.
        """
        from ..inference.reparam import repivot

        if self._n_trimmed:
            raise ValueError(
                "repivot is not available for an L1 or elastic-net fit with trimmed "
                "coefficients: the penalty depends on the reference outcome; refit with the "
                "model's ref= instead"
            )
        return repivot(self, new_ref)

    def softmax_params(self, center: str = "reference"):
        """All K coefficient sets; see :func:`multilogit.inference.reparam.softmax_params`."""
        from ..inference.reparam import softmax_params

        return softmax_params(self, center)

    @cached_property
    def prsquared_coxsnell(self) -> float:
        r"""Cox-Snell pseudo R-squared, :math:`1 - \exp(2 (\ell_0 - \ell) / n)`."""
        return float(-np.expm1(2.0 * (self.llnull - self.llf) / self.nobs))

    @cached_property
    def prsquared_nagelkerke(self) -> float:
        r"""Nagelkerke (Cragg-Uhler) pseudo R-squared: Cox-Snell divided by its maximum
        :math:`1 - \exp(2 \ell_0 / n)`."""
        return self.prsquared_coxsnell / float(-np.expm1(2.0 * self.llnull / self.nobs))

    def pred_table(self) -> pd.DataFrame:
        """Confusion matrix: rows observed outcome, columns the most probable outcome, both
        labelled; cells count rows (frequency-weighted), as statsmodels' ``pred_table``."""
        K = len(self.outcomes)
        if self.model.is_in_memory:
            pred = np.argmax(self.fittedvalues.to_numpy(), axis=1)
            tab = np.zeros((K, K))
            np.add.at(tab, (self.model.level_codes, pred), self.model.freq_weights)
        else:
            tab = self._pred_table_of_rows()
        lab = list(self.outcomes)
        return pd.DataFrame(
            tab,
            index=pd.Index(lab, name="observed"),
            columns=pd.Index(lab, name="predicted"),
        )

    @cached_property
    def _rows_probabilities_and_residuals(self) -> tuple[np.ndarray, np.ndarray]:
        """Fitted probabilities and response residuals (levels in order) of rows a backend
        holds, in one pass; they come back in memory."""
        J, beta, order = self.model.J, self._beta, self.model.level_to_internal

        def chunk(c):
            prob = predict_probabilities(*augmented(c.X, c.offset, beta))
            d = np.where(c.y < 0, J, c.y)[:, None] == np.arange(J + 1)[None, :]
            return prob[:, order], (d - prob)[:, order]

        parts = self.model.backend.reduce(chunk, frames=False)
        prob = _readonly(np.vstack([a for a, _ in parts]))
        return prob, _readonly(np.vstack([b for _, b in parts]))

    def _pred_table_of_rows(self) -> np.ndarray:
        """:meth:`pred_table` as one pass over rows that a backend holds (levels in order)."""
        if self.model.weights is not None:
            raise DataError(
                "pred_table counts rows by their frequency weights, which a model on data "
                "larger than memory with sampling weights does not keep apart"
            )
        J, K, beta = self.model.J, len(self.outcomes), self._beta

        def chunk(c):
            observed = np.where(c.y < 0, J, c.y)
            predicted = np.argmax(predict_probabilities(*augmented(c.X, c.offset, beta)), axis=1)
            tab = np.zeros((K, K))
            np.add.at(tab, (observed, predicted), c.weights)
            return tab

        internal = np.sum(self.model.backend.reduce(chunk, frames=False), axis=0)
        order = self.model.level_to_internal
        return internal[np.ix_(order, order)]

    @cached_property
    def _resid_response(self) -> np.ndarray:
        if not self.model.is_in_memory:
            return self._rows_probabilities_and_residuals[1]
        prob = self.predict().to_numpy()
        d = self.model.level_codes[:, None] == np.arange(len(self.outcomes))[None, :]
        return _readonly(d - prob)

    def _rows_frame(self, values) -> pd.DataFrame:
        # Fresh frame each access from a read-only array, as params (results stay immutable).
        cols = pd.Index(self.outcomes, name=self.model.endog_names)
        index = self.model.row_labels if self.model.is_in_memory else pd.RangeIndex(len(values))
        return pd.DataFrame(np.array(values), index=index, columns=cols)

    @property
    def resid_response(self) -> pd.DataFrame:
        """Response residuals :math:`d_{ik} - P_{ik}` (rows x all K outcomes)."""
        return self._rows_frame(self._resid_response)

    @property
    def resid_pearson(self) -> pd.DataFrame:
        r"""Pearson residuals :math:`(d_{ik} - P_{ik}) / \sqrt{P_{ik}}`; the sum of their
        squares over rows and outcomes is the Pearson :math:`\chi^2`."""
        if self.model.is_in_memory:
            prob = self.predict().to_numpy()
        else:
            prob = self._rows_probabilities_and_residuals[0]
        return self._rows_frame(self._resid_response / np.sqrt(prob))

    @property
    def resid_misclassified(self) -> pd.Series:
        """1.0 for each row whose most probable outcome is not the observed one, else 0.0
        (statsmodels' ``resid_misclassified``); ties go to the first outcome in level order."""
        J, beta, order = self.model.J, self._beta, self.model.level_to_internal

        def chunk(c):
            observed = np.where(c.y < 0, J, c.y)
            predicted = order[
                np.argmax(predict_probabilities(*augmented(c.X, c.offset, beta))[:, order], axis=1)
            ]
            return (observed != predicted).astype(np.float64)

        parts = self.model.backend.reduce(chunk, frames=False)
        values = np.concatenate(parts) if parts else np.zeros(0)
        index = self.model.row_labels if self.model.is_in_memory else pd.RangeIndex(len(values))
        return pd.Series(values, index=index, name="resid_misclassified")

    def remove_data(self) -> None:
        """Drop the estimation rows from these results (statsmodels' ``remove_data``), e.g.
        before pickling.

        Estimates, covariances, tests, summaries and predictions on new data keep working;
        anything that needs the estimation rows (fitted values, residuals, another covariance
        type, average marginal effects) raises a :class:`~multilogit.exceptions.DataError`
        saying the data were removed.  Unlike statsmodels, the model object passed in is not
        changed: ``results.model`` becomes a copy without the rows, so other results of the
        same model keep theirs.
        """
        without = getattr(self.model, "without_data", None)
        if getattr(self.model, "_offset_spec", None) is not None and without is not None:
            # With an offset llnull is a fit on the rows: found while they are here.
            _ = self.llnull
        # A fit loaded without its data has no rows to drop.
        if without is not None:
            self.model = without()
        for name in ("_rows_probabilities_and_residuals", "_resid_response"):
            self.__dict__.pop(name, None)

    def summary2(
        self,
        alpha: float = 0.05,
        float_format: str = "%.4f",
        labels: dict | None = None,
        outcome_labels: dict | None = None,
        short_names: bool = False,
    ):
        """Summary in statsmodels' ``summary2`` form (a ``statsmodels.iolib.summary2.Summary``:
        text, HTML, LaTeX and the tables as DataFrames); see
        :func:`multilogit.results.summary2.build_summary2`."""
        from .summary2 import build_summary2

        return build_summary2(
            self,
            alpha=alpha,
            float_format=float_format,
            labels=labels,
            outcome_labels=outcome_labels,
            short_names=short_names,
        )

    # --- end inference ---------------------------------------------------------------------------

    def __repr__(self) -> str:
        return (
            f"<MultinomialLogitResults: {self.model.endog_names} ~ {self.model.k_exog} terms, "
            f"K={len(self.outcomes)}, ref={self.ref!r}, nobs={self.nobs:g}, llf={self.llf:.6f}>"
        )


def _labels_of(res, idx) -> tuple[list, list]:
    """Term and outcome labels of the flat positions ``idx``."""
    p = res.model.k_exog
    names = [res.model.exog_names[k % p] for k in idx]
    outs = [res.model.eq_outcomes[k // p] for k in idx]
    return names, outs


def _unique(items) -> list:
    return list(dict.fromkeys(items))


def _readonly(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


def _masked(values: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """``values`` with NaN where ``mask`` is set (a copy when there is a mask)."""
    if mask is None:
        return values
    out = np.array(values, dtype=np.float64)
    out[mask] = np.nan
    return out
