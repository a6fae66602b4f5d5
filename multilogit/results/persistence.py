"""Saving and loading fitted results without pickle, and pickling support for patsy designs.

File format (version 1)
-----------------------
One NumPy ``.npz`` archive (a zip of ``.npy`` arrays), read with ``allow_pickle=False``, so
loading a file never executes code.  Entries:

``metadata``
    UTF-8 JSON as a ``uint8`` array: ``format`` (``"multilogit-results"``), ``format_version``,
    the outcome (name, levels, reference), the design (column names, and for formula models the
    formula, each patsy factor's code, type, categorical levels and stateful-transform state
    scalars), fit information (convergence, iteration count, options, covariance type and its
    description, separation report, aliased columns, summary notes) and the shapes of every
    array below.
``params``, ``cov``, ``score``, ``info``, ``outcome_counts``, ``iteration_log``
    float64 arrays of shapes ``(J, p)``, ``(J p, J p)``, ``(J, p)``, ``(J p, J p)``, ``(K,)``
    and ``(iterations, columns)``.
``transform.<factor>.<name>.<attribute>``
    Array state of patsy stateful transforms (``center``, ``standardize``, ``bs``, ``cr``, ...),
    in their own dtype (``center`` sums in extended precision).
``separation.params``, ``separation.direction``, ``aliased``
    Present when the fit had separation or dropped aliased columns.
``data.X``, ``data.codes``, ``data.weights``, ``data.sampling_weights``
    The estimation data, only with ``save(..., include_data=True)``.
``data.rows.<level>``, ``data.column.<position>``
    With ``include_data=True``: the row index (one array per level; none for a
    ``RangeIndex``) and, for a formula model, the data columns the formula uses restricted to
    the estimation rows (marginal effects rebuild the design from them with some values
    fixed).  The metadata entry ``data`` says how to read each array: ``array`` (numeric, bool,
    naive datetime or timedelta values in their own dtype), ``datetime_tz`` (UTC values and the
    time zone's name), ``period`` (ordinals and the frequency), ``categorical`` (int64 codes,
    the categories as JSON labels and whether they are ordered) or ``labels`` (int64 codes into
    a JSON list of str/int/float/bool labels, and the pandas dtype: ``object`` or a string
    dtype).  Files written before these entries existed (integer row labels in ``data.index``,
    no columns) are read as before.
``digest``
    SHA-256 (or, with ``key=``, HMAC-SHA-256) of the metadata and every array's name, dtype,
    shape and bytes.

What the digest protects against
--------------------------------
The plain SHA-256 digest detects *accidental* damage: a truncated download, a flipped bit, a
file edited by a tool that does not know the format.  It does **not** protect against a
*crafted* file: the digest is stored in the file, so whoever edits the file can recompute it.
To know that a file comes from someone holding a secret, save it with ``key=`` (HMAC-SHA-256)
and load it with the same key; a signed file is authenticated before its metadata is even
parsed, and an unsigned or re-digested file then fails.

Either way, loading treats the file as untrusted input, bounded in time and memory before
anything in it is trusted: at most :data:`MAX_ENTRIES` archive entries, each expanding at most
:data:`MAX_EXPANSION` times (uncompressed entries, as :func:`save` writes, do not expand), each
array's header matching the bytes stored (of at most :data:`MAX_NDIM` dimensions, never Python
objects), metadata of at most :data:`MAX_METADATA_BYTES`, and the formula limits of
:func:`~multilogit.data.design_state.rebuild_design`.  A file outside them raises
:class:`~multilogit.exceptions.PersistenceError` naming what was refused.

A formula is code that patsy evaluates, so every factor's code is checked against a whitelist
(data columns, arithmetic, patsy's built-ins such as ``C``/``I``/``center``/``bs`` and a list of
NumPy functions called as ``np.<name>``) when saving and again when loading, with constant
subexpressions computed within bounds (:func:`~multilogit.data.formula_check.check_code`).  The
design is then rebuilt by running patsy on a small synthetic frame holding each factor's saved
levels, and the saved transform state is copied into the rebuilt transforms.

Saving is atomic (:func:`write_atomic`): the file is written under a temporary name beside
``path`` and renamed over it, so readers and concurrent savers only ever see a whole file, and
a save failing part-way leaves the previous file as it was.

Pickling
--------
patsy's objects refuse to pickle; :mod:`multilogit.data.design_state` pickles the patsy
``DesignInfo`` by value (``Design.__reduce__``), so ``pickle.dumps(results)`` works.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import stat

import numpy as np
import pandas as pd

from ..data.design_state import design_state, json_label, jsonable, rebuild_design
from ..data.formula_check import check_code
from ..exceptions import DataError, PersistenceError
from ..inference.margins import estimation_frame
from ..version import __version__

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MAX_ENTRIES",
    "MAX_EXPANSION",
    "MAX_METADATA_BYTES",
    "MAX_NDIM",
    "decode_columns",
    "decode_index",
    "digest",
    "key_bytes",
    "save",
    "write_atomic",
]

FORMAT = "multilogit-results"
FORMAT_VERSION = 1

# Limits checked before anything of a file is read or trusted (a file is untrusted input).  An
# honest file is far inside them: a handful of entries per factor and data column, metadata
# of some kilobytes plus the labels of saved text columns, arrays of at most three dimensions
# stored uncompressed.

#: Archive entries a results file may have.
MAX_ENTRIES = 4_000
#: How many times an entry may expand (``np.savez_compressed`` files load; a zip bomb expands
#: a thousand times).
MAX_EXPANSION = 20
#: Bytes of JSON metadata a results file may have.
MAX_METADATA_BYTES = 64 << 20
#: Dimensions an array of a results file may have.
MAX_NDIM = 3

# -- save ---------------------------------------------------------------------------------------


def digest(meta_bytes: bytes, arrays: dict, key: bytes | None) -> str:
    h = hmac.new(key, digestmod=hashlib.sha256) if key is not None else hashlib.sha256()
    h.update(meta_bytes)
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(name.encode())
        h.update(str(a.dtype.str).encode())
        h.update(repr(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def key_bytes(key):
    if key is None:
        return None
    if isinstance(key, str):
        return key.encode()
    if isinstance(key, bytes):
        return key
    raise TypeError("key must be bytes or str")


def save(results, path, include_data: bool = False, key: bytes | str | None = None) -> None:
    """Write ``results`` to ``path`` in the format described in this module's docstring.

    Parameters
    ----------
    results : MultinomialLogitResults
    path : str or path-like
        Written as given (NumPy adds no suffix when writing to an open file).
    include_data : bool
        Also store the estimation data (design matrix, outcome codes, weights, row index and,
        for a formula model, the data columns the formula uses), so that the loaded results
        give the same fitted values, residuals, predictions and marginal effects, and the
        model can be refitted.
    key : bytes or str, optional
        Sign the file with HMAC-SHA-256; :func:`~multilogit.load` then needs the same key.
        Without a key the SHA-256 digest only detects accidental corruption (see the module
        docstring).

    The file is replaced atomically (:func:`write_atomic`).
    """
    model = results.model
    if getattr(model, "_offset_spec", None) is not None:
        # The format records no offsets: a loaded fit would predict new rows without them.
        raise PersistenceError(
            "a fit with an offset cannot be saved yet: the file format does not record "
            "offsets, so its predictions after loading would leave them out"
        )
    arrays: dict[str, np.ndarray] = {
        "params": np.asarray(results._beta, dtype=np.float64),
        "cov": np.asarray(results._cov, dtype=np.float64),
        "score": np.asarray(results._state.score, dtype=np.float64).reshape(model.J, -1),
        "info": np.asarray(results._state.info, dtype=np.float64),
        "outcome_counts": np.asarray(model.outcome_counts, dtype=np.float64),
    }
    log = results.iteration_log
    arrays["iteration_log"] = log.to_numpy(dtype=np.float64)
    design = model.design
    if design.design_info is not None:
        design_meta = {"kind": "formula", **design_state(design, arrays)}
        # Refuse now, not at load time, if the design cannot be rebuilt from what we store.
        rebuild_design(design_meta, tuple(design.names), arrays)
    else:
        design_meta = {"kind": "array"}
    sep = results.separation
    sep_meta = None
    if sep is not None:
        arrays["separation.params"] = np.asarray(sep.params, dtype=bool)
        arrays["separation.direction"] = np.asarray(sep.direction, dtype=np.float64)
        if sep.null_space is not None:
            arrays["separation.null_space"] = np.asarray(sep.null_space, dtype=np.float64)
        sep_meta = {
            "kind": sep.kind,
            "outcomes": [json_label(o) for o in sep.outcomes],
            "terms": list(map(str, sep.terms)),
            "n_separated": sep.n_separated,
            "n_perfect": sep.n_perfect,
            "nobs": sep.nobs,
        }
    if results._aliased is not None:
        arrays["aliased"] = np.asarray(results._aliased, dtype=bool)
    if include_data:
        arrays["data.X"] = np.asarray(model.exog, dtype=np.float64)
        arrays["data.codes"] = np.asarray(model.level_codes, dtype=np.int64)
        arrays["data.weights"] = np.asarray(model.freq_weights, dtype=np.float64)
        if getattr(model, "weights", None) is not None:
            arrays["data.sampling_weights"] = np.asarray(model.weights, dtype=np.float64)
        data_meta = {"index": encode_index(_as_index(model.row_labels), arrays), "columns": []}
        if design.design_info is not None:
            data_meta["columns"] = encode_columns(_formula_columns(model), arrays)
    try:
        cov_kwds = jsonable(dict(results.cov_kwds))
    except TypeError:
        cov_kwds = None  # array-valued options (e.g. cluster ids) are described, not stored
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "multilogit_version": __version__,
        "outcome": {
            "name": str(model.endog_names),
            "levels": [json_label(v) for v in model.outcomes],
            "ref": json_label(model.ref),
        },
        "exog_names": [str(n) for n in model.exog_names],
        "design": design_meta,
        "fit": {
            "llf": float(results.llf),
            # A penalised (bias-reduced) fit's objective is llf less this; 0 for ML.
            "penalty": float(results._state.penalty),
            "nobs": float(model.nobs),
            "n_rows": int(model.n_rows),
            "n_dropped": int(getattr(model, "n_dropped", 0)),
            "df_model": float(model.df_model),
            "converged": bool(results.converged),
            "n_iter": int(results.n_iter),
            "message": str(results.fit_message),
            # Array-valued covariance options (cluster ids) are described, not stored.
            "options": jsonable({k: v for k, v in results.fit_options.items() if k != "cov_kwds"}),
            "cov_type": str(results.cov_type),
            "cov_label": str(results._cov_estimator.describe()),
            "cov_kwds": cov_kwds,
            "cov_n_groups": getattr(results._cov_estimator, "n_groups", None),
            "cov_note": (
                results._cov_estimator.note()
                if callable(getattr(results._cov_estimator, "note", None))
                else None
            ),
            "sampling_weights": getattr(model, "weights", None) is not None,
            "notes": [str(n) for n in results._summary_notes],
            "separation": sep_meta,
            "iteration_log_columns": [str(c) for c in log.columns],
        },
        "include_data": bool(include_data),
        "data": data_meta if include_data else None,
        "signed": key is not None,
        "arrays": {k: {"dtype": v.dtype.str, "shape": list(v.shape)} for k, v in arrays.items()},
    }
    meta_bytes = json.dumps(meta, sort_keys=True, allow_nan=True).encode("utf-8")
    signature = digest(meta_bytes, arrays, key_bytes(key))
    payload = dict(arrays)
    payload["metadata"] = np.frombuffer(meta_bytes, dtype=np.uint8)
    payload["digest"] = np.frombuffer(signature.encode("ascii"), dtype=np.uint8)
    write_atomic(path, lambda fh: np.savez(fh, **payload))


def write_atomic(path, write) -> None:
    """Call ``write(fh)`` on a new file beside ``path``, then rename it over ``path``.

    Readers of ``path`` see the previous file or the new one, whole: never a part of one.  Of
    concurrent writers, the last to rename wins, and a failure part-way (a full disk, an
    exception in ``write``) leaves the previous file as it was and removes the new one.  Through
    a symbolic link, the file linked to is replaced.
    """
    target = os.path.realpath(os.fspath(path))
    directory, name = os.path.split(target)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = os.path.join(directory, f".{name}.{secrets.token_hex(8)}.tmp")
        try:
            # Mode 0o666 as open() would use, so the umask decides the permissions.
            fd = os.open(tmp, flags, 0o666)
            break
        except FileExistsError:
            continue
        except OSError as exc:  # name the file asked for, not the temporary one
            raise type(exc)(exc.errno, exc.strerror, os.fspath(path)) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        with contextlib.suppress(FileNotFoundError):  # a file replaced keeps its permissions
            os.chmod(tmp, stat.S_IMODE(os.stat(target).st_mode))
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _sync_directory(directory)


def _sync_directory(directory: str) -> None:
    # The rename itself reaches the disk only when the directory is synced (POSIX only).
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# -- row index and data columns as typed arrays -------------------------------------------------


def _as_index(labels) -> pd.Index:
    # pd.Index() of a MultiIndex would flatten it to tuples.
    return labels if isinstance(labels, pd.Index) else pd.Index(labels)


def _json_name(name):
    return None if name is None else json_label(name)


def _encode_values(values: pd.Index, key: str, arrays: dict, what: str) -> dict:
    """Describe ``values`` as JSON, its array (if any) going into ``arrays[key]``."""
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        arrays[key] = np.asarray(values.codes, dtype=np.int64)
        return {
            "encoding": "categorical",
            "categories": [json_label(c) for c in dtype.categories],
            "ordered": bool(dtype.ordered),
        }
    if isinstance(dtype, pd.DatetimeTZDtype):
        arrays[key] = values.tz_convert("UTC").tz_localize(None).to_numpy()
        return {"encoding": "datetime_tz", "tz": str(dtype.tz)}
    if isinstance(dtype, pd.PeriodDtype):
        arrays[key] = np.asarray(values.asi8, dtype=np.int64)
        return {"encoding": "period", "freq": str(values.freqstr)}
    if isinstance(dtype, np.dtype) and dtype.kind in "biufmM":
        arrays[key] = np.ascontiguousarray(values.to_numpy())
        return {"encoding": "array"}
    if (isinstance(dtype, np.dtype) and dtype.kind == "O") or isinstance(dtype, pd.StringDtype):
        codes, uniques = pd.factorize(values, use_na_sentinel=False)
        arrays[key] = np.asarray(codes, dtype=np.int64)
        labels = [json_label(u) for u in np.asarray(uniques, dtype=object)]
        return {"encoding": "labels", "labels": labels, "dtype": str(dtype)}
    raise PersistenceError(f"{what} of dtype {dtype} cannot be saved; pickle the results instead")


# A time zone's name (Europe/Paris, UTC, Etc/GMT+5) or a fixed offset (UTC+01:00).
_TZ_NAME = re.compile(r"[A-Za-z0-9_+\-]+(/[A-Za-z0-9_+\-]+)*|UTC[+-]\d\d:\d\d")


def _codes(a, n_levels, lowest, what):
    if a.dtype.kind not in "iu" or a.ndim != 1:
        raise PersistenceError(f"malformed results file: {what} codes are not integers")
    if a.size and (a.min() < lowest or a.max() >= n_levels):
        raise PersistenceError(f"malformed results file: {what} codes out of range")
    return a


def _decode_values(spec: dict, arr: np.ndarray, what: str) -> pd.Index:
    """Inverse of :func:`_encode_values`: never evaluates anything from the file."""
    enc = spec["encoding"]
    if arr.ndim != 1:
        raise PersistenceError(f"malformed results file: {what} is not one-dimensional")
    if enc == "array":
        if arr.dtype.kind not in "biufmM":
            raise PersistenceError(f"malformed results file: {what} has dtype {arr.dtype}")
        return pd.Index(arr, dtype=arr.dtype)
    if enc == "datetime_tz":
        if arr.dtype.kind != "M":
            raise PersistenceError(f"malformed results file: {what} is not datetime")
        tz = str(spec["tz"])
        if not _TZ_NAME.fullmatch(tz):
            # pandas would open a file named by "dateutil/<path>": only names of time zones.
            raise PersistenceError(f"malformed results file: {what} has time zone {tz[:80]!r}")
        return pd.DatetimeIndex(arr).tz_localize("UTC").tz_convert(tz)
    if enc == "period":
        if arr.dtype.kind not in "iu":
            raise PersistenceError(f"malformed results file: {what} ordinals are not integers")
        return pd.PeriodIndex.from_ordinals(arr.astype(np.int64), freq=str(spec["freq"]))
    if enc == "categorical":
        categories = list(spec["categories"])
        codes = _codes(arr, len(categories), -1, what)
        return pd.CategoricalIndex(
            pd.Categorical.from_codes(codes, categories=categories, ordered=bool(spec["ordered"]))
        )
    if enc == "labels":
        labels = np.empty(len(spec["labels"]), dtype=object)
        labels[:] = list(spec["labels"])
        values = labels[_codes(arr, len(labels), 0, what)]
        if spec["dtype"] == "object":
            return pd.Index(values, dtype=object)
        dtype = pd.api.types.pandas_dtype(str(spec["dtype"]))
        if not isinstance(dtype, pd.StringDtype):
            raise PersistenceError(f"malformed results file: {what} has dtype {spec['dtype']!r}")
        return pd.Index(values, dtype=dtype)
    raise PersistenceError(f"malformed results file: unknown encoding {enc!r} of {what}")


def _same_index(a: pd.Index, b: pd.Index) -> bool:
    try:
        pd.testing.assert_index_equal(a, b, exact=True, check_exact=True, check_names=True)
    except AssertionError:
        return False
    return getattr(a, "freq", None) == getattr(b, "freq", None)


def encode_index(index: pd.Index, arrays: dict) -> dict:
    """JSON description of the row index; its arrays go into ``arrays``.

    Raises :class:`PersistenceError` rather than save an index that would not read back
    identically (labels of other types than str, int, float and bool, interval indexes...).
    """
    if type(index) is pd.RangeIndex:
        return {
            "kind": "range",
            "start": int(index.start),
            "stop": int(index.stop),
            "step": int(index.step),
            "name": _json_name(index.name),
        }
    levels = (
        [index.get_level_values(i) for i in range(index.nlevels)]
        if isinstance(index, pd.MultiIndex)
        else [index]
    )
    specs = []
    for i, level in enumerate(levels):
        spec = _encode_values(level, f"data.rows.{i}", arrays, "the row index")
        freq = getattr(level, "freq", None)
        if freq is not None and not isinstance(level.dtype, pd.PeriodDtype):
            spec["freq"] = str(level.freqstr)
        specs.append(spec)
    spec = {
        "kind": "multi" if isinstance(index, pd.MultiIndex) else "values",
        "names": [_json_name(n) for n in index.names],
        "levels": specs,
    }
    probe = {f"data.rows.{i}": arrays[f"data.rows.{i}"] for i in range(len(levels))}
    if not _same_index(decode_index(spec, probe), index):
        raise PersistenceError(
            f"the row index ({type(index).__name__}, dtype {index.dtype}) would not read back "
            "identically; reset it (data.reset_index()) or pickle the results"
        )
    return spec


def decode_index(spec: dict, arrays: dict) -> pd.Index:
    """The row index described by :func:`encode_index`."""
    if spec["kind"] == "range":
        return pd.RangeIndex(
            int(spec["start"]), int(spec["stop"]), int(spec["step"]), name=spec["name"]
        )
    levels = []
    for i, lspec in enumerate(spec["levels"]):
        level = _decode_values(lspec, arrays[f"data.rows.{i}"], "the row index")
        if lspec.get("freq") is not None:
            cls = type(level)
            if cls not in (pd.DatetimeIndex, pd.TimedeltaIndex):
                raise PersistenceError("malformed results file: a frequency on a plain index")
            level = cls(level, freq=str(lspec["freq"]))
        levels.append(level)
    names = list(spec["names"])
    if spec["kind"] == "multi":
        return pd.MultiIndex.from_arrays(levels, names=names)
    if spec["kind"] != "values" or len(levels) != 1 or len(names) != 1:
        raise PersistenceError("malformed results file: row index description")
    return levels[0].rename(names[0])


def _formula_columns(model) -> pd.DataFrame | None:
    """The data columns the formula uses, on the estimation rows; ``None`` when the model does
    not hold its data (then neither do the marginal effects of the original results)."""
    try:
        frame = estimation_frame(model)
    except DataError:
        return None
    names: list[str] = []
    for factor in model.design.design_info.factor_infos:
        for nm in sorted(check_code(factor.code)):
            if nm in frame.columns and nm not in names:
                names.append(nm)
    return frame[names]


def encode_columns(frame: pd.DataFrame | None, arrays: dict) -> list:
    """JSON description of data columns; their arrays go into ``arrays``."""
    if frame is None:
        return []
    specs = []
    for pos, name in enumerate(frame.columns):
        key = f"data.column.{pos}"
        spec = {"name": str(name), **_encode_values(pd.Index(frame[name]), key, arrays, name)}
        back = _decode_values(spec, arrays[key], name)
        if not _same_index(back, pd.Index(frame[name]).rename(None)):
            raise PersistenceError(
                f"data column {name!r} (dtype {frame[name].dtype}) would not read back "
                "identically; pickle the results instead"
            )
        specs.append(spec)
    return specs


def decode_columns(specs: list, arrays: dict, index: pd.Index) -> pd.DataFrame | None:
    """The data columns described by :func:`encode_columns`, on the rows of ``index``."""
    if not specs:
        return None
    cols = {}
    for pos, spec in enumerate(specs):
        name = str(spec["name"])
        values = _decode_values(spec, arrays[f"data.column.{pos}"], f"data column {name!r}")
        if len(values) != len(index):
            raise PersistenceError(f"malformed results file: data column {name!r} length")
        cols[name] = values.array
    return pd.DataFrame(cols, index=index)
