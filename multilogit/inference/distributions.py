"""The normal and chi-squared probabilities that Wald and likelihood-ratio inference needs.

``norm.sf``, ``norm.ppf`` and ``chi2.sf`` return what :mod:`scipy.stats` returns, bit for bit:
scipy.stats evaluates them with these same :mod:`scipy.special` functions (``ndtr``,
``ndtri``, ``chdtrc``).  Importing scipy.stats takes longer than the rest of the package and a
fit's p-values need none of it; scipy.special itself is imported at the first call.

The objects mirror the scipy.stats names, so a module can use ``stats.norm.sf(z)`` with
``from . import distributions as stats``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["chi2", "norm"]


def _as_float(x) -> np.ndarray:
    # scipy.stats works on float arrays whatever it is handed (lists, Series, integers).
    return np.asarray(x, dtype=np.result_type(np.asarray(x).dtype, np.float64))


class Normal:
    """The standard normal distribution."""

    @staticmethod
    def sf(x):
        """Upper tail probability :math:`P(Z > x) = \\Phi(-x)`."""
        from scipy.special import ndtr

        return ndtr(-_as_float(x))

    @staticmethod
    def ppf(q):
        """Quantile :math:`\\Phi^{-1}(q)`; NaN outside ``[0, 1]``."""
        from scipy.special import ndtri

        return ndtri(_as_float(q))


class ChiSquared:
    """The chi-squared distributions."""

    @staticmethod
    def sf(x, df):
        """Upper tail probability :math:`P(\\chi^2_{df} > x)`: 1 for ``x <= 0``, 0 for
        ``x = inf``, NaN unless ``df > 0``."""
        from scipy.special import chdtrc

        x = _as_float(x)
        df = _as_float(df)
        # scipy.stats answers outside the support and for invalid df itself, not chdtrc.
        inside = (x > 0) & (x < np.inf)
        out = np.where(inside, chdtrc(df, np.where(inside, x, 1.0)), np.where(x <= 0, 1.0, 0.0))
        out = np.where((df > 0) & ~np.isnan(x), out, np.nan)
        return out[()]


norm = Normal()
chi2 = ChiSquared()
