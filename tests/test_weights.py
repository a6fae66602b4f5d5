"""Frequency weights (= expanded data) and sampling weights (robust sandwich by default).

References: the expanded data set fitted without weights (an exact identity), and for sampling
weights statsmodels' ``GLM(Binomial, var_weights=w)`` with ``cov_type="HC0"`` on the binary
admissions model (a K = 2 multinomial logit is the logit; rtol 1e-6).
"""

import re
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

import multilogit as ml

FORMULA = "prog ~ ses + write"


@pytest.fixture(scope="module")
def hsb():
    return ml.datasets.load("hsbdemo")


@pytest.fixture(scope="module")
def fw(hsb):
    return np.random.default_rng(7).integers(0, 4, len(hsb))


@pytest.fixture(scope="module")
def expanded(hsb, fw):
    return hsb.loc[hsb.index.repeat(fw)].reset_index(drop=True)


def test_freq_weights_equal_expanded_data(hsb, fw, expanded):
    r_w = ml.mnlogit(FORMULA, hsb, freq_weights=fw).fit(tol=1e-10)
    r_e = ml.mnlogit(FORMULA, expanded).fit(tol=1e-10)
    np.testing.assert_allclose(r_w.params, r_e.params, rtol=1e-8)
    np.testing.assert_allclose(r_w.bse, r_e.bse, rtol=1e-8)
    assert r_w.nobs == r_e.nobs == fw.sum()
    for attr in ("llf", "llnull", "aic", "bic", "df_resid", "prsquared_coxsnell"):
        np.testing.assert_allclose(getattr(r_w, attr), getattr(r_e, attr), rtol=1e-10)
    np.testing.assert_array_equal(r_w.pred_table(), r_e.pred_table())
    assert re.search(rf"No. Observations:\s+{fw.sum()}\s", str(r_w.summary()))


@pytest.mark.parametrize("cov_type", ["HC0", "HC1", "cluster"])
def test_freq_weights_robust_equal_expanded(hsb, fw, expanded, cov_type):
    kw = {"groups": "cid"} if cov_type == "cluster" else {}
    r_w = ml.mnlogit(FORMULA, hsb, freq_weights=fw).fit(cov_type=cov_type, cov_kwds=kw)
    r_e = ml.mnlogit(FORMULA, expanded).fit(cov_type=cov_type, cov_kwds=kw)
    np.testing.assert_allclose(r_w.cov_params(), r_e.cov_params(), rtol=1e-7)


def test_freq_weights_column_name_and_array_model(hsb, fw):
    df = hsb.assign(f=fw)
    by_col = ml.mnlogit(FORMULA, df, freq_weights="f").fit()
    by_arr = ml.MultinomialLogit.from_formula(FORMULA, df, freq_weights=fw).fit()
    np.testing.assert_array_equal(by_col.params, by_arr.params)
    m = ml.mnlogit(FORMULA, hsb)
    arr = ml.MultinomialLogit(m.level_codes, m.exog, freq_weights=pd.Series(fw)).fit()
    np.testing.assert_allclose(arr.params.to_numpy(), by_col.params.to_numpy(), rtol=1e-10)
    assert m.freq_weights.sum() == 200 and by_col.model.freq_weights.sum() == fw.sum()


def test_weights_follow_missing_row_dropping(hsb, fw):
    df = hsb.assign(f=fw, write=hsb["write"].astype(float))
    df.loc[[0, 10, 77], "write"] = np.nan
    kept = df.dropna(subset=["write"])
    ref = ml.mnlogit(FORMULA, kept, freq_weights=kept["f"].to_numpy()).fit()
    for w in ("f", fw, df["f"], kept["f"].to_numpy()):
        r = ml.mnlogit(FORMULA, df, missing="drop", freq_weights=w).fit()
        np.testing.assert_allclose(r.params, ref.params, rtol=1e-12)
        assert r.nobs == kept["f"].sum()
    # an array model drops the same rows
    X = np.column_stack([np.ones(len(df)), df["write"]])
    arr = ml.MultinomialLogit(df["prog"], X, missing="drop", freq_weights=fw).fit()
    arr_ref = ml.MultinomialLogit(kept["prog"], X[df["write"].notna()], freq_weights=kept["f"])
    np.testing.assert_allclose(arr.params.to_numpy(), arr_ref.fit().params.to_numpy(), 1e-12)


def test_weight_errors(hsb):
    n = len(hsb)
    bad = {
        "negative": np.r_[-1.0, np.ones(n - 1)],
        "1 missing or non-finite": np.r_[np.inf, np.ones(n - 1)],
        "missing or non-finite": np.r_[np.nan, np.ones(n - 1)],
        "all zero": np.zeros(n),
        "has 3 values": np.ones(3),
        "numeric": np.array(["a"] * n),
        "1-D": np.ones((n, 2)),
    }
    for msg, w in bad.items():
        for kw in ("freq_weights", "weights"):
            with pytest.raises(ml.DataError, match=msg):
                ml.mnlogit(FORMULA, hsb, **{kw: w})
    with pytest.raises(ml.DataError, match="not in the data"):
        ml.mnlogit(FORMULA, hsb, weights="wt")
    m = ml.mnlogit(FORMULA, hsb)
    with pytest.raises(ml.DataError, match="needs a formula model"):
        ml.MultinomialLogit(m.level_codes, m.exog, weights="write")
    # zero weights on every row kept: sampling weight zero where frequency weight positive
    f = np.r_[np.ones(100), np.zeros(100)]
    with pytest.raises(ml.DataError, match="every row has zero weight"):
        ml.mnlogit(FORMULA, hsb, freq_weights=f, weights=1 - f)
    # a duplicated index cannot be lined up after dropping rows
    df = hsb.assign(write=hsb["write"].astype(float))
    df.loc[0, "write"] = np.nan
    df.index = np.zeros(n, dtype=int)
    with pytest.raises(ml.DataError, match="index is not unique"):
        ml.mnlogit(FORMULA, df, missing="drop", weights=np.ones(n))


# -- sampling weights -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def adm():
    return ml.datasets.load("admissions")


@pytest.fixture(scope="module")
def pw(adm):
    return np.random.default_rng(11).uniform(0.2, 4.0, len(adm))


def test_pweights_sandwich_equals_glm(adm, pw):
    m = ml.mnlogit("admit ~ gre + gpa", adm, weights=pw)
    res = m.fit()
    assert res.cov_type == "HC1" and m.default_cov_type == "HC1"
    hc0 = m.fit(cov_type="HC0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        glm = sm.GLM(m.level_codes, m.exog, family=sm.families.Binomial(), var_weights=pw).fit(
            cov_type="HC0", tol=1e-12
        )
    np.testing.assert_allclose(hc0.params.to_numpy().ravel(), glm.params, rtol=1e-6)
    np.testing.assert_allclose(hc0.cov_params(), glm.cov_params(), rtol=1e-6)
    # The default HC1 is GLM's HC0 times Stata's n / (n - 1).
    n = len(adm)
    np.testing.assert_allclose(res.cov_params(), glm.cov_params() * n / (n - 1), rtol=1e-6)
    assert res.nobs == n


def test_pweights_scale_invariant_and_zero_rows(hsb):
    w = np.random.default_rng(5).uniform(0.5, 2.0, len(hsb))
    a = ml.mnlogit(FORMULA, hsb, weights=w).fit(tol=1e-10)
    b = ml.mnlogit(FORMULA, hsb, weights=10 * w).fit(tol=1e-10)
    np.testing.assert_allclose(a.params, b.params, rtol=1e-8)
    np.testing.assert_allclose(a.bse, b.bse, rtol=1e-8)
    # A zero sampling weight drops the row: equal to the fit without it (HC0 has no n factor).
    w0 = w.copy()
    w0[:20] = 0
    z = ml.mnlogit(FORMULA, hsb, weights=w0).fit(cov_type="HC0", tol=1e-10)
    d = ml.mnlogit(FORMULA, hsb.iloc[20:], weights=w[20:]).fit(cov_type="HC0", tol=1e-10)
    np.testing.assert_allclose(z.params, d.params, rtol=1e-8)
    np.testing.assert_allclose(z.bse, d.bse, rtol=1e-8)
    assert z.nobs == 180
    # cluster-robust with sampling weights runs and counts clusters
    c = ml.mnlogit(FORMULA, hsb, weights=w).fit(cov_type="cluster", cov_kwds={"groups": "cid"})
    assert c.n_groups == 20


def test_pweights_summary_note_and_nonrobust_allowed(hsb):
    w = np.random.default_rng(5).uniform(0.5, 2.0, len(hsb))
    r = ml.mnlogit(FORMULA, hsb, weights=w).fit()
    text = str(r.summary())
    assert "Sampling weights" in text and "HC1" in text
    nr = ml.mnlogit(FORMULA, hsb, weights=w).fit(cov_type="nonrobust")
    assert nr.cov_type == "nonrobust"
    np.testing.assert_array_equal(nr.params, r.params)


def test_freq_and_sampling_weights_together(hsb, fw, expanded):
    w = np.random.default_rng(9).uniform(0.5, 2.0, len(hsb))
    both = ml.mnlogit(FORMULA, hsb, freq_weights=fw, weights=w).fit(cov_type="HC0")
    exp_w = np.repeat(w, fw)
    ref = ml.mnlogit(FORMULA, expanded, weights=exp_w).fit(cov_type="HC0")
    np.testing.assert_allclose(both.params, ref.params, rtol=1e-8)
    np.testing.assert_allclose(both.cov_params(), ref.cov_params(), rtol=1e-7)
    assert both.nobs == ref.nobs == fw.sum()
