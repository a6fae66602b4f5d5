"""Weights and cluster ids given as pandas Series are lined up with the data by index label.

The reference is the same fit with the side variable given in the data's own row order: a
shuffled Series must give exactly the same estimates and standard errors, and a Series whose
labels do not match the data must raise instead of being used by position.
"""

import numpy as np
import pandas as pd
import pytest

import multilogit as ml

FORMULA = "prog ~ ses + write"


@pytest.fixture(scope="module")
def hsb():
    df = ml.datasets.load("hsbdemo")
    # Labels that differ from positions, so that a positional match cannot pass by accident.
    return df.set_axis(pd.Index([f"s{i:03d}" for i in df["id"]]), axis=0)


@pytest.fixture(scope="module")
def side(hsb):
    rng = np.random.default_rng(3)
    return pd.DataFrame(
        {
            "f": rng.integers(1, 4, len(hsb)).astype(float),
            "w": rng.uniform(0.5, 2.0, len(hsb)),
            "g": rng.integers(0, 12, len(hsb)),
        },
        index=hsb.index,
    )


@pytest.fixture(scope="module")
def order(hsb):
    return np.random.default_rng(5).permutation(len(hsb))


def _assert_same(a, b):
    np.testing.assert_array_equal(a.params.to_numpy(), b.params.to_numpy())
    np.testing.assert_array_equal(a.bse.to_numpy(), b.bse.to_numpy())


@pytest.mark.parametrize("kw", ["freq_weights", "weights"])
def test_shuffled_weights_give_the_same_fit(hsb, side, order, kw):
    col = {"freq_weights": "f", "weights": "w"}[kw]
    ordered = ml.mnlogit(FORMULA, hsb, **{kw: side[col].to_numpy()}).fit()
    shuffled = ml.mnlogit(FORMULA, hsb, **{kw: side[col].iloc[order]}).fit()
    _assert_same(shuffled, ordered)
    # A positional use of the shuffled values gives other estimates: the check has teeth.
    wrong = ml.mnlogit(FORMULA, hsb, **{kw: side[col].iloc[order].to_numpy()}).fit()
    assert not np.allclose(wrong.params.to_numpy(), ordered.params.to_numpy())
    # A one-column DataFrame is lined up the same way.
    frame = ml.mnlogit(FORMULA, hsb, **{kw: side[[col]].iloc[order]}).fit()
    _assert_same(frame, ordered)


def test_shuffled_cluster_groups_give_the_same_covariance(hsb, side, order):
    m = ml.mnlogit(FORMULA, hsb)
    ordered = m.fit(cov_type="cluster", cov_kwds={"groups": side["g"].to_numpy()})
    shuffled = m.fit(cov_type="cluster", cov_kwds={"groups": side["g"].iloc[order]})
    _assert_same(shuffled, ordered)
    wrong = m.fit(cov_type="cluster", cov_kwds={"groups": side["g"].iloc[order].to_numpy()})
    assert not np.allclose(wrong.bse.to_numpy(), ordered.bse.to_numpy())
    robust = m.fit().get_robustcov_results("cluster", groups=side["g"].iloc[order])
    _assert_same(robust, ordered)


def test_array_api_with_pandas_data_aligns(hsb, side, order):
    X = pd.DataFrame({"const": 1.0, "write": hsb["write"].astype(float)}, index=hsb.index)
    ref = ml.MultinomialLogit(hsb["prog"], X, freq_weights=side["f"].to_numpy()).fit()
    res = ml.MultinomialLogit(hsb["prog"], X, freq_weights=side["f"].iloc[order]).fit()
    _assert_same(res, ref)
    # The outcome alone may carry the labels.
    res = ml.MultinomialLogit(hsb["prog"], X.to_numpy(), freq_weights=side["f"].iloc[order])
    _assert_same(res.fit(), ref)


def test_mismatched_labels_raise(hsb, side):
    f = side["f"]
    cases = {
        r"3 of the 200 data's rows have no value \(e\.g\. label 's": f.iloc[3:],
        r"2 label\(s\) are not in the data \(e\.g\. 'zz1'\)": pd.concat(
            [f, pd.Series([1.0, 1.0], index=["zz1", "zz2"])]
        ),
        r"200 of the 200 data's rows have no value.*200 label\(s\) are not in the data": (
            f.reset_index(drop=True)
        ),
        r"repeats 1 label\(s\)": pd.concat([f, f.iloc[:1]]),
    }
    for msg, values in cases.items():
        with pytest.raises(ml.DataError, match=msg):
            ml.mnlogit(FORMULA, hsb, freq_weights=values)
        with pytest.raises(ml.DataError, match="groups: the Series index"):
            ml.mnlogit(FORMULA, hsb).fit(cov_type="cluster", cov_kwds={"groups": values})
    with pytest.raises(ml.DataError, match="to match rows by position"):
        ml.mnlogit(FORMULA, hsb, weights=side["w"].reset_index(drop=True))


def test_repeated_data_index(hsb, side):
    # A Series with exactly the data's (repeated) index matches by position; any other raises.
    df = hsb.set_axis(np.repeat(np.arange(100), 2), axis=0)
    f = side["f"].set_axis(df.index)
    ref = ml.mnlogit(FORMULA, hsb, freq_weights=side["f"].to_numpy()).fit()
    _assert_same(ml.mnlogit(FORMULA, df, freq_weights=f).fit(), ref)
    with pytest.raises(ml.DataError, match="data's index is not unique"):
        ml.mnlogit(FORMULA, df, freq_weights=f.set_axis(np.arange(200)))


def test_arrays_stay_positional(hsb, side):
    f = side["f"].to_numpy()
    ref = ml.mnlogit(FORMULA, hsb.reset_index(drop=True), freq_weights=f).fit()
    for values in (f, list(f), f[:, None]):
        _assert_same(ml.mnlogit(FORMULA, hsb, freq_weights=values).fit(), ref)
    # With plain-array data a Series has no labels to match and is used by position.
    m = ml.mnlogit(FORMULA, hsb)
    arr = ml.MultinomialLogit(m.level_codes, m.exog, freq_weights=side["f"].iloc[::-1]).fit()
    rev = ml.MultinomialLogit(m.level_codes, m.exog, freq_weights=f[::-1]).fit()
    _assert_same(arr, rev)
    with pytest.raises(ml.DataError, match="has 199 values; expected 200"):
        ml.mnlogit(FORMULA, hsb, freq_weights=f[1:])


def test_missing_drop_with_aligned_series(hsb, side, order):
    df = hsb.assign(write=hsb["write"].astype(float))
    gone = df.index[[0, 10, 77]]
    df.loc[gone, "write"] = np.nan
    kept = df.drop(index=gone)
    ref = ml.mnlogit(FORMULA, kept, freq_weights=side["f"].drop(index=gone).to_numpy()).fit()
    cluster = {"cov_type": "cluster", "cov_kwds": {"groups": side["g"].drop(index=gone)}}
    ref_cl = ml.mnlogit(FORMULA, kept, freq_weights=side["f"].drop(index=gone).to_numpy())
    ref_cl = ref_cl.fit(**cluster)
    shuffled = side.iloc[order]
    for f in (
        shuffled["f"],  # every row of the data, shuffled
        shuffled["f"].drop(index=gone),  # the rows kept only, shuffled
        shuffled["f"].drop(index=gone[:1]),  # some of the dropped rows
    ):
        m = ml.mnlogit(FORMULA, df, missing="drop", freq_weights=f)
        _assert_same(m.fit(), ref)
        res = m.fit(cov_type="cluster", cov_kwds={"groups": shuffled["g"]})
        _assert_same(res, ref_cl)
    # A row kept without a value is an error even when dropped rows may be absent.
    with pytest.raises(ml.DataError, match=r"1 of the 197 rows kept have no value"):
        ml.mnlogit(FORMULA, df, missing="drop", freq_weights=shuffled["f"].drop(index=df.index[5]))
