"""Plots of a fitted multinomial logit: predicted probabilities, coefficients, decision regions.

matplotlib is imported inside each function, so the package works without it
(``pip install multilogit[plot]`` installs it).  Every function draws on ``ax`` when given,
else on a new figure, and returns the matplotlib ``Figure``.

Covariates that are not plotted are held at typical values: numeric variables at their
(weighted) sample means, categorical variables at their most frequent level, unless ``at``
fixes them (``{variable: value}``; column names for array models).  For a model whose rows
its backend holds (Dask data), the typical values and the ranges of the covariates come from
one reduction over the rows (:mod:`multilogit.inference.typical`), never from the rows
gathered here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..data.labelling import TermLabels, outcome_labels_map
from ..exceptions import DataError
from ..inference import typical
from ..inference.margins import (
    design_means,
    estimation_frame,
    formula_variables,
    row_weights,
)

__all__ = ["plot_predicted", "plot_coefficients", "plot_decision_regions"]


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError("plotting needs matplotlib: pip install multilogit[plot]") from exc
    return plt


def _figure_ax(ax, figsize=(7.0, 4.5)):
    plt = _pyplot()
    if ax is None:
        # Constrained layout keeps long term names and two-line titles inside the figure.
        fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    else:
        fig = ax.figure
    return fig, ax


def _colors(K):
    import matplotlib as mpl

    cmap = mpl.colormaps["tab10" if K <= 10 else "tab20"]
    return [cmap(k % cmap.N) for k in range(K)]


# ---------------------------------------------------------------------------------------------
# Typical values


class _Covariates:
    """The model's covariates, their typical values, and a builder of new data for predict."""

    def __init__(self, results, at):
        model = results.model
        self.model = model
        self.formula = model.design.design_info is not None
        at = dict(at or {})
        self.frame = None
        self.ranges = None
        if self.formula:
            self.variables = {
                v.name: v for v in formula_variables(model, model.source_columns, False, False)
            }
            typical = (
                self._frame_typical(model) if model.is_in_memory else self._reduced_typical(model)
            )
            unknown = [k for k in at if k not in self.variables]
            if unknown:
                raise DataError(
                    f"at: {', '.join(map(repr, unknown))} not a variable of the formula "
                    f"({', '.join(self.variables)})"
                )
        else:
            names = list(model.exog_names)
            self.variables = {n: None for n in names}
            typical = dict(zip(names, design_means(model), strict=True))
            unknown = [k for k in at if k not in names]
            if unknown:
                raise DataError(
                    f"at: {', '.join(map(repr, unknown))} not a column of exog "
                    f"({', '.join(names)})"
                )
        typical.update(at)
        self.typical = typical

    def _frame_typical(self, model) -> dict:
        """Typical values read off the estimation rows in memory."""
        w = row_weights(model)
        self.frame = estimation_frame(model)
        out = {}
        for name, var in self.variables.items():
            col = self.frame[name]
            if var.kind == "categorical":
                counts = (
                    pd.Series(w, index=range(len(w)))
                    .groupby(pd.Categorical(col, categories=list(var.levels)).codes)
                    .sum()
                )
                out[name] = var.levels[int(counts.idxmax())]
            else:
                out[name] = float(w @ pd.to_numeric(col).to_numpy(dtype=np.float64))
        return out

    def _reduced_typical(self, model) -> dict:
        """Typical values and ranges of rows a backend holds elsewhere: one reduction over
        them (weighted sums, level counts, minima and maxima), the rows never gathered."""
        cats = [(n, v.levels) for n, v in self.variables.items() if v.kind == "categorical"]
        numeric = [n for n, v in self.variables.items() if v.kind != "categorical"]
        summary = typical.moments(model.backend, typical.Columns(numeric, cats))
        found = dict(zip(numeric, (float(m) for m in summary.means), strict=True))
        for (name, levels), counts in zip(cats, summary.counts, strict=True):
            # The first of equally frequent levels, as idxmax over the levels in order.
            found[name] = levels[int(np.argmax(counts))]
        out = {name: found[name] for name in self.variables}  # in the formula's order
        self.ranges = {
            n: (float(a), float(b))
            for n, a, b in zip(numeric, summary.lo, summary.hi, strict=True)
        }
        return out

    def is_categorical(self, name) -> bool:
        var = self.variables.get(name)
        return var is not None and var.kind == "categorical"

    def levels(self, name):
        return list(self.variables[name].levels)

    def check(self, name, what="term"):
        if name not in self.variables:
            kind = "variable of the formula" if self.formula else "column of exog"
            raise DataError(
                f"{what} {name!r} is not a {kind} ({', '.join(map(str, self.variables))})"
            )

    def values(self, name) -> np.ndarray:
        """Observed values of a numeric variable on the estimation sample (rows in memory)."""
        if not self.model.is_in_memory:
            raise DataError(
                f"drawing every observation of {name!r} needs the estimation rows in this "
                "process; the model's rows are held by its backend (pass show_data=False)"
            )
        if self.formula:
            return pd.to_numeric(self.frame[name]).to_numpy(dtype=np.float64)
        c = list(self.variables).index(name)
        return np.concatenate(self.model.backend.reduce(lambda chunk: chunk.X[:, c]))

    def range(self, name) -> tuple[float, float]:
        """Smallest and largest value of a numeric variable on the estimation sample."""
        if not self.formula:
            lo, hi = self.model.backend.column_range()
            c = list(self.variables).index(name)
            return float(lo[c]), float(hi[c])
        if self.ranges is not None:
            return self.ranges[name]
        v = self.values(name)
        return float(np.min(v)), float(np.max(v))

    def data(self, n, **columns):
        """``n`` rows at the typical values, with ``columns`` (arrays or scalars) replaced."""
        vals = dict(self.typical)
        vals.update(columns)
        if not self.formula:
            return np.column_stack(
                [np.broadcast_to(np.asarray(vals[c], dtype=float), (n,)) for c in self.variables]
            )
        out = {}
        for name in self.variables:
            v = vals[name]
            if self.is_categorical(name):
                arr = np.broadcast_to(np.asarray(v, dtype=object), (n,))
                out[name] = pd.Categorical(arr, categories=self.levels(name))
            else:
                out[name] = np.broadcast_to(np.asarray(v, dtype=float), (n,)).copy()
        return pd.DataFrame(out)


def _labellers(results, labels, outcome_labels, short_names, cov=None):
    """How terms, variables and outcomes are printed; the keys of ``labels`` are checked
    against the model's terms and (with ``cov``) the variables a plot can put on an axis."""
    variables = [] if cov is None else [str(v) for v in cov.variables]
    terms = TermLabels(results.model.exog_names, labels, short=short_names, variables=variables)
    return terms, outcome_labels_map(results.outcomes, outcome_labels)


def _at_text(cov, skip, terms):
    parts = []
    for name, v in cov.typical.items():
        if name in skip or (not cov.formula and name in ("const", "Intercept")):
            continue
        lo, hi = cov.model.backend.column_range()
        c = list(cov.variables).index(name) if not cov.formula else None
        if c is not None and lo[c] == 1 and hi[c] == 1:
            continue
        label = terms.variable(name)
        parts.append(f"{label}={v:.3g}" if isinstance(v, float) else f"{label}={v}")
    return ", ".join(parts)


# ---------------------------------------------------------------------------------------------
# Predicted probabilities


def plot_predicted(
    results,
    term: str,
    at: dict | None = None,
    kind: str = "line",
    alpha: float = 0.05,
    n_points: int = 100,
    ci: bool = True,
    ax=None,
    labels: dict | None = None,
    outcome_labels: dict | None = None,
    short_names: bool = True,
):
    """Predicted probability of each outcome over the range of one covariate.

    Parameters
    ----------
    results : MultinomialLogitResults
    term : str
        The covariate on the x axis: a data column of the formula (numeric or categorical), or a
        column of an array model's exog.
    at : dict, optional
        Values of other covariates (default: means / most frequent levels).
    kind : {"line", "stacked"}
        ``"line"``: one curve per outcome with a ``1 - alpha`` band (delta method, logit-scale
        intervals); for a categorical term, points with error bars.  ``"stacked"``: stacked
        areas (stacked bars for a categorical term) that add up to one; no intervals.
    alpha : float
        Intervals have coverage ``1 - alpha``.
    n_points : int
        Grid points for a numeric term (from its sample minimum to its maximum).
    ci : bool
        Draw the intervals (``kind="line"``).
    ax : matplotlib Axes, optional
    labels : dict, optional
        Labels of variables and terms (``{"write": "Writing score"}``); see
        :class:`~multilogit.data.labelling.TermLabels`.  An unknown key is an error listing the
        valid names.
    outcome_labels : dict, optional
        Labels of the outcomes in the legend (``{"vocation": "Vocational"}``).
    short_names : bool
        Print design terms by their short names (``ses: middle`` for ``C(ses)[T.middle]``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    if kind not in ("line", "stacked"):
        raise ValueError(f"kind must be 'line' or 'stacked'; got {kind!r}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1); got {alpha!r}")
    if int(n_points) < 2:
        raise ValueError(f"n_points must be at least 2; got {n_points!r}")
    cov = _Covariates(results, at)
    cov.check(term)
    terms, out_label = _labellers(results, labels, outcome_labels, short_names, cov)
    outcomes = list(results.outcomes)
    colors = _colors(len(outcomes))
    fig, ax = _figure_ax(ax)
    if cov.is_categorical(term):
        grid = cov.levels(term)
        xs = np.arange(len(grid), dtype=float)
    else:
        lo, hi = cov.range(term)
        grid = np.linspace(lo, hi, int(n_points))
        xs = grid
    pred = results.get_prediction(
        cov.data(
            len(grid),
            **{term: np.asarray(grid, dtype=object) if cov.is_categorical(term) else grid},
        )
    )
    P = pred.predicted.to_numpy()
    lo, hi = (d.to_numpy() for d in pred.conf_int(alpha))
    name = results.model.endog_names
    if cov.is_categorical(term):
        if kind == "line":
            width = 0.6 / len(outcomes)
            for k, outcome in enumerate(outcomes):
                off = (k - (len(outcomes) - 1) / 2) * width
                yerr = np.vstack([P[:, k] - lo[:, k], hi[:, k] - P[:, k]]) if ci else None
                ax.errorbar(
                    xs + off,
                    P[:, k],
                    yerr=yerr,
                    fmt="o",
                    color=colors[k],
                    label=out_label[outcome],
                    capsize=3,
                )
        else:
            bottom = np.zeros(len(grid))
            for k, outcome in enumerate(outcomes):
                ax.bar(
                    xs,
                    P[:, k],
                    bottom=bottom,
                    color=colors[k],
                    label=out_label[outcome],
                    width=0.6,
                )
                bottom += P[:, k]
        ax.set_xticks(xs)
        ax.set_xticklabels([str(g) for g in grid])
    elif kind == "line":
        for k, outcome in enumerate(outcomes):
            ax.plot(xs, P[:, k], color=colors[k], label=out_label[outcome])
            if ci:
                ax.fill_between(xs, lo[:, k], hi[:, k], color=colors[k], alpha=0.2, linewidth=0)
    else:
        ax.stackplot(xs, P.T, colors=colors, labels=[out_label[o] for o in outcomes])
        ax.set_xlim(xs[0], xs[-1])
    ax.set_ylim(0.0, 1.0)
    ax.set_xlabel(terms.variable(term))
    ax.set_ylabel(f"Pr({name})")
    where = _at_text(cov, {term}, terms)
    ax.set_title(f"Predicted probabilities of {name}" + (f"\n(at {where})" if where else ""))
    ax.legend(title=str(name), loc="best")
    return fig


# ---------------------------------------------------------------------------------------------
# Coefficients


def plot_coefficients(
    results,
    rrr: bool = False,
    alpha: float = 0.05,
    include_intercept: bool = False,
    ax=None,
    labels: dict | None = None,
    outcome_labels: dict | None = None,
    short_names: bool = True,
):
    """Forest plot: each term's coefficient (or relative-risk ratio) per outcome, with CIs.

    Parameters
    ----------
    results : MultinomialLogitResults
    rrr : bool
        Plot :math:`e^\\beta` (relative-risk ratios against the reference outcome) on a log axis
        instead of the coefficients (log RRRs).
    alpha : float
        Intervals have coverage ``1 - alpha`` (Wald, from ``results.conf_int``).
    include_intercept : bool
        Also show the intercept.
    ax : matplotlib Axes, optional
    labels : dict, optional
        Labels of variables and terms (``{"write": "Writing score"}``); see
        :class:`~multilogit.data.labelling.TermLabels`.  An unknown key is an error listing the
        valid names.
    outcome_labels : dict, optional
        Labels of the outcomes in the legend (``{"vocation": "Vocational"}``).
    short_names : bool
        Print design terms by their short names (``ses: middle`` for ``C(ses)[T.middle]``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    model = results.model
    term_label, out_label = _labellers(results, labels, outcome_labels, short_names)
    terms = [t for t in model.exog_names if include_intercept or t not in ("Intercept", "const")]
    if not terms:
        raise DataError("no terms to plot besides the intercept; pass include_intercept=True")
    ci = results.conf_int(alpha)
    outcomes = list(model.eq_outcomes)
    colors = _colors(len(model.outcomes))
    eq_colors = [colors[list(model.outcomes).index(o)] for o in outcomes]
    fig, ax = _figure_ax(ax, figsize=(7.0, 1.5 + 0.45 * len(terms) * max(len(outcomes), 2) / 2))
    ys = np.arange(len(terms))[::-1].astype(float)
    step = 0.6 / len(outcomes)
    for j, outcome in enumerate(outcomes):
        est = results.params.loc[terms, outcome].to_numpy()
        lo = ci.loc[outcome].loc[terms, "lower"].to_numpy()
        hi = ci.loc[outcome].loc[terms, "upper"].to_numpy()
        if rrr:
            est, lo, hi = np.exp(est), np.exp(lo), np.exp(hi)
        off = ((len(outcomes) - 1) / 2 - j) * step
        ax.errorbar(
            est,
            ys + off,
            xerr=np.vstack([est - lo, hi - est]),
            fmt="o",
            color=eq_colors[j],
            capsize=3,
            label=out_label[outcome],
        )
    ax.axvline(1.0 if rrr else 0.0, color="0.4", linestyle=":", linewidth=1)
    if rrr:
        from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

        ax.set_xscale("log")
        # Ticks at 1, 2, 5 x 10^k in plain numbers: RRRs usually span only a decade or two.
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_yticks(ys)
    ax.set_yticklabels([term_label(t) for t in terms])
    level = f"{100 * (1 - alpha):g}%"
    ref = out_label[results.ref]
    ax.set_xlabel(
        f"Relative-risk ratio vs {ref} ({level} CI)"
        if rrr
        else f"Coefficient: log relative risk vs {ref} ({level} CI)"
    )
    ax.set_title(f"Multinomial logit of {model.endog_names} (reference: {ref})")
    ax.legend(title=str(model.endog_names), loc="best")
    return fig


# ---------------------------------------------------------------------------------------------
# Decision regions


def plot_decision_regions(
    results,
    x: str,
    y: str,
    at: dict | None = None,
    grid_points: int = 200,
    show_data: bool = True,
    ax=None,
    labels: dict | None = None,
    outcome_labels: dict | None = None,
    short_names: bool = True,
):
    """Where each outcome is the most probable, over two covariates, with the data points.

    The plane spanned by ``x`` and ``y`` (other covariates at typical values, or ``at``) is
    coloured by the most probable outcome; the :math:`K(K-1)/2` pairwise boundaries
    :math:`P_k = P_l`, i.e. :math:`\\eta_k = \\eta_l`, are drawn as dashed lines (those that
    cross the plotted window), and the observations as points coloured by their outcome.

    Parameters
    ----------
    results : MultinomialLogitResults
    x, y : str
        Two numeric covariates (formula data columns, or array-model column names).
    at : dict, optional
        Values of the other covariates.
    grid_points : int
        Resolution of the grid in each direction.
    show_data : bool
        Draw the observations (a model whose rows its backend holds, on Dask data or streamed
        from Parquet, draws none: pass ``False``).
    ax : matplotlib Axes, optional
    labels : dict, optional
        Labels of variables and terms (``{"write": "Writing score"}``); see
        :class:`~multilogit.data.labelling.TermLabels`.  An unknown key is an error listing the
        valid names.
    outcome_labels : dict, optional
        Labels of the outcomes in the legend (``{"vocation": "Vocational"}``).
    short_names : bool
        Print design terms by their short names (``ses: middle`` for ``C(ses)[T.middle]``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.colors import ListedColormap
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    if x == y:
        raise ValueError("x and y must be two different covariates")
    if int(grid_points) < 2:
        raise ValueError(f"grid_points must be at least 2; got {grid_points!r}")
    cov = _Covariates(results, at)
    for name, what in ((x, "x"), (y, "y")):
        cov.check(name, what)
        if cov.is_categorical(name):
            raise DataError(f"{what}={name!r} is categorical; decision regions need numeric axes")
    terms, out_label = _labellers(results, labels, outcome_labels, short_names, cov)
    if show_data:
        # Before drawing anything: the observations of a model on big data are not here.
        vx, vy = cov.values(x), cov.values(y)
    (x0, x1), (y0, y1) = cov.range(x), cov.range(y)
    pad_x = 0.05 * ((x1 - x0) or 1.0)
    pad_y = 0.05 * ((y1 - y0) or 1.0)
    gx = np.linspace(x0 - pad_x, x1 + pad_x, int(grid_points))
    gy = np.linspace(y0 - pad_y, y1 + pad_y, int(grid_points))
    xx, yy = np.meshgrid(gx, gy)
    new = cov.data(xx.size, **{x: xx.ravel(), y: yy.ravel()})
    # Log-odds against the reference for every outcome (the reference's is 0).
    eta = results.predict(new, which="linear").to_numpy()
    K = eta.shape[1]
    outcomes = list(results.outcomes)
    colors = _colors(K)
    best = np.argmax(eta, axis=1).reshape(xx.shape)
    fig, ax = _figure_ax(ax)
    ax.contourf(
        xx, yy, best, levels=np.arange(K + 1) - 0.5, cmap=ListedColormap(colors), alpha=0.25
    )
    handles = [
        Patch(facecolor=colors[k], alpha=0.5, label=out_label[o]) for k, o in enumerate(outcomes)
    ]
    boundaries = []
    for k in range(K):
        for m in range(k + 1, K):
            diff = (eta[:, k] - eta[:, m]).reshape(xx.shape)
            if not (diff.min() < 0.0 < diff.max()):
                continue  # this boundary lies outside the window
            cs = ax.contour(
                xx, yy, diff, levels=[0.0], colors=["0.2"], linestyles="--", linewidths=1
            )
            # Tag each boundary so callers (and tests) can find it among the artists.
            cs.set_gid(f"boundary: {outcomes[k]} = {outcomes[m]}")
            boundaries.append((outcomes[k], outcomes[m]))
    if boundaries:
        handles.append(Line2D([], [], color="0.2", linestyle="--", label="P(k) = P(l) boundaries"))
    if show_data:
        codes = results.model.level_codes
        for k, outcome in enumerate(outcomes):
            sel = codes == k
            ax.scatter(
                vx[sel],
                vy[sel],
                s=14,
                color=colors[k],
                edgecolors="black",
                linewidths=0.4,
                label=f"{out_label[outcome]} (observed)",
            )
    ax.set_xlim(gx[0], gx[-1])
    ax.set_ylim(gy[0], gy[-1])
    ax.set_xlabel(terms.variable(x))
    ax.set_ylabel(terms.variable(y))
    where = _at_text(cov, {x, y}, terms)
    name = results.model.endog_names
    ax.set_title(f"Most probable {name}" + (f"\n(at {where})" if where else ""))
    ax.legend(handles=handles, title=str(name), loc="best", fontsize="small")
    return fig
