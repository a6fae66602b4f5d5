"""The blocked margins and prediction kernels against direct dense twins and complex steps.

The effects, their Jacobians and the prediction variances are sums of BLAS products over
blocks of rows; here they are compared with the row-by-row kernels and with dense per-row
formulas on small problems, and checked not to depend on how the rows are cut into blocks,
chunks and threads.
"""

import numpy as np
import pandas as pd
import pytest
from statsmodels.tools.numdiff import approx_fprime_cs

import multilogit as ml
from multilogit.engine import kernels, prediction_kernels
from multilogit.inference import margin_sums, margins, prediction

# The blocked sums add the same terms in another order: agreement to rounding.
RTOL = 1e-11


def _problem(rng, n=61, p=4, J=3):
    X = np.column_stack([np.ones(n), rng.normal(size=(n, p - 1))])
    w = rng.uniform(size=n)
    w[5] = 0.0
    beta = rng.normal(size=(J, p))
    return X, w, beta


def _probs(X, beta):
    """Complex-safe probabilities, reference last."""
    eta = np.column_stack([X @ beta.T, np.zeros(len(X))])
    e = np.exp(eta - eta.real.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _twin_effect(X, D, c, beta, dy):
    """sum_i c_i f(P_ik) g_ik, written out row by row (complex-safe)."""
    P = _probs(X, beta)
    B = np.vstack([beta, np.zeros((1, beta.shape[1]))])
    a = np.broadcast_to(D, X.shape) @ B.T
    g = a - (P * a).sum(axis=1, keepdims=True)
    return c @ (P * g if dy else g)


@pytest.mark.parametrize("dy", [True, False])
def test_shared_factors_give_each_unit_direction(rng, dy):
    X, w, beta = _problem(rng)
    J, p = beta.shape
    shared = {t: t + 1 for t in range(p - 1)}  # every non-constant column
    sums = margin_sums.EffectSums(len(shared), beta, dy, shared)
    for sl in (slice(0, 20), slice(20, 61)):  # two blocks
        sums.add_shared(margin_sums.RowProbabilities(X[sl], beta), w[sl])
    eff, jac = sums.finish()
    for t, col in shared.items():
        d = np.zeros((1, p))
        d[0, col] = 1.0
        e1, j1 = np.zeros(J + 1), np.zeros((J + 1, J * p))
        kernels.chunk_margeff_derivative(X, d, np.ones(1), w, beta, dy, e1, j1)
        np.testing.assert_allclose(eff[t], e1, rtol=RTOL, atol=1e-15)
        np.testing.assert_allclose(jac[t], j1, rtol=RTOL, atol=1e-14)
        G = approx_fprime_cs(
            beta.ravel(), lambda b, d=d: _twin_effect(X, d, w, b.reshape(J, p), dy)
        )
        np.testing.assert_allclose(jac[t], G, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("dy", [True, False])
@pytest.mark.parametrize("per_row", [True, False])
def test_row_weights_against_complex_step(rng, dy, per_row):
    X, w, beta = _problem(rng)
    J, p = beta.shape
    D = rng.normal(size=(len(X), p)) if per_row else rng.normal(size=(1, p))
    c = w * rng.uniform(0.5, 2.0, size=len(X))  # a row scale, as the ex methods
    sums = margin_sums.EffectSums(1, beta, dy, {})
    for sl in (slice(0, 33), slice(33, 61)):
        Dsl = D[sl] if per_row else D
        sums.add_derivative(0, margin_sums.RowProbabilities(X[sl], beta), Dsl, c[sl])
    eff, jac = sums.finish()
    np.testing.assert_allclose(eff[0], _twin_effect(X, D, c, beta, dy).real, rtol=RTOL)
    G = approx_fprime_cs(beta.ravel(), lambda b: _twin_effect(X, D, c, b.reshape(J, p), dy))
    np.testing.assert_allclose(jac[0], G, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("logp", [True, False])
def test_level_sums_match_the_row_kernel(rng, logp):
    X, w, beta = _problem(rng)
    J, p = beta.shape
    level = margin_sums.LevelSum(margin_sums.RowProbabilities(X, beta), -0.5 * w, logp)
    e1, j1 = np.zeros(J + 1), np.zeros((J + 1, J * p))
    kernels.chunk_margeff_level(X, w, beta, logp, -0.5, e1, j1)
    np.testing.assert_allclose(level.eff, e1, rtol=RTOL)
    np.testing.assert_allclose(level.jac.reshape(J + 1, J * p), j1, rtol=RTOL, atol=1e-14)


def test_prediction_variances_match_dense_quadratic_forms(rng):
    X, _, beta = _problem(rng, p=5, J=3)
    J, p = beta.shape
    A = rng.normal(size=(J * p, J * p))
    V = A @ A.T / (J * p)
    order = np.array([J, 2, 0, 1])  # level order: the reference first, equations permuted
    P, se = np.empty((len(X), J + 1)), np.empty((len(X), J + 1))

    def run(V):
        Xt = np.ascontiguousarray(X.T)
        S = prediction_kernels.pair_blocks(V, J, p)
        prediction_kernels.prediction_rows(Xt, np.empty((0, J)), beta, S.T @ Xt, order, P, se)

    run(V)
    internal = _probs(X, beta)  # reference last
    np.testing.assert_allclose(P, internal[:, order], rtol=1e-14)
    eye = np.vstack([np.eye(J), np.zeros((1, J))])
    for i in range(len(X)):
        for col, k in enumerate(order):
            g = np.kron(internal[i, k] * (eye[k] - internal[i, :J]), X[i])  # dP_k / dbeta
            assert se[i, col] ** 2 == pytest.approx(g @ V @ g, rel=1e-11, abs=1e-300)
    # A parameter with no meaningful variance (NaN) leaves the variances NaN, not 0.
    V[0, :] = V[:, 0] = np.nan
    run(V)
    assert np.isnan(se).all()
    np.testing.assert_allclose(P, internal[:, order], rtol=1e-14)


def _formula_fit(rng, n=400):
    df = pd.DataFrame(
        {
            "y": rng.integers(0, 3, n),
            "x": rng.normal(size=n),
            "z": np.exp(rng.normal(size=n)),
            "d": rng.integers(0, 2, n),
            "c": rng.poisson(2.0, n),
            "g": rng.choice(["a", "b", "c"], n),
        }
    )
    f = "y ~ x * C(g) + np.log(z) + I(x**2) + d + c + c:z"
    return ml.mnlogit(f, df).fit(), df


def test_blocks_chunks_and_threads_do_not_change_results(rng, monkeypatch):
    fres, _ = _formula_fit(rng)
    X, _, _ = _problem(rng, n=300, p=4)
    X[:, 3] = rng.integers(0, 4, len(X))  # a count
    ares = ml.MultinomialLogit(rng.integers(0, 3, len(X)), X).fit()
    cases = [
        (fres, {"count": True}),
        (fres, {"at": {"x": 0.5, "g": "b"}}),
        (ares, {"count": True}),
        (ares, {"method": "eyex", "dummy": False}),
    ]
    before = [res.get_margeff(**kw) for res, kw in cases]
    # Computed now (the estimation rows' predictions are computed when first read).
    preds = [(pred.predicted, pred.se) for pred in (r.get_prediction() for r in (fres, ares))]
    monkeypatch.setattr(margins, "_CHUNK_ROWS", 7)
    monkeypatch.setattr(margins, "_PASS_ROWS", 50)
    monkeypatch.setattr(margins, "_FRAME_CHUNK_ROWS", 45)
    monkeypatch.setattr(prediction, "_CHUNK_ROWS", 7)
    monkeypatch.setattr(prediction, "_PASS_ROWS", 13)
    for threads in (1, 2):
        for res in (fres, ares):
            monkeypatch.setattr(res.model.backend, "threads", threads)
        for old, (res, kw) in zip(before, cases, strict=True):
            new = res.get_margeff(**kw)
            np.testing.assert_allclose(new.margeff, old.margeff, rtol=1e-12, atol=1e-16)
            np.testing.assert_allclose(new.margeff_cov, old.margeff_cov, rtol=1e-10, atol=1e-18)
        for old, res in zip(preds, (fres, ares), strict=True):
            new = res.get_prediction()
            # Each row's numbers depend on that row alone; BLAS may round a row's product
            # differently in blocks of another size.
            np.testing.assert_array_equal(new.predicted, old[0])
            np.testing.assert_allclose(new.se, old[1], rtol=1e-13)


def test_partial_design_columns_equal_the_full_design(rng):
    res, df = _formula_fit(rng)
    design = res.model.design
    full, _ = design.build(df)
    for names in (["x"], ["g"], ["z"], ["c", "z"], ["d"]):
        cols, reads = design.term_columns(names)
        assert set(names) <= set(reads)
        part = design.build_columns(df[[c for c in reads if c in df.columns]], names)
        np.testing.assert_array_equal(part, full[:, cols])
        # Every column outside ``cols`` is the same whatever the values of ``names``.
        other = df.copy()
        for nm in names:
            other[nm] = other[nm].iloc[::-1].to_numpy()
        moved = np.flatnonzero(np.any(design.build(other)[0] != full, axis=0))
        assert set(moved) <= set(cols)


def test_long_summary_index_as_from_the_values(rng):
    for index in (
        pd.RangeIndex(4),
        pd.Index([3, 1, 1, 7]),
        pd.Index(list("abca")),
        pd.Index([0.5, np.nan, 2.0, 0.5]),
        pd.Index([1, 2, 3, 4], dtype="int32"),
    ):
        outcomes = ["b", "a", "c"]
        expected = pd.MultiIndex.from_arrays(
            [
                np.repeat(np.asarray(index, dtype=object), 3),
                np.tile(np.asarray(outcomes, dtype=object), len(index)),
            ],
            names=["row", "outcome"],
        )
        got = prediction._long_index(index, outcomes, ["row", "outcome"])
        pd.testing.assert_index_equal(got, expected, exact=True)


def test_group_level_sums_equal_sums_over_each_group(rng):
    # Against plain numpy: each group's weighted probability sums and their Jacobian
    # sum_i c_i P_ik (e_k - P_i) x_i' (rows with code -1 in no group).
    m, p, J = 257, 4, 3
    X = rng.normal(size=(m, p))
    beta = rng.normal(size=(J, p))
    c = rng.uniform(0.5, 2.0, m)
    codes = rng.integers(-1, 4, m)
    rows = margin_sums.RowProbabilities(X, beta)
    got = margin_sums.group_level_sums(rows, c, codes, 4)
    E = np.column_stack([X @ beta.T, np.zeros(m)])  # reference last, as RowProbabilities
    P = np.exp(E - E.max(1, keepdims=True))
    P /= P.sum(1, keepdims=True)
    for g, (eff, jac) in enumerate(got):
        sel = codes == g
        np.testing.assert_allclose(eff, c[sel] @ P[sel], rtol=1e-13)
        ref = np.zeros((J + 1, J, p))
        for k in range(J + 1):
            for j in range(J):
                f = c[sel] * P[sel, k] * ((k == j) - P[sel, j])
                ref[k, j] = f @ X[sel]
        np.testing.assert_allclose(jac, ref.reshape((J + 1) * J, p), rtol=1e-12, atol=1e-13)
