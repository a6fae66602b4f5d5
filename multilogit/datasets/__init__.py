"""Small public data sets bundled with multilogit.

``hsbdemo`` and ``admissions`` are UCLA Statistical Consulting teaching data sets with
published reference results; ``endometrial`` is a classic example of separation:

``hsbdemo``
    High School and Beyond, 200 students: program type ``prog`` (academic, general, vocation),
    socio-economic status ``ses`` (low < middle < high), writing score ``write``, school/class
    cluster ``cid`` and other scores.
``admissions``
    Graduate admissions, 400 applicants: ``admit`` (0/1), ``gre``, ``gpa``, ``rank`` (1-4).
``endometrial``
    Endometrial cancer, 79 patients (Heinze and Schemper 2002, Statistics in Medicine 21,
    2409-2419; also in R's brglm2 and logistf): histology grade ``HG`` (0 low, 1 high),
    neovasculization ``NV`` (0/1), pulsatility index ``PI`` and endometrium height ``EH``.
    Every patient with ``NV = 1`` has ``HG = 1``: the maximum likelihood estimate of ``NV``'s
    coefficient is infinite (quasi-complete separation).
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
