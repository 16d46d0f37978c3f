"""The default terminal report (rich). Every string from the binary goes in as rich `Text`, never as markup,
so a symbol named `[bold]x[/]` prints literally."""
from __future__ import annotations

import io

from rich import box
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ..model import RegisterValue, Report, Site
from ..textsafe import terminal_safe
from ..textsafe import num

STATUS_STYLE = {"resolved": "green", "partial": "yellow", "unresolved": "bold red"}
SEVERITY_STYLE = {"critical": "bold white on red", "high": "bold red", "medium": "yellow", "low": "cyan",
                  "info": "dim"}


def fmt_values(v: RegisterValue, limit: int = 4) -> str:
    """`1`, `{39, 102}`, `"/etc/hostname"`, or `?` — what a register holds, compactly."""
    if not v.values:
        return "?"
    parts = []
    for x in v.values[:limit]:
        if x in v.strings:
            parts.append(_quote(v.strings[x]))
        else:
            parts.append(num(x))
    if len(v.values) > limit:
        parts.append(f"…+{len(v.values) - limit}")
    text = parts[0] if len(parts) == 1 else "{" + ", ".join(parts) + "}"
    return text + ("|?" if v.status == "partial" else "")


def _quote(s: str, width: int = 40) -> str:
    s = s if len(s) <= width else s[: width - 1] + "…"
    return '"' + s.encode("unicode_escape").decode("ascii").replace('"', '\\"') + '"'


def syscall_text(site: Site) -> Text:
    if not site.syscalls:
        return Text("?", style=STATUS_STYLE[site.number.status])
    names = [f"{r.nr}→{r.name or '??'}" for r in site.syscalls[:4]]
    if len(site.syscalls) > 4:
        names.append(f"…+{len(site.syscalls) - 4}")
    t = Text(", ".join(names), style=STATUS_STYLE[site.number.status])
    if site.number.status == "partial":
        t.append(" |?", style="yellow")
    return t


def args_text(site: Site) -> Text:
    t = Text()
    for i, a in enumerate(site.args):
        if i:
            t.append(", ")
        label = a.param or a.register
        t.append(f"{label}=", style="dim")
        t.append(fmt_values(a), style="" if a.status == "resolved" else "yellow")
    return t


def render(report: Report, opts: dict) -> str:
    report = terminal_safe(report)  # no string from the binary may drive the terminal (ESC, CR, bidi overrides)
    verbose = int(opts.get("verbose", 0))
    width = opts.get("width") or 140
    buf = io.StringIO()
    console = Console(file=buf, width=width, force_terminal=bool(opts.get("color")), color_system="standard"
                      if opts.get("color") else None, highlight=False, emoji=False)
    b = report.binary
    props = [b.arch, b.elf_type, "static" if b.static else "dynamic", "stripped" if b.stripped else "not stripped"]
    head = Text()
    head.append("file    ", style="bold")
    head.append(b.path + "\n")
    head.append("format  ", style="bold")
    head.append(", ".join(props) + f", {b.size} bytes\n")
    head.append("sha256  ", style="bold")
    head.append(b.sha256 + "\n")
    if b.build_id:
        head.append("buildid ", style="bold")
        head.append(b.build_id + "\n")
    if b.debug_file:
        head.append("symbols ", style="bold")
        head.append(f"from {b.debug_file}\n")
    head.append("table   ", style="bold")
    if report.kernel:
        head.append(f"kernel {report.table.kernel_version} from {report.table.path}")
        counts = report.kernel.get("counts", {}).get("x86_64")
        if counts:
            head.append(f" ({counts.get('implemented')} implemented, {counts.get('enosys')} -ENOSYS)")
    else:
        head.append(f"embedded (kernel {report.table.kernel_version})")
    s = report.summary
    summary = Text()
    summary.append(f"{s.sites} sites", style="bold")
    summary.append(f"  resolved {s.resolved}", style="green")
    summary.append(f"  partial {s.partial}", style="yellow")
    summary.append(f"  unresolved {s.unresolved}", style="red" if s.unresolved else "")
    summary.append(f"  distinct syscalls {s.syscalls}")
    if s.by_instruction:
        summary.append("  (" + ", ".join(f"{k} {v}" for k, v in s.by_instruction.items()) + ")", style="dim")
    if report.findings:
        summary.append(f"  findings {s.findings}", style="bold")
    console.print(Panel(Group(head, Text(""), summary), title=Text(f"sysscan {report.tool['version']}"),
                        title_align="left", box=box.ROUNDED))

    table = Table(box=box.SIMPLE_HEAD, show_lines=False, expand=False, pad_edge=False)
    table.add_column("address", style="cyan", no_wrap=True)
    table.add_column("function", overflow="fold", max_width=32)
    table.add_column("instr", no_wrap=True)
    table.add_column("syscall", overflow="fold")
    table.add_column("arguments", overflow="fold")
    if verbose:
        table.add_column("where / why", overflow="fold", style="dim")
    for site in report.sites:
        instr = Text(site.instruction)
        if site.abi != ("x86_64" if b.bits == 64 else "i386") or (b.bits == 64 and site.abi == "i386"):
            instr.append(f" ({site.abi})", style="magenta")
        row = [Text(f"{site.address:#x}"), Text(site.function), instr, syscall_text(site), args_text(site)]
        if verbose:
            why = Text(f"{site.section} +{site.offset:#x}")
            for r in site.number.reasons:
                why.append("\nnumber: " + r, style="red")
            if "angr" in site.number.provenance:
                why.append("\nnumber: by symbolic execution (angr)")
            for c in site.number.callers[:8]:  # a wrapper site: where its number comes from
                via = "".join(f" → {v}" for v in c.via)
                vals = ", ".join(num(x) for x in c.values) or "?"
                why.append(f"\ncaller {c.call_site:#x} in {c.function}{via}: {vals}",
                           style="" if c.status == "resolved" else "yellow")
            if len(site.number.callers) > 8:
                why.append(f"\n… and {len(site.number.callers) - 8} more callers (all in the JSON report)")
            for a in site.args:
                for r in a.reasons[:1]:
                    why.append(f"\n{a.param or a.register}: {r}")
            for n in site.notes:
                why.append("\n" + n, style="magenta")
            for k in site.kernel:
                why.append("\n" + " → ".join(k.path), style="blue")
            row.append(why)
        table.add_row(*row)
    console.print(table)

    unresolved = [x for x in report.sites if x.number.status != "resolved"]
    if unresolved and not verbose:
        console.print(Text("Unresolved syscall numbers", style="bold red"))
        for x in unresolved:
            line = Text(f"  {x.address:#x} ", style="cyan")
            line.append(x.function)
            line.append(": " + "; ".join(x.number.reasons[:2]), style="red")
            console.print(line)
    if report.wrapper_calls:  # dynamic binaries: syscall(SYS_x, ...) through libc; the kernel entry is in libc
        console.print(Text("Calls to library syscall wrappers", style="bold"))
        for w in report.wrapper_calls:
            line = Text(f"  {w.call_site:#x} ", style="cyan")
            line.append(f"{w.function} → {w.callee}@{w.library}: ")
            names = ", ".join(f"{r.nr}→{r.name or '??'}" for r in w.syscalls) or "?"
            line.append(names, style=STATUS_STYLE[w.number.status])
            if w.number.status != "resolved":
                line.append(" (" + "; ".join(w.number.reasons[:2]) + ")", style="red")
            console.print(line)
    notes = sorted({n for x in report.sites for n in x.notes})
    if notes and not verbose:
        for n in notes:
            console.print(Text("note: " + n, style="magenta"))

    if report.syscalls:
        line = Text("syscalls: ", style="bold")
        native = "x86_64" if report.binary.bits == 64 else "i386"
        ordered = sorted(report.syscalls, key=lambda u: (u.abi != native, u.abi, u.nr))  # the binary's own ABI first
        line.append(", ".join(f"{u.name or u.nr}" + (f"/{u.abi}" if u.abi != native else "") for u in ordered))
        console.print(line)
    if report.surface is not None:
        _surface(console, report, verbose)
    if report.findings:
        ft = Table(title="Findings", box=box.SIMPLE_HEAD, title_justify="left")
        ft.add_column("severity")
        ft.add_column("rule")
        ft.add_column("where", style="cyan")
        ft.add_column("message", overflow="fold")
        ft.add_column("baseline")
        quiet = ("unchanged", "accepted")  # in the baseline or allowlisted: listed, dimmed, not counted
        for f in sorted(report.findings, key=lambda f: f.baseline in quiet):
            dim = f.baseline in quiet
            ft.add_row(Text(f.severity, style="dim" if dim else SEVERITY_STYLE.get(f.severity, "")), Text(f.rule),
                       Text(f"{f.site:#x} {f.function or ''}" if f.site is not None else "binary"),
                       Text(f.message, style="dim" if dim else ""), Text(f.baseline or "", style="dim"))
        console.print(ft)
    for msg in report.incomplete[: (None if verbose else 3)]:
        console.print(Text("incomplete: " + msg, style="dim"))
    if len(report.incomplete) > 3 and not verbose:
        console.print(Text(f"incomplete: … {len(report.incomplete) - 3} more (use -v)", style="dim"))
    return buf.getvalue()


def _surface(console: Console, report: Report, verbose: int) -> None:
    """The program surface: per object what is reached, the syscalls, the open ends; with -v one path each."""
    sf = report.surface
    native = "x86_64" if report.binary.bits == 64 else "i386"
    head = Text("Surface", style="bold")
    head.append(f": {len(sf.syscalls)} syscalls reachable from the entry points through {len(sf.objects)} "
                f"object{'s' if len(sf.objects) != 1 else ''} ({sf.reachable_functions} functions reached)")
    console.print(head)
    ot = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    ot.add_column("object", overflow="fold")
    ot.add_column("kind")
    ot.add_column("functions reached", justify="right")
    ot.add_column("sites reached", justify="right")
    for o in sf.objects:
        name = Text(o.name)
        if o.debug_file:
            name.append(" (symbols from its debug file)", style="dim")
        ot.add_row(name, Text(o.kind), f"{o.reachable_functions}/{o.functions}",
                   f"{o.reachable_sites}/{o.sites}")
    console.print(ot)
    ordered = sorted(sf.syscalls, key=lambda u: (u.abi != native, u.abi, u.nr))
    line = Text("surface syscalls: ", style="bold")
    line.append(", ".join(f"{u.name or u.nr}" + (f"/{u.abi}" if u.abi != native else "") for u in ordered))
    console.print(line)
    if verbose:
        for u in ordered:
            t = Text(f"  {u.name or u.nr}", style="bold")
            t.append(": " + " → ".join(u.path), style="dim")
            if u.handler:
                t.append(f"  ⇒ {u.handler}", style="blue")
            console.print(t)
    shown = sf.open_ends if verbose else sf.open_ends[:6]
    for o in shown:
        t = Text(f"open end ({o.kind}): ", style="yellow")
        where = f"{o.address:#x} in {o.function} " if o.address is not None and o.function else ""
        t.append(f"{o.object}: {where}{o.detail}")
        console.print(t)
    if len(sf.open_ends) > len(shown):
        console.print(Text(f"open ends: … {len(sf.open_ends) - len(shown)} more (use -v)", style="dim"))
