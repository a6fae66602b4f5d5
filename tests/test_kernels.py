"""Numba kernels against their NumPy twins and against finite differences."""

import numpy as np
import pytest

from multilogit.engine.memory import InMemoryBackend, predict_linear, predict_probabilities
from tests import kernels_numpy as twin


def _problem(rng, n=700, p=5, J=3, scale=1.0):
    X = np.column_stack([np.ones(n), rng.normal(size=(n, p - 1))])
    y = rng.integers(-1, J, size=n)
    w = rng.uniform(0.2, 3.0, size=n)
    beta = rng.normal(scale=scale, size=(J, p))
    return X, y, w, beta


@pytest.mark.parametrize("chunk_rows", [256, 333, 5000])
def test_kernels_match_numpy_twin(rng, chunk_rows):
    X, y, w, beta = _problem(rng)
    d = InMemoryBackend(X, y, w, beta.shape[0], chunk_rows=chunk_rows).derivatives(beta)
    # Summation order differs from NumPy's, so agreement is to rounding (1e-12 relative).
    assert d.llf == pytest.approx(twin.loglike(X, y, w, beta), rel=1e-12)
    np.testing.assert_allclose(d.score, twin.score(X, y, w, beta), rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(d.info, twin.information(X, y, w, beta), rtol=1e-10, atol=1e-9)
    np.testing.assert_array_equal(d.info, d.info.T)


def test_probabilities_and_linear_match_twin(rng):
    X, _, _, beta = _problem(rng)
    np.testing.assert_allclose(
        predict_probabilities(X, beta), twin.probabilities(X, beta), rtol=1e-13
    )
    np.testing.assert_allclose(predict_linear(X, beta), X @ beta.T, rtol=1e-13, atol=1e-13)


def test_score_and_information_match_finite_differences(rng):
    X, y, w, beta = _problem(rng, n=300, p=3, J=2, scale=0.5)
    be = InMemoryBackend(X, y, w, 2)
    d = be.derivatives(beta)
    h = 1e-6
    flat = beta.ravel()
    num_score = np.empty_like(flat)
    num_hess = np.empty((flat.size, flat.size))
    for k in range(flat.size):
        e = np.zeros_like(flat)
        e[k] = h
        up = be.derivatives((flat + e).reshape(beta.shape))
        dn = be.derivatives((flat - e).reshape(beta.shape))
        num_score[k] = (up.llf - dn.llf) / (2 * h)
        num_hess[:, k] = (up.score.ravel() - dn.score.ravel()) / (2 * h)
    # Central differences have O(h^2) truncation and O(eps/h) rounding error: ~1e-7 relative.
    np.testing.assert_allclose(d.score.ravel(), num_score, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(-d.info, num_hess, rtol=1e-6, atol=1e-6)


def test_no_overflow_for_huge_linear_predictors(rng):
    X, y, w, _ = _problem(rng, n=200, p=3, J=2)
    beta = np.array([[800.0, 300.0, -500.0], [-900.0, 700.0, 100.0]])
    d = InMemoryBackend(X, y, w, 2).derivatives(beta)
    assert np.isfinite(d.llf)
    assert np.all(np.isfinite(d.score)) and np.all(np.isfinite(d.info))
    P = predict_probabilities(X, beta)
    assert np.all(np.isfinite(P))
    np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=1e-14)


def test_zero_weight_rows_do_not_count(rng):
    X, y, w, beta = _problem(rng, n=400)
    w[::3] = 0.0
    keep = w > 0
    full = InMemoryBackend(X, y, w, 3).derivatives(beta)
    sub = InMemoryBackend(X[keep], y[keep], w[keep], 3).derivatives(beta)
    assert full.llf == pytest.approx(sub.llf, rel=1e-13)
    np.testing.assert_allclose(full.info, sub.info, rtol=1e-11, atol=1e-10)


def test_bitwise_reproducible(rng):
    X, y, w, beta = _problem(rng, n=3000)
    a = InMemoryBackend(X, y, w, 3, chunk_rows=512).derivatives(beta)
    b = InMemoryBackend(X, y, w, 3, chunk_rows=512).derivatives(beta)
    assert a.llf == b.llf
    np.testing.assert_array_equal(a.score, b.score)
    np.testing.assert_array_equal(a.info, b.info)
