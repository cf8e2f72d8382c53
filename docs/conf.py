"""Sphinx configuration of the sparse_query documentation.

Build locally from the repository root::

    pip install -e ".[docs]" && python -m sphinx -W -b html docs docs/_build/html
"""
import os
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the gallery imports benchmarks.harness from the clone
os.environ.setdefault("MPLBACKEND", "Agg")

import sparse_query  # noqa: E402

project = "sparse_query"
author = "the sparse_query developers"
copyright = "the sparse_query developers"
release = sparse_query.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "examples", "auto_examples/*.ipynb",
                    "auto_examples/*.py", "auto_examples/*.zip"]
templates_path = ["_templates"]

# -- API reference: autosummary pages from the docstrings (numpydoc format) -----------------
autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"members": False, "inherited-members": False}
autodoc_typehints = "none"          # the numpydoc sections carry the types
numpydoc_show_class_members = False  # members are listed by the autosummary templates
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# -- MyST (the prose pages are Markdown) ---------------------------------------------------
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3

# -- example gallery: every docs/examples/plot_*.py runs in the build ------------------------
sphinx_gallery_conf = {
    "examples_dirs": "examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"__init__\.py",
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "remove_config_comments": True,
    "abort_on_example_error": True,
    "plot_gallery": "True",
    "reset_modules": ("matplotlib",),
}

html_theme = "pydata_sphinx_theme"
html_title = f"sparse_query {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
html_static_path = []

warnings.filterwarnings("ignore", category=UserWarning,
                        message="Matplotlib is currently using agg")
