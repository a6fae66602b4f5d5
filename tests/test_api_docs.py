"""The API reference is complete and the documentation's examples run.

The docs are built once with Sphinx into a temporary directory; its object inventory
(``objects.inv``, what intersphinx reads) lists every documented name.  Every public name of
the package (``multilogit.__all__``, the model, the results, each ``multilogit.inference``
module and the objects they return: margins, predictions, test results) must be in it, so a
public name added without a docs entry fails here.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import posixpath
import re
from pathlib import Path

import pytest

import multilogit

ROOT = Path(__file__).parents[1]
DOCS = ROOT / "docs"


@pytest.fixture(scope="module")
def inventory(tmp_path_factory) -> dict[str, set[str]]:
    sphinx_cmd = pytest.importorskip("sphinx.cmd.build")
    pytest.importorskip("numpydoc")
    from sphinx.util.inventory import InventoryFile

    out = tmp_path_factory.mktemp("docs")
    # -W -n: a warning (a name autodoc cannot import, a cross-reference without a target)
    # fails the build.
    status = sphinx_cmd.build_main(["-W", "-n", "-q", "-b", "html", str(DOCS), str(out)])
    assert status == 0, "the docs do not build without warnings"
    with open(out / "objects.inv", "rb") as f:
        inv = InventoryFile.load(f, "", posixpath.join)
    return {kind: set(entries) for kind, entries in inv.items() if kind.startswith("py:")}


def _resolve(dotted: str):
    """The object a documented dotted name refers to, or None."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for attr in parts[cut:]:
                obj = inspect.getattr_static(obj, attr)
        except AttributeError:
            return None
        return obj
    return None


def _key(obj):
    # Properties and functions are matched by identity; plain values by their name elsewhere.
    return id(obj)


def _documented(inventory) -> tuple[set, set[str]]:
    names = set().union(*inventory.values())
    return {_key(o) for n in names if (o := _resolve(n)) is not None}, names


def _own_members(cls) -> list[str]:
    """Public methods and properties ``cls`` gets from the package (not from object,
    pandas, scikit-learn...)."""
    out = []
    for name in dir(cls):
        if name.startswith("_"):
            continue
        owner = next((k for k in cls.__mro__ if name in k.__dict__), None)
        if owner is None or not owner.__module__.startswith("multilogit"):
            continue
        member = owner.__dict__[name]
        if callable(member) or isinstance(member, property | classmethod | staticmethod):
            out.append(name)
        elif type(member).__name__ == "cached_property":
            out.append(name)
    return out


def _inference_modules() -> list:
    import multilogit.inference as pkg

    return [
        importlib.import_module(f"multilogit.inference.{m.name}")
        for m in pkgutil.iter_modules(pkg.__path__)
        if not m.name.startswith("_")
    ]


def _module_public(mod) -> list[str]:
    names = getattr(mod, "__all__", None)
    if names is None:
        names = [
            n
            for n, o in vars(mod).items()
            if not n.startswith("_")
            and (inspect.isfunction(o) or inspect.isclass(o))
            and o.__module__ == mod.__name__
        ]
    return list(names)


def _public_classes() -> dict[str, type]:
    """The classes whose members a user touches: the model, the results, the estimator and
    every class an inference module makes public (margins, predictions, test results)."""
    classes = {
        "multilogit.MultinomialLogit": multilogit.MultinomialLogit,
        "multilogit.MultinomialLogitResults": multilogit.MultinomialLogitResults,
    }
    for mod in _inference_modules():
        for name in _module_public(mod):
            obj = getattr(mod, name)
            if inspect.isclass(obj) and not issubclass(obj, BaseException):
                classes[f"{mod.__name__}.{name}"] = obj
    try:
        from multilogit.sklearn import MultinomialLogitClassifier
    except ImportError:  # scikit-learn is optional
        pass
    else:
        classes["multilogit.sklearn.MultinomialLogitClassifier"] = MultinomialLogitClassifier
    return classes


def _missing(inventory) -> list[str]:
    keys, names = _documented(inventory)
    missing = []
    top = [(f"multilogit.{n}", getattr(multilogit, n)) for n in multilogit.__all__]
    for mod in _inference_modules():
        top += [(f"{mod.__name__}.{n}", getattr(mod, n)) for n in _module_public(mod)]
    for label, obj in top:
        if inspect.ismodule(obj):
            if obj.__name__ not in inventory.get("py:module", ()):
                missing.append(label)
        elif callable(obj) and _key(obj) not in keys:
            missing.append(label)
        elif not callable(obj) and label not in names:
            missing.append(label)
    # Members: documented under any name of their class.
    paths: dict[int, set[str]] = {}
    for n in inventory.get("py:class", ()):
        obj = _resolve(n)
        if obj is not None:
            paths.setdefault(id(obj), set()).add(n)
    for label, cls in _public_classes().items():
        documented_as = paths.get(id(cls), set())
        if not documented_as:
            missing.append(label)
            continue
        for member in _own_members(cls):
            # An inherited member may be documented on the class that defines it.
            owner = next(k for k in cls.__mro__ if member in k.__dict__)
            where = documented_as | paths.get(id(owner), set())
            if not any(f"{p}.{member}" in names for p in where):
                missing.append(f"{label}.{member}")
    return sorted(set(missing))


def test_every_public_name_is_in_the_api_reference(inventory):
    missing = _missing(inventory)
    assert missing == [], "not in the docs (add them to docs/api.rst): " + ", ".join(missing)


def test_the_check_can_fail(inventory):
    """A method, a class or a module function left out of the docs is reported."""
    left_out = {
        "multilogit.MultinomialLogitResults.get_margeff",
        "multilogit.inference.margins.MarginalEffects",
        "multilogit.inference.hypothesis.wald_test",
    }
    reduced = {k: v - left_out for k, v in inventory.items()}
    assert _missing(reduced) == sorted(left_out)


# -- the examples of the docs run -------------------------------------------------------------

_BLOCK = re.compile(r"^\.\. code-block:: python\n((?:\n|[ \t]+.*\n)+)", re.M)


def _blocks(path: Path) -> list[str]:
    out = []
    for m in _BLOCK.finditer(path.read_text()):
        lines = m.group(1).splitlines()
        indent = min(len(ln) - len(ln.lstrip()) for ln in lines if ln.strip())
        out.append("\n".join(ln[indent:] for ln in lines))
    return out


PAGES = sorted(p for p in DOCS.glob("*.rst") if _blocks(p))


def _write_trips(directory: Path) -> None:
    """The Parquet files the large-data page reads: trips by mode, simulated from a
    multinomial logit so the fit is well defined."""
    import numpy as np
    import pandas as pd

    pytest.importorskip("pyarrow")
    pytest.importorskip("dask.dataframe")
    rng = np.random.default_rng(0)
    n = 3000
    df = pd.DataFrame(
        {
            "region": rng.choice(["north", "south", "east"], n),
            "dist": rng.gamma(2.0, 5.0, n),
            "fare": rng.uniform(1.0, 20.0, n),
            "cid": rng.integers(0, 40, n),
        }
    )
    eta = np.column_stack([np.zeros(n), 0.5 - 0.05 * df["dist"], -0.5 + 0.3 * np.log(df["fare"])])
    p = np.exp(eta) / np.exp(eta).sum(axis=1, keepdims=True)
    u = rng.uniform(size=(n, 1))
    df["mode"] = np.array(["car", "bus", "train"])[(u > p.cumsum(axis=1)).sum(axis=1)]
    (directory / "trips").mkdir()
    for k, part in enumerate((df.iloc[: n // 2], df.iloc[n // 2 :])):
        part.to_parquet(directory / "trips" / f"part-{k}.parquet", index=False)


# Files a page's examples read, written into the directory they run in.
SETUP = {"large_data": _write_trips}


@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_docs_examples_run(page, monkeypatch, tmp_path):
    """The ``code-block:: python`` examples of a page run in order, in one namespace."""
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)  # examples that save files write here
    if page.stem in SETUP:
        SETUP[page.stem](tmp_path)
    namespace: dict = {"__name__": "__docs__"}
    for k, block in enumerate(_blocks(page)):
        code = compile(block, f"{page.name}[block {k}]", "exec")
        exec(code, namespace)  # noqa: S102 - our own docs
