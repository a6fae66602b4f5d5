"""Inputs that gave wrong numbers, raw exceptions or misleading messages (Reliability II).

References are independent of the code under test: a fit on weights of ordinary scale (itself
matched to statsmodels' GLM in ``test_weights.py``) for rescaled weights; the log-likelihood
summed by hand from predicted probabilities; a fit on the unshifted column for shifted ones
(the slope and its standard error are the same in exact arithmetic); a fit on ``bool`` and
``str`` data for nullable and tuple data; the closed form of the intercept-only model.
"""

import re
import warnings

import numpy as np
import pandas as pd
import pytest

import multilogit as ml

FORMULA = "prog ~ ses + write"


@pytest.fixture(scope="module")
def hsb():
    return ml.datasets.load("hsbdemo")


@pytest.fixture(scope="module")
def w(hsb):
    return np.random.default_rng(5).uniform(0.5, 2.0, len(hsb))


@pytest.fixture(scope="module")
def base(hsb, w):
    return ml.mnlogit(FORMULA, hsb, weights=w).fit(tol=1e-10)


# -- sampling weights: any scale ----------------------------------------------------------------


@pytest.mark.parametrize("scale", [1e-16, 1e-200, 1e200, 1e300])
def test_sampling_weights_any_scale_same_fit(hsb, w, base, scale):
    # Before: 1e-16 stopped after one iteration "converged" with params off by 1e-3, 1e-200
    # gave HC1 standard errors of 0, 1e200 a FitError.
    res = ml.mnlogit(FORMULA, hsb, weights=w * scale).fit(tol=1e-10)
    assert res.converged and res.n_iter == base.n_iter
    np.testing.assert_allclose(res.params, base.params, rtol=1e-9)
    np.testing.assert_allclose(res.bse, base.bse, rtol=1e-9)
    for cov_type in ("HC0", "nonrobust"):
        a, b = base.get_robustcov_results(cov_type), res.get_robustcov_results(cov_type)
        # The robust covariance does not depend on the scale; the nonrobust one (the inverse
        # of the weighted information) is reported in the scale of the weights as given.
        factor = 1.0 if cov_type == "HC0" else 1.0 / scale
        np.testing.assert_allclose(b.cov_params(), a.cov_params() * factor, rtol=1e-9)
    # The log pseudo-likelihood is that of the weights as given (as Stata's).
    np.testing.assert_allclose(res.llf, base.llf * scale, rtol=1e-12)
    np.testing.assert_allclose(res.llnull, base.llnull * scale, rtol=1e-12)
    np.testing.assert_allclose(res.iteration_log["llf"].iloc[-1], res.llf, rtol=1e-12)


def test_sampling_weights_report_the_original_scale(hsb):
    # Mean weight near 10: the solver's rows are divided by 8.  Every reported number must be
    # that of the weights as given: the log-likelihood summed by hand, the model's loglike and
    # score there.
    wt = np.random.default_rng(1).uniform(5.0, 15.0, len(hsb))
    res = ml.mnlogit(FORMULA, hsb, weights=wt).fit(tol=1e-10)
    assert res.model.weight_scale == 8.0
    P = res.predict().to_numpy()
    codes = hsb["prog"].cat.codes.to_numpy()
    by_hand = float(np.sum(wt * np.log(P[np.arange(len(hsb)), codes])))
    np.testing.assert_allclose(res.llf, by_hand, rtol=1e-12)
    np.testing.assert_allclose(res.model.loglike(res.params), by_hand, rtol=1e-12)
    n_k = np.bincount(codes, weights=wt)
    np.testing.assert_allclose(res.llnull, np.sum(n_k * np.log(n_k / wt.sum())), rtol=1e-12)
    # The score at the estimates is zero on the scale of the weights as given.
    assert np.max(np.abs(res.model.score(res.params))) < 1e-6 * wt.sum()
    # A callback sees the log rows in the original scale too.
    rows = []
    ml.mnlogit(FORMULA, hsb, weights=wt).fit(callback=lambda b, row: rows.append(row))
    np.testing.assert_allclose(rows[-1]["llf"], res.llf, rtol=1e-9)


@pytest.mark.parametrize(
    ("fw", "fragment"),
    [(1e-16, "freq_weights sum to 2e-14"), (1e-3, "sum to 0.2"), (1e200, "more than 2**53")],
)
def test_frequency_weights_out_of_range_are_refused(hsb, fw, fragment):
    with pytest.raises(ml.DataError, match=re.escape(fragment)):
        ml.mnlogit(FORMULA, hsb, freq_weights=np.full(len(hsb), fw))


def test_sampling_weights_spanning_the_float_range_are_refused(hsb):
    wt = np.ones(len(hsb))
    wt[0], wt[1] = 1e-300, 1e300
    with pytest.raises(ml.DataError, match="orders of magnitude"):
        ml.mnlogit(FORMULA, hsb, weights=wt)


# -- outcomes without weight --------------------------------------------------------------------


def test_zero_total_weight_outcome_is_named(hsb):
    wt = np.where(hsb["prog"].to_numpy() == "vocation", 0.0, 1.0)
    with pytest.raises(ml.DataError, match=r"outcome\(s\) 'vocation' \(50 row\(s\)\)"):
        ml.mnlogit(FORMULA, hsb, weights=wt).fit()
    with pytest.raises(ml.DataError, match="reference outcome 'vocation' has zero total weight"):
        ml.mnlogit(FORMULA, hsb, freq_weights=wt, ref="vocation").fit()
    # Never reported as separation: the refusal is a DataError, not PerfectSeparationError.
    with pytest.raises(ml.DataError) as info:
        ml.mnlogit(FORMULA, hsb, weights=wt, ref="vocation").fit()
    assert not isinstance(info.value, ml.PerfectSeparationError)
    assert "'academic', 'general'" in str(info.value)


# -- prediction on rows with missing or infinite values -----------------------------------------


def _new_rows(hsb):
    new = hsb.head(4).copy()
    new["write"] = new["write"].astype(float)
    new.loc[new.index[0], "write"] = np.inf
    return new


def test_predict_inf_raises_under_missing_raise(hsb):
    res = ml.mnlogit(FORMULA, hsb).fit()
    with pytest.raises(ml.DataError, match=r"1 of 4 new row\(s\).*'write'"):
        res.predict(_new_rows(hsb))
    with pytest.raises(ml.DataError, match="infinite"):
        res.get_prediction(_new_rows(hsb))
    arr = ml.MultinomialLogit(hsb["prog"], np.column_stack([np.ones(200), hsb["write"]])).fit()
    for bad in (np.inf, np.nan):
        with pytest.raises(ml.DataError, match=r"1 of 2 new row\(s\).*'x2'"):
            arr.predict(np.array([[1.0, bad], [1.0, 50.0]]))


def test_predict_drops_and_says_so_under_missing_drop(hsb):
    res = ml.mnlogit(FORMULA, hsb, missing="drop").fit()
    new = _new_rows(hsb)
    new.loc[new.index[2], "ses"] = None
    with pytest.warns(UserWarning, match=r"2 of 4 new row\(s\)"):
        pred = res.predict(new)
    assert list(pred.index) == [1, 3]
    # The rows kept get the predictions they get alone.
    pd.testing.assert_frame_equal(pred, res.predict(hsb.iloc[[1, 3]]))
    assert np.isfinite(pred.to_numpy()).all()


# -- models without a constant -------------------------------------------------------------------


def test_no_constant_null_model_not_available(hsb):
    res = ml.mnlogit("prog ~ 0 + write", hsb).fit()
    assert np.isnan(res.llnull) and np.isnan(res.llr_pvalue) and np.isnan(res.prsquared)
    assert "not available" in str(res.summary())


# -- raw exceptions become clear errors or right answers ------------------------------------------


def test_nullable_boolean_column_fits_like_bool(hsb):
    d = hsb.assign(b=hsb["write"] > 50)
    a = ml.mnlogit("prog ~ b + write", d).fit(tol=1e-10)
    n = ml.mnlogit("prog ~ nb + write", d.assign(nb=d["b"].astype("boolean"))).fit(tol=1e-10)
    np.testing.assert_array_equal(a.params.to_numpy(), n.params.to_numpy())


@pytest.mark.parametrize("formula", ["prog ~ 0", "prog ~ -1"])
def test_no_parameters_is_a_data_error(hsb, formula):
    with pytest.raises(ml.DataError, match="no parameters"):
        ml.mnlogit(formula, hsb)


def test_tuple_outcome_labels_work_as_strings(hsb):
    names = {"academic": ("a", 1), "general": ("g", 2), "vocation": ("v", 3)}
    d = hsb.assign(t=[names[p] for p in hsb["prog"]])
    res = ml.mnlogit("t ~ write", d, ref=("g", 2)).fit(tol=1e-10)
    ref = ml.mnlogit("prog ~ write", hsb, ref="general").fit(tol=1e-10)
    np.testing.assert_array_equal(res.params.to_numpy(), ref.params.to_numpy())
    assert list(res.params.columns) == ["('a', 1)", "('v', 3)"]
    assert "('a', 1)" in str(res.summary())


@pytest.mark.parametrize(
    ("kw", "fragment"),
    [
        ({"maxiter": None}, "maxiter must be a non-negative integer; got None"),
        ({"maxiter": True}, "maxiter must be"),
        ({"tol": "abc"}, "tol must be a positive number; got 'abc'"),
        ({"tol": True}, "tol must be"),
    ],
)
def test_fit_options_named_in_errors(hsb, kw, fragment):
    with pytest.raises(ValueError, match=re.escape(fragment)):
        ml.mnlogit(FORMULA, hsb).fit(**kw)


# -- ill-conditioning is not rank deficiency or separation --------------------------------------


def test_bad_start_values_reported_as_ill_conditioning(hsb):
    start = np.array([[1000.0, -20.0, 0.0], [-1000.0, 20.0, 0.0]]).T
    with pytest.raises(ml.FitError) as info:
        ml.mnlogit("prog ~ write + math", hsb).fit(start_params=start)
    msg = str(info.value)
    assert "ill-conditioning" in msg and "start_params" in msg and "condition number" in msg
    assert "rank deficient or" not in msg and "separated" not in msg.split("although")[0]


def test_large_offset_is_near_collinearity_not_an_exact_combination(hsb):
    d = hsb.assign(x=hsb["write"] + 1e8)
    with pytest.raises(ml.DataError) as info:
        ml.mnlogit("prog ~ x + math", d).fit()
    msg = str(info.value)
    assert "nearly (not exactly) a linear combination" in msg
    assert re.search(r"condition number of the column-scaled design \d", msg)
    assert "centre or rescale" in msg
    # Exactly aliased columns are still called so.
    with pytest.raises(ml.DataError, match="'I\\(2 \\* write\\)' is a linear combination"):
        ml.mnlogit("prog ~ write + I(2 * write)", hsb).fit()


def test_moderate_offset_keeps_slope_and_se(hsb):
    # x + 1e5 is well within what the fit resolves: slope and SE as for x (to the digits the
    # offset leaves, ~ cond * eps with cond ~ 1e4 for the intercept block).
    ref = ml.mnlogit("prog ~ write + math", hsb).fit(tol=1e-10)
    res = ml.mnlogit("prog ~ x + math", hsb.assign(x=hsb["write"] + 1e5)).fit(tol=1e-10)
    np.testing.assert_allclose(res.params.loc["x"], ref.params.loc["write"], rtol=1e-7)
    np.testing.assert_allclose(res.bse.loc["x"], ref.bse.loc["write"], rtol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_allclose(res.llf, ref.llf, rtol=1e-10)


def test_large_offset_below_the_rank_tolerance_fits_and_says_what_it_costs(hsb):
    # x + 1e7 is not aliased (its centred variation is 1e-6 of its norm): the fit goes ahead,
    # with a warning and a summary note giving the accuracy the conditioning leaves to the
    # standard errors; they are within it of the fit on x.
    ref = ml.mnlogit("prog ~ write + math", hsb).fit(tol=1e-10)
    with pytest.warns(UserWarning, match="ill-conditioned") as rec:
        res = ml.mnlogit("prog ~ x + math", hsb.assign(x=hsb["write"] + 1e7)).fit(tol=1e-10)
    accuracy = float(re.search(r"accurate to only about (\S+) relative", str(rec[0].message))[1])
    assert 1e-4 < accuracy < 1e-2
    np.testing.assert_allclose(res.bse.loc["x"], ref.bse.loc["write"], rtol=2 * accuracy)
    np.testing.assert_allclose(res.params.loc["x"], ref.params.loc["write"], rtol=1e-8)
    assert "ill-conditioned" in str(res.summary())
    # A well-conditioned design gets no such note.
    assert "ill-conditioned" not in str(ref.summary())


def test_no_parameters_on_dask_data(hsb):
    dd = pytest.importorskip("dask.dataframe")
    dask = pytest.importorskip("dask")
    with dask.config.set(scheduler="synchronous"):
        with pytest.raises(ml.DataError, match="no parameters"):
            ml.mnlogit("prog ~ 0", dd.from_pandas(hsb, npartitions=2))


def test_sampling_weight_scale_on_dask_data(hsb, w, base):
    # Rows a backend holds keep the weights as given; the solver reads them divided by a
    # power of two near their mean.  Beyond the range where their squares (the robust meat)
    # are float64 numbers, a DataError says to divide them by a constant.
    dd = pytest.importorskip("dask.dataframe")
    dask = pytest.importorskip("dask")
    with dask.config.set(scheduler="synchronous"):
        for scale in (1e-16, 1e100):
            ddf = dd.from_pandas(hsb.assign(pw=w * scale), npartitions=2)
            res = ml.mnlogit(FORMULA, ddf, weights="pw").fit(tol=1e-10)
            assert not res.model.is_in_memory and res.converged
            np.testing.assert_allclose(res.params, base.params, rtol=1e-9)
            np.testing.assert_allclose(res.bse, base.bse, rtol=1e-9)
            np.testing.assert_allclose(res.llf, base.llf * scale, rtol=1e-12)
        ddf = dd.from_pandas(hsb.assign(pw=w * 1e-200), npartitions=2)
        with pytest.raises(ml.DataError, match="divide the sampling weights by a constant"):
            ml.mnlogit(FORMULA, ddf, weights="pw").fit()
