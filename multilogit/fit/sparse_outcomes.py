"""Separation of outcomes with very few rows, one small linear program each.

At hundreds of outcomes some have a handful of rows, and such an outcome is often separated
from all others by itself: its rows lie on one side of a hyperplane through the origin of the
design space (with an intercept: an affine hyperplane) and every other row on the other side.
Then :math:`D` with :math:`d_k = d` and every other equation 0 is a recession direction
(:mod:`~multilogit.fit.separation`): :math:`a_{ik}(D) = x_i^\\top d \\ge 0` on the outcome's
rows and :math:`-x_i^\\top d \\ge 0` on the others' pairs with it.  For the reference outcome
the direction moves every equation by :math:`-d`.

Finding it needs a program in :math:`p` unknowns, one constraint per row,

.. math::

    \\max_{d, s}\\ \\sum_{i: y_i = k} s_i - \\frac{1}{n}\\sum_{i: y_i \\ne k} x_i^\\top d
    \\quad\\text{s.t.}\\quad 0 \\le s_i \\le x_i^\\top d\\ (y_i = k),\\quad
    x_i^\\top d \\le 0\\ (y_i \\ne k),\\quad |d| \\le 1,

positive exactly when such a direction has a strict pair.  It is the check the separation
monitor runs first at many outcomes, where the program over all :math:`(J p)` coefficients
and all pairs of rows is too large to settle quickly.  It is sufficient, not necessary: an
outcome separated only jointly with others is left to the full analysis.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize

__all__ = ["FEW_ROWS", "few_rows_separation"]

#: Outcomes with at most this many rows (of positive weight) are checked one by one.
FEW_ROWS = 5
#: Margins (unit-column coordinates, |d| <= 1) at most this are 0.
_TOL = 1e-9


def _rows(backend):
    def chunk(c):
        keep = np.asarray(c.weights) > 0
        return np.asarray(c.X)[keep], np.asarray(c.y)[keep], np.asarray(c.weights)[keep]

    parts = backend.reduce(chunk, frames=False)
    X = np.vstack([part[0] for part in parts])
    y = np.concatenate([part[1] for part in parts])
    w = np.concatenate([part[2] for part in parts])
    return X, y, w


def _direction(X: np.ndarray, own: np.ndarray) -> np.ndarray | None:
    """The program of the module docstring for the rows ``own``; ``d`` (unit-column
    coordinates) or ``None`` when no direction has a strict pair."""
    p = X.shape[1]
    A, B = X[own], X[~own]
    m = len(A)
    c = np.r_[B.sum(axis=0) / max(len(B), 1), -np.ones(m)]
    # s_i - x_i'd <= 0 on the outcome's rows; x_i'd <= 0 on the others'.
    A_ub = np.block([[-A, np.eye(m)], [B, np.zeros((len(B), m))]])
    bounds = [(-1.0, 1.0)] * p + [(0.0, 1.0)] * m
    res = optimize.linprog(c, A_ub=A_ub, b_ub=np.zeros(len(A_ub)), bounds=bounds, method="highs")
    if res.status != 0 or res.x is None or not -res.fun > _TOL:
        return None
    return res.x[:p]


def few_rows_separation(backend, max_rows: int = FEW_ROWS):
    """Outcomes with at most ``max_rows`` rows that are separated from all others by
    themselves, with a recession direction of the log-likelihood that drives them.

    Parameters
    ----------
    backend :
        The model's rows (read in one pass; they are held in memory for the programs).
    max_rows : int

    Returns
    -------
    found : list of (outcome, rows, strict)
        Outcome as its equation index (``-1`` the reference), its number of rows, and which
        rows (of all, positive weight) the direction makes strict.
    D : ndarray, shape (J, p)
        The sum of the outcomes' directions (a recession direction), in the backend's
        coordinates, largest component 1; ``None`` when nothing is found.
    counts : tuple
        ``(nobs, n_separated, n_perfect)``, weighted.
    """
    J, p = backend.J, backend.p
    X, y, w = _rows(backend)
    codes, sizes = np.unique(y, return_counts=True)
    few = [(int(k), int(m)) for k, m in zip(codes, sizes, strict=True) if m <= max_rows]
    if not few or len(X) == 0:
        return [], None, (float(w.sum()), 0.0, 0.0)
    amax = np.max(np.abs(X), axis=0)
    scale = np.where(amax > 0, amax, 1.0)
    U = X / scale
    D = np.zeros((J, p))
    found = []
    strict_rows = np.zeros(len(X), dtype=bool)
    perfect = np.zeros(len(X), dtype=bool)
    for k, m in few:
        own = y == k
        d = _direction(U, own)
        if d is None:
            continue
        margin = U @ d
        strict = np.where(own, margin > _TOL, margin < -_TOL)
        strict_rows |= strict
        perfect |= own & (margin > _TOL)
        d = d / scale  # back to the design's coordinates
        if k >= 0:
            D[k] += d
        else:
            D -= d
        found.append((k, m, strict))
    if not found:
        return [], None, (float(w.sum()), 0.0, 0.0)
    D /= np.abs(D).max()
    D = np.where(np.abs(D) > 1e-10, D, 0.0)
    counts = (float(w.sum()), float(w[strict_rows].sum()), float(w[perfect].sum()))
    return found, D, counts
