"""results.save / multilogit.load (no pickle inside), integrity checks, and pickling."""

import hashlib
import io
import json
import pickle
import warnings
import zipfile

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import multilogit as ml
from tests.results_files import read_entries, write_entries


@pytest.fixture(scope="module")
def hsb():
    return ml.datasets.load("hsbdemo")


@pytest.fixture(scope="module")
def newdata(hsb):
    return hsb.sample(60, random_state=7)


FORMULAS = [
    "prog ~ ses + write",
    "prog ~ C(ses, Sum) + center(write) + standardize(read) + np.log(math) + bs(science, df=4)",
    'prog ~ C(female):socst + I(write**2) + Q("read") - 1',
    "prog ~ C(cid) + schtyp * math",
    "prog ~ C(ses, levels=['high', 'middle', 'low']) + np.sqrt(write)",
]


def _summaries_equal(a, b):
    s1, s2 = a.summary(), b.summary()
    assert s1.as_text() == s2.as_text()
    assert s1.as_html() == s2.as_html()
    assert s1.as_latex() == s2.as_latex()


def _same_results(a, b, new):
    pd.testing.assert_frame_equal(a.params, b.params)
    pd.testing.assert_frame_equal(a.bse, b.bse)
    pd.testing.assert_frame_equal(a.cov_params(), b.cov_params())
    for attr in ("llf", "llnull", "aic", "bic", "prsquared", "nobs", "df_model", "df_resid"):
        # assert_equal: NaN equals NaN (llnull and prsquared of a model without a constant)
        np.testing.assert_equal(getattr(a, attr), getattr(b, attr), err_msg=attr)
    # Identical, not merely close: the design is rebuilt exactly.
    pd.testing.assert_frame_equal(a.predict(new), b.predict(new), check_exact=True)
    pd.testing.assert_series_equal(a.predict(new, which="class"), b.predict(new, which="class"))
    pd.testing.assert_frame_equal(a.predict(new, which="linear"), b.predict(new, which="linear"))
    _summaries_equal(a, b)


@pytest.mark.parametrize("formula", FORMULAS)
def test_roundtrip_formula(tmp_path, hsb, newdata, formula):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ml.PerfectSeparationWarning)
        res = ml.mnlogit(formula, hsb, ref="general").fit()
    path = tmp_path / "fit.npz"
    res.save(path)
    loaded = ml.load(path)
    _same_results(res, loaded, newdata)
    assert loaded.ref == "general"
    assert "loaded" in repr(loaded.model)
    pd.testing.assert_frame_equal(loaded.iteration_log, res.iteration_log)
    # Without the data, predictions need new data.
    with pytest.raises(ml.DataError, match="without its estimation data"):
        loaded.predict()


def test_roundtrip_with_data_refits(tmp_path, hsb, newdata):
    res = ml.mnlogit("prog ~ ses + write", hsb).fit()
    path = tmp_path / "fit.npz"
    res.save(path, include_data=True)
    loaded = ml.load(path)
    _same_results(res, loaded, newdata)
    pd.testing.assert_frame_equal(loaded.predict(), res.predict())
    refit = loaded.model.fit()
    np.testing.assert_array_equal(refit.params.to_numpy(), res.params.to_numpy())


def test_roundtrip_array_model(tmp_path, hsb):
    X = sm.add_constant(hsb[["write", "read"]])
    res = ml.MultinomialLogit(hsb.prog, X).fit()
    path = tmp_path / "arr.npz"
    res.save(path)
    loaded = ml.load(path)
    _same_results(res, loaded, X.head(30))
    np.testing.assert_array_equal(
        loaded.predict(X.to_numpy()[:5]).to_numpy(), res.predict(X.to_numpy()[:5]).to_numpy()
    )


def test_roundtrip_integer_and_bool_labels(tmp_path):
    rng = np.random.default_rng(5)
    df = pd.DataFrame({"y": rng.integers(1, 4, 120), "b": rng.random(120) < 0.5})
    df["x"] = rng.normal(size=120)
    res = ml.mnlogit("y ~ x + b", df, ref=2).fit()
    res.save(tmp_path / "f.npz")
    loaded = ml.load(tmp_path / "f.npz")
    assert loaded.outcomes == [1, 2, 3] and loaded.ref == 2
    _same_results(res, loaded, df.head(10))


def test_roundtrip_separation_and_aliased(tmp_path, hsb, newdata):
    df = hsb.assign(w2=2 * hsb.write)
    with pytest.warns(ml.PerfectSeparationWarning):
        res = ml.mnlogit("prog ~ C(awards) + write + w2", df).fit(drop_collinear=True)
    assert res.separation is not None
    res.save(tmp_path / "s.npz")
    loaded = ml.load(tmp_path / "s.npz")
    _same_results(res, loaded, newdata.assign(w2=2 * newdata.write))
    assert loaded.separation.kind == res.separation.kind
    assert loaded.separation.terms == res.separation.terms
    np.testing.assert_array_equal(loaded.separation.params, res.separation.params)
    np.testing.assert_array_equal(loaded._aliased, res._aliased)


# -- what loading refuses ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def saved(tmp_path_factory, hsb):
    res = ml.mnlogit("prog ~ ses + center(write)", hsb).fit()
    path = tmp_path_factory.mktemp("saved") / "fit.npz"
    res.save(path)
    return path


def _edit_meta(entries, change):
    meta = json.loads(entries["metadata"].tobytes())
    change(meta)
    entries = dict(entries)
    entries["metadata"] = np.frombuffer(json.dumps(meta, sort_keys=True).encode(), np.uint8)
    return entries


def test_rejects_edited_array(tmp_path, saved):
    e = read_entries(saved)
    e["params"] = e["params"] + 1e-9
    write_entries(tmp_path / "t.npz", e)
    with pytest.raises(ml.PersistenceError, match="integrity check"):
        ml.load(tmp_path / "t.npz")


def _payload_offset(path, member):
    """Offset in the file of the middle byte of a zip member's stored bytes."""
    import struct
    import zipfile

    info = zipfile.ZipFile(path).getinfo(member)
    raw = path.read_bytes()
    name_len, extra_len = struct.unpack(
        "<HH", raw[info.header_offset + 26 : info.header_offset + 30]
    )
    start = info.header_offset + 30 + name_len + extra_len
    return start + info.compress_size // 2


@pytest.mark.parametrize("member", ["params.npy", "metadata.npy", "iteration_log.npy"])
def test_rejects_corrupted_bytes(tmp_path, saved, member):
    raw = bytearray(saved.read_bytes())
    raw[_payload_offset(saved, member)] ^= 0xFF
    (tmp_path / "c.npz").write_bytes(bytes(raw))
    # The middle byte lies in a zip header or in array data, depending on the layout.
    with pytest.raises(ml.PersistenceError, match="not a readable|integrity check"):
        ml.load(tmp_path / "c.npz")
    (tmp_path / "trunc.npz").write_bytes(bytes(raw[:200]))
    with pytest.raises(ml.PersistenceError, match="not a readable"):
        ml.load(tmp_path / "trunc.npz")
    (tmp_path / "junk.npz").write_bytes(b"definitely not a zip file")
    with pytest.raises(ml.PersistenceError, match="not a readable"):
        ml.load(tmp_path / "junk.npz")


def test_every_single_byte_flip_is_caught_or_harmless(tmp_path, saved):
    # Flip bytes across the whole file: loading either fails with our error, or (for bytes
    # nothing reads, such as zip timestamps) gives the very same results.
    good = ml.load(saved)
    raw = saved.read_bytes()
    outcomes = set()
    for pos in range(0, len(raw), max(1, len(raw) // 150)):
        bad = bytearray(raw)
        bad[pos] ^= 0x5A
        path = tmp_path / "flip.npz"
        path.write_bytes(bytes(bad))
        try:
            res = ml.load(path)
        except ml.PersistenceError:
            outcomes.add("error")
        else:
            pd.testing.assert_frame_equal(res.params, good.params)
            assert res.summary().as_text() == good.summary().as_text()
            outcomes.add("same")
    assert "error" in outcomes


def test_rejects_other_format_and_version(tmp_path, saved):
    e = read_entries(saved)
    write_entries(tmp_path / "v.npz", _edit_meta(e, lambda m: m.update(format_version=99)), True)
    with pytest.raises(ml.PersistenceError, match="format version 99"):
        ml.load(tmp_path / "v.npz")
    write_entries(tmp_path / "f.npz", _edit_meta(e, lambda m: m.update(format="other")), True)
    with pytest.raises(ml.PersistenceError, match="not a multilogit results file"):
        ml.load(tmp_path / "f.npz")
    with open(tmp_path / "plain.npz", "wb") as fh:
        np.savez(fh, a=np.arange(3))
    with pytest.raises(ml.PersistenceError, match="no metadata"):
        ml.load(tmp_path / "plain.npz")
    e2 = dict(e)
    e2["metadata"] = np.frombuffer(b"{not json", np.uint8)
    write_entries(tmp_path / "j.npz", e2)
    with pytest.raises(ml.PersistenceError, match="not JSON"):
        ml.load(tmp_path / "j.npz")


def test_rejects_inconsistent_shapes(tmp_path, saved):
    e = read_entries(saved)
    e["params"] = e["params"][:, :-1].copy()
    write_entries(tmp_path / "s.npz", e, resign=True)
    with pytest.raises(ml.PersistenceError, match="'params' has the wrong shape"):
        ml.load(tmp_path / "s.npz")

    def shrink(m):
        m["arrays"]["cov"]["shape"] = [4, 4]

    e = read_entries(saved)
    e["cov"] = e["cov"][:4, :4].copy()
    write_entries(tmp_path / "c.npz", _edit_meta(e, shrink), resign=True)
    with pytest.raises(ml.PersistenceError, match=r"cov should have shape \(8, 8\)"):
        ml.load(tmp_path / "c.npz")
    e = read_entries(saved)
    e["extra"] = np.zeros(2)
    write_entries(tmp_path / "x.npz", e, resign=True)
    with pytest.raises(ml.PersistenceError, match="do not match the metadata"):
        ml.load(tmp_path / "x.npz")
    write_entries(
        tmp_path / "r.npz",
        _edit_meta(read_entries(saved), lambda m: m["outcome"].update(ref="x")),
        1,
    )
    with pytest.raises(ml.PersistenceError, match="reference outcome"):
        ml.load(tmp_path / "r.npz")


def test_rejects_code_in_formula(tmp_path, saved):
    # A tamperer who recomputes the digest still cannot make load (or predict) run code.
    def inject(m):
        m["design"]["formula"] = "prog ~ __import__('os').system('echo pwned')"
        m["design"]["factors"][0]["code"] = "__import__('os').system('echo pwned')"

    write_entries(tmp_path / "i.npz", _edit_meta(read_entries(saved), inject), resign=True)
    with pytest.raises(ml.PersistenceError, match="not allowed|np.<function>"):
        ml.load(tmp_path / "i.npz")

    def sneaky(m):
        m["design"]["formula"] = "prog ~ ses + np.load(write)"

    write_entries(tmp_path / "k.npz", _edit_meta(read_entries(saved), sneaky), resign=True)
    with pytest.raises(ml.PersistenceError, match="np.<function>"):
        ml.load(tmp_path / "k.npz")


def test_pickled_array_inside_is_refused(tmp_path, saved):
    e = read_entries(saved)
    buf = io.BytesIO()
    np.save(buf, np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    with zipfile.ZipFile(tmp_path / "p.npz", "w") as zf:
        for k, v in e.items():
            if k == "params":
                continue
            b = io.BytesIO()
            np.save(b, v)
            zf.writestr(k + ".npy", b.getvalue())
        zf.writestr("params.npy", buf.getvalue())
    with pytest.raises(ml.PersistenceError, match=r"not a readable.*(pickle|Object arrays)"):
        ml.load(tmp_path / "p.npz")


def test_signed_files(tmp_path, hsb):
    res = ml.mnlogit("prog ~ write", hsb).fit()
    res.save(tmp_path / "k.npz", key=b"secret")
    with pytest.raises(ml.PersistenceError, match="is signed"):
        ml.load(tmp_path / "k.npz")
    with pytest.raises(ml.PersistenceError, match="key is wrong"):
        ml.load(tmp_path / "k.npz", key=b"guess")
    loaded = ml.load(tmp_path / "k.npz", key="secret")
    pd.testing.assert_frame_equal(loaded.params, res.params)
    # The unkeyed digest a tamperer can recompute does not pass for a signed file.
    e = read_entries(tmp_path / "k.npz")
    e["params"] = e["params"] * 2
    write_entries(tmp_path / "k2.npz", e, resign=True)
    with pytest.raises(ml.PersistenceError, match="integrity check"):
        ml.load(tmp_path / "k2.npz", key=b"secret")


def test_digest_is_sha256_of_documented_content(saved):
    e = read_entries(saved)
    meta = e.pop("metadata").tobytes()
    digest = e.pop("digest").tobytes().decode()
    h = hashlib.sha256(meta)
    for name in sorted(e):
        a = np.ascontiguousarray(e[name])
        h.update(name.encode() + a.dtype.str.encode() + repr(a.shape).encode() + a.tobytes())
    assert h.hexdigest() == digest
    m = json.loads(meta)
    assert m["format"] == "multilogit-results" and m["format_version"] == 1
    assert m["design"]["factors"][1]["transforms"]


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="No such file"):
        ml.load(tmp_path / "nope.npz")


def test_save_refuses_unsaveable_formula(tmp_path, hsb):
    res = ml.mnlogit("prog ~ double(write)", hsb).fit()
    with pytest.raises(ml.PersistenceError, match="calls 'double'"):
        res.save(tmp_path / "u.npz")
    assert not (tmp_path / "u.npz").exists()  # refused before anything is written


def test_loaded_model_checks_new_data(tmp_path, saved, hsb):
    loaded = ml.load(saved)
    with pytest.raises(ml.DataError, match="missing column.*'write'"):
        loaded.predict(hsb.drop(columns="write"))
    bad = hsb.head(2).assign(ses=["low", "royal"])
    with pytest.raises(ml.DataError, match="'royal' not seen"):
        loaded.predict(bad)


def test_loaded_covariance_cannot_be_recomputed(saved):
    loaded = ml.load(saved)
    assert loaded.cov_type == "nonrobust"
    with pytest.raises(ml.PersistenceError, match="refit"):
        loaded._cov_estimator.compute(None, None)


# -- pickle ---------------------------------------------------------------------------------


def double(x):
    """A module-level function used in a formula: picklable by reference."""
    return 2 * np.asarray(x)


@pytest.mark.parametrize("formula", [*FORMULAS, "prog ~ double(write) + ses"])
def test_pickle_roundtrip(hsb, newdata, formula):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ml.PerfectSeparationWarning)
        res = ml.mnlogit(formula, hsb).fit()
        back = pickle.loads(pickle.dumps(res))
        refit = back.model.fit()
    _same_results(res, back, newdata)
    pd.testing.assert_frame_equal(back.predict(), res.predict())
    # The eval environment was reduced to what the formula uses.
    env_names = set().union(*(ns.keys() for ns in back.model.design.eval_env._namespaces))
    assert "hsb" not in env_names and "pytest" not in env_names
    assert back.model.design.design_info.column_names == res.model.design.design_info.column_names
    np.testing.assert_array_equal(refit.params.to_numpy(), res.params.to_numpy())


def test_pickle_lambda_in_formula_fails_clearly(hsb):
    triple = lambda x: 3 * x  # noqa: E731, F841 (used by the formula)
    res = ml.mnlogit("prog ~ triple(write)", hsb).fit()
    with pytest.raises(pickle.PicklingError, match="cannot pickle the design"):
        pickle.dumps(res)


def test_pickle_array_model(hsb):
    res = ml.MultinomialLogit(hsb.prog, sm.add_constant(hsb[["write"]])).fit()
    back = pickle.loads(pickle.dumps(res))
    pd.testing.assert_frame_equal(back.params, res.params)
    _summaries_equal(res, back)


@pytest.mark.parametrize("include_data", [False, True])
def test_roundtrip_weights_and_cluster_covariance(tmp_path, hsb, newdata, include_data):
    df = hsb.assign(w=1.0 + (hsb.id % 3), f=1 + (hsb.id % 2))
    res = ml.mnlogit("prog ~ ses + write", df, weights="w", freq_weights="f").fit(
        cov_type="cluster", cov_kwds={"groups": "cid"}
    )
    res.save(tmp_path / "w.npz", include_data=include_data)
    loaded = ml.load(tmp_path / "w.npz")
    _same_results(res, loaded, newdata)
    text = loaded.summary().as_text()
    assert "No. Clusters:" in text and "Sampling weights" in text
    assert loaded.n_groups == 20
    back = pickle.loads(pickle.dumps(res))
    _same_results(res, back, newdata)
    if include_data:
        np.testing.assert_array_equal(loaded.model.weights, res.model.weights)
        np.testing.assert_array_equal(loaded.model.freq_weights, res.model.freq_weights)
        refit = loaded.model.fit(cov_type="nonrobust")
        np.testing.assert_array_equal(refit.params.to_numpy(), res.params.to_numpy())


def test_loaded_without_data_reparameterises_but_needs_data_for_rows(saved, hsb):
    res = ml.mnlogit("prog ~ ses + center(write)", hsb).fit()
    loaded = ml.load(saved)
    piv, piv0 = loaded.repivot("vocation"), res.repivot("vocation")
    pd.testing.assert_frame_equal(piv.params, piv0.params)
    pd.testing.assert_frame_equal(piv.bse, piv0.bse)
    assert piv.summary().as_text() == piv0.summary().as_text()
    pd.testing.assert_frame_equal(piv.predict(hsb.head(5)), piv0.predict(hsb.head(5)))
    pd.testing.assert_frame_equal(loaded.wald_test_terms(), res.wald_test_terms())
    for needs_rows in (
        lambda: loaded.fittedvalues,
        lambda: loaded.pred_table(),
        lambda: loaded.get_robustcov_results("HC1"),
    ):
        with pytest.raises(ml.DataError, match="without its estimation data"):
            needs_rows()


# -- property: any saveable formula round-trips exactly --------------------------------------


TERMS = [
    "x",
    "center(x)",
    "standardize(z)",
    "np.log(z)",
    "I(x**2)",
    "C(g)",
    "g:x",
    "C(k)",
    "b",
    "bs(x, df=3)",
    "C(g, Sum)",
]


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    seed=st.integers(0, 2**32 - 1),
    terms=st.lists(st.sampled_from(TERMS), min_size=1, max_size=3, unique=True),
    intercept=st.booleans(),
)
def test_roundtrip_property(tmp_path_factory, seed, terms, intercept):
    rng = np.random.default_rng(seed)
    n = 150
    df = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "z": rng.uniform(0.5, 3.0, n),
            "g": pd.Categorical(rng.choice(["lo", "mid", "hi"], n), ["lo", "mid", "hi"]),
            "k": rng.integers(1, 4, n),
            "b": rng.random(n) < 0.5,
            "y": rng.choice(["p", "q", "r"], n),
        }
    )
    formula = "y ~ " + " + ".join(terms) + ("" if intercept else " - 1")
    # Separation by chance only warns; aliased columns are dropped: every draw fits and saves.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ml.PerfectSeparationWarning)
        res = ml.mnlogit(formula, df).fit(drop_collinear=True)
    path = tmp_path_factory.mktemp("prop") / "r.npz"
    res.save(path)
    loaded = ml.load(path)
    new = df.sample(20, random_state=int(seed % 1000))
    pd.testing.assert_frame_equal(loaded.predict(new), res.predict(new), check_exact=True)
    assert loaded.summary().as_text() == res.summary().as_text()
