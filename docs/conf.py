"""Sphinx configuration of the arraylosses documentation.

Build: ``nox -s docs`` (HTML with warnings as errors and nitpicky
cross-references, every docstring example as a doctest, then the built site
opened in headless Chromium by ``docs/check_site.py``).
"""

from __future__ import annotations

import arraylosses

project = "arraylosses"
author = "The arraylosses developers"
copyright = "The arraylosses developers"
release = arraylosses.__version__
version = release

extensions = [
    "myst_parser",
    "numpydoc",
    "sphinx.ext.autodoc",
    "sphinx.ext.doctest",
    "sphinx.ext.mathjax",
    # MathJax from the site itself, not a CDN: the math renders offline too
    "sphinx-mathjax-offline",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
root_doc = "index"

# Every cross-reference must resolve (``-n`` on the command line as well).
nitpicky = True
# No intersphinx: the machines that build this site reach no documentation
# server, so the few references to other projects' objects cannot resolve.
# Each is listed here, by its exact name, rather than silenced by a pattern.
nitpick_ignore = [
    # external object without an inventory: PyTorch's documentation
    ("py:func", "torch.nn.functional.poisson_nll_loss"),
]

# -- autodoc and numpydoc ---------------------------------------------------
# The docstrings say each argument's type in words ("array of shape S"), which
# is what a reader needs; the annotations (``Array = Any``) add nothing and
# would be cross-references to a private alias.
autodoc_typehints = "none"
autodoc_member_order = "bysource"
numpydoc_show_class_members = False
numpydoc_xref_param_type = False
numpydoc_validation_checks: set[str] = set()

# -- doctest ----------------------------------------------------------------
# ``sphinx-build -b doctest`` runs every ``>>>`` example of the docstrings that
# autodoc pulls in, and the ``{doctest}`` blocks of the guides.
doctest_test_doctest_blocks = "default"
doctest_global_setup = "import numpy as np"

# -- MyST --------------------------------------------------------------------
myst_enable_extensions = ["colon_fence", "dollarmath"]
myst_heading_anchors = 3

# -- HTML ------------------------------------------------------------------
html_theme = "furo"
html_title = f"arraylosses {release}"
html_static_path: list[str] = []
html_show_sourcelink = False
