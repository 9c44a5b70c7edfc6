"""The shape of the code (SPEC §13), read from the source: no import circle among anagnorisis modules (imports
inside functions included), the core never imports a face, and the UI reaches the CLI only by its forwarding
route."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "anagnorisis"
FACES = ("anagnorisis.cli", "anagnorisis.ui")
ENTRY = "anagnorisis.__main__"  # `python -m anagnorisis`: where the two faces meet (the CLI, and `serve`)
FORWARDING_ROUTE = "anagnorisis.ui.forwarding"


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The anagnorisis modules this module imports anywhere in it (`from package import module` names the
    module; `from module import name` the module)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]

    def owner(dotted: str) -> str:
        while dotted and dotted not in known:
            dotted = dotted.rpartition(".")[0]
        return dotted

    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        found |= {owner(target) for target in targets if target.startswith("anagnorisis")}
    return found - {name, ""}


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
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
    return found


def is_face(name: str) -> bool:
    return name == ENTRY or any(name == face or name.startswith(face + ".") for face in FACES)


def test_the_checker_sees_a_circle_and_a_function_level_import(tmp_path: Path) -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(edges) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    known = {"anagnorisis.x": tmp_path / "x.py", "anagnorisis.y": tmp_path / "y.py", "anagnorisis": tmp_path}
    (tmp_path / "x.py").write_text("def f():\n    from anagnorisis.y import thing\n    return thing\n")
    assert imports("anagnorisis.x", tmp_path / "x.py", known) == {"anagnorisis.y"}


def test_no_import_circle_among_anagnorisis_modules() -> None:
    edges = graph()
    assert len(edges) > 100  # the walk found the package
    assert cycles(edges) == []


def test_the_core_imports_neither_face() -> None:
    wrong = sorted((name, target) for name, targets in graph().items() if not is_face(name)
                   for target in targets if is_face(target))
    assert wrong == []


def test_the_ui_reaches_the_cli_only_through_the_forwarding_route() -> None:
    wrong = sorted((name, target) for name, targets in graph().items()
                   if name.startswith("anagnorisis.ui") and name != FORWARDING_ROUTE
                   for target in targets if target.startswith("anagnorisis.cli"))
    assert wrong == []


def test_the_package_root_holds_only_app_plumbing() -> None:
    root = sorted(path.stem for path in PACKAGE.glob("*.py"))
    assert root == ["__init__", "__main__", "config", "jobs", "private", "remote", "serve_options", "session"]
