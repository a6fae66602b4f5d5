"""Anderson acceleration of the sampled phase: GMRES-like on a linear score, safe fallbacks,
and in a fit the same estimates as exact Newton in fewer passes than the plain sampled steps."""

import warnings

import numpy as np
import pytest
from scipy import linalg

import multilogit as ml
from multilogit.exceptions import ConvergenceWarning
from multilogit.solve.acceleration import AndersonAcceleration
from multilogit.solve.directions import SampledThenExact
from multilogit.solve.newton import NewtonOptions, newton
from tests.conftest import simulate


def _spd(rng, q, spread):
    A = rng.standard_normal((q, q))
    Q, _ = np.linalg.qr(A)
    return Q @ np.diag(np.exp(rng.uniform(0, spread, q))) @ Q.T


def _linear_problem(rng, q, eigenvalues):
    """A preconditioner ``M`` and an information ``H`` with ``M^{-1} H`` having exactly the
    given (distinct) eigenvalues, spread over ``q`` dimensions."""
    M = _spd(rng, q, 3.0)
    root = linalg.sqrtm(M).real
    Q, _ = np.linalg.qr(rng.standard_normal((q, q)))
    lam = np.resize(np.asarray(eigenvalues, dtype=float), q)
    H = root @ Q @ np.diag(lam) @ Q.T @ root
    return M, 0.5 * (H + H.T)


def _iterate(M, H, bstar, steps, accelerate, memory=5):
    cf = linalg.cho_factor(M)
    acc = AndersonAcceleration(memory)
    b = np.zeros_like(bstar)
    errors = []
    for _ in range(steps):
        g = H @ (bstar - b)
        r = linalg.cho_solve(cf, g)
        b = b + (acc.step(b, g, cf, r) if accelerate else r)
        errors.append(np.linalg.norm(b - bstar) / np.linalg.norm(bstar))
    return np.array(errors)


def test_three_eigenvalues_converge_in_four_steps():
    # GMRES on an operator with three distinct eigenvalues is exact after three products; the
    # accelerated iteration uses the first step's plain move, then three differences.
    rng = np.random.default_rng(0)
    M, H = _linear_problem(rng, 30, [0.8, 1.1, 1.3])
    bstar = rng.standard_normal(30)
    acc = _iterate(M, H, bstar, 5, True)
    plain = _iterate(M, H, bstar, 5, False)
    assert acc[3] < 1e-10
    assert plain[3] > 1e-3  # the plain iteration contracts by at most 0.3 a step


def test_acceleration_beats_the_plain_iteration_on_a_spread_spectrum():
    rng = np.random.default_rng(1)
    M, H = _linear_problem(rng, 60, rng.uniform(0.85, 1.15, 60))
    bstar = rng.standard_normal(60)
    acc = _iterate(M, H, bstar, 6, True)
    plain = _iterate(M, H, bstar, 6, False)
    assert acc[-1] < plain[-1] / 5


def test_metric_is_the_preconditioners():
    # Minimising the residual in the Euclidean norm instead of M's gives another step: the
    # result must match the M-norm least-squares solution computed here directly.
    rng = np.random.default_rng(2)
    q = 12
    M, H = _linear_problem(rng, q, rng.uniform(0.5, 1.5, q))
    cf = linalg.cho_factor(M)
    bstar = rng.standard_normal(q)
    acc = AndersonAcceleration(3)
    points, res = [], []
    b = np.zeros(q)
    for _ in range(3):
        g = H @ (bstar - b)
        r = linalg.cho_solve(cf, g)
        points.append(b.copy())
        res.append(r)
        b = b + acc.step(b, g, cf, r)
    B, R = np.array(points).T, np.array(res).T
    dB, dR = np.diff(B, axis=1), np.diff(R, axis=1)
    # minimise (r - dR c)' M (r - dR c): normal equations in M's inner product
    c = np.linalg.solve(dR.T @ M @ dR, dR.T @ M @ R[:, -1])
    expected = B[:, -1] + R[:, -1] - (dB + dR) @ c
    np.testing.assert_allclose(b, expected, rtol=1e-10, atol=1e-12)


def test_an_untrustworthy_combination_falls_back_to_the_plain_step():
    rng = np.random.default_rng(3)
    q = 5
    M = _spd(rng, q, 1.0)
    cf = linalg.cho_factor(M)
    acc = AndersonAcceleration(2)
    # Two points whose scores are nearly equal though the points are far apart: the
    # combination would extrapolate wildly.
    g = rng.standard_normal(q)
    r = linalg.cho_solve(cf, g)
    acc.step(np.zeros(q), g, cf, r)
    g2 = g * (1 - 1e-9)
    r2 = linalg.cho_solve(cf, g2)
    out = acc.step(np.full(q, 1e3), g2, cf, r2)
    np.testing.assert_array_equal(out, r2)
    assert acc.used == 0


def test_memory_must_be_positive():
    with pytest.raises(ValueError, match="memory"):
        AndersonAcceleration(0)


def test_reset_forgets_the_history():
    rng = np.random.default_rng(4)
    M = _spd(rng, 4, 1.0)
    cf = linalg.cho_factor(M)
    acc = AndersonAcceleration(3)
    for k in range(2):
        g = rng.standard_normal(4)
        acc.step(np.full(4, float(k)), g, cf, linalg.cho_solve(cf, g))
    assert acc.used == 1
    acc.reset()
    g = rng.standard_normal(4)
    r = linalg.cho_solve(cf, g)
    np.testing.assert_array_equal(acc.step(np.zeros(4), g, cf, r), r)


@pytest.fixture(scope="module")
def large():
    return simulate(np.random.default_rng(29), n=200_000, p=20, K=5)


def _solve(model, strategy):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        return newton(model._backend(), model.start_params(), NewtonOptions(), direction=strategy)


def test_accelerated_fit_equals_exact_newton_and_converges_faster(large):
    X, y = large
    model = ml.MultinomialLogit(y, X)
    fast = _solve(model, SampledThenExact())
    plain = _solve(model, SampledThenExact(accelerate=False))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        exact = model.fit(hessian="exact")
    ref = exact._state.beta
    assert np.max(np.abs(fast.beta - ref) / (1 + np.abs(ref))) < 1e-10
    np.testing.assert_allclose(
        np.sqrt(np.diag(np.linalg.inv(fast.info))), exact.bse.to_numpy().T.ravel(), rtol=1e-9
    )

    def passes_to(log, level):
        """Passes made when a step with the subsample's information first had a Newton
        decrement below ``level``."""
        sampled = log[(log["info_rows"] < len(y)) & (log["decrement"] < level)]
        return sampled["passes"].iloc[0] if len(sampled) else np.inf

    # The same data, the same subsample: only the acceleration differs.
    assert passes_to(fast.log, 1e-4) < passes_to(plain.log, 1e-4)
