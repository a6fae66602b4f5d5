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

__all__ = [
    "DataPenalty",
    "Evaluation",
    "Objective",
    "Penalty",
    "QuadraticPenalty",
    "RidgePenalty",
    "halve_step",
]

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

    A penalty that depends on the information at ``beta`` (Firth's bias reduction) is a
    :class:`DataPenalty` instead.
    """

    def value(self, beta: np.ndarray) -> float: ...

    def gradient(self, beta: np.ndarray) -> np.ndarray: ...

    def hessian(self, beta: np.ndarray) -> np.ndarray: ...


@runtime_checkable
class DataPenalty(Protocol):
    """A penalty that is a function of the information at ``beta``, such as Firth's
    :math:`P(\\beta) = -\\tfrac12 \\log\\det \\mathcal{I}(\\beta)`.

    The objective evaluates the information at every point (the penalty needs it) and hands
    the backend's derivatives to ``terms``, which returns :math:`P(\\beta)`,
    :math:`\\nabla P` (shape ``(J, p)``) and :math:`\\nabla^2 P` (``(J p, J p)``), or ``None``
    for the Hessian when it is not available (the directions then use the likelihood's
    information alone).  A point where the penalty is not defined has an infinite ``P``.
    """

    needs_information: bool

    def terms(
        self, beta: np.ndarray, derivatives
    ) -> tuple[float, np.ndarray, np.ndarray | None]: ...


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


class QuadraticPenalty:
    """A general quadratic (ridge-type) penalty
    :math:`P(\\beta) = \\tfrac12 b^\\top A\\, b`, :math:`b = \\operatorname{vec}(\\beta)`
    (outcome-major), with :math:`A` symmetric positive semidefinite.

    .. math::

        \\nabla P = A b, \\qquad \\nabla^2 P = A

    Two forms of the ridge on the multinomial logit are built by :meth:`reference` and
    :meth:`symmetric`; :meth:`rescaled` states either in rescaled coordinates.

    Parameters
    ----------
    matrix : ndarray, shape (J p, J p)
    """

    def __init__(self, matrix: np.ndarray):
        A = np.array(matrix, dtype=np.float64)
        if A.ndim != 2 or A.shape[0] != A.shape[1] or not np.all(np.isfinite(A)):
            raise ValueError("the penalty matrix must be square and finite")
        self.matrix = (A + A.T) / 2.0

    @classmethod
    def reference(cls, alpha: float, J: int, weights: np.ndarray) -> QuadraticPenalty:
        """The ridge on the reference-coded coefficients,
        :math:`P = \\tfrac{\\alpha}{2} \\sum_j \\sum_t w_t \\beta_{jt}^2`
        (nnet's ``decay`` with ``alpha = 2 * decay`` and every :math:`w_t = 1`).

        ``weights`` (shape ``(p,)``, nonnegative) weights each term: 0 leaves it unpenalised.
        """
        w = _term_weights(alpha, weights)
        return cls(np.diag(np.tile(w, int(J))))

    @classmethod
    def symmetric(cls, alpha: float, J: int, weights: np.ndarray) -> QuadraticPenalty:
        """The ridge of the symmetric parameterisation (scikit-learn's multinomial
        ``LogisticRegression``, glmnet), stated in the reference-coded coefficients.

        With one coefficient vector :math:`w_k` per outcome, :math:`k = 1, \\dots, K`, the
        likelihood depends only on :math:`b_k = w_k - w_{\\text{ref}}` (:math:`b_{\\text{ref}}
        = 0`), and the penalty :math:`\\tfrac{\\alpha}{2} \\sum_k \\lVert w_k \\rVert^2` is
        smallest, for given :math:`b`, at :math:`w_k = b_k - \\bar b` with
        :math:`\\bar b = \\tfrac1K \\sum_k b_k` (so :math:`\\sum_k w_k = 0`).  There

        .. math::

            \\sum_{k=1}^K \\lVert b_k - \\bar b \\rVert^2
            = b^\\top \\big( (I_J - \\tfrac1K \\mathbf 1 \\mathbf 1^\\top) \\otimes I_p \\big) b,

        so :math:`A = \\alpha\\, M \\otimes \\operatorname{diag}(w)` with
        :math:`M = I_J - \\mathbf 1 \\mathbf 1^\\top / K` (positive definite, eigenvalues 1
        and :math:`1/K`).  The fit does not depend on which outcome is the reference.
        """
        w = _term_weights(alpha, weights)
        J = int(J)
        M = np.eye(J) - np.full((J, J), 1.0 / (J + 1))
        return cls(np.kron(M, np.diag(w)))

    def rescaled(self, scale: np.ndarray, J: int) -> QuadraticPenalty:
        """The same penalty in coordinates :math:`\\tilde\\beta = \\beta S` (columns scaled
        by ``scale``, shape ``(p,)``): :math:`\\tilde A = S^{-1} A S^{-1}`."""
        inv = 1.0 / np.tile(np.asarray(scale, dtype=np.float64), int(J))
        return type(self)(self.matrix * inv[:, None] * inv[None, :])

    def value(self, beta: np.ndarray) -> float:
        b = np.asarray(beta, dtype=np.float64).ravel()
        return 0.5 * float(b @ self.matrix @ b)

    def gradient(self, beta: np.ndarray) -> np.ndarray:
        beta = np.asarray(beta, dtype=np.float64)
        return (self.matrix @ beta.ravel()).reshape(beta.shape)

    def hessian(self, beta: np.ndarray) -> np.ndarray:
        return self.matrix

    def __repr__(self) -> str:
        return f"QuadraticPenalty(matrix of shape {self.matrix.shape})"


def _term_weights(alpha: float, weights: np.ndarray) -> np.ndarray:
    alpha = float(alpha)
    if not (math.isfinite(alpha) and alpha >= 0):
        raise ValueError(f"alpha must be finite and nonnegative; got {alpha!r}")
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 1 or not np.all(np.isfinite(w) & (w >= 0)):
        raise ValueError("term weights must be a finite nonnegative vector")
    return alpha * w


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

    def __init__(self, backend, penalty: Penalty | DataPenalty | None = None):
        self.backend = backend
        self.penalty = penalty
        self._data_penalty = isinstance(penalty, DataPenalty)
        # A penalty of the information has no cheap subsample version.
        no_approx = self._data_penalty
        self._approx = None if no_approx else getattr(backend, "approx_information", None)
        self._approx_derivatives = (
            None if no_approx else getattr(backend, "approx_derivatives", None)
        )
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
        hessian = hessian or self._data_penalty
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
        if self._data_penalty:
            pen, grad, hess = self.penalty.terms(beta, d)
            info = d.info if hess is None else d.info + hess
            return Evaluation(d.llf - pen, d.score - grad, info, d.llf, pen)
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
