"""The separation check on large data (linear programs on a subset of the rows, checked in
passes over all rows) against the check with every row in the programs (small data)."""

import dataclasses

import numpy as np
import pytest

from multilogit.fit import separation as sepmod


def _data(rng, n, kind):
    # J = 2 (outcomes -1, 0, 1).  Outcome 1 exactly where x1 > 0: quasi-complete separation
    # when the other rows mix outcomes -1 and 0, complete when x2 also decides between them.
    x1 = rng.normal(size=n)
    x2 = rng.normal(size=n)
    y = np.where(x1 > 0, 1, rng.integers(-1, 1, n))
    if kind == "complete":
        x2[x1 > 0] = np.abs(x2[x1 > 0])
        y[x1 <= 0] = np.where(x2[x1 <= 0] > 0, 0, -1)
    X = np.column_stack([np.ones(n), x1 * 3.0, x2, rng.integers(0, 3, n).astype(float)])
    w = rng.uniform(0.5, 2.0, n)
    w[::13] = 0.0
    return X, y, w


def _candidate(X, kind):
    # A recession direction in unit-column coordinates, with a little noise that the
    # verification must drop.
    D = np.zeros((2, X.shape[1]))
    D[1, 1] = 1.0
    if kind == "complete":
        D[0, 2] = 1.0
        D[1, 2] = 1.0
        D[1, 1] = 3.0
    return D + 1e-4 * np.arange(D.size).reshape(D.shape) / D.size


def _fields(sep):
    return {f.name: getattr(sep, f.name) for f in dataclasses.fields(sep)}


@pytest.mark.parametrize("kind", ["quasi", "complete"])
@pytest.mark.parametrize("chunk_rows", [None, 50])
def test_streamed_candidate_reports_what_the_pair_matrix_does(rng, monkeypatch, kind, chunk_rows):
    X, y, w = _data(rng, 400, kind)
    cand = _candidate(X, kind)
    labels = dict(eq_outcomes=("b", "c"), ref="a", exog_names=("1", "x1", "x2", "z"))
    be = sepmod.InMemoryBackend(X, y, w, 2, chunk_rows=chunk_rows)
    monkeypatch.setattr(sepmod, "_SMALL_PAIRS", 10**9)
    want = sepmod.backend_separation(be, candidate=cand, **labels)
    monkeypatch.setattr(sepmod, "_SMALL_PAIRS", 0)
    got = sepmod.backend_separation(be, candidate=cand, **labels)
    assert want is not None and got is not None
    assert got.kind == want.kind == ("complete" if kind == "complete" else "quasi-complete")
    a, b = _fields(got), _fields(want)
    for name in ("kind", "outcomes", "terms", "eq_outcomes", "exog_names"):
        assert a[name] == b[name], name
    np.testing.assert_array_equal(a["params"], b["params"])
    np.testing.assert_allclose(a["direction"], b["direction"], rtol=1e-12, atol=1e-14)
    for name in ("n_separated", "n_perfect", "nobs"):
        assert a[name] == pytest.approx(b[name], rel=1e-12), name
    # Null spaces: the same subspace (bases may differ by a rotation).
    Na, Nb = (n.reshape(-1, n.shape[2]) for n in (a["null_space"], b["null_space"]))
    assert Na.shape == Nb.shape
    if Na.shape[1]:
        Qa, Qb = np.linalg.qr(Na)[0], np.linalg.qr(Nb)[0]
        np.testing.assert_allclose(Qa @ Qa.T, Qb @ Qb.T, atol=1e-8)


def test_candidate_only_seeds_the_rows(rng, monkeypatch):
    # The candidate chooses which rows the first program sees; the report is that of the
    # cone of all rows whatever it is (a wrong direction, none, zeros).
    X, y, w = _data(rng, 400, "quasi")
    be = sepmod.InMemoryBackend(X, y, w, 2)
    monkeypatch.setattr(sepmod, "_SMALL_PAIRS", 0)
    wrong = np.zeros((2, 4))
    wrong[0, 2] = 1.0  # x2 does not separate outcome 0 from the others
    want = sepmod.backend_separation(be)
    assert want is not None
    for cand in (wrong, np.zeros((2, 4)), _candidate(X, "quasi")):
        got = sepmod.backend_separation(be, candidate=cand)
        np.testing.assert_array_equal(got.params, want.params)
        np.testing.assert_array_equal(got.direction != 0, want.direction != 0)
        assert (got.kind, got.n_separated) == (want.kind, want.n_separated)


def test_streamed_candidate_ignores_rows_without_weight(rng, monkeypatch):
    # A row without weight that breaks the separation does not count.
    X, y, w = _data(rng, 400, "quasi")
    i = int(np.flatnonzero(X[:, 1] > 0)[0])
    y[i], w[i] = -1, 0.0
    monkeypatch.setattr(sepmod, "_SMALL_PAIRS", 0)
    be = sepmod.InMemoryBackend(X, y, w, 2)
    assert sepmod.backend_separation(be, candidate=_candidate(X, "quasi")) is not None
    w[i] = 1.0
    be = sepmod.InMemoryBackend(X, y, w, 2)
    assert sepmod.backend_separation(be, candidate=_candidate(X, "quasi")) is None
