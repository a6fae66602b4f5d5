"""Newton-CG: a truncated Newton direction from Hessian-vector products alone.

The dense Newton step forms and factors the :math:`q \\times q` information, :math:`q = J p`:
memory :math:`8 q^2` bytes and :math:`O(n q^2 + q^3)` flops a step, out of reach for hundreds
of outcomes.  :class:`NewtonCG` solves :math:`\\mathcal{I}\\delta = g` instead by
preconditioned conjugate gradients (:class:`ConjugateGradients`), where each iteration needs
one product :math:`\\mathcal{I} v`: a pass over the rows with three thin products per chunk
(:func:`~multilogit.engine.kernels.chunk_hessian_vector`), :math:`O(n q)` flops and no
:math:`q \\times q` matrix.

Preconditioner
--------------
Two levels (:class:`BlockJacobi`).  The information's diagonal blocks, one
:math:`p \\times p` block per equation,

.. math::

    \\mathcal{I}_{jj} = \\sum_i w_i P_{ij}(1 - P_{ij})\\, x_i x_i^\\top,

capture the correlation of the design columns inside each equation.  What they leave out is
the coupling :math:`-\\sum_i w_i P_{ij} P_{il} x_i x_i^\\top` between equations, and with many
outcomes it matters in one place: moving all equations together, :math:`v = 1 \\otimes a`
(the reference outcome's coefficients moving by :math:`-a`), has curvature
:math:`\\sum_i w_i P_{i0}(1 - P_{i0}) (a^\\top x_i)^2`, of the order of the reference's
probability :math:`P_{i0}` (:math:`1/K` when the outcomes are about equally frequent), while
the diagonal blocks say :math:`J` times more.  Conjugate gradients with the blocks alone would
need about ``p`` extra iterations for those ``p`` directions, many more in practice as
:math:`P_{i0}` varies over the rows.  The second level corrects them: with
:math:`Z = 1 \\otimes I_p` and :math:`E = Z^\\top \\mathcal{I} Z`, the sum of all blocks (the
information of the reference's own contrast),

.. math::

    M^{-1} r = \\operatorname{blockdiag}_j(\\mathcal{I}_{jj})^{-1} r + Z E^{-1} Z^\\top r,

an additive coarse-space correction.  All :math:`(J + 1) p^2` numbers come from one pass;
each block is factored by Cholesky.  On ``K = 300`` outcomes it cuts the iterations of a
solve to a relative residual of 1e-8 from 20 to 5.

Forcing term
------------
The inner solve stops at a relative residual :math:`\\eta_k` in the preconditioner's norm,
:math:`\\eta_k = \\min(\\eta_{\\max}, \\sqrt{\\lVert g_k\\rVert / \\lVert g_0\\rVert})`: loose far
from the optimum, where an accurate step is wasted, and shrinking with the score, which keeps
the outer convergence superlinear (order 1.5, Eisenstat and Walker).  Once a step is within
the solver's tolerance it is the last one, and conjugate gradients go on (from where they
stopped) until its error, about the relative residual times the step, is at rounding level
(``FINAL_ERROR``), so the estimates reach the accuracy of the dense Newton fit and the
score at them is at rounding level.

Which path
----------
:func:`dense_information_bytes` is what the dense path holds at once (the information, its
Cholesky factor, the covariance and the evaluation threads' accumulators, about
``DENSE_COPIES`` matrices of :math:`8 q^2` bytes).  ``fit(method="newton")`` takes the
dense path while that fits :data:`DEFAULT_MEMORY_BUDGET` (or the fit's ``memory_budget``) and
the model has fewer than :data:`AUTO_CG_PARAMS` parameters, Newton-CG otherwise: a dense
information pass costs :math:`n q^2` flops, a Newton-CG fit some 20 to 40 passes of
:math:`6 n q`, so from a few hundred parameters on Newton-CG is faster even when the dense
matrix fits.  After a Newton-CG fit the exact information is formed once, at the estimates,
for the standard errors, when it fits the budget.
"""

from __future__ import annotations

import math

import numpy as np

from ..exceptions import FitError
from .directions import Proposal
from .objective import Objective
from .state import NewtonState

__all__ = [
    "AUTO_CG_PARAMS",
    "DEFAULT_MEMORY_BUDGET",
    "BlockJacobi",
    "ConjugateGradients",
    "InformationSolver",
    "NewtonCG",
    "dense_fits",
    "dense_information_bytes",
    "inverse_columns",
    "preconditioner",
]

#: Bytes the dense information may take (all copies, see :func:`dense_information_bytes`):
#: 2 GiB, up to about 7,300 parameters.
DEFAULT_MEMORY_BUDGET = 2.0 * 2**30
#: Matrices of the dense path's size held at once at the peak, the covariance's inversion: the
#: information, its factor turned into the inverse, the symmetrised covariance and its
#: temporary, and one more while the information is rescaled or summed over two threads.
DENSE_COPIES = 5
#: Parameters from which ``method="newton"`` (with ``hessian="auto"``) takes Newton-CG although
#: the dense information fits: at 190 parameters (n = 2e4, K = 20) the two cost the same, at 490
#: (K = 50) Newton-CG, standard errors included, takes a third of the dense path's time.
AUTO_CG_PARAMS = 300
#: The forcing term's largest value (the first iterations' relative residual).
ETA_MAX = 0.5
#: The last step's error target, relative to ``1 + |beta|``: about the rounding of the
#: estimates themselves (the score at them is then at rounding level; 1e-16 costs a pass or two
#: more for no visible gain).  Its inner solve goes on to a relative residual of this over the
#: step's relative size, at least :data:`FINAL_RTOL`.
FINAL_ERROR = 1e-14
#: The smallest relative residual asked of the last step.
FINAL_RTOL = 1e-10
#: Most conjugate-gradient iterations of one inner solve.
MAX_CG = 500
#: The preconditioner's blocks are kept until the steps since they were computed add up to this
#: (each step counted by its largest coordinate, relative to ``1 + |beta|``): computing them
#: costs a pass of ``J p^2`` flops a row, several products with the information, and blocks
#: from a nearby point precondition about as well; from farther away they cost more Newton
#: iterations than they save (at 1.0, a third more passes on 300 outcomes).
REFRESH_MOVE = 0.3


def dense_information_bytes(params: int) -> float:
    """Bytes the dense Newton path holds for ``params`` parameters:
    ``DENSE_COPIES * 8 * params**2``."""
    return float(DENSE_COPIES) * 8.0 * float(params) ** 2


def dense_fits(params: int, memory_budget: float = DEFAULT_MEMORY_BUDGET) -> bool:
    """Whether the dense information of ``params`` parameters fits ``memory_budget`` bytes."""
    return dense_information_bytes(params) <= memory_budget


class BlockJacobi:
    """The preconditioner of :class:`NewtonCG`: the inverse of a block-diagonal matrix, plus
    an optional coarse correction, applied to flat vectors (see the module docstring).

    .. math:: M^{-1} r = \\operatorname{blockdiag}_j(B_j)^{-1} r + Z C^{-1} Z^\\top r,
        \\qquad Z = 1 \\otimes I_p

    Parameters
    ----------
    blocks : ndarray, shape (J, p, p)
        Symmetric positive semi-definite blocks :math:`B_j` (the information's diagonal
        blocks).  A block that is not numerically positive definite (an outcome without rows, a
        column that is zero in an outcome's rows) gets a ridge of ``1e-10`` times the largest
        diagonal entry of all blocks, and failing that is replaced by its diagonal.
    coarse : ndarray, shape (p, p), optional
        :math:`C`, the sum of all blocks of the matrix (same treatment); without it, block
        Jacobi alone.
    """

    def __init__(self, blocks: np.ndarray, coarse: np.ndarray | None = None):
        blocks = np.asarray(blocks, dtype=np.float64)
        if blocks.ndim != 3 or blocks.shape[1] != blocks.shape[2]:
            raise ValueError(f"blocks must have shape (J, p, p); got {blocks.shape}")
        J, p, _ = blocks.shape
        if coarse is not None:
            coarse = np.asarray(coarse, dtype=np.float64)
            if coarse.shape != (p, p):
                raise ValueError(f"coarse must have shape ({p}, {p}); got {coarse.shape}")
        if not (np.all(np.isfinite(blocks)) and (coarse is None or np.all(np.isfinite(coarse)))):
            raise FitError("the information's diagonal blocks are not finite")
        eye = np.eye(p)
        top = float(np.max(np.diagonal(blocks, axis1=1, axis2=2), initial=0.0))
        ridge = max(1e-10 * top, 1e-300)
        self.inverse = np.empty_like(blocks)
        for j in range(J):
            self.inverse[j] = self._inverse(blocks[j], eye, ridge)
        self.coarse_inverse = None
        if coarse is not None:
            own = 1e-10 * float(np.max(np.diag(coarse), initial=0.0))
            self.coarse_inverse = self._inverse(coarse, eye, max(ridge, own))

    @staticmethod
    def _inverse(block: np.ndarray, eye: np.ndarray, ridge: float) -> np.ndarray:
        for shift in (0.0, ridge):
            try:
                L = np.linalg.cholesky(block + shift * eye)
            except np.linalg.LinAlgError:
                continue
            Linv = np.linalg.inv(L)
            return Linv.T @ Linv
        return np.diag(1.0 / np.maximum(np.diag(block), ridge))

    def __call__(self, r: np.ndarray) -> np.ndarray:
        J, p, _ = self.inverse.shape
        R = np.asarray(r, dtype=np.float64).reshape(J, p)
        out = np.matmul(self.inverse, R[:, :, None])[:, :, 0]
        if self.coarse_inverse is not None:
            out += self.coarse_inverse @ R.sum(axis=0)
        return out.ravel()


def preconditioner(objective: Objective, beta: np.ndarray):
    """:class:`BlockJacobi` with the coarse level from the objective's blocks at ``beta``, or
    no preconditioning (the identity) when the backend does not offer the blocks."""
    blocks = objective.block_information(beta)
    if blocks is None:
        return lambda r: np.array(r, dtype=np.float64)
    return BlockJacobi(blocks[:-1], coarse=blocks[-1])


class ConjugateGradients:
    """Preconditioned conjugate gradients for :math:`A x = b`, resumable.

    :meth:`run` iterates until the residual :math:`r = b - A x` satisfies
    :math:`\\sqrt{r^\\top M r} \\le \\text{rtol} \\sqrt{b^\\top M b}` (``M`` the preconditioner,
    an approximate :math:`A^{-1}`); calling it again with a smaller ``rtol`` continues from
    where it stopped.  From :math:`x_0 = 0`, every iterate has :math:`b^\\top x > 0` and
    :math:`b^\\top x` grows towards :math:`b^\\top A^{-1} b`: each is an ascent direction of a
    concave objective with gradient ``b``, and :math:`b^\\top x` is a Newton decrement.

    Parameters
    ----------
    apply : callable
        :math:`v \\mapsto A v` for symmetric positive (semi-)definite ``A``.
    b : ndarray, shape (q,)
    precondition : callable
        :math:`r \\mapsto M r`.

    Attributes
    ----------
    x : ndarray
        The current solution.
    iterations : int
        Products with ``A`` so far.
    relative_residual : float
        :math:`\\sqrt{r^\\top M r / b^\\top M b}` at ``x``.
    breakdown : bool
        Whether a direction of non-positive curvature ended the iterations (a singular ``A``
        along it, or rounding at the solution).
    """

    def __init__(self, apply, b: np.ndarray, precondition):
        self.apply, self.precondition = apply, precondition
        b = np.asarray(b, dtype=np.float64).ravel()
        self.x = np.zeros_like(b)
        self.r = b.copy()
        self.z = precondition(self.r)
        self.d = self.z.copy()
        self.rz = float(self.r @ self.z)
        self.rz0 = self.rz
        self.iterations = 0
        self.breakdown = False

    @property
    def relative_residual(self) -> float:
        if not self.rz0 > 0:
            return 0.0
        return math.sqrt(max(self.rz, 0.0) / self.rz0)

    def run(self, rtol: float, maxiter: int) -> ConjugateGradients:
        """Iterate until ``relative_residual <= rtol`` or ``maxiter`` products in all."""
        while (
            not self.breakdown
            and self.iterations < maxiter
            and self.relative_residual > rtol
            and self.rz > 0
        ):
            Ad = self.apply(self.d)
            self.iterations += 1
            curvature = float(self.d @ Ad)
            if not (math.isfinite(curvature) and curvature > 0):
                self.breakdown = True
                break
            alpha = self.rz / curvature
            self.x += alpha * self.d
            self.r -= alpha * Ad
            self.z = self.precondition(self.r)
            rz = float(self.r @ self.z)
            self.d = self.z + (rz / self.rz) * self.d
            self.rz = rz
        return self


class NewtonCG:
    """Truncated Newton: conjugate gradients on :math:`\\mathcal{I}\\delta = g` (see the module
    docstring).

    Each Newton iteration costs one pass per conjugate-gradient iteration (the count is the
    ``cg_iterations`` column of the iteration log), the line search's passes, which keep the
    probabilities the next products need (:attr:`product_bytes`), and one pass for the
    preconditioner's blocks when they are refreshed (``REFRESH_MOVE``).  The loop's
    step-halving and stopping rules are those of the dense path.  A direction along which no
    step raises the objective is solved again once, to ``final_rtol``.

    Parameters
    ----------
    tol : float
        The solver's tolerance (``NewtonOptions.tol``): a step within it ends the fit, and is
        solved until its error is at rounding level (``FINAL_ERROR``).
    final_information : bool
        Whether the loop forms the exact information at the estimates (for the covariance);
        ``False`` when it does not fit the memory budget.
    cache_bytes : float
        The rows' probabilities at the current point are kept across the products of one
        inner solve when they take at most this many bytes.
    eta_max, final_rtol : float
    max_cg : int
    """

    needs_information = False

    def __init__(
        self,
        tol: float = 1e-8,
        final_information: bool = True,
        cache_bytes: float = DEFAULT_MEMORY_BUDGET,
        eta_max: float = ETA_MAX,
        final_rtol: float = FINAL_RTOL,
        max_cg: int = MAX_CG,
    ):
        self.tol = float(tol)
        self.final_information = bool(final_information)
        self.cache_bytes = float(cache_bytes)
        self.eta_max = float(eta_max)
        self.final_rtol = float(final_rtol)
        self.max_cg = int(max_cg)
        self.refresh_move = REFRESH_MOVE
        self.objective: Objective | None = None
        self.cg_iterations = 0

    def start(self, objective: Objective, beta: np.ndarray) -> None:
        self.objective = objective
        self._g0 = None
        self._tight = False
        self._precondition = None
        self._moved = 0.0
        self.cg_iterations = 0

    @property
    def info_rows(self) -> float:
        return math.nan if self.objective is None else self.objective.n_rows

    @property
    def product_bytes(self) -> float:
        """Bytes the evaluations may keep for the products at their point (the loop asks
        for them)."""
        return self.cache_bytes

    def information(self, state: NewtonState) -> None:
        return None

    def _forcing(self, gnorm: float) -> float:
        if self._tight:
            return self.final_rtol
        if self._g0 is None:
            self._g0 = gnorm
        if not self._g0 > 0:
            return self.eta_max
        return min(self.eta_max, math.sqrt(gnorm / self._g0))

    def _small(self, state: NewtonState, delta: np.ndarray, dec: float) -> bool:
        """The loop's stopping rule (:meth:`NewtonSolver.check_convergence`) for ``delta``."""
        beta = state.beta.ravel()
        if np.all(np.abs(delta) <= self.tol * (1.0 + np.abs(beta))):
            return True
        return dec <= self.tol**2 * (1.0 + abs(state.current.value))

    def direction(self, state: NewtonState) -> Proposal:
        obj = self.objective
        g = state.gradient
        eta = self._forcing(float(np.linalg.norm(g)))
        if self._precondition is None or self._moved > self.refresh_move:
            self._precondition = preconditioner(obj, state.beta)
            self._moved = 0.0
        precondition = self._precondition
        apply = state.current.products
        if apply is None:
            apply = obj.hessian_operator(state.beta, self.cache_bytes)
        cg = ConjugateGradients(apply, g, precondition)
        limit = min(self.max_cg, 2 * g.size + 10)
        cg.run(eta, limit)
        if eta > self.final_rtol and self._small(state, cg.x, float(g @ cg.x)):
            # The last step: its error, about the relative residual times the step, is what
            # the estimates keep; bring it to rounding level.
            beta = state.beta.ravel()
            step = float(np.max(np.abs(cg.x) / (1.0 + np.abs(beta)), initial=0.0))
            rtol = max(self.final_rtol, FINAL_ERROR / step) if step > 0 else eta
            if rtol < cg.relative_residual:
                cg.run(rtol, limit + cg.iterations)
        self.cg_iterations = cg.iterations
        delta = cg.x
        return Proposal(delta, float(g @ delta))

    def accepted(self, state: NewtonState, proposal: Proposal, small: bool) -> None:
        self._tight = False
        self._moved += state.moved

    def rejected(self, state: NewtonState, proposal: Proposal, small: bool) -> bool:
        # No step along a loosely solved direction raised the objective: solve it tightly
        # once before giving up.
        if self._tight:
            return False
        self._tight = True
        return True


def inverse_columns(
    objective: Objective,
    beta: np.ndarray,
    columns,
    rtol: float = 1e-10,
    max_bytes: float = DEFAULT_MEMORY_BUDGET,
    max_cg: int = 4 * MAX_CG,
) -> np.ndarray:
    """Columns of the inverse information, :math:`\\mathcal{I}(\\beta)^{-1} e_k` for the flat
    indices ``columns``, without the dense matrix: one preconditioned conjugate-gradient solve
    per column, all with the same products and preconditioner.

    The building block of covariances beyond the memory budget: the column of a coefficient
    holds its variance and its covariances with every other, so the standard errors of a
    chosen set of coefficients (one term across all outcomes, one outcome's equation) cost one
    solve each, each some tens of passes over the rows.

    Parameters
    ----------
    objective : Objective
    beta : ndarray, shape (J, p)
        Usually the estimates.
    columns : array of int
        Flat (outcome-major) indices of the wanted columns.
    rtol : float
        Relative residual of each solve in the preconditioner's norm; the columns' relative
        error is about this times the condition number left after preconditioning.
    max_bytes : float
        Bytes the rows' probabilities may take (kept across all the solves).
    max_cg : int
        Most products of one solve.

    Returns
    -------
    ndarray, shape (J p, len(columns))

    Raises
    ------
    FitError
        When a solve does not reach ``rtol`` (a singular information).
    """
    beta = np.asarray(beta, dtype=np.float64)
    q = beta.size
    columns = np.asarray(columns, dtype=np.int64).ravel()
    if columns.size and (columns.min() < 0 or columns.max() >= q):
        raise ValueError(f"columns must be flat indices in 0..{q - 1}")
    rhs = np.zeros((q, columns.size))
    rhs[columns, np.arange(columns.size)] = 1.0
    return InformationSolver(objective, beta, rtol, max_bytes, max_cg).solve(rhs, columns)


class InformationSolver:
    """:math:`\\mathcal{I}(\\beta)^{-1} B` for right-hand sides :math:`B` given later, one
    preconditioned conjugate-gradient solve per column, all with the same products and
    preconditioner (built once, at the first solve).

    What a covariance beyond the memory budget is made of: columns of the inverse
    information (:func:`inverse_columns`) and, for a Wald test of :math:`r` constraints
    :math:`R\\beta = q`, :math:`\\mathcal{I}^{-1} R^\\top` (``r`` solves), whence
    :math:`R\\,\\mathcal{I}^{-1} R^\\top`.

    Parameters
    ----------
    objective : Objective
    beta : ndarray, shape (J, p)
    rtol, max_bytes, max_cg :
        As :func:`inverse_columns`.
    """

    def __init__(
        self,
        objective: Objective,
        beta: np.ndarray,
        rtol: float = 1e-10,
        max_bytes: float = DEFAULT_MEMORY_BUDGET,
        max_cg: int = 4 * MAX_CG,
    ):
        self.objective = objective
        self.beta = np.asarray(beta, dtype=np.float64)
        self.rtol, self.max_bytes, self.max_cg = float(rtol), float(max_bytes), int(max_cg)
        self._precondition = None
        self._apply = None
        #: Products with the information so far, over all solves.
        self.products = 0

    def solve(self, rhs: np.ndarray, labels=None) -> np.ndarray:
        """:math:`\\mathcal{I}^{-1}` times each column of ``rhs`` (shape ``(J p, r)``);
        ``labels`` name the columns in an error (default their positions).

        Raises
        ------
        FitError
            When a solve does not reach ``rtol`` (a singular information).
        """
        rhs = np.asarray(rhs, dtype=np.float64)
        q = self.beta.size
        if rhs.ndim != 2 or rhs.shape[0] != q:
            raise ValueError(f"rhs must have shape ({q}, r); got {rhs.shape}")
        if self._precondition is None:
            self._precondition = preconditioner(self.objective, self.beta)
            self._apply = self.objective.hessian_operator(self.beta, self.max_bytes)
        out = np.zeros_like(rhs)
        for c in range(rhs.shape[1]):
            if not np.any(rhs[:, c]):
                continue
            cg = ConjugateGradients(self._apply, rhs[:, c], self._precondition)
            cg.run(self.rtol, self.max_cg)
            self.products += cg.iterations
            if cg.relative_residual > self.rtol:
                name = c if labels is None else labels[c]
                raise FitError(
                    f"conjugate gradients did not reach a relative residual of "
                    f"{self.rtol:g} for column {name} in {cg.iterations} products: the "
                    "information may be singular"
                )
            out[:, c] = cg.x
        return out
