"""Penalised fits (``fit(penalty="l2")``, ``fit_regularized``) against nnet, scikit-learn,
statsmodels and first principles.

Reference numbers (read from ``tests/reference/*.csv``; the scripts beside them):

* ``*_l2_nnet.csv``: ``nnet::multinom(decay = d)`` (``R/nnet_decay.R``), the ridge of every
  reference-coded coefficient, intercepts too: ``alpha = 2 d``, ``l2_form="reference"``,
  ``penalize_intercept=True``.  nnet's BFGS stops with a gradient of ~1e-6 (restarts do not
  improve it), which leaves its estimates up to ~4e-7 relative (3e-8 absolute) from the
  optimum: compared at 3e-7 relative or 5e-8 absolute (its objective value, second order in
  the error, at 1e-10).
* ``*_l2_sklearn.csv``: scikit-learn's multinomial ``LogisticRegression(C=c)``
  (``python/sklearn_ridge.py``), converged to a gradient below 1e-12: ``alpha = 1 / c``,
  ``l2_form="symmetric"``, intercepts unpenalised; compared at 1e-9.
* ``anes96_l1_*.csv``: statsmodels' ``MNLogit.fit_regularized(method="l1")`` test case
  (``python/statsmodels_l1.py``): the KKT-certified exact minimiser (compared at 1e-9), the
  numbers statsmodels' own tests use (8 printed decimals, from an SLSQP solve: 1e-6 absolute)
  and a live statsmodels run (SLSQP, ~2e-5 absolute).
* ``admissions_*_glmnet*.csv``: R ``glmnet(family = "binomial", standardize = FALSE)`` elastic
  net and lasso (K = 2; ``R/glmnet_enet.R``), stationary to 1e-10 per observation: ``alpha =
  n * lambda`` on the slopes, ``L1_wt = a``; compared at 1e-9 relative or 1e-10 absolute.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import multilogit as ml
from multilogit.exceptions import ConvergenceWarning
from multilogit.fit.penalized import PenaltyOptions
from tests.reference_data import REFERENCE_DIR, load_reference

ALLIGATOR_LEVELS = {
    "foodchoice": ["Fish", "Invertebrate", "Reptile", "Bird", "Other"],
    "lake": ["Hancock", "Oklawaha", "Trafford", "George"],
    "size": ["<=2.3", ">2.3"],
}


def alligators() -> pd.DataFrame:
    df = pd.read_csv(REFERENCE_DIR / "data" / "alligators.csv")
    for column, levels in ALLIGATOR_LEVELS.items():
        df[column] = pd.Categorical(df[column], categories=levels)
    return df


def model_for(case: str):
    if case == "hsbdemo":
        return ml.mnlogit("prog ~ ses + write", ml.datasets.load("hsbdemo"), ref="academic")
    df = alligators()
    w = df["freq"].to_numpy(dtype=float)
    return ml.mnlogit("foodchoice ~ size + lake", df, ref="Fish", freq_weights=w)


def anes96_model():
    sm = pytest.importorskip("statsmodels.api")
    data = sm.datasets.anes96.load_pandas()
    exog = sm.add_constant(data.exog, prepend=False)
    return ml.MultinomialLogit(data.endog, exog)


def anes96_alpha(model) -> np.ndarray:
    """statsmodels' TestMNLogitL1 weights: 10 on every slope, 0 on the constants (terms x
    outcomes, as params)."""
    alpha = 10.0 * np.ones((model.k_exog, model.J))
    alpha[-1, :] = 0.0
    return alpha


def frame(res, values) -> pd.DataFrame:
    out = values.copy()
    out.columns = [str(c) for c in res.params.columns]
    return out


def as_ref(res, expected, values) -> np.ndarray:
    """``values`` (shaped like params) in the reference file's row and column order."""
    out = frame(res, values)
    cols = [c if c in out.columns else str(float(c)) for c in expected.coef.columns]
    return out.loc[expected.coef.index, cols].to_numpy()


def penalised_gradient(model, res, matrix) -> np.ndarray:
    """Score of the log-likelihood less the quadratic penalty, flat, from first principles."""
    b = res._beta.ravel()
    return model.score(b) - matrix @ b


# -- ridge ----------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["hsbdemo", "alligators"])
def test_reference_ridge_matches_nnet_decay(case):
    expected = load_reference(f"{case}_l2_nnet")
    decay = expected.scalars["decay"]
    res = model_for(case).fit(
        penalty="l2", alpha=2 * decay, l2_form="reference", penalize_intercept=True
    )
    assert res.converged
    np.testing.assert_allclose(
        as_ref(res, expected, res.params), expected.coef, rtol=3e-7, atol=5e-8
    )
    # nnet's value is the minimised -loglik + decay * sum(B^2).
    assert -res.llf_penalized == pytest.approx(expected.scalars["value"], rel=1e-10)
    assert res.llf == pytest.approx(expected.scalars["llf"], rel=1e-9)


@pytest.mark.parametrize("case", ["hsbdemo", "alligators"])
def test_symmetric_ridge_matches_sklearn(case):
    expected = load_reference(f"{case}_l2_sklearn")
    res = model_for(case).fit(penalty="l2", alpha=1.0 / expected.scalars["C"])
    assert res.converged
    np.testing.assert_allclose(
        as_ref(res, expected, res.params), expected.coef, rtol=1e-9, atol=1e-12
    )
    assert res.llf == pytest.approx(expected.scalars["llf"], rel=1e-11)


def test_ridge_is_stationary_and_reports_both_likelihoods():
    model = model_for("hsbdemo")
    alpha = 3.0
    res = model.fit(penalty="l2", alpha=alpha, l2_form="reference")
    J, p = model.J, model.k_exog
    weights = np.ones(p)
    weights[0] = 0.0  # the intercept is unpenalised by default
    A = alpha * np.diag(np.tile(weights, J))
    assert np.max(np.abs(penalised_gradient(model, res, A))) < 1e-8
    b = res._beta.ravel()
    assert res.llf == pytest.approx(model.loglike(b), rel=1e-13)
    assert res.llf_penalized == pytest.approx(res.llf - 0.5 * b @ A @ b, rel=1e-13)
    # Standard errors: the inverse of the penalised information.
    cov = np.linalg.inv(-model.hessian(b) + A)
    np.testing.assert_allclose(res.cov_params().to_numpy(), cov, rtol=1e-9, atol=1e-14)
    assert res.penalty["name"] == "l2"
    assert "approximate Bayesian" in res.inference


def test_symmetric_penalty_is_the_centred_sum_of_squares():
    model = model_for("alligators")
    alpha = 0.7
    res = model.fit(penalty="l2", alpha=alpha)
    beta = res._beta  # J x p, reference-coded
    W = np.vstack([np.zeros(beta.shape[1]), beta])  # all K outcomes
    W = W - W.mean(axis=0)  # the symmetric coefficients, summing to 0
    slopes = W[:, 1:]
    assert res.llf - res.llf_penalized == pytest.approx(0.5 * alpha * np.sum(slopes**2))


def test_symmetric_ridge_does_not_depend_on_the_reference():
    df = ml.datasets.load("hsbdemo")
    fits = [
        ml.mnlogit("prog ~ ses + write", df, ref=ref).fit(penalty="l2", alpha=5.0)
        for ref in ("academic", "vocation")
    ]
    p0, p1 = (f.predict().to_numpy() for f in fits)
    np.testing.assert_allclose(p0, p1, rtol=1e-9)
    assert fits[0].llf_penalized == pytest.approx(fits[1].llf_penalized, rel=1e-12)
    ref_fits = [
        ml.mnlogit("prog ~ ses + write", df, ref=ref).fit(
            penalty="l2", alpha=5.0, l2_form="reference"
        )
        for ref in ("academic", "vocation")
    ]
    q0, q1 = (f.predict().to_numpy() for f in ref_fits)
    assert np.max(np.abs(q0 - q1)) > 1e-4  # the reference-coded ridge does depend on it


def test_ridge_alpha_zero_is_maximum_likelihood(hsb_res):
    res = model_for("hsbdemo").fit(penalty="l2", alpha=0.0)
    np.testing.assert_allclose(res.params, hsb_res.params, rtol=1e-10)
    np.testing.assert_allclose(res.bse, hsb_res.bse, rtol=1e-8)


def test_zero_penalty_is_maximum_likelihood_watched_for_separation():
    df = alligators()
    w = np.round(df["freq"].to_numpy(dtype=float) / 3)  # brglm2's separated example
    model = ml.mnlogit("foodchoice ~ size + lake", df, ref="Fish", freq_weights=w)
    for fit in (
        lambda: model.fit(penalty="l2", alpha=0.0),
        lambda: model.fit_regularized(alpha=0.0),
    ):
        with pytest.warns(ml.PerfectSeparationWarning):
            res = fit()
        assert not res.converged and res.separation is not None


def test_ridge_gives_finite_estimates_on_separated_data():
    df = alligators()
    w = np.round(df["freq"].to_numpy(dtype=float) / 3)  # brglm2's separated example
    model = ml.mnlogit("foodchoice ~ size + lake", df, ref="Fish", freq_weights=w)
    res = model.fit(penalty="l2", alpha=1.0)
    assert res.converged and res.separation is None
    assert np.all(np.isfinite(res.bse.to_numpy()))


def test_penalties_in_rescaled_coordinates_apply_to_the_original_coefficients(rng):
    from tests.conftest import simulate

    X, y = simulate(rng, n=400, p=3, K=3)
    X = X.copy()
    X[:, 2] *= 2.0**24  # forces the solver's column rescaling
    model = ml.MultinomialLogit(y, X)
    colmax = np.tile(np.abs(X).max(axis=0), model.J)
    res = model.fit(penalty="l2", alpha=2.0, l2_form="reference")
    A = 2.0 * np.diag(np.tile([0.0, 1.0, 1.0], model.J))
    b = res._beta.ravel()
    # Stationary in every coordinate, relative to its column's size.
    assert np.max(np.abs(penalised_gradient(model, res, A)) / colmax) < 1e-8 * len(y)
    assert res.llf - res.llf_penalized == pytest.approx(0.5 * b @ A @ b, rel=1e-12)
    a = np.tile([0.0, 5.0, 5.0], model.J)
    lasso = model.fit_regularized(alpha=a)
    b = lasso._beta.ravel()
    g = model.score(b)
    on = (b != 0) & (a > 0)
    np.testing.assert_allclose(g[on], a[on] * np.sign(b[on]), rtol=1e-7)
    assert np.all(np.abs(g[b == 0]) <= a[b == 0])
    assert lasso.llf - lasso.llf_penalized == pytest.approx(np.sum(a * np.abs(b)), rel=1e-12)


def test_ridge_robust_covariance_uses_the_penalised_bread():
    model = model_for("hsbdemo")
    res = model.fit(penalty="l2", alpha=2.0, cov_type="HC0")
    b = res._beta.ravel()
    bread = np.linalg.inv(res._state.info)
    meat = model.backend.score_outer(res._beta)
    np.testing.assert_allclose(res.cov_params().to_numpy(), bread @ meat @ bread, rtol=1e-9)
    # The bread is the penalised information: the likelihood's plus the symmetric ridge's.
    M = np.eye(model.J) - 1.0 / (model.J + 1)
    A = 2.0 * np.kron(M, np.diag([0.0, 1.0, 1.0, 1.0]))
    np.testing.assert_allclose(res._state.info, -model.hessian(b) + A, rtol=1e-12, atol=1e-9)


def test_symmetric_ridge_repivots_to_the_refit():
    df = ml.datasets.load("hsbdemo")
    res = ml.mnlogit("prog ~ ses + write", df, ref="academic").fit(penalty="l2", alpha=3.0)
    refit = ml.mnlogit("prog ~ ses + write", df, ref="vocation").fit(penalty="l2", alpha=3.0)
    pivoted = res.repivot("vocation")
    np.testing.assert_allclose(pivoted.params, refit.params, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(pivoted.bse, refit.bse, rtol=1e-8)


# -- L1 ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def anes96_l1():
    model = anes96_model()
    return model.fit_regularized(
        method="l1", alpha=anes96_alpha(model), trim_mode="auto", auto_trim_tol=0.02
    )


def test_l1_matches_the_exact_minimiser(anes96_l1):
    res = anes96_l1
    expected = load_reference("anes96_l1_kkt")
    assert res.converged
    np.testing.assert_allclose(
        as_ref(res, expected, res.params), expected.coef, rtol=1e-9, atol=1e-12
    )
    np.testing.assert_allclose(as_ref(res, expected, res.bse), expected.se, rtol=1e-8)
    zeros = expected.coef.to_numpy() == 0
    assert np.array_equal(as_ref(res, expected, res.trimmed), zeros)
    assert np.all(as_ref(res, expected, res.params)[zeros] == 0.0)  # exact zeros
    assert res.nnz_params == expected.scalars["nnz_params"] == res.k_params
    assert res.llf == pytest.approx(expected.scalars["llf"], rel=1e-12)
    assert res.aic == pytest.approx(expected.scalars["aic"], rel=1e-12)
    assert res.bic == pytest.approx(expected.scalars["bic"], rel=1e-12)


def test_l1_matches_statsmodels_published_and_live_numbers(anes96_l1):
    res = anes96_l1
    # statsmodels' own test numbers: 8 printed decimals from an SLSQP solve (acc=1e-10), whose
    # constants are up to 5e-6 off the minimiser (statsmodels' tests compare at 1e-4).
    published = load_reference("anes96_l1_published")
    np.testing.assert_allclose(as_ref(res, published, res.params), published.coef, atol=1e-5)
    np.testing.assert_allclose(as_ref(res, published, res.bse), published.se, atol=1e-6)
    assert res.nnz_params == published.scalars["nnz_params"]
    assert res.aic == pytest.approx(published.scalars["aic"], abs=1e-3)
    assert res.bic == pytest.approx(published.scalars["bic"], abs=1e-3)
    # statsmodels run now: its SLSQP stops ~2e-5 short of the minimiser.
    live = load_reference("anes96_l1_statsmodels")
    np.testing.assert_allclose(as_ref(res, live, res.params), live.coef, atol=5e-5)
    np.testing.assert_allclose(as_ref(res, live, res.bse), live.se, atol=5e-6)
    assert res.nnz_params == live.scalars["nnz_params"]


def test_l1_satisfies_the_optimality_conditions(anes96_l1):
    res = anes96_l1
    model = res.model
    a = anes96_alpha(model).T.ravel()
    b = res._beta.ravel()
    g = model.score(b)
    nonzero = b != 0
    pen = a > 0
    np.testing.assert_allclose(g[nonzero & pen], a[nonzero & pen] * np.sign(b[nonzero & pen]))
    assert np.max(np.abs(g[~pen])) < 1e-8
    assert np.all(np.abs(g[~nonzero]) <= a[~nonzero])
    assert res.llf - res.llf_penalized == pytest.approx(np.sum(a * np.abs(b)), rel=1e-12)


def test_l1_reports_no_p_values_unless_naive_inference_is_asked(anes96_l1):
    res = anes96_l1
    assert np.all(np.isnan(res.pvalues.to_numpy()))
    assert np.all(np.isnan(res.conf_int().to_numpy()))
    assert "none by default" in res.inference
    text = res.summary().as_text()
    assert "Penalized ML (L1)" in text and "No p-values or intervals" in text
    model = res.model
    naive = model.fit_regularized(
        alpha=anes96_alpha(model), auto_trim_tol=0.02, naive_inference=True
    )
    keep = ~naive.trimmed.to_numpy()
    p = naive.pvalues.to_numpy()
    assert np.all(np.isfinite(p[keep])) and np.all(np.isnan(p[~keep]))
    z = naive.params.to_numpy()[keep] / naive.bse.to_numpy()[keep]
    np.testing.assert_allclose(p[keep], 2 * ml.inference.distributions.norm.sf(np.abs(z)))
    assert "naive" in naive.inference


def test_l1_alpha_zero_is_maximum_likelihood():
    model = anes96_model()
    ml_fit = model.fit()
    l1 = model.fit_regularized(alpha=0.0)
    np.testing.assert_allclose(l1.params, ml_fit.params, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(l1.bse, ml_fit.bse, rtol=1e-8)
    np.testing.assert_allclose(l1.pvalues, ml_fit.pvalues, rtol=1e-7)
    assert l1.trimmed.to_numpy().sum() == 0
    assert l1.aic == pytest.approx(ml_fit.aic, rel=1e-12)


def test_l1_alpha_as_flat_frame_or_scalar():
    model = anes96_model()
    alpha = anes96_alpha(model)
    flat = model.fit_regularized(alpha=alpha.T.ravel(), auto_trim_tol=0.02)
    framed = model.fit_regularized(
        alpha=pd.DataFrame(alpha, index=model.exog_names, columns=model.eq_outcomes)[
            list(model.eq_outcomes)[::-1]
        ],
        auto_trim_tol=0.02,
    )
    shaped = model.fit_regularized(alpha=alpha, auto_trim_tol=0.02)
    np.testing.assert_array_equal(flat.params, shaped.params)
    np.testing.assert_array_equal(framed.params, shaped.params)
    # A scalar penalises the constants too (statsmodels); penalize_intercept=False spares them.
    every = model.fit_regularized(alpha=10.0)
    spared = model.fit_regularized(alpha=10.0, penalize_intercept=False)
    assert every.penalty["penalize_intercept"] and not spared.penalty["penalize_intercept"]
    assert not np.allclose(every.params.loc["const"], spared.params.loc["const"])


def test_l1_robust_covariance_and_repivot(anes96_l1):
    res = anes96_l1
    hc0 = res.get_robustcov_results("HC0")
    trimmed = res.trimmed.to_numpy()
    assert np.all(np.isnan(hc0.bse.to_numpy()[trimmed]))
    keep = ~trimmed.T.ravel()
    H = -res.model.hessian(res._beta.ravel())[np.ix_(keep, keep)]
    meat = res.model.backend.score_outer(res._beta)[np.ix_(keep, keep)]
    bread = np.linalg.inv(H)
    expected = np.sqrt(np.diag(bread @ meat @ bread))
    np.testing.assert_allclose(hc0.bse.to_numpy().T.ravel()[keep], expected, rtol=1e-9)
    with pytest.raises(ValueError, match="refit with the model's ref="):
        res.repivot(res.outcomes[-1])


def test_l1_trim_modes():
    model = anes96_model()
    alpha = anes96_alpha(model)
    off = model.fit_regularized(alpha=alpha, trim_mode="off")
    assert off.trimmed.to_numpy().sum() == 0
    # The proximal solve's zeros are exact, so only the standard errors differ.
    auto = model.fit_regularized(alpha=alpha, auto_trim_tol=0.02)
    np.testing.assert_array_equal(off.params, auto.params)
    assert np.all(np.isfinite(off.bse.to_numpy()))
    size = model.fit_regularized(alpha=alpha, trim_mode="size", size_trim_tol=0.01)
    small = (np.abs(auto.params.to_numpy()) < 0.01) & (alpha > 0)
    np.testing.assert_array_equal(size.trimmed.to_numpy(), small)


def test_l1_auto_trim_refuses_when_the_optimum_was_not_reached():
    model = anes96_model()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = model.fit_regularized(alpha=anes96_alpha(model), maxiter=1)
    messages = [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]
    assert any("did not converge" in m for m in messages)
    assert any("qc_tol" in m for m in messages)
    assert all(w.filename == __file__ for w in caught)  # both point at the user's line
    assert not res.converged and not res.trimmed.to_numpy().any()


# -- elastic net ------------------------------------------------------------------------------


def test_elastic_net_satisfies_the_optimality_conditions():
    model = anes96_model()
    alpha = anes96_alpha(model)
    wt = 0.5
    res = model.fit_regularized(method="elastic_net", alpha=alpha, L1_wt=wt)
    assert res.converged
    a = alpha.T.ravel() * wt
    r = alpha.T.ravel() * (1 - wt)
    b = res._beta.ravel()
    g = model.score(b) - r * b
    nonzero = b != 0
    pen = a > 0
    np.testing.assert_allclose(g[nonzero & pen], a[nonzero & pen] * np.sign(b[nonzero & pen]))
    assert np.max(np.abs(g[~pen])) < 1e-8
    assert np.all(np.abs(g[~nonzero]) <= a[~nonzero])
    assert res.trimmed.to_numpy().sum() == np.sum(~nonzero)
    assert res.summary().as_text().count("Elastic-net (L1_wt=0.5)") == 1


@pytest.mark.parametrize(
    "name", ["admissions_enet_glmnet_a05", "admissions_enet_glmnet_a09", "admissions_lasso_glmnet"]
)
def test_elastic_net_and_lasso_match_glmnet(name, admissions):
    expected = load_reference(name)
    sc = expected.scalars
    model = ml.mnlogit("admit ~ gre + gpa + C(rank)", admissions)
    method = "l1" if sc["a"] == 1 else "elastic_net"
    # glmnet divides the log-likelihood by n: our alpha is n * lambda.
    res = model.fit_regularized(
        method=method, alpha=sc["n"] * sc["lambda"], L1_wt=sc["a"], penalize_intercept=False
    )
    assert res.converged
    got = as_ref(res, expected, res.params)
    # glmnet's residual gradient (4e-12 per observation) leaves ~6e-11 in the rank effects.
    np.testing.assert_allclose(got, expected.coef, rtol=1e-9, atol=1e-10)
    np.testing.assert_array_equal(got == 0, expected.coef.to_numpy() == 0)
    assert res.llf == pytest.approx(sc["llf"], rel=1e-11)


def test_elastic_net_without_l1_is_the_reference_ridge():
    model = model_for("hsbdemo")
    net = model.fit_regularized(method="elastic_net", alpha=2.0, L1_wt=0.0)
    ridge = model.fit(penalty="l2", alpha=2.0, l2_form="reference", penalize_intercept=True)
    np.testing.assert_allclose(net.params, ridge.params, rtol=1e-10)
    assert net.llf_penalized == pytest.approx(ridge.llf_penalized, rel=1e-13)


# -- persistence, backends, errors --------------------------------------------------------------


def test_penalised_fits_survive_save_and_load(tmp_path, anes96_l1):
    for name, res in (
        ("l1", anes96_l1),
        ("l2", model_for("hsbdemo").fit(penalty="l2", alpha=1.5)),
    ):
        path = tmp_path / f"{name}.mlz"
        res.save(path)
        back = ml.load(path)
        assert back.penalty == res.penalty
        assert back.llf == pytest.approx(res.llf, rel=1e-15)
        assert back.llf_penalized == pytest.approx(res.llf_penalized, rel=1e-15)
        np.testing.assert_array_equal(back.bse, res.bse)
        np.testing.assert_array_equal(back.pvalues, res.pvalues)
        assert back.k_params == res.k_params
        assert back.summary().as_text() == res.summary().as_text()


def test_parquet_l1_fit_equals_in_memory(tmp_path):
    df = ml.datasets.load("hsbdemo")
    df = df.assign(prog=df["prog"].astype(str), ses=df["ses"].astype(str))
    path = tmp_path / "hsb.parquet"
    df.to_parquet(path, row_group_size=37)
    formula = "prog ~ ses + write + math + science"
    kwargs = {"alpha": 4.0, "penalize_intercept": False}
    memory = ml.mnlogit(formula, df, ref="academic").fit_regularized(**kwargs)
    streamed = ml.mnlogit(formula, ml.parquet(path), ref="academic").fit_regularized(**kwargs)
    assert memory.trimmed.to_numpy().any()
    np.testing.assert_allclose(streamed.params, memory.params, rtol=1e-10, atol=1e-14)
    np.testing.assert_array_equal(streamed.trimmed, memory.trimmed)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"penalty": "l2", "alpha": -1.0}, "nonnegative"),
        ({"penalty": "l2", "alpha": np.nan}, "nonnegative"),
        ({"penalty": "l2"}, "needs alpha"),
        ({"penalty": "l2", "alpha": np.ones(8)}, "one alpha"),
        ({"penalty": "l2", "alpha": 1.0, "l2_form": "glmnet"}, "l2_form"),
        ({"penalty": "lasso", "alpha": 1.0}, "penalty must be None or 'l2'"),
        ({"penalty": "l1", "alpha": 1.0}, "fit_regularized"),
        ({"alpha": 1.0}, "pass penalty='l2'"),
        ({"penalty": "l2", "alpha": 1.0, "method": "firth"}, "takes no other penalty"),
    ],
)
def test_fit_penalty_errors_name_the_problem(kwargs, match):
    with pytest.raises(ValueError, match=match):
        model_for("hsbdemo").fit(**kwargs)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"method": "l2"}, "'l1' or 'elastic_net'"),
        ({"alpha": -0.5}, "nonnegative"),
        ({"alpha": np.ones(7)}, "one value per coefficient"),
        ({"alpha": np.full((4, 2), np.inf)}, "nonnegative in every coefficient"),
        ({"alpha": "big"}, "nonnegative number"),
        ({"method": "elastic_net", "L1_wt": 1.5}, r"\[0, 1\]"),
        ({"trim_mode": "all"}, "trim_mode"),
        ({"hessian": "auto"}, "hessian='exact'"),
    ],
)
def test_fit_regularized_errors_name_the_problem(kwargs, match):
    with pytest.raises(ValueError, match=match):
        model_for("hsbdemo").fit_regularized(**{"alpha": 1.0, **kwargs})


def test_penalty_options_reject_unknown_names():
    with pytest.raises(ValueError, match="unknown penalty 'l3'"):
        PenaltyOptions("l3", alpha=1.0)


def test_likelihood_ratio_refits_are_refused_for_penalised_fits():
    res = model_for("hsbdemo").fit(penalty="l2", alpha=1.0)
    with pytest.raises(ValueError, match="not available for penalised fits"):
        res.model.fit(**{k: v for k, v in res.fit_options.items() if not k.startswith("cov_")})


def test_ridge_with_sampling_weights_maximises_the_weighted_objective(hsbdemo):
    # Sampling weights are normalised inside the solver; the penalty must follow, so the fit
    # is the maximiser of sum w_i l_i - P, the same objective as with frequency weights w.
    w = 1e-3 * (1.0 + np.arange(len(hsbdemo)) % 7)
    sampled = ml.mnlogit("prog ~ ses + write", hsbdemo, weights=w).fit(penalty="l2", alpha=0.01)
    counted = ml.mnlogit("prog ~ ses + write", hsbdemo, freq_weights=w * 1000).fit(
        penalty="l2", alpha=10.0
    )
    np.testing.assert_allclose(sampled.params, counted.params, rtol=1e-8, atol=1e-12)
