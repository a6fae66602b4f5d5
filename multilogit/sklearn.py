"""A scikit-learn classifier on top of :class:`~multilogit.MultinomialLogit`.

>>> from multilogit.sklearn import MultinomialLogitClassifier
>>> from sklearn.datasets import load_iris
>>> X, y = load_iris(return_X_y=True)
>>> clf = MultinomialLogitClassifier(penalty="l2", alpha=1.0).fit(X, y)
>>> clf.predict_proba(X[:2]).shape
(2, 3)
>>> print(clf.results_.summary())  # doctest: +SKIP

scikit-learn is an optional dependency (``pip install "multilogit[sklearn]"``): importing this
module imports it.

Conventions
-----------
With K classes the fitted probabilities are

.. math::

    P(y = k \\mid x) = \\frac{\\exp(b_k + x^\\top w_k)}{\\sum_{l=1}^{K} \\exp(b_l + x^\\top w_l)} .

Only differences between the K coefficient sets are identified.  ``coef_`` (shape (K, p)) and
``intercept_`` (shape (K,)) hold them in the symmetric (sum-to-zero) normalisation, as
scikit-learn's multinomial ``LogisticRegression``: :math:`\\sum_k w_k = 0` and
:math:`\\sum_k b_k = 0` (see :func:`multilogit.inference.reparam.softmax_params`).  With two
classes, as scikit-learn, ``coef_`` has one row (shape (1, p)): the log-odds of ``classes_[1]``
against ``classes_[0]``.  The statistical results, with the model's own reference coding
(reference ``classes_[0]``), standard errors and tests, are at ``results_``.

Separation
----------
Without a penalty the maximum-likelihood estimates do not exist when the classes are separated
in the training rows (common in small cross-validation folds).  The fit then stops early with a
:class:`~multilogit.PerfectSeparationWarning` and the estimator predicts from the stopped fit,
which classifies the separated training rows perfectly; its probabilities are close to 0 and 1
(the limit).  ``separation="raise"`` makes such a fit an error instead, and ``penalty="l2"`` or
``"firth"`` gives finite estimates.
"""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd
from scipy.special import log_softmax
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .model import MultinomialLogit

__all__ = ["EXPECTED_FAILED_CHECKS", "MultinomialLogitClassifier"]

PENALTIES = (None, "l2", "l1", "firth")

#: Checks of :func:`sklearn.utils.estimator_checks.check_estimator` this estimator is known not
#: to pass, with the reason; pass it as ``expected_failed_checks``.
EXPECTED_FAILED_CHECKS: dict[str, str] = {
    "check_sample_weight_equivalence_on_dense_data": (
        "the check fits 9 distinct rows with 9 features and 3 classes: more parameters than "
        "observations, which multilogit refuses (even penalised) rather than report "
        "statistics it cannot estimate"
    ),
}


def _symmetric(params: np.ndarray) -> np.ndarray:
    """The (K, p) sum-to-zero coefficient sets of reference-coded ``params`` (p, K - 1) whose
    reference is the first class: the reference row 0 added, then the column means removed
    (the probabilities do not change)."""
    full = np.vstack([np.zeros((1, params.shape[0])), params.T])
    return full - full.mean(axis=0)


def _sample_weight(sample_weight, n: int) -> np.ndarray:
    """``sample_weight`` as ``n`` floats (a number is the same weight for every row)."""
    sw = np.asarray(sample_weight, dtype=np.float64)
    if sw.ndim == 0:
        return np.full(n, float(sw))
    if sw.shape != (n,):
        raise ValueError(f"sample_weight has shape {sw.shape}; expected ({n},), one per sample")
    return sw


class MultinomialLogitClassifier(ClassifierMixin, BaseEstimator):
    """Multinomial logistic regression as a scikit-learn classifier.

    A thin wrapper: ``fit`` builds a :class:`~multilogit.MultinomialLogit` on ``X`` (with an
    intercept column ``const`` unless ``fit_intercept=False``) and keeps its results at
    ``results_``; the predictions use the fitted coefficients.  It works in ``Pipeline``,
    ``cross_val_score`` and ``GridSearchCV``.

    Parameters
    ----------
    penalty : {None, "l2", "l1", "firth"}
        ``None``: maximum likelihood (:meth:`~multilogit.MultinomialLogit.fit`).  ``"l2"``:
        ridge on the symmetric coefficients, as scikit-learn's ``LogisticRegression``
        (``fit(penalty="l2", alpha=alpha)``); ``LogisticRegression(C=c)`` is
        ``alpha = 1 / c``.  ``"l1"``: lasso on the reference-coded coefficients
        (:meth:`~multilogit.MultinomialLogit.fit_regularized`, intercepts not penalised).
        ``"firth"``: Firth's bias reduction (``fit(method="firth")``), finite on separated
        data; ``alpha`` is not used.  The intercepts are never penalised.
    alpha : float
        Strength of the ``"l2"`` or ``"l1"`` penalty (at least 0); the log-likelihood is not
        divided by the number of rows, as scikit-learn's.
    fit_intercept : bool
        Add a constant column.
    maxiter : int
        Most Newton iterations.
    tol : float
        Convergence tolerance of the Newton steps.
    separation : {"warn", "raise", "ignore"}
        Separated training classes without a penalty: see the module notes.
    cov_type : str, optional
        Covariance of ``results_`` (e.g. ``"HC0"``); the predictions do not depend on it.

    Attributes
    ----------
    classes_ : ndarray, shape (K,)
        The class labels, sorted.
    coef_ : ndarray, shape (K, p), or (1, p) with two classes
        Coefficients in the symmetric (sum-to-zero) normalisation; a coefficient the fit
        dropped as collinear is 0.
    intercept_ : ndarray, shape (K,), or (1,) with two classes
    results_ : MultinomialLogitResults
        The full statistical results (summary, standard errors, tests, margins).
    n_features_in_ : int
    feature_names_in_ : ndarray
        Only when ``X`` has string column names.
    n_iter_ : ndarray, shape (1,)
        Newton iterations of the fit.

    Notes
    -----
    ``sample_weight``: whole numbers are frequency weights (a row with weight 2 counts as two
    rows, in the estimates and in ``results_``); other values are sampling weights, and
    ``results_`` then reports robust (HC1) standard errors.  Either way the estimates maximise
    the weighted log-likelihood (less the penalty), as in scikit-learn.
    """

    def __init__(
        self,
        penalty: str | None = None,
        alpha: float = 1.0,
        fit_intercept: bool = True,
        maxiter: int = 100,
        tol: float = 1e-8,
        separation: str = "warn",
        cov_type: str | None = None,
    ):
        self.penalty = penalty
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self.maxiter = maxiter
        self.tol = tol
        self.separation = separation
        self.cov_type = cov_type

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = True
        tags.classifier_tags.poor_score = False
        return tags

    def _check_params(self):
        if self.penalty not in PENALTIES:
            raise ValueError(f"penalty must be one of {PENALTIES}; got {self.penalty!r}")
        if self.penalty in ("l2", "l1") and not (
            isinstance(self.alpha, numbers.Real) and np.isfinite(self.alpha) and self.alpha >= 0
        ):
            raise ValueError(f"alpha must be a finite number at least 0; got {self.alpha!r}")
        if self.separation not in ("warn", "raise", "ignore"):
            raise ValueError(
                f"separation must be 'warn', 'raise' or 'ignore'; got {self.separation!r}"
            )

    def fit(self, X, y, sample_weight=None) -> MultinomialLogitClassifier:
        """Fit on ``X`` (n, p) and class labels ``y`` (n,); returns ``self``."""
        self._check_params()
        X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=False)
        check_classification_targets(y)
        classes, codes = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(
                "MultinomialLogitClassifier needs samples of at least 2 classes; the data "
                f"contain only one class: {classes.tolist()[0]!r}"
            )
        names = list(getattr(self, "feature_names_in_", [f"x{j}" for j in range(X.shape[1])]))
        exog = pd.DataFrame(X, columns=[str(n) for n in names])
        if self.fit_intercept:
            # "const" as statsmodels' add_constant, unless a feature has that name.
            exog.insert(0, "const" if "const" not in exog.columns else "(intercept)", 1.0)
        # Codes with the class labels as categories: the results are labelled as y, and the
        # first class is the reference, as scikit-learn's binary coef_.
        endog = pd.Categorical.from_codes(codes, categories=pd.Index(classes))
        weights = {}
        if sample_weight is not None:
            sw = _sample_weight(sample_weight, len(X))
            kind = "freq_weights" if np.all(sw == np.round(sw)) and sw.sum() >= 1 else "weights"
            weights[kind] = sw
            present = np.unique(codes[sw > 0])
            if len(present) < 2:
                raise ValueError(
                    "MultinomialLogitClassifier needs samples of at least 2 classes with "
                    f"positive sample_weight; only class {classes.tolist()[present[0]]!r} has any"
                    if len(present)
                    else "sample_weight is zero for every sample"
                )
        model = MultinomialLogit(endog, exog, **weights)
        common = {"maxiter": self.maxiter, "tol": self.tol, "cov_type": self.cov_type}
        if self.penalty == "l1":
            res = model.fit_regularized(
                method="l1", alpha=float(self.alpha), penalize_intercept=False, **common
            )
        else:
            kw = {"separation": self.separation, "drop_collinear": True}
            if self.penalty == "l2":
                # As scikit-learn: with two classes the ridge is on the one coefficient
                # vector of the log-odds, else on the K symmetric coefficient sets.
                form = "reference" if len(classes) == 2 else "symmetric"
                kw.update(penalty="l2", alpha=float(self.alpha), l2_form=form)
            elif self.penalty == "firth":
                kw.update(method="firth")
            res = model.fit(**kw, **common)
        self.classes_ = classes
        self.results_ = res
        self.n_iter_ = np.array([res.n_iter])
        W = _symmetric(np.nan_to_num(res.params.to_numpy(), nan=0.0))
        if self.fit_intercept:
            intercept, W = W[:, 0], W[:, 1:]
        else:
            intercept = np.zeros(len(classes))
        if len(classes) == 2:
            # scikit-learn's binary layout: the second class against the first.
            self.coef_ = W[1:] - W[:1]
            self.intercept_ = intercept[1:] - intercept[:1]
        else:
            self.coef_, self.intercept_ = W, intercept
        return self

    def decision_function(self, X) -> np.ndarray:
        """Linear scores: shape (n, K) (any constant may be added to a row), or (n,) with two
        classes (the log-odds of ``classes_[1]``)."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        scores = X @ self.coef_.T + self.intercept_
        return scores.ravel() if len(self.classes_) == 2 else scores

    def predict_log_proba(self, X) -> np.ndarray:
        """Log-probabilities of the classes, shape (n, K), columns in ``classes_`` order."""
        scores = self.decision_function(X)
        if scores.ndim == 1:
            scores = np.column_stack([np.zeros_like(scores), scores])
        return log_softmax(scores, axis=1)

    def predict_proba(self, X) -> np.ndarray:
        """Probabilities of the classes, shape (n, K), columns in ``classes_`` order."""
        return np.exp(self.predict_log_proba(X))

    def predict(self, X) -> np.ndarray:
        """The most probable class of each row."""
        scores = self.decision_function(X)
        idx = (scores > 0).astype(int) if scores.ndim == 1 else scores.argmax(axis=1)
        return self.classes_[idx]

    def score(self, X, y, sample_weight=None) -> float:
        """Accuracy: the (weighted) share of rows whose predicted class is ``y``."""
        return super().score(X, y, sample_weight=sample_weight)
