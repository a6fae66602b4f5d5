"""Tables of several models (model_table / summary_col): every cell against numbers built by
hand from each result's params, bse, conf_int and pvalues, and every output format parsed."""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

import multilogit as ml
from multilogit.exceptions import DataError
from multilogit.results.tables import star_symbols


@pytest.fixture(scope="module")
def hsb():
    return ml.datasets.load("hsbdemo")


@pytest.fixture(scope="module")
def r1(hsb):
    return ml.mnlogit("prog ~ ses + write", hsb, ref="academic").fit()


@pytest.fixture(scope="module")
def r2(hsb):
    # Other terms, clustered errors: rows and footer must align by name.
    res = ml.mnlogit("prog ~ write + math", hsb, ref="academic").fit()
    return res.get_robustcov_results("cluster", groups="cid")


@pytest.fixture(scope="module")
def r3(hsb):
    return ml.mnlogit("prog ~ ses + write", hsb, ref="general").fit()


def _f(x):
    return f"{x:.3f}"


def _stars(p):
    return "*" * sum(int(p < t) for t in (0.05, 0.01, 0.001))


# ---------------------------------------------------------------------------------------------
# Cells


def test_long_layout_cells_from_params_and_bse(r1, r2):
    t = ml.model_table([r1, r2], stars=True)
    frame = t.to_frame()
    assert list(frame.columns) == ["(1)", "(2)"]
    assert frame.index.names == ["part", "outcome", "term", "statistic"]
    est = frame.xs("estimates")
    for col, res in (("(1)", r1), ("(2)", r2)):
        for outcome in ("general", "vocation"):
            for term in res.params.index:
                b = res.params.loc[term, outcome]
                p = res.pvalues.loc[term, outcome]
                se = res.bse.loc[term, outcome]
                assert est.loc[(outcome, term, "estimate"), col] == _f(b) + _stars(p)
                assert est.loc[(outcome, term, "se"), col] == f"({_f(se)})"
    # A term a model lacks is blank, not zero.
    assert est.loc[("general", "math", "estimate"), "(1)"] == ""
    assert est.loc[("general", "ses[T.high]", "se"), "(2)"] == ""
    # Outcome blocks, then terms in order of first appearance across the models.
    terms = list(dict.fromkeys(est.xs("general").index.get_level_values("term")))
    assert terms == ["Intercept", "ses[T.middle]", "ses[T.high]", "write", "math"]
    assert list(dict.fromkeys(est.index.get_level_values("outcome"))) == ["general", "vocation"]


def test_footer_statistics(r1, r2):
    gof = ml.model_table([r1, r2]).to_frame().xs("gof").droplevel([0, 2])
    for col, res in (("(1)", r1), ("(2)", r2)):
        assert gof.loc["N", col] == str(int(res.nobs))
        assert gof.loc["Log-likelihood", col] == _f(res.llf)
        assert gof.loc["Pseudo R-squared", col] == _f(res.prsquared)
        assert gof.loc["AIC", col] == _f(res.aic)
        assert gof.loc["BIC", col] == _f(res.bic)
    assert list(gof.loc["Covariance"]) == ["nonrobust", "cluster"]
    assert list(gof.loc["Clusters"]) == ["", "20"]
    # No clustered model, no Clusters row; include_r2=False drops the pseudo R-squared.
    only = ml.model_table([r1], include_r2=False).to_frame().xs("gof")
    labels = list(only.index.get_level_values("term"))
    assert labels == ["N", "Log-likelihood", "AIC", "BIC", "Covariance"]


def test_rrr_with_confidence_intervals(r1):
    t = ml.model_table(r1, rrr=True, statistic="ci", alpha=0.1, float_format="%.4f")
    est = t.to_frame().xs("estimates")
    ci = r1.conf_int(0.1)
    for (outcome, term), (lo, hi) in ci.iterrows():
        rrr = np.exp(r1.params.loc[term, outcome])
        assert est.loc[(outcome, term, "estimate"), "(1)"] == f"{rrr:.4f}"
        assert est.loc[(outcome, term, "ci"), "(1)"] == f"[{np.exp(lo):.4f}, {np.exp(hi):.4f}]"
    assert "Relative-risk ratios" in t.notes[0]
    assert t.notes[1] == "90% confidence intervals (exp of the limits) in brackets."
    # exp= is a synonym; the delta-method SE is exp(b) se(b).
    se = ml.model_table(r1, exp=True).to_frame().xs("estimates")
    b, s = r1.params.loc["write", "vocation"], r1.bse.loc["write", "vocation"]
    assert se.loc[("vocation", "write", "se"), "(1)"] == f"({_f(np.exp(b) * s)})"


def test_several_statistics_z_and_p(r1):
    est = ml.model_table(r1, statistic=["z", "p"]).to_frame().xs("estimates")
    z, p = r1.tvalues.loc["write", "general"], r1.pvalues.loc["write", "general"]
    assert est.loc[("general", "write", "z"), "(1)"] == f"({_f(z)})"
    assert est.loc[("general", "write", "p"), "(1)"] == f"({_f(p)})"
    no_stat = ml.model_table(r1, statistic=None).to_frame().xs("estimates")
    assert set(no_stat.index.get_level_values("statistic")) == {"estimate"}


def test_wide_layout(r1, r2):
    t = ml.model_table({"A": r1, "B": r2}, layout="wide")
    frame = t.to_frame()
    assert list(frame.columns) == [
        ("A", "general"),
        ("A", "vocation"),
        ("B", "general"),
        ("B", "vocation"),
    ]
    est = frame.xs("estimates")
    b = r2.params.loc["write", "vocation"]
    assert est.loc[("write", "estimate"), ("B", "vocation")] == _f(b)
    assert est.loc[("math", "estimate"), ("A", "general")] == ""
    gof = frame.xs("gof").droplevel(1)
    # One value per model, repeated in each of its outcome columns.
    assert list(gof.loc["N"]) == ["200"] * 4
    tex = t.as_latex()
    assert r"\multicolumn{2}{c}{A} & \multicolumn{2}{c}{B}" in tex
    assert r"\cmidrule(lr){2-3}\cmidrule(lr){4-5}" in tex
    assert r"N & \multicolumn{2}{c}{200} & \multicolumn{2}{c}{200} \\" in tex


# ---------------------------------------------------------------------------------------------
# Alignment


def test_different_references_are_kept_apart(r1, r3):
    est = ml.model_table([r1, r3]).to_frame().xs("estimates")
    blocks = list(dict.fromkeys(est.index.get_level_values("outcome")))
    assert blocks == [
        "general vs academic",
        "vocation vs academic",
        "academic vs general",
        "vocation vs general",
    ]
    # vocation vs general of model 2 is its own coefficient, blank for model 1.
    row = est.loc[("vocation vs general", "write", "estimate")]
    assert row["(1)"] == "" and row["(2)"] == _f(r3.params.loc["write", "vocation"])
    assert "named in each heading" in ml.model_table([r1, r3]).notes[0]


def test_labels_merge_rows_across_models(hsb, r1):
    other = ml.mnlogit("prog ~ ses + np.log(write)", hsb, ref="academic").fit()
    t = ml.model_table(
        [r1, other],
        labels={"write": "Writing", "np.log(write)": "Writing", "ses": "SES"},
        outcome_labels={"vocation": "Vocational"},
    )
    est = t.to_frame().xs("estimates")
    row = est.loc[("Vocational", "Writing", "estimate")]
    assert row["(1)"] == _f(r1.params.loc["write", "vocation"])
    assert row["(2)"] == _f(other.params.loc["np.log(write)", "vocation"])
    # A variable's label names it inside the terms of its levels.
    assert ("general", "SES: middle", "estimate") in est.index


def test_regressor_order_drop_and_short_names(r1, r2):
    t = ml.model_table(
        [r1, r2],
        regressor_order=["write", "ses: high"],
        drop=["Intercept"],
        short_names=True,
    )
    general = t.to_frame().xs(("estimates", "general"))
    terms = list(dict.fromkeys(general.index.get_level_values(0)))
    assert terms == ["write", "ses: high", "ses: middle", "math"]
    kept = ml.model_table([r1, r2], regressor_order=["math"], drop_omitted=True).to_frame()
    assert set(kept.xs("estimates").index.get_level_values("term")) == {"math"}


def test_statsmodels_positional_arguments(r1, r2):
    """summary_col(results, float_format, model_names, stars, info_dict, regressor_order)."""
    t = ml.summary_col(
        [r1, r2], "%.2f", ["A", "B"], True, {"Outcomes": lambda r: str(len(r.outcomes))}
    )
    frame = t.to_frame()
    assert list(frame.columns) == ["A", "B"]
    b, p = r1.params.loc["write", "general"], r1.pvalues.loc["write", "general"]
    assert frame.loc[("estimates", "general", "write", "estimate"), "A"] == f"{b:.2f}{_stars(p)}"
    assert list(frame.loc[("gof", "", "Outcomes", "")]) == ["3", "3"]
    assert t.tables[0].equals(frame)


def test_dropped_coefficients_and_model_notes(hsb):
    d = hsb.assign(w2=hsb["write"] * 2)
    aliased = ml.mnlogit("prog ~ write + w2", d, ref="academic").fit(drop_collinear=True)
    with pytest.warns(ml.ConvergenceWarning):
        short = ml.mnlogit("prog ~ write", hsb, ref="academic").fit(maxiter=1)
    firth = ml.mnlogit("prog ~ write", hsb, ref="academic").fit(method="firth")
    t = ml.model_table([aliased, short, firth])
    est = t.to_frame().xs("estimates")
    assert est.loc[("general", "w2", "estimate"), "(1)"] == "(dropped)"
    assert ("general", "w2", "se") not in est.index  # no statistic for a dropped coefficient
    assert "(2): the fit did not converge; its estimates are unreliable." in t.notes
    assert "(3): Firth (mean bias-reduced) estimates." in t.notes
    assert not any(n.startswith("(1)") for n in t.notes)


# ---------------------------------------------------------------------------------------------
# Stars


def test_star_boundaries():
    levels = (0.05, 0.01, 0.001)
    assert star_symbols(0.05, levels) == ""
    assert star_symbols(np.nextafter(0.05, 0), levels) == "*"
    assert star_symbols(0.01, levels) == "*"
    assert star_symbols(np.nextafter(0.01, 0), levels) == "**"
    assert star_symbols(0.001, levels) == "**"
    assert star_symbols(np.nextafter(0.001, 0), levels) == "***"
    assert star_symbols(np.nan, levels) == ""


def test_stars_at_a_model_p_value(r1):
    """A level equal to a p-value gives that estimate no star; just above, one."""
    p = float(r1.pvalues.loc["ses[T.middle]", "general"])
    cell = ("estimates", "general", "ses[T.middle]", "estimate")
    at = ml.model_table(r1, stars=[p]).to_frame().loc[cell, "(1)"]
    above = ml.model_table(r1, stars=[np.nextafter(p, 1)]).to_frame().loc[cell, "(1)"]
    assert not at.endswith("*") and above.endswith("*") and not above.endswith("**")
    t = ml.model_table(r1, stars=(0.1, 0.05, 0.01))
    assert "* p<0.1, ** p<0.05, *** p<0.01" in t.notes


# ---------------------------------------------------------------------------------------------
# Output formats


class _Rows(HTMLParser):
    def __init__(self):
        super().__init__()
        self.stack, self.rows, self.row, self.cell = [], [], None, None
        self.captions = []

    def handle_starttag(self, tag, attrs):
        self.stack.append(tag)
        if tag == "tr":
            self.row = []
        elif tag in ("td", "th"):
            self.cell = [int(dict(attrs).get("colspan", 1)), ""]

    def handle_endtag(self, tag):
        assert self.stack.pop() == tag, f"</{tag}> closes another element"
        if tag in ("td", "th"):
            self.row.append(tuple(self.cell))
        elif tag == "tr":
            self.rows.append(self.row)

    def handle_data(self, data):
        if self.cell is not None and self.stack and self.stack[-1] in ("td", "th", "sup"):
            self.cell[1] += data


def test_html_parses_and_matches_the_frame(r1, r2):
    t = ml.model_table([r1, r2], stars=True, title="Table 1", labels={"write": "write <&>"})
    parser = _Rows()
    parser.feed(t.as_html())
    assert parser.stack == []
    assert all(sum(span for span, _ in row) == 3 for row in parser.rows)
    texts = [[text for _, text in row] for row in parser.rows]
    assert texts[0] == ["", "(1)", "(2)"]
    frame = t.to_frame()
    est = frame.loc[("estimates", "vocation", "write <&>", "estimate")]
    assert ["write <&>", *est] in texts
    assert ["general"] in texts  # outcome heading spanning the row
    assert ["* p<0.05, ** p<0.01, *** p<0.001"] in texts
    assert "<caption>Table 1</caption>" in t.as_html() and t._repr_html_() == t.as_html()


def _latex_cells(line: str) -> int:
    """Columns a LaTeX row covers (``\\multicolumn{n}`` counts n)."""
    cells = re.split(r"(?<!\\)&", line.removesuffix(r"\\").strip())
    return sum(
        int(m.group(1)) if (m := re.match(r"\s*\\multicolumn\{(\d+)\}", c)) else 1 for c in cells
    )


def test_latex_is_one_booktabs_tabular(r1, r2):
    t = ml.model_table(
        [r1, r2], stars=True, labels={"write": "write_score & 100% #1 ~ {x} $"}, title="T"
    )
    tex = t.as_latex()
    lines = tex.splitlines()
    assert tex.count(r"\begin{tabular}") == 1 and tex.count(r"\end{tabular}") == 1
    assert lines[1] == r"\begin{tabular}{lcc}" and lines[-1] == r"\end{tabular}"
    assert [ln for ln in lines if ln.endswith("rule")] == [
        r"\toprule",
        r"\midrule",
        r"\midrule",
        r"\bottomrule",
    ]
    rows = [ln for ln in lines[2:-1] if ln.endswith(r"\\")]
    assert rows and all(_latex_cells(ln) == 3 for ln in rows)
    body = "\n".join(lines[1:])
    assert body.count("{") == body.count("}")
    label = r"write\_score \& 100\% \#1 \textasciitilde{} \{x\} \$"
    b, p = r1.params.loc["write", "general"], r1.pvalues.loc["write", "general"]
    number = _f(b).replace("-", "$-$") + (rf"\rlap{{$^{{{_stars(p)}}}$}}" if _stars(p) else "")
    assert rf"\quad {label} & {number} & " in tex
    # "<" would print as an inverted exclamation mark; stars as in the cells.
    assert r"$^{*}$ p\textless{}0.05, $^{**}$ p\textless{}0.01" in tex
    assert r"\multicolumn{3}{l}{\textit{general}} \\" in tex


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")
def test_latex_compiles(hsb, r1, r2, tmp_path):
    inter = ml.mnlogit("prog ~ female:write + ses", hsb, ref="academic").fit()
    tables = [
        ml.model_table([r1, r2, inter], stars=True, short_names=True, title="Long"),
        ml.model_table(
            [r1, r2],
            layout="wide",
            rrr=True,
            statistic=["se", "ci"],
            labels={"write": "a_b & 50%"},
        ),
    ]
    doc = "\\documentclass{article}\\usepackage{booktabs}\\begin{document}\n"
    doc += "\n\n".join(t.as_latex() for t in tables) + "\n\\end{document}\n"
    (tmp_path / "t.tex").write_text(doc)
    run = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "t.tex"],
        cwd=tmp_path,
        capture_output=True,
        timeout=60,
    )
    log = run.stdout.decode(errors="replace")
    assert run.returncode == 0, log[-2000:]
    assert "Missing character" not in (tmp_path / "t.log").read_text(errors="replace")


def _md_cells(line: str) -> list[str]:
    return [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]


def test_markdown_pipe_table(r1, r2):
    t = ml.model_table([r1, r2], stars=True, labels={"write": "a|b_c"})
    lines = t.as_markdown().splitlines()
    table = [ln for ln in lines if ln.startswith("|")]
    assert all(len(_md_cells(ln)) == 3 for ln in table)
    assert _md_cells(table[1]) == [":---", "---:", "---:"]
    assert _md_cells(table[2]) == ["**general**", "", ""]
    b, p = r1.params.loc["write", "general"], r1.pvalues.loc["write", "general"]
    row = next(ln for ln in table if ln.startswith(r"| a\|b\_c"))
    assert _md_cells(row)[1] == _f(b) + r"\*" * len(_stars(p))
    assert lines[-1] == r"\* p<0.05, \*\* p<0.01, \*\*\* p<0.001"


def test_markdown_as_a_markdown_parser_reads_it(r1, r2):
    """Rendered by a CommonMark parser with tables: the cells come back as printed, stars
    as text rather than emphasis."""
    markdown_it = pytest.importorskip("markdown_it")
    t = ml.model_table([r1, r2], stars=True, labels={"write": "a|b_c*"}, layout="wide")
    parser = _Rows()
    parser.feed(markdown_it.MarkdownIt("commonmark").enable("table").render(t.as_markdown()))
    cells = [[text for _, text in row] for row in parser.rows]
    frame = t.to_frame()
    assert cells[0] == ["", *(f"{m} {o}" for m, o in frame.columns)]
    assert ["a|b_c*", *frame.loc[("estimates", "a|b_c*", "estimate")]] in cells
    assert len({len(row) for row in cells}) == 1


def test_text_columns_line_up(r1, r2):
    text = ml.model_table([r1, r2], stars=True).as_text()
    lines = text.splitlines()
    assert lines[0] == "=" * len(lines[0]) and lines[0] in lines[1:]
    rows = [ln for ln in lines if ln.startswith("  ") and ln.strip()]
    # Decimal points of a column line up, stars padded to a common width: past the labels,
    # the points of all rows sit at two positions, one per model.
    start = lines[1].index("(1)") - 8
    points = {m.start() for ln in rows for m in re.finditer(r"\.", ln[start:])}
    assert len(points) == 2
    assert str(ml.model_table([r1, r2], stars=True)) == text
    titled = ml.model_table([r1, r2], title="Table 2: programme choice").as_text().splitlines()
    assert titled[0].strip() == "Table 2: programme choice" and set(titled[1]) == {"="}


# ---------------------------------------------------------------------------------------------
# Errors


def test_errors(r1, r2, hsb):
    with pytest.raises(DataError, match=r"'wirte' is not a term.*valid terms: Intercept"):
        ml.model_table([r1, r2], labels={"wirte": "W"})
    with pytest.raises(DataError, match=r"outcome_labels: 'vocational' not an outcome.*academic"):
        ml.model_table([r1], outcome_labels={"vocational": "V"})
    with pytest.raises(DataError, match="both printed 'X'"):
        ml.model_table([r1], labels={"write": "X", "ses[T.high]": "X"})
    with pytest.raises(DataError, match="two outcomes of model \\(1\\) are both printed 'G'"):
        ml.model_table([r1], outcome_labels={"general": "G", "vocation": "G"})
    with pytest.raises(DataError, match="regressor_order: 'maths' is not a term"):
        ml.model_table([r1, r2], regressor_order=["maths"])
    with pytest.raises(ValueError, match="layout must be"):
        ml.model_table(r1, layout="tall")
    with pytest.raises(ValueError, match="statistic"):
        ml.model_table(r1, statistic="t")
    with pytest.raises(ValueError, match="stats:.*choose among"):
        ml.model_table(r1, stats=["rsquared"])
    with pytest.raises(ValueError, match="stars"):
        ml.model_table(r1, stars=[0.05, 5])
    with pytest.raises(ValueError, match="distinct"):
        ml.model_table([r1, r2], model_names=["A", "A"])
    with pytest.raises(ValueError, match="either as the keys of a dict or as model_names"):
        ml.model_table({"A": r1}, model_names=["B"])
    with pytest.raises(ValueError, match="1 model names for 2 models"):
        ml.model_table([r1, r2], model_names=["A"])
    with pytest.raises(TypeError, match="float_format"):
        ml.model_table(r1, float_format=[3])
    with pytest.raises(TypeError, match="multilogit results.*DataFrame"):
        ml.model_table([r1, pd.DataFrame()])
