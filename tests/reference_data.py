"""Parse the reference CSVs in tests/reference (see its README)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

REFERENCE_DIR = Path(__file__).parent / "reference"


@dataclass(frozen=True)
class Reference:
    coef: pd.DataFrame  # rows: terms, columns: equations (as strings)
    se: pd.DataFrame
    scalars: dict


def load_reference(name: str) -> Reference:
    raw = pd.read_csv(REFERENCE_DIR / f"{name}.csv", dtype={"equation": str, "term": str})
    model_rows = raw["equation"] == "_model"
    scalars = dict(
        zip(raw.loc[model_rows, "term"], raw.loc[model_rows, "coef"].astype(float), strict=True)
    )
    est = raw.loc[~model_rows]
    terms = list(dict.fromkeys(est["term"]))
    coef = est.pivot(index="term", columns="equation", values="coef").loc[terms]
    se = est.pivot(index="term", columns="equation", values="se").loc[terms]
    return Reference(coef.astype(float), se.astype(float), scalars)
