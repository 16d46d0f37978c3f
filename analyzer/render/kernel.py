"""`sysscan kernel VMLINUX`: the kernel's entries, dispatchers and syscall tables, as a rich table or JSON.

Reads an analyzer.kernel.KernelAnalysis; analyses nothing. Symbol names come from the image: they go in as
rich Text, never as markup."""
from __future__ import annotations

import io
import json

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text


def _hx(a: int | None) -> str:
    return "-" if a is None else f"{a:#x}"


def render_kernel(k, fmt: str, opts: dict | None = None) -> str:
    opts = opts or {}
    if fmt == "json":
        return json.dumps(k.to_dict(), sort_keys=True, separators=(",", ":")) + "\n"
    buf = io.StringIO()
    con = Console(file=buf, width=opts.get("width") or 160, color_system=None, highlight=False, emoji=False)
    head = Text()
    head.append(f"{k.version or k.path}\n", style="bold")
    head.append(f"build-id {k.build_id}  content sha256 {k.sha256}" + ("  (cached)" if k.cached else ""))
    if k.symbols != "symtab":
        packed = f"the {k.compression}-compressed bzImage" if k.compression else "the stripped image"
        head.append(f"\nsymbols from {packed}'s kallsyms: no DWARF, no source lines")
    con.print(head)

    et = Table(title="Entry points", title_justify="left", box=box.SIMPLE_HEAD)
    for col in ("instruction", "entry", "address", "found by", "written at", "path to C"):
        et.add_column(col, overflow="fold")
    for e in k.entries:
        how = e.method + (f" {e.msr_name}" if e.msr_name else "") + (f" via {e.via}" if e.via else "")
        at = f"{_hx(e.at)} {e.writer or ''}".strip()
        path = " → ".join(s.symbol or _hx(s.address) for s in e.path[1:]) or "-"
        et.add_row(Text(e.instruction), Text(e.symbol or "?"), Text(_hx(e.address)), Text(how), Text(at),
                   Text(path))
    con.print(et)

    dt = Table(title="Dispatchers", title_justify="left", box=box.SIMPLE_HEAD)
    for col in ("abi", "dispatcher", "kind", "called from", "NR_syscalls", "bound", "implemented", "-ENOSYS"):
        dt.add_column(col)
    counts = k.counts()
    for abi, d in sorted(k.dispatchers.items()):
        c = counts.get(abi, {})
        dt.add_row(abi, Text(d.symbol or _hx(d.address)), d.kind, Text(d.c_entry_symbol or _hx(d.c_entry)),
                   str(d.nr_syscalls), Text(d.bound_method), str(c.get("implemented", "")), str(c.get("enosys", "")))
    con.print(dt)

    for abi, table in sorted(k.tables.items()):
        tt = Table(title=f"{abi} syscalls", title_justify="left", box=box.SIMPLE_HEAD)
        for col in ("nr", "handler", "signature", "implementation", "source"):
            tt.add_column(col, overflow="fold")
        for nr, h in sorted(table.items()):
            if h.enosys and not opts.get("all"):
                continue
            tt.add_row(str(nr), Text(h.symbol or "-ENOSYS"), Text(h.prototype() or (h.name or "")),
                       Text(h.implementation or ""), Text(h.source or ""))
        con.print(tt)
    for v in k.vdso:
        vt = Table(title=f"{v.symbol}: the {v.bits}-bit vDSO ({v.size} bytes at {_hx(v.address)}), its syscall sites",
                   title_justify="left", box=box.SIMPLE_HEAD)
        for col in ("address", "function", "section", "instruction", "syscall"):
            vt.add_column(col, overflow="fold")
        for x in v.sites:
            names = ", ".join(x.names) + ("" if x.status == "resolved" else (" | ?" if x.names else "?"))
            vt.add_row(_hx(x.address), Text(x.function), Text(x.section), Text(x.instruction), Text(names))
        con.print(vt)
        if v.entry_traps:
            con.print(Text(f"  __kernel_vsyscall enters with: {' / '.join(v.entry_traps)} (patched in at boot by CPU "
                           "vendor)"))
    for d in k.disagreements:
        con.print(Text(f"DISAGREEMENT {d.abi} {d.nr}: stored table → {d.table_symbol or _hx(d.table_address)}, "
                       f"dispatcher → {d.switch_symbol or _hx(d.switch_address)}", style="bold red"))
    for w in k.warnings:
        con.print(Text(f"warning: {w}"))
    return buf.getvalue()
