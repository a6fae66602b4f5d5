"""Term and outcome labels: short patsy names, the labels mapping and its checks, and their use
in summary(), summary2(), rrr() and the plots."""

from __future__ import annotations

import numpy as np
import pandas as pd
import patsy
import pytest

import multilogit as ml
from multilogit.data.labelling import (
    TermLabels,
    outcome_labels_map,
    short_term_name,
    term_factors,
)
from multilogit.exceptions import DataError


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(7)
    n = 60
    return pd.DataFrame(
        {
            "ses": rng.choice(["low", "middle", "high"], n),
            "female": rng.choice(["no", "yes"], n),
            "x": rng.uniform(1, 2, n),
            "fare": rng.uniform(1, 50, n),
            "my var": rng.choice(["a", "b"], n),
        }
    )


# The names are read off patsy's own design matrices, so the test follows patsy's spelling.
@pytest.mark.parametrize(
    ("formula", "column", "short"),
    [
        ("ses", 1, "ses: low"),
        ("C(ses, Treatment('low'))", 1, "ses: high"),
        ("C(ses, Treatment(reference='low'))", 2, "ses: middle"),
        ("C(ses, Sum)", 1, "ses: high"),
        ("C(ses, Diff)", 1, "ses: high"),
        ("C(ses, Poly)", 2, "ses: Quadratic"),
        ("C(ses, Helmert)", 1, "ses: low"),
        ("C(ses, Poly)", 1, "ses: Linear"),
        ("0 + ses", 0, "ses: high"),
        ("C(Q('my var'))", 1, "my var: b"),
        ("Q('my var')", 1, "my var: b"),
        ("I(x ** 2)", 1, "x ** 2"),
        ("female:x", 1, "female: no × x"),
        ("ses:female", 2, "ses: low × female: no"),
        ("x:fare", 1, "x × fare"),
        ("np.log(fare)", 1, "np.log(fare)"),
        ("center(x)", 1, "center(x)"),
        ("bs(x, df=3)", 1, "bs(x, df=3)[0]"),
        ("x", 0, "Intercept"),
    ],
)
def test_short_names_of_patsy_columns(frame, formula, column, short):
    name = patsy.dmatrix(formula, frame).design_info.column_names[column]
    assert short_term_name(name) == short


def test_term_factors():
    assert term_factors("C(ses, Treatment('low'))[T.middle]:x") == [
        ("ses", "middle"),
        ("x", None),
    ]
    assert term_factors("np.log(fare)") is None


def test_colliding_short_names_keep_their_full_names():
    names = ["ses[T.a]", "C(ses)[T.a]", "x"]
    labels = TermLabels(names, short=True)
    assert [labels(n) for n in names] == ["ses[T.a]", "C(ses)[T.a]", "x"]


def test_term_labels_by_term_short_name_and_variable():
    names = ["Intercept", "C(ses)[T.middle]", "C(ses)[T.high]", "x", "female[T.yes]:x"]
    labels = TermLabels(
        names,
        {"C(ses)[T.high]": "High SES", "ses: middle": "Middle SES", "x": "Income"},
        variables=["fare"],
    )
    assert [labels(n) for n in names] == [
        "Intercept",
        "Middle SES",
        "High SES",
        "Income",
        "female: yes × Income",
    ]
    assert labels.variable("x") == "Income" and labels.variable("fare") == "fare"
    # Without labels or short names, names are printed as they are.
    assert TermLabels(names)("C(ses)[T.high]") == "C(ses)[T.high]"


def test_unknown_label_keys_name_the_valid_ones():
    with pytest.raises(DataError) as err:
        TermLabels(["Intercept", "C(ses)[T.high]", "x"], {"sse": "S", "y": "Y"})
    msg = str(err.value)
    assert "'sse', 'y' are not terms or variables" in msg
    assert "valid terms: Intercept, C(ses)[T.high], x; variables: ses" in msg
    with pytest.raises(DataError, match="must be a string"):
        TermLabels(["x"], {"x": 1})


def test_outcome_labels_map():
    assert outcome_labels_map([1.0, 2.0, 3.0], {1: "one", "2": "two"}) == {
        1.0: "one",
        2.0: "two",
        3.0: "3",
    }
    with pytest.raises(DataError, match=r"'4' not an outcome; valid outcomes: 1, 2"):
        outcome_labels_map([1.0, 2.0], {"4": "four"})


# ---------------------------------------------------------------------------------------------
# Where the labels are used


@pytest.fixture(scope="module")
def res():
    d = ml.datasets.load("hsbdemo")
    return ml.mnlogit("prog ~ C(ses, Treatment('low')) + write", d, ref="academic").fit()


LABELS = {"write": "Writing score", "ses": "SES"}
OUTCOMES = {"vocation": "Vocational", "academic": "Academic"}


def test_summary_labels(res):
    text = res.summary(labels=LABELS, outcome_labels=OUTCOMES).as_text()
    assert "SES: middle" in text and "Writing score" in text
    assert "Treatment" not in text
    assert "prog=Vocational" in text and "prog=general" in text
    assert "reference: Academic" in text
    # Labels change names only: the numbers are those of the unlabelled summary.
    plain = res.summary().tables[1].data
    labelled = res.summary(labels=LABELS).tables[1].data
    assert [row[1:] for row in plain] == [row[1:] for row in labelled]
    short = res.summary(short_names=True).as_text()
    assert "ses: high" in short
    with pytest.raises(DataError, match="valid terms"):
        res.summary(labels={"writing": "W"})


def test_summary2_labels(res):
    text = res.summary2(labels=LABELS, outcome_labels=OUTCOMES).as_text()
    assert "SES: high" in text and "prog = Vocational" in text and "reference: Academic" in text


def test_rrr_labels(res):
    plain = res.rrr()
    labelled = res.rrr(labels=LABELS, outcome_labels=OUTCOMES)
    np.testing.assert_array_equal(labelled.to_numpy(), plain.to_numpy())
    assert list(labelled.index.get_level_values("outcome").unique()) == ["general", "Vocational"]
    assert list(labelled.index.get_level_values("term").unique()) == [
        "Intercept",
        "SES: middle",
        "SES: high",
        "Writing score",
    ]
    with pytest.raises(DataError, match="'career' not an outcome"):
        res.rrr(outcome_labels={"career": "C"})


matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")


def _legend(ax):
    return [t.get_text() for t in ax.get_legend().get_texts()]


def test_plot_labels(res, tmp_path):
    import matplotlib.pyplot as plt

    try:
        fig = res.plot_coefficients(labels=LABELS, outcome_labels=OUTCOMES)
        ax = fig.axes[0]
        ticks = [t.get_text() for t in ax.get_yticklabels()]
        assert ticks == ["SES: middle", "SES: high", "Writing score"]
        assert _legend(ax) == ["general", "Vocational"]
        assert "vs Academic" in ax.get_xlabel()
        fig.savefig(tmp_path / "coef.png", dpi=60)

        # Plots print short names unless told not to.
        raw = res.plot_coefficients(short_names=False).axes[0]
        assert raw.get_yticklabels()[0].get_text() == "C(ses, Treatment('low'))[T.middle]"

        fig = res.plot_predicted("write", labels=LABELS, outcome_labels=OUTCOMES, n_points=20)
        ax = fig.axes[0]
        assert ax.get_xlabel() == "Writing score"
        assert _legend(ax) == ["Academic", "general", "Vocational"]
        assert "SES=middle" in ax.get_title()

        d = ml.datasets.load("hsbdemo")
        two = ml.mnlogit("prog ~ write + math", d, ref="academic").fit()
        fig = ml.plot_decision_regions(
            two,
            "write",
            "math",
            grid_points=20,
            labels={"math": "Math score"},
            outcome_labels={"general": "General"},
        )
        ax = fig.axes[0]
        assert ax.get_xlabel() == "write" and ax.get_ylabel() == "Math score"
        assert _legend(ax)[:3] == ["academic", "General", "vocation"]
        observed = [c.get_label() for c in ax.collections if "observed" in c.get_label()]
        assert "General (observed)" in observed
        with pytest.raises(DataError, match="valid terms.*variables"):
            res.plot_predicted("write", labels={"wrte": "W"})
    finally:
        plt.close("all")
