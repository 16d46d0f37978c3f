"""Find the instructions that enter the kernel, and only real ones.

A byte search finds every `0f 05` / `0f 34` / `cd 80` in executable sections; then each candidate is confirmed by
decoding forward from a known instruction boundary (a function start from the symbol table or .eh_frame, the end
of the previous function, or the section start). The same bytes inside a longer instruction — an immediate such
as `mov $0x050f050f,%eax` — are never on a boundary, so they are dropped.
"""
from __future__ import annotations

from dataclasses import dataclass

import capstone

from .load import LoadedBinary

PATTERNS: dict[bytes, str] = {b"\x0f\x05": "syscall", b"\x0f\x34": "sysenter", b"\xcd\x80": "int 0x80"}


@dataclass(frozen=True)
class RawSite:
    address: int
    instruction: str
    section: str
    offset: int
    function_start: int
    function_end: int
    function_name: str
    function_source: str  # how the function was found: symbol / eh_frame / entry / section


def candidates(lb: LoadedBinary) -> list[tuple[int, str]]:
    """Every address in an executable range where one of the patterns starts (a fast byte search)."""
    found: list[tuple[int, str]] = []
    for rng in lb.exec_ranges:
        data = lb.memory.read(rng.start, rng.end - rng.start)
        if data is None:
            r = lb.memory.region_of(rng.start)
            if r is None:
                continue
            data = lb.memory.read(rng.start, r.end - rng.start) or b""
        for pat, kind in PATTERNS.items():
            i = data.find(pat)
            while i >= 0:
                found.append((rng.start + i, kind))
                i = data.find(pat, i + 1)
    return sorted(set(found))


@dataclass(frozen=True)
class Rejected:
    """A candidate that is not a site, and why (shown with -v, kept in JSON for auditing)."""

    address: int
    pattern: str
    function: str
    reason: str


@dataclass
class _Region:
    start: int
    end: int
    name: str
    source: str
    insns: dict[int, tuple[int, str, str]]  # address -> (size, mnemonic, op_str), linear decode
    reachable: dict[int, int]  # address -> the root it was first reached from
    has_indirect_jump: bool


def find_sites(lb: LoadedBinary) -> tuple[list[RawSite], list[Rejected]]:
    """Confirmed sites, and the rejected candidates with the reason."""
    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64 if lb.bits == 64 else capstone.CS_MODE_32)
    md.detail = False
    sites: list[RawSite] = []
    rejected: list[Rejected] = []
    regions: dict[tuple[int, int], _Region] = {}
    for addr, kind in candidates(lb):
        rng = lb.exec_range_of(addr)
        if rng is None:
            continue
        func = lb.function_at(addr)
        if func is not None:
            fstart, fend, fname, fsrc = func.start, func.end, func.name, func.source
        else:
            anchor = lb.anchor_before(addr)
            if anchor is None or anchor < rng.start:
                anchor = rng.start
            fstart = anchor
            nxt = lb.next_function_start(addr)
            fend = min(x for x in (nxt, rng.end) if x is not None)
            fname = lb.symbols.get(anchor) or f"sub_{anchor:x}"
            fsrc = "section" if anchor == rng.start else "boundary"
        if fsrc != "symbol":
            fstart, fname = _refine_eh_start(md, lb, fstart, fname, addr)
        fend = min(fend, rng.end)
        region = regions.get((fstart, fend))
        if region is None:
            region = regions[(fstart, fend)] = _decode_region(md, lb, fstart, fend, fname, fsrc)
        if addr not in region.insns:
            rejected.append(Rejected(addr, kind, fname, "inside another instruction (not an instruction boundary)"))
            continue
        if addr not in region.reachable and not region.has_indirect_jump:
            rejected.append(Rejected(addr, kind, fname, "on a linear-sweep boundary but unreachable by control flow "
                                                         f"from {fname}: data in code"))
            continue
        root = region.reachable.get(addr, fstart)
        if root != fstart and fsrc not in ("symbol", "eh_frame"):
            # unnamed code after a ret: its own function, starting where control flow first reaches it
            fstart, fname = root, lb.symbols.get(root) or f"sub_{root:x}"
        sites.append(RawSite(addr, kind, rng.name, rng.offset + (addr - rng.start), fstart, fend, fname, fsrc))
    return sites, rejected


BRANCHES_END = ("ret", "retf", "iret", "iretd", "iretq", "hlt", "ud2", "jmp", "ljmp", "sysret", "sysretq",
                "sysexit", "int3")


def _decode_region(md: capstone.Cs, lb: LoadedBinary, start: int, end: int, name: str, source: str) -> _Region:
    """Linear decode of [start, end), then recursive descent from every known entry inside it."""
    insns: dict[int, tuple[int, str, str]] = {}
    addr = start
    while addr < end:
        code = lb.memory.read(addr, min(4096, end - addr))
        if not code:
            break
        nxt = addr
        for a, sz, m, op in md.disasm_lite(code, addr):
            insns[a] = (sz, m, op)
            nxt = a + sz
        addr = nxt if nxt > addr else addr + 1
    roots = [start] + [f.start for f in lb.functions if start < f.start < end]
    if source not in ("symbol", "eh_frame"):
        # No symbol or FDE bounds this code (stripped, hand-written asm): what follows a ret/jmp may be another
        # function nobody named, so it is a root too. With exact bounds, bytes after a ret are data in code.
        order = sorted(insns)
        after_end = False
        for a in order:
            sz, m, _op = insns[a]
            if after_end and not (m.startswith("nop") or m == "int3"):
                roots.append(a)
                after_end = False
            if m in BRANCHES_END:
                after_end = True
    reachable: dict[int, int] = {}
    indirect = False
    for root in sorted(set(roots)):
        work = [root] if root in insns else []
        while work:
            a = work.pop()
            while a in insns and a not in reachable:
                reachable[a] = root
                sz, m, op = insns[a]
                target = _imm_target(op) if m.startswith(("j", "call", "loop")) else None
                if m.startswith("j") or m.startswith("loop"):
                    if target is None:
                        indirect = True
                    elif start <= target < end:
                        work.append(target)
                if m in BRANCHES_END or (m == "call" and target is not None and _is_noreturn_name(lb, target)):
                    break
                a += sz
    return _Region(start, end, name, source, insns, reachable, indirect)


def _imm_target(op: str) -> int | None:
    try:
        return int(op, 16)
    except ValueError:
        return None


def _is_noreturn_name(lb: LoadedBinary, target: int) -> bool:
    from .values.noreturn import NORETURN_NAMES

    name = lb.imports.get(target) or lb.symbols.get(target)
    return name is not None and name in NORETURN_NAMES


TERMINATORS = ("ret", "jmp", "hlt", "ud2", "int3", "retf", "iretq", "sysret", "sysretq")


def _refine_eh_start(md: capstone.Cs, lb: LoadedBinary, start: int, name: str, site: int) -> tuple[int, str]:
    """Fix .eh_frame starts that are not where the code starts.

    Hand-written stubs (glibc's clone, __restore_rt) open a new FDE at the `syscall` itself, or one byte into the
    padding before it. Decoding from the previous function shows which: a start that is not an instruction
    boundary moves to the next boundary; a start that the previous instruction falls into joins that function.
    """
    for _ in range(3):
        anchor = lb.anchor_before(start - 1)
        rng = lb.exec_range_of(start)
        if anchor is None or start - anchor > (1 << 16) or rng is None or not rng.start <= anchor < rng.end:
            return start, name
        starts: set[int] = set()
        last = None
        code = lb.memory.read(anchor, start + 16 - anchor) or b""
        for a, sz, m, _o in md.disasm_lite(code, anchor):
            starts.add(a)
            if a >= start:
                break
            last = (a, sz, m)
        if start not in starts:
            # Only a start that falls inside a padding nop is moved: elsewhere the FDE is more trustworthy.
            straddle = last is not None and last[0] < start < last[0] + last[1] and last[2].startswith("nop")
            nxt = min((a for a in starts if a > start), default=None)
            ok = straddle and nxt is not None and nxt <= site
            return (nxt, f"sub_{nxt:x}") if ok else (start, name)
        if last is None or last[0] + last[1] != start or last[2] in TERMINATORS or last[2].startswith("nop") \
                or last[2] == "call":
            return start, name
        prev = lb.function_at(last[0])
        start, name = (prev.start, prev.name) if prev is not None else (anchor, f"sub_{anchor:x}")
    return start, name
