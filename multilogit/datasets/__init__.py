"""Small public data sets bundled with multilogit.

Two UCLA Statistical Consulting teaching data sets with published reference results, and one
small separated data set:

``hsbdemo``
    High School and Beyond, 200 students: program type ``prog`` (academic, general, vocation),
    socio-economic status ``ses`` (low < middle < high), writing score ``write``, school/class
    cluster ``cid`` and other scores.
``admissions``
    Graduate admissions, 400 applicants: ``admit`` (0/1), ``gre``, ``gpa``, ``rank`` (1-4).
``endometrial``
    Histology grade of 79 endometrial cancer patients (Heinze and Schemper 2002; R's
    ``brglm2::endometrial``): grade ``HG`` (0/1), neovasculization ``NV`` (0/1, which separates
    the grades: its maximum-likelihood estimate is infinite), pulsatility index ``PI`` and
    endometrium height ``EH``.
"""

from __future__ import annotations

from importlib import resources

import pandas as pd

__all__ = ["load", "names"]


def _read(filename: str, sep: str) -> pd.DataFrame:
    with resources.files(__name__).joinpath("data", filename).open("r") as fh:
        # The files are R exports: the first (unnamed) column holds row names.
        return pd.read_csv(fh, sep=sep, index_col=0)


def _hsbdemo() -> pd.DataFrame:
    df = _read("hsbdemo.csv", ";")
    df.index = pd.RangeIndex(len(df))
    df["prog"] = pd.Categorical(df["prog"], categories=["academic", "general", "vocation"])
    df["ses"] = pd.Categorical(df["ses"], categories=["low", "middle", "high"], ordered=True)
    for col in ("female", "schtyp", "honors"):
        df[col] = pd.Categorical(df[col], categories=sorted(df[col].unique()))
    return df


def _admissions() -> pd.DataFrame:
    df = _read("admissions.csv", ",")
    df.index = pd.RangeIndex(len(df))
    df["rank"] = pd.Categorical(df["rank"].astype(int), categories=[1, 2, 3, 4], ordered=True)
    return df


def _endometrial() -> pd.DataFrame:
    with resources.files(__name__).joinpath("data", "endometrial.csv").open("r") as fh:
        return pd.read_csv(fh)


_LOADERS = {"hsbdemo": _hsbdemo, "admissions": _admissions, "endometrial": _endometrial}


def names() -> list[str]:
    """Names accepted by :func:`load`."""
    return sorted(_LOADERS)


def load(name: str) -> pd.DataFrame:
    """Return a bundled data set as a tidy DataFrame.

    Parameters
    ----------
    name : {"hsbdemo", "admissions", "endometrial"}

    Returns
    -------
    pandas.DataFrame
        Categorical columns carry their natural level order.
    """
    try:
        loader = _LOADERS[name]
    except KeyError:
        raise ValueError(f"unknown data set {name!r}; available: {', '.join(names())}") from None
    return loader()
