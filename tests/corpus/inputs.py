"""Adversarial inputs: weight scales, prediction rows, null models, labels, options, outcomes
without weight, ill-conditioning and near-collinearity (``tests/test_inputs_reliability.py``
has the fuller tests).

References are independent of the code under test: fits on weights of ordinary scale, on
``bool`` and ``str`` data, and the closed form of the intercept-only log-likelihood.
"""

from __future__ import annotations

import functools

import numpy as np

import multilogit as ml

from . import Case, Raises, Right, Warns

FORMULA = "prog ~ ses + write"


@functools.cache
def _hsb():
    return ml.datasets.load("hsbdemo")


@functools.cache
def _pweights() -> np.ndarray:
    return np.random.default_rng(5).uniform(0.5, 2.0, 200)


@functools.cache
def _base():
    return ml.mnlogit(FORMULA, _hsb(), weights=_pweights()).fit(tol=1e-10)


def _scaled_fit(scale):
    return lambda: ml.mnlogit(FORMULA, _hsb(), weights=_pweights() * scale).fit(tol=1e-10)


def _same_as_base(res):
    base = _base()
    assert res.converged
    np.testing.assert_allclose(res.params, base.params, rtol=1e-9)
    np.testing.assert_allclose(res.bse, base.bse, rtol=1e-9)


def _predict_new(missing):
    def run():
        res = ml.mnlogit(FORMULA, _hsb(), missing=missing).fit()
        new = _hsb().head(3).copy()
        new["write"] = new["write"].astype(float)
        new.loc[new.index[0], "write"] = np.inf
        return res.predict(new)

    return run


def _kept_rows_only(pred):
    assert list(pred.index) == [1, 2] and np.isfinite(pred.to_numpy()).all()


def _closed_form_llnull(res):
    n_k = _hsb()["prog"].value_counts().to_numpy().astype(float)
    np.testing.assert_allclose(res.llnull, np.sum(n_k * np.log(n_k / n_k.sum())), rtol=1e-12)


def _no_null_model(res):
    assert np.isnan(res.llnull) and np.isnan(res.llr_pvalue) and np.isnan(res.prsquared)


def _boolean_column():
    d = _hsb().assign(b=_hsb()["write"] > 50)
    a = ml.mnlogit("prog ~ b + write", d).fit()
    n = ml.mnlogit("prog ~ nb + write", d.assign(nb=d["b"].astype("boolean"))).fit()
    return a, n


def _equal_fits(pair):
    np.testing.assert_array_equal(pair[0].params.to_numpy(), pair[1].params.to_numpy())


def _tuple_labels():
    names = {"academic": ("a", 1), "general": ("g", 2), "vocation": ("v", 3)}
    d = _hsb().assign(t=[names[p] for p in _hsb()["prog"]])
    return ml.mnlogit("t ~ write", d, ref=("a", 1)).fit(), ml.mnlogit("prog ~ write", d).fit()


def _zero_weight_outcome(ref):
    def run():
        wt = np.where(_hsb()["prog"].to_numpy() == "vocation", 0.0, 1.0)
        return ml.mnlogit(FORMULA, _hsb(), weights=wt, ref=ref).fit()

    return run


def _bad_start():
    start = np.array([[1000.0, -20.0, 0.0], [-1000.0, 20.0, 0.0]]).T
    return ml.mnlogit("prog ~ write + math", _hsb()).fit(start_params=start)


def _conditioning_noted(res):
    assert "ill-conditioned" in str(res.summary())
    # The slope of prog ~ write (-0.066008 for 'general'): the offset moves the intercept only.
    np.testing.assert_allclose(res.params.loc["x"].to_numpy()[0], -0.066008, rtol=1e-4)


def _offset(off):
    return lambda: ml.mnlogit("prog ~ x", _hsb().assign(x=_hsb()["write"] + off)).fit()


CASES = [
    Case("inputs_pweights_times_1e-16", _scaled_fit(1e-16), Right(_same_as_base)),
    Case("inputs_pweights_times_1e-200_hc1", _scaled_fit(1e-200), Right(_same_as_base)),
    Case("inputs_pweights_times_1e200", _scaled_fit(1e200), Right(_same_as_base)),
    Case(
        "inputs_fweights_total_below_one",
        lambda: ml.mnlogit(FORMULA, _hsb(), freq_weights=np.full(200, 1e-16)),
        Raises(ml.DataError, "freq_weights sum to 2e-14"),
    ),
    Case(
        "inputs_fweights_total_beyond_2_53",
        lambda: ml.mnlogit(FORMULA, _hsb(), freq_weights=np.full(200, 1e200)),
        Raises(ml.DataError, "more than 2**53"),
    ),
    Case("inputs_predict_inf_raise", _predict_new("raise"), Raises(ml.DataError, "infinite")),
    Case(
        "inputs_predict_inf_drop",
        _predict_new("drop"),
        Warns(UserWarning, "1 of 3 new row(s)", _kept_rows_only),
    ),
    Case(
        "inputs_no_constant_no_null_model",
        lambda: ml.mnlogit("prog ~ 0 + write", _hsb()).fit(),
        Right(_no_null_model),
    ),
    Case(
        "inputs_implicit_constant_null_model",
        lambda: ml.mnlogit("prog ~ 0 + C(ses) + write", _hsb()).fit(),
        Right(_closed_form_llnull),
    ),
    Case("inputs_nullable_boolean_column", _boolean_column, Right(_equal_fits)),
    Case(
        "inputs_formula_without_terms",
        lambda: ml.mnlogit("prog ~ 0", _hsb()),
        Raises(ml.DataError, "no parameters"),
    ),
    Case("inputs_tuple_outcome_labels", _tuple_labels, Right(_equal_fits)),
    Case(
        "inputs_maxiter_none",
        lambda: ml.mnlogit(FORMULA, _hsb()).fit(maxiter=None),
        Raises(ValueError, "maxiter must be a non-negative integer; got None"),
    ),
    Case(
        "inputs_tol_string",
        lambda: ml.mnlogit(FORMULA, _hsb()).fit(tol="abc"),
        Raises(ValueError, "tol must be a positive number; got 'abc'"),
    ),
    Case(
        "inputs_zero_weight_outcome",
        _zero_weight_outcome(None),
        Raises(ml.DataError, "outcome(s) 'vocation' (50 row(s)) have zero total weight"),
    ),
    Case(
        "inputs_zero_weight_reference",
        _zero_weight_outcome("vocation"),
        Raises(ml.DataError, "choose another ref= among the outcomes with positive weight"),
    ),
    Case("inputs_bad_start_values", _bad_start, Raises(ml.FitError, "ill-conditioning")),
    Case(
        "inputs_offset_1e7_ill_conditioned",
        _offset(1e7),
        Warns(UserWarning, "the standard errors are accurate to only", _conditioning_noted),
    ),
    Case(
        "inputs_offset_1e8_near_collinear",
        _offset(1e8),
        Raises(ml.DataError, "'x' is nearly (not exactly) a linear combination of 'Intercept'"),
    ),
]
