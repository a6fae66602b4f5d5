"""Degrees of freedom and statistic of the Hausman-McFadden IIA test when the variance
difference is not positive definite, against covariances from two independent statsmodels fits.

The stated rule (see ``iia_test``): df is the rank of the difference standardised by the
restricted fit's standard errors, eigenvalues at or below sqrt(eps) counting as zero, and the
statistic uses the Moore-Penrose inverse of that standardised difference with the same cutoff.
"""

import numpy as np
import pandas as pd
import patsy
import pytest
import statsmodels.api as sm
from scipy import stats

import multilogit as ml

TOL = np.sqrt(np.finfo(float).eps)


def _sm_fit(y, X):
    # Newton to a tight tolerance: the fits' own convergence error must stay far below TOL.
    return sm.MNLogit(y, X).fit(method="newton", disp=0, maxiter=200, tol=1e-12)


def _by_hand(y, X, omit):
    """(statistic, rank, dimension) from statsmodels fits; outcome codes 0..K-1, reference 0."""
    K = int(y.max()) + 1
    p = X.shape[1]
    full = _sm_fit(y, X)
    keep = y != omit
    remaining = [k for k in range(K) if k != omit]
    sub_y = np.searchsorted(remaining, y[keep])
    sub = _sm_fit(sub_y, X[keep])
    # statsmodels: params (p, K-1) and cov_params equation-major; equation j is outcome j + 1.
    idx_f = [(k - 1) * p + c for k in remaining[1:] for c in range(p)]
    Vf = np.asarray(full.cov_params())[np.ix_(idx_f, idx_f)]
    Vr = np.asarray(sub.cov_params())
    bf = np.asarray(full.params).T.ravel()[idx_f]
    br = np.asarray(sub.params).T.ravel()
    Vd = Vr - Vf
    se = np.sqrt(np.diag(Vr))
    R = Vd / np.outer(se, se)
    z = (br - bf) / se
    stat = float(z @ np.linalg.pinv(R, rcond=TOL / np.abs(np.linalg.eigvalsh(R)).max()) @ z)
    return stat, int(np.linalg.matrix_rank(R, tol=TOL)), len(z), Vd


def _blocks_data(seed=1):
    """Rows in two blocks with separate coefficients: block 1 has an intercept and a
    continuous z, block 2 only its own intercept.  Block 2's one-cell model is saturated, so
    its log odds (and their variance) are the same with or without the omitted outcome: the
    variance difference has rank 2 of 3, exactly."""
    rng = np.random.default_rng(seed)
    n1, n2 = 400, 200
    z = rng.normal(size=n1)
    eta = np.column_stack([np.zeros(n1), 0.3 + 0.8 * z, -0.2 - 0.6 * z])
    P = np.exp(eta) / np.exp(eta).sum(1, keepdims=True)
    y1 = (rng.uniform(size=(n1, 1)) > P.cumsum(1)).sum(1)
    y2 = rng.choice(3, n2, p=[0.3, 0.4, 0.3])
    X = np.zeros((n1 + n2, 3))
    X[:n1, 0] = 1.0
    X[:n1, 1] = z
    X[n1:, 2] = 1.0
    return np.r_[y1, y2], X


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_rank_deficient_difference(seed):
    y, X = _blocks_data(seed)
    t = ml.MultinomialLogit(y, X).fit().iia_test(2)
    stat, rank, dim, Vd = _by_hand(y, X, omit=2)
    assert (rank, dim) == (2, 3)
    # Without the tolerance, rounding noise makes the difference look full rank: the test
    # would then count a degree of freedom for a direction with nothing in it.
    assert np.linalg.matrix_rank(Vd) == 3
    assert t.df == rank
    assert "rank 2 of 3" in t.note
    # rtol 1e-6: two independent fits, each converged far below that.
    np.testing.assert_allclose(t.statistic, stat, rtol=1e-6)
    np.testing.assert_allclose(t.pvalue, stats.chi2.sf(stat, 2), rtol=1e-6)


def test_equally_efficient_fits_have_nothing_to_test():
    # One cell per block, no continuous term: saturated, the difference is zero (rank 0).
    rng = np.random.default_rng(4)
    g = rng.integers(0, 3, 600)
    X = np.eye(3)[g]
    y = rng.integers(0, 3, 600)
    t = ml.MultinomialLogit(y, X).fit().iia_test(1)
    stat, rank, _, _ = _by_hand(y, X, omit=1)
    assert rank == 0 and t.df == 0
    assert abs(t.statistic) < 1e-12 and abs(stat) < 1e-12
    assert np.isnan(t.pvalue)


@pytest.fixture(scope="module")
def hsb():
    return ml.datasets.load("hsbdemo")


@pytest.mark.parametrize("omit", ["general", "vocation"])
def test_indefinite_difference_on_hsbdemo(hsb, omit):
    # prog ~ ses + write + read + math: V_r - V_f has negative eigenvalues (not positive
    # definite) but full rank, so df is the number of compared coefficients.
    X = np.asarray(patsy.dmatrix("C(ses) + write + read + math", hsb))
    y = pd.Categorical(hsb["prog"]).codes.astype(np.int64)  # academic = 0, the reference
    levels = list(hsb["prog"].cat.categories)
    t = ml.mnlogit("prog ~ C(ses) + write + read + math", hsb, ref="academic").fit(tol=1e-10)
    t = t.iia_test(omit)
    stat, rank, dim, Vd = _by_hand(y, X, omit=levels.index(omit))
    assert np.linalg.eigvalsh(Vd).min() < 0
    assert t.df == rank == dim == 6
    assert "not positive definite" in t.note
    np.testing.assert_allclose(t.statistic, stat, rtol=1e-5)
