"""Summary rendering: text, HTML and LaTeX carry the header facts and one block per outcome."""

import re

import multilogit as ml


def test_text_summary_header_and_blocks(hsb_res):
    text = str(hsb_res.summary())
    for label, value in [
        ("Dep. Variable:", "prog"),
        ("Model:", "MultinomialLogit"),
        ("Method:", "MLE (Newton-Raphson)"),
        ("No. Observations:", "200"),
        ("Df Residuals:", "192"),
        ("Df Model:", "6"),
        ("Pseudo R-squ.:", "0.1182"),
        ("Log-Likelihood:", "-179.982"),
        ("LL-Null:", "-204.097"),
        ("LLR p-value:", "1.063e-08"),
        ("converged:", "True"),
        ("Iterations:", str(hsb_res.n_iter)),
        ("Reference outcome:", "academic"),
        ("Covariance Type:", "nonrobust"),
    ]:
        assert re.search(re.escape(label) + r"\s+" + re.escape(value), text), label
    # One block per non-reference outcome, headed by the user's label, not a code.
    assert text.index("prog=general") < text.index("prog=vocation")
    assert "prog=1" not in text and "academic" in text.splitlines()[0]
    assert re.search(r"write\s+-0\.0579\s+0\.021\s+-2\.706\s+0\.007\s+-0\.100\s+-0\.016", text)
    assert text.count("Intercept") == 2


def test_html_and_latex(hsb_res):
    smry = hsb_res.summary()
    html = smry._repr_html_()
    assert html.count("<table") == 2 and "<th>prog=vocation</th>" in html
    assert "academic" in html
    latex = smry.as_latex()
    assert latex.count("\\begin{tabular}") >= 2 and "prog=general" in latex


def test_alpha_changes_interval_labels(hsb_res):
    text = str(hsb_res.summary(alpha=0.1))
    assert "[0.05" in text and "0.95]" in text
    ci = hsb_res.conf_int(0.1)
    lo = ci.loc[("general", "write"), "lower"]
    assert f"{lo:.3f}" in text


def test_non_convergence_note(hsbdemo):
    import pytest

    with pytest.warns(ml.ConvergenceWarning):
        res = ml.mnlogit("prog ~ ses + write", hsbdemo).fit(maxiter=1)
    assert "[1] Newton-Raphson did not converge" in str(res.summary())


def test_repr(hsb_res):
    assert "ref='academic'" in repr(hsb_res) and "K=3" in repr(hsb_res)
    assert "prog ~ ses + write" in repr(hsb_res.model)
