"""Constants of the separation checks and of the solver, each pinned by data that sit between
a tenth and ten times its value: changing one by a factor of 10 either way fails a test here.

* ``separation._BIG_COEF`` (15): a coefficient this large in unit-column coordinates (every
  column's largest magnitude 1) makes the solver run the separation check.
* ``recession.TAU`` (1e-8): an (observation, outcome) pair counts as separated when its
  margin can exceed this along a recession direction of largest component 1.
* ``separation._GATE`` (0.05): on large data the check runs only when the last Newton step's
  negative margins weigh at most this fraction of its positive ones.
* The solver's step-halving accepts a step that lowers the log-likelihood by at most
  ``1e-12 * (1 + |llf|)`` (rounding at the optimum).

And the Wald test under separation: NaN with a note when it involves a diverging coefficient,
the ordinary statistic otherwise.
"""

import warnings

import numpy as np
import pytest

import multilogit as ml
from multilogit.engine.backend import Derivatives
from multilogit.fit import separation as sepmod
from multilogit.solve.newton import NewtonOptions, newton

# -- _BIG_COEF ---------------------------------------------------------------------------------


def _offset_data(offset, spread, slope, n=1500, seed=0):
    """Three outcomes, ``x = offset + u`` with ``u`` uniform on ``[0, spread]``; the log odds
    move by ``slope * spread`` across the data, far from separation.  With a large offset the
    coefficients are large in unit-column coordinates (the intercept cancels ``slope *
    offset``) though the fitted probabilities are moderate."""
    rng = np.random.default_rng(seed)
    u = rng.uniform(0.0, spread, n)
    c = slope * (u - spread / 2)
    eta = np.column_stack([np.zeros(n), c, -0.5 * c])
    P = np.exp(eta) / np.exp(eta).sum(1, keepdims=True)
    y = (rng.uniform(size=(n, 1)) > P.cumsum(1)).sum(1)
    return y, np.column_stack([np.ones(n), offset + u])


def _fit_counting_checks(monkeypatch, y, X):
    calls = []
    original = sepmod.model_separation

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(sepmod, "model_separation", counting)
    seen = []  # largest unit-column coefficient over all iterates
    amax = np.abs(X).max(axis=0)
    res = ml.MultinomialLogit(y, X).fit(
        callback=lambda b, row: seen.append(np.abs(b.reshape(2, -1) * amax).max())
    )
    assert res.converged and res.separation is None
    return len(calls), max(seen)


def test_moderate_coefficients_do_not_trigger_the_check(monkeypatch):
    # Every iterate stays between 1.5 and 15 in unit-column coordinates.
    y, X = _offset_data(offset=10.0, spread=10.0, slope=0.25)
    n_checks, largest = _fit_counting_checks(monkeypatch, y, X)
    assert 1.5 * 2 < largest < 15 / 2
    assert n_checks == 0


def test_large_coefficients_trigger_the_check(monkeypatch):
    # The converged coefficients reach about 44 (between 15 and 150) without separation: the
    # check runs once and finds nothing.
    y, X = _offset_data(offset=1000.0, spread=100.0, slope=0.04)
    n_checks, largest = _fit_counting_checks(monkeypatch, y, X)
    assert 15 * 2 < largest < 150 / 2
    assert n_checks == 1


# -- TAU -----------------------------------------------------------------------------------------


def _margin_data(margin, reps=20):
    """Two outcomes, columns (1, x, z).  Both outcomes occur at (x, z) = (0, 0) and (1, 1), so
    a recession direction must be (0, t, -t); one more row of the first outcome sits at
    (margin, 0): its pair is the only strict one, with margin ``t * margin <= margin``."""
    rows, y = [], []
    for x, z in [(0.0, 0.0), (1.0, 1.0)]:
        for out in (0, -1):
            rows += [(1.0, x, z)] * reps
            y += [out] * reps
    rows.append((1.0, margin, 0.0))
    y.append(0)
    return np.array(rows), np.array(y)


def test_margin_above_the_threshold_is_separation():
    X, y = _margin_data(3e-8)  # between 1e-8 and 1e-7
    sep = sepmod.find_separation(X, y, 1)
    assert sep is not None and sep.kind == "quasi-complete"
    assert sep.n_separated == 1.0


def test_margin_below_the_threshold_is_rounding():
    X, y = _margin_data(3e-9)  # between 1e-9 and 1e-8
    assert sepmod.find_separation(X, y, 1) is None


# -- _GATE -------------------------------------------------------------------------------------


def _gate_monitor(wrong_share, n=40_000, seed=0):
    """A large two-outcome data set (more pairs than the always-check limit), ``x = +-1``,
    the outcome following ``x`` except on a share of rows; a last Newton step of 1 on the
    slope (not shrinking, late in the fit).  Its negative margins (the rows against ``x``)
    weigh ``wrong_share / (1 - wrong_share)`` of the positive ones."""
    rng = np.random.default_rng(seed)
    x = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    y = (x > 0).astype(np.int64)
    flip = rng.permutation(n)[: int(round(wrong_share * n))]
    y[flip] = 1 - y[flip]
    model = ml.MultinomialLogit(y, np.column_stack([np.ones(n), x]))
    assert len(model.exog) * model.J > sepmod._SMALL_PAIRS
    monitor = sepmod.SeparationMonitor(model, "warn", np.ones(2))
    monitor._it = 2 * sepmod._SLOW_ITER
    monitor._last_delta = np.array([[0.0, 1.0]])
    monitor._before_step = 1.0
    return monitor


def test_gate_passes_a_nearly_recession_step():
    m = _gate_monitor(0.016)  # ratio 0.0163: between 0.005 and 0.05
    pos, neg, _, _ = m._pair_stats(m._last_delta)
    assert 0.005 * 2 < neg / pos < 0.05 / 2
    assert m._plausible()


def test_gate_stops_an_ordinary_step():
    m = _gate_monitor(0.14)  # ratio 0.163: between 0.05 and 0.5
    pos, neg, _, _ = m._pair_stats(m._last_delta)
    assert 0.05 * 2 < neg / pos < 0.5 / 2
    assert not m._plausible()


# -- step-halving tolerance --------------------------------------------------------------------


class _Dip:
    """One parameter; the score and information point to +1 from 0, but every point other
    than 0 has a log-likelihood lower by ``rel * (1 + |llf|)``, as rounding at an optimum."""

    n = 1

    def __init__(self, rel, llf=-1000.0):
        self.rel, self.llf = rel, llf

    def derivatives(self, beta, hessian):
        llf = self.llf if np.all(beta == 0) else self.llf - self.rel * (1 + abs(self.llf))
        return Derivatives(llf, np.ones((1, 1)), np.eye(1) if hessian else None)


def _first_step(rel):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ml.ConvergenceWarning)
        sol = newton(_Dip(rel), np.zeros((1, 1)), NewtonOptions(maxiter=1, hessian="exact"))
    return float(sol.beta[0, 0])


def test_step_lowering_llf_by_rounding_is_taken():
    assert _first_step(3e-13) == 1.0  # between 1e-13 and 1e-12: taken in full


def test_step_lowering_llf_beyond_rounding_is_refused():
    assert _first_step(3e-12) == 0.0  # between 1e-12 and 1e-11: halved to nothing


# -- Wald tests under separation -----------------------------------------------------------------


@pytest.fixture(scope="module")
def separated():
    hsb = ml.datasets.load("hsbdemo")
    with pytest.warns(ml.PerfectSeparationWarning):
        res = ml.mnlogit("prog ~ C(awards) + write", hsb).fit()
    # awards = 4 never has "general", awards = 5 never "vocation": those coefficients diverge.
    assert res.separation.terms == ("C(awards)[T.4]", "C(awards)[T.5]")
    return res


@pytest.mark.parametrize(
    "constraint",
    ["general:C(awards)[T.4]", "C(awards)[T.5]", "general:C(awards)[T.4] = vocation:write"],
)
def test_wald_involving_a_diverging_coefficient_is_nan(separated, constraint):
    t = separated.wald_test(constraint)
    assert np.isnan(t.statistic) and np.isnan(t.pvalue)
    assert "separation" in t.note
    # The note names the coefficients without an estimate that the constraint uses.
    named = [s for s in ("general:C(awards)[T.4]", "general:C(awards)[T.5]") if s in t.note]
    named += [s for s in ("vocation:C(awards)[T.5]",) if s in t.note]
    assert named and "vocation:write" not in t.note


def test_wald_not_involving_them_is_the_ordinary_statistic(separated):
    # One coefficient: the square of its z statistic (the published params and bse).
    for eq, term in [("general", "write"), ("vocation", "C(awards)[T.4]")]:
        t = separated.wald_test(f"{eq}:{term}")
        z = separated.params.loc[term, eq] / separated.bse.loc[term, eq]
        np.testing.assert_allclose(t.statistic, z**2, rtol=1e-10)
        assert t.df == 1 and not t.note
    # Jointly, by hand from the published covariance.
    names = [("general", "write"), ("vocation", "write"), ("general", "C(awards)[T.7]")]
    b = np.array([separated.params.loc[t, o] for o, t in names])
    V = separated.cov_params().loc[names, names].to_numpy()
    t = separated.wald_test([f"{o}:{term}" for o, term in names])
    np.testing.assert_allclose(t.statistic, b @ np.linalg.solve(V, b), rtol=1e-10)
    assert t.df == 3 and np.isfinite(t.pvalue)


def test_wald_terms_table_under_separation(separated):
    with pytest.warns(ml.PerfectSeparationWarning, match=r"'C\(awards\)' \(diverging"):
        table = separated.wald_test_terms()
    assert np.isnan(table.loc["C(awards)", "statistic"])
    np.testing.assert_allclose(
        table.loc["write", "statistic"], separated.wald_test("write").statistic, rtol=1e-12
    )
    assert np.isfinite(table.loc["write", "statistic"])
