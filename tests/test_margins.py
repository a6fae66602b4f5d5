"""Marginal effects: statsmodels MNLogit, counterfactual predictions and a NumPy twin."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from statsmodels.discrete.discrete_margins import _iscount, _isdummy
from statsmodels.tools.numdiff import approx_fprime, approx_fprime_cs

import multilogit as ml
from multilogit.engine import kernels
from multilogit.exceptions import DataError

# Effects and Jacobians are analytic on both sides (statsmodels differentiates by complex step),
# so they agree to rounding; rtol 1e-6 is the tolerance.
RTOL = 1e-6


# ---------------------------------------------------------------------------------------------
# NumPy twins (complex-safe, so the reference Jacobians are complex-step exact)


def _probs(X, beta):
    eta = np.column_stack([X @ beta.T, np.zeros(len(X))])
    e = np.exp(eta - eta.real.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)  # internal order: non-reference..., reference


def twin_derivative(X, D, s, w, beta, dy):
    """Weighted sum over rows of s_i * f(P_ik) * g_ik (see the margins kernels)."""
    P = _probs(X, beta)
    B = np.vstack([beta, np.zeros((1, beta.shape[1]))])
    D = np.broadcast_to(D, X.shape)
    a = D @ B.T
    g = a - (P * a).sum(axis=1, keepdims=True)
    f = P * g if dy else g
    return (w * np.broadcast_to(s, w.shape)) @ f


def twin_level(X, w, beta, logp):
    P = _probs(X, beta)
    return w @ (np.log(P) if logp else P)


# academic (the reference, last internally), general, vocation: columns of the twins -> labels
HSB_ORDER = [2, 0, 1]


def _beta(res):
    """(J, p) coefficients from the public params (rows: equations)."""
    return res.params.to_numpy().T


def _mean_probs(X, beta):
    """Average predicted probabilities over the rows of ``X``, in the user's outcome order."""
    return twin_level(X, np.full(len(X), 1.0 / len(X)), beta, False)[HSB_ORDER]


def _ses_design(hsb, level, *rest, levels=("low", "middle", "high")):
    """Intercept, treatment dummies of ses (all rows at ``level``), then the given columns."""
    dummies = [np.full(len(hsb), float(level == lv)) for lv in levels[1:]]
    return np.column_stack([np.ones(len(hsb)), *dummies, *rest])


@pytest.fixture(scope="module")
def hsb():
    d = ml.datasets.load("hsbdemo")
    d = d.assign(fem=(d.female == "female").astype(int))
    return d


@pytest.fixture(scope="module")
def arrays(hsb):
    X = sm.add_constant(
        pd.DataFrame(
            {
                "write": hsb.write.astype(float),
                "read": hsb.read.astype(float),
                "fem": hsb.fem.astype(float),
                "awards": hsb.awards.astype(float),
            }
        )
    )
    y = hsb["prog"]
    sres = sm.MNLogit(y.cat.codes, X).fit(disp=0, method="newton", tol=1e-13, maxiter=100)
    res = ml.MultinomialLogit(y, X).fit(tol=1e-10)
    return X, sres, res


# ---------------------------------------------------------------------------------------------
# statsmodels


@pytest.mark.parametrize("at", ["overall", "mean"])
@pytest.mark.parametrize("method", ["dydx", "eydx"])
def test_matches_statsmodels_get_margeff(arrays, at, method):
    _, sres, res = arrays
    ref = sres.get_margeff(at=at, method=method)
    me = res.get_margeff(at=at, method=method, dummy=False)
    np.testing.assert_allclose(me.margeff.to_numpy(), ref.margeff, rtol=RTOL)
    np.testing.assert_allclose(me.margeff_se.to_numpy(), ref.margeff_se, rtol=RTOL)
    # The long frame has statsmodels' row order (outcome-major) and the same numbers.
    sf, rf = me.summary_frame(0.1), ref.summary_frame(0.1)
    assert list(sf.index.get_level_values("term")) == list(rf.index.get_level_values(1))
    assert list(sf.columns) == ["effect", "std err", "z", "P>|z|", "lower", "upper"]
    np.testing.assert_allclose(sf.to_numpy(), rf.to_numpy(), rtol=RTOL, atol=1e-12)
    assert list(me.margeff.columns) == ["academic", "general", "vocation"]


def _sm_reference(sres, at, method, dummy, count=False):
    """statsmodels' own effect definitions, with a complex-step Jacobian.

    Its ``get_margeff`` raises for MNLogit with ``dummy=True`` or the ``ex`` methods (shape
    bugs in ``_derivative_predict`` / ``_derivative_exog``), so the reference is assembled from
    the same building blocks: ``_derivative_exog`` (dy/dx per row), the transforms documented in
    ``get_margeff``, and ``_get_dummy_effects`` / ``_get_count_effects`` semantics.
    """
    mod = sres.model
    k, J = mod.K, mod.J
    ex = mod.exog if at == "overall" else mod.exog.mean(0)[None]
    di = _isdummy(mod.exog) if dummy else []
    ci = list(_iscount(mod.exog)) if count else []

    def f(p):
        P = mod.predict(p.reshape(k, J - 1, order="F"), ex)
        m = mod._derivative_exog(p, ex, "dydx", None, None).reshape(len(ex), k, J, order="F")
        if "ex" in method:
            m = m * ex[:, :, None]
        if "ey" in method:
            m = m / P[:, None, :]
        for i, lo, hi, scale in [(i, 0, 1, 1.0) for i in di] + [(i, -1, 1, 0.5) for i in ci]:
            e0, e1 = ex.copy(), ex.copy()
            if scale == 1.0:
                e0[:, i], e1[:, i] = lo, hi
            else:
                e0[:, i] += lo
                e1[:, i] += hi
            a = mod.predict(p.reshape(k, J - 1, order="F"), e1)
            b = mod.predict(p.reshape(k, J - 1, order="F"), e0)
            m[:, i, :] = scale * ((np.log(a) - np.log(b)) if "ey" in method else a - b)
        return m.mean(0)[1:].ravel("F")

    p0 = sres.params.to_numpy().ravel("F")
    G = approx_fprime_cs(p0, f)
    se = np.sqrt(np.diag(G @ sres.cov_params().to_numpy() @ G.T))
    return f(p0).reshape(k - 1, J, order="F"), se.reshape(k - 1, J, order="F")


@pytest.mark.parametrize(
    "at,method,dummy,count",
    [
        ("overall", "eyex", False, False),
        ("overall", "dyex", False, False),
        ("mean", "eyex", False, False),
        ("mean", "dyex", False, False),
        ("overall", "dydx", True, False),
        ("overall", "eydx", True, False),
        ("mean", "dydx", True, False),
        ("mean", "eydx", True, False),
        ("overall", "dydx", True, True),
    ],
)
def test_matches_statsmodels_definitions(arrays, at, method, dummy, count):
    _, sres, res = arrays
    eff, se = _sm_reference(sres, at, method, dummy, count)
    me = res.get_margeff(at=at, method=method, dummy=dummy, count=count)
    np.testing.assert_allclose(me.margeff.to_numpy(), eff, rtol=RTOL)
    np.testing.assert_allclose(me.margeff_se.to_numpy(), se, rtol=RTOL)


def test_dummy_is_a_discrete_change(arrays):
    X, _, res = arrays
    me = res.get_margeff(dummy=True).margeff.loc["fem"].to_numpy()
    x0, x1 = X.to_numpy(copy=True), X.to_numpy(copy=True)
    x0[:, 3], x1[:, 3] = 0.0, 1.0  # columns: const, write, read, fem, awards
    direct = _mean_probs(x1, _beta(res)) - _mean_probs(x0, _beta(res))
    np.testing.assert_allclose(me, direct, rtol=1e-12)
    cont = res.get_margeff(dummy=False).margeff.loc["fem"].to_numpy()
    assert np.max(np.abs(me - cont)) > 1e-4


# ---------------------------------------------------------------------------------------------
# Properties


@pytest.mark.parametrize("at", ["overall", "mean", {"write": 50.0}])
@pytest.mark.parametrize("method", ["dydx", "dyex"])
def test_effects_sum_to_zero(arrays, hsb, at, method):
    _, _, res = arrays
    me = res.get_margeff(at=at, method=method, dummy=False)
    np.testing.assert_allclose(me.margeff.sum(axis=1), 0.0, atol=1e-14)
    # Their Jacobians sum to zero too, so the sum has zero variance.
    J = me.jacobian.reshape(3, -1, me.jacobian.shape[1]).sum(axis=0)
    np.testing.assert_allclose(J, 0.0, atol=1e-13)
    fres = ml.mnlogit("prog ~ C(ses) + write + I(write**2) + fem", hsb).fit()
    fme = fres.get_margeff(at=at if method == "dydx" else "overall", method="dydx")
    np.testing.assert_allclose(fme.margeff.sum(axis=1), 0.0, atol=1e-14)


def test_invariant_to_reference_outcome(hsb):
    a = ml.mnlogit("prog ~ C(ses) + write", hsb, ref="academic").fit(tol=1e-10)
    b = ml.mnlogit("prog ~ C(ses) + write", hsb, ref="vocation").fit(tol=1e-10)
    ma, mb = a.get_margeff(), b.get_margeff()
    assert list(mb.summary_frame().index.get_level_values(0)[::3]) == list(a.outcomes)
    np.testing.assert_allclose(ma.margeff, mb.margeff, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(ma.margeff_se, mb.margeff_se, rtol=1e-6)


def test_covariance_is_delta_method_on_cov_params(arrays):
    X, _, res = arrays
    me = res.get_margeff(at="mean", dummy=True)
    # The effects at the mean from the twins (fem, a 0/1 dummy, as a discrete change) and their
    # complex-step Jacobian, rows outcome-major like margeff_cov.
    xbar = X.to_numpy().mean(0)
    x0, x1 = xbar.copy(), xbar.copy()
    x0[3], x1[3] = 0.0, 1.0  # columns: const, write, read, fem, awards
    one = np.ones(1)

    def effects(b):
        beta = b.reshape(2, -1)
        cols = [
            twin_derivative(xbar[None], np.eye(5)[c][None], one, one, beta, True)
            if c != 3
            else twin_level(x1[None], one, beta, False) - twin_level(x0[None], one, beta, False)
            for c in (1, 2, 3, 4)
        ]
        return np.array(cols)[:, HSB_ORDER].T.ravel()

    b0 = _beta(res).ravel()
    np.testing.assert_allclose(me.margeff.to_numpy().T.ravel(), effects(b0), rtol=1e-12)
    G = approx_fprime_cs(b0, effects)
    V = res.cov_params().to_numpy()
    np.testing.assert_allclose(me.margeff_cov.to_numpy(), G @ V @ G.T, rtol=1e-12, atol=1e-18)
    assert me.margeff_cov.index.names == ["outcome", "term"]
    assert list(me.margeff_cov.index) == list(me.summary_frame().index)


# ---------------------------------------------------------------------------------------------
# Formulas


def _counterfactual(res, data, var, value):
    d = data.copy()
    col = data[var]
    if isinstance(col.dtype, pd.CategoricalDtype):
        d[var] = pd.Categorical([value] * len(d), categories=col.cat.categories)
    else:
        d[var] = value
    return d


def test_categorical_term_is_a_discrete_change_between_levels(hsb):
    res = ml.mnlogit("prog ~ C(ses) + write + fem", hsb).fit(tol=1e-10)
    me = res.get_margeff()
    assert list(me.margeff.index) == ["ses[T.middle]", "ses[T.high]", "write", "fem"]
    p0 = _beta(res).ravel()
    V = res.cov_params().to_numpy()
    rest = (hsb.write.to_numpy(float), hsb.fem.to_numpy(float))
    for label, lv in [("ses[T.middle]", "middle"), ("ses[T.high]", "high")]:
        lo, hi = _ses_design(hsb, "low", *rest), _ses_design(hsb, lv, *rest)

        def change(p, lo=lo, hi=hi):
            beta = p.reshape(2, -1)
            return _mean_probs(hi, beta) - _mean_probs(lo, beta)

        np.testing.assert_allclose(me.margeff.loc[label], change(p0), rtol=1e-12)
        G = approx_fprime(p0, change, centered=True)
        np.testing.assert_allclose(
            me.margeff_se.loc[label], np.sqrt(np.diag(G @ V @ G.T)), rtol=RTOL
        )


def test_categorical_base_follows_treatment_reference(hsb):
    res = ml.mnlogit('prog ~ C(ses, Treatment("middle")) + write', hsb).fit()
    me = res.get_margeff()
    assert list(me.margeff.index) == ["ses[T.low]", "ses[T.high]", "write"]
    levels = ("middle", "low", "high")
    write = hsb.write.to_numpy(float)
    lo = _ses_design(hsb, "middle", write, levels=levels)
    hi = _ses_design(hsb, "low", write, levels=levels)
    direct = _mean_probs(hi, _beta(res)) - _mean_probs(lo, _beta(res))
    np.testing.assert_allclose(me.margeff.loc["ses[T.low]"], direct, rtol=1e-12)


def test_plain_numeric_column_is_exact(hsb, arrays):
    """A formula variable entering as itself uses the unit direction: same as the array model."""
    X, _, ares = arrays
    fres = ml.mnlogit("prog ~ write + read + fem + awards", hsb).fit(tol=1e-10)
    a = ares.get_margeff(dummy=False)
    f = fres.get_margeff(dummy=False)
    np.testing.assert_allclose(f.margeff, a.margeff, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(f.margeff_se, a.margeff_se, rtol=1e-8)


@pytest.mark.parametrize("method", ["dydx", "eydx", "eyex", "dyex"])
def test_transformed_and_interacted_variables(hsb, method):
    """Derivatives w.r.t. the underlying variable, against an analytic chain rule."""
    f = "prog ~ write + I(write**2) + np.log(read) + math:fem"
    res = ml.mnlogit(f, hsb).fit(tol=1e-10)
    me = res.get_margeff(method=method, dummy=False)
    X = res.model.exog
    n, p = X.shape
    w = np.full(n, 1.0 / n)
    write, read, math, fem = (hsb[c].to_numpy(float) for c in ("write", "read", "math", "fem"))
    # Columns: Intercept, write, I(write ** 2), np.log(read), math:fem
    dirs = {"write": np.zeros((n, p)), "read": np.zeros((n, p)), "math": np.zeros((n, p))}
    dirs["write"][:, 1], dirs["write"][:, 2] = 1.0, 2.0 * write
    dirs["read"][:, 3] = 1.0 / read
    dirs["math"][:, 4] = fem
    dirs["fem"] = np.zeros((n, p))
    dirs["fem"][:, 4] = math
    values = {"write": write, "read": read, "math": math, "fem": fem}
    dy, ex = method in ("dydx", "dyex"), "ex" in method
    order = res.model.level_to_internal
    V = res.cov_params().to_numpy()
    assert list(me.margeff.index) == ["write", "read", "math", "fem"]
    for var, D in dirs.items():
        s = values[var] if ex else np.ones(1)

        def eff(b, D=D, s=s):
            return twin_derivative(X, D, s, w, b.reshape(res.model.J, p), dy)[order]

        b0 = _beta(res).ravel()
        # Finite-difference directions on the rebuilt design: relative error about 1e-10.
        np.testing.assert_allclose(me.margeff.loc[var], eff(b0), rtol=1e-7, atol=1e-12)
        G = approx_fprime_cs(b0, eff)
        np.testing.assert_allclose(
            me.margeff_se.loc[var], np.sqrt(np.diag(G @ V @ G.T)), rtol=1e-6
        )


def test_at_mean_is_stata_atmeans(hsb):
    res = ml.mnlogit("prog ~ C(ses) + write + I(write**2)", hsb).fit(tol=1e-10)
    me = res.get_margeff(at="mean")
    wbar = hsb.write.mean()
    share = hsb.ses.value_counts(normalize=True)
    xbar = np.array([1.0, share["middle"], share["high"], wbar, wbar**2])
    beta = _beta(res)
    order = res.model.level_to_internal
    D = np.array([[0.0, 0.0, 0.0, 1.0, 2.0 * wbar]])
    w = np.ones(1)
    np.testing.assert_allclose(
        me.margeff.loc["write"],
        twin_derivative(xbar[None], D, np.ones(1), w, beta, True)[order],
        rtol=1e-7,
    )
    x_hi, x_lo = xbar.copy(), xbar.copy()
    x_hi[1:3], x_lo[1:3] = [0.0, 1.0], [0.0, 0.0]
    direct = twin_level(x_hi[None], w, beta, False) - twin_level(x_lo[None], w, beta, False)
    np.testing.assert_allclose(me.margeff.loc["ses[T.high]"], direct[order], rtol=1e-10)


def test_at_dict_fixes_values_in_every_row(hsb, arrays):
    res = ml.mnlogit("prog ~ C(ses) + write", hsb).fit(tol=1e-10)
    me = res.get_margeff(at={"ses": "high", "write": 60})
    d = _counterfactual(res, hsb, "ses", "high").assign(write=60.0)
    X = res.model.design.build(d)[0]
    w = np.full(len(X), 1.0 / len(X))
    D = np.array([[0.0, 0.0, 0.0, 1.0]])
    direct = twin_derivative(X, D, np.ones(1), w, _beta(res), True)[res.model.level_to_internal]
    np.testing.assert_allclose(me.margeff.loc["write"], direct, rtol=1e-12)
    # Array models take column names or positions.
    _, _, ares = arrays
    by_name = ares.get_margeff(at={"write": 60.0}).margeff
    by_pos = ares.get_margeff(at={1: 60.0}).margeff
    np.testing.assert_allclose(by_name, by_pos, rtol=1e-15)


def test_at_median_for_numeric_variables(arrays, hsb):
    _, sres, res = arrays
    ref = sres.get_margeff(at="median")
    me = res.get_margeff(at="median", dummy=False)
    np.testing.assert_allclose(me.margeff.to_numpy(), ref.margeff, rtol=RTOL)
    np.testing.assert_allclose(me.margeff_se.to_numpy(), ref.margeff_se, rtol=RTOL)
    fres = ml.mnlogit("prog ~ write + read", hsb).fit()
    assert fres.get_margeff(at="median").margeff.shape == (2, 3)


def test_dropped_rows_use_the_estimation_sample(hsb):
    d = hsb.copy()
    d.loc[d.index[:5], "write"] = np.nan
    res = ml.mnlogit("prog ~ C(ses) + write", d, missing="drop").fit()
    full = ml.mnlogit("prog ~ C(ses) + write", d.iloc[5:]).fit()
    np.testing.assert_allclose(res.get_margeff().margeff, full.get_margeff().margeff, rtol=1e-9)


# ---------------------------------------------------------------------------------------------
# Kernels against their twins


@pytest.mark.parametrize("dy", [True, False])
def test_kernels_match_numpy_twins(rng, dy):
    n, p, J = 57, 4, 3
    X = rng.normal(size=(n, p))
    D = rng.normal(size=(n, p))
    s = rng.uniform(0.5, 2.0, size=n)
    w = rng.uniform(size=n)
    w[3] = 0.0
    beta = rng.normal(size=(J, p))
    eff, jac = np.zeros(J + 1), np.zeros((J + 1, J * p))
    kernels.chunk_margeff_derivative(X, D, s, w, beta, dy, eff, jac)
    np.testing.assert_allclose(eff, twin_derivative(X, D, s, w, beta, dy), rtol=1e-12)
    G = approx_fprime_cs(beta.ravel(), lambda b: twin_derivative(X, D, s, w, b.reshape(J, p), dy))
    np.testing.assert_allclose(jac, G, rtol=1e-10, atol=1e-13)
    # One shared direction / scale row broadcasts over the chunk.
    eff1, jac1 = np.zeros(J + 1), np.zeros((J + 1, J * p))
    kernels.chunk_margeff_derivative(X, D[:1], s[:1], w, beta, dy, eff1, jac1)
    np.testing.assert_allclose(eff1, twin_derivative(X, D[:1], s[:1], w, beta, dy), rtol=1e-12)
    eff2, jac2 = np.zeros(J + 1), np.zeros((J + 1, J * p))
    kernels.chunk_margeff_level(X, w, beta, not dy, -0.5, eff2, jac2)
    np.testing.assert_allclose(eff2, -0.5 * twin_level(X, w, beta, not dy), rtol=1e-12)
    G2 = approx_fprime_cs(beta.ravel(), lambda b: -0.5 * twin_level(X, w, b.reshape(J, p), not dy))
    np.testing.assert_allclose(jac2, G2, rtol=1e-10, atol=1e-13)


# ---------------------------------------------------------------------------------------------
# Output


def test_summary_text_html_latex(hsb):
    res = ml.mnlogit("prog ~ C(ses) + write", hsb).fit()
    me = res.get_margeff()
    text = str(me.summary())
    assert "MultinomialLogit Marginal Effects" in text
    for outcome in ("prog=academic", "prog=general", "prog=vocation"):
        assert outcome in text
    assert "dy/dx" in text and "ses[T.high]" in text and "discrete changes" in text
    assert "<table" in me.summary().as_html()
    assert "\\begin{tabular}" in me.summary().as_latex()
    assert "d(lny)/dx" in str(res.get_margeff(method="eydx").summary())
    assert "<table" in me._repr_html_()
    ci = me.conf_int(0.1)
    sf = me.summary_frame(0.1)
    np.testing.assert_allclose(ci["upper"] - sf["effect"], 1.6448536269514722 * sf["std err"])
    np.testing.assert_allclose(me.tvalues.to_numpy().T.ravel(), sf["z"])
    np.testing.assert_allclose(me.pvalues.to_numpy().T.ravel(), sf["P>|z|"])
    arr = ml.MultinomialLogit(hsb.prog, sm.add_constant(hsb[["fem"]].astype(float))).fit()
    assert "Discrete change" in str(arr.get_margeff(dummy=True).summary())


# ---------------------------------------------------------------------------------------------
# Errors


def test_errors(hsb, arrays):
    _, _, ares = arrays
    res = ml.mnlogit("prog ~ C(ses) + write", hsb).fit()
    with pytest.raises(ValueError, match="method must be one of"):
        res.get_margeff(method="dxdy")
    with pytest.raises(ValueError, match="at must be"):
        res.get_margeff(at="everywhere")
    with pytest.raises(ValueError, match="at='zero' is not defined for the discrete"):
        ares.get_margeff(at="zero", dummy=True)
    with pytest.raises(ValueError, match="at must be"):
        res.get_margeff(at=3)
    with pytest.raises(ValueError, match="not defined for the discrete variable"):
        res.get_margeff(method="eyex")
    with pytest.raises(ValueError, match="at='median' is not defined"):
        res.get_margeff(at="median")
    with pytest.raises(ValueError, match="at='median' is not defined"):
        ares.get_margeff(at="median", dummy=True)
    with pytest.raises(DataError, match="not a variable of the formula"):
        res.get_margeff(at={"math": 3})
    with pytest.raises(DataError, match="not a level of 'ses'"):
        res.get_margeff(at={"ses": "posh"})
    with pytest.raises(DataError, match="finite number"):
        res.get_margeff(at={"write": "a lot"})
    with pytest.raises(DataError, match="not a column of exog"):
        ares.get_margeff(at={"math": 3.0})
    with pytest.raises(DataError, match="out of range"):
        ares.get_margeff(at={9: 3.0})
    with pytest.raises(DataError, match="finite number"):
        ares.get_margeff(at={"write": np.inf})
    with pytest.raises(ValueError, match="alpha"):
        res.get_margeff().summary_frame(alpha=1.5)
    both = ml.mnlogit('prog ~ C(schtyp):write + I((schtyp == "public") * 1.0)', hsb).fit()
    with pytest.raises(DataError, match="both as categorical and as numeric"):
        both.get_margeff()
    twice = ml.mnlogit('prog ~ C(schtyp):write + I(schtyp == "public")', hsb).fit()
    with pytest.raises(DataError, match="enters the formula with different levels"):
        twice.get_margeff()
    const = ml.MultinomialLogit(hsb.prog, np.ones((len(hsb), 1))).fit()
    with pytest.raises(DataError, match="no variables besides the constant"):
        const.get_margeff()
    d = hsb.copy()
    d.index = np.zeros(len(d), dtype=int)
    d.loc[:, "write"] = d["write"].astype(float)
    d.iloc[:3, d.columns.get_loc("write")] = np.nan
    dup = ml.mnlogit("prog ~ write", d, missing="drop").fit()
    with pytest.raises(DataError, match="duplicate labels"):
        dup.get_margeff()


def test_more_error_paths(hsb, monkeypatch):
    two = ml.mnlogit("prog ~ C(read > write) + math", hsb).fit()
    with pytest.raises(DataError, match="cannot attribute the categorical term"):
        two.get_margeff()
    res = ml.mnlogit("prog ~ C(ses) + C(schtyp) + write", hsb).fit()
    monkeypatch.setattr("multilogit.inference.margins._MAX_GRID", 4)
    with pytest.raises(ValueError, match="combinations of categorical levels"):
        res.get_margeff(at="mean")
    bare = ml.mnlogit("prog ~ write", hsb)
    bare._source_data = None
    with pytest.raises(DataError, match="does not hold its data"):
        bare.fit().get_margeff()


def test_chunking_does_not_change_results(hsb, arrays, monkeypatch):
    _, _, ares = arrays
    fres = ml.mnlogit("prog ~ C(ses) * write + np.log(read)", hsb).fit()
    whole = [ares.get_margeff(), fres.get_margeff()]
    monkeypatch.setattr("multilogit.inference.margins._CHUNK_ROWS", 7)
    monkeypatch.setattr("multilogit.inference.margins._FRAME_CHUNK_ROWS", 13)
    for before, after in zip(whole, [ares.get_margeff(), fres.get_margeff()], strict=True):
        np.testing.assert_allclose(after.margeff, before.margeff, rtol=1e-12, atol=1e-16)
        np.testing.assert_allclose(after.margeff_cov, before.margeff_cov, rtol=1e-10, atol=1e-18)


def test_categorical_by_numeric_interaction(hsb):
    res = ml.mnlogit("prog ~ C(ses) * write", hsb).fit(tol=1e-10)
    me = res.get_margeff()
    assert list(me.margeff.index) == ["ses[T.middle]", "ses[T.high]", "write"]
    # write enters as write and C(ses):write: d x / d write = (0, 0, 0, 1, [middle], [high]).
    X = res.model.exog
    n = len(X)
    D = np.zeros_like(X)
    D[:, 3], D[:, 4], D[:, 5] = 1.0, X[:, 1], X[:, 2]
    w = np.full(n, 1.0 / n)
    order = res.model.level_to_internal
    np.testing.assert_allclose(
        me.margeff.loc["write"],
        twin_derivative(X, D, np.ones(1), w, _beta(res), True)[order],
        rtol=1e-7,
    )
    write = hsb.write.to_numpy(float)
    lo = _ses_design(hsb, "low", write, 0 * write, 0 * write)
    hi = _ses_design(hsb, "high", write, 0 * write, write)
    direct = _mean_probs(hi, _beta(res)) - _mean_probs(lo, _beta(res))
    np.testing.assert_allclose(me.margeff.loc["ses[T.high]"], direct, rtol=1e-12)


def test_weighted_median():
    from multilogit.inference.margins import _weighted_median

    v = np.array([3.0, 1.0, 2.0, 10.0])
    assert _weighted_median(v, np.ones(4)) == 2.5  # equal weights: numpy's median
    assert _weighted_median(v, np.array([1.0, 1.0, 1.0, 5.0])) == 10.0
    assert _weighted_median(v, np.array([1.0, 3.0, 1.0, 1.0])) == 1.0


def test_frequency_weights_equal_expanded_data(hsb, rng):
    f = rng.integers(1, 4, size=len(hsb))
    formula = "prog ~ C(ses) + write + I(write**2)"
    wres = ml.mnlogit(formula, hsb, freq_weights=f).fit(tol=1e-10)
    big = hsb.loc[hsb.index.repeat(f)].reset_index(drop=True)
    eres = ml.mnlogit(formula, big).fit(tol=1e-10)
    for at in ("overall", "mean"):
        a, b = wres.get_margeff(at=at), eres.get_margeff(at=at)
        np.testing.assert_allclose(a.margeff, b.margeff, rtol=1e-8, atol=1e-14)
        np.testing.assert_allclose(a.margeff_se, b.margeff_se, rtol=1e-6)


@pytest.mark.parametrize("cov_type,cov_kwds", [("HC1", None), ("cluster", {"groups": "cid"})])
def test_uses_the_results_covariance(hsb, cov_type, cov_kwds):
    res = ml.mnlogit("prog ~ C(ses) + write", hsb).fit(cov_type=cov_type, cov_kwds=cov_kwds)
    base = ml.mnlogit("prog ~ C(ses) + write", hsb).fit()
    me, me0 = res.get_margeff(), base.get_margeff()
    np.testing.assert_allclose(me.margeff, me0.margeff, rtol=1e-12)
    G = me.jacobian
    np.testing.assert_allclose(
        me.margeff_cov.to_numpy(), G @ res.cov_params().to_numpy() @ G.T, rtol=1e-12
    )
    assert not np.allclose(me.margeff_se, me0.margeff_se, rtol=1e-3)
    assert cov_type in str(me.summary())
