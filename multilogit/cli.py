"""Command line: ``python -m multilogit [fit FORMULA --data FILE.csv [--ref LABEL] [--sep ;]]``.

With no arguments it fits ``prog ~ ses + write`` (reference ``academic``) on the bundled hsbdemo
data and prints the summary.  Bad input ends with a one-line message and a non-zero exit code.
"""

from __future__ import annotations

import argparse
import sys
import warnings

import pandas as pd

from . import datasets
from .exceptions import ConvergenceWarning, MultilogitError
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
        "--format",
        choices=["text", "html", "latex"],
        default="text",
        dest="fmt",
        help="summary format",
    )
    return p


def _render(res, fmt, alpha):
    smry = res.summary(alpha=alpha)
    return {"text": smry.as_text, "html": smry.as_html, "latex": smry.as_latex}[fmt]()


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
    res = mnlogit(args.formula, data, ref=args.ref, missing=args.missing).fit()
    return _render(res, args.fmt, args.alpha)


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
