"""The view across many binaries (a directory or several files): per binary one line, and the union — which syscalls
the whole tree can make and which binaries make raw ones.

`build_aggregate(reports, failures, skipped)` gives the JSON object written under "aggregate" next to "reports"
(`{"reports": [...], "aggregate": {...}}`; schema analyzer/schemas/reports.schema.json). It is derived data: a
saved multi-report JSON re-rendered with `sysscan render` gets it recomputed from its reports (its failed/skipped
lists are carried over). `render_table` is the terminal view of it; `-v` puts each binary's full table before it.

Deterministic: binaries sorted by path, syscalls by (abi, number); no timings, no cache statistics.
"""
from __future__ import annotations

import io

from ..textsafe import escape_controls

SEVERITIES = ("critical", "high", "medium", "low", "info")


def build_aggregate(reports: list, failures: list | None = None, skipped: list | None = None) -> dict:
    """Reports (model.Report) plus failed files (batch.Failure, or saved {"path","exit_code","error"} dicts) and
    skipped ones (batch.Skipped or dicts; only those that warranted a warning are listed)."""
    reports = sorted(reports, key=lambda r: r.binary.path)
    failed = []
    for f in failures or []:
        if isinstance(f, dict):
            code = f.get("exit_code", 0)
            failed.append({"path": str(f.get("path", "")), "exit_code": code if isinstance(code, int) else 0,
                           "error": str(f.get("error", ""))})
        else:
            failed.append({"path": f.path, "exit_code": f.exit_code, "error": f.error.problem})
    skip = []
    for s in skipped or []:
        if isinstance(s, dict):
            skip.append({"path": str(s.get("path", "")), "reason": str(s.get("reason", ""))})
        elif s.warn:
            skip.append({"path": s.path, "reason": s.reason})
    union: dict[tuple[str, int], dict] = {}
    binaries = []
    totals = {"sites": 0, "resolved": 0, "partial": 0, "unresolved": 0, "findings": 0}
    by_sev: dict[str, int] = {}
    for r in reports:
        s = r.summary
        for k in ("sites", "resolved", "partial", "unresolved", "findings"):
            totals[k] += getattr(s, k)
        for sev, n in s.by_severity.items():
            by_sev[sev] = by_sev.get(sev, 0) + n
        for u in r.syscalls:
            e = union.setdefault((u.abi, u.nr), {"abi": u.abi, "nr": u.nr, "name": u.name, "binaries": [],
                                                 "sites": 0})
            if e["name"] is None and u.name:
                e["name"] = u.name
            e["binaries"].append(r.binary.path)
            e["sites"] += len(u.sites)
        binaries.append({
            "path": r.binary.path, "sha256": r.binary.sha256, "arch": r.binary.arch, "static": r.binary.static,
            "sites": s.sites, "resolved": s.resolved, "partial": s.partial, "unresolved": s.unresolved,
            "syscalls": s.syscalls, "findings": s.findings, "incomplete": bool(r.incomplete),
        })
    syscalls = [union[k] for k in sorted(union)]
    return {
        "binaries": binaries,
        "raw": [b["path"] for b in binaries if b["sites"]],
        "unknown_numbers": [b["path"] for b in binaries if b["partial"] or b["unresolved"]],
        "incomplete": [b["path"] for b in binaries if b["incomplete"]],
        "syscalls": syscalls,
        "failed": sorted(failed, key=lambda f: f["path"]),
        "skipped": sorted(skip, key=lambda s: s["path"]),
        "summary": {
            "binaries": len(binaries), "failed": len(failed), "raw": sum(1 for b in binaries if b["sites"]),
            "syscalls": len(syscalls), **totals,
            "by_severity": {k: by_sev[k] for k in sorted(by_sev)},
        },
    }


def saved_lists(data: dict):
    """The failed/skipped lists of a saved multi-report document (anything malformed in them is dropped)."""
    from types import SimpleNamespace

    agg = data.get("aggregate") if isinstance(data.get("aggregate"), dict) else {}

    def dicts(key: str) -> list[dict]:
        v = agg.get(key)
        return [x for x in v if isinstance(x, dict)] if isinstance(v, list) else []

    return SimpleNamespace(failures=dicts("failed"), skipped=dicts("skipped"))


def _names(paths: list[str], limit: int = 3) -> str:
    import os

    shown = [os.path.basename(p) for p in paths[:limit]]
    more = f" …+{len(paths) - limit}" if len(paths) > limit else ""
    return ", ".join(shown) + more


def render_table(reports: list, agg: dict, opts: dict) -> str:
    from rich import box
    from rich.console import Console, Group
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    from .. import __version__

    width = opts.get("width") or 140
    buf = io.StringIO()
    console = Console(file=buf, width=width, force_terminal=bool(opts.get("color")),
                      color_system="standard" if opts.get("color") else None, highlight=False, emoji=False)
    s = agg["summary"]
    head = Text()
    head.append(f"{s['binaries']} binaries", style="bold")
    if s["failed"]:
        head.append(f"  {s['failed']} failed", style="bold red")
    head.append(f"  {s['raw']} make raw syscalls")
    head.append(f"  {s['sites']} sites", style="bold")
    head.append(f"  resolved {s['resolved']}", style="green")
    head.append(f"  partial {s['partial']}", style="yellow")
    head.append(f"  unresolved {s['unresolved']}", style="red" if s["unresolved"] else "")
    head.append(f"  distinct syscalls {s['syscalls']}")
    if s["findings"]:
        head.append(f"  findings {s['findings']}", style="bold")
        head.append(" (" + ", ".join(f"{k} {v}" for k, v in sorted(
            s["by_severity"].items(), key=lambda kv: SEVERITIES.index(kv[0]) if kv[0] in SEVERITIES else 9)) + ")",
                    style="dim")
    console.print(Panel(Group(head), title=Text(f"sysscan {__version__}"), title_align="left", box=box.ROUNDED))

    verbose = int(opts.get("verbose", 0))
    rows = [b for b in agg["binaries"] if b["sites"] or b["findings"] or b["incomplete"] or verbose]
    if rows:
        t = Table(title="Binaries" + ("" if verbose else " that make raw syscalls (or have findings)"),
                  title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
        t.add_column("binary", overflow="fold")
        t.add_column("kind", no_wrap=True)
        for c in ("sites", "resolved", "partial", "unresolved", "syscalls", "findings"):
            t.add_column(c, justify="right")
        for b in rows:
            name = Text(escape_controls(b["path"]))
            if b["incomplete"]:
                name.append(" (incomplete)", style="dim")
            t.add_row(name, f"{b['arch']} {'static' if b['static'] else 'dynamic'}", str(b["sites"]),
                      Text(str(b["resolved"]), style="green"), Text(str(b["partial"]), style="yellow"),
                      Text(str(b["unresolved"]), style="red" if b["unresolved"] else ""), str(b["syscalls"]),
                      str(b["findings"]))
        console.print(t)
    quiet_ones = len(agg["binaries"]) - len(rows)
    if quiet_ones:
        console.print(Text(f"{quiet_ones} other binaries make no raw syscalls (they go through shared libraries; "
                           "scan those too for the full picture)", style="dim"))
    if agg["syscalls"]:
        u = Table(title="Syscalls the whole set can make (union of the raw sites)", title_justify="left",
                  box=box.SIMPLE_HEAD, pad_edge=False)
        u.add_column("abi", no_wrap=True)
        u.add_column("nr", justify="right")
        u.add_column("name")
        u.add_column("binaries", justify="right")
        u.add_column("sites", justify="right")
        u.add_column("e.g.", overflow="fold", style="dim")
        for e in agg["syscalls"]:
            u.add_row(e["abi"], str(e["nr"]), e["name"] or "?", str(len(e["binaries"])), str(e["sites"]),
                      escape_controls(_names(e["binaries"])))
        console.print(u)
    if agg["unknown_numbers"]:
        console.print(Text(f"{len(agg['unknown_numbers'])} binaries have sites whose number is not fully known, so "
                           f"they may make more than the union shows: {escape_controls(_names(agg['unknown_numbers'], 6))}",
                           style="yellow"))
    if agg["failed"]:
        f = Table(title="Failed", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
        f.add_column("path", overflow="fold")
        f.add_column("exit", justify="right")
        f.add_column("error", overflow="fold")
        for x in agg["failed"]:
            f.add_row(escape_controls(x["path"]), str(x["exit_code"]), Text(escape_controls(x["error"]), style="red"))
        console.print(f)
    for x in agg["skipped"]:
        console.print(Text(f"skipped: {escape_controls(x['path'])}: {escape_controls(x['reason'])}", style="dim"))
    return buf.getvalue()


def render_many_table(reports: list, agg: dict, opts: dict) -> str:
    """The table format for several binaries: the aggregate; with -v each binary's own table first."""
    parts = []
    if int(opts.get("verbose", 0)):
        from . import render

        parts = [render(r, "table", opts) for r in sorted(reports, key=lambda r: r.binary.path)]
    return "".join(parts) + render_table(reports, agg, opts)
