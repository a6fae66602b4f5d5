"""The solver's parts: direction strategies, the objective with a penalty, the ridge penalty.

The two strategies must reach the same maximum as each other and as statsmodels; a ridge fit
must reach the optimum an independent optimiser finds for a penalised likelihood written here
in plain NumPy; the penalty's derivatives must match finite differences; a strategy passed by
the caller must be the one used.
"""

import warnings

import numpy as np
import pytest
from scipy import optimize
from scipy.special import logsumexp

import multilogit as ml
from multilogit.engine.backend import Derivatives
from multilogit.engine.memory import InMemoryBackend
from multilogit.exceptions import ConvergenceWarning, FitError
from multilogit.solve.directions import (
    DirectionStrategy,
    ExactCholesky,
    Proposal,
    SampledThenExact,
)
from multilogit.solve.newton import NewtonOptions, NewtonSolver, default_direction, newton
from multilogit.solve.objective import Objective, Penalty, RidgePenalty
from tests.conftest import simulate


@pytest.fixture(scope="module")
def hsb_model():
    return ml.mnlogit("prog ~ ses + write", ml.datasets.load("hsbdemo"), ref="academic")


def _backend(model):
    return InMemoryBackend(model.exog, model.endog, np.ones(len(model.exog)), model.J)


class _HalfSample:
    """A backend whose approximate information is that of every other row, doubled: lets the
    sampled strategy run on data too small for the engine's own subsample."""

    def __init__(self, model):
        self.inner = _backend(model)
        self.n = len(model.exog)
        rows = np.arange(0, self.n, 2)
        self.sample = InMemoryBackend(
            model.exog[rows], model.endog[rows], np.ones(len(rows)), model.J
        )
        self.sample_rows = len(rows)

    def derivatives(self, beta, hessian=True):
        return self.inner.derivatives(beta, hessian)

    def approx_information(self, beta):
        return self.sample.derivatives(beta, hessian=True).info * (self.n / self.sample_rows)


def _solve(backend, model, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        return newton(backend, model.start_params(), NewtonOptions(tol=1e-10), **kw)


def _loglike(beta, X, y):
    """The reference-coded multinomial log-likelihood, independently of the package (``y``:
    the equation of each row, -1 for the reference outcome)."""
    y = y + 1
    eta = np.column_stack([np.zeros(len(X)), X @ beta.T])
    return float(np.sum(eta[np.arange(len(X)), y] - logsumexp(eta, axis=1)))


def _score(beta, X, y):
    y = y + 1
    eta = np.column_stack([np.zeros(len(X)), X @ beta.T])
    P = np.exp(eta - logsumexp(eta, axis=1, keepdims=True))
    Y = (y[:, None] == np.arange(eta.shape[1])).astype(float)
    return (Y - P)[:, 1:].T @ X


# -- the two strategies ---------------------------------------------------------------------------


def test_both_strategies_reach_the_statsmodels_mle(hsb_model):
    sm = pytest.importorskip("statsmodels.api")
    backend = _HalfSample(hsb_model)
    sampled = _solve(backend, hsb_model, direction=SampledThenExact())
    exact = _solve(backend, hsb_model, direction=ExactCholesky())
    # The sampled strategy did sample, then finished on the exact information.
    info_rows = sampled.log["info_rows"].to_numpy()
    k = int(np.count_nonzero(info_rows == backend.sample_rows))
    assert k >= 2 and (info_rows[:k] == backend.sample_rows).all()
    assert (info_rows[k:] == backend.n).all() and len(info_rows) > k
    assert (exact.log["info_rows"] == backend.n).all()
    # Both stop within tol = 1e-10 of the MLE: they agree far below any printed digit.
    np.testing.assert_allclose(sampled.beta, exact.beta, rtol=1e-10, atol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = sm.MNLogit(hsb_model.level_codes, hsb_model.exog).fit(
            method="newton", disp=0, maxiter=100
        )
    # statsmodels stops on a change in the parameters of 1e-8: its estimates carry that error.
    np.testing.assert_allclose(exact.beta, np.asarray(ref.params).T, rtol=1e-7)
    assert exact.llf == pytest.approx(ref.llf, rel=1e-12)
    # The reported information is exact, at the estimates (or, settled, within 1e-9 of them).
    info = _backend(hsb_model).derivatives(sampled.beta).info
    np.testing.assert_allclose(sampled.info, info, rtol=1e-9)


@pytest.fixture(scope="module")
def large():
    X, y = simulate(np.random.default_rng(11), n=6000, p=4, K=4)
    return ml.MultinomialLogit(y, X)


def test_options_pick_the_strategy_an_explicit_one_gives_the_same_bits(large):
    be = _backend(large)
    b0 = large.start_params()
    assert isinstance(default_direction(Objective(be), "auto"), SampledThenExact)
    assert isinstance(default_direction(Objective(be), "exact"), ExactCholesky)
    assert isinstance(default_direction(Objective(object()), "auto"), ExactCholesky)
    assert isinstance(ExactCholesky(), DirectionStrategy)
    assert isinstance(SampledThenExact(), DirectionStrategy)
    for hessian, strategy in (("auto", SampledThenExact), ("exact", ExactCholesky)):
        by_option = newton(be, b0, NewtonOptions(hessian=hessian))
        explicit = newton(be, b0, NewtonOptions(hessian="auto"), direction=strategy())
        np.testing.assert_array_equal(by_option.beta, explicit.beta)
        cols = ["iteration", "llf", "step", "decrement", "info_rows"]
        assert by_option.log[cols].equals(explicit.log[cols])
    assert explicit.log["info_rows"].eq(len(large.exog)).all()


class _Recording:
    """A strategy of the caller's: the exact one, noting each call."""

    def __init__(self):
        self.inner, self.calls = ExactCholesky(), []
        self.needs_information = True

    @property
    def info_rows(self):
        return self.inner.info_rows

    def start(self, objective, beta):
        self.calls.append("start")
        self.inner.start(objective, beta)

    def information(self, state):
        self.calls.append(("information", state.iteration))
        return self.inner.information(state)

    def direction(self, state) -> Proposal:
        self.calls.append(("direction", state.iteration))
        return self.inner.direction(state)

    def accepted(self, state, proposal, small):
        self.calls.append(("accepted", state.iteration, small))

    def rejected(self, state, proposal, small):
        self.calls.append(("rejected", state.iteration))
        return False


def test_a_strategy_passed_by_the_caller_is_used(hsb_model):
    mine = _Recording()
    assert isinstance(mine, DirectionStrategy)
    backend = _HalfSample(hsb_model)
    sol = newton(backend, hsb_model.start_params(), direction=mine)
    ref = newton(backend, hsb_model.start_params(), NewtonOptions(hessian="exact"))
    np.testing.assert_array_equal(sol.beta, ref.beta)
    # The option "auto" would have sampled; the caller's strategy did not.
    assert (sol.log["info_rows"] == backend.n).all()
    n = sol.n_iter
    assert mine.calls[0] == "start"
    assert [c[1] for c in mine.calls if c[0] == "direction"] == list(range(1, n + 1))
    # Every step was accepted, only the last one below the tolerance.
    assert [c[2] for c in mine.calls if c[0] == "accepted"] == [False] * (n - 1) + [True]
    # A strategy object starts afresh on every solve.
    again = newton(backend, hsb_model.start_params(), direction=mine)
    np.testing.assert_array_equal(again.beta, sol.beta)
    assert mine.calls.count("start") == 2


def test_an_indefinite_information_fails_clearly(hsb_model):
    class Negated:
        def __init__(self, inner):
            self.inner = inner

        def derivatives(self, beta, hessian=True):
            d = self.inner.derivatives(beta, hessian)
            return Derivatives(d.llf, d.score, None if d.info is None else -d.info)

    with pytest.raises(FitError, match="not positive definite at iteration 0"):
        newton(Negated(_backend(hsb_model)), hsb_model.start_params())


def test_convergence_warning_points_at_the_caller(hsb_model):
    solver = NewtonSolver(
        Objective(_backend(hsb_model)), ExactCholesky(), NewtonOptions(maxiter=1)
    )
    with pytest.warns(ConvergenceWarning, match="no convergence in 1 iterations") as rec:
        solver.solve(hsb_model.start_params())
    assert rec[0].filename == __file__
    with pytest.warns(ConvergenceWarning) as rec:
        newton(_backend(hsb_model), hsb_model.start_params(), NewtonOptions(maxiter=1))
    assert rec[0].filename == __file__
    # Through the model, the warning names the user's call of fit().
    with pytest.warns(ConvergenceWarning) as rec:
        hsb_model.fit(maxiter=1)
    assert rec[0].filename == __file__


# -- the ridge penalty ----------------------------------------------------------------------------


def _mask(model):
    """Penalise the slopes, not the intercepts."""
    return np.array([name != "Intercept" for name in model.exog_names], dtype=float)


def _ridge_reference(model, alpha):
    """The ridge optimum by BFGS on the penalised negative log-likelihood in plain NumPy."""
    X, y, J, p = model.exog, model.endog, model.J, model.exog.shape[1]
    m2 = _mask(model) ** 2

    def f_and_grad(b):
        beta = b.reshape(J, p)
        f = -_loglike(beta, X, y) + 0.5 * alpha * np.sum(m2 * beta**2)
        return f, (-_score(beta, X, y) + alpha * m2 * beta).ravel()

    # ``write`` (30 to 67) makes the problem too ill-conditioned for BFGS to get far below a
    # gradient of 1e-6: optimise over coefficients of the standardised column instead,
    # ``beta = c T'`` (only the intercept absorbs the centring, and it is unpenalised).
    w = X[:, 3]
    T = np.eye(p)
    T[3, 3], T[0, 3] = 1 / w.std(), -w.mean() / w.std()

    def standardised(c):
        f, g = f_and_grad((c.reshape(J, p) @ T.T).ravel())
        return f, (g.reshape(J, p) @ T).ravel()

    opt = optimize.minimize(
        standardised, np.zeros(J * p), jac=True, method="BFGS", options={"gtol": 1e-10}
    )
    # BFGS ends on lost precision in its line search, with a gradient far below 1e-6.
    assert np.max(np.abs(standardised(opt.x)[1])) < 1e-7
    beta = opt.x.reshape(J, p) @ T.T
    return beta, -f_and_grad(beta.ravel())[0]


@pytest.mark.parametrize("alpha", [0.5, 20.0])
def test_ridge_fit_matches_an_independent_optimum(hsb_model, alpha):
    penalty = RidgePenalty(alpha, mask=_mask(hsb_model))
    sol = _solve(_backend(hsb_model), hsb_model, penalty=penalty)
    ref, ref_obj = _ridge_reference(hsb_model, alpha)
    # BFGS's gradient of 1e-8 leaves the coefficients within about 1e-9 of the optimum.
    np.testing.assert_allclose(sol.beta, ref, rtol=1e-7, atol=1e-9)
    assert sol.llf == pytest.approx(ref_obj, rel=1e-12)
    # Stationarity, checked with the NumPy score: the log-likelihood's gradient is the
    # penalty's, which is zero for the intercepts.
    g = _score(sol.beta, hsb_model.exog, hsb_model.endog)
    np.testing.assert_allclose(g, alpha * _mask(hsb_model) ** 2 * sol.beta, atol=1e-8)
    # The penalty shrinks the slopes, not the intercepts' role: the fit is not the MLE.
    mle = _solve(_backend(hsb_model), hsb_model)
    assert np.sum(sol.beta[:, 1:] ** 2) < np.sum(mle.beta[:, 1:] ** 2)


def test_ridge_fit_records_both_parts_and_returns_penalised_derivatives(hsb_model):
    alpha = 5.0
    penalty = RidgePenalty(alpha, mask=_mask(hsb_model))
    sol = _solve(_backend(hsb_model), hsb_model, penalty=penalty)
    log = sol.log
    assert list(log.columns[:4]) == ["iteration", "llf", "loglike", "penalty"]
    np.testing.assert_array_equal(log["llf"], log["loglike"] - log["penalty"])
    llf = log["llf"].to_numpy()
    assert np.all(np.diff(llf) >= -1e-12 * np.abs(llf[1:]))
    loglike = _loglike(sol.beta, hsb_model.exog, hsb_model.endog)
    assert sol.penalty == pytest.approx(penalty.value(sol.beta), rel=1e-15)
    assert sol.llf + sol.penalty == pytest.approx(loglike, rel=1e-12)
    plain = _backend(hsb_model).derivatives(sol.beta)
    np.testing.assert_allclose(sol.info, plain.info + penalty.hessian(sol.beta), rtol=1e-14)
    np.testing.assert_allclose(sol.score, plain.score - penalty.gradient(sol.beta), atol=1e-12)
    # Without a penalty the log keeps its columns.
    assert "loglike" not in _solve(_backend(hsb_model), hsb_model).log


def test_ridge_fit_is_the_same_with_either_strategy(hsb_model):
    penalty = RidgePenalty(5.0, mask=_mask(hsb_model))
    backend = _HalfSample(hsb_model)
    sampled = _solve(backend, hsb_model, penalty=penalty, direction=SampledThenExact())
    exact = _solve(backend, hsb_model, penalty=penalty, direction=ExactCholesky())
    info_rows = sampled.log["info_rows"].to_numpy()
    assert info_rows[0] == backend.sample_rows and info_rows[-1] == backend.n
    np.testing.assert_allclose(sampled.beta, exact.beta, rtol=1e-10, atol=1e-12)
    # The sampled matrix carries the penalty too, or the phase would converge to a wrong rate.
    objective = Objective(backend, penalty)
    b = exact.beta
    np.testing.assert_array_equal(
        objective.approx_information(b), backend.approx_information(b) + penalty.hessian(b)
    )


def test_binary_ridge_equals_scikit_learns_l2_logistic_regression(hsb_model):
    """With two outcomes scikit-learn minimises sum(loss) + ||w||^2 / (2 C) with the intercept
    unpenalised: the ridge of alpha = 1 / C with the intercept masked."""
    linear_model = pytest.importorskip("sklearn.linear_model")
    keep = hsb_model.endog < 1  # academic (the reference) and general
    X, y = hsb_model.exog[keep], hsb_model.endog[keep]
    backend = InMemoryBackend(X, y, np.ones(len(y)), 1)
    C = 0.05
    penalty = RidgePenalty(1.0 / C, mask=_mask(hsb_model))
    sol = newton(backend, np.zeros((1, X.shape[1])), NewtonOptions(tol=1e-10), penalty=penalty)
    assert sol.converged
    clf = linear_model.LogisticRegression(C=C, solver="newton-cholesky", tol=1e-12, max_iter=200)
    clf.fit(X[:, 1:], y == 0)
    mine = 1.0 / (1.0 + np.exp(-(X @ sol.beta[0])))
    # Both solvers stop within 1e-10 or better of the same optimum.
    np.testing.assert_allclose(mine, clf.predict_proba(X[:, 1:])[:, 1], rtol=1e-8)
    np.testing.assert_allclose(sol.beta[0, 1:], clf.coef_[0], rtol=1e-7)


# -- the penalty's derivatives --------------------------------------------------------------------


@pytest.mark.parametrize(
    "mask", [None, np.array([0.0, 1.0, 1.0, 1.0]), np.array([[0.0, 1, 2, 0.5], [1, 1, 0, 3]])]
)
def test_ridge_derivatives_match_finite_differences(rng, mask):
    penalty = RidgePenalty(1.7, mask=mask)
    assert isinstance(penalty, Penalty)
    beta = rng.normal(size=(2, 4))
    h = 1e-6
    eye = np.eye(beta.size)

    def shifted(f, e, sign):
        return f(beta + sign * h * e.reshape(beta.shape))

    fd_grad = np.array(
        [(shifted(penalty.value, e, 1) - shifted(penalty.value, e, -1)) / (2 * h) for e in eye]
    )
    # A quadratic: central differences are exact up to rounding of the values (about 1e-16 / h).
    np.testing.assert_allclose(penalty.gradient(beta).ravel(), fd_grad, atol=1e-8)
    fd_hess = np.column_stack(
        [
            (shifted(penalty.gradient, e, 1) - shifted(penalty.gradient, e, -1)).ravel() / (2 * h)
            for e in eye
        ]
    )
    np.testing.assert_allclose(penalty.hessian(beta), fd_hess, atol=1e-8)
    expected = 0.5 * 1.7 * np.sum((beta if mask is None else mask * beta) ** 2)
    assert penalty.value(beta) == pytest.approx(expected, rel=1e-14)
    if mask is not None and mask.ndim == 1:
        # The unpenalised intercepts have no gradient and no curvature from the penalty.
        assert np.all(penalty.gradient(beta)[:, 0] == 0)
        assert np.all(np.diag(penalty.hessian(beta)).reshape(beta.shape)[:, 0] == 0)


def test_objective_adds_the_penalty_to_every_derivative(hsb_model, rng):
    backend = _backend(hsb_model)
    penalty = RidgePenalty(3.0, mask=_mask(hsb_model))
    beta = hsb_model.start_params() + 0.01 * rng.normal(size=(2, 4))
    plain, pen = Objective(backend).evaluate(beta), Objective(backend, penalty).evaluate(beta)
    assert plain.penalty == 0.0 and plain.loglike == plain.value
    assert pen.loglike == plain.value
    assert pen.value == plain.value - penalty.value(beta)
    np.testing.assert_array_equal(pen.score, plain.score - penalty.gradient(beta))
    np.testing.assert_array_equal(pen.info, plain.info + penalty.hessian(beta))
    assert Objective(backend, penalty).evaluate(beta, hessian=False).info is None
    # Without a subsample (too few rows) there is no approximation, penalised or not.
    assert Objective(backend, penalty).approx_information(beta) is None
    assert not Objective(object(), penalty).can_approximate


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(alpha=-1.0), "alpha must be finite and nonnegative"),
        (dict(alpha=np.nan), "alpha must be finite and nonnegative"),
        (dict(alpha=1.0, mask=[1.0, -1.0, 1.0, 1.0]), "mask must be finite and nonnegative"),
        (dict(alpha=1.0, mask=[1.0, np.inf, 1.0, 1.0]), "mask must be finite and nonnegative"),
    ],
)
def test_ridge_arguments_are_checked(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RidgePenalty(**kwargs)


def test_ridge_mask_must_fit_the_coefficients():
    penalty = RidgePenalty(1.0, mask=np.ones(3))
    with pytest.raises(ValueError, match=r"mask of shape \(3,\) does not fit .* \(2, 4\)"):
        penalty.value(np.zeros((2, 4)))
