"""Intra-procedural data flow: what each register holds before each instruction of one function.

Forward abstract interpretation over the function's control-flow graph (Capstone decodes; we build blocks).
Joins take the union of possibilities, so a number that differs by branch keeps both values; stack slots are
tracked relative to the entry stack pointer, so spills and reloads keep their values; loads from read-only memory
become constants. Everything we cannot know becomes an `Unknown` atom that says why.
"""
from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field

import capstone
from capstone import x86 as X

from ..budget import NEVER, Deadline
from ..elf.decode import decoder
from ..elf.memory import Memory
from .atoms import (
    TOO_MANY,
    EntryReg,
    EntryStack,
    StackPtr,
    Unknown,
    Vals,
    constants,
    describe,
    symbolic,
    union,
)

GPRS = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15")
CALLER_SAVED_64 = ("rax", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11")
CALLER_SAVED_32 = ("rax", "rcx", "rdx")
MAX_BLOCK_VISITS = 40
WIDEN_AFTER = 8
"""Visits of a block after which values still changing at its entry are widened to 'too many possible values'
(a loop that counts or moves the stack pointer would otherwise add one value per visit up to MAX_ATOMS)."""
MAX_FUNCTION_BYTES = 1 << 18
"""Code decoded per function. Real functions are far smaller (glibc's largest: ~20 KB); a hostile symbol size or
FDE can claim megabytes, and each decoded instruction costs ~5 KB of Capstone detail (256 KB of code: ~60k
instructions, ~300 MB, ~20 s of data flow)."""
DECODE_WINDOW = 4096
WHOLE_LIMIT = 20_000
"""Instructions up to which a function is solved whole (every real function of libc, busybox, Go binaries). A bigger
one — OpenSSL's hand-written assembly, or bounds that are wrong (a corrupt FDE, a block of zeros shifting the code) —
is decoded without operand details to build its control flow, and only the blocks that can reach the instruction
asked about are decoded with details and solved: the same values at that instruction, for the cost of its cone."""
BIG_FUNCTION_BYTES = 1 << 16
"""Bytes beyond which a function is likely above WHOLE_LIMIT (ValueEngine.BIG_WORK counts those)."""
CONE_LIMIT = 30_000
"""Instructions in that cone beyond which the values are not computed: "analysis bound reached", said per site."""


class AnalysisBound(Exception):
    """The work a question needs is above the bound (CONE_LIMIT): its values are reported unresolved, with this."""


@dataclass
class LiteCode:
    """One function's instructions decoded without operand details (cheap: ~1 µs each), and the ones decoded with
    details so far; shared by every cone of the same function."""

    insns: dict[int, tuple[int, str, str]]  # address -> (size, mnemonic, op_str)
    detailed: dict[int, Insn] = field(default_factory=dict)
    zero_adds: int = 0  # `add %al,(%rax)`: what runs of zero bytes decode to
    undecodable: int = 0  # bytes skipped because they decode to nothing
    cfg: tuple | None = None  # (blocks, block_of, entry leader, predecessors), built once for all cones


def _build_reg_table() -> dict[str, tuple[str, int, int]]:
    """Capstone register name -> (family, width in bits, bit shift). 'ah' is (rax, 8, 8)."""
    table: dict[str, tuple[str, int, int]] = {}
    for fam, names in {
        "rax": ("rax", "eax", "ax", "al", "ah"),
        "rbx": ("rbx", "ebx", "bx", "bl", "bh"),
        "rcx": ("rcx", "ecx", "cx", "cl", "ch"),
        "rdx": ("rdx", "edx", "dx", "dl", "dh"),
        "rsi": ("rsi", "esi", "si", "sil", None),
        "rdi": ("rdi", "edi", "di", "dil", None),
        "rbp": ("rbp", "ebp", "bp", "bpl", None),
        "rsp": ("rsp", "esp", "sp", "spl", None),
    }.items():
        for name, width, shift in zip(names, (64, 32, 16, 8, 8), (0, 0, 0, 0, 8)):
            if name:
                table[name] = (fam, width, shift)
    for n in range(8, 16):
        r = f"r{n}"
        for suffix, width in (("", 64), ("d", 32), ("w", 16), ("b", 8)):
            table[r + suffix] = (r, width, 0)
    return table


REGS = _build_reg_table()


def canonical(reg: str) -> str:
    """Family name for any spelling: 'edi' -> 'rdi', 'r10d' -> 'r10'."""
    return REGS[reg][0]


class RegState:
    """Registers and stack slots at one program point. Values are frozensets of atoms (see atoms.py)."""

    __slots__ = ("regs", "stack")

    def __init__(self, regs: dict[str, Vals], stack: dict[int, tuple[int, Vals]]) -> None:
        self.regs = regs
        self.stack = stack

    def copy(self) -> "RegState":
        return RegState(dict(self.regs), dict(self.stack))

    def get(self, reg: str) -> "ValueSet":
        """Full-width value of a register family, any spelling ('edi' and 'rdi' both give the rdi family)."""
        fam = REGS[reg][0] if reg in REGS else reg
        return ValueSet(self.regs.get(fam, frozenset((Unknown(f"{reg} not tracked"),))))

    def merge(self, other: "RegState", widen: Vals | None = None) -> bool:
        """Join `other` into this state in place; True if anything changed. The fixpoint calls this for every edge,
        so unchanged registers (the common case) cost one frozenset comparison and nothing is rebuilt.

        `widen`: a value that replaces whatever still changes (a loop that moves the stack pointer or counts on
        every iteration would otherwise grow a set until MAX_ATOMS, one visit per value)."""
        changed = False
        regs, oregs = self.regs, other.regs
        for r, v in regs.items():
            o = oregs[r]
            if o is v or o == v:
                continue
            u = union(v, o)
            if widen is not None and u != v:
                u = widen
            if u != v:
                regs[r] = u
                changed = True
        stack, ostack = self.stack, other.stack
        if stack == ostack:
            return changed
        for off in stack.keys() | ostack.keys():
            a = stack.get(off)
            b = ostack.get(off)
            if a is not None and b is not None and a[0] == b[0]:
                if a[1] is b[1] or a[1] == b[1]:
                    continue
                u = union(a[1], b[1])
                if widen is not None and u != a[1]:
                    u = widen
                if u != a[1]:
                    stack[off] = (a[0], u)
                    changed = True
            else:
                w, v = a if a is not None else b
                u = union(v, _PARTIAL_SLOT)
                if widen is not None and (a is None or u != a[1]):
                    u = widen
                if a is None or u != a[1]:
                    stack[off] = (w, u)
                    changed = True
        return changed


_PARTIAL_SLOT = frozenset((Unknown("stack slot not written on every path"),))
_WIDENED = frozenset((TOO_MANY,))  # absorbing in union(): what a loop keeps changing stops changing


class ValueSet(frozenset):
    """A frozenset of atoms with the questions callers ask of it."""

    @property
    def constants(self) -> frozenset[int]:
        return frozenset(a for a in self if isinstance(a, int))

    @property
    def is_resolved(self) -> bool:
        return bool(self) and all(isinstance(a, int) for a in self)

    @property
    def reason(self) -> str | None:
        syms = symbolic(self)
        return None if not syms else "; ".join(describe(a, "the function", 64) for a in syms)


@dataclass(frozen=True)
class Insn:
    address: int
    size: int
    mnemonic: str
    op_str: str
    raw: object  # capstone CsInsn (detail on)
    ops: tuple = ()  # operands, extracted once: capstone rebuilds them on every attribute access


@dataclass
class Block:
    start: int
    insns: list[Insn]
    succs: list[int]


REALIGN_GAP = 1 << 20
"""`and $-16,%esp` (i386 main's stack realignment) moves the stack pointer down by an amount not known here: what
follows is addressed relative to the new one. It is modelled this far below the old one, so that the new frame's
slots can never be taken for the old frame's or for the caller's arguments (a slot never written reads unknown)."""
VDSO_CALL_OPERANDS = ("dword ptr gs:[0x10]",)  # `call *%gs:0x10`: i386 glibc's and musl's way into the kernel
CallEffect = Callable[[int | None], "tuple[str, ...] | None"]
"""Given a call target (None when indirect), the registers the callee clobbers, or None for the ABI default."""


class FunctionDataflow:
    """Decode one function, build its blocks, and run the forward analysis to a fixpoint."""

    def __init__(
        self,
        memory: Memory,
        start: int,
        end: int,
        bits: int = 64,
        name: str = "",
        symbolize: Callable[[int], str | None] | None = None,
        call_effect: CallEffect | None = None,
        noreturn: Callable[[int], bool] | None = None,
        deadline: Deadline = NEVER,
        focus: int | None = None,
        lite: LiteCode | None = None,
        also: tuple[int, ...] = (),
    ) -> None:
        self.memory = memory
        self.deadline = deadline  # checked per block visit and every few thousand instructions decoded
        self.start = start
        self.end = min(end, start + MAX_FUNCTION_BYTES)
        self.bits = bits
        self.mask = (1 << bits) - 1
        self.name = name or f"sub_{start:x}"
        self.symbolize = symbolize or (lambda a: None)
        self.call_effect = call_effect
        self.noreturn = noreturn or (lambda a: False)
        self.incomplete: list[str] = []
        self._md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64 if bits == 64 else capstone.CS_MODE_32)
        self._md.detail = True
        self.insns: dict[int, Insn] = {}
        self.blocks: dict[int, Block] = {}
        self._block_in: dict[int, RegState] = {}  # fixpoint state at each block entry
        self._block_of: dict[int, int] = {}  # instruction address -> its block's leader
        # Every instruction takes a byte at least: a range of up to WHOLE_LIMIT bytes needs no size test (the light
        # decoding is for the few functions that might be too big: it would otherwise cost every function twice).
        self.lite: LiteCode | None = lite
        if lite is None and self.end - start > WHOLE_LIMIT:
            self.lite = self._decode_lite()
        self.partial = self.lite is not None and len(self.lite.insns) > WHOLE_LIMIT  # solved for `focus`'s blocks
        self.cone_of: int | None = None  # the leader of the block the cone was built for
        self._entry_lead: int | None = None
        if not self.partial:
            self._decode()
            self._build_blocks()
        else:
            self._build_cone(focus, also)
        self._solve()

    # ---- decoding and CFG -------------------------------------------------------------------------------------
    def _decode(self) -> None:
        region = self.memory.region_of(self.start)
        if region is None:
            self.incomplete.append(f"{self.start:#x} is not mapped")
            return
        end = min(self.end, region.end)
        code = self.memory.read(self.start, end - self.start) or b""
        addr = self.start
        window = DECODE_WINDOW
        while addr < end:
            self.deadline.check(self.name)
            # A bounded window: re-slicing the whole rest after every undecodable byte was quadratic on garbage.
            off = addr - self.start
            before = addr
            for ci in self._md.disasm(code[off : off + window], addr):
                self.insns[ci.address] = Insn(ci.address, ci.size, ci.mnemonic, ci.op_str, ci, tuple(ci.operands))
                addr = ci.address + ci.size
            if addr == before:
                addr += 1  # undecodable byte: resynchronise on the next one, with a small window while in garbage
                window = 16
            else:
                window = DECODE_WINDOW

    def _decode_lite(self) -> LiteCode:
        """The whole range without operand details: the control flow, and whether the bounds look like code."""
        lite = LiteCode({})
        region = self.memory.region_of(self.start)
        if region is None:
            return lite
        end = min(self.end, region.end)
        code = self.memory.read(self.start, end - self.start) or b""
        md = decoder(self.bits)
        addr, window = self.start, DECODE_WINDOW
        while addr < end:
            self.deadline.check(self.name)
            off, before = addr - self.start, addr
            for a, size, m, op in md.disasm_lite(code[off : off + window], addr):
                lite.insns[a] = (size, m, op)
                addr = a + size
                if m == "add" and op in ("byte ptr [rax], al", "byte ptr [eax], al"):
                    lite.zero_adds += 1
            if addr == before:
                addr += 1
                lite.undecodable += 1
                window = 16
            else:
                window = DECODE_WINDOW
        return lite

    def _build_cone(self, focus: int | None, also: tuple[int, ...] = ()) -> None:
        """Blocks from the lightly decoded code, then only those that can reach `focus`, decoded with details; and
        those that reach the other instructions in `also` (the function's other sites) while the bound allows, so
        that one solve answers them all.

        Exact for `focus`: every path from the entry to it runs through its cone, and every predecessor of a block
        in the cone is in the cone, so the states there are the whole function's (a union of cones too)."""
        lite = self.lite
        if lite.cfg is None:
            self.insns = {a: Insn(a, size, m, op, None) for a, (size, m, op) in lite.insns.items()}
            self._build_blocks()
            preds: dict[int, list[int]] = {}
            for b in self.blocks.values():
                for t in b.succs:
                    preds.setdefault(t, []).append(b.start)
            entry = self.start if self.start in self.blocks else (min(self.blocks) if self.blocks else None)
            lite.cfg = (self.blocks, self._block_of, entry, preds)
        full, block_of, self._entry_lead, preds = lite.cfg
        lead = block_of.get(focus) if focus is not None else None
        if lead is None:
            raise AnalysisBound(self._bound_text(f"no instruction at {focus:#x} in it" if focus is not None else
                                                 "no instruction to focus on"))
        cone, count = self._cone({lead}, 0, full, preds)
        if cone is None:
            raise AnalysisBound(self._bound_text(f"more than {CONE_LIMIT} of them can reach {focus:#x}"))
        for a in also:
            extra = block_of.get(a)
            if extra is not None and extra not in cone:
                grown, n = self._cone(cone | {extra}, count, full, preds, extra)
                if grown is not None:
                    cone, count = grown, n
        md = self._md
        if len(lite.detailed) > 2 * CONE_LIMIT:  # many cones of one function: keep memory to about two of them
            lite.detailed.clear()
        blocks: dict[int, Block] = {}
        for b in sorted(cone):
            blk = full[b]
            last = blk.insns[-1]
            insns = [lite.detailed.get(i.address) for i in blk.insns]
            if any(x is None for x in insns):
                code = self.memory.read(blk.start, last.address + last.size - blk.start) or b""
                for ci in md.disasm(code, blk.start):
                    lite.detailed[ci.address] = Insn(ci.address, ci.size, ci.mnemonic, ci.op_str, ci,
                                                     tuple(ci.operands))
                insns = [lite.detailed.get(i.address) for i in blk.insns]
            if any(x is None for x in insns):
                raise AnalysisBound(self._bound_text(f"block {b:#x} decodes differently with details"))
            blocks[b] = Block(b, insns, [t for t in blk.succs if t in cone])
        self.blocks = blocks
        self.insns = {i.address: i for blk in blocks.values() for i in blk.insns}
        self._block_of = {a: b.start for b in blocks.values() for a in (i.address for i in b.insns)}
        self.cone_of = lead
        self.incomplete.append(f"{len(lite.insns)} instructions: solved only the {count} that reach {focus:#x}"
                               + (" and its other sites" if len(also) > 1 else "") + self._garbage_text())

    @staticmethod
    def _cone(cone: set[int], count: int, full: dict, preds: dict, start: int | None = None):
        """Grow `cone` (holding `count` instructions) backwards from `start` (default: all of it): the grown set
        and its size, or (None, 0) past CONE_LIMIT."""
        cone = set(cone)
        work = [start] if start is not None else list(cone)
        while work:
            b = work.pop()
            count += len(full[b].insns)
            if count > CONE_LIMIT:
                return None, 0
            for p in preds.get(b, ()):
                if p not in cone:
                    cone.add(p)
                    work.append(p)
        return cone, count

    def _garbage_text(self) -> str:
        lite = self.lite
        if lite.zero_adds * 8 > len(lite.insns) or lite.undecodable > 64:
            return (f" (its bounds may be wrong, or data lies in it: {lite.zero_adds} `add %al,(%rax)` from zero "
                    f"bytes, {lite.undecodable} undecodable bytes)")
        return ""

    def _bound_text(self, why: str) -> str:
        return f"analysis bound reached: {self.name} has {len(self.lite.insns)} instructions and {why}" + \
            self._garbage_text()

    def _build_blocks(self) -> None:
        if not self.insns:
            return
        leaders = {self.start} if self.start in self.insns else {min(self.insns)}
        order = sorted(self.insns)
        branch_targets: dict[int, list[int]] = {}
        for i, a in enumerate(order):
            ins = self.insns[a]
            kind = self._flow_kind(ins)
            if kind == "seq":
                continue
            nxt = order[i + 1] if i + 1 < len(order) else None
            targets = []
            if kind in ("jmp", "jcc"):
                t = self._direct_target(ins)
                if t is not None and t in self.insns:
                    targets.append(t)
                    leaders.add(t)
            if kind == "call" and self._calls_noreturn(ins):
                kind = "end"
            if kind in ("jcc", "call") and nxt is not None and nxt == a + ins.size:
                targets.append(nxt)
            if nxt is not None:
                leaders.add(nxt)
            branch_targets[a] = targets
        leader_list = sorted(leaders)
        for j, lead in enumerate(leader_list):
            limit = leader_list[j + 1] if j + 1 < len(leader_list) else None
            insns: list[Insn] = []
            a = lead
            while a in self.insns and (limit is None or a < limit):
                insns.append(self.insns[a])
                a += self.insns[a].size
            if not insns:
                continue
            for i in insns:
                self._block_of[i.address] = lead
            last = insns[-1]
            if last.address in branch_targets:
                succs = branch_targets[last.address]
            else:
                nxt = last.address + last.size
                succs = [nxt] if nxt in self.insns else []
            self.blocks[lead] = Block(lead, insns, succs)

    @staticmethod
    def _flow_kind(ins: Insn) -> str:
        m = ins.mnemonic
        if m in ("ret", "retf", "iret", "iretd", "iretq", "hlt", "ud2", "sysret", "sysretq", "sysexit", "int3"):
            return "end"
        if m == "jmp" or m == "ljmp":
            return "jmp"
        if m.startswith("j") or m.startswith("loop") or m in ("jrcxz", "jecxz"):
            return "jcc"
        if m == "call" or m == "lcall":
            return "call"
        return "seq"

    def _calls_noreturn(self, ins: Insn) -> bool:
        t = self._direct_target(ins)
        return t is not None and self.noreturn(t)

    def _direct_target(self, ins: Insn) -> int | None:
        if ins.raw is None:  # decoded without details (a big function's control flow): the text is the target
            try:
                return int(ins.op_str, 16) & self.mask
            except ValueError:
                return None
        ops = ins.ops
        if len(ops) == 1 and ops[0].type == X.X86_OP_IMM:
            return ops[0].imm & self.mask  # capstone gives a signed immediate: kernel addresses come out negative
        return None

    # ---- solving ----------------------------------------------------------------------------------------------
    def _entry_state(self) -> RegState:
        regs: dict[str, Vals] = {r: frozenset((EntryReg(r),)) for r in GPRS}
        regs["rsp"] = frozenset((StackPtr(0),))
        return RegState(regs, {})

    def _orphan_state(self, lead: int) -> RegState:
        why = frozenset((Unknown(f"block {lead:#x} of {self.name} is reached only by an indirect jump"),))
        regs = {r: why for r in GPRS}
        return RegState(regs, {})

    def _solve(self) -> None:
        if not self.blocks:
            return
        preds: dict[int, int] = {b: 0 for b in self.blocks}
        for b in self.blocks.values():
            for s in b.succs:
                if s in preds:
                    preds[s] += 1
        entry = self.start if self.start in self.blocks else min(self.blocks)
        if self.partial:  # the whole function's entry, which the cone may not hold
            entry = self._entry_lead
        # Phase 1: everything reachable from the entry. Phase 2: blocks our CFG cannot reach (jump-table targets)
        # start from "unknown", and may only flow into other unreached blocks, so they never dilute known values.
        reached = self._propagate({entry: self._entry_state()}, None) if entry in self.blocks else set()
        for lead in sorted(self.blocks):
            if lead in reached or preds[lead] or self._is_padding(self.blocks[lead]):
                continue
            reached |= self._propagate({lead: self._orphan_state(lead)}, reached)

    @staticmethod
    def _is_padding(block: Block) -> bool:
        return all(i.mnemonic in ("nop", "int3", "endbr64", "endbr32") or i.mnemonic.startswith("nop")
                   or (i.mnemonic == "xchg" and i.op_str in ("ax, ax", "eax, eax")) for i in block.insns)

    def _propagate(self, seeds: dict[int, RegState], frozen: set[int] | None) -> set[int]:
        """Worklist to a fixpoint from the seeds; never enters blocks in `frozen`. Returns blocks visited.

        Blocks are taken lowest address first (a heap), which is close to reverse post-order for compiled code."""
        in_state = self._block_in
        in_state.update(seeds)
        work = sorted(seeds)
        queued = set(work)
        visits: dict[int, int] = {}
        while work:
            lead = heapq.heappop(work)
            queued.discard(lead)
            visits[lead] = visits.get(lead, 0) + 1
            self.deadline.check(self.name)
            if visits[lead] > MAX_BLOCK_VISITS:
                self.incomplete.append(f"block {lead:#x} did not converge")
                continue
            state = in_state[lead].copy()
            block = self.blocks[lead]
            for ins in block.insns:
                self._step(state, ins)
            for s in block.succs:
                if s not in self.blocks or (frozen is not None and s in frozen):
                    continue
                old = in_state.get(s)
                if old is None:
                    in_state[s] = state.copy()
                elif not old.merge(state, _WIDENED if visits.get(s, 0) >= WIDEN_AFTER else None):
                    continue
                if s not in queued:
                    heapq.heappush(work, s)
                    queued.add(s)
        return set(visits)

    def state_before(self, addr: int) -> RegState | None:
        """Registers just before the instruction at addr, or None if it is not an instruction reached here.

        Only block-entry states are stored; the block is replayed up to addr (cheap, and memory stays small)."""
        lead = self._block_of.get(addr)
        if lead is None or lead not in self._block_in:
            return None
        state = self._block_in[lead].copy()
        for ins in self.blocks[lead].insns:
            if ins.address == addr:
                return state
            self._step(state, ins)
        return None

    # ---- transfer function ------------------------------------------------------------------------------------
    def _unk(self, ins: Insn, what: str) -> Vals:
        return frozenset((Unknown(f"{what} at {ins.address:#x}"),))

    def _read_reg(self, state: RegState, name: str) -> Vals:
        fam, width, shift = REGS[name]
        v = state.regs[fam]
        if width >= self.bits and shift == 0:
            return v
        m = (1 << width) - 1
        out = set()
        for a in v:
            if isinstance(a, int):
                out.add((a >> shift) & m)
            elif isinstance(a, Unknown):
                out.add(a)
            else:
                out.add(Unknown(f"part of {describe(a, self.name, self.bits)}"))
        return frozenset(out)

    def _write_reg(self, state: RegState, name: str, v: Vals) -> None:
        fam, width, shift = REGS[name]
        if width >= 32 and shift == 0:
            if width == 32 and self.bits == 64:
                v = self._mask(v, 0xFFFFFFFF, "zero-extended")
            state.regs[fam] = v
            return
        m = ((1 << width) - 1) << shift
        old = state.regs[fam]
        out = set()
        for o in old:
            for n in v:
                if isinstance(o, int) and isinstance(n, int):
                    out.add((o & ~m & self.mask) | ((n << shift) & m))
                else:
                    out.add(Unknown(f"partly written register {name}"))
                if len(out) > 32:
                    state.regs[fam] = frozenset((TOO_MANY,))
                    return
        state.regs[fam] = frozenset(out)

    def _mask(self, v: Vals, m: int, why: str) -> Vals:
        if all(isinstance(a, int) for a in v):
            return frozenset(a & m for a in v)
        out = set()
        for a in v:
            if isinstance(a, int):
                out.add(a & m)
            elif isinstance(a, (Unknown,)):
                out.add(a)
            elif isinstance(a, EntryReg):
                out.add(a)  # a 32-bit move of a parameter is still that parameter for our purposes
            else:
                out.add(Unknown(f"{why} {describe(a, self.name, self.bits)}"))
        return frozenset(out)

    def _mem_address(self, state: RegState, ins: Insn, mem) -> tuple[str, Vals]:
        """Classify a memory operand: ('stack', {StackPtr}) / ('abs', {ints}) / ('other', reason)."""
        md = self._md
        if mem.segment != 0:
            seg = md.reg_name(mem.segment)
            if seg in ("fs", "gs"):
                return "tls", frozenset((Unknown(f"loaded from thread-local storage ({seg}:) at {ins.address:#x}"),))
        base = md.reg_name(mem.base) if mem.base else None
        # riz/eiz: Capstone's name for a SIB byte without an index register (`mov [rdx+riz], eax`): no index
        index = md.reg_name(mem.index) if mem.index not in (X.X86_REG_INVALID, X.X86_REG_RIZ, X.X86_REG_EIZ) else None
        if base in ("rip", "eip"):
            return "abs", frozenset(((ins.address + ins.size + mem.disp) & self.mask,))
        parts: Vals = frozenset((mem.disp & self.mask,))
        for reg, scale in ((base, 1), (index, mem.scale)):
            if reg is None:
                continue
            rv = self._read_reg(state, reg)
            parts = self._combine(parts, rv, lambda a, b, s=scale: a + b * s, ins, "address")
        if all(isinstance(a, StackPtr) for a in parts):
            return "stack", parts
        if all(isinstance(a, int) for a in parts):
            return "abs", parts
        return "other", parts

    def _load(self, state: RegState, ins: Insn, mem, size: int) -> Vals:
        kind, addrs = self._mem_address(state, ins, mem)
        if kind == "tls":
            return addrs
        if kind == "stack":
            out: Vals = frozenset()
            for a in addrs:
                out = union(out, self._load_stack(state, a.offset, size))
            return out
        if kind == "abs":
            out = frozenset()
            for a in addrs:
                out = union(out, self._load_abs(a, size, ins))
            return out
        sym = symbolic(addrs)  # sorted: the first one names the reason, the same in every run
        here = f"loaded at {ins.address:#x} through a pointer"
        for x in sym:
            if isinstance(x, Unknown) and x.reason.startswith(here):
                return frozenset((x,))  # a pointer chased round a loop (p = p->next): one reason, not a growing chain
        what = describe(sym[0], self.name, self.bits) if sym else "computed"
        if what.startswith("computed "):
            what = what[len("computed "):]
        return frozenset((Unknown(f"loaded at {ins.address:#x} through a pointer {what}"),))

    def _load_abs(self, addr: int, size: int, ins: Insn) -> Vals:
        label = self.symbolize(addr)
        where = f"{addr:#x}" + (f" ({label})" if label else "")
        if self.memory.region_of(addr) is None:
            return frozenset((Unknown(f"loaded from unmapped address {where}"),))
        if not self.memory.is_readonly(addr):
            return frozenset((Unknown(f"loaded from writable memory at {where}"),))
        v = self.memory.read_uint(addr, size)
        if v is None:
            return frozenset((Unknown(f"loaded from {where} past the end of its segment"),))
        return frozenset((v,))

    def _load_stack(self, state: RegState, off: int, size: int) -> Vals:
        slot = state.stack.get(off)
        if slot is not None:
            w, v = slot
            if w == size:
                return v
            if w > size:
                return self._mask(v, (1 << (size * 8)) - 1, "part of")
            return frozenset((Unknown("wider read of a narrower stack slot"),))
        if off >= 0:
            if size * 8 >= self.bits or size == 4 and self.bits == 64:
                return frozenset((EntryStack(off),))
        return frozenset((Unknown("read of an uninitialised stack slot"),))

    def _store(self, state: RegState, ins: Insn, mem, v: Vals, size: int) -> None:
        kind, addrs = self._mem_address(state, ins, mem)
        if kind != "stack":
            return  # writes outside the frame: assume they do not alias the frame
        if len(addrs) == 1:
            (a,) = addrs
            state.stack[a.offset] = (size, v)
            for other in [o for o in state.stack if o != a.offset and a.offset - 8 < o < a.offset + size]:
                del state.stack[other]
        else:
            for a in addrs:
                state.stack.pop(a.offset, None)

    def _combine(self, a: Vals, b: Vals, fn, ins: Insn, what: str) -> Vals:
        out = set()
        for x in a:
            for y in b:
                if isinstance(x, int) and isinstance(y, int):
                    out.add(fn(x, y) & self.mask)
                elif isinstance(x, StackPtr) and isinstance(y, int) and what in ("address", "add"):
                    out.add(StackPtr(self._signed(fn(x.offset, y))))
                elif isinstance(y, StackPtr) and isinstance(x, int) and what in ("address", "add"):
                    out.add(StackPtr(self._signed(fn(x, y.offset))))
                elif isinstance(x, StackPtr) and isinstance(y, int) and what == "sub":
                    out.add(StackPtr(self._signed(fn(x.offset, y))))
                else:
                    sym = x if not isinstance(x, int) else y
                    if isinstance(sym, Unknown):
                        out.add(sym)
                    else:
                        d = describe(sym, self.name, self.bits)
                        out.add(Unknown(f"computed {d}" if d.startswith("from ") else f"computed from {d}"))
                if len(out) > 32:
                    return frozenset((TOO_MANY,))
        return frozenset(out)

    def _signed(self, v: int) -> int:
        v &= self.mask
        return v - (1 << self.bits) if v >> (self.bits - 1) else v

    def _operand(self, state: RegState, ins: Insn, op) -> Vals:
        if op.type == X.X86_OP_IMM:
            return frozenset((op.imm & self.mask,))
        if op.type == X.X86_OP_REG:
            return self._read_reg(state, self._md.reg_name(op.reg))
        if op.type == X.X86_OP_MEM:
            return self._load(state, ins, op.mem, op.size)
        return self._unk(ins, "unsupported operand")

    def _set(self, state: RegState, ins: Insn, op, v: Vals) -> None:
        if op.type == X.X86_OP_REG:
            name = self._md.reg_name(op.reg)
            if name in REGS:
                self._write_reg(state, name, v)
        elif op.type == X.X86_OP_MEM:
            self._store(state, ins, op.mem, v, op.size)

    def _clobber_written(self, state: RegState, ins: Insn) -> None:
        try:
            _, written = ins.raw.regs_access()
        except capstone.CsError:
            written = []
        for r in written:
            name = self._md.reg_name(r)
            if name in REGS:
                fam = REGS[name][0]
                state.regs[fam] = self._unk(ins, f"computed by {ins.mnemonic}")
        ops = ins.ops
        if ops and ops[0].type == X.X86_OP_MEM and ops[0].access & capstone.CS_AC_WRITE:
            self._store(state, ins, ops[0].mem, self._unk(ins, f"computed by {ins.mnemonic}"), ops[0].size)

    _BINOPS = {
        "add": lambda a, b: a + b,
        "sub": lambda a, b: a - b,
        "and": lambda a, b: a & b,
        "or": lambda a, b: a | b,
        "xor": lambda a, b: a ^ b,
        "imul": lambda a, b: a * b,
    }

    def _step(self, state: RegState, ins: Insn) -> None:
        m = ins.mnemonic
        ops = ins.ops
        sp_w = self.bits // 8
        try:
            if m in ("mov", "movabs") and len(ops) == 2:
                self._set(state, ins, ops[0], self._operand(state, ins, ops[1]))
            elif m in ("movzx",) and len(ops) == 2:
                self._set(state, ins, ops[0], self._operand(state, ins, ops[1]))
                if ops[0].type == X.X86_OP_REG and REGS[self._md.reg_name(ops[0].reg)][1] == 16:
                    pass
            elif m in ("movsx", "movsxd") and len(ops) == 2:
                v = self._operand(state, ins, ops[1])
                bits = ops[1].size * 8
                self._set(state, ins, ops[0], self._sign_extend(v, bits, ops[0].size * 8))
            elif m in ("cdqe", "cltq"):
                self._write_reg(state, "rax", self._sign_extend(self._read_reg(state, "eax"), 32, 64))
            elif m == "lea" and len(ops) == 2:
                kind, addrs = self._mem_address(state, ins, ops[1].mem)
                if kind == "tls":
                    addrs = self._unk(ins, "a thread-local address")
                self._set(state, ins, ops[0], addrs)
            elif m in ("xor", "sub") and len(ops) == 2 and ops[0].type == X.X86_OP_REG and ops[1].type == X.X86_OP_REG \
                    and ops[0].reg == ops[1].reg:
                self._set(state, ins, ops[0], frozenset((0,)))
            elif m in ("sbb",) and len(ops) == 2 and ops[0].type == X.X86_OP_REG and ops[1].type == X.X86_OP_REG \
                    and ops[0].reg == ops[1].reg:
                width = ops[0].size * 8
                self._set(state, ins, ops[0], frozenset((0, (1 << width) - 1)))
            elif m == "and" and self._realign(state, ops):
                pass
            elif m in self._BINOPS and len(ops) == 2:
                a = self._operand(state, ins, ops[0])
                b = self._operand(state, ins, ops[1])
                width = ops[0].size * 8
                fn = self._BINOPS[m]
                r = self._combine(a, b, lambda x, y: fn(x, y) & ((1 << width) - 1), ins, m)
                self._set(state, ins, ops[0], r)
            elif m == "imul" and len(ops) == 3:
                b = self._operand(state, ins, ops[1])
                c = self._operand(state, ins, ops[2])
                width = ops[0].size * 8
                self._set(state, ins, ops[0], self._combine(b, c, lambda x, y: (x * y) & ((1 << width) - 1), ins, "imul"))
            elif m in ("shl", "sal", "shr", "sar", "rol", "ror") and len(ops) in (1, 2):
                a = self._operand(state, ins, ops[0])
                b = self._operand(state, ins, ops[1]) if len(ops) == 2 else frozenset((1,))
                width = ops[0].size * 8
                self._set(state, ins, ops[0], self._combine(a, b, lambda x, y: self._shift(m, x, y, width), ins, m))
            elif m in ("inc", "dec", "neg", "not") and len(ops) == 1:
                a = self._operand(state, ins, ops[0])
                width = ops[0].size * 8
                wm = (1 << width) - 1
                fn = {"inc": lambda x, _: x + 1, "dec": lambda x, _: x - 1,
                      "neg": lambda x, _: -x, "not": lambda x, _: ~x}[m]
                self._set(state, ins, ops[0], self._combine(a, frozenset((0,)), lambda x, y: fn(x, y) & wm, ins, m))
            elif m == "xchg" and len(ops) == 2:
                a = self._operand(state, ins, ops[0])
                b = self._operand(state, ins, ops[1])
                self._set(state, ins, ops[0], b)
                self._set(state, ins, ops[1], a)
            elif m.startswith("cmov") and len(ops) == 2:
                a = self._operand(state, ins, ops[0])
                b = self._operand(state, ins, ops[1])
                self._set(state, ins, ops[0], union(a, b))
            elif m.startswith("set") and len(ops) == 1:
                self._set(state, ins, ops[0], frozenset((0, 1)))
            elif m == "push" and len(ops) == 1:
                v = self._operand(state, ins, ops[0])
                self._adjust_sp(state, -sp_w, ins)
                self._push_slot(state, v, sp_w)
            elif m == "pop" and len(ops) == 1:
                v = self._pop_slot(state, sp_w)
                self._adjust_sp(state, sp_w, ins)
                self._set(state, ins, ops[0], v)
            elif m == "leave":
                rbp = state.regs["rbp"]
                state.regs["rsp"] = rbp
                v = self._pop_slot(state, sp_w)
                self._adjust_sp(state, sp_w, ins)
                state.regs["rbp"] = v
            elif m == "call":
                self._call(state, ins)
            elif m == "syscall":
                state.regs["rax"] = self._unk(ins, "return value of the syscall")
                state.regs["rcx"] = self._unk(ins, "rcx clobbered by syscall")
                state.regs["r11"] = self._unk(ins, "r11 clobbered by syscall")
            elif m in ("sysenter", "int"):
                state.regs["rax"] = self._unk(ins, "return value of the syscall")
            elif m in ("nop", "endbr64", "endbr32", "test", "cmp", "bt", "jmp", "ret", "pause", "lfence", "mfence",
                       "sfence", "int3", "hlt", "ud2", "prefetcht0", "prefetchnta", "clc", "stc", "cld", "std") \
                    or m.startswith("j") or m.startswith("ucomis") or m.startswith("comis"):
                pass
            else:
                self._clobber_written(state, ins)
        except (KeyError, capstone.CsError) as e:  # an operand form we do not model: be honest, not wrong
            self._clobber_written(state, ins)
            self.incomplete.append(f"{ins.address:#x} {m}: {type(e).__name__}")

    @staticmethod
    def _shift(m: str, x: int, y: int, width: int) -> int:
        wm = (1 << width) - 1
        y &= 0x3F if width == 64 else 0x1F
        x &= wm
        if m in ("shl", "sal"):
            return (x << y) & wm
        if m == "shr":
            return x >> y
        if m == "sar":
            sx = x - (1 << width) if x >> (width - 1) else x
            return (sx >> y) & wm
        if m == "rol":
            return ((x << y) | (x >> (width - y))) & wm if y else x
        return ((x >> y) | (x << (width - y))) & wm if y else x

    def _sign_extend(self, v: Vals, from_bits: int, to_bits: int) -> Vals:
        out = set()
        for a in v:
            if isinstance(a, int):
                a &= (1 << from_bits) - 1
                if a >> (from_bits - 1):
                    a -= 1 << from_bits
                out.add(a & ((1 << to_bits) - 1))
            else:
                out.add(a)
        return frozenset(out)

    def _realign(self, state: RegState, ops) -> bool:
        """`and $-2**k, %rsp` on a known stack pointer: a new frame below it (REALIGN_GAP)."""
        if len(ops) != 2 or ops[0].type != X.X86_OP_REG or ops[1].type != X.X86_OP_IMM:
            return False
        if REGS.get(self._md.reg_name(ops[0].reg), ("",))[0] != "rsp" or ops[0].size * 8 != self.bits:
            return False
        align = -ops[1].imm & self.mask
        sp = state.regs.get("rsp", frozenset())
        if not (0 < align <= 4096 and align & (align - 1) == 0 and len(sp) == 1):
            return False
        (a,) = sp
        if not isinstance(a, StackPtr):
            return False
        state.regs["rsp"] = frozenset((StackPtr(a.offset - REALIGN_GAP),))
        return True

    def _adjust_sp(self, state: RegState, delta: int, ins: Insn) -> None:
        state.regs["rsp"] = self._combine(state.regs["rsp"], frozenset((delta & self.mask,)), lambda a, b: a + b,
                                          ins, "add")

    def _push_slot(self, state: RegState, v: Vals, size: int) -> None:
        sp = state.regs["rsp"]
        if len(sp) == 1:
            (a,) = sp
            if isinstance(a, StackPtr):
                state.stack[a.offset] = (size, v)

    def _pop_slot(self, state: RegState, size: int) -> Vals:
        sp = state.regs["rsp"]
        if len(sp) == 1:
            (a,) = sp
            if isinstance(a, StackPtr):
                return self._load_stack(state, a.offset, size)
        return frozenset((Unknown("popped from an untracked stack"),))

    _THUNK_MODRM = {0x04: "rax", 0x0C: "rcx", 0x14: "rdx", 0x1C: "rbx", 0x2C: "rbp", 0x34: "rsi", 0x3C: "rdi"}

    def _pc_thunk_register(self, target: int | None) -> str | None:
        """If target is `mov (%esp),%reg; ret` (i386 PIC thunk), the register it loads."""
        if target is None or self.bits != 32:
            return None
        code = self.memory.read(target, 4)
        if code and code[0] == 0x8B and code[2] == 0x24 and code[3] == 0xC3:
            return self._THUNK_MODRM.get(code[1])
        return None

    def _call(self, state: RegState, ins: Insn) -> None:
        target = self._direct_target(ins)
        ret_addr = ins.address + ins.size
        if target == ret_addr:  # `call 1f; 1: pop %reg`: position-independent code reading its own address
            self._adjust_sp(state, -(self.bits // 8), ins)
            self._push_slot(state, frozenset((ret_addr,)), self.bits // 8)
            return
        thunk_reg = self._pc_thunk_register(target)
        if thunk_reg is not None:  # __x86.get_pc_thunk.REG: REG = the return address, nothing else changes
            state.regs[thunk_reg] = frozenset((ret_addr & self.mask,))
            return
        label = self.symbolize(target) if target is not None else None
        if self.bits == 32 and (label == "__kernel_vsyscall" or ins.op_str in VDSO_CALL_OPERANDS):
            # the vDSO entry is a syscall: it keeps every register but eax (the result)
            state.regs["rax"] = frozenset((Unknown(f"return value of the syscall at {ins.address:#x}"),))
            return
        callee = label or (f"{target:#x}" if target is not None else "an indirect target")
        clobbered = self.call_effect(target) if self.call_effect else None
        if clobbered is None:
            clobbered = CALLER_SAVED_64 if self.bits == 64 else CALLER_SAVED_32
        for r in clobbered:
            if r == "rax":
                state.regs[r] = frozenset((Unknown(f"return value of {callee} (call at {ins.address:#x})"),))
            else:
                state.regs[r] = frozenset((Unknown(f"{r} clobbered by the call to {callee} at {ins.address:#x}"),))
        # The callee may write anywhere in our frame through pointers we passed; keep slots (compilers rely on it).


@dataclass(frozen=True)
class ValueSummary:
    """A register's value at a site, ready for the report: constants, status, and the reason when not resolved."""

    constants: tuple[int, ...]
    reasons: tuple[str, ...]
    inputs: tuple[object, ...]
    """The symbolic atoms that name the function's inputs (EntryReg/EntryStack): what callers can resolve."""

    @property
    def status(self) -> str:
        if self.reasons:
            return "partial" if self.constants else "unresolved"
        return "resolved"


def summarize(v: Vals, function: str, bits: int, mask: int | None = None) -> ValueSummary:
    consts = constants(v)
    if mask is not None:
        consts = sorted({c & mask for c in consts})
    syms = symbolic(v)
    reasons = tuple(dict.fromkeys(describe(a, function, bits) for a in syms))
    inputs = tuple(a for a in syms if isinstance(a, (EntryReg, EntryStack)))
    return ValueSummary(tuple(consts), reasons, inputs)
