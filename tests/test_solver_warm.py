"""The default strategy's warm start on the row subsample and its hand-over to the exact
information: fewer passes over the rows, the same estimates as exact Newton, and safe fallbacks
when the subsample misleads."""

import warnings

import numpy as np
import pytest

import multilogit as ml
from multilogit.engine.memory import InMemoryBackend
from multilogit.engine.scaled import ScaledBackend
from multilogit.exceptions import ConvergenceWarning
from multilogit.solve.directions import SampledThenExact
from multilogit.solve.newton import NewtonOptions, newton
from multilogit.solve.objective import Objective, RidgePenalty
from tests.conftest import simulate


@pytest.fixture(scope="module")
def data():
    X, y = simulate(np.random.default_rng(23), n=40_000, p=5, K=4)
    return X, y


def _quiet_fit(model, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        return model.fit(**kw)


def _strategy_run(model, beta0):
    """Solve with an explicit strategy; return the solution and the strategy."""
    strategy = SampledThenExact()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        sol = newton(model._backend(), beta0, NewtonOptions(), direction=strategy)
    return sol, strategy


def test_warm_start_moves_the_start_and_saves_passes(data):
    X, y = data
    model = ml.MultinomialLogit(y, X)
    beta0 = model.start_params()
    sol, strategy = _strategy_run(model, beta0)
    assert strategy.warm_iterations >= 2
    be = model._backend()
    # Row 0 of the log is the warm start's end, not the start values: a higher log-likelihood.
    assert sol.log["llf"].iloc[0] > be.derivatives(beta0, hessian=False).llf
    # Four score passes and two with the exact information (the subsample's rate on 40,000
    # rows and 15 parameters is a few hundredths a step), against eight without the warm start.
    passes = sol.log["passes"].iloc[-1]
    assert passes <= 6
    cold = newton(be, beta0, NewtonOptions(), direction=SampledThenExact(warm=False))
    assert cold.log["passes"].iloc[-1] >= passes + 2
    exact = _quiet_fit(model, hessian="exact")
    assert exact.iteration_log["passes"].iloc[-1] > passes
    np.testing.assert_allclose(sol.beta, exact._state.beta, rtol=1e-12, atol=1e-12)


def test_warm_start_is_skipped_from_a_start_near_the_mle(data):
    X, y = data
    model = ml.MultinomialLogit(y, X)
    mle = _quiet_fit(model, hessian="exact")._state.beta
    sol, strategy = _strategy_run(model, mle)
    assert strategy.warm_iterations == 0
    # From the MLE itself: the first (sampled) step is already below the hand-over point.
    assert sol.log["passes"].iloc[-1] <= 3
    np.testing.assert_allclose(sol.beta, mle, rtol=1e-12, atol=1e-12)


def _separated_in_the_sample(n=40_000):
    """Data whose row subsample is separated by a dummy while the whole data are not."""
    rng = np.random.default_rng(5)
    X, y = simulate(rng, n=n, p=4, K=3)
    model = ml.MultinomialLogit(y, np.column_stack([X, np.zeros(n)]))
    be = model._backend()
    m = be.sample_rows
    sample = np.arange(m) * (n // m)
    d = np.zeros(n)
    # The dummy is 1 on a tenth of the rows: in the subsample only where the outcome is the
    # first level, elsewhere on rows of every outcome.
    on = rng.uniform(size=n) < 0.1
    in_sample = np.zeros(n, dtype=bool)
    in_sample[sample] = True
    d[on & ~in_sample] = 1.0
    d[sample[y[sample] == y[sample][0]][:40]] = 1.0
    return np.column_stack([X, d]), y


def test_a_separated_subsample_gives_up_the_warm_start():
    X, y = _separated_in_the_sample()
    model = ml.MultinomialLogit(y, X)
    beta0 = model.start_params()
    sol, strategy = _strategy_run(model, beta0)
    assert strategy.warm_iterations == 0
    # The fit started from the start values, and still reached exact Newton's MLE.
    assert sol.log["llf"].iloc[0] == model._backend().derivatives(beta0, hessian=False).llf
    exact = _quiet_fit(model, hessian="exact")
    np.testing.assert_allclose(sol.beta, exact._state.beta, rtol=1e-9, atol=1e-10)


def test_default_fit_agrees_with_exact_newton_beyond_the_tolerance(data):
    X, y = data
    auto = _quiet_fit(ml.MultinomialLogit(y, X))
    exact = _quiet_fit(ml.MultinomialLogit(y, X), hessian="exact")
    # The settled last step leaves the estimates within about tol**2 of the MLE.
    a, e = auto.params.to_numpy(), exact.params.to_numpy()
    assert np.max(np.abs(a - e) / (1 + np.abs(e))) < 1e-12
    np.testing.assert_allclose(auto.bse, exact.bse, rtol=1e-9)
    # Both log-likelihoods are sums over 40,000 rows evaluated at points a rounding error
    # apart: they agree to a few ulps of the sum.
    assert auto.llf == pytest.approx(exact.llf, rel=1e-13)


def test_subsample_objective_is_the_scaled_subsample_with_the_penalty(data):
    X, y = data
    model = ml.MultinomialLogit(y, X)
    be = model._backend()
    beta = model.start_params() + 0.05
    m, n = be.sample_rows, len(X)
    rows = np.arange(m) * (n // m)
    direct = InMemoryBackend(X[rows], model.endog[rows], np.ones(m), model.J)
    d, a = direct.derivatives(beta), be.approx_derivatives(beta)
    factor = n / m
    assert a.llf == pytest.approx(d.llf * factor, rel=1e-14)
    np.testing.assert_allclose(a.score, d.score * factor, rtol=1e-13, atol=1e-9)
    np.testing.assert_allclose(a.info, d.info * factor, rtol=1e-13)
    assert be.approx_derivatives(beta, hessian=False).info is None
    penalty = RidgePenalty(3.0)
    ev = Objective(be, penalty).approx_evaluate(beta)
    assert ev.value == pytest.approx(a.llf - penalty.value(beta), rel=1e-14)
    np.testing.assert_allclose(ev.score, a.score - penalty.gradient(beta), rtol=1e-13)
    np.testing.assert_allclose(ev.info, a.info + penalty.hessian(beta), rtol=1e-13)
    # In rescaled coordinates the subsample's numbers are rescaled like the data's.
    scale = np.array([1.0, 2.0, 0.5, 4.0, 0.25])
    sb = ScaledBackend(be, scale, model.J)
    s = sb.approx_derivatives(beta * scale)
    flat = np.tile(scale, model.J)
    assert s.llf == a.llf
    np.testing.assert_allclose(s.score, a.score / scale, rtol=1e-15)
    np.testing.assert_allclose(s.info, a.info / np.outer(flat, flat), rtol=1e-15)


def test_ridge_fit_with_a_warm_start_reaches_the_penalised_optimum(data):
    X, y = data
    model = ml.MultinomialLogit(y, X)
    penalty = RidgePenalty(50.0)
    be = model._backend()
    strategy = SampledThenExact()
    sol = newton(be, model.start_params(), NewtonOptions(), direction=strategy, penalty=penalty)
    ref = newton(be, model.start_params(), NewtonOptions(hessian="exact"), penalty=penalty)
    assert strategy.warm_iterations >= 1 and sol.converged
    np.testing.assert_allclose(sol.beta, ref.beta, rtol=1e-12, atol=1e-12)


class _Counting:
    """The model's backend, counting the passes that compute the information."""

    def __init__(self, inner):
        self.inner, self.n, self.J, self.with_information = inner, inner.n, inner.J, 0
        self.sample_rows = inner.sample_rows
        self.approx_information = inner.approx_information
        self.approx_derivatives = inner.approx_derivatives

    def derivatives(self, beta, hessian=True):
        self.with_information += bool(hessian)
        return self.inner.derivatives(beta, hessian)


def _counted_run(model):
    backend = _Counting(model._backend())
    strategy = SampledThenExact()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        sol = newton(backend, model.start_params(), NewtonOptions(), direction=strategy)
    return sol, strategy, backend.with_information


def test_the_information_cost_decides_between_sampling_on_and_handing_over(data, monkeypatch):
    X, y = data
    model = ml.MultinomialLogit(y, X)
    # Priced far above a score pass, the information is computed once: the sampled phase
    # runs on until the exact step at its end is small enough to settle.
    monkeypatch.setattr("multilogit.solve.directions.INFO_COST_PER_PARAM", 1e-12)
    sampling_on, _, informations = _counted_run(model)
    assert informations == 1
    # Priced as a score pass, it takes over as soon as one exact step is predicted to do:
    # fewer passes, more of them with the information.
    monkeypatch.setattr("multilogit.solve.directions.INFO_COST_PER_PARAM", 1e12)
    handing_over, strategy, informations = _counted_run(model)
    assert strategy._information_cost() == pytest.approx(1.0) and informations >= 2
    assert handing_over.log["passes"].iloc[-1] < sampling_on.log["passes"].iloc[-1]
    np.testing.assert_allclose(sampling_on.beta, handing_over.beta, rtol=1e-12, atol=1e-13)
    # The information behind the covariance is the exact one at the start of the settled last
    # step: its entries agree with those at the estimates to rounding-like precision (a
    # subsample's would be off by percents).
    exact = model._backend().derivatives(sampling_on.beta, hessian=True).info
    np.testing.assert_allclose(sampling_on.info, exact, rtol=1e-8)


def test_the_information_costs_more_score_passes_with_more_parameters(data):
    X, y = data
    costs = []
    for p, K in ((5, 3), (20, 5), (20, 30)):
        Xp = np.column_stack([np.ones(2000), np.random.default_rng(p).normal(size=(2000, p - 1))])
        yk = np.arange(2000) % K
        model = ml.MultinomialLogit(yk, Xp)
        strategy = SampledThenExact()
        strategy.start(Objective(model._backend()), model.start_params())
        strategy._info = np.eye(p * (K - 1))
        costs.append(strategy._information_cost())
    # Two equations of five columns: barely more than a score pass; 80 and 290 parameters:
    # several.
    assert costs[0] < 1.5 < 4 < costs[1] < costs[2]
