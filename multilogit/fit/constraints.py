"""Linear equality constraints of a fit, ``fit(constraints=...)``: parsed, reduced, recorded.

Constraints are written as in :meth:`~multilogit.MultinomialLogitResults.wald_test`
(``"general:write = vocation:write"``, ``"vocation:female = 0"``, a bare term for every
equation, see :func:`multilogit.inference.hypothesis.constraint_matrix`) or given as a pair
``(R, q)`` meaning :math:`R\\beta = q` for the flat outcome-major :math:`\\beta`.  As Stata's
``constraint``, a constraint that is a linear combination of those before it is dropped with a
note; constraints that contradict each other are an error.  What is kept is recorded in the
fit options (plain lists, so that a saved fit and every refit carry it) as

``{"R": [[...], ...], "q": [...], "labels": [...], "dropped": [...]}``

and solved by Newton in the null-space coordinates of
:class:`~multilogit.engine.constrained.ConstrainedBackend`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..engine.constrained import independent_rows, null_space, particular_solution
from ..exceptions import DataError

__all__ = ["ConstraintSet", "parse_constraints", "recorded_constraints"]

# A redundant constraint must hold at the solution of the others to this relative accuracy;
# otherwise the set is inconsistent.
_CONSISTENCY_TOL = 1e-9


@dataclass(frozen=True)
class ConstraintSet:
    """Linearly independent constraints :math:`R\\beta = q` and what was dropped.

    Attributes
    ----------
    R : ndarray, shape (r, J p)
        Full row rank.
    q : ndarray, shape (r,)
    labels : tuple of str
        One per row of ``R``: the constraint as written (or ``"R row i"``).
    dropped : tuple of str
        Constraints dropped as linear combinations of the others.
    """

    R: np.ndarray
    q: np.ndarray
    labels: tuple
    dropped: tuple = ()

    @property
    def rank(self) -> int:
        return int(self.R.shape[0])

    def basis(self) -> np.ndarray:
        """Orthonormal basis of the null space of ``R`` (columns)."""
        return null_space(self.R)

    def as_dict(self) -> dict:
        """The form recorded in the fit options (JSON-ready)."""
        return {
            "R": self.R.tolist(),
            "q": self.q.tolist(),
            "labels": list(self.labels),
            "dropped": list(self.dropped),
        }

    @classmethod
    def from_dict(cls, d: dict) -> ConstraintSet:
        R = np.atleast_2d(np.asarray(d["R"], dtype=np.float64))
        return cls(
            R, np.asarray(d["q"], dtype=np.float64).ravel(), tuple(d["labels"]),
            tuple(d.get("dropped", ())),
        )  # fmt: skip


def recorded_constraints(options: dict | None) -> ConstraintSet | None:
    """The constraints recorded in a fit's options, or ``None``."""
    d = None if options is None else options.get("constraints")
    return None if d is None else ConstraintSet.from_dict(d)


def _matrix_form(model, constraints):
    """``(R, q, labels)`` of the constraints as given."""
    k = model.J * model.k_exog
    if isinstance(constraints, dict):
        if "R" not in constraints or "q" not in constraints:
            raise DataError("constraints given as a dict need the keys 'R' and 'q'")
        R = np.atleast_2d(np.asarray(constraints["R"], dtype=np.float64))
        labels = list(constraints.get("labels") or [f"R row {i + 1}" for i in range(len(R))])
        # Constraints dropped as redundant when they were recorded stay in the note.
        return R, np.asarray(constraints["q"], dtype=np.float64).ravel(), labels
    if isinstance(constraints, str) or (
        isinstance(constraints, list | tuple)
        and len(constraints) > 0
        and all(isinstance(c, str) for c in constraints)
    ):
        # Parsing needs patsy, imported at the first string constraint only.
        from ..inference.hypothesis import constraint_matrix

        items = [constraints] if isinstance(constraints, str) else list(constraints)
        rows, qs, labels = [], [], []
        for text in items:
            R_i, q_i = constraint_matrix(model, [text])
            rows.append(R_i)
            qs.append(q_i)
            if len(R_i) == 1:
                labels.append(text)
            else:
                labels.extend(f"{text} ({i + 1} of {len(R_i)})" for i in range(len(R_i)))
        return np.vstack(rows), np.concatenate(qs), labels
    q = None
    if isinstance(constraints, tuple) and len(constraints) == 2:
        constraints, q = constraints
    if isinstance(constraints, pd.DataFrame):
        constraints = constraints.to_numpy()
    try:
        R = np.atleast_2d(np.asarray(constraints, dtype=np.float64))
        q = np.zeros(R.shape[0]) if q is None else np.asarray(q, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise DataError(
            "constraints must be a string, a list of strings or a pair (R, q) of a numeric "
            f"matrix with {k} columns and its right-hand side"
        ) from None
    return R, q, [f"R row {i + 1}" for i in range(R.shape[0])]


def parse_constraints(model, constraints) -> ConstraintSet | None:
    """The constraints of ``fit(constraints=...)`` for ``model``, checked and reduced.

    Parameters
    ----------
    model : MultinomialLogit
    constraints : str, list of str, (R, q), R, dict or None
        See the module docstring; ``R`` has one column per parameter in the flat
        outcome-major order of ``cov_params()``.

    Returns
    -------
    ConstraintSet or None

    Raises
    ------
    DataError
        Unparseable constraints, a matrix of the wrong shape or with non-finite entries,
        inconsistent constraints, or constraints that fix every coefficient.
    """
    if constraints is None:
        return None
    if isinstance(constraints, ConstraintSet):
        constraints = constraints.as_dict()
    R, q, labels = _matrix_form(model, constraints)
    k = model.J * model.k_exog
    if R.ndim != 2 or R.shape[1] != k or R.shape[0] == 0:
        raise DataError(
            f"the constraint matrix R must have {k} columns, one per parameter ({model.J} "
            f"outcomes x {model.k_exog} terms, outcome-major); got shape {R.shape}"
        )
    if q.shape != (R.shape[0],):
        raise DataError(f"q must have {R.shape[0]} values (one per row of R); got {q.size}")
    if not (np.all(np.isfinite(R)) and np.all(np.isfinite(q))):
        raise DataError("the constraints R and q must be finite")
    kept = independent_rows(R)
    beta0 = particular_solution(R[kept], q[kept]) if len(kept) else np.zeros(k)
    resid = R @ beta0 - q
    size = np.abs(R) @ np.abs(beta0) + np.abs(q) + 1.0
    bad = np.flatnonzero(np.abs(resid) > _CONSISTENCY_TOL * size)
    if len(bad):
        named = ", ".join(repr(labels[i]) for i in bad)
        raise DataError(
            f"the constraints are inconsistent: {named} cannot hold together with the "
            "constraints before it (no coefficients satisfy them all); remove or correct it"
        )
    if len(kept) == k:
        raise DataError(f"the constraints fix all {k} coefficients: nothing is left to estimate")
    dropped = tuple(labels[i] for i in range(len(labels)) if i not in set(kept.tolist()))
    if isinstance(constraints, dict):
        dropped = tuple(constraints.get("dropped", ())) + dropped
    return ConstraintSet(R[kept], q[kept], tuple(labels[i] for i in kept), dropped)


def constraints_note(cons: ConstraintSet) -> str:
    """The summary's footnote listing the constraints."""
    text = f"Linear constraints imposed ({cons.rank}): " + "; ".join(cons.labels) + "."
    if cons.dropped:
        text += " Dropped as redundant (implied by the others): " + "; ".join(cons.dropped) + "."
    return text
