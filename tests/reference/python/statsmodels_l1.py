"""L1-penalised multinomial logit references: statsmodels' ``MNLogit.fit_regularized``.

    python tests/reference/python/statsmodels_l1.py

statsmodels minimises ``-loglike(b) + sum_i alpha_i |b_i|`` (no 1/n: it rescales both terms by
1/nobs internally) over its flat parameter vector, which is ordered equation by equation (all
terms of the first non-reference outcome, then the next): multilogit's order.  An alpha array
shaped like ``params`` (terms x outcomes) is flattened in that order.  After the solve it
"trims": with ``trim_mode="auto"`` a coefficient whose score is below ``alpha_i (1 -
auto_trim_tol)`` in size is set to 0 exactly and its standard error is NaN; the standard
errors of the others come from the inverse of the unpenalised Hessian restricted to them.

The case is statsmodels' own test ``TestMNLogitL1`` (statsmodels/discrete/tests/
test_discrete.py): the anes96 data, ``PID ~ logpopul + selfLR + age + educ + income`` with the
constant last, alpha = 10 on every slope and 0 on the constants, ``trim_mode="auto",
auto_trim_tol=0.02, acc=1e-10``.  Written here:

``anes96_l1_published.csv``
    the numbers statsmodels' test suite compares with (``DiscreteL1.mnlogit`` in
    statsmodels/discrete/tests/results/results_discrete.py, printed to 8 decimals; produced by
    the same call), read from the installed package.
``anes96_l1_statsmodels.csv``
    the same call run now (SLSQP on the split-variable problem, accurate to ~1e-6).
``anes96_l1_kkt.csv``
    the exact minimiser: from statsmodels' solution, Newton's method with statsmodels' own
    score and Hessian on the nonzero coefficients with their signs fixed, then certified by the
    optimality (KKT) conditions, checked here: ``|score_i| <= alpha_i`` where ``b_i = 0``,
    ``score_i = alpha_i sign(b_i)`` elsewhere (to 1e-10), the signs unchanged.  Since the
    problem is strictly convex this point is the unique minimiser, to rounding.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import scipy
import statsmodels
import statsmodels.api as sm
from statsmodels.discrete.tests.results.results_discrete import DiscreteL1

REF_DIR = Path(__file__).resolve().parent.parent
TERMS = ["logpopul", "selfLR", "age", "educ", "income", "const"]
CALL = (
    "MNLogit(PID, add_constant(exog, prepend=False)).fit_regularized(method='l1', "
    "alpha=alpha, trim_mode='auto', auto_trim_tol=0.02, acc=1e-10, disp=0); alpha = 10 on "
    "every slope, 0 on const"
)


def fmt(x) -> str:
    x = float(x)
    return "NA" if not np.isfinite(x) else repr(x)


def write(name, header, params, bse, scalars, outcomes):
    lines = [
        "# produced by: python tests/reference/python/statsmodels_l1.py (do not edit by hand)",
        f"# engine: Python {sys.version.split()[0]}; statsmodels {statsmodels.__version__}, "
        f"numpy {np.__version__}, scipy {scipy.__version__}",
        *[f"# {k}: {v}" for k, v in header.items()],
        "# model: PID ~ logpopul + selfLR + age + educ + income (constant last), reference 0",
        "equation,term,coef,se",
    ]
    for j, out in enumerate(outcomes):
        for t, term in enumerate(TERMS):
            lines.append(f"{out},{term},{fmt(params[t, j])},{fmt(bse[t, j])}")
    lines += [f"_model,{k},{fmt(v)}," for k, v in scalars.items()]
    path = REF_DIR / f"{name}.csv"
    path.write_text("\n".join(lines) + "\n")
    print("wrote", path)


def main():
    data = sm.datasets.anes96.load()
    exog = sm.add_constant(data.exog, prepend=False)
    model = sm.MNLogit(data.endog, exog)
    assert list(exog.columns) == TERMS
    J, p = model.J - 1, model.K
    alpha = 10.0 * np.ones((p, J))  # shaped like params: terms x outcomes
    alpha[-1, :] = 0
    res = model.fit_regularized(
        method="l1", alpha=alpha, trim_mode="auto", auto_trim_tol=0.02, acc=1e-10, disp=0
    )
    outcomes = [str(int(c)) for c in np.unique(data.endog)[1:]]
    params = np.asarray(res.params)
    bse = np.asarray(res.bse)
    common = {"fit": CALL}

    pub = DiscreteL1.mnlogit
    write(
        "anes96_l1_published",
        {
            **common,
            "source": "statsmodels/discrete/tests/results/results_discrete.py "
            "DiscreteL1.mnlogit (8 decimals)",
        },
        np.asarray(pub.params),
        np.asarray(pub.bse),
        {"nnz_params": pub.nnz_params, "aic": pub.aic, "bic": pub.bic},
        outcomes,
    )
    write(
        "anes96_l1_statsmodels",
        {
            **common,
            "convergence": f"SLSQP {res.mle_retvals['warnflag']}, "
            f"{res.mle_retvals['iterations']} iterations",
        },
        params,
        bse,
        {"nnz_params": res.nnz_params, "aic": res.aic, "bic": res.bic, "llf": res.llf},
        outcomes,
    )

    # The exact minimiser on statsmodels' support, by Newton with fixed signs.
    a = alpha.ravel("F")  # statsmodels' flat order: equation by equation
    b = params.ravel("F").copy()
    free = (b != 0) | (a == 0)
    sign = np.sign(b)
    iterations = 0
    for _ in range(50):
        iterations += 1
        g = model.score(b) - a * sign  # gradient of loglike - sum a |b| on the support
        H = model.hessian(b)
        step = np.linalg.solve(H[np.ix_(free, free)], -g[free])
        b[free] += step
        if np.max(np.abs(step)) < 1e-15 * (1 + np.max(np.abs(b))):
            break
    score = model.score(b)
    pen = a > 0
    on = free & pen
    assert np.all(np.sign(b[on]) == sign[on]), "signs unchanged"
    kkt_nonzero = float(np.max(np.abs(score[on] - a[on] * sign[on])))
    kkt_unpen = float(np.max(np.abs(score[~pen])))
    zero = ~free
    slack = float(np.min(a[zero] - np.abs(score[zero])))
    assert kkt_nonzero < 1e-10 and kkt_unpen < 1e-10 and slack > 0, (kkt_nonzero, slack)
    H = model.hessian(b)
    keep = ~zero
    cov = np.full((b.size, b.size), np.nan)
    cov[np.ix_(keep, keep)] = np.linalg.inv(-H[np.ix_(keep, keep)])
    se = np.sqrt(np.diag(cov))
    llf = float(model.loglike(b))
    nnz = int(keep.sum())
    write(
        "anes96_l1_kkt",
        {
            **common,
            "convergence": f"{iterations} Newton iterations with fixed signs from statsmodels' "
            f"solution; KKT: max |score - alpha sign(b)| on nonzero {kkt_nonzero:.3g}, max "
            f"|score| unpenalised {kkt_unpen:.3g}, min (alpha - |score|) at zeros {slack:.3g} "
            f"(every zero trimmed at auto_trim_tol=0.02)",
            "se": "inverse of the unpenalised information on the nonzero coefficients; NA at 0",
        },
        b.reshape(J, p).T,
        se.reshape(J, p).T,
        {
            "nnz_params": nnz,
            "llf": llf,
            "aic": -2 * llf + 2 * nnz,
            "bic": -2 * llf + np.log(len(model.endog)) * nnz,
            "min_trim_margin": float(np.min((a[zero] - np.abs(score[zero])) / a[zero])),
        },
        outcomes,
    )


if __name__ == "__main__":
    main()
