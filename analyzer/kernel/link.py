"""Kernel stage: put each site's path into *this* kernel on the report, and name syscalls the way it does.

Runs after value recovery, before rules. The kernel analysis (analyzer.kernel) is done once per run and shared by
every binary; this module only reads it.
"""
from __future__ import annotations

import re

from .. import model
from .graph import kernel_paths


def short_version(banner: str | None) -> str:
    """'Linux version 6.1.0-56-cloud-amd64 (…) #1 SMP … Debian 6.1.192-2 (…)' -> '6.1.0-56-cloud-amd64 (Debian
    6.1.192-2)': the linux_banner is long; the release and the distribution version identify the build."""
    if not banner:
        return "unknown"
    m = re.search(r"Linux version (\S+)", banner)
    if not m:
        return banner[:80]
    # the banner names gcc's Debian version first ("gcc-12 (Debian 12.2.0-14…)"); the kernel's comes last
    deb = re.findall(r"Debian (\d[^\s()]*)", banner[m.end():])
    return m.group(1) + (f" (Debian {deb[-1]})" if deb else "")


def kernel_summary(k) -> dict:
    """The part of the kernel analysis a report carries: identity, entries, dispatchers, disagreements.

    Addresses are hex strings, as everywhere in the report; the full tables stay in the kernel cache."""
    def hx(a):
        return None if a is None else f"{a:#x}"

    return {
        "path": k.path,
        "sha256": k.sha256,
        "build_id": k.build_id,
        "version": k.version,
        "symbols": k.symbols,
        "compression": k.compression,
        "entries": [
            {"instruction": e.instruction, "abi": e.abi, "symbol": e.symbol, "address": hx(e.address),
             "method": e.method, "msr": hx(e.msr), "msr_name": e.msr_name, "at": hx(e.at), "writer": e.writer,
             "path": [s.symbol or hx(s.address) for s in e.path]}
            for e in k.entries
        ],
        "dispatchers": {
            abi: {"kind": d.kind, "symbol": d.symbol, "address": hx(d.address), "nr_syscalls": d.nr_syscalls,
                  "bound_method": d.bound_method, "c_entry": d.c_entry_symbol, "found_by": d.found_by}
            for abi, d in sorted(k.dispatchers.items())
        },
        "counts": k.counts(),
        "disagreements": [
            {"abi": d.abi, "nr": d.nr, "table": d.table_symbol or hx(d.table_address),
             "dispatcher": d.switch_symbol or hx(d.switch_address)}
            for d in k.disagreements
        ],
        "warnings": list(k.warnings),
    }


def link_report(report: model.Report, k) -> None:
    """Fill Site.kernel, rename syscalls and arguments from the kernel, and note -ENOSYS numbers."""
    report.table = model.TableInfo(source="vmlinux", kernel_version=short_version(k.version), path=k.path)
    report.kernel = kernel_summary(k)
    for site in report.sites:
        site.kernel = [model.KernelPath(**rec) for rec in kernel_paths(k, site)]
        by_nr = {p.nr: p for p in site.kernel}
        for ref in site.syscalls:
            if ref.abi not in k.tables:
                continue
            h = k.resolve(ref.abi, ref.nr)
            if h.name and not h.enosys:
                ref.name = h.name
                if h.signature:
                    ref.params = [f"{a['type']} {a['name']}".strip() for a in h.signature]
            p = by_nr.get(ref.nr)
            if p is not None and p.enosys:
                what = ref.name or f"number {ref.nr}"
                site.notes.append(f"{what} ({ref.abi} {ref.nr}) returns -ENOSYS on this kernel")
        if len(site.syscalls) == 1:
            params = site.syscalls[0].params
            for i, arg in enumerate(site.args):
                if i < len(params):
                    arg.param = params[i].rpartition(" ")[2].lstrip("*")
    if report.surface is not None:  # the surface's syscalls, linked like sites: this kernel's handler for each
        for u in report.surface.syscalls:
            if u.abi not in k.tables:
                continue
            h = k.resolve(u.abi, u.nr)
            u.handler = None if h.enosys else (h.symbol or None)
            u.enosys = bool(h.enosys)
            if h.name and not h.enosys:
                u.name = h.name
