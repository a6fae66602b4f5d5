"""Estimates against the R references in tests/reference, and against statsmodels at test time.

Every CSV in tests/reference is written by a script beside it (tests/reference/R); the tests read
the committed numbers and never need R.
"""

import re

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

import multilogit as ml
from tests.reference_data import CASES, REFERENCE_DIR, load_reference

# The R references are converged until the Newton step is below 1e-12 relative (asserted by the
# scripts) and printed with 17 significant digits, so they are exact to ~1e-12; multilogit's
# default fit is accurate to about tol**2 = 1e-16.  1e-9 leaves three orders of magnitude for
# the conditioning of the information matrix and nothing for a fit stopped early (an R fit at
# its default tolerances is ~1e-8 off in the standard errors and fails this).
RTOL = 1e-9

SCALARS = ("llf", "llnull", "aic", "bic", "deviance")

PARAMS = [
    pytest.param(name, weighted, id=f"{name}{'-fw' if weighted else ''}")
    for name in CASES
    for weighted in (False, True)
]


def fit_case(name, weighted, **fit_kwds):
    case = CASES[name]
    df = ml.datasets.load(case.dataset)
    fw = case.freq_weights(df) if weighted else None
    model = ml.mnlogit(case.formula, df, ref=case.ref, freq_weights=fw)
    return model.fit(**fit_kwds)


def aligned(frame, ref):
    """multilogit's terms x outcomes frame, outcomes as strings, in the reference's order."""
    frame = frame.rename(columns=str)
    assert sorted(frame.index) == sorted(ref.index)
    assert sorted(frame.columns) == sorted(ref.columns)
    return frame.loc[ref.index, ref.columns]


@pytest.mark.parametrize("name, weighted", PARAMS)
def test_estimates_match_r(name, weighted):
    ref = load_reference(name + ("_fw" if weighted else ""))
    res = fit_case(name, weighted)
    assert res.converged
    pd.testing.assert_frame_equal(
        aligned(res.params, ref.coef), ref.coef, check_names=False, rtol=RTOL, atol=0
    )
    pd.testing.assert_frame_equal(
        aligned(res.bse, ref.se), ref.se, check_names=False, rtol=RTOL, atol=0
    )
    for key in SCALARS:
        assert getattr(res, key) == pytest.approx(ref.scalars[key], rel=RTOL, abs=0), key
    # Counts are exact: with frequency weights nobs is their sum.
    assert res.nobs == ref.scalars["nobs"]
    assert res.df_model == ref.scalars["df_model"]


@pytest.mark.parametrize("name, weighted", PARAMS)
def test_score_vanishes_at_r_estimates(name, weighted):
    """multilogit's log-likelihood and derivatives at R's estimates: the same log-likelihood,
    and a Newton step (from multilogit's score and Hessian) that moves nothing at 1e-10."""
    ref = load_reference(name + ("_fw" if weighted else ""))
    model = fit_case(name, weighted).model
    params = pd.DataFrame(
        ref.coef.to_numpy(),
        index=ref.coef.index,
        columns=[type(model.ref)(c) for c in ref.coef.columns],
    )
    beta = params.loc[model.exog_names, list(model.eq_outcomes)].to_numpy().T.ravel()
    assert model.loglike(beta) == pytest.approx(ref.scalars["llf"], rel=1e-13, abs=0)
    step = np.linalg.solve(-model.hessian(beta), model.score(beta))
    assert np.max(np.abs(step) / np.abs(beta)) < 1e-10


def test_reference_files_record_their_source():
    """Each reference names the committed script that wrote it and the engine's versions."""
    files = sorted(REFERENCE_DIR.glob("*.csv"))
    names = {path.stem for path in files}
    for case in CASES:  # the estimates and covariances of each case, plain and weighted
        assert {case, f"{case}_cov", f"{case}_fw", f"{case}_fw_cov"} <= names, case
    for path in files:
        header = [line for line in path.read_text().splitlines() if line.startswith("#")]
        produced = re.match(
            r"# produced by: (Rscript (tests/reference/R/\S+\.R)|python "
            r"(tests/reference/python/\S+\.py))",
            header[0],
        )
        assert produced, path.name
        script = produced.group(2) or produced.group(3)
        assert (REFERENCE_DIR.parent.parent / script).is_file(), path.name
        engine = "# engine: R version" if produced.group(2) else "# engine: Python"
        assert any(line.startswith(engine) for line in header), path.name
        # Computed references say how far they converged (profiles: their root search;
        # quantities derived from a converged fit: their method);
        # published ones cite their source.
        settled = ("# convergence:", "# source:", "# profile:", "# method:")
        assert any(line.startswith(settled) for line in header), path.name


# -- statsmodels, fitted at test time ------------------------------------------------------------


def test_hsbdemo_matches_statsmodels_mnlogit(hsbdemo, hsb_res):
    df = hsbdemo.assign(y=hsbdemo["prog"].cat.codes)
    sm_res = smf.mnlogit("y ~ ses + write", df).fit(method="newton", disp=0, tol=1e-14)
    # statsmodels' Newton at tol 1e-14 reaches the same MLE (observed 1e-13): same RTOL as R.
    np.testing.assert_allclose(hsb_res.params.to_numpy(), sm_res.params.to_numpy(), rtol=RTOL)
    np.testing.assert_allclose(hsb_res.bse.to_numpy(), sm_res.bse.to_numpy(), rtol=RTOL)
    np.testing.assert_allclose(hsb_res.llf, sm_res.llf, rtol=1e-12)
    # statsmodels fits the null model iteratively at its default tolerance (4e-11 off the closed
    # form sum n_k log(n_k / n) that multilogit and R's intercept-only fit give).
    np.testing.assert_allclose(hsb_res.llnull, sm_res.llnull, rtol=1e-9)
    np.testing.assert_allclose(hsb_res.llr_pvalue, sm_res.llr_pvalue, rtol=1e-8)
    np.testing.assert_allclose(hsb_res.prsquared, sm_res.prsquared, rtol=1e-9)
    # statsmodels' cov_params is flat in the same outcome-major order.
    np.testing.assert_allclose(hsb_res.cov_params().to_numpy(), sm_res.cov_params(), rtol=RTOL)
    sm_ci = sm_res.conf_int().to_numpy()
    np.testing.assert_allclose(hsb_res.conf_int().to_numpy(), sm_ci, rtol=RTOL)


@pytest.mark.parametrize("name", ["admissions_admit_gre_gpa", "admissions_admit_gre_gpa_rank"])
def test_k2_equals_binary_logit(admissions, name):
    formula = CASES[name].formula
    res = ml.mnlogit(formula, admissions).fit()
    assert res.ref == 0 and res.outcomes == [0, 1]

    # statsmodels' binary Logit (Newton) and GLM(Binomial) (IRLS) on the same design, both at
    # tol 1e-14, reach the MLE to ~1e-13; the GLM's own default tol leaves its bse 2e-7 off.
    data = admissions.assign(rank=admissions["rank"].astype(int))
    logit = smf.logit(formula, data).fit(disp=0, method="newton", tol=1e-14)
    glm = smf.glm(formula, data, family=sm.families.Binomial()).fit(tol=1e-14)
    for other in (logit, glm):
        np.testing.assert_allclose(res.params[1].to_numpy(), other.params.to_numpy(), rtol=RTOL)
        np.testing.assert_allclose(res.bse[1].to_numpy(), other.bse.to_numpy(), rtol=RTOL)
        assert res.llf == pytest.approx(other.llf, rel=1e-12)

    # The other reference outcome: beta = beta_1 - beta_2 negates R's coefficients exactly.
    ref = load_reference(name)
    flipped = ml.mnlogit(formula, admissions, ref=1).fit()
    coef = flipped.params.loc[ref.coef.index, 0]
    np.testing.assert_allclose(coef.to_numpy(), -ref.coef["1"].to_numpy(), rtol=RTOL)
    se = flipped.bse.loc[ref.se.index, 0]
    np.testing.assert_allclose(se.to_numpy(), ref.se["1"].to_numpy(), rtol=RTOL)
    assert flipped.llf == pytest.approx(ref.scalars["llf"], rel=RTOL)


def test_array_interface_matches_formula(admissions):
    X = sm.add_constant(admissions[["gre", "gpa"]])
    res = ml.MultinomialLogit(admissions["admit"], X).fit()
    ref = load_reference("admissions_admit_gre_gpa")
    assert list(res.params.index) == ["const", "gre", "gpa"]
    coef = ref.coef["1"].rename({"Intercept": "const"})
    np.testing.assert_allclose(res.params[1].to_numpy(), coef.to_numpy(), rtol=RTOL)
    se = ref.se["1"].rename({"Intercept": "const"})
    np.testing.assert_allclose(res.bse[1].to_numpy(), se.to_numpy(), rtol=RTOL)
