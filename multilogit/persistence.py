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
patsy's objects refuse to pickle.  :func:`reduce_design` (used by ``Design.__reduce__``) pickles
the patsy ``DesignInfo`` by value with a private pickler and replaces the captured evaluation
environment by the names the formula uses, so ``pickle.dumps(results)`` works.
"""

from __future__ import annotations

import ast
import hashlib
import hmac
import importlib
import io
import json
import pickle
import types

import numpy as np
import pandas as pd

from .exceptions import PersistenceError

__all__ = ["FORMAT", "FORMAT_VERSION", "load", "save", "reduce_design"]

FORMAT = "multilogit-results"
FORMAT_VERSION = 1

# -- formula safety ---------------------------------------------------------------------------

_PATSY_CALLABLES = {
    "C", "I", "Q", "center", "standardize", "scale", "bs", "cr", "cc", "te",
    "Treatment", "Sum", "Diff", "Helmert", "Poly",
}  # fmt: skip
_NUMPY_CALLABLES = {
    "log", "log1p", "log2", "log10", "exp", "expm1", "sqrt", "square", "abs", "absolute",
    "power", "sin", "cos", "tan", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh",
    "floor", "ceil", "round", "rint", "clip", "maximum", "minimum", "where", "sign",
}  # fmt: skip
_NUMPY_NAMES = {"np", "numpy"}
_ALLOWED_NODES = (
    ast.Expression, ast.Name, ast.Load, ast.Call, ast.Attribute, ast.BinOp, ast.UnaryOp,
    ast.Compare, ast.BoolOp, ast.Constant, ast.keyword, ast.List, ast.Tuple,
    ast.operator, ast.unaryop, ast.cmpop, ast.boolop,
)  # fmt: skip
_TRANSFORMS = {"Center", "Standardize", "BS", "CR", "CC", "TE"}


def _check_code(code: str) -> set[str]:
    """Raise unless ``code`` only uses data names, arithmetic and whitelisted functions.

    Returns the data variables the code refers to.
    """
    try:
        tree = ast.parse(code, mode="eval")
    except SyntaxError:
        raise PersistenceError(f"formula term {code!r} is not a valid expression") from None
    variables: set[str] = set()
    called = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED_NODES):
            raise PersistenceError(
                f"formula term {code!r} uses {type(node).__name__}, which a saved model does not "
                "allow (use a plain formula, or pickle the results)"
            )
        if isinstance(node, ast.Attribute):
            base = node.value
            if not (
                isinstance(base, ast.Name)
                and base.id in _NUMPY_NAMES
                and node.attr in _NUMPY_CALLABLES
                and id(node) in called
            ):
                raise PersistenceError(
                    f"formula term {code!r}: only calls to np.<function> for "
                    f"{', '.join(sorted(_NUMPY_CALLABLES))} can be saved"
                )
        elif isinstance(node, ast.Name):
            if node.id.startswith("_"):
                raise PersistenceError(f"formula term {code!r}: name {node.id!r} not allowed")
            if id(node) in called:
                if node.id not in _PATSY_CALLABLES:
                    raise PersistenceError(
                        f"formula term {code!r} calls {node.id!r}; a saved model can only use "
                        f"patsy's {', '.join(sorted(_PATSY_CALLABLES))} and np.<function>"
                    )
            elif node.id not in _NUMPY_NAMES and node.id not in _PATSY_CALLABLES:
                # (contrasts such as Sum are passed uncalled: C(x, Sum))
                variables.add(node.id)
        elif isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Name) and f.id == "Q":
                if len(node.args) != 1 or not isinstance(node.args[0], ast.Constant):
                    raise PersistenceError(f"formula term {code!r}: Q() needs one string")
                variables.add(str(node.args[0].value))
    # Strings of Q("...") are column names, not free variables; the rest are data columns.
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            variables.discard(node.value.id)
    return variables


# -- JSON helpers -----------------------------------------------------------------------------


def _label(v):
    """An outcome or category label as a JSON value (str, int, float, bool)."""
    v = v.item() if isinstance(v, np.generic) else v
    if isinstance(v, bool | int | float | str):
        return v
    raise PersistenceError(
        f"label {v!r} of type {type(v).__name__} cannot be saved (only str, int, float, bool)"
    )


def _jsonable(v):
    v = v.item() if isinstance(v, np.generic) else v
    if v is None or isinstance(v, bool | int | float | str):
        return v
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    raise TypeError(type(v).__name__)


# -- design state -----------------------------------------------------------------------------


def _design_state(design, arrays: dict) -> dict:
    """JSON description of a formula design; transform arrays go into ``arrays``."""
    di = design.design_info
    factors = []
    for fi_num, (factor, info) in enumerate(di.factor_infos.items()):
        code = getattr(factor, "code", None)
        if code is None:
            raise PersistenceError(f"design factor {factor!r} cannot be saved")
        _check_code(code)
        entry = {"code": code, "type": info.type, "num_columns": info.num_columns}
        if info.type == "categorical":
            entry["categories"] = [_label(c) for c in info.categories]
        transforms = {}
        for name, obj in info.state.get("transforms", {}).items():
            cls = type(obj).__name__
            if cls not in _TRANSFORMS:
                raise PersistenceError(
                    f"formula term {code!r} uses the stateful transform {cls}, which cannot be "
                    "saved; pickle the results instead"
                )
            scalars = {}
            for attr, val in vars(obj).items():
                if isinstance(val, np.ndarray):
                    arrays[f"transform.{fi_num}.{name}.{attr}"] = val
                    scalars[attr] = {"array": True}
                else:
                    try:
                        scalars[attr] = {"value": _jsonable(val)}
                    except TypeError:
                        raise PersistenceError(
                            f"state {attr!r} of transform {cls} in {code!r} cannot be saved"
                        ) from None
            transforms[name] = {"class": cls, "state": scalars}
        entry["transforms"] = transforms
        factors.append(entry)
    return {"formula": design.formula, "factors": factors}


def _synthetic_frame(factors) -> pd.DataFrame:
    """A small frame on which patsy rebuilds the saved design: every categorical factor's levels
    appear, numeric variables take distinct positive values."""
    cats: dict[str, list] = {}
    variables: list[str] = []
    for f in factors:
        names = sorted(_check_code(f["code"]))
        for nm in names:
            if nm not in variables:
                variables.append(nm)
        if f["type"] == "categorical" and len(names) == 1:
            cats.setdefault(names[0], list(f["categories"]))
    m = max([8] + [len(c) for c in cats.values()])
    data = {}
    for nm in variables:
        if nm in cats:
            levels = cats[nm]
            vals = [levels[i % len(levels)] for i in range(m)]
            if all(isinstance(v, str) for v in levels):
                # A Categorical keeps the saved level order (patsy would sort plain strings).
                data[nm] = pd.Categorical(vals, categories=levels)
            elif all(isinstance(v, bool) for v in levels):
                data[nm] = np.array(vals, dtype=bool)
            else:
                data[nm] = pd.Series(vals)
        else:
            data[nm] = 1.0 + np.arange(m) / m
    return pd.DataFrame(data)


def _safe_env():
    import patsy

    return patsy.EvalEnvironment([{"np": np, "numpy": np}])


def _rebuild_design(state: dict, names: tuple, arrays) -> object:
    """Design rebuilt from :func:`_design_state` output (with its transform arrays)."""
    import patsy

    from .design import Design

    factors = state["factors"]
    formula = state["formula"]
    if not isinstance(formula, str) or "~" not in formula:
        raise PersistenceError("saved formula is missing or malformed")
    for f in factors:
        _check_code(f["code"])
    env = _safe_env()
    frame = _synthetic_frame(factors)
    try:
        full = patsy.ModelDesc.from_formula(formula)
        desc = patsy.ModelDesc([], full.rhs_termlist)
        for term in desc.rhs_termlist:
            for fac in term.factors:
                _check_code(fac.code)
        di = patsy.dmatrix(
            desc, frame, eval_env=env, NA_action=patsy.NAAction(NA_types=[])
        ).design_info
    except Exception as exc:  # patsy on whitelisted code: any failure means "cannot rebuild"
        raise PersistenceError(f"cannot rebuild the design of {formula!r}: {exc}") from None
    if tuple(di.column_names) != tuple(names):
        raise PersistenceError(
            f"the rebuilt design of {formula!r} has columns {list(di.column_names)}, not the "
            f"saved {list(names)}"
        )
    by_code = {getattr(f, "code", None): (f, info) for f, info in di.factor_infos.items()}
    for fi_num, saved in enumerate(factors):
        if saved["code"] not in by_code:
            raise PersistenceError(f"saved factor {saved['code']!r} not in the rebuilt design")
        _, info = by_code[saved["code"]]
        if info.type != saved["type"] or info.num_columns != saved["num_columns"]:
            raise PersistenceError(f"factor {saved['code']!r} does not match its saved type")
        if info.type == "categorical" and list(info.categories) != saved["categories"]:
            raise PersistenceError(f"factor {saved['code']!r}: levels do not match the saved ones")
        live = info.state.get("transforms", {})
        if set(live) != set(saved["transforms"]):
            raise PersistenceError(f"factor {saved['code']!r}: transforms do not match")
        for name, tr in saved["transforms"].items():
            obj = live[name]
            if type(obj).__name__ != tr["class"] or tr["class"] not in _TRANSFORMS:
                raise PersistenceError(f"factor {saved['code']!r}: transform class mismatch")
            if set(tr["state"]) != set(vars(obj)):
                raise PersistenceError(f"factor {saved['code']!r}: transform state mismatch")
            new = {}
            for attr, spec in tr["state"].items():
                if spec.get("array"):
                    key = f"transform.{fi_num}.{name}.{attr}"
                    if key not in arrays:
                        raise PersistenceError(f"array {key!r} is missing")
                    new[attr] = np.array(arrays[key])
                else:
                    val = spec.get("value")
                    new[attr] = tuple(val) if isinstance(val, list) else val
            vars(obj).update(new)
    return Design(tuple(names), formula, di, env)


# -- pickling of patsy designs ----------------------------------------------------------------


def _restore_patsy(cls, state):
    obj = cls.__new__(cls)
    obj.__dict__.update(state)
    return obj


def _patsy_builtin_names() -> dict:
    import patsy.builtins

    return {id(v): k for k, v in vars(patsy.builtins).items() if not k.startswith("_")}


def _patsy_builtin(name):
    import patsy.builtins

    return getattr(patsy.builtins, name)


class _DesignPickler(pickle.Pickler):
    """Pickles patsy objects by value (patsy refuses) and modules by name."""

    def reducer_override(self, obj):
        if isinstance(obj, types.ModuleType):
            return importlib.import_module, (obj.__name__,)
        # patsy's stateful transforms (center, bs, ...) are wrappers that pickle by a wrong name:
        # refer to them through patsy.builtins.
        name = _patsy_builtin_names().get(id(obj))
        if name is not None:
            return _patsy_builtin, (name,)
        cls = type(obj)
        if (cls.__module__ or "").startswith("patsy.") and hasattr(obj, "__dict__"):
            return _restore_patsy, (cls, dict(obj.__dict__))
        return NotImplemented


def _restore_design(names, formula, blob):
    from .design import Design

    di, env = pickle.loads(blob)
    return Design(tuple(names), formula, di, env)


def _formula_env(design_info):
    """The names the formula's factors were evaluated with (a small environment)."""
    import patsy

    merged = {}
    for info in design_info.factor_infos.values():
        env = info.state.get("eval_env")
        for ns in getattr(env, "_namespaces", []):
            for k, v in ns.items():
                merged.setdefault(k, v)
    return patsy.EvalEnvironment([merged])


def reduce_design(design):
    """``__reduce__`` of :class:`multilogit.design.Design`."""
    from .design import Design

    if design.design_info is None:
        return Design, (design.names,)
    buf = io.BytesIO()
    try:
        _DesignPickler(buf, protocol=pickle.HIGHEST_PROTOCOL).dump(
            (design.design_info, _formula_env(design.design_info))
        )
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        raise pickle.PicklingError(
            f"cannot pickle the design of {design.formula!r}: {exc} (functions used in the "
            "formula must be importable module-level functions)"
        ) from None
    return _restore_design, (design.names, design.formula, buf.getvalue())


# -- save ---------------------------------------------------------------------------------------


def _digest(meta_bytes: bytes, arrays: dict, key: bytes | None) -> str:
    h = hmac.new(key, digestmod=hashlib.sha256) if key is not None else hashlib.sha256()
    h.update(meta_bytes)
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(name.encode())
        h.update(str(a.dtype.str).encode())
        h.update(repr(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _key_bytes(key):
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
    from . import __version__

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
        design_meta = {"kind": "formula", **_design_state(design, arrays)}
        # Refuse now, not at load time, if the design cannot be rebuilt from what we store.
        _rebuild_design(design_meta, tuple(design.names), arrays)
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
            "outcomes": [_label(o) for o in sep.outcomes],
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
        cov_kwds = _jsonable(dict(results.cov_kwds))
    except TypeError:
        cov_kwds = None  # array-valued options (e.g. cluster ids) are described, not stored
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "multilogit_version": __version__,
        "outcome": {
            "name": str(model.endog_names),
            "levels": [_label(v) for v in model.outcomes],
            "ref": _label(model.ref),
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
            "options": _jsonable(results.fit_options),
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
    digest = _digest(meta_bytes, arrays, _key_bytes(key))
    payload = dict(arrays)
    payload["metadata"] = np.frombuffer(meta_bytes, dtype=np.uint8)
    payload["digest"] = np.frombuffer(digest.encode("ascii"), dtype=np.uint8)
    with open(path, "wb") as fh:
        np.savez(fh, **payload)


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

    def compute(self, state):
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
    df_model = property(lambda self: self._df_model)
    outcome_counts = property(lambda self: self._counts.copy())
    default_cov_type = property(lambda self: "nonrobust" if self.weights is None else "HC1")

    @property
    def level_to_internal(self) -> np.ndarray:
        r = self.outcome.ref_index
        K = len(self.outcomes)
        return np.array([self.J if k == r else (k if k < r else k - 1) for k in range(K)])

    def _no_data(self, *_args, **_kwds):
        from .exceptions import DataError

        raise DataError(
            "this model was loaded without its estimation data: pass new data to predict, or "
            "save with include_data=True"
        )

    exog = property(_no_data)
    endog = property(_no_data)
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


def _read(path):
    with open(path, "rb") as fh:  # our handle: closed even when np.load fails half-way
        try:
            with np.load(fh, allow_pickle=False) as npz:
                return {k: npz[k] for k in npz.files}
        except Exception as exc:  # any parse failure of the archive or an array header
            raise PersistenceError(
                f"{path!s} is not a readable multilogit results file (corrupted or not an .npz "
                f"archive): {exc}"
            ) from None


def _expect(cond, what):
    if not cond:
        _fail(f"malformed results file: {what}")


def load(path, key: bytes | str | None = None):
    """Load results written by :meth:`MultinomialLogitResults.save`.

    Never executes code from the file: arrays are read with ``allow_pickle=False``, the
    metadata is JSON, and formula terms are checked against a whitelist before patsy sees
    them.

    Raises
    ------
    PersistenceError
        The file is not a multilogit results file, has an unknown format version, fails its
        digest (corrupted or edited), or its contents are inconsistent.
    """
    from . import design as design_mod
    from .checks import flag_state
    from .results import MultinomialLogitResults
    from .separation import Separation
    from .solver import NewtonResult

    raw = _read(path)
    _expect("metadata" in raw and "digest" in raw, "no metadata or digest entry")
    meta_bytes = raw.pop("metadata")
    digest = raw.pop("digest")
    _expect(meta_bytes.dtype == np.uint8 and digest.dtype == np.uint8, "bad entry types")
    meta_bytes = meta_bytes.tobytes()
    try:
        meta = json.loads(meta_bytes.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
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
    if meta.get("signed") and key is None:
        _fail(f"{path!s} is signed: pass the key it was saved with")
    expected = _digest(meta_bytes, raw, _key_bytes(key))
    if not hmac.compare_digest(expected.encode("ascii"), digest.tobytes()):
        _fail(
            f"{path!s} failed its integrity check (digest mismatch): the file was corrupted or "
            "modified" + (", or the key is wrong" if key is not None else "")
        )
    try:
        return _build(
            meta, raw, design_mod, MultinomialLogitResults, Separation, NewtonResult, flag_state
        )
    except PersistenceError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        _fail(f"malformed results file: {type(exc).__name__}: {exc}")


def _build(meta, raw, design_mod, Results, Separation, NewtonResult, flag_state):
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
        design = _rebuild_design(dmeta, names, raw)
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
        index = pd.Index(raw["data.index"]) if "data.index" in raw else pd.RangeIndex(len(X))
        _expect(len(index) == len(X), "data.index length")
        from .model import MultinomialLogit

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
        model._lik_weights = (
            model.freq_weights if model.weights is None else model.freq_weights * model.weights
        )
        model._source_data = None
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
    if "iteration" in frame:
        frame["iteration"] = frame["iteration"].astype(np.int64)
    beta = np.array(raw["params"])
    state = NewtonResult(
        beta,
        float(fit["llf"]),
        np.array(raw["score"]),
        np.array(raw["info"]),
        bool(fit["converged"]),
        int(fit["n_iter"]),
        frame,
        str(fit["message"]),
    )
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
    state = flag_state(
        state, separation=sep, aliased=aliased, notes=tuple(str(n) for n in fit["notes"])
    )
    fit_info = dict(
        converged=bool(fit["converged"]),
        n_iter=int(fit["n_iter"]),
        log=frame,
        message=str(fit["message"]),
        options=dict(fit["options"]),
    )
    return Results(model, beta, state, np.array(raw["cov"]), cov_est, fit_info)
