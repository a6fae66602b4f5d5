"""Marginal effects of models fitted on data larger than memory: a Parquet dataset written here
(its rows read again from the files, in step with the rows the fit kept) and a Dask DataFrame,
compared with the in-memory fit of the same data; the guard against files changed since the
fit; and the progress bars of these passes."""

import os
import warnings

import numpy as np
import pandas as pd
import pytest

import multilogit as ml
from multilogit.data.source_rows import SourceRows

dask = pytest.importorskip("dask")
dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

# The in-memory and streamed fits add the same per-row terms; only the chunking of the sums
# differs, so the effects agree to rounding.
RTOL = 1e-10
FORMULA = "y ~ C(g) + x1 + np.log(x2) + k + d"
BAR = "[########################]"


def _data(n=2400, seed=11):
    rng = np.random.default_rng(seed)
    g = rng.choice(["u", "v", "w"], n)
    x1 = rng.normal(size=n)
    x2 = rng.lognormal(0.0, 0.5, n)
    k = rng.integers(0, 5, n).astype(float)
    d = rng.integers(0, 2, n).astype(float)
    eta = np.column_stack(
        [
            0.4 * x1 - 0.3 * (g == "v") + 0.2 * k,
            -0.5 + 0.6 * np.log(x2) + 0.5 * d,
        ]
    )
    p = np.exp(np.column_stack([np.zeros(n), eta]))
    p /= p.sum(axis=1, keepdims=True)
    y = np.array(["a", "b", "c"])[(rng.random(n)[:, None] > np.cumsum(p, axis=1)).sum(axis=1)]
    df = pd.DataFrame(
        {"y": y, "g": g, "x1": x1, "x2": x2, "k": k, "d": d, "fw": rng.integers(1, 4, n) * 1.0}
    )
    # Missing values in source columns, and a transform that makes NaN: log of a negative.
    df.loc[rng.choice(n, 40, replace=False), "x1"] = np.nan
    df.loc[rng.choice(n, 25, replace=False), "g"] = None
    neg = rng.choice(n, 30, replace=False)
    df.loc[neg, "x2"] = -df.loc[neg, "x2"]
    return df


def _write(df, path, cuts=(0, 700, 760, 1900, None), row_group_size=250):
    path.mkdir(parents=True, exist_ok=True)
    for k, (a, b) in enumerate(zip(cuts[:-1], cuts[1:], strict=True)):
        df.iloc[a:b].to_parquet(path / f"part-{k}.parquet", row_group_size=row_group_size)
    return path


def _in_memory(formula, df, **kw):
    # pandas warns about the log of the negative values the fit then drops (missing="drop").
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return ml.mnlogit(formula, df, **kw).fit()


def _same(a, b):
    assert list(a.margeff.index) == list(b.margeff.index)
    np.testing.assert_allclose(a.margeff.to_numpy(), b.margeff.to_numpy(), rtol=RTOL, atol=0)
    np.testing.assert_allclose(a.margeff_se.to_numpy(), b.margeff_se.to_numpy(), rtol=RTOL, atol=0)


@pytest.fixture(scope="module")
def data():
    return _data()


@pytest.fixture(scope="module")
def fits(data, tmp_path_factory):
    path = _write(data, tmp_path_factory.mktemp("margins"))
    kw = dict(ref="a", missing="drop", freq_weights="fw")
    ref = _in_memory(FORMULA, data, **kw)
    # Batches that do not line up with the files, the row groups or the margins' chunks.
    res = ml.mnlogit(FORMULA, ml.parquet(path, batch_rows=333), **kw).fit()
    return ref, res


def test_streamed_column_statistics_are_those_of_the_rows_kept(data, fits):
    # Integer-valued, minimum and maximum of each numeric column over the estimation rows:
    # what tells a dummy or a count from a continuous variable without reading the files.
    ref, res = fits
    kept = ref.model.estimation_frame()
    stats = res.model.source_column_stats
    assert set(stats) == {"x1", "x2", "k", "d", "fw"}
    for c, (integers, lo, hi) in stats.items():
        v = kept[c].to_numpy(np.float64)
        assert (integers, lo, hi) == (bool(np.all(v % 1 == 0)), v.min(), v.max())


def test_both_kinds_of_dropped_rows(data, fits):
    ref, res = fits
    na = data[["y", "g", "x1", "x2", "k", "d", "fw"]].isna().any(axis=1)
    assert ref.model.n_dropped == res.model.n_dropped > na.sum()  # design NaN dropped too
    np.testing.assert_array_equal(res.params, ref.params)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"method": "eydx"},
        {"at": {"x1": 0.5, "g": "v"}},
        {"at": {"d": 1.0, "k": 2.0}, "method": "eydx"},
        {"count": True},
        {"dummy": False},
    ],
    ids=["ame", "eydx", "at-dict", "at-dict-eydx", "count", "no-dummy"],
)
def test_parquet_margins_equal_the_in_memory_fit(fits, options):
    ref, res = fits
    a, b = res.get_margeff(**options), ref.get_margeff(**options)
    _same(a, b)
    # Kinds of variables agree: categorical changes, the 0/1 dummy, counts.
    assert a.summary().as_text() == b.summary().as_text()


def test_parquet_elasticities_equal_the_in_memory_fit(data, tmp_path):
    formula = "y ~ x1 + np.log(x2)"
    kw = dict(ref="b", missing="drop", freq_weights="fw")
    ref = _in_memory(formula, data, **kw)
    res = ml.mnlogit(formula, ml.parquet(_write(data, tmp_path), batch_rows=500), **kw).fit()
    for method in ("eyex", "dyex"):
        _same(res.get_margeff(method=method), ref.get_margeff(method=method))


def test_parquet_margins_after_repivot(fits):
    ref, res = fits
    _same(res.repivot("c").get_margeff(), ref.repivot("c").get_margeff())


def test_parquet_margins_at_a_point_equal_the_in_memory_fit(data, fits, tmp_path):
    # The representative row comes from reductions over the re-read rows (means, shares,
    # exact medians by selection), never from the rows gathered in memory.
    ref, res = fits
    _same(res.get_margeff(at="mean"), ref.get_margeff(at="mean"))
    formula = "y ~ x1 + np.log(x2) + k"  # continuous only: medians are defined for them
    kw = dict(ref="b", missing="drop", freq_weights="fw")
    mem = _in_memory(formula, data, **kw)
    big = ml.mnlogit(formula, ml.parquet(_write(data, tmp_path), batch_rows=400), **kw).fit()
    for at in ("median", "mean"):
        _same(big.get_margeff(at=at), mem.get_margeff(at=at))


def test_changed_files_are_refused(data, tmp_path):
    path = _write(data.head(600), tmp_path / "d", cuts=(0, 300, None))
    res = ml.mnlogit(FORMULA, ml.parquet(path), ref="a", missing="drop").fit()
    res.get_margeff()  # the files as fitted: fine
    f = path / "part-1.parquet"
    st = f.stat()
    # Same bytes, another modification time.
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    with pytest.raises(ml.DataError, match="changed since the fit"):
        res.get_margeff()
    data.iloc[300:590].to_parquet(f)  # fewer rows
    with pytest.raises(ml.DataError, match="changed since the fit"):
        res.get_margeff()
    f.unlink()
    with pytest.raises(ml.DataError, match="changed since the fit"):
        res.get_margeff()
    # What needs only the designs and weights never reads the files.
    assert res.pred_table().to_numpy().sum() == res.nobs
    assert res.resid_response.shape == (res.model.n_rows, 3)
    assert res.model.outcome_counts.sum() == res.nobs


# -- reading the kept rows again, without a fingerprint ---------------------------------------


def _batches(frames):
    return lambda: iter(frames)


def test_source_rows_in_order_out_of_order_and_recounted():
    df = pd.DataFrame({"a": np.arange(20.0), "b": np.arange(20) % 3})
    df.loc[[2, 9, 15], "a"] = np.nan
    design_nan = [5, 16]  # dropped for their design: only their positions tell
    kept = df.drop(index=[2, 9, 15, 5, 16])
    batches = [df.iloc[0:7], df.iloc[7:7], df.iloc[7:13], df.iloc[13:20]]
    src = SourceRows(_batches(batches), ["a"], len(kept), len(df), design_nan)
    for start, stop in [(0, 4), (4, 11), (11, 15), (2, 3), (9, 15), (0, 15)]:
        pd.testing.assert_frame_equal(src(start, stop), kept.iloc[start:stop])
    # Sources that now yield other rows than the fit read: fewer or more rows in all, ...
    short = SourceRows(_batches(batches[:3]), ["a"], len(kept), len(df), design_nan)
    with pytest.raises(ml.DataError, match="holds 13 rows, the fit read 20"):
        short(0, 15)
    longer = SourceRows(_batches([*batches, df.iloc[:3]]), ["a"], len(kept), len(df), design_nan)
    with pytest.raises(ml.DataError, match="holds 23 rows, the fit read 20"):
        longer(10, 15)
    # ... as many rows, but more or fewer of them without missing values.
    gap = df.copy()
    gap.loc[19, "a"] = np.nan
    src = SourceRows(_batches([gap]), ["a"], len(kept), len(df), design_nan)
    with pytest.raises(ml.DataError, match="fewer than the 15 rows kept"):
        src(0, 15)
    filled = df.copy()
    filled.loc[15, "a"] = 1.0
    src = SourceRows(_batches([filled]), ["a"], len(kept), len(df), design_nan)
    with pytest.raises(ml.DataError, match="more than the 15 rows kept"):
        src(10, 15)
    moved = df.copy()
    moved.loc[5, "a"] = np.nan  # a row dropped for its design now misses a value
    src = SourceRows(_batches([moved]), ["a"], len(kept), len(df), design_nan)
    with pytest.raises(ml.DataError, match="now misses a value"):
        src(0, 3)


# -- progress bars ------------------------------------------------------------------------------


def test_progress_of_parquet_margins(data, tmp_path, capsys, monkeypatch):
    path = _write(data.head(900), tmp_path, cuts=(0, 400, None))
    res = ml.mnlogit(FORMULA, ml.parquet(path, batch_rows=200), ref="a", missing="drop").fit()
    capsys.readouterr()
    monkeypatch.setenv("MULTILOGIT_PROGRESS", "1")
    res.get_margeff()
    err = capsys.readouterr().err
    n = res.model.n_rows
    assert f"multilogit: marginal effects {BAR} {n:,}/{n:,} rows" in err
    # The variables' kinds come from statistics kept while streaming: the files are read once.
    assert "marginal effects, variables" not in err
    monkeypatch.setenv("MULTILOGIT_PROGRESS", "0")
    res.get_margeff()
    assert capsys.readouterr().err == ""


def test_progress_of_dask_passes_threaded(data, capsys, monkeypatch):
    df = data.head(1200).dropna()
    df = df[df.x2 > 0]
    ref = _in_memory(FORMULA, df, ref="a")
    monkeypatch.setenv("MULTILOGIT_PROGRESS", "1")
    with dask.config.set(scheduler="threads"):
        res = ml.mnlogit(FORMULA, dd.from_pandas(df, npartitions=4), ref="a").fit()
        err = capsys.readouterr().err
        assert f"multilogit: preliminary pass {BAR} 4/4 partitions" in err
        shown = res.get_margeff()
        err = capsys.readouterr().err
        assert f"multilogit: marginal effects {BAR} 4/4 partitions" in err
        monkeypatch.setenv("MULTILOGIT_PROGRESS", "0")
        quiet = res.get_margeff()
        assert capsys.readouterr().err == ""
    # Partitions finish in any order; the partial sums are still added in partition order.
    np.testing.assert_array_equal(shown.margeff, quiet.margeff)
    np.testing.assert_array_equal(shown.margeff_se, quiet.margeff_se)
    _same(shown, ref.get_margeff())


def test_progress_of_dask_margins_on_a_cluster(data, local_cluster, capsys, monkeypatch):
    df = data.head(1200).dropna()
    df = df[df.x2 > 0]
    ref = _in_memory(FORMULA, df, ref="a")
    # Fitted on threads (quicker: every Newton iteration is a round of tasks); the margins
    # run on the cluster, whose futures finish in any order.
    with dask.config.set(scheduler="threads"):
        res = ml.mnlogit(FORMULA, dd.from_pandas(df, npartitions=3), ref="a").fit()
    with distributed.Client(local_cluster, set_as_default=False) as client:
        with dask.config.set(scheduler=client):
            quiet = res.get_margeff()
            capsys.readouterr()
            monkeypatch.setenv("MULTILOGIT_PROGRESS", "1")
            shown = res.get_margeff()
    err = capsys.readouterr().err
    assert f"multilogit: marginal effects {BAR} 3/3 partitions" in err
    np.testing.assert_array_equal(shown.margeff, quiet.margeff)
    np.testing.assert_array_equal(shown.margeff_se, quiet.margeff_se)
    _same(shown, ref.get_margeff())
