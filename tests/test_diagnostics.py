"""fitstat, listcoef, the Small-Hsiao IIA test and mlogtest (Stata's SPost13 commands).

fitstat is checked against ``tests/reference/hsbdemo_fitstat.csv`` (R: VGAM fit, measures
computed from its probabilities by ``tests/reference/R/fitstat.R``); listcoef against
pairwise contrasts of R's coefficients and covariance (``hsbdemo_prog_ses_write*.csv``) and
against refits with another reference outcome; Small-Hsiao against its definition, recomputed
here from independent fits of the two halves.
"""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
import pytest

import multilogit as ml
from tests.reference_data import REFERENCE_DIR, load_covariances, load_reference

FORMULA = "prog ~ ses + write"


@pytest.fixture(scope="module")
def hsb():
    df = ml.datasets.load("hsbdemo")
    df["ses"] = pd.Categorical(df["ses"], categories=["low", "middle", "high"])
    return df


@pytest.fixture(scope="module")
def res(hsb):
    return ml.mnlogit(FORMULA, hsb, ref="academic").fit()


def _fitstat_reference() -> pd.Series:
    text = (REFERENCE_DIR / "hsbdemo_fitstat.csv").read_text()
    body = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    return pd.read_csv(io.StringIO(body), index_col="measure")["value"]


# -- fitstat -------------------------------------------------------------------------------


def test_fitstat_matches_r(res):
    expected = _fitstat_reference()
    got = res.fitstat()
    assert list(got.index) == list(expected.index)
    np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), rtol=1e-9)


def test_fitstat_frequency_weights_equal_repeated_rows(hsb):
    w = 1 + hsb["id"].to_numpy() % 3
    weighted = ml.mnlogit(FORMULA, hsb, ref="academic", freq_weights=w).fit().fitstat()
    repeated = hsb.loc[hsb.index.repeat(w)].reset_index(drop=True)
    plain = ml.mnlogit(FORMULA, repeated, ref="academic").fit().fitstat()
    np.testing.assert_allclose(weighted.to_numpy(), plain.to_numpy(), rtol=1e-9)


def test_fitstat_refuses_pseudo_likelihoods(hsb):
    w = np.linspace(0.5, 2.0, len(hsb))
    with pytest.raises(ml.DataError, match="sampling weights"):
        ml.mnlogit(FORMULA, hsb, weights=w).fit().fitstat()
    with pytest.raises(ml.DataError, match="firth"):
        ml.mnlogit(FORMULA, hsb).fit(method="firth").fitstat()


# -- listcoef ------------------------------------------------------------------------------


def beta(ref, term, outcome):
    return 0.0 if outcome == "academic" else ref.coef.loc[term, outcome]


def cov(V, term, o1, o2):
    return 0.0 if "academic" in (o1, o2) else V.loc[(o1, term), (o2, term)]


def test_listcoef_matches_contrasts_of_r_estimates(res, hsb):
    ref = load_reference("hsbdemo_prog_ses_write")
    covs, _ = load_covariances("hsbdemo_prog_ses_write_cov")
    V = covs["nonrobust"]
    table = res.listcoef()
    X = pd.DataFrame(
        {
            "ses[T.middle]": (hsb["ses"] == "middle").astype(float),
            "ses[T.high]": (hsb["ses"] == "high").astype(float),
            "write": hsb["write"].astype(float),
        }
    )
    outcomes = ["academic", "general", "vocation"]
    rows = 0
    for term in X.columns:
        sd = X[term].std(ddof=1)
        for a in outcomes:
            for b in outcomes:
                if a == b:
                    continue

                coef = beta(ref, term, a) - beta(ref, term, b)
                var = cov(V, term, a, a) + cov(V, term, b, b) - 2 * cov(V, term, a, b)
                se = math.sqrt(var)
                row = table.loc[(term, a, b)]
                assert row["coef"] == pytest.approx(coef, rel=1e-9)
                assert row["std_err"] == pytest.approx(se, rel=1e-8)
                assert row["sd_x"] == pytest.approx(sd, rel=1e-12)
                assert row["exp_b_std"] == pytest.approx(math.exp(coef * sd), rel=1e-9)
                assert row["pct"] == pytest.approx(100 * math.expm1(coef), rel=1e-9)
                rows += 1
    assert rows == len(table) == 3 * 6


def test_listcoef_pairs_equal_refits_with_that_reference(res, hsb):
    table = res.listcoef()
    refit = ml.mnlogit(FORMULA, hsb, ref="vocation").fit()
    for a in ("academic", "general"):
        for term in ("ses[T.high]", "write"):
            row = table.loc[(term, a, "vocation")]
            assert row["coef"] == pytest.approx(refit.params.loc[term, a], rel=1e-8)
            assert row["std_err"] == pytest.approx(refit.bse.loc[term, a], rel=1e-7)
            assert row["pvalue"] == pytest.approx(refit.pvalues.loc[term, a], rel=1e-6)
    only_ref = res.listcoef(pairs="reference")
    assert set(only_ref.index.get_level_values("versus")) == {"academic"}
    with pytest.raises(ValueError, match="pairs"):
        res.listcoef(pairs="some")


# -- Small-Hsiao ---------------------------------------------------------------------------


def _loglike(beta: pd.DataFrame, X: np.ndarray, y: np.ndarray, order: list) -> float:
    eta = np.column_stack([np.zeros(len(X))] + [X @ beta[o].to_numpy() for o in order[1:]])
    logp = eta - np.log(np.exp(eta).sum(axis=1, keepdims=True))
    return float(sum(logp[i, order.index(v)] for i, v in enumerate(y)))


def test_small_hsiao_recomputed_from_fits_of_the_halves(res, hsb):
    split = (hsb["id"].to_numpy() % 2) == 0
    got = res.small_hsiao("vocation", split=split)
    a, b = hsb[split], hsb[~split]
    fa = ml.mnlogit(FORMULA, a, ref="academic").fit()
    fb = ml.mnlogit(FORMULA, b, ref="academic").fit()
    combined = fa.params / math.sqrt(2) + (1 - 1 / math.sqrt(2)) * fb.params
    b_rest = b[b["prog"] != "vocation"].assign(prog=lambda d: d["prog"].astype(str))
    restricted = ml.mnlogit(FORMULA, b_rest, ref="academic").fit()
    design = np.column_stack(
        [
            np.ones(len(b_rest)),
            (b_rest["ses"] == "middle"),
            (b_rest["ses"] == "high"),
            b_rest["write"],
        ]
    ).astype(float)
    ll_ab = _loglike(
        combined[["general"]], design, b_rest["prog"].to_numpy(), ["academic", "general"]
    )
    stat = -2 * (ll_ab - restricted.llf)
    assert got.statistic == pytest.approx(stat, rel=1e-9)
    assert got.df == 4  # the restricted model's coefficients: one equation of four terms
    assert got.pvalue == pytest.approx(math.exp(-stat / 2) * (1 + stat / 2), rel=1e-9)


def test_small_hsiao_seeds_are_reproducible(res):
    one = res.small_hsiao("general", seed=7)
    again = res.small_hsiao("general", seed=7)
    other = res.small_hsiao("general", seed=8)
    assert one.statistic == again.statistic
    assert one.statistic != other.statistic


def test_small_hsiao_omitting_the_reference_uses_another(res, hsb):
    split = (hsb["id"].to_numpy() % 2) == 0
    got = res.small_hsiao("academic", split=split)
    rebased = ml.mnlogit(FORMULA, hsb, ref="general").fit().small_hsiao("academic", split=split)
    assert got.statistic == pytest.approx(rebased.statistic, rel=1e-9)


def test_small_hsiao_errors(res, hsb):
    with pytest.raises(ml.DataError, match="one entry per row"):
        res.small_hsiao("general", split=np.ones(10, dtype=bool))
    with pytest.raises(ml.DataError, match="both halves"):
        res.small_hsiao("general", split=np.ones(len(hsb), dtype=bool))
    with pytest.raises(ml.DataError, match="0/1"):
        res.small_hsiao("general", split=np.arange(len(hsb)))
    with pytest.raises(ml.DataError, match="three outcomes"):
        two = hsb[hsb["prog"] != "vocation"].assign(prog=lambda d: d["prog"].astype(str))
        ml.mnlogit(FORMULA, two).fit().small_hsiao("general", seed=1)
    w = np.linspace(0.5, 2.0, len(hsb))
    with pytest.raises(ml.DataError, match="sampling weights"):
        ml.mnlogit(FORMULA, hsb, weights=w).fit().small_hsiao("general", seed=1)


# -- mlogtest ------------------------------------------------------------------------------


def test_mlogtest_gathers_the_single_tests(res):
    out = res.mlogtest(seed=3)
    assert set(out.tables()) == {
        "lr",
        "wald",
        "combine_wald",
        "combine_lr",
        "hausman",
        "small_hsiao",
    }
    assert out.lr.loc["write", "statistic"] == pytest.approx(res.anova().loc["write", "statistic"])
    assert "Intercept" not in out.wald.index
    t = res.test_combine("general", "vocation", method="lr")
    assert out.combine_lr.loc[("general", "vocation"), "statistic"] == pytest.approx(t.statistic)
    h = res.iia_test("general")
    assert out.hausman.loc["general", "statistic"] == pytest.approx(h.statistic)
    # One split serves every omitted outcome.
    n = len(res.model.level_codes)
    mask = np.zeros(n, dtype=bool)
    mask[np.random.default_rng(3).permutation(n)[: n // 2]] = True
    sh = res.small_hsiao("vocation", split=mask)
    assert out.small_hsiao.loc["vocation", "statistic"] == pytest.approx(sh.statistic)
    text = str(out)
    assert "Small-Hsiao" in text and "combining outcomes" in text
    assert "<h4>" in out._repr_html_()


def test_mlogtest_with_sampling_weights_keeps_the_wald_tests(hsb):
    w = np.linspace(0.5, 2.0, len(hsb))
    out = ml.mnlogit(FORMULA, hsb, weights=w).fit().mlogtest()
    assert set(out.tables()) == {"wald", "combine_wald"}
    assert any("sampling weights" in n for n in out.notes)
    with pytest.raises(ValueError, match="unknown test"):
        ml.mnlogit(FORMULA, hsb).fit().mlogtest(tests=["lr", "iia"])
