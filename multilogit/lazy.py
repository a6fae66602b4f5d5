"""Modules imported at their first use, so that ``import multilogit`` stays fast.

scipy.optimize, scipy.sparse, scipy.stats and statsmodels together take longer to import than
NumPy, pandas and Numba; most sessions use them late (a separation check, a summary) or never.
Even scipy.linalg, which every fit uses, waits for the first fit: any part of SciPy brings its
array-API layer, which imports NumPy's f2py and testing packages (0.1 s of a 0.4 s import).
A module-level ``optimize = lazy_module("scipy.optimize")`` stands for the module and imports it
at the first attribute access, so the code that uses it reads as with a plain import.

Nothing is put in ``sys.modules`` before the real import: a test can tell from ``sys.modules``
what ``import multilogit`` loaded.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["LazyModule", "lazy_module"]


class LazyModule:
    """Stands for the module ``name``; imports it at the first attribute access.

    Parameters
    ----------
    name : str
        Absolute dotted name, e.g. ``"scipy.optimize"``.
    """

    __slots__ = ("_name", "_module")

    def __init__(self, name: str):
        self._name = name
        self._module: ModuleType | None = None

    def load(self) -> ModuleType:
        """The module, imported now if it was not yet."""
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return self._module

    def __getattr__(self, attr: str):
        # Only called for names the proxy itself lacks, i.e. the module's.
        return getattr(self.load(), attr)

    def __setattr__(self, attr: str, value) -> None:
        # Setting or deleting a name sets it on the module, as with a plain import (a test's
        # monkeypatch of ``linalg.cho_factor`` patches scipy.linalg itself).
        if attr in LazyModule.__slots__:
            object.__setattr__(self, attr, value)
        else:
            setattr(self.load(), attr, value)

    def __delattr__(self, attr: str) -> None:
        delattr(self.load(), attr)

    def __dir__(self) -> list[str]:
        return dir(self.load())

    def __repr__(self) -> str:
        state = "imported" if self._module is not None else "not yet imported"
        return f"<lazy module {self._name!r} ({state})>"


def lazy_module(name: str) -> LazyModule:
    """A stand-in for the module ``name`` that imports it when an attribute is first read.

    Examples
    --------
    >>> optimize = lazy_module("scipy.optimize")
    >>> optimize.linprog  # doctest: +SKIP
    <function linprog at ...>
    """
    return LazyModule(name)
