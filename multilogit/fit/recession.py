"""The recession cone of the multinomial log-likelihood, by linear programs on a few rows.

Conventions: a direction :math:`D` has shape ``(J, p)`` (the reference outcome's row is 0), in
coordinates where every column's largest magnitude is 1; flattened it is outcome-major.  For a
row :math:`i` and an outcome :math:`k \\ne y_i` the *pair* margin is
:math:`a_{ik}(D) = x_i^\\top (d_{y_i} - d_k)`, and the recession cone is
:math:`C = \\{D : a_{ik}(D) \\ge 0 \\text{ for all pairs}\\}`.

What the separation report needs from :math:`C`:

* the *strict* pairs :math:`S`, those with :math:`a_{ik}(D) > 0` for some :math:`D \\in C`
  (the others, *tied*, are 0 on all of :math:`C`).  One program finds them all:
  :math:`\\max \\sum s_{ik}` subject to :math:`0 \\le s_{ik} \\le \\min(1, a_{ik}(D))`, with
  :math:`|D| \\le 1 / \\tau`; a pair whose margin cannot reach :math:`\\tau` in a direction of
  largest component 1 is counted as tied (rounding in the data, not separation).
* the flat space :math:`N_0 = \\{D : a_{ik}(D) = 0 \\text{ on the tied pairs}\\}`, in which the
  limiting log-likelihood (the strict pairs' probabilities at 0) does not change;
* the *diverging* coefficients: those that are non-zero in every direction of the relative
  interior of :math:`C` (every direction along which the log-likelihood approaches its
  supremum).  A coefficient that some such direction leaves at 0 can stay finite in the limit
  and is not diverging.  Coefficient ``c`` is diverging exactly when the program
  "``a_{ik}(D) \\ge 1`` on :math:`S`, :math:`\\ge 0` on the other pairs, :math:`D_c = 0`" is
  infeasible, one program per coefficient (fewer in practice: each feasible solution clears
  every coefficient it leaves at 0 or gives the other sign).

On large data the programs are solved on a subset of the rows (a sample, the rows nearest the
candidate direction's boundary, the rows with each column's extremes), and each solution is
checked against every row in one streamed pass: rows that break it are added and the program
is solved again (row generation).  The checks make the answer that of the program on all rows:
a direction that satisfies every row is a certificate for its strict pairs; a pair it leaves
at 0 is tied if its functional lies in the span of the subset's tied functionals (tied on the
subset, so tied on all rows); and a program infeasible on a subset is infeasible on all rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..engine.progress import Progress
from ..engine.threads import single_threaded_blas
from ..lazy import lazy_module

optimize = lazy_module("scipy.optimize")
sparse = lazy_module("scipy.sparse")

__all__ = ["Cone", "RowSource", "analyse", "pair_matrix"]

# A pair is strict when its margin can reach this in a direction of largest component 1 (unit
# columns): smaller margins are what rounding of the data leaves, not separation.
TAU = 1e-8
# Rows read into the first program on large data, and added per round after (doubling).
# The programs' cost grows faster than their rows (they are degenerate: most pairs of
# overlapping rows are tied), so the subsets start small and the checks add what matters.
_SAMPLE_ROWS = 400
_ADD_ROWS = 400
# Up to this many (row, outcome) pairs every row goes into the programs at once.
WHOLE_PAIRS = 2_000
# A pair functional this close (relative) to the span of the tied ones is tied.
_SPAN_TOL = 1e-7
# Eigenvalues of the tied functionals' Gram matrix this small (relative) span its null space.
_NULL_TOL = 1e-10


@dataclass(frozen=True)
class Cone:
    """What :func:`analyse` found (``None`` from it when the cone is ``{0}``).

    Attributes
    ----------
    direction : ndarray, shape (J, p)
        A direction of the relative interior of the cone (every strict pair strict), zero on
        every coefficient that is not diverging when one such direction exists.
    diverging : ndarray of bool, shape (J, p)
        The coefficients that are non-zero in every direction of the relative interior.
    null_space : ndarray, shape (J, p, r)
        Orthonormal basis of :math:`N_0`.
    counts : tuple
        Weights of all rows, of the rows with some strict pair, and of those with every pair
        strict.
    involved : set
        Outcomes (equation index, ``-1`` the reference) of the strict pairs.
    complete : bool
        Every row has every pair strict.
    """

    direction: np.ndarray
    diverging: np.ndarray
    null_space: np.ndarray
    counts: tuple
    involved: set
    complete: bool


class RowSource:
    """Rows with positive weight in unit-column coordinates, read in passes.

    Parameters
    ----------
    reduce : callable
        ``reduce(fn)`` returns ``[fn(X, y, w, pos) for each chunk]`` (``X`` in unit columns,
        only rows with positive weight; ``pos`` their positions among all rows).
    n : int
        Number of rows (an upper bound is fine).
    J, p : int
    """

    def __init__(self, reduce, n: int, J: int, p: int):
        self.reduce, self.n, self.J, self.p = reduce, n, J, p

    @classmethod
    def from_backend(cls, backend, colscale) -> RowSource:
        def reduce(fn):
            def chunk(c):
                keep = c.weights > 0
                X = np.asarray(c.X, dtype=np.float64)[keep] / colscale
                pos = c.rows.start + np.flatnonzero(keep)
                return fn(X, np.asarray(c.y, dtype=np.int64)[keep], c.weights[keep], pos)

            # Small products per chunk: BLAS threads would only contend for the cores.
            with single_threaded_blas():
                return backend.reduce(chunk, frames=False)

        return cls(reduce, backend.n, backend.J, backend.p)


def pair_matrix(X, y, J):
    """Sparse ``A`` with one row per (row, other outcome) so that ``A @ D.ravel()`` gives the
    margins; also each pair's row and other outcome (``-1`` the reference)."""
    n, p = X.shape
    rows, cols, vals = [], [], []
    pair_obs, pair_alt = [], []
    r = 0
    for k in [*range(J), -1]:
        idx = np.flatnonzero(y != k)
        if len(idx) == 0:
            continue
        m = len(idx)
        row_ids = r + np.arange(m)
        own = y[idx] >= 0
        if own.any():
            rows.append(np.repeat(row_ids[own], p))
            cols.append((y[idx][own][:, None] * p + np.arange(p)[None, :]).ravel())
            vals.append(X[idx[own]].ravel())
        if k >= 0:
            rows.append(np.repeat(row_ids, p))
            cols.append(k * p + np.tile(np.arange(p), m))
            vals.append(-X[idx].ravel())
        pair_obs.append(idx)
        pair_alt.append(np.full(m, k))
        r += m
    if not vals:
        return sparse.csr_matrix((0, J * p)), np.empty(0, np.int64), np.empty(0, np.int64)
    A = sparse.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(r, J * p)
    )
    return A, np.concatenate(pair_obs), np.concatenate(pair_alt)


def _margins(X, y, D):
    """``(m, J + 1)`` margins of each row against every outcome (the reference last); the
    row's own outcome gets ``+inf``."""
    m, J = len(X), D.shape[0]
    E = np.zeros((m, J + 1))
    E[:, :J] = X @ D.T
    own = np.where(y < 0, J, y)
    a = E[np.arange(m), own][:, None] - E
    a[np.arange(m), own] = np.inf
    return a


# -- the programs ---------------------------------------------------------------------------


def _strict_program(A):
    """``max sum s`` s.t. ``0 <= s <= 1``, ``s <= A D``, ``|D| <= 1 / TAU``: a direction in
    the relative interior of the cone (scaled so that strict pairs have margin >= 1 where the
    bound allows).  ``None`` if the solver fails."""
    n_pairs, q = A.shape
    c = np.r_[np.zeros(q), -np.ones(n_pairs)]
    A_ub = sparse.hstack([-A, sparse.identity(n_pairs, format="csr")]).tocsr()
    lb = np.r_[np.full(q, -1.0 / TAU), np.zeros(n_pairs)]
    ub = np.r_[np.full(q, 1.0 / TAU), np.ones(n_pairs)]
    res = optimize.linprog(
        c, A_ub=A_ub, b_ub=np.zeros(n_pairs), bounds=np.column_stack([lb, ub]), method="highs"
    )
    if res.status != 0 or res.x is None:
        return None
    return res.x[:q]


def _interior_program(A, strict, zero):
    """A direction of least L1 norm with margin >= 1 on the strict pairs, >= 0 on the others
    and 0 on the coefficients ``zero``; ``None`` when there is none."""
    q = A.shape[1]
    AA = sparse.hstack([A, -A]).tocsr()
    b = np.where(strict, 1.0, 0.0)
    ub = np.where(np.r_[zero, zero], 0.0, 1.0 / TAU)
    res = optimize.linprog(
        np.ones(2 * q),
        A_ub=-AA,
        b_ub=-b,
        bounds=np.column_stack([np.zeros(2 * q), ub]),
        method="highs",
    )
    if res.status != 0 or res.x is None:
        return None
    return res.x[:q] - res.x[q:]


def _null_basis(A_tied, q):
    """Orthonormal basis ``(q, r)`` of the directions on which every tied functional is 0."""
    if A_tied.shape[0] == 0:
        return np.eye(q)
    G = (A_tied.T @ A_tied).toarray()
    vals, vecs = np.linalg.eigh(G)
    return vecs[:, vals <= _NULL_TOL * max(vals.max(), 1e-300)]


def _eps(D):
    """Margins within this of 0 are undecided: the solver's feasibility tolerance, and
    rounding in margins of a direction that may reach the bound ``1 / TAU``."""
    return 1e-6 + 1e-10 * float(np.abs(D).sum())


# -- the subset of rows ---------------------------------------------------------------------


class _Subset:
    """The distinct rows the programs see, their pair matrix and their pairs' status."""

    def __init__(self, X, y, J):
        self.J = J
        self.X, self.y = np.empty((0, X.shape[1])), np.empty(0, np.int64)
        self.add(X, y)

    def add(self, X, y) -> int:
        """Add rows; the number of new distinct rows."""
        before = len(self.X)
        key = np.column_stack([np.vstack([self.X, X]), np.r_[self.y, y].astype(np.float64)])
        uniq = np.unique(key, axis=0)
        self.X, self.y = uniq[:, :-1], uniq[:, -1].astype(np.int64)
        self.A, self.obs, self.alt = pair_matrix(self.X, self.y, self.J)
        return len(self.X) - before


def _pick(parts, limit):
    """Rows from per-chunk ``(X, y, score)``: the ``limit`` of lowest score."""
    parts = [pt for pt in parts if len(pt[2])]
    if not parts:
        return None
    X = np.vstack([pt[0] for pt in parts])
    y = np.concatenate([pt[1] for pt in parts])
    score = np.concatenate([pt[2] for pt in parts])
    if len(score) > limit:
        idx = np.argpartition(score, limit - 1)[:limit]
        X, y = X[idx], y[idx]
    return X, y


def _initial_rows(source: RowSource, candidate, whole: bool):
    """Every row (``whole``), else a deterministic sample, each column's extreme rows (so rare
    levels are present) and, given a candidate direction, the rows of smallest margin."""
    frac = min(1.0, _SAMPLE_ROWS / max(source.n, 1))

    def fn(X, y, w, pos):
        m = len(X)
        if whole:
            return X, y, np.zeros(m)
        # Evenly spaced rows (by position, so chunks may be read in any order or place): a
        # sample that does not depend on a random state.
        take = np.floor(pos * frac) != np.floor((pos - 1) * frac)
        ext = np.zeros(m, dtype=bool)
        if m:
            ext[np.argmin(X, axis=0)] = True
            ext[np.argmax(X, axis=0)] = True
        score = np.where(take | ext, -np.inf, np.inf)
        if candidate is not None:
            a = _margins(X, y, candidate).min(axis=1)
            near = np.argsort(a)[:_SAMPLE_ROWS]
            score[near] = np.minimum(score[near], a[near])
        keep = score < np.inf
        return X[keep], y[keep], score[keep]

    return _pick(source.reduce(fn), source.n if whole else 2 * _SAMPLE_ROWS + 2 * source.p)


# -- the passes over all rows ----------------------------------------------------------------


def _strict_pass(source: RowSource, D, null):
    """Check a direction from the program on a subset against every row.

    Returns ``(bad, stats)``: rows that break it or whose zero margins are not known to be
    tied (as ``(X, y, score)`` parts), and, when there are none, the weights of all rows, of
    rows with some strict pair, of rows with every pair strict, and the outcomes involved.
    """
    J, p = source.J, source.p
    eps = _eps(D)
    Q = null.reshape(J, p, -1)

    def fn(X, y, w, pos):
        a = _margins(X, y, D)
        neg = a < -eps
        zero = np.abs(a) <= eps
        rows_zero = np.flatnonzero(zero.any(axis=1) & ~neg.any(axis=1))
        uncertain = np.zeros(len(X), dtype=bool)
        for start in range(0, len(rows_zero), 8192):
            idx = rows_zero[start : start + 8192]
            Xi = X[idx]
            XQ = np.zeros((len(idx), J + 1, Q.shape[2]))
            XQ[:, :J, :] = np.einsum("ip,jpr->ijr", Xi, Q)
            own = np.where(y[idx] < 0, J, y[idx])
            proj = XQ[np.arange(len(idx)), own][:, None, :] - XQ
            dist = np.sqrt((proj**2).sum(axis=2))
            size = np.sqrt((Xi**2).sum(axis=1))[:, None]
            uncertain[idx] = np.any(zero[idx] & (dist > _SPAN_TOL * (1.0 + size)), axis=1)
        bad = neg.any(axis=1) | uncertain
        others = np.isfinite(a)  # the row's own outcome has margin +inf
        strict = (a > eps) & others
        some = strict.any(axis=1)
        every = (strict | ~others).all(axis=1)
        involved = np.zeros(J + 1, dtype=bool)
        own = np.where(y < 0, J, y)
        involved[own[some]] = True
        involved |= strict.any(axis=0)
        counts = np.array([w.sum(), w[some].sum(), w[every].sum()])
        score = np.where(a.min(axis=1) < 0, a.min(axis=1), 0.0)[bad]
        return X[bad], y[bad], score, counts, involved

    parts = source.reduce(fn)
    bad = [(pt[0], pt[1], pt[2]) for pt in parts]
    counts = sum((pt[3] for pt in parts), np.zeros(3))
    involved = np.logical_or.reduce([pt[4] for pt in parts]) if parts else np.zeros(J + 1, bool)
    return bad, counts, involved


def _interior_pass(source: RowSource, D, ref):
    """Rows where ``D`` fails a strict pair of ``ref`` (margin not clearly positive) or any
    pair (negative margin), as ``(X, y, score)`` parts."""
    eps, eps_ref = _eps(D), _eps(ref)

    def fn(X, y, w, pos):
        a, s = _margins(X, y, D), _margins(X, y, ref)
        fail = ((s > eps_ref) & np.isfinite(s) & (a <= eps)) | (a < -eps)
        bad = fail.any(axis=1)
        return X[bad], y[bad], a.min(axis=1)[bad]

    return source.reduce(fn)


# -- the analysis ----------------------------------------------------------------------------


def analyse(source: RowSource, candidate=None, small_pairs: int = WHOLE_PAIRS) -> Cone | None:
    """The strict pairs, flat space and diverging coefficients of the rows' recession cone.

    Parameters
    ----------
    source : RowSource
    candidate : ndarray, shape (J, p), optional
        A direction believed to be (near) the cone, e.g. the solver's last steps: its rows of
        smallest margin seed the subset on large data.
    small_pairs : int
        Up to this many (row, outcome) pairs every row goes into the programs at once.

    Returns
    -------
    Cone or None
        ``None`` when no direction has a strict pair (the estimate exists), or when a program
        fails.
    """
    J, p = source.J, source.p
    q = J * p
    whole = source.n * J <= small_pairs
    init = _initial_rows(source, candidate, whole)
    if init is None:
        return None
    sub = _Subset(init[0], init[1], J)
    progress = Progress("separation check", unit="linear programs", enabled=None)
    if whole:
        progress.enabled = False
    limit = _ADD_ROWS

    def grow(parts) -> bool:
        nonlocal limit
        picked = _pick(parts, limit)
        if picked is None:
            return False
        # A round that adds rows without settling the program doubles the next: the rounds
        # stay few even when many rows matter (at worst, every row joins the program).
        limit *= 2
        added = sub.add(*picked) > 0
        progress.label = f"separation check ({len(sub.X):,} rows in the programs)"
        return added

    try:
        while True:
            d = _strict_program(sub.A)
            progress.update()
            if d is None:
                return None
            strict = sub.A @ d > 0.5
            if not strict.any() and np.linalg.matrix_rank(sub.X) == p:
                # The subset's cone is {0} (its rows have full rank and no strict pair), and
                # the cone of all rows lies inside it.
                return None
            if strict.any():
                # The program's vertex loads coefficients the subset leaves free up to the
                # bound, which other rows then break; the least-L1 direction with the same
                # strict pairs moves only what it needs, so fewer rounds add rows.
                small = _interior_program(sub.A, strict, np.zeros(q, dtype=bool))
                progress.update()
                d = d if small is None else small
            D = d.reshape(J, p)
            null = _null_basis(sub.A[~strict], q)
            bad, counts, involved = _strict_pass(source, D, null)
            if whole or not grow(bad):
                break
        if counts[1] <= 0:
            return None
        diverging, direction = _diverging(source, sub, D, null, grow, progress, whole)
    finally:
        progress.close()
    involved_set = {k if k < J else -1 for k in np.flatnonzero(involved).tolist()}
    return Cone(
        direction=direction,
        diverging=diverging,
        null_space=null.reshape(J, p, -1),
        counts=tuple(float(c) for c in counts),
        involved=involved_set,
        complete=bool(counts[2] >= counts[0] * (1 - 1e-12)),
    )


def _diverging(source, sub, D, null, grow, progress, whole):
    """The diverging coefficients and a relative-interior direction zero off them."""
    J, p = D.shape
    q = J * p
    ref = D
    flat = D.ravel()
    tol = 1e-9 * max(np.abs(flat).max(), 1e-300)
    # Coefficients outside the flat space are identified: they do not move along the cone.
    support = np.sqrt((null**2).sum(axis=1)) > 1e-6 if null.shape[1] else np.zeros(q, bool)
    sign = np.sign(np.where(np.abs(flat) > tol, flat, 0.0))
    cleared = (sign == 0) | ~support

    def solve(zero):
        while True:
            strict = sub.A @ ref.ravel() > _eps(ref)
            d = _interior_program(sub.A, strict, zero)
            progress.update()
            if d is None or whole:
                return d
            if not grow(_interior_pass(source, d.reshape(J, p), ref)):
                return d

    diverging = np.zeros(q, dtype=bool)
    for c in range(q):
        if cleared[c]:
            continue
        zero = np.zeros(q, dtype=bool)
        zero[c] = True
        d = solve(zero)
        if d is None:
            diverging[c] = True
            continue
        dt = 1e-9 * max(np.abs(d).max(), 1e-300)
        cleared |= (np.abs(d) <= dt) | (np.sign(d) == -sign)
    direction = solve(~diverging)
    if direction is None:
        # No single relative-interior direction is zero off the diverging coefficients (they
        # can each stay finite, but not all at once): report the sparsest one.
        direction = solve(np.zeros(q, dtype=bool))
        if direction is None:
            direction = flat
        diverging = np.abs(direction) > 1e-9 * np.abs(direction).max()
    direction = np.where(diverging, direction, 0.0)
    return diverging.reshape(J, p), direction.reshape(J, p)
