"""Linear equality constraints, ``fit(constraints=...)``.

References: VGAM's ``vglm`` with constraint matrices (tests/reference/R/constraints.R: estimates,
the four covariance types mapped to every equation, the LR test of the constraints); the
unconstrained fit of the equivalent design (a constraint on a term in every equation is a
column trick); and a Newton solve written here in NumPy on a hand-built parameterisation
(tests/kernels_numpy.py), for constraints a column trick cannot express.
"""

import numpy as np
import pandas as pd
import pytest

import multilogit as ml
from multilogit.exceptions import DataError
from tests import kernels_numpy as knp
from tests.conftest import simulate
from tests.reference_data import load_covariances, load_reference

FORMULA = "prog ~ ses + write + female"
CONSTRAINTS = ["general:write = vocation:write", "vocation:female[T.male] = 0"]
# VGAM converged to a relative Newton step of 1e-14 (header of the reference files); the
# fit here to about tol**2.  Agreement to 1e-9 relative leaves room for the rounding of the
# standard errors.
RTOL = 1e-9


@pytest.fixture(scope="module")
def hsb():
    df = ml.datasets.load("hsbdemo")
    return df.assign(ses=pd.Categorical(df["ses"], ["low", "middle", "high"]))


@pytest.fixture(scope="module")
def model(hsb):
    return ml.mnlogit(FORMULA, hsb, ref="academic")


@pytest.fixture(scope="module")
def res(model):
    return model.fit(constraints=CONSTRAINTS, tol=1e-10)


def _flat(frame):
    return frame.rename(columns=str).T.stack()


def test_estimates_match_vgam(res):
    ref = load_reference("hsbdemo_constrained")
    params = res.params.rename(columns=str).loc[ref.coef.index, ref.coef.columns]
    np.testing.assert_allclose(params.to_numpy(), ref.coef.to_numpy(), rtol=RTOL, atol=1e-13)
    bse = res.bse.rename(columns=str).loc[ref.se.index, ref.se.columns].to_numpy()
    np.testing.assert_allclose(bse, ref.se.to_numpy(), rtol=RTOL, atol=0)
    s = ref.scalars
    assert res.llf == pytest.approx(s["llf"], rel=1e-12)
    assert res.k_params == s["k_params"] == 8
    assert res.df_model == s["df_model"]
    assert res.df_resid == s["nobs"] - s["k_params"]
    assert res.aic == pytest.approx(s["aic"], rel=1e-12)
    assert res.bic == pytest.approx(s["bic"], rel=1e-12)
    # Equality constraints with q = 0 leave the intercept-only model nested.
    assert res.llnull == pytest.approx(s["llnull"], rel=1e-12)
    assert res.llr_pvalue == pytest.approx(
        float(__import__("scipy").stats.chi2.sf(2 * (s["llf"] - s["llnull"]), s["df_model"]))
    )
    # The constraints hold exactly (the fixed coefficient is 0, the shared ones equal).
    assert res.params.loc["female[T.male]", "vocation"] == 0.0
    assert res.params.loc["write", "general"] == pytest.approx(
        res.params.loc["write", "vocation"], rel=1e-14
    )


@pytest.mark.parametrize("cov_type", ["nonrobust", "HC0", "HC1", "cluster"])
def test_covariances_match_vgam(model, cov_type):
    refs, _ = load_covariances("hsbdemo_constrained_cov")
    ref = refs[cov_type]
    kwds = {"cov_kwds": {"groups": "cid"}} if cov_type == "cluster" else {}
    r = model.fit(constraints=CONSTRAINTS, tol=1e-10, cov_type=cov_type, **kwds)
    cov = r.cov_params().rename(index=str, level=0).rename(columns=str, level=0)
    cov = cov.loc[ref.index, ref.index].to_numpy()
    expected = ref.to_numpy()
    sd = np.sqrt(np.maximum(np.diag(expected), 0))
    scale = np.outer(sd, sd) + 1e-300
    np.testing.assert_array_less(np.abs(cov - expected), RTOL * scale + 1e-15)
    # Singular, of rank k_params; the same from get_robustcov_results of another fit.
    assert np.linalg.matrix_rank(cov, tol=1e-10 * np.max(np.abs(cov))) == 8
    other = model.fit(constraints=CONSTRAINTS, tol=1e-10).get_robustcov_results(
        cov_type, **kwds.get("cov_kwds", {})
    )
    np.testing.assert_allclose(other.cov_params().to_numpy(), r.cov_params().to_numpy())


def test_fixed_coefficient_has_no_test(res):
    assert res.bse.loc["female[T.male]", "vocation"] == 0.0
    assert np.isnan(res.tvalues.loc["female[T.male]", "vocation"])
    assert np.isnan(res.pvalues.loc["female[T.male]", "vocation"])
    ci = res.conf_int().loc[("vocation", "female[T.male]")]
    assert ci["lower"] == ci["upper"] == 0.0


def test_lr_test_of_the_constraints_matches_vgam(model, res):
    s = load_reference("hsbdemo_constrained").scalars
    full = model.fit(tol=1e-10)
    for t in (res.lr_test(full), full.lr_test(res)):
        assert t.statistic == pytest.approx(s["lr_stat"], rel=1e-9)
        assert t.df == s["lr_df"] == 2
        assert t.pvalue == pytest.approx(s["lr_pvalue"], rel=1e-8)
    # One constraint against both: nested, df 1.
    one = model.fit(constraints=CONSTRAINTS[:1], tol=1e-10)
    t = res.lr_test(one)
    assert t.df == 1
    assert t.statistic == pytest.approx(2 * (one.llf - res.llf))


def test_lr_test_refuses_constraints_that_do_not_nest(model, res):
    other = model.fit(constraints="general:ses[T.high] = 0", tol=1e-10)
    two = model.fit(constraints=["general:ses[T.high] = 0", "vocation:ses[T.high] = 0"])
    with pytest.raises(DataError, match="not nested"):
        res.lr_test(model.fit(constraints="general:write = 0"))
    with pytest.raises(DataError, match="not nested"):
        two.lr_test(model.fit(constraints=CONSTRAINTS[1:]))
    assert two.lr_test(other).df == 1


def test_a_term_in_every_equation_equals_the_column_trick():
    """``"x1 = x2"`` and ``"x3 = 0"`` in every equation are the model with the column
    ``x1 + x2`` and without ``x3``: an unconstrained fit of another design."""
    rng = np.random.default_rng(7)
    X, y = simulate(rng, n=500, p=5, K=4)
    names = ["const", "x1", "x2", "x3", "x4"]
    exog = pd.DataFrame(X, columns=names)
    r = ml.MultinomialLogit(y, exog).fit(constraints=["x1 = x2", "x3 = 0"], tol=1e-10)
    trick = pd.DataFrame({"const": X[:, 0], "x12": X[:, 1] + X[:, 2], "x4": X[:, 4]})
    u = ml.MultinomialLogit(y, trick).fit(tol=1e-10)
    assert r.llf == pytest.approx(u.llf, rel=1e-13)
    assert r.k_params == u.k_params == 9
    p, pu = r.params, u.params
    for a, b in (("const", "const"), ("x1", "x12"), ("x2", "x12"), ("x4", "x4")):
        np.testing.assert_allclose(p.loc[a], pu.loc[b], rtol=1e-10)
        np.testing.assert_allclose(r.bse.loc[a], u.bse.loc[b], rtol=1e-10)
    assert np.all(p.loc["x3"] == 0)
    # The covariance of the shared coefficients is that of the one coefficient.
    for cov_type in ("nonrobust", "HC1"):
        rc = r.get_robustcov_results(cov_type).cov_params()
        uc = u.get_robustcov_results(cov_type).cov_params()
        for eq in ("c1", "c2", "c3"):
            assert rc.loc[(eq, "x1"), (eq, "x2")] == pytest.approx(
                uc.loc[(eq, "x12"), (eq, "x12")], rel=1e-9
            )


def _numpy_constrained_newton(X, y, H, b0, theta):
    """Maximise the log-likelihood over beta = b0 + H theta by Newton in NumPy."""
    J, p = b0.shape
    for _ in range(50):
        beta = b0 + (H @ theta).reshape(J, p)
        g = H.T @ knp.score(X, y, np.ones(len(y)), beta).ravel()
        info = H.T @ knp.information(X, y, np.ones(len(y)), beta) @ H
        step = np.linalg.solve(info, g)
        theta = theta + step
        if np.max(np.abs(step)) < 1e-15 * (1 + np.max(np.abs(theta))):
            break
    beta = b0 + (H @ theta).reshape(J, p)
    info = H.T @ knp.information(X, y, np.ones(len(y)), beta) @ H
    return beta, H @ np.linalg.inv(info) @ H.T


def test_equation_specific_constraints_equal_a_hand_built_parameterisation():
    """Constraints no design can express: a fixed value, a difference across equations, a
    sum within one, given as (R, q); the reference parameterises them by hand."""
    rng = np.random.default_rng(11)
    X, labels = simulate(rng, n=600, p=4, K=4)
    J, p = 3, 4
    R = np.zeros((3, J * p))
    R[0, 0 * p + 1] = 1.0  # c1:x1 = 0.5
    R[1, [1 * p + 2, 2 * p + 2]] = [1.0, -1.0]  # c2:x2 - c3:x2 = 0.25
    R[2, [2 * p + 1, 2 * p + 3]] = [1.0, 1.0]  # c3:x1 + c3:x3 = 0
    q = np.array([0.5, 0.25, 0.0])
    r = ml.MultinomialLogit(labels, X).fit(constraints=(R, q), tol=1e-10)
    # By hand: free coordinates are every coefficient but c1:x1, c3:x2 and c3:x3.
    fixed = [0 * p + 1, 2 * p + 2, 2 * p + 3]
    free = [i for i in range(J * p) if i not in fixed]
    H = np.zeros((J * p, len(free)))
    for c, i in enumerate(free):
        H[i, c] = 1.0
    H[2 * p + 2, free.index(1 * p + 2)] = 1.0  # c3:x2 = c2:x2 - 0.25
    H[2 * p + 3, free.index(2 * p + 1)] = -1.0  # c3:x3 = -c3:x1
    b0 = np.zeros(J * p)
    b0[0 * p + 1], b0[2 * p + 2] = 0.5, -0.25
    y = np.array([-1 if lab == "c0" else int(lab[1:]) - 1 for lab in labels])
    beta, V = _numpy_constrained_newton(X, y, H, b0.reshape(J, p), np.zeros(len(free)))
    np.testing.assert_allclose(r.params.to_numpy().T, beta, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(r.cov_params().to_numpy(), V, rtol=1e-9, atol=1e-14)
    np.testing.assert_allclose(R @ r.params.to_numpy().T.ravel(), q, atol=1e-13)
    assert r.k_params == J * p - 3
    # q != 0: the intercept-only model does not satisfy the constraints.
    assert np.isnan(r.llnull) and np.isnan(r.prsquared)


def test_redundant_constraints_are_dropped_with_a_note(model, res):
    r = model.fit(
        constraints=[
            *CONSTRAINTS,
            "vocation:write = general:write",
            "2 * vocation:female[T.male] = 0",
        ],
        tol=1e-10,
    )
    np.testing.assert_allclose(r.params.to_numpy(), res.params.to_numpy(), rtol=1e-12)
    assert r.k_params == 8
    assert list(r.constraints.index) == CONSTRAINTS
    text = str(r.summary())
    assert "Dropped as redundant" in text and "2 * vocation:female[T.male] = 0" in text
    # The same with a matrix: a row that is a combination of the others.
    R, q = res.constraints.drop(columns="q", level=0).to_numpy(), res.constraints["q"].to_numpy()
    R3 = np.vstack([R, R[0] + 2 * R[1]])
    r3 = model.fit(constraints=(R3, np.append(q, 0.0)), tol=1e-10)
    np.testing.assert_allclose(r3.params.to_numpy(), res.params.to_numpy(), rtol=1e-12)
    assert "R row 3" in str(r3.summary())


def test_summary_lists_the_constraints(res):
    text = str(res.summary())
    assert "Linear constraints imposed (2): general:write = vocation:write" in text
    assert res.constraints.shape == (2, 2 * 5 + 1)
    assert res.constraints.loc["general:write = vocation:write", ("general", "write")] == 1.0


@pytest.mark.parametrize(
    "constraints, match",
    [
        (["general:write = 0", "general:write = 1"], "inconsistent: 'general:write = 1'"),
        ("general:nothing = 0", "cannot parse"),
        ((np.ones((1, 3)), [0.0]), "must have 10 columns"),
        ((np.ones((1, 10)), [0.0, 1.0]), "q must have 1 values"),
        ((np.full((1, 10), np.nan), [0.0]), "must be finite"),
        ((np.eye(10), np.zeros(10)), "fix all 10 coefficients"),
        ((np.zeros((1, 10)), [1.0]), "inconsistent"),
        (["a", 1], "strings or a pair"),
    ],
)
def test_bad_constraints_raise(model, constraints, match):
    with pytest.raises(DataError, match=match):
        model.fit(constraints=constraints)


def test_constraints_refuse_firth_and_penalties(model):
    with pytest.raises(ValueError, match="method='firth'"):
        model.fit(method="firth", constraints=CONSTRAINTS)
    with pytest.raises(ValueError, match="penalised"):
        model.fit(penalty="l2", alpha=1.0, constraints=CONSTRAINTS)


def test_refitting_tests_refuse_a_constrained_fit(res):
    with pytest.raises(DataError, match="constrained fit"):
        res.anova()
    with pytest.raises(DataError, match="constrained fit"):
        res.test_combine("general", "vocation", method="lr")
    with pytest.raises(DataError, match="constrained fit"):
        res.small_hsiao("general", seed=1)
    with pytest.raises(DataError, match="constrained fit"):
        res.conf_int(method="profile")


def test_wald_test_of_an_imposed_constraint_is_refused(res):
    with pytest.raises(DataError, match="nothing to test"):
        res.wald_test("vocation:female[T.male] = 0")
    # Others are tested with the constrained covariance.
    t = res.wald_test("general:ses[T.high] = 0")
    z = res.params.loc["ses[T.high]", "general"] / res.bse.loc["ses[T.high]", "general"]
    assert t.statistic == pytest.approx(z**2, rel=1e-12)


def test_rescaled_columns_give_the_same_constrained_fit(hsb, res):
    """A column scaled by 2**30 is solved in rescaled coordinates, with the constraints
    carried there."""
    big = hsb.assign(write=hsb["write"] * 2.0**30)
    r = ml.mnlogit(FORMULA, big, ref="academic").fit(constraints=CONSTRAINTS, tol=1e-10)
    expected = res.params.copy()
    expected.loc["write"] /= 2.0**30
    np.testing.assert_allclose(r.params.to_numpy(), expected.to_numpy(), rtol=1e-9)
    assert r.llf == pytest.approx(res.llf, rel=1e-12)


def test_callback_sees_coefficients_that_satisfy_the_constraints(model):
    seen = []
    model.fit(constraints=CONSTRAINTS, callback=lambda b, row: seen.append(b.copy()))
    assert seen and all(b.shape == (10,) for b in seen)
    female, write = (model.exog_names.index(t) for t in ("female[T.male]", "write"))
    for b in seen:
        assert abs(b[5 + female]) < 1e-15
        assert b[write] == pytest.approx(b[5 + write], rel=1e-12)


def test_repivot_carries_the_constraints(res):
    rp = res.repivot("general")
    np.testing.assert_allclose(
        rp.get_robustcov_results("nonrobust").cov_params().to_numpy(),
        rp.cov_params().to_numpy(),
        atol=1e-14,
    )
    R = rp.constraints.drop(columns="q", level=0).to_numpy()
    np.testing.assert_allclose(R @ rp.params.to_numpy().T.ravel(), 0.0, atol=1e-13)
    assert rp.k_params == res.k_params


def test_drop_collinear_keeps_the_constraints(hsb, res):
    dup = hsb.assign(write2=hsb["write"] * 2.0)
    r = ml.mnlogit(FORMULA + " + write2", dup, ref="academic").fit(
        constraints=CONSTRAINTS, drop_collinear=True, tol=1e-10
    )
    np.testing.assert_allclose(
        r.params.drop(index="write2").to_numpy(), res.params.to_numpy(), rtol=1e-9
    )
    with pytest.raises(DataError, match="dropped as aliased"):
        ml.mnlogit(FORMULA + " + write2", dup, ref="academic").fit(
            constraints="general:write2 = 0", drop_collinear=True
        )


def test_jackknife_replications_are_constrained(model):
    r = model.fit(constraints=CONSTRAINTS, cov_type="jackknife", cov_kwds={"cluster": "cid"})
    R = r.constraints.drop(columns="q", level=0).to_numpy()
    V = r.cov_params().to_numpy()
    np.testing.assert_allclose(R @ V @ R.T, 0.0, atol=1e-14)


def test_saved_fit_keeps_the_constraints(res, tmp_path):
    path = tmp_path / "c.npz"
    res.save(path)
    back = ml.load(path)
    pd.testing.assert_frame_equal(back.constraints, res.constraints)
    np.testing.assert_allclose(back.bse.to_numpy(), res.bse.to_numpy())
    assert back.k_params == res.k_params
    np.testing.assert_allclose(
        back.cov_params().to_numpy(), res.cov_params().to_numpy(), atol=1e-15
    )


def test_a_parquet_source_gives_the_in_memory_constrained_fit(hsb, res, tmp_path):
    """The wrapper works on any backend: rows streamed from Parquet, robust meats too."""
    for k, (a, b) in enumerate([(0, 70), (70, 140), (140, 200)]):
        hsb.iloc[a:b].to_parquet(tmp_path / f"p{k}.parquet", row_group_size=25)
    src = ml.parquet(tmp_path)
    r = ml.mnlogit(FORMULA, src, ref="academic").fit(constraints=CONSTRAINTS, tol=1e-10)
    np.testing.assert_allclose(r.params.to_numpy(), res.params.to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(r.bse.to_numpy(), res.bse.to_numpy(), rtol=1e-10)
    np.testing.assert_allclose(
        r.get_robustcov_results("HC1").bse.to_numpy(),
        res.get_robustcov_results("HC1").bse.to_numpy(),
        rtol=1e-10,
    )


def test_sampled_information_reaches_the_exact_constrained_fit():
    """hessian="auto" on data large enough for a row subsample: the same estimates."""
    rng = np.random.default_rng(5)
    X, y = simulate(rng, n=20_000, p=4, K=4)
    m = ml.MultinomialLogit(y, X)
    cons = ["c1:x1 = c2:x1", "c3:x2 = 0.1"]
    auto = m.fit(constraints=cons, hessian="auto")
    exact = m.fit(constraints=cons, hessian="exact")
    assert auto.iteration_log["info_rows"].min() < 20_000  # a subsample was used
    np.testing.assert_allclose(auto.params.to_numpy(), exact.params.to_numpy(), rtol=1e-9)
    assert auto.params.loc["x2", "c3"] == pytest.approx(0.1, abs=1e-14)


def test_wald_test_of_a_combination_the_constraints_fix_is_refused(res):
    with pytest.raises(DataError, match="nothing to test"):
        res.wald_test("general:write = vocation:write")
    with pytest.raises(DataError, match="nothing to test"):
        res.wald_test(["general:write - vocation:write = 0", "general:ses[T.high] = 0"])


def test_statsmodels_cluster_factor_counts_the_free_parameters(model):
    kw = {"groups": "cid", "df_correction": "statsmodels"}
    a = model.fit(constraints=CONSTRAINTS, cov_type="cluster", cov_kwds=kw)
    b = model.fit(constraints=CONSTRAINTS, cov_type="cluster", cov_kwds={"groups": "cid"})
    n, k = 200, 8
    np.testing.assert_allclose(
        a.cov_params().to_numpy(), b.cov_params().to_numpy() * (n - 1) / (n - k), rtol=1e-12
    )
