"""Bootstrap and jackknife covariances (``cov_type="bootstrap"`` / ``"jackknife"``).

The jackknife is deterministic: it must equal the (n-1)/n-scaled spread of estimates from
independent refits of the data without each row (or cluster).  The bootstrap is checked for
reproducibility, for agreement with the sandwich on larger simulated data, and for counting
replications that fail.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import multilogit as ml
from tests.conftest import simulate

FORMULA = "prog ~ ses + write"


@pytest.fixture(scope="module")
def small():
    df = ml.datasets.load("hsbdemo").iloc[:90].reset_index(drop=True)
    return df.assign(prog=df["prog"].astype(str), ses=df["ses"].astype(str))


def _jackknife(estimates: np.ndarray, weights=None) -> np.ndarray:
    w = np.ones(len(estimates)) if weights is None else np.asarray(weights, dtype=float)
    n = w.sum()
    dev = estimates - (w @ estimates) / n
    return (n - 1) / n * (dev.T * w) @ dev


def _flat(res) -> np.ndarray:
    return res.params.to_numpy().T.ravel()


def test_jackknife_equals_delete_one_refits(small):
    res = ml.mnlogit(FORMULA, small, ref="academic").fit(cov_type="jackknife")
    loop = np.vstack(
        [
            _flat(ml.mnlogit(FORMULA, small.drop(index=i), ref="academic").fit())
            for i in small.index
        ]
    )
    np.testing.assert_allclose(
        res.cov_params().to_numpy(), _jackknife(loop), rtol=1e-7, atol=1e-12
    )
    assert "Jackknife" in res.summary().as_text()


def test_jackknife_with_frequency_weights_equals_repeated_rows(small):
    part = small.iloc[:45].reset_index(drop=True)
    w = 1 + np.arange(len(part)) % 3
    weighted = ml.mnlogit(FORMULA, part, ref="academic", freq_weights=w).fit(cov_type="jackknife")
    repeated = part.loc[part.index.repeat(w)].reset_index(drop=True)
    plain = ml.mnlogit(FORMULA, repeated, ref="academic").fit(cov_type="jackknife")
    np.testing.assert_allclose(weighted.cov_params(), plain.cov_params(), rtol=1e-7, atol=1e-12)


def test_cluster_jackknife_equals_delete_cluster_refits(small):
    res = ml.mnlogit(FORMULA, small, ref="academic").fit(
        cov_type="jackknife", cov_kwds={"cluster": "cid"}
    )
    loop = np.vstack(
        [
            _flat(ml.mnlogit(FORMULA, small[small["cid"] != g], ref="academic").fit())
            for g in pd.unique(small["cid"])
        ]
    )
    np.testing.assert_allclose(
        res.cov_params().to_numpy(), _jackknife(loop), rtol=1e-7, atol=1e-12
    )


def test_bootstrap_is_reproducible_for_a_seed(small):
    model = ml.mnlogit(FORMULA, small, ref="academic")
    a = model.fit(cov_type="bootstrap", cov_kwds={"reps": 40, "seed": 11})
    b = model.fit(cov_type="bootstrap", cov_kwds={"reps": 40, "seed": 11})
    c = model.fit(cov_type="bootstrap", cov_kwds={"reps": 40, "seed": 12})
    np.testing.assert_array_equal(a.cov_params(), b.cov_params())
    assert not np.allclose(a.cov_params(), c.cov_params())
    assert "seed 11" in a.summary().as_text()


def test_bootstrap_agrees_with_the_sandwich_on_large_data():
    rng = np.random.default_rng(5)
    X, y = simulate(rng, n=4000, p=3, K=3, scale=0.5)
    model = ml.MultinomialLogit(y, X)
    boot = model.fit(cov_type="bootstrap", cov_kwds={"reps": 300, "seed": 3})
    sandwich = model.fit(cov_type="HC0")
    ratio = boot.bse.to_numpy() / sandwich.bse.to_numpy()
    # 300 replications estimate a standard error to about 4%.
    assert np.all(np.abs(ratio - 1) < 0.15), ratio


def test_cluster_bootstrap_draws_whole_clusters(small):
    model = ml.mnlogit(FORMULA, small, ref="academic")
    res = model.fit(cov_type="bootstrap", cov_kwds={"reps": 60, "seed": 2, "cluster": "cid"})
    assert np.all(np.isfinite(res.bse))
    assert "cluster bootstrap" in res.summary().as_text()


def test_failed_replications_are_counted_and_reported():
    rng = np.random.default_rng(8)
    n = 120
    x = rng.normal(size=n)
    y = np.where(x > 0, "a", "b").astype(object)
    y[:3] = "c"  # a rare outcome: many draws have none of it
    X = np.column_stack([np.ones(n), x + rng.normal(size=n)])
    res = ml.MultinomialLogit(y, X).fit(cov_type="bootstrap", cov_kwds={"reps": 30, "seed": 1})
    est = res._cov_estimator
    assert est.failed > 0
    assert f"{est.failed} replication(s) failed" in res.summary().as_text()
    assert np.all(np.isfinite(res.bse))


def test_resampling_errors(small, tmp_path):
    model = ml.mnlogit(FORMULA, small, ref="academic")
    with pytest.raises(ValueError, match="reps"):
        model.fit(cov_type="bootstrap", cov_kwds={"reps": 1})
    with pytest.raises(TypeError, match="unknown"):
        model.fit(cov_type="jackknife", cov_kwds={"repetitions": 5})
    with pytest.raises(ml.DataError, match="whole numbers"):
        ml.mnlogit(FORMULA, small, freq_weights=np.full(len(small), 1.5)).fit(cov_type="jackknife")
    path = tmp_path / "small.parquet"
    small.to_parquet(path)
    with pytest.raises(ml.DataError, match="in memory"):
        ml.mnlogit(FORMULA, ml.parquet(path), ref="academic").fit(
            cov_type="bootstrap", cov_kwds={"reps": 5, "seed": 1}
        )
