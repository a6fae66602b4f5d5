"""A backend in null-space coordinates: linear equality constraints by reparameterisation.

The coefficients that satisfy :math:`R\\beta = q` (``R`` of full row rank ``r``, flat
outcome-major :math:`\\beta` of size :math:`k = J p`) are

.. math::

    \\beta(\\gamma) = \\beta_0 + T\\gamma, \\qquad R\\beta_0 = q, \\qquad RT = 0,

with :math:`\\beta_0` the particular solution of least norm and the ``k - r`` columns of
:math:`T` an orthonormal basis of the null space of ``R``.  The log-likelihood in
:math:`\\gamma` has the derivatives

.. math::

    g_\\gamma = T^\\top g_\\beta, \\qquad \\mathcal{I}_\\gamma = T^\\top \\mathcal{I}_\\beta T,

and the robust meats map the same way (:math:`T^\\top M T`), so an unconstrained Newton solve
in :math:`\\gamma` is the constrained solve in :math:`\\beta`.  :class:`ConstrainedBackend`
presents any backend (in memory, chunked, Dask, rescaled) in these coordinates: a coefficient
"matrix" of shape ``(1, k - r)`` goes in, the wrapped backend sees :math:`\\beta(\\gamma)`
in its own ``(J, p)`` shape.

The covariance of the constrained estimates is :math:`T V_\\gamma T^\\top`, singular of rank
``k - r``: for the inverse-information covariance and the sandwiches it is the usual formula
with the bread :math:`T (T^\\top \\mathcal{I}_\\beta T)^{-1} T^\\top` in place of
:math:`\\mathcal{I}_\\beta^{-1}` (:func:`constrained_bread`).
"""

from __future__ import annotations

import numpy as np

from ..lazy import lazy_module
from .backend import Derivatives

# Imported at the first factorisation, not with multilogit (see multilogit.lazy).
linalg = lazy_module("scipy.linalg")

__all__ = [
    "ConstrainedBackend",
    "constrained_bread",
    "independent_rows",
    "null_space",
    "particular_solution",
    "implies",
]

# Rank decisions on rows scaled to unit length: a row whose component outside the span of the
# rows kept before it is below this is a linear combination of them (to rounding).
RANK_TOL = 1e-10


def _unit_rows(R: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(R, axis=1)
    return R / np.where(norms > 0, norms, 1.0)[:, None]


def independent_rows(R: np.ndarray, tol: float = RANK_TOL) -> np.ndarray:
    """Indices of the rows of ``R`` kept in order, each dropped when it is a linear
    combination of the rows kept before it (as Stata drops a redundant constraint and keeps
    the first)."""
    R = _unit_rows(np.atleast_2d(np.asarray(R, dtype=np.float64)))
    kept: list[int] = []
    basis = np.zeros((0, R.shape[1]))
    for i, row in enumerate(R):
        rest = row - basis.T @ (basis @ row) if len(basis) else row
        norm = float(np.linalg.norm(rest))
        if norm > tol:
            kept.append(i)
            basis = np.vstack([basis, rest / norm])
    return np.asarray(kept, dtype=np.int64)


def null_space(R: np.ndarray) -> np.ndarray:
    """An orthonormal basis (columns) of the null space of ``R`` (full row rank), from its
    singular value decomposition."""
    R = np.atleast_2d(np.asarray(R, dtype=np.float64))
    k = R.shape[1]
    if R.shape[0] == 0:
        return np.eye(k)
    _, _, vt = linalg.svd(R, full_matrices=True)
    return np.ascontiguousarray(vt[R.shape[0] :].T)


def particular_solution(R: np.ndarray, q: np.ndarray) -> np.ndarray:
    """The least-norm :math:`\\beta_0` with :math:`R\\beta_0 = q` (``R`` of full row rank)."""
    R = np.atleast_2d(np.asarray(R, dtype=np.float64))
    if R.shape[0] == 0:
        return np.zeros(R.shape[1])
    return np.linalg.lstsq(R, np.asarray(q, dtype=np.float64), rcond=None)[0]


def implies(R_a, q_a, R_b, q_b, tol: float = RANK_TOL) -> bool:
    """Whether every :math:`\\beta` with :math:`R_a\\beta = q_a` satisfies
    :math:`R_b\\beta = q_b`: the rows of :math:`R_b` lie in the row space of :math:`R_a` and
    hold at a point of the first set (``R_a`` of full row rank, or no rows)."""
    R_a = np.atleast_2d(np.asarray(R_a, dtype=np.float64))
    R_b = np.atleast_2d(np.asarray(R_b, dtype=np.float64))
    if R_b.size == 0 or R_b.shape[0] == 0:
        return True
    T = null_space(R_a) if R_a.size and R_a.shape[0] else np.eye(R_b.shape[1])
    scale = np.linalg.norm(R_b, axis=1)
    if np.any(np.linalg.norm(R_b @ T, axis=1) > tol * np.maximum(scale, 1.0)):
        return False
    beta0 = particular_solution(R_a, q_a) if R_a.shape[0] else np.zeros(R_b.shape[1])
    resid = R_b @ beta0 - np.asarray(q_b, dtype=np.float64)
    size = scale * np.linalg.norm(beta0) + np.abs(np.asarray(q_b, dtype=np.float64)) + 1.0
    return bool(np.all(np.abs(resid) <= 1e3 * tol * size))


def constrained_bread(info: np.ndarray, R: np.ndarray) -> np.ndarray:
    """:math:`T (T^\\top \\mathcal{I} T)^{-1} T^\\top` for :math:`T` a basis of the null
    space of ``R``: the inverse information of the constrained model, in the coordinates of
    :math:`\\beta` (rank ``k - r``).

    It does not depend on the basis, which is taken in coordinates where the information has
    a unit diagonal: with columns on very different scales, a basis orthonormal in the
    original coordinates would mix large and small directions and lose the small ones to
    rounding.

    Raises
    ------
    numpy.linalg.LinAlgError
        When :math:`T^\\top \\mathcal{I} T` is singular (not positive definite).
    """
    d = np.sqrt(np.abs(np.diag(info)))
    d = np.where(np.isfinite(d) & (d > 0), d, 1.0)
    T = null_space(np.atleast_2d(np.asarray(R, dtype=np.float64)) / d)
    inner = T.T @ (info / np.outer(d, d)) @ T
    inner = 0.5 * (inner + inner.T)
    cf = linalg.cho_factor(inner, lower=False)
    inv = linalg.cho_solve(cf, np.eye(inner.shape[0]))
    out = (T / d[:, None]) @ (0.5 * (inv + inv.T)) @ (T / d[:, None]).T
    return 0.5 * (out + out.T)


class ConstrainedBackend:
    """The backend ``inner`` in null-space coordinates :math:`\\gamma` (see the module
    docstring).

    Parameters
    ----------
    inner
        Any backend (or wrapper) whose coefficients have shape ``(J, p)``.
    T : ndarray, shape (J p, m)
        Orthonormal basis of the null space of the constraints (in ``inner``'s coordinates).
    beta0 : ndarray, shape (J p,) or (J, p)
        A point satisfying the constraints (in ``inner``'s coordinates).
    J, p : int
        The shape of ``inner``'s coefficients.
    """

    def __init__(self, inner, T: np.ndarray, beta0: np.ndarray, J: int, p: int):
        self.inner = inner
        self.T = np.ascontiguousarray(T, dtype=np.float64)
        self.beta0 = np.asarray(beta0, dtype=np.float64).ravel()
        self.inner_shape = (int(J), int(p))
        if self.T.shape[0] != J * p or self.beta0.size != J * p:
            raise ValueError("T and beta0 must have J * p rows")

    # -- coordinates -------------------------------------------------------------------------

    J = 1

    @property
    def p(self) -> int:
        return self.T.shape[1]

    @property
    def n(self):
        return getattr(self.inner, "n", None)

    @property
    def sample_rows(self):
        return getattr(self.inner, "sample_rows", None)

    def to_beta(self, gamma: np.ndarray) -> np.ndarray:
        """:math:`\\beta_0 + T\\gamma` in ``inner``'s ``(J, p)`` shape."""
        flat = self.beta0 + self.T @ np.asarray(gamma, dtype=np.float64).ravel()
        return flat.reshape(self.inner_shape)

    def to_gamma(self, beta: np.ndarray) -> np.ndarray:
        """:math:`T^\\top(\\beta - \\beta_0)`, shape ``(1, m)``: the nearest point of the
        constrained set, in its coordinates (``beta`` itself when it satisfies them)."""
        flat = np.asarray(beta, dtype=np.float64).ravel() - self.beta0
        return (self.T.T @ flat).reshape(1, -1)

    def _project(self, d: Derivatives | None) -> Derivatives | None:
        if d is None:
            return None
        score = (self.T.T @ np.asarray(d.score).ravel()).reshape(1, -1)
        info = None if d.info is None else self._sandwiched(d.info)
        return Derivatives(d.llf, score, info)

    def _sandwiched(self, M: np.ndarray) -> np.ndarray:
        out = self.T.T @ M @ self.T
        return 0.5 * (out + out.T)

    # -- what the solver reads ---------------------------------------------------------------

    def derivatives(self, beta, hessian=True):
        return self._project(self.inner.derivatives(self.to_beta(beta), hessian=hessian))

    @property
    def approx_information(self):
        inner = getattr(self.inner, "approx_information", None)
        if inner is None:
            return None

        def approx(gamma):
            info = inner(self.to_beta(gamma))
            return None if info is None else self._sandwiched(info)

        return approx

    @property
    def approx_derivatives(self):
        inner = getattr(self.inner, "approx_derivatives", None)
        if inner is None:
            return None
        return lambda gamma, hessian=True: self._project(inner(self.to_beta(gamma), hessian))

    def hessian_vector(self, beta, v) -> np.ndarray:
        v = self.T @ np.asarray(v, dtype=np.float64).ravel()
        return self.T.T @ np.asarray(self.inner.hessian_vector(self.to_beta(beta), v)).ravel()

    # -- what the covariances read -----------------------------------------------------------

    def score_outer(self, beta) -> np.ndarray:
        return self._sandwiched(self.inner.score_outer(self.to_beta(beta)))

    def group_scores(self, beta, codes, n_groups):
        sums, weight = self.inner.group_scores(self.to_beta(beta), codes, n_groups)
        return np.asarray(sums) @ self.T, weight

    def cluster_meat(self, beta, codes, n_groups):
        meat, weight = self.inner.cluster_meat(self.to_beta(beta), codes, n_groups)
        return self._sandwiched(meat), weight

    def positive_rows(self) -> int:
        return self.inner.positive_rows()

    def probabilities(self, beta):
        return self.inner.probabilities(self.to_beta(beta))

    def linear(self, beta):
        return self.inner.linear(self.to_beta(beta))

    def release(self) -> None:
        release = getattr(self.inner, "release", None)
        if release is not None:
            release()
