"""pandas' nullable dtypes (``Int64``, ``Float64``, ``boolean``) give the same model as their
NumPy twins, in memory, on Dask and from Parquet; before, patsy failed on them with a TypeError
from NumPy."""

import numpy as np
import pandas as pd
import pytest

import multilogit as ml

FORMULA = "y ~ bb + C(xi) + xf"


def _frames(n=600, seed=1):
    rng = np.random.default_rng(seed)
    nullable = pd.DataFrame(
        {
            "xi": pd.array(rng.integers(0, 4, n), dtype="Int64"),
            "xf": pd.array(rng.normal(size=n), dtype="Float64"),
            "bb": pd.array(rng.random(n) < 0.5, dtype="boolean"),
            "y": rng.choice(["u", "v", "w"], n),
        }
    )
    plain = nullable.astype({"xi": "int64", "xf": "float64", "bb": "bool"})
    return nullable, plain


def _same(a, b):
    assert list(a.params.index) == list(b.params.index)
    np.testing.assert_allclose(a.params, b.params, rtol=1e-10, atol=0)
    np.testing.assert_allclose(a.bse, b.bse, rtol=1e-10, atol=0)


def test_in_memory_fit_predictions_and_effects_equal_numpy_dtypes():
    nullable, plain = _frames()
    a, b = ml.mnlogit(FORMULA, nullable).fit(), ml.mnlogit(FORMULA, plain).fit()
    np.testing.assert_array_equal(a.params, b.params)
    np.testing.assert_array_equal(a.predict(nullable.head(7)), b.predict(plain.head(7)))
    for at in ("overall", "mean"):
        np.testing.assert_allclose(
            a.get_margeff(at=at).margeff, b.get_margeff(at=at).margeff, rtol=1e-12
        )


def test_missing_nullable_values_are_counted_dropped_or_refused():
    nullable, plain = _frames()
    nullable.loc[[3, 9], "xi"] = pd.NA
    nullable.loc[5, "bb"] = pd.NA
    with pytest.raises(ml.DataError, match=r"3 of 600 rows .* 'xi' \(2\), 'bb' \(1\)"):
        ml.mnlogit(FORMULA, nullable)
    res = ml.mnlogit(FORMULA, nullable, missing="drop").fit()
    assert res.model.n_dropped == 3
    _same(res, ml.mnlogit(FORMULA, plain.drop(index=[3, 5, 9])).fit())


def test_dask_and_parquet_equal_numpy_dtypes(tmp_path):
    dask = pytest.importorskip("dask")
    dd = pytest.importorskip("dask.dataframe")
    nullable, plain = _frames()
    ref = ml.mnlogit(FORMULA, plain).fit()
    with dask.config.set(scheduler="threads"):
        _same(ml.mnlogit(FORMULA, dd.from_pandas(nullable, npartitions=3)).fit(), ref)
    nullable.to_parquet(tmp_path / "n.parquet")
    res = ml.mnlogit(FORMULA, ml.parquet(tmp_path)).fit()
    _same(res, ref)
    np.testing.assert_allclose(res.get_margeff().margeff, ref.get_margeff().margeff, rtol=1e-10)
