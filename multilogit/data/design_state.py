"""The state of a patsy design, as data: for saving without pickle, and for pickling.

:func:`design_state` describes a design as JSON (each factor's code, type, categorical levels
and stateful-transform state, arrays aside); :func:`rebuild_design` runs patsy on a small
synthetic frame holding the saved levels and copies the saved transform state in, which
reproduces the design exactly.  A saved formula is untrusted input: its codes are checked by
:mod:`multilogit.data.formula_check` and everything that sizes the rebuild is bounded before
patsy evaluates anything.

patsy's objects refuse to pickle.  :func:`reduce_design` (registered with :mod:`copyreg` for
:class:`~multilogit.data.design.Design`) pickles the ``DesignInfo`` by value with a private
pickler and replaces the captured evaluation environment by the names the formula uses.
"""

from __future__ import annotations

import copyreg
import importlib
import io
import pickle
import types

import numpy as np
import pandas as pd

from ..exceptions import PersistenceError
from .design import Design
from .formula_check import INT_LIMIT, check_code, parse_formula

__all__ = [
    "MAX_CELLS",
    "MAX_FACTORS",
    "design_state",
    "rebuild_design",
    "reduce_design",
]

# -- limits of a saved design ----------------------------------------------------------------

_TRANSFORMS = {"Center", "Standardize", "BS", "CR", "CC", "TE"}
#: Factors of a saved design.
MAX_FACTORS = 2_000
#: Cells of the synthetic frame and design a rebuild may need, beyond ``4 (p + 1)**2`` for ``p``
#: columns (which the file pays for with its covariance matrix).
MAX_CELLS = 4_000_000


# -- JSON helpers -----------------------------------------------------------------------------


def json_label(v):
    """An outcome or category label as a JSON value (str, int, float, bool)."""
    v = v.item() if isinstance(v, np.generic) else v
    if isinstance(v, bool | int | float | str):
        return v
    raise PersistenceError(
        f"label {v!r} of type {type(v).__name__} cannot be saved (only str, int, float, bool)"
    )


def jsonable(v):
    v = v.item() if isinstance(v, np.generic) else v
    if v is None or isinstance(v, bool | int | float | str):
        return v
    if isinstance(v, list | tuple):
        return [jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    raise TypeError(type(v).__name__)


# -- design state -----------------------------------------------------------------------------


def design_state(design, arrays: dict) -> dict:
    """JSON description of a formula design; transform arrays go into ``arrays``."""
    di = design.design_info
    factors = []
    for fi_num, (factor, info) in enumerate(di.factor_infos.items()):
        code = getattr(factor, "code", None)
        if code is None:
            raise PersistenceError(f"design factor {factor!r} cannot be saved")
        check_code(code)
        entry = {"code": code, "type": info.type, "num_columns": info.num_columns}
        if info.type == "categorical":
            entry["categories"] = [json_label(c) for c in info.categories]
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
                        scalars[attr] = {"value": jsonable(val)}
                    except TypeError:
                        raise PersistenceError(
                            f"state {attr!r} of transform {cls} in {code!r} cannot be saved"
                        ) from None
            transforms[name] = {"class": cls, "state": scalars}
        entry["transforms"] = transforms
        factors.append(entry)
    return {"formula": design.formula, "factors": factors}


def _level_column(levels: list, m: int):
    """A column of ``m`` values cycling through a categorical factor's saved ``levels``.

    Its dtype is fixed width whenever the levels allow (bool, int64, float64) and a pandas
    Categorical otherwise, so that no arithmetic in the formula runs on Python objects chosen by
    the file (an int level of 3000000000 times a str level would repeat the string).
    """
    vals = [levels[i % len(levels)] for i in range(m)]
    if all(isinstance(v, bool) for v in levels):
        return np.array(vals, dtype=bool)
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in levels):
        # Numbers as patsy found them: ints stay int64 (check_levels bounds them), a mix with
        # floats becomes float64 as it would in a data frame.
        dtype = np.int64 if all(isinstance(v, int) for v in levels) else np.float64
        return np.array(vals, dtype=dtype)
    # A Categorical also keeps the saved level order (patsy would sort plain strings).
    return pd.Categorical(vals, categories=levels)


def _check_levels(code: str, levels, max_levels: int) -> list:
    if not isinstance(levels, list) or not levels:
        raise PersistenceError(f"the saved levels of factor {code!r} are not a list of labels")
    if len(levels) > max_levels:
        raise PersistenceError(
            f"factor {code!r} has {len(levels)} saved levels, more than the saved design's "
            f"{max_levels - 1} columns allow"
        )
    for v in levels:
        if not isinstance(v, str | bool | int | float) or (
            isinstance(v, int) and not -INT_LIMIT < v < INT_LIMIT
        ):
            raise PersistenceError(
                f"level {v!r} of factor {code!r} cannot be saved or loaded (levels are str, "
                "bool, float or 64-bit int)"
            )
    return levels


def _synthetic_layout(factors, max_levels: int) -> tuple[int, list, dict]:
    """The shape of the small frame on which patsy rebuilds the saved design: its rows ``m``
    (every categorical factor's levels appear), its variables, and the saved levels of the
    categorical ones (the others take distinct positive values)."""
    cats: dict[str, list] = {}
    variables: list[str] = []
    for f in factors:
        names = sorted(check_code(f["code"]))
        for nm in names:
            if nm not in variables:
                variables.append(nm)
        if f["type"] == "categorical" and len(names) == 1:
            cats.setdefault(names[0], _check_levels(f["code"], f["categories"], max_levels))
    m = max([8] + [len(c) for c in cats.values()])
    return m, variables, cats


def _safe_env():
    import patsy

    return patsy.EvalEnvironment([{"np": np, "numpy": np}])


def rebuild_design(state: dict, names: tuple, arrays) -> object:
    """Design rebuilt from :func:`design_state` output (with its transform arrays).

    Everything that sizes the rebuild is checked before patsy evaluates anything: the formula's
    length and the number of terms it expands to, each factor's code
    (:func:`~multilogit.data.formula_check.check_code`, with spline bases no wider than the
    design), the number of factors and of saved levels (at most one more than the design's
    columns), and the cells of the synthetic frame.
    """
    import patsy

    factors = state["factors"]
    formula = state["formula"]
    p = len(names)
    if not isinstance(factors, list) or len(factors) > MAX_FACTORS:
        raise PersistenceError(
            f"the saved design has more than {MAX_FACTORS} factors or a malformed factor list"
        )
    desc = parse_formula(formula, p)
    formula_codes = {fac.code for term in desc.rhs_termlist for fac in term.factors}
    for code in sorted(formula_codes):
        check_code(code, max_width=p + 1)
    codes = [f["code"] for f in factors]
    if formula_codes != set(codes) or len(set(codes)) != len(codes):
        raise PersistenceError(
            f"the saved factors {codes[:20]} do not match the factors of {formula!r}"
        )
    m, variables, cats = _synthetic_layout(factors, max_levels=p + 1)
    if m * (len(variables) + p) > MAX_CELLS + 4 * (p + 1) ** 2:
        raise PersistenceError(
            f"rebuilding the design of {formula[:80]!r} would need {m} rows of "
            f"{len(variables) + p} columns; refused"
        )
    data = {}
    for nm in variables:
        data[nm] = _level_column(cats[nm], m) if nm in cats else 1.0 + np.arange(m) / m
    # NumPy functions turn a Categorical into an array of its (saved, so untrusted) strings.
    text = {nm for nm, col in data.items() if isinstance(col, pd.Categorical)}
    for code in sorted(formula_codes):
        check_code(code, max_width=p + 1, text=text)
    frame = pd.DataFrame(data, index=pd.RangeIndex(m))
    env = _safe_env()
    try:
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
    """How :class:`~multilogit.data.design.Design` pickles (registered with :mod:`copyreg`
    below)."""
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


# patsy's objects refuse to pickle: a Design pickles by value, through this module.
copyreg.pickle(Design, reduce_design)
