"""The code blocks of docs/margins.rst run, in order, in one namespace (a snippet that uses an
undefined name or a changed signature fails here)."""

import re
from pathlib import Path

import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

DOC = Path(__file__).parent.parent / "docs" / "margins.rst"


def _blocks(text):
    out = []
    for m in re.finditer(r"\.\. code-block:: python\n\n((?:   .*\n|\n)+)", text):
        lines = [line[3:] if line.startswith("   ") else line for line in m.group(1).splitlines()]
        out.append("\n".join(lines))
    return out


def test_margins_page_snippets_run():
    blocks = _blocks(DOC.read_text())
    assert len(blocks) == DOC.read_text().count(".. code-block:: python")
    namespace = {}
    try:
        for code in blocks:
            exec(compile(code, str(DOC), "exec"), namespace)
    finally:
        plt.close("all")
    assert namespace["m"].dimensions == ["ses", "write"]
