"""Offsets: known terms added to the linear predictors, :math:`\\eta_{ij} = x_i^\\top\\beta_j +
o_{ij}`.

The kernels compute :math:`\\eta = X \\beta^\\top`; an offset is the same computation on the
augmented design :math:`[X, O]` (``O`` the ``(n, J)`` offsets) with the coefficients

.. math::

    \\beta^+ = [\\beta, I_J],

each equation's offset column entering it with coefficient 1 and the others with 0.  The
log-likelihood's score and information in :math:`\\beta` are the blocks of those in
:math:`\\beta^+` that belong to the columns of :math:`X` (the offsets' coefficients are not
parameters).  :class:`OffsetBackend` holds two in-memory backends over the same rows: one on
:math:`[X, O]` for everything computed from the linear predictors (the likelihood and its
derivatives, the robust meats, fitted probabilities), one on :math:`X` for what looks at the
design alone (the rank and separation checks: an offset is not a parameter and moves no
direction of the coefficients), whose chunks carry the offsets (``Chunk.offset``) for
reductions such as residuals and per-row scores (``augmented``).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .backend import Derivatives

__all__ = ["OffsetBackend", "augmented", "augmented_beta"]


def augmented_beta(beta: np.ndarray) -> np.ndarray:
    """:math:`[\\beta, I_J]`, shape ``(J, p + J)``."""
    beta = np.asarray(beta, dtype=np.float64)
    J = beta.shape[0]
    return np.ascontiguousarray(np.hstack([beta, np.eye(J)]))


def augmented(X: np.ndarray, offset: np.ndarray | None, beta: np.ndarray):
    """``(X, beta)`` to hand to a kernel so that its linear predictors include ``offset``:
    :math:`([X, O], [\\beta, I])`, or ``(X, beta)`` as they are without an offset."""
    if offset is None:
        return X, beta
    X_aug = np.ascontiguousarray(np.hstack([np.asarray(X, dtype=np.float64), offset]))
    return X_aug, augmented_beta(beta)


class OffsetBackend:
    """The rows of a model with an offset, behind the backend protocol in the coefficients of
    the design columns (see the module docstring).

    Parameters
    ----------
    plain
        Backend on the design ``X`` (``p`` columns).
    full
        Backend on ``[X, O]`` (``p + J`` columns), same rows, weights and order.
    offset : ndarray, shape (n, J)
    """

    def __init__(self, plain, full, offset: np.ndarray):
        self.plain = plain
        self.full = full
        self.offset = offset
        self.J = plain.J
        self.p = plain.p
        self.n = plain.n
        q = self.J * (self.p + self.J)
        self._keep = np.tile(np.arange(self.p + self.J) < self.p, self.J)
        assert self._keep.size == q

    # -- coordinates -------------------------------------------------------------------------

    def _aug(self, beta) -> np.ndarray:
        return augmented_beta(np.asarray(beta, dtype=np.float64).reshape(self.J, self.p))

    def _score(self, score) -> np.ndarray:
        return np.asarray(score)[:, : self.p]

    def _block(self, M: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(M[np.ix_(self._keep, self._keep)])

    def _derivatives(self, d: Derivatives | None) -> Derivatives | None:
        if d is None:
            return None
        info = None if d.info is None else self._block(d.info)
        return Derivatives(d.llf, self._score(d.score), info)

    @property
    def sample_rows(self):
        return getattr(self.full, "sample_rows", None)

    @property
    def threads(self):
        return getattr(self.plain, "threads", 1)

    # -- the likelihood, on [X, O] -------------------------------------------------------------

    def derivatives(self, beta, hessian=True):
        return self._derivatives(self.full.derivatives(self._aug(beta), hessian=hessian))

    def approx_information(self, beta):
        info = self.full.approx_information(self._aug(beta))
        return None if info is None else self._block(info)

    def approx_derivatives(self, beta, hessian=True):
        return self._derivatives(self.full.approx_derivatives(self._aug(beta), hessian))

    def hessian_vector(self, beta, v) -> np.ndarray:
        v_aug = np.zeros(self._keep.size)
        v_aug[self._keep] = np.asarray(v, dtype=np.float64).ravel()
        return np.asarray(self.full.hessian_vector(self._aug(beta), v_aug))[self._keep]

    def score_outer(self, beta) -> np.ndarray:
        return self._block(self.full.score_outer(self._aug(beta)))

    def group_scores(self, beta, codes, n_groups):
        sums, weight = self.full.group_scores(self._aug(beta), codes, n_groups)
        return np.asarray(sums)[:, self._keep], weight

    def cluster_meat(self, beta, codes, n_groups):
        meat, weight = self.full.cluster_meat(self._aug(beta), codes, n_groups)
        return self._block(meat), weight

    def probabilities(self, beta):
        return self.full.probabilities(self._aug(beta))

    def linear(self, beta):
        """Linear predictors ``(n, J)``, the offsets included."""
        return self.full.linear(self._aug(beta))

    # -- the design alone, on X -------------------------------------------------------------

    def positive_rows(self) -> int:
        return self.plain.positive_rows()

    def column_range(self):
        return self.plain.column_range()

    def set_column_range(self, lo, hi) -> None:
        self.plain.set_column_range(lo, hi)

    def gram(self, scale) -> np.ndarray:
        return self.plain.gram(scale)

    def r_factor(self, scale, ones=False) -> np.ndarray:
        return self.plain.r_factor(scale, ones=ones)

    def pair_stats(self, D) -> np.ndarray:
        return self.plain.pair_stats(D)

    def distinct_rows(self, scale):
        return self.plain.distinct_rows(scale)

    def reduce(self, fn, chunk_rows=None, progress=None, frames=True) -> list:
        """The design's chunks, each with its rows' offsets (``Chunk.offset``)."""
        offset = self.offset
        return self.plain.reduce(
            lambda c: fn(replace(c, offset=offset[c.rows])), chunk_rows, progress, frames
        )

    def source_frame(self):
        return self.plain.source_frame()

    def release(self) -> None:
        for be in (self.plain, self.full):
            release = getattr(be, "release", None)
            if release is not None:
                release()
