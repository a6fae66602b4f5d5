"""Model API: outcome coding, reference choice, invariances, fit options, predict."""

import numpy as np
import pandas as pd
import pytest

import multilogit as ml
from multilogit.exceptions import DataError
from tests.conftest import simulate


def test_string_outcome_default_reference_is_first_sorted_level(hsbdemo):
    df = hsbdemo.assign(prog=hsbdemo["prog"].astype(str))
    res = ml.mnlogit("prog ~ ses + write", df).fit()
    assert res.outcomes == ["academic", "general", "vocation"]
    assert res.ref == "academic"
    assert list(res.params.columns) == ["general", "vocation"]
    assert res.params.columns.name == "prog"
    assert list(res.params.index) == ["Intercept", "ses[T.middle]", "ses[T.high]", "write"]


def test_categorical_order_is_level_order(hsbdemo):
    df = hsbdemo.assign(
        prog=pd.Categorical(hsbdemo["prog"], categories=["vocation", "academic", "general"])
    )
    res = ml.mnlogit("prog ~ write", df).fit()
    assert res.outcomes == ["vocation", "academic", "general"]
    assert res.ref == "vocation"


def test_reference_choice_gives_identical_probabilities(hsbdemo, hsb_res):
    for ref in ("general", "vocation"):
        other = ml.mnlogit("prog ~ ses + write", hsbdemo, ref=ref).fit()
        assert other.ref == ref
        assert other.llf == pytest.approx(hsb_res.llf, rel=1e-13)
        pd.testing.assert_frame_equal(other.predict(), hsb_res.predict(), rtol=1e-9, atol=1e-12)
        # Coefficients against another pivot are differences of the original ones.
        np.testing.assert_allclose(
            other.params["academic"], -hsb_res.params[ref], rtol=1e-8, atol=1e-12
        )


def test_row_order_invariance(hsbdemo, hsb_res):
    perm = np.random.default_rng(1).permutation(len(hsbdemo))
    res = ml.mnlogit("prog ~ ses + write", hsbdemo.iloc[perm], ref="academic").fit()
    np.testing.assert_allclose(res.params, hsb_res.params, rtol=1e-10)
    np.testing.assert_allclose(res.bse, hsb_res.bse, rtol=1e-9)
    # Predictions keep the caller's row labels.
    pd.testing.assert_frame_equal(res.predict().loc[hsbdemo.index], hsb_res.predict(), rtol=1e-9)


def test_integer_and_string_labels_agree(rng):
    X, labels = simulate(rng, n=500, K=3)
    codes = pd.Series(labels).map({"c0": 10, "c1": 20, "c2": 30}).to_numpy()
    a = ml.MultinomialLogit(labels, X).fit()
    b = ml.MultinomialLogit(codes, X).fit()
    assert b.outcomes == [10, 20, 30]
    np.testing.assert_allclose(a.params.to_numpy(), b.params.to_numpy(), rtol=1e-12)
    # A reference given as a string on integer labels (as from a command line) is matched.
    c = ml.MultinomialLogit(codes, X, ref="20").fit()
    assert c.ref == 20


def test_bool_outcome(admissions):
    df = admissions.assign(admitted=admissions["admit"] == 1)
    res = ml.mnlogit("admitted ~ gre + gpa", df).fit()
    assert res.outcomes == [False, True] and res.ref is False
    base = ml.mnlogit("admit ~ gre + gpa", admissions).fit()
    np.testing.assert_allclose(res.params[True], base.params[1], rtol=1e-12)


def test_outcome_expression_on_left_side(hsbdemo):
    res = ml.mnlogit("C(prog, levels=['vocation', 'general', 'academic']) ~ write", hsbdemo).fit()
    assert res.outcomes == ["vocation", "general", "academic"]


def test_unknown_reference_lists_levels(hsbdemo):
    with pytest.raises(ValueError, match=r"'science'.*'academic', 'general', 'vocation'"):
        ml.mnlogit("prog ~ write", hsbdemo, ref="science")


def test_single_level_outcome_is_an_error(hsbdemo):
    df = hsbdemo[hsbdemo["prog"] == "general"].assign(prog="general")
    with pytest.raises(DataError, match="1 level.*at least two"):
        ml.mnlogit("prog ~ write", df)


def test_unused_category_is_dropped_with_warning(hsbdemo):
    df = hsbdemo.assign(
        prog=pd.Categorical(hsbdemo["prog"], categories=["academic", "general", "vocation", "x"])
    )
    with pytest.warns(UserWarning, match="'x'.*no rows"):
        res = ml.mnlogit("prog ~ write", df).fit()
    assert res.outcomes == ["academic", "general", "vocation"]


def test_continuous_outcome_is_an_error(rng):
    X, _ = simulate(rng, n=50)
    with pytest.raises(DataError, match="continuous"):
        ml.MultinomialLogit(rng.normal(size=50), X)


def test_length_mismatch_names_both_counts(rng):
    X, labels = simulate(rng, n=50)
    with pytest.raises(DataError, match="49 rows but exog has 50"):
        ml.MultinomialLogit(labels[:49], X)


def test_non_numeric_exog_column_is_named():
    df = pd.DataFrame({"a": [1.0, 2, 3, 4], "b": ["x", "y", "x", "y"]})
    with pytest.raises(DataError, match="'b'.*not numeric"):
        ml.MultinomialLogit(["u", "v", "u", "v"], df)


def test_missing_values_raise_or_drop(hsbdemo, hsb_res):
    df = hsbdemo.copy()
    df["write"] = df["write"].astype(float)
    df.loc[[3, 7], "write"] = np.nan
    df.loc[[7, 11], "ses"] = np.nan
    with pytest.raises(DataError, match=r"3 of 200 rows.*'ses' \(2\).*'write' \(2\)"):
        ml.mnlogit("prog ~ ses + write", df)
    res = ml.mnlogit("prog ~ ses + write", df, missing="drop").fit()
    assert res.nobs == 197 and res.model.n_dropped == 3
    assert "3 rows with missing values were dropped" in str(res.summary())
    expected = ml.mnlogit("prog ~ ses + write", hsbdemo.drop(index=[3, 7, 11])).fit()
    np.testing.assert_allclose(res.params, expected.params, rtol=1e-12)
    with pytest.raises(ValueError, match="missing must be"):
        ml.mnlogit("prog ~ write", hsbdemo, missing="ignore")


def test_missing_outcome_is_counted(hsbdemo):
    df = hsbdemo.assign(prog=hsbdemo["prog"].astype(object))
    df.loc[0, "prog"] = None
    with pytest.raises(DataError, match=r"1 of 200 rows.*'prog' \(1\)"):
        ml.mnlogit("prog ~ write", df)
    assert ml.mnlogit("prog ~ write", df, missing="drop").fit().nobs == 199


def test_formula_errors_are_data_errors(hsbdemo):
    with pytest.raises(DataError, match="'nope' is not in the data"):
        ml.mnlogit("nope ~ write", hsbdemo)
    with pytest.raises(DataError, match="one outcome variable"):
        ml.mnlogit("prog + ses ~ write", hsbdemo)
    with pytest.raises(DataError, match="formula must be"):
        ml.mnlogit("prog write", hsbdemo)
    with pytest.raises(DataError, match="DataFrame"):
        ml.mnlogit("prog ~ write", [1, 2, 3])
    with pytest.raises(DataError, match="no rows"):
        ml.mnlogit("prog ~ write", hsbdemo.iloc[:0])


def test_maxiter_reached_warns_and_is_reported(hsbdemo):
    with pytest.warns(ml.ConvergenceWarning, match="did not converge"):
        res = ml.mnlogit("prog ~ ses + write", hsbdemo).fit(maxiter=2)
    assert res.converged is False and res.n_iter == 2
    text = str(res.summary())
    assert "converged:" in text and "False" in text and "did not converge" in text


def test_disp_prints_log_and_log_is_kept(hsbdemo, capsys):
    calls = []
    res = ml.mnlogit("prog ~ ses + write", hsbdemo).fit(
        disp=True, callback=lambda params, row: calls.append((params.shape, row["iteration"]))
    )
    out = capsys.readouterr().out
    assert out.count("\n") == len(res.iteration_log) == res.n_iter + 1
    assert "llf" in out and "step" in out
    log = res.iteration_log
    assert list(log.columns[:5]) == ["iteration", "llf", "step", "max_abs_score", "decrement"]
    assert log["llf"].is_monotonic_increasing
    assert calls[-1] == ((8,), res.n_iter)


def test_start_params_at_optimum_converges_immediately(hsbdemo, hsb_res):
    res = ml.mnlogit("prog ~ ses + write", hsbdemo).fit(start_params=hsb_res.params)
    assert res.n_iter <= 1
    np.testing.assert_allclose(res.params, hsb_res.params, rtol=1e-12)
    with pytest.raises(ValueError, match="8 values"):
        ml.mnlogit("prog ~ ses + write", hsbdemo).fit(start_params=np.zeros(5))


def test_fit_argument_errors(hsbdemo):
    model = ml.mnlogit("prog ~ write", hsbdemo)
    with pytest.raises(ValueError, match="method"):
        model.fit(method="bfgs")
    with pytest.raises(ValueError, match="tol"):
        model.fit(tol=-1)
    with pytest.raises(ValueError, match="cov_type"):
        model.fit(cov_type="sandwich-of-sorts")


def test_step_halving_recovers_from_a_bad_start(hsbdemo, hsb_res):
    bad = hsb_res.params * 40.0
    res = ml.mnlogit("prog ~ ses + write", hsbdemo).fit(start_params=bad)
    assert res.converged
    assert (res.iteration_log["step"].iloc[1:] < 1).any()
    np.testing.assert_allclose(res.params, hsb_res.params, rtol=1e-9)


def test_predict_new_data_and_errors(hsbdemo, hsb_res):
    new = pd.DataFrame({"ses": ["low", "high"], "write": [40, 60]})
    prob = hsb_res.predict(new)
    assert list(prob.columns) == ["academic", "general", "vocation"]
    np.testing.assert_allclose(prob.sum(axis=1), 1.0, rtol=1e-14)
    # Hand computation of the first row from the coefficients.
    b = hsb_res.params
    eta = np.array(
        [
            0.0,
            b.loc["Intercept", "general"] + 40 * b.loc["write", "general"],
            b.loc["Intercept", "vocation"] + 40 * b.loc["write", "vocation"],
        ]
    )
    np.testing.assert_allclose(prob.iloc[0], np.exp(eta) / np.exp(eta).sum(), rtol=1e-12)
    lin = hsb_res.predict(new, which="linear")
    np.testing.assert_allclose(lin.iloc[0], eta, rtol=1e-12, atol=1e-15)
    cls = hsb_res.predict(new, which="class")
    assert list(cls) == [prob.columns[np.argmax(prob.iloc[i])] for i in range(2)]
    with pytest.raises(DataError, match="missing column.*'write'"):
        hsb_res.predict(new.drop(columns="write"))
    with pytest.raises(DataError, match="'ses'.*'upper'.*not seen"):
        hsb_res.predict(new.assign(ses=["low", "upper"]))
    with pytest.raises(ValueError, match="which"):
        hsb_res.predict(new, which="odds")


def test_predict_array_model_checks_width(rng):
    X, labels = simulate(rng, n=300, p=3, K=3)
    res = ml.MultinomialLogit(labels, X).fit()
    np.testing.assert_allclose(res.predict(X[:5]), res.predict().iloc[:5], rtol=1e-14)
    with pytest.raises(DataError, match="2 columns; the model was fitted with 3"):
        res.predict(X[:5, :2])


def test_results_are_immutable(hsb_res):
    with pytest.raises(ValueError, match="read-only"):
        hsb_res._beta[0, 0] = 1.0
    before = hsb_res.params.iloc[0, 0]
    for frame in (hsb_res.params, hsb_res.bse, hsb_res.cov_params()):
        frame.iloc[0, 0] = 99.0  # a caller's copy may change; the results may not
    assert hsb_res.params.iloc[0, 0] == before
    assert hsb_res.bse.iloc[0, 0] != 99.0 and hsb_res.cov_params().iloc[0, 0] != 99.0


def test_predict_with_formula_functions(admissions):
    res = ml.mnlogit("admit ~ np.log(gre) + gpa + C(rank)", admissions).fit()
    new = pd.DataFrame({"gre": [500, 700], "gpa": [3.0, 3.8], "rank": [1, 4]})
    prob = res.predict(new)
    X = np.column_stack([np.ones(2), [0, 0], [0, 0], [0, 1], np.log([500, 700]), [3.0, 3.8]])
    b = res.params[1].to_numpy()
    np.testing.assert_allclose(prob[1], 1 / (1 + np.exp(-(X @ b))), rtol=1e-12)
    with pytest.raises(DataError, match="'rank'.*5.*not seen"):
        res.predict(new.assign(rank=[1, 5]))


@pytest.mark.parametrize(
    "values",
    [
        np.array([3, 1, 2, 3, 1]),
        np.array([-5, 100, 7, 7], dtype=np.int8),
        np.array([0, 1, 1], dtype=np.uint64),
        np.array([10**12, 5, 10**12]),  # too spread out for counting: sorted instead
        pd.Series([2, 2, 5], index=[7, 8, 9]),
    ],
)
def test_integer_outcomes_are_coded_as_their_sorted_distinct_values(values):
    from multilogit.data.design import encode_outcome

    outcome, codes = encode_outcome(values, "y")
    raw = np.asarray(values)
    levels = sorted(set(raw.tolist()))
    assert outcome.levels == tuple(levels)
    assert all(type(level) is int for level in outcome.levels)
    np.testing.assert_array_equal(codes, [levels.index(v) for v in raw.tolist()])
    assert codes.dtype == np.int64
