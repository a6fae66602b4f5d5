"""Profile-likelihood confidence intervals (``conf_int(method="profile")``).

The reference bounds (``tests/reference/profile_*.csv``) come from ``tests/reference/R/profile.R``,
which finds each bound by ``uniroot(tol = 1e-13)`` on constrained refits converged to a relative
step below 1e-13 (glm with offsets, a Newton solver checked against vglm, Firth's penalised
likelihood as logistf, the limit of a separated likelihood).  Both sides solve to about 1e-12,
so agreement is checked at 1e-9 relative.  MASS's ``confint(glm)`` interpolates a spline
through a grid of profile points: it is checked at the 1e-4 its method allows.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import multilogit as ml
from multilogit.exceptions import DataError
from multilogit.solve.directions import ExactCholesky
from multilogit.solve.newton import NewtonOptions, newton
from multilogit.solve.pinned import Pinned
from tests.reference_data import REFERENCE_DIR

ENDOMETRIAL = "HG ~ NV + PI + EH"


def load_intervals(name: str, level: float) -> pd.DataFrame:
    """A reference file's intervals at ``level``, indexed by (equation, term) as strings."""
    df = pd.read_csv(
        REFERENCE_DIR / f"profile_{name}.csv", comment="#", dtype={"equation": str, "term": str}
    )
    df = df[np.isclose(df["level"], level)]
    return df.set_index(["equation", "term"])[["lower", "upper"]]


def as_strings(ci: pd.DataFrame) -> pd.DataFrame:
    ci = ci.copy()
    ci.index = pd.MultiIndex.from_tuples([(str(o), t) for o, t in ci.index])
    return ci


@pytest.fixture(scope="module")
def admissions():
    return ml.datasets.load("admissions")


@pytest.fixture(scope="module")
def hsbdemo():
    return ml.datasets.load("hsbdemo")


@pytest.fixture(scope="module")
def endometrial():
    return pd.read_csv(REFERENCE_DIR / "data" / "endometrial.csv")


def load_alligators() -> pd.DataFrame:
    df = pd.read_csv(REFERENCE_DIR / "data" / "alligators.csv")
    levels = {
        "foodchoice": ["Fish", "Invertebrate", "Reptile", "Bird", "Other"],
        "lake": ["Hancock", "Oklawaha", "Trafford", "George"],
        "size": ["<=2.3", ">2.3"],
    }
    for column, cats in levels.items():
        df[column] = pd.Categorical(df[column], categories=cats)
    return df


def fit_ref(name, admissions, hsbdemo, endometrial):
    if name == "admissions":
        return ml.mnlogit("admit ~ gre + gpa + C(rank)", admissions).fit()
    if name == "hsbdemo":
        return ml.mnlogit("prog ~ ses + write", hsbdemo, ref="academic").fit()
    if name == "hsbdemo_firth":
        return ml.mnlogit("prog ~ ses + write", hsbdemo, ref="academic").fit(method="firth")
    if name == "alligators3_ml":
        df = load_alligators()
        w = np.round(df["freq"].to_numpy() / 3)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the separation warning
            return ml.mnlogit("foodchoice ~ size + lake", df, ref="Fish", freq_weights=w).fit()
    if name == "quasi_continuous_ml":
        df = pd.read_csv(REFERENCE_DIR / "data" / "quasi_continuous.csv")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ml.mnlogit("y ~ x + z", df).fit()
    if name == "endometrial_firth":
        return ml.mnlogit(ENDOMETRIAL, endometrial, ref=0).fit(method="firth")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the separation warning
        return ml.mnlogit(ENDOMETRIAL, endometrial, ref=0).fit()


CASES = [
    "admissions",
    "hsbdemo",
    "endometrial_firth",
    "endometrial_ml",
    "alligators3_ml",
    "quasi_continuous_ml",
]


LEVEL_CASES = [(name, level) for name in CASES for level in (0.95, 0.9)]
LEVEL_CASES.append(("hsbdemo_firth", 0.95))  # the K = 3 penalised profile: one level (slow in R)


@pytest.mark.parametrize(("name", "level"), LEVEL_CASES)
def test_matches_exact_root_search_in_r(name, level, admissions, hsbdemo, endometrial):
    res = fit_ref(name, admissions, hsbdemo, endometrial)
    ci = as_strings(res.conf_int(alpha=1 - level, method="profile"))
    expected = load_intervals(name, level).loc[ci.index]
    assert list(ci.columns) == ["lower", "upper"]
    # Infinite bounds must be infinite on the same side; assert_allclose compares them so.
    np.testing.assert_allclose(ci.to_numpy(), expected.to_numpy(), rtol=1e-9, atol=1e-13)


def test_close_to_mass_confint_at_its_accuracy(admissions):
    res = ml.mnlogit("admit ~ gre + gpa + C(rank)", admissions).fit()
    ci = as_strings(res.conf_int(method="profile"))
    mass = load_intervals("admissions_mass", 0.95).loc[ci.index]
    exact = load_intervals("admissions", 0.95).loc[ci.index]
    # MASS's spline through a grid of profile points is off the exact roots by up to ~5e-5
    # relative here; ours are within the spline error of MASS, and far closer to the roots.
    np.testing.assert_allclose(ci.to_numpy(), mass.to_numpy(), rtol=2e-4)
    assert np.max(np.abs(ci - exact).to_numpy()) < 1e-3 * np.max(np.abs(mass - exact).to_numpy())


def test_separated_ml_fit_has_an_infinite_upper_bound(endometrial):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = ml.mnlogit(ENDOMETRIAL, endometrial, ref=0).fit()
    assert res.separation is not None
    ci = res.conf_int(method="profile", terms="NV")
    lower, upper = ci.loc[(1, "NV")]
    assert upper == np.inf
    assert np.isfinite(lower)
    expected = load_intervals("endometrial_ml", 0.95).loc[("1", "NV"), "lower"]
    assert lower == pytest.approx(expected, rel=1e-9)
    # The Wald interval has no finite bound for it; the Firth profile interval is finite.
    assert ci.shape == (1, 2)
    firth = ml.mnlogit(ENDOMETRIAL, endometrial, ref=0).fit(method="firth")
    assert np.all(np.isfinite(firth.conf_int(method="profile", terms="NV").to_numpy()))


def test_wald_is_the_default_and_unchanged(hsbdemo):
    res = ml.mnlogit("prog ~ ses + write", hsbdemo, ref="academic").fit()
    default = res.conf_int()
    pd.testing.assert_frame_equal(default, res.conf_int(method="wald"))
    b = res.params.T.to_numpy().ravel()
    se = res.bse.T.to_numpy().ravel()
    q = 1.959963984540054
    np.testing.assert_allclose(default["lower"], b - q * se, rtol=1e-14)
    np.testing.assert_allclose(default["upper"], b + q * se, rtol=1e-14)


def test_same_layout_as_wald_and_close_to_it_on_regular_data(hsbdemo):
    res = ml.mnlogit("prog ~ ses + write", hsbdemo, ref="academic").fit()
    wald, prof = res.conf_int(), res.conf_int(method="profile")
    assert prof.index.equals(wald.index) and list(prof.columns) == list(wald.columns)
    width = (wald["upper"] - wald["lower"]).to_numpy()
    assert np.all(np.abs((prof - wald).to_numpy()) < 0.1 * width[:, None])


def test_rescaling_a_column_rescales_its_interval(hsbdemo):
    """x1000 (and x2**20, which the solver works on in rescaled coordinates)."""
    base = ml.mnlogit("prog ~ ses + write", hsbdemo, ref="academic").fit()
    expected = base.conf_int(method="profile", terms="write").to_numpy()
    for factor in (1000.0, 2.0**20):
        df = hsbdemo.assign(w2=hsbdemo["write"] * factor)
        res = ml.mnlogit("prog ~ ses + w2", df, ref="academic").fit()
        got = res.conf_int(method="profile", terms="w2").to_numpy()
        np.testing.assert_allclose(got * factor, expected, rtol=1e-9)


@pytest.mark.parametrize("method", ["newton", "firth"])
def test_reference_change_flips_the_shared_coefficient(method, hsbdemo):
    """(general vs academic) is one coefficient in both parameterisations, with opposite sign."""
    res = ml.mnlogit("prog ~ ses + write", hsbdemo, ref="academic").fit(method=method)
    a = res.conf_int(method="profile", terms=[("general", "write")]).to_numpy()[0]
    other = ml.mnlogit("prog ~ ses + write", hsbdemo, ref="general").fit(method=method)
    b = other.conf_int(method="profile", terms=[("academic", "write")]).to_numpy()[0]
    np.testing.assert_allclose(b, -a[::-1], rtol=1e-8)
    # The same from the results repivoted without a refit.
    c = res.repivot("general").conf_int(method="profile", terms=[("academic", "write")])
    np.testing.assert_allclose(c.to_numpy()[0], -a[::-1], rtol=1e-8)


def test_covariance_type_does_not_change_profile_intervals(hsbdemo):
    res = ml.mnlogit("prog ~ ses + write", hsbdemo, ref="academic").fit()
    robust = res.get_robustcov_results("cluster", groups=hsbdemo["cid"].to_numpy())
    a = res.conf_int(method="profile", terms="write")
    pd.testing.assert_frame_equal(robust.conf_int(method="profile", terms="write"), a)
    assert not np.allclose(robust.conf_int().to_numpy(), res.conf_int().to_numpy())


def test_terms_select_rows_in_flat_order(hsbdemo):
    res = ml.mnlogit("prog ~ ses + write", hsbdemo, ref="academic").fit()
    full = res.conf_int(method="profile")
    some = res.conf_int(method="profile", terms=["write", ("general", "Intercept")])
    assert list(some.index) == [
        ("general", "Intercept"),
        ("general", "write"),
        ("vocation", "write"),
    ]
    pd.testing.assert_frame_equal(some, full.loc[some.index], rtol=1e-10)
    one = res.conf_int(method="profile", terms=("vocation", "write"))
    assert list(one.index) == [("vocation", "write")]


def test_aliased_columns_get_nan_and_leave_the_others_alone(admissions):
    df = admissions.assign(gre2=2.0 * admissions["gre"])
    res = ml.mnlogit("admit ~ gre + gpa + gre2", df).fit(drop_collinear=True)
    ci = res.conf_int(method="profile")
    assert ci.loc[(1, "gre2")].isna().all()
    plain = ml.mnlogit("admit ~ gre + gpa", admissions).fit().conf_int(method="profile")
    pd.testing.assert_frame_equal(ci.drop(index=(1, "gre2")), plain, rtol=1e-9)


def test_parquet_equals_in_memory(tmp_path, hsbdemo):
    df = hsbdemo[["prog", "write", "ses"]].astype({"prog": str, "ses": str})
    path = tmp_path / "hsb.parquet"
    df.to_parquet(path, row_group_size=50)
    formula = "prog ~ write"
    memory = ml.mnlogit(formula, df, ref="academic").fit()
    streamed = ml.mnlogit(formula, ml.parquet(path), ref="academic").fit()
    np.testing.assert_allclose(
        streamed.conf_int(method="profile").to_numpy(),
        memory.conf_int(method="profile").to_numpy(),
        rtol=1e-9,
    )


def test_pinning_a_coefficient_at_zero_is_dropping_its_column(hsbdemo):
    """The constrained solve behind every profile point, against an ordinary fit."""
    model = ml.mnlogit("prog ~ ses + write", hsbdemo, ref="academic")
    full = model.fit()
    p = model.k_exog
    k = model.exog_names.index("write")
    beta0 = full.params.T.to_numpy().copy()
    beta0[:, k] = 0.0
    pinned = np.zeros((model.J, p), dtype=bool)
    pinned[:, k] = True
    sol = newton(
        model.backend,
        beta0,
        NewtonOptions(hessian="exact"),
        direction=Pinned(ExactCholesky(), pinned),
    )
    assert sol.converged
    assert np.all(sol.beta[:, k] == 0.0)
    keep = np.arange(p) != k
    sub = model.submodel(columns=keep).fit()
    np.testing.assert_allclose(sol.beta[:, keep], sub.params.T.to_numpy(), rtol=1e-10)
    assert sol.llf == pytest.approx(sub.llf, rel=1e-13)
    # The free score is 0; the pinned one is what the constraint holds against.
    assert np.max(np.abs(np.asarray(sol.score)[:, keep])) < 1e-8
    assert np.max(np.abs(np.asarray(sol.score)[:, k])) > 1.0


@pytest.mark.parametrize("alpha", [0.0, 1.0, -0.1, 1.5])
def test_alpha_outside_the_unit_interval(alpha, hsbdemo):
    res = ml.mnlogit("prog ~ write", hsbdemo).fit()
    with pytest.raises(ValueError, match="alpha must be in"):
        res.conf_int(alpha=alpha, method="profile")


def test_bad_method_and_terms_are_named(hsbdemo):
    res = ml.mnlogit("prog ~ write", hsbdemo).fit()
    with pytest.raises(ValueError, match="'wald' or 'profile'.*'likelihood'"):
        res.conf_int(method="likelihood")
    with pytest.raises(ValueError, match="unknown term.*'read'"):
        res.conf_int(method="profile", terms=["write", "read"])
    with pytest.raises(ValueError, match="unknown term.*'nope'"):
        res.conf_int(method="profile", terms=[("nope", "write")])
    # Wald intervals take terms too (a subset of the rows, as beyond the memory budget).
    wald = res.conf_int(terms="write")
    pd.testing.assert_frame_equal(wald, res.conf_int().xs("write", level="term", drop_level=False))


def test_sampling_weights_have_no_likelihood_to_profile(hsbdemo):
    w = 1.0 + (hsbdemo["id"].to_numpy() % 3)
    res = ml.mnlogit("prog ~ write", hsbdemo, weights=w).fit()
    with pytest.raises(DataError, match="pseudo-likelihood"):
        res.conf_int(method="profile")


def test_completely_separated_fit_bounds_follow_the_separation_report():
    """x alone separates y: the diverging coefficients (Intercept, x) get an infinite bound on
    the side they diverge to and a finite one on the other; z, which the limit leaves
    unidentified (the data stay separated whatever z is), gets (-inf, inf)."""
    rng = np.random.default_rng(0)
    x = np.linspace(-1.0, 2.0, 40)
    df = pd.DataFrame({"y": (x > 0.3).astype(int), "x": x, "z": rng.normal(size=40)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = ml.mnlogit("y ~ x + z", df).fit()
    assert res.separation.unidentified == [(1, "z")]
    d = res.separation.direction.ravel()
    ci = res.conf_int(method="profile").to_numpy()
    for k in range(2):
        if d[k] > 0:
            assert ci[k, 1] == np.inf and np.isfinite(ci[k, 0])
        else:
            assert ci[k, 0] == -np.inf and np.isfinite(ci[k, 1])
    assert ci[2, 0] == -np.inf and ci[2, 1] == np.inf


def test_frequency_weights_equal_repeated_rows(hsbdemo):
    w = 1 + hsbdemo["id"].to_numpy() % 3
    weighted = ml.mnlogit("prog ~ write", hsbdemo, freq_weights=w.astype(float)).fit()
    repeated = hsbdemo.loc[hsbdemo.index.repeat(w)].reset_index(drop=True)
    plain = ml.mnlogit("prog ~ write", repeated).fit()
    pd.testing.assert_frame_equal(
        weighted.conf_int(method="profile"), plain.conf_int(method="profile"), rtol=1e-9
    )


def test_needs_the_estimation_data(tmp_path, hsbdemo):
    res = ml.mnlogit("prog ~ write", hsbdemo).fit()
    res.save(tmp_path / "no_data.npz")
    with pytest.raises(DataError, match="without its estimation data"):
        ml.load(tmp_path / "no_data.npz").conf_int(method="profile")
    res.save(tmp_path / "data.npz", include_data=True)
    back = ml.load(tmp_path / "data.npz").conf_int(method="profile", terms="write")
    pd.testing.assert_frame_equal(back, res.conf_int(method="profile", terms="write"))


def test_terms_of_the_wrong_kind(hsbdemo):
    res = ml.mnlogit("prog ~ write", hsbdemo).fit()
    with pytest.raises(TypeError, match="terms must be"):
        res.conf_int(method="profile", terms=3)
    with pytest.raises(ValueError, match="unknown term"):
        res.conf_int(method="profile", terms=[["write"]])


def test_bounds_do_not_depend_on_the_fit_tolerance(admissions):
    loose = ml.mnlogit("admit ~ gre + gpa", admissions).fit(tol=1e-4)
    tight = ml.mnlogit("admit ~ gre + gpa", admissions).fit()
    pd.testing.assert_frame_equal(
        loose.conf_int(method="profile"), tight.conf_int(method="profile"), rtol=1e-10
    )


def test_pinned_directions_keep_a_combination_fixed(hsbdemo):
    """Holding a direction v: the solve stays on the start's hyperplane v'beta = const and
    is stationary within it (the score is parallel to v)."""
    model = ml.mnlogit("prog ~ ses + write", hsbdemo, ref="academic")
    full = model.fit()
    q = model.J * model.k_exog
    v = np.zeros(q)
    v[[1, 2]] = 1.0  # (general, ses[T.middle]) + (general, ses[T.high])
    beta0 = full.params.T.to_numpy() + 0.3 * v.reshape(model.J, -1)
    sol = newton(
        model.backend,
        beta0,
        NewtonOptions(hessian="exact"),
        direction=Pinned(ExactCholesky(), np.zeros(q, dtype=bool), v[:, None]),
    )
    assert sol.converged
    assert v @ sol.beta.ravel() == pytest.approx(v @ beta0.ravel(), rel=1e-14)
    g = np.asarray(sol.score).ravel()
    resid = g - v * (v @ g) / (v @ v)
    assert np.max(np.abs(resid)) < 1e-8
    assert abs(v @ g) > 1e-3  # the constraint binds
    assert sol.llf < full.llf


@pytest.mark.slow  # every profile point is a few passes, each a round trip to the workers
def test_dask_equals_in_memory(local_cluster, hsbdemo):
    dd = pytest.importorskip("dask.dataframe")
    distributed = pytest.importorskip("distributed")
    df = hsbdemo[["prog", "write"]].astype({"prog": str})
    memory = ml.mnlogit("prog ~ write", df, ref="academic").fit()
    frame = dd.from_pandas(df, npartitions=3, sort=False)
    with distributed.Client(local_cluster):
        res = ml.mnlogit("prog ~ write", frame, ref="academic").fit()
        got = res.conf_int(method="profile", terms=[("general", "write")])
    expected = memory.conf_int(method="profile", terms=[("general", "write")])
    np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), rtol=1e-9)
