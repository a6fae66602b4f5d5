"""A table of margins (predictive margins or marginal effects at several values) with
delta-method inference, contrasts between its rows and Wald tests of their equality.

Conventions
-----------
A table holds :math:`m`, a flat vector of estimates ordered outcome-major: every row of the
first outcome (in level order, the reference included), then the next; within an outcome, the
rows in the order of the table's other index levels (its *dimensions*: the levels of a factor,
the values of ``at``, the ``over`` groups, terms).  With :math:`G = \\partial m / \\partial
\\beta` (flat parameters, outcome-major) and :math:`V` the results' covariance,

.. math::

    \\operatorname{Var}(m) = G V G^\\top,

and a contrast :math:`C m` has covariance :math:`C G V G^\\top C^\\top`.  A test that the
margins are equal along one dimension is the Wald statistic
:math:`d^\\top \\operatorname{Var}(d)^{+} d` of the differences :math:`d` from the first level,
with as many degrees of freedom as the rank of :math:`\\operatorname{Var}(d)`: across all
outcomes at once the margins of the K outcomes sum to one, so one outcome's differences are
minus the sum of the others' and the rank is :math:`(K - 1)(L - 1)` for L levels.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from ..data.labelling import relabel_index
from ..data.labels import level_label
from ..exceptions import DataError
from . import distributions as stats

__all__ = ["MarginsTable"]

PAIRS = ("reference", "all", "adjacent")


def _wald(d: np.ndarray, cov: np.ndarray) -> tuple[float, int]:
    """:math:`d^\\top C^{+} d` and the rank of ``cov`` (eigenvalues above a relative
    tolerance)."""
    if not len(d) or not np.all(np.isfinite(cov)) or not np.all(np.isfinite(d)):
        return np.nan, 0
    vals, vecs = np.linalg.eigh(0.5 * (cov + cov.T))
    tol = max(vals.max(initial=0.0), 0.0) * len(d) * np.finfo(float).eps * 100
    keep = vals > tol
    if not keep.any():
        return np.nan, 0
    proj = vecs[:, keep].T @ d
    return float(proj @ (proj / vals[keep])), int(keep.sum())


def wald_table(stat: str, est: np.ndarray, se: np.ndarray, alpha: float, index) -> pd.DataFrame:
    """Estimates with their standard errors, z, two-sided p-values against zero and Wald
    intervals of level ``1 - alpha``: the long table of every margins and effects result."""
    q = _quantile(alpha)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = est / se
    return pd.DataFrame(
        {
            stat: est,
            "std err": se,
            "z": z,
            "P>|z|": 2.0 * stats.norm.sf(np.abs(z)),
            "lower": est - q * se,
            "upper": est + q * se,
        },
        index=index,
    )


class MarginsTable:
    """Estimates indexed by ``(outcome, dimension...)`` with delta-method inference.

    Parameters
    ----------
    results : MultinomialLogitResults
    estimates : ndarray
        Flat, outcome-major (see the module conventions).
    jacobian : ndarray, shape (len(estimates), k_params)
        Derivatives of the estimates with respect to the flat parameters.
    index : pandas.MultiIndex or Index
        Row labels of the flat estimates; its first level is ``outcome``.
    stat : str
        The name of the estimate column (``"margin"``, ``"dy/dx"``, ...).
    """

    def __init__(self, results, estimates, jacobian, index, stat: str = "margin"):
        self.results = results
        self.stat = stat
        self.jacobian = np.asarray(jacobian)
        self._index = index
        est = np.array(estimates, dtype=np.float64)
        cov = self.jacobian @ results._delta_cov @ self.jacobian.T
        cov = 0.5 * (cov + cov.T)
        aliased = results._nan_params
        if aliased is not None and aliased.any():
            # A margin that moves only with dropped (aliased) coefficients is not identified.
            G = self.jacobian
            omitted = ~np.any(G[:, ~aliased] != 0.0, axis=1) & np.any(G[:, aliased] != 0.0, axis=1)
            est[omitted] = np.nan
            cov[omitted, :] = np.nan
            cov[:, omitted] = np.nan
        self._est = est
        self._cov = cov
        self._se = np.sqrt(np.clip(np.diag(cov), 0.0, None))

    # -----------------------------------------------------------------------------------------
    # The table

    @property
    def dimensions(self) -> list[str]:
        """The names of the index levels after ``outcome``."""
        return [str(n) for n in self._index.names[1:]]

    def cov_params(self) -> pd.DataFrame:
        """Delta-method covariance of the flat estimates, indexed like :meth:`summary_frame`."""
        return pd.DataFrame(self._cov, index=self._index, columns=self._index)

    def summary_frame(
        self, alpha: float = 0.05, labels=None, outcome_labels=None, short_names=False
    ) -> pd.DataFrame:
        """Long table indexed by ``(outcome, dimension...)``, outcome-major.

        Columns: the estimate (``margin``, ``dy/dx``, ...), ``std err``, ``z``, ``P>|z|``
        (against zero, as Stata prints), ``lower``, ``upper`` (Wald intervals of level
        ``1 - alpha``).  ``labels`` (``{term or variable: label}``), ``outcome_labels`` and
        ``short_names`` print the index as the results' tables do
        (:func:`~multilogit.data.labelling.relabel_index`).
        """
        index = self._labelled(labels, outcome_labels, short_names)
        return wald_table(self.stat, self._est, self._se, alpha, index)

    def _labelled(self, labels, outcome_labels, short_names):
        model = self.results.model
        return relabel_index(
            self._index, model.exog_names, model.outcomes, labels, outcome_labels, short_names
        )

    def conf_int(self, alpha: float = 0.05) -> pd.DataFrame:
        """Wald intervals indexed like :meth:`summary_frame`, columns lower and upper."""
        return self.summary_frame(alpha)[["lower", "upper"]]

    def frame(self) -> pd.DataFrame:
        """The estimates in wide form: rows the dimensions, columns the outcomes."""
        outcomes = list(dict.fromkeys(self._index.get_level_values(0)))
        values = self._est.reshape(len(outcomes), -1).T
        if not self.dimensions:
            return pd.DataFrame(values, index=[self.stat], columns=outcomes)
        rows = self._index[: values.shape[0]].droplevel(0)
        return pd.DataFrame(values, index=rows, columns=pd.Index(outcomes, name="outcome"))

    title = "Margins"

    def _header(self) -> list:
        """Extra ``(label, [value])`` rows of the summary's left column."""
        return []

    def summary(self, alpha: float = 0.05, labels=None, outcome_labels=None, short_names=False):
        """statsmodels ``Summary`` (``str()``, ``as_html()``, ``as_latex()``): one block per
        outcome, a row per combination of the dimensions; labels as :meth:`summary_frame`."""
        from statsmodels.iolib.summary import Summary, summary_params, table_extend

        res = self.results
        model = res.model
        smry = Summary()
        left = [("Dep. Variable:", [str(model.endog_names)])] + self._header()
        right = [
            ("Reference outcome:", [level_label(res.ref)]),
            ("Covariance Type:", [res.cov_type]),
            ("No. Observations:", [f"{res.nobs:g}"]),
        ]
        smry.add_table_2cols(res, gleft=left, gright=right, title=f"MultinomialLogit {self.title}")
        sf = self.summary_frame(alpha, labels, outcome_labels, short_names)
        outcomes = list(dict.fromkeys(sf.index.get_level_values(0)))
        dims = [str(n) for n in sf.index.names[1:]]
        per = len(sf) // len(outcomes)
        blocks = []
        for k, outcome in enumerate(outcomes):
            part = sf.iloc[k * per : (k + 1) * per]
            names = []
            for label in part.index:
                rest = label[1:] if isinstance(label, tuple) else ()
                names.append(
                    ", ".join(
                        level_label(v) if d == "term" else f"{d}={level_label(v)}"
                        for d, v in zip(dims, rest, strict=True)
                    )
                    or self.stat
                )
            cols = part.to_numpy()
            tbl = summary_params(
                (res, cols[:, 0], cols[:, 1], cols[:, 2], cols[:, 3], cols[:, 4:6]),
                xname=names,
                alpha=alpha,
                use_t=False,
                title=f"{model.endog_names}={level_label(outcome)}",
            )
            tbl[0][1].data = self.stat  # the estimate's name instead of "coef"
            blocks.append(tbl)
        smry.tables.append(table_extend(blocks, keep_headers=True))
        smry.add_extra_txt(
            ["Standard errors by the delta method; P>|z| tests the estimate against zero."]
        )
        return smry

    def __repr__(self) -> str:
        return str(self.summary())

    def _repr_html_(self) -> str:
        return self.summary().as_html()

    # -----------------------------------------------------------------------------------------
    # Contrasts and tests

    def _along(self, variable):
        """The dimension to compare along (the first by default), its position among the
        index levels, and the groups of flat positions that differ only in it."""
        dims = self.dimensions
        if not dims:
            raise DataError("the margins have no dimension to compare (no levels or at-values)")
        if variable is None:
            variable = dims[0]
        if variable not in dims:
            raise DataError(
                f"{variable!r} is not a dimension of the margins ({', '.join(map(repr, dims))})"
            )
        pos = 1 + dims.index(variable)
        keys = {}
        for i, label in enumerate(self._index):
            label = label if isinstance(label, tuple) else (label,)
            rest = label[:pos] + label[pos + 1 :]
            keys.setdefault(rest, []).append(i)
        return variable, pos, keys

    def contrasts(
        self, pairs: str = "reference", variable: str | None = None, alpha: float = 0.05
    ) -> pd.DataFrame:
        """Differences between the margins at the levels (or at-values) of one dimension, for
        every outcome and every combination of the other dimensions.

        Parameters
        ----------
        pairs : {"reference", "all", "adjacent"}
            ``"reference"``: each level minus the first (Stata ``margins r.x``);
            ``"all"``: every pair, later minus earlier (Stata ``pwcompare``, marginaleffects
            ``avg_comparisons``); ``"adjacent"``: each level minus the one before.
        variable : str, optional
            The dimension compared (default: the first).
        alpha : float
            Intervals of level ``1 - alpha``.

        Returns
        -------
        DataFrame
            Indexed by ``(outcome, other dimensions..., contrast)`` with the contrast labelled
            ``"b - a"``; columns ``contrast``, ``std err``, ``z``, ``P>|z|``, ``lower``,
            ``upper``.  Standard errors by the delta method (the joint covariance of the
            margins, so the two margins' correlation counts).
        """
        if pairs not in PAIRS:
            raise ValueError(f"pairs must be one of {', '.join(map(repr, PAIRS))}; got {pairs!r}")
        variable, pos, groups = self._along(variable)
        rows, labels = [], []
        for rest, members in groups.items():
            values = [self._label(i)[pos] for i in members]
            if pairs == "reference":
                pp = [(0, j) for j in range(1, len(members))]
            elif pairs == "adjacent":
                pp = [(j - 1, j) for j in range(1, len(members))]
            else:
                pp = list(itertools.combinations(range(len(members)), 2))
            for a, b in pp:
                c = np.zeros(len(self._est))
                c[members[b]], c[members[a]] = 1.0, -1.0
                rows.append(c)
                text = f"{level_label(values[b])} - {level_label(values[a])}"
                labels.append(rest[:pos] + (text,) + rest[pos:])
        if not rows:
            raise DataError(f"{variable!r} has a single level: there is nothing to contrast")
        C = np.array(rows)
        est = C @ np.nan_to_num(self._est, nan=0.0)
        est[np.abs(C) @ np.isnan(self._est) > 0] = np.nan
        se = np.sqrt(np.clip(np.diag(C @ self._cov @ C.T), 0.0, None))
        names = list(self._index.names)
        names[pos] = f"{variable} (contrast)"
        index = pd.MultiIndex.from_tuples(labels, names=names)
        return wald_table("contrast", est, se, alpha, index)

    def test_equal(self, variable: str | None = None) -> pd.DataFrame:
        """Wald tests that the margins are equal at every level of one dimension.

        One test per outcome and per combination of the other dimensions, and one across all
        outcomes at once (outcome ``"all"``; see the module conventions for its degrees of
        freedom).  This is Stata's ``margins x, contrast`` (or ``test`` after ``margins x``).

        Returns
        -------
        DataFrame
            Indexed by ``(outcome, other dimensions...)``; columns ``chi2``, ``df``,
            ``P>chi2``.
        """
        _, pos, groups = self._along(variable)
        outcomes = list(dict.fromkeys(self._index.get_level_values(0)))
        rows = {}
        joint: dict = {}
        for rest, members in groups.items():
            C = np.zeros((len(members) - 1, len(self._est)))
            for j in range(1, len(members)):
                C[j - 1, members[j]], C[j - 1, members[0]] = 1.0, -1.0
            rows[rest] = C
            joint.setdefault(rest[1:], []).append(C)
        # Per combination of the other dimensions (first-seen order): each outcome, then all.
        labels, tests = [], []
        for others, Cs in joint.items():
            for outcome in outcomes:
                rest = (outcome,) + others
                if rest in rows:
                    labels.append(rest)
                    tests.append(self._test(rows[rest]))
            labels.append(("all",) + others)
            tests.append(self._test(np.vstack(Cs)))
        names = [n for k, n in enumerate(self._index.names) if k != pos]
        if len(names) == 1:
            index = pd.Index([lab[0] for lab in labels], name=names[0])
        else:
            index = pd.MultiIndex.from_tuples(labels, names=names)
        chi2 = np.array([t[0] for t in tests])
        df = np.array([t[1] for t in tests])
        with np.errstate(invalid="ignore"):
            p = np.where(df > 0, stats.chi2.sf(chi2, np.maximum(df, 1)), np.nan)
        return pd.DataFrame({"chi2": chi2, "df": df, "P>chi2": p}, index=index)

    def _test(self, C):
        d = C @ self._est
        return _wald(d, C @ self._cov @ C.T)

    def _label(self, i) -> tuple:
        label = self._index[i]
        return label if isinstance(label, tuple) else (label,)


def _quantile(alpha: float) -> float:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1); got {alpha!r}")
    return float(stats.norm.ppf(1.0 - alpha / 2.0))
