"""A fit with dropped (aliased) columns behaves like the reduced model downstream: predictions,
marginal effects and Wald tests use the estimable coefficients and say what is not estimable."""

import numpy as np
import pytest

import multilogit as ml
from multilogit.exceptions import DataError


@pytest.fixture(scope="module")
def pair(hsbdemo):
    df = hsbdemo.assign(w2=hsbdemo["write"] * 2.0)
    full = ml.mnlogit("prog ~ ses + write + w2", df).fit(drop_collinear=True)
    reduced = ml.mnlogit("prog ~ ses + write", df).fit()
    return df, full, reduced


def test_prediction_standard_errors_equal_reduced_model(pair):
    df, full, reduced = pair
    a = full.get_prediction(df.head(5)).summary_frame()
    b = reduced.get_prediction(df.head(5)).summary_frame()
    np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), rtol=1e-8)


def test_margeff_equal_reduced_model_and_omitted_term_is_nan(pair):
    _, full, reduced = pair
    a = full.get_margeff().summary_frame()
    b = reduced.get_margeff().summary_frame()
    common = a.drop(index="w2", level="term")
    np.testing.assert_allclose(common.to_numpy(), b.loc[common.index].to_numpy(), rtol=1e-8)
    assert a.xs("w2", level="term").isna().all().all()


def test_wald_tests_skip_or_reject_aliased(pair):
    _, full, reduced = pair
    terms = full.wald_test_terms()
    np.testing.assert_allclose(
        terms.loc[["Intercept", "ses", "write"]].to_numpy(),
        reduced.wald_test_terms().to_numpy(),
        rtol=1e-8,
    )
    assert terms.loc["w2", "df"] == 0 and np.isnan(terms.loc["w2", "statistic"])
    with pytest.raises(DataError, match="'general:w2', 'vocation:w2'.*not estimable"):
        full.wald_test("w2")
    assert full.wald_test("write").statistic == pytest.approx(
        reduced.wald_test("write").statistic, rel=1e-8
    )
