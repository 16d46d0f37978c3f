"""The terminal view of the aggregate of many binaries (analyzer/aggregate.py computes it): `render_table`; `-v`
puts each binary's full table before it."""
from __future__ import annotations

import io

from ..model import BY_SEVERITY
from ..textsafe import escape_controls



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
            s["by_severity"].items(), key=lambda kv: BY_SEVERITY.index(kv[0]) if kv[0] in BY_SEVERITY else 9)) + ")",
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
    if agg.get("surface"):
        line = Text(f"Surface union ({len(agg['surface'])} syscalls the binaries can make through their libraries): ",
                    style="bold")
        line.append(", ".join(e["name"] or str(e["nr"]) for e in agg["surface"]))
        console.print(line)
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
