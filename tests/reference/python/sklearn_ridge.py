"""Ridge multinomial logit references: scikit-learn's ``LogisticRegression(C=...)``.

    python tests/reference/python/sklearn_ridge.py

scikit-learn's multinomial model has one coefficient vector per outcome, ``w_k`` for all K
outcomes (no reference), and minimises

    C * sum_i f_i * logloss_i  +  1/2 * sum_k ||w_k||^2      (intercepts unpenalised),

so at its solution ``sum_k w_k = 0`` for every penalised term.  The likelihood depends only on
the differences ``b_k = w_k - w_ref``; multilogit's ``fit(penalty="l2", alpha=1/C,
l2_form="symmetric")`` (intercepts unpenalised, the default) maximises the same objective in
those reference-coded coefficients, so its ``params`` must equal ``coef_[k] - coef_[ref]``
(and ``intercept_[k] - intercept_[ref]``) and its fitted probabilities ``predict_proba``.

The script fits with the Newton-Cholesky solver at ``tol=1e-14``, then checks independently of
scikit-learn (from the design and the fitted coefficients) that the gradient of the objective
above is ~0 and that ``sum_k w_k = 0``; it writes the reference-coded coefficients and the
log-likelihood.  Cases (designs built by patsy exactly as multilogit builds them):

    hsbdemo     prog ~ ses + write, reference academic, C = 0.5
    alligators  foodchoice ~ size + lake, frequency weights freq (sample_weight), reference
                Fish, C = 1
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import patsy
import scipy
import sklearn
from sklearn.linear_model import LogisticRegression

HERE = Path(__file__).resolve().parent
REF_DIR = HERE.parent
ROOT = REF_DIR.parent.parent


def load_hsbdemo() -> pd.DataFrame:
    path = ROOT / "multilogit" / "datasets" / "data" / "hsbdemo.csv"
    df = pd.read_csv(path, sep=";", index_col=0)
    df["prog"] = pd.Categorical(df["prog"], ["academic", "general", "vocation"])
    df["ses"] = pd.Categorical(df["ses"], ["low", "middle", "high"])
    return df


def load_alligators() -> pd.DataFrame:
    df = pd.read_csv(REF_DIR / "data" / "alligators.csv")
    df["foodchoice"] = pd.Categorical(
        df["foodchoice"], ["Fish", "Invertebrate", "Reptile", "Bird", "Other"]
    )
    df["lake"] = pd.Categorical(df["lake"], ["Hancock", "Oklawaha", "Trafford", "George"])
    df["size"] = pd.Categorical(df["size"], ["<=2.3", ">2.3"])
    return df


def fmt(x: float) -> str:
    return "NA" if not np.isfinite(x) else repr(float(x))


def run(name, df, formula, weights, C):
    y_name, rhs = formula.split("~")
    y_name = y_name.strip()
    X = patsy.dmatrix(rhs, df, return_type="dataframe")
    names = list(X.columns)
    assert names[0] == "Intercept"
    levels = list(df[y_name].cat.categories)
    y = df[y_name].cat.codes.to_numpy()
    f = np.ones(len(df)) if weights is None else df[weights].to_numpy(dtype=float)
    keep = f > 0  # scikit-learn needs every class present; zero-weight rows add nothing
    Xs = X.to_numpy()[keep, 1:]
    clf = LogisticRegression(C=C, solver="newton-cholesky", tol=1e-14, max_iter=10000)
    clf.fit(Xs, y[keep], sample_weight=f[keep])
    assert list(clf.classes_) == list(range(len(levels))), "every outcome must be present"
    W = np.column_stack([clf.intercept_, clf.coef_])  # K x p, column 0 the intercept
    # Independent check: gradient of C * sum f logloss + 1/2 sum ||w_k||^2 (slopes only).
    Xf = X.to_numpy()[keep]
    eta = Xf @ W.T
    P = np.exp(eta - eta.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    D = np.eye(len(levels))[y[keep]]
    grad = C * (Xf.T @ (f[keep, None] * (P - D))).T
    grad[:, 1:] += W[:, 1:]
    gmax = float(np.max(np.abs(grad)))
    assert gmax < 1e-9 * max(1.0, C * f.sum()), gmax
    assert np.max(np.abs(W[:, 1:].sum(axis=0))) < 1e-10, "sum_k w_k = 0 at the solution"
    assert np.allclose(P, clf.predict_proba(Xs), rtol=1e-12, atol=1e-15)
    B = W[1:] - W[0]  # reference-coded: J x p
    llf = float(np.sum(f[keep] * np.log(P[np.arange(len(P)), y[keep]])))
    lines = [
        "# produced by: python tests/reference/python/sklearn_ridge.py (do not edit by hand)",
        f"# engine: Python {sys.version.split()[0]}; scikit-learn {sklearn.__version__}, "
        f"numpy {np.__version__}, scipy {scipy.__version__}, patsy {patsy.__version__}",
        f"# fit: LogisticRegression(C={C!r}, solver='newton-cholesky', tol=1e-14, "
        f"max_iter=10000).fit(X, y, sample_weight={weights or 'None'}) (multinomial, "
        "intercepts unpenalised)",
        f"# convergence: {int(np.max(clf.n_iter_))} iterations; max |gradient of "
        f"C sum f logloss + 1/2 sum_k ||w_k||^2| {gmax:.3g}; max |sum_k w_k| "
        f"{np.max(np.abs(W[:, 1:].sum(axis=0))):.3g}",
        f"# model: {formula}, reference {levels[0]}"
        + ("" if weights is None else f", weights {weights}"),
        "# coefficients: coef_[k] - coef_[reference] (intercept_ likewise)",
        "equation,term,coef,se",
    ]
    for j, lev in enumerate(levels[1:]):
        for t, term in enumerate(names):
            lines.append(f"{lev},{term},{fmt(B[j, t])},NA")
    lines += [f"_model,C,{fmt(C)},", f"_model,llf,{fmt(llf)},"]
    path = REF_DIR / f"{name}.csv"
    path.write_text("\n".join(lines) + "\n")
    print("wrote", path)


if __name__ == "__main__":
    run("hsbdemo_l2_sklearn", load_hsbdemo(), "prog ~ ses + write", None, 0.5)
    run("alligators_l2_sklearn", load_alligators(), "foodchoice ~ size + lake", "freq", 1.0)
