"""The examples of docs/tables.rst run, and each output shown is what its example prints."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

PAGE = Path(__file__).parents[1] / "docs" / "tables.rst"
BLOCK = re.compile(r"^\.\. code-block:: (\w+)\n\n((?:(?:   .*)?\n)+)", re.M)


def _blocks():
    for lang, body in BLOCK.findall(PAGE.read_text()):
        lines = body.rstrip("\n").splitlines()
        yield lang, "\n".join(line[3:] for line in lines)


def test_tables_page_outputs_are_what_the_examples_print():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    namespace: dict = {}
    printed = None
    checked = 0
    try:
        for lang, text in _blocks():
            if lang == "python":
                buf = io.StringIO()
                with contextlib.redirect_stdout(buf):
                    exec(compile(text, str(PAGE), "exec"), namespace)  # noqa: S102 - our docs
                printed = buf.getvalue().rstrip("\n")
            else:
                assert printed, f"a {lang} block follows no example that prints"
                assert [ln.rstrip() for ln in printed.splitlines()] == text.splitlines()
                printed = None
                checked += 1
    finally:
        plt.close("all")
    # Text (long and wide), LaTeX, HTML, Markdown and the DataFrame.
    assert checked == 6
