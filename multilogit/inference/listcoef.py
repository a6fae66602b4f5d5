"""Factor changes in the odds of every pair of outcomes, as Stata's ``listcoef`` (Long and
Freese's SPost13) after ``mlogit``.

For outcomes :math:`a \\ne b` and a regressor :math:`x_k` the log odds of :math:`a` against
:math:`b` change by :math:`b_k = \\beta_{ak} - \\beta_{bk}` per unit of :math:`x_k`
(:math:`\\beta_{\\mathrm{ref}} = 0`), with variance
:math:`V_{ak,ak} + V_{bk,bk} - 2 V_{ak,bk}` from the results' covariance.  The factor change
in the odds is :math:`e^{b_k}` per unit and :math:`e^{b_k s_k}` per standard deviation
:math:`s_k` of :math:`x_k` over the estimation sample (weighted by the likelihood weights,
divisor :math:`\\sum w - 1` as Stata's ``summarize``); the percent changes are
:math:`100 (e^{b_k} - 1)` and :math:`100 (e^{b_k s_k} - 1)`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..exceptions import DataError
from . import distributions as stats

__all__ = ["column_sd", "listcoef"]


def _chunk_moments(X: np.ndarray, w: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    total = float(np.sum(w))
    if total <= 0:
        return 0.0, np.zeros(X.shape[1]), np.zeros(X.shape[1])
    mean = (w @ X) / total
    centred = X - mean
    return total, mean, w @ (centred * centred)


def column_sd(backend) -> np.ndarray:
    """Weighted standard deviation of each design column over the rows of ``backend``.

    Chunks' (weight, mean, sum of squared deviations) are merged pairwise (Chan et al.), so
    the result is accurate for columns with a large mean.
    """
    parts = backend.reduce(
        lambda c: _chunk_moments(np.asarray(c.X, dtype=np.float64), c.weights), frames=False
    )
    total, mean, m2 = 0.0, None, None
    for n_b, mean_b, m2_b in parts:
        if n_b <= 0:
            continue
        if mean is None:
            total, mean, m2 = n_b, mean_b, m2_b
            continue
        delta = mean_b - mean
        both = total + n_b
        m2 = m2 + m2_b + delta * delta * (total * n_b / both)
        mean = mean + delta * (n_b / both)
        total = both
    if mean is None or total <= 1:
        raise DataError("standard deviations need more than one observation of total weight")
    return np.sqrt(m2 / (total - 1.0))


def listcoef(res, pairs: str = "all") -> pd.DataFrame:
    """Factor changes in the odds of outcome pairs for every regressor.

    Parameters
    ----------
    res : MultinomialLogitResults
    pairs : {"all", "reference"}
        ``"all"``: every ordered pair of outcomes :math:`(a, b)`, :math:`a \\ne b`, as
        ``listcoef``; ``"reference"``: each outcome against the reference only.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``(term, outcome, versus)``, with columns ``coef`` (:math:`b_k`),
        ``std_err``, ``z``, ``pvalue``, ``exp_b``, ``exp_b_std``, ``pct``, ``pct_std`` and
        ``sd_x``.  The intercept is left out.
    """
    if pairs not in ("all", "reference"):
        raise ValueError(f"pairs must be 'all' or 'reference'; got {pairs!r}")
    model = res.model
    J, p = model.J, model.k_exog
    params = res.params.to_numpy(dtype=np.float64).T  # (J, p); NaN where aliased
    beta = np.vstack([params, np.zeros((1, p))])
    cov = np.zeros(((J + 1) * p, (J + 1) * p))
    cov[: J * p, : J * p] = res.cov_params().to_numpy(dtype=np.float64)
    labels = [*model.eq_outcomes, model.ref]
    ic = model._intercept_col()
    sd = column_sd(model.backend)
    rows, index = [], []
    for k in range(p):
        if k == ic:
            continue
        for a in range(J + 1):
            for b in range(J + 1):
                if a == b or (pairs == "reference" and b != J):
                    continue
                coef = beta[a, k] - beta[b, k]
                ia, ib = a * p + k, b * p + k
                var = cov[ia, ia] + cov[ib, ib] - 2.0 * cov[ia, ib]
                se = float(np.sqrt(var)) if var >= 0 else np.nan
                z = coef / se if se > 0 else np.nan
                rows.append(
                    (
                        coef,
                        se,
                        z,
                        float(2.0 * stats.norm.sf(abs(z))) if np.isfinite(z) else np.nan,
                        np.exp(coef),
                        np.exp(coef * sd[k]),
                        100.0 * np.expm1(coef),
                        100.0 * np.expm1(coef * sd[k]),
                        sd[k],
                    )
                )
                index.append((model.exog_names[k], labels[a], labels[b]))
    columns = ["coef", "std_err", "z", "pvalue", "exp_b", "exp_b_std", "pct", "pct_std", "sd_x"]
    return pd.DataFrame(
        rows,
        columns=columns,
        index=pd.MultiIndex.from_tuples(index, names=["term", "outcome", "versus"]),
    )
