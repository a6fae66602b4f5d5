"""``import multilogit`` loads no heavy optional module; the names loaded later still work.

Import time itself is not asserted (shared machines are noisy): what is asserted is which
modules get imported, in a fresh interpreter, so that an eager import added back fails here.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest
from scipy import stats

import multilogit
from multilogit.inference import distributions
from multilogit.lazy import lazy_module

# What NumPy, pandas and Numba import is paid by every session anyway (pandas itself imports
# pyarrow when it is installed); what multilogit adds on top is checked.
BASELINE = "import numpy, pandas, numba"

# Imported at their first use only.  Top-level packages, or a "package.module" prefix.
HEAVY = (
    "statsmodels",
    "matplotlib",
    "dask",
    "distributed",
    "pyarrow",
    "patsy",
    "sklearn",
    "scipy.linalg",
    "scipy.stats",
    "scipy.optimize",
    "scipy.sparse",
    "scipy.special",
)


def _new_modules(code: str) -> list[str]:
    """Modules that ``code`` imports in a fresh interpreter beyond :data:`BASELINE`."""
    prog = "\n".join(
        [
            f"import json, sys; {BASELINE}",
            "before = set(sys.modules)",
            code,
            "print(json.dumps(sorted(set(sys.modules) - before)))",
        ]
    )
    out = subprocess.run(
        [sys.executable, "-c", prog], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out.splitlines()[-1])


def _heavy(modules: list[str], heavy=HEAVY) -> list[str]:
    return [m for m in modules if any(m == h or m.startswith(h + ".") for h in heavy)]


def test_import_loads_no_heavy_module():
    new = _new_modules("import multilogit")
    assert "multilogit.model" in new  # the check sees the package's own imports
    assert _heavy(new) == []
    # Nothing of SciPy: any part of it brings its array-API layer, which imports NumPy's f2py
    # and testing (0.1 s); the first fit pays that, as Numba's first kernel load does anyway.
    assert _heavy(new, ("scipy",)) == []


def test_heavy_check_sees_an_eager_import():
    """The check above can fail: a module importing scipy.stats is reported."""
    assert _heavy(_new_modules("import scipy.stats")) != []
    assert _heavy(["scipy.stats._stats_py", "scipy.fft", "patsy"]) == [
        "scipy.stats._stats_py",
        "patsy",
    ]
    # Nothing of SciPy is in the baseline: a module importing scipy.linalg is reported.
    assert _heavy(_new_modules("import scipy.linalg"), ("scipy",)) != []


FIT_ARRAYS = """
import numpy as np, multilogit as ml
rng = np.random.default_rng(0)
X = np.column_stack([np.ones(300), rng.standard_normal((300, 2))])
res = ml.MultinomialLogit(rng.integers(0, 3, 300), X).fit()
res.pvalues, res.conf_int(), res.llr_pvalue, res.bse
"""

FIT_FORMULA = """
import multilogit as ml
res = ml.mnlogit("prog ~ ses + write", ml.datasets.load("hsbdemo"), ref="academic").fit()
res.pvalues, res.conf_int(), res.llr_pvalue
"""


@pytest.mark.slow
def test_a_fit_and_its_pvalues_load_no_heavy_module():
    # Array models never need patsy; factorisations need scipy.linalg, p-values scipy.special.
    # pandas itself loads parts of pyarrow for its string columns (the iteration log's labels).
    heavy = [h for h in HEAVY if h not in ("scipy.linalg", "scipy.special", "pyarrow")]
    assert _heavy(_new_modules(FIT_ARRAYS), heavy) == []
    heavy = [h for h in heavy if h != "patsy"]
    assert _heavy(_new_modules(FIT_FORMULA), heavy) == []


def test_public_names_resolve():
    for name in multilogit.__all__:
        assert getattr(multilogit, name) is not None
    assert set(multilogit.__all__) <= set(dir(multilogit))
    with pytest.raises(AttributeError, match="no_such_name"):
        multilogit.no_such_name  # noqa: B018


def test_star_import_gives_every_public_name():
    namespace: dict = {}
    exec("from multilogit import *", namespace)
    assert set(multilogit.__all__) <= set(namespace)
    assert namespace["hypothesis"] is multilogit.inference.hypothesis
    assert namespace["load"] is multilogit.loading.load


def test_convergence_warning_is_one_class_derived_from_statsmodels():
    from statsmodels.tools.sm_exceptions import ConvergenceWarning as StatsmodelsWarning

    from multilogit import exceptions

    cls = multilogit.ConvergenceWarning
    assert cls is exceptions.ConvergenceWarning
    assert issubclass(cls, StatsmodelsWarning)
    assert (cls.__module__, cls.__qualname__) == ("multilogit.exceptions", "ConvergenceWarning")
    assert pickle.loads(pickle.dumps(cls)) is cls
    assert type(pickle.loads(pickle.dumps(cls("stopped")))) is cls
    # A filter on statsmodels' class still catches multilogit's warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error", StatsmodelsWarning)
        with pytest.raises(cls):
            warnings.warn("stopped", cls, stacklevel=1)
    with pytest.raises(AttributeError):
        exceptions.NoSuchWarning  # noqa: B018


def test_lazy_module_imports_at_first_attribute():
    mod = lazy_module("json")
    assert "not yet imported" in repr(mod)
    assert mod.dumps([1]) == json.dumps([1])
    assert mod.load() is json
    assert "imported" in repr(mod) and "not yet" not in repr(mod)
    assert "dumps" in dir(mod)
    # Names set or deleted through the stand-in are the module's (as monkeypatch does).
    mod.multilogit_probe = 1
    assert json.multilogit_probe == 1
    del mod.multilogit_probe
    assert not hasattr(json, "multilogit_probe")
    with pytest.raises(ModuleNotFoundError):
        lazy_module("multilogit_no_such_module").anything  # noqa: B018


# -- the distributions used instead of scipy.stats: the same bits -------------------------------

_RNG = np.random.default_rng(1)
_X = np.concatenate(
    [
        _RNG.standard_normal(2000) * 5,
        _RNG.standard_normal(200) * 40,
        [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-300, 38.0, 40.0],
    ]
)
_Q = np.concatenate([_RNG.uniform(size=2000), [0.0, 1.0, -0.1, 1.1, np.nan, 0.5, 1e-300]])
_STAT = np.concatenate([_RNG.exponential(size=2000) * 20, [0.0, -1.0, np.inf, np.nan, 1e5]])


def _same(a, b) -> bool:
    return np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True)


def test_normal_matches_scipy_stats_bitwise():
    assert _same(distributions.norm.sf(_X), stats.norm.sf(_X))
    assert _same(distributions.norm.ppf(_Q), stats.norm.ppf(_Q))
    # Scalars in, NumPy scalars out, as scipy.stats.
    assert type(distributions.norm.sf(1.5)) is type(stats.norm.sf(1.5))
    assert distributions.norm.ppf(0.975) == stats.norm.ppf(0.975)
    assert _same(distributions.norm.sf([1, 2]), stats.norm.sf([1, 2]))


@pytest.mark.parametrize("df", [0.5, 1, 2, 3, 7, 20, 200, 0, -1, np.nan, np.inf])
def test_chi2_matches_scipy_stats_bitwise(df):
    assert _same(distributions.chi2.sf(_STAT, df), stats.chi2.sf(_STAT, df))
    assert _same(distributions.chi2.sf(3.0, df), stats.chi2.sf(3.0, df))
    assert type(distributions.chi2.sf(3.0, df)) is type(stats.chi2.sf(3.0, df))
