"""Parameters given to the likelihood, its derivatives and predictions must be real.

A complex vector (from complex-step derivative tools) used to lose its imaginary part with only a
ComplexWarning, so the tool got derivatives of zero.  Real input is checked against statsmodels'
``MNLogit`` likelihood at the same parameters (same layout: outcome-major, first level the
reference).
"""

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

import multilogit as ml


@pytest.fixture(scope="module")
def model():
    return ml.mnlogit("prog ~ ses + write", ml.datasets.load("hsbdemo"))


@pytest.fixture(scope="module")
def params(model):
    return np.random.default_rng(2).normal(scale=0.05, size=model.J * model.k_exog)


@pytest.mark.parametrize("method", ["loglike", "score", "hessian", "predict"])
def test_complex_params_raise(model, params, method):
    fn = getattr(model, method)
    bad = [
        params + 1e-20j,
        params.astype(complex),  # zero imaginary part: still not a real array
        pd.DataFrame(params.reshape(model.J, -1).T.astype(complex)),
    ]
    for p in bad:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no ComplexWarning on the way
            with pytest.raises(TypeError, match="params must be real"):
                fn(p)


def test_complex_start_params_raise(model, params):
    with pytest.raises(TypeError, match="params must be real"):
        model.fit(start_params=params + 0j)


def test_real_params_unchanged(model, params):
    sm_model = sm.MNLogit(model.level_codes, model.exog)
    np.testing.assert_allclose(model.loglike(params), sm_model.loglike(params), rtol=1e-12)
    np.testing.assert_allclose(model.score(params), sm_model.score(params), rtol=1e-10)
    np.testing.assert_allclose(model.hessian(params), sm_model.hessian(params), rtol=1e-10)
    shaped = pd.DataFrame(params.reshape(model.J, -1).T)
    assert model.loglike(shaped) == model.loglike(list(params)) == model.loglike(params)
    sm_prob = sm_model.predict(shaped.to_numpy())
    np.testing.assert_allclose(np.asarray(model.predict(params)), sm_prob, rtol=1e-12)
