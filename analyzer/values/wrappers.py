"""Wrappers: a site whose number (or an argument) is its function's own input, resolved at every caller.

A site's value is a set of atoms (atoms.py). When it holds EntryReg(r) or EntryStack(off), the containing function
is a *wrapper* for that input — glibc's `syscall()` (rax = EntryReg(rdi)), musl's `__syscall_cp_asm`
(rax = EntryReg(rsi)), Go's `runtime/internal/syscall.Syscall6` (rax = EntryReg(rax), register ABI), a Go ABI0
assembly function such as `syscall.rawSyscallNoError` (rax = EntryStack(8), stack ABI). Nothing is matched by name.

For each such atom we take the confirmed direct callers (interproc.CallerIndex: `call`, tail `jmp`, `jcc`,
`call *GOT`), read the caller's value at the call — a register, or the caller's stack slot that becomes the
callee's argument — and when that is again the caller's own input (a wrapper of a wrapper), go one level up, to
MAX_DEPTH levels. Every leaf keeps the chain of call sites that produced it (provenance), so the report can say
"39 from the call at 0x4011a0 in main via 0x401100 in my_wrapper".

What cannot be seen is said: a wrapper whose address is taken may also be called indirectly, a function exported
from a shared object may be called from another file, a chain may be too deep or recursive. Those become
reasons, and the value is `partial` rather than `resolved`.
"""
from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field

from capstone.x86 import X86_OP_MEM, X86_REG_EIZ, X86_REG_INVALID, X86_REG_RIZ

from ..elf.dso import read_dso
from ..model import CallerValue, RegisterValue, WrapperCall
from ..program.calls import got_calls, import_stubs
from ..program.libraries import find_library
from ..syscalls.abi import name_syscall, native_abi
from .atoms import EntryReg, EntryStack, Unknown, describe
from .interproc import CallerIndex, CallSite, ClobberSummaries, foreign, resolve_again, value_at_call
from .local import VDSO_CALL_OPERANDS, FunctionDataflow, ValueSummary, summarize

MAX_DEPTH = 6
"""Wrapper levels followed above the site (Go: syscall.read → Syscall → RawSyscall6 → Syscall6 is 3)."""
MAX_ARG_DEPTH = 3
"""Levels followed for the arguments of a wrapper site."""
MAX_LEAVES = 512
"""Caller chains kept per input; beyond this the rest is summarised as one reason."""
MAX_CALLSITES = 20000
"""Call sites examined per binary: the whole inter-procedural stage stays bounded on hostile input."""
MAX_REASONS = 12
MAX_PROVENANCE = 32


@dataclass(frozen=True)
class Leaf:
    chain: tuple[tuple[int, str], ...]  # (call address, caller name), the wrapper's direct caller first
    values: frozenset  # ints and Unknown atoms (nothing left to substitute)


@dataclass(frozen=True)
class RefinedSummary(ValueSummary):
    """A ValueSummary after callers were consulted: with provenance and per-caller detail for the report."""

    provenance: tuple[str, ...] = ()
    callers: tuple = field(default=(), compare=False)  # model.CallerValue


def chain_text(chain: tuple[tuple[int, str], ...]) -> str:
    """Outermost call first: 'the call at 0x4011a0 in main → 0x401100 in wrap'."""
    return " → ".join(f"{a:#x} in {n}" for a, n in reversed(chain))


class WrapperResolver:
    """Substitutes a function's input atoms with their values at its callers, recursively."""

    def __init__(self, lb, engine, index: CallerIndex) -> None:
        self.lb = lb
        self.engine = engine
        self.index = index
        self.bits = lb.bits
        self._memo: dict[tuple, tuple[int, tuple[Leaf, ...]]] = {}
        self.wrappers: dict[int, str] = {}  # functions found to be wrappers (start -> name), for statistics
        self.precise = None  # CallSite -> CallSite with the caller's state under clobber summaries
        self.exhausted = False

    def _deadline_expired(self) -> bool:
        d = getattr(self.engine, "deadline", None)
        return bool(d is not None and d.expired())

    def resolve(self, fstart: int, fname: str, atom, remaining: int = MAX_DEPTH,
                active: frozenset = frozenset()) -> tuple[Leaf, ...]:
        """Leaves for one input atom of a function: `remaining` more caller levels may be followed."""
        key = (fstart, atom)
        desc = describe(atom, fname, self.bits)
        if key in active:
            return (Leaf((), frozenset((Unknown(f"{desc}: recursive calls"),))),)
        memo = self._memo.get(key)
        if memo is not None and memo[0] >= remaining:
            return memo[1]
        leaves = self._resolve(fstart, fname, atom, desc, remaining, active | {key})
        self._memo[key] = (remaining, leaves)
        return leaves

    def _resolve(self, fstart: int, fname: str, atom, desc: str, remaining: int,
                 active: frozenset) -> tuple[Leaf, ...]:
        self.wrappers.setdefault(fstart, fname)
        lb = self.lb
        extra: list[str] = []
        if lb.elf_type == "shared-object" and not fname.startswith("sub_"):
            extra.append(f"{desc}: {fname} may be called from outside this shared object")
        taken = self.index.address_taken(fstart)
        if taken:
            extra.append(f"{desc}: {fname} may also be called indirectly ({taken[0]})")
        if remaining <= 0:
            return (Leaf((), frozenset((Unknown(f"{desc}: the chain of wrapper calls is longer than analysed"),))),)
        if self.index.examined > MAX_CALLSITES or self._deadline_expired():
            self.exhausted = True
            return (Leaf((), frozenset((Unknown(f"{desc}: inter-procedural budget exhausted"),))),)
        callers = self.index.callers(fstart)
        extra.extend(f"{desc}: {why}" for why in self.index.failures.get(fstart, ()))
        if not callers and not extra:
            return (Leaf((), frozenset((Unknown(f"{desc}; no calls to {fname} found"),))),)
        merged: dict[tuple, set] = {}
        for cs in callers:
            v = value_at_call(cs, atom, self.bits)
            if self.precise is not None and any(isinstance(a, Unknown) and "clobbered by the call" in a.reason
                                                for a in v):
                cs = self.precise(cs)  # the caller kept it in a register over a call: use real clobbers
                v = value_at_call(cs, atom, self.bits)
            direct: set = set()
            for a in v:
                if isinstance(a, int):
                    direct.add(a)
                elif isinstance(a, (EntryReg, EntryStack)):
                    for leaf in self.resolve(cs.function_start, cs.function, a, remaining - 1, active):
                        merged.setdefault(((cs.address, cs.function),) + leaf.chain, set()).update(leaf.values)
                else:
                    direct.add(foreign(a, cs.function, self.bits))
            if direct:
                merged.setdefault(((cs.address, cs.function),), set()).update(direct)
            if len(merged) > MAX_LEAVES:
                break
        out = [Leaf(chain, frozenset(vals)) for chain, vals in sorted(merged.items(), key=lambda kv: kv[0])]
        if len(out) > MAX_LEAVES:
            out = out[:MAX_LEAVES] + [Leaf((), frozenset((Unknown(f"{desc}: more than {MAX_LEAVES} callers; "
                                                                   "the rest were not examined"),)))]
        out.extend(Leaf((), frozenset((Unknown(r),))) for r in extra)
        return tuple(out)


HOPELESS_FOR_ANGR = ("writable memory", "parameter", "at entry of", "caller's stack", "thread-local",
                     "reached only by an indirect jump", "not reached when decoding", "return value of",
                     "clobbered by the call")
"""Local reasons angr cannot do better on: it treats inputs, writable memory and call results as unknown too,
and it does not follow calls (what a callee clobbers is the clobber summaries' job)."""


_LOAD_AT = re.compile(r"loaded at (0x[0-9a-f]+) through a pointer")
_NO_INDEX = (X86_REG_INVALID, X86_REG_RIZ, X86_REG_EIZ)
"""Index registers of a memory operand that index nothing: Capstone spells a SIB byte without an index
`riz`/`eiz` (`mov (%rdx,%riz,1),%eax` is a plain dereference of rdx)."""


def worth_angr(fd: FunctionDataflow, reasons) -> bool:
    """Is there a reason angr may remove? A load through a pointer counts only when it indexes (a table in
    read-only data, an array in the frame: `mov 0x479010(,%rdi,8),%rax`); a plain dereference of a pointer that
    came from a parameter or from writable memory stays unknown for angr too. Loops (too many values) and
    instructions the local engine does not model count."""
    for r in reasons:
        m = _LOAD_AT.search(r)
        if m:
            ins = fd.insns.get(int(m.group(1), 16))
            if ins is not None and any(op.type == X86_OP_MEM and op.mem.index not in _NO_INDEX for op in ins.ops):
                return True
            continue
        if not any(h in r for h in HOPELESS_FOR_ANGR):
            return True
    return False


def _lost_to_call(state, reg: str) -> bool:
    """Did the ABI's worst case for a call destroy this value (the local engine's "clobbered by the call")?"""
    return state is not None and any(isinstance(a, Unknown) and "clobbered by the call" in a.reason
                                     for a in state.get(reg))


class Interproc:
    """The inter-procedural stage for one binary: refines the local summaries of a site's registers."""

    def __init__(self, lb, engine) -> None:
        self.lb = lb
        self.engine = engine
        self.index = CallerIndex(lb, engine)
        self.resolver = WrapperResolver(lb, engine, self.index)
        self.clobbers = ClobberSummaries(lb, engine)
        self.angr = None  # angr_fallback.AngrFallback, created on first need
        self.resolver.precise = self._precise_call_site
        self._precise: dict[tuple[int, int], FunctionDataflow] = {}

    def with_angr(self, raw, reg: str, local: ValueSummary) -> ValueSummary:
        """The number per angr's symbolic execution of the function (angr_fallback.py), merged with what the local
        engine knew."""
        if self.angr is None:
            from .angr_fallback import AngrFallback

            self.angr = AngrFallback(self.lb, getattr(self.engine, "deadline", None))
        vals, complete, why = self.angr.number_at(raw.function_start, raw.address, reg)
        if complete:
            return RefinedSummary(tuple(vals), (), (), ("angr",), ())
        consts = tuple(sorted(set(local.constants) | set(vals)))
        reasons = tuple(local.reasons) + ((why,) if why else ())
        prov = (("local",) if local.constants else ()) + (("angr",) if vals else ())
        return RefinedSummary(consts, reasons, (), prov, ())

    def _precise_call_site(self, cs):
        fd = self.precise_flow(cs.function_start, cs.function_end, cs.function, cs.address)
        state = fd.state_before(cs.address)
        return cs if state is None else dataclasses.replace(cs, flow=fd, state=state)

    def precise_flow(self, start: int, end: int, name: str, focus: int) -> FunctionDataflow:
        """The function's data flow with callee clobber summaries instead of the ABI's worst case."""
        base = self.engine.flow(start, end, name, focus)
        key = (start, end, base.cone_of)  # a big function's flow is per cone
        fd = self._precise.get(key)
        if fd is None:
            fd = resolve_again(base, self.clobbers)
            self._precise[key] = fd
        return fd

    def refine(self, raw, regs: list[str], summaries: dict[str, ValueSummary]) -> dict[str, ValueSummary]:
        """The number, when it is an input of the site's function, is resolved at the callers; so are the
        arguments of such a wrapper (`syscall(SYS_openat, AT_FDCWD, path, …)`), less deeply. The arguments of an
        ordinary libc function (`write(fd, buf, n)`, number known) stay "from parameter …": following every
        caller of every libc function would cost much and tell little about what the binary can ask the kernel."""
        fd = self.engine.flow(raw.function_start, raw.function_end, raw.function_name, raw.address)
        before = fd.state_before(raw.address)
        if _lost_to_call(before, regs[0]):
            # The number was lost to a call: redo the function with what each callee really clobbers (the
            # compiler may keep it in a caller-saved register over a call to a function it knows). Only for the
            # number: on glibc and busybox a second solve for arguments cost 30-80 % more time and recovered none.
            precise = self.precise_flow(raw.function_start, raw.function_end, raw.function_name, raw.address)
            pstate = precise.state_before(raw.address)
            if pstate is not None:
                fd = precise
                mask = 0xFFFFFFFF if regs[0] == "eax" else None
                summaries = {r: summarize(pstate.get(r), raw.function_name, self.lb.bits, mask) for r in regs}
                n = summaries[regs[0]]
                if n.constants:
                    summaries[regs[0]] = RefinedSummary(n.constants, n.reasons, n.inputs,
                                                        ("local", "callee clobber summaries"), ())
        number = summaries[regs[0]]
        if not number.inputs:
            if number.status != "resolved" and worth_angr(fd, number.reasons):
                summaries = dict(summaries)
                summaries[regs[0]] = self.with_angr(raw, regs[0], number)
            return summaries
        state = fd.state_before(raw.address)
        if state is None:
            return summaries
        out = dict(summaries)
        for i, reg in enumerate(regs):
            s = summaries[reg]
            if s.inputs:
                mask = 0xFFFFFFFF if reg.startswith("e") else (1 << self.lb.bits) - 1
                depth = MAX_DEPTH if i == 0 else MAX_ARG_DEPTH
                out[reg] = self.resolve_value(raw.function_start, raw.function_name, state.get(reg), mask, depth)
        return out

    def resolve_value(self, fstart: int, fname: str, v, mask: int, max_depth: int = 0) -> RefinedSummary:
        bits = self.lb.bits
        consts: set[int] = set()
        reasons: list[str] = []
        provenance: list[str] = []
        callers: list[CallerValue] = []
        inputs = []
        for a in sorted((x for x in v if not isinstance(x, int)), key=lambda a: (type(a).__name__, a)):
            if isinstance(a, (EntryReg, EntryStack)):
                inputs.append(a)
            else:
                reasons.append(describe(a, fname, bits))
        local = {x & mask for x in v if isinstance(x, int)}
        if local:
            consts |= local
            provenance.append("local")
        for atom in inputs:
            desc = describe(atom, fname, bits)
            for leaf in self.resolver.resolve(fstart, fname, atom, max_depth):
                lc = sorted({x & mask for x in leaf.values if isinstance(x, int)})
                lu = [u.reason for u in sorted((x for x in leaf.values if isinstance(x, Unknown)),
                                              key=lambda u: u.reason)]
                consts.update(lc)
                if not leaf.chain:
                    reasons.extend(lu)
                    continue
                where = chain_text(leaf.chain)
                outer_addr, outer_fn = leaf.chain[-1]
                via = [f"{a:#x} in {n}" for a, n in reversed(leaf.chain[:-1])]
                if lc:
                    provenance.append(f"caller {where}")
                reasons.extend(f"{desc}, at the call {where}: {r}" for r in lu)
                callers.append(CallerValue(call_site=outer_addr, function=outer_fn, via=via, values=lc,
                                           status=("partial" if lc else "unresolved") if lu else "resolved",
                                           reasons=lu))
        reasons = list(dict.fromkeys(reasons))
        if len(reasons) > MAX_REASONS:
            reasons = reasons[:MAX_REASONS] + [f"… and {len(reasons) - MAX_REASONS} more unresolved callers"]
        if len(provenance) > MAX_PROVENANCE:
            provenance = provenance[:MAX_PROVENANCE] + [f"… and {len(provenance) - MAX_PROVENANCE} more callers"]
        return RefinedSummary(tuple(sorted(consts)), tuple(reasons), (), tuple(provenance), tuple(callers))


KERNEL_ENTRIES = {  # per class: (mnemonic, operands) -> bytes of the instructions a libc wrapper enters the kernel by
    64: {("syscall", ""): b"\x0f\x05"},
    32: {("int", "0x80"): b"\xcd\x80", ("call", VDSO_CALL_OPERANDS[0]): b"\x65\xff\x15\x10\x00\x00\x00"},
}


class LibraryWrappers:
    """Which exported functions of one library make a system call whose number is their own parameter.

    Decided by the same data flow as everything else (the site's number holds EntryReg/EntryStack), only for the
    functions the binary imports and only when their bytes hold a syscall instruction: for glibc that is
    `syscall()` (number in rdi); nothing is matched by name. The library is read with a minimal ELF reader
    (PT_LOAD segments and .dynsym): a full load of libc.so.6 would cost seconds per dynamic binary."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.memory, self.exports, self.bits = read_dso(path)
        self._memo: dict[str, object] = {}

    def wrapper_input(self, name: str):
        """The input atom (EntryReg/EntryStack) the exported function `name` uses as a syscall number, or None."""
        if name in self._memo:
            return self._memo[name]
        atom = None
        found = self.exports.get(name)
        if found is not None and 0 < found[1] <= (1 << 16):
            start, size = found
            code = self.memory.read(start, size) or b""
            # x86-64: `syscall`; i386: `int $0x80`, or the vDSO's entry through the TCB (glibc's syscall())
            traps = KERNEL_ENTRIES[self.bits]
            if any(t in code for t in traps.values()):
                fd = FunctionDataflow(self.memory, start, start + size, self.bits, name)
                for a, ins in sorted(fd.insns.items()):
                    if (ins.mnemonic, ins.op_str) not in traps:
                        continue
                    st = fd.state_before(a)
                    if st is None:
                        continue
                    atoms = [x for x in st.get("rax") if isinstance(x, (EntryReg, EntryStack))]
                    if atoms:
                        atom = atoms[0]
                        break
        self._memo[name] = atom
        return atom


_LIB_CACHE: dict[tuple, LibraryWrappers] = {}


def library_wrappers(path: str) -> LibraryWrappers:
    st = os.stat(path)
    key = (os.path.realpath(path), st.st_mtime_ns, st.st_size)
    lw = _LIB_CACHE.get(key)
    if lw is None:
        lw = _LIB_CACHE[key] = LibraryWrappers(path)
    return lw


def import_targets(lb) -> tuple[dict[int, str], list[tuple[int, str]]]:
    """The imports' PLT stubs (address -> name) and the calls straight through their GOT slots: found once per file
    (each is a search of its code), then handed to import_calls."""
    return import_stubs(lb), got_calls(lb)


def import_calls(lb, ip, names: set[str], targets: tuple[dict[int, str], list[tuple[int, str]]],
                 incomplete: list[str] | None = None) -> list[tuple]:
    """(CallSite, name) of every call to the imported functions `names`: through their PLT stubs, and straight
    through their GOT slots (-fno-plt builds: no stub to find callers of). `targets`: import_targets(lb)."""
    stubs, direct = targets
    calls: list[tuple] = []
    for stub, name in sorted(stubs.items()):
        if name in names:
            calls.extend((cs, name) for cs in ip.index.callers(stub))
            if incomplete is not None:
                incomplete.extend(f"calls to {name}(): {why}" for why in ip.index.failures.get(stub, ()))
    for at, name in direct:
        if name in names:
            f = ip.index.finder.function_for(at)
            got = ip.index._confirm(f, at, "call", 6) if f is not None else None
            if got is not None:
                fd, state = got
                calls.append((CallSite(at, "call", f.start, f.end, f.name, fd, state), name))
    return calls


def library_wrapper_calls(lb, engine, incomplete: list[str]) -> list:
    """Calls from this file to an imported function that is a syscall wrapper in the library that provides it
    (libc's `syscall(SYS_gettid)` from a dynamic binary): the number at each call, resolved like a wrapper site's
    (through this file's own wrappers too). The kernel entry is in the library, so these are not sites."""

    targets = stubs, direct = import_targets(lb)
    wanted = sorted(set(stubs.values()) | {n for _, n in direct})
    if not wanted:
        return []
    found: dict[str, tuple[object, str]] = {}
    for lib in lb.needed:
        path = find_library(lib, lb.bits)
        if path is None:
            continue
        try:
            lw = library_wrappers(path)
            for name in wanted:
                if name not in found:
                    atom = lw.wrapper_input(name)
                    if atom is not None:
                        found[name] = (atom, os.path.basename(path))
        except Exception as e:  # noqa: BLE001 - a library we cannot analyse costs only this part
            incomplete.append(f"library {lib} not analysed for syscall wrappers: {type(e).__name__}: {str(e)[:120]}")
    if not found:
        return []
    if engine.interproc is None:
        engine.interproc = Interproc(lb, engine)
    ip = engine.interproc
    calls = import_calls(lb, ip, set(found), targets, incomplete)
    out = []
    mask = (1 << lb.bits) - 1
    abi = native_abi(lb.bits).name
    seen = set()
    for cs, name in sorted(calls, key=lambda c: c[0].address):
        if cs.address in seen:
            continue
        seen.add(cs.address)
        atom, libname = found[name]
        v = value_at_call(cs, atom, lb.bits)
        s = ip.resolve_value(cs.function_start, cs.function, v, mask, MAX_DEPTH - 1)
        reg = atom.reg if isinstance(atom, EntryReg) else f"[sp+{atom.offset:#x}]"
        number = RegisterValue(register=reg, role="number", values=list(s.constants), status=s.status,
                               reasons=list(s.reasons), provenance=list(s.provenance) or ["local"],
                               callers=list(s.callers))
        out.append(WrapperCall(call_site=cs.address, function=cs.function, callee=name, library=libname,
                               number=number, syscalls=[name_syscall(abi, n) for n in s.constants]))
    return out


