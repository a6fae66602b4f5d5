"""Separation, rank deficiency, column scaling, and every missing/malformed-data error path."""

import contextlib
import re
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

import multilogit as ml
from multilogit.engine.scaled import column_scale
from multilogit.fit.rank import aliased_columns
from multilogit.fit.separation import find_separation


@pytest.fixture(scope="module")
def hsb():
    return ml.datasets.load("hsbdemo")


@contextlib.contextmanager
def _no_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


# ---------------------------------------------------------------------------------------------
# Separation


@pytest.fixture(scope="module")
def complete_df():
    rng = np.random.default_rng(0)
    x = rng.normal(size=60)
    y = np.where(x < -0.5, "a", np.where(x < 0.5, "b", "c"))
    return pd.DataFrame({"x": x, "y": y})


@pytest.fixture(scope="module")
def quasi_df():
    rng = np.random.default_rng(1)
    x = rng.normal(size=80)
    g = np.where(np.arange(80) % 5 == 0, "g2", "g1")
    y = rng.choice(["a", "b", "c"], 80)
    y[g == "g2"] = "a"  # every g2 row has the reference outcome
    return pd.DataFrame({"x": x, "y": y, "g": g})


def test_complete_separation_warns_names_and_stops(complete_df):
    with pytest.warns(ml.PerfectSeparationWarning, match="complete separation") as rec:
        res = ml.mnlogit("y ~ x", complete_df).fit()
    msg = str(rec[0].message)
    assert "'x'" in msg and "'b'" in msg and "'c'" in msg
    sep = res.separation
    assert sep.kind == "complete"
    assert sep.outcomes == ("a", "b", "c")
    assert "x" in sep.terms
    assert sep.n_perfect == sep.n_separated == 60
    assert not res.converged
    # Stopped early: a handful of iterations, coefficients far from the huge values Newton
    # reaches when left alone.
    assert res.n_iter < 10
    assert np.all(np.isfinite(res.params.to_numpy()))
    assert np.all(np.isnan(res.bse.loc["x"]))
    assert np.all(np.isnan(res.pvalues.loc["x"]))
    text = res.summary().as_text()
    assert "complete separation" in text and "NaN" in text


def test_quasi_separation_only_affected_se_nan(quasi_df):
    with pytest.warns(ml.PerfectSeparationWarning, match="quasi-complete separation"):
        res = ml.mnlogit("y ~ x + g", quasi_df).fit()
    sep = res.separation
    assert sep.kind == "quasi-complete"
    assert sep.terms == ("g[T.g2]",)
    assert sep.n_separated == 16
    assert sep.diverging == [("b", "g[T.g2]"), ("c", "g[T.g2]")]
    assert np.all(np.isnan(res.bse.loc["g[T.g2]"]))
    assert np.all(np.isfinite(res.bse.loc[["Intercept", "x"]].to_numpy()))
    assert np.all(np.isnan(res.conf_int().xs("g[T.g2]", level="term").to_numpy()))
    assert res.n_iter < 10
    d = sep.direction_frame()
    assert list(d.index) == ["Intercept", "g[T.g2]", "x"]
    assert np.all(d.loc["g[T.g2]"] < 0) and np.all(d.loc[["Intercept", "x"]] == 0)
    assert "quasi-complete separation" in res.summary().as_text()


def test_separation_ignore_iterates_to_huge_values(quasi_df):
    # The behaviour the monitor prevents: with detection off, Newton walks off to about -37
    # (where exp underflows relative to 1) and claims convergence.
    with _no_warnings():
        res = ml.mnlogit("y ~ x + g", quasi_df).fit(separation="ignore")
    assert res.separation is None
    assert res.params.loc["g[T.g2]"].abs().min() > 25


def test_separation_raise(quasi_df, complete_df):
    with pytest.raises(ml.PerfectSeparationError, match=r"quasi-complete.*'g\[T\.g2\]'"):
        ml.mnlogit("y ~ x + g", quasi_df).fit(separation="raise")
    with pytest.raises(ml.FitError, match="complete separation"):
        ml.mnlogit("y ~ x", complete_df).fit(separation="raise")
    assert issubclass(ml.PerfectSeparationError, ValueError)


def test_separation_mode_validated(hsb):
    with pytest.raises(ValueError, match="separation must be one of"):
        ml.mnlogit("prog ~ write", hsb).fit(separation="maybe")


def test_no_separation_no_warning(hsb):
    with _no_warnings():
        res = ml.mnlogit("prog ~ ses + write", hsb).fit()
    assert res.separation is None and res.converged


def test_binary_textbook_cases():
    # Albert & Anderson's two cases for K = 2.
    x = np.array([1.0, 2, 3, 4, 5, 6])
    X = np.column_stack([np.ones(6), x])
    sep = find_separation(X, np.array([-1, -1, -1, 0, 0, 0]), 1)
    assert sep.kind == "complete" and sep.terms == ("x1", "x2")
    x = np.array([1.0, 2, 3, 3, 3, 4, 5, 6])
    X = np.column_stack([np.ones(8), x])
    sep = find_separation(X, np.array([-1, -1, -1, 0, -1, 0, 0, 0]), 1)
    assert sep.kind == "quasi-complete"
    assert sep.n_separated == 5 and sep.n_perfect == 5  # the three x = 3 rows stay uncertain
    # Overlap: the MLE exists.
    y = np.array([-1, 0, -1, 0, -1, 0, 0, -1])
    assert find_separation(X, y, 1) is None


def test_binary_separation_matches_statsmodels_verdict():
    # statsmodels' Logit flags the same data as perfectly separated.
    x = np.array([1.0, 2, 3, 4, 5, 6])
    y = np.array([0, 0, 0, 1, 1, 1])
    from statsmodels.tools.sm_exceptions import PerfectSeparationWarning as SMWarning

    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        sm.Logit(y, sm.add_constant(x)).fit(disp=0, maxiter=50)
    assert any(issubclass(w.category, SMWarning) for w in rec)
    with pytest.warns(ml.PerfectSeparationWarning):
        res = ml.MultinomialLogit(y, sm.add_constant(x)).fit()
    assert res.separation.kind == "complete"


def test_separation_with_drop_collinear(quasi_df):
    df = quasi_df.assign(x2=2 * quasi_df.x)
    with pytest.warns(ml.PerfectSeparationWarning):
        res = ml.mnlogit("y ~ x + g + x2", df).fit(drop_collinear=True)
    assert res.separation.params.shape == (2, 4)
    assert np.all(np.isnan(res.params.loc["x2"]))
    assert np.all(np.isnan(res.bse.loc["g[T.g2]"]))
    assert np.all(np.isfinite(res.bse.loc["x"]))


# ---------------------------------------------------------------------------------------------
# Rank deficiency


def _aliased_reference(X, tol=1e-7):
    """R's rule by brute force: a column is aliased if least squares on the earlier kept
    columns leaves a relative residual below tol."""
    kept, out = [], []
    for k in range(X.shape[1]):
        col = X[:, k]
        nrm = np.linalg.norm(col)
        if nrm == 0:
            out.append(True)
            continue
        if kept:
            A = X[:, kept]
            res = col - A @ np.linalg.lstsq(A, col, rcond=None)[0]
            if np.linalg.norm(res) < tol * nrm:
                out.append(True)
                continue
        kept.append(k)
        out.append(False)
    return np.array(out)


@pytest.mark.parametrize("seed", range(5))
def test_aliased_columns_matches_sequential_rule(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 30))
    base = rng.normal(size=(n, 3))
    cols = [base[:, 0], 2 * base[:, 0], base[:, 1], base[:, 0] - base[:, 1], np.zeros(n)]
    cols += [base[:, 2], base[:, 1] * 1e6]
    X = np.column_stack(cols)
    assert np.array_equal(aliased_columns(X), _aliased_reference(X))


def test_aliased_after_exact_dependence_small_n():
    # A plain QR would spend a direction on the rounding residue of column 2 and then call
    # the independent column 3 aliased; R's limited pivoting (and ours) does not.
    X = np.array([[1.0, 2.0, 0.0], [1.0, 2.0, 1.0], [0.0, 0.0, 5.0]])
    assert aliased_columns(X).tolist() == [False, True, False]


def test_rank_deficient_formula_names_columns(hsb):
    df = hsb.assign(w2=2 * hsb.write, rw=hsb.read + hsb.write)
    with pytest.raises(ml.DataError) as exc:
        ml.mnlogit("prog ~ ses + write + w2 + read + rw", df).fit()
    msg = str(exc.value)
    assert "rank 5 < 7" in msg
    assert "'w2' is a linear combination of 'write'" in msg
    assert "'rw' is a linear combination of 'write', 'read'" in msg
    assert "drop_collinear=True" in msg


def test_rank_deficient_array_design():
    rng = np.random.default_rng(3)
    X = pd.DataFrame({"const": 1.0, "a": rng.normal(size=50)})
    X["b"] = 3 * X["a"] - 1
    y = rng.choice(["u", "v", "w"], 50)
    with pytest.raises(ValueError, match=r"'b' is a linear combination of 'const', 'a'"):
        ml.MultinomialLogit(y, X).fit()


def test_drop_collinear_like_r(hsb):
    df = hsb.assign(w2=2 * hsb.write, rw=hsb.read + hsb.write)
    res = ml.mnlogit("prog ~ ses + write + w2 + read + rw", df).fit(drop_collinear=True)
    ref = ml.mnlogit("prog ~ ses + write + read", hsb).fit()
    assert np.all(np.isnan(res.params.loc[["w2", "rw"]].to_numpy()))
    assert np.all(np.isnan(res.bse.loc[["w2", "rw"]].to_numpy()))
    kept = ref.params.index
    np.testing.assert_allclose(res.params.loc[kept], ref.params, rtol=1e-12)
    np.testing.assert_allclose(res.bse.loc[kept], ref.bse, rtol=1e-10)
    for attr in ("llf", "aic", "bic", "df_model", "df_resid", "k_params", "llr_pvalue"):
        assert getattr(res, attr) == pytest.approx(getattr(ref, attr), rel=1e-12), attr
    pd.testing.assert_frame_equal(res.predict(df.head(20)), ref.predict(hsb.head(20)))
    assert res.cov_params().shape == (14, 14)
    assert "'w2', 'rw' dropped as aliased" in res.summary().as_text()


def test_all_zero_dummy_after_dropping_rows(hsb):
    df = hsb[hsb.ses != "high"]
    with pytest.raises(ml.DataError, match=r"T\.high\]' is all zero"):
        ml.mnlogit('prog ~ C(ses, levels=["low", "middle", "high"]) + write', df).fit()
    res = ml.mnlogit('prog ~ C(ses, levels=["low", "middle", "high"]) + write', df).fit(
        drop_collinear=True
    )
    assert res.params.iloc[2].isna().all() and res.converged


def test_more_parameters_than_observations(hsb):
    with pytest.raises(ml.DataError, match=r"8 parameters \(2 outcome equations x 4 terms\)"):
        ml.mnlogit("prog ~ ses + write", hsb.iloc[[0, 1, 4, 5, 9, 11, 12]]).fit()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(4, 6))
    with pytest.raises(ml.DataError, match="parameters"):
        ml.MultinomialLogit(["a", "b", "a", "b"], X).fit()
    with pytest.raises(ml.DataError, match=r"8 parameters .* after dropping aliased"):
        ml.MultinomialLogit(["a", "b", "c", "a"], X).fit(drop_collinear=True)
    with pytest.raises(ml.DataError, match="every column of the design is zero"):
        ml.MultinomialLogit(["a", "b", "a", "b"], np.zeros((4, 2))).fit(drop_collinear=True)


# ---------------------------------------------------------------------------------------------
# Scale robustness


def _scaled_frame(hsb, s_write, s_read):
    return pd.DataFrame(
        {"prog": hsb.prog, "w": hsb.write * s_write, "r": hsb.read * s_read, "ses": hsb.ses}
    )


@pytest.mark.parametrize(("s_write", "s_read"), [(1e6, 1e-6), (1e-6, 1e-6), (1e6, 1e6)])
def test_wild_scales_same_mle(hsb, s_write, s_read):
    ref = ml.mnlogit("prog ~ ses + w + r", _scaled_frame(hsb, 1.0, 1.0)).fit(tol=1e-10)
    with _no_warnings():
        res = ml.mnlogit("prog ~ ses + w + r", _scaled_frame(hsb, s_write, s_read)).fit()
    assert res.converged
    expect = ref.params.copy()
    expect.loc["w"] /= s_write
    expect.loc["r"] /= s_read
    np.testing.assert_allclose(res.params, expect, rtol=1e-6)
    bse = ref.bse.copy()
    bse.loc["w"] /= s_write
    bse.loc["r"] /= s_read
    np.testing.assert_allclose(res.bse, bse, rtol=1e-6)
    assert res.llf == pytest.approx(ref.llf, rel=1e-12)


def test_tiny_scale_alone_converges_fully(hsb):
    # Only an intercept and a covariate of size 1e-6: the coefficient is ~1e4 in magnitude,
    # and the unscaled step test (tol * (1 + |beta|)) alone would be meaningless.
    ref = ml.mnlogit("prog ~ write", hsb).fit(tol=1e-10)
    res = ml.mnlogit("prog ~ w", pd.DataFrame({"prog": hsb.prog, "w": hsb.write * 1e-6})).fit()
    np.testing.assert_allclose(res.params.loc["w"], ref.params.loc["write"] * 1e6, rtol=1e-8)


def test_scaled_fit_callback_sees_original_units(hsb):
    seen = []
    df = _scaled_frame(hsb, 1e6, 1.0)
    res = ml.mnlogit("prog ~ w + r", df).fit(callback=lambda b, row: seen.append(b))
    np.testing.assert_allclose(seen[-1], res.params.T.to_numpy().ravel(), rtol=1e-12)


def test_column_scale_is_power_of_two():
    X = np.column_stack([np.ones(3), [1e-6, 2e-6, 3e-6], [1.0, 2.0, 4.0]])
    s = column_scale(X)
    assert s[0] == 1 and s[2] == 4 and np.log2(s[1]) == np.round(np.log2(s[1]))
    assert column_scale(np.ones((3, 2))) is None


# ---------------------------------------------------------------------------------------------
# Missing and malformed data: every path is one of our errors with a message naming the problem


def test_missing_raise_names_rows_and_columns(hsb):
    df = hsb.copy()
    df.loc[[3, 7], "write"] = np.nan
    df.loc[[7, 9], "prog"] = np.nan
    with pytest.raises(ml.DataError, match=r"3 of 200 rows .*'prog' \(2\), 'write' \(2\)"):
        ml.mnlogit("prog ~ ses + write", df)


def test_missing_drop_reported_in_summary(hsb):
    df = hsb.copy()
    df.loc[[3, 7], "write"] = np.nan
    res = ml.mnlogit("prog ~ ses + write", df, missing="drop").fit()
    assert res.nobs == 198 and res.model.n_dropped == 2
    assert "2 rows with missing values were dropped" in res.summary().as_text()


def test_missing_policy_validated(hsb):
    with pytest.raises(ValueError, match="missing must be"):
        ml.mnlogit("prog ~ write", hsb, missing="skip")


@pytest.mark.parametrize(
    ("make", "pattern"),
    [
        (lambda X, y: (y, X.assign(a=np.where(np.arange(len(X)) == 2, np.inf, X.a))), "infinite"),
        (lambda X, y: (y, X.assign(a=np.nan)), r"rows have missing values in column\(s\) 'a'"),
        (lambda X, y: (y[:0], X.iloc[:0]), "no rows"),
        (lambda X, y: (np.full(len(y), "a"), X), r"1 level \(only 'a'\)"),
        (lambda X, y: (y, X.assign(s="text")), r"column\(s\) 's' are not numeric"),
        (lambda X, y: (y[:-1], X), "endog has 29 rows but exog has 30"),
        (lambda X, y: (y, X.to_numpy().astype(str).astype(object) + "x"), "non-numeric"),
        (lambda X, y: (y, np.ones((30, 2, 2))), "2-D"),
        (lambda X, y: (np.where(np.arange(len(y)) < 15, 0.5, 1.5), X), "continuous"),
        (lambda X, y: (y, X.iloc[:, :0]), "no columns"),
    ],
)
def test_array_input_errors(make, pattern):
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"const": 1.0, "a": rng.normal(size=30)})
    y = rng.choice(["a", "b", "c"], 30)
    endog, exog = make(X, y)
    with pytest.raises(ml.DataError, match=pattern):
        ml.MultinomialLogit(endog, exog).fit()


def test_formula_input_errors(hsb):
    with pytest.raises(ml.DataError, match="data has no rows"):
        ml.mnlogit("prog ~ write", hsb.iloc[:0])
    with pytest.raises(ml.DataError, match="outcome column 'nope' is not in the data"):
        ml.mnlogit("nope ~ write", hsb)
    with pytest.raises(ml.DataError, match="cannot parse formula"):
        ml.mnlogit("prog ~ write +", hsb)
    with pytest.raises(ml.DataError, match="infinite"):
        ml.mnlogit("prog ~ w", hsb.assign(w=np.where(hsb.write > 60, np.inf, 1.0)))
    with pytest.raises(ml.DataError, match=r"outcome 'prog' has 1 level \(only 'x'\)"):
        ml.mnlogit("prog ~ write", hsb.assign(prog="x"))
    with pytest.raises(ml.DataError, match="nosuch"):
        ml.mnlogit("prog ~ write + nosuch", hsb)


def test_unused_outcome_level_dropped_with_warning(hsb):
    df = hsb.copy()
    df["prog"] = df.prog.cat.add_categories(["unused"])
    with pytest.warns(UserWarning, match="'unused' have no rows and are dropped"):
        res = ml.mnlogit("prog ~ write", df).fit()
    assert res.outcomes == ["academic", "general", "vocation"]


def test_predict_errors_name_the_problem(hsb):
    res = ml.mnlogit("prog ~ ses + write", hsb).fit()
    with pytest.raises(ml.DataError, match="missing column.*'write'"):
        res.predict(hsb.drop(columns="write"))
    bad = hsb.head(3).copy()
    bad["ses"] = bad.ses.cat.add_categories("posh")
    bad.loc[bad.index[0], "ses"] = "posh"
    with pytest.raises(ml.DataError, match="'ses' has level.*'posh' not seen"):
        res.predict(bad)
    with pytest.raises(ml.DataError, match="DataFrame"):
        res.predict(np.ones((2, 4)))
    Xres = ml.MultinomialLogit(hsb.prog, sm.add_constant(hsb[["write", "read"]])).fit()
    with pytest.raises(ml.DataError, match="exog has 2 columns; the model was fitted with 3"):
        Xres.predict(np.ones((5, 2)))
    with pytest.raises(ml.DataError, match="missing column.*'read'"):
        Xres.predict(sm.add_constant(hsb[["write", "math"]]))


def test_predict_with_patsy_builtins(hsb):
    # C(), center() and friends are patsy's, not data columns.
    res = ml.mnlogit("prog ~ C(ses) + center(write)", hsb).fit()
    out = res.predict(hsb.head(4))
    np.testing.assert_allclose(out.to_numpy(), res.predict().head(4).to_numpy(), rtol=1e-14)


def test_never_linalg_or_index_error():
    # Degenerate shapes that used to reach NumPy/SciPy internals.
    cases = [
        (["a", "b"], np.ones((2, 1))),
        (["a", "b", "c"], np.eye(3)),
        (["a", "a", "b", "b"], np.column_stack([np.ones(4), [0.0, 0, 1, 1]])),
    ]
    for y, X in cases:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = ml.MultinomialLogit(y, X).fit()
        except ml.MultilogitError as exc:
            assert re.search(r"parameters|separation|rank", str(exc))
        else:
            assert not res.converged or np.all(np.isfinite(res.params.to_numpy()))


def test_zero_weight_rows_do_not_count(hsb, complete_df):
    # A dummy that is non-zero only on rows of zero weight is aliased for the fit.
    w = np.where(hsb.ses == "high", 0.0, 1.0)
    with pytest.raises(ml.DataError, match=r"'ses\[T\.high\]' is all zero"):
        ml.mnlogit("prog ~ ses + write", hsb.assign(w=w), weights="w").fit()
    # Rows that break a separation stop counting once their weight is zero.
    extra = pd.DataFrame(
        {"x": [-1.0, -1.0, 0.0, 0.0, 1.0, 1.0], "y": ["b", "c", "a", "c", "a", "b"]}
    )
    df = pd.concat([complete_df, extra], ignore_index=True)
    with _no_warnings():
        assert ml.mnlogit("y ~ x", df).fit().converged
    wz = np.r_[np.ones(len(complete_df)), np.zeros(6)]
    with pytest.warns(ml.PerfectSeparationWarning, match="complete separation"):
        res = ml.mnlogit("y ~ x", df.assign(wz=wz), freq_weights="wz").fit()
    assert res.separation.kind == "complete"
    assert res.separation.nobs == len(complete_df)


def test_drop_collinear_downstream_equals_reduced_model(hsb):
    # Dropped coefficients act as 0 with no variance: robust covariances, repivoting,
    # predictions and marginal effects equal those of the model without the aliased column.
    df = hsb.assign(w2=2 * hsb.write)
    res = ml.mnlogit("prog ~ ses + write + w2", df).fit(drop_collinear=True)
    ref = ml.mnlogit("prog ~ ses + write", hsb).fit()
    kept = list(ref.params.index)
    for cov_type, kw in [("HC1", {}), ("cluster", {"groups": hsb.cid.to_numpy()})]:
        r1 = res.get_robustcov_results(cov_type, **kw)
        r0 = ref.get_robustcov_results(cov_type, **kw)
        assert r1.bse.loc["w2"].isna().all()
        np.testing.assert_allclose(r1.bse.loc[kept], r0.bse, rtol=1e-10)
        assert "dropped as aliased" in r1.summary().as_text()
    piv, piv0 = res.repivot("general"), ref.repivot("general")
    assert piv.params.loc["w2"].isna().all() and piv.bse.loc["w2"].isna().all()
    np.testing.assert_allclose(piv.params.loc[kept], piv0.params, rtol=1e-10)
    np.testing.assert_allclose(piv.bse.loc[kept], piv0.bse, rtol=1e-10)
    pred = res.get_prediction(df.head(5)).summary_frame()
    pred0 = ref.get_prediction(hsb.head(5)).summary_frame()
    np.testing.assert_allclose(pred["prob"], pred0["prob"], rtol=1e-10)


def test_separation_survives_new_covariance_and_repivot(quasi_df):
    with pytest.warns(ml.PerfectSeparationWarning):
        res = ml.mnlogit("y ~ x + g", quasi_df).fit()
    rob = res.get_robustcov_results("HC1")
    assert rob.separation is not None
    assert rob.bse.loc["g[T.g2]"].isna().all() and rob.bse.loc["x"].notna().all()
    # With reference 'b', only the 'a' equation diverges on g; for the g2 rows both 'b' and
    # 'c' have probability -> 0, so their log odds there stay finite but are not identified.
    piv = res.repivot("b")
    assert piv.separation.diverging == [("a", "g[T.g2]")]
    assert piv.separation.unidentified == [("c", "g[T.g2]")]
    assert piv.bse.loc["g[T.g2]"].isna().all()
    assert np.all(np.isfinite(piv.bse.loc[["Intercept", "x"]].to_numpy()))
    assert "quasi-complete separation" in piv.summary().as_text()


def test_repivoted_separation_matches_refit(quasi_df):
    with pytest.warns(ml.PerfectSeparationWarning):
        piv = ml.mnlogit("y ~ x + g", quasi_df).fit().repivot("c")
    with pytest.warns(ml.PerfectSeparationWarning):
        refit = ml.mnlogit("y ~ x + g", quasi_df, ref="c").fit()
    assert piv.separation.diverging == refit.separation.diverging
    assert piv.separation.unidentified == refit.separation.unidentified
    np.testing.assert_array_equal(piv.separation.params, refit.separation.params)


def test_unidentified_coefficients_are_reported(hsb):
    # awards = 4 rows are all 'enrolled' with no 'general': once the intercept of 'general'
    # diverges, nothing identifies that level's 'general' coefficient any more.
    with pytest.warns(ml.PerfectSeparationWarning, match=r"not identified: 'general':'C\(awa"):
        res = ml.mnlogit("prog ~ C(awards) + honors", hsb).fit()
    assert ("general", "C(awards)[T.4]") in res.separation.unidentified
    assert ("general", "C(awards)[T.4]") not in res.separation.diverging
    assert np.isnan(res.bse.loc["C(awards)[T.4]", "general"])
    assert np.isfinite(res.bse.loc["C(awards)[T.4]", "vocation"])
    assert res.separation.diverging[-1] == ("vocation", "C(awards)[T.5]")


def test_large_data_separation_programs_stay_small(monkeypatch):
    # Above ~30,000 (row, outcome) pairs the linear programs see a subset of the rows (checked
    # against all rows in passes): none sees more than a fraction of the 40,000 pairs.
    from multilogit.fit import recession

    sizes = []
    real = recession._strict_program
    monkeypatch.setattr(
        recession, "_strict_program", lambda A: sizes.append(A.shape[0]) or real(A)
    )
    rng = np.random.default_rng(11)
    n = 20_000
    g = np.where(rng.random(n) < 0.1, "g2", "g1")
    y = rng.choice(["a", "b", "c"], n)
    y[g == "g2"] = "a"
    df = pd.DataFrame({"x": rng.normal(size=n), "y": y, "g": g})
    with pytest.warns(ml.PerfectSeparationWarning, match=r"'b':'g\[T\.g2\]', 'c':'g\[T\.g2\]'"):
        res = ml.mnlogit("y ~ x + g", df).fit()
    assert sizes and max(sizes) < n and res.n_iter < 10
    assert res.separation.n_separated == (g == "g2").sum()
    # An ordinary large fit with strong effects is not flagged (and runs no program).
    sizes.clear()
    X = rng.normal(size=(n, 2))
    eta = np.column_stack([np.zeros(n), 4 * X[:, 0], -4 * X[:, 1]])
    P = np.exp(eta) / np.exp(eta).sum(axis=1, keepdims=True)
    yy = (rng.uniform(size=(n, 1)) > np.cumsum(P, axis=1)).sum(axis=1)
    with _no_warnings():
        ok = ml.MultinomialLogit(yy, sm.add_constant(X)).fit()
    assert ok.converged and ok.separation is None and sizes == []
