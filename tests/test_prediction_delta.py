"""Predictions with delta-method standard errors against a direct numpy computation.

The package computes each row's variances from quadratic forms of the covariance's blocks,
block by block of rows over threads, straight into the summary table; here every row's
``K x (K-1) p`` gradient is written out and multiplied with the covariance, the intervals are
formed with ``scipy.special.logit``/``expit``, and (for frequency weights) the covariance itself
is the inverse of the information summed row by row in numpy.  statsmodels' ``MNLogit`` has no
``get_prediction``; with two outcomes its weighted ``GLM`` binomial fit has one.
"""

import tracemalloc

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import special, stats

import multilogit as ml
from multilogit.inference import prediction


def _probabilities(X, B, ref_first=True):
    """Softmax probabilities, the reference (linear predictor 0) first; ``B`` is ``(J, p)``."""
    eta = np.column_stack([np.zeros(len(X)), X @ B.T])
    e = np.exp(eta - eta.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _numpy_delta(X, params: pd.DataFrame, V, outcomes, ref):
    """Probabilities and delta-method standard errors ``(n, K)``, columns in ``outcomes``
    order, from each row's dense gradient :math:`\\partial P_k / \\partial \\beta_j =
    P_k (\\delta_{kj} - P_j) x` (flat outcome-major, as ``cov_params``)."""
    B = params.to_numpy().T
    J, p = B.shape
    labels = [ref, *params.columns]
    P = _probabilities(X, B)
    se = np.empty_like(P)
    for i in range(len(X)):
        G = np.empty((J + 1, J * p))
        for k in range(J + 1):
            d = -P[i, 1:].copy()
            if k > 0:
                d[k - 1] += 1.0
            G[k] = np.kron(P[i, k] * d, X[i])
        se[i] = np.sqrt(np.einsum("kq,qr,kr->k", G, V, G))
    pos = [labels.index(o) for o in outcomes]
    return P[:, pos], se[:, pos]


def _numpy_information_inverse(X, params: pd.DataFrame, f):
    """:math:`(\\sum_i f_i (\\operatorname{diag} P_i - P_i P_i^\\top) \\otimes x_i x_i^\\top)^{-1}`
    over the non-reference outcomes: the nonrobust covariance of a frequency-weighted fit."""
    P = _probabilities(X, params.to_numpy().T)[:, 1:]
    q = P.shape[1] * X.shape[1]
    info = np.zeros((q, q))
    for i in range(len(X)):
        W = np.diag(P[i]) - np.outer(P[i], P[i])
        info += f[i] * np.kron(W, np.outer(X[i], X[i]))
    return np.linalg.inv(info)


def _check_long(frame, P, se, alpha=0.05, method="logit"):
    """The long summary frame against the numpy numbers, row-major ``(row, outcome)``."""
    n, K = P.shape
    q = stats.norm.ppf(1.0 - alpha / 2.0)
    if method == "logit":
        half = q * se / (P * (1.0 - P))
        lo, hi = special.expit(special.logit(P) - half), special.expit(special.logit(P) + half)
    else:
        lo, hi = P - q * se, P + q * se
    got = {c: frame[c].to_numpy().reshape(n, K) for c in frame.columns}
    np.testing.assert_allclose(got["prob"], P, rtol=1e-12)
    # Both exact formulas at the same covariance: agreement to rounding.
    np.testing.assert_allclose(got["std err"], se, rtol=1e-10)
    np.testing.assert_allclose(got["lower"], lo, rtol=1e-10)
    np.testing.assert_allclose(got["upper"], hi, rtol=1e-10)


@pytest.mark.parametrize("blocked", [False, True])
def test_estimation_rows_with_frequency_weights(rng, monkeypatch, blocked):
    from tests.conftest import simulate

    X, y = simulate(rng, n=240, p=4, K=4)
    f = rng.integers(1, 4, len(y)).astype(float)
    res = ml.MultinomialLogit(y, X, freq_weights=f).fit(tol=1e-12)
    if blocked:
        # Many blocks of rows, in several chunks of the pass, over two threads.
        monkeypatch.setattr(prediction, "_CHUNK_ROWS", 7)
        monkeypatch.setattr(prediction, "_PASS_ROWS", 50)
        monkeypatch.setattr(res.model.backend, "threads", 2)
    V = _numpy_information_inverse(X, res.params, f)
    P, se = _numpy_delta(X, res.params, V, list(res.model.outcomes), res.model.outcomes[0])
    pred = res.get_prediction()
    frame = pred.summary_frame(alpha=0.1)
    _check_long(frame, P, se, alpha=0.1)
    assert list(frame.index[:4]) == [(0, o) for o in ("c0", "c1", "c2", "c3")]
    assert frame.index[-1] == (len(y) - 1, "c3")
    # The same numbers once kept (read first), and from the wide form and conf_int.
    np.testing.assert_allclose(pred.se.to_numpy(), se, rtol=1e-10)
    pd.testing.assert_frame_equal(pred.summary_frame(alpha=0.1), frame)
    wide = pred.summary_frame(alpha=0.1, form="wide")
    np.testing.assert_array_equal(wide.xs("std err", axis=1, level=1).to_numpy(), pred.se)
    lo, _ = pred.conf_int(alpha=0.1)
    np.testing.assert_array_equal(lo.to_numpy().ravel(), frame["lower"].to_numpy())


def test_formula_model_with_sampling_weights_on_new_rows(rng):
    n = 300
    df = pd.DataFrame(
        {
            "y": rng.choice(["a", "b", "c", "d"], n),
            "x": rng.normal(size=n),
            "z": np.exp(rng.normal(size=n)),
            "g": rng.choice(["u", "v", "w"], n),
            "w": rng.uniform(0.5, 2.0, n),
        }
    )
    res = ml.mnlogit("y ~ x + C(g) + np.log(z)", df, ref="c", weights="w").fit(tol=1e-12)
    assert list(res.params.index) == ["Intercept", "C(g)[T.v]", "C(g)[T.w]", "x", "np.log(z)"]
    new = df.iloc[[7, 3, 250, 41, 99]].drop(columns=["y", "w"]).set_axis([10, 4, -2, 8, 0])
    X = np.column_stack(
        [np.ones(len(new)), new.g == "v", new.g == "w", new.x, np.log(new.z)]
    ).astype(float)
    V = res.cov_params().to_numpy()  # sandwich (sampling weights): the delta method given V
    P, se = _numpy_delta(X, res.params, V, list(res.model.outcomes), "c")
    pred = res.get_prediction(new)
    _check_long(pred.summary_frame(), P, se)
    _check_long(pred.summary_frame(alpha=0.01, method="symmetric"), P, se, 0.01, "symmetric")
    assert list(pred.predicted.index) == [10, 4, -2, 8, 0]
    assert list(pred.predicted.columns) == ["a", "b", "c", "d"]
    np.testing.assert_allclose(pred.se.to_numpy(), se, rtol=1e-10)


def test_binary_frequency_weights_match_statsmodels_glm(admissions, rng):
    X = sm.add_constant(admissions[["gre", "gpa"]].astype(float))
    f = rng.integers(1, 5, len(X)).astype(float)
    glm = sm.GLM(admissions["admit"], X, family=sm.families.Binomial(), freq_weights=f)
    ref = glm.fit(tol=1e-13).get_prediction().summary_frame(alpha=0.1)
    res = ml.MultinomialLogit(admissions["admit"], X, freq_weights=f).fit(tol=1e-10)
    frame = res.get_prediction().summary_frame(alpha=0.1).xs(1, level="outcome")
    np.testing.assert_allclose(frame["prob"], ref["mean"], rtol=1e-7)
    np.testing.assert_allclose(frame["std err"], ref["mean_se"], rtol=1e-6)
    # statsmodels: the interval of the linear predictor, mapped through the inverse link.
    np.testing.assert_allclose(frame["lower"], ref["mean_ci_lower"], rtol=1e-6)
    np.testing.assert_allclose(frame["upper"], ref["mean_ci_upper"], rtol=1e-6)


def test_summary_frame_owns_its_numbers(hsb_res):
    pred = hsb_res.get_prediction()
    frame = pred.summary_frame()
    before = frame.copy()
    frame.loc[:, "prob"] = -1.0
    frame.iloc[0, 1] = 99.0
    # Writing into one table changes neither the predictions nor a later table.
    pd.testing.assert_frame_equal(pred.summary_frame(), before)
    assert (pred.predicted.to_numpy() > 0).all()
    frame2 = pred.summary_frame()
    frame2.loc[:, "std err"] = 0.0
    assert (pred.se.to_numpy() > 0).all()
    pd.testing.assert_frame_equal(pred.summary_frame(), before)


def test_long_summary_frame_is_the_only_table_of_its_size(rng):
    """The long table of the estimation rows is computed in place: no (n, K) copies of the
    probabilities and standard errors (nor n K int64 index codes) on top of it."""
    from tests.conftest import simulate

    X, y = simulate(rng, n=60_000, p=4, K=3)
    res = ml.MultinomialLogit(y, X).fit()
    res.get_prediction().summary_frame()  # compiled and warm
    tracemalloc.start()
    try:
        frame = res.get_prediction().summary_frame()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    out = int(frame.memory_usage(index=True, deep=True).sum())
    one = len(y) * 3 * 8  # one (n, K) float64 array
    assert peak - out < one


def test_no_rows(rng):
    from tests.conftest import simulate

    X, y = simulate(rng, n=200, p=3, K=3)
    pred = ml.MultinomialLogit(y, X).fit().get_prediction(X[:0])
    assert pred.summary_frame().shape == (0, 4)
    assert pred.summary_frame(form="wide").shape == (0, 12)
    assert pred.predicted.shape == pred.conf_int()[0].shape == (0, 3)
