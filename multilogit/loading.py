"""Reading results files written by :meth:`~multilogit.MultinomialLogitResults.save` (format in
:mod:`multilogit.results.persistence`), without executing anything from the file."""

from __future__ import annotations

import copy
import hmac
import json
import os
import struct
import zipfile

import numpy as np
import pandas as pd

from .data import design as design_mod
from .data.design_state import rebuild_design
from .data.weights import likelihood_weights
from .exceptions import DataError, PersistenceError
from .fit.separation import Separation
from .model import MultinomialLogit
from .results.persistence import (
    FORMAT,
    FORMAT_VERSION,
    MAX_ENTRIES,
    MAX_EXPANSION,
    MAX_METADATA_BYTES,
    MAX_NDIM,
    decode_columns,
    decode_index,
    digest,
    key_bytes,
)
from .results.results import MultinomialLogitResults
from .solve.state import FitState

__all__ = ["load"]

# -- load ---------------------------------------------------------------------------------------


class SavedCovariance:
    """Stands in for the covariance estimator of a loaded fit (its matrix is stored)."""

    def __init__(self, name: str, label: str, kwds, n_groups=None, note=None):
        self.name = name
        self.label = label
        self.kwds = dict(kwds or {})
        self.n_groups = n_groups
        if note is not None:
            self.note = lambda: note  # the summary footnote of the original estimator

    def describe(self) -> str:
        return self.label

    def compute(self, model, state):
        raise PersistenceError(
            "a loaded fit cannot recompute its covariance; refit the model for another cov_type"
        )


class SavedModel:
    """What a loaded fit knows about its model when the training data were not saved.

    Provides the attributes that results, summaries and predictions use; anything that needs
    the estimation rows raises a :class:`~multilogit.exceptions.DataError`.
    """

    def __init__(self, outcome, design, counts, nobs, n_rows, n_dropped, df_model, weighted):
        self.outcome = outcome
        # With sampling weights, a marker (their values are data, not saved): the summary only
        # needs to know that there were some.
        self.weights = np.full(0, np.nan) if weighted else None
        # No rows: empty outcome codes keep reparameterisations (repivot) working; anything
        # that needs the estimation rows goes through ``exog`` and gets a DataError.
        p = len(design.names)
        self.level_codes = np.zeros(0, dtype=np.int64)
        self.endog = np.zeros(0, dtype=np.int64)
        self._data = design_mod.ModelData(
            np.zeros((0, p)), self.level_codes, outcome, design, pd.RangeIndex(0), n_dropped
        )
        self.design = design
        self._counts = counts
        self._nobs = nobs
        self._n_rows = n_rows
        self.n_dropped = n_dropped
        self._df_model = df_model

    formula = property(lambda self: self.design.formula)
    endog_names = property(lambda self: self.outcome.name)
    exog_names = property(lambda self: list(self.design.names))
    outcomes = property(lambda self: self.outcome.levels)
    eq_outcomes = property(lambda self: self.outcome.eq_levels)
    ref = property(lambda self: self.outcome.ref)
    J = property(lambda self: self.outcome.J)
    k_exog = property(lambda self: len(self.design.names))
    nobs = property(lambda self: self._nobs)
    n_rows = property(lambda self: self._n_rows)
    df_model = property(lambda self: self._df_model)
    outcome_counts = property(lambda self: self._counts.copy())
    default_cov_type = property(lambda self: "nonrobust" if self.weights is None else "HC1")

    @property
    def level_to_internal(self) -> np.ndarray:
        return self.outcome.level_to_internal

    def with_reference(self, ref) -> SavedModel:
        """The same loaded model with ``ref`` as reference outcome (for ``repivot``)."""
        new = copy.copy(self)
        new.outcome = self.outcome.with_ref(ref)
        return new

    def _no_data(self, *_args, **_kwds):
        raise DataError(
            "this model was loaded without its estimation data: pass new data to predict, or "
            "save with include_data=True"
        )

    exog = property(_no_data)
    estimation_frame = _no_data
    source_columns = property(_no_data)
    source_column_stats = property(_no_data)
    backend = property(_no_data)
    rows_frame = None
    is_in_memory = True
    row_labels = property(_no_data)
    freq_weights = property(_no_data)
    fit = _no_data

    def __repr__(self) -> str:
        src = f"formula={self.formula!r}" if self.formula else f"{self.k_exog} columns"
        return (
            f"<MultinomialLogit (loaded) {src}: {len(self.outcomes)} outcomes, "
            f"ref={self.ref!r}, n={self._n_rows}>"
        )


def _fail(msg):
    raise PersistenceError(msg)


def _read(path) -> dict:
    """Every array of the archive at ``path``, its sizes checked before anything is read.

    The zip directory says how many entries there are and how large each expands; each
    array's header says its dtype and shape.  Those are checked against the limits of
    :mod:`multilogit.results.persistence` and against each other before an array is read, so
    a crafted file (a zip bomb, a header claiming a huge array, thousands of entries) is
    refused in time and memory proportional to its size on disk.
    """
    with open(path, "rb") as fh:  # our handle: closed even when parsing fails half-way
        on_disk = os.fstat(fh.fileno()).st_size
        _check_directory(fh, on_disk, path)
        try:
            with zipfile.ZipFile(fh) as zf:
                infos = _checked_entries(zf, on_disk, path)
                return {info.filename[:-4]: _read_entry(zf, info) for info in infos}
        except PersistenceError:
            raise
        except Exception as exc:  # any parse failure of the archive or an array header
            raise PersistenceError(
                f"{path!s} is not a readable multilogit results file (corrupted or not an .npz "
                f"archive): {exc}"
            ) from None


# Bytes of one entry in the zip directory: the fixed part, a name of our format (short) and a
# zip64 extra field.
_DIRECTORY_ENTRY = 46 + 100 + 32


def _check_directory(fh, on_disk: int, path) -> None:
    """Refuse a zip directory too large for a results file, from the end record alone.

    The end record is found as :mod:`zipfile` finds it; without this check, zipfile would
    parse a directory of any size (tens of thousands of entries take a second) before the
    entries could be counted.
    """
    tail_len = min(on_disk, 22 + 0xFFFF)
    fh.seek(on_disk - tail_len)
    tail = fh.read(tail_len)
    fh.seek(0)
    if tail[-22:-18] == b"PK\x05\x06" and tail[-2:] == b"\x00\x00":
        pos = len(tail) - 22
    else:
        pos = tail.rfind(b"PK\x05\x06")
    if pos < 0 or len(tail) - pos < 22:
        return  # not a zip file: zipfile says so
    *_, count, size, _, _ = struct.unpack("<4s4H2LH", tail[pos : pos + 22])
    if pos >= 76 and tail[pos - 20 : pos - 16] == b"PK\x06\x07":
        rec = tail[pos - 76 : pos - 20]
        if rec[:4] == b"PK\x06\x06":
            *_, count, size, _ = struct.unpack("<4sQ2H2L4Q", rec)
    if count > MAX_ENTRIES or size > MAX_ENTRIES * _DIRECTORY_ENTRY:
        _fail(
            f"{path!s} has a zip directory of {count} entries in {size} bytes; a results file "
            f"has at most {MAX_ENTRIES} entries"
        )


def _checked_entries(zf: zipfile.ZipFile, on_disk: int, path) -> list:
    infos = zf.infolist()
    if len(infos) > MAX_ENTRIES:
        _fail(
            f"{path!s} has {len(infos)} archive entries; a results file has at most {MAX_ENTRIES}"
        )
    names = [info.filename for info in infos]
    if len(set(names)) != len(names):
        _fail(f"{path!s}: malformed results file: duplicate archive entries")
    expanded = 0
    for info in infos:
        if not info.filename.endswith(".npy"):
            _fail(f"{path!s}: malformed results file: unexpected entry {info.filename!r}")
        if info.compress_type == zipfile.ZIP_STORED:
            ok = info.file_size == info.compress_size
        else:
            ok = info.compress_type == zipfile.ZIP_DEFLATED and (
                info.file_size <= MAX_EXPANSION * info.compress_size + 1024
            )
        if not ok:
            _fail(
                f"{path!s}: entry {info.filename!r} would expand from {info.compress_size} to "
                f"{info.file_size} bytes (method {info.compress_type}); refused as a possible "
                "zip bomb"
            )
        expanded += info.file_size
    if expanded > MAX_EXPANSION * on_disk + 1024:
        _fail(
            f"{path!s}: its entries would expand to {expanded} bytes from {on_disk} on disk; "
            "refused as a possible zip bomb"
        )
    return infos


def _read_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    """One array, after checking that its header describes exactly the bytes stored."""
    name = info.filename[:-4]
    with zf.open(info) as fp:
        version = np.lib.format.read_magic(fp)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fp)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fp)
        else:
            _fail(f"malformed results file: array {name!r} has .npy version {version}")
        if dtype.hasobject:
            _fail(
                f"not a readable multilogit results file: array {name!r} holds Python objects, "
                "which only pickle could read (a results file never contains them)"
            )
        if dtype.kind not in "biufmM" or dtype.fields is not None or dtype.subdtype is not None:
            _fail(f"malformed results file: array {name!r} has dtype {dtype}")
        if len(shape) > MAX_NDIM:
            _fail(f"malformed results file: array {name!r} has {len(shape)} dimensions")
        count = 1
        for n in shape:
            count *= int(n)
        nbytes = count * dtype.itemsize
        if nbytes != info.file_size - fp.tell():
            _fail(
                f"malformed results file: array {name!r} claims shape {shape} of {dtype}, "
                f"which does not match its {info.file_size - fp.tell()} stored bytes"
            )
        buf = bytearray(nbytes)
        if fp.readinto(buf) != nbytes:
            _fail(f"malformed results file: array {name!r} is truncated")
    return np.frombuffer(buf, dtype=dtype).reshape(shape, order="F" if fortran else "C")


def _expect(cond, what):
    if not cond:
        _fail(f"malformed results file: {what}")


def load(path, key: bytes | str | None = None):
    """Load results written by :meth:`~multilogit.MultinomialLogitResults.save`.

    Never executes code from the file: arrays are read with ``allow_pickle=False``, the
    metadata is JSON, and formula terms are checked against a whitelist before patsy sees
    them.  The file is untrusted input: its sizes are checked before it is read (limits in
    :mod:`multilogit.results.persistence`).

    Parameters
    ----------
    path : str or path-like
    key : bytes or str, optional
        The key the file was signed with (``save(..., key=...)``).  The HMAC-SHA-256 signature
        is then verified before anything else in the file is parsed.  Without a key, the
        SHA-256 digest only detects accidental corruption: a crafted file can carry a
        recomputed digest.

    Raises
    ------
    PersistenceError
        The file is not a multilogit results file, has an unknown format version, fails its
        digest (corrupted or edited) or signature, exceeds a limit, or its contents are
        inconsistent.
    """
    raw = _read(path)
    _expect("metadata" in raw and "digest" in raw, "no metadata or digest entry")
    meta_bytes = raw.pop("metadata")
    stored = raw.pop("digest")
    _expect(meta_bytes.dtype == np.uint8 and stored.dtype == np.uint8, "bad entry types")
    _expect(meta_bytes.ndim == 1 and stored.ndim == 1, "bad entry shapes")
    if meta_bytes.size > MAX_METADATA_BYTES:
        _fail(
            f"{path!s}: its metadata has {meta_bytes.size} bytes; a results file has at most "
            f"{MAX_METADATA_BYTES}"
        )
    meta_bytes = meta_bytes.tobytes()
    if key is not None:
        # A signed file is authenticated before its metadata is even parsed.
        _check_digest(path, meta_bytes, raw, stored, key)
    try:
        meta = json.loads(meta_bytes.decode("utf-8"))
    except RecursionError:
        _fail("malformed results file: the metadata is JSON nested too deeply")
    except ValueError as exc:  # not UTF-8, not JSON, or a number of over 4300 digits
        _fail(f"malformed results file: the metadata is not JSON ({exc})")
    _expect(isinstance(meta, dict), "metadata is not an object")
    if meta.get("format") != FORMAT:
        _fail(f"{path!s} is not a multilogit results file (format {meta.get('format')!r})")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        _fail(
            f"{path!s} has format version {version!r}; this multilogit reads version "
            f"{FORMAT_VERSION} (upgrade multilogit to read newer files)"
        )
    if key is None:
        if meta.get("signed"):
            _fail(f"{path!s} is signed: pass the key it was saved with")
        _check_digest(path, meta_bytes, raw, stored, None)
    try:
        return _build(meta, raw)
    except PersistenceError:
        raise
    except RecursionError:
        _fail("malformed results file: its metadata is nested too deeply")
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, ArithmeticError) as exc:
        _fail(f"malformed results file: {type(exc).__name__}: {exc}")


def _check_digest(path, meta_bytes: bytes, raw: dict, stored: np.ndarray, key) -> None:
    expected = digest(meta_bytes, raw, key_bytes(key))
    if not hmac.compare_digest(expected.encode("ascii"), stored.tobytes()):
        _fail(
            f"{path!s} failed its integrity check (digest mismatch): the file was corrupted or "
            "modified" + (", or the key is wrong" if key is not None else "")
        )


def _build(meta, raw):
    specs = meta["arrays"]
    _expect(set(specs) == set(raw), "the array entries do not match the metadata")
    for name, spec in specs.items():
        a = raw[name]
        _expect(a.dtype.str == spec["dtype"], f"array {name!r} has the wrong dtype")
        _expect(list(a.shape) == list(spec["shape"]), f"array {name!r} has the wrong shape")
    out = meta["outcome"]
    levels = tuple(out["levels"])
    _expect(len(levels) >= 2 and len(set(levels)) == len(levels), "outcome levels")
    _expect(out["ref"] in levels, "reference outcome not among the levels")
    outcome = design_mod.Outcome(str(out["name"]), levels, levels[levels.index(out["ref"])])
    names = tuple(str(n) for n in meta["exog_names"])
    J, p = len(levels) - 1, len(names)
    _expect(p >= 1 and len(set(names)) == p, "design column names")
    shapes = {
        "params": (J, p),
        "cov": (J * p, J * p),
        "score": (J, p),
        "info": (J * p, J * p),
        "outcome_counts": (J + 1,),
    }
    for name, shape in shapes.items():
        _expect(name in raw and raw[name].shape == shape, f"{name} should have shape {shape}")
        _expect(raw[name].dtype == np.float64, f"{name} should be float64")
    fit = meta["fit"]
    log = raw["iteration_log"]
    cols = list(fit["iteration_log_columns"])
    _expect(log.ndim == 2 and log.shape[1] == len(cols), "iteration log shape")
    dmeta = meta["design"]
    if dmeta["kind"] == "formula":
        design = rebuild_design(dmeta, names, raw)
    elif dmeta["kind"] == "array":
        design = design_mod.Design(names)
    else:
        _fail(f"unknown design kind {dmeta['kind']!r}")
    if meta.get("include_data"):
        X = raw["data.X"]
        codes = raw["data.codes"]
        _expect(X.ndim == 2 and X.shape[1] == p, "data.X shape")
        _expect(codes.shape == (len(X),), "data.codes shape")
        _expect(codes.min(initial=0) >= 0 and codes.max(initial=0) <= J, "data.codes values")
        w = raw["data.weights"]
        _expect(w.shape == (len(X),), "data.weights shape")
        data = meta.get("data")
        if data is not None:
            index = decode_index(data["index"], raw)
        elif "data.index" in raw:  # files written before the index was stored with its type
            index = pd.Index(raw["data.index"])
        else:
            index = pd.RangeIndex(len(X))
        _expect(len(index) == len(X), "row index length")
        source = None if data is None else decode_columns(data["columns"], raw, index)
        model = MultinomialLogit.__new__(MultinomialLogit)
        md = design_mod.ModelData(
            np.ascontiguousarray(X), codes, outcome, design, index, int(fit["n_dropped"])
        )
        model._setup(md)
        model.freq_weights = np.array(w)
        model.weights = None
        if "data.sampling_weights" in raw:
            model.weights = np.array(raw["data.sampling_weights"])
            _expect(model.weights.shape == (len(X),), "data.sampling_weights shape")
        model._lik_weights = likelihood_weights(model.freq_weights, model.weights)
        # Marginal effects rebuild the design from these columns with some values fixed.
        model._source_data = source
        model._source_index = index
    else:
        model = SavedModel(
            outcome,
            design,
            np.array(raw["outcome_counts"]),
            float(fit["nobs"]),
            int(fit["n_rows"]),
            int(fit["n_dropped"]),
            float(fit["df_model"]),
            bool(fit["sampling_weights"]),
        )
    frame = pd.DataFrame(log, columns=cols)
    for col in ("iteration", "passes"):  # counts, stored as float64 like the rest
        if col in frame:
            frame[col] = frame[col].astype(np.int64)
    beta = np.array(raw["params"])
    sep = None
    if fit.get("separation") is not None:
        s = fit["separation"]
        mask = raw["separation.params"]
        direction = raw["separation.direction"]
        _expect(mask.shape == (J, p) and direction.shape == (J, p), "separation arrays")
        null = raw.get("separation.null_space")
        if null is not None:
            _expect(null.ndim == 3 and null.shape[:2] == (J, p), "separation null space")
            null = np.array(null)
        sep = Separation(
            kind=str(s["kind"]),
            outcomes=tuple(s["outcomes"]),
            terms=tuple(s["terms"]),
            params=np.array(mask, dtype=bool),
            direction=np.array(direction),
            n_separated=float(s["n_separated"]),
            n_perfect=float(s["n_perfect"]),
            nobs=float(s["nobs"]),
            eq_outcomes=tuple(outcome.eq_levels),
            exog_names=names,
            null_space=null,
        )
    aliased = None
    if "aliased" in raw:
        aliased = np.array(raw["aliased"], dtype=bool)
        _expect(aliased.shape == (p,), "aliased mask shape")
    n_groups = fit["cov_n_groups"]
    note = fit["cov_note"]
    cov_est = SavedCovariance(
        str(fit["cov_type"]),
        str(fit["cov_label"]),
        fit["cov_kwds"],
        None if n_groups is None else int(n_groups),
        None if note is None else str(note),
    )
    penalty = float(fit.get("penalty", 0.0))  # absent from files of maximum-likelihood fits
    if not np.isfinite(penalty):
        raise PersistenceError(f"the saved penalty is not finite: {penalty!r}")
    state = FitState(
        beta=beta,
        llf=float(fit["llf"]) - penalty,
        penalty=penalty,
        score=np.array(raw["score"]),
        info=np.array(raw["info"]),
        converged=bool(fit["converged"]),
        n_iter=int(fit["n_iter"]),
        log=frame,
        message=str(fit["message"]),
        options=dict(fit["options"]),
        aliased=aliased,
        separation=sep,
        notes=tuple(str(n) for n in fit["notes"]),
    )
    return MultinomialLogitResults(model, state, np.array(raw["cov"]), cov_est)
