"""Subsets of the coefficients named by terms and outcomes.

What a fit beyond the memory budget computes standard errors for (one conjugate-gradient solve
per coefficient, see :mod:`multilogit.results.budget`), and what ``summary(outcomes=...)``
shows.  A subset is every design column of ``terms`` in the equation of every outcome of
``outcomes``, as flat outcome-major positions (the order of ``cov_params()``).
"""

from __future__ import annotations

import numpy as np

from ..exceptions import DataError

__all__ = ["subset_outcomes", "subset_positions", "subset_terms"]


def _as_list(value) -> list:
    if isinstance(value, str) or not hasattr(value, "__iter__"):
        return [value]
    return list(value)


def subset_outcomes(model, outcomes) -> list[int]:
    """Equation numbers (0-based, among the non-reference outcomes) of ``outcomes``, labels of
    non-reference outcomes; all equations for ``None``.

    Raises
    ------
    DataError
        For the reference outcome (it has no equation) or an unknown label, naming the valid
        ones.
    """
    eq = list(model.eq_outcomes)
    if outcomes is None:
        return list(range(len(eq)))
    wanted = _as_list(outcomes)
    if not wanted:
        raise DataError("outcomes must name at least one outcome")
    out = []
    for label in wanted:
        if label in eq:
            out.append(eq.index(label))
            continue
        # Labels read from a file are often strings of numeric levels (and vice versa).
        as_text = [str(e) for e in eq]
        if str(label) in as_text:
            out.append(as_text.index(str(label)))
            continue
        if label == model.ref or str(label) == str(model.ref):
            raise DataError(
                f"outcome {label!r} is the reference outcome: its coefficients are 0 by the "
                "pivot and have no equation; choose among the other outcomes (or refit with "
                "another ref=)"
            )
        shown = eq if len(eq) <= 30 else [*eq[:30], "..."]
        raise DataError(f"unknown outcome {label!r}; the equations are those of {shown!r}")
    return list(dict.fromkeys(out))


def subset_terms(model, terms) -> list[int]:
    """Design-column positions of ``terms``: column names or formula terms (``"C(ses)"``,
    all its columns); all columns for ``None``."""
    names = list(model.exog_names)
    if terms is None:
        return list(range(len(names)))
    wanted = _as_list(terms)
    if not wanted:
        raise DataError("terms must name at least one term")
    slices = {}
    info = getattr(model.design, "design_info", None)
    if info is not None:
        slices = {term.name(): sl for term, sl in info.term_slices.items()}
    out: list[int] = []
    for term in wanted:
        if term in names:
            out.append(names.index(term))
        elif term in slices:
            out.extend(range(len(names))[slices[term]])
        else:
            shown = names if len(names) <= 30 else [*names[:30], "..."]
            extra = f" or formula terms {list(slices)!r}" if slices else ""
            raise DataError(f"unknown term {term!r}; the design columns are {shown!r}{extra}")
    return list(dict.fromkeys(out))


def subset_positions(model, terms=None, outcomes=None) -> np.ndarray:
    """Flat positions ``j * p + k`` of the columns ``k`` of ``terms`` in the equations ``j``
    of ``outcomes``, outcome-major."""
    p = model.k_exog
    cols = subset_terms(model, terms)
    eqs = subset_outcomes(model, outcomes)
    return np.asarray([j * p + k for j in eqs for k in cols], dtype=np.int64)
