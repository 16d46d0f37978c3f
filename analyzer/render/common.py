"""Plain-text helpers shared by the review renderers (SARIF, Markdown, HTML): ordering, value text, kernel graph.

Everything returned here is *unescaped* text built from the report; each renderer escapes for its own format.
"""
from __future__ import annotations

from collections.abc import Iterable

from ..model import BY_SEVERITY, SEVERITY_RANK, Finding, RegisterValue, Report, Site
from ..textsafe import num

SEVERITIES = BY_SEVERITY  # the renderers list the most severe first
SARIF_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "info": "note"}
SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0", "info": "1.0"}


def gating(f: Finding) -> bool:
    """Counts for the summary and for --fail-on: not in the baseline, not accepted by the allowlist."""
    return f.baseline not in ("unchanged", "accepted")


def sorted_findings(findings: Iterable[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (-SEVERITY_RANK.get(f.severity, 0), f.rule,
                                           -1 if f.site is None else f.site, f.function or ""))


def quote(s: str, width: int = 48) -> str:
    s = s if len(s) <= width else s[: width - 1] + "…"
    return '"' + s.encode("unicode_escape").decode("ascii").replace('"', '\\"') + '"'


def value_text(v: RegisterValue, limit: int = 4) -> str:
    if not v.values:
        return "?"
    parts = [quote(v.strings[x]) if x in v.strings else num(x) for x in v.values[:limit]]
    if len(v.values) > limit:
        parts.append(f"…+{len(v.values) - limit}")
    text = parts[0] if len(parts) == 1 else "{" + ", ".join(parts) + "}"
    return text + ("|?" if v.status == "partial" else "")


def syscall_text(site: Site) -> str:
    if not site.syscalls:
        return "?"
    names = [f"{r.name or '??'} ({r.nr})" for r in site.syscalls[:4]]
    if len(site.syscalls) > 4:
        names.append(f"…+{len(site.syscalls) - 4}")
    return ", ".join(names) + (" |?" if site.number.status == "partial" else "")


def args_text(site: Site) -> str:
    return ", ".join(f"{a.param or a.register}={value_text(a)}" for a in site.args)


def binary_line(report: Report) -> str:
    b = report.binary
    props = [b.arch, b.elf_type, "static" if b.static else "dynamic", "stripped" if b.stripped else "not stripped"]
    return ", ".join(props) + f", {b.size} bytes"


def summary_line(report: Report) -> str:
    s = report.summary
    return (f"{s.sites} sites (resolved {s.resolved}, partial {s.partial}, unresolved {s.unresolved}), "
            f"{s.syscalls} distinct syscalls")


def severity_counts(findings: Iterable[Finding]) -> dict[str, int]:
    out = {s: 0 for s in SEVERITIES}
    for f in findings:
        if gating(f):
            out[f.severity] = out.get(f.severity, 0) + 1
    return out


def kernel_graph(site: Site):
    """The site's kernel path(s) as a networkx DiGraph (site -> entry -> ... -> handler -> implementation), built
    from Site.kernel: the same node names analyzer.kernel.graph gives, one path per possible syscall number."""
    import networkx as nx

    g = nx.DiGraph()
    for k in site.kernel:
        path = list(k.path) or [f"{site.instruction} @ {site.address:#x}", k.entry or "?", k.handler or "-ENOSYS"]
        for i, node in enumerate(path):
            if node not in g:
                g.add_node(node, enosys=False, kind="site" if i == 0 else "kernel")
            if i:
                g.add_edge(path[i - 1], node)
        handler = k.handler if k.handler in g else path[-1]
        if len(path) > 1:
            g.nodes[handler]["kind"] = "handler"
            if k.enosys:
                g.nodes[handler]["enosys"] = True
    return g


def layered_layout(g) -> dict[str, tuple[int, int]]:
    """(column, row) per node: columns are the longest distance from a source (paths run left to right), rows
    are the order within a column (stable: by first appearance)."""
    import networkx as nx

    order = {n: i for i, n in enumerate(g.nodes)}
    if not nx.is_directed_acyclic_graph(g):
        return {n: (0, order[n]) for n in g.nodes}
    col: dict[str, int] = {}
    for n in nx.topological_sort(g):
        preds = list(g.predecessors(n))
        col[n] = 1 + max(col[p] for p in preds) if preds else 0
    rows: dict[int, int] = {}
    out = {}
    for n in sorted(g.nodes, key=lambda n: (col[n], order[n])):
        out[n] = (col[n], rows.get(col[n], 0))
        rows[col[n]] = rows.get(col[n], 0) + 1
    return out
