"""A constant in the column span of the design counts as the intercept (``model.k_constant``).

References: statsmodels' ``MNLogit`` (``k_constant``, ``df_model``, ``llnull``, ``llr_pvalue``,
``prsquared``), the rank of the design with and without a column of ones (statsmodels' own test
for an implicit constant), and fits with the same column span, which must have the same fitted
probabilities and log-likelihood.  statsmodels finds ``llnull`` by a numerical fit of the
intercept-only model, hence rtol 1e-8 against our closed form.
"""

import re
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

import multilogit as ml
from multilogit.engine.memory import InMemoryBackend
from multilogit.fit.rank import constant_in_span

NOTE = "The model has no constant"


@pytest.fixture(scope="module")
def hsb():
    df = ml.datasets.load("hsbdemo")
    return df.assign(y=df["prog"].cat.codes)


def _sm_fit(y, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sm.MNLogit(y, X).fit(method="newton", disp=0, tol=1e-12)


def _check_against_statsmodels(res, sm_res):
    assert res.model.k_constant == sm_res.model.k_constant == 1
    assert res.df_model == sm_res.df_model
    np.testing.assert_allclose(res.llf, sm_res.llf, rtol=1e-10)
    np.testing.assert_allclose(res.llnull, sm_res.llnull, rtol=1e-8)
    np.testing.assert_allclose(res.prsquared, sm_res.prsquared, rtol=1e-7)
    np.testing.assert_allclose(res.llr_pvalue, sm_res.llr_pvalue, rtol=1e-6)
    assert NOTE not in str(res.summary())


def test_full_dummy_set_is_a_constant(hsb):
    res = ml.mnlogit("prog ~ 0 + C(ses) + write", hsb).fit(tol=1e-10)
    X = res.model.exog
    assert res.model._intercept_col() is None  # no column of its own
    _check_against_statsmodels(res, _sm_fit(hsb["y"].to_numpy(), X))
    # Same column span as the model with an intercept: same probabilities and likelihood.
    with_const = ml.mnlogit("prog ~ ses + write", hsb).fit(tol=1e-10)
    np.testing.assert_allclose(res.llf, with_const.llf, rtol=1e-12)
    np.testing.assert_allclose(res.predict(), with_const.predict(), rtol=1e-8, atol=1e-12)
    assert res.df_model == with_const.df_model == 6
    assert res.llr_pvalue == pytest.approx(with_const.llr_pvalue, rel=1e-8)


def test_constant_column_of_two(hsb):
    y = hsb["y"].to_numpy()
    write = hsb["write"].to_numpy(float)
    X2 = np.column_stack([np.full(len(y), 2.0), write])
    model = ml.MultinomialLogit(y, X2)
    res = model.fit(tol=1e-10)
    _check_against_statsmodels(res, _sm_fit(y, X2))
    assert model._intercept_col() == 0 and res.df_model == 2
    # The start is the intercept-only fit, whatever the constant's value.
    np.testing.assert_allclose(model.loglike(model.start_params().ravel()), res.llnull, rtol=1e-12)
    ones = ml.MultinomialLogit(y, np.column_stack([np.ones(len(y)), write])).fit(tol=1e-10)
    np.testing.assert_allclose(res.params.iloc[0] * 2.0, ones.params.iloc[0], rtol=1e-8)
    np.testing.assert_allclose(res.llf, ones.llf, rtol=1e-12)


def test_a_column_of_ones_is_preferred(hsb):
    # With a constant 2.0 column first and a column of ones later, the ones are the intercept.
    y = hsb["y"].to_numpy()
    X = np.column_stack([np.full(len(y), 2.0), hsb["write"], np.ones(len(y))])
    model = ml.MultinomialLogit(y, X)
    assert model._intercept_col() == 2 and model.k_constant == 1
    assert model.df_model == 2 * 2


def test_no_constant_has_no_null_model_and_says_so(hsb):
    # statsmodels reports the intercept-only log-likelihood of a model without a constant and a
    # chi-squared p-value on it, a comparison of non-nested models; we report them as not
    # available.  The log-likelihood itself still matches statsmodels.
    y = hsb["y"].to_numpy()
    res = ml.mnlogit("prog ~ 0 + write + math", hsb).fit(tol=1e-10)
    sm_res = _sm_fit(y, res.model.exog)
    assert res.model.k_constant == sm_res.model.k_constant == 0
    np.testing.assert_allclose(res.llf, sm_res.llf, rtol=1e-10)
    for name in ("llnull", "llr", "llr_pvalue", "prsquared", "prsquared_coxsnell"):
        assert np.isnan(getattr(res, name)), name
    # df_model counts every column (no intercept to leave out).
    assert res.df_model == 4
    text = str(res.summary())
    assert NOTE in text
    assert re.search(r"LL-Null:\s+n/a", text) and re.search(r"LLR p-value:\s+n/a", text)
    with_const = ml.mnlogit("prog ~ write + math", hsb).fit()
    assert NOTE not in str(with_const.summary())
    assert np.isfinite(with_const.llr_pvalue)


def test_implicit_constant_keeps_the_null_model(hsb):
    # 0 + C(ses) spans a constant: the ordinary intercept-only model is nested in it, and the
    # closed form sum n_k log(n_k / n) is its log-likelihood.
    res = ml.mnlogit("prog ~ 0 + C(ses) + write", hsb).fit(tol=1e-10)
    n_k = hsb["prog"].value_counts().to_numpy().astype(float)
    np.testing.assert_allclose(res.llnull, np.sum(n_k * np.log(n_k / n_k.sum())), rtol=1e-12)
    assert res.df_model == 2 * 3
    assert res.llr_pvalue == pytest.approx(stats.chi2.sf(2 * (res.llf - res.llnull), 6))


def test_loaded_model_keeps_the_note(hsb, tmp_path):
    res = ml.mnlogit("prog ~ 0 + write", hsb).fit()
    res.save(tmp_path / "fit.mlz")
    loaded = ml.load(tmp_path / "fit.mlz")
    assert NOTE in str(loaded.summary())


def test_dropped_alias_counts_once(hsb):
    # An intercept and a full dummy set: one dummy is aliased and dropped, the constant stays.
    df = hsb.assign(s1=(hsb["ses"] == "low") * 1.0, s2=(hsb["ses"] == "middle") * 1.0)
    df["s3"] = 1.0 - df["s1"] - df["s2"]
    res = ml.mnlogit("prog ~ s1 + s2 + s3 + write", df).fit(drop_collinear=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sm_model = sm.MNLogit(df["y"].to_numpy(), res.model.exog)
    assert res.model.k_constant == 1
    assert res.df_model == sm_model.df_model == 6


def test_constant_only_on_weighted_rows(hsb):
    # Dummies that add up to one on every row with positive weight: the intercept-only model is
    # nested in the model that the weighted rows identify.
    y = hsb["y"].to_numpy()
    D = pd.get_dummies(hsb["ses"]).to_numpy(float).copy()
    w = np.ones(len(y))
    w[:5] = 0.0
    D[:5] = 0.0
    X = np.column_stack([D, hsb["write"]])
    assert ml.MultinomialLogit(y, X, freq_weights=w).k_constant == 1
    assert ml.MultinomialLogit(y, X).k_constant == 0


def _sm_has_constant(X):
    # statsmodels' implicit-constant test (base/data.py): adding a column of ones keeps the rank.
    aug = np.column_stack([np.ones(len(X)), X])
    return np.linalg.matrix_rank(aug) == np.linalg.matrix_rank(X)


def _designs():
    rng = np.random.default_rng(1)
    n = 300
    x, z = rng.normal(size=(2, n))
    D = np.eye(4)[rng.integers(0, 4, n)]
    return {
        "ones": np.column_stack([np.ones(n), x]),
        "minus three": np.column_stack([x, np.full(n, -3.0)]),
        "full dummies": np.column_stack([x, D]),
        "scaled dummies": np.column_stack([D * [1.0, 2.0, 3.0, 4.0], x]),
        "three of four dummies": np.column_stack([D[:, :3], x]),
        "dummies times x": D * x[:, None],
        "shifted copy": np.column_stack([x, x + 3.0, z]),
        "slopes only": np.column_stack([x, z, x * z]),
        "repeated column": np.column_stack([x, x, D]),
        "repeated, no constant": np.column_stack([x, x, z]),
        "zero column": np.column_stack([np.zeros(n), D]),
        "all zero": np.zeros((n, 2)),
        "huge dummies": np.column_stack([D * 1e300, x]),
    }


@pytest.mark.parametrize("name", list(_designs()))
def test_span_test_matches_augmented_rank(name):
    X = _designs()[name]
    expect = bool(_sm_has_constant(X)) and X.any()
    n = len(X)
    assert constant_in_span(InMemoryBackend(X, np.zeros(n, np.int64), np.ones(n), 1)) == expect
    # Rows without weight take no part: a constant on the weighted rows alone counts.
    w = np.ones(n + 2)
    w[-2:] = 0.0
    Xw = np.vstack([X, np.full((2, X.shape[1]), 7.0) + np.arange(X.shape[1])])
    assert constant_in_span(InMemoryBackend(Xw, np.zeros(n + 2, np.int64), w, 1)) == expect
