"""Predictive margins (``get_margins``), their contrasts and equality tests, and marginal
effects at several values (``get_margeff(at={...lists...})``).

References: tests/reference/hsbdemo_margins*.csv (R: averages of probabilities with the variable
set, delta method with a numDeriv Jacobian, see R/margins.R); statsmodels' MNLogit for array
models; counterfactual predictions through ``results.predict`` (the stored formula state, a
path independent of the margins code) for the formula terms.
"""

import io
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

import multilogit as ml
from multilogit import DataError
from tests.reference_data import REFERENCE_DIR

# R's Jacobian is Richardson-extrapolated central differences (about 1e-10 relative) and its
# fit converged to a relative Newton step of 1e-14; margins agree to rounding, SEs to 1e-7.
RTOL_MARGIN = 1e-9
RTOL_SE = 1e-7
FORMULA = "prog ~ ses + write"


def _read(name):
    text = (REFERENCE_DIR / name).read_text().splitlines()
    body = "\n".join(line for line in text if not line.startswith("#"))
    return pd.read_csv(
        io.StringIO(body), dtype={"label": str, "group": str}, keep_default_na=False
    )


@pytest.fixture(scope="module")
def ref_margins():
    return _read("hsbdemo_margins.csv")


@pytest.fixture(scope="module")
def ref_tests():
    return _read("hsbdemo_margins_tests.csv")


@pytest.fixture(scope="module")
def hsb():
    df = ml.datasets.load("hsbdemo")
    df["w"] = 1 + df["id"] % 3
    return df


@pytest.fixture(scope="module")
def res(hsb):
    return ml.mnlogit(FORMULA, hsb, ref="academic").fit()


def _case(res, hsb, case):
    if case == "ses":
        return res.get_margins("ses")
    if case == "write":
        return res.get_margins(at={"write": [30, 40, 50, 60, 70]})
    if case == "write_over_female":
        return res.get_margins(at={"write": [30, 50, 70]}, over="female")
    if case == "ses_write":
        return res.get_margins("ses", at={"write": [30, 70]})
    if case == "ses_atmeans":
        return res.get_margins("ses", atmeans=True)
    fw = ml.mnlogit(FORMULA, hsb, ref="academic", freq_weights="w").fit()
    return fw.get_margins("ses")


def _label(key):
    """An index entry's R label: the varying values (ses|write for the grid)."""
    return "|".join(str(v) for v in key)


CASES = ["ses", "write", "write_over_female", "ses_write", "ses_fw", "ses_atmeans"]


@pytest.mark.parametrize("case", CASES)
def test_margins_match_r(res, hsb, ref_margins, case):
    m = _case(res, hsb, case)
    sf = m.summary_frame()
    ref = ref_margins[(ref_margins.case == case) & (ref_margins.kind == "margin")]
    over = case == "write_over_female"
    got = {}
    for key, row in sf.iterrows():
        outcome, rest = key[0], key[1:]
        group = rest[-1] if over else ""
        label = _label(rest[:-1] if over else rest)
        got[(outcome, label, group)] = (row["margin"], row["std err"])
    assert len(got) == len(ref)
    for r in ref.itertuples():
        est, se = got[(r.outcome, r.label, r.group)]
        assert est == pytest.approx(r.estimate, rel=RTOL_MARGIN)
        assert se == pytest.approx(r.se, rel=RTOL_SE)


@pytest.mark.parametrize("case", CASES)
def test_contrasts_and_tests_match_r(res, hsb, ref_margins, ref_tests, case):
    m = _case(res, hsb, case)
    over = case == "write_over_female"
    dims = m.dimensions
    # The grid's R labels pair ses and write; its contrasts run over both dimensions at once,
    # which ours do one dimension at a time: compare the ones along write within a ses level.
    if case == "ses_write":
        c = m.contrasts("all", variable="write")
        ref = ref_margins[(ref_margins.case == case) & (ref_margins.kind == "contrast")]
        ref = ref[ref.label.str.match(r"^(\w+)\|70 - \1\|30$")]
        for r in ref.itertuples():
            ses = r.label.split("|")[0]
            row = c.loc[(r.outcome, ses, "70 - 30")]
            assert row["contrast"] == pytest.approx(r.estimate, rel=RTOL_MARGIN)
            assert row["std err"] == pytest.approx(r.se, rel=RTOL_SE)
        assert len(ref) == 9
        return
    c = m.contrasts("all")
    ref = ref_margins[(ref_margins.case == case) & (ref_margins.kind == "contrast")]
    assert len(c) == len(ref)
    for r in ref.itertuples():
        key = (r.outcome, r.label, r.group) if over else (r.outcome, r.label)
        row = c.loc[key]
        assert row["contrast"] == pytest.approx(r.estimate, rel=RTOL_MARGIN)
        assert row["std err"] == pytest.approx(r.se, rel=RTOL_SE)
    t = m.test_equal(dims[0])
    rt = ref_tests[ref_tests.case == case]
    for r in rt.itertuples():
        row = t.loc[(r.outcome, r.group)] if over else t.loc[r.outcome]
        assert row["chi2"] == pytest.approx(r.chi2, rel=RTOL_SE)
        assert row["df"] == r.df


def test_reference_contrasts_are_differences_from_the_first_level(res):
    m = res.get_margins("ses")
    ref = m.contrasts("reference")
    allp = m.contrasts("all")
    assert list(ref.index.get_level_values(1)) == ["middle - low", "high - low"] * 3
    pd.testing.assert_frame_equal(ref, allp.loc[ref.index])
    adj = m.contrasts("adjacent")
    assert list(adj.index.get_level_values(1)) == ["middle - low", "high - middle"] * 3
    wide = m.frame()
    assert adj.loc[("general", "high - middle"), "contrast"] == pytest.approx(
        wide.loc["high", "general"] - wide.loc["middle", "general"], rel=1e-14
    )


def test_overall_margins_are_the_outcome_shares(res, hsb):
    # With intercepts, the ML score equations make the average fitted probabilities equal to
    # the sample shares (a closed form independent of the margins code).
    m = res.get_margins()
    shares = hsb["prog"].value_counts(normalize=True)
    for outcome, value in m.summary_frame()["margin"].items():
        assert value == pytest.approx(shares[outcome], rel=1e-9)
    assert m.dimensions == []


def test_margins_sum_to_one_and_their_covariance_is_singular(res):
    m = res.get_margins("ses", at={"write": [40, 60]})
    np.testing.assert_allclose(m.frame().sum(axis=1), 1.0, rtol=1e-14)
    cov = m.cov_params().to_numpy()
    # Each scenario's K margins sum to one: their variances and covariances add to 0.
    S = len(m.frame())
    total = cov.reshape(3, S, 3, S).sum(axis=(0, 2))
    np.testing.assert_allclose(total, 0.0, atol=1e-14)


@pytest.mark.parametrize("cov_type", ["HC0", "cluster"])
def test_uses_the_results_covariance(res, hsb, cov_type):
    kw = {"groups": hsb["cid"]} if cov_type == "cluster" else {}
    rob = res.get_robustcov_results(cov_type, **kw)
    a, b = res.get_margins("ses"), rob.get_margins("ses")
    np.testing.assert_allclose(a.frame(), b.frame(), rtol=1e-14)
    G = a.jacobian
    V = rob.cov_params().to_numpy()
    np.testing.assert_allclose(b.summary_frame()["std err"] ** 2, np.diag(G @ V @ G.T), rtol=1e-12)
    assert not np.allclose(a.summary_frame()["std err"], b.summary_frame()["std err"])


# ---------------------------------------------------------------------------------------------
# Against statsmodels (array models) and counterfactual predictions


@pytest.fixture(scope="module")
def arrays(hsb):
    X = sm.add_constant(hsb[["write", "read"]].astype(float))
    y = hsb["prog"].map({"academic": 0, "general": 1, "vocation": 2})
    return (
        X,
        y,
        sm.MNLogit(y, X).fit(disp=0, method="newton", tol=1e-12),
        ml.MultinomialLogit(y, X).fit(),
    )


def test_array_model_margins_are_statsmodels_average_predictions(arrays):
    X, _, sres, res = arrays
    m = res.get_margins(at={"write": [35.0, 65.0], "read": 50.0})
    for w in (35.0, 65.0):
        Xs = X.copy()
        Xs["write"], Xs["read"] = w, 50.0
        avg = np.asarray(sres.predict(Xs)).mean(axis=0)
        np.testing.assert_allclose(m.frame().loc[(w, 50.0)].to_numpy(), avg, rtol=1e-8)
    # By position as well as by name.
    m2 = res.get_margins(at={1: [35.0, 65.0], 2: 50.0})
    np.testing.assert_allclose(m2.frame(), m.frame(), rtol=1e-14)
    assert m2.dimensions == ["write", "read"]


def test_array_model_standard_errors_by_finite_differences(arrays):
    # The delta method with a Jacobian of statsmodels' predictions by central differences.
    X, _, sres, res = arrays
    m = res.get_margins(at={"write": [35.0, 65.0]})
    V = res.cov_params().to_numpy()
    b0 = res.params.to_numpy().T.ravel()  # outcome-major, as cov_params

    def margins(b):
        out = []
        for k in range(3):
            for w in (35.0, 65.0):
                Xs = X.to_numpy().copy()
                Xs[:, 1] = w
                eta = np.column_stack([np.zeros(len(Xs)), Xs @ b.reshape(2, -1).T])
                P = np.exp(eta - eta.max(1, keepdims=True))
                P /= P.sum(1, keepdims=True)
                out.append(P[:, k].mean())
        return np.array(out)

    h = 1e-6 * np.maximum(np.abs(b0), 1.0)
    G = np.column_stack(
        [
            (margins(b0 + h[i] * e) - margins(b0 - h[i] * e)) / (2 * h[i])
            for i, e in enumerate(np.eye(len(b0)))
        ]
    )
    np.testing.assert_allclose(m.summary_frame()["margin"], margins(b0), rtol=1e-12)
    np.testing.assert_allclose(m.cov_params().to_numpy(), G @ V @ G.T, rtol=1e-6, atol=1e-14)


def test_over_groups_average_within_the_group(res, hsb):
    m = res.get_margins(at={"write": 50}, over=["female", "schtyp"])
    for (female, schtyp), sub in hsb.groupby(["female", "schtyp"]):
        d = sub.copy()
        d["write"] = 50
        avg = res.predict(d).mean(axis=0)
        got = m.frame().loc[(50, female, schtyp)]
        np.testing.assert_allclose(got[avg.index].to_numpy(), avg.to_numpy(), rtol=1e-12)


def test_by_is_over(res):
    a = res.get_margins("ses", over="female")
    b = res.get_margins("ses", by="female")
    pd.testing.assert_frame_equal(a.summary_frame(), b.summary_frame())
    with pytest.raises(DataError, match="give one of them"):
        res.get_margins("ses", over="female", by="female")


def test_list_of_dicts_gives_one_scenario_each(res, hsb):
    m = res.get_margins(at=[{"ses": "low", "write": 40}, {"ses": "high", "write": 60}])
    assert list(m.frame().index) == [("low", 40), ("high", 60)]
    for ses, write in m.frame().index:
        d = hsb.copy()
        d["ses"] = pd.Categorical([ses] * len(d), categories=hsb["ses"].cat.categories)
        d["write"] = write
        avg = res.predict(d).mean(axis=0)
        np.testing.assert_allclose(m.frame().loc[(ses, write)][avg.index], avg, rtol=1e-12)


def _softmax_at(res, x):
    B = np.vstack([np.zeros(len(x)), res.params.to_numpy().T])  # reference first
    eta = B @ x
    p = np.exp(eta - eta.max())
    return p / p.sum()


def test_atmeans_puts_other_factors_at_their_shares(hsb):
    # Stata's atmeans: the mean design row (indicators at their shares) with ses's columns at
    # a level's coding; computed here from the design matrix, not through the margins code.
    res = ml.mnlogit("prog ~ ses + write + female + schtyp", hsb, ref="academic").fit()
    m = res.get_margins("ses", atmeans=True)
    X = res.model.exog.to_numpy() if hasattr(res.model.exog, "to_numpy") else res.model.exog
    names = list(res.model.exog_names)
    xbar = X.mean(axis=0)
    for lv in ["low", "middle", "high"]:
        x = xbar.copy()
        x[names.index("ses[T.middle]")] = float(lv == "middle")
        x[names.index("ses[T.high]")] = float(lv == "high")
        # Level order: academic (the reference) first.
        np.testing.assert_allclose(m.frame().loc[lv].to_numpy(), _softmax_at(res, x), rtol=1e-12)
    with pytest.raises(DataError, match="atmeans=True is not available with over="):
        res.get_margins("ses", over="female", atmeans=True)


def test_atmeans_of_an_array_model(arrays):
    X, _, _, res = arrays
    m = res.get_margins(at={"write": [40.0, 60.0]}, atmeans=True)
    for w in (40.0, 60.0):
        x = X.to_numpy().mean(axis=0)
        x[1] = w
        np.testing.assert_allclose(m.frame().loc[w].to_numpy(), _softmax_at(res, x), rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# Every kind of formula term


def _frame_with(df, **values):
    d = df.copy()
    for k, v in values.items():
        d[k] = v
    return d


@pytest.mark.parametrize(
    "formula,var,values",
    [
        ('prog ~ Q("write.score") + ses', "write.score", [35.0, 60.0]),
        ("prog ~ bs(write, df=4) + ses", "write", [35.0, 60.0]),
        ("prog ~ center(write) + ses", "write", [35.0, 60.0]),
        ("prog ~ np.log(write) + ses", "write", [35.0, 60.0]),
        ("prog ~ C(ses, Treatment('high')) + write", "write", [35.0, 60.0]),
    ],
    ids=["quoted", "bs", "center", "log", "treatment"],
)
def test_margins_and_effects_for_every_term(hsb, formula, var, values):
    df = hsb.rename(columns={"write": "write.score"}) if "write.score" in formula else hsb
    res = ml.mnlogit(formula, df, ref="academic").fit()
    m = res.get_margins(at={var: values})
    for v in values:
        avg = res.predict(_frame_with(df, **{var: v})).mean(axis=0)
        np.testing.assert_allclose(m.frame().loc[v][avg.index], avg, rtol=1e-12)
    # The average derivative against a central difference of the averaged predictions, both
    # at write fixed at each value (Stata's margins, dydx(write) at(write=(...))).
    e = res.get_margeff(at={var: values})
    h = 1e-5
    for v in values:
        up = res.predict(_frame_with(df, **{var: v + h})).mean(axis=0)
        down = res.predict(_frame_with(df, **{var: v - h})).mean(axis=0)
        fd = (up - down) / (2 * h)
        got = e.summary_frame()["dy/dx"].xs((v, var), level=(1, 2))
        np.testing.assert_allclose(got[fd.index], fd, rtol=1e-5, atol=1e-9)
    # Categorical margins keep their levels whatever the contrast coding.
    s = res.get_margins("ses")
    for lv in ["low", "middle", "high"]:
        d = df.copy()
        d["ses"] = pd.Categorical([lv] * len(d), categories=df["ses"].cat.categories)
        np.testing.assert_allclose(
            s.frame().loc[lv][res.outcomes], res.predict(d).mean(axis=0)[res.outcomes], rtol=1e-12
        )


# ---------------------------------------------------------------------------------------------
# Effects at several values


def test_effects_at_several_values_equal_separate_calls(res):
    e = res.get_margeff(at={"write": [30, 50, 70]})
    sf = e.summary_frame()
    assert sf.index.names == ["outcome", "write", "term"]
    for w in (30, 50, 70):
        one = res.get_margeff(at={"write": w}).summary_frame()
        got = sf.xs(w, level="write")
        np.testing.assert_allclose(got["dy/dx"], one.loc[got.index, "effect"], rtol=1e-14)
        np.testing.assert_allclose(got["std err"], one.loc[got.index, "std err"], rtol=1e-12)


def test_effects_at_values_contrast_uses_the_joint_covariance(arrays):
    # The difference of the average effect of read at write=30 and at write=70, and its
    # standard error from a finite-difference Jacobian of closed-form effects.
    X, _, _, res = arrays
    e = res.get_margeff(at={"write": [30.0, 70.0]})
    c = e.contrasts(variable="write").xs("read", level="term")
    V = res.cov_params().to_numpy()
    b0 = res.params.to_numpy().T.ravel()

    def diff(b):
        B = np.vstack([np.zeros(3), b.reshape(2, -1)])  # reference first, level order
        out = []
        for w in (30.0, 70.0):
            Xs = X.to_numpy().copy()
            Xs[:, 1] = w
            eta = Xs @ B.T
            P = np.exp(eta - eta.max(1, keepdims=True))
            P /= P.sum(1, keepdims=True)
            out.append((P * (B[None, :, 2] - (P @ B[:, 2])[:, None])).mean(axis=0))
        return out[1] - out[0]

    h = 1e-6 * np.maximum(np.abs(b0), 1.0)
    G = np.column_stack(
        [
            (diff(b0 + h[i] * u) - diff(b0 - h[i] * u)) / (2 * h[i])
            for i, u in enumerate(np.eye(len(b0)))
        ]
    )
    np.testing.assert_allclose(c["contrast"], diff(b0), rtol=1e-10)
    np.testing.assert_allclose(c["std err"], np.sqrt(np.diag(G @ V @ G.T)), rtol=1e-6)


def test_dummy_default_is_continuous_and_factors_stay_discrete(hsb):
    df = hsb.assign(fem=(hsb["female"] == "female").astype(float))
    res = ml.mnlogit("prog ~ ses + fem + write", df, ref="academic").fit()
    me = res.get_margeff()
    assert list(me.margeff.index) == ["ses[T.middle]", "ses[T.high]", "fem", "write"]
    # fem as continuous: the average derivative, against a central difference.
    h = 1e-5
    up = res.predict(df.assign(fem=df["fem"] + h)).mean(axis=0)
    down = res.predict(df.assign(fem=df["fem"] - h)).mean(axis=0)
    np.testing.assert_allclose(me.margeff.loc["fem"][up.index], (up - down) / (2 * h), rtol=1e-6)
    # dummy=True: the change from 0 to 1.
    d = res.get_margeff(dummy=True).margeff.loc["fem"]
    change = res.predict(df.assign(fem=1.0)).mean(axis=0) - res.predict(df.assign(fem=0.0)).mean(
        axis=0
    )
    np.testing.assert_allclose(d[change.index], change, rtol=1e-10)


def test_at_zero_matches_statsmodels(arrays, hsb):
    X, y, sres, res = arrays
    ref = sres.get_margeff(at="zero")
    me = res.get_margeff(at="zero")
    np.testing.assert_allclose(me.margeff.to_numpy(), ref.margeff, rtol=1e-6)
    np.testing.assert_allclose(me.margeff_se.to_numpy(), ref.margeff_se, rtol=1e-5)
    # A formula model: every numeric variable 0 and every factor at its base level.
    fres = ml.mnlogit("prog ~ ses + write + read", hsb, ref="academic").fit()
    fz = fres.get_margeff(at="zero").margeff
    row = hsb.iloc[[0]].assign(write=0.0, read=0.0)
    row["ses"] = pd.Categorical(["low"], categories=hsb["ses"].cat.categories)
    h = 1e-5
    fd = (fres.predict(row.assign(read=h)) - fres.predict(row.assign(read=-h))) / (2 * h)
    np.testing.assert_allclose(fz.loc["read"][fd.columns], fd.iloc[0], rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# Data larger than memory


def test_parquet_fit_gives_the_in_memory_margins(hsb, tmp_path):
    df = hsb[["prog", "ses", "write", "female", "read"]].copy()
    df["ses"] = df["ses"].astype(str)
    for k, (a, b) in enumerate([(0, 70), (70, 150), (150, 200)]):
        df.iloc[a:b].to_parquet(tmp_path / f"part-{k}.parquet")
    formula = "prog ~ ses + write + female"
    big = ml.mnlogit(formula, ml.parquet(tmp_path, batch_rows=37), ref="academic").fit()
    mem = ml.mnlogit(formula, df, ref="academic").fit()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # progress bars and the like
        a = big.get_margins("ses", at={"write": [40, 60]}, over="female")
    b = mem.get_margins("ses", at={"write": [40, 60]}, over="female")
    assert list(a.summary_frame().index) == list(b.summary_frame().index)
    np.testing.assert_allclose(a.summary_frame(), b.summary_frame(), rtol=1e-10)
    a = big.get_margins("ses", at={"write": [40, 60]}, atmeans=True)
    b = mem.get_margins("ses", at={"write": [40, 60]}, atmeans=True)
    np.testing.assert_allclose(a.summary_frame(), b.summary_frame(), rtol=1e-10)
    # A streamed fit reads only the columns it uses: over= another one says so.
    with pytest.raises(DataError, match="over: 'read' is not one of the data columns"):
        big.get_margins("ses", over="read")


def test_dask_fit_on_a_cluster_gives_the_in_memory_margins(hsb, local_cluster):
    # The per-chunk sums run on worker processes (the closure shipped to them).
    dask = pytest.importorskip("dask")
    dd = pytest.importorskip("dask.dataframe")
    distributed = pytest.importorskip("distributed")
    df = hsb[["prog", "ses", "write", "female"]]
    mem = ml.mnlogit(FORMULA, df, ref="academic").fit()
    with dask.config.set(scheduler="threads"):
        res = ml.mnlogit(FORMULA, dd.from_pandas(df, npartitions=3), ref="academic").fit()
    b = mem.get_margins("ses", at={"write": [40, 60]}, over="female")
    with distributed.Client(local_cluster, set_as_default=False) as client:
        with dask.config.set(scheduler=client), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # progress bars
            a = res.get_margins("ses", at={"write": [40, 60]}, over="female")
            rows = res.get_margeff(at="all")
    np.testing.assert_allclose(a.summary_frame(), b.summary_frame(), rtol=1e-10)
    np.testing.assert_allclose(rows.margeff, mem.get_margeff(at="all").margeff, atol=1e-14)


# ---------------------------------------------------------------------------------------------
# Errors


def test_errors(res, arrays):
    _, _, _, ares = arrays
    with pytest.raises(DataError, match="'math' is not a variable of the formula"):
        res.get_margins("math")
    with pytest.raises(DataError, match=r"'write' is numeric; give the values .* at=\{'write'"):
        res.get_margins("write")
    with pytest.raises(DataError, match="an array model has none"):
        ares.get_margins("write")
    with pytest.raises(DataError, match="not a variable of the formula"):
        res.get_margins(at={"math": [1, 2]})
    with pytest.raises(DataError, match="not a level of 'ses'"):
        res.get_margins(at={"ses": ["low", "posh"]})
    with pytest.raises(DataError, match="finite number"):
        res.get_margins(at={"write": [30, np.nan]})
    with pytest.raises(DataError, match="list of values of 'write' is empty"):
        res.get_margins(at={"write": []})
    with pytest.raises(DataError, match="same variables"):
        res.get_margins(at=[{"write": 30}, {"ses": "low"}])
    with pytest.raises(DataError, match="in both variables= and at="):
        res.get_margins("ses", at={"ses": "low"})
    with pytest.raises(DataError, match="over: 'house' is not one of the data columns"):
        res.get_margins("ses", over="house")
    with pytest.raises(DataError, match="over: 'sex' is not one of the columns of exog"):
        ares.get_margins(at={"write": 40.0}, over="sex")
    with pytest.raises(DataError, match="must be a dict"):
        res.get_margins(at=30)
    m = res.get_margins("ses")
    with pytest.raises(ValueError, match="pairs must be one of"):
        m.contrasts("every")
    with pytest.raises(DataError, match="'write' is not a dimension of the margins"):
        m.contrasts(variable="write")
    with pytest.raises(DataError, match="no dimension to compare"):
        res.get_margins().contrasts()
    with pytest.raises(DataError, match="single level"):
        res.get_margins(at={"write": 50}).contrasts()
    with pytest.raises(ValueError, match="alpha must be in"):
        m.summary_frame(alpha=0)


# ---------------------------------------------------------------------------------------------
# Effects at every row (at="all")


def test_at_all_matches_statsmodels(arrays):
    _, _, sres, res = arrays
    rows = res.get_margeff(at="all")
    np.testing.assert_allclose(rows.margeff, sres.get_margeff(at="all").margeff, atol=1e-9)
    assert rows.frame().shape == (200, 6)
    with pytest.raises(DataError, match="no standard errors"):
        rows.summary_frame()


@pytest.mark.parametrize(
    "options",
    [{}, {"method": "eydx"}, {"dummy": True}, {"count": True, "method": "eydx"}],
    ids=["dydx", "eydx", "dummy", "count"],
)
def test_at_all_averages_to_the_average_effects(hsb, options):
    # Every kind of effect: derivatives (plain, transformed, interacted), factor changes,
    # dummies and counts; frequency weights make the average a weighted one.
    df = hsb.assign(fem=(hsb["female"] == "female").astype(float))
    res = ml.mnlogit(
        "prog ~ ses + np.log(write) + read + fem + awards + fem:read", df, freq_weights="w"
    ).fit()
    rows = res.get_margeff(at="all", **options)
    w = df["w"].to_numpy(float)
    avg = np.tensordot(w / w.sum(), rows.margeff, axes=1)
    np.testing.assert_allclose(avg, res.get_margeff(**options).margeff.to_numpy(), atol=1e-12)


def test_summary_text_html_latex(res):
    m = res.get_margins("ses", at={"write": [30, 70]}, over="female")
    text = str(m.summary(alpha=0.1))
    assert "MultinomialLogit Predictive Margins" in text and "Over:" in text
    assert "ses=high, write=70, female=male" in text and "[0.05" in text
    for outcome in ("prog=academic", "prog=general", "prog=vocation"):
        assert outcome in text
    assert "<table" in m._repr_html_() and "\\begin{tabular}" in m.summary().as_latex()
    assert "Adjusted Predictions at Means" in str(res.get_margins("ses", atmeans=True))
    e = str(res.get_margeff(at={"write": [30, 70]}).summary())
    assert "Marginal Effects at Values" in e and "write=70, ses[T.high]" in e and "dy/dx" in e


@pytest.mark.parametrize("at", ["overall", "mean", "median"])
def test_atexog_matches_statsmodels(arrays, at):
    _, _, sres, res = arrays
    ref = sres.get_margeff(at=at, atexog={1: 50.0})
    # By position, positionally as statsmodels (at, method, atexog), and by name.
    for me in (
        res.get_margeff(at, "dydx", {1: 50.0}),
        res.get_margeff(at, atexog={"write": 50.0}),
    ):
        np.testing.assert_allclose(me.margeff.to_numpy(), ref.margeff, rtol=1e-6)
        np.testing.assert_allclose(me.margeff_se.to_numpy(), ref.margeff_se, rtol=1e-5)


def test_atexog_at_the_mean_of_rows_held_elsewhere(hsb, tmp_path):
    # The typical row of a streamed fit comes from reductions; the fixed variables keep
    # their values there too.
    df = hsb[["prog", "ses", "write", "read"]].copy()
    df["ses"] = df["ses"].astype(str)
    df.iloc[:90].to_parquet(tmp_path / "a.parquet")
    df.iloc[90:].to_parquet(tmp_path / "b.parquet")
    formula = "prog ~ ses + write + np.log(read)"
    big = ml.mnlogit(formula, ml.parquet(tmp_path, batch_rows=41), ref="academic").fit()
    mem = ml.mnlogit(formula, df, ref="academic").fit()
    for fixed in ({"write": 45.0}, {"ses": "high", "read": 60.0}):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            a = big.get_margeff(at="mean", atexog=fixed)
        b = mem.get_margeff(at="mean", atexog=fixed)
        np.testing.assert_allclose(a.margeff, b.margeff, rtol=1e-10)
        np.testing.assert_allclose(a.margeff_se, b.margeff_se, rtol=1e-10)
    assert not np.allclose(b.margeff, mem.get_margeff(at="mean").margeff)


def test_atexog_errors(res):
    with pytest.raises(DataError, match="atexog must be a dict"):
        res.get_margeff(atexog=[50.0])
    with pytest.raises(ValueError, match="not both"):
        res.get_margeff(at={"write": 50}, atexog={"write": 50})
    with pytest.raises(ValueError, match="atexog would be ignored"):
        res.get_margeff(at="zero", atexog={"write": 50})
    with pytest.raises(ValueError, match="atexog goes with"):
        res.get_margeff(at="all", atexog={"write": 50})
    with pytest.raises(DataError, match="not a variable of the formula"):
        res.get_margeff(at="mean", atexog={"math": 50})


def test_invariant_to_the_reference_outcome(res):
    a = res.get_margins("ses", at={"write": [40, 60]})
    b = res.repivot("vocation").get_margins("ses", at={"write": [40, 60]})
    pd.testing.assert_frame_equal(a.summary_frame(), b.summary_frame(), rtol=1e-8)
    pd.testing.assert_frame_equal(a.test_equal(), b.test_equal(), rtol=1e-6)
