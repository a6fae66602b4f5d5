"""The preliminary pass over digests of chunks (counts and a reduced frame, made where the chunk
is) against the same pass over the whole chunks: the same state, counts and messages."""

import warnings

import numpy as np
import pandas as pd
import pytest

import multilogit as ml
from multilogit.data.digest import DigestSpec, digest
from multilogit.data.stream import design_state

dask = pytest.importorskip("dask")
dd = pytest.importorskip("dask.dataframe")


def _frame(n=3000, seed=5, rare=True):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "y": rng.choice(["car", "bus", "bike"], n),
            "g": rng.choice(["n", "s", "e", "w"], n),
            "k": rng.integers(0, 6, n),
            "b": rng.random(n) < 0.3,
            "x": rng.normal(size=n),
            "x2": rng.normal(size=n),
            "fw": rng.integers(1, 4, n).astype(float),
            "cid": rng.integers(0, 40, n),
        }
    )
    df.loc[:999, "g"] = "n"  # the other levels first appear in later chunks
    df.loc[:1499, "y"] = df.loc[:1499, "y"].replace("bike", "bus")
    df.loc[rng.choice(n, 30, replace=False), "x"] = np.nan
    df.loc[rng.choice(n, 20, replace=False), "g"] = None
    if rare:  # levels seen once, deep inside a chunk: only the distinct rows carry them
        df.loc[2900, ["g", "y", "k", "cid"]] = ["rare", "tram", 17, 999]
    return df


class _Chunks:
    """Chunks of a pandas frame, whole or digested (as a Dask source digests its partitions)."""

    def __init__(self, df, parts, digested):
        cuts = np.linspace(0, len(df), parts + 1).astype(int)
        self.parts = [df.iloc[a:b] for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
        self.column_names = list(df.columns)
        self.npartitions = parts
        if digested:
            self.digests = lambda spec: (digest(p, spec) for p in self.parts)
            self.head = lambda rows=256: self.parts[0].iloc[:rows]
        self.used_digests = digested

    def __call__(self):
        return iter(self.parts)


def _state(df, formula, digested, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        st = design_state(formula, _Chunks(df, 4, digested), **kw)
    return st, [str(w.message) for w in caught]


def _error(df, formula, digested, **kw):
    with pytest.raises(ml.DataError) as exc:
        design_state(formula, _Chunks(df, 4, digested), **kw)
    return str(exc.value)


FORMULAS = [
    "y ~ C(g) + x + b + C(k) + g:x2",
    "y ~ x + x2",
    "y ~ C(g, levels=['w', 'e', 's', 'n']) + k",
    "y ~ center(x) + C(g)",  # stateful: whole chunks
]


@pytest.mark.parametrize("formula", FORMULAS)
def test_digested_pass_finds_the_whole_chunks_state(formula):
    df = _frame()
    kw = dict(ref="bus", missing="drop", freq_weights="fw", groups="cid")
    a, wa = _state(df, formula, True, **kw)
    b, wb = _state(df, formula, False, **kw)
    assert a.outcome == b.outcome and a.design.names == b.design.names
    assert (a.rows, a.dropped, a.used) == (b.rows, b.dropped, b.used)
    for g in b.group_levels:
        np.testing.assert_array_equal(a.group_levels[g], b.group_levels[g])
    info_a, info_b = a.design.design_info, b.design.design_info
    for f, fi in info_b.factor_infos.items():
        assert info_a.factor_infos[f].categories == fi.categories
        assert info_a.factor_infos[f].num_columns == fi.num_columns
    assert wa == wb


def test_digests_are_small_and_count_the_whole_chunk():
    df = _frame()
    spec = DigestSpec(("y", "g", "x", "fw"), ("y", "g"), "y", ("fw",))
    d = digest(df, spec)
    assert d.rows == len(df) and d.missing == {"y": 0, "g": 20, "x": 30, "fw": 0}
    assert d.missing_rows == df[["g", "x"]].isna().any(axis=1).sum()
    # At most the first rows and one row per (outcome, g) pair.
    assert len(d.frame) <= 64 + 4 * 5
    assert not d.frame[["g", "x"]].isna().any().any()


@pytest.mark.parametrize(
    "change, kw",
    [
        (lambda df: df, dict(missing="raise")),
        (lambda df: df.assign(fw=df.fw.where(df.index % 97 != 5, -1.0)), dict(missing="drop")),
        (lambda df: df.assign(fw=df.fw.where(df.index % 89 != 3, np.inf)), dict(missing="drop")),
        (lambda df: df.assign(y=df.index % 3 + 0.5), dict(missing="drop")),
        (lambda df: df.assign(fw=df.fw > 1), dict(missing="drop")),
        (lambda df: df.assign(x=np.nan), dict(missing="drop")),
    ],
    ids=[
        "missing-raise",
        "negative-weights",
        "infinite-weights",
        "continuous-y",
        "bool-weights",
        "no-rows-left",
    ],
)
def test_digested_pass_raises_the_same_messages(change, kw):
    df = change(_frame())
    formula = "y ~ C(g) + x"
    a = _error(df, formula, True, freq_weights="fw", **kw)
    assert a == _error(df, formula, False, freq_weights="fw", **kw)


def test_unused_outcome_category_warns_the_same():
    df = _frame()
    df["y"] = pd.Categorical(df["y"], ["bike", "bus", "car", "tram", "ferry"])
    a, wa = _state(df, "y ~ x", True, missing="drop")
    b, wb = _state(df, "y ~ x", False, missing="drop")
    assert a.outcome == b.outcome and a.outcome.levels == ("bike", "bus", "car", "tram")
    assert wa == wb and any("ferry" in w for w in wa)


def test_dask_fit_with_digested_pass_equals_in_memory():
    df = _frame(rare=False)
    formula = "y ~ C(g) + x + b + C(k) + g:x2"
    kw = dict(ref="bus", missing="drop", freq_weights="fw")
    ref = ml.mnlogit(formula, df, **kw).fit()
    with dask.config.set(scheduler="threads"):
        res = ml.mnlogit(formula, dd.from_pandas(df, npartitions=5), **kw).fit()
    assert res.model.n_dropped == ref.model.n_dropped
    np.testing.assert_allclose(res.params, ref.params, rtol=1e-10)
    np.testing.assert_allclose(res.bse, ref.bse, rtol=1e-10)
