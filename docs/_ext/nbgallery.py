"""A gallery of the notebooks: a thumbnail, title and summary per notebook.

The notebooks live in ``notebooks/`` at the top of the repository and are committed with their
outputs; :func:`sync_notebooks` copies them into ``docs/notebooks/`` (not committed) so that
myst-nb renders them, without executing them, as pages of the site.  The directive::

    .. notebook-gallery::

draws one card per notebook in ``docs/notebooks/``: the first image the notebook outputs (its
thumbnail, written to ``docs/_generated/thumbs/``), its title (the first heading) linked to its
page, and the first paragraph of its introduction.  A notebook without a plot gets a warning,
so ``sphinx -W`` fails on it.
"""

from __future__ import annotations

import base64
import re
import shutil
from pathlib import Path

import nbformat
from docutils import nodes
from sphinx import addnodes
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)

NOTEBOOKS = "notebooks"  # the folder, both at the top of the repository and under docs/
THUMBS = "_generated/thumbs"


def sync_notebooks(srcdir: Path) -> None:
    """Copy ``../notebooks/*.ipynb`` into ``<srcdir>/notebooks``; a file whose bytes are
    unchanged is left alone (Sphinx then does not read it again), a removed one is deleted."""
    source = srcdir.parent / NOTEBOOKS
    target = srcdir / NOTEBOOKS
    target.mkdir(exist_ok=True)
    wanted = {p.name: p for p in sorted(source.glob("*.ipynb"))}
    for stale in target.glob("*.ipynb"):
        if stale.name not in wanted:
            stale.unlink()
    for name, path in wanted.items():
        dest = target / name
        if not dest.exists() or dest.read_bytes() != path.read_bytes():
            shutil.copyfile(path, dest)


def _summary(nb) -> tuple[str, str]:
    """The notebook's title (first markdown heading) and its summary: the notebook metadata's
    ``gallery.summary`` if set, else the first paragraph of prose."""
    title, summary = "", nb.metadata.get("gallery", {}).get("summary", "")
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        for block in re.split(r"\n\s*\n", cell.source):
            block = block.strip()
            if not title and block.startswith("# "):
                title = block[2:].splitlines()[0].strip()
            elif title and not summary and block and not block.startswith(("#", "$$", "|", "!")):
                summary = " ".join(block.split())
                break
        if title and summary:
            break
    return title, summary


def _first_png(nb) -> bytes | None:
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if "image/png" in data:
                return base64.b64decode(data["image/png"])
    return None


def _inline(text: str) -> list[nodes.Node]:
    """Nodes for a line of markdown prose: ``code`` spans and ``$math$`` kept, emphasis
    markers dropped."""
    out: list[nodes.Node] = []
    for part in re.split(r"(`[^`]+`|\$[^$]+\$)", text):
        if part.startswith("`"):
            out.append(nodes.literal(part[1:-1], part[1:-1]))
        elif part.startswith("$"):
            out.append(nodes.math(part[1:-1], part[1:-1]))
        elif part:
            out.append(nodes.Text(re.sub(r"\*+([^*]+)\*+", r"\1", part)))
    return out


class NotebookGallery(SphinxDirective):
    has_content = False

    def run(self) -> list[nodes.Node]:
        srcdir = Path(self.env.srcdir)
        thumbs = srcdir / THUMBS
        thumbs.mkdir(parents=True, exist_ok=True)
        grid = nodes.container(classes=["nb-gallery"])
        for path in sorted((srcdir / NOTEBOOKS).glob("*.ipynb")):
            self.env.note_dependency(str(path))
            nb = nbformat.read(path, as_version=4)
            title, summary = _summary(nb)
            docname = f"{NOTEBOOKS}/{path.stem}"
            card = nodes.container(classes=["nb-gallery-card"])
            png = _first_png(nb)
            if png is None:
                logger.warning(
                    "notebook %s has no plot output for its gallery thumbnail",
                    path.name,
                    location=(self.env.docname, self.lineno),
                )
            else:
                thumb = thumbs / f"{path.stem}.png"
                if not thumb.exists() or thumb.read_bytes() != png:
                    thumb.write_bytes(png)
                image = nodes.image(uri=f"/{THUMBS}/{path.stem}.png", alt=title)
                uri = self.env.app.builder.get_relative_uri(self.env.docname, docname)
                card += nodes.reference("", "", image, refuri=uri, internal=True)
            # The title links through the std domain, so a missing page is a warning.
            ref = addnodes.pending_xref(
                "",
                refdomain="std",
                reftype="doc",
                reftarget=f"/{docname}",
                refexplicit=True,
                refwarn=True,
            )
            ref += nodes.inline(title, title)
            card += nodes.paragraph(
                "", "", nodes.strong("", "", ref), classes=["nb-gallery-title"]
            )
            if summary:
                card += nodes.paragraph("", "", *_inline(summary), classes=["nb-gallery-summary"])
            grid += card
        return [grid]


def _sync(app) -> None:
    sync_notebooks(Path(app.srcdir))


def setup(app):
    app.connect("builder-inited", _sync)
    app.add_directive("notebook-gallery", NotebookGallery)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
