"""Newton-CG for many outcomes: Hessian-vector products and diagonal information blocks against
finite differences and plain NumPy, the conjugate-gradient solver against a direct solve, and
Newton-CG fits against the dense Newton fit and scikit-learn."""

import numpy as np
import pytest

import multilogit as ml
from multilogit.engine.chunked import ArrayBackend
from multilogit.engine.memory import InMemoryBackend
from multilogit.engine.scaled import ScaledBackend
from multilogit.engine.spill import SpillWriter
from multilogit.exceptions import FitError
from multilogit.fit.options import FitOptions
from multilogit.solve.conjugate import (
    AUTO_CG_PARAMS,
    BlockJacobi,
    ConjugateGradients,
    NewtonCG,
    dense_information_bytes,
    inverse_columns,
)
from multilogit.solve.newton import NewtonOptions, newton
from multilogit.solve.objective import Objective, RidgePenalty
from tests import kernels_numpy as twin
from tests.conftest import simulate

N, P, J = 2000, 4, 6


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(5)
    X = np.column_stack([np.ones(N), rng.normal(size=(N, P - 1)) * [1.0, 2.0, 0.5]])
    y = rng.integers(-1, J, N)
    w = rng.random(N) * 2
    w[::17] = 0.0
    beta = rng.normal(size=(J, P)) * 0.4
    return X, y, w, beta


@pytest.fixture(params=[(None, 1), (97, 2), (N, 3)], ids=str)
def backend(request, data):
    X, y, w, _ = data
    rows, threads = request.param
    return InMemoryBackend(X, y, w, J, chunk_rows=rows, threads=threads)


def _score(backend, beta):
    return backend.derivatives(beta, hessian=False).score.ravel()


def test_hessian_vector_products_are_finite_differences_of_the_score(backend, data):
    X, y, w, beta = data
    v = np.random.default_rng(2).normal(size=J * P)
    h = 1e-5
    # Central differences of the score along v: the information is minus its derivative;
    # truncation error O(h^2) ~ 1e-10 relative, rounding ~ eps * |score| / h.
    fd = -(
        _score(backend, beta + h * v.reshape(J, P)) - _score(backend, beta - h * v.reshape(J, P))
    )
    fd /= 2 * h
    scale = np.abs(fd).max()
    for product in (
        backend.hessian_vector(beta, v),
        backend.hessian_operator(beta)(v),  # probabilities recomputed per product
        backend.hessian_operator(beta, max_bytes=1e9)(v),  # probabilities kept
    ):
        assert np.abs(product - fd).max() <= 1e-7 * scale


def test_hessian_vector_products_equal_the_dense_information_times_the_vector(backend, data):
    X, y, w, beta = data
    info = twin.information(X, y, w, beta)
    op = backend.hessian_operator(beta, max_bytes=1e9)
    for seed in range(3):
        v = np.random.default_rng(seed).normal(size=J * P)
        np.testing.assert_allclose(op(v), info @ v, rtol=1e-11, atol=1e-9)
        np.testing.assert_allclose(
            backend.hessian_vector(beta, v), info @ v, rtol=1e-11, atol=1e-9
        )


def _blocks_of(info):
    """The diagonal blocks of a dense information and the sum of all its blocks."""
    four = info.reshape(J, P, J, P)
    return np.stack([four[j, :, j, :] for j in range(J)] + [four.sum(axis=(0, 2))])


def test_one_pass_gives_the_score_and_the_products(backend, data):
    X, y, w, beta = data
    info = twin.information(X, y, w, beta)
    v = np.random.default_rng(12).normal(size=J * P)
    for max_bytes in (0, 1e9):  # probabilities recomputed, or kept from the pass
        d, op = backend.derivatives_and_operator(beta, max_bytes)
        plain = backend.derivatives(beta, hessian=False)
        assert d.llf == plain.llf and np.array_equal(d.score, plain.score) and d.info is None
        np.testing.assert_allclose(op(v), info @ v, rtol=1e-11, atol=1e-9)
        np.testing.assert_allclose(op(2 * v), 2 * (info @ v), rtol=1e-11, atol=1e-9)


def test_block_information_is_the_diagonal_and_the_sum_of_the_information(backend, data):
    X, y, w, beta = data
    blocks = backend.block_information(beta)
    assert blocks.shape == (J + 1, P, P)
    np.testing.assert_allclose(
        blocks, _blocks_of(twin.information(X, y, w, beta)), rtol=1e-10, atol=1e-9
    )


def test_the_sum_of_all_blocks_is_the_reference_outcomes_own_information(data):
    X, y, w, beta = data
    # Moving every equation by a is moving the reference by -a: the curvature along it is that
    # of the binary logit of the reference against the rest.
    p0 = twin.probabilities(X, beta)[:, J]
    expected = (X * (w * p0 * (1 - p0))[:, None]).T @ X
    blocks = InMemoryBackend(X, y, w, J, chunk_rows=211).block_information(beta)
    np.testing.assert_allclose(blocks[J], expected, rtol=1e-10)


@pytest.mark.parametrize("chunk_rows", [2, 3, 7])  # blocks of 3, 2 and 1 chunks
def test_the_one_large_information_read_in_blocks_is_the_information(data, chunk_rows):
    X, y, w, beta = data
    be = InMemoryBackend(X, y, w, J, chunk_rows=chunk_rows, threads=2)
    d, plain = be.information_derivatives(beta), be.derivatives(beta, hessian=True)
    np.testing.assert_allclose(d.info, twin.information(X, y, w, beta), rtol=1e-11, atol=1e-9)
    np.testing.assert_allclose(d.score, plain.score, rtol=1e-12, atol=1e-11)
    assert d.llf == pytest.approx(plain.llf, rel=1e-14)
    scale = np.array([1.0, 2.0**12, 2.0**-11, 1.0])
    scaled = ScaledBackend(InMemoryBackend(X * scale, y, w, J, chunk_rows=chunk_rows), scale, J)
    np.testing.assert_allclose(
        scaled.information_derivatives(beta).info, d.info, rtol=1e-10, atol=1e-8
    )


def test_scaled_backend_products_are_those_of_the_rescaled_design(data):
    X, y, w, beta = data
    scale = np.array([1.0, 2.0**12, 2.0**-11, 1.0])
    inner = InMemoryBackend(X * scale, y, w, J, chunk_rows=300)  # columns on wild scales
    scaled = ScaledBackend(inner, scale, J)
    # In the scaled coordinates the design is the original X again.
    info = twin.information(X, y, w, beta)
    v = np.random.default_rng(3).normal(size=J * P)
    np.testing.assert_allclose(scaled.hessian_vector(beta, v), info @ v, rtol=1e-10, atol=1e-8)
    np.testing.assert_allclose(scaled.hessian_operator(beta)(v), info @ v, rtol=1e-10, atol=1e-8)
    d, op = scaled.derivatives_and_operator(beta, 1e9)
    np.testing.assert_allclose(op(v), info @ v, rtol=1e-10, atol=1e-8)
    np.testing.assert_allclose(d.score, twin.score(X, y, w, beta), rtol=1e-10, atol=1e-8)
    np.testing.assert_allclose(
        scaled.block_information(beta), _blocks_of(info), rtol=1e-10, atol=1e-8
    )


def test_spill_backend_gives_the_same_products(data, tmp_path):
    X, y, w, beta = data
    writer = SpillWriter(P, tmp_path)
    writer.append(X, y, w)
    with writer.finish(J, chunk_rows=333, threads=2) as spilled:
        memory = ArrayBackend(X, y, w, J, chunk_rows=333, threads=2)
        v = np.random.default_rng(4).normal(size=J * P)
        np.testing.assert_array_equal(
            spilled.hessian_operator(beta)(v), memory.hessian_operator(beta)(v)
        )
        np.testing.assert_array_equal(
            spilled.block_information(beta), memory.block_information(beta)
        )


def test_dask_backend_gives_the_same_blocks(data):
    pytest.importorskip("dask")
    import dask
    import dask.array as da

    from multilogit.engine.dask import DaskBackend

    X, y, w, beta = data
    with dask.config.set(scheduler="threads"):
        be = DaskBackend(
            da.from_array(X, chunks=(700, P)),
            da.from_array(y, chunks=700),
            da.from_array(w, chunks=700),
            J,
        )
        blocks = be.block_information(beta)
        v = np.random.default_rng(6).normal(size=J * P)
        hv = be.hessian_vector(beta, v)
    info = twin.information(X, y, w, beta)
    np.testing.assert_allclose(hv, info @ v, rtol=1e-11, atol=1e-9)
    np.testing.assert_allclose(blocks, _blocks_of(info), rtol=1e-10, atol=1e-9)


def test_newton_cg_fits_rows_on_disk_and_on_dask_like_rows_in_memory(data, tmp_path):
    X, y, w, _ = data
    opts = NewtonOptions(method="newton-cg")
    memory = newton(ArrayBackend(X, y, w, J, chunk_rows=250, threads=2), np.zeros((J, P)), opts)
    writer = SpillWriter(P, tmp_path)
    writer.append(X, y, w)
    with writer.finish(J, chunk_rows=250, threads=2) as spilled:
        on_disk = newton(spilled, np.zeros((J, P)), opts)
    # The same chunks and runs: the same arithmetic, bit for bit.
    np.testing.assert_array_equal(on_disk.beta, memory.beta)
    pytest.importorskip("dask")
    import dask
    import dask.array as da

    from multilogit.engine.dask import DaskBackend

    with dask.config.set(scheduler="threads"):
        be = DaskBackend(
            da.from_array(X, chunks=(600, P)),
            da.from_array(y, chunks=600),
            da.from_array(w, chunks=600),
            J,
        )
        on_dask = newton(be, np.zeros((J, P)), opts)  # a pass over the partitions a product
    assert on_dask.converged
    np.testing.assert_allclose(on_dask.beta, memory.beta, rtol=1e-9, atol=1e-12)


def test_probabilities_and_products_stay_finite_at_extreme_linear_predictors():
    from scipy.special import softmax

    rng = np.random.default_rng(13)
    n, p, Jx = 64, 3, 299
    X = np.column_stack([np.ones(n), rng.normal(size=(n, p - 1))])
    beta = rng.normal(scale=300.0, size=(Jx, p))  # linear predictors of several hundred
    y = rng.integers(-1, Jx, n)
    be = InMemoryBackend(X, y, np.ones(n), Jx, chunk_rows=16)
    eta = np.column_stack([X @ beta.T, np.zeros(n)])  # reference last, as the backend
    expected = softmax(eta, axis=1)
    P = be.probabilities(beta)
    np.testing.assert_allclose(P, expected, rtol=1e-12, atol=1e-300)
    d, op = be.derivatives_and_operator(beta, 1e9)
    v = rng.normal(size=Jx * p)
    blocks = be.block_information(beta)
    assert np.isfinite(d.llf) and np.all(np.isfinite(d.score))
    assert np.all(np.isfinite(op(v))) and np.all(np.isfinite(blocks))


# -- the inner solver ------------------------------------------------------------------------


@pytest.mark.parametrize("coarse", [False, True])
def test_conjugate_gradients_solve_a_block_coupled_system(data, coarse):
    X, y, w, beta = data
    A = twin.information(X, y, w, beta)
    b = np.random.default_rng(8).normal(size=J * P)
    blocks = _blocks_of(A)
    pre = BlockJacobi(blocks[:J], coarse=blocks[J] if coarse else None)
    cg = ConjugateGradients(lambda v: A @ v, b, pre)
    cg.run(1e-3, 200)
    loose = cg.iterations
    assert cg.relative_residual <= 1e-3 and b @ cg.x > 0
    cg.run(1e-12, 200)  # resumes where it stopped
    assert cg.iterations > loose and not cg.breakdown
    np.testing.assert_allclose(cg.x, np.linalg.solve(A, b), rtol=1e-9)


def test_the_coarse_correction_fixes_the_directions_moving_all_equations():
    # Many outcomes and a rare reference: moving all equations together has little curvature,
    # which block Jacobi alone overestimates J-fold; the coarse level restores it.
    X, y = _synthetic(100, n=6000, p=3, seed=6)
    model = ml.MultinomialLogit(y, X)
    be, Jm, p = model.backend, model.J, model.k_exog
    # Not at beta = 0: there every row has the same probabilities, the information is a
    # Kronecker product and block Jacobi alone is exact up to rank p.
    beta = np.random.default_rng(2).normal(scale=0.5, size=(Jm, p))
    blocks = be.block_information(beta)
    b = np.random.default_rng(1).normal(size=Jm * p)

    def iterations(pre):
        return ConjugateGradients(be.hessian_operator(beta, 1e9), b, pre).run(1e-8, 500).iterations

    plain, two_level = (
        iterations(BlockJacobi(blocks[:-1])),
        iterations(BlockJacobi(blocks[:-1], blocks[-1])),
    )
    assert two_level < plain / 2, (plain, two_level)


def test_inverse_columns_are_those_of_the_dense_inverse_at_the_estimates():
    X, y = _synthetic(12, n=3000, p=4, seed=8)
    model = ml.MultinomialLogit(y, X)
    res = model.fit(hessian="exact")
    beta = np.ascontiguousarray(res.params.to_numpy().T)
    # One term (column 2) across all outcomes, and the first outcome's intercept.
    cols = [j * 4 + 2 for j in range(model.J)] + [0]
    got = inverse_columns(Objective(model.backend), beta, cols)
    cov = res.cov_params().to_numpy()
    np.testing.assert_allclose(got, cov[:, cols], rtol=1e-8, atol=1e-10 * np.abs(cov).max())
    np.testing.assert_allclose(
        np.sqrt(got[cols, np.arange(len(cols))]), res.bse.to_numpy().T.ravel()[cols], rtol=1e-9
    )
    with pytest.raises(ValueError, match="flat indices"):
        inverse_columns(Objective(model.backend), beta, [model.J * 4])


def test_block_jacobi_inverts_each_block_and_survives_an_empty_outcome():
    rng = np.random.default_rng(9)
    M = rng.normal(size=(3, 4, 4))
    blocks = M @ M.transpose(0, 2, 1) + np.eye(4)
    blocks[1] = 0.0  # an outcome without rows
    pre = BlockJacobi(blocks)
    r = rng.normal(size=12)
    out = pre(r).reshape(3, 4)
    for j in (0, 2):
        np.testing.assert_allclose(blocks[j] @ out[j], r.reshape(3, 4)[j], rtol=1e-10)
    assert np.all(np.isfinite(out[1]))
    with pytest.raises(ValueError, match="shape"):
        BlockJacobi(np.ones((3, 4)))
    with pytest.raises(ValueError, match="coarse"):
        BlockJacobi(blocks, coarse=np.eye(3))
    # The coarse level adds C^-1 times the sum over the equations.
    C = blocks.sum(axis=0) + np.eye(4)
    both = BlockJacobi(blocks, coarse=C)(r).reshape(3, 4)
    shift = np.linalg.solve(C, r.reshape(3, 4).sum(0))
    for j in (0, 2):
        np.testing.assert_allclose(both[j] - out[j], shift, rtol=1e-8)


# -- fits ------------------------------------------------------------------------------------


def _synthetic(K, n=3000, p=4, seed=0):
    X, labels = simulate(np.random.default_rng(seed), n=n, p=p, K=K, scale=0.5)
    return X, labels


@pytest.mark.parametrize("K", [5, 12, 30])
def test_newton_cg_fit_equals_the_dense_newton_fit(K):
    X, y = _synthetic(K, seed=K)
    model = ml.MultinomialLogit(y, X)
    dense = model.fit(hessian="exact")
    cg = model.fit(method="newton-cg")
    assert dense.converged and cg.converged
    # The dense fit is converged quadratically to rounding; Newton-CG's last step is solved
    # to a relative residual of 1e-10, so the two agree far below 1e-8.
    np.testing.assert_allclose(cg.params, dense.params, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(cg.bse, dense.bse, rtol=1e-8)
    assert cg.llf == pytest.approx(dense.llf, rel=1e-13)
    log = cg.iteration_log
    assert "cg_iterations" in log and "cg_iterations" not in dense.iteration_log
    assert log["cg_iterations"].iloc[0] == 0 and (log["cg_iterations"].iloc[1:] >= 1).all()
    # Each Newton iteration: one pass per product, the line search's, and the
    # preconditioner's when it is refreshed (always in the first).
    extra = log["passes"].diff().iloc[1:] - log["cg_iterations"].iloc[1:]
    assert extra.iloc[0] == 2 and (extra >= 1).all()


def test_newton_cg_with_a_rare_reference_and_columns_on_wild_scales():
    # Columns of size 1e6 and 1e-5 (the fit rescales them by powers of two) and a reference
    # outcome with 15 of 5000 rows: the coarse level's direction is then poorly determined.
    rng = np.random.default_rng(3)
    n, K = 5000, 15
    X = np.column_stack(
        [np.ones(n), rng.normal(size=n) * 1e6, rng.normal(size=n) * 1e-5, rng.integers(0, 2, n)]
    )
    B = rng.normal(size=(4, K)) * np.array([[1.0], [2e-6], [3e5], [1.0]])
    B[0, 0] = -3.0
    y = (X @ B + rng.gumbel(size=(n, K))).argmax(axis=1)
    rare = int(np.argmin(np.bincount(y)))
    assert np.bincount(y)[rare] <= 20
    model = ml.MultinomialLogit(y, X, ref=rare)
    dense, cg = model.fit(hessian="exact"), model.fit(method="newton-cg")
    assert dense.converged and cg.converged
    np.testing.assert_allclose(cg.params, dense.params, rtol=1e-8)
    np.testing.assert_allclose(cg.bse, dense.bse, rtol=1e-8)


def test_newton_cg_reaches_a_score_at_rounding_level():
    X, y = _synthetic(12, n=4000, seed=3)
    res = ml.MultinomialLogit(y, X).fit(method="newton-cg")
    # Rounding in a sum of n row scores of size up to max|x|: a few ulps of n max|x|.
    rounding = 64 * np.finfo(float).eps * len(X) * np.abs(X).max()
    assert np.abs(res._state.score).max() <= rounding


def test_newton_cg_with_a_penalty_matches_the_dense_penalised_fit(data):
    X, y, w, _ = data
    be = InMemoryBackend(X, y, w, J)
    pen = RidgePenalty(3.0, mask=np.r_[0.0, np.ones(P - 1)])
    beta0 = np.zeros((J, P))
    dense = newton(be, beta0, NewtonOptions(hessian="exact"), penalty=pen)
    cg = newton(be, beta0, NewtonOptions(method="newton-cg"), penalty=pen)
    assert dense.converged and cg.converged
    np.testing.assert_allclose(cg.beta, dense.beta, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(cg.info, dense.info, rtol=1e-10)


def test_the_memory_budget_picks_the_direction():
    X, y = _synthetic(5, n=1500, seed=1)
    model = ml.MultinomialLogit(y, X)
    q = model.J * model.k_exog
    need = dense_information_bytes(q)
    # Within the budget: the dense path (no CG column); beyond it, Newton-CG.
    fits = newton(
        model.backend, np.zeros((model.J, model.k_exog)), NewtonOptions(memory_budget=need)
    )
    beyond = newton(
        model.backend, np.zeros((model.J, model.k_exog)), NewtonOptions(memory_budget=need - 1)
    )
    assert "cg_iterations" not in fits.log and "cg_iterations" in beyond.log
    # Beyond the budget the solver returns the estimates without the dense information ...
    assert beyond.info is None and fits.info is not None
    np.testing.assert_allclose(beyond.beta, fits.beta, rtol=1e-8, atol=1e-12)
    # ... and a fit holds its covariance as an operator, refusing what needs all of it
    # (tests/test_many_outcomes_inference.py checks what it computes).
    with pytest.raises(FitError, match="memory_budget"):
        _ = model.fit(memory_budget=need - 1).bse
    res = model.fit(memory_budget=need)
    assert "cg_iterations" not in res.iteration_log
    assert res.fit_options["memory_budget"] == need


def test_many_parameters_take_newton_cg_by_default():
    X, y = _synthetic(31, n=6000, p=10, seed=4)  # 30 x 10 = AUTO_CG_PARAMS parameters
    model = ml.MultinomialLogit(y, X)
    assert model.J * model.k_exog == AUTO_CG_PARAMS
    auto, exact = model.fit(), model.fit(hessian="exact")
    assert "cg_iterations" in auto.iteration_log and "cg_iterations" not in exact.iteration_log
    np.testing.assert_allclose(auto.params, exact.params, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(auto.bse, exact.bse, rtol=1e-8)
    # One parameter fewer: the dense path.
    sub = model.submodel(columns=np.arange(9))
    assert sub.J * sub.k_exog < AUTO_CG_PARAMS
    assert "cg_iterations" not in sub.fit().iteration_log


def test_newton_cg_is_recorded_and_reused_by_refits():
    X, y = _synthetic(4, n=800, p=3, seed=2)
    res = ml.MultinomialLogit(y, X).fit(method="newton-cg")
    assert res.fit_options["method"] == "newton-cg"
    # The likelihood-ratio refits reuse the options (a refit with an unknown option fails).
    table = res.test_combine("c1", "c2", method="lr")
    assert np.isfinite(table.statistic)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"method": "bfgs"}, "newton-cg"),
        ({"memory_budget": 0}, "memory_budget"),
        ({"memory_budget": "lots"}, "memory_budget"),
    ],
)
def test_bad_options_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FitOptions(**kwargs)


def test_solver_refuses_an_unknown_method(data):
    X, y, w, _ = data
    with pytest.raises(ValueError, match="method"):
        newton(InMemoryBackend(X, y, w, J), np.zeros((J, P)), NewtonOptions(method="cg"))


class _ProductsOnly:
    """A backend with the derivatives and Hessian-vector products alone (no diagonal blocks,
    no kept probabilities), computed by the plain-NumPy twin."""

    def __init__(self, X, y, w, J):
        self.X, self.y, self.w, self.J = X, y, w, J
        self.n, self.p = X.shape

    def derivatives(self, beta, hessian=True):
        from multilogit.engine.backend import Derivatives

        X, y, w = self.X, self.y, self.w
        info = twin.information(X, y, w, beta) if hessian else None
        return Derivatives(twin.loglike(X, y, w, beta), twin.score(X, y, w, beta), info)

    def hessian_vector(self, beta, v):
        return twin.information(self.X, self.y, self.w, beta) @ v


def test_newton_cg_needs_only_products_from_a_backend(data):
    X, y, w, _ = data
    minimal = _ProductsOnly(X, y, w, J)
    cg = newton(minimal, np.zeros((J, P)), NewtonOptions(method="newton-cg"))  # unpreconditioned
    dense = newton(InMemoryBackend(X, y, w, J), np.zeros((J, P)), NewtonOptions(hessian="exact"))
    assert cg.converged and "cg_iterations" in cg.log
    np.testing.assert_allclose(cg.beta, dense.beta, rtol=1e-8, atol=1e-12)
    # Without products: a clear error for Newton-CG, the dense path when chosen automatically.
    minimal.hessian_vector = None
    with pytest.raises(ValueError, match="Hessian-vector"):
        newton(minimal, np.zeros((J, P)), NewtonOptions(method="newton-cg"))
    auto = newton(minimal, np.zeros((J, P)), NewtonOptions(memory_budget=1.0))
    assert "cg_iterations" not in auto.log


def test_a_loose_direction_that_fails_is_solved_tightly_once():
    strategy = NewtonCG()
    strategy.start(None, None)
    assert strategy.rejected(None, None, False) is True
    assert strategy._forcing(1.0) == strategy.final_rtol
    assert strategy.rejected(None, None, False) is False


# -- many outcomes against scikit-learn ------------------------------------------------------


@pytest.mark.slow
def test_two_hundred_outcomes_match_scikit_learn():
    sklearn = pytest.importorskip("sklearn.linear_model")
    rng = np.random.default_rng(200)
    n, p, K = 20000, 10, 200
    X = np.column_stack([np.ones(n), rng.normal(size=(n, p - 1))])
    B = rng.normal(scale=0.5 / np.sqrt(p), size=(p, K))
    y = (X @ B + rng.gumbel(size=(n, K))).argmax(axis=1)
    J = K - 1
    be = InMemoryBackend(X, np.where(y == 0, -1, y - 1), np.ones(n), J)
    ours = newton(be, np.zeros((J, p)), NewtonOptions(method="newton-cg"))
    assert ours.converged
    # Rounding level: a few ulps of the largest row-score sum.
    assert np.abs(ours.score).max() <= 64 * np.finfo(float).eps * n * np.abs(X).max()
    lr = sklearn.LogisticRegression(
        C=np.inf, solver="lbfgs", tol=1e-12, max_iter=20000, fit_intercept=False
    ).fit(X, y)
    # scikit-learn fits K coefficient sets, identified only up to a common shift: the
    # contrasts with outcome 0 (our reference) are what both estimate.
    contrasts = lr.coef_[1:] - lr.coef_[0]
    # At tol=1e-12 lbfgs stops when its line search stalls, about 1e-9 relative in the
    # gradient: coefficients within ~1e-6 of the MLE (standard errors here are ~0.1) and
    # probabilities within ~1e-7.
    np.testing.assert_allclose(contrasts, ours.beta, atol=1e-5)
    eta = np.column_stack([np.zeros(n), X @ ours.beta.T])
    P = np.exp(eta - eta.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    assert np.abs(lr.predict_proba(X) - P).max() <= 1e-6
    # And ours is the better optimum: its log-likelihood is at least scikit-learn's.
    llf_sklearn = be.derivatives(contrasts, hessian=False).llf
    assert ours.llf >= llf_sklearn - 1e-9 * abs(ours.llf)
