"""The package's imports point one way: numerics at the bottom, training
stages above them, estimators above those, public helpers on top."""

import ast
from pathlib import Path

import pytest

import skot

# Every module of skot, bottom first. A module may import the modules of
# the layers below its own, and those of its own layer listed before it;
# anything else is an upward import (or a cycle).
LAYERS = {
    "plumbing": ["exceptions", "_device", "_validation", "_weights", "_conditions", "_domains"],
    "numerics": [
        "_nets",
        "_ode",
        "_potential",
        "_cnf",
        "_log_density",
        "_ot",
        "_criteria",
        "_semidual",
        "_ratio",
        "_bridges",
        "_gaussian_baseline",
        "_gaussian_flow",
    ],
    "training": [
        "_engine",
        "_flow_matching",
        "_reflow",
        "_refinement",
        "_potential_training",
        "_jko",
    ],
    "estimators": ["_base", "_otflow", "_qflow", "_telescoping", "_sjko"],
    "public helpers": ["_mutual_information", "metrics", "da", "datasets", "io"],
    "package": ["__init__"],
}
ORDER = [module for modules in LAYERS.values() for module in modules]
PACKAGE = Path(skot.__file__).parent


def skot_imports(path: Path) -> set[str]:
    """The skot modules a source file imports, at its top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:  # from . import x / from .x import y
                names = [node.module] if node.module else [a.name for a in node.names]
            elif node.level == 0 and node.module and node.module.split(".")[0] == "skot":
                parts = node.module.split(".")
                names = [parts[1]] if len(parts) > 1 else [a.name for a in node.names]
            else:
                continue
            found.update(name.split(".")[0] for name in names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "skot" and len(parts) > 1:
                    found.add(parts[1])
    return found


def upward_imports(path: Path) -> list[str]:
    """``importer -> imported`` for each import that does not point down."""
    importer = path.stem
    rank = ORDER.index(importer)
    return [
        f"{importer} -> {imported}"
        for imported in sorted(skot_imports(path))
        if ORDER.index(imported) >= rank
    ]


def test_every_module_has_a_layer():
    modules = {path.stem for path in PACKAGE.glob("*.py")}
    assert modules == set(ORDER), modules ^ set(ORDER)


@pytest.mark.parametrize("module", ORDER)
def test_imports_point_down(module):
    assert upward_imports(PACKAGE / f"{module}.py") == []


def test_an_upward_import_is_caught(tmp_path):
    # The check itself, on the cycle this layering removed (an estimator
    # reaching up into the public metrics), written inside a function.
    source = tmp_path / "_qflow.py"
    source.write_text("def score():\n    from .metrics import transport_score\n")
    assert upward_imports(source) == ["_qflow -> metrics"]
    source.write_text("from skot import metrics\nimport skot.da\n")
    assert upward_imports(source) == ["_qflow -> da", "_qflow -> metrics"]
