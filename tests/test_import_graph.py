"""The import graph of `src/landmarkflow`, read from the source (every `import`, module-level or inside a function):
no circles, and the lower floors import nothing above them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from landmarkflow.models.zoo import MODELS

PACKAGE_ROOT = Path(__file__).resolve().parents[1] / "src" / "landmarkflow"

BELOW = {
    "landmarkflow.codecs": ("landmarkflow.codecs", "landmarkflow.layouts"),
    "landmarkflow.models": (
        "landmarkflow.models",
        "landmarkflow.codecs",
        "landmarkflow.layouts",
        "landmarkflow.geometry",
    ),
}
"""What each lower package may import: itself and the floors below it."""


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


SOURCES = {module_name(path): path for path in sorted(PACKAGE_ROOT.rglob("*.py"))}


def resolve(name: str) -> str:
    """The module a dotted import name lands in: itself, or the nearest enclosing module (`from m import attr`)."""
    while name not in SOURCES:
        name = name.rpartition(".")[0]
    return name


def imported_names(module: str) -> set[str]:
    """Every `landmarkflow` name `module` imports, at any depth (functions and TYPE_CHECKING blocks too)."""
    path = SOURCES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            source = ".".join(part for part in (base, node.module) if part)
            names.update(f"{source}.{alias.name}" for alias in node.names)
    return {name for name in names if name.split(".")[0] == "landmarkflow"}


BY_STRING = {"landmarkflow.models.zoo": {entry.module for entry in MODELS.values()}}
"""Imports the scan cannot see, made by `importlib` from a name: the zoo's lazy model locations."""

GRAPH = {
    module: ({resolve(name) for name in imported_names(module)} | BY_STRING.get(module, set())) - {module}
    for module in SOURCES
}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while not component or component[-1] != node:
                component.append(stack.pop())
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def within(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == package or module.startswith(package + ".") for package in packages)


def test_the_scan_sees_function_level_and_type_checking_imports() -> None:
    assert "landmarkflow.models.lgcn_shape" in GRAPH["landmarkflow.models.lgcn"]
    assert "landmarkflow.codecs.hih" in GRAPH["landmarkflow.models.params.hih"]


def test_circles_are_found() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert circles(graph) == [["a", "b", "c"]]


def test_no_import_circles() -> None:
    assert circles(GRAPH) == []


@pytest.mark.parametrize("package", sorted(BELOW))
def test_lower_floors_import_nothing_above_them(package: str) -> None:
    upward = {
        f"{module} -> {target}"
        for module, targets in GRAPH.items()
        if within(module, (package,))
        for target in targets
        if not within(target, BELOW[package])
    }
    assert upward == set()


def test_the_zoos_lazy_locations_are_edges_of_the_graph() -> None:
    assert "landmarkflow.models.hih" in GRAPH["landmarkflow.models.zoo"]
