"""The Dask backend against the in-memory backend: every operation, on a real local cluster
(worker processes) and on the threaded scheduler, for 1, 3 and 7 partitions.

Across partitionings the per-row terms are added in another order, so results agree to
rounding (rtol 1e-12, relative to the largest entry for arrays whose entries may cancel);
repeated evaluations on one partitioning agree to the bit.  A slip in a per-partition offset,
the order of the combination or the merge of groups spanning partitions shows up here."""

import contextlib
import subprocess
import sys

import numpy as np
import pandas as pd
import patsy
import pytest

dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")

import dask.array as da  # noqa: E402
import dask.dataframe as dd  # noqa: E402

import multilogit as ml  # noqa: E402
from multilogit.data.dask_source import design_from_frame  # noqa: E402
from multilogit.engine.backend import Backend, Chunk  # noqa: E402
from multilogit.engine.dask import DaskBackend, tree_reduce  # noqa: E402
from multilogit.engine.memory import InMemoryBackend  # noqa: E402
from multilogit.exceptions import DataError  # noqa: E402
from multilogit.solve.newton import NewtonOptions, newton  # noqa: E402

RTOL = 1e-12
HSB_FORMULA = "ses + write + math + schtyp + female"
HSB_CODING = {"academic": -1, "general": 0, "vocation": 1}


@pytest.fixture(scope="module")
def client(local_cluster):
    with distributed.Client(local_cluster, set_as_default=False) as c:
        yield c


def _hsbdemo():
    df = ml.datasets.load("hsbdemo").reset_index(drop=True)
    rng = np.random.default_rng(3)
    df["f"] = rng.integers(0, 3, len(df)).astype(float)  # zero weights on some rows
    df["s"] = rng.random(len(df)) + 0.5
    X = np.asarray(patsy.dmatrix(HSB_FORMULA, df), dtype=np.float64)
    y = df["prog"].astype(object).map(HSB_CODING).to_numpy(np.int64)
    w = df["f"].to_numpy() * df["s"].to_numpy()
    codes = pd.factorize(df["cid"])[0]
    beta = rng.normal(size=(2, X.shape[1])) * 0.05
    return df, X, y, w, df["s"].to_numpy(), 2, codes, beta


def _synthetic(n=100_000, p=5, J=3):
    rng = np.random.default_rng(11)
    X = np.column_stack([np.ones(n), rng.normal(size=(n, p - 1))])
    true = rng.normal(size=(J, p)) * 0.5
    eta = np.column_stack([X @ true.T, np.zeros(n)])
    P = np.exp(eta - eta.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    y = (rng.random((n, 1)) > np.cumsum(P, axis=1)).sum(axis=1)
    y = np.where(y == J, -1, y).astype(np.int64)
    s = rng.random(n) + 0.5
    w = s * (rng.random(n) > 0.05)
    codes = np.arange(n) * 37 // n  # contiguous clusters, many spanning partitions
    beta = true * 0.8
    df = pd.DataFrame({"row": np.arange(n), "x1": X[:, 1]})
    return df, X, y, w, s, J, codes, beta


DATASETS = {"hsbdemo": _hsbdemo, "synthetic": _synthetic}
_data_cache: dict = {}
_backend_cache: dict = {}


def _data(name):
    if name not in _data_cache:
        df, X, y, w, s, J, codes, beta = DATASETS[name]()
        memory = InMemoryBackend(X, y, w, J, sampling=s, frame=df)
        _data_cache[name] = dict(
            df=df, X=X, y=y, w=w, s=s, J=J, codes=codes, beta=beta, memory=memory
        )
    return _data_cache[name]


def _scheduler(kind):
    return dask.config.set(scheduler="threads") if kind == "threads" else contextlib.nullcontext()


@pytest.fixture(
    params=[(d, k, s) for d in DATASETS for k in (1, 3, 7) for s in ("distributed", "threads")],
    ids=lambda c: "-".join(map(str, c)),
)
def case(request):
    name, k, kind = request.param
    data = _data(name)
    client = request.getfixturevalue("client") if kind == "distributed" else None
    with _scheduler(kind):
        if request.param not in _backend_cache:
            frame = dd.from_pandas(data["df"], npartitions=k, sort=False)
            assert frame.npartitions == k
            rows = tuple(int(m) for m in frame.map_partitions(len).compute(scheduler="sync"))
            X = da.from_array(data["X"], chunks=(rows, -1))
            be = DaskBackend(
                X, data["y"], data["w"], data["J"], sampling=data["s"], frame=frame, client=client
            )
            _backend_cache[request.param] = be
        yield _backend_cache[request.param], data


def close(got, want, rtol=RTOL):
    want = np.asarray(want)
    atol = rtol * np.max(np.abs(want)) if want.size else 0.0
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


def _oriented(R):
    """R with a non-negative diagonal (a QR factor is unique up to the signs of its rows)."""
    sign = np.where(np.diag(R) < 0, -1.0, 1.0)
    return R * sign[:, None]


def test_is_a_backend(case):
    be, data = case
    assert isinstance(be, Backend)
    assert (be.n, be.p, be.J) == (*data["X"].shape, data["J"])


def test_derivatives_and_products_equal_in_memory(case):
    be, data = case
    mem, beta = data["memory"], data["beta"]
    want, got = mem.derivatives(beta), be.derivatives(beta)
    close(got.llf, want.llf)
    close(got.score, want.score)
    close(got.info, want.info)
    no_info = be.derivatives(beta, hessian=False)
    assert no_info.info is None and no_info.llf == got.llf
    v = np.random.default_rng(5).normal(size=beta.size)
    close(be.hessian_vector(beta, v), mem.hessian_vector(beta, v))
    close(be.score_outer(beta), mem.score_outer(beta))


def test_scans_equal_in_memory(case):
    be, data = case
    mem = data["memory"]
    assert be.positive_rows() == mem.positive_rows()
    for got, want in zip(be.column_range(), mem.column_range(), strict=True):
        np.testing.assert_array_equal(got, want)
    scale = np.linspace(0.5, 4.0, be.p)
    close(be.gram(scale), mem.gram(scale))
    for ones in (False, True):
        R, want = be.r_factor(scale, ones), mem.r_factor(scale, ones)
        assert R.shape == want.shape and np.allclose(np.tril(R, -1), 0.0)
        close(_oriented(R), _oriented(want), rtol=1e-10)  # QR of other blocks: cond * eps
        close(R.T @ R, want.T @ want)
    D = np.random.default_rng(6).normal(size=(be.J, be.p))
    close(be.pair_stats(D), mem.pair_stats(D))
    Xu, yu, wu = be.distinct_rows(scale)
    Xm, ym, wm = mem.distinct_rows(scale)
    np.testing.assert_array_equal(Xu, Xm)
    np.testing.assert_array_equal(yu, ym)
    close(wu, wm)


def test_group_scores_combine_clusters_across_partitions(case):
    be, data = case
    mem, beta, codes = data["memory"], data["beta"], data["codes"]
    G = codes.max() + 3  # two empty groups at the end keep zero rows
    want = mem.group_scores(beta, codes, G)
    rechunked = da.from_array(codes, chunks=be.n // 2 + 1)  # realigned to the partitions
    for c in (codes, rechunked):
        sums, weight = be.group_scores(beta, c, G)
        close(sums, want[0])
        close(weight, want[1])
        assert np.all(sums[-2:] == 0.0) and np.all(weight[-2:] == 0.0)
    with pytest.raises(ValueError, match="one entry per row"):
        be.group_scores(beta, codes[:-1], G)
    with pytest.raises(ValueError, match="must lie in"):
        be.group_scores(beta, codes, G - 3)


def test_repeats_are_bitwise(case):
    be, data = case
    beta, codes = data["beta"], data["codes"]
    a, b = be.derivatives(beta), be.derivatives(beta)
    assert a.llf == b.llf
    np.testing.assert_array_equal(a.score, b.score)
    np.testing.assert_array_equal(a.info, b.info)
    np.testing.assert_array_equal(be.score_outer(beta), be.score_outer(beta))
    np.testing.assert_array_equal(be.r_factor(np.ones(be.p)), be.r_factor(np.ones(be.p)))
    G = codes.max() + 1
    np.testing.assert_array_equal(
        be.group_scores(beta, codes, G)[0], be.group_scores(beta, codes, G)[0]
    )


def test_predictions_are_lazy_blocks(case):
    be, data = case
    mem, beta = data["memory"], data["beta"]
    for got, want in ((be.probabilities(beta), mem.probabilities(beta)),
                      (be.linear(beta), mem.linear(beta))):  # fmt: skip
        assert isinstance(got, da.Array)
        assert got.numblocks == (be.npartitions, 1) and got.shape == want.shape
        compute = be.client.compute if be.client else None
        value = compute(got, sync=True) if compute else got.compute()
        close(value, want, rtol=1e-13)


def test_reduce_hands_chunks_and_frames_in_row_order(case):
    be, data = case
    X, df = data["X"], data["df"]

    def visit(c):
        return c.rows, c.X.copy(), c.y.copy(), c.weights.copy(), c.frame, isinstance(c, Chunk)

    for step in (None, 17_001):
        parts = be.reduce(visit, chunk_rows=step)
        rows = [p[0] for p in parts]
        assert rows[0].start == 0 and rows[-1].stop == be.n
        assert all(a.stop == b.start for a, b in zip(rows[:-1], rows[1:], strict=True))
        # a chunk starts a partition or lies ``step`` rows after the previous one in it
        starts = set(be.offsets.tolist())
        assert all(r.start in starts or r.start - step in starts | {q.start for q in rows}
                   for r in rows)  # fmt: skip
        ends = be.offsets + be.row_counts
        assert not any(np.any((r.start < ends) & (ends < r.stop)) for r in rows)
        np.testing.assert_array_equal(np.vstack([p[1] for p in parts]), X)
        np.testing.assert_array_equal(np.concatenate([p[2] for p in parts]), data["y"])
        np.testing.assert_array_equal(np.concatenate([p[3] for p in parts]), data["w"])
        pd.testing.assert_frame_equal(pd.concat([p[4] for p in parts]), df)
        assert all(p[5] for p in parts)
    if step is None:
        assert len(parts) == be.npartitions

    def write(c):
        c.X[0, 0] = 1.0

    with pytest.raises(ValueError, match="read-only"):
        be.reduce(write)


def test_newton_matches_the_in_memory_solve(case):
    be, data = case
    beta0 = np.zeros((be.J, be.p))
    # without a subsample (hsbdemo) "auto" is "exact"
    for hessian in ("exact", "auto") if be.sample_rows else ("exact",):
        options = NewtonOptions(hessian=hessian)
        want = newton(data["memory"], beta0, options)
        got = newton(be, beta0, options)
        assert got.converged and want.converged
        np.testing.assert_allclose(got.beta, want.beta, rtol=1e-10, atol=1e-12)


def test_subsample_is_the_in_memory_subsample(case):
    be, data = case
    mem, beta = data["memory"], data["beta"]
    assert be.sample_rows == mem.sample_rows
    sub, want = be.subsample(), mem.subsample()
    if want is None:
        assert sub is None and be.approx_information(beta) is None
        return
    for attr in ("X", "y", "w"):
        np.testing.assert_array_equal(getattr(sub, attr), getattr(want, attr))
    close(be.approx_information(beta), mem.approx_information(beta))
    be.release()
    close(be.approx_information(beta), mem.approx_information(beta))


@pytest.mark.parametrize("kind", ["distributed", "threads"])
def test_design_from_frame_codes_levels_absent_from_a_partition(kind, request):
    df = _data("hsbdemo")["df"].sort_values("ses", kind="stable").reset_index(drop=True)
    df["prog"] = df["prog"].astype(object)
    frame = dd.from_pandas(df, npartitions=3, sort=False)
    levels = [p["ses"].nunique().compute(scheduler="sync") for p in frame.partitions]
    assert min(levels) < 3  # a partition lacks a level of ses
    info = patsy.dmatrix(HSB_FORMULA, df).design_info  # the state fixed on the whole data
    client = request.getfixturevalue("client") if kind == "distributed" else None
    with _scheduler(kind):
        design = design_from_frame(
            frame, info, "prog", HSB_CODING, freq_weights="f", weights="s", client=client
        )
        assert design.X.numblocks == (3, 1) and design.names == tuple(info.column_names)
        got = [design.X, design.y, design.w, design.sampling]
        got = client.compute(got, sync=True) if client else dask.compute(*got)
        np.testing.assert_array_equal(got[0], np.asarray(patsy.dmatrix(HSB_FORMULA, df)))
        np.testing.assert_array_equal(got[1], df["prog"].map(HSB_CODING).to_numpy())
        np.testing.assert_array_equal(got[2], df["f"] * df["s"])
        np.testing.assert_array_equal(got[3], df["s"])
        be = design.backend(2, frame=frame, client=client)
        mem = InMemoryBackend(got[0], got[1], got[2], 2, sampling=got[3])
        beta = _data("hsbdemo")["beta"]
        close(be.derivatives(beta).info, mem.derivatives(beta).info)
        close(be.score_outer(beta), mem.score_outer(beta))
        bad = df.assign(prog=df["prog"].replace("general", "other"))
        design = design_from_frame(
            dd.from_pandas(bad, npartitions=2, sort=False), info, "prog", HSB_CODING,
            client=client, persist=False,
        )  # fmt: skip
        with pytest.raises(DataError, match="'other'"):
            dask.compute(design.y) if client is None else client.compute(design.y, sync=True)


def test_tree_reduce_has_a_fixed_shape():
    parts = [dask.delayed(str)(k) for k in range(5)]
    out = tree_reduce(parts, lambda a, b: f"({a}{b})").compute(scheduler="sync")
    assert out == "(((01)(23))4)"


def test_empty_partitions_and_unknown_chunks():
    data = _data("hsbdemo")
    X, y, w, J, beta = data["X"], data["y"], data["w"], data["J"], data["beta"]
    n = len(y)
    with dask.config.set(scheduler="threads"):
        blocks = da.from_array(X, chunks=((0, 60, 0, n - 60), -1))
        unknown = da.from_delayed(dask.delayed(X), shape=(np.nan, X.shape[1]), dtype=float)
        for Xd in (blocks, unknown):
            be = DaskBackend(Xd, y, w, J)
            mem = InMemoryBackend(X, y, w, J)
            close(be.derivatives(beta).info, mem.derivatives(beta).info)
            close(
                be.r_factor(np.ones(be.p)).T @ be.r_factor(np.ones(be.p)), mem.gram(np.ones(be.p))
            )
            assert (
                be.distinct_rows(np.ones(be.p))[0].shape
                == mem.distinct_rows(np.ones(be.p))[0].shape
            )
            assert len(be.reduce(lambda c: len(c.y))) == sum(m > 0 for m in be.row_counts)


def test_inputs_are_checked():
    data = _data("hsbdemo")
    X, y, w = data["X"], data["y"], data["w"]
    with dask.config.set(scheduler="threads"):
        Xd = da.from_array(X, chunks=(50, 2))  # column chunks are joined
        be = DaskBackend(Xd, y, w, 2)
        assert be.X.numblocks == (4, 1)
        with pytest.raises(TypeError, match="2-D dask array"):
            DaskBackend(X, y, w, 2)
        with pytest.raises(ValueError, match="one entry per row"):
            DaskBackend(Xd, y[:-1], w, 2)
        frame = dd.from_pandas(data["df"], npartitions=2)
        with pytest.raises(ValueError, match="partitions"):
            DaskBackend(Xd, y, w, 2, frame=frame)


def test_importing_the_package_does_not_import_dask():
    code = "import sys, multilogit; assert 'dask' not in sys.modules, 'dask imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
