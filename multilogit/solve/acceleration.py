"""Anderson acceleration of the fixed-matrix Newton iteration.

The sampled phase of :class:`~multilogit.solve.directions.SampledThenExact` steps by
:math:`r_k = M^{-1} g(\\beta_k)` with one matrix :math:`M` (a subsample's information) for
several iterations.  Near the optimum the score is linear,
:math:`g(\\beta) \\approx \\mathcal{I}(\\hat\\beta - \\beta)`, so this is a stationary linear
iteration whose error shrinks by the spectral radius of :math:`I - M^{-1}\\mathcal{I}`, the
subsample's relative error, at each step.

Every pass over the rows yields a score, and the differences of consecutive scores are exact
products of the information with the steps between them:
:math:`g_k - g_{k+1} \\approx \\mathcal{I}(\\beta_{k+1} - \\beta_k)`.  Anderson acceleration
(type II, mixing 1) uses them at no extra pass: with the last ``m`` iterates and their
preconditioned scores, it finds the combination

.. math::

    \\gamma = \\arg\\min_\\gamma \\lVert r_k - \\Delta R\\,\\gamma \\rVert_M, \\qquad
    \\delta = r_k - (\\Delta B + \\Delta R)\\,\\gamma,

where the columns of :math:`\\Delta B` and :math:`\\Delta R` are differences of consecutive
iterates and of their :math:`r`.  The norm is that of :math:`M`, so the quantity minimised is
the predicted Newton decrement :math:`r^\\top M r = g^\\top M^{-1} g`.  On a linear score this is
GMRES on :math:`M^{-1}\\mathcal{I}`, which is self-adjoint and positive definite in the
:math:`M` inner product: the error shrinks like conjugate gradients', about twice as fast per
step as the plain iteration's, and faster once the Krylov space has caught the extreme
eigenvalues (Walker and Ni 2011, *SIAM J. Numer. Anal.* 49, 1715-1735).

The scores are kept, not the :math:`r`: when :math:`M` changes the history is re-solved with the
new matrix, so every difference in one least-squares problem comes from the same :math:`M`.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from ..engine.threads import small_dense_blas
from ..lazy import lazy_module

# Imported at the first step, not with multilogit (see multilogit.lazy).
linalg = lazy_module("scipy.linalg")

__all__ = ["AndersonAcceleration"]

# The least-squares problem's columns below this fraction of its largest singular value are
# dropped: nearly parallel differences (late, rounding-level steps) would otherwise give huge
# coefficients that cancel.
RCOND = 1e-10
# An accelerated step longer than this multiple of the plain step (in the M norm) is not
# trusted: the history then no longer describes a linear score (far from the optimum, or a new
# matrix after a large move); the plain step is taken and the history restarted.
MAX_GROWTH = 10.0


class AndersonAcceleration:
    """Anderson acceleration (type II) of steps :math:`M^{-1} g` with a Cholesky-factored
    :math:`M` (see the module docstring).

    Parameters
    ----------
    memory : int
        The most previous iterates used (``m``).
    """

    def __init__(self, memory: int = 5):
        if memory < 1:
            raise ValueError(f"memory must be at least 1; got {memory}")
        self.memory = int(memory)
        self._points: deque = deque(maxlen=self.memory + 1)
        self.used = 0

    def reset(self) -> None:
        """Forget the history (after a step that was not the one proposed, for instance)."""
        self._points.clear()
        self.used = 0

    def step(self, beta: np.ndarray, g: np.ndarray, factor, r: np.ndarray) -> np.ndarray:
        """The accelerated step from ``beta`` (flat) with score ``g`` and plain step
        ``r = M^{-1} g``, given ``factor`` = :func:`scipy.linalg.cho_factor` of ``M``.

        Records ``(beta, g)`` for the next steps.  Returns ``r`` itself while there is no
        history, or when the combination is not trusted.
        """
        self._points.append((np.array(beta, dtype=np.float64), np.array(g, dtype=np.float64)))
        self.used = 0
        if len(self._points) < 2:
            return r
        # Small dense algebra, like the factorisation behind ``factor``: one BLAS thread.
        with small_dense_blas(len(r)):
            delta, U = self._combination(factor, r)
        plain = float(np.sum((U @ r) ** 2))
        if not (np.all(np.isfinite(delta)) and plain > 0):
            self._restart()
            return r
        if float(np.sum((U @ delta) ** 2)) > MAX_GROWTH**2 * plain:
            self._restart()
            return r
        self.used = len(self._points) - 1
        return delta

    def _combination(self, factor, r: np.ndarray):
        """The accelerated step and the upper Cholesky factor ``U`` of ``M``."""
        B = np.array([b for b, _ in self._points]).T
        G = np.array([s for _, s in self._points]).T
        R = np.column_stack([linalg.cho_solve(factor, G[:, :-1]), r])
        dB, dR = np.diff(B, axis=1), np.diff(R, axis=1)
        U = np.triu(factor[0]) if not factor[1] else np.tril(factor[0]).T
        gamma, *_ = np.linalg.lstsq(U @ dR, U @ r, rcond=RCOND)
        return r - (dB + dR) @ gamma, U

    def _restart(self) -> None:
        last = self._points[-1]
        self._points.clear()
        self._points.append(last)
