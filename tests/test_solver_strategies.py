"""The two Newton strategies (subsampled information first, or exact throughout) and the fast
paths of the engine: same estimates, exact standard errors, and the building blocks they use."""

import warnings

import numpy as np
import pytest

import multilogit as ml
from multilogit.engine import kernels, threads
from multilogit.engine.memory import InMemoryBackend
from multilogit.exceptions import ConvergenceWarning
from multilogit.solve import newton as solver
from tests import kernels_numpy as twin
from tests.conftest import simulate


@pytest.fixture(scope="module")
def large():
    """Enough rows per parameter that ``hessian="auto"`` uses a subsample."""
    X, y = simulate(np.random.default_rng(7), n=6000, p=4, K=4)
    return X, y


def _fit(X, y, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        return ml.MultinomialLogit(y, X).fit(**kw)


def _settled(log) -> bool:
    """Whether the last row is a step taken without a pass over the rows."""
    return log["step"].iloc[-1] == 1.0 and log["passes"].iloc[-1] == log["passes"].iloc[-2]


def test_auto_samples_then_finishes_with_two_exact_informations(large):
    X, y = large
    res = _fit(X, y)
    log = res.iteration_log
    model = res.model
    sample = model._backend().sample_rows
    assert 0 < sample < len(X)
    # The subsample's information first, then the exact one: one exact evaluation at the
    # hand-over, one after the exact step, and the last (tiny) step settled without a pass.
    rows = log["info_rows"].to_numpy()
    sampled = int(np.count_nonzero(rows == sample))
    assert sampled >= 2 and (rows[:sampled] == sample).all() and (rows[sampled:] == len(X)).all()
    assert len(rows) - sampled == 2 and _settled(log)
    assert log["passes"].iloc[-1] == sampled + 1
    llf = log["llf"].to_numpy()
    # Step-halving accepts rounding-level decreases (1e-12 relative) at the optimum.
    assert res.converged and np.all(np.diff(llf) >= -1e-12 * np.abs(llf[1:]))


@pytest.mark.parametrize("hessian", ["auto", "exact"])
def test_one_pass_over_the_rows_per_full_step(large, hessian):
    # The point a full step reaches is evaluated once, with the information when the next
    # iteration needs it (the exact phase, or the sampled phase's last step), not once for
    # the line search and again for the information.
    res = _fit(*large, hessian=hessian)
    log = res.iteration_log
    steps = log["step"].to_numpy()[1:]
    assert np.all(steps == 1.0)  # full steps only
    # After a sampled phase the last step is settled without evaluating its end.
    settled = hessian == "auto"
    assert _settled(log) == settled
    assert log["passes"].iloc[-1] == 1 + len(steps) - settled


def test_auto_and_exact_reach_the_same_estimates_and_standard_errors(large):
    X, y = large
    auto, exact = _fit(X, y), _fit(X, y, hessian="exact")
    assert (exact.iteration_log["info_rows"] == len(X)).all()
    # Both stop within tol = 1e-8 of the MLE with quadratic (exact) or fast linear (sampled)
    # convergence: the estimates agree to 1e-10 relative to 1 + |beta|, far below any printed
    # digit.
    diff = np.abs(auto.params.to_numpy() - exact.params.to_numpy())
    assert np.all(diff <= 1e-10 * (1 + np.abs(exact.params.to_numpy())))
    np.testing.assert_allclose(auto.bse, exact.bse, rtol=1e-8)
    assert auto.llf == pytest.approx(exact.llf, rel=1e-14)


def test_covariance_is_the_exact_information_at_the_reported_estimates(large):
    X, y = large
    res = _fit(X, y)
    # Information and score from the NumPy twins, not from the package: labels c0..c3 with
    # reference c0 (coded -1) and equations c1, c2, c3 (coded 0, 1, 2).
    assert res.ref == "c0" and list(res.params.columns) == ["c1", "c2", "c3"]
    codes = np.array([int(label[1:]) - 1 for label in y])
    w = np.ones(len(X))
    beta = res.params.to_numpy().T
    info = twin.information(X, codes, w, beta)
    # The information behind the covariance is the exact one at the start of the last step,
    # which was taken without a new evaluation: shorter than 1e-9 relative, it changes the
    # covariance far below any printed digit (a subsample's information would be off by
    # percents).
    cov = res.cov_params().to_numpy()
    np.testing.assert_allclose(cov, np.linalg.inv(info), rtol=1e-9, atol=1e-9 * np.abs(cov).max())
    # The exact Newton step left at the estimates is negligible (below 1e-10 relative).
    step = np.linalg.solve(info, twin.score(X, codes, w, beta).ravel())
    assert np.max(np.abs(step) / (1 + np.abs(beta.ravel()))) < 1e-10


def test_small_data_uses_the_exact_information_only(hsb_res, hsbdemo):
    assert (hsb_res.iteration_log["info_rows"] == len(hsbdemo)).all()
    assert hsb_res.model._backend().approx_information(np.zeros((2, 5))) is None


def test_hessian_option_is_checked(large):
    X, y = large
    with pytest.raises(ValueError, match="hessian must be 'auto' or 'exact'"):
        ml.MultinomialLogit(y, X).fit(hessian="bfgs")
    with pytest.raises(ValueError, match="hessian must be"):
        solver.newton(None, np.zeros((1, 1)), solver.NewtonOptions(hessian="diag"))


class _Distorted:
    """A backend whose approximate information is off by a factor (or not definite)."""

    def __init__(self, inner, factor):
        self.inner, self.factor, self.n = inner, factor, inner.n
        self.sample_rows = inner.sample_rows

    def derivatives(self, beta, hessian=True):
        return self.inner.derivatives(beta, hessian)

    def approx_information(self, beta):
        info = self.inner.approx_information(beta)
        return info * self.factor


@pytest.mark.parametrize("factor", [3.0, 0.6, -1.0])
def test_a_poor_or_indefinite_approximation_still_ends_at_the_mle(large, factor):
    X, y = large
    model = ml.MultinomialLogit(y, X)
    ref = solver.newton(model._backend(), model.start_params(), solver.NewtonOptions())
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        sol = solver.newton(
            _Distorted(model._backend(), factor), model.start_params(), solver.NewtonOptions()
        )
    assert sol.converged
    np.testing.assert_allclose(sol.beta, ref.beta, rtol=1e-8, atol=1e-10)
    # The exact information (at the start of the settled last step, within 1e-9 of the
    # estimates), never the distorted one.
    exact = model._backend().derivatives(sol.beta, hessian=True).info
    np.testing.assert_allclose(sol.info, exact, rtol=1e-8)
    if factor < 0:  # not positive definite: the solver went exact from the first iteration
        assert (sol.log["info_rows"].iloc[1:] == len(X)).all()


def test_iteration_limit_in_the_sampled_phase_returns_the_exact_information(large):
    X, y = large
    model = ml.MultinomialLogit(y, X)
    be = model._backend()
    with pytest.warns(ConvergenceWarning, match="no convergence in 2 iterations"):
        sol = solver.newton(be, model.start_params(), solver.NewtonOptions(maxiter=2))
    assert not sol.converged
    np.testing.assert_array_equal(sol.info, be.derivatives(sol.beta, hessian=True).info)


def test_subsample_information_is_scaled_to_the_data(rng):
    X, y = simulate(rng, n=40_000, p=3, K=3)
    model = ml.MultinomialLogit(y, X)
    be = model._backend()
    beta = model.start_params()
    approx, exact = be.approx_information(beta), be.derivatives(beta).info
    # A sample of 1/32 of the rows estimates the information to a few percent.
    np.testing.assert_allclose(approx, exact, rtol=0.15, atol=0.05 * np.abs(exact).max())
    # With weights the sample is rescaled by the weight total.
    w = np.where(np.arange(len(X)) % 2 == 0, 3.0, 1.0)
    bw = InMemoryBackend(X, model.endog, w, model.J)
    np.testing.assert_allclose(
        bw.approx_information(beta),
        bw.derivatives(beta).info,
        rtol=0.15,
        atol=0.05 * np.abs(bw.derivatives(beta).info).max(),
    )


def test_column_scan_and_pair_stats_match_numpy(rng):
    X = rng.normal(size=(1000, 5)) * [1, 10, 0.1, 1e6, 1]
    X[17, 2] = np.nan  # skipped, and the row flagged
    X[40, 0] = -np.inf
    bad = np.empty(len(X), dtype=bool)
    lo, hi = kernels.scan_columns(X, bad)
    finite = np.where(np.isfinite(X), X, np.nan)
    np.testing.assert_array_equal(lo, np.nanmin(finite, axis=0))
    np.testing.assert_array_equal(hi, np.nanmax(finite, axis=0))
    np.testing.assert_array_equal(np.flatnonzero(bad), [17, 40])

    E = rng.normal(size=(500, 3))
    y = rng.integers(-1, 3, size=500)
    w = rng.uniform(0, 2, size=500)
    w[::7] = 0.0
    out = np.array([0.0, 0.0, np.inf, -np.inf])
    kernels.chunk_pair_stats(E[:200], y[:200], w[:200], out)
    kernels.chunk_pair_stats(E[200:], y[200:], w[200:], out)
    full = np.column_stack([E, np.zeros(500)])
    a = full[np.arange(500), np.where(y < 0, 3, y)][:, None] - full
    a, wp = a[w > 0], w[w > 0][:, None]
    np.testing.assert_allclose(out[:2], [np.sum(wp * a.clip(0)), np.sum(wp * (-a).clip(0))])
    assert out[2] == a.min() and out[3] == a.max()


def test_a_clean_design_is_not_copied_and_stays_writable(large):
    X, y = large
    X = X.copy()
    model = ml.MultinomialLogit(y, X)
    assert np.shares_memory(model.exog, X)
    assert X.flags.writeable and not model.exog.flags.writeable
    # Rows dropped for missing values need a copy, and only then.
    X2 = X.copy()
    X2[3, 1] = np.nan
    dropped = ml.MultinomialLogit(y, X2, missing="drop")
    assert not np.shares_memory(dropped.exog, X2) and dropped.n_dropped == 1
    assert len(dropped.exog) == len(X) - 1


def test_overflowing_row_sums_are_not_mistaken_for_missing_values(rng):
    X, y = simulate(rng, n=300, p=3, K=3)
    X = np.column_stack([X, np.full(len(X), 1e308), np.full(len(X), 1e308)])
    X[:, 4] *= rng.uniform(0.5, 1.0, size=len(X))
    model = ml.MultinomialLogit(y, X)
    assert model.n_dropped == 0 and len(model.exog) == 300


def test_threads_split_the_rows_and_agree_with_one_thread(rng):
    X, y = simulate(rng, n=40_000, p=5, K=4)
    model = ml.MultinomialLogit(y, X)
    w = rng.uniform(0.5, 2.0, size=len(X))
    beta = rng.normal(scale=0.3, size=(model.J, model.k_exog))

    def make(t):
        return InMemoryBackend(X, model.endog, w, model.J, 1000, threads=t)

    one = make(1).derivatives(beta)
    for t in (2, 3):
        be = make(t)
        assert len(be._runs) == t
        assert be._runs[0].start == 0 and be._runs[-1].stop == len(X)
        d = be.derivatives(beta)
        # Only the order of the sums differs.
        assert d.llf == pytest.approx(one.llf, rel=1e-13)
        np.testing.assert_allclose(d.score, one.score, rtol=1e-10, atol=1e-9)
        np.testing.assert_allclose(d.info, one.info, rtol=1e-12)
        np.testing.assert_array_equal(d.info, d.info.T)
        # Fixed runs summed in order: the same bits every time.
        again = be.derivatives(beta)
        assert again.llf == d.llf
        np.testing.assert_array_equal(again.info, d.info)
    # Too few chunks for a second thread: one run.
    assert len(InMemoryBackend(X[:3000], model.endog[:3000], w[:3000], 3, 1000, 2)._runs) == 1


def test_blas_threads_are_restored_after_a_threaded_pass(rng):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    X, y = simulate(rng, n=40_000, p=5, K=4)
    model = ml.MultinomialLogit(y, X)
    before = [i["num_threads"] for i in threadpoolctl.threadpool_info()]
    be = InMemoryBackend(X, model.endog, np.ones(len(X)), model.J, 1000, threads=2)
    be.derivatives(model.start_params())
    assert [i["num_threads"] for i in threadpoolctl.threadpool_info()] == before


def test_thread_count_from_the_environment(monkeypatch):
    monkeypatch.setenv("MULTILOGIT_NUM_THREADS", "3")
    assert threads.default_threads() == 3
    monkeypatch.setenv("MULTILOGIT_NUM_THREADS", "many")
    with pytest.raises(ValueError, match="MULTILOGIT_NUM_THREADS must be a positive integer"):
        threads.default_threads()
    monkeypatch.delenv("MULTILOGIT_NUM_THREADS")
    assert threads.default_threads() >= 1


def test_single_runs_and_small_factors_use_one_blas_thread(monkeypatch):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from multilogit.solve import directions

    def blas_threads():
        info = threadpoolctl.threadpool_info()
        return {i["num_threads"] for i in info if i["user_api"] == "blas"}

    before = blas_threads()
    # A single run of rows (a subsample, or small data) and a q x q Cholesky factor are too
    # small to split over cores: BLAS runs them on one thread, and is restored afterwards.
    assert threads.map_runs(lambda k: blas_threads(), 1) == [{1}]
    seen = []
    original = directions.linalg.cho_factor

    def spy(*args, **kwargs):
        seen.append(blas_threads())
        return original(*args, **kwargs)

    monkeypatch.setattr(directions.linalg, "cho_factor", spy)
    assert directions.cholesky(np.eye(3) * 2.0) is not None
    assert seen == [{1}] and blas_threads() == before
