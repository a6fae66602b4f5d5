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
import operator
import pickle
import types

import numpy as np
import pandas as pd

from ..exceptions import PersistenceError
from .design import Design

__all__ = [
    "MAX_CELLS",
    "MAX_CODE_CHARS",
    "MAX_FACTORS",
    "MAX_FORMULA_CHARS",
    "MAX_TERMS",
    "check_code",
    "design_state",
    "rebuild_design",
    "reduce_design",
]

# -- formula safety ---------------------------------------------------------------------------

_PATSY_CALLABLES = {
    "C", "I", "Q", "center", "standardize", "scale", "bs", "cr", "cc", "te",
    "Treatment", "Sum", "Diff", "Helmert", "Poly",
}  # fmt: skip
_CONTRASTS = {"Treatment", "Sum", "Diff", "Helmert", "Poly"}
_NUMPY_CALLABLES = {
    "log", "log1p", "log2", "log10", "exp", "expm1", "sqrt", "square", "abs", "absolute",
    "power", "sin", "cos", "tan", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh",
    "floor", "ceil", "round", "rint", "clip", "maximum", "minimum", "where", "sign",
}  # fmt: skip
# Keywords of the NumPy functions above that only shape a result of the input's size (``out``,
# ``dtype`` and the like are refused).
_NUMPY_KEYWORDS = {"decimals", "a_min", "a_max", "min", "max"}
_NUMPY_NAMES = {"np", "numpy"}
_ALLOWED_NODES = (
    ast.Expression, ast.Name, ast.Load, ast.Call, ast.Attribute, ast.BinOp, ast.UnaryOp,
    ast.Compare, ast.BoolOp, ast.Constant, ast.keyword, ast.List, ast.Tuple,
    ast.operator, ast.unaryop, ast.cmpop, ast.boolop,
)  # fmt: skip
_TRANSFORMS = {"Center", "Standardize", "BS", "CR", "CC", "TE"}
# Parameters of the spline bases by position, after the data argument.
_SPLINE_PARAMS = {
    "bs": ("df", "knots", "degree", "include_intercept", "lower_bound", "upper_bound"),
    "cr": ("df", "knots", "lower_bound", "upper_bound", "constraints"),
    "cc": ("df", "knots", "lower_bound", "upper_bound", "constraints"),
}

# Limits on a saved formula, checked before patsy sees it: a file is untrusted input, and a
# formula is code (a short one can ask for gigabytes: ``I('ab'*3000000000)``, ``I(10**10**7)``,
# ``(a+b+c+d+e+f)*(g+h+i+j+k+l)*...``, ``cr(x, df=10**6)``).

#: Characters of one factor's code.
MAX_CODE_CHARS = 10_000
#: Characters of a saved formula.
MAX_FORMULA_CHARS = 50_000
#: Factors of a saved design.
MAX_FACTORS = 2_000
#: Terms the formula language may generate before patsy removes duplicates.
MAX_TERMS = 20_000
# Integer constants stay within int64, so NumPy computes on them in fixed width.
_INT_LIMIT = 2**63
#: Cells of the synthetic frame and design a rebuild may need, beyond ``4 (p + 1)**2`` for ``p``
#: columns (which the file pays for with its covariance matrix).
MAX_CELLS = 4_000_000


class _Data:
    """The value of a subexpression that depends on data (an array of the data's length).

    ``text`` marks values that may hold strings (``np.where(x > 0, 'a', 'b')``): NumPy
    repeats strings under ``*``, so arithmetic on them is refused.
    """

    def __init__(self, text: bool = False):
        self.text = text


def _refuse(code: str, why: str):
    raise PersistenceError(f"formula term {code!r} {why}; a saved model does not allow this")


def _is_sequence(v) -> bool:
    return isinstance(v, str | bytes | tuple) or (isinstance(v, _Data) and v.text)


def _bounded_int(v, code: str):
    if isinstance(v, int) and not isinstance(v, bool) and not -_INT_LIMIT < v < _INT_LIMIT:
        _refuse(code, "has an integer constant outside the 64-bit range")
    return v


def _fold_binop(op: ast.operator, a, b, code: str):
    """``a op b`` for constants, refusing operations whose result could be huge."""
    if isinstance(op, ast.Pow) and isinstance(a, int) and isinstance(b, int) and b > 0:
        if max(a.bit_length(), 1) * b > 64:
            _refuse(code, "raises a constant to a power whose result is too large")
    if isinstance(op, ast.LShift) and isinstance(a, int) and isinstance(b, int):
        if b > 64:
            _refuse(code, "shifts a constant by too many bits")
    fn = {
        ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
        ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
        ast.Pow: operator.pow, ast.LShift: operator.lshift, ast.RShift: operator.rshift,
        ast.BitOr: operator.or_, ast.BitAnd: operator.and_, ast.BitXor: operator.xor,
    }.get(type(op))  # fmt: skip
    if fn is None:
        _refuse(code, f"uses the operator {type(op).__name__}")
    try:
        return _bounded_int(fn(a, b), code)
    except (ArithmeticError, ValueError, TypeError) as exc:
        _refuse(code, f"has a constant expression that cannot be computed ({exc})")


class _Checker:
    """Walks a factor's code, folding constant subexpressions within bounds.

    ``max_width`` bounds the columns a spline basis may ask for (the saved design's width).
    """

    def __init__(self, code: str, max_width: int | None):
        self.code = code
        self.max_width = max_width
        self.widths: dict[int, int] = {}

    def value(self, node):
        code = self.code
        if isinstance(node, ast.Constant):
            return _bounded_int(node.value, code)
        if isinstance(node, ast.Name | ast.Attribute):
            return _Data()
        if isinstance(node, ast.List | ast.Tuple):
            items = [self.value(e) for e in node.elts]
            if any(isinstance(v, _Data) for v in items):
                _refuse(code, "puts data in a list or tuple (only constants can be listed)")
            return tuple(items)
        if isinstance(node, ast.UnaryOp):
            v = self.value(node.operand)
            if isinstance(v, _Data) or _is_sequence(v):
                return v
            fn = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Invert: operator.invert,
                  ast.Not: operator.not_}[type(node.op)]  # fmt: skip
            try:
                return _bounded_int(fn(v), code)
            except (ArithmeticError, TypeError) as exc:
                _refuse(code, f"has a constant expression that cannot be computed ({exc})")
        if isinstance(node, ast.BinOp):
            a, b = self.value(node.left), self.value(node.right)
            if _is_sequence(a) or _is_sequence(b):
                # str * int repeats, str % x formats: no term of a model computes on text.
                _refuse(code, "does arithmetic on a string or a sequence")
            if isinstance(a, _Data) or isinstance(b, _Data):
                return _Data()
            return _fold_binop(node.op, a, b, code)
        if isinstance(node, ast.BoolOp):
            values = [self.value(v) for v in node.values]
            if any(_is_sequence(v) for v in values):
                _refuse(code, "combines strings or sequences with and/or")
            return _Data()
        if isinstance(node, ast.Compare):
            for v in [node.left, *node.comparators]:
                self.value(v)
            return _Data()
        if isinstance(node, ast.Call):
            return self.call(node)
        _refuse(code, f"uses {type(node).__name__}")

    def call(self, node: ast.Call):
        code = self.code
        f = node.func
        if any(kw.arg is None for kw in node.keywords):
            _refuse(code, "passes **keywords")
        args = [self.value(a) for a in node.args]
        kwargs = {kw.arg: kw.value for kw in node.keywords}
        kwvalues = {k: self.value(v) for k, v in kwargs.items()}
        text = any(_is_sequence(v) for v in [*args, *kwvalues.values()])
        if isinstance(f, ast.Attribute):
            if set(kwargs) - _NUMPY_KEYWORDS:
                _refuse(code, f"passes {sorted(set(kwargs) - _NUMPY_KEYWORDS)} to np.{f.attr}")
            if f.attr == "where" and len(node.args) != 3:
                # With one argument np.where returns a tuple of index arrays.
                _refuse(code, "calls np.where without its three arguments")
            return _Data(text)
        name = f.id
        if name == "C":
            contrast = node.args[1] if len(node.args) > 1 else kwargs.get("contrast")
            if len(node.args) > 3 or set(kwargs) - {"levels", "contrast"}:
                _refuse(code, "passes C() arguments other than data, contrast and levels")
            if not (
                contrast is None
                or (isinstance(contrast, ast.Constant) and contrast.value is None)
                or (isinstance(contrast, ast.Name) and contrast.id in _CONTRASTS)
                or (
                    isinstance(contrast, ast.Call)
                    and isinstance(contrast.func, ast.Name)
                    and contrast.func.id in _CONTRASTS
                )
            ):
                # patsy calls a callable contrast: only patsy's own contrasts may stand there.
                _refuse(code, "gives C() a contrast other than " + ", ".join(sorted(_CONTRASTS)))
            return _Data()
        if name in _SPLINE_PARAMS:
            self.spline(node, name, args, kwvalues)
        elif name == "te":
            self.tensor(node)
        return _Data(text and name == "I")

    def spline(self, node, name, args, kwvalues):
        code = self.code
        params = dict(zip(_SPLINE_PARAMS[name], args[1:], strict=False))
        params.update(kwvalues)
        if len(args) > len(_SPLINE_PARAMS[name]) + 1 or set(params) - set(_SPLINE_PARAMS[name]):
            _refuse(code, f"passes {name}() unknown arguments")
        for key in ("df", "degree"):
            v = params.get(key)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
                _refuse(code, f"gives {name}() a {key} that is not a non-negative integer")
        knots = params.get("knots")
        if knots is not None and not isinstance(knots, tuple):
            _refuse(code, f"gives {name}() knots that are not a list of numbers")
        n_knots = len(knots or ())
        if name == "bs":
            degree = params.get("degree", 3)
            width = params.get("df") or n_knots + degree + 1
            self.check_width(degree, name)
        else:
            width = params.get("df") or n_knots
        self.check_width(width, name)
        self.widths[id(node)] = width

    def tensor(self, node):
        width = 1
        for arg in node.args:
            w = self.widths.get(id(arg))
            if w is None:
                _refuse(self.code, "gives te() an argument other than a spline basis")
            width *= max(w, 1)
        if set(kw.arg for kw in node.keywords) - {"constraints"}:
            _refuse(self.code, "passes te() unknown arguments")
        self.check_width(width, "te")

    def check_width(self, width: int, name: str):
        if self.max_width is not None and width > self.max_width:
            _refuse(
                self.code,
                f"asks {name}() for {width} columns, more than the {self.max_width} of the "
                "saved design",
            )


def check_code(code: str, max_width: int | None = None) -> set[str]:
    """Raise unless ``code`` only uses data names, arithmetic and whitelisted functions.

    Constant subexpressions are computed within bounds (integers within 64 bits, no
    arithmetic on strings or sequences), so evaluating the code on data costs time and memory
    in proportion to the data.  With ``max_width``, spline bases (``bs``, ``cr``, ``cc``,
    ``te``) may ask for at most that many columns.

    Returns the data variables the code refers to.
    """
    if not isinstance(code, str):
        raise PersistenceError(f"formula term {code!r} is not a string")
    if len(code) > MAX_CODE_CHARS:
        raise PersistenceError(
            f"formula term {code[:60]!r}... has {len(code)} characters; a saved model allows "
            f"{MAX_CODE_CHARS}"
        )
    try:
        tree = ast.parse(code, mode="eval")
    except (SyntaxError, ValueError):
        raise PersistenceError(f"formula term {code!r} is not a valid expression") from None
    except (RecursionError, MemoryError):
        raise PersistenceError(f"formula term {code[:60]!r}... is nested too deeply") from None
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
    try:
        _Checker(code, max_width).value(tree.body)
    except RecursionError:
        raise PersistenceError(f"formula term {code[:60]!r}... is nested too deeply") from None
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
            isinstance(v, int) and not -_INT_LIMIT < v < _INT_LIMIT
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


def _formula_terms(tree) -> int:
    """An upper bound on the terms patsy's formula language makes of a parsed formula (before
    it drops duplicates), computed without expanding anything."""
    kind = tree.type
    n = [_formula_terms(arg) for arg in tree.args]
    if not n:
        return 1
    if len(n) == 1:  # unary + and -, or a one-sided ~
        return n[0]
    a, b = n
    if kind == "~":
        return a + b
    if kind == "+":
        return a + b
    if kind == "-":
        return a
    if kind == ":":
        return a * b
    if kind == "*":
        return a + b + a * b
    if kind == "/":
        return a + b
    if kind == "**":
        # (x)**k is x + x:x + ... up to k factors (patsy stops at the number of terms of x).
        total, power = a, a
        for _ in range(1, min(_int_token(tree.args[1]), a)):
            power *= a
            total += power
            if total > MAX_TERMS:
                break
        return total
    return a + b


def _int_token(node) -> int:
    try:
        return max(int(node.token.extra), 1)
    except (AttributeError, TypeError, ValueError):
        return 1


def _parse_formula(formula, p: int):
    """patsy's model description of a saved formula, after bounding what it may expand to."""
    import patsy
    from patsy.parse_formula import parse_formula

    if not isinstance(formula, str) or "~" not in formula:
        raise PersistenceError("saved formula is missing or malformed")
    if len(formula) > MAX_FORMULA_CHARS:
        raise PersistenceError(
            f"saved formula has {len(formula)} characters; a saved model allows "
            f"{MAX_FORMULA_CHARS}"
        )
    try:
        n_terms = _formula_terms(parse_formula(formula))
    except RecursionError:
        raise PersistenceError("saved formula is nested too deeply") from None
    except Exception as exc:  # patsy's parser: any failure means a malformed formula
        raise PersistenceError(f"cannot parse the saved formula {formula!r}: {exc}") from None
    if n_terms > MAX_TERMS:
        raise PersistenceError(
            f"saved formula {formula[:80]!r} expands to up to {n_terms} terms; a saved model "
            f"allows {MAX_TERMS}"
        )
    try:
        full = patsy.ModelDesc.from_formula(formula)
    except RecursionError:
        raise PersistenceError("saved formula is nested too deeply") from None
    except Exception as exc:
        raise PersistenceError(f"cannot parse the saved formula {formula!r}: {exc}") from None
    desc = patsy.ModelDesc([], full.rhs_termlist)
    if len(desc.rhs_termlist) > p + 1:
        raise PersistenceError(
            f"saved formula {formula[:80]!r} has {len(desc.rhs_termlist)} terms for {p} columns"
        )
    return desc


def _safe_env():
    import patsy

    return patsy.EvalEnvironment([{"np": np, "numpy": np}])


def rebuild_design(state: dict, names: tuple, arrays) -> object:
    """Design rebuilt from :func:`design_state` output (with its transform arrays).

    Everything that sizes the rebuild is checked before patsy evaluates anything: the formula's
    length and the number of terms it expands to, each factor's code (:func:`check_code`, with
    spline bases no wider than the design), the number of factors and of saved levels (at
    most one more than the design's columns), and the cells of the synthetic frame.
    """
    import patsy

    factors = state["factors"]
    formula = state["formula"]
    p = len(names)
    if not isinstance(factors, list) or len(factors) > MAX_FACTORS:
        raise PersistenceError(
            f"the saved design has more than {MAX_FACTORS} factors or a malformed factor list"
        )
    desc = _parse_formula(formula, p)
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
