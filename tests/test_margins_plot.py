"""plot_margins (Stata's marginsplot) rendered with the Agg backend; the tests check what is on
the axes: the plotted points and bars are the table's estimates and intervals, series differ
in marker and dash style (readable in greyscale), the legend states the interval level."""

import io

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.container import ErrorbarContainer  # noqa: E402

import multilogit as ml  # noqa: E402
from multilogit.exceptions import DataError  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def res():
    d = ml.datasets.load("hsbdemo")
    return ml.mnlogit("prog ~ ses + write + read", d, ref="academic").fit()


def _png(fig, path=None) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=40)
    data = buf.getvalue()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
    return data


def _bars(ax):
    return [c for c in ax.containers if isinstance(c, ErrorbarContainer)]


def test_margins_at_values_plot_the_table(res):
    m = res.get_margins(at={"write": [30, 50, 70]})
    fig = ml.plot_margins(m, alpha=0.1)
    _png(fig)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "write" and ax.get_ylabel() == "Predicted probability"
    sf = m.summary_frame(0.1)
    bars = _bars(ax)
    assert len(bars) == 3
    styles = set()
    for outcome, bar in zip(["academic", "general", "vocation"], bars, strict=True):
        line, _, (segments,) = bar.lines
        np.testing.assert_allclose(line.get_ydata(), sf.loc[outcome, "margin"])
        # Numeric x: at the values (dodged by a little), joined by a line.
        np.testing.assert_allclose(line.get_xdata(), [30, 50, 70], atol=1.0)
        lows = [seg[0][1] for seg in segments.get_segments()]
        np.testing.assert_allclose(lows, sf.loc[outcome, "lower"])
        styles.add((line.get_marker(), str(line.get_linestyle())))
    assert len(styles) == 3  # marker and dash differ: greyscale-safe
    legend = ax.get_legend()
    assert legend.get_title().get_text() == "bars: 90% CI"
    assert [t.get_text() for t in legend.get_texts()] == ["academic", "general", "vocation"]


def test_factor_levels_and_groups_give_panels_per_outcome(res):
    m = res.get_margins("ses", at={"write": [40, 60]})
    fig = res.plot_margins("ses", at={"write": [40, 60]}, x="write")
    _png(fig)
    axes = [a for a in fig.axes if a.get_visible()]
    assert [a.get_title() for a in axes] == ["prog=academic", "prog=general", "prog=vocation"]
    texts = [t.get_text() for t in axes[0].get_legend().get_texts()]
    assert texts == ["ses=low", "ses=middle", "ses=high"]
    line = _bars(axes[1])[2].lines[0]
    np.testing.assert_allclose(line.get_ydata(), m.frame().loc["high", "general"])
    # A factor on the axis: its levels as tick labels, points not joined.
    fig = ml.plot_margins(res.get_margins("ses"))
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["low", "middle", "high"]
    assert _bars(ax)[0].lines[0].get_linestyle() == "None"


def test_effects_at_values_one_panel_per_term(res):
    e = res.get_margeff(at={"write": [30, 70]})
    fig = ml.plot_margins(e)
    _png(fig)
    axes = [a for a in fig.axes if a.get_visible()]
    assert [a.get_title() for a in axes] == ["ses[T.middle]", "ses[T.high]", "write", "read"]
    assert axes[3].get_ylabel() == "dy/dx of read"
    line = _bars(axes[3])[1].lines[0]
    np.testing.assert_allclose(
        line.get_ydata(), e.summary_frame().xs("read", level="term").loc["general", "dy/dx"]
    )


def test_grand_margins_and_errors(res):
    fig, ax = plt.subplots()
    out = ml.plot_margins(res.get_margins(), ax=ax)
    assert out is fig and ax.get_xlabel() == "outcome"
    assert "95% CI" in [t.get_text() for t in ax.get_legend().get_texts()][0]
    m = res.get_margins("ses", at={"write": [40, 60]})
    with pytest.raises(DataError, match="'math' is not a dimension"):
        ml.plot_margins(m, x="math")
    with pytest.raises(DataError, match="'posh' is not an outcome"):
        ml.plot_margins(m, outcomes=["posh"])
    with pytest.raises(ValueError, match="one panel"):
        ml.plot_margins(m, ax=ax)
