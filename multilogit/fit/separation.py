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

The linear programs that find the strict pairs, the space the limiting log-likelihood is flat
in and the diverging coefficients (those non-zero in every direction of the cone's relative
interior, so the report does not depend on which direction a solver happens to return) are in
:mod:`~multilogit.fit.recession`; on large data they run on a subset of the rows, checked
against all rows in streamed passes.  Solving them for every fit would still be wasteful, so
the solver calls ``SeparationMonitor`` at each iteration, which runs them only once the
iterates look divergent (large coefficients, steps that do not shrink, or vanishing
information).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from ..engine.memory import InMemoryBackend
from ..exceptions import (
    FitError,
    MultilogitError,
    PerfectSeparationError,
    PerfectSeparationWarning,
)
from . import recession

__all__ = ["Separation", "SeparationMonitor", "find_separation", "check_mode"]

MODES = ("warn", "raise", "ignore")

# Triggers for the (one) linear program, in coordinates where every column's largest magnitude
# is 1: a coefficient this large moves the log odds by e**15 across the column's range.
_BIG_COEF = 15.0
# From this iteration on, a step that is neither small nor shrinking quadratically is suspect.
_SLOW_ITER = 5
# Information on some coefficient this many times smaller than at the start: saturated fit.
_INFO_DROP = 1e-8
# The monitor's cheap test of its last step: a pair counts as strict when a_ik exceeds this
# (step scaled to largest component 1, |x| <= 1: a_ik is at most 2 p).
_STRICT = 1e-6
# Up to this many (observation, other outcome) pairs the programs see every row, take well
# under a second and run whenever the iterates look divergent.  Beyond, they see a subset of
# the rows and are gated by a cheap test of the last Newton step (SeparationMonitor._plausible).
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
        Design terms with a diverging coefficient.
    params : ndarray of bool, shape (J, p)
        Coefficients without a meaningful estimate: those that diverge, and those the data
        no longer identify once the separated probabilities are 0 or 1 (their standard errors
        are reported as NaN).
    direction : ndarray, shape (J, p)
        A recession direction of the log-likelihood along which it approaches its supremum,
        largest component 1 in absolute value, in the original coordinates.  Its non-zero
        components are the *diverging* coefficients: those non-zero in every such direction
        (a coefficient some such direction leaves at 0 can stay finite in the limit).  The
        set depends only on the data's recession cone, not on the number of rows or on the
        solver's path.
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
    #: Said after the report (e.g. the outcomes with few rows behind it).
    note: str = field(default="", repr=False)

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

    def for_model(self, model, aliased=None) -> Separation:
        """The same finding in ``model``'s parameterisation (after a change of reference).

        Which coefficients diverge depends on the parameterisation (a coefficient against the
        new reference is a difference of two old ones), so when the model holds its rows and
        has no aliased columns the cone is analysed again in the new coordinates.  Otherwise
        (saved results without data) the direction is mapped: with all K coefficient rows
        :math:`D_k` (the old reference's row 0), the direction for reference :math:`r` has rows
        :math:`D_k - D_r`, and the coefficients it moves are reported as diverging.
        """
        eq = tuple(model.eq_outcomes)
        if eq == self.eq_outcomes:
            return self
        if aliased is None or not np.any(aliased):
            fresh = _reanalysed(model)
            if fresh is not None:
                return fresh
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
            "estimates are those of the last iteration. Remedies: fit(method='firth') (bias "
            "reduction: every estimate finite), fit(penalty='l2', alpha=...) (a ridge), "
            "conf_int(method='profile') (likelihood intervals, infinite where a coefficient "
            "diverges), or merging or dropping the categories behind it"
            + (f". {self.note}" if self.note else "")
        )


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
        A direction in coordinates where every column's largest magnitude is 1 (e.g. the
        solver's last step): on large data the rows nearest its boundary seed the programs.
        The report does not depend on it.

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
    :mod:`multilogit.engine.backend`), read in passes: on large data the linear programs see
    a subset of the rows, checked against all of them (:mod:`~multilogit.fit.recession`)."""
    J, p = backend.J, backend.p

    def absmax(c):
        return np.max(np.abs(c.X[c.weights > 0]), axis=0, initial=0.0)

    parts = backend.reduce(absmax, frames=False)
    amax = np.max(np.vstack(parts), axis=0, initial=0.0) if parts else np.zeros(p)
    colscale = np.where(amax > 0, amax, 1.0)
    source = recession.RowSource.from_backend(backend, colscale)
    if candidate is not None:
        candidate = np.asarray(candidate, dtype=np.float64).reshape(J, p)
    cone = recession.analyse(source, candidate, min(_SMALL_PAIRS, recession.WHOLE_PAIRS))
    if cone is None:
        return None
    return _report(cone, colscale, (eq_outcomes, ref, exog_names, levels))


def _report(cone, colscale, labels) -> Separation:
    """The :class:`Separation` of a :class:`~multilogit.fit.recession.Cone` (found in
    unit-column coordinates; ``colscale`` takes it back to the original ones)."""
    eq_outcomes, ref, exog_names, levels = labels
    J, p = cone.direction.shape
    mask = cone.diverging
    D_orig = np.where(mask, cone.direction, 0.0) / colscale
    top = np.abs(D_orig).max()
    D_orig = D_orig / top if top > 0 else D_orig
    names_eq = list(eq_outcomes) if eq_outcomes else [f"y{j + 1}" for j in range(J)]
    labels_all = [*names_eq, ref]
    outcomes = [labels_all[k] for k in sorted(cone.involved, key=lambda k: (k < 0, k))]
    if levels:
        outcomes.sort(key=list(levels).index)
    names = tuple(exog_names) if exog_names else tuple(f"x{k + 1}" for k in range(p))
    terms = tuple(names[k] for k in range(p) if mask[:, k].any())
    # The flat space back in the original coordinates (beta = b / scale).
    null = cone.null_space / colscale[:, None]
    nobs, n_separated, n_perfect = cone.counts
    return Separation(
        kind="complete" if cone.complete else "quasi-complete",
        outcomes=tuple(outcomes),
        terms=terms,
        params=mask | _support(null),
        null_space=null,
        direction=D_orig,
        n_separated=n_separated,
        n_perfect=n_perfect,
        nobs=nobs,
        eq_outcomes=tuple(names_eq),
        exog_names=names,
    )


def _reanalysed(model) -> Separation | None:
    """:func:`model_separation` of a model that holds its rows; ``None`` without them."""
    try:
        backend = model.backend
    except MultilogitError:
        return None  # saved results without their data
    if backend is None or not backend.n:
        return None
    return model_separation(model)


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


def few_rows_report(model) -> Separation | None:
    """Outcomes with very few rows separated from all others by themselves
    (:mod:`~multilogit.fit.sparse_outcomes`: a program in ``p`` unknowns each), reported per
    outcome; ``None`` when there are none."""
    from .sparse_outcomes import FEW_ROWS, few_rows_separation

    found, D, counts = few_rows_separation(model.backend)
    if not found:
        return None
    eq, levels = list(model.eq_outcomes), list(model.outcomes)
    label = [eq[k] if k >= 0 else model.ref for k, _, _ in found]
    mask = D != 0
    for k, _, _ in found:
        if k >= 0:
            # Its rows' probabilities go to 1 and the others' to 0: nothing in the limit
            # identifies the rest of the equation either.
            mask[k] = True
    names = tuple(model.exog_names)
    rows = ", ".join(
        f"{lab!r} ({m} row{'s' if m > 1 else ''})"
        for lab, (_, m, _) in zip(label, found, strict=True)
    )
    return Separation(
        kind="quasi-complete",
        outcomes=tuple(sorted(label, key=levels.index)),
        terms=tuple(n for n, c in zip(names, mask.any(axis=0), strict=True) if c),
        params=mask,
        direction=D,
        n_separated=counts[1],
        n_perfect=counts[2],
        nobs=counts[0],
        eq_outcomes=tuple(eq),
        exog_names=names,
        note=(
            f"Outcome(s) with at most {FEW_ROWS} rows separated from all others by themselves: "
            f"{rows}; their coefficients are not estimable (merge them with other outcomes, "
            "drop their rows, or fit them with method='firth' or a penalty)"
        ),
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
        #: The iterate at the top of the latest iteration (solver coordinates), where the
        #: objective was last known to be finite.
        self.last_beta: np.ndarray | None = None
        #: Stop the solver at its next iteration (separation known, fit to be reported).
        self.stop_now = False

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
            if not small:
                # At many outcomes the programs over all coefficients are large; outcomes
                # with a handful of rows separated by themselves are found and named
                # cheaply first.
                self.result = few_rows_report(self.model)
                self.checked = self.result is not None
            if self.checked:
                pass
            elif small or force:
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
        self.last_beta = np.array(beta, dtype=np.float64, copy=True)
        if self.stop_now and self.result is not None:
            return f"stopped early: {self.result.kind} separation"
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
    numerically singular or not finite there), every entry is NaN.
    """
    try:
        return np.array(compute(), dtype=np.float64)
    except FitError:
        return np.full((J * p, J * p), np.nan)
    except MultilogitError:
        raise  # the user's input (e.g. cluster groups): say so whatever the fit
    except (ValueError, np.linalg.LinAlgError):
        # A non-finite information where a saturated fit stopped (after the solver's failure
        # under separation="warn"): linear algebra refuses it.
        return np.full((J * p, J * p), np.nan)
