"""multilogit: multinomial logistic (softmax) regression in the style of statsmodels.

>>> import multilogit
>>> df = multilogit.datasets.load("hsbdemo")
>>> res = multilogit.mnlogit("prog ~ ses + write", df, ref="academic").fit()
>>> print(res.summary())  # doctest: +SKIP
"""

from typing import TYPE_CHECKING

from . import datasets
from .data.parquet import parquet
from .exceptions import (
    DataError,
    FitError,
    MultilogitError,
    PerfectSeparationError,
    PerfectSeparationWarning,
    PersistenceError,
)
from .model import MultinomialLogit, mnlogit
from .results.results import MultinomialLogitResults
from .version import __version__

if TYPE_CHECKING:  # for type checkers and editors; at run time see __getattr__
    from .exceptions import ConvergenceWarning
    from .inference import hypothesis, reparam
    from .loading import load
    from .results.margins_plot import plot_margins
    from .results.plotting import plot_decision_regions
    from .results.tables import ModelTable, model_table, summary_col

__all__ = [
    "ConvergenceWarning",
    "DataError",
    "FitError",
    "MultilogitError",
    "MultinomialLogit",
    "ModelTable",
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
    "model_table",
    "parquet",
    "plot_decision_regions",
    "plot_margins",
    "summary_col",
]


def __getattr__(name: str):
    # The names a fit does not need are imported at their first use (PEP 562): the hypothesis
    # tests, reparameterisations, saved-results loader and plots bring patsy, the margins code
    # and more, and ConvergenceWarning brings statsmodels (its base class).  Each is then kept
    # here, so later lookups are plain attribute reads.
    if name == "ConvergenceWarning":
        from .exceptions import ConvergenceWarning as value
    elif name == "hypothesis":
        from .inference import hypothesis as value
    elif name == "reparam":
        from .inference import reparam as value
    elif name == "load":
        from .loading import load as value
    elif name == "plot_decision_regions":
        from .results.plotting import plot_decision_regions as value
    elif name in ("model_table", "summary_col", "ModelTable"):
        from .results import tables

        value = getattr(tables, name)
    elif name == "plot_margins":
        from .results.margins_plot import plot_margins as value
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
