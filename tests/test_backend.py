"""Every operation of the in-memory backend against plain NumPy (tests/kernels_numpy.py and
brute force), for several chunk sizes and thread counts: a chunking or ordering slip in any
reduction shows up here."""

import numpy as np
import pytest

from multilogit.engine.backend import Backend, Chunk
from multilogit.engine.memory import InMemoryBackend
from tests import kernels_numpy as twin

N, P, J = 1500, 4, 3


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    X = np.column_stack([np.ones(N), rng.normal(size=(N, P - 1)) * [1.0, 3.0, 0.5]])
    y = rng.integers(-1, J, N)
    w = rng.random(N) * 2
    w[::11] = 0.0  # rows without weight take no part in rank, separation and weight sums
    s = rng.random(N) + 0.5
    beta = rng.normal(size=(J, P)) * 0.3
    return X, y, w, s, beta


@pytest.fixture(params=[(None, 1), (97, 1), (97, 3), (1500, 2)], ids=lambda c: f"{c}")
def backend(request, data):
    X, y, w, s, _ = data
    rows, threads = request.param
    return InMemoryBackend(X, y, w, J, chunk_rows=rows, threads=threads, sampling=s)


def test_is_a_backend(backend):
    assert isinstance(backend, Backend)


def test_hessian_vector_product(backend, data):
    X, y, w, _, beta = data
    v = np.random.default_rng(1).normal(size=J * P)
    expected = twin.information(X, y, w, beta) @ v
    np.testing.assert_allclose(backend.hessian_vector(beta, v), expected, rtol=1e-11, atol=1e-9)


def test_score_outer_is_the_weighted_meat(backend, data):
    X, y, w, s, beta = data
    S = twin.row_scores(X, y, beta)
    expected = S.T @ (S * (w * s)[:, None])
    np.testing.assert_allclose(backend.score_outer(beta), expected, rtol=1e-11, atol=1e-9)


def test_group_scores(backend, data):
    X, y, w, _, beta = data
    codes = np.arange(N) % 13
    codes[codes == 5] = 4  # an empty group (5) keeps a zero row
    S = twin.row_scores(X, y, beta) * w[:, None]
    expected = np.zeros((13, J * P))
    np.add.at(expected, codes, S)
    sums, weight = backend.group_scores(beta, codes, 13)
    np.testing.assert_allclose(sums, expected, rtol=1e-11, atol=1e-10)
    np.testing.assert_allclose(weight, np.bincount(codes, weights=w, minlength=13))
    assert weight[5] == 0.0
    with pytest.raises(ValueError, match="one entry per row"):
        backend.group_scores(beta, codes[:-1], 13)


def test_column_range_gram_and_r_factor(backend, data):
    X, _, w, _, _ = data
    assert backend.positive_rows() == np.count_nonzero(w > 0)
    lo, hi = backend.column_range()
    np.testing.assert_array_equal(lo, X.min(axis=0))
    np.testing.assert_array_equal(hi, X.max(axis=0))
    scale = np.array([1.0, 2.0, 4.0, 0.5])
    Xs = X[w > 0] / scale
    np.testing.assert_allclose(backend.gram(scale), Xs.T @ Xs, rtol=1e-12)
    R = backend.r_factor(scale)
    assert R.shape == (P, P) and np.allclose(np.tril(R, -1), 0.0)
    np.testing.assert_allclose(R.T @ R, Xs.T @ Xs, rtol=1e-10)


def test_pair_stats(backend, data):
    X, y, w, _, _ = data
    D = np.random.default_rng(2).normal(size=(J, P))
    E = np.column_stack([X @ D.T, np.zeros(N)])
    own = E[np.arange(N), np.where(y < 0, J, y)]
    a = (own[:, None] - E)[w > 0]
    ww = w[w > 0][:, None]
    expected = [np.sum(ww * a.clip(min=0)), np.sum(ww * (-a).clip(min=0)), a.min(), a.max()]
    np.testing.assert_allclose(backend.pair_stats(D), expected, rtol=1e-11)


def test_distinct_rows():
    X = np.array([[1.0, 2.0], [1.0, 2.0], [1.0, 3.0], [1.0, 2.0], [1.0, 5.0]])
    y = np.array([0, 0, 0, -1, 1])
    w = np.array([1.0, 2.0, 3.0, 4.0, 0.0])
    Xu, yu, wu = InMemoryBackend(X, y, w, 2).distinct_rows(np.array([1.0, 2.0]))
    got = sorted(zip(map(tuple, Xu), yu.tolist(), wu.tolist(), strict=True))
    assert got == [((1.0, 1.0), -1, 4.0), ((1.0, 1.0), 0, 3.0), ((1.0, 1.5), 0, 3.0)]


def test_probabilities_and_linear(backend, data):
    X, _, _, _, beta = data
    np.testing.assert_allclose(
        backend.probabilities(beta), twin.probabilities(X, beta), rtol=1e-13
    )
    np.testing.assert_allclose(backend.linear(beta), X @ beta.T, rtol=1e-13, atol=1e-14)


def test_reduce_visits_every_row_once_in_order(backend, data):
    X, y, w, _, _ = data
    chunks = backend.reduce(lambda c: c, chunk_rows=211)
    assert all(isinstance(c, Chunk) for c in chunks)
    assert [c.rows.start for c in chunks] == list(range(0, N, 211))
    np.testing.assert_array_equal(np.vstack([c.X for c in chunks]), X)
    np.testing.assert_array_equal(np.concatenate([c.y for c in chunks]), y)
    np.testing.assert_array_equal(np.concatenate([c.weights for c in chunks]), w)
    assert all(c.frame is None for c in chunks)


def test_reduce_hands_out_the_source_frame(data):
    import pandas as pd

    X, y, w, _, _ = data
    frame = pd.DataFrame({"a": np.arange(N)}, index=np.arange(N) * 2)
    calls = []

    def lazy():
        calls.append(1)
        return frame

    be = InMemoryBackend(X, y, w, J, frame=lazy)
    chunks = be.reduce(lambda c: c.frame, chunk_rows=400)
    assert len(calls) == 1
    pd.testing.assert_frame_equal(pd.concat(chunks), frame)


def test_scaled_backend_is_the_backend_of_the_rescaled_design(data):
    """Every operation of the rescaled wrapper equals the in-memory backend of X / S."""
    from multilogit.engine.scaled import ScaledBackend

    X, y, w, s, beta = data
    S = np.array([1.0, 2.0**-8, 2.0**12, 4.0])
    plain = InMemoryBackend(X / S, y, w, J, chunk_rows=97, sampling=s)
    scaled = ScaledBackend(InMemoryBackend(X, y, w, J, chunk_rows=97, sampling=s), S, J)
    assert isinstance(scaled, Backend)
    b = beta * S  # the same linear predictors
    v = np.random.default_rng(3).normal(size=J * P)
    codes = np.arange(N) % 5

    def close(a, c):
        np.testing.assert_allclose(a, c, rtol=1e-10, atol=1e-10 * np.abs(c).max())

    d0, d1 = plain.derivatives(b), scaled.derivatives(b)
    close(d1.score, d0.score)
    close(d1.info, d0.info)
    close(scaled.hessian_vector(b, v), plain.hessian_vector(b, v))
    close(scaled.score_outer(b), plain.score_outer(b))
    close(scaled.group_scores(b, codes, 5)[0], plain.group_scores(b, codes, 5)[0])
    close(np.array(scaled.column_range()), np.array(plain.column_range()))
    one = np.ones(P)
    close(scaled.gram(one), plain.gram(one))
    close(np.abs(scaled.r_factor(one)), np.abs(plain.r_factor(one)))
    close(scaled.pair_stats(v.reshape(J, P)), plain.pair_stats(v.reshape(J, P)))
    close(scaled.probabilities(b), plain.probabilities(b))
    close(scaled.linear(b), plain.linear(b))
    got = np.vstack(scaled.reduce(lambda c: c.X, 300))
    close(got, X / S)
    assert scaled.positive_rows() == plain.positive_rows()


def test_subsample_size_is_bounded_for_data_larger_than_memory():
    from multilogit.engine.chunked import SAMPLE_MAX_ROWS, subsample_size

    assert subsample_size(1_000_000, 20, 4) == 1_000_000 // 32
    # Out-of-core sizes: the in-memory subsample stops growing with the rows ...
    assert subsample_size(10**8, 20, 4) == subsample_size(10**10, 20, 4) == SAMPLE_MAX_ROWS
    # ... but keeps enough rows per parameter for large models, and none for small data.
    assert subsample_size(10**10, 200, 99) == 64 * 200 * 99
    assert subsample_size(1000, 20, 4) == 0


def test_view_backend_is_the_backend_of_the_selected_rows_and_columns(data):
    """Columns kept, one outcome left out (its rows at weight zero), the others recoded: the
    view's derivatives equal those of an in-memory backend built on exactly those rows."""
    from multilogit.engine.chunked import ArrayBackend
    from multilogit.engine.view import DROP, ViewBackend

    X, y, w, _, _ = data
    cols = np.array([0, 2, 3])
    # old codes 0, 1, 2 and -1 (reference): drop 1, keep 0 -> 0 and 2 -> 1, reference stays
    y_map = np.array([0, DROP, 1, -1])
    view = ViewBackend(ArrayBackend(X, y, w, J, chunk_rows=97, threads=2), cols, y_map, J - 1)
    keep = y != 1
    new_y = y_map[y][keep]
    mem = InMemoryBackend(X[keep][:, cols], new_y, w[keep], J - 1, chunk_rows=97, threads=2)
    beta = np.random.default_rng(9).normal(size=(J - 1, len(cols))) * 0.3
    a, b = view.derivatives(beta), mem.derivatives(beta)
    assert a.llf == pytest.approx(b.llf, rel=1e-12)
    np.testing.assert_allclose(a.score, b.score, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(a.info, b.info, rtol=1e-10, atol=1e-10)
    assert view.positive_rows() == mem.positive_rows()
    np.testing.assert_array_equal(view.column_range()[0], X[:, cols].min(axis=0))


@pytest.mark.parametrize("block", [7, 100, 1 << 14])
def test_gram_leaves_out_rows_without_weight_block_by_block(data, monkeypatch, block):
    # Rows without weight are skipped inside each block, not by copying the design: values no
    # weighted row holds (1e200 would overflow a square) must not reach the product.
    from multilogit.engine import memory
    from multilogit.engine.threads import split_runs

    X, y, w, _, _ = data
    monkeypatch.setattr(memory, "GRAM_BLOCK_ROWS", block)
    # Runs of a few hundred rows, so that runs with and without weightless rows both occur.
    monkeypatch.setattr(memory, "row_runs", lambda n, t: split_runs(n, t))
    Xz = X.copy()
    Xz[w == 0] = 1e200
    scale = np.array([1.0, 2.0, 3.0, 0.5])
    expected = (X[w > 0] / scale).T @ (X[w > 0] / scale)
    for threads in (1, 3, 200):
        be = InMemoryBackend(Xz, y, w, J, threads=threads)
        np.testing.assert_allclose(be.gram(scale), expected, rtol=1e-12)
    unweighted = InMemoryBackend(X, y, np.ones(N), J)
    np.testing.assert_allclose(unweighted.gram(scale), (X / scale).T @ (X / scale), rtol=1e-12)
