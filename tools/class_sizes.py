"""Lines of each estimator class: in all, and of code (without docstrings,
comments or blank lines).

    python tools/class_sizes.py [ROOT]   # ROOT: a checkout, this one by default
"""

import ast
import pathlib
import sys

CLASSES = {
    "QFlowTransport": "_qflow.py",
    "OTFlowDensity": "_otflow.py",
    "TelescopingRatioEstimator": "_telescoping.py",
    "SJKOGenerator": "_sjko.py",
}


def _docstring_lines(node) -> set[int]:
    lines = set()
    for n in ast.walk(node):
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and n.body:
            first = n.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                if isinstance(first.value.value, str):
                    lines |= set(range(first.lineno, first.end_lineno + 1))
    return lines


def code_lines(text: list[str], node) -> int:
    lines = set(range(node.lineno, node.end_lineno + 1)) - _docstring_lines(node)
    return sum(1 for i in lines if text[i - 1].strip() and not text[i - 1].strip().startswith("#"))


def main(root: pathlib.Path) -> None:
    for name, module in CLASSES.items():
        source = (root / "skot" / module).read_text()
        text = source.splitlines()
        for node in ast.parse(source).body:
            if isinstance(node, ast.ClassDef) and node.name == name:
                total = node.end_lineno - node.lineno + 1
                print(f"{name:28s} {total:5d} lines, {code_lines(text, node):4d} code lines")


if __name__ == "__main__":
    here = pathlib.Path(__file__).resolve().parents[1]
    main(pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else here)
