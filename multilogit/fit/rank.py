"""Rank checks run before a fit: parameter count and aliased (collinear) columns.

A multinomial logit with a rank-deficient design has no unique maximum: the information matrix is
singular and Newton-Raphson either fails inside a Cholesky factorisation or wanders along the null
space.  We find the aliased columns up front, as R's ``lm``/``glm`` do, and either name them in a
:class:`~multilogit.exceptions.DataError` or, with ``fit(drop_collinear=True)``, fit without them
and report their coefficients as NaN.
"""

from __future__ import annotations

import copy

import numpy as np
from scipy import linalg

from ..data.design import Design, ModelData
from ..engine import threads
from ..engine.scaled import column_absmax
from ..exceptions import DataError

__all__ = [
    "ALIAS_TOL",
    "aliased_columns",
    "check_design",
    "constant_in_span",
    "rank_message",
    "subset_model",
]

#: Relative tolerance of the rank test: a column is aliased when the part of it orthogonal to
#: the earlier columns has norm below ``ALIAS_TOL`` times its own norm (R's ``lm`` default).
ALIAS_TOL = 1e-7


def aliased_columns(X: np.ndarray, tol: float = ALIAS_TOL, amax=None) -> np.ndarray:
    """Columns of ``X`` that are linear combinations of earlier columns.

    Parameters
    ----------
    X : ndarray, shape (n, p)
    tol : float
        Column ``k`` is aliased when the part of it orthogonal to the earlier non-aliased columns
        has norm below ``tol`` times its own norm, so the earlier of two identical columns is
        kept, as in R.  All-zero columns are aliased.
    amax : ndarray, shape (p,), optional
        Each column's largest magnitude, when the caller knows it.

    Returns
    -------
    ndarray of bool, shape (p,)
    """
    X = np.asarray(X, dtype=np.float64)
    n, p = X.shape
    amax = column_absmax(X) if amax is None else np.asarray(amax, dtype=np.float64)
    zero = ~(amax > 0)
    # Fast path, without copying X: the Cholesky factor of the Gram matrix of unit-norm columns
    # has the diagonal of R.  When every entry is comfortably away from zero the design has full
    # rank and the O(n p^2) orthogonalisation below is not needed.
    if not zero.any() and n >= p:
        runs = threads.row_runs(n)
        with np.errstate(over="ignore", invalid="ignore"):
            # May overflow for values near 1e300: then take the slow path.
            parts = threads.map_runs(lambda k: X[runs[k]].T @ X[runs[k]], len(runs))
            G = sum(parts[1:], parts[0])
        d = np.sqrt(np.diag(G))
        if np.all(np.isfinite(G)) and np.all(d > 0):
            try:
                L = linalg.cholesky(G / np.outer(d, d), lower=True, check_finite=False)
                if np.all(np.abs(np.diag(L)) > 1e-3):
                    return np.zeros(p, dtype=bool)
            except linalg.LinAlgError:
                pass
    # Divide by the largest magnitude first: squares of values near 1e300 would overflow.
    X = X / np.where(zero, 1.0, amax)
    norms = np.sqrt(np.einsum("ij,ij->j", X, X))
    zero |= ~(norms > 0)
    unit = X / np.where(zero, 1.0, norms)
    # Gram-Schmidt in column order, orthogonalising twice ("twice is enough"), with aliased
    # columns left out of the basis: R's limited pivoting.  A plain QR would spend a basis vector
    # on the rounding residue of an aliased column and could then flag a later, independent
    # column.
    Q = np.empty((n, min(n, p)))
    r = 0
    out = zero.copy()
    for k in np.flatnonzero(~zero):
        v = unit[:, k].copy()
        for _ in range(2):
            v -= Q[:, :r] @ (Q[:, :r].T @ v)
        nv = float(np.sqrt(v @ v))
        if nv < tol or r == Q.shape[1]:
            out[k] = True
            continue
        Q[:, r] = v / nv
        r += 1
    return out


def constant_in_span(X: np.ndarray, col_range=None, tol: float = ALIAS_TOL) -> bool:
    """Whether a constant is a linear combination of the columns of ``X``.

    As statsmodels' ``k_constant``: a constant nonzero column, or columns that add up to a
    constant, such as a full set of dummies (``y ~ 0 + C(f) + x``).

    Parameters
    ----------
    X : ndarray, shape (n, p)
    col_range : tuple of ndarray, optional
        Each column's ``(lo, hi)``, when the caller knows it.
    tol : float
        The ones vector is in the span when the part of it orthogonal to the columns has norm
        below ``tol`` times its own, the tolerance of :func:`aliased_columns`.

    Returns
    -------
    bool
    """
    X = np.asarray(X, dtype=np.float64)
    n, p = X.shape
    if n == 0 or p == 0:
        return False
    if col_range is None:
        amax = column_absmax(X)
        lo, hi = X.min(axis=0), X.max(axis=0)
    else:
        lo, hi = (np.asarray(a, dtype=np.float64) for a in col_range)
        amax = np.maximum(hi, -lo)
    if np.any((lo == hi) & (lo != 0)):
        return True
    cols = np.flatnonzero(amax > 0)
    if not len(cols):
        return False
    # Fast paths through the Gram matrix of [X, 1], without copying X: clearly nonzero pivots
    # of its Cholesky factor rule the constant out, and an explicit least-squares
    # combination whose residual, computed from the rows, is within tol proves it in.
    runs = threads.row_runs(n)
    d = amax[cols]

    def gram(k):
        Xr = X[runs[k]]
        return Xr.T @ Xr, Xr.sum(axis=0)

    with np.errstate(over="ignore", invalid="ignore"):
        parts = threads.map_runs(gram, len(runs))
        G = sum((g for g, _ in parts[1:]), parts[0][0])[np.ix_(cols, cols)] / np.outer(d, d)
        s = sum((v for _, v in parts[1:]), parts[0][1])[cols] / d
    if np.all(np.isfinite(G)) and np.all(np.isfinite(s)):
        q = np.sqrt(np.diag(G))
        c = s / q / np.sqrt(n)
        Ga = np.block([[G / np.outer(q, q), c[:, None]], [c[None, :], np.ones((1, 1))]])
        try:
            # The last pivot is trusted only when the columns themselves are well conditioned.
            L = np.abs(np.diag(linalg.cholesky(Ga, lower=True, check_finite=False)))
            if np.all(L > 1e-3):
                return False
        except linalg.LinAlgError:
            pass
        b = np.zeros(p)
        b[cols] = linalg.lstsq(G, s, cond=1e-12, check_finite=False)[0] / d

        def resid(k):
            r = 1.0 - X[runs[k]] @ b
            return float(r @ r)

        rss = sum(threads.map_runs(resid, len(runs)))
        if np.sqrt(rss / n) < tol:
            return True
    # Undecided (near-collinear columns, or overflow): the exact test of aliased_columns.
    aug = np.column_stack([X[:, cols] / d, np.ones(n)])
    return bool(aliased_columns(aug, tol=tol)[-1])


def _alias_partners(X, aliased, names):
    """For each aliased column, the kept columns it is (numerically) a combination of."""
    kept = np.flatnonzero(~aliased)
    out = {}
    if len(kept) == 0:
        return out
    Xk = X[:, kept]
    scale = np.maximum(np.abs(Xk).max(axis=0), 1e-300)
    for k in np.flatnonzero(aliased):
        if not np.any(X[:, k]):
            out[names[k]] = None
            continue
        coef = np.linalg.lstsq(Xk / scale, X[:, k], rcond=None)[0]
        big = np.abs(coef) > 1e-8 * max(np.abs(coef).max(), 1e-300)
        out[names[k]] = [names[j] for j in kept[big]]
    return out


def rank_message(X: np.ndarray, aliased: np.ndarray, names) -> str:
    """Explain which columns are aliased, and with what."""
    names = [str(n) for n in names]
    parts = []
    for col, partners in _alias_partners(X, aliased, names).items():
        if partners is None:
            parts.append(f"{col!r} is all zero")
        else:
            parts.append(f"{col!r} is a linear combination of " + ", ".join(map(repr, partners)))
    p = len(names)
    return (
        f"the design matrix is rank deficient (rank {p - int(aliased.sum())} < {p} columns): "
        + "; ".join(parts)
        + ". Remove the aliased column(s) or pass fit(drop_collinear=True) to drop them "
        "(their coefficients are then reported as NaN)"
    )


def check_parameter_count(n_rows: int, J: int, p: int, what: str = "") -> None:
    """Raise :class:`DataError` when the model has more parameters than observations."""
    if J * p > n_rows:
        raise DataError(
            f"the model has {J * p} parameters ({J} outcome equations x {p} terms{what}) but "
            f"only {n_rows} observations; use fewer terms or more data"
        )


def check_design(model, drop_collinear: bool) -> np.ndarray | None:
    """Checks run by ``fit``: parameter count and rank.

    Returns
    -------
    ndarray of bool or None
        ``None`` when the design is fine; otherwise (only with ``drop_collinear=True``) the mask
        of aliased columns to drop.

    Raises
    ------
    DataError
        More parameters than observations, or a rank-deficient design without
        ``drop_collinear``.
    """
    X = model.exog
    # Rows with zero (likelihood) weight do not inform the fit: a dummy that is zero on every
    # weighted row is aliased.
    w = getattr(model, "_lik_weights", None)
    amax = None
    if w is not None and not np.all(w > 0):
        X = X[w > 0]
    elif len(X):
        amax = model._column_absmax()
    n, p = X.shape
    if not drop_collinear:
        check_parameter_count(n, model.J, p)
    aliased = aliased_columns(X, amax=amax)
    if not aliased.any():
        return None
    if not drop_collinear:
        raise DataError(rank_message(X, aliased, model.exog_names))
    if aliased.all():
        raise DataError("every column of the design is zero: nothing to fit")
    check_parameter_count(n, model.J, int((~aliased).sum()), " after dropping aliased ones")
    return aliased


def subset_model(model, keep: np.ndarray):
    """A shallow copy of ``model`` with only the columns ``keep`` (used to fit without aliased
    columns).  Everything else (rows, outcome, weights) is shared with ``model``."""
    keep = np.asarray(keep, dtype=bool)
    sub = copy.copy(model)
    X = np.ascontiguousarray(model.exog[:, keep])
    X.setflags(write=False)
    names = tuple(n for n, k in zip(model.exog_names, keep, strict=True) if k)
    md = model._data
    design = Design(names)
    sub._data = ModelData(X, md.codes, md.outcome, design, md.row_labels, md.n_dropped)
    sub.exog = X
    sub.design = design
    return sub
