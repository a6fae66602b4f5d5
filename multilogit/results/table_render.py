"""Render a table of estimates (:class:`Grid`) as plain text, HTML, LaTeX or Markdown.

The grid is format-free: a header of column labels (a label may span several columns), row
sections (a coefficient block per outcome, or one block of terms), a footer section of fit
statistics (a value may span the columns of its model), and notes.  Each renderer only escapes
and lays out; what the cells say is decided in ``multilogit.results.tables``.

LaTeX output is one ``tabular`` environment with booktabs rules (``\\usepackage{booktabs}``);
significance stars are set as zero-width superscripts, so the table needs nothing else.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

__all__ = ["Cell", "Row", "Section", "Grid", "as_text", "as_html", "as_latex", "as_markdown"]


@dataclass(frozen=True)
class Cell:
    """One cell: its text, the significance stars after it, and how many columns it spans."""

    text: str = ""
    stars: str = ""
    span: int = 1


@dataclass(frozen=True)
class Row:
    label: str
    cells: tuple[Cell, ...]


@dataclass(frozen=True)
class Section:
    """Rows under an optional title (an outcome block's heading)."""

    title: str | None
    rows: tuple[Row, ...]


@dataclass(frozen=True)
class Grid:
    """A table: ``header`` rows of ``(label, span)`` over the ``ncols`` data columns,
    ``sections`` of estimates, a ``footer`` of fit statistics, ``notes`` and a ``title``."""

    ncols: int
    header: tuple[tuple[tuple[str, int], ...], ...]
    sections: tuple[Section, ...]
    footer: Section
    notes: tuple[str, ...]
    title: str | None = None
    stub: str = ""

    @property
    def max_stars(self) -> int:
        return max(
            (len(c.stars) for s in self.sections for r in s.rows for c in r.cells), default=0
        )


# ---------------------------------------------------------------------------------------------
# Text


def _text_widths(grid: Grid, cell_text) -> list[int]:
    widths = [0] * grid.ncols
    for sec in (*grid.sections, grid.footer):
        for row in sec.rows:
            j = 0
            for c in row.cells:
                if c.span == 1:
                    widths[j] = max(widths[j], len(cell_text(c)))
                j += c.span
    gap = 2

    def widen(spans):
        j = 0
        for text, span in spans:
            have = sum(widths[j : j + span]) + gap * (span - 1)
            if len(text) > have:
                widths[j + span - 1] += len(text) - have
            j += span

    for hrow in grid.header:
        widen(hrow)
    for sec in (*grid.sections, grid.footer):
        for row in sec.rows:
            widen([(cell_text(c), c.span) for c in row.cells if c.span > 1])
    return widths


def as_text(grid: Grid) -> str:
    """Fixed-width text: numbers right-aligned, stars padded so the decimal points line up."""
    # A closing parenthesis or bracket takes the place of the first star, so that decimal
    # points of estimates and of the statistics below them line up (as esttab does).
    pad = max(grid.max_stars, 1)

    def cell_text(c: Cell) -> str:
        if c.text.endswith((")", "]")):
            return c.text + " " * (pad - 1)
        return c.text + c.stars.ljust(pad)

    widths = _text_widths(grid, cell_text)
    indent = "  " if any(s.title for s in grid.sections) else ""
    labels = [indent + r.label for s in grid.sections for r in s.rows]
    labels += [r.label for r in grid.footer.rows] + [grid.stub]
    stub_w = max(map(len, labels))
    gap = "  "

    def line(label, parts, align):
        out, j = [], 0
        for text, span in parts:
            w = sum(widths[j : j + span]) + len(gap) * (span - 1)
            # Headings, and fit statistics spanning a model's columns, are centred.
            out.append(text.center(w) if align == "center" or span > 1 else text.rjust(w))
            j += span
        return (label.ljust(stub_w) + gap + gap.join(out)).rstrip()

    body = [line(grid.stub, hrow, "center") for hrow in grid.header]
    total = max(len(b) for b in body) if body else stub_w
    rows_out = []
    for sec in grid.sections:
        if sec.title is not None:
            rows_out.append(sec.title)
        for r in sec.rows:
            rows_out.append(line(indent + r.label, [(cell_text(c), c.span) for c in r.cells], ""))
    foot = [line(r.label, [(cell_text(c), c.span) for c in r.cells], "") for r in grid.footer.rows]
    total = max([total, *map(len, rows_out), *map(len, foot)])
    heavy, light = "=" * total, "-" * total
    lines = []
    if grid.title:
        lines.append(grid.title.center(total).rstrip())
    lines += [heavy, *body, light, *rows_out]
    if foot:
        lines += [light, *foot]
    lines += [heavy, *grid.notes]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# HTML


def _h(text: str) -> str:
    return html.escape(text, quote=True)


def as_html(grid: Grid) -> str:
    """An HTML ``<table>``: header in ``<thead>``, one ``<tbody>`` per outcome block and one
    for the fit statistics, the notes in ``<tfoot>``."""
    n = grid.ncols + 1
    rule = ' style="border-top: 1px solid black"'
    out = ['<table class="multilogit-table" style="border-collapse: collapse">']
    if grid.title:
        out.append(f"<caption>{_h(grid.title)}</caption>")
    out.append("<thead>")
    for i, hrow in enumerate(grid.header):
        style = ' style="border-top: 2px solid black"' if i == 0 else ""
        cells = "".join(
            f'<th colspan="{span}" style="text-align: center">{_h(t)}</th>'
            if span > 1
            else f'<th style="text-align: center">{_h(t)}</th>'
            for t, span in hrow
        )
        stub = _h(grid.stub) if i == len(grid.header) - 1 else ""
        out.append(f'<tr{style}><th style="text-align: left">{stub}</th>{cells}</tr>')
    out.append("</thead>")

    def row_html(r: Row) -> str:
        cells = "".join(
            (f'<td colspan="{c.span}"' if c.span > 1 else "<td")
            + f' style="text-align: center">{_h(c.text)}'
            + (f"<sup>{_h(c.stars)}</sup>" if c.stars else "")
            + "</td>"
            for c in r.cells
        )
        return f'<tr><td style="text-align: left">{_h(r.label)}</td>{cells}</tr>'

    for k, sec in enumerate(grid.sections):
        out.append("<tbody>")
        style = rule if k == 0 else ""
        if sec.title is not None:
            out.append(
                f'<tr{style}><th colspan="{n}" style="text-align: left; font-style: italic">'
                f"{_h(sec.title)}</th></tr>"
            )
        elif style and sec.rows:
            out.append(row_html(sec.rows[0]).replace("<tr>", f"<tr{style}>", 1))
            out.extend(row_html(r) for r in sec.rows[1:])
            out.append("</tbody>")
            continue
        out.extend(row_html(r) for r in sec.rows)
        out.append("</tbody>")
    if grid.footer.rows:
        out.append('<tbody class="fit-statistics">')
        rows = [row_html(r) for r in grid.footer.rows]
        rows[0] = rows[0].replace("<tr>", f"<tr{rule}>", 1)
        out.extend(rows)
        out.append("</tbody>")
    out.append("<tfoot>")
    notes = grid.notes or ("",)
    for i, note in enumerate(notes):
        style = ' style="border-top: 2px solid black"' if i == 0 else ""
        out.append(f'<tr{style}><td colspan="{n}" style="text-align: left">{_h(note)}</td></tr>')
    out.append("</tfoot>")
    out.append("</table>")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# LaTeX

_LATEX = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    # In the default OT1 font encoding "<" and ">" print as inverted punctuation.
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "×": r"$\times$",
}


_STAR_LEGEND = re.compile(r"(?<![\w$])(\*+)(?= p\\textless)")
_MINUS = re.compile(r"(?<![\w.])-(?=\d)")


def latex_escape(text: str) -> str:
    """``text`` with LaTeX's special characters escaped."""
    return "".join(_LATEX.get(ch, ch) for ch in text)


def as_latex(grid: Grid) -> str:
    """One ``tabular`` with booktabs rules; stars as superscripts; notes in its last rows."""
    n = grid.ncols + 1
    out = []
    if grid.title:
        # One tabular environment and nothing around it: the caption belongs to the
        # surrounding table float, so the title is left as a comment.
        out.append("% " + grid.title.replace("\n", " "))
    out += [rf"\begin{{tabular}}{{l{'c' * grid.ncols}}}", r"\toprule"]
    for i, hrow in enumerate(grid.header):
        cells, rules, j = [], [], 2
        for t, span in hrow:
            if span > 1:
                cells.append(rf"\multicolumn{{{span}}}{{c}}{{{latex_escape(t)}}}")
                rules.append(rf"\cmidrule(lr){{{j}-{j + span - 1}}}")
            else:
                cells.append(latex_escape(t))
            j += span
        stub = latex_escape(grid.stub) if i == len(grid.header) - 1 else ""
        out.append(" & ".join([stub, *cells]) + r" \\")
        if rules:
            out.append("".join(rules))
    out.append(r"\midrule")

    def cell(c: Cell) -> str:
        # A minus sign, not a hyphen, before a number.
        text = _MINUS.sub("$-$", latex_escape(c.text))
        # Zero-width stars (as estout's \sym): the number stays centred under its heading.
        text += rf"\rlap{{$^{{{c.stars}}}$}}" if c.stars else ""
        return rf"\multicolumn{{{c.span}}}{{c}}{{{text}}}" if c.span > 1 else text

    indent = r"\quad " if any(s.title for s in grid.sections) else ""
    for sec in grid.sections:
        if sec.title is not None:
            out.append(rf"\multicolumn{{{n}}}{{l}}{{\textit{{{latex_escape(sec.title)}}}}} \\")
        for r in sec.rows:
            label = indent + latex_escape(r.label) if r.label else ""
            out.append(" & ".join([label, *map(cell, r.cells)]) + r" \\")
    if grid.footer.rows:
        out.append(r"\midrule")
        for r in grid.footer.rows:
            out.append(" & ".join([latex_escape(r.label), *map(cell, r.cells)]) + r" \\")
    out.append(r"\bottomrule")
    for note in grid.notes:
        # The star legend with the stars set as in the cells.
        text = _STAR_LEGEND.sub(r"$^{\1}$", latex_escape(note))
        out.append(rf"\multicolumn{{{n}}}{{l}}{{\footnotesize {text}}} \\")
    out.append(r"\end{tabular}")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# Markdown


def _md(text: str) -> str:
    # Pipes end a cell; asterisks and underscores would turn stars and names into emphasis.
    out = text
    for ch in ("\\", "|", "*", "_"):
        out = out.replace(ch, "\\" + ch)
    return out


def as_markdown(grid: Grid) -> str:
    """A pipe table (GitHub / pandoc): a single header row (a spanning label is repeated in
    each of its columns' headers), outcome headings in bold rows, notes below the table."""
    columns = [""] * grid.ncols
    for hrow in grid.header:
        j = 0
        for t, span in hrow:
            for k in range(j, j + span):
                columns[k] = f"{columns[k]} {t}".strip()
            j += span
    lines = []
    if grid.title:
        lines += [f"**{_md(grid.title)}**", ""]
    lines.append("| " + " | ".join([_md(grid.stub), *map(_md, columns)]) + " |")
    lines.append("|:" + "---|" + "---:|" * grid.ncols)

    def cells(r: Row) -> list[str]:
        out = []
        for c in r.cells:
            out.append(_md(c.text + c.stars))
            out.extend([""] * (c.span - 1))
        return out

    for sec in grid.sections:
        if sec.title is not None:
            lines.append("| " + " | ".join([f"**{_md(sec.title)}**", *[""] * grid.ncols]) + " |")
        for r in sec.rows:
            lines.append("| " + " | ".join([_md(r.label), *cells(r)]) + " |")
    for r in grid.footer.rows:
        lines.append("| " + " | ".join([_md(r.label), *cells(r)]) + " |")
    if grid.notes:
        lines.append("")
        lines += [_md(note) + "  " for note in grid.notes[:-1]] + [_md(grid.notes[-1])]
    return "\n".join(lines)
