"""Offsets: ``offset=`` in array and formula models and in predictions.

References: VGAM's ``vglm(offset = offs)`` (tests/reference/R/offsets.R: estimates, the four
covariance types, the null model with the offset); the equivalent fit with the coefficient the
offset stands for fixed by a constraint (statsmodels' MNLogit ignores offsets and Stata's
mlogit has none); the kernels' NumPy twins for per-row quantities.
"""

import numpy as np
import pandas as pd
import pytest

import multilogit as ml
from multilogit.exceptions import DataError
from tests import kernels_numpy as knp
from tests.reference_data import load_covariances, load_reference

RTOL = 1e-9  # VGAM converged to a relative step of 1e-14 (file headers)


@pytest.fixture(scope="module")
def hsb():
    df = ml.datasets.load("hsbdemo")
    df = df.assign(ses=pd.Categorical(df["ses"], ["low", "middle", "high"]))
    return df.assign(o1=-0.08 * df["write"], o2=0.5 - 0.06 * df["math"])


def _model(hsb, name):
    if name == "every":
        return ml.mnlogit("prog ~ ses + female", hsb, ref="academic", offset="o1")
    return ml.mnlogit("prog ~ ses + female", hsb, ref="academic", offset=["o1", "o2"])


@pytest.mark.parametrize("name", ["every", "matrix"])
def test_offset_fit_matches_vgam(hsb, name):
    ref = load_reference(f"hsbdemo_offset_{name}")
    res = _model(hsb, name).fit(tol=1e-10)
    params = res.params.rename(columns=str).loc[ref.coef.index, ref.coef.columns]
    np.testing.assert_allclose(params.to_numpy(), ref.coef.to_numpy(), rtol=RTOL)
    bse = res.bse.rename(columns=str).loc[ref.se.index, ref.se.columns].to_numpy()
    np.testing.assert_allclose(bse, ref.se.to_numpy(), rtol=RTOL)
    s = ref.scalars
    assert res.llf == pytest.approx(s["llf"], rel=1e-12)
    # The null model is the intercepts plus the offset, fitted (no closed form).
    assert res.llnull == pytest.approx(s["llnull"], rel=1e-10)
    assert res.k_params == s["k_params"] and res.df_model == s["df_model"]
    assert res.aic == pytest.approx(s["aic"], rel=1e-12)
    assert res.bic == pytest.approx(s["bic"], rel=1e-12)
    assert res.llr_pvalue == pytest.approx(
        float(__import__("scipy").stats.chi2.sf(2 * (s["llf"] - s["llnull"]), s["df_model"])),
        rel=1e-8,
    )


@pytest.mark.parametrize("name", ["every", "matrix"])
@pytest.mark.parametrize("cov_type", ["nonrobust", "HC0", "HC1", "cluster"])
def test_offset_covariances_match_vgam(hsb, name, cov_type):
    refs, _ = load_covariances(f"hsbdemo_offset_{name}_cov")
    ref = refs[cov_type]
    kwds = {"groups": "cid"} if cov_type == "cluster" else {}
    res = _model(hsb, name).fit(tol=1e-10).get_robustcov_results(cov_type, **kwds)
    cov = res.cov_params().rename(index=str, level=0).rename(columns=str, level=0)
    cov = cov.loc[ref.index, ref.index].to_numpy()
    sd = np.sqrt(np.diag(ref.to_numpy()))
    np.testing.assert_array_less(np.abs(cov - ref.to_numpy()), RTOL * np.outer(sd, sd))


def test_offset_equals_a_coefficient_fixed_by_a_constraint(hsb):
    """offset = -0.08 write in both equations is write's coefficient fixed at -0.08."""
    res = _model(hsb, "every").fit(tol=1e-10)
    fixed = ml.mnlogit("prog ~ ses + female + write", hsb, ref="academic").fit(
        constraints=["write = -0.08"], tol=1e-10
    )
    np.testing.assert_allclose(
        res.params.to_numpy(), fixed.params.drop(index="write").to_numpy(), rtol=1e-10
    )
    for cov_type in ("nonrobust", "HC1"):
        a = res.get_robustcov_results(cov_type).bse.to_numpy()
        b = fixed.get_robustcov_results(cov_type).bse.drop(index="write").to_numpy()
        np.testing.assert_allclose(a, b, rtol=1e-10)
    assert res.llf == pytest.approx(fixed.llf, rel=1e-13)
    assert res.k_params == fixed.k_params
    pd.testing.assert_frame_equal(res.predict(hsb.head(20)), fixed.predict(hsb.head(20)))
    pd.testing.assert_frame_equal(res.fittedvalues, fixed.fittedvalues, rtol=1e-10)


def test_array_model_with_a_matrix_offset_equals_the_formula_model(hsb):
    form = _model(hsb, "matrix").fit(tol=1e-10)
    X = form.model.exog
    offs = hsb[["o1", "o2"]].to_numpy()
    arr = ml.MultinomialLogit(hsb["prog"], np.asarray(X), ref="academic", offset=offs).fit(
        tol=1e-10
    )
    np.testing.assert_allclose(arr.params.to_numpy(), form.params.to_numpy(), rtol=1e-12)
    # A DataFrame whose columns are the outcome labels is lined up by label.
    frame = pd.DataFrame({"vocation": offs[:, 1], "general": offs[:, 0]})
    lab = ml.MultinomialLogit(hsb["prog"], np.asarray(X), ref="academic", offset=frame).fit()
    np.testing.assert_allclose(lab.params.to_numpy(), form.params.to_numpy(), rtol=1e-9)


def test_per_row_quantities_include_the_offset(hsb):
    res = _model(hsb, "matrix").fit(tol=1e-10)
    m = res.model
    beta = res.params.to_numpy().T
    offs = m.offset
    X_aug = np.hstack([m.exog, offs])
    b_aug = np.hstack([beta, np.eye(2)])
    P = knp.probabilities(X_aug, b_aug)  # general, vocation, academic
    expected = pd.DataFrame(P[:, [2, 0, 1]], columns=["academic", "general", "vocation"])
    np.testing.assert_allclose(res.fittedvalues.to_numpy(), expected.to_numpy(), rtol=1e-12)
    lin = res.predict(which="linear")
    np.testing.assert_allclose(lin[["general", "vocation"]].to_numpy(), m.exog @ beta.T + offs)
    w = np.ones(len(offs))
    assert m.loglikeobs(res.params).sum() == pytest.approx(res.llf, rel=1e-12)
    assert m.loglike(res.params) == pytest.approx(knp.loglike(X_aug, m.endog, w, b_aug))
    so = m.score_obs(res.params)
    np.testing.assert_allclose(
        so,
        knp.row_scores(X_aug, m.endog, b_aug).reshape(200, 2, -1)[:, :, :4].reshape(200, -1),
        atol=1e-13,
    )
    pred = res.get_prediction()
    np.testing.assert_allclose(pred.predicted, expected.to_numpy(), rtol=1e-12)
    assert res.resid_misclassified.sum() == np.sum(
        np.argmax(expected.to_numpy(), axis=1) != m.level_codes
    )


def test_prediction_on_new_rows_needs_their_offsets(hsb):
    res = _model(hsb, "matrix").fit()
    new = hsb.head(5)
    # The offset columns are in the new data: used.
    a = res.predict(new)
    b = res.predict(new.drop(columns=["o1", "o2"]), offset=new[["o1", "o2"]].to_numpy())
    pd.testing.assert_frame_equal(a, b)
    np.testing.assert_allclose(a.to_numpy(), res.fittedvalues.head(5).to_numpy(), rtol=1e-12)
    c = res.get_prediction(new.drop(columns=["o1", "o2"]), offset=new[["o1", "o2"]].to_numpy())
    np.testing.assert_allclose(c.predicted, a.to_numpy(), rtol=1e-12)
    with pytest.raises(DataError, match="need their offsets"):
        res.predict(new.drop(columns=["o1", "o2"]))
    with pytest.raises(DataError, match="need their offsets"):
        res.get_prediction(new.drop(columns=["o1"]))
    with pytest.raises(DataError, match="one offset per row"):
        res.predict(new, offset=np.zeros(3))
    with pytest.raises(DataError, match="estimation rows have theirs"):
        res.predict(offset=np.zeros(200))
    plain = ml.mnlogit("prog ~ ses + female", hsb, ref="academic").fit()
    with pytest.raises(DataError, match="no offset"):
        plain.predict(new, offset=np.zeros(5))


def test_repivot_and_a_refit_with_another_reference_agree(hsb):
    res = _model(hsb, "matrix").fit(tol=1e-10)
    offs = hsb[["o1", "o2"]].to_numpy()
    # Against "general": academic's offset is 0 - o1, vocation's o2 - o1.
    offs_new = np.column_stack([-offs[:, 0], offs[:, 1] - offs[:, 0]])
    refit = ml.mnlogit("prog ~ ses + female", hsb, ref="general", offset=offs_new).fit(tol=1e-10)
    rp = res.repivot("general")
    np.testing.assert_allclose(rp.params.to_numpy(), refit.params.to_numpy(), rtol=1e-9)
    np.testing.assert_allclose(rp.model.offset, offs_new)
    np.testing.assert_allclose(
        rp.get_robustcov_results("HC1").bse.to_numpy(),
        refit.get_robustcov_results("HC1").bse.to_numpy(),
        rtol=1e-8,
    )


def test_missing_rows_and_labels_line_up(hsb):
    df = hsb.copy()
    df.loc[df.index[:3], "ses"] = np.nan
    shuffled = df.sample(frac=1.0, random_state=1)
    m = ml.mnlogit("prog ~ ses + female", df, ref="academic", missing="drop", offset="o1")
    assert m.offset.shape == (197, 2)
    # A Series is lined up by index label, so a shuffled copy gives the same offsets.
    m2 = ml.mnlogit(
        "prog ~ ses + female", df, ref="academic", missing="drop", offset=shuffled["o1"]
    )
    np.testing.assert_array_equal(m.offset, m2.offset)
    np.testing.assert_array_equal(m.offset[:, 0], df["o1"].to_numpy()[3:])


def test_bad_offsets_raise(hsb):
    f = "prog ~ ses + female"
    with pytest.raises(DataError, match="not in the data"):
        ml.mnlogit(f, hsb, offset="nothing")
    with pytest.raises(DataError, match="one per equation"):
        ml.mnlogit(f, hsb, offset=["o1", "o2", "o1"])
    with pytest.raises(DataError, match="one column per equation"):
        ml.mnlogit(f, hsb, offset=np.zeros((200, 3)))
    with pytest.raises(DataError, match="has 5 values"):
        ml.mnlogit(f, hsb, offset=np.zeros(5))
    with pytest.raises(DataError, match="non-finite"):
        ml.mnlogit(f, hsb, offset=np.r_[np.nan, np.zeros(199)])
    m = ml.mnlogit(f, hsb, ref="academic", offset="o1")
    with pytest.raises(DataError, match="firth"):
        m.fit(method="firth")
    res = m.fit()
    with pytest.raises(DataError, match="offset"):
        res.get_margeff()
    with pytest.raises(DataError, match="offset"):
        res.test_combine("general", "vocation", method="lr")
    with pytest.raises(DataError, match="offset"):
        res.iia_test("general")


def test_drop_one_refits_keep_the_offset(hsb):
    """anova refits without a term, with the offset: against a fit by hand."""
    res = _model(hsb, "every").fit(tol=1e-10)
    table = res.anova()
    small = ml.mnlogit("prog ~ female", hsb, ref="academic", offset="o1").fit(tol=1e-10)
    assert table.loc["ses", "statistic"] == pytest.approx(2 * (res.llf - small.llf), rel=1e-9)
    t = res.lr_test(small)
    assert t.df == 4


def test_remove_data_keeps_llnull_and_needs_offsets(hsb):
    res = _model(hsb, "every").fit()
    llnull = res.llnull
    res2 = _model(hsb, "every").fit()
    res2.remove_data()
    assert res2.llnull == pytest.approx(llnull)
    pd.testing.assert_frame_equal(res2.predict(hsb.head(4)), res.predict(hsb.head(4)))
    with pytest.raises(DataError, match="need their offsets"):
        res2.predict(hsb.head(4).drop(columns="o1"))


def test_lr_test_of_an_offset_against_the_free_coefficient(hsb):
    """offset = -0.08 write is write's coefficients fixed: nested in the model with write
    free (df 2); an offset in math is not."""
    res = _model(hsb, "every").fit(tol=1e-10)
    free = ml.mnlogit("prog ~ ses + female + write", hsb, ref="academic").fit(tol=1e-10)
    t = free.lr_test(res)
    assert t.df == 2
    assert t.statistic == pytest.approx(2 * (free.llf - res.llf), rel=1e-12)
    other = ml.mnlogit("prog ~ ses + female", hsb, ref="academic", offset="o2").fit()
    with pytest.raises(DataError, match="offsets differ"):
        free.lr_test(other)


def test_summary_says_there_is_an_offset_and_saving_is_refused(hsb, tmp_path):
    res = _model(hsb, "matrix").fit()
    assert "Offset 'o1', 'o2' added to the linear predictors" in str(res.summary())
    with pytest.raises(ml.exceptions.PersistenceError, match="offset"):
        res.save(tmp_path / "r.npz")
    with pytest.raises(DataError, match="offset"):
        res.small_hsiao("general", seed=1)


def test_separation_is_found_with_an_offset():
    """An offset moves no direction of the coefficients: separated data stay separated."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=120)
    y = np.where(x > 0, "b", np.where(rng.uniform(size=120) < 0.5, "a", "c"))
    X = np.column_stack([np.ones(120), x])
    m = ml.MultinomialLogit(y, X, offset=rng.normal(size=120))
    with pytest.warns(ml.exceptions.PerfectSeparationWarning):
        res = m.fit()
    assert res.separation is not None


def test_offsets_need_data_in_memory(hsb, tmp_path):
    hsb.to_parquet(tmp_path / "h.parquet")
    with pytest.raises(DataError, match="in memory"):
        ml.mnlogit("prog ~ ses", ml.parquet(tmp_path), offset="o1")


def test_constraints_and_an_offset_together(hsb):
    """Both wrappers at once: offset -0.08 write with equal female effects is the model with
    write whose coefficients are fixed at -0.08 and the female effects equal."""
    eq = "general:female[T.male] = vocation:female[T.male]"
    res = _model(hsb, "every").fit(constraints=eq, tol=1e-10, cov_type="HC1")
    ref = ml.mnlogit("prog ~ ses + female + write", hsb, ref="academic").fit(
        constraints=["write = -0.08", eq], tol=1e-10, cov_type="HC1"
    )
    np.testing.assert_allclose(
        res.params.to_numpy(), ref.params.drop(index="write").to_numpy(), rtol=1e-10
    )
    np.testing.assert_allclose(
        res.bse.to_numpy(), ref.bse.drop(index="write").to_numpy(), rtol=1e-9
    )
    assert res.k_params == ref.k_params == 7


def test_sampled_information_reaches_the_exact_fit_with_an_offset():
    from tests.conftest import simulate

    rng = np.random.default_rng(9)
    X, y = simulate(rng, n=20_000, p=4, K=3)
    m = ml.MultinomialLogit(y, X, offset=0.3 * rng.normal(size=(20_000, 2)))
    auto, exact = m.fit(hessian="auto"), m.fit(hessian="exact")
    assert auto.iteration_log["info_rows"].min() < 20_000  # a subsample was used
    np.testing.assert_allclose(auto.params.to_numpy(), exact.params.to_numpy(), rtol=1e-9)
