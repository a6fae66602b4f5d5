"""Models on data larger than memory: a Dask DataFrame (on a real LocalCluster and on the
threaded scheduler) and a Parquet dataset written here, streamed.  Every number equals the
in-memory fit of the same rows: estimates, standard errors of every covariance type,
likelihoods, marginal effects and predictions."""

import numpy as np
import pandas as pd
import pytest

import multilogit as ml

dask = pytest.importorskip("dask")
dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

RTOL = 1e-10


def _synthetic(n=100_000, seed=3):
    rng = np.random.default_rng(seed)
    region = rng.choice(["north", "south", "east", "west"], n)
    dist = rng.gamma(2.0, 3.0, n)
    fare = rng.lognormal(1.0, 0.4, n)
    eta = np.column_stack(
        [
            0.3 - 0.05 * dist + 0.4 * (region == "north"),
            -0.2 + 0.02 * dist - 0.3 * np.log(fare),
            0.1 * (region == "west") - 0.1 * np.log(fare),
        ]
    )
    p = np.exp(np.column_stack([np.zeros(n), eta]))
    p /= p.sum(axis=1, keepdims=True)
    u = rng.random(n)[:, None]
    mode = np.array(["car", "bus", "bike", "walk"])[(u > np.cumsum(p, axis=1)).sum(axis=1)]
    return pd.DataFrame(
        {
            "mode": mode,
            "region": region,
            "dist": dist,
            "fare": fare,
            "fw": rng.integers(1, 4, n).astype(float),
            "cid": rng.integers(0, 300, n) // 7 * 7,  # clusters spanning partitions
        }
    )


SYN_FORMULA = "mode ~ C(region) + dist + np.log(fare)"
HSB_FORMULA = "prog ~ ses + write"


def _close(a, b, rtol=RTOL):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=0)


def _assert_same_fit(res, ref, margins=True):
    assert res.converged
    _close(res.params, ref.params)
    _close(res.bse, ref.bse)
    assert res.llf == pytest.approx(ref.llf, rel=1e-12)
    assert res.llnull == pytest.approx(ref.llnull, rel=1e-12)
    assert res.nobs == ref.nobs and res.df_model == ref.df_model
    if margins:
        me, mr = res.get_margeff(), ref.get_margeff()
        _close(me.margeff, mr.margeff, rtol=1e-9)
        _close(me.margeff_se, mr.margeff_se, rtol=1e-9)


@pytest.fixture(scope="module")
def cluster(local_cluster):
    with distributed.Client(local_cluster) as client:
        yield client


@pytest.fixture(scope="module")
def hsb(hsbdemo):
    return hsbdemo


@pytest.fixture(scope="module")
def syn():
    return _synthetic()


# -- Dask --------------------------------------------------------------------------------------


@pytest.mark.parametrize("nparts", [1, 3, 7])
def test_dask_hsbdemo_on_a_local_cluster(cluster, hsb, nparts):
    ref = ml.mnlogit(HSB_FORMULA, hsb, ref="academic").fit()
    ddf = dd.from_pandas(hsb, npartitions=nparts)
    res = ml.mnlogit(HSB_FORMULA, ddf, ref="academic").fit()
    _assert_same_fit(res, ref)
    for cov in ("HC0", "HC1"):
        _close(res.get_robustcov_results(cov).bse, ref.get_robustcov_results(cov).bse)
    _close(
        res.get_robustcov_results("cluster", groups="cid").bse,
        ref.get_robustcov_results("cluster", groups="cid").bse,
    )
    pred = res.predict()
    assert isinstance(pred, dd.DataFrame)
    pd.testing.assert_frame_equal(pred.compute(), ref.predict(), check_exact=False, rtol=1e-12)
    new = res.predict(dd.from_pandas(hsb.head(20), npartitions=2), which="class")
    assert isinstance(new, dd.Series)
    pd.testing.assert_series_equal(new.compute(), ref.predict(hsb.head(20), which="class"))


@pytest.mark.parametrize("nparts", [1, 3, 7])
def test_dask_synthetic_threaded(syn, nparts):
    ref = ml.mnlogit(SYN_FORMULA, syn, ref="car", freq_weights="fw").fit()
    with dask.config.set(scheduler="threads"):
        ddf = dd.from_pandas(syn, npartitions=nparts)
        res = ml.mnlogit(SYN_FORMULA, ddf, ref="car", freq_weights="fw").fit()
        _assert_same_fit(res, ref, margins=nparts == 3)
        _close(
            res.get_robustcov_results("cluster", groups="cid").bse,
            ref.get_robustcov_results("cluster", groups="cid").bse,
        )
        wt = res.wald_test_terms()
        pd.testing.assert_frame_equal(wt, ref.wald_test_terms(), check_exact=False, rtol=1e-9)


def test_dask_level_missing_from_partitions(hsb):
    # Sorted by ses: each partition holds one level only, yet all are coded as in memory.
    data = hsb.sort_values("ses").reset_index(drop=True)
    ref = ml.mnlogit(HSB_FORMULA, data, ref="academic").fit()
    with dask.config.set(scheduler="threads"):
        res = ml.mnlogit(HSB_FORMULA, dd.from_pandas(data, npartitions=3), ref="academic").fit()
        assert res.params.index.tolist() == ref.params.index.tolist()
        _assert_same_fit(res, ref, margins=False)


def test_dask_missing_drop(hsb):
    data = hsb.copy()
    data.loc[[3, 50, 120], "write"] = np.nan
    ref = ml.mnlogit(HSB_FORMULA, data, ref="academic", missing="drop").fit()
    with dask.config.set(scheduler="threads"):
        ddf = dd.from_pandas(data, npartitions=3)
        res = ml.mnlogit(HSB_FORMULA, ddf, ref="academic", missing="drop").fit()
        assert res.model.n_dropped == 3
        _assert_same_fit(res, ref, margins=False)
        with pytest.raises(ml.DataError, match="write"):
            ml.mnlogit(HSB_FORMULA, ddf, ref="academic")


def test_dask_model_holds_no_rows(hsb):
    with dask.config.set(scheduler="threads"):
        model = ml.mnlogit(HSB_FORMULA, dd.from_pandas(hsb, npartitions=2), ref="academic")
        assert not model.is_in_memory
        with pytest.raises(ml.DataError, match="not in memory"):
            model.exog  # noqa: B018


# -- Parquet -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def syn_parquet(tmp_path_factory, syn):
    path = tmp_path_factory.mktemp("trips")
    cuts = [0, 30_000, 31_000, 70_000, 100_000]
    for k, (a, b) in enumerate(zip(cuts[:-1], cuts[1:], strict=True)):
        syn.iloc[a:b].to_parquet(path / f"part-{k}.parquet", row_group_size=7_000)
    return path


def test_parquet_synthetic(syn, syn_parquet):
    ref = ml.mnlogit(SYN_FORMULA, syn, ref="car", freq_weights="fw").fit()
    src = ml.parquet(syn_parquet, batch_rows=9_000)
    res = ml.mnlogit(SYN_FORMULA, src, ref="car", freq_weights="fw", groups="cid").fit()
    _assert_same_fit(res, ref, margins=False)
    for cov in ("HC0", "HC1"):
        _close(res.get_robustcov_results(cov).bse, ref.get_robustcov_results(cov).bse)
    _close(
        res.get_robustcov_results("cluster", groups="cid").bse,
        ref.get_robustcov_results("cluster", groups="cid").bse,
    )
    pd.testing.assert_frame_equal(
        res.predict(syn.head(50)), ref.predict(syn.head(50)), check_exact=False, rtol=1e-12
    )
    np.testing.assert_allclose(res.predict().to_numpy(), ref.predict().to_numpy(), rtol=1e-12)
    assert "Dep. Variable" in str(res.summary())


def test_parquet_hsbdemo_is_bitwise_the_in_memory_fit(hsb, tmp_path):
    for k, (a, b) in enumerate([(0, 70), (70, 140), (140, 200)]):
        hsb.iloc[a:b].to_parquet(tmp_path / f"p{k}.parquet", row_group_size=25)
    ref = ml.mnlogit(HSB_FORMULA, hsb, ref="academic").fit()
    res = ml.mnlogit(HSB_FORMULA, ml.parquet(tmp_path), ref="academic").fit()
    np.testing.assert_array_equal(res.params, ref.params)
    np.testing.assert_array_equal(res.bse, ref.bse)


def test_parquet_errors(hsb, tmp_path):
    hsb.to_parquet(tmp_path / "h.parquet")
    src = ml.parquet(tmp_path)
    res = ml.mnlogit(HSB_FORMULA, src, ref="academic").fit()
    with pytest.raises(ml.DataError, match="groups="):
        res.get_robustcov_results("cluster", groups="cid")
    with pytest.raises(ml.DataError, match="not in memory"):
        res.save(tmp_path / "r.npz", include_data=True)
    # Without the data, a fit on streamed rows saves and loads like any other.
    res.save(tmp_path / "r.npz")
    back = ml.load(tmp_path / "r.npz")
    np.testing.assert_array_equal(back.params, res.params)
    np.testing.assert_array_equal(back.bse, res.bse)
    assert back.nobs == res.nobs == 200
    with pytest.raises(ml.DataError, match="'nosuch', which is not a column of the data"):
        ml.mnlogit("prog ~ nosuch", src)
    with pytest.raises(ValueError, match="groups="):
        ml.mnlogit(HSB_FORMULA, hsb, groups="cid")


def test_sampling_weights_on_both_sources(hsb, tmp_path):
    data = hsb.assign(pw=1.0 + (np.arange(len(hsb)) % 4) / 2.0)
    ref = ml.mnlogit(HSB_FORMULA, data, ref="academic", weights="pw").fit()
    assert ref.cov_type == "HC1"
    data.to_parquet(tmp_path / "w.parquet", row_group_size=60)
    res = ml.mnlogit(HSB_FORMULA, ml.parquet(tmp_path), ref="academic", weights="pw").fit()
    assert res.cov_type == "HC1"
    _assert_same_fit(res, ref, margins=False)
    with dask.config.set(scheduler="threads"):
        ddf = dd.from_pandas(data, npartitions=3)
        res = ml.mnlogit(HSB_FORMULA, ddf, ref="academic", weights="pw").fit()
        assert res.cov_type == "HC1"
        _assert_same_fit(res, ref)


def test_repivot_on_both_sources(hsb, tmp_path):
    """Another reference outcome without refitting: the backend recodes the outcome as it reads
    the rows, so covariances computed afterwards use the new coding."""
    ref = ml.mnlogit(HSB_FORMULA, hsb, ref="academic").fit().repivot("vocation")
    hsb.to_parquet(tmp_path / "h.parquet", row_group_size=60)
    with dask.config.set(scheduler="threads"):
        sources = [ml.parquet(tmp_path), dd.from_pandas(hsb, npartitions=3)]
        for src in sources:
            res = ml.mnlogit(HSB_FORMULA, src, ref="academic").fit().repivot("vocation")
            assert res.ref == "vocation"
            _close(res.params, ref.params)
            _close(res.bse, ref.bse)
            _close(
                res.get_robustcov_results("HC0").bse,
                ref.get_robustcov_results("HC0").bse,
                rtol=1e-9,
            )


def test_array_model_on_dask_arrays():
    import dask.array as da

    rng = np.random.default_rng(1)
    n = 20_000
    X = np.column_stack([np.ones(n), rng.normal(size=(n, 2)), rng.integers(0, 2, n)])
    y = rng.choice(["a", "b", "c"], n)
    fw = rng.integers(1, 3, n).astype(float)
    ref = ml.MultinomialLogit(y, X, ref="b", freq_weights=fw).fit()
    with dask.config.set(scheduler="threads"):
        res = ml.MultinomialLogit(
            da.from_array(y, chunks=7_000),
            da.from_array(X, chunks=(7_000, 4)),
            ref="b",
            freq_weights=da.from_array(fw, chunks=7_000),
        ).fit()
        assert not res.model.is_in_memory
        _assert_same_fit(res, ref)
        pred = res.predict()
        assert isinstance(pred, dd.DataFrame)
        pd.testing.assert_frame_equal(pred.compute(), ref.predict(), check_exact=False, rtol=1e-12)
        g = rng.integers(0, 40, n)
        _close(
            res.get_robustcov_results("cluster", groups=da.from_array(g, chunks=5_000)).bse,
            ref.get_robustcov_results("cluster", groups=g).bse,
        )
        with pytest.raises(ml.DataError, match="missing or infinite"):
            Xbad = X.copy()
            Xbad[5, 1] = np.nan
            ml.MultinomialLogit(da.from_array(y, chunks=7_000), da.from_array(Xbad, chunks=7_000))


def test_progress_of_the_streaming_passes(hsb, tmp_path, capsys, monkeypatch):
    hsb.to_parquet(tmp_path / "h.parquet", row_group_size=50)
    monkeypatch.setenv("MULTILOGIT_PROGRESS", "1")
    ml.mnlogit(HSB_FORMULA, ml.parquet(tmp_path, batch_rows=50), ref="academic")
    err = capsys.readouterr().err
    assert "multilogit: preliminary pass [########################] 200/200 rows" in err
    assert "multilogit: design pass [" in err
    monkeypatch.setenv("MULTILOGIT_PROGRESS", "0")
    ml.mnlogit(HSB_FORMULA, ml.parquet(tmp_path, batch_rows=50), ref="academic")
    assert capsys.readouterr().err == ""


def test_likelihood_ratio_refits_on_both_sources(hsb, tmp_path):
    """Drop-one LR tests, the LR test for combining outcomes and the IIA test refit views of
    the same rows (other columns, outcomes merged or left out at weight zero)."""
    formula = "prog ~ ses + write + read"
    ref = ml.mnlogit(formula, hsb, ref="academic").fit()
    hsb.to_parquet(tmp_path / "h.parquet", row_group_size=60)
    with dask.config.set(scheduler="threads"):
        for src in (ml.parquet(tmp_path), dd.from_pandas(hsb, npartitions=3)):
            res = ml.mnlogit(formula, src, ref="academic").fit()
            pd.testing.assert_frame_equal(res.anova(), ref.anova(), check_exact=False, rtol=1e-8)
            a = res.test_combine("general", "vocation", method="lr")
            assert a.statistic == pytest.approx(
                ref.test_combine("general", "vocation", method="lr").statistic, rel=1e-8
            )
            for omit in ("general", "academic"):
                got, want = res.iia_test(omit), ref.iia_test(omit)
                assert got.statistic == pytest.approx(want.statistic, rel=1e-6, abs=1e-9)
                assert got.df == want.df


def test_row_level_results_on_both_sources(hsb, tmp_path):
    """Residuals, the confusion table and predictions with standard errors of the estimation
    rows: one pass through the backend, returned in memory by row position."""
    ref = ml.mnlogit(HSB_FORMULA, hsb, ref="academic").fit()
    hsb.to_parquet(tmp_path / "h.parquet", row_group_size=60)
    with dask.config.set(scheduler="threads"):
        for src in (ml.parquet(tmp_path), dd.from_pandas(hsb, npartitions=3)):
            res = ml.mnlogit(HSB_FORMULA, src, ref="academic").fit()
            pd.testing.assert_frame_equal(res.pred_table(), ref.pred_table())
            for name in ("resid_response", "resid_pearson"):
                got, want = getattr(res, name), getattr(ref, name)
                np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=1e-12)
                assert got.index.equals(pd.RangeIndex(len(hsb)))
            got = res.get_prediction().summary_frame()
            want = ref.get_prediction().summary_frame()
            np.testing.assert_allclose(
                got.select_dtypes("number").to_numpy(),
                want.select_dtypes("number").to_numpy(),
                rtol=1e-10,
            )


def test_cluster_column_of_a_dask_read_parquet_frame(tmp_path):
    # dask fuses the partitions of a column projected from read_parquet: the cluster codes
    # must still line up with the design blocks (to_dask_array(lengths=True) failed here).
    rng = np.random.default_rng(4)
    n = 4000
    df = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "cid": rng.integers(0, 60, n),
            "y": rng.choice(["a", "b", "c"], n),
            "fw": rng.integers(1, 4, n).astype(float),
        }
    )
    for k in range(4):
        df.iloc[k * 1000 : (k + 1) * 1000].to_parquet(tmp_path / f"p{k}.parquet")
    cluster = dict(cov_type="cluster", cov_kwds={"groups": df.cid})
    ref = ml.mnlogit("y ~ x", df, freq_weights="fw").fit(**cluster)
    ddf = dd.read_parquet(str(tmp_path))
    with dask.config.set(scheduler="threads"):
        res = ml.mnlogit("y ~ x", ddf, freq_weights="fw").fit(
            cov_type="cluster", cov_kwds={"groups": "cid"}
        )
        np.testing.assert_allclose(res.bse, ref.bse, rtol=1e-10)
        X = ddf[["x"]].assign(const=1.0)[["const", "x"]]
        arr = ml.MultinomialLogit(ddf["y"], X, freq_weights=ddf["fw"]).fit(
            cov_type="cluster", cov_kwds={"groups": ddf["cid"]}
        )
        np.testing.assert_allclose(arr.bse.to_numpy(), ref.bse.to_numpy(), rtol=1e-10)
