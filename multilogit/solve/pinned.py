"""Newton steps with some coefficients held fixed: the constrained solves behind profile
likelihoods.

Maximising the objective over the free coefficients with the pinned ones held at their values
is Newton's method on the free block: with :math:`F` the free and :math:`R` the pinned
coordinates,

.. math::

    \\delta_F = \\mathcal{I}_{FF}^{-1}\\, g_F, \\qquad \\delta_R = 0 .

:class:`Pinned` gets that step from an ordinary direction strategy (exact Newton, Firth's
scoring) by showing it the iterate with the pinned rows and columns of the information replaced
by those of the identity and the pinned components of the score set to 0: the inner solve then
returns exactly the step above.  The objective (and a penalty that depends on the whole
information, such as Firth's) is evaluated at the full coefficient vector as usual, so the
same Newton loop, line search and backends serve the constrained solve, without copying the
data.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .directions import DirectionStrategy, Proposal
from .objective import Objective
from .state import NewtonState

__all__ = ["Pinned"]


class Pinned:
    """A direction strategy that leaves the ``pinned`` coefficients where they start.

    Parameters
    ----------
    inner : DirectionStrategy
        Solves with the exact information at every iterate (``needs_information``), such as
        :class:`~multilogit.solve.directions.ExactCholesky` or
        :class:`~multilogit.solve.firth.FirthScoring`; a strategy that changes the start
        (a warm start on a subsample) would move the pinned coefficients, so none is taken.
    pinned : array_like of bool, shape (J p,) or (J, p)
        The coefficients to hold fixed (flat, outcome-major).
    """

    def __init__(self, inner: DirectionStrategy, pinned):
        if not getattr(inner, "needs_information", False):
            raise ValueError("Pinned needs a strategy that solves with the exact information")
        self.inner = inner
        self.pinned = np.asarray(pinned, dtype=bool).ravel()
        self._idx = np.flatnonzero(self.pinned)

    needs_information = True

    @property
    def info_rows(self) -> float:
        return self.inner.info_rows

    def _view(self, state: NewtonState) -> NewtonState:
        """``state`` as the inner strategy sees it: pinned score 0, pinned information the
        identity's rows and columns."""
        if not self._idx.size:
            return state
        cur = state.current
        score = np.array(cur.score, dtype=np.float64, copy=True)
        score.ravel()[self._idx] = 0.0
        info = cur.info
        if info is not None:
            info = np.array(info, dtype=np.float64, copy=True)
            info[self._idx, :] = 0.0
            info[:, self._idx] = 0.0
            info[self._idx, self._idx] = 1.0
        return replace(state, current=replace(cur, score=score, info=info))

    def start(self, objective: Objective, beta: np.ndarray) -> None:
        moved = self.inner.start(objective, beta)
        if moved is not None:
            raise ValueError("the inner strategy of Pinned may not change the start values")

    def information(self, state: NewtonState) -> np.ndarray | None:
        return self.inner.information(self._view(state))

    def direction(self, state: NewtonState) -> Proposal:
        proposal = self.inner.direction(self._view(state))
        delta = np.array(proposal.delta, dtype=np.float64, copy=True)
        delta[self._idx] = 0.0  # exactly 0 already; this guards against rounding in the solve
        return replace(proposal, delta=delta)

    def accepted(self, state: NewtonState, proposal: Proposal, small: bool) -> None:
        self.inner.accepted(state, proposal, small)

    def rejected(self, state: NewtonState, proposal: Proposal, small: bool) -> bool:
        return self.inner.rejected(state, proposal, small)

    def information_after(self, small: bool) -> bool:
        ahead = getattr(self.inner, "information_after", None)
        return bool(ahead and ahead(small))
