"""The core's imports: nothing from outside ``responder/core/``, and no import cycle.

Beside :mod:`tests.core.test_boundary` (no I/O, clocks or randomness), this
reads every module under ``responder/core/`` with :mod:`ast` and checks that

* every ``responder`` import names a module under ``responder.core`` (the
  shell, the CLI and the TOML loader build what the core reads, never the
  other way round);
* besides the standard library, only ``attrs`` and ``cryptography`` are used;
* the graph of imports that run (module level and inside functions, not the
  ``if TYPE_CHECKING:`` blocks that only name types) has no cycle, and no
  function imports a core module (the old way of dodging a cycle).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import attrs
import pytest

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "responder" / "core"
THIRD_PARTY = {"attrs", "cryptography"}


@attrs.frozen
class Import:
    #: The module imported (for ``from a.b import c``: ``a.b.c`` if that is a module, else ``a.b``).
    target: str
    line: int
    typing_only: bool  #: inside ``if TYPE_CHECKING:``
    in_function: bool


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    base = ROOT.joinpath(*name.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def imports_of(source: str, package: str) -> list[Import]:
    """Every import in ``source``, resolved to absolute module names."""
    found: list[Import] = []

    def visit(node: ast.AST, typing_only: bool, in_function: bool) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, True, in_function)
            for child in node.orelse:
                visit(child, typing_only, in_function)
            return
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            in_function = True
        if isinstance(node, ast.Import):
            found.extend(Import(a.name, node.lineno, typing_only, in_function) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                target = candidate if is_module(candidate) else base
                found.append(Import(target, node.lineno, typing_only, in_function))
        for child in ast.iter_child_nodes(node):
            visit(child, typing_only, in_function)

    visit(ast.parse(source), False, False)
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def core_imports() -> dict[str, list[Import]]:
    graph: dict[str, list[Import]] = {}
    for path in sorted(CORE.rglob("*.py")):
        name = module_name(path)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        graph[name] = imports_of(path.read_text(), package)
    return graph


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component of more than one module, or with a self-loop (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in edges.get(node, ()):
            if successor not in index:
                connect(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in edges.get(node, ()):
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            connect(node)
    return found


def runtime_edges(graph: dict[str, list[Import]]) -> dict[str, set[str]]:
    """Imports that run, between core modules; importing ``a.b.c`` also runs package ``a.b``.

    A module's own ancestor packages are left out: Python initialises them
    before the module, so a package that re-exports its modules (``config/``)
    is no cycle.
    """
    edges: dict[str, set[str]] = {}
    for name, found in graph.items():
        targets = edges.setdefault(name, set())
        for item in found:
            if item.typing_only or not item.target.startswith("responder.core"):
                continue
            parts = item.target.split(".")
            for end in range(3, len(parts) + 1):  # responder.core.x, responder.core.x.y, ...
                target = ".".join(parts[:end])
                if target != name and target in graph and not name.startswith(target + "."):
                    targets.add(target)
    return edges


def test_the_scan_reads_the_core() -> None:
    graph = core_imports()
    assert {"responder.core.ike_sa", "responder.core.dispatch", "responder.core.exchanges.base"} <= set(graph)
    dispatch = {item.target for item in graph["responder.core.dispatch"]}
    assert {"responder.core.ike_sa", "responder.core.exchanges.ike_auth"} <= dispatch


@pytest.mark.parametrize("name", sorted(core_imports()))
def test_core_imports_nothing_from_outside_it(name: str) -> None:
    """Every import of a core module is the standard library, attrs, cryptography or the core itself."""
    for item in core_imports()[name]:
        top = item.target.split(".")[0]
        if top == "responder":
            assert item.target.startswith("responder.core"), f"{name} line {item.line}: {item.target}"
        else:
            assert top in sys.stdlib_module_names or top in THIRD_PARTY or top == "__future__", (
                f"{name} line {item.line}: {item.target}"
            )


def test_core_has_no_import_cycle() -> None:
    assert cycles(runtime_edges(core_imports())) == []


def test_no_core_module_is_imported_inside_a_function() -> None:
    """A function-local import is how a cycle hides; the core has none."""
    local = [
        f"{name} line {item.line}: {item.target}"
        for name, found in core_imports().items()
        for item in found
        if item.in_function and item.target.startswith("responder")
    ]
    assert local == []


def test_cycle_finder_finds_cycles() -> None:
    """The check itself can fail: a two-module cycle and a self-import are found, a chain is not."""
    assert cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
    assert cycles({"a": {"a"}}) == [["a"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_scan_resolves_relative_and_typing_only_imports() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "from . import dispatch\n"
        "if TYPE_CHECKING:\n"
        "    from responder.core.exchanges.base import Exchange\n"
        "def f():\n"
        "    import responder.core.ike_sa\n"
    )
    found = imports_of(source, "responder.core")
    assert Import("responder.core.dispatch", 2, False, False) in found
    assert Import("responder.core.exchanges.base", 4, True, False) in found
    assert Import("responder.core.ike_sa", 6, False, True) in found
