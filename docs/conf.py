"""Sphinx configuration: built offline (`make docs`), tutorials executed, warnings as errors."""

from __future__ import annotations

import sys
from datetime import date
from importlib.metadata import version as _version
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent / "src"))

project = "geneverse"
author = "geneverse developers"
copyright = f"{date.today().year}, {author}"
release = _version("geneverse")

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx_autodoc_typehints",
]

# the tutorials live in ../tutorials (where the tests run them); the build copies them in
# .rst first: autosummary writes its stub pages with the first suffix
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "scripts", "README.md", "**.ipynb_checkpoints"]
templates_path = ["_templates"]

myst_enable_extensions = ["colon_fence", "dollarmath"]
myst_heading_anchors = 3
nb_execution_mode = "force"  # every build runs every tutorial on the bundled data
nb_execution_timeout = 600
nb_execution_raise_on_error = True
nb_execution_in_temp = True  # files the tutorials write stay out of the source tree
nb_merge_streams = True

autosummary_generate = True
autodoc_default_options = {"members": True, "undoc-members": False}
autodoc_member_order = "bysource"
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
napoleon_use_param = True
napoleon_use_ivar = True  # dataclass fields are documented by autodoc; no duplicate entries
# our Returns sections are prose ("None, or the modified copy. Writes ..."), not "type : text" items
napoleon_custom_sections = ["Returns"]
typehints_defaults = "comma"
typehints_document_rtype = False
always_document_param_types = False

html_theme = "sphinx_book_theme"
html_title = "geneverse"
html_static_path: list[str] = []
html_theme_options = {"show_toc_level": 2}

# offline: no intersphinx, no remote images
suppress_warnings = ["myst.header", "config.cache"]
nitpicky = False
