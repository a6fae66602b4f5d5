"""Guards against silent mistakes: inputs that would fit without complaint but not as meant
warn, and misspelt names get an error naming them and the valid ones."""

import warnings

import numpy as np
import pandas as pd
import pytest

import multilogit
from multilogit.exceptions import DataError, DataWarning


@pytest.fixture(scope="module")
def res(hsbdemo):
    return multilogit.mnlogit("prog ~ ses + write", hsbdemo, ref="academic").fit()


def _no_data_warning(fn):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        return fn()


# -- numbers stored as text ---------------------------------------------------------------------


def test_numbers_stored_as_text_warn_naming_the_column(hsbdemo):
    df = hsbdemo.assign(wtxt=hsbdemo["write"].astype(str))
    with pytest.warns(DataWarning, match=r"column .wtxt. holds numbers stored as text"):
        multilogit.mnlogit("prog ~ wtxt", df)


@pytest.mark.parametrize("formula", ["prog ~ C(wtxt)", "prog ~ ses"])
def test_categories_meant_do_not_warn(hsbdemo, formula):
    """C() says the categories are meant; words are categories."""
    df = hsbdemo.assign(wtxt=hsbdemo["write"].astype(str))
    _no_data_warning(lambda: multilogit.mnlogit(formula, df))


# -- an outcome that looks continuous -----------------------------------------------------------


def test_continuous_looking_outcome_warns(hsbdemo):
    with pytest.warns(DataWarning, match=r"outcome 'write' is numeric with 29 distinct.*Categ"):
        multilogit.mnlogit("write ~ 1", hsbdemo)
    with pytest.warns(DataWarning, match="looks continuous"):
        multilogit.MultinomialLogit(hsbdemo["write"].to_numpy(), np.ones((200, 1)))


def test_insisting_on_a_numeric_outcome(hsbdemo):
    df = hsbdemo.assign(write=hsbdemo["write"].astype("category"))
    _no_data_warning(lambda: multilogit.mnlogit("write ~ 1", df))
    # A few integer codes are an ordinary outcome.
    _no_data_warning(lambda: multilogit.mnlogit("female ~ write", hsbdemo))


# -- ^ in an expression ---------------------------------------------------------------------------


def test_caret_in_an_expression_warns(hsbdemo):
    with pytest.warns(DataWarning, match=r"'I\(write \^ 2\)'.*XOR.*'I\(write \*\* 2\)'"):
        multilogit.mnlogit("prog ~ write + I(write^2)", hsbdemo)


def test_caret_between_terms_says_patsy_writes_powers_with_stars(hsbdemo):
    with pytest.raises(DataError, match=r"\(ses \+ write\)\*\*2"):
        multilogit.mnlogit("prog ~ (ses + write)^2", hsbdemo)
    _no_data_warning(lambda: multilogit.mnlogit("prog ~ (ses + write)**2", hsbdemo))


# -- numpy in formulas ----------------------------------------------------------------------------


def test_numpy_is_available_without_importing_it(hsbdemo):
    code = "import multilogit\nres = multilogit.mnlogit('prog ~ np.log(write)', df).fit()\n"
    namespace = {"df": hsbdemo}  # no np here
    exec(code, namespace)  # noqa: S102
    expected = multilogit.mnlogit("prog ~ lw", hsbdemo.assign(lw=np.log(hsbdemo["write"]))).fit()
    np.testing.assert_allclose(
        namespace["res"].params.to_numpy(), expected.params.to_numpy(), rtol=1e-10
    )
    # predictions on new data evaluate the formula again
    np.testing.assert_allclose(
        namespace["res"].predict(hsbdemo.head()).to_numpy(),
        expected.predict(hsbdemo.head().assign(lw=np.log(hsbdemo["write"].head()))).to_numpy(),
        rtol=1e-10,
    )


def test_a_callers_own_np_wins(hsbdemo):
    class Fake:
        @staticmethod
        def log(x):
            return 2 * x

    namespace = {"df": hsbdemo, "np": Fake}
    exec("import multilogit\nm = multilogit.mnlogit('prog ~ np.log(write) - 1', df)", namespace)  # noqa: S102
    np.testing.assert_array_equal(namespace["m"].exog[:, 0], 2 * hsbdemo["write"].to_numpy())


# -- misspelt names -------------------------------------------------------------------------------


def test_wald_test_unknown_name(res):
    with pytest.raises(DataError) as info:
        res.wald_test("wrte = 0")
    msg = str(info.value)
    assert "unknown name 'wrte'" in msg and "did you mean 'write'" in msg
    assert "'vocation:ses[T.high]'" in msg and "'Intercept'" in msg


def test_wald_test_reference_outcome(res):
    with pytest.raises(DataError, match=r"'academic:write' is a coefficient of the reference"):
        res.wald_test("academic:write = 0")


def test_wald_test_valid_names_still_work(res):
    wald = res.wald_test("general:write = vocation:write", scalar=True)
    diff = res.params.loc["write", "general"] - res.params.loc["write", "vocation"]
    cov = res.cov_params()
    var = (
        cov.loc[("general", "write"), ("general", "write")]
        + cov.loc[("vocation", "write"), ("vocation", "write")]
        - 2 * cov.loc[("general", "write"), ("vocation", "write")]
    )
    np.testing.assert_allclose(wald.statistic, diff**2 / var, rtol=1e-10)


@pytest.mark.parametrize(
    "kwds, message",
    [
        ({"cluster": "cid"}, "has no option 'cluster'; did you mean 'groups'?"),
        ({"groups": "cid", "df_corection": True}, "did you mean 'df_correction'?"),
    ],
)
def test_cov_keyword_misspelt(res, hsbdemo, kwds, message):
    with pytest.raises(TypeError, match=message):
        res.get_robustcov_results("cluster", **kwds)
    with pytest.raises(TypeError, match=message):
        multilogit.mnlogit("prog ~ write", hsbdemo).fit(cov_type="cluster", cov_kwds=kwds)


def test_cov_keyword_right(res):
    by_name = res.get_robustcov_results("cluster", groups="cid")
    assert by_name.cov_type == "cluster"


def test_plot_predicted_unknown_at_key(res):
    pytest.importorskip("matplotlib")
    with pytest.raises(DataError, match=r"'sess' not a variable.*\(ses, write\)"):
        res.plot_predicted("write", at={"sess": "low"})


# -- new data -------------------------------------------------------------------------------------


def test_categorical_levels_in_another_order_are_recoded(hsbdemo):
    df = hsbdemo.assign(ses=pd.Categorical(hsbdemo["ses"], ["low", "middle", "high"]))
    fit = multilogit.mnlogit("prog ~ ses + write", df).fit()
    shuffled = df.assign(ses=df["ses"].cat.reorder_categories(["high", "low", "middle"]))
    as_text = df.assign(ses=df["ses"].astype(str))
    expected = fit.predict(as_text).to_numpy()
    np.testing.assert_allclose(fit.predict(shuffled).to_numpy(), expected, rtol=1e-12)
    subset = shuffled[shuffled["ses"] != "middle"].copy()
    subset["ses"] = subset["ses"].cat.remove_unused_categories()
    np.testing.assert_allclose(
        fit.predict(subset).to_numpy(),
        fit.predict(as_text.loc[subset.index]).to_numpy(),
        rtol=1e-12,
    )
    with pytest.raises(DataError, match="'upper'"):
        fit.predict(df.assign(ses=pd.Categorical(["upper"] * len(df))))


def test_loaded_without_data_says_how_to_keep_it(res, tmp_path):
    path = tmp_path / "res.mlz"
    res.save(path)
    loaded = multilogit.load(path)
    for method in ("predict", "get_margeff"):
        with pytest.raises(DataError, match="include_data=True"):
            getattr(loaded, method)()
    with pytest.raises(DataError, match="include_data=True"):
        _ = loaded.resid_response
