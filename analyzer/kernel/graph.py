"""The path from each user-side syscall site into a given kernel, as a networkx DiGraph:

    site -> entry (with the MSR/IDT that led there) -> [asm/C hops] -> do_syscall_64 -> dispatcher -> handler
         -> implementation

Every edge carries `how` (the relation: call, jmp, dispatch ...) and `established` (how we know it: data flow,
table read, switch decode, symbol). Export with write_graph (GraphML / DOT / JSON chosen by the extension), and
path_line() gives the one-line text the report prints per site.

Sites are duck-typed: any object with `address` (int), `abi` ("x86_64" | "i386" | "x32"), `instruction`
(a kind of analyzer.sites.KINDS) and either `numbers` (iterable of possible syscall numbers; empty when unknown) or
`number.values` (analyzer.model.Site). A call into the 32-bit vDSO goes site -> vDSO __kernel_vsyscall -> the entry
of the trap it uses (sysenter, syscall or int 0x80: see trap_of); a call into the legacy vsyscall page goes
site -> emulate_vsyscall -> the x86-64 handler, which the emulation calls directly (no dispatcher).
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterable

import networkx as nx

from .. import outfile
from ..syscalls.abi import VDSO_KINDS, VSYSCALL
from ..syscalls import X32_SYSCALL_BIT
from .model import EntryPoint, Handler, KernelAnalysis
from .vdso import TRAP_PREFERENCE

VDSO_HOP = "vDSO __kernel_vsyscall"

MAX_NUMBERS_IN_LINE = 3


def effective_abi(instruction: str, abi: str, nr: int | None = None) -> str:
    """Which table a number is looked up in: int 0x80 and sysenter always use the 32-bit table; a 64-bit
    `syscall` with the x32 bit set uses the x32 table."""
    if instruction in ("int 0x80", "sysenter") or instruction in VDSO_KINDS:
        return "i386"
    if abi in ("x86_64", "x32") and nr is not None and nr >= 0 and nr & X32_SYSCALL_BIT:
        return "x32"
    return "x86_64" if abi == "x32" else abi


def trap_of(kernel: KernelAnalysis, instruction: str) -> str:
    """The trap instruction a site's entry into the kernel ends in. A vDSO call ends in what the kernel's own
    `__kernel_vsyscall` uses: sysenter on Intel CPUs, syscall on AMD ones (both patched in at boot), int 0x80
    otherwise; the first of those the vDSO image holds and this kernel has an entry for."""
    if instruction not in VDSO_KINDS:
        return instruction
    held = next((v.entry_traps for v in kernel.vdso if v.entry_traps), None) or list(TRAP_PREFERENCE)
    return next((t for t in held if kernel.entry_for(t, "i386") is not None), held[0])


def site_numbers(site) -> list[int]:
    """The possible numbers of a site object: `numbers`, else `number.values` (analyzer.model.Site)."""
    nums = getattr(site, "numbers", None)
    if nums is None:
        number = getattr(site, "number", None)
        nums = getattr(number, "values", None) if number is not None else None
    return sorted({int(n) for n in (nums or ())})


def _hex(a: int | None) -> str | None:
    return None if a is None else f"{a:#x}"


def _clean(attrs: dict) -> dict:
    """GraphML takes only str/int/float/bool: drop None, hex-encode addresses, join lists."""
    out = {}
    for k, v in attrs.items():
        if v is None:
            continue
        if isinstance(v, (list, tuple, set, frozenset)):
            v = ",".join(str(x) for x in v)
        out[k] = v
    return out


def _add_node(g: nx.DiGraph, node: str, **attrs) -> str:
    if node not in g:
        g.add_node(node, **_clean(attrs))
    return node


def _add_edge(g: nx.DiGraph, a: str, b: str, **attrs) -> None:
    if g.has_edge(a, b):
        nums = attrs.get("numbers")
        if nums is not None and "numbers" in g.edges[a, b]:
            old = {int(x) for x in str(g.edges[a, b]["numbers"]).split(",") if x}
            g.edges[a, b]["numbers"] = ",".join(str(x) for x in sorted(old | set(nums)))
        return
    g.add_edge(a, b, **_clean(attrs))


def _func(addr: int) -> str:
    return f"func:{addr:#x}"


def _entry_chain(g: nx.DiGraph, k: KernelAnalysis, e: EntryPoint) -> str | None:
    """Add entry -> hops -> C entry -> dispatcher; return the dispatcher node (None if not reached)."""
    established = {"wrmsr": "data flow (wrmsr)", "paravirt": "data flow (paravirt MSR write)",
                   "msr-call": "data flow (MSR write helper)", "idt": "IDT record (struct idt_data)",
                   "symbol-fallback": "symbol"}.get(e.method, e.method)
    en = _add_node(g, f"entry:{e.address:#x}", kind="entry", label=e.symbol or _hex(e.address),
                   address=_hex(e.address), symbol=e.symbol, instruction=e.instruction, abi=e.abi,
                   msr=e.msr_name or _hex(e.msr), method=e.method, established=established,
                   set_at=_hex(e.at), writer=e.writer, via=e.via)
    prev = en
    for step in e.path[1:]:
        node = _add_node(g, _func(step.address), kind="function", label=step.symbol or _hex(step.address),
                         address=_hex(step.address), symbol=step.symbol)
        _add_edge(g, prev, node, how=step.how, established="direct " + step.how, at=_hex(step.at))
        prev = node
    if e.c_entry is not None:
        g.nodes[prev]["kind"] = "c-entry"
    if not e.dispatcher or e.dispatcher not in k.dispatchers:
        return None
    d = k.dispatchers[e.dispatcher]
    dn = _add_node(g, f"dispatcher:{d.abi}", kind="dispatcher", label=f"{d.symbol or _hex(d.address)} [{d.kind}]",
                   abi=d.abi, dispatch=d.kind, symbol=d.symbol, address=_hex(d.address), nr_syscalls=d.nr_syscalls,
                   bound=d.bound_method, found_by=d.found_by)
    _add_edge(g, prev, dn, how="dispatch", at=_hex(d.site),
              established=f"{d.found_by}; bound NR_syscalls={d.nr_syscalls} by {d.bound_method}")
    return dn


def _handler_chain(g: nx.DiGraph, dn: str, h: Handler, kind: str) -> str:
    hn = _add_node(g, f"handler:{h.abi}:{h.address:#x}" if h.address else f"handler:{h.abi}:enosys",
                   kind="handler", label=h.symbol or "-ENOSYS", address=_hex(h.address), symbol=h.symbol,
                   name=h.name, enosys=h.enosys, signature=h.prototype(),
                   source=h.source)
    est = {"switch": "switch decode", "jump-table": "jump-table decode", "table": "table read"}.get(kind, kind)
    if h.how.startswith("out of range") or h.how.startswith("hole"):
        est = h.how
    _add_edge(g, dn, hn, how="handler", established=est, numbers=[h.nr])
    prev = hn
    for name in h.chain:
        if name == h.implementation and h.implementation_address:
            node = _add_node(g, _func(h.implementation_address), kind="implementation", label=name, symbol=name,
                             address=_hex(h.implementation_address))
            _add_edge(g, prev, node, how="call", established="direct call (bounded depth)")
            prev = node
        else:
            node = _add_node(g, f"func:{name}", kind="function", label=name, symbol=name)
            _add_edge(g, prev, node, how="call", established="direct call (bounded depth)")
            prev = node
    return hn


def build_graph(kernel: KernelAnalysis, sites: Iterable | None = None) -> nx.DiGraph:
    """The kernel's graph: every entry and dispatcher; with `sites`, each site's path to the handlers of its
    possible numbers (unknown numbers: the site reaches the dispatcher only). Without sites, every handler."""
    g = nx.DiGraph(kernel=kernel.version or kernel.path, build_id=kernel.build_id or "", sha256=kernel.sha256)
    dnodes: dict[str, str] = {}
    entry_nodes: dict[str, str] = {}
    for e in kernel.entries:
        dn = _entry_chain(g, kernel, e)
        if dn:
            dnodes.setdefault(e.dispatcher, dn)
        entry_nodes.setdefault(e.instruction, f"entry:{e.address:#x}")
    if sites is None:
        for abi, table in kernel.tables.items():
            dn = dnodes.get(abi) or _add_node(g, f"dispatcher:{abi}", kind="dispatcher", abi=abi,
                                              label=f"{abi} dispatcher")
            kind = kernel.dispatchers[abi].kind if abi in kernel.dispatchers else "?"
            for h in table.values():
                _handler_chain(g, dn, h, kind)
        return g
    for s in sites:
        numbers = site_numbers(s)
        instruction = getattr(s, "instruction", "syscall")
        abi = getattr(s, "abi", "x86_64")
        sn = _add_node(g, f"site:{s.address:#x}", kind="site", label=f"{instruction} @ {s.address:#x}",
                       address=_hex(s.address), instruction=instruction, abi=abi, numbers=numbers or None)
        if instruction == VSYSCALL:
            _vsyscall_chain(g, kernel, sn, numbers)
            continue
        trap = trap_of(kernel, instruction)
        e = kernel.entry_for(trap, effective_abi(instruction, abi))
        if e is None:
            continue
        if trap != instruction:
            vn = _add_node(g, "vdso:__kernel_vsyscall", kind="function", label=VDSO_HOP, symbol="__kernel_vsyscall")
            _add_edge(g, sn, vn, how="call", established="the TCB's sysinfo slot / AT_SYSINFO")
            sn, instruction = vn, trap
        en = f"entry:{e.address:#x}"
        _add_edge(g, sn, en, how=instruction, established=f"{e.msr_name or 'IDT vector 0x80'} "
                                                         f"({e.method})" if e.method != "idt" else "IDT vector 0x80")
        for n in numbers:
            eff = effective_abi(instruction, abi, n)
            if eff not in kernel.tables:
                continue
            dn = dnodes.get(eff)
            if dn is None:
                continue
            _handler_chain(g, dn, kernel.resolve(eff, n), kernel.dispatchers[eff].kind)
    return g


def _vsyscall_chain(g: nx.DiGraph, kernel: KernelAnalysis, sn: str, numbers: list[int]) -> None:
    """site -> emulate_vsyscall -> handler: the page fault in the vsyscall page is emulated by calling the
    x86-64 handler itself."""
    if kernel.vsyscall_emulation is None or "x86_64" not in kernel.tables:
        return
    en = _add_node(g, _func(kernel.vsyscall_emulation), kind="entry", label=kernel.vsyscall_emulation_symbol,
                   address=_hex(kernel.vsyscall_emulation), symbol=kernel.vsyscall_emulation_symbol,
                   established="symbol")
    _add_edge(g, sn, en, how="page fault", established="the vsyscall page is not executable: the fault is emulated")
    for n in numbers:
        _handler_chain(g, en, kernel.resolve("x86_64", n), "direct call")


def write_graph(graph: nx.DiGraph, path: str) -> str:
    """Write as GraphML (.graphml/.xml), DOT (.dot/.gv) or JSON node-link (.json). Returns the format used."""
    ext = os.path.splitext(path)[1].lower()
    if ext in (".graphml", ".xml"):
        fmt = "graphml"
        text = "\n".join(nx.generate_graphml(graph)) + "\n"
    elif ext in (".dot", ".gv"):
        fmt = "dot"
        text = to_dot(graph)
    elif ext == ".json":
        fmt = "json"
        text = json.dumps(nx.node_link_data(graph, edges="edges") if _has_edges_kw() else nx.node_link_data(graph),
                          indent=1, sort_keys=True) + "\n"
    else:
        raise ValueError(f"unknown graph format {ext!r}: use .graphml, .dot or .json")
    outfile.write_text(path, text)
    return fmt


def _has_edges_kw() -> bool:
    import inspect

    try:
        return "edges" in inspect.signature(nx.node_link_data).parameters
    except (TypeError, ValueError):
        return False


def _dot_id(s: str) -> str:
    return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(graph: nx.DiGraph) -> str:
    """DOT without pydot/pygraphviz (neither is a dependency)."""
    shapes = {"site": "box", "entry": "cds", "function": "ellipse", "c-entry": "ellipse", "dispatcher": "diamond",
              "handler": "box", "implementation": "ellipse"}
    lines = ["digraph sysscan {", "  rankdir=LR;", "  node [fontname=monospace];"]
    for n, a in graph.nodes(data=True):
        label = a.get("label", n)
        extra = ", style=filled, fillcolor=mistyrose" if a.get("enosys") else ""
        lines.append(f"  {_dot_id(n)} [label={_dot_id(label)}, shape={shapes.get(a.get('kind'), 'ellipse')}{extra}];")
    for u, v, a in graph.edges(data=True):
        label = a.get("established", a.get("how", ""))
        if "numbers" in a:
            nums = str(a["numbers"]).split(",")
            label += f" [{','.join(nums[:8])}{'...' if len(nums) > 8 else ''}]"
        lines.append(f"  {_dot_id(u)} -> {_dot_id(v)} [label={_dot_id(label)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def handler_text(h: Handler) -> str:
    text = h.symbol or "-ENOSYS"
    if h.implementation:
        text += f" -> {h.implementation}"
    if h.enosys:
        text += " (-ENOSYS)"
    return text


def path_line(kernel: KernelAnalysis, site=None, *, instruction: str | None = None, abi: str | None = None,
              numbers: Iterable[int] | None = None) -> str:
    """One line: 'syscall -> entry_SYSCALL_64 [MSR_LSTAR, paravirt] -> do_syscall_64 -> x64_sys_call [switch]
    -> __x64_sys_write -> ksys_write'. Pass a site object, or instruction/abi/numbers."""
    if site is not None:
        instruction = instruction or getattr(site, "instruction", "syscall")
        abi = abi or getattr(site, "abi", "x86_64")
        numbers = numbers if numbers is not None else site_numbers(site)
    instruction = instruction or "syscall"
    abi = abi or "x86_64"
    nums = sorted({int(n) for n in (numbers or ())})
    if instruction == VSYSCALL:
        parts = [instruction, f"{kernel.vsyscall_emulation_symbol or '(no vsyscall emulation in this kernel)'} "
                              "[vsyscall page fault]"]
        return " -> ".join(parts + ([_handlers_text([kernel.resolve("x86_64", n) for n in nums])] if nums else []))
    trap = trap_of(kernel, instruction)
    e = kernel.entry_for(trap, effective_abi(instruction, abi))
    if e is None:
        return f"{instruction} -> (no {trap} entry in this kernel)"
    how = e.msr_name or ("IDT 0x80" if e.method == "idt" else "")
    parts = [instruction] + ([f"{VDSO_HOP} ({trap})"] if trap != instruction else [])
    parts.append(f"{e.symbol or hex(e.address)} [{how + ', ' if how else ''}{e.method}]")
    parts += [s.symbol or hex(s.address) for s in e.path[1:]]
    if not e.dispatcher:
        return " -> ".join(parts + ["(no dispatcher found)"])
    eff_abis = {effective_abi(instruction, abi, n) for n in nums} or {e.dispatcher}
    eff = sorted(eff_abis)[0]
    d = kernel.dispatchers.get(eff)
    if d is not None:
        parts.append(f"{d.symbol or hex(d.address)} [{d.kind}]")
    if not nums:
        return " -> ".join(parts + ["(number unknown)"])
    return " -> ".join(parts + [_handlers_text([kernel.resolve(effective_abi(instruction, abi, n), n)
                                                 for n in nums])])


def _handlers_text(handlers: list[Handler]) -> str:
    """A site's handlers in its path line: each of a few, or how many."""
    if len(handlers) <= MAX_NUMBERS_IN_LINE:
        texts = [handler_text(h) for h in handlers]
        return texts[0] if len(texts) == 1 else "{" + " | ".join(texts) + "}"
    enosys = sum(1 for h in handlers if h.enosys)
    return f"{len(handlers)} handlers" + (f" ({enosys} -ENOSYS)" if enosys else "")


def kernel_paths(kernel: KernelAnalysis, site) -> list[dict]:
    """One record per possible number of a site, with the fields of analyzer.model.KernelPath: nr, abi, entry,
    entry_address, handler, handler_address, implementation, source, enosys, path (node names, site first)."""
    instruction = getattr(site, "instruction", "syscall")
    abi = getattr(site, "abi", "x86_64")
    out = []
    trap = trap_of(kernel, instruction)
    for n in site_numbers(site):
        eff = effective_abi(instruction, abi, n)
        h = kernel.resolve(eff, n) if eff in kernel.tables else None
        path = [f"{instruction} @ {site.address:#x}"]
        if instruction == VSYSCALL:  # emulate_vsyscall calls the handler: no entry code, no dispatcher
            entry, entry_address = kernel.vsyscall_emulation_symbol, kernel.vsyscall_emulation
            path += [entry] if entry else []
        else:
            e = kernel.entry_for(trap, eff if eff != "x32" else "x86_64")
            d = kernel.dispatchers.get(eff)
            entry, entry_address = (e.symbol, e.address) if e else (None, None)
            if trap != instruction:
                path.append(f"{VDSO_HOP} ({trap})")
            if e is not None:
                path += [e.symbol or hex(e.address)] + [s.symbol or hex(s.address) for s in e.path[1:]]
            if d is not None:
                path.append(d.symbol or hex(d.address))
        if h is not None:
            path += [h.symbol or "-ENOSYS"] + list(h.chain)
        out.append({
            "nr": n, "abi": eff, "entry": entry, "entry_address": entry_address,
            "handler": h.symbol if h else None, "handler_address": h.address if h and h.address else None,
            "implementation": h.implementation if h else None, "source": h.source if h else None,
            "enosys": bool(h.enosys) if h else True, "path": path,
        })
    return out
