"""Parse the reference CSVs in tests/reference (see its README).

Each file opens with ``# key: value`` comment lines (engine, versions, settings, convergence),
kept as ``meta``; the table follows.  Estimate files hold ``equation,term,coef,se`` rows and
``_model`` scalar rows; covariance files hold
``cov_type,equation_row,term_row,equation_col,term_col,value`` rows.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

REFERENCE_DIR = Path(__file__).parent / "reference"


@dataclass(frozen=True)
class Reference:
    coef: pd.DataFrame  # rows: terms, columns: equations (as strings)
    se: pd.DataFrame
    scalars: dict
    meta: dict


def _read(name: str) -> tuple[pd.DataFrame, dict]:
    lines = (REFERENCE_DIR / f"{name}.csv").read_text().splitlines()
    meta = {}
    for line in lines:
        if line.startswith("#"):
            key, _, value = line.lstrip("# ").partition(":")
            meta[key.strip()] = value.strip()
    body = "\n".join(line for line in lines if not line.startswith("#"))
    text_cols = ("equation", "term", "cov_type", "equation_row", "term_row")
    dtype = {c: str for c in (*text_cols, "equation_col", "term_col")}
    return pd.read_csv(io.StringIO(body), dtype=dtype), meta


def load_reference(name: str) -> Reference:
    raw, meta = _read(name)
    model_rows = raw["equation"] == "_model"
    scalars = dict(
        zip(raw.loc[model_rows, "term"], raw.loc[model_rows, "coef"].astype(float), strict=True)
    )
    est = raw.loc[~model_rows]
    terms = list(dict.fromkeys(est["term"]))
    coef = est.pivot(index="term", columns="equation", values="coef").loc[terms]
    se = est.pivot(index="term", columns="equation", values="se").loc[terms]
    equations = list(dict.fromkeys(est["equation"]))
    return Reference(coef[equations].astype(float), se[equations].astype(float), scalars, meta)


def load_covariances(name: str) -> tuple[dict[str, pd.DataFrame], dict]:
    """Covariance matrices by type, indexed by (equation, term) in the file's order."""
    raw, meta = _read(name)
    out = {}
    for cov_type, block in raw.groupby("cov_type", sort=False):
        rows = list(dict.fromkeys(zip(block["equation_row"], block["term_row"], strict=True)))
        cols = list(dict.fromkeys(zip(block["equation_col"], block["term_col"], strict=True)))
        if rows != cols or len(block) != len(rows) ** 2:
            raise ValueError(f"{name}: {cov_type} is not a full square matrix")
        index = pd.MultiIndex.from_tuples(rows, names=["equation", "term"])
        values = block["value"].to_numpy(float).reshape(len(rows), len(rows))
        out[cov_type] = pd.DataFrame(values, index=index, columns=index)
    return out, meta


def _row_number(df: pd.DataFrame) -> np.ndarray:
    return np.arange(1, len(df) + 1)


@dataclass(frozen=True)
class Case:
    """One reference model and the weights and clusters its R script defines (same rules)."""

    dataset: str
    formula: str
    ref: object
    freq_weights: Callable[[pd.DataFrame], np.ndarray]
    groups: Callable[[pd.DataFrame], np.ndarray]


# Keyed by the file stem in tests/reference; "<stem>_fw" and "<stem>[_fw]_cov" files go along.
CASES = {
    # tests/reference/R/hsbdemo.R: w = 1 + id %% 3, clusters cid.
    "hsbdemo_prog_ses_write": Case(
        "hsbdemo",
        "prog ~ ses + write",
        "academic",
        freq_weights=lambda df: 1 + df["id"].to_numpy() % 3,
        groups=lambda df: df["cid"].to_numpy(),
    ),
    # tests/reference/R/admissions.R: w = 1 + row %% 3, cl = row %% 20 (row 1-based).
    "admissions_admit_gre_gpa": Case(
        "admissions",
        "admit ~ gre + gpa",
        0,
        freq_weights=lambda df: 1 + _row_number(df) % 3,
        groups=lambda df: _row_number(df) % 20,
    ),
    "admissions_admit_gre_gpa_rank": Case(
        "admissions",
        "admit ~ gre + gpa + C(rank)",
        0,
        freq_weights=lambda df: 1 + _row_number(df) % 3,
        groups=lambda df: _row_number(df) % 20,
    ),
}
