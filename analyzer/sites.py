"""Find the instructions that enter the kernel, and only real ones.

A byte search finds every `0f 05` / `0f 34` / `cd 80` in executable sections; then each candidate is confirmed by
decoding forward from a known instruction boundary (a function start from the symbol table or .eh_frame, the end
of the previous function, or the section start). The same bytes inside a longer instruction — an immediate such
as `mov $0x050f050f,%eax` — are never on a boundary, so they are dropped.

Calls that enter the kernel through code the kernel maps are sites too, found and confirmed the same way:
- 32-bit glibc and musl enter through the vDSO: `call *%gs:0x10` (the TCB's `sysinfo` slot holds the vDSO's
  `__kernel_vsyscall`, which runs `sysenter`, `syscall` or `int $0x80`); older static code calls through the
  `_dl_sysinfo` / `__sysinfo` pointer; the vDSO itself calls its own `__kernel_vsyscall` directly. The i386 ABI
  applies (eax = number, then ebx, ecx, edx, esi, edi, ebp), exactly as for `int $0x80`.
- x86-64 code may call the legacy vsyscall page (`mov $0xffffffffff600400,%rax; call *%rax`): the kernel emulates
  gettimeofday, time and getcpu there (or kills the process with `vsyscall=none`). The call is the site; its
  number comes from the address called.
"""
from __future__ import annotations

import bisect
import re
import struct
from dataclasses import dataclass

import capstone

from .budget import BUDGET_REASON, NEVER, BudgetExceeded, Deadline
from .elf.decode import decoder
from .program.model import LoadedBinary
from .syscalls.abi import GS_SYSINFO, KERNEL_VSYSCALL, SYSINFO_POINTERS, VSYSCALL

PATTERNS: dict[bytes, str] = {b"\x0f\x05": "syscall", b"\x0f\x34": "sysenter", b"\xcd\x80": "int 0x80"}
VDSO_PATTERNS_32: dict[bytes, str] = {b"\x65\xff\x15\x10\x00\x00\x00": GS_SYSINFO}
# The legacy vsyscall page: its three entries, and the x86-64 syscall each one emulates.
VSYSCALL_ENTRIES: dict[int, tuple[int, str]] = {
    0xFFFFFFFFFF600000: (96, "gettimeofday"), 0xFFFFFFFFFF600400: (201, "time"), 0xFFFFFFFFFF600800: (309, "getcpu")}
# mov $imm32 (sign-extended), %r64 and movabs $imm64, %r64 loading one of those addresses
_VSYSCALL_MOV = re.compile(rb"[\x48\x49](?:\xc7[\xc0-\xc7]\x00[\x00\x04\x08]\x60\xff"
                           rb"|[\xb8-\xbf]\x00[\x00\x04\x08]\x60\xff\xff\xff\xff\xff)")


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
    size: int = 2  # the instruction's length
    fixed_number: int | None = None  # the syscall a vsyscall-page call makes (its number is in the address)


def candidates(lb: LoadedBinary, deadline: Deadline = NEVER,
               incomplete: list[str] | None = None) -> list[tuple[int, str]]:
    """Every address in an executable range where one of the patterns starts (a fast byte search).

    Overlapping ranges (corrupt section headers can declare the same bytes many times) are searched once."""
    found: list[tuple[int, str]] = []
    patterns, vsyscall_fn = _patterns(lb)
    spans: list[list[int]] = []
    for rng in sorted(lb.exec_ranges, key=lambda r: (r.start, r.end)):
        if spans and rng.start <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], rng.end)
        else:
            spans.append([rng.start, rng.end])
    for start, end in spans:
        if deadline.expired():
            if incomplete is not None:
                incomplete.append(f"{BUDGET_REASON}: executable bytes from {start:#x} on were not searched")
            break
        # the span may cross unmapped gaps or several segments: search each mapped piece
        addr = start
        while addr < end:
            r = lb.memory.region_of(addr)
            if r is None:
                nxt = lb.memory.next_region_start(addr)
                if nxt is None or nxt >= end:
                    break
                addr = nxt
                continue
            stop = min(end, r.end)
            data = lb.memory.read(addr, stop - addr) or b""
            for pat, kind in patterns.items():
                i = data.find(pat)
                while i >= 0:
                    found.append((addr + i, kind))
                    i = data.find(pat, i + 1)
            if lb.bits == 64:
                found.extend((addr + m.start(), VSYSCALL) for m in _VSYSCALL_MOV.finditer(data))
            if vsyscall_fn is not None:  # e8 rel32 to the vDSO's own entry (only objects that carry it)
                for m in re.finditer(rb"\xe8", data):
                    i = m.start()
                    if i + 5 <= len(data) and \
                            (addr + i + 5 + struct.unpack_from("<i", data, i + 1)[0]) & 0xFFFFFFFF == vsyscall_fn:
                        found.append((addr + i, f"call {KERNEL_VSYSCALL}"))
            addr = stop
    return sorted(set(found))


def _patterns(lb: LoadedBinary) -> tuple[dict[bytes, str], int | None]:
    """The byte patterns to search in this binary, and the address of a `__kernel_vsyscall` it carries itself.

    The vDSO entry forms exist only in 32-bit code; the `_dl_sysinfo` / `__sysinfo` pointer form only where the
    symbol table names that pointer as data (glibc also has a *function* `__sysinfo`: sysinfo(2))."""
    patterns = dict(PATTERNS)
    if lb.bits != 32:
        return patterns, None
    patterns.update(VDSO_PATTERNS_32)
    for a, name in lb.symbols.items():
        if name in SYSINFO_POINTERS and lb.function_at(a) is None and lb.exec_range_of(a) is None:
            patterns[b"\xff\x15" + struct.pack("<I", a & 0xFFFFFFFF)] = f"call *{name}"
    entry = next((f.start for f in lb.functions if f.name == KERNEL_VSYSCALL), None)
    return patterns, entry


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


def find_sites(lb: LoadedBinary, deadline: Deadline = NEVER, incomplete: list[str] | None = None,
               max_sites: int | None = None) -> tuple[list[RawSite], list[Rejected]]:
    """Confirmed sites, and the rejected candidates with the reason.

    Hostile input: a candidate whose confirmation raises is skipped (noted in `incomplete`); when `deadline`
    expires, or `max_sites` sites are confirmed (a file flooded with `0f 05`), the candidates not yet examined are
    counted in `incomplete` instead of being confirmed. At most `max_sites` rejections are listed either."""
    md = decoder(lb.bits)
    sites: list[RawSite] = []
    rejected: list[Rejected] = []
    regions: dict[tuple[int, int], _Region] = {}
    notes = incomplete if incomplete is not None else []
    cands = candidates(lb, deadline, notes)
    for i, (addr, kind) in enumerate(cands):
        if max_sites is not None and len(sites) >= max_sites:
            notes.append(f"site limit ({max_sites}) reached: {len(cands) - i} candidate instructions from {addr:#x} "
                         "on were not examined (they may be sites)")
            break
        if deadline.expired():
            notes.append(f"{BUDGET_REASON}: {len(cands) - i} candidate instructions from {addr:#x} on were not "
                         "examined (they may be sites)")
            break
        try:
            _confirm(md, lb, addr, kind, regions, sites, rejected)
        except BudgetExceeded:
            notes.append(f"{BUDGET_REASON}: {len(cands) - i} candidate instructions from {addr:#x} on were not "
                         "examined (they may be sites)")
            break
        except Exception as e:  # noqa: BLE001 - one bad candidate must not cost the others
            notes.append(f"candidate {kind} at {addr:#x} not examined: analysis failed: {type(e).__name__}: "
                         f"{str(e)[:200]}")
    # in address order, once each (two loads of a vsyscall address can reach one call)
    sites = sorted({s.address: s for s in sites}.values(), key=lambda s: s.address)
    if max_sites is not None and len(rejected) > max_sites:
        notes.append(f"{len(rejected) - max_sites} more rejected candidates not listed (limit {max_sites})")
        rejected = rejected[:max_sites]
    return sites, rejected


def _confirm(md: capstone.Cs, lb: LoadedBinary, addr: int, kind: str, regions: dict, sites: list[RawSite],
             rejected: list[Rejected]) -> None:
    """Decide one candidate: append it to `sites` or to `rejected`."""
    rng = lb.exec_range_of(addr)
    if rng is None:
        return
    obj = lb.data_object_at(addr)
    if obj is not None and lb.function_at(addr) is None:
        rejected.append(Rejected(addr, kind, obj[2], f"inside the data object {obj[2]} ({obj[1] - obj[0]} bytes) that "
                                                     f"the symbol table places in {rng.name}: data in code"))
        return
    func = lb.function_at(addr)
    if func is not None:
        fstart, fend, fname, fsrc = func.start, func.end, func.name, func.source
    else:
        anchor = lb.anchor_before(addr)
        if anchor is None or anchor < rng.start:
            anchor = rng.start
        fstart = anchor
        nxt = lb.next_function_start(addr)
        fend = min(x for x in (nxt, lb.next_data_start(addr), rng.end) if x is not None)
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
        return
    if addr not in region.reachable and not region.has_indirect_jump:
        rejected.append(Rejected(addr, kind, fname, "on a linear-sweep boundary but unreachable by control flow "
                                                     f"from {fname}: data in code"))
        return
    root = region.reachable.get(addr, fstart)
    if root != fstart and fsrc not in ("symbol", "eh_frame"):
        # unnamed code after a ret: its own function, starting where control flow first reaches it
        fstart, fname = root, lb.symbols.get(root) or f"sub_{root:x}"
    size, fixed = region.insns[addr][0], None
    if kind == VSYSCALL:
        found = _vsyscall_call(region, addr)
        if isinstance(found, str):
            rejected.append(Rejected(addr, kind, fname, found))
            return
        addr, size, fixed = found
    sites.append(RawSite(addr, kind, rng.name, rng.offset + (addr - rng.start), fstart, fend, fname, fsrc, size,
                         fixed))


def _vsyscall_call(region: _Region, mov: int) -> tuple[int, int, int] | str:
    """The `call *%reg` / `jmp *%reg` that uses the vsyscall address loaded at `mov`: (its address, its length, the
    syscall number), or why there is none. Straight-line code only, up to 16 instructions; the register must not
    be written on the way."""
    sz, m, op = region.insns[mov]
    reg, _, imm = op.partition(", ")
    target = _imm_target(imm.strip())
    if not m.startswith("mov") or target is None or (target & (2**64 - 1)) not in VSYSCALL_ENTRIES:
        return "the vsyscall page address is not loaded into a register here"
    nr = VSYSCALL_ENTRIES[target & (2**64 - 1)][0]
    from .values.local import REGS

    family = REGS.get(reg, (reg,))[0]
    a = mov + sz
    for _ in range(16):
        if a not in region.insns:
            break
        sz, m, op = region.insns[a]
        if m in ("call", "jmp") and op.strip() == reg:
            return a, sz, nr
        if m.startswith(("j", "call", "ret", "loop")) or m in BRANCHES_END or \
                REGS.get(op.split(",")[0].strip(), ("",))[0] == family:  # a write to any part of it (eax of rax)
            break
        a += sz
    return f"the vsyscall address loaded into {reg} is not called through it in the next instructions"


BRANCHES_END = ("ret", "retf", "iret", "iretd", "iretq", "hlt", "ud2", "jmp", "ljmp", "sysret", "sysretq",
                "sysexit", "int3")


def _decode_region(md: capstone.Cs, lb: LoadedBinary, start: int, end: int, name: str, source: str) -> _Region:
    """Linear decode of [start, end), then recursive descent from every known entry inside it."""
    insns: dict[int, tuple[int, str, str]] = {}
    addr = start
    window = 4096
    while addr < end:
        code = lb.memory.read(addr, min(window, end - addr))
        if not code:
            break
        nxt = addr
        for a, sz, m, op in md.disasm_lite(code, addr):
            insns[a] = (sz, m, op)
            nxt = a + sz
        # undecodable byte: step over it with a small window (a 4 KB copy per garbage byte was quadratic)
        addr, window = (nxt, 4096) if nxt > addr else (addr + 1, 16)
    lo = bisect.bisect_right(lb._fstarts, start)
    hi = bisect.bisect_left(lb._fstarts, end)
    roots = [start] + lb._fstarts[lo:hi]
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

    The decode does not depend on the site, so it is cached per start (a binary flooded with candidate bytes would
    otherwise decode up to 64 KB per candidate)."""
    cache = lb.__dict__.setdefault("_refine_cache", {})
    key = (start, name)
    hit = cache.get(key)
    if hit is None:
        hit = cache[key] = _refine_core(md, lb, start, name)
    new_start, new_name, moved = hit
    if moved is not None:  # the FDE start straddles a padding nop: move it, unless that would pass the site
        return (moved, f"sub_{moved:x}") if moved <= site else (start, name)
    return new_start, new_name


def _refine_core(md: capstone.Cs, lb: LoadedBinary, start: int, name: str) -> tuple[int, str, int | None]:
    """(start, name, None), or (start, name, nxt) when the start should move to the boundary nxt."""
    for _ in range(3):
        anchor = lb.anchor_before(start - 1)
        rng = lb.exec_range_of(start)
        if anchor is None or start - anchor > (1 << 16) or rng is None or not rng.start <= anchor < rng.end:
            return start, name, None
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
            return (start, name, nxt if straddle and nxt is not None else None)
        if last is None or last[0] + last[1] != start or last[2] in TERMINATORS or last[2].startswith("nop") \
                or last[2] == "call":
            return start, name, None
        prev = lb.function_at(last[0])
        start, name = (prev.start, prev.name) if prev is not None else (anchor, f"sub_{anchor:x}")
    return start, name, None
