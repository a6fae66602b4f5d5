"""labels= and outcome_labels= in margins tables and plots, as in the results' own tables."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import multilogit as ml  # noqa: E402


@pytest.fixture(scope="module")
def res():
    df = ml.datasets.load("hsbdemo")
    return ml.mnlogit("prog ~ ses + write", df, ref="academic").fit()


def test_predictive_margins_table_labels(res):
    margins = res.get_margins("ses")
    plain = margins.summary_frame()
    named = margins.summary_frame(
        labels={"ses": "Socio-economic status"}, outcome_labels={"general": "General"}
    )
    assert named.index.names == ["outcome", "Socio-economic status"]
    assert "General" in named.index.get_level_values(0)
    assert "general" not in named.index.get_level_values(0)
    # Only the names change, never the numbers or their order.
    np.testing.assert_array_equal(named.to_numpy(), plain.to_numpy())
    text = margins.summary(labels={"ses": "SES"}, outcome_labels={"general": "General"})
    assert "SES=low" in text.as_text() and "prog=General" in text.as_text()


def test_marginal_effects_table_labels(res):
    me = res.get_margeff()
    named = me.summary_frame(labels={"write": "Writing score"}, short_names=True)
    terms = list(dict.fromkeys(named.index.get_level_values(1)))
    assert "Writing score" in terms and "ses: middle" in terms
    np.testing.assert_array_equal(named.to_numpy(), me.summary_frame().to_numpy())
    text = me.summary(labels={"write": "Writing score"}, outcome_labels={"vocation": "Voc."})
    assert "Writing score" in text.as_text() and "prog=Voc." in text.as_text()


def test_plot_margins_labels(res):
    fig = res.plot_margins(
        at={"write": [30, 50, 70]},
        labels={"write": "Writing score"},
        outcome_labels={"general": "General"},
    )
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    texts += [ax.get_xlabel() for ax in fig.axes] + [ax.get_title() for ax in fig.axes]
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is not None:
            texts += [t.get_text() for t in legend.get_texts()]
    joined = " | ".join(texts)
    assert "Writing score" in joined
    assert "General" in joined and "general" not in joined
    # The original names still select what to plot.
    fig2 = res.plot_margins(
        at={"write": [30, 50, 70]},
        x="write",
        outcomes=["general"],
        outcome_labels={"general": "General"},
    )
    assert fig2 is not None


def test_unknown_label_keys_are_named(res):
    with pytest.raises(ml.DataError, match="'sess'"):
        res.get_margins("ses").summary_frame(labels={"sess": "x"})
    with pytest.raises(ml.DataError, match="'generl'"):
        res.get_margeff().summary_frame(outcome_labels={"generl": "x"})
