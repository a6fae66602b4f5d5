"""The state of a patsy design, as data: for saving without pickle, and for pickling.

A formula is code that patsy evaluates, so saved designs only admit a whitelist: data columns,
arithmetic, patsy's built-ins (``C``, ``I``, ``Q``, ``center``, ``standardize``, ``scale``,
``bs``, ``cr``, ``cc``, ``te`` and the contrasts) and NumPy functions called as
``np.<name>`` from a fixed list.  :func:`design_state` describes a design as JSON (each factor's
code, type, categorical levels and stateful-transform state, arrays aside);
:func:`rebuild_design` runs patsy on a small synthetic frame holding the saved levels and copies
the saved transform state in, which reproduces the design exactly.

patsy's objects refuse to pickle.  :func:`reduce_design` (registered with :mod:`copyreg` for
:class:`Design`) pickles the
``DesignInfo`` by value with a private pickler and replaces the captured evaluation environment
by the names the formula uses.
"""

from __future__ import annotations

import ast
import copyreg
import importlib
import io
import pickle
import types

import numpy as np
import pandas as pd

from ..exceptions import PersistenceError
from .design import Design

__all__ = ["check_code", "design_state", "rebuild_design", "reduce_design"]

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


def check_code(code: str) -> set[str]:
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


def _synthetic_frame(factors) -> pd.DataFrame:
    """A small frame on which patsy rebuilds the saved design: every categorical factor's levels
    appear, numeric variables take distinct positive values."""
    cats: dict[str, list] = {}
    variables: list[str] = []
    for f in factors:
        names = sorted(check_code(f["code"]))
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


def rebuild_design(state: dict, names: tuple, arrays) -> object:
    """Design rebuilt from :func:`design_state` output (with its transform arrays)."""
    import patsy

    factors = state["factors"]
    formula = state["formula"]
    if not isinstance(formula, str) or "~" not in formula:
        raise PersistenceError("saved formula is missing or malformed")
    for f in factors:
        check_code(f["code"])
    env = _safe_env()
    frame = _synthetic_frame(factors)
    try:
        full = patsy.ModelDesc.from_formula(formula)
        desc = patsy.ModelDesc([], full.rhs_termlist)
        for term in desc.rhs_termlist:
            for fac in term.factors:
                check_code(fac.code)
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
    """How :class:`Design` pickles (registered with :mod:`copyreg` below)."""
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
