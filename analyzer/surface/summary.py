"""One object's summary for the surface: its call graph, its roots, its syscall sites and what it asks of the others.

Computed once per object from its program model and its site report (the same sites and values a scan reports),
and cached by content hash (analyzer/cache.py, kind "surface-summary"), so libc.so.6 is summarised once per machine
and not once per program.

The call graph is over function starts (program.model.Function). Its edges come from a byte search of the code,
like program.calls: `call`/`jmp`/`jcc` rel32 and short `jmp`/`jcc` to a function start, a PLT stub or a GOT slot;
`call`/`jmp` through a GOT slot; a function's address formed in code (`lea`/`mov` rip-relative, absolute
immediates), which is how a callback, a thread start or `main` (handed to `__libc_start_main`) is reached. A
search can only add edges (a false one makes the surface larger, never smaller), so it is sound where a decoder
that misses an instruction would not be; inside a function whose extent a symbol or an FDE gives, a pattern counts
only where decoding the function from its start finds that instruction there (`_confirmed`), and immediates count
as addresses only in position-dependent code (`_absolute_addresses`). Code outside every known function has no
node: what it reaches becomes a root, and so does a site outside every known function. In 32-bit code, whose
addresses are formed relative to the GOT with any register or as plain immediates, every 32-bit field of the
decoded instructions counts (`_words32`).

Roots: the entry point (program and dynamic loader), DT_INIT/DT_FINI, and every function whose address is stored
in data (relocated pointers: init/fini arrays, vtables, callback tables, IFUNC resolvers) — the sound stand-in for
indirect calls.
"""
from __future__ import annotations

import re
import struct
from dataclasses import asdict, dataclass, field
from itertools import pairwise

from ..elf.decode import decoder
from ..program.calls import plt_stubs
from ..syscalls.filters import FILTERED_ARGS

FORMAT = 10
KIND = "surface-summary"
INT_KEYED = ("names", "edges", "calls_out", "roots", "outside", "data_refs", "chunk_ptrs", "chunk_data",
             "chunk_imports", "live")
VDSO_FALLBACKS = {  # a vDSO function the object looks up by name -> the syscall its fallback makes
    "__vdso_clock_gettime": "clock_gettime", "__vdso_gettimeofday": "gettimeofday", "__vdso_time": "time",
    "__vdso_getcpu": "getcpu", "__vdso_clock_getres": "clock_getres", "__vdso_clock_gettime64": "clock_gettime64",
    "__vdso_getrandom": "getrandom",  # Linux 6.11+, glibc 2.41+ (the 6.12 vDSO's own getrandom syscall sites)
}
VDSO_CALLERS = {  # the C library's functions that call each vDSO function (x86-64 glibc: time, gettimeofday and
    # sched_getcpu are IFUNCs that return the vDSO's own function)
    "__vdso_clock_gettime": ("clock_gettime", "__clock_gettime", "__clock_gettime64", "timespec_get", "time",
                             "gettimeofday", "clock"),
    "__vdso_gettimeofday": ("gettimeofday", "__gettimeofday"),
    "__vdso_time": ("time",),
    "__vdso_getcpu": ("sched_getcpu", "getcpu"),
    "__vdso_clock_getres": ("clock_getres", "__clock_getres", "__clock_getres64", "timespec_getres"),
    "__vdso_getrandom": ("getrandom", "__getrandom", "arc4random", "arc4random_buf", "arc4random_uniform"),
}
LOADER_CALLS = ("dlopen", "dlmopen")
LOOKUP_CALLS = ("dlsym", "dlvsym")  # what a program finds in what it loads: by name
STRING_ARG = {"dlopen": "rdi", "dlmopen": "rsi", "dlsym": "rsi", "dlvsym": "rsi"}  # where the name is passed
STRING_ARG32 = {"dlopen": 4, "dlmopen": 8, "dlsym": 8, "dlvsym": 8}
"""i386 (cdecl): the name's stack slot, from the callee's entry stack pointer (0 holds the return address)"""
ARG_CALLEES = ("socket", "__socket", "socketpair", "ioctl", "__ioctl", "prctl", "__prctl", "personality",
               "arch_prctl", "__arch_prctl", "clone", "__clone")
"""Imported functions whose argument values are read at every call (a library's function that passes its own
parameter to one of FILTERED_ARGS is recognised from its site; these are only the names looked at)."""
ARG_REGS = ("rdi", "rsi", "rdx")
MAX_OPEN_REASONS = 3
EXACT_SOURCES = ("symbol", "eh_frame")


@dataclass
class SiteFact:
    address: int
    node: int  # the graph node (function start) that holds it
    instruction: str
    abi: str
    numbers: list[int]
    status: str  # "resolved" | "partial" | "unresolved"
    reasons: list[str] = field(default_factory=list)
    param: str | None = None  # the register its function takes the number in (an exported wrapper: syscall())
    args: list = field(default_factory=list)
    """[index, values or None, register or None] for the FILTERED_ARGS argument of its syscall: the values when
    known here, else the entry register of its (exported) function the value comes from, if it is one."""


@dataclass
class WrapperCallFact:
    """A call here to an imported syscall wrapper (libc's syscall()), with the numbers at the call."""

    address: int
    node: int
    callee: str
    numbers: list[int]
    status: str
    reasons: list[str] = field(default_factory=list)


@dataclass
class ObjectSummary:
    sha256: str
    path: str
    bits: int
    names: dict[int, str] = field(default_factory=dict)  # node -> function name
    edges: dict[int, list[int]] = field(default_factory=dict)  # node -> nodes of this object
    calls_out: dict[int, list[str]] = field(default_factory=dict)  # node -> imported names it calls or takes
    roots: dict[int, str] = field(default_factory=dict)  # node -> why it is an entry
    outside: dict[int, str] = field(default_factory=dict)  # node -> reached from code outside every function
    data_imports: list[str] = field(default_factory=list)  # imported names stored in data: roots where bound
    exports: dict[str, int] = field(default_factory=dict)
    sites: list[SiteFact] = field(default_factory=list)
    wrapper_calls: list[WrapperCallFact] = field(default_factory=list)
    loader_calls: list[tuple[int, int, str, str | None]] = field(default_factory=list)
    """(call address, node, callee, the constant name passed or None) of each call to LOADER_CALLS (a library
    name) and LOOKUP_CALLS (a symbol name)."""
    vdso: dict[str, str] = field(default_factory=dict)  # vDSO function looked up by name -> fallback syscall
    arg_calls: list = field(default_factory=list)
    """[call address, node, callee, [[register, values or None], ...] or None] for every call to (or address taken
    of) an ARG_CALLEES import: None when that call's registers were not read."""
    data_refs: dict[int, list[int]] = field(default_factory=dict)  # node -> data chunks its code refers to
    chunk_ptrs: dict[int, list[int]] = field(default_factory=dict)  # chunk -> functions whose address it holds
    chunk_data: dict[int, list[int]] = field(default_factory=dict)  # chunk -> chunks whose address it holds
    chunk_imports: dict[int, list[str]] = field(default_factory=dict)  # chunk -> symbols stored in it (R_*_64)
    live: dict[int, str] = field(default_factory=dict)  # chunks live from the start (init/fini arrays) -> why
    data_exports: dict[str, int] = field(default_factory=dict)  # exported data symbol -> its chunk
    import_versions: dict[str, str] = field(default_factory=dict)  # imported name -> the version it asks for
    notes: list[str] = field(default_factory=list)

    def order(self) -> None:
        """The address-keyed maps by address: a fresh summary iterates as one read back from the cache does (a
        result never depends on which of them a process had, nor on the process's hash seed)."""
        for k in INT_KEYED:
            setattr(self, k, dict(sorted(getattr(self, k).items())))

    def to_doc(self) -> dict:
        d = asdict(self)
        d["format"] = FORMAT
        for k in INT_KEYED:
            d[k] = {str(a): v for a, v in sorted(d[k].items())}
        return d

    @classmethod
    def from_doc(cls, d: dict) -> ObjectSummary:
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise ValueError("not a surface summary of this format")
        d = dict(d)
        d.pop("format")
        for k in INT_KEYED:
            d[k] = {int(a): v for a, v in d[k].items()}
        d["sites"] = [SiteFact(**s) for s in d["sites"]]
        d["wrapper_calls"] = [WrapperCallFact(**w) for w in d["wrapper_calls"]]
        d["loader_calls"] = [tuple(x) for x in d["loader_calls"]]
        d["arg_calls"] = [[a, n, c, [tuple(x) for x in v] if v is not None else None] for a, n, c, v in d["arg_calls"]]
        s = cls(**d)
        s.order()
        return s


def summarize_object(lb, report, wrapper_params: dict[int, str], loader_args: dict[int, tuple[str, str | None]],
                     arg_params: dict | None = None, arg_calls: dict | None = None,
                     local_arg_calls: dict | None = None) -> ObjectSummary:
    """The summary of one object from its program model `lb` and its site report (`report.sites`,
    `report.wrapper_calls`); `wrapper_params`: exported function start -> the register it takes a number in;
    `loader_args`: dlopen/dlsym call address -> (callee, the constant name passed or None: computed);
    `arg_params`: site address ->
    {argument index: entry register}; `arg_calls`: call address -> {register: values or None} at ARG_CALLEES calls;
    `local_arg_calls`: call address -> (callee, {register: values or None}) for callees here that pass a parameter
    on (every transfer to such a callee is then recorded, read or not, as callee "@<hex start>").

    The nodes partition the code: every known function start, plus every address code calls or takes and every
    code address stored in data, plus the start the site stage found for a site no function holds. A node runs to
    the next start; a start that is not a known function's may be fallen into from the code before it, so that
    code gets an edge to it. Every instruction thus belongs to a node, and every way into code that the bytes show
    is an edge."""
    from bisect import bisect_right

    s = ObjectSummary(sha256=lb.sha256, path=lb.path, bits=lb.bits)
    known = {f.start for f in lb.functions}
    for f in lb.functions:
        s.names[f.start] = f.name
    ranges = sorted((r.start, r.end) for r in lb.exec_ranges)
    rstarts = [a for a, _ in ranges]

    def in_exec(a: int) -> bool:
        k = bisect_right(rstarts, a) - 1
        return k >= 0 and a < ranges[k][1]

    data_ranges = sorted((r.start, r.start + len(r.data)) for r in lb.memory.regions if not r.executable)
    data_starts = [a for a, _ in data_ranges]

    def in_data(a: int) -> bool:
        k = bisect_right(data_starts, a) - 1
        return k >= 0 and a < data_ranges[k][1]

    stubs = _stubs(lb)  # PLT stub address -> ("import", name) | ("local", target)
    decode = _decoder(lb)
    hits = _confirmed(lb, _code_hits(lb), decode)  # (code address, target, how)
    modelled = True
    if lb.bits == 32:
        words = _words32(lb, known, in_exec, in_data)  # decoded fields already
        modelled = words is not None
        hits += words or []

    def inside_exact(t: int) -> bool:
        """Inside (not at the start of) a function whose extent its symbol or FDE gives: a byte pattern that
        lands there is part of another instruction, not a way into the code."""
        f = lb.function_at(t)
        return f is not None and f.start < t and f.source in EXACT_SOURCES

    def boundary(addr: int) -> bool:
        """Is the pattern at addr a real instruction of its function (decoded from the function's start)? Asked
        only of the few patterns that point into the middle of another function."""
        f = lb.function_at(addr)
        if f is None or f.source not in EXACT_SOURCES:
            return True  # no exact extent to decode: keep the edge
        starts = decode(f)[0]
        k = bisect_right(starts, addr) - 1
        return k >= 0 and starts[k] == addr

    extra: set[int] = set()
    for _src, t, how in hits:
        if how in ("call", "taken") and t not in known and t not in stubs and in_exec(t) and not inside_exact(t):
            extra.add(t)
    extra |= {t for t in lb.pointers.values() if t not in known and in_exec(t) and not inside_exact(t)}
    for site in report.sites:
        if lb.function_at(site.address) is None:
            extra.add(site.function_address or site.address)
    extra -= known
    for t in extra:
        s.names[t] = f"sub_{t:x}"
    starts = sorted(known | extra)
    start_set = set(starts)

    def node_of(addr: int) -> int | None:
        k = bisect_right(starts, addr) - 1
        if k < 0:
            return None
        st = starts[k]
        r = bisect_right(rstarts, st) - 1
        return st if r >= 0 and st < ranges[r][1] and addr < ranges[r][1] else None

    # fall-through into a start that no function table announced, or one that lies inside another function's
    # extent (a local label with a symbol of its own, as `.L413` inside i386 glibc's __libc_start_main)
    nested = _nesting(lb)
    for k in range(1, len(starts)):
        t = starts[k]
        if node_of(t - 1) == starts[k - 1] and (t in extra or nested(t)):
            s.edges.setdefault(starts[k - 1], []).append(t)
    local_targets = {site.function_address for site in report.sites if (arg_params or {}).get(site.address)}
    refs: list[tuple[int, int]] = []  # (code address, data address it forms)
    for src_addr, target, how in hits:
        if how in ("taken", "word") and target not in start_set and in_data(target) and target not in lb.got_symbols:
            refs.append((src_addr, target))
        kind_target = None
        if target in stubs:
            kind_target = stubs[target]
        elif target in start_set:
            kind_target = ("local", target)
        elif target in lb.got_symbols:
            kind_target = ("import", lb.got_symbols[target])
        elif target in lb.pointers and lb.pointers[target] in start_set:
            kind_target = ("local", lb.pointers[target])
        elif how == "jump" and in_exec(target) and not inside_exact(target):
            kind_target = ("local", node_of(target))  # into another function's body: shared code
        elif how in ("call", "taken") and in_exec(target) and inside_exact(target) and boundary(src_addr):
            kind_target = ("local", node_of(target))  # an entry its table does not start at (__restore_rt's FDE)
        elif how == "word" and in_exec(target):
            kind_target = ("local", node_of(target))  # 32-bit: a word that may form a code address, its node
        if kind_target is None:
            continue
        src = node_of(src_addr)
        kind, t = kind_target
        if kind == "local" and t in local_targets and src is not None:
            got = (local_arg_calls or {}).get(src_addr)
            known = got[1] if got is not None and got[0] == t == target and how in ("call", "jump", "slot") else None
            s.arg_calls.append([src_addr, src, f"@{t:x}", sorted(known.items()) if known is not None else None])
        if kind == "import" and t in ARG_CALLEES and src is not None:
            known = (arg_calls or {}).get(src_addr) if how in ("call", "jump", "slot") else None
            s.arg_calls.append([src_addr, src, t, sorted(known.items()) if known is not None else None])
        if kind == "local":
            if t is None or t not in start_set:
                continue
            if src is None:
                s.outside.setdefault(t, f"reached from code outside every known function at {src_addr:#x}")
            elif t != src:
                s.edges.setdefault(src, []).append(t)
        elif src is None:
            s.notes.append(f"{t} is used from code outside every known function at {src_addr:#x}")
            s.data_imports.append(t)
        else:
            s.calls_out.setdefault(src, []).append(t)
    for k in s.edges:
        s.edges[k] = sorted(set(s.edges[k]))
    for k in s.calls_out:
        s.calls_out[k] = sorted(set(s.calls_out[k]))

    # roots
    if lb.entry and node_of(lb.entry) is not None and _runs_entry(lb):
        s.roots[node_of(lb.entry)] = "the entry point"
    for a in lb.init:
        if node_of(a) is not None:
            s.roots.setdefault(node_of(a), "DT_INIT/DT_FINI (called by the loader)")
    _data_chunks(lb, s, start_set, refs, node_of, in_data)
    s.data_imports = sorted(set(s.data_imports))
    s.exports = dict(sorted(lb.exports.items()))
    s.import_versions = dict(sorted(lb.import_versions.items()))

    # sites
    targeted = {t for ts in s.edges.values() for t in ts} | set(s.outside) | set(s.roots)
    for ts in s.chunk_ptrs.values():
        targeted |= set(ts)
    for site in report.sites:
        node = node_of(site.address)
        if node is None or node in extra and node not in targeted and node not in lb.exports.values():
            node = node if node is not None else site.address
            s.names.setdefault(node, site.function or f"sub_{node:x}")
            if node not in targeted and node not in lb.exports.values():
                s.roots.setdefault(node, "holds a syscall site outside every known function, and nothing here "
                                         "calls it")
        param = wrapper_params.get(node)
        s.sites.append(SiteFact(site.address, node, site.instruction, site.abi, sorted(site.number.values),
                                site.number.status, list(site.number.reasons[:MAX_OPEN_REASONS]), param,
                                _site_args(site, (arg_params or {}).get(site.address, {}))))
    for w in report.wrapper_calls:
        node = node_of(w.call_site)
        if node is None:
            continue
        s.wrapper_calls.append(WrapperCallFact(w.call_site, node, w.callee, sorted(w.number.values),
                                               w.number.status, list(w.number.reasons[:MAX_OPEN_REASONS])))
    for addr, (callee, name) in sorted(loader_args.items()):
        node = node_of(addr)
        if node is not None:
            s.loader_calls.append((addr, node, callee, name))
    for name, call in VDSO_FALLBACKS.items():
        if any(name.encode() + b"\0" in r.data for r in lb.memory.regions if not r.executable):
            s.vdso[name] = call
    if not modelled:  # 32-bit code whose GOT base could not be told: nothing is cut
        for f in lb.functions:
            s.roots.setdefault(f.start, "32-bit code whose GOT base is not clear: every function counts")
    s.notes = sorted(set(s.notes))
    s.order()
    return s


# (pattern, where its displacement is, the instruction's length, the displacement's format, what it is): every
# pc-relative way into code or to an address; `modrm_rip` patterns count only with a rip-relative ModRM byte.
RELATIVE_PATTERNS = (
    (rb"\xe8", 1, 5, "<i", "call", False),
    (rb"\xe9", 1, 5, "<i", "jump", False),
    (rb"\x0f[\x80-\x8f]", 2, 6, "<i", "jump", False),  # jcc rel32
    (rb"[\xeb\x70-\x7f]", 1, 2, "<b", "short", False),  # jmp/jcc rel8
)
RIP_PATTERNS = (  # 64-bit code only
    (rb"\xff[\x15\x25]", 2, 6, "<i", "slot", False),  # call/jmp *disp32(%rip)
    (rb"[\x48\x4c][\x8d\x8b]", 3, 7, "<i", "taken", True),  # lea/mov disp32(%rip),%reg
)
ABSOLUTE = re.compile(rb"[\xb8-\xbf\x68]|\xc7[\xc0-\xc7]")  # mov $imm32,%r32 / push $imm32 / movl $imm32,%r


PC_THUNK = re.compile(rb"\x8b[\x04\x0c\x14\x1c\x2c\x34\x3c]\x24\xc3")  # mov (%esp),%reg; ret
MAX_GOT_BASES = 4


def _pc_relative(lb) -> dict[int, list[int]]:
    """The addresses 32-bit code forms from its own address: `call <pc thunk>` or `call 1f; 1: pop %reg`, then
    `add $imm32,%reg` — the GOT (`_GLOBAL_OFFSET_TABLE_`) in PIC code, or a table of hand-written code — each
    with the addresses of the `add`s that form it."""
    formed: dict[int, list[int]] = {}
    for rng in lb.exec_ranges:
        data = lb.memory.read(rng.start, rng.end - rng.start)
        if not data:
            continue
        base, n = rng.start, len(data)
        thunks: dict[int, int] = {}  # thunk address -> register number
        for m in re.finditer(rb"\xe8", data):
            p = m.start()
            if p + 11 > n:
                break
            ret = p + 5
            t = (base + ret + struct.unpack_from("<i", data, p + 1)[0]) & 0xFFFFFFFF
            if t == base + ret and 0x58 <= data[ret] <= 0x5F:  # call 1f; 1: pop %reg
                reg, after = data[ret] - 0x58, ret + 1
            else:
                reg = thunks.get(t)
                if reg is None and t not in thunks:
                    code = lb.memory.read(t, 4) or b""
                    reg = thunks[t] = (code[1] >> 3) & 7 if PC_THUNK.fullmatch(code) else -1
                if reg < 0:
                    continue
                after = ret
            if after + 6 > n:
                continue
            if reg == 0 and data[after] == 0x05:  # add $imm32,%eax
                imm = struct.unpack_from("<I", data, after + 1)[0]
            elif data[after] == 0x81 and data[after + 1] == 0xC0 + reg:  # add $imm32,%reg
                imm = struct.unpack_from("<I", data, after + 2)[0]
            else:
                continue
            v = (base + ret + imm) & 0xFFFFFFFF  # the return address, plus the immediate
            formed.setdefault(v, []).append(base + after)
    return formed


def _field_ends(mnem: str, ops: str) -> tuple[int, ...]:
    """Where an instruction's 32-bit displacement or immediate can end, counted back from its last byte: x86 puts
    the displacement after the ModRM/SIB bytes and the immediate last, so with no immediate the last 4 bytes, and
    with one of 1, 2 or 4 bytes the 4 bytes before it too (Capstone's text says whether there is one, not its size).
    A relative branch's target is not a field (the rel32 patterns read it)."""
    imm = any(o[:1].isdigit() or o[:1] == "-" for o in ops.split(", ") if "[" not in o)
    if imm and (mnem[:1] == "j" or mnem.startswith(("call", "loop", "xbegin", "ljmp", "lcall"))) and "[" not in ops:
        return (6,) if ":" in ops else ()  # ljmp/lcall sel:offset: the offset before the 16-bit selector
    if imm and "[" in ops:
        return (4, 5, 6, 8)
    return (4,)


def _words32(lb, known: set[int], in_exec, in_data) -> list[tuple[int, int, str]] | None:
    """32-bit code forms addresses that no byte pattern pins down: an absolute `movl $f,4(%esp)` or `mov sym,%eax`
    in a non-PIC executable, `lea f@GOTOFF(%reg)`, `mov x@GOT(%reg)`, `call *f@GOT(%reg)` relative to the GOT in
    PIC code, with any register and any opcode. Every 32-bit displacement or immediate of the code counts as such a
    field: (its instruction's address, the address it forms, "word") when it lands on a function start, in data or
    in code (its node), relative to every GOT base the code forms (`_pc_relative` values in writable memory) and, in
    a non-PIC executable, to 0. The fields are the last bytes of an instruction (a displacement is followed by
    nothing or by an 8-, 16- or 32-bit immediate); code decoded linearly from each function start, and where the
    decoder stops, every 4-byte window of the rest: a superset of what the instructions form, never less. None when
    the code forms more bases than MAX_GOT_BASES (the search would not be cheap; no compiler emits such code)."""
    formed = _pc_relative(lb)
    writable = [(r.start, r.end) for r in lb.memory.regions if r.writable and not r.executable]
    bases = sorted((v for v in formed if any(a <= v < b for a, b in writable)), key=lambda v: (-len(formed[v]), v))
    if len(bases) > MAX_GOT_BASES:
        return None
    spans = sorted([(r.start, r.end) for r in lb.memory.regions if r.readable])
    lo, hi = spans[0][0], spans[-1][1]

    def lands(v: int) -> bool:
        return lo <= v < hi and (v in known or in_data(v) or in_exec(v))

    out: list[tuple[int, int, str]] = [(at, v, "word") for v, ats in formed.items() for at in ats if lands(v)]
    offsets = bases + ([0] if lb.elf_type == "executable" else [])
    if not offsets:
        return out
    md = decoder(32)
    unpack = struct.unpack_from
    for rng in lb.exec_ranges:
        data = lb.memory.read(rng.start, rng.end - rng.start)
        if not data:
            continue
        base, n = rng.start, len(data)
        cuts = sorted({f.start - base for f in lb.functions if base <= f.start < base + n} | {0, n})
        for u0, u1 in pairwise(cuts):
            fields: list[tuple[int, int]] = []  # (instruction address, field offset in data)
            p = u0
            for addr, size, mnem, ops in md.disasm_lite(data[u0:u1], base + u0):
                q = addr - base
                p = q + size
                if size < 5:
                    continue
                for back in _field_ends(mnem, ops):
                    if size > back:  # a field never holds the first (opcode) byte
                        fields.append((addr, q + size - back))
            fields += [(base + x, x) for x in range(p, min(u1, n - 3))]  # undecoded: every window
            for at, x in fields:
                if x + 4 > n:
                    continue
                v0 = unpack("<I", data, x)[0]
                for off in offsets:
                    v = (v0 + off) & 0xFFFFFFFF
                    if lands(v):
                        out.append((at, v, "word"))
    return out


def _site_args(site, params: dict[int, str]) -> list:
    """[index, values or None, register or None] per FILTERED_ARGS argument of the site's syscalls."""
    out = []
    for idx in sorted({FILTERED_ARGS[ref.name] for ref in site.syscalls if ref.name in FILTERED_ARGS}):
        arg = site.args[idx] if idx < len(site.args) else None
        known = arg is not None and arg.status == "resolved" and bool(arg.values)
        out.append([idx, sorted(arg.values) if known else None, None if known else params.get(idx)])
    return out


def _absolute_addresses(lb) -> bool:
    """Can an immediate in the code be an address? In a position-dependent executable, or in an object with text
    relocations (the loader writes its load address into the code). Position-independent code without them forms
    every address relative to the instruction pointer (or, 32-bit, the GOT): its immediates are only numbers."""
    return lb.elf_type == "executable" or lb.textrel


PREFIXES = frozenset(b"\x26\x2e\x36\x3e\x64\x65\x66\x67\xf0\xf2\xf3")
REX = frozenset(range(0x40, 0x50))


def _decoder(lb):
    """`decode(f)`: (instruction starts, their ends, decoded up to) of function f decoded linearly from its start
    (to where Capstone stops), once per function."""
    md = decoder(lb.bits)
    decoded: dict[int, tuple[list[int], list[int], int]] = {}

    def decode(f) -> tuple[list[int], list[int], int]:
        got = decoded.get(f.start)
        if got is None:
            code = lb.memory.read(f.start, min(f.end - f.start, 1 << 22)) or b""
            starts, ends = [], []
            for a, sz, _m, _o in md.disasm_lite(code, f.start):
                starts.append(a)
                ends.append(a + sz)
            got = decoded[f.start] = (starts, ends, ends[-1] if ends else f.start)
        return got

    return decode


def _confirmed(lb, hits: list[tuple[int, int, str, int, bool]], decode) -> list[tuple[int, int, str]]:
    """The hits that are instructions: inside a function whose extent its symbol or FDE gives, a branch or
    rip-relative pattern must be one instruction of the function decoded from its start (`decode`, `_decoder`),
    give or take its prefixes (`notrack`, `bnd`, a REX byte), so that an `e8` or `76` byte inside another
    instruction is no call or jump; an immediate must lie inside one instruction (a `movabs` holds it in its low
    half). Elsewhere, and past the point where the decoder stops (an instruction it does not know), every hit stays.
    Linear decoding is exact there: x86-64 and i386 compilers keep no data in a function's code (jump tables are in
    .rodata), and its padding decodes as nops."""
    from bisect import bisect_right

    out: list[tuple[int, int, str]] = []
    for at, target, how, size, whole in hits:
        f = lb.function_at(at)
        if f is None or f.source not in EXACT_SOURCES:
            out.append((at, target, how))
            continue
        starts, ends, upto = decode(f)
        if at >= upto:
            out.append((at, target, how))
            continue
        k = bisect_right(starts, at) - 1
        if k < 0 or at + size > ends[k]:
            continue
        if not whole:
            out.append((at, target, how))
            continue
        lead = lb.memory.read(starts[k], at - starts[k]) or b""
        if ends[k] == at + size and len(lead) == at - starts[k] and \
                all(c in PREFIXES or (c in REX and lb.bits == 64) for c in lead):
            out.append((at, target, how))
    return out


def _code_hits(lb) -> list[tuple[int, int, str, int, bool]]:
    """(code address, target, how, the pattern's length, whether it is a whole instruction) for every byte pattern
    that transfers to or forms an address: "call", "jump" (rel32), "short" (rel8), "slot" (call/jmp through a
    rip-relative slot), "taken" (lea/mov rip-relative: whole instructions; absolute immediates: part of one). A
    search, not a decode: it may find more than the code does, never less."""
    out: list[tuple[int, int, str, int, bool]] = []
    patterns = RELATIVE_PATTERNS + (RIP_PATTERNS if lb.bits == 64 else ())
    for rng in lb.exec_ranges:
        data = lb.memory.read(rng.start, rng.end - rng.start)
        if not data:
            continue
        base, n = rng.start, len(data)
        for regex, disp_at, size, fmt, how, modrm_rip in patterns:
            for m in re.finditer(regex, data):
                p = m.start()
                if p + size <= n and (not modrm_rip or data[p + 2] & 0xC7 == 0x05):
                    out.append((base + p, base + p + size + struct.unpack_from(fmt, data, p + disp_at)[0], how,
                                size, True))
        for m in ABSOLUTE.finditer(data) if _absolute_addresses(lb) else ():
            p = m.end()
            if p + 4 <= n:
                out.append((base + m.start(), struct.unpack_from("<I", data, p)[0], "taken", p + 4 - m.start(),
                            False))
    return out


def _data_chunks(lb, s: ObjectSummary, start_set: set[int], refs: list[tuple[int, int]], node_of, in_data) -> None:
    """Function pointers stored in data count only when their data is live: referred to by reachable code, held
    by live data, or called through by the loader (init/fini arrays).

    Data is cut into chunks: a sized data symbol is one chunk; elsewhere a chunk runs from an address that code or
    a pointer refers to (or a section start) to the next such address. A chunk's pointers are live with it."""
    from bisect import bisect_right

    width = lb.bits // 8
    var_starts = [a for a, _ in lb.variables]
    pointers: list[tuple[int, int]] = [(slot, t) for slot, t in lb.pointers.items()]
    if lb.elf_type == "executable":  # not position-independent: absolute pointers in data carry no relocation
        fmt = "<Q" if width == 8 else "<I"
        for r in lb.memory.regions:
            if r.executable or not r.readable:
                continue
            data = r.data[: len(r.data) - len(r.data) % width]
            for k, (v,) in enumerate(struct.iter_unpack(fmt, data)):
                a = r.start + k * width
                if (v in start_set or in_data(v)) and a not in lb.pointers and not lb.in_symbol_table(a):
                    pointers.append((a, v))
    bounds = {a for a, _ in lb.sections} | {e for _, e in lb.sections} | set(var_starts) | \
        {e for _, e in lb.variables} | {t for _, t in refs} | {t for _, t in pointers if in_data(t)} | \
        {a for a, _ in lb.init_arrays} | {e for _, e in lb.init_arrays}
    for r in lb.memory.regions:
        if not r.executable:
            bounds.add(r.start)
    cuts = sorted(bounds)

    def chunk(a: int) -> int:
        i = bisect_right(var_starts, a) - 1
        if i >= 0 and a < lb.variables[i][1]:
            return var_starts[i]
        j = bisect_right(cuts, a) - 1
        return cuts[j] if j >= 0 else a

    # A cut that only code or a pointer makes (not a section, a sized symbol or an init array) may fall inside one
    # object: `lea table+8` for the field of an array's first element, while the array is walked from its start.
    # The walk goes on into the next chunk, so a chunk keeps the one after such a cut live.
    hard = {a for a, _ in lb.sections} | {e for _, e in lb.sections} | set(var_starts) | \
        {e for _, e in lb.variables} | {a for a, _ in lb.init_arrays} | {e for _, e in lb.init_arrays} | \
        {r.start for r in lb.memory.regions if not r.executable}
    for k in range(1, len(cuts)):
        if cuts[k] not in hard and in_data(cuts[k]) and chunk(cuts[k]) == cuts[k]:
            prev = chunk(cuts[k] - 1)
            if prev != cuts[k]:
                s.chunk_data.setdefault(prev, []).append(cuts[k])
    for src, t in refs:
        n = node_of(src)
        c = chunk(t)
        if n is None:
            s.live.setdefault(c, f"referred to from code outside every known function at {src:#x}")
        else:
            s.data_refs.setdefault(n, []).append(c)
    for slot, t in pointers:
        c = chunk(slot)
        if t in start_set:
            s.chunk_ptrs.setdefault(c, []).append(t)
        elif in_data(t) and chunk(t) != c:
            s.chunk_data.setdefault(c, []).append(chunk(t))
    data_symbols = set(lb.data_symbols)
    for slot, name in lb.got_symbols.items():
        if name in data_symbols:
            s.chunk_imports.setdefault(chunk(slot), []).append(name)
    for lo, hi in lb.init_arrays:  # every chunk the array spans (the cuts inside it, and the one it starts in)
        k = bisect_right(cuts, lo)
        inside = [chunk(lo)]
        while k < len(cuts) and cuts[k] < hi:
            inside.append(chunk(cuts[k]))
            k += 1
        for c in inside:
            s.live.setdefault(c, "called through by the loader (init/fini array)")
    if not lb.init_arrays and not lb.interpreter and lb.elf_type == "executable" and not lb.sections:
        for c in {chunk(slot) for slot, _ in pointers}:  # no section headers, no dynamic section: cannot tell
            s.live.setdefault(c, "data of a file without section headers (its init arrays cannot be told apart)")
    s.data_exports = {n: chunk(a) for n, a in sorted(lb.data_exports.items())}
    for d in (s.data_refs, s.chunk_ptrs, s.chunk_data, s.chunk_imports):
        for k in d:
            d[k] = sorted(set(d[k]))


def _nesting(lb):
    """`nested(t)`: does a known function that starts before t extend past it (its code may run on into t)? Any of
    them, not only the innermost: a run of labels inside one function (the cases of a switch, `.L244` after `.L249`
    in i386 ld.so's _dl_start) each fall into the next."""
    from bisect import bisect_left
    from itertools import accumulate

    fs = sorted((f.start, f.end) for f in lb.functions)
    starts = [a for a, _ in fs]
    reach = list(accumulate((e for _, e in fs), max))  # the furthest end of the functions up to each one

    def nested(t: int) -> bool:
        k = bisect_left(starts, t) - 1  # the functions that start before t
        return k >= 0 and reach[k] > t

    return nested


def _runs_entry(lb) -> bool:
    """The loader jumps to the program's entry and its own; a library's e_entry runs only when it is executed."""
    return lb.elf_type in ("executable", "pie") or bool(lb.soname and lb.soname.startswith("ld-linux"))


def _stubs(lb) -> dict[int, tuple[str, object]]:
    """PLT stub address -> ("import", name) for a stub that jumps through a symbol's GOT slot, or ("local", target)
    for one through a relocated pointer (IRELATIVE: an IFUNC resolver inside this object)."""
    out: dict[int, tuple[str, object]] = {}
    for stub, slot in plt_stubs(lb, lb.got_symbols.keys() | lb.pointers.keys()).items():
        out[stub] = ("import", lb.got_symbols[slot]) if slot in lb.got_symbols else ("local", lb.pointers[slot])
    return out
