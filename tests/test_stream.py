"""Streamed formula designs: Parquet datasets of several files and row groups, written to
tmp_path, against patsy's in-memory design and the in-memory backend; input checks; and the
memory of a streamed fit on data larger than its bound."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import patsy
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import multilogit as ml
from multilogit.data.stream import stream_design
from multilogit.engine.memory import InMemoryBackend
from multilogit.exceptions import DataError

RHS = "C(ses) + center(write) + read"


def write_dataset(parts, path, row_group_size=25):
    os.makedirs(path, exist_ok=True)
    for i, part in enumerate(parts):
        table = pa.Table.from_pandas(part, preserve_index=False)
        pq.write_table(
            table, os.path.join(path, f"part{i}.parquet"), row_group_size=row_group_size
        )
    return pd.concat(parts, ignore_index=True)


@pytest.fixture
def hsb(tmp_path):
    df = ml.datasets.load("hsbdemo")
    parts = [df.iloc[:60], df.iloc[60:130], df.iloc[130:]]
    parts[0] = parts[0][parts[0].ses != "high"]  # a level absent from one file
    parts[2] = parts[2][parts[2].ses != "low"]
    full = write_dataset(parts, tmp_path / "hsb")
    return full, ml.parquet(tmp_path / "hsb", batch_rows=17)


def test_streamed_design_equals_patsy_and_backend_equals_memory(hsb, tmp_path):
    full, src = hsb
    sd = stream_design("prog ~ " + RHS, src, ref="general", chunk_rows=40, threads=2,
                       directory=tmp_path)  # fmt: skip
    X = patsy.dmatrix(RHS, full)
    assert sd.design.names == tuple(X.design_info.column_names)
    be = sd.backend
    np.testing.assert_array_equal(be.read_rows(0, be.n).X, np.asarray(X))
    assert sd.nobs == len(full) and sd.n_dropped == 0
    assert sd.outcome.levels == ("academic", "general", "vocation")
    assert sd.outcome.ref == "general"
    np.testing.assert_array_equal(sd.outcome_counts, full.prog.value_counts(sort=False).values)
    codes = sd.outcome.eq_codes(full.prog.cat.codes.to_numpy())
    memory = InMemoryBackend(np.asarray(X), codes, np.ones(len(full)), 2, 40, 2)
    beta = np.random.default_rng(0).normal(size=(2, 5)) * 0.01
    a, b = memory.derivatives(beta), be.derivatives(beta)
    assert a.llf == b.llf
    np.testing.assert_array_equal(a.info, b.info)
    # predict on new data rebuilds with the streamed state
    Xnew, _ = sd.design.build(full.iloc[:5])
    np.testing.assert_array_equal(Xnew, np.asarray(X)[:5])
    be.close()


def test_a_callable_source_of_chunks(hsb):
    full, _ = hsb
    calls = []

    def chunks():
        calls.append(1)
        return (full.iloc[a : a + 30] for a in range(0, len(full), 30))

    sd = stream_design("prog ~ " + RHS, chunks)
    assert len(calls) == 2  # one preliminary pass, one to spill
    np.testing.assert_array_equal(sd.backend.read_rows(0, 10).X, patsy.dmatrix(RHS, full)[:10])


def test_categories_that_change_between_files_fall_back_to_sorted_levels(tmp_path):
    a = pd.DataFrame({"y": pd.Categorical(["b", "a"] * 5), "x": np.arange(10.0)})
    b = pd.DataFrame({"y": pd.Categorical(["c", "b"] * 5, categories=["c", "b"]), "x": 1.0})
    write_dataset([a, b], tmp_path / "d", row_group_size=4)
    sd = stream_design("y ~ x", ml.parquet(tmp_path / "d"))
    assert sd.outcome.levels == ("a", "b", "c")
    np.testing.assert_array_equal(sd.outcome_counts, [5, 10, 5])


def test_missing_drop_counts_and_raise_names_columns(tmp_path):
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"y": rng.integers(0, 3, 300), "x": rng.normal(size=300),
                       "z": rng.random(300)})  # fmt: skip
    df.loc[[3, 50, 51], "x"] = np.nan
    df.loc[[50, 299], "y"] = np.nan
    df.loc[[7], "z"] = -1.5  # log(-1): a NaN from a transform
    write_dataset([df.iloc[:120], df.iloc[120:]], tmp_path / "m", row_group_size=50)
    src = ml.parquet(tmp_path / "m", batch_rows=64)
    sd = stream_design("y ~ x + np.log(z + 2)", src, missing="drop")
    assert sd.n_dropped == 4 and sd.nobs == 296
    with pytest.raises(DataError, match=r"4 of 300 rows have missing values in column\(s\) "
                       r"'y' \(2\), 'x' \(3\); pass missing='drop'"):  # fmt: skip
        stream_design("y ~ x", src)
    sd = stream_design("y ~ x + np.log(z + 1)", src, missing="drop")
    assert sd.n_dropped == 5 and sd.nobs == 295


def test_weights_and_groups(tmp_path):
    rng = np.random.default_rng(2)
    n = 500
    df = pd.DataFrame(
        {
            "y": rng.choice(["u", "v", "w"], n),
            "x": rng.normal(size=n),
            "f": rng.integers(1, 4, n).astype(float),
            "s": rng.random(n) + 0.5,
            "g": rng.choice(["k", "a", "m", "b"], n),
            "h": rng.integers(10, 13, n),
        }
    )
    write_dataset([df.iloc[:200], df.iloc[200:]], tmp_path / "w", row_group_size=64)
    sd = stream_design("y ~ x", ml.parquet(tmp_path / "w", batch_rows=100), freq_weights="f",
                       weights="s", groups=["g", "h"], chunk_rows=64)  # fmt: skip
    be = sd.backend
    r = be.read_rows(0, n)
    np.testing.assert_array_equal(r.w, df.f * df.s)
    np.testing.assert_array_equal(r.sampling, df.s)
    assert sd.groups == {"g": 4, "h": 3}
    assert list(sd.group_levels["g"]) == ["a", "b", "k", "m"]
    codes = pd.Index(["a", "b", "k", "m"]).get_indexer(df.g)
    np.testing.assert_array_equal(be.read_column("g", 0, n), codes)
    X = np.column_stack([np.ones(n), df.x])
    memory = InMemoryBackend(X, r.y, r.w, 2, 64, sampling=df.s.to_numpy())
    beta = np.array([[0.1, 0.2], [-0.1, 0.3]])
    sums, weight = be.group_scores(beta, "g", 4)
    expected = memory.group_scores(beta, codes, 4)
    np.testing.assert_allclose(sums, expected[0], rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(weight, expected[1], rtol=1e-12)
    np.testing.assert_allclose(be.score_outer(beta), memory.score_outer(beta), rtol=1e-12)


@pytest.mark.parametrize(
    "frame, formula, kw, message",
    [
        ({"y": [0, 1] * 5, "x": 1.0}, "y ~ q", {}, "'q', which is not a column"),
        ({"y": [0, 1] * 5, "x": 1.0}, "y ~ x", {"weights": "nope"}, "no column.*'nope'"),
        ({"y": ["a"] * 10, "x": 1.0}, "y ~ x", {}, "1 level.*only 'a'"),
        ({"y": [0.5, 1] * 5, "x": 1.0}, "y ~ x", {}, "continuous"),
        ({"y": [0, 1] * 5, "x": [1.0, np.inf] * 5}, "y ~ x", {}, r"infinite.*'x' \(5\)"),
        (
            {"y": [0, 1] * 5, "x": 1.0, "f": [1.0, -1.0] * 5},
            "y ~ x",
            {"freq_weights": "f"},
            r"negative weights.*'f' \(5\)",
        ),
        (
            {"y": [0, 1] * 5, "x": 1.0, "f": ["a"] * 10},
            "y ~ x",
            {"weights": "f"},
            "must be numeric",
        ),
        ({"y": [0, 1] * 5, "x": np.arange(10.0)}, "y ~ bs(x, df=3)", {}, "bs\\(\\) keeps every"),
        (
            {"y": [0, 1] * 5, "x": np.arange(10.0)},
            "y ~ I(x - x.mean())",
            {},
            "depend on other rows",
        ),
        ({"y": [0, 1] * 5, "x": 1.0}, "y ~ x", {"ref": 7}, "reference outcome 7"),
        (
            {"y": [0, 1] * 5, "x": [1.0] * 9 + [-1.5]},
            "y ~ np.log(x + 1)",
            {},
            "1 row.*missing values in the design",
        ),
        ({"y": [np.nan] * 10, "x": 1.0}, "y ~ x", {"missing": "drop"}, "no rows left"),
    ],
)
def test_input_errors(tmp_path, frame, formula, kw, message):
    df = pd.DataFrame(frame)
    write_dataset([df.iloc[:4], df.iloc[4:]], tmp_path / "e", row_group_size=3)
    with pytest.raises(DataError, match=message):
        stream_design(formula, ml.parquet(tmp_path / "e"), directory=tmp_path / "spill", **kw)
    assert not os.listdir(tmp_path / "spill") if (tmp_path / "spill").exists() else True


def test_parquet_source_paths(tmp_path, hsb):
    full, src = hsb
    assert src.count_rows() == len(full)
    assert ml.parquet(str(tmp_path / "hsb" / "*.parquet")).count_rows() == len(full)
    with pytest.raises(DataError, match="no such Parquet"):
        ml.parquet(tmp_path / "absent")
    with pytest.raises(DataError, match="matches"):
        ml.parquet(str(tmp_path / "*.nothing"))


WRITE_SCRIPT = textwrap.dedent(
    """
    import sys, numpy as np, pyarrow as pa, pyarrow.parquet as pq

    path, n, p, files = sys.argv[1], 2_000_000, 10, 8
    for f in range(files):  # file by file: the data never sit in memory at once
        rng = np.random.default_rng(f)
        cols = {f"x{k}": rng.normal(size=n // files) for k in range(p)}
        cols["y"] = rng.integers(0, 3, n // files)
        pq.write_table(pa.table(cols), f"{path}/f{f}.parquet", row_group_size=100_000)
    """
)

RSS_SCRIPT = textwrap.dedent(
    """
    import sys, numpy as np, pyarrow.dataset, patsy
    import multilogit
    from multilogit.data.stream import stream_design

    def hwm():
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM"):
                return int(line.split()[1]) / 1024

    p = 10
    formula = "y ~ " + " + ".join(f"x{k}" for k in range(p)) + " - 1"
    # Baseline after imports and after the reader, patsy and the compiled kernels have run once
    # (on one file): what remains is what grows with the rows.
    small = multilogit.mnlogit(formula, multilogit.parquet(sys.argv[1] + "/f0.parquet"))
    small.fit().bse
    base = hwm()
    # The whole model: streaming passes, rank and constant checks, the Newton iterations on
    # the spill, the exact information and standard errors.
    model = multilogit.mnlogit(formula, multilogit.parquet(sys.argv[1], batch_rows=65536))
    res = model.fit()
    assert res.nobs == 2_000_000 and res.converged and np.all(np.isfinite(res.bse))
    assert res.iteration_log["passes"].iloc[-1] >= 3
    print(base, hwm(), res.nobs * p * 8 / 1e6)
    """
)


def test_streamed_fit_memory_stays_below_the_data_size(tmp_path):
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    run = [sys.executable, "-c"]
    out = subprocess.run(run + [WRITE_SCRIPT, str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    out = subprocess.run(
        run + [RSS_SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=120, env=env
    )
    assert out.returncode == 0, out.stderr
    base, peak, data_mb = map(float, out.stdout.split())
    assert data_mb == 160
    # A pass holds a few batches and one chunk per thread, whatever the number of rows.
    assert peak - base < 150, f"peak RSS grew by {peak - base:.0f} MB for {data_mb:.0f} MB data"


def test_every_kind_of_categorical_factor_streams_to_patsys_design(tmp_path):
    # Strings, booleans, integers with explicit levels, a string column used bare and in an
    # interaction, and a pandas Categorical: levels are found from distinct values batch by
    # batch, and the streamed design equals patsy's design of the whole frame bit for bit.
    rng = np.random.default_rng(3)
    n = 900
    df = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "g": rng.choice(["a", "b", "c", "d"], size=n),
            "b": rng.random(n) < 0.5,
            "k": rng.integers(0, 4, size=n),
            "h": pd.Categorical(rng.choice(["lo", "hi"], size=n), ["lo", "hi"]),
            "y": rng.choice(["u", "v", "w"], size=n),
        }
    )
    df.loc[:299, "g"] = "a"  # "b", "c", "d" first appear in the second file
    full = write_dataset([df.iloc[:300], df.iloc[300:]], tmp_path / "cats", row_group_size=64)
    rhs = "C(g) + x + b + C(k, levels=[3, 2, 1, 0]) + g:x + h"
    sd = stream_design("y ~ " + rhs, ml.parquet(tmp_path / "cats", batch_rows=50),
                       directory=tmp_path)  # fmt: skip
    X = patsy.dmatrix(rhs, full)
    assert sd.design.names == tuple(X.design_info.column_names)
    np.testing.assert_array_equal(sd.backend.read_rows(0, n).X, np.asarray(X))
    sd.backend.close()
