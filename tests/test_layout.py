"""The package's layering: no import cycles (lazy imports inside functions count too) and no
module importing another module's private names."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import multilogit

ROOT = Path(multilogit.__file__).parent


def _module_name(path: Path) -> str:
    parts = ("multilogit",) + path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _imports(name: str, path: Path, known: set[str]) -> list[tuple[str, list[str]]]:
    """``(imported module, imported names)`` for every import of a package module in ``path``,
    wherever it stands (module level or inside a function)."""
    is_pkg = path.name == "__init__.py"
    package = name if is_pkg else name.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names if a.name in known]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("multilogit"):
                continue
            names = [a.name for a in node.names]
            submodules = [f"{target}.{n}" for n in names if f"{target}.{n}" in known]
            out += [(m, []) for m in submodules]
            rest = [n for n in names if f"{target}.{n}" not in known]
            if rest and target in known:
                out.append((target, rest))
    return out


def _graph():
    mods = _modules()
    known = set(mods)
    return {name: _imports(name, path, known) for name, path in mods.items()}


def _cycle(graph: dict[str, list[str]]) -> list[str] | None:
    """One cycle of ``graph`` (a list of modules, first == last), or ``None``."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in graph.get(node, []):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycles():
    graph = {m: sorted({t for t, _ in edges if t != m}) for m, edges in _graph().items()}
    cycle = _cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_cycle_finder_finds_a_lazy_cycle():
    """The check above can fail: a two-module cycle is reported."""
    assert _cycle({"a": ["b"], "b": ["a"], "c": []}) == ["a", "b", "a"]
    assert _cycle({"a": ["b"], "b": ["c"], "c": []}) is None


def test_no_private_names_across_modules():
    offenders = [
        f"{mod} imports {name} from {target}"
        for mod, edges in _graph().items()
        for target, names in edges
        for name in names
        if name.startswith("_") and not name.startswith("__") and target != mod
    ]
    assert offenders == []


@pytest.mark.parametrize("name", ["kernels_numpy"])
def test_test_only_code_lives_with_the_tests(name):
    assert not any(p.stem == name for p in ROOT.rglob("*.py"))


# Highest first: a module may import only from its own layer or one further down this list.
LAYERS = [
    {"__init__", "__main__", "cli", "loading", "sklearn"},
    {"model"},
    {"fit"},
    {"results"},
    {"inference"},
    {"solve"},
    {"data"},
    {"engine"},
    {"exceptions", "version", "datasets", "lazy"},
]


def _layer(module: str) -> int:
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else "__init__"
    return next(k for k, names in enumerate(LAYERS) if top in names)


def test_imports_point_down_the_layers():
    upward = [
        f"{mod} imports {target}"
        for mod, edges in _graph().items()
        for target, _ in edges
        if _layer(target) < _layer(mod)
    ]
    assert upward == []
