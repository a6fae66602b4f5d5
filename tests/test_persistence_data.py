"""save(include_data=True) / load keep what the row-level methods need: the row index with its
type and the formula's data columns (marginal effects rebuild the design from them).

The reference is the results object before saving: every row-level quantity of the loaded
results must be identical, index included.
"""

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

import multilogit as ml
from tests.results_files import read_entries, write_entries

FORMULA = "prog ~ C(ses) + np.log(write) + C(female):read + math + C(track) + honours"

AT_OPTIONS = [
    "overall",
    "mean",
    "median",
    {"write": 52.0, "ses": "high"},
    {"math": 60, "track": "b"},
]


@pytest.fixture(scope="module")
def hsb():
    df = ml.datasets.load("hsbdemo")
    rng = np.random.default_rng(11)
    # A plain string column (not a Categorical) and a bool column, as users' frames have.
    df["track"] = pd.Series(rng.choice(["a", "b", "c"], len(df)), dtype=object)
    df["honours"] = (df["honors"] == "enrolled").to_numpy()
    return df


def _with_index(df, kind):
    df = df.copy()
    n = len(df)
    if kind == "string":
        df.index = pd.Index([f"pupil-{i:03d}" for i in range(n)], name="pupil")
    elif kind == "datetime":
        df.index = pd.date_range("2021-03-01", periods=n, freq="D", tz="Europe/Paris", name="day")
    elif kind == "multi":
        df.index = pd.MultiIndex.from_arrays(
            [np.repeat(["north", "south"], n // 2), np.arange(n) * 3], names=["region", "k"]
        )
    elif kind == "shuffled_int":
        df.index = pd.Index(np.random.default_rng(3).permutation(n) + 1000)
    return df


def _outcome(call):
    """What ``call()`` gives, or the error it raises (type and message)."""
    try:
        return "ok", call()
    except (ValueError, ml.MultilogitError) as exc:
        return "error", (type(exc), str(exc))


def _assert_same_margins(a, b, at, method):
    ra = _outcome(lambda: a.get_margeff(at=at, method=method))
    rb = _outcome(lambda: b.get_margeff(at=at, method=method))
    assert ra[0] == rb[0], (at, method, ra, rb)
    if ra[0] == "error":
        assert ra[1] == rb[1]
        return
    ma, mb = ra[1], rb[1]
    pd.testing.assert_frame_equal(ma.margeff, mb.margeff, check_exact=True)
    pd.testing.assert_frame_equal(ma.margeff_se, mb.margeff_se, check_exact=True)
    pd.testing.assert_frame_equal(ma.summary_frame(), mb.summary_frame(), check_exact=True)


def _assert_same_rows(a, b):
    for name in ("fittedvalues", "resid_response", "resid_pearson"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), check_exact=True)
        pd.testing.assert_index_equal(getattr(a, name).index, getattr(b, name).index, exact=True)
    for which in ("prob", "linear"):
        pd.testing.assert_frame_equal(
            a.predict(which=which), b.predict(which=which), check_exact=True
        )
    pd.testing.assert_series_equal(a.predict(which="class"), b.predict(which="class"))
    pd.testing.assert_frame_equal(a.pred_table(), b.pred_table(), check_exact=True)
    pa, pb = a.get_prediction(), b.get_prediction()
    for form in ("long", "wide"):
        pd.testing.assert_frame_equal(
            pa.summary_frame(form=form), pb.summary_frame(form=form), check_exact=True
        )


def _roundtrip(res, tmp_path, name="fit.npz"):
    path = tmp_path / name
    res.save(path, include_data=True)
    return ml.load(path), path


@pytest.mark.parametrize("index", ["range", "string", "datetime", "multi", "shuffled_int"])
def test_formula_model_roundtrip(tmp_path, hsb, index):
    df = _with_index(hsb, index)
    res = ml.mnlogit(FORMULA, df, ref="general").fit()
    loaded, _ = _roundtrip(res, tmp_path)
    pd.testing.assert_index_equal(loaded.model.row_labels, df.index, exact=True)
    if index == "datetime":
        assert loaded.fittedvalues.index.freq == df.index.freq
    _assert_same_rows(res, loaded)
    _assert_same_margins(res, loaded, "overall", "dydx")


@pytest.fixture(scope="module")
def formula_pair(tmp_path_factory, hsb):
    res = ml.mnlogit(FORMULA, _with_index(hsb, "string"), ref="general").fit()
    return res, _roundtrip(res, tmp_path_factory.mktemp("pair"))[0]


@pytest.mark.parametrize("at", AT_OPTIONS, ids=str)
@pytest.mark.parametrize("method", ["dydx", "eyex"])
def test_formula_model_margins_every_option(formula_pair, at, method):
    _assert_same_margins(*formula_pair, at, method)


@pytest.mark.parametrize("count", [False, True])
def test_formula_model_margins_counts(formula_pair, count):
    res, loaded = formula_pair
    ma = res.get_margeff(at="overall", count=count, dummy=False)
    mb = loaded.get_margeff(at="overall", count=count, dummy=False)
    pd.testing.assert_frame_equal(ma.margeff, mb.margeff, check_exact=True)


def test_formula_model_with_dropped_rows(tmp_path, hsb):
    # Rows dropped for missing values: the loaded model holds the kept rows only, and the
    # marginal effects must still line them up with the stored columns.
    df = _with_index(hsb, "string")
    df.loc[df.index[[3, 50, 120]], "math"] = np.nan
    res = ml.mnlogit(FORMULA, df, missing="drop").fit()
    assert res.model.n_dropped == 3
    loaded, _ = _roundtrip(res, tmp_path)
    assert loaded.model.n_dropped == 3
    _assert_same_rows(res, loaded)
    for at in ("overall", "mean", {"write": 40}):
        _assert_same_margins(res, loaded, at, "dydx")


def test_duplicate_row_labels(tmp_path, hsb):
    df = hsb.copy()
    df.index = pd.Index(np.repeat([f"school-{i}" for i in range(20)], 10))
    res = ml.mnlogit(FORMULA, df).fit()
    loaded, _ = _roundtrip(res, tmp_path)
    pd.testing.assert_index_equal(loaded.fittedvalues.index, df.index, exact=True)
    _assert_same_rows(res, loaded)
    _assert_same_margins(res, loaded, "mean", "dydx")


@pytest.mark.parametrize("index", ["range", "string", "datetime"])
def test_array_model_roundtrip(tmp_path, hsb, index):
    df = _with_index(hsb, index)
    X = sm.add_constant(df[["write", "read"]].assign(female=(df.female == "female") * 1.0))
    res = ml.MultinomialLogit(df.prog, X).fit()
    loaded, _ = _roundtrip(res, tmp_path)
    pd.testing.assert_index_equal(loaded.model.row_labels, df.index, exact=True)
    _assert_same_rows(res, loaded)
    for at in ("overall", "mean", "median", {"write": 50.0}, {1: 45.0}):
        for method in ("dydx", "eyex", "dyex"):
            _assert_same_margins(res, loaded, at, method)


def test_margins_after_loading_match_statsmodels(tmp_path, hsb):
    # An independent check that the stored columns are the right ones: the loaded formula
    # model's average marginal effects equal statsmodels' (formula without transforms, which
    # statsmodels' get_margeff treats column by column).
    df = _with_index(hsb, "string")
    res = ml.mnlogit("prog ~ write + read + math", df).fit()
    loaded, _ = _roundtrip(res, tmp_path)
    codes = df["prog"].cat.codes.to_numpy()
    sm_res = sm.MNLogit(codes, sm.add_constant(df[["write", "read", "math"]])).fit(disp=0)
    expect = sm_res.get_margeff(at="overall").margeff  # (terms, K)
    # 1e-6: both fits stop at their own convergence tolerance.
    np.testing.assert_allclose(loaded.get_margeff().margeff.to_numpy(), expect, atol=1e-6)


# -- what the stored data look like, and tampering -----------------------------------------


def _set_meta(entries, meta):
    entries = dict(entries)
    entries["metadata"] = np.frombuffer(json.dumps(meta, sort_keys=True).encode(), np.uint8)
    return entries


@pytest.fixture()
def saved(tmp_path, hsb):
    res = ml.mnlogit(FORMULA, _with_index(hsb, "string")).fit()
    _, path = _roundtrip(res, tmp_path, "saved.npz")
    return res, path


def test_stored_columns_are_typed_and_not_pickled(saved):
    _, path = saved
    e = read_entries(path)
    meta = json.loads(e["metadata"].tobytes())
    specs = meta["data"]["columns"]
    cols = {c["name"]: (c, e[f"data.column.{pos}"]) for pos, c in enumerate(specs)}
    # Exactly the variables the formula uses: not the outcome, not unrelated columns.
    assert set(cols) == {"ses", "write", "female", "read", "math", "track", "honours"}
    assert cols["ses"][0]["encoding"] == "categorical" and cols["ses"][0]["ordered"]
    assert cols["ses"][0]["categories"] == ["low", "middle", "high"]
    assert cols["track"][0]["encoding"] == "labels" and cols["track"][0]["dtype"] == "object"
    assert cols["write"][1].dtype == np.int64 and cols["honours"][1].dtype == np.bool_
    assert meta["data"]["index"]["levels"][0]["encoding"] == "labels"
    assert all(a.dtype != object for a in e.values())


@pytest.mark.parametrize("entry", ["data.column.0", "data.column.1", "data.rows.0"])
def test_tampered_data_arrays_are_detected(tmp_path, saved, entry):
    _, path = saved
    e = read_entries(path)
    a = e[entry].copy()
    a[[0, 1]] = a[[1, 0]] if a[0] != a[1] else a[[0, 1]] + 1
    e[entry] = a
    write_entries(tmp_path / "t.npz", e)
    with pytest.raises(ml.PersistenceError, match="integrity check"):
        ml.load(tmp_path / "t.npz")


def test_tampered_index_labels_in_metadata_are_detected(tmp_path, saved):
    _, path = saved
    e = read_entries(path)
    meta = json.loads(e["metadata"].tobytes())
    meta["data"]["index"]["levels"][0]["labels"][0] = "someone-else"
    write_entries(tmp_path / "t.npz", _set_meta(e, meta))
    with pytest.raises(ml.PersistenceError, match="integrity check"):
        ml.load(tmp_path / "t.npz")


def test_resigned_codes_out_of_range_are_refused(tmp_path, saved):
    # An edit with a recomputed (unkeyed) digest must still not index outside the labels.
    _, path = saved
    e = read_entries(path)
    e["data.rows.0"] = e["data.rows.0"].copy()
    e["data.rows.0"][0] = -1
    write_entries(tmp_path / "t.npz", e, resign=True)
    with pytest.raises(ml.PersistenceError, match="out of range"):
        ml.load(tmp_path / "t.npz")


def test_files_without_stored_columns_still_load(tmp_path, saved, hsb):
    # A file as written before the index and columns were stored (format version 1): integer
    # labels in data.index, no "data" metadata.  It loads; margins say what is missing.
    res, path = saved
    e = read_entries(path)
    meta = json.loads(e["metadata"].tobytes())
    for k in [k for k in e if k.startswith(("data.rows.", "data.column."))]:
        del e[k]
        del meta["arrays"][k]
    del meta["data"]
    e["data.index"] = np.arange(len(hsb), dtype=np.int64) + 7
    meta["arrays"]["data.index"] = {"dtype": "<i8", "shape": [len(hsb)]}
    write_entries(tmp_path / "old.npz", _set_meta(e, meta), resign=True)
    old = ml.load(tmp_path / "old.npz")
    pd.testing.assert_index_equal(old.fittedvalues.index, pd.Index(np.arange(len(hsb)) + 7))
    np.testing.assert_array_equal(old.fittedvalues.to_numpy(), res.fittedvalues.to_numpy())
    with pytest.raises(ml.DataError, match="does not hold its data"):
        old.get_margeff()


def test_unsaveable_row_index_is_refused(tmp_path, hsb):
    df = hsb.copy()
    df.index = pd.IntervalIndex.from_breaks(np.arange(len(df) + 1))
    res = ml.mnlogit("prog ~ write", df).fit()
    with pytest.raises(ml.PersistenceError, match="cannot be saved"):
        res.save(tmp_path / "i.npz", include_data=True)
    res.save(tmp_path / "i.npz")  # without the data, the index is not needed


def test_separated_fit_with_data(tmp_path, hsb):
    df = _with_index(hsb, "string")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ml.PerfectSeparationWarning)
        res = ml.mnlogit("prog ~ C(awards) + write", df).fit()
    assert res.separation is not None
    loaded, _ = _roundtrip(res, tmp_path)
    _assert_same_rows(res, loaded)
    _assert_same_margins(res, loaded, "overall", "dydx")
