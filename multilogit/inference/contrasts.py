"""Tests of linear contrasts with statsmodels' return type: ``t_test``, ``f_test`` and
``wald_test(..., scalar=...)``.

Each returns a :class:`statsmodels.stats.contrast.ContrastResults`, built exactly as
statsmodels' ``LikelihoodModelResults`` builds it for ``MNLogit``, so ``summary()``,
``pvalue``, ``fvalue``, ``effect``, ``sd``, ``tvalue``, ``conf_int()`` and the printed form
behave identically.  The :math:`\\chi^2` tests of :mod:`multilogit.inference.hypothesis`
(``results.wald_test(constraints)``) are unchanged; this module is for code written against
statsmodels.

Conventions
-----------
Constraints are given in any of the forms statsmodels accepts for ``MNLogit``:

* strings with our coefficient names ``"outcome:term"`` (``"general:write = 0"``), a bare term
  for that term in every equation (``"write"``), several constraints as a list or separated by
  commas (see :func:`~multilogit.inference.hypothesis.constraint_matrix`);
* strings with statsmodels' ``MNLogit`` names ``"y<outcome>_<term>"`` (``"y1_write = 0"``),
  so code written for statsmodels runs unchanged;
* a tuple ``(R, q)``, or a matrix ``R`` with one column per parameter in the flat
  outcome-major order of ``cov_params()`` (the order of statsmodels' ``params.ravel("F")``).

The statistics use the results' covariance (robust or cluster if the results have it).  The
:math:`z` (or :math:`t`) statistics of ``t_test`` are those of ``results.tvalues`` for a single
coefficient; ``f_test`` divides the Wald statistic by the number of constraints and refers it
to :math:`F(q, n - k)` with ``df_resid = nobs - k_params``, as statsmodels.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import patsy
from statsmodels.stats.contrast import ContrastResults

from ..data.labels import level_label
from ..exceptions import DataError
from .hypothesis import constraint_matrix

__all__ = ["linear_constraints", "t_test", "f_test", "wald_test", "statsmodels_names"]


def statsmodels_names(model) -> list[str]:
    """statsmodels' ``MNLogit`` names of the flat parameters, ``"y<outcome>_<term>"``, with
    integer-valued outcomes written without a decimal point (``y1_write``, not ``y1.0_write``)."""
    return [f"y{level_label(o)}_{t}" for o in model.eq_outcomes for t in model.exog_names]


def _our_names(model) -> list[str]:
    return [f"{o}:{t}" for o in model.eq_outcomes for t in model.exog_names]


def _parse_strings(model, constraints) -> tuple[np.ndarray, np.ndarray]:
    try:
        return constraint_matrix(model, constraints)
    except DataError as ours:
        # Code written for statsmodels names coefficients "y<outcome>_<term>"; accepted when
        # the constraints do not parse with our names.
        texts = [constraints] if isinstance(constraints, str) else list(constraints)
        try:
            lc = patsy.constraint.linear_constraint(texts, statsmodels_names(model))
        except patsy.PatsyError:
            raise DataError(
                f"{ours}; or statsmodels' names ({statsmodels_names(model)[0]!r}, ...)"
            ) from None
        return np.asarray(lc.coefs, dtype=np.float64), lc.constants.ravel().astype(np.float64)


def linear_constraints(results, r_matrix, q_matrix=None) -> tuple[np.ndarray, np.ndarray]:
    """``(R, q)`` of constraints given as strings, an ``(R, q)`` tuple or a matrix ``R``.

    Parameters
    ----------
    results : MultinomialLogitResults
    r_matrix : str, list of str, tuple or array-like
        See the module conventions.
    q_matrix : array-like, optional
        Right-hand side for a matrix ``R`` (default 0).

    Returns
    -------
    R : ndarray, shape (m, J p)
    q : ndarray, shape (m,)
    """
    model = results.model
    if isinstance(r_matrix, tuple) and len(r_matrix) == 2 and not isinstance(r_matrix[0], str):
        if q_matrix is not None:
            raise DataError("q is given twice: in the (R, q) tuple and as q")
        r_matrix, q_matrix = r_matrix
    if isinstance(r_matrix, str) or (
        isinstance(r_matrix, list | tuple)
        and len(r_matrix) > 0
        and all(isinstance(c, str) for c in r_matrix)
    ):
        if q_matrix is not None:
            raise DataError("q is only used with a matrix R; write the value in the constraint")
        return _parse_strings(model, r_matrix)
    if isinstance(r_matrix, pd.DataFrame | pd.Series):
        r_matrix = r_matrix.to_numpy()
    try:
        R = np.atleast_2d(np.asarray(r_matrix, dtype=np.float64))
    except (TypeError, ValueError):
        raise DataError(
            "constraints must be strings, an (R, q) tuple or a numeric matrix R"
        ) from None
    k = model.J * model.k_exog
    if R.ndim != 2 or R.shape[1] != k or R.shape[0] == 0:
        raise DataError(
            f"R must have {k} columns (one per parameter, in the order of cov_params()); "
            f"got shape {R.shape}"
        )
    q = np.zeros(R.shape[0]) if q_matrix is None else np.asarray(q_matrix, dtype=np.float64)
    q = np.atleast_1d(q.squeeze())
    if q.shape != (R.shape[0],):
        raise DataError(f"q must have {R.shape[0]} values (one per row of R); got {q.size}")
    if not (np.all(np.isfinite(R)) and np.all(np.isfinite(q))):
        raise DataError("R and q must be finite")
    return R, q


def _estimable(results, R, cov_p):
    """Coefficients, covariance and the columns the constraints use; an error naming any
    coefficient dropped as collinear, a warning naming any whose estimate diverges."""
    model = results.model
    b = results.params.T.to_numpy().ravel()
    V = results.cov_params().to_numpy() if cov_p is None else np.asarray(cov_p, dtype=float)
    k = b.size
    if V.shape != (k, k):
        raise DataError(f"cov_p must be {k} x {k} (the shape of cov_params()); got {V.shape}")
    used = np.any(R != 0.0, axis=0)
    names = _our_names(model)
    dropped = [n for n, u, v in zip(names, used, np.isnan(b), strict=True) if u and v]
    if dropped:
        raise DataError(
            "the constraints involve coefficient(s) dropped as collinear (aliased): "
            + ", ".join(map(repr, dropped))
            + "; they are not estimable and cannot be tested"
        )
    diverging = [n for n, u, v in zip(names, used, np.diag(V), strict=True) if u and np.isnan(v)]
    if diverging:
        warnings.warn(
            "the constraints involve coefficient(s) affected by separation ("
            + ", ".join(diverging)
            + "), whose estimates diverge: the statistics are NaN",
            UserWarning,
            stacklevel=4,
        )
    # Only the columns used: 0 * NaN (a diverging or dropped coefficient the constraints do not
    # involve) would spoil the products.
    return b[used], V[np.ix_(used, used)], R[:, used]


def t_test(results, r_matrix, cov_p=None, use_t: bool | None = None) -> ContrastResults:
    """Test each linear contrast ``R params = q`` on its own (statsmodels' ``t_test``).

    Parameters
    ----------
    results : MultinomialLogitResults
    r_matrix : str, list of str, (R, q) tuple or array-like
        Constraints; see the module conventions.
    cov_p : array-like, optional
        Covariance of the flat parameters to use instead of ``results.cov_params()``.
    use_t : bool, optional
        Refer the statistics to Student's t with ``df_resid`` degrees of freedom instead of
        the standard normal (the default, as ``results.pvalues``).

    Returns
    -------
    statsmodels.stats.contrast.ContrastResults
        ``effect`` (:math:`R\\hat\\beta`), ``sd``, ``tvalue`` (:math:`(R\\hat\\beta - q) /
        \\mathrm{sd}`), ``pvalue``, ``conf_int()``, ``summary()``.
    """
    R, q = linear_constraints(results, r_matrix)
    b, V, R = _estimable(results, R, cov_p)
    effect = R @ b
    cov = R @ V @ R.T
    # statsmodels keeps a 1 x 1 standard error (and statistic) for a single contrast.
    sd = np.sqrt(np.diag(cov)) if R.shape[0] > 1 else np.sqrt(cov)
    q = q if q.size > 1 else q.squeeze()
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (effect - q) / sd
    if use_t:
        return ContrastResults(effect=effect, t=t, sd=sd, df_denom=results.df_resid)
    return ContrastResults(
        effect=effect, statistic=t, sd=sd, df_denom=results.df_resid, distribution="norm"
    )


def wald_test(
    results,
    r_matrix,
    q_matrix=None,
    cov_p=None,
    invcov=None,
    use_f: bool | None = None,
    df_constraints: int | None = None,
    scalar: bool = True,
) -> ContrastResults:
    """Joint Wald test of ``R params = q`` (statsmodels' ``wald_test``).

    Parameters
    ----------
    results : MultinomialLogitResults
    r_matrix : str, list of str, (R, q) tuple or array-like
        Constraints; see the module conventions.
    q_matrix : array-like, optional
        Right-hand side for a matrix ``R``.
    cov_p : array-like, optional
        Covariance of the flat parameters instead of ``results.cov_params()``.
    invcov : array-like, optional
        The inverse of :math:`R \\hat V R^\\top`, if already known.
    use_f : bool, optional
        An F statistic (the Wald statistic over the number of constraints, on
        :math:`F(m, n - k)`) instead of :math:`\\chi^2_m` (the default).
    df_constraints : int, optional
        Degrees of freedom of the constraints instead of their number.
    scalar : bool
        Statistic as a float (else a 1 x 1 array, as statsmodels).

    Returns
    -------
    statsmodels.stats.contrast.ContrastResults
    """
    R, q = linear_constraints(results, r_matrix, q_matrix)
    if np.linalg.matrix_rank(R) < R.shape[0]:
        raise DataError(
            "the constraints are linearly dependent (redundant or contradictory); drop the "
            "duplicates"
        )
    b, V, R = _estimable(results, R, cov_p)
    m = float(R.shape[0])
    r = (R @ b - q)[:, None]
    if invcov is None:
        cov = R @ V @ R.T
        if np.all(np.isfinite(cov)):
            invcov = np.linalg.pinv(cov)
        else:
            invcov = np.full_like(cov, np.nan)
    else:
        invcov = np.asarray(invcov, dtype=np.float64)
        if invcov.shape != (R.shape[0], R.shape[0]):
            raise DataError(
                f"invcov must be {R.shape[0]} x {R.shape[0]} (one row and column per "
                f"constraint); got {invcov.shape}"
            )
    if df_constraints is not None:
        m = df_constraints
    stat = r.T @ invcov @ r
    if scalar:
        stat = float(np.squeeze(stat))
    if use_f:
        return ContrastResults(F=stat / m, df_denom=results.df_resid, df_num=m)
    return ContrastResults(
        chi2=stat, df_denom=m, statistic=stat, distribution="chi2", distargs=(m,)
    )


def f_test(results, r_matrix, cov_p=None, invcov=None) -> ContrastResults:
    """Joint F test of ``R params = q`` (statsmodels' ``f_test``): :func:`wald_test` with
    ``use_f=True``: the Wald statistic over the number of constraints ``m``, on
    :math:`F(m, \\mathrm{df\\_resid})`."""
    return wald_test(results, r_matrix, cov_p=cov_p, invcov=invcov, use_f=True, scalar=True)
