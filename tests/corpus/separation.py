"""Adversarial separation inputs: labels, diverging coefficients and warn mode at large N."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

import multilogit as ml

from . import Case, Raises, Right, Warns


def _thresholds(n, seed=0):
    """Outcome a / b / c by thresholds -0.5 and 0.5 of x: complete separation; z is noise."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    y = np.where(x < -0.5, "a", np.where(x < 0.5, "b", "c"))
    return pd.DataFrame({"x": x, "z": rng.normal(size=n), "y": y})


def _one_outcome(n, seed=1):
    """Outcome c exactly where the dummy g is 1; a and b mixed elsewhere; x, z noise."""
    rng = np.random.default_rng(seed)
    g = (rng.random(n) < 0.2).astype(int)
    y = rng.choice(["a", "b"], n).astype(object)
    y[g == 1] = "c"
    return pd.DataFrame({"x": rng.normal(size=n), "z": rng.normal(size=n), "y": y, "g": g})


def _fit(formula, df, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ml.PerfectSeparationWarning)
        return ml.mnlogit(formula, df, **kw).fit()


def _complete_check(res):
    # b - a must rise through -0.5 and c - b through 0.5 (slopes and b's intercept signed);
    # c's intercept (where c crosses a, anywhere between) and z can stay finite.
    assert res.separation.kind == "complete"
    assert res.separation.diverging == [("b", "Intercept"), ("b", "x"), ("c", "x")]


def _one_outcome_check(res):
    # g = 0 rows force c's intercept below 0, g = 1 rows force c:g above minus it; c:x, c:z
    # (and b:g, which only g = 1 rows could tell) can stay finite.
    sep = res.separation
    assert sep.diverging == [("c", "Intercept"), ("c", "g")]
    assert sorted(sep.unidentified) == [("b", "g"), ("c", "x"), ("c", "z")]


def _zero_weight_ref():
    rng = np.random.default_rng(1)
    y = rng.choice(["a", "b", "c"], 300)
    df = pd.DataFrame({"x": rng.normal(size=300), "y": y, "w": np.where(y == "a", 0.0, 1.0)})
    return ml.mnlogit("y ~ x", df, freq_weights="w").fit()


def _huge_two_rows():
    df = pd.DataFrame({"x": [1e300, -3e299], "y": ["u", "v"]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # overflow in the column scaling
        return ml.mnlogit("y ~ x", df).fit()


def _huge_check(res):
    assert res.separation.kind == "complete"
    assert res.bse.isna().all().all()  # no covariance where the saturated fit stopped


CASES = [
    Case(
        "separation_complete_at_1e5_rows_is_complete",
        lambda: _fit("y ~ x + z", _thresholds(100_000)),
        Right(_complete_check),
    ),
    Case(
        "separation_one_outcome_names_exactly_the_diverging_at_2e4_rows",
        lambda: _fit("y ~ g + x + z", _one_outcome(20_000)),
        Right(_one_outcome_check),
    ),
    Case(
        "separation_one_outcome_names_exactly_the_diverging_at_400_rows",
        lambda: _fit("y ~ g + x + z", _one_outcome(400)),
        Right(_one_outcome_check),
    ),
    Case(
        "separation_warn_with_reference_of_zero_weight_names_it",
        _zero_weight_ref,
        Raises(ml.DataError, "reference outcome 'a' has zero total weight"),
    ),
    Case(
        "separation_warn_with_non_finite_information_warns",
        _huge_two_rows,
        Warns(ml.PerfectSeparationWarning, "complete separation", _huge_check),
    ),
]
