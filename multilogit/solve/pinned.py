"""Newton steps with some coefficients (or directions) held fixed: the constrained solves
behind profile likelihoods.

Maximising the objective over the free coefficients with the pinned ones held at their values
is Newton's method on the free block: with :math:`F` the free and :math:`R` the pinned
coordinates,

.. math::

    \\delta_F = \\mathcal{I}_{FF}^{-1}\\, g_F, \\qquad \\delta_R = 0 .

:class:`Pinned` gets that step from an ordinary direction strategy (exact Newton, Firth's
scoring) by showing it the iterate with the pinned rows and columns of the information replaced
by those of the identity and the pinned components of the score set to 0: the inner solve then
returns exactly the step above.  More generally, for held directions spanned by the orthonormal
columns of :math:`C` (coordinates are columns of the identity) and :math:`P = 1 - C C^\\top`,
the strategy sees

.. math::

    \\tilde g = P g, \\qquad \\tilde{\\mathcal{I}} = P \\mathcal{I} P + C C^\\top,

whose solution :math:`\\tilde{\\mathcal{I}}^{-1}\\tilde g` is Newton's step within the
complement of :math:`C` (the two blocks decouple), and 0 along :math:`C`.  The objective (and a
penalty that depends on the whole information, such as Firth's) is evaluated at the full
coefficient vector as usual, so the same Newton loop, line search and backends serve the
constrained solve, without copying the data.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from scipy import linalg

from .directions import DirectionStrategy, Proposal
from .objective import Objective
from .state import NewtonState

__all__ = ["Pinned"]


class Pinned:
    """A direction strategy that leaves the ``pinned`` coefficients (and the ``directions``)
    where they start.

    Parameters
    ----------
    inner : DirectionStrategy
        Solves with the exact information at every iterate (``needs_information``), such as
        :class:`~multilogit.solve.directions.ExactCholesky` or
        :class:`~multilogit.solve.firth.FirthScoring`; a strategy that changes the start
        (a warm start on a subsample) would move the pinned coefficients, so none is taken.
    pinned : array_like of bool, shape (J p,) or (J, p)
        The coefficients to hold fixed (flat, outcome-major).
    directions : array_like, shape (J p, m), optional
        Further directions (columns, flat) along which the iterate does not move: the steps
        stay in the orthogonal complement of these and the pinned coordinates.
    """

    def __init__(self, inner: DirectionStrategy, pinned, directions=None):
        if not getattr(inner, "needs_information", False):
            raise ValueError("Pinned needs a strategy that solves with the exact information")
        self.inner = inner
        self.pinned = np.asarray(pinned, dtype=bool).ravel()
        self._idx = np.flatnonzero(self.pinned)
        self._basis = None
        if directions is not None:
            directions = np.asarray(directions, dtype=np.float64).reshape(self.pinned.size, -1)
            if not np.all(np.isfinite(directions)):
                raise ValueError("the held directions must be finite")
            unit = np.eye(self.pinned.size)[:, self._idx]
            self._basis = linalg.orth(np.hstack([unit, directions]))

    needs_information = True

    @property
    def basis(self) -> np.ndarray | None:
        """Orthonormal columns spanning the held coordinates and directions (``None`` when
        only coordinates are held)."""
        return self._basis

    @property
    def info_rows(self) -> float:
        return self.inner.info_rows

    def project(self, score: np.ndarray, info: np.ndarray | None):
        """The score and information as the inner strategy sees them (flat score; see the
        module docstring): a solve with them is the constrained Newton step."""
        g = np.array(score, dtype=np.float64, copy=True).ravel()
        if self._basis is not None:
            C = self._basis
            g -= C @ (C.T @ g)
            if info is not None:
                P = np.eye(len(g)) - C @ C.T
                info = P @ info @ P + C @ C.T
                info = 0.5 * (info + info.T)  # symmetric to the last bit, for Cholesky
            return g, info
        g[self._idx] = 0.0
        if info is not None:
            info = np.array(info, dtype=np.float64, copy=True)
            info[self._idx, :] = 0.0
            info[:, self._idx] = 0.0
            info[self._idx, self._idx] = 1.0
        return g, info

    def _view(self, state: NewtonState) -> NewtonState:
        if not self._idx.size and self._basis is None:
            return state
        cur = state.current
        score, info = self.project(cur.score, cur.info)
        return replace(
            state, current=replace(cur, score=score.reshape(cur.score.shape), info=info)
        )

    def start(self, objective: Objective, beta: np.ndarray) -> None:
        moved = self.inner.start(objective, beta)
        if moved is not None:
            raise ValueError("the inner strategy of Pinned may not change the start values")

    def information(self, state: NewtonState) -> np.ndarray | None:
        return self.inner.information(self._view(state))

    def direction(self, state: NewtonState) -> Proposal:
        proposal = self.inner.direction(self._view(state))
        delta = np.array(proposal.delta, dtype=np.float64, copy=True)
        if self._basis is not None:
            # 0 along the held directions but for rounding, which would accumulate.
            delta -= self._basis @ (self._basis.T @ delta)
        delta[self._idx] = 0.0  # exactly 0 already; this guards against rounding in the solve
        return replace(proposal, delta=delta)

    def accepted(self, state: NewtonState, proposal: Proposal, small: bool) -> None:
        self.inner.accepted(state, proposal, small)

    def rejected(self, state: NewtonState, proposal: Proposal, small: bool) -> bool:
        return self.inner.rejected(state, proposal, small)

    def information_after(self, small: bool) -> bool:
        ahead = getattr(self.inner, "information_after", None)
        return bool(ahead and ahead(small))
