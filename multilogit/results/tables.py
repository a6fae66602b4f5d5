"""Tables of several fitted models side by side, for papers (Stata's ``esttab``, R's
``modelsummary``).

statsmodels' ``summary_col`` stops with a ``ValueError`` on multinomial results (its own
``MNLogit`` ones included): their parameters are a table, not a column.  :func:`model_table`
(alias :func:`summary_col`, which takes ``summary_col``'s arguments in its order) lays out a
multinomial model as the anchors do:

``layout="long"`` (default)
    Stata's ``esttab`` and ``mlogit`` output, modelsummary's ``shape = response + term ~
    model``: one column per model, one block of rows per outcome (its coefficients against the
    reference outcome), the fit statistics below.  It stays narrow however many outcomes there
    are.
``layout="wide"``
    ``esttab, unstack``, modelsummary's ``shape = term ~ model + response``: one row per term,
    one column per (model, outcome), the fit statistics spanning each model's columns.

Each estimate has, on the rows below it, its standard error, confidence interval, z statistic
or p-value (``statistic=``), and optional significance stars (``stars=True``: Stata's
``* p<0.05, ** p<0.01, *** p<0.001``, stated in the notes).  Models align by the printed names
of their terms and outcomes: a term or outcome a model lacks is left blank, and two names that
``labels``/``outcome_labels`` print alike share a row.  A coefficient is the log relative risk
of its outcome against the model's reference outcome, so outcome blocks of models with
different references are kept apart (``vocation vs academic``, ``vocation vs general``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from ..data.labelling import TermLabels, outcome_labels_map
from ..exceptions import DataError
from . import table_render as render
from .results import MultinomialLogitResults

__all__ = ["model_table", "summary_col", "ModelTable", "STATS", "star_symbols", "DEFAULT_STARS"]

#: Significance levels of ``stars=True``: Stata's (``esttab``) ``*`` p<0.05, ``**`` p<0.01,
#: ``***`` p<0.001.  statsmodels' ``summary_col`` uses 0.1, 0.05 and 0.01.
DEFAULT_STARS = (0.05, 0.01, 0.001)


def _count(x) -> str:
    return "" if x is None else (f"{int(x)}" if float(x).is_integer() else f"{float(x):g}")


#: Fit statistics of the footer: key -> (row label, value of a results object, kind).
STATS: dict[str, tuple[str, Callable, str]] = {
    "nobs": ("N", lambda r: r.nobs, "count"),
    "llf": ("Log-likelihood", lambda r: r.llf, "float"),
    "llnull": ("LL-Null", lambda r: r.llnull, "float"),
    "prsquared": ("Pseudo R-squared", lambda r: r.prsquared, "float"),
    "aic": ("AIC", lambda r: r.aic, "float"),
    "bic": ("BIC", lambda r: r.bic, "float"),
    "df_model": ("Df model", lambda r: r.df_model, "count"),
    "cov_type": ("Covariance", lambda r: r.cov_type, "text"),
    "n_groups": ("Clusters", lambda r: r.n_groups, "count"),
}
_DEFAULT_STATS = ("nobs", "llf", "prsquared", "aic", "bic", "cov_type", "n_groups")
_STATISTICS = ("se", "ci", "z", "p")


def star_symbols(p: float, levels: Sequence[float]) -> str:
    """As many stars as there are ``levels`` strictly above ``p`` (``p < level``, as Stata
    and modelsummary); none for a missing p-value."""
    if p is None or not np.isfinite(p):
        return ""
    return "*" * sum(p < t for t in levels)


def _star_levels(stars) -> tuple[float, ...]:
    if stars is None or stars is False:
        return ()
    levels = DEFAULT_STARS if stars is True else tuple(float(t) for t in stars)
    if not all(0.0 < t < 1.0 for t in levels) or len(set(levels)) != len(levels):
        raise ValueError(
            f"stars: significance levels must be distinct numbers in (0, 1); got {stars!r}"
        )
    return tuple(sorted(levels, reverse=True))


def _formatter(float_format) -> Callable[[float], str]:
    if callable(float_format):
        return float_format
    if isinstance(float_format, int) and not isinstance(float_format, bool):
        return lambda x: f"{x:.{float_format}f}"
    if isinstance(float_format, str):
        if "%" in float_format:
            return lambda x: float_format % x
        if "{" in float_format:
            return float_format.format
        return lambda x: format(x, float_format)
    raise TypeError(
        "float_format must be a printf format ('%.3f'), a format spec ('.3f'), a number of "
        f"decimals or a function; got {float_format!r}"
    )


class _Model:
    """One model's estimates on the scale of the table, by (outcome, term)."""

    def __init__(self, name, res, rrr: bool, alpha: float):
        self.name, self.res = name, res
        model = res.model
        self.terms = [str(t) for t in model.exog_names]
        self.outcomes = list(model.eq_outcomes)
        b, se = res.params, res.bse
        ci = res.conf_int(alpha)
        lo = ci["lower"].to_numpy().reshape(len(self.outcomes), -1).T
        hi = ci["upper"].to_numpy().reshape(len(self.outcomes), -1).T
        est, se_ = b.to_numpy(), se.to_numpy()
        if rrr:
            # exp(b), its delta-method standard error exp(b) se(b), and exp of the limits,
            # as Stata's eform and rrr() do; z and p stay those of b (the test of rrr = 1).
            est, se_, lo, hi = np.exp(est), np.exp(est) * se_, np.exp(lo), np.exp(hi)
        self.values = {
            "estimate": est,
            "se": se_,
            "z": res.tvalues.to_numpy(),
            "p": res.pvalues.to_numpy(),
            "lower": lo,
            "upper": hi,
        }

    def get(self, what: str, outcome, term: str) -> float:
        return float(self.values[what][self.terms.index(term), self.outcomes.index(outcome)])


def _names_of(results, model_names):
    if isinstance(results, Mapping):
        if model_names:
            raise ValueError("pass model names either as the keys of a dict or as model_names")
        names, results = [str(k) for k in results], list(results.values())
    elif isinstance(results, MultinomialLogitResults):
        results, names = [results], None
    else:
        results, names = list(results), None
    if not results:
        raise ValueError("model_table needs at least one results object")
    for r in results:
        if not isinstance(r, MultinomialLogitResults):
            raise TypeError(
                "model_table takes multilogit results (MultinomialLogitResults); got "
                f"{type(r).__name__}"
            )
    if names is None:
        names = (
            [str(n) for n in model_names]
            if model_names
            else [f"({i + 1})" for i in range(len(results))]
        )
    if len(names) != len(results):
        raise ValueError(f"{len(names)} model names for {len(results)} models")
    if len(set(names)) != len(names):
        raise ValueError(f"model names must be distinct; got {names}")
    return results, names


class ModelTable:
    """A table of estimates of one or several models; see :func:`model_table`.

    ``as_text()`` (also ``str``), ``as_html()`` (shown by Jupyter), ``as_latex()`` (one
    booktabs ``tabular``) and ``as_markdown()`` render it; ``to_frame()`` gives the cells as a
    DataFrame of strings.  The object does not change after creation.
    """

    def __init__(self, grid: render.Grid, frame: pd.DataFrame):
        self._grid = grid
        self._frame = frame

    def to_frame(self) -> pd.DataFrame:
        """The table's cells as printed (strings, stars included).

        Rows are indexed by ``(part, outcome, term, statistic)`` in the long layout and by
        ``(part, term, statistic)`` in the wide one, modelsummary's ``data.frame`` output:
        ``part`` is ``"estimates"`` or ``"gof"`` (the fit statistics, whose ``term`` is the
        statistic's name); ``statistic`` is ``"estimate"``, ``"se"``, ``"ci"``, ``"z"`` or
        ``"p"``.  Columns are the models (long) or ``(model, outcome)`` (wide).
        """
        return self._frame.copy()

    @property
    def tables(self) -> list[pd.DataFrame]:
        """``[to_frame()]``, as statsmodels' ``Summary.tables``."""
        return [self.to_frame()]

    @property
    def notes(self) -> list[str]:
        """The notes under the table: what the cells are, the star legend, warnings."""
        return list(self._grid.notes)

    def as_text(self) -> str:
        return render.as_text(self._grid)

    def as_html(self) -> str:
        return render.as_html(self._grid)

    def as_latex(self) -> str:
        """One ``tabular`` environment with booktabs rules (``\\usepackage{booktabs}``)."""
        return render.as_latex(self._grid)

    def as_markdown(self) -> str:
        return render.as_markdown(self._grid)

    def _repr_html_(self) -> str:
        return self.as_html()

    def __str__(self) -> str:
        return self.as_text()

    def __repr__(self) -> str:
        return self.as_text()


def model_table(
    results,
    float_format: str | int | Callable = "%.3f",
    model_names: Sequence[str] | None = None,
    stars: bool | Sequence[float] = False,
    info_dict: Mapping[str, Callable] | None = None,
    regressor_order: Sequence[str] = (),
    drop_omitted: bool = False,
    include_r2: bool = True,
    *,
    layout: str = "long",
    rrr: bool = False,
    exp: bool | None = None,
    statistic: str | Sequence[str] | None = "se",
    alpha: float = 0.05,
    labels: Mapping[str, str] | None = None,
    outcome_labels: Mapping | None = None,
    short_names: bool = False,
    drop: Sequence[str] = (),
    stats: Sequence[str] | None = None,
    title: str | None = None,
    notes: Sequence[str] = (),
) -> ModelTable:
    """Estimates of several multinomial logits side by side.

    The positional arguments are those of statsmodels' ``summary_col``, in its order.

    Parameters
    ----------
    results : results, list of results, or dict
        :class:`~multilogit.MultinomialLogitResults`; a dict's keys name the models.
    float_format : str, int or callable
        Format of the numbers: ``"%.3f"``, ``".3f"``, ``"{:.3f}"``, a number of decimals, or a
        function of a float.
    model_names : sequence of str, optional
        Column headings (default ``(1)``, ``(2)``, ...).
    stars : bool or sequence of float
        Significance stars after each estimate: ``True`` for ``* p<0.05, ** p<0.01,
        *** p<0.001`` (Stata's levels; statsmodels' ``summary_col`` uses 0.1, 0.05, 0.01), or
        the levels, e.g. ``(0.1, 0.05, 0.01)``.  An estimate gets one star per level its p-value
        is strictly below.  The legend is among the notes.
    info_dict : dict, optional
        Further footer rows, ``{label: function of a results object}``.
    regressor_order : sequence of str
        Terms (names or labels) to put first, in this order; the others follow in their order
        of appearance unless ``drop_omitted``.
    drop_omitted : bool
        Show only the terms of ``regressor_order``.
    include_r2 : bool
        Show the pseudo R-squared (McFadden's) row.
    layout : {"long", "wide"}
        ``"long"``: a column per model, a block of rows per outcome.  ``"wide"``: a row per
        term, a column per (model, outcome).
    rrr, exp : bool
        Relative-risk ratios :math:`e^{\\beta}` instead of coefficients, with delta-method
        standard errors :math:`e^{\\beta}\\,\\mathrm{se}(\\beta)` and the exponentiated
        confidence limits; z and p stay those of :math:`\\beta`.  ``exp`` is a synonym.
    statistic : {"se", "ci", "z", "p"}, a sequence of them, or None
        What goes below each estimate: standard error ``(se)``, confidence interval
        ``[lower, upper]`` at level ``1 - alpha``, z statistic ``(z)``, p-value ``(p)``;
        several give one row each; None gives estimates alone.
    alpha : float
        Confidence intervals have coverage ``1 - alpha``.
    labels : dict, optional
        Labels of terms (or of variables, applied inside short names); see
        :class:`~multilogit.data.labelling.TermLabels`.  Unknown keys raise an error listing the
        valid names.  Terms given the same label share a row across models.
    outcome_labels : dict, optional
        Labels of outcome levels.
    short_names : bool
        Print terms by their short names (``ses: middle`` for ``C(ses)[T.middle]``); see
        :func:`~multilogit.data.labelling.short_term_name`.
    drop : sequence of str
        Terms (names or labels) to leave out, e.g. ``["Intercept"]``.
    stats : sequence of str, optional
        Fit statistics in the footer, keys of ``STATS``: ``nobs``, ``llf``, ``llnull``,
        ``prsquared``, ``aic``, ``bic``, ``df_model``, ``cov_type``, ``n_groups``.  Default:
        N, log-likelihood, pseudo R-squared, AIC, BIC, covariance type, and the number of
        clusters when a model has clustered errors.
    title : str, optional
    notes : sequence of str
        Further notes, after the automatic ones.

    Returns
    -------
    ModelTable
    """
    if layout not in ("long", "wide"):
        raise ValueError(f"layout must be 'long' or 'wide'; got {layout!r}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1); got {alpha!r}")
    rrr = bool(rrr or exp)
    statistics = (
        () if statistic is None else (statistic,) if isinstance(statistic, str) else statistic
    )
    bad = [s for s in statistics if s not in _STATISTICS]
    if bad:
        raise ValueError(f"statistic: {bad} not among {', '.join(_STATISTICS)}")
    levels = _star_levels(stars)
    fmt = _formatter(float_format)
    results, names = _names_of(results, model_names)
    models = [_Model(n, r, rrr, alpha) for n, r in zip(names, results, strict=True)]

    term_label = TermLabels([t for m in models for t in m.terms], labels, short=short_names)
    all_outcomes = list(dict.fromkeys(o for r in results for o in r.outcomes))
    aligned = _Aligned(models, term_label, outcome_labels_map(all_outcomes, outcome_labels))
    terms = _select_terms(aligned.terms, term_label, regressor_order, drop_omitted, drop)

    def cells_of(name, block, term) -> dict[str, render.Cell]:
        return _cells(aligned.get(name, block, term), statistics, fmt, levels)

    columns, sections, records = _body(aligned, models, terms, layout, statistics, cells_of)
    spans = [sum(1 for n, _ in columns if n == m.name) for m in models]
    footer_rows = []
    for label, values in _footer(results, stats, include_r2, info_dict, fmt):
        if layout == "long":
            footer_rows.append(render.Row(label, tuple(render.Cell(v) for v in values)))
            records.append((("gof", "", label, ""), list(values)))
        else:
            # One value per model, spanning its outcome columns (repeated in the frame).
            pairs = list(zip(values, spans, strict=True))
            footer_rows.append(
                render.Row(label, tuple(render.Cell(v, span=k) for v, k in pairs if k))
            )
            records.append((("gof", label, ""), [v for v, k in pairs for _ in range(k)]))

    if layout == "long":
        header = (tuple((m.name, 1) for m in models),)
        col_index = pd.Index([m.name for m in models], name="model")
        idx_names = ["part", "outcome", "term", "statistic"]
    else:
        header = (
            tuple((m.name, k) for m, k in zip(models, spans, strict=True) if k),
            tuple((b, 1) for _, b in columns),
        )
        col_index = pd.MultiIndex.from_tuples(columns, names=["model", "outcome"])
        idx_names = ["part", "term", "statistic"]
    frame = pd.DataFrame(
        [v for _, v in records],
        index=pd.MultiIndex.from_tuples([i for i, _ in records], names=idx_names),
        columns=col_index,
    )
    grid = render.Grid(
        ncols=len(columns),
        header=header,
        sections=tuple(sections),
        footer=render.Section(None, tuple(footer_rows)),
        notes=tuple(
            _notes(models, rrr, statistics, alpha, levels, aligned.common_ref) + list(notes)
        ),
        title=title,
    )
    return ModelTable(grid, frame)


class _Aligned:
    """Every model's coefficients keyed by ``(model name, outcome block, printed term)``.

    Terms and blocks keep their order of first appearance across the models.  A block is the
    printed outcome, or ``"outcome vs reference"`` when the models' references differ: a
    coefficient compares its outcome with the model's reference, so only coefficients against
    the same reference share a row.
    """

    def __init__(self, models, term_label, out_label):
        refs = {out_label[m.res.ref] for m in models}
        self.common_ref = next(iter(refs)) if len(refs) == 1 else None
        self._cells: dict[tuple[str, str, str], tuple[_Model, object, str]] = {}
        self.terms: list[str] = []
        self.blocks: list[str] = []
        for m in models:
            printed: dict[str, str] = {}
            for t in m.terms:
                key = term_label(t)
                if key in printed:
                    raise DataError(
                        f"labels: terms {printed[key]!r} and {t!r} of model {m.name} are both "
                        f"printed {key!r}; give them different labels"
                    )
                printed[key] = t
            self.terms += [k for k in printed if k not in self.terms]
            for o in m.outcomes:
                block = out_label[o]
                if self.common_ref is None:
                    block = f"{block} vs {out_label[m.res.ref]}"
                if any((m.name, block, k) in self._cells for k in printed):
                    raise DataError(
                        f"outcome_labels: two outcomes of model {m.name} are both printed "
                        f"{block!r}"
                    )
                if block not in self.blocks:
                    self.blocks.append(block)
                for key, t in printed.items():
                    self._cells[(m.name, block, key)] = (m, o, t)

    def get(self, name, block, term):
        """``(model, outcome, term name)`` of a cell, or None where the model has none."""
        return self._cells.get((name, block, term))

    def has(self, name, block, terms) -> bool:
        return any((name, block, t) in self._cells for t in terms)


def _cells(found, statistics, fmt, levels) -> dict[str, render.Cell]:
    """The estimate's cell and those of its statistics (none where the model lacks it)."""
    if found is None:
        return {}
    m, o, t = found
    est, p = m.get("estimate", o, t), m.get("p", o, t)
    if not np.isfinite(est):
        return {"estimate": render.Cell("(dropped)")}
    out = {"estimate": render.Cell(fmt(est), star_symbols(p, levels))}
    for s in statistics:
        if s == "ci":
            lo, hi = m.get("lower", o, t), m.get("upper", o, t)
            text = f"[{fmt(lo)}, {fmt(hi)}]" if np.isfinite(lo) and np.isfinite(hi) else ""
        else:
            v = m.get(s, o, t)
            text = f"({fmt(v)})" if np.isfinite(v) else "(n/a)"
        out[s] = render.Cell(text)
    return out


def _body(aligned, models, terms, layout, statistics, cells_of):
    """Columns ``(model, block or None)``, the row sections, and the frame's records."""
    if layout == "long":
        columns = [(m.name, None) for m in models]
        sections = [
            (b, [k for k in terms if any(aligned.has(m.name, b, [k]) for m in models)])
            for b in aligned.blocks
        ]
    else:
        columns = [
            (m.name, b) for m in models for b in aligned.blocks if aligned.has(m.name, b, terms)
        ]
        sections = [(None, list(terms))]
    out, records = [], []
    for block, keys in sections:
        rows = []
        for key in keys:
            per_col = [cells_of(name, block or col_block, key) for name, col_block in columns]
            for kind in ("estimate", *statistics):
                cells = tuple(c.get(kind, render.Cell()) for c in per_col)
                if kind != "estimate" and not any(c.text for c in cells):
                    continue
                rows.append(render.Row(key if kind == "estimate" else "", cells))
                index = (
                    ("estimates", block, key, kind)
                    if layout == "long"
                    else ("estimates", key, kind)
                )
                records.append((index, [c.text + c.stars for c in cells]))
        if rows:
            out.append(render.Section(block, tuple(rows)))
    return columns, out, records


#: statsmodels' name, with its arguments in its order.
summary_col = model_table


def _select_terms(keys, term_label, order, drop_omitted, drop):
    """Rows after ``regressor_order``/``drop_omitted``/``drop``, names or labels accepted."""

    def resolve(name, what):
        name = str(name)
        if name in keys:
            return name
        label = term_label(name)
        if label in keys:
            return label
        raise DataError(f"{what}: {name!r} is not a term of the models; terms: {', '.join(keys)}")

    first = [resolve(t, "regressor_order") for t in order]
    dropped = {resolve(t, "drop") for t in drop}
    rest = [] if drop_omitted else [k for k in keys if k not in first]
    return [k for k in dict.fromkeys(first + rest) if k not in dropped]


def _footer(results, stats, include_r2, info_dict, fmt):
    """``(label, [value per model])`` rows of fit statistics."""
    keys = list(_DEFAULT_STATS if stats is None else stats)
    unknown = [k for k in keys if k not in STATS]
    if unknown:
        raise ValueError(f"stats: {unknown} unknown; choose among {', '.join(STATS)}")
    if stats is None and all(r.n_groups is None for r in results):
        keys.remove("n_groups")
    if not include_r2 and "prsquared" in keys:
        keys.remove("prsquared")
    rows = []
    for k in keys:
        label, get, kind = STATS[k]
        values = []
        for r in results:
            v = get(r)
            if kind == "count":
                values.append(_count(v))
            elif kind == "text":
                values.append(str(v))
            else:
                values.append("n/a" if v is None or not math.isfinite(v) else fmt(v))
        rows.append((label, values))
    for label, func in dict(info_dict or {}).items():
        values = []
        for r in results:
            v = func(r)
            if isinstance(v, float | np.floating):
                v = fmt(float(v))
            values.append("" if v is None else str(v))
        rows.append((str(label), values))
    return rows


def _notes(models, rrr, statistics, alpha, levels, common_ref) -> list[str]:
    level = f"{100 * (1 - alpha):g}%"
    against = (
        f"against the reference outcome {common_ref}"
        if common_ref is not None
        else "against the reference outcome named in each heading"
    )
    out = [
        f"Relative-risk ratios exp(b) {against}."
        if rrr
        else f"Coefficients: log relative-risk ratios {against}."
    ]
    said = {
        "se": "standard errors" + (" (delta method: exp(b) se(b))" if rrr else ""),
        "ci": f"{level} confidence intervals" + (" (exp of the limits)" if rrr else ""),
        "z": "z statistics (of b = 0)",
        "p": "p-values (of b = 0)",
    }
    where = {"ci": "in brackets"}
    if len(statistics) == 1:
        (s,) = statistics
        out.append(f"{said[s][0].upper()}{said[s][1:]} {where.get(s, 'in parentheses')}.")
    elif statistics:
        out.append(
            "Below each estimate, in this order: "
            + "; ".join(f"{said[s]} {where.get(s, 'in parentheses')}" for s in statistics)
            + "."
        )
    if levels:
        out.append(", ".join(f"{'*' * (i + 1)} p<{t:g}" for i, t in enumerate(levels)))
    for m in models:
        res = m.res
        if not res.converged:
            out.append(f"{m.name}: the fit did not converge; its estimates are unreliable.")
        if res.method == "firth":
            out.append(f"{m.name}: Firth (mean bias-reduced) estimates.")
        if res.penalty is not None:
            out.append(
                f"{m.name}: penalized estimates; their standard errors are approximate (see its "
                "summary())."
            )
    return out
