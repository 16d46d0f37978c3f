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

import copy
from dataclasses import dataclass


from ..budget import BudgetExceeded
from ..program.calls import call_index
from .atoms import EntryReg, EntryStack, StackPtr, Unknown, Vals, describe
from .local import CALLER_SAVED_32, CALLER_SAVED_64, GPRS, AnalysisBound, FunctionDataflow, RegState

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


class CallerIndex:
    """The program model's call candidates (program.calls.CallIndex) confirmed: a call counts only if the caller's
    decoding has exactly that instruction there and reaches it; the caller's flow and state at the call come with
    it."""

    def __init__(self, lb, engine) -> None:
        self.calls = call_index(lb)
        self.finder = self.calls.finder
        self.engine = engine
        self.failures: dict[int, list[str]] = {}
        """target -> calls whose caller could not be analysed (its data flow raised): callers() skips them, and
        whoever unions the callers' values must say the union may be incomplete."""
        self._confirmed: dict[int, list[CallSite]] = {}
        self.examined = 0

    def callers(self, target: int) -> list[CallSite]:
        """Confirmed direct callers of the function starting at target, sorted by address."""
        got = self._confirmed.get(target)
        if got is not None:
            return got
        out: list[CallSite] = []
        for at, kind, size in self.calls.candidates(target):
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
        try:
            fd = self.engine.flow(f.start, f.end, f.name, at)
        except AnalysisBound:
            return None  # a caller too big to follow to this call: the value stays unknown there
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
        return self.calls.address_taken(target)


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
