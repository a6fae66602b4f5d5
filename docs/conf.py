"""Sphinx configuration: ``python -m sphinx -W -b html docs docs/_build/html``.

The notebooks are rendered from their stored outputs (myst-nb, ``nb_execution_mode = "off"``):
the test suite executes them (``tests/test_notebooks.py``), the docs build never does.
"""

import os
import sys

sys.path.insert(0, os.path.abspath(".."))
sys.path.insert(0, os.path.abspath("_ext"))

import multilogit  # noqa: E402

project = "multilogit"
author = "multilogit developers"
copyright = "2026, multilogit developers"
version = release = multilogit.__version__
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_nb",
    "nbgallery",
]
numpydoc_show_class_members = False
autodoc_member_order = "bysource"
exclude_patterns = ["_build", "_generated", "**.ipynb_checkpoints"]

# Notebooks: rendered with the outputs committed in notebooks/, never executed here.
nb_execution_mode = "off"
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath"]

html_theme = "alabaster"
html_theme_options = {"page_width": "1100px", "sidebar_width": "230px"}
html_static_path = ["_static"]
html_css_files = ["gallery.css"]
html_title = f"multilogit {release}"

# Nitpicky builds (``-n``, as in tests/test_docs.py) fail on a cross-reference without a target.
# Objects of other packages have none here: intersphinx would download their inventories at
# every build, and the docs build offline.  So references into these packages, and only these,
# are let through; numpydoc's parameter types are plain text (numpydoc_xref_param_type is off).
# A reference to a multilogit object must resolve.
_EXTERNAL = (
    "numpy|pandas|scipy|statsmodels|patsy|matplotlib|sklearn|pyarrow|dask|numba|threadpoolctl"
)
_STDLIB = r"collections\.abc|copyreg|warnings"
nitpick_ignore_regex = [
    (r"py:(class|mod|func|meth|attr|data|obj|exc)", rf"({_EXTERNAL}|{_STDLIB})(\..+)?"),
]
