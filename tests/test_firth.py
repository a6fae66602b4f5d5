"""Firth's mean bias reduction (``fit(method="firth")``) against R's brglm2 and first principles.

The reference numbers (``tests/reference/*_as_mean.csv``, ``*_ml.csv``) come from
``brglm2::brmultinom`` run by ``tests/reference/R/brglm2.R``, which also asserts that they are
stationary points of the penalised log-likelihood; brglm2 converged to an adjusted score below
1e-13, so agreement is checked at 1e-9 relative.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import multilogit as ml
from multilogit.engine.jeffreys import chunk_logdet_gradient
from tests.reference_data import REFERENCE_DIR, load_reference

LEVELS = {
    "housing": {
        "Sat": ["Low", "Medium", "High"],
        "Infl": ["Low", "Medium", "High"],
        "Type": ["Tower", "Apartment", "Atrium", "Terrace"],
        "Cont": ["Low", "High"],
    },
    "alligators": {
        "foodchoice": ["Fish", "Invertebrate", "Reptile", "Bird", "Other"],
        "lake": ["Hancock", "Oklawaha", "Trafford", "George"],
        "size": ["<=2.3", ">2.3"],
    },
    "endometrial": {"HG": [0, 1]},
}


def load(name: str) -> pd.DataFrame:
    df = pd.read_csv(REFERENCE_DIR / "data" / f"{name}.csv")
    for column, levels in LEVELS[name].items():
        df[column] = pd.Categorical(df[column], categories=levels)
    return df


# reference file, data, formula, frequency weights, reference outcome, method
CASES = [
    ("housing_ml", "housing", "Sat ~ Infl + Type + Cont", "Freq", "Low", "newton"),
    ("housing_as_mean", "housing", "Sat ~ Infl + Type + Cont", "Freq", "Low", "firth"),
    ("alligators_ml", "alligators", "foodchoice ~ size + lake", "freq", "Fish", "newton"),
    ("alligators_as_mean", "alligators", "foodchoice ~ size + lake", "freq", "Fish", "firth"),
    ("alligators3_as_mean", "alligators", "foodchoice ~ size + lake", "freq3", "Fish", "firth"),
    ("endometrial_as_mean", "endometrial", "HG ~ NV + PI + EH", None, 0, "firth"),
]


def fit_case(data, formula, weights, ref, method, **kwargs):
    df = load(data)
    if weights == "freq3":
        df["freq3"] = np.round(df["freq"] / 3)  # R rounds half to even, as NumPy
        weights = "freq3"
    w = None if weights is None else df[weights].to_numpy(dtype=float)
    model = ml.mnlogit(formula, df, ref=ref, freq_weights=w)
    return model.fit(method=method, **kwargs)


def assert_matches_reference(res, expected):
    """Estimates, standard errors and log-likelihood against a brglm2 reference at 1e-9."""
    assert res.converged
    params = res.params.copy()
    params.columns = [str(c) for c in params.columns]
    bse = res.bse.copy()
    bse.columns = params.columns
    np.testing.assert_allclose(
        params.loc[expected.coef.index, expected.coef.columns],
        expected.coef,
        rtol=1e-9,
        atol=1e-12,
    )
    np.testing.assert_allclose(
        bse.loc[expected.se.index, expected.se.columns], expected.se, rtol=1e-9
    )
    assert res.llf == pytest.approx(expected.scalars["llf"], rel=1e-11)
    assert res.nobs == expected.scalars["nobs"]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_matches_brglm2(case):
    name, data, formula, weights, ref, method = case
    res = fit_case(data, formula, weights, ref, method)
    expected = load_reference(name)
    assert_matches_reference(res, expected)
    if method == "firth":
        assert res.llf_penalized == pytest.approx(expected.scalars["llf_penalized"], rel=1e-11)
        assert "Firth" in res.summary().as_text()
    else:
        assert res.llf_penalized == res.llf


# -- the penalty's gradient --------------------------------------------------------------------


def _information(X, w, beta):
    """The multinomial-logit information in plain NumPy (outcome-major), for the checks."""
    eta = np.column_stack([np.zeros(len(X)), X @ beta.T])
    P = np.exp(eta - eta.max(axis=1, keepdims=True))
    P = (P / P.sum(axis=1, keepdims=True))[:, 1:]
    J, p = beta.shape
    H = np.zeros((J * p, J * p))
    for a in range(J):
        for b in range(J):
            wab = w * P[:, a] * ((a == b) - P[:, b])
            H[a * p : (a + 1) * p, b * p : (b + 1) * p] = X.T @ (wab[:, None] * X)
    return H


def _logdet_fd(X, w, beta, h=1e-6):
    J, p = beta.shape
    out = np.zeros((J, p))
    for a in range(J):
        for j in range(p):
            e = np.zeros((J, p))
            e[a, j] = h
            up = np.linalg.slogdet(_information(X, w, beta + e))[1]
            down = np.linalg.slogdet(_information(X, w, beta - e))[1]
            out[a, j] = (up - down) / (2 * h)
    return out


def test_logdet_gradient_kernel_matches_finite_differences(rng):
    X = np.column_stack([np.ones(500), rng.normal(size=(500, 3))])
    w = rng.uniform(0.2, 3.0, 500)
    beta = rng.normal(scale=0.6, size=(3, 4))
    cov = np.linalg.inv(_information(X, w, beta))
    grad = chunk_logdet_gradient(X, w, beta, cov)
    np.testing.assert_allclose(grad, _logdet_fd(X, w, beta), rtol=1e-6, atol=1e-7)
    # Rows split into chunks sum to the whole (the kernel takes rows in blocks inside, too).
    halves = chunk_logdet_gradient(X[:123], w[:123], beta, cov) + chunk_logdet_gradient(
        X[123:], w[123:], beta, cov
    )
    np.testing.assert_allclose(halves, grad, rtol=1e-12, atol=1e-12)


def test_fit_is_stationary_for_the_penalised_likelihood_on_many_chunks(rng):
    # 40 000 rows span many chunks and both threads: the estimates must zero the score of
    # l + 1/2 log det I, computed here from scratch (finite differences for the penalty).
    n = 40_000
    X = np.column_stack([np.ones(n), rng.normal(size=(n, 2))])
    y = rng.integers(0, 3, n)
    y[X[:, 1] > 2.5] = 2  # some near-separation in one outcome
    res = ml.MultinomialLogit(y, X).fit(method="firth")
    beta = res.params.to_numpy().T
    w = np.ones(n)
    eta = np.column_stack([np.zeros(n), X @ beta.T])
    P = np.exp(eta - eta.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    D = np.eye(3)[y]
    score = (D - P)[:, 1:].T @ X
    adjusted = score + 0.5 * _logdet_fd(X, w, beta, h=1e-5)
    # The likelihood's own score there is of order one (the penalty's gradient balances it);
    # the adjusted score vanishes to the accuracy of the finite differences.
    assert np.max(np.abs(score)) > 1e-2
    assert np.max(np.abs(adjusted)) < 1e-6


# -- invariances -------------------------------------------------------------------------------


def test_reference_outcome_does_not_change_fitted_probabilities():
    # log det I changes by a constant under a change of reference: same fitted model.
    a = fit_case("housing", "Sat ~ Infl + Type + Cont", "Freq", "Low", "firth")
    b = fit_case("housing", "Sat ~ Infl + Type + Cont", "Freq", "High", "firth")
    np.testing.assert_allclose(a.predict(), b.predict()[a.predict().columns], rtol=1e-9)
    assert a.llf_penalized == pytest.approx(b.llf_penalized, rel=1e-11)


def test_frequency_weights_equal_repeated_rows():
    df = load("housing")
    df = df[df["Freq"] > 0]
    repeated = df.loc[df.index.repeat(df["Freq"])].reset_index(drop=True)
    weighted = ml.mnlogit(
        "Sat ~ Infl + Type + Cont", df, ref="Low", freq_weights=df["Freq"].to_numpy(float)
    ).fit(method="firth")
    expanded = ml.mnlogit("Sat ~ Infl + Type + Cont", repeated, ref="Low").fit(method="firth")
    np.testing.assert_allclose(weighted.params, expanded.params, rtol=1e-9)
    np.testing.assert_allclose(weighted.bse, expanded.bse, rtol=1e-9)
    assert weighted.llf_penalized == pytest.approx(expanded.llf_penalized, rel=1e-11)


def test_column_scale_is_equivariant():
    df = load("endometrial")
    big = df.assign(PI=df["PI"] * 1e4, EH=df["EH"] / 1e3)
    a = ml.mnlogit("HG ~ NV + PI + EH", df, ref=0).fit(method="firth")
    b = ml.mnlogit("HG ~ NV + PI + EH", big, ref=0).fit(method="firth")
    factor = pd.Series({"Intercept": 1.0, "NV": 1.0, "PI": 1e-4, "EH": 1e3})
    np.testing.assert_allclose(b.params.iloc[:, 0], a.params.iloc[:, 0] * factor, rtol=1e-9)
    np.testing.assert_allclose(b.bse.iloc[:, 0], a.bse.iloc[:, 0] * factor, rtol=1e-9)
    # The penalised log-likelihood shifts by the log-determinant of the rescaling.
    shift = np.log(1e4) - np.log(1e3)
    assert b.llf_penalized == pytest.approx(a.llf_penalized + shift, rel=1e-10)


# -- separated data ----------------------------------------------------------------------------


def test_complete_separation_gives_finite_estimates_without_warning():
    x = np.arange(12.0)
    y = np.array(["a"] * 4 + ["b"] * 4 + ["c"] * 4)  # x orders the outcomes perfectly
    X = np.column_stack([np.ones(12), x])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = ml.MultinomialLogit(y, X).fit(method="firth")
    assert res.converged
    assert np.all(np.isfinite(res.params)) and np.all(np.isfinite(res.bse))
    assert res.params.loc["x2", "c"] > res.params.loc["x2", "b"] > 0
    with pytest.warns(ml.PerfectSeparationWarning):
        ml.MultinomialLogit(y, X).fit()


def test_rank_deficient_design_is_still_refused(rng):
    X = np.column_stack([np.ones(50), rng.normal(size=50)])
    X = np.column_stack([X, 2 * X[:, 1]])
    y = rng.integers(0, 3, 50)
    with pytest.raises(ml.DataError, match="x2"):
        ml.MultinomialLogit(y, X).fit(method="firth")


def test_unknown_method_names_the_choices(hsbdemo):
    with pytest.raises(ValueError, match="'newton-cg', 'firth' or 'firth-median'"):
        ml.mnlogit("prog ~ write", hsbdemo).fit(method="brglm")


def test_parquet_fit_equals_in_memory(tmp_path):
    df = load("alligators")
    df["freq3"] = np.round(df["freq"] / 3)
    for column in ("foodchoice", "lake", "size"):
        df[column] = df[column].astype(str)
    path = tmp_path / "alligators.parquet"
    df.to_parquet(path, row_group_size=20)
    formula = "foodchoice ~ C(size, levels=['<=2.3', '>2.3']) + lake"
    memory = ml.mnlogit(formula, df, ref="Fish", freq_weights=df["freq3"].to_numpy()).fit(
        method="firth"
    )
    streamed = ml.mnlogit(formula, ml.parquet(path), ref="Fish", freq_weights="freq3").fit(
        method="firth"
    )
    np.testing.assert_allclose(streamed.params, memory.params, rtol=1e-10)
    np.testing.assert_allclose(streamed.bse, memory.bse, rtol=1e-10)


def test_results_keep_the_method_through_save_and_repivot(tmp_path):
    res = fit_case("housing", "Sat ~ Infl + Type + Cont", "Freq", "Low", "firth")
    path = tmp_path / "firth.mlz"
    res.save(path)
    back = ml.load(path)
    assert back.method == "firth"
    assert back.llf == pytest.approx(res.llf, rel=1e-15)
    assert back.llf_penalized == pytest.approx(res.llf_penalized, rel=1e-15)
    assert "Penalized LL" in back.summary().as_text()
    pivoted = res.repivot("High")
    refit = fit_case("housing", "Sat ~ Infl + Type + Cont", "Freq", "High", "firth")
    np.testing.assert_allclose(pivoted.params, refit.params, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(pivoted.bse, refit.bse, rtol=1e-8)
    assert pivoted.llf_penalized == pytest.approx(refit.llf_penalized, rel=1e-11)


def test_dask_fit_equals_in_memory(local_cluster):
    dd = pytest.importorskip("dask.dataframe")
    distributed = pytest.importorskip("distributed")
    df = load("alligators")
    df["freq3"] = np.round(df["freq"] / 3)
    formula = "foodchoice ~ size + lake"
    memory = ml.mnlogit(formula, df, ref="Fish", freq_weights=df["freq3"].to_numpy()).fit(
        method="firth"
    )
    frame = dd.from_pandas(df, npartitions=3, sort=False)
    with distributed.Client(local_cluster):
        dask_res = ml.mnlogit(formula, frame, ref="Fish", freq_weights="freq3").fit(method="firth")
    np.testing.assert_allclose(dask_res.params, memory.params, rtol=1e-10)
    np.testing.assert_allclose(dask_res.bse, memory.bse, rtol=1e-10)
    assert dask_res.llf_penalized == pytest.approx(memory.llf_penalized, rel=1e-12)


def test_sampling_weights_are_refused(hsbdemo):
    w = np.linspace(0.5, 2.0, len(hsbdemo))
    with pytest.raises(ml.DataError, match="freq_weights"):
        ml.mnlogit("prog ~ write", hsbdemo, weights=w).fit(method="firth")


def test_separation_warning_and_summary_name_the_remedies():
    x = np.arange(12.0)
    y = np.array(["a"] * 4 + ["b"] * 4 + ["c"] * 4)
    X = np.column_stack([np.ones(12), x])
    with pytest.warns(ml.PerfectSeparationWarning) as rec:
        res = ml.MultinomialLogit(y, X).fit()
    for text in (str(rec[0].message), res.summary().as_text()):
        flat = " ".join(text.split())
        assert "fit(method='firth')" in flat
        assert "conf_int(method='profile')" in flat
    # The remedy named works on these data.
    assert ml.MultinomialLogit(y, X).fit(method="firth").converged


# -- median bias reduction ---------------------------------------------------------------------

MEDIAN_CASES = [
    ("housing_as_median", "housing", "Sat ~ Infl + Type + Cont", "Freq", "Low"),
    ("alligators_as_median", "alligators", "foodchoice ~ size + lake", "freq", "Fish"),
    ("alligators3_as_median", "alligators", "foodchoice ~ size + lake", "freq3", "Fish"),
    ("endometrial_as_median", "endometrial", "HG ~ NV + PI + EH", None, 0),
]


@pytest.mark.parametrize("case", MEDIAN_CASES, ids=[c[0] for c in MEDIAN_CASES])
def test_median_matches_brglm2(case):
    name, data, formula, weights, ref = case
    res = fit_case(data, formula, weights, ref, "firth-median")
    assert_matches_reference(res, load_reference(name))
    assert np.isnan(res.llf_penalized)
    assert "Median bias-reduced" in res.summary().as_text()


def test_median_third_cumulants_match_a_direct_sum(rng):
    from multilogit.engine.jeffreys import chunk_third_cumulants

    X = np.column_stack([np.ones(200), rng.normal(size=(200, 2))])
    w = rng.uniform(0.5, 2.0, 200)
    beta = rng.normal(scale=0.5, size=(2, 3))
    cov = np.linalg.inv(_information(X, w, beta))
    got = chunk_third_cumulants(X, w, beta, cov)
    eta = np.column_stack([np.zeros(200), X @ beta.T])
    P = np.exp(eta - eta.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    expected = np.zeros(6)
    for t in range(6):
        for i in range(200):
            # z over all three outcomes (the reference first, value 0).
            z = np.array([0.0] + [X[i] @ cov[a * 3 : (a + 1) * 3, t] for a in range(2)])
            mean = P[i] @ z
            expected[t] += w[i] * (P[i] @ (z - mean) ** 3)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-14)


def test_median_is_equivariant_under_column_scaling():
    df = load("endometrial")
    big = df.assign(PI=df["PI"] * 1e4, EH=df["EH"] / 1e3)
    a = ml.mnlogit("HG ~ NV + PI + EH", df, ref=0).fit(method="firth-median")
    b = ml.mnlogit("HG ~ NV + PI + EH", big, ref=0).fit(method="firth-median")
    factor = pd.Series({"Intercept": 1.0, "NV": 1.0, "PI": 1e-4, "EH": 1e3})
    np.testing.assert_allclose(b.params.iloc[:, 0], a.params.iloc[:, 0] * factor, rtol=1e-9)


def test_median_has_no_profile_intervals():
    res = fit_case("endometrial", "HG ~ NV + PI + EH", None, 0, "firth-median")
    with pytest.raises(ml.DataError, match="maximises no likelihood"):
        res.conf_int(method="profile")
