"""The function the Newton solver maximises: the log-likelihood, less an optional penalty.

Conventions
-----------
``beta`` has shape ``(J, p)``: one row per non-reference outcome, one column per term.  Flat
vectors and the matrices acting on them follow ``beta.ravel()`` (outcome-major: all terms of
the first non-reference outcome, then the next), the layout of the backends' score and
information.  The *information* of an objective is its negative Hessian, so a Newton step
solves :math:`\\mathcal{I}\\,\\delta = g` for the gradient (score) :math:`g`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["Evaluation", "Objective", "Penalty", "RidgePenalty", "halve_step"]

# Rounding can lower the objective by a few ulps at the optimum: step-halving accepts a
# decrease this small (relative to 1 + |objective|).
ROUNDING = 1e-12


@runtime_checkable
class Penalty(Protocol):
    """A term subtracted from the log-likelihood: the solver maximises
    :math:`\\ell(\\beta) - P(\\beta)`.

    A convex :math:`P` keeps the objective concave, so the Newton directions stay ascent
    directions and the step-halving needs no change.  The methods take ``beta`` of shape
    ``(J, p)`` and return :math:`P(\\beta)` (a float), :math:`\\nabla P` (shape ``(J, p)``) and
    :math:`\\nabla^2 P` (shape ``(J p, J p)``), which the objective adds to the information.

    A penalty that depends on the data binds its backend when it is built.  Firth's bias
    reduction, :math:`P(\\beta) = -\\tfrac12 \\log\\det \\mathcal{I}(\\beta)`, is one: its gradient
    :math:`-\\tfrac12 \\operatorname{tr}(\\mathcal{I}^{-1} \\partial \\mathcal{I} / \\partial
    \\beta_k)` contracts the third derivatives of the log-likelihood (a kernel pass over the
    rows), and its ``hessian`` may return zeros: the directions then use the likelihood's
    information, the usual approximation, which changes the convergence rate, not the optimum.
    """

    def value(self, beta: np.ndarray) -> float: ...

    def gradient(self, beta: np.ndarray) -> np.ndarray: ...

    def hessian(self, beta: np.ndarray) -> np.ndarray: ...


class RidgePenalty:
    """The ridge (L2) penalty :math:`P(\\beta) = \\tfrac{\\alpha}{2} \\lVert m \\circ \\beta
    \\rVert^2`.

    .. math::

        \\nabla P = \\alpha\\, m^2 \\circ \\beta, \\qquad
        \\nabla^2 P = \\alpha \\operatorname{diag}(m^2)

    Parameters
    ----------
    alpha : float
        Strength, at least 0.
    mask : array_like, optional
        Broadcastable to ``beta``'s ``(J, p)``: 0 leaves a coefficient unpenalised (e.g. the
        intercepts, ``mask[ic] = 0`` for a ``(p,)`` mask), 1 penalises it; other nonnegative
        values weight it, which is how a penalty on the original coefficients carries over to
        columns rescaled by :math:`s` (:math:`\\tilde\\beta = \\beta s`: use ``mask / s``).
        Default: every coefficient, unweighted.

    Notes
    -----
    For reference coding, this is not the penalty of scikit-learn's multinomial
    ``LogisticRegression``, which penalises all :math:`K` outcomes' coefficients in a symmetric
    parameterisation; with two outcomes, scikit-learn's binary model with ``C`` is the ridge of
    ``alpha = 1 / C`` with the intercept unpenalised.
    """

    def __init__(self, alpha: float, mask: np.ndarray | None = None):
        alpha = float(alpha)
        if not (math.isfinite(alpha) and alpha >= 0):
            raise ValueError(f"alpha must be finite and nonnegative; got {alpha!r}")
        self.alpha = alpha
        self.mask = None if mask is None else np.asarray(mask, dtype=np.float64)
        if self.mask is not None and not np.all(np.isfinite(self.mask) & (self.mask >= 0)):
            raise ValueError("mask must be finite and nonnegative")

    def _weights(self, beta: np.ndarray) -> np.ndarray:
        """:math:`\\alpha m^2` at ``beta``'s shape."""
        if self.mask is None:
            return np.full(beta.shape, self.alpha)
        try:
            return self.alpha * np.broadcast_to(self.mask**2, beta.shape)
        except ValueError:
            raise ValueError(
                f"mask of shape {self.mask.shape} does not fit coefficients of shape {beta.shape}"
            ) from None

    def value(self, beta: np.ndarray) -> float:
        beta = np.asarray(beta, dtype=np.float64)
        return 0.5 * float(np.sum(self._weights(beta) * beta**2))

    def gradient(self, beta: np.ndarray) -> np.ndarray:
        beta = np.asarray(beta, dtype=np.float64)
        return self._weights(beta) * beta

    def hessian(self, beta: np.ndarray) -> np.ndarray:
        beta = np.asarray(beta, dtype=np.float64)
        return np.diag(self._weights(beta).ravel())

    def hessian_vector(self, beta: np.ndarray, v: np.ndarray) -> np.ndarray:
        """:math:`\\nabla^2 P\\, v` for a flat ``v``, without the dense Hessian."""
        beta = np.asarray(beta, dtype=np.float64)
        return self._weights(beta).ravel() * np.asarray(v, dtype=np.float64).ravel()

    def hessian_blocks(self, beta: np.ndarray) -> np.ndarray:
        """The ``J`` diagonal ``p x p`` blocks of :math:`\\nabla^2 P`, ``(J, p, p)`` (the
        others are zero)."""
        beta = np.asarray(beta, dtype=np.float64)
        wts = self._weights(beta)
        return wts[:, :, None] * np.eye(beta.shape[1])

    def __repr__(self) -> str:
        return f"RidgePenalty(alpha={self.alpha!r}, mask={self.mask!r})"


@dataclass(frozen=True)
class Evaluation:
    """The objective at one point.

    Attributes
    ----------
    value : float
        :math:`\\ell(\\beta) - P(\\beta)`, what the solver maximises.
    score : ndarray, shape (J, p)
        Its gradient.
    info : ndarray, shape (J p, J p), or None
        Its negative Hessian, :math:`\\mathcal{I}(\\beta) + \\nabla^2 P`, when asked for.
    loglike : float
        :math:`\\ell(\\beta)`.
    penalty : float
        :math:`P(\\beta)` (0 without a penalty).
    products : callable or None
        :math:`v \\mapsto (\\mathcal{I} + \\nabla^2 P) v` at this point, when asked for (see
        :meth:`Objective.evaluate`); valid until the next evaluation that asks for one.
    """

    value: float
    score: np.ndarray
    info: np.ndarray | None
    loglike: float
    penalty: float = 0.0
    products: object = field(default=None, repr=False, compare=False)


class Objective:
    """A backend's log-likelihood, less an optional :class:`Penalty`.

    Without a penalty the backend's numbers pass through untouched (no arithmetic on them), so
    an unpenalised fit is the same to the last bit whether or not it goes through here.

    Parameters
    ----------
    backend
        Object with ``derivatives(beta, hessian)`` (returning ``llf``, ``score``, ``info``);
        optionally ``approx_information(beta)``, ``n`` and ``sample_rows``.
    penalty : Penalty, optional
    """

    def __init__(self, backend, penalty: Penalty | None = None):
        self.backend = backend
        self.penalty = penalty
        self._approx = getattr(backend, "approx_information", None)
        self._approx_derivatives = getattr(backend, "approx_derivatives", None)
        #: Full passes over the rows so far (each evaluation is one; the subsample's
        #: approximate information is not).
        self.passes = 0

    def evaluate(
        self, beta: np.ndarray, hessian: bool = True, products: float | None = None
    ) -> Evaluation:
        """Value, score and (when ``hessian``) information at ``beta``: one pass over the
        rows.

        With ``products`` (bytes, as ``max_bytes`` of :meth:`hessian_operator`) and without
        ``hessian``, the evaluation also carries the Hessian-vector products at ``beta``
        (``Evaluation.products``), from a backend that can keep the pass's probabilities for
        them (``derivatives_and_operator``); the value and score are the same.
        """
        self.passes += 1
        both = getattr(self.backend, "derivatives_and_operator", None)
        if products is None or hessian or both is None:
            return self._penalised(beta, self.backend.derivatives(beta, hessian=hessian))
        d, product = both(beta, products)
        return replace(self._penalised(beta, d), products=self._counted(beta, product))

    def evaluate_information(self, beta: np.ndarray) -> Evaluation:
        """:meth:`evaluate` with the information, through the backend's
        ``information_derivatives`` when it has one (the same numbers up to rounding, read
        in larger blocks: for the one information of a matrix-free fit)."""
        once = getattr(self.backend, "information_derivatives", None)
        if once is None:
            return self.evaluate(beta, hessian=True)
        self.passes += 1
        return self._penalised(beta, once(beta))

    def _penalised(self, beta: np.ndarray, d) -> Evaluation:
        """The backend's derivatives ``d`` at ``beta`` less the penalty's (untouched without
        one)."""
        if self.penalty is None:
            return Evaluation(d.llf, d.score, d.info, d.llf)
        pen = self.penalty.value(beta)
        score = d.score - self.penalty.gradient(beta)
        info = None if d.info is None else d.info + self.penalty.hessian(beta)
        return Evaluation(d.llf - pen, score, info, d.llf, pen)

    # -- matrix-free curvature (Newton-CG) ------------------------------------------------------

    def hessian_operator(self, beta: np.ndarray, max_bytes: float = 0):
        """:math:`v \\mapsto (\\mathcal{I}(\\beta) + \\nabla^2 P)\\, v` at ``beta`` (flat ``v``),
        each product one pass over the rows (counted in :attr:`passes`).

        Uses the backend's ``hessian_operator`` when it has one (it may keep the rows'
        probabilities at ``beta`` when they take at most ``max_bytes``), else its
        ``hessian_vector``.
        """
        make = getattr(self.backend, "hessian_operator", None)
        if make is not None:
            product = make(beta, max_bytes)
        else:
            product = lambda v: self.backend.hessian_vector(beta, v)  # noqa: E731
        return self._counted(beta, product)

    def _counted(self, beta: np.ndarray, product):
        """``product`` (the backend's) plus the penalty's, each call counted as a pass."""
        penalty = None if self.penalty is None else self._penalty_product(beta)

        def apply(v: np.ndarray) -> np.ndarray:
            self.passes += 1
            out = np.asarray(product(v), dtype=np.float64).ravel()
            return out if penalty is None else out + penalty(v)

        return apply

    def _penalty_product(self, beta: np.ndarray):
        """The penalty's Hessian times a flat vector (its ``hessian_vector`` when it has
        one, else through its dense Hessian)."""
        hv = getattr(self.penalty, "hessian_vector", None)
        if hv is not None:
            return lambda v: np.asarray(hv(beta, v)).ravel()
        H = self.penalty.hessian(beta)
        return lambda v: H @ v

    @property
    def can_multiply(self) -> bool:
        """Whether the backend offers Hessian-vector products (what Newton-CG needs)."""
        return any(
            getattr(self.backend, name, None) is not None
            for name in ("hessian_operator", "hessian_vector")
        )

    def block_information(self, beta: np.ndarray) -> np.ndarray | None:
        """The ``J`` diagonal ``p x p`` blocks of the objective's information at ``beta`` and,
        last, the sum of all its blocks, ``(J + 1, p, p)``: one pass over the rows (``None``
        when the backend does not offer them)."""
        if getattr(self.backend, "block_information", None) is None:
            return None
        self.passes += 1
        blocks = np.array(self.backend.block_information(beta), dtype=np.float64)
        if self.penalty is None:
            return blocks
        J, p = blocks.shape[0] - 1, blocks.shape[1]
        hb = getattr(self.penalty, "hessian_blocks", None)
        if hb is not None:  # a penalty whose Hessian is block diagonal
            diag = np.asarray(hb(beta), dtype=np.float64)
            blocks[:J] += diag
            blocks[J] += diag.sum(axis=0)
            return blocks
        H = self.penalty.hessian(beta).reshape(J, p, J, p)
        blocks[:J] += np.stack([H[j, :, j, :] for j in range(J)])
        blocks[J] += H.sum(axis=(0, 2))
        return blocks

    @property
    def can_approximate(self) -> bool:
        """Whether the backend offers a cheap approximate information."""
        return self._approx is not None

    def approx_information(self, beta: np.ndarray) -> np.ndarray | None:
        """The backend's approximate information plus the penalty's Hessian (``None`` when the
        backend has none, e.g. too few rows for a subsample)."""
        info = None if self._approx is None else self._approx(beta)
        if info is None or self.penalty is None:
            return info
        return info + self.penalty.hessian(beta)

    @property
    def can_approximate_objective(self) -> bool:
        """Whether the backend also offers the subsample's log-likelihood and score, scaled
        to the data (what a warm start on the subsample needs)."""
        return self._approx_derivatives is not None

    def approx_evaluate(self, beta: np.ndarray, hessian: bool = True) -> Evaluation | None:
        """The objective of the backend's row subsample, scaled to the data: value, score and
        (when ``hessian``) information, with the penalty's terms; ``None`` without a
        subsample.  Not counted as a pass over the rows (it costs about the subsample's share
        of one)."""
        d = None if self._approx_derivatives is None else self._approx_derivatives(beta, hessian)
        return None if d is None else self._penalised(beta, d)

    @property
    def equations(self) -> int:
        """Non-reference outcomes of the backend (0 when it does not say)."""
        return int(getattr(self.backend, "J", 0) or 0)

    @property
    def parameters(self) -> int:
        """Parameters of the backend, ``J p`` (0 when it does not say)."""
        return self.equations * int(getattr(self.backend, "p", 0) or 0)

    @property
    def n_rows(self) -> float:
        """Rows behind the exact information (NaN when the backend does not say)."""
        return float(getattr(self.backend, "n", np.nan))

    @property
    def sample_rows(self) -> float:
        """Rows behind the approximate information (NaN when the backend does not say)."""
        return float(getattr(self.backend, "sample_rows", np.nan))


def halve_step(evaluate, beta: np.ndarray, delta: np.ndarray, value: float, max_halvings: int):
    """Halve the step ``delta`` from ``beta`` until the objective does not decrease.

    Parameters
    ----------
    evaluate : callable
        ``evaluate(point, step)``: the :class:`Evaluation` at ``point``, reached with step
        length ``step`` (so a caller can ask for more, e.g. the information, at a full step).
    beta, delta : ndarray
        The current point and the full step, of the same shape.
    value : float
        The objective at ``beta``.
    max_halvings : int

    Returns
    -------
    (step, point, Evaluation) or None
        The step length, the new point and the objective there; ``None`` when
        ``max_halvings`` halvings did not do.
    """
    floor = value - ROUNDING * (1.0 + abs(value))
    step = 1.0
    for _ in range(max_halvings + 1):
        point = beta + step * delta
        trial = evaluate(point, step)
        if np.isfinite(trial.value) and trial.value >= floor:
            return step, point, trial
        step *= 0.5
    return None
