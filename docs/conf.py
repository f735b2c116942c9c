"""Sphinx configuration: user guide (Markdown), API reference (numpydoc) and
a gallery built from ``examples/`` (sphinx-gallery).

Build with ``python -m sphinx -W -b html docs docs/_build/html``. With
``SKOT_DOCS_QUICK=1`` the gallery examples run with reduced settings, as
in CI.
"""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_NUM_THREADS", "2")

import skot  # noqa: E402

project = "skot"
author = "the skot developers"
copyright = "2026, the skot developers"
release = skot.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "generated/*.examples", "sg_execution_times.rst"]
myst_heading_anchors = 3

autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": False}
numpydoc_show_class_members = False
numpydoc_validation_checks = set()

# No network at build time: intersphinx inventories are not fetched.
intersphinx_mapping = {}

sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"moons_to_checkerboard\.py",
    "download_all_examples": False,
    "reference_url": {"skot": None},
    "doc_module": ("skot",),
    "backreferences_dir": None,
    "remove_config_comments": True,
    "min_reported_time": 0,
}

html_theme = "alabaster"
html_static_path = []
templates_path = ["_templates"]
html_title = "skot"


def _skip_sklearn_plumbing(app, what, name, obj, skip, options):
    # scikit-learn's generated metadata-routing setters and its
    # get/set_params document themselves in scikit-learn's docs, with
    # references into its glossary that do not resolve here.
    if name.endswith("_request") or name in {
        "get_metadata_routing",
        "get_params",
        "set_params",
        "set_output",
        "fit_predict",
    }:
        return True
    return skip


def setup(app):
    app.connect("autodoc-skip-member", _skip_sklearn_plumbing)
