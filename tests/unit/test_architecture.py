"""The house rules a maintainer relies on, checked over the source: paths parsed in one
module, no import cycle (function-level imports included), no module too long to read."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "fruits_p8"
SOURCES = sorted(PACKAGE.rglob("*.py")) + sorted((ROOT / "scripts").glob("*.py"))
PARSERS = {"parse_location", "split_s3", "local_path", "is_s3", "path_from_uri", "nested"}
MAX_LINES = 360


def _module(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def test_paths_are_parsed_only_in_io_paths():
    found = []
    for path in SOURCES:
        if path == PACKAGE / "io" / "paths.py":
            continue
        for node in ast.walk(_tree(path)):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if name in PARSERS:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {name}()")
            by_hand = name in ("partition", "split", "startswith", "replace", "removeprefix")
            if by_hand and any(isinstance(a, ast.Constant) and isinstance(a.value, str)
                               and ("://" in a.value or a.value == "s3") for a in node.args):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} .{name}() of a URI")
    assert not found, "\n".join(found)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """Every fruits_p8 module `path` imports, at the top or inside a function (not the
    names only a type checker sees): `from a import b` counts as `a.b` where that is a
    module, else as `a`."""
    checking = set()
    tree = _tree(path)
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            checking.update(id(n) for n in ast.walk(node))
    names = set()
    for node in ast.walk(tree):
        if id(node) in checking:
            continue
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                names.add(full if full in modules else node.module)
    return {n for n in names if n in modules}


def test_no_import_cycle_even_inside_functions():
    modules = {_module(p): p for p in PACKAGE.rglob("*.py")}
    graph = {name: _imports(path, set(modules)) - {name} for name, path in modules.items()}
    cycles, state = [], {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join(path[path.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles, "\n".join(cycles)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_is_too_long_to_read(path):
    assert len(path.read_text().splitlines()) <= MAX_LINES
