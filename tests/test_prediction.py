"""Predictions with delta-method uncertainty: statsmodels Logit (K = 2) and a complex-step twin."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats
from statsmodels.tools.numdiff import approx_fprime_cs

import multilogit as ml
from multilogit.exceptions import DataError


def _twin_probs(X, beta_flat, J, order):
    beta = beta_flat.reshape(J, X.shape[1])
    eta = np.column_stack([X @ beta.T, np.zeros(len(X))])
    e = np.exp(eta - eta.real.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True))[:, order]


def test_binary_matches_statsmodels_logit(admissions):
    X = sm.add_constant(admissions[["gre", "gpa"]].astype(float))
    sres = sm.Logit(admissions["admit"], X).fit(disp=0, method="newton", tol=1e-13)
    res = ml.MultinomialLogit(admissions["admit"], X).fit(tol=1e-10)
    ref = sres.get_prediction(X.iloc[:25]).summary_frame(alpha=0.1)
    pred = res.get_prediction(X.iloc[:25])
    sf = pred.summary_frame(alpha=0.1, form="wide")
    # statsmodels: delta-method se on the probability, interval from the linear predictor.
    np.testing.assert_allclose(sf[(1, "prob")], ref["predicted"], rtol=1e-6)
    np.testing.assert_allclose(sf[(1, "std err")], ref["se"], rtol=1e-6)
    np.testing.assert_allclose(sf[(1, "lower")], ref["ci_lower"], rtol=1e-6)
    np.testing.assert_allclose(sf[(1, "upper")], ref["ci_upper"], rtol=1e-6)
    # The other outcome mirrors it.
    np.testing.assert_allclose(sf[(0, "std err")], ref["se"], rtol=1e-6)
    np.testing.assert_allclose(sf[(0, "lower")], 1.0 - ref["ci_upper"], rtol=1e-6)


@pytest.mark.parametrize("ref", ["academic", "vocation"])
def test_multinomial_delta_method_against_complex_step(hsbdemo, ref):
    res = ml.mnlogit("prog ~ C(ses) + write + I(write**2)", hsbdemo, ref=ref).fit(tol=1e-10)
    new = hsbdemo.iloc[[0, 5, 17, 199]]
    pred = res.get_prediction(new)
    X = res.model.design.build(new)[0]
    J, order = res.model.J, res.model.level_to_internal
    b0 = res._beta.ravel()
    V = res.cov_params().to_numpy()
    np.testing.assert_allclose(pred.predicted, _twin_probs(X, b0, J, order), rtol=1e-14)
    np.testing.assert_allclose(pred.predicted.sum(axis=1), 1.0, rtol=1e-14)
    for i in range(len(X)):
        G = approx_fprime_cs(b0, lambda b, i=i: _twin_probs(X[i : i + 1], b, J, order)[0])
        np.testing.assert_allclose(
            pred.se.iloc[i].to_numpy(), np.sqrt(np.diag(G @ V @ G.T)), rtol=1e-10
        )
    assert list(pred.predicted.columns) == ["academic", "general", "vocation"]
    assert list(pred.predicted.index) == list(new.index)


def test_summary_frame_long_and_wide(hsb_res, hsbdemo):
    pred = hsb_res.get_prediction(hsbdemo.iloc[:4])
    long = pred.summary_frame()
    wide = pred.summary_frame(form="wide")
    assert long.shape == (12, 4)
    assert list(long.columns) == ["prob", "std err", "lower", "upper"]
    assert long.index.names == ["row", "outcome"]
    assert list(long.index[:3]) == [(0, "academic"), (0, "general"), (0, "vocation")]
    assert wide.shape == (4, 12)
    assert wide.columns.names == ["outcome", "statistic"]
    assert list(wide.columns[:4]) == [("academic", s) for s in long.columns]
    for (row, outcome), vals in long.iterrows():
        np.testing.assert_allclose(vals.to_numpy(), wide.loc[row, outcome].to_numpy())
    assert ((long["lower"] > 0) & (long["upper"] < 1)).all()
    assert ((long["lower"] < long["prob"]) & (long["prob"] < long["upper"])).all()
    sym = pred.summary_frame(alpha=0.01, method="symmetric")
    q = stats.norm.ppf(0.995)
    np.testing.assert_allclose(sym["upper"] - sym["prob"], q * sym["std err"], rtol=1e-12)
    np.testing.assert_allclose(sym["prob"] - sym["lower"], q * sym["std err"], rtol=1e-12)
    lo, hi = pred.conf_int(0.05)
    np.testing.assert_allclose(lo.to_numpy().ravel(), long["lower"])
    assert "4 rows x 3 outcomes" in repr(pred)


def test_default_is_estimation_sample(hsb_res):
    pred = hsb_res.get_prediction()
    assert pred.predicted.shape == (200, 3)
    model = hsb_res.model
    b0 = hsb_res.params.to_numpy().T.ravel()
    twin = _twin_probs(model.exog, b0, model.J, model.level_to_internal)
    np.testing.assert_allclose(pred.predicted, twin, rtol=1e-14)
    assert (pred.se.to_numpy() > 0).all()


def test_array_model_and_unnamed_rows(rng):
    from tests.conftest import simulate

    X, y = simulate(rng, n=300, p=3, K=3)
    res = ml.MultinomialLogit(y, X).fit()
    pred = res.get_prediction(X[:5])
    assert isinstance(pred.predicted.index, pd.RangeIndex)
    wide = pred.summary_frame(form="wide")
    assert wide.index.name == "row"
    b0, J, order = res._beta.ravel(), res.model.J, res.model.level_to_internal
    G = approx_fprime_cs(b0, lambda b: _twin_probs(X[2:3], b, J, order)[0])
    se = np.sqrt(np.diag(G @ res.cov_params().to_numpy() @ G.T))
    np.testing.assert_allclose(pred.se.iloc[2], se, rtol=1e-10)


def test_errors(hsb_res, hsbdemo):
    pred = hsb_res.get_prediction(hsbdemo.iloc[:2])
    with pytest.raises(ValueError, match="alpha"):
        pred.summary_frame(alpha=0)
    with pytest.raises(ValueError, match="form must be"):
        pred.summary_frame(form="tall")
    with pytest.raises(ValueError, match="method must be"):
        pred.conf_int(method="wald")
    with pytest.raises(DataError, match="missing column"):
        hsb_res.get_prediction(hsbdemo[["ses"]])
