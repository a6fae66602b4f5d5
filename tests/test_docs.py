"""The documentation site builds without a warning and documents what it should.

One Sphinx build (``-W -n --keep-going``: any warning fails it, e.g. a broken ``:doc:`` or
``:ref:`` link, a ``:func:``/``:class:``/``:mod:`` reference or a type hint naming a multilogit
object that is not documented (nitpicky mode; other packages' names are let through by
``nitpick_ignore_regex`` in ``docs/conf.py``), bad reST, a numpydoc error, a notebook without a
thumbnail) into a temporary folder; the notebooks are rendered from their stored outputs,
never executed here (they are executed by ``tests/test_notebooks.py``).
"""

import re
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

pytest.importorskip("sphinx")
pytest.importorskip("numpydoc")
pytest.importorskip("myst_nb")
nbformat = pytest.importorskip("nbformat")

ROOT = Path(__file__).parents[1]
DOCS = ROOT / "docs"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("docs")
    cmd = [sys.executable, "-m", "sphinx", "-W", "-n", "--keep-going", "-q", "-b", "html"]
    cmd += ["-d", str(out / "doctrees"), str(DOCS), str(out / "html")]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, f"sphinx failed:\n{proc.stdout}\n{proc.stderr}"
    return out / "html"


def _inventory(html: Path) -> set[str]:
    """Names of the objects Sphinx documented (``objects.inv``: four header lines, then
    zlib-compressed lines ``name domain:role priority uri display``)."""
    raw = (html / "objects.inv").read_bytes()
    body = zlib.decompress(raw.split(b"\n", 4)[4]).decode()
    return {line.split(" ", 1)[0] for line in body.splitlines() if " py:" in line}


def test_every_public_name_is_in_the_api_reference(site):
    import multilogit

    documented = _inventory(site)
    missing = []
    for name in multilogit.__all__:
        obj = getattr(multilogit, name)
        # Documented under its public name, or where it is defined.
        targets = {f"multilogit.{name}"}
        if hasattr(obj, "__qualname__"):
            targets.add(f"{obj.__module__}.{obj.__qualname__}")
        elif hasattr(obj, "__name__"):  # a module
            targets.add(obj.__name__)
        if not targets & documented:
            missing.append(name)
    assert not missing, f"public names missing from the API reference: {missing}"


def test_gallery_shows_every_notebook_with_a_thumbnail(site):
    gallery = (site / "gallery.html").read_text()
    for path in NOTEBOOKS:
        assert f'href="notebooks/{path.stem}.html"' in gallery, path.name
        assert f'src="_images/{path.stem}.png"' in gallery, path.name
        assert (site / "_images" / f"{path.stem}.png").stat().st_size > 1000


def test_notebook_pages_render_the_stored_outputs(site):
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        stored = sum(
            "image/png" in out.get("data", {})
            for cell in nb.cells
            for out in cell.get("outputs", [])
        )
        page = (site / "notebooks" / f"{path.stem}.html").read_text()
        assert stored >= 1, f"{path.name} has no plot output"
        assert len(re.findall(r"<img ", page)) >= stored, path.name
        assert "Traceback" not in page, path.name


def test_index_links_the_learning_pages(site):
    index = (site / "index.html").read_text()
    for page in ("gallery.html", "coming_from.html", "api.html", "changelog.html"):
        assert f'href="{page}"' in index, page


def test_readme_links_to_the_docs_and_the_gallery():
    text = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\(([^)#]+)\)", text)
    relative = [link for link in links if not re.match(r"[a-z]+://", link)]
    assert any(link.startswith("docs/") for link in relative)
    assert any(link.startswith("notebooks/") for link in relative)
    for link in relative:
        assert (ROOT / link).exists(), f"README links to a missing file: {link}"
