"""The streamed design builder against patsy's own build, bit for bit."""

import numpy as np
import pandas as pd
import patsy
import pytest

from multilogit.data.fastbuild import DesignBuilder
from multilogit.exceptions import DataError


def _frame(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "x1": rng.normal(size=n),
            "x2": rng.uniform(0.5, 3, size=n),
            "k": rng.integers(0, 5, size=n),
            "g": rng.choice(["north", "south", "east"], size=n),
            "h": pd.Categorical(rng.choice(["lo", "mid", "hi"], size=n), ["lo", "mid", "hi"]),
            "b": rng.random(n) < 0.4,
            "my col": rng.normal(size=n),
        }
    )


FORMULAS = [
    "x1 + x2",
    "0 + x1 + x2",
    "C(g) + x1",
    "0 + C(g) + x1",
    "C(g, Treatment('south')) + np.log(x2)",
    "C(g, Sum) + C(h, Helmert) + x1",
    "C(g):x1 + x2",
    "C(g) * C(h)",
    "C(g):C(h) + x1:x2",
    "h + g + k",
    "C(k) + b",
    "I(x1 ** 2) + center(x2) + standardize(x1)",
    "Q('my col') + x1:Q('my col')",
    "C(g, levels=['south', 'north', 'east']) + x1",
    "np.column_stack([x1, x2]) + g",
]


@pytest.mark.parametrize("formula", FORMULAS)
def test_batches_equal_patsy_bitwise_and_use_the_fast_path(formula):
    df = _frame()
    info = patsy.dmatrix(formula, df, NA_action=patsy.NAAction(NA_types=[])).design_info
    build = DesignBuilder(info, formula)
    for batch in (df.iloc[:1000], df.iloc[1000:1700], df.iloc[1700:]):
        X = build(batch)
        (ref,) = patsy.build_design_matrices([info], batch)
        assert X.flags.c_contiguous and X.dtype == np.float64
        np.testing.assert_array_equal(X, np.asarray(ref))
    # A formula this common must not quietly fall back to patsy's slow path.
    assert build.fast is True


def test_nan_from_a_transform_passes_through():
    df = _frame()
    df.loc[[3, 7], "x2"] = [-1.0, np.nan]
    info = patsy.dmatrix("np.log(x2) + x1", df.iloc[10:]).design_info
    build = DesignBuilder(info)
    build(df.iloc[10:])
    X = build(df.iloc[:10])
    assert build.fast
    assert np.isnan(X[[3, 7], 1]).all() and np.isfinite(np.delete(X, [3, 7], axis=0)).all()


def test_a_level_not_in_the_design_is_refused():
    df = _frame()
    info = patsy.dmatrix("C(g) + x1", df).design_info
    build = DesignBuilder(info, "y ~ C(g) + x1")
    build(df)
    bad = df.iloc[:5].copy()
    bad.loc[bad.index[2], "g"] = "west"
    with pytest.raises(DataError, match="west"):
        build(bad)


def test_a_missing_categorical_value_is_refused_not_coded():
    df = _frame()
    info = patsy.dmatrix("h + x1", df).design_info
    build = DesignBuilder(info)
    build(df)
    bad = df.iloc[:5].copy()
    bad["h"] = bad["h"].cat.set_categories(["lo", "mid", "hi"])
    bad.loc[bad.index[1], "h"] = np.nan
    with pytest.raises(DataError, match="missing"):
        build(bad)


def test_a_fast_path_that_disagrees_with_patsy_is_dropped(monkeypatch):
    df = _frame()
    info = patsy.dmatrix("C(g) + x1", df).design_info
    build = DesignBuilder(info)
    real = DesignBuilder._fast

    def off_by_one_ulp(self, batch):
        X = real(self, batch)
        X[0, -1] = np.nextafter(X[0, -1], np.inf)
        return X

    monkeypatch.setattr(DesignBuilder, "_fast", off_by_one_ulp)
    first = build(df.iloc[:500])
    later = build(df.iloc[500:])
    assert build.fast is False
    for X, rows in ((first, df.iloc[:500]), (later, df.iloc[500:])):
        (ref,) = patsy.build_design_matrices([info], rows)
        np.testing.assert_array_equal(X, np.asarray(ref))


def test_a_later_batch_of_another_dtype_is_built_or_refused_clearly():
    # A column that changes dtype between batches (all missing in one file, say) gets the
    # design of its values or a DataError, never a raw error from inside pandas or patsy.
    df = _frame()
    info = patsy.dmatrix("x1 + C(g)", df).design_info
    build = DesignBuilder(info, "y ~ x1 + C(g)")
    build(df.iloc[:100])
    assert build.fast
    # Numbers held as objects: the design of the same numbers (patsy itself fails on them).
    odd = df.iloc[100:200].astype({"x1": object})
    (ref,) = patsy.build_design_matrices([info], df.iloc[100:200])
    np.testing.assert_array_equal(build(odd), np.asarray(ref))
    with pytest.raises(DataError, match="x1: non-numeric values"):
        build(df.iloc[100:200].assign(x1="a"))
    # Two columns of the same name: patsy's to build or refuse, with a DataError.
    twice = pd.concat([df.iloc[100:200], df.iloc[100:200][["x1"]]], axis=1)
    with pytest.raises(DataError, match="cannot build the design"):
        build(twice)
