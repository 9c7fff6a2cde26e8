"""The package's floor plan holds: the imports of `toonlab` (module level and inside functions) form no circle,
and no module imports one from a layer above its own (a stage never imports the runner, an executor no stage)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

# layer of a module: the longest matching prefix decides; a module may import only its own layer or lower ones
LAYERS = {
    "toonlab.extras": 0,
    "toonlab.io": 0,
    "toonlab.curate.records": 1,
    "toonlab.curate.choices": 1,
    "toonlab.curate.pairs": 1,
    "toonlab.curate.taxonomy_table": 1,
    "toonlab.curate.stage": 2,
    "toonlab.curate.shards": 2,
    "toonlab.curate.tarwrite": 2,
    "toonlab.curate.sidecar": 2,
    "toonlab.curate.sources": 2,
    "toonlab.curate.stages": 3,
    "toonlab.curate.config": 4,
    "toonlab.curate.write": 4,
    "toonlab.curate.card": 4,
    "toonlab.curate.executors": 4,
    "toonlab.curate.steps": 5,
    "toonlab.curate.readers": 5,
    "toonlab.curate.run": 6,
    "toonlab.curate.steps.cli": 7,
    "toonlab.curate.readers.report.cli": 7,
    "toonlab.curate.cli": 7,
    "toonlab.vision": 7,  # builds its datasets through curate.run
    "toonlab.tts": 5,
    "toonlab.cli": 9,
}


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted((SRC / "toonlab").rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """toonlab modules `path` imports anywhere in its body (`from a.b import c` counts a.b.c when c is a module)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in names if name in modules}


def _layer(module: str) -> int:
    matches = [p for p in LAYERS if module == p or module.startswith(p + ".")]
    assert matches, f"{module} has no layer in tests/test_layout.py: add it"
    return LAYERS[max(matches, key=len)]


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, modules) - {name} for name, path in modules.items()}


def test_no_module_imports_a_layer_above_its_own(graph):
    upward = [
        f"{a} (layer {_layer(a)}) imports {b} (layer {_layer(b)})"
        for a, targets in graph.items()
        for b in sorted(targets)
        if _layer(b) > _layer(a) and not a.startswith(b + ".")  # a package's own __init__ is not "above"
    ]
    assert upward == []


def test_imports_form_no_circle(graph):
    # a package imported by its own submodule is the same room, not a circle
    edges = {
        a: {b for b in targets if not a.startswith(b + ".") and not b.startswith(a + ".")}
        for a, targets in graph.items()
    }
    state: dict[str, int] = {}
    circles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                circles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for start in sorted(edges):
        if start not in state:
            visit(start, [start])
    assert circles == []
