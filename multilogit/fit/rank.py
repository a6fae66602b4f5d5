"""Rank checks run before a fit: parameter count and aliased (collinear) columns.

A multinomial logit with a rank-deficient design has no unique maximum: the information matrix is
singular and Newton-Raphson either fails inside a Cholesky factorisation or wanders along the null
space.  We find the aliased columns up front, as R's ``lm``/``glm`` do, and either name them in a
:class:`~multilogit.exceptions.DataError` or, with ``fit(drop_collinear=True)``, fit without them
and report their coefficients as NaN.
"""

from __future__ import annotations

import numpy as np

from ..engine.memory import InMemoryBackend
from ..exceptions import DataError
from ..lazy import lazy_module

# Imported at the first factorisation, not with multilogit (see multilogit.lazy).
linalg = lazy_module("scipy.linalg")

__all__ = [
    "ALIAS_TOL",
    "EXACT_TOL",
    "aliased_columns",
    "backend_aliased_columns",
    "check_design",
    "condition_number",
    "conditioning_note",
    "constant_in_span",
    "rank_message",
]

#: Relative tolerance of the rank test: a column is aliased when the part of it orthogonal to
#: the earlier columns has norm below ``ALIAS_TOL`` times its own norm (R's ``lm`` default).
ALIAS_TOL = 1e-7

#: Below this relative residual an aliased column is an exact linear combination (up to
#: rounding); above it, up to :data:`ALIAS_TOL`, it is only nearly one.  Each value of a
#: float64 column is stored to half a unit in the last place, so rounding alone leaves a
#: residual of about ``eps`` (2.2e-16) of the column's norm, and the QR factor adds a few more
#: units (exact combinations such as a full set of dummies beside the intercept measure up to
#: ~3.5e-15 on a hundred thousand rows): a residual hundreds of times larger is variation in
#: the data, such as ``x + 1e8`` has beside the intercept (about 1e-7 of its norm).
EXACT_TOL = 1e-13

# The quick rank check: a design whose columns each keep at least this fraction of their norm
# after projecting out the earlier columns has full rank and is well conditioned, without the
# orthogonalisation that tells aliased columns apart.
QUICK_TOL = 1e-3


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
    backend = InMemoryBackend(X, np.zeros(len(X), dtype=np.int64), np.ones(len(X)), 1)
    return backend_aliased_columns(backend, tol, amax)


def backend_aliased_columns(
    backend, tol: float = ALIAS_TOL, amax=None, found: dict | None = None
) -> np.ndarray:
    """:func:`aliased_columns` of the design held by ``backend`` (rows with positive weight),
    from reductions over its rows: the Gram matrix, and only when that is not clearly of full
    rank, the triangular factor of a QR decomposition (kept in ``found["R"]`` when ``found``
    is a dict)."""
    p = backend.p
    if amax is None:
        lo, hi = backend.column_range()
        amax = np.maximum(hi, -lo)
    amax = np.asarray(amax, dtype=np.float64)
    zero = ~(amax > 0)
    # Fast path: the Cholesky factor of the Gram matrix of unit-norm columns has the diagonal
    # of R.  When every entry is comfortably away from zero the design has full rank and the
    # orthogonalisation below is not needed.
    n = backend.positive_rows()
    if not zero.any() and n >= p:
        if _full_rank_on_subsample(backend, amax, n):
            return np.zeros(p, dtype=bool)
        residual = _relative_residuals(backend.gram(np.ones(p)))
        if residual is not None and np.all(residual > QUICK_TOL):
            return np.zeros(p, dtype=bool)
    # Columns of R (of X divided by each column's largest magnitude, so squares of values near
    # 1e300 cannot overflow) have the norms and angles of the design's columns: the
    # orthogonalisation runs on p x p numbers, whatever the number of rows.
    R = backend.r_factor(np.where(zero, 1.0, amax))
    if found is not None:
        found["R"] = R
    return _gram_schmidt_aliased(R, zero, tol)


def _relative_residuals(G: np.ndarray) -> np.ndarray | None:
    """Each column's residual after projecting out the earlier ones, relative to its own
    norm, from the Gram matrix ``G`` of the columns: the diagonal of the Cholesky factor of
    the Gram matrix of the unit-norm columns.  ``None`` when that factor does not exist
    (a singular or overflowed ``G``)."""
    d = np.sqrt(np.diag(G))
    # May overflow for values near 1e300: then the caller takes the slow path.
    if not (np.all(np.isfinite(G)) and np.all(d > 0)):
        return None
    try:
        L = linalg.cholesky(G / np.outer(d, d), lower=True, check_finite=False)
    except linalg.LinAlgError:
        return None
    return np.abs(np.diag(L))


def _full_rank_on_subsample(backend, amax: np.ndarray, n: int) -> bool:
    """Whether the backend's row subsample alone proves the quick check's bound on the whole
    design, saving the pass over all rows for the Gram matrix.

    Adding rows never shrinks a column's residual after projecting out the earlier columns
    (a least-squares residual over more rows), and a column's norm over the ``n`` rows with
    positive weight is at most :math:`\\sqrt{n}\\,\\max_i |x_{ik}|`.  So the whole design's
    relative residual of column ``k`` is at least the subsample's residual divided by
    :math:`\\sqrt{n}\\,\\max_i |x_{ik}|`; when that lower bound passes :data:`QUICK_TOL` for
    every column, the whole design passes the quick check.  Columns with a few values far
    beyond the rest make the bound loose: then the whole design is checked.
    """
    sample = getattr(backend, "subsample", None)
    sub = sample() if callable(sample) else None
    if sub is None:
        return False
    G = sub.gram(np.ones(backend.p))
    residual = _relative_residuals(G)
    if residual is None:
        return False
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        bound = residual * np.sqrt(np.diag(G)) / (np.sqrt(float(n)) * amax)
    return bool(np.all(bound > QUICK_TOL))


def _gram_schmidt_aliased(R: np.ndarray, zero: np.ndarray, tol: float) -> np.ndarray:
    return _gram_schmidt(R, zero, tol)[0]


def _gram_schmidt(R: np.ndarray, zero: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """The aliased mask and each column's residual: the norm of the part of it orthogonal to
    the earlier non-aliased columns, relative to its own (0 for all-zero columns)."""
    norms = np.sqrt(np.einsum("ij,ij->j", R, R))
    zero = zero | ~(norms > 0)
    unit = R / np.where(zero, 1.0, norms)
    m, p = R.shape
    # Gram-Schmidt in column order, orthogonalising twice ("twice is enough"), with aliased
    # columns left out of the basis: R's limited pivoting.  A plain QR would spend a basis vector
    # on the rounding residue of an aliased column and could then flag a later, independent
    # column.
    Q = np.empty((m, min(m, p)))
    r = 0
    out = zero.copy()
    resid = np.zeros(p)
    for k in np.flatnonzero(~zero):
        v = unit[:, k].copy()
        for _ in range(2):
            v -= Q[:, :r] @ (Q[:, :r].T @ v)
        nv = float(np.sqrt(v @ v))
        resid[k] = nv
        if nv < tol or r == Q.shape[1]:
            out[k] = True
            continue
        Q[:, r] = v / nv
        r += 1
    return out, resid


def constant_in_span(backend, tol: float = ALIAS_TOL) -> bool:
    """Whether a constant is a linear combination of the design columns held by ``backend``
    (rows with positive weight).

    As statsmodels' ``k_constant``: a constant nonzero column, or columns that add up to a
    constant, such as a full set of dummies (``y ~ 0 + C(f) + x``).  The ones vector is in the
    span when the part of it orthogonal to the columns has norm below ``tol`` times its own,
    the tolerance of :func:`aliased_columns`.
    """
    lo, hi = backend.column_range()
    if backend.p == 0 or backend.positive_rows() == 0:
        return False
    if np.any((lo == hi) & (lo != 0)):
        return True
    amax = np.maximum(hi, -lo)
    if not np.any(amax > 0):
        return False
    R = backend.r_factor(np.where(amax > 0, amax, 1.0), ones=True)
    zero = np.append(~(amax > 0), False)
    return bool(_gram_schmidt_aliased(R, zero, tol)[-1])


def _alias_partners(R, aliased, names):
    """For each aliased column, the kept columns it is (numerically) a combination of, from the
    triangular factor ``R`` of the (column-scaled) design."""
    kept = np.flatnonzero(~aliased)
    out = {}
    if len(kept) == 0:
        return out
    Rk = R[:, kept]
    for k in np.flatnonzero(aliased):
        if not np.any(R[:, k]):
            out[names[k]] = None
            continue
        coef = np.linalg.lstsq(Rk, R[:, k], rcond=None)[0]
        big = np.abs(coef) > 1e-8 * max(np.abs(coef).max(), 1e-300)
        out[names[k]] = [names[j] for j in kept[big]]
    return out


def condition_number(R: np.ndarray) -> float:
    """The 2-norm condition number of the design with unit-norm columns, from its triangular
    factor ``R`` (inf when a column is zero or the columns are dependent)."""
    norms = np.sqrt(np.einsum("ij,ij->j", R, R))
    if not np.all(norms > 0):
        return np.inf
    sv = np.linalg.svd(R / norms, compute_uv=False)
    return float(sv[0] / sv[-1]) if sv[-1] > 0 else np.inf


def rank_message(R: np.ndarray, aliased: np.ndarray, names) -> str:
    """Explain which columns are aliased, and with what (``R``: the triangular factor of the
    column-scaled design, see :meth:`~multilogit.engine.backend.Backend.r_factor`).

    A column whose residual (see :data:`EXACT_TOL`) is above the rounding level is called
    nearly collinear, with its residual and the condition number of the design, and the
    advice to centre or rescale: it is not an exact linear combination, and centring (``x -
    mean``) makes it an ordinary column.
    """
    names = [str(n) for n in names]
    zero = ~(np.sqrt(np.einsum("ij,ij->j", R, R)) > 0)
    resid = _gram_schmidt(R, zero, ALIAS_TOL)[1]
    parts, near = [], False
    for col, partners in _alias_partners(R, aliased, names).items():
        if partners is None:
            parts.append(f"{col!r} is all zero")
            continue
        with_ = ", ".join(map(repr, partners))
        k = names.index(col)
        if resid[k] > EXACT_TOL:
            near = True
            parts.append(
                f"{col!r} is nearly (not exactly) a linear combination of {with_}: the part of "
                f"it they do not explain is {resid[k]:.2g} of its norm"
            )
        else:
            parts.append(f"{col!r} is a linear combination of {with_}")
    p = len(names)
    if near:
        return (
            f"the design matrix is numerically rank deficient (rank {p - int(aliased.sum())} "
            f"< {p} columns at relative tolerance {ALIAS_TOL:g}; condition number of the "
            f"column-scaled design {condition_number(R):.2g}): "
            + "; ".join(parts)
            + ". The estimates would keep too few accurate digits: centre or rescale the "
            "column(s) (e.g. subtract the mean, or a round offset), or remove them; "
            "fit(drop_collinear=True) drops them (their coefficients are then reported as NaN)"
        )
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


#: Relative accuracy of the standard errors below which a fit notes (and warns) that the
#: design's conditioning degrades them.
SE_ACCURACY_NOTE = 1e-6


def conditioning_note(cond: float) -> str | None:
    """What an ill-conditioned design of full rank costs, or ``None`` when it costs little.

    The information matrix of a design whose unit-norm columns have condition number ``c``
    has condition number about ``c**2``; its inverse, the covariance, is then accurate to about
    ``c**2 eps`` relative (measured on ``x + 10**k`` beside an intercept: the standard errors
    are off by 1 to 1.5 times that, the estimates by far less).
    """
    accuracy = cond**2 * np.finfo(np.float64).eps
    if not accuracy > SE_ACCURACY_NOTE:
        return None
    return (
        f"The design is ill-conditioned (condition number {cond:.2g} with unit-norm columns: "
        "nearly collinear columns, such as one offset far from zero beside the intercept): "
        f"the standard errors are accurate to only about {accuracy:.0e} relative, the estimates "
        "to more.  Centring or rescaling the columns (subtracting the mean, or a round "
        "offset) removes this."
    )


def check_design(model, drop_collinear: bool, found: dict | None = None) -> np.ndarray | None:
    """Checks run by ``fit``: parameter count and rank.

    Parameters
    ----------
    found : dict, optional
        Receives ``"cond"``, the condition number of the design (unit-norm columns), when the
        rank check had to factor the design; a design that passes the quick check is well
        conditioned.

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
    backend = model.backend
    # Rows with zero (likelihood) weight do not inform the fit: a dummy that is zero on every
    # weighted row is aliased (the backend's Gram and QR factors skip those rows).
    n, p = backend.positive_rows(), backend.p
    if not drop_collinear:
        check_parameter_count(n, model.J, p)
    factors: dict = {}
    aliased = backend_aliased_columns(backend, found=factors)
    if not aliased.any():
        if found is not None and "R" in factors:
            found["cond"] = condition_number(factors["R"])
        return None
    if not drop_collinear:
        R = factors.get("R")
        if R is None:
            lo, hi = backend.column_range()
            amax = np.maximum(hi, -lo)
            R = backend.r_factor(np.where(amax > 0, amax, 1.0))
        raise DataError(rank_message(R, aliased, model.exog_names))
    if aliased.all():
        raise DataError("every column of the design is zero: nothing to fit")
    check_parameter_count(n, model.J, int((~aliased).sum()), " after dropping aliased ones")
    return aliased
