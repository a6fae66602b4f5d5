"""Hypothesis tests on fitted multinomial logits: Wald, likelihood-ratio, combining outcomes and
independence of irrelevant alternatives.

Every test returns one :class:`TestResult` (``statistic``, ``df``, ``pvalue``, a readable
``str`` and an HTML view); the per-term tables (:func:`wald_test_terms`, :func:`anova`) are
DataFrames with the same three columns.

Conventions
-----------
Coefficients are named ``"outcome:term"`` (e.g. ``"general:write"``), the outcome being a
non-reference outcome label; a bare term (``"write"``) means that term in every equation, so a
constraint written with bare terms only is repeated once per equation.  All statistics are
:math:`\\chi^2`: the Wald statistic
:math:`(R\\hat\\beta - q)^\\top (R \\hat V R^\\top)^{-1} (R\\hat\\beta - q)` uses the results'
covariance (robust or cluster if the results have it), the likelihood-ratio statistic
:math:`2(\\ell_1 - \\ell_0)` needs a true likelihood (no sampling weights).
"""

from __future__ import annotations

import difflib
import html
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import patsy
from scipy import linalg

from ..data.design import match_level
from ..engine.constrained import implies, null_space
from ..engine.paired import RowComparison, compare_rows, residual_absmax
from ..exceptions import DataError, PerfectSeparationWarning
from . import distributions as stats
from .covariance import inverse_information
from .reparam import repivot

__all__ = [
    "TestResult",
    "wald_test",
    "wald_test_terms",
    "lr_test",
    "anova",
    "test_combine",
    "iia_test",
]


@dataclass(frozen=True)
class TestResult:
    """Result of a :math:`\\chi^2` test.

    Attributes
    ----------
    statistic, df, pvalue : float
    name : str
        The test (``"Wald test"``, ``"Likelihood-ratio test"``, ...).
    null : str
        The null hypothesis in words or constraints.
    note : str
        Anything the reader must know (e.g. a variance difference that is not positive
        definite).
    """

    __test__ = False  # not a pytest test class

    statistic: float
    df: float
    pvalue: float
    name: str
    null: str = ""
    note: str = ""

    def __str__(self) -> str:
        lines = [self.name]
        if self.null:
            lines.append(f"H0: {self.null}")
        lines.append(f"chi2({self.df:g}) = {self.statistic:.4f}, Prob > chi2 = {self.pvalue:.4g}")
        if self.note:
            lines.append(f"Note: {self.note}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"<TestResult {self.name}: statistic={self.statistic:.6g}, df={self.df:g}, "
            f"pvalue={self.pvalue:.4g}>"
        )

    def _repr_html_(self) -> str:
        e = html.escape
        rows = [f"<tr><th colspan='2'>{e(self.name)}</th></tr>"]
        if self.null:
            rows.append(f"<tr><td>H0</td><td>{e(self.null)}</td></tr>")
        rows += [
            f"<tr><td>chi2({self.df:g})</td><td>{self.statistic:.4f}</td></tr>",
            f"<tr><td>Prob &gt; chi2</td><td>{self.pvalue:.4g}</td></tr>",
        ]
        if self.note:
            rows.append(f"<tr><td>Note</td><td>{e(self.note)}</td></tr>")
        return "<table class='simpletable'>" + "".join(rows) + "</table>"


def _chi2(stat, df, name, null="", note="") -> TestResult:
    return TestResult(float(stat), float(df), float(stats.chi2.sf(stat, df)), name, null, note)


# -- Wald tests -----------------------------------------------------------------------------------


def _qualified_names(model) -> list[str]:
    return [f"{o}:{t}" for o in model.eq_outcomes for t in model.exog_names]


def _token_at(code: str, start: int) -> str:
    """The name starting at ``start`` of a constraint: up to a space, ``=``, or an operator
    outside brackets (names such as ``C(ses)[T.high]`` hold brackets)."""
    depth, end = 0, start
    while end < len(code):
        ch = code[end]
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif depth <= 0 and (ch.isspace() or ch in "=+*/," or (ch == "-" and end > start)):
            break
        end += 1
    return code[start:end]


def _constraint_message(model, constraints, exc, qual, bare) -> str:
    """What is wrong with a constraint patsy cannot parse: the unknown name, or a reference
    outcome's coefficient, and the valid names."""
    first = str(exc).splitlines()[0]
    origin = getattr(exc, "origin", None)
    names = ", ".join(map(repr, qual + bare))
    valid = f"coefficients are named 'outcome:term' or by a bare term for all equations: {names}"
    if origin is None or "unrecognized token" not in first:
        return f"cannot parse constraints {constraints!r}: {first}; {valid}"
    token = _token_at(origin.code, origin.start)
    outcome = token.split(":", 1)[0] if ":" in token else None
    if outcome is not None and outcome == str(model.ref):
        why = (
            f"{token!r} is a coefficient of the reference outcome {outcome!r}, which is 0 by "
            "definition (refit with another ref= or test the other outcomes' coefficients)"
        )
    else:
        close = difflib.get_close_matches(token, qual + bare, n=3)
        hint = f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""
        why = f"unknown name {token!r}{hint}"
    return f"cannot parse constraint {origin.code!r}: {why}; {valid}"


def constraint_matrix(model, constraints) -> tuple[np.ndarray, np.ndarray]:
    """``(R, q)`` for string constraints such as ``"general:write = vocation:write"``.

    A constraint written only with bare terms (``"write"``, ``"write = 2 * ses[T.high]"``) is
    applied in every equation (one row per non-reference outcome).
    """
    if isinstance(constraints, str):
        constraints = [constraints]
    constraints = [c for c in constraints]
    if not constraints or not all(isinstance(c, str) for c in constraints):
        raise DataError("constraints must be a non-empty string or list of strings")
    qual = _qualified_names(model)
    bare = [str(t) for t in model.exog_names]
    Jp, p = len(qual), len(bare)
    try:
        lc = patsy.constraint.linear_constraint(constraints, qual + bare)
    except patsy.PatsyError as exc:
        raise DataError(_constraint_message(model, constraints, exc, qual, bare)) from None
    R_rows, q_rows = [], []
    for coef, const in zip(lc.coefs, lc.constants.ravel(), strict=True):
        cq, cb = coef[:Jp], coef[Jp:]
        if np.any(cb != 0) and np.any(cq != 0):
            raise DataError(
                "a constraint mixes bare terms (all equations) with 'outcome:term' "
                "coefficients; write each coefficient as 'outcome:term'"
            )
        if np.any(cb != 0):
            for j in range(model.J):
                row = np.zeros(Jp)
                row[j * p : (j + 1) * p] = cb
                R_rows.append(row)
                q_rows.append(const)
        else:
            R_rows.append(cq)
            q_rows.append(const)
    return np.array(R_rows), np.array(q_rows, dtype=np.float64)


def _wald(res, R, q, name="Wald test", null="") -> TestResult:
    R = np.atleast_2d(np.asarray(R, dtype=np.float64))
    q = np.zeros(R.shape[0]) if q is None else np.asarray(q, dtype=np.float64).ravel()
    k = res._beta.size
    if R.shape[1] != k:
        raise DataError(f"R must have {k} columns (one per parameter); got {R.shape[1]}")
    if q.shape[0] != R.shape[0]:
        raise DataError(f"q must have {R.shape[0]} values (one per row of R); got {q.shape[0]}")
    if not (np.all(np.isfinite(R)) and np.all(np.isfinite(q))):
        raise DataError("R and q must be finite")
    if np.linalg.matrix_rank(R) < R.shape[0]:
        raise DataError(
            "the constraints are linearly dependent (redundant or contradictory); drop the "
            "duplicates"
        )
    aliased = res._nan_params
    if aliased is not None and np.any(R[:, aliased] != 0.0):
        names = [n for n, a in zip(_qualified_names(res.model), aliased, strict=True) if a]
        used = [
            n
            for n, a, c in zip(
                _qualified_names(res.model), aliased, np.any(R != 0.0, axis=0), strict=True
            )
            if a and c
        ]
        raise DataError(
            "the constraints involve coefficient(s) dropped as collinear (aliased): "
            + ", ".join(map(repr, used or names))
            + "; they are not estimable and cannot be tested"
        )
    imposed = res.fit_options.get("constraints")
    if imposed is not None:
        # Combinations the fit's own constraints fix have no sampling variation to test.
        RT = _unit_rows(R) @ null_space(np.asarray(imposed["R"], dtype=np.float64))
        if np.linalg.matrix_rank(RT, tol=1e-10) < R.shape[0]:
            raise DataError(_IMPOSED)
    r = R @ res._beta.ravel() - q
    # Only the coefficients the constraints use: the covariance of diverging ones (separation)
    # is NaN, and 0 * NaN would spoil a test that does not involve them.
    used = np.any(R != 0.0, axis=0)
    # R V R' through the results, which beyond the memory budget solve for it (no matrix V).
    middle = res._delta_form(R[:, used], used)
    if not np.all(np.isfinite(middle)):
        return TestResult(np.nan, float(R.shape[0]), np.nan, name, null, _untestable(res, used))
    try:
        stat = float(r @ linalg.solve(middle, r, assume_a="pos"))
    except linalg.LinAlgError:
        raise DataError(_IMPOSED) from None
    return _chi2(stat, R.shape[0], name, null)


_IMPOSED = (
    "the covariance of the constrained combinations R params is singular: the constraints "
    "tested are fixed by the constraints the model was fitted with (or linearly dependent on "
    "them), so there is nothing to test"
)


def _unit_rows(R: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(R, axis=1)
    return R / np.where(norms > 0, norms, 1.0)[:, None]


def _separated_coefficients(res, used) -> str:
    """The coefficients among ``used`` without an estimate under separation, named, the
    diverging ones apart from those not identified ("" if none)."""
    sep = res.separation
    if sep is None:
        return ""
    names = _qualified_names(res.model)
    diverging = np.asarray(sep.direction != 0).ravel() & used
    other = np.asarray(sep.params, dtype=bool).ravel() & used & ~diverging
    parts = []
    for label, mask in (("diverging", diverging), ("not identified", other)):
        if mask.any():
            parts.append(f"{label}: " + ", ".join(np.asarray(names)[mask]))
    return "; ".join(parts)


def _untestable(res, used) -> str:
    """Why a test of the coefficients ``used`` has no value."""
    detail = _separated_coefficients(res, used)
    if detail:
        return (
            f"the constraints involve coefficient(s) without an estimate under separation "
            f"({detail}): the test is not defined; test the other coefficients alone"
        )
    return "the covariance of the constrained coefficients is not finite: the test is not defined"


def wald_test(res, constraints, q=None) -> TestResult:
    """Wald test of linear constraints on the coefficients.

    Parameters
    ----------
    res : MultinomialLogitResults
    constraints : str, list of str, ndarray or (R, q) tuple
        Strings such as ``"general:write = vocation:write"``, ``"general:write"`` (that
        coefficient is 0), ``"write"`` (``write`` is 0 in every equation) or
        ``"general:ses[T.high] - 2 * vocation:write = 1"``; several constraints as a list or
        separated by commas.  Or a matrix ``R`` with one column per parameter in the flat
        outcome-major order of ``cov_params()`` (with ``q``, default 0).
    q : array-like, optional
        Right-hand side for a matrix ``R``.

    Returns
    -------
    TestResult
        :math:`W = (R\\hat\\beta - q)^\\top (R \\hat V R^\\top)^{-1} (R\\hat\\beta - q)
        \\sim \\chi^2_{\\mathrm{rank}\\,R}` using the results' covariance type.
    """
    if isinstance(constraints, list | tuple) and len(constraints) == 0:
        raise DataError("constraints must be a non-empty string, list of strings or matrix")
    if isinstance(constraints, tuple) and len(constraints) == 2 and q is None:
        constraints, q = constraints
    if isinstance(constraints, str) or (
        isinstance(constraints, list | tuple)
        and constraints
        and all(isinstance(c, str) for c in constraints)
    ):
        if q is not None:
            raise DataError("q is only used with a matrix R; write the value in the constraint")
        R, qv = constraint_matrix(res.model, constraints)
        null = constraints if isinstance(constraints, str) else ", ".join(constraints)
        return _wald(res, R, qv, null=null)
    if isinstance(constraints, pd.DataFrame):
        constraints = constraints.to_numpy()
    try:
        R = np.asarray(constraints, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError("constraints must be strings or a numeric matrix R") from None
    return _wald(res, R, q, null="R params = q")


def _term_slices(model) -> dict:
    info = model.design.design_info
    if info is None:
        return {name: slice(k, k + 1) for k, name in enumerate(model.exog_names)}
    return {term.name(): sl for term, sl in info.term_slices.items()}


def wald_test_terms(res) -> pd.DataFrame:
    """Joint Wald test of each formula term across all K-1 equations.

    A term with several columns (a categorical, an interaction) is tested jointly, so ``df`` is
    ``(K-1)`` times its number of columns.  Like R's ``car::Anova(type=3, test="Wald")`` table
    (including the intercept).  For an array model every column is a term.

    Returns
    -------
    DataFrame
        Index: terms; columns ``statistic``, ``df``, ``pvalue``.
    """
    model = res.model
    p, J = model.k_exog, model.J
    aliased = np.zeros(p, bool) if res._aliased is None else np.asarray(res._aliased, bool)
    rows, untested = {}, []
    for name, sl in _term_slices(model).items():
        # As car::Anova does, a term is tested on its estimable columns only; a term that was
        # dropped entirely as collinear has no test (NaN, df 0).
        cols = np.arange(p)[sl]
        cols = cols[~aliased[cols]]
        if not len(np.arange(p)[sl]):
            continue
        if not len(cols):
            rows[name] = (np.nan, 0, np.nan)
            continue
        R = np.zeros((J * len(cols), J * p))
        for j in range(J):
            for c, col in enumerate(cols):
                R[j * len(cols) + c, j * p + col] = 1.0
        t = _wald(res, R, None)
        rows[name] = (t.statistic, int(t.df), t.pvalue)
        if t.note:
            used = np.any(R != 0.0, axis=0)
            untested.append(f"{name!r} ({_separated_coefficients(res, used) or t.note})")
    if untested:
        # As Stata's ``test`` notes the constraints it drops: the row stays, NaN, and the
        # warning says which terms and coefficients could not be tested.
        warnings.warn(
            "under separation these terms cannot be tested (their Wald statistic is NaN): "
            + ", ".join(untested),
            PerfectSeparationWarning,
            stacklevel=3,
        )
    return pd.DataFrame.from_dict(
        rows, orient="index", columns=["statistic", "df", "pvalue"]
    ).rename_axis("term")


# -- likelihood-ratio tests -----------------------------------------------------------------------


def _require_likelihood(*results):
    for r in results:
        if r.model.weights is not None:
            raise DataError(
                "likelihood-ratio tests need a likelihood; a model with sampling weights has a "
                "pseudo-likelihood: use a Wald test"
            )


def _equation_levels(model) -> np.ndarray:
    """The outcome level of each of the model's equation codes (the reference's, ``-1``,
    last), so that rows of models with different references compare by outcome."""
    K = len(model.outcomes)
    levels = np.empty(K, dtype=np.int64)
    levels[model.outcome.eq_codes(np.arange(K))] = np.arange(K)
    return levels


_NOT_SAME_SAMPLE = "the models were not fitted on the same sample"
_REFIT_HINT = "refit both on the same data, e.g. after dropping missing values of every variable"


def _check_same_sample(a, b) -> RowComparison:
    """Check that two results were fitted on the same sample; return what the pass found.

    The two models must have the same number of rows, the same outcome levels, and at every
    row position the same outcome and the same likelihood weight (exactly); models in memory
    must also have the same row labels.  The rows are compared through the models' backends in
    one lockstep pass (:func:`~multilogit.engine.paired.compare_rows`: one range of rows of
    each at a time, on the cluster for two Dask models), so data larger than memory are checked
    row by row without being held.  The pass also factors the joint design of the two models,
    which the nesting check reads (:func:`_nested`).

    What passes is a guarantee on the likelihoods: both sum the same per-row terms (outcome and
    weight) over the same positions, so their difference is a likelihood ratio.  Rows of models
    on large data are matched by position (a Parquet source has no row labels): two models of
    the same source, or of differently partitioned copies of it in the same row order, pass;
    a source filtered or ordered differently, or rows dropped for missing values of a variable
    only one model uses, change the count or the outcomes and weights at some positions and
    fail.  The design values themselves are not compared (they differ by construction).
    """
    ma, mb = a.model, b.model
    if tuple(ma.outcomes) != tuple(mb.outcomes):
        raise DataError(
            f"{_NOT_SAME_SAMPLE}: the outcome levels differ ({list(ma.outcomes)} and "
            f"{list(mb.outcomes)}); {_REFIT_HINT}"
        )
    if ma.n_rows != mb.n_rows:
        raise DataError(f"{_NOT_SAME_SAMPLE}: {ma.n_rows} and {mb.n_rows} rows; {_REFIT_HINT}")
    if ma.is_in_memory and mb.is_in_memory and not ma.row_labels.equals(mb.row_labels):
        raise DataError(f"{_NOT_SAME_SAMPLE}: the row labels differ; {_REFIT_HINT}")
    cmp = compare_rows(
        _design_rows(ma.backend), _design_rows(mb.backend), _equation_levels(ma),
        _equation_levels(mb),
    )  # fmt: skip
    if cmp.outcome_mismatches or cmp.weight_mismatches:
        raise DataError(
            f"{_NOT_SAME_SAMPLE}: {cmp.outcome_mismatches} row(s) with another outcome and "
            f"{cmp.weight_mismatches} with another weight, the first at row position "
            f"{cmp.first_mismatch}; {_REFIT_HINT}"
        )
    return cmp


def _design_rows(backend):
    """The backend of the design rows alone (a model with an offset holds its design and
    its offsets apart; see :mod:`multilogit.engine.offset`)."""
    return getattr(backend, "plain", backend)


def _offsets_nested(small, big, tol: float = 1e-8) -> bool:
    """Whether the difference of the two models' offsets lies in the column space of the
    larger design in every equation: the smaller model's linear predictors
    :math:`X_s b + O_s` are then those of the larger one, :math:`X_b c + O_b`, for some
    :math:`c` (an offset :math:`0.5 x` is nested in a model with :math:`x` a free column)."""
    ms, mb = small.model, big.model
    shape = (ms.n_rows, ms.J)
    o_s = np.zeros(shape) if ms.offset is None else np.asarray(ms.offset)
    o_b = np.zeros(shape) if mb.offset is None else np.asarray(mb.offset)
    if ms.ref != mb.ref:
        raise DataError(
            "models with an offset are compared with the same reference outcome; repivot one"
        )
    D = o_s - o_b
    if not np.any(D):
        return True
    X = np.asarray(mb.exog, dtype=np.float64)
    coef, *_ = np.linalg.lstsq(X, D, rcond=None)
    resid = np.max(np.abs(D - X @ coef), axis=0)
    return bool(np.all(resid <= tol * (1.0 + np.max(np.abs(D), axis=0))))


# Relative tolerance of the nesting check, per column of the smaller design (see _nested).
_NESTED_TOL = 1e-8


def _nested(small, big, R: np.ndarray, tol: float = _NESTED_TOL) -> bool:
    """Whether the columns of ``small``'s design lie in the column space of ``big``'s.

    Column :math:`j` of the smaller design :math:`X_s` is in the span of the larger design
    :math:`X_b` when the residual :math:`r_j` of its least-squares projection on :math:`X_b` is
    small in every row:

    .. math::

        \\max_i |r_{ij}| \\le \\mathrm{tol}\\, (1 + \\max_i |X_{s,ij}|).

    ``R`` is a triangular factor of the joint design :math:`[X_b, X_s]`, larger design first
    (from the lockstep pass of ``_check_same_sample`` called as ``(big, small)``): least
    squares between its columns give the projection's coefficients and the residual norms
    :math:`\\lVert r_j \\rVert_2` without the rows (a QR factor, not the Gram matrix, so that
    the residual of a nested column is not lost to cancellation).  As
    :math:`\\max_i |r_{ij}| \\le \\lVert r_j \\rVert_2 \\le \\sqrt{n} \\max_i |r_{ij}|`, the
    norms settle the decision unless one falls between the bound and :math:`\\sqrt{n}` times
    it; only then a second lockstep pass finds the largest residuals themselves.  Models in
    memory and on large data take the same path, so the decision is the same for the same
    rows.
    """
    ms, mb = small.model, big.model
    pb, n = mb.k_exog, mb.n_rows
    x_cols, y_cols = np.arange(pb), pb + np.arange(ms.k_exog)
    # The cutoff of numpy's lstsq on the rows of X_b, so that the same directions of a
    # rank-deficient larger design are dropped.
    rcond = np.finfo(np.float64).eps * max(n, pb)
    coef, *_ = np.linalg.lstsq(R[:, x_cols], R[:, y_cols], rcond=rcond)
    norm = np.linalg.norm(R[:, y_cols] - R[:, x_cols] @ coef, axis=0)
    lo, hi = ms.backend.column_range()
    bound = tol * (1.0 + np.maximum(hi, -lo))
    if np.all(norm <= bound):
        return True
    if np.any(norm > np.sqrt(n) * bound):
        return False
    resid = residual_absmax(
        _design_rows(mb.backend), _design_rows(ms.backend), x_cols, y_cols, coef
    )
    return bool(np.all(resid <= bound))


def _constraints_of(res):
    cons = res.fit_options.get("constraints")
    if cons is None:
        return np.zeros((0, res._beta.size)), np.zeros(0)
    return np.atleast_2d(np.asarray(cons["R"], dtype=np.float64)), np.asarray(
        cons["q"], dtype=np.float64
    )


def _check_constraints_nested(small, full) -> None:
    """A fit under linear constraints (``fit(constraints=...)``) is nested in another of the
    same design when its constraints imply the other's (every coefficient vector allowed in
    the smaller model is allowed in the larger); the difference in parameters is then the
    number of constraints it adds.  Raises ``DataError`` otherwise."""
    R_f, q_f = _constraints_of(full)
    R_s, q_s = _constraints_of(small)
    if not len(R_f) and not len(R_s):
        return
    if not len(R_f) and small.model.k_exog <= full.model.k_exog:
        # The larger model is unconstrained: the smaller one's design is in its column space
        # (checked), so any constraints of the smaller one only restrict it further.
        return
    same = list(small.model.exog_names) == list(full.model.exog_names) and list(
        small.model.eq_outcomes
    ) == list(full.model.eq_outcomes)
    if not same:
        raise DataError(
            "the larger model is constrained and the designs differ: nesting of constrained "
            "models is checked for fits of the same design and reference outcome; refit the "
            "smaller model as the larger one with more constraints"
        )
    if not implies(R_s, q_s, R_f, q_f):
        raise DataError(
            "the models are not nested: the constraints of the larger model do not all follow "
            "from those of the smaller one"
        )


def _ordered(a, b):
    if a.k_params == b.k_params:
        raise DataError(
            f"the models have the same number of parameters ({a.k_params}); nested models "
            "differ in size"
        )
    return (a, b) if a.k_params > b.k_params else (b, a)


def lr_test(res, restricted) -> TestResult:
    """Likelihood-ratio test of ``restricted`` against the larger model (either order).

    Checks that both were fitted on the same rows, outcomes and weights, that the smaller
    design's columns lie in the larger's column space (nesting), and that the larger model does
    not fit worse.  :math:`LR = 2 (\\ell_{\\mathrm{full}} - \\ell_{\\mathrm{restricted}})
    \\sim \\chi^2_{k_f - k_r}`.

    The checks read the rows through the models' backends, in one lockstep pass over both
    (two for a nesting decision close to the tolerance), so they work for models on Parquet
    and Dask data as in memory, and between a model in memory and one on large data (rows are
    then matched by position; see ``_check_same_sample``).  On Dask the pass runs on the
    cluster, the second model's partitions cut at the first's boundaries; between Dask and
    other data, the partitions come to this process one at a time.
    """
    _require_likelihood(res, restricted)
    full, small = _ordered(res, restricted)
    rows = _check_same_sample(full, small)
    if not _nested(small, full, rows.R):
        raise DataError(
            "the models are not nested: the smaller model's design columns are not in the "
            "column space of the larger model's"
        )
    _check_constraints_nested(small, full)
    has_offset = full.model.offset is not None or small.model.offset is not None
    if has_offset and not (full.model.is_in_memory and small.model.is_in_memory):
        raise DataError("a model with an offset is compared with another in memory only")
    if has_offset and not _offsets_nested(small, full):
        raise DataError(
            "the models are not nested: their offsets differ by more than the larger model's "
            "columns can absorb"
        )
    stat = 2.0 * (full.llf - small.llf)
    if stat < -1e-6 * (1.0 + abs(full.llf)):
        raise DataError(
            "the larger model has the lower log-likelihood; one of the fits did not converge"
        )
    return _chi2(
        max(stat, 0.0),
        full.k_params - small.k_params,
        "Likelihood-ratio test",
        f"restricted model ({small.k_params} params) holds against full ({full.k_params})",
    )


def _refit(res, model):
    """Fit ``model`` (a submodel of ``res.model``: other columns, rows or outcome coding) with
    the options ``res`` was fitted with; the covariance options are not reused (the refits
    serve likelihood-ratio statistics, and row-aligned options such as cluster ids would not fit
    other rows)."""
    options = {k: v for k, v in res.fit_options.items() if not k.startswith("cov_")}
    if options.get("constraints") is not None:
        raise DataError(
            "this test refits the model on other columns or outcomes, where the constraints "
            "of a constrained fit (fit(constraints=...)) have no meaning: it is not available "
            "for a constrained fit; fit the restricted model yourself and use lr_test"
        )
    return model.fit(**options)


def _drop_one(res) -> pd.DataFrame:
    _require_likelihood(res)
    model = res.model
    rows = {}
    for name, sl in _term_slices(model).items():
        cols = np.arange(model.k_exog)[sl]
        if not len(cols) or list(cols) == [model._intercept_col()]:
            continue
        keep = np.setdiff1d(np.arange(model.k_exog), cols)
        if not len(keep):
            continue
        r = _refit(res, model.submodel(columns=keep))
        stat = max(2.0 * (res.llf - r.llf), 0.0)
        # Estimable parameters lost: fewer than the term's columns when some were aliased (a
        # term whose columns other terms span loses none, as R's drop1 reports Df 0).
        df = res.k_params - r.k_params
        rows[name] = (stat, df, stats.chi2.sf(stat, df) if df > 0 else np.nan)
    return pd.DataFrame.from_dict(
        rows, orient="index", columns=["statistic", "df", "pvalue"]
    ).rename_axis("term")


def anova(*results) -> pd.DataFrame:
    """Likelihood-ratio analysis of deviance.

    With one model: drop-one tests, refitting without each formula term (not the intercept),
    like R's ``drop1(fit, test="Chisq")``; index terms, columns ``statistic``, ``df``,
    ``pvalue``.  With several nested models (any order, sorted by size): sequential tests of
    each against the previous, like R's ``anova(m1, m2, ...)``; columns ``k_params``, ``llf``,
    ``deviance``, ``statistic``, ``df``, ``pvalue`` (NaN on the first row).
    """
    if not results:
        raise DataError("anova needs at least one fitted model")
    if len(results) == 1:
        return _drop_one(results[0])
    _require_likelihood(*results)
    ordered = sorted(results, key=lambda r: r.k_params)
    rows = [(ordered[0].k_params, ordered[0].llf, ordered[0].deviance, np.nan, np.nan, np.nan)]
    for small, big in zip(ordered[:-1], ordered[1:], strict=True):
        t = lr_test(big, small)
        rows.append((big.k_params, big.llf, big.deviance, t.statistic, t.df, t.pvalue))
    return pd.DataFrame(
        rows,
        columns=["k_params", "llf", "deviance", "statistic", "df", "pvalue"],
        index=pd.RangeIndex(1, len(rows) + 1, name="model"),
    )


# -- combining outcomes --------------------------------------------------------------------


def _level(model, label):
    return match_level(label, model.outcomes, model.endog_names)


def test_combine(res, a, b, method: str = "wald") -> TestResult:
    """Test that outcomes ``a`` and ``b`` can be combined, as Stata's ``mlogtest, combine``
    (``method="wald"``) and ``mlogtest, lrcombine`` (``method="lr"``).

    H0: all slopes (every coefficient but the intercept) of ``a`` equal those of ``b``, i.e. the
    odds of ``a`` against ``b`` do not depend on the regressors; ``df`` = number of slopes.

    The LR version uses the exact restricted fit: under H0 the likelihood factorises into a model
    with ``a`` and ``b`` merged and a constant split :math:`\\pi_a = n_a / (n_a + n_b)`, so
    :math:`\\ell_0 = \\ell_{\\mathrm{merged}} + n_a \\log \\pi_a + n_b \\log (1 - \\pi_a)`
    (weighted counts).  It needs an intercept and no sampling weights.
    """
    if method not in ("wald", "lr"):
        raise ValueError(f"method must be 'wald' or 'lr'; got {method!r}")
    model = res.model
    a, b = _level(model, a), _level(model, b)
    if a == b:
        raise DataError(f"test_combine needs two different outcomes; got {a!r} twice")
    ic = model._intercept_col()
    slopes = [k for k in range(model.k_exog) if k != ic]
    if not slopes:
        raise DataError("the model has no slopes to compare")
    null = f"outcomes {a!r} and {b!r} can be combined (all slopes equal)"
    if method == "wald":
        p = model.k_exog
        eq = {lv: j for j, lv in enumerate(model.eq_outcomes)}
        R = np.zeros((len(slopes), model.J * p))
        for r, k in enumerate(slopes):
            if a in eq:
                R[r, eq[a] * p + k] += 1.0
            if b in eq:
                R[r, eq[b] * p + k] -= 1.0
        return _wald(res, R, None, "Wald test for combining outcomes", null)
    _require_likelihood(res)
    if ic is None:
        raise DataError("the LR test for combining outcomes needs a model with an intercept")
    levels = list(model.outcomes)
    ia, ib = levels.index(a), levels.index(b)
    n_k = model.outcome_counts
    na, nb = n_k[ia], n_k[ib]
    split = sum(n * np.log(n / (na + nb)) for n in (na, nb) if n > 0)
    if len(levels) == 2:
        ll0 = res.llnull
    else:
        new_levels = [lv for lv in levels if lv != b]
        remap = np.array([new_levels.index(lv if lv != b else a) for lv in levels])
        ref = a if model.ref == b else model.ref
        merged = _refit(res, model.submodel(level_map=remap, levels=new_levels, ref=ref))
        ll0 = merged.llf + split
    stat = max(2.0 * (res.llf - ll0), 0.0)
    return _chi2(stat, len(slopes), "Likelihood-ratio test for combining outcomes", null)


# -- independence of irrelevant alternatives -----------------------------------------------------


# Rank tolerance of the IIA test's standardised variance difference (see iia_test).
_IIA_RANK_TOL = float(np.sqrt(np.finfo(float).eps))


def iia_test(res, omit, include_intercept: bool = True) -> TestResult:
    """Hausman-McFadden test of the independence of irrelevant alternatives.

    Refits the model without the rows of outcome ``omit`` (same reference; if ``omit`` is the
    reference, the full results are first re-based on another outcome with
    :func:`~.reparam.repivot`) and compares the coefficients common to both fits:

    .. math::

        H = (\\hat\\beta_r - \\hat\\beta_f)^\\top (\\hat V_r - \\hat V_f)^{-}
            (\\hat\\beta_r - \\hat\\beta_f) \\sim \\chi^2_{q},

    with the inverse-information (efficient) covariances (intercepts included unless
    ``include_intercept=False``; as Stata's ``mlogtest, hausman``).  The degrees of freedom
    ``q`` are the rank of :math:`\\hat V_r - \\hat V_f`, as Stata's ``hausman``: the number of
    eigenvalues of the difference standardised by the restricted fit's standard errors,
    :math:`S^{-1} (\\hat V_r - \\hat V_f) S^{-1}` (a scale on which the restricted covariance
    is a correlation matrix), whose magnitude exceeds
    :math:`\\sqrt{\\epsilon} \\approx 1.5 \\times 10^{-8}`.  The two covariances come from
    separately converged fits, so a direction in which both estimators are equally efficient
    shows as rounding noise, not as an exact zero; the generalised inverse (of the standardised
    difference) drops the same directions.  When the difference is not positive definite the
    statistic can be negative, and the result carries a note (Hausman and McFadden (1984) read
    a negative value as evidence for IIA).  With rank 0 there is nothing to test: the statistic
    is 0 and the p-value NaN.
    """
    _require_likelihood(res)
    model = res.model
    omit = _level(model, omit)
    levels = list(model.outcomes)
    if len(levels) < 3:
        raise DataError("the IIA test needs at least three outcomes (two remain after omitting)")
    full = res
    if omit == model.ref:
        full = repivot(res, next(lv for lv in levels if lv != omit))
    fm = full.model
    new_levels = [lv for lv in levels if lv != omit]
    remap = np.full(len(levels), -1)  # the omitted outcome's rows are left out
    remap[[levels.index(lv) for lv in new_levels]] = np.arange(len(new_levels))
    restricted = _refit(res, fm.submodel(level_map=remap, levels=new_levels, ref=fm.ref))
    p = fm.k_exog
    ic = fm._intercept_col()
    cols = [k for k in range(p) if include_intercept or k != ic]
    eq_f = list(fm.eq_outcomes)
    eq_r = list(restricted.model.eq_outcomes)
    idx_f = [eq_f.index(lv) * p + k for lv in eq_r for k in cols]
    idx_r = [eq_r.index(lv) * p + k for lv in eq_r for k in cols]
    V_f = inverse_information(full._state.info)[np.ix_(idx_f, idx_f)]
    V_r = inverse_information(restricted._state.info)[np.ix_(idx_r, idx_r)]
    d = restricted._beta.ravel()[idx_r] - full._beta.ravel()[idx_f]
    Vd = (V_r - V_f + (V_r - V_f).T) / 2.0
    # Standardised, so that the rank tolerance does not depend on the columns' units.
    se = np.sqrt(np.diag(V_r))
    se = np.where(se > 0, se, 1.0)
    eig, vec = np.linalg.eigh(Vd / np.outer(se, se))
    kept = np.abs(eig) > _IIA_RANK_TOL
    df = int(kept.sum())
    note = ""
    if eig.min() <= _IIA_RANK_TOL:
        note = (
            f"V_restricted - V_full is not positive definite (rank {df} of {len(d)}); a "
            "generalized inverse is used and the statistic may be negative (Hausman-McFadden: "
            "evidence for IIA)"
        )
    z = vec[:, kept].T @ (d / se)
    stat = float(z @ (z / eig[kept]))
    if df == 0:
        pval = float("nan")  # the two fits are equally efficient: nothing to test
    else:
        pval = float(stats.chi2.sf(stat, df)) if stat >= 0 else 1.0
    return TestResult(
        stat,
        float(df),
        pval,
        "Hausman-McFadden test of IIA",
        f"odds between the remaining outcomes do not depend on {omit!r} (IIA)",
        note,
    )
