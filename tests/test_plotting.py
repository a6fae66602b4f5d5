"""Plots rendered with the Agg backend; the tests check what is on the axes."""

import io

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.collections import PathCollection, PolyCollection  # noqa: E402
from matplotlib.container import ErrorbarContainer  # noqa: E402

import multilogit as ml  # noqa: E402
from multilogit.exceptions import DataError  # noqa: E402

OUTCOMES = ["academic", "general", "vocation"]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def fres():
    d = ml.datasets.load("hsbdemo")
    return ml.mnlogit("prog ~ C(ses) + write + I(write**2) + math", d).fit()


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=40)
    data = buf.getvalue()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
    return data


def _legend(ax):
    return [t.get_text() for t in ax.get_legend().get_texts()]


def test_plot_predicted_lines_with_bands(fres):
    fig = fres.plot_predicted("write", n_points=40)
    _png(fig)
    ax = fig.axes[0]
    assert len(ax.lines) == 3
    bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(bands) == 3
    assert _legend(ax) == OUTCOMES
    assert ax.get_legend().get_title().get_text() == "prog"
    assert ax.get_xlabel() == "write" and ax.get_ylabel() == "Pr(prog)"
    # Other covariates at their typical values: the modal ses level and the mean of math.
    assert "ses=middle" in ax.get_title() and "math=52.6" in ax.get_title()
    d = ml.datasets.load("hsbdemo")
    x = ax.lines[0].get_xdata()
    np.testing.assert_allclose(x[[0, -1]], [d.write.min(), d.write.max()])
    new = d.iloc[:40].assign(write=x, ses="middle", math=d.math.mean())
    pred = fres.get_prediction(new)
    for k, line in enumerate(ax.lines):
        np.testing.assert_allclose(line.get_ydata(), pred.predicted.iloc[:, k], rtol=1e-12)
    lo, hi = pred.conf_int()
    verts = bands[0].get_paths()[0].vertices
    assert np.isclose(verts[:, 1].min(), lo.iloc[:, 0].min())
    assert np.isclose(verts[:, 1].max(), hi.iloc[:, 0].max())


def test_plot_predicted_without_bands_and_at(fres):
    fig = fres.plot_predicted("write", at={"ses": "high", "math": 60}, ci=False)
    ax = fig.axes[0]
    assert len(ax.lines) == 3 and len(ax.collections) == 0
    assert "ses=high" in ax.get_title() and "math=60" in ax.get_title()


def test_plot_predicted_stacked(fres):
    fig = fres.plot_predicted("write", kind="stacked", n_points=30)
    _png(fig)
    ax = fig.axes[0]
    areas = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(areas) == 3 and len(ax.lines) == 0
    assert _legend(ax) == OUTCOMES
    top = areas[-1].get_paths()[0].vertices[:, 1]
    np.testing.assert_allclose(top.max(), 1.0, rtol=1e-12)  # the stack adds up to one


def test_plot_predicted_categorical_term(fres):
    fig = fres.plot_predicted("ses")
    _png(fig)
    ax = fig.axes[0]
    bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert len(bars) == 3
    assert [t.get_text() for t in ax.get_xticklabels()] == ["low", "middle", "high"]
    d = ml.datasets.load("hsbdemo")
    new = d.iloc[:3].assign(
        ses=["low", "middle", "high"], write=d.write.mean(), math=d.math.mean()
    )
    p = fres.predict(new).to_numpy()
    for k, c in enumerate(bars):
        np.testing.assert_allclose(c.lines[0].get_ydata(), p[:, k], rtol=1e-12)
    fig = fres.plot_predicted("ses", kind="stacked")
    ax = fig.axes[0]
    assert len(ax.patches) == 9
    heights = np.array([r.get_height() for r in ax.patches]).reshape(3, 3)
    np.testing.assert_allclose(heights.sum(axis=0), 1.0, rtol=1e-12)


def test_plot_predicted_array_model_on_given_axes(rng):
    from tests.conftest import simulate

    X, y = simulate(rng, n=300, p=3, K=4)
    res = ml.MultinomialLogit(y, X).fit()
    fig0, ax0 = plt.subplots()
    fig = res.plot_predicted("x2", ax=ax0)
    assert fig is fig0 and len(ax0.lines) == 4
    assert _legend(ax0) == ["c0", "c1", "c2", "c3"]
    assert "x3=" in ax0.get_title() and "x1" not in ax0.get_title()  # constant not listed


def test_plot_coefficients(fres):
    fig = fres.plot_coefficients()
    _png(fig)
    ax = fig.axes[0]
    bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert len(bars) == 2
    labels = [t.get_text() for t in ax.get_yticklabels()]
    # Plots print the short names of patsy's terms by default.
    assert labels == ["ses: middle", "ses: high", "write", "write ** 2", "math"]
    assert _legend(ax) == ["general", "vocation"]
    assert "reference: academic" in ax.get_title()
    np.testing.assert_allclose(bars[0].lines[0].get_xdata(), fres.params["general"].iloc[1:])
    ref_lines = [ln for ln in ax.lines if np.allclose(ln.get_xdata(), 0.0)]
    assert len(ref_lines) == 1
    # Error bars span the Wald interval.
    seg = bars[1].lines[2][0].get_segments()[0]
    ci = fres.conf_int().loc[("vocation", "C(ses)[T.middle]")]
    np.testing.assert_allclose(seg[:, 0], ci.to_numpy())


def test_plot_coefficients_rrr_with_intercept(fres):
    fig = fres.plot_coefficients(rrr=True, include_intercept=True, alpha=0.1)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert len(ax.get_yticklabels()) == 6
    assert "Relative-risk ratio" in ax.get_xlabel() and "90% CI" in ax.get_xlabel()
    bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    np.testing.assert_allclose(bars[0].lines[0].get_xdata(), np.exp(fres.params["general"]))
    assert any(np.allclose(ln.get_xdata(), 1.0) for ln in ax.lines)


def test_plot_decision_regions(fres):
    d = ml.datasets.load("hsbdemo")
    fig = ml.plot_decision_regions(fres, "write", "math", grid_points=80)
    _png(fig)
    ax = fig.axes[0]
    gids = sorted(c.get_gid() for c in ax.collections if (c.get_gid() or "").startswith("b"))
    assert gids == [
        "boundary: academic = general",
        "boundary: academic = vocation",
        "boundary: general = vocation",
    ]
    points = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert len(points) == 3
    assert sum(len(c.get_offsets()) for c in points) == len(d)
    np.testing.assert_allclose(
        np.sort(points[0].get_offsets()[:, 0]), np.sort(d.write[d.prog == "academic"])
    )
    assert _legend(ax) == OUTCOMES + ["P(k) = P(l) boundaries"]
    assert ax.get_xlabel() == "write" and ax.get_ylabel() == "math"
    assert "ses=middle" in ax.get_title()


def test_decision_region_boundaries_follow_the_log_odds(rng):
    """K = 4: every pairwise boundary that crosses the window is drawn, and only those."""
    from tests.conftest import simulate

    X, y = simulate(rng, n=500, p=3, K=4, scale=1.5)
    res = ml.MultinomialLogit(y, X).fit()
    fig = ml.plot_decision_regions(res, "x2", "x3", show_data=False, grid_points=60)
    ax = fig.axes[0]
    drawn = [c.get_gid() for c in ax.collections if (c.get_gid() or "").startswith("boundary")]
    g2 = np.linspace(X[:, 1].min(), X[:, 1].max(), 5)
    g3 = np.linspace(X[:, 2].min(), X[:, 2].max(), 5)
    pts = np.array([[1.0, a, b] for a in g2 for b in g3])
    eta = res.predict(pts, which="linear").to_numpy()
    labels = list(res.outcomes)
    crossing = {
        f"boundary: {labels[k]} = {labels[m]}"
        for k in range(4)
        for m in range(k + 1, 4)
        if (eta[:, k] - eta[:, m]).min() < 0 < (eta[:, k] - eta[:, m]).max()
    }
    assert crossing <= set(drawn) and len(drawn) <= 6
    assert not [c for c in ax.collections if isinstance(c, PathCollection)]


def test_errors(fres):
    with pytest.raises(ValueError, match="kind must be"):
        fres.plot_predicted("write", kind="pie")
    with pytest.raises(ValueError, match="alpha"):
        fres.plot_predicted("write", alpha=2)
    with pytest.raises(ValueError, match="n_points"):
        fres.plot_predicted("write", n_points=1)
    with pytest.raises(DataError, match="term 'read' is not a variable"):
        fres.plot_predicted("read")
    with pytest.raises(DataError, match="not a variable of the formula"):
        fres.plot_predicted("write", at={"read": 3})
    with pytest.raises(ValueError, match="two different"):
        ml.plot_decision_regions(fres, "write", "write")
    with pytest.raises(DataError, match="categorical"):
        ml.plot_decision_regions(fres, "ses", "write")
    with pytest.raises(DataError, match="y 'read' is not a variable"):
        ml.plot_decision_regions(fres, "write", "read")
    with pytest.raises(ValueError, match="grid_points"):
        ml.plot_decision_regions(fres, "write", "math", grid_points=1)
    d = ml.datasets.load("hsbdemo")
    arr = ml.MultinomialLogit(d.prog, np.column_stack([np.ones(len(d)), d.write])).fit()
    with pytest.raises(DataError, match="not a column of exog"):
        arr.plot_predicted("x2", at={"write": 1.0})
    with pytest.raises(DataError, match="not a column of exog"):
        arr.plot_predicted("write")
    only = ml.mnlogit("prog ~ 1", d).fit()
    with pytest.raises(DataError, match="include_intercept"):
        only.plot_coefficients()


def test_missing_matplotlib_is_a_clear_error(fres, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"pip install multilogit\[plot\]"):
        fres.plot_coefficients()
