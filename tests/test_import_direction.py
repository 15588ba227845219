"""Imports point one way (docs/architecture.md): every import in the source tree, read from its syntax tree
(lazy imports inside functions and `TYPE_CHECKING` blocks included), goes to a part listed below its own."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# Each part of the tree and the parts it may import: the map of docs/architecture.md, as data. The longest
# matching prefix names a module's part; `features.feature_repo` is imported by Feast alone.
CORE = "tessera.core"
FEATURES = ("features.ingest", "features.identity", "features.profile", "features.store")
MAY_IMPORT: dict[str, set[str]] = {
    CORE: set(),
    "features.ingest": {CORE},
    "features.identity": {CORE, "features.ingest"},
    "features.profile": {CORE, "features.ingest", "features.identity"},
    "features.store": {CORE, "features.profile"},
    "features.feature_repo": {CORE, "features.store"},
    "simulator": {CORE},
    "training": {CORE, *FEATURES},
    "activation": {CORE, *FEATURES, "training"},
    "serving": {CORE, *FEATURES, "training", "activation"},
    "tessera": {CORE, *FEATURES, "simulator", "training", "serving", "activation"},
}
PACKAGES = ("tessera", "features", "simulator", "training", "serving", "activation")


def part_of(module: str) -> str | None:
    """The part of the tree a dotted module name belongs to (None: a third-party or standard module)."""
    matches = [p for p in MAY_IMPORT if module == p or module.startswith(p + ".")]
    if module == "features":
        return "features.ingest"  # the package's __init__ only (it imports tessera.core alone)
    return max(matches, key=len) if matches else None


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, package: str) -> list[tuple[int, str]]:
    """(line, module) of every import in the file, relative ones resolved against `package`."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            found.append((node.lineno, target))
    return found


def package_of(path: Path) -> str:
    name = module_name(path)
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def source_files() -> list[Path]:
    return sorted(p for name in PACKAGES for p in (REPO / name).rglob("*.py"))


def import_graph() -> dict[str, dict[str, list[str]]]:
    """part → imported part → where (file:line), over the whole source tree."""
    graph: dict[str, dict[str, list[str]]] = {}
    for path in source_files():
        own = part_of(module_name(path))
        assert own is not None, f"{path} is in no part of the map: add it to MAY_IMPORT"
        for line, target in imports_of(path, package_of(path)):
            other = part_of(target)
            if other is not None and other != own:
                graph.setdefault(own, {}).setdefault(other, []).append(f"{path.relative_to(REPO)}:{line}")
    return graph


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every elementary cycle's path found by depth-first search (each reported from its first node)."""
    found: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        for nxt in sorted(edges.get(node, ())):
            if nxt == path[0]:
                found.append([*path, nxt])
            elif nxt not in path and nxt > path[0]:
                visit(nxt, [*path, nxt])

    for start in sorted(edges):
        visit(start, [start])
    return found


def against_the_map(graph: dict[str, dict[str, list[str]]]) -> list[str]:
    """Each import of `graph` that MAY_IMPORT does not allow, as `file:line: part imports part`."""
    return [
        f"{where}: {own} imports {other}"
        for own, targets in graph.items()
        for other, places in targets.items()
        if other not in MAY_IMPORT[own]
        for where in places
    ]


def test_every_import_points_down_the_map() -> None:
    assert against_the_map(import_graph()) == []


def test_a_lazy_upward_import_is_against_the_map(tmp_path: Path) -> None:
    """An import inside a function counts: the store importing training there is reported with its line."""
    source = tmp_path / "lazy.py"
    source.write_text(
        "import json\n\n\ndef f():\n    from training.pipelines import train_model\n", encoding="utf-8"
    )
    graph: dict[str, dict[str, list[str]]] = {"features.store": {}}
    for line, target in imports_of(source, "features.store"):
        if (other := part_of(target)) is not None:
            graph["features.store"].setdefault(other, []).append(f"lazy.py:{line}")
    assert against_the_map(graph) == ["lazy.py:5: features.store imports training"]


def test_no_import_cycle_between_top_level_packages() -> None:
    top: dict[str, set[str]] = {}
    for own, targets in import_graph().items():
        for other in targets:
            a, b = own.split(".")[0], other.split(".")[0]
            if own == CORE or other == CORE:  # the core is a package of its own, below everything
                a, b = (CORE if own == CORE else a), (CORE if other == CORE else b)
            if a != b:
                top.setdefault(a, set()).add(b)
    assert cycles(top) == []


def test_no_import_cycle_between_modules() -> None:
    """No two modules import each other, even lazily (a lazy import hides a cycle; it does not remove it)."""
    known = {module_name(p) for p in source_files()}
    edges: dict[str, set[str]] = {}
    for path in source_files():
        own = module_name(path)
        for _, target in imports_of(path, package_of(path)):
            # `from package import module` names the module; `from module import name` the module itself.
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != own and not own.startswith(target + "."):
                edges.setdefault(own, set()).add(target)
    # A package's __init__ re-exporting its modules is not a cycle with them.
    edges = {a: {b for b in bs if not a.startswith(b + ".")} for a, bs in edges.items()}
    assert cycles(edges) == []


@pytest.mark.parametrize(
    ("edges", "expected"),
    [
        ({"a": {"b"}, "b": {"c"}}, []),
        ({"a": {"b"}, "b": {"a"}}, [["a", "b", "a"]]),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, [["a", "b", "c", "a"]]),
    ],
)
def test_the_cycle_finder_finds_cycles(edges: dict[str, set[str]], expected: list[list[str]]) -> None:
    assert cycles(edges) == expected
