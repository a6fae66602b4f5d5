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
