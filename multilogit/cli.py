"""Command line: ``python -m multilogit [fit FORMULA --data FILE.csv [options]]``.

With no arguments it fits ``prog ~ ses + write`` (reference ``academic``) on the bundled hsbdemo
data and prints the summary.  Options choose the reference outcome, the covariance
(``--cov-type``, ``--cluster COL``), relative-risk ratios (``--rrr``), average marginal effects
(``--margins``) and the output (``--format text|html|latex|csv``).  Formulas may use ``np``.
Bad input ends with a one-line message and a non-zero exit code.
"""

from __future__ import annotations

import argparse
import sys
import warnings

import pandas as pd

from . import datasets
from .exceptions import ConvergenceWarning, MultilogitError
from .inference.covariance import available_cov_types
from .model import mnlogit

__all__ = ["main"]

DEMO_FORMULA = "prog ~ ses + write"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m multilogit",
        description="Fit a multinomial logit. Without arguments: the hsbdemo example "
        f"({DEMO_FORMULA}, reference academic).",
    )
    sub = p.add_subparsers(dest="command")
    fit = sub.add_parser("fit", help="fit FORMULA on a CSV file and print the summary")
    fit.add_argument("formula", help="R-style formula, e.g. 'prog ~ C(ses) + write'")
    fit.add_argument("--data", required=True, help="CSV file with a header row")
    fit.add_argument("--ref", default=None, help="reference outcome (default: first level)")
    fit.add_argument("--sep", default=",", help="field separator (default ',')")
    fit.add_argument(
        "--missing",
        choices=["raise", "drop"],
        default="raise",
        help="rows with missing values: raise an error (default) or drop them",
    )
    fit.add_argument("--alpha", type=float, default=0.05, help="1 - confidence level")
    fit.add_argument(
        "--cov-type",
        choices=available_cov_types(),
        default=None,
        help="covariance of the estimates (default nonrobust; cluster needs --cluster)",
    )
    fit.add_argument(
        "--cluster",
        metavar="COL",
        default=None,
        help="cluster-robust standard errors over the groups of column COL",
    )
    fit.add_argument(
        "--rrr", action="store_true", help="relative-risk ratios exp(coef) (Stata's rrr)"
    )
    fit.add_argument(
        "--margins",
        action="store_true",
        help="also average marginal effects (discrete changes for factors)",
    )
    fit.add_argument(
        "--format",
        choices=["text", "html", "latex", "csv"],
        default="text",
        dest="fmt",
        help="output format; csv: one table of estimates (and marginal effects)",
    )
    return p


# The columns of the CSV table: the coefficients' (or RRRs', or marginal effects') own names
# differ, the statistics after them are the same.
_CSV_COLUMNS = ["estimate", "std_err", "z", "pvalue", "lower", "upper"]


def _coef_frame(res, alpha, rrr):
    if rrr:
        frame = res.rrr(alpha=alpha)
    else:
        stacked = {
            "coef": res.params.unstack(),
            "se": res.bse.unstack(),
            "z": res.tvalues.unstack(),
            "p": res.pvalues.unstack(),
        }
        frame = pd.concat([pd.DataFrame(stacked), res.conf_int(alpha)], axis=1)
    frame.columns = _CSV_COLUMNS
    frame.index.names = ["outcome", "term"]
    return frame


def _render(res, fmt, alpha, rrr=False, margins=False):
    if fmt == "csv":
        tables = {("rrr" if rrr else "coef"): _coef_frame(res, alpha, rrr)}
        if margins:
            me = res.get_margeff().summary_frame(alpha=alpha)
            me.columns = _CSV_COLUMNS
            me.index.names = ["outcome", "term"]
            tables["margins"] = me
        out = pd.concat(tables, names=["table"])
        return out.to_csv(float_format="%.10g").rstrip("\n")
    parts = [res.summary(alpha=alpha, rrr=rrr)]
    if margins:
        parts.append(res.get_margeff().summary(alpha=alpha))
    method = {"text": "as_text", "html": "as_html", "latex": "as_latex"}[fmt]
    return "\n\n".join(getattr(p, method)() for p in parts)


def _cov_options(args):
    """``(cov_type, cov_kwds)`` from --cov-type and --cluster."""
    if args.cluster is not None:
        if args.cov_type not in (None, "cluster"):
            raise MultilogitError(
                f"--cluster gives cluster-robust standard errors; it cannot go with "
                f"--cov-type {args.cov_type}"
            )
        return "cluster", {"groups": args.cluster}
    if args.cov_type == "cluster":
        raise MultilogitError("--cov-type cluster needs --cluster COL (the cluster column)")
    return args.cov_type, None


def _read_csv(path, sep):
    try:
        return pd.read_csv(path, sep=sep)
    except FileNotFoundError:
        raise MultilogitError(f"data file {path!r} does not exist") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MultilogitError(f"cannot read {path!r} as CSV: {first}") from None


def run(argv=None) -> str:
    """Parse ``argv``, fit, and return the rendered summary (errors raise MultilogitError)."""
    args = _parser().parse_args(argv)
    if args.command is None:
        res = mnlogit(DEMO_FORMULA, datasets.load("hsbdemo"), ref="academic").fit()
        return _render(res, "text", 0.05)
    data = _read_csv(args.data, args.sep)
    if data.shape[1] < 2:
        raise MultilogitError(
            f"{args.data!r} has {data.shape[1]} column(s) with separator {args.sep!r}; check --sep"
        )
    if not 0 < args.alpha < 1:
        raise MultilogitError(f"--alpha must be between 0 and 1; got {args.alpha}")
    cov_type, cov_kwds = _cov_options(args)
    if args.cluster is not None and args.cluster not in data.columns:
        raise MultilogitError(
            f"--cluster {args.cluster!r} is not a column of {args.data!r}; columns: "
            + ", ".join(map(str, data.columns))
        )
    model = mnlogit(args.formula, data, ref=args.ref, missing=args.missing)
    res = model.fit(cov_type=cov_type, cov_kwds=cov_kwds)
    return _render(res, args.fmt, args.alpha, rrr=args.rrr, margins=args.margins)


def main(argv=None) -> int:
    with warnings.catch_warnings():
        # Non-convergence is shown in the summary itself; keep stderr for errors.
        warnings.simplefilter("ignore", ConvergenceWarning)
        try:
            out = run(argv)
        except MultilogitError as exc:
            print(f"multilogit: error: {exc}", file=sys.stderr)
            return 2
    print(out)
    return 0
