"""Separation reports that do not depend on the number of rows, checked against linear
programs written here (scipy's linprog on the pair constraints) and hand computations."""

import time

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import linprog

import multilogit as ml
from multilogit.fit.separation import model_separation
from tests.corpus.separation import _one_outcome, _thresholds


def _fit(formula, df, **kw):
    with pytest.warns(ml.PerfectSeparationWarning):
        return ml.mnlogit(formula, df, **kw).fit()


def _pairs(X, y, J):
    """Dense rows a_ik of the margins x_i (d_{y_i} - d_k); y in 0..J-1, -1 the reference."""
    n, p = X.shape
    rows = []
    for i in range(n):
        for k in [*range(J), -1]:
            if k == y[i]:
                continue
            r = np.zeros(J * p)
            if y[i] >= 0:
                r[y[i] * p : (y[i] + 1) * p] += X[i]
            if k >= 0:
                r[k * p : (k + 1) * p] -= X[i]
            rows.append(r)
    return np.array(rows)


def _lp_min_margin(A):
    """max t s.t. A d >= t, |d| <= 1, t <= 1: complete separation iff t > 0."""
    q = A.shape[1]
    res = linprog(
        np.r_[np.zeros(q), -1.0],
        A_ub=np.column_stack([-A, np.ones(len(A))]),
        b_ub=np.zeros(len(A)),
        bounds=[(-1, 1)] * q + [(None, 1)],
        method="highs",
    )
    return -res.fun


def _lp_can_be_zero(A, strict, c):
    """Is there d with A_S d >= 1, A_T d >= 0 and d_c = 0 (coefficient c can stay finite)?"""
    q = A.shape[1]
    bounds = [(None, None)] * q
    bounds[c] = (0, 0)
    res = linprog(
        np.zeros(q), A_ub=-A, b_ub=-np.where(strict, 1.0, 0.0), bounds=bounds, method="highs"
    )
    return res.status == 0


def _arrays(df, formula_cols, outcome, order):
    X = np.column_stack([np.ones(len(df))] + [df[c].to_numpy(float) for c in formula_cols])
    X = X / np.abs(X).max(axis=0)
    y = np.array([order.index(v) - 1 for v in df[outcome]])  # first level is the reference
    return X, y


# -- the label ---------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [400, 20_000, pytest.param(200_000, marks=pytest.mark.slow)])
def test_complete_separation_is_labelled_complete_at_every_n(n):
    df = _thresholds(n)
    res = _fit("y ~ x + z", df)
    assert res.separation.kind == "complete"
    assert res.separation.n_perfect == res.separation.n_separated == n
    # Independent verdict: the program's smallest margin is positive (small n), and in any
    # case a hand-made direction makes every row's own outcome strictly the largest.
    X, y = _arrays(df, ["x", "z"], "y", ["a", "b", "c"])
    if n <= 400:
        assert _lp_min_margin(_pairs(X, y, 2)) > 0
    sx = np.abs(df.x).max()
    D = np.array([[0.5, sx, 0.0], [0.0, 2 * sx, 0.0]])  # b - a = x + .5, c - b = x - .5
    margins = _pairs_margins(X, y, D)
    assert margins.min() > 0


def _pairs_margins(X, y, D):
    E = np.column_stack([X @ D.T, np.zeros(len(X))])
    own = np.where(y < 0, D.shape[0], y)
    a = E[np.arange(len(X)), own][:, None] - E
    a[np.arange(len(X)), own] = np.inf
    return a


def test_quasi_complete_stays_quasi_complete():
    df = _one_outcome(400)
    assert _fit("y ~ g + x + z", df).separation.kind == "quasi-complete"


# -- exactly the diverging coefficients --------------------------------------------------------


def test_diverging_coefficients_match_a_program_per_coefficient():
    # Small n: for every coefficient, the program written here says whether some direction
    # with every strict pair strict leaves it at 0; the report names exactly the others.
    df = _one_outcome(300, seed=5)
    res = _fit("y ~ g + x + z", df)
    X, y = _arrays(df, ["g", "x", "z"], "y", ["a", "b", "c"])
    A = _pairs(X, y, 2)
    # Strict pairs: those a direction from the program can make positive (c against a, b).
    alt = np.array([k for i in range(len(y)) for k in [0, 1, -1] if k != y[i]])
    own = np.array([y[i] for i in range(len(y)) for k in [0, 1, -1] if k != y[i]])
    strict = (own == 1) | (alt == 1)
    names = [(o, t) for o in ("b", "c") for t in ("Intercept", "g", "x", "z")]
    must = [nm for c, nm in enumerate(names) if not _lp_can_be_zero(A, strict, c)]
    assert res.separation.diverging == must == [("c", "Intercept"), ("c", "g")]


@pytest.mark.parametrize("n", [400, 20_000, pytest.param(100_000, marks=pytest.mark.slow)])
def test_diverging_coefficients_do_not_depend_on_n(n):
    res = _fit("y ~ g + x + z", _one_outcome(n))
    sep = res.separation
    assert sep.diverging == [("c", "Intercept"), ("c", "g")]
    assert sorted(sep.unidentified) == [("b", "g"), ("c", "x"), ("c", "z")]
    assert np.isfinite(res.bse.loc[["Intercept", "x", "z"], "b"]).all()


def test_complete_separation_reports_the_same_coefficients_at_every_n():
    reports = {n: _fit("y ~ x + z", _thresholds(n)).separation for n in (400, 20_000)}
    for sep in reports.values():
        assert sep.diverging == [("b", "Intercept"), ("b", "x"), ("c", "x")]
        assert sep.params.all()  # in the limit nothing is identified


# -- warn means warn, and the programs stay small ----------------------------------------------


def test_reference_outcome_without_weight_is_named_not_a_separation_error():
    # No outcome can be compared with a reference that has no weight: an input error naming
    # it, under every separation mode (never PerfectSeparationError).
    rng = np.random.default_rng(1)
    y = rng.choice(["a", "b", "c"], 300)
    df = pd.DataFrame({"x": rng.normal(size=300), "y": y, "w": np.where(y == "a", 0.0, 1.0)})
    model = ml.mnlogit("y ~ x", df, freq_weights="w")
    for mode in ("warn", "raise"):
        with pytest.raises(ml.DataError, match="reference outcome 'a' has zero total weight"):
            model.fit(separation=mode)


def test_check_without_a_candidate_is_fast_on_large_data():
    # The path taken when the solver fails: no candidate direction; the programs still run on
    # a subset of the rows (this took minutes with the program on every row).
    df = _thresholds(100_000)
    model = ml.mnlogit("y ~ x + z", df)
    t0 = time.perf_counter()
    sep = model_separation(model)
    assert time.perf_counter() - t0 < 20
    assert sep.kind == "complete"
    assert sep.diverging == [("b", "Intercept"), ("b", "x"), ("c", "x")]
    rng = np.random.default_rng(3)
    noisy = df.assign(x=df.x + rng.normal(size=len(df)))  # overlap: the estimate exists
    assert model_separation(ml.mnlogit("y ~ x + z", noisy)) is None


# -- Wald tests ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def separated():
    return _fit("y ~ g + x + z", _one_outcome(2_000))


def test_wald_on_identified_coefficients_is_the_sub_block_statistic(separated):
    names = [("b", "x"), ("b", "z"), ("b", "Intercept")]
    b = np.array([separated.params.loc[t, o] for o, t in names])
    V = separated.cov_params().loc[names, names].to_numpy()
    assert np.all(np.isfinite(V))
    t = separated.wald_test([f"{o}:{term}" for o, term in names])
    np.testing.assert_allclose(t.statistic, b @ np.linalg.solve(V, b), rtol=1e-10)
    assert t.df == 3 and np.isfinite(t.pvalue) and not t.note


def test_wald_on_other_coefficients_names_them(separated):
    t = separated.wald_test("x")  # b:x is identified, c:x is not
    assert np.isnan(t.statistic)
    assert "not identified: c:x" in t.note and "b:x" not in t.note
    t = separated.wald_test("c:g = 0")
    assert "diverging: c:g" in t.note


def test_wald_terms_table_warns_which_terms_it_cannot_test(separated):
    with pytest.warns(ml.PerfectSeparationWarning, match=r"'g' \(diverging: c:g; not identified"):
        table = separated.wald_test_terms()
    assert table["statistic"].isna().all()  # every term has a coefficient in c's equation
    assert list(table["df"]) == [2, 2, 2, 2]


# -- another reference outcome -------------------------------------------------------------------


def test_repivoted_report_is_that_of_the_refit():
    # Against b, a crosses b at x = -0.5 and c crosses b at x = 0.5: both intercepts and both
    # slopes must diverge; z need not.
    df = _thresholds(400)
    piv = _fit("y ~ x + z", df).repivot("b")
    refit = _fit("y ~ x + z", df, ref="b")
    want = [("a", "Intercept"), ("a", "x"), ("c", "Intercept"), ("c", "x")]
    assert piv.separation.diverging == refit.separation.diverging == want
    np.testing.assert_array_equal(piv.separation.params, refit.separation.params)


def test_long_checks_show_progress(monkeypatch, capsys):
    monkeypatch.setenv("MULTILOGIT_PROGRESS", "1")
    model_separation(ml.mnlogit("y ~ x + z", _thresholds(20_000)))
    err = capsys.readouterr().err
    assert "separation check" in err and "linear programs" in err
    monkeypatch.setenv("MULTILOGIT_PROGRESS", "0")
    model_separation(ml.mnlogit("y ~ x + z", _thresholds(20_000)))
    assert "separation check" not in capsys.readouterr().err
