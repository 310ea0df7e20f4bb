"""The package's house rules, read from the code: no import circles, arrows point one way."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("metrics", "baselines", "benchmark", "leaderboard", "data_manifests")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports() -> dict[str, set[str]]:
    """Every package module's imports of other package modules (module level and inside functions)."""
    modules = {_module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            found: list[str] = []
            if isinstance(node, ast.Import):
                found = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                found = [f"{base}.{a.name}" for a in node.names] + [base]
            for target in found:
                # the longest package module the import names
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    targets.add(target)
        graph[name] = targets
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_graph_sees_known_imports() -> None:
    graph = _imports()
    assert "benchmark.stages" in graph["benchmark.scoring"]
    assert "metrics.spec" in graph["metrics.lfd"]
    assert "baselines.contract" in graph["baselines"]  # a function-level import counts too


def test_no_import_circle_anywhere_in_the_package() -> None:
    assert _cycles(_imports()) == []


def test_a_circle_would_be_found() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


# the bottom floor (images, hashes, canonical JSON, atomic writes, module:attr) that every package may use
BOTTOM_FLOOR = "benchmark.io"


def test_the_bottom_floor_imports_nothing_from_the_package() -> None:
    assert _imports()[BOTTOM_FLOOR] == set()


def test_metrics_and_baselines_import_nothing_from_benchmark() -> None:
    graph = _imports()
    leaks = {
        (m, t)
        for m, targets in graph.items()
        if m.split(".")[0] in ("metrics", "baselines")
        for t in targets
        if t.split(".")[0] in ("benchmark", "leaderboard") and t != BOTTOM_FLOOR
    }
    assert leaks == set()


def test_leaderboard_reads_rows_only() -> None:
    graph = _imports()
    leaks = {
        (m, t)
        for m, targets in graph.items()
        if m.startswith("leaderboard")
        for t in targets
        if (t.split(".")[0] in ("benchmark", "baselines") and t != BOTTOM_FLOOR)
        or (t.startswith("metrics") and t != "metrics.spec")
    }
    assert leaks == set()


def test_no_toy_world_in_the_generic_code() -> None:
    generic = [
        *(ROOT / "metrics").rglob("*.py"),
        *(ROOT / "baselines").rglob("*.py"),
        ROOT / "benchmark/context.py",
    ]
    hits = [str(p.relative_to(ROOT)) for p in generic if "toy" in p.read_text(encoding="utf-8").lower()]
    assert hits == []
