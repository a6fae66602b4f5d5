"""Results of a fit beyond the memory budget: the covariance as an operator, not a matrix.

A fit whose dense information (:func:`~multilogit.solve.conjugate.dense_information_bytes`)
does not fit ``memory_budget`` is solved by Newton-CG, and its covariance
:math:`C = \\mathcal{I}(\\hat\\beta)^{-1}` is never formed.  What any inferential quantity
needs of :math:`C` is a few of its columns or a form :math:`G C G^\\top` with a few rows
:math:`G`, each column one preconditioned conjugate-gradient solve with Hessian-vector
products (:class:`~multilogit.solve.conjugate.InformationSolver`, some tens of passes over
the rows):

===============================================  ==============================================
quantity                                          solves
===============================================  ==============================================
``bse_for(terms, outcomes)``, ``conf_int(...)``   one per selected coefficient
``cov_params(column=idx)``                         one per index (:math:`C_{:,\\mathrm{idx}}`)
``cov_params(r_matrix=R)``, ``wald_test(R)``       one per constraint (:math:`C R^\\top`)
``summary(outcomes=[...])``                        one per coefficient of those equations
``get_margeff()``                                  one per effect (variables times K)
===============================================  ==============================================

Solved columns are cached, so asking again (or for an overlapping subset) costs nothing.
``params``, ``llf``, ``llnull``, ``predict``, the iteration log and the information criteria
are those of any fit, and ``summary()`` without ``outcomes`` is the compact table (one row per
term, coefficients only; :func:`~multilogit.results.summary.compact_table`).  What needs every
column (``bse``, ``tvalues``, ``pvalues``, ``cov_params()``, ``conf_int()`` without a
selection, ``summary(compact=False)``, ``rrr``, ``save``) raises
:class:`~multilogit.exceptions.CovarianceBudgetError` naming the subset arguments and the size
the full matrix would take.

Robust covariances: the sandwich :math:`C M C` restricted to a subset is
:math:`W^\\top M W` with :math:`W = C B` (``B`` the unit columns of the subset, or
:math:`R^\\top`), and :math:`W^\\top M W = \\sum_i f_i (s_i^\\top W)^\\top (s_i^\\top W)` over the
rows' scores :math:`s_i` is one more pass (:func:`score_form`), no :math:`q \\times q` meat.  So
``HC0`` and ``HC1`` are available beyond the budget (:data:`MATRIX_FREE_COV_TYPES`) for rows
without sampling weights (whose meat weighs each score by the squared weight, which the
backends' chunks do not carry apart from the frequency weights); a cluster covariance, whose
meat sums the scores by group, and any robust covariance with sampling weights are refused
before the fit with that said.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..exceptions import CovarianceBudgetError
from ..inference.covariance import get_estimator
from ..solve.conjugate import InformationSolver, dense_information_bytes
from ..solve.objective import Objective
from .results import MultinomialLogitResults

__all__ = [
    "COV_RTOL",
    "MATRIX_FREE_COV_TYPES",
    "CovarianceOperator",
    "MatrixFreeResults",
    "sandwich_refusal",
    "score_form",
]

#: Covariance types available beyond the memory budget (the sandwiches for rows without
#: sampling weights).
MATRIX_FREE_COV_TYPES = ("nonrobust", "HC0", "HC1")


def sandwich_refusal(cov_type: str, weighted: bool = False) -> str:
    """Why ``cov_type`` is not available beyond the memory budget."""
    why = (
        "with sampling weights the meat weighs each score by the squared weight, which the "
        "rows' pass does not see"
        if weighted
        else "it needs the meat matrix of the scores (of the groups' score sums), as large as "
        "the information"
    )
    return (
        f"cov_type={cov_type!r} is not available beyond the memory budget: {why}. Beyond it "
        f"the covariance types are {', '.join(map(repr, MATRIX_FREE_COV_TYPES))} (the "
        "sandwiches without sampling weights); refit with a larger memory_budget (bytes) if "
        "the machine has the memory"
    )


#: Relative residual of each solve (in the preconditioner's norm).  With the two-level
#: preconditioner the condition number left is small, so the columns' relative error is a few
#: times this: standard errors equal the dense ones to about 1e-10.
COV_RTOL = 1e-12


class CovarianceOperator:
    """:math:`C = (w\\,\\mathcal{I}_b(\\hat\\beta))^{-1}` without the matrix, as products.

    Parameters
    ----------
    backend :
        The rows, as the solver read them (sampling weights divided by ``weight_scale``).
    beta : ndarray, shape (J, p)
        The estimates.
    weight_scale : float
        What the rows' sampling weights were divided by: the information in the scale of the
        weights as given is ``weight_scale`` times the backend's.
    memory_budget : float
        Bytes the solved columns and the rows' cached probabilities may take.
    rtol : float
        Relative residual of each conjugate-gradient solve.
    """

    def __init__(
        self,
        backend,
        beta: np.ndarray,
        weight_scale: float,
        memory_budget: float,
        rtol: float = COV_RTOL,
    ):
        self.backend = backend
        beta = np.asarray(beta, dtype=np.float64)
        self.beta = beta
        self.q = beta.size
        self.weight_scale = float(weight_scale)
        self.memory_budget = float(memory_budget)
        self._solver = InformationSolver(Objective(backend), beta, rtol, memory_budget)
        self._columns: dict[int, np.ndarray] = {}

    @property
    def products(self) -> int:
        """Hessian-vector products (passes over the rows) spent so far."""
        return self._solver.products

    def check_size(self, r: int, what: str) -> None:
        """Refuse ``r`` columns of length ``q`` (three copies at the peak) beyond the
        budget."""
        need = 3.0 * 8.0 * r * self.q
        if need > self.memory_budget:
            raise CovarianceBudgetError(
                f"{what} needs {r} columns of the covariance ({r} x {self.q}, about "
                f"{need / 2**30:.2g} GiB), beyond memory_budget={self.memory_budget / 2**30:.2g} "
                "GiB: select fewer terms or outcomes"
            )

    def columns(self, idx) -> np.ndarray:
        """:math:`C_{:,\\mathrm{idx}}`, shape ``(q, len(idx))``; solved columns are kept."""
        idx = [int(k) for k in np.asarray(idx, dtype=np.int64).ravel()]
        self.check_size(len(set(idx) | set(self._columns)), "this selection")
        todo = sorted(set(k for k in idx if k not in self._columns))
        if todo:
            rhs = np.zeros((self.q, len(todo)))
            rhs[todo, np.arange(len(todo))] = 1.0
            solved = self._solver.solve(rhs, todo) / self.weight_scale
            for c, k in enumerate(todo):
                col = solved[:, c]
                col.setflags(write=False)
                self._columns[k] = col
        if not idx:
            return np.zeros((self.q, 0))
        return np.column_stack([self._columns[k] for k in idx])

    def variances(self, idx) -> np.ndarray:
        """The diagonal entries :math:`C_{kk}` for ``k`` in ``idx``."""
        idx = np.asarray(idx, dtype=np.int64).ravel()
        cols = self.columns(idx)
        return cols[idx, np.arange(idx.size)]

    def solve(self, B: np.ndarray) -> np.ndarray:
        """:math:`C B` for ``B`` of shape ``(q, r)`` (unit columns reuse the cached ones)."""
        B = np.asarray(B, dtype=np.float64)
        nz = B != 0
        if B.shape[1] and np.all((nz.sum(axis=0) == 1) & np.all((B == 0) | (B == 1), axis=0)):
            return self.columns(np.argmax(nz, axis=0))
        return self._solver.solve(B) / self.weight_scale

    def form(self, G: np.ndarray) -> np.ndarray:
        """:math:`G C G^\\top` for ``G`` of shape ``(r, q)``: ``r`` solves (unit rows reuse the
        cached columns)."""
        G = np.atleast_2d(np.asarray(G, dtype=np.float64))
        if G.shape[1] != self.q:
            raise ValueError(f"G must have {self.q} columns; got {G.shape}")
        self.check_size(G.shape[0], "this form")
        nz = G != 0
        unit = (nz.sum(axis=1) == 1) & np.all((G == 0) | (G == 1), axis=1)
        if np.all(unit):
            CG = self.columns(np.argmax(nz, axis=1))
        else:
            CG = self._solver.solve(G.T) / self.weight_scale
        out = G @ CG
        return 0.5 * (out + out.T)


def score_form(backend, beta: np.ndarray, W: np.ndarray) -> np.ndarray:
    """:math:`W^\\top M W` for the meat :math:`M = \\sum_i f_i s_i s_i^\\top` of rows without
    sampling weights (``f_i`` frequency weights), without :math:`M`: one pass, each row's
    score projected on the columns of ``W``, :math:`z_i = W^\\top s_i` with
    :math:`s_i = (e_{y_i} - P_i) \\otimes x_i` (reference row 0 dropped).

    Parameters
    ----------
    backend :
    beta : ndarray, shape (J, p)
    W : ndarray, shape (J p, r)
    """
    beta = np.asarray(beta, dtype=np.float64)
    J, p = beta.shape
    Wr = np.asarray(W, dtype=np.float64).reshape(J, p, -1)
    r = Wr.shape[2]

    def chunk(c):
        X = np.asarray(c.X, dtype=np.float64)
        eta = X @ beta.T
        if c.offset is not None:
            eta = eta + c.offset
        top = np.maximum(eta.max(axis=1, initial=0.0), 0.0)
        e = np.exp(eta - top[:, None])
        P = e / (np.exp(-top) + e.sum(axis=1))[:, None]
        R = -P
        own = np.asarray(c.y) >= 0
        R[np.flatnonzero(own), np.asarray(c.y)[own]] += 1.0
        # z_ic = sum_j R_ij x_i' W_j[:, c]
        Z = np.einsum("ij,ijc->ic", R, np.einsum("ik,jkc->ijc", X, Wr))
        f = np.asarray(c.weights, dtype=np.float64)
        return (Z * f[:, None]).T @ Z

    parts = backend.reduce(chunk, frames=False)
    out = np.zeros((r, r))
    for part in parts:
        out += part
    return out


class MatrixFreeResults(MultinomialLogitResults):
    """:class:`~multilogit.results.results.MultinomialLogitResults` of a fit beyond the memory
    budget, whose covariance is a :class:`CovarianceOperator` (see the module docstring).

    Everything that does not need the covariance is as for any fit.  Standard errors,
    intervals, tests and marginal effects are computed for what is asked:
    ``bse_for(terms=..., outcomes=...)``, ``conf_int(terms=..., outcomes=...)``,
    ``cov_params(column=...)`` or ``cov_params(r_matrix=...)``, ``wald_test(...)``,
    ``summary(outcomes=[...])``, ``get_margeff()``.
    """

    def __init__(self, model, state, operator: CovarianceOperator, cov_estimator):
        self._init_common(model, state, cov_estimator)
        self.cov_operator = operator

    # -- the covariance is not a matrix ----------------------------------------------------------

    def _too_large(self, what: str) -> CovarianceBudgetError:
        q = self._beta.size
        need = dense_information_bytes(q) / 2**30
        budget = self.cov_operator.memory_budget / 2**30
        return CovarianceBudgetError(
            f"{what} needs the full {q} x {q} covariance, which this fit does not hold: the "
            f"dense information and its inverse take about {need:.2g} GiB, beyond "
            f"memory_budget={budget:.2g} GiB. Ask for a subset instead, each coefficient one "
            "conjugate-gradient solve: res.bse_for(terms=[...], outcomes=[...]), "
            "res.conf_int(terms=[...], outcomes=[...]), res.cov_params(column=[...]) or "
            "cov_params(r_matrix=R), res.wald_test(...), res.summary(outcomes=[...]); or refit "
            "with a larger memory_budget (bytes) if the machine has the memory"
        )

    @property
    def _cov(self):
        raise self._too_large("this quantity")

    @property
    def _bse_flat(self):
        raise self._too_large("bse (and tvalues, pvalues)")

    @property
    def _delta_cov(self):
        raise self._too_large("this quantity")

    # Nothing beyond the budget is trimmed (no penalties) or fixed (no constraints).
    _trimmed = None
    _fixed = None

    def cov_params(self, r_matrix=None, column=None) -> pd.DataFrame:
        if r_matrix is None and column is None:
            raise self._too_large("cov_params()")
        return super().cov_params(r_matrix=r_matrix, column=column)

    def bse_for(self, terms=None, outcomes=None) -> pd.DataFrame:
        if terms is None and outcomes is None:
            raise self._too_large("bse_for() without terms or outcomes")
        return super().bse_for(terms=terms, outcomes=outcomes)

    def _cov_columns(self, idx: np.ndarray) -> np.ndarray:
        return self.cov_operator.columns(idx)

    def _se_at(self, idx: np.ndarray) -> np.ndarray:
        idx = np.asarray(idx, dtype=np.int64)
        bad = np.zeros(idx.size, dtype=bool)
        if self._nan_cov is not None:
            bad = self._nan_cov[idx]
        se = np.full(idx.size, np.nan)
        if np.any(~bad):
            if self._robust:
                unit = np.zeros((self._beta.size, int(np.sum(~bad))))
                unit[idx[~bad], np.arange(unit.shape[1])] = 1.0
                se[~bad] = np.sqrt(np.diag(self._sandwich_form(unit)))
            else:
                se[~bad] = np.sqrt(self.cov_operator.variances(idx[~bad]))
        return se

    @property
    def _robust(self) -> bool:
        return self._cov_estimator.name in ("HC0", "HC1")

    def _sandwich_form(self, B: np.ndarray) -> np.ndarray:
        """:math:`B^\\top C M C B` times the estimator's small-sample factor, from
        :math:`W = C B` (a solve per column) and one pass for :math:`W^\\top M W`."""
        op = self.cov_operator
        op.check_size(B.shape[1], "this selection")
        W = op.solve(B)
        out = self._cov_estimator.factor(self.model) * score_form(op.backend, op.beta, W)
        return 0.5 * (out + out.T)

    def _delta_form(self, G: np.ndarray, used: np.ndarray | None = None) -> np.ndarray:
        G = np.atleast_2d(np.asarray(G, dtype=np.float64))
        touched = np.any(G != 0.0, axis=0) if used is None else np.asarray(used, dtype=bool)
        if self.separation is not None:
            bad = np.asarray(self.separation.params, dtype=bool).ravel()
            if np.any(bad & touched):
                # As the dense path: what depends on a diverging coefficient has no
                # covariance.
                return np.full((G.shape[0], G.shape[0]), np.nan)
        if used is not None:
            full = np.zeros((G.shape[0], self._beta.size))
            full[:, used] = G
            G = full
        if self._robust:
            return self._sandwich_form(G.T)
        return self.cov_operator.form(G)

    def summary(
        self,
        alpha: float = 0.05,
        title: str | None = None,
        rrr: bool = False,
        labels: dict | None = None,
        outcome_labels: dict | None = None,
        short_names: bool = False,
        outcomes=None,
        compact: bool | None = None,
    ):
        # Compact (coefficients only) by default at any K here: the blocks of every equation
        # would need every column of the covariance.
        if compact is None:
            compact = outcomes is None
        if not compact and outcomes is None:
            raise self._too_large("summary() of every equation")
        return super().summary(
            alpha=alpha,
            title=title,
            rrr=rrr,
            labels=labels,
            outcome_labels=outcome_labels,
            short_names=short_names,
            outcomes=outcomes,
            compact=compact,
        )

    def get_robustcov_results(self, cov_type: str = "HC1", **cov_kwds):
        if cov_type == self.cov_type and not cov_kwds:
            return self
        if cov_type in MATRIX_FREE_COV_TYPES and not cov_kwds:
            if cov_type != "nonrobust" and self.model.weights is not None:
                raise CovarianceBudgetError(sandwich_refusal(cov_type, weighted=True))
            est = get_estimator(cov_type)
            return type(self)(self.model, self._state, self.cov_operator, est)
        raise CovarianceBudgetError(sandwich_refusal(cov_type))

    def __repr__(self) -> str:
        return super().__repr__().replace("MultinomialLogitResults", "MatrixFreeResults", 1)
