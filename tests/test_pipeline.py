"""The fit pipeline records every option once, and every internal refit reuses it: after
``fit(drop_collinear=True)`` the likelihood-ratio tools work and equal the same tools on the
model written without the aliased column."""

import warnings

import numpy as np
import pytest

import multilogit as ml


@pytest.fixture(scope="module")
def hsb_aliased(hsbdemo):
    df = hsbdemo.assign(write2=2.0 * hsbdemo["write"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        aliased = ml.mnlogit("prog ~ ses + write + write2 + read", df, ref="academic").fit(
            drop_collinear=True
        )
    plain = ml.mnlogit("prog ~ ses + write + read", df, ref="academic").fit()
    return aliased, plain


def test_options_are_recorded(hsb_aliased):
    aliased, _ = hsb_aliased
    opts = aliased.fit_options
    assert opts["drop_collinear"] is True
    assert opts["method"] == "newton" and opts["hessian"] == "auto"
    assert opts["tol"] == 1e-8 and opts["maxiter"] == 100 and opts["separation"] == "warn"
    assert opts["cov_type"] == "nonrobust" and opts["cov_kwds"] == {}


def test_anova_after_drop_collinear(hsb_aliased):
    aliased, plain = hsb_aliased
    a, b = aliased.anova(), plain.anova()
    for term in ("ses", "read"):
        np.testing.assert_allclose(a.loc[term], b.loc[term], rtol=1e-7)
    # write and write2 span the same column: dropping either loses no estimable parameter and
    # no fit (R's drop1 reports Df 0 for them).
    for term in ("write", "write2"):
        assert a.loc[term, "statistic"] == pytest.approx(0.0, abs=1e-8)
        assert a.loc[term, "df"] == 0 and np.isnan(a.loc[term, "pvalue"])
    assert b.loc["write", "df"] == 2


def test_combine_lr_after_drop_collinear(hsb_aliased):
    aliased, plain = hsb_aliased
    a = aliased.test_combine("general", "vocation", method="lr")
    b = plain.test_combine("general", "vocation", method="lr")
    assert a.statistic == pytest.approx(b.statistic, rel=1e-7)


def test_iia_after_drop_collinear(hsb_aliased):
    aliased, plain = hsb_aliased
    a, b = aliased.iia_test("vocation"), plain.iia_test("vocation")
    assert a.statistic == pytest.approx(b.statistic, rel=1e-6)


def test_lr_test_after_drop_collinear(hsb_aliased, hsbdemo):
    aliased, plain = hsb_aliased
    small = ml.mnlogit("prog ~ ses", hsbdemo, ref="academic").fit()
    a, b = aliased.lr_test(small), plain.lr_test(small)
    assert a.statistic == pytest.approx(b.statistic, rel=1e-9)
    assert a.df == b.df == 4


def test_refits_reuse_the_recorded_iteration_limit(hsbdemo):
    with pytest.warns(ml.ConvergenceWarning):
        res = ml.mnlogit("prog ~ ses + write", hsbdemo, ref="academic").fit(maxiter=1)
    # Each drop-one refit stops after one iteration too, and says so.
    with pytest.warns(ml.ConvergenceWarning):
        res.anova()


def test_refits_ignore_row_aligned_covariance_options(hsbdemo):
    res = ml.mnlogit("prog ~ ses + write", hsbdemo, ref="academic").fit(
        cov_type="cluster", cov_kwds={"groups": "cid"}
    )
    plain = ml.mnlogit("prog ~ ses + write", hsbdemo, ref="academic").fit()
    # The IIA refit drops rows: cluster ids of the full data would not fit them.
    assert res.iia_test("general").statistic == pytest.approx(
        plain.iia_test("general").statistic, rel=1e-12
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"method": "bfgs"}, "method must be 'newton'"),
        ({"hessian": "diag"}, "hessian must be 'auto' or 'exact'"),
        ({"maxiter": -1}, "maxiter must be a non-negative integer"),
        ({"maxiter": 2.5}, "maxiter must be a non-negative integer"),
        ({"tol": 0.0}, "tol must be a positive number"),
        ({"tol": float("nan")}, "tol must be a positive number"),
        ({"tol": "small"}, "tol must be a positive number"),
        ({"separation": "maybe"}, "separation must be one of"),
        ({"cov_type": "HC9"}, "unknown cov_type"),
    ],
)
def test_bad_options_are_named(hsbdemo, kwargs, message):
    model = ml.mnlogit("prog ~ write", hsbdemo)
    with pytest.raises(ValueError, match=message):
        model.fit(**kwargs)


@pytest.mark.parametrize("hessian", ["auto", "exact"])
def test_iteration_log_counts_the_passes_over_the_rows(hessian):
    from multilogit.solve.newton import NewtonOptions, newton

    rng = np.random.default_rng(5)
    X = np.column_stack([np.ones(40_000), rng.normal(size=(40_000, 3))])
    y = rng.integers(0, 3, 40_000)
    model = ml.MultinomialLogit(y, X)

    class Counting:
        def __init__(self, inner):
            self.inner, self.calls, self.n = inner, 0, inner.n
            self.approx_information = inner.approx_information
            self.sample_rows = inner.sample_rows

        def derivatives(self, beta, hessian=True):
            self.calls += 1
            return self.inner.derivatives(beta, hessian)

    backend = Counting(model.backend)
    sol = newton(backend, model.start_params(), NewtonOptions(hessian=hessian))
    passes = sol.log["passes"].to_numpy()
    assert passes[-1] == backend.calls
    # Each step reads the rows at least once, but a settled last step (taken without
    # evaluating its end, after a sampled phase) reads nothing.
    steps, reads = sol.log["step"].to_numpy()[1:] > 0, np.diff(passes)
    settled = hessian == "auto"
    last = len(reads) - settled
    assert steps[-1] and np.all(reads[:last][steps[:last]] >= 1) and np.all(reads >= 0)
    assert (reads[-1] == 0) == settled
    res = model.fit(hessian=hessian)
    assert res.iteration_log["passes"].iloc[-1] == backend.calls
