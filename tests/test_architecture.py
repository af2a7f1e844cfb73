"""The shape of the code: packages by role, layers that only import downward
(import-linter contracts in pyproject.toml), no import cycle, small modules."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp

from wizard.config.files import standard_toml

ROOT = Path(__file__).resolve().parent.parent
MAX_LINES = 600


def contracts() -> list[dict]:
    data = standard_toml().loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return data["tool"]["importlinter"]["contracts"]


def test_import_linter_contracts_are_kept():
    proc = subprocess.run([sys.executable, "-c", "import sys; from importlinter.cli import lint_imports; "
                           "sys.exit(lint_imports(no_cache=True, no_logo=True))"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


def test_every_core_package_is_a_layer():
    """A new package in wizard/ must be placed in the layers (or be the sandbox)."""
    layers = next(c for c in contracts() if c["type"] == "layers")["layers"]
    packages = {f"wizard.{p.name}" for p in (ROOT / "wizard").iterdir() if (p / "__init__.py").is_file()}
    named = {name.strip() for layer in layers for name in layer.split("|")}   # "a | b": independent siblings
    assert packages - {"wizard.sandbox"} == {name for name in named if name.startswith("wizard.")}
    loose = sorted(p.name for p in (ROOT / "wizard").glob("*.py") if p.name not in ("__init__.py", "__main__.py"))
    assert loose == [], f"modules outside the packages: {loose}"


def cycles(graph, modules: set[str]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan, iterative)."""
    edges = {m: sorted(d for d in graph.find_modules_directly_imported_by(m) if d in modules) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for start in sorted(modules):
        if start in index:
            continue
        work = [(start, iter(edges[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    found.append(sorted(group))
    return found


def test_no_import_cycle_in_wizard_and_screens():
    """Imports inside functions count too (grimp reads every import statement)."""
    graph = grimp.build_graph("wizard", "screens")
    modules = {m for m in graph.modules if m.split(".")[0] in ("wizard", "screens")}
    assert len(modules) > 100
    assert cycles(graph, modules) == []


def test_the_cycle_finder_finds_a_cycle():
    class Graph:
        imports = {"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}

        def find_modules_directly_imported_by(self, m):
            return self.imports[m]
    assert cycles(Graph(), {"a", "b", "c", "d"}) == [["a", "b", "c"]]


def test_modules_stay_small():
    sizes = {str(p.relative_to(ROOT)): len(p.read_text(encoding="utf-8").splitlines())
             for base in ("wizard", "screens") for p in (ROOT / base).rglob("*.py")}
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}
