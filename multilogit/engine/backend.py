"""The backend protocol: every pass over the rows of a fit goes through one of these operations.

A backend owns the rows of a fit (the design matrix, the outcome codes and the weights) and
hands out reductions over them.  Each operation is a sum over chunks of rows of a per-chunk
kernel result (:mod:`multilogit.engine.kernels`), added in a fixed order, so a backend's
results do not depend on timing.  Nothing outside the engine reads the design matrix of a
fit: the solver, the rank and separation checks, the covariance estimators, predictions on
the estimation sample, residuals and marginal effects all ask their backend.  A new backend
(rows streamed from files, partitions on a cluster) that implements these operations brings
every one of those features with it.

Weights
-------
A backend holds two row weights: the likelihood weight :math:`f_i w_i` (frequency times
sampling weight) that multiplies each row's log-likelihood, and the sampling weight
:math:`w_i` alone (1 without sampling weights), which enters the robust meat squared.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["Backend", "Chunk", "Derivatives", "default_chunk_rows"]

# Rows per chunk: the chunk of X and its (m, J) blocks stay around 1 MiB, in cache between the
# BLAS products and the Numba loops, while chunks stay long enough that the per-chunk call
# overhead is small.  The information factors of a chunk are at most a few MiB on top.
_CHUNK_BYTES = 1 << 20


def default_chunk_rows(p: int, J: int) -> int:
    """Rows per chunk so that the work buffers of one chunk stay cache-sized."""
    return int(min(max(_CHUNK_BYTES // (8 * (p + 2 * J + 2)), 256), 16384))


@dataclass(frozen=True)
class Derivatives:
    """Log-likelihood, score ``(J, p)`` and information ``(J p, J p)`` (or ``None``)."""

    llf: float
    score: np.ndarray
    info: np.ndarray | None


def scale_derivatives(d: Derivatives, factor: float) -> Derivatives:
    """``d`` times ``factor``: a subsample's derivatives standing for the whole data."""
    info = None if d.info is None else d.info * factor
    return Derivatives(d.llf * factor, d.score * factor, info)


@dataclass(frozen=True)
class Chunk:
    """One chunk of a backend's rows, as handed to :meth:`Backend.reduce`.

    Attributes
    ----------
    rows : slice
        Positions of the chunk among the backend's rows.
    X : ndarray, shape (m, p)
        Design rows (read-only).
    y : ndarray of int, shape (m,)
        Equation index of each row's outcome (``-1`` for the reference).
    weights : ndarray, shape (m,)
        Likelihood weights :math:`f_i w_i`.
    frame : pandas.DataFrame or None
        The source data of these rows when the backend holds it (formula models), else None.
    offset : ndarray, shape (m, J), or None
        The rows' offsets of a model with an offset (the linear predictors are
        :math:`x_i^\\top \\beta_j + o_{ij}`; see :mod:`multilogit.engine.offset`), else None.
        Anything computed from ``X`` and the coefficients must add it.
    """

    rows: slice
    X: np.ndarray
    y: np.ndarray
    weights: np.ndarray
    frame: object = None
    offset: np.ndarray | None = None


@runtime_checkable
class Backend(Protocol):
    """What the fit pipeline, the inference and the results need from the rows of a fit.

    ``beta`` is always the ``(J, p)`` coefficient matrix (flat outcome-major, see
    :mod:`multilogit.engine.kernels`).  Every operation is a fixed-order reduction over row
    chunks.
    """

    n: int
    p: int
    J: int

    def derivatives(self, beta: np.ndarray, hessian: bool = True) -> Derivatives:
        """Log-likelihood, score and (with ``hessian``) the information at ``beta``."""
        ...

    def approx_information(self, beta: np.ndarray) -> np.ndarray | None:
        """The information of a fixed row subsample, scaled to the data (``None``: none)."""
        ...

    def approx_derivatives(self, beta: np.ndarray, hessian: bool = True) -> Derivatives | None:
        """:meth:`derivatives` of the same subsample, scaled to the data (``None``: none)."""
        ...

    def hessian_vector(self, beta: np.ndarray, v: np.ndarray) -> np.ndarray:
        """The information at ``beta`` times ``v`` (flat, ``(J p,)``), matrix-free."""
        ...

    def block_information(self, beta: np.ndarray) -> np.ndarray:
        """The ``J`` diagonal ``p x p`` blocks of the information at ``beta`` and, last, the
        sum of all its ``J^2`` blocks (the information of the reference outcome's own
        contrast), ``(J + 1, p, p)``, in one pass: a preconditioner for conjugate
        gradients."""
        ...

    def score_outer(self, beta: np.ndarray) -> np.ndarray:
        """:math:`\\sum_i f_i w_i^2 s_i s_i^\\top` (the robust meat), ``(J p, J p)``."""
        ...

    def group_scores(
        self, beta: np.ndarray, codes: np.ndarray, n_groups: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """:math:`u_g = \\sum_{i \\in g} f_i w_i s_i` for groups ``0..n_groups-1``,
        ``(n_groups, J p)``, and each group's total likelihood weight; ``codes`` gives each
        row's group."""
        ...

    def cluster_meat(
        self, beta: np.ndarray, codes: np.ndarray, n_groups: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """:math:`\\sum_g u_g u_g^\\top` over the group sums :math:`u_g` of
        :meth:`group_scores`, ``(J p, J p)`` (the cluster-robust meat, without holding every
        :math:`u_g` at once where the backend can avoid it), and each group's total likelihood
        weight."""
        ...

    def positive_rows(self) -> int:
        """The number of rows with positive likelihood weight."""
        ...

    def column_range(self) -> tuple[np.ndarray, np.ndarray]:
        """Each design column's smallest and largest value over all rows."""
        ...

    def gram(self, scale: np.ndarray) -> np.ndarray:
        """:math:`\\tilde X^\\top \\tilde X` of :math:`\\tilde X = X / \\text{scale}` over the
        rows with positive weight."""
        ...

    def r_factor(self, scale: np.ndarray, ones: bool = False) -> np.ndarray:
        """The triangular factor ``R`` of a QR decomposition of :math:`X / \\text{scale}`
        (rows with positive weight; with ``ones``, a column of ones appended): columns of
        ``R`` have the same norms and angles as those of the design, so rank decisions on ``R``
        are those on the design."""
        ...

    def pair_stats(self, D: np.ndarray) -> np.ndarray:
        """Separation statistics of a direction ``D`` (``(J, p)``) over rows with positive
        weight: the weighted sums of the positive and negative parts of
        :math:`a_{ik} = x_i^\\top (d_{y_i} - d_k)`, and its minimum and maximum."""
        ...

    def distinct_rows(self, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Distinct ``(x / scale, y)`` rows with positive weight and their summed weights."""
        ...

    def probabilities(self, beta: np.ndarray) -> np.ndarray:
        """Fitted probabilities ``(n, J + 1)``: the J non-reference outcomes, then the
        reference."""
        ...

    def linear(self, beta: np.ndarray) -> np.ndarray:
        """Linear predictors ``(n, J)`` against the reference outcome."""
        ...

    def reduce(
        self,
        fn: Callable[[Chunk], object],
        chunk_rows: int | None = None,
        progress: str | None = None,
        frames: bool = True,
    ) -> list:
        """``[fn(chunk) for chunk in the rows]``, in row order (for reductions whose per-chunk
        work is not one of the operations above, such as marginal effects); with
        ``progress``, a progress bar of that label (rows, or partitions on a cluster).
        ``frames=False``: the chunks carry no source data (``frame`` is None), which spares
        reading it where that costs a pass over the source (a streamed fit, Dask)."""
        ...
