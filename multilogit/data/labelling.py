"""Labels of design terms and outcomes in tables and plots.

patsy names a design column after the code that made it: ``C(ses, Treatment('low'))[T.middle]``
is the dummy of level ``middle`` of ``ses``.  :func:`short_term_name` turns such names into
what a reader wants to see (``ses: middle``), and :class:`TermLabels` applies a user's
``labels={...}`` mapping on top of that, checking every key against the names it can label.

The rules of :func:`short_term_name`, one factor of a term at a time (factors of an
interaction are joined by ``" × "``):

======================================  =========================
patsy name                              short name
======================================  =========================
``ses[T.middle]``                       ``ses: middle``
``C(ses, Treatment('low'))[T.middle]``  ``ses: middle``
``C(ses, Sum)[S.middle]``               ``ses: middle``
``C(x, Poly).Linear``                   ``x: Linear``
``ses[low]`` (full-rank coding)         ``ses: low``
``Q('read score')``                     ``read score``
``I(math ** 2)``                        ``math ** 2``
``female[T.male]:write``                ``female: male × write``
``np.log(fare)``, ``bs(x, df=3)[1]``    unchanged
======================================  =========================

A name the rules do not recognise is kept as it is; so is a name whose short form would
coincide with another term's (see :class:`TermLabels`).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping

from ..exceptions import DataError
from .labels import level_label

__all__ = [
    "short_term_name",
    "term_factors",
    "TermLabels",
    "outcome_labels_map",
    "relabel_index",
    "INTERACTION",
]

#: Joins the factors of an interaction in a short name.
INTERACTION = " × "

# The contrast codings of patsy prefix the level in the column name: Treatment "T.",
# Sum "S.", Diff "D.", Helmert "H."; Poly names its columns ".Linear", ".Quadratic", ...
_LEVEL_PREFIXES = ("T.", "S.", "D.", "H.", ".")
_POLY = re.compile(r"(\.[A-Za-z]+|\^\d+)$")


def _split_top(text: str, sep: str) -> list[str]:
    """``text`` split at every ``sep`` outside brackets, parentheses and quotes."""
    parts, depth, quote, start = [], 0, None, 0
    i = 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    parts.append(text[start:])
    return parts


def _level_bracket(piece: str) -> int | None:
    """Index of the ``[`` that opens the level suffix of ``piece`` (``ses[T.a]``), or None."""
    if not piece.endswith("]"):
        return None
    depth, quote = 0, None
    for i, ch in enumerate(piece):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "[" and depth == 0:
            return i if i > 0 else None
    return None


def _call(expr: str) -> tuple[str, list[ast.expr]] | None:
    """``("C", [args])`` when ``expr`` is a call of a plain name, else None."""
    try:
        node = ast.parse(expr.strip(), mode="eval").body
    except SyntaxError:
        return None
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return node.func.id, list(node.args)
    return None


def _variable(expr: str) -> str | None:
    """The variable a factor's code names (``C(ses, Sum)`` -> ``ses``, ``Q('a b')`` -> ``a b``,
    ``I(x ** 2)`` -> ``x ** 2``, ``ses`` -> ``ses``), or None when it is a transform we keep
    whole (``np.log(x)``, ``bs(x, df=3)``)."""
    expr = expr.strip()
    if expr.isidentifier():
        return expr
    call = _call(expr)
    if call is None:
        return None
    func, args = call
    if func == "Q" and len(args) == 1 and isinstance(args[0], ast.Constant):
        return str(args[0].value)
    if func == "C" and args:
        return _variable(ast.unparse(args[0]))
    if func == "I" and len(args) == 1:
        # The source text, not ast.unparse: keep the user's spelling (patsy already spaced it).
        return expr[expr.index("(") + 1 : expr.rindex(")")].strip()
    return None


def term_factors(name: str) -> list[tuple[str, str | None]] | None:
    """The factors of a design column name as ``(variable, level)`` pairs (``level`` None for a
    numeric factor), or None when some factor is not of a form :func:`short_term_name` knows.

    >>> term_factors("C(ses, Treatment('low'))[T.middle]:write")
    [('ses', 'middle'), ('write', None)]
    """
    out = []
    for piece in _split_top(str(name), ":"):
        cut = _level_bracket(piece)
        poly = _POLY.search(piece)
        if cut is None and poly is not None and piece[: poly.start()].endswith(")"):
            # Poly coding names its columns without brackets: C(x, Poly).Linear, ...^4.
            var = _variable(piece[: poly.start()])
            level = poly.group(0).lstrip(".")
        elif cut is None:
            var = _variable(piece)
            level = None
        else:
            var = _variable(piece[:cut])
            level = piece[cut + 1 : -1]
            for prefix in _LEVEL_PREFIXES:
                if level.startswith(prefix) and len(level) > len(prefix):
                    level = level[len(prefix) :]
                    break
        if var is None:
            return None
        out.append((var, level))
    return out


def _join(factors, variable_labels: Mapping[str, str] | None = None) -> str:
    labels = variable_labels or {}
    return INTERACTION.join(
        labels.get(var, var) if level is None else f"{labels.get(var, var)}: {level}"
        for var, level in factors
    )


def short_term_name(name: str) -> str:
    """A design column's name as a reader wants it: ``C(ses, Treatment('low'))[T.middle]`` ->
    ``ses: middle``; see the module docstring for every rule.  Names it does not recognise
    (``np.log(fare)``, spline bases) are returned unchanged.
    """
    factors = term_factors(name)
    return str(name) if factors is None else _join(factors)


class TermLabels:
    """How the design terms of one or several models are printed.

    Parameters
    ----------
    names : iterable of str
        Every term name that may be labelled (for several models, the union of their terms).
    labels : mapping, optional
        ``{key: label}``.  A key is a term name (``"C(ses)[T.middle]"``), its short name
        (``"ses: middle"``), or a variable (``"ses"``, or one of ``variables``).  A label for a
        variable names it in every short name it appears in (``{"ses": "SES"}`` gives
        ``SES: middle``) and on plot axes; a label for a term replaces that term's name.  An
        unknown key is a :class:`~multilogit.exceptions.DataError` listing the valid ones.
    short : bool
        Print terms without a label of their own by their short names.  Short names that
        would coincide for two different terms are not used for either.
    variables : iterable of str, optional
        Further variable names that may be labelled (a plot's axes: the data columns of a
        formula, e.g. ``fare`` in ``np.log(fare)``).
    """

    def __init__(
        self,
        names: Iterable[str],
        labels: Mapping[str, str] | None = None,
        short: bool = False,
        variables: Iterable[str] = (),
    ):
        self.names = list(dict.fromkeys(str(n) for n in names))
        self._factors = {n: term_factors(n) for n in self.names}
        shorts = {n: _join(f) for n, f in self._factors.items() if f is not None}
        counts: dict[str, int] = {}
        for s in shorts.values():
            counts[s] = counts.get(s, 0) + 1
        # A short name two terms share would merge them in a table: keep the full names.
        self._short = {n: s for n, s in shorts.items() if counts[s] == 1}
        self.variables = list(
            dict.fromkeys(
                [v for f in self._factors.values() if f for v, _ in f]
                + [str(v) for v in variables]
            )
        )
        self.short = bool(short)
        labels = dict(labels or {})
        by_short = {s: n for n, s in self._short.items()}
        self._term_labels: dict[str, str] = {}
        self._variable_labels: dict[str, str] = {}
        unknown = []
        for key, label in labels.items():
            if not isinstance(label, str):
                raise DataError(f"labels: the label of {key!r} must be a string; got {label!r}")
            key = str(key)
            if key in self._factors or key in self.variables:
                # A name both a term and a variable ("write") labels the term and its
                # appearances in interactions alike.
                if key in self._factors:
                    self._term_labels[key] = label
                if key in self.variables:
                    self._variable_labels[key] = label
            elif key in by_short:
                self._term_labels[by_short[key]] = label
            else:
                unknown.append(key)
        if unknown:
            extra = [v for v in self.variables if v not in self._factors]
            raise DataError(
                f"labels: {', '.join(map(repr, unknown))} "
                + (
                    "is not a term or variable"
                    if len(unknown) == 1
                    else "are not terms or variables"
                )
                + f" of the model(s); valid terms: {', '.join(self.names)}"
                + (f"; variables: {', '.join(extra)}" if extra else "")
            )

    def __call__(self, name: str) -> str:
        """The printed label of term ``name``."""
        name = str(name)
        if name in self._term_labels:
            return self._term_labels[name]
        factors = self._factors.get(name)
        if factors is None:
            return name
        if any(v in self._variable_labels for v, _ in factors):
            return _join(factors, self._variable_labels)
        if self.short:
            return self._short.get(name, name)
        return name

    def variable(self, name: str) -> str:
        """The printed label of a variable (an axis of a plot)."""
        name = str(name)
        if name in self._variable_labels:
            return self._variable_labels[name]
        return self._term_labels.get(name, name)


def outcome_labels_map(outcomes: Iterable, outcome_labels: Mapping | None = None) -> dict:
    """``{outcome level: printed label}`` for ``outcomes``.

    A key of ``outcome_labels`` is an outcome level or its printed form (``1`` or ``"1"`` for
    the level ``1.0``); levels without a key print as ``level_label``.
    An unknown key is a :class:`~multilogit.exceptions.DataError` listing the outcomes.
    """
    outcomes = list(outcomes)
    out = {o: level_label(o) for o in outcomes}
    by_printed = {level_label(o): o for o in outcomes}
    unknown = []
    for key, label in dict(outcome_labels or {}).items():
        if not isinstance(label, str):
            raise DataError(
                f"outcome_labels: the label of {key!r} must be a string; got {label!r}"
            )
        if key in out and not isinstance(key, bool):
            out[key] = label
        elif str(key) in by_printed:
            out[by_printed[str(key)]] = label
        else:
            unknown.append(key)
    if unknown:
        raise DataError(
            f"outcome_labels: {', '.join(map(repr, unknown))} not an outcome; valid outcomes: "
            f"{', '.join(level_label(o) for o in outcomes)}"
        )
    return out


def relabel_index(
    index,
    terms: Iterable[str],
    outcomes: Iterable,
    labels: Mapping[str, str] | None = None,
    outcome_labels: Mapping | None = None,
    short: bool = False,
):
    """A table index ``(outcome, dimension...)`` with printed labels.

    The first level holds outcomes (printed by :func:`outcome_labels_map`); a level named
    ``term`` holds design terms (printed by :class:`TermLabels`); any other level is a variable
    whose name is printed by :meth:`TermLabels.variable` and whose values stay as they are.

    Parameters
    ----------
    index : pandas.MultiIndex or Index
    terms : iterable of str
        The model's term names (what ``labels`` may name, with their variables).
    outcomes : iterable
        The model's outcome levels.
    labels, outcome_labels, short
        As for :class:`TermLabels` and :func:`outcome_labels_map`.

    Returns
    -------
    pandas.MultiIndex or Index
        ``index`` itself when nothing is to be relabelled.
    """
    import pandas as pd

    if labels is None and outcome_labels is None and not short:
        return index
    names = [str(n) for n in index.names]
    variables = [n for n in names[1:] if n != "term"]
    term_labels = TermLabels(terms, labels, short=short, variables=variables)
    outcome_map = outcome_labels_map(outcomes, outcome_labels)
    frame = index.to_frame(index=False)
    frame.columns = names
    frame[names[0]] = [outcome_map.get(o, level_label(o)) for o in frame[names[0]]]
    if "term" in names[1:]:
        frame["term"] = [term_labels(t) for t in frame["term"]]
    frame.columns = [names[0]] + [n if n == "term" else term_labels.variable(n) for n in names[1:]]
    if len(names) == 1:
        return pd.Index(frame.iloc[:, 0], name=frame.columns[0])
    return pd.MultiIndex.from_frame(frame)
