"""The spill backend against the in-memory one on the same rows: every operation of the backend
protocol, for several chunk sizes and thread counts (a slip in the positioned reads, the run
split or the order of the sums shows up as a difference), and the life cycle of the spill
directory."""

import gc
import os

import numpy as np
import pytest

from multilogit.engine.backend import Backend
from multilogit.engine.chunked import ArrayBackend
from multilogit.engine.memory import InMemoryBackend
from multilogit.engine.spill import SpillBackend, SpillWriter

N, P, J = 3001, 5, 3
RTOL = 1e-12  # same kernels, same order of sums: equal up to the Gram and distinct-row sums


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(11)
    X = np.column_stack([np.ones(N), rng.normal(size=(N, P - 2)), rng.integers(0, 3, N)])
    y = rng.integers(-1, J, N)
    w = rng.random(N) * 2
    w[::13] = 0.0
    s = rng.random(N) + 0.5
    codes = rng.integers(0, 17, N)
    beta = rng.normal(size=(J, P)) * 0.3
    return X, y, w, s, codes, beta


def spill(data, tmp_path, chunk_rows, threads, append_rows=500):
    X, y, w, s, codes, _ = data
    writer = SpillWriter(P, tmp_path, sampling=True, columns=["cid"])
    for a in range(0, N, append_rows):
        b = min(a + append_rows, N)
        writer.append(X[a:b], y[a:b], w[a:b], s[a:b], cid=codes[a:b])
    return writer.finish(J, chunk_rows=chunk_rows, threads=threads)


CASES = [(None, 1), (97, 1), (97, 3), (256, 4), (N, 2)]


@pytest.fixture(params=CASES, ids=lambda c: f"rows{c[0]}-threads{c[1]}")
def pair(request, data, tmp_path):
    X, y, w, s, _, _ = data
    rows, threads = request.param
    memory = InMemoryBackend(X, y, w, J, chunk_rows=rows, threads=threads, sampling=s)
    be = spill(data, tmp_path, rows, threads, append_rows=rows or 700)
    yield memory, be
    be.close()


def test_is_a_backend(pair):
    assert isinstance(pair[1], Backend) and pair[1].n == N and pair[1].p == P


def test_derivatives_equal_bitwise(pair, data):
    memory, be = pair
    beta = data[-1]
    a, b = memory.derivatives(beta), be.derivatives(beta)
    assert a.llf == b.llf
    np.testing.assert_array_equal(a.score, b.score)
    np.testing.assert_array_equal(a.info, b.info)
    assert be.derivatives(beta, hessian=False).info is None


def test_subsample_rows_and_information(data, tmp_path):
    X, y, w, s, _, beta = data
    big = np.repeat(np.arange(N), 12)  # enough rows for a subsample
    memory = InMemoryBackend(X[big], y[big], w[big], J, chunk_rows=1000, threads=2)
    writer = SpillWriter(P, tmp_path)
    for a in range(0, len(big), 4000):
        sl = big[a : a + 4000]
        writer.append(X[sl], y[sl], w[sl])
    with writer.finish(J, chunk_rows=1000, threads=2) as be:
        assert be.sample_rows == memory.sample_rows > 0
        np.testing.assert_array_equal(be.subsample().X, memory.subsample().X)
        np.testing.assert_allclose(
            be.approx_information(beta), memory.approx_information(beta), rtol=RTOL
        )
        be.release()
        assert be._sample is None


@pytest.mark.parametrize("sparse_bytes", [1 << 16, 0])
def test_gather_reads_the_same_rows_one_by_one_or_by_chunks(data, tmp_path, sparse_bytes):
    X, y, w, s, _, _ = data
    be = spill(data, tmp_path, 97, 2)
    # Rows far apart are read one by one (sparse_bytes 0 forces it; the default reads chunks
    # for rows this close): the same rows either way, sampling weights included.
    be.sparse_gather_bytes = sparse_bytes
    positions = np.array([0, 5, 400, 401, 1999, N - 1])
    rows = be.gather(positions)
    np.testing.assert_array_equal(rows.X, X[positions])
    np.testing.assert_array_equal(rows.y, y[positions])
    np.testing.assert_array_equal(rows.w, w[positions])
    np.testing.assert_array_equal(rows.sampling, s[positions])
    with pytest.raises(IndexError, match="out of range"):
        be.gather(np.array([0, N]))
    be.close()


def test_reductions(pair, data):
    memory, be = pair
    beta = data[-1]
    v = np.random.default_rng(3).normal(size=J * P)
    np.testing.assert_allclose(be.hessian_vector(beta, v), memory.hessian_vector(beta, v), RTOL)
    np.testing.assert_allclose(be.score_outer(beta), memory.score_outer(beta), RTOL, atol=1e-12)
    assert be.positive_rows() == memory.positive_rows()
    for a, b in zip(be.column_range(), memory.column_range(), strict=True):
        np.testing.assert_array_equal(a, b)
    scale = np.array([1.0, 2.0, 0.5, 4.0, 3.0])
    np.testing.assert_allclose(be.gram(scale), memory.gram(scale), RTOL)
    for ones in (False, True):
        Ra, Rb = be.r_factor(scale, ones), memory.r_factor(scale, ones)
        np.testing.assert_allclose(np.abs(Ra), np.abs(Rb), RTOL, atol=1e-12)
    D = np.random.default_rng(4).normal(size=(J, P))
    np.testing.assert_allclose(be.pair_stats(D), memory.pair_stats(D), RTOL)
    np.testing.assert_array_equal(be.probabilities(beta), memory.probabilities(beta))
    np.testing.assert_array_equal(be.linear(beta), memory.linear(beta))


def test_group_scores_from_an_array_or_a_spilled_column(pair, data):
    memory, be = pair
    codes, beta = data[-2], data[-1]
    expected = memory.group_scores(beta, codes, 17)
    for source in (codes, "cid"):
        sums, weight = be.group_scores(beta, source, 17)
        np.testing.assert_allclose(sums, expected[0], RTOL, atol=1e-12)
        np.testing.assert_allclose(weight, expected[1], RTOL)
    with pytest.raises(KeyError, match="no column 'other'"):
        be.group_scores(beta, "other", 17)
    with pytest.raises(ValueError, match="codes outside"):
        be.group_scores(beta, "cid", 5)


def test_distinct_rows(data, tmp_path):
    X, y, w, _, _, _ = data
    Xd = np.round(X[:, [0, 4]])  # few distinct rows
    memory = InMemoryBackend(Xd, y, w, J)
    writer = SpillWriter(2, tmp_path)
    for a in range(0, N, 400):
        writer.append(Xd[a : a + 400], y[a : a + 400], w[a : a + 400])
    with writer.finish(J, chunk_rows=300) as be:
        got, want = be.distinct_rows(np.ones(2)), memory.distinct_rows(np.ones(2))
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
        np.testing.assert_allclose(got[2], want[2], RTOL)


def test_iterators_and_reduce(pair, data):
    memory, be = pair
    beta = data[-1]
    parts = list(be.iter_probabilities(beta, chunk_rows=1000))
    assert [sl.start for sl, _ in parts] == [0, 1000, 2000, 3000]
    np.testing.assert_array_equal(np.vstack([P_ for _, P_ in parts]), memory.probabilities(beta))
    eta = np.vstack([e for _, e in be.iter_linear(beta, chunk_rows=999)])
    np.testing.assert_array_equal(eta, memory.linear(beta))
    chunks = be.reduce(lambda c: c, chunk_rows=211)
    np.testing.assert_array_equal(np.vstack([c.X for c in chunks]), memory.X)
    np.testing.assert_array_equal(np.concatenate([c.y for c in chunks]), memory.y)
    assert all(c.frame is None for c in chunks)
    np.testing.assert_array_equal(
        be.read_chunk(be.n_chunks - 1).X, memory.read_chunk(memory.n_chunks - 1).X
    )
    with pytest.raises(IndexError):
        be.read_chunk(be.n_chunks)


def test_array_backend_is_the_generic_chunked_one(data):
    """ArrayBackend runs the generic chunked code; InMemoryBackend's whole-array shortcuts
    (Gram, distinct rows, group weights) must agree with it."""
    X, y, w, s, codes, beta = data
    a = ArrayBackend(X, y, w, J, chunk_rows=128, threads=3, sampling=s, columns={"c": codes})
    m = InMemoryBackend(X, y, w, J, chunk_rows=128, threads=3, sampling=s)
    scale = np.ones(P)
    np.testing.assert_allclose(a.gram(scale), m.gram(scale), RTOL)
    np.testing.assert_allclose(
        a.group_scores(beta, "c", 17)[1], m.group_scores(beta, codes, 17)[1]
    )
    assert a.total_weight() == m.total_weight()


def test_spill_directory_is_removed_on_close_and_on_collection(data, tmp_path):
    be = spill(data, tmp_path, 500, 1)
    path = be.path
    assert os.path.isdir(path) and os.path.dirname(path) == str(tmp_path)
    assert sorted(os.listdir(path))[:1] == ["X.f64"]
    assert os.path.getsize(os.path.join(path, "X.f64")) == N * P * 8
    be.close()
    assert not os.path.exists(path) and be.closed
    with pytest.raises(ValueError, match="closed"):
        be.derivatives(data[-1])
    be = spill(data, tmp_path, 500, 1)
    path = be.path
    del be
    gc.collect()
    assert not os.path.exists(path)


def test_writer_abandoned_or_aborted_leaves_nothing(tmp_path):
    writer = SpillWriter(2, tmp_path)
    writer.append(np.ones((3, 2)), [0, 1, -1], np.ones(3))
    path = writer.path
    del writer
    gc.collect()
    assert not os.path.exists(path)
    with SpillWriter(2, tmp_path) as writer:
        path = writer.path
    assert not os.path.exists(path)
    assert os.listdir(tmp_path) == []


def test_default_directory_is_the_temporary_one():
    import tempfile

    writer = SpillWriter(1)
    assert os.path.dirname(writer.path) == tempfile.gettempdir()
    writer.append(np.ones((2, 1)), [0, -1], np.ones(2))
    with writer.finish(1) as be:
        assert be.n == 2
    assert not os.path.exists(writer.path)


def test_writer_checks_its_chunks(tmp_path):
    with SpillWriter(2, tmp_path, sampling=True, columns=["g"]) as writer:
        with pytest.raises(ValueError, match="shape"):
            writer.append(np.ones((3, 3)), [0, 0, 0], np.ones(3), np.ones(3), g=[0, 0, 0])
        with pytest.raises(ValueError, match="sampling weights must be given"):
            writer.append(np.ones((3, 2)), [0, 0, 0], np.ones(3), g=[0, 0, 0])
        with pytest.raises(ValueError, match="columns must be exactly"):
            writer.append(np.ones((3, 2)), [0, 0, 0], np.ones(3), np.ones(3))
        with pytest.raises(ValueError, match="3 entries"):
            writer.append(np.ones((3, 2)), [0, 0], np.ones(3), np.ones(3), g=[0, 0, 0])


def test_reopen_without_deleting(data, tmp_path):
    be = spill(data, tmp_path, 500, 1)
    other = SpillBackend(be.path, J, chunk_rows=500, delete=False)
    np.testing.assert_array_equal(other.read_rows(10, 20).X, data[0][10:20])
    other.close()
    assert os.path.isdir(be.path)
    be.close()


def test_recode_rewrites_codes_already_written_block_by_block(tmp_path):
    # More rows than one block of the rewrite (2^20), in appends that straddle its edges; the
    # rows appended after the rewrite keep their codes.
    rng = np.random.default_rng(3)
    n = (1 << 20) + 70_001
    y = rng.integers(-1, 3, n)
    g = rng.integers(0, 5, n)
    writer = SpillWriter(1, tmp_path, columns=["g"])
    for a in range(0, n, 300_000):
        b = min(a + 300_000, n)
        writer.append(np.zeros((b - a, 1)), y[a:b], np.ones(b - a), g=g[a:b])
    y_table, g_table = np.array([2, 0, -1, 1]), np.array([4, 3, 0, 1, 2])
    writer.recode(None, y_table, shift=1)
    writer.recode("g", g_table)
    writer.append(np.zeros((3, 1)), [0, 1, -1], np.ones(3), g=[0, 1, 2])
    be = writer.finish(J=3)
    np.testing.assert_array_equal(be.read_rows(0, be.n).y, np.r_[y_table[y + 1], 0, 1, -1])
    np.testing.assert_array_equal(be.read_column("g", 0, be.n), np.r_[g_table[g], 0, 1, 2])
    be.close()
