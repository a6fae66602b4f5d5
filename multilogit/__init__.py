"""multilogit: multinomial logistic (softmax) regression in the style of statsmodels.

>>> import multilogit
>>> df = multilogit.datasets.load("hsbdemo")
>>> res = multilogit.mnlogit("prog ~ ses + write", df, ref="academic").fit()
>>> print(res.summary())  # doctest: +SKIP
"""

from . import datasets, hypothesis, reparam
from .exceptions import (
    ConvergenceWarning,
    DataError,
    FitError,
    MultilogitError,
    PerfectSeparationError,
    PerfectSeparationWarning,
    PersistenceError,
)
from .model import MultinomialLogit, mnlogit
from .persistence import load
from .plotting import plot_decision_regions
from .results import MultinomialLogitResults

__version__ = "0.1.0"

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
    "datasets",
    "hypothesis",
    "load",
    "reparam",
    "mnlogit",
    "plot_decision_regions",
]
