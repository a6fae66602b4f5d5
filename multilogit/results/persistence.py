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
``data.X``, ``data.codes``, ``data.weights``, ``data.index``
    The estimation data, only with ``save(..., include_data=True)``.
``digest``
    SHA-256 (or, with ``key=``, HMAC-SHA-256) of the metadata and every array's name, dtype,
    shape and bytes.  It catches corruption and edits that do not recompute it; only the keyed
    form authenticates a file against deliberate tampering.

A formula is code that patsy evaluates, so every factor's code is checked against a whitelist
(data columns, arithmetic, patsy's built-ins such as ``C``/``I``/``center``/``bs`` and a list of
NumPy functions called as ``np.<name>``) when saving and again when loading.  The design is then
rebuilt by running patsy on a small synthetic frame holding each factor's saved levels, and the
saved transform state is copied into the rebuilt transforms.

Pickling
--------
patsy's objects refuse to pickle; :mod:`multilogit.data.design_state` pickles the patsy
``DesignInfo`` by value (``Design.__reduce__``), so ``pickle.dumps(results)`` works.
"""

from __future__ import annotations

import hashlib
import hmac
import json

import numpy as np
import pandas as pd

from ..data.design_state import design_state, json_label, jsonable, rebuild_design
from ..version import __version__

__all__ = ["FORMAT", "FORMAT_VERSION", "digest", "key_bytes", "save"]

FORMAT = "multilogit-results"
FORMAT_VERSION = 1

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
        Also store the estimation data (design matrix, outcome codes, weights), so that the
        loaded model can predict on it and be refitted.
    key : bytes or str, optional
        Sign the file with HMAC-SHA-256; :func:`load` then needs the same key.
    """
    model = results.model
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
        idx = pd.Index(model.row_labels)
        if idx.dtype.kind in "iu":
            arrays["data.index"] = idx.to_numpy(dtype=np.int64)
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
            "nobs": float(model.nobs),
            "n_rows": int(len(model.exog)),
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
        "signed": key is not None,
        "arrays": {k: {"dtype": v.dtype.str, "shape": list(v.shape)} for k, v in arrays.items()},
    }
    meta_bytes = json.dumps(meta, sort_keys=True, allow_nan=True).encode("utf-8")
    signature = digest(meta_bytes, arrays, key_bytes(key))
    payload = dict(arrays)
    payload["metadata"] = np.frombuffer(meta_bytes, dtype=np.uint8)
    payload["digest"] = np.frombuffer(signature.encode("ascii"), dtype=np.uint8)
    with open(path, "wb") as fh:
        np.savez(fh, **payload)
