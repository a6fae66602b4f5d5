"""Relative-risk ratios, re-basing on another reference outcome without refitting, and the
softmax coefficient sets.

References: a refit with the other reference (tolerance 1e-8, both fits at tol 1e-12 so the
solver error is ~1e-16), Stata's ``mlogit, rrr`` definitions (exp(b), exp(b) se, exp(CI limits)),
and the identities of the softmax parameterisation.
"""

import warnings

import numpy as np
import patsy
import pytest
import statsmodels.api as sm
from scipy import stats

import multilogit as ml
from multilogit.inference.reparam import SoftmaxParams, pivot_matrix
from tests import kernels_numpy as twin

FORMULA = "prog ~ ses + write"


def _sm_mnlogit(hsb, order, **kw):
    """statsmodels' MNLogit on patsy's design, outcomes coded in ``order`` (reference first).

    Its params are (terms x equations) and its covariance equation-major, as ours.
    """
    X = np.asarray(patsy.dmatrix(FORMULA.split("~")[1], hsb))
    codes = hsb["prog"].astype(str).map({lv: i for i, lv in enumerate(order)}).to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return X, sm.MNLogit(codes, X).fit(disp=0, method="newton", tol=1e-12, **kw)


@pytest.fixture(scope="module")
def hsb():
    return ml.datasets.load("hsbdemo")


@pytest.fixture(scope="module")
def res(hsb):
    return ml.mnlogit(FORMULA, hsb).fit(tol=1e-12)


def test_rrr(hsb, res):
    tab = res.rrr()
    # Stata's definitions applied to statsmodels' estimates (rtol 1e-6: both fits converge to
    # ~1e-12, so the difference is the two solvers' rounding).
    _, ref = _sm_mnlogit(hsb, ["academic", "general", "vocation"])
    b = np.asarray(ref.params).ravel("F")
    se = np.asarray(ref.bse).ravel("F")
    np.testing.assert_allclose(tab["rrr"], np.exp(b), rtol=1e-6)
    np.testing.assert_allclose(tab["std err"], np.exp(b) * se, rtol=1e-6)
    q = stats.norm.ppf(0.95)
    tab10 = res.rrr(alpha=0.1)
    np.testing.assert_allclose(tab10["lower"], np.exp(b - q * se), rtol=1e-6)
    np.testing.assert_allclose(tab10["upper"], np.exp(b + q * se), rtol=1e-6)
    np.testing.assert_allclose(tab["z"], b / se, rtol=1e-6)
    np.testing.assert_allclose(tab["P>|z|"], 2 * stats.norm.sf(np.abs(b / se)), rtol=1e-5)
    # hsbdemo published coefficient: general write -0.05792840971193 -> rrr 0.94372...
    np.testing.assert_allclose(
        tab.loc[("general", "write"), "rrr"], np.exp(-0.05792840971193), rtol=1e-6
    )


def test_summary_rrr(res):
    text = str(res.summary(rrr=True))
    assert "rrr" in text and "coef" not in text.split("=====")[-1]
    assert f"{np.exp(res.params.loc['write', 'general']):.4f}" in text
    assert "coef" in str(res.summary())


@pytest.mark.parametrize("new_ref", ["general", "vocation"])
@pytest.mark.parametrize("cov_type", ["nonrobust", "HC1", "cluster"])
def test_repivot_equals_refit(hsb, res, new_ref, cov_type):
    kw = {"groups": "cid"} if cov_type == "cluster" else {}
    base = res if cov_type == "nonrobust" else res.get_robustcov_results(cov_type, **kw)
    piv = base.repivot(new_ref)
    refit = ml.mnlogit(FORMULA, hsb, ref=new_ref).fit(tol=1e-12, cov_type=cov_type, cov_kwds=kw)
    assert piv.ref == new_ref and piv is not base
    assert list(piv.params.columns) == list(refit.params.columns)
    np.testing.assert_allclose(piv.params, refit.params, rtol=0, atol=1e-8)
    np.testing.assert_allclose(piv.cov_params(), refit.cov_params(), rtol=0, atol=1e-8)
    np.testing.assert_allclose(piv.bse, refit.bse, rtol=1e-8)
    np.testing.assert_allclose(piv.llf, refit.llf, rtol=1e-12)
    np.testing.assert_allclose(piv.predict(), refit.predict(), atol=1e-10)
    assert piv.cov_type == cov_type
    # the original is untouched
    assert base.ref == "academic"


def test_repivot_state_allows_new_covariance(hsb, res):
    piv = res.repivot("vocation")
    refit = ml.mnlogit(FORMULA, hsb, ref="vocation").fit(tol=1e-12)
    assert list(piv.params.columns) == ["academic", "general"]
    # The repivoted covariance inverts the information of the vocation-based parameters, from
    # the NumPy twin (academic coded 0, general 1, vocation the reference -1).
    X, ref = _sm_mnlogit(hsb, ["vocation", "academic", "general"], cov_type="HC0")
    y = hsb["prog"].astype(str).map({"academic": 0, "general": 1, "vocation": -1}).to_numpy()
    info = twin.information(X, y, np.ones(len(X)), piv.params.to_numpy().T)
    # (atol for the structural zeros: ses middle and high never both 1, rounding left ~1e-14)
    np.testing.assert_allclose(
        np.linalg.inv(piv.cov_params().to_numpy()), info, rtol=1e-8, atol=1e-10
    )
    # A new covariance type from the repivoted fit: statsmodels' HC0 with that reference.
    hc0 = piv.get_robustcov_results("HC0")
    np.testing.assert_allclose(hc0.cov_params().to_numpy(), np.asarray(ref.cov_params()), 1e-6)
    np.testing.assert_allclose(
        hc0.cov_params(), refit.get_robustcov_results("HC0").cov_params(), atol=1e-8
    )
    # round trip
    back = piv.repivot("academic")
    np.testing.assert_allclose(back.params, res.params, atol=1e-12)
    np.testing.assert_allclose(back.cov_params(), res.cov_params(), atol=1e-12)
    assert res.repivot("academic") is res


def test_repivot_errors(res):
    with pytest.raises(ml.DataError, match="not a level"):
        res.repivot("art")


def test_pivot_matrix_is_invertible_map(res):
    A = pivot_matrix(res.model.outcome, "general", res.model.k_exog)
    B = pivot_matrix(res.model.outcome.with_ref("general"), "academic", res.model.k_exog)
    np.testing.assert_allclose(B @ A, np.eye(8), atol=1e-15)


def test_softmax_params(res):
    ref = res.softmax_params()
    assert isinstance(ref, SoftmaxParams)
    assert list(ref.params.columns) == ["academic", "general", "vocation"]
    np.testing.assert_array_equal(ref.params["academic"], 0)
    np.testing.assert_allclose(ref.params[["general", "vocation"]], res.params, rtol=1e-15)
    mean = res.softmax_params(center="mean")
    np.testing.assert_allclose(mean.params.sum(axis=1), 0, atol=1e-12)
    # only differences are identified: every normalisation gives the same differences, equal to
    # the coefficients with another reference
    piv = res.repivot("vocation")
    for sp in (ref, mean):
        diff = sp.params["general"] - sp.params["vocation"]
        np.testing.assert_allclose(diff, piv.params["general"], atol=1e-12)
    # covariance of the sum-to-zero set: M V M', and the variance of a difference matches
    C = mean.cov.to_numpy()
    assert np.linalg.matrix_rank(C) == 8
    p = 4
    k = 3  # write
    d = np.zeros(12)
    d[1 * p + k], d[2 * p + k] = 1, -1
    np.testing.assert_allclose(np.sqrt(d @ C @ d), piv.bse.loc["write", "general"], rtol=1e-10)
    np.testing.assert_allclose(mean.bse.to_numpy() ** 2, np.diag(C).reshape(3, 4).T)
    # the sum-to-zero set does not depend on the reference used to fit
    other = piv.softmax_params(center="mean")
    np.testing.assert_allclose(other.params, mean.params, atol=1e-10)
    np.testing.assert_allclose(other.cov, mean.cov, atol=1e-10)
    with pytest.raises(ValueError, match="center"):
        res.softmax_params(center="median")
