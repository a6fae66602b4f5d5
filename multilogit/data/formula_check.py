"""What a formula saved in a results file may contain, checked without running it.

A formula is code that patsy evaluates, and a results file is untrusted input, so a saved
formula admits a whitelist only: data columns, arithmetic, patsy's built-ins (``C``, ``I``,
``Q``, ``center``, ``standardize``, ``scale``, ``bs``, ``cr``, ``cc``, ``te`` and the contrasts)
and NumPy functions called as ``np.<name>`` from a fixed list.  Within it, a short code can
still ask for gigabytes or minutes (``I('ab'*3000000000)``, ``I(10**10**7)``,
``cr(x, df=10**6)``, ``(a+b+c+d+e+f)*(g+h+i+j+k+l)*...``), so :func:`check_code` also computes
every constant subexpression within bounds (integers within 64 bits, no arithmetic on strings
or sequences) and bounds the columns a spline basis may ask for, and :func:`parse_formula`
bounds the terms the formula language may expand to before patsy expands them.  What remains
costs time and memory in proportion to the data the code is evaluated on.
"""

from __future__ import annotations

import ast
import operator

from ..exceptions import PersistenceError

__all__ = [
    "INT_LIMIT",
    "MAX_CODE_CHARS",
    "MAX_FORMULA_CHARS",
    "MAX_TERMS",
    "check_code",
    "parse_formula",
]

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
#: Terms the formula language may generate before patsy removes duplicates.
MAX_TERMS = 20_000
#: Integer constants stay within int64, so NumPy computes on them in fixed width.
INT_LIMIT = 2**63


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
    if isinstance(v, int) and not isinstance(v, bool) and not -INT_LIMIT < v < INT_LIMIT:
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

    ``max_width`` bounds the columns a spline basis may ask for (the saved design's width);
    variables named in ``text`` may hold strings.
    """

    def __init__(self, code: str, max_width: int | None, text: frozenset = frozenset()):
        self.code = code
        self.max_width = max_width
        self.text = text
        self.widths: dict[int, int] = {}

    def value(self, node):
        code = self.code
        if isinstance(node, ast.Constant):
            return _bounded_int(node.value, code)
        if isinstance(node, ast.Name):
            return _Data(node.id in self.text)
        if isinstance(node, ast.Attribute):
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
        if name == "Q":
            return _Data(str(args[0]) in self.text)
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


def check_code(code: str, max_width: int | None = None, text=frozenset()) -> set[str]:
    """Raise unless ``code`` only uses data names, arithmetic and whitelisted functions.

    Constant subexpressions are computed within bounds (integers within 64 bits, no
    arithmetic on strings or sequences), so evaluating the code on data costs time and memory
    in proportion to the data.  With ``max_width``, spline bases (``bs``, ``cr``, ``cc``,
    ``te``) may ask for at most that many columns.  Variables named in ``text`` may hold
    strings: arithmetic on values computed from them (``np.where(c, s, s) * 3000000000``
    repeats strings) is refused.

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
        _Checker(code, max_width, frozenset(text)).value(tree.body)
    except RecursionError:
        raise PersistenceError(f"formula term {code[:60]!r}... is nested too deeply") from None
    # Strings of Q("...") are column names, not free variables; the rest are data columns.
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            variables.discard(node.value.id)
    return variables


# -- the formula language -----------------------------------------------------------------------


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


def parse_formula(formula: str, p: int):
    """patsy's description of the right-hand side of a saved formula, bounded before expanding.

    Parameters
    ----------
    formula : str
        The saved formula, at most :data:`MAX_FORMULA_CHARS` long.
    p : int
        Columns of the saved design: a formula with more than ``p + 1`` terms is refused.

    Returns
    -------
    patsy.ModelDesc
        Without a left-hand side.

    Raises
    ------
    PersistenceError
        The formula is malformed, too long, nested too deeply, or expands (patsy's ``*``,
        ``:``, ``**`` and ``/``) to more than :data:`MAX_TERMS` terms.
    """
    import patsy
    from patsy.parse_formula import parse_formula as patsy_parse

    if not isinstance(formula, str) or "~" not in formula:
        raise PersistenceError("saved formula is missing or malformed")
    if len(formula) > MAX_FORMULA_CHARS:
        raise PersistenceError(
            f"saved formula has {len(formula)} characters; a saved model allows "
            f"{MAX_FORMULA_CHARS}"
        )
    try:
        n_terms = _formula_terms(patsy_parse(formula))
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
