"""angr where the local engine gives up: symbolic execution of one function up to one site.

Used only for a syscall number that is still not resolved after local data flow and the callers (and is not simply
a parameter — callers handle those): a load through a computed pointer (a bounded index into a read-only table, a
variable index into an array on the stack), a value computed by a loop, an instruction the local engine does not
model. angr is imported on first use only; a scan that never needs it never loads it.

Scope and soundness:

* One function: a blank state at the function's entry, every register and unknown memory symbolic, calls not
  followed (`CALLLESS`: the return value is unconstrained, as in the local engine), run with a step and state
  budget and a hard per-function time limit (`limits.function_budget`). Every path that reaches the site is
  stopped there and the number register is evaluated (`eval_upto`, at most MAX_VALUES values).
* Reads from writable memory give a fresh symbol, not the file's initial contents (a global may change at run
  time); a read through an address that can take many values gives a fresh symbol too, so a pointer parameter
  is never concretised to some arbitrary address.
* `resolved` only when exploration finished: no path left running, none errored, none dropped. Otherwise the
  values found are `partial`, with the reason.
* Any exception inside angr is contained to the function: the site keeps its local result plus the reason.
"""
from __future__ import annotations

import logging
import sys
import time

from ..budget import BudgetExceeded, function_budget

MAX_VALUES = 32
MAX_STEPS = 400
MAX_ACTIVE = 64
FUNCTION_SECONDS = 5.0
MAX_FUNCTIONS = 24
TOTAL_SECONDS = 30.0
"""angr's budget per binary: a binary whose functions are all guesses must not cost minutes of angr."""
QUIET = ("angr", "cle", "pyvex", "claripy", "archinfo", "ailment")


class AngrFallback:
    def __init__(self, lb, deadline=None, seconds: float = FUNCTION_SECONDS) -> None:
        self.lb = lb
        self.deadline = deadline
        self.seconds = seconds
        self._project = None
        self._failed: str | None = None
        self.stats = {"functions": 0, "resolved": 0, "partial": 0, "failed": 0, "seconds": 0.0}
        self._memo: dict[tuple[int, int, str], tuple[tuple[int, ...], bool, str | None]] = {}
        self._stop_at = 0.0

    def _load(self):
        if self._project is None and self._failed is None:
            for name in QUIET:
                logging.getLogger(name).setLevel(logging.CRITICAL)
            try:
                import angr

                # Addresses in the report are link-time addresses: load at the same base (0 for PIE and .so).
                base = min((r.start for r in self.lb.memory.regions), default=0) & ~0xFFF
                self._project = angr.Project(self.lb.path, auto_load_libs=False,
                                             main_opts={"base_addr": base} if self.lb.elf_type in
                                             ("pie", "shared-object") else {})
            except Exception as e:  # noqa: BLE001 - angr/CLE failures are contained
                self._failed = f"angr could not load the binary: {type(e).__name__}: {str(e)[:120]}"
        return self._project

    def number_at(self, fstart: int, site: int, reg: str) -> tuple[tuple[int, ...], bool, str | None]:
        """(values, complete, reason): what `reg` can hold when the site executes, per angr."""
        key = (fstart, site, reg)
        if key not in self._memo:
            self._memo[key] = self._number_at(fstart, site, reg)
        return self._memo[key]

    def _number_at(self, fstart: int, site: int, reg: str):
        if self.stats["functions"] >= MAX_FUNCTIONS or self.stats["seconds"] >= TOTAL_SECONDS:
            return (), False, (f"angr not tried: its budget for this binary ({MAX_FUNCTIONS} functions, "
                               f"{TOTAL_SECONDS:g}s) is spent")
        proj = self._load()
        if proj is None:
            return (), False, self._failed
        self.stats["functions"] += 1
        t0 = time.monotonic()
        self._stop_at = t0 + self.seconds
        old_hook = sys.unraisablehook
        sys.unraisablehook = _quiet_budget(old_hook)  # the alarm may fire inside a destructor (z3's __del__)
        try:
            with function_budget(self.deadline, self.seconds):
                out = self._explore(proj, fstart, site, reg)
        except BudgetExceeded:
            out = (), False, f"angr: time budget of {self.seconds:g}s exhausted"
        except Exception as e:  # noqa: BLE001 - contained to this function
            out = (), False, f"angr failed: {type(e).__name__}: {str(e)[:160]}"
        finally:
            sys.unraisablehook = old_hook
        self.stats["seconds"] += time.monotonic() - t0
        vals, complete, _why = out
        if vals:
            self.stats["resolved" if complete else "partial"] += 1
        else:
            self.stats["failed"] += 1
        return out

    def _explore(self, proj, fstart: int, site: int, reg: str):
        import angr
        import claripy

        lb = self.lb
        writable = [(r.start, r.end) for r in lb.memory.regions if r.writable]
        opts = {angr.options.CALLLESS, angr.options.SYMBOL_FILL_UNCONSTRAINED_MEMORY,
                angr.options.SYMBOL_FILL_UNCONSTRAINED_REGISTERS}
        state = proj.factory.blank_state(addr=fstart, add_options=opts,
                                         remove_options={angr.options.SIMPLIFY_MEMORY_WRITES})
        counter = [0]

        def guard(st):
            """Reads of writable memory, or through an address with many values, are unknown (a fresh symbol)."""
            addr = st.inspect.mem_read_address
            size = st.inspect.mem_read_length
            if addr is None or size is None:
                return
            try:
                n = size if isinstance(size, int) else st.solver.eval_one(size)
            except Exception:  # noqa: BLE001
                return
            if not isinstance(n, int) or n <= 0 or n > 64:
                return
            if st.solver.symbolic(addr):
                lo, hi = st.solver.min(addr), st.solver.max(addr)
                if hi - lo <= 8 * 64 and not _overlaps(lo, hi + n, writable):
                    sp = st.regs.sp
                    on_stack = sp.concrete and abs(lo - st.solver.eval_one(sp)) < (1 << 20)
                    if on_stack or (lb.memory.is_readonly(lo) and lb.memory.is_readonly(hi + n - 1)):
                        return  # a bounded index into read-only data or our own frame: let angr enumerate it
            else:
                a = st.solver.eval_one(addr)
                if not _overlaps(a, a + n, writable):
                    return  # read-only data, or the stack (angr's own, not in the file)
            counter[0] += 1
            st.inspect.mem_read_expr = claripy.BVS(f"unknown_read_{counter[0]}", n * 8)

        state.inspect.b("mem_read", when=angr.BP_AFTER, action=guard)
        simgr = proj.factory.simulation_manager(state)
        values: set[int] = set()
        reached = 0
        dropped = 0
        mask = (1 << (32 if reg.startswith("e") else lb.bits)) - 1
        steps = 0
        while simgr.active and steps < MAX_STEPS:
            if self.deadline is not None and self.deadline.expired():
                break
            if time.monotonic() > self._stop_at:  # the alarm can be swallowed (raised inside a __del__)
                raise BudgetExceeded("angr step loop")
            steps += 1
            at_site = [s for s in simgr.active if s.addr == site]
            for s in at_site:
                reached += 1
                expr = getattr(s.regs, reg)
                sols = s.solver.eval_upto(expr, MAX_VALUES + 1)
                if len(sols) > MAX_VALUES:
                    return tuple(sorted(values)), False, f"angr: more than {MAX_VALUES} possible values"
                values.update(v & mask for v in sols)
            if at_site:
                # a path stops at the site once its number is known; paths through loops that come back are
                # still explored from their other states
                simgr.move("active", "done", lambda s: s.addr == site)
            if not simgr.active:
                break
            simgr.step(extra_stop_points={site})
            if len(simgr.active) > MAX_ACTIVE:
                extra = simgr.active[MAX_ACTIVE:]
                dropped += len(extra)
                simgr.active[:] = simgr.active[:MAX_ACTIVE]
        errored = len(simgr.errored)
        unfinished = len(simgr.active)
        complete = bool(values) and not unfinished and not errored and not dropped
        why = None
        if not complete:
            parts = []
            if unfinished or dropped:
                parts.append(f"{unfinished + dropped} paths not finished within {MAX_STEPS} steps/{MAX_ACTIVE} states")
            if errored:
                parts.append(f"{errored} paths failed in angr ({_first_error(simgr)})")
            if not reached:
                parts.append("no path reached the site")
            why = "angr: " + "; ".join(parts) if parts else None
        return tuple(sorted(values)), complete, why


def _quiet_budget(previous):
    """An unraisable-exception hook that drops the time budget's exception (raised by the alarm inside a
    destructor, where Python can only print it) and passes everything else on."""
    def hook(info):
        if isinstance(info.exc_value, BudgetExceeded):
            return
        previous(info)
    return hook


def _overlaps(lo: int, hi: int, ranges: list[tuple[int, int]]) -> bool:
    return any(lo < b and a < hi for a, b in ranges)


def _first_error(simgr) -> str:
    try:
        e = simgr.errored[0].error
        return f"{type(e).__name__}: {str(e)[:80]}"
    except Exception:  # noqa: BLE001
        return "error"
