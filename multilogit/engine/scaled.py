"""A backend in rescaled coordinates, for designs whose columns differ wildly in scale.

Columns on wildly different scales (say ``1e-6`` and ``1e6``) make the Newton step test
``|delta| <= tol (1 + |beta|)`` meaningless for the small or the large coefficients.  The solver
then works in rescaled coordinates, :math:`\\tilde X = X S^{-1}`, :math:`\\tilde\\beta = \\beta S`,
with :math:`S` a diagonal matrix of powers of two: multiplying by a power of two is exact in binary
floating point, so the rescaled problem is the same problem, evaluated with the same rounding,
and mapping back is exact.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from . import kernels
from .backend import Derivatives

__all__ = [
    "ScaledBackend",
    "WeightScaledBackend",
    "column_absmax",
    "column_scale",
    "scale_from_absmax",
]

# Columns whose largest magnitude is within [2**-10, 2**10] are left alone: rescaling them gains
# nothing, and leaving them keeps the common case bitwise identical to an unscaled solve.
_SCALE_FREE_EXPONENT = 10


def column_absmax(X: np.ndarray) -> np.ndarray:
    """Largest magnitude of each column, in one pass without an n x p temporary."""
    if X.shape[0] == 0:
        return np.zeros(X.shape[1])
    X = np.ascontiguousarray(X, dtype=np.float64)
    lo, hi = kernels.scan_columns(X, np.empty(len(X), dtype=np.bool_))
    return np.maximum(hi, -lo)


def column_scale(X: np.ndarray) -> np.ndarray | None:
    """Power-of-two column scales that bring every column's largest magnitude near 1.

    Returns ``None`` when every column is already within a factor ``2**10`` of 1 (no rescaling
    needed).  All-zero and non-finite columns get scale 1.
    """
    return scale_from_absmax(column_absmax(X) if X.shape[0] else np.ones(X.shape[1]))


def scale_from_absmax(amax: np.ndarray) -> np.ndarray | None:
    """The scales of :func:`column_scale` from each column's largest magnitude."""
    with np.errstate(divide="ignore", invalid="ignore"):
        expo = np.where(np.isfinite(amax) & (amax > 0), np.round(np.log2(amax)), 0.0)
    if np.all(np.abs(expo) <= _SCALE_FREE_EXPONENT):
        return None
    return np.ldexp(1.0, expo.astype(int))


class ScaledBackend:
    """A backend in rescaled coordinates :math:`\\tilde\\beta = \\beta S`.

    With :math:`\\tilde X = X S^{-1}` the linear predictors do not change; the score is
    :math:`\\tilde g = g S^{-1}` and the information :math:`S^{-1} \\mathcal{I} S^{-1}` (per
    equation block).  The wrapped backend still sees the original coordinates, so any backend
    (in memory, chunked, Dask) can be wrapped without copying the data.

    Parameters
    ----------
    inner
        A backend with ``derivatives(beta, hessian)``.
    scale : ndarray, shape (p,)
        Powers of two (see :func:`column_scale`).
    J : int
        Number of equations.
    """

    def __init__(self, inner, scale: np.ndarray, J: int):
        self.inner = inner
        self.scale = np.asarray(scale, dtype=np.float64)
        self.J = int(J)
        self._flat = np.tile(self.scale, self.J)

    def to_original(self, beta_scaled: np.ndarray) -> np.ndarray:
        return np.asarray(beta_scaled) / self.scale

    def to_scaled(self, beta: np.ndarray) -> np.ndarray:
        return np.asarray(beta) * self.scale

    def derivatives(self, beta, hessian=True):
        return self._rescale(self.inner.derivatives(self.to_original(beta), hessian=hessian))

    def _rescale(self, d):
        info = None
        if d.info is not None:
            info = d.info / np.outer(self._flat, self._flat)
        return Derivatives(d.llf, d.score / self.scale, info)

    @property
    def n(self):
        return getattr(self.inner, "n", None)

    @property
    def p(self):
        return self.scale.size

    @property
    def sample_rows(self):
        return getattr(self.inner, "sample_rows", None)

    @property
    def approx_information(self):
        """The inner backend's approximate information, rescaled (``None`` if it has none)."""
        inner = getattr(self.inner, "approx_information", None)
        if inner is None:
            return None

        def approx(beta):
            info = inner(self.to_original(beta))
            return None if info is None else info / np.outer(self._flat, self._flat)

        return approx

    @property
    def approx_derivatives(self):
        """The inner backend's subsample derivatives, rescaled (``None`` if it has none)."""
        inner = getattr(self.inner, "approx_derivatives", None)
        if inner is None:
            return None

        def approx(beta, hessian=True):
            d = inner(self.to_original(beta), hessian)
            return None if d is None else self._rescale(d)

        return approx

    # The rest of the Backend protocol, in the same coordinates: the design is X S^{-1}, a
    # coefficient (or direction) b there is b / S in the original ones, and each flat score
    # coordinate is divided by its column's scale.

    def hessian_vector(self, beta, v) -> np.ndarray:
        v = np.asarray(v, dtype=np.float64).ravel() / self._flat
        return self.inner.hessian_vector(self.to_original(beta), v) / self._flat

    def block_information(self, beta) -> np.ndarray:
        blocks = self.inner.block_information(self.to_original(beta))
        return blocks / np.outer(self.scale, self.scale)

    @property
    def hessian_operator(self):
        """The inner backend's :meth:`hessian_operator`, rescaled (``None`` if it has none)."""
        inner = getattr(self.inner, "hessian_operator", None)
        if inner is None:
            return None

        def operator(beta, max_bytes=0):
            apply = inner(self.to_original(beta), max_bytes)
            return lambda v: (
                apply(np.asarray(v, dtype=np.float64).ravel() / self._flat) / self._flat
            )

        return operator

    @property
    def information_derivatives(self):
        """The inner backend's ``information_derivatives``, rescaled (``None`` if it has
        none)."""
        inner = getattr(self.inner, "information_derivatives", None)
        if inner is None:
            return None
        return lambda beta: self._rescale(inner(self.to_original(beta)))

    @property
    def derivatives_and_operator(self):
        """The inner backend's ``derivatives_and_operator``, rescaled (``None`` if it has
        none)."""
        inner = getattr(self.inner, "derivatives_and_operator", None)
        if inner is None:
            return None

        def both(beta, max_bytes=0):
            d, apply = inner(self.to_original(beta), max_bytes)
            flat = self._flat
            return self._rescale(d), lambda v: apply(np.asarray(v).ravel() / flat) / flat

        return both

    def score_outer(self, beta) -> np.ndarray:
        return self.inner.score_outer(self.to_original(beta)) / np.outer(self._flat, self._flat)

    def group_scores(self, beta, codes, n_groups):
        sums, weight = self.inner.group_scores(self.to_original(beta), codes, n_groups)
        return sums / self._flat, weight

    def cluster_meat(self, beta, codes, n_groups):
        meat, weight = self.inner.cluster_meat(self.to_original(beta), codes, n_groups)
        return meat / np.outer(self._flat, self._flat), weight

    def positive_rows(self) -> int:
        return self.inner.positive_rows()

    def column_range(self):
        lo, hi = self.inner.column_range()
        return lo / self.scale, hi / self.scale

    def gram(self, scale) -> np.ndarray:
        return self.inner.gram(np.asarray(scale) * self.scale)

    def r_factor(self, scale, ones=False) -> np.ndarray:
        return self.inner.r_factor(np.asarray(scale) * self.scale, ones=ones)

    def pair_stats(self, D) -> np.ndarray:
        return self.inner.pair_stats(self.to_original(np.asarray(D).reshape(self.J, self.p)))

    def distinct_rows(self, scale):
        return self.inner.distinct_rows(np.asarray(scale) * self.scale)

    def probabilities(self, beta):
        return self.inner.probabilities(self.to_original(beta))

    def linear(self, beta):
        return self.inner.linear(self.to_original(beta))

    def reduce(self, fn, chunk_rows=None, progress=None, frames=True) -> list:
        return self.inner.reduce(
            lambda c: fn(replace(c, X=c.X / self.scale)), chunk_rows, progress, frames
        )

    def release(self) -> None:
        release = getattr(self.inner, "release", None)
        if release is not None:
            release()

    def unscale_info(self, info_scaled: np.ndarray) -> np.ndarray:
        """Information in the original coordinates."""
        return info_scaled * np.outer(self._flat, self._flat)

    def unscale_score(self, score_scaled: np.ndarray) -> np.ndarray:
        return np.asarray(score_scaled) * self.scale


class WeightScaledBackend:
    """What the solver reads of a backend, divided by a power of two ``scale``: as if the
    rows' weights were divided by it (the log-likelihood, score and information are linear in
    the weights, and dividing by a power of two is exact).

    For rows a backend holds (data larger than memory), whose weights cannot be normalised
    where they are stored: the convergence test then does not depend on the scale of sampling
    weights.  Only the solver's needs are provided (``derivatives`` and its approximations).
    """

    def __init__(self, inner, scale: float):
        self.inner = inner
        self.scale = float(scale)

    def _divided(self, d):
        if d is None:
            return None
        info = None if d.info is None else d.info / self.scale
        return Derivatives(d.llf / self.scale, d.score / self.scale, info)

    def derivatives(self, beta, hessian=True):
        return self._divided(self.inner.derivatives(beta, hessian=hessian))

    @property
    def approx_information(self):
        inner = getattr(self.inner, "approx_information", None)
        if inner is None:
            return None

        def approx(beta):
            info = inner(beta)
            return None if info is None else info / self.scale

        return approx

    @property
    def approx_derivatives(self):
        inner = getattr(self.inner, "approx_derivatives", None)
        if inner is None:
            return None
        return lambda beta, hessian=True: self._divided(inner(beta, hessian))

    J = property(lambda self: getattr(self.inner, "J", None))
    n = property(lambda self: getattr(self.inner, "n", None))
    p = property(lambda self: getattr(self.inner, "p", None))
    sample_rows = property(lambda self: getattr(self.inner, "sample_rows", None))

    def release(self) -> None:
        release = getattr(self.inner, "release", None)
        if release is not None:
            release()
