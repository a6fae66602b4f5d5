"""Code written for statsmodels' ``MNLogit`` runs on multilogit and gives the same numbers.

Each test fits the same data with both packages (hsbdemo with a formula and with an integer
outcome, statsmodels' own ``anes96`` example with a float-coded outcome) and compares what a
statsmodels user calls: ``t_test``, ``f_test``, ``wald_test(..., scalar=...)``, the row-level
likelihood functions, ``predict(which=...)``, ``resid_misclassified``, ``remove_data()``,
``summary2()`` and the equation labels.  Where we differ on purpose the difference is asserted.

Tolerances: the two fits stop at slightly different iterates (both Newton, different stopping
rules), so fitted quantities agree to ~1e-8 relative; functions evaluated at the same
parameters (likelihood, score, Hessian, predictions, contrasts at given params) agree to 1e-10.
"""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from statsmodels.iolib.summary2 import Summary as Summary2
from statsmodels.stats.contrast import ContrastResults

import multilogit as ml
from multilogit.exceptions import DataError
from multilogit.inference.hypothesis import TestResult

FIT = 1e-8  # two fits of the same data
SAME = 1e-10  # the same function at the same parameters


@pytest.fixture(scope="module")
def hsb():
    df = ml.datasets.load("hsbdemo")
    # statsmodels' formula API needs a numeric outcome: the category codes, same order.
    return df.assign(progc=df["prog"].cat.codes)


@pytest.fixture(scope="module")
def formula_pair(hsb):
    ours = ml.mnlogit("prog ~ ses + write", hsb).fit()
    theirs = smf.mnlogit("progc ~ ses + write", hsb).fit(disp=0, method="newton", tol=1e-12)
    return ours, theirs


def _int_case(hsb, dtype):
    y = (hsb["prog"].cat.codes.to_numpy() + 1).astype(dtype)
    X = sm.add_constant(hsb[["write", "read"]])
    return (
        ml.MultinomialLogit(y, X).fit(),
        sm.MNLogit(y, X).fit(disp=0, method="newton", tol=1e-12),
    )


@pytest.fixture(scope="module")
def int_pair(hsb):
    return _int_case(hsb, np.int64)


@pytest.fixture(scope="module")
def anes_pair():
    d = sm.datasets.anes96.load_pandas().data
    X = sm.add_constant(d[["logpopul", "selfLR", "age", "educ", "income"]])
    return (
        ml.MultinomialLogit(d["PID"], X).fit(),
        sm.MNLogit(d["PID"], X).fit(disp=0, method="newton", tol=1e-12),
    )


@pytest.fixture(scope="module", params=["formula", "int", "anes96"])
def pair(request, formula_pair, int_pair, anes_pair):
    return {"formula": formula_pair, "int": int_pair, "anes96": anes_pair}[request.param]


def _flat(sm_res):
    """statsmodels' flat parameter vector: ``params`` (p, J) in Fortran order."""
    return np.asarray(sm_res.params).ravel(order="F")


def _close(a, b, rtol):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * max(1.0, np.nanmax(np.abs(b))))


def test_the_fits_agree(pair):
    ours, theirs = pair
    _close(ours.params.T.to_numpy().ravel(), _flat(theirs), FIT)
    _close(ours.cov_params(), theirs.cov_params(), 1e-6)


# -- likelihood functions on the model ----------------------------------------------------------


def test_likelihood_functions_match_statsmodels(pair):
    ours, theirs = pair
    m, sm_m = ours.model, theirs.model
    rng = np.random.default_rng(3)
    for p in (_flat(theirs), _flat(theirs) + rng.normal(scale=0.05, size=_flat(theirs).size)):
        _close(m.loglike(p), sm_m.loglike(p), SAME)
        _close(m.score(p), sm_m.score(p), SAME)
        _close(m.score_obs(p), sm_m.score_obs(p), SAME)
        _close(m.hessian(p), sm_m.hessian(p), SAME)
        _close(m.information(p), -sm_m.hessian(p), SAME)
        llf, score = m.loglike_and_score(p)
        sm_llf, sm_score = sm_m.loglike_and_score(p)
        _close(llf, sm_llf, SAME)
        _close(score, sm_score, SAME)
        # statsmodels' loglikeobs is the (n, K) matrix d_ik log P_ik; ours its row sums.
        _close(m.loglikeobs(p), sm_m.loglikeobs(p).sum(axis=1), SAME)
        # params shaped like statsmodels' (p, J) work too.
        _close(m.score_obs(np.asarray(theirs.params)), sm_m.score_obs(_flat(theirs)), FIT)


def test_loglikeobs_is_one_value_per_row_unlike_statsmodels(int_pair):
    ours, theirs = int_pair
    p = _flat(theirs)
    assert theirs.model.loglikeobs(p).shape == (200, 3)  # statsmodels: (n, K)
    assert ours.model.loglikeobs(p).shape == (200,)
    assert ours.model.score_obs(p).shape == theirs.model.score_obs(p).shape == (200, 6)


def test_row_contributions_add_up_with_weights(hsb):
    f = np.arange(len(hsb)) % 3 + 1.0
    model = ml.mnlogit("prog ~ ses + write", hsb.assign(f=f), freq_weights="f")
    res = model.fit()
    b = res.params
    np.testing.assert_allclose(model.loglikeobs(b).sum(), model.loglike(b), rtol=1e-12)
    np.testing.assert_allclose(model.score_obs(b).sum(axis=0), model.score(b), atol=1e-9)
    # A row of weight f counts as f copies of the row.
    unweighted = ml.mnlogit("prog ~ ses + write", hsb).loglikeobs(b)
    np.testing.assert_allclose(model.loglikeobs(b), f * unweighted, rtol=1e-12)


def test_row_functions_stream_from_parquet(hsb, tmp_path):
    for k, (a, z) in enumerate([(0, 70), (70, 140), (140, 200)]):
        hsb.iloc[a:z].to_parquet(tmp_path / f"p{k}.parquet")
    big = ml.mnlogit("prog ~ ses + write", ml.parquet(tmp_path))
    small = ml.mnlogit("prog ~ ses + write", hsb)
    assert not big.is_in_memory
    b = small.fit().params
    np.testing.assert_allclose(big.loglikeobs(b), small.loglikeobs(b), rtol=1e-12)
    np.testing.assert_allclose(big.score_obs(b), small.score_obs(b), rtol=1e-12, atol=1e-14)
    res = big.fit()
    np.testing.assert_array_equal(
        res.resid_misclassified.to_numpy(), small.fit().resid_misclassified.to_numpy()
    )


def test_row_functions_and_var_on_dask_rows(hsb):
    dd = pytest.importorskip("dask.dataframe")
    import dask

    with dask.config.set(scheduler="synchronous"):
        big = ml.mnlogit("prog ~ ses + write", dd.from_pandas(hsb, npartitions=3))
        small = ml.mnlogit("prog ~ ses + write", hsb)
        b = small.fit().params
        np.testing.assert_allclose(big.loglikeobs(b), small.loglikeobs(b), rtol=1e-12)
        np.testing.assert_allclose(big.score_obs(b), small.score_obs(b), atol=1e-12)
        res, ref = big.fit(), small.fit()
        np.testing.assert_allclose(
            res.predict(which="var").compute().to_numpy(),
            ref.predict(which="var").to_numpy(),
            rtol=1e-12,
        )
        np.testing.assert_array_equal(
            res.resid_misclassified.to_numpy(), ref.resid_misclassified.to_numpy()
        )


def test_loglikeobs_keeps_tiny_probabilities(hsb):
    # Far from the fit, a row's probability underflows; its log must stay finite.
    model = ml.mnlogit("prog ~ ses + write", hsb)
    b = np.zeros(model.J * model.k_exog)
    b[model.k_exog - 1] = 30.0  # general:write
    ll = model.loglikeobs(b)
    assert np.all(np.isfinite(ll)) and ll.min() < -1000
    np.testing.assert_allclose(ll.sum(), model.loglike(b), rtol=1e-12)


# -- t_test, f_test, wald_test -------------------------------------------------------------------


def _same_contrast(ours, theirs, rtol=FIT):
    assert isinstance(ours, ContrastResults)
    assert ours.distribution == theirs.distribution
    for name in ("effect", "sd", "statistic", "pvalue", "fvalue", "df_denom", "df_num"):
        if hasattr(theirs, name) and getattr(theirs, name) is not None:
            _close(getattr(ours, name), getattr(theirs, name), rtol)
    assert ours.dist_args == pytest.approx(theirs.dist_args, rel=rtol)


def test_t_test_matrix_tuple_and_names(formula_pair):
    ours, theirs = formula_pair
    R = np.zeros((2, 8))
    R[0, 3] = 1.0  # general:write
    R[1, [3, 7]] = [1.0, -1.0]  # general:write - vocation:write
    q = np.array([0.0, 0.01])
    expected = theirs.t_test((R, q))
    for spec in [
        (R, q),
        ["general:write = 0", "general:write - vocation:write = 0.01"],
        # statsmodels' naming scheme "y<outcome>_<term>" with our outcome labels
        "ygeneral_write = 0, ygeneral_write - yvocation_write = 0.01",
    ]:
        got = ours.t_test(spec)
        _same_contrast(got, expected)
        assert got.summary().as_text() == expected.summary().as_text()
        _close(got.conf_int(), expected.conf_int(), FIT)
    one = ours.t_test(R[0])
    _same_contrast(one, theirs.t_test(R[0]))
    # A single contrast keeps statsmodels' shapes (1 x 1 statistic, 0-d p-value).
    assert np.shape(one.statistic) == np.shape(theirs.t_test(R[0]).statistic) == (1, 1)
    # A single coefficient's z is the one in the coefficient table.
    _close(one.statistic.item(), ours.tvalues.loc["write", "general"], 1e-12)
    _same_contrast(ours.t_test(R, use_t=True), theirs.t_test(R, use_t=True))


def test_statsmodels_constraint_strings_run_unchanged(int_pair):
    ours, theirs = int_pair
    spec = "y2_write = 0, y3_read - y2_read = 0.01"
    _same_contrast(ours.t_test(spec), theirs.t_test(spec))
    _same_contrast(ours.f_test(spec), theirs.f_test(spec))
    # Our own names say the same.
    _same_contrast(ours.t_test("2:write = 0, 3:read - 2:read = 0.01"), theirs.t_test(spec))


def test_f_test_and_wald_test_scalar(pair):
    ours, theirs = pair
    k = ours.params.size
    R = np.eye(k)[[1, k - 1]]
    _same_contrast(ours.f_test(R), theirs.f_test(R))
    assert str(ours.f_test(R)).startswith("<F test: F=")
    for scalar in (True, False):
        got = ours.wald_test(R, scalar=scalar)
        expected = theirs.wald_test(R, scalar=scalar)
        _same_contrast(got, expected)
        assert np.shape(got.statistic) == np.shape(expected.statistic)
    _same_contrast(ours.wald_test(R, use_f=True), theirs.wald_test(R, use_f=True, scalar=True))
    # Without statsmodels' options: our chi-squared TestResult, the same statistic.
    plain = ours.wald_test(R)
    assert isinstance(plain, TestResult)
    _close(plain.statistic, theirs.wald_test(R, scalar=True).statistic, FIT)


def test_contrasts_use_the_results_covariance(hsb):
    ours = ml.mnlogit("prog ~ ses + write", hsb).fit(cov_type="HC0")
    theirs = smf.mnlogit("progc ~ ses + write", hsb).fit(disp=0, cov_type="HC0", tol=1e-12)
    R = np.eye(8)[[3, 7]]
    _same_contrast(ours.t_test(R), theirs.t_test(R), 1e-6)
    _same_contrast(ours.f_test(R), theirs.f_test(R), 1e-6)
    # cov_p replaces the covariance, as statsmodels.
    V = np.asarray(theirs.cov_params())
    _same_contrast(ours.t_test(R, cov_p=V * 4), theirs.t_test(R, cov_p=V * 4), 1e-6)
    inv = np.linalg.inv(R @ V @ R.T)
    _same_contrast(ours.f_test(R, invcov=inv), theirs.f_test(R, invcov=inv), 1e-6)
    _same_contrast(
        ours.wald_test(R, df_constraints=5), theirs.wald_test(R, df_constraints=5), 1e-6
    )


def test_bare_term_constraint_tests_every_equation(formula_pair):
    ours, _ = formula_pair
    t = ours.t_test("write")
    _close(t.statistic.ravel(), ours.tvalues.loc["write"].to_numpy(), 1e-12)
    assert ours.f_test("write").df_num == 2


def test_contrast_errors_name_the_problem(formula_pair):
    ours, _ = formula_pair
    with pytest.raises(DataError, match="general:reading") as err:
        ours.t_test("general:reading = 0")
    # Both naming schemes are listed.
    assert "'general:Intercept'" in str(err.value) and "'ygeneral_Intercept'" in str(err.value)
    with pytest.raises(DataError, match="8 columns"):
        ours.t_test(np.ones((1, 3)))
    with pytest.raises(DataError, match="one per row of R"):
        ours.f_test((np.eye(8)[:2], [1.0, 2.0, 3.0]))
    with pytest.raises(DataError, match="linearly dependent"):
        ours.f_test(np.eye(8)[[3, 3]])
    with pytest.raises(DataError, match="finite"):
        ours.t_test(np.full((1, 8), np.nan))
    with pytest.raises(DataError, match="numeric matrix"):
        ours.t_test([["a", 1]])
    with pytest.raises(DataError, match="cov_p must be 8 x 8"):
        ours.t_test(np.eye(8)[:1], cov_p=np.eye(3))


def test_contrasts_on_aliased_and_separated_fits(hsb):
    df = hsb.assign(write2=2.0 * hsb["write"])
    res = ml.mnlogit("prog ~ write + write2", df).fit(drop_collinear=True)
    with pytest.raises(DataError, match="collinear.*write2"):
        res.t_test("general:write2 = 0")
    # Contrasts not involving the dropped column are unaffected by it.
    assert np.isfinite(res.f_test("write").fvalue)

    rng = np.random.default_rng(1)
    x = rng.normal(size=80)
    g = np.where(np.arange(80) % 5 == 0, "g2", "g1")
    y = rng.choice(["a", "b", "c"], 80)
    y[g == "g2"] = "a"
    with pytest.warns(ml.PerfectSeparationWarning):
        sep = ml.mnlogit("y ~ x + g", pd.DataFrame({"x": x, "y": y, "g": g})).fit()
    assert np.isfinite(sep.t_test("b:x = 0").pvalue)
    with pytest.warns(UserWarning, match="separation.*b:g\\[T.g2\\]"):
        t = sep.f_test("b:g[T.g2] = 0")
    assert np.isnan(t.fvalue) and np.isnan(t.pvalue)


# -- predictions and residuals -------------------------------------------------------------------


def test_predict_which_as_statsmodels(pair):
    ours, theirs = pair
    for which in ("mean", "var", "linear"):
        expected = theirs.predict(which=which)
        got = ours.predict(which=which)
        assert list(got.columns) == list(ours.outcomes)
        _close(got.to_numpy(), np.asarray(expected), FIT)
        # The model's predict at the same parameters agrees to rounding.
        P = np.asarray(theirs.params)
        _close(ours.model.predict(P, which=which), theirs.model.predict(P, which=which), SAME)
    np.testing.assert_array_equal(ours.predict(which="mean"), ours.predict(which="prob"))
    new = ours.model.exog[:5] if ours.model.formula is None else None
    if new is not None:
        _close(ours.predict(new, which="var"), theirs.predict(new, which="var"), FIT)


def test_predict_which_unknown_lists_the_valid_values(formula_pair):
    with pytest.raises(ValueError, match="'prob', 'var', 'class', 'linear', 'mean'; got 'vra'"):
        formula_pair[0].predict(which="vra")


def test_resid_misclassified_as_statsmodels(pair):
    ours, theirs = pair
    got = ours.resid_misclassified
    np.testing.assert_array_equal(got.to_numpy(), np.asarray(theirs.resid_misclassified))
    assert got.dtype == np.float64 and 0 < got.sum() < len(got)
    # The same count as the off-diagonal of the confusion matrix.
    tab = ours.pred_table().to_numpy()
    assert got.sum() == tab.sum() - np.trace(tab)


# -- remove_data ---------------------------------------------------------------------------------


def test_remove_data_keeps_what_needs_no_rows(hsb):
    model = ml.mnlogit("prog ~ ses + write", hsb)
    res = model.fit()
    other = model.fit(cov_type="HC1")
    before = {
        "params": res.params,
        "bse": res.bse,
        "llnull": res.llnull,
        "t": res.t_test("general:write").pvalue,
        "pred": res.predict(hsb.iloc[:5]),
        "text": res.summary().as_text().splitlines()[3:],
        "repivot": res.repivot("general").params,
    }
    size = len(pickle.dumps(res))
    assert res.remove_data() is None
    assert len(pickle.dumps(res)) < size / 2
    pd.testing.assert_frame_equal(res.params, before["params"])
    pd.testing.assert_frame_equal(res.bse, before["bse"])
    assert res.llnull == before["llnull"] and res.nobs == 200 and res.model.k_constant == 1
    assert res.t_test("general:write").pvalue == before["t"]
    pd.testing.assert_frame_equal(res.predict(hsb.iloc[:5]), before["pred"])
    pd.testing.assert_frame_equal(res.repivot("general").params, before["repivot"])
    assert res.summary().as_text().splitlines()[3:] == before["text"]
    assert "prog = general" in str(res.summary2())
    for call in (
        lambda: res.fittedvalues,
        lambda: res.resid_response,
        lambda: res.resid_misclassified,
        lambda: res.predict(),
        lambda: res.get_robustcov_results("HC0"),
        lambda: res.model.loglikeobs(res.params),
        lambda: res.model.exog,
        lambda: res.model.fit(),
    ):
        with pytest.raises(DataError, match="removed by remove_data"):
            call()
    # Nothing needs to be computed before the rows go.
    fresh = model.fit()
    fresh.remove_data()
    assert fresh.llnull == before["llnull"] and fresh.prsquared == res.prsquared
    assert fresh.summary().as_text().splitlines()[3:] == before["text"]
    # The model passed in and other results of it keep their rows.
    assert model.exog.shape == (200, 4)
    assert other.fittedvalues.shape == (200, 3)
    assert "no data" in repr(res.model)


def test_remove_data_on_streamed_rows_and_after_residuals(hsb, tmp_path):
    hsb.to_parquet(tmp_path / "h.parquet")
    res = ml.mnlogit("prog ~ ses + write", ml.parquet(tmp_path)).fit()
    assert res.resid_pearson.shape == (200, 3)  # cached row-level values are dropped too
    res.remove_data()
    with pytest.raises(DataError, match="removed by remove_data"):
        _ = res.resid_pearson
    assert res.prsquared > 0.1
    res.remove_data()  # twice is harmless
    res.save(tmp_path / "r.npz")
    loaded = ml.load(tmp_path / "r.npz")
    loaded.remove_data()  # loaded without data: nothing to drop
    pd.testing.assert_frame_equal(loaded.params, res.params)
    with pytest.raises(DataError, match="include_data=True"):
        _ = loaded.fittedvalues


# -- summary2 and equation labels ----------------------------------------------------------------


def test_summary2_is_statsmodels_summary2_with_the_same_numbers(pair):
    ours, theirs = pair
    s, t = ours.summary2(), theirs.summary2()
    assert isinstance(s, Summary2)
    J = ours.model.J
    assert len(s.tables) == len(t.tables) == J + 1
    for k in range(J):
        a, b = s.tables[k + 1], t.tables[k + 1]
        assert a.shape == b.shape
        # Column 0 holds the equation heading and the term names.
        assert list(a.iloc[:, 0]) == [str(n) for n in ours.model.exog_names]
        got = a.iloc[:, 1:].astype(float).to_numpy()
        np.testing.assert_allclose(got, b.iloc[:, 1:].astype(float).to_numpy(), atol=2e-4)
    html, latex = s.as_html(), s.as_latex()
    assert "<table" in html and "\\begin{table}" in latex


def test_summary2_differs_from_statsmodels_on_purpose(int_pair):
    ours, theirs = int_pair
    s, t = ours.summary2(), theirs.summary2()
    # statsmodels numbers the equations from 0 (y = 0 is the reference here); ours name the
    # outcome of each equation.
    assert [tab.columns[0] for tab in t.tables[1:]] == ["y = 0", "y = 1"]
    assert [tab.columns[0] for tab in s.tables[1:]] == ["y = 2", "y = 3"]
    # statsmodels heads normal-theory statistics "t"; ours "z".
    assert list(t.tables[1].columns[3:5]) == ["t", "P>|t|"]
    assert list(s.tables[1].columns[3:5]) == ["z", "P>|z|"]


def _equation_headings(summary) -> list[str]:
    table = summary.tables[1]
    return [str(row[0].data).strip() for row in table if str(row[0].data).strip().startswith("y")]


@pytest.mark.parametrize("dtype", [np.int64, np.float64])
def test_integer_valued_outcomes_print_as_integers(hsb, dtype):
    ours, theirs = _int_case(hsb, dtype)
    assert _equation_headings(ours.summary()) == ["y=2", "y=3"]
    assert _equation_headings(ours.summary()) == _equation_headings(theirs.summary())
    text = str(ours.summary())
    assert "y=2.0" not in text
    assert "(reference: 1)" in text
    header = [[str(c.data).strip() for c in row] for row in ours.summary().tables[0]]
    assert ["1"] == [row[1] for row in header if row[0] == "Reference outcome:"]
    assert "Reference outcome: 1 " in str(ours.summary2())


def test_margeff_headings_as_statsmodels(hsb):
    ours, theirs = _int_case(hsb, np.float64)
    expected = _equation_headings(theirs.get_margeff().summary())
    got = ours.get_margeff(dummy=False).summary()
    assert _equation_headings(got) == expected == ["y=1", "y=2", "y=3"]
    header = [[str(c.data).strip() for c in row] for row in got.tables[0]]
    assert ["1"] == [row[3] for row in header if row[2] == "Reference outcome:"]


def test_anes96_labels_as_statsmodels(anes_pair):
    ours, theirs = anes_pair
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = [str(row[0].data).strip() for row in theirs.summary().tables[1]]
    got = [str(row[0].data).strip() for row in ours.summary().tables[1]]
    heads = [h for h in expected if h.startswith("PID=")]
    assert heads == [f"PID={k}" for k in range(1, 7)]
    assert [h for h in got if h.startswith("PID=")] == heads


# -- the other deliberate differences of docs/coming_from.rst ------------------------------------


def test_fittedvalues_and_model_sizes_differ_on_purpose(hsb):
    y = hsb["prog"].cat.codes.to_numpy() + 1
    X = sm.add_constant(hsb[["write", "read"]].to_numpy(float))
    ours = ml.MultinomialLogit(y, X).fit()
    theirs = sm.MNLogit(y, X).fit(disp=0, method="newton", tol=1e-12)
    # statsmodels' fittedvalues are the linear predictors without the reference's column.
    _close(theirs.fittedvalues, ours.predict(which="linear").to_numpy()[:, 1:], FIT)
    _close(ours.fittedvalues.to_numpy(), theirs.predict(), FIT)
    # statsmodels standardises each indicator by P(1 - P); ours by P (Pearson chi-squared).
    d = ours.resid_response.to_numpy()
    P = ours.fittedvalues.to_numpy()
    _close(theirs.resid_pearson, d / np.sqrt(P * (1 - P)), FIT)
    _close(ours.resid_pearson.to_numpy(), d / np.sqrt(P), 1e-12)
    assert np.shape(theirs.conf_int()) == (2, 3, 2) and ours.conf_int().shape == (6, 2)
    assert (theirs.model.J, theirs.model.K) == (3, 3)
    assert (ours.model.J, ours.model.k_exog) == (2, 3)


def test_robust_factors_differ_on_purpose(hsb):
    ours = ml.mnlogit("prog ~ ses + write", hsb)
    formula = "progc ~ ses + write"
    sm_model = smf.mnlogit(formula, hsb)

    def sm_cov(cov_type, **kw):
        extra = {"cov_kwds": kw} if kw else {}  # an empty cov_kwds reaches the optimizer
        res = sm_model.fit(disp=0, method="newton", tol=1e-12, cov_type=cov_type, **extra)
        return np.asarray(res.cov_params())

    hc0 = ours.fit(cov_type="HC0").cov_params().to_numpy()
    _close(hc0, sm_cov("HC0"), 1e-6)
    _close(sm_cov("HC1"), sm_cov("HC0"), 1e-12)  # statsmodels' HC1 applies no factor
    _close(ours.fit(cov_type="HC1").cov_params().to_numpy(), hc0 * 200 / 199, 1e-12)
    g = hsb["cid"].to_numpy()
    G, n, k = len(np.unique(g)), 200, 8
    stata = ours.fit(cov_type="cluster", cov_kwds={"groups": "cid"}).cov_params().to_numpy()
    statsm = ours.fit(
        cov_type="cluster", cov_kwds={"groups": "cid", "df_correction": "statsmodels"}
    )
    _close(statsm.cov_params().to_numpy(), sm_cov("cluster", groups=g), 1e-6)
    _close(stata * (n - 1) / (n - k), statsm.cov_params().to_numpy(), 1e-12)
    assert G > 1


def test_dependent_constraints_error_where_statsmodels_warns(formula_pair):
    ours, theirs = formula_pair
    R = np.eye(8)[[3, 3]]
    with pytest.warns(Warning, match="rank"):
        theirs.wald_test(R, scalar=True)
    with pytest.raises(DataError, match="linearly dependent"):
        ours.wald_test(R, scalar=True)
