"""Detection of complete and quasi-complete separation.

The multinomial logit log-likelihood has no maximum when there is a *recession direction*: a
non-zero :math:`D = (d_1, \\dots, d_J)` (with :math:`d_{\\mathrm{ref}} = 0`) such that for every
row :math:`i` and every outcome :math:`k \\ne y_i`

.. math::

    a_{ik}(D) = x_i^\\top (d_{y_i} - d_k) \\ge 0 ,

with at least one strict inequality.  Moving :math:`\\beta` along :math:`D` never lowers the
log-likelihood and drives :math:`P(y_i = k) / P(y_i = y_i)` to zero for each strict pair, so the
coefficients grow without bound (Albert and Anderson, 1984; the linear-programming test is that
of Konis, 2007, extended to K outcomes).  When every observation has all its pairs strict, the
separation is *complete*; otherwise *quasi-complete*.

We solve the linear program

.. math::

    \\max_D \\sum_{i, k \\ne y_i} a_{ik}(D) \\quad \\text{s.t.}\\quad a_{ik}(D) \\ge 0,\\;
    -1 \\le D \\le 1

on the design with columns scaled to largest magnitude 1, repeating it with the objective
restricted to the pairs not yet strict, so the union of all strict pairs is found.  Solving it
for every fit would be wasteful on large data, so the solver calls :class:`SeparationMonitor`
at each iteration, which runs the program only once the iterates look divergent (large
coefficients, steps that do not shrink, or vanishing information).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from ..engine import kernels
from ..engine.memory import InMemoryBackend
from ..engine.threads import single_threaded_blas
from ..exceptions import FitError, PerfectSeparationError, PerfectSeparationWarning
from ..lazy import lazy_module

# Only the linear programs of a separation check need these, and most fits never run one.
optimize = lazy_module("scipy.optimize")
sparse = lazy_module("scipy.sparse")

__all__ = ["Separation", "SeparationMonitor", "find_separation", "check_mode"]

MODES = ("warn", "raise", "ignore")

# Triggers for the (one) linear program, in coordinates where every column's largest magnitude
# is 1: a coefficient this large moves the log odds by e**15 across the column's range.
_BIG_COEF = 15.0
# From this iteration on, a step that is neither small nor shrinking quadratically is suspect.
_SLOW_ITER = 5
# Information on some coefficient this many times smaller than at the start: saturated fit.
_INFO_DROP = 1e-8
# A pair is strict when a_ik exceeds this (D in [-1, 1], |x| <= 1: a_ik is at most 2 p).
_STRICT = 1e-6
_MAX_ROUNDS = 6
# Up to this many (observation, other outcome) pairs the linear program takes well under a
# second and runs whenever the iterates look divergent.  Beyond, it is gated by a cheap test of
# the last Newton step (see SeparationMonitor._plausible): HiGHS needs ~30 s for 10^6 pairs.
_SMALL_PAIRS = 30_000
# The last step is "nearly" a recession direction when the (weighted) negative parts of the
# a_ik are at most this fraction of the positive parts.
_GATE = 0.05


def check_mode(separation: str) -> str:
    """Validate ``fit(separation=...)``."""
    if separation not in MODES:
        allowed = ", ".join(map(repr, MODES))
        raise ValueError(f"separation must be one of {allowed}; got {separation!r}")
    return separation


@dataclass(frozen=True)
class Separation:
    """What :func:`find_separation` found.

    Attributes
    ----------
    kind : {"complete", "quasi-complete"}
    outcomes : tuple
        Outcome labels whose probabilities are driven to 0 or 1 for some observations.
    terms : tuple
        Design terms with a non-zero component in the divergent direction.
    params : ndarray of bool, shape (J, p)
        Coefficients without a meaningful estimate: those that diverge, and those the data
        no longer identify once the separated probabilities are 0 or 1 (their standard errors
        are reported as NaN).
    direction : ndarray, shape (J, p)
        A recession direction of the log-likelihood, largest component 1 in absolute value, in
        the original (unscaled) coordinates' signs.
    n_separated : float
        Observations (weighted) with some fitted probability driven to 0 or 1.
    n_perfect : float
        Observations whose observed outcome's probability is driven to 1.
    nobs : float
    """

    kind: str
    outcomes: tuple
    terms: tuple
    params: np.ndarray = field(repr=False)
    direction: np.ndarray = field(repr=False)
    n_separated: float
    n_perfect: float
    nobs: float
    eq_outcomes: tuple = field(default=(), repr=False)
    exog_names: tuple = field(default=(), repr=False)
    #: Basis of the directions the limiting log-likelihood is flat in, shape (J, p, r).
    null_space: np.ndarray | None = field(default=None, repr=False)

    def _pairs(self, mask) -> list[tuple]:
        J, p = mask.shape
        return [
            (self.eq_outcomes[j], self.exog_names[k])
            for j in range(J)
            for k in range(p)
            if mask[j, k]
        ]

    @property
    def diverging(self) -> list[tuple]:
        """``(outcome, term)`` pairs of the coefficients that diverge."""
        return self._pairs(self.direction != 0)

    @property
    def unidentified(self) -> list[tuple]:
        """``(outcome, term)`` pairs that do not diverge but are not identified in the limit
        (e.g. a level whose rows all have probability 0 for that outcome already)."""
        return self._pairs(self.params & (self.direction == 0))

    def for_model(self, model) -> Separation:
        """The same finding in ``model``'s parameterisation (after a change of reference).

        With all K coefficient rows :math:`D_k` (the old reference's row 0), the direction for
        reference :math:`r` has rows :math:`D_k - D_r`.
        """
        eq = tuple(model.eq_outcomes)
        if eq == self.eq_outcomes:
            return self
        levels = list(model.outcomes)
        D = _repivot_rows(self.direction, self.eq_outcomes, levels, eq, model.ref)
        scale = np.abs(D).max()
        D = D / scale if scale > 0 else D
        D = np.where(np.abs(D) > 1e-7, D, 0.0)
        mask = D != 0
        null = self.null_space
        if null is not None:
            null = np.stack(
                [
                    _repivot_rows(null[:, :, r], self.eq_outcomes, levels, eq, model.ref)
                    for r in range(null.shape[2])
                ],
                axis=2,
            )
            mask = mask | _support(null)
        return replace(self, params=mask, direction=D, eq_outcomes=eq, null_space=null)

    def direction_frame(self) -> pd.DataFrame:
        """The divergent direction shaped like ``params`` (terms x non-reference outcomes)."""
        return pd.DataFrame(
            self.direction.T, index=list(self.exog_names), columns=list(self.eq_outcomes)
        )

    def message(self) -> str:
        outs = ", ".join(map(repr, self.outcomes))
        terms = ", ".join(map(repr, self.terms))

        def pairs(items):
            return ", ".join(f"{o!r}:{t!r}" for o, t in items)

        extra = self.unidentified
        more = f"; not identified: {pairs(extra)}" if extra else ""
        return (
            f"{self.kind} separation: {self.n_separated:g} of {self.nobs:g} observations have "
            f"fitted probabilities driven to 0 or 1 (outcome(s) {outs}; term(s) {terms}). "
            f"Diverging coefficients (outcome:term): {pairs(self.diverging)}{more}. The fit "
            "was stopped early; their standard errors are reported as NaN and the other "
            "estimates are those of the last iteration"
        )


def _pair_matrix(X, y, J):
    """Sparse A with one row per (observation, other outcome) so that ``A @ D.ravel()`` = a_ik.

    Outcome indices are equation indices ``0..J-1`` and ``-1`` for the reference (``d = 0``).
    """
    n, p = X.shape
    rows, cols, vals = [], [], []
    pair_obs, pair_alt = [], []
    r = 0
    alts = list(range(J)) + [-1]
    for k in alts:
        idx = np.flatnonzero(y != k)
        if len(idx) == 0:
            continue
        m = len(idx)
        row_ids = r + np.arange(m)
        # + x_i in the block of the observed outcome (unless it is the reference)
        own = y[idx] >= 0
        if own.any():
            rr = np.repeat(row_ids[own], p)
            cc = (y[idx][own][:, None] * p + np.arange(p)[None, :]).ravel()
            rows.append(rr)
            cols.append(cc)
            vals.append(X[idx[own]].ravel())
        # - x_i in the block of the alternative k (unless it is the reference)
        if k >= 0:
            rows.append(np.repeat(row_ids, p))
            cols.append(k * p + np.tile(np.arange(p), m))
            vals.append(-X[idx].ravel())
        pair_obs.append(idx)
        pair_alt.append(np.full(m, k))
        r += m
    A = sparse.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(r, J * p)
    )
    return A, np.concatenate(pair_obs), np.concatenate(pair_alt)


def _solve(A, weights):
    """Maximise ``weights @ A d`` subject to ``A d >= 0`` and ``-1 <= d <= 1``."""
    c = -(A.T @ weights)
    if not np.any(c):
        return None
    res = optimize.linprog(
        c,
        A_ub=-A,
        b_ub=np.zeros(A.shape[0]),
        bounds=(-1.0, 1.0),
        method="highs",
    )
    if res.status != 0 or res.x is None:
        return None
    d = np.where(np.abs(res.x) < 1e-9, 0.0, res.x)
    return d


def _sparsest(A, strict, fallback):
    """Among directions keeping every strict pair strict, one of least L1 norm.

    The first program's vertex can load terms that play no part in the separation (any
    direction works in a completely separated sample); the L1 minimiser names only the terms
    that are needed.  ``D = u - v`` with ``u, v >= 0``; ``a_ik >= 1`` on the strict pairs.
    """
    q = A.shape[1]
    AA = sparse.hstack([A, -A]).tocsr()
    b = np.where(strict, 1.0, 0.0)
    res = optimize.linprog(np.ones(2 * q), A_ub=-AA, b_ub=-b, bounds=(0.0, None), method="highs")
    if res.status != 0 or res.x is None:
        return fallback
    d = res.x[:q] - res.x[q:]
    d = np.where(np.abs(d) < 1e-9 * max(np.abs(d).max(), 1e-300), 0.0, d)
    a = A @ d
    if a.min() < -_STRICT * max(1.0, np.abs(d).max()) or not np.all(a[strict] > 0.5):
        return fallback
    return d


def _repivot_rows(rows, eq_from, levels, eq_to, new_ref):
    """Coefficient rows (J, p) for reference ``new_ref``: :math:`D_k - D_{new}` (old ref 0)."""
    full = {lv: np.zeros(rows.shape[1]) for lv in levels}
    for j, lv in enumerate(eq_from):
        full[lv] = rows[j]
    return np.array([full[lv] - full[new_ref] for lv in eq_to])


def _support(null):
    """Coordinates on which a null-space basis (J, p, r) is non-zero."""
    if null.shape[2] == 0:
        return np.zeros(null.shape[:2], dtype=bool)
    norm = np.sqrt((null**2).sum(axis=2))
    return norm > 1e-6 * max(norm.max(), 1e-300)


def _limit_null_space(Xu, yu, wu, pair_obs, pair_alt, strict, J):
    """Directions in which the limiting log-likelihood (separated pairs at probability 0) is
    flat, as a basis of shape (J, p, r).

    In the limit, row i keeps only the outcomes tied with its own along the divergent
    direction (the non-strict pairs).  Its information is that of a softmax over those
    outcomes; the null space does not depend on the (positive) probabilities among them, so
    they are taken equal.
    """
    n, p = Xu.shape
    alive = np.zeros((n, J + 1), dtype=bool)
    alive[np.arange(n), np.where(yu < 0, J, yu)] = True
    tied = ~strict
    alive[pair_obs[tied], np.where(pair_alt < 0, J, pair_alt)[tied]] = True
    prob = alive / alive.sum(axis=1, keepdims=True)
    pe = prob[:, :J]
    info = np.zeros((J * p, J * p))
    for j in range(J):
        for k in range(j, J):
            wjk = wu * pe[:, j] * ((1.0 if j == k else 0.0) - pe[:, k])
            block = (Xu * wjk[:, None]).T @ Xu
            info[j * p : (j + 1) * p, k * p : (k + 1) * p] = block
            info[k * p : (k + 1) * p, j * p : (j + 1) * p] = block.T
    vals, vecs = np.linalg.eigh(info)
    null = vecs[:, vals <= 1e-10 * max(vals.max(), 1e-300)]
    return null.reshape(J, p, -1)


def _program(A, weights, q):
    """Rounds of the linear program until no new pair becomes strict; returns the summed
    direction and the strict pairs."""
    total = np.zeros(q)
    strict = np.zeros(A.shape[0], dtype=bool)
    for _ in range(_MAX_ROUNDS):
        d = _solve(A, np.where(strict, 0.0, weights))
        if d is None:
            break
        a = A @ d
        # Feasible to rounding only: a direction that violates a constraint is not a recession
        # direction, and we would rather miss separation than report a false one.
        if a.min() < -_STRICT:
            break
        new = (a > _STRICT) & ~strict
        if not new.any():
            break
        strict |= a > _STRICT
        total += d
    return total, strict


def _verified(A, d):
    """A recession direction made from a candidate (e.g. a Newton step of a divergent fit):
    its small components are dropped at decreasing thresholds until ``A d >= 0`` holds with
    some pair strict.  A direction that passes is a proof that the estimate does not exist."""
    top = np.abs(d).max()
    if not top > 0:
        return None
    for rel in (0.3, 0.1, 0.03, 0.01, 0.003):
        dd = np.where(np.abs(d) >= rel * top, d, 0.0) / top
        a = A @ dd
        if a.min() >= -1e-12 and a.max() > _STRICT:
            return dd
    return None


def find_separation(
    X: np.ndarray,
    y: np.ndarray,
    J: int,
    w: np.ndarray | None = None,
    eq_outcomes: tuple = (),
    ref=None,
    exog_names: tuple = (),
    levels: tuple = (),
    candidate: np.ndarray | None = None,
) -> Separation | None:
    """Test the data for (quasi-)complete separation by linear programming.

    Parameters
    ----------
    X : ndarray, shape (n, p)
        Design matrix (full column rank).
    y : ndarray of int, shape (n,)
        Equation index of each row's outcome, ``-1`` for the reference.
    J : int
        Number of equations (non-reference outcomes).
    w : ndarray, optional
        Row weights; rows with zero weight are ignored.
    eq_outcomes, ref, exog_names, levels
        Labels used in the report (``levels``: all outcomes in order).
    candidate : ndarray, shape (J, p), optional
        A direction in coordinates where every column's largest magnitude is 1.  When given,
        no linear program is solved: the candidate (with small components dropped) is
        verified exactly, and ``None`` means only that it is not a recession direction.

    Returns
    -------
    Separation or None
        ``None`` when the maximum likelihood estimate exists.
    """
    X = np.asarray(X, dtype=np.float64)
    w = np.ones(len(X)) if w is None else np.asarray(w, dtype=np.float64)
    backend = InMemoryBackend(X, np.asarray(y, dtype=np.int64), w, J)
    return backend_separation(backend, eq_outcomes, ref, exog_names, levels, candidate)


def backend_separation(
    backend,
    eq_outcomes: tuple = (),
    ref=None,
    exog_names: tuple = (),
    levels: tuple = (),
    candidate: np.ndarray | None = None,
) -> Separation | None:
    """:func:`find_separation` on the rows held by ``backend`` (see
    :mod:`multilogit.engine.backend`): the program only needs the distinct rows."""
    J, p = backend.J, backend.p
    if candidate is not None and backend.n * J > _SMALL_PAIRS:
        # Large data: verify and describe the candidate in passes over the rows, without
        # sorting them for distinct ones or building a pair per (row, outcome).
        labels = (eq_outcomes, ref, exog_names, levels)
        return _streamed_candidate(backend, candidate, labels)
    Xu, yu, wu = backend.distinct_rows(np.ones(p))
    if len(Xu) == 0:
        return None
    amax = np.abs(Xu).max(axis=0)
    colscale = np.where(amax > 0, amax, 1.0)
    Xu = Xu / colscale
    A, pair_obs, pair_alt = _pair_matrix(Xu, yu, J)
    if candidate is not None:
        total = _verified(A, np.asarray(candidate, dtype=np.float64).ravel())
        if total is None:
            return None
        strict = (A @ total) > _STRICT
    else:
        total, strict = _program(A, wu[pair_obs], J * p)
    if not strict.any():
        return None
    if candidate is None:
        total = _sparsest(A, strict, total)
    n_pairs = np.bincount(pair_obs, minlength=len(Xu))
    n_strict = np.bincount(pair_obs[strict], minlength=len(Xu))
    perfect = n_strict == n_pairs
    involved = set(yu[pair_obs[strict]].tolist()) | set(pair_alt[strict].tolist())
    # Null space in unit-column coordinates.
    null = _limit_null_space(Xu, yu, wu, pair_obs, pair_alt, strict, J)
    any_strict = n_strict > 0
    counts = (float(wu[any_strict].sum()), float(wu[perfect].sum()), float(wu.sum()))
    labels = (eq_outcomes, ref, exog_names, levels)
    return _report(total, colscale, null, involved, counts, bool(perfect.all()), labels)


def _report(total, colscale, null, involved, counts, complete, labels) -> Separation:
    """The :class:`Separation` of a recession direction ``total`` (flat, unit-column
    coordinates), from what it does to the rows: the outcomes of its strict pairs
    (``involved``, ``-1`` the reference), the weights of the rows with some / every pair strict
    and of all rows (``counts``), and the null space ``(J, p, r)`` of the limit."""
    eq_outcomes, ref, exog_names, levels = labels
    J, p = null.shape[:2]
    D = total.reshape(J, p)
    D = D / np.abs(D).max()
    mask = np.abs(D) > 1e-7
    # Back to the original coordinates: d (scaled) / colscale; report unit-max direction.
    D_orig = np.where(mask, D, 0.0) / colscale
    D_orig = D_orig / np.abs(D_orig).max()
    labels = list(eq_outcomes) if eq_outcomes else [f"y{j + 1}" for j in range(J)]
    labels_all = labels + [ref]
    outcomes = [labels_all[k] for k in sorted(involved, key=lambda k: (k < 0, k))]
    if levels:
        outcomes.sort(key=list(levels).index)
    outcomes = tuple(outcomes)
    names = tuple(exog_names) if exog_names else tuple(f"x{k + 1}" for k in range(p))
    terms = tuple(names[k] for k in range(p) if mask[:, k].any())
    # The null space back in the original coordinates (beta = b / scale).
    null = null / colscale[:, None]
    n_separated, n_perfect, nobs = counts
    return Separation(
        kind="complete" if complete else "quasi-complete",
        outcomes=outcomes,
        terms=terms,
        params=mask | _support(null),
        null_space=null,
        direction=D_orig,
        n_separated=n_separated,
        n_perfect=n_perfect,
        nobs=nobs,
        eq_outcomes=tuple(labels),
        exog_names=names,
    )


def _streamed_candidate(backend, candidate, labels) -> Separation | None:
    """:func:`backend_separation` of a candidate direction in passes over the backend's rows
    (no distinct rows, no pair matrix): memory stays at one chunk whatever the rows.

    The candidate is verified as :func:`_verified` does (its small components dropped at
    decreasing thresholds until every :math:`a_{ik} \\ge 0` with some pair strict), then one
    pass gathers what the report needs: the weights of separated and perfectly predicted rows,
    the outcomes involved, and the information of the limit, whose null space it reports.
    """
    J, p = backend.J, backend.p

    def absmax(c):
        return np.max(np.abs(c.X[c.weights > 0]), axis=0, initial=0.0)

    parts = backend.reduce(absmax, frames=False)
    amax = np.max(np.vstack(parts), axis=0, initial=0.0) if parts else np.zeros(p)
    colscale = np.where(amax > 0, amax, 1.0)
    d = np.asarray(candidate, dtype=np.float64).ravel()
    top = np.abs(d).max()
    if not top > 0:
        return None
    total = None
    for rel in (0.3, 0.1, 0.03, 0.01, 0.003):
        dd = np.where(np.abs(d) >= rel * top, d, 0.0) / top
        _, _, amin, amax_a = backend.pair_stats(dd.reshape(J, p) / colscale)
        if amin >= -1e-12 and amax_a > _STRICT:
            total = dd
            break
    if total is None:
        return None
    D = total.reshape(J, p)
    q = J * p

    def summary(c):
        m = len(c.X)
        counts, involved = np.zeros(4), np.zeros(J + 1, dtype=np.bool_)
        B, S = np.empty((m, q)), np.empty((m, p))
        X = np.ascontiguousarray(c.X, dtype=np.float64)
        y = np.ascontiguousarray(c.y, dtype=np.int64)
        w = np.ascontiguousarray(c.weights, dtype=np.float64)
        r = kernels.chunk_separation_summary(X, y, w, colscale, D, _STRICT, counts, involved, B, S)
        B, S = B[:r], S[:r]
        info = -(B.T @ B)
        G = S.T @ B
        for j in range(J):
            info[j * p : (j + 1) * p, j * p : (j + 1) * p] += G[:, j * p : (j + 1) * p]
        return counts, involved, info

    counts, involved, info = np.zeros(4), np.zeros(J + 1, dtype=np.bool_), np.zeros((q, q))
    # The products of one chunk are small: BLAS threads would only contend for the cores (on
    # a busy machine, spinning threads made this pass a hundred times slower).
    with single_threaded_blas():
        parts = backend.reduce(summary, frames=False)
    for part in parts:
        counts += part[0]
        involved |= part[1]
        info += part[2]
    if not counts[1] > 0:
        return None
    info = (info + info.T) / 2.0
    vals, vecs = np.linalg.eigh(info)
    null = vecs[:, vals <= 1e-10 * max(vals.max(), 1e-300)].reshape(J, p, -1)
    involved = {k if k < J else -1 for k in np.flatnonzero(involved).tolist()}
    complete = counts[3] == 0
    return _report(
        total, colscale, null, involved, (counts[1], counts[2], counts[0]), complete, labels
    )


def model_separation(model, candidate=None) -> Separation | None:
    """:func:`find_separation` on a model's rows (through its backend)."""
    return backend_separation(
        model.backend,
        eq_outcomes=tuple(model.eq_outcomes),
        ref=model.ref,
        exog_names=tuple(model.exog_names),
        levels=tuple(model.outcomes),
        candidate=candidate,
    )


class SeparationMonitor:
    """Called by the solver at the top of each iteration; stops it when separation is found.

    Parameters
    ----------
    model : MultinomialLogit
    mode : {"warn", "raise"}
        ``"raise"`` raises :class:`PerfectSeparationError` from inside the solver; ``"warn"``
        stops the solver and the fit warns with :class:`PerfectSeparationWarning`.
    to_unit : ndarray, shape (p,)
        Multiplies the solver's coefficients into units where every column's largest magnitude
        is 1 (the heuristics' scale).
    """

    def __init__(self, model, mode: str, to_unit: np.ndarray):
        self.model = model
        self.mode = mode
        self.to_unit = np.asarray(to_unit, dtype=np.float64)
        self.checked = False
        self.result: Separation | None = None
        self._prev_beta = None
        self._prev_step = None
        self._last_delta = None
        self._it = 0
        self._before_step = None
        self._info0 = None
        self._amax = None

    def _suspicious(self, it, beta, d) -> bool:
        b = beta * self.to_unit
        # Step bookkeeping first: the gate of large data reads the latest step.
        slow = False
        if self._prev_beta is not None:
            self._last_delta = b - self._prev_beta
            step = float(np.max(np.abs(self._last_delta), initial=0.0))
            self._before_step = self._prev_step
            slow = (
                self._prev_step is not None
                and it >= _SLOW_ITER
                and step > 0.1
                and step > 0.3 * self._prev_step
            )
            self._prev_step = step
        self._prev_beta = b
        if slow or np.max(np.abs(b), initial=0.0) > _BIG_COEF:
            return True
        if d.info is not None:
            diag = np.diag(d.info).copy()
            if self._info0 is None:
                self._info0 = np.where(diag > 0, diag, 1.0)
            elif np.any(diag < _INFO_DROP * self._info0):
                return True
        return False

    def _plausible(self) -> bool:
        """Whether to spend a linear program now.

        Always on small data.  On large data only when the last Newton step is nearly a
        recession direction: along a divergent fit the steps align with it, while a step of an
        ordinary fit lowers some fitted odds as much as it raises others.
        """
        model = self.model
        if model.backend.n * model.J <= _SMALL_PAIRS:
            return True
        # A divergent fit keeps taking steps of order 1 (in unit-column coordinates) long
        # after an ordinary fit has settled: ignore the early iterations and small steps.
        if self._last_delta is None or self._it < _SLOW_ITER:
            return False
        step = float(np.max(np.abs(self._last_delta)))
        if step < 0.5 or self._before_step is None or step < 0.3 * self._before_step:
            return False  # small or quadratically shrinking: an ordinary fit converging
        pos, neg, _, _ = self._pair_stats(self._last_delta)
        return pos > 0 and neg <= _GATE * pos

    def _pair_stats(self, delta):
        """Over rows with positive weight, of :math:`a_{ik}` (0 for the own outcome): the
        weighted sums of its positive and negative parts, its minimum and maximum.

        ``delta`` is in unit-column coordinates.  One chunked pass over the rows, no (n, K)
        array.
        """
        model = self.model
        if self._amax is None:
            amax = model._column_absmax()
            self._amax = np.where(amax > 0, amax, 1.0)
        return model.backend.pair_stats(delta / self._amax)

    def _candidate_holds(self) -> bool:
        """Cheap pass over the rows: does the last step, with small components dropped, satisfy
        every :math:`a_{ik} \\ge 0`?  (The full report is only built when it does.)"""
        d = self._last_delta
        top = np.abs(d).max()
        for rel in (0.3, 0.1, 0.03, 0.01, 0.003):
            _, _, amin, amax = self._pair_stats(np.where(np.abs(d) >= rel * top, d, 0.0) / top)
            if amin >= -1e-12 and amax > _STRICT:
                return True
        return False

    def run_check(self, force: bool = False) -> Separation | None:
        """Test for separation; small data (or ``force``): the linear program, once.  Large
        data: verify the last Newton step as a recession direction (tried again at later
        iterations; tiny margins can make it too rough a guess, and then the linear program
        decides once the solver has stopped, see :meth:`finish`)."""
        if not self.checked:
            small = self.model.backend.n * self.model.J <= _SMALL_PAIRS
            if small or force:
                self.checked = True
                self.result = model_separation(self.model)
            elif self._last_delta is not None and self._candidate_holds():
                self.result = model_separation(self.model, candidate=self._last_delta)
                self.checked = self.result is not None
            if self.result is not None and self.mode == "raise":
                raise PerfectSeparationError(self.result.message())
        return self.result

    def __call__(self, it: int, beta: np.ndarray, d) -> str:
        """Return a stop message once separation is confirmed, else ``""``."""
        self._it = it
        if self.checked or not self._suspicious(it, beta, d) or not self._plausible():
            return ""
        sep = self.run_check()
        return f"stopped early: {sep.kind} separation" if sep is not None else ""

    def finish(self, converged: bool, beta_unit: np.ndarray) -> Separation | None:
        """After the solver: check once more if the fit did not converge or looks divergent.

        ``beta_unit`` are the final coefficients in unit-column coordinates.
        """
        if not self.checked:
            big = np.max(np.abs(beta_unit), initial=0.0) > _BIG_COEF
            if (big or not converged) and self._plausible():
                self.run_check(force=True)
        if self.result is not None and self.mode == "warn":
            warnings.warn(self.result.message(), PerfectSeparationWarning, stacklevel=4)
        return self.result


def separated_covariance(compute, J: int, p: int) -> np.ndarray:
    """The estimator's covariance at the point where a separated fit stopped.

    The results show NaN for the diverging coefficients (``MultinomialLogitResults`` masks
    them), but the matrix itself stays finite so that reparameterisations (another reference
    outcome) map the other entries correctly.  If the estimator fails (the information can be
    numerically singular there), every entry is NaN.
    """
    try:
        return np.array(compute(), dtype=np.float64)
    except FitError:
        return np.full((J * p, J * p), np.nan)
