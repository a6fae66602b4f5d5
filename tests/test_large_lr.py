"""Likelihood-ratio tests between two separately fitted models on data larger than memory:
Parquet sources (streamed into a spill) and Dask DataFrames (a real LocalCluster and the
threaded scheduler), also across partitionings and between a model in memory and one on large
data.  The statistic, degrees of freedom and p-value equal those of the same models fitted in
memory; samples that differ and models that are not nested are refused as in memory."""

import numpy as np
import pandas as pd
import pytest

import multilogit as ml
from multilogit.engine.chunked import ArrayBackend
from multilogit.engine.paired import compare_rows
from multilogit.inference import hypothesis

dask = pytest.importorskip("dask")
dd = pytest.importorskip("dask.dataframe")
da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

# The fits are the in-memory ones to rounding (see test_large.py); the statistic is a
# difference of log-likelihoods of a few thousand, so it keeps about ten digits.
RTOL = 1e-10

FULL = "y ~ C(g) + x1 + x2"
MID = "y ~ C(g) + x1"
SMALL = "y ~ x1"


def _data(n=3_000, seed=11):
    rng = np.random.default_rng(seed)
    g = rng.choice(["a", "b", "c", "d"], n)
    x1, x2, x3 = rng.normal(size=(3, n))
    eta = np.column_stack(
        [0.2 + 0.5 * x1 - 0.3 * (g == "b"), -0.1 + 0.4 * x2 + 0.2 * x1 * (g == "c")]
    )
    p = np.exp(np.column_stack([np.zeros(n), eta]))
    p /= p.sum(axis=1, keepdims=True)
    y = np.array(["u", "v", "w"])[(rng.random((n, 1)) > np.cumsum(p, axis=1)).sum(axis=1)]
    fw = rng.integers(1, 4, n).astype(float)
    return pd.DataFrame({"y": y, "g": g, "x1": x1, "x2": x2, "x3": x3, "fw": fw})


def _write(data, path, cuts=(0, 1_000, 1_100, 3_000)):
    """``data`` as a Parquet dataset of several files and row groups (a different cut of the
    rows than any Dask partitioning below)."""
    path.mkdir(parents=True, exist_ok=True)
    cuts = [c for c in cuts if c < len(data)] + [len(data)]
    for k, (a, b) in enumerate(zip(cuts[:-1], cuts[1:], strict=True)):
        data.iloc[a:b].to_parquet(path / f"part-{k}.parquet", row_group_size=400)
    return path


def _assert_same_test(got, want):
    assert got.statistic == pytest.approx(want.statistic, rel=RTOL)
    assert got.df == want.df
    assert got.pvalue == pytest.approx(want.pvalue, rel=RTOL, abs=1e-300)


@pytest.fixture(scope="module")
def data():
    return _data()


@pytest.fixture(scope="module")
def mem(data):
    return {f: ml.mnlogit(f, data, ref="u").fit() for f in (FULL, MID, SMALL)}


@pytest.fixture(scope="module")
def pq_path(tmp_path_factory, data):
    return _write(data, tmp_path_factory.mktemp("lr"))


@pytest.fixture(scope="module")
def cluster(local_cluster):
    with distributed.Client(local_cluster) as client:
        yield client


def _fits(source, formulas=(FULL, MID, SMALL)):
    return {f: ml.mnlogit(f, source, ref="u").fit() for f in formulas}


def _check_against_memory(fits, mem):
    _assert_same_test(fits[FULL].lr_test(fits[SMALL]), mem[FULL].lr_test(mem[SMALL]))
    # Either order, as in memory.
    _assert_same_test(fits[SMALL].lr_test(fits[FULL]), mem[FULL].lr_test(mem[SMALL]))
    got = ml.hypothesis.anova(*fits.values())
    want = ml.hypothesis.anova(*(mem[f] for f in fits))
    pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=RTOL)


# -- equal to the in-memory tests ------------------------------------------------------------


def test_parquet_lr_test_equals_in_memory(pq_path, mem):
    fits = _fits(ml.parquet(pq_path, batch_rows=700))
    assert not fits[FULL].model.is_in_memory
    _check_against_memory(fits, mem)


@pytest.mark.parametrize("nparts", [1, 3])
def test_dask_lr_test_on_a_local_cluster(cluster, data, mem, nparts):
    # Two models keep the cluster's part short; the threaded test below runs all three.
    fits = _fits(dd.from_pandas(data, npartitions=nparts), (FULL, SMALL))
    _check_against_memory(fits, mem)


@pytest.mark.parametrize("nparts", [1, 3])
def test_dask_lr_test_threaded(data, mem, nparts):
    with dask.config.set(scheduler="threads"):
        fits = _fits(dd.from_pandas(data, npartitions=nparts))
        _check_against_memory(fits, mem)


def test_frequency_weights(data, pq_path, mem):
    want = ml.mnlogit(FULL, data, ref="u", freq_weights="fw").fit()
    want = want.lr_test(ml.mnlogit(SMALL, data, ref="u", freq_weights="fw").fit())
    with dask.config.set(scheduler="threads"):
        for src in (ml.parquet(pq_path), dd.from_pandas(data, npartitions=3)):
            full = ml.mnlogit(FULL, src, ref="u", freq_weights="fw").fit()
            small = ml.mnlogit(SMALL, src, ref="u", freq_weights="fw").fit()
            _assert_same_test(full.lr_test(small), want)


def test_other_partitionings_and_sources_of_the_same_rows(data, pq_path, mem):
    """Two models of the same rows read differently pass: Dask partitionings that differ (the
    second model's blocks are cut at the first's), Parquet against Dask, a model in memory
    against one on large data, another reference outcome."""
    want = mem[FULL].lr_test(mem[SMALL])
    with dask.config.set(scheduler="threads"):
        full3 = ml.mnlogit(FULL, dd.from_pandas(data, npartitions=3), ref="u").fit()
        small1 = ml.mnlogit(SMALL, dd.from_pandas(data, npartitions=1), ref="u").fit()
        small4 = ml.mnlogit(SMALL, dd.from_pandas(data, npartitions=4), ref="w").fit()
        full_pq = ml.mnlogit(FULL, ml.parquet(pq_path), ref="u").fit()
        small_pq = ml.mnlogit(SMALL, ml.parquet(pq_path, batch_rows=333), ref="v").fit()
        pairs = [
            (full3, small1),
            (small1, full3),
            (full3, small4),
            (full_pq, small1),
            (small_pq, full3),
            (mem[FULL], small_pq),
            (full_pq, mem[SMALL]),
            (mem[FULL], small4),
            (full3, mem[SMALL]),
            # Rows read through views that recode the outcome.
            (full_pq.repivot("w"), small1),
            (full3.repivot("v"), small_pq.repivot("w")),
        ]
        for a, b in pairs:
            _assert_same_test(a.lr_test(b), want)
        # The whole sequence through anova, models from three kinds of sources.
        pd.testing.assert_frame_equal(
            ml.hypothesis.anova(small_pq, full3, mem[MID]),
            ml.hypothesis.anova(mem[SMALL], mem[FULL], mem[MID]),
            check_exact=False,
            rtol=RTOL,
        )


def test_array_models_on_dask_arrays(data):
    """Array models: Dask arrays chunked differently for the two models, and NumPy arrays."""
    X = np.column_stack([np.ones(len(data)), data[["x1", "x2", "x3"]].to_numpy()])
    y = data.y.to_numpy()
    want = ml.MultinomialLogit(y, X).fit().lr_test(ml.MultinomialLogit(y, X[:, :2]).fit())
    with dask.config.set(scheduler="threads"):
        full = ml.MultinomialLogit(da.from_array(y, 700), da.from_array(X, (700, 4))).fit()
        small = ml.MultinomialLogit(da.from_array(y, 1_100), da.from_array(X[:, :2], 1_100))
        small = small.fit()
        _assert_same_test(full.lr_test(small), want)
        _assert_same_test(full.lr_test(ml.MultinomialLogit(y, X[:, :2]).fit()), want)
        other = ml.MultinomialLogit(da.from_array(y, 500), da.from_array(X[:, [0, 3]], 500))
        with pytest.raises(ml.DataError, match="not nested"):
            ml.MultinomialLogit(da.from_array(y, 700), da.from_array(X[:, :3], 700)).fit().lr_test(
                other.fit()
            )


# -- refused as in memory ----------------------------------------------------------------------


def test_not_the_same_sample(data, pq_path, tmp_path):
    filtered = _write(data[data.x3 > -1.5].reset_index(drop=True), tmp_path / "filtered")
    shuffled = data.sample(frac=1.0, random_state=4).reset_index(drop=True)
    shuffled_pq = _write(shuffled, tmp_path / "shuffled")
    with_nan = data.copy()
    with_nan.loc[[5, 1500, 2999], "x2"] = np.nan
    nan_pq = _write(with_nan, tmp_path / "nan")
    with dask.config.set(scheduler="threads"):
        full = {
            "parquet": ml.mnlogit(FULL, ml.parquet(pq_path), ref="u").fit(),
            "dask": ml.mnlogit(FULL, dd.from_pandas(data, npartitions=3), ref="u").fit(),
        }
        for name, res in full.items():
            # Fewer rows: a filtered source.
            small = ml.mnlogit(SMALL, ml.parquet(filtered), ref="u").fit()
            with pytest.raises(ml.DataError, match=r"same sample: 3000 and \d+ rows"):
                res.lr_test(small)
            # As many rows, in another order: the outcomes differ at some positions.
            for src in (ml.parquet(shuffled_pq), dd.from_pandas(shuffled, npartitions=2)):
                small = ml.mnlogit(SMALL, src, ref="u").fit()
                with pytest.raises(ml.DataError, match="another outcome.*first at row position"):
                    res.lr_test(small)
            # The same rows with other weights.
            small = ml.mnlogit(SMALL, ml.parquet(pq_path), ref="u", freq_weights="fw").fit()
            with pytest.raises(ml.DataError, match="0 row.*another outcome and \\d+ with another"):
                res.lr_test(small)
            assert name  # both sources are checked
        # Rows dropped for a missing value of a variable only the larger model uses.
        for src in (ml.parquet(nan_pq), dd.from_pandas(with_nan, npartitions=3)):
            big = ml.mnlogit(FULL, src, ref="u", missing="drop").fit()
            small = ml.mnlogit(SMALL, src, ref="u", missing="drop").fit()
            assert big.model.n_dropped == 3 and small.model.n_dropped == 0
            with pytest.raises(ml.DataError, match="same sample: 2997 and 3000 rows"):
                big.lr_test(small)
            with pytest.raises(ml.DataError, match="same sample"):
                ml.hypothesis.anova(small, big)


def test_not_nested(data, pq_path, mem):
    with pytest.raises(ml.DataError, match="not nested"):
        mem[FULL].lr_test(ml.mnlogit("y ~ x3", data, ref="u").fit())
    with dask.config.set(scheduler="threads"):
        for src in (ml.parquet(pq_path), dd.from_pandas(data, npartitions=3)):
            full = ml.mnlogit(FULL, src, ref="u").fit()
            other = ml.mnlogit("y ~ x3", src, ref="u").fit()
            with pytest.raises(ml.DataError, match="not nested"):
                full.lr_test(other)
            with pytest.raises(ml.DataError, match="not nested"):
                ml.hypothesis.anova(other, full)
            # The same size, as in memory.
            with pytest.raises(ml.DataError, match="same number of parameters"):
                full.lr_test(full)


def _old_in_memory_decision(small, big, tol=1e-8):
    """The nesting decision on the rows in memory: lstsq of the smaller design on the larger,
    the largest residual of each column against tol (1 + its largest magnitude)."""
    Xs, Xb = small.model.exog, big.model.exog
    coef, *_ = np.linalg.lstsq(Xb, Xs, rcond=None)
    resid = Xs - Xb @ coef
    return bool(np.all(np.abs(resid) <= tol * (1.0 + np.abs(Xs).max(axis=0))))


@pytest.mark.parametrize("factor", [0.3, 3.0])
def test_nesting_decision_close_to_the_tolerance(data, tmp_path, monkeypatch, factor):
    """A column of the smaller design off the span of the larger by ``factor`` times the
    tolerance in a few rows: the residual norm cannot settle that (it lies between the bound
    and sqrt(n) times it), so a second pass finds the largest residual, and the decision is the
    one on the rows in memory."""
    rng = np.random.default_rng(5)
    x4 = data.x1 + 2.0 * data.x2
    bound = 1e-8 * (1.0 + np.abs(x4).max())
    off = np.zeros(len(data))
    off[rng.choice(len(data), 20, replace=False)] = factor * bound * rng.choice([-1.0, 1.0], 20)
    shifted = data.assign(x4=x4 + off)
    path = _write(shifted, tmp_path / "x4")
    want_nested = _old_in_memory_decision(
        ml.mnlogit("y ~ x4", shifted, ref="u").fit(), ml.mnlogit(FULL, shifted, ref="u").fit()
    )
    assert want_nested == (factor < 1)
    calls = []
    second_pass = hypothesis.residual_absmax
    monkeypatch.setattr(
        hypothesis, "residual_absmax", lambda *a: calls.append(1) or second_pass(*a)
    )
    with dask.config.set(scheduler="threads"):
        for src in (shifted, ml.parquet(path), dd.from_pandas(shifted, npartitions=3)):
            full = ml.mnlogit(FULL, src, ref="u").fit()
            small = ml.mnlogit("y ~ x4", src, ref="u").fit()
            if want_nested:
                assert full.lr_test(small).df == 8
            else:
                with pytest.raises(ml.DataError, match="not nested"):
                    full.lr_test(small)
    assert len(calls) == 3


# -- the lockstep pass itself ------------------------------------------------------------------


def test_compare_rows_against_numpy():
    """The joint factor's Gram matrix is that of the two designs side by side, and mismatches
    are counted and located, whatever holds the rows and however they are partitioned."""
    rng = np.random.default_rng(2)
    n = 5_000
    Xa, Xb = rng.normal(size=(n, 3)), rng.normal(size=(n, 2))
    y = rng.integers(-1, 2, n)
    w = rng.integers(1, 3, n).astype(float)
    yb, wb = y.copy(), w.copy()
    yb[[700, 4000]] = (y[[700, 4000]] + 2) % 3 - 1
    wb[[650, 4001, 4002]] += 1.0
    levels = np.array([1, 2, 0])
    Z = np.column_stack([Xa, Xb])
    a = ArrayBackend(Xa, y, w, 2, chunk_rows=300, threads=3)
    b = ArrayBackend(Xb, yb, wb, 2, chunk_rows=512, threads=2)
    with dask.config.set(scheduler="threads"):
        from multilogit.engine.dask import DaskBackend

        da_a = DaskBackend(da.from_array(Xa, chunks=(1_700, 3)), y, w, 2)
        da_b = DaskBackend(da.from_array(Xb, chunks=(900, 2)), yb, wb, 2)
        for left, right in [(a, b), (da_a, da_b), (a, da_b), (da_a, b)]:
            cmp = compare_rows(left, right, levels, levels)
            assert (cmp.outcome_mismatches, cmp.weight_mismatches) == (2, 3)
            assert cmp.first_mismatch == 650
            np.testing.assert_allclose(cmp.R.T @ cmp.R, Z.T @ Z, rtol=1e-12)
        same = compare_rows(a, a, levels, levels)
        assert (same.outcome_mismatches, same.weight_mismatches, same.first_mismatch) == (0, 0, -1)
