"""Plots of margins tables (Stata's ``marginsplot``): predictive margins from
``results.get_margins`` and marginal effects at several values from
``results.get_margeff(at={...lists...})``.

Each estimate is a marker with its confidence interval as a capped bar; the series are told
apart by marker and dash style as well as colour, so the plot reads in greyscale, and the
legend states the interval level.  matplotlib is imported when plotting.
"""

from __future__ import annotations

import numpy as np

from ..data.labels import level_label
from ..exceptions import DataError

__all__ = ["plot_margins"]

_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*", "<", ">"]
_DASHES = ["-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 3)), (0, (8, 3))]


def _style(k):
    import matplotlib as mpl

    cmap = mpl.colormaps["tab10"]
    return {
        "marker": _MARKERS[k % len(_MARKERS)],
        "linestyle": _DASHES[k % len(_DASHES)],
        "color": cmap(k % cmap.N),
    }


def _numeric(values) -> bool:
    return all(
        isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool)
        for v in values
    )


def plot_margins(
    margins,
    x: str | None = None,
    alpha: float = 0.05,
    outcomes=None,
    ax=None,
    title: str | None = None,
    labels=None,
    outcome_labels=None,
    short_names: bool = False,
):
    """Plot predictive margins or marginal effects with their confidence intervals.

    Parameters
    ----------
    margins : PredictiveMargins or MarginalEffectsAt
        From ``results.get_margins(...)`` or ``results.get_margeff(at={...lists...})``.
    x : str, optional
        The dimension on the horizontal axis (default: the first one).  Numeric values are
        placed at their values and joined by lines; others (factor levels, groups) at even
        spacing, unjoined.
    alpha : float
        Intervals of level ``1 - alpha`` (stated in the legend).
    outcomes : list, optional
        The outcomes shown (default: all).
    ax : matplotlib Axes, optional
        Draw there (only for a plot with one panel).
    title : str, optional
    labels, outcome_labels, short_names
        Printed names of terms and variables (``{name: label}``) and of outcomes, as in the
        results' tables (:func:`~multilogit.data.labelling.relabel_index`); ``x`` and
        ``outcomes`` may name them either way.

    Returns
    -------
    matplotlib.figure.Figure

    Notes
    -----
    Without other dimensions than ``x`` there is one panel (per term, for effects) with one
    series per outcome; with more (``over`` groups, a second factor), one panel per outcome
    with one series per combination of the other dimensions.
    """
    sf = margins.summary_frame(
        alpha, labels=labels, outcome_labels=outcome_labels, short_names=short_names
    )
    stat = sf.columns[0]
    raw_dims = list(margins.dimensions)
    dims = [str(n) for n in sf.index.names[1:]]
    if x is not None and x in raw_dims:
        x = dims[raw_dims.index(x)]
    if outcomes is not None:
        plain = list(dict.fromkeys(margins.summary_frame(alpha).index.get_level_values(0)))
        printed = list(dict.fromkeys(sf.index.get_level_values(0)))
        outcomes = [printed[plain.index(o)] if o in plain else o for o in outcomes]
    effects = "term" in dims
    if effects:
        dims.remove("term")
    all_outcomes = list(dict.fromkeys(sf.index.get_level_values(0)))
    if outcomes is None:
        outcomes = all_outcomes
    else:
        outcomes = list(outcomes)
        unknown = [o for o in outcomes if o not in all_outcomes]
        if unknown:
            raise DataError(
                f"outcomes: {unknown[0]!r} is not an outcome ({', '.join(map(str, all_outcomes))})"
            )
    frame = sf.reset_index()
    frame.columns = ["outcome"] + list(frame.columns[1:])
    if not dims:  # grand margins: the outcomes along the axis
        frame["(outcome)"] = frame["outcome"]
        dims = ["(outcome)"]
    if x is None:
        x = dims[0]
    if x not in dims:
        raise DataError(f"x: {x!r} is not a dimension of the margins ({', '.join(dims)})")
    others = [d for d in dims if d != x]
    frame = frame[frame["outcome"].isin(outcomes)]
    terms = list(dict.fromkeys(frame["term"])) if effects else [None]
    by_outcome = bool(others) and x != "(outcome)"
    panels = (
        [(o, t) for o in outcomes for t in terms] if by_outcome else [(None, t) for t in terms]
    )

    plt = _pyplot()
    n = len(panels)
    if ax is not None:
        if n != 1:
            raise ValueError(f"ax= takes a plot of one panel; this one has {n}")
        fig, axes = ax.figure, [ax]
    else:
        cols = min(n, 3)
        rows = -(-n // cols)
        fig, grid = plt.subplots(
            rows,
            cols,
            figsize=(4.6 * cols, 3.6 * rows),
            squeeze=False,
            layout="constrained",
            sharey=not effects,
        )
        axes = list(grid.ravel())
        for extra in axes[n:]:
            extra.set_visible(False)
    xs = list(dict.fromkeys(frame[x]))
    numeric = _numeric(xs)
    positions = {v: float(v) for v in xs} if numeric else {v: float(k) for k, v in enumerate(xs)}
    span = (max(positions.values()) - min(positions.values())) if len(xs) > 1 else 1.0
    level = 100.0 * (1.0 - alpha)
    for axis, (outcome, term) in zip(axes, panels, strict=False):
        sub = frame
        if outcome is not None:
            sub = sub[sub["outcome"] == outcome]
        if term is not None:
            sub = sub[sub["term"] == term]
        if by_outcome:
            series = list(dict.fromkeys(map(tuple, sub[others].to_numpy().tolist())))
            key = others
        elif x == "(outcome)":
            series, key = [()], []
        else:
            series, key = [(o,) for o in outcomes], ["outcome"]
        width = 0.25 * span / max(len(xs), 1) if not numeric else 0.012 * span
        for k, s in enumerate(series):
            part = sub
            for name, value in zip(key, s, strict=True):
                part = part[part[name] == value]
            offset = (k - (len(series) - 1) / 2.0) * width
            px = np.array([positions[v] for v in part[x]]) + offset
            est = part[stat].to_numpy()
            err = np.vstack([est - part["lower"].to_numpy(), part["upper"].to_numpy() - est])
            style = _style(k)
            label = ", ".join(
                f"{n}={level_label(v)}" if n != "outcome" else str(v)
                for n, v in zip(key, s, strict=True)
            )
            axis.errorbar(
                px,
                est,
                yerr=err,
                capsize=3,
                markersize=5,
                linewidth=1.3,
                label=label or None,
                marker=style["marker"],
                linestyle=style["linestyle"] if numeric and len(px) > 1 else "none",
                color=style["color"],
            )
        axis.set_xlabel(x if x != "(outcome)" else "outcome")
        if not numeric:
            axis.set_xticks([positions[v] for v in xs], [level_label(v) for v in xs])
        if effects:
            axis.set_ylabel(f"{stat} of {term}")
            axis.axhline(0.0, color="0.6", linewidth=0.8, zorder=0)
        else:
            axis.set_ylabel("Predicted probability")
        heading = []
        if outcome is not None:
            heading.append(f"{margins.results.model.endog_names}={level_label(outcome)}")
        if term is not None:
            heading.append(str(term))
        if heading:
            axis.set_title(", ".join(heading), fontsize="medium")
        legend_title = f"bars: {level:g}% CI"
        if key:
            axis.legend(title=legend_title, fontsize="small", title_fontsize="small")
        else:
            axis.plot([], [], color="none", label=legend_title)
            axis.legend(fontsize="small", handlelength=0)
    if title is None:
        title = "Predictive margins" if not effects else f"Marginal effects ({stat})"
    if ax is None:
        fig.suptitle(title)
    else:
        axes[0].set_title(title if not axes[0].get_title() else axes[0].get_title())
    return fig


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError("plotting needs matplotlib: pip install multilogit[plot]") from exc
    return plt
