"""The single streaming pass: a design that does not depend on the whole data (numeric factors,
no stateful transform) is scanned and spilled in one pass over the source, its outcome and
cluster levels found on the way.  Each test compares with the in-memory fit of the same rows
(bitwise: the same design, codes and weights summed in the same order) and counts the passes."""

import numpy as np
import pandas as pd
import patsy
import pytest

import multilogit as ml
from multilogit.data.stream import stream_design
from multilogit.exceptions import DataError


class Chunks:
    """``df`` in chunks of ``size`` rows, counting the passes over them and the rows read."""

    def __init__(self, df, size):
        self.df, self.size, self.passes, self.rows = df, size, 0, 0

    def __call__(self):
        self.passes += 1
        for a in range(0, len(self.df), self.size):
            chunk = self.df.iloc[a : a + self.size]
            self.rows += len(chunk)
            yield chunk


def _late_levels(n=600, seed=5):
    """An outcome whose smallest level (and the level after it) first appear in the last
    third of the rows; a cluster column whose levels arrive unsorted over the chunks."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    u = rng.random(n)
    y = np.where(u < 0.4, 3, np.where(u < 0.7, 5, np.where(u < 0.85, 1, 2)))
    y[: 2 * n // 3][np.isin(y[: 2 * n // 3], (1, 2))] = 5
    g = np.array(["m", "k"])[rng.integers(0, 2, n)]
    g[n // 2 :] = np.array(["z", "a", "m"])[rng.integers(0, 3, n - n // 2)]
    return pd.DataFrame({"y": y, "x1": x1, "x2": x2, "g": g, "f": rng.integers(1, 4, n) * 1.0})


def test_one_pass_codes_levels_first_seen_late_as_in_memory():
    df = _late_levels()
    src = Chunks(df, 70)
    sd = stream_design("y ~ x1 + np.exp(x2 / 2)", src, groups="g", chunk_rows=100)
    assert src.passes == 1 and src.rows == len(df)
    assert sd.outcome.levels == (1, 2, 3, 5) and sd.outcome.ref == 1
    np.testing.assert_array_equal(sd.outcome_counts, df.y.value_counts().sort_index())
    be = sd.backend
    r = be.read_rows(0, be.n)
    np.testing.assert_array_equal(r.X, patsy.dmatrix("x1 + np.exp(x2 / 2)", df))
    level = pd.Index([1, 2, 3, 5]).get_indexer(df.y)
    np.testing.assert_array_equal(r.y, level - 1)  # the reference, level 1, codes -1
    assert list(sd.group_levels["g"]) == ["a", "k", "m", "z"]
    np.testing.assert_array_equal(
        be.read_column("g", 0, be.n), pd.Index(["a", "k", "m", "z"]).get_indexer(df.g)
    )
    be.close()


@pytest.mark.parametrize("ref", [None, 2, 5])
def test_one_pass_fit_is_bitwise_the_in_memory_fit(tmp_path, ref):
    df = _late_levels()
    for k, (a, b) in enumerate([(0, 250), (250, 400), (400, 600)]):
        df.iloc[a:b].to_parquet(tmp_path / f"p{k}.parquet", row_group_size=60)
    formula = "y ~ x1 + x2 + I(x1 * x2)"
    mem = ml.mnlogit(formula, df, ref=ref, freq_weights="f").fit()
    res = ml.mnlogit(formula, ml.parquet(tmp_path, batch_rows=45), ref=ref, freq_weights="f",
                     groups="g").fit()  # fmt: skip
    np.testing.assert_array_equal(res.params, mem.params)
    np.testing.assert_array_equal(res.bse, mem.bse)
    assert list(res.params.columns) == list(mem.params.columns)
    # Cluster codes rewritten after the pass: the cluster-robust errors of the in-memory fit
    # (equal to rounding: the cluster scores are summed in another order).
    np.testing.assert_allclose(
        res.get_robustcov_results("cluster", groups="g").bse,
        mem.get_robustcov_results("cluster", groups=df.g).bse,
        rtol=1e-12,
    )


def test_one_pass_drops_missing_values_and_nan_designs_as_in_memory(tmp_path):
    df = _late_levels(seed=7).assign(x2=lambda d: d.x2.abs())
    df.loc[[3, 250, 251, 599], "x1"] = np.nan
    df.loc[[250, 420], "y"] = np.nan  # a float outcome with missing values
    df.loc[[10, 500], "x2"] = -3.0  # log(x2 + 2) of a negative: a NaN design row
    df.to_parquet(tmp_path / "m.parquet", row_group_size=100)
    formula = "y ~ x1 + np.log(x2 + 2)"
    mem = ml.mnlogit(formula, df, missing="drop").fit()
    src = ml.parquet(tmp_path, batch_rows=64)
    model = ml.mnlogit(formula, src, missing="drop")
    res = model.fit()
    assert res.nobs == mem.nobs == len(df) - 7
    np.testing.assert_array_equal(res.params, mem.params)
    np.testing.assert_array_equal(res.bse, mem.bse)
    # Rows read again from the files (marginal effects) pair with the rows kept.
    np.testing.assert_allclose(
        res.get_margeff().margeff, mem.get_margeff().margeff, rtol=1e-10, atol=1e-14
    )
    with pytest.raises(DataError, match=r"5 of 600 rows have missing values in column\(s\) "
                       r"'y' \(2\), 'x1' \(4\)"):  # fmt: skip
        ml.mnlogit(formula, src)


def test_one_pass_raises_the_scans_errors_before_the_designs():
    df = _late_levels()
    df.loc[590, "x1"] = np.nan
    # The first chunk's design fails (it depends on other rows); two passes would have raised
    # the missing value, found by the preliminary pass, first: so does the single pass.
    src = Chunks(df, 100)
    with pytest.raises(DataError, match="1 of 600 rows have missing values"):
        stream_design("y ~ x1 + I(x2 - x2.mean())", src)
    with pytest.raises(DataError, match="depend on other rows"):
        stream_design("y ~ x1 + I(x2 - x2.mean())", src, missing="drop")
    bad = df.assign(f=np.where(np.arange(len(df)) == 550, -1.0, df.f))
    with pytest.raises(DataError, match=r"negative weights in column\(s\) 'f' \(1\)"):
        stream_design("y ~ x1 + I(x2 - x2.mean())", Chunks(bad, 100), freq_weights="f",
                      missing="drop")  # fmt: skip
    with pytest.raises(DataError, match="'zz'"):
        stream_design("y ~ x1 + I(x2 - x2.mean())", Chunks(df, 100), ref="zz", missing="drop")


def test_two_passes_where_the_design_needs_the_whole_data():
    df = _late_levels().assign(c=lambda d: np.where(d.x1 > 0, "p", "n"))
    # A categorical factor shows in the first chunk: the single pass stops there.
    for formula, rows in [("y ~ x1", 600), ("y ~ C(c) + x1", 1280), ("y ~ center(x1)", 1200)]:
        src = Chunks(df, 80)
        sd = stream_design(formula, src)
        assert src.rows == rows, formula
        X = patsy.dmatrix(formula.split("~")[1], df)
        np.testing.assert_allclose(sd.backend.read_rows(0, len(df)).X, X, rtol=1e-15)
        sd.backend.close()
    # A boolean outcome (its values are no numbers or strings): two passes after a first chunk.
    src = Chunks(df.assign(y=df.y > 2), 80)
    sd = stream_design("y ~ x1", src)
    assert src.rows == 1280 and sd.outcome.levels == (False, True)
    np.testing.assert_array_equal(sd.backend.read_rows(0, len(df)).y, np.where(df.y > 2, 0, -1))
    # A categorical outcome: its levels are its categories, found by a pass of their own.
    cat = df.assign(y=pd.Categorical(df.y, categories=[5, 3, 2, 1]))
    src = Chunks(cat, 80)
    sd = stream_design("y ~ x1", src)
    assert src.rows == 1280 and sd.outcome.levels == (5, 3, 2, 1)


def _summary_twin(summary, values):
    """The column summary with plain NumPy: whether all values are integers, min and max."""
    v = np.asarray(values, dtype=np.float64)
    if not v.size:
        return summary
    with np.errstate(invalid="ignore"):
        integers = summary[0] and bool(np.all(v % 1.0 == 0))
    return integers, min(summary[1], v.min()), max(summary[2], v.max())


@pytest.mark.parametrize(
    "values",
    [
        np.random.default_rng(0).normal(size=300),
        np.random.default_rng(0).integers(-5, 5, 300),
        np.arange(7, dtype=np.int32),
        np.array([1.0, 2.0, np.inf]),
        np.array([1.0, np.nan, 3.0]),
        np.array([4.0, -2.0, 1e300]),
        np.array([], dtype=float),
        np.array([True, False]),
        np.array([2**62 + 1, 3], dtype=np.uint64),
    ],
)
@pytest.mark.parametrize("before", [(True, np.inf, -np.inf), (False, -1.0, 1.0), (True, 0.5, 9.0)])
def test_column_summary_kernel_matches_numpy(values, before):
    from multilogit.data.source_rows import fold_summary

    got, want = fold_summary(before, values), _summary_twin(before, values)
    assert got[0] == want[0]
    np.testing.assert_array_equal(got[1:], want[1:])


def test_column_summaries_over_the_rows_kept():
    # x1 whole numbers in the first chunks only, x2 used only inside a transform, k integers;
    # rows dropped for a missing value or a NaN design are left out of the summaries.
    df = _late_levels().assign(k=lambda d: np.arange(len(d)) % 7 - 3)
    df["x1"] = np.where(np.arange(len(df)) < 150, np.round(df.x1 * 3), df.x1)
    df.loc[[20, 400, 550, 560], "x1"] = [np.nan, 99.0, 50.5, -40.25]  # extremes come late
    df.loc[400, "x2"] = -5.0  # log(x2 + 4) is NaN: the row with x1 = 99 is dropped
    sd = stream_design("y ~ x1 + np.log(x2 + 4) + k", Chunks(df, 70), missing="drop")
    kept = df.drop(index=[20, 400])
    kept = kept[np.isfinite(np.log(kept.x2 + 4))]
    assert sd.n_dropped == len(df) - len(kept)
    for c in ("y", "x1", "x2", "k"):
        got, want = sd.column_stats[c], _summary_twin((True, np.inf, -np.inf), kept[c])
        assert got[0] == want[0], c
        assert (got[1], got[2]) == (want[1], want[2]), c
