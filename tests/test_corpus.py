"""Run the adversarial corpus (``tests/corpus``): every case must give its expected outcome."""

import importlib
import pkgutil
import re
import warnings

import pytest

from tests import corpus
from tests.corpus import Raises, Right, Warns


def _cases():
    found = []
    for info in sorted(pkgutil.iter_modules(corpus.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"tests.corpus.{info.name}")
        found.extend(module.CASES)
    return found


CASES = _cases()


def test_case_names_are_unique():
    names = [case.name for case in CASES]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_case(case):
    expect = case.expect
    if isinstance(expect, Right):
        expect.check(case.run())
    elif isinstance(expect, Raises):
        with pytest.raises(expect.error, match=re.escape(expect.fragment)):
            case.run()
    elif isinstance(expect, Warns):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            value = case.run()
        messages = [str(w.message) for w in caught if issubclass(w.category, expect.warning)]
        assert any(expect.fragment in m for m in messages), messages
        if expect.check is not None:
            expect.check(value)
    else:
        raise TypeError(f"unknown expectation {expect!r}")
