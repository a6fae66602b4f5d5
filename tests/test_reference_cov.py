"""Covariance matrices against the R references in tests/reference (``*_cov.csv``).

Binary models: R glm with sandwich::vcovHC (HC0) and sandwich::vcovCL (cluster, G/(G-1));
multinomial: the sandwich computed in tests/reference/R/hsbdemo.R from VGAM's fit.  HC1 is
Stata's, HC0 * n/(n-1); with frequency weights every matrix is that of the data with each row
repeated (n their sum).
"""

import numpy as np
import pytest

import multilogit as ml
from tests.reference_data import CASES, load_covariances
from tests.test_reference import fit_case

# Exact references (see tests/test_reference.py).  Matrices are compared on the correlation
# scale, |V - V_ref| <= RTOL sqrt(diag V_ref_i diag V_ref_j), so near-zero covariances between
# unrelated terms do not need relative agreement beyond what the standard errors carry.
RTOL = 1e-9

COV_TYPES = ("nonrobust", "HC0", "HC1", "cluster")


@pytest.mark.parametrize("cov_type", COV_TYPES)
@pytest.mark.parametrize(
    "name, weighted",
    [
        pytest.param(name, weighted, id=f"{name}{'-fw' if weighted else ''}")
        for name in CASES
        for weighted in (False, True)
    ],
)
def test_covariance_matches_r(name, weighted, cov_type):
    refs, _ = load_covariances(name + ("_fw" if weighted else "") + "_cov")
    ref = refs[cov_type]
    kwds = {}
    if cov_type == "cluster":
        case = CASES[name]
        kwds["cov_kwds"] = {"groups": case.groups(ml.datasets.load(case.dataset))}
    res = fit_case(name, weighted, cov_type=cov_type, **kwds)
    cov = res.cov_params()
    cov = cov.rename(index=str, level=0).rename(columns=str, level=0)
    assert sorted(cov.index) == sorted(ref.index)
    cov = cov.loc[ref.index, ref.index].to_numpy()
    expected = ref.to_numpy()
    sd = np.sqrt(np.diag(expected))
    np.testing.assert_array_less(np.abs(cov - expected), RTOL * np.outer(sd, sd))
    # the standard errors, as reported
    bse = res.bse.rename(columns=str).stack()
    bse = bse.reorder_levels([1, 0]).loc[ref.index].to_numpy()
    np.testing.assert_allclose(bse, sd, rtol=RTOL, atol=0)


@pytest.mark.parametrize("name", list(CASES))
def test_robust_references_differ(name):
    """The four matrices are distinct, so each comparison above tests its own estimator."""
    refs, _ = load_covariances(name + "_cov")
    se = {k: np.sqrt(np.diag(v.to_numpy())) for k, v in refs.items()}
    for a in COV_TYPES:
        for b in COV_TYPES:
            if a < b:
                assert np.max(np.abs(se[a] / se[b] - 1)) > 1e-3, (a, b)
