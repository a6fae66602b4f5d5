"""Results files as untrusted input: crafted archives, metadata and formulas that once cost
gigabytes, minutes or a raw exception, and must now be refused quickly with a
:class:`~multilogit.PersistenceError` naming what was refused.

Each crafted file passes the unkeyed digest (a tamperer recomputes it), so the attack reaches
the parser.  The builders are also used by ``tests/test_persistence_untrusted.py``, which
measures time and memory of loading them in a subprocess.
"""

from __future__ import annotations

import functools
import io
import json
import tempfile
import threading
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

import multilogit as ml
from tests.corpus import Case, Raises, Right
from tests.results_files import read_entries, write_entries

FORMULA = "prog ~ ses + center(write)"


@functools.cache
def _dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="multilogit_persist_corpus_"))


@functools.cache
def base_file() -> Path:
    """An honest results file (prog ~ ses + center(write) on hsbdemo), made once."""
    path = _dir() / "base.npz"
    ml.mnlogit(FORMULA, ml.datasets.load("hsbdemo")).fit().save(path)
    return path


def edited(dst, change, src=None) -> Path:
    """``src`` (the base file) with its metadata changed by ``change(meta)``, digest recomputed."""
    e = read_entries(src or base_file())
    meta = json.loads(e["metadata"].tobytes())
    change(meta)
    e["metadata"] = np.frombuffer(json.dumps(meta, sort_keys=True).encode(), np.uint8)
    write_entries(dst, e, resign=True)
    return Path(dst)


def with_term(dst, code, kind="numerical", extra=None, **factor) -> Path:
    """The base file with one more formula term ``code`` (and its saved factor)."""

    def change(m):
        m["design"]["formula"] = f"{FORMULA} + {code}"
        m["design"]["factors"].append(
            {"code": code, "type": kind, "num_columns": 1, "transforms": {}, **factor}
        )
        if extra is not None:
            extra(m)

    return edited(dst, change)


def _npy(a) -> bytes:
    b = io.BytesIO()
    np.save(b, a)
    return b.getvalue()


def zip_bomb(dst, expanded: int = 256 << 20) -> Path:
    """``iteration_log`` deflated from ``expanded`` bytes of zeros to about a thousandth."""
    e = read_entries(base_file())
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (expanded // 64, 8)}
    )
    with zipfile.ZipFile(dst, "w") as zf:
        for k, v in e.items():
            if k != "iteration_log":
                zf.writestr(k + ".npy", _npy(v))
        info = zipfile.ZipInfo("iteration_log.npy")
        info.compress_type = zipfile.ZIP_DEFLATED
        with zf.open(info, "w", force_zip64=True) as f:
            f.write(header.getvalue())
            zeros = bytes(1 << 22)
            for _ in range(expanded // len(zeros)):
                f.write(zeros)
    return Path(dst)


def many_entries(dst, n: int = 60_000) -> Path:
    """The base file plus ``n`` tiny extra entries (a huge zip directory)."""
    e = read_entries(base_file())
    empty = _npy(np.zeros(0))
    with zipfile.ZipFile(dst, "w") as zf:
        for k, v in e.items():
            zf.writestr(k + ".npy", _npy(v))
        for i in range(n):
            zf.writestr(f"x{i}.npy", empty)
    return Path(dst)


def huge_header(dst) -> Path:
    """An uncompressed ``params`` entry whose header claims 10**9 float64 values."""
    e = read_entries(base_file())
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (10**9,)}
    )
    with zipfile.ZipFile(dst, "w") as zf:
        for k, v in e.items():
            zf.writestr(k + ".npy", header.getvalue() + bytes(64) if k == "params" else _npy(v))
    return Path(dst)


def raw_metadata(dst, meta_bytes: bytes) -> Path:
    e = read_entries(base_file())
    e["metadata"] = np.frombuffer(meta_bytes, np.uint8)
    write_entries(dst, e, resign=True)
    return Path(dst)


def deep_json(dst, depth: int = 100_000) -> Path:
    return raw_metadata(dst, b"[" * depth + b"]" * depth)


def formula_blowup(dst) -> Path:
    """Six products of six sums: 6**6 = 46,656 terms and more from a 200-character formula."""
    groups = ["(" + "+".join(f"write{g}{i}" for i in range(6)) + ")" for g in range(6)]

    def change(m):
        m["design"]["formula"] = FORMULA + " + " + "*".join(groups)

    return edited(dst, change)


def many_levels(dst, n: int = 1_000_000) -> Path:
    """ses with a million saved levels (the synthetic frame would have a million rows)."""

    def change(m):
        m["design"]["factors"][0]["categories"] = [f"l{i}" for i in range(n)]

    return edited(dst, change)


def object_levels(dst, big: int = 30_000_000) -> Path:
    """Levels mixing str and int, multiplied together: ``'ab' * big`` on Python objects."""

    def change(m):
        factors = m["design"]["factors"]
        factors[0]["categories"] = ["ab", 1, "x"]  # ses
        factors.append(
            {
                "code": "C(read)",
                "type": "categorical",
                "num_columns": 1,
                "transforms": {},
                "categories": [big, "ab"],
            }  # fmt: skip
        )
        factors.append(
            {"code": "I(read * ses)", "type": "numerical", "num_columns": 1, "transforms": {}}
        )
        m["design"]["formula"] += " + C(read) + I(read * ses)"

    return edited(dst, change)


def where_on_levels(dst, big: int = 30_000_000) -> Path:
    """``np.where`` turns the Categorical of ses's saved levels into an array of strings, then
    multiplies it: ``'low' * big``."""
    return with_term(dst, f"I(np.where(write > 0, ses, ses) * {big})")


def tz_path(dst, tz: str | None = "dateutil//etc/passwd") -> Path:
    """A file saved with its data and a datetime index in Asia/Tokyo, whose time zone is then
    replaced by ``tz`` (a name pandas would read as a file's path)."""
    hsb = ml.datasets.load("hsbdemo")
    hsb.index = pd.date_range("2021-03-01", periods=len(hsb), freq="D", tz="Asia/Tokyo")
    ml.mnlogit("prog ~ write", hsb).fit().save(dst, include_data=True)
    if tz is None:
        return Path(dst)
    return edited(dst, lambda m: m["data"]["index"]["levels"][0].update(tz=tz), src=dst)


def _load(build, *args, key=None, **kwargs):
    def run():
        path = build(_dir() / f"{build.__name__}.npz", *args, **kwargs)
        return ml.load(path, key=key)

    return run


def _signed_deep_json():
    path = _dir() / "signed.npz"
    ml.mnlogit("prog ~ write", ml.datasets.load("hsbdemo")).fit().save(path, key=b"k")
    e = read_entries(path)
    e["metadata"] = np.frombuffer(b"[" * 100_000 + b"]" * 100_000, np.uint8)
    write_entries(path, e, resign=True)
    return ml.load(path, key=b"k")


def _thirty_concurrent_saves():
    hsb = ml.datasets.load("hsbdemo")
    fits = [ml.mnlogit(f, hsb).fit() for f in ("prog ~ write", "prog ~ ses + read")]
    path = _dir() / "concurrent.npz"
    threads = [threading.Thread(target=fits[i % 2].save, args=(path,)) for i in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return fits, path


def _one_whole_file(value):
    fits, path = value
    loaded = ml.load(path)
    assert any(loaded.params.equals(r.params) for r in fits)
    assert sorted(p.name for p in path.parent.iterdir() if p.name.startswith(".")) == []


def _honest_roundtrip():
    return ml.load(base_file())


def _same_as_fit(res):
    fresh = ml.mnlogit(FORMULA, ml.datasets.load("hsbdemo")).fit()
    assert np.array_equal(res.params.to_numpy(), fresh.params.to_numpy())


CASES = [
    Case("persist_honest_file_loads", _honest_roundtrip, Right(_same_as_fit)),
    Case("persist_thirty_concurrent_saves", _thirty_concurrent_saves, Right(_one_whole_file)),
    Case(
        "persist_zip_bomb",
        _load(zip_bomb),
        Raises(ml.PersistenceError, "refused as a possible zip bomb"),
    ),
    Case(
        "persist_many_entries",
        _load(many_entries, 20_000),
        Raises(ml.PersistenceError, "has a zip directory of 20009 entries"),
    ),
    Case(
        "persist_header_claims_huge_array",
        _load(huge_header),
        Raises(ml.PersistenceError, "which does not match its"),
    ),
    Case(
        "persist_deeply_nested_json",
        _load(deep_json),
        Raises(ml.PersistenceError, "nested too deeply"),
    ),
    Case(
        "persist_json_int_of_5000_digits",
        _load(raw_metadata, b'{"format": ' + b"9" * 5000 + b"}"),
        Raises(ml.PersistenceError, "the metadata is not JSON"),
    ),
    Case(
        "persist_infinite_iteration_count",
        _load(edited, lambda m: m["fit"].update(n_iter=float("inf"))),
        Raises(ml.PersistenceError, "malformed results file: OverflowError"),
    ),
    Case(
        "persist_formula_repeats_a_string",
        _load(with_term, "I('ab' * 30000000)"),
        Raises(ml.PersistenceError, "does arithmetic on a string or a sequence"),
    ),
    Case(
        "persist_formula_huge_power",
        _load(with_term, "I(10 ** 10 ** 5)"),
        Raises(ml.PersistenceError, "raises a constant to a power whose result is too large"),
    ),
    Case(
        "persist_formula_tuple_from_where",
        _load(with_term, "I(np.where(write > 0) * 3000000000)"),
        Raises(ml.PersistenceError, "calls np.where without its three arguments"),
    ),
    Case(
        "persist_formula_language_blowup",
        _load(formula_blowup),
        Raises(ml.PersistenceError, "terms; a saved model allows"),
    ),
    Case(
        "persist_spline_huge_df",
        _load(with_term, "cr(write, df=1000000)"),
        Raises(ml.PersistenceError, "asks cr() for 1000000 columns"),
    ),
    Case(
        "persist_callable_contrast",
        _load(with_term, "C(ses, exit)", "categorical", categories=["low", "middle", "high"]),
        Raises(ml.PersistenceError, "gives C() a contrast other than"),
    ),
    Case(
        "persist_million_levels",
        _load(many_levels),
        Raises(ml.PersistenceError, "1000000 saved levels"),
    ),
    Case(
        "persist_object_levels_multiplied",
        _load(object_levels),
        Raises(ml.PersistenceError, "'I(read * ses)' does arithmetic on a string"),
    ),
    Case(
        "persist_where_turns_levels_into_strings",
        _load(where_on_levels),
        Raises(ml.PersistenceError, "does arithmetic on a string or a sequence"),
    ),
    Case(
        "persist_time_zone_naming_a_file",
        _load(tz_path),
        Raises(ml.PersistenceError, "has time zone 'dateutil//etc/passwd'"),
    ),
    Case(
        "persist_time_zone_still_loads",
        _load(tz_path, None),
        Right(lambda res: str(res.model.row_labels.tz) == "Asia/Tokyo"),
    ),
    Case(
        "persist_signed_file_checked_before_parsing",
        _signed_deep_json,
        Raises(ml.PersistenceError, "integrity check"),
    ),
]
