"""The import graph of `orchestrator/` has no cycles between its parts.

Each top-level module or package under `orchestrator/` (`auth`, `requests`, `policy`, ...) is one
node; a module of one part importing anything of another is an arrow. Imports under
`if TYPE_CHECKING:` are left out (they never run); imports inside functions count (they do).
"""

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2] / "orchestrator"
PACKAGE = "orchestrator"


def _part_of(module: str) -> str | None:
    """The top-level part of orchestrator a dotted module name belongs to, if it is one."""
    names = module.split(".")
    if names[0] != PACKAGE or len(names) < 2:
        return None
    return names[1]


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(node: ast.AST, module: str) -> Iterator[str]:
    """Dotted names imported anywhere in `node`, skipping `if TYPE_CHECKING:` blocks."""
    if isinstance(node, ast.If) and _is_type_checking(node.test):
        for statement in node.orelse:
            yield from _imports(statement, module)
        return
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            # A relative import: resolve against the importing module's package.
            package = module.split(".")[: -node.level]
            base = ".".join([*package, *([base] if base else [])])
        # `from orchestrator import policy` imports the part `policy`.
        yield from (f"{base}.{alias.name}" for alias in node.names)
    for child in ast.iter_child_nodes(node):
        yield from _imports(child, module)


def import_graph() -> dict[str, set[str]]:
    """Part -> the other parts it imports."""
    graph: dict[str, set[str]] = {}
    for path in sorted(ROOT.rglob("*.py")):
        relative = path.relative_to(ROOT.parent).with_suffix("")
        module = ".".join(relative.parts[:-1] if relative.name == "__init__" else relative.parts)
        if path.name == "__init__.py":
            module = ".".join(relative.parts[:-1]) + ".__init__"
        source = _part_of(module)
        if source is None:
            continue
        arrows = graph.setdefault(source, set())
        for name in _imports(ast.parse(path.read_text(), filename=str(path)), module):
            target = _part_of(name)
            if target is not None and target != source and target != "__init__":
                arrows.add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected parts of more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def _arrows_within(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    return [f"{a} -> {b}" for a in component for b in sorted(graph.get(a, ())) if b in component]


def test_the_graph_sees_the_parts_and_their_imports() -> None:
    graph = import_graph()
    # Guards the parser itself: parts that certainly exist and arrows that certainly exist.
    assert {"requests", "services", "auth", "audit", "database", "policy"} <= set(graph)
    assert "database" in graph["requests"]
    assert "policy" in graph["requests"]


def test_no_import_cycles_between_the_parts_of_orchestrator() -> None:
    graph = import_graph()
    found = cycles(graph)
    assert found == [], "import cycles between parts of orchestrator/:\n" + "\n".join(
        f"  {', '.join(c)}: {'; '.join(_arrows_within(graph, c))}" for c in found
    )


def test_cycles_are_found_when_there_are_some() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_type_checking_imports_are_left_out() -> None:
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from orchestrator.requests import service\n"
        "else:\n    from orchestrator import policy\n"
        "def f():\n    from orchestrator.audit import service\n"
    )
    assert set(_imports(tree, "orchestrator.services.service")) == {
        "typing.TYPE_CHECKING",
        "orchestrator.policy",
        "orchestrator.audit.service",
    }
