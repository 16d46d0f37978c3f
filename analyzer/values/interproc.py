"""Inter-procedural value recovery: what a callee really clobbers, and who calls a function.

Two questions the local engine cannot answer inside one function:

* **What does a call destroy?** The ABI says a callee may clobber rax, rcx, rdx, rsi, rdi, r8–r11; compilers that
  see the callee's body know better and keep values in those registers across the call. `ClobberSummaries` runs
  the same data flow over the callee and reads, at every `ret`, which registers no longer hold their entry value
  (tail jumps add their target's summary; indirect calls and unfinished bodies fall back to the ABI). It plugs
  into `FunctionDataflow(call_effect=…)`.
* **Who calls this function, and with what?** `CallerIndex` finds every direct `call rel32`, `jmp rel32`,
  `jcc rel32` and `call/jmp *[rip+GOT]` whose target is a function start, and confirms each one by decoding the
  caller function (the bytes must be a real, reachable instruction there). `value_at_call` translates one of the
  callee's input atoms (EntryReg / EntryStack) into the caller's value at that call.

The wrapper logic built on these lives in `wrappers.py`.
"""
from __future__ import annotations

import bisect
import copy
import re
import struct
import time
from dataclasses import dataclass

import capstone

from ..limits import BudgetExceeded
from ..load import Function
from .atoms import EntryReg, EntryStack, StackPtr, Unknown, Vals, describe
from .local import CALLER_SAVED_32, CALLER_SAVED_64, GPRS, FunctionDataflow, RegState

MAX_SUMMARY_DEPTH = 1
"""Summaries are one level deep: the callee's own calls are taken at the ABI's worst case."""
MAX_SUMMARY_BYTES = 1 << 14
"""Bigger callees are not summarised (ABI default): the summary would cost more than it could win."""
GO_PRESERVED = ("rsp", "rbp", "r14", "r15")
"""Go's ABIInternal keeps no general register across a call but the stack/frame pointers, g (r14) and r15."""


@dataclass(frozen=True)
class CallSite:
    """A confirmed direct transfer to a function: the instruction, how it transfers, and the caller's state there."""

    address: int
    kind: str  # "call" | "jmp" (tail call) | "jcc" (conditional tail call)
    function_start: int
    function_end: int
    function: str
    flow: FunctionDataflow
    state: RegState

    @property
    def label(self) -> str:
        return f"{self.address:#x} in {self.function}"


class FunctionFinder:
    """Function starts for code no symbol, FDE or pclntab entry covers (busybox's own code has no .eh_frame).

    Disassembly-based discovery, run once and only when a caller lies outside every known function: a linear
    sweep of the executable ranges (Capstone; an undecodable byte is stepped over) marks instruction boundaries;
    the targets of `call rel32` found on boundaries, and code addresses stored as aligned words in data (function
    pointer tables) that fall on boundaries, are function starts. A function runs to the next start."""

    def __init__(self, lb) -> None:
        self.lb = lb
        self._starts: list[int] | None = None
        self.discovered = 0

    def function_for(self, addr: int):
        f = self.lb.function_at(addr)
        if f is not None and f.source in ("symbol", "eh_frame"):
            return f
        if self._starts is None:
            self._starts = self._discover()
        i = bisect.bisect_right(self._starts, addr) - 1
        if i < 0:
            return f
        start = self._starts[i]
        if f is not None and f.start >= start:
            return f
        end = self._starts[i + 1] if i + 1 < len(self._starts) else None
        rng = self.lb.exec_range_of(start)
        if rng is None:
            return f
        end = min(end or rng.end, rng.end)
        return Function(start, end, self.lb.symbols.get(start) or f"sub_{start:x}", "discovered")

    _ENDS = ("ret", "jmp", "ud2", "hlt")

    def split_before(self, addr: int, f):
        """A start between f.start and addr: the first instruction after the last ret/jmp/ud2/hlt (and its
        padding) before addr, when there is one."""
        lb = self.lb
        if addr - f.start > (1 << 16):
            return None
        code = lb.memory.read(f.start, addr - f.start + 1)
        if not code:
            return None
        md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64 if lb.bits == 64 else capstone.CS_MODE_32)
        after_end = False
        best = None
        for a, sz, m, _op in md.disasm_lite(code + b"\x90" * 15, f.start):
            if a > addr:
                break
            if after_end and not (m.startswith("nop") or m == "int3" or m.startswith("xchg")):
                best = a
                after_end = False
            if m in self._ENDS or m.startswith("ret"):
                after_end = True
        if best is None or best <= f.start or best > addr:
            return None
        return Function(best, f.end, lb.symbols.get(best) or f"sub_{best:x}", "discovered")

    def _discover(self) -> list[int]:
        lb = self.lb
        starts = {f.start for f in lb.functions}
        found = discover_starts(lb.memory, lb.exec_ranges, lb.bits)
        self.discovered = len(found - starts)
        return sorted(starts | found)


def discover_starts(memory, exec_ranges, bits: int) -> set[int]:
    """Function starts by disassembly: a linear sweep of the executable ranges marks instruction boundaries;
    `call rel32` targets on boundaries and code addresses stored as aligned words in data (function pointer
    tables) that fall on boundaries are starts."""
    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64 if bits == 64 else capstone.CS_MODE_32)
    boundary: dict[int, bytearray] = {}
    calls: list[int] = []
    for rng in exec_ranges:
        data = memory.read(rng.start, rng.end - rng.start)
        if not data:
            continue
        marks = bytearray(len(data))
        boundary[rng.start] = marks
        off = 0
        n = len(data)
        while off < n:
            last = off
            for a, sz, m, op in md.disasm_lite(data[off:off + 65536], rng.start + off):
                marks[a - rng.start] = 1
                if m == "call" and op.startswith("0x"):
                    calls.append(int(op, 16))
                last = a - rng.start + sz
            off = last if last > off else off + 1
    spans = [(r.start, r.end) for r in exec_ranges]

    def on_boundary(t: int) -> bool:
        for lo, hi in spans:
            if lo <= t < hi:
                b = boundary.get(lo)
                return bool(b is not None and b[t - lo])
        return False

    found = {t for t in calls if on_boundary(t)}
    width = bits // 8
    fmt = "<Q" if width == 8 else "<I"
    lo_all = min((lo for lo, _ in spans), default=0)
    hi_all = max((hi for _, hi in spans), default=0)
    for r in memory.regions:
        if r.executable or not r.readable:
            continue
        data = r.data[: len(r.data) - len(r.data) % width]
        for (v,) in struct.iter_unpack(fmt, data):
            if lo_all <= v < hi_all and v not in found and on_boundary(v):
                found.add(v)
    return found


def _rel32_fields(data: bytes, c: int, window: int = 1 << 16) -> list[int]:
    """Every x with le32(data[x:x+4]) == (c - x) mod 2^32: per window of x, the upper 16 bits of c - x take at most
    two values, searched as 2-byte needles at x + 2 (C speed); each hit is then checked in full."""
    out = []
    n = len(data) - 3  # x < n: four bytes to read
    for w in range(0, max(n, 0), window):
        xe = min(w + window, n)
        highs = {((c - w) >> 16) & 0xFFFF, ((c - xe + 1) >> 16) & 0xFFFF}
        for h in highs:
            needle = h.to_bytes(2, "little")
            pos = data.find(needle, w + 2, xe + 3)
            while pos >= 0:
                x = pos - 2
                if int.from_bytes(data[x:x + 4], "little") == (c - x) & 0xFFFFFFFF:
                    out.append(x)
                pos = data.find(needle, pos + 1, xe + 3)
    return sorted(set(out))


class CallerIndex:
    """Every direct call/jump into each function start, found by a byte scan and confirmed by decoding the caller.

    Patterns: e8/e9 rel32 (call/jmp), eb/7x rel8 (short tail jumps), 0f 8x rel32 (jcc), ff 15/ff 25 through a
    read-only GOT slot. A candidate counts only if the caller's decoding has exactly that instruction there and
    reaches it."""

    PER_TARGET_SEARCHES = 8
    PER_TARGET_SECONDS = 0.5
    """Targets searched one by one (a few C-speed byte searches per 64 KB of code: 0.15 s on node's 80 MB) before
    the whole index is built (every call-like byte decoded in Python: 3.7 s on node, which asks for 1 target).
    Go binaries ask for dozens (Syscall chains: 24 on rclone), so they build the index at once."""

    def __init__(self, lb, engine) -> None:
        self.lb = lb
        self.engine = engine
        self._cands: dict[int, list[tuple[int, str, int]]] | None = None
        self._per_target: dict[int, list[tuple[int, str, int]]] = {}
        self._search_seconds = 0.0
        self.failures: dict[int, list[str]] = {}
        """target -> calls whose caller could not be analysed (its data flow raised): callers() skips them, and
        whoever unions the callers' values must say the union may be incomplete."""
        self._confirmed: dict[int, list[CallSite]] = {}
        self._refs: dict[int, str] | None = None
        self.finder = FunctionFinder(lb)
        self.examined = 0

    def _build(self) -> dict[int, list[tuple[int, str, int]]]:
        lb = self.lb
        cands: dict[int, list[tuple[int, str, int]]] = {}
        mask = (1 << lb.bits) - 1
        spans = [(r.start, r.end) for r in lb.exec_ranges]

        def add(target: int, at: int, kind: str, size: int) -> None:
            for lo, hi in spans:
                if lo <= target < hi:
                    cands.setdefault(target, []).append((at, kind, size))
                    return

        for rng in lb.exec_ranges:
            data = lb.memory.read(rng.start, rng.end - rng.start)
            if not data:
                continue
            n = len(data)
            for m in re.finditer(rb"[\xe8\xe9]", data):
                p = m.start()
                if p + 5 > n:
                    break
                rel = struct.unpack_from("<i", data, p + 1)[0]
                add((rng.start + p + 5 + rel) & mask, rng.start + p, "call" if data[p] == 0xE8 else "jmp", 5)
            # short tail jumps (jmp rel8, jcc rel8): a wrapper placed right after its caller (w1: jmp raw1)
            for m in re.finditer(rb"[\xeb\x70-\x7f]", data):
                p = m.start()
                if p + 2 > n:
                    break
                rel = data[p + 1] - 256 if data[p + 1] > 127 else data[p + 1]
                add((rng.start + p + 2 + rel) & mask, rng.start + p, "jmp" if data[p] == 0xEB else "jcc", 2)
            for m in re.finditer(rb"\x0f[\x80-\x8f]", data):
                p = m.start()
                if p + 6 > n:
                    break
                rel = struct.unpack_from("<i", data, p + 2)[0]
                add((rng.start + p + 6 + rel) & mask, rng.start + p, "jcc", 6)
            if lb.bits == 64:
                # call/jmp *disp32(%rip) through a GOT slot that is read-only after relocation (static, -fno-plt)
                for m in re.finditer(rb"\xff[\x15\x25]", data):
                    p = m.start()
                    if p + 6 > n:
                        break
                    slot = rng.start + p + 6 + struct.unpack_from("<i", data, p + 2)[0]
                    if lb.memory.is_readonly(slot):
                        t = lb.memory.read_u64(slot)
                        if t is not None:
                            add(t, rng.start + p, "call" if data[p + 1] == 0x15 else "jmp", 6)
        return cands

    def candidates(self, target: int) -> list[tuple[int, str, int]]:
        """(address, kind, size) of every call-like instruction whose target is `target` (not yet confirmed)."""
        if self._cands is not None:
            return self._cands.get(target, [])
        got = self._per_target.get(target)
        if got is None:
            if (len(self._per_target) >= self.PER_TARGET_SEARCHES or self._search_seconds > self.PER_TARGET_SECONDS
                    or getattr(self.lb, "go", None) is not None):
                self._cands = self._build()
                return self._cands.get(target, [])
            t0 = time.perf_counter()
            got = self._per_target[target] = self._search(target)
            self._search_seconds += time.perf_counter() - t0
        return got

    def _search(self, target: int) -> list[tuple[int, str, int]]:
        """What `_build()` finds for one target, without decoding every call-like byte of the binary: a rel32 field
        at offset x that reaches `target` holds (target - base - x - 4) mod 2^32, whose upper 16 bits are one of
        two values over any 64 KB of x, so two 2-byte searches per 64 KB window find every candidate field."""
        lb = self.lb
        mask = (1 << lb.bits) - 1
        spans = [(r.start, r.end) for r in lb.exec_ranges]
        if not any(lo <= target < hi for lo, hi in spans):
            return []
        slots = self._slots_holding(target) if lb.bits == 64 else []
        out: list[tuple[int, str, int]] = []
        for rng in lb.exec_ranges:
            data = lb.memory.read(rng.start, rng.end - rng.start)
            if not data:
                continue
            base, n = rng.start, len(data)
            for x in _rel32_fields(data, target - base - 4):
                if (base + x + 4 + struct.unpack_from("<i", data, x)[0]) & mask != target:
                    continue
                if x >= 1 and data[x - 1] in (0xE8, 0xE9):
                    out.append((base + x - 1, "call" if data[x - 1] == 0xE8 else "jmp", 5))
                if x >= 2 and data[x - 2] == 0x0F and 0x80 <= data[x - 1] <= 0x8F:
                    out.append((base + x - 2, "jcc", 6))
            near = target - base - 2  # jmp/jcc rel8 at p reaches p + 2 + [-128, 127]
            for p in range(max(0, near - 127), min(n - 1, near + 129)):
                b = data[p]
                if b == 0xEB or 0x70 <= b <= 0x7F:
                    r = data[p + 1]
                    if (base + p + 2 + (r - 256 if r > 127 else r)) & mask == target:
                        out.append((base + p, "jmp" if b == 0xEB else "jcc", 2))
            for slot in slots:
                for x in _rel32_fields(data, slot - base - 4):
                    if x >= 2 and data[x - 2] == 0xFF and data[x - 1] in (0x15, 0x25) and \
                            base + x + 4 + struct.unpack_from("<i", data, x)[0] == slot:
                        out.append((base + x - 2, "call" if data[x - 1] == 0x15 else "jmp", 6))
        return sorted(set(out))

    def _slots_holding(self, target: int) -> list[int]:
        """Read-only words that hold `target` (GOT slots of `call *slot(%rip)` after relocation)."""
        needle = target.to_bytes(8, "little")
        out = []
        for r in self.lb.memory.regions:
            p = r.data.find(needle)
            while p >= 0:
                if self.lb.memory.is_readonly(r.start + p):
                    out.append(r.start + p)
                p = r.data.find(needle, p + 1)
        return out

    def callers(self, target: int) -> list[CallSite]:
        """Confirmed direct callers of the function starting at target, sorted by address."""
        got = self._confirmed.get(target)
        if got is not None:
            return got
        out: list[CallSite] = []
        for at, kind, size in self.candidates(target):
            f = self.finder.function_for(at)
            if f is None:
                continue
            self.examined += 1
            try:
                found = self._confirm(f, at, kind, size)
                if found is None and f.source == "discovered":
                    # The guessed start does not reach the call: the code may be a function nobody calls directly
                    # (reached by a tail jump or a pointer); try the start right after the previous function's end.
                    g = self.finder.split_before(at, f)
                    if g is not None:
                        f = g
                        found = self._confirm(f, at, kind, size)
            except BudgetExceeded:
                raise
            except Exception as e:  # noqa: BLE001 - one caller we cannot decode must not cost the others
                self.failures.setdefault(target, []).append(
                    f"the {kind} at {at:#x} in {f.name} was not analysed ({type(e).__name__}: {str(e)[:80]})")
                continue
            if found is None:
                continue
            if f.start == target and kind != "call":
                continue  # a jump back to our own entry (a loop, Go's morestack path), not a caller
            fd, state = found
            out.append(CallSite(at, kind, f.start, f.end, f.name, fd, state))
        out.sort(key=lambda c: c.address)
        self._confirmed[target] = out
        return out

    def _confirm(self, f, at: int, kind: str, size: int):
        """(flow, state at the call) if the caller's decoding has this transfer at `at` and reaches it."""
        fd = self.engine.flow(f.start, f.end, f.name)
        ins = fd.insns.get(at)
        if ins is None or ins.size != size:
            return None  # the bytes are inside another instruction of the caller
        if not (ins.mnemonic == kind or (kind == "jcc" and ins.mnemonic.startswith("j"))):
            return None
        state = fd.state_before(at)
        if state is None:
            return None  # not reachable in the caller: data in code
        if f.source == "discovered" and not any(isinstance(a, StackPtr) for a in state.regs.get("rsp", ())):
            return None  # the guessed start does not reach this call by direct control flow
        return fd, state

    def address_taken(self, target: int) -> list[str]:
        """Ways the function may also be reached indirectly: its address stored in data or formed in code.

        A conservative search, built once per binary: aligned words in non-executable memory (function pointer
        tables, GOT, vtables; the pclntab and .eh_frame encode addresses relatively or are skipped), rip-relative
        `lea`/`mov` and absolute immediates (`mov $f,%reg`, `push $f`) in code."""
        if self._refs is None:
            self._refs = self._build_refs()
        why = self._refs.get(target)
        return [why] if why else []

    def _build_refs(self) -> dict[int, str]:
        lb = self.lb
        starts = {f.start for f in lb.functions}
        refs: dict[int, str] = {}
        width = lb.bits // 8
        fmt = "<Q" if width == 8 else "<I"
        skip = _go_table_range(lb)
        for r in lb.memory.regions:
            if r.executable or not r.readable:
                continue
            data = r.data[: len(r.data) - len(r.data) % width]
            for k, (v,) in enumerate(struct.iter_unpack(fmt, data)):
                if v in starts and v not in refs:
                    a = r.start + k * width
                    if not (skip and skip[0] <= a < skip[1]):
                        refs[v] = f"its address is stored at {a:#x}"
        for rng in lb.exec_ranges:
            data = lb.memory.read(rng.start, rng.end - rng.start)
            if not data:
                continue
            n = len(data)
            if lb.bits == 64:
                # lea/mov disp32(%rip),%reg: REX.W 8d/8b with modrm mod=00 rm=101
                for m in re.finditer(rb"[\x48\x4c][\x8d\x8b]", data):
                    p = m.start()
                    if p + 7 <= n and data[p + 2] & 0xC7 == 0x05:
                        t = rng.start + p + 7 + struct.unpack_from("<i", data, p + 3)[0]
                        if t in starts and t not in refs:
                            refs[t] = f"its address is taken at {rng.start + p:#x}"
            # absolute immediates: mov $imm32,%r32 (b8+r), push $imm32 (68), movl $imm32,r/m (c7 /0, register form)
            for m in re.finditer(rb"[\xb8-\xbf\x68]|\xc7[\xc0-\xc7]", data):
                p = m.end()
                if p + 4 <= n:
                    t = struct.unpack_from("<I", data, p)[0]
                    if t in starts and t not in refs:
                        refs[t] = f"its address is used as an immediate at {rng.start + m.start():#x}"
        return refs


def _go_table_range(lb) -> tuple[int, int] | None:
    go = getattr(lb, "go", None)
    if go is None or not go.functions:
        return None
    # Go 1.2-1.17 pclntabs store absolute entry addresses: they are not references.
    return (go.pclntab, go.pclntab + 16 + (len(go.functions) + 2) * 2 * go.ptr_size + (1 << 24))


def value_at_call(cs: CallSite, atom, bits: int) -> Vals:
    """The caller's value, at the call, of one of the callee's input atoms (its view of registers and stack)."""
    if isinstance(atom, EntryReg):
        return cs.state.get(atom.reg)
    if isinstance(atom, EntryStack):
        w = bits // 8
        sp = cs.state.regs.get("rsp", frozenset())
        if len(sp) == 1:
            (a,) = sp
            if isinstance(a, StackPtr):
                # call pushes the return address, so the callee's entry sp is ours minus one word; a jump does not.
                slot = a.offset + atom.offset - (w if cs.kind == "call" else 0)
                return cs.flow._load_stack(cs.state, slot, w)
        return frozenset((Unknown(f"the stack pointer is not known at the call {cs.label}"),))
    return frozenset((atom,))


def foreign(atom, function: str, bits: int):
    """A caller-side atom that is neither a constant nor an input of the caller, as an Unknown naming the caller."""
    if isinstance(atom, Unknown):
        return atom
    return Unknown(describe(atom, function, bits))


def resolve_again(fd: FunctionDataflow, call_effect) -> FunctionDataflow:
    """The same function's data flow solved again with another `call_effect`, reusing its decoded instructions
    and blocks (decoding with operand details is most of the cost of a FunctionDataflow)."""
    try:
        again = copy.copy(fd)
        again.call_effect = call_effect
        again.incomplete = []
        again._block_in = {}
        again._solve()
        return again
    except AttributeError:  # the local engine's internals changed: build it from scratch
        return FunctionDataflow(fd.memory, fd.start, fd.end, fd.bits, fd.name, symbolize=fd.symbolize,
                                call_effect=call_effect, noreturn=fd.noreturn)


class ClobberSummaries:
    """`call_effect` for FunctionDataflow: which registers a direct callee really changes."""

    def __init__(self, lb, engine) -> None:
        self.lb = lb
        self.engine = engine
        self._memo: dict[int, tuple[str, ...] | None] = {}
        self._depth = 0
        self.computed = 0
        go = getattr(lb, "go", None) is not None
        self.default = (tuple(r for r in GPRS if r not in GO_PRESERVED) if go else
                        (CALLER_SAVED_64 if lb.bits == 64 else CALLER_SAVED_32))

    def __call__(self, target: int | None) -> tuple[str, ...] | None:
        if target is None:
            return self.default
        if target in self._memo:
            return self._memo[target]
        if self._depth >= MAX_SUMMARY_DEPTH:
            return self.default
        self._memo[target] = self.default  # recursion guard
        self._depth += 1
        try:
            result = self._summarise(target)
        finally:
            self._depth -= 1
        self._memo[target] = result
        return result

    def _summarise(self, target: int) -> tuple[str, ...]:
        lb = self.lb
        if target in lb.imports:
            return self.default  # a PLT stub: the callee is in another file
        f = lb.function_at(target)
        if f is None or f.start != target or f.source not in ("symbol", "eh_frame", "discovered"):
            return self.default  # without a known start (or extent) a `ret` may be missing from what we decode
        if f.end - f.start > MAX_SUMMARY_BYTES:
            return self.default
        self.computed += 1
        # The callee's own flow as the scan already has it (its callees at the ABI's worst case): one level of
        # summaries is what pays; deeper ones cost a fresh analysis per function for little.
        try:
            fd = self.engine.flow(f.start, f.end, f.name)
        except BudgetExceeded:
            raise
        except Exception:  # noqa: BLE001 - a callee we cannot analyse is taken at the ABI's worst case
            return self.default
        if fd.incomplete or not fd.blocks:
            return self.default
        changed: set[str] = {"rax"}
        exits = 0
        for block in fd.blocks.values():
            last = block.insns[-1]
            m = last.mnemonic
            if m == "ret":
                st = fd.state_before(last.address)
                if st is None:
                    continue
                exits += 1
                for r in GPRS:
                    if r in ("rsp",):
                        continue
                    if st.regs.get(r) != frozenset((EntryReg(r),)):
                        changed.add(r)
            elif m == "jmp":
                t = fd._direct_target(last)
                if t is not None and f.start <= t < f.end:
                    continue
                st = fd.state_before(last.address)
                if st is None:
                    continue
                exits += 1
                tail = self(t) if t is not None else self.default
                if tail is None:
                    tail = self.default
                changed.update(tail)
                for r in GPRS:
                    if r != "rsp" and st.regs.get(r) != frozenset((EntryReg(r),)):
                        changed.add(r)
        if not exits:
            return self.default  # never returns as far as we can see: do not claim anything survives
        # Callee-saved registers a (hand-written) callee breaks count too: exactly what it changes, no more.
        return tuple(r for r in GPRS if r in changed)
