"""Property tests (hypothesis) over the scale of weights, column offsets and scales, and dtypes.

Each property has an exact reference:

- sampling weights times any positive constant give the same estimates and robust standard
  errors (the weighted score equations are homogeneous in the weights), and a log-likelihood
  times that constant;
- frequency weights times ``c`` give the same estimates and standard errors over
  :math:`\\sqrt{c}` (``c`` times the data), or a ``DataError`` when their total is not a usable
  count;
- a column ``a (x + b)`` with an intercept gives the slope and its standard error of ``x``
  divided by ``a`` (an affine reparameterisation), to the digits the offset leaves, or a clear
  error naming near-collinearity once the offset swamps the variation;
- a covariate or an outcome in another dtype (small integers, float32, bool, the nullable
  ``Int64``/``Float64``/``boolean``, strings, categoricals, tuples) gives the same fit as the
  float64 / str data.

Few examples per property (``derandomize`` for the same examples at every run): the space is
small and each example is a fit.
"""

import functools

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import multilogit as ml

FUZZ = settings(max_examples=15, deadline=None, derandomize=True, database=None)
EPS = np.finfo(np.float64).eps


@functools.cache
def _data() -> pd.DataFrame:
    """300 rows, three outcomes, an integer covariate 0..100 and a binary one."""
    rng = np.random.default_rng(11)
    n = 300
    x = rng.integers(0, 101, n)
    b = rng.integers(0, 2, n).astype(bool)
    eta = np.column_stack([np.zeros(n), -1.0 + 0.03 * x - 0.5 * b, 0.5 - 0.02 * x + 0.8 * b])
    P = np.exp(eta) / np.exp(eta).sum(axis=1, keepdims=True)
    codes = (rng.uniform(size=(n, 1)) > np.cumsum(P, axis=1)).sum(axis=1)
    pw = rng.uniform(0.5, 2.0, n)
    fw = rng.integers(1, 4, n).astype(float)
    return pd.DataFrame(
        {"y": np.array(["a", "b", "c"])[codes], "x": x, "b": b, "pw": pw, "fw": fw}
    )


@functools.cache
def _fit(formula: str, **kw):
    return ml.mnlogit(formula, _data(), **kw).fit(tol=1e-10)


# -- weight scales --------------------------------------------------------------------------------


@FUZZ
@given(exponent=st.integers(-300, 300), mantissa=st.floats(1.0, 10.0))
def test_sampling_weight_scale_changes_nothing_but_llf(exponent, mantissa):
    scale = mantissa * 10.0**exponent
    ref = _fit("y ~ x + b", weights="pw")
    res = ml.mnlogit("y ~ x + b", _data(), weights=_data()["pw"] * scale).fit(tol=1e-10)
    assert res.converged
    np.testing.assert_allclose(res.params, ref.params, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(res.bse, ref.bse, rtol=1e-8)
    np.testing.assert_allclose(res.llf, ref.llf * scale, rtol=1e-10)


@FUZZ
@given(exponent=st.integers(-20, 20))
def test_frequency_weight_scale_is_more_data_or_an_error(exponent):
    c = 10.0**exponent
    fw = _data()["fw"] * c
    total = float(fw.sum())
    if not 1.0 <= total <= 2.0**53:
        with pytest.raises(ml.DataError, match="freq_weights sum to"):
            ml.mnlogit("y ~ x + b", _data(), freq_weights=fw)
        return
    ref = _fit("y ~ x + b", freq_weights="fw")
    res = ml.mnlogit("y ~ x + b", _data(), freq_weights=fw).fit(tol=1e-10)
    assert res.nobs == pytest.approx(total, rel=1e-12)
    np.testing.assert_allclose(res.params, ref.params, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(res.bse * np.sqrt(c), ref.bse, rtol=1e-8)


# -- column offsets and scales --------------------------------------------------------------------


@FUZZ
@given(
    offset_exp=st.integers(0, 12),
    scale_exp=st.integers(-100, 100),
    sign=st.sampled_from([-1.0, 1.0]),
)
def test_column_offset_and_scale_keep_the_slope(offset_exp, scale_exp, sign):
    x = _data()["x"].to_numpy(dtype=float)
    # The offset in units of the column's spread: the information of the intercept block has
    # a condition number of about (offset / sd)**2, which bounds the digits left.
    rel = 10.0**offset_exp
    a = sign * 10.0**scale_exp
    data = _data().assign(z=a * (x + rel * x.std()))
    ref = _fit("y ~ x + b")
    try:
        res = ml.mnlogit("y ~ z + b", data).fit(tol=1e-10)
    except (ml.DataError, ml.FitError) as exc:
        # Only when the offset swamps the variation, and said as such.
        assert rel >= 1e6, exc
        assert "nearly (not exactly)" in str(exc) or "ill-conditioning" in str(exc)
        return
    rtol = 1e-8 + 100 * EPS * rel**2
    np.testing.assert_allclose(res.params.loc["z"] * a, ref.params.loc["x"], rtol=rtol)
    np.testing.assert_allclose(res.bse.loc["z"] * abs(a), ref.bse.loc["x"], rtol=rtol)
    np.testing.assert_allclose(res.params.loc["b[T.True]"], ref.params.loc["b[T.True]"], rtol=rtol)


# -- dtypes ---------------------------------------------------------------------------------------

X_DTYPES = ["int8", "int16", "int32", "uint8", "float32", "Int64", "Float64"]
B_DTYPES = ["bool", "boolean", "int8", "Int64", "float32"]
Y_KINDS = ["str", "string", "category", "int", "Int64", "tuple", "object"]


def _outcome(y: pd.Series, kind: str) -> pd.Series:
    codes = y.map({"a": 0, "b": 1, "c": 2})
    return {
        "str": y,
        "string": y.astype("string"),
        "category": y.astype("category"),
        "int": codes.astype(np.int64),
        "Int64": codes.astype("Int64"),
        "tuple": y.map(lambda v: (v, 1)),
        "object": y.astype(object),
    }[kind]


@settings(max_examples=25, deadline=None, derandomize=True, database=None)
@given(
    x_dtype=st.sampled_from(X_DTYPES),
    b_dtype=st.sampled_from(B_DTYPES),
    y_kind=st.sampled_from(Y_KINDS),
    formula=st.booleans(),
    with_missing=st.booleans(),
)
def test_dtypes_give_the_float64_fit(x_dtype, b_dtype, y_kind, formula, with_missing):
    base = _data()[["y", "x", "b"]].assign(x=lambda d: d["x"].astype(float))
    # patsy codes a boolean column as a factor (b[T.True]) and any other as a number: the
    # reference is the NumPy bool or float64 column, as the dtype under test is read.
    boolean = b_dtype in ("bool", "boolean")
    base = base.assign(b=base["b"] if boolean else base["b"].astype(float))
    data = base.assign(
        x=base["x"].astype(x_dtype), b=base["b"].astype(b_dtype), y=_outcome(base["y"], y_kind)
    )
    nullable = isinstance(data["x"].dtype, pd.api.extensions.ExtensionDtype)
    missing = "raise"
    if with_missing and nullable:
        # A missing value in the nullable column: dropped like NaN in the float column.
        data.loc[3, "x"] = pd.NA
        base.loc[3, "x"] = np.nan
        missing = "drop"
    if formula:
        ref = ml.mnlogit("y ~ x + b", base, missing=missing).fit(tol=1e-10)
        res = ml.mnlogit("y ~ x + b", data, missing=missing).fit(tol=1e-10)
    else:
        X = base[["x", "b"]].assign(const=1.0)
        ref = ml.MultinomialLogit(base["y"], X, missing=missing).fit(tol=1e-10)
        Xd = data[["x", "b"]].assign(const=1.0)
        res = ml.MultinomialLogit(data["y"], Xd, missing=missing).fit(tol=1e-10)
    assert res.nobs == ref.nobs
    # The same numbers from the same float64 design: identical, not merely close.
    np.testing.assert_array_equal(res.params.to_numpy(), ref.params.to_numpy())
    np.testing.assert_array_equal(res.bse.to_numpy(), ref.bse.to_numpy())
    assert len(res.params.columns) == 2
