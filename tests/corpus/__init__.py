"""The adversarial corpus: inputs that once gave a wrong answer, a crash or a hang.

Each module of this package holds a list ``CASES`` of :class:`Case`; ``test_corpus.py`` runs
them all.  A case builds its input and runs it in ``run``; its expectation says which outcome
class is right:

- ``Right(check)``: ``run`` returns a value and ``check(value)`` asserts it is the right answer
  (against an independent computation, never against the package's own intermediate results);
- ``Raises(error, fragment)``: ``run`` raises ``error`` with ``fragment`` in its message;
- ``Warns(warning, fragment, check)``: ``run`` warns with ``fragment`` in the message and
  ``check`` (optional) asserts on the value it returns.

Cases stay in the corpus after the bug is fixed, so the bug cannot come back unnoticed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Right:
    check: Callable[[Any], None]


@dataclass(frozen=True)
class Raises:
    error: type[BaseException]
    fragment: str


@dataclass(frozen=True)
class Warns:
    warning: type[Warning]
    fragment: str
    check: Callable[[Any], None] | None = None


@dataclass(frozen=True)
class Case:
    """One adversarial input: ``name`` is its test id, ``run`` does what a user would do."""

    name: str
    run: Callable[[], Any]
    expect: Right | Raises | Warns
