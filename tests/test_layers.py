"""The shape of the package: no import cycle, and each stage imports only what lies below it.

Imports written inside functions count (they hide a cycle, they do not remove it), and so do imports under
`if TYPE_CHECKING:`. The layers, bottom up, are the pipeline's order (README, "How the code is laid out").
"""
from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

PKG = Path(__file__).resolve().parent.parent / "analyzer"

LAYERS = [
    ("base", {"analyzer", "analyzer.errors", "analyzer.textsafe", "analyzer.outfile", "analyzer.budget",
              "analyzer.model", "analyzer.cache"}),
    ("syscalls, elf", {"analyzer.syscalls", "analyzer.elf"}),
    ("program", {"analyzer.program"}),
    ("sites, values", {"analyzer.sites", "analyzer.values"}),
    ("surface", {"analyzer.surface"}),
    ("kernel", {"analyzer.kernel"}),
    ("rules, aggregate, seccomp", {"analyzer.rules", "analyzer.aggregate", "analyzer.seccomp"}),
    ("inputs", {"analyzer.inputs"}),
    ("run", {"analyzer.run"}),
    ("render", {"analyzer.render"}),
    ("cli", {"analyzer.cli"}),
]


def _modules() -> dict[str, Path]:
    out = {}
    for p in PKG.rglob("*.py"):
        parts = list(p.relative_to(PKG.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = p
    return out


def _imports(mods: dict[str, Path]) -> list[tuple[str, str, int]]:
    """(importer, imported module, line) for every import of a package module, at any depth of the code."""
    edges = []
    for m, p in mods.items():
        is_pkg = p.name == "__init__.py"
        for node in ast.walk(ast.parse(p.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = m.split(".") if is_pkg else m.split(".")[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                names = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in mods else mod for a in node.names]
            for t in names:
                while t and t not in mods:
                    t = t.rpartition(".")[0]
                if t and t != m and not m.startswith(t + "."):  # a package's own __init__ above it is no edge
                    edges.append((m, t, node.lineno))
    return edges


def _layer(mod: str) -> int:
    best = None
    for i, (_, prefixes) in enumerate(LAYERS):
        for pre in prefixes:
            if (mod == pre or mod.startswith(pre + ".")) and (best is None or len(pre) > best[1]):
                best = (i, len(pre))
    assert best is not None, f"{mod} is in no layer: add it to LAYERS in tests/test_layers.py"
    return best[0]


def test_no_import_cycle():
    g = nx.DiGraph((a, b) for a, b, _ in _imports(_modules()))
    cycles = [sorted(c) for c in nx.strongly_connected_components(g) if len(c) > 1]
    assert not cycles, f"import cycles (imports inside functions count): {cycles}"


def test_each_stage_imports_only_what_lies_below_it():
    mods = _modules()
    upward = [f"{mods[a].relative_to(PKG.parent)}:{line}: {a} ({LAYERS[_layer(a)][0]}) imports {b} "
              f"({LAYERS[_layer(b)][0]})" for a, b, line in _imports(mods) if _layer(b) > _layer(a)]
    assert not upward, "imports from a higher layer:\n" + "\n".join(upward)


def test_the_walk_sees_imports_inside_functions():
    """The checks above would pass vacuously if function-level imports were missed: the pipeline imports the
    rules stage inside a function."""
    edges = {(a, b) for a, b, _ in _imports(_modules())}
    assert ("analyzer.run.pipeline", "analyzer.rules") in edges
