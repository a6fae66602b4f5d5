"""The kernels of the robust and cluster meats against a direct dense computation, and their
invariance to the chunking, the threads, the group blocks and rows without weight."""

import numpy as np
import pytest

from multilogit.engine import chunked, kernels, memory
from multilogit.engine.memory import InMemoryBackend
from tests import kernels_numpy as twin

N, P, J, G = 900, 4, 3, 37


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(11)
    X = np.column_stack([np.ones(N), rng.normal(size=(N, P - 1)) * [1.0, 4.0, 0.3]])
    y = rng.integers(-1, J, N)
    w = rng.random(N) * 2
    w[::7] = 0.0
    s = rng.random(N) + 0.5
    codes = rng.integers(0, G, N)
    codes[codes == 3] = 4  # group 3 is empty
    beta = rng.normal(size=(J, P)) * 0.4
    return X, y, w, s, codes, beta


def _dense_meat(X, y, a, beta):
    S = twin.row_scores(X, y, beta)
    return S.T @ (S * a[:, None])


def _dense_sums(X, y, a, codes, beta, n_groups=G):
    out = np.zeros((n_groups, J * P))
    np.add.at(out, codes, twin.row_scores(X, y, beta) * a[:, None])
    return out


def test_chunk_meat_is_the_dense_meat(data):
    X, y, w, s, _, beta = data
    a = w * s
    out = np.zeros((J * P, J * P))
    kernels.chunk_meat(X, y, a, beta, out, kernels.ScoreWorkspace(N, P, J))
    np.testing.assert_allclose(out, _dense_meat(X, y, a, beta), rtol=1e-11, atol=1e-10)
    np.testing.assert_array_equal(out, out.T)


def test_chunk_meat_adds_and_reuses_its_buffers(data):
    # The workspace keeps the previous chunk's numbers: a second chunk must not see them.
    X, y, w, _, _, beta = data
    work = kernels.ScoreWorkspace(N, P, J)
    out = np.zeros((J * P, J * P))
    kernels.chunk_meat(X[:500], y[:500], w[:500], beta, out, work)
    kernels.chunk_meat(X[500:], y[500:], w[500:], beta, out, work)
    np.testing.assert_allclose(out, _dense_meat(X, y, w, beta), rtol=1e-11, atol=1e-10)


def test_rows_without_weight_take_no_part(data):
    X, y, w, _, codes, beta = data
    pos = w > 0
    Xbad = X.copy()
    Xbad[~pos] = 1e300  # would overflow if these rows were used
    work = kernels.ScoreWorkspace(N, P, J)
    full, kept = np.zeros((J * P, J * P)), np.zeros((J * P, J * P))
    kernels.chunk_meat(Xbad, y, w, beta, full, work)
    kernels.chunk_meat(X[pos], y[pos], w[pos], beta, kept, work)
    np.testing.assert_array_equal(full, kept)
    sums, sums_kept = np.zeros((G, J * P)), np.zeros((G, J * P))
    kernels.chunk_cluster_sums(Xbad, y, w, codes, beta, 0, sums)
    kernels.chunk_cluster_sums(X[pos], y[pos], w[pos], codes[pos], beta, 0, sums_kept)
    np.testing.assert_array_equal(sums, sums_kept)


@pytest.mark.parametrize("g0, size", [(0, G), (5, 10), (30, 7)])
def test_chunk_cluster_sums_of_a_block_of_groups(data, g0, size):
    X, y, w, _, codes, beta = data
    sums = np.zeros((size, J * P))
    kernels.chunk_cluster_sums(X, y, w, codes, beta, g0, sums)
    expected = _dense_sums(X, y, w, codes, beta)[g0 : g0 + size]
    np.testing.assert_allclose(sums, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("rows, threads", [(None, 1), (64, 1), (97, 3), (900, 2), (50, 8)])
def test_backend_meats_do_not_depend_on_chunks_or_threads(data, rows, threads):
    X, y, w, s, codes, beta = data
    be = InMemoryBackend(X, y, w, J, chunk_rows=rows, threads=threads, sampling=s)
    np.testing.assert_allclose(
        be.score_outer(beta), _dense_meat(X, y, w * s, beta), rtol=1e-11, atol=1e-10
    )
    U = _dense_sums(X, y, w, codes, beta)
    sums, weight = be.group_scores(beta, codes, G)
    np.testing.assert_allclose(sums, U, rtol=1e-11, atol=1e-11)
    meat, weight2 = be.cluster_meat(beta, codes, G)
    np.testing.assert_allclose(meat, U.T @ U, rtol=1e-11, atol=1e-10)
    np.testing.assert_array_equal(weight, weight2)
    assert weight[3] == 0.0


@pytest.mark.parametrize("block_bytes", [1, 8 * J * P * 5, 1 << 30])
@pytest.mark.parametrize("threads", [1, 3])
def test_chunked_cluster_meat_in_blocks_of_groups(data, monkeypatch, block_bytes, threads):
    # The generic pass (rows read chunk by chunk, as from disk): one group per pass, a few
    # groups per pass, all groups in one pass give the same meat.
    X, y, w, _, codes, beta = data
    monkeypatch.setattr(chunked, "GROUP_BLOCK_BYTES", block_bytes)
    be = chunked.ArrayBackend(X, y, w, J, chunk_rows=128, threads=threads)
    U = _dense_sums(X, y, w, codes, beta)
    meat, weight = be.cluster_meat(beta, codes, G)
    np.testing.assert_allclose(meat, U.T @ U, rtol=1e-11, atol=1e-10)
    np.testing.assert_allclose(weight, np.bincount(codes, weights=w, minlength=G))


@pytest.mark.parametrize("block", [1, 5, 1024])
def test_in_memory_cluster_meat_in_blocks_of_groups(data, monkeypatch, block):
    X, y, w, _, codes, beta = data
    monkeypatch.setattr(memory, "SORTED_GROUP_BLOCK", block)
    be = InMemoryBackend(X, y, w, J, chunk_rows=128, threads=2)
    U = _dense_sums(X, y, w, codes, beta)
    meat, _ = be.cluster_meat(beta, codes, G)
    np.testing.assert_allclose(meat, U.T @ U, rtol=1e-11, atol=1e-10)


def test_group_order_is_a_stable_sort(data):
    codes = data[4]
    order, starts = kernels.group_order(codes, G + 2)  # two empty groups at the end
    np.testing.assert_array_equal(order, np.argsort(codes, kind="stable"))
    np.testing.assert_array_equal(
        starts, np.concatenate([[0], np.cumsum(np.bincount(codes, minlength=G + 2))])
    )


def test_sums_in_group_order_equal_those_in_row_order(data):
    # Both add each group's rows in row order with the same arithmetic: bitwise equal.
    X, y, w, _, codes, beta = data
    in_rows = np.zeros((G, J * P))
    kernels.chunk_cluster_sums(X, y, w, codes, beta, 0, in_rows)
    order, starts = kernels.group_order(codes, G)
    U = np.full((G - 3, J * P), np.nan)  # every row is overwritten
    kernels.sorted_cluster_sums(X, y, w, beta, order, starts, 3, U)
    np.testing.assert_array_equal(U, in_rows[3:])


def test_cluster_sums_are_bitwise_the_same_whatever_the_blocks(data):
    # Each group's sum is added row by row, whatever block of groups it falls in.
    X, y, w, _, codes, beta = data
    whole = np.zeros((G, J * P))
    kernels.chunk_cluster_sums(X, y, w, codes, beta, 0, whole)
    blocks = []
    for g0 in range(0, G, 4):
        part = np.zeros((min(4, G - g0), J * P))
        kernels.chunk_cluster_sums(X, y, w, codes, beta, g0, part)
        blocks.append(part)
    np.testing.assert_array_equal(np.vstack(blocks), whole)
