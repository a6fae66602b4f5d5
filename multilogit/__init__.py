"""multilogit: multinomial logistic (softmax) regression in the style of statsmodels.

>>> import multilogit
>>> df = multilogit.datasets.load("hsbdemo")
>>> res = multilogit.mnlogit("prog ~ ses + write", df, ref="academic").fit()
>>> print(res.summary())  # doctest: +SKIP
"""

from . import datasets
from .data.parquet import parquet
from .exceptions import (
    ConvergenceWarning,
    DataError,
    FitError,
    MultilogitError,
    PerfectSeparationError,
    PerfectSeparationWarning,
    PersistenceError,
)
from .inference import hypothesis, reparam
from .loading import load
from .model import MultinomialLogit, mnlogit
from .results.plotting import plot_decision_regions
from .results.results import MultinomialLogitResults
from .version import __version__

__all__ = [
    "ConvergenceWarning",
    "DataError",
    "FitError",
    "MultilogitError",
    "MultinomialLogit",
    "MultinomialLogitResults",
    "PerfectSeparationError",
    "PerfectSeparationWarning",
    "PersistenceError",
    "__version__",
    "datasets",
    "hypothesis",
    "load",
    "reparam",
    "mnlogit",
    "parquet",
    "plot_decision_regions",
]
