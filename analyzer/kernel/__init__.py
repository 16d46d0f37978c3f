"""Kernel linking: from a vmlinux, follow the syscall entry MSRs (and the int 0x80 gate) to the dispatcher and
resolve every syscall number to its handler.

    analysis = analyze_kernel("vmlinux")          # cached per content hash + build-id in $XDG_CACHE_HOME/sysscan
    analysis.resolve("x86_64", 1)                 # Handler(symbol="__x64_sys_write", implementation="ksys_write")
    analysis.entry_for("syscall", "x86_64")       # EntryPoint(symbol="entry_SYSCALL_64", method="paravirt", ...)

Analysis code never prints; problems with the input raise analyzer.errors.* (BadKernel for a file that is not a
usable vmlinux), everything else uncertain goes to `analysis.warnings`.
"""
from __future__ import annotations

import struct
import time
from collections import Counter

from typing import TYPE_CHECKING

from .. import __version__
from ..budget import gc_paused
from ..syscalls import abi as syscall_abi
from . import cache
from .image import KernelImage, WholeFile, fingerprint, load_kernel
from .model import (
    ABIS,
    X32_SYSCALL_BIT,
    Disagreement,
    Dispatcher,
    EntryPoint,
    Handler,
    KernelAnalysis,
    MsrWrite,
    PathStep,
)

if TYPE_CHECKING:  # the analysis modules pull in capstone: imported only on a cache miss (warm runs stay fast)
    from .dispatch import Dispatch, DispatchPath, Site

__all__ = [
    "analyze_kernel", "analyze_image", "load_kernel", "KernelAnalysis", "KernelImage", "Handler", "EntryPoint",
    "Dispatcher", "Disagreement", "MsrWrite", "PathStep", "ABIS", "X32_SYSCALL_BIT",
]

ENTRY_ORDER = {"syscall": 0, "sysenter": 1, "syscall (compat)": 2, "int 0x80": 3}


def analyze_kernel(path: str, use_cache: bool = True) -> KernelAnalysis:
    """Analyse the vmlinux at `path` (or return the cached analysis of identical content)."""
    with gc_paused():  # ~120k symbols' worth of small objects: full collections would walk them again and again
        return _analyze_kernel(path, use_cache)


def _analyze_kernel(path: str, use_cache: bool) -> KernelAnalysis:
    t0 = time.perf_counter()
    fp = fingerprint(path)  # validates the file and reads what the analysis needs; the hash runs in a thread
    if use_cache and cache.may_hold(fp.build_id):  # no entry for this build-id: a miss without waiting for the hash
        hit = cache.load(fp.sha256, fp.build_id)
        if hit is not None:
            hit.path = path
            hit.cached = True
            hit.timings = {"fingerprint": fp_time(t0), "total": time.perf_counter() - t0}
            return hit
    t1 = time.perf_counter()
    if isinstance(fp, WholeFile) and fp.compressed:
        fp.start()  # the payload decompresses while the analysis modules (Capstone, LIEF) are imported
        _preload()
    image = load_kernel(path, known=fp)
    t2 = time.perf_counter()
    analysis = analyze_image(image)
    analysis.timings = {"fingerprint": t1 - t0, "load": t2 - t1, **analysis.timings,
                        "total": time.perf_counter() - t0}
    if use_cache:
        cache.store(analysis)
    return analysis


def _preload() -> None:
    import lief  # noqa: F401 - the vDSO images are loaded with it (program/load.py imports it when it loads)

    from . import code, dispatch  # noqa: F401 - Capstone


def fp_time(t0: float) -> float:
    return time.perf_counter() - t0


def analyze_image(image: KernelImage) -> KernelAnalysis:
    from .code import Code
    from .dispatch import Dispatch
    from .entry import entries_from_writes, fallback_entries, find_int80, find_msr_writes
    from .handlers import HandlerInfo

    t0 = time.perf_counter()
    code = Code(image)
    disp = Dispatch(image, code)
    info = HandlerInfo(image, code)
    a = KernelAnalysis(path=image.path, sha256=image.sha256, build_id=image.build_id, version=image.version,
                       file_size=image.file_size, tool_version=__version__, symbols=image.symbols_from,
                       compression=image.compression)

    # 1. entries, by data flow
    a.msr_writes = find_msr_writes(image, code)
    entries = entries_from_writes(image, a.msr_writes) + find_int80(image)
    entries += fallback_entries(image, {e.instruction for e in entries})
    entries.sort(key=lambda e: (ENTRY_ORDER.get(e.instruction, 9), e.method == "symbol-fallback"))
    a.entries = entries
    for e in entries:
        if e.method == "symbol-fallback":
            a.warnings.append(f"{e.instruction}: entry {e.symbol} located by name only (no MSR write/IDT record "
                              "found by data flow)")
    t1 = time.perf_counter()

    # 2. entry -> C entry function -> dispatch sites -> dispatcher per ABI
    decoded: dict[str, dict[int, tuple[int, str]]] = {}
    for e in entries:
        path = disp.walk(e.address)
        if path is None:
            e.note = (e.note + "; " if e.note else "") + "no dispatcher reachable from this entry"
            continue
        e.path = path.steps
        e.c_entry = path.c_entry
        e.c_entry_symbol = image.best_name(path.c_entry)
        if e.instruction == "syscall" and a.do_syscall_64 is None:
            a.do_syscall_64, a.do_syscall_64_symbol = e.c_entry, e.c_entry_symbol
        _dispatchers_from(a, image, disp, e, path, decoded, "data flow")

    for abi in ("x86_64",):
        if abi not in a.dispatchers:
            _fallback_dispatcher(a, image, disp, abi, decoded)
    t2 = time.perf_counter()

    # 3. cross-check with the stored tables, then describe every handler
    for abi, d in a.dispatchers.items():
        _cross_check(a, image, disp, abi, d, decoded[abi])
        a.tables[abi] = _handlers(a, image, info, abi, d, decoded[abi])
    t3 = time.perf_counter()

    # 4. what the kernel maps into user space and enters through: its vDSO images, the vsyscall page's emulation
    from .vdso import find_vdso_images

    a.vdso = find_vdso_images(image, a.warnings)
    a.vsyscall_emulation = image.address_of("emulate_vsyscall")
    a.vsyscall_emulation_symbol = "emulate_vsyscall" if a.vsyscall_emulation is not None else None
    t4 = time.perf_counter()
    a.timings = {"entries": t1 - t0, "dispatch": t2 - t1, "handlers": t3 - t2, "vdso": t4 - t3}
    return a


def _dispatchers_from(a: KernelAnalysis, image: KernelImage, disp: "Dispatch", e: EntryPoint, path: "DispatchPath",
                      decoded: dict, found_by: str) -> None:
    lo, hi = image.function_range(path.c_entry)
    for site in path.sites:
        abi = e.abi
        if abi == "x86_64" and disp.is_x32_site(lo, hi, site):
            abi = "x32"
        existing = a.dispatchers.get(abi)
        if existing is not None:
            if existing.site != site.at and existing.address != site.target:
                a.warnings.append(f"{e.instruction} ({e.symbol}) reaches another {abi} dispatcher at "
                                  f"{site.at:#x} than {existing.site:#x}; keeping the first")
            if abi == e.abi:
                e.dispatcher = abi
            continue
        d, mapping = _build_dispatcher(a, image, disp, abi, path.c_entry, lo, hi, site, found_by)
        if d is None:
            continue
        a.dispatchers[abi] = d
        decoded[abi] = mapping
        if abi == e.abi:
            e.dispatcher = abi


def _build_dispatcher(a, image, disp, abi, c_entry, lo, hi, site: "Site", found_by):
    from .dispatch import INLINE_ENOSYS, UNKNOWN_DOMAIN
    from .handlers import ABI_PREFIXES

    bound = disp.bound(lo, hi, site)
    nr = bound.nr
    method = bound.method
    if nr is not None and not 0 < nr <= 4096:
        a.warnings.append(f"{abi}: implausible NR_syscalls bound {nr} at {bound.at:#x}; ignored")
        nr, method = None, "none found"
    if site.kind == "switch":
        dec = disp.decode_switch(site.target, range(nr if nr else UNKNOWN_DOMAIN), site.index_reg or "rsi")
        mapping = dict(dec.mapping)
        for w in dict.fromkeys(dec.warnings):
            a.warnings.append(f"{abi} switch: {w}")
        if dec.conflicts:
            a.warnings.append(f"{abi} switch: numbers reaching two handlers: {sorted(dec.conflicts)[:10]}")
        if dec.unresolved:
            a.warnings.append(f"{abi} switch: {len(dec.unresolved)} numbers not resolved, e.g. "
                              f"{sorted(dec.unresolved)[:10]}")
        kind = "jump-table" if dec.used_table else "switch"
        counts = Counter(t for t, _ in mapping.values())
        default = counts.most_common(1)[0][0] if counts else None
        if nr is None:
            explicit = [n for n, (t, _) in mapping.items() if t != default]
            nr = max(explicit) + 1 if explicit else 0
            method = "switch cases (no bound found in the caller)"
            mapping = {n: v for n, v in mapping.items() if n < nr}
    else:
        kind = "table"
        default = None
        if nr is None:
            size = max((s.size for s in image.symbols_at(site.target) if s.kind == "object"), default=0)
            if size:
                nr, method = size // 8, "table symbol size"
            else:
                nr, method = _table_extent(image, disp, site.target), "pointers to code (no bound found)"
        mapping = {n: (t, "table read") for n, t in disp.read_table(site.target, nr).items()}
        counts = Counter(t for t, _ in mapping.values())
        default = counts.most_common(1)[0][0] if counts else None
    d = Dispatcher(abi=abi, kind=kind, address=site.target, symbol=image.best_name(site.target), site=site.at,
                   c_entry=c_entry, c_entry_symbol=image.best_name(c_entry), nr_syscalls=nr, bound_method=method,
                   bound_at=bound.at, default=default if default not in (None, INLINE_ENOSYS) else None,
                   default_symbol=image.best_name(default, ABI_PREFIXES.get(abi, ())) if default not in
                   (None, INLINE_ENOSYS) else None, found_by=found_by)
    return d, mapping


def _table_extent(image: KernelImage, disp: "Dispatch", addr: int) -> int:
    n = 0
    while n < 4096:
        p = image.memory.read_u64(addr + 8 * n)
        if p is None or not image.has_symbol(p) or not image.executable(p):
            break
        n += 1
    return n


def _fallback_dispatcher(a: KernelAnalysis, image: KernelImage, disp: "Dispatch", abi: str, decoded: dict) -> None:
    """No dispatcher reached from the entries: try by name, and say so."""
    from .dispatch import DispatchPath, Site

    fn = image.address_of("do_syscall_64")
    if fn is not None:
        lo, hi = image.function_range(fn)
        sites = disp.sites(lo, hi)
        if sites:
            fake = EntryPoint(instruction="syscall", abi="x86_64", address=fn, symbol="do_syscall_64",
                              method="symbol-fallback")
            _dispatchers_from(a, image, disp, fake, DispatchPath([], fn, sites), decoded, "symbol-fallback")
            if abi in a.dispatchers:
                a.do_syscall_64, a.do_syscall_64_symbol = fn, "do_syscall_64"
                a.warnings.append(f"{abi}: dispatcher located from do_syscall_64 by name")
                return
    for name, kind in ((syscall_abi.ABIS[abi].dispatcher_symbol, "switch"), (syscall_abi.ABIS[abi].table_symbol, "table")):
        addr = image.address_of(name)
        if addr is None:
            continue
        site = Site(kind, addr, addr, "rsi", 0)
        d, mapping = _build_dispatcher(a, image, disp, abi, addr, addr, addr + 1, site, "symbol-fallback")
        if d is not None and mapping:
            a.dispatchers[abi] = d
            decoded[abi] = mapping
            a.warnings.append(f"{abi}: dispatcher {name} located by name only; bound: {d.bound_method}")
            return
    a.warnings.append(f"{abi}: no dispatcher found")


def _cross_check(a: KernelAnalysis, image: KernelImage, disp: "Dispatch", abi: str, d: Dispatcher,
                 mapping: dict) -> None:
    from .handlers import ABI_PREFIXES

    name = syscall_abi.ABIS[abi].table_symbol if abi in syscall_abi.ABIS else None
    addr = image.address_of(name) if name else None
    label = name
    if addr is None and name and image.symbols_from != "symtab" and d.kind != "table":
        addr = _table_by_content(image, mapping, d.nr_syscalls)  # no data symbols: CONFIG_KALLSYMS_ALL off
        label = f"{name} (found by its content: no data symbols)"
    if addr is None or (d.kind == "table" and d.address == addr):
        return
    stored = disp.read_table(addr, d.nr_syscalls)
    a.table_reads[abi] = label
    for n in range(d.nr_syscalls):
        t = stored.get(n)
        s = mapping.get(n, (None, None))[0]
        if t != s:
            a.disagreements.append(Disagreement(abi, n, t, image.best_name(t, ABI_PREFIXES[abi]) if t else None,
                                                s, image.best_name(s, ABI_PREFIXES[abi]) if s and s > 0 else None))


def _table_by_content(image: KernelImage, mapping: dict, n: int) -> int | None:
    """The stored table of an image without data symbols: the 8-aligned place in data where the dispatcher's
    handler for number 0 is followed by n - 1 more pointers to the starts of named functions. What it holds is
    then compared with the dispatcher number by number, as a named table is."""
    first = mapping.get(0, (None, None))[0]
    if not first or first < 0 or n < 2:
        return None
    needle = first.to_bytes(8, "little")
    for r in image.memory.regions:  # .rodata shares the text's segment: every region is searched
        i = r.data.find(needle)
        while i >= 0:
            if (r.start + i) % 8 == 0 and i + 8 * n <= len(r.data):
                ptrs = struct.unpack_from(f"<{n}Q", r.data, i)
                if all(image.executable(p) and image.has_symbol(p) for p in ptrs):
                    return r.start + i
            i = r.data.find(needle, i + 1)
    return None


def _handlers(a: KernelAnalysis, image: KernelImage, info, abi: str, d: Dispatcher,
              mapping: dict) -> dict[int, Handler]:
    from .dispatch import INLINE_ENOSYS
    from .handlers import ABI_PREFIXES, syscall_name

    out: dict[int, Handler] = {}
    prefixes = ABI_PREFIXES[abi]
    enosys_addrs: Counter = Counter()
    for n in range(d.nr_syscalls):
        got = mapping.get(n)
        if got is None:
            out[n] = Handler(abi, n, 0, None, None, False, "unresolved")
            continue
        t, how = got
        if t == INLINE_ENOSYS:
            out[n] = Handler(abi, n, 0, None, None, True, "inline -ENOSYS in the switch")
            continue
        symbol = image.best_name(t, prefixes)
        aliases = sorted({s.name for s in image.symbols_at(t)} - {symbol})
        enosys = info.returns_enosys(t)
        name = syscall_name(symbol)
        h = Handler(abi, n, t, symbol, "ni_syscall" if enosys and name in (None, "ni_syscall") else name, enosys,
                    f"{'switch' if d.kind == 'switch' else d.kind} {how}" if d.kind != "table" else "table read",
                    aliases=aliases, via=how.split()[0] if d.kind != "table" else None)
        if enosys:
            enosys_addrs[t] += 1
        else:
            chain = info.chain(t, name)
            h.chain = [c[0] or hex(c[1]) for c in chain]
            if chain:
                h.implementation, h.implementation_address = chain[-1]
            h.signature = info.signature(symbol)
        out[n] = h
    if enosys_addrs:
        a.ni[abi] = enosys_addrs.most_common(1)[0][0]
    elif d.default is not None:
        a.ni[abi] = d.default
    return out
