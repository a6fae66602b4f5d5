"""The scikit-learn estimator: scikit-learn's own estimator checks, agreement with
``LogisticRegression`` (same objective) and with ``mnlogit`` fits, and use in scikit-learn's
model-selection tools."""

import warnings

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("sklearn")

from sklearn.datasets import load_iris, load_wine  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import (  # noqa: E402
    GridSearchCV,
    StratifiedKFold,
    cross_val_score,
)
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import check_estimator  # noqa: E402

import multilogit  # noqa: E402
from multilogit import PerfectSeparationWarning  # noqa: E402
from multilogit.sklearn import EXPECTED_FAILED_CHECKS, MultinomialLogitClassifier  # noqa: E402

# lbfgs in LogisticRegression stops near 1e-6 relative accuracy even with a tiny tol.
LBFGS_RTOL = 1e-4


@pytest.mark.parametrize("penalty", [None, "l2", "firth"])
def test_check_estimator(penalty):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PerfectSeparationWarning)
        results = check_estimator(
            MultinomialLogitClassifier(penalty=penalty),
            expected_failed_checks=EXPECTED_FAILED_CHECKS,
            on_fail=None,
            on_skip=None,
        )
    failed = [r["check_name"] for r in results if r["status"] == "failed"]
    assert failed == []
    xfailed = {r["check_name"] for r in results if r["status"] == "xfail"}
    assert xfailed == set(EXPECTED_FAILED_CHECKS)


def _lr(C):
    return LogisticRegression(C=C, tol=1e-12, max_iter=100_000)


@pytest.mark.parametrize("binary", [False, True])
def test_l2_is_logistic_regression(binary):
    """Same objective as scikit-learn's ridge-penalised LogisticRegression, so the same
    coefficients in the same layout (binary: one row)."""
    X, y = load_iris(return_X_y=True)
    if binary:
        y = np.where(y == 1, "versicolor", "other")
    ours = MultinomialLogitClassifier(penalty="l2", alpha=2.0).fit(X, y)
    theirs = _lr(C=0.5).fit(X, y)
    assert ours.coef_.shape == theirs.coef_.shape
    np.testing.assert_array_equal(ours.classes_, theirs.classes_)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, rtol=LBFGS_RTOL, atol=1e-5)
    np.testing.assert_allclose(ours.intercept_, theirs.intercept_, rtol=LBFGS_RTOL, atol=1e-5)
    np.testing.assert_allclose(
        ours.predict_proba(X), theirs.predict_proba(X), rtol=LBFGS_RTOL, atol=1e-6
    )
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))


def test_predictions_equal_mnlogit(hsbdemo):
    """The estimator's predictions are those of the formula model fitted on the same data,
    and results_ is that fit; coef_ is its symmetric normalisation."""
    X = hsbdemo[["write", "math"]]
    clf = MultinomialLogitClassifier().fit(X, hsbdemo["prog"])
    res = multilogit.mnlogit("prog ~ write + math", hsbdemo).fit()
    np.testing.assert_allclose(clf.predict_proba(X), res.predict().to_numpy(), rtol=1e-10)
    np.testing.assert_allclose(clf.results_.params.to_numpy(), res.params.to_numpy(), rtol=1e-10)
    assert list(clf.results_.params.index) == ["const", "write", "math"]
    assert list(clf.feature_names_in_) == ["write", "math"]
    # Sum-to-zero sets whose differences are the reference-coded coefficients.
    np.testing.assert_allclose(clf.coef_.sum(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(
        clf.coef_[1:] - clf.coef_[0], res.params.loc[["write", "math"]].T.to_numpy(), rtol=1e-10
    )
    assert set(clf.predict(X)) <= set(hsbdemo["prog"])
    np.testing.assert_allclose(clf.predict_log_proba(X), np.log(clf.predict_proba(X)), rtol=1e-12)


def test_frequency_weights_are_duplicated_rows(hsbdemo):
    X, y = hsbdemo[["write"]].to_numpy(), hsbdemo["prog"].to_numpy()
    w = np.arange(len(y)) % 3
    weighted = MultinomialLogitClassifier().fit(X, y, sample_weight=w)
    dup = MultinomialLogitClassifier().fit(np.repeat(X, w, axis=0), np.repeat(y, w))
    np.testing.assert_allclose(weighted.coef_, dup.coef_, rtol=1e-9)
    np.testing.assert_allclose(weighted.results_.bse, dup.results_.bse, rtol=1e-9)


def test_pipeline_cross_val_score_is_logistic_regressions():
    X, y = load_wine(return_X_y=True)
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    ours = make_pipeline(StandardScaler(), MultinomialLogitClassifier(penalty="l2", alpha=1.0))
    theirs = make_pipeline(StandardScaler(), _lr(C=1.0))
    s1 = cross_val_score(ours, X, y, cv=cv, scoring="neg_log_loss")
    s2 = cross_val_score(theirs, X, y, cv=cv, scoring="neg_log_loss")
    np.testing.assert_allclose(s1, s2, rtol=LBFGS_RTOL)


def test_grid_search_over_alpha_is_over_c():
    X, y = load_iris(return_X_y=True)
    alphas = [0.01, 0.3, 10.0]
    cv = StratifiedKFold(3, shuffle=True, random_state=1)
    ours = GridSearchCV(
        MultinomialLogitClassifier(penalty="l2"),
        {"alpha": alphas},
        cv=cv,
        scoring="neg_log_loss",
    ).fit(X, y)
    theirs = GridSearchCV(
        _lr(1.0), {"C": [1 / a for a in alphas]}, cv=cv, scoring="neg_log_loss"
    ).fit(X, y)
    np.testing.assert_allclose(
        ours.cv_results_["mean_test_score"], theirs.cv_results_["mean_test_score"], rtol=1e-4
    )
    assert ours.best_params_["alpha"] == 1 / theirs.best_params_["C"]
    assert ours.best_estimator_.results_.llf_penalized is not None


def test_grid_search_over_penalty():
    X, y = load_iris(return_X_y=True)
    grid = [{"penalty": ["l2", "l1"], "alpha": [0.1, 1.0]}, {"penalty": ["firth"]}]
    search = GridSearchCV(MultinomialLogitClassifier(), grid, cv=3).fit(X, y)
    assert len(search.cv_results_["params"]) == 5
    assert np.all(search.cv_results_["mean_test_score"] > 0.9)


def test_l1_has_exact_zeros():
    X, y = load_wine(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    clf = MultinomialLogitClassifier(penalty="l1", alpha=5.0).fit(X, y)
    ref = clf.results_.params.drop(index="const")
    assert (ref.to_numpy() == 0).any()
    # coef_ is the symmetric form of results_.params: its differences are the params.
    np.testing.assert_allclose(clf.coef_[1:] - clf.coef_[0], ref.T.to_numpy(), atol=1e-12)


def test_separated_folds_warn_and_still_predict():
    """Iris separates setosa from the rest in every fold: without a penalty each fit stops
    with a separation warning, and the stopped fits still classify the held-out rows."""
    X, y = load_iris(return_X_y=True)
    with pytest.warns(PerfectSeparationWarning):
        scores = cross_val_score(MultinomialLogitClassifier(), X, y, cv=3)
    assert np.all(scores > 0.9)
    with pytest.raises(multilogit.PerfectSeparationError):
        MultinomialLogitClassifier(separation="raise").fit(X, y)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"penalty": "ridge"}, "penalty must be one of"),
        ({"penalty": "l2", "alpha": -1.0}, "alpha must be"),
        ({"separation": "stop"}, "separation must be"),
    ],
)
def test_bad_parameters(params, message):
    X, y = load_iris(return_X_y=True)
    with pytest.raises(ValueError, match=message):
        MultinomialLogitClassifier(**params).fit(X, y)


def test_one_class_is_an_error():
    with pytest.raises(ValueError, match="at least 2 classes.*only one class: 'a'"):
        MultinomialLogitClassifier().fit(np.eye(3), ["a", "a", "a"])


def test_no_intercept_and_dataframe_input():
    X, y = load_iris(return_X_y=True, as_frame=True)
    clf = MultinomialLogitClassifier(penalty="l2", fit_intercept=False).fit(X, y)
    assert "const" not in clf.results_.params.index
    np.testing.assert_array_equal(clf.intercept_, 0.0)
    theirs = LogisticRegression(C=1.0, fit_intercept=False, tol=1e-12, max_iter=100_000)
    np.testing.assert_allclose(clf.coef_, theirs.fit(X, y).coef_, rtol=LBFGS_RTOL, atol=1e-5)
    assert isinstance(clf.predict(pd.DataFrame(X)), np.ndarray)


def test_a_feature_named_const(hsbdemo):
    X = hsbdemo[["write"]].rename(columns={"write": "const"})
    clf = MultinomialLogitClassifier().fit(X, hsbdemo["prog"])
    assert list(clf.results_.params.index) == ["(intercept)", "const"]
    res = multilogit.mnlogit("prog ~ write", hsbdemo).fit()
    np.testing.assert_allclose(clf.results_.params.to_numpy(), res.params.to_numpy(), rtol=1e-10)
