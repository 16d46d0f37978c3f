"""`python -m analyzer.kernel VMLINUX [--json] [--no-cache] [--graph FILE]`: the kernel's recovered syscall
tables. A thin stand-in for `sysscan kernel VMLINUX` (which the main CLI provides), used by the benchmark."""
from __future__ import annotations

import argparse
import json
import sys

from ..errors import SysscanError
from . import analyze_kernel


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m analyzer.kernel", description=__doc__)
    ap.add_argument("vmlinux")
    ap.add_argument("--json", action="store_true", help="print the analysis as JSON")
    ap.add_argument("--no-cache", action="store_true", help="do not read or write the analysis cache")
    ap.add_argument("--graph", metavar="FILE", help="write the kernel graph (.graphml/.dot/.json)")
    args = ap.parse_args(argv)
    try:
        a = analyze_kernel(args.vmlinux, use_cache=not args.no_cache)
    except SysscanError as e:
        print(f"sysscan: {e}", file=sys.stderr)
        return e.exit_code
    if args.graph:
        from ..graph import build_graph, write_graph

        write_graph(build_graph(a), args.graph)
    out = sys.stdout
    if args.json:
        # json.dumps, compact: the C encoder (json.dump to a file and indent= both use the pure-Python one)
        out.write(json.dumps(a.to_dict(), separators=(",", ":")))
        out.write("\n")
        return 0
    out.write(f"{a.version or a.path}\nbuild-id {a.build_id}  content sha256 {a.sha256[:16]}…"
              f"{'  (cached)' if a.cached else ''}\n")
    for e in a.entries:
        how = e.msr_name or ("IDT vector 0x80" if e.method == "idt" else "")
        out.write(f"entry {e.instruction:17} {e.symbol or hex(e.address)} [{how}{', ' if how else ''}{e.method}]"
                  f" -> {' -> '.join(s.symbol or hex(s.address) for s in e.path[1:]) or '-'}\n")
    for abi, d in a.dispatchers.items():
        c = a.counts()[abi]
        out.write(f"{abi}: {d.symbol} [{d.kind}] from {d.c_entry_symbol}, NR_syscalls={d.nr_syscalls} "
                  f"({d.bound_method}); {c['implemented']} implemented, {c['enosys']} -ENOSYS\n")
    for abi, table in a.tables.items():
        for nr, h in sorted(table.items()):
            if h.enosys:
                continue
            impl = f" -> {h.implementation}" if h.implementation else ""
            proto = h.prototype() or ""
            out.write(f"{abi:6} {nr:4} {h.symbol:40} {proto}{impl}\n")
    for d in a.disagreements:
        out.write(f"DISAGREEMENT {d.abi} {d.nr}: table {d.table_symbol} vs dispatcher {d.switch_symbol}\n")
    for w in a.warnings:
        out.write(f"warning: {w}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
