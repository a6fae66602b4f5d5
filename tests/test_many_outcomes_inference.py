"""Inference beyond the memory budget, and summaries at many outcomes.

A memory budget just below what the dense information takes forces the matrix-free path on
data small enough for the dense one: every quantity computed by conjugate gradients for a
subset must equal the dense fit's (itself checked against statsmodels elsewhere) to 1e-8, and
what needs the full covariance must say which subset to ask for.
"""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

import multilogit as ml
from multilogit.exceptions import CovarianceBudgetError, DataError, FitError
from multilogit.results.budget import MatrixFreeResults
from multilogit.solve.conjugate import dense_information_bytes

# Conjugate gradients stop at a relative residual of 1e-12: the standard errors, intervals and
# tests agree with the Cholesky inverse to about 1e-10; 1e-8 leaves room.
RTOL = 1e-8


def _frame(n=3000, K=6, seed=0):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "x1": rng.normal(size=n),
            "x2": rng.normal(size=n) * 2.0,
            "g": rng.choice(["u", "v", "w"], size=n),
        }
    )
    X = np.column_stack([np.ones(n), df.x1, df.x2, df.g == "v", df.g == "w"])
    B = rng.normal(size=(X.shape[1], K)) * 0.5
    y = (X @ B + rng.gumbel(size=(n, K))).argmax(axis=1)
    df["y"] = np.array(list("abcdefghijklmnopqrstuvwxyz"))[y]
    return df


@pytest.fixture(scope="module")
def fits():
    model = ml.MultinomialLogit.from_formula("y ~ x1 + x2 + C(g)", _frame())
    q = model.J * model.k_exog
    dense = model.fit()
    # Below the dense information's size, above the columns the tests ask for at once.
    op = model.fit(memory_budget=0.8 * dense_information_bytes(q))
    return dense, op


def test_beyond_the_budget_the_estimates_are_those_of_the_dense_fit(fits):
    dense, op = fits
    assert isinstance(op, MatrixFreeResults) and not isinstance(dense, MatrixFreeResults)
    assert "cg_iterations" in op.iteration_log
    assert op.converged
    pd.testing.assert_frame_equal(op.params, dense.params, rtol=RTOL, atol=1e-10)
    assert op.llf == pytest.approx(dense.llf, rel=1e-12)
    assert op.llnull == pytest.approx(dense.llnull, rel=1e-12)
    assert op.aic == pytest.approx(dense.aic, rel=1e-12)
    np.testing.assert_allclose(op.predict(), dense.predict(), rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize(
    "terms, outcomes",
    [("x1", None), (None, "c"), (["C(g)"], ["b", "f"]), (["x2", "Intercept"], ["e"])],
    ids=["a term across all outcomes", "one equation", "a formula term", "two columns"],
)
def test_subset_standard_errors_and_intervals_equal_the_dense_ones(fits, terms, outcomes):
    dense, op = fits
    got = op.bse_for(terms=terms, outcomes=outcomes)
    want = dense.bse.loc[got.index, got.columns]
    assert got.shape == want.shape and got.size > 0
    pd.testing.assert_frame_equal(got, want, rtol=RTOL, atol=0)
    ci = op.conf_int(0.1, terms=terms, outcomes=outcomes)
    pd.testing.assert_frame_equal(ci, dense.conf_int(0.1).loc[ci.index], rtol=RTOL, atol=1e-12)
    # The dense results answer the same selections.
    pd.testing.assert_frame_equal(dense.bse_for(terms=terms, outcomes=outcomes), want)


def test_covariance_blocks_and_forms_equal_the_dense_ones(fits):
    dense, op = fits
    pairs = [("b", "x1"), ("d", "x1"), ("d", "C(g)[T.w]")]
    block = op.cov_params(column=pairs)
    full = dense.cov_params()
    pd.testing.assert_frame_equal(block, full.loc[pairs, pairs], rtol=RTOL, atol=1e-14)
    R = np.random.default_rng(3).normal(size=(3, full.shape[0]))
    np.testing.assert_allclose(
        op.cov_params(r_matrix=R).to_numpy(), R @ full.to_numpy() @ R.T, rtol=RTOL
    )
    # statsmodels' r_matrix and column on the dense results too.
    np.testing.assert_allclose(
        dense.cov_params(r_matrix=R).to_numpy(), R @ full.to_numpy() @ R.T, rtol=1e-12
    )
    pd.testing.assert_frame_equal(dense.cov_params(column=pairs), full.loc[pairs, pairs])


@pytest.mark.parametrize("constraints", ["x1", "b:x2 = c:x2", ["C(g)[T.v]", "e:x1 = 0.5"]])
def test_wald_tests_equal_the_dense_ones(fits, constraints):
    dense, op = fits
    got, want = op.wald_test(constraints), dense.wald_test(constraints)
    assert got.df == want.df
    assert got.statistic == pytest.approx(want.statistic, rel=RTOL)
    assert got.pvalue == pytest.approx(want.pvalue, rel=1e-6, abs=1e-300)


def test_marginal_effects_equal_the_dense_ones(fits):
    dense, op = fits
    got = op.get_margeff().summary_frame()
    want = dense.get_margeff().summary_frame()
    pd.testing.assert_frame_equal(got, want, rtol=RTOL, atol=1e-12)


def test_a_summary_of_chosen_equations_equals_the_dense_one(fits):
    dense, op = fits
    got = op.summary(outcomes=["c", "e"])
    want = dense.summary(outcomes=["c", "e"])
    assert got.tables[1].as_text() == want.tables[1].as_text()
    text = got.as_text()
    assert "y=c" in text and "y=e" in text and "y=b" not in text and "y=d" not in text


@pytest.mark.parametrize(
    "what",
    [
        lambda r: r.bse,
        lambda r: r.tvalues,
        lambda r: r.pvalues,
        lambda r: r.cov_params(),
        lambda r: r.conf_int(),
        lambda r: r.summary(compact=False),
        lambda r: r.bse_for(),
    ],
    ids=["bse", "tvalues", "pvalues", "cov_params", "conf_int", "summary", "bse_for()"],
)
def test_what_needs_the_full_covariance_says_how_to_ask_for_a_subset(fits, what):
    _, op = fits
    with pytest.raises(CovarianceBudgetError) as err:
        what(op)
    msg = str(err.value)
    assert "memory_budget" in msg
    assert "bse_for(terms=" in msg or "select fewer terms or outcomes" in msg


def test_the_full_covariance_error_names_the_size_and_the_subset_arguments(fits):
    _, op = fits
    with pytest.raises(CovarianceBudgetError, match=r"full 25 x 25 covariance") as err:
        _ = op.bse
    for hint in ("bse_for(terms=", "outcomes=", "cov_params(column=", "summary(outcomes="):
        assert hint in str(err.value)


def test_bad_subsets_name_the_valid_choices(fits):
    _, op = fits
    with pytest.raises(DataError, match=r"unknown term 'x9'.*'x1'.*C\(g\)"):
        op.bse_for(terms="x9")
    with pytest.raises(DataError, match=r"'a' is the reference outcome"):
        op.bse_for(outcomes="a")
    with pytest.raises(DataError, match=r"unknown outcome 'z'.*'b'"):
        op.conf_int(outcomes=["z"])
    with pytest.raises(DataError, match="r_matrix must have 25 columns"):
        op.cov_params(r_matrix=np.ones((1, 3)))
    with pytest.raises(DataError, match=r"unknown coefficient \('a', 'x1'\)"):
        op.cov_params(column=[("a", "x1")])


@pytest.mark.parametrize("cov_type", ["HC0", "HC1"])
@pytest.mark.parametrize("freq", [False, True], ids=["unweighted", "freq_weights"])
def test_robust_subsets_beyond_the_budget_equal_the_dense_sandwich(cov_type, freq):
    df = _frame(n=1500, seed=4)
    f = np.random.default_rng(2).integers(1, 4, len(df)).astype(float) if freq else None
    model = ml.MultinomialLogit.from_formula("y ~ x1 + x2 + C(g)", df, freq_weights=f)
    budget = 0.8 * dense_information_bytes(model.J * model.k_exog)
    dense = model.fit(cov_type=cov_type)
    op = model.fit(cov_type=cov_type, memory_budget=budget)
    assert isinstance(op, MatrixFreeResults) and op.cov_type == cov_type
    got = op.bse_for(terms=["x1", "C(g)"], outcomes=["b", "e"])
    pd.testing.assert_frame_equal(got, dense.bse.loc[got.index, got.columns], rtol=RTOL, atol=0)
    for constraints in ("x2", "b:x1 = c:x1"):
        assert op.wald_test(constraints).statistic == pytest.approx(
            dense.wald_test(constraints).statistic, rel=RTOL
        )
    # Another covariance type of the same fit, as for a dense fit.
    other = op.get_robustcov_results("nonrobust")
    want = dense.get_robustcov_results("nonrobust").bse.loc[["x1"]]
    pd.testing.assert_frame_equal(other.bse_for(terms="x1"), want, rtol=RTOL, atol=0)


def test_sampling_weights_beyond_the_budget_take_the_classical_covariance():
    df = _frame(n=1500, seed=4)
    w = np.random.default_rng(3).uniform(0.5, 2.0, len(df))
    model = ml.MultinomialLogit.from_formula("y ~ x1 + x2 + C(g)", df, weights=w)
    budget = 0.8 * dense_information_bytes(model.J * model.k_exog)
    op = model.fit(cov_type="nonrobust", memory_budget=budget)
    dense = model.fit(cov_type="nonrobust")
    got = op.bse_for(terms="x2")
    pd.testing.assert_frame_equal(got, dense.bse.loc[["x2"]], rtol=RTOL, atol=0)
    # The robust default with sampling weights squares them in the meat: refused up front.
    with pytest.raises(FitError, match=r"cov_type='HC1'.*sampling weights"):
        model.fit(memory_budget=budget)
    with pytest.raises(CovarianceBudgetError, match=r"cov_type='HC0'.*sampling weights"):
        op.get_robustcov_results("HC0")


def test_what_needs_the_dense_matrices_is_refused_up_front(fits):
    dense, op = fits
    model = dense.model
    budget = 0.8 * dense_information_bytes(model.J * model.k_exog)
    with pytest.raises(FitError, match=r"cov_type='cluster'.*memory_budget"):
        groups = {"groups": np.arange(3000) % 7}
        model.fit(cov_type="cluster", cov_kwds=groups, memory_budget=budget)
    with pytest.raises(FitError, match=r"method='firth'.*memory_budget"):
        model.fit(method="firth", memory_budget=budget)
    with pytest.raises(FitError, match=r"penalised fit.*memory_budget"):
        model.fit(penalty="l2", alpha=1.0, memory_budget=budget)
    with pytest.raises(CovarianceBudgetError, match="cov_type='cluster' is not available"):
        op.get_robustcov_results("cluster", groups=np.arange(3000) % 7)
    assert op.get_robustcov_results("nonrobust") is op


def test_solved_columns_are_kept(fits):
    _, op = fits
    op.bse_for(terms="x1", outcomes="b")
    before = op.cov_operator.products
    op.bse_for(terms="x1", outcomes="b")
    assert op.cov_operator.products == before


# -- summaries at many outcomes --------------------------------------------------------------


@pytest.fixture(scope="module")
def many():
    """25 outcomes, two slopes: the dense summary would have 24 blocks."""
    rng = np.random.default_rng(7)
    n, K = 5000, 25
    X = sm.add_constant(rng.normal(size=(n, 2)))
    B = rng.normal(size=(3, K)) * 0.6
    y = (X @ B + rng.gumbel(size=(n, K))).argmax(axis=1)
    res = ml.MultinomialLogit(y, X).fit()
    # statsmodels' Newton from zero overflows here; from ours it checks the optimum (its own
    # gradient and Hessian) and gives independent standard errors.
    start = res.params.to_numpy().ravel("F")
    ref = sm.MNLogit(y, X).fit(start_params=start, disp=False, method="newton", maxiter=100)
    return res, ref


def test_the_summary_at_many_outcomes_is_one_row_per_term(many):
    res, ref = many
    smry = res.summary()
    table = smry.tables[1]
    body = [row for row in table if row.datatype == "data"]
    assert len(body) == 3  # const, x1, x2
    # The first outcome of each row is the equation where statsmodels' |z| is largest.
    z = np.abs(np.asarray(ref.tvalues))  # (p, J), statsmodels' layout
    for k, row in enumerate(body):
        top = int(np.argmax(z[k])) + 1  # outcome labels 1..24 (0 is the reference)
        assert str(row[1].data).startswith(f"{top}: ")
        n_sig = int(np.sum(np.asarray(ref.pvalues)[k] < 0.05))
        assert str(row[-1].data) == f"{n_sig}/24"
    assert "summary(outcomes=[...])" in smry.as_text()
    assert res.params.shape == (3, 24) and isinstance(res.params, pd.DataFrame)


def test_summary_of_chosen_outcomes_shows_their_blocks_only(many):
    res, ref = many
    smry = res.summary(outcomes=[3, 17])
    text = smry.as_text()
    assert "y=3 " in text and "y=17 " in text and "y=4 " not in text
    # The numbers of outcome 17's block are statsmodels'.
    coef = f"{np.asarray(ref.params)[1, 16]:.4f}"
    se = f"{np.asarray(ref.bse)[1, 16]:.3f}"
    assert coef in text and se in text
    full = res.summary(compact=False).as_text()
    assert full.count("coef") == 24


def test_compact_and_outcomes_together_are_refused(many):
    res, _ = many
    with pytest.raises(ValueError, match="give outcomes or compact"):
        res.summary(outcomes=[1], compact=True)


# -- outcomes with very few rows -------------------------------------------------------------


def _few_rows_data(K=60, n=3000, seed=1):
    """Outcome 5 has one row, at the largest x1 (separable by itself); outcome 7 the two rows
    of smallest x2 (separable); outcome 6 two rows in the middle of the data (not)."""
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.ones(n), rng.normal(size=(n, 2))])
    y = (X @ (rng.normal(size=(3, K)) * 0.3) + rng.gumbel(size=(n, K))).argmax(axis=1)
    y[np.isin(y, [5, 6, 7])] = 0
    middle = np.argsort(np.abs(X[:, 1]) + np.abs(X[:, 2]))[:2]
    y[middle] = 6
    y[np.argmax(X[:, 1])] = 5
    y[np.argsort(X[:, 2])[:2]] = 7
    return X, y


def test_outcomes_with_a_few_separated_rows_are_named_under_newton_cg():
    X, y = _few_rows_data()
    model = ml.MultinomialLogit(y, X)
    # Beyond the memory budget, where the covariance is an operator.
    budget = 0.5 * dense_information_bytes(model.J * model.k_exog)
    with pytest.warns(ml.PerfectSeparationWarning) as rec:
        res = model.fit(maxiter=50, memory_budget=budget)
    assert "cg_iterations" in res.iteration_log
    msg = str(rec[0].message)
    assert "5 (1 row)" in msg and "7 (2 rows)" in msg and "6 (" not in msg
    assert res.separation.outcomes == (5, 7)
    assert not res.converged
    # Standard errors of those equations are NaN, the others' are finite, and a test of a
    # separated coefficient has no value.
    bse = res.bse_for(outcomes=[5, 6, 7])
    assert bse[5].isna().all() and bse[7].isna().all() and bse[6].notna().all()
    assert np.isnan(res.wald_test("5:x1").statistic)
    # The reported direction is a recession direction: every a_ik = x_i'(d_{y_i} - d_k) >= 0
    # (reference row 0), checked here from the data alone, strict for the separated rows.
    D = np.vstack([np.zeros(3), res.separation.direction])
    E = X @ D.T
    a = E[np.arange(len(y)), y][:, None] - E
    assert a.min() >= -1e-9
    assert np.all(a[y == 5][:, np.arange(60) != 5] > 0)


def test_few_row_separation_raises_when_asked():
    X, y = _few_rows_data()
    with pytest.raises(ml.PerfectSeparationError, match=r"5 \(1 row\), 7 \(2 rows\)"):
        ml.MultinomialLogit(y, X).fit(method="newton-cg", separation="raise")


def test_a_reference_outcome_with_one_separated_row_is_named():
    X, y = _few_rows_data()
    with pytest.warns(ml.PerfectSeparationWarning, match=r"5 \(1 row\)"):
        res = ml.MultinomialLogit(y, X, ref=5).fit(method="newton-cg", maxiter=50)
    # Moving the reference by d moves every equation by -d: all of them diverge along it.
    assert 5 in res.separation.outcomes
    D = np.vstack([np.zeros(3), res.separation.direction])  # row 0: the reference, 5
    order = [5, *[k for k in range(60) if k != 5]]
    codes = np.array([order.index(v) for v in y])
    E = X @ D.T
    a = E[np.arange(len(y)), codes][:, None] - E
    assert a.min() >= -1e-9 and np.all(a[y == 5][:, 1:] > 0)


def test_saving_needs_the_full_covariance(fits, tmp_path):
    _, op = fits
    with pytest.raises(CovarianceBudgetError, match="bse_for"):
        op.save(tmp_path / "fit.mlres")
