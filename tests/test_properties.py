"""Property-based tests (hypothesis): invariances of the estimator, and fuzzing of the input
paths with messy data.  Example counts are kept modest for the suite's time budget; data are
drawn from a seeded generator so that hypothesis shrinks the seed and the sizes."""

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

import multilogit as ml

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _simulate(seed, n, k, K):
    """Multinomial-logit data with moderate effects (so separation is rare), all K present."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, k))
    beta = rng.normal(scale=0.5, size=(K - 1, k + 1))
    eta = np.column_stack([np.zeros(n), beta[:, :1].T + X @ beta[:, 1:].T])
    P = np.exp(eta - eta.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    codes = (rng.uniform(size=(n, 1)) > np.cumsum(P, axis=1)).sum(axis=1)
    codes = np.minimum(codes, K - 1)
    codes[:K] = np.arange(K)  # every outcome appears
    df = pd.DataFrame(X, columns=[f"x{j}" for j in range(k)])
    df["y"] = np.array([f"o{c}" for c in range(K)])[codes]
    return df


def _formula(k):
    return "y ~ " + " + ".join(f"x{j}" for j in range(k))


def _fit(df, formula, **kw):
    """Fit, or reject the example when the draw is separated (the MLE does not exist)."""
    try:
        return ml.mnlogit(formula, df, **kw).fit(separation="raise", tol=1e-10)
    except ml.PerfectSeparationError:
        assume(False)


datasets = st.builds(
    _simulate,
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(40, 150),
    k=st.integers(1, 3),
    K=st.integers(2, 4),
)


@settings(max_examples=20, **SETTINGS)
@given(df=datasets, perm_seed=st.integers(0, 2**32 - 1))
def test_row_permutation_invariance(df, perm_seed):
    k = df.shape[1] - 1
    res = _fit(df, _formula(k))
    perm = np.random.default_rng(perm_seed).permutation(len(df))
    res_p = _fit(df.iloc[perm], _formula(k))
    # Only the summation order differs.
    np.testing.assert_allclose(res_p.params, res.params, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(res_p.bse, res.bse, rtol=1e-7)
    assert res_p.llf == pytest.approx(res.llf, rel=1e-12)


@settings(max_examples=20, **SETTINGS)
@given(df=datasets, log_scale=st.floats(-6, 6), col=st.integers(0, 2))
def test_rescaling_a_covariate_rescales_its_coefficient(df, log_scale, col):
    k = df.shape[1] - 1
    col = col % k
    c = 10.0**log_scale
    res = _fit(df, _formula(k))
    scaled = df.assign(**{f"x{col}": df[f"x{col}"] * c})
    res_s = _fit(scaled, _formula(k))
    expect = res.params.copy()
    expect.loc[f"x{col}"] /= c
    np.testing.assert_allclose(res_s.params, expect, rtol=1e-6, atol=1e-12)
    bse = res.bse.copy()
    bse.loc[f"x{col}"] /= c
    np.testing.assert_allclose(res_s.bse, bse, rtol=1e-6)


@settings(max_examples=15, **SETTINGS)
@given(
    seed=st.integers(0, 2**32 - 1), n=st.integers(40, 150), k=st.integers(1, 3), ref1=st.booleans()
)
def test_two_outcomes_equal_statsmodels_logit(seed, n, k, ref1):
    df = _simulate(seed, n, k, 2)
    res = _fit(df, _formula(k), ref="o1" if ref1 else "o0")
    X = sm.add_constant(df[[f"x{j}" for j in range(k)]])
    y = (df.y == ("o0" if ref1 else "o1")).astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logit = sm.Logit(y, X).fit(disp=0, method="newton", tol=1e-12, maxiter=100)
    np.testing.assert_allclose(res.params.iloc[:, 0], logit.params, rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(res.bse.iloc[:, 0], logit.bse, rtol=1e-6)
    assert res.llf == pytest.approx(logit.llf, rel=1e-10)


@settings(max_examples=15, **SETTINGS)
@given(
    df=st.builds(
        _simulate,
        seed=st.integers(0, 2**32 - 1),
        n=st.integers(60, 150),
        k=st.integers(1, 3),
        K=st.integers(3, 4),
    ),
    perm_seed=st.integers(0, 2**32 - 1),
)
def test_relabelling_outcomes_permutes_columns(df, perm_seed):
    k = df.shape[1] - 1
    res = _fit(df, _formula(k), ref="o0")
    labels = sorted(df.y.unique())
    rng = np.random.default_rng(perm_seed)
    # New names in a shuffled sort order; the reference keeps its role.
    new = dict(zip(labels, [f"n{i}" for i in rng.permutation(len(labels))], strict=True))
    res_r = _fit(df.assign(y=df.y.map(new)), _formula(k), ref=new["o0"])
    for old in labels[1:]:
        np.testing.assert_allclose(res_r.params[new[old]], res.params[old], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(res_r.bse[new[old]], res.bse[old], rtol=1e-9)
    assert res_r.llf == pytest.approx(res.llf, rel=1e-12)


@settings(max_examples=15, **SETTINGS)
@given(df=datasets)
def test_duplicated_rows_equal_frequency_weight_two(df):
    k = df.shape[1] - 1
    res_dup = _fit(pd.concat([df, df], ignore_index=True), _formula(k))
    res_w = _fit(df.assign(f=2.0), _formula(k), freq_weights="f")
    np.testing.assert_allclose(res_w.params, res_dup.params, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(res_w.bse, res_dup.bse, rtol=1e-8)
    assert res_w.nobs == res_dup.nobs == 2 * len(df)
    assert res_w.llf == pytest.approx(res_dup.llf, rel=1e-12)


@settings(max_examples=15, **SETTINGS)
@given(df=datasets, pick=st.integers(1, 3))
def test_repivot_equals_refit(df, pick):
    k = df.shape[1] - 1
    labels = sorted(df.y.unique())
    new_ref = labels[pick % len(labels)]
    res = _fit(df, _formula(k), ref=labels[0])
    refit = _fit(df, _formula(k), ref=new_ref)
    piv = res.repivot(new_ref)
    assert list(piv.params.columns) == list(refit.params.columns)
    np.testing.assert_allclose(piv.params, refit.params, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(piv.bse, refit.bse, rtol=1e-7)
    assert piv.llf == pytest.approx(refit.llf, rel=1e-12)


@settings(max_examples=10, **SETTINGS)
@given(df=datasets)
def test_determinism_bitwise(df):
    k = df.shape[1] - 1
    a = _fit(df, _formula(k))
    b = _fit(df.copy(), _formula(k))
    assert np.array_equal(a.params.to_numpy(), b.params.to_numpy())
    assert np.array_equal(a.cov_params().to_numpy(), b.cov_params().to_numpy())
    assert a.llf == b.llf


# ---------------------------------------------------------------------------------------------
# Fuzzing: messy frames either fit cleanly or fail with one of our documented errors


def _column(kind, n, rng):
    if kind == "float":
        return rng.normal(size=n)
    if kind == "float_nan":
        x = rng.normal(size=n)
        x[rng.random(n) < 0.2] = np.nan
        return x
    if kind == "float_inf":
        x = rng.normal(size=n)
        if n:
            x[rng.integers(0, n)] = np.inf
        return x
    if kind == "huge":
        return rng.normal(size=n) * 1e300
    if kind == "string":
        return rng.choice(["u", "v", "w"], n)
    if kind == "string_none":
        x = rng.choice(["u", "v"], n).astype(object)
        x[rng.random(n) < 0.2] = None
        return x
    if kind == "bool":
        return rng.random(n) < 0.5
    if kind == "constant":
        return np.full(n, 3.0)
    if kind == "zeros":
        return np.zeros(n)
    if kind == "int":
        return rng.integers(0, 4, n)
    if kind == "duplicate":
        return None  # filled in as a copy of the first column
    raise AssertionError(kind)


KINDS = [
    "float", "float_nan", "float_inf", "huge", "string", "string_none", "bool", "constant",
    "zeros", "int", "duplicate",
]  # fmt: skip
OUTCOMES = ["strings", "ints", "bools", "one_level", "with_nan", "categorical_unused", "floats"]


def _outcome(kind, n, rng):
    if kind == "strings":
        return rng.choice(["a", "b", "c"], n)
    if kind == "ints":
        return rng.integers(0, 3, n)
    if kind == "bools":
        return rng.random(n) < 0.5
    if kind == "one_level":
        return np.full(n, "a")
    if kind == "with_nan":
        y = rng.choice(["a", "b"], n).astype(object)
        y[rng.random(n) < 0.2] = np.nan
        return y
    if kind == "categorical_unused":
        return pd.Categorical(rng.choice(["a", "b"], n), categories=["a", "b", "zz"])
    if kind == "floats":
        return rng.normal(size=n)
    raise AssertionError(kind)


def _check_outcome(fit):
    """The contract: our own error, or a result that is finite when it claims convergence."""
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        try:
            res = fit()
        except ml.MultilogitError as exc:
            assert str(exc)  # a message naming the problem
            return "error"
    # Columns dropped by drop_collinear=True are NaN by design (as in R); nothing else is.
    keep = ~res._aliased if res._aliased is not None else slice(None)
    params = res.params.to_numpy()[keep]
    assert np.all(np.isfinite(params))
    if res.converged:
        assert np.all(np.isfinite(res.bse.to_numpy()[keep]))
        assert np.isfinite(res.llf)
        return "converged"
    # Not converged: said loudly.
    assert res.separation is not None or any(
        issubclass(w.category, ml.ConvergenceWarning) for w in rec
    )
    return "flagged"


@settings(max_examples=60, **SETTINGS)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.one_of(st.integers(0, 8), st.integers(20, 60)),
    kinds=st.lists(st.sampled_from(KINDS), min_size=1, max_size=3),
    ykind=st.sampled_from(OUTCOMES),
    missing=st.sampled_from(["raise", "drop"]),
    separation=st.sampled_from(["warn", "raise"]),
    drop_collinear=st.booleans(),
)
def test_fuzz_formula_frames(seed, n, kinds, ykind, missing, separation, drop_collinear):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"y": _outcome(ykind, n, rng)})
    for j, kind in enumerate(kinds):
        col = _column(kind, n, rng)
        df[f"c{j}"] = df["c0"] if col is None and j else (col if col is not None else 0.0)
    formula = "y ~ " + " + ".join(f"c{j}" for j in range(len(kinds)))
    event(
        _check_outcome(
            lambda: ml.mnlogit(formula, df, missing=missing).fit(
                separation=separation, drop_collinear=drop_collinear
            )
        )
    )


@settings(max_examples=40, **SETTINGS)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.one_of(st.integers(0, 8), st.integers(20, 60)),
    kinds=st.lists(st.sampled_from(KINDS), min_size=1, max_size=3),
    ykind=st.sampled_from(OUTCOMES),
    as_frame=st.booleans(),
    extra_rows=st.integers(0, 1),
)
def test_fuzz_array_inputs(seed, n, kinds, ykind, as_frame, extra_rows):
    rng = np.random.default_rng(seed)
    cols = {}
    for j, kind in enumerate(kinds):
        col = _column(kind, n, rng)
        cols[f"c{j}"] = cols["c0"] if col is None and j else (col if col is not None else 0.0)
    X = pd.DataFrame(cols, index=range(n))
    exog = X if as_frame else X.to_numpy()
    endog = _outcome(ykind, n + extra_rows, rng)
    event(_check_outcome(lambda: ml.MultinomialLogit(endog, exog, missing="drop").fit()))


@settings(max_examples=25, **SETTINGS)
@given(df=datasets, n_new=st.integers(0, 5), drop_col=st.booleans(), junk=st.booleans())
def test_fuzz_predict_inputs(df, n_new, drop_col, junk):
    k = df.shape[1] - 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = ml.mnlogit(_formula(k), df).fit()
    new = df.drop(columns="y").head(n_new)
    if drop_col:
        new = new.drop(columns="x0")
    if junk and n_new and len(new.columns):
        new = new.assign(**{new.columns[0]: "junk"})
    try:
        out = res.predict(new)
    except ml.MultilogitError as exc:
        assert "'x0'" in str(exc)  # the missing or non-numeric column is named
    else:
        assert out.shape == (n_new, len(res.outcomes))
        assert np.allclose(out.sum(axis=1), 1.0)


def test_determinism_across_processes():
    # Same input, a fresh interpreter (fresh Numba/BLAS state): the very same bits.
    import os
    import subprocess
    import sys

    code = (
        "import multilogit as ml; d = ml.datasets.load('hsbdemo'); "
        "r = ml.mnlogit('prog ~ ses + write + read', d).fit(); "
        "print(r.params.to_numpy().tobytes().hex(), r.cov_params().to_numpy().tobytes().hex())"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    ).stdout.split()
    d = ml.datasets.load("hsbdemo")
    r = ml.mnlogit("prog ~ ses + write + read", d).fit()
    assert out == [
        r.params.to_numpy().tobytes().hex(),
        r.cov_params().to_numpy().tobytes().hex(),
    ]
