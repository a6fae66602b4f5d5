"""The quick rank check may use the row subsample only where that proves the bound on all rows."""

import numpy as np
import pytest

import multilogit as ml
from multilogit.fit.rank import QUICK_TOL, check_design


def _relative_residual(X, k):
    """Column ``k``'s residual after least squares on the earlier columns, over its norm."""
    coef, *_ = np.linalg.lstsq(X[:, :k], X[:, k], rcond=None)
    return np.linalg.norm(X[:, k] - X[:, :k] @ coef) / np.linalg.norm(X[:, k])


def _data(n, rng, near):
    x1 = rng.standard_normal(n)
    x2 = x1 + near * rng.standard_normal(n)
    X = np.column_stack([np.ones(n), x1, x2])
    y = rng.integers(0, 3, n)
    return X, y


def test_nearly_collinear_on_all_rows_is_factored_though_the_subsample_looks_fine():
    # The sampled rows (every n // m-th) carry most of the difference between x1 and x2: on
    # them alone the last column is clearly independent, on all rows it is nearly aliased.
    rng = np.random.default_rng(0)
    n = 200_000
    X, y = _data(n, rng, 1e-6)
    model = ml.MultinomialLogit(y, X)
    sub = model.backend.subsample()
    assert sub is not None
    step = n // model.backend.sample_rows
    rows = np.arange(model.backend.sample_rows) * step
    X[rows, 2] = X[rows, 1] + 3e-3 * rng.standard_normal(len(rows))
    model = ml.MultinomialLogit(y, X)
    sampled = np.ascontiguousarray(X[rows])
    assert _relative_residual(sampled, 2) > QUICK_TOL  # the subsample alone would pass
    assert _relative_residual(X, 2) < QUICK_TOL  # all rows do not
    found: dict = {}
    assert check_design(model, False, found) is None  # nearly, not exactly, collinear
    # The design was factored: its condition number is known (and large).
    assert found["cond"] > 1.0 / QUICK_TOL


@pytest.mark.parametrize("near", [1.0, 1e-9])
def test_shortcut_decides_as_the_whole_design(near):
    rng = np.random.default_rng(1)
    X, y = _data(100_000, rng, near)
    model = ml.MultinomialLogit(y, X)
    found: dict = {}
    if near == 1.0:
        assert check_design(model, False, found) is None
        assert "cond" not in found  # clearly of full rank: no factorisation needed
    else:
        with pytest.raises(ml.DataError, match="x3"):
            check_design(model, False, found)
