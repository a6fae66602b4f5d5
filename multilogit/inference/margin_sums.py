"""Sums over rows of marginal effects and of their Jacobian with respect to the parameters.

:mod:`multilogit.inference.margins` decides where effects are evaluated (which rows, which
variables, which designs); this module adds up, block of rows by block of rows, the effects and
their derivatives with respect to the flat parameters (outcome-major, see
:mod:`multilogit.engine.kernels`).  Every sum over the rows of a block is a BLAS product of the
block's design with a small matrix of per-row factors filled by a Numba kernel, so the work is
a few matrix products per block and no ``(n, K, J p)`` array is ever formed:

* variables whose design direction is one unit vector for all rows (an array column, a
  formula column entering as itself), differentiated without a row scale (``dydx``,
  ``eydx``), share one product ``X' M`` per block whatever their number
  (:func:`~multilogit.engine.kernels.margeff_shared_factors`); each variable's effect and
  Jacobian are read off the summed factors at the end (:meth:`EffectSums.finish`);
* any other derivative (a direction or a scale per row) costs two products per block
  (:func:`~multilogit.engine.kernels.margeff_row_weights`);
* a discrete change is the difference of two sums of (log-)probabilities over designs, one
  product per design (:func:`~multilogit.engine.kernels.margeff_level_weights`).

The sums are additive over blocks, so a backend may evaluate its chunks anywhere and add the
:class:`EffectSums` in row order.
"""

from __future__ import annotations

import numpy as np

from ..engine import kernels

__all__ = ["EffectSums", "LevelSum", "RowProbabilities", "group_level_sums"]


class RowProbabilities:
    """Linear predictors ``E`` (``(m, J)``), probabilities ``P`` (``(m, K)``, reference last)
    and log-sum-exp ``lse`` of the rows ``X`` of one design."""

    def __init__(self, X: np.ndarray, beta: np.ndarray):
        self.X = np.ascontiguousarray(X, dtype=np.float64)
        self.E = self.X @ beta.T
        m, J = self.E.shape
        self.P = np.empty((m, J + 1))
        self.lse = np.empty(m)
        kernels.softmax_rows(self.E, self.P, self.lse)


class LevelSum:
    """``sum_i c_i P_ik`` (or of ``log P_ik``) over one design's rows and its Jacobian
    ``(K J, p)``: one half of a discrete change."""

    def __init__(self, rows: RowProbabilities, c: np.ndarray, logp: bool):
        m, K = rows.P.shape
        J = K - 1
        self.eff = np.zeros(K)
        V = np.empty((m, K * J))
        kernels.margeff_level_weights(rows.P, rows.E, rows.lse, c, logp, V, self.eff)
        self.jac = V.T @ rows.X


def group_level_sums(
    rows: RowProbabilities, c: np.ndarray, codes: np.ndarray, n_groups: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """:class:`LevelSum` of the probabilities (not their logs) over each group of rows:
    ``(eff (K,), jac (K J, p))`` for groups ``0..n_groups-1`` (``codes``: each row's group,
    ``-1`` for none).  The per-row factors are linear in the weights, so they are filled once
    and each group's Jacobian is one product over its own rows."""
    m, K = rows.P.shape
    J = K - 1
    V = np.empty((m, K * J))
    kernels.margeff_level_weights(rows.P, rows.E, rows.lse, c, False, V, np.zeros(K))
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(n_groups + 1) - 0.5)
    out = []
    for g in range(n_groups):
        idx = order[bounds[g] : bounds[g + 1]]
        out.append((c[idx] @ rows.P[idx], V[idx].T @ rows.X[idx]))
    return out


class EffectSums:
    """Running sums of ``T`` effects on ``K`` outcomes over the rows of one pass.

    Parameters
    ----------
    T : int
        Number of reported effects.
    beta : ndarray, shape (J, p)
    dy : bool
        Effects on the probabilities (``dydx``, ``dyex``), else on their logs.
    shared : dict of int to int
        Effect index to design column, for the effects computed from the shared factors
        (unit direction, no row scale).
    """

    def __init__(self, T: int, beta: np.ndarray, dy: bool, shared: dict):
        J, p = beta.shape
        K = J + 1
        self.beta, self.dy, self.shared = beta, dy, dict(shared)
        self.eff = np.zeros((T, K))
        self.jac = np.zeros((T, K * J, p))
        # Shared factors: M'X, of M's width K J J (dy) or J J (ey) by p, and H (K, J).
        self.MX = np.zeros(((K if dy else 1) * J * J, p)) if shared else None
        self.H = np.zeros((K, J))

    def __iadd__(self, other: EffectSums) -> EffectSums:
        self.eff += other.eff
        self.jac += other.jac
        if self.MX is not None:
            self.MX += other.MX
        self.H += other.H
        return self

    def add_shared(self, rows: RowProbabilities, c: np.ndarray) -> None:
        """The rows' share of every shared effect, weights ``c``."""
        if self.MX is None:
            return
        M = np.empty((len(c), self.MX.shape[0]))
        kernels.margeff_shared_factors(rows.P, c, self.dy, M, self.H)
        # M'X rather than X'M: the same sums, and BLAS is much faster on this shape.
        self.MX += M.T @ rows.X

    def add_derivative(self, t: int, rows: RowProbabilities, D: np.ndarray, c: np.ndarray):
        """The rows' share of derivative effect ``t`` along directions ``D`` (``(m, p)``, or
        ``(1, p)`` for all rows), with weights times row scales ``c``."""
        m, K = rows.P.shape
        J = K - 1
        A = D @ self.beta.T
        W, V = np.empty((m, K * J)), np.empty((m, K * J))
        kernels.margeff_row_weights(rows.P, A, c, self.dy, W, V, self.eff[t])
        self.jac[t] += W.T @ rows.X
        if D.shape[0] == 1:
            self.jac[t] += np.outer(V.sum(axis=0), D[0])
        else:
            self.jac[t] += V.T @ D

    def add_level(self, t: int, level: LevelSum, sign: float) -> None:
        """``sign`` times one design's (log-)probability sums into effect ``t``."""
        self.eff[t] += sign * level.eff
        self.jac[t] += sign * level.jac

    def finish(self) -> tuple[np.ndarray, np.ndarray]:
        """Effects ``(T, K)`` and their Jacobians ``(T, K, J p)`` (internal outcome order)."""
        eff, jac = self.eff.copy(), self.jac.copy()
        J, p = self.beta.shape
        K = J + 1
        for t, col in self.shared.items():
            a = self.beta[:, col]
            eff[t] += self.H @ a
            if self.dy:
                # jac[k, j, :] = sum_l MX[(k, j, l), :] a_l
                jac[t] += np.einsum("rlq,l->rq", self.MX.reshape(K * J, J, p), a)
            else:
                # jac[k, j, :] = sum_l MX[(j, l), :] a_l, the same for every k
                jac[t] += np.tile(np.einsum("jlq,l->jq", self.MX.reshape(J, J, p), a), (K, 1))
            jac[t][:, col] += self.H.ravel()
        return eff, jac.reshape(len(eff), K, J * p)
