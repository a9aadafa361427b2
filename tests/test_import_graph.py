"""labkit's modules import each other without a cycle: each can be read, and tested, before the ones that use it."""

from __future__ import annotations

import ast
from pathlib import Path

import labkit

ROOT = Path(labkit.__file__).parent


def _modules() -> dict[str, Path]:
    """Every module of labkit by its dotted name (a package by its ``__init__.py``)."""
    modules = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if path.stem == "__init__" else parts)] = path
    return modules


def import_graph() -> dict[str, set[str]]:
    """Module → the labkit modules it imports anywhere in its body.

    Lazy imports inside functions count too, and so do imports only for type checkers: either can
    hide a cycle that a refactoring later turns into a crash.
    """
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.stem == "__init__" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = package.rsplit(".", node.level - 1)[0] if node.level else ""
                source = ".".join(filter(None, [base, node.module]))
                # `from .x import y`: y may be a module of package x, or a name defined in x.
                submodules = [f"{source}.{alias.name}" for alias in node.names if f"{source}.{alias.name}" in modules]
                targets = submodules or [source]
            else:
                continue
            graph[name] |= {target for target in targets if target in modules and target != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One import cycle (as a path that ends where it starts) per strongly connected group of modules."""
    found, state = [], {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                found.append([*path[path.index(target) :], module, target])  # the open modules are path + [module]
            elif target not in state:
                visit(target, path + [module])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [])
    return found


def test_the_graph_sees_imports_at_all():
    graph = import_graph()
    assert "labkit.history.database" in graph["labkit.history.sink"]  # a relative import, at the top
    assert "labkit.history.service" in graph["labkit.cli"]  # a lazy import, inside a function


def test_labkits_modules_import_each_other_without_a_cycle():
    found = cycles(import_graph())
    assert not found, "import cycles (move what both need into a module of its own):\n" + "\n".join(
        " → ".join(cycle) for cycle in found
    )


def test_a_cycle_is_found_and_named():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c", "a"]]
