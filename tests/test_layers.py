"""The folders are the architecture: no package imports one above it, and no module imports form a cycle.

core ← models, prediction_log ← deployments ← serve_app ← tools (monitoring, loadtest, dashboard) ← tests
"""

from __future__ import annotations

import ast
from pathlib import Path

from core.settings import PROJECT_ROOT

LAYERS: dict[str, int] = {
    "core": 0,
    "models": 1, "prediction_log": 1,
    "deployments": 2,
    "serve_app": 3,
    "monitoring": 4, "loadtest": 4, "dashboard": 4,
    "tests": 5,
}


def _modules() -> dict[str, Path]:
    found = {}
    for package in LAYERS:
        for path in (PROJECT_ROOT / package).rglob("*.py"):
            parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imports(path: Path, top_level_only: bool) -> set[str]:
    """Project modules imported by ``path`` (``top_level_only``: not inside functions)."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    names: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return {n for n in names if n.split(".")[0] in LAYERS}


def test_no_package_imports_a_layer_above_it_or_a_sibling() -> None:
    wrong = []
    for module, path in _modules().items():
        own = module.split(".")[0]
        for imported in _imports(path, top_level_only=False):
            other = imported.split(".")[0]
            if other != own and LAYERS[other] >= LAYERS[own]:
                wrong.append(f"{module} imports {imported}")
    assert not wrong, "\n".join(sorted(wrong))


def test_no_import_cycle_between_modules() -> None:
    modules = _modules()
    # every import, also those inside functions: an import moved into a function hides a cycle, it does not break it
    graph = {m: {i for i in _imports(p, top_level_only=False) if i in modules and i != m} for m, p in modules.items()}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " → ".join(trail[trail.index(nxt):] + [node, nxt]))
            if nxt not in state:
                visit(nxt, trail + [node])
        state[node] = 2

    for module in graph:
        if module not in state:
            visit(module, [])


def test_the_check_can_fail(tmp_path: Path) -> None:
    """A model module that imports the deployments would be caught."""
    bad = tmp_path / "bad.py"
    bad.write_text("from deployments.ingress import Ingress\n")
    assert _imports(bad, top_level_only=False) == {"deployments.ingress", "deployments.ingress.Ingress"}
