"""Estimates against published R/Stata/statsmodels reference numbers (tests/reference)."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

import multilogit as ml
from tests.reference_data import load_reference

# Both references were converged to 1e-14 and agree across R and statsmodels to 1e-9, so 1e-7
# relative leaves room only for the last printed digits.
RTOL = 1e-7


def test_hsbdemo_prog_ses_write(hsb_res):
    ref = load_reference("hsbdemo_prog_ses_write")
    pd.testing.assert_frame_equal(
        hsb_res.params, ref.coef, check_names=False, check_exact=False, rtol=RTOL, atol=0
    )
    pd.testing.assert_frame_equal(
        hsb_res.bse, ref.se, check_names=False, check_exact=False, rtol=RTOL, atol=0
    )
    for name in ("llf", "llnull", "aic", "bic", "deviance", "nobs"):
        assert getattr(hsb_res, name) == pytest.approx(ref.scalars[name], rel=RTOL), name
    assert hsb_res.converged
    assert hsb_res.df_model == 6
    assert hsb_res.df_resid == 192


def test_hsbdemo_mle_is_tight(hsb_res):
    """The estimates are the MLE to far better than the published digits: the score vanishes
    and one more Newton step moves nothing at 1e-10 relative."""
    model = hsb_res.model
    beta = hsb_res._beta.ravel()
    g = model.score(beta)
    step = np.linalg.solve(-model.hessian(beta), g)
    assert np.max(np.abs(step) / np.abs(beta)) < 1e-10


def test_hsbdemo_matches_statsmodels_mnlogit(hsbdemo, hsb_res):
    df = hsbdemo.assign(y=hsbdemo["prog"].cat.codes)
    sm_res = smf.mnlogit("y ~ ses + write", df).fit(method="newton", disp=0, tol=1e-14)
    np.testing.assert_allclose(hsb_res.params.to_numpy(), sm_res.params.to_numpy(), rtol=1e-7)
    np.testing.assert_allclose(hsb_res.bse.to_numpy(), sm_res.bse.to_numpy(), rtol=1e-7)
    np.testing.assert_allclose(hsb_res.llf, sm_res.llf, rtol=1e-12)
    # statsmodels fits the null model iteratively; ours is the closed form sum n_k log(n_k / n).
    np.testing.assert_allclose(hsb_res.llnull, sm_res.llnull, rtol=1e-9)
    np.testing.assert_allclose(hsb_res.llr_pvalue, sm_res.llr_pvalue, rtol=1e-8)
    np.testing.assert_allclose(hsb_res.prsquared, sm_res.prsquared, rtol=1e-8)
    # statsmodels' cov_params is flat in the same outcome-major order.
    np.testing.assert_allclose(hsb_res.cov_params().to_numpy(), sm_res.cov_params(), rtol=1e-6)
    sm_ci = sm_res.conf_int().to_numpy()
    np.testing.assert_allclose(hsb_res.conf_int().to_numpy(), sm_ci, rtol=1e-6)


@pytest.mark.parametrize(
    "formula, name",
    [
        ("admit ~ gre + gpa", "admissions_admit_gre_gpa"),
        ("admit ~ gre + gpa + C(rank)", "admissions_admit_gre_gpa_rank"),
    ],
)
def test_k2_equals_binary_logit(admissions, formula, name):
    ref = load_reference(name)
    res = ml.mnlogit(formula, admissions).fit()
    assert res.ref == 0 and res.outcomes == [0, 1]
    coef = res.params.loc[ref.coef.index, 1]
    np.testing.assert_allclose(coef, ref.coef["1"], rtol=RTOL)
    np.testing.assert_allclose(res.bse.loc[ref.se.index, 1], ref.se["1"], rtol=RTOL)
    assert res.llf == pytest.approx(ref.scalars["llf"], rel=RTOL)
    for key in ("aic", "deviance"):
        if key in ref.scalars:
            assert getattr(res, key) == pytest.approx(ref.scalars[key], rel=RTOL)

    # statsmodels' binary Logit and GLM(Binomial) on the same design.
    logit = smf.logit(formula, admissions.assign(rank=admissions["rank"].astype(int))).fit(
        disp=0, method="newton", tol=1e-14
    )
    glm = smf.glm(
        formula,
        admissions.assign(rank=admissions["rank"].astype(int)),
        family=sm.families.Binomial(),
    ).fit(tol=1e-14)
    for other in (logit, glm):
        np.testing.assert_allclose(res.params[1].to_numpy(), other.params.to_numpy(), rtol=RTOL)
        np.testing.assert_allclose(res.bse[1].to_numpy(), other.bse.to_numpy(), rtol=RTOL)
        assert res.llf == pytest.approx(other.llf, rel=1e-12)

    # The other reference outcome: beta = beta_1 - beta_2 exactly negates the coefficients.
    flipped = ml.mnlogit(formula, admissions, ref=1).fit()
    np.testing.assert_allclose(flipped.params[0], -res.params[1], rtol=1e-10)
    np.testing.assert_allclose(flipped.bse[0], res.bse[1], rtol=1e-9)
    assert flipped.llf == pytest.approx(res.llf, rel=1e-13)


def test_array_interface_matches_formula(admissions):
    X = sm.add_constant(admissions[["gre", "gpa"]])
    res = ml.MultinomialLogit(admissions["admit"], X).fit()
    ref = load_reference("admissions_admit_gre_gpa")
    np.testing.assert_allclose(res.params[1].to_numpy(), ref.coef["1"].to_numpy(), rtol=RTOL)
    assert list(res.params.index) == ["const", "gre", "gpa"]
